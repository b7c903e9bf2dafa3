// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "hml/sdk/platform.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace hml::sdk {
namespace {

using ::testing::HasSubstr;

std::string Message(const Status& s) { return std::string(s.message()); }

TEST(BackgroundConditionsTest, EachConditionIsCheckedAndNamed) {
  StaticPlatform platform;
  BackgroundPolicy policy;  // unmetered, battery >= 20 % unless charging
  EXPECT_THAT(Message(CheckBackgroundConditions(platform, policy)), HasSubstr("offline"));
  platform.set_network({NetworkType::kMetered, 10e6, 50});
  EXPECT_THAT(Message(CheckBackgroundConditions(platform, policy)), HasSubstr("metered"));
  policy.require_unmetered = false;
  EXPECT_TRUE(CheckBackgroundConditions(platform, policy).ok());  // battery unknown: no limit
  platform.set_power({0.12, false});
  Status low = CheckBackgroundConditions(platform, policy);
  EXPECT_EQ(low.code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(Message(low), HasSubstr("battery at 12 % and not charging (minimum 20 %)"));
  platform.set_power({0.12, true});  // charging lifts the battery floor
  EXPECT_TRUE(CheckBackgroundConditions(platform, policy).ok());
  policy.require_idle = true;
  EXPECT_THAT(Message(CheckBackgroundConditions(platform, policy)), HasSubstr("in use"));
  platform.set_idle(true);
  EXPECT_TRUE(CheckBackgroundConditions(platform, policy).ok());
  policy.require_charging = true;
  platform.set_power({0.9, false});
  EXPECT_THAT(Message(CheckBackgroundConditions(platform, policy)), HasSubstr("not charging"));
  policy.min_battery_level = 1.5;
  EXPECT_EQ(CheckBackgroundConditions(platform, policy).code(), StatusCode::kInvalidArgument);
}

TEST(StaticPlatformTest, StoreKeysAreExactly32BytesAndLookedUpById) {
  StaticPlatform platform;
  EXPECT_EQ(platform.StoreKey(1).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(platform.set_store_key(1, "short").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(platform.StoreKey(1).status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(platform.set_store_key(1, std::string(32, 'a')).ok());
  ASSERT_TRUE(platform.set_store_key(2, std::string(32, 'b')).ok());
  ASSERT_TRUE(platform.set_store_key(1, std::string(32, 'c')).ok());  // replaced
  EXPECT_EQ(*platform.StoreKey(1), std::string(32, 'c'));
  EXPECT_EQ(*platform.StoreKey(2), std::string(32, 'b'));
  EXPECT_EQ(platform.logger(), nullptr);
}

}  // namespace
}  // namespace hml::sdk

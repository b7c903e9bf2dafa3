// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/sdk/resilience/hedging.h"

#include <gtest/gtest.h>

namespace hml::sdk {
namespace {

TEST(LatencyTrackerTest, NearestRankPercentiles) {
  LatencyTracker tracker(100);
  EXPECT_FALSE(tracker.Percentile(0.95).has_value());
  for (int i = 100; i >= 1; --i) tracker.Record(i);  // order must not matter
  EXPECT_EQ(tracker.Percentile(0.95), 95);
  EXPECT_EQ(tracker.Percentile(0.5), 50);
  EXPECT_EQ(tracker.Percentile(1.0), 100);
  EXPECT_EQ(tracker.size(), 100);
}

TEST(LatencyTrackerTest, WindowForgetsOldLatencies) {
  LatencyTracker tracker(10);
  for (int i = 0; i < 10; ++i) tracker.Record(1000);
  for (int i = 0; i < 10; ++i) tracker.Record(5);
  EXPECT_EQ(tracker.size(), 10);
  EXPECT_EQ(tracker.Percentile(0.95), 5);
}

TEST(HedgingPolicyTest, NoHedgeUntilEnoughSamplesThenP95) {
  HedgingOptions options;
  options.enabled = true;
  options.min_samples = 20;
  auto policy = HedgingPolicy::Create(options);
  ASSERT_TRUE(policy.ok());
  for (int i = 1; i <= 19; ++i) (*policy)->RecordLatency(i * 1'000'000);
  EXPECT_FALSE((*policy)->HedgeDelayNanos().has_value());
  (*policy)->RecordLatency(20 * 1'000'000);
  EXPECT_EQ((*policy)->HedgeDelayNanos(), 19 * 1'000'000);  // ceil(0.95 * 20) = 19th
}

TEST(HedgingPolicyTest, DisabledNeverHedgesAndMinDelayApplies) {
  HedgingOptions options;  // disabled by default
  options.min_samples = 1;
  auto disabled = HedgingPolicy::Create(options);
  ASSERT_TRUE(disabled.ok());
  (*disabled)->RecordLatency(10);
  EXPECT_FALSE((*disabled)->HedgeDelayNanos().has_value());

  options.enabled = true;
  options.min_delay_nanos = 1'000'000;
  auto enabled = HedgingPolicy::Create(options);
  ASSERT_TRUE(enabled.ok());
  (*enabled)->RecordLatency(10);
  EXPECT_EQ((*enabled)->HedgeDelayNanos(), 1'000'000);
}

TEST(HedgingPolicyTest, ValidateRejectsBadOptions) {
  HedgingOptions options;
  options.percentile = 0;
  EXPECT_EQ(HedgingPolicy::Create(options).status().code(), StatusCode::kInvalidArgument);
  options = {};
  options.min_samples = options.window + 1;
  EXPECT_EQ(HedgingPolicy::Create(options).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace hml::sdk

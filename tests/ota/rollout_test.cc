// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/ota/rollout.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

namespace hml::ota {
namespace {

constexpr int kDevices = 10000;

std::vector<std::string> DeviceIds() {
  std::vector<std::string> ids;
  ids.reserve(kDevices);
  for (int i = 0; i < kDevices; ++i) ids.push_back("device-" + std::to_string(i));
  return ids;
}

// Percentage of `ids` in a rollout of `model` to `percent` %.
double ShareInRollout(const std::vector<std::string>& ids, const std::string& model,
                      double percent) {
  int in = 0;
  for (const std::string& id : ids) in += InRollout(id, model, percent) ? 1 : 0;
  return 100.0 * in / static_cast<double>(ids.size());
}

// Computed outside our code: `printf 'm/d' | sha256sum` starts be5dbfcff9d1310d;
// 0xbe5dbfcff9d1310d = 13717330940010770701, and that mod 10000 = 701.
TEST(RolloutBucketTest, MatchesHandComputedValue) { EXPECT_EQ(RolloutBucket("d", "m"), 701); }

TEST(RolloutBucketTest, HashesModelSlashDevice) {
  // The hash input is model + "/" + device: these two pairs hash the same bytes "a/b/c".
  EXPECT_EQ(RolloutBucket("b/c", "a"), RolloutBucket("c", "a/b"));
  // Swapping model and device changes the input, and (here) the bucket.
  EXPECT_NE(RolloutBucket("d", "m"), RolloutBucket("m", "d"));
}

TEST(RolloutBucketTest, StableAcrossCallsAndInRange) {
  for (const std::string& id : DeviceIds()) {
    const int bucket = RolloutBucket(id, "mnist-cnn");
    ASSERT_GE(bucket, 0) << id;
    ASSERT_LT(bucket, kRolloutBuckets) << id;
    ASSERT_EQ(RolloutBucket(id, "mnist-cnn"), bucket) << id;
    ASSERT_EQ(RolloutBucket(std::string(id), std::string("mnist-cnn")), bucket) << id;
  }
}

TEST(InRolloutTest, ShareOfDevicesMatchesPercent) {
  const std::vector<std::string> ids = DeviceIds();
  for (double percent : {1.0, 5.0, 10.0, 25.0, 50.0, 90.0}) {
    EXPECT_NEAR(ShareInRollout(ids, "mnist-cnn", percent), percent, 1.0) << percent << " %";
  }
}

TEST(InRolloutTest, RaisingThePercentNeverRemovesADevice) {
  const std::vector<double> percents = {0.0,  0.01, 1.0,  5.0,   10.0, 25.0,
                                        33.3, 50.0, 90.0, 99.99, 100.0};
  for (const std::string& id : DeviceIds()) {
    bool was_in = false;
    for (double percent : percents) {
      const bool in = InRollout(id, "mnist-cnn", percent);
      ASSERT_TRUE(in || !was_in) << id << " left the rollout when it was raised to " << percent;
      was_in = in;
    }
  }
}

TEST(InRolloutTest, ModelsSplitTheFleetIndependently) {
  const std::vector<std::string> ids = DeviceIds();
  int both = 0;
  int differ = 0;
  for (const std::string& id : ids) {
    const bool a = InRollout(id, "model-a", 50.0);
    const bool b = InRollout(id, "model-b", 50.0);
    both += (a && b) ? 1 : 0;
    differ += RolloutBucket(id, "model-a") != RolloutBucket(id, "model-b") ? 1 : 0;
  }
  // Independent halves overlap on a quarter of the fleet; identical ones would overlap on half.
  EXPECT_NEAR(100.0 * both / kDevices, 25.0, 2.0);
  // Equal buckets happen by chance about once per 10000 devices.
  EXPECT_GT(differ, kDevices - 10);
}

TEST(InRolloutTest, ComparesBucketWithPercentTimesHundred) {
  // Bucket 701 (see MatchesHandComputedValue) is in from 7.02 % on, out at 7.01 % and below.
  EXPECT_FALSE(InRollout("d", "m", 7.0));
  EXPECT_FALSE(InRollout("d", "m", 7.005));
  EXPECT_TRUE(InRollout("d", "m", 7.02));
  EXPECT_TRUE(InRollout("d", "m", 7.5));
}

TEST(InRolloutTest, ClampsPercent) {
  const std::vector<std::string> ids = DeviceIds();
  EXPECT_EQ(ShareInRollout(ids, "m", 0.0), 0.0);
  EXPECT_EQ(ShareInRollout(ids, "m", -5.0), 0.0);
  EXPECT_EQ(ShareInRollout(ids, "m", -std::numeric_limits<double>::infinity()), 0.0);
  EXPECT_EQ(ShareInRollout(ids, "m", std::nan("")), 0.0);
  EXPECT_EQ(ShareInRollout(ids, "m", 100.0), 100.0);
  EXPECT_EQ(ShareInRollout(ids, "m", 250.0), 100.0);
  EXPECT_EQ(ShareInRollout(ids, "m", std::numeric_limits<double>::infinity()), 100.0);
}

}  // namespace
}  // namespace hml::ota

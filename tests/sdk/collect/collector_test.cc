// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/sdk/collect/collector.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "tests/sdk/store/store_test_util.h"

namespace hml::sdk {
namespace {

using ::hml::sdk::testing::KeyOf;
using ::hml::sdk::testing::TempFolder;
using ::testing::HasSubstr;

class CollectorTest : public ::testing::Test {
 protected:
  CollectorTest() : folder_("collector_test"), provider_(KeyOf('c')) {
    EncryptedStoreOptions options;
    options.keys = &provider_;
    options.device_id = "device-C";
    Result<std::unique_ptr<EncryptedStore>> store =
        EncryptedStore::Open(folder_.path() + "/store.db", options);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    if (store.ok()) store_ = std::move(*store);
  }

  std::unique_ptr<Collector> Make(const CollectorOptions& options) {
    Result<std::unique_ptr<Collector>> c = Collector::Create(store_.get(), options);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(*c) : nullptr;
  }

  // Everything queued, decoded.
  std::vector<sync::Record> Queued(Collector& c) {
    Result<std::vector<StoredRecord>> rows = c.queue()->Peek(10000);
    EXPECT_TRUE(rows.ok());
    sync::BatchWriter writer;
    for (const StoredRecord& r : *rows) writer.Add(r.payload);
    Result<std::vector<sync::Record>> decoded = sync::DecodeBatch(writer.Finish());
    EXPECT_TRUE(decoded.ok()) << decoded.status().ToString();
    return decoded.ok() ? *decoded : std::vector<sync::Record>{};
  }

  TempFolder folder_;
  FixedKeyProvider provider_;
  std::unique_ptr<EncryptedStore> store_;
};

std::vector<float> Features(float seed) { return {seed, seed + 1, seed + 2, seed + 3}; }

TEST_F(CollectorTest, QueuesInputsPredictionsAndLabelsAsRecords) {
  std::unique_ptr<Collector> c = Make({});
  ASSERT_NE(c, nullptr);
  const std::vector<float> f = Features(0);
  EXPECT_EQ(*c->RecordInput("m", 2, 100, {2, 2}, f), CollectOutcome::kQueued);
  EXPECT_EQ(*c->RecordPrediction("m", 2, 101, {2, 2}, Features(1), 5, 0.75f),
            CollectOutcome::kQueued);
  EXPECT_EQ(*c->RecordLabel("m", 2, 102, {2, 2}, Features(2), 3), CollectOutcome::kQueued);
  const std::vector<sync::Record> q = Queued(*c);
  ASSERT_EQ(q.size(), 3u);
  EXPECT_EQ(q[0].kind, sync::RecordKind::kInput);
  EXPECT_EQ(q[0].features, f);
  EXPECT_EQ(q[0].shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(q[1].predicted_class, 5);
  EXPECT_FLOAT_EQ(q[1].confidence, 0.75f);
  EXPECT_EQ(q[2].label, 3);
  EXPECT_EQ(q[2].timestamp_ms, 102);
  EXPECT_EQ(c->counters().offered, 3);
  EXPECT_EQ(c->counters().queued, 3);
}

TEST_F(CollectorTest, OnlyLabelledKeepsExactlyTheLabelledOnes) {
  CollectorOptions options;
  options.only_labelled = true;
  std::unique_ptr<Collector> c = Make(options);
  for (int i = 0; i < 10; ++i) {
    if (i % 3 == 0) {
      EXPECT_EQ(*c->RecordLabel("m", 1, i, {4}, Features(i), i % 2), CollectOutcome::kQueued);
    } else {
      EXPECT_EQ(*c->RecordPrediction("m", 1, i, {4}, Features(i), 1, 0.2f),
                CollectOutcome::kNotLabelled);
    }
  }
  EXPECT_EQ(c->counters().queued, 4);
  EXPECT_EQ(c->counters().not_labelled, 6);
  EXPECT_EQ(Queued(*c).size(), 4u);
}

TEST_F(CollectorTest, OnlyLowConfidenceKeepsLabelsAndUnsurePredictions) {
  CollectorOptions options;
  options.only_low_confidence = true;
  options.low_confidence_threshold = 0.6f;
  std::unique_ptr<Collector> c = Make(options);
  const float confidences[] = {0.1f, 0.3f, 0.59f, 0.6f, 0.8f, 0.99f};
  for (int i = 0; i < 6; ++i) {
    c->RecordPrediction("m", 1, i, {4}, Features(i), 2, confidences[i]).value();
  }
  EXPECT_EQ(*c->RecordInput("m", 1, 10, {4}, Features(10)), CollectOutcome::kConfident);
  EXPECT_EQ(*c->RecordLabel("m", 1, 11, {4}, Features(11), 7), CollectOutcome::kQueued);
  EXPECT_EQ(c->counters().queued, 4);     // 0.1, 0.3, 0.59 and the label
  EXPECT_EQ(c->counters().confident, 4);  // 0.6, 0.8, 0.99 and the plain input
}

TEST_F(CollectorTest, SamplingFollowsTheSeededDrawsExactly) {
  CollectorOptions options;
  options.sample_rate = 0.3;
  options.seed = 42;
  std::unique_ptr<Collector> c = Make(options);
  std::mt19937_64 rng(42);
  int64_t expected = 0;
  for (int i = 0; i < 500; ++i) {
    const bool keep = static_cast<double>(rng() >> 11) * 0x1.0p-53 < 0.3;
    expected += keep ? 1 : 0;
    EXPECT_EQ(*c->RecordInput("m", 1, i, {4}, Features(i)),
              keep ? CollectOutcome::kQueued : CollectOutcome::kSampledOut)
        << i;
  }
  EXPECT_EQ(c->counters().queued, expected);
  EXPECT_EQ(c->counters().sampled_out, 500 - expected);
  EXPECT_GT(expected, 120);  // ~150 expected
  EXPECT_LT(expected, 180);
}

TEST_F(CollectorTest, DedupDropsRepeatsOfRecentContentWhateverTheTimestamp) {
  CollectorOptions options;
  options.dedup_memory = 2;
  std::unique_ptr<Collector> c = Make(options);
  EXPECT_EQ(*c->RecordLabel("m", 1, 1, {4}, Features(0), 1), CollectOutcome::kQueued);
  EXPECT_EQ(*c->RecordLabel("m", 1, 2, {4}, Features(0), 1), CollectOutcome::kDuplicate);
  // Another label for the same features is other content.
  EXPECT_EQ(*c->RecordLabel("m", 1, 3, {4}, Features(0), 2), CollectOutcome::kQueued);
  EXPECT_EQ(*c->RecordLabel("m", 1, 4, {4}, Features(5), 1), CollectOutcome::kQueued);
  // The first has left the memory of 2.
  EXPECT_EQ(*c->RecordLabel("m", 1, 5, {4}, Features(0), 1), CollectOutcome::kQueued);
  EXPECT_EQ(c->counters().duplicates, 1);
  EXPECT_EQ(c->counters().queued, 4);

  CollectorOptions off;
  off.dedup = false;
  off.queue.table = "other";
  std::unique_ptr<Collector> d = Make(off);
  EXPECT_EQ(*d->RecordLabel("m", 1, 1, {4}, Features(0), 1), CollectOutcome::kQueued);
  EXPECT_EQ(*d->RecordLabel("m", 1, 2, {4}, Features(0), 1), CollectOutcome::kQueued);
}

TEST_F(CollectorTest, QueueOverflowIsCountedUnderBothPolicies) {
  CollectorOptions reject;
  reject.queue.table = "reject";
  reject.queue.max_records = 3;
  reject.queue.overflow = OverflowPolicy::kRejectNew;
  std::unique_ptr<Collector> r = Make(reject);
  for (int i = 0; i < 5; ++i) r->RecordInput("m", 1, i, {4}, Features(i)).value();
  EXPECT_EQ(r->counters().queued, 3);
  EXPECT_EQ(r->counters().queue_full, 2);
  EXPECT_EQ(r->QueueStats()->rejected, 2);
  EXPECT_EQ(r->QueueStats()->records, 3);

  CollectorOptions drop;
  drop.queue.table = "drop";
  drop.queue.max_records = 3;
  std::unique_ptr<Collector> d = Make(drop);
  for (int i = 0; i < 5; ++i) d->RecordInput("m", 1, i, {4}, Features(i)).value();
  EXPECT_EQ(d->counters().queued, 5);
  EXPECT_EQ(d->QueueStats()->dropped, 2);
  const std::vector<sync::Record> kept = Queued(*d);
  ASSERT_EQ(kept.size(), 3u);
  EXPECT_EQ(kept[0].timestamp_ms, 2);  // the two oldest went
}

TEST_F(CollectorTest, SensorWindowsSummariseCountMeanMinMaxStd) {
  CollectorOptions options;
  options.sensor_window_ms = 1000;
  std::unique_ptr<Collector> c = Make(options);
  const std::vector<std::vector<float>> rows = {{1, 10}, {2, 20}, {3, 60}};
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(*c->RecordSensorRow("accel", 2000 + 100 * i, rows[i]), CollectOutcome::kAggregated);
  }
  EXPECT_EQ(c->counters().queued, 0);  // the window is still open
  // A row in the next window closes the first.
  const std::vector<float> next = {5, 5};
  EXPECT_EQ(*c->RecordSensorRow("accel", 3500, next), CollectOutcome::kAggregated);
  // Late: before the open window.
  EXPECT_EQ(*c->RecordSensorRow("accel", 2999, next), CollectOutcome::kLate);
  EXPECT_EQ(*c->FlushSensors(), 1);
  // The flushed window is closed for good.
  EXPECT_EQ(*c->RecordSensorRow("accel", 3600, next), CollectOutcome::kLate);

  const std::vector<sync::Record> q = Queued(*c);
  ASSERT_EQ(q.size(), 2u);
  const sync::Record& s = q[0];
  EXPECT_EQ(s.kind, sync::RecordKind::kSensorSummary);
  EXPECT_EQ(s.model, "accel");
  EXPECT_EQ(s.timestamp_ms, 2000);
  EXPECT_EQ(s.shape, (std::vector<int64_t>{5, 2}));
  // rows: count, mean, min, max, std; columns: channels.
  const std::vector<float> want = {
      3, 3, 2, 30, 1, 10, 3, 60, std::sqrt(2.f / 3), std::sqrt(1400.f / 3)};
  ASSERT_EQ(s.features.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(s.features[i], want[i], 1e-4) << i;
  EXPECT_EQ(q[1].timestamp_ms, 3000);
  EXPECT_EQ(q[1].features[0], 1);  // count
  EXPECT_EQ(q[1].features[8], 0);  // std of one row
  const CollectorCounters n = c->counters();
  EXPECT_EQ(n.sensor_rows, 4);
  EXPECT_EQ(n.late_sensor_rows, 2);
  EXPECT_EQ(n.sensor_windows, 2);
  EXPECT_EQ(n.offered, 0);
}

TEST_F(CollectorTest, RefusesMalformedInput) {
  std::unique_ptr<Collector> c = Make({});
  const std::vector<float> two = {1, 2}, three = {1, 2, 3};
  ASSERT_TRUE(c->RecordSensorRow("gyro", 0, two).ok());
  EXPECT_THAT(c->RecordSensorRow("gyro", 1, three).status().message(), HasSubstr("2 channels"));
  const std::vector<float> nan = {std::nanf("")};
  EXPECT_EQ(c->RecordSensorRow("gyro2", 1, nan).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(c->RecordInput("m", 1, 0, {3}, two).status().code(), StatusCode::kInvalidArgument);
  sync::Record summary;
  summary.kind = sync::RecordKind::kSensorSummary;
  EXPECT_THAT(c->Collect(summary).status().message(), HasSubstr("RecordSensorRow"));

  CollectorOptions bad;
  bad.sample_rate = 1.5;
  EXPECT_THAT(Collector::Create(store_.get(), bad).status().message(), HasSubstr("sample_rate"));
  bad = {};
  bad.sensor_window_ms = 0;
  EXPECT_THAT(Collector::Create(store_.get(), bad).status().message(),
              HasSubstr("sensor_window_ms"));
}

}  // namespace
}  // namespace hml::sdk

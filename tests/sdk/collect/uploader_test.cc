// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The uploader against tests/testing/upload_fakes.h's scripted ingest service, on a ManualClock
// (backoff sleeps advance it, so retries take no real time).
#include "src/sdk/collect/uploader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "src/sdk/collect/collector.h"
#include "tests/sdk/store/store_test_util.h"
#include "tests/testing/upload_fakes.h"

namespace hml::sdk {
namespace {

using ::hml::sdk::testing::KeyOf;
using ::hml::sdk::testing::TempFolder;
using ::hml::testing::FakeIngestTransport;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

using Step = FakeIngestTransport::Step;
using Action = FakeIngestTransport::Action;

constexpr char kCanary[] = "CANARY-c0ffee-17";

class UploaderTest : public ::testing::Test {
 protected:
  UploaderTest() : folder_("uploader_test"), provider_(KeyOf('u')), transport_(&clock_) {
    keys_ = *sync::GenerateIngestKeyPair();
    platform_.set_network({.type = NetworkType::kUnmetered});
    platform_.set_power({.battery_level = 0.9, .charging = false});
    options_.ingest_public_key = keys_.public_key;
    OpenDevice();
  }

  void OpenDevice() {
    uploader_.reset();
    collector_.reset();
    store_.reset();
    EncryptedStoreOptions options;
    options.keys = &provider_;
    options.device_id = "device-U";
    Result<std::unique_ptr<EncryptedStore>> store =
        EncryptedStore::Open(folder_.path() + "/store.db", options);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
    collector_ = std::move(*Collector::Create(store_.get(), {}));
    MakeUploader();
  }

  void MakeUploader() {
    Result<std::unique_ptr<Uploader>> u =
        Uploader::Create(store_.get(), collector_->queue(), &transport_, &platform_, options_);
    ASSERT_TRUE(u.ok()) << u.status().ToString();
    uploader_ = std::move(*u);
  }

  // `n` labelled samples with distinct features; the model name carries the canary.
  void Collect(int n, int first = 0) {
    for (int i = first; i < first + n; ++i) {
      const std::vector<float> f = {static_cast<float>(i), 0.5f, -1.f};
      ASSERT_EQ(*collector_->RecordLabel(kCanary, 1, 1000 + i, {3}, f, i % 10),
                CollectOutcome::kQueued);
    }
  }

  int64_t Queued() { return *store_->Count("collected"); }
  int64_t PendingBatches() { return *store_->Count("upload_pending"); }

  // Every batch the fake server stored, opened and decoded, in key order.
  std::vector<sync::Record> ServerRecords() {
    std::vector<sync::Record> all;
    for (const auto& [key, sealed] : transport_.stored()) {
      Result<std::vector<sync::Record>> r = sync::OpenAndDecodeBatch(sealed, keys_);
      EXPECT_TRUE(r.ok()) << key << ": " << r.status().ToString();
      if (r.ok()) all.insert(all.end(), r->begin(), r->end());
    }
    return all;
  }

  TempFolder folder_;
  FixedKeyProvider provider_;
  ManualClock clock_;
  FakeIngestTransport transport_;
  StaticPlatform platform_;
  sync::IngestKeyPair keys_;
  UploaderOptions options_;
  std::unique_ptr<EncryptedStore> store_;
  std::unique_ptr<Collector> collector_;
  std::unique_ptr<Uploader> uploader_;
};

TEST_F(UploaderTest, UnmetConditionsMakeNoCallAndSayWhich) {
  Collect(3);
  platform_.set_network({.type = NetworkType::kMetered});
  SyncReport report = uploader_->SyncOnce();
  EXPECT_EQ(report.status.code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(report.blocked_reason, HasSubstr("metered"));
  EXPECT_TRUE(transport_.call_keys().empty());
  EXPECT_EQ(Queued(), 3);

  platform_.set_network({.type = NetworkType::kUnmetered});
  platform_.set_power({.battery_level = 0.1, .charging = false});
  report = uploader_->SyncOnce();
  EXPECT_THAT(report.blocked_reason, HasSubstr("battery"));
  EXPECT_TRUE(transport_.call_keys().empty());
  EXPECT_EQ(uploader_->counters().blocked, 2);

  platform_.set_power({.battery_level = 0.1, .charging = true});
  report = uploader_->SyncOnce();
  EXPECT_TRUE(report.status.ok()) << report.status.ToString();
  EXPECT_EQ(Queued(), 0);
}

TEST_F(UploaderTest, AckedBatchesAreDeletedAndDecodeToWhatWasCollected) {
  options_.max_batch_samples = 4;
  MakeUploader();
  Collect(10);
  const SyncReport report = uploader_->SyncOnce();
  ASSERT_TRUE(report.status.ok()) << report.status.ToString();
  EXPECT_EQ(report.batches_acked, 3);  // 4 + 4 + 2
  EXPECT_EQ(report.samples_uploaded, 10);
  EXPECT_EQ(report.attempts, 3);
  EXPECT_EQ(report.retries, 0);
  EXPECT_EQ(Queued(), 0);
  EXPECT_EQ(PendingBatches(), 0);
  EXPECT_EQ(transport_.stored().size(), 3u);
  std::vector<sync::Record> got = ServerRecords();
  ASSERT_EQ(got.size(), 10u);
  std::vector<float> firsts;
  for (const sync::Record& r : got) firsts.push_back(r.features[0]);
  std::sort(firsts.begin(), firsts.end());
  for (int i = 0; i < 10; ++i) EXPECT_EQ(firsts[i], i);
  const UploadCounters c = uploader_->counters();
  EXPECT_EQ(c.batches_acked, 3);
  EXPECT_EQ(c.samples_uploaded, 10);
  EXPECT_GT(c.bytes_plain, 0);
  EXPECT_GT(c.bytes_compressed, 0);
  EXPECT_EQ(c.bytes_sealed, c.bytes_compressed + 3 * 48);
  EXPECT_EQ(c.wire_bytes_sent, c.bytes_sealed);
  // A second sync has nothing to do.
  EXPECT_EQ(uploader_->SyncOnce().attempts, 0);
}

TEST_F(UploaderTest, ByteBoundCutsBatchesAndAnOversizedRecordGoesAlone) {
  Collect(6);
  // Each encoded record here is 76 bytes (40 fixed, the 16-byte name, one dim, 3 floats); 170
  // bytes of batch fit the 16-byte header and two records.
  options_.max_batch_bytes = 170;
  MakeUploader();
  SyncReport report = uploader_->SyncOnce();
  ASSERT_TRUE(report.status.ok());
  EXPECT_EQ(report.batches_acked, 3);
  options_.max_batch_bytes = 10;  // smaller than any record
  MakeUploader();
  Collect(2, 100);
  report = uploader_->SyncOnce();
  EXPECT_EQ(report.batches_acked, 2);
  EXPECT_EQ(Queued(), 0);
}

TEST_F(UploaderTest, RetryableFailuresKeepRecordsAndReuseTheKey) {
  Collect(5);
  transport_.Script({{Action::kFail, UnavailableError("link down")},
                     {Action::kFail, DeadlineExceededError("slow")},
                     {Action::kAck, {}}});
  const SyncReport report = uploader_->SyncOnce();
  ASSERT_TRUE(report.status.ok()) << report.status.ToString();
  EXPECT_EQ(report.attempts, 3);
  EXPECT_EQ(report.retries, 2);
  const std::vector<std::string> keys = transport_.call_keys();
  ASSERT_EQ(keys.size(), 3u);
  EXPECT_EQ(keys[0], keys[1]);
  EXPECT_EQ(keys[1], keys[2]);
  EXPECT_EQ(transport_.stored().size(), 1u);
  EXPECT_EQ(Queued(), 0);
  // Backoff slept on the transport's clock: two retries, caps 100 ms and 200 ms.
  EXPECT_LT(clock_.NowNanos(), 300'000'000);
  EXPECT_EQ(uploader_->counters().failed_attempts, 2);
}

TEST_F(UploaderTest, NonRetryableErrorIsOneAttemptAndTheBatchStaysPending) {
  Collect(2);
  transport_.Script({{Action::kFail, InternalError("boom")}});
  SyncReport report = uploader_->SyncOnce();
  EXPECT_EQ(report.status.code(), StatusCode::kInternal);
  EXPECT_THAT(std::string(report.status.message()), HasSubstr("attempt 1"));
  EXPECT_EQ(report.attempts, 1);
  EXPECT_EQ(Queued(), 2);
  EXPECT_EQ(PendingBatches(), 1);
  EXPECT_EQ(uploader_->counters().permanent_failures, 1);
  // The next sync sends the same batch, same key.
  report = uploader_->SyncOnce();
  ASSERT_TRUE(report.status.ok());
  EXPECT_THAT(transport_.call_keys(), ElementsAre(report.acked_keys[0], report.acked_keys[0]));
  EXPECT_EQ(Queued(), 0);
  EXPECT_EQ(PendingBatches(), 0);
}

TEST_F(UploaderTest, ExhaustedRetriesLeaveTheBatchForTheNextSync) {
  options_.retry.max_attempts = 2;
  MakeUploader();
  Collect(3);
  transport_.Script(
      {{Action::kFail, UnavailableError("a")}, {Action::kFail, UnavailableError("b")}});
  SyncReport report = uploader_->SyncOnce();
  EXPECT_EQ(report.status.code(), StatusCode::kUnavailable);
  EXPECT_EQ(report.attempts, 2);
  EXPECT_EQ(Queued(), 3);
  Collect(2, 50);  // new records wait for the pending batch
  report = uploader_->SyncOnce();
  ASSERT_TRUE(report.status.ok());
  ASSERT_EQ(report.acked_keys.size(), 2u);
  EXPECT_EQ(report.acked_keys[0], transport_.call_keys()[0]);
  EXPECT_NE(report.acked_keys[1], report.acked_keys[0]);
  EXPECT_EQ(ServerRecords().size(), 5u);
}

TEST_F(UploaderTest, DuplicateAnswerAfterALostAckDeletesTheRecords) {
  Collect(4);
  transport_.Script({{Action::kCommitThenFail, UnavailableError("connection lost after commit")}});
  const SyncReport report = uploader_->SyncOnce();
  ASSERT_TRUE(report.status.ok()) << report.status.ToString();
  EXPECT_EQ(report.attempts, 2);
  EXPECT_EQ(report.duplicates, 1);
  EXPECT_EQ(transport_.stored().size(), 1u);
  EXPECT_EQ(ServerRecords().size(), 4u);
  EXPECT_EQ(Queued(), 0);
  EXPECT_EQ(uploader_->counters().duplicates, 1);
}

TEST_F(UploaderTest, RestartBetweenSendAndAckReusesThePersistedKey) {
  options_.retry.max_attempts = 1;
  MakeUploader();
  Collect(3);
  // The batch and its key are in the store before the first attempt leaves.
  int64_t pending_at_first_call = -1;
  transport_.OnUpload([&](const UploadCall&) {
    if (pending_at_first_call < 0) pending_at_first_call = PendingBatches();
  });
  transport_.Script({{Action::kCommitThenFail, UnavailableError("server died before acking")}});
  SyncReport report = uploader_->SyncOnce();
  EXPECT_EQ(report.status.code(), StatusCode::kUnavailable);
  EXPECT_EQ(pending_at_first_call, 1);
  const std::string first_key = transport_.call_keys().at(0);

  // "Kill" the device side: drop uploader, collector and store; open everything again.
  transport_.OnUpload(nullptr);
  OpenDevice();
  EXPECT_EQ(Queued(), 3);
  report = uploader_->SyncOnce();
  ASSERT_TRUE(report.status.ok()) << report.status.ToString();
  EXPECT_THAT(transport_.call_keys(), ElementsAre(first_key, first_key));
  EXPECT_EQ(report.duplicates, 1);
  EXPECT_EQ(transport_.stored().size(), 1u);
  EXPECT_EQ(ServerRecords().size(), 3u);
  EXPECT_EQ(Queued(), 0);
  EXPECT_EQ(PendingBatches(), 0);
}

TEST_F(UploaderTest, NoPlaintextInTheDeviceStoreFiles) {
  Collect(5);
  options_.retry.max_attempts = 1;
  MakeUploader();
  transport_.Script({{Action::kFail, UnavailableError("offline")}});
  uploader_->SyncOnce();  // leaves a pending batch too
  ASSERT_EQ(PendingBatches(), 1);
  for (const auto& entry : std::filesystem::directory_iterator(folder_.path())) {
    std::ifstream in(entry.path(), std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(bytes.find(kCanary), std::string::npos) << entry.path();
  }
}

TEST_F(UploaderTest, OptionsAreValidated) {
  UploaderOptions bad = options_;
  bad.ingest_public_key = {};
  EXPECT_THAT(Uploader::Create(store_.get(), collector_->queue(), &transport_, &platform_, bad)
                  .status()
                  .message(),
              HasSubstr("ingest_public_key"));
  bad = options_;
  bad.max_batch_samples = 0;
  EXPECT_EQ(Uploader::Create(store_.get(), collector_->queue(), &transport_, &platform_, bad)
                .status()
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(Uploader::Create(nullptr, collector_->queue(), &transport_, &platform_, options_)
                .status()
                .code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace hml::sdk

// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The whole data path in one process: device Collector -> Uploader -> sim::InProcessTransport
// (an emulated 4g link, real clock) -> the ingest service's IngestStore -> the dataset export
// -> data::LoadSampleDirectory (what `hybridml train --data dir:` reads). The server "dies"
// after committing a batch and before acknowledging it (the transport's after_ingest_commit
// hook drops one ack); the device retries with the same key and the batch is stored once.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "src/data/dataset.h"
#include "src/sdk/collect/collector.h"
#include "src/sdk/collect/uploader.h"
#include "src/server/ingest/dataset_export.h"
#include "src/server/ingest/ingest_store.h"
#include "src/server/serving/model_repository.h"
#include "src/sim/in_process_transport.h"
#include "tests/sdk/store/store_test_util.h"

namespace hml::sdk {
namespace {

using ::hml::sdk::testing::KeyOf;

constexpr char kCanary[] = "CANARY-e2e-upload-4242";
constexpr int kLabelled = 30;
constexpr int kUnlabelled = 5;

class UploadEndToEndTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/upload_e2e_" + std::to_string(::getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_ + "/device");
    std::filesystem::create_directories(dir_ + "/server");
    keys_ = *sync::GenerateIngestKeyPair();
    uploader_options_.ingest_public_key = keys_.public_key;
    uploader_options_.max_batch_samples = 8;
    uploader_options_.retry.initial_backoff_nanos = 10'000'000;
    ingest_ = std::move(*server::IngestStore::Open(dir_ + "/server/ingest.db"));
    sim::LinkOptions link_options;
    link_options.profile = *sim::NamedLinkProfile("4g");
    link_ = std::move(*sim::LinkEmulator::Create(std::move(link_options)));

    sim::InProcessTransportOptions options;
    options.backend = &repo_;
    options.link = link_.get();
    options.lost_message_timeout_nanos = 100'000'000;
    options.device_id = "phone-1";
    options.ingest = ingest_.get();
    // The server dies once: after the commit of the first batch, before its ack.
    options.after_ingest_commit = [this] { return acks_to_drop_.fetch_sub(1) <= 0; };
    transport_ = std::move(*sim::InProcessTransport::Create(std::move(options)));
    platform_.set_network({.type = NetworkType::kUnmetered});
    platform_.set_power({.battery_level = 0.8, .charging = true});
    OpenDevice();
  }
  void TearDown() override {
    uploader_.reset();
    collector_.reset();
    store_.reset();
    transport_.reset();
    ingest_.reset();
    std::filesystem::remove_all(dir_);
  }

  void OpenDevice() {
    uploader_.reset();
    collector_.reset();
    store_.reset();
    EncryptedStoreOptions store_options;
    store_options.keys = &provider_;
    store_options.device_id = "phone-1";
    store_ = std::move(*EncryptedStore::Open(dir_ + "/device/store.db", store_options));
    collector_ = std::move(*Collector::Create(store_.get(), {}));
    uploader_ = std::move(*Uploader::Create(store_.get(), collector_->queue(), transport_.get(),
                                            &platform_, uploader_options_));
  }

  void CollectSamples() {
    for (int i = 0; i < kLabelled + kUnlabelled; ++i) {
      std::vector<float> f(16);
      for (int k = 0; k < 16; ++k) f[k] = static_cast<float>(i * 16 + k);
      if (i < kLabelled) {
        ASSERT_EQ(*collector_->RecordLabel(kCanary, 2, 1000 + i, {1, 4, 4}, f, i % 5),
                  CollectOutcome::kQueued);
      } else {
        ASSERT_EQ(*collector_->RecordPrediction(kCanary, 2, 1000 + i, {1, 4, 4}, f, 1, 0.4f),
                  CollectOutcome::kQueued);
      }
    }
  }

  // Exports the ingest store and reads the sample directory back, checking every sample.
  void ExportAndReadBack() {
    server::DatasetExportOptions options;
    options.out_dir = dir_ + "/dataset";
    Result<server::DatasetExportReport> report =
        server::ExportDataset(*ingest_, keys_, *DefaultEnv(), options);
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    EXPECT_TRUE(report->failed.empty());
    EXPECT_EQ(report->records, kLabelled + kUnlabelled);
    EXPECT_EQ(report->samples_written, kLabelled);
    EXPECT_EQ(report->skipped_unlabelled, kUnlabelled);
    Result<std::shared_ptr<data::InMemoryDataset>> dataset =
        data::LoadSampleDirectory(*DefaultEnv(), options.out_dir);
    ASSERT_TRUE(dataset.ok()) << dataset.status().ToString();
    ASSERT_EQ((*dataset)->size(), kLabelled);
    EXPECT_EQ((*dataset)->feature_shape(), (Shape{1, 4, 4}));
    std::vector<float> f(16);
    for (int i = 0; i < kLabelled; ++i) {
      ASSERT_EQ(*(*dataset)->Get(i, f), i % 5) << i;
      EXPECT_EQ(f[0], static_cast<float>(i * 16)) << i;
    }
  }

  void ExpectNoCanaryIn(const std::string& dir) {
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
      if (!entry.is_regular_file()) continue;
      std::ifstream in(entry.path(), std::ios::binary);
      const std::string bytes((std::istreambuf_iterator<char>(in)),
                              std::istreambuf_iterator<char>());
      EXPECT_EQ(bytes.find(kCanary), std::string::npos) << entry.path();
    }
  }

  std::string dir_;
  sync::IngestKeyPair keys_;
  std::unique_ptr<server::IngestStore> ingest_;
  server::ModelRepository repo_;
  std::unique_ptr<sim::LinkEmulator> link_;
  std::atomic<int> acks_to_drop_{1};
  std::unique_ptr<sim::InProcessTransport> transport_;
  StaticPlatform platform_;
  FixedKeyProvider provider_{KeyOf('e')};
  UploaderOptions uploader_options_;
  std::unique_ptr<EncryptedStore> store_;
  std::unique_ptr<Collector> collector_;
  std::unique_ptr<Uploader> uploader_;
};

TEST_F(UploadEndToEndTest, LostAckIsRetriedAndTheBatchIsStoredOnce) {
  CollectSamples();
  const SyncReport report = uploader_->SyncOnce();
  ASSERT_TRUE(report.status.ok()) << report.status.ToString();
  // The hook ran once per commit or duplicate: 5 batches + the retry of the first.
  EXPECT_EQ(acks_to_drop_.load(), 1 - 6);
  EXPECT_EQ(report.batches_acked, 5);  // 35 records, 8 per batch
  EXPECT_EQ(report.samples_uploaded, kLabelled + kUnlabelled);
  EXPECT_EQ(report.retries, 1);
  EXPECT_EQ(report.duplicates, 1);  // the retry found the committed batch
  EXPECT_EQ(*ingest_->Count(), 5);
  Result<std::vector<server::IngestedBatch>> stored = ingest_->List(0, 100);
  ASSERT_TRUE(stored.ok());
  std::vector<std::string> keys;
  for (const server::IngestedBatch& b : *stored) {
    EXPECT_EQ(b.device_id, "phone-1");
    keys.push_back(b.idempotency_key);
  }
  EXPECT_EQ(keys, report.acked_keys);
  EXPECT_EQ(*store_->Count("collected"), 0);
  EXPECT_EQ(*store_->Count("upload_pending"), 0);
  const UploadCounters c = uploader_->counters();
  EXPECT_EQ(c.attempts, 6);
  EXPECT_GT(c.wire_bytes_sent, c.bytes_sealed);  // the first batch went twice, plus framing
  std::printf(
      "upload: %lld batches, %lld samples, %lld attempts (%lld retries, %lld duplicates); bytes "
      "encoded %lld -> zstd %lld -> sealed %lld; on the wire %lld\n",
      static_cast<long long>(c.batches_acked), static_cast<long long>(c.samples_uploaded),
      static_cast<long long>(c.attempts), static_cast<long long>(c.retries),
      static_cast<long long>(c.duplicates), static_cast<long long>(c.bytes_plain),
      static_cast<long long>(c.bytes_compressed), static_cast<long long>(c.bytes_sealed),
      static_cast<long long>(c.wire_bytes_sent));

  ExportAndReadBack();
  uploader_.reset();
  collector_.reset();
  store_.reset();
  ingest_.reset();  // close: the WAL is checkpointed into the file
  ExpectNoCanaryIn(dir_ + "/server");
  ExpectNoCanaryIn(dir_ + "/device");
  ingest_ = std::move(*server::IngestStore::Open(dir_ + "/server/ingest.db"));
}

TEST_F(UploadEndToEndTest, DeviceRestartAfterTheLostAckReusesTheKey) {
  uploader_options_.retry.max_attempts = 1;  // the sync gives up at the lost ack
  OpenDevice();
  CollectSamples();
  SyncReport report = uploader_->SyncOnce();
  EXPECT_EQ(report.status.code(), StatusCode::kUnavailable) << report.status.ToString();
  EXPECT_EQ(*ingest_->Count(), 1);  // committed, not acked
  const std::string first_key = (*ingest_->List(0, 1))[0].idempotency_key;

  OpenDevice();  // the app restarts
  report = uploader_->SyncOnce();
  ASSERT_TRUE(report.status.ok()) << report.status.ToString();
  ASSERT_FALSE(report.acked_keys.empty());
  EXPECT_EQ(report.acked_keys[0], first_key);
  EXPECT_EQ(report.duplicates, 1);
  EXPECT_EQ(*ingest_->Count(), 5);
  ExportAndReadBack();
}

}  // namespace
}  // namespace hml::sdk

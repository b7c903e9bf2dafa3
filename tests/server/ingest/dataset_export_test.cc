// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/server/ingest/dataset_export.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "src/data/dataset.h"
#include "src/server/ingest/ingest_keys.h"

namespace hml::server {
namespace {

using ::testing::HasSubstr;

constexpr char kCanary[] = "CANARY-ingest-5150";

class DatasetExportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/dataset_export_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    keys_ = *sync::GenerateIngestKeyPair();
    store_ = std::move(*IngestStore::Open(dir_ + "/ingest.db"));
    out_ = dir_ + "/dataset";
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  // A [1, 2, 2] labelled sample whose features start at `base`.
  static sync::Record Labelled(float base, int64_t label, std::string model = kCanary) {
    sync::Record r;
    r.kind = sync::RecordKind::kLabel;
    r.model = std::move(model);
    r.shape = {1, 2, 2};
    r.features = {base, base + 1, base + 2, base + 3};
    r.label = label;
    return r;
  }

  void Store(const std::string& device, const std::string& key,
             const std::vector<sync::Record>& records,
             const std::array<unsigned char, 32>* public_key = nullptr) {
    Result<std::string> batch = sync::EncodeBatch(records);
    ASSERT_TRUE(batch.ok());
    Result<sync::SealedBatch> sealed =
        sync::SealBatch(*batch, public_key ? *public_key : keys_.public_key);
    ASSERT_TRUE(sealed.ok());
    ASSERT_TRUE(
        store_->Put(device, key, static_cast<int64_t>(records.size()), sealed->sealed, 1).ok());
  }

  Result<DatasetExportReport> Export() {
    DatasetExportOptions options;
    options.out_dir = out_;
    options.page_size = 2;  // several pages
    return ExportDataset(*store_, keys_, *DefaultEnv(), options);
  }

  std::string dir_, out_;
  sync::IngestKeyPair keys_;
  std::unique_ptr<IngestStore> store_;
};

TEST_F(DatasetExportTest, WritesLabelledSamplesThatTheTrainerReadsBack) {
  sync::Record unlabelled = Labelled(100, -1);
  unlabelled.kind = sync::RecordKind::kPrediction;
  unlabelled.predicted_class = 1;
  unlabelled.confidence = 0.3f;
  sync::Record summary;
  summary.kind = sync::RecordKind::kSensorSummary;
  summary.model = "accel";
  sync::Record other_shape = Labelled(0, 1);
  other_shape.shape = {4};
  Store("dev-a", "k1", {Labelled(0, 3), unlabelled, Labelled(10, 1)});
  Store("dev-b", "k1", {summary, other_shape, Labelled(20, 0)});
  Store("dev-a", "k2", {Labelled(30, 2)});

  Result<DatasetExportReport> report = Export();
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->batches, 3);
  EXPECT_EQ(report->batches_opened, 3);
  EXPECT_TRUE(report->failed.empty());
  EXPECT_EQ(report->records, 7);
  EXPECT_EQ(report->samples_written, 4);
  EXPECT_EQ(report->skipped_unlabelled, 1);
  EXPECT_EQ(report->skipped_no_features, 1);
  EXPECT_EQ(report->skipped_other_shape, 1);
  EXPECT_EQ(report->feature_shape, (std::vector<int64_t>{1, 2, 2}));

  Result<std::shared_ptr<data::InMemoryDataset>> dataset =
      data::LoadSampleDirectory(*DefaultEnv(), out_);
  ASSERT_TRUE(dataset.ok()) << dataset.status().ToString();
  ASSERT_EQ((*dataset)->size(), 4);
  EXPECT_EQ((*dataset)->feature_shape(), (Shape{1, 2, 2}));
  EXPECT_EQ((*dataset)->num_classes(), 4);
  // Arrival order: batch order, then record order.
  const std::vector<int64_t> labels((*dataset)->labels().begin(), (*dataset)->labels().end());
  EXPECT_EQ(labels, (std::vector<int64_t>{3, 1, 0, 2}));
  std::vector<float> f(4);
  ASSERT_TRUE((*dataset)->Get(2, f).ok());
  EXPECT_EQ(f, (std::vector<float>{20, 21, 22, 23}));
  struct stat st {};
  ASSERT_EQ(::stat(out_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
}

TEST_F(DatasetExportTest, ABadBatchIsReportedAndSkippedNotFatal) {
  Store("dev-a", "good-1", {Labelled(0, 1)});
  const sync::IngestKeyPair stranger = *sync::GenerateIngestKeyPair();
  Store("dev-evil", "wrong-key", {Labelled(5, 1)}, &stranger.public_key);
  ASSERT_TRUE(store_->Put("dev-b", "garbage", 1, std::string(100, 'x'), 1).ok());
  Store("dev-c", "good-2", {Labelled(9, 0)});

  Result<DatasetExportReport> report = Export();
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->batches, 4);
  EXPECT_EQ(report->batches_opened, 2);
  ASSERT_EQ(report->failed.size(), 2u);
  EXPECT_EQ(report->failed[0].device_id, "dev-evil");
  EXPECT_EQ(report->failed[0].idempotency_key, "wrong-key");
  EXPECT_EQ(report->failed[0].id, 2);
  EXPECT_EQ(report->failed[0].error.code(), StatusCode::kDataLoss);
  EXPECT_THAT(std::string(report->failed[0].error.message()), HasSubstr("does not open"));
  EXPECT_EQ(report->failed[1].device_id, "dev-b");
  EXPECT_EQ(report->samples_written, 2);
  EXPECT_EQ((*data::LoadSampleDirectory(*DefaultEnv(), out_))->size(), 2);
}

TEST_F(DatasetExportTest, ReExportIsIdempotentAndAddsOnlyNewBatches) {
  Store("dev-a", "k1", {Labelled(0, 1), Labelled(4, 0)});
  ASSERT_EQ(Export()->samples_written, 2);
  Result<DatasetExportReport> again = Export();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->samples_written, 0);
  EXPECT_EQ(again->samples_unchanged, 2);
  Store("dev-a", "k2", {Labelled(8, 2)});
  again = Export();
  EXPECT_EQ(again->samples_written, 1);
  EXPECT_EQ(again->samples_unchanged, 2);
  // A damaged sample file is rewritten.
  std::filesystem::resize_file(out_ + "/" + SampleFileName(1, 0), 10);
  EXPECT_EQ(Export()->samples_written, 1);
  size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(out_)) files += e.is_regular_file();
  EXPECT_EQ(files, 3u);
  EXPECT_EQ((*data::LoadSampleDirectory(*DefaultEnv(), out_))->size(), 3);
}

TEST_F(DatasetExportTest, ModelFilter) {
  Store("dev-a", "k1", {Labelled(0, 1, "alpha"), Labelled(4, 0, "beta")});
  DatasetExportOptions options;
  options.out_dir = out_;
  options.model = "beta";
  Result<DatasetExportReport> report = ExportDataset(*store_, keys_, *DefaultEnv(), options);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->samples_written, 1);
  EXPECT_EQ(report->skipped_other_model, 1);
}

TEST_F(DatasetExportTest, TheIngestDatabaseHoldsNoPlaintext) {
  // The model name and a feature pattern would appear in any plaintext copy of the records.
  std::vector<sync::Record> records;
  for (int i = 0; i < 20; ++i) records.push_back(Labelled(static_cast<float>(i), i % 3));
  Store("dev-a", "k1", records);
  Store("dev-a", "k2", records);
  store_.reset();  // flush and close (checkpoints the WAL into the file)
  store_ = std::move(*IngestStore::Open(dir_ + "/ingest.db"));
  for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(bytes.find(kCanary), std::string::npos) << entry.path();
  }
  // ...while the export does recover them (the canary was really in the data).
  Result<DatasetExportReport> report = Export();
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->samples_written, 40);
}

class IngestKeysTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/ingest_keys_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(IngestKeysTest, KeygenWritesAPairThatReadsBackAndIsNeverReplaced) {
  Result<sync::IngestKeyPair> keys = CreateIngestKeyFiles(dir_ + "/keys");
  ASSERT_TRUE(keys.ok()) << keys.status().ToString();
  const std::string key = dir_ + "/keys/ingest.key", pub = dir_ + "/keys/ingest.pub";
  struct stat st {};
  ASSERT_EQ(::stat(key.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat(pub.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
  Result<sync::IngestKeyPair> read = ReadIngestSecretKeyFile(key);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(read->secret_key, keys->secret_key);
  EXPECT_EQ(read->public_key, keys->public_key);
  EXPECT_EQ(*ReadIngestPublicKeyFile(pub), keys->public_key);

  EXPECT_EQ(CreateIngestKeyFiles(dir_ + "/keys").status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(ReadIngestSecretKeyFile(key)->secret_key, keys->secret_key);  // unchanged

  ASSERT_EQ(::chmod(key.c_str(), 0640), 0);
  EXPECT_THAT(std::string(ReadIngestSecretKeyFile(key).status().message()),
              HasSubstr("it must be 0600"));
  EXPECT_EQ(ReadIngestSecretKeyFile(dir_ + "/none").status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace hml::server

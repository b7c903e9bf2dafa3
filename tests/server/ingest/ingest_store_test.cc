// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/server/ingest/ingest_store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <string>

namespace hml::server {
namespace {

class IngestStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/ingest_store_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    path_ = dir_ + "/ingest.db";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_, path_;
};

TEST_F(IngestStoreTest, StoresOncePerDeviceAndKeyAndSurvivesReopening) {
  {
    auto store = IngestStore::Open(path_);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    EXPECT_EQ(*(*store)->Put("dev-a", "k1", 10, "sealed-1", 100), false);
    EXPECT_EQ(*(*store)->Put("dev-a", "k1", 10, "sealed-1", 101), true);   // a retry
    EXPECT_EQ(*(*store)->Put("dev-b", "k1", 5, "sealed-b", 102), false);  // keys are per device
    EXPECT_EQ(*(*store)->Put("dev-a", "k2", 7, "sealed-2", 103), false);
    EXPECT_EQ(*(*store)->Count(), 3);
  }
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto store = IngestStore::Open(path_);
  ASSERT_TRUE(store.ok());
  EXPECT_EQ(*(*store)->Put("dev-a", "k1", 10, "sealed-1", 200), true);  // still known
  auto all = (*store)->List(0, 10);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].device_id, "dev-a");
  EXPECT_EQ((*all)[0].received_unix, 100);  // the first arrival, not the retry
  EXPECT_EQ((*all)[1].sealed, "sealed-b");
  EXPECT_EQ((*all)[2].sample_count, 7);
  EXPECT_EQ((*all)[2].sha256.size(), 64u);
  auto page = (*store)->List((*all)[0].id, 1);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->size(), 1u);
  EXPECT_EQ((*page)[0].id, (*all)[1].id);
}

TEST_F(IngestStoreTest, BadInputIsRefusedAndStoresNothing) {
  IngestOptions options;
  options.max_batch_bytes = 8;
  auto store = IngestStore::Open(path_, options);
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->Put("dev", "k", 1, "abc", 1).ok());
  const auto code = [&](std::string_view device, std::string_view key, int64_t samples,
                        std::string_view bytes) {
    return (*store)->Put(device, key, samples, bytes, 2).status().code();
  };
  EXPECT_EQ(code("dev", "k", 1, "abd"), StatusCode::kAlreadyExists);  // key reused, other bytes
  EXPECT_EQ(code("", "k2", 1, "abc"), StatusCode::kInvalidArgument);
  EXPECT_EQ(code("dev", "", 1, "abc"), StatusCode::kInvalidArgument);
  EXPECT_EQ(code("dev", "a/b", 1, "abc"), StatusCode::kInvalidArgument);
  EXPECT_EQ(code("dev", std::string(129, 'k'), 1, "abc"), StatusCode::kInvalidArgument);
  EXPECT_EQ(code("dev", "k3", -1, "abc"), StatusCode::kInvalidArgument);
  EXPECT_EQ(code("dev", "k4", 1, ""), StatusCode::kInvalidArgument);
  EXPECT_EQ(code("dev", "k5", 1, "123456789"), StatusCode::kResourceExhausted);
  EXPECT_EQ(*(*store)->Count(), 1);
  EXPECT_EQ((*store)->List(0, 0).status().code(), StatusCode::kInvalidArgument);
  IngestOptions bad;
  bad.max_batch_bytes = 0;
  EXPECT_EQ(IngestStore::Open(path_, bad).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace hml::server

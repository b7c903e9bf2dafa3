// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/server/registry/sqlite_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace hml::server {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// A version of `name` with a distinct hash and blob per semver; the store assigns `version`.
ModelVersion MakeVersion(const std::string& name, const std::string& semver, char hash_digit = 'a',
                         int64_t created_unix = 1000) {
  ModelVersion v;
  v.name = name;
  v.semver = semver;
  v.sha256 = std::string(64, hash_digit);
  v.length = 1234;
  v.blob = name + "-" + semver + ".onnx";
  v.metadata_json = R"({"accuracy":9012,"min_sdk":"1.2.0"})";
  v.created_unix = created_unix;
  return v;
}

// All versions' semver labels, in the store's order.
std::vector<std::string> Semvers(Store& store, const std::string& name) {
  Result<std::vector<ModelVersion>> versions = store.ListVersions(name);
  EXPECT_TRUE(versions.ok()) << versions.status().ToString();
  std::vector<std::string> semvers;
  if (!versions.ok()) return semvers;
  for (const ModelVersion& v : *versions) semvers.push_back(v.semver);
  return semvers;
}

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string dir_template = ::testing::TempDir() + "/sqlite_store_test.XXXXXX";
    ASSERT_NE(mkdtemp(dir_template.data()), nullptr);
    dir_ = dir_template;
    path_ = dir_ + "/registry.db";
  }
  void TearDown() override {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  std::unique_ptr<Store> Open() {
    Result<std::unique_ptr<Store>> store = OpenSqliteStore(path_);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(*store) : nullptr;
  }

  // Runs `sql` on the database through a second connection, behind the store's back.
  void ExecRaw(const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    char* error = nullptr;
    const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
    EXPECT_EQ(rc, SQLITE_OK) << sql << ": " << (error != nullptr ? error : "");
    sqlite3_free(error);
    sqlite3_close(db);
  }

  // The integer result of a one-value query through a second connection.
  int64_t QueryInt(const std::string& sql) {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    sqlite3_stmt* stmt = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr), SQLITE_OK) << sql;
    EXPECT_EQ(sqlite3_step(stmt), SQLITE_ROW) << sql;
    const int64_t value = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return value;
  }

  std::string dir_;
  std::string path_;
};

TEST_F(SqliteStoreTest, VersionsAreMonotonicPerNameAndIndependentAcrossNames) {
  std::unique_ptr<Store> store = Open();
  ASSERT_NE(store, nullptr);
  ModelVersion first = MakeVersion("mnist-cnn", "1.0.0");
  first.version = 42;  // ignored: the store assigns numbers
  EXPECT_EQ(*store->AddVersion(first), 1);
  EXPECT_EQ(*store->AddVersion(MakeVersion("fashion_mlp.v2", "1.0.0")), 1);
  EXPECT_EQ(*store->AddVersion(MakeVersion("mnist-cnn", "1.1.0", 'b')), 2);
  EXPECT_EQ(*store->AddVersion(MakeVersion("mnist-cnn", "0.9.0-rc.1", 'c')), 3);
  EXPECT_EQ(*store->AddVersion(MakeVersion("fashion_mlp.v2", "1.0.1", 'd')), 2);

  // Ordered by version number, not by semver.
  EXPECT_THAT(Semvers(*store, "mnist-cnn"), ElementsAre("1.0.0", "1.1.0", "0.9.0-rc.1"));
  EXPECT_THAT(Semvers(*store, "fashion_mlp.v2"), ElementsAre("1.0.0", "1.0.1"));
  EXPECT_THAT(*store->ListModels(), ElementsAre("fashion_mlp.v2", "mnist-cnn"));

  Result<ModelVersion> v = store->GetVersion("mnist-cnn", 2);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->name, "mnist-cnn");
  EXPECT_EQ(v->version, 2);
  EXPECT_EQ(v->semver, "1.1.0");
  EXPECT_EQ(v->sha256, std::string(64, 'b'));
  EXPECT_EQ(v->length, 1234);
  EXPECT_EQ(v->blob, "mnist-cnn-1.1.0.onnx");
  EXPECT_EQ(v->metadata_json, R"({"accuracy":9012,"min_sdk":"1.2.0"})");
  EXPECT_EQ(v->created_unix, 1000);
}

TEST_F(SqliteStoreTest, TextIsStoredAsDataNotSql) {
  std::unique_ptr<Store> store = Open();
  ASSERT_NE(store, nullptr);
  ModelVersion v = MakeVersion("m", "1.0.0");
  // Quotes, SQL and an embedded NUL byte round-trip unchanged.
  v.metadata_json = R"({"note":"'); DROP TABLE versions; --"})";
  v.metadata_json.push_back('\0');
  v.metadata_json += "tail";
  v.blob = "it's a \"blob\"; DROP TABLE models";
  ASSERT_EQ(*store->AddVersion(v), 1);
  Result<ModelVersion> back = store->GetVersion("m", 1);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->metadata_json, v.metadata_json);
  EXPECT_EQ(back->blob, v.blob);
  EXPECT_THAT(*store->ListModels(), ElementsAre("m"));
}

TEST_F(SqliteStoreTest, EverythingSurvivesReopen) {
  {
    std::unique_ptr<Store> store = Open();
    ASSERT_NE(store, nullptr);
    ASSERT_EQ(*store->AddVersion(MakeVersion("m", "1.0.0")), 1);
    ASSERT_EQ(*store->AddVersion(MakeVersion("m", "1.1.0", 'b', 2000)), 2);
    ASSERT_TRUE(store->SetRollout("m", "stable", 1, 100, 10).ok());
    ASSERT_TRUE(store->SetRollout("m", "stable", 2, 12.5, 20).ok());
  }
  std::unique_ptr<Store> store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_THAT(Semvers(*store, "m"), ElementsAre("1.0.0", "1.1.0"));
  EXPECT_EQ(store->GetVersion("m", 2)->created_unix, 2000);
  Result<ChannelState> stable = store->GetChannel("m", "stable");
  ASSERT_TRUE(stable.ok()) << stable.status().ToString();
  EXPECT_EQ(stable->version, 2);
  EXPECT_EQ(stable->percent, 12.5);
  EXPECT_EQ(stable->previous_version, 1);
  EXPECT_EQ(stable->updated_unix, 20);
  // Numbering continues where it stopped.
  EXPECT_EQ(*store->AddVersion(MakeVersion("m", "2.0.0", 'c')), 3);
}

TEST_F(SqliteStoreTest, SecondConnectionSeesWritesOfTheFirst) {
  std::unique_ptr<Store> a = Open();
  std::unique_ptr<Store> b = Open();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_EQ(*a->AddVersion(MakeVersion("m", "1.0.0")), 1);
  EXPECT_EQ(*b->AddVersion(MakeVersion("m", "1.0.1", 'b')), 2);
  EXPECT_THAT(Semvers(*a, "m"), ElementsAre("1.0.0", "1.0.1"));
}

TEST_F(SqliteStoreTest, DuplicateSemverIsRejectedAndNothingIsStored) {
  std::unique_ptr<Store> store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_EQ(*store->AddVersion(MakeVersion("m", "1.0.0", 'a')), 1);

  Result<int64_t> dup = store->AddVersion(MakeVersion("m", "1.0.0", 'b'));
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.status().code(), StatusCode::kAlreadyExists) << dup.status().ToString();
  EXPECT_THAT(dup.status().message(), HasSubstr("'m'"));
  EXPECT_THAT(dup.status().message(), HasSubstr("'1.0.0'"));

  Result<std::vector<ModelVersion>> versions = store->ListVersions("m");
  ASSERT_TRUE(versions.ok());
  ASSERT_EQ(versions->size(), 1u);
  EXPECT_EQ((*versions)[0].sha256, std::string(64, 'a'));
  // The failed call bumped the model's counter inside its transaction; the rollback undid it.
  EXPECT_EQ(QueryInt("SELECT last_version FROM models WHERE name = 'm'"), 1);
  EXPECT_EQ(*store->AddVersion(MakeVersion("m", "1.0.1", 'c')), 2);
  // The same label in another model is no conflict.
  EXPECT_EQ(*store->AddVersion(MakeVersion("other", "1.0.0")), 1);
}

TEST_F(SqliteStoreTest, InvalidVersionsAreRejected) {
  std::unique_ptr<Store> store = Open();
  ASSERT_NE(store, nullptr);
  const auto expect_invalid = [&](const ModelVersion& v, const std::string& why) {
    Result<int64_t> r = store->AddVersion(v);
    ASSERT_FALSE(r.ok()) << why;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument)
        << why << ": " << r.status().ToString();
  };
  for (const std::string& name :
       {std::string(), std::string(129, 'a'), std::string("a/b"), std::string("a b"),
        std::string("caf\xc3\xa9"), std::string("x'--"), std::string("."), std::string("..")}) {
    expect_invalid(MakeVersion(name, "1.0.0"), "name '" + name + "'");
  }
  for (const std::string semver :
       {"", "1", "1.0", "1.0.0.0", "01.0.0", "1.00.0", "v1.0.0", "1.a.0", "1.0.0-", "1.0.0-rc..1",
        "1.0.0-rc.01", "1.0.0-rc_1", "1.0.0+build", "-1.0.0", "1..0"}) {
    expect_invalid(MakeVersion("m", semver), "semver '" + semver + "'");
  }
  ModelVersion v = MakeVersion("m", "1.0.0");
  for (const std::string& sha : {std::string(63, 'a'), std::string(65, 'a'), std::string(64, 'A'),
                                 std::string(64, 'g'), std::string()}) {
    v.sha256 = sha;
    expect_invalid(v, "sha256 '" + sha + "'");
  }
  v = MakeVersion("m", "1.0.0");
  for (const std::string blob : {"", ".", "..", "../m.onnx", "dir/m.onnx", "/m.onnx"}) {
    v.blob = blob;
    expect_invalid(v, "blob '" + blob + "'");
  }
  v = MakeVersion("m", "1.0.0");
  v.length = -1;
  expect_invalid(v, "length -1");

  EXPECT_THAT(*store->ListModels(), IsEmpty());
  // The edges of what is valid.
  EXPECT_EQ(*store->AddVersion(MakeVersion(std::string(128, 'z'), "0.0.0")), 1);
  EXPECT_EQ(*store->AddVersion(MakeVersion("A.b_c-9", "10.20.30-alpha-2.0a.7")), 1);
  EXPECT_EQ(*store->AddVersion(MakeVersion("A.b_c-9", "10.20.30")), 2);
}

TEST_F(SqliteStoreTest, RolloutAndRollbackTrackThePreviousVersion) {
  std::unique_ptr<Store> store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_EQ(*store->AddVersion(MakeVersion("m", "1.0.0", 'a')), 1);
  ASSERT_EQ(*store->AddVersion(MakeVersion("m", "1.1.0", 'b')), 2);
  ASSERT_EQ(*store->AddVersion(MakeVersion("m", "1.2.0", 'c')), 3);
  const auto expect_channel = [&](int64_t version, double percent, int64_t previous,
                                  int64_t updated) {
    Result<ChannelState> c = store->GetChannel("m", "stable");
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    EXPECT_EQ(c->name, "m");
    EXPECT_EQ(c->channel, "stable");
    EXPECT_EQ(c->version, version);
    EXPECT_EQ(c->percent, percent);
    EXPECT_EQ(c->previous_version, previous);
    EXPECT_EQ(c->updated_unix, updated);
  };

  ASSERT_TRUE(store->SetRollout("m", "stable", 1, 100, 10).ok());
  expect_channel(1, 100, 0, 10);
  ASSERT_TRUE(store->SetRollout("m", "stable", 2, 5, 20).ok());
  expect_channel(2, 5, 1, 20);
  // Only the percent changes: the previous version stays.
  ASSERT_TRUE(store->SetRollout("m", "stable", 2, 50, 30).ok());
  expect_channel(2, 50, 1, 30);
  ASSERT_TRUE(store->SetRollout("m", "stable", 3, 1, 40).ok());
  expect_channel(3, 1, 2, 40);

  ASSERT_TRUE(store->Rollback("m", "stable", 50).ok());
  expect_channel(2, 100, 0, 50);
  // One step of history: a second rollback has nowhere to go and changes nothing.
  Status again = store->Rollback("m", "stable", 60);
  EXPECT_EQ(again.code(), StatusCode::kFailedPrecondition) << again.ToString();
  EXPECT_THAT(again.message(), HasSubstr("'stable'"));
  expect_channel(2, 100, 0, 50);

  // Channels are independent of each other.
  ASSERT_TRUE(store->SetRollout("m", "beta", 3, 100, 70).ok());
  Result<std::vector<ChannelState>> channels = store->ListChannels("m");
  ASSERT_TRUE(channels.ok()) << channels.status().ToString();
  ASSERT_EQ(channels->size(), 2u);
  EXPECT_EQ((*channels)[0].channel, "beta");
  EXPECT_EQ((*channels)[0].version, 3);
  EXPECT_EQ((*channels)[1].channel, "stable");
  EXPECT_EQ((*channels)[1].version, 2);

  // The rolled-back state is what a restarted server sees.
  store.reset();
  store = Open();
  ASSERT_NE(store, nullptr);
  expect_channel(2, 100, 0, 50);
  EXPECT_EQ(store->Rollback("m", "stable", 80).code(), StatusCode::kFailedPrecondition);
  // Moving on from the rolled-back state records it as previous again.
  ASSERT_TRUE(store->SetRollout("m", "stable", 3, 10, 90).ok());
  expect_channel(3, 10, 2, 90);
}

TEST_F(SqliteStoreTest, RollbackWithoutPreviousVersionFails) {
  std::unique_ptr<Store> store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_EQ(*store->AddVersion(MakeVersion("m", "1.0.0")), 1);
  ASSERT_TRUE(store->SetRollout("m", "stable", 1, 30, 10).ok());
  Status s = store->Rollback("m", "stable", 20);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.ToString();
  Result<ChannelState> c = store->GetChannel("m", "stable");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->version, 1);
  EXPECT_EQ(c->percent, 30);
  EXPECT_EQ(c->updated_unix, 10);
}

TEST_F(SqliteStoreTest, InvalidRolloutsAreRejected) {
  std::unique_ptr<Store> store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_EQ(*store->AddVersion(MakeVersion("m", "1.0.0")), 1);
  for (double percent : {0.0, -1.0, 100.5, std::nan(""), HUGE_VAL}) {
    Status s = store->SetRollout("m", "stable", 1, percent, 10);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << percent << ": " << s.ToString();
  }
  for (const std::string channel : {"", "a/b", "..", "st able"}) {
    Status s = store->SetRollout("m", channel, 1, 50, 10);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << channel << ": " << s.ToString();
  }
  EXPECT_THAT(*store->ListChannels("m"), IsEmpty());
  // The edges of what is valid.
  EXPECT_TRUE(store->SetRollout("m", "stable", 1, 0.01, 10).ok());
  EXPECT_TRUE(store->SetRollout("m", "stable", 1, 100, 10).ok());
}

TEST_F(SqliteStoreTest, UnknownModelsVersionsAndChannelsAreNotFound) {
  std::unique_ptr<Store> store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_EQ(*store->AddVersion(MakeVersion("m", "1.0.0")), 1);
  const auto expect_not_found = [](const Status& s, const std::string& object) {
    EXPECT_EQ(s.code(), StatusCode::kNotFound) << s.ToString();
    EXPECT_THAT(std::string(s.message()), HasSubstr(object));
  };
  expect_not_found(store->GetVersion("nope", 1).status(), "'nope'");
  expect_not_found(store->GetVersion("m", 2).status(), "version 2");
  expect_not_found(store->GetVersion("m", 0).status(), "version 0");
  expect_not_found(store->ListVersions("nope").status(), "'nope'");
  expect_not_found(store->ListChannels("nope").status(), "'nope'");
  expect_not_found(store->GetChannel("nope", "stable").status(), "'nope'");
  expect_not_found(store->GetChannel("m", "stable").status(), "'stable'");
  expect_not_found(store->SetRollout("nope", "stable", 1, 100, 10), "'nope'");
  expect_not_found(store->SetRollout("m", "stable", 7, 100, 10), "version 7");
  expect_not_found(store->Rollback("nope", "stable", 10), "'nope'");
  expect_not_found(store->Rollback("m", "stable", 10), "'stable'");
  // A known model without channels is an empty list, not an error.
  Result<std::vector<ChannelState>> channels = store->ListChannels("m");
  ASSERT_TRUE(channels.ok()) << channels.status().ToString();
  EXPECT_THAT(*channels, IsEmpty());
}

TEST_F(SqliteStoreTest, GarbageFileIsDataLoss) {
  {
    FILE* f = std::fopen(path_.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    std::string garbage;
    for (int i = 0; i < 4096; ++i) garbage.push_back(static_cast<char>((i * 131 + 7) & 0xff));
    ASSERT_EQ(std::fwrite(garbage.data(), 1, garbage.size(), f), garbage.size());
    std::fclose(f);
  }
  Result<std::unique_ptr<Store>> store = OpenSqliteStore(path_);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kDataLoss) << store.status().ToString();
  EXPECT_THAT(store.status().message(), HasSubstr(path_));
}

TEST_F(SqliteStoreTest, MissingDirectoryIsNotFound) {
  Result<std::unique_ptr<Store>> store = OpenSqliteStore(dir_ + "/no/such/dir/registry.db");
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kNotFound) << store.status().ToString();
  EXPECT_THAT(store.status().message(), HasSubstr("/no/such/dir/registry.db"));
}

TEST_F(SqliteStoreTest, NewerSchemaVersionIsRefused) {
  {
    std::unique_ptr<Store> store = Open();
    ASSERT_NE(store, nullptr);
    ASSERT_EQ(*store->AddVersion(MakeVersion("m", "1.0.0")), 1);
  }
  EXPECT_EQ(QueryInt("SELECT version FROM schema_version"), kSqliteStoreSchemaVersion);
  const int64_t newer = kSqliteStoreSchemaVersion + 1;
  ExecRaw("UPDATE schema_version SET version = " + std::to_string(newer));
  Result<std::unique_ptr<Store>> store = OpenSqliteStore(path_);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kFailedPrecondition) << store.status().ToString();
  EXPECT_THAT(store.status().message(), HasSubstr("schema version " + std::to_string(newer)));
  EXPECT_THAT(store.status().message(),
              HasSubstr("reads version " + std::to_string(kSqliteStoreSchemaVersion)));
  EXPECT_THAT(store.status().message(), HasSubstr(path_));
  // Refusing did not touch the file.
  EXPECT_EQ(QueryInt("SELECT version FROM schema_version"), newer);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM versions"), 1);
}

// Triggers added behind the store's back make a chosen statement fail inside a transaction,
// after earlier statements of the same transaction succeeded.
TEST_F(SqliteStoreTest, FailureInsideATransactionLeavesTheStoreUnchanged) {
  std::unique_ptr<Store> store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_EQ(*store->AddVersion(MakeVersion("m", "1.0.0", 'a')), 1);
  ASSERT_EQ(*store->AddVersion(MakeVersion("m", "1.1.0", 'b')), 2);
  ASSERT_TRUE(store->SetRollout("m", "stable", 1, 100, 10).ok());
  ASSERT_TRUE(store->SetRollout("m", "stable", 2, 37, 20).ok());
  ExecRaw(
      "CREATE TRIGGER fail_version BEFORE INSERT ON versions WHEN NEW.semver = '6.6.6' "
      "BEGIN SELECT RAISE(ABORT, 'injected failure'); END;"
      "CREATE TRIGGER fail_channel BEFORE UPDATE ON channels WHEN NEW.percent = 42 "
      "OR (NEW.percent = 100 AND OLD.percent = 37) "
      "BEGIN SELECT RAISE(ABORT, 'injected failure'); END;");

  // AddVersion: the model's counter moves (and a new model's row is created), then the version
  // insert fails.
  Result<int64_t> added = store->AddVersion(MakeVersion("m", "6.6.6", 'c'));
  ASSERT_FALSE(added.ok());
  EXPECT_THAT(added.status().message(), HasSubstr("injected failure"));
  Result<int64_t> fresh = store->AddVersion(MakeVersion("fresh", "6.6.6"));
  ASSERT_FALSE(fresh.ok());
  EXPECT_THAT(*store->ListModels(), ElementsAre("m"));
  EXPECT_THAT(Semvers(*store, "m"), ElementsAre("1.0.0", "1.1.0"));
  EXPECT_EQ(QueryInt("SELECT last_version FROM models WHERE name = 'm'"), 2);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM models"), 1);

  // SetRollout and Rollback: the channel row is read, then its update fails.
  Status set = store->SetRollout("m", "stable", 1, 42, 30);
  EXPECT_THAT(set.message(), HasSubstr("injected failure"));
  Status back = store->Rollback("m", "stable", 40);
  EXPECT_THAT(back.message(), HasSubstr("injected failure"));
  Result<ChannelState> c = store->GetChannel("m", "stable");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->version, 2);
  EXPECT_EQ(c->percent, 37);
  EXPECT_EQ(c->previous_version, 1);
  EXPECT_EQ(c->updated_unix, 20);

  // The connection is usable afterwards: no transaction was left open.
  EXPECT_EQ(*store->AddVersion(MakeVersion("m", "1.2.0", 'd')), 3);
  EXPECT_EQ(store->Rollback("m", "stable", 50).code(), StatusCode::kInvalidArgument);
  ExecRaw("DROP TRIGGER fail_channel");
  EXPECT_TRUE(store->Rollback("m", "stable", 50).ok());
  EXPECT_EQ(store->GetChannel("m", "stable")->version, 1);
}

TEST_F(SqliteStoreTest, WriterBlockedBeyondBusyTimeoutIsUnavailable) {
  std::unique_ptr<Store> store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_EQ(*store->AddVersion(MakeVersion("m", "1.0.0")), 1);
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  // Waits kSqliteBusyTimeoutMs for the other connection's write lock, then gives up.
  Result<int64_t> blocked = store->AddVersion(MakeVersion("m", "1.1.0"));
  ASSERT_FALSE(blocked.ok());
  EXPECT_EQ(blocked.status().code(), StatusCode::kUnavailable) << blocked.status().ToString();
  // Readers are not blocked by a writer in WAL mode.
  EXPECT_THAT(Semvers(*store, "m"), ElementsAre("1.0.0"));
  ASSERT_EQ(sqlite3_exec(other, "COMMIT", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(other);
  EXPECT_EQ(*store->AddVersion(MakeVersion("m", "1.1.0")), 2);
}

TEST_F(SqliteStoreTest, ConcurrentAddsGetDistinctVersions) {
  std::unique_ptr<Store> store = Open();
  ASSERT_NE(store, nullptr);
  constexpr int kThreads = 4;
  constexpr int kPerThread = 25;
  std::vector<std::vector<int64_t>> got(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        Result<int64_t> v =
            store->AddVersion(MakeVersion("m", std::to_string(t) + "." + std::to_string(i) + ".0"));
        if (v.ok()) got[static_cast<size_t>(t)].push_back(*v);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  std::set<int64_t> all;
  for (const std::vector<int64_t>& g : got) {
    EXPECT_EQ(g.size(), static_cast<size_t>(kPerThread));
    // Each thread sees its own numbers increase.
    for (size_t i = 1; i < g.size(); ++i) EXPECT_LT(g[i - 1], g[i]);
    all.insert(g.begin(), g.end());
  }
  ASSERT_EQ(all.size(), static_cast<size_t>(kThreads * kPerThread));
  EXPECT_EQ(*all.begin(), 1);
  EXPECT_EQ(*all.rbegin(), kThreads * kPerThread);
}

}  // namespace
}  // namespace hml::server

// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/sdk/store/encrypted_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "src/storage/sqlite_db.h"
#include "tests/sdk/store/store_test_util.h"

namespace hml::sdk {
namespace {

using ::hml::sdk::testing::KeyOf;
using ::hml::sdk::testing::RawQuery;
using ::hml::sdk::testing::RawSql;
using ::hml::sdk::testing::TempFolder;
using ::testing::HasSubstr;

// A provider with several keys; the current one can change (rotation).
class MapKeyProvider final : public KeyProvider {
 public:
  uint32_t CurrentKeyId() override { return current; }
  Result<StoreKey> GetKey(uint32_t key_id) override {
    auto it = keys.find(key_id);
    if (it == keys.end()) return NotFoundError("no key " + std::to_string(key_id));
    return it->second;
  }
  uint32_t current = 1;
  std::map<uint32_t, StoreKey> keys;
};

class EncryptedStoreTest : public ::testing::Test {
 protected:
  EncryptedStoreTest() : folder_("encrypted_store_test"), provider_(KeyOf('k')) {
    path_ = folder_.path() + "/store.db";
  }

  EncryptedStoreOptions Options(KeyProvider* keys, const std::string& device = "device-A") {
    EncryptedStoreOptions options;
    options.keys = keys;
    options.device_id = device;
    options.busy_timeout_ms = 0;
    return options;
  }

  std::unique_ptr<EncryptedStore> OpenStore(const std::string& path, KeyProvider* keys,
                                            const std::string& device = "device-A") {
    Result<std::unique_ptr<EncryptedStore>> store =
        EncryptedStore::Open(path, Options(keys, device));
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(*store) : nullptr;
  }
  std::unique_ptr<EncryptedStore> OpenStore() { return OpenStore(path_, &provider_); }

  TempFolder folder_;
  std::string path_;
  FixedKeyProvider provider_;
};

TEST_F(EncryptedStoreTest, RoundTripsRecordsAndPages) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  const std::string binary("a\0b\xff", 4);
  const std::vector<std::string> payloads = {"first", "", binary, std::string(5000, 'x')};
  std::vector<int64_t> ids;
  for (const std::string& payload : payloads) {
    Result<int64_t> id = store->Put("labels", payload);
    ASSERT_TRUE(id.ok()) << id.status().ToString();
    ids.push_back(*id);
  }
  EXPECT_EQ(ids, (std::vector<int64_t>{1, 2, 3, 4}));
  for (size_t i = 0; i < ids.size(); ++i) {
    Result<std::string> got = store->Get("labels", ids[i]);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(*got, payloads[i]);
  }
  EXPECT_EQ(*store->Count("labels"), 4);
  EXPECT_EQ(*store->Count("telemetry"), 0);
  // A record of another table is not visible under this one.
  ASSERT_TRUE(store->Put("telemetry", "t").ok());
  EXPECT_EQ(store->Get("labels", 5).status().code(), StatusCode::kNotFound);
  EXPECT_THAT(std::string(store->Get("labels", 5).status().message()),
              HasSubstr("table 'labels' row 5"));

  // Pages of two.
  Result<std::vector<StoredRecord>> page = store->Scan("labels", 0, 2);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  ASSERT_EQ(page->size(), 2u);
  EXPECT_EQ((*page)[0].id, 1);
  EXPECT_EQ((*page)[1].payload, "");
  page = store->Scan("labels", (*page)[1].id, 2);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->size(), 2u);
  EXPECT_EQ((*page)[0].payload, binary);
  EXPECT_EQ((*page)[1].id, 4);
  EXPECT_TRUE(store->Scan("labels", 4, 2)->empty());

  // Delete-after-ack; a repeated delete is harmless.
  const int64_t acked[] = {1, 3, 99};
  EXPECT_EQ(*store->Delete("labels", acked), 2);
  EXPECT_EQ(*store->Delete("labels", acked), 0);
  EXPECT_EQ(*store->Count("labels"), 2);
  EXPECT_EQ(store->Stats("labels")->bytes, 5000);
  EXPECT_EQ(store->Get("labels", 1).status().code(), StatusCode::kNotFound);

  // Ids are never reused, also after reopening.
  store.reset();
  store = OpenStore();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(*store->Get("labels", 4), std::string(5000, 'x'));
  EXPECT_EQ(*store->Put("labels", "after reopen"), 6);
}

TEST_F(EncryptedStoreTest, PutManyIsAllOrNothing) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  const std::string big((size_t{1} << 20) + 1, 'b');
  const std::string_view payloads[] = {"ok", big};
  Result<std::vector<int64_t>> ids = store->PutMany("labels", payloads);
  EXPECT_EQ(ids.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(ids.status().message()), HasSubstr("max_record_bytes"));
  EXPECT_EQ(*store->Count("labels"), 0);
  const std::string_view good[] = {"a", "b", "c"};
  ids = store->PutMany("labels", good);
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(*ids, (std::vector<int64_t>{1, 2, 3}));
}

TEST_F(EncryptedStoreTest, RejectsBadTableNamesWithoutEchoingThem) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  for (std::string_view table : {std::string_view(""), std::string_view("has space"),
                                 std::string_view("x'; DROP TABLE records; --")}) {
    Result<int64_t> id = store->Put(table, "payload");
    EXPECT_EQ(id.status().code(), StatusCode::kInvalidArgument) << table;
  }
  Result<int64_t> id = store->Put("secret user text", "payload");
  EXPECT_THAT(std::string(id.status().message()), ::testing::Not(HasSubstr("secret")));
}

TEST_F(EncryptedStoreTest, FailedWriteChangesNothing) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Put("labels", "one").ok());
  // Another connection holds the write lock: the Put fails (busy timeout 0) and leaves the
  // store as it was.
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  Result<int64_t> id = store->Put("labels", "two");
  EXPECT_EQ(id.status().code(), StatusCode::kUnavailable) << id.status().ToString();
  EXPECT_THAT(std::string(id.status().message()), HasSubstr("table 'labels'"));
  ASSERT_EQ(sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(other);
  EXPECT_EQ(*store->Count("labels"), 1);
  EXPECT_EQ(*store->Put("labels", "two"), 2);
  EXPECT_EQ(*store->Get("labels", 2), "two");
}

TEST_F(EncryptedStoreTest, SwappedCiphertextsFailNamingTheRow) {
  {
    auto store = OpenStore();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->Put("labels", "alice: cat").ok());
    ASSERT_TRUE(store->Put("labels", "bob: dog").ok());
    ASSERT_TRUE(store->Put("labels", "carol: bird").ok());
  }
  const std::string sealed_1 = RawQuery(path_, "SELECT hex(sealed) FROM records WHERE id = 1");
  ASSERT_EQ(RawSql(path_,
                   "CREATE TEMP TABLE old AS SELECT id, sealed FROM records WHERE id IN (1, 2); "
                   "UPDATE records SET sealed = (SELECT sealed FROM old WHERE old.id = 3 - "
                   "records.id) WHERE id IN (1, 2)"),
            "");
  ASSERT_EQ(RawQuery(path_, "SELECT hex(sealed) FROM records WHERE id = 2"), sealed_1);
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  for (int64_t id : {1, 2}) {
    Result<std::string> got = store->Get("labels", id);
    EXPECT_EQ(got.status().code(), StatusCode::kDataLoss) << got.status().ToString();
    EXPECT_THAT(std::string(got.status().message()),
                HasSubstr("table 'labels' row " + std::to_string(id) +
                          ": record does not "
                          "authenticate"));
  }
  // The untouched row still opens; a scan stops at the first bad row and names it.
  EXPECT_EQ(*store->Get("labels", 3), "carol: bird");
  Result<std::vector<StoredRecord>> scan = store->Scan("labels", 0, 10);
  EXPECT_EQ(scan.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(std::string(scan.status().message()), HasSubstr("table 'labels' row 1"));
}

TEST_F(EncryptedStoreTest, RowMovedToAnotherTableFails) {
  {
    auto store = OpenStore();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->Put("labels", "alice: cat").ok());
  }
  ASSERT_EQ(RawSql(path_, "UPDATE records SET tbl = 'telemetry' WHERE id = 1"), "");
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Result<std::string> got = store->Get("telemetry", 1);
  EXPECT_EQ(got.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(std::string(got.status().message()), HasSubstr("table 'telemetry' row 1"));
}

TEST_F(EncryptedStoreTest, RowMovedToAnotherIdFails) {
  {
    auto store = OpenStore();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->Put("labels", "alice: cat").ok());
  }
  ASSERT_EQ(RawSql(path_, "UPDATE records SET id = 7 WHERE id = 1"), "");
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->Get("labels", 7).status().code(), StatusCode::kDataLoss);
}

TEST_F(EncryptedStoreTest, CiphertextFromAnotherDeviceFails) {
  const std::string other_path = folder_.path() + "/other.db";
  {
    auto a = OpenStore(path_, &provider_, "device-A");
    auto b = OpenStore(other_path, &provider_, "device-B");
    ASSERT_NE(a, nullptr);
    ASSERT_NE(b, nullptr);
    ASSERT_EQ(*a->Put("labels", "from A"), 1);
    ASSERT_EQ(*b->Put("labels", "from B"), 1);
  }
  // Same key, same table, same row id: only the device id differs.
  ASSERT_EQ(RawSql(other_path, "ATTACH '" + path_ +
                                   "' AS a; UPDATE main.records SET sealed = "
                                   "(SELECT sealed FROM a.records WHERE id = 1) WHERE id = 1"),
            "");
  auto b = OpenStore(other_path, &provider_, "device-B");
  ASSERT_NE(b, nullptr);
  Result<std::string> got = b->Get("labels", 1);
  EXPECT_EQ(got.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(std::string(got.status().message()), HasSubstr("table 'labels' row 1"));
}

TEST_F(EncryptedStoreTest, TamperedByteFails) {
  {
    auto store = OpenStore();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->Put("labels", "alice: cat").ok());
  }
  // Flip the last byte (the tag) of the sealed payload.
  ASSERT_EQ(RawSql(path_,
                   "UPDATE records SET sealed = substr(sealed, 1, length(sealed) - 1) || "
                   "CASE WHEN substr(sealed, -1) = x'00' THEN x'01' ELSE x'00' END"),
            "");
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->Get("labels", 1).status().code(), StatusCode::kDataLoss);
}

TEST_F(EncryptedStoreTest, OpeningAsAnotherDeviceFails) {
  ASSERT_NE(OpenStore(), nullptr);
  Result<std::unique_ptr<EncryptedStore>> store =
      EncryptedStore::Open(path_, Options(&provider_, "device-B"));
  EXPECT_EQ(store.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(store.status().message()),
              HasSubstr("belongs to device 'device-A', opened as device 'device-B'"));
}

TEST_F(EncryptedStoreTest, WrongKeyIsPermissionDenied) {
  {
    auto store = OpenStore();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->Put("labels", "alice: cat").ok());
  }
  FixedKeyProvider wrong(KeyOf('w'));
  Result<std::unique_ptr<EncryptedStore>> store = EncryptedStore::Open(path_, Options(&wrong));
  EXPECT_EQ(store.status().code(), StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("key id 1"));
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("does not open this store"));
  // The record is untouched: the right key still reads it.
  auto right = OpenStore();
  ASSERT_NE(right, nullptr);
  EXPECT_EQ(*right->Get("labels", 1), "alice: cat");
}

TEST_F(EncryptedStoreTest, WrongKeyWithoutKeyCheckIsDataLossPerRecord) {
  {
    auto store = OpenStore();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->Put("labels", "alice: cat").ok());
  }
  // Without the key check (removed by an attacker, or never written), the wrong key still
  // never yields plaintext: every record fails to authenticate.
  ASSERT_EQ(RawSql(path_, "DELETE FROM keys"), "");
  MapKeyProvider wrong;
  wrong.current = 2;  // a new key id: Open writes a check for id 2, not for id 1
  wrong.keys.emplace(1, KeyOf('w'));
  wrong.keys.emplace(2, KeyOf('v'));
  auto store = OpenStore(path_, &wrong);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->Get("labels", 1).status().code(), StatusCode::kDataLoss);
}

TEST_F(EncryptedStoreTest, RotatedKeysReadOldRecordsAndStoreKeyIds) {
  MapKeyProvider keys;
  keys.keys.emplace(1, KeyOf('1'));
  keys.keys.emplace(2, KeyOf('2'));
  auto store = OpenStore(path_, &keys);
  ASSERT_NE(store, nullptr);
  ASSERT_EQ(*store->Put("labels", "under key 1"), 1);
  keys.current = 2;
  ASSERT_EQ(*store->Put("labels", "under key 2"), 2);
  EXPECT_EQ(*store->Get("labels", 1), "under key 1");
  EXPECT_EQ(*store->Get("labels", 2), "under key 2");
  EXPECT_EQ(RawQuery(path_, "SELECT group_concat(key_id) FROM records ORDER BY id"), "1,2");
  store.reset();
  // A provider that no longer serves key 1: records under key 2 read, key 1's fail clearly.
  keys.keys.erase(1);
  store = OpenStore(path_, &keys);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(*store->Get("labels", 2), "under key 2");
  Result<std::string> old = store->Get("labels", 1);
  EXPECT_EQ(old.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(std::string(old.status().message()), HasSubstr("table 'labels' row 1"));
  EXPECT_THAT(std::string(old.status().message()), HasSubstr("key id 1"));
  // And a wrong key 2 is refused at open.
  keys.keys.erase(2);
  keys.keys.emplace(2, KeyOf('x'));
  EXPECT_EQ(EncryptedStore::Open(path_, Options(&keys)).status().code(),
            StatusCode::kPermissionDenied);
}

TEST_F(EncryptedStoreTest, ValidatesOptions) {
  EncryptedStoreOptions options = Options(nullptr);
  EXPECT_EQ(EncryptedStore::Open(path_, options).status().code(), StatusCode::kInvalidArgument);
  options = Options(&provider_, "");
  EXPECT_EQ(EncryptedStore::Open(path_, options).status().code(), StatusCode::kInvalidArgument);
  options = Options(&provider_);
  options.max_record_bytes = 0;
  EXPECT_EQ(EncryptedStore::Open(path_, options).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(StoreKey::FromBytes("short").status().code(), StatusCode::kInvalidArgument);
}

TEST_F(EncryptedStoreTest, FilesAreOwnerOnly) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Put("labels", "x").ok());
  for (const auto& entry : std::filesystem::directory_iterator(folder_.path())) {
    const auto perms = entry.status().permissions();
    EXPECT_EQ(perms & (std::filesystem::perms::group_all | std::filesystem::perms::others_all),
              std::filesystem::perms::none)
        << entry.path();
  }
}

// ---- Canary: no plaintext anywhere under the store folder.

std::string Hex(std::string_view bytes, const char* digits) {
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 15]);
  }
  return out;
}

std::string Base64(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t v =
        (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8) | uint8_t(bytes[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out.push_back(kAlphabet[(v >> s) & 63]);
  }
  return out;  // the tail is not needed: callers use the middle only
}

// The forms of `canary` to look for: itself, hex in both cases, and base64 at each of the
// three alignments it could start at (the middle part, which does not depend on neighbours).
std::vector<std::string> CanaryForms(const std::string& canary) {
  std::vector<std::string> forms = {canary, Hex(canary, "0123456789abcdef"),
                                    Hex(canary, "0123456789ABCDEF")};
  for (int shift = 0; shift < 3; ++shift) {
    const std::string encoded = Base64(std::string(shift, 'x') + canary);
    forms.push_back(encoded.substr(4, encoded.size() - 8));
  }
  return forms;
}

// Every file under `folder` (recursively) whose bytes contain one of `forms`: "file: form".
std::vector<std::string> FilesContaining(const std::string& folder,
                                         const std::vector<std::string>& forms, int* files_read) {
  std::vector<std::string> hits;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(folder)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    ++*files_read;
    for (const std::string& form : forms) {
      if (bytes.find(form) != std::string::npos)
        hits.push_back(entry.path().string() + ": " + form);
    }
  }
  return hits;
}

constexpr char kCanary[] = "CANARY-5e1f0a9c-user-typed-this";

TEST(CanaryScanTest, FindsPlaintextWhenItIsThere) {
  // The scanner itself: a plain SQLite file holding the canary is caught (also in hex form).
  TempFolder folder("canary_control");
  storage::SqliteOptions options;
  auto db = storage::SqliteDb::Open(folder.path() + "/plain.db", options);
  ASSERT_TRUE(db.ok());
  ASSERT_TRUE(
      db->Exec("CREATE TABLE t (x); INSERT INTO t VALUES ('CANARY-5e1f0a9c-user-typed-this'), "
               "(hex('CANARY-5e1f0a9c-user-typed-this'))",
               "fill")
          .ok());
  int files = 0;
  const auto hits = FilesContaining(folder.path(), CanaryForms(kCanary), &files);
  EXPECT_GE(files, 1);
  EXPECT_GE(hits.size(), 2u);
}

TEST_F(EncryptedStoreTest, CanaryNeverAppearsInAnyFile) {
  const std::vector<std::string> forms = CanaryForms(kCanary);
  int files_while_open = 0, files_after_close = 0;
  bool saw_wal = false;
  {
    auto store = OpenStore();
    ASSERT_NE(store, nullptr);
    for (int i = 0; i < 300; ++i) {
      const std::string payload =
          "label " + std::to_string(i) + " " + kCanary + " " + Hex(kCanary, "0123456789abcdef");
      ASSERT_TRUE(store->Put(i % 2 ? "labels" : "inputs", payload).ok());
    }
    std::vector<int64_t> ids;
    for (int64_t id = 1; id <= 100; ++id) ids.push_back(id);
    ASSERT_TRUE(store->Delete("labels", ids).ok());
    ASSERT_EQ(store->Scan("inputs", 0, 1000)->size(), 150u);
    saw_wal = std::filesystem::exists(path_ + "-wal");
    const auto hits = FilesContaining(folder_.path(), forms, &files_while_open);
    EXPECT_TRUE(hits.empty()) << ::testing::PrintToString(hits);
  }
  EXPECT_TRUE(saw_wal);
  EXPECT_GE(files_while_open, 3);  // db, -wal, -shm
  const auto hits = FilesContaining(folder_.path(), forms, &files_after_close);
  EXPECT_TRUE(hits.empty()) << ::testing::PrintToString(hits);
  EXPECT_GE(files_after_close, 1);
}

}  // namespace
}  // namespace hml::sdk

namespace hml::sdk {
namespace {

// The store's keys from the app's keystore through the platform hooks.
TEST(PlatformKeyProviderTest, KeysComeFromThePlatformKeystore) {
  TempFolder folder("platform_key_provider_test");
  StaticPlatform platform;
  PlatformKeyProvider keys(platform);
  EncryptedStoreOptions options;
  options.keys = &keys;
  options.device_id = "device-A";
  // No key in the keystore yet (e.g. before the app provisioned one): the store refuses to open.
  EXPECT_EQ(EncryptedStore::Open(folder.path() + "/store.db", options).status().code(),
            StatusCode::kNotFound);
  ASSERT_TRUE(platform.set_store_key(1, std::string(32, 'k')).ok());
  {
    auto store = EncryptedStore::Open(folder.path() + "/store.db", options);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    ASSERT_TRUE((*store)->Put("labels", "a label").ok());
  }
  // Another key under the same id is a wrong key.
  ASSERT_TRUE(platform.set_store_key(1, std::string(32, 'x')).ok());
  EXPECT_EQ(EncryptedStore::Open(folder.path() + "/store.db", options).status().code(),
            StatusCode::kPermissionDenied);
  ASSERT_TRUE(platform.set_store_key(1, std::string(32, 'k')).ok());
  auto store = EncryptedStore::Open(folder.path() + "/store.db", options);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_EQ(*(*store)->Get("labels", 1), "a label");
}

}  // namespace
}  // namespace hml::sdk

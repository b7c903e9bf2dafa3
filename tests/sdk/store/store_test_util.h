// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Helpers shared by the encrypted store tests: a temporary folder, keys, and raw SQL on the
// store file (to tamper with it the way an attacker with file access would).
#ifndef HML_TESTS_SDK_STORE_STORE_TEST_UTIL_H_
#define HML_TESTS_SDK_STORE_STORE_TEST_UTIL_H_

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <filesystem>
#include <string>
#include <system_error>

#include "src/sdk/store/encrypted_store.h"

namespace hml::sdk::testing {

// A fresh folder under the test temp dir, removed when the helper is destroyed.
class TempFolder {
 public:
  explicit TempFolder(const std::string& name) {
    std::string pattern = ::testing::TempDir() + "/" + name + ".XXXXXX";
    if (mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~TempFolder() {
    std::error_code ignored;
    if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A 32-byte key whose bytes all equal `fill`.
inline StoreKey KeyOf(char fill) { return *StoreKey::FromBytes(std::string(kStoreKeyBytes, fill)); }

// Runs `sql` on the file `path` through its own raw connection; returns SQLite's message on
// failure, "" on success.
inline std::string RawSql(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  std::string error;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
    error = db ? sqlite3_errmsg(db) : "cannot open";
  } else {
    char* message = nullptr;
    if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &message) != SQLITE_OK) {
      error = message ? message : "exec failed";
      sqlite3_free(message);
    }
  }
  sqlite3_close_v2(db);
  return error;
}

// The first column of the first row of `sql` as text ("" when no row).
inline std::string RawQuery(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  std::string out;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW) {
      const unsigned char* text = sqlite3_column_text(stmt, 0);
      if (text != nullptr) out = reinterpret_cast<const char*>(text);
    }
    sqlite3_finalize(stmt);
  }
  sqlite3_close_v2(db);
  return out;
}

}  // namespace hml::sdk::testing

#endif  // HML_TESTS_SDK_STORE_STORE_TEST_UTIL_H_

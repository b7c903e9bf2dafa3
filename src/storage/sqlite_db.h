// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The SQLite layer every hybridml store is built on: one connection (SqliteDb) opened the same
// way everywhere, RAII for statements, results and transactions, and the one translation of
// SQLite result codes into hml::Status.
//
// A store (the registry's metadata, auth.db, later the device SDK's local store) opens a
// SqliteDb with SqliteOptions, calls EnsureSchema once, prepares its statements with Prepare and
// runs them with Bind*/Step/Run, grouping mutations with InTransaction. SQL stays in the stores;
// this layer knows nothing of their tables.
//
// Errors: every failure is "<what>: <SQLite's message> (<label> '<path>'<reason>)", where `what`
// is the caller's name for the operation and `label` says which database it is ("registry
// database"). Codes: SQLITE_BUSY/LOCKED -> kUnavailable (retryable); a UNIQUE or PRIMARY KEY
// violation -> kAlreadyExists, any other constraint -> kInvalidArgument; CORRUPT/NOTADB ->
// kDataLoss; CANTOPEN -> kNotFound; READONLY/PERM/AUTH -> kPermissionDenied; FULL/NOMEM ->
// kResourceExhausted; anything else kInternal.
//
// Thread safety: none. A SqliteDb is opened with SQLITE_OPEN_NOMUTEX; its owner serializes all
// use of the connection and of the statements prepared on it (the stores hold a mutex).
//
// Builds without exceptions: the device SDK links it (hml_storage is a device target).
#ifndef HML_SRC_STORAGE_SQLITE_DB_H_
#define HML_SRC_STORAGE_SQLITE_DB_H_

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "hml/status.h"

namespace hml::storage {

// Finalizes a prepared statement. Statements should be finalized before their SqliteDb is
// destroyed (a store declares them after its SqliteDb member); one that is not keeps the
// connection open until it is (sqlite3_close_v2).
struct StatementDeleter {
  void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
};
using StatementPtr = std::unique_ptr<sqlite3_stmt, StatementDeleter>;

// Resets a (cached) statement and clears its bindings when a use of it ends, however it ends.
// Without the reset, a SELECT that was not stepped to its end keeps its read transaction, and
// with it the WAL snapshot, open on the connection.
class ScopedReset {
 public:
  explicit ScopedReset(sqlite3_stmt* stmt) : stmt_(stmt) {}
  ScopedReset(const ScopedReset&) = delete;
  ScopedReset& operator=(const ScopedReset&) = delete;
  ~ScopedReset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

 private:
  sqlite3_stmt* stmt_;
};

// Column `column` of the current row as bytes; "" for NULL.
std::string ColumnText(sqlite3_stmt* stmt, int column);
std::string ColumnBlob(sqlite3_stmt* stmt, int column);
// True when column `column` of the current row is NULL.
bool ColumnIsNull(sqlite3_stmt* stmt, int column);

// The translation of a SQLite result code `rc` (primary or extended) into a Status, as described
// at the top of this file. `db` supplies SQLite's message (sqlite3_errmsg) and may be null, in
// which case sqlite3_errstr(rc) is used. Read the message before anything else runs on the
// connection: a ROLLBACK would replace it.
Status SqliteStatus(sqlite3* db, int rc, std::string_view label, std::string_view path,
                    std::string_view what);

struct SqliteOptions {
  // Names the database in error messages, followed by its path: "registry database '/x.db'".
  // Default: "database". Must not be empty.
  std::string label = "database";
  // How long a statement waits for another connection's lock before failing with kUnavailable.
  // Default: 5000. Must be >= 0 (0: fail at once).
  int busy_timeout_ms = 5000;
  // PRAGMA foreign_keys: enforce REFERENCES clauses. Default: false (SQLite's default).
  bool foreign_keys = false;
  // PRAGMA secure_delete: freed pages are zeroed, so deleted or rewritten rows (secrets, token
  // hashes) leave no old bytes in the file. Default: false (SQLite's default).
  bool secure_delete = false;
  // When the file does not exist yet, it is created with this mode (e.g. 0600) before SQLite
  // writes anything, and the WAL and shared-memory files SQLite creates next copy it. Default: 0,
  // which leaves creation to SQLite (0644 less the umask).
  uint32_t create_mode = 0;

  Status Validate() const;
};

// One open SQLite connection in WAL mode (readers are not blocked by a writer), with extended
// result codes, the busy timeout, and cached BEGIN IMMEDIATE / COMMIT / ROLLBACK statements.
// Move-only; the destructor closes the connection.
class SqliteDb {
 public:
  // Opens (creating if absent) the database file `path` and configures the connection.
  // Errors: kInvalidArgument for bad options; kNotFound when the file cannot be opened or
  // created (e.g. a missing directory); kDataLoss when it is not a SQLite database or is
  // corrupt (the first read, enabling WAL, finds out); kFailedPrecondition when WAL mode cannot
  // be enabled; kUnavailable when another process holds a lock beyond the busy timeout; the
  // errno translation when create_mode cannot be applied.
  static Result<SqliteDb> Open(const std::string& path, const SqliteOptions& options);

  SqliteDb(SqliteDb&& other) noexcept;
  SqliteDb& operator=(SqliteDb&& other) noexcept;
  SqliteDb(const SqliteDb&) = delete;
  SqliteDb& operator=(const SqliteDb&) = delete;
  ~SqliteDb();

  sqlite3* handle() const { return db_; }
  const std::string& path() const { return path_; }
  const std::string& label() const { return label_; }

  // SqliteStatus for this connection.
  Status Error(int rc, std::string_view what) const;

  // Runs constant SQL without parameters (pragmas, schema); may hold several statements.
  Status Exec(const char* sql, std::string_view what);
  // Prepares `sql` for repeated use into `*out`. The error names the SQL.
  Status Prepare(const char* sql, StatementPtr* out);
  Status Prepare(const std::string& sql, StatementPtr* out) { return Prepare(sql.c_str(), out); }

  // Parameters are numbered from 1. Text and blobs are copied. An empty `text` binds '' even
  // when its data pointer is null (a null pointer would bind SQL NULL).
  Status BindText(sqlite3_stmt* stmt, int index, std::string_view text, std::string_view what);
  Status BindBlob(sqlite3_stmt* stmt, int index, std::string_view bytes, std::string_view what);
  Status BindInt64(sqlite3_stmt* stmt, int index, int64_t value, std::string_view what);
  Status BindDouble(sqlite3_stmt* stmt, int index, double value, std::string_view what);

  // Steps `stmt`: true for a row, false when done, the translated error otherwise. The caller
  // resets the statement (ScopedReset).
  Result<bool> Step(sqlite3_stmt* stmt, std::string_view what);
  // Steps a statement that returns no rows to its end and resets it; a row is kInternal.
  Status Run(sqlite3_stmt* stmt, std::string_view what);
  // Steps `stmt` to its end and returns `read_row(stmt)` for each row, in order; the first error
  // instead of the rows. The caller binds and resets the statement (ScopedReset).
  template <typename ReadRow>
  Result<std::vector<std::invoke_result_t<ReadRow&, sqlite3_stmt*>>> ReadAll(sqlite3_stmt* stmt,
                                                                             std::string_view what,
                                                                             ReadRow&& read_row);

  // True while a transaction is open on the connection.
  bool InTransactionNow() const { return sqlite3_get_autocommit(db_) == 0; }

  // Runs `body` (a callable returning Status) inside BEGIN IMMEDIATE ... COMMIT. Any error, from
  // BEGIN, `body` or COMMIT, is returned after the transaction is rolled back; a transaction is
  // never left open. The errors of BEGIN and COMMIT read "<what>: begin transaction: ..." and
  // "<what>: commit: ...".
  template <typename Body>
  Status InTransaction(std::string_view what, Body&& body);

 private:
  SqliteDb(sqlite3* db, std::string path, std::string label)
      : db_(db), path_(std::move(path)), label_(std::move(label)) {}
  Status Configure(const SqliteOptions& options);
  Status Begin(std::string_view what);
  Status Commit(std::string_view what);
  // Rolls back an open transaction. Errors are not reported: the caller already holds the error
  // that matters, and SQLite rolls back by itself after some errors (SQLITE_FULL, SQLITE_IOERR,
  // SQLITE_BUSY, SQLITE_NOMEM), after which ROLLBACK fails with "no transaction is active".
  void RollbackQuietly();
  void Close();

  sqlite3* db_ = nullptr;
  std::string path_;
  std::string label_;
  // Declared after db_ but finalized explicitly in Close(), before the connection closes.
  StatementPtr begin_, commit_, rollback_;
};

template <typename Body>
Status SqliteDb::InTransaction(std::string_view what, Body&& body) {
  HML_RETURN_IF_ERROR(Begin(what));
  Status status = body();
  if (status.ok()) status = Commit(what);
  if (!status.ok()) RollbackQuietly();
  return status;
}

template <typename ReadRow>
Result<std::vector<std::invoke_result_t<ReadRow&, sqlite3_stmt*>>> SqliteDb::ReadAll(
    sqlite3_stmt* stmt, std::string_view what, ReadRow&& read_row) {
  std::vector<std::invoke_result_t<ReadRow&, sqlite3_stmt*>> rows;
  while (true) {
    HML_ASSIGN_OR_RETURN(const bool row, Step(stmt, what));
    if (!row) return rows;
    rows.push_back(read_row(stmt));
  }
}

// Brings the database to schema version `version`: creates the table schema_version (one row,
// id 1) if missing; on a new database runs `create_sql` (the whole schema) and records
// `version`; on an existing one checks the recorded version. All in one IMMEDIATE transaction,
// so two processes creating the same file do not race.
// Errors: kFailedPrecondition when the file has another version (the message names the file,
// both versions, and whether it is newer than this build); the translated SQLite error when
// `create_sql` fails.
Status EnsureSchema(SqliteDb& db, int64_t version, const char* create_sql);

}  // namespace hml::storage

#endif  // HML_SRC_STORAGE_SQLITE_DB_H_

// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/storage/sqlite_db.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "src/base/errno_status.h"

namespace hml::storage {

std::string ColumnText(sqlite3_stmt* stmt, int column) {
  const unsigned char* text = sqlite3_column_text(stmt, column);
  if (text == nullptr) return std::string();
  return std::string(reinterpret_cast<const char*>(text),
                     static_cast<size_t>(sqlite3_column_bytes(stmt, column)));
}

std::string ColumnBlob(sqlite3_stmt* stmt, int column) {
  const void* blob = sqlite3_column_blob(stmt, column);
  if (blob == nullptr) return std::string();
  return std::string(static_cast<const char*>(blob),
                     static_cast<size_t>(sqlite3_column_bytes(stmt, column)));
}

bool ColumnIsNull(sqlite3_stmt* stmt, int column) {
  return sqlite3_column_type(stmt, column) == SQLITE_NULL;
}

Status SqliteStatus(sqlite3* db, int rc, std::string_view label, std::string_view path,
                    std::string_view what) {
  const std::string detail = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  const std::string head = std::string(what) + ": " + detail + " (" + std::string(label) + " '" +
                           std::string(path) + "'";
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return UnavailableError(head + " is locked; retry)");
    case SQLITE_CONSTRAINT:
      // A unique key says the object exists already; every other constraint (CHECK, NOT NULL,
      // foreign key, a trigger's RAISE) says the input is not acceptable.
      if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
        return AlreadyExistsError(head + ")");
      }
      return InvalidArgumentError(head + ")");
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return DataLossError(head + " is corrupt or not a SQLite database)");
    case SQLITE_CANTOPEN:
      return NotFoundError(head + " cannot be opened)");
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
      return PermissionDeniedError(head + ")");
    case SQLITE_FULL:
    case SQLITE_NOMEM:
      return ResourceExhaustedError(head + ")");
    default:
      return InternalError(head + ", " + sqlite3_errstr(rc) + ")");
  }
}

Status SqliteOptions::Validate() const {
  if (label.empty()) return InvalidArgumentError("SqliteOptions: label is empty");
  if (busy_timeout_ms < 0) {
    return InvalidArgumentError("SqliteOptions: busy_timeout_ms " +
                                std::to_string(busy_timeout_ms) + " is negative");
  }
  if ((create_mode & ~07777u) != 0) {
    return InvalidArgumentError("SqliteOptions: create_mode " + std::to_string(create_mode) +
                                " has bits outside 07777");
  }
  return Status::Ok();
}

Result<SqliteDb> SqliteDb::Open(const std::string& path, const SqliteOptions& options) {
  HML_RETURN_IF_ERROR(options.Validate());
  struct stat before {};
  const bool creating = ::stat(path.c_str(), &before) != 0 && errno == ENOENT;
  sqlite3* handle = nullptr;
  // NOMUTEX: the owner serializes all use of the connection (see the file comment).
  const int rc = sqlite3_open_v2(
      path.c_str(), &handle,
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
      nullptr);
  // sqlite3_open_v2 usually returns a handle even on failure; it holds the message, and the
  // SqliteDb closes it.
  SqliteDb db(handle, path, options.label);
  if (rc != SQLITE_OK) return db.Error(rc, "open");
  // SQLite creates the file lazily, on the first write (in Configure); create it now so its
  // mode is set before any byte is written.
  if (creating && options.create_mode != 0) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, options.create_mode);
    if (fd >= 0) ::close(fd);
    if (::chmod(path.c_str(), options.create_mode) != 0) {
      const int err = errno;
      char mode[16];
      std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(options.create_mode));
      return ErrnoStatus(err, options.label + " '" + path + "': set mode " + mode);
    }
  }
  HML_RETURN_IF_ERROR(db.Configure(options));
  return db;
}

SqliteDb::SqliteDb(SqliteDb&& other) noexcept
    : db_(std::exchange(other.db_, nullptr)),
      path_(std::move(other.path_)),
      label_(std::move(other.label_)),
      begin_(std::move(other.begin_)),
      commit_(std::move(other.commit_)),
      rollback_(std::move(other.rollback_)) {}

SqliteDb& SqliteDb::operator=(SqliteDb&& other) noexcept {
  if (this != &other) {
    Close();
    db_ = std::exchange(other.db_, nullptr);
    path_ = std::move(other.path_);
    label_ = std::move(other.label_);
    begin_ = std::move(other.begin_);
    commit_ = std::move(other.commit_);
    rollback_ = std::move(other.rollback_);
  }
  return *this;
}

SqliteDb::~SqliteDb() { Close(); }

void SqliteDb::Close() {
  begin_.reset();
  commit_.reset();
  rollback_.reset();
  // close_v2: if a store still holds a statement, the connection closes when it is finalized.
  if (db_ != nullptr) sqlite3_close_v2(db_);
  db_ = nullptr;
}

Status SqliteDb::Error(int rc, std::string_view what) const {
  return SqliteStatus(db_, rc, label_, path_, what);
}

Status SqliteDb::Configure(const SqliteOptions& options) {
  // Extended codes tell a unique-key violation (kAlreadyExists) from other constraints.
  sqlite3_extended_result_codes(db_, 1);
  const int rc = sqlite3_busy_timeout(db_, options.busy_timeout_ms);
  if (rc != SQLITE_OK) return Error(rc, "set busy timeout");

  // The first statement that reads the file: a garbage file fails here with SQLITE_NOTADB.
  std::string mode;
  {
    StatementPtr journal;
    HML_RETURN_IF_ERROR(Prepare("PRAGMA journal_mode = WAL", &journal));
    HML_ASSIGN_OR_RETURN(const bool has_mode, Step(journal.get(), "enable WAL"));
    if (has_mode) mode = ColumnText(journal.get(), 0);
  }
  if (mode != "wal") {
    return FailedPreconditionError(label_ + " '" + path_ +
                                   "': cannot enable WAL journal mode (mode is '" + mode + "')");
  }
  if (options.foreign_keys) {
    HML_RETURN_IF_ERROR(Exec("PRAGMA foreign_keys = ON", "enable foreign keys"));
  }
  if (options.secure_delete) {
    HML_RETURN_IF_ERROR(Exec("PRAGMA secure_delete = ON", "enable secure_delete"));
  }
  HML_RETURN_IF_ERROR(Prepare("BEGIN IMMEDIATE", &begin_));
  HML_RETURN_IF_ERROR(Prepare("COMMIT", &commit_));
  HML_RETURN_IF_ERROR(Prepare("ROLLBACK", &rollback_));
  return Status::Ok();
}

Status SqliteDb::Exec(const char* sql, std::string_view what) {
  const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return Error(rc, what);
  return Status::Ok();
}

Status SqliteDb::Prepare(const char* sql, StatementPtr* out) {
  sqlite3_stmt* stmt = nullptr;
  const int rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return Error(rc, std::string("prepare '") + sql + "'");
  }
  out->reset(stmt);
  return Status::Ok();
}

Status SqliteDb::BindText(sqlite3_stmt* stmt, int index, std::string_view text,
                          std::string_view what) {
  const char* data = text.data() != nullptr ? text.data() : "";
  const int rc = sqlite3_bind_text64(stmt, index, data, text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  if (rc != SQLITE_OK) return Error(rc, what);
  return Status::Ok();
}

Status SqliteDb::BindBlob(sqlite3_stmt* stmt, int index, std::string_view bytes,
                          std::string_view what) {
  // Same reason as BindText: a null pointer would bind NULL instead of a zero-length blob.
  const char* data = bytes.data() != nullptr ? bytes.data() : "";
  const int rc = sqlite3_bind_blob64(stmt, index, data, bytes.size(), SQLITE_TRANSIENT);
  if (rc != SQLITE_OK) return Error(rc, what);
  return Status::Ok();
}

Status SqliteDb::BindInt64(sqlite3_stmt* stmt, int index, int64_t value, std::string_view what) {
  const int rc = sqlite3_bind_int64(stmt, index, value);
  if (rc != SQLITE_OK) return Error(rc, what);
  return Status::Ok();
}

Status SqliteDb::BindDouble(sqlite3_stmt* stmt, int index, double value, std::string_view what) {
  const int rc = sqlite3_bind_double(stmt, index, value);
  if (rc != SQLITE_OK) return Error(rc, what);
  return Status::Ok();
}

Result<bool> SqliteDb::Step(sqlite3_stmt* stmt, std::string_view what) {
  const int rc = sqlite3_step(stmt);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return Error(rc, what);
}

Status SqliteDb::Run(sqlite3_stmt* stmt, std::string_view what) {
  ScopedReset reset(stmt);
  HML_ASSIGN_OR_RETURN(const bool row, Step(stmt, what));
  if (row) return InternalError(std::string(what) + ": the statement returned a row");
  return Status::Ok();
}

Status SqliteDb::Begin(std::string_view what) {
  return Run(begin_.get(), std::string(what) + ": begin transaction");
}

Status SqliteDb::Commit(std::string_view what) {
  return Run(commit_.get(), std::string(what) + ": commit");
}

void SqliteDb::RollbackQuietly() {
  if (!InTransactionNow()) return;
  ScopedReset reset(rollback_.get());
  sqlite3_step(rollback_.get());
}

Status EnsureSchema(SqliteDb& db, int64_t version, const char* create_sql) {
  return db.InTransaction("set up schema", [&]() -> Status {
    HML_RETURN_IF_ERROR(
        db.Exec("CREATE TABLE IF NOT EXISTS schema_version ("
                "id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)",
                "create table schema_version"));
    StatementPtr select;
    HML_RETURN_IF_ERROR(db.Prepare("SELECT version FROM schema_version WHERE id = 1", &select));
    HML_ASSIGN_OR_RETURN(const bool has_version, db.Step(select.get(), "read schema_version"));
    if (has_version) {
      const int64_t found = sqlite3_column_int64(select.get(), 0);
      if (found == version) return Status::Ok();
      const std::string versions = db.label() + " '" + db.path() + "' has schema version " +
                                   std::to_string(found) + ", this build reads version " +
                                   std::to_string(version);
      if (found > version) {
        return FailedPreconditionError(versions + ": it was written by a newer build");
      }
      return FailedPreconditionError(versions + ": no migration from that version exists");
    }
    select.reset();
    const std::string what = "create schema version " + std::to_string(version);
    HML_RETURN_IF_ERROR(db.Exec(create_sql, what));
    StatementPtr insert;
    HML_RETURN_IF_ERROR(
        db.Prepare("INSERT INTO schema_version (id, version) VALUES (1, ?1)", &insert));
    HML_RETURN_IF_ERROR(db.BindInt64(insert.get(), 1, version, "write schema_version"));
    return db.Run(insert.get(), "write schema_version");
  });
}

}  // namespace hml::storage

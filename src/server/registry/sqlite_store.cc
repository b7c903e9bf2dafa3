// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/server/registry/sqlite_store.h"

#include <sqlite3.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hml::server {
namespace {

// Schema version 1. `models` holds the last version number handed out per model, so numbers
// stay monotonic and are never reused even if a version row were ever removed. previous_version
// is NULL when there is none (the struct's 0); as a nullable foreign key it must still name an
// existing version when set. The CHECK constraints repeat the validation done in C++, so a bug
// there cannot store an invalid row.
constexpr char kSchemaV1[] = R"sql(
CREATE TABLE models (
  name TEXT PRIMARY KEY NOT NULL,
  last_version INTEGER NOT NULL CHECK (last_version >= 1)
);
CREATE TABLE versions (
  name TEXT NOT NULL REFERENCES models (name),
  version INTEGER NOT NULL CHECK (version >= 1),
  semver TEXT NOT NULL,
  sha256 TEXT NOT NULL CHECK (length(sha256) = 64),
  length INTEGER NOT NULL CHECK (length >= 0),
  blob TEXT NOT NULL,
  metadata_json TEXT NOT NULL,
  created_unix INTEGER NOT NULL,
  PRIMARY KEY (name, version),
  UNIQUE (name, semver)
);
CREATE TABLE channels (
  name TEXT NOT NULL,
  channel TEXT NOT NULL,
  version INTEGER NOT NULL,
  percent REAL NOT NULL CHECK (percent > 0 AND percent <= 100),
  previous_version INTEGER,
  updated_unix INTEGER NOT NULL,
  PRIMARY KEY (name, channel),
  FOREIGN KEY (name, version) REFERENCES versions (name, version),
  FOREIGN KEY (name, previous_version) REFERENCES versions (name, version)
);
)sql";

constexpr size_t kMaxNameLength = 128;
constexpr size_t kMaxSemverLength = 128;

// The one translation of SQLite result codes into a Status. `rc` may be an extended code.
// `what` says which operation failed on which object; the message adds SQLite's own text, which
// must be read before anything else runs on the connection (a ROLLBACK would overwrite it).
Status SqliteStatus(sqlite3* db, int rc, const std::string& path, std::string_view what) {
  const std::string detail = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  const std::string msg = std::string(what) + ": " + detail;
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return UnavailableError(msg + " (registry database '" + path + "' is locked; retry)");
    case SQLITE_CONSTRAINT:
      // A unique key says the object exists already; every other constraint (CHECK, NOT NULL,
      // foreign key, a trigger) says the input is not acceptable.
      if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
        return AlreadyExistsError(msg);
      }
      return InvalidArgumentError(msg);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return DataLossError(msg + " (registry database '" + path +
                           "' is corrupt or not a SQLite database)");
    case SQLITE_CANTOPEN:
      return NotFoundError(msg + " (cannot open registry database '" + path + "')");
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
      return PermissionDeniedError(msg + " (registry database '" + path + "')");
    case SQLITE_FULL:
    case SQLITE_NOMEM:
      return ResourceExhaustedError(msg + " (registry database '" + path + "')");
    default:
      return InternalError(msg + " (registry database '" + path + "', " + sqlite3_errstr(rc) + ")");
  }
}

bool IsNameChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

// Model and channel names: [A-Za-z0-9._-], 1 to 128 characters. "." and ".." are refused too:
// names end up in URLs and paths, where those two mean something else.
Status ValidateName(std::string_view kind, std::string_view name) {
  if (name.empty() || name.size() > kMaxNameLength) {
    return InvalidArgumentError(std::string(kind) + " name '" + std::string(name) + "' has " +
                                std::to_string(name.size()) + " characters; it must have 1 to 128");
  }
  for (char c : name) {
    if (!IsNameChar(c)) {
      return InvalidArgumentError(std::string(kind) + " name '" + std::string(name) +
                                  "' contains a character outside [A-Za-z0-9._-]");
    }
  }
  if (name == "." || name == "..") {
    return InvalidArgumentError(std::string(kind) + " name '" + std::string(name) +
                                "' is reserved");
  }
  return Status::Ok();
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// A semver numeric identifier: digits without a leading zero (semver.org 2.0.0, item 2).
bool IsNumericIdentifier(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!IsDigit(c)) return false;
  }
  return s.size() == 1 || s[0] != '0';
}

// A pre-release identifier: [0-9A-Za-z-]+, and without a leading zero when all digits (item 9).
bool IsPrereleaseIdentifier(std::string_view s) {
  if (s.empty()) return false;
  bool all_digits = true;
  for (char c : s) {
    const bool alnum = IsDigit(c) || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
    if (!alnum && c != '-') return false;
    all_digits = all_digits && IsDigit(c);
  }
  return !all_digits || IsNumericIdentifier(s);
}

// Splits `s` at '.'; an empty part stays (and fails the identifier checks).
std::vector<std::string_view> SplitDots(std::string_view s) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    const size_t dot = s.find('.', start);
    if (dot == std::string_view::npos) {
      parts.push_back(s.substr(start));
      return parts;
    }
    parts.push_back(s.substr(start, dot - start));
    start = dot + 1;
  }
}

// MAJOR.MINOR.PATCH[-pre]; build metadata (+...) is not accepted.
Status ValidateSemver(std::string_view model, std::string_view semver) {
  const auto invalid = [&](std::string_view reason) {
    return InvalidArgumentError("model '" + std::string(model) + "': semver '" +
                                std::string(semver) + "' " + std::string(reason));
  };
  if (semver.size() > kMaxSemverLength) return invalid("is longer than 128 characters");
  const size_t dash = semver.find('-');
  const std::string_view core = semver.substr(0, dash);
  const std::vector<std::string_view> numbers = SplitDots(core);
  if (numbers.size() != 3) return invalid("is not MAJOR.MINOR.PATCH[-prerelease]");
  for (std::string_view n : numbers) {
    if (!IsNumericIdentifier(n)) {
      return invalid("has a version number that is not digits without a leading zero");
    }
  }
  if (dash != std::string_view::npos) {
    for (std::string_view id : SplitDots(semver.substr(dash + 1))) {
      if (!IsPrereleaseIdentifier(id)) {
        return invalid("has an empty or invalid pre-release identifier");
      }
    }
  }
  return Status::Ok();
}

Status ValidateSha256(std::string_view model, std::string_view sha256) {
  bool ok = sha256.size() == 64;
  for (char c : sha256) ok = ok && (IsDigit(c) || (c >= 'a' && c <= 'f'));
  if (!ok) {
    return InvalidArgumentError("model '" + std::string(model) + "': sha256 '" +
                                std::string(sha256) + "' is not 64 lowercase hex digits");
  }
  return Status::Ok();
}

// The blob is looked up in the blob directory by this name, so it must not leave it.
Status ValidateBlob(std::string_view model, std::string_view blob) {
  const bool ok = !blob.empty() && blob != "." && blob != ".." &&
                  blob.find('/') == std::string_view::npos &&
                  blob.find('\0') == std::string_view::npos;
  if (!ok) {
    return InvalidArgumentError("model '" + std::string(model) + "': blob '" + std::string(blob) +
                                "' is not a plain file name");
  }
  return Status::Ok();
}

struct StatementDeleter {
  void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
};
using StatementPtr = std::unique_ptr<sqlite3_stmt, StatementDeleter>;

// Resets a cached statement and clears its bindings when a use of it ends, however it ends. An
// unreset SELECT would keep its read transaction open on the connection.
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

std::string ColumnText(sqlite3_stmt* stmt, int column) {
  const unsigned char* text = sqlite3_column_text(stmt, column);
  if (text == nullptr) return std::string();
  return std::string(reinterpret_cast<const char*>(text),
                     static_cast<size_t>(sqlite3_column_bytes(stmt, column)));
}

// Columns: name, version, semver, sha256, length, blob, metadata_json, created_unix.
constexpr char kVersionColumns[] =
    "name, version, semver, sha256, length, blob, metadata_json, created_unix";

ModelVersion ReadVersionRow(sqlite3_stmt* stmt) {
  ModelVersion v;
  v.name = ColumnText(stmt, 0);
  v.version = sqlite3_column_int64(stmt, 1);
  v.semver = ColumnText(stmt, 2);
  v.sha256 = ColumnText(stmt, 3);
  v.length = sqlite3_column_int64(stmt, 4);
  v.blob = ColumnText(stmt, 5);
  v.metadata_json = ColumnText(stmt, 6);
  v.created_unix = sqlite3_column_int64(stmt, 7);
  return v;
}

// Columns: name, channel, version, percent, previous_version, updated_unix. A NULL
// previous_version reads as 0 (none).
constexpr char kChannelColumns[] =
    "name, channel, version, percent, previous_version, updated_unix";

ChannelState ReadChannelRow(sqlite3_stmt* stmt) {
  ChannelState c;
  c.name = ColumnText(stmt, 0);
  c.channel = ColumnText(stmt, 1);
  c.version = sqlite3_column_int64(stmt, 2);
  c.percent = sqlite3_column_double(stmt, 3);
  c.previous_version = sqlite3_column_int64(stmt, 4);
  c.updated_unix = sqlite3_column_int64(stmt, 5);
  return c;
}

class SqliteStore final : public Store {
 public:
  // Takes ownership of `db`.
  SqliteStore(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;
  ~SqliteStore() override {
    // Statements must be finalized before the connection closes.
    for (StatementPtr* stmt : AllStatements()) stmt->reset();
    sqlite3_close(db_);
  }

  // Sets up the connection and the schema, then prepares every statement.
  Status Init();

  Result<int64_t> AddVersion(ModelVersion v) override;
  Result<ModelVersion> GetVersion(std::string_view name, int64_t version) override;
  Result<std::vector<ModelVersion>> ListVersions(std::string_view name) override;
  Result<std::vector<std::string>> ListModels() override;
  Status SetRollout(std::string_view name, std::string_view channel, int64_t version,
                    double percent, int64_t now_unix) override;
  Status Rollback(std::string_view name, std::string_view channel, int64_t now_unix) override;
  Result<ChannelState> GetChannel(std::string_view name, std::string_view channel) override;
  Result<std::vector<ChannelState>> ListChannels(std::string_view name) override;

 private:
  std::vector<StatementPtr*> AllStatements() {
    return {&begin_,          &commit_,      &rollback_,      &bump_model_,
            &insert_version_, &get_version_, &list_versions_, &list_models_,
            &model_exists_,   &get_channel_, &list_channels_, &upsert_channel_};
  }

  Status Error(int rc, std::string_view what) const { return SqliteStatus(db_, rc, path_, what); }

  // Runs constant SQL (pragmas, schema) that has no parameters.
  Status Exec(const char* sql, std::string_view what);
  Status Prepare(const char* sql, StatementPtr* out);
  Status BindText(sqlite3_stmt* stmt, int index, std::string_view text, std::string_view what);
  Status BindInt64(sqlite3_stmt* stmt, int index, int64_t value, std::string_view what);
  Status BindDouble(sqlite3_stmt* stmt, int index, double value, std::string_view what);
  // Steps `stmt`: true for a row, false when done, an error otherwise.
  Result<bool> Step(sqlite3_stmt* stmt, std::string_view what);
  // Steps a statement that returns no rows.
  Status Run(sqlite3_stmt* stmt, std::string_view what);

  // Runs `body` (returning Status) in BEGIN IMMEDIATE ... COMMIT. Any error, from `body` or from
  // COMMIT, rolls the whole transaction back before it is returned.
  template <typename Body>
  Status InTransaction(std::string_view what, Body&& body);
  void RollbackQuietly();

  // Schema setup, in its own transaction so two processes creating the file do not race.
  Status InitSchema();

  // Both REQUIRE mu_ held.
  Status CheckModelExists(std::string_view name);
  Result<bool> ReadChannel(std::string_view name, std::string_view channel, ChannelState* out);
  Status CheckVersionExists(std::string_view name, int64_t version);

  // Guards the connection and the statements: SQLite connections and statements must not be
  // used from two threads at once, and a transaction spans several calls on them.
  std::mutex mu_;
  sqlite3* const db_;
  const std::string path_;

  StatementPtr begin_, commit_, rollback_;
  StatementPtr bump_model_, insert_version_, get_version_, list_versions_, list_models_;
  StatementPtr model_exists_, get_channel_, list_channels_, upsert_channel_;
};

Status SqliteStore::Exec(const char* sql, std::string_view what) {
  const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return Error(rc, what);
  return Status::Ok();
}

Status SqliteStore::Prepare(const char* sql, StatementPtr* out) {
  sqlite3_stmt* stmt = nullptr;
  const int rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return Error(rc, std::string("prepare '") + sql + "'");
  }
  out->reset(stmt);
  return Status::Ok();
}

Status SqliteStore::BindText(sqlite3_stmt* stmt, int index, std::string_view text,
                             std::string_view what) {
  // A null data pointer would bind SQL NULL; an empty string_view may carry one.
  const char* data = text.data() != nullptr ? text.data() : "";
  const int rc = sqlite3_bind_text64(stmt, index, data, text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  if (rc != SQLITE_OK) return Error(rc, what);
  return Status::Ok();
}

Status SqliteStore::BindInt64(sqlite3_stmt* stmt, int index, int64_t value, std::string_view what) {
  const int rc = sqlite3_bind_int64(stmt, index, value);
  if (rc != SQLITE_OK) return Error(rc, what);
  return Status::Ok();
}

Status SqliteStore::BindDouble(sqlite3_stmt* stmt, int index, double value, std::string_view what) {
  const int rc = sqlite3_bind_double(stmt, index, value);
  if (rc != SQLITE_OK) return Error(rc, what);
  return Status::Ok();
}

Result<bool> SqliteStore::Step(sqlite3_stmt* stmt, std::string_view what) {
  const int rc = sqlite3_step(stmt);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return Error(rc, what);
}

Status SqliteStore::Run(sqlite3_stmt* stmt, std::string_view what) {
  ScopedReset reset(stmt);
  HML_ASSIGN_OR_RETURN(const bool row, Step(stmt, what));
  if (row) return InternalError(std::string(what) + ": the statement returned a row");
  return Status::Ok();
}

void SqliteStore::RollbackQuietly() {
  // Some errors (SQLITE_FULL, SQLITE_IOERR, SQLITE_BUSY, SQLITE_NOMEM) make SQLite roll back by
  // itself; ROLLBACK would then fail with "no transaction is active". The caller already holds
  // the error that matters, so a failing ROLLBACK is not reported over it.
  if (sqlite3_get_autocommit(db_) != 0) return;
  ScopedReset reset(rollback_.get());
  sqlite3_step(rollback_.get());
}

template <typename Body>
Status SqliteStore::InTransaction(std::string_view what, Body&& body) {
  HML_RETURN_IF_ERROR(Run(begin_.get(), std::string(what) + ": begin transaction"));
  Status status = body();
  if (status.ok()) status = Run(commit_.get(), std::string(what) + ": commit");
  if (!status.ok()) RollbackQuietly();
  return status;
}

Status SqliteStore::InitSchema() {
  // Statements are not prepared yet (they need the schema), so the transaction runs through
  // constant SQL here.
  HML_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE", "begin schema transaction"));
  const auto body = [&]() -> Status {
    HML_RETURN_IF_ERROR(
        Exec("CREATE TABLE IF NOT EXISTS schema_version ("
             "id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)",
             "create table schema_version"));
    StatementPtr select;
    HML_RETURN_IF_ERROR(Prepare("SELECT version FROM schema_version WHERE id = 1", &select));
    HML_ASSIGN_OR_RETURN(const bool has_version, Step(select.get(), "read schema_version"));
    if (has_version) {
      const int64_t version = sqlite3_column_int64(select.get(), 0);
      if (version == kSqliteStoreSchemaVersion) return Status::Ok();
      const std::string versions = "registry database '" + path_ + "' has schema version " +
                                   std::to_string(version) + ", this build reads version " +
                                   std::to_string(kSqliteStoreSchemaVersion);
      if (version > kSqliteStoreSchemaVersion) {
        return FailedPreconditionError(versions + ": it was written by a newer build");
      }
      return FailedPreconditionError(versions + ": no migration from that version exists");
    }
    select.reset();
    HML_RETURN_IF_ERROR(Exec(kSchemaV1, "create schema version 1"));
    StatementPtr insert;
    HML_RETURN_IF_ERROR(
        Prepare("INSERT INTO schema_version (id, version) VALUES (1, ?1)", &insert));
    HML_RETURN_IF_ERROR(
        BindInt64(insert.get(), 1, kSqliteStoreSchemaVersion, "write schema_version"));
    return Run(insert.get(), "write schema_version");
  };
  Status status = body();
  if (status.ok()) status = Exec("COMMIT", "commit schema transaction");
  if (!status.ok() && sqlite3_get_autocommit(db_) == 0) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  return status;
}

Status SqliteStore::Init() {
  std::lock_guard<std::mutex> lock(mu_);
  // Extended codes tell a unique-key violation (kAlreadyExists) from other constraints.
  sqlite3_extended_result_codes(db_, 1);
  int rc = sqlite3_busy_timeout(db_, kSqliteBusyTimeoutMs);
  if (rc != SQLITE_OK) return Error(rc, "set busy timeout");

  // The first statement that reads the file: a garbage file fails here with SQLITE_NOTADB.
  StatementPtr journal;
  HML_RETURN_IF_ERROR(Prepare("PRAGMA journal_mode = WAL", &journal));
  HML_ASSIGN_OR_RETURN(const bool has_mode, Step(journal.get(), "enable WAL"));
  const std::string mode = has_mode ? ColumnText(journal.get(), 0) : std::string();
  journal.reset();
  if (mode != "wal") {
    return FailedPreconditionError("registry database '" + path_ +
                                   "': cannot enable WAL journal mode (mode is '" + mode + "')");
  }
  HML_RETURN_IF_ERROR(Exec("PRAGMA foreign_keys = ON", "enable foreign keys"));
  HML_RETURN_IF_ERROR(InitSchema());

  HML_RETURN_IF_ERROR(Prepare("BEGIN IMMEDIATE", &begin_));
  HML_RETURN_IF_ERROR(Prepare("COMMIT", &commit_));
  HML_RETURN_IF_ERROR(Prepare("ROLLBACK", &rollback_));
  // Creates the model on its first version; returns the number for the version being added.
  HML_RETURN_IF_ERROR(
      Prepare("INSERT INTO models (name, last_version) VALUES (?1, 1) "
              "ON CONFLICT (name) DO UPDATE SET last_version = last_version + 1 "
              "RETURNING last_version",
              &bump_model_));
  HML_RETURN_IF_ERROR(Prepare((std::string("INSERT INTO versions (") + kVersionColumns +
                               ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")
                                  .c_str(),
                              &insert_version_));
  HML_RETURN_IF_ERROR(Prepare(
      (std::string("SELECT ") + kVersionColumns + " FROM versions WHERE name = ?1 AND version = ?2")
          .c_str(),
      &get_version_));
  HML_RETURN_IF_ERROR(Prepare(
      (std::string("SELECT ") + kVersionColumns + " FROM versions WHERE name = ?1 ORDER BY version")
          .c_str(),
      &list_versions_));
  HML_RETURN_IF_ERROR(Prepare("SELECT name FROM models ORDER BY name", &list_models_));
  HML_RETURN_IF_ERROR(Prepare("SELECT 1 FROM models WHERE name = ?1", &model_exists_));
  HML_RETURN_IF_ERROR(Prepare(
      (std::string("SELECT ") + kChannelColumns + " FROM channels WHERE name = ?1 AND channel = ?2")
          .c_str(),
      &get_channel_));
  HML_RETURN_IF_ERROR(Prepare(
      (std::string("SELECT ") + kChannelColumns + " FROM channels WHERE name = ?1 ORDER BY channel")
          .c_str(),
      &list_channels_));
  HML_RETURN_IF_ERROR(
      Prepare((std::string("INSERT INTO channels (") + kChannelColumns +
               ") VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (name, channel) DO UPDATE SET "
               "version = excluded.version, percent = excluded.percent, "
               "previous_version = excluded.previous_version, updated_unix = excluded.updated_unix")
                  .c_str(),
              &upsert_channel_));
  return Status::Ok();
}

Status SqliteStore::CheckModelExists(std::string_view name) {
  sqlite3_stmt* stmt = model_exists_.get();
  ScopedReset reset(stmt);
  const std::string what = "look up model '" + std::string(name) + "'";
  HML_RETURN_IF_ERROR(BindText(stmt, 1, name, what));
  HML_ASSIGN_OR_RETURN(const bool found, Step(stmt, what));
  if (!found) return NotFoundError("model '" + std::string(name) + "' does not exist");
  return Status::Ok();
}

Status SqliteStore::CheckVersionExists(std::string_view name, int64_t version) {
  sqlite3_stmt* stmt = get_version_.get();
  ScopedReset reset(stmt);
  const std::string what =
      "look up model '" + std::string(name) + "' version " + std::to_string(version);
  HML_RETURN_IF_ERROR(BindText(stmt, 1, name, what));
  HML_RETURN_IF_ERROR(BindInt64(stmt, 2, version, what));
  HML_ASSIGN_OR_RETURN(const bool found, Step(stmt, what));
  if (!found) {
    return NotFoundError("model '" + std::string(name) + "' has no version " +
                         std::to_string(version));
  }
  return Status::Ok();
}

Result<bool> SqliteStore::ReadChannel(std::string_view name, std::string_view channel,
                                      ChannelState* out) {
  sqlite3_stmt* stmt = get_channel_.get();
  ScopedReset reset(stmt);
  const std::string what =
      "read channel '" + std::string(channel) + "' of model '" + std::string(name) + "'";
  HML_RETURN_IF_ERROR(BindText(stmt, 1, name, what));
  HML_RETURN_IF_ERROR(BindText(stmt, 2, channel, what));
  HML_ASSIGN_OR_RETURN(const bool found, Step(stmt, what));
  if (found) *out = ReadChannelRow(stmt);
  return found;
}

Result<int64_t> SqliteStore::AddVersion(ModelVersion v) {
  HML_RETURN_IF_ERROR(ValidateName("model", v.name));
  HML_RETURN_IF_ERROR(ValidateSemver(v.name, v.semver));
  HML_RETURN_IF_ERROR(ValidateSha256(v.name, v.sha256));
  HML_RETURN_IF_ERROR(ValidateBlob(v.name, v.blob));
  if (v.length < 0) {
    return InvalidArgumentError("model '" + v.name + "': length " + std::to_string(v.length) +
                                " is negative");
  }

  std::lock_guard<std::mutex> lock(mu_);
  const std::string what = "add model '" + v.name + "' semver '" + v.semver + "'";
  int64_t version = 0;
  HML_RETURN_IF_ERROR(InTransaction(what, [&]() -> Status {
    {
      sqlite3_stmt* stmt = bump_model_.get();
      ScopedReset reset(stmt);
      HML_RETURN_IF_ERROR(BindText(stmt, 1, v.name, what));
      HML_ASSIGN_OR_RETURN(const bool row, Step(stmt, what));
      if (!row) return InternalError(what + ": no version number returned");
      version = sqlite3_column_int64(stmt, 0);
      // RETURNING rows are produced before the statement completes; step it to the end.
      HML_ASSIGN_OR_RETURN(const bool more, Step(stmt, what));
      if (more) return InternalError(what + ": more than one version number returned");
    }
    sqlite3_stmt* stmt = insert_version_.get();
    ScopedReset reset(stmt);
    HML_RETURN_IF_ERROR(BindText(stmt, 1, v.name, what));
    HML_RETURN_IF_ERROR(BindInt64(stmt, 2, version, what));
    HML_RETURN_IF_ERROR(BindText(stmt, 3, v.semver, what));
    HML_RETURN_IF_ERROR(BindText(stmt, 4, v.sha256, what));
    HML_RETURN_IF_ERROR(BindInt64(stmt, 5, v.length, what));
    HML_RETURN_IF_ERROR(BindText(stmt, 6, v.blob, what));
    HML_RETURN_IF_ERROR(BindText(stmt, 7, v.metadata_json, what));
    HML_RETURN_IF_ERROR(BindInt64(stmt, 8, v.created_unix, what));
    // A duplicate (name, semver) fails here with SQLITE_CONSTRAINT_UNIQUE -> kAlreadyExists,
    // after the model's counter moved on; the rollback restores the counter.
    return Run(stmt, what);
  }));
  return version;
}

Result<ModelVersion> SqliteStore::GetVersion(std::string_view name, int64_t version) {
  std::lock_guard<std::mutex> lock(mu_);
  sqlite3_stmt* stmt = get_version_.get();
  ScopedReset reset(stmt);
  const std::string what =
      "read model '" + std::string(name) + "' version " + std::to_string(version);
  HML_RETURN_IF_ERROR(BindText(stmt, 1, name, what));
  HML_RETURN_IF_ERROR(BindInt64(stmt, 2, version, what));
  HML_ASSIGN_OR_RETURN(const bool found, Step(stmt, what));
  if (!found) {
    return NotFoundError("model '" + std::string(name) + "' has no version " +
                         std::to_string(version));
  }
  return ReadVersionRow(stmt);
}

Result<std::vector<ModelVersion>> SqliteStore::ListVersions(std::string_view name) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<ModelVersion> versions;
  {
    sqlite3_stmt* stmt = list_versions_.get();
    ScopedReset reset(stmt);
    const std::string what = "list versions of model '" + std::string(name) + "'";
    HML_RETURN_IF_ERROR(BindText(stmt, 1, name, what));
    while (true) {
      HML_ASSIGN_OR_RETURN(const bool row, Step(stmt, what));
      if (!row) break;
      versions.push_back(ReadVersionRow(stmt));
    }
  }
  // A model exists only with a version, so an empty list means an unknown model.
  if (versions.empty()) HML_RETURN_IF_ERROR(CheckModelExists(name));
  return versions;
}

Result<std::vector<std::string>> SqliteStore::ListModels() {
  std::lock_guard<std::mutex> lock(mu_);
  sqlite3_stmt* stmt = list_models_.get();
  ScopedReset reset(stmt);
  std::vector<std::string> names;
  while (true) {
    HML_ASSIGN_OR_RETURN(const bool row, Step(stmt, "list models"));
    if (!row) break;
    names.push_back(ColumnText(stmt, 0));
  }
  return names;
}

Status SqliteStore::SetRollout(std::string_view name, std::string_view channel, int64_t version,
                               double percent, int64_t now_unix) {
  HML_RETURN_IF_ERROR(ValidateName("channel", channel));
  if (std::isnan(percent) || percent <= 0.0 || percent > 100.0) {
    char text[32];
    std::snprintf(text, sizeof(text), "%g", percent);
    return InvalidArgumentError("channel '" + std::string(channel) + "' of model '" +
                                std::string(name) + "': rollout percent " + text +
                                " is outside (0, 100]");
  }
  std::lock_guard<std::mutex> lock(mu_);
  const std::string what = "set rollout of channel '" + std::string(channel) + "' of model '" +
                           std::string(name) + "' to version " + std::to_string(version);
  return InTransaction(what, [&]() -> Status {
    HML_RETURN_IF_ERROR(CheckModelExists(name));
    HML_RETURN_IF_ERROR(CheckVersionExists(name, version));
    ChannelState old;
    HML_ASSIGN_OR_RETURN(const bool exists, ReadChannel(name, channel, &old));
    int64_t previous = 0;
    if (exists) previous = old.version != version ? old.version : old.previous_version;

    sqlite3_stmt* stmt = upsert_channel_.get();
    ScopedReset reset(stmt);
    HML_RETURN_IF_ERROR(BindText(stmt, 1, name, what));
    HML_RETURN_IF_ERROR(BindText(stmt, 2, channel, what));
    HML_RETURN_IF_ERROR(BindInt64(stmt, 3, version, what));
    HML_RETURN_IF_ERROR(BindDouble(stmt, 4, percent, what));
    if (previous != 0) {
      HML_RETURN_IF_ERROR(BindInt64(stmt, 5, previous, what));
    }  // else parameter 5 stays NULL: no previous version
    HML_RETURN_IF_ERROR(BindInt64(stmt, 6, now_unix, what));
    return Run(stmt, what);
  });
}

Status SqliteStore::Rollback(std::string_view name, std::string_view channel, int64_t now_unix) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string what =
      "roll back channel '" + std::string(channel) + "' of model '" + std::string(name) + "'";
  return InTransaction(what, [&]() -> Status {
    HML_RETURN_IF_ERROR(CheckModelExists(name));
    ChannelState old;
    HML_ASSIGN_OR_RETURN(const bool exists, ReadChannel(name, channel, &old));
    if (!exists) {
      return NotFoundError("model '" + std::string(name) + "' has no channel '" +
                           std::string(channel) + "'");
    }
    if (old.previous_version == 0) {
      return FailedPreconditionError(what +
                                     ": the channel has no previous version (it points at "
                                     "version " +
                                     std::to_string(old.version) + ")");
    }
    sqlite3_stmt* stmt = upsert_channel_.get();
    ScopedReset reset(stmt);
    HML_RETURN_IF_ERROR(BindText(stmt, 1, name, what));
    HML_RETURN_IF_ERROR(BindText(stmt, 2, channel, what));
    HML_RETURN_IF_ERROR(BindInt64(stmt, 3, old.previous_version, what));
    HML_RETURN_IF_ERROR(BindDouble(stmt, 4, 100.0, what));
    // Parameter 5 (previous_version) stays NULL: one step of history, now used up.
    HML_RETURN_IF_ERROR(BindInt64(stmt, 6, now_unix, what));
    return Run(stmt, what);
  });
}

Result<ChannelState> SqliteStore::GetChannel(std::string_view name, std::string_view channel) {
  std::lock_guard<std::mutex> lock(mu_);
  ChannelState state;
  HML_ASSIGN_OR_RETURN(const bool found, ReadChannel(name, channel, &state));
  if (found) return state;
  HML_RETURN_IF_ERROR(CheckModelExists(name));
  return NotFoundError("model '" + std::string(name) + "' has no channel '" + std::string(channel) +
                       "'");
}

Result<std::vector<ChannelState>> SqliteStore::ListChannels(std::string_view name) {
  std::lock_guard<std::mutex> lock(mu_);
  HML_RETURN_IF_ERROR(CheckModelExists(name));
  sqlite3_stmt* stmt = list_channels_.get();
  ScopedReset reset(stmt);
  const std::string what = "list channels of model '" + std::string(name) + "'";
  HML_RETURN_IF_ERROR(BindText(stmt, 1, name, what));
  std::vector<ChannelState> channels;
  while (true) {
    HML_ASSIGN_OR_RETURN(const bool row, Step(stmt, what));
    if (!row) break;
    channels.push_back(ReadChannelRow(stmt));
  }
  return channels;
}

}  // namespace

Result<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path) {
  sqlite3* db = nullptr;
  // NOMUTEX: SqliteStore serializes all use of the connection with its own mutex.
  const int rc = sqlite3_open_v2(
      path.c_str(), &db,
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
      nullptr);
  if (rc != SQLITE_OK) {
    // sqlite3_open_v2 usually returns a handle even on failure; it holds the message and must
    // be closed.
    Status status = SqliteStatus(db, rc, path, "open registry database '" + path + "'");
    sqlite3_close(db);
    return status;
  }
  auto store = std::make_unique<SqliteStore>(db, path);
  HML_RETURN_IF_ERROR(store->Init());
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace hml::server

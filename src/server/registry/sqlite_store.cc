// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/server/registry/sqlite_store.h"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "src/storage/sqlite_db.h"

namespace hml::server {
namespace {

using storage::ColumnText;
using storage::EnsureSchema;
using storage::ScopedReset;
using storage::SqliteDb;
using storage::SqliteOptions;
using storage::StatementPtr;

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
  explicit SqliteStore(SqliteDb db) : db_(std::move(db)) {}
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  // Sets up the schema, then prepares every statement.
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
  // All three REQUIRE mu_ held.
  Status CheckModelExists(std::string_view name);
  Result<bool> ReadChannel(std::string_view name, std::string_view channel, ChannelState* out);
  Status CheckVersionExists(std::string_view name, int64_t version);

  // Guards the connection and the statements: SQLite connections and statements must not be
  // used from two threads at once, and a transaction spans several calls on them.
  std::mutex mu_;
  // Declared before the statements, so they are finalized before the connection closes.
  SqliteDb db_;
  StatementPtr bump_model_, insert_version_, get_version_, list_versions_, list_models_;
  StatementPtr model_exists_, get_channel_, list_channels_, upsert_channel_;
};

Status SqliteStore::Init() {
  std::lock_guard<std::mutex> lock(mu_);
  HML_RETURN_IF_ERROR(EnsureSchema(db_, kSqliteStoreSchemaVersion, kSchemaV1));
  // Creates the model on its first version; returns the number for the version being added.
  HML_RETURN_IF_ERROR(
      db_.Prepare("INSERT INTO models (name, last_version) VALUES (?1, 1) "
                  "ON CONFLICT (name) DO UPDATE SET last_version = last_version + 1 "
                  "RETURNING last_version",
                  &bump_model_));
  HML_RETURN_IF_ERROR(db_.Prepare((std::string("INSERT INTO versions (") + kVersionColumns +
                                   ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
                                  &insert_version_));
  HML_RETURN_IF_ERROR(db_.Prepare((std::string("SELECT ") + kVersionColumns +
                                   " FROM versions WHERE name = ?1 AND version = ?2"),
                                  &get_version_));
  HML_RETURN_IF_ERROR(db_.Prepare((std::string("SELECT ") + kVersionColumns +
                                   " FROM versions WHERE name = ?1 ORDER BY version"),
                                  &list_versions_));
  HML_RETURN_IF_ERROR(db_.Prepare("SELECT name FROM models ORDER BY name", &list_models_));
  HML_RETURN_IF_ERROR(db_.Prepare("SELECT 1 FROM models WHERE name = ?1", &model_exists_));
  HML_RETURN_IF_ERROR(db_.Prepare((std::string("SELECT ") + kChannelColumns +
                                   " FROM channels WHERE name = ?1 AND channel = ?2"),
                                  &get_channel_));
  HML_RETURN_IF_ERROR(db_.Prepare((std::string("SELECT ") + kChannelColumns +
                                   " FROM channels WHERE name = ?1 ORDER BY channel"),
                                  &list_channels_));
  HML_RETURN_IF_ERROR(db_.Prepare(
      (std::string("INSERT INTO channels (") + kChannelColumns +
       ") VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (name, channel) DO UPDATE SET "
       "version = excluded.version, percent = excluded.percent, "
       "previous_version = excluded.previous_version, updated_unix = excluded.updated_unix"),
      &upsert_channel_));
  return Status::Ok();
}

Status SqliteStore::CheckModelExists(std::string_view name) {
  sqlite3_stmt* stmt = model_exists_.get();
  ScopedReset reset(stmt);
  const std::string what = "look up model '" + std::string(name) + "'";
  HML_RETURN_IF_ERROR(db_.BindText(stmt, 1, name, what));
  HML_ASSIGN_OR_RETURN(const bool found, db_.Step(stmt, what));
  if (!found) return NotFoundError("model '" + std::string(name) + "' does not exist");
  return Status::Ok();
}

Status SqliteStore::CheckVersionExists(std::string_view name, int64_t version) {
  sqlite3_stmt* stmt = get_version_.get();
  ScopedReset reset(stmt);
  const std::string what =
      "look up model '" + std::string(name) + "' version " + std::to_string(version);
  HML_RETURN_IF_ERROR(db_.BindText(stmt, 1, name, what));
  HML_RETURN_IF_ERROR(db_.BindInt64(stmt, 2, version, what));
  HML_ASSIGN_OR_RETURN(const bool found, db_.Step(stmt, what));
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
  HML_RETURN_IF_ERROR(db_.BindText(stmt, 1, name, what));
  HML_RETURN_IF_ERROR(db_.BindText(stmt, 2, channel, what));
  HML_ASSIGN_OR_RETURN(const bool found, db_.Step(stmt, what));
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
  HML_RETURN_IF_ERROR(db_.InTransaction(what, [&]() -> Status {
    {
      sqlite3_stmt* stmt = bump_model_.get();
      ScopedReset reset(stmt);
      HML_RETURN_IF_ERROR(db_.BindText(stmt, 1, v.name, what));
      HML_ASSIGN_OR_RETURN(const bool row, db_.Step(stmt, what));
      if (!row) return InternalError(what + ": no version number returned");
      version = sqlite3_column_int64(stmt, 0);
      // RETURNING rows are produced before the statement completes; step it to the end.
      HML_ASSIGN_OR_RETURN(const bool more, db_.Step(stmt, what));
      if (more) return InternalError(what + ": more than one version number returned");
    }
    sqlite3_stmt* stmt = insert_version_.get();
    ScopedReset reset(stmt);
    HML_RETURN_IF_ERROR(db_.BindText(stmt, 1, v.name, what));
    HML_RETURN_IF_ERROR(db_.BindInt64(stmt, 2, version, what));
    HML_RETURN_IF_ERROR(db_.BindText(stmt, 3, v.semver, what));
    HML_RETURN_IF_ERROR(db_.BindText(stmt, 4, v.sha256, what));
    HML_RETURN_IF_ERROR(db_.BindInt64(stmt, 5, v.length, what));
    HML_RETURN_IF_ERROR(db_.BindText(stmt, 6, v.blob, what));
    HML_RETURN_IF_ERROR(db_.BindText(stmt, 7, v.metadata_json, what));
    HML_RETURN_IF_ERROR(db_.BindInt64(stmt, 8, v.created_unix, what));
    // A duplicate (name, semver) fails here with SQLITE_CONSTRAINT_UNIQUE -> kAlreadyExists,
    // after the model's counter moved on; the rollback restores the counter.
    return db_.Run(stmt, what);
  }));
  return version;
}

Result<ModelVersion> SqliteStore::GetVersion(std::string_view name, int64_t version) {
  std::lock_guard<std::mutex> lock(mu_);
  sqlite3_stmt* stmt = get_version_.get();
  ScopedReset reset(stmt);
  const std::string what =
      "read model '" + std::string(name) + "' version " + std::to_string(version);
  HML_RETURN_IF_ERROR(db_.BindText(stmt, 1, name, what));
  HML_RETURN_IF_ERROR(db_.BindInt64(stmt, 2, version, what));
  HML_ASSIGN_OR_RETURN(const bool found, db_.Step(stmt, what));
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
    HML_RETURN_IF_ERROR(db_.BindText(stmt, 1, name, what));
    HML_ASSIGN_OR_RETURN(versions, db_.ReadAll(stmt, what, ReadVersionRow));
  }
  // A model exists only with a version, so an empty list means an unknown model.
  if (versions.empty()) HML_RETURN_IF_ERROR(CheckModelExists(name));
  return versions;
}

Result<std::vector<std::string>> SqliteStore::ListModels() {
  std::lock_guard<std::mutex> lock(mu_);
  sqlite3_stmt* stmt = list_models_.get();
  ScopedReset reset(stmt);
  return db_.ReadAll(stmt, "list models", [](sqlite3_stmt* row) { return ColumnText(row, 0); });
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
  return db_.InTransaction(what, [&]() -> Status {
    HML_RETURN_IF_ERROR(CheckModelExists(name));
    HML_RETURN_IF_ERROR(CheckVersionExists(name, version));
    ChannelState old;
    HML_ASSIGN_OR_RETURN(const bool exists, ReadChannel(name, channel, &old));
    int64_t previous = 0;
    if (exists) previous = old.version != version ? old.version : old.previous_version;

    sqlite3_stmt* stmt = upsert_channel_.get();
    ScopedReset reset(stmt);
    HML_RETURN_IF_ERROR(db_.BindText(stmt, 1, name, what));
    HML_RETURN_IF_ERROR(db_.BindText(stmt, 2, channel, what));
    HML_RETURN_IF_ERROR(db_.BindInt64(stmt, 3, version, what));
    HML_RETURN_IF_ERROR(db_.BindDouble(stmt, 4, percent, what));
    if (previous != 0) {
      HML_RETURN_IF_ERROR(db_.BindInt64(stmt, 5, previous, what));
    }  // else parameter 5 stays NULL: no previous version
    HML_RETURN_IF_ERROR(db_.BindInt64(stmt, 6, now_unix, what));
    return db_.Run(stmt, what);
  });
}

Status SqliteStore::Rollback(std::string_view name, std::string_view channel, int64_t now_unix) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string what =
      "roll back channel '" + std::string(channel) + "' of model '" + std::string(name) + "'";
  return db_.InTransaction(what, [&]() -> Status {
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
    HML_RETURN_IF_ERROR(db_.BindText(stmt, 1, name, what));
    HML_RETURN_IF_ERROR(db_.BindText(stmt, 2, channel, what));
    HML_RETURN_IF_ERROR(db_.BindInt64(stmt, 3, old.previous_version, what));
    HML_RETURN_IF_ERROR(db_.BindDouble(stmt, 4, 100.0, what));
    // Parameter 5 (previous_version) stays NULL: one step of history, now used up.
    HML_RETURN_IF_ERROR(db_.BindInt64(stmt, 6, now_unix, what));
    return db_.Run(stmt, what);
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
  HML_RETURN_IF_ERROR(db_.BindText(stmt, 1, name, what));
  return db_.ReadAll(stmt, what, ReadChannelRow);
}

}  // namespace

Result<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path) {
  SqliteOptions options;
  options.label = "registry database";
  options.busy_timeout_ms = kSqliteBusyTimeoutMs;
  options.foreign_keys = true;
  HML_ASSIGN_OR_RETURN(SqliteDb db, SqliteDb::Open(path, options));
  auto store = std::make_unique<SqliteStore>(std::move(db));
  HML_RETURN_IF_ERROR(store->Init());
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace hml::server

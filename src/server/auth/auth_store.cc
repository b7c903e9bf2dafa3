// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/server/auth/auth_store.h"

#include <sodium.h>
#include <sys/stat.h>

#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "src/ota/crypto.h"
#include "src/storage/sqlite_db.h"

namespace hml::server {
namespace {

using storage::ColumnBlob;
using storage::ColumnIsNull;
using storage::ColumnText;
using storage::EnsureSchema;
using storage::ScopedReset;
using storage::SqliteDb;
using storage::SqliteOptions;
using storage::StatementPtr;

// Schema version 1. `credentials` holds admin keys (kind 'admin') and enrollment secrets (kind
// 'enrollment'); `devices` the enrolled devices. revoked_unix is NULL while a row is active.
// token_sha256 is SHA-256 of the whole token string; the token itself is never written.
constexpr char kSchemaV1[] = R"sql(
CREATE TABLE credentials (
  kind TEXT NOT NULL CHECK (kind IN ('admin', 'enrollment')),
  id TEXT NOT NULL CHECK (length(id) = 16),
  name TEXT NOT NULL,
  token_sha256 BLOB NOT NULL CHECK (length(token_sha256) = 32),
  created_unix INTEGER NOT NULL,
  revoked_unix INTEGER,
  PRIMARY KEY (kind, id)
) WITHOUT ROWID;
CREATE TABLE devices (
  id TEXT PRIMARY KEY NOT NULL CHECK (length(id) = 16),
  name TEXT NOT NULL,
  platform TEXT NOT NULL,
  enrollment_secret_id TEXT NOT NULL,
  token_sha256 BLOB NOT NULL CHECK (length(token_sha256) = 32),
  created_unix INTEGER NOT NULL,
  revoked_unix INTEGER
) WITHOUT ROWID;
)sql";

constexpr std::string_view kAdminPrefix = "hmla";
constexpr std::string_view kEnrollmentPrefix = "hmle";
constexpr std::string_view kDevicePrefix = "hmld";

std::string_view PrefixOf(CredentialKind kind) {
  switch (kind) {
    case CredentialKind::kAdminKey:
      return kAdminPrefix;
    case CredentialKind::kEnrollmentSecret:
      return kEnrollmentPrefix;
    case CredentialKind::kDevice:
      return kDevicePrefix;
  }
  return kDevicePrefix;
}

// The `kind` column of the credentials table.
const char* KindColumn(CredentialKind kind) {
  return kind == CredentialKind::kAdminKey ? "admin" : "enrollment";
}

bool IsLowerHex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// Names and platforms: printable ASCII (no control characters, so listings stay one line).
Status ValidateText(std::string_view field, std::string_view text, size_t min_length) {
  if (text.size() < min_length || text.size() > kMaxAuthNameLength) {
    return InvalidArgumentError(std::string(field) + " has " + std::to_string(text.size()) +
                                " characters; it must have " + std::to_string(min_length) + " to " +
                                std::to_string(kMaxAuthNameLength));
  }
  for (char c : text) {
    if (c < 0x20 || c > 0x7e) {
      return InvalidArgumentError(std::string(field) +
                                  " contains a character outside printable ASCII");
    }
  }
  return Status::Ok();
}

// `bytes` random bytes as lowercase hex.
std::string RandomHex(size_t bytes) {
  std::string raw(bytes, '\0');
  randombytes_buf(raw.data(), raw.size());
  std::string hex = ota::ToHex(raw);
  sodium_memzero(raw.data(), raw.size());
  return hex;
}

// A fresh token of `kind`: "<prefix>_<16 hex id>_<64 hex secret>".
IssuedToken NewToken(CredentialKind kind) {
  IssuedToken issued;
  issued.id = RandomHex(kTokenIdChars / 2);
  issued.token =
      std::string(PrefixOf(kind)) + "_" + issued.id + "_" + RandomHex(kTokenSecretChars / 2);
  return issued;
}

// Constant-time equality of two 32-byte hashes (false for any other length).
bool HashesEqual(std::string_view a, std::string_view b) {
  return a.size() == crypto_hash_sha256_BYTES && b.size() == crypto_hash_sha256_BYTES &&
         sodium_memcmp(a.data(), b.data(), crypto_hash_sha256_BYTES) == 0;
}

// Reads a nullable revoked_unix column into `revoked` / `revoked_unix`.
void ReadRevoked(sqlite3_stmt* stmt, int column, bool* revoked, int64_t* revoked_unix) {
  *revoked = !ColumnIsNull(stmt, column);
  *revoked_unix = *revoked ? sqlite3_column_int64(stmt, column) : 0;
}

// Columns: id, name, created_unix, revoked_unix.
CredentialInfo ReadCredentialRow(sqlite3_stmt* stmt) {
  CredentialInfo info;
  info.id = ColumnText(stmt, 0);
  info.name = ColumnText(stmt, 1);
  info.created_unix = sqlite3_column_int64(stmt, 2);
  ReadRevoked(stmt, 3, &info.revoked, &info.revoked_unix);
  return info;
}

constexpr char kDeviceColumns[] =
    "id, name, platform, enrollment_secret_id, created_unix, revoked_unix";

DeviceInfo ReadDeviceRow(sqlite3_stmt* stmt) {
  DeviceInfo info;
  info.id = ColumnText(stmt, 0);
  info.name = ColumnText(stmt, 1);
  info.platform = ColumnText(stmt, 2);
  info.enrollment_secret_id = ColumnText(stmt, 3);
  info.created_unix = sqlite3_column_int64(stmt, 4);
  ReadRevoked(stmt, 5, &info.revoked, &info.revoked_unix);
  return info;
}

class SqliteAuthStore final : public AuthStore {
 public:
  SqliteAuthStore(SqliteDb db, Clock& clock) : db_(std::move(db)), clock_(clock) {}
  SqliteAuthStore(const SqliteAuthStore&) = delete;
  SqliteAuthStore& operator=(const SqliteAuthStore&) = delete;

  // Sets up the schema, then prepares every statement.
  Status Init();

  Result<IssuedToken> CreateCredential(CredentialKind kind, std::string_view name) override;
  Status RevokeCredential(CredentialKind kind, std::string_view id) override;
  Result<std::vector<CredentialInfo>> ListCredentials(CredentialKind kind) override;
  Result<EnrolledDevice> Enroll(std::string_view enrollment_secret, std::string_view name,
                                std::string_view platform) override;
  Result<DeviceInfo> GetDevice(std::string_view id) override;
  Status RevokeDevice(std::string_view id) override;
  Result<std::vector<DeviceInfo>> ListDevices() override;
  Result<Principal> Verify(std::string_view token) override;

 private:
  int64_t NowUnix() const { return clock_.WallMicros() / 1000000; }

  // REQUIRE mu_ held. The stored hash and revocation of credential (kind, id); false when there
  // is no such row.
  struct HashRow {
    std::string token_sha256;
    bool revoked = false;
  };
  Result<bool> ReadCredentialHash(CredentialKind kind, std::string_view id, HashRow* out);
  Result<bool> ReadDeviceHash(std::string_view id, HashRow* out);

  // Guards the connection and the statements (see SqliteStore in src/server/registry).
  std::mutex mu_;
  // Declared before the statements, so they are finalized before the connection closes.
  SqliteDb db_;
  Clock& clock_;
  StatementPtr insert_credential_, get_credential_, revoke_credential_, list_credentials_;
  StatementPtr insert_device_, get_device_, get_device_hash_, revoke_device_, list_devices_;
};

Status SqliteAuthStore::Init() {
  std::lock_guard<std::mutex> lock(mu_);
  HML_RETURN_IF_ERROR(EnsureSchema(db_, kAuthSchemaVersion, kSchemaV1));
  HML_RETURN_IF_ERROR(
      db_.Prepare("INSERT INTO credentials (kind, id, name, token_sha256, created_unix) "
                  "VALUES (?1, ?2, ?3, ?4, ?5)",
                  &insert_credential_));
  HML_RETURN_IF_ERROR(
      db_.Prepare("SELECT token_sha256, revoked_unix FROM credentials WHERE kind = ?1 AND id = ?2",
                  &get_credential_));
  HML_RETURN_IF_ERROR(
      db_.Prepare("UPDATE credentials SET revoked_unix = coalesce(revoked_unix, ?3) "
                  "WHERE kind = ?1 AND id = ?2 RETURNING id",
                  &revoke_credential_));
  HML_RETURN_IF_ERROR(
      db_.Prepare("SELECT id, name, created_unix, revoked_unix FROM credentials WHERE kind = ?1 "
                  "ORDER BY created_unix, id",
                  &list_credentials_));
  HML_RETURN_IF_ERROR(db_.Prepare((std::string("INSERT INTO devices (") + kDeviceColumns +
                                   ", token_sha256) VALUES (?1, ?2, ?3, ?4, ?5, NULL, ?6)"),
                                  &insert_device_));
  HML_RETURN_IF_ERROR(db_.Prepare(
      (std::string("SELECT ") + kDeviceColumns + " FROM devices WHERE id = ?1"), &get_device_));
  HML_RETURN_IF_ERROR(db_.Prepare("SELECT token_sha256, revoked_unix FROM devices WHERE id = ?1",
                                  &get_device_hash_));
  HML_RETURN_IF_ERROR(db_.Prepare(
      "UPDATE devices SET revoked_unix = coalesce(revoked_unix, ?2) WHERE id = ?1 RETURNING id",
      &revoke_device_));
  HML_RETURN_IF_ERROR(db_.Prepare(
      (std::string("SELECT ") + kDeviceColumns + " FROM devices ORDER BY created_unix, id"),
      &list_devices_));
  return Status::Ok();
}

Result<bool> SqliteAuthStore::ReadCredentialHash(CredentialKind kind, std::string_view id,
                                                 HashRow* out) {
  sqlite3_stmt* stmt = get_credential_.get();
  ScopedReset reset(stmt);
  const std::string what =
      "look up " + std::string(CredentialKindName(kind)) + " " + std::string(id);
  HML_RETURN_IF_ERROR(db_.BindText(stmt, 1, KindColumn(kind), what));
  HML_RETURN_IF_ERROR(db_.BindText(stmt, 2, id, what));
  HML_ASSIGN_OR_RETURN(const bool found, db_.Step(stmt, what));
  if (!found) return false;
  out->token_sha256 = ColumnBlob(stmt, 0);
  out->revoked = !ColumnIsNull(stmt, 1);
  return true;
}

Result<bool> SqliteAuthStore::ReadDeviceHash(std::string_view id, HashRow* out) {
  sqlite3_stmt* stmt = get_device_hash_.get();
  ScopedReset reset(stmt);
  const std::string what = "look up device " + std::string(id);
  HML_RETURN_IF_ERROR(db_.BindText(stmt, 1, id, what));
  HML_ASSIGN_OR_RETURN(const bool found, db_.Step(stmt, what));
  if (!found) return false;
  out->token_sha256 = ColumnBlob(stmt, 0);
  out->revoked = !ColumnIsNull(stmt, 1);
  return true;
}

Result<IssuedToken> SqliteAuthStore::CreateCredential(CredentialKind kind, std::string_view name) {
  if (kind == CredentialKind::kDevice) {
    return InvalidArgumentError("device credentials are created by enrolling, not directly");
  }
  const std::string kind_name(CredentialKindName(kind));
  HML_RETURN_IF_ERROR(ValidateText(kind_name + " name", name, 1));
  HML_RETURN_IF_ERROR(ota::InitCrypto());
  IssuedToken issued = NewToken(kind);
  const std::string hash = ota::Sha256(issued.token);
  std::lock_guard<std::mutex> lock(mu_);
  const std::string what = "create " + kind_name + " '" + std::string(name) + "'";
  HML_RETURN_IF_ERROR(db_.InTransaction(what, [&]() -> Status {
    sqlite3_stmt* stmt = insert_credential_.get();
    ScopedReset reset(stmt);
    HML_RETURN_IF_ERROR(db_.BindText(stmt, 1, KindColumn(kind), what));
    HML_RETURN_IF_ERROR(db_.BindText(stmt, 2, issued.id, what));
    HML_RETURN_IF_ERROR(db_.BindText(stmt, 3, name, what));
    HML_RETURN_IF_ERROR(db_.BindBlob(stmt, 4, hash, what));
    HML_RETURN_IF_ERROR(db_.BindInt64(stmt, 5, NowUnix(), what));
    return db_.Run(stmt, what);
  }));
  return issued;
}

Status SqliteAuthStore::RevokeCredential(CredentialKind kind, std::string_view id) {
  if (kind == CredentialKind::kDevice) return RevokeDevice(id);
  const std::string what =
      "revoke " + std::string(CredentialKindName(kind)) + " '" + std::string(id) + "'";
  std::lock_guard<std::mutex> lock(mu_);
  return db_.InTransaction(what, [&]() -> Status {
    sqlite3_stmt* stmt = revoke_credential_.get();
    ScopedReset reset(stmt);
    HML_RETURN_IF_ERROR(db_.BindText(stmt, 1, KindColumn(kind), what));
    HML_RETURN_IF_ERROR(db_.BindText(stmt, 2, id, what));
    HML_RETURN_IF_ERROR(db_.BindInt64(stmt, 3, NowUnix(), what));
    HML_ASSIGN_OR_RETURN(const bool found, db_.Step(stmt, what));
    if (!found) {
      return NotFoundError(std::string(CredentialKindName(kind)) + " '" + std::string(id) +
                           "' does not exist");
    }
    return Status::Ok();
  });
}

Result<std::vector<CredentialInfo>> SqliteAuthStore::ListCredentials(CredentialKind kind) {
  if (kind == CredentialKind::kDevice) {
    return InvalidArgumentError("devices are listed with ListDevices");
  }
  const std::string what = "list " + std::string(CredentialKindName(kind)) + "s";
  std::lock_guard<std::mutex> lock(mu_);
  sqlite3_stmt* stmt = list_credentials_.get();
  ScopedReset reset(stmt);
  HML_RETURN_IF_ERROR(db_.BindText(stmt, 1, KindColumn(kind), what));
  return db_.ReadAll(stmt, what, ReadCredentialRow);
}

Result<EnrolledDevice> SqliteAuthStore::Enroll(std::string_view enrollment_secret,
                                               std::string_view name, std::string_view platform) {
  HML_ASSIGN_OR_RETURN(const ParsedToken parsed, ParseToken(enrollment_secret));
  if (parsed.kind != CredentialKind::kEnrollmentSecret) {
    return UnauthenticatedError("enroll: the secret is a " +
                                std::string(CredentialKindName(parsed.kind)) +
                                ", not an enrollment secret");
  }
  HML_RETURN_IF_ERROR(ValidateText("device name", name, 1));
  HML_RETURN_IF_ERROR(ValidateText("platform", platform, 0));
  HML_RETURN_IF_ERROR(ota::InitCrypto());
  const std::string presented = ota::Sha256(enrollment_secret);
  IssuedToken credential = NewToken(CredentialKind::kDevice);
  const std::string credential_hash = ota::Sha256(credential.token);
  const std::string secret_id(parsed.id);
  const int64_t now = NowUnix();
  const std::string what = "enroll device '" + std::string(name) + "'";

  std::lock_guard<std::mutex> lock(mu_);
  HML_RETURN_IF_ERROR(db_.InTransaction(what, [&]() -> Status {
    HashRow row;
    HML_ASSIGN_OR_RETURN(const bool found,
                         ReadCredentialHash(CredentialKind::kEnrollmentSecret, secret_id, &row));
    if (!found || !HashesEqual(row.token_sha256, presented)) {
      return UnauthenticatedError("enroll: unknown or wrong enrollment secret (id " + secret_id +
                                  ")");
    }
    if (row.revoked) {
      return UnauthenticatedError("enroll: enrollment secret " + secret_id + " is revoked");
    }
    sqlite3_stmt* stmt = insert_device_.get();
    ScopedReset reset(stmt);
    HML_RETURN_IF_ERROR(db_.BindText(stmt, 1, credential.id, what));
    HML_RETURN_IF_ERROR(db_.BindText(stmt, 2, name, what));
    HML_RETURN_IF_ERROR(db_.BindText(stmt, 3, platform, what));
    HML_RETURN_IF_ERROR(db_.BindText(stmt, 4, secret_id, what));
    HML_RETURN_IF_ERROR(db_.BindInt64(stmt, 5, now, what));
    HML_RETURN_IF_ERROR(db_.BindBlob(stmt, 6, credential_hash, what));
    return db_.Run(stmt, what);
  }));
  EnrolledDevice enrolled;
  enrolled.device.id = credential.id;
  enrolled.device.name = std::string(name);
  enrolled.device.platform = std::string(platform);
  enrolled.device.enrollment_secret_id = secret_id;
  enrolled.device.created_unix = now;
  enrolled.credential = std::move(credential.token);
  return enrolled;
}

Result<DeviceInfo> SqliteAuthStore::GetDevice(std::string_view id) {
  const std::string what = "get device '" + std::string(id) + "'";
  std::lock_guard<std::mutex> lock(mu_);
  sqlite3_stmt* stmt = get_device_.get();
  ScopedReset reset(stmt);
  HML_RETURN_IF_ERROR(db_.BindText(stmt, 1, id, what));
  HML_ASSIGN_OR_RETURN(const bool found, db_.Step(stmt, what));
  if (!found) return NotFoundError("device '" + std::string(id) + "' does not exist");
  return ReadDeviceRow(stmt);
}

Status SqliteAuthStore::RevokeDevice(std::string_view id) {
  const std::string what = "revoke device '" + std::string(id) + "'";
  std::lock_guard<std::mutex> lock(mu_);
  return db_.InTransaction(what, [&]() -> Status {
    sqlite3_stmt* stmt = revoke_device_.get();
    ScopedReset reset(stmt);
    HML_RETURN_IF_ERROR(db_.BindText(stmt, 1, id, what));
    HML_RETURN_IF_ERROR(db_.BindInt64(stmt, 2, NowUnix(), what));
    HML_ASSIGN_OR_RETURN(const bool found, db_.Step(stmt, what));
    if (!found) return NotFoundError("device '" + std::string(id) + "' does not exist");
    return Status::Ok();
  });
}

Result<std::vector<DeviceInfo>> SqliteAuthStore::ListDevices() {
  std::lock_guard<std::mutex> lock(mu_);
  sqlite3_stmt* stmt = list_devices_.get();
  ScopedReset reset(stmt);
  return db_.ReadAll(stmt, "list devices", ReadDeviceRow);
}

Result<Principal> SqliteAuthStore::Verify(std::string_view token) {
  HML_ASSIGN_OR_RETURN(const ParsedToken parsed, ParseToken(token));
  if (parsed.kind == CredentialKind::kEnrollmentSecret) {
    return UnauthenticatedError(
        "an enrollment secret is not a credential; only DeviceEnrollment.Enroll accepts it");
  }
  HML_RETURN_IF_ERROR(ota::InitCrypto());
  const std::string presented = ota::Sha256(token);
  HashRow row;
  bool found = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (parsed.kind == CredentialKind::kAdminKey) {
      HML_ASSIGN_OR_RETURN(found, ReadCredentialHash(parsed.kind, parsed.id, &row));
    } else {
      HML_ASSIGN_OR_RETURN(found, ReadDeviceHash(parsed.id, &row));
    }
  }
  const std::string name =
      std::string(CredentialKindName(parsed.kind)) + " " + std::string(parsed.id);
  // Unknown id and wrong secret get one message: the reply does not tell which ids exist.
  if (!found || !HashesEqual(row.token_sha256, presented)) {
    return UnauthenticatedError("unknown or wrong " + name);
  }
  if (row.revoked) return UnauthenticatedError(name + " is revoked");
  Principal principal;
  principal.kind =
      parsed.kind == CredentialKind::kAdminKey ? Principal::Kind::kAdmin : Principal::Kind::kDevice;
  principal.id = std::string(parsed.id);
  return principal;
}

}  // namespace

std::string_view CredentialKindName(CredentialKind kind) {
  switch (kind) {
    case CredentialKind::kAdminKey:
      return "admin key";
    case CredentialKind::kEnrollmentSecret:
      return "enrollment secret";
    case CredentialKind::kDevice:
      return "device credential";
  }
  return "credential";
}

std::string Principal::ToString() const { return (is_admin() ? "admin key " : "device ") + id; }

Result<ParsedToken> ParseToken(std::string_view token) {
  const auto malformed = [] {
    return UnauthenticatedError(
        "malformed credential: expected hmla_, hmle_ or hmld_ followed by a 16-hex-digit id, "
        "'_' and a 64-hex-digit secret");
  };
  constexpr size_t kPrefixChars = 4;
  if (token.size() != kPrefixChars + 1 + kTokenIdChars + 1 + kTokenSecretChars) return malformed();
  const std::string_view prefix = token.substr(0, kPrefixChars);
  ParsedToken parsed;
  if (prefix == kAdminPrefix) {
    parsed.kind = CredentialKind::kAdminKey;
  } else if (prefix == kEnrollmentPrefix) {
    parsed.kind = CredentialKind::kEnrollmentSecret;
  } else if (prefix == kDevicePrefix) {
    parsed.kind = CredentialKind::kDevice;
  } else {
    return malformed();
  }
  if (token[kPrefixChars] != '_' || token[kPrefixChars + 1 + kTokenIdChars] != '_') {
    return malformed();
  }
  parsed.id = token.substr(kPrefixChars + 1, kTokenIdChars);
  parsed.secret = token.substr(kPrefixChars + 1 + kTokenIdChars + 1);
  if (!IsLowerHex(parsed.id) || !IsLowerHex(parsed.secret)) return malformed();
  return parsed;
}

Result<std::unique_ptr<AuthStore>> AuthStore::Open(const std::string& path, Clock& clock) {
  SqliteOptions options;
  options.label = "auth database";
  options.busy_timeout_ms = kAuthBusyTimeoutMs;
  // Freed pages are zeroed, so a revoked or rewritten row leaves no old bytes behind.
  options.secure_delete = true;
  // Only the server's user may read the token hashes; the WAL copies the mode.
  options.create_mode = 0600;
  HML_ASSIGN_OR_RETURN(SqliteDb db, SqliteDb::Open(path, options));
  auto store = std::make_unique<SqliteAuthStore>(std::move(db), clock);
  HML_RETURN_IF_ERROR(store->Init());
  return std::unique_ptr<AuthStore>(std::move(store));
}

Result<std::unique_ptr<AuthStore>> AuthStore::OpenInRegistry(const std::string& registry_dir,
                                                             Clock& clock) {
  struct stat st {};
  if (::stat(registry_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return NotFoundError("registry directory '" + registry_dir + "' does not exist");
  }
  return Open(registry_dir + "/" + kAuthDbFileName, clock);
}

}  // namespace hml::server

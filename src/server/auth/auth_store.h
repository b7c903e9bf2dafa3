// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The server's credentials: admin API keys (for the CLI and publishing tools), enrollment secrets
// (provisioned on devices, traded once for a device credential) and enrolled devices, in one
// SQLite file, `<registry dir>/auth.db`. It is kept apart from registry.db so that the registry's
// Store interface does not grow auth concerns, and so that the registry's lock (held while
// publishing) never blocks an authentication.
//
// Tokens. Every credential is a bearer token of the form
//   hmla_<id>_<secret>   admin API key
//   hmle_<id>_<secret>   enrollment secret
//   hmld_<id>_<secret>   device credential (<id> is the device id)
// where <id> is 16 lowercase hex digits (8 random bytes; public, shown in listings and logs) and
// <secret> is 64 lowercase hex digits (32 bytes from libsodium's randombytes_buf, the operating
// system's CSPRNG). A token is returned once, when it is created, and never stored: the store
// keeps SHA-256 of the whole token string. Lookup is by (kind, id); the stored and the computed
// hash are compared with sodium_memcmp (constant time), so the time of a check does not depend
// on how much of a guessed secret was right.
//
// Why a fast hash and not a password hash (Argon2 / crypto_pwhash): a password hash is slow on
// purpose, to make guessing a low-entropy human password from a stolen hash expensive. These
// secrets are 256 random bits; no amount of guessing finds one, slow hash or fast. A password
// hash would cost tens of milliseconds and megabytes of memory on every authenticated call and
// make authentication itself a denial-of-service lever. SHA-256 over the full token (prefix and
// id included, so a hash row cannot be moved to another id or kind) is preimage resistant, which
// is all a stolen auth.db must not give away. No key (pepper) is mixed in: it would have to live
// next to the database on the same machine.
//
// Revocation sets revoked_unix; a revoked credential stays listed (who, when) and is refused
// from the next check on. Nothing is ever deleted, so ids are never reused.
//
// Concurrency: the file runs in WAL mode. Every call is its own transaction (reads see the
// latest commit of any process), so a revocation made by another process (the CLI while the
// server runs) is seen by this process's next check. Writers from other processes are waited for
// up to kAuthBusyTimeoutMs, then kUnavailable.
//
// Thread safety: an AuthStore is thread-safe (one connection behind a mutex).
#ifndef HML_SRC_SERVER_AUTH_AUTH_STORE_H_
#define HML_SRC_SERVER_AUTH_AUTH_STORE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "hml/clock.h"
#include "hml/status.h"

namespace hml::server {

// The file name of the auth store inside a registry directory.
inline constexpr char kAuthDbFileName[] = "auth.db";
// The schema version this build writes and reads.
inline constexpr int64_t kAuthSchemaVersion = 1;
// How long a call waits for another process's write lock before kUnavailable.
inline constexpr int kAuthBusyTimeoutMs = 5000;
// Lengths of a token's parts, in characters.
inline constexpr size_t kTokenIdChars = 16;
inline constexpr size_t kTokenSecretChars = 64;
// Longest name or platform string stored.
inline constexpr size_t kMaxAuthNameLength = 128;

enum class CredentialKind { kAdminKey, kEnrollmentSecret, kDevice };

// "admin key", "enrollment secret", "device credential": for messages.
std::string_view CredentialKindName(CredentialKind kind);

// A token split into its parts. The views point into the string passed to ParseToken.
struct ParsedToken {
  CredentialKind kind = CredentialKind::kAdminKey;
  std::string_view id;
  std::string_view secret;
};

// Splits `token` ("hmla_<16 hex>_<64 hex>", ...). kUnauthenticated when it does not have that
// form; the message never contains the token.
Result<ParsedToken> ParseToken(std::string_view token);

// An admin key or an enrollment secret, without its secret.
struct CredentialInfo {
  std::string id;
  std::string name;
  int64_t created_unix = 0;
  bool revoked = false;
  int64_t revoked_unix = 0;  // meaningful when revoked
};

// An enrolled device, without its credential.
struct DeviceInfo {
  std::string id;
  std::string name;
  std::string platform;
  // The enrollment secret the device enrolled with.
  std::string enrollment_secret_id;
  int64_t created_unix = 0;
  bool revoked = false;
  int64_t revoked_unix = 0;  // meaningful when revoked
};

// A newly created credential: `token` is the only copy of the secret anywhere.
struct IssuedToken {
  std::string id;
  std::string token;
};

struct EnrolledDevice {
  DeviceInfo device;
  std::string credential;  // "hmld_<device id>_<secret>", shown once
};

// Who made a call: an admin key or a device.
struct Principal {
  enum class Kind { kAdmin, kDevice };
  Kind kind = Kind::kDevice;
  // The admin key's id, or the device's id.
  std::string id;

  bool is_admin() const { return kind == Kind::kAdmin; }
  // "admin key <id>" or "device <id>", for messages.
  std::string ToString() const;
};

class AuthStore {
 public:
  // Opens (creating if absent) the store in the SQLite file `path`. A file it creates gets mode
  // 0600 (SQLite gives the -wal and -shm files the same): the hashes are useless to an attacker,
  // but the device list is the operator's business. `clock` (wall time for the created/revoked
  // stamps) must outlive the store.
  // Errors: kNotFound when the file cannot be opened or created (a missing directory);
  // kDataLoss when it is not a SQLite database; kFailedPrecondition for a schema version this
  // build does not read; kUnavailable when another process holds the lock too long.
  static Result<std::unique_ptr<AuthStore>> Open(const std::string& path, Clock& clock);
  // The same for `<registry_dir>/auth.db`; kNotFound naming the directory when it does not
  // exist (the file is never created in a directory that is not there).
  static Result<std::unique_ptr<AuthStore>> OpenInRegistry(const std::string& registry_dir,
                                                           Clock& clock);

  virtual ~AuthStore() = default;

  // Creates a credential of `kind` kAdminKey or kEnrollmentSecret named `name` (1 to 128
  // printable ASCII characters; kInvalidArgument otherwise, or for kind kDevice).
  virtual Result<IssuedToken> CreateCredential(CredentialKind kind, std::string_view name) = 0;
  // Marks it revoked. Idempotent (a second revoke keeps the first time). kNotFound for an id
  // that does not exist. Kind kDevice revokes the device `id` (RevokeDevice).
  virtual Status RevokeCredential(CredentialKind kind, std::string_view id) = 0;
  // All credentials of `kind`, oldest first.
  virtual Result<std::vector<CredentialInfo>> ListCredentials(CredentialKind kind) = 0;

  // Trades an enrollment secret for a new device named `name` on `platform` (both 1 to 128
  // printable ASCII characters for the name, 0 to 128 for the platform; kInvalidArgument).
  // kUnauthenticated for a malformed, unknown, wrong or revoked enrollment secret, and then no
  // device is created.
  virtual Result<EnrolledDevice> Enroll(std::string_view enrollment_secret, std::string_view name,
                                        std::string_view platform) = 0;
  // kNotFound for an unknown device id.
  virtual Result<DeviceInfo> GetDevice(std::string_view id) = 0;
  // Idempotent like RevokeCredential; kNotFound for an unknown id.
  virtual Status RevokeDevice(std::string_view id) = 0;
  // All devices, oldest first.
  virtual Result<std::vector<DeviceInfo>> ListDevices() = 0;

  // Who holds `token` (an admin key or a device credential), checked against the database as
  // committed now. kUnauthenticated, one message per reason, never containing the secret:
  // malformed; an enrollment secret (only Enroll takes those); unknown or wrong; revoked.
  // Other codes (kUnavailable, kDataLoss, ...) when the database cannot be read.
  virtual Result<Principal> Verify(std::string_view token) = 0;
};

}  // namespace hml::server

#endif  // HML_SRC_SERVER_AUTH_AUTH_STORE_H_

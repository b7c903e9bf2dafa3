// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The four roles of signed update metadata, after The Update Framework (TUF) specification:
//   root       keys, and per role the key ids allowed to sign it and how many must (threshold);
//              rotated by a chain of versions, each signed by the old and the new root keys
//   targets    the model files: name -> length, sha256 and custom fields (version, rollout, ...)
//   snapshot   the version (and optionally length and hash) of targets.json
//   timestamp  the version, length and hash of snapshot.json; short expiry
// Every role has a version that never goes back and an expiry time. A file is an envelope
// {"signatures":[{"keyid":..,"sig":..}],"signed":{..}} whose signatures cover the canonical JSON
// of "signed".
//
// Error codes used throughout src/ota (tests assert them):
//   kUnauthenticated     fewer than the threshold of distinct authorized valid signatures
//   kDeadlineExceeded    metadata expired (at the later of the clock and the trusted time)
//   kFailedPrecondition  a version that goes back, or a root version that skips one
//   kDataLoss            bytes whose length or hash differ from what the referring role says
//   kResourceExhausted   more bytes than a declared or configured limit
//   kInvalidArgument     malformed metadata (JSON, fields, types, target names)
#ifndef HML_SRC_OTA_METADATA_H_
#define HML_SRC_OTA_METADATA_H_

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "hml/status.h"
#include "src/ota/crypto.h"
#include "src/ota/json.h"

namespace hml::ota {

inline constexpr std::string_view kSpecVersion = "1.0.31";

enum class Role { kRoot, kTargets, kSnapshot, kTimestamp };
// "root", "targets", "snapshot", "timestamp"; file names are these plus ".json".
std::string_view RoleName(Role role);

// Seconds since the Unix epoch <-> "YYYY-MM-DDTHH:MM:SSZ" (UTC, the only form accepted).
std::string FormatUtc(int64_t unix_seconds);
Result<int64_t> ParseUtc(std::string_view text);

struct RoleKeys {
  std::vector<std::string> keyids;
  int64_t threshold = 1;
};

struct RootMeta {
  int64_t version = 1;
  int64_t expires = 0;
  std::map<std::string, PublicKey> keys;  // by key id (checked to match the key)
  std::map<std::string, RoleKeys> roles;  // by role name; all four must be present

  Json ToJson() const;
  static Result<RootMeta> FromJson(const Json& signed_part);
  const RoleKeys& role(Role r) const { return roles.at(std::string(RoleName(r))); }
};

struct TargetFile {
  int64_t length = 0;
  std::string sha256;  // 64 lowercase hex
  Json custom;         // object or null
};

struct TargetsMeta {
  int64_t version = 1;
  int64_t expires = 0;
  std::map<std::string, TargetFile> targets;  // by target name (see ValidateTargetName)

  Json ToJson() const;
  static Result<TargetsMeta> FromJson(const Json& signed_part);
};

// A metadata file as another role describes it. length -1 and an empty sha256 mean "not given".
struct MetaFile {
  int64_t version = 0;
  int64_t length = -1;
  std::string sha256;
};

struct SnapshotMeta {
  int64_t version = 1;
  int64_t expires = 0;
  std::map<std::string, MetaFile> meta;  // "targets.json" -> ...

  Json ToJson() const;
  static Result<SnapshotMeta> FromJson(const Json& signed_part);
};

struct TimestampMeta {
  int64_t version = 1;
  int64_t expires = 0;
  MetaFile snapshot;  // "snapshot.json"

  Json ToJson() const;
  static Result<TimestampMeta> FromJson(const Json& signed_part);
};

// Target names are relative paths of [A-Za-z0-9._-] segments joined by '/': no empty, "." or
// ".." segment, no leading '/', no backslash, at most 255 bytes. kInvalidArgument otherwise.
Status ValidateTargetName(std::string_view name);

struct Signature {
  std::string keyid;
  std::string sig;  // 64 raw bytes
};

struct Envelope {
  Json signed_part;
  std::vector<Signature> signatures;

  // The bytes the signatures cover.
  std::string SignedBytes() const { return CanonicalJson(signed_part); }
  // The file's bytes (canonical JSON of the whole envelope, so equal metadata gives equal files).
  std::string Serialize() const;
  // Parses a metadata file of at most `max_bytes`; kResourceExhausted above it (checked before
  // parsing), kInvalidArgument for malformed envelopes.
  static Result<Envelope> Parse(std::string_view bytes, int64_t max_bytes);
  // The role named by signed._type; kInvalidArgument if it is not `want`.
  Status CheckType(Role want) const;
};

// An envelope of `signed_part` signed by each of `keys`.
Envelope SignEnvelope(Json signed_part, std::span<const KeyPair> keys);

// Checks that `envelope` carries at least `keys.threshold` valid signatures by distinct key ids
// from `keys.keyids` (known to `root`). Unknown key ids, invalid signatures and repeats of a key
// id count nothing. kUnauthenticated naming the role and the count otherwise.
Status VerifyThreshold(const Envelope& envelope, const RootMeta& root, const RoleKeys& keys,
                       std::string_view role);

}  // namespace hml::ota

#endif  // HML_SRC_OTA_METADATA_H_

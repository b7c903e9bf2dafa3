// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/ota/metadata.h"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <set>

namespace hml::ota {
namespace {

// The fields every role shares: _type, spec_version, version >= 1, expires.
Status ReadCommon(const Json& j, Role role, int64_t* version, int64_t* expires) {
  if (!j.is_object()) return InvalidArgumentError("metadata: 'signed' is not an object");
  HML_ASSIGN_OR_RETURN(std::string type, j.GetString("_type"));
  if (type != RoleName(role)) {
    return InvalidArgumentError("metadata: _type '" + type + "', expected '" +
                                std::string(RoleName(role)) + "'");
  }
  HML_ASSIGN_OR_RETURN(std::string spec, j.GetString("spec_version"));
  if (spec.rfind("1.", 0) != 0) {
    return InvalidArgumentError("metadata: spec_version '" + spec + "' is not 1.x");
  }
  HML_ASSIGN_OR_RETURN(*version, j.GetInt("version"));
  if (*version < 1) {
    return InvalidArgumentError(std::string(RoleName(role)) + ": version " +
                                std::to_string(*version) + " is not positive");
  }
  HML_ASSIGN_OR_RETURN(std::string when, j.GetString("expires"));
  HML_ASSIGN_OR_RETURN(*expires, ParseUtc(when));
  return Status::Ok();
}

Json Common(Role role, int64_t version, int64_t expires) {
  Json j = Json::Object{};
  j["_type"] = std::string(RoleName(role));
  j["spec_version"] = std::string(kSpecVersion);
  j["version"] = version;
  j["expires"] = FormatUtc(expires);
  return j;
}

bool IsLowerHex(std::string_view s, size_t length) {
  if (s.size() != length) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// {"length": N, "hashes": {"sha256": HEX}} members of `j` (both optional when !required).
Status ReadLengthAndHash(const Json& j, const std::string& what, bool required, int64_t* length,
                         std::string* sha256) {
  if (const Json* l = j.Find("length"); l != nullptr || required) {
    HML_ASSIGN_OR_RETURN(*length, j.GetInt("length"));
    if (*length < 0) return InvalidArgumentError(what + ": negative length");
  }
  if (const Json* h = j.Find("hashes"); h != nullptr || required) {
    HML_ASSIGN_OR_RETURN(const Json* hashes, j.Get("hashes"));
    HML_ASSIGN_OR_RETURN(*sha256, hashes->GetString("sha256"));
    if (!IsLowerHex(*sha256, 64)) {
      return InvalidArgumentError(what + ": sha256 is not 64 lowercase hex characters");
    }
  }
  return Status::Ok();
}

void WriteLengthAndHash(Json& j, int64_t length, const std::string& sha256) {
  if (length >= 0) j["length"] = length;
  if (!sha256.empty()) j["hashes"]["sha256"] = sha256;
}

Result<MetaFile> ReadMetaFile(const Json& j, const std::string& what) {
  MetaFile m;
  HML_ASSIGN_OR_RETURN(m.version, j.GetInt("version"));
  if (m.version < 1) return InvalidArgumentError(what + ": version is not positive");
  HML_RETURN_IF_ERROR(ReadLengthAndHash(j, what, /*required=*/false, &m.length, &m.sha256));
  return m;
}

Json WriteMetaFile(const MetaFile& m) {
  Json j = Json::Object{};
  j["version"] = m.version;
  WriteLengthAndHash(j, m.length, m.sha256);
  return j;
}

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil
// algorithm, restated).
int64_t DaysFromCivil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

}  // namespace

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kRoot: return "root";
    case Role::kTargets: return "targets";
    case Role::kSnapshot: return "snapshot";
    case Role::kTimestamp: return "timestamp";
  }
  return "?";
}

std::string FormatUtc(int64_t unix_seconds) {
  const time_t t = static_cast<time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[96];  // room for any int fields, so the compiler can prove no truncation
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

Result<int64_t> ParseUtc(std::string_view s) {
  auto digits = [&](size_t pos, size_t n, int64_t* out) {
    int64_t v = 0;
    for (size_t i = pos; i < pos + n; ++i) {
      if (s[i] < '0' || s[i] > '9') return false;
      v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
  };
  int64_t y, mo, d, h, mi, se;
  const bool shape = s.size() == 20 && s[4] == '-' && s[7] == '-' && s[10] == 'T' &&
                     s[13] == ':' && s[16] == ':' && s[19] == 'Z';
  if (!shape || !digits(0, 4, &y) || !digits(5, 2, &mo) || !digits(8, 2, &d) ||
      !digits(11, 2, &h) || !digits(14, 2, &mi) || !digits(17, 2, &se) || mo < 1 || mo > 12 ||
      d < 1 || d > 31 || h > 23 || mi > 59 || se > 59) {
    return InvalidArgumentError("time '" + std::string(s) +
                                "' is not of the form YYYY-MM-DDTHH:MM:SSZ");
  }
  const int64_t t = DaysFromCivil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se;
  if (FormatUtc(t) != s) return InvalidArgumentError("time '" + std::string(s) + "' is not a date");
  return t;
}

Status ValidateTargetName(std::string_view name) {
  auto bad = [&](const std::string& why) {
    return InvalidArgumentError("target name '" + std::string(name) + "': " + why);
  };
  if (name.empty() || name.size() > 255) return bad("length must be 1 to 255 bytes");
  size_t start = 0;
  while (start <= name.size()) {
    const size_t slash = name.find('/', start);
    const std::string_view seg =
        name.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (seg.empty()) return bad("empty path segment");
    if (seg == "." || seg == "..") return bad("'.' and '..' segments are not allowed");
    for (char c : seg) {
      const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '.' || c == '_' || c == '-';
      if (!ok) return bad("character outside [A-Za-z0-9._-/]");
    }
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return Status::Ok();
}

Json RootMeta::ToJson() const {
  Json j = Common(Role::kRoot, version, expires);
  j["consistent_snapshot"] = false;
  Json keys_json = Json::Object{};
  for (const auto& [id, key] : keys) keys_json[id] = key.ToJson();
  j["keys"] = std::move(keys_json);
  Json roles_json = Json::Object{};
  for (const auto& [name, r] : roles) {
    Json ids = Json::Array{};
    for (const std::string& id : r.keyids) ids.as_array().push_back(id);
    roles_json[name]["keyids"] = std::move(ids);
    roles_json[name]["threshold"] = r.threshold;
  }
  j["roles"] = std::move(roles_json);
  return j;
}

Result<RootMeta> RootMeta::FromJson(const Json& j) {
  RootMeta m;
  HML_RETURN_IF_ERROR(ReadCommon(j, Role::kRoot, &m.version, &m.expires));
  HML_ASSIGN_OR_RETURN(const Json::Object* keys, j.GetObject("keys"));
  for (const auto& [id, key_json] : *keys) {
    Result<PublicKey> key = PublicKey::FromJson(key_json);
    if (!key.ok()) return key.status().WithContext("root: key '" + id + "'");
    if (key->Id() != id) {
      return InvalidArgumentError("root: key id '" + id + "' is not the hash of its key");
    }
    m.keys.emplace(id, std::move(*key));
  }
  HML_ASSIGN_OR_RETURN(const Json::Object* roles, j.GetObject("roles"));
  for (Role r : {Role::kRoot, Role::kTargets, Role::kSnapshot, Role::kTimestamp}) {
    const std::string name(RoleName(r));
    auto it = roles->find(name);
    if (it == roles->end()) return InvalidArgumentError("root: no '" + name + "' role");
    RoleKeys rk;
    HML_ASSIGN_OR_RETURN(rk.threshold, it->second.GetInt("threshold"));
    if (rk.threshold < 1) {
      return InvalidArgumentError("root: role '" + name + "' has threshold " +
                                  std::to_string(rk.threshold) + " (must be >= 1)");
    }
    HML_ASSIGN_OR_RETURN(const Json::Array* ids, it->second.GetArray("keyids"));
    std::set<std::string> seen;
    for (const Json& id : *ids) {
      if (!id.is_string()) return InvalidArgumentError("root: role '" + name + "': key id type");
      if (!seen.insert(id.as_string()).second) {
        return InvalidArgumentError("root: role '" + name + "' lists key id '" + id.as_string() +
                                    "' twice");
      }
      if (!m.keys.count(id.as_string())) {
        return InvalidArgumentError("root: role '" + name + "' names unknown key '" +
                                    id.as_string() + "'");
      }
      rk.keyids.push_back(id.as_string());
    }
    if (static_cast<int64_t>(rk.keyids.size()) < rk.threshold) {
      return InvalidArgumentError("root: role '" + name + "' has " +
                                  std::to_string(rk.keyids.size()) + " keys for threshold " +
                                  std::to_string(rk.threshold));
    }
    m.roles.emplace(name, std::move(rk));
  }
  return m;
}

Json TargetsMeta::ToJson() const {
  Json j = Common(Role::kTargets, version, expires);
  Json files = Json::Object{};
  for (const auto& [name, t] : targets) {
    Json f = Json::Object{};
    WriteLengthAndHash(f, t.length, t.sha256);
    if (!t.custom.is_null()) f["custom"] = t.custom;
    files[name] = std::move(f);
  }
  j["targets"] = std::move(files);
  return j;
}

Result<TargetsMeta> TargetsMeta::FromJson(const Json& j) {
  TargetsMeta m;
  HML_RETURN_IF_ERROR(ReadCommon(j, Role::kTargets, &m.version, &m.expires));
  HML_ASSIGN_OR_RETURN(const Json::Object* files, j.GetObject("targets"));
  for (const auto& [name, f] : *files) {
    HML_RETURN_IF_ERROR(ValidateTargetName(name));
    TargetFile t;
    HML_RETURN_IF_ERROR(
        ReadLengthAndHash(f, "target '" + name + "'", /*required=*/true, &t.length, &t.sha256));
    if (const Json* c = f.Find("custom")) {
      if (!c->is_object()) return InvalidArgumentError("target '" + name + "': custom type");
      t.custom = *c;
    }
    m.targets.emplace(name, std::move(t));
  }
  return m;
}

Json SnapshotMeta::ToJson() const {
  Json j = Common(Role::kSnapshot, version, expires);
  Json files = Json::Object{};
  for (const auto& [name, f] : meta) files[name] = WriteMetaFile(f);
  j["meta"] = std::move(files);
  return j;
}

Result<SnapshotMeta> SnapshotMeta::FromJson(const Json& j) {
  SnapshotMeta m;
  HML_RETURN_IF_ERROR(ReadCommon(j, Role::kSnapshot, &m.version, &m.expires));
  HML_ASSIGN_OR_RETURN(const Json::Object* files, j.GetObject("meta"));
  for (const auto& [name, f] : *files) {
    HML_ASSIGN_OR_RETURN(MetaFile mf, ReadMetaFile(f, "snapshot: '" + name + "'"));
    m.meta.emplace(name, mf);
  }
  if (!m.meta.count("targets.json")) {
    return InvalidArgumentError("snapshot: no entry for 'targets.json'");
  }
  return m;
}

Json TimestampMeta::ToJson() const {
  Json j = Common(Role::kTimestamp, version, expires);
  j["meta"]["snapshot.json"] = WriteMetaFile(snapshot);
  return j;
}

Result<TimestampMeta> TimestampMeta::FromJson(const Json& j) {
  TimestampMeta m;
  HML_RETURN_IF_ERROR(ReadCommon(j, Role::kTimestamp, &m.version, &m.expires));
  HML_ASSIGN_OR_RETURN(const Json::Object* files, j.GetObject("meta"));
  auto it = files->find("snapshot.json");
  if (it == files->end() || files->size() != 1) {
    return InvalidArgumentError("timestamp: 'meta' must hold exactly 'snapshot.json'");
  }
  HML_ASSIGN_OR_RETURN(m.snapshot, ReadMetaFile(it->second, "timestamp: 'snapshot.json'"));
  return m;
}

std::string Envelope::Serialize() const {
  Json j = Json::Object{};
  Json sigs = Json::Array{};
  for (const Signature& s : signatures) {
    Json e = Json::Object{};
    e["keyid"] = s.keyid;
    e["sig"] = ToHex(s.sig);
    sigs.as_array().push_back(std::move(e));
  }
  j["signatures"] = std::move(sigs);
  j["signed"] = signed_part;
  return CanonicalJson(j);
}

Result<Envelope> Envelope::Parse(std::string_view bytes, int64_t max_bytes) {
  if (static_cast<int64_t>(bytes.size()) > max_bytes) {
    return ResourceExhaustedError("metadata: " + std::to_string(bytes.size()) +
                                  " bytes exceed the limit of " + std::to_string(max_bytes));
  }
  JsonLimits limits;
  limits.max_bytes = max_bytes;
  HML_ASSIGN_OR_RETURN(Json j, ParseJson(bytes, limits));
  Envelope e;
  HML_ASSIGN_OR_RETURN(const Json* signed_part, j.Get("signed"));
  if (!signed_part->is_object()) return InvalidArgumentError("metadata: 'signed' is not an object");
  e.signed_part = *signed_part;
  HML_ASSIGN_OR_RETURN(const Json::Array* sigs, j.GetArray("signatures"));
  for (const Json& s : *sigs) {
    Signature sig;
    HML_ASSIGN_OR_RETURN(sig.keyid, s.GetString("keyid"));
    HML_ASSIGN_OR_RETURN(std::string hex, s.GetString("sig"));
    HML_ASSIGN_OR_RETURN(sig.sig, FromHex(hex, "signature"));
    e.signatures.push_back(std::move(sig));
  }
  return e;
}

Status Envelope::CheckType(Role want) const {
  HML_ASSIGN_OR_RETURN(std::string type, signed_part.GetString("_type"));
  if (type != RoleName(want)) {
    return InvalidArgumentError("metadata: _type '" + type + "', expected '" +
                                std::string(RoleName(want)) + "'");
  }
  return Status::Ok();
}

Envelope SignEnvelope(Json signed_part, std::span<const KeyPair> keys) {
  Envelope e;
  e.signed_part = std::move(signed_part);
  const std::string bytes = e.SignedBytes();
  for (const KeyPair& k : keys) e.signatures.push_back({k.Id(), k.Sign(bytes)});
  return e;
}

Status VerifyThreshold(const Envelope& envelope, const RootMeta& root, const RoleKeys& keys,
                       std::string_view role) {
  const std::string bytes = envelope.SignedBytes();
  std::set<std::string> valid;
  for (const Signature& s : envelope.signatures) {
    if (valid.count(s.keyid)) continue;  // a key counts once, however often it signed
    if (std::find(keys.keyids.begin(), keys.keyids.end(), s.keyid) == keys.keyids.end()) continue;
    auto key = root.keys.find(s.keyid);
    if (key == root.keys.end()) continue;
    if (VerifySignature(key->second, bytes, s.sig)) valid.insert(s.keyid);
  }
  if (static_cast<int64_t>(valid.size()) < keys.threshold) {
    return UnauthenticatedError(std::string(role) + ": " + std::to_string(valid.size()) +
                                " valid signatures by distinct authorized keys, threshold " +
                                std::to_string(keys.threshold));
  }
  return Status::Ok();
}

}  // namespace hml::ota

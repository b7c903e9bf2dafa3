// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/ota/repository.h"

#include <set>
#include <type_traits>
#include <utility>

namespace hml::ota {
namespace {

// Largest metadata file Load reads; the client's own limit for targets.json is the same.
constexpr int64_t kMaxMetadataBytes = int64_t{16} << 20;

RoleKeys KeysOf(const RoleSigners& s) {
  RoleKeys k;
  for (const KeyPair& p : s.keys) k.keyids.push_back(p.Id());
  k.threshold = s.threshold;
  return k;
}

Status CheckSigners(const RoleSigners& s, Role role) {
  if (s.keys.empty() || s.threshold < 1 || s.threshold > static_cast<int64_t>(s.keys.size())) {
    return InvalidArgumentError("repository: role '" + std::string(RoleName(role)) + "' has " +
                                std::to_string(s.keys.size()) + " keys and threshold " +
                                std::to_string(s.threshold));
  }
  return Status::Ok();
}

bool IsLowerHex64(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// Reads and parses `<repo_dir>/<role>.json`, checks its type and its signatures against
// `root`'s keys for the role. Returns the envelope; the file's bytes go to *bytes.
Result<Envelope> ReadRoleFile(Env& env, const std::string& repo_dir, Role role,
                              const RootMeta* root, std::string* bytes) {
  const std::string name = std::string(RoleName(role)) + ".json";
  const std::string path = repo_dir + "/" + name;
  HML_ASSIGN_OR_RETURN(*bytes, env.ReadFile(path, kMaxMetadataBytes));
  Result<Envelope> envelope = Envelope::Parse(*bytes, kMaxMetadataBytes);
  if (!envelope.ok()) return envelope.status().WithContext("repository file '" + path + "'");
  HML_RETURN_IF_ERROR(envelope->CheckType(role).WithContext("repository file '" + path + "'"));
  if (root != nullptr) {
    HML_RETURN_IF_ERROR(VerifyThreshold(*envelope, *root, root->role(role), RoleName(role))
                            .WithContext("repository file '" + path + "'"));
  }
  return envelope;
}

// kFailedPrecondition unless `signers` are exactly the key ids and threshold `root` lists for
// `role`: signing with other keys would produce metadata devices reject.
Status CheckSignersMatchRoot(const RoleSigners& signers, const RootMeta& root, Role role) {
  std::set<std::string> given;
  for (const KeyPair& k : signers.keys) given.insert(k.Id());
  const RoleKeys& listed = root.role(role);
  const std::set<std::string> want(listed.keyids.begin(), listed.keyids.end());
  if (given != want || signers.threshold != listed.threshold) {
    const auto ids = [](const std::set<std::string>& s) {
      std::string out;
      for (const std::string& id : s) out += (out.empty() ? "" : ",") + id.substr(0, 12);
      return out;
    };
    return FailedPreconditionError(
        "repository: the keys given for role '" + std::string(RoleName(role)) + "' [" + ids(given) +
        "] threshold " + std::to_string(signers.threshold) + " are not the keys [" + ids(want) +
        "] threshold " + std::to_string(listed.threshold) + " that root version " +
        std::to_string(root.version) + " lists");
  }
  return Status::Ok();
}

}  // namespace

Result<Repository> Repository::Create(RoleSigners root, RoleSigners targets, RoleSigners snapshot,
                                      RoleSigners timestamp, int64_t now,
                                      const RepositoryOptions& options) {
  Repository r;
  r.options_ = options;
  const std::pair<Role, RoleSigners*> roles[] = {{Role::kRoot, &root},
                                                 {Role::kTargets, &targets},
                                                 {Role::kSnapshot, &snapshot},
                                                 {Role::kTimestamp, &timestamp}};
  for (const auto& [role, s] : roles) {
    HML_RETURN_IF_ERROR(CheckSigners(*s, role));
    r.signers_[std::string(RoleName(role))] = std::move(*s);
  }
  r.root_.version = 1;
  r.root_.expires = now + options.root_lifetime;
  for (const auto& [name, s] : r.signers_) {
    for (const KeyPair& k : s.keys) r.root_.keys[k.Id()] = k.public_key;
    r.root_.roles[name] = KeysOf(s);
  }
  r.SignRoot({});
  r.targets_.version = 0;
  r.snapshot_.version = 0;
  r.timestamp_.version = 0;
  r.SignTargetsAndAbove(now);
  return r;
}

void Repository::SignRoot(const std::vector<KeyPair>& extra_root_signers) {
  std::vector<KeyPair> keys = signers_.at("root").keys;
  for (const KeyPair& k : extra_root_signers) {
    bool present = false;
    for (const KeyPair& have : keys) present = present || have.Id() == k.Id();
    if (!present) keys.push_back(k);
  }
  const std::string bytes = SignEnvelope(root_.ToJson(), keys).Serialize();
  files_["root.json"] = bytes;
  files_[std::to_string(root_.version) + ".root.json"] = bytes;
}

void Repository::SignRole(Role role, const Json& meta) {
  const std::string name(RoleName(role));
  files_[name + ".json"] = SignEnvelope(meta, signers_.at(name).keys).Serialize();
}

void Repository::SignTargetsAndAbove(int64_t now) {
  targets_.version += 1;
  targets_.expires = now + options_.targets_lifetime;
  SignRole(Role::kTargets, targets_.ToJson());
  const std::string& t = files_.at("targets.json");
  snapshot_.version += 1;
  snapshot_.expires = now + options_.snapshot_lifetime;
  snapshot_.meta["targets.json"] = {targets_.version, static_cast<int64_t>(t.size()),
                                    Sha256Hex(t)};
  SignRole(Role::kSnapshot, snapshot_.ToJson());
  SignTimestamp(now);
}

void Repository::SignTimestamp(int64_t now) {
  timestamp_.version += 1;
  timestamp_.expires = now + options_.timestamp_lifetime;
  const std::string& s = files_.at("snapshot.json");
  timestamp_.snapshot = {snapshot_.version, static_cast<int64_t>(s.size()), Sha256Hex(s)};
  SignRole(Role::kTimestamp, timestamp_.ToJson());
}

Status Repository::AddTarget(const std::string& name, std::string_view bytes, Json custom,
                             int64_t now) {
  HML_RETURN_IF_ERROR(ValidateTargetName(name));
  if (!custom.is_null() && !custom.is_object()) {
    return InvalidArgumentError("target '" + name + "': custom fields must be an object");
  }
  targets_.targets[name] = {static_cast<int64_t>(bytes.size()), Sha256Hex(bytes),
                            std::move(custom)};
  files_["targets/" + name] = std::string(bytes);
  SignTargetsAndAbove(now);
  return Status::Ok();
}

Status Repository::SetTargets(std::map<std::string, TargetFile> targets, int64_t now) {
  for (const auto& [name, file] : targets) {
    HML_RETURN_IF_ERROR(ValidateTargetName(name));
    if (!file.custom.is_null() && !file.custom.is_object()) {
      return InvalidArgumentError("target '" + name + "': custom fields must be an object");
    }
    if (file.length < 0 || !IsLowerHex64(file.sha256)) {
      return InvalidArgumentError("target '" + name + "': length " + std::to_string(file.length) +
                                  " and sha256 '" + file.sha256 +
                                  "' must be >= 0 and 64 lowercase hex digits");
    }
  }
  // Held bytes stay only while they still match the metadata.
  for (auto it = files_.begin(); it != files_.end();) {
    const std::string_view path = it->first;
    if (path.starts_with("targets/")) {
      const auto t = targets.find(std::string(path.substr(8)));
      if (t == targets.end() || t->second.length != static_cast<int64_t>(it->second.size()) ||
          t->second.sha256 != Sha256Hex(it->second)) {
        it = files_.erase(it);
        continue;
      }
    }
    ++it;
  }
  targets_.targets = std::move(targets);
  SignTargetsAndAbove(now);
  return Status::Ok();
}

Status Repository::RemoveTarget(const std::string& name, int64_t now) {
  if (targets_.targets.erase(name) == 0) {
    return NotFoundError("repository: no target '" + name + "'");
  }
  files_.erase("targets/" + name);
  SignTargetsAndAbove(now);
  return Status::Ok();
}

Status Repository::RotateKeys(Role role, RoleSigners signers, int64_t now) {
  HML_RETURN_IF_ERROR(CheckSigners(signers, role));
  const std::vector<KeyPair> old_root_keys = signers_.at("root").keys;
  const std::string name(RoleName(role));
  signers_[name] = std::move(signers);
  root_.version += 1;
  root_.expires = now + options_.root_lifetime;
  root_.keys.clear();
  for (const auto& [role_name, s] : signers_) {
    for (const KeyPair& k : s.keys) root_.keys[k.Id()] = k.public_key;
    root_.roles[role_name] = KeysOf(s);
  }
  SignRoot(old_root_keys);  // the new root is signed by the old root keys and the new ones
  SignTargetsAndAbove(now);
  return Status::Ok();
}

Status Repository::RefreshTimestamp(int64_t now) {
  SignTimestamp(now);
  return Status::Ok();
}

Status Repository::Save(Env& env, const std::string& repo_dir) const {
  for (const auto& [name, file] : targets_.targets) {
    const std::string rel = "targets/" + name;
    if (files_.count(rel) == 0 && !env.FileExists(repo_dir + "/" + rel)) {
      return FailedPreconditionError("repository '" + repo_dir + "': target '" + name +
                                     "' is not in memory and not on disk at '" + repo_dir + "/" +
                                     rel + "'");
    }
  }
  // Bottom-up, as TUF prescribes for a live repository: what a file refers to is written
  // before it, and timestamp.json, where devices start, last.
  std::vector<std::string> order;
  for (const auto& [name, bytes] : files_) {
    if (name.starts_with("targets/")) order.push_back(name);
  }
  for (const auto& [name, bytes] : files_) {
    if (name.ends_with(".root.json")) order.push_back(name);
  }
  for (const char* name : {"root.json", "targets.json", "snapshot.json", "timestamp.json"}) {
    order.push_back(name);
  }
  for (const std::string& name : order) {
    HML_RETURN_IF_ERROR(env.WriteFileAtomic(repo_dir + "/" + name, files_.at(name)));
  }
  return Status::Ok();
}

Result<Repository> Repository::Load(Env& env, const std::string& repo_dir, RoleSigners root,
                                    RoleSigners targets, RoleSigners snapshot,
                                    RoleSigners timestamp, const RepositoryOptions& options) {
  Repository r;
  r.options_ = options;
  std::string root_bytes;
  HML_ASSIGN_OR_RETURN(const Envelope root_env,
                       ReadRoleFile(env, repo_dir, Role::kRoot, nullptr, &root_bytes));
  Result<RootMeta> root_meta = RootMeta::FromJson(root_env.signed_part);
  if (!root_meta.ok()) return root_meta.status().WithContext(repo_dir + "/root.json");
  r.root_ = std::move(*root_meta);
  HML_RETURN_IF_ERROR(VerifyThreshold(root_env, r.root_, r.root_.role(Role::kRoot), "root")
                          .WithContext(repo_dir + "/root.json"));
  const std::pair<Role, RoleSigners*> roles[] = {{Role::kRoot, &root},
                                                 {Role::kTargets, &targets},
                                                 {Role::kSnapshot, &snapshot},
                                                 {Role::kTimestamp, &timestamp}};
  for (const auto& [role, s] : roles) {
    HML_RETURN_IF_ERROR(CheckSigners(*s, role));
    HML_RETURN_IF_ERROR(CheckSignersMatchRoot(*s, r.root_, role).WithContext(repo_dir));
    r.signers_[std::string(RoleName(role))] = std::move(*s);
  }
  r.files_["root.json"] = root_bytes;
  r.files_[std::to_string(r.root_.version) + ".root.json"] = std::move(root_bytes);

  // Each role file: signed by the role's keys in the loaded root, parsed as its metadata.
  auto load = [&](Role role, auto* meta) -> Status {
    std::string bytes;
    HML_ASSIGN_OR_RETURN(const Envelope e, ReadRoleFile(env, repo_dir, role, &r.root_, &bytes));
    const std::string file = std::string(RoleName(role)) + ".json";
    auto parsed = std::remove_pointer_t<decltype(meta)>::FromJson(e.signed_part);
    if (!parsed.ok()) return parsed.status().WithContext(repo_dir + "/" + file);
    *meta = std::move(*parsed);
    r.files_[file] = std::move(bytes);
    return Status::Ok();
  };
  HML_RETURN_IF_ERROR(load(Role::kTargets, &r.targets_));
  HML_RETURN_IF_ERROR(load(Role::kSnapshot, &r.snapshot_));
  HML_RETURN_IF_ERROR(load(Role::kTimestamp, &r.timestamp_));
  return r;
}

}  // namespace hml::ota

// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/ota/repository.h"

namespace hml::ota {
namespace {

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
  r.SignTargets(now);
  r.SignSnapshot(now);
  r.SignTimestamp(now);
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

void Repository::SignTargets(int64_t now) {
  targets_.version += 1;
  targets_.expires = now + options_.targets_lifetime;
  files_["targets.json"] =
      SignEnvelope(targets_.ToJson(), signers_.at("targets").keys).Serialize();
}

void Repository::SignSnapshot(int64_t now) {
  snapshot_.version += 1;
  snapshot_.expires = now + options_.snapshot_lifetime;
  const std::string& t = files_.at("targets.json");
  snapshot_.meta["targets.json"] = {targets_.version, static_cast<int64_t>(t.size()),
                                    Sha256Hex(t)};
  files_["snapshot.json"] =
      SignEnvelope(snapshot_.ToJson(), signers_.at("snapshot").keys).Serialize();
}

void Repository::SignTimestamp(int64_t now) {
  timestamp_.version += 1;
  timestamp_.expires = now + options_.timestamp_lifetime;
  const std::string& s = files_.at("snapshot.json");
  timestamp_.snapshot = {snapshot_.version, static_cast<int64_t>(s.size()), Sha256Hex(s)};
  files_["timestamp.json"] =
      SignEnvelope(timestamp_.ToJson(), signers_.at("timestamp").keys).Serialize();
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
  SignTargets(now);
  SignSnapshot(now);
  SignTimestamp(now);
  return Status::Ok();
}

Status Repository::RemoveTarget(const std::string& name, int64_t now) {
  if (targets_.targets.erase(name) == 0) {
    return NotFoundError("repository: no target '" + name + "'");
  }
  files_.erase("targets/" + name);
  SignTargets(now);
  SignSnapshot(now);
  SignTimestamp(now);
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
  SignTargets(now);
  SignSnapshot(now);
  SignTimestamp(now);
  return Status::Ok();
}

Status Repository::RefreshTimestamp(int64_t now) {
  SignTimestamp(now);
  return Status::Ok();
}

}  // namespace hml::ota

// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/server/registry/keys.h"

#include <cstdio>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "src/base/file_util.h"
#include "src/ota/crypto.h"
#include "src/server/registry/registry.h"

namespace hml::server {
namespace {

constexpr ota::Role kRoles[] = {ota::Role::kRoot, ota::Role::kTargets, ota::Role::kSnapshot,
                                ota::Role::kTimestamp};
constexpr int kKeyFileMode = 0600;
// A key file holds a handful of 65-byte lines; anything much larger is not a key file.
constexpr int64_t kMaxKeyFileBytes = 64 * 1024;

// Key files are secrets: created kKeyFileMode from the start, never readable by others.
AtomicWriteOptions KeyFileWriteOptions() {
  AtomicWriteOptions o;
  o.mode = kKeyFileMode;
  return o;
}

// One line per key: the hex of its 32-byte seed.
std::string KeyFileText(const std::vector<ota::KeyPair>& keys) {
  std::string text;
  for (const ota::KeyPair& k : keys) text += ota::ToHex(k.secret.substr(0, 32)) + "\n";
  return text;
}

Result<ota::RoleSigners> ParseKeyFile(std::string_view text, const std::string& path) {
  ota::RoleSigners signers;
  int line_number = 0;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    start = end + 1;
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    const std::string where = "key file '" + path + "' line " + std::to_string(line_number);
    if (line.size() != 64) {
      return InvalidArgumentError(where + ": a key is 64 hex digits, this line has " +
                                  std::to_string(line.size()) + " characters");
    }
    HML_ASSIGN_OR_RETURN(const std::string seed, ota::FromHex(line, where));
    HML_ASSIGN_OR_RETURN(ota::KeyPair key, ota::KeyPair::FromSeed(seed));
    signers.keys.push_back(std::move(key));
  }
  if (signers.keys.empty()) return InvalidArgumentError("key file '" + path + "' holds no key");
  signers.threshold = static_cast<int64_t>(signers.keys.size());
  return signers;
}

}  // namespace

ota::RoleSigners& RegistryKeys::ForRole(ota::Role role) {
  switch (role) {
    case ota::Role::kRoot:
      return root;
    case ota::Role::kTargets:
      return targets;
    case ota::Role::kSnapshot:
      return snapshot;
    case ota::Role::kTimestamp:
      break;
  }
  return timestamp;
}

std::string KeyFilePath(const std::string& dir, ota::Role role) {
  return dir + "/" + std::string(ota::RoleName(role)) + ".key";
}

Status InitKeyDir(const std::string& dir) {
  HML_RETURN_IF_ERROR(MakeDirs(dir, 0700));
  for (ota::Role role : kRoles) {
    const std::string path = KeyFilePath(dir, role);
    if (DefaultEnv()->FileExists(path)) {
      return AlreadyExistsError("key file '" + path +
                                "' exists; keys are never overwritten (use `hybridml keys rotate` "
                                "to replace a key)");
    }
  }
  // All keys are generated before the first file is written, so a failure to generate leaves
  // the directory empty.
  std::vector<ota::KeyPair> keys;
  for (size_t i = 0; i < std::size(kRoles); ++i) {
    HML_ASSIGN_OR_RETURN(ota::KeyPair key, ota::KeyPair::Generate());
    keys.push_back(std::move(key));
  }
  for (size_t i = 0; i < std::size(kRoles); ++i) {
    const Status s =
        WriteFileAtomic(KeyFilePath(dir, kRoles[i]), KeyFileText({keys[i]}), KeyFileWriteOptions());
    if (!s.ok()) {
      // Leave no partial key set behind: a later `keys init` would refuse to complete it.
      for (size_t j = 0; j < i; ++j) (void)RemoveFile(KeyFilePath(dir, kRoles[j]));
      return s;
    }
  }
  return Status::Ok();
}

Result<RegistryKeys> LoadKeyDir(Env& env, const std::string& dir) {
  if (!DirExists(dir)) {
    return NotFoundError("key directory '" + dir +
                         "' does not exist (create one with `hybridml keys init --dir " + dir +
                         "`)");
  }
  RegistryKeys keys;
  for (ota::Role role : kRoles) {
    const std::string path = KeyFilePath(dir, role);
    if (env.FileExists(path + ".new")) {
      return FailedPreconditionError(
          "key file '" + path + ".new' exists: a key rotation was interrupted. If " +
          "repo/root.json lists that key, rename it to '" + path + "'; otherwise delete it");
    }
    if (!env.FileExists(path)) {
      return NotFoundError("key file '" + path + "' does not exist (create the keys with " +
                           "`hybridml keys init --dir " + dir + "`)");
    }
    HML_ASSIGN_OR_RETURN(const int mode, FileMode(path));
    if ((mode & 077) != 0) {
      char octal[8];
      std::snprintf(octal, sizeof(octal), "%04o", mode);
      return PermissionDeniedError("key file '" + path + "' has mode " + octal +
                                   ": others can read it; it must be 0600");
    }
    HML_ASSIGN_OR_RETURN(const std::string text, env.ReadFile(path, kMaxKeyFileBytes));
    HML_ASSIGN_OR_RETURN(keys.ForRole(role), ParseKeyFile(text, path));
  }
  return keys;
}

Status RotateRoleKey(Registry& registry, const std::string& dir, ota::Role role) {
  const std::string path = KeyFilePath(dir, role);
  const std::string staged = path + ".new";
  HML_ASSIGN_OR_RETURN(ota::KeyPair key, ota::KeyPair::Generate());
  HML_RETURN_IF_ERROR(WriteFileAtomic(staged, KeyFileText({key}), KeyFileWriteOptions()));
  ota::RoleSigners signers;
  signers.keys.push_back(std::move(key));
  signers.threshold = 1;
  const Status rotated = registry.RotateKeys(role, std::move(signers));
  if (!rotated.ok()) {
    (void)RemoveFile(staged);
    return rotated;
  }
  const Status renamed = RenameFile(staged, path);
  if (!renamed.ok()) {
    return DataLossError("rotating the " + std::string(ota::RoleName(role)) +
                         " key: the repository now trusts the new key in '" + staged +
                         "', but it could not replace '" + path + "' (" +
                         std::string(renamed.message()) + "); move it into place by hand");
  }
  return Status::Ok();
}

}  // namespace hml::server

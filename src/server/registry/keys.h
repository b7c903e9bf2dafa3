// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The registry's signing keys on disk. A key directory holds one file per TUF role,
// <dir>/<role>.key ("root.key", "targets.key", "snapshot.key", "timestamp.key"), mode 0600,
// each line the 64 hex digits of one Ed25519 seed. A role's threshold is the number of keys in
// its file: whoever holds the directory holds every key anyway, so all of them sign.
//
// The root key signs only root metadata (at creation and at every rotation); keeping it in the
// same directory as the online keys is a convenience of this first version, not a TUF
// recommendation (root should live offline).
#ifndef HML_SRC_SERVER_REGISTRY_KEYS_H_
#define HML_SRC_SERVER_REGISTRY_KEYS_H_

#include <string>

#include "hml/env.h"
#include "hml/status.h"
#include "src/ota/metadata.h"
#include "src/ota/repository.h"

namespace hml::server {

class Registry;

// The signers of the four roles, as a repository is created or loaded with them.
struct RegistryKeys {
  ota::RoleSigners root;
  ota::RoleSigners targets;
  ota::RoleSigners snapshot;
  ota::RoleSigners timestamp;

  ota::RoleSigners& ForRole(ota::Role role);
};

// <dir>/<role>.key.
std::string KeyFilePath(const std::string& dir, ota::Role role);

// Creates `dir` (mode 0700) if needed and writes a fresh key for every role.
// kAlreadyExists naming the file when any <role>.key exists (keys are never overwritten: the
// repository they sign would become unusable); nothing is written then.
Status InitKeyDir(const std::string& dir);

// Reads the four key files. kNotFound naming a missing file (and suggesting `hybridml keys
// init`); kPermissionDenied when a file is readable by group or others (like ssh, a key that
// others could read is not trusted); kInvalidArgument naming the file and line for a line that
// is not 64 hex digits, or for a file without keys; kFailedPrecondition when a <role>.key.new
// is present (an interrupted rotation, see RotateRoleKey).
Result<RegistryKeys> LoadKeyDir(Env& env, const std::string& dir);

// Replaces `role`'s key with a fresh one, in the key directory and in `registry` (a new root
// version signed by the old and the new root keys; see Registry::RotateKeys):
//   1. the new key is written to <role>.key.new (0600);
//   2. the registry's repository is rotated and saved (on failure it is unchanged and the .new
//      file is removed);
//   3. <role>.key.new is renamed over <role>.key.
// If step 3 fails the repository already trusts the new key, which is kept in <role>.key.new;
// the error (kDataLoss) says to move it into place by hand. LoadKeyDir refuses to start while
// a .new file exists, so an interrupted rotation is never silently ignored.
// REQUIRES: `registry` was opened with the keys in `dir`.
Status RotateRoleKey(Registry& registry, const std::string& dir, ota::Role role);

}  // namespace hml::server

#endif  // HML_SRC_SERVER_REGISTRY_KEYS_H_

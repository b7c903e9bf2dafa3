// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The writing side of signed update metadata: holds the signing keys of the four roles and the
// current metadata, and produces the repository's files after every change. The model registry
// uses it to publish; the attack suite uses it as the in-process repository whose files it then
// tampers with.
//
// Files (names relative to the repository root, as a Fetcher serves them):
//   root.json, <N>.root.json    the current root, and every root version for the chain
//   timestamp.json, snapshot.json, targets.json
//   targets/<name>              the target files themselves
//
// Target bytes: AddTarget keeps them in memory (files() serves them; the attack suite needs
// that). SetTargets records only name, length, hash and custom fields: the caller stores the
// bytes at <repo_dir>/targets/<name> itself (the registry keeps models in files, never in
// memory). Load reads metadata only, so after Load files() holds the four metadata files and
// the current <N>.root.json; older root versions stay on disk untouched.
//
// Not thread-safe. Copyable: a copy is a staging area whose changes are discarded by dropping it.
#ifndef HML_SRC_OTA_REPOSITORY_H_
#define HML_SRC_OTA_REPOSITORY_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "hml/env.h"
#include "hml/status.h"
#include "src/ota/metadata.h"

namespace hml::ota {

struct RoleSigners {
  std::vector<KeyPair> keys;
  int64_t threshold = 1;
};

struct RepositoryOptions {
  // How long each role's metadata stays valid after it is (re)signed, in seconds.
  // Defaults: root 365 days, targets 90 days, snapshot 7 days, timestamp 1 day.
  int64_t root_lifetime = 365 * 86400;
  int64_t targets_lifetime = 90 * 86400;
  int64_t snapshot_lifetime = 7 * 86400;
  int64_t timestamp_lifetime = 86400;
};

class Repository {
 public:
  // A new repository: root version 1 with these keys, empty targets, snapshot and timestamp
  // version 1, all signed at `now`. kInvalidArgument for a role without keys or a threshold
  // outside [1, number of keys].
  static Result<Repository> Create(RoleSigners root, RoleSigners targets, RoleSigners snapshot,
                                   RoleSigners timestamp, int64_t now,
                                   const RepositoryOptions& options = {});

  // Adds or replaces target `name` (ValidateTargetName) with `bytes` and `custom` fields (an
  // object or null); targets, snapshot and timestamp get new versions.
  Status AddTarget(const std::string& name, std::string_view bytes, Json custom, int64_t now);
  // Replaces the whole target list with `targets` (each name checked by ValidateTargetName, each
  // custom an object or null, each sha256 64 lowercase hex, lengths >= 0); targets, snapshot
  // and timestamp get one new version each. Bytes held for a target are kept only if the
  // target stays with the same length and hash. kInvalidArgument naming the target otherwise,
  // and then nothing changed.
  Status SetTargets(std::map<std::string, TargetFile> targets, int64_t now);
  // Removes a target; kNotFound if absent.
  Status RemoveTarget(const std::string& name, int64_t now);
  // A new root version with `signers` for `role` (for kRoot: the new root keys), signed by the
  // old and the new root keys; the other roles are re-signed with the keys now in force.
  Status RotateKeys(Role role, RoleSigners signers, int64_t now);
  // A new timestamp version (what a server does before the old one expires).
  Status RefreshTimestamp(int64_t now);

  // Writes every file of files() under `repo_dir` (which must exist), each with
  // Env::WriteFileAtomic, creating no directories: the caller creates <repo_dir>/targets/...
  // (Env has no mkdir). Order: target files, root versions, targets.json, snapshot.json,
  // timestamp.json last, so a device fetching concurrently never sees metadata naming a file
  // that is not written yet. The set of files is not replaced atomically as a whole: a failure
  // part way leaves some files new and some old (the registry restores them). Every target
  // whose bytes are not in files() must already be at <repo_dir>/targets/<name>:
  // kFailedPrecondition naming it otherwise, checked before anything is written.
  Status Save(Env& env, const std::string& repo_dir) const;

  // Reads root.json, targets.json, snapshot.json and timestamp.json from `repo_dir` (written
  // by Save) and continues signing with the given keys. Each file must be signed by the
  // threshold of the keys its root lists (kUnauthenticated otherwise), and each role's given
  // keys must be exactly the keys and threshold root.json lists for it: kFailedPrecondition
  // naming the role otherwise (e.g. a key directory that belongs to another repository).
  // kNotFound for a missing file; kInvalidArgument for malformed metadata.
  static Result<Repository> Load(Env& env, const std::string& repo_dir, RoleSigners root,
                                 RoleSigners targets, RoleSigners snapshot, RoleSigners timestamp,
                                 const RepositoryOptions& options = {});

  // Metadata files and the target bytes held in memory, by name relative to the repository
  // root (see the top of this file for which targets have bytes here).
  const std::map<std::string, std::string>& files() const { return files_; }
  const RootMeta& root() const { return root_; }
  const TargetsMeta& targets() const { return targets_; }
  const SnapshotMeta& snapshot() const { return snapshot_; }
  const TimestampMeta& timestamp() const { return timestamp_; }
  const RoleSigners& signers(Role role) const { return signers_.at(std::string(RoleName(role))); }

 private:
  Repository() = default;
  void SignRoot(const std::vector<KeyPair>& extra_root_signers);
  // Writes <role>.json: `meta` signed by the role's keys.
  void SignRole(Role role, const Json& meta);
  // New versions of targets, snapshot (naming the new targets.json) and timestamp.
  void SignTargetsAndAbove(int64_t now);
  // A new timestamp version naming the current snapshot.json.
  void SignTimestamp(int64_t now);

  RepositoryOptions options_;
  std::map<std::string, RoleSigners> signers_;  // by role name
  RootMeta root_;
  TargetsMeta targets_;
  SnapshotMeta snapshot_;
  TimestampMeta timestamp_;
  std::map<std::string, std::string> files_;
};

}  // namespace hml::ota

#endif  // HML_SRC_OTA_REPOSITORY_H_

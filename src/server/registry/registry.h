// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The model registry service: a Store (SQLite) of model versions and channels, a blob directory
// of model files, and the signed TUF repository devices update from (docs/ota.md). Layout of
// the registry directory:
//   <dir>/registry.db      the Store (OpenSqliteStore)
//   <dir>/registry.lock    held (flock) by the one process changing the registry
//   <dir>/blobs/<sha256>   every published model file, named by its SHA-256
//   <dir>/repo/            the TUF repository, exactly what a static HTTP server serves to
//                          ota::Client: root.json, <N>.root.json, timestamp.json, snapshot.json,
//                          targets.json, targets/<model>/<version>.onnx and
//                          targets/<model>/<version>.from-<previous>.delta
//
// How targets carry models, channels and rollouts is in docs/ota.md, last section: the custom
// field "channels" of version V lists channel C at P when C points at V for P %, and at 100 when
// C's previous version is V (devices outside the rollout keep it).
//
// Failure atomicity: every operation either applies completely or leaves registry.db and every
// file under repo/ and blobs/ as it was. The Store's own transaction cannot be undone once
// committed (the Store interface has no delete, and SetRollout/Rollback consume history), but
// files can be put back from bytes read before. So an operation computes everything in memory
// first, then writes the files (remembering what each path held), and commits the Store last:
// if a write or the Store fails, the files are restored. See Registry::Apply.
//
// Not thread-safe; one Registry per process, and the lock file keeps other processes out while
// it is open.
#ifndef HML_SRC_SERVER_REGISTRY_REGISTRY_H_
#define HML_SRC_SERVER_REGISTRY_REGISTRY_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "hml/clock.h"
#include "hml/env.h"
#include "hml/status.h"
#include "src/base/file_util.h"
#include "src/ota/delta.h"
#include "src/ota/repository.h"
#include "src/server/registry/keys.h"
#include "src/server/registry/store.h"

namespace hml::server {

struct RegistryOptions {
  // Create the directory and an empty registry in it when there is none (`hybridml publish`
  // does; the other commands refuse a directory without a registry).
  // Default: false.
  bool create_if_missing = false;
  // Largest model file Publish accepts; beyond it kResourceExhausted.
  // Default: 1 GiB.
  int64_t max_model_bytes = int64_t{1} << 30;
  // Lifetimes of the signed metadata. Default: ota::RepositoryOptions's.
  ota::RepositoryOptions repository;
  // How deltas between consecutive versions are made. Default: ota::DeltaOptions's.
  ota::DeltaOptions delta;

  // kInvalidArgument naming the field when a value is out of range.
  Status Validate() const;
};

// A model with its versions (oldest first) and channels, for `hybridml models`.
struct ModelSummary {
  std::string name;
  std::vector<ModelVersion> versions;
  std::vector<ChannelState> channels;
};

class Registry {
 public:
  // Opens the registry in `dir` (see the layout above), signing with `keys`.
  // Errors: kNotFound when `dir` or its registry.db does not exist and
  // !options.create_if_missing; kUnavailable when another process holds the lock;
  // kFailedPrecondition when `keys` are not the keys repo/root.json lists, or registry.db has
  // models but repo/ has no root.json; the Store's and Repository::Load's errors otherwise.
  // `env` and `clock` must outlive the registry.
  static Result<std::unique_ptr<Registry>> Open(Env& env, Clock& clock, const std::string& dir,
                                                RegistryKeys keys,
                                                const RegistryOptions& options = {});

  // Publishes the ONNX file `model_path` as the next version of model `name` with the semver
  // label `semver` and `metadata_json` (a JSON object, or empty for {}): stores the blob, adds
  // the version to the Store, and adds target <name>/<version>.onnx (released to no channel
  // yet) and, when the model has a previous version P, the delta target
  // <name>/<version>.from-<P>.delta. Returns the stored version.
  // Errors: kNotFound for a missing file; kInvalidArgument for a file the runtime cannot load
  // (the message carries the runtime's reason), for metadata that is not a JSON object, or for
  // a name or semver the Store refuses; kAlreadyExists when the model has this semver already.
  Result<ModelVersion> Publish(const std::string& model_path, const std::string& name,
                               const std::string& semver, const std::string& metadata_json);

  // Points `channel` of `name` at `version` for `percent` % of devices (Store::SetRollout) and
  // rewrites the targets' "channels": `version` lists channel at `percent`, the channel's
  // previous version at 100, no other version lists it.
  // Errors: kInvalidArgument for a percent outside [1, 100] (integers only: the metadata has
  // no floats) or a bad channel name; kNotFound for an unknown model or version;
  // kFailedPrecondition for a version lower than the one the channel points at (devices never
  // move down while their version is listed; that is what Rollback is for).
  Status Rollout(const std::string& name, int64_t version, const std::string& channel,
                 int64_t percent);

  // Points `channel` back at its previous version for 100 % (Store::Rollback): the bad version
  // no longer lists the channel, the previous one lists it at 100.
  // Errors: kNotFound for an unknown model or channel; kFailedPrecondition when the channel has
  // no previous version.
  Status Rollback(const std::string& name, const std::string& channel);

  // A new key set for `role` (ota::Repository::RotateKeys: the new root version is signed by
  // the old and the new root keys), saved to repo/. Callers normally go through RotateRoleKey
  // (keys.h), which also replaces the key file.
  Status RotateKeys(ota::Role role, ota::RoleSigners signers);

  // Every model, sorted by name.
  Result<std::vector<ModelSummary>> List();
  // The same for the registry in `dir`, read from its registry.db alone: needs no keys and no
  // lock (SQLite's WAL lets it read while another process writes). kNotFound when `dir` or its
  // registry.db does not exist.
  static Result<std::vector<ModelSummary>> ListDir(Env& env, const std::string& dir);

  Store& store() { return *store_; }
  const ota::Repository& repository() const { return repo_; }
  const std::string& dir() const { return dir_; }
  std::string repo_dir() const { return dir_ + "/repo"; }
  std::string blob_dir() const { return dir_ + "/blobs"; }

 private:
  Registry(Env& env, Clock& clock, std::string dir, RegistryOptions options, FileLock lock,
           std::unique_ptr<Store> store, ota::Repository repo)
      : env_(env),
        clock_(clock),
        dir_(std::move(dir)),
        options_(std::move(options)),
        lock_(std::move(lock)),
        store_(std::move(store)),
        repo_(std::move(repo)) {}

  int64_t NowUnix() const { return clock_.WallMicros() / 1000000; }

  // The one way anything changes: writes `new_files` (absolute path -> bytes; blobs and target
  // files, written first), then `staged`'s files under repo/ (Repository::Save), then runs
  // `commit` (the Store mutation, the point of no return). If any step fails, every path
  // written is put back as it was (old bytes rewritten, new files removed, directories in
  // `new_dirs` that were created removed again) and the error is returned; repo_ then stays as
  // it was. On success repo_ becomes `staged`. If putting a file back fails too, the error is
  // kDataLoss and names both failures.
  Status Apply(ota::Repository staged,
               const std::vector<std::pair<std::string, std::string>>& new_files,
               const std::vector<std::string>& new_dirs, const std::function<Status()>& commit);

  // The targets of model `name` with "channels" rewritten for `channels` (the model's channel
  // states as they will be after the operation); other models' targets unchanged.
  std::map<std::string, ota::TargetFile> TargetsWithChannels(
      const std::string& name, const std::vector<ChannelState>& channels) const;

  Env& env_;
  Clock& clock_;
  const std::string dir_;
  const RegistryOptions options_;
  FileLock lock_;
  std::unique_ptr<Store> store_;
  ota::Repository repo_;
};

}  // namespace hml::server

#endif  // HML_SRC_SERVER_REGISTRY_REGISTRY_H_

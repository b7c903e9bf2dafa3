// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The model registry's metadata store: model versions and the channels that point devices at
// them. The model files themselves live in a blob directory; the store holds their names,
// lengths and hashes. The registry service takes a Store by reference (injected), so tests and
// other deployments can substitute their own implementation; OpenSqliteStore
// (src/server/registry/sqlite_store.h) is the default one.
#ifndef HML_SRC_SERVER_REGISTRY_STORE_H_
#define HML_SRC_SERVER_REGISTRY_STORE_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "hml/status.h"

namespace hml::server {

// One published version of a model. Immutable once added.
struct ModelVersion {
  // [A-Za-z0-9._-], 1 to 128 characters, not "." or "..".
  std::string name;
  // Monotonic per name, assigned by the store, starting at 1. Ignored by AddVersion.
  int64_t version = 0;
  // MAJOR.MINOR.PATCH with an optional -prerelease (semver.org 2.0.0, no +build); a label for
  // people, unique per name. Ordering and rollouts use `version`, never this.
  std::string semver;
  // SHA-256 of the blob: 64 lowercase hex digits.
  std::string sha256;
  // Length of the blob in bytes; >= 0.
  int64_t length = 0;
  // File name of the blob in the blob directory: a plain name, no directories.
  std::string blob;
  // Input/output specs, accuracy, target platforms, minimum SDK version, parent version: JSON
  // text, opaque to the store (the registry service validates it).
  std::string metadata_json;
  // When the version was added, in seconds since the Unix epoch; set by the caller (which owns
  // the clock).
  int64_t created_unix = 0;
};

// Where a channel (e.g. "stable", "beta") of a model points.
struct ChannelState {
  std::string name;     // the model
  std::string channel;  // same character set and length as model names
  // The version devices on this channel are offered.
  int64_t version = 0;
  // Share of devices offered `version`, in (0, 100]; the others stay on what they run. Which
  // devices are in is decided by hml::ota::InRollout (src/ota/rollout.h).
  double percent = 100;
  // The version the channel pointed at before `version`, the target of Rollback; 0 = none.
  int64_t previous_version = 0;
  // Seconds since the Unix epoch of the last SetRollout or Rollback.
  int64_t updated_unix = 0;
};

// Every method either applies completely or leaves the store unchanged. Errors name the model,
// the version or channel, and the reason. Unless an implementation documents otherwise, a Store
// is not thread-safe.
class Store {
 public:
  virtual ~Store() = default;

  // Adds `v` as the next version of `v.name` (v.version is ignored) and returns that version
  // number: 1 for a new model, then one more than the model's last version. A failed
  // AddVersion consumes no number.
  // Errors: kInvalidArgument for an invalid name, semver, sha256, negative length or a blob that
  // is not a plain file name; kAlreadyExists when the model already has a version with this
  // semver.
  virtual Result<int64_t> AddVersion(ModelVersion v) = 0;

  // kNotFound when the model or the version does not exist.
  virtual Result<ModelVersion> GetVersion(std::string_view name, int64_t version) = 0;

  // All versions of a model, oldest first. kNotFound when the model does not exist.
  virtual Result<std::vector<ModelVersion>> ListVersions(std::string_view name) = 0;

  // Names of all models with at least one version, sorted by their bytes.
  virtual Result<std::vector<std::string>> ListModels() = 0;

  // Points `channel` of model `name` at `version` for `percent` % of devices, creating the
  // channel if needed. When the channel pointed at another version, that version becomes
  // previous_version; changing only the percent (same version) keeps previous_version.
  // Errors: kInvalidArgument for an invalid channel name or a percent outside (0, 100];
  // kNotFound when the model or the version does not exist.
  virtual Status SetRollout(std::string_view name, std::string_view channel, int64_t version,
                            double percent, int64_t now_unix) = 0;

  // Points `channel` back at its previous_version, for 100 % of devices. The channel keeps one
  // step of history, so afterwards previous_version is 0: a second Rollback fails until the
  // next SetRollout to a different version.
  // Errors: kNotFound when the model or channel does not exist; kFailedPrecondition when the
  // channel has no previous version.
  virtual Status Rollback(std::string_view name, std::string_view channel, int64_t now_unix) = 0;

  // kNotFound when the model or the channel does not exist.
  virtual Result<ChannelState> GetChannel(std::string_view name, std::string_view channel) = 0;

  // All channels of a model, sorted by channel name; empty when it has none. kNotFound when the
  // model does not exist.
  virtual Result<std::vector<ChannelState>> ListChannels(std::string_view name) = 0;
};

}  // namespace hml::server

#endif  // HML_SRC_SERVER_REGISTRY_STORE_H_

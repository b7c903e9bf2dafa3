// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The client's trusted metadata and the TUF update workflow, in memory: each Update*() verifies a
// new file against what is already trusted and only then replaces it. The caller persists the
// files (bytes()) after a whole refresh succeeded, so nothing unverified ever reaches disk.
//
// Order of a refresh (TUF specification 5.3-5.6): UpdateRoot for version N+1, N+2, ... until the
// repository has no newer root; then UpdateTimestamp, UpdateSnapshot, UpdateTargets.
// Expiry is judged at the later of the caller's clock and the latest time already trusted, so a
// clock turned back cannot revive expired metadata. Error codes as listed in metadata.h.
#ifndef HML_SRC_OTA_TRUSTED_SET_H_
#define HML_SRC_OTA_TRUSTED_SET_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "hml/status.h"
#include "src/ota/metadata.h"

namespace hml::ota {

struct TrustedSetOptions {
  // Largest metadata file accepted per role. Default: 1 MiB (targets: 16 MiB).
  int64_t max_root_bytes = int64_t{1} << 20;
  int64_t max_timestamp_bytes = int64_t{1} << 20;
  int64_t max_snapshot_bytes = int64_t{1} << 20;
  int64_t max_targets_bytes = int64_t{16} << 20;
};

class TrustedSet {
 public:
  // Starts from a root the device trusts without verification against an older one (shipped
  // with the app, or persisted after an earlier refresh). It must still be signed by the
  // threshold of its own root keys. `trusted_time` is the latest time trusted so far (unix
  // seconds; 0 when none). Expiry of this root is not checked here (UpdateRoot/Finish do).
  static Result<TrustedSet> Create(std::string_view root_bytes, int64_t trusted_time,
                                   const TrustedSetOptions& options = {});

  // Restores previously trusted (persisted) files. Each is verified against the trusted root
  // (signatures, types, the versions it refers to) but not for expiry: an expired persisted
  // file is still the rollback floor. Empty bytes = none.
  Status LoadPersisted(std::string_view timestamp, std::string_view snapshot,
                       std::string_view targets);

  // Sets the clock for the following checks; the effective time never goes back.
  void SetTime(int64_t now_unix) {
    if (now_unix > time_) time_ = now_unix;
  }
  int64_t time() const { return time_; }

  // Root version N+1 (N = the trusted root's): kFailedPrecondition for any other version;
  // kUnauthenticated unless signed by the threshold of the trusted root's root keys AND of its
  // own. Expiry is not checked for intermediate roots. When the timestamp or snapshot keys
  // change, the trusted timestamp and snapshot are dropped (fast-forward attack recovery).
  Status UpdateRoot(std::string_view bytes);
  // After the root chain: the trusted root must not be expired (kDeadlineExceeded).
  Status CheckRootFresh() const;
  // Timestamp: signed by the root's timestamp keys; version >= the trusted one (equal: the
  // trusted file is kept and true is returned in *unchanged); its snapshot version >= the
  // trusted snapshot's; not expired.
  Status UpdateTimestamp(std::string_view bytes, bool* unchanged = nullptr);
  // Snapshot: length and hash as the trusted timestamp says; signed; version equal to the
  // timestamp's; targets.json version never lower than the trusted snapshot's; not expired.
  Status UpdateSnapshot(std::string_view bytes);
  // Targets: length and hash (when given) and version as the trusted snapshot says; signed;
  // not expired.
  Status UpdateTargets(std::string_view bytes);

  const RootMeta& root() const { return root_; }
  const std::optional<TimestampMeta>& timestamp() const { return timestamp_; }
  const std::optional<SnapshotMeta>& snapshot() const { return snapshot_; }
  const std::optional<TargetsMeta>& targets() const { return targets_; }
  // The trusted files' bytes, to persist ("" when absent).
  const std::string& root_bytes() const { return root_bytes_; }
  const std::string& timestamp_bytes() const { return timestamp_bytes_; }
  const std::string& snapshot_bytes() const { return snapshot_bytes_; }
  const std::string& targets_bytes() const { return targets_bytes_; }

 private:
  TrustedSet() = default;
  Status CheckExpiry(int64_t expires, std::string_view role) const;

  TrustedSetOptions options_;
  int64_t time_ = 0;
  RootMeta root_;
  std::optional<TimestampMeta> timestamp_;
  std::optional<SnapshotMeta> snapshot_;
  std::optional<TargetsMeta> targets_;
  std::string root_bytes_, timestamp_bytes_, snapshot_bytes_, targets_bytes_;
};

}  // namespace hml::ota

#endif  // HML_SRC_OTA_TRUSTED_SET_H_

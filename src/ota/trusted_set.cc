// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/ota/trusted_set.h"

namespace hml::ota {
namespace {

// Parses an envelope of role `role` and its signed part as `Meta`, and verifies the signatures
// against `root`'s keys for that role.
template <typename Meta>
Result<Meta> ParseSigned(std::string_view bytes, Role role, int64_t max_bytes,
                         const RootMeta& root, Envelope* envelope_out = nullptr) {
  HML_ASSIGN_OR_RETURN(Envelope e, Envelope::Parse(bytes, max_bytes));
  HML_RETURN_IF_ERROR(e.CheckType(role));
  HML_ASSIGN_OR_RETURN(Meta meta, Meta::FromJson(e.signed_part));
  HML_RETURN_IF_ERROR(VerifyThreshold(e, root, root.role(role), RoleName(role)));
  if (envelope_out != nullptr) *envelope_out = std::move(e);
  return meta;
}

// Length and hash of `bytes` against what the referring role says (when it says it).
Status CheckFile(std::string_view bytes, const MetaFile& want, std::string_view what) {
  if (want.length >= 0 && static_cast<int64_t>(bytes.size()) != want.length) {
    return DataLossError(std::string(what) + ": " + std::to_string(bytes.size()) +
                         " bytes, the referring metadata says " + std::to_string(want.length));
  }
  if (!want.sha256.empty() && Sha256Hex(bytes) != want.sha256) {
    return DataLossError(std::string(what) + ": sha256 differs from the referring metadata's");
  }
  return Status::Ok();
}

bool SameKeys(const RoleKeys& a, const RoleKeys& b) {
  return a.threshold == b.threshold && a.keyids == b.keyids;
}

}  // namespace

Result<TrustedSet> TrustedSet::Create(std::string_view root_bytes, int64_t trusted_time,
                                      const TrustedSetOptions& options) {
  TrustedSet set;
  set.options_ = options;
  set.time_ = trusted_time;
  HML_ASSIGN_OR_RETURN(Envelope e, Envelope::Parse(root_bytes, options.max_root_bytes));
  HML_RETURN_IF_ERROR(e.CheckType(Role::kRoot));
  HML_ASSIGN_OR_RETURN(set.root_, RootMeta::FromJson(e.signed_part));
  HML_RETURN_IF_ERROR(
      VerifyThreshold(e, set.root_, set.root_.role(Role::kRoot), "trusted root"));
  set.root_bytes_ = std::string(root_bytes);
  return set;
}

Status TrustedSet::LoadPersisted(std::string_view timestamp, std::string_view snapshot,
                                 std::string_view targets) {
  if (!timestamp.empty()) {
    HML_ASSIGN_OR_RETURN(timestamp_, ParseSigned<TimestampMeta>(timestamp, Role::kTimestamp,
                                                                options_.max_timestamp_bytes,
                                                                root_));
    timestamp_bytes_ = std::string(timestamp);
  }
  if (!snapshot.empty()) {
    HML_ASSIGN_OR_RETURN(snapshot_, ParseSigned<SnapshotMeta>(snapshot, Role::kSnapshot,
                                                              options_.max_snapshot_bytes, root_));
    snapshot_bytes_ = std::string(snapshot);
  }
  if (!targets.empty()) {
    HML_ASSIGN_OR_RETURN(targets_, ParseSigned<TargetsMeta>(targets, Role::kTargets,
                                                            options_.max_targets_bytes, root_));
    targets_bytes_ = std::string(targets);
  }
  return Status::Ok();
}

Status TrustedSet::CheckExpiry(int64_t expires, std::string_view role) const {
  if (expires <= time_) {
    return DeadlineExceededError(std::string(role) + ": expired at " + FormatUtc(expires) +
                                 " (trusted time " + FormatUtc(time_) + ")");
  }
  return Status::Ok();
}

Status TrustedSet::UpdateRoot(std::string_view bytes) {
  HML_ASSIGN_OR_RETURN(Envelope e, Envelope::Parse(bytes, options_.max_root_bytes));
  HML_RETURN_IF_ERROR(e.CheckType(Role::kRoot));
  HML_ASSIGN_OR_RETURN(RootMeta next, RootMeta::FromJson(e.signed_part));
  HML_RETURN_IF_ERROR(
      VerifyThreshold(e, root_, root_.role(Role::kRoot), "new root (by the trusted root's keys)"));
  HML_RETURN_IF_ERROR(
      VerifyThreshold(e, next, next.role(Role::kRoot), "new root (by its own keys)"));
  if (next.version != root_.version + 1) {
    return FailedPreconditionError("root: version " + std::to_string(next.version) +
                                   " follows trusted version " + std::to_string(root_.version) +
                                   "; expected " + std::to_string(root_.version + 1));
  }
  const bool rotated = !SameKeys(next.role(Role::kTimestamp), root_.role(Role::kTimestamp)) ||
                       !SameKeys(next.role(Role::kSnapshot), root_.role(Role::kSnapshot));
  if (rotated) {
    // Versions signed by the old keys may have been pushed arbitrarily high by whoever held
    // them; forget them so the new keys' versions are accepted.
    timestamp_.reset();
    snapshot_.reset();
    timestamp_bytes_.clear();
    snapshot_bytes_.clear();
  }
  root_ = std::move(next);
  root_bytes_ = std::string(bytes);
  return Status::Ok();
}

Status TrustedSet::CheckRootFresh() const { return CheckExpiry(root_.expires, "root"); }

Status TrustedSet::UpdateTimestamp(std::string_view bytes, bool* unchanged) {
  if (unchanged != nullptr) *unchanged = false;
  HML_ASSIGN_OR_RETURN(TimestampMeta next,
                       ParseSigned<TimestampMeta>(bytes, Role::kTimestamp,
                                                  options_.max_timestamp_bytes, root_));
  if (timestamp_) {
    if (next.version < timestamp_->version) {
      return FailedPreconditionError("timestamp: version " + std::to_string(next.version) +
                                     " is older than trusted version " +
                                     std::to_string(timestamp_->version));
    }
    if (next.snapshot.version < timestamp_->snapshot.version) {
      return FailedPreconditionError("timestamp: snapshot version " +
                                     std::to_string(next.snapshot.version) +
                                     " is older than trusted version " +
                                     std::to_string(timestamp_->snapshot.version));
    }
    if (next.version == timestamp_->version) {
      if (unchanged != nullptr) *unchanged = true;
      return CheckExpiry(timestamp_->expires, "timestamp");
    }
  }
  if (snapshot_ && next.snapshot.version < snapshot_->version) {
    return FailedPreconditionError("timestamp: snapshot version " +
                                   std::to_string(next.snapshot.version) +
                                   " is older than the trusted snapshot's " +
                                   std::to_string(snapshot_->version));
  }
  HML_RETURN_IF_ERROR(CheckExpiry(next.expires, "timestamp"));
  timestamp_ = std::move(next);
  timestamp_bytes_ = std::string(bytes);
  return Status::Ok();
}

Status TrustedSet::UpdateSnapshot(std::string_view bytes) {
  if (!timestamp_) return FailedPreconditionError("snapshot: no trusted timestamp");
  HML_RETURN_IF_ERROR(CheckFile(bytes, timestamp_->snapshot, "snapshot"));
  HML_ASSIGN_OR_RETURN(SnapshotMeta next,
                       ParseSigned<SnapshotMeta>(bytes, Role::kSnapshot,
                                                 options_.max_snapshot_bytes, root_));
  if (next.version != timestamp_->snapshot.version) {
    return FailedPreconditionError("snapshot: version " + std::to_string(next.version) +
                                   ", the timestamp says " +
                                   std::to_string(timestamp_->snapshot.version));
  }
  if (snapshot_) {
    for (const auto& [name, old] : snapshot_->meta) {
      auto it = next.meta.find(name);
      if (it == next.meta.end()) {
        return FailedPreconditionError("snapshot: '" + name + "' was removed");
      }
      if (it->second.version < old.version) {
        return FailedPreconditionError("snapshot: '" + name + "' version " +
                                       std::to_string(it->second.version) +
                                       " is older than trusted version " +
                                       std::to_string(old.version));
      }
    }
  }
  HML_RETURN_IF_ERROR(CheckExpiry(next.expires, "snapshot"));
  snapshot_ = std::move(next);
  snapshot_bytes_ = std::string(bytes);
  return Status::Ok();
}

Status TrustedSet::UpdateTargets(std::string_view bytes) {
  if (!snapshot_) return FailedPreconditionError("targets: no trusted snapshot");
  const MetaFile& want = snapshot_->meta.at("targets.json");
  HML_RETURN_IF_ERROR(CheckFile(bytes, want, "targets"));
  HML_ASSIGN_OR_RETURN(TargetsMeta next,
                       ParseSigned<TargetsMeta>(bytes, Role::kTargets, options_.max_targets_bytes,
                                                root_));
  if (next.version != want.version) {
    return FailedPreconditionError("targets: version " + std::to_string(next.version) +
                                   ", the snapshot says " + std::to_string(want.version));
  }
  if (targets_ && next.version < targets_->version) {
    return FailedPreconditionError("targets: version " + std::to_string(next.version) +
                                   " is older than trusted version " +
                                   std::to_string(targets_->version));
  }
  HML_RETURN_IF_ERROR(CheckExpiry(next.expires, "targets"));
  targets_ = std::move(next);
  targets_bytes_ = std::string(bytes);
  return Status::Ok();
}

}  // namespace hml::ota

// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/sdk/updater.h"

#include <algorithm>
#include <utility>

#include "hml/env.h"
#include "src/base/file_util.h"
#include "src/ota/crypto.h"
#include "src/ota/delta.h"
#include "src/ota/json.h"
#include "src/ota/rollout.h"

namespace hml::sdk {
namespace {

// The active pointer is a few hundred bytes; anything near this limit is not one.
constexpr int64_t kMaxStateBytes = int64_t{1} << 20;

// The suffix of the temporary files of the updater's atomic writes: fixed (not per process), so
// a crash leaves at most one per file and Cleanup recognizes it.
constexpr std::string_view kTempSuffix = ".tmp";

// Options of the updater's atomic writes: kTempSuffix, and the fault hook with `step_prefix`.
AtomicWriteOptions WriteOptions(const FaultHook& fault, std::string_view step_prefix) {
  AtomicWriteOptions o;
  o.temp_suffix = std::string(kTempSuffix);
  o.fault = fault;
  o.step_prefix = std::string(step_prefix);
  return o;
}

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}
bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// A version number as it appears in target and file names: decimal, positive, no leading zero,
// at most 18 digits (so it fits in int64). 0 when `text` is not one.
int64_t ParseVersion(std::string_view text) {
  if (text.empty() || text.size() > 18 || text[0] == '0') return 0;
  int64_t v = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return 0;
    v = v * 10 + (c - '0');
  }
  return v;
}

bool IsModelNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

std::string Seconds(int64_t nanos) { return std::to_string(nanos / 1000000000) + " s"; }

}  // namespace

Status UpdaterOptions::Validate() const {
  if (device_id.empty()) return InvalidArgumentError("UpdaterOptions.device_id is empty");
  if (model.empty() || !std::all_of(model.begin(), model.end(), IsModelNameChar)) {
    return InvalidArgumentError("UpdaterOptions.model '" + model +
                                "' must be non-empty letters, digits, '_' or '-'");
  }
  if (channel.empty()) return InvalidArgumentError("UpdaterOptions.channel is empty");
  if (install_dir.empty()) return InvalidArgumentError("UpdaterOptions.install_dir is empty");
  if (chunk_bytes <= 0) {
    return InvalidArgumentError("UpdaterOptions.chunk_bytes is " + std::to_string(chunk_bytes) +
                                ", must be positive");
  }
  if (file_deadline_nanos <= 0) {
    return InvalidArgumentError("UpdaterOptions.file_deadline_nanos is " +
                                std::to_string(file_deadline_nanos) + ", must be positive");
  }
  if (max_model_bytes <= 0) {
    return InvalidArgumentError("UpdaterOptions.max_model_bytes is " +
                                std::to_string(max_model_bytes) + ", must be positive");
  }
  if (first_inferences_to_watch < 0) {
    return InvalidArgumentError("UpdaterOptions.first_inferences_to_watch is " +
                                std::to_string(first_inferences_to_watch) +
                                ", must not be negative");
  }
  return Status::Ok();
}

std::string ModelUpdater::ModelFileName(int64_t version) const {
  return options_.model + "." + std::to_string(version) + ".onnx";
}
std::string ModelUpdater::ModelPath(int64_t version) const {
  return Dir() + "/" + ModelFileName(version);
}
std::string ModelUpdater::PartPath(int64_t version) const {
  return Dir() + "/" + options_.model + "." + std::to_string(version) + ".part";
}
std::string ModelUpdater::StatePath() const { return Dir() + "/" + options_.model + ".active"; }
std::string ModelUpdater::TargetName(int64_t version) const {
  return options_.model + "/" + std::to_string(version) + ".onnx";
}

Result<std::unique_ptr<ModelUpdater>> ModelUpdater::Open(const UpdaterOptions& options,
                                                         std::string_view shipped_root,
                                                         ota::Fetcher& metadata, ByteSource& files,
                                                         Clock& clock) {
  HML_RETURN_IF_ERROR(options.Validate());
  HML_RETURN_IF_ERROR(MakeDir(options.install_dir));
  const std::string trust_dir = options.install_dir + "/" + options.model + ".trust";
  HML_RETURN_IF_ERROR(MakeDir(trust_dir));
  // Env::WriteFileAtomic names its temp files "<file>.tmp.<pid>"; a crash may leave one.
  HML_ASSIGN_OR_RETURN(std::vector<std::string> trust_files, ListDir(trust_dir));
  for (const std::string& name : trust_files) {
    if (name.find(".tmp.") != std::string::npos) (void)RemoveFile(trust_dir + "/" + name);
  }

  std::unique_ptr<ModelUpdater> u(new ModelUpdater(options, files, clock));
  HML_ASSIGN_OR_RETURN(u->client_, ota::Client::Open(*DefaultEnv(), trust_dir, shipped_root,
                                                     metadata, clock, options.client));
  HML_RETURN_IF_ERROR(u->LoadState());
  // The pointer is written only after the file it names was synced, so a missing or different
  // file means storage corruption or tampering: fall back to the last good version, or to none
  // (the next check installs one again).
  if (u->state_.active.version > 0 && !u->FileIsIntact(u->state_.active)) {
    State next = u->state_;
    next.active = u->FileIsIntact(u->state_.previous) ? u->state_.previous : Installed{};
    next.previous = {};
    next.verified = true;
    HML_RETURN_IF_ERROR(u->WriteState(next, "open_"));
    u->state_ = std::move(next);
  }
  u->Cleanup();
  return u;
}

Status ModelUpdater::CheckConditions(const DeviceConditions& conditions) const {
  std::string failed;
  auto add = [&](const char* what) { failed += failed.empty() ? what : std::string(", ") + what; };
  if (options_.require_unmetered && !conditions.unmetered) add("the network is metered");
  if (options_.require_charging && !conditions.charging) add("the device is not charging");
  if (options_.require_idle && !conditions.idle) add("the device is not idle");
  if (failed.empty()) return Status::Ok();
  return FailedPreconditionError("update of model '" + options_.model + "' deferred: " + failed +
                                 " (download now to override)");
}

Result<std::map<int64_t, ModelUpdater::Release>> ModelUpdater::ListReleases() const {
  std::map<int64_t, Release> releases;
  const auto& targets = client_->trusted().targets();
  if (!targets) return releases;
  const std::string prefix = options_.model + "/";
  for (const auto& [name, file] : targets->targets) {
    if (!StartsWith(name, prefix) || !EndsWith(name, ".onnx")) continue;
    const std::string_view middle =
        std::string_view(name).substr(prefix.size(), name.size() - prefix.size() - 5);
    const int64_t version = ParseVersion(middle);
    if (version == 0) continue;
    // The name is authoritative; an entry whose custom fields disagree is a publishing error
    // and is not offered rather than guessed at.
    const ota::Json* custom_version = file.custom.Find("version");
    if (custom_version != nullptr &&
        (!custom_version->is_int() || custom_version->as_int() != version)) {
      continue;
    }
    Release release{file, {}};
    if (const ota::Json* channels = file.custom.Find("channels");
        channels != nullptr && channels->is_object()) {
      for (const auto& [channel, percent] : channels->as_object()) {
        if (percent.is_int()) release.channels[channel] = percent.as_int();
      }
    }
    releases.emplace(version, std::move(release));
  }
  return releases;
}

bool ModelUpdater::IsRejected(int64_t version) const {
  return std::find(state_.rejected.begin(), state_.rejected.end(), version) !=
         state_.rejected.end();
}

Status ModelUpdater::FetchRanges(const std::string& name, int64_t offset, int64_t length,
                                 const std::function<Status(std::string_view)>& sink,
                                 int64_t* fetched) {
  const int64_t start = clock_.NowNanos();
  int64_t done = offset;
  while (done < length) {
    if (clock_.NowNanos() - start >= options_.file_deadline_nanos) {
      return DeadlineExceededError("'" + name + "': " + std::to_string(done) + " of " +
                                   std::to_string(length) +
                                   " bytes when the per-file deadline of " +
                                   Seconds(options_.file_deadline_nanos) + " passed");
    }
    HML_RETURN_IF_ERROR(RunFault(options_.fault, "download"));
    const int64_t want = std::min(options_.chunk_bytes, length - done);
    Result<std::string> got = files_.FetchRange(name, done, want);
    if (!got.ok()) {
      return got.status().WithContext("fetching '" + name + "' at offset " + std::to_string(done));
    }
    const int64_t n = static_cast<int64_t>(got->size());
    if (n > want) {
      return ResourceExhaustedError("'" + name + "': the source sent " + std::to_string(n) +
                                    " bytes for a range of " + std::to_string(want) +
                                    " at offset " + std::to_string(done) +
                                    "; the signed length is " + std::to_string(length));
    }
    if (n == 0) {
      return DataLossError("'" + name + "' ends at offset " + std::to_string(done) +
                           ", the signed length is " + std::to_string(length));
    }
    *fetched += n;
    HML_RETURN_IF_ERROR(sink(*got));
    done += n;
    if (options_.progress) options_.progress(done, length);
  }
  return Status::Ok();
}

Result<std::string> ModelUpdater::FetchDelta(int64_t version, const ota::TargetFile& full,
                                             const ota::TargetFile& delta, int64_t* fetched) {
  const std::string name = "targets/" + options_.model + "/" + std::to_string(version) + ".from-" +
                           std::to_string(state_.active.version) + ".delta";
  if (delta.length > options_.max_model_bytes) {
    return ResourceExhaustedError("'" + name + "' declares " + std::to_string(delta.length) +
                                  " bytes, above max_model_bytes");
  }
  std::string patch;
  HML_RETURN_IF_ERROR(FetchRanges(
      name, 0, delta.length,
      [&](std::string_view bytes) {
        patch.append(bytes);
        return Status::Ok();
      },
      fetched));
  if (ota::Sha256Hex(patch) != delta.sha256) {
    return DataLossError("'" + name + "': sha256 differs from the signed targets metadata's");
  }
  HML_ASSIGN_OR_RETURN(
      std::string old_file,
      DefaultEnv()->ReadFile(ModelPath(state_.active.version), options_.max_model_bytes));
  Result<std::string> out = ota::ApplyDelta(old_file, patch, full.length);
  if (!out.ok()) return out.status().WithContext("applying '" + name + "'");
  if (static_cast<int64_t>(out->size()) != full.length || ota::Sha256Hex(*out) != full.sha256) {
    return DataLossError("'" + name + "' produced a file whose length or sha256 differ from '" +
                         TargetName(version) + "' in the signed targets metadata");
  }
  return out;
}

Result<std::string> ModelUpdater::FetchFull(int64_t version, const ota::TargetFile& full,
                                            int64_t* fetched) {
  const std::string part = PartPath(version);
  int64_t have = 0;
  Result<int64_t> size = FileSize(part);
  if (size.ok()) {
    have = *size;
  } else if (size.status().code() != StatusCode::kNotFound) {
    return size.status();
  }
  if (have > full.length) {  // not a prefix of this file: start again
    HML_RETURN_IF_ERROR(RemoveFile(part));
    have = 0;
  }
  const std::string name = "targets/" + TargetName(version);
  HML_RETURN_IF_ERROR(FetchRanges(
      name, have, full.length, [&](std::string_view bytes) { return AppendToFile(part, bytes); },
      fetched));
  HML_RETURN_IF_ERROR(RunFault(options_.fault, "verify"));
  Result<std::string> bytes = DefaultEnv()->ReadFile(part, full.length);
  if (!bytes.ok() || static_cast<int64_t>(bytes->size()) != full.length ||
      ota::Sha256Hex(*bytes) != full.sha256) {
    // Whatever is wrong is somewhere in the bytes kept so far; only a fresh download helps.
    HML_RETURN_IF_ERROR(RemoveFile(part));
    if (!bytes.ok()) return bytes.status().WithContext("reading the download of '" + name + "'");
    return DataLossError("'" + name + "': the downloaded file's length or sha256 differ from " +
                         "the signed targets metadata; '" + part + "' deleted");
  }
  return bytes;
}

Result<UpdateResult> ModelUpdater::CheckForUpdate(const DeviceConditions& conditions,
                                                  bool foreground_now) {
  if (!foreground_now) HML_RETURN_IF_ERROR(CheckConditions(conditions));
  HML_RETURN_IF_ERROR(client_->Refresh().WithContext("refreshing the update metadata"));
  HML_ASSIGN_OR_RETURN(const auto releases, ListReleases());

  // docs/ota.md: the highest version that lists our channel and whose rollout includes us.
  // A rejected version is skipped, so the device stays on (or returns to) the last good one.
  int64_t pick = 0;
  for (auto it = releases.rbegin(); it != releases.rend(); ++it) {
    const auto channel = it->second.channels.find(options_.channel);
    if (channel == it->second.channels.end() || IsRejected(it->first)) continue;
    if (ota::InRollout(options_.device_id, options_.model, static_cast<double>(channel->second))) {
      pick = it->first;
      break;
    }
  }
  UpdateResult result;
  const int64_t active = state_.active.version;
  result.active_version = active;
  if (pick == 0 || pick == active) return result;
  if (pick < active) {
    // Going back is the registry's decision only when it took our version off our channel.
    const auto installed = releases.find(active);
    if (installed != releases.end() && installed->second.channels.count(options_.channel) > 0) {
      return FailedPreconditionError(
          "model '" + options_.model + "': the metadata offers version " + std::to_string(pick) +
          " below the installed version " + std::to_string(active) +
          ", which is still released to channel '" + options_.channel + "'; refusing the rollback");
    }
  }
  const ota::TargetFile& full = releases.at(pick).file;
  if (full.length > options_.max_model_bytes) {
    return ResourceExhaustedError("'" + TargetName(pick) + "' declares " +
                                  std::to_string(full.length) + " bytes, above max_model_bytes " +
                                  std::to_string(options_.max_model_bytes));
  }

  std::string bytes;
  bool have_bytes = false;
  if (active > 0) {
    const auto& targets = client_->trusted().targets()->targets;
    const auto delta = targets.find(options_.model + "/" + std::to_string(pick) + ".from-" +
                                    std::to_string(active) + ".delta");
    if (delta != targets.end()) {
      // Any failure of the delta falls back to the full file: the delta is an optimization.
      Result<std::string> patched = FetchDelta(pick, full, delta->second, &result.bytes_fetched);
      if (patched.ok()) {
        bytes = std::move(*patched);
        have_bytes = true;
        result.used_delta = true;
      } else {
        result.delta_fallback_reason = patched.status().ToString();
      }
    }
  }
  if (!have_bytes) {
    HML_ASSIGN_OR_RETURN(bytes, FetchFull(pick, full, &result.bytes_fetched));
  }
  HML_RETURN_IF_ERROR(Install(pick, bytes, full.sha256));
  result.installed = true;
  result.active_version = pick;
  // The new version is active; what follows only frees space.
  HML_RETURN_IF_ERROR(RunFault(options_.fault, "cleanup"));
  Cleanup();
  return result;
}

Status ModelUpdater::Install(int64_t version, std::string_view bytes, const std::string& sha256) {
  HML_RETURN_IF_ERROR(WriteFileAtomic(ModelPath(version), bytes, WriteOptions(options_.fault, "")));
  State next = state_;
  // The previous version is the last good one: an active version still under watch replaces it
  // only when there is no other (and is otherwise deleted by Cleanup).
  if (state_.active.version > 0 && (state_.verified || state_.previous.version == 0)) {
    next.previous = state_.active;
  }
  next.active = {version, sha256};
  next.verified = false;
  HML_RETURN_IF_ERROR(RunFault(options_.fault, "switch"));
  HML_RETURN_IF_ERROR(WriteState(next, "switch_"));
  state_ = std::move(next);
  load_ok_ = false;
  inferences_ok_ = 0;
  return Status::Ok();
}

bool ModelUpdater::FileIsIntact(const Installed& model) const {
  if (model.version == 0) return false;
  Result<std::string> bytes =
      DefaultEnv()->ReadFile(ModelPath(model.version), options_.max_model_bytes);
  return bytes.ok() && ota::Sha256Hex(*bytes) == model.sha256;
}

Result<WatchResult> ModelUpdater::RollBack() {
  const int64_t bad = state_.active.version;
  State next = state_;
  next.rejected.push_back(bad);
  next.active = FileIsIntact(state_.previous) ? state_.previous : Installed{};
  next.previous = {};
  next.verified = true;
  HML_RETURN_IF_ERROR(WriteState(next, "rollback_"));
  state_ = std::move(next);
  load_ok_ = false;
  inferences_ok_ = 0;
  Cleanup();
  return WatchResult{true, bad};
}

Result<WatchResult> ModelUpdater::ReportLoadResult(bool ok) {
  if (state_.active.version == 0 || state_.verified) return WatchResult{};
  if (!ok) return RollBack();
  load_ok_ = true;
  if (options_.first_inferences_to_watch == 0) {
    State next = state_;
    next.verified = true;
    HML_RETURN_IF_ERROR(WriteState(next, "watch_"));
    state_ = std::move(next);
  }
  return WatchResult{};
}

Result<WatchResult> ModelUpdater::ReportInference(bool ok) {
  if (state_.active.version == 0 || state_.verified) return WatchResult{};
  if (!ok) return RollBack();
  load_ok_ = true;  // an inference ran, so the model loaded
  if (++inferences_ok_ >= options_.first_inferences_to_watch) {
    State next = state_;
    next.verified = true;
    HML_RETURN_IF_ERROR(WriteState(next, "watch_"));
    state_ = std::move(next);
  }
  return WatchResult{};
}

Result<std::string> ModelUpdater::ActiveModelPath() const {
  if (state_.active.version == 0) {
    return NotFoundError("model '" + options_.model + "': no version is installed in '" + Dir() +
                         "'");
  }
  return ModelPath(state_.active.version);
}

Status ModelUpdater::WriteState(const State& state, std::string_view step_prefix) {
  auto file_of = [&](const Installed& m) {
    return m.version == 0 ? std::string() : ModelFileName(m.version);
  };
  ota::Json json = ota::Json::Object{};
  json["model"] = options_.model;
  json["version"] = state.active.version;
  json["file"] = file_of(state.active);
  json["sha256"] = state.active.sha256;
  json["verified"] = state.verified;
  json["previous"] = state.previous.version;
  json["previous_file"] = file_of(state.previous);
  json["previous_sha256"] = state.previous.sha256;
  ota::Json::Array rejected;
  for (const int64_t v : state.rejected) rejected.emplace_back(v);
  json["rejected"] = std::move(rejected);
  return WriteFileAtomic(StatePath(), ota::PrettyJson(json),
                         WriteOptions(options_.fault, step_prefix));
}

Status ModelUpdater::LoadState() {
  const std::string path = StatePath();
  if (!DefaultEnv()->FileExists(path)) return Status::Ok();
  HML_ASSIGN_OR_RETURN(std::string text, DefaultEnv()->ReadFile(path, kMaxStateBytes));
  auto corrupt = [&](const Status& why) {
    return DataLossError("active pointer '" + path + "': " + std::string(why.message()));
  };
  Result<ota::Json> json = ota::ParseJson(text, {kMaxStateBytes, 8});
  if (!json.ok()) return corrupt(json.status());
  // One installed model: the file name is derived from the version, never taken from the file,
  // so a tampered pointer cannot name a path outside the install directory.
  auto installed = [&](const char* version_key, const char* file_key,
                       const char* sha_key) -> Result<Installed> {
    Result<int64_t> version = json->GetInt(version_key);
    if (!version.ok()) return corrupt(version.status());
    Result<std::string> file = json->GetString(file_key);
    if (!file.ok()) return corrupt(file.status());
    Result<std::string> sha = json->GetString(sha_key);
    if (!sha.ok()) return corrupt(sha.status());
    if (*version < 0) return corrupt(InvalidArgumentError(std::string(version_key) + " < 0"));
    const std::string want = *version == 0 ? "" : ModelFileName(*version);
    if (*file != want) {
      return corrupt(InvalidArgumentError("'" + std::string(file_key) + "' is '" + *file +
                                          "', expected '" + want + "'"));
    }
    return Installed{*version, *sha};
  };
  State state;
  HML_ASSIGN_OR_RETURN(state.active, installed("version", "file", "sha256"));
  HML_ASSIGN_OR_RETURN(state.previous, installed("previous", "previous_file", "previous_sha256"));
  Result<bool> verified = json->GetBool("verified");
  if (!verified.ok()) return corrupt(verified.status());
  state.verified = *verified;
  Result<const ota::Json::Array*> rejected = json->GetArray("rejected");
  if (!rejected.ok()) return corrupt(rejected.status());
  for (const ota::Json& v : **rejected) {
    if (!v.is_int()) return corrupt(InvalidArgumentError("'rejected' holds a non-integer"));
    state.rejected.push_back(v.as_int());
  }
  state_ = std::move(state);
  return Status::Ok();
}

void ModelUpdater::Cleanup() {
  Result<std::vector<std::string>> names = ListDir(Dir());
  if (!names.ok()) return;
  const std::string prefix = options_.model + ".";
  for (const std::string& name : *names) {
    if (!StartsWith(name, prefix)) continue;
    const std::string_view rest = std::string_view(name).substr(prefix.size());
    bool remove = false;
    if (EndsWith(rest, kTempSuffix)) {
      remove = true;
    } else if (EndsWith(rest, ".onnx")) {
      const int64_t v = ParseVersion(rest.substr(0, rest.size() - 5));
      remove = v != 0 && v != state_.active.version && v != state_.previous.version;
    } else if (EndsWith(rest, ".part")) {
      const int64_t v = ParseVersion(rest.substr(0, rest.size() - 5));
      remove = v != 0 && (v <= state_.active.version || IsRejected(v));
    }
    if (remove) (void)RemoveFile(Dir() + "/" + name);
  }
  (void)SyncDir(Dir());
}

}  // namespace hml::sdk

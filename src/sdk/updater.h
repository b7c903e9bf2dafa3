// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The device updater: keeps one model on the device up to date, safely (docs/ota.md, issue 4).
//
// A check refreshes the signed metadata (ota::Client: everything verified before anything is
// persisted), picks the version for this device's channel and rollout bucket, downloads it (a
// delta from the installed version when the repository has one, else the full file, resumable
// in ranges), verifies length and SHA-256 against the signed targets, installs it atomically and
// switches the active pointer. The app then reports whether the new model loads and whether its
// first inferences succeed; a failure switches back to the previous (last good) version and
// rejects the bad one for good.
//
// Files in the install directory (<m> = the model name):
//   <m>.active           the active pointer (JSON, replaced atomically): version, file and
//                        sha256 of the active and the previous version, whether the active one
//                        passed its watch, and the rejected versions
//   <m>.<V>.onnx         installed versions: the active one and the previous one, no others
//   <m>.<V>.part         a partial download of version V, resumed from its size
//   <m>.<...>.tmp        temp files of atomic writes; only a crash leaves one, Open deletes it
//   <m>.trust/           the ota::Client's trusted metadata
// Nothing else in the directory is touched, so several models may share one directory.
#ifndef HML_SRC_SDK_UPDATER_H_
#define HML_SRC_SDK_UPDATER_H_

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "hml/clock.h"
#include "hml/status.h"
#include "src/base/file_util.h"
#include "src/ota/client.h"

namespace hml::sdk {

// Transport for model files (the metadata goes through ota::Fetcher). Names are repository paths,
// "targets/<target name>", as an ota::Fetcher would be asked for them.
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Up to `max_bytes` bytes of file `name` starting at `offset`: exactly `max_bytes` unless the
  // file ends first; "" at or past the end. kNotFound when there is no such file. The updater
  // does not trust an implementation to keep to `max_bytes`: a longer answer is an error.
  virtual Result<std::string> FetchRange(const std::string& name, int64_t offset,
                                         int64_t max_bytes) = 0;
};

// What the device knows about its situation when a check runs; the app fills it in.
struct DeviceConditions {
  bool unmetered = false;  // on Wi-Fi or another network the user does not pay for per byte
  bool charging = false;
  bool idle = false;  // the user is not using the device
};

// Fault steps of one install, in order (see UpdaterOptions::fault). "download" runs before each
// range request, "verify" before the downloaded file's hash check, "write_temp"/"fsync"/"rename"
// within the model file's atomic write, "switch" before the active pointer is written and
// "switch_write_temp"/"switch_fsync"/"switch_rename" within that write, "cleanup" after the
// switch, before old files are deleted. A rollback's pointer write uses the prefix "rollback_".
inline constexpr std::array<std::string_view, 10> kInstallSteps = {
    "download",          "verify",       "write_temp",    "fsync",  "rename", "switch",
    "switch_write_temp", "switch_fsync", "switch_rename", "cleanup"};

struct UpdaterOptions {
  // This device's id; with the model name it fixes the rollout bucket (ota::RolloutBucket).
  // Required.
  std::string device_id;
  // The model name: the "<model>/" prefix of its targets. Letters, digits, '_' and '-' only (it
  // is part of file names). Required.
  std::string model;
  // The release channel this device follows. Default: "stable".
  std::string channel = "stable";
  // Directory holding the installed model files; created when absent (its parent must exist).
  // Required.
  std::string install_dir;
  // Bytes per range request. Default: 64 KiB.
  int64_t chunk_bytes = int64_t{64} << 10;
  // Longest time one file's download may take, measured with the injected Clock; beyond it the
  // check fails with kDeadlineExceeded and keeps the partial file for the next check.
  // Default: 120 s.
  int64_t file_deadline_nanos = int64_t{120} * 1000000000;
  // Largest model file (declared length) the updater accepts; the file is held in memory to
  // hash and install it. Default: 512 MiB.
  int64_t max_model_bytes = int64_t{512} << 20;
  // How many inferences of a new version must succeed before it counts as good; until then a
  // failed load or inference rolls back. Default: 3.
  int first_inferences_to_watch = 3;
  // Conditions a check needs unless the user asked for the download (foreground_now).
  // Defaults: unmetered network required, charging and idle not.
  bool require_unmetered = true;
  bool require_charging = false;
  bool require_idle = false;
  // Called after every range received: bytes of the current file so far, and its length.
  // Default: none.
  std::function<void(int64_t done, int64_t total)> progress;
  // Test hook to simulate a crash at a step (kInstallSteps; see FaultHook). Default: none.
  FaultHook fault;
  // Limits of the metadata client.
  ota::ClientOptions client;

  // kInvalidArgument naming the field when a value is missing or out of range.
  Status Validate() const;
};

// What a check did.
struct UpdateResult {
  // The active version after the check (0: none).
  int64_t active_version = 0;
  // True when this check installed a new version (which the app should load now).
  bool installed = false;
  // True when the new version was built from a delta rather than the full file.
  bool used_delta = false;
  // Why a delta that existed was not used (empty when none existed or it was used).
  std::string delta_fallback_reason;
  // Bytes received from the ByteSource in this check.
  int64_t bytes_fetched = 0;
};

// What a load or inference report did.
struct WatchResult {
  // True when the report rolled the active pointer back: the app should load ActiveModelPath()
  // (or its bundled model, when that returns kNotFound).
  bool rolled_back = false;
  // The version rejected by the rollback (0 when none). It is never installed again.
  int64_t rejected_version = 0;
};

// Not thread-safe: the app calls one method at a time (checks usually run on a background
// thread; reports from the inference thread must be serialized with them by the app).
class ModelUpdater {
 public:
  // Opens (or starts) the install directory: deletes temp files a crash left, checks that the
  // active file exists with its recorded sha256 (else switches back to the previous one, or to
  // none), deletes model files that are neither active nor previous, and opens the metadata
  // client from `shipped_root`. `metadata`, `files` and `clock` must outlive the updater.
  // Errors: kInvalidArgument for bad options; kDataLoss naming the file when the active pointer
  // is not one; those of the filesystem and of ota::Client::Open.
  static Result<std::unique_ptr<ModelUpdater>> Open(const UpdaterOptions& options,
                                                    std::string_view shipped_root,
                                                    ota::Fetcher& metadata, ByteSource& files,
                                                    Clock& clock);

  // Refreshes the metadata and installs the version this device should run, if it differs from
  // the active one. Downloads only when the conditions required by the options hold or
  // `foreground_now` (the user asked for it).
  // Errors (the active model and pointer are unchanged after every one):
  //   kFailedPrecondition  a required condition does not hold (nothing is fetched), or the
  //                        metadata picks a version below the active one while the active one is
  //                        still released to our channel (a rollback attack)
  //   kDeadlineExceeded    the download took longer than file_deadline_nanos (partial kept)
  //   kResourceExhausted   the declared length is above max_model_bytes, or the source sent more
  //                        than was asked
  //   kDataLoss            the downloaded file's length or sha256 differ from the signed ones
  //                        (the partial file is deleted)
  //   and those of the metadata refresh, the source and the filesystem.
  Result<UpdateResult> CheckForUpdate(const DeviceConditions& conditions, bool foreground_now);

  // The app reports whether the active model loaded. A failure while the active version is
  // still being watched rolls back to the previous version and rejects the active one.
  Result<WatchResult> ReportLoadResult(bool ok);
  // The app reports whether an inference succeeded. A failure among the first
  // first_inferences_to_watch inferences of a new version rolls back as above; after that many
  // successes the version is good and no longer watched (persisted).
  Result<WatchResult> ReportInference(bool ok);

  // Path of the model file the app should load; kNotFound when no version is installed.
  Result<std::string> ActiveModelPath() const;
  // The active version (0: none), and the versions rejected after a failed watch.
  int64_t active_version() const { return state_.active.version; }
  const std::vector<int64_t>& rejected_versions() const { return state_.rejected; }

 private:
  // One installed model file.
  struct Installed {
    int64_t version = 0;  // 0: none
    std::string sha256;   // hex
  };
  // The contents of <model>.active.
  struct State {
    Installed active;
    Installed previous;    // the last good version, kept to roll back to
    bool verified = true;  // the active version passed its watch (or predates it)
    std::vector<int64_t> rejected;
  };
  // A version of our model in the trusted targets.
  struct Release {
    ota::TargetFile file;
    std::map<std::string, int64_t> channels;  // channel -> rollout percent
  };

  ModelUpdater(UpdaterOptions options, ByteSource& files, Clock& clock)
      : options_(std::move(options)), files_(files), clock_(clock) {}

  std::string Dir() const { return options_.install_dir; }
  std::string ModelFileName(int64_t version) const;
  std::string ModelPath(int64_t version) const;
  std::string PartPath(int64_t version) const;
  std::string StatePath() const;
  std::string TargetName(int64_t version) const;

  Status CheckConditions(const DeviceConditions& conditions) const;
  Result<std::map<int64_t, Release>> ListReleases() const;
  bool IsRejected(int64_t version) const;
  // Fetches [offset, length) of `name` in ranges, handing each range to `sink`; enforces the
  // deadline, the length and the progress callback.
  Status FetchRanges(const std::string& name, int64_t offset, int64_t length,
                     const std::function<Status(std::string_view)>& sink, int64_t* fetched);
  Result<std::string> FetchDelta(int64_t version, const ota::TargetFile& full,
                                 const ota::TargetFile& delta, int64_t* fetched);
  Result<std::string> FetchFull(int64_t version, const ota::TargetFile& full, int64_t* fetched);
  Status Install(int64_t version, std::string_view bytes, const std::string& sha256);
  // True when the file of `model` exists with its recorded sha256.
  bool FileIsIntact(const Installed& model) const;
  Result<WatchResult> RollBack();
  Status WriteState(const State& state, std::string_view step_prefix);
  Status LoadState();
  // Deletes temp files, model files other than the active and previous ones, and partial files
  // of versions not above the active one or rejected. Best effort: a file that cannot be deleted
  // now is deleted by a later call.
  void Cleanup();

  UpdaterOptions options_;
  ByteSource& files_;
  Clock& clock_;
  std::unique_ptr<ota::Client> client_;
  State state_;
  // Watch of an unverified active version, in memory: a restart starts the count again.
  bool load_ok_ = false;
  int inferences_ok_ = 0;
};

}  // namespace hml::sdk

#endif  // HML_SRC_SDK_UPDATER_H_

// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The POSIX file operations the device updater needs beyond hml::Env (which has no directory
// listing, append, size or delete): appending to a partial download, listing and cleaning the
// install directory, and an atomic replace whose steps a test can fail one by one to simulate a
// crash at that point.
//
// Every function is thread-safe as far as the filesystem is; none keeps state.
#ifndef HML_SRC_SDK_FILE_UTIL_H_
#define HML_SRC_SDK_FILE_UTIL_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "hml/status.h"

namespace hml::sdk {

// A test hook called before (or, for "write_temp", in the middle of) each crash-relevant step.
// A non-OK return stops the operation right there, as if the process had died: nothing is
// cleaned up, so the files on disk are what a real crash would leave. Empty = no faults.
using FaultHook = std::function<Status(std::string_view step)>;

// Calls `fault(step)` when a hook is set; OK otherwise.
inline Status RunFault(const FaultHook& fault, std::string_view step) {
  return fault ? fault(step) : Status::Ok();
}

// The suffix of the temporary file WriteFileAtomic writes before renaming it into place.
inline constexpr std::string_view kTempSuffix = ".tmp";

// The one translation of errno into a Status for src/sdk, with `what` (the operation and path)
// as context. Same mapping as src/base/env.cc's (which is private to that file).
Status ErrnoToStatus(int err, const std::string& what);

// Size of the regular file at `path`; kNotFound when there is none.
Result<int64_t> FileSize(const std::string& path);

// Appends `data` to `path`, creating it (0644) when absent. Not synced: the caller verifies the
// whole file's hash before trusting it, so bytes lost in a crash only cost a re-download.
Status AppendToFile(const std::string& path, std::string_view data);

// Deletes `path`; OK when it does not exist.
Status RemoveFile(const std::string& path);

// Creates directory `path` (0755); OK when it already exists. The parent must exist.
Status MakeDir(const std::string& path);

// Names (not paths) of the entries in `dir`, without "." and "..", in no particular order.
Result<std::vector<std::string>> ListDir(const std::string& dir);

// fsync of directory `dir`, so that renames and deletions in it survive a power loss.
Status SyncDir(const std::string& dir);

// Replaces `path` with `data` atomically: writes `path + kTempSuffix`, fsyncs it, renames it over
// `path` and fsyncs the directory. A crash leaves the old file or the new one, never a mix, plus
// at most the temp file (which the updater deletes when it next opens).
// Fault steps (each prefixed with `step_prefix`): "write_temp" after half of `data` is written,
// "fsync" before the file's fsync, "rename" before the rename. On a real I/O error the temp file
// is deleted; on a fault it is left as a crash would leave it.
Status WriteFileAtomic(const std::string& path, std::string_view data, const FaultHook& fault,
                       std::string_view step_prefix);

}  // namespace hml::sdk

#endif  // HML_SRC_SDK_FILE_UTIL_H_

// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The POSIX file operations hybridml needs beyond hml::Env: sizes, appends,
// removal, directories (create, list, fsync), renames, permission bits, an
// atomic replace whose steps a test can fail one by one to simulate a crash
// there, and an inter-process lock. One implementation for the POSIX Env
// (src/base/env.cc), the device updater (src/sdk) and the registry
// (src/server). Internal: not part of include/hml.
//
// Errors come from the one errno translation (src/base/errno_status.h) and name
// the operation and the path, e.g. "stat '/data/m.onnx': No such file or
// directory" (kNotFound). Every function is thread-safe as far as the
// filesystem is; none keeps state.
#ifndef HML_SRC_BASE_FILE_UTIL_H_
#define HML_SRC_BASE_FILE_UTIL_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "hml/status.h"

namespace hml {

// A test hook called before (or, for "write_temp", in the middle of) each
// crash-relevant step. A non-OK return stops the operation right there, as if
// the process had died: nothing is cleaned up, so the files on disk are what a
// real crash would leave. Empty = no faults.
using FaultHook = std::function<Status(std::string_view step)>;

// Calls `fault(step)` when a hook is set; OK otherwise.
inline Status RunFault(const FaultHook &fault, std::string_view step) {
  return fault ? fault(step) : Status::Ok();
}

// Size of the regular file at `path`; kNotFound when there is none,
// kInvalidArgument when it is not a regular file.
Result<int64_t> FileSize(const std::string &path);

// Appends `data` to `path`, creating it (0644, less the umask) when absent. Not
// synced: callers verify what they appended (the updater hashes the whole file)
// before trusting it.
Status AppendToFile(const std::string &path, std::string_view data);

// Removes the file `path`; OK when it does not exist.
Status RemoveFile(const std::string &path);

// True when `path` exists and is a directory.
bool DirExists(const std::string &path);

// Creates directory `path` with `mode` (less the umask); OK when it exists
// already as a directory. The parent must exist (kNotFound naming `path`
// otherwise). *created (optional) is set to true only when this call created
// `path`.
Status MakeDir(const std::string &path, int mode = 0755, bool *created = nullptr);

// Like MakeDir, but creates the missing parents too (mkdir -p), each with
// `mode`. kInvalidArgument for an empty path.
Status MakeDirs(const std::string &path, int mode = 0755, bool *created = nullptr);

// Removes the directory `path` if it is empty: OK when removed or absent,
// kFailedPrecondition when it holds entries. For undoing MakeDirs, where
// callers may ignore a leftover directory.
Status RemoveEmptyDir(const std::string &path);

// rename(2): replaces `to` atomically. REQUIRES: both on the same filesystem.
Status RenameFile(const std::string &from, const std::string &to);

// Names (not paths) of the entries in `dir`, without "." and "..", sorted
// bytewise.
Result<std::vector<std::string>> ListDir(const std::string &dir);

// fsync of directory `dir`, so that renames and deletions in it survive a power
// loss. Filesystems that cannot fsync a directory (EINVAL) count as success.
Status SyncDir(const std::string &dir);

// The permission bits of `path` (st_mode & 07777).
Result<int> FileMode(const std::string &path);

struct AtomicWriteOptions {
  // Permission bits of the new file, set exactly (the umask does not apply)
  // from the moment the temporary file exists, so a secret (0600) is never
  // readable by others, not even briefly. Default: 0644.
  int mode = 0644;
  // The temporary file is `path + temp_suffix`. Empty: ".tmp.<pid>", so
  // processes replacing the same file never share a temporary. The updater uses
  // a fixed ".tmp" to find crash leftovers. Default: empty.
  std::string temp_suffix;
  // Crash simulation (see FaultHook). Steps, each prefixed with `step_prefix`:
  // "write_temp" after half of the data is written to the temporary file,
  // "fsync" before its fsync, "rename" before the rename. Default: none.
  FaultHook fault;
  std::string step_prefix;
};

// The temporary file WriteFileAtomic(path, ..., options) writes before renaming
// it into place.
std::string AtomicWriteTempPath(const std::string &path, const AtomicWriteOptions &options);

// Replaces `path` with `data` atomically: writes the temporary file (created
// afresh, never through a file or link already at that name), fsyncs it,
// renames it over `path` and fsyncs the directory. A crash leaves the old file
// or the new one, never a mix, plus at most the temporary file. On an I/O error
// the temporary file is deleted; on a fault it is left as a crash would leave
// it (AtomicWriteTempPath names it, for the caller to clean).
Status WriteFileAtomic(const std::string &path, std::string_view data,
                       const AtomicWriteOptions &options);

// An exclusive advisory lock (flock) on a lock file, held until destruction.
// Serializes processes that change one set of files (the registry). Movable,
// not copyable.
class FileLock {
 public:
  // Creates `path` (0644) if absent and locks it without waiting: kUnavailable
  // naming `path` when another process holds it.
  static Result<FileLock> Acquire(const std::string &path);

  FileLock(FileLock &&other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  FileLock &operator=(FileLock &&other) noexcept;
  FileLock(const FileLock &) = delete;
  FileLock &operator=(const FileLock &) = delete;
  ~FileLock();

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace hml

#endif  // HML_SRC_BASE_FILE_UTIL_H_

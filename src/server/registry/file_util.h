// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// POSIX file operations the registry needs and hml::Env does not offer: directories, removal,
// renames, private (0600) files and an inter-process lock. Server-only (src/server); device code
// goes through hml::Env. Errors come from the one errno translation (src/base/errno_status.h)
// and name the path.
#ifndef HML_SRC_SERVER_REGISTRY_FILE_UTIL_H_
#define HML_SRC_SERVER_REGISTRY_FILE_UTIL_H_

#include <string>
#include <string_view>

#include "hml/status.h"

namespace hml::server {

// True when `path` exists and is a directory.
bool DirExists(const std::string& path);

// Creates `path` and its missing parents with `mode` (like mkdir -p); OK when it exists
// already as a directory. *created (optional) is set to true when `path` itself was created.
Status MakeDirs(const std::string& path, int mode = 0755, bool* created = nullptr);

// Removes the file `path`; OK when it does not exist.
Status RemoveFile(const std::string& path);

// Removes the directory `path` if it is empty; anything else (absent, not empty) is ignored.
// For undoing MakeDirs, where a leftover directory is harmless.
void RemoveEmptyDir(const std::string& path);

// rename(2): replaces `to` atomically. REQUIRES: both on the same filesystem.
Status RenameFile(const std::string& from, const std::string& to);

// Like Env::WriteFileAtomic (temporary file, fsync, rename, fsync of the directory), but the
// file is created with `mode` from the start, so a secret is never readable by others, not
// even for a moment.
Status WriteFileAtomicWithMode(const std::string& path, std::string_view data, int mode);

// The permission bits of `path` (st_mode & 07777).
Result<int> FileMode(const std::string& path);

// An exclusive advisory lock (flock) on a lock file, held until destruction. Serializes
// processes that change one registry, so version numbers the registry predicts are the ones
// the store assigns. Movable, not copyable.
class FileLock {
 public:
  // Creates `path` if absent and locks it without waiting: kUnavailable when another process
  // holds it.
  static Result<FileLock> Acquire(const std::string& path);

  FileLock(FileLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  FileLock& operator=(FileLock&& other) noexcept;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  ~FileLock();

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace hml::server

#endif  // HML_SRC_SERVER_REGISTRY_FILE_UTIL_H_

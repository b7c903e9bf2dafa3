// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/base/file_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "src/base/errno_status.h"

namespace hml {
namespace {

// Writes all of `data` to `fd`, retrying short writes and EINTR. `path` names
// the file in errors.
Status WriteAll(int fd, std::string_view data, const std::string &path) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "write '" + path + "'");
    }
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

// The directory holding `path`, for fsyncing it after a rename.
std::string DirOf(const std::string &path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash + 1);
}

}  // namespace

Result<int64_t> FileSize(const std::string &path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return ErrnoStatus(errno, "stat '" + path + "'");
  if (!S_ISREG(st.st_mode)) return InvalidArgumentError("'" + path + "' is not a regular file");
  return static_cast<int64_t>(st.st_size);
}

Status AppendToFile(const std::string &path, std::string_view data) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus(errno, "open '" + path + "' for appending");
  const Status s = WriteAll(fd, data, path);
  if (::close(fd) != 0 && s.ok()) return ErrnoStatus(errno, "close '" + path + "'");
  return s;
}

Status RemoveFile(const std::string &path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return ErrnoStatus(errno, "remove '" + path + "'");
  }
  return Status::Ok();
}

bool DirExists(const std::string &path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

Status MakeDir(const std::string &path, int mode, bool *created) {
  if (created != nullptr) *created = false;
  if (path.empty()) return InvalidArgumentError("cannot create a directory with an empty path");
  if (::mkdir(path.c_str(), static_cast<mode_t>(mode)) != 0) {
    const int err = errno;
    // Present already (perhaps just created by another process): success when a
    // directory.
    if (err == EEXIST && DirExists(path)) return Status::Ok();
    return ErrnoStatus(err, "create directory '" + path + "'");
  }
  if (created != nullptr) *created = true;
  return Status::Ok();
}

Status MakeDirs(const std::string &path, int mode, bool *created) {
  if (created != nullptr) *created = false;
  if (path.empty()) return InvalidArgumentError("cannot create a directory with an empty path");
  if (DirExists(path)) return Status::Ok();
  // The parent: everything before the last '/' that is followed by a name.
  const size_t end = path.find_last_not_of('/');
  const size_t slash = end == std::string::npos ? std::string::npos : path.rfind('/', end);
  if (slash != std::string::npos && slash > 0) {
    HML_RETURN_IF_ERROR(MakeDirs(path.substr(0, slash), mode, nullptr));
  }
  return MakeDir(path, mode, created);
}

Status RemoveEmptyDir(const std::string &path) {
  if (::rmdir(path.c_str()) != 0 && errno != ENOENT) {
    return ErrnoStatus(errno, "remove directory '" + path + "'");
  }
  return Status::Ok();
}

Status RenameFile(const std::string &from, const std::string &to) {
  if (::rename(from.c_str(), to.c_str()) != 0) {
    return ErrnoStatus(errno, "rename '" + from + "' to '" + to + "'");
  }
  return Status::Ok();
}

Result<std::vector<std::string>> ListDir(const std::string &dir) {
  DIR *d = ::opendir(dir.c_str());
  if (d == nullptr) return ErrnoStatus(errno, "list directory '" + dir + "'");
  std::vector<std::string> names;
  errno = 0;
  while (const dirent *e = ::readdir(d)) {
    const std::string_view name = e->d_name;
    if (name != "." && name != "..") names.emplace_back(name);
  }
  const int err = errno;
  ::closedir(d);
  if (err != 0) return ErrnoStatus(err, "read directory '" + dir + "'");
  std::sort(names.begin(), names.end());
  return names;
}

Status SyncDir(const std::string &dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, "open directory '" + dir + "'");
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  // Some filesystems cannot fsync a directory (EINVAL); the rename is still
  // atomic there.
  if (rc != 0 && err != EINVAL) return ErrnoStatus(err, "fsync directory '" + dir + "'");
  return Status::Ok();
}

Result<int> FileMode(const std::string &path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return ErrnoStatus(errno, "stat '" + path + "'");
  return static_cast<int>(st.st_mode & 07777);
}

std::string AtomicWriteTempPath(const std::string &path, const AtomicWriteOptions &options) {
  if (!options.temp_suffix.empty()) return path + options.temp_suffix;
  return path + ".tmp." + std::to_string(::getpid());
}

Status WriteFileAtomic(const std::string &path, std::string_view data,
                       const AtomicWriteOptions &options) {
  const std::string tmp = AtomicWriteTempPath(path, options);
  const std::string &prefix = options.step_prefix;
  const auto mode = static_cast<mode_t>(options.mode);
  // O_EXCL after removing a leftover: never write through a file or symlink
  // someone else placed at the temporary name.
  ::unlink(tmp.c_str());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return ErrnoStatus(errno, "create '" + tmp + "'");
  // A fault returns with the temp file left behind, as a crash would; a real
  // error deletes it.
  auto fail = [&](Status s, bool is_fault) {
    ::close(fd);
    if (!is_fault) ::unlink(tmp.c_str());
    return s;
  };
  // The umask may have cleared bits of `mode`; set exactly what was asked.
  if (::fchmod(fd, mode) != 0) return fail(ErrnoStatus(errno, "chmod '" + tmp + "'"), false);
  const std::string_view first_half = data.substr(0, data.size() / 2);
  if (Status s = WriteAll(fd, first_half, tmp); !s.ok()) return fail(std::move(s), false);
  if (Status s = RunFault(options.fault, prefix + "write_temp"); !s.ok()) {
    return fail(std::move(s), true);
  }
  if (Status s = WriteAll(fd, data.substr(first_half.size()), tmp); !s.ok()) {
    return fail(std::move(s), false);
  }
  if (Status s = RunFault(options.fault, prefix + "fsync"); !s.ok()) {
    return fail(std::move(s), true);
  }
  if (::fsync(fd) != 0) return fail(ErrnoStatus(errno, "fsync '" + tmp + "'"), false);
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return ErrnoStatus(err, "close '" + tmp + "'");
  }
  HML_RETURN_IF_ERROR(RunFault(options.fault, prefix + "rename"));
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return ErrnoStatus(err, "rename '" + tmp + "' to '" + path + "'");
  }
  return SyncDir(DirOf(path));
}

Result<FileLock> FileLock::Acquire(const std::string &path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus(errno, "open lock file '" + path + "'");
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK) {
      return UnavailableError("lock file '" + path + "' is held by another process; retry");
    }
    return ErrnoStatus(err, "lock '" + path + "'");
  }
  return FileLock(fd);
}

FileLock &FileLock::operator=(FileLock &&other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);  // closing the last descriptor releases the flock
}

}  // namespace hml

// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/server/registry/file_util.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "src/base/errno_status.h"

namespace hml::server {

bool DirExists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

Status MakeDirs(const std::string& path, int mode, bool* created) {
  if (created != nullptr) *created = false;
  if (path.empty()) return InvalidArgumentError("cannot create a directory with an empty path");
  if (DirExists(path)) return Status::Ok();
  // The parent: everything before the last '/' that is followed by a name.
  const size_t end = path.find_last_not_of('/');
  const size_t slash = end == std::string::npos ? std::string::npos : path.rfind('/', end);
  if (slash != std::string::npos && slash > 0) {
    HML_RETURN_IF_ERROR(MakeDirs(path.substr(0, slash), mode, nullptr));
  }
  if (::mkdir(path.c_str(), static_cast<mode_t>(mode)) != 0) {
    // Another process may have created it in between: that is success too.
    if (errno == EEXIST && DirExists(path)) return Status::Ok();
    return ErrnoStatus(errno, "create directory '" + path + "'");
  }
  if (created != nullptr) *created = true;
  return Status::Ok();
}

Status RemoveFile(const std::string& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return ErrnoStatus(errno, "remove '" + path + "'");
  }
  return Status::Ok();
}

void RemoveEmptyDir(const std::string& path) { ::rmdir(path.c_str()); }

Status RenameFile(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) {
    return ErrnoStatus(errno, "rename '" + from + "' to '" + to + "'");
  }
  return Status::Ok();
}

Status WriteFileAtomicWithMode(const std::string& path, std::string_view data, int mode) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  // O_EXCL: never write through a file (or symlink) someone else placed at the temporary name.
  ::unlink(tmp.c_str());
  const int fd =
      ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, static_cast<mode_t>(mode));
  if (fd < 0) return ErrnoStatus(errno, "create '" + tmp + "'");
  // The umask may have cleared bits of `mode`; set exactly what was asked.
  if (::fchmod(fd, static_cast<mode_t>(mode)) != 0) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    return ErrnoStatus(err, "chmod '" + tmp + "'");
  }
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return ErrnoStatus(err, "write '" + tmp + "'");
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    return ErrnoStatus(err, "fsync '" + tmp + "'");
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return ErrnoStatus(err, "rename '" + tmp + "' to '" + path + "'");
  }
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash + 1);
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return Status::Ok();
}

Result<int> FileMode(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return ErrnoStatus(errno, "stat '" + path + "'");
  return static_cast<int>(st.st_mode & 07777);
}

Result<FileLock> FileLock::Acquire(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus(errno, "open lock file '" + path + "'");
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK) {
      return UnavailableError("lock file '" + path +
                              "' is held by another process changing this registry; retry");
    }
    return ErrnoStatus(err, "lock '" + path + "'");
  }
  return FileLock(fd);
}

FileLock& FileLock::operator=(FileLock&& other) noexcept {
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

}  // namespace hml::server

// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/sdk/file_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace hml::sdk {
namespace {

// Writes all of `data` to `fd`, retrying short writes and EINTR.
Status WriteAll(int fd, std::string_view data, const std::string& path) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoToStatus(errno, "write '" + path + "'");
    }
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

std::string DirOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash + 1);
}

}  // namespace

Status ErrnoToStatus(int err, const std::string& what) {
  const std::string msg = what + ": " + std::strerror(err);
  switch (err) {
    case ENOENT:
    case ENOTDIR:
      return NotFoundError(msg);
    case EACCES:
    case EPERM:
    case EROFS:
      return PermissionDeniedError(msg);
    case ENOSPC:
    case EDQUOT:
    case ENOMEM:
    case EMFILE:
      return ResourceExhaustedError(msg);
    case EEXIST:
      return AlreadyExistsError(msg);
    case EISDIR:
    case EINVAL:
    case ENAMETOOLONG:
      return InvalidArgumentError(msg);
    default:
      return UnknownError(msg);
  }
}

Result<int64_t> FileSize(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return ErrnoToStatus(errno, "stat '" + path + "'");
  if (!S_ISREG(st.st_mode)) return InvalidArgumentError("'" + path + "' is not a regular file");
  return static_cast<int64_t>(st.st_size);
}

Status AppendToFile(const std::string& path, std::string_view data) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoToStatus(errno, "open '" + path + "' for appending");
  const Status s = WriteAll(fd, data, path);
  if (::close(fd) != 0 && s.ok()) return ErrnoToStatus(errno, "close '" + path + "'");
  return s;
}

Status RemoveFile(const std::string& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return ErrnoToStatus(errno, "delete '" + path + "'");
  }
  return Status::Ok();
}

Status MakeDir(const std::string& path) {
  if (::mkdir(path.c_str(), 0755) == 0) return Status::Ok();
  const int err = errno;
  struct stat st;
  if (err == EEXIST && ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return Status::Ok();
  return ErrnoToStatus(err, "create directory '" + path + "'");
}

Result<std::vector<std::string>> ListDir(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return ErrnoToStatus(errno, "list directory '" + dir + "'");
  std::vector<std::string> names;
  errno = 0;
  while (const dirent* e = ::readdir(d)) {
    const std::string_view name = e->d_name;
    if (name != "." && name != "..") names.emplace_back(name);
  }
  const int err = errno;
  ::closedir(d);
  if (err != 0) return ErrnoToStatus(err, "read directory '" + dir + "'");
  return names;
}

Status SyncDir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoToStatus(errno, "open directory '" + dir + "'");
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  // Some filesystems cannot fsync a directory (EINVAL); the rename is still atomic there.
  if (rc != 0 && err != EINVAL) return ErrnoToStatus(err, "fsync directory '" + dir + "'");
  return Status::Ok();
}

Status WriteFileAtomic(const std::string& path, std::string_view data, const FaultHook& fault,
                       std::string_view step_prefix) {
  const std::string prefix(step_prefix);
  const std::string tmp = path + std::string(kTempSuffix);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoToStatus(errno, "create '" + tmp + "'");
  // A fault returns with the temp file left behind, as a crash would; a real error deletes it.
  auto fail = [&](Status s, bool is_fault) {
    ::close(fd);
    if (!is_fault) ::unlink(tmp.c_str());
    return s;
  };
  const std::string_view first_half = data.substr(0, data.size() / 2);
  if (Status s = WriteAll(fd, first_half, tmp); !s.ok()) return fail(std::move(s), false);
  if (Status s = RunFault(fault, prefix + "write_temp"); !s.ok()) return fail(std::move(s), true);
  if (Status s = WriteAll(fd, data.substr(first_half.size()), tmp); !s.ok()) {
    return fail(std::move(s), false);
  }
  if (Status s = RunFault(fault, prefix + "fsync"); !s.ok()) return fail(std::move(s), true);
  if (::fsync(fd) != 0) return fail(ErrnoToStatus(errno, "fsync '" + tmp + "'"), false);
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return ErrnoToStatus(err, "close '" + tmp + "'");
  }
  HML_RETURN_IF_ERROR(RunFault(fault, prefix + "rename"));
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return ErrnoToStatus(err, "rename '" + tmp + "' to '" + path + "'");
  }
  return SyncDir(DirOf(path));
}

}  // namespace hml::sdk

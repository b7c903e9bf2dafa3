// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "hml/env.h"

#include <algorithm>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "src/base/errno_status.h"
#include "src/base/file_util.h"

namespace hml {

Status ErrnoStatus(int err, const std::string& what) {
  std::string msg = what + ": " + std::strerror(err);
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
    case ENOTEMPTY:
      return FailedPreconditionError(msg);
    case EISDIR:
    case EINVAL:
    case ENAMETOOLONG:
      return InvalidArgumentError(msg);
    default:
      return UnknownError(msg);
  }
}

namespace {

class PosixEnv final : public Env {
 public:
  Result<std::string> ReadFile(const std::string& path, int64_t max_bytes) override {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ErrnoStatus(errno, "open '" + path + "'");
    struct stat st;
    if (::fstat(fd, &st) != 0) {
      const int err = errno;
      ::close(fd);
      return ErrnoStatus(err, "stat '" + path + "'");
    }
    if (S_ISDIR(st.st_mode)) {
      ::close(fd);
      return InvalidArgumentError("'" + path + "' is a directory, not a file");
    }
    if (st.st_size > max_bytes) {
      ::close(fd);
      return ResourceExhaustedError("'" + path + "' has " + std::to_string(st.st_size) +
                                    " bytes, more than the limit of " +
                                    std::to_string(max_bytes));
    }
    // Read to end of file, not to st_size: files whose size the kernel does not know (procfs
    // reports 0) or that grow while read are read whole, still within max_bytes.
    std::string data(static_cast<size_t>(std::max<off_t>(st.st_size, 4096)), '\0');
    size_t done = 0;
    while (true) {
      if (done == data.size()) {
        if (static_cast<int64_t>(done) > max_bytes) break;
        data.resize(std::min<size_t>(data.size() * 2, static_cast<size_t>(max_bytes) + 1));
      }
      const ssize_t n = ::read(fd, data.data() + done, data.size() - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        const int err = errno;
        ::close(fd);
        return ErrnoStatus(err, "read '" + path + "'");
      }
      if (n == 0) break;
      done += static_cast<size_t>(n);
    }
    ::close(fd);
    if (static_cast<int64_t>(done) > max_bytes) {
      return ResourceExhaustedError("'" + path + "' grew past the limit of " +
                                    std::to_string(max_bytes) + " bytes while read");
    }
    data.resize(done);
    return data;
  }

  Status WriteFileAtomic(const std::string& path, std::string_view data) override {
    return hml::WriteFileAtomic(path, data, AtomicWriteOptions{});
  }

  bool FileExists(const std::string& path) override { return ::access(path.c_str(), F_OK) == 0; }
};

}  // namespace

Env* DefaultEnv() {
  static PosixEnv* env = new PosixEnv();
  return env;
}

}  // namespace hml

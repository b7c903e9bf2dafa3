// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Env: the filesystem as an injectable interface, so tests can run on in-memory fakes and the
// SDK can be pointed at an app's sandbox.
#ifndef HML_ENV_H_
#define HML_ENV_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "hml/status.h"

namespace hml {

class Env {
 public:
  virtual ~Env() = default;
  // Whole-file read. kNotFound / kPermissionDenied / kResourceExhausted (file larger than
  // `max_bytes`, checked before reading) with the path in the message.
  virtual Result<std::string> ReadFile(const std::string& path,
                                       int64_t max_bytes = int64_t{2} << 30) = 0;
  // Writes `data` to `path` atomically: a temporary file in the same directory, fsync, rename,
  // fsync of the directory. A crash leaves either the old file or the new one, never a mix.
  virtual Status WriteFileAtomic(const std::string& path, std::string_view data) = 0;
  virtual bool FileExists(const std::string& path) = 0;
};

// The process's real filesystem (POSIX). Thread-safe, lives forever.
Env* DefaultEnv();

}  // namespace hml

#endif  // HML_ENV_H_

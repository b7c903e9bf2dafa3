// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The one translation of errno values into Status codes, shared by the POSIX Env and by the
// POSIX file helpers (src/base/file_util.h). Internal: not part of include/hml.
#ifndef HML_SRC_BASE_ERRNO_STATUS_H_
#define HML_SRC_BASE_ERRNO_STATUS_H_

#include <string>

#include "hml/status.h"

namespace hml {

// A Status for `err` (an errno value) whose message is "<what>: <strerror(err)>". ENOENT and
// ENOTDIR -> kNotFound; EACCES, EPERM, EROFS -> kPermissionDenied; ENOSPC, EDQUOT, ENOMEM,
// EMFILE -> kResourceExhausted; EEXIST -> kAlreadyExists; ENOTEMPTY -> kFailedPrecondition;
// EISDIR, EINVAL, ENAMETOOLONG -> kInvalidArgument; anything else kUnknown.
Status ErrnoStatus(int err, const std::string& what);

}  // namespace hml

#endif  // HML_SRC_BASE_ERRNO_STATUS_H_

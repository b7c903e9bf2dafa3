// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The one translation from XNNPACK's error space (enum xnn_status) to hml::Status.
#ifndef HML_SRC_RUNTIME_BACKENDS_XNNPACK_XNNPACK_STATUS_H_
#define HML_SRC_RUNTIME_BACKENDS_XNNPACK_XNNPACK_STATUS_H_

#include <xnnpack.h>

#include <string_view>

#include "hml/status.h"

namespace hml::runtime::xnnpack {

// "xnn_status_invalid_parameter", ...
std::string_view XnnStatusName(xnn_status status);

// OK for xnn_status_success; otherwise an error whose message is
// "<call> for <what>: <status name>", e.g.
// "xnn_define_convolution_2d for Conv 'conv1': xnn_status_invalid_parameter".
// Codes: invalid_parameter -> kInvalidArgument, unsupported_parameter -> kUnimplemented,
// unsupported_hardware -> kUnavailable, out_of_memory -> kResourceExhausted,
// uninitialized / invalid_state -> kFailedPrecondition.
Status XnnStatusToStatus(xnn_status status, std::string_view call, std::string_view what);

}  // namespace hml::runtime::xnnpack

#endif  // HML_SRC_RUNTIME_BACKENDS_XNNPACK_XNNPACK_STATUS_H_

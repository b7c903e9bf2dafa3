// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/runtime/backends/xnnpack/xnnpack_status.h"

#include <string>

namespace hml::runtime::xnnpack {

std::string_view XnnStatusName(xnn_status status) {
  switch (status) {
    case xnn_status_success:
      return "xnn_status_success";
    case xnn_status_uninitialized:
      return "xnn_status_uninitialized";
    case xnn_status_invalid_parameter:
      return "xnn_status_invalid_parameter";
    case xnn_status_invalid_state:
      return "xnn_status_invalid_state";
    case xnn_status_unsupported_parameter:
      return "xnn_status_unsupported_parameter";
    case xnn_status_unsupported_hardware:
      return "xnn_status_unsupported_hardware";
    case xnn_status_out_of_memory:
      return "xnn_status_out_of_memory";
  }
  return "xnn_status_unknown";
}

Status XnnStatusToStatus(xnn_status status, std::string_view call, std::string_view what) {
  if (status == xnn_status_success) return Status::Ok();
  std::string message(call);
  if (!what.empty()) {
    message += " for ";
    message += what;
  }
  message += ": ";
  message += XnnStatusName(status);
  switch (status) {
    case xnn_status_invalid_parameter:
      return InvalidArgumentError(message);
    case xnn_status_unsupported_parameter:
      return UnimplementedError(message);
    case xnn_status_unsupported_hardware:
      return UnavailableError(message);
    case xnn_status_out_of_memory:
      return ResourceExhaustedError(message);
    case xnn_status_uninitialized:
    case xnn_status_invalid_state:
      return FailedPreconditionError(message);
    default:
      return UnknownError(message);
  }
}

}  // namespace hml::runtime::xnnpack

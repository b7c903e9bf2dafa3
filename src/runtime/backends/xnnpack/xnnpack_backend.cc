// Copyright hybridml authors. Licensed under the Apache License 2.0.
// Placeholder until the backend lands: reports that XNNPACK is unavailable.
#include "src/runtime/backends/xnnpack/xnnpack_backend.h"

namespace hml::runtime {
Result<std::unique_ptr<Backend>> CreateXnnpackBackend(const BackendOptions& options) {
  return UnavailableError("the XNNPACK backend is not built yet");
}
}  // namespace hml::runtime

// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The XNNPACK backend: compiles runs of supported nodes into one XNNPACK subgraph runtime
// (fp32, and int8 by mapping ONNX QDQ patterns to XNNPACK's qs8/qc8 nodes). Activations are NHWC
// inside a segment and NCHW at its boundary. This folder is the only place that includes
// <xnnpack.h>.
#ifndef HML_SRC_RUNTIME_BACKENDS_XNNPACK_XNNPACK_BACKEND_H_
#define HML_SRC_RUNTIME_BACKENDS_XNNPACK_XNNPACK_BACKEND_H_

#include <memory>

#include "src/runtime/backend.h"

namespace hml::runtime {

// kUnavailable when XNNPACK cannot initialise on this CPU.
Result<std::unique_ptr<Backend>> CreateXnnpackBackend(const BackendOptions& options);

}  // namespace hml::runtime

#endif  // HML_SRC_RUNTIME_BACKENDS_XNNPACK_XNNPACK_BACKEND_H_

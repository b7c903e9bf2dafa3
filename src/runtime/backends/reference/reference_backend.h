// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The reference backend: a plain C++ kernel for every supported op, written for clarity and
// exactness rather than speed. It is the oracle the XNNPACK backend is tested against, the
// fallback for nodes XNNPACK cannot take, and the evaluator for constant folding.
#ifndef HML_SRC_RUNTIME_BACKENDS_REFERENCE_REFERENCE_BACKEND_H_
#define HML_SRC_RUNTIME_BACKENDS_REFERENCE_REFERENCE_BACKEND_H_

#include <memory>
#include <vector>

#include "src/runtime/backend.h"
#include "src/runtime/kernel.h"

namespace hml::runtime {

// Kernel groups (src/runtime/backends/reference/*_kernels.cc), mirroring the op groups.
void AddNnKernels(KernelRegistry& registry);
void AddElementwiseKernels(KernelRegistry& registry);
void AddTensorKernels(KernelRegistry& registry);

// All reference kernels, built on first use and never changed.
const KernelRegistry& ReferenceKernels();

std::unique_ptr<Backend> CreateReferenceBackend(const BackendOptions& options);

// Evaluates one node whose inputs are all constants and whose output shapes are inferred,
// returning freshly allocated outputs (empty Tensor for absent outputs). Used to fold constants.
Result<std::vector<Tensor>> EvaluateNode(const Graph& graph, const Node& node);

}  // namespace hml::runtime

#endif  // HML_SRC_RUNTIME_BACKENDS_REFERENCE_REFERENCE_BACKEND_H_

// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// GraphModule: a trainable LibTorch module made from a runtime IR graph. Models are built once,
// as IR (imported from any ONNX file in the training subset, or from our builders), and this
// translator runs them on LibTorch: the graph's float weights become torch parameters, the
// forward pass follows the graph's topological order, and ExportGraph() writes the (trained)
// weights back into a copy of the IR, which exports to ONNX.
//
// The training subset: Conv, Gemm, MatMul, Add, Relu, Clip, MaxPool, AveragePool,
// GlobalAveragePool, BatchNormalization, Flatten, Reshape, Dropout, Softmax (and Identity).
//
// Which constants are trainable: Conv weight and bias, Gemm B and C, constant MatMul operands,
// constant Add operands (biases), BatchNormalization scale and bias. BatchNormalization mean and
// variance are buffers (updated in training mode, written back, never given gradients). All
// other constants (Reshape shapes, Clip bounds, ...) stay fixed.
//
// Give it the graph as parsed (runtime::ParseOnnxModel), not a Model's graph: Model's import
// passes fold BatchNorm into Conv and drop Dropout, which is right for inference and wrong for
// training.
//
// This header is torch-free: the torch state lives behind Impl (src/train/torch_internal.h,
// included only by src/train/*.cc). LibTorch throws; every method catches at this boundary and
// returns a Status. Not thread-safe.
#ifndef HML_SRC_TRAIN_GRAPH_MODULE_H_
#define HML_SRC_TRAIN_GRAPH_MODULE_H_

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "hml/runtime/tensor.h"
#include "hml/status.h"
#include "src/runtime/graph.h"

namespace hml::train {

// True when `op_type` (default ONNX domain) is in the training subset.
bool IsTrainableOp(std::string_view op_type);

class GraphModule {
 public:
  // Validates a copy of `graph` and translates it. kUnimplemented naming the node and op for an
  // op outside the training subset (or an unsupported form of one: a non-constant Reshape
  // shape, a used MaxPool Indices output, ...); kInvalidArgument for an invalid graph.
  static Result<std::unique_ptr<GraphModule>> Create(const runtime::Graph& graph);
  ~GraphModule();
  GraphModule(const GraphModule&) = delete;
  GraphModule& operator=(const GraphModule&) = delete;

  // Training mode: Dropout drops, BatchNormalization uses batch statistics and updates its
  // running statistics. Starts in eval mode.
  void SetTraining(bool training);
  bool training() const;

  // Runs the graph on `inputs` (one per graph input, in order; float32) without recording
  // gradients and returns the graph outputs. Errors name the failing node.
  Result<std::vector<Tensor>> Forward(std::span<const Tensor> inputs);

  // A copy of the source graph whose trainable constants and BatchNorm statistics hold the
  // module's current values. Unchanged weights come back bit-identical.
  Result<runtime::Graph> ExportGraph() const;

  // Names of the trainable constants, and their total element count.
  std::vector<std::string> parameter_names() const;
  int64_t num_parameters() const;

  // The torch state, for the trainer (src/train only).
  struct Impl;
  Impl& impl() { return *impl_; }

 private:
  explicit GraphModule(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace hml::train

#endif  // HML_SRC_TRAIN_GRAPH_MODULE_H_

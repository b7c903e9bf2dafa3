// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The torch side of GraphModule, shared by torch_module.cc and trainer.cc. Includes LibTorch:
// include it ONLY from src/train/*.cc, never from a header other code includes.
#ifndef HML_SRC_TRAIN_TORCH_INTERNAL_H_
#define HML_SRC_TRAIN_TORCH_INTERNAL_H_

#include <torch/torch.h>

#include <exception>
#include <string_view>
#include <vector>

#include "src/runtime/graph.h"
#include "src/train/graph_module.h"

namespace hml::train {

// An error raised inside the torch code of src/train, carrying our Status through torch-style
// control flow. Never escapes src/train: the public entry points catch it.
struct StatusError : std::exception {
  explicit StatusError(Status s) : status(std::move(s)) {}
  const char* what() const noexcept override { return "hml::train::StatusError"; }
  Status status;
};

// The one translation of LibTorch's exceptions (and StatusError) into Status, with context.
Status TorchErrorStatus(const std::exception& e, std::string_view context);

struct GraphModule::Impl {
  runtime::Graph graph;  // validated, topologically sorted
  // Per value id: the torch tensor of a constant (parameters and buffers included), else
  // undefined.
  std::vector<torch::Tensor> constants;
  std::vector<runtime::ValueId> parameter_ids;  // trainable constants, in a fixed order
  std::vector<runtime::ValueId> buffer_ids;     // BatchNorm running statistics
  std::vector<torch::Tensor> parameters;        // constants[parameter_ids[i]]
  // The value the trainer treats as logits: graph output 0, or the input of the Softmax that
  // produces it.
  runtime::ValueId logits = runtime::kNoValue;
  bool training = false;

  // Runs the nodes needed for `wanted` on `inputs` (one per graph input) and returns those
  // values. Records gradients unless the caller holds a NoGradGuard. Throws StatusError or
  // c10::Error (caught by callers at the src/train boundary).
  std::vector<torch::Tensor> Run(const std::vector<torch::Tensor>& inputs,
                                 const std::vector<runtime::ValueId>& wanted);
};

}  // namespace hml::train

#endif  // HML_SRC_TRAIN_TORCH_INTERNAL_H_

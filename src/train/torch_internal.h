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

// The one translation of LibTorch's exceptions into Status, with context. LibTorch throws; the
// torch code of src/train catches at its entry points and returns Status, and throws nothing
// itself.
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
  // By value id: parameters Train() holds fixed (TrainOptions::trainable); empty = none. A
  // BatchNormalization whose scale is frozen normalizes with its running statistics and leaves
  // them unchanged, as a frozen layer must.
  std::vector<bool> frozen;
  bool IsFrozen(runtime::ValueId id) const {
    return id >= 0 && static_cast<size_t>(id) < frozen.size() && frozen[static_cast<size_t>(id)];
  }

  // Runs the nodes needed for `wanted` on `inputs` (one per graph input) and returns those
  // values. Records gradients unless the caller holds a NoGradGuard. LibTorch errors inside a
  // node come back as a Status naming the node.
  Result<std::vector<torch::Tensor>> Run(const std::vector<torch::Tensor>& inputs,
                                         const std::vector<runtime::ValueId>& wanted);
};

}  // namespace hml::train

#endif  // HML_SRC_TRAIN_TORCH_INTERNAL_H_

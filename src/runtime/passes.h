// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Graph rewrites. Import-time passes keep the model's meaning and its named tensors; the
// prepare pass fixes input shapes, infers every shape and folds what is constant, as a Session
// does before partitioning.
#ifndef HML_SRC_RUNTIME_PASSES_H_
#define HML_SRC_RUNTIME_PASSES_H_

#include <map>
#include <string>

#include "src/runtime/graph.h"
#include "src/runtime/op_registry.h"

namespace hml::runtime {

// Removes Identity and inference-mode Dropout nodes by rewiring their consumers. Keeps a node
// only when both its input and output must stay visible (e.g. an input copied to an output).
Status RemoveIdentityNodes(Graph& graph);

// Folds a BatchNormalization (constant parameters) that is the only consumer of a Conv with
// constant weights into that Conv's weights and bias.
Status FoldBatchNormIntoConv(Graph& graph);

// The passes every imported model goes through: Identity/Dropout removal, BatchNorm folding,
// dead code removal.
Status RunImportPasses(Graph& graph);

// Fills in the dtype and shape of graph outputs that are not declared (graphs built in code,
// ONNX files that leave them out, passes that forget them): shapes are inferred with every
// dynamic input dim set to 1 and again to 2, and an output dim that follows them is dynamic
// (-1). Graph outputs must carry a type and shape in ONNX files (the checker and OpenCV insist)
// and in Model::outputs(). Outputs stay as they are when inference fails.
void FillOutputTypes(Graph& graph);

// Fixes graph input shapes and infers all others, folding constant subgraphs as it goes (so
// Shape -> Gather -> Concat -> Reshape chains, as PyTorch exports them, become a constant shape).
// `input_shapes` overrides the declared shape of the named inputs; remaining unknown dims become
// `default_dim`. DequantizeLinear of constants is kept (it marks int8 weights for backends).
// Errors: kInvalidArgument for unknown input names or shapes of the wrong rank/dims.
Status PrepareGraph(Graph& graph, const std::map<std::string, Shape>& input_shapes,
                    const OpRegistry& ops, int64_t default_dim = 1);

}  // namespace hml::runtime

#endif  // HML_SRC_RUNTIME_PASSES_H_

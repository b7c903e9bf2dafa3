// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The operators hybridml knows: for each, its arity and its shape inference. Kernels live in
// the backends; this table is what every backend and pass agrees an op means.
//
// Shape inference runs when a Session fixes the input shapes, so inference functions see static
// shapes only (the caller checks that every present input has a known, non-negative shape).
#ifndef HML_SRC_RUNTIME_OP_REGISTRY_H_
#define HML_SRC_RUNTIME_OP_REGISTRY_H_

#include <map>
#include <string>
#include <string_view>
#include <utility>

#include "src/runtime/graph.h"

namespace hml::runtime {

// What a shape-inference function sees: one node, its inputs (dtype, static shape, and data when
// constant), and its outputs to fill in.
class InferContext {
 public:
  InferContext(Graph& graph, Node& node, size_t node_index)
      : graph_(graph), node_(node), node_index_(node_index) {}

  const Node& node() const { return node_; }
  const Attributes& attrs() const { return node_.attrs; }
  int64_t opset() const { return graph_.opset; }

  size_t num_inputs() const { return node_.inputs.size(); }
  bool has_input(size_t i) const { return node_.input(i) != kNoValue; }
  // REQUIRES: has_input(i).
  const Value& input(size_t i) const { return graph_.value(node_.inputs[i]); }
  // The constant data of input i, or null when it is absent or not constant.
  const Tensor* constant_input(size_t i) const {
    return has_input(i) ? input(i).constant.get() : nullptr;
  }

  size_t num_outputs() const { return node_.outputs.size(); }
  bool has_output(size_t i) const {
    return i < node_.outputs.size() && node_.outputs[i] != kNoValue;
  }
  // Sets output i's dtype and shape (no-op for an absent output).
  void SetOutput(size_t i, DType dtype, Shape shape);

  // InvalidArgument "<op> '<name>': <why>".
  Status Error(std::string_view why) const;

 private:
  Graph& graph_;
  Node& node_;
  size_t node_index_;
};

using InferShapesFn = Status (*)(InferContext& ctx);

struct OpSchema {
  std::string domain;  // "" for the default ONNX domain
  std::string op_type;
  int min_inputs = 1;
  int max_inputs = 1;
  int min_outputs = 1;
  int max_outputs = 1;
  InferShapesFn infer = nullptr;
};

// An immutable-after-setup table of op schemas, keyed by (domain, op_type).
class OpRegistry {
 public:
  void Add(OpSchema schema);
  // Null when unknown. The domains "" and "ai.onnx" are the same.
  const OpSchema* Find(std::string_view domain, std::string_view op_type) const;
  const std::map<std::pair<std::string, std::string>, OpSchema>& schemas() const {
    return schemas_;
  }

 private:
  std::map<std::pair<std::string, std::string>, OpSchema> schemas_;
};

// The one list of built-in op groups. Each group lives in src/runtime/ops/<group>.cc.
void RegisterBuiltinOps(OpRegistry& registry);
// A process-wide registry holding the built-in ops, built on first use and never changed.
const OpRegistry& BuiltinOps();

// Op groups (src/runtime/ops/*.cc).
void AddNnOps(OpRegistry& registry);           // conv, pooling, gemm/matmul, norms, quantized
void AddElementwiseOps(OpRegistry& registry);  // arithmetic, activations
void AddTensorOps(OpRegistry& registry);       // reshape, transpose, concat, pad, resize, shape

// Runs shape inference on every node of `graph` in order. REQUIRES: graph is topologically
// sorted and every graph input has a static shape. Errors name the node.
Status InferShapes(Graph& graph, const OpRegistry& ops);
// Infers the outputs of node `node_index` only; its inputs must have static shapes.
Status InferNodeShapes(Graph& graph, size_t node_index, const OpRegistry& ops);

}  // namespace hml::runtime

#endif  // HML_SRC_RUNTIME_OP_REGISTRY_H_

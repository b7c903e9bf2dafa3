// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// A Model is an imported, validated ONNX graph. It is immutable and cheap to copy (the graph is
// shared), so many Sessions may be created from one Model, on any threads.
#ifndef HML_RUNTIME_MODEL_H_
#define HML_RUNTIME_MODEL_H_

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "hml/runtime/tensor.h"
#include "hml/status.h"

namespace hml {

namespace runtime {
class Graph;
}  // namespace runtime

// Name, element type and shape of a model input or output (negative dims are dynamic).
struct TensorSpec {
  std::string name;
  DType dtype = DType::kUndefined;
  Shape shape;
};

// The estimated cost of one node at the analysed input shapes.
struct NodeCost {
  std::string name;
  std::string op_type;
  int64_t flops = 0;         // multiply-adds count as 2
  int64_t params = 0;        // elements of weight-like constant inputs (rank >= 1, not int64)
  int64_t output_bytes = 0;  // bytes of the node's outputs
};

// A place to split the model: after `after_node` (an index into ModelAnalysis::nodes), the
// tensors in `tensors` are all that the rest of the graph needs.
struct CutPoint {
  int after_node = 0;
  std::vector<std::string> tensors;
  int64_t bytes = 0;         // fp32/native bytes of those tensors
  int64_t flops_before = 0;  // FLOPs of nodes [0, after_node]
  int64_t flops_after = 0;   // FLOPs of the remaining nodes
};

struct ModelAnalysis {
  std::map<std::string, Shape> input_shapes;  // the shapes the analysis used
  std::vector<NodeCost> nodes;                // after constant folding, in execution order
  std::map<std::string, int> op_counts;
  int64_t total_flops = 0;
  int64_t total_params = 0;
  int64_t param_bytes = 0;
  std::vector<CutPoint> cut_points;
};

class Model {
 public:
  // Parses and validates ONNX ModelProto bytes, then runs the import passes (Identity/Dropout
  // removal, BatchNorm folding into Conv). Errors name the node/tensor and the reason.
  static Result<Model> FromOnnx(std::string_view bytes);
  // Reads `path` and calls FromOnnx. kNotFound / kPermissionDenied for unreadable files.
  static Result<Model> Load(const std::string& path);
  // Wraps an IR graph (validated).
  static Result<Model> FromGraph(runtime::Graph graph);

  // Serialized ONNX ModelProto.
  Result<std::string> ToOnnx() const;
  Status Save(const std::string& path) const;

  const std::string& name() const;
  int64_t opset() const;
  std::vector<TensorSpec> inputs() const;
  std::vector<TensorSpec> outputs() const;

  // A model computing `outputs` from `inputs` (tensor names of this model). An empty list keeps
  // this model's inputs or outputs. The cut tensors' shapes are fixed by inferring shapes at
  // `input_shapes` (unset dynamic dims = 1). kInvalidArgument for unknown names or when the
  // given inputs do not suffice to compute the outputs (the message names a missing tensor).
  Result<Model> Slice(std::span<const std::string> inputs, std::span<const std::string> outputs,
                      const std::map<std::string, Shape>& input_shapes = {}) const;

  // Costs, op counts, parameters and cut points at `input_shapes` (unset dynamic dims = 1).
  Result<ModelAnalysis> Analyze(const std::map<std::string, Shape>& input_shapes = {}) const;

  // The IR, for hybridml's own tools (compression, training). Not part of the stable API.
  const runtime::Graph& graph() const { return *graph_; }

 private:
  explicit Model(std::shared_ptr<const runtime::Graph> graph) : graph_(std::move(graph)) {}
  std::shared_ptr<const runtime::Graph> graph_;
};

}  // namespace hml

#endif  // HML_RUNTIME_MODEL_H_

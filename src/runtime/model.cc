// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "hml/runtime/model.h"

#include <algorithm>
#include <set>

#include "hml/env.h"
#include "src/runtime/graph.h"
#include "src/runtime/onnx_io.h"
#include "src/runtime/op_registry.h"
#include "src/runtime/passes.h"

namespace hml {

using runtime::Graph;
using runtime::kNoValue;
using runtime::Node;
using runtime::ValueId;

Result<Model> Model::FromOnnx(std::string_view bytes) {
  HML_ASSIGN_OR_RETURN(Graph graph, runtime::ParseOnnxModel(bytes));
  HML_RETURN_IF_ERROR(runtime::RunImportPasses(graph));
  return Model(std::make_shared<const Graph>(std::move(graph)));
}

Result<Model> Model::Load(const std::string& path) {
  HML_ASSIGN_OR_RETURN(std::string bytes, DefaultEnv()->ReadFile(path));
  auto model = FromOnnx(bytes);
  if (!model.ok()) return model.status().WithContext("'" + path + "'");
  return model;
}

Result<Model> Model::FromGraph(runtime::Graph graph) {
  HML_RETURN_IF_ERROR(graph.Validate());
  runtime::FillOutputTypes(graph);
  return Model(std::make_shared<const Graph>(std::move(graph)));
}

Result<std::string> Model::ToOnnx() const { return runtime::SerializeOnnxModel(*graph_); }

Status Model::Save(const std::string& path) const {
  HML_ASSIGN_OR_RETURN(std::string bytes, ToOnnx());
  return DefaultEnv()->WriteFileAtomic(path, bytes);
}

const std::string& Model::name() const { return graph_->name; }
int64_t Model::opset() const { return graph_->opset; }

std::vector<TensorSpec> Model::inputs() const {
  std::vector<TensorSpec> specs;
  for (ValueId id : graph_->inputs) {
    const runtime::Value& v = graph_->value(id);
    specs.push_back({v.name, v.dtype, v.shape});
  }
  return specs;
}

std::vector<TensorSpec> Model::outputs() const {
  std::vector<TensorSpec> specs;
  for (ValueId id : graph_->outputs) {
    const runtime::Value& v = graph_->value(id);
    specs.push_back({v.name, v.dtype, v.shape_known ? v.shape : Shape{}});
  }
  return specs;
}

namespace {

int64_t Product(const Shape& s, size_t from = 0) {
  int64_t p = 1;
  for (size_t i = from; i < s.size(); ++i) p *= s[i];
  return p;
}

// FLOPs of one node at static shapes; multiply-adds count as 2.
int64_t EstimateFlops(const Graph& g, const Node& node) {
  auto in_shape = [&](size_t i) -> const Shape& { return g.value(node.inputs[i]).shape; };
  int64_t out_elems = 0;
  for (ValueId out : node.outputs) {
    if (out != kNoValue) out_elems += Product(g.value(out).shape);
  }
  const std::string& op = node.op_type;
  if ((op == "Conv" || op == "QLinearConv") && node.inputs.size() >= 2) {
    const Shape& w = in_shape(op == "Conv" ? 1 : 3);
    return 2 * out_elems * Product(w, 1);
  }
  if (op == "ConvTranspose" && node.inputs.size() >= 2) {
    const Shape& w = in_shape(1);  // [C_in, C_out/group, k...]
    return 2 * Product(in_shape(0)) * Product(w, 1);
  }
  if (op == "Gemm" && node.inputs.size() >= 2) {
    const Shape& a = in_shape(0);
    const int64_t k = node.attrs.GetInt("transA", 0) ? a[0] : a[a.size() - 1];
    return 2 * out_elems * k;
  }
  if ((op == "MatMul" || op == "QLinearMatMul") && !node.inputs.empty()) {
    const Shape& a = in_shape(0);
    const int64_t k = a.empty() ? 1 : a.back();
    return 2 * out_elems * k;
  }
  if (op == "MaxPool" || op == "AveragePool") {
    return out_elems * Product(node.attrs.GetInts("kernel_shape", {1}));
  }
  if (op == "GlobalAveragePool" || op == "GlobalMaxPool") return Product(in_shape(0));
  if (op == "Softmax" || op == "LogSoftmax") return 5 * out_elems;
  if (op == "Reshape" || op == "Flatten" || op == "Squeeze" || op == "Unsqueeze") return 0;
  return out_elems;
}

}  // namespace

Result<ModelAnalysis> Model::Analyze(const std::map<std::string, Shape>& input_shapes) const {
  Graph g = *graph_;
  HML_RETURN_IF_ERROR(runtime::PrepareGraph(g, input_shapes, runtime::BuiltinOps()));
  ModelAnalysis a;
  for (ValueId in : g.inputs) a.input_shapes[g.value(in).name] = g.value(in).shape;
  std::set<ValueId> counted;
  for (size_t n = 0; n < g.nodes.size(); ++n) {
    const Node& node = g.nodes[n];
    NodeCost cost;
    cost.name = node.name;
    cost.op_type = node.op_type;
    cost.flops = EstimateFlops(g, node);
    for (ValueId in : node.inputs) {
      // Parameters are weight-like constants: scalars (Clip bounds, quantization scales) and
      // int64 shape operands are not counted.
      if (in == kNoValue || !g.value(in).is_constant() || g.value(in).constant->rank() == 0 ||
          g.value(in).dtype == DType::kInt64) {
        continue;
      }
      cost.params += g.value(in).constant->num_elements();
      if (counted.insert(in).second) {
        a.total_params += g.value(in).constant->num_elements();
        a.param_bytes += static_cast<int64_t>(g.value(in).constant->byte_size());
      }
    }
    for (ValueId out : node.outputs) {
      if (out == kNoValue) continue;
      cost.output_bytes +=
          Product(g.value(out).shape) * static_cast<int64_t>(DTypeSize(g.value(out).dtype));
    }
    a.total_flops += cost.flops;
    a.op_counts[node.op_type]++;
    a.nodes.push_back(std::move(cost));
  }

  // Cut points: after node i, the non-constant values produced at or before i (or graph
  // inputs) that a later node or the graph's outputs still read.
  const std::vector<int> producer = g.Producers();
  std::vector<int> last_use(g.values.size(), -1);
  for (size_t n = 0; n < g.nodes.size(); ++n) {
    for (ValueId in : g.nodes[n].inputs) {
      if (in != kNoValue) last_use[static_cast<size_t>(in)] = static_cast<int>(n);
    }
  }
  for (ValueId out : g.outputs) last_use[static_cast<size_t>(out)] = static_cast<int>(g.nodes.size());
  int64_t flops_before = 0;
  for (size_t n = 0; n + 1 < g.nodes.size(); ++n) {
    flops_before += a.nodes[n].flops;
    CutPoint cut;
    cut.after_node = static_cast<int>(n);
    for (size_t v = 0; v < g.values.size(); ++v) {
      const runtime::Value& value = g.values[v];
      if (value.is_constant()) continue;
      const bool available = producer[v] >= 0 ? producer[v] <= static_cast<int>(n)
                                              : std::find(g.inputs.begin(), g.inputs.end(),
                                                          static_cast<ValueId>(v)) != g.inputs.end();
      if (!available || last_use[v] <= static_cast<int>(n)) continue;
      cut.tensors.push_back(value.name);
      cut.bytes += Product(value.shape) * static_cast<int64_t>(DTypeSize(value.dtype));
    }
    cut.flops_before = flops_before;
    cut.flops_after = a.total_flops - flops_before;
    a.cut_points.push_back(std::move(cut));
  }
  return a;
}

Result<Model> Model::Slice(std::span<const std::string> inputs,
                           std::span<const std::string> outputs,
                           const std::map<std::string, Shape>& input_shapes) const {
  // Shapes and types of every tensor at the given input shapes.
  Graph prepared = *graph_;
  HML_RETURN_IF_ERROR(runtime::PrepareGraph(prepared, input_shapes, runtime::BuiltinOps()));

  Graph g = *graph_;
  auto lookup = [&](const std::string& name, const char* what) -> Result<ValueId> {
    const ValueId id = g.FindValue(name);
    if (id == kNoValue) {
      return InvalidArgumentError(std::string("slice ") + what + " '" + name +
                                  "' is not a tensor of the model");
    }
    return id;
  };
  if (!outputs.empty()) {
    std::vector<ValueId> outs;
    for (const std::string& name : outputs) {
      HML_ASSIGN_OR_RETURN(ValueId id, lookup(name, "output"));
      outs.push_back(id);
    }
    g.outputs = std::move(outs);
  }
  if (!inputs.empty()) {
    std::vector<ValueId> ins;
    for (const std::string& name : inputs) {
      HML_ASSIGN_OR_RETURN(ValueId id, lookup(name, "input"));
      runtime::Value& v = g.value(id);
      if (v.is_constant()) {
        return InvalidArgumentError("slice input '" + name + "' is a constant, not a tensor "
                                    "computed from the model's inputs");
      }
      const ValueId pid = prepared.FindValue(name);
      if (pid == kNoValue || !prepared.value(pid).shape_known) {
        return InvalidArgumentError("slice input '" + name +
                                    "' is not computed at these input shapes");
      }
      const runtime::Value& pv = prepared.value(pid);
      if (pv.is_constant()) {
        return InvalidArgumentError("slice input '" + name +
                                    "' folds to a constant; cut after a computed tensor");
      }
      v.dtype = pv.dtype;
      v.shape = pv.shape;
      v.shape_known = true;
      // Nothing produces it any more: the producer's output is cut loose.
      for (Node& node : g.nodes) {
        for (ValueId& out : node.outputs) {
          if (out == id) out = kNoValue;
        }
      }
      ins.push_back(id);
    }
    g.inputs = std::move(ins);
  }
  // Drop nodes left without outputs, then everything that no longer reaches an output.
  std::vector<Node> kept;
  for (Node& node : g.nodes) {
    bool any = false;
    for (ValueId out : node.outputs) any |= out != kNoValue;
    if (any) kept.push_back(std::move(node));
  }
  g.nodes = std::move(kept);
  g.RemoveDeadCode();
  Status valid = g.Validate();
  if (!valid.ok()) {
    return InvalidArgumentError("the slice's inputs do not suffice to compute its outputs: " +
                                std::string(valid.message()));
  }
  return Model(std::make_shared<const Graph>(std::move(g)));
}

}  // namespace hml

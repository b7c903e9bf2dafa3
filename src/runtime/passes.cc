// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/runtime/passes.h"

#include <algorithm>
#include <cmath>

#include "src/runtime/backends/reference/reference_backend.h"

namespace hml::runtime {
namespace {

bool Contains(const std::vector<ValueId>& ids, ValueId id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

void ReplaceUses(Graph& graph, ValueId from, ValueId to) {
  for (Node& node : graph.nodes) {
    for (ValueId& in : node.inputs) {
      if (in == from) in = to;
    }
  }
  for (ValueId& out : graph.outputs) {
    if (out == from) out = to;
  }
}

}  // namespace

Status RemoveIdentityNodes(Graph& graph) {
  std::vector<Node> kept;
  kept.reserve(graph.nodes.size());
  // Processed one at a time so that chains of identities collapse.
  for (size_t n = 0; n < graph.nodes.size(); ++n) {
    Node& node = graph.nodes[n];
    const bool identity = node.domain.empty() && node.op_type == "Identity";
    const bool dropout = node.domain.empty() && node.op_type == "Dropout" &&
                         (node.outputs.size() < 2 || node.outputs[1] == kNoValue);
    if ((!identity && !dropout) || node.inputs.empty() || node.inputs[0] == kNoValue ||
        node.outputs.empty() || node.outputs[0] == kNoValue) {
      kept.push_back(std::move(node));
      continue;
    }
    // Dropout in training mode (opset 12+: training_mode input true) is not an identity.
    if (dropout && node.input(2) != kNoValue) {
      kept.push_back(std::move(node));
      continue;
    }
    const ValueId in = node.inputs[0];
    const ValueId out = node.outputs[0];
    const bool out_visible = Contains(graph.outputs, out);
    const bool in_visible = Contains(graph.outputs, in) || Contains(graph.inputs, in) ||
                            graph.value(in).is_constant();
    if (!out_visible) {
      ReplaceUses(graph, out, in);
      continue;
    }
    if (!in_visible) {
      // The producer of `in` writes the output directly; `in` disappears.
      for (Node& other : kept) {
        for (ValueId& o : other.outputs) {
          if (o == in) o = out;
        }
      }
      for (size_t m = n + 1; m < graph.nodes.size(); ++m) {
        for (ValueId& o : graph.nodes[m].outputs) {
          if (o == in) o = out;
        }
      }
      ReplaceUses(graph, in, out);
      for (Node& other : kept) {
        for (ValueId& i : other.inputs) {
          if (i == in) i = out;
        }
      }
      Value& out_value = graph.value(out);
      const Value& in_value = graph.value(in);
      if (out_value.dtype == DType::kUndefined) out_value.dtype = in_value.dtype;
      continue;
    }
    kept.push_back(std::move(node));
  }
  graph.nodes = std::move(kept);
  return graph.TopologicalSort();
}

Status FoldBatchNormIntoConv(Graph& graph) {
  std::vector<int> uses = graph.UseCounts();
  std::vector<int> producer = graph.Producers();
  std::vector<bool> drop(graph.nodes.size(), false);
  for (size_t n = 0; n < graph.nodes.size(); ++n) {
    Node& bn = graph.nodes[n];
    if (!bn.domain.empty() || bn.op_type != "BatchNormalization") continue;
    if (bn.inputs.size() != 5 || bn.outputs.empty()) continue;
    bool extra_outputs = false;
    for (size_t o = 1; o < bn.outputs.size(); ++o) extra_outputs |= bn.outputs[o] != kNoValue;
    if (extra_outputs || bn.attrs.GetInt("training_mode", 0) != 0) continue;
    const ValueId x = bn.inputs[0];
    if (x == kNoValue || uses[static_cast<size_t>(x)] != 1) continue;
    const int p = producer[static_cast<size_t>(x)];
    if (p < 0 || drop[static_cast<size_t>(p)]) continue;
    Node& conv = graph.nodes[static_cast<size_t>(p)];
    if (!conv.domain.empty() || conv.op_type != "Conv" || conv.outputs.size() != 1) continue;
    const ValueId w_id = conv.input(1);
    const ValueId b_id = conv.input(2);
    if (w_id == kNoValue || !graph.value(w_id).is_constant()) continue;
    if (b_id != kNoValue && !graph.value(b_id).is_constant()) continue;
    bool params_constant = true;
    for (size_t i = 1; i < 5; ++i) {
      params_constant &= bn.inputs[i] != kNoValue && graph.value(bn.inputs[i]).is_constant() &&
                         graph.value(bn.inputs[i]).dtype == DType::kFloat32;
    }
    const Tensor& w = *graph.value(w_id).constant;
    if (!params_constant || w.dtype() != DType::kFloat32 || w.rank() < 3) continue;
    const int64_t m = w.dim(0);
    bool sizes_ok = true;
    for (size_t i = 1; i < 5; ++i) {
      sizes_ok &= graph.value(bn.inputs[i]).constant->num_elements() == m;
    }
    if (b_id != kNoValue) sizes_ok &= graph.value(b_id).constant->num_elements() == m;
    if (!sizes_ok) continue;

    const float* scale = graph.value(bn.inputs[1]).constant->data<float>();
    const float* beta = graph.value(bn.inputs[2]).constant->data<float>();
    const float* mean = graph.value(bn.inputs[3]).constant->data<float>();
    const float* var = graph.value(bn.inputs[4]).constant->data<float>();
    const float eps = bn.attrs.GetFloat("epsilon", 1e-5f);
    HML_ASSIGN_OR_RETURN(Tensor new_w, w.Clone());
    HML_ASSIGN_OR_RETURN(Tensor new_b, Tensor::Allocate(DType::kFloat32, {m}));
    const int64_t per_filter = w.num_elements() / std::max<int64_t>(1, m);
    for (int64_t o = 0; o < m; ++o) {
      const float s = scale[o] / std::sqrt(var[o] + eps);
      float* f = new_w.data<float>() + o * per_filter;
      for (int64_t k = 0; k < per_filter; ++k) f[k] *= s;
      const float b = b_id != kNoValue ? graph.value(b_id).constant->data<float>()[o] : 0.0f;
      new_b.data<float>()[o] = (b - mean[o]) * s + beta[o];
    }
    const std::string base = conv.name.empty() ? graph.value(x).name : conv.name;
    // Short names (they recur in every quantized variant's file); unique in the graph.
    auto fresh = [&graph](const std::string& name) {
      std::string n = name;
      for (int i = 1; graph.FindValue(n) != kNoValue; ++i) n = name + "_" + std::to_string(i);
      return n;
    };
    const ValueId w_new = graph.AddConstant(fresh(base + "_w"), std::move(new_w));
    const ValueId b_new = graph.AddConstant(fresh(base + "_b"), std::move(new_b));
    // AddValue may have reallocated `values` but nodes are untouched; re-fetch the refs.
    Node& conv_ref = graph.nodes[static_cast<size_t>(p)];
    conv_ref.inputs.resize(3);
    conv_ref.inputs[1] = w_new;
    conv_ref.inputs[2] = b_new;
    conv_ref.outputs[0] = graph.nodes[n].outputs[0];
    drop[n] = true;
  }
  std::vector<Node> kept;
  for (size_t n = 0; n < graph.nodes.size(); ++n) {
    if (!drop[n]) kept.push_back(std::move(graph.nodes[n]));
  }
  graph.nodes = std::move(kept);
  graph.CompactValues();
  return Status::Ok();
}

Status RunImportPasses(Graph& graph) {
  HML_RETURN_IF_ERROR(RemoveIdentityNodes(graph));
  HML_RETURN_IF_ERROR(FoldBatchNormIntoConv(graph));
  graph.RemoveDeadCode();
  HML_RETURN_IF_ERROR(graph.Validate());
  FillOutputTypes(graph);
  return Status::Ok();
}

void FillOutputTypes(Graph& graph) {
  bool missing = false;
  for (ValueId out : graph.outputs) {
    missing |= graph.value(out).dtype == DType::kUndefined || !graph.value(out).shape_known;
  }
  if (!missing) return;
  std::vector<Graph> runs;
  for (int64_t fill : {1, 2}) {
    Graph g = graph;
    for (ValueId in : g.inputs) {
      for (int64_t& d : g.value(in).shape) d = d < 0 ? fill : d;
    }
    if (!InferShapes(g, BuiltinOps()).ok()) return;
    runs.push_back(std::move(g));
  }
  for (ValueId out : graph.outputs) {
    const Value& a = runs[0].value(out);
    const Value& b = runs[1].value(out);
    Value& v = graph.value(out);
    if (v.dtype == DType::kUndefined) v.dtype = a.dtype;
    if (v.shape_known || !a.shape_known || !b.shape_known || a.shape.size() != b.shape.size()) {
      continue;
    }
    v.shape = a.shape;
    for (size_t d = 0; d < v.shape.size(); ++d) {
      v.shape[d] = a.shape[d] == b.shape[d] ? a.shape[d] : -1;
    }
    v.shape_known = true;
  }
}

namespace {

// Shape(x) of a statically shaped x, honouring opset-15 start/end.
Result<Tensor> ShapeConstant(const Graph& graph, const Node& node) {
  const Shape& shape = graph.value(node.inputs[0]).shape;
  const int64_t rank = static_cast<int64_t>(shape.size());
  int64_t start = node.attrs.GetInt("start", 0);
  int64_t end = node.attrs.GetInt("end", rank);
  if (start < 0) start += rank;
  if (end < 0) end += rank;
  start = std::clamp<int64_t>(start, 0, rank);
  end = std::clamp<int64_t>(end, 0, rank);
  std::vector<int64_t> dims;
  for (int64_t i = start; i < end; ++i) dims.push_back(shape[static_cast<size_t>(i)]);
  return Tensor::FromVector<int64_t>({static_cast<int64_t>(dims.size())}, dims);
}

bool Foldable(const Graph& graph, const Node& node) {
  if (node.domain.empty() && node.op_type == "DequantizeLinear") return false;
  if (node.domain.empty() && node.op_type == "Shape") return true;
  for (ValueId in : node.inputs) {
    if (in != kNoValue && !graph.value(in).is_constant()) return false;
  }
  return !node.inputs.empty();
}

}  // namespace

Status PrepareGraph(Graph& graph, const std::map<std::string, Shape>& input_shapes,
                    const OpRegistry& ops, int64_t default_dim) {
  for (const auto& [name, shape] : input_shapes) {
    const ValueId id = graph.FindValue(name);
    if (id == kNoValue || !Contains(graph.inputs, id)) {
      std::string known;
      for (ValueId in : graph.inputs) known += (known.empty() ? "" : ", ") + graph.value(in).name;
      return InvalidArgumentError("input shape given for '" + name +
                                  "', which is not a graph input (inputs: " + known + ")");
    }
    Value& v = graph.value(id);
    if (v.shape_known && v.shape.size() != shape.size()) {
      return InvalidArgumentError("input '" + name + "': shape " + ShapeToString(shape) +
                                  " has rank " + std::to_string(shape.size()) +
                                  " but the model declares " + ShapeToString(v.shape));
    }
    for (size_t i = 0; i < shape.size(); ++i) {
      if (shape[i] < 0) {
        return InvalidArgumentError("input '" + name + "': shape " + ShapeToString(shape) +
                                    " has a negative dim");
      }
      if (v.shape_known && v.shape[i] >= 0 && v.shape[i] != shape[i]) {
        return InvalidArgumentError("input '" + name + "': dim " + std::to_string(i) + " is " +
                                    std::to_string(v.shape[i]) + " in the model, not " +
                                    std::to_string(shape[i]));
      }
    }
    v.shape = shape;
    v.shape_known = true;
  }
  for (ValueId in : graph.inputs) {
    Value& v = graph.value(in);
    if (!v.shape_known) {
      return InvalidArgumentError("input '" + v.name +
                                  "' has no declared shape; give one in the session options");
    }
    for (int64_t& d : v.shape) {
      if (d < 0) d = default_dim;
    }
    auto n = CheckedNumElements(v.shape, v.dtype);
    if (!n.ok()) return n.status().WithContext("input '" + v.name + "'");
  }
  // Forget inferred shapes of node outputs: they are recomputed for these input shapes.
  for (Node& node : graph.nodes) {
    for (ValueId out : node.outputs) {
      if (out == kNoValue) continue;
      Value& v = graph.value(out);
      v.shape.clear();
      v.shape_known = false;
    }
  }

  // Infer node by node so that folded constants are visible to the nodes after them.
  for (size_t n = 0; n < graph.nodes.size(); ++n) {
    HML_RETURN_IF_ERROR(InferNodeShapes(graph, n, ops));
    Node& node = graph.nodes[n];
    if (!Foldable(graph, node)) continue;
    std::vector<Tensor> outputs;
    if (node.op_type == "Shape") {
      HML_ASSIGN_OR_RETURN(Tensor t, ShapeConstant(graph, node));
      outputs.push_back(std::move(t));
    } else {
      HML_ASSIGN_OR_RETURN(outputs, EvaluateNode(graph, node));
    }
    for (size_t o = 0; o < node.outputs.size() && o < outputs.size(); ++o) {
      if (node.outputs[o] == kNoValue) continue;
      Value& v = graph.value(node.outputs[o]);
      v.constant = std::make_shared<const Tensor>(std::move(outputs[o]));
    }
  }
  // Nodes whose outputs were all folded are no longer needed.
  std::vector<Node> kept;
  for (Node& node : graph.nodes) {
    bool all_constant = true;
    for (ValueId out : node.outputs) {
      all_constant &= out == kNoValue || graph.value(out).is_constant();
    }
    if (!all_constant) kept.push_back(std::move(node));
  }
  graph.nodes = std::move(kept);
  graph.RemoveDeadCode();
  return Status::Ok();
}

}  // namespace hml::runtime

// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/compress/quantize.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <utility>

#include "hml/runtime/model.h"
#include "hml/runtime/session.h"
#include "src/compress/graph_util.h"
#include "src/runtime/passes.h"

namespace hml::compress {
namespace {

using runtime::Graph;
using runtime::kNoValue;
using runtime::Node;
using runtime::Value;
using runtime::ValueId;

std::string Describe(const Graph& g, int n) { return g.nodes[n].Describe(static_cast<size_t>(n)); }

// Running statistics of one tensor over the calibration samples.
struct TensorStats {
  float min = std::numeric_limits<float>::infinity();
  float max = -std::numeric_limits<float>::infinity();
  std::vector<int64_t> histogram;  // over [min, max], filled in the second pass
};

Status CheckFinite(std::span<const float> values, const std::string& name, size_t sample) {
  for (float v : values) {
    if (!std::isfinite(v)) {
      return InvalidArgumentError("calibration: tensor '" + name + "' holds a non-finite value (" +
                                  std::to_string(v) + ") on sample " + std::to_string(sample));
    }
  }
  return Status::Ok();
}

// Bounds of the histogram mass between the (100 - p)-th and the p-th percentile.
TensorRange PercentileRange(const TensorStats& s, double percentile) {
  int64_t total = 0;
  for (int64_t c : s.histogram) total += c;
  const size_t bins = s.histogram.size();
  if (total == 0 || bins == 0 || !(s.max > s.min)) return {s.min, s.max};
  const double width = (static_cast<double>(s.max) - s.min) / static_cast<double>(bins);
  const double tail = static_cast<double>(total) * (100.0 - percentile) / 100.0;
  size_t lo_bin = 0;
  double cum = 0;
  for (; lo_bin < bins; ++lo_bin) {
    cum += static_cast<double>(s.histogram[lo_bin]);
    if (cum > tail) break;
  }
  size_t hi_bin = bins;
  cum = 0;
  while (hi_bin > 0) {
    cum += static_cast<double>(s.histogram[hi_bin - 1]);
    if (cum > tail) break;
    --hi_bin;
  }
  TensorRange r;
  r.min = static_cast<float>(s.min + width * static_cast<double>(lo_bin));
  r.max = static_cast<float>(s.min + width * static_cast<double>(hi_bin));
  r.min = std::clamp(r.min, s.min, s.max);
  r.max = std::clamp(r.max, r.min, s.max);
  return r;
}

bool IsReshapeFamily(const std::string& op) {
  return op == "Flatten" || op == "Reshape" || op == "Squeeze" || op == "Unsqueeze";
}

bool IsQuantizedOp(const std::string& op) {
  return op == "QuantizeLinear" || op == "DequantizeLinear" || op == "QLinearConv" ||
         op == "QLinearMatMul" || op == "DynamicQuantizeLinear" || op == "ConvInteger" ||
         op == "MatMulInteger";
}

// Scalar float constant of input `i`, if present and constant.
std::optional<float> ConstantScalar(const Graph& g, const Node& node, size_t i) {
  const ValueId id = node.input(i);
  if (id == kNoValue || !g.value(id).is_constant()) return std::nullopt;
  const Tensor& t = *g.value(id).constant;
  if (t.dtype() != DType::kFloat32 || t.num_elements() != 1) return std::nullopt;
  return t.data<float>()[0];
}

// Bounds of a Relu or Clip node; nullopt when they are not constant.
std::optional<std::pair<float, float>> ActivationBounds(const Graph& g, const Node& node) {
  constexpr float kInf = std::numeric_limits<float>::infinity();
  if (node.op_type == "Relu") return std::make_pair(0.0f, kInf);
  if (node.op_type != "Clip") return std::nullopt;
  if (g.opset < 11) {
    return std::make_pair(node.attrs.GetFloat("min", -kInf), node.attrs.GetFloat("max", kInf));
  }
  float lo = -kInf, hi = kInf;
  if (node.input(1) != kNoValue) {
    std::optional<float> v = ConstantScalar(g, node, 1);
    if (!v) return std::nullopt;
    lo = *v;
  }
  if (node.input(2) != kNoValue) {
    std::optional<float> v = ConstantScalar(g, node, 2);
    if (!v) return std::nullopt;
    hi = *v;
  }
  return std::make_pair(lo, hi);
}

int QuantizeValue(float x, const QuantParams& p) {
  const float q = std::nearbyint(x / p.scale) + static_cast<float>(p.zero_point);
  return static_cast<int>(std::clamp(q, -128.0f, 127.0f));
}

// How a quantizable compute node's weight and bias are laid out.
struct ComputePlan {
  int node = -1;
  int axis = 0;  // output-channel axis of the weight
  bool quantize_bias = false;
};

// Where an activation's quantization parameters come from.
struct ActivationPlan {
  ValueId shared_from = kNoValue;  // reuse this value's parameters (MaxPool, reshapes)
  ValueId q_source = kNoValue;     // what the QuantizeLinear reads (differs when folding)
  int fold_node = -1;              // the Relu/Clip folded into this quantization, if any
  float fold_lo = 0, fold_hi = 0;
};

}  // namespace

Status QuantizeOptions::Validate() const {
  if (!(percentile > 50.0 && percentile <= 100.0)) {
    return InvalidArgumentError("QuantizeOptions: percentile " + std::to_string(percentile) +
                                " is outside (50, 100]");
  }
  if (histogram_bins < 16 || histogram_bins > (1 << 20)) {
    return InvalidArgumentError("QuantizeOptions: histogram_bins " +
                                std::to_string(histogram_bins) + " is outside [16, 1048576]");
  }
  if (calibration_backend.empty()) {
    return InvalidArgumentError("QuantizeOptions: calibration_backend is empty");
  }
  return Status::Ok();
}

QuantParams AsymmetricInt8Params(float lo, float hi) {
  lo = std::min(lo, 0.0f);
  hi = std::max(hi, 0.0f);
  QuantParams p;
  p.scale = hi > lo ? (hi - lo) / 255.0f : 1.0f;
  if (!(p.scale > 0.0f) || !std::isfinite(p.scale)) p.scale = 1.0f;
  const float zp = std::nearbyint(-128.0f - lo / p.scale);
  p.zero_point = static_cast<int8_t>(std::clamp(zp, -128.0f, 127.0f));
  return p;
}

Result<Tensor> QuantizeWeightSymmetric(const Tensor& weight, int axis, bool per_channel,
                                       std::vector<float>* scales) {
  if (weight.dtype() != DType::kFloat32) {
    return InvalidArgumentError("weight quantization: weight is " +
                                std::string(DTypeName(weight.dtype())) + ", not float32");
  }
  if (axis < 0 || axis >= weight.rank()) {
    return InvalidArgumentError("weight quantization: axis " + std::to_string(axis) +
                                " is out of range for shape " + ShapeToString(weight.shape()));
  }
  const int64_t channels = weight.dim(axis);
  int64_t inner = 1;
  for (int d = axis + 1; d < weight.rank(); ++d) inner *= weight.dim(d);
  const std::span<const float> w = weight.values<float>();
  auto channel_of = [&](int64_t i) { return (i / inner) % channels; };

  std::vector<float> max_abs(static_cast<size_t>(std::max<int64_t>(channels, 1)), 0.0f);
  float tensor_max = 0.0f;
  for (int64_t i = 0; i < weight.num_elements(); ++i) {
    const float a = std::fabs(w[static_cast<size_t>(i)]);
    float& m = max_abs[static_cast<size_t>(channel_of(i))];
    m = std::max(m, a);
    tensor_max = std::max(tensor_max, a);
  }
  const float fallback = tensor_max > 0.0f ? tensor_max / 127.0f : 1.0f / 127.0f;
  scales->clear();
  if (per_channel) {
    for (int64_t c = 0; c < channels; ++c) {
      const float m = max_abs[static_cast<size_t>(c)];
      scales->push_back(m > 0.0f ? m / 127.0f : fallback);
    }
  } else {
    scales->push_back(fallback);
  }
  HML_ASSIGN_OR_RETURN(Tensor q, Tensor::Allocate(DType::kInt8, weight.shape()));
  int8_t* out = q.data<int8_t>();
  for (int64_t i = 0; i < weight.num_elements(); ++i) {
    const float s = (*scales)[per_channel ? static_cast<size_t>(channel_of(i)) : 0];
    out[i] = static_cast<int8_t>(
        std::clamp(std::nearbyint(w[static_cast<size_t>(i)] / s), -127.0f, 127.0f));
  }
  return q;
}

Result<std::map<std::string, TensorRange>> Calibrate(const Graph& fp32, const CalibrationSet& data,
                                                     const std::vector<std::string>& tensors,
                                                     const QuantizeOptions& options) {
  HML_RETURN_IF_ERROR(options.Validate());
  if (data.samples.empty()) {
    return InvalidArgumentError(
        "calibration set is empty: static quantization needs at least one sample to measure "
        "activation ranges");
  }
  const size_t num_inputs = fp32.inputs.size();
  for (size_t s = 0; s < data.samples.size(); ++s) {
    const std::vector<Tensor>& sample = data.samples[s];
    if (sample.size() != num_inputs) {
      return InvalidArgumentError("calibration sample " + std::to_string(s) + " has " +
                                  std::to_string(sample.size()) + " tensors but the model has " +
                                  std::to_string(num_inputs) + " inputs");
    }
    for (size_t i = 0; i < num_inputs; ++i) {
      const Value& in = fp32.value(fp32.inputs[i]);
      const Tensor& t = sample[i];
      if (t.empty() || (in.dtype != DType::kUndefined && t.dtype() != in.dtype) ||
          (in.shape_known && t.rank() != static_cast<int>(in.shape.size()))) {
        return InvalidArgumentError("calibration sample " + std::to_string(s) + ", input '" +
                                    in.name + "': got " + std::string(DTypeName(t.dtype())) +
                                    ShapeToString(t.shape()) + ", model expects " +
                                    std::string(DTypeName(in.dtype)) + ShapeToString(in.shape));
      }
    }
  }

  // Graph inputs are measured from the samples; everything else becomes a sliced output.
  std::map<std::string, size_t> from_input;
  std::vector<std::string> computed;
  for (const std::string& name : tensors) {
    const ValueId id = fp32.FindValue(name);
    if (id == kNoValue || fp32.value(id).is_constant()) {
      return InvalidArgumentError("calibration: '" + name +
                                  "' is not a computed tensor of the model");
    }
    auto it = std::find(fp32.inputs.begin(), fp32.inputs.end(), id);
    if (it != fp32.inputs.end()) {
      from_input[name] = static_cast<size_t>(it - fp32.inputs.begin());
    } else {
      computed.push_back(name);
    }
  }

  auto shapes_of = [&](const std::vector<Tensor>& sample) {
    std::map<std::string, Shape> shapes;
    for (size_t i = 0; i < num_inputs; ++i) {
      shapes[fp32.value(fp32.inputs[i]).name] = sample[i].shape();
    }
    return shapes;
  };

  std::unique_ptr<Session> session;
  std::vector<size_t> output_index;
  std::map<std::string, Shape> current_shapes = shapes_of(data.samples[0]);
  if (!computed.empty()) {
    HML_ASSIGN_OR_RETURN(Model full, Model::FromGraph(fp32));
    HML_ASSIGN_OR_RETURN(Model sliced, full.Slice({}, computed, current_shapes));
    SessionOptions so;
    so.backend = options.calibration_backend;
    so.input_shapes = current_shapes;
    so.logger = nullptr;
    HML_ASSIGN_OR_RETURN(session, Session::Create(sliced, so));
    for (const std::string& name : computed) {
      HML_ASSIGN_OR_RETURN(size_t k, session->OutputIndex(name));
      if (session->output_spec(k).dtype != DType::kFloat32) {
        return InvalidArgumentError("calibration: tensor '" + name + "' is " +
                                    std::string(DTypeName(session->output_spec(k).dtype)) +
                                    ", only float32 activations can be quantized");
      }
      output_index.push_back(k);
    }
  }
  for (const auto& [name, i] : from_input) {
    if (data.samples[0][i].dtype() != DType::kFloat32) {
      return InvalidArgumentError("calibration: input '" + name +
                                  "' is not float32 and cannot be quantized");
    }
  }

  std::map<std::string, TensorStats> stats;
  const bool percentile = options.method == CalibrationMethod::kPercentile;
  const size_t bins = static_cast<size_t>(options.histogram_bins);
  for (int pass = 0; pass < (percentile ? 2 : 1); ++pass) {
    for (size_t s = 0; s < data.samples.size(); ++s) {
      const std::vector<Tensor>& sample = data.samples[s];
      auto observe = [&](const std::string& name, std::span<const float> values) -> Status {
        TensorStats& st = stats[name];
        if (pass == 0) {
          HML_RETURN_IF_ERROR(CheckFinite(values, name, s));
          for (float v : values) {
            st.min = std::min(st.min, v);
            st.max = std::max(st.max, v);
          }
          return Status::Ok();
        }
        if (st.histogram.empty()) st.histogram.assign(bins, 0);
        const double width = (static_cast<double>(st.max) - st.min) / static_cast<double>(bins);
        for (float v : values) {
          size_t b = width > 0 ? static_cast<size_t>((v - st.min) / width) : 0;
          st.histogram[std::min(b, bins - 1)] += 1;
        }
        return Status::Ok();
      };
      for (const auto& [name, i] : from_input) {
        HML_RETURN_IF_ERROR(observe(name, sample[i].values<float>()));
      }
      if (session == nullptr) continue;
      std::map<std::string, Shape> shapes = shapes_of(sample);
      if (shapes != current_shapes) {
        HML_RETURN_IF_ERROR(session->Reshape(shapes));
        current_shapes = std::move(shapes);
      }
      HML_ASSIGN_OR_RETURN(std::vector<Tensor> outputs,
                           session->Run(std::span<const Tensor>(sample)));
      for (size_t c = 0; c < computed.size(); ++c) {
        HML_RETURN_IF_ERROR(observe(computed[c], outputs[output_index[c]].values<float>()));
      }
    }
  }

  std::map<std::string, TensorRange> ranges;
  for (const auto& [name, st] : stats) {
    ranges[name] =
        percentile ? PercentileRange(st, options.percentile) : TensorRange{st.min, st.max};
  }
  return ranges;
}

Result<Graph> QuantizeStatic(const Graph& fp32, const CalibrationSet& data,
                             const QuantizeOptions& options, QuantizeReport* report) {
  HML_RETURN_IF_ERROR(options.Validate());
  if (data.samples.empty()) {
    return InvalidArgumentError(
        "calibration set is empty: static quantization needs at least one sample to measure "
        "activation ranges");
  }
  Graph g = fp32;
  HML_RETURN_IF_ERROR(g.Validate());
  HML_RETURN_IF_ERROR(runtime::RunImportPasses(g));
  HML_RETURN_IF_ERROR(g.Validate());
  for (size_t n = 0; n < g.nodes.size(); ++n) {
    if (IsQuantizedOp(g.nodes[n].op_type)) {
      return InvalidArgumentError("model is already quantized: it contains " +
                                  g.nodes[n].Describe(n));
    }
  }
  if (options.per_channel && g.opset < 13) {
    return UnimplementedError(
        "per-channel quantization needs opset >= 13 (DequantizeLinear "
        "axis); the model has opset " +
        std::to_string(g.opset) + ": set per_channel = false or re-export the model");
  }

  const std::vector<std::vector<int>> consumers = Consumers(g);
  std::set<ValueId> graph_outputs(g.outputs.begin(), g.outputs.end());
  auto is_float_activation = [&](ValueId v) {
    return v != kNoValue && !g.value(v).is_constant() &&
           (g.value(v).dtype == DType::kFloat32 || g.value(v).dtype == DType::kUndefined);
  };

  // Plan: which nodes have quantized weights, which activations get Q/DQ.
  std::vector<ComputePlan> compute;
  std::map<ValueId, ActivationPlan> acts;
  std::vector<ValueId> act_order;
  auto need = [&](ValueId v) {
    if (acts.count(v)) return;
    ActivationPlan p;
    p.q_source = v;
    acts[v] = p;
    act_order.push_back(v);
  };
  auto plan_output = [&](ValueId y) {
    const std::vector<int>& readers = consumers[static_cast<size_t>(y)];
    if (options.fold_activations && readers.size() == 1 && !graph_outputs.count(y)) {
      const Node& act = g.nodes[static_cast<size_t>(readers[0])];
      std::optional<std::pair<float, float>> bounds = ActivationBounds(g, act);
      if (bounds && act.input(0) == y && act.outputs.size() == 1) {
        const ValueId z = act.outputs[0];
        ActivationPlan p;
        p.q_source = y;
        p.fold_node = readers[0];
        p.fold_lo = bounds->first;
        p.fold_hi = bounds->second;
        acts[z] = p;
        act_order.push_back(z);
        return;
      }
    }
    need(y);
  };

  for (int n = 0; n < static_cast<int>(g.nodes.size()); ++n) {
    const Node& node = g.nodes[static_cast<size_t>(n)];
    const std::string& op = node.op_type;
    if (op == "Conv" || op == "Gemm" || op == "MatMul") {
      const ValueId w = node.input(1);
      if (w == kNoValue || !g.value(w).is_constant() || !is_float_activation(node.input(0)) ||
          node.outputs.empty()) {
        continue;
      }
      const Tensor& wt = *g.value(w).constant;
      if (wt.dtype() != DType::kFloat32) {
        return UnimplementedError(Describe(g, n) + ": weight '" + g.value(w).name + "' is " +
                                  std::string(DTypeName(wt.dtype())) +
                                  "; only float32 weights can be quantized");
      }
      ComputePlan plan;
      plan.node = n;
      int64_t channels = 0;
      if (op == "Conv") {
        if (wt.rank() < 3) continue;
        plan.axis = 0;
      } else if (op == "Gemm") {
        if (wt.rank() != 2 || node.attrs.GetFloat("alpha", 1.0f) != 1.0f ||
            node.attrs.GetFloat("beta", 1.0f) != 1.0f || node.attrs.GetInt("transA", 0) != 0) {
          continue;
        }
        plan.axis = node.attrs.GetInt("transB", 0) != 0 ? 0 : 1;
      } else {
        if (wt.rank() != 2) continue;
        plan.axis = 1;
      }
      channels = wt.dim(plan.axis);
      const ValueId b = node.input(2);
      if (op != "MatMul" && b != kNoValue && g.value(b).is_constant()) {
        const Tensor& bt = *g.value(b).constant;
        plan.quantize_bias =
            bt.dtype() == DType::kFloat32 && bt.rank() == 1 && bt.dim(0) == channels;
      }
      compute.push_back(plan);
      need(node.input(0));
      plan_output(node.outputs[0]);
    } else if (op == "MaxPool") {
      if (!is_float_activation(node.input(0)) || node.outputs.empty() ||
          (node.outputs.size() > 1 && node.outputs[1] != kNoValue)) {
        continue;
      }
      need(node.input(0));
      ActivationPlan p;
      p.shared_from = node.input(0);
      p.q_source = node.outputs[0];
      if (!acts.count(node.outputs[0])) {
        acts[node.outputs[0]] = p;
        act_order.push_back(node.outputs[0]);
      }
    } else if (op == "Add") {
      if (!is_float_activation(node.input(0)) || !is_float_activation(node.input(1)) ||
          node.outputs.size() != 1) {
        continue;  // constant operands stay fp32 (Add then runs in fp32 between Q/DQ)
      }
      need(node.input(0));
      need(node.input(1));
      plan_output(node.outputs[0]);
    } else if (IsReshapeFamily(op)) {
      const ValueId x = node.input(0);
      if (x != kNoValue && acts.count(x) && node.outputs.size() == 1 &&
          !acts.count(node.outputs[0])) {
        ActivationPlan p;
        p.shared_from = x;
        p.q_source = node.outputs[0];
        acts[node.outputs[0]] = p;
        act_order.push_back(node.outputs[0]);
      }
    }
  }
  if (compute.empty()) {
    return InvalidArgumentError("model '" + g.name +
                                "' has no quantizable op (Conv, Gemm or MatMul with a constant "
                                "float32 weight and a float32 input)");
  }

  // Calibrate every activation whose parameters are not shared.
  std::vector<std::string> to_calibrate;
  for (ValueId v : act_order) {
    if (acts[v].shared_from == kNoValue) to_calibrate.push_back(g.value(v).name);
  }
  HML_ASSIGN_OR_RETURN(auto ranges, Calibrate(g, data, to_calibrate, options));

  std::map<ValueId, QuantParams> params;
  for (ValueId v : act_order) {  // in topological order: shared sources come first
    const ActivationPlan& p = acts[v];
    if (p.shared_from != kNoValue) {
      auto it = params.find(p.shared_from);
      if (it == params.end()) {
        return InternalError("quantization: '" + g.value(v).name + "' shares the parameters of '" +
                             g.value(p.shared_from).name + "', which has none");
      }
      params[v] = it->second;
    } else {
      auto it = ranges.find(g.value(v).name);
      if (it == ranges.end()) {
        return InternalError("quantization: no calibrated range for '" + g.value(v).name + "'");
      }
      params[v] = AsymmetricInt8Params(it->second.min, it->second.max);
    }
  }

  // Rewrite. New nodes are appended and the graph re-sorted at the end.
  std::vector<Node> new_nodes;
  std::set<int> removed_nodes;
  auto unique_name = [&](const std::string& base) {
    std::string name = base;
    for (int i = 1; g.FindValue(name) != kNoValue; ++i) name = base + "_" + std::to_string(i);
    return name;
  };
  auto add_constant = [&](const std::string& base, Tensor t) {
    return g.AddConstant(unique_name(base), std::move(t));
  };
  auto add_value = [&](const std::string& base, DType dtype, const Value& like) {
    Value v;
    v.name = unique_name(base);
    v.dtype = dtype;
    v.shape = like.shape;
    v.shape_known = like.shape_known;
    return g.AddValue(std::move(v));
  };
  // Redirects every reader of `from` among the original nodes (except `skip`) to `to`.
  const size_t original_nodes = g.nodes.size();
  auto rewire = [&](ValueId from, ValueId to, int skip) {
    for (size_t n = 0; n < original_nodes; ++n) {
      if (static_cast<int>(n) == skip) continue;
      for (ValueId& in : g.nodes[n].inputs) {
        if (in == from) in = to;
      }
    }
  };

  std::map<std::string, std::pair<ValueId, ValueId>> param_constants;  // by params' bit pattern
  auto param_values = [&](const QuantParams& p,
                          const std::string& base) -> Result<std::pair<ValueId, ValueId>> {
    const std::string key =
        std::to_string(std::bit_cast<uint32_t>(p.scale)) + "/" + std::to_string(p.zero_point);
    auto it = param_constants.find(key);
    if (it != param_constants.end()) return it->second;
    const float scale[] = {p.scale};
    const int8_t zp[] = {p.zero_point};
    HML_ASSIGN_OR_RETURN(Tensor st, Tensor::FromVector<float>({}, scale));
    HML_ASSIGN_OR_RETURN(Tensor zt, Tensor::FromVector<int8_t>({}, zp));
    std::pair<ValueId, ValueId> ids{add_constant(base + "_scale", std::move(st)),
                                    add_constant(base + "_zp", std::move(zt))};
    param_constants[key] = ids;
    return ids;
  };

  for (ValueId v : act_order) {
    const ActivationPlan& plan = acts[v];
    const QuantParams& p = params[v];
    const std::string name = g.value(v).name;
    ValueId source = v;
    bool fold = false;
    if (plan.fold_node >= 0) {
      // Folding is exact when Q saturates at or inside the activation's bounds.
      const bool lo_ok = !std::isfinite(plan.fold_lo) || QuantizeValue(plan.fold_lo, p) == -128;
      const bool hi_ok = !std::isfinite(plan.fold_hi) || QuantizeValue(plan.fold_hi, p) == 127;
      fold = lo_ok && hi_ok;
      if (fold) {
        source = plan.q_source;
        removed_nodes.insert(plan.fold_node);
        if (report) report->folded_activations.push_back(Describe(g, plan.fold_node));
      }
    }
    HML_ASSIGN_OR_RETURN(auto ids, param_values(p, name));
    // Short generated names, and no node names (optional in ONNX; a node is found by its output):
    // on a small model names are a noticeable part of the file.
    const ValueId q = add_value(name + "_q", DType::kInt8, g.value(v));
    const ValueId dq = add_value(name + "_dq", DType::kFloat32, g.value(v));
    Node qn;
    qn.op_type = "QuantizeLinear";
    qn.inputs = {source, ids.first, ids.second};
    qn.outputs = {q};
    Node dqn;
    dqn.op_type = "DequantizeLinear";
    dqn.inputs = {q, ids.first, ids.second};
    dqn.outputs = {dq};
    new_nodes.push_back(std::move(qn));
    new_nodes.push_back(std::move(dqn));
    rewire(v, dq, fold ? plan.fold_node : -1);
    const bool is_graph_input = std::find(g.inputs.begin(), g.inputs.end(), v) != g.inputs.end();
    for (ValueId& out : g.outputs) {
      // A graph input that is also an output stays as it is: renaming it would change the API.
      if (out != v || is_graph_input) continue;
      out = dq;  // the graph output keeps its name
      std::swap(g.value(v).name, g.value(dq).name);
      g.ReindexNames();
    }
    if (report) report->activations[name] = p;
  }

  for (const ComputePlan& plan : compute) {
    Node& node = g.nodes[static_cast<size_t>(plan.node)];
    const ValueId w = node.input(1);
    const std::string wname = g.value(w).name;
    std::vector<float> w_scales;
    HML_ASSIGN_OR_RETURN(Tensor wq, QuantizeWeightSymmetric(*g.value(w).constant, plan.axis,
                                                            options.per_channel, &w_scales));
    const Shape param_shape =
        options.per_channel ? Shape{static_cast<int64_t>(w_scales.size())} : Shape{};
    HML_ASSIGN_OR_RETURN(Tensor ws, Tensor::FromVector<float>(param_shape, w_scales));
    const Value w_like = g.value(w);
    const ValueId wq_id = add_constant(wname + "_q", std::move(wq));
    const ValueId ws_id = add_constant(wname + "_scale", std::move(ws));
    const ValueId wdq = add_value(wname + "_dq", DType::kFloat32, w_like);
    // Symmetric: no zero point input (it defaults to 0 of the int8 input's type).
    Node dqn;
    dqn.op_type = "DequantizeLinear";
    dqn.inputs = {wq_id, ws_id};
    dqn.outputs = {wdq};
    if (options.per_channel) dqn.attrs.SetInt("axis", plan.axis);
    new_nodes.push_back(std::move(dqn));
    g.nodes[static_cast<size_t>(plan.node)].inputs[1] = wdq;

    if (plan.quantize_bias) {
      Node& n2 = g.nodes[static_cast<size_t>(plan.node)];
      const ValueId b = n2.input(2);
      const std::string bname = g.value(b).name;
      float x_scale = 0.0f;
      const ValueId x_dq = n2.input(0);
      // Find the activation whose DequantizeLinear produces x_dq.
      for (const Node& nn : new_nodes) {
        if (nn.op_type == "DequantizeLinear" && nn.outputs[0] == x_dq) {
          const Tensor& s = *g.value(nn.inputs[1]).constant;
          x_scale = s.data<float>()[0];
        }
      }
      if (!(x_scale > 0.0f)) {
        return InternalError(Describe(g, plan.node) + ": no quantized input scale for its bias");
      }
      const Tensor& bt = *g.value(b).constant;
      const int64_t channels = bt.num_elements();
      std::vector<float> b_scales(static_cast<size_t>(channels));
      std::vector<int32_t> bq(static_cast<size_t>(channels));
      for (int64_t c = 0; c < channels; ++c) {
        const float s = x_scale * w_scales[options.per_channel ? static_cast<size_t>(c) : 0];
        b_scales[static_cast<size_t>(c)] = s;
        const double q = std::nearbyint(static_cast<double>(bt.data<float>()[c]) / s);
        bq[static_cast<size_t>(c)] =
            static_cast<int32_t>(std::clamp(q, -2147483647.0, 2147483647.0));
      }
      HML_ASSIGN_OR_RETURN(Tensor bqt, Tensor::FromVector<int32_t>({channels}, bq));
      HML_ASSIGN_OR_RETURN(Tensor bst, options.per_channel
                                           ? Tensor::FromVector<float>({channels}, b_scales)
                                           : Tensor::FromVector<float>(
                                                 {}, std::span<const float>(b_scales).first(1)));
      const Value b_like = g.value(b);
      const ValueId bq_id = add_constant(bname + "_q", std::move(bqt));
      const ValueId bs_id = add_constant(bname + "_scale", std::move(bst));
      const ValueId bdq = add_value(bname + "_dq", DType::kFloat32, b_like);
      Node bn;
      bn.op_type = "DequantizeLinear";
      bn.inputs = {bq_id, bs_id};
      bn.outputs = {bdq};
      if (options.per_channel) bn.attrs.SetInt("axis", 0);
      new_nodes.push_back(std::move(bn));
      g.nodes[static_cast<size_t>(plan.node)].inputs[2] = bdq;
    }
    if (report) report->quantized_nodes.push_back(Describe(g, plan.node));
  }

  std::vector<Node> nodes;
  for (size_t n = 0; n < g.nodes.size(); ++n) {
    if (!removed_nodes.count(static_cast<int>(n))) nodes.push_back(std::move(g.nodes[n]));
  }
  for (Node& n : new_nodes) nodes.push_back(std::move(n));
  g.nodes = std::move(nodes);
  g.name = fp32.name.empty() ? "int8_qdq" : fp32.name + "_int8_qdq";
  HML_RETURN_IF_ERROR(g.Validate());
  g.RemoveDeadCode();
  HML_RETURN_IF_ERROR(g.Validate());
  return g;
}

}  // namespace hml::compress

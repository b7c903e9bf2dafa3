// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// How a step runs: the plan for the batch's input shape lists the nodes on the way to the
// logits in topological order, each with its resolved geometry and the buffers of its inputs
// and outputs (slots, indexed by the plan graph's value ids). Forward() runs them in order,
// the loss writes d(loss)/d(logits), Backward() runs them in reverse for the nodes whose output
// depends on a trainable parameter, accumulating into input gradients. Parameters and their
// gradients live in the trainer's flat vectors; the plan's slots point into them, so a weight
// update is visible to every plan without copying.
#include "src/runtime/train/trainer.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <set>
#include <utility>

#include "hml/logging.h"
#include "hml/runtime/model.h"
#include "hml/runtime/session.h"
#include "src/runtime/op_registry.h"
#include "src/runtime/ops/window_params.h"
#include "src/runtime/passes.h"
#include "src/runtime/train/gemm.h"
#include "src/runtime/train/train_kernels.h"

namespace hml::runtime {
namespace {

using train_internal::Gemm;
using train_internal::GemmScratch;
using train_internal::Window2;

enum class OpKind {
  kConv,
  kGemm,  // Gemm and 2-D MatMul
  kAdd,
  kRelu,
  kClip,
  kMaxPool,
  kAveragePool,
  kGlobalAveragePool,
  kCopy,  // Flatten, Reshape: same data, another shape
};

bool IsLayer(const Node& node) {
  return node.domain.empty() &&
         (node.op_type == "Conv" || node.op_type == "Gemm" || node.op_type == "MatMul");
}

Result<OpKind> KindOf(const Node& node, size_t index) {
  static const std::pair<const char*, OpKind> kKinds[] = {
      {"Conv", OpKind::kConv},
      {"Gemm", OpKind::kGemm},
      {"MatMul", OpKind::kGemm},
      {"Add", OpKind::kAdd},
      {"Relu", OpKind::kRelu},
      {"Clip", OpKind::kClip},
      {"MaxPool", OpKind::kMaxPool},
      {"AveragePool", OpKind::kAveragePool},
      {"GlobalAveragePool", OpKind::kGlobalAveragePool},
      {"Flatten", OpKind::kCopy},
      {"Reshape", OpKind::kCopy},
  };
  if (node.domain.empty()) {
    for (const auto& [name, kind] : kKinds) {
      if (node.op_type == name) return kind;
    }
  }
  return UnimplementedError(node.Describe(index) +
                            ": the on-device trainer has no forward/backward kernel for op " +
                            node.op_type);
}

// Nodes (indices) whose outputs the value `target` depends on, in topological order.
std::vector<size_t> NodesFor(const Graph& graph, ValueId target) {
  const std::vector<int> producers = graph.Producers();
  std::vector<bool> needed(graph.nodes.size(), false);
  std::vector<ValueId> stack{target};
  while (!stack.empty()) {
    const ValueId v = stack.back();
    stack.pop_back();
    const int p = producers[static_cast<size_t>(v)];
    if (p < 0 || needed[static_cast<size_t>(p)]) continue;
    needed[static_cast<size_t>(p)] = true;
    for (ValueId in : graph.nodes[static_cast<size_t>(p)].inputs) {
      if (in != kNoValue) stack.push_back(in);
    }
  }
  std::vector<size_t> order;
  for (size_t i = 0; i < needed.size(); ++i) {
    if (needed[i]) order.push_back(i);
  }
  return order;
}

bool IsFloatConstant(const Graph& graph, ValueId v) {
  return v != kNoValue && graph.value(v).is_constant() &&
         graph.value(v).constant->dtype() == DType::kFloat32;
}

// Numpy broadcasting of an input onto an output shape: the input's element stride along each
// output dim (0 where the input is broadcast).
struct Broadcast {
  Shape out;
  std::array<int64_t, kMaxRank> in_strides{};
};

Result<Broadcast> MakeBroadcast(const Shape& out, const Shape& in, const std::string& what) {
  if (in.size() > out.size() || out.size() > static_cast<size_t>(kMaxRank)) {
    return InvalidArgumentError(what + ": cannot broadcast " + ShapeToString(in) + " to " +
                                ShapeToString(out));
  }
  Broadcast b;
  b.out = out;
  const size_t lead = out.size() - in.size();
  int64_t stride = 1;
  for (size_t d = out.size(); d-- > 0;) {
    if (d < lead) {
      b.in_strides[d] = 0;
      continue;
    }
    const int64_t dim = in[d - lead];
    if (dim != out[d] && dim != 1) {
      return InvalidArgumentError(what + ": cannot broadcast " + ShapeToString(in) + " to " +
                                  ShapeToString(out));
    }
    b.in_strides[d] = dim == 1 ? 0 : stride;
    stride *= dim;
  }
  return b;
}

// Calls f(out_offset, in_offset, count, in_step) for each run of the output's last dim.
template <typename F>
void ForEachRun(const Broadcast& b, F&& f) {
  const size_t rank = b.out.size();
  if (rank == 0) {
    f(int64_t{0}, int64_t{0}, int64_t{1}, int64_t{0});
    return;
  }
  const int64_t inner = b.out[rank - 1];
  const int64_t step = b.in_strides[rank - 1];
  int64_t outer = 1;
  for (size_t d = 0; d + 1 < rank; ++d) outer *= b.out[d];
  std::array<int64_t, kMaxRank> index{};
  int64_t in_offset = 0;
  for (int64_t o = 0; o < outer; ++o) {
    f(o * inner, in_offset, inner, step);
    for (size_t d = rank - 1; d-- > 0;) {
      ++index[d];
      in_offset += b.in_strides[d];
      if (index[d] < b.out[d]) break;
      in_offset -= b.in_strides[d] * b.out[d];
      index[d] = 0;
    }
  }
}

// Sum of n floats in eight interleaved partial sums: the compiler vectorises it (a single
// running sum is a serial chain of dependent adds, which dominated the bias gradients).
float SumOf(const float* x, int64_t n) {
  float lanes[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int j = 0; j < 8; ++j) lanes[j] += x[i + j];
  }
  float s = 0.0f;
  for (; i < n; ++i) s += x[i];
  for (float lane : lanes) s += lane;
  return s;
}

// Element-wise loops with non-aliasing operands spelled out, so they vectorise.
void ReluForward(const float* __restrict x, float* __restrict y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}
void ReluBackwardAdd(const float* __restrict y, const float* __restrict dy, float* __restrict dx,
                     int64_t n) {
  for (int64_t i = 0; i < n; ++i) dx[i] += y[i] > 0.0f ? dy[i] : 0.0f;
}
void AddInto(const float* __restrict dy, float* __restrict dx, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dx[i] += dy[i];
}

// y (+)= scale * broadcast(x).
void BroadcastInto(const Broadcast& b, const float* x, float scale, bool accumulate, float* y) {
  ForEachRun(b, [&](int64_t o, int64_t i, int64_t n, int64_t step) {
    for (int64_t j = 0; j < n; ++j) {
      const float v = scale * x[i + j * step];
      y[o + j] = accumulate ? y[o + j] + v : v;
    }
  });
}

// dx += scale * (dy summed over the broadcast dims).
void ReduceInto(const Broadcast& b, const float* dy, float scale, float* dx) {
  ForEachRun(b, [&](int64_t o, int64_t i, int64_t n, int64_t step) {
    if (step == 0) {
      dx[i] += scale * SumOf(dy + o, n);
    } else {
      for (int64_t j = 0; j < n; ++j) dx[i + j * step] += scale * dy[o + j];
    }
  });
}

}  // namespace

// ---- Options.

Status TrainOptions::Validate() const {
  if (!(learning_rate > 0.0f) || !std::isfinite(learning_rate)) {
    return InvalidArgumentError("TrainOptions: learning_rate must be > 0 and finite, got " +
                                std::to_string(learning_rate));
  }
  if (!(momentum >= 0.0f && momentum < 1.0f)) {
    return InvalidArgumentError("TrainOptions: momentum must be in [0, 1), got " +
                                std::to_string(momentum));
  }
  if (!(weight_decay >= 0.0f) || !std::isfinite(weight_decay)) {
    return InvalidArgumentError("TrainOptions: weight_decay must be >= 0, got " +
                                std::to_string(weight_decay));
  }
  if (!(prox_mu >= 0.0f) || !std::isfinite(prox_mu)) {
    return InvalidArgumentError("TrainOptions: prox_mu must be >= 0, got " +
                                std::to_string(prox_mu));
  }
  if (trainable_layers < 0) {
    return InvalidArgumentError("TrainOptions: trainable_layers must be >= 0, got " +
                                std::to_string(trainable_layers));
  }
  return Status::Ok();
}

// ---- The plan for one input shape.

struct Trainer::Plan {
  struct Slot {
    Shape shape;
    int64_t size = 0;
    float* data = nullptr;
    float* grad = nullptr;  // null when no parameter's gradient flows through this value
    std::vector<float> data_buffer;
    std::vector<float> grad_buffer;
  };
  struct Op {
    OpKind kind = OpKind::kCopy;
    ValueId x = kNoValue;  // Conv/pool/unary input; Gemm A; Add's first operand
    ValueId w = kNoValue;  // Conv weight; Gemm B; Add's second operand
    ValueId b = kNoValue;  // Conv bias; Gemm C
    ValueId y = kNoValue;
    // Conv and pools.
    Window2 window;
    int64_t batch = 0, in_channels = 0, out_channels = 0, group = 1;
    bool count_include_pad = false;
    std::vector<int32_t> argmax;
    // Gemm / MatMul.
    bool trans_a = false, trans_b = false;
    float alpha = 1.0f, beta = 1.0f;
    int64_t m = 0, n = 0, k = 0, lda = 0, ldb = 0;
    // Add operands and Gemm's C, broadcast to the output.
    Broadcast x_bc, w_bc;
    // Clip bounds.
    float lo = -std::numeric_limits<float>::infinity();
    float hi = std::numeric_limits<float>::infinity();
  };

  Graph graph;
  std::vector<Slot> slots;
  std::vector<Op> ops;
  // With trainable_layers > 0: the frozen prefix as a runtime Session (XNNPACK where it can),
  // writing the values the trainable part reads (`frozen_outputs`, views of their slots).
  std::unique_ptr<Session> frozen;
  std::vector<Tensor> frozen_outputs;
  ValueId input = kNoValue;
  ValueId logits = kNoValue;
  std::vector<float> col;
  std::vector<float> dcol;
  GemmScratch gemm;

  Slot& slot(ValueId v) { return slots[static_cast<size_t>(v)]; }
  bool needs_grad(ValueId v) const {
    return v != kNoValue && slots[static_cast<size_t>(v)].grad != nullptr;
  }
};

Trainer::Trainer() = default;
Trainer::~Trainer() = default;

Result<std::unique_ptr<Trainer>> Trainer::Create(const Graph& graph, const TrainOptions& options) {
  HML_RETURN_IF_ERROR(options.Validate());
  std::unique_ptr<Trainer> t(new Trainer());
  t->options_ = options;
  Graph& g = t->graph_;
  g = graph;
  HML_RETURN_IF_ERROR(g.Validate());
  HML_RETURN_IF_ERROR(RunImportPasses(g));
  HML_RETURN_IF_ERROR(g.Validate());

  // The one float input, batch dim made dynamic so any N works.
  std::vector<ValueId> inputs;
  for (ValueId v : g.inputs) {
    if (!g.value(v).is_constant()) inputs.push_back(v);
  }
  if (inputs.size() != 1) {
    return InvalidArgumentError(
        "Trainer: the graph must have exactly one non-constant input, not " +
        std::to_string(inputs.size()));
  }
  Value& in = g.value(inputs[0]);
  if (in.dtype != DType::kFloat32 || !in.shape_known || in.shape.empty()) {
    return InvalidArgumentError("Trainer: input '" + in.name +
                                "' must be float32 with a declared shape [N, ...]");
  }
  const int64_t declared_batch = in.shape[0] > 0 ? in.shape[0] : 1;
  in.shape[0] = -1;
  t->input_name_ = in.name;
  t->input_shape_ = in.shape;

  // The logits.
  ValueId logits = kNoValue;
  if (!options.logits.empty()) {
    logits = g.FindValue(options.logits);
    if (logits == kNoValue) {
      return InvalidArgumentError("Trainer: logits value '" + options.logits +
                                  "' is not in the graph");
    }
  } else {
    for (const Node& node : g.nodes) {
      if (node.op_type == "Softmax" && node.domain.empty()) logits = node.input(0);
    }
    if (logits == kNoValue) {
      if (g.outputs.size() != 1) {
        return InvalidArgumentError("Trainer: the graph has no Softmax and " +
                                    std::to_string(g.outputs.size()) +
                                    " outputs; name the logits in TrainOptions::logits");
      }
      logits = g.outputs[0];
    }
  }
  t->logits_name_ = g.value(logits).name;
  const std::vector<int> producers = g.Producers();
  if (producers[static_cast<size_t>(logits)] < 0) {
    return InvalidArgumentError("Trainer: logits '" + t->logits_name_ +
                                "' are not computed by a node");
  }

  // Trainable layers: the last K parameterised nodes on the way to the logits.
  const std::vector<size_t> order = NodesFor(g, logits);
  std::vector<size_t> layers;
  for (size_t n : order) {
    if (IsLayer(g.nodes[n])) layers.push_back(n);
  }
  if (layers.empty()) {
    return InvalidArgumentError("Trainer: no Conv/Gemm/MatMul node computes logits '" +
                                t->logits_name_ + "'");
  }
  if (static_cast<size_t>(options.trainable_layers) > layers.size()) {
    return InvalidArgumentError(
        "Trainer: trainable_layers = " + std::to_string(options.trainable_layers) +
        " but the graph has " + std::to_string(layers.size()) + " Conv/Gemm/MatMul layers");
  }
  const size_t first_trainable =
      options.trainable_layers == 0 ? 0
                                    : layers.size() - static_cast<size_t>(options.trainable_layers);
  const std::vector<int> uses = g.UseCounts();
  std::set<ValueId> seen;
  auto add_parameter = [&](ValueId v) {
    if (!IsFloatConstant(g, v) || !seen.insert(v).second) return;
    t->offsets_.push_back(static_cast<int64_t>(t->weights_.size()));
    t->parameters_.push_back({g.value(v).name, g.value(v).constant->shape()});
    const auto values = g.value(v).constant->values<float>();
    t->weights_.insert(t->weights_.end(), values.begin(), values.end());
  };
  for (size_t l = first_trainable; l < layers.size(); ++l) {
    const Node& node = g.nodes[layers[l]];
    for (ValueId v : node.inputs) add_parameter(v);
    // The bias Add right after the layer (MatMul + Add as exporters write Linear).
    const ValueId out = node.outputs[0];
    if (uses[static_cast<size_t>(out)] != 1) continue;
    for (size_t n : order) {
      const Node& next = g.nodes[n];
      if (next.op_type != "Add" || !next.domain.empty() || next.inputs.size() != 2) continue;
      if (next.inputs[0] == out) add_parameter(next.inputs[1]);
      if (next.inputs[1] == out) add_parameter(next.inputs[0]);
    }
  }
  t->gradients_.assign(t->weights_.size(), 0.0f);
  t->momentum_.assign(t->weights_.size(), 0.0f);
  t->anchor_ = t->weights_;

  // A plan for the declared batch size (1 when dynamic; a graph may only make sense for its own)
  // checks the ops (a kernel for every node the runtime does not run), geometry, shapes and the
  // logits' rank now rather than at the first step.
  Shape one = t->input_shape_;
  one[0] = declared_batch;
  for (size_t d = 1; d < one.size(); ++d) {
    if (one[d] < 0) {
      return InvalidArgumentError("Trainer: input '" + t->input_name_ + "' has a dynamic dim " +
                                  std::to_string(d) + "; only the batch dim may be dynamic");
    }
  }
  HML_ASSIGN_OR_RETURN(std::unique_ptr<Plan> plan, t->BuildPlan(one));
  t->num_classes_ = plan->slot(plan->logits).shape[1];
  t->plans_[one] = std::move(plan);
  return t;
}

Result<std::unique_ptr<Trainer::Plan>> Trainer::BuildPlan(const Shape& input_shape) const {
  auto plan = std::make_unique<Plan>();
  Graph& g = plan->graph;
  g = graph_;
  {
    const ValueId l = g.FindValue(logits_name_);
    if (std::find(g.outputs.begin(), g.outputs.end(), l) == g.outputs.end()) g.outputs.push_back(l);
  }
  HML_RETURN_IF_ERROR(PrepareGraph(g, {{input_name_, input_shape}}, BuiltinOps()));
  plan->input = g.FindValue(input_name_);
  plan->logits = g.FindValue(logits_name_);
  if (plan->input == kNoValue || plan->logits == kNoValue) {
    return InternalError("Trainer: the prepared graph lost its input or logits");
  }
  plan->slots.resize(g.values.size());
  for (size_t v = 0; v < g.values.size(); ++v) {
    const Value& value = g.values[v];
    Plan::Slot& s = plan->slots[v];
    if (!value.shape_known) continue;
    s.shape = value.shape;
    s.size = 1;
    for (int64_t d : s.shape) s.size *= d;
    if (value.is_constant() && value.constant->dtype() == DType::kFloat32) {
      s.data = const_cast<float*>(value.constant->data<float>());
    }
  }
  for (size_t p = 0; p < parameters_.size(); ++p) {
    const ValueId v = g.FindValue(parameters_[p].name);
    if (v == kNoValue) {
      return InternalError("Trainer: parameter '" + parameters_[p].name +
                           "' vanished in preparing");
    }
    Plan::Slot& s = plan->slot(v);
    // The flat vectors are never resized after Create(), so these pointers stay valid.
    s.data = const_cast<float*>(weights_.data()) + offsets_[p];
    s.grad = const_cast<float*>(gradients_.data()) + offsets_[p];
  }

  const std::vector<size_t> order = NodesFor(g, plan->logits);
  // Which values carry a gradient: parameters, and outputs of nodes reading one.
  std::vector<bool> carries(g.values.size(), false);
  for (size_t v = 0; v < g.values.size(); ++v) carries[v] = plan->slots[v].grad != nullptr;
  for (size_t index : order) {
    const Node& node = g.nodes[index];
    bool any = false;
    for (ValueId in : node.inputs)
      any = any || (in != kNoValue && carries[static_cast<size_t>(in)]);
    for (ValueId out : node.outputs) {
      if (out != kNoValue) carries[static_cast<size_t>(out)] = any;
    }
  }
  std::set<size_t> frozen_nodes;
  if (options_.trainable_layers > 0) {
    HML_ASSIGN_OR_RETURN(frozen_nodes, PrepareFrozenSession(*plan, order, carries, input_shape));
  }
  int64_t col_size = 0;
  for (size_t index : order) {
    if (frozen_nodes.count(index) != 0) continue;
    const Node& node = g.nodes[index];
    const std::string what = node.Describe(index);
    HML_ASSIGN_OR_RETURN(OpKind kind, KindOf(node, index));
    Plan::Op op;
    op.kind = kind;
    op.x = node.input(0);
    if (node.outputs.empty() || node.outputs[0] == kNoValue) {
      return InvalidArgumentError(what + ": has no output");
    }
    op.y = node.outputs[0];
    for (size_t o = 1; o < node.outputs.size(); ++o) {
      if (node.outputs[o] != kNoValue) {
        return UnimplementedError(what + ": the trainer supports only the first output");
      }
    }
    // Every input the op reads as data must be a float value with a known shape.
    auto check_float = [&](ValueId v, const char* role) -> Status {
      if (v == kNoValue || !g.value(v).shape_known || g.value(v).dtype != DType::kFloat32) {
        return UnimplementedError(what + ": " + role + " must be a float32 tensor");
      }
      return Status::Ok();
    };
    HML_RETURN_IF_ERROR(check_float(op.x, "input 0"));
    const Plan::Slot& xs = plan->slot(op.x);
    const Shape& y_shape = g.value(op.y).shape;
    switch (kind) {
      case OpKind::kConv: {
        op.w = node.input(1);
        op.b = node.input(2);
        HML_RETURN_IF_ERROR(check_float(op.w, "the weight"));
        if (op.b != kNoValue) HML_RETURN_IF_ERROR(check_float(op.b, "the bias"));
        const Shape& ws = plan->slot(op.w).shape;
        HML_ASSIGN_OR_RETURN(WindowParams p,
                             ResolveWindow(node, WindowKind::kConv, xs.shape,
                                           std::vector<int64_t>(ws.begin() + 2, ws.end())));
        op.batch = xs.shape[0];
        op.in_channels = xs.shape[1];
        op.out_channels = ws[0];
        op.group = p.group;
        if (ws.size() != xs.shape.size() || ws[1] * op.group != op.in_channels ||
            op.out_channels % op.group != 0) {
          return InvalidArgumentError(what + ": weight " + ShapeToString(ws) +
                                      " does not fit input " + ShapeToString(xs.shape) +
                                      " with group " + std::to_string(op.group));
        }
        if (op.b != kNoValue && plan->slot(op.b).size != op.out_channels) {
          return InvalidArgumentError(what + ": bias " + ShapeToString(plan->slot(op.b).shape) +
                                      " must hold " + std::to_string(op.out_channels) + " values");
        }
        HML_ASSIGN_OR_RETURN(op.window,
                             train_internal::ToWindow2(p, op.in_channels / op.group, what));
        col_size =
            std::max(col_size, op.window.channels * op.window.taps() * op.window.out_plane());
        break;
      }
      case OpKind::kGemm: {
        op.w = node.input(1);
        HML_RETURN_IF_ERROR(check_float(op.w, "input 1"));
        const Shape& as = xs.shape;
        const Shape& bs = plan->slot(op.w).shape;
        if (as.size() != 2 || bs.size() != 2) {
          return UnimplementedError(what + ": the trainer supports 2-D operands only, got " +
                                    ShapeToString(as) + " and " + ShapeToString(bs));
        }
        if (node.op_type == "Gemm") {
          op.trans_a = node.attrs.GetInt("transA", 0) != 0;
          op.trans_b = node.attrs.GetInt("transB", 0) != 0;
          op.alpha = node.attrs.GetFloat("alpha", 1.0f);
          op.beta = node.attrs.GetFloat("beta", 1.0f);
          op.b = node.input(2);
        }
        op.m = op.trans_a ? as[1] : as[0];
        op.k = op.trans_a ? as[0] : as[1];
        op.n = op.trans_b ? bs[0] : bs[1];
        op.lda = as[1];
        op.ldb = bs[1];
        if ((op.trans_b ? bs[1] : bs[0]) != op.k) {
          return InvalidArgumentError(what + ": inner dims differ: " + ShapeToString(as) + " and " +
                                      ShapeToString(bs));
        }
        if (op.b != kNoValue) {
          HML_RETURN_IF_ERROR(check_float(op.b, "C"));
          HML_ASSIGN_OR_RETURN(op.w_bc, MakeBroadcast({op.m, op.n}, plan->slot(op.b).shape, what));
        }
        break;
      }
      case OpKind::kAdd: {
        op.w = node.input(1);
        HML_RETURN_IF_ERROR(check_float(op.w, "input 1"));
        HML_ASSIGN_OR_RETURN(op.x_bc, MakeBroadcast(y_shape, xs.shape, what));
        HML_ASSIGN_OR_RETURN(op.w_bc, MakeBroadcast(y_shape, plan->slot(op.w).shape, what));
        break;
      }
      case OpKind::kClip: {
        if (g.opset < 11) {
          op.lo = node.attrs.GetFloat("min", op.lo);
          op.hi = node.attrs.GetFloat("max", op.hi);
        } else {
          for (size_t i = 1; i <= 2; ++i) {
            const ValueId v = node.input(i);
            if (v == kNoValue) continue;
            if (!IsFloatConstant(g, v) || g.value(v).constant->num_elements() != 1) {
              return UnimplementedError(what + ": min/max must be float32 scalar constants");
            }
            (i == 1 ? op.lo : op.hi) = g.value(v).constant->data<float>()[0];
          }
        }
        break;
      }
      case OpKind::kMaxPool:
      case OpKind::kAveragePool: {
        if (xs.shape.size() < 3) return InvalidArgumentError(what + ": input must be [N, C, ...]");
        HML_ASSIGN_OR_RETURN(WindowParams p, ResolveWindow(node, WindowKind::kPool, xs.shape,
                                                           node.attrs.GetInts("kernel_shape")));
        if (kind == OpKind::kMaxPool && node.attrs.GetInt("storage_order", 0) != 0) {
          return UnimplementedError(what + ": storage_order 1 is not supported");
        }
        op.count_include_pad = node.attrs.GetInt("count_include_pad", 0) != 0;
        HML_ASSIGN_OR_RETURN(op.window,
                             train_internal::ToWindow2(p, xs.shape[0] * xs.shape[1], what));
        if (kind == OpKind::kMaxPool)
          op.argmax.resize(static_cast<size_t>(op.window.channels * op.window.out_plane()));
        break;
      }
      case OpKind::kGlobalAveragePool:
        if (xs.shape.size() < 3) return InvalidArgumentError(what + ": input must be [N, C, ...]");
        op.batch = xs.shape[0] * xs.shape[1];  // planes
        break;
      case OpKind::kRelu:
      case OpKind::kCopy:
        break;
    }
    Plan::Slot& ys = plan->slot(op.y);
    if (!g.value(op.y).shape_known) return InternalError(what + ": output shape unknown");
    ys.data_buffer.resize(static_cast<size_t>(ys.size));
    ys.data = ys.data_buffer.data();
    // The output carries a gradient when any input does.
    for (ValueId v : {op.x, op.w, op.b}) {
      if (plan->needs_grad(v) && ys.grad == nullptr) {
        ys.grad_buffer.assign(static_cast<size_t>(ys.size), 0.0f);
        ys.grad = ys.grad_buffer.data();
      }
    }
    plan->ops.push_back(std::move(op));
  }
  const Plan::Slot& ls = plan->slot(plan->logits);
  if (ls.shape.size() != 2 || ls.shape[0] != input_shape[0]) {
    return InvalidArgumentError("Trainer: logits '" + logits_name_ +
                                "' must be [N, classes], got " + ShapeToString(ls.shape));
  }
  if (ls.grad == nullptr) {
    return InternalError("Trainer: no trainable parameter reaches the logits");
  }
  plan->col.resize(static_cast<size_t>(col_size));
  plan->dcol.resize(static_cast<size_t>(col_size));
  return plan;
}

Result<std::set<size_t>> Trainer::PrepareFrozenSession(Plan& plan, const std::vector<size_t>& order,
                                                       const std::vector<bool>& carries,
                                                       const Shape& input_shape) const {
  const Graph& g = plan.graph;
  // The frozen nodes, and the values they hand to the trainable part.
  std::set<size_t> frozen;
  std::vector<std::string> boundary;
  std::set<ValueId> seen;
  for (size_t index : order) {
    const Node& node = g.nodes[index];
    if (node.outputs.empty() || node.outputs[0] == kNoValue) continue;
    if (!carries[static_cast<size_t>(node.outputs[0])]) {
      frozen.insert(index);
      continue;
    }
    for (ValueId in : node.inputs) {
      if (in == kNoValue || carries[static_cast<size_t>(in)] || g.value(in).is_constant() ||
          in == plan.input || !seen.insert(in).second) {
        continue;
      }
      boundary.push_back(g.value(in).name);
    }
  }
  if (frozen.empty() || boundary.empty()) return std::set<size_t>{};
  // Any failure (an op the runtime lacks, a backend missing from this build) leaves the
  // prefix to the trainer's own forward kernels, which cover every op they can train.
  auto model = Model::FromGraph(graph_);
  if (!model.ok()) return std::set<size_t>{};
  const std::map<std::string, Shape> shapes{{input_name_, input_shape}};
  const std::string inputs[] = {input_name_};
  auto sliced = model->Slice(inputs, boundary, shapes);
  if (!sliced.ok()) return std::set<size_t>{};
  SessionOptions options;
  options.input_shapes = shapes;
  options.logger = NullLogger();
  auto session = Session::Create(*sliced, options);
  if (!session.ok()) return std::set<size_t>{};
  std::vector<Tensor> outputs((*session)->num_outputs());
  for (const std::string& name : boundary) {
    auto index = (*session)->OutputIndex(name);
    const ValueId v = g.FindValue(name);
    if (!index.ok() || v == kNoValue) return std::set<size_t>{};
    Plan::Slot& s = plan.slot(v);
    const TensorSpec& spec = (*session)->output_spec(*index);
    if (spec.shape != s.shape || spec.dtype != DType::kFloat32) return std::set<size_t>{};
    s.data_buffer.resize(static_cast<size_t>(s.size));
    s.data = s.data_buffer.data();
    outputs[*index] = Tensor::View(DType::kFloat32, s.shape, s.data);
  }
  plan.frozen = std::move(*session);
  plan.frozen_outputs = std::move(outputs);
  return frozen;
}

Result<Trainer::Plan*> Trainer::PlanFor(const Tensor& inputs) {
  if (inputs.dtype() != DType::kFloat32) {
    return InvalidArgumentError("Trainer: inputs must be float32, got " +
                                std::string(DTypeName(inputs.dtype())));
  }
  if (inputs.shape().size() != input_shape_.size()) {
    return InvalidArgumentError("Trainer: inputs have shape " + ShapeToString(inputs.shape()) +
                                " but input '" + input_name_ + "' is " +
                                ShapeToString(input_shape_));
  }
  if (inputs.dim(0) < 1) return InvalidArgumentError("Trainer: the batch is empty");
  for (size_t d = 1; d < input_shape_.size(); ++d) {
    if (inputs.shape()[d] != input_shape_[d]) {
      return InvalidArgumentError("Trainer: inputs have shape " + ShapeToString(inputs.shape()) +
                                  " but input '" + input_name_ + "' is " +
                                  ShapeToString(input_shape_) + " (dim " + std::to_string(d) +
                                  " differs)");
    }
  }
  auto it = plans_.find(inputs.shape());
  if (it == plans_.end()) {
    HML_ASSIGN_OR_RETURN(std::unique_ptr<Plan> plan, BuildPlan(inputs.shape()));
    it = plans_.emplace(inputs.shape(), std::move(plan)).first;
  }
  return it->second.get();
}

// ---- Forward.

Status Trainer::Forward(Plan& plan, const Tensor& inputs) {
  plan.slot(plan.input).data = const_cast<float*>(inputs.data<float>());
  if (plan.frozen != nullptr) {
    HML_RETURN_IF_ERROR(plan.frozen->Run(std::span<const Tensor>(&inputs, 1), plan.frozen_outputs));
  }
  for (Plan::Op& op : plan.ops) {
    const Plan::Slot& xs = plan.slot(op.x);
    Plan::Slot& ys = plan.slot(op.y);
    const float* x = xs.data;
    float* y = ys.data;
    switch (op.kind) {
      case OpKind::kConv: {
        const Window2& g = op.window;
        const int64_t mg = op.out_channels / op.group;
        const int64_t ckg = g.channels * g.taps();
        const int64_t p = g.out_plane();
        const float* w = plan.slot(op.w).data;
        const float* bias = op.b == kNoValue ? nullptr : plan.slot(op.b).data;
        for (int64_t n = 0; n < op.batch; ++n) {
          for (int64_t gi = 0; gi < op.group; ++gi) {
            const float* xg = x + (n * op.in_channels + gi * g.channels) * g.in_plane();
            const float* col = xg;
            if (!g.is_pointwise()) {
              train_internal::Im2Col(xg, g, plan.col.data());
              col = plan.col.data();
            }
            float* yg = y + (n * op.out_channels + gi * mg) * p;
            Gemm(false, false, mg, p, ckg, 1.0f, w + gi * mg * ckg, ckg, col, p, 0.0f, yg, p,
                 plan.gemm);
            if (bias != nullptr) {
              for (int64_t m = 0; m < mg; ++m) {
                const float bm = bias[gi * mg + m];
                float* row = yg + m * p;
                for (int64_t i = 0; i < p; ++i) row[i] += bm;
              }
            }
          }
        }
        break;
      }
      case OpKind::kGemm: {
        float beta = 0.0f;
        if (op.b != kNoValue) {
          BroadcastInto(op.w_bc, plan.slot(op.b).data, op.beta, false, y);
          beta = 1.0f;
        }
        Gemm(op.trans_a, op.trans_b, op.m, op.n, op.k, op.alpha, x, op.lda, plan.slot(op.w).data,
             op.ldb, beta, y, op.n, plan.gemm);
        break;
      }
      case OpKind::kAdd:
        BroadcastInto(op.x_bc, x, 1.0f, false, y);
        BroadcastInto(op.w_bc, plan.slot(op.w).data, 1.0f, true, y);
        break;
      case OpKind::kRelu:
        ReluForward(x, y, ys.size);
        break;
      case OpKind::kClip:
        for (int64_t i = 0; i < ys.size; ++i) y[i] = std::min(std::max(x[i], op.lo), op.hi);
        break;
      case OpKind::kMaxPool:
        train_internal::MaxPoolForward(x, op.window, y, op.argmax.data());
        break;
      case OpKind::kAveragePool:
        train_internal::AveragePoolForward(x, op.window, op.count_include_pad, y);
        break;
      case OpKind::kGlobalAveragePool: {
        const int64_t plane = xs.size / op.batch;
        for (int64_t c = 0; c < op.batch; ++c) {
          y[c] = SumOf(x + c * plane, plane) / static_cast<float>(plane);
        }
        break;
      }
      case OpKind::kCopy:
        std::copy(x, x + ys.size, y);
        break;
    }
  }
  return Status::Ok();
}

// ---- Backward.

void Trainer::Backward(Plan& plan) {
  std::fill(gradients_.begin(), gradients_.end(), 0.0f);
  for (Plan::Slot& s : plan.slots) {
    if (!s.grad_buffer.empty() && s.grad != plan.slot(plan.logits).grad) {
      std::fill(s.grad_buffer.begin(), s.grad_buffer.end(), 0.0f);
    }
  }
  for (auto it = plan.ops.rbegin(); it != plan.ops.rend(); ++it) {
    Plan::Op& op = *it;
    const Plan::Slot& ys = plan.slot(op.y);
    if (ys.grad == nullptr) continue;
    const float* dy = ys.grad;
    const Plan::Slot& xs = plan.slot(op.x);
    float* dx = xs.grad;  // null when no gradient is needed
    switch (op.kind) {
      case OpKind::kConv: {
        const Window2& g = op.window;
        const int64_t mg = op.out_channels / op.group;
        const int64_t ckg = g.channels * g.taps();
        const int64_t p = g.out_plane();
        const float* w = plan.slot(op.w).data;
        float* dw = plan.slot(op.w).grad;
        float* db = op.b == kNoValue ? nullptr : plan.slot(op.b).grad;
        for (int64_t n = 0; n < op.batch; ++n) {
          for (int64_t gi = 0; gi < op.group; ++gi) {
            const float* dyg = dy + (n * op.out_channels + gi * mg) * p;
            const int64_t x_offset = (n * op.in_channels + gi * g.channels) * g.in_plane();
            if (dw != nullptr) {
              const float* col = xs.data + x_offset;
              if (!g.is_pointwise()) {
                train_internal::Im2Col(col, g, plan.col.data());
                col = plan.col.data();
              }
              Gemm(false, true, mg, ckg, p, 1.0f, dyg, p, col, p, 1.0f, dw + gi * mg * ckg, ckg,
                   plan.gemm);
            }
            if (db != nullptr) {
              for (int64_t m = 0; m < mg; ++m) db[gi * mg + m] += SumOf(dyg + m * p, p);
            }
            if (dx != nullptr) {
              if (g.is_pointwise()) {
                Gemm(true, false, ckg, p, mg, 1.0f, w + gi * mg * ckg, ckg, dyg, p, 1.0f,
                     dx + x_offset, p, plan.gemm);
              } else {
                Gemm(true, false, ckg, p, mg, 1.0f, w + gi * mg * ckg, ckg, dyg, p, 0.0f,
                     plan.dcol.data(), p, plan.gemm);
                train_internal::Col2ImAdd(plan.dcol.data(), g, dx + x_offset);
              }
            }
          }
        }
        break;
      }
      case OpKind::kGemm: {
        const Plan::Slot& bs = plan.slot(op.w);
        if (dx != nullptr) {
          if (!op.trans_a) {
            Gemm(false, !op.trans_b, op.m, op.k, op.n, op.alpha, dy, op.n, bs.data, op.ldb, 1.0f,
                 dx, op.k, plan.gemm);
          } else {
            Gemm(op.trans_b, true, op.k, op.m, op.n, op.alpha, bs.data, op.ldb, dy, op.n, 1.0f, dx,
                 op.m, plan.gemm);
          }
        }
        if (bs.grad != nullptr) {
          if (!op.trans_b) {
            Gemm(!op.trans_a, false, op.k, op.n, op.m, op.alpha, xs.data, op.lda, dy, op.n, 1.0f,
                 bs.grad, op.n, plan.gemm);
          } else {
            Gemm(true, op.trans_a, op.n, op.k, op.m, op.alpha, dy, op.n, xs.data, op.lda, 1.0f,
                 bs.grad, op.k, plan.gemm);
          }
        }
        if (plan.needs_grad(op.b)) ReduceInto(op.w_bc, dy, op.beta, plan.slot(op.b).grad);
        break;
      }
      case OpKind::kAdd:
        if (dx != nullptr) ReduceInto(op.x_bc, dy, 1.0f, dx);
        if (plan.needs_grad(op.w)) ReduceInto(op.w_bc, dy, 1.0f, plan.slot(op.w).grad);
        break;
      case OpKind::kRelu:
        if (dx == nullptr) break;
        ReluBackwardAdd(ys.data, dy, dx, ys.size);
        break;
      case OpKind::kClip:
        if (dx == nullptr) break;
        for (int64_t i = 0; i < ys.size; ++i) {
          if (xs.data[i] >= op.lo && xs.data[i] <= op.hi) dx[i] += dy[i];
        }
        break;
      case OpKind::kMaxPool:
        if (dx != nullptr) train_internal::MaxPoolBackwardAdd(dy, op.argmax.data(), op.window, dx);
        break;
      case OpKind::kAveragePool:
        if (dx != nullptr) {
          train_internal::AveragePoolBackwardAdd(dy, op.window, op.count_include_pad, dx);
        }
        break;
      case OpKind::kGlobalAveragePool: {
        if (dx == nullptr) break;
        const int64_t plane = xs.size / op.batch;
        for (int64_t c = 0; c < op.batch; ++c) {
          const float share = dy[c] / static_cast<float>(plane);
          for (int64_t i = 0; i < plane; ++i) dx[c * plane + i] += share;
        }
        break;
      }
      case OpKind::kCopy:
        if (dx != nullptr) AddInto(dy, dx, ys.size);
        break;
    }
  }
}

// ---- Loss, step and the rest of the API.

Result<StepResult> Trainer::Compute(const Tensor& inputs, std::span<const int64_t> labels) {
  HML_ASSIGN_OR_RETURN(Plan * plan, PlanFor(inputs));
  const int64_t batch = inputs.dim(0);
  if (static_cast<int64_t>(labels.size()) != batch) {
    return InvalidArgumentError("Trainer: " + std::to_string(labels.size()) +
                                " labels for a batch of " + std::to_string(batch));
  }
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] < 0 || labels[i] >= num_classes_) {
      return InvalidArgumentError("Trainer: label " + std::to_string(labels[i]) + " of example " +
                                  std::to_string(i) + " is outside [0, " +
                                  std::to_string(num_classes_) + ")");
    }
  }
  HML_RETURN_IF_ERROR(Forward(*plan, inputs));

  // Softmax cross-entropy through log-sum-exp; d(mean loss)/d(logits) = (softmax - onehot) / N.
  Plan::Slot& ls = plan->slot(plan->logits);
  StepResult result;
  result.examples = batch;
  double total = 0.0;
  const double inv_batch = 1.0 / static_cast<double>(batch);
  for (int64_t i = 0; i < batch; ++i) {
    const float* row = ls.data + i * num_classes_;
    float* grow = ls.grad + i * num_classes_;
    int64_t best = 0;
    for (int64_t c = 1; c < num_classes_; ++c) {
      if (row[c] > row[best]) best = c;
    }
    const double max = row[best];
    double sum = 0.0;
    for (int64_t c = 0; c < num_classes_; ++c) sum += std::exp(static_cast<double>(row[c]) - max);
    const double lse = max + std::log(sum);
    const int64_t label = labels[static_cast<size_t>(i)];
    total += lse - row[label];
    if (best == label) ++result.correct;
    for (int64_t c = 0; c < num_classes_; ++c) {
      const double prob = std::exp(static_cast<double>(row[c]) - lse);
      grow[c] = static_cast<float>((prob - (c == label ? 1.0 : 0.0)) * inv_batch);
    }
  }
  result.loss = total * inv_batch;
  Backward(*plan);
  if (options_.prox_mu > 0.0f) {
    double prox = 0.0;
    for (size_t i = 0; i < weights_.size(); ++i) {
      const float d = weights_[i] - anchor_[i];
      prox += static_cast<double>(d) * d;
      gradients_[i] += options_.prox_mu * d;
    }
    result.loss += 0.5 * options_.prox_mu * prox;
  }
  return result;
}

Result<StepResult> Trainer::Step(const Tensor& inputs, std::span<const int64_t> labels) {
  HML_ASSIGN_OR_RETURN(StepResult result, Compute(inputs, labels));
  const float lr = options_.learning_rate;
  const float mu = options_.momentum;
  const float decay = options_.weight_decay;
  for (size_t i = 0; i < weights_.size(); ++i) {
    float g = gradients_[i] + decay * weights_[i];
    if (mu > 0.0f) {
      momentum_[i] = mu * momentum_[i] + g;
      g = momentum_[i];
    }
    weights_[i] -= lr * g;
  }
  return result;
}

Result<double> Trainer::LossAndGradients(const Tensor& inputs, std::span<const int64_t> labels,
                                         std::vector<float>* gradients) {
  HML_ASSIGN_OR_RETURN(StepResult result, Compute(inputs, labels));
  if (gradients != nullptr) *gradients = gradients_;
  return result.loss;
}

Result<Tensor> Trainer::Logits(const Tensor& inputs) {
  HML_ASSIGN_OR_RETURN(Plan * plan, PlanFor(inputs));
  HML_RETURN_IF_ERROR(Forward(*plan, inputs));
  const Plan::Slot& ls = plan->slot(plan->logits);
  return Tensor::FromVector<float>(ls.shape, std::span<const float>(ls.data, ls.size));
}

Status Trainer::SetParameters(std::span<const float> flat) {
  if (flat.size() != weights_.size()) {
    return InvalidArgumentError("Trainer::SetParameters: " + std::to_string(flat.size()) +
                                " values for " + std::to_string(weights_.size()) + " parameters");
  }
  std::copy(flat.begin(), flat.end(), weights_.begin());
  return Status::Ok();
}

Status Trainer::SetProxAnchor(std::span<const float> flat) {
  if (flat.size() != anchor_.size()) {
    return InvalidArgumentError("Trainer::SetProxAnchor: " + std::to_string(flat.size()) +
                                " values for " + std::to_string(anchor_.size()) + " parameters");
  }
  std::copy(flat.begin(), flat.end(), anchor_.begin());
  return Status::Ok();
}

void Trainer::ResetOptimizer() { std::fill(momentum_.begin(), momentum_.end(), 0.0f); }

Status Trainer::SetLearningRate(float lr) {
  if (!(lr > 0.0f) || !std::isfinite(lr)) {
    return InvalidArgumentError("Trainer::SetLearningRate: must be > 0 and finite, got " +
                                std::to_string(lr));
  }
  options_.learning_rate = lr;
  return Status::Ok();
}

Status Trainer::SetMomentum(float momentum) {
  if (!(momentum >= 0.0f && momentum < 1.0f)) {
    return InvalidArgumentError("Trainer::SetMomentum: must be in [0, 1), got " +
                                std::to_string(momentum));
  }
  options_.momentum = momentum;
  return Status::Ok();
}

Status Trainer::SetProxMu(float mu) {
  if (!(mu >= 0.0f) || !std::isfinite(mu)) {
    return InvalidArgumentError("Trainer::SetProxMu: must be >= 0 and finite, got " +
                                std::to_string(mu));
  }
  options_.prox_mu = mu;
  return Status::Ok();
}

int64_t Trainer::EstimateMemoryBytes(int64_t batch_size) const {
  if (batch_size < 1) return 0;
  Shape shape = input_shape_;
  if (shape.empty()) return 0;
  shape[0] = batch_size;
  Result<std::unique_ptr<Plan>> plan = BuildPlan(shape);
  if (!plan.ok()) return 0;
  int64_t floats = 4 * static_cast<int64_t>(weights_.size());  // weights, grads, momentum, anchor
  for (const Plan::Slot& s : (*plan)->slots) {
    floats += static_cast<int64_t>(s.data_buffer.size() + s.grad_buffer.size());
  }
  floats += static_cast<int64_t>((*plan)->col.size() + (*plan)->dcol.size());
  return floats * static_cast<int64_t>(sizeof(float));
}

Result<Graph> Trainer::ExportGraph() const {
  Graph g = graph_;
  for (size_t p = 0; p < parameters_.size(); ++p) {
    const ValueId v = g.FindValue(parameters_[p].name);
    if (v == kNoValue)
      return InternalError("Trainer: parameter '" + parameters_[p].name + "' lost");
    const int64_t size = p + 1 < offsets_.size()
                             ? offsets_[p + 1] - offsets_[p]
                             : static_cast<int64_t>(weights_.size()) - offsets_[p];
    HML_ASSIGN_OR_RETURN(
        Tensor t, Tensor::FromVector<float>(parameters_[p].shape,
                                            std::span<const float>(weights_.data() + offsets_[p],
                                                                   static_cast<size_t>(size))));
    g.value(v).constant = std::make_shared<const Tensor>(std::move(t));
  }
  return g;
}

}  // namespace hml::runtime

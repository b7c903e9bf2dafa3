// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/runtime/backends/xnnpack/node_specs.h"

#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <string>

#include "src/runtime/backends/xnnpack/layout.h"
#include "src/runtime/ops/tensor_params.h"

namespace hml::runtime::xnnpack {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
// XNN_MAX_TENSOR_DIMS of the snapshot.
constexpr size_t kMaxXnnRank = 6;

bool DefaultDomain(const Node& node) { return node.domain.empty() || node.domain == "ai.onnx"; }

int64_t NumElements(const Shape& shape) {
  return std::accumulate(shape.begin(), shape.end(), int64_t{1}, std::multiplies<int64_t>());
}

// A value XNNPACK can hold as a tensor: static, non-empty, rank 1..6.
bool GoodShape(const Value& v) {
  if (!v.shape_known || !IsStaticShape(v.shape)) return false;
  if (v.shape.empty() || v.shape.size() > kMaxXnnRank) return false;
  return NumElements(v.shape) > 0;
}

// A non-constant value of `dtype` with a good shape.
bool Activation(const Graph& graph, ValueId id, DType dtype) {
  if (id == kNoValue) return false;
  const Value& v = graph.value(id);
  return !v.is_constant() && v.dtype == dtype && GoodShape(v);
}

const Tensor* ConstantInput(const Graph& graph, const Node& node, size_t i) {
  const ValueId id = node.input(i);
  if (id == kNoValue) return nullptr;
  return graph.value(id).constant.get();
}

std::optional<float> ScalarFloat(const Tensor* t) {
  if (t == nullptr || t->dtype() != DType::kFloat32 || t->num_elements() != 1) return std::nullopt;
  return t->data<float>()[0];
}

// Integer value of element `i` of an integer tensor.
std::optional<int64_t> IntAt(const Tensor& t, int64_t i) {
  switch (t.dtype()) {
    case DType::kInt8:
      return t.data<int8_t>()[i];
    case DType::kUInt8:
      return t.data<uint8_t>()[i];
    case DType::kInt32:
      return t.data<int32_t>()[i];
    case DType::kInt64:
      return t.data<int64_t>()[i];
    default:
      return std::nullopt;
  }
}

bool ValidScale(float s) { return std::isnormal(s) && s > 0.0f; }

// Per-tensor parameters of an int8 activation from (scale, zero point) inputs `si`, `zi`. A
// missing zero point is 0.
std::optional<QuantParams> Int8Params(const Graph& graph, const Node& node, size_t si, size_t zi) {
  const std::optional<float> scale = ScalarFloat(ConstantInput(graph, node, si));
  if (!scale || !ValidScale(*scale)) return std::nullopt;
  QuantParams p;
  p.scale = *scale;
  if (node.input(zi) != kNoValue) {
    const Tensor* zp = ConstantInput(graph, node, zi);
    if (zp == nullptr || zp->dtype() != DType::kInt8 || zp->num_elements() != 1) {
      return std::nullopt;
    }
    p.zero_point = static_cast<int32_t>(zp->data<int8_t>()[0]);
  }
  return p;
}

int NormalizeAxis(int64_t axis, size_t rank) {
  return static_cast<int>(axis < 0 ? axis + static_cast<int64_t>(rank) : axis);
}

// Builds a ConstOperand from raw data plus scale / zero-point tensors along `axis`.
std::optional<ConstOperand> QuantizedConstant(const Tensor* raw, const Tensor* scale,
                                              const Tensor* zero_point, int axis) {
  if (raw == nullptr || scale == nullptr || scale->dtype() != DType::kFloat32) return std::nullopt;
  if (raw->dtype() != DType::kInt8 && raw->dtype() != DType::kUInt8 &&
      raw->dtype() != DType::kInt32) {
    return std::nullopt;
  }
  ConstOperand op;
  op.raw = raw;
  const int64_t count = scale->num_elements();
  if (count != 1) {
    if (scale->rank() != 1 || axis < 0 || axis >= raw->rank() || raw->dim(axis) != count) {
      return std::nullopt;
    }
    op.axis = axis;
  }
  for (int64_t i = 0; i < count; ++i) {
    const float s = scale->data<float>()[i];
    if (!std::isfinite(s)) return std::nullopt;
    op.scales.push_back(s);
  }
  op.zero_points.assign(static_cast<size_t>(count), 0);
  if (zero_point != nullptr) {
    if (zero_point->num_elements() != count) return std::nullopt;
    for (int64_t i = 0; i < count; ++i) {
      const std::optional<int64_t> z = IntAt(*zero_point, i);
      if (!z) return std::nullopt;
      op.zero_points[static_cast<size_t>(i)] = static_cast<int32_t>(*z);
    }
  }
  return op;
}

const Value& Val(const Graph& graph, ValueId id) { return graph.value(id); }

// The padded 4-D shape of an operand of rank <= 4.
Shape Pad4(const Shape& s) {
  Shape out(4 - s.size(), 1);
  out.insert(out.end(), s.begin(), s.end());
  return out;
}

// Node outputs beyond the first must be absent.
bool SingleOutput(const Node& node) {
  if (node.outputs.empty() || node.outputs[0] == kNoValue) return false;
  for (size_t i = 1; i < node.outputs.size(); ++i) {
    if (node.outputs[i] != kNoValue) return false;
  }
  return true;
}

}  // namespace

OpKind KindOf(const Node& node) {
  if (!DefaultDomain(node)) return OpKind::kUnsupported;
  static const std::map<std::string, OpKind, std::less<>> kKinds = {
      {"Conv", OpKind::kConv},
      {"ConvTranspose", OpKind::kConvTranspose},
      {"QLinearConv", OpKind::kQLinearConv},
      {"Gemm", OpKind::kGemm},
      {"MatMul", OpKind::kMatMul},
      {"QLinearMatMul", OpKind::kQLinearMatMul},
      {"Add", OpKind::kAdd},
      {"Sub", OpKind::kSub},
      {"Mul", OpKind::kMul},
      {"Div", OpKind::kDiv},
      {"Max", OpKind::kMax},
      {"Min", OpKind::kMin},
      {"Relu", OpKind::kRelu},
      {"Clip", OpKind::kClip},
      {"LeakyRelu", OpKind::kLeakyRelu},
      {"Sigmoid", OpKind::kSigmoid},
      {"HardSwish", OpKind::kHardSwish},
      {"Elu", OpKind::kElu},
      {"Abs", OpKind::kAbs},
      {"Neg", OpKind::kNeg},
      {"Sqrt", OpKind::kSqrt},
      {"PRelu", OpKind::kPRelu},
      {"Softmax", OpKind::kSoftmax},
      {"MaxPool", OpKind::kMaxPool},
      {"AveragePool", OpKind::kAveragePool},
      {"GlobalAveragePool", OpKind::kGlobalAveragePool},
      {"GlobalMaxPool", OpKind::kGlobalMaxPool},
      {"BatchNormalization", OpKind::kBatchNorm},
      {"Reshape", OpKind::kReshape},
      {"Flatten", OpKind::kReshape},
      {"Squeeze", OpKind::kReshape},
      {"Unsqueeze", OpKind::kReshape},
      {"Identity", OpKind::kReshape},
      {"Pad", OpKind::kPad},
      {"Resize", OpKind::kResize},
      {"Upsample", OpKind::kResize},
      {"QuantizeLinear", OpKind::kQuantize},
      {"DequantizeLinear", OpKind::kDequantize},
  };
  auto it = kKinds.find(node.op_type);
  return it == kKinds.end() ? OpKind::kUnsupported : it->second;
}

bool IsUnaryKind(OpKind kind) {
  switch (kind) {
    case OpKind::kRelu:
    case OpKind::kClip:
    case OpKind::kLeakyRelu:
    case OpKind::kSigmoid:
    case OpKind::kHardSwish:
    case OpKind::kElu:
    case OpKind::kAbs:
    case OpKind::kNeg:
    case OpKind::kSqrt:
      return true;
    default:
      return false;
  }
}

std::vector<float> ConstOperand::ToFloat() const {
  const int64_t count = raw->num_elements();
  std::vector<float> out(static_cast<size_t>(count));
  if (!quantized()) {
    const float* d = raw->data<float>();
    out.assign(d, d + count);
    return out;
  }
  int64_t inner = 1;
  int64_t channels = 1;
  if (axis >= 0) {
    channels = raw->dim(axis);
    for (int i = axis + 1; i < raw->rank(); ++i) inner *= raw->dim(i);
  }
  for (int64_t i = 0; i < count; ++i) {
    const size_t c = axis >= 0 ? static_cast<size_t>((i / inner) % channels) : 0;
    const int64_t q = *IntAt(*raw, i);
    out[static_cast<size_t>(i)] = static_cast<float>(q - zero_points[c]) * scales[c];
  }
  return out;
}

bool ConstOperand::SymmetricInt8(int channel_axis) const {
  if (!quantized() || raw->dtype() != DType::kInt8) return false;
  if (scales.size() > 1 && axis != channel_axis) return false;
  for (int32_t z : zero_points) {
    if (z != 0) return false;
  }
  for (float s : scales) {
    if (!ValidScale(s)) return false;
  }
  return true;
}

std::optional<ConstOperand> GetConstOperand(const Graph& graph, const std::vector<int>& producers,
                                            ValueId v) {
  if (v == kNoValue) return std::nullopt;
  const Value& value = graph.value(v);
  if (value.is_constant()) {
    if (value.constant->dtype() != DType::kFloat32 || value.constant->num_elements() == 0) {
      return std::nullopt;
    }
    ConstOperand op;
    op.raw = value.constant.get();
    return op;
  }
  const int p = producers[static_cast<size_t>(v)];
  if (p < 0) return std::nullopt;
  const Node& node = graph.nodes[static_cast<size_t>(p)];
  if (KindOf(node) != OpKind::kDequantize || node.outputs[0] != v) return std::nullopt;
  if (node.attrs.GetInt("block_size", 0) != 0) return std::nullopt;
  const Tensor* raw = ConstantInput(graph, node, 0);
  if (raw == nullptr || raw->num_elements() == 0) return std::nullopt;
  const Tensor* zp = ConstantInput(graph, node, 2);
  if (node.input(2) != kNoValue && (zp == nullptr || zp->dtype() != raw->dtype())) {
    return std::nullopt;
  }
  const int axis = NormalizeAxis(node.attrs.GetInt("axis", 1), static_cast<size_t>(raw->rank()));
  std::optional<ConstOperand> op = QuantizedConstant(raw, ConstantInput(graph, node, 1), zp, axis);
  if (!op || value.dtype != DType::kFloat32) return std::nullopt;
  return op;
}

GraphAnalysis::GraphAnalysis(const Graph& graph) : graph_(graph) {
  const size_t num_values = graph.values.size();
  producers_ = graph.Producers();
  use_counts_ = graph.UseCounts();
  readers_.resize(num_values);
  graph_output_.assign(num_values, false);
  for (ValueId out : graph.outputs) graph_output_[static_cast<size_t>(out)] = true;
  for (size_t n = 0; n < graph.nodes.size(); ++n) {
    for (ValueId in : graph.nodes[n].inputs) {
      if (in == kNoValue) continue;
      auto& r = readers_[static_cast<size_t>(in)];
      if (r.empty() || r.back() != static_cast<int>(n)) r.push_back(static_cast<int>(n));
    }
  }
  qparams_.resize(num_values);
  specs_.resize(graph.nodes.size());
  ResolveQuantParams();
}

void GraphAnalysis::ResolveQuantParams() {
  const size_t num_values = graph_.values.size();
  std::vector<size_t> parent(num_values);
  std::iota(parent.begin(), parent.end(), size_t{0});
  auto find = [&](size_t v) {
    while (parent[v] != v) v = parent[v] = parent[parent[v]];
    return v;
  };
  // Each class collects the parameters every producer/reader asks for; nullopt = unusable.
  std::vector<std::vector<std::optional<QuantParams>>> asks(num_values);
  auto is_int8_activation = [&](ValueId id) {
    return id != kNoValue && !graph_.value(id).is_constant() &&
           graph_.value(id).dtype == DType::kInt8;
  };
  auto ask = [&](ValueId id, std::optional<QuantParams> p) {
    if (is_int8_activation(id)) asks[static_cast<size_t>(id)].push_back(p);
  };
  for (const Node& node : graph_.nodes) {
    switch (KindOf(node)) {
      case OpKind::kQuantize:
        if (!node.outputs.empty()) ask(node.outputs[0], Int8Params(graph_, node, 1, 2));
        break;
      case OpKind::kDequantize:
        ask(node.input(0), Int8Params(graph_, node, 1, 2));
        break;
      case OpKind::kQLinearConv:
      case OpKind::kQLinearMatMul:
        ask(node.input(0), Int8Params(graph_, node, 1, 2));
        if (!node.outputs.empty()) ask(node.outputs[0], Int8Params(graph_, node, 6, 7));
        break;
      case OpKind::kReshape:
      case OpKind::kMaxPool:
        if (!node.outputs.empty() && is_int8_activation(node.input(0)) &&
            is_int8_activation(node.outputs[0])) {
          parent[find(static_cast<size_t>(node.outputs[0]))] =
              find(static_cast<size_t>(node.input(0)));
        }
        break;
      default:
        break;
    }
  }
  std::vector<std::vector<std::optional<QuantParams>>> by_class(num_values);
  for (size_t v = 0; v < num_values; ++v) {
    auto& c = by_class[find(v)];
    c.insert(c.end(), asks[v].begin(), asks[v].end());
  }
  for (size_t v = 0; v < num_values; ++v) {
    const auto& c = by_class[find(v)];
    if (c.empty() || !c[0]) continue;
    bool agree = true;
    for (const auto& p : c) agree = agree && p && *p == *c[0];
    if (agree) qparams_[v] = c[0];
  }
}

std::optional<QuantParams> GraphAnalysis::DequantizedFrom(ValueId v, ValueId* source) const {
  const int p = producer(v);
  if (p < 0) return std::nullopt;
  const auto* spec = std::get_if<DequantizeSpec>(&Spec(p));
  if (spec == nullptr || spec->constant) return std::nullopt;
  if (source != nullptr) *source = spec->x;
  return spec->params;
}

const NodeSpec& GraphAnalysis::Spec(int n) const {
  auto& slot = specs_[static_cast<size_t>(n)];
  if (!slot) slot = Match(n);
  return *slot;
}

bool GraphAnalysis::OnlyFullyConnectedReaders(ValueId v) const {
  for (int r : readers(v)) {
    const Node& node = graph_.nodes[static_cast<size_t>(r)];
    const OpKind kind = KindOf(node);
    if (kind == OpKind::kGemm || kind == OpKind::kMatMul || kind == OpKind::kQLinearMatMul) {
      for (size_t i = 1; i < node.inputs.size(); ++i) {
        if (node.inputs[i] == v) return false;
      }
      if (node.input(0) != v || !std::holds_alternative<FcSpec>(Spec(r))) return false;
      continue;
    }
    const bool passes =
        IsUnaryKind(kind) || kind == OpKind::kQuantize ||
        (kind == OpKind::kDequantize && std::holds_alternative<DequantizeSpec>(Spec(r)) &&
         !std::get<DequantizeSpec>(Spec(r)).constant);
    if (!passes || !Claimed(r) || node.input(0) != v) return false;
    if (!OnlyFullyConnectedReaders(node.outputs[0])) return false;
  }
  return true;
}

namespace {

// Shared matching context.
struct Ctx {
  const GraphAnalysis& a;
  const Graph& g;
  const Node& node;
};

// A non-constant value of `dtype` with a good shape that is not itself a constant operand (the
// output of a DequantizeLinear over constants).
bool Activation(const Ctx& c, ValueId id, DType dtype) {
  if (!Activation(c.g, id, dtype)) return false;
  const int p = c.a.producer(id);
  if (p < 0) return true;
  const Node& producer = c.g.nodes[static_cast<size_t>(p)];
  return !(KindOf(producer) == OpKind::kDequantize && producer.input(0) != kNoValue &&
           c.g.value(producer.input(0)).is_constant());
}

std::optional<ConstOperand> ConstIn(const Ctx& c, size_t i) {
  return GetConstOperand(c.g, c.a.producers(), c.node.input(i));
}

// The int8 activation input `i` whose resolved parameters equal the node's own (scale input
// `si`, zero point `zi`).
bool QuantActivation(const Ctx& c, size_t i, size_t si, size_t zi, QuantParams* params) {
  if (!Activation(c, c.node.input(i), DType::kInt8)) return false;
  const std::optional<QuantParams> own = Int8Params(c.g, c.node, si, zi);
  const std::optional<QuantParams>& resolved = c.a.qparams(c.node.input(i));
  if (!own || !resolved || !(*own == *resolved)) return false;
  *params = *own;
  return true;
}

bool QuantOutput(const Ctx& c, size_t si, size_t zi, QuantParams* params) {
  if (!SingleOutput(c.node) || !Activation(c, c.node.outputs[0], DType::kInt8)) return false;
  const std::optional<QuantParams> own = Int8Params(c.g, c.node, si, zi);
  const std::optional<QuantParams>& resolved = c.a.qparams(c.node.outputs[0]);
  if (!own || !resolved || !(*own == *resolved)) return false;
  *params = *own;
  return true;
}

bool FloatOutput(const Ctx& c) {
  return SingleOutput(c.node) && Activation(c, c.node.outputs[0], DType::kFloat32);
}

NodeSpec MatchConv(const Ctx& c, OpKind kind) {
  ConvSpec s;
  s.kind = kind;
  const bool qlinear = kind == OpKind::kQLinearConv;
  const size_t w_index = qlinear ? 3 : 1;
  const size_t b_index = qlinear ? 8 : 2;
  s.x = c.node.input(0);
  if (qlinear) {
    if (!QuantActivation(c, 0, 1, 2, &s.x_params) || !QuantOutput(c, 6, 7, &s.y_params)) return {};
    const Tensor* w = ConstantInput(c.g, c.node, w_index);
    if (w == nullptr || w->dtype() != DType::kInt8 || w->rank() != 4) return {};
    std::optional<ConstOperand> weights =
        QuantizedConstant(w, ConstantInput(c.g, c.node, 4),
                          c.node.input(5) == kNoValue ? nullptr : ConstantInput(c.g, c.node, 5), 0);
    if (!weights || (c.node.input(5) != kNoValue && ConstantInput(c.g, c.node, 5) == nullptr)) {
      return {};
    }
    s.weights = *weights;
  } else {
    if (!Activation(c, s.x, DType::kFloat32) || !FloatOutput(c)) return {};
    std::optional<ConstOperand> weights = ConstIn(c, w_index);
    if (!weights || weights->shape().size() != 4) return {};
    s.weights = *weights;
  }
  s.y = c.node.outputs[0];
  const Shape& xs = Val(c.g, s.x).shape;
  const Shape& ws = s.weights.shape();
  if (xs.size() != 4) return {};
  Result<WindowParams> win = ResolveWindow(
      c.node, kind == OpKind::kConvTranspose ? WindowKind::kConvTranspose : WindowKind::kConv, xs,
      {ws[2], ws[3]});
  if (!win.ok() || win->spatial_rank != 2) return {};
  s.win = *win;
  for (int i = 0; i < 2; ++i) {
    if (s.win.pads_begin[i] < 0 || s.win.pads_end[i] < 0) return {};
  }
  s.n = xs[0];
  s.c_in = xs[1];
  s.in_h = xs[2];
  s.in_w = xs[3];
  s.groups = s.win.group;
  if (s.c_in % s.groups != 0) return {};
  if (kind == OpKind::kConvTranspose) {
    if (ws[0] != s.c_in) return {};
    s.c_out = ws[1] * s.groups;
    for (int i = 0; i < 2; ++i) {
      if (s.win.output_padding[i] < 0 || s.win.output_padding[i] >= s.win.strides[i]) return {};
    }
  } else {
    s.c_out = ws[0];
    if (ws[1] != s.c_in / s.groups || s.c_out % s.groups != 0) return {};
    s.depthwise = s.groups == s.c_in && s.c_in > 1;
  }
  s.out_h = s.win.output_spatial[0];
  s.out_w = s.win.output_spatial[1];
  const Shape expected = {s.n, s.c_out, s.out_h, s.out_w};
  if (Val(c.g, s.y).shape != expected) return {};
  if (c.node.input(b_index) != kNoValue) {
    if (qlinear) {
      const Tensor* b = ConstantInput(c.g, c.node, b_index);
      if (b == nullptr || b->dtype() != DType::kInt32 || b->num_elements() != s.c_out) return {};
      ConstOperand bias;
      bias.raw = b;
      bias.axis = 0;
      bias.zero_points.assign(static_cast<size_t>(s.c_out), 0);
      for (int64_t o = 0; o < s.c_out; ++o) {
        bias.scales.push_back(s.x_params.scale * s.weights.ScaleOf(o));
      }
      if (s.c_out == 1) bias.axis = -1;
      s.bias = bias;
    } else {
      std::optional<ConstOperand> bias = ConstIn(c, b_index);
      if (!bias || bias->num_elements() != s.c_out) return {};
      s.bias = bias;
    }
  }
  return s;
}

NodeSpec MatchFc(const Ctx& c, OpKind kind) {
  FcSpec s;
  s.kind = kind;
  s.a = c.node.input(0);
  const bool qlinear = kind == OpKind::kQLinearMatMul;
  if (qlinear) {
    if (!QuantActivation(c, 0, 1, 2, &s.a_params) || !QuantOutput(c, 6, 7, &s.y_params)) return {};
  } else if (!Activation(c, s.a, DType::kFloat32) || !FloatOutput(c)) {
    return {};
  }
  s.y = c.node.outputs[0];
  const Shape& as = Val(c.g, s.a).shape;
  if (kind == OpKind::kGemm) {
    if (as.size() != 2 || c.node.attrs.GetInt("transA", 0) != 0) return {};
    s.b_is_nk = c.node.attrs.GetInt("transB", 0) != 0;
    s.alpha = c.node.attrs.GetFloat("alpha", 1.0f);
    s.beta = c.node.attrs.GetFloat("beta", 1.0f);
    if (!std::isfinite(s.alpha) || !std::isfinite(s.beta)) return {};
  } else {
    // Rank 4 activations are NHWC inside a segment; a MatMul over their last dim is not FC.
    if (as.size() < 2 || as.size() == 4) return {};
  }
  if (qlinear) {
    const Tensor* b = ConstantInput(c.g, c.node, 3);
    if (b == nullptr || b->dtype() != DType::kInt8 || b->rank() != 2) return {};
    std::optional<ConstOperand> op =
        QuantizedConstant(b, ConstantInput(c.g, c.node, 4),
                          c.node.input(5) == kNoValue ? nullptr : ConstantInput(c.g, c.node, 5), 1);
    if (!op || (c.node.input(5) != kNoValue && ConstantInput(c.g, c.node, 5) == nullptr)) {
      return {};
    }
    s.b = *op;
  } else {
    std::optional<ConstOperand> op = ConstIn(c, 1);
    if (!op || op->shape().size() != 2) return {};
    s.b = *op;
  }
  const Shape& bs = s.b.shape();
  s.k = s.b_is_nk ? bs[1] : bs[0];
  s.n = s.b_is_nk ? bs[0] : bs[1];
  if (as.back() != s.k) return {};
  Shape expected(as.begin(), as.end() - 1);
  expected.push_back(s.n);
  if (Val(c.g, s.y).shape != expected) return {};
  if (kind == OpKind::kGemm && c.node.input(2) != kNoValue) {
    std::optional<ConstOperand> bias = ConstIn(c, 2);
    if (!bias) return {};
    const Shape& cs = bias->shape();
    const int64_t count = bias->num_elements();
    const bool row =
        (cs.size() == 1 && cs[0] == s.n) || (cs.size() == 2 && cs[0] == 1 && cs[1] == s.n);
    if (!row && count != 1) return {};
    s.bias = bias;
  }
  return s;
}

NodeSpec MatchPool(const Ctx& c, OpKind kind) {
  PoolSpec s;
  s.kind = kind;
  s.x = c.node.input(0);
  const bool int8_ok = kind == OpKind::kMaxPool;
  const bool is_f32 = Activation(c, s.x, DType::kFloat32);
  const bool is_q8 = int8_ok && Activation(c, s.x, DType::kInt8) && c.a.qparams(s.x);
  if (!is_f32 && !is_q8) return {};
  if (!SingleOutput(c.node)) return {};
  s.y = c.node.outputs[0];
  if (!Activation(c, s.y, is_f32 ? DType::kFloat32 : DType::kInt8)) return {};
  const Shape& xs = Val(c.g, s.x).shape;
  const Shape& ys = Val(c.g, s.y).shape;
  if (xs.size() != 4 || ys.size() != 4 || ys[0] != xs[0] || ys[1] != xs[1]) return {};
  if (kind == OpKind::kGlobalAveragePool || kind == OpKind::kGlobalMaxPool) {
    if (ys[2] != 1 || ys[3] != 1) return {};
    s.kh = static_cast<uint32_t>(xs[2]);
    s.kw = static_cast<uint32_t>(xs[3]);
    if (kind == OpKind::kGlobalMaxPool && xs[2] * xs[3] <= 1) return {};
    return s;
  }
  Result<WindowParams> res = ResolveWindow(c.node, WindowKind::kPool, xs, {});
  if (!res.ok() || res->spatial_rank != 2) return {};
  const WindowParams& w = *res;
  if (w.kernel[0] * w.kernel[1] <= 1) return {};
  if (kind == OpKind::kAveragePool) {
    for (int i = 0; i < 2; ++i) {
      if (w.dilations[i] != 1) return {};
    }
  }
  int64_t extra[2] = {0, 0};
  for (int i = 0; i < 2; ++i) {
    const int64_t ek = (w.kernel[i] - 1) * w.dilations[i] + 1;
    if (w.pads_begin[i] >= ek || w.pads_end[i] >= ek) return {};
    const int64_t padded = w.input_spatial[i] + w.pads_begin[i] + w.pads_end[i];
    const int64_t floor_out = (padded - ek) / w.strides[i] + 1;
    if (floor_out != w.output_spatial[i]) {
      // ceil_mode added a window: MaxPool covers it with extra end padding, which max ignores.
      if (kind != OpKind::kMaxPool) return {};
      extra[i] = (w.output_spatial[i] - 1) * w.strides[i] + ek - padded;
      if (extra[i] <= 0) return {};
      if ((padded + extra[i] - ek) / w.strides[i] + 1 != w.output_spatial[i]) return {};
    }
  }
  if (kind == OpKind::kAveragePool && c.node.attrs.GetInt("count_include_pad", 0) != 0) {
    for (int i = 0; i < 2; ++i) {
      if (w.pads_begin[i] != 0 || w.pads_end[i] != 0) return {};
    }
  }
  if (ys[2] != w.output_spatial[0] || ys[3] != w.output_spatial[1]) return {};
  s.pad_top = static_cast<uint32_t>(w.pads_begin[0]);
  s.pad_left = static_cast<uint32_t>(w.pads_begin[1]);
  s.pad_bottom = static_cast<uint32_t>(w.pads_end[0] + extra[0]);
  s.pad_right = static_cast<uint32_t>(w.pads_end[1] + extra[1]);
  s.kh = static_cast<uint32_t>(w.kernel[0]);
  s.kw = static_cast<uint32_t>(w.kernel[1]);
  s.sh = static_cast<uint32_t>(w.strides[0]);
  s.sw = static_cast<uint32_t>(w.strides[1]);
  s.dh = static_cast<uint32_t>(w.dilations[0]);
  s.dw = static_cast<uint32_t>(w.dilations[1]);
  return s;
}

NodeSpec MatchBinary(const Ctx& c, OpKind kind) {
  if (c.node.inputs.size() != 2 || !FloatOutput(c)) return {};
  // Before opset 7, broadcasting follows the legacy broadcast/axis attributes.
  if (c.g.opset < 7 && c.node.attrs.GetInt("broadcast", 0) != 0) return {};
  BinarySpec s;
  s.kind = kind;
  s.a = c.node.input(0);
  s.b = c.node.input(1);
  s.y = c.node.outputs[0];
  const size_t out_rank = Val(c.g, s.y).shape.size();
  if (out_rank > 4) return {};
  int constants = 0;
  for (ValueId v : {s.a, s.b}) {
    if (v == kNoValue) return {};
    if (GetConstOperand(c.g, c.a.producers(), v)) {
      ++constants;
      if (Val(c.g, v).shape.size() > out_rank) return {};
      continue;
    }
    if (!Activation(c, v, DType::kFloat32)) return {};
    const Shape& vs = Val(c.g, v).shape;
    if (out_rank == 4 && vs.size() < 4 && !SameOrderInNhwc(Pad4(vs))) return {};
  }
  if (constants == 2) return {};
  return s;
}

NodeSpec MatchUnary(const Ctx& c, OpKind kind) {
  UnarySpec s;
  s.kind = kind;
  s.x = c.node.input(0);
  if (!Activation(c, s.x, DType::kFloat32) || !FloatOutput(c)) return {};
  s.y = c.node.outputs[0];
  switch (kind) {
    case OpKind::kRelu:
      s.min = 0.0f;
      s.max = kInf;
      break;
    case OpKind::kClip:
      if (c.g.opset < 11) {
        s.min = c.node.attrs.GetFloat("min", -std::numeric_limits<float>::max());
        s.max = c.node.attrs.GetFloat("max", std::numeric_limits<float>::max());
      } else {
        s.min = -kInf;
        s.max = kInf;
        for (size_t i : {size_t{1}, size_t{2}}) {
          if (c.node.input(i) == kNoValue) continue;
          const std::optional<float> bound = ScalarFloat(ConstantInput(c.g, c.node, i));
          if (!bound) return {};
          (i == 1 ? s.min : s.max) = *bound;
        }
      }
      if (std::isnan(s.min) || std::isnan(s.max) || !(s.min < s.max)) return {};
      break;
    case OpKind::kLeakyRelu:
      s.alpha = c.node.attrs.GetFloat("alpha", 0.01f);
      if (!std::isfinite(s.alpha)) return {};
      break;
    case OpKind::kElu:
      s.alpha = c.node.attrs.GetFloat("alpha", 1.0f);
      if (!std::isnormal(s.alpha) || s.alpha <= 0.0f) return {};
      break;
    default:
      break;
  }
  return s;
}

NodeSpec MatchPRelu(const Ctx& c) {
  PReluSpec s;
  if (c.g.opset < 7) return {};  // legacy slope broadcasting
  s.x = c.node.input(0);
  if (!Activation(c, s.x, DType::kFloat32) || !FloatOutput(c)) return {};
  s.y = c.node.outputs[0];
  const Shape& xs = Val(c.g, s.x).shape;
  if (xs.size() != 4) return {};
  std::optional<ConstOperand> slope = ConstIn(c, 1);
  if (!slope || slope->shape().size() > 4) return {};
  const std::vector<float> values = slope->ToFloat();
  if (values.size() == 1) {
    s.slope.assign(static_cast<size_t>(xs[1]), values[0]);
  } else {
    const Shape p = Pad4(slope->shape());
    if (p[0] != 1 || p[1] != xs[1] || p[2] != 1 || p[3] != 1) return {};
    s.slope = values;
  }
  for (float v : s.slope) {
    if (!std::isfinite(v)) return {};
  }
  return s;
}

NodeSpec MatchSoftmax(const Ctx& c) {
  SoftmaxSpec s;
  s.x = c.node.input(0);
  if (!Activation(c, s.x, DType::kFloat32) || !FloatOutput(c)) return {};
  s.y = c.node.outputs[0];
  const size_t rank = Val(c.g, s.x).shape.size();
  const bool v13 = c.g.opset >= 13;
  const int axis = NormalizeAxis(c.node.attrs.GetInt("axis", v13 ? -1 : 1), rank);
  if (axis < 0 || axis >= static_cast<int>(rank)) return {};
  if (rank == 4) {
    if (v13) {
      if (axis != 1) return {};
      s.flatten_from = -1;  // channels are last in NHWC
    } else {
      if (axis > 1) return {};
      s.flatten_from = axis;
    }
    return s;
  }
  if (axis == static_cast<int>(rank) - 1) return s;
  if (v13) return {};
  s.flatten_from = axis;
  return s;
}

NodeSpec MatchBatchNorm(const Ctx& c) {
  BatchNormSpec s;
  s.x = c.node.input(0);
  if (!Activation(c, s.x, DType::kFloat32) || !FloatOutput(c)) return {};
  s.y = c.node.outputs[0];
  const Shape& xs = Val(c.g, s.x).shape;
  if (xs.size() < 2 || xs.size() > 4) return {};
  if (c.node.attrs.GetInt("training_mode", 0) != 0 || c.node.attrs.GetInt("spatial", 1) != 1) {
    return {};
  }
  const int64_t channels = xs[1];
  std::vector<float> params[4];
  for (size_t i = 0; i < 4; ++i) {
    std::optional<ConstOperand> op = ConstIn(c, i + 1);
    if (!op || op->num_elements() != channels) return {};
    params[i] = op->ToFloat();
  }
  const double eps = c.node.attrs.GetFloat("epsilon", 1e-5f);
  for (int64_t ch = 0; ch < channels; ++ch) {
    const size_t i = static_cast<size_t>(ch);
    const double scale = params[0][i] / std::sqrt(static_cast<double>(params[3][i]) + eps);
    const double shift = params[1][i] - params[2][i] * scale;
    if (!std::isfinite(scale) || !std::isfinite(shift)) return {};
    s.scale.push_back(static_cast<float>(scale));
    s.shift.push_back(static_cast<float>(shift));
  }
  return s;
}

NodeSpec MatchReshape(const Ctx& c) {
  ReshapeSpec s;
  s.x = c.node.input(0);
  const bool is_f32 = Activation(c, s.x, DType::kFloat32);
  const bool is_q8 = Activation(c, s.x, DType::kInt8) && c.a.qparams(s.x);
  if ((!is_f32 && !is_q8) || !SingleOutput(c.node)) return {};
  s.y = c.node.outputs[0];
  if (!Activation(c, s.y, is_f32 ? DType::kFloat32 : DType::kInt8)) return {};
  if (c.node.op_type == "Identity") return s;
  const Shape& xs = Val(c.g, s.x).shape;
  const Shape& ys = Val(c.g, s.y).shape;
  if (NumElements(xs) != NumElements(ys)) return {};
  if (xs == ys) return s;
  const bool in4 = xs.size() == 4;
  const bool out4 = ys.size() == 4;
  if (in4 && !SameOrderInNhwc(xs)) {
    const Shape flat = {xs[0], xs[1] * xs[2] * xs[3]};
    if (ys != flat || !c.a.OnlyFullyConnectedReaders(s.y)) return {};
    s.flat_nhwc = true;
    return s;
  }
  if (out4 && !SameOrderInNhwc(ys)) return {};
  return s;
}

// The shared resolvers' view of a node (see ops/tensor_params.h).
OpView ViewOf(const Ctx& c) {
  std::vector<OpInput> inputs(c.node.inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    const ValueId id = c.node.inputs[i];
    if (id == kNoValue) continue;
    const Value& v = c.g.value(id);
    inputs[i].present = true;
    inputs[i].dtype = v.dtype;
    inputs[i].shape = v.shape;
    inputs[i].constant = v.constant.get();
  }
  return OpView(c.node, c.g.opset, std::move(inputs));
}

NodeSpec MatchPad(const Ctx& c) {
  PadSpec s;
  s.x = c.node.input(0);
  if (!Activation(c, s.x, DType::kFloat32) || !FloatOutput(c)) return {};
  s.y = c.node.outputs[0];
  Result<PadParams> p = ResolvePad(ViewOf(c));
  if (!p.ok() || p->mode != PadMode::kConstant || p->output != Val(c.g, s.y).shape) return {};
  for (size_t i = 0; i < p->begin.size(); ++i) {
    if (p->begin[i] < 0 || p->end[i] < 0) return {};
  }
  s.pre = p->begin;
  s.post = p->end;
  s.value = p->attr_value;
  if (p->value_from_input) {
    const std::optional<float> v = ScalarFloat(ConstantInput(c.g, c.node, 2));
    if (!v) return {};
    s.value = *v;
  }
  if (!std::isfinite(s.value)) return {};
  return s;
}

NodeSpec MatchResize(const Ctx& c) {
  ResizeSpec s;
  s.x = c.node.input(0);
  if (!Activation(c, s.x, DType::kFloat32) || !FloatOutput(c)) return {};
  s.y = c.node.outputs[0];
  const Shape& xs = Val(c.g, s.x).shape;
  const Shape& ys = Val(c.g, s.y).shape;
  if (xs.size() != 4 || ys.size() != 4 || xs[0] != ys[0] || xs[1] != ys[1]) return {};
  Result<ResizeParams> p = ResolveResize(ViewOf(c));
  if (!p.ok() || p->mode != ResizeMode::kLinear || p->output != ys) return {};
  if (p->scales[0] != 1.0 || p->scales[1] != 1.0) return {};
  s.out_h = ys[2];
  s.out_w = ys[3];
  switch (p->coordinate_mode) {
    case ResizeCoordinateMode::kHalfPixel:
      break;
    case ResizeCoordinateMode::kPytorchHalfPixel:
      if (s.out_h <= 1 || s.out_w <= 1) return {};
      break;
    case ResizeCoordinateMode::kAlignCorners:
      s.align_corners = true;
      break;
    case ResizeCoordinateMode::kAsymmetric:
      s.asymmetric = true;
      break;
    default:
      return {};
  }
  // XNNPACK derives the coordinate map from the sizes; the reference from the scales (and, for
  // align_corners, the unrounded resized length). They must describe the same map.
  for (size_t i = 2; i < 4; ++i) {
    const double out = static_cast<double>(ys[i]);
    if (std::fabs(p->scales[i] * static_cast<double>(xs[i]) - out) > 1e-6 * out) return {};
    if (std::fabs(p->resized_lengths[i] - out) > 1e-6 * out) return {};
  }
  return s;
}

NodeSpec MatchQuantize(const Ctx& c) {
  QuantizeSpec s;
  s.x = c.node.input(0);
  if (!Activation(c, s.x, DType::kFloat32)) return {};
  if (c.node.input(2) == kNoValue) return {};  // uint8 output
  if (!QuantOutput(c, 1, 2, &s.params)) return {};
  s.y = c.node.outputs[0];
  if (Val(c.g, s.x).shape != Val(c.g, s.y).shape) return {};
  return s;
}

NodeSpec MatchDequantize(const Ctx& c) {
  DequantizeSpec s;
  s.x = c.node.input(0);
  if (s.x == kNoValue || !SingleOutput(c.node)) return {};
  s.y = c.node.outputs[0];
  if (Val(c.g, s.x).is_constant()) {
    if (!GoodShape(Val(c.g, s.y)) || !GetConstOperand(c.g, c.a.producers(), s.y)) return {};
    s.constant = true;
    return s;
  }
  if (!FloatOutput(c) || !QuantActivation(c, 0, 1, 2, &s.params)) return {};
  if (Val(c.g, s.x).shape != Val(c.g, s.y).shape) return {};
  return s;
}

}  // namespace

NodeSpec GraphAnalysis::Match(int n) const {
  const Node& node = graph_.nodes[static_cast<size_t>(n)];
  const Ctx c{*this, graph_, node};
  const OpKind kind = KindOf(node);
  switch (kind) {
    case OpKind::kUnsupported:
      return {};
    case OpKind::kConv:
    case OpKind::kConvTranspose:
    case OpKind::kQLinearConv:
      return MatchConv(c, kind);
    case OpKind::kGemm:
    case OpKind::kMatMul:
    case OpKind::kQLinearMatMul:
      return MatchFc(c, kind);
    case OpKind::kAdd:
    case OpKind::kSub:
    case OpKind::kMul:
    case OpKind::kDiv:
    case OpKind::kMax:
    case OpKind::kMin:
      return MatchBinary(c, kind);
    case OpKind::kPRelu:
      return MatchPRelu(c);
    case OpKind::kSoftmax:
      return MatchSoftmax(c);
    case OpKind::kMaxPool:
    case OpKind::kAveragePool:
    case OpKind::kGlobalAveragePool:
    case OpKind::kGlobalMaxPool:
      return MatchPool(c, kind);
    case OpKind::kBatchNorm:
      return MatchBatchNorm(c);
    case OpKind::kReshape:
      return MatchReshape(c);
    case OpKind::kPad:
      return MatchPad(c);
    case OpKind::kResize:
      return MatchResize(c);
    case OpKind::kQuantize:
      return MatchQuantize(c);
    case OpKind::kDequantize:
      return MatchDequantize(c);
    default:
      if (IsUnaryKind(kind)) return MatchUnary(c, kind);
      return {};
  }
}

}  // namespace hml::runtime::xnnpack

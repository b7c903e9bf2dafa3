// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/runtime/backends/xnnpack/subgraph_builder.h"

#include <xnnpack.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "src/runtime/backends/xnnpack/layout.h"
#include "src/runtime/backends/xnnpack/xnnpack_status.h"

namespace hml::runtime::xnnpack {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr uint32_t kInvalid = XNN_INVALID_VALUE_ID;

// 64-byte aligned, zero-filled memory with XNN_EXTRA_BYTES of readable slack at the end.
class Buffer {
 public:
  static std::unique_ptr<Buffer> Create(size_t bytes) {
    const size_t rounded = (bytes + XNN_EXTRA_BYTES + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, rounded);
    if (p == nullptr) return nullptr;
    std::memset(p, 0, rounded);
    return std::unique_ptr<Buffer>(new Buffer(p));
  }
  ~Buffer() { std::free(data_); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  void* data() { return data_; }

 private:
  explicit Buffer(void* data) : data_(data) {}
  void* data_;
};

// One copy Run() does before or after invoking the runtime.
struct BoundaryCopy {
  enum class Kind { kCopy, kToNhwc, kToNchw };
  Kind kind = Kind::kCopy;
  const void* src = nullptr;
  void* dst = nullptr;
  size_t n = 0, c = 0, hw = 0, elem_size = 0;
  size_t bytes = 0;
};

void Apply(const BoundaryCopy& copy) {
  switch (copy.kind) {
    case BoundaryCopy::Kind::kCopy:
      std::memcpy(copy.dst, copy.src, copy.bytes);
      break;
    case BoundaryCopy::Kind::kToNhwc:
      TransposeNchwToNhwc(copy.src, copy.dst, copy.n, copy.c, copy.hw, copy.elem_size);
      break;
    case BoundaryCopy::Kind::kToNchw:
      TransposeNhwcToNchw(copy.src, copy.dst, copy.n, copy.c, copy.hw, copy.elem_size);
      break;
  }
}

struct RuntimeDeleter {
  void operator()(xnn_runtime* runtime) const { xnn_delete_runtime(runtime); }
};

class XnnpackExecutable final : public Executable {
 public:
  Status Run() override {
    for (const BoundaryCopy& copy : inputs_) Apply(copy);
    if (runtime_ != nullptr) {
      const xnn_status status = xnn_invoke_runtime(runtime_.get());
      if (status != xnn_status_success) {
        return XnnStatusToStatus(status, "xnn_invoke_runtime", description_);
      }
    }
    for (const BoundaryCopy& copy : outputs_) Apply(copy);
    return Status::Ok();
  }

  // Members are filled by the builder. Destruction order matters: the runtime goes first, then
  // the weights and staging buffers it points into, then the thread pool.
  std::shared_ptr<pthreadpool> threadpool_;
  std::vector<std::unique_ptr<Buffer>> buffers_;
  std::vector<BoundaryCopy> inputs_;
  std::vector<BoundaryCopy> outputs_;
  std::string description_;
  std::unique_ptr<xnn_runtime, RuntimeDeleter> runtime_;
};

std::vector<size_t> ToDims(const Shape& shape) {
  std::vector<size_t> dims;
  for (int64_t d : shape) dims.push_back(static_cast<size_t>(d));
  return dims;
}

size_t Product(const std::vector<size_t>& dims, size_t begin, size_t end) {
  size_t p = 1;
  for (size_t i = begin; i < end; ++i) p *= dims[i];
  return p;
}

// The XNNPACK qs8 convolution / fully-connected requantization scale range.
bool RequantScaleOk(double scale) { return scale >= 0x1.0p-32 && scale < 256.0; }

int32_t QuantizeBias(float value, double scale) {
  const double q = std::nearbyint(static_cast<double>(value) / scale);
  const double lim = static_cast<double>(std::numeric_limits<int32_t>::max());
  return static_cast<int32_t>(std::clamp(q, -lim, lim));
}

bool SupportsFusedClamp(OpKind kind) {
  switch (kind) {
    case OpKind::kConv:
    case OpKind::kConvTranspose:
    case OpKind::kGemm:
    case OpKind::kMatMul:
    case OpKind::kAdd:
    case OpKind::kSub:
    case OpKind::kMul:
    case OpKind::kDiv:
    case OpKind::kMaxPool:
    case OpKind::kAveragePool:
    case OpKind::kGlobalAveragePool:
    case OpKind::kGlobalMaxPool:
    case OpKind::kBatchNorm:
      return true;
    default:
      return false;
  }
}

// A compute node with the Relu/Clip and QuantizeLinear nodes folded into it.
struct Chain {
  int compute = -1;
  int act = -1;       // fused Relu / Clip
  int quantize = -1;  // fused QuantizeLinear (quantized mode)
  bool quant = false;
  float min = -kInf, max = kInf;
  ValueId out = kNoValue;  // the graph value the chain produces
};

class SubgraphBuilder {
 public:
  SubgraphBuilder(const Segment& segment, const GraphAnalysis& analysis,
                  const CompileOptions& options)
      : segment_(segment), analysis_(analysis), graph_(*segment.graph), options_(options) {}

  ~SubgraphBuilder() {
    if (subgraph_ != nullptr) xnn_delete_subgraph(subgraph_);
  }

  Result<std::unique_ptr<Executable>> Build(BuildReport* report);

 private:
  struct ValueState {
    bool layout_known = false;
    Layout layout = Layout::kPlain;
    Shape flat_source;  // NCHW shape of the rank-4 value a kFlatNhwc value flattens
    uint32_t f32 = kInvalid;
    std::vector<std::pair<QuantParams, uint32_t>> q;
    ValueId dq_source = kNoValue;  // DequantizeLinear output: the int8 value it reads
    QuantParams dq_params;
  };

  const Node& node(int n) const { return graph_.nodes[static_cast<size_t>(n)]; }
  const Value& value(ValueId v) const { return graph_.value(v); }
  std::string Describe(int n) const { return node(n).Describe(static_cast<size_t>(n)); }
  Status Check(xnn_status status, const char* call, int n) const {
    return XnnStatusToStatus(status, call, n >= 0 ? Describe(n) : description_);
  }
  Status Internal(int n, const std::string& why) const {
    return InternalError("XNNPACK backend, " + Describe(n) + ": " + why);
  }

  void Plan();
  int SoleReaderInSegment(ValueId v) const;
  bool QuantEligible(const Chain& chain, const QuantParams& out) const;
  Status Emit(const Chain& chain);
  Status EmitConv(const Chain& ch, const ConvSpec& s);
  Status EmitFc(const Chain& ch, const FcSpec& s);
  Status EmitPerChannelFc(const Chain& ch, const FcSpec& s, const QuantParams& pa,
                          const QuantParams& py, uint32_t input, const std::vector<int8_t>& wdata,
                          const std::vector<float>& wscales, const std::vector<float>& bias_f);
  Status EmitPool(const Chain& ch, const PoolSpec& s);
  Status EmitBinary(const Chain& ch, const BinarySpec& s);
  Status EmitUnary(const Chain& ch, const UnarySpec& s);
  Status EmitPRelu(const Chain& ch, const PReluSpec& s);
  Status EmitSoftmax(const Chain& ch, const SoftmaxSpec& s);
  Status EmitBatchNorm(const Chain& ch, const BatchNormSpec& s);
  Status EmitReshape(const Chain& ch, const ReshapeSpec& s);
  Status EmitPad(const Chain& ch, const PadSpec& s);
  Status EmitResize(const Chain& ch, const ResizeSpec& s);
  Status EmitQuantize(const Chain& ch, const QuantizeSpec& s);
  Status EmitDequantize(const Chain& ch, const DequantizeSpec& s);
  Status Finish();

  // Value forms.
  Layout LayoutOf(ValueId v) const;
  const Shape& FlatSourceOf(ValueId v) const;
  std::vector<size_t> DimsOf(ValueId v, Layout layout) const;
  bool IsNativeForm(ValueId v, bool quant, const QuantParams& p) const;
  Result<uint32_t> NewValue(ValueId v, Layout layout, const Shape& flat_source, bool quant,
                            const QuantParams& p);
  Result<uint32_t> NewTemp(const std::vector<size_t>& dims, bool quant, const QuantParams& p);
  Result<uint32_t> Input(ValueId v);
  Result<uint32_t> F32(ValueId v);
  Result<uint32_t> Quant(ValueId v, const QuantParams& p);
  Result<uint32_t> Convert(uint32_t from, uint32_t to, int n);
  // Static tensors; data is copied into executable-owned memory.
  Result<void*> Own(const void* data, size_t bytes);
  Result<uint32_t> StaticF32(const std::vector<float>& data, const std::vector<size_t>& dims);
  Result<uint32_t> StaticQint8(const std::vector<int8_t>& data, const std::vector<size_t>& dims,
                               const QuantParams& p);
  Result<uint32_t> StaticQcint8(const std::vector<int8_t>& data, const std::vector<size_t>& dims,
                                const std::vector<float>& scales, size_t channel_dim);
  // qint32 (one scale) or qcint32 (one scale per element) bias.
  Result<uint32_t> StaticInt32(const std::vector<int32_t>& data, const std::vector<float>& scales,
                               bool channelwise);
  // An operand of a rank-`out_rank` elementwise node: a constant expanded (and NHWC-permuted for
  // rank 4), or an activation reshaped to broadcast correctly in NHWC.
  Result<uint32_t> ElementwiseOperand(ValueId v, size_t out_rank, bool quant, int n);
  Result<uint32_t> ChannelConstant(const std::vector<float>& per_channel, ValueId x);

  const Segment& segment_;
  const GraphAnalysis& analysis_;
  const Graph& graph_;
  const CompileOptions& options_;
  std::string description_;

  xnn_subgraph_t subgraph_ = nullptr;
  int num_nodes_ = 0;
  uint32_t next_external_ = 0;
  std::vector<xnn_external_value> externals_;
  std::unordered_set<ValueId> in_segment_inputs_, in_segment_outputs_;
  std::unordered_set<ValueId> external_defined_;
  std::unordered_map<ValueId, uint32_t> external_ids_;
  std::unordered_map<ValueId, ValueState> states_;
  std::vector<bool> in_segment_;
  std::vector<bool> absorbed_;
  std::vector<Chain> chains_;
  std::unique_ptr<XnnpackExecutable> exe_ = std::make_unique<XnnpackExecutable>();
};

// ---------------------------------------------------------------------------------------------
// Planning: which Relu/Clip and QuantizeLinear nodes fold into the compute node before them.

int SubgraphBuilder::SoleReaderInSegment(ValueId v) const {
  if (analysis_.use_count(v) != 1 || analysis_.readers(v).size() != 1) return -1;
  const int r = analysis_.readers(v)[0];
  if (!in_segment_[static_cast<size_t>(r)] || absorbed_[static_cast<size_t>(r)]) return -1;
  if (node(r).input(0) != v) return -1;
  return r;
}

bool SubgraphBuilder::QuantEligible(const Chain& ch, const QuantParams& out) const {
  const NodeSpec& spec = analysis_.Spec(ch.compute);
  if (const auto* s = std::get_if<ConvSpec>(&spec)) {
    if (s->kind == OpKind::kConvTranspose) return false;
    if (s->groups <= 1) {
      int64_t depth = s->c_in;
      for (int64_t k : s->win.kernel) depth *= k;
      if (depth < options_.min_qs8_conv_depth) return false;
    }
    std::optional<QuantParams> px =
        s->kind == OpKind::kQLinearConv ? s->x_params : analysis_.DequantizedFrom(s->x);
    if (!px || !s->weights.SymmetricInt8(0)) return false;
    for (int64_t o = 0; o < s->c_out; ++o) {
      if (!RequantScaleOk(static_cast<double>(px->scale) * s->weights.ScaleOf(o) / out.scale)) {
        return false;
      }
    }
    return true;
  }
  if (const auto* s = std::get_if<FcSpec>(&spec)) {
    std::optional<QuantParams> pa =
        s->kind == OpKind::kQLinearMatMul ? s->a_params : analysis_.DequantizedFrom(s->a);
    if (!pa || !s->b.SymmetricInt8(s->b_is_nk ? 0 : 1)) return false;
    if (!(s->alpha > 0.0f) || !std::isnormal(s->alpha)) return false;
    for (int64_t o = 0; o < s->n; ++o) {
      const double ws = static_cast<double>(s->b.ScaleOf(o)) * s->alpha;
      if (!RequantScaleOk(static_cast<double>(pa->scale) * ws / out.scale)) return false;
    }
    return true;
  }
  if (const auto* s = std::get_if<PoolSpec>(&spec)) {
    if (s->kind != OpKind::kMaxPool) return false;
    std::optional<QuantParams> px = analysis_.DequantizedFrom(s->x);
    return px && *px == out;
  }
  if (const auto* s = std::get_if<ReshapeSpec>(&spec)) {
    std::optional<QuantParams> px = analysis_.DequantizedFrom(s->x);
    return px && *px == out;
  }
  if (const auto* s = std::get_if<BinarySpec>(&spec)) {
    if (s->kind != OpKind::kAdd && s->kind != OpKind::kMul) return false;
    for (ValueId v : {s->a, s->b}) {
      if (std::optional<ConstOperand> c = GetConstOperand(graph_, analysis_.producers(), v)) {
        if (!c->quantized() || c->raw->dtype() != DType::kInt8 || c->scales.size() != 1 ||
            !(c->scales[0] > 0.0f) || !std::isnormal(c->scales[0])) {
          return false;
        }
      } else if (!analysis_.DequantizedFrom(v)) {
        return false;
      }
    }
    return true;
  }
  return false;
}

void SubgraphBuilder::Plan() {
  chains_.assign(graph_.nodes.size(), Chain());
  for (int n : segment_.nodes) {
    if (absorbed_[static_cast<size_t>(n)]) continue;
    Chain ch;
    ch.compute = n;
    ch.out = node(n).outputs[0];
    const OpKind kind = KindOf(node(n));
    const NodeSpec& spec = analysis_.Spec(n);
    const bool int8_in =
        node(n).input(0) != kNoValue && value(node(n).input(0)).dtype == DType::kInt8;
    if (kind == OpKind::kQLinearConv || kind == OpKind::kQLinearMatMul) {
      const QuantParams out = kind == OpKind::kQLinearConv ? std::get<ConvSpec>(spec).y_params
                                                           : std::get<FcSpec>(spec).y_params;
      ch.quant = options_.quantized_compute && QuantEligible(ch, out);
    } else if (int8_in && (kind == OpKind::kMaxPool || kind == OpKind::kReshape)) {
      // int8 MaxPool runs in fp32 only when quantized compute is off; int8 reshapes always
      // move int8 data.
      ch.quant = kind == OpKind::kReshape || options_.quantized_compute;
    } else {
      if (SupportsFusedClamp(kind)) {
        const int r = SoleReaderInSegment(ch.out);
        if (r >= 0) {
          if (const auto* act = std::get_if<UnarySpec>(&analysis_.Spec(r))) {
            if (act->kind == OpKind::kRelu || act->kind == OpKind::kClip) {
              ch.act = r;
              ch.min = act->min;
              ch.max = act->max;
              ch.out = act->y;
            }
          }
        }
      }
      if (options_.quantized_compute) {
        const int r = SoleReaderInSegment(ch.out);
        if (r >= 0) {
          if (const auto* q = std::get_if<QuantizeSpec>(&analysis_.Spec(r))) {
            const bool clamp_ok = ch.act < 0 || kind != OpKind::kReshape;
            if (clamp_ok && QuantEligible(ch, q->params)) {
              ch.quant = true;
              ch.quantize = r;
              ch.out = q->y;
            }
          }
        }
      }
    }
    if (ch.act >= 0) absorbed_[static_cast<size_t>(ch.act)] = true;
    if (ch.quantize >= 0) absorbed_[static_cast<size_t>(ch.quantize)] = true;
    chains_[static_cast<size_t>(n)] = ch;
  }
}

// ---------------------------------------------------------------------------------------------
// Value forms.

Layout SubgraphBuilder::LayoutOf(ValueId v) const {
  auto it = states_.find(v);
  if (it != states_.end() && it->second.layout_known) return it->second.layout;
  return value(v).shape.size() == 4 ? Layout::kNhwc : Layout::kPlain;
}

const Shape& SubgraphBuilder::FlatSourceOf(ValueId v) const {
  static const Shape kEmpty;
  auto it = states_.find(v);
  return it == states_.end() ? kEmpty : it->second.flat_source;
}

std::vector<size_t> SubgraphBuilder::DimsOf(ValueId v, Layout layout) const {
  const Shape& shape = value(v).shape;
  return ToDims(layout == Layout::kNhwc ? NhwcShape(shape) : shape);
}

bool SubgraphBuilder::IsNativeForm(ValueId v, bool quant, const QuantParams& p) const {
  if (value(v).dtype == DType::kFloat32) return !quant;
  const std::optional<QuantParams>& native = analysis_.qparams(v);
  return quant && native && *native == p;
}

Result<uint32_t> SubgraphBuilder::NewTemp(const std::vector<size_t>& dims, bool quant,
                                          const QuantParams& p) {
  uint32_t id = kInvalid;
  const xnn_status status =
      quant
          ? xnn_define_quantized_tensor_value(subgraph_, xnn_datatype_qint8, p.zero_point, p.scale,
                                              dims.size(), dims.data(), nullptr, kInvalid, 0, &id)
          : xnn_define_tensor_value(subgraph_, xnn_datatype_fp32, dims.size(), dims.data(), nullptr,
                                    kInvalid, 0, &id);
  HML_RETURN_IF_ERROR(Check(status, "xnn_define_tensor_value", -1));
  return id;
}

Result<uint32_t> SubgraphBuilder::NewValue(ValueId v, Layout layout, const Shape& flat_source,
                                           bool quant, const QuantParams& p) {
  ValueState& st = states_[v];
  if (!st.layout_known) {
    st.layout_known = true;
    st.layout = layout;
    st.flat_source = flat_source;
  }
  const std::vector<size_t> dims = DimsOf(v, st.layout);
  const bool external = IsNativeForm(v, quant, p) && in_segment_outputs_.count(v) > 0 &&
                        external_defined_.count(v) == 0;
  const uint32_t external_id = external ? next_external_++ : kInvalid;
  const uint32_t flags = external ? XNN_VALUE_FLAG_EXTERNAL_OUTPUT : 0;
  uint32_t id = kInvalid;
  const xnn_status status =
      quant ? xnn_define_quantized_tensor_value(subgraph_, xnn_datatype_qint8, p.zero_point,
                                                p.scale, dims.size(), dims.data(), nullptr,
                                                external_id, flags, &id)
            : xnn_define_tensor_value(subgraph_, xnn_datatype_fp32, dims.size(), dims.data(),
                                      nullptr, external_id, flags, &id);
  HML_RETURN_IF_ERROR(
      XnnStatusToStatus(status, "xnn_define_tensor_value", "value '" + value(v).name + "'"));
  if (quant) {
    st.q.emplace_back(p, id);
  } else {
    st.f32 = id;
  }
  if (external) {
    external_defined_.insert(v);
    void* session = segment_.buffers[static_cast<size_t>(v)];
    if (session == nullptr) {
      return InternalError("XNNPACK backend: segment output '" + value(v).name + "' has no buffer");
    }
    const Shape& shape = value(v).shape;
    const size_t elem = DTypeSize(value(v).dtype);
    BoundaryCopy copy;
    copy.kind = BoundaryCopy::Kind::kToNchw;
    copy.elem_size = elem;
    if (st.layout == Layout::kNhwc && !SameOrderInNhwc(shape)) {
      copy.n = static_cast<size_t>(shape[0]);
      copy.c = static_cast<size_t>(shape[1]);
      copy.hw = static_cast<size_t>(shape[2] * shape[3]);
    } else if (st.layout == Layout::kFlatNhwc && !SameOrderInNhwc(st.flat_source)) {
      const Shape& src = st.flat_source;
      copy.n = static_cast<size_t>(src[0]);
      copy.c = static_cast<size_t>(src[1]);
      copy.hw = static_cast<size_t>(src[2] * src[3]);
    } else {
      // Same element order: XNNPACK writes the session's buffer directly.
      externals_.push_back({external_id, session});
      return id;
    }
    const size_t bytes = copy.n * copy.c * copy.hw * elem;
    std::unique_ptr<Buffer> staging = Buffer::Create(bytes);
    if (staging == nullptr) return ResourceExhaustedError("XNNPACK backend: staging buffer");
    copy.src = staging->data();
    copy.dst = session;
    copy.bytes = bytes;
    externals_.push_back({external_id, staging->data()});
    exe_->buffers_.push_back(std::move(staging));
    exe_->outputs_.push_back(copy);
  }
  return id;
}

Result<uint32_t> SubgraphBuilder::Input(ValueId v) {
  auto it = external_ids_.find(v);
  if (it != external_ids_.end()) return it->second;
  const Value& val = value(v);
  const Layout layout = val.shape.size() == 4 ? Layout::kNhwc : Layout::kPlain;
  ValueState& st = states_[v];
  st.layout_known = true;
  st.layout = layout;
  const std::vector<size_t> dims = DimsOf(v, layout);
  const uint32_t external_id = next_external_++;
  uint32_t id = kInvalid;
  xnn_status status;
  if (val.dtype == DType::kInt8) {
    const std::optional<QuantParams>& p = analysis_.qparams(v);
    if (!p) return InternalError("XNNPACK backend: int8 input '" + val.name + "' has no scale");
    status = xnn_define_quantized_tensor_value(subgraph_, xnn_datatype_qint8, p->zero_point,
                                               p->scale, dims.size(), dims.data(), nullptr,
                                               external_id, XNN_VALUE_FLAG_EXTERNAL_INPUT, &id);
    st.q.emplace_back(*p, id);
  } else if (val.dtype == DType::kFloat32) {
    status = xnn_define_tensor_value(subgraph_, xnn_datatype_fp32, dims.size(), dims.data(),
                                     nullptr, external_id, XNN_VALUE_FLAG_EXTERNAL_INPUT, &id);
    st.f32 = id;
  } else {
    return InternalError("XNNPACK backend: input '" + val.name + "' has an unsupported dtype");
  }
  HML_RETURN_IF_ERROR(
      XnnStatusToStatus(status, "xnn_define_tensor_value", "input '" + val.name + "'"));
  external_ids_[v] = id;
  void* session = segment_.buffers[static_cast<size_t>(v)];
  if (session == nullptr) {
    return InternalError("XNNPACK backend: segment input '" + val.name + "' has no buffer");
  }
  const size_t elem = DTypeSize(val.dtype);
  BoundaryCopy copy;
  copy.elem_size = elem;
  size_t count = 1;
  for (int64_t d : val.shape) count *= static_cast<size_t>(d);
  copy.bytes = count * elem;
  if (layout == Layout::kNhwc && !SameOrderInNhwc(val.shape)) {
    copy.kind = BoundaryCopy::Kind::kToNhwc;
    copy.n = static_cast<size_t>(val.shape[0]);
    copy.c = static_cast<size_t>(val.shape[1]);
    copy.hw = static_cast<size_t>(val.shape[2] * val.shape[3]);
  }
  std::unique_ptr<Buffer> staging = Buffer::Create(copy.bytes);
  if (staging == nullptr) return ResourceExhaustedError("XNNPACK backend: staging buffer");
  copy.src = session;
  copy.dst = staging->data();
  externals_.push_back({external_id, staging->data()});
  exe_->buffers_.push_back(std::move(staging));
  exe_->inputs_.push_back(copy);
  return id;
}

Result<uint32_t> SubgraphBuilder::Convert(uint32_t from, uint32_t to, int n) {
  HML_RETURN_IF_ERROR(Check(xnn_define_convert(subgraph_, from, to, 0), "xnn_define_convert", n));
  ++num_nodes_;
  return to;
}

Result<uint32_t> SubgraphBuilder::F32(ValueId v) {
  {
    auto it = states_.find(v);
    if (it != states_.end() && it->second.f32 != kInvalid) return it->second.f32;
  }
  if (in_segment_inputs_.count(v) && value(v).dtype == DType::kFloat32) return Input(v);
  uint32_t q = kInvalid;
  if (value(v).dtype == DType::kInt8) {
    const std::optional<QuantParams>& p = analysis_.qparams(v);
    if (!p)
      return InternalError("XNNPACK backend: int8 value '" + value(v).name + "' has no scale");
    HML_ASSIGN_OR_RETURN(q, Quant(v, *p));
  } else {
    auto it = states_.find(v);
    if (it == states_.end() || it->second.dq_source == kNoValue) {
      return InternalError("XNNPACK backend: value '" + value(v).name +
                           "' is not available in fp32 inside the segment");
    }
    const ValueId source = it->second.dq_source;
    const QuantParams p = it->second.dq_params;
    HML_ASSIGN_OR_RETURN(q, Quant(source, p));
  }
  const ValueState& st = states_[v];
  const Layout layout = LayoutOf(v);
  const Shape flat = st.flat_source;
  HML_ASSIGN_OR_RETURN(uint32_t id, NewValue(v, layout, flat, /*quant=*/false, QuantParams()));
  return Convert(q, id, -1);
}

Result<uint32_t> SubgraphBuilder::Quant(ValueId v, const QuantParams& p) {
  {
    auto it = states_.find(v);
    if (it != states_.end()) {
      for (const auto& [params, id] : it->second.q) {
        if (params == p) return id;
      }
      if (it->second.dq_source != kNoValue && it->second.dq_params == p) {
        const ValueId source = it->second.dq_source;
        HML_ASSIGN_OR_RETURN(uint32_t id, Quant(source, p));
        states_[v].q.emplace_back(p, id);
        return id;
      }
    }
  }
  if (in_segment_inputs_.count(v) && value(v).dtype == DType::kInt8) {
    HML_ASSIGN_OR_RETURN(uint32_t id, Input(v));
    if (!(analysis_.qparams(v) == p)) {
      return InternalError("XNNPACK backend: int8 input '" + value(v).name +
                           "' read with different quantization parameters");
    }
    return id;
  }
  if (value(v).dtype == DType::kInt8) {
    return InternalError("XNNPACK backend: int8 value '" + value(v).name +
                         "' is not available with the requested parameters");
  }
  HML_ASSIGN_OR_RETURN(uint32_t f, F32(v));
  const Layout layout = LayoutOf(v);
  const Shape flat = states_[v].flat_source;
  HML_ASSIGN_OR_RETURN(uint32_t id, NewValue(v, layout, flat, /*quant=*/true, p));
  return Convert(f, id, -1);
}

Result<void*> SubgraphBuilder::Own(const void* data, size_t bytes) {
  std::unique_ptr<Buffer> buffer = Buffer::Create(bytes);
  if (buffer == nullptr) return ResourceExhaustedError("XNNPACK backend: weights buffer");
  if (bytes > 0) std::memcpy(buffer->data(), data, bytes);
  void* p = buffer->data();
  exe_->buffers_.push_back(std::move(buffer));
  return p;
}

Result<uint32_t> SubgraphBuilder::StaticF32(const std::vector<float>& data,
                                            const std::vector<size_t>& dims) {
  HML_ASSIGN_OR_RETURN(void* p, Own(data.data(), data.size() * sizeof(float)));
  uint32_t id = kInvalid;
  HML_RETURN_IF_ERROR(Check(xnn_define_tensor_value(subgraph_, xnn_datatype_fp32, dims.size(),
                                                    dims.data(), p, kInvalid, 0, &id),
                            "xnn_define_tensor_value", -1));
  return id;
}

Result<uint32_t> SubgraphBuilder::StaticQint8(const std::vector<int8_t>& data,
                                              const std::vector<size_t>& dims,
                                              const QuantParams& q) {
  HML_ASSIGN_OR_RETURN(void* p, Own(data.data(), data.size()));
  uint32_t id = kInvalid;
  HML_RETURN_IF_ERROR(
      Check(xnn_define_quantized_tensor_value(subgraph_, xnn_datatype_qint8, q.zero_point, q.scale,
                                              dims.size(), dims.data(), p, kInvalid, 0, &id),
            "xnn_define_quantized_tensor_value", -1));
  return id;
}

Result<uint32_t> SubgraphBuilder::StaticQcint8(const std::vector<int8_t>& data,
                                               const std::vector<size_t>& dims,
                                               const std::vector<float>& scales,
                                               size_t channel_dim) {
  HML_ASSIGN_OR_RETURN(void* p, Own(data.data(), data.size()));
  // XNNPACK keeps the scale pointer: it must live as long as the runtime.
  HML_ASSIGN_OR_RETURN(void* s, Own(scales.data(), scales.size() * sizeof(float)));
  uint32_t id = kInvalid;
  HML_RETURN_IF_ERROR(Check(xnn_define_channelwise_quantized_tensor_value(
                                subgraph_, xnn_datatype_qcint8, static_cast<const float*>(s),
                                dims.size(), channel_dim, dims.data(), p, kInvalid, 0, &id),
                            "xnn_define_channelwise_quantized_tensor_value", -1));
  return id;
}

Result<uint32_t> SubgraphBuilder::StaticInt32(const std::vector<int32_t>& data,
                                              const std::vector<float>& scales, bool channelwise) {
  HML_ASSIGN_OR_RETURN(void* p, Own(data.data(), data.size() * sizeof(int32_t)));
  const std::vector<size_t> dims = {data.size()};
  uint32_t id = kInvalid;
  if (!channelwise) {
    HML_RETURN_IF_ERROR(
        Check(xnn_define_quantized_tensor_value(subgraph_, xnn_datatype_qint32, 0, scales[0], 1,
                                                dims.data(), p, kInvalid, 0, &id),
              "xnn_define_quantized_tensor_value", -1));
    return id;
  }
  HML_ASSIGN_OR_RETURN(void* s, Own(scales.data(), scales.size() * sizeof(float)));
  HML_RETURN_IF_ERROR(Check(xnn_define_channelwise_quantized_tensor_value(
                                subgraph_, xnn_datatype_qcint32, static_cast<const float*>(s), 1, 0,
                                dims.data(), p, kInvalid, 0, &id),
                            "xnn_define_channelwise_quantized_tensor_value", -1));
  return id;
}

Result<uint32_t> SubgraphBuilder::ElementwiseOperand(ValueId v, size_t out_rank, bool quant,
                                                     int n) {
  if (std::optional<ConstOperand> c = GetConstOperand(graph_, analysis_.producers(), v)) {
    Shape shape = c->shape();
    if (shape.empty()) shape = {1};
    if (quant) {
      std::vector<int8_t> data(c->raw->data<int8_t>(),
                               c->raw->data<int8_t>() + c->raw->num_elements());
      QuantParams p{c->scales[0], c->zero_points[0]};
      if (out_rank == 4) {
        Shape nhwc;
        data = ToNhwcConstant(data, shape, &nhwc);
        shape = nhwc;
      }
      return StaticQint8(data, ToDims(shape), p);
    }
    std::vector<float> data = c->ToFloat();
    if (out_rank == 4) {
      Shape nhwc;
      data = ToNhwcConstant(data, shape, &nhwc);
      shape = nhwc;
    }
    return StaticF32(data, ToDims(shape));
  }
  if (LayoutOf(v) == Layout::kFlatNhwc) return Internal(n, "reads a flattened NHWC value");
  uint32_t id = kInvalid;
  std::optional<QuantParams> p;
  if (quant) {
    p = analysis_.DequantizedFrom(v);
    if (!p) return Internal(n, "operand is not dequantized int8");
    HML_ASSIGN_OR_RETURN(id, Quant(v, *p));
  } else {
    HML_ASSIGN_OR_RETURN(id, F32(v));
  }
  const Shape& shape = value(v).shape;
  if (out_rank != 4 || shape.size() == 4) return id;
  // A lower-rank activation broadcast against NHWC: same elements, NHWC dims.
  Shape padded(4 - shape.size(), 1);
  padded.insert(padded.end(), shape.begin(), shape.end());
  const std::vector<size_t> dims = ToDims(NhwcShape(padded));
  HML_ASSIGN_OR_RETURN(uint32_t reshaped, NewTemp(dims, quant, p.value_or(QuantParams())));
  HML_RETURN_IF_ERROR(
      Check(xnn_define_static_reshape(subgraph_, dims.size(), dims.data(), id, reshaped, 0),
            "xnn_define_static_reshape", n));
  ++num_nodes_;
  return reshaped;
}

// A per-channel constant broadcast against `x` ([N, C, ...]): [1, 1, 1, C] in NHWC for rank 4,
// [C, 1, ..., 1] of rank r-1 otherwise.
Result<uint32_t> SubgraphBuilder::ChannelConstant(const std::vector<float>& per_channel,
                                                  ValueId x) {
  const size_t rank = value(x).shape.size();
  std::vector<size_t> dims;
  if (rank == 4) {
    dims = {1, 1, 1, per_channel.size()};
  } else {
    dims.assign(rank - 1, 1);
    dims[0] = per_channel.size();
  }
  return StaticF32(per_channel, dims);
}

// ---------------------------------------------------------------------------------------------
// Emission.

Status SubgraphBuilder::EmitConv(const Chain& ch, const ConvSpec& s) {
  const int n = ch.compute;
  const bool qlinear = s.kind == OpKind::kQLinearConv;
  const int64_t kh = s.weights.shape()[2];
  const int64_t kw = s.weights.shape()[3];
  const int64_t cin_g = s.c_in / s.groups;
  const int64_t cout_g = s.c_out / s.groups;
  std::vector<float> bias_f =
      s.bias ? s.bias->ToFloat() : std::vector<float>(static_cast<size_t>(s.c_out), 0.0f);
  uint32_t input = kInvalid, filter = kInvalid, bias = kInvalid, output = kInvalid;
  std::vector<size_t> filter_dims;
  if (s.depthwise) {
    filter_dims = {1, static_cast<size_t>(kh), static_cast<size_t>(kw),
                   static_cast<size_t>(s.c_out)};
  } else {
    filter_dims = {static_cast<size_t>(s.c_out), static_cast<size_t>(kh), static_cast<size_t>(kw),
                   static_cast<size_t>(cin_g)};
  }
  if (ch.quant) {
    const QuantParams px = qlinear ? s.x_params : *analysis_.DequantizedFrom(s.x);
    const QuantParams py =
        qlinear ? s.y_params : std::get<QuantizeSpec>(analysis_.Spec(ch.quantize)).params;
    HML_ASSIGN_OR_RETURN(input, Quant(s.x, px));
    const int8_t* w = s.weights.raw->data<int8_t>();
    std::vector<int8_t> wdata =
        s.depthwise ? OihwToDepthwise(w, s.c_out, kh, kw) : OihwToOhwi(w, s.c_out, cin_g, kh, kw);
    std::vector<float> wscales(static_cast<size_t>(s.c_out));
    std::vector<float> bscales(wscales.size());
    std::vector<int32_t> bq(wscales.size());
    for (size_t o = 0; o < wscales.size(); ++o) {
      wscales[o] = s.weights.ScaleOf(static_cast<int64_t>(o));
      bscales[o] = px.scale * wscales[o];
      bq[o] = QuantizeBias(bias_f[o], static_cast<double>(px.scale) * wscales[o]);
    }
    HML_ASSIGN_OR_RETURN(filter, StaticQcint8(wdata, filter_dims, wscales, s.depthwise ? 3 : 0));
    // One scale per channel even when they repeat: the filter is qcint8, so the bias is
    // qcint32.
    HML_ASSIGN_OR_RETURN(bias, StaticInt32(bq, bscales, /*channelwise=*/true));
    HML_ASSIGN_OR_RETURN(output, NewValue(ch.out, Layout::kNhwc, {}, true, py));
  } else {
    HML_ASSIGN_OR_RETURN(input, F32(s.x));
    const std::vector<float> wf = s.weights.ToFloat();
    std::vector<float> wdata;
    if (s.kind == OpKind::kConvTranspose) {
      wdata = DeconvFilter(wf.data(), s.c_in, cout_g, s.groups, kh, kw);
      filter_dims = {static_cast<size_t>(s.c_out), static_cast<size_t>(kh), static_cast<size_t>(kw),
                     static_cast<size_t>(cin_g)};
    } else if (s.depthwise) {
      wdata = OihwToDepthwise(wf.data(), s.c_out, kh, kw);
    } else {
      wdata = OihwToOhwi(wf.data(), s.c_out, cin_g, kh, kw);
    }
    HML_ASSIGN_OR_RETURN(filter, StaticF32(wdata, filter_dims));
    HML_ASSIGN_OR_RETURN(bias, StaticF32(bias_f, {static_cast<size_t>(s.c_out)}));
    if (qlinear) {
      HML_ASSIGN_OR_RETURN(output, NewTemp(DimsOf(s.y, Layout::kNhwc), false, QuantParams()));
    } else {
      HML_ASSIGN_OR_RETURN(output, NewValue(ch.out, Layout::kNhwc, {}, false, QuantParams()));
    }
  }
  const auto pt = static_cast<uint32_t>(s.win.pads_begin[0]);
  const auto pl = static_cast<uint32_t>(s.win.pads_begin[1]);
  const auto pb = static_cast<uint32_t>(s.win.pads_end[0]);
  const auto pr = static_cast<uint32_t>(s.win.pads_end[1]);
  const auto sh = static_cast<uint32_t>(s.win.strides[0]);
  const auto sw = static_cast<uint32_t>(s.win.strides[1]);
  const auto dh = static_cast<uint32_t>(s.win.dilations[0]);
  const auto dw = static_cast<uint32_t>(s.win.dilations[1]);
  const auto ukh = static_cast<uint32_t>(kh);
  const auto ukw = static_cast<uint32_t>(kw);
  if (s.kind == OpKind::kConvTranspose) {
    HML_RETURN_IF_ERROR(
        Check(xnn_define_deconvolution_2d(
                  subgraph_, pt, pr, pb, pl, static_cast<uint32_t>(s.win.output_padding[0]),
                  static_cast<uint32_t>(s.win.output_padding[1]), ukh, ukw, sh, sw, dh, dw,
                  static_cast<uint32_t>(s.groups), static_cast<size_t>(cin_g),
                  static_cast<size_t>(cout_g), ch.min, ch.max, input, filter, bias, output, 0),
              "xnn_define_deconvolution_2d", n));
  } else if (s.depthwise) {
    HML_RETURN_IF_ERROR(
        Check(xnn_define_depthwise_convolution_2d(subgraph_, pt, pr, pb, pl, ukh, ukw, sh, sw, dh,
                                                  dw, static_cast<uint32_t>(s.c_out / s.c_in),
                                                  static_cast<size_t>(s.c_in), ch.min, ch.max,
                                                  input, filter, bias, output, 0),
              "xnn_define_depthwise_convolution_2d", n));
  } else {
    HML_RETURN_IF_ERROR(
        Check(xnn_define_convolution_2d(subgraph_, pt, pr, pb, pl, ukh, ukw, sh, sw, dh, dw,
                                        static_cast<uint32_t>(s.groups), static_cast<size_t>(cin_g),
                                        static_cast<size_t>(cout_g), ch.min, ch.max, input, filter,
                                        bias, output, 0),
              "xnn_define_convolution_2d", n));
  }
  ++num_nodes_;
  if (qlinear && !ch.quant) {
    HML_ASSIGN_OR_RETURN(uint32_t y, NewValue(s.y, Layout::kNhwc, {}, true, s.y_params));
    HML_RETURN_IF_ERROR(Convert(output, y, n).status());
  }
  return Status::Ok();
}

Status SubgraphBuilder::EmitFc(const Chain& ch, const FcSpec& s) {
  const int n = ch.compute;
  const bool qlinear = s.kind == OpKind::kQLinearMatMul;
  const Layout a_layout = LayoutOf(s.a);
  if (a_layout == Layout::kNhwc) return Internal(n, "reads an NHWC value");
  const Shape flat = a_layout == Layout::kFlatNhwc ? FlatSourceOf(s.a) : Shape();
  // Filter as [N, K], columns permuted for a kFlatNhwc input.
  auto arrange = [&](auto raw) {
    using T = std::remove_const_t<std::remove_pointer_t<decltype(raw)>>;
    std::vector<T> f =
        s.b_is_nk ? std::vector<T>(raw, raw + s.n * s.k) : Transpose2d(raw, s.k, s.n);
    if (!flat.empty()) f = PermuteColumnsChwToHwc(f, s.n, flat[1], flat[2], flat[3]);
    return f;
  };
  std::vector<float> bias_f;
  if (s.bias) {
    bias_f = s.bias->ToFloat();
    if (bias_f.size() == 1) bias_f.assign(static_cast<size_t>(s.n), bias_f[0]);
    for (float& b : bias_f) b *= s.beta;
  }
  const std::vector<size_t> filter_dims = {static_cast<size_t>(s.n), static_cast<size_t>(s.k)};
  uint32_t input = kInvalid, filter = kInvalid, bias = kInvalid, output = kInvalid;
  if (ch.quant) {
    const QuantParams pa = qlinear ? s.a_params : *analysis_.DequantizedFrom(s.a);
    const QuantParams py =
        qlinear ? s.y_params : std::get<QuantizeSpec>(analysis_.Spec(ch.quantize)).params;
    HML_ASSIGN_OR_RETURN(input, Quant(s.a, pa));
    const std::vector<int8_t> wdata = arrange(s.b.raw->data<int8_t>());
    std::vector<float> wscales(static_cast<size_t>(s.n));
    for (size_t o = 0; o < wscales.size(); ++o) {
      wscales[o] = s.b.ScaleOf(static_cast<int64_t>(o)) * s.alpha;
    }
    if (s.b.scales.size() != 1)
      return EmitPerChannelFc(ch, s, pa, py, input, wdata, wscales, bias_f);
    HML_ASSIGN_OR_RETURN(filter, StaticQint8(wdata, filter_dims, QuantParams{wscales[0], 0}));
    if (!bias_f.empty()) {
      std::vector<int32_t> bq(bias_f.size());
      for (size_t o = 0; o < bq.size(); ++o) {
        bq[o] = QuantizeBias(bias_f[o], static_cast<double>(pa.scale) * wscales[o]);
      }
      HML_ASSIGN_OR_RETURN(bias, StaticInt32(bq, {pa.scale * wscales[0]}, /*channelwise=*/false));
    }
    HML_ASSIGN_OR_RETURN(output, NewValue(ch.out, Layout::kPlain, {}, true, py));
  } else {
    HML_ASSIGN_OR_RETURN(input, F32(s.a));
    const std::vector<float> bf = s.b.ToFloat();
    std::vector<float> wdata = arrange(bf.data());
    if (s.alpha != 1.0f) {
      for (float& w : wdata) w *= s.alpha;
    }
    HML_ASSIGN_OR_RETURN(filter, StaticF32(wdata, filter_dims));
    if (!bias_f.empty()) {
      HML_ASSIGN_OR_RETURN(bias, StaticF32(bias_f, {bias_f.size()}));
    }
    if (qlinear) {
      HML_ASSIGN_OR_RETURN(output, NewTemp(DimsOf(s.y, Layout::kPlain), false, QuantParams()));
    } else {
      HML_ASSIGN_OR_RETURN(output, NewValue(ch.out, Layout::kPlain, {}, false, QuantParams()));
    }
  }
  HML_RETURN_IF_ERROR(
      Check(xnn_define_fully_connected(subgraph_, ch.min, ch.max, input, filter, bias, output, 0),
            "xnn_define_fully_connected", n));
  ++num_nodes_;
  if (qlinear && !ch.quant) {
    HML_ASSIGN_OR_RETURN(uint32_t y, NewValue(s.y, Layout::kPlain, {}, true, s.y_params));
    HML_RETURN_IF_ERROR(Convert(output, y, n).status());
  }
  return Status::Ok();
}

// The snapshot's qs8 fully-connected node takes per-tensor (qint8) filters only; with
// per-channel scales the product runs as a 1x1 qs8 convolution over [rows, 1, 1, K], which takes
// qcint8 filters and is the same GEMM inside XNNPACK.
Status SubgraphBuilder::EmitPerChannelFc(const Chain& ch, const FcSpec& s, const QuantParams& pa,
                                         const QuantParams& py, uint32_t input,
                                         const std::vector<int8_t>& wdata,
                                         const std::vector<float>& wscales,
                                         const std::vector<float>& bias_f) {
  const int n = ch.compute;
  const size_t k = static_cast<size_t>(s.k);
  const size_t outs = static_cast<size_t>(s.n);
  const std::vector<size_t> a_dims = DimsOf(s.a, Layout::kPlain);
  const size_t rows = Product(a_dims, 0, a_dims.size() - 1);
  std::vector<float> bscales(outs);
  std::vector<int32_t> bq(outs, 0);
  for (size_t o = 0; o < outs; ++o) {
    bscales[o] = pa.scale * wscales[o];
    if (!bias_f.empty()) {
      bq[o] = QuantizeBias(bias_f[o], static_cast<double>(pa.scale) * wscales[o]);
    }
  }
  HML_ASSIGN_OR_RETURN(uint32_t filter, StaticQcint8(wdata, {outs, 1, 1, k}, wscales, 0));
  HML_ASSIGN_OR_RETURN(uint32_t bias, StaticInt32(bq, bscales, /*channelwise=*/true));
  const std::vector<size_t> in4 = {rows, 1, 1, k};
  const std::vector<size_t> out4 = {rows, 1, 1, outs};
  HML_ASSIGN_OR_RETURN(uint32_t x4, NewTemp(in4, true, pa));
  HML_ASSIGN_OR_RETURN(uint32_t y4, NewTemp(out4, true, py));
  HML_ASSIGN_OR_RETURN(uint32_t output, NewValue(ch.out, Layout::kPlain, {}, true, py));
  HML_RETURN_IF_ERROR(
      Check(xnn_define_static_reshape(subgraph_, in4.size(), in4.data(), input, x4, 0),
            "xnn_define_static_reshape", n));
  HML_RETURN_IF_ERROR(
      Check(xnn_define_convolution_2d(subgraph_, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, k, outs, ch.min,
                                      ch.max, x4, filter, bias, y4, 0),
            "xnn_define_convolution_2d", n));
  const std::vector<size_t> out_dims = DimsOf(ch.out, Layout::kPlain);
  HML_RETURN_IF_ERROR(
      Check(xnn_define_static_reshape(subgraph_, out_dims.size(), out_dims.data(), y4, output, 0),
            "xnn_define_static_reshape", n));
  num_nodes_ += 3;
  return Status::Ok();
}

Status SubgraphBuilder::EmitPool(const Chain& ch, const PoolSpec& s) {
  const int n = ch.compute;
  const bool int8_native = value(s.x).dtype == DType::kInt8;
  uint32_t input = kInvalid, output = kInvalid;
  if (ch.quant) {
    const QuantParams p = int8_native ? *analysis_.qparams(s.x) : *analysis_.DequantizedFrom(s.x);
    HML_ASSIGN_OR_RETURN(input, Quant(s.x, p));
    HML_ASSIGN_OR_RETURN(output, NewValue(ch.out, Layout::kNhwc, {}, true, p));
  } else {
    HML_ASSIGN_OR_RETURN(input, F32(s.x));
    if (int8_native) {
      HML_ASSIGN_OR_RETURN(output, NewTemp(DimsOf(s.y, Layout::kNhwc), false, QuantParams()));
    } else {
      HML_ASSIGN_OR_RETURN(output, NewValue(ch.out, Layout::kNhwc, {}, false, QuantParams()));
    }
  }
  xnn_status status;
  const char* call;
  switch (s.kind) {
    case OpKind::kMaxPool:
    case OpKind::kGlobalMaxPool:
      call = "xnn_define_max_pooling_2d";
      status = xnn_define_max_pooling_2d(subgraph_, s.pad_top, s.pad_right, s.pad_bottom,
                                         s.pad_left, s.kh, s.kw, s.sh, s.sw, s.dh, s.dw, ch.min,
                                         ch.max, input, output, 0);
      break;
    case OpKind::kAveragePool:
      call = "xnn_define_average_pooling_2d";
      status =
          xnn_define_average_pooling_2d(subgraph_, s.pad_top, s.pad_right, s.pad_bottom, s.pad_left,
                                        s.kh, s.kw, s.sh, s.sw, ch.min, ch.max, input, output, 0);
      break;
    default:
      call = "xnn_define_global_average_pooling_2d";
      status = xnn_define_global_average_pooling_2d(subgraph_, ch.min, ch.max, input, output, 0);
      break;
  }
  HML_RETURN_IF_ERROR(Check(status, call, n));
  ++num_nodes_;
  if (int8_native && !ch.quant) {
    HML_ASSIGN_OR_RETURN(uint32_t y,
                         NewValue(s.y, Layout::kNhwc, {}, true, *analysis_.qparams(s.y)));
    HML_RETURN_IF_ERROR(Convert(output, y, n).status());
  }
  return Status::Ok();
}

Status SubgraphBuilder::EmitBinary(const Chain& ch, const BinarySpec& s) {
  const int n = ch.compute;
  const size_t out_rank = value(s.y).shape.size();
  HML_ASSIGN_OR_RETURN(uint32_t a, ElementwiseOperand(s.a, out_rank, ch.quant, n));
  HML_ASSIGN_OR_RETURN(uint32_t b, ElementwiseOperand(s.b, out_rank, ch.quant, n));
  const Layout layout = out_rank == 4 ? Layout::kNhwc : Layout::kPlain;
  uint32_t out = kInvalid;
  if (ch.quant) {
    const QuantParams py = std::get<QuantizeSpec>(analysis_.Spec(ch.quantize)).params;
    HML_ASSIGN_OR_RETURN(out, NewValue(ch.out, layout, {}, true, py));
  } else {
    HML_ASSIGN_OR_RETURN(out, NewValue(ch.out, layout, {}, false, QuantParams()));
  }
  xnn_status status;
  const char* call;
  switch (s.kind) {
    case OpKind::kAdd:
      call = "xnn_define_add2";
      status = xnn_define_add2(subgraph_, ch.min, ch.max, a, b, out, 0);
      break;
    case OpKind::kSub:
      call = "xnn_define_subtract";
      status = xnn_define_subtract(subgraph_, ch.min, ch.max, a, b, out, 0);
      break;
    case OpKind::kMul:
      call = "xnn_define_multiply2";
      status = xnn_define_multiply2(subgraph_, ch.min, ch.max, a, b, out, 0);
      break;
    case OpKind::kDiv:
      call = "xnn_define_divide";
      status = xnn_define_divide(subgraph_, ch.min, ch.max, a, b, out, 0);
      break;
    case OpKind::kMax:
      call = "xnn_define_maximum2";
      status = xnn_define_maximum2(subgraph_, a, b, out, 0);
      break;
    default:
      call = "xnn_define_minimum2";
      status = xnn_define_minimum2(subgraph_, a, b, out, 0);
      break;
  }
  HML_RETURN_IF_ERROR(Check(status, call, n));
  ++num_nodes_;
  return Status::Ok();
}

Status SubgraphBuilder::EmitUnary(const Chain& ch, const UnarySpec& s) {
  const int n = ch.compute;
  HML_ASSIGN_OR_RETURN(uint32_t in, F32(s.x));
  const Shape flat = FlatSourceOf(s.x);
  HML_ASSIGN_OR_RETURN(uint32_t out, NewValue(s.y, LayoutOf(s.x), flat, false, QuantParams()));
  xnn_status status;
  const char* call;
  switch (s.kind) {
    case OpKind::kRelu:
    case OpKind::kClip:
      call = "xnn_define_clamp";
      status = xnn_define_clamp(subgraph_, s.min, s.max, in, out, 0);
      break;
    case OpKind::kLeakyRelu:
      call = "xnn_define_leaky_relu";
      status = xnn_define_leaky_relu(subgraph_, s.alpha, in, out, 0);
      break;
    case OpKind::kElu:
      call = "xnn_define_elu";
      status = xnn_define_elu(subgraph_, s.alpha, in, out, 0);
      break;
    case OpKind::kSigmoid:
      call = "xnn_define_sigmoid";
      status = xnn_define_sigmoid(subgraph_, in, out, 0);
      break;
    case OpKind::kHardSwish:
      call = "xnn_define_hardswish";
      status = xnn_define_hardswish(subgraph_, in, out, 0);
      break;
    case OpKind::kAbs:
      call = "xnn_define_abs";
      status = xnn_define_abs(subgraph_, in, out, 0);
      break;
    case OpKind::kNeg:
      call = "xnn_define_negate";
      status = xnn_define_negate(subgraph_, in, out, 0);
      break;
    case OpKind::kSqrt:
      call = "xnn_define_square_root";
      status = xnn_define_square_root(subgraph_, in, out, 0);
      break;
    default:
      return Internal(n, "not an elementwise unary op");
  }
  HML_RETURN_IF_ERROR(Check(status, call, n));
  ++num_nodes_;
  return Status::Ok();
}

Status SubgraphBuilder::EmitPRelu(const Chain& ch, const PReluSpec& s) {
  const int n = ch.compute;
  HML_ASSIGN_OR_RETURN(uint32_t in, F32(s.x));
  HML_ASSIGN_OR_RETURN(uint32_t slope, StaticF32(s.slope, {s.slope.size()}));
  HML_ASSIGN_OR_RETURN(uint32_t out, NewValue(s.y, Layout::kNhwc, {}, false, QuantParams()));
  HML_RETURN_IF_ERROR(Check(xnn_define_prelu(subgraph_, in, slope, out, 0), "xnn_define_prelu", n));
  ++num_nodes_;
  return Status::Ok();
}

Status SubgraphBuilder::EmitSoftmax(const Chain& ch, const SoftmaxSpec& s) {
  const int n = ch.compute;
  const Layout layout = LayoutOf(s.x);
  if (layout == Layout::kFlatNhwc) return Internal(n, "reads a flattened NHWC value");
  HML_ASSIGN_OR_RETURN(uint32_t in, F32(s.x));
  HML_ASSIGN_OR_RETURN(uint32_t out, NewValue(s.y, layout, {}, false, QuantParams()));
  if (s.flatten_from < 0) {
    HML_RETURN_IF_ERROR(Check(xnn_define_softmax(subgraph_, in, out, 0), "xnn_define_softmax", n));
    ++num_nodes_;
    return Status::Ok();
  }
  // Softmax over the flattened block: the XNNPACK dims from the axis on hold the same elements
  // in both layouts (the block is [C, H, W] or everything).
  const std::vector<size_t> dims = DimsOf(s.x, layout);
  const size_t axis = static_cast<size_t>(s.flatten_from);
  const std::vector<size_t> flat = {Product(dims, 0, axis), Product(dims, axis, dims.size())};
  HML_ASSIGN_OR_RETURN(uint32_t t1, NewTemp(flat, false, QuantParams()));
  HML_ASSIGN_OR_RETURN(uint32_t t2, NewTemp(flat, false, QuantParams()));
  HML_RETURN_IF_ERROR(
      Check(xnn_define_static_reshape(subgraph_, flat.size(), flat.data(), in, t1, 0),
            "xnn_define_static_reshape", n));
  HML_RETURN_IF_ERROR(Check(xnn_define_softmax(subgraph_, t1, t2, 0), "xnn_define_softmax", n));
  HML_RETURN_IF_ERROR(
      Check(xnn_define_static_reshape(subgraph_, dims.size(), dims.data(), t2, out, 0),
            "xnn_define_static_reshape", n));
  num_nodes_ += 3;
  return Status::Ok();
}

Status SubgraphBuilder::EmitBatchNorm(const Chain& ch, const BatchNormSpec& s) {
  const int n = ch.compute;
  const Layout layout = LayoutOf(s.x);
  if (layout == Layout::kFlatNhwc) return Internal(n, "reads a flattened NHWC value");
  HML_ASSIGN_OR_RETURN(uint32_t in, F32(s.x));
  HML_ASSIGN_OR_RETURN(uint32_t scale, ChannelConstant(s.scale, s.x));
  HML_ASSIGN_OR_RETURN(uint32_t shift, ChannelConstant(s.shift, s.x));
  HML_ASSIGN_OR_RETURN(uint32_t scaled, NewTemp(DimsOf(s.x, layout), false, QuantParams()));
  HML_ASSIGN_OR_RETURN(uint32_t out, NewValue(ch.out, layout, {}, false, QuantParams()));
  HML_RETURN_IF_ERROR(Check(xnn_define_multiply2(subgraph_, -kInf, kInf, in, scale, scaled, 0),
                            "xnn_define_multiply2", n));
  HML_RETURN_IF_ERROR(Check(xnn_define_add2(subgraph_, ch.min, ch.max, scaled, shift, out, 0),
                            "xnn_define_add2", n));
  num_nodes_ += 2;
  return Status::Ok();
}

Status SubgraphBuilder::EmitReshape(const Chain& ch, const ReshapeSpec& s) {
  const int n = ch.compute;
  const bool int8_native = value(s.x).dtype == DType::kInt8;
  const Layout in_layout = LayoutOf(s.x);
  Layout out_layout = value(s.y).shape.size() == 4 ? Layout::kNhwc : Layout::kPlain;
  Shape flat;
  if (value(s.x).shape == value(s.y).shape) {
    out_layout = in_layout;
    flat = FlatSourceOf(s.x);
  } else if (in_layout == Layout::kFlatNhwc) {
    return Internal(n, "reshapes a flattened NHWC value");
  } else if (s.flat_nhwc) {
    out_layout = Layout::kFlatNhwc;
    flat = value(s.x).shape;
  }
  uint32_t in = kInvalid, out = kInvalid;
  if (ch.quant) {
    const QuantParams p = int8_native ? *analysis_.qparams(s.x) : *analysis_.DequantizedFrom(s.x);
    HML_ASSIGN_OR_RETURN(in, Quant(s.x, p));
    HML_ASSIGN_OR_RETURN(out, NewValue(ch.out, out_layout, flat, true, p));
  } else {
    HML_ASSIGN_OR_RETURN(in, F32(s.x));
    HML_ASSIGN_OR_RETURN(out, NewValue(ch.out, out_layout, flat, false, QuantParams()));
  }
  const std::vector<size_t> dims = DimsOf(ch.out, out_layout);
  HML_RETURN_IF_ERROR(
      Check(xnn_define_static_reshape(subgraph_, dims.size(), dims.data(), in, out, 0),
            "xnn_define_static_reshape", n));
  ++num_nodes_;
  return Status::Ok();
}

Status SubgraphBuilder::EmitPad(const Chain& ch, const PadSpec& s) {
  const int n = ch.compute;
  const Layout layout = LayoutOf(s.x);
  if (layout == Layout::kFlatNhwc) return Internal(n, "pads a flattened NHWC value");
  HML_ASSIGN_OR_RETURN(uint32_t in, F32(s.x));
  HML_ASSIGN_OR_RETURN(uint32_t out, NewValue(s.y, layout, {}, false, QuantParams()));
  std::vector<size_t> pre = ToDims(s.pre);
  std::vector<size_t> post = ToDims(s.post);
  if (layout == Layout::kNhwc) {
    pre = {pre[0], pre[2], pre[3], pre[1]};
    post = {post[0], post[2], post[3], post[1]};
  }
  HML_RETURN_IF_ERROR(
      Check(xnn_define_static_constant_pad(subgraph_, pre.data(), post.data(), s.value, in, out, 0),
            "xnn_define_static_constant_pad", n));
  ++num_nodes_;
  return Status::Ok();
}

Status SubgraphBuilder::EmitResize(const Chain& ch, const ResizeSpec& s) {
  const int n = ch.compute;
  HML_ASSIGN_OR_RETURN(uint32_t in, F32(s.x));
  HML_ASSIGN_OR_RETURN(uint32_t out, NewValue(s.y, Layout::kNhwc, {}, false, QuantParams()));
  uint32_t flags = 0;
  if (s.align_corners) flags |= XNN_FLAG_ALIGN_CORNERS;
  if (s.asymmetric) flags |= XNN_FLAG_TENSORFLOW_LEGACY_MODE;
  HML_RETURN_IF_ERROR(
      Check(xnn_define_static_resize_bilinear_2d(subgraph_, static_cast<size_t>(s.out_h),
                                                 static_cast<size_t>(s.out_w), in, out, flags),
            "xnn_define_static_resize_bilinear_2d", n));
  ++num_nodes_;
  return Status::Ok();
}

Status SubgraphBuilder::EmitQuantize(const Chain& ch, const QuantizeSpec& s) {
  HML_ASSIGN_OR_RETURN(uint32_t in, F32(s.x));
  const Shape flat = FlatSourceOf(s.x);
  HML_ASSIGN_OR_RETURN(uint32_t out, NewValue(s.y, LayoutOf(s.x), flat, true, s.params));
  return Convert(in, out, ch.compute).status();
}

Status SubgraphBuilder::EmitDequantize(const Chain& ch, const DequantizeSpec& s) {
  if (s.constant) return Status::Ok();  // a constant operand; see Finish() for outputs
  ValueState& st = states_[s.y];
  st.layout_known = true;
  st.layout = LayoutOf(s.x);
  st.flat_source = FlatSourceOf(s.x);
  st.dq_source = s.x;
  st.dq_params = s.params;
  // Materialised lazily, except when the session reads it.
  if (in_segment_outputs_.count(s.y)) return F32(s.y).status();
  return Status::Ok();
}

Status SubgraphBuilder::Emit(const Chain& ch) {
  const NodeSpec& spec = analysis_.Spec(ch.compute);
  if (const auto* s = std::get_if<ConvSpec>(&spec)) return EmitConv(ch, *s);
  if (const auto* s = std::get_if<FcSpec>(&spec)) return EmitFc(ch, *s);
  if (const auto* s = std::get_if<PoolSpec>(&spec)) return EmitPool(ch, *s);
  if (const auto* s = std::get_if<BinarySpec>(&spec)) return EmitBinary(ch, *s);
  if (const auto* s = std::get_if<UnarySpec>(&spec)) return EmitUnary(ch, *s);
  if (const auto* s = std::get_if<PReluSpec>(&spec)) return EmitPRelu(ch, *s);
  if (const auto* s = std::get_if<SoftmaxSpec>(&spec)) return EmitSoftmax(ch, *s);
  if (const auto* s = std::get_if<BatchNormSpec>(&spec)) return EmitBatchNorm(ch, *s);
  if (const auto* s = std::get_if<ReshapeSpec>(&spec)) return EmitReshape(ch, *s);
  if (const auto* s = std::get_if<PadSpec>(&spec)) return EmitPad(ch, *s);
  if (const auto* s = std::get_if<ResizeSpec>(&spec)) return EmitResize(ch, *s);
  if (const auto* s = std::get_if<QuantizeSpec>(&spec)) return EmitQuantize(ch, *s);
  if (const auto* s = std::get_if<DequantizeSpec>(&spec)) return EmitDequantize(ch, *s);
  return Internal(ch.compute, "was not claimed by the XNNPACK backend");
}

Status SubgraphBuilder::Finish() {
  for (ValueId v : segment_.outputs) {
    if (external_defined_.count(v)) continue;
    // A DequantizeLinear over constants read outside the segment: copy its values every run.
    std::optional<ConstOperand> c = GetConstOperand(graph_, analysis_.producers(), v);
    if (!c || value(v).is_constant()) {
      return InternalError("XNNPACK backend: segment output '" + value(v).name +
                           "' is not produced by the segment");
    }
    void* session = segment_.buffers[static_cast<size_t>(v)];
    if (session == nullptr) {
      return InternalError("XNNPACK backend: segment output '" + value(v).name + "' has no buffer");
    }
    const std::vector<float> data = c->ToFloat();
    HML_ASSIGN_OR_RETURN(void* p, Own(data.data(), data.size() * sizeof(float)));
    BoundaryCopy copy;
    copy.src = p;
    copy.dst = session;
    copy.bytes = data.size() * sizeof(float);
    exe_->outputs_.push_back(copy);
  }
  return Status::Ok();
}

Result<std::unique_ptr<Executable>> SubgraphBuilder::Build(BuildReport* report) {
  const size_t num_nodes = graph_.nodes.size();
  in_segment_.assign(num_nodes, false);
  absorbed_.assign(num_nodes, false);
  for (int n : segment_.nodes) {
    if (n < 0 || static_cast<size_t>(n) >= num_nodes) {
      return InvalidArgumentError("XNNPACK backend: segment node index out of range");
    }
    if (!analysis_.Claimed(n)) {
      return InvalidArgumentError("XNNPACK backend: " + Describe(n) +
                                  " was not claimed by this backend");
    }
    in_segment_[static_cast<size_t>(n)] = true;
  }
  if (segment_.nodes.empty()) return InvalidArgumentError("XNNPACK backend: empty segment");
  description_ = "segment of " + std::to_string(segment_.nodes.size()) + " nodes from " +
                 Describe(segment_.nodes.front());
  in_segment_inputs_.insert(segment_.inputs.begin(), segment_.inputs.end());
  in_segment_outputs_.insert(segment_.outputs.begin(), segment_.outputs.end());
  for (ValueId v : segment_.inputs) {
    if (static_cast<size_t>(v) >= segment_.buffers.size()) {
      return InvalidArgumentError("XNNPACK backend: no buffer slot for input '" + value(v).name +
                                  "'");
    }
  }
  for (ValueId v : segment_.outputs) {
    if (static_cast<size_t>(v) >= segment_.buffers.size()) {
      return InvalidArgumentError("XNNPACK backend: no buffer slot for output '" + value(v).name +
                                  "'");
    }
  }
  const auto external_count =
      static_cast<uint32_t>(segment_.inputs.size() + segment_.outputs.size());
  HML_RETURN_IF_ERROR(
      Check(xnn_create_subgraph(external_count, 0, &subgraph_), "xnn_create_subgraph", -1));
  Plan();
  for (int n : segment_.nodes) {
    if (absorbed_[static_cast<size_t>(n)]) continue;
    HML_RETURN_IF_ERROR(Emit(chains_[static_cast<size_t>(n)]));
  }
  HML_RETURN_IF_ERROR(Finish());
  if (report != nullptr) {
    *report = BuildReport();
    for (int n : segment_.nodes) {
      const Chain& ch = chains_[static_cast<size_t>(n)];
      if (absorbed_[static_cast<size_t>(n)]) {
        report->fused_nodes.push_back(n);
      } else if (ch.quant) {
        report->quantized_nodes.push_back(n);
      }
    }
    report->xnn_nodes = num_nodes_;
  }
  exe_->threadpool_ = options_.threadpool;
  exe_->description_ = description_;
  if (num_nodes_ > 0) {
    xnn_runtime_t runtime = nullptr;
    HML_RETURN_IF_ERROR(
        Check(xnn_create_runtime_v2(subgraph_, options_.threadpool.get(), 0, &runtime),
              "xnn_create_runtime_v2", -1));
    exe_->runtime_.reset(runtime);
    HML_RETURN_IF_ERROR(Check(xnn_setup_runtime(runtime, externals_.size(), externals_.data()),
                              "xnn_setup_runtime", -1));
  }
  return std::unique_ptr<Executable>(std::move(exe_));
}

}  // namespace

Result<std::unique_ptr<Executable>> BuildExecutable(const Segment& segment,
                                                    const GraphAnalysis& analysis,
                                                    const CompileOptions& options,
                                                    BuildReport* report) {
  SubgraphBuilder builder(segment, analysis, options);
  return builder.Build(report);
}

}  // namespace hml::runtime::xnnpack

// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// What the XNNPACK backend can run, decided once per node and shared by Claim() and Compile():
// a Match function turns a node into a spec (resolved attributes, constants, shapes) or says no.
// Claim() asks whether a spec exists; Compile() builds XNNPACK nodes from the same spec, so the two
// cannot disagree.
//
// fp32 nodes matched (all shapes static, no empty tensors, ranks 1..6):
//   Conv / ConvTranspose 2-D      constant weights (and bias); any group count; depthwise when
//                                 group == C_in > 1; ConvTranspose with output_padding < stride.
//   Gemm                          transA = 0, constant B, C constant and broadcast over rows only
//                                 ([N], [1,N], [1], []); alpha/beta folded into the constants.
//   MatMul                        A of rank 2, 3, 5 or 6 (rank 4 would be NHWC), constant 2-D B.
//   Add Sub Mul Div Max Min       two inputs, numpy broadcasting (not the opset < 7 legacy
//                                 broadcast attribute), output rank <= 4; a
//                                 non-constant operand of lower rank than a rank-4 output only
//                                 when its NCHW and NHWC orders agree.
//   Relu Clip LeakyRelu Sigmoid HardSwish Elu Abs Neg Sqrt   (Clip bounds constant,
//                                 min < max)
//   PRelu                         opset >= 7, rank-4 input, constant slope per channel or scalar.
//   Softmax                       opset >= 13: the last axis (axis 1 of a rank-4 value, which is
//                                 last in NHWC); opset < 13: any axis of a non-rank-4 value,
//                                 axis 0 or 1 of a rank-4 value (softmax over a flattened block
//                                 does not depend on the order inside the block).
//   MaxPool / AveragePool 2-D     window area > 1, pads < window; MaxPool ceil_mode as extra end
//                                 padding; AveragePool only where XNNPACK's divisor (valid
//                                 elements) agrees: count_include_pad = 0 or no padding, and
//                                 ceil_mode only when it does not change the output size.
//   GlobalAveragePool, GlobalMaxPool   rank 4 (GlobalMaxPool with H*W > 1).
//   BatchNormalization            inference form with constant parameters (a multiply and an add).
//   Reshape Flatten Squeeze Unsqueeze Identity   when element order is the same in NCHW and NHWC
//                                 for every rank-4 side, or when a rank-4 value is flattened to
//                                 [N, C*H*W] and every reader is (through elementwise unary nodes)
//                                 a matched Gemm/MatMul taking it as A: then the weight columns
//                                 are permuted at compile time.
//   Pad                           mode constant, non-negative pads, constant value (read
//                                 through ResolvePad, like the reference).
//   Resize / Upsample             rank 4, mode linear over H and W only, coordinate modes
//                                 half_pixel, pytorch_half_pixel (output > 1), align_corners,
//                                 asymmetric; scales equal to output/input (XNNPACK derives the
//                                 map from the sizes). Read through ResolveResize.
//
// int8 (ONNX QDQ and QOperator forms; int8 activations with per-tensor parameters):
//   QuantizeLinear                fp32 -> int8, scalar scale and int8 zero point.
//   DequantizeLinear              int8 activation -> fp32 (scalar parameters); or over a constant
//                                 (int8/uint8/int32, per-tensor or per-axis): a constant.
//   QLinearConv, QLinearMatMul    int8 activations, constant int8 weights.
//   int8 Reshape-family, MaxPool  when the int8 value's parameters are known.
// The quantization parameters of every int8 activation are resolved over the whole graph
// (producers Q/QLinear*, readers DQ/QLinear*, and the parameter-preserving Reshape-family and
// MaxPool); a value with conflicting or unknown parameters is left to the reference backend.
// How QDQ patterns run as XNNPACK qs8 nodes is decided at compile time (subgraph_builder.h).
#ifndef HML_SRC_RUNTIME_BACKENDS_XNNPACK_NODE_SPECS_H_
#define HML_SRC_RUNTIME_BACKENDS_XNNPACK_NODE_SPECS_H_

#include <cstdint>
#include <optional>
#include <variant>
#include <vector>

#include "src/runtime/graph.h"
#include "src/runtime/ops/window_params.h"

namespace hml::runtime::xnnpack {

enum class OpKind {
  kUnsupported,
  kConv,
  kConvTranspose,
  kQLinearConv,
  kGemm,
  kMatMul,
  kQLinearMatMul,
  kAdd,
  kSub,
  kMul,
  kDiv,
  kMax,
  kMin,
  kRelu,
  kClip,
  kLeakyRelu,
  kSigmoid,
  kHardSwish,
  kElu,
  kAbs,
  kNeg,
  kSqrt,
  kPRelu,
  kSoftmax,
  kMaxPool,
  kAveragePool,
  kGlobalAveragePool,
  kGlobalMaxPool,
  kBatchNorm,
  kReshape,  // Reshape, Flatten, Squeeze, Unsqueeze, Identity
  kPad,
  kResize,
  kQuantize,
  kDequantize,
};

// The kind of `node` by op type and domain; kUnsupported for anything else.
OpKind KindOf(const Node& node);
// Elementwise unary kinds: layout-agnostic, output layout = input layout.
bool IsUnaryKind(OpKind kind);

// Per-tensor quantization of an int8 activation.
struct QuantParams {
  float scale = 1.0f;
  int32_t zero_point = 0;
  bool operator==(const QuantParams&) const = default;
};

// A constant operand: a graph constant, or a DequantizeLinear over constants, or the weights of
// a QLinear* node. Values are raw (fp32) or (raw - zero_point) * scale, per tensor or per axis.
struct ConstOperand {
  const Tensor* raw = nullptr;       // fp32, int8, uint8 or int32
  std::vector<float> scales;         // empty: raw is fp32 and used as is
  std::vector<int32_t> zero_points;  // same length as scales
  int axis = -1;                     // axis of the parameters when there are several

  const Shape& shape() const { return raw->shape(); }
  int64_t num_elements() const { return raw->num_elements(); }
  bool quantized() const { return !scales.empty(); }
  // The real values.
  std::vector<float> ToFloat() const;
  // True when raw is int8 with zero points 0 and per-tensor scales or scales along
  // `channel_axis`: the form XNNPACK's qint8/qcint8 filters take.
  bool SymmetricInt8(int channel_axis) const;
  // Scale of channel `c` along the parameter axis (the only scale when per-tensor).
  float ScaleOf(int64_t c) const { return scales.size() == 1 ? scales[0] : scales[c]; }
};

// Whether `v` is a constant operand (see ConstOperand) and, if so, its data.
std::optional<ConstOperand> GetConstOperand(const Graph& graph, const std::vector<int>& producers,
                                            ValueId v);

struct ConvSpec {
  OpKind kind = OpKind::kConv;  // kConv, kConvTranspose or kQLinearConv
  ValueId x = kNoValue;
  ValueId y = kNoValue;
  WindowParams win;
  int64_t n = 0, c_in = 0, c_out = 0, groups = 1;
  int64_t in_h = 0, in_w = 0, out_h = 0, out_w = 0;
  bool depthwise = false;
  ConstOperand weights;  // ONNX layout
  std::optional<ConstOperand> bias;
  QuantParams x_params, y_params;  // kQLinearConv only
};

struct FcSpec {
  OpKind kind = OpKind::kGemm;  // kGemm, kMatMul or kQLinearMatMul
  ValueId a = kNoValue;
  ValueId y = kNoValue;
  int64_t k = 0, n = 0;
  ConstOperand b;
  bool b_is_nk = false;  // B stored [N, K] (Gemm transB = 1) rather than [K, N]
  float alpha = 1.0f;
  std::optional<ConstOperand> bias;  // numel N or 1; multiplied by beta
  float beta = 1.0f;
  QuantParams a_params, y_params;  // kQLinearMatMul only
};

struct PoolSpec {
  OpKind kind = OpKind::kMaxPool;  // kMaxPool, kAveragePool, kGlobalAveragePool, kGlobalMaxPool
  ValueId x = kNoValue;
  ValueId y = kNoValue;
  uint32_t pad_top = 0, pad_right = 0, pad_bottom = 0, pad_left = 0;
  uint32_t kh = 1, kw = 1, sh = 1, sw = 1, dh = 1, dw = 1;
};

struct BinarySpec {
  OpKind kind = OpKind::kAdd;
  ValueId a = kNoValue, b = kNoValue, y = kNoValue;
};

struct UnarySpec {
  OpKind kind = OpKind::kRelu;
  ValueId x = kNoValue, y = kNoValue;
  float min = 0.0f, max = 0.0f;  // kRelu, kClip
  float alpha = 0.0f;            // kLeakyRelu, kElu
};

struct PReluSpec {
  ValueId x = kNoValue, y = kNoValue;
  std::vector<float> slope;  // one per channel
};

struct SoftmaxSpec {
  ValueId x = kNoValue, y = kNoValue;
  // The softmax runs over the trailing dims from this ONNX axis on, flattened (-1: last only).
  int flatten_from = -1;
};

struct BatchNormSpec {
  ValueId x = kNoValue, y = kNoValue;
  std::vector<float> scale, shift;  // per channel: y = x * scale + shift
};

struct ReshapeSpec {
  ValueId x = kNoValue, y = kNoValue;
  // The input is rank 4 with different NCHW/NHWC orders and the output its [N, C*H*W]
  // flattening, read only by fully-connected nodes: the output is kFlatNhwc.
  bool flat_nhwc = false;
};

struct PadSpec {
  ValueId x = kNoValue, y = kNoValue;
  std::vector<int64_t> pre, post;  // ONNX dim order
  float value = 0.0f;
};

struct ResizeSpec {
  ValueId x = kNoValue, y = kNoValue;
  int64_t out_h = 0, out_w = 0;
  bool align_corners = false;
  bool asymmetric = false;  // XNNPACK's TensorFlow legacy mode
};

struct QuantizeSpec {
  ValueId x = kNoValue, y = kNoValue;
  QuantParams params;
};

struct DequantizeSpec {
  ValueId x = kNoValue, y = kNoValue;
  bool constant = false;  // over a constant: the output is a constant operand
  QuantParams params;     // activations only
};

using NodeSpec = std::variant<std::monostate, ConvSpec, FcSpec, PoolSpec, BinarySpec, UnarySpec,
                              PReluSpec, SoftmaxSpec, BatchNormSpec, ReshapeSpec, PadSpec,
                              ResizeSpec, QuantizeSpec, DequantizeSpec>;

// The facts about a graph that matching needs: producers, readers, and the resolved quantization
// parameters of int8 activations. Built once per Claim()/Compile(); cheap.
class GraphAnalysis {
 public:
  explicit GraphAnalysis(const Graph& graph);

  const Graph& graph() const { return graph_; }
  const std::vector<int>& producers() const { return producers_; }
  // Index of the node producing `v`, or -1.
  int producer(ValueId v) const { return producers_[static_cast<size_t>(v)]; }
  // Nodes reading `v` (each once, in graph order).
  const std::vector<int>& readers(ValueId v) const { return readers_[static_cast<size_t>(v)]; }
  // Node inputs + graph outputs reading `v`.
  int use_count(ValueId v) const { return use_counts_[static_cast<size_t>(v)]; }
  bool is_graph_output(ValueId v) const { return graph_output_[static_cast<size_t>(v)]; }
  // Resolved per-tensor parameters of a non-constant int8 value, if unique and known.
  const std::optional<QuantParams>& qparams(ValueId v) const {
    return qparams_[static_cast<size_t>(v)];
  }

  // The spec of node `n`, or monostate when XNNPACK does not run it. Memoised.
  const NodeSpec& Spec(int n) const;
  bool Claimed(int n) const { return !std::holds_alternative<std::monostate>(Spec(n)); }

  // The parameters of the int8 value a float value is dequantized from: `v` is the output of a
  // matched DequantizeLinear over a non-constant int8 value. Empty otherwise.
  std::optional<QuantParams> DequantizedFrom(ValueId v, ValueId* source = nullptr) const;

  // Flatten case of the Reshape family: every reader of `v` (through matched elementwise unary,
  // QuantizeLinear and DequantizeLinear nodes) is a matched fully-connected node reading it as
  // its A operand.
  bool OnlyFullyConnectedReaders(ValueId v) const;

 private:
  NodeSpec Match(int n) const;
  void ResolveQuantParams();

  const Graph& graph_;
  std::vector<int> producers_;
  std::vector<std::vector<int>> readers_;
  std::vector<int> use_counts_;
  std::vector<bool> graph_output_;
  std::vector<std::optional<QuantParams>> qparams_;
  mutable std::vector<std::optional<NodeSpec>> specs_;
};

}  // namespace hml::runtime::xnnpack

#endif  // HML_SRC_RUNTIME_BACKENDS_XNNPACK_NODE_SPECS_H_

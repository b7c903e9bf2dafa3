// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The "nn" op group: convolutions, pooling, Gemm/MatMul, BatchNormalization, Softmax/LogSoftmax
// and the quantized ops (QuantizeLinear, DequantizeLinear, QLinearConv, QLinearMatMul).
// Semantics follow the ONNX operator spec for opsets 7-17. Each inference function validates
// everything a kernel will rely on (ranks, dtypes, channel counts, parameter shapes), so the
// kernels only re-check what they need for memory safety.
#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "src/runtime/op_registry.h"
#include "src/runtime/ops/op_util.h"
#include "src/runtime/ops/window_params.h"

namespace hml::runtime {
namespace {

// "input 1 ('W')" for error messages.
std::string InputName(const InferContext& ctx, size_t i) {
  return "input " + std::to_string(i) + " ('" + ctx.input(i).name + "')";
}

// Checks that present input `i` has one of `allowed` dtypes. A dtype hybridml knows but the op
// does not accept is InvalidArgument (the model is wrong for this op).
Status ExpectDType(const InferContext& ctx, size_t i, DTypeSet allowed) {
  const DType d = ctx.input(i).dtype;
  if (allowed.Contains(d)) return Status::Ok();
  return ctx.Error(InputName(ctx, i) + " has dtype " + std::string(DTypeName(d)) + "; expected " +
                   allowed.Names());
}

int Rank(const InferContext& ctx, size_t i) { return static_cast<int>(ctx.input(i).shape.size()); }

int64_t NumElements(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// A per-tensor scale or zero point: one element, rank <= 1.
bool IsPerTensor(const Shape& shape) { return NumElements(shape) == 1 && shape.size() <= 1; }

// Rejects input shapes whose non-zero dims multiply beyond the tensor limit. A tensor with a
// zero dim has no elements whatever its other dims are, so without this check products of
// sub-ranges of its dims (which kernels compute) could overflow.
Status CheckInputShapes(const InferContext& ctx) {
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    if (!ctx.has_input(i)) continue;
    Shape s = ctx.input(i).shape;
    for (int64_t& d : s) d = std::max<int64_t>(d, 1);
    auto n = CheckedNumElements(s, ctx.input(i).dtype);
    if (!n.ok()) return ctx.Error(InputName(ctx, i) + ": " + std::string(n.status().message()));
  }
  return Status::Ok();
}

// Normalizes `axis` against `rank` (negative counts from the back).
Result<int64_t> NormalizeAxis(const InferContext& ctx, int64_t axis, int rank) {
  if (axis < -rank || axis >= rank) {
    return ctx.Error("axis " + std::to_string(axis) + " is out of range for rank " +
                     std::to_string(rank));
  }
  return axis < 0 ? axis + rank : axis;
}

// Numpy broadcasting of two shapes, right-aligned.
Result<Shape> BroadcastShapes(const InferContext& ctx, const Shape& a, const Shape& b) {
  const size_t rank = std::max(a.size(), b.size());
  Shape out(rank);
  for (size_t i = 0; i < rank; ++i) {
    const int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    const int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    if (da != db && da != 1 && db != 1) {
      return ctx.Error("shapes " + ShapeToString(a) + " and " + ShapeToString(b) +
                       " cannot be broadcast");
    }
    out[i] = da == 1 ? db : da;
  }
  return out;
}

// The output shape of numpy.matmul(a, b): 1-D operands are promoted (a to [1, K], b to [K, 1])
// and the promoted dim removed again; batch dims broadcast.
Result<Shape> MatMulShape(const InferContext& ctx, const Shape& a, const Shape& b) {
  if (a.empty() || b.empty()) {
    return ctx.Error("MatMul operands must have rank >= 1, got " + ShapeToString(a) + " and " +
                     ShapeToString(b));
  }
  const Shape pa = a.size() == 1 ? Shape{1, a[0]} : a;
  const Shape pb = b.size() == 1 ? Shape{b[0], 1} : b;
  const int64_t ka = pa[pa.size() - 1];
  const int64_t kb = pb[pb.size() - 2];
  if (ka != kb) {
    return ctx.Error("inner dimensions differ: " + ShapeToString(a) + " x " + ShapeToString(b));
  }
  HML_ASSIGN_OR_RETURN(Shape out, BroadcastShapes(ctx, Shape(pa.begin(), pa.end() - 2),
                                                  Shape(pb.begin(), pb.end() - 2)));
  if (a.size() != 1) out.push_back(pa[pa.size() - 2]);
  if (b.size() != 1) out.push_back(pb[pb.size() - 1]);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Convolutions.

// Checks that input `i` is [N, C, spatial...].
Status CheckSpatialInput(const InferContext& ctx, size_t i) {
  const Shape& xs = ctx.input(i).shape;
  if (xs.size() >= 3) return Status::Ok();
  return ctx.Error(InputName(ctx, i) + " must have rank >= 3 ([N, C, spatial...]), got " +
                   ShapeToString(xs));
}

// Checks the ranks of a convolution's data input `x` and weight `w` and returns its group
// attribute, validated to be in [1, kMaxTensorBytes].
Result<int64_t> ConvGroup(const InferContext& ctx, size_t x, size_t w) {
  HML_RETURN_IF_ERROR(CheckSpatialInput(ctx, x));
  const Shape& xs = ctx.input(x).shape;
  const Shape& ws = ctx.input(w).shape;
  if (ws.size() != xs.size()) {
    return ctx.Error("weight " + ShapeToString(ws) + " must have the rank of the input " +
                     ShapeToString(xs));
  }
  const int64_t group = ctx.attrs().GetInt("group", 1);
  if (group <= 0 || group > kMaxTensorBytes) {
    return ctx.Error("group " + std::to_string(group) + " is out of range");
  }
  return group;
}

// Checks a convolution's optional bias input `b`: dtype `dtype` and shape [`m`].
Status CheckConvBias(const InferContext& ctx, size_t b, DType dtype, int64_t m) {
  if (!ctx.has_input(b)) return Status::Ok();
  HML_RETURN_IF_ERROR(ExpectDType(ctx, b, {dtype}));
  const Shape& bs = ctx.input(b).shape;
  if (bs.size() != 1 || bs[0] != m) {
    return ctx.Error("bias " + ShapeToString(bs) + " must have shape [" + std::to_string(m) + "]");
  }
  return Status::Ok();
}

// Validates a Conv-like node (Conv, QLinearConv) with data input `x`, weight `w` ([M, C/group,
// k...]) and optional bias `b` ([M]), and sets output 0 to [N, M, out...] of `out_dtype`.
Status InferConvLike(InferContext& ctx, size_t x, size_t w, size_t b, DType bias_dtype,
                     DType out_dtype) {
  HML_ASSIGN_OR_RETURN(const int64_t group, ConvGroup(ctx, x, w));
  const Shape& xs = ctx.input(x).shape;
  const Shape& ws = ctx.input(w).shape;
  if (ws[1] * group != xs[1]) {
    return ctx.Error("input channels " + std::to_string(xs[1]) + " != weight dim 1 (" +
                     std::to_string(ws[1]) + ") * group (" + std::to_string(group) + "); weight " +
                     ShapeToString(ws));
  }
  const int64_t m = ws[0];
  if (m % group != 0) {
    return ctx.Error("output channels " + std::to_string(m) + " are not divisible by group " +
                     std::to_string(group));
  }
  HML_RETURN_IF_ERROR(CheckConvBias(ctx, b, bias_dtype, m));
  HML_ASSIGN_OR_RETURN(WindowParams p,
                       ResolveWindow(ctx.node(), WindowKind::kConv, xs,
                                     std::vector<int64_t>(ws.begin() + 2, ws.end())));
  ctx.SetOutput(0, out_dtype, WindowOutputShape(xs[0], m, p));
  return Status::Ok();
}

Status InferConv(InferContext& ctx) {
  HML_RETURN_IF_ERROR(CheckInputShapes(ctx));
  HML_RETURN_IF_ERROR(ExpectDType(ctx, 0, {DType::kFloat32}));
  HML_RETURN_IF_ERROR(ExpectDType(ctx, 1, {DType::kFloat32}));
  return InferConvLike(ctx, 0, 1, 2, DType::kFloat32, DType::kFloat32);
}

Status InferConvTranspose(InferContext& ctx) {
  HML_RETURN_IF_ERROR(CheckInputShapes(ctx));
  HML_RETURN_IF_ERROR(ExpectDType(ctx, 0, {DType::kFloat32}));
  HML_RETURN_IF_ERROR(ExpectDType(ctx, 1, {DType::kFloat32}));
  HML_ASSIGN_OR_RETURN(const int64_t group, ConvGroup(ctx, 0, 1));
  const Shape& xs = ctx.input(0).shape;
  const Shape& ws = ctx.input(1).shape;
  if (ws[0] != xs[1]) {
    return ctx.Error("input channels " + std::to_string(xs[1]) + " != weight dim 0 (" +
                     std::to_string(ws[0]) + "); weight " + ShapeToString(ws) +
                     " must be [C, M/group, k...]");
  }
  if (xs[1] % group != 0) {
    return ctx.Error("input channels " + std::to_string(xs[1]) + " are not divisible by group " +
                     std::to_string(group));
  }
  const int64_t m = ws[1] * group;
  HML_RETURN_IF_ERROR(CheckConvBias(ctx, 2, DType::kFloat32, m));
  HML_ASSIGN_OR_RETURN(WindowParams p,
                       ResolveWindow(ctx.node(), WindowKind::kConvTranspose, xs,
                                     std::vector<int64_t>(ws.begin() + 2, ws.end())));
  for (size_t i = 0; i < p.output_padding.size(); ++i) {
    if (p.output_padding[i] >= std::max(p.strides[i], p.dilations[i])) {
      return ctx.Error("output_padding " + std::to_string(p.output_padding[i]) +
                       " must be smaller than the stride or the dilation of spatial axis " +
                       std::to_string(i));
    }
  }
  ctx.SetOutput(0, DType::kFloat32, WindowOutputShape(xs[0], m, p));
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// Gemm and MatMul.

Status InferGemm(InferContext& ctx) {
  HML_RETURN_IF_ERROR(CheckInputShapes(ctx));
  HML_RETURN_IF_ERROR(ExpectDType(ctx, 0, {DType::kFloat32}));
  HML_RETURN_IF_ERROR(ExpectDType(ctx, 1, {DType::kFloat32}));
  if (Rank(ctx, 0) != 2 || Rank(ctx, 1) != 2) {
    return ctx.Error("A " + ShapeToString(ctx.input(0).shape) + " and B " +
                     ShapeToString(ctx.input(1).shape) + " must both have rank 2");
  }
  const Shape& a = ctx.input(0).shape;
  const Shape& b = ctx.input(1).shape;
  const bool trans_a = ctx.attrs().GetInt("transA", 0) != 0;
  const bool trans_b = ctx.attrs().GetInt("transB", 0) != 0;
  const int64_t m = trans_a ? a[1] : a[0];
  const int64_t ka = trans_a ? a[0] : a[1];
  const int64_t kb = trans_b ? b[1] : b[0];
  const int64_t n = trans_b ? b[0] : b[1];
  if (ka != kb) {
    return ctx.Error("inner dimensions differ: A " + ShapeToString(a) + (trans_a ? "^T" : "") +
                     " x B " + ShapeToString(b) + (trans_b ? "^T" : ""));
  }
  if (ctx.has_input(2)) {
    HML_RETURN_IF_ERROR(ExpectDType(ctx, 2, {DType::kFloat32}));
    const Shape& c = ctx.input(2).shape;
    const Shape target = {m, n};
    bool ok = c.size() <= 2;
    for (size_t i = 0; ok && i < c.size(); ++i) {
      const int64_t t = target[2 - c.size() + i];
      ok = c[i] == 1 || c[i] == t;
    }
    if (!ok) {
      return ctx.Error("C " + ShapeToString(c) + " is not unidirectionally broadcastable to " +
                       ShapeToString(target));
    }
  }
  ctx.SetOutput(0, DType::kFloat32, {m, n});
  return Status::Ok();
}

Status InferMatMul(InferContext& ctx) {
  HML_RETURN_IF_ERROR(CheckInputShapes(ctx));
  HML_RETURN_IF_ERROR(ExpectDType(ctx, 0, {DType::kFloat32, DType::kInt32, DType::kInt64}));
  if (ctx.input(1).dtype != ctx.input(0).dtype) {
    return ctx.Error("A has dtype " + std::string(DTypeName(ctx.input(0).dtype)) +
                     " but B has dtype " + std::string(DTypeName(ctx.input(1).dtype)));
  }
  HML_ASSIGN_OR_RETURN(Shape out, MatMulShape(ctx, ctx.input(0).shape, ctx.input(1).shape));
  ctx.SetOutput(0, ctx.input(0).dtype, std::move(out));
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// Pooling.

// Sets output 0 (of input 0's dtype) and, for MaxPool, output 1 (int64 indices) of a pooling
// node.
Status InferPoolOutputs(InferContext& ctx) {
  HML_RETURN_IF_ERROR(CheckSpatialInput(ctx, 0));
  const Shape& xs = ctx.input(0).shape;
  if (!ctx.attrs().Has("kernel_shape")) return ctx.Error("attribute kernel_shape is required");
  HML_ASSIGN_OR_RETURN(WindowParams p, ResolveWindow(ctx.node(), WindowKind::kPool, xs, {}));
  const Shape out = WindowOutputShape(xs[0], xs[1], p);
  ctx.SetOutput(0, ctx.input(0).dtype, out);
  ctx.SetOutput(1, DType::kInt64, out);
  return Status::Ok();
}

Status InferMaxPool(InferContext& ctx) {
  HML_RETURN_IF_ERROR(CheckInputShapes(ctx));
  HML_RETURN_IF_ERROR(ExpectDType(ctx, 0, {DType::kFloat32, DType::kInt8, DType::kUInt8}));
  const int64_t storage_order = ctx.attrs().GetInt("storage_order", 0);
  if (storage_order != 0 && storage_order != 1) {
    return ctx.Error("storage_order " + std::to_string(storage_order) + " must be 0 or 1");
  }
  return InferPoolOutputs(ctx);
}

Status InferAveragePool(InferContext& ctx) {
  HML_RETURN_IF_ERROR(CheckInputShapes(ctx));
  HML_RETURN_IF_ERROR(ExpectDType(ctx, 0, {DType::kFloat32}));
  return InferPoolOutputs(ctx);
}

Status InferGlobalPool(InferContext& ctx) {
  HML_RETURN_IF_ERROR(CheckInputShapes(ctx));
  HML_RETURN_IF_ERROR(ExpectDType(ctx, 0, {DType::kFloat32}));
  HML_RETURN_IF_ERROR(CheckSpatialInput(ctx, 0));
  const Shape& xs = ctx.input(0).shape;
  Shape out(xs.size(), 1);
  out[0] = xs[0];
  out[1] = xs[1];
  ctx.SetOutput(0, DType::kFloat32, std::move(out));
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// BatchNormalization (inference only).

Status InferBatchNormalization(InferContext& ctx) {
  HML_RETURN_IF_ERROR(CheckInputShapes(ctx));
  // Opset 14+ says so with training_mode; before, a node asking for the running statistics
  // (outputs 1-4) is a training node.
  if (ctx.attrs().GetInt("training_mode", 0) != 0) {
    return Unimplemented(ctx, "training_mode=1 is not supported (inference only)");
  }
  for (size_t i = 1; i < ctx.num_outputs(); ++i) {
    if (ctx.has_output(i)) {
      return Unimplemented(ctx,
                           "training outputs (running mean/var, saved mean/var) are not "
                           "supported (inference only); output " +
                               std::to_string(i) + " was requested");
    }
  }
  for (size_t i = 0; i < 5; ++i) HML_RETURN_IF_ERROR(ExpectDType(ctx, i, {DType::kFloat32}));
  const Shape& xs = ctx.input(0).shape;
  if (xs.size() < 2) {
    return ctx.Error("input X must have rank >= 2 ([N, C, ...]), got " + ShapeToString(xs));
  }
  // Opsets before 9 have `spatial`: 0 means one statistic per (C, D1, ..., Dn) element.
  const bool spatial = ctx.opset() >= 9 || ctx.attrs().GetInt("spatial", 1) != 0;
  const Shape param = spatial ? Shape{xs[1]} : Shape(xs.begin() + 1, xs.end());
  for (size_t i = 1; i < 5; ++i) {
    const Shape& s = ctx.input(i).shape;
    // With spatial=0 a flattened [C * D1 * ... * Dn] parameter is accepted too.
    const bool ok = s == param || (!spatial && s.size() == 1 && s[0] == NumElements(param));
    if (!ok) {
      return ctx.Error(InputName(ctx, i) + " has shape " + ShapeToString(s) + "; expected " +
                       ShapeToString(param));
    }
  }
  ctx.SetOutput(0, DType::kFloat32, xs);
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// Softmax and LogSoftmax.

Status InferSoftmax(InferContext& ctx) {
  HML_RETURN_IF_ERROR(CheckInputShapes(ctx));
  HML_RETURN_IF_ERROR(ExpectDType(ctx, 0, {DType::kFloat32}));
  const Shape& xs = ctx.input(0).shape;
  if (xs.empty()) return ctx.Error("input must have rank >= 1");
  const int64_t axis = ctx.attrs().GetInt("axis", ctx.opset() >= 13 ? -1 : 1);
  // Before opset 13 the input is coerced to 2-D at `axis`, so axis == rank is allowed.
  const int rank = static_cast<int>(xs.size());
  if (ctx.opset() < 13 ? (axis < -rank || axis > rank) : (axis < -rank || axis >= rank)) {
    return ctx.Error("axis " + std::to_string(axis) + " is out of range for rank " +
                     std::to_string(rank));
  }
  ctx.SetOutput(0, DType::kFloat32, xs);
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// Quantization.

// Checks a (scale, zero point) pair of QuantizeLinear/DequantizeLinear against input `x_index`
// and returns whether it is per-axis.
Result<bool> CheckQuantParams(InferContext& ctx, size_t x_index, size_t scale_index,
                              size_t zp_index) {
  const Shape& xs = ctx.input(x_index).shape;
  const Shape& ss = ctx.input(scale_index).shape;
  HML_RETURN_IF_ERROR(ExpectDType(ctx, scale_index, {DType::kFloat32}));
  if (ctx.has_input(zp_index) && NumElements(ctx.input(zp_index).shape) != NumElements(ss)) {
    return ctx.Error("zero point " + ShapeToString(ctx.input(zp_index).shape) +
                     " must have the shape of the scale " + ShapeToString(ss));
  }
  if (IsPerTensor(ss)) return false;
  if (ctx.opset() < 13) {
    return ctx.Error("scale " + ShapeToString(ss) + " must be a scalar before opset 13");
  }
  if (ss.size() != 1) {
    return ctx.Error("scale " + ShapeToString(ss) +
                     " must be a scalar (per-tensor) or 1-D (per-axis)");
  }
  HML_ASSIGN_OR_RETURN(int64_t axis,
                       NormalizeAxis(ctx, ctx.attrs().GetInt("axis", 1), Rank(ctx, x_index)));
  if (xs[static_cast<size_t>(axis)] != ss[0]) {
    return ctx.Error("per-axis scale " + ShapeToString(ss) + " does not match dim " +
                     std::to_string(axis) + " of the input " + ShapeToString(xs));
  }
  return true;
}

Status InferQuantizeLinear(InferContext& ctx) {
  HML_RETURN_IF_ERROR(CheckInputShapes(ctx));
  HML_RETURN_IF_ERROR(ExpectDType(ctx, 0, {DType::kFloat32, DType::kInt32}));
  DType out = DType::kUInt8;
  if (ctx.has_input(2)) {
    HML_RETURN_IF_ERROR(ExpectDType(ctx, 2, kQuantizedDTypes));
    out = ctx.input(2).dtype;
  }
  HML_ASSIGN_OR_RETURN(bool per_axis, CheckQuantParams(ctx, 0, 1, 2));
  (void)per_axis;
  ctx.SetOutput(0, out, ctx.input(0).shape);
  return Status::Ok();
}

Status InferDequantizeLinear(InferContext& ctx) {
  HML_RETURN_IF_ERROR(CheckInputShapes(ctx));
  HML_RETURN_IF_ERROR(ExpectDType(ctx, 0, {DType::kUInt8, DType::kInt8, DType::kInt32}));
  if (ctx.has_input(2) && ctx.input(2).dtype != ctx.input(0).dtype) {
    return ctx.Error("zero point has dtype " + std::string(DTypeName(ctx.input(2).dtype)) +
                     " but x has dtype " + std::string(DTypeName(ctx.input(0).dtype)));
  }
  HML_ASSIGN_OR_RETURN(bool per_axis, CheckQuantParams(ctx, 0, 1, 2));
  (void)per_axis;
  ctx.SetOutput(0, DType::kFloat32, ctx.input(0).shape);
  return Status::Ok();
}

// Checks that input `i` holds exactly one element (a per-tensor scale or zero point).
Status ExpectSingleElement(const InferContext& ctx, size_t i) {
  const Shape& s = ctx.input(i).shape;
  if (IsPerTensor(s)) return Status::Ok();
  return Unimplemented(ctx, InputName(ctx, i) + " has shape " + ShapeToString(s) +
                                "; only per-tensor (scalar or [1]) is supported here");
}

// Checks the input shapes and dtypes of QLinearConv and QLinearMatMul, whose inputs are a,
// a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point (a and b named `a` and
// `b` in errors): quantized tensors, each zero point of its tensor's dtype, float32 scales.
Status CheckQLinearInputs(const InferContext& ctx, std::string_view a, std::string_view b) {
  HML_RETURN_IF_ERROR(CheckInputShapes(ctx));
  for (size_t i : {0, 3, 7}) HML_RETURN_IF_ERROR(ExpectDType(ctx, i, kQuantizedDTypes));
  for (size_t i : {1, 4, 6}) HML_RETURN_IF_ERROR(ExpectDType(ctx, i, kFloatDTypes));
  if (ctx.input(2).dtype != ctx.input(0).dtype || ctx.input(5).dtype != ctx.input(3).dtype) {
    const auto name = [&](size_t i) { return std::string(DTypeName(ctx.input(i).dtype)); };
    return ctx.Error("each zero point must have the dtype of its tensor (" + std::string(a) + " " +
                     name(0) + ", " + std::string(a) + "_zero_point " + name(2) + ", " +
                     std::string(b) + " " + name(3) + ", " + std::string(b) + "_zero_point " +
                     name(5) + ")");
  }
  return Status::Ok();
}

Status InferQLinearConv(InferContext& ctx) {
  // x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point, B.
  HML_RETURN_IF_ERROR(CheckQLinearInputs(ctx, "x", "w"));
  for (size_t i : {1, 2, 6, 7}) {
    const Shape& s = ctx.input(i).shape;
    if (!IsPerTensor(s)) {
      return ctx.Error(InputName(ctx, i) + " has shape " + ShapeToString(s) +
                       "; it must be a scalar (per-tensor)");
    }
  }
  const Shape& ws = ctx.input(3).shape;
  if (ws.empty()) return ctx.Error("weight must have rank >= 3");
  for (size_t i : {4, 5}) {
    const Shape& s = ctx.input(i).shape;
    const bool per_channel = s.size() == 1 && s[0] == ws[0];
    if (!IsPerTensor(s) && !per_channel) {
      return ctx.Error(InputName(ctx, i) + " has shape " + ShapeToString(s) +
                       "; it must be a scalar or [" + std::to_string(ws[0]) +
                       "] (one per output channel)");
    }
  }
  return InferConvLike(ctx, 0, 3, 8, DType::kInt32, ctx.input(7).dtype);
}

// Checks a QLinearMatMul scale or zero point of operand `m` (shape `ms`): per-tensor, or per-row
// of a (`rows`=true) / per-column of b, as 1-D [M] / [N] or as [..., M, 1] / [..., 1, N] whose
// leading dims equal the operand's batch dims or are all 1.
Status CheckQLinearMatMulParam(const InferContext& ctx, size_t i, const Shape& ms, bool rows) {
  const Shape& s = ctx.input(i).shape;
  if (IsPerTensor(s)) return Status::Ok();
  if (ms.size() < 2) {
    return ctx.Error(InputName(ctx, i) + " has shape " + ShapeToString(s) +
                     " but a 1-D operand only allows per-tensor parameters");
  }
  const int64_t len = rows ? ms[ms.size() - 2] : ms[ms.size() - 1];
  if (s.size() == 1) {
    if (s[0] == len) return Status::Ok();
  } else if (s.size() >= 2) {
    const int64_t r = s[s.size() - 2];
    const int64_t c = s[s.size() - 1];
    const bool inner_ok = rows ? (r == len && c == 1) : (r == 1 && c == len);
    const Shape lead(s.begin(), s.end() - 2);
    const Shape batch(ms.begin(), ms.end() - 2);
    const bool lead_ok = NumElements(lead) == 1 || lead == batch;
    if (inner_ok && lead_ok) return Status::Ok();
  }
  return Unimplemented(ctx, InputName(ctx, i) + " has shape " + ShapeToString(s) +
                                "; supported: scalar, [" + std::to_string(len) + "], or " +
                                (rows ? "[..., M, 1]" : "[..., 1, N]") +
                                " matching the operand's batch dims");
}

Status InferQLinearMatMul(InferContext& ctx) {
  // a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point.
  HML_RETURN_IF_ERROR(CheckQLinearInputs(ctx, "a", "b"));
  const Shape& as = ctx.input(0).shape;
  const Shape& bs = ctx.input(3).shape;
  for (size_t i : {1, 2}) HML_RETURN_IF_ERROR(CheckQLinearMatMulParam(ctx, i, as, true));
  for (size_t i : {4, 5}) HML_RETURN_IF_ERROR(CheckQLinearMatMulParam(ctx, i, bs, false));
  for (size_t i : {6, 7}) HML_RETURN_IF_ERROR(ExpectSingleElement(ctx, i));
  HML_ASSIGN_OR_RETURN(Shape out, MatMulShape(ctx, as, bs));
  ctx.SetOutput(0, ctx.input(7).dtype, std::move(out));
  return Status::Ok();
}

}  // namespace

void AddNnOps(OpRegistry& registry) {
  AddSchema(registry, "Conv", 2, 3, InferConv);
  AddSchema(registry, "ConvTranspose", 2, 3, InferConvTranspose);
  AddSchema(registry, "Gemm", 2, 3, InferGemm);
  AddSchema(registry, "MatMul", 2, 2, InferMatMul);
  AddSchema(registry, "MaxPool", 1, 1, InferMaxPool, 2);
  AddSchema(registry, "AveragePool", 1, 1, InferAveragePool);
  AddSchema(registry, "GlobalAveragePool", 1, 1, InferGlobalPool);
  AddSchema(registry, "GlobalMaxPool", 1, 1, InferGlobalPool);
  // Up to 5 outputs so that training nodes reach inference and get a clear Unimplemented.
  AddSchema(registry, "BatchNormalization", 5, 5, InferBatchNormalization, 5);
  AddSchema(registry, "Softmax", 1, 1, InferSoftmax);
  AddSchema(registry, "LogSoftmax", 1, 1, InferSoftmax);
  AddSchema(registry, "QuantizeLinear", 2, 3, InferQuantizeLinear);
  AddSchema(registry, "DequantizeLinear", 2, 3, InferDequantizeLinear);
  AddSchema(registry, "QLinearConv", 8, 9, InferQLinearConv);
  AddSchema(registry, "QLinearMatMul", 8, 8, InferQLinearMatMul);
}

}  // namespace hml::runtime

// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Schemas of the elementwise ops: arithmetic with numpy broadcasting, activations and float
// math functions, Clip, Cast, Identity and inference-mode Dropout.
#include <limits>
#include <string>

#include "src/runtime/op_registry.h"
#include "src/runtime/ops/broadcast.h"
#include "src/runtime/ops/op_util.h"

namespace hml::runtime {
namespace {

Status CheckType(const InferContext& ctx, size_t input, DTypeSet types) {
  const DType dtype = ctx.input(input).dtype;
  if (types.Contains(dtype)) return Status::Ok();
  return ctx.Error("input " + std::to_string(input) + " is " + std::string(DTypeName(dtype)) +
                   ", expected " + types.Names());
}

Status CheckSameType(const InferContext& ctx, size_t a, size_t b) {
  if (ctx.input(a).dtype == ctx.input(b).dtype) return Status::Ok();
  return ctx.Error("inputs " + std::to_string(a) + " (" +
                   std::string(DTypeName(ctx.input(a).dtype)) + ") and " + std::to_string(b) +
                   " (" + std::string(DTypeName(ctx.input(b).dtype)) +
                   ") must have the same element type");
}

// Output shape of a binary op whose inputs broadcast both ways (ONNX opset >= 7) or, before
// opset 7, with the legacy broadcast/axis attributes (B onto A).
Result<Shape> BinaryOutputShape(const InferContext& ctx) {
  const Shape& a = ctx.input(0).shape;
  const Shape& b = ctx.input(1).shape;
  if (ctx.opset() < 7) {
    HML_RETURN_IF_ERROR(LegacyBroadcastShape(ctx.node(), a, b).status());
    return a;
  }
  Result<Shape> out = BroadcastShapes(a, b);
  if (!out.ok()) return ctx.Error(out.status().message());
  return out;
}

// One input, same dtype and shape out.
template <DTypeSet kTypes>
Status InferUnary(InferContext& ctx) {
  HML_RETURN_IF_ERROR(RequireInputs(ctx, 1));
  HML_RETURN_IF_ERROR(CheckType(ctx, 0, kTypes));
  ctx.SetOutput(0, ctx.input(0).dtype, ctx.input(0).shape);
  return Status::Ok();
}

// Add, Sub, Mul, Div.
Status InferArithmetic(InferContext& ctx) {
  HML_RETURN_IF_ERROR(RequireInputs(ctx, 2));
  HML_RETURN_IF_ERROR(CheckType(ctx, 0, kAllDTypes));
  HML_RETURN_IF_ERROR(CheckSameType(ctx, 0, 1));
  HML_ASSIGN_OR_RETURN(Shape out, BinaryOutputShape(ctx));
  ctx.SetOutput(0, ctx.input(0).dtype, std::move(out));
  return Status::Ok();
}

// Pow: the exponent may have another type; the result has the base's.
Status InferPow(InferContext& ctx) {
  HML_RETURN_IF_ERROR(RequireInputs(ctx, 2));
  const DType base = ctx.input(0).dtype;
  if (base != DType::kFloat32 && base != DType::kInt32 && base != DType::kInt64) {
    return ctx.Error("base is " + std::string(DTypeName(base)) +
                     ", expected float32, int32 or int64");
  }
  HML_RETURN_IF_ERROR(CheckType(ctx, 1, kAllDTypes));
  HML_ASSIGN_OR_RETURN(Shape out, BinaryOutputShape(ctx));
  ctx.SetOutput(0, base, std::move(out));
  return Status::Ok();
}

// Max, Min, Sum (numeric) and Mean (float): any number of inputs broadcast together.
template <DTypeSet kTypes>
Status InferVariadic(InferContext& ctx) {
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    if (!ctx.has_input(i)) return ctx.Error("input " + std::to_string(i) + " is missing");
  }
  HML_RETURN_IF_ERROR(CheckType(ctx, 0, kTypes));
  Shape out = ctx.input(0).shape;
  for (size_t i = 1; i < ctx.num_inputs(); ++i) {
    HML_RETURN_IF_ERROR(CheckSameType(ctx, 0, i));
    Result<Shape> next = BroadcastShapes(out, ctx.input(i).shape);
    if (!next.ok()) return ctx.Error(next.status().message());
    out = std::move(*next);
  }
  ctx.SetOutput(0, ctx.input(0).dtype, std::move(out));
  return Status::Ok();
}

// PRelu: slope broadcasts to X (unidirectionally). Before opset 7 a 1-D slope holds one value
// per channel (dim 1).
Status InferPRelu(InferContext& ctx) {
  HML_RETURN_IF_ERROR(RequireInputs(ctx, 2));
  HML_RETURN_IF_ERROR(CheckType(ctx, 0, kSignedDTypes));
  HML_RETURN_IF_ERROR(CheckSameType(ctx, 0, 1));
  const Shape& x = ctx.input(0).shape;
  const Shape& slope = ctx.input(1).shape;
  const bool per_channel =
      ctx.opset() < 7 && slope.size() == 1 && x.size() >= 2 && slope[0] == x[1];
  if (!per_channel && !BroadcastsTo(slope, x)) {
    return ctx.Error("slope " + ShapeToString(slope) + " does not broadcast to input " +
                     ShapeToString(x));
  }
  ctx.SetOutput(0, ctx.input(0).dtype, x);
  return Status::Ok();
}

// Clip: bounds from attributes (opset < 11) or optional scalar inputs 1 and 2.
Status InferClip(InferContext& ctx) {
  HML_RETURN_IF_ERROR(RequireInputs(ctx, 1));
  if (ctx.opset() < 11) {
    HML_RETURN_IF_ERROR(CheckType(ctx, 0, kFloatDTypes));
    if (ctx.has_input(1) || ctx.has_input(2)) {
      return ctx.Error("min/max are attributes before opset 11, not inputs");
    }
  } else {
    HML_RETURN_IF_ERROR(CheckType(ctx, 0, kAllDTypes));
    for (size_t i = 1; i <= 2; ++i) {
      if (!ctx.has_input(i)) continue;
      HML_RETURN_IF_ERROR(CheckSameType(ctx, 0, i));
      int64_t count = 1;
      for (int64_t d : ctx.input(i).shape) count *= d;
      if (count != 1) {
        return ctx.Error(std::string(i == 1 ? "min" : "max") + " must be a scalar, got shape " +
                         ShapeToString(ctx.input(i).shape));
      }
    }
  }
  ctx.SetOutput(0, ctx.input(0).dtype, ctx.input(0).shape);
  return Status::Ok();
}

Status InferCast(InferContext& ctx) {
  HML_RETURN_IF_ERROR(RequireInputs(ctx, 1));
  HML_RETURN_IF_ERROR(CheckType(ctx, 0, kAllDTypes));
  if (!ctx.attrs().Has("to")) return ctx.Error("the 'to' attribute is required");
  const int64_t to = ctx.attrs().GetInt("to", 0);
  Result<DType> dtype = DTypeFromOnnx(static_cast<int>(to));
  if (!dtype.ok()) {
    return Unimplemented(ctx, "cast target: " + std::string(dtype.status().message()));
  }
  ctx.SetOutput(0, *dtype, ctx.input(0).shape);
  return Status::Ok();
}

// Dropout at inference copies its input. The mask output and training mode are not supported.
Status InferDropout(InferContext& ctx) {
  HML_RETURN_IF_ERROR(RequireInputs(ctx, 1));
  HML_RETURN_IF_ERROR(CheckType(ctx, 0, kAllDTypes));
  if (ctx.has_output(1)) return Unimplemented(ctx, "the mask output is not supported");
  if (ctx.has_input(2)) return Unimplemented(ctx, "the training_mode input is not supported");
  // Before opset 7 the is_test attribute chose training mode; like onnxruntime, hybridml only
  // runs inference, so it is ignored.
  ctx.SetOutput(0, ctx.input(0).dtype, ctx.input(0).shape);
  return Status::Ok();
}

constexpr int kManyInputs = std::numeric_limits<int>::max();

}  // namespace

void AddElementwiseOps(OpRegistry& registry) {
  for (const char* op : {"Add", "Sub", "Mul", "Div"}) {
    AddSchema(registry, op, 2, 2, InferArithmetic);
  }
  AddSchema(registry, "Pow", 2, 2, InferPow);
  AddSchema(registry, "Max", 1, kManyInputs, InferVariadic<kAllDTypes>);
  AddSchema(registry, "Min", 1, kManyInputs, InferVariadic<kAllDTypes>);
  AddSchema(registry, "Sum", 1, kManyInputs, InferVariadic<kAllDTypes>);
  AddSchema(registry, "Mean", 1, kManyInputs, InferVariadic<kFloatDTypes>);

  AddSchema(registry, "Relu", 1, 1, InferUnary<kSignedDTypes>);
  AddSchema(registry, "Neg", 1, 1, InferUnary<kSignedDTypes>);
  AddSchema(registry, "Abs", 1, 1, InferUnary<kAllDTypes>);
  AddSchema(registry, "Identity", 1, 1, InferUnary<kAllDTypes>);
  for (const char* op :
       {"LeakyRelu", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "Exp", "Log", "Sqrt", "Elu",
        "Selu", "Softplus", "Softsign", "Reciprocal", "Floor", "Ceil", "Round", "Erf"}) {
    AddSchema(registry, op, 1, 1, InferUnary<kFloatDTypes>);
  }
  AddSchema(registry, "PRelu", 2, 2, InferPRelu);
  AddSchema(registry, "Clip", 1, 3, InferClip);
  AddSchema(registry, "Cast", 1, 1, InferCast);
  AddSchema(registry, "Dropout", 1, 3, InferDropout, 2);
}

}  // namespace hml::runtime

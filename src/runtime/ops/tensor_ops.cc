// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Schemas of the data-movement ops. Their attribute and constant-input handling lives in
// tensor_params.cc, shared with the reference kernels.
#include <limits>
#include <string>

#include "src/runtime/op_registry.h"
#include "src/runtime/ops/op_util.h"
#include "src/runtime/ops/tensor_params.h"

namespace hml::runtime {
namespace {

// The view of the node, after checking that its first `required` inputs are present (a required
// input may still be given as "").
Result<OpView> ViewWithInputs(const InferContext& ctx, size_t required) {
  HML_RETURN_IF_ERROR(RequireInputs(ctx, required));
  return OpView::Of(ctx);
}

// The output shape a resolver gives: the shape itself, or the `output` of its parameters.
const Shape& ResolvedShape(const Shape& shape) { return shape; }
template <typename Params>
const Shape& ResolvedShape(const Params& p) {
  return p.output;
}

// Ops whose data input keeps its dtype and whose resolver gives the output shape: the
// reshape-like ops, Slice, Pad and Resize.
template <auto kResolve>
Status InferResolved(InferContext& ctx) {
  HML_ASSIGN_OR_RETURN(const OpView op, ViewWithInputs(ctx, 1));
  HML_ASSIGN_OR_RETURN(const auto resolved, kResolve(op));
  ctx.SetOutput(0, op.dtype(0), ResolvedShape(resolved));
  return Status::Ok();
}

Status InferTranspose(InferContext& ctx) {
  HML_ASSIGN_OR_RETURN(const OpView op, ViewWithInputs(ctx, 1));
  HML_ASSIGN_OR_RETURN(std::vector<int> perm, ResolvePerm(op));
  Shape out(perm.size());
  for (size_t i = 0; i < perm.size(); ++i) out[i] = op.shape(0)[static_cast<size_t>(perm[i])];
  ctx.SetOutput(0, op.dtype(0), std::move(out));
  return Status::Ok();
}

Status InferConcat(InferContext& ctx) {
  HML_ASSIGN_OR_RETURN(const OpView op, ViewWithInputs(ctx, 1));
  HML_ASSIGN_OR_RETURN(int axis, ResolveConcatAxis(op));
  Shape out = op.shape(0);
  const size_t a = static_cast<size_t>(axis);
  for (size_t i = 1; i < op.num_inputs(); ++i) {
    if (__builtin_add_overflow(out[a], op.shape(i)[a], &out[a])) {
      return op.Error("the concatenated dim overflows");
    }
  }
  ctx.SetOutput(0, op.dtype(0), std::move(out));
  return Status::Ok();
}

Status InferGather(InferContext& ctx) {
  HML_ASSIGN_OR_RETURN(const OpView op, ViewWithInputs(ctx, 2));
  HML_ASSIGN_OR_RETURN(int axis, ResolveGatherAxis(op));
  const Shape& data = op.shape(0);
  Shape out(data.begin(), data.begin() + axis);
  out.insert(out.end(), op.shape(1).begin(), op.shape(1).end());
  out.insert(out.end(), data.begin() + axis + 1, data.end());
  if (data[static_cast<size_t>(axis)] == 0) {
    int64_t indices = 1;
    for (int64_t d : op.shape(1)) indices *= d;
    if (indices > 0) return op.Error("cannot gather from the empty axis " + std::to_string(axis));
  }
  ctx.SetOutput(0, op.dtype(0), std::move(out));
  return Status::Ok();
}

Status InferShape(InferContext& ctx) {
  HML_ASSIGN_OR_RETURN(const OpView op, ViewWithInputs(ctx, 1));
  HML_ASSIGN_OR_RETURN(ShapeSlice slice, ResolveShapeSlice(op));
  ctx.SetOutput(0, DType::kInt64, Shape{slice.count});
  return Status::Ok();
}

Status InferTile(InferContext& ctx) {
  HML_ASSIGN_OR_RETURN(const OpView op, ViewWithInputs(ctx, 1));
  HML_ASSIGN_OR_RETURN(std::vector<int64_t> repeats, ResolveTileRepeats(op));
  Shape out = op.shape(0);
  for (size_t i = 0; i < out.size(); ++i) out[i] *= repeats[i];
  ctx.SetOutput(0, op.dtype(0), std::move(out));
  return Status::Ok();
}

Status InferSplit(InferContext& ctx) {
  HML_ASSIGN_OR_RETURN(const OpView op, ViewWithInputs(ctx, 1));
  HML_ASSIGN_OR_RETURN(SplitParams p, ResolveSplit(op, ctx.num_outputs()));
  for (size_t i = 0; i < p.sizes.size(); ++i) {
    Shape out = op.shape(0);
    out[static_cast<size_t>(p.axis)] = p.sizes[i];
    ctx.SetOutput(i, op.dtype(0), std::move(out));
  }
  return Status::Ok();
}

}  // namespace

void AddTensorOps(OpRegistry& registry) {
  AddSchema(registry, "Flatten", 1, 1, InferResolved<ResolveFlatten>);
  // Reshape takes its shape as an attribute before opset 5 and as input 1 after.
  AddSchema(registry, "Reshape", 1, 2, InferResolved<ResolveReshape>);
  AddSchema(registry, "Squeeze", 1, 2, InferResolved<ResolveSqueeze>);
  AddSchema(registry, "Unsqueeze", 1, 2, InferResolved<ResolveUnsqueeze>);
  AddSchema(registry, "Expand", 2, 2, InferResolved<ResolveExpand>);
  AddSchema(registry, "Transpose", 1, 1, InferTranspose);
  AddSchema(registry, "Concat", 1, std::numeric_limits<int>::max(), InferConcat);
  AddSchema(registry, "Gather", 2, 2, InferGather);
  AddSchema(registry, "Shape", 1, 1, InferShape);
  AddSchema(registry, "Slice", 1, 5, InferResolved<ResolveSlice>);
  AddSchema(registry, "Pad", 1, 4, InferResolved<ResolvePad>);
  AddSchema(registry, "Resize", 1, 4, InferResolved<ResolveResize>);
  AddSchema(registry, "Upsample", 1, 2, InferResolved<ResolveResize>);
  AddSchema(registry, "Tile", 2, 2, InferTile);
  AddSchema(registry, "Split", 1, 2, InferSplit, std::numeric_limits<int>::max());
}

}  // namespace hml::runtime

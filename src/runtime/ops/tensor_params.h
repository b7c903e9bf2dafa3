// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Attribute and constant-input resolution for the data-movement ops (Reshape, Squeeze, Slice,
// Pad, Resize, ...). Shape inference and the reference kernels both read a node through these
// functions, so they cannot disagree about what e.g. a negative Slice step or a Reshape 0 means.
//
// Every resolver validates what it reads and returns kInvalidArgument "<Op> '<name>': <why>" for
// malformed nodes and kUnimplemented for valid ONNX that hybridml does not support (including
// data-dependent inputs that are not constants when shapes are fixed).
#ifndef HML_SRC_RUNTIME_OPS_TENSOR_PARAMS_H_
#define HML_SRC_RUNTIME_OPS_TENSOR_PARAMS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "hml/runtime/tensor.h"
#include "src/runtime/graph.h"
#include "src/runtime/kernel.h"
#include "src/runtime/op_registry.h"
#include "src/runtime/ops/op_util.h"

namespace hml::runtime {

// One input of a node as the resolvers see it.
struct OpInput {
  bool present = false;
  DType dtype = DType::kUndefined;
  Shape shape;
  const Tensor* constant = nullptr;  // the data when the input is a constant, else null
};

// A node, its opset and its inputs, built either from a shape-inference context or from kernel
// arguments. Holds pointers into the context/arguments it was built from; must not outlive them.
class OpView {
 public:
  // `description` names the node in errors ("Reshape 'r1'"); empty means derive it from the node.
  OpView(const Node& node, int64_t opset, std::vector<OpInput> inputs,
         std::string description = "");
  static OpView Of(const InferContext& ctx);
  static OpView Of(const KernelArgs& args);

  const Node& node() const { return *node_; }
  const Attributes& attrs() const { return node_->attrs; }
  int64_t opset() const { return opset_; }
  size_t num_inputs() const { return inputs_.size(); }
  bool has_input(size_t i) const { return i < inputs_.size() && inputs_[i].present; }
  // REQUIRES: has_input(i).
  const Shape& shape(size_t i) const { return inputs_[i].shape; }
  DType dtype(size_t i) const { return inputs_[i].dtype; }
  int rank(size_t i) const { return static_cast<int>(inputs_[i].shape.size()); }

  // The data of input i: null when the input is absent; kUnimplemented "<node>: <what> must be
  // a constant" when it is present but its value is unknown until run time.
  Result<const Tensor*> ConstantInput(size_t i, std::string_view what) const;

  // "Reshape 'name'", or as the shape-inference context names the node ("Reshape #3").
  const std::string& Describe() const { return description_; }
  // kInvalidArgument "<node>: <why>".
  Status Error(std::string_view why) const;
  // kUnimplemented "<node>: <why>".
  Status Unimplemented(std::string_view why) const;

 private:
  const Node* node_;
  int64_t opset_;
  std::vector<OpInput> inputs_;
  std::string description_;
};

// Reads an int32 or int64 tensor of rank <= 1 as int64 values. `what` names it in errors.
Result<std::vector<int64_t>> ReadInts(const OpView& op, const Tensor& t, std::string_view what);
// Reads a float32 tensor of rank <= 1.
Result<std::vector<float>> ReadFloats(const OpView& op, const Tensor& t, std::string_view what);

// Maps `axis` in [-rank, rank) to [0, rank). `what` names the attribute/input in errors.
Result<int> NormalizeAxis(const OpView& op, int64_t axis, int rank, std::string_view what);

// ---- Per-op resolvers. Each takes the node's view and returns the output shape or parameters.

Result<Shape> ResolveFlatten(const OpView& op);
// Reshape: `shape` from input 1 (opset >= 5) or the attribute (older); 0 copies the input dim
// unless allowzero=1; one -1 is inferred.
Result<Shape> ResolveReshape(const OpView& op);
// Squeeze/Unsqueeze: axes from the attribute (opset < 13) or input 1 (opset >= 13).
Result<Shape> ResolveSqueeze(const OpView& op);
Result<Shape> ResolveUnsqueeze(const OpView& op);

// Transpose: the permutation (default: reversed dims), validated.
Result<std::vector<int>> ResolvePerm(const OpView& op);

// Concat: the normalized axis; all inputs must agree in dtype, rank and the other dims.
Result<int> ResolveConcatAxis(const OpView& op);

// Gather: the normalized axis; the output is data[:axis] + indices + data[axis+1:].
Result<int> ResolveGatherAxis(const OpView& op);

// Shape (opset 15 start/end): the first dim taken and how many.
struct ShapeSlice {
  int64_t start = 0;
  int64_t count = 0;
};
Result<ShapeSlice> ResolveShapeSlice(const OpView& op);

// Slice: per-dim start and step over the full rank (0 and 1 on dims not sliced), and the output
// shape, after ONNX clamping.
struct SliceParams {
  std::vector<int64_t> starts;
  std::vector<int64_t> steps;
  Shape output;
};
Result<SliceParams> ResolveSlice(const OpView& op);

enum class PadMode { kConstant, kReflect, kEdge };
// Pad: per-dim begin/end pads (negative = crop) and the fill value's source.
struct PadParams {
  PadMode mode = PadMode::kConstant;
  std::vector<int64_t> begin;
  std::vector<int64_t> end;
  Shape output;
  // Opset < 11: the `value` attribute. Opset >= 11: 0 unless input 2 (constant_value) is given,
  // which kernels then read (it may be a run-time value).
  float attr_value = 0.0f;
  bool value_from_input = false;
};
Result<PadParams> ResolvePad(const OpView& op);

// Split: the normalized axis and the size of each of the node's `num_outputs` parts, from the
// `split` attribute (opset < 13) or input 1, else `num_outputs` (opset 18, last part smaller),
// else equal parts.
struct SplitParams {
  int axis = 0;
  std::vector<int64_t> sizes;
};
Result<SplitParams> ResolveSplit(const OpView& op, size_t num_outputs);

// Expand: the broadcast of the input shape with the constant `shape` input.
Result<Shape> ResolveExpand(const OpView& op);
// Tile: the constant `repeats` input (one non-negative count per dim).
Result<std::vector<int64_t>> ResolveTileRepeats(const OpView& op);

enum class ResizeMode { kNearest, kLinear };
enum class ResizeCoordinateMode {
  kHalfPixel,
  kPytorchHalfPixel,
  kAlignCorners,
  kAsymmetric,
  kTfHalfPixelForNearest,
  kTfCropAndResize,
};
enum class ResizeNearestMode {
  kRoundPreferFloor,
  kRoundPreferCeil,
  kFloor,
  kCeil,
  // Resize-10 and Upsample: floor when the axis is upsampled, ceil when it is downsampled (what
  // onnxruntime does; those opsets leave the rounding unspecified).
  kLegacy,
};

// Resize (opset 10-17+) and Upsample (opset 7-9), everything needed to map output coordinates to
// input coordinates. Unsupported features (cubic, antialias, axes, keep_aspect_ratio_policy,
// half_pixel_symmetric, linear on integer types) are kUnimplemented naming the node and the
// feature. With scales, each output dim is floor(input * scale), as in ONNX's reference
// implementation (the spec's extra roi factor for tf_crop_and_resize is not applied).
struct ResizeParams {
  ResizeMode mode = ResizeMode::kNearest;
  ResizeCoordinateMode coordinate_mode = ResizeCoordinateMode::kHalfPixel;
  ResizeNearestMode nearest_mode = ResizeNearestMode::kRoundPreferFloor;
  // Per dim: output/input ratio used by the coordinate transform (the `scales` value when
  // scales are given, output/input when sizes are).
  std::vector<double> scales;
  // Per dim: input length * scale (equals the output length when sizes are given). ONNX's
  // reference implementation uses this unrounded length for align_corners and
  // tf_crop_and_resize, and the conformance data follows it.
  std::vector<double> resized_lengths;
  // Per dim, normalized region of interest; [0, 1] unless tf_crop_and_resize.
  std::vector<double> roi_start;
  std::vector<double> roi_end;
  float extrapolation_value = 0.0f;
  Shape output;
};
Result<ResizeParams> ResolveResize(const OpView& op);

// The input coordinate that output index `x` along dim `axis` samples, for an input of length
// `in_length`. For tf_crop_and_resize the result may fall outside [0, in_length - 1]; callers
// then use the extrapolation value.
double ResizeSourceCoordinate(const ResizeParams& p, size_t axis, int64_t in_length, int64_t x);
// The nearest input index for source coordinate `x` (before clamping to the input).
int64_t ResizeNearestIndex(ResizeNearestMode mode, double x, double scale);

}  // namespace hml::runtime

#endif  // HML_SRC_RUNTIME_OPS_TENSOR_PARAMS_H_

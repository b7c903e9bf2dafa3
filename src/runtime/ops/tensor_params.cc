// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/runtime/ops/tensor_params.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "src/runtime/ops/broadcast.h"

namespace hml::runtime {
namespace {

// Product of `dims`; kInvalidArgument when it does not fit int64 (dims after a 0 can be large).
Result<int64_t> CheckedProduct(const OpView& op, const Shape& dims) {
  int64_t n = 1;
  for (int64_t d : dims) {
    if (__builtin_mul_overflow(n, d, &n)) {
      return op.Error("the element count of " + ShapeToString(dims) + " overflows");
    }
  }
  return n;
}

// Axes list for Squeeze/Unsqueeze from the attribute (opset < 13) or input 1. `present` is false
// when the node gives none.
Status ReadAxes(const OpView& op, bool& present, std::vector<int64_t>& axes) {
  present = false;
  if (op.opset() < 13) {
    if (op.attrs().Has("axes")) {
      present = true;
      axes = op.attrs().GetInts("axes");
    }
    return Status::Ok();
  }
  HML_ASSIGN_OR_RETURN(const Tensor* t, op.ConstantInput(1, "axes"));
  if (t == nullptr) return Status::Ok();
  present = true;
  HML_ASSIGN_OR_RETURN(axes, ReadInts(op, *t, "axes"));
  return Status::Ok();
}

// Normalizes every axis and rejects duplicates.
Result<std::vector<int>> NormalizeAxes(const OpView& op, const std::vector<int64_t>& axes, int rank,
                                       std::string_view what) {
  std::vector<int> out;
  std::vector<bool> seen(static_cast<size_t>(rank), false);
  for (int64_t a : axes) {
    HML_ASSIGN_OR_RETURN(int axis, NormalizeAxis(op, a, rank, what));
    if (seen[static_cast<size_t>(axis)]) {
      return op.Error(std::string(what) + " " + IntsToString(axes) + " repeats axis " +
                      std::to_string(axis));
    }
    seen[static_cast<size_t>(axis)] = true;
    out.push_back(axis);
  }
  return out;
}

// A tensor input counts as given when it is present and has elements (Resize-11 passes empty
// tensors for unused roi/scales).
bool HasElements(const OpView& op, size_t i) {
  if (!op.has_input(i)) return false;
  for (int64_t d : op.shape(i)) {
    if (d == 0) return false;
  }
  return true;
}

}  // namespace

OpView::OpView(const Node& node, int64_t opset, std::vector<OpInput> inputs,
               std::string description)
    : node_(&node),
      opset_(opset),
      inputs_(std::move(inputs)),
      description_(std::move(description)) {
  if (description_.empty()) {
    description_ = node.name.empty() ? node.op_type : node.op_type + " '" + node.name + "'";
  }
}

OpView OpView::Of(const InferContext& ctx) {
  std::vector<OpInput> inputs(ctx.num_inputs());
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!ctx.has_input(i)) continue;
    const Value& v = ctx.input(i);
    inputs[i].present = true;
    inputs[i].dtype = v.dtype;
    inputs[i].shape = v.shape;
    inputs[i].constant = ctx.constant_input(i);
  }
  // Name the node exactly as the context's own errors do ("<node>: <why>").
  std::string description(ctx.Error("").message());
  if (description.size() >= 2 && description.compare(description.size() - 2, 2, ": ") == 0) {
    description.resize(description.size() - 2);
  } else {
    description.clear();
  }
  return OpView(ctx.node(), ctx.opset(), std::move(inputs), std::move(description));
}

OpView OpView::Of(const KernelArgs& args) {
  std::vector<OpInput> inputs(args.inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& t = args.inputs[i];
    if (t.empty()) continue;
    inputs[i].present = true;
    inputs[i].dtype = t.dtype();
    inputs[i].shape = t.shape();
    const bool is_constant = i < args.input_is_constant.size() && args.input_is_constant[i];
    inputs[i].constant = is_constant ? &t : nullptr;
  }
  return OpView(*args.node, args.opset, std::move(inputs));
}

Result<const Tensor*> OpView::ConstantInput(size_t i, std::string_view what) const {
  if (!has_input(i)) return static_cast<const Tensor*>(nullptr);
  if (inputs_[i].constant == nullptr) {
    return Unimplemented(std::string(what) +
                         " must be a constant (data-dependent output shapes are not supported)");
  }
  return inputs_[i].constant;
}

Status OpView::Error(std::string_view why) const {
  return InvalidArgumentError(Describe() + ": " + std::string(why));
}

Status OpView::Unimplemented(std::string_view why) const {
  return UnimplementedError(Describe() + ": " + std::string(why));
}

Result<std::vector<int64_t>> ReadInts(const OpView& op, const Tensor& t, std::string_view what) {
  if (t.rank() > 1) {
    return op.Error(std::string(what) + " must be 1-D, got shape " + ShapeToString(t.shape()));
  }
  std::vector<int64_t> out(static_cast<size_t>(t.num_elements()));
  if (t.dtype() == DType::kInt64) {
    for (size_t i = 0; i < out.size(); ++i) out[i] = t.data<int64_t>()[i];
  } else if (t.dtype() == DType::kInt32) {
    for (size_t i = 0; i < out.size(); ++i) out[i] = t.data<int32_t>()[i];
  } else {
    return op.Error(std::string(what) + " must be int32 or int64, got " +
                    std::string(DTypeName(t.dtype())));
  }
  return out;
}

Result<std::vector<float>> ReadFloats(const OpView& op, const Tensor& t, std::string_view what) {
  if (t.rank() > 1) {
    return op.Error(std::string(what) + " must be 1-D, got shape " + ShapeToString(t.shape()));
  }
  if (t.dtype() != DType::kFloat32) {
    return op.Error(std::string(what) + " must be float32, got " +
                    std::string(DTypeName(t.dtype())));
  }
  return std::vector<float>(t.data<float>(), t.data<float>() + t.num_elements());
}

Result<int> NormalizeAxis(const OpView& op, int64_t axis, int rank, std::string_view what) {
  if (axis < -rank || axis >= rank) {
    return op.Error(std::string(what) + " " + std::to_string(axis) + " is out of range [" +
                    std::to_string(-rank) + ", " + std::to_string(rank - 1) + "] for rank " +
                    std::to_string(rank));
  }
  return static_cast<int>(axis < 0 ? axis + rank : axis);
}

Result<Shape> ResolveFlatten(const OpView& op) {
  const Shape& in = op.shape(0);
  const int rank = op.rank(0);
  const int64_t axis_attr = op.attrs().GetInt("axis", 1);
  if (axis_attr < -rank || axis_attr > rank) {
    return op.Error("axis " + std::to_string(axis_attr) + " is out of range [" +
                    std::to_string(-rank) + ", " + std::to_string(rank) + "] for input " +
                    ShapeToString(in));
  }
  const int64_t axis = axis_attr < 0 ? axis_attr + rank : axis_attr;
  HML_ASSIGN_OR_RETURN(int64_t outer, CheckedProduct(op, Shape(in.begin(), in.begin() + axis)));
  HML_ASSIGN_OR_RETURN(int64_t inner, CheckedProduct(op, Shape(in.begin() + axis, in.end())));
  return Shape{outer, inner};
}

Result<Shape> ResolveReshape(const OpView& op) {
  const Shape& in = op.shape(0);
  std::vector<int64_t> target;
  if (op.opset() < 5) {
    if (!op.attrs().Has("shape")) return op.Error("the shape attribute is required");
    target = op.attrs().GetInts("shape");
  } else {
    HML_ASSIGN_OR_RETURN(const Tensor* t, op.ConstantInput(1, "shape"));
    if (t == nullptr) return op.Error("the shape input is required");
    HML_ASSIGN_OR_RETURN(target, ReadInts(op, *t, "shape"));
  }
  const bool allow_zero = op.opset() >= 14 && op.attrs().GetInt("allowzero", 0) != 0;
  HML_ASSIGN_OR_RETURN(int64_t in_elements, CheckedProduct(op, in));

  Shape out(target.size());
  int inferred = -1;
  bool has_zero = false;
  int64_t known = 1;
  for (size_t i = 0; i < target.size(); ++i) {
    int64_t d = target[i];
    if (d == -1) {
      if (inferred >= 0) return op.Error("shape " + IntsToString(target) + " has more than one -1");
      inferred = static_cast<int>(i);
      continue;
    }
    if (d == 0) {
      has_zero = true;
      if (!allow_zero) {
        if (i >= in.size()) {
          return op.Error("shape " + IntsToString(target) + " copies dim " + std::to_string(i) +
                          " (0) of input " + ShapeToString(in) + ", which has no such dim");
        }
        d = in[i];
      }
    }
    if (d < 0) {
      return op.Error("shape " + IntsToString(target) + " has the invalid dim " +
                      std::to_string(d));
    }
    out[i] = d;
    if (__builtin_mul_overflow(known, d, &known)) {
      return op.Error("shape " + IntsToString(target) + " overflows");
    }
  }
  if (inferred >= 0) {
    if (allow_zero && has_zero) {
      return op.Error("shape " + IntsToString(target) + " has both 0 and -1 with allowzero=1");
    }
    if (known == 0 || in_elements % known != 0) {
      return op.Error("cannot reshape " + ShapeToString(in) + " (" + std::to_string(in_elements) +
                      " elements) to " + IntsToString(target) + ": the -1 cannot be inferred");
    }
    out[static_cast<size_t>(inferred)] = in_elements / known;
  } else if (known != in_elements) {
    return op.Error("cannot reshape " + ShapeToString(in) + " (" + std::to_string(in_elements) +
                    " elements) to " + IntsToString(target) + " (" + std::to_string(known) +
                    " elements)");
  }
  return out;
}

Result<Shape> ResolveSqueeze(const OpView& op) {
  const Shape& in = op.shape(0);
  bool present = false;
  std::vector<int64_t> axes;
  HML_RETURN_IF_ERROR(ReadAxes(op, present, axes));
  Shape out;
  // An empty axes list squeezes every 1, like a missing one (as onnxruntime does).
  if (!present || axes.empty()) {
    for (int64_t d : in) {
      if (d != 1) out.push_back(d);
    }
    return out;
  }
  HML_ASSIGN_OR_RETURN(std::vector<int> normalized, NormalizeAxes(op, axes, op.rank(0), "axes"));
  std::vector<bool> drop(in.size(), false);
  for (int a : normalized) {
    if (in[static_cast<size_t>(a)] != 1) {
      return op.Error("cannot squeeze dim " + std::to_string(a) + " of input " + ShapeToString(in) +
                      ": its size is " + std::to_string(in[static_cast<size_t>(a)]) + ", not 1");
    }
    drop[static_cast<size_t>(a)] = true;
  }
  for (size_t i = 0; i < in.size(); ++i) {
    if (!drop[i]) out.push_back(in[i]);
  }
  return out;
}

Result<Shape> ResolveUnsqueeze(const OpView& op) {
  const Shape& in = op.shape(0);
  bool present = false;
  std::vector<int64_t> axes;
  HML_RETURN_IF_ERROR(ReadAxes(op, present, axes));
  if (!present) return op.Error("axes are required");
  const int out_rank = op.rank(0) + static_cast<int>(axes.size());
  HML_ASSIGN_OR_RETURN(std::vector<int> normalized, NormalizeAxes(op, axes, out_rank, "axes"));
  Shape out(static_cast<size_t>(out_rank), -1);
  for (int a : normalized) out[static_cast<size_t>(a)] = 1;
  size_t next = 0;
  for (int64_t& d : out) {
    if (d == -1) d = in[next++];
  }
  return out;
}

Result<std::vector<int>> ResolvePerm(const OpView& op) {
  const int rank = op.rank(0);
  std::vector<int64_t> perm;
  if (op.attrs().Has("perm")) {
    perm = op.attrs().GetInts("perm");
  } else {
    for (int i = rank - 1; i >= 0; --i) perm.push_back(i);
  }
  if (static_cast<int>(perm.size()) != rank) {
    return op.Error("perm " + IntsToString(perm) + " must have " + std::to_string(rank) +
                    " entries for input " + ShapeToString(op.shape(0)));
  }
  std::vector<int> out;
  std::vector<bool> seen(static_cast<size_t>(rank), false);
  for (int64_t p : perm) {
    if (p < 0 || p >= rank || seen[static_cast<size_t>(p)]) {
      return op.Error("perm " + IntsToString(perm) + " is not a permutation of [0, " +
                      std::to_string(rank) + ")");
    }
    seen[static_cast<size_t>(p)] = true;
    out.push_back(static_cast<int>(p));
  }
  return out;
}

Result<int> ResolveConcatAxis(const OpView& op) {
  if (op.num_inputs() == 0) return op.Error("needs at least one input");
  for (size_t i = 0; i < op.num_inputs(); ++i) {
    if (!op.has_input(i)) return op.Error("input " + std::to_string(i) + " is missing");
  }
  if (!op.attrs().Has("axis") && op.opset() >= 4) {
    return op.Error("the axis attribute is required");
  }
  const Shape& first = op.shape(0);
  const int rank = op.rank(0);
  if (rank == 0) return op.Error("cannot concatenate scalars");
  HML_ASSIGN_OR_RETURN(int axis, NormalizeAxis(op, op.attrs().GetInt("axis", 1), rank, "axis"));
  for (size_t i = 1; i < op.num_inputs(); ++i) {
    if (op.dtype(i) != op.dtype(0)) {
      return op.Error("input " + std::to_string(i) + " is " + std::string(DTypeName(op.dtype(i))) +
                      " but input 0 is " + std::string(DTypeName(op.dtype(0))));
    }
    const Shape& s = op.shape(i);
    bool match = s.size() == first.size();
    for (size_t d = 0; match && d < s.size(); ++d) {
      if (static_cast<int>(d) != axis && s[d] != first[d]) match = false;
    }
    if (!match) {
      return op.Error("input " + std::to_string(i) + " has shape " + ShapeToString(s) +
                      ", which does not match input 0 " + ShapeToString(first) + " outside axis " +
                      std::to_string(axis));
    }
  }
  return axis;
}

Result<int> ResolveGatherAxis(const OpView& op) {
  if (op.rank(0) == 0) return op.Error("data must have rank >= 1");
  if (op.dtype(1) != DType::kInt32 && op.dtype(1) != DType::kInt64) {
    return op.Error("indices must be int32 or int64, got " + std::string(DTypeName(op.dtype(1))));
  }
  return NormalizeAxis(op, op.attrs().GetInt("axis", 0), op.rank(0), "axis");
}

Result<ShapeSlice> ResolveShapeSlice(const OpView& op) {
  const int64_t rank = op.rank(0);
  int64_t start = op.attrs().GetInt("start", 0);
  int64_t end = op.attrs().GetInt("end", rank);
  if (start < 0) start += rank;
  if (end < 0) end += rank;
  start = std::clamp<int64_t>(start, 0, rank);
  end = std::clamp<int64_t>(end, 0, rank);
  return ShapeSlice{start, std::max<int64_t>(0, end - start)};
}

Result<SliceParams> ResolveSlice(const OpView& op) {
  const Shape& in = op.shape(0);
  const int rank = op.rank(0);
  std::vector<int64_t> starts, ends, axes, steps;
  bool has_axes = false;
  if (op.opset() < 10) {
    if (!op.attrs().Has("starts") || !op.attrs().Has("ends")) {
      return op.Error("the starts and ends attributes are required");
    }
    starts = op.attrs().GetInts("starts");
    ends = op.attrs().GetInts("ends");
    has_axes = op.attrs().Has("axes");
    axes = op.attrs().GetInts("axes");
  } else {
    HML_ASSIGN_OR_RETURN(const Tensor* t_starts, op.ConstantInput(1, "starts"));
    HML_ASSIGN_OR_RETURN(const Tensor* t_ends, op.ConstantInput(2, "ends"));
    HML_ASSIGN_OR_RETURN(const Tensor* t_axes, op.ConstantInput(3, "axes"));
    HML_ASSIGN_OR_RETURN(const Tensor* t_steps, op.ConstantInput(4, "steps"));
    if (t_starts == nullptr || t_ends == nullptr) {
      return op.Error("the starts and ends inputs are required");
    }
    HML_ASSIGN_OR_RETURN(starts, ReadInts(op, *t_starts, "starts"));
    HML_ASSIGN_OR_RETURN(ends, ReadInts(op, *t_ends, "ends"));
    if (t_axes != nullptr) {
      has_axes = true;
      HML_ASSIGN_OR_RETURN(axes, ReadInts(op, *t_axes, "axes"));
    }
    if (t_steps != nullptr) {
      HML_ASSIGN_OR_RETURN(steps, ReadInts(op, *t_steps, "steps"));
    }
  }
  const size_t n = starts.size();
  if (ends.size() != n) {
    return op.Error("starts " + IntsToString(starts) + " and ends " + IntsToString(ends) +
                    " differ in length");
  }
  if (!has_axes) {
    for (size_t i = 0; i < n; ++i) axes.push_back(static_cast<int64_t>(i));
  }
  if (steps.empty()) steps.assign(n, 1);
  if (axes.size() != n || steps.size() != n) {
    return op.Error("starts " + IntsToString(starts) + ", axes " + IntsToString(axes) +
                    " and steps " + IntsToString(steps) + " differ in length");
  }
  HML_ASSIGN_OR_RETURN(std::vector<int> norm_axes, NormalizeAxes(op, axes, rank, "axes"));

  SliceParams p;
  p.starts.assign(in.size(), 0);
  p.steps.assign(in.size(), 1);
  p.output = in;
  for (size_t i = 0; i < n; ++i) {
    const size_t axis = static_cast<size_t>(norm_axes[i]);
    const int64_t dim = in[axis];
    const int64_t step = steps[i];
    if (step == 0) return op.Error("steps " + IntsToString(steps) + " contain 0");
    int64_t start = starts[i];
    int64_t end = ends[i];
    // Negative positions count from the end; INT64_MIN + dim cannot overflow.
    if (start < 0) start += dim;
    if (end < 0) end += dim;
    int64_t length = 0;
    if (step > 0) {
      start = std::clamp<int64_t>(start, 0, dim);
      end = std::clamp<int64_t>(end, 0, dim);
      if (end > start) length = (end - start - 1) / step + 1;
    } else {
      start = std::clamp<int64_t>(start, 0, std::max<int64_t>(dim - 1, 0));
      end = std::clamp<int64_t>(end, -1, dim - 1);
      // -step cannot overflow for step == INT64_MIN because the distance is at most dim.
      const int64_t neg_step =
          step == std::numeric_limits<int64_t>::min() ? std::numeric_limits<int64_t>::max() : -step;
      if (dim > 0 && start > end) length = (start - end - 1) / neg_step + 1;
    }
    p.starts[axis] = length > 0 ? start : 0;
    p.steps[axis] = step;
    p.output[axis] = length;
  }
  return p;
}

Result<PadParams> ResolvePad(const OpView& op) {
  const Shape& in = op.shape(0);
  const size_t rank = in.size();
  PadParams p;
  const std::string mode = op.attrs().GetString("mode", "constant");
  if (mode == "constant") {
    p.mode = PadMode::kConstant;
  } else if (mode == "reflect") {
    p.mode = PadMode::kReflect;
  } else if (mode == "edge") {
    p.mode = PadMode::kEdge;
  } else if (mode == "wrap") {
    return op.Unimplemented("mode 'wrap' is not supported");
  } else {
    return op.Error("mode '" + mode + "' is not one of constant, reflect, edge");
  }

  std::vector<int64_t> pads;
  if (op.opset() < 11) {
    const char* name = op.opset() < 2 ? "paddings" : "pads";
    if (!op.attrs().Has(name)) {
      return op.Error(std::string("the ") + name + " attribute is required");
    }
    pads = op.attrs().GetInts(name);
    p.attr_value = op.attrs().GetFloat("value", 0.0f);
  } else {
    HML_ASSIGN_OR_RETURN(const Tensor* t_pads, op.ConstantInput(1, "pads"));
    if (t_pads == nullptr) return op.Error("the pads input is required");
    HML_ASSIGN_OR_RETURN(pads, ReadInts(op, *t_pads, "pads"));
    if (op.has_input(2)) {
      if (op.dtype(2) != op.dtype(0)) {
        return op.Error("constant_value is " + std::string(DTypeName(op.dtype(2))) +
                        " but data is " + std::string(DTypeName(op.dtype(0))));
      }
      int64_t count = 1;
      for (int64_t d : op.shape(2)) count *= d;
      if (count != 1) {
        return op.Error("constant_value must hold one value, got shape " +
                        ShapeToString(op.shape(2)));
      }
      p.value_from_input = true;
    }
    if (op.has_input(3)) return op.Unimplemented("the axes input (opset 18) is not supported");
  }
  if (pads.size() != 2 * rank) {
    return op.Error("pads " + IntsToString(pads) + " must have " + std::to_string(2 * rank) +
                    " entries for input " + ShapeToString(in));
  }
  p.begin.assign(pads.begin(), pads.begin() + static_cast<std::ptrdiff_t>(rank));
  p.end.assign(pads.begin() + static_cast<std::ptrdiff_t>(rank), pads.end());
  p.output.resize(rank);
  for (size_t i = 0; i < rank; ++i) {
    int64_t d;
    if (__builtin_add_overflow(in[i], p.begin[i], &d) || __builtin_add_overflow(d, p.end[i], &d) ||
        d < 0) {
      return op.Error("pads " + IntsToString(pads) + " crop dim " + std::to_string(i) +
                      " of input " + ShapeToString(in) + " below zero");
    }
    if (p.mode != PadMode::kConstant && in[i] == 0 && d > 0) {
      return op.Error("mode '" + mode + "' cannot pad the empty dim " + std::to_string(i) +
                      " of input " + ShapeToString(in));
    }
    p.output[i] = d;
  }
  return p;
}

Result<SplitParams> ResolveSplit(const OpView& op, size_t num_outputs) {
  const Shape& in = op.shape(0);
  if (in.empty()) return op.Error("cannot split a scalar");
  SplitParams p;
  HML_ASSIGN_OR_RETURN(p.axis, NormalizeAxis(op, op.attrs().GetInt("axis", 0), op.rank(0), "axis"));
  const int64_t dim = in[static_cast<size_t>(p.axis)];
  const int64_t n = static_cast<int64_t>(num_outputs);
  if (n == 0) return op.Error("needs at least one output");
  if (op.has_input(1)) {
    HML_ASSIGN_OR_RETURN(const Tensor* t, op.ConstantInput(1, "split"));
    HML_ASSIGN_OR_RETURN(p.sizes, ReadInts(op, *t, "split"));
  } else if (op.opset() < 13 && op.attrs().Has("split")) {
    p.sizes = op.attrs().GetInts("split");
  } else if (op.attrs().Has("num_outputs")) {
    const int64_t parts = op.attrs().GetInt("num_outputs", 0);
    if (parts != n) {
      return op.Error("num_outputs " + std::to_string(parts) + " differs from the " +
                      std::to_string(n) + " outputs");
    }
    const int64_t chunk = (dim + n - 1) / n;
    for (int64_t i = 0; i < n; ++i) {
      p.sizes.push_back(std::clamp<int64_t>(dim - i * chunk, 0, chunk));
    }
  } else {
    if (dim % n != 0) {
      return op.Error("dim " + std::to_string(p.axis) + " of " + ShapeToString(in) +
                      " does not split into " + std::to_string(n) + " equal parts");
    }
    p.sizes.assign(num_outputs, dim / n);
  }
  if (p.sizes.size() != num_outputs) {
    return op.Error("split " + IntsToString(p.sizes) + " has " + std::to_string(p.sizes.size()) +
                    " entries for " + std::to_string(n) + " outputs");
  }
  int64_t total = 0;
  for (int64_t s : p.sizes) {
    if (s < 0) return op.Error("split " + IntsToString(p.sizes) + " has a negative entry");
    total += s;
  }
  if (total != dim) {
    return op.Error("split " + IntsToString(p.sizes) + " sums to " + std::to_string(total) +
                    " but dim " + std::to_string(p.axis) + " of " + ShapeToString(in) + " is " +
                    std::to_string(dim));
  }
  return p;
}

Result<Shape> ResolveExpand(const OpView& op) {
  HML_ASSIGN_OR_RETURN(const Tensor* t, op.ConstantInput(1, "shape"));
  if (t == nullptr) return op.Error("the shape input is required");
  HML_ASSIGN_OR_RETURN(std::vector<int64_t> shape, ReadInts(op, *t, "shape"));
  for (int64_t d : shape) {
    if (d < 0) return op.Error("shape " + IntsToString(shape) + " has a negative dim");
  }
  Result<Shape> out = BroadcastShapes(op.shape(0), shape);
  if (!out.ok()) return op.Error(out.status().message());
  return out;
}

Result<std::vector<int64_t>> ResolveTileRepeats(const OpView& op) {
  if (op.opset() < 6) {
    return op.Unimplemented("Tile before opset 6 (tiles/axis inputs) is not supported");
  }
  HML_ASSIGN_OR_RETURN(const Tensor* t, op.ConstantInput(1, "repeats"));
  if (t == nullptr) return op.Error("the repeats input is required");
  HML_ASSIGN_OR_RETURN(std::vector<int64_t> repeats, ReadInts(op, *t, "repeats"));
  if (repeats.size() != op.shape(0).size()) {
    return op.Error("repeats " + IntsToString(repeats) + " must have one entry per dim of " +
                    ShapeToString(op.shape(0)));
  }
  for (size_t i = 0; i < repeats.size(); ++i) {
    int64_t d;
    if (repeats[i] < 0 || __builtin_mul_overflow(repeats[i], op.shape(0)[i], &d)) {
      return op.Error("repeats " + IntsToString(repeats) + " are negative or too large");
    }
  }
  return repeats;
}

Result<ResizeParams> ResolveResize(const OpView& op) {
  const Shape& in = op.shape(0);
  const size_t rank = in.size();
  const bool is_upsample = op.node().op_type == "Upsample";
  // Upsample and Resize-10 predate coordinate_transformation_mode.
  const bool legacy = is_upsample || op.opset() < 11;
  ResizeParams p;

  const std::string mode = op.attrs().GetString("mode", "nearest");
  if (mode == "nearest") {
    p.mode = ResizeMode::kNearest;
  } else if (mode == "linear" || (legacy && mode == "bilinear")) {
    p.mode = ResizeMode::kLinear;
  } else if (mode == "cubic") {
    return op.Unimplemented("mode 'cubic' is not supported (nearest and linear are)");
  } else {
    return op.Error("mode '" + mode + "' is not one of nearest, linear, cubic");
  }
  if (p.mode == ResizeMode::kLinear && op.dtype(0) != DType::kFloat32) {
    return op.Unimplemented("mode 'linear' supports float32 only, got " +
                            std::string(DTypeName(op.dtype(0))));
  }

  std::vector<float> scales;
  std::vector<int64_t> sizes;
  std::vector<float> roi;
  if (legacy) {
    p.coordinate_mode = ResizeCoordinateMode::kAsymmetric;
    p.nearest_mode = ResizeNearestMode::kLegacy;
    if (is_upsample && op.opset() < 9) {
      if (!op.attrs().Has("scales")) return op.Error("the scales attribute is required");
      scales = op.attrs().GetFloats("scales");
    } else {
      HML_ASSIGN_OR_RETURN(const Tensor* t, op.ConstantInput(1, "scales"));
      if (t == nullptr) return op.Error("the scales input is required");
      HML_ASSIGN_OR_RETURN(scales, ReadFloats(op, *t, "scales"));
    }
  } else {
    if (op.attrs().GetInt("antialias", 0) != 0) {
      return op.Unimplemented("antialias=1 is not supported");
    }
    if (op.attrs().Has("axes")) return op.Unimplemented("the axes attribute is not supported");
    const std::string policy = op.attrs().GetString("keep_aspect_ratio_policy", "stretch");
    if (policy != "stretch") {
      return op.Unimplemented("keep_aspect_ratio_policy '" + policy + "' is not supported");
    }
    const std::string coord = op.attrs().GetString("coordinate_transformation_mode", "half_pixel");
    if (coord == "half_pixel") {
      p.coordinate_mode = ResizeCoordinateMode::kHalfPixel;
    } else if (coord == "pytorch_half_pixel") {
      p.coordinate_mode = ResizeCoordinateMode::kPytorchHalfPixel;
    } else if (coord == "align_corners") {
      p.coordinate_mode = ResizeCoordinateMode::kAlignCorners;
    } else if (coord == "asymmetric") {
      p.coordinate_mode = ResizeCoordinateMode::kAsymmetric;
    } else if (coord == "tf_half_pixel_for_nn" || coord == "tf_half_pixel_for_nearest") {
      p.coordinate_mode = ResizeCoordinateMode::kTfHalfPixelForNearest;
    } else if (coord == "tf_crop_and_resize") {
      p.coordinate_mode = ResizeCoordinateMode::kTfCropAndResize;
    } else if (coord == "half_pixel_symmetric") {
      return op.Unimplemented(
          "coordinate_transformation_mode 'half_pixel_symmetric' is not "
          "supported");
    } else {
      return op.Error("coordinate_transformation_mode '" + coord + "' is unknown");
    }
    const std::string nearest = op.attrs().GetString("nearest_mode", "round_prefer_floor");
    if (nearest == "round_prefer_floor") {
      p.nearest_mode = ResizeNearestMode::kRoundPreferFloor;
    } else if (nearest == "round_prefer_ceil") {
      p.nearest_mode = ResizeNearestMode::kRoundPreferCeil;
    } else if (nearest == "floor") {
      p.nearest_mode = ResizeNearestMode::kFloor;
    } else if (nearest == "ceil") {
      p.nearest_mode = ResizeNearestMode::kCeil;
    } else {
      return op.Error("nearest_mode '" + nearest +
                      "' is not one of round_prefer_floor, "
                      "round_prefer_ceil, floor, ceil");
    }
    p.extrapolation_value = op.attrs().GetFloat("extrapolation_value", 0.0f);
    // roi only matters for tf_crop_and_resize; elsewhere it may even be a run-time value.
    if (p.coordinate_mode == ResizeCoordinateMode::kTfCropAndResize) {
      if (!HasElements(op, 1)) return op.Error("tf_crop_and_resize requires the roi input");
      HML_ASSIGN_OR_RETURN(const Tensor* t, op.ConstantInput(1, "roi"));
      HML_ASSIGN_OR_RETURN(roi, ReadFloats(op, *t, "roi"));
    }
    const bool has_scales = HasElements(op, 2);
    const bool has_sizes = HasElements(op, 3);
    if (has_scales == has_sizes) {
      return op.Error("exactly one of scales and sizes must be given");
    }
    if (has_scales) {
      HML_ASSIGN_OR_RETURN(const Tensor* t, op.ConstantInput(2, "scales"));
      HML_ASSIGN_OR_RETURN(scales, ReadFloats(op, *t, "scales"));
    } else {
      HML_ASSIGN_OR_RETURN(const Tensor* t, op.ConstantInput(3, "sizes"));
      HML_ASSIGN_OR_RETURN(sizes, ReadInts(op, *t, "sizes"));
    }
  }

  p.scales.resize(rank);
  p.resized_lengths.resize(rank);
  p.output.resize(rank);
  if (!sizes.empty()) {
    if (sizes.size() != rank) {
      return op.Error("sizes " + IntsToString(sizes) + " must have one entry per dim of " +
                      ShapeToString(in));
    }
    for (size_t i = 0; i < rank; ++i) {
      if (sizes[i] < 0) return op.Error("sizes " + IntsToString(sizes) + " has a negative entry");
      p.output[i] = sizes[i];
      p.resized_lengths[i] = static_cast<double>(sizes[i]);
      p.scales[i] = in[i] == 0 ? 1.0 : static_cast<double>(sizes[i]) / static_cast<double>(in[i]);
    }
  } else {
    if (scales.size() != rank) {
      return op.Error("scales has " + std::to_string(scales.size()) + " entries but the input " +
                      ShapeToString(in) + " has rank " + std::to_string(rank));
    }
    for (size_t i = 0; i < rank; ++i) {
      const double s = scales[i];
      if (!(s > 0.0) || !std::isfinite(s)) {
        return op.Error("scales must be positive and finite, got " + std::to_string(s) +
                        " for dim " + std::to_string(i));
      }
      const double length = static_cast<double>(in[i]) * s;
      if (length >= static_cast<double>(kMaxTensorBytes)) {
        return op.Error("scale " + std::to_string(s) + " makes dim " + std::to_string(i) +
                        " too large");
      }
      p.scales[i] = s;
      p.resized_lengths[i] = length;
      p.output[i] = static_cast<int64_t>(std::floor(length));
    }
  }

  p.roi_start.assign(rank, 0.0);
  p.roi_end.assign(rank, 1.0);
  if (!roi.empty()) {
    if (roi.size() != 2 * rank) {
      return op.Error("roi has " + std::to_string(roi.size()) + " entries, expected " +
                      std::to_string(2 * rank));
    }
    for (size_t i = 0; i < rank; ++i) {
      p.roi_start[i] = roi[i];
      p.roi_end[i] = roi[rank + i];
    }
  }
  return p;
}

double ResizeSourceCoordinate(const ResizeParams& p, size_t axis, int64_t in_length, int64_t x) {
  const double xr = static_cast<double>(x);
  const double scale = p.scales[axis];
  const double in_len = static_cast<double>(in_length);
  const double resized = p.resized_lengths[axis];
  switch (p.coordinate_mode) {
    case ResizeCoordinateMode::kHalfPixel:
      return (xr + 0.5) / scale - 0.5;
    case ResizeCoordinateMode::kPytorchHalfPixel:
      return p.output[axis] > 1 ? (xr + 0.5) / scale - 0.5 : 0.0;
    case ResizeCoordinateMode::kAlignCorners:
      return x == 0 || resized == 1.0 ? 0.0 : xr * (in_len - 1.0) / (resized - 1.0);
    case ResizeCoordinateMode::kAsymmetric:
      return xr / scale;
    case ResizeCoordinateMode::kTfHalfPixelForNearest:
      return (xr + 0.5) / scale;
    case ResizeCoordinateMode::kTfCropAndResize: {
      const double start = p.roi_start[axis];
      const double end = p.roi_end[axis];
      if (resized == 1.0) return 0.5 * (start + end) * (in_len - 1.0);
      return start * (in_len - 1.0) + xr * (end - start) * (in_len - 1.0) / (resized - 1.0);
    }
  }
  return 0.0;
}

int64_t ResizeNearestIndex(ResizeNearestMode mode, double x, double scale) {
  switch (mode) {
    case ResizeNearestMode::kRoundPreferFloor:
      return static_cast<int64_t>(std::ceil(x - 0.5));
    case ResizeNearestMode::kRoundPreferCeil:
      return static_cast<int64_t>(std::floor(x + 0.5));
    case ResizeNearestMode::kFloor:
      return static_cast<int64_t>(std::floor(x));
    case ResizeNearestMode::kCeil:
      return static_cast<int64_t>(std::ceil(x));
    case ResizeNearestMode::kLegacy:
      return static_cast<int64_t>(scale < 1.0 ? std::ceil(x) : std::floor(x));
  }
  return 0;
}

}  // namespace hml::runtime

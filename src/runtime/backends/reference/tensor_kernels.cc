// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Reference kernels of the data-movement ops. They are generic over every hybridml dtype. Most
// of them (Transpose, Slice, Pad, Tile, Expand, nearest Resize) are one engine: the factory
// builds, per output dim, a table of input offsets, and Run() walks the output in order reading
// the input through the tables. Reshape-like ops copy; Concat, Split and Gather copy blocks;
// linear Resize interpolates through per-dim weight tables.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "src/runtime/backends/reference/kernel_util.h"
#include "src/runtime/backends/reference/reference_backend.h"
#include "src/runtime/ops/tensor_params.h"

namespace hml::runtime {
namespace {

// Row-major strides (in elements) of `shape`.
std::vector<int64_t> Strides(const Shape& shape) {
  std::vector<int64_t> strides(shape.size(), 1);
  for (size_t i = shape.size(); i-- > 1;) strides[i - 1] = strides[i] * shape[i];
  return strides;
}

// ---- Plain copies: Reshape, Flatten, Squeeze, Unsqueeze.

template <Result<Shape> (*kResolve)(const OpView&)>
KernelResult MakeReshaped(KernelArgs args) {
  HML_RETURN_IF_ERROR(CheckArity(args, 1, 0));
  HML_ASSIGN_OR_RETURN(Shape out, kResolve(OpView::Of(args)));
  HML_RETURN_IF_ERROR(CheckOutput(args, 0, args.inputs[0].dtype(), out));
  return MakeCopyKernel(std::move(args));
}

// ---- The offset-table engine.

// Output element (o_0, ..., o_{r-1}) reads input element sum_a offsets[a][o_a]; a kFill entry in
// any dim writes the fill value instead (padding, extrapolation).
constexpr int64_t kFill = -1;

struct TablePlan {
  Shape out_dims;
  std::vector<std::vector<int64_t>> offsets;  // per output dim, one entry per index
  std::vector<int64_t> blocks;                // blocks[a] = elements per index of dim a
  bool inner_contiguous = false;              // the last table is first + i without fills
  int64_t num_elements = 0;
};

// Completes `plan` once out_dims and offsets are set.
void FinishPlan(TablePlan& plan) {
  const size_t rank = plan.out_dims.size();
  plan.blocks.assign(rank, 1);
  for (size_t a = rank; a-- > 1;) plan.blocks[a - 1] = plan.blocks[a] * plan.out_dims[a];
  plan.num_elements = NumElements(plan.out_dims);
  plan.inner_contiguous = false;
  if (rank > 0 && plan.out_dims.back() > 0) {
    const std::vector<int64_t>& last = plan.offsets.back();
    plan.inner_contiguous = last[0] != kFill;
    for (size_t i = 1; plan.inner_contiguous && i < last.size(); ++i) {
      plan.inner_contiguous = last[i] == last[0] + static_cast<int64_t>(i);
    }
  }
}

// Writes the output block of dim `a` starting at `out`; returns the end of what it wrote.
template <typename T>
T* CopyTableLevel(const TablePlan& plan, size_t a, int64_t base, const T* in, T* out, T fill) {
  const std::vector<int64_t>& offsets = plan.offsets[a];
  const int64_t n = plan.out_dims[a];
  if (a + 1 == plan.out_dims.size()) {
    if (plan.inner_contiguous) {
      std::memcpy(out, in + base + offsets[0], static_cast<size_t>(n) * sizeof(T));
    } else {
      for (int64_t i = 0; i < n; ++i) {
        const int64_t t = offsets[static_cast<size_t>(i)];
        out[i] = t == kFill ? fill : in[base + t];
      }
    }
    return out + n;
  }
  const int64_t block = plan.blocks[a];
  for (int64_t i = 0; i < n; ++i) {
    const int64_t t = offsets[static_cast<size_t>(i)];
    if (t == kFill) {
      std::fill_n(out, block, fill);
      out += block;
    } else {
      out = CopyTableLevel(plan, a + 1, base + t, in, out, fill);
    }
  }
  return out;
}

template <typename T>
void CopyTable(const TablePlan& plan, const T* in, T* out, T fill) {
  if (plan.num_elements == 0) return;
  if (plan.out_dims.empty()) {
    out[0] = in[0];
    return;
  }
  CopyTableLevel(plan, 0, 0, in, out, fill);
}

// Runs a TablePlan. The fill value is fixed at creation or, for Pad's constant_value input,
// read from that input on every Run.
template <typename T>
class TableKernel final : public Kernel {
 public:
  TableKernel(KernelArgs args, TablePlan plan, T fill, const T* fill_input)
      : args_(std::move(args)), plan_(std::move(plan)), fill_(fill), fill_input_(fill_input) {}
  Status Run() override {
    CopyTable(plan_, args_.inputs[0].data<T>(), args_.outputs[0].data<T>(),
              fill_input_ ? *fill_input_ : fill_);
    return Status::Ok();
  }

 private:
  KernelArgs args_;
  TablePlan plan_;
  T fill_;
  const T* fill_input_;
};

// Builds the TableKernel for input 0's dtype; `fill` is converted to that type.
KernelResult MakeTableKernel(KernelArgs args, TablePlan plan, float fill = 0.0f,
                             int fill_input = -1) {
  HML_RETURN_IF_ERROR(CheckOutput(args, 0, args.inputs[0].dtype(), plan.out_dims));
  FinishPlan(plan);
  return DispatchDType<kAllDTypes>(args, args.inputs[0].dtype(), [&](auto tag) -> KernelResult {
    using T = decltype(tag);
    const T* fill_ptr =
        fill_input >= 0 ? args.inputs[static_cast<size_t>(fill_input)].data<T>() : nullptr;
    return std::unique_ptr<Kernel>(
        new TableKernel<T>(std::move(args), std::move(plan), ConvertValue<T>(fill), fill_ptr));
  });
}

KernelResult MakeTranspose(KernelArgs args) {
  HML_RETURN_IF_ERROR(CheckArity(args, 1, 0));
  const OpView op = OpView::Of(args);
  HML_ASSIGN_OR_RETURN(std::vector<int> perm, ResolvePerm(op));
  const Shape& in = args.inputs[0].shape();
  const std::vector<int64_t> strides = Strides(in);
  TablePlan plan;
  for (int p : perm) {
    const size_t axis = static_cast<size_t>(p);
    plan.out_dims.push_back(in[axis]);
    std::vector<int64_t> table(static_cast<size_t>(in[axis]));
    for (size_t o = 0; o < table.size(); ++o) table[o] = static_cast<int64_t>(o) * strides[axis];
    plan.offsets.push_back(std::move(table));
  }
  return MakeTableKernel(std::move(args), std::move(plan));
}

KernelResult MakeSlice(KernelArgs args) {
  HML_RETURN_IF_ERROR(CheckArity(args, 1, 0));
  HML_ASSIGN_OR_RETURN(SliceParams p, ResolveSlice(OpView::Of(args)));
  const std::vector<int64_t> strides = Strides(args.inputs[0].shape());
  TablePlan plan;
  plan.out_dims = p.output;
  for (size_t a = 0; a < p.output.size(); ++a) {
    std::vector<int64_t> table(static_cast<size_t>(p.output[a]));
    for (size_t o = 0; o < table.size(); ++o) {
      table[o] = (p.starts[a] + static_cast<int64_t>(o) * p.steps[a]) * strides[a];
    }
    plan.offsets.push_back(std::move(table));
  }
  return MakeTableKernel(std::move(args), std::move(plan));
}

// Maps i (relative to the input's first element, may be outside [0, n)) into [0, n) by
// reflecting at the borders without repeating them, like numpy.pad(mode='reflect').
int64_t Reflect(int64_t i, int64_t n) {
  if (n == 1) return 0;
  const int64_t period = 2 * (n - 1);
  int64_t m = i % period;
  if (m < 0) m += period;
  return m < n ? m : period - m;
}

KernelResult MakePad(KernelArgs args) {
  HML_RETURN_IF_ERROR(CheckArity(args, 1, 0));
  HML_ASSIGN_OR_RETURN(PadParams p, ResolvePad(OpView::Of(args)));
  const Shape& in = args.inputs[0].shape();
  const std::vector<int64_t> strides = Strides(in);
  TablePlan plan;
  plan.out_dims = p.output;
  for (size_t a = 0; a < in.size(); ++a) {
    std::vector<int64_t> table(static_cast<size_t>(p.output[a]));
    for (size_t o = 0; o < table.size(); ++o) {
      int64_t i = static_cast<int64_t>(o) - p.begin[a];
      if (i < 0 || i >= in[a]) {
        switch (p.mode) {
          case PadMode::kConstant:
            i = kFill;
            break;
          case PadMode::kEdge:
            i = std::clamp<int64_t>(i, 0, in[a] - 1);
            break;
          case PadMode::kReflect:
            i = Reflect(i, in[a]);
            break;
        }
      }
      table[o] = i == kFill ? kFill : i * strides[a];
    }
    plan.offsets.push_back(std::move(table));
  }
  const int fill_input = p.value_from_input ? 2 : -1;
  return MakeTableKernel(std::move(args), std::move(plan), p.attr_value, fill_input);
}

KernelResult MakeTile(KernelArgs args) {
  HML_RETURN_IF_ERROR(CheckArity(args, 2, 0));
  HML_ASSIGN_OR_RETURN(std::vector<int64_t> repeats, ResolveTileRepeats(OpView::Of(args)));
  const Shape& in = args.inputs[0].shape();
  const std::vector<int64_t> strides = Strides(in);
  TablePlan plan;
  for (size_t a = 0; a < in.size(); ++a) {
    plan.out_dims.push_back(in[a] * repeats[a]);
    std::vector<int64_t> table(static_cast<size_t>(in[a] * repeats[a]));
    for (size_t o = 0; o < table.size(); ++o) {
      table[o] = (static_cast<int64_t>(o) % in[a]) * strides[a];
    }
    plan.offsets.push_back(std::move(table));
  }
  return MakeTableKernel(std::move(args), std::move(plan));
}

KernelResult MakeExpand(KernelArgs args) {
  HML_RETURN_IF_ERROR(CheckArity(args, 2, 0));
  HML_ASSIGN_OR_RETURN(Shape out, ResolveExpand(OpView::Of(args)));
  const Shape& in = args.inputs[0].shape();
  const std::vector<int64_t> strides = Strides(in);
  const size_t lead = out.size() - in.size();
  TablePlan plan;
  plan.out_dims = out;
  for (size_t a = 0; a < out.size(); ++a) {
    std::vector<int64_t> table(static_cast<size_t>(out[a]), 0);
    if (a >= lead && in[a - lead] != 1) {
      for (size_t o = 0; o < table.size(); ++o) {
        table[o] = static_cast<int64_t>(o) * strides[a - lead];
      }
    }
    plan.offsets.push_back(std::move(table));
  }
  return MakeTableKernel(std::move(args), std::move(plan));
}

// ---- Resize.

// Linear (N-linear) interpolation on float32. Per output dim and index: the two input offsets
// that bracket the sample, the weight of the second, and whether the sample lies outside the
// input (tf_crop_and_resize extrapolation). Dims the op leaves unchanged are "passive": they
// copy index o and need no interpolation.
class ResizeLinearKernel final : public Kernel {
 public:
  struct Axis {
    std::vector<int64_t> offset0;
    std::vector<int64_t> offset1;
    std::vector<double> weight1;
    std::vector<bool> outside;
    bool active = false;
  };

  ResizeLinearKernel(KernelArgs args, std::vector<Axis> axes, float extrapolation)
      : args_(std::move(args)), axes_(std::move(axes)), extrapolation_(extrapolation) {
    const Shape& out = args_.outputs[0].shape();
    for (size_t a = 0; a + 1 < out.size(); ++a) {
      if (axes_[a].active) outer_active_.push_back(a);
    }
    // Scratch for the corners of the outer active dims of one row.
    corner_offsets_.resize(size_t{1} << outer_active_.size());
    corner_weights_.resize(corner_offsets_.size());
  }

  Status Run() override {
    const Shape& out = args_.outputs[0].shape();
    const float* x = args_.inputs[0].data<float>();
    float* y = args_.outputs[0].data<float>();
    const int64_t total = args_.outputs[0].num_elements();
    if (total == 0) return Status::Ok();
    const size_t rank = out.size();
    const int64_t inner = out[rank - 1];
    const Axis& last = axes_[rank - 1];
    const int64_t rows = total / inner;
    int64_t index[kMaxRank] = {};
    for (int64_t r = 0; r < rows; ++r, y += inner) {
      // Offsets of the passive outer dims, and whether the row is outside.
      int64_t base = 0;
      bool outside = false;
      for (size_t a = 0; a + 1 < rank; ++a) {
        const size_t i = static_cast<size_t>(index[a]);
        if (axes_[a].outside[i]) outside = true;
        if (!axes_[a].active) base += axes_[a].offset0[i];
      }
      if (outside) {
        std::fill_n(y, inner, extrapolation_);
      } else {
        const size_t corners = corner_offsets_.size();
        for (size_t c = 0; c < corners; ++c) {
          int64_t offset = base;
          double weight = 1.0;
          for (size_t j = 0; j < outer_active_.size(); ++j) {
            const Axis& axis = axes_[outer_active_[j]];
            const size_t i = static_cast<size_t>(index[outer_active_[j]]);
            if ((c >> j) & 1) {
              offset += axis.offset1[i];
              weight *= axis.weight1[i];
            } else {
              offset += axis.offset0[i];
              weight *= 1.0 - axis.weight1[i];
            }
          }
          corner_offsets_[c] = offset;
          corner_weights_[c] = weight;
        }
        for (int64_t o = 0; o < inner; ++o) {
          const size_t i = static_cast<size_t>(o);
          if (last.outside[i]) {
            y[o] = extrapolation_;
            continue;
          }
          double acc = 0.0;
          if (last.active) {
            const double w1 = last.weight1[i];
            for (size_t c = 0; c < corners; ++c) {
              const float* row = x + corner_offsets_[c];
              acc += corner_weights_[c] *
                     ((1.0 - w1) * row[last.offset0[i]] + w1 * row[last.offset1[i]]);
            }
          } else {
            for (size_t c = 0; c < corners; ++c) {
              acc += corner_weights_[c] * x[corner_offsets_[c] + last.offset0[i]];
            }
          }
          y[o] = static_cast<float>(acc);
        }
      }
      for (size_t a = rank - 1; a-- > 0;) {
        if (++index[a] < out[a]) break;
        index[a] = 0;
      }
    }
    return Status::Ok();
  }

 private:
  KernelArgs args_;
  std::vector<Axis> axes_;
  float extrapolation_;
  std::vector<size_t> outer_active_;
  std::vector<int64_t> corner_offsets_;
  std::vector<double> corner_weights_;
};

bool IsOutside(const ResizeParams& p, double x, int64_t in_length) {
  return p.coordinate_mode == ResizeCoordinateMode::kTfCropAndResize &&
         (x < 0.0 || x > static_cast<double>(in_length - 1));
}

KernelResult MakeResize(KernelArgs args) {
  HML_RETURN_IF_ERROR(CheckArity(args, 1, 0));
  const OpView op = OpView::Of(args);
  HML_ASSIGN_OR_RETURN(ResizeParams p, ResolveResize(op));
  const Shape& in = args.inputs[0].shape();
  if (in.empty()) return args.Error("cannot resize a scalar");
  if (in.size() > static_cast<size_t>(kMaxRank)) return args.Error("rank exceeds the limit");
  for (size_t a = 0; a < in.size(); ++a) {
    if (in[a] == 0 && p.output[a] > 0) {
      return args.Error("cannot resize the empty dim " + std::to_string(a));
    }
  }
  const std::vector<int64_t> strides = Strides(in);

  if (p.mode == ResizeMode::kNearest) {
    TablePlan plan;
    plan.out_dims = p.output;
    for (size_t a = 0; a < in.size(); ++a) {
      std::vector<int64_t> table(static_cast<size_t>(p.output[a]));
      for (size_t o = 0; o < table.size(); ++o) {
        const double x = ResizeSourceCoordinate(p, a, in[a], static_cast<int64_t>(o));
        if (IsOutside(p, x, in[a])) {
          table[o] = kFill;
          continue;
        }
        const int64_t i = ResizeNearestIndex(p.nearest_mode, x, p.scales[a]);
        table[o] = std::clamp<int64_t>(i, 0, in[a] - 1) * strides[a];
      }
      plan.offsets.push_back(std::move(table));
    }
    return MakeTableKernel(std::move(args), std::move(plan), p.extrapolation_value);
  }

  HML_RETURN_IF_ERROR(CheckOutput(args, 0, DType::kFloat32, p.output));
  std::vector<ResizeLinearKernel::Axis> axes(in.size());
  for (size_t a = 0; a < in.size(); ++a) {
    ResizeLinearKernel::Axis& axis = axes[a];
    const size_t n = static_cast<size_t>(p.output[a]);
    axis.offset0.resize(n);
    axis.offset1.resize(n);
    axis.weight1.resize(n);
    axis.outside.resize(n);
    for (size_t o = 0; o < n; ++o) {
      const double x = ResizeSourceCoordinate(p, a, in[a], static_cast<int64_t>(o));
      if (IsOutside(p, x, in[a])) {
        axis.outside[o] = true;
        axis.active = true;
        continue;
      }
      // Samples beyond the borders reuse the edge element, as the ONNX reference does.
      const double lower = std::floor(x);
      const int64_t i0 = static_cast<int64_t>(lower);
      axis.offset0[o] = std::clamp<int64_t>(i0, 0, in[a] - 1) * strides[a];
      axis.offset1[o] = std::clamp<int64_t>(i0 + 1, 0, in[a] - 1) * strides[a];
      axis.weight1[o] = x - lower;
      if (axis.weight1[o] != 0.0 || i0 != static_cast<int64_t>(o)) axis.active = true;
    }
    if (p.output[a] != in[a]) axis.active = true;
    // Passive dims use offset0 = o * stride, which the loop above already set.
  }
  const float extrapolation = p.extrapolation_value;
  return std::unique_ptr<Kernel>(
      new ResizeLinearKernel(std::move(args), std::move(axes), extrapolation));
}

// ---- Concat, Gather, Shape.

class ConcatKernel final : public Kernel {
 public:
  // `block_bytes[i]`: bytes input i contributes per outer index.
  ConcatKernel(KernelArgs args, int64_t outer, std::vector<size_t> block_bytes)
      : args_(std::move(args)), outer_(outer), block_bytes_(std::move(block_bytes)) {}
  Status Run() override {
    auto* out = static_cast<unsigned char*>(args_.outputs[0].raw_data());
    for (int64_t o = 0; o < outer_; ++o) {
      for (size_t i = 0; i < block_bytes_.size(); ++i) {
        const size_t bytes = block_bytes_[i];
        if (bytes == 0) continue;
        const auto* in = static_cast<const unsigned char*>(args_.inputs[i].raw_data());
        std::memcpy(out, in + static_cast<size_t>(o) * bytes, bytes);
        out += bytes;
      }
    }
    return Status::Ok();
  }

 private:
  KernelArgs args_;
  int64_t outer_;
  std::vector<size_t> block_bytes_;
};

KernelResult MakeConcat(KernelArgs args) {
  const OpView op = OpView::Of(args);
  HML_ASSIGN_OR_RETURN(int axis, ResolveConcatAxis(op));
  const size_t a = static_cast<size_t>(axis);
  Shape out = args.inputs[0].shape();
  out[a] = 0;
  for (const Tensor& t : args.inputs) out[a] += t.shape()[a];
  HML_RETURN_IF_ERROR(CheckOutput(args, 0, args.inputs[0].dtype(), out));
  const int64_t outer = NumElements(Shape(out.begin(), out.begin() + axis));
  const int64_t inner = NumElements(Shape(out.begin() + axis + 1, out.end()));
  const size_t element = DTypeSize(args.inputs[0].dtype());
  std::vector<size_t> block_bytes;
  for (const Tensor& t : args.inputs) {
    block_bytes.push_back(static_cast<size_t>(t.shape()[a] * inner) * element);
  }
  return std::unique_ptr<Kernel>(new ConcatKernel(std::move(args), outer, std::move(block_bytes)));
}

// Split: per outer index, each output takes its block of the input in turn.
class SplitKernel final : public Kernel {
 public:
  // `block_bytes[k]`: bytes output k takes per outer index.
  SplitKernel(KernelArgs args, int64_t outer, std::vector<size_t> block_bytes)
      : args_(std::move(args)), outer_(outer), block_bytes_(std::move(block_bytes)) {}
  Status Run() override {
    const auto* in = static_cast<const unsigned char*>(args_.inputs[0].raw_data());
    for (int64_t o = 0; o < outer_; ++o) {
      for (size_t k = 0; k < block_bytes_.size(); ++k) {
        const size_t bytes = block_bytes_[k];
        Tensor& out = args_.outputs[k];
        if (bytes > 0 && !out.empty()) {
          std::memcpy(static_cast<unsigned char*>(out.raw_data()) + static_cast<size_t>(o) * bytes,
                      in, bytes);
        }
        in += bytes;
      }
    }
    return Status::Ok();
  }

 private:
  KernelArgs args_;
  int64_t outer_;
  std::vector<size_t> block_bytes_;
};

KernelResult MakeSplit(KernelArgs args) {
  HML_RETURN_IF_ERROR(CheckArity(args, 1, 0));
  HML_ASSIGN_OR_RETURN(SplitParams p, ResolveSplit(OpView::Of(args), args.outputs.size()));
  const Shape& in = args.inputs[0].shape();
  const size_t axis = static_cast<size_t>(p.axis);
  const int64_t outer = NumElements(Shape(in.begin(), in.begin() + p.axis));
  const int64_t inner = NumElements(Shape(in.begin() + p.axis + 1, in.end()));
  const size_t element = DTypeSize(args.inputs[0].dtype());
  std::vector<size_t> block_bytes;
  for (size_t k = 0; k < p.sizes.size(); ++k) {
    const Tensor& out = args.outputs[k];
    Shape expected = in;
    expected[axis] = p.sizes[k];
    if (!out.empty() && (out.shape() != expected || out.dtype() != args.inputs[0].dtype())) {
      return args.Error("output " + std::to_string(k) + " " + ShapeToString(out.shape()) +
                        " does not match the expected " + ShapeToString(expected));
    }
    block_bytes.push_back(static_cast<size_t>(p.sizes[k] * inner) * element);
  }
  return std::unique_ptr<Kernel>(new SplitKernel(std::move(args), outer, std::move(block_bytes)));
}

template <typename Index>
class GatherKernel final : public Kernel {
 public:
  GatherKernel(KernelArgs args, int64_t outer, int64_t axis_dim, size_t block_bytes)
      : args_(std::move(args)), outer_(outer), axis_dim_(axis_dim), block_bytes_(block_bytes) {}
  Status Run() override {
    const Index* indices = args_.inputs[1].data<Index>();
    const int64_t count = args_.inputs[1].num_elements();
    // Validate every index before writing anything.
    for (int64_t j = 0; j < count; ++j) {
      const int64_t i = indices[j];
      if (i < -axis_dim_ || i >= axis_dim_) {
        return OutOfRangeError(args_.node->op_type + " '" + args_.node->name + "': index " +
                               std::to_string(i) + " is out of range [" +
                               std::to_string(-axis_dim_) + ", " + std::to_string(axis_dim_ - 1) +
                               "]");
      }
    }
    if (block_bytes_ == 0) return Status::Ok();
    const auto* data = static_cast<const unsigned char*>(args_.inputs[0].raw_data());
    auto* out = static_cast<unsigned char*>(args_.outputs[0].raw_data());
    for (int64_t o = 0; o < outer_; ++o) {
      const unsigned char* slab = data + static_cast<size_t>(o * axis_dim_) * block_bytes_;
      for (int64_t j = 0; j < count; ++j) {
        int64_t i = indices[j];
        if (i < 0) i += axis_dim_;
        std::memcpy(out, slab + static_cast<size_t>(i) * block_bytes_, block_bytes_);
        out += block_bytes_;
      }
    }
    return Status::Ok();
  }

 private:
  KernelArgs args_;
  int64_t outer_;
  int64_t axis_dim_;
  size_t block_bytes_;
};

KernelResult MakeGather(KernelArgs args) {
  HML_RETURN_IF_ERROR(CheckArity(args, 2, 0));
  const OpView op = OpView::Of(args);
  HML_ASSIGN_OR_RETURN(int axis, ResolveGatherAxis(op));
  const Shape& data = args.inputs[0].shape();
  Shape out(data.begin(), data.begin() + axis);
  out.insert(out.end(), args.inputs[1].shape().begin(), args.inputs[1].shape().end());
  out.insert(out.end(), data.begin() + axis + 1, data.end());
  HML_RETURN_IF_ERROR(CheckOutput(args, 0, args.inputs[0].dtype(), out));
  const int64_t outer = NumElements(Shape(data.begin(), data.begin() + axis));
  const int64_t inner = NumElements(Shape(data.begin() + axis + 1, data.end()));
  const int64_t axis_dim = data[static_cast<size_t>(axis)];
  const size_t block_bytes = static_cast<size_t>(inner) * DTypeSize(args.inputs[0].dtype());
  if (args.inputs[1].dtype() == DType::kInt32) {
    return std::unique_ptr<Kernel>(
        new GatherKernel<int32_t>(std::move(args), outer, axis_dim, block_bytes));
  }
  return std::unique_ptr<Kernel>(
      new GatherKernel<int64_t>(std::move(args), outer, axis_dim, block_bytes));
}

class ShapeKernel final : public Kernel {
 public:
  ShapeKernel(KernelArgs args, std::vector<int64_t> dims)
      : args_(std::move(args)), dims_(std::move(dims)) {}
  Status Run() override {
    int64_t* out = args_.outputs[0].data<int64_t>();
    for (size_t i = 0; i < dims_.size(); ++i) out[i] = dims_[i];
    return Status::Ok();
  }

 private:
  KernelArgs args_;
  std::vector<int64_t> dims_;
};

KernelResult MakeShape(KernelArgs args) {
  HML_RETURN_IF_ERROR(CheckArity(args, 1, 0));
  HML_ASSIGN_OR_RETURN(ShapeSlice slice, ResolveShapeSlice(OpView::Of(args)));
  HML_RETURN_IF_ERROR(CheckOutput(args, 0, DType::kInt64, Shape{slice.count}));
  const Shape& in = args.inputs[0].shape();
  std::vector<int64_t> dims(in.begin() + slice.start, in.begin() + slice.start + slice.count);
  return std::unique_ptr<Kernel>(new ShapeKernel(std::move(args), std::move(dims)));
}

}  // namespace

void AddTensorKernels(KernelRegistry& registry) {
  registry.Add("", "Flatten", MakeReshaped<ResolveFlatten>);
  registry.Add("", "Reshape", MakeReshaped<ResolveReshape>);
  registry.Add("", "Squeeze", MakeReshaped<ResolveSqueeze>);
  registry.Add("", "Unsqueeze", MakeReshaped<ResolveUnsqueeze>);
  registry.Add("", "Transpose", MakeTranspose);
  registry.Add("", "Concat", MakeConcat);
  registry.Add("", "Gather", MakeGather);
  registry.Add("", "Shape", MakeShape);
  registry.Add("", "Slice", MakeSlice);
  registry.Add("", "Pad", MakePad);
  registry.Add("", "Resize", MakeResize);
  registry.Add("", "Upsample", MakeResize);
  registry.Add("", "Expand", MakeExpand);
  registry.Add("", "Tile", MakeTile);
  registry.Add("", "Split", MakeSplit);
}

}  // namespace hml::runtime

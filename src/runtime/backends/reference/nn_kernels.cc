// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Reference kernels of the "nn" op group (float and integer; the quantized ops live in
// quant_kernels.cc). Plain loops in a sensible order, no approximations: reductions that feed a
// division or a log (averages, softmax sums, batch-norm factors) run in double. Create()
// validates shapes and precomputes index tables; Run() only reads inputs and writes outputs.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "src/runtime/backends/reference/kernel_util.h"
#include "src/runtime/backends/reference/nn_common.h"
#include "src/runtime/backends/reference/reference_backend.h"

namespace hml::runtime {
namespace {

using nn_internal::ConvGeometry;
using nn_internal::MatMulGeometry;
using nn_internal::Range;
using nn_internal::ValidRange;
using nn_internal::Window3;

// Checks the inputs of Conv and ConvTranspose: float32 X and W, optional float32 bias.
Status CheckConvInputs(const KernelArgs& args) {
  HML_RETURN_IF_ERROR(CheckArity(args, 2, 1));
  HML_RETURN_IF_ERROR(CheckInput(args, 0, DType::kFloat32));
  HML_RETURN_IF_ERROR(CheckInput(args, 1, DType::kFloat32));
  if (HasInput(args, 2)) HML_RETURN_IF_ERROR(CheckInput(args, 2, DType::kFloat32));
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// Conv: direct convolution, one output plane at a time (bias first, then each input channel of
// its group), so the plane stays in cache while every tap is added.

class ConvKernel final : public Kernel {
 public:
  static Result<std::unique_ptr<Kernel>> Create(KernelArgs args) {
    HML_RETURN_IF_ERROR(CheckConvInputs(args));
    if (args.outputs[0].dtype() != DType::kFloat32) return args.Error("output must be float32");
    HML_ASSIGN_OR_RETURN(ConvGeometry c, nn_internal::MakeConvGeometry(args, 0, 1, 2));
    auto k = std::unique_ptr<ConvKernel>(new ConvKernel(std::move(args), std::move(c)));
    return Wrap(std::move(k));
  }

  Status Run() override {
    const Window3& g = c_.window;
    const float* x = args_.inputs[0].data<float>();
    const float* w = args_.inputs[1].data<float>();
    const float* bias = HasInput(args_, 2) ? args_.inputs[2].data<float>() : nullptr;
    float* y = args_.outputs[0].data<float>();
    const int64_t in_size = g.in_size(), out_size = g.out_size(), k_size = g.kernel_size();
    const auto identity = [](float v) { return v; };
    for (int64_t n = 0; n < c_.batch; ++n) {
      for (int64_t oc = 0; oc < c_.out_channels; ++oc) {
        const int64_t grp = oc / c_.out_per_group;
        float* y_plane = y + (n * c_.out_channels + oc) * out_size;
        std::fill(y_plane, y_plane + out_size, bias ? bias[oc] : 0.0f);
        for (int64_t ci = 0; ci < c_.in_per_group; ++ci) {
          const int64_t ic = grp * c_.in_per_group + ci;
          nn_internal::AccumulateConvChannel(g, c_.taps, x + (n * c_.in_channels + ic) * in_size,
                                             w + (oc * c_.in_per_group + ci) * k_size, y_plane,
                                             identity);
        }
      }
    }
    return Status::Ok();
  }

 private:
  ConvKernel(KernelArgs args, ConvGeometry c) : args_(std::move(args)), c_(std::move(c)) {}
  KernelArgs args_;
  ConvGeometry c_;
};

// ---------------------------------------------------------------------------------------------
// ConvTranspose: scatter form. Each input element adds w * x to the outputs its taps reach:
// out = in * stride + tap * dilation - pad_begin. Padding may be negative (output_shape larger
// than the full result), which the tap tables handle like any other offset.

class ConvTransposeKernel final : public Kernel {
 public:
  static Result<std::unique_ptr<Kernel>> Create(KernelArgs args) {
    HML_RETURN_IF_ERROR(CheckConvInputs(args));
    const Shape& xs = args.inputs[0].shape();
    const Shape& ws = args.inputs[1].shape();
    const int64_t group = args.node->attrs.GetInt("group", 1);
    if (xs.size() < 3 || ws.size() != xs.size() || group <= 0 || group > kMaxTensorBytes ||
        ws[0] != xs[1] || xs[1] % group != 0) {
      return args.Error("weight " + ShapeToString(ws) + " does not fit input " + ShapeToString(xs) +
                        " with group " + std::to_string(group));
    }
    auto k = std::unique_ptr<ConvTransposeKernel>(new ConvTransposeKernel(std::move(args)));
    k->batch_ = xs[0];
    k->in_channels_ = xs[1];
    k->group_ = group;
    k->in_per_group_ = xs[1] / group;
    k->out_per_group_ = ws[1];
    k->out_channels_ = ws[1] * group;
    if (HasInput(k->args_, 2) && k->args_.inputs[2].shape() != Shape{k->out_channels_}) {
      return k->args_.Error("bias must have shape [" + std::to_string(k->out_channels_) + "]");
    }
    HML_ASSIGN_OR_RETURN(WindowParams p,
                         ResolveWindow(*k->args_.node, WindowKind::kConvTranspose, xs,
                                       std::vector<int64_t>(ws.begin() + 2, ws.end())));
    HML_ASSIGN_OR_RETURN(k->g_, nn_internal::ToWindow3(k->args_, p));
    HML_RETURN_IF_ERROR(
        CheckOutput(k->args_, 0, DType::kFloat32, WindowOutputShape(xs[0], k->out_channels_, p)));
    const Window3& g = k->g_;
    // Per input index of the outer dims: the taps landing inside the output.
    for (int64_t i = 0; i < g.in[0]; ++i) {
      k->taps_d_.push_back(
          ValidRange(i * g.stride[0] - g.pad[0], g.dilation[0], g.out[0], g.kernel[0]));
    }
    for (int64_t i = 0; i < g.in[1]; ++i) {
      k->taps_h_.push_back(
          ValidRange(i * g.stride[1] - g.pad[1], g.dilation[1], g.out[1], g.kernel[1]));
    }
    // Per tap of the inner dim: the input indices whose output lands inside the row.
    for (int64_t t = 0; t < g.kernel[2]; ++t) {
      k->ins_w_.push_back(ValidRange(t * g.dilation[2] - g.pad[2], g.stride[2], g.out[2], g.in[2]));
    }
    return Wrap(std::move(k));
  }

  Status Run() override {
    const Window3& g = g_;
    const float* x = args_.inputs[0].data<float>();
    const float* w = args_.inputs[1].data<float>();
    const float* bias = HasInput(args_, 2) ? args_.inputs[2].data<float>() : nullptr;
    float* y = args_.outputs[0].data<float>();
    const int64_t in_size = g.in_size(), out_size = g.out_size(), k_size = g.kernel_size();
    for (int64_t n = 0; n < batch_; ++n) {
      for (int64_t oc = 0; oc < out_channels_; ++oc) {
        const int64_t grp = oc / out_per_group_;
        const int64_t mo = oc % out_per_group_;
        float* y_plane = y + (n * out_channels_ + oc) * out_size;
        std::fill(y_plane, y_plane + out_size, bias ? bias[oc] : 0.0f);
        for (int64_t ci = 0; ci < in_per_group_; ++ci) {
          const int64_t ic = grp * in_per_group_ + ci;
          const float* x_plane = x + (n * in_channels_ + ic) * in_size;
          // W is [C, M/group, k...].
          const float* w_kernel = w + (ic * out_per_group_ + mo) * k_size;
          Scatter(x_plane, w_kernel, y_plane);
        }
      }
    }
    return Status::Ok();
  }

 private:
  explicit ConvTransposeKernel(KernelArgs args) : args_(std::move(args)) {}

  void Scatter(const float* x, const float* w, float* y) const {
    const Window3& g = g_;
    for (int64_t id = 0; id < g.in[0]; ++id) {
      const Range rd = taps_d_[static_cast<size_t>(id)];
      for (int64_t ih = 0; ih < g.in[1]; ++ih) {
        const Range rh = taps_h_[static_cast<size_t>(ih)];
        const float* x_row = x + (id * g.in[1] + ih) * g.in[2];
        for (int64_t kd = rd.lo; kd < rd.hi; ++kd) {
          const int64_t od = id * g.stride[0] - g.pad[0] + kd * g.dilation[0];
          for (int64_t kh = rh.lo; kh < rh.hi; ++kh) {
            const int64_t oh = ih * g.stride[1] - g.pad[1] + kh * g.dilation[1];
            float* y_row = y + (od * g.out[1] + oh) * g.out[2];
            const float* w_row = w + (kd * g.kernel[1] + kh) * g.kernel[2];
            for (int64_t kw = 0; kw < g.kernel[2]; ++kw) {
              const float wv = w_row[kw];
              const Range rw = ins_w_[static_cast<size_t>(kw)];
              const int64_t base = kw * g.dilation[2] - g.pad[2];
              for (int64_t iw = rw.lo; iw < rw.hi; ++iw) {
                y_row[iw * g.stride[2] + base] += wv * x_row[iw];
              }
            }
          }
        }
      }
    }
  }

  KernelArgs args_;
  Window3 g_;
  int64_t batch_ = 0, in_channels_ = 0, out_channels_ = 0, group_ = 1;
  int64_t in_per_group_ = 0, out_per_group_ = 0;
  std::vector<Range> taps_d_, taps_h_, ins_w_;
};

// ---------------------------------------------------------------------------------------------
// Gemm: Y = alpha * A' * B' + beta * C, A' = transA ? A^T : A, B' likewise; C broadcasts
// unidirectionally to [M, N].

class GemmKernel final : public Kernel {
 public:
  static Result<std::unique_ptr<Kernel>> Create(KernelArgs args) {
    HML_RETURN_IF_ERROR(CheckArity(args, 2, 1));
    HML_RETURN_IF_ERROR(CheckInput(args, 0, DType::kFloat32));
    HML_RETURN_IF_ERROR(CheckInput(args, 1, DType::kFloat32));
    const Shape& a = args.inputs[0].shape();
    const Shape& b = args.inputs[1].shape();
    if (a.size() != 2 || b.size() != 2) return args.Error("A and B must have rank 2");
    auto k = std::unique_ptr<GemmKernel>(new GemmKernel(std::move(args)));
    const Attributes& attrs = k->args_.node->attrs;
    k->trans_a_ = attrs.GetInt("transA", 0) != 0;
    k->trans_b_ = attrs.GetInt("transB", 0) != 0;
    k->alpha_ = attrs.GetFloat("alpha", 1.0f);
    k->beta_ = attrs.GetFloat("beta", 1.0f);
    k->m_ = k->trans_a_ ? a[1] : a[0];
    k->k_ = k->trans_a_ ? a[0] : a[1];
    k->n_ = k->trans_b_ ? b[0] : b[1];
    if ((k->trans_b_ ? b[1] : b[0]) != k->k_) return k->args_.Error("inner dimensions differ");
    HML_RETURN_IF_ERROR(CheckOutput(k->args_, 0, DType::kFloat32, {k->m_, k->n_}));
    if (HasInput(k->args_, 2)) {
      HML_RETURN_IF_ERROR(CheckInput(k->args_, 2, DType::kFloat32));
      const Shape& c = k->args_.inputs[2].shape();
      if (c.size() > 2) return k->args_.Error("C must have rank <= 2");
      const int64_t cm = c.size() == 2 ? c[0] : 1;
      const int64_t cn = c.empty() ? 1 : c.back();
      if ((cm != 1 && cm != k->m_) || (cn != 1 && cn != k->n_)) {
        return k->args_.Error("C " + ShapeToString(c) + " does not broadcast to [" +
                              std::to_string(k->m_) + "," + std::to_string(k->n_) + "]");
      }
      k->has_c_ = true;
      k->c_row_stride_ = cm == 1 ? 0 : cn;
      k->c_col_stride_ = cn == 1 ? 0 : 1;
    }
    return Wrap(std::move(k));
  }

  Status Run() override {
    const float* a = args_.inputs[0].data<float>();
    const float* b = args_.inputs[1].data<float>();
    const float* c = has_c_ ? args_.inputs[2].data<float>() : nullptr;
    float* y = args_.outputs[0].data<float>();
    // Element (i, p) of A' and (p, j) of B'.
    const int64_t a_row = trans_a_ ? 1 : k_, a_col = trans_a_ ? m_ : 1;
    for (int64_t i = 0; i < m_; ++i) {
      float* y_row = y + i * n_;
      if (!trans_b_) {
        // Row i of A' times B: accumulate rows of B (contiguous).
        std::fill(y_row, y_row + n_, 0.0f);
        for (int64_t p = 0; p < k_; ++p) {
          const float av = a[i * a_row + p * a_col];
          const float* b_row = b + p * n_;
          for (int64_t j = 0; j < n_; ++j) y_row[j] += av * b_row[j];
        }
      } else {
        // B is [N, K]: each output is a dot product with a contiguous row of B.
        for (int64_t j = 0; j < n_; ++j) {
          const float* b_row = b + j * k_;
          float acc = 0.0f;
          for (int64_t p = 0; p < k_; ++p) acc += a[i * a_row + p * a_col] * b_row[p];
          y_row[j] = acc;
        }
      }
      for (int64_t j = 0; j < n_; ++j) {
        y_row[j] *= alpha_;
        if (c != nullptr) y_row[j] += beta_ * c[i * c_row_stride_ + j * c_col_stride_];
      }
    }
    return Status::Ok();
  }

 private:
  explicit GemmKernel(KernelArgs args) : args_(std::move(args)) {}
  KernelArgs args_;
  bool trans_a_ = false, trans_b_ = false, has_c_ = false;
  float alpha_ = 1.0f, beta_ = 1.0f;
  int64_t m_ = 0, k_ = 0, n_ = 0;
  int64_t c_row_stride_ = 0, c_col_stride_ = 0;
};

// ---------------------------------------------------------------------------------------------
// MatMul with numpy semantics. Integer products wrap modulo 2^bits (the arithmetic runs on the
// unsigned type of the same width), as numpy's int32/int64 matmul does, instead of being
// undefined behaviour.

template <typename T>
struct WrapType {
  using type = T;
};
template <>
struct WrapType<int32_t> {
  using type = uint32_t;
};
template <>
struct WrapType<int64_t> {
  using type = uint64_t;
};

template <typename T>
class MatMulKernel final : public Kernel {
 public:
  static Result<std::unique_ptr<Kernel>> Create(KernelArgs args) {
    HML_RETURN_IF_ERROR(CheckInput(args, 1, DTypeOf<T>()));
    if (args.outputs[0].dtype() != DTypeOf<T>()) return args.Error("output dtype differs");
    HML_ASSIGN_OR_RETURN(MatMulGeometry g, nn_internal::MakeMatMulGeometry(args, 0, 1));
    auto k = std::unique_ptr<MatMulKernel>(new MatMulKernel(std::move(args)));
    k->m_ = g.m;
    k->k_ = g.k;
    k->n_ = g.n;
    k->batches_ = std::move(g.batches);
    return Wrap(std::move(k));
  }

  Status Run() override {
    using U = typename WrapType<T>::type;
    const T* a = args_.inputs[0].data<T>();
    const T* b = args_.inputs[1].data<T>();
    // Signed and unsigned integers of one width may alias; for float U is T.
    U* y = reinterpret_cast<U*>(args_.outputs[0].data<T>());
    for (size_t batch = 0; batch < batches_.a.size(); ++batch) {
      const T* a_mat = a + batches_.a[batch] * m_ * k_;
      const T* b_mat = b + batches_.b[batch] * k_ * n_;
      U* y_mat = y + static_cast<int64_t>(batch) * m_ * n_;
      for (int64_t i = 0; i < m_; ++i) {
        U* y_row = y_mat + i * n_;
        std::fill(y_row, y_row + n_, U{0});
        for (int64_t p = 0; p < k_; ++p) {
          const U av = static_cast<U>(a_mat[i * k_ + p]);
          const T* b_row = b_mat + p * n_;
          for (int64_t j = 0; j < n_; ++j) y_row[j] += av * static_cast<U>(b_row[j]);
        }
      }
    }
    return Status::Ok();
  }

 private:
  explicit MatMulKernel(KernelArgs args) : args_(std::move(args)) {}
  KernelArgs args_;
  nn_internal::BatchMap batches_;
  int64_t m_ = 0, k_ = 0, n_ = 0;
};

Result<std::unique_ptr<Kernel>> CreateMatMul(KernelArgs args) {
  HML_RETURN_IF_ERROR(CheckArity(args, 2, 1));
  constexpr DTypeSet kDTypes{DType::kFloat32, DType::kInt32, DType::kInt64};
  return DispatchDTypeOrUnimplemented<kDTypes>(args, "dtype", args.inputs[0].dtype(), [&](auto t) {
    return MatMulKernel<decltype(t)>::Create(std::move(args));
  });
}

// ---------------------------------------------------------------------------------------------
// Pooling. Per spatial dim and output index, the kernel taps that land inside the input are
// precomputed; a window touching no input element is rejected at creation (it has no max and,
// without padding in the count, no average).

// The validated geometry of a MaxPool or AveragePool node and its tap tables.
struct PoolGeometry {
  Window3 g;
  int64_t planes = 0;                         // N * C
  std::vector<Range> taps_d, taps_h, taps_w;  // indexed by output index
  // Taps inside the padded input (input plus pads on both sides), for count_include_pad.
  std::vector<int64_t> padded_d, padded_h, padded_w;

  // Calls fn(o, plane, od, oh, ow) for every output element, `o` being its flat index, in
  // output order.
  template <typename Fn>
  void ForEachOutput(Fn&& fn) const {
    int64_t o = 0;
    for (int64_t plane = 0; plane < planes; ++plane) {
      for (int64_t od = 0; od < g.out[0]; ++od) {
        for (int64_t oh = 0; oh < g.out[1]; ++oh) {
          for (int64_t ow = 0; ow < g.out[2]; ++ow) fn(o++, plane, od, oh, ow);
        }
      }
    }
  }

  // Calls tap(id, ih, iw) for each tap of the window of output (od, oh, ow) that lands inside
  // the input, in row-major window order.
  template <typename Tap>
  void ForEachTap(int64_t od, int64_t oh, int64_t ow, Tap&& tap) const {
    const Range rd = taps_d[static_cast<size_t>(od)];
    const Range rh = taps_h[static_cast<size_t>(oh)];
    const Range rw = taps_w[static_cast<size_t>(ow)];
    for (int64_t kd = rd.lo; kd < rd.hi; ++kd) {
      const int64_t id = od * g.stride[0] - g.pad[0] + kd * g.dilation[0];
      for (int64_t kh = rh.lo; kh < rh.hi; ++kh) {
        const int64_t ih = oh * g.stride[1] - g.pad[1] + kh * g.dilation[1];
        for (int64_t kw = rw.lo; kw < rw.hi; ++kw) {
          tap(id, ih, ow * g.stride[2] - g.pad[2] + kw * g.dilation[2]);
        }
      }
    }
  }
};

// Checks input 0 (of `dtype`), the window attributes and the outputs (output 1, MaxPool's
// optional indices, is int64). Unless `allow_empty`, a window covering only padding is an error.
Result<PoolGeometry> MakePoolGeometry(const KernelArgs& args, DType dtype, bool allow_empty) {
  HML_RETURN_IF_ERROR(CheckArity(args, 1, 1));
  HML_RETURN_IF_ERROR(CheckInput(args, 0, dtype));
  const Shape& xs = args.inputs[0].shape();
  if (!args.node->attrs.Has("kernel_shape")) return args.Error("kernel_shape is required");
  HML_ASSIGN_OR_RETURN(WindowParams p, ResolveWindow(*args.node, WindowKind::kPool, xs, {}));
  const Shape out = WindowOutputShape(xs[0], xs[1], p);
  HML_RETURN_IF_ERROR(CheckOutput(args, 0, dtype, out));
  if (args.outputs.size() > 1 && !args.outputs[1].empty()) {
    HML_RETURN_IF_ERROR(CheckOutput(args, 1, DType::kInt64, out));
  }
  PoolGeometry pg;
  HML_ASSIGN_OR_RETURN(pg.g, nn_internal::ToWindow3(args, p));
  pg.planes = xs[0] * xs[1];
  const Window3& g = pg.g;
  std::vector<Range>* taps[3] = {&pg.taps_d, &pg.taps_h, &pg.taps_w};
  std::vector<int64_t>* padded[3] = {&pg.padded_d, &pg.padded_h, &pg.padded_w};
  for (size_t d = 0; d < 3; ++d) {
    for (int64_t o = 0; o < g.out[d]; ++o) {
      const int64_t start = o * g.stride[d] - g.pad[d];
      const Range r = ValidRange(start, g.dilation[d], g.in[d], g.kernel[d]);
      if (r.size() == 0 && !allow_empty) {
        return args.Error("the pooling window at output index " + std::to_string(o) +
                          " covers only padding");
      }
      taps[d]->push_back(r);
      padded[d]->push_back(ValidRange(start + g.pad[d], g.dilation[d],
                                      g.in[d] + g.pad[d] + g.pad_end[d], g.kernel[d])
                               .size());
    }
  }
  return pg;
}

template <typename T>
class MaxPoolKernel final : public Kernel {
 public:
  static Result<std::unique_ptr<Kernel>> Create(KernelArgs args) {
    HML_ASSIGN_OR_RETURN(PoolGeometry pg,
                         MakePoolGeometry(args, DTypeOf<T>(), /*allow_empty=*/false));
    auto k = std::unique_ptr<MaxPoolKernel>(new MaxPoolKernel(std::move(args), std::move(pg)));
    k->column_major_ = k->args_.node->attrs.GetInt("storage_order", 0) == 1;
    return Wrap(std::move(k));
  }

  Status Run() override {
    const Window3& g = pg_.g;
    const T* x = args_.inputs[0].data<T>();
    T* y = args_.outputs[0].data<T>();
    int64_t* indices = args_.outputs.size() > 1 && !args_.outputs[1].empty()
                           ? args_.outputs[1].data<int64_t>()
                           : nullptr;
    const int64_t in_size = g.in_size();
    pg_.ForEachOutput([&](int64_t o, int64_t plane, int64_t od, int64_t oh, int64_t ow) {
      const T* x_plane = x + plane * in_size;
      // The first maximum in row-major window order wins; NaN propagates.
      T best{};
      int64_t best_d = -1, best_h = -1, best_w = -1;
      pg_.ForEachTap(od, oh, ow, [&](int64_t id, int64_t ih, int64_t iw) {
        const T v = x_plane[(id * g.in[1] + ih) * g.in[2] + iw];
        if (best_d < 0 || v > best || (IsNan(v) && !IsNan(best))) {
          best = v;
          best_d = id;
          best_h = ih;
          best_w = iw;
        }
      });
      y[o] = best;
      if (indices != nullptr) {
        // Flat index into X ignoring padding; storage_order=1 flattens the spatial dims
        // column-major (the leading unit dims of 1-D/2-D windows contribute 0).
        const int64_t spatial = column_major_
                                    ? best_d + best_h * g.in[0] + best_w * g.in[0] * g.in[1]
                                    : (best_d * g.in[1] + best_h) * g.in[2] + best_w;
        indices[o] = plane * in_size + spatial;
      }
    });
    return Status::Ok();
  }

 private:
  MaxPoolKernel(KernelArgs args, PoolGeometry pg) : args_(std::move(args)), pg_(std::move(pg)) {}
  static bool IsNan(T v) {
    if constexpr (std::is_floating_point_v<T>) {
      return std::isnan(v);
    } else {
      return false;
    }
  }
  KernelArgs args_;
  PoolGeometry pg_;
  bool column_major_ = false;
};

Result<std::unique_ptr<Kernel>> CreateMaxPool(KernelArgs args) {
  HML_RETURN_IF_ERROR(CheckArity(args, 1, 1));
  constexpr DTypeSet kDTypes{DType::kFloat32, DType::kUInt8, DType::kInt8};
  return DispatchDTypeOrUnimplemented<kDTypes>(args, "dtype", args.inputs[0].dtype(), [&](auto t) {
    return MaxPoolKernel<decltype(t)>::Create(std::move(args));
  });
}

class AveragePoolKernel final : public Kernel {
 public:
  static Result<std::unique_ptr<Kernel>> Create(KernelArgs args) {
    const bool include_pad = args.node->attrs.GetInt("count_include_pad", 0) != 0;
    HML_ASSIGN_OR_RETURN(PoolGeometry pg,
                         MakePoolGeometry(args, DType::kFloat32, /*allow_empty=*/include_pad));
    auto k = std::unique_ptr<AveragePoolKernel>(
        new AveragePoolKernel(std::move(args), std::move(pg), include_pad));
    return Wrap(std::move(k));
  }

  Status Run() override {
    const Window3& g = pg_.g;
    const float* x = args_.inputs[0].data<float>();
    float* y = args_.outputs[0].data<float>();
    pg_.ForEachOutput([&](int64_t o, int64_t plane, int64_t od, int64_t oh, int64_t ow) {
      const float* x_plane = x + plane * g.in_size();
      double sum = 0.0;
      pg_.ForEachTap(od, oh, ow, [&](int64_t id, int64_t ih, int64_t iw) {
        sum += x_plane[(id * g.in[1] + ih) * g.in[2] + iw];
      });
      const size_t d = static_cast<size_t>(od), h = static_cast<size_t>(oh),
                   w = static_cast<size_t>(ow);
      // With count_include_pad, padded positions count but positions beyond the padding
      // (possible with ceil_mode) do not.
      const int64_t count =
          include_pad_ ? pg_.padded_d[d] * pg_.padded_h[h] * pg_.padded_w[w]
                       : pg_.taps_d[d].size() * pg_.taps_h[h].size() * pg_.taps_w[w].size();
      y[o] = static_cast<float>(sum / static_cast<double>(count));
    });
    return Status::Ok();
  }

 private:
  AveragePoolKernel(KernelArgs args, PoolGeometry pg, bool include_pad)
      : args_(std::move(args)), pg_(std::move(pg)), include_pad_(include_pad) {}
  KernelArgs args_;
  PoolGeometry pg_;
  bool include_pad_ = false;
};

// GlobalAveragePool / GlobalMaxPool: one value per (N, C) plane.
template <bool kMax>
class GlobalPoolKernel final : public Kernel {
 public:
  static Result<std::unique_ptr<Kernel>> Create(KernelArgs args) {
    HML_RETURN_IF_ERROR(CheckArity(args, 1, 1));
    HML_RETURN_IF_ERROR(CheckInput(args, 0, DType::kFloat32));
    const Shape& xs = args.inputs[0].shape();
    if (xs.size() < 3) return args.Error("input must have rank >= 3");
    Shape out(xs.size(), 1);
    out[0] = xs[0];
    out[1] = xs[1];
    HML_RETURN_IF_ERROR(CheckOutput(args, 0, DType::kFloat32, out));
    auto k = std::unique_ptr<GlobalPoolKernel>(new GlobalPoolKernel(std::move(args)));
    k->planes_ = xs[0] * xs[1];
    k->plane_size_ = Product(xs.begin() + 2, xs.end());
    return Wrap(std::move(k));
  }

  Status Run() override {
    const float* x = args_.inputs[0].data<float>();
    float* y = args_.outputs[0].data<float>();
    for (int64_t plane = 0; plane < planes_; ++plane) {
      const float* p = x + plane * plane_size_;
      if constexpr (kMax) {
        float best = -std::numeric_limits<float>::infinity();
        for (int64_t i = 0; i < plane_size_; ++i) {
          if (p[i] > best || std::isnan(p[i])) {
            best = p[i];
            if (std::isnan(best)) break;
          }
        }
        y[plane] = best;
      } else {
        double sum = 0.0;
        for (int64_t i = 0; i < plane_size_; ++i) sum += p[i];
        y[plane] = static_cast<float>(sum / static_cast<double>(plane_size_));
      }
    }
    return Status::Ok();
  }

 private:
  explicit GlobalPoolKernel(KernelArgs args) : args_(std::move(args)) {}
  KernelArgs args_;
  int64_t planes_ = 0, plane_size_ = 0;
};

// ---------------------------------------------------------------------------------------------
// BatchNormalization, inference form: y = (x - mean) / sqrt(var + epsilon) * scale + B, with one
// statistic per channel (or, for spatial=0 before opset 9, per (C, D1, ..., Dn) element).

class BatchNormKernel final : public Kernel {
 public:
  static Result<std::unique_ptr<Kernel>> Create(KernelArgs args) {
    HML_RETURN_IF_ERROR(CheckArity(args, 5, 1));
    for (size_t i = 0; i < 5; ++i) HML_RETURN_IF_ERROR(CheckInput(args, i, DType::kFloat32));
    const Attributes& attrs = args.node->attrs;
    bool training = attrs.GetInt("training_mode", 0) != 0;
    for (size_t i = 1; i < args.outputs.size(); ++i) training |= !args.outputs[i].empty();
    if (training) {
      return Unimplemented(args,
                           "training mode (batch statistics / running mean and var outputs) is "
                           "not supported; only inference");
    }
    const Shape& xs = args.inputs[0].shape();
    if (xs.size() < 2) return args.Error("input must have rank >= 2");
    HML_RETURN_IF_ERROR(CheckOutput(args, 0, DType::kFloat32, xs));
    const bool spatial = args.opset >= 9 || attrs.GetInt("spatial", 1) != 0;
    auto k = std::unique_ptr<BatchNormKernel>(new BatchNormKernel(std::move(args)));
    k->batch_ = xs[0];
    k->channels_ = spatial ? xs[1] : Product(xs.begin() + 1, xs.end());
    k->inner_ = spatial ? Product(xs.begin() + 2, xs.end()) : 1;
    for (size_t i = 1; i < 5; ++i) {
      if (k->args_.inputs[i].num_elements() != k->channels_) {
        return k->args_.Error("input " + std::to_string(i) + " " +
                              ShapeToString(k->args_.inputs[i].shape()) + " must have " +
                              std::to_string(k->channels_) + " elements");
      }
    }
    k->epsilon_ = attrs.GetFloat("epsilon", 1e-5f);
    return Wrap(std::move(k));
  }

  Status Run() override {
    const float* x = args_.inputs[0].data<float>();
    const float* scale = args_.inputs[1].data<float>();
    const float* bias = args_.inputs[2].data<float>();
    const float* mean = args_.inputs[3].data<float>();
    const float* var = args_.inputs[4].data<float>();
    float* y = args_.outputs[0].data<float>();
    for (int64_t c = 0; c < channels_; ++c) {
      const double inv_std =
          1.0 / std::sqrt(static_cast<double>(var[c]) + static_cast<double>(epsilon_));
      const double factor = inv_std * scale[c];
      for (int64_t n = 0; n < batch_; ++n) {
        const int64_t base = (n * channels_ + c) * inner_;
        for (int64_t i = 0; i < inner_; ++i) {
          y[base + i] =
              static_cast<float>((static_cast<double>(x[base + i]) - mean[c]) * factor + bias[c]);
        }
      }
    }
    return Status::Ok();
  }

 private:
  explicit BatchNormKernel(KernelArgs args) : args_(std::move(args)) {}
  KernelArgs args_;
  int64_t batch_ = 0, channels_ = 0, inner_ = 0;
  float epsilon_ = 1e-5f;
};

// ---------------------------------------------------------------------------------------------
// Softmax / LogSoftmax over [outer, axis, inner]: opset >= 13 reduces along `axis` alone
// (default -1); earlier opsets coerce the input to 2-D at `axis` (default 1) and reduce over the
// whole trailing block. Max-subtracted; the sum runs in double.

template <bool kLog>
class SoftmaxKernel final : public Kernel {
 public:
  static Result<std::unique_ptr<Kernel>> Create(KernelArgs args) {
    HML_RETURN_IF_ERROR(CheckArity(args, 1, 1));
    HML_RETURN_IF_ERROR(CheckInput(args, 0, DType::kFloat32));
    const Shape& xs = args.inputs[0].shape();
    HML_RETURN_IF_ERROR(CheckOutput(args, 0, DType::kFloat32, xs));
    const int64_t rank = static_cast<int64_t>(xs.size());
    const bool legacy = args.opset < 13;
    int64_t axis = args.node->attrs.GetInt("axis", legacy ? 1 : -1);
    if (axis < 0) axis += rank;
    if (rank == 0 || axis < 0 || axis > rank || (!legacy && axis == rank)) {
      return args.Error("axis " + std::to_string(axis) + " is out of range for rank " +
                        std::to_string(rank));
    }
    auto k = std::unique_ptr<SoftmaxKernel>(new SoftmaxKernel(std::move(args)));
    const auto a = xs.begin() + axis;
    k->outer_ = Product(xs.begin(), a);
    if (legacy) {
      k->len_ = Product(a, xs.end());
      k->inner_ = 1;
    } else {
      k->len_ = *a;
      k->inner_ = Product(a + 1, xs.end());
    }
    return Wrap(std::move(k));
  }

  Status Run() override {
    const float* x = args_.inputs[0].data<float>();
    float* y = args_.outputs[0].data<float>();
    if (len_ == 0) return Status::Ok();
    for (int64_t o = 0; o < outer_; ++o) {
      for (int64_t in = 0; in < inner_; ++in) {
        const float* xs = x + o * len_ * inner_ + in;
        float* ys = y + o * len_ * inner_ + in;
        float max = xs[0];
        for (int64_t i = 1; i < len_; ++i) max = std::max(max, xs[i * inner_]);
        double sum = 0.0;
        for (int64_t i = 0; i < len_; ++i) {
          const float e = std::exp(xs[i * inner_] - max);
          if constexpr (!kLog) ys[i * inner_] = e;
          sum += e;
        }
        if constexpr (kLog) {
          const double log_sum = std::log(sum);
          for (int64_t i = 0; i < len_; ++i) {
            ys[i * inner_] =
                static_cast<float>(static_cast<double>(xs[i * inner_] - max) - log_sum);
          }
        } else {
          for (int64_t i = 0; i < len_; ++i) {
            ys[i * inner_] = static_cast<float>(ys[i * inner_] / sum);
          }
        }
      }
    }
    return Status::Ok();
  }

 private:
  explicit SoftmaxKernel(KernelArgs args) : args_(std::move(args)) {}
  KernelArgs args_;
  int64_t outer_ = 0, len_ = 0, inner_ = 0;
};

}  // namespace

void AddNnKernels(KernelRegistry& registry) {
  registry.Add("", "Conv", ConvKernel::Create);
  registry.Add("", "ConvTranspose", ConvTransposeKernel::Create);
  registry.Add("", "Gemm", GemmKernel::Create);
  registry.Add("", "MatMul", CreateMatMul);
  registry.Add("", "MaxPool", CreateMaxPool);
  registry.Add("", "AveragePool", AveragePoolKernel::Create);
  registry.Add("", "GlobalAveragePool", GlobalPoolKernel<false>::Create);
  registry.Add("", "GlobalMaxPool", GlobalPoolKernel<true>::Create);
  registry.Add("", "BatchNormalization", BatchNormKernel::Create);
  registry.Add("", "Softmax", SoftmaxKernel<false>::Create);
  registry.Add("", "LogSoftmax", SoftmaxKernel<true>::Create);
  nn_internal::AddQuantKernels(registry);
}

}  // namespace hml::runtime

// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Reference kernels of the quantized ops: QuantizeLinear, DequantizeLinear, QLinearConv and
// QLinearMatMul. Integer accumulation is exact (int32 that wraps modulo 2^32 like every other
// runtime, instead of overflowing into undefined behaviour); requantization multiplies the
// accumulator by in_scale * w_scale / out_scale in double, which is as close to the ONNX
// formula as float inputs allow, then rounds half to even and saturates.
#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "src/runtime/backends/reference/kernel_util.h"
#include "src/runtime/backends/reference/nn_common.h"

namespace hml::runtime::nn_internal {
namespace {

bool IsPerTensor(const Tensor& t) { return t.num_elements() == 1 && t.rank() <= 1; }

// Per-tensor or per-axis parameters of QuantizeLinear/DequantizeLinear over x viewed as
// [outer, axis_len, inner]; per-tensor is axis_len == 1 with a parameter stride of 0.
struct AxisLayout {
  int64_t outer = 1;
  int64_t axis_len = 1;
  int64_t inner = 1;
  bool per_axis = false;
};

// Checks the inputs x, scale (float32) and optional zero point (of `zp_dtype`) and output 0 (x's
// shape, `y_dtype`) of QuantizeLinear/DequantizeLinear, and returns the parameters' layout.
Result<AxisLayout> MakeAxisLayout(const KernelArgs& args, DType zp_dtype, DType y_dtype) {
  HML_RETURN_IF_ERROR(CheckInput(args, 1, DType::kFloat32));
  if (HasInput(args, 2)) HML_RETURN_IF_ERROR(CheckInput(args, 2, zp_dtype));
  HML_RETURN_IF_ERROR(CheckOutput(args, 0, y_dtype, args.inputs[0].shape()));
  const Tensor& xt = args.inputs[0];
  const Tensor& st = args.inputs[1];
  if (HasInput(args, 2) && args.inputs[2].num_elements() != st.num_elements()) {
    return args.Error("zero point and scale must have the same shape");
  }
  AxisLayout l;
  if (IsPerTensor(st)) {
    l.outer = xt.num_elements();
    return l;
  }
  const int64_t rank = xt.rank();
  int64_t axis = args.node->attrs.GetInt("axis", 1);
  if (axis < 0) axis += rank;
  if (st.rank() != 1 || axis < 0 || axis >= rank || xt.dim(static_cast<int>(axis)) != st.dim(0)) {
    return args.Error("per-axis scale " + ShapeToString(st.shape()) + " does not match axis " +
                      std::to_string(axis) + " of " + ShapeToString(xt.shape()));
  }
  const Shape& xs = xt.shape();
  l.outer = Product(xs.begin(), xs.begin() + axis);
  l.axis_len = xs[static_cast<size_t>(axis)];
  l.inner = Product(xs.begin() + axis + 1, xs.end());
  l.per_axis = true;
  return l;
}

// y[e] = fn(x[e], s, z) for every element e of x, s and z being the scale and zero point (0 when
// `zp` is null) of e's index along the axis.
template <typename XT, typename ZT, typename YT, typename Fn>
void MapPerAxis(const AxisLayout& l, const XT* x, const float* scale, const ZT* zp, YT* y, Fn fn) {
  for (int64_t o = 0; o < l.outer; ++o) {
    for (int64_t a = 0; a < l.axis_len; ++a) {
      const float s = scale[a];
      const ZT z = zp != nullptr ? zp[a] : ZT{0};
      const int64_t base = (o * l.axis_len + a) * l.inner;
      for (int64_t i = 0; i < l.inner; ++i) y[base + i] = fn(x[base + i], s, z);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// QuantizeLinear: y = saturate(round_half_even(x / scale) + zero_point). The division runs in
// float, as the ONNX reference does, so ties are decided on the same value.

template <typename XT, typename Q>
class QuantizeKernel final : public Kernel {
 public:
  static Result<std::unique_ptr<Kernel>> Create(KernelArgs args) {
    HML_ASSIGN_OR_RETURN(AxisLayout l, MakeAxisLayout(args, DTypeOf<Q>(), DTypeOf<Q>()));
    auto k = std::unique_ptr<QuantizeKernel>(new QuantizeKernel(std::move(args)));
    k->l_ = l;
    return Wrap(std::move(k));
  }

  Status Run() override {
    const XT* x = args_.inputs[0].data<XT>();
    const float* scale = args_.inputs[1].data<float>();
    const Q* zp = HasInput(args_, 2) ? args_.inputs[2].data<Q>() : nullptr;
    Q* y = args_.outputs[0].data<Q>();
    MapPerAxis(l_, x, scale, zp, y, [](XT v, float s, Q z) {
      return ConvertValue<Q>(RoundHalfEven(static_cast<float>(v) / s) + static_cast<float>(z));
    });
    return Status::Ok();
  }

 private:
  explicit QuantizeKernel(KernelArgs args) : args_(std::move(args)) {}
  KernelArgs args_;
  AxisLayout l_;
};

Result<std::unique_ptr<Kernel>> CreateQuantize(KernelArgs args) {
  HML_RETURN_IF_ERROR(CheckArity(args, 2, 1));
  constexpr DTypeSet kInputDTypes{DType::kFloat32, DType::kInt32};
  const DType in = args.inputs[0].dtype();
  const DType out = HasInput(args, 2) ? args.inputs[2].dtype() : DType::kUInt8;
  return DispatchDTypeOrUnimplemented<kInputDTypes>(args, "input dtype", in, [&](auto x_tag) {
    return DispatchDTypeOrUnimplemented<kQuantizedDTypes>(
        args, "zero point dtype", out, [&](auto q_tag) {
          return QuantizeKernel<decltype(x_tag), decltype(q_tag)>::Create(std::move(args));
        });
  });
}

// ---------------------------------------------------------------------------------------------
// DequantizeLinear: y = (x - zero_point) * scale, the difference taken exactly in integers.

template <typename XT>
class DequantizeKernel final : public Kernel {
 public:
  static Result<std::unique_ptr<Kernel>> Create(KernelArgs args) {
    HML_ASSIGN_OR_RETURN(AxisLayout l, MakeAxisLayout(args, DTypeOf<XT>(), DType::kFloat32));
    auto k = std::unique_ptr<DequantizeKernel>(new DequantizeKernel(std::move(args)));
    k->l_ = l;
    return Wrap(std::move(k));
  }

  Status Run() override {
    const XT* x = args_.inputs[0].data<XT>();
    const float* scale = args_.inputs[1].data<float>();
    const XT* zp = HasInput(args_, 2) ? args_.inputs[2].data<XT>() : nullptr;
    float* y = args_.outputs[0].data<float>();
    MapPerAxis(l_, x, scale, zp, y, [](XT v, float s, XT z) {
      return static_cast<float>(static_cast<int64_t>(v) - static_cast<int64_t>(z)) * s;
    });
    return Status::Ok();
  }

 private:
  explicit DequantizeKernel(KernelArgs args) : args_(std::move(args)) {}
  KernelArgs args_;
  AxisLayout l_;
};

Result<std::unique_ptr<Kernel>> CreateDequantize(KernelArgs args) {
  HML_RETURN_IF_ERROR(CheckArity(args, 2, 1));
  constexpr DTypeSet kInputDTypes{DType::kUInt8, DType::kInt8, DType::kInt32};
  const DType in = args.inputs[0].dtype();
  return DispatchDTypeOrUnimplemented<kInputDTypes>(args, "input dtype", in, [&](auto tag) {
    return DequantizeKernel<decltype(tag)>::Create(std::move(args));
  });
}

// Requantizes an int32 accumulator: saturate(round_half_even(acc * multiplier) + zero_point).
template <typename Y>
Y Requantize(uint32_t acc, double multiplier, double zero_point) {
  const double v = static_cast<double>(static_cast<int32_t>(acc)) * multiplier;
  return ConvertValue<Y>(RoundHalfEven(v) + zero_point);
}

// ---------------------------------------------------------------------------------------------
// QLinearConv: the direct convolution of Conv over (x - x_zero_point) and (w - w_zero_point) in
// int32, plus the int32 bias, requantized per output channel. Inputs: x, x_scale,
// x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point, B.

template <typename XT, typename WT, typename YT>
class QLinearConvKernel final : public Kernel {
 public:
  static Result<std::unique_ptr<Kernel>> Create(KernelArgs args) {
    HML_RETURN_IF_ERROR(CheckInput(args, 2, DTypeOf<XT>()));
    HML_RETURN_IF_ERROR(CheckInput(args, 5, DTypeOf<WT>()));
    for (size_t i : {1, 4, 6}) HML_RETURN_IF_ERROR(CheckInput(args, i, DType::kFloat32));
    if (HasInput(args, 8)) HML_RETURN_IF_ERROR(CheckInput(args, 8, DType::kInt32));
    if (args.outputs[0].dtype() != DTypeOf<YT>()) {
      return args.Error("output must have the dtype of y_zero_point");
    }
    for (size_t i : {1, 2, 6, 7}) {
      if (!IsPerTensor(args.inputs[i])) {
        return args.Error("input " + std::to_string(i) + " must be a scalar (per-tensor)");
      }
    }
    HML_ASSIGN_OR_RETURN(ConvGeometry c, MakeConvGeometry(args, 0, 3, 8));
    for (size_t i : {4, 5}) {
      const int64_t n = args.inputs[i].num_elements();
      if (!IsPerTensor(args.inputs[i]) && !(args.inputs[i].rank() == 1 && n == c.out_channels)) {
        return args.Error("input " + std::to_string(i) + " must be a scalar or have " +
                          std::to_string(c.out_channels) + " elements");
      }
    }
    auto k = std::unique_ptr<QLinearConvKernel>(new QLinearConvKernel(std::move(args)));
    const Tensor& w = k->args_.inputs[3];
    k->c_ = std::move(c);
    k->acc_.resize(static_cast<size_t>(k->c_.window.out_size()));
    k->weights_.resize(static_cast<size_t>(w.num_elements()));
    k->multipliers_.resize(static_cast<size_t>(k->c_.out_channels));
    k->w_zp_per_channel_ = !IsPerTensor(k->args_.inputs[5]);
    k->w_scale_per_channel_ = !IsPerTensor(k->args_.inputs[4]);
    const auto& constant = k->args_.input_is_constant;
    k->weights_constant_ = constant.size() > 5 && constant[3] && constant[5];
    k->scales_constant_ = constant.size() > 6 && constant[1] && constant[4] && constant[6];
    if (k->weights_constant_) k->PrepareWeights();
    if (k->scales_constant_) k->PrepareMultipliers();
    return Wrap(std::move(k));
  }

  Status Run() override {
    if (!weights_constant_) PrepareWeights();
    if (!scales_constant_) PrepareMultipliers();
    const Window3& g = c_.window;
    const XT* x = args_.inputs[0].data<XT>();
    const int32_t x_zp = static_cast<int32_t>(args_.inputs[2].data<XT>()[0]);
    const double y_zp = static_cast<double>(args_.inputs[7].data<YT>()[0]);
    const int32_t* bias = HasInput(args_, 8) ? args_.inputs[8].data<int32_t>() : nullptr;
    YT* y = args_.outputs[0].data<YT>();
    const int64_t in_size = g.in_size(), out_size = g.out_size(), k_size = g.kernel_size();
    const auto load = [x_zp](XT v) {
      return static_cast<uint32_t>(static_cast<int32_t>(v) - x_zp);
    };
    for (int64_t n = 0; n < c_.batch; ++n) {
      for (int64_t oc = 0; oc < c_.out_channels; ++oc) {
        const int64_t grp = oc / c_.out_per_group;
        std::fill(acc_.begin(), acc_.end(), bias ? static_cast<uint32_t>(bias[oc]) : 0u);
        for (int64_t ci = 0; ci < c_.in_per_group; ++ci) {
          const int64_t ic = grp * c_.in_per_group + ci;
          AccumulateConvChannel(g, c_.taps, x + (n * c_.in_channels + ic) * in_size,
                                weights_.data() + (oc * c_.in_per_group + ci) * k_size, acc_.data(),
                                load);
        }
        const double m = multipliers_[static_cast<size_t>(oc)];
        YT* y_plane = y + (n * c_.out_channels + oc) * out_size;
        for (int64_t i = 0; i < out_size; ++i) {
          y_plane[i] = Requantize<YT>(acc_[static_cast<size_t>(i)], m, y_zp);
        }
      }
    }
    return Status::Ok();
  }

 private:
  explicit QLinearConvKernel(KernelArgs args) : args_(std::move(args)) {}

  // weights_ = w - w_zero_point (per output channel when the zero point is).
  void PrepareWeights() {
    const WT* w = args_.inputs[3].data<WT>();
    const WT* zp = args_.inputs[5].data<WT>();
    if (weights_.empty()) return;
    const int64_t per_channel = static_cast<int64_t>(weights_.size()) / c_.out_channels;
    for (size_t i = 0; i < weights_.size(); ++i) {
      const int64_t oc = static_cast<int64_t>(i) / per_channel;
      const int32_t z = static_cast<int32_t>(zp[w_zp_per_channel_ ? oc : 0]);
      weights_[i] = static_cast<int32_t>(w[i]) - z;
    }
  }

  void PrepareMultipliers() {
    const double x_scale = args_.inputs[1].data<float>()[0];
    const float* w_scale = args_.inputs[4].data<float>();
    const double y_scale = args_.inputs[6].data<float>()[0];
    for (size_t oc = 0; oc < multipliers_.size(); ++oc) {
      multipliers_[oc] =
          x_scale * static_cast<double>(w_scale[w_scale_per_channel_ ? oc : 0]) / y_scale;
    }
  }

  KernelArgs args_;
  ConvGeometry c_;
  std::vector<uint32_t> acc_;        // one output plane
  std::vector<int32_t> weights_;     // w - w_zero_point
  std::vector<double> multipliers_;  // x_scale * w_scale[oc] / y_scale
  bool w_zp_per_channel_ = false, w_scale_per_channel_ = false;
  bool weights_constant_ = false, scales_constant_ = false;
};

// Creates K<A, B, Y> for the quantized dtypes A of input 0, B of input 3 and Y of output 0: the
// factory of QLinearConv and QLinearMatMul, whose inputs 0 to 7 are all required. `a_name` and
// `b_name` name inputs 0 and 3 in errors.
template <template <typename, typename, typename> class K>
Result<std::unique_ptr<Kernel>> CreateQLinear(KernelArgs args, std::string_view a_name,
                                              std::string_view b_name) {
  HML_RETURN_IF_ERROR(CheckArity(args, 8, 1));
  const std::string a_what = std::string(a_name) + " dtype";
  const std::string b_what = std::string(b_name) + " dtype";
  return DispatchDTypeOrUnimplemented<kQuantizedDTypes>(
      args, a_what, args.inputs[0].dtype(), [&](auto a_tag) {
        return DispatchDTypeOrUnimplemented<kQuantizedDTypes>(
            args, b_what, args.inputs[3].dtype(), [&](auto b_tag) {
              return DispatchDTypeOrUnimplemented<kQuantizedDTypes>(
                  args, "output dtype", args.outputs[0].dtype(), [&](auto y_tag) {
                    return K<decltype(a_tag), decltype(b_tag), decltype(y_tag)>::Create(
                        std::move(args));
                  });
            });
      });
}

Result<std::unique_ptr<Kernel>> CreateQLinearConv(KernelArgs args) {
  return CreateQLinear<QLinearConvKernel>(std::move(args), "x", "w");
}

// ---------------------------------------------------------------------------------------------
// QLinearMatMul: numpy matmul over (a - a_zero_point) and (b - b_zero_point) in int32,
// requantized with a_scale[row] * b_scale[col] / y_scale. Inputs: a, a_scale, a_zero_point, b,
// b_scale, b_zero_point, y_scale, y_zero_point.

// Where a per-row (a) or per-column (b) parameter lives: index = batch * batch_stride +
// i * stride, with i the row (a) or column (b).
struct ParamLayout {
  int64_t stride = 0;
  int64_t batch_stride = 0;
};

// `ms` is the operand's shape after 1-D promotion; `len` the number of rows (a) or columns (b).
Result<ParamLayout> MakeParamLayout(const KernelArgs& args, size_t i, const Shape& ms, int64_t len,
                                    bool rows, bool promoted) {
  const Tensor& t = args.inputs[i];
  if (IsPerTensor(t)) return ParamLayout{};
  const Shape& s = t.shape();
  const Shape batch(ms.begin(), ms.end() - 2);
  if (!promoted && s.size() == 1 && s[0] == len) return ParamLayout{1, 0};
  if (!promoted && s.size() >= 2) {
    const bool inner_ok = rows ? (s[s.size() - 2] == len && s.back() == 1)
                               : (s[s.size() - 2] == 1 && s.back() == len);
    const Shape lead(s.begin(), s.end() - 2);
    if (inner_ok && Product(lead.begin(), lead.end()) == 1) return ParamLayout{1, 0};
    if (inner_ok && lead == batch) return ParamLayout{1, len};
  }
  return args.Error("input " + std::to_string(i) + " " + ShapeToString(s) +
                    " is neither per-tensor nor per-" + (rows ? "row" : "column"));
}

template <typename AT, typename BT, typename YT>
class QLinearMatMulKernel final : public Kernel {
 public:
  static Result<std::unique_ptr<Kernel>> Create(KernelArgs args) {
    HML_RETURN_IF_ERROR(CheckInput(args, 2, DTypeOf<AT>()));
    HML_RETURN_IF_ERROR(CheckInput(args, 5, DTypeOf<BT>()));
    for (size_t i : {1, 4, 6}) HML_RETURN_IF_ERROR(CheckInput(args, i, DType::kFloat32));
    if (args.outputs[0].dtype() != DTypeOf<YT>()) {
      return args.Error("output must have the dtype of y_zero_point");
    }
    if (!IsPerTensor(args.inputs[6]) || !IsPerTensor(args.inputs[7])) {
      return Unimplemented(args, "y_scale and y_zero_point must be scalars (per-tensor)");
    }
    HML_ASSIGN_OR_RETURN(MatMulGeometry g, MakeMatMulGeometry(args, 0, 3));
    const bool a_promoted = args.inputs[0].rank() == 1;
    const bool b_promoted = args.inputs[3].rank() == 1;
    auto k = std::unique_ptr<QLinearMatMulKernel>(new QLinearMatMulKernel(std::move(args)));
    HML_ASSIGN_OR_RETURN(k->a_scale_, MakeParamLayout(k->args_, 1, g.a, g.m, true, a_promoted));
    HML_ASSIGN_OR_RETURN(k->a_zp_, MakeParamLayout(k->args_, 2, g.a, g.m, true, a_promoted));
    HML_ASSIGN_OR_RETURN(k->b_scale_, MakeParamLayout(k->args_, 4, g.b, g.n, false, b_promoted));
    HML_ASSIGN_OR_RETURN(k->b_zp_, MakeParamLayout(k->args_, 5, g.b, g.n, false, b_promoted));
    k->m_ = g.m;
    k->k_ = g.k;
    k->n_ = g.n;
    k->batches_ = std::move(g.batches);
    if (!k->batches_.a.empty()) k->acc_.resize(static_cast<size_t>(k->n_));
    return Wrap(std::move(k));
  }

  Status Run() override {
    const AT* a = args_.inputs[0].data<AT>();
    const float* a_scale = args_.inputs[1].data<float>();
    const AT* a_zp = args_.inputs[2].data<AT>();
    const BT* b = args_.inputs[3].data<BT>();
    const float* b_scale = args_.inputs[4].data<float>();
    const BT* b_zp = args_.inputs[5].data<BT>();
    const double y_scale = args_.inputs[6].data<float>()[0];
    const double y_zp = static_cast<double>(args_.inputs[7].data<YT>()[0]);
    YT* y = args_.outputs[0].data<YT>();
    for (size_t batch = 0; batch < batches_.a.size(); ++batch) {
      const int64_t ab = batches_.a[batch], bb = batches_.b[batch];
      const AT* a_mat = a + ab * m_ * k_;
      const BT* b_mat = b + bb * k_ * n_;
      const BT* b_zp_row = b_zp + bb * b_zp_.batch_stride;
      const float* b_scale_row = b_scale + bb * b_scale_.batch_stride;
      YT* y_mat = y + static_cast<int64_t>(batch) * m_ * n_;
      for (int64_t i = 0; i < m_; ++i) {
        const int32_t az = static_cast<int32_t>(a_zp[ab * a_zp_.batch_stride + i * a_zp_.stride]);
        const double as = a_scale[ab * a_scale_.batch_stride + i * a_scale_.stride];
        std::fill(acc_.begin(), acc_.end(), 0u);
        for (int64_t p = 0; p < k_; ++p) {
          const uint32_t av = static_cast<uint32_t>(static_cast<int32_t>(a_mat[i * k_ + p]) - az);
          const BT* b_row = b_mat + p * n_;
          for (int64_t j = 0; j < n_; ++j) {
            const int32_t bz = static_cast<int32_t>(b_zp_row[j * b_zp_.stride]);
            acc_[static_cast<size_t>(j)] +=
                av * static_cast<uint32_t>(static_cast<int32_t>(b_row[j]) - bz);
          }
        }
        for (int64_t j = 0; j < n_; ++j) {
          const double m = as * static_cast<double>(b_scale_row[j * b_scale_.stride]) / y_scale;
          y_mat[i * n_ + j] = Requantize<YT>(acc_[static_cast<size_t>(j)], m, y_zp);
        }
      }
    }
    return Status::Ok();
  }

 private:
  explicit QLinearMatMulKernel(KernelArgs args) : args_(std::move(args)) {}
  KernelArgs args_;
  BatchMap batches_;
  ParamLayout a_scale_, a_zp_, b_scale_, b_zp_;
  int64_t m_ = 0, k_ = 0, n_ = 0;
  std::vector<uint32_t> acc_;  // one output row
};

Result<std::unique_ptr<Kernel>> CreateQLinearMatMul(KernelArgs args) {
  return CreateQLinear<QLinearMatMulKernel>(std::move(args), "a", "b");
}

}  // namespace

void AddQuantKernels(KernelRegistry& registry) {
  registry.Add("", "QuantizeLinear", CreateQuantize);
  registry.Add("", "DequantizeLinear", CreateDequantize);
  registry.Add("", "QLinearConv", CreateQLinearConv);
  registry.Add("", "QLinearMatMul", CreateQLinearMatMul);
}

}  // namespace hml::runtime::nn_internal

// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Reference kernels of the elementwise ops. Factories resolve dtypes, broadcasting and attributes
// into a loop plan; Run() only walks it.
//
// Integer semantics (ONNX leaves them to the C types): Add/Sub/Mul/Neg/Abs wrap around in two's
// complement, Div truncates toward zero, integer division by zero yields 0 instead of trapping,
// and float->integer Cast truncates toward zero, saturating out-of-range values and mapping NaN
// to 0 (where C would be undefined).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "src/runtime/backends/reference/kernel_util.h"
#include "src/runtime/backends/reference/reference_backend.h"
#include "src/runtime/ops/broadcast.h"

namespace hml::runtime {
namespace {

// ---- Integer helpers without undefined behaviour.

template <typename T>
T WrapAdd(T a, T b) {
  if constexpr (std::is_integral_v<T>) {
    using U = std::make_unsigned_t<T>;
    return static_cast<T>(static_cast<U>(static_cast<U>(a) + static_cast<U>(b)));
  } else {
    return a + b;
  }
}

template <typename T>
T WrapSub(T a, T b) {
  if constexpr (std::is_integral_v<T>) {
    using U = std::make_unsigned_t<T>;
    return static_cast<T>(static_cast<U>(static_cast<U>(a) - static_cast<U>(b)));
  } else {
    return a - b;
  }
}

template <typename T>
T WrapMul(T a, T b) {
  if constexpr (std::is_integral_v<T>) {
    // Multiply in an unsigned type at least as wide as int, where overflow wraps instead of
    // being undefined.
    using U = std::conditional_t<(sizeof(T) < sizeof(unsigned)), unsigned, std::make_unsigned_t<T>>;
    return static_cast<T>(static_cast<U>(static_cast<U>(a) * static_cast<U>(b)));
  } else {
    return a * b;
  }
}

template <typename T>
T WrapNeg(T a) {
  if constexpr (std::is_integral_v<T>) {
    return WrapSub(static_cast<T>(0), a);
  } else {
    return -a;
  }
}

template <typename T>
T SafeDiv(T a, T b) {
  if constexpr (std::is_integral_v<T>) {
    if (b == 0) return 0;
    if constexpr (std::is_signed_v<T>) {
      if (b == -1) return WrapNeg(a);  // INT_MIN / -1 traps on x86
    }
    return static_cast<T>(a / b);
  } else {
    return a / b;
  }
}

// Integer power by squaring, wrapping on overflow. A negative exponent gives the truncated real
// result: 1 for base 1, +-1 for base -1, 0 otherwise.
template <typename T, typename E>
T IntPow(T base, E exponent) {
  if (exponent < 0) {
    if (base == 1) return 1;
    if constexpr (std::is_signed_v<T>) {
      if (base == -1) return (exponent % 2 == 0) ? static_cast<T>(1) : static_cast<T>(-1);
    }
    return 0;
  }
  T result = 1;
  uint64_t e = static_cast<uint64_t>(static_cast<int64_t>(exponent));
  while (e != 0) {
    if (e & 1) result = WrapMul(result, base);
    base = WrapMul(base, base);
    e >>= 1;
  }
  return result;
}

template <typename TA, typename TB>
TA PowValue(TA a, TB b) {
  if constexpr (std::is_floating_point_v<TA>) {
    return static_cast<TA>(std::pow(static_cast<double>(a), static_cast<double>(b)));
  } else if constexpr (std::is_integral_v<TB>) {
    return IntPow(a, b);
  } else {
    return ConvertValue<TA>(std::pow(static_cast<double>(a), static_cast<double>(b)));
  }
}

// ---- Broadcast loop plans.

// A broadcast binary op as a loop nest: the output is visited in order, dims of size 1 dropped
// and neighbouring dims merged when both inputs treat them alike. Each input advances by its own
// stride per merged dim (0 where it is broadcast); the innermost strides are 0 or 1.
struct BroadcastPlan {
  std::vector<int64_t> dims;  // merged output dims, outermost first; never empty
  std::vector<int64_t> a_strides;
  std::vector<int64_t> b_strides;
  int64_t num_elements = 0;
};

// REQUIRES: BroadcastsTo(a, out) && BroadcastsTo(b, out).
BroadcastPlan MakeBroadcastPlan(const Shape& out, const Shape& a, const Shape& b) {
  struct MergedDim {
    int64_t size;
    bool a_broadcast;
    bool b_broadcast;
  };
  std::vector<MergedDim> merged;
  const size_t rank = out.size();
  for (size_t i = 0; i < rank; ++i) {
    if (out[i] == 1) continue;
    const size_t from_right = rank - 1 - i;
    const int64_t da = from_right < a.size() ? a[a.size() - 1 - from_right] : 1;
    const int64_t db = from_right < b.size() ? b[b.size() - 1 - from_right] : 1;
    const bool a_bc = da == 1;
    const bool b_bc = db == 1;
    if (!merged.empty() && merged.back().a_broadcast == a_bc && merged.back().b_broadcast == b_bc) {
      merged.back().size *= out[i];
    } else {
      merged.push_back({out[i], a_bc, b_bc});
    }
  }
  if (merged.empty()) merged.push_back({1, false, false});

  BroadcastPlan plan;
  const size_t n = merged.size();
  plan.dims.resize(n);
  plan.a_strides.resize(n);
  plan.b_strides.resize(n);
  int64_t a_run = 1;
  int64_t b_run = 1;
  plan.num_elements = 1;
  for (size_t k = n; k-- > 0;) {
    plan.dims[k] = merged[k].size;
    plan.a_strides[k] = merged[k].a_broadcast ? 0 : a_run;
    plan.b_strides[k] = merged[k].b_broadcast ? 0 : b_run;
    if (!merged[k].a_broadcast) a_run *= merged[k].size;
    if (!merged[k].b_broadcast) b_run *= merged[k].size;
    plan.num_elements *= merged[k].size;
  }
  return plan;
}

// Calls row(out_offset, a_offset, b_offset) for every innermost row of the plan, in output order.
template <typename RowFn>
void ForEachRow(const BroadcastPlan& plan, RowFn&& row) {
  if (plan.num_elements == 0) return;
  const size_t n = plan.dims.size();
  const int64_t inner = plan.dims.back();
  const int64_t rows = plan.num_elements / inner;
  int64_t index[kMaxRank + 1] = {};
  int64_t a_offset = 0;
  int64_t b_offset = 0;
  for (int64_t r = 0; r < rows; ++r) {
    row(r * inner, a_offset, b_offset);
    for (size_t k = n - 1; k-- > 0;) {
      a_offset += plan.a_strides[k];
      b_offset += plan.b_strides[k];
      if (++index[k] < plan.dims[k]) break;
      a_offset -= plan.a_strides[k] * plan.dims[k];
      b_offset -= plan.b_strides[k] * plan.dims[k];
      index[k] = 0;
    }
  }
}

// y[i] = op(a[i * sa], b[i * sb]) for i < n, with sa, sb in {0, 1}. The branches let the
// compiler vectorize the common cases.
template <typename TA, typename TB, typename TO, typename Op>
void ApplyRow(const TA* a, int64_t sa, const TB* b, int64_t sb, TO* y, int64_t n, const Op& op) {
  if (sa == 1 && sb == 1) {
    for (int64_t i = 0; i < n; ++i) y[i] = op(a[i], b[i]);
  } else if (sa == 1) {
    const TB bv = *b;
    for (int64_t i = 0; i < n; ++i) y[i] = op(a[i], bv);
  } else if (sb == 1) {
    const TA av = *a;
    for (int64_t i = 0; i < n; ++i) y[i] = op(av, b[i]);
  } else {
    const TO v = op(*a, *b);
    for (int64_t i = 0; i < n; ++i) y[i] = v;
  }
}

template <typename TA, typename TB, typename TO, typename Op>
void RunBroadcast(const BroadcastPlan& plan, const TA* a, const TB* b, TO* y, const Op& op) {
  const int64_t inner = plan.dims.back();
  const int64_t sa = plan.a_strides.back();
  const int64_t sb = plan.b_strides.back();
  ForEachRow(plan, [&](int64_t o, int64_t ia, int64_t ib) {
    ApplyRow(a + ia, sa, b + ib, sb, y + o, inner, op);
  });
}

// Checks that `a` and `b` broadcast to `out` (the planner's precondition).
Status CheckBroadcast(const KernelArgs& args, const Shape& out, const Shape& a, const Shape& b) {
  if (out.size() > static_cast<size_t>(kMaxRank)) {
    return args.Error("output rank " + std::to_string(out.size()) + " exceeds the limit " +
                      std::to_string(kMaxRank));
  }
  if (BroadcastsTo(a, out) && BroadcastsTo(b, out)) return Status::Ok();
  return args.Error("inputs " + ShapeToString(a) + " and " + ShapeToString(b) +
                    " do not broadcast to the output " + ShapeToString(out));
}

// ---- Kernels.

template <typename TA, typename TB, typename TO, typename Op>
class BinaryKernel final : public Kernel {
 public:
  BinaryKernel(KernelArgs args, BroadcastPlan plan, Op op)
      : args_(std::move(args)), plan_(std::move(plan)), op_(op) {}
  Status Run() override {
    RunBroadcast(plan_, args_.inputs[0].data<TA>(), args_.inputs[1].data<TB>(),
                 args_.outputs[0].data<TO>(), op_);
    return Status::Ok();
  }

 private:
  KernelArgs args_;
  BroadcastPlan plan_;
  Op op_;
};

template <typename TA, typename TB, typename TO, typename Op>
KernelResult MakeBinary(KernelArgs args, const Shape& b_shape, Op op) {
  const Shape& out = args.outputs[0].shape();
  HML_RETURN_IF_ERROR(CheckBroadcast(args, out, args.inputs[0].shape(), b_shape));
  BroadcastPlan plan = MakeBroadcastPlan(out, args.inputs[0].shape(), b_shape);
  return std::unique_ptr<Kernel>(
      new BinaryKernel<TA, TB, TO, Op>(std::move(args), std::move(plan), op));
}

template <typename T, typename Op>
class UnaryKernel final : public Kernel {
 public:
  UnaryKernel(KernelArgs args, Op op) : args_(std::move(args)), op_(op) {}
  Status Run() override {
    const T* x = args_.inputs[0].data<T>();
    T* y = args_.outputs[0].data<T>();
    const int64_t n = args_.outputs[0].num_elements();
    for (int64_t i = 0; i < n; ++i) y[i] = op_(x[i]);
    return Status::Ok();
  }

 private:
  KernelArgs args_;
  Op op_;
};

template <typename T, typename Op>
KernelResult MakeUnary(KernelArgs args, Op op) {
  if (args.inputs[0].shape() != args.outputs[0].shape() ||
      args.outputs[0].dtype() != args.inputs[0].dtype()) {
    return args.Error("output " + ShapeToString(args.outputs[0].shape()) +
                      " does not match input " + ShapeToString(args.inputs[0].shape()));
  }
  return std::unique_ptr<Kernel>(new UnaryKernel<T, Op>(std::move(args), op));
}

// Max, Min, Sum, Mean: the first input is broadcast into the output, then each further input is
// folded in place.
template <typename T, typename Op>
class VariadicKernel final : public Kernel {
 public:
  VariadicKernel(KernelArgs args, std::vector<BroadcastPlan> plans, Op op, bool mean)
      : args_(std::move(args)), plans_(std::move(plans)), op_(op), mean_(mean) {}
  Status Run() override {
    T* y = args_.outputs[0].data<T>();
    const T* first = args_.inputs[0].data<T>();
    RunBroadcast(plans_[0], first, first, y, [](T a, T) { return a; });
    for (size_t k = 1; k < plans_.size(); ++k) {
      RunBroadcast(plans_[k], static_cast<const T*>(y), args_.inputs[k].data<T>(), y, op_);
    }
    if constexpr (std::is_floating_point_v<T>) {
      if (mean_) {
        const T count = static_cast<T>(plans_.size());
        const int64_t n = args_.outputs[0].num_elements();
        for (int64_t i = 0; i < n; ++i) y[i] /= count;
      }
    }
    return Status::Ok();
  }

 private:
  KernelArgs args_;
  std::vector<BroadcastPlan> plans_;
  Op op_;
  bool mean_;
};

template <typename T, typename Op>
KernelResult MakeVariadic(KernelArgs args, Op op, bool mean = false) {
  const Shape& out = args.outputs[0].shape();
  std::vector<BroadcastPlan> plans;
  for (size_t k = 0; k < args.inputs.size(); ++k) {
    const Tensor& in = args.inputs[k];
    if (in.empty() || in.dtype() != DTypeOf<T>()) {
      return args.Error("input " + std::to_string(k) + " is missing or has another type");
    }
    const Shape& acc = k == 0 ? in.shape() : out;
    HML_RETURN_IF_ERROR(CheckBroadcast(args, out, acc, in.shape()));
    plans.push_back(MakeBroadcastPlan(out, acc, in.shape()));
  }
  return std::unique_ptr<Kernel>(
      new VariadicKernel<T, Op>(std::move(args), std::move(plans), op, mean));
}

// Clip with bounds fixed at creation (attributes) or read from inputs 1/2 on every Run (they may
// be run-time values).
template <typename T>
class ClipKernel final : public Kernel {
 public:
  ClipKernel(KernelArgs args, T lo, T hi, const T* lo_input, const T* hi_input)
      : args_(std::move(args)), lo_(lo), hi_(hi), lo_input_(lo_input), hi_input_(hi_input) {}
  Status Run() override {
    const T lo = lo_input_ ? *lo_input_ : lo_;
    const T hi = hi_input_ ? *hi_input_ : hi_;
    const T* x = args_.inputs[0].data<T>();
    T* y = args_.outputs[0].data<T>();
    const int64_t n = args_.outputs[0].num_elements();
    // max(x, lo) then min(., hi): when lo > hi everything becomes hi, as in numpy.clip.
    for (int64_t i = 0; i < n; ++i) {
      T v = x[i];
      v = v < lo ? lo : v;
      y[i] = v > hi ? hi : v;
    }
    return Status::Ok();
  }

 private:
  KernelArgs args_;
  T lo_;
  T hi_;
  const T* lo_input_;
  const T* hi_input_;
};

template <typename From, typename To>
class CastKernel final : public Kernel {
 public:
  explicit CastKernel(KernelArgs args) : args_(std::move(args)) {}
  Status Run() override {
    const From* x = args_.inputs[0].data<From>();
    To* y = args_.outputs[0].data<To>();
    const int64_t n = args_.outputs[0].num_elements();
    for (int64_t i = 0; i < n; ++i) y[i] = ConvertValue<To>(x[i]);
    return Status::Ok();
  }

 private:
  KernelArgs args_;
};

// B's shape as the broadcast plan sees it: padded per the legacy rules before opset 7.
Result<Shape> BinaryBShape(const KernelArgs& args) {
  if (args.opset < 7) {
    return LegacyBroadcastShape(*args.node, args.inputs[0].shape(), args.inputs[1].shape());
  }
  return args.inputs[1].shape();
}

enum class Arith { kAdd, kSub, kMul, kDiv };

template <Arith kOp>
KernelResult MakeArithmetic(KernelArgs args) {
  HML_RETURN_IF_ERROR(CheckArity(args, 2, 1));
  if (args.inputs[0].dtype() != args.inputs[1].dtype()) {
    return args.Error("inputs have different element types");
  }
  HML_ASSIGN_OR_RETURN(Shape b_shape, BinaryBShape(args));
  const DType dtype = args.inputs[0].dtype();
  return DispatchDType<kAllDTypes>(args, dtype, [&](auto tag) -> KernelResult {
    using T = decltype(tag);
    if constexpr (kOp == Arith::kAdd) {
      return MakeBinary<T, T, T>(std::move(args), b_shape, [](T a, T b) { return WrapAdd(a, b); });
    } else if constexpr (kOp == Arith::kSub) {
      return MakeBinary<T, T, T>(std::move(args), b_shape, [](T a, T b) { return WrapSub(a, b); });
    } else if constexpr (kOp == Arith::kMul) {
      return MakeBinary<T, T, T>(std::move(args), b_shape, [](T a, T b) { return WrapMul(a, b); });
    } else {
      return MakeBinary<T, T, T>(std::move(args), b_shape, [](T a, T b) { return SafeDiv(a, b); });
    }
  });
}

KernelResult MakePow(KernelArgs args) {
  HML_RETURN_IF_ERROR(CheckArity(args, 2, 1));
  HML_ASSIGN_OR_RETURN(Shape b_shape, BinaryBShape(args));
  constexpr DTypeSet kBaseDTypes{DType::kFloat32, DType::kInt32, DType::kInt64};
  const DType base = args.inputs[0].dtype();
  const DType exponent = args.inputs[1].dtype();
  return DispatchDType<kBaseDTypes>(
      base,
      [&](auto base_tag) -> KernelResult {
        using TA = decltype(base_tag);
        return DispatchDType<kAllDTypes>(args, exponent, [&](auto exp_tag) -> KernelResult {
          using TB = decltype(exp_tag);
          return MakeBinary<TA, TB, TA>(std::move(args), b_shape,
                                        [](TA a, TB b) { return PowValue(a, b); });
        });
      },
      [&] {
        return args.Error("base type " + std::string(DTypeName(base)) + " is not supported");
      });
}

KernelResult MakePRelu(KernelArgs args) {
  HML_RETURN_IF_ERROR(CheckArity(args, 2, 1));
  const Shape& x = args.inputs[0].shape();
  Shape slope = args.inputs[1].shape();
  if (args.opset < 7 && slope.size() == 1 && x.size() >= 2 && slope[0] == x[1]) {
    // Legacy per-channel slope: align it with dim 1.
    slope.resize(x.size() - 1, 1);
  }
  return DispatchDType<kSignedDTypes>(args, args.inputs[0].dtype(), [&](auto tag) -> KernelResult {
    using T = decltype(tag);
    return MakeBinary<T, T, T>(std::move(args), slope,
                               [](T v, T s) { return v < static_cast<T>(0) ? WrapMul(s, v) : v; });
  });
}

// NaN propagates through Max and Min, as in numpy.maximum/minimum.
template <typename T>
T MaxValue(T a, T b) {
  if constexpr (std::is_floating_point_v<T>) {
    if (std::isnan(b)) return b;
  }
  return a > b || a != a ? a : b;
}

template <typename T>
T MinValue(T a, T b) {
  if constexpr (std::is_floating_point_v<T>) {
    if (std::isnan(b)) return b;
  }
  return a < b || a != a ? a : b;
}

enum class Fold { kMax, kMin, kSum, kMean };

template <Fold kFold>
KernelResult MakeFold(KernelArgs args) {
  HML_RETURN_IF_ERROR(CheckArity(args, 1, 1));
  constexpr DTypeSet kDTypes = kFold == Fold::kMean ? kFloatDTypes : kAllDTypes;
  return DispatchDType<kDTypes>(args, args.inputs[0].dtype(), [&](auto tag) -> KernelResult {
    using T = decltype(tag);
    if constexpr (kFold == Fold::kMax) {
      return MakeVariadic<T>(std::move(args), [](T a, T b) { return MaxValue(a, b); });
    } else if constexpr (kFold == Fold::kMin) {
      return MakeVariadic<T>(std::move(args), [](T a, T b) { return MinValue(a, b); });
    } else {
      return MakeVariadic<T>(
          std::move(args), [](T a, T b) { return WrapAdd(a, b); }, kFold == Fold::kMean);
    }
  });
}

// Float-only activations; `fn` maps one element.
template <typename Fn>
KernelResult MakeFloatUnary(KernelArgs args, Fn fn) {
  HML_RETURN_IF_ERROR(CheckArity(args, 1, 1));
  if (args.inputs[0].dtype() != DType::kFloat32) {
    return args.Error("element type " + std::string(DTypeName(args.inputs[0].dtype())) +
                      " is not supported (float32 only)");
  }
  return MakeUnary<float>(std::move(args), fn);
}

float Sigmoid(float x) {
  // exp of a non-positive argument cannot overflow.
  if (x >= 0.0f) return 1.0f / (1.0f + std::exp(-x));
  const float e = std::exp(x);
  return e / (1.0f + e);
}

KernelResult MakeSigmoid(KernelArgs args) { return MakeFloatUnary(std::move(args), Sigmoid); }
KernelResult MakeTanh(KernelArgs args) {
  return MakeFloatUnary(std::move(args), [](float x) { return std::tanh(x); });
}
KernelResult MakeExp(KernelArgs args) {
  return MakeFloatUnary(std::move(args), [](float x) { return std::exp(x); });
}
KernelResult MakeLog(KernelArgs args) {
  return MakeFloatUnary(std::move(args), [](float x) { return std::log(x); });
}
KernelResult MakeSqrt(KernelArgs args) {
  return MakeFloatUnary(std::move(args), [](float x) { return std::sqrt(x); });
}
KernelResult MakeHardSwish(KernelArgs args) {
  return MakeFloatUnary(std::move(args), [](float x) {
    return x * std::clamp(x * (1.0f / 6.0f) + 0.5f, 0.0f, 1.0f);
  });
}
KernelResult MakeLeakyRelu(KernelArgs args) {
  const float alpha = args.node->attrs.GetFloat("alpha", 0.01f);
  return MakeFloatUnary(std::move(args), [alpha](float x) { return x < 0.0f ? alpha * x : x; });
}
KernelResult MakeElu(KernelArgs args) {
  const float alpha = args.node->attrs.GetFloat("alpha", 1.0f);
  return MakeFloatUnary(std::move(args),
                        [alpha](float x) { return x < 0.0f ? alpha * std::expm1(x) : x; });
}
KernelResult MakeHardSigmoid(KernelArgs args) {
  const float alpha = args.node->attrs.GetFloat("alpha", 0.2f);
  const float beta = args.node->attrs.GetFloat("beta", 0.5f);
  return MakeFloatUnary(
      std::move(args), [alpha, beta](float x) { return std::clamp(alpha * x + beta, 0.0f, 1.0f); });
}

KernelResult MakeSelu(KernelArgs args) {
  const float alpha = args.node->attrs.GetFloat("alpha", 1.67326319217681884765625f);
  const float gamma = args.node->attrs.GetFloat("gamma", 1.05070102214813232421875f);
  return MakeFloatUnary(std::move(args), [alpha, gamma](float x) {
    return gamma * (x > 0.0f ? x : alpha * std::expm1(x));
  });
}
KernelResult MakeSoftplus(KernelArgs args) {
  // log(1 + exp(x)) without overflow for large x.
  return MakeFloatUnary(std::move(args), [](float x) {
    return x > 0.0f ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
  });
}
KernelResult MakeSoftsign(KernelArgs args) {
  return MakeFloatUnary(std::move(args), [](float x) { return x / (1.0f + std::fabs(x)); });
}
KernelResult MakeReciprocal(KernelArgs args) {
  return MakeFloatUnary(std::move(args), [](float x) { return 1.0f / x; });
}
KernelResult MakeFloor(KernelArgs args) {
  return MakeFloatUnary(std::move(args), [](float x) { return std::floor(x); });
}
KernelResult MakeCeil(KernelArgs args) {
  return MakeFloatUnary(std::move(args), [](float x) { return std::ceil(x); });
}
KernelResult MakeRound(KernelArgs args) {
  // Halves round to even, independent of the floating-point environment's rounding mode.
  return MakeFloatUnary(std::move(args), [](float x) { return RoundHalfEven(x); });
}
KernelResult MakeErf(KernelArgs args) {
  return MakeFloatUnary(std::move(args), [](float x) { return std::erf(x); });
}

KernelResult MakeRelu(KernelArgs args) {
  HML_RETURN_IF_ERROR(CheckArity(args, 1, 1));
  return DispatchDType<kSignedDTypes>(args, args.inputs[0].dtype(), [&](auto tag) -> KernelResult {
    using T = decltype(tag);
    return MakeUnary<T>(std::move(args),
                        [](T x) { return x < static_cast<T>(0) ? static_cast<T>(0) : x; });
  });
}

KernelResult MakeNeg(KernelArgs args) {
  HML_RETURN_IF_ERROR(CheckArity(args, 1, 1));
  return DispatchDType<kSignedDTypes>(args, args.inputs[0].dtype(), [&](auto tag) -> KernelResult {
    using T = decltype(tag);
    return MakeUnary<T>(std::move(args), [](T x) { return WrapNeg(x); });
  });
}

KernelResult MakeAbs(KernelArgs args) {
  HML_RETURN_IF_ERROR(CheckArity(args, 1, 1));
  return DispatchDType<kAllDTypes>(args, args.inputs[0].dtype(), [&](auto tag) -> KernelResult {
    using T = decltype(tag);
    if constexpr (std::is_floating_point_v<T>) {
      return MakeUnary<T>(std::move(args), [](T x) { return std::fabs(x); });
    } else {
      return MakeUnary<T>(std::move(args),
                          [](T x) { return x < static_cast<T>(0) ? WrapNeg(x) : x; });
    }
  });
}

KernelResult MakeClip(KernelArgs args) {
  HML_RETURN_IF_ERROR(CheckArity(args, 1, 1));
  const DType dtype = args.inputs[0].dtype();
  if (args.outputs[0].shape() != args.inputs[0].shape()) {
    return args.Error("output shape does not match the input");
  }
  return DispatchDType<kAllDTypes>(args, dtype, [&](auto tag) -> KernelResult {
    using T = decltype(tag);
    T lo = std::numeric_limits<T>::lowest();
    T hi = std::numeric_limits<T>::max();
    const T* lo_input = nullptr;
    const T* hi_input = nullptr;
    if (args.opset < 11) {
      if constexpr (std::is_floating_point_v<T>) {
        lo = args.node->attrs.GetFloat("min", lo);
        hi = args.node->attrs.GetFloat("max", hi);
      } else {
        return args.Error("Clip before opset 11 supports float32 only");
      }
    } else {
      for (size_t i = 1; i <= 2 && i < args.inputs.size(); ++i) {
        const Tensor& bound = args.inputs[i];
        if (bound.empty()) continue;
        if (bound.dtype() != dtype || bound.num_elements() != 1) {
          return args.Error("min/max must be one value of the input's type");
        }
        (i == 1 ? lo_input : hi_input) = bound.data<T>();
      }
    }
    return std::unique_ptr<Kernel>(new ClipKernel<T>(std::move(args), lo, hi, lo_input, hi_input));
  });
}

KernelResult MakeCast(KernelArgs args) {
  HML_RETURN_IF_ERROR(CheckArity(args, 1, 1));
  if (args.inputs[0].shape() != args.outputs[0].shape()) {
    return args.Error("output shape does not match the input");
  }
  const int64_t to = args.node->attrs.GetInt("to", 0);
  Result<DType> target = DTypeFromOnnx(static_cast<int>(to));
  if (!target.ok()) {
    return Unimplemented(args, "cast target: " + std::string(target.status().message()));
  }
  if (*target != args.outputs[0].dtype()) {
    return args.Error("output type does not match 'to'");
  }
  return DispatchDType<kAllDTypes>(
      args, args.inputs[0].dtype(), [&](auto from_tag) -> KernelResult {
        using From = decltype(from_tag);
        return DispatchDType<kAllDTypes>(args, *target, [&](auto to_tag) -> KernelResult {
          using To = decltype(to_tag);
          return std::unique_ptr<Kernel>(new CastKernel<From, To>(std::move(args)));
        });
      });
}

KernelResult MakeCopy(KernelArgs args) {
  HML_RETURN_IF_ERROR(CheckArity(args, 1, 1));
  if (args.outputs.size() > 1 && !args.outputs[1].empty()) {
    return Unimplemented(args, "the mask output is not supported");
  }
  if (args.inputs.size() > 2 && !args.inputs[2].empty()) {
    return Unimplemented(args, "the training_mode input is not supported");
  }
  if (args.inputs[0].shape() != args.outputs[0].shape() ||
      args.inputs[0].dtype() != args.outputs[0].dtype()) {
    return args.Error("output does not match the input");
  }
  return MakeCopyKernel(std::move(args));
}

}  // namespace

void AddElementwiseKernels(KernelRegistry& registry) {
  registry.Add("", "Add", MakeArithmetic<Arith::kAdd>);
  registry.Add("", "Sub", MakeArithmetic<Arith::kSub>);
  registry.Add("", "Mul", MakeArithmetic<Arith::kMul>);
  registry.Add("", "Div", MakeArithmetic<Arith::kDiv>);
  registry.Add("", "Pow", MakePow);
  registry.Add("", "Max", MakeFold<Fold::kMax>);
  registry.Add("", "Min", MakeFold<Fold::kMin>);
  registry.Add("", "Sum", MakeFold<Fold::kSum>);
  registry.Add("", "Mean", MakeFold<Fold::kMean>);
  registry.Add("", "Relu", MakeRelu);
  registry.Add("", "LeakyRelu", MakeLeakyRelu);
  registry.Add("", "Sigmoid", MakeSigmoid);
  registry.Add("", "Tanh", MakeTanh);
  registry.Add("", "HardSigmoid", MakeHardSigmoid);
  registry.Add("", "HardSwish", MakeHardSwish);
  registry.Add("", "Neg", MakeNeg);
  registry.Add("", "Abs", MakeAbs);
  registry.Add("", "Exp", MakeExp);
  registry.Add("", "Log", MakeLog);
  registry.Add("", "Sqrt", MakeSqrt);
  registry.Add("", "Elu", MakeElu);
  registry.Add("", "Selu", MakeSelu);
  registry.Add("", "Softplus", MakeSoftplus);
  registry.Add("", "Softsign", MakeSoftsign);
  registry.Add("", "Reciprocal", MakeReciprocal);
  registry.Add("", "Floor", MakeFloor);
  registry.Add("", "Ceil", MakeCeil);
  registry.Add("", "Round", MakeRound);
  registry.Add("", "Erf", MakeErf);
  registry.Add("", "PRelu", MakePRelu);
  registry.Add("", "Clip", MakeClip);
  registry.Add("", "Cast", MakeCast);
  registry.Add("", "Identity", MakeCopy);
  registry.Add("", "Dropout", MakeCopy);
}

}  // namespace hml::runtime

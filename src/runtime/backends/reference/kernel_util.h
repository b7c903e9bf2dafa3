// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Helpers shared by all reference kernel files (elementwise, tensor, nn, quant): dispatch on an
// element type (over a DTypeSet, see src/runtime/ops/op_util.h), the checks a kernel factory
// makes on its arguments, exact value conversion and rounding, and the byte-copy kernel.
// Internal to the reference backend.
#ifndef HML_SRC_RUNTIME_BACKENDS_REFERENCE_KERNEL_UTIL_H_
#define HML_SRC_RUNTIME_BACKENDS_REFERENCE_KERNEL_UTIL_H_

#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "hml/runtime/tensor.h"
#include "src/runtime/kernel.h"
#include "src/runtime/ops/op_util.h"

namespace hml::runtime {

// What a kernel factory returns.
using KernelResult = Result<std::unique_ptr<Kernel>>;

template <typename K>
KernelResult Wrap(std::unique_ptr<K> kernel) {
  return std::unique_ptr<Kernel>(std::move(kernel));
}

// ---- Element types.

// Calls fn(T{}), T being the C++ element type of `dtype`, when kAllowed contains `dtype`, and
// returns its result; otherwise returns unsupported(), a non-OK Status.
template <DTypeSet kAllowed, typename Fn, typename Unsupported>
KernelResult DispatchDType(DType dtype, Fn&& fn, Unsupported&& unsupported) {
  switch (dtype) {
    case DType::kFloat32:
      if constexpr (kAllowed.Contains(DType::kFloat32)) return fn(float{});
      break;
    case DType::kUInt8:
      if constexpr (kAllowed.Contains(DType::kUInt8)) return fn(uint8_t{});
      break;
    case DType::kInt8:
      if constexpr (kAllowed.Contains(DType::kInt8)) return fn(int8_t{});
      break;
    case DType::kInt32:
      if constexpr (kAllowed.Contains(DType::kInt32)) return fn(int32_t{});
      break;
    case DType::kInt64:
      if constexpr (kAllowed.Contains(DType::kInt64)) return fn(int64_t{});
      break;
    case DType::kUndefined:
      break;
  }
  return unsupported();
}

// kInvalidArgument "<op> '<name>': element type <dtype> is not supported".
Status UnsupportedElementType(const KernelArgs& args, DType dtype);

// kUnimplemented "<op> '<name>': <what> <dtype> is not supported (<allowed> are)".
Status UnsupportedDType(const KernelArgs& args, std::string_view what, DType dtype,
                        DTypeSet allowed);

// DispatchDType failing with UnsupportedElementType(args, dtype).
template <DTypeSet kAllowed, typename Fn>
KernelResult DispatchDType(const KernelArgs& args, DType dtype, Fn&& fn) {
  return DispatchDType<kAllowed>(dtype, std::forward<Fn>(fn),
                                 [&] { return UnsupportedElementType(args, dtype); });
}

// DispatchDType failing with UnsupportedDType(args, what, dtype, kAllowed).
template <DTypeSet kAllowed, typename Fn>
KernelResult DispatchDTypeOrUnimplemented(const KernelArgs& args, std::string_view what,
                                          DType dtype, Fn&& fn) {
  return DispatchDType<kAllowed>(dtype, std::forward<Fn>(fn),
                                 [&] { return UnsupportedDType(args, what, dtype, kAllowed); });
}

// ---- Argument checks. Errors are kInvalidArgument "<op> '<name>': <why>" (KernelArgs::Error).

// kUnimplemented "<op> '<name>': <why>", for valid ONNX that the reference kernel does not take.
Status Unimplemented(const KernelArgs& args, std::string_view why);

// True when optional input `i` is given.
bool HasInput(const KernelArgs& args, size_t i);

// Checks that the node has at least `min_inputs` inputs, all of them present, and at least
// `num_outputs` outputs, output 0 being present (no output check when `num_outputs` is 0).
Status CheckArity(const KernelArgs& args, size_t min_inputs, size_t num_outputs);

// Checks that input `i` is present and has dtype `dtype`.
Status CheckInput(const KernelArgs& args, size_t i, DType dtype);

// Checks that output `i` is present and has dtype `dtype` and shape `shape`.
Status CheckOutput(const KernelArgs& args, size_t i, DType dtype, const Shape& shape);

// ---- Shapes and values.

// Product of the dims in [begin, end); 1 for an empty range.
int64_t Product(Shape::const_iterator begin, Shape::const_iterator end);
inline int64_t NumElements(const Shape& shape) { return Product(shape.begin(), shape.end()); }

// Converts with C semantics where they are defined: integers wrap, float->int truncates toward
// zero; NaN becomes 0 and out-of-range floats saturate instead of being undefined.
template <typename To, typename From>
To ConvertValue(From v) {
  if constexpr (std::is_floating_point_v<To> || !std::is_floating_point_v<From>) {
    return static_cast<To>(v);
  } else {
    const double d = static_cast<double>(v);
    if (std::isnan(d)) return static_cast<To>(0);
    if (d <= static_cast<double>(std::numeric_limits<To>::lowest())) {
      return std::numeric_limits<To>::lowest();
    }
    if (d >= static_cast<double>(std::numeric_limits<To>::max())) {
      return std::numeric_limits<To>::max();
    }
    return static_cast<To>(d);
  }
}

// Round half to even, independent of the floating-point environment's rounding mode.
template <typename F>
F RoundHalfEven(F v) {
  F r = std::round(v);  // half away from zero
  if (std::fabs(v - std::trunc(v)) == F(0.5)) r = F(2) * std::round(v / F(2));
  return r;
}

// ---- Kernels.

// A kernel that copies input 0's bytes to output 0 (Identity, Dropout, Reshape and the like).
// REQUIRES: input 0 and output 0 have the same byte size; they may be the same buffer.
std::unique_ptr<Kernel> MakeCopyKernel(KernelArgs args);

}  // namespace hml::runtime

#endif  // HML_SRC_RUNTIME_BACKENDS_REFERENCE_KERNEL_UTIL_H_

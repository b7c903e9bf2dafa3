// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// INT8 cut tensors for split inference. The device quantizes each FP32 tensor at a cut with its
// own (per-tensor) affine parameters taken from the tensor's min and max, and sends them with
// the tensor as the v2 parameters "scale" and "zero_point" (transport.h); the server dequantizes
// x = scale * (q - zero_point) before it runs the tail (src/server/serving/split_inference.h).
//
//   lo = min(min(x), 0), hi = max(max(x), 0)          (the range always holds 0, so that zero,
//                                                     e.g. every ReLU's output below 0, is exact)
//   scale = (hi - lo) / 255                           (1 when hi == lo, i.e. an all-zero tensor)
//   zero_point = clamp(round(-128 - lo / scale), -128, 127)
//   q = clamp(round(x / scale) + zero_point, -128, 127)
//
// The round-trip error of every element is at most scale / 2 (+ float rounding), i.e.
// (max - min) / 510 for a tensor whose range holds 0. Affine rather than symmetric: a ReLU/ReLU6
// activation (most cuts of a CNN) is non-negative and would waste half of a symmetric range.
//
// Device target: no exceptions, no server headers.
#ifndef HML_SRC_SDK_SPLIT_CUT_QUANTIZATION_H_
#define HML_SRC_SDK_SPLIT_CUT_QUANTIZATION_H_

#include <string>

#include "hml/runtime/tensor.h"
#include "hml/status.h"
#include "src/sdk/transport.h"

namespace hml::sdk {

// `x` (FP32, any shape, not empty) as an INT8 NamedTensor called `name` carrying "scale"
// (double) and "zero_point" (int64). kInvalidArgument for another dtype, an empty tensor or a
// non-finite element (naming the tensor).
Result<NamedTensor> QuantizeCutTensor(std::string name, const Tensor& x);

// The FP32 tensor an INT8 NamedTensor made by QuantizeCutTensor stands for: scale * (q -
// zero_point). kInvalidArgument when the dtype or the parameters are missing or of the wrong
// kind.
Result<Tensor> DequantizeCutTensor(const NamedTensor& q);

}  // namespace hml::sdk

#endif  // HML_SRC_SDK_SPLIT_CUT_QUANTIZATION_H_

// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Per-tensor affine INT8 quantization of cut tensors; cut_quantization.h has the arithmetic.
#include "src/sdk/split/cut_quantization.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <variant>

namespace hml::sdk {

Result<NamedTensor> QuantizeCutTensor(std::string name, const Tensor& x) {
  if (x.dtype() != DType::kFloat32 || x.num_elements() == 0) {
    return InvalidArgumentError("cut tensor '" + name +
                                "': only non-empty float32 tensors can be quantized to int8");
  }
  std::span<const float> v = x.values<float>();
  float lo = 0.0f;
  float hi = 0.0f;
  for (float f : v) {
    if (!std::isfinite(f)) {
      return InvalidArgumentError("cut tensor '" + name +
                                  "' holds a non-finite value: it cannot be quantized");
    }
    lo = std::min(lo, f);
    hi = std::max(hi, f);
  }
  const double range = static_cast<double>(hi) - static_cast<double>(lo);
  const double scale = range > 0 ? range / 255.0 : 1.0;
  const int64_t zero_point = static_cast<int64_t>(
      std::clamp(std::round(-128.0 - static_cast<double>(lo) / scale), -128.0, 127.0));
  HML_ASSIGN_OR_RETURN(Tensor q, Tensor::Allocate(DType::kInt8, x.shape()));
  int8_t* out = q.data<int8_t>();
  const double inverse = 1.0 / scale;
  const double zp = static_cast<double>(zero_point);
  for (size_t i = 0; i < v.size(); ++i) {
    const double r = std::round(static_cast<double>(v[i]) * inverse) + zp;
    out[i] = static_cast<int8_t>(std::clamp(r, -128.0, 127.0));
  }
  NamedTensor named{std::move(name), std::move(q), {}};
  named.parameters[kScaleParameter] = scale;
  named.parameters[kZeroPointParameter] = zero_point;
  return named;
}

Result<Tensor> DequantizeCutTensor(const NamedTensor& q) {
  auto scale_it = q.parameters.find(kScaleParameter);
  auto zp_it = q.parameters.find(kZeroPointParameter);
  if (q.tensor.dtype() != DType::kInt8 || scale_it == q.parameters.end() ||
      zp_it == q.parameters.end() || !std::holds_alternative<double>(scale_it->second) ||
      !std::holds_alternative<int64_t>(zp_it->second)) {
    return InvalidArgumentError("cut tensor '" + q.name +
                                "': not an int8 tensor with a double scale and int64 zero_point");
  }
  const double scale = std::get<double>(scale_it->second);
  const int64_t zero_point = std::get<int64_t>(zp_it->second);
  HML_ASSIGN_OR_RETURN(Tensor x, Tensor::Allocate(DType::kFloat32, q.tensor.shape()));
  const int8_t* in = q.tensor.data<int8_t>();
  float* out = x.data<float>();
  for (int64_t i = 0; i < q.tensor.num_elements(); ++i) {
    out[i] = static_cast<float>(scale * static_cast<double>(in[i] - zero_point));
  }
  return x;
}

}  // namespace hml::sdk

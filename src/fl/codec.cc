// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/fl/codec.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

namespace hml::fl {

Result<Int8Quantized> EncodeInt8(std::span<const float> values, uint32_t chunk_size) {
  if (values.size() > UINT32_MAX) {
    return InvalidArgumentError("int8 codec: " + std::to_string(values.size()) +
                                " elements exceed the uint32 element count");
  }
  Int8Quantized q;
  q.size = static_cast<uint32_t>(values.size());
  q.chunk_size = chunk_size == 0 ? q.size : chunk_size;
  q.codes.resize(values.size());
  if (values.empty()) return q;
  for (size_t start = 0; start < values.size(); start += q.chunk_size) {
    const size_t end = std::min(values.size(), start + q.chunk_size);
    float max_abs = 0.0f;
    for (size_t i = start; i < end; ++i) {
      if (!std::isfinite(values[i])) {
        return InvalidArgumentError("int8 codec: element " + std::to_string(i) + " is not finite");
      }
      max_abs = std::max(max_abs, std::fabs(values[i]));
    }
    // An all-zero chunk gets scale 0 and codes 0; decoding multiplies back to exact zeros.
    const float scale = max_abs / 127.0f;
    q.scales.push_back(scale);
    for (size_t i = start; i < end; ++i) {
      const float code = scale > 0.0f ? std::nearbyint(values[i] / scale) : 0.0f;
      q.codes[i] = static_cast<int8_t>(std::clamp(code, -127.0f, 127.0f));
    }
  }
  return q;
}

std::vector<float> DecodeInt8(const Int8Quantized& q) {
  std::vector<float> out(q.size);
  for (size_t i = 0; i < q.size; ++i) {
    out[i] = static_cast<float>(q.codes[i]) * q.scales[i / q.chunk_size];
  }
  return out;
}

TopKSparse EncodeTopK(std::span<const float> values, uint32_t k) {
  TopKSparse s;
  s.size = static_cast<uint32_t>(values.size());
  const size_t keep = std::min<size_t>(k, values.size());
  std::vector<uint32_t> order(values.size());
  std::iota(order.begin(), order.end(), 0u);
  // Larger magnitude first; equal magnitudes by lower index, so the selection is a total order.
  auto before = [&](uint32_t a, uint32_t b) {
    const float ma = std::fabs(values[a]);
    const float mb = std::fabs(values[b]);
    return ma != mb ? ma > mb : a < b;
  };
  std::nth_element(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(keep), order.end(),
                   before);
  order.resize(keep);
  std::sort(order.begin(), order.end());
  s.indices = order;
  s.values.reserve(keep);
  for (uint32_t i : order) s.values.push_back(values[i]);
  return s;
}

std::vector<float> DecodeTopK(const TopKSparse& s) {
  std::vector<float> out(s.size, 0.0f);
  for (size_t i = 0; i < s.indices.size(); ++i) out[s.indices[i]] = s.values[i];
  return out;
}

Result<TopKSparse> ErrorFeedbackTopK::Encode(std::span<const float> update) {
  if (residual_.empty()) residual_.assign(update.size(), 0.0f);
  if (update.size() != residual_.size()) {
    return InvalidArgumentError("top-k error feedback: update has " +
                                std::to_string(update.size()) + " elements, earlier ones had " +
                                std::to_string(residual_.size()));
  }
  std::vector<float> corrected(update.size());
  for (size_t i = 0; i < update.size(); ++i) corrected[i] = update[i] + residual_[i];
  TopKSparse s = EncodeTopK(corrected, k_);
  residual_ = std::move(corrected);
  for (uint32_t i : s.indices) residual_[i] = 0.0f;
  return s;
}

}  // namespace hml::fl

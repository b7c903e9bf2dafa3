// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Update compression for federated rounds, with exact byte accounting so a round can report how
// many bytes clients uploaded.
//
// Int8Quantized: symmetric per-chunk int8 quantization. The vector is cut into chunks of
// `chunk_size` elements (0: one chunk for the whole tensor); each chunk stores one float scale
// s = max|x| / 127 and codes round(x / s) in [-127, 127]. Symmetric (no zero point) because
// model updates are centred on zero; -128 is unused so the code range is symmetric. Decoding
// gives x' = code * s with |x - x'| <= s / 2 for every element. Per-chunk scales bound the damage
// one outlier does to the rest of a large tensor.
//
// TopKSparse: the k elements of largest magnitude as (uint32 index, float value) pairs; ties
// in magnitude go to the lower index, so selection is deterministic. Dropping the rest biases the
// update, so clients use ErrorFeedbackTopK: the part not sent (the residual) is kept on the
// client and added to the next update before selection (Seide et al. 2014; Stich et al. 2018,
// "Sparsified SGD with memory"). Whatever is dropped is only delayed, so the running sum of
// decoded updates tracks the running sum of true updates within the (bounded) residual.
//
// Wire sizes (EncodedSize, bytes; little-endian, no padding):
//   Int8Quantized: uint32 element count + uint32 chunk size + 4 bytes per chunk scale
//                  + 1 byte per element.
//   TopKSparse:    uint32 element count + uint32 k + k * (4-byte index + 4-byte value).
// The dense float32 baseline is 4 bytes per element (DenseSize).
#ifndef HML_SRC_FL_CODEC_H_
#define HML_SRC_FL_CODEC_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "hml/status.h"

namespace hml::fl {

// Bytes of an uncompressed float32 vector of `n` elements.
constexpr size_t DenseSize(size_t n) { return 4 * n; }

struct Int8Quantized {
  uint32_t size = 0;        // Number of elements.
  uint32_t chunk_size = 0;  // Elements per chunk (the last may be shorter); size if per-tensor.
  std::vector<float> scales;
  std::vector<int8_t> codes;

  size_t EncodedSize() const { return 8 + 4 * scales.size() + codes.size(); }
};

// Quantizes `values`. chunk_size 0 means one scale for the whole vector. Values must be finite.
Result<Int8Quantized> EncodeInt8(std::span<const float> values, uint32_t chunk_size = 0);
// Decodes into a vector of q.size elements. REQUIRES: q as EncodeInt8 made it (codes.size() ==
// size, one scale per chunk); a decoder of bytes from the network must check this first.
std::vector<float> DecodeInt8(const Int8Quantized& q);

struct TopKSparse {
  uint32_t size = 0;              // Length of the dense vector.
  std::vector<uint32_t> indices;  // Ascending.
  std::vector<float> values;      // values[i] belongs at indices[i].

  size_t EncodedSize() const { return 8 + 8 * indices.size(); }
};

// Keeps the min(k, size) elements of largest magnitude (ties to the lower index).
// REQUIRES: values.size() < 2^32 (indices are uint32).
TopKSparse EncodeTopK(std::span<const float> values, uint32_t k);
// Dense vector of s.size elements, zero except at the kept indices.
std::vector<float> DecodeTopK(const TopKSparse& s);

// A client's top-k compressor with error feedback. Holds the residual between rounds, so one
// object per client and model; not thread-safe.
class ErrorFeedbackTopK {
 public:
  explicit ErrorFeedbackTopK(uint32_t k) : k_(k) {}

  // Adds the residual to `update`, sends the top k of the sum and keeps the rest as the new
  // residual. The first call fixes the vector length; later calls must match it.
  Result<TopKSparse> Encode(std::span<const float> update);

  const std::vector<float>& residual() const { return residual_; }

 private:
  uint32_t k_;
  std::vector<float> residual_;
};

}  // namespace hml::fl

#endif  // HML_SRC_FL_CODEC_H_

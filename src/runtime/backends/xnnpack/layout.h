// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Layout helpers of the XNNPACK backend. The session keeps activations in ONNX layout (NCHW for
// images); inside an XNNPACK subgraph every rank-4 value is NHWC. These functions convert data at
// segment boundaries (Run() time: no allocation) and reorder constants at compile time.
//
// Pure functions over raw memory; no XNNPACK types, so they are unit-testable on their own.
#ifndef HML_SRC_RUNTIME_BACKENDS_XNNPACK_LAYOUT_H_
#define HML_SRC_RUNTIME_BACKENDS_XNNPACK_LAYOUT_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "hml/runtime/tensor.h"

namespace hml::runtime::xnnpack {

// Where a value's elements sit in memory inside a segment.
enum class Layout {
  // The graph's (ONNX) layout.
  kPlain,
  // A rank-4 [N, C, H, W] value stored as [N, H, W, C].
  kNhwc,
  // A rank-2 [N, C*H*W] value (a Flatten of a rank-4 value) whose rows hold the elements in
  // H, W, C order. Only fully-connected nodes (with permuted weight columns) and elementwise
  // unary nodes read such values; at a segment boundary it is transposed like kNhwc.
  kFlatNhwc,
};

// [N, C, H, W] -> [N, H, W, C]. REQUIRES: shape.size() == 4.
Shape NhwcShape(const Shape& nchw);

// True when the NCHW and NHWC orders of `nchw` (rank 4) are the same sequence of elements:
// C == 1 or H * W == 1. Such values cross a segment boundary with a plain copy and can be
// reshaped freely.
bool SameOrderInNhwc(const Shape& nchw);

// Transposes `n` images of `c` channels and `hw` pixels, elements of `elem_size` bytes (1 or 4):
// NCHW -> NHWC and back. Source and destination must not overlap. Does not allocate.
void TransposeNchwToNhwc(const void* src, void* dst, size_t n, size_t c, size_t hw,
                         size_t elem_size);
void TransposeNhwcToNchw(const void* src, void* dst, size_t n, size_t c, size_t hw,
                         size_t elem_size);

// Reorders a constant of shape `shape` (rank <= 4) for a rank-4 NHWC consumer: left-pads the
// shape with ones to rank 4, then permutes [a, b, c, d] -> [a, c, d, b]. Returns the new shape in
// `nhwc_shape`.
template <typename T>
std::vector<T> ToNhwcConstant(const std::vector<T>& data, const Shape& shape, Shape* nhwc_shape);

// Conv filters: ONNX [O, I, KH, KW] -> XNNPACK [O, KH, KW, I].
template <typename T>
std::vector<T> OihwToOhwi(const T* data, int64_t o, int64_t i, int64_t kh, int64_t kw);

// Depthwise filters: ONNX [C*M, 1, KH, KW] -> XNNPACK [1, KH, KW, C*M].
template <typename T>
std::vector<T> OihwToDepthwise(const T* data, int64_t o, int64_t kh, int64_t kw);

// ConvTranspose filters: ONNX [Cin, Cout/g, KH, KW] -> XNNPACK [Cout, KH, KW, Cin/g].
template <typename T>
std::vector<T> DeconvFilter(const T* data, int64_t c_in, int64_t c_out_per_group, int64_t groups,
                            int64_t kh, int64_t kw);

// Fully-connected filters: rows = outputs, columns = inputs. Transposes a [rows, cols] matrix.
template <typename T>
std::vector<T> Transpose2d(const T* data, int64_t rows, int64_t cols);

// Permutes the columns of a [rows, c*h*w] filter from CHW order to HWC order, so that a
// fully-connected node over kFlatNhwc data computes what the original filter computes over the
// NCHW flattening.
template <typename T>
std::vector<T> PermuteColumnsChwToHwc(const std::vector<T>& filter, int64_t rows, int64_t c,
                                      int64_t h, int64_t w);

}  // namespace hml::runtime::xnnpack

#endif  // HML_SRC_RUNTIME_BACKENDS_XNNPACK_LAYOUT_H_

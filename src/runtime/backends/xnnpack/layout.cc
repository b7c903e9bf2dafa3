// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/runtime/backends/xnnpack/layout.h"

#include <algorithm>
#include <cstring>

namespace hml::runtime::xnnpack {
namespace {

// Tiles keep both the read and the write side of a transpose inside L1.
constexpr size_t kTile = 32;

// dst[j * rows + i] = src[i * cols + j] for each of `batch` [rows, cols] matrices.
template <typename T>
void TransposeMatrices(const T* src, T* dst, size_t batch, size_t rows, size_t cols) {
  for (size_t b = 0; b < batch; ++b) {
    const T* s = src + b * rows * cols;
    T* d = dst + b * rows * cols;
    for (size_t i0 = 0; i0 < rows; i0 += kTile) {
      const size_t i1 = std::min(rows, i0 + kTile);
      for (size_t j0 = 0; j0 < cols; j0 += kTile) {
        const size_t j1 = std::min(cols, j0 + kTile);
        for (size_t i = i0; i < i1; ++i) {
          for (size_t j = j0; j < j1; ++j) d[j * rows + i] = s[i * cols + j];
        }
      }
    }
  }
}

void Transpose(const void* src, void* dst, size_t batch, size_t rows, size_t cols,
               size_t elem_size) {
  if (rows == 1 || cols == 1) {
    std::memcpy(dst, src, batch * rows * cols * elem_size);
    return;
  }
  if (elem_size == 4) {
    TransposeMatrices(static_cast<const uint32_t*>(src), static_cast<uint32_t*>(dst), batch, rows,
                      cols);
  } else {
    TransposeMatrices(static_cast<const uint8_t*>(src), static_cast<uint8_t*>(dst), batch, rows,
                      cols);
  }
}

}  // namespace

Shape NhwcShape(const Shape& nchw) { return {nchw[0], nchw[2], nchw[3], nchw[1]}; }

bool SameOrderInNhwc(const Shape& nchw) { return nchw[1] == 1 || nchw[2] * nchw[3] == 1; }

void TransposeNchwToNhwc(const void* src, void* dst, size_t n, size_t c, size_t hw,
                         size_t elem_size) {
  Transpose(src, dst, n, c, hw, elem_size);
}

void TransposeNhwcToNchw(const void* src, void* dst, size_t n, size_t c, size_t hw,
                         size_t elem_size) {
  Transpose(src, dst, n, hw, c, elem_size);
}

template <typename T>
std::vector<T> ToNhwcConstant(const std::vector<T>& data, const Shape& shape, Shape* nhwc_shape) {
  Shape s4(4 - shape.size(), 1);
  s4.insert(s4.end(), shape.begin(), shape.end());
  *nhwc_shape = NhwcShape(s4);
  const size_t b = static_cast<size_t>(s4[1]);
  const size_t hw = static_cast<size_t>(s4[2] * s4[3]);
  std::vector<T> out(data.size());
  TransposeMatrices(data.data(), out.data(), static_cast<size_t>(s4[0]), b, hw);
  return out;
}

template <typename T>
std::vector<T> OihwToOhwi(const T* data, int64_t o, int64_t i, int64_t kh, int64_t kw) {
  std::vector<T> out(static_cast<size_t>(o * i * kh * kw));
  TransposeMatrices(data, out.data(), static_cast<size_t>(o), static_cast<size_t>(i),
                    static_cast<size_t>(kh * kw));
  return out;
}

template <typename T>
std::vector<T> OihwToDepthwise(const T* data, int64_t o, int64_t kh, int64_t kw) {
  std::vector<T> out(static_cast<size_t>(o * kh * kw));
  TransposeMatrices(data, out.data(), 1, static_cast<size_t>(o), static_cast<size_t>(kh * kw));
  return out;
}

template <typename T>
std::vector<T> DeconvFilter(const T* data, int64_t c_in, int64_t c_out_per_group, int64_t groups,
                            int64_t kh, int64_t kw) {
  const int64_t cin_g = c_in / groups;
  const int64_t k = kh * kw;
  std::vector<T> out(static_cast<size_t>(c_in * c_out_per_group * k));
  for (int64_t g = 0; g < groups; ++g) {
    for (int64_t oc = 0; oc < c_out_per_group; ++oc) {
      for (int64_t p = 0; p < k; ++p) {
        for (int64_t ic = 0; ic < cin_g; ++ic) {
          const int64_t src = ((g * cin_g + ic) * c_out_per_group + oc) * k + p;
          const int64_t dst = ((g * c_out_per_group + oc) * k + p) * cin_g + ic;
          out[static_cast<size_t>(dst)] = data[src];
        }
      }
    }
  }
  return out;
}

template <typename T>
std::vector<T> Transpose2d(const T* data, int64_t rows, int64_t cols) {
  std::vector<T> out(static_cast<size_t>(rows * cols));
  TransposeMatrices(data, out.data(), 1, static_cast<size_t>(rows), static_cast<size_t>(cols));
  return out;
}

template <typename T>
std::vector<T> PermuteColumnsChwToHwc(const std::vector<T>& filter, int64_t rows, int64_t c,
                                      int64_t h, int64_t w) {
  std::vector<T> out(filter.size());
  // Each row is a [C, H*W] matrix; HWC order is its transpose.
  TransposeMatrices(filter.data(), out.data(), static_cast<size_t>(rows), static_cast<size_t>(c),
                    static_cast<size_t>(h * w));
  return out;
}

template std::vector<float> ToNhwcConstant(const std::vector<float>&, const Shape&, Shape*);
template std::vector<int8_t> ToNhwcConstant(const std::vector<int8_t>&, const Shape&, Shape*);
template std::vector<float> OihwToOhwi(const float*, int64_t, int64_t, int64_t, int64_t);
template std::vector<int8_t> OihwToOhwi(const int8_t*, int64_t, int64_t, int64_t, int64_t);
template std::vector<float> OihwToDepthwise(const float*, int64_t, int64_t, int64_t);
template std::vector<int8_t> OihwToDepthwise(const int8_t*, int64_t, int64_t, int64_t);
template std::vector<float> DeconvFilter(const float*, int64_t, int64_t, int64_t, int64_t, int64_t);
template std::vector<float> Transpose2d(const float*, int64_t, int64_t);
template std::vector<int8_t> Transpose2d(const int8_t*, int64_t, int64_t);
template std::vector<float> PermuteColumnsChwToHwc(const std::vector<float>&, int64_t, int64_t,
                                                   int64_t, int64_t);
template std::vector<int8_t> PermuteColumnsChwToHwc(const std::vector<int8_t>&, int64_t, int64_t,
                                                    int64_t, int64_t);

}  // namespace hml::runtime::xnnpack

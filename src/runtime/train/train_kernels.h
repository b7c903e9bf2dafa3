// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The trainer's window kernels over 2-D planes (1-D windows use a height of 1): im2col and its
// adjoint for Conv, and MaxPool / AveragePool forward and backward. Backward kernels accumulate
// (+=) into the input gradient, so a value read by several nodes sums their contributions.
//
// Internal to hml_runtime_train.
#ifndef HML_SRC_RUNTIME_TRAIN_TRAIN_KERNELS_H_
#define HML_SRC_RUNTIME_TRAIN_TRAIN_KERNELS_H_

#include <cstdint>

#include "src/runtime/graph.h"
#include "src/runtime/ops/window_params.h"

namespace hml::runtime::train_internal {

// One window geometry over [channels, height, width] planes.
struct Window2 {
  int64_t channels = 0;
  int64_t height = 1, width = 1;
  int64_t kernel_h = 1, kernel_w = 1;
  int64_t stride_h = 1, stride_w = 1;
  int64_t dilation_h = 1, dilation_w = 1;
  int64_t pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  int64_t out_h = 1, out_w = 1;

  int64_t in_plane() const { return height * width; }
  int64_t out_plane() const { return out_h * out_w; }
  int64_t taps() const { return kernel_h * kernel_w; }
  // A 1x1 kernel with unit strides and no padding: im2col is the identity.
  bool is_pointwise() const;
};

// Canonicalises resolved window geometry (window_params.h) to Window2 with `channels` planes.
// kUnimplemented naming `what` for more than two spatial dims.
Result<Window2> ToWindow2(const WindowParams& p, int64_t channels, const std::string& what);

// x [channels, H, W] -> col [channels * kh * kw, out_h * out_w], zeros where a tap falls in
// the padding.
void Im2Col(const float* x, const Window2& g, float* col);
// dx [channels, H, W] += the adjoint of Im2Col applied to dcol.
void Col2ImAdd(const float* dcol, const Window2& g, float* dx);

// y [channels, out_h, out_w] = max over each window (padding excluded); argmax[i] is the index
// in the input plane of the maximum (-1 for a window wholly in the padding, whose y is 0).
void MaxPoolForward(const float* x, const Window2& g, float* y, int32_t* argmax);
void MaxPoolBackwardAdd(const float* dy, const int32_t* argmax, const Window2& g, float* dx);

// y = mean over each window. With count_include_pad the divisor counts padded positions
// (within the declared pads), without it only positions inside the input.
void AveragePoolForward(const float* x, const Window2& g, bool count_include_pad, float* y);
void AveragePoolBackwardAdd(const float* dy, const Window2& g, bool count_include_pad, float* dx);

}  // namespace hml::runtime::train_internal

#endif  // HML_SRC_RUNTIME_TRAIN_TRAIN_KERNELS_H_

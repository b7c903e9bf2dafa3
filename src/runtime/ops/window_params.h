// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Sliding-window geometry shared by Conv, ConvTranspose, MaxPool and AveragePool: shape
// inference, the reference kernels and the XNNPACK backend all read attributes through this one
// parser, so they cannot disagree about pads or auto_pad.
#ifndef HML_SRC_RUNTIME_OPS_WINDOW_PARAMS_H_
#define HML_SRC_RUNTIME_OPS_WINDOW_PARAMS_H_

#include <cstdint>
#include <vector>

#include "src/runtime/graph.h"

namespace hml::runtime {

// Geometry over the spatial dims (N and C excluded). All vectors have `spatial_rank` entries,
// pads_begin/pads_end resolved from `pads` or `auto_pad`.
struct WindowParams {
  int spatial_rank = 0;
  std::vector<int64_t> kernel;
  std::vector<int64_t> strides;
  std::vector<int64_t> dilations;
  std::vector<int64_t> pads_begin;
  std::vector<int64_t> pads_end;
  std::vector<int64_t> output_padding;  // ConvTranspose only
  std::vector<int64_t> input_spatial;
  std::vector<int64_t> output_spatial;
  int64_t group = 1;
  bool ceil_mode = false;  // pooling only
};

enum class WindowKind { kConv, kConvTranspose, kPool };

// Resolves the window geometry of `node` for an input of shape `input_shape` ([N, C, D1..Dn]).
// `kernel_shape` comes from the weight's spatial dims for convolutions (the attribute, when
// present, must agree) and from the attribute for pooling. Errors name the node and the
// offending attribute (non-positive strides, pads of the wrong length, windows larger than the
// padded input, ...).
Result<WindowParams> ResolveWindow(const Node& node, WindowKind kind, const Shape& input_shape,
                                   const std::vector<int64_t>& kernel_shape);

// The output shape of a windowed op: [batch, channels, output_spatial...].
Shape WindowOutputShape(int64_t batch, int64_t channels, const WindowParams& p);

}  // namespace hml::runtime

#endif  // HML_SRC_RUNTIME_OPS_WINDOW_PARAMS_H_

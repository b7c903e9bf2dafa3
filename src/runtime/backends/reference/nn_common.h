// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Helpers shared by the reference nn kernels (nn_kernels.cc) and the quantized ones
// (quant_kernels.cc): sliding-window geometry canonicalized to three spatial dims, the direct
// convolution loop both Conv and QLinearConv use, and the operand geometry and numpy-style
// batch broadcasting of the MatMul family. Internal to the reference backend; the helpers of
// every kernel file are in kernel_util.h.
#ifndef HML_SRC_RUNTIME_BACKENDS_REFERENCE_NN_COMMON_H_
#define HML_SRC_RUNTIME_BACKENDS_REFERENCE_NN_COMMON_H_

#include <algorithm>
#include <array>
#include <cstdint>
#include <vector>

#include "src/runtime/backends/reference/kernel_util.h"
#include "src/runtime/kernel.h"
#include "src/runtime/ops/window_params.h"

namespace hml::runtime::nn_internal {

// Registers QuantizeLinear, DequantizeLinear, QLinearConv and QLinearMatMul (quant_kernels.cc).
void AddQuantKernels(KernelRegistry& registry);

// Window geometry over exactly three spatial dims (D, H, W). 1-D and 2-D windows get leading
// unit dims (size 1, kernel 1, stride 1, dilation 1, no padding), so one loop nest serves all
// spatial ranks.
struct Window3 {
  std::array<int64_t, 3> in{1, 1, 1};
  std::array<int64_t, 3> out{1, 1, 1};
  std::array<int64_t, 3> kernel{1, 1, 1};
  std::array<int64_t, 3> stride{1, 1, 1};
  std::array<int64_t, 3> dilation{1, 1, 1};
  std::array<int64_t, 3> pad{0, 0, 0};  // padding before each dim; may be negative (ConvTranspose)
  std::array<int64_t, 3> pad_end{0, 0, 0};

  int64_t in_size() const { return in[0] * in[1] * in[2]; }
  int64_t out_size() const { return out[0] * out[1] * out[2]; }
  int64_t kernel_size() const { return kernel[0] * kernel[1] * kernel[2]; }
};

// Unimplemented for more than three spatial dims.
Result<Window3> ToWindow3(const KernelArgs& args, const WindowParams& p);

// A half-open index range [lo, hi); empty when hi <= lo.
struct Range {
  int64_t lo = 0;
  int64_t hi = 0;
  int64_t size() const { return hi > lo ? hi - lo : 0; }
};

// The j in [0, count) with 0 <= offset + j * step < limit. REQUIRES: step > 0.
Range ValidRange(int64_t offset, int64_t step, int64_t limit, int64_t count);

// Precomputed tap tables for a direct convolution: for the outer dims (D, H), the kernel taps
// that land inside the input for each output index; for the inner dim (W), the output indices
// each tap can reach. The inner loop then runs over a contiguous output row without bounds
// checks.
struct ConvTaps {
  std::vector<Range> taps_d;  // indexed by output d
  std::vector<Range> taps_h;  // indexed by output h
  std::vector<Range> outs_w;  // indexed by kernel w
};

ConvTaps MakeConvTaps(const Window3& g);

// The validated geometry of a Conv-like node: x [N, C, spatial...], w [M, C/group, k...],
// optional bias [M], output [N, M, out...].
struct ConvGeometry {
  int64_t batch = 0;
  int64_t in_channels = 0;
  int64_t out_channels = 0;
  int64_t group = 1;
  int64_t in_per_group = 0;
  int64_t out_per_group = 0;
  Window3 window;
  ConvTaps taps;
};

// Checks the shapes of inputs `x`, `w`, optional input `bias` and output 0 of a Conv-like node
// against each other and the node's attributes (dtypes are the caller's job).
Result<ConvGeometry> MakeConvGeometry(const KernelArgs& args, size_t x, size_t w, size_t bias);

// Adds one input channel's contribution to one output channel of a direct convolution:
// y[o] += sum over taps k of Acc(w[k]) * load(x[position(o, k)]), padding contributing nothing.
// `x` is one input plane (g.in elements), `w` one kernel (g.kernel elements), `y` one output
// plane (g.out elements). `load` maps an input element to Acc (identity for float; subtracting
// the zero point for quantized inputs).
template <typename Acc, typename XT, typename WT, typename Load>
void AccumulateConvChannel(const Window3& g, const ConvTaps& t, const XT* x, const WT* w, Acc* y,
                           Load load) {
  const int64_t out_h = g.out[1], out_w = g.out[2];
  const int64_t in_h = g.in[1], in_w = g.in[2];
  const int64_t k_h = g.kernel[1], k_w = g.kernel[2];
  const int64_t stride_w = g.stride[2];
  for (int64_t od = 0; od < g.out[0]; ++od) {
    const Range rd = t.taps_d[static_cast<size_t>(od)];
    for (int64_t oh = 0; oh < out_h; ++oh) {
      const Range rh = t.taps_h[static_cast<size_t>(oh)];
      Acc* y_row = y + (od * out_h + oh) * out_w;
      for (int64_t kd = rd.lo; kd < rd.hi; ++kd) {
        const int64_t id = od * g.stride[0] - g.pad[0] + kd * g.dilation[0];
        for (int64_t kh = rh.lo; kh < rh.hi; ++kh) {
          const int64_t ih = oh * g.stride[1] - g.pad[1] + kh * g.dilation[1];
          const XT* x_row = x + (id * in_h + ih) * in_w;
          const WT* w_row = w + (kd * k_h + kh) * k_w;
          for (int64_t kw = 0; kw < k_w; ++kw) {
            const Acc wv = static_cast<Acc>(w_row[kw]);
            const Range rw = t.outs_w[static_cast<size_t>(kw)];
            const int64_t n = rw.size();
            if (n == 0) continue;
            // First input column read by this tap; inside the row because rw is valid.
            const XT* xs = x_row + (rw.lo * stride_w + kw * g.dilation[2] - g.pad[2]);
            Acc* ys = y_row + rw.lo;
            if (stride_w == 1) {
              for (int64_t j = 0; j < n; ++j) ys[j] += wv * load(xs[j]);
            } else {
              for (int64_t j = 0; j < n; ++j) ys[j] += wv * load(xs[j * stride_w]);
            }
          }
        }
      }
    }
  }
}

// Numpy batch broadcasting for MatMul-like ops: for each batch of the output, the batch index
// into a and into b (each flattened over its own batch dims).
struct BatchMap {
  std::vector<int64_t> a;
  std::vector<int64_t> b;
};

// `a_batch` and `b_batch` are the operands' batch dims (everything but the last two after 1-D
// promotion). REQUIRES: they broadcast (checked by shape inference).
BatchMap MakeBatchMap(const Shape& a_batch, const Shape& b_batch);

// The validated geometry of numpy.matmul over inputs `a` and `b` (MatMul, QLinearMatMul): each
// [..., M, K] x [..., K, N] after promoting a 1-D a to [1, K] and a 1-D b to [K, 1].
struct MatMulGeometry {
  Shape a;  // the operands' shapes after promotion
  Shape b;
  int64_t m = 0;
  int64_t k = 0;
  int64_t n = 0;
  // Empty when output 0 has no elements (its batch map could be huge when M or N is 0).
  BatchMap batches;
};

// Checks the operands' ranks and inner dims and that output 0 has batches * M * N elements
// (dtypes are the caller's job).
Result<MatMulGeometry> MakeMatMulGeometry(const KernelArgs& args, size_t a, size_t b);

}  // namespace hml::runtime::nn_internal

#endif  // HML_SRC_RUNTIME_BACKENDS_REFERENCE_NN_COMMON_H_

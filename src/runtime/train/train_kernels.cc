// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/runtime/train/train_kernels.h"

#include <algorithm>
#include <cstring>
#include <limits>

namespace hml::runtime::train_internal {
namespace {

// The output indices o in [0, count) whose input index o * stride + offset lies in [0, limit).
void ValidOutputs(int64_t offset, int64_t stride, int64_t limit, int64_t count, int64_t* lo,
                  int64_t* hi) {
  // First o with o * stride + offset >= 0, and first o with o * stride + offset >= limit.
  int64_t first = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
  int64_t end = limit - offset <= 0 ? 0 : (limit - offset + stride - 1) / stride;
  *lo = std::min(first, count);
  *hi = std::max(*lo, std::min(end, count));
}

// Divisor of an average-pool window starting at (y0, x0) in input coordinates.
int64_t AverageDivisor(const Window2& g, bool count_include_pad, int64_t y0, int64_t x0) {
  int64_t h_lo = count_include_pad ? -g.pad_top : 0;
  int64_t h_hi = count_include_pad ? g.height + g.pad_bottom : g.height;
  int64_t w_lo = count_include_pad ? -g.pad_left : 0;
  int64_t w_hi = count_include_pad ? g.width + g.pad_right : g.width;
  int64_t count = 0;
  for (int64_t ky = 0; ky < g.kernel_h; ++ky) {
    const int64_t iy = y0 + ky * g.dilation_h;
    if (iy < h_lo || iy >= h_hi) continue;
    for (int64_t kx = 0; kx < g.kernel_w; ++kx) {
      const int64_t ix = x0 + kx * g.dilation_w;
      if (ix >= w_lo && ix < w_hi) ++count;
    }
  }
  return std::max<int64_t>(count, 1);
}

}  // namespace

bool Window2::is_pointwise() const {
  return kernel_h == 1 && kernel_w == 1 && stride_h == 1 && stride_w == 1 && pad_top == 0 &&
         pad_left == 0 && pad_bottom == 0 && pad_right == 0;
}

Result<Window2> ToWindow2(const WindowParams& p, int64_t channels, const std::string& what) {
  if (p.spatial_rank < 1 || p.spatial_rank > 2) {
    return UnimplementedError(what + ": the trainer supports 1-D and 2-D windows, not " +
                              std::to_string(p.spatial_rank) + "-D");
  }
  Window2 g;
  g.channels = channels;
  const size_t w = p.spatial_rank == 2 ? 1 : 0;  // index of the width dim
  if (p.spatial_rank == 2) {
    g.height = p.input_spatial[0];
    g.kernel_h = p.kernel[0];
    g.stride_h = p.strides[0];
    g.dilation_h = p.dilations[0];
    g.pad_top = p.pads_begin[0];
    g.pad_bottom = p.pads_end[0];
    g.out_h = p.output_spatial[0];
  }
  g.width = p.input_spatial[w];
  g.kernel_w = p.kernel[w];
  g.stride_w = p.strides[w];
  g.dilation_w = p.dilations[w];
  g.pad_left = p.pads_begin[w];
  g.pad_right = p.pads_end[w];
  g.out_w = p.output_spatial[w];
  return g;
}

void Im2Col(const float* x, const Window2& g, float* col) {
  const int64_t out_plane = g.out_plane();
  for (int64_t c = 0; c < g.channels; ++c) {
    const float* xc = x + c * g.in_plane();
    for (int64_t ky = 0; ky < g.kernel_h; ++ky) {
      for (int64_t kx = 0; kx < g.kernel_w; ++kx) {
        float* row = col + ((c * g.kernel_h + ky) * g.kernel_w + kx) * out_plane;
        const int64_t x_off = kx * g.dilation_w - g.pad_left;
        int64_t ox_lo, ox_hi;
        ValidOutputs(x_off, g.stride_w, g.width, g.out_w, &ox_lo, &ox_hi);
        for (int64_t oy = 0; oy < g.out_h; ++oy) {
          float* out = row + oy * g.out_w;
          const int64_t iy = oy * g.stride_h + ky * g.dilation_h - g.pad_top;
          if (iy < 0 || iy >= g.height) {
            std::fill(out, out + g.out_w, 0.0f);
            continue;
          }
          const float* in = xc + iy * g.width + x_off;
          std::fill(out, out + ox_lo, 0.0f);
          if (g.stride_w == 1) {
            std::memcpy(out + ox_lo, in + ox_lo, static_cast<size_t>(ox_hi - ox_lo) * 4);
          } else {
            for (int64_t ox = ox_lo; ox < ox_hi; ++ox) out[ox] = in[ox * g.stride_w];
          }
          std::fill(out + ox_hi, out + g.out_w, 0.0f);
        }
      }
    }
  }
}

void Col2ImAdd(const float* dcol, const Window2& g, float* dx) {
  const int64_t out_plane = g.out_plane();
  for (int64_t c = 0; c < g.channels; ++c) {
    float* dxc = dx + c * g.in_plane();
    for (int64_t ky = 0; ky < g.kernel_h; ++ky) {
      for (int64_t kx = 0; kx < g.kernel_w; ++kx) {
        const float* row = dcol + ((c * g.kernel_h + ky) * g.kernel_w + kx) * out_plane;
        const int64_t x_off = kx * g.dilation_w - g.pad_left;
        int64_t ox_lo, ox_hi;
        ValidOutputs(x_off, g.stride_w, g.width, g.out_w, &ox_lo, &ox_hi);
        for (int64_t oy = 0; oy < g.out_h; ++oy) {
          const int64_t iy = oy * g.stride_h + ky * g.dilation_h - g.pad_top;
          if (iy < 0 || iy >= g.height) continue;
          const float* in = row + oy * g.out_w;
          float* out = dxc + iy * g.width + x_off;
          for (int64_t ox = ox_lo; ox < ox_hi; ++ox) out[ox * g.stride_w] += in[ox];
        }
      }
    }
  }
}

// The common 2x2, stride 2, unpadded pool (every CNN of the zoo) without the general loop's
// bounds checks.
void MaxPool2x2Forward(const float* x, const Window2& g, float* y, int32_t* argmax) {
  for (int64_t c = 0; c < g.channels; ++c) {
    const float* xc = x + c * g.in_plane();
    float* yc = y + c * g.out_plane();
    int32_t* ac = argmax + c * g.out_plane();
    for (int64_t oy = 0; oy < g.out_h; ++oy) {
      const int64_t r0 = 2 * oy * g.width;
      const int64_t r1 = r0 + g.width;
      for (int64_t ox = 0; ox < g.out_w; ++ox) {
        // Selects instead of branches: on real activations the comparisons are unpredictable.
        int64_t best = r0 + 2 * ox;
        float v = xc[best];
        for (const int64_t i : {r0 + 2 * ox + 1, r1 + 2 * ox, r1 + 2 * ox + 1}) {
          const bool greater = xc[i] > v;
          v = greater ? xc[i] : v;
          best = greater ? i : best;
        }
        yc[oy * g.out_w + ox] = v;
        ac[oy * g.out_w + ox] = static_cast<int32_t>(best);
      }
    }
  }
}

void MaxPoolForward(const float* x, const Window2& g, float* y, int32_t* argmax) {
  if (g.kernel_h == 2 && g.kernel_w == 2 && g.stride_h == 2 && g.stride_w == 2 &&
      g.dilation_h == 1 && g.dilation_w == 1 && g.pad_top == 0 && g.pad_left == 0 &&
      g.out_h * 2 <= g.height && g.out_w * 2 <= g.width) {
    MaxPool2x2Forward(x, g, y, argmax);
    return;
  }
  for (int64_t c = 0; c < g.channels; ++c) {
    const float* xc = x + c * g.in_plane();
    for (int64_t oy = 0; oy < g.out_h; ++oy) {
      for (int64_t ox = 0; ox < g.out_w; ++ox) {
        const int64_t y0 = oy * g.stride_h - g.pad_top;
        const int64_t x0 = ox * g.stride_w - g.pad_left;
        float best = -std::numeric_limits<float>::infinity();
        int64_t best_index = -1;
        for (int64_t ky = 0; ky < g.kernel_h; ++ky) {
          const int64_t iy = y0 + ky * g.dilation_h;
          if (iy < 0 || iy >= g.height) continue;
          for (int64_t kx = 0; kx < g.kernel_w; ++kx) {
            const int64_t ix = x0 + kx * g.dilation_w;
            if (ix < 0 || ix >= g.width) continue;
            const float v = xc[iy * g.width + ix];
            if (best_index < 0 || v > best) {
              best = v;
              best_index = iy * g.width + ix;
            }
          }
        }
        const int64_t o = c * g.out_plane() + oy * g.out_w + ox;
        y[o] = best_index < 0 ? 0.0f : best;
        argmax[o] = static_cast<int32_t>(best_index);
      }
    }
  }
}

void MaxPoolBackwardAdd(const float* dy, const int32_t* argmax, const Window2& g, float* dx) {
  for (int64_t c = 0; c < g.channels; ++c) {
    float* dxc = dx + c * g.in_plane();
    const float* dyc = dy + c * g.out_plane();
    const int32_t* ac = argmax + c * g.out_plane();
    for (int64_t o = 0; o < g.out_plane(); ++o) {
      if (ac[o] >= 0) dxc[ac[o]] += dyc[o];
    }
  }
}

void AveragePoolForward(const float* x, const Window2& g, bool count_include_pad, float* y) {
  for (int64_t c = 0; c < g.channels; ++c) {
    const float* xc = x + c * g.in_plane();
    for (int64_t oy = 0; oy < g.out_h; ++oy) {
      for (int64_t ox = 0; ox < g.out_w; ++ox) {
        const int64_t y0 = oy * g.stride_h - g.pad_top;
        const int64_t x0 = ox * g.stride_w - g.pad_left;
        float sum = 0.0f;
        for (int64_t ky = 0; ky < g.kernel_h; ++ky) {
          const int64_t iy = y0 + ky * g.dilation_h;
          if (iy < 0 || iy >= g.height) continue;
          for (int64_t kx = 0; kx < g.kernel_w; ++kx) {
            const int64_t ix = x0 + kx * g.dilation_w;
            if (ix >= 0 && ix < g.width) sum += xc[iy * g.width + ix];
          }
        }
        y[c * g.out_plane() + oy * g.out_w + ox] =
            sum / static_cast<float>(AverageDivisor(g, count_include_pad, y0, x0));
      }
    }
  }
}

void AveragePoolBackwardAdd(const float* dy, const Window2& g, bool count_include_pad, float* dx) {
  for (int64_t c = 0; c < g.channels; ++c) {
    float* dxc = dx + c * g.in_plane();
    for (int64_t oy = 0; oy < g.out_h; ++oy) {
      for (int64_t ox = 0; ox < g.out_w; ++ox) {
        const int64_t y0 = oy * g.stride_h - g.pad_top;
        const int64_t x0 = ox * g.stride_w - g.pad_left;
        const float share = dy[c * g.out_plane() + oy * g.out_w + ox] /
                            static_cast<float>(AverageDivisor(g, count_include_pad, y0, x0));
        for (int64_t ky = 0; ky < g.kernel_h; ++ky) {
          const int64_t iy = y0 + ky * g.dilation_h;
          if (iy < 0 || iy >= g.height) continue;
          for (int64_t kx = 0; kx < g.kernel_w; ++kx) {
            const int64_t ix = x0 + kx * g.dilation_w;
            if (ix >= 0 && ix < g.width) dxc[iy * g.width + ix] += share;
          }
        }
      }
    }
  }
}

}  // namespace hml::runtime::train_internal

// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/runtime/ops/window_params.h"

#include <algorithm>
#include <string>

#include "src/runtime/ops/op_util.h"

namespace hml::runtime {
namespace {

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Bound on every geometry attribute (kernel, strides, dilations, pads, output_padding,
// output_shape). Attributes come from untrusted model files; with this bound and spatial dims
// bounded by kMaxTensorBytes, every intermediate below fits in int64_t.
constexpr int64_t kMaxWindowAttr = int64_t{1} << 24;

}  // namespace

Result<WindowParams> ResolveWindow(const Node& node, WindowKind kind, const Shape& input_shape,
                                   const std::vector<int64_t>& kernel_shape) {
  auto error = [&](const std::string& why) {
    return InvalidArgumentError(node.op_type + " '" + node.name + "': " + why);
  };
  if (input_shape.size() < 3) {
    return error("input must have rank >= 3 ([N, C, spatial...]), got " +
                 ShapeToString(input_shape));
  }
  WindowParams p;
  p.spatial_rank = static_cast<int>(input_shape.size()) - 2;
  const size_t n = static_cast<size_t>(p.spatial_rank);
  p.input_spatial.assign(input_shape.begin() + 2, input_shape.end());
  for (int64_t d : p.input_spatial) {
    if (d < 0 || d > kMaxTensorBytes) {
      return error("input spatial dims of " + ShapeToString(input_shape) + " are out of range");
    }
  }

  p.kernel = kernel_shape;
  if (node.attrs.Has("kernel_shape")) {
    std::vector<int64_t> attr = node.attrs.GetInts("kernel_shape");
    if (kind != WindowKind::kPool && !p.kernel.empty() && attr != p.kernel) {
      return error("kernel_shape " + IntsToString(attr) +
                   " disagrees with the weight's spatial dims " + IntsToString(p.kernel));
    }
    p.kernel = attr;
  }
  if (p.kernel.size() != n) {
    return error("kernel_shape " + IntsToString(p.kernel) + " must have " + std::to_string(n) +
                 " entries for input " + ShapeToString(input_shape));
  }
  p.strides = node.attrs.GetInts("strides", std::vector<int64_t>(n, 1));
  p.dilations = node.attrs.GetInts("dilations", std::vector<int64_t>(n, 1));
  if (p.strides.size() != n) {
    return error("strides " + IntsToString(p.strides) + " has the wrong length");
  }
  if (p.dilations.size() != n) {
    return error("dilations " + IntsToString(p.dilations) + " has the wrong length");
  }
  for (size_t i = 0; i < n; ++i) {
    if (p.kernel[i] <= 0) {
      return error("kernel_shape " + IntsToString(p.kernel) + " must be positive");
    }
    if (p.strides[i] <= 0) return error("strides " + IntsToString(p.strides) + " must be positive");
    if (p.dilations[i] <= 0) {
      return error("dilations " + IntsToString(p.dilations) + " must be positive");
    }
    if (p.kernel[i] > kMaxWindowAttr || p.strides[i] > kMaxWindowAttr ||
        p.dilations[i] > kMaxWindowAttr) {
      return error("kernel_shape " + IntsToString(p.kernel) + ", strides " +
                   IntsToString(p.strides) + " or dilations " + IntsToString(p.dilations) +
                   " exceed " + std::to_string(kMaxWindowAttr));
    }
  }
  p.group = node.attrs.GetInt("group", 1);
  if (p.group <= 0) return error("group " + std::to_string(p.group) + " must be positive");
  p.ceil_mode = node.attrs.GetInt("ceil_mode", 0) != 0;
  if (kind == WindowKind::kConvTranspose) {
    p.output_padding = node.attrs.GetInts("output_padding", std::vector<int64_t>(n, 0));
    if (p.output_padding.size() != n) {
      return error("output_padding " + IntsToString(p.output_padding) + " has the wrong length");
    }
    for (int64_t v : p.output_padding) {
      if (v < 0 || v > kMaxWindowAttr) {
        return error("output_padding " + IntsToString(p.output_padding) + " is out of range");
      }
    }
  }

  const std::string auto_pad = node.attrs.GetString("auto_pad", "NOTSET");
  p.pads_begin.assign(n, 0);
  p.pads_end.assign(n, 0);
  p.output_spatial.assign(n, 0);

  if (kind == WindowKind::kConvTranspose) {
    std::vector<int64_t> output_shape = node.attrs.GetInts("output_shape");
    if (!output_shape.empty() && output_shape.size() == n + 2) {
      output_shape.erase(output_shape.begin(), output_shape.begin() + 2);
    }
    if (!output_shape.empty() && output_shape.size() != n) {
      return error("output_shape " + IntsToString(output_shape) + " has the wrong length");
    }
    for (int64_t v : output_shape) {
      if (v <= 0 || v > kMaxTensorBytes) {
        return error("output_shape " + IntsToString(output_shape) + " is out of range");
      }
    }
    const bool same = auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER";
    if (!same && auto_pad != "NOTSET" && auto_pad != "VALID") {
      return error("auto_pad '" + auto_pad +
                   "' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID");
    }
    std::vector<int64_t> pads(2 * n, 0);
    if (auto_pad == "NOTSET" && output_shape.empty()) {
      pads = node.attrs.GetInts("pads", std::vector<int64_t>(2 * n, 0));
      if (pads.size() != 2 * n) {
        return error("pads " + IntsToString(pads) + " has the wrong length");
      }
      for (int64_t v : pads) {
        if (v < 0 || v > kMaxWindowAttr) {
          return error("pads " + IntsToString(pads) + " are out of range");
        }
      }
    }
    for (size_t i = 0; i < n; ++i) {
      const int64_t ek = (p.kernel[i] - 1) * p.dilations[i] + 1;
      const int64_t full = p.strides[i] * (p.input_spatial[i] - 1) + p.output_padding[i] + ek;
      if (!output_shape.empty() || same) {
        // The ONNX formula: total = full - target, split with floor division; SAME_UPPER puts
        // the odd unit at the end, everything else (SAME_LOWER, and NOTSET with output_shape)
        // at the beginning. A negative total is valid: the output extends past the last
        // contribution and those positions hold only the bias.
        const int64_t target =
            output_shape.empty() ? p.input_spatial[i] * p.strides[i] : output_shape[i];
        const int64_t total = full - target;
        if (auto_pad == "SAME_UPPER") {
          p.pads_begin[i] = FloorDiv(total, 2);
          p.pads_end[i] = total - FloorDiv(total, 2);
        } else {
          p.pads_begin[i] = total - FloorDiv(total, 2);
          p.pads_end[i] = FloorDiv(total, 2);
        }
        p.output_spatial[i] = target;
      } else {
        p.pads_begin[i] = pads[i];
        p.pads_end[i] = pads[i + n];
        p.output_spatial[i] = full - p.pads_begin[i] - p.pads_end[i];
      }
      if (p.output_spatial[i] <= 0) {
        return error("output would be empty along spatial axis " + std::to_string(i));
      }
    }
    return p;
  }

  if (auto_pad == "NOTSET") {
    std::vector<int64_t> pads = node.attrs.GetInts("pads", std::vector<int64_t>(2 * n, 0));
    if (pads.size() != 2 * n) return error("pads " + IntsToString(pads) + " has the wrong length");
    for (size_t i = 0; i < n; ++i) {
      p.pads_begin[i] = pads[i];
      p.pads_end[i] = pads[i + n];
      if (pads[i] < 0 || pads[i + n] < 0) {
        return error("pads " + IntsToString(pads) + " are negative");
      }
      if (pads[i] > kMaxWindowAttr || pads[i + n] > kMaxWindowAttr) {
        return error("pads " + IntsToString(pads) + " exceed " + std::to_string(kMaxWindowAttr));
      }
    }
  } else if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
    for (size_t i = 0; i < n; ++i) {
      const int64_t out = CeilDiv(p.input_spatial[i], p.strides[i]);
      const int64_t ek = (p.kernel[i] - 1) * p.dilations[i] + 1;
      const int64_t total =
          std::max<int64_t>(0, (out - 1) * p.strides[i] + ek - p.input_spatial[i]);
      if (auto_pad == "SAME_UPPER") {
        p.pads_begin[i] = total / 2;
        p.pads_end[i] = total - total / 2;
      } else {
        p.pads_end[i] = total / 2;
        p.pads_begin[i] = total - total / 2;
      }
    }
  } else if (auto_pad != "VALID") {
    return error("auto_pad '" + auto_pad + "' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID");
  }

  for (size_t i = 0; i < n; ++i) {
    const int64_t ek = (p.kernel[i] - 1) * p.dilations[i] + 1;
    const int64_t span = p.input_spatial[i] + p.pads_begin[i] + p.pads_end[i] - ek;
    if (span < 0) {
      return error("window " + std::to_string(ek) + " is larger than the padded input " +
                   std::to_string(p.input_spatial[i] + p.pads_begin[i] + p.pads_end[i]));
    }
    int64_t out = p.ceil_mode ? CeilDiv(span, p.strides[i]) + 1 : span / p.strides[i] + 1;
    // With ceil_mode, the last window must start inside the input or left padding.
    if (p.ceil_mode && (out - 1) * p.strides[i] >= p.input_spatial[i] + p.pads_begin[i]) --out;
    p.output_spatial[i] = out;
  }
  return p;
}

Shape WindowOutputShape(int64_t batch, int64_t channels, const WindowParams& p) {
  Shape out = {batch, channels};
  out.insert(out.end(), p.output_spatial.begin(), p.output_spatial.end());
  return out;
}

}  // namespace hml::runtime

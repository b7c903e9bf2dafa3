// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/runtime/backends/reference/nn_common.h"

#include <algorithm>
#include <string>

#include "src/runtime/ops/op_util.h"

namespace hml::runtime::nn_internal {

Result<Window3> ToWindow3(const KernelArgs& args, const WindowParams& p) {
  if (p.spatial_rank < 1 || p.spatial_rank > 3) {
    return UnimplementedError(args.node->op_type + " '" + args.node->name +
                              "': " + std::to_string(p.spatial_rank) +
                              " spatial dims; the reference kernel supports 1 to 3");
  }
  Window3 g;
  const int offset = 3 - p.spatial_rank;
  for (int i = 0; i < p.spatial_rank; ++i) {
    const size_t s = static_cast<size_t>(i);
    const size_t d = static_cast<size_t>(i + offset);
    g.in[d] = p.input_spatial[s];
    g.out[d] = p.output_spatial[s];
    g.kernel[d] = p.kernel[s];
    g.stride[d] = p.strides[s];
    g.dilation[d] = p.dilations[s];
    g.pad[d] = p.pads_begin[s];
    g.pad_end[d] = p.pads_end[s];
  }
  return g;
}

Range ValidRange(int64_t offset, int64_t step, int64_t limit, int64_t count) {
  Range r;
  r.lo = std::max<int64_t>(0, FloorDiv(-offset + step - 1, step));  // ceil(-offset / step)
  r.hi = std::min<int64_t>(count, FloorDiv(limit - 1 - offset, step) + 1);
  if (r.hi < r.lo) r.hi = r.lo;
  return r;
}

ConvTaps MakeConvTaps(const Window3& g) {
  ConvTaps t;
  t.taps_d.resize(static_cast<size_t>(g.out[0]));
  t.taps_h.resize(static_cast<size_t>(g.out[1]));
  t.outs_w.resize(static_cast<size_t>(g.kernel[2]));
  for (int64_t o = 0; o < g.out[0]; ++o) {
    t.taps_d[static_cast<size_t>(o)] =
        ValidRange(o * g.stride[0] - g.pad[0], g.dilation[0], g.in[0], g.kernel[0]);
  }
  for (int64_t o = 0; o < g.out[1]; ++o) {
    t.taps_h[static_cast<size_t>(o)] =
        ValidRange(o * g.stride[1] - g.pad[1], g.dilation[1], g.in[1], g.kernel[1]);
  }
  for (int64_t k = 0; k < g.kernel[2]; ++k) {
    t.outs_w[static_cast<size_t>(k)] =
        ValidRange(k * g.dilation[2] - g.pad[2], g.stride[2], g.in[2], g.out[2]);
  }
  return t;
}

Result<ConvGeometry> MakeConvGeometry(const KernelArgs& args, size_t x, size_t w, size_t bias) {
  const Shape& xs = args.inputs[x].shape();
  const Shape& ws = args.inputs[w].shape();
  if (xs.size() < 3 || ws.size() != xs.size()) {
    return args.Error("input " + ShapeToString(xs) + " and weight " + ShapeToString(ws) +
                      " must have the same rank >= 3");
  }
  ConvGeometry c;
  c.batch = xs[0];
  c.in_channels = xs[1];
  c.out_channels = ws[0];
  c.group = args.node->attrs.GetInt("group", 1);
  if (c.group <= 0 || c.group > kMaxTensorBytes || ws[1] * c.group != c.in_channels ||
      c.out_channels % c.group != 0) {
    return args.Error("weight " + ShapeToString(ws) + " does not fit input " + ShapeToString(xs) +
                      " with group " + std::to_string(c.group));
  }
  c.in_per_group = ws[1];
  c.out_per_group = c.out_channels / c.group;
  if (bias < args.inputs.size() && !args.inputs[bias].empty()) {
    const Shape& bs = args.inputs[bias].shape();
    if (bs.size() != 1 || bs[0] != c.out_channels) {
      return args.Error("bias " + ShapeToString(bs) + " must have shape [" +
                        std::to_string(c.out_channels) + "]");
    }
  }
  HML_ASSIGN_OR_RETURN(WindowParams p,
                       ResolveWindow(*args.node, WindowKind::kConv, xs,
                                     std::vector<int64_t>(ws.begin() + 2, ws.end())));
  HML_ASSIGN_OR_RETURN(c.window, ToWindow3(args, p));
  const Shape out = WindowOutputShape(c.batch, c.out_channels, p);
  if (args.outputs[0].shape() != out) {
    return args.Error("output shape " + ShapeToString(args.outputs[0].shape()) +
                      " differs from the computed " + ShapeToString(out));
  }
  c.taps = MakeConvTaps(c.window);
  return c;
}

BatchMap MakeBatchMap(const Shape& a_batch, const Shape& b_batch) {
  const size_t rank = std::max(a_batch.size(), b_batch.size());
  auto aligned = [rank](const Shape& s) {
    Shape r(rank - s.size(), 1);
    r.insert(r.end(), s.begin(), s.end());
    return r;
  };
  const Shape a = aligned(a_batch), b = aligned(b_batch);
  Shape out(rank);
  int64_t total = 1;
  for (size_t i = 0; i < rank; ++i) {
    out[i] = (a[i] == 0 || b[i] == 0) ? 0 : std::max(a[i], b[i]);
    total *= out[i];
  }
  BatchMap m;
  m.a.resize(static_cast<size_t>(total));
  m.b.resize(static_cast<size_t>(total));
  std::vector<int64_t> idx(rank, 0);
  for (int64_t flat = 0; flat < total; ++flat) {
    int64_t ai = 0, bi = 0;
    for (size_t i = 0; i < rank; ++i) {
      ai = ai * a[i] + (a[i] == 1 ? 0 : idx[i]);
      bi = bi * b[i] + (b[i] == 1 ? 0 : idx[i]);
    }
    m.a[static_cast<size_t>(flat)] = ai;
    m.b[static_cast<size_t>(flat)] = bi;
    for (size_t i = rank; i-- > 0;) {  // odometer increment, innermost dim first
      if (++idx[i] < out[i]) break;
      idx[i] = 0;
    }
  }
  return m;
}

Result<MatMulGeometry> MakeMatMulGeometry(const KernelArgs& args, size_t a, size_t b) {
  const Shape& as = args.inputs[a].shape();
  const Shape& bs = args.inputs[b].shape();
  if (as.empty() || bs.empty()) return args.Error("operands must have rank >= 1");
  MatMulGeometry g;
  g.a = as.size() == 1 ? Shape{1, as[0]} : as;
  g.b = bs.size() == 1 ? Shape{bs[0], 1} : bs;
  g.m = g.a[g.a.size() - 2];
  g.k = g.a[g.a.size() - 1];
  g.n = g.b[g.b.size() - 1];
  if (g.b[g.b.size() - 2] != g.k) return args.Error("inner dimensions differ");
  const int64_t num_elements = args.outputs[0].num_elements();
  if (num_elements == 0) return g;
  g.batches = MakeBatchMap(Shape(g.a.begin(), g.a.end() - 2), Shape(g.b.begin(), g.b.end() - 2));
  if (num_elements != static_cast<int64_t>(g.batches.a.size()) * g.m * g.n) {
    return args.Error("output " + ShapeToString(args.outputs[0].shape()) +
                      " does not match the operands");
  }
  return g;
}

}  // namespace hml::runtime::nn_internal

// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "bench/cnn28.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "hml/runtime/session.h"
#include "hml/runtime/tensor_util.h"
#include "tests/testing/graph_builder.h"
#include "tests/testing/models.h"

namespace hml::bench {
namespace {

using W = Cnn28Weights;

Result<std::vector<float>> ConstantValues(const runtime::Graph& g, const std::string& name,
                                          const Shape& shape) {
  const runtime::ValueId id = g.FindValue(name);
  if (id == runtime::kNoValue || !g.value(id).is_constant()) {
    return InvalidArgumentError("cnn28: no constant '" + name + "'");
  }
  const Tensor& t = *g.value(id).constant;
  if (t.dtype() != DType::kFloat32 || t.shape() != shape) {
    return InvalidArgumentError("cnn28: constant '" + name + "' is " + SummarizeTensor(t) +
                                ", expected float32 " + ShapeToString(shape));
  }
  return std::vector<float>(t.values<float>().begin(), t.values<float>().end());
}

// Per-tensor asymmetric int8 parameters covering [lo, hi] (widened to include 0, as ONNX
// Runtime's quantizer does, so that 0 is exact).
struct Affine {
  float scale = 1.0f;
  int8_t zero_point = 0;
};

Affine AsymmetricInt8(float lo, float hi) {
  lo = std::min(lo, 0.0f);
  hi = std::max(hi, 0.0f);
  Affine a;
  a.scale = hi > lo ? (hi - lo) / 255.0f : 1.0f;
  const float zp = std::nearbyint(-128.0f - lo / a.scale);
  a.zero_point = static_cast<int8_t>(std::clamp(zp, -128.0f, 127.0f));
  return a;
}

// Symmetric per-row int8 quantization of a [rows, cols] weight: zero point 0, scale max|w|/127.
void QuantizeRows(const std::vector<float>& w, int64_t rows, std::vector<int8_t>* q,
                  std::vector<float>* scales) {
  const int64_t cols = static_cast<int64_t>(w.size()) / rows;
  q->resize(w.size());
  scales->resize(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    float max_abs = 0.0f;
    for (int64_t c = 0; c < cols; ++c) max_abs = std::max(max_abs, std::fabs(w[r * cols + c]));
    const float s = max_abs > 0.0f ? max_abs / 127.0f : 1.0f;
    (*scales)[r] = s;
    for (int64_t c = 0; c < cols; ++c) {
      (*q)[r * cols + c] =
          static_cast<int8_t>(std::clamp(std::nearbyint(w[r * cols + c] / s), -127.0f, 127.0f));
    }
  }
}

// int32 bias with scale input_scale * weight_scale[c] (zero point 0); `weight_scales` holds one
// scale per channel or one for the whole tensor.
void QuantizeBias(const std::vector<float>& b, float input_scale,
                  const std::vector<float>& weight_scales, std::vector<int32_t>* q,
                  std::vector<float>* scales) {
  q->resize(b.size());
  scales->resize(b.size());
  for (size_t c = 0; c < b.size(); ++c) {
    (*scales)[c] = input_scale * weight_scales[weight_scales.size() == 1 ? 0 : c];
    (*q)[c] = static_cast<int32_t>(std::nearbyint(b[c] / (*scales)[c]));
  }
}

template <typename T>
Result<Tensor> Make(Shape shape, const std::vector<T>& values) {
  return Tensor::FromVector<T>(std::move(shape), std::span<const T>(values));
}

}  // namespace

runtime::Graph Cnn28Fp32Graph() {
  runtime::Graph g = testing::Cnn28Graph(/*opset=*/13);
  for (runtime::ValueId out : g.outputs) {
    g.value(out).shape = {-1, W::kClasses};
    g.value(out).shape_known = true;
  }
  return g;
}

Result<Cnn28Weights> ExtractCnn28Weights(const runtime::Graph& graph) {
  Cnn28Weights w;
  HML_ASSIGN_OR_RETURN(w.conv_w, ConstantValues(graph, "conv.w", {W::kChannels, 1, 3, 3}));
  HML_ASSIGN_OR_RETURN(w.conv_b, ConstantValues(graph, "conv.b", {W::kChannels}));
  HML_ASSIGN_OR_RETURN(w.fc_w, ConstantValues(graph, "fc.w", {W::kClasses, W::kFlat}));
  HML_ASSIGN_OR_RETURN(w.fc_b, ConstantValues(graph, "fc.b", {W::kClasses}));
  return w;
}

Result<Cnn28Ranges> CalibrateCnn28(const Model& fp32, int samples, uint64_t seed) {
  if (samples < 1) return InvalidArgumentError("cnn28: calibration needs at least one sample");
  const std::string input = fp32.inputs().at(0).name;
  const Shape shape = {samples, 1, W::kSide, W::kSide};
  const std::vector<std::string> outputs = {"relu", "logits"};
  HML_ASSIGN_OR_RETURN(Model sliced, fp32.Slice({}, outputs, {{input, shape}}));
  SessionOptions options;
  options.backend = "reference";
  options.input_shapes[input] = shape;
  HML_ASSIGN_OR_RETURN(std::unique_ptr<Session> session, Session::Create(sliced, options));
  HML_ASSIGN_OR_RETURN(Tensor x, Tensor::Allocate(DType::kFloat32, shape));
  FillRandom(x, seed);
  std::vector<Tensor> in;
  in.push_back(std::move(x));
  HML_ASSIGN_OR_RETURN(std::vector<Tensor> out, session->Run(in));
  HML_ASSIGN_OR_RETURN(size_t relu_index, session->OutputIndex("relu"));
  HML_ASSIGN_OR_RETURN(size_t logits_index, session->OutputIndex("logits"));

  Cnn28Ranges r;
  r.samples = samples;
  auto [in_lo, in_hi] =
      std::minmax_element(in[0].values<float>().begin(), in[0].values<float>().end());
  r.input_min = *in_lo;
  r.input_max = *in_hi;
  std::span<const float> relu = out[relu_index].values<float>();
  r.relu_max = *std::max_element(relu.begin(), relu.end());
  std::span<const float> logits = out[logits_index].values<float>();
  auto [lo, hi] = std::minmax_element(logits.begin(), logits.end());
  r.logits_min = *lo;
  r.logits_max = *hi;
  return r;
}

Cnn28Int8 QuantizeCnn28(const Cnn28Weights& w, const Cnn28Ranges& ranges,
                        const Cnn28QdqOptions& options) {
  Cnn28Int8 q;
  const Affine x = AsymmetricInt8(ranges.input_min, ranges.input_max);
  // ReLU folded into the conv output's quantization: range [0, relu_max], zero point -128.
  const Affine act = AsymmetricInt8(0.0f, ranges.relu_max);
  const Affine logits = AsymmetricInt8(ranges.logits_min, ranges.logits_max);
  q.input_scale = x.scale;
  q.input_zero_point = x.zero_point;
  q.act_scale = act.scale;
  q.act_zero_point = act.zero_point;
  q.logits_scale = logits.scale;
  q.logits_zero_point = logits.zero_point;
  QuantizeRows(w.conv_w, W::kChannels, &q.conv_w, &q.conv_w_scales);
  QuantizeRows(w.fc_w, options.gemm_per_channel ? W::kClasses : 1, &q.fc_w, &q.fc_w_scales);
  QuantizeBias(w.conv_b, x.scale, q.conv_w_scales, &q.conv_b, &q.conv_b_scales);
  QuantizeBias(w.fc_b, act.scale, q.fc_w_scales, &q.fc_b, &q.fc_b_scales);
  return q;
}

Result<runtime::Graph> BuildCnn28QdqGraph(const Cnn28Int8& q) {
  const Affine x{q.input_scale, q.input_zero_point};
  const Affine act{q.act_scale, q.act_zero_point};
  const Affine logits{q.logits_scale, q.logits_zero_point};
  testing::GraphBuilder b(/*opset=*/13);
  b.Input("image", DType::kFloat32, {-1, 1, W::kSide, W::kSide});
  auto scalar_params = [&](const std::string& name, const Affine& a) -> Status {
    HML_ASSIGN_OR_RETURN(Tensor s, Make<float>({}, {a.scale}));
    HML_ASSIGN_OR_RETURN(Tensor z, Make<int8_t>({}, {a.zero_point}));
    b.Constant(name + ".scale", std::move(s));
    b.Constant(name + ".zero_point", std::move(z));
    return Status::Ok();
  };
  HML_RETURN_IF_ERROR(scalar_params("image", x));
  HML_RETURN_IF_ERROR(scalar_params("act", act));
  HML_RETURN_IF_ERROR(scalar_params("logits", logits));

  // Constant weights and biases, each followed by its DequantizeLinear.
  runtime::Attributes axis0;
  axis0.SetInt("axis", 0);
  // Parameters of one scale per tensor are scalars; per channel, 1-D along axis 0.
  auto params_shape = [](size_t n) { return n == 1 ? Shape{} : Shape{static_cast<int64_t>(n)}; };
  auto weight = [&](const std::string& name, Shape shape, const std::vector<int8_t>& q,
                    const std::vector<float>& scales) -> Status {
    HML_ASSIGN_OR_RETURN(Tensor qt, Make<int8_t>(std::move(shape), q));
    HML_ASSIGN_OR_RETURN(Tensor st, Make<float>(params_shape(scales.size()), scales));
    HML_ASSIGN_OR_RETURN(Tensor zt, Make<int8_t>(params_shape(scales.size()),
                                                 std::vector<int8_t>(scales.size(), 0)));
    b.Constant(name + "_quantized", std::move(qt));
    b.Constant(name + "_scale", std::move(st));
    b.Constant(name + "_zero_point", std::move(zt));
    b.Node("DequantizeLinear", {name + "_quantized", name + "_scale", name + "_zero_point"}, {name},
           scales.size() == 1 ? runtime::Attributes() : axis0);
    return Status::Ok();
  };
  // int32 biases: scale input_scale * weight_scale, zero point 0 (omitted).
  auto bias = [&](const std::string& name, const std::vector<int32_t>& q,
                  const std::vector<float>& scales) -> Status {
    const bool per_tensor =
        std::all_of(scales.begin(), scales.end(), [&](float s) { return s == scales[0]; });
    HML_ASSIGN_OR_RETURN(Tensor qt, Make<int32_t>({static_cast<int64_t>(q.size())}, q));
    HML_ASSIGN_OR_RETURN(Tensor st, per_tensor ? Make<float>({}, {scales[0]})
                                               : Make<float>(params_shape(scales.size()), scales));
    b.Constant(name + "_quantized", std::move(qt));
    b.Constant(name + "_scale", std::move(st));
    b.Node("DequantizeLinear", {name + "_quantized", name + "_scale"}, {name},
           per_tensor ? runtime::Attributes() : axis0);
    return Status::Ok();
  };
  HML_RETURN_IF_ERROR(weight("conv.w", {W::kChannels, 1, 3, 3}, q.conv_w, q.conv_w_scales));
  HML_RETURN_IF_ERROR(bias("conv.b", q.conv_b, q.conv_b_scales));
  HML_RETURN_IF_ERROR(weight("fc.w", {W::kClasses, W::kFlat}, q.fc_w, q.fc_w_scales));
  HML_RETURN_IF_ERROR(bias("fc.b", q.fc_b, q.fc_b_scales));

  // QuantizeLinear + DequantizeLinear of an activation: `from` (fp32) -> `to` (fp32 again).
  auto qdq = [&](const std::string& from, const std::string& params, const std::string& to) {
    b.Node("QuantizeLinear", {from, params + ".scale", params + ".zero_point"}, {from + "_q"});
    b.Node("DequantizeLinear", {from + "_q", params + ".scale", params + ".zero_point"}, {to});
  };
  qdq("image", "image", "image_dq");
  runtime::Attributes conv;
  conv.SetInts("kernel_shape", {3, 3});
  conv.SetInts("pads", {1, 1, 1, 1});
  b.Node("Conv", {"image_dq", "conv.w", "conv.b"}, {"conv"}, conv);
  qdq("conv", "act", "conv_dq");  // the ReLU: negatives saturate to the zero point
  runtime::Attributes pool;
  pool.SetInts("kernel_shape", {2, 2});
  pool.SetInts("strides", {2, 2});
  b.Node("MaxPool", {"conv_dq"}, {"pool"}, pool);
  qdq("pool", "act", "pool_dq");
  runtime::Attributes flat;
  flat.SetInt("axis", 1);
  b.Node("Flatten", {"pool_dq"}, {"flat"}, flat);
  qdq("flat", "act", "flat_dq");
  runtime::Attributes gemm;
  gemm.SetInt("transB", 1);
  b.Node("Gemm", {"flat_dq", "fc.w", "fc.b"}, {"logits"}, gemm);
  qdq("logits", "logits", "logits_dq");
  runtime::Attributes softmax;
  softmax.SetInt("axis", 1);
  b.Node("Softmax", {"logits_dq"}, {"probs"}, softmax);
  b.Output("probs");
  runtime::Graph g = b.Build();
  g.name = "cnn28_int8_qdq";
  HML_RETURN_IF_ERROR(g.Validate());
  return g;
}

}  // namespace hml::bench

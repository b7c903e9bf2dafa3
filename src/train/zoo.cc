// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/train/zoo.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <string>

namespace hml::train {
namespace {

using runtime::Attributes;
using runtime::Graph;
using runtime::Node;
using runtime::Value;
using runtime::ValueId;

// Builds a graph node by node; values are created by name on first use.
class Builder {
 public:
  explicit Builder(uint64_t seed) : rng_(seed) {}
  Graph graph;

  ValueId Input(const std::string& name, Shape shape) {
    Value v;
    v.name = name;
    v.dtype = DType::kFloat32;
    v.shape = std::move(shape);
    v.shape_known = true;
    const ValueId id = graph.AddValue(std::move(v));
    graph.inputs.push_back(id);
    return id;
  }
  // Uniform in [-bound, bound) from the builder's generator (our own mapping, so the same seed
  // gives the same weights with every standard library).
  Result<ValueId> Uniform(const std::string& name, Shape shape, float bound) {
    HML_ASSIGN_OR_RETURN(Tensor t, Tensor::Allocate(DType::kFloat32, std::move(shape)));
    for (float& v : t.values<float>()) {
      const double u = static_cast<double>(rng_() >> 11) * (1.0 / 9007199254740992.0);
      v = static_cast<float>((2.0 * u - 1.0) * bound);
    }
    return graph.AddConstant(name, std::move(t));
  }
  Result<ValueId> Fill(const std::string& name, Shape shape, float value) {
    HML_ASSIGN_OR_RETURN(Tensor t, Tensor::Allocate(DType::kFloat32, std::move(shape)));
    for (float& v : t.values<float>()) v = value;
    return graph.AddConstant(name, std::move(t));
  }
  ValueId Op(const std::string& op, const std::string& name, std::vector<ValueId> inputs,
             Attributes attrs = {}) {
    Node n;
    n.name = name;
    n.op_type = op;
    n.inputs = std::move(inputs);
    n.attrs = std::move(attrs);
    Value out;
    out.name = name;
    const ValueId id = graph.AddValue(std::move(out));
    n.outputs.push_back(id);
    graph.nodes.push_back(std::move(n));
    return id;
  }
  Result<ValueId> Dense(const std::string& name, ValueId x, int64_t in, int64_t out) {
    HML_ASSIGN_OR_RETURN(ValueId w, Uniform(name + ".weight", {out, in},
                                            std::sqrt(6.0f / static_cast<float>(in))));
    HML_ASSIGN_OR_RETURN(ValueId b, Fill(name + ".bias", {out}, 0.0f));
    Attributes a;
    a.SetInt("transB", 1);
    return Op("Gemm", name, {x, w, b}, a);
  }
  ValueId Flatten(const std::string& name, ValueId x) {
    Attributes a;
    a.SetInt("axis", 1);
    return Op("Flatten", name, {x}, a);
  }
  // The graph output: declared float32 [N, classes] so exported ONNX states it.
  ValueId Softmax(ValueId logits, int64_t num_classes) {
    Attributes a;
    a.SetInt("axis", 1);
    const ValueId probs = Op("Softmax", "probs", {logits}, a);
    Value& v = graph.value(probs);
    v.dtype = DType::kFloat32;
    v.shape = {-1, num_classes};
    v.shape_known = true;
    return probs;
  }

 private:
  std::mt19937_64 rng_;
};

Status CheckPositive(const Shape& shape, std::string_view what) {
  if (shape.empty()) return InvalidArgumentError(std::string(what) + " is empty");
  for (int64_t d : shape) {
    if (d < 1) return InvalidArgumentError(std::string(what) + " " + ShapeToString(shape));
  }
  return Status::Ok();
}

}  // namespace

Result<Graph> BuildMlp(const Shape& sample_shape, const std::vector<int64_t>& hidden,
                       int64_t num_classes, uint64_t seed) {
  HML_RETURN_IF_ERROR(CheckPositive(sample_shape, "mlp: sample shape"));
  if (num_classes < 2) return InvalidArgumentError("mlp: need at least 2 classes");
  Builder b(seed);
  Shape in_shape{-1};
  in_shape.insert(in_shape.end(), sample_shape.begin(), sample_shape.end());
  ValueId x = b.Input("input", in_shape);
  int64_t width = 1;
  for (int64_t d : sample_shape) width *= d;
  x = b.Flatten("flatten", x);
  for (size_t i = 0; i < hidden.size(); ++i) {
    if (hidden[i] < 1) return InvalidArgumentError("mlp: hidden width must be >= 1");
    const std::string name = "fc" + std::to_string(i + 1);
    HML_ASSIGN_OR_RETURN(x, b.Dense(name, x, width, hidden[i]));
    x = b.Op("Relu", name + ".relu", {x});
    width = hidden[i];
  }
  HML_ASSIGN_OR_RETURN(ValueId logits, b.Dense("logits", x, width, num_classes));
  b.graph.outputs.push_back(b.Softmax(logits, num_classes));
  b.graph.name = "mlp";
  b.graph.opset = 13;
  HML_RETURN_IF_ERROR(b.graph.Validate());
  return std::move(b.graph);
}

Result<Graph> BuildCnn(const Shape& sample_shape, const std::vector<int64_t>& channels,
                       int64_t hidden, float dropout, int64_t num_classes, uint64_t seed) {
  HML_RETURN_IF_ERROR(CheckPositive(sample_shape, "cnn: sample shape"));
  if (sample_shape.size() != 3) {
    return InvalidArgumentError("cnn: needs [C,H,W] samples, got " + ShapeToString(sample_shape));
  }
  if (num_classes < 2) return InvalidArgumentError("cnn: need at least 2 classes");
  if (hidden < 1) return InvalidArgumentError("cnn: hidden width must be >= 1");
  if (!(dropout >= 0.0f && dropout < 1.0f)) {
    return InvalidArgumentError("cnn: dropout must be in [0, 1)");
  }
  Builder b(seed);
  ValueId x = b.Input("input", {-1, sample_shape[0], sample_shape[1], sample_shape[2]});
  int64_t c = sample_shape[0], h = sample_shape[1], w = sample_shape[2];
  for (size_t i = 0; i < channels.size(); ++i) {
    if (channels[i] < 1) return InvalidArgumentError("cnn: channel count must be >= 1");
    if (h < 2 || w < 2) {
      return InvalidArgumentError("cnn: a " + ShapeToString(sample_shape) +
                                  " image is too small for " + std::to_string(channels.size()) +
                                  " pooling stages");
    }
    const std::string name = "conv" + std::to_string(i + 1);
    const int64_t k = channels[i];
    HML_ASSIGN_OR_RETURN(ValueId wt, b.Uniform(name + ".weight", {k, c, 3, 3},
                                               std::sqrt(6.0f / static_cast<float>(c * 9))));
    HML_ASSIGN_OR_RETURN(ValueId bias, b.Fill(name + ".bias", {k}, 0.0f));
    Attributes conv;
    conv.SetInts("kernel_shape", {3, 3});
    conv.SetInts("pads", {1, 1, 1, 1});
    x = b.Op("Conv", name, {x, wt, bias}, conv);
    HML_ASSIGN_OR_RETURN(ValueId scale, b.Fill(name + ".bn.scale", {k}, 1.0f));
    HML_ASSIGN_OR_RETURN(ValueId shift, b.Fill(name + ".bn.bias", {k}, 0.0f));
    HML_ASSIGN_OR_RETURN(ValueId mean, b.Fill(name + ".bn.mean", {k}, 0.0f));
    HML_ASSIGN_OR_RETURN(ValueId var, b.Fill(name + ".bn.var", {k}, 1.0f));
    x = b.Op("BatchNormalization", name + ".bn", {x, scale, shift, mean, var});
    x = b.Op("Relu", name + ".relu", {x});
    Attributes pool;
    pool.SetInts("kernel_shape", {2, 2});
    pool.SetInts("strides", {2, 2});
    x = b.Op("MaxPool", name + ".pool", {x}, pool);
    c = k;
    h /= 2;
    w /= 2;
  }
  x = b.Flatten("flatten", x);
  HML_ASSIGN_OR_RETURN(x, b.Dense("fc1", x, c * h * w, hidden));
  x = b.Op("Relu", "fc1.relu", {x});
  if (dropout > 0.0f) {
    Attributes none;
    HML_ASSIGN_OR_RETURN(Tensor ratio, Tensor::FromVector<float>({}, std::vector<float>{dropout}));
    const ValueId r = b.graph.AddConstant("dropout.ratio", std::move(ratio));
    x = b.Op("Dropout", "dropout", {x, r}, none);
  }
  HML_ASSIGN_OR_RETURN(ValueId logits, b.Dense("logits", x, hidden, num_classes));
  b.graph.outputs.push_back(b.Softmax(logits, num_classes));
  b.graph.name = "cnn";
  b.graph.opset = 13;
  HML_RETURN_IF_ERROR(b.graph.Validate());
  return std::move(b.graph);
}

Result<Graph> BuildArchitecture(std::string_view name, const Shape& sample_shape,
                                int64_t num_classes, uint64_t seed, double width) {
  if (!(width > 0.0) || width > 64.0) {
    return InvalidArgumentError("architecture width multiplier " + std::to_string(width) +
                                " is outside (0, 64]");
  }
  // Every layer width scaled and rounded, at least 1.
  auto w = [width](int64_t units) {
    return std::max<int64_t>(1, std::llround(static_cast<double>(units) * width));
  };
  Result<Graph> g = InvalidArgumentError("unknown architecture '" + std::string(name) +
                                         "' (mlp, student-cnn, teacher-cnn)");
  if (name == "mlp") g = BuildMlp(sample_shape, {w(256)}, num_classes, seed);
  if (name == "student-cnn") {
    g = BuildCnn(sample_shape, {w(8), w(16)}, w(32), 0.0f, num_classes, seed);
  }
  if (name == "teacher-cnn") {
    g = BuildCnn(sample_shape, {w(32), w(64), w(128)}, w(256), 0.3f, num_classes, seed);
  }
  if (g.ok()) g->name = std::string(name);
  return g;
}

}  // namespace hml::train

// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/compress/quantize.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "hml/runtime/model.h"
#include "hml/runtime/session.h"
#include "src/runtime/onnx_io.h"
#include "tests/testing/graph_builder.h"
#include "tests/testing/models.h"

namespace hml::compress {
namespace {

using runtime::Graph;
using runtime::kNoValue;
using runtime::Node;
using runtime::ValueId;

CalibrationSet RandomCalibration(int samples, uint64_t seed) {
  CalibrationSet set;
  for (int i = 0; i < samples; ++i) {
    std::vector<Tensor> sample;
    sample.push_back(testing::RandomTensor({1, 1, 28, 28}, seed + static_cast<uint64_t>(i), 1.0f));
    set.samples.push_back(std::move(sample));
  }
  return set;
}

std::unique_ptr<Session> MakeSession(const Graph& g, const std::string& backend) {
  Result<Model> model = Model::FromGraph(g);
  EXPECT_TRUE(model.ok()) << model.status().ToString();
  if (!model.ok()) return nullptr;
  SessionOptions options;
  options.backend = backend;
  Result<std::unique_ptr<Session>> session = Session::Create(*model, options);
  EXPECT_TRUE(session.ok()) << session.status().ToString();
  return session.ok() ? std::move(*session) : nullptr;
}

std::vector<float> RunOne(Session& s, const Tensor& x) {
  std::vector<Tensor> in;
  in.push_back(std::move(*x.Clone()));
  Result<std::vector<Tensor>> out = s.Run(std::span<const Tensor>(in));
  EXPECT_TRUE(out.ok()) << out.status().ToString();
  if (!out.ok()) return {};
  return {(*out)[0].values<float>().begin(), (*out)[0].values<float>().end()};
}

int Argmax(const std::vector<float>& v) {
  return static_cast<int>(std::max_element(v.begin(), v.end()) - v.begin());
}

// The node producing `v`, or null.
const Node* ProducerOf(const Graph& g, ValueId v) {
  for (const Node& n : g.nodes) {
    for (ValueId out : n.outputs) {
      if (out == v) return &n;
    }
  }
  return nullptr;
}

const Node* FindOp(const Graph& g, const std::string& op) {
  for (const Node& n : g.nodes) {
    if (n.op_type == op) return &n;
  }
  return nullptr;
}

std::vector<float> FloatsOf(const Graph& g, ValueId v) {
  const Tensor& t = *g.value(v).constant;
  return {t.values<float>().begin(), t.values<float>().end()};
}

class QuantizeCnn28Test : public ::testing::Test {
 protected:
  void SetUp() override {
    fp32_ = testing::Cnn28Graph();
    Result<Graph> q =
        QuantizeStatic(fp32_, RandomCalibration(32, 100), QuantizeOptions(), &report_);
    ASSERT_TRUE(q.ok()) << q.status().ToString();
    int8_ = std::move(*q);
  }
  Graph fp32_;
  Graph int8_;
  QuantizeReport report_;
};

TEST_F(QuantizeCnn28Test, ProducesQdqAndFoldsRelu) {
  EXPECT_EQ(report_.quantized_nodes.size(), 2u);  // Conv, Gemm
  ASSERT_EQ(report_.folded_activations.size(), 1u);
  EXPECT_EQ(FindOp(int8_, "Relu"), nullptr);
  EXPECT_NE(FindOp(int8_, "QuantizeLinear"), nullptr);
  ASSERT_NE(FindOp(int8_, "Softmax"), nullptr);
  // Softmax stays fp32; the graph keeps its output name.
  ASSERT_EQ(int8_.outputs.size(), 1u);
  EXPECT_EQ(int8_.value(int8_.outputs[0]).name, "probs");
  // The folded ReLU: the conv output range starts at 0, so the zero point is -128.
  ASSERT_TRUE(report_.activations.count("relu"));
  EXPECT_EQ(report_.activations.at("relu").zero_point, -128);
  // MaxPool and Flatten reuse the conv output's parameters (XNNPACK's qs8 pool/reshape).
  ASSERT_TRUE(report_.activations.count("pool") && report_.activations.count("flat"));
  EXPECT_EQ(report_.activations.at("pool").scale, report_.activations.at("relu").scale);
  EXPECT_EQ(report_.activations.at("flat").scale, report_.activations.at("relu").scale);
  // Weights are int8 constants with zero point 0; biases int32.
  const Node* conv = FindOp(int8_, "Conv");
  ASSERT_NE(conv, nullptr);
  const Node* wdq = ProducerOf(int8_, conv->inputs[1]);
  ASSERT_NE(wdq, nullptr);
  EXPECT_EQ(wdq->op_type, "DequantizeLinear");
  EXPECT_EQ(int8_.value(wdq->inputs[0]).constant->dtype(), DType::kInt8);
  const Node* bdq = ProducerOf(int8_, conv->inputs[2]);
  ASSERT_NE(bdq, nullptr);
  EXPECT_EQ(int8_.value(bdq->inputs[0]).constant->dtype(), DType::kInt32);
}

TEST_F(QuantizeCnn28Test, RunsOnBothBackendsAndXnnpackAsOneSegment) {
  std::unique_ptr<Session> ref32 = MakeSession(fp32_, "reference");
  std::unique_ptr<Session> xnn8 = MakeSession(int8_, "xnnpack");
  std::unique_ptr<Session> ref8 = MakeSession(int8_, "reference");
  ASSERT_TRUE(ref32 && xnn8 && ref8);
  const std::vector<SegmentInfo> segments = xnn8->segments();
  ASSERT_EQ(segments.size(), 1u);
  EXPECT_EQ(segments[0].backend, "xnnpack");

  int agree = 0;
  const int trials = 200;
  float max_diff = 0.0f, max_backend_diff = 0.0f;
  for (int i = 0; i < trials; ++i) {
    Tensor x = testing::RandomTensor({1, 1, 28, 28}, 5000 + static_cast<uint64_t>(i), 1.0f);
    const std::vector<float> want = RunOne(*ref32, x);
    const std::vector<float> got = RunOne(*xnn8, x);
    const std::vector<float> got_ref = RunOne(*ref8, x);
    ASSERT_EQ(want.size(), 10u);
    ASSERT_EQ(got.size(), 10u);
    ASSERT_EQ(got_ref.size(), 10u);
    agree += Argmax(want) == Argmax(got);
    for (size_t k = 0; k < want.size(); ++k) {
      max_diff = std::max(max_diff, std::fabs(want[k] - got[k]));
      max_backend_diff = std::max(max_backend_diff, std::fabs(got_ref[k] - got[k]));
    }
  }
  EXPECT_GE(agree, trials * 95 / 100);
  EXPECT_LT(max_diff, 0.05f);          // probabilities
  EXPECT_LT(max_backend_diff, 0.02f);  // int8 on XNNPACK vs the reference QDQ semantics
  RecordProperty("argmax_agreement", agree);
}

TEST_F(QuantizeCnn28Test, BiasScalesAreExactlyInputTimesWeightScales) {
  for (const char* op : {"Conv", "Gemm"}) {
    const Node* node = FindOp(int8_, op);
    ASSERT_NE(node, nullptr) << op;
    const Node* xdq = ProducerOf(int8_, node->inputs[0]);
    const Node* wdq = ProducerOf(int8_, node->inputs[1]);
    const Node* bdq = ProducerOf(int8_, node->inputs[2]);
    ASSERT_TRUE(xdq && wdq && bdq) << op;
    const float x_scale = FloatsOf(int8_, xdq->inputs[1])[0];
    const std::vector<float> w_scales = FloatsOf(int8_, wdq->inputs[1]);
    const std::vector<float> b_scales = FloatsOf(int8_, bdq->inputs[1]);
    ASSERT_EQ(w_scales.size(), b_scales.size()) << op;
    for (size_t c = 0; c < w_scales.size(); ++c) {
      EXPECT_EQ(b_scales[c], x_scale * w_scales[c]) << op << " channel " << c;
    }
    EXPECT_EQ(bdq->attrs.GetInt("axis", -1), 0);
    // Weights are symmetric: no zero point input (ONNX's default 0 of the int8 type).
    EXPECT_EQ(wdq->inputs.size(), 2u);
    EXPECT_EQ(int8_.value(wdq->inputs[0]).constant->dtype(), DType::kInt8);
  }
}

TEST_F(QuantizeCnn28Test, WeightRoundTripWithinHalfAScale) {
  for (const char* op : {"Conv", "Gemm"}) {
    const Node* node = FindOp(int8_, op);
    ASSERT_NE(node, nullptr);
    const Node* wdq = ProducerOf(int8_, node->inputs[1]);
    ASSERT_NE(wdq, nullptr);
    const Tensor& q = *int8_.value(wdq->inputs[0]).constant;
    const std::vector<float> scales = FloatsOf(int8_, wdq->inputs[1]);
    const std::string wname = std::string(op) == "Conv" ? "conv.w" : "fc.w";
    const Tensor& w = *fp32_.value(fp32_.FindValue(wname)).constant;
    ASSERT_EQ(q.shape(), w.shape());
    ASSERT_EQ(wdq->attrs.GetInt("axis", -1), 0);  // Conv and Gemm with transB = 1
    const int64_t per_channel = w.num_elements() / w.dim(0);
    ASSERT_EQ(static_cast<int64_t>(scales.size()), w.dim(0));
    for (int64_t i = 0; i < w.num_elements(); ++i) {
      const float s = scales[static_cast<size_t>(i / per_channel)];
      const float back = s * static_cast<float>(q.data<int8_t>()[i]);
      EXPECT_LE(std::fabs(back - w.data<float>()[i]), s / 2 * 1.0001f) << wname << " [" << i << "]";
    }
  }
}

TEST(QuantizeWeightTest, SymmetricPerChannelAlongAnyAxis) {
  Tensor w = testing::RandomTensor({3, 5}, 7, 2.0f);
  for (int64_t k = 0; k < 5; ++k) w.data<float>()[5 + k] = 0.0f;  // an all-zero row
  for (int axis : {0, 1}) {
    std::vector<float> scales;
    Result<Tensor> q = QuantizeWeightSymmetric(w, axis, /*per_channel=*/true, &scales);
    ASSERT_TRUE(q.ok()) << q.status().ToString();
    ASSERT_EQ(static_cast<int64_t>(scales.size()), w.dim(axis));
    for (int64_t r = 0; r < 3; ++r) {
      for (int64_t c = 0; c < 5; ++c) {
        const float s = scales[static_cast<size_t>(axis == 0 ? r : c)];
        EXPECT_GT(s, 0.0f);
        const int8_t v = q->data<int8_t>()[r * 5 + c];
        EXPECT_GE(v, -127);
        EXPECT_LE(std::fabs(s * v - w.data<float>()[r * 5 + c]), s / 2 * 1.0001f);
      }
    }
  }
  std::vector<float> scales;
  EXPECT_EQ(QuantizeWeightSymmetric(w, 2, true, &scales).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(QuantizeParamsTest, AsymmetricCoversRangeAndZeroIsExact) {
  const QuantParams p = AsymmetricInt8Params(-1.0f, 3.0f);
  EXPECT_FLOAT_EQ(p.scale, 4.0f / 255.0f);
  EXPECT_NEAR(p.scale * (-128 - p.zero_point), -1.0f, p.scale);
  EXPECT_NEAR(p.scale * (127 - p.zero_point), 3.0f, p.scale);
  const QuantParams r = AsymmetricInt8Params(0.5f, 2.0f);  // widened to contain 0
  EXPECT_EQ(r.zero_point, -128);
}

TEST(CalibrateTest, PercentileRangeIsInsideMinMax) {
  const Graph g = testing::Cnn28Graph();
  CalibrationSet data = RandomCalibration(16, 300);
  data.samples[3][0].data<float>()[100] = 50.0f;  // one outlier among 12544 input values
  QuantizeOptions minmax;
  QuantizeOptions pct;
  pct.method = CalibrationMethod::kPercentile;
  pct.percentile = 99.99;
  const std::vector<std::string> tensors = {"image", "conv", "logits"};
  Result<std::map<std::string, TensorRange>> a = Calibrate(g, data, tensors, minmax);
  Result<std::map<std::string, TensorRange>> b = Calibrate(g, data, tensors, pct);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  for (const std::string& t : {std::string("conv"), std::string("image")}) {
    const TensorRange& full = a->at(t);
    const TensorRange& clipped = b->at(t);
    EXPECT_LT(full.min, full.max);
    EXPECT_GE(clipped.min, full.min) << t;
    EXPECT_LE(clipped.max, full.max) << t;
    EXPECT_LT(clipped.max - clipped.min, full.max - full.min) << t;
  }
  // Inputs are uniform in [-1, 1) plus the outlier, which the percentile clips away.
  EXPECT_GE(a->at("image").min, -1.0f);
  EXPECT_EQ(a->at("image").max, 50.0f);
  EXPECT_LT(b->at("image").max, 1.1f);

  // The percentile method quantizes too, and the result still runs.
  Result<Graph> q = QuantizeStatic(g, data, pct);
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  EXPECT_NE(MakeSession(*q, "xnnpack"), nullptr);
}

TEST(QuantizeErrorsTest, EmptyCalibrationSet) {
  Result<Graph> q = QuantizeStatic(testing::Cnn28Graph(), CalibrationSet(), QuantizeOptions());
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(q.status().message()).find("calibration set is empty"), std::string::npos)
      << q.status().ToString();
}

TEST(QuantizeErrorsTest, SamplesThatDoNotMatchTheInputs) {
  CalibrationSet wrong_count;
  wrong_count.samples.emplace_back();
  Result<Graph> q = QuantizeStatic(testing::Cnn28Graph(), wrong_count, QuantizeOptions());
  EXPECT_EQ(q.status().code(), StatusCode::kInvalidArgument) << q.status().ToString();

  CalibrationSet wrong_rank;
  std::vector<Tensor> sample;
  sample.push_back(testing::RandomTensor({28, 28}, 1, 1.0f));
  wrong_rank.samples.push_back(std::move(sample));
  q = QuantizeStatic(testing::Cnn28Graph(), wrong_rank, QuantizeOptions());
  EXPECT_EQ(q.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(q.status().message()).find("image"), std::string::npos);

  CalibrationSet wrong_type;
  sample.clear();
  sample.push_back(std::move(*Tensor::Allocate(DType::kInt32, {1, 1, 28, 28})));
  wrong_type.samples.push_back(std::move(sample));
  q = QuantizeStatic(testing::Cnn28Graph(), wrong_type, QuantizeOptions());
  EXPECT_EQ(q.status().code(), StatusCode::kInvalidArgument);
}

TEST(QuantizeErrorsTest, NoQuantizableOp) {
  testing::GraphBuilder b(13);
  b.Input("x", DType::kFloat32, {1, 4});
  b.Node("Relu", {"x"}, {"y"});
  b.Node("Softmax", {"y"}, {"z"});
  b.Output("z");
  CalibrationSet data;
  std::vector<Tensor> sample;
  sample.push_back(testing::RandomTensor({1, 4}, 1, 1.0f));
  data.samples.push_back(std::move(sample));
  Result<Graph> q = QuantizeStatic(b.Build(), data, QuantizeOptions());
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(q.status().message()).find("no quantizable op"), std::string::npos);
}

TEST(QuantizeErrorsTest, AlreadyQuantizedAndBadOptions) {
  Result<Graph> q =
      QuantizeStatic(testing::Cnn28Graph(), RandomCalibration(2, 1), QuantizeOptions());
  ASSERT_TRUE(q.ok());
  Result<Graph> again = QuantizeStatic(*q, RandomCalibration(2, 1), QuantizeOptions());
  EXPECT_EQ(again.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(again.status().message()).find("already quantized"), std::string::npos);

  QuantizeOptions bad;
  bad.percentile = 30;
  EXPECT_EQ(bad.Validate().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(QuantizeStatic(testing::Cnn28Graph(), RandomCalibration(2, 1), bad).status().code(),
            StatusCode::kInvalidArgument);
  bad = QuantizeOptions();
  bad.histogram_bins = 0;
  EXPECT_EQ(bad.Validate().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(QuantizeOptions().Validate().ok());

  // Per-channel needs DequantizeLinear's axis (opset 13).
  EXPECT_EQ(QuantizeStatic(testing::Cnn28Graph(11), RandomCalibration(2, 1), QuantizeOptions())
                .status()
                .code(),
            StatusCode::kUnimplemented);
}

TEST(QuantizeErrorsTest, NonFiniteActivations) {
  CalibrationSet data = RandomCalibration(1, 1);
  data.samples[0][0].data<float>()[3] = std::nanf("");
  Result<Graph> q = QuantizeStatic(testing::Cnn28Graph(), data, QuantizeOptions());
  EXPECT_EQ(q.status().code(), StatusCode::kInvalidArgument);
}

TEST_F(QuantizeCnn28Test, ExportsAsOnnxAndReloads) {
  Result<std::string> bytes = runtime::SerializeOnnxModel(int8_);
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  Result<Model> reloaded = Model::FromOnnx(*bytes);
  ASSERT_TRUE(reloaded.ok()) << reloaded.status().ToString();
  std::unique_ptr<Session> a = MakeSession(int8_, "reference");
  SessionOptions ref;
  ref.backend = "reference";
  Result<std::unique_ptr<Session>> b = Session::Create(*reloaded, ref);
  ASSERT_TRUE(a && b.ok());
  Tensor x = testing::RandomTensor({1, 1, 28, 28}, 77, 1.0f);
  EXPECT_EQ(RunOne(*a, x), RunOne(**b, x));
  // int8 weights make the file much smaller than the fp32 one.
  Result<std::string> fp32_bytes = runtime::SerializeOnnxModel(fp32_);
  ASSERT_TRUE(fp32_bytes.ok());
  EXPECT_LT(bytes->size() * 3, fp32_bytes->size());
}

}  // namespace
}  // namespace hml::compress

namespace hml::compress {
namespace {

// x[1,4,8,8] -> Conv(4->4, 3x3 same) -> Clip(lo, hi) -> Conv(4->4, 1x1) -> Add(x) -> Relu
// -> Flatten -> MatMul (256x6) -> y. Covers Clip folding, a residual Add and MatMul's axis-1
// weights.
Graph ResidualGraph(float clip_lo, float clip_hi) {
  testing::GraphBuilder b(13);
  b.Input("x", DType::kFloat32, {1, 4, 8, 8});
  b.Constant("w1", testing::RandomTensor({4, 4, 3, 3}, 1, 0.5f));
  b.Constant("b1", testing::RandomTensor({4}, 2, 0.2f));
  b.Constant("w2", testing::RandomTensor({4, 4, 1, 1}, 3, 0.5f));
  b.Constant("lo", std::move(*Tensor::FromVector<float>({}, std::vector<float>{clip_lo})));
  b.Constant("hi", std::move(*Tensor::FromVector<float>({}, std::vector<float>{clip_hi})));
  b.Constant("m", testing::RandomTensor({256, 6}, 4, 0.1f));
  runtime::Attributes same;
  same.SetInts("kernel_shape", {3, 3});
  same.SetInts("pads", {1, 1, 1, 1});
  runtime::Attributes one;
  one.SetInts("kernel_shape", {1, 1});
  b.Node("Conv", {"x", "w1", "b1"}, {"c1"}, same);
  b.Node("Clip", {"c1", "lo", "hi"}, {"k1"});
  b.Node("Conv", {"k1", "w2"}, {"c2"}, one);
  b.Node("Add", {"c2", "x"}, {"s"});
  b.Node("Relu", {"s"}, {"r"});
  b.Node("Flatten", {"r"}, {"f"});
  b.Node("MatMul", {"f", "m"}, {"y"});
  b.Output("y");
  return b.Build();
}

CalibrationSet ResidualCalibration(int n) {
  CalibrationSet set;
  for (int i = 0; i < n; ++i) {
    std::vector<Tensor> sample;
    sample.push_back(testing::RandomTensor({1, 4, 8, 8}, 900 + static_cast<uint64_t>(i), 1.0f));
    set.samples.push_back(std::move(sample));
  }
  return set;
}

TEST(QuantizeResidualTest, FoldsClipQuantizesAddAndMatMul) {
  const Graph fp32 = ResidualGraph(0.0f, 6.0f);
  QuantizeReport report;
  Result<Graph> q = QuantizeStatic(fp32, ResidualCalibration(16), QuantizeOptions(), &report);
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  EXPECT_EQ(report.quantized_nodes.size(), 3u);     // two Convs and the MatMul
  EXPECT_EQ(report.folded_activations.size(), 2u);  // the Clip and the Relu after Add
  EXPECT_EQ(FindOp(*q, "Clip"), nullptr);
  EXPECT_EQ(FindOp(*q, "Relu"), nullptr);
  const Node* matmul = FindOp(*q, "MatMul");
  ASSERT_NE(matmul, nullptr);
  const Node* wdq = ProducerOf(*q, matmul->inputs[1]);
  ASSERT_NE(wdq, nullptr);
  EXPECT_EQ(wdq->attrs.GetInt("axis", -1), 1);
  EXPECT_EQ(q->value(wdq->inputs[1]).constant->num_elements(), 6);
  // Add reads two dequantized tensors.
  const Node* add = FindOp(*q, "Add");
  ASSERT_NE(add, nullptr);
  for (ValueId in : add->inputs) {
    const Node* p = ProducerOf(*q, in);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(p->op_type, "DequantizeLinear");
  }

  std::unique_ptr<Session> ref32 = MakeSession(fp32, "reference");
  std::unique_ptr<Session> xnn8 = MakeSession(*q, "xnnpack");
  std::unique_ptr<Session> ref8 = MakeSession(*q, "reference");
  ASSERT_TRUE(ref32 && xnn8 && ref8);
  ASSERT_EQ(xnn8->segments().size(), 1u);
  EXPECT_EQ(xnn8->segments()[0].backend, "xnnpack");
  const QuantParams yp = report.activations.at("y");
  const float y_scale = yp.scale;
  // Outputs beyond the calibrated range saturate, as QDQ means.
  const float y_lo = yp.scale * static_cast<float>(-128 - yp.zero_point);
  const float y_hi = yp.scale * static_cast<float>(127 - yp.zero_point);
  for (int i = 0; i < 10; ++i) {
    Tensor x = testing::RandomTensor({1, 4, 8, 8}, 7000 + static_cast<uint64_t>(i), 1.0f);
    const std::vector<float> want = RunOne(*ref32, x);
    const std::vector<float> got = RunOne(*xnn8, x);
    const std::vector<float> got_ref = RunOne(*ref8, x);
    ASSERT_EQ(want.size(), 6u);
    ASSERT_EQ(got.size(), 6u);
    for (size_t k = 0; k < want.size(); ++k) {
      EXPECT_NEAR(got[k], std::clamp(want[k], y_lo, y_hi), 8 * y_scale) << k;
      EXPECT_NEAR(got[k], got_ref[k], 2.01f * y_scale) << k;
    }
  }
}

TEST(QuantizeResidualTest, ClipThatQuantizationCannotReproduceIsKept) {
  // Clip(0.5, 6): the quantized range must contain 0, so Q cannot saturate at 0.5.
  QuantizeReport report;
  Result<Graph> q =
      QuantizeStatic(ResidualGraph(0.5f, 6.0f), ResidualCalibration(4), QuantizeOptions(), &report);
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  const Node* clip = FindOp(*q, "Clip");
  ASSERT_NE(clip, nullptr);
  // Conv -> Clip -> Q: the Clip reads the conv output directly, its output is quantized.
  const Node* producer = ProducerOf(*q, clip->inputs[0]);
  ASSERT_NE(producer, nullptr);
  EXPECT_EQ(producer->op_type, "Conv");
  EXPECT_EQ(report.folded_activations.size(), 1u);  // only the Relu
  EXPECT_NE(MakeSession(*q, "xnnpack"), nullptr);
}

}  // namespace
}  // namespace hml::compress

namespace hml::compress {
namespace {

TEST(QuantizeBatchTest, SamplesOfDifferentBatchSizes) {
  CalibrationSet data;
  for (int64_t batch : {2, 3, 1}) {
    std::vector<Tensor> sample;
    sample.push_back(
        testing::RandomTensor({batch, 1, 28, 28}, 50 + static_cast<uint64_t>(batch), 1.0f));
    data.samples.push_back(std::move(sample));
  }
  Result<Graph> q = QuantizeStatic(testing::Cnn28Graph(), data, QuantizeOptions());
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  // The range covers every sample, whatever its batch size.
  const Result<std::map<std::string, TensorRange>> r =
      Calibrate(testing::Cnn28Graph(), data, {"image"}, QuantizeOptions());
  ASSERT_TRUE(r.ok());
  float lo = 1, hi = -1;
  for (const auto& s : data.samples) {
    for (float v : s[0].values<float>()) {
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
  }
  EXPECT_EQ(r->at("image").min, lo);
  EXPECT_EQ(r->at("image").max, hi);
}

TEST(QuantizeBatchTest, GraphInputThatIsAlsoAnOutputKeepsItsName) {
  Graph g = testing::Cnn28Graph();
  g.outputs.push_back(g.inputs[0]);
  Result<Graph> q = QuantizeStatic(g, RandomCalibration(2, 3), QuantizeOptions());
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  EXPECT_EQ(q->value(q->inputs[0]).name, "image");
  EXPECT_EQ(q->value(q->outputs[1]).name, "image");
  EXPECT_EQ(q->value(q->outputs[0]).name, "probs");
}

}  // namespace
}  // namespace hml::compress

namespace hml::compress {
namespace {

CalibrationSet OneSample(Shape shape) {
  CalibrationSet set;
  std::vector<Tensor> sample;
  sample.push_back(testing::RandomTensor(std::move(shape), 1, 1.0f));
  set.samples.push_back(std::move(sample));
  return set;
}

TEST(QuantizeErrorsTest, InconsistentModelsFailWithoutCrashing) {
  // A Conv weight whose input channels do not match the input: shape inference names the node.
  testing::GraphBuilder b(13);
  b.Input("x", DType::kFloat32, {1, 1, 8, 8});
  b.Constant("w", testing::RandomTensor({4, 2, 3, 3}, 1, 1.0f));
  runtime::Attributes conv;
  conv.SetInts("kernel_shape", {3, 3});
  b.Node("Conv", {"x", "w"}, {"y"}, conv);
  b.Output("y");
  Result<Graph> q = QuantizeStatic(b.Build(), OneSample({1, 1, 8, 8}), QuantizeOptions());
  ASSERT_FALSE(q.ok());
  EXPECT_NE(std::string(q.status().message()).find("Conv"), std::string::npos)
      << q.status().ToString();

  // A Gemm with an int32 weight cannot be quantized.
  testing::GraphBuilder g(13);
  g.Input("x", DType::kFloat32, {1, 4});
  Tensor w = std::move(*Tensor::Allocate(DType::kInt32, {4, 3}));
  g.Constant("w", std::move(w));
  g.Node("Gemm", {"x", "w"}, {"y"});
  g.Output("y");
  q = QuantizeStatic(g.Build(), OneSample({1, 4}), QuantizeOptions());
  EXPECT_EQ(q.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(std::string(q.status().message()).find("'w'"), std::string::npos);

  // Calibration samples of the wrong spatial size fail in the session, with the input named.
  q = QuantizeStatic(testing::Cnn28Graph(), OneSample({1, 1, 27, 28}), QuantizeOptions());
  EXPECT_FALSE(q.ok());
}

}  // namespace
}  // namespace hml::compress

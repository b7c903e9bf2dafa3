// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/compress/prune.h"

#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "hml/runtime/model.h"
#include "hml/runtime/session.h"
#include "src/compress/quantize.h"
#include "src/runtime/op_registry.h"
#include "src/runtime/passes.h"
#include "tests/testing/graph_builder.h"
#include "tests/testing/models.h"

namespace hml::compress {
namespace {

using runtime::Graph;

const Tensor& ConstantOf(const Graph& g, const std::string& name) {
  return *g.value(g.FindValue(name)).constant;
}

std::vector<float> RunGraph(const Graph& g, const std::string& backend, const Tensor& x) {
  Result<Model> model = Model::FromGraph(g);
  EXPECT_TRUE(model.ok()) << model.status().ToString();
  if (!model.ok()) return {};
  SessionOptions options;
  options.backend = backend;
  Result<std::unique_ptr<Session>> session = Session::Create(*model, options);
  EXPECT_TRUE(session.ok()) << session.status().ToString();
  if (!session.ok()) return {};
  std::vector<Tensor> in;
  in.push_back(std::move(*x.Clone()));
  Result<std::vector<Tensor>> out = (*session)->Run(std::span<const Tensor>(in));
  EXPECT_TRUE(out.ok()) << out.status().ToString();
  if (!out.ok()) return {};
  return {(*out)[0].values<float>().begin(), (*out)[0].values<float>().end()};
}

int64_t Flops(const Graph& g) {
  Result<Model> model = Model::FromGraph(g);
  EXPECT_TRUE(model.ok());
  if (!model.ok()) return -1;
  Result<ModelAnalysis> a = model->Analyze();
  EXPECT_TRUE(a.ok()) << a.status().ToString();
  return a.ok() ? a->total_flops : -1;
}

void ExpectNear(const std::vector<float>& a, const std::vector<float>& b, float tol) {
  ASSERT_EQ(a.size(), b.size());
  ASSERT_FALSE(a.empty());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], tol) << "element " << i;
}

TEST(PruneMagnitudeTest, ReachesTheTargetSparsityExactly) {
  const Graph g = testing::Cnn28Graph();
  const int64_t n = 8 * 9 + 10 * 1568;
  for (double sparsity : {0.0, 0.3, 0.5, 0.9, 1.0}) {
    PruneReport report;
    MagnitudePruneOptions options;
    options.sparsity = sparsity;
    Result<Graph> pruned = PruneMagnitude(g, options, &report);
    ASSERT_TRUE(pruned.ok()) << pruned.status().ToString();
    EXPECT_EQ(report.weights, n);
    int64_t zeros = 0;
    for (const char* w : {"conv.w", "fc.w"}) {
      const Tensor& t = ConstantOf(*pruned, w);
      EXPECT_EQ(t.shape(), ConstantOf(g, w).shape());
      for (float v : t.values<float>()) zeros += v == 0.0f;
    }
    EXPECT_EQ(zeros, std::llround(sparsity * static_cast<double>(n))) << sparsity;
    EXPECT_EQ(report.zero_weights, zeros);
    // The smallest magnitudes went: every kept weight is at least as large as every zeroed one.
    float max_zeroed = 0.0f, min_kept = INFINITY;
    for (const char* w : {"conv.w", "fc.w"}) {
      const Tensor& before = ConstantOf(g, w);
      const Tensor& after = ConstantOf(*pruned, w);
      for (int64_t i = 0; i < before.num_elements(); ++i) {
        const float m = std::fabs(before.data<float>()[i]);
        if (after.data<float>()[i] == 0.0f) {
          max_zeroed = std::max(max_zeroed, m);
        } else {
          min_kept = std::min(min_kept, m);
          EXPECT_EQ(after.data<float>()[i], before.data<float>()[i]);
        }
      }
    }
    EXPECT_LE(max_zeroed, min_kept);
    // Still runs, the same on both backends.
    const Tensor x = testing::RandomTensor({1, 1, 28, 28}, 9, 1.0f);
    ExpectNear(RunGraph(*pruned, "xnnpack", x), RunGraph(*pruned, "reference", x), 1e-5f);
  }
}

TEST(PruneMagnitudeTest, Errors) {
  MagnitudePruneOptions bad;
  bad.sparsity = 1.5;
  EXPECT_EQ(PruneMagnitude(testing::Cnn28Graph(), bad).status().code(),
            StatusCode::kInvalidArgument);
  testing::GraphBuilder b(13);
  b.Input("x", DType::kFloat32, {1, 4});
  b.Node("Relu", {"x"}, {"y"}).Output("y");
  EXPECT_EQ(PruneMagnitude(b.Build(), MagnitudePruneOptions()).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(PruneChannelsTest, Cnn28HalvesChannelsAndFlops) {
  const Graph g = testing::Cnn28Graph();
  PruneReport report;
  Result<Graph> pruned = PruneChannels(g, ChannelPruneOptions(), &report);
  ASSERT_TRUE(pruned.ok()) << pruned.status().ToString();
  EXPECT_EQ(report.channels_before, 8);
  EXPECT_EQ(report.channels_after, 4);
  EXPECT_EQ(ConstantOf(*pruned, "conv.w").shape(), (Shape{4, 1, 3, 3}));
  EXPECT_EQ(ConstantOf(*pruned, "conv.b").shape(), (Shape{4}));
  EXPECT_EQ(ConstantOf(*pruned, "fc.w").shape(), (Shape{10, 784}));

  // Shapes stay consistent.
  Graph check = *pruned;
  ASSERT_TRUE(check.Validate().ok());
  ASSERT_TRUE(runtime::PrepareGraph(check, {}, runtime::BuiltinOps()).ok());
  // FLOPs drop by about the ratio (the Softmax's few FLOPs stay).
  const double ratio = static_cast<double>(Flops(*pruned)) / static_cast<double>(Flops(g));
  EXPECT_GT(ratio, 0.45);
  EXPECT_LT(ratio, 0.55);
  RecordProperty("flops_ratio", std::to_string(ratio));

  // Runs on both backends with the same results; the kept filters are the largest by L1 norm.
  const Tensor x = testing::RandomTensor({1, 1, 28, 28}, 3, 1.0f);
  const std::vector<float> y = RunGraph(*pruned, "xnnpack", x);
  ExpectNear(y, RunGraph(*pruned, "reference", x), 1e-5f);
  const Tensor& w = ConstantOf(g, "conv.w");
  std::vector<float> norms(8, 0.0f);
  for (int64_t i = 0; i < w.num_elements(); ++i) norms[i / 9] += std::fabs(w.data<float>()[i]);
  std::vector<float> sorted = norms;
  std::sort(sorted.begin(), sorted.end());
  const Tensor& kept = ConstantOf(*pruned, "conv.w");
  for (int c = 0; c < 4; ++c) {
    float n = 0;
    for (int i = 0; i < 9; ++i) n += std::fabs(kept.data<float>()[c * 9 + i]);
    EXPECT_GE(n, sorted[3]);
  }

  // A pruned model quantizes too and runs on XNNPACK as one segment.
  CalibrationSet data;
  for (int i = 0; i < 4; ++i) {
    std::vector<Tensor> sample;
    sample.push_back(testing::RandomTensor({1, 1, 28, 28}, 40 + static_cast<uint64_t>(i), 1.0f));
    data.samples.push_back(std::move(sample));
  }
  Result<Graph> q = QuantizeStatic(*pruned, data, QuantizeOptions());
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  EXPECT_EQ(RunGraph(*q, "xnnpack", x).size(), 10u);
}

// x[1,3,12,12] -> conv1 (3->8) -> BatchNorm -> Relu -> conv2 (8->6) -> Relu -> MaxPool
// -> Flatten -> Gemm (transB as given) -> y[1,5]. Channels listed in `zero1`/`zero2` have all-zero
// filters and biases (and BatchNorm parameters that keep them at zero).
Graph TwoConvGraph(const std::vector<int>& zero1, const std::vector<int>& zero2, bool trans_b) {
  testing::GraphBuilder b(13);
  b.Input("x", DType::kFloat32, {1, 3, 12, 12});
  Tensor w1 = testing::RandomTensor({8, 3, 3, 3}, 1, 0.5f);
  Tensor b1 = testing::RandomTensor({8}, 2, 0.1f);
  Tensor w2 = testing::RandomTensor({6, 8, 3, 3}, 3, 0.5f);
  Tensor b2 = testing::RandomTensor({6}, 4, 0.1f);
  for (int c : zero1) {
    for (int i = 0; i < 27; ++i) w1.data<float>()[c * 27 + i] = 0.0f;
    b1.data<float>()[c] = 0.0f;
  }
  for (int c : zero2) {
    for (int i = 0; i < 72; ++i) w2.data<float>()[c * 72 + i] = 0.0f;
    b2.data<float>()[c] = 0.0f;
  }
  Tensor scale = testing::RandomTensor({8}, 5, 0.5f);
  for (float& v : scale.values<float>()) v += 1.0f;
  Tensor bias = testing::RandomTensor({8}, 6, 0.1f);
  Tensor mean = testing::RandomTensor({8}, 7, 0.1f);
  Tensor var = testing::RandomTensor({8}, 8, 0.2f);
  for (float& v : var.values<float>()) v += 1.0f;
  for (int c : zero1) bias.data<float>()[c] = mean.data<float>()[c] = 0.0f;
  b.Constant("w1", std::move(w1)).Constant("b1", std::move(b1));
  b.Constant("w2", std::move(w2)).Constant("b2", std::move(b2));
  b.Constant("bn.scale", std::move(scale)).Constant("bn.bias", std::move(bias));
  b.Constant("bn.mean", std::move(mean)).Constant("bn.var", std::move(var));
  b.Constant("fc.w", testing::RandomTensor(trans_b ? Shape{5, 6 * 16} : Shape{6 * 16, 5}, 9, 0.1f));
  b.Constant("fc.b", testing::RandomTensor({5}, 10, 0.1f));
  runtime::Attributes conv;
  conv.SetInts("kernel_shape", {3, 3});
  b.Node("Conv", {"x", "w1", "b1"}, {"c1"}, conv);
  b.Node("BatchNormalization", {"c1", "bn.scale", "bn.bias", "bn.mean", "bn.var"}, {"bn"});
  b.Node("Relu", {"bn"}, {"r1"});
  b.Node("Conv", {"r1", "w2", "b2"}, {"c2"}, conv);
  b.Node("Relu", {"c2"}, {"r2"});
  runtime::Attributes pool;
  pool.SetInts("kernel_shape", {2, 2});
  pool.SetInts("strides", {2, 2});
  b.Node("MaxPool", {"r2"}, {"p"}, pool);
  b.Node("Flatten", {"p"}, {"f"});
  runtime::Attributes gemm;
  gemm.SetInt("transB", trans_b ? 1 : 0);
  b.Node("Gemm", {"f", "fc.w", "fc.b"}, {"y"}, gemm);
  b.Output("y");
  return b.Build();
}

TEST(PruneChannelsTest, ZeroNormChannelsChangeNoOutputs) {
  for (bool trans_b : {true, false}) {
    const Graph g = TwoConvGraph({1, 4, 6, 7}, {0, 3, 5}, trans_b);
    PruneReport report;
    Result<Graph> pruned = PruneChannels(g, ChannelPruneOptions(), &report);
    ASSERT_TRUE(pruned.ok()) << pruned.status().ToString();
    EXPECT_EQ(report.pruned.size(), 2u);
    EXPECT_EQ(ConstantOf(*pruned, "w1").shape(), (Shape{4, 3, 3, 3}));
    EXPECT_EQ(ConstantOf(*pruned, "w2").shape(), (Shape{3, 4, 3, 3}));
    EXPECT_EQ(ConstantOf(*pruned, "bn.var").shape(), (Shape{4}));
    EXPECT_EQ(ConstantOf(*pruned, "fc.w").shape(), trans_b ? (Shape{5, 48}) : (Shape{48, 5}));
    const Tensor x = testing::RandomTensor({1, 3, 12, 12}, 11, 1.0f);
    const std::vector<float> want = RunGraph(g, "reference", x);
    ExpectNear(RunGraph(*pruned, "reference", x), want, 1e-5f);
    ExpectNear(RunGraph(*pruned, "xnnpack", x), want, 1e-4f);
    EXPECT_LT(Flops(*pruned), Flops(g) * 6 / 10);
  }
}

TEST(PruneChannelsTest, ConvFeedingAnAddIsSkipped) {
  testing::GraphBuilder b(13);
  b.Input("x", DType::kFloat32, {1, 4, 8, 8});
  b.Constant("w1", testing::RandomTensor({4, 4, 3, 3}, 1, 0.5f));
  b.Constant("w2", testing::RandomTensor({4, 4, 1, 1}, 2, 0.5f));
  b.Constant("w3", testing::RandomTensor({6, 4, 1, 1}, 3, 0.5f));
  runtime::Attributes same;
  same.SetInts("kernel_shape", {3, 3});
  same.SetInts("pads", {1, 1, 1, 1});
  runtime::Attributes one;
  one.SetInts("kernel_shape", {1, 1});
  b.Node("Conv", {"x", "w1"}, {"c1"}, same);
  b.Node("Relu", {"c1"}, {"r1"});
  b.Node("Conv", {"r1", "w2"}, {"c2"}, one);
  b.Node("Add", {"c2", "x"}, {"s"});
  b.Node("Conv", {"s", "w3"}, {"y"}, one);
  b.Output("y");
  const Graph g = b.Build();
  PruneReport report;
  Result<Graph> pruned = PruneChannels(g, ChannelPruneOptions(), &report);
  ASSERT_TRUE(pruned.ok()) << pruned.status().ToString();
  // conv1 -> conv2 is prunable; conv2 feeds the residual Add; conv3's output is the graph output.
  ASSERT_EQ(report.pruned.size(), 1u);
  EXPECT_NE(report.pruned[0].find("4 -> 2"), std::string::npos) << report.pruned[0];
  ASSERT_EQ(report.skipped.size(), 2u);
  EXPECT_NE(report.skipped[0].find("Add"), std::string::npos) << report.skipped[0];
  EXPECT_NE(report.skipped[1].find("graph output"), std::string::npos) << report.skipped[1];
  EXPECT_EQ(ConstantOf(*pruned, "w2").shape(), (Shape{4, 2, 1, 1}));
  const Tensor x = testing::RandomTensor({1, 4, 8, 8}, 4, 1.0f);
  ExpectNear(RunGraph(*pruned, "xnnpack", x), RunGraph(*pruned, "reference", x), 1e-4f);
}

TEST(PruneChannelsTest, Errors) {
  ChannelPruneOptions bad;
  bad.ratio = 1.0;
  EXPECT_EQ(PruneChannels(testing::Cnn28Graph(), bad).status().code(),
            StatusCode::kInvalidArgument);
  bad = ChannelPruneOptions();
  bad.min_channels = 0;
  EXPECT_EQ(bad.Validate().code(), StatusCode::kInvalidArgument);
  testing::GraphBuilder b(13);
  b.Input("x", DType::kFloat32, {1, 4});
  b.Node("Relu", {"x"}, {"y"}).Output("y");
  Result<Graph> none = PruneChannels(b.Build(), ChannelPruneOptions());
  EXPECT_EQ(none.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(none.status().message()).find("no Conv"), std::string::npos);
}

}  // namespace
}  // namespace hml::compress

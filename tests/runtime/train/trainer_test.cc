// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/runtime/train/trainer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "hml/runtime/model.h"
#include "hml/runtime/session.h"
#include "src/train/zoo.h"
#include "tests/testing/alloc_counter.h"
#include "tests/testing/graph_builder.h"

namespace hml::runtime {
namespace {

using testing::GraphBuilder;

Tensor Rand(Shape shape, uint32_t seed, float scale = 0.5f) {
  Tensor t = std::move(Tensor::Allocate(DType::kFloat32, std::move(shape)).value());
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-scale, scale);
  for (float& v : t.values<float>()) v = u(rng);
  return t;
}

Tensor Floats(Shape shape, std::vector<float> v) {
  return std::move(Tensor::FromVector<float>(std::move(shape), v).value());
}

Tensor Ints(std::vector<int64_t> v) {
  const int64_t n = static_cast<int64_t>(v.size());
  return std::move(Tensor::FromVector<int64_t>({n}, v).value());
}

struct Batch {
  Tensor x;
  std::vector<int64_t> labels;
};

Batch RandomBatch(Shape shape, int64_t classes, uint32_t seed) {
  Batch b;
  b.x = Rand(shape, seed, 1.0f);
  std::mt19937 rng(seed + 1);
  for (int64_t i = 0; i < shape[0]; ++i) b.labels.push_back(static_cast<int64_t>(rng() % classes));
  return b;
}

// Central finite differences of the loss against the analytic gradient, for every parameter
// element (or an evenly spaced subset of `max_checks` of them).
void ExpectGradientsMatch(const Graph& graph, const TrainOptions& options, const Batch& batch,
                          int max_checks = 300, const std::vector<float>* anchor = nullptr) {
  auto t = Trainer::Create(graph, options);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  Trainer& trainer = **t;
  if (anchor != nullptr) {
    ASSERT_TRUE(trainer.SetProxAnchor(*anchor).ok());
  }
  std::vector<float> grad;
  auto loss = trainer.LossAndGradients(batch.x, batch.labels, &grad);
  ASSERT_TRUE(loss.ok()) << loss.status().ToString();
  std::vector<float> w = trainer.GetParameters();
  ASSERT_EQ(grad.size(), w.size());
  ASSERT_FALSE(w.empty());
  const size_t stride = std::max<size_t>(1, w.size() / static_cast<size_t>(max_checks));
  // Small enough that few Relu/MaxPool kinks fall inside [w - eps, w + eps] (1e-2 measured
  // secant errors of 15% on conv weights), large enough for float rounding of the loss.
  const float eps = 1e-3f;
  double max_error = 0;
  int nonzero = 0;
  for (size_t i = 0; i < w.size(); i += stride) {
    const float saved = w[i];
    w[i] = saved + eps;
    ASSERT_TRUE(trainer.SetParameters(w).ok());
    const double up = *trainer.LossAndGradients(batch.x, batch.labels, nullptr);
    w[i] = saved - eps;
    ASSERT_TRUE(trainer.SetParameters(w).ok());
    const double down = *trainer.LossAndGradients(batch.x, batch.labels, nullptr);
    w[i] = saved;
    const double fd = (up - down) / (2.0 * eps);
    const double error = std::abs(fd - grad[i]);
    max_error = std::max(max_error, error / (1e-2 + std::abs(fd)));
    if (std::abs(fd) > 1e-4) ++nonzero;
    EXPECT_NEAR(grad[i], fd, 1e-3 + 2e-2 * std::abs(fd))
        << "parameter element " << i << " (of " << w.size() << ")";
  }
  EXPECT_GT(nonzero, 0) << "every checked gradient is zero: the check proves nothing";
  ASSERT_TRUE(trainer.SetParameters(w).ok());
}

// x [N, c, h, w] -> Conv -> middle(...) -> Flatten -> Gemm(transB) -> Softmax.
Graph ConvNet(Shape sample, Tensor weight, Attributes conv_attrs, int64_t features, int64_t classes,
              const std::function<void(GraphBuilder&, const std::string&, const std::string&)>&
                  middle = nullptr) {
  GraphBuilder b(17);
  Shape in{-1};
  in.insert(in.end(), sample.begin(), sample.end());
  const int64_t out_channels = weight.dim(0);
  b.Input("x", DType::kFloat32, in)
      .Constant("conv.w", std::move(weight))
      .Constant("conv.b", Rand({out_channels}, 2, 0.1f))
      .Node("Conv", {"x", "conv.w", "conv.b"}, {"c"}, conv_attrs);
  std::string h = "c";
  if (middle) {
    middle(b, "c", "m");
    h = "m";
  }
  Attributes flat;
  flat.SetInt("axis", 1);
  Attributes gemm;
  gemm.SetInt("transB", 1);
  Attributes soft;
  soft.SetInt("axis", 1);
  b.Node("Flatten", {h}, {"f"}, flat)
      .Constant("fc.w", Rand({classes, features}, 3))
      .Constant("fc.b", Rand({classes}, 4, 0.1f))
      .Node("Gemm", {"f", "fc.w", "fc.b"}, {"logits"}, gemm)
      .Node("Softmax", {"logits"}, {"probs"}, soft)
      .Output("probs");
  return b.Build();
}

TrainOptions Plain() {
  TrainOptions o;
  o.momentum = 0.0f;
  return o;
}

TEST(TrainerGradientTest, ConvStridesPadsDilations) {
  Attributes a;
  a.SetInts("strides", {2, 1});
  a.SetInts("pads", {1, 0, 2, 1});
  a.SetInts("dilations", {1, 2});
  // [2, 3, 9, 8] -> out h = (9 + 3 - 3) / 2 + 1 = 5, w = (8 + 1 - 5) / 1 + 1 = 5.
  Graph g = ConvNet({3, 9, 8}, Rand({4, 3, 3, 3}, 1), a, 4 * 5 * 5, 3);
  ExpectGradientsMatch(g, Plain(), RandomBatch({2, 3, 9, 8}, 3, 10));
}

TEST(TrainerGradientTest, ConvGroupsAndRelu) {
  Attributes a;
  a.SetInt("group", 2);
  a.SetInts("pads", {1, 1, 1, 1});
  Graph g = ConvNet({4, 5, 5}, Rand({6, 2, 3, 3}, 1), a, 6 * 25, 3,
                    [](GraphBuilder& b, const std::string& in, const std::string& out) {
                      b.Node("Relu", {in}, {out});
                    });
  ExpectGradientsMatch(g, Plain(), RandomBatch({3, 4, 5, 5}, 3, 11));
}

TEST(TrainerGradientTest, ConvPointwiseAndOneDimensional) {
  Graph pointwise = ConvNet({3, 4, 4}, Rand({5, 3, 1, 1}, 1), {}, 5 * 16, 2);
  ExpectGradientsMatch(pointwise, Plain(), RandomBatch({2, 3, 4, 4}, 2, 12));
  Attributes a;
  a.SetInts("strides", {2});
  a.SetInts("pads", {1, 0});
  // [N, 2, 9] -> (9 + 1 - 3) / 2 + 1 = 4.
  Graph one_d = ConvNet({2, 9}, Rand({3, 2, 3}, 1), a, 3 * 4, 2);
  ExpectGradientsMatch(one_d, Plain(), RandomBatch({2, 2, 9}, 2, 13));
}

TEST(TrainerGradientTest, MaxPoolPaddedAndCeilMode) {
  Graph g = ConvNet({2, 7, 7}, Rand({3, 2, 3, 3}, 1), {}, 3 * 3 * 3, 3,
                    [](GraphBuilder& b, const std::string& in, const std::string& out) {
                      Attributes p;
                      p.SetInts("kernel_shape", {3, 3});
                      p.SetInts("strides", {2, 2});
                      p.SetInts("pads", {1, 1, 1, 1});
                      b.Node("MaxPool", {in}, {"p1"}, p);  // 5x5 -> 3x3
                      Attributes q;
                      q.SetInts("kernel_shape", {2, 2});
                      q.SetInts("strides", {1, 1});
                      q.SetInt("ceil_mode", 1);
                      q.SetInts("pads", {0, 0, 1, 1});
                      b.Node("MaxPool", {"p1"}, {out}, q);  // 3x3 -> 3x3
                    });
  ExpectGradientsMatch(g, Plain(), RandomBatch({3, 2, 7, 7}, 3, 14));
}

TEST(TrainerGradientTest, AveragePoolBothPadCounts) {
  for (int include : {0, 1}) {
    Graph g = ConvNet({2, 6, 6}, Rand({3, 2, 3, 3}, 1), {}, 3 * 3 * 3, 3,
                      [include](GraphBuilder& b, const std::string& in, const std::string& out) {
                        Attributes p;
                        p.SetInts("kernel_shape", {2, 2});
                        p.SetInts("strides", {2, 2});
                        p.SetInts("pads", {1, 1, 1, 1});
                        p.SetInt("count_include_pad", include);
                        b.Node("AveragePool", {in}, {out}, p);  // 4x4 -> 3x3
                      });
    SCOPED_TRACE("count_include_pad " + std::to_string(include));
    ExpectGradientsMatch(g, Plain(), RandomBatch({2, 2, 6, 6}, 3, 15));
  }
}

TEST(TrainerGradientTest, GlobalAveragePoolAndReshape) {
  Graph g = ConvNet({2, 5, 5}, Rand({4, 2, 3, 3}, 1), {}, 4, 3,
                    [](GraphBuilder& b, const std::string& in, const std::string& out) {
                      b.Node("GlobalAveragePool", {in}, {"gap"})
                          .Constant("shape", Ints({-1, 4}))
                          .Node("Reshape", {"gap", "shape"}, {out});
                    });
  ExpectGradientsMatch(g, Plain(), RandomBatch({3, 2, 5, 5}, 3, 16));
}

// x [N, 5] -> Gemm(alpha, beta, transB) -> Clip -> MatMul -> Add(bias) -> logits, with a
// residual Add so one value feeds two nodes.
TEST(TrainerGradientTest, GemmMatMulAddClipResidual) {
  GraphBuilder b(17);
  Attributes gemm;
  gemm.SetInt("transB", 1);
  gemm.SetFloat("alpha", 0.7f);
  gemm.SetFloat("beta", 1.3f);
  Attributes soft;
  soft.SetInt("axis", 1);
  b.Input("x", DType::kFloat32, {-1, 5})
      .Constant("w1", Rand({6, 5}, 1, 0.8f))
      .Constant("b1", Rand({1, 6}, 2))
      .Node("Gemm", {"x", "w1", "b1"}, {"h1"}, gemm)
      .Constant("lo", Floats({}, {-0.4f}))
      .Constant("hi", Floats({}, {0.5f}))
      .Node("Clip", {"h1", "lo", "hi"}, {"h2"})
      .Constant("w2", Rand({6, 6}, 3, 0.8f))
      .Node("MatMul", {"h2", "w2"}, {"h3"})
      .Constant("b2", Rand({6}, 4))
      .Node("Add", {"h3", "b2"}, {"h4"})
      .Node("Add", {"h4", "h2"}, {"h5"})  // residual: h2 feeds Clip's consumers twice
      .Constant("w3", Rand({6, 4}, 5, 0.8f))
      .Node("MatMul", {"h5", "w3"}, {"logits"})
      .Node("Softmax", {"logits"}, {"probs"}, soft)
      .Output("probs");
  Graph g = b.Build();
  auto t = Trainer::Create(g, Plain());
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  std::vector<std::string> names;
  for (const ParameterInfo& p : (*t)->parameters()) names.push_back(p.name);
  EXPECT_EQ(names, (std::vector<std::string>{"w1", "b1", "w2", "b2", "w3"}));
  ExpectGradientsMatch(g, Plain(), RandomBatch({7, 5}, 4, 17));
}

// Gemm with transA on a parameter: logits = W^T [3,3] * h [3, 5] (batch fixed at 3).
TEST(TrainerGradientTest, GemmTransA) {
  GraphBuilder b(17);
  Attributes gemm_b;
  gemm_b.SetInt("transB", 1);
  Attributes gemm_a;
  gemm_a.SetInt("transA", 1);
  b.Input("x", DType::kFloat32, {3, 4})
      .Constant("w1", Rand({5, 4}, 1, 0.8f))
      .Node("Gemm", {"x", "w1"}, {"h"}, gemm_b)
      .Constant("p", Rand({3, 3}, 2, 0.8f))
      .Constant("c", Rand({5}, 3))
      .Node("Gemm", {"p", "h", "c"}, {"logits"}, gemm_a)
      .Output("logits");
  ExpectGradientsMatch(b.Build(), Plain(), RandomBatch({3, 4}, 5, 18));
}

TEST(TrainerGradientTest, StudentCnnWithBatchNormFolded) {
  auto g = train::BuildArchitecture("student-cnn", {1, 8, 8}, 4, 5);
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  auto t = Trainer::Create(*g, Plain());
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  std::vector<std::string> names;
  for (const ParameterInfo& p : (*t)->parameters()) names.push_back(p.name);
  EXPECT_EQ(names.size(), 8u);  // conv1, conv2, fc1, logits: weight + bias each
  for (const std::string& n : names) EXPECT_EQ(n.find(".bn."), std::string::npos) << n;
  EXPECT_EQ((*t)->num_classes(), 4);
  ExpectGradientsMatch(*g, Plain(), RandomBatch({4, 1, 8, 8}, 4, 19), 400);
}

TEST(TrainerGradientTest, ProxTerm) {
  auto g = train::BuildArchitecture("mlp", {6}, 3, 5, 0.05);  // 6 -> 13 -> 3
  ASSERT_TRUE(g.ok());
  TrainOptions o = Plain();
  o.prox_mu = 0.8f;
  auto t = Trainer::Create(*g, o);
  ASSERT_TRUE(t.ok());
  std::vector<float> anchor = (*t)->GetParameters();
  std::mt19937 rng(3);
  for (float& v : anchor) v += std::uniform_real_distribution<float>(-0.3f, 0.3f)(rng);
  ExpectGradientsMatch(*g, o, RandomBatch({5, 6}, 3, 20), 300, &anchor);

  // The prox term's value: loss(mu) - loss(0) == mu/2 * ||w - anchor||^2.
  auto plain = Trainer::Create(*g, Plain());
  ASSERT_TRUE(plain.ok());
  ASSERT_TRUE((*t)->SetProxAnchor(anchor).ok());
  const Batch batch = RandomBatch({5, 6}, 3, 21);
  const double with = *(*t)->LossAndGradients(batch.x, batch.labels, nullptr);
  const double without = *(*plain)->LossAndGradients(batch.x, batch.labels, nullptr);
  const std::vector<float> w = (*t)->GetParameters();
  double sq = 0;
  for (size_t i = 0; i < w.size(); ++i) sq += (w[i] - anchor[i]) * (w[i] - anchor[i]);
  EXPECT_NEAR(with - without, 0.4 * sq, 1e-5 * (1 + sq));
  EXPECT_GT(sq, 0.1);
}

TEST(TrainerTest, LastKTrainsOnlyTheHead) {
  auto g = train::BuildArchitecture("student-cnn", {1, 8, 8}, 4, 5);
  ASSERT_TRUE(g.ok());
  TrainOptions o = Plain();
  o.trainable_layers = 2;
  auto head = Trainer::Create(*g, o);
  ASSERT_TRUE(head.ok()) << head.status().ToString();
  std::vector<std::string> names;
  for (const ParameterInfo& p : (*head)->parameters()) names.push_back(p.name);
  EXPECT_EQ(names,
            (std::vector<std::string>{"fc1.weight", "fc1.bias", "logits.weight", "logits.bias"}));
  EXPECT_EQ((*head)->num_parameter_elements(), 16 * 2 * 2 * 32 + 32 + 32 * 4 + 4);
  auto all = Trainer::Create(*g, Plain());
  ASSERT_TRUE(all.ok());
  const Batch batch = RandomBatch({4, 1, 8, 8}, 4, 22);
  std::vector<float> g_head, g_all;
  const double l_head = *(*head)->LossAndGradients(batch.x, batch.labels, &g_head);
  const double l_all = *(*all)->LossAndGradients(batch.x, batch.labels, &g_all);
  // The frozen convolutions run in a runtime Session (XNNPACK), the full trainer's on its own
  // kernels: equal up to float rounding.
  EXPECT_NEAR(l_head, l_all, 1e-5 * l_all);
  // The head's parameters are the last ones of the full layout.
  ASSERT_EQ(g_head.size(), static_cast<size_t>((*head)->num_parameter_elements()));
  const size_t offset = g_all.size() - g_head.size();
  for (size_t i = 0; i < g_head.size(); ++i) {
    ASSERT_NEAR(g_head[i], g_all[offset + i], 1e-5 + 1e-4 * std::abs(g_all[offset + i])) << i;
  }
  ExpectGradientsMatch(*g, o, batch);
  // A step moves only the head: the frozen conv layers' outputs do not change.
  std::vector<float> before = (*head)->GetParameters();
  ASSERT_TRUE((*head)->Step(batch.x, batch.labels).ok());
  EXPECT_NE((*head)->GetParameters(), before);
  auto exported = (*head)->ExportGraph();
  ASSERT_TRUE(exported.ok());
  ValueId conv = kNoValue;
  for (const Node& n : exported->nodes) {
    if (n.name == "conv1") conv = n.input(1);
  }
  ASSERT_NE(conv, kNoValue);
  EXPECT_EQ(exported->value(conv).constant, (*head)->ExportGraph()->value(conv).constant)
      << "frozen weights are shared, not copied";
}

TEST(TrainerTest, MomentumAndWeightDecayMatchHandComputedSteps) {
  auto g = train::BuildArchitecture("mlp", {3}, 2, 9, 0.02);  // 3 -> 5 -> 2
  ASSERT_TRUE(g.ok());
  TrainOptions o;
  o.learning_rate = 0.1f;
  o.momentum = 0.9f;
  o.weight_decay = 0.01f;
  auto t = Trainer::Create(*g, o);
  ASSERT_TRUE(t.ok());
  auto probe = Trainer::Create(*g, Plain());  // computes gradients at given weights
  ASSERT_TRUE(probe.ok());
  const Batch batch = RandomBatch({4, 3}, 2, 23);
  std::vector<float> w0 = (*t)->GetParameters(), g0, g1;
  ASSERT_TRUE((*probe)->LossAndGradients(batch.x, batch.labels, &g0).ok());
  ASSERT_TRUE((*t)->Step(batch.x, batch.labels).ok());
  std::vector<float> v(w0.size()), w1(w0.size());
  for (size_t i = 0; i < w0.size(); ++i) {
    v[i] = g0[i] + 0.01f * w0[i];
    w1[i] = w0[i] - 0.1f * v[i];
  }
  const std::vector<float> got1 = (*t)->GetParameters();
  for (size_t i = 0; i < w0.size(); ++i) ASSERT_NEAR(got1[i], w1[i], 1e-6) << i;
  ASSERT_TRUE((*probe)->SetParameters(got1).ok());
  ASSERT_TRUE((*probe)->LossAndGradients(batch.x, batch.labels, &g1).ok());
  ASSERT_TRUE((*t)->Step(batch.x, batch.labels).ok());
  const std::vector<float> got2 = (*t)->GetParameters();
  for (size_t i = 0; i < w0.size(); ++i) {
    const float v2 = 0.9f * v[i] + g1[i] + 0.01f * got1[i];
    ASSERT_NEAR(got2[i], got1[i] - 0.1f * v2, 1e-6) << i;
  }
  // ResetOptimizer forgets the velocity: the next step is a plain one.
  (*t)->ResetOptimizer();
  std::vector<float> g2;
  ASSERT_TRUE((*probe)->SetParameters(got2).ok());
  ASSERT_TRUE((*probe)->LossAndGradients(batch.x, batch.labels, &g2).ok());
  ASSERT_TRUE((*t)->SetLearningRate(0.2f).ok());
  ASSERT_TRUE((*t)->Step(batch.x, batch.labels).ok());
  const std::vector<float> got3 = (*t)->GetParameters();
  for (size_t i = 0; i < w0.size(); ++i) {
    ASSERT_NEAR(got3[i], got2[i] - 0.2f * (g2[i] + 0.01f * got2[i]), 1e-6) << i;
  }
}

// Four Gaussian blobs in 2-D: the MLP separates them within a few hundred steps.
TEST(TrainerTest, LearnsASeparableProblem) {
  auto g = train::BuildArchitecture("mlp", {2}, 4, 1, 0.0625);  // 2 -> 16 -> 4
  ASSERT_TRUE(g.ok());
  TrainOptions o;
  o.learning_rate = 0.05f;
  auto t = Trainer::Create(*g, o);
  ASSERT_TRUE(t.ok());
  std::mt19937 rng(5);
  std::normal_distribution<float> noise(0.0f, 0.35f);
  const float centers[4][2] = {{1, 1}, {-1, 1}, {-1, -1}, {1, -1}};
  auto make = [&](int n) {
    Batch b;
    b.x = std::move(Tensor::Allocate(DType::kFloat32, {n, 2}).value());
    for (int i = 0; i < n; ++i) {
      const int c = static_cast<int>(rng() % 4);
      b.x.data<float>()[2 * i] = centers[c][0] + noise(rng);
      b.x.data<float>()[2 * i + 1] = centers[c][1] + noise(rng);
      b.labels.push_back(c);
    }
    return b;
  };
  const Batch test = make(400);
  auto accuracy = [&]() {
    Tensor logits = std::move((*t)->Logits(test.x).value());
    int correct = 0;
    for (int i = 0; i < 400; ++i) {
      const float* row = logits.data<float>() + 4 * i;
      correct += (std::max_element(row, row + 4) - row) == test.labels[static_cast<size_t>(i)];
    }
    return correct / 400.0;
  };
  const double before = accuracy();
  double first_loss = 0, last_loss = 0;
  for (int step = 0; step < 300; ++step) {
    const Batch batch = make(16);
    auto r = (*t)->Step(batch.x, batch.labels);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->examples, 16);
    if (step == 0) first_loss = r->loss;
    last_loss = r->loss;
  }
  EXPECT_LT(before, 0.6);
  EXPECT_GT(accuracy(), 0.9);
  EXPECT_LT(last_loss, 0.5 * first_loss);
}

TEST(TrainerTest, ExportedGraphRunsInTheRuntimeWithTheTrainedWeights) {
  auto g = train::BuildArchitecture("student-cnn", {1, 8, 8}, 4, 5);
  ASSERT_TRUE(g.ok());
  auto t = Trainer::Create(*g, TrainOptions{});
  ASSERT_TRUE(t.ok());
  const Batch batch = RandomBatch({5, 1, 8, 8}, 4, 24);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE((*t)->Step(batch.x, batch.labels).ok());
  auto exported = (*t)->ExportGraph();
  ASSERT_TRUE(exported.ok());
  for (const Node& n : exported->nodes) EXPECT_NE(n.op_type, "BatchNormalization");
  auto model = Model::FromGraph(std::move(*exported));
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  SessionOptions so;
  so.backend = "reference";
  so.input_shapes["input"] = {5, 1, 8, 8};
  auto session = Session::Create(*model, so);
  ASSERT_TRUE(session.ok()) << session.status().ToString();
  Tensor in = std::move(batch.x.Clone().value());
  auto probs = (*session)->Run(std::span<const Tensor>(&in, 1));
  ASSERT_TRUE(probs.ok()) << probs.status().ToString();
  Tensor logits = std::move((*t)->Logits(batch.x).value());
  for (int i = 0; i < 5; ++i) {
    const float* l = logits.data<float>() + 4 * i;
    const float m = *std::max_element(l, l + 4);
    double sum = 0;
    for (int c = 0; c < 4; ++c) sum += std::exp(l[c] - m);
    for (int c = 0; c < 4; ++c) {
      EXPECT_NEAR((*probs)[0].data<float>()[4 * i + c], std::exp(l[c] - m) / sum, 1e-5);
    }
  }
}

TEST(TrainerTest, TwoTrainersOnTwoThreadsMatchSequentialRuns) {
  auto g = train::BuildArchitecture("student-cnn", {1, 8, 8}, 4, 5);
  ASSERT_TRUE(g.ok());
  auto run = [&](uint32_t seed, std::vector<float>* out) {
    auto t = Trainer::Create(*g, TrainOptions{});
    if (!t.ok()) return;
    for (int i = 0; i < 5; ++i) {
      const Batch batch = RandomBatch({6, 1, 8, 8}, 4, seed + static_cast<uint32_t>(i));
      if (!(*t)->Step(batch.x, batch.labels).ok()) return;
    }
    *out = (*t)->GetParameters();
  };
  std::vector<float> a, b, a_seq, b_seq;
  std::thread ta(run, 100, &a), tb(run, 200, &b);
  ta.join();
  tb.join();
  run(100, &a_seq);
  run(200, &b_seq);
  ASSERT_FALSE(a.empty());
  EXPECT_EQ(a, a_seq);
  EXPECT_EQ(b, b_seq);
  EXPECT_NE(a, b);
}

TEST(TrainerTest, StepsAfterTheFirstOfABatchSizeDoNotAllocate) {
  if (!testing::AllocationCountingEnabled()) GTEST_SKIP() << "sanitizer build";
  auto g = train::BuildArchitecture("student-cnn", {1, 28, 28}, 10, 5);
  ASSERT_TRUE(g.ok());
  for (int trainable : {0, 2}) {  // 2: the frozen prefix runs in a runtime Session
    TrainOptions o;
    o.trainable_layers = trainable;
    auto t = Trainer::Create(*g, o);
    ASSERT_TRUE(t.ok());
    const Batch batch = RandomBatch({8, 1, 28, 28}, 10, 25);
    ASSERT_TRUE((*t)->Step(batch.x, batch.labels).ok());
    const int64_t before = testing::AllocationCount();
    for (int i = 0; i < 3; ++i) ASSERT_TRUE((*t)->Step(batch.x, batch.labels).ok());
    EXPECT_EQ(testing::AllocationCount(), before) << "trainable_layers " << trainable;
  }
}

// ---- Errors.

// Gemm, Sigmoid (no backward kernel in the trainer), Gemm with a bias.
Graph SigmoidBetweenTwoGemms() {
  GraphBuilder b(17);
  Attributes gemm;
  gemm.SetInt("transB", 1);
  b.Input("x", DType::kFloat32, {-1, 3})
      .Constant("w1", Rand({4, 3}, 1))
      .Node("Gemm", {"x", "w1"}, {"h"}, gemm)
      .Node("Sigmoid", {"h"}, {"s"})
      .Constant("w2", Rand({2, 4}, 2))
      .Constant("b2", Rand({2}, 3))
      .Node("Gemm", {"s", "w2", "b2"}, {"logits"}, gemm)
      .Output("logits");
  return b.Build();
}

TEST(TrainerErrorTest, UnsupportedOpInTheTrainablePartNamesTheNode) {
  auto t = Trainer::Create(SigmoidBetweenTwoGemms(), Plain());
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(t.status().message().find("Sigmoid 'Sigmoid_1'"), std::string::npos)
      << t.status().ToString();
}

// The same graph with only the last layer trainable: the Sigmoid is in the frozen prefix, which
// the runtime runs, so the trainer needs no kernel for it.
TEST(TrainerTest, FrozenPrefixMayUseOpsTheTrainerLacks) {
  TrainOptions o = Plain();
  o.trainable_layers = 1;
  auto t = Trainer::Create(SigmoidBetweenTwoGemms(), o);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  ASSERT_EQ((*t)->parameters().size(), 2u);
  EXPECT_EQ((*t)->parameters()[0].name, "w2");
  ExpectGradientsMatch(SigmoidBetweenTwoGemms(), o, RandomBatch({5, 3}, 2, 26));
}

TEST(TrainerErrorTest, BadInputsLabelsAndSizes) {
  auto g = train::BuildArchitecture("student-cnn", {1, 8, 8}, 4, 5);
  ASSERT_TRUE(g.ok());
  auto t = Trainer::Create(*g, TrainOptions{});
  ASSERT_TRUE(t.ok());
  Trainer& trainer = **t;

  const Batch wrong_shape = RandomBatch({2, 1, 8, 9}, 4, 1);
  auto r = trainer.Step(wrong_shape.x, wrong_shape.labels);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("[2,1,8,9]"), std::string::npos) << r.status().ToString();

  const Batch wrong_rank = RandomBatch({2, 64}, 4, 1);
  EXPECT_EQ(trainer.Step(wrong_rank.x, wrong_rank.labels).status().code(),
            StatusCode::kInvalidArgument);

  Batch bad_label = RandomBatch({2, 1, 8, 8}, 4, 1);
  bad_label.labels[1] = 4;
  r = trainer.Step(bad_label.x, bad_label.labels);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("label 4 of example 1"), std::string::npos)
      << r.status().ToString();
  bad_label.labels[1] = -1;
  EXPECT_FALSE(trainer.Step(bad_label.x, bad_label.labels).ok());
  bad_label.labels.pop_back();
  r = trainer.Step(bad_label.x, bad_label.labels);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("1 labels for a batch of 2"), std::string::npos);

  const std::vector<float> before = trainer.GetParameters();
  std::vector<float> short_params(before.size() - 1);
  Status s = trainer.SetParameters(short_params);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(trainer.GetParameters(), before) << "a failed SetParameters changes nothing";
  EXPECT_EQ(trainer.SetProxAnchor(short_params).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(trainer.SetLearningRate(0.0f).code(), StatusCode::kInvalidArgument);
}

TEST(TrainerErrorTest, BadOptionsAndGraphs) {
  auto g = train::BuildArchitecture("student-cnn", {1, 8, 8}, 4, 5);
  ASSERT_TRUE(g.ok());
  TrainOptions o;
  o.momentum = 1.0f;
  EXPECT_EQ(Trainer::Create(*g, o).status().code(), StatusCode::kInvalidArgument);
  o = TrainOptions{};
  o.learning_rate = -1.0f;
  EXPECT_EQ(Trainer::Create(*g, o).status().code(), StatusCode::kInvalidArgument);
  o = TrainOptions{};
  o.trainable_layers = 5;  // student-cnn has 4
  auto t = Trainer::Create(*g, o);
  EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(t.status().message().find("4 Conv/Gemm/MatMul layers"), std::string::npos);
  o = TrainOptions{};
  o.logits = "no-such-value";
  EXPECT_EQ(Trainer::Create(*g, o).status().code(), StatusCode::kInvalidArgument);
  o.logits = "conv1";  // 4-D, not [N, classes]
  t = Trainer::Create(*g, o);
  EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument) << t.status().ToString();
}

}  // namespace
}  // namespace hml::runtime

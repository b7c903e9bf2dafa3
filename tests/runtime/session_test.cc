// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "hml/runtime/session.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "hml/runtime/model.h"
#include "hml/runtime/tensor_util.h"
#include "tests/testing/alloc_counter.h"
#include "tests/testing/models.h"

namespace hml {
namespace {

// The 28x28 CNN computed directly from its weights, sharing no code with the runtime.
std::vector<float> NaiveCnn28(const runtime::Graph& g, const float* image) {
  auto w = [&](const char* name) { return g.value(g.FindValue(name)).constant->data<float>(); };
  const float* cw = w("conv.w");
  const float* cb = w("conv.b");
  const float* fw = w("fc.w");
  const float* fb = w("fc.b");
  std::vector<float> conv(8 * 28 * 28);
  for (int o = 0; o < 8; ++o) {
    for (int y = 0; y < 28; ++y) {
      for (int x = 0; x < 28; ++x) {
        double acc = cb[o];
        for (int ky = 0; ky < 3; ++ky) {
          for (int kx = 0; kx < 3; ++kx) {
            const int iy = y + ky - 1, ix = x + kx - 1;
            if (iy < 0 || iy >= 28 || ix < 0 || ix >= 28) continue;
            acc += static_cast<double>(cw[o * 9 + ky * 3 + kx]) * image[iy * 28 + ix];
          }
        }
        conv[(o * 28 + y) * 28 + x] = static_cast<float>(std::max(0.0, acc));
      }
    }
  }
  std::vector<float> pooled(8 * 14 * 14);
  for (int o = 0; o < 8; ++o) {
    for (int y = 0; y < 14; ++y) {
      for (int x = 0; x < 14; ++x) {
        float m = conv[(o * 28 + 2 * y) * 28 + 2 * x];
        m = std::max(m, conv[(o * 28 + 2 * y) * 28 + 2 * x + 1]);
        m = std::max(m, conv[(o * 28 + 2 * y + 1) * 28 + 2 * x]);
        m = std::max(m, conv[(o * 28 + 2 * y + 1) * 28 + 2 * x + 1]);
        pooled[(o * 14 + y) * 14 + x] = m;
      }
    }
  }
  std::vector<double> logits(10);
  double mx = -1e30;
  for (int j = 0; j < 10; ++j) {
    double acc = fb[j];
    for (int k = 0; k < 1568; ++k) acc += static_cast<double>(fw[j * 1568 + k]) * pooled[k];
    logits[j] = acc;
    mx = std::max(mx, acc);
  }
  double sum = 0;
  for (double& l : logits) sum += (l = std::exp(l - mx));
  std::vector<float> probs(10);
  for (int j = 0; j < 10; ++j) probs[j] = static_cast<float>(logits[j] / sum);
  return probs;
}

class SessionBackendTest : public ::testing::TestWithParam<std::string> {};

TEST_P(SessionBackendTest, Cnn28MatchesNaiveComputation) {
  auto model = Model::FromOnnx(testing::Cnn28Onnx());
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  SessionOptions options;
  options.backend = GetParam();
  options.input_shapes["image"] = {3, 1, 28, 28};
  auto session = Session::Create(*model, options);
  ASSERT_TRUE(session.ok()) << session.status().ToString();
  Session& s = **session;
  ASSERT_EQ(s.num_inputs(), 1u);
  EXPECT_EQ(s.output_spec(0).shape, (Shape{3, 10}));
  FillRandom(s.input(0), 42);
  ASSERT_TRUE(s.Run().ok());
  for (int n = 0; n < 3; ++n) {
    std::vector<float> want = NaiveCnn28(model->graph(), s.input(0).data<float>() + n * 784);
    double sum = 0;
    for (int j = 0; j < 10; ++j) {
      const float got = s.output(0).data<float>()[n * 10 + j];
      EXPECT_NEAR(got, want[static_cast<size_t>(j)], 1e-5) << "sample " << n << " class " << j;
      sum += got;
    }
    EXPECT_NEAR(sum, 1.0, 1e-5);
  }
}

TEST_P(SessionBackendTest, InputsSurviveRunSoRepeatedRunsAgree) {
  auto model = Model::FromOnnx(testing::Cnn28Onnx());
  ASSERT_TRUE(model.ok());
  SessionOptions options;
  options.backend = GetParam();
  options.input_shapes["image"] = {2, 1, 28, 28};
  auto session = Session::Create(*model, options);
  ASSERT_TRUE(session.ok());
  Session& s = **session;
  FillRandom(s.input(0), 3);
  Tensor before = std::move(*s.input(0).Clone());
  ASSERT_TRUE(s.Run().ok());
  EXPECT_EQ(std::memcmp(before.raw_data(), s.input(0).raw_data(), before.byte_size()), 0);
  Tensor first = std::move(*s.output(0).Clone());
  ASSERT_TRUE(s.Run().ok());
  EXPECT_EQ(std::memcmp(first.raw_data(), s.output(0).raw_data(), first.byte_size()), 0);
}

TEST_P(SessionBackendTest, RunDoesNotAllocate) {
  if (!testing::AllocationCountingEnabled()) GTEST_SKIP() << "allocation counting is off";
  auto model = Model::FromOnnx(testing::Cnn28Onnx());
  ASSERT_TRUE(model.ok());
  SessionOptions options;
  options.backend = GetParam();
  auto session = Session::Create(*model, options);
  ASSERT_TRUE(session.ok()) << session.status().ToString();
  FillRandom((*session)->input(0), 1);
  ASSERT_TRUE((*session)->Run().ok());
  const int64_t before = testing::AllocationCount();
  for (int i = 0; i < 5; ++i) ASSERT_TRUE((*session)->Run().ok());
  EXPECT_EQ(testing::AllocationCount() - before, 0);
}

TEST_P(SessionBackendTest, ReshapeChangesBatchAndKeepsResults) {
  auto model = Model::FromOnnx(testing::Cnn28Onnx());
  ASSERT_TRUE(model.ok());
  SessionOptions options;
  options.backend = GetParam();
  auto session = Session::Create(*model, options);
  ASSERT_TRUE(session.ok());
  Session& s = **session;
  EXPECT_EQ(s.input_spec(0).shape, (Shape{1, 1, 28, 28}));
  FillRandom(s.input(0), 5);
  ASSERT_TRUE(s.Run().ok());
  std::vector<float> single(s.output(0).data<float>(), s.output(0).data<float>() + 10);
  Tensor first = std::move(*s.input(0).Clone());

  ASSERT_TRUE(s.Reshape({{"image", {4, 1, 28, 28}}}).ok());
  EXPECT_EQ(s.output_spec(0).shape, (Shape{4, 10}));
  for (int n = 0; n < 4; ++n) {
    std::copy(first.data<float>(), first.data<float>() + 784, s.input(0).data<float>() + n * 784);
  }
  ASSERT_TRUE(s.Run().ok());
  for (int n = 0; n < 4; ++n) {
    for (int j = 0; j < 10; ++j) EXPECT_NEAR(s.output(0).data<float>()[n * 10 + j], single[j], 1e-6);
  }
  // A bad reshape fails and leaves the session as it was.
  Status bad = s.Reshape({{"image", {4, 3, 28, 28}}});
  EXPECT_EQ(bad.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.input_spec(0).shape, (Shape{4, 1, 28, 28}));
  EXPECT_TRUE(s.Run().ok());
}

INSTANTIATE_TEST_SUITE_P(Backends, SessionBackendTest,
                         ::testing::Values(std::string("reference"), std::string("xnnpack")));

TEST(SessionTest, RunChecksTensorsAgainstSpecs) {
  auto model = Model::FromOnnx(testing::Cnn28Onnx());
  ASSERT_TRUE(model.ok());
  auto session = Session::Create(*model, {});
  ASSERT_TRUE(session.ok());
  Tensor wrong_shape = std::move(*Tensor::Allocate(DType::kFloat32, {1, 1, 28, 27}));
  auto r = (*session)->Run(std::span<const Tensor>(&wrong_shape, 1));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("image"), std::string::npos);
  EXPECT_NE(r.status().message().find("[1,1,28,27]"), std::string::npos);
  Tensor wrong_type = std::move(*Tensor::Allocate(DType::kInt8, {1, 1, 28, 28}));
  EXPECT_FALSE((*session)->Run(std::span<const Tensor>(&wrong_type, 1)).ok());
  EXPECT_FALSE((*session)->Run(std::span<const Tensor>()).ok());
}

TEST(SessionTest, OptionsAreValidated) {
  auto model = Model::FromOnnx(testing::Cnn28Onnx());
  ASSERT_TRUE(model.ok());
  SessionOptions options;
  options.num_threads = 0;
  EXPECT_EQ(Session::Create(*model, options).status().code(), StatusCode::kInvalidArgument);
  options.num_threads = 1;
  options.backend = "tpu";
  auto r = Session::Create(*model, options);
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("reference"), std::string::npos);
  options.backend = "reference";
  options.input_shapes["nope"] = {1};
  EXPECT_EQ(Session::Create(*model, options).status().code(), StatusCode::kInvalidArgument);
}

TEST(SessionTest, UnknownOpIsUnimplementedNamingTheNode) {
  runtime::Graph g = testing::Cnn28Graph();
  g.nodes[1].op_type = "Frobnicate";
  g.nodes[1].name = "weird";
  auto model = Model::FromGraph(g);
  ASSERT_TRUE(model.ok());
  auto s = Session::Create(*model, {});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(s.status().message().find("Frobnicate 'weird'"), std::string::npos);
}

}  // namespace
}  // namespace hml

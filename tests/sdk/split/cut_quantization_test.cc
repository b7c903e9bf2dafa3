// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// INT8 cut quantization: round trip within scale / 2, zero exact, parameters the server reads.
#include "src/sdk/split/cut_quantization.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <variant>
#include <vector>

#include "tests/testing/models.h"

namespace hml::sdk {
namespace {

double MaxError(const Tensor& a, const Tensor& b) {
  double worst = 0;
  for (int64_t i = 0; i < a.num_elements(); ++i) {
    worst = std::max(worst, std::fabs(static_cast<double>(a.data<float>()[i]) -
                                      static_cast<double>(b.data<float>()[i])));
  }
  return worst;
}

TEST(CutQuantizationTest, RoundTripErrorIsAtMostHalfAStep) {
  for (uint64_t seed : {1u, 2u, 3u}) {
    Tensor x = testing::RandomTensor({2, 8, 7, 7}, seed, 3.0f);
    Result<NamedTensor> q = QuantizeCutTensor("cut", x);
    ASSERT_TRUE(q.ok()) << q.status().ToString();
    EXPECT_EQ(q->name, "cut");
    EXPECT_EQ(q->tensor.dtype(), DType::kInt8);
    EXPECT_EQ(q->tensor.shape(), x.shape());
    const double scale = std::get<double>(q->parameters.at(kScaleParameter));
    const int64_t zero_point = std::get<int64_t>(q->parameters.at(kZeroPointParameter));
    EXPECT_GE(zero_point, -128);
    EXPECT_LE(zero_point, 127);
    float lo = 0, hi = 0;
    for (float v : x.values<float>()) {
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
    EXPECT_NEAR(scale, (static_cast<double>(hi) - lo) / 255.0, 1e-9);
    Result<Tensor> back = DequantizeCutTensor(*q);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    const double err = MaxError(x, *back);
    EXPECT_LE(err, scale / 2 + 1e-6) << "seed " << seed;
    EXPECT_GT(err, 0.0);  // it is lossy: the test would notice a pass-through
  }
}

TEST(CutQuantizationTest, NonNegativeTensorsUseTheWholeRangeAndKeepZeroExact) {
  // A ReLU output: [0, 6] with zeros.
  std::vector<float> values = {0.0f, 0.0f, 1.5f, 6.0f, 3.0f, 0.25f};
  Tensor x = *Tensor::FromVector<float>({1, 6}, values);
  Result<NamedTensor> q = QuantizeCutTensor("relu", x);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(std::get<int64_t>(q->parameters.at(kZeroPointParameter)), -128);
  EXPECT_NEAR(std::get<double>(q->parameters.at(kScaleParameter)), 6.0 / 255, 1e-12);
  EXPECT_EQ(q->tensor.data<int8_t>()[0], -128);
  EXPECT_EQ(q->tensor.data<int8_t>()[3], 127);
  Tensor back = *DequantizeCutTensor(*q);
  EXPECT_EQ(back.data<float>()[0], 0.0f);
  EXPECT_LE(MaxError(x, back), 6.0 / 255 / 2 + 1e-6);
}

TEST(CutQuantizationTest, AllZeroTensorsRoundTripExactly) {
  Tensor x = *Tensor::FromVector<float>({3}, std::vector<float>{0, 0, 0});
  Result<NamedTensor> q = QuantizeCutTensor("z", x);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(std::get<double>(q->parameters.at(kScaleParameter)), 1.0);
  EXPECT_EQ(MaxError(x, *DequantizeCutTensor(*q)), 0.0);
}

TEST(CutQuantizationTest, RejectsWhatCannotBeQuantized) {
  Tensor ints = *Tensor::FromVector<int64_t>({2}, std::vector<int64_t>{1, 2});
  EXPECT_EQ(QuantizeCutTensor("i", ints).status().code(), StatusCode::kInvalidArgument);
  Tensor nan = *Tensor::FromVector<float>(
      {2}, std::vector<float>{1, std::numeric_limits<float>::quiet_NaN()});
  Result<NamedTensor> q = QuantizeCutTensor("n", nan);
  ASSERT_FALSE(q.ok());
  EXPECT_NE(q.status().message().find("'n'"), std::string::npos);
  NamedTensor bare{"b", *Tensor::Allocate(DType::kInt8, {2}), {}};
  EXPECT_EQ(DequantizeCutTensor(bare).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace hml::sdk

// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/fl/codec.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace hml::fl {
namespace {

std::vector<float> RandomVector(uint64_t seed, size_t n, double scale) {
  std::mt19937_64 rng(seed);
  std::vector<float> v(n);
  for (float& x : v) x = static_cast<float>(scale * (2.0 * (rng() >> 11) * 0x1.0p-53 - 1.0));
  return v;
}

TEST(Int8CodecTest, PerTensorRoundTripErrorAtMostHalfAScale) {
  std::vector<float> v = RandomVector(1, 1000, 3.0);
  v[17] = -7.5f;  // The extreme value sets the scale.
  Result<Int8Quantized> q = EncodeInt8(v);
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  ASSERT_EQ(q->scales.size(), 1u);
  EXPECT_FLOAT_EQ(q->scales[0], 7.5f / 127.0f);
  EXPECT_EQ(q->codes[17], -127);
  const std::vector<float> d = DecodeInt8(*q);
  ASSERT_EQ(d.size(), v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    EXPECT_LE(std::fabs(d[i] - v[i]), q->scales[0] / 2 * (1 + 1e-5)) << "element " << i;
  }
  EXPECT_EQ(q->EncodedSize(), 8u + 4u + 1000u);
  EXPECT_LT(q->EncodedSize() * 3, DenseSize(v.size()));
}

TEST(Int8CodecTest, PerChunkScalesIsolateOutliers) {
  std::vector<float> v = RandomVector(2, 1030, 0.01);
  v[5] = 100.0f;  // Outlier in chunk 0 only.
  Result<Int8Quantized> q = EncodeInt8(v, 256);
  ASSERT_TRUE(q.ok());
  ASSERT_EQ(q->scales.size(), 5u);  // 4 full chunks + 6 elements.
  EXPECT_EQ(q->EncodedSize(), 8u + 4u * 5 + 1030u);
  const std::vector<float> d = DecodeInt8(*q);
  for (size_t i = 0; i < v.size(); ++i) {
    EXPECT_LE(std::fabs(d[i] - v[i]), q->scales[i / 256] / 2 * (1 + 1e-5)) << "element " << i;
  }
  // Chunks without the outlier keep fine resolution.
  for (size_t c = 1; c < 5; ++c) EXPECT_LT(q->scales[c], 0.01f / 127.0f * 1.0001f);
}

TEST(Int8CodecTest, ZerosAndNonFinite) {
  std::vector<float> zeros(10, 0.0f);
  Result<Int8Quantized> q = EncodeInt8(zeros);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(DecodeInt8(*q), zeros);
  std::vector<float> bad = {1.0f, std::numeric_limits<float>::quiet_NaN()};
  EXPECT_EQ(EncodeInt8(bad).status().code(), StatusCode::kInvalidArgument);
}

TEST(TopKCodecTest, KeepsExactlyTheKLargestMagnitudes) {
  const std::vector<float> v = RandomVector(3, 500, 1.0);
  const uint32_t k = 37;
  const TopKSparse s = EncodeTopK(v, k);
  ASSERT_EQ(s.indices.size(), k);
  ASSERT_EQ(s.values.size(), k);
  EXPECT_TRUE(std::is_sorted(s.indices.begin(), s.indices.end()));
  // The k-th largest magnitude, computed independently by a full sort.
  std::vector<float> mags(v.size());
  for (size_t i = 0; i < v.size(); ++i) mags[i] = std::fabs(v[i]);
  std::sort(mags.begin(), mags.end(), std::greater<float>());
  const float threshold = mags[k - 1];
  std::vector<bool> kept(v.size(), false);
  for (size_t j = 0; j < k; ++j) {
    kept[s.indices[j]] = true;
    EXPECT_EQ(s.values[j], v[s.indices[j]]);
    EXPECT_GE(std::fabs(s.values[j]), threshold);
  }
  for (size_t i = 0; i < v.size(); ++i) {
    if (!kept[i]) {
      EXPECT_LT(std::fabs(v[i]), threshold) << "dropped element " << i;
    }
  }
  const std::vector<float> d = DecodeTopK(s);
  for (size_t i = 0; i < v.size(); ++i) EXPECT_EQ(d[i], kept[i] ? v[i] : 0.0f);
  EXPECT_EQ(s.EncodedSize(), 8u + 8u * k);
}

TEST(TopKCodecTest, TiesGoToLowerIndexAndKAboveSizeKeepsAll) {
  const std::vector<float> v = {1.0f, -2.0f, 2.0f, 0.5f, -2.0f};
  const TopKSparse s = EncodeTopK(v, 2);
  EXPECT_EQ(s.indices, (std::vector<uint32_t>{1, 2}));
  const TopKSparse all = EncodeTopK(v, 10);
  EXPECT_EQ(DecodeTopK(all), v);
}

TEST(ErrorFeedbackTopKTest, SumOfDecodedUpdatesTracksSumOfTrueUpdates) {
  const size_t n = 200;
  ErrorFeedbackTopK ef(10);  // 5 % of the coordinates per round.
  std::vector<double> true_sum(n, 0.0), sent_sum(n, 0.0), plain_sum(n, 0.0);
  double max_true = 0.0;
  for (int round = 1; round <= 400; ++round) {
    // A persistent drift plus per-round jitter: plain top-k would never send the small,
    // steady coordinates.
    std::vector<float> u = RandomVector(100 + round, n, 0.05);
    for (size_t i = 0; i < n; ++i) u[i] += 0.01f * static_cast<float>(i % 5 + 1);
    Result<TopKSparse> s = ef.Encode(u);
    ASSERT_TRUE(s.ok());
    const std::vector<float> d = DecodeTopK(*s);
    const std::vector<float> plain = DecodeTopK(EncodeTopK(u, 10));
    for (size_t i = 0; i < n; ++i) {
      true_sum[i] += u[i];
      sent_sum[i] += d[i];
      plain_sum[i] += plain[i];
      // Invariant: sent + residual == true, up to float rounding.
      EXPECT_NEAR(sent_sum[i] + ef.residual()[i], true_sum[i], 1e-3);
    }
  }
  double err = 0.0, plain_err = 0.0, norm = 0.0;
  for (size_t i = 0; i < n; ++i) {
    err += (sent_sum[i] - true_sum[i]) * (sent_sum[i] - true_sum[i]);
    plain_err += (plain_sum[i] - true_sum[i]) * (plain_sum[i] - true_sum[i]);
    norm += true_sum[i] * true_sum[i];
    max_true = std::max(max_true, std::fabs(true_sum[i]));
  }
  // Relative error of the accumulated sum is small with error feedback and large without.
  EXPECT_LT(std::sqrt(err / norm), 0.05);
  EXPECT_GT(std::sqrt(plain_err / norm), 0.5);
  EXPECT_GT(max_true, 1.0);
}

TEST(ErrorFeedbackTopKTest, RejectsLengthChange) {
  ErrorFeedbackTopK ef(2);
  ASSERT_TRUE(ef.Encode(std::vector<float>{1, 2, 3}).ok());
  EXPECT_EQ(ef.Encode(std::vector<float>{1, 2}).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace hml::fl

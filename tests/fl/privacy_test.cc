// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/fl/privacy.h"

#include <cmath>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace hml::fl {
namespace {

std::vector<float> RandomVector(std::mt19937_64& rng, size_t n, double scale) {
  std::vector<float> v(n);
  // Uniform in [-scale, scale] from raw engine bits (portable across standard libraries).
  for (float& x : v) x = static_cast<float>(scale * (2.0 * (rng() >> 11) * 0x1.0p-53 - 1.0));
  return v;
}

TEST(ClipToNormTest, EveryUpdateEndsWithinTheBound) {
  std::mt19937_64 rng(7);
  const double clip = 1.5;
  int clipped = 0;
  for (int i = 0; i < 2000; ++i) {
    const double scale = std::pow(10.0, static_cast<double>(i % 7) - 3.0);  // 1e-3 .. 1e3
    std::vector<float> u = RandomVector(rng, 1 + i % 300, scale);
    const double before = ClipToNorm(u, clip);
    if (before > clip) ++clipped;
    EXPECT_LE(L2Norm(u), clip + 1e-6) << "update " << i << " norm before " << before;
  }
  EXPECT_GT(clipped, 500);  // The test exercised the scaling path, not only pass-through.
}

TEST(ClipToNormTest, LeavesSmallUpdatesUnchanged) {
  std::vector<float> u = {0.3f, -0.4f, 0.0f};  // Norm 0.5.
  const std::vector<float> original = u;
  EXPECT_NEAR(ClipToNorm(u, 1.0), 0.5, 1e-7);
  EXPECT_EQ(u, original);
}

TEST(ClipToNormTest, ScalesDownKeepingDirection) {
  std::vector<float> u = {3.0f, 4.0f};  // Norm 5.
  ClipToNorm(u, 1.0);
  EXPECT_NEAR(u[0], 0.6, 1e-5);
  EXPECT_NEAR(u[1], 0.8, 1e-5);
  EXPECT_NEAR(L2Norm(u), 1.0, 1e-5);
}

TEST(GaussianSamplerTest, MomentsOverAMillionDraws) {
  GaussianSampler sampler(42);
  const int n = 1000000;
  double sum = 0.0, sum_sq = 0.0;
  for (int i = 0; i < n; ++i) {
    const double x = sampler.Next();
    sum += x;
    sum_sq += x * x;
  }
  const double mean = sum / n;
  const double stddev = std::sqrt(sum_sq / n - mean * mean);
  // Standard error of the mean is 1e-3; 5e-3 is five of them.
  EXPECT_NEAR(mean, 0.0, 5e-3);
  EXPECT_NEAR(stddev, 1.0, 0.01);
}

TEST(GaussianSamplerTest, SameSeedSameStream) {
  GaussianSampler a(123), b(123), c(124);
  bool differs = false;
  for (int i = 0; i < 100; ++i) {
    const double x = a.Next();
    EXPECT_EQ(x, b.Next());
    if (x != c.Next()) differs = true;
  }
  EXPECT_TRUE(differs);
}

TEST(ClipAndNoiseSumTest, NoiseStddevIsSigmaTimesClipOverAMillionCoordinates) {
  // One all-zero update of 1e6 coordinates: the output is pure noise.
  std::vector<std::vector<float>> updates(1, std::vector<float>(1000000, 0.0f));
  CentralDpOptions options;
  options.clip_norm = 2.0;
  options.noise_multiplier = 0.7;
  GaussianSampler sampler(2026);
  CentralDpReport report;
  Result<std::vector<float>> out = ClipAndNoiseSum(updates, options, sampler, &report);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  double sum = 0.0, sum_sq = 0.0;
  for (float x : *out) {
    sum += x;
    sum_sq += static_cast<double>(x) * x;
  }
  const double n = static_cast<double>(out->size());
  const double mean = sum / n;
  const double stddev = std::sqrt(sum_sq / n - mean * mean);
  const double expected = 0.7 * 2.0;
  EXPECT_DOUBLE_EQ(report.noise_stddev, expected);
  EXPECT_NEAR(stddev, expected, 0.03 * expected);
  EXPECT_NEAR(mean, 0.0, 5.0 * expected / std::sqrt(n));
}

TEST(ClipAndNoiseSumTest, WithoutNoiseReturnsTheSumOfClippedUpdates) {
  std::vector<std::vector<float>> updates = {{3.0f, 4.0f}, {0.1f, 0.2f}, {0.0f, -10.0f}};
  CentralDpOptions options;
  options.clip_norm = 1.0;
  options.noise_multiplier = 0.0;
  GaussianSampler sampler(1);
  CentralDpReport report;
  Result<std::vector<float>> out = ClipAndNoiseSum(updates, options, sampler, &report);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_NEAR((*out)[0], 0.6 + 0.1 + 0.0, 1e-5);
  EXPECT_NEAR((*out)[1], 0.8 + 0.2 - 1.0, 1e-5);
  EXPECT_EQ(report.clipped_count, 2);
  ASSERT_EQ(report.pre_clip_norms.size(), 3u);
  EXPECT_NEAR(report.pre_clip_norms[2], 10.0, 1e-6);
  for (const std::vector<float>& u : updates) EXPECT_LE(L2Norm(u), 1.0 + 1e-6);
}

TEST(ClipAndNoiseSumTest, RejectsBadInput) {
  GaussianSampler sampler(1);
  CentralDpOptions options;
  std::vector<std::vector<float>> ragged = {{1.0f, 2.0f}, {1.0f}};
  EXPECT_EQ(ClipAndNoiseSum(ragged, options, sampler).status().code(),
            StatusCode::kInvalidArgument);
  std::vector<std::vector<float>> none;
  EXPECT_FALSE(ClipAndNoiseSum(none, options, sampler).ok());
  std::vector<std::vector<float>> one = {{1.0f}};
  options.clip_norm = 0.0;
  EXPECT_FALSE(ClipAndNoiseSum(one, options, sampler).ok());
  options.clip_norm = 1.0;
  options.noise_multiplier = -1.0;
  EXPECT_FALSE(ClipAndNoiseSum(one, options, sampler).ok());
}

}  // namespace
}  // namespace hml::fl

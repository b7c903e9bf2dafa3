// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/data/partition.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>
#include <vector>

namespace hml::data {
namespace {

// 10 classes, `per_class` samples each, interleaved as Fashion-MNIST roughly is.
std::vector<int64_t> Labels(int64_t per_class) {
  std::vector<int64_t> labels;
  for (int64_t i = 0; i < per_class * 10; ++i) labels.push_back(i % 10);
  return labels;
}

// Every index in exactly one client.
void ExpectExactCover(const std::vector<std::vector<int64_t>>& clients, size_t n) {
  std::vector<int> seen(n, 0);
  for (const auto& c : clients) {
    EXPECT_TRUE(std::is_sorted(c.begin(), c.end()));
    for (int64_t i : c) ++seen[static_cast<size_t>(i)];
  }
  for (size_t i = 0; i < n; ++i) ASSERT_EQ(seen[i], 1) << "sample " << i;
}

// Mean over clients of the share of the client's most common label.
double MeanDominantShare(const std::vector<std::vector<int64_t>>& clients,
                         const std::vector<int64_t>& labels) {
  double total = 0.0;
  for (const auto& c : clients) {
    std::vector<int64_t> counts(10, 0);
    for (int64_t i : c) ++counts[static_cast<size_t>(labels[static_cast<size_t>(i)])];
    total += static_cast<double>(*std::max_element(counts.begin(), counts.end())) /
             static_cast<double>(c.size());
  }
  return total / static_cast<double>(clients.size());
}

TEST(GammaVariateTest, MeanAndVarianceMatchTheShape) {
  std::mt19937_64 rng(7);
  for (double shape : {0.3, 1.0, 4.5}) {
    const int n = 200000;
    double sum = 0.0, sum_sq = 0.0;
    for (int i = 0; i < n; ++i) {
      const double g = GammaVariate(rng, shape);
      ASSERT_GT(g, 0.0);
      sum += g;
      sum_sq += g * g;
    }
    const double mean = sum / n;
    const double var = sum_sq / n - mean * mean;
    // Gamma(k, 1): mean k, variance k.
    EXPECT_NEAR(mean, shape, 0.02 * shape + 0.01) << "shape " << shape;
    EXPECT_NEAR(var, shape, 0.05 * shape + 0.01) << "shape " << shape;
  }
}

TEST(DirichletPartitionTest, CoversEverySampleOnceAndIsSeeded) {
  const std::vector<int64_t> labels = Labels(600);
  DirichletOptions options;
  options.seed = 3;
  auto a = DirichletPartition(labels, 10, 10, options);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  ExpectExactCover(*a, labels.size());
  for (const auto& c : *a) EXPECT_GE(c.size(), 10u);
  auto b = DirichletPartition(labels, 10, 10, options);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*a, *b);
  options.seed = 4;
  auto c = DirichletPartition(labels, 10, 10, options);
  ASSERT_TRUE(c.ok());
  EXPECT_NE(*a, *c);
}

TEST(DirichletPartitionTest, SmallAlphaSkewsLabelsLargeAlphaDoesNot) {
  const std::vector<int64_t> labels = Labels(600);
  DirichletOptions skewed;
  skewed.alpha = 0.1;
  DirichletOptions even;
  even.alpha = 1000.0;
  auto s = DirichletPartition(labels, 10, 10, skewed);
  auto e = DirichletPartition(labels, 10, 10, even);
  ASSERT_TRUE(s.ok() && e.ok());
  // With alpha 0.1 most of a client's data is one class; with alpha 1000 every class is ~10 %.
  EXPECT_GT(MeanDominantShare(*s, labels), 0.5);
  EXPECT_LT(MeanDominantShare(*e, labels), 0.15);
}

TEST(DirichletPartitionTest, ImpossibleMinimumFailsNamingTheSizes) {
  const std::vector<int64_t> labels = Labels(5);  // 50 samples
  DirichletOptions options;
  options.min_samples = 10;
  options.max_attempts = 5;
  auto r = DirichletPartition(labels, 10, 20, options);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("20 clients"), std::string::npos) << r.status().ToString();
}

TEST(DirichletPartitionTest, RejectsBadArguments) {
  const std::vector<int64_t> labels = {0, 1, 2, 11};
  EXPECT_EQ(DirichletPartition(labels, 10, 2, {}).status().code(),
            StatusCode::kInvalidArgument);  // label 11
  DirichletOptions bad;
  bad.alpha = 0.0;
  EXPECT_EQ(DirichletPartition(Labels(10), 10, 2, bad).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(DirichletPartition(Labels(10), 10, 0, {}).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(IidPartitionTest, BalancedExactCover) {
  auto r = IidPartition(1003, 10, 1);
  ASSERT_TRUE(r.ok());
  ExpectExactCover(*r, 1003);
  for (const auto& c : *r) EXPECT_TRUE(c.size() == 100 || c.size() == 101);
  EXPECT_FALSE(IidPartition(10, 0, 1).ok());
}

}  // namespace
}  // namespace hml::data

#include "src/fl/shamir.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

namespace hml::fl {
namespace {

std::vector<uint8_t> Bytes(size_t n, uint8_t start) {
  std::vector<uint8_t> v(n);
  std::iota(v.begin(), v.end(), start);
  return v;
}

TEST(FieldTest, InverseAndReduction) {
  for (uint64_t a : {uint64_t{1}, uint64_t{2}, uint64_t{12345}, kShamirPrime - 1}) {
    EXPECT_EQ(FieldMul(a, FieldInverse(a)), 1u) << a;
  }
  // (p - 1)^2 = 1 mod p.
  EXPECT_EQ(FieldMul(kShamirPrime - 1, kShamirPrime - 1), 1u);
  EXPECT_EQ(FieldSub(0, 1), kShamirPrime - 1);
  EXPECT_EQ(FieldAdd(kShamirPrime - 1, 1), 0u);
}

TEST(ShamirTest, AnyThresholdSubsetReconstructs) {
  const std::vector<uint8_t> secret = Bytes(32, 200);
  auto shares = ShamirSplit(secret, 3, 5);
  ASSERT_TRUE(shares.ok()) << shares.status().ToString();
  ASSERT_EQ(shares->size(), 5u);
  // Every 3-subset of 5 shares, in any order.
  for (int a = 0; a < 5; ++a) {
    for (int b = a + 1; b < 5; ++b) {
      for (int c = b + 1; c < 5; ++c) {
        std::vector<ShamirShare> subset = {(*shares)[c], (*shares)[a], (*shares)[b]};
        auto got = ShamirReconstruct(subset, 3, secret.size());
        ASSERT_TRUE(got.ok()) << got.status().ToString();
        EXPECT_EQ(*got, secret);
      }
    }
  }
}

TEST(ShamirTest, OddSecretLengthsRoundTrip) {
  for (size_t n : {size_t{1}, size_t{6}, size_t{7}, size_t{8}, size_t{33}}) {
    const std::vector<uint8_t> secret = Bytes(n, 250);
    auto shares = ShamirSplit(secret, 2, 3);
    ASSERT_TRUE(shares.ok());
    auto got = ShamirReconstruct(*shares, 2, n);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(*got, secret);
  }
}

TEST(ShamirTest, BelowThresholdIsRefused) {
  const std::vector<uint8_t> secret = Bytes(32, 1);
  auto shares = ShamirSplit(secret, 4, 6);
  ASSERT_TRUE(shares.ok());
  std::vector<ShamirShare> three(shares->begin(), shares->begin() + 3);
  auto got = ShamirReconstruct(three, 4, secret.size());
  EXPECT_EQ(got.status().code(), StatusCode::kFailedPrecondition);
  // Interpolating the same t - 1 shares as if they were enough does not give the secret.
  auto wrong = ShamirReconstruct(three, 3, secret.size());
  EXPECT_TRUE(!wrong.ok() || *wrong != secret);
}

TEST(ShamirTest, SharesOfOneSecretDifferBetweenSplits) {
  // The polynomial coefficients are random: two splits of one secret give different shares, so a
  // share alone carries no fixed image of the secret.
  const std::vector<uint8_t> secret = Bytes(14, 9);
  auto a = ShamirSplit(secret, 2, 2);
  auto b = ShamirSplit(secret, 2, 2);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE((*a)[0].y, (*b)[0].y);
}

TEST(ShamirTest, RejectsBadArguments) {
  const std::vector<uint8_t> secret = Bytes(8, 0);
  EXPECT_EQ(ShamirSplit(secret, 0, 3).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ShamirSplit(secret, 4, 3).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ShamirSplit({}, 1, 3).status().code(), StatusCode::kInvalidArgument);
  auto shares = ShamirSplit(secret, 2, 3);
  ASSERT_TRUE(shares.ok());
  std::vector<ShamirShare> dup = {(*shares)[0], (*shares)[0]};
  EXPECT_EQ(ShamirReconstruct(dup, 2, 8).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ShamirReconstruct(*shares, 2, 30).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace hml::fl

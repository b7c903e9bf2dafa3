// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/runtime/train/gemm.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace hml::runtime::train_internal {
namespace {

// C = alpha * op(A) op(B) + beta * C in double, the oracle.
std::vector<double> NaiveGemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                              const std::vector<float>& a, int64_t lda, const std::vector<float>& b,
                              int64_t ldb, float beta, const std::vector<float>& c, int64_t ldc) {
  std::vector<double> out(c.begin(), c.end());
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (int64_t p = 0; p < k; ++p) {
        const double av = ta ? a[p * lda + i] : a[i * lda + p];
        const double bv = tb ? b[j * ldb + p] : b[p * ldb + j];
        s += av * bv;
      }
      out[i * ldc + j] = alpha * s + beta * c[i * ldc + j];
    }
  }
  return out;
}

void CheckAll(GemmPath path) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  GemmScratch scratch;
  int cases = 0;
  for (int64_t m : {1, 3, 4, 5, 9}) {
    for (int64_t n : {1, 2, 7, 16, 17, 37}) {
      for (int64_t k : {0, 1, 7, 8, 19}) {
        for (int t = 0; t < 4; ++t) {
          const bool ta = (t & 1) != 0, tb = (t & 2) != 0;
          // Leading dims larger than the rows, to check strides.
          const int64_t lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 2, ldc = n + 1;
          std::vector<float> a((ta ? k : m) * lda + 1), b((tb ? n : k) * ldb + 1), c(m * ldc);
          for (float& v : a) v = u(rng);
          for (float& v : b) v = u(rng);
          for (float& v : c) v = u(rng);
          const float alpha = 0.75f, beta = (cases % 3 == 0) ? 0.0f : 1.5f;
          const std::vector<double> want =
              NaiveGemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
          if (beta == 0.0f) {
            for (float& v : c) v = NAN;  // beta 0 must ignore C
          }
          Gemm(ta, tb, m, n, k, alpha, a.data(), lda, b.data(), ldb, beta, c.data(), ldc, scratch,
               path);
          for (int64_t i = 0; i < m; ++i) {
            for (int64_t j = 0; j < n; ++j) {
              ASSERT_NEAR(c[i * ldc + j], want[i * ldc + j], 1e-4 * (1 + k))
                  << "m=" << m << " n=" << n << " k=" << k << " ta=" << ta << " tb=" << tb << " at "
                  << i << "," << j;
            }
          }
          ++cases;
        }
      }
    }
  }
  EXPECT_EQ(cases, 5 * 6 * 5 * 4);
}

TEST(GemmTest, PortableMatchesDoubleReference) { CheckAll(GemmPath::kPortable); }

TEST(GemmTest, Avx2MatchesDoubleReference) {
  if (!CpuHasAvx2Fma()) GTEST_SKIP() << "no AVX2+FMA on this CPU";
  CheckAll(GemmPath::kAvx2);
}

}  // namespace
}  // namespace hml::runtime::train_internal

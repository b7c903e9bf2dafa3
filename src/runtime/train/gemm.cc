// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/runtime/train/gemm.h"

#include <immintrin.h>

#include <algorithm>
#include <cstring>

namespace hml::runtime::train_internal {
namespace {

constexpr int64_t kTileRows = 4;   // rows of C per A*B tile
constexpr int64_t kTileCols = 16;  // columns of C per A*B tile (two AVX registers)

// ---- A * B tiles: C[R, 16] += alpha * A[R, k] * B[k, 16].

template <int R>
void TileNNPortable(const float* a, int64_t lda, const float* b, int64_t ldb, int64_t k,
                    float alpha, float* c, int64_t ldc) {
  float acc[R][kTileCols] = {};
  for (int64_t p = 0; p < k; ++p) {
    const float* brow = b + p * ldb;
    for (int r = 0; r < R; ++r) {
      const float av = a[r * lda + p];
      for (int j = 0; j < kTileCols; ++j) acc[r][j] += av * brow[j];
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int j = 0; j < kTileCols; ++j) c[r * ldc + j] += alpha * acc[r][j];
  }
}

template <int R>
__attribute__((target("avx2,fma"))) void TileNNAvx2(const float* a, int64_t lda, const float* b,
                                                    int64_t ldb, int64_t k, float alpha, float* c,
                                                    int64_t ldc) {
  __m256 acc0[R];
  __m256 acc1[R];
  for (int r = 0; r < R; ++r) {
    acc0[r] = _mm256_setzero_ps();
    acc1[r] = _mm256_setzero_ps();
  }
  for (int64_t p = 0; p < k; ++p) {
    const __m256 b0 = _mm256_loadu_ps(b + p * ldb);
    const __m256 b1 = _mm256_loadu_ps(b + p * ldb + 8);
    for (int r = 0; r < R; ++r) {
      const __m256 av = _mm256_broadcast_ss(a + r * lda + p);
      acc0[r] = _mm256_fmadd_ps(av, b0, acc0[r]);
      acc1[r] = _mm256_fmadd_ps(av, b1, acc1[r]);
    }
  }
  const __m256 va = _mm256_set1_ps(alpha);
  for (int r = 0; r < R; ++r) {
    float* crow = c + r * ldc;
    _mm256_storeu_ps(crow, _mm256_fmadd_ps(va, acc0[r], _mm256_loadu_ps(crow)));
    _mm256_storeu_ps(crow + 8, _mm256_fmadd_ps(va, acc1[r], _mm256_loadu_ps(crow + 8)));
  }
}

using TileNNFn = void (*)(const float*, int64_t, const float*, int64_t, int64_t, float, float*,
                          int64_t);

TileNNFn PickTileNN(bool avx2, int64_t rows) {
  switch (rows) {
    case 1:
      return avx2 ? &TileNNAvx2<1> : &TileNNPortable<1>;
    case 2:
      return avx2 ? &TileNNAvx2<2> : &TileNNPortable<2>;
    case 3:
      return avx2 ? &TileNNAvx2<3> : &TileNNPortable<3>;
    default:
      return avx2 ? &TileNNAvx2<4> : &TileNNPortable<4>;
  }
}

// C += alpha * A[m, k] * B[k, n]; C already scaled by beta.
void GemmNN(int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
            const float* b, int64_t ldb, float* c, int64_t ldc, GemmScratch& scratch, bool avx2) {
  float tail[kTileRows * kTileCols];
  for (int64_t j0 = 0; j0 < n; j0 += kTileCols) {
    const int64_t width = std::min(kTileCols, n - j0);
    const float* panel = b + j0;
    int64_t panel_ld = ldb;
    if (width < kTileCols) {
      // The last, narrower column panel: copy it zero-padded so the tile can read 16 columns.
      if (scratch.panel.size() < static_cast<size_t>(k * kTileCols)) {
        scratch.panel.resize(static_cast<size_t>(k * kTileCols));
      }
      float* dst = scratch.panel.data();
      for (int64_t p = 0; p < k; ++p) {
        std::memcpy(dst + p * kTileCols, b + p * ldb + j0, static_cast<size_t>(width) * 4);
        std::fill(dst + p * kTileCols + width, dst + (p + 1) * kTileCols, 0.0f);
      }
      panel = dst;
      panel_ld = kTileCols;
    }
    for (int64_t i0 = 0; i0 < m; i0 += kTileRows) {
      const int64_t rows = std::min(kTileRows, m - i0);
      const TileNNFn tile = PickTileNN(avx2, rows);
      if (width == kTileCols) {
        tile(a + i0 * lda, lda, panel, panel_ld, k, alpha, c + i0 * ldc + j0, ldc);
      } else {
        std::fill(tail, tail + kTileRows * kTileCols, 0.0f);
        tile(a + i0 * lda, lda, panel, panel_ld, k, alpha, tail, kTileCols);
        for (int64_t r = 0; r < rows; ++r) {
          float* crow = c + (i0 + r) * ldc + j0;
          for (int64_t j = 0; j < width; ++j) crow[j] += tail[r * kTileCols + j];
        }
      }
    }
  }
}

// ---- A * B^T tiles: C[RI, RJ] += alpha * dot(A row, B row) over k.

template <int RI, int RJ>
void TileNTPortable(const float* a, int64_t lda, const float* b, int64_t ldb, int64_t k,
                    float alpha, float* c, int64_t ldc) {
  for (int i = 0; i < RI; ++i) {
    for (int j = 0; j < RJ; ++j) {
      const float* x = a + i * lda;
      const float* y = b + j * ldb;
      float s = 0.0f;
      for (int64_t p = 0; p < k; ++p) s += x[p] * y[p];
      c[i * ldc + j] += alpha * s;
    }
  }
}

__attribute__((target("avx2,fma"))) inline float HorizontalSum(__m256 v) {
  const __m128 lo = _mm256_castps256_ps128(v);
  const __m128 hi = _mm256_extractf128_ps(v, 1);
  __m128 s = _mm_add_ps(lo, hi);
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

template <int RI, int RJ>
__attribute__((target("avx2,fma"))) void TileNTAvx2(const float* a, int64_t lda, const float* b,
                                                    int64_t ldb, int64_t k, float alpha, float* c,
                                                    int64_t ldc) {
  __m256 acc[RI][RJ];
  for (int i = 0; i < RI; ++i) {
    for (int j = 0; j < RJ; ++j) acc[i][j] = _mm256_setzero_ps();
  }
  int64_t p = 0;
  for (; p + 8 <= k; p += 8) {
    __m256 bv[RJ];
    for (int j = 0; j < RJ; ++j) bv[j] = _mm256_loadu_ps(b + j * ldb + p);
    for (int i = 0; i < RI; ++i) {
      const __m256 av = _mm256_loadu_ps(a + i * lda + p);
      for (int j = 0; j < RJ; ++j) acc[i][j] = _mm256_fmadd_ps(av, bv[j], acc[i][j]);
    }
  }
  for (int i = 0; i < RI; ++i) {
    for (int j = 0; j < RJ; ++j) {
      float s = HorizontalSum(acc[i][j]);
      for (int64_t q = p; q < k; ++q) s += a[i * lda + q] * b[j * ldb + q];
      c[i * ldc + j] += alpha * s;
    }
  }
}

using TileNTFn = TileNNFn;

template <int RI>
TileNTFn PickTileNTCols(bool avx2, int64_t cols) {
  if (cols >= 2) return avx2 ? &TileNTAvx2<RI, 2> : &TileNTPortable<RI, 2>;
  return avx2 ? &TileNTAvx2<RI, 1> : &TileNTPortable<RI, 1>;
}

TileNTFn PickTileNT(bool avx2, int64_t rows, int64_t cols) {
  switch (rows) {
    case 1:
      return PickTileNTCols<1>(avx2, cols);
    case 2:
      return PickTileNTCols<2>(avx2, cols);
    case 3:
      return PickTileNTCols<3>(avx2, cols);
    default:
      return PickTileNTCols<4>(avx2, cols);
  }
}

// C += alpha * A[m, k] * B[n, k]^T; C already scaled by beta.
void GemmNT(int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
            const float* b, int64_t ldb, float* c, int64_t ldc, bool avx2) {
  constexpr int64_t kRows = 4;
  constexpr int64_t kCols = 2;
  for (int64_t i0 = 0; i0 < m; i0 += kRows) {
    const int64_t rows = std::min(kRows, m - i0);
    for (int64_t j0 = 0; j0 < n; j0 += kCols) {
      const int64_t cols = std::min(kCols, n - j0);
      PickTileNT(avx2, rows, cols)(a + i0 * lda, lda, b + j0 * ldb, ldb, k, alpha,
                                   c + i0 * ldc + j0, ldc);
    }
  }
}

}  // namespace

bool CpuHasAvx2Fma() {
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
}

void Gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
          int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc,
          GemmScratch& scratch, GemmPath path) {
  if (m <= 0 || n <= 0) return;
  for (int64_t i = 0; i < m; ++i) {
    float* row = c + i * ldc;
    if (beta == 0.0f) {
      std::fill(row, row + n, 0.0f);
    } else if (beta != 1.0f) {
      for (int64_t j = 0; j < n; ++j) row[j] *= beta;
    }
  }
  if (k <= 0 || alpha == 0.0f) return;
  const bool avx2 = path == GemmPath::kAvx2 || (path == GemmPath::kAuto && CpuHasAvx2Fma());
  if (trans_a) {
    // op(A) = A^T: pack it row-major [m, k] so both kernels read rows of A.
    if (scratch.packed_a.size() < static_cast<size_t>(m * k)) {
      scratch.packed_a.resize(static_cast<size_t>(m * k));
    }
    float* packed = scratch.packed_a.data();
    for (int64_t p = 0; p < k; ++p) {
      const float* src = a + p * lda;
      for (int64_t i = 0; i < m; ++i) packed[i * k + p] = src[i];
    }
    a = packed;
    lda = k;
  }
  if (trans_b) {
    GemmNT(m, n, k, alpha, a, lda, b, ldb, c, ldc, avx2);
  } else {
    GemmNN(m, n, k, alpha, a, lda, b, ldb, c, ldc, scratch, avx2);
  }
}

}  // namespace hml::runtime::train_internal

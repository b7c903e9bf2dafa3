// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The single-precision matrix product behind the trainer's Conv (im2col) and Gemm/MatMul
// kernels, forward and backward. Row-major operands with leading dimensions, BLAS semantics:
//
//   C[m, n] = alpha * op(A)[m, k] * op(B)[k, n] + beta * C
//
// Two inner kernels cover every transpose case: A * B (a 4x16 register tile that walks one row
// panel of B) and A * B^T (dot products along k, 4x2 tiles); op(A) = A^T is packed into a
// scratch buffer first. Each kernel has an AVX2+FMA version, chosen at run time with
// __builtin_cpu_supports (the build carries no ISA flags), and a portable one. The scratch
// buffer only grows, so repeated calls of one size do not allocate.
//
// Internal to hml_runtime_train. Thread-compatible: concurrent calls need their own scratch.
#ifndef HML_SRC_RUNTIME_TRAIN_GEMM_H_
#define HML_SRC_RUNTIME_TRAIN_GEMM_H_

#include <cstdint>
#include <vector>

namespace hml::runtime::train_internal {

// Which inner kernels Gemm uses. kAuto picks AVX2+FMA when the CPU has it; the others exist so
// tests can check both paths against each other.
enum class GemmPath { kAuto, kPortable, kAvx2 };

// True when this CPU can run GemmPath::kAvx2.
bool CpuHasAvx2Fma();

struct GemmScratch {
  std::vector<float> packed_a;  // op(A) when trans_a
  std::vector<float> panel;     // a zero-padded 16-column tail panel of B
};

// C = alpha * op(A) * op(B) + beta * C. op(A) is [m, k]: A is stored [m, k] (lda >= k), or
// [k, m] (lda >= m) when trans_a. op(B) is [k, n]: B is stored [k, n] (ldb >= n), or [n, k]
// (ldb >= k) when trans_b. C is [m, n] with ldc >= n. beta == 0 ignores C's old contents
// (NaNs included). REQUIRES: C does not overlap A or B.
void Gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
          int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc,
          GemmScratch& scratch, GemmPath path = GemmPath::kAuto);

}  // namespace hml::runtime::train_internal

#endif  // HML_SRC_RUNTIME_TRAIN_GEMM_H_

// Shamir secret sharing over the prime field GF(p), p = 2^61 - 1 (a Mersenne prime, so a product
// reduces with shifts and adds). Secure aggregation (secagg.h) uses it to share each client's
// self-mask seed and mask secret key t-of-n among the other clients.
//
// A secret of any length is cut into 7-byte chunks; each chunk (< 2^56 < p) is one field element
// and is shared with its own random polynomial of degree t - 1 whose constant term is the chunk.
// Share i holds the polynomials' values at x = i (1..n). Any t shares determine the polynomials
// by Lagrange interpolation and hence the secret. Fewer than t shares reveal nothing: for every
// candidate secret there is exactly one polynomial of degree t - 1 through the t - 1 known points
// and that candidate at x = 0, and the coefficients are uniform, so every secret is equally
// likely given the shares (information-theoretic security; needs a uniform random source, here
// libsodium's randombytes_buf). ShamirReconstruct refuses fewer than `threshold` shares: with
// t - 1 points interpolation would return an arbitrary value, never the secret.
#ifndef HML_FL_SHAMIR_H_
#define HML_FL_SHAMIR_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "hml/status.h"

namespace hml::fl {

// The field modulus, 2^61 - 1.
inline constexpr uint64_t kShamirPrime = (uint64_t{1} << 61) - 1;
// Bytes of secret per field element.
inline constexpr size_t kShamirChunkBytes = 7;
// Largest supported number of shares (x coordinates are 1..kShamirMaxShares).
inline constexpr int kShamirMaxShares = 1 << 16;

// One participant's share: the evaluation point `x` (1-based) and one field element per secret
// chunk.
struct ShamirShare {
  uint32_t x = 0;
  std::vector<uint64_t> y;
};

// Field arithmetic mod kShamirPrime. REQUIRES: inputs < kShamirPrime.
uint64_t FieldAdd(uint64_t a, uint64_t b);
uint64_t FieldSub(uint64_t a, uint64_t b);
uint64_t FieldMul(uint64_t a, uint64_t b);
// REQUIRES: a != 0.
uint64_t FieldInverse(uint64_t a);

// Splits `secret` into `num_shares` shares, any `threshold` of which reconstruct it. Returns
// kInvalidArgument unless 1 <= threshold <= num_shares <= kShamirMaxShares and the secret is
// non-empty; kInternal if libsodium cannot initialise.
Result<std::vector<ShamirShare>> ShamirSplit(std::span<const uint8_t> secret, int threshold,
                                             int num_shares);

// Reconstructs a `secret_size`-byte secret from the first `threshold` of `shares`. Returns
// kFailedPrecondition when fewer than `threshold` shares are given, kInvalidArgument for
// duplicate or zero x coordinates, shares of different lengths or a length that does not match
// `secret_size`, and kDataLoss when the interpolated value is not a valid chunk (shares from
// different secrets or corrupted).
Result<std::vector<uint8_t>> ShamirReconstruct(std::span<const ShamirShare> shares, int threshold,
                                               size_t secret_size);

}  // namespace hml::fl

#endif  // HML_FL_SHAMIR_H_

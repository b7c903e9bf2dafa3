// Shamir secret sharing over GF(2^61 - 1); the design is described in shamir.h.
#include "src/fl/shamir.h"

#include <sodium.h>

#include <algorithm>
#include <string>

namespace hml::fl {
namespace {

size_t NumChunks(size_t secret_size) {
  return (secret_size + kShamirChunkBytes - 1) / kShamirChunkBytes;
}

// A uniform field element by rejection sampling 61-bit values.
uint64_t RandomFieldElement() {
  for (;;) {
    uint64_t v = 0;
    randombytes_buf(&v, sizeof(v));
    v &= kShamirPrime;  // keeps the low 61 bits
    if (v < kShamirPrime) return v;
  }
}

}  // namespace

uint64_t FieldAdd(uint64_t a, uint64_t b) {
  uint64_t s = a + b;  // < 2^62, no overflow
  return s >= kShamirPrime ? s - kShamirPrime : s;
}

uint64_t FieldSub(uint64_t a, uint64_t b) { return a >= b ? a - b : a + kShamirPrime - b; }

uint64_t FieldMul(uint64_t a, uint64_t b) {
  const unsigned __int128 p = static_cast<unsigned __int128>(a) * b;
  // 2^61 = 1 (mod p): fold the high bits onto the low ones.
  uint64_t lo = static_cast<uint64_t>(p) & kShamirPrime;
  uint64_t hi = static_cast<uint64_t>(p >> 61);
  return FieldAdd(lo, hi % kShamirPrime);
}

uint64_t FieldInverse(uint64_t a) {
  // Fermat: a^(p-2).
  uint64_t result = 1;
  uint64_t base = a;
  uint64_t e = kShamirPrime - 2;
  while (e != 0) {
    if (e & 1) result = FieldMul(result, base);
    base = FieldMul(base, base);
    e >>= 1;
  }
  return result;
}

Result<std::vector<ShamirShare>> ShamirSplit(std::span<const uint8_t> secret, int threshold,
                                             int num_shares) {
  if (secret.empty()) return InvalidArgumentError("Shamir split: the secret is empty");
  if (threshold < 1 || threshold > num_shares || num_shares > kShamirMaxShares) {
    return InvalidArgumentError("Shamir split: need 1 <= threshold (" + std::to_string(threshold) +
                                ") <= shares (" + std::to_string(num_shares) +
                                ") <= " + std::to_string(kShamirMaxShares));
  }
  if (sodium_init() < 0) return InternalError("Shamir split: libsodium failed to initialise");
  const size_t chunks = NumChunks(secret.size());
  std::vector<ShamirShare> shares(num_shares);
  for (int i = 0; i < num_shares; ++i) {
    shares[i].x = static_cast<uint32_t>(i + 1);
    shares[i].y.resize(chunks);
  }
  std::vector<uint64_t> coeffs(threshold);
  for (size_t c = 0; c < chunks; ++c) {
    uint64_t value = 0;
    for (size_t b = 0; b < kShamirChunkBytes; ++b) {
      const size_t at = c * kShamirChunkBytes + b;
      if (at < secret.size()) value |= uint64_t{secret[at]} << (8 * b);
    }
    coeffs[0] = value;
    for (int k = 1; k < threshold; ++k) coeffs[k] = RandomFieldElement();
    for (int i = 0; i < num_shares; ++i) {
      // Horner's rule at x = i + 1.
      const uint64_t x = static_cast<uint64_t>(i + 1);
      uint64_t acc = 0;
      for (int k = threshold - 1; k >= 0; --k) acc = FieldAdd(FieldMul(acc, x), coeffs[k]);
      shares[i].y[c] = acc;
    }
  }
  sodium_memzero(coeffs.data(), coeffs.size() * sizeof(uint64_t));
  return shares;
}

Result<std::vector<uint8_t>> ShamirReconstruct(std::span<const ShamirShare> shares, int threshold,
                                               size_t secret_size) {
  if (threshold < 1) return InvalidArgumentError("Shamir reconstruct: threshold must be >= 1");
  if (shares.size() < static_cast<size_t>(threshold)) {
    return FailedPreconditionError("Shamir reconstruct: " + std::to_string(shares.size()) +
                                   " shares are fewer than the threshold " +
                                   std::to_string(threshold) + "; the secret stays hidden");
  }
  const size_t chunks = NumChunks(secret_size);
  const auto used = shares.first(threshold);
  for (size_t i = 0; i < used.size(); ++i) {
    if (used[i].x == 0 || used[i].x >= kShamirPrime) {
      return InvalidArgumentError("Shamir reconstruct: share " + std::to_string(i) +
                                  " has an invalid x coordinate");
    }
    if (used[i].y.size() != chunks) {
      return InvalidArgumentError("Shamir reconstruct: share x=" + std::to_string(used[i].x) +
                                  " holds " + std::to_string(used[i].y.size()) + " elements, a " +
                                  std::to_string(secret_size) + "-byte secret needs " +
                                  std::to_string(chunks));
    }
    for (size_t j = 0; j < i; ++j) {
      if (used[j].x == used[i].x) {
        return InvalidArgumentError("Shamir reconstruct: duplicate share x=" +
                                    std::to_string(used[i].x));
      }
    }
  }
  // Lagrange basis at 0: l_i(0) = prod_{j != i} x_j / (x_j - x_i).
  std::vector<uint64_t> basis(used.size());
  for (size_t i = 0; i < used.size(); ++i) {
    uint64_t num = 1;
    uint64_t den = 1;
    for (size_t j = 0; j < used.size(); ++j) {
      if (j == i) continue;
      num = FieldMul(num, used[j].x);
      den = FieldMul(den, FieldSub(used[j].x, used[i].x));
    }
    basis[i] = FieldMul(num, FieldInverse(den));
  }
  std::vector<uint8_t> secret(secret_size);
  for (size_t c = 0; c < chunks; ++c) {
    uint64_t value = 0;
    for (size_t i = 0; i < used.size(); ++i) {
      if (used[i].y[c] >= kShamirPrime) {
        return InvalidArgumentError("Shamir reconstruct: share x=" + std::to_string(used[i].x) +
                                    " holds an element outside the field");
      }
      value = FieldAdd(value, FieldMul(used[i].y[c], basis[i]));
    }
    const size_t bytes_here = std::min(kShamirChunkBytes, secret_size - c * kShamirChunkBytes);
    if ((value >> (8 * bytes_here)) != 0) {
      return DataLossError("Shamir reconstruct: chunk " + std::to_string(c) +
                           " interpolates outside the secret's range (mismatched or corrupted "
                           "shares)");
    }
    for (size_t b = 0; b < bytes_here; ++b) {
      secret[c * kShamirChunkBytes + b] = static_cast<uint8_t>(value >> (8 * b));
    }
  }
  return secret;
}

}  // namespace hml::fl

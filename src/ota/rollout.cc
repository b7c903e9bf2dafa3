// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/ota/rollout.h"

#include <sodium.h>

#include <array>
#include <cmath>
#include <cstdint>

#include "src/ota/crypto.h"

namespace hml::ota {

int RolloutBucket(std::string_view device_id, std::string_view model_name) {
  // SHA-256 needs no randomness, so a failed initialization (no entropy source) cannot matter.
  (void)InitCrypto();
  // Hashed incrementally so that the input `model_name + "/" + device_id` is never allocated.
  crypto_hash_sha256_state state;
  crypto_hash_sha256_init(&state);
  crypto_hash_sha256_update(&state, reinterpret_cast<const unsigned char*>(model_name.data()),
                            model_name.size());
  const unsigned char slash = '/';
  crypto_hash_sha256_update(&state, &slash, 1);
  crypto_hash_sha256_update(&state, reinterpret_cast<const unsigned char*>(device_id.data()),
                            device_id.size());
  std::array<unsigned char, crypto_hash_sha256_BYTES> digest;
  crypto_hash_sha256_final(&state, digest.data());

  uint64_t prefix = 0;
  for (int i = 0; i < 8; ++i) prefix = (prefix << 8) | digest[static_cast<size_t>(i)];
  return static_cast<int>(prefix % static_cast<uint64_t>(kRolloutBuckets));
}

bool InRollout(std::string_view device_id, std::string_view model_name, double percent) {
  // NaN fails both comparisons below; treat it as "no devices" rather than let it through.
  if (std::isnan(percent) || percent <= 0.0) return false;
  if (percent >= 100.0) return true;
  // A bucket b is in when b < percent * 100; buckets are integers, so compare in double.
  return static_cast<double>(RolloutBucket(device_id, model_name)) < percent * 100.0;
}

}  // namespace hml::ota

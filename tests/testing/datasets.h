// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Small synthetic datasets for trainer tests, generated from a seed with our own arithmetic (the
// same numbers with every standard library).
#ifndef HML_TESTS_TESTING_DATASETS_H_
#define HML_TESTS_TESTING_DATASETS_H_

#include <cmath>
#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include "src/data/dataset.h"

namespace hml::testing {

// A standard normal sample: Box-Muller on our own uniforms.
inline double Gaussian(std::mt19937_64& rng) {
  const double u1 = (static_cast<double>(rng() >> 11) + 1.0) / 9007199254740993.0;
  const double u2 = static_cast<double>(rng() >> 11) / 9007199254740992.0;
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

// Three linearly separable blobs in 4-D: class c is centred at 3 * e_c, noise sd 0.5.
inline std::shared_ptr<data::InMemoryDataset> Blobs(int64_t n, uint64_t seed,
                                                    float scale = 1.0f) {
  std::mt19937_64 rng(seed);
  std::vector<float> f;
  std::vector<int64_t> l;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t c = i % 3;
    for (int64_t d = 0; d < 4; ++d) {
      f.push_back(scale * static_cast<float>((d == c ? 3.0 : 0.0) + 0.5 * Gaussian(rng)));
    }
    l.push_back(c);
  }
  return *data::InMemoryDataset::Create({4}, 3, std::move(f), std::move(l));
}

// 1x8x8 images: class 0 is bright in the top half, class 1 in the bottom half, plus noise.
inline std::shared_ptr<data::InMemoryDataset> TopBottom(int64_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<float> f;
  std::vector<int64_t> l;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t c = i % 2;
    for (int64_t y = 0; y < 8; ++y) {
      for (int64_t x = 0; x < 8; ++x) {
        const bool bright = (y < 4) == (c == 0);
        f.push_back(static_cast<float>((bright ? 1.0 : 0.0) + 0.3 * Gaussian(rng)));
      }
    }
    l.push_back(c);
  }
  return *data::InMemoryDataset::Create({1, 8, 8}, 2, std::move(f), std::move(l));
}

}  // namespace hml::testing

#endif  // HML_TESTS_TESTING_DATASETS_H_

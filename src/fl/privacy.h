// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Central differential privacy for federated aggregation (issue 7): the server clips every
// client update to an L2 norm of at most C and adds Gaussian noise to the sum of the clipped
// updates.
//
// Sensitivity. Neighbouring rounds differ by one client's update being present or absent
// (add/remove-one adjacency). After clipping, every update u_i satisfies ||u_i||_2 <= C, so
// adding or removing one of them moves the sum S = sum_i clip(u_i) by a vector of L2 norm at most
// C: the L2 sensitivity of S is C. Adding N(0, (sigma*C)^2 I) to S is therefore the Gaussian
// mechanism with noise multiplier sigma (noise standard deviation / sensitivity), and, when each
// client is sampled independently with probability q, exactly the sampled Gaussian mechanism that
// fl/accountant.h accounts for. Clipping only scales an update down, never up, so updates already
// inside the ball pass unchanged and the bound holds for every update, not just on average.
// Dividing the noised sum by a public count (the expected cohort size) is post-processing and
// costs no privacy; dividing by the realised count would leak it, so it is left to the caller.
//
// Randomness. GaussianSampler draws from std::mt19937_64 (whose output sequence the standard
// fixes) and turns it into normals with our own Box-Muller transform, not
// std::normal_distribution, whose algorithm differs between standard libraries: a seed gives the
// same noise everywhere. Note that a reproducible seed is for tests and simulation; a deployment
// must seed from a secret, unpredictable source or the noise can be subtracted.
#ifndef HML_SRC_FL_PRIVACY_H_
#define HML_SRC_FL_PRIVACY_H_

#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "hml/status.h"

namespace hml::fl {

// Returns the L2 norm of `v`, accumulated in double.
double L2Norm(std::span<const float> v);

// Scales `update` in place so its L2 norm is at most `clip_norm`: multiplied by
// clip_norm / ||update|| when the norm exceeds clip_norm, untouched otherwise. Returns the norm
// before clipping. REQUIRES: clip_norm > 0 (checked by the callers that take options).
double ClipToNorm(std::span<float> update, double clip_norm);

// Standard normal draws from a seeded std::mt19937_64 via the Box-Muller transform. Each pair of
// 53-bit uniforms gives two normals; the second is kept for the next call. Not thread-safe.
class GaussianSampler {
 public:
  explicit GaussianSampler(uint64_t seed) : engine_(seed) {}

  // One draw from N(0, 1).
  double Next();
  // Adds N(0, stddev^2) independently to every element of `v`.
  void AddNoise(std::span<float> v, double stddev);

 private:
  // Uniform on (0, 1]: never 0, so log() in Box-Muller stays finite.
  double UniformOpenZero();

  std::mt19937_64 engine_;
  bool has_spare_ = false;
  double spare_ = 0.0;
};

struct CentralDpOptions {
  // L2 bound C every client update is clipped to. Default: 1.0. Must be > 0 and finite.
  double clip_norm = 1.0;
  // Noise multiplier sigma: the noise added to the sum has standard deviation sigma * C per
  // coordinate. 0 disables noise (clipping only; no privacy guarantee). Default: 1.0. Must be >= 0.
  double noise_multiplier = 1.0;

  Status Validate() const;
};

// What one DP aggregation did, for round reports.
struct CentralDpReport {
  // Updates whose norm exceeded clip_norm and were scaled down.
  int clipped_count = 0;
  // Norm of each update before clipping, in input order.
  std::vector<double> pre_clip_norms;
  // Standard deviation of the noise added per coordinate (sigma * C).
  double noise_stddev = 0.0;
};

// Clips each of `updates` (in place) to options.clip_norm, sums them and adds
// N(0, (sigma*C)^2) to every coordinate of the sum, using `sampler`. All updates must have the
// same, non-zero length; there must be at least one. Returns the noised sum; `report` (optional)
// receives the clipping statistics.
Result<std::vector<float>> ClipAndNoiseSum(std::span<std::vector<float>> updates,
                                           const CentralDpOptions& options,
                                           GaussianSampler& sampler,
                                           CentralDpReport* report = nullptr);

}  // namespace hml::fl

#endif  // HML_SRC_FL_PRIVACY_H_

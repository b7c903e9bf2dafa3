// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/fl/privacy.h"

#include <cmath>
#include <numbers>
#include <string>

namespace hml::fl {

double L2Norm(std::span<const float> v) {
  double sum = 0.0;
  for (float x : v) sum += static_cast<double>(x) * static_cast<double>(x);
  return std::sqrt(sum);
}

double ClipToNorm(std::span<float> update, double clip_norm) {
  const double norm = L2Norm(update);
  if (norm > clip_norm) {
    // Rounding the product to float can land a hair above clip_norm; shrinking the factor by a
    // few ulps of float keeps the bound strict without visibly changing the update.
    const double factor = clip_norm / norm * (1.0 - 4.0 * 1.1920929e-7);
    for (float& x : update) x = static_cast<float>(static_cast<double>(x) * factor);
  }
  return norm;
}

double GaussianSampler::UniformOpenZero() {
  // 53 random bits -> k in [0, 2^53); (k + 1) / 2^53 is in (0, 1].
  const uint64_t k = engine_() >> 11;
  return (static_cast<double>(k) + 1.0) * 0x1.0p-53;
}

double GaussianSampler::Next() {
  if (has_spare_) {
    has_spare_ = false;
    return spare_;
  }
  const double u1 = UniformOpenZero();
  const double u2 = UniformOpenZero();
  const double radius = std::sqrt(-2.0 * std::log(u1));
  const double angle = 2.0 * std::numbers::pi * u2;
  spare_ = radius * std::sin(angle);
  has_spare_ = true;
  return radius * std::cos(angle);
}

void GaussianSampler::AddNoise(std::span<float> v, double stddev) {
  for (float& x : v) x = static_cast<float>(static_cast<double>(x) + stddev * Next());
}

Status CentralDpOptions::Validate() const {
  if (!(clip_norm > 0.0) || !std::isfinite(clip_norm)) {
    return InvalidArgumentError("central DP: clip_norm must be finite and > 0, got " +
                                std::to_string(clip_norm));
  }
  if (!(noise_multiplier >= 0.0) || !std::isfinite(noise_multiplier)) {
    return InvalidArgumentError("central DP: noise_multiplier must be finite and >= 0, got " +
                                std::to_string(noise_multiplier));
  }
  return Status::Ok();
}

Result<std::vector<float>> ClipAndNoiseSum(std::span<std::vector<float>> updates,
                                           const CentralDpOptions& options,
                                           GaussianSampler& sampler, CentralDpReport* report) {
  HML_RETURN_IF_ERROR(options.Validate());
  if (updates.empty()) return InvalidArgumentError("central DP: no updates to aggregate");
  const size_t dim = updates[0].size();
  if (dim == 0) return InvalidArgumentError("central DP: updates are empty vectors");
  CentralDpReport local;
  for (size_t i = 0; i < updates.size(); ++i) {
    if (updates[i].size() != dim) {
      return InvalidArgumentError("central DP: update " + std::to_string(i) + " has " +
                                  std::to_string(updates[i].size()) + " elements, update 0 has " +
                                  std::to_string(dim));
    }
  }
  std::vector<double> sum(dim, 0.0);
  for (std::vector<float>& u : updates) {
    const double norm = ClipToNorm(u, options.clip_norm);
    local.pre_clip_norms.push_back(norm);
    if (norm > options.clip_norm) ++local.clipped_count;
    for (size_t j = 0; j < dim; ++j) sum[j] += u[j];
  }
  local.noise_stddev = options.noise_multiplier * options.clip_norm;
  std::vector<float> out(dim);
  for (size_t j = 0; j < dim; ++j) {
    out[j] = static_cast<float>(sum[j] + local.noise_stddev * sampler.Next());
  }
  if (report != nullptr) *report = std::move(local);
  return out;
}

}  // namespace hml::fl

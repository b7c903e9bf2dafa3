// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/sdk/resilience/hedging.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>

namespace hml::sdk {

LatencyTracker::LatencyTracker(int window)
    : ring_(static_cast<size_t>(std::max(window, 1))),
      scratch_(static_cast<size_t>(std::max(window, 1))) {}

void LatencyTracker::Record(int64_t latency_nanos) {
  std::lock_guard<std::mutex> lock(mu_);
  ring_[next_] = latency_nanos;
  next_ = (next_ + 1) % ring_.size();
  if (next_ == 0) full_ = true;
}

int LatencyTracker::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(full_ ? ring_.size() : next_);
}

std::optional<int64_t> LatencyTracker::Percentile(double q) const {
  std::lock_guard<std::mutex> lock(mu_);
  size_t n = full_ ? ring_.size() : next_;
  if (n == 0) return std::nullopt;
  std::copy(ring_.begin(), ring_.begin() + static_cast<std::ptrdiff_t>(n), scratch_.begin());
  // Nearest rank: the smallest value with at least q * n values at or below it.
  double clamped = std::clamp(q, 0.0, 1.0);
  size_t rank = static_cast<size_t>(std::ceil(clamped * static_cast<double>(n)));
  size_t index = rank == 0 ? 0 : rank - 1;
  auto nth = scratch_.begin() + static_cast<std::ptrdiff_t>(index);
  std::nth_element(scratch_.begin(), nth, scratch_.begin() + static_cast<std::ptrdiff_t>(n));
  return *nth;
}

Status HedgingOptions::Validate() const {
  if (!(percentile > 0.0 && percentile <= 1.0)) {
    return InvalidArgumentError("HedgingOptions.percentile must be in (0, 1], got " +
                                std::to_string(percentile));
  }
  if (window < 1) {
    return InvalidArgumentError("HedgingOptions.window must be >= 1, got " +
                                std::to_string(window));
  }
  if (min_samples < 1 || min_samples > window) {
    return InvalidArgumentError("HedgingOptions.min_samples must be in [1, window=" +
                                std::to_string(window) + "], got " + std::to_string(min_samples));
  }
  if (min_delay_nanos < 0) {
    return InvalidArgumentError("HedgingOptions.min_delay_nanos must be >= 0");
  }
  if (max_hedges < 0) {
    return InvalidArgumentError("HedgingOptions.max_hedges must be >= 0, got " +
                                std::to_string(max_hedges));
  }
  return Status::Ok();
}

Result<std::unique_ptr<HedgingPolicy>> HedgingPolicy::Create(const HedgingOptions& options) {
  HML_RETURN_IF_ERROR(options.Validate());
  return std::unique_ptr<HedgingPolicy>(new HedgingPolicy(options));
}

std::optional<int64_t> HedgingPolicy::HedgeDelayNanos() const {
  if (!options_.enabled || options_.max_hedges == 0) return std::nullopt;
  if (tracker_.size() < options_.min_samples) return std::nullopt;
  std::optional<int64_t> p = tracker_.Percentile(options_.percentile);
  if (!p) return std::nullopt;
  return std::max(*p, options_.min_delay_nanos);
}

}  // namespace hml::sdk

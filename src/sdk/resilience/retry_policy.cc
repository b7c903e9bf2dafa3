// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/sdk/resilience/retry_policy.h"

#include <algorithm>
#include <cmath>

namespace hml::sdk {

Status RetryPolicyOptions::Validate() const {
  if (max_attempts < 1) {
    return InvalidArgumentError("RetryPolicyOptions.max_attempts must be >= 1, got " +
                                std::to_string(max_attempts));
  }
  if (initial_backoff_nanos <= 0 || max_backoff_nanos <= 0) {
    return InvalidArgumentError(
        "RetryPolicyOptions: initial_backoff_nanos (" + std::to_string(initial_backoff_nanos) +
        ") and max_backoff_nanos (" + std::to_string(max_backoff_nanos) + ") must be positive");
  }
  if (initial_backoff_nanos > max_backoff_nanos) {
    return InvalidArgumentError(
        "RetryPolicyOptions.initial_backoff_nanos (" + std::to_string(initial_backoff_nanos) +
        ") exceeds max_backoff_nanos (" + std::to_string(max_backoff_nanos) + ")");
  }
  if (!(backoff_multiplier >= 1.0) || !std::isfinite(backoff_multiplier)) {
    return InvalidArgumentError(
        "RetryPolicyOptions.backoff_multiplier must be a finite value >= 1");
  }
  for (StatusCode code : retryable_codes) {
    int c = static_cast<int>(code);
    if (c <= 0 || c > static_cast<int>(StatusCode::kUnauthenticated)) {
      return InvalidArgumentError("RetryPolicyOptions.retryable_codes holds " + std::to_string(c) +
                                  ", which is OK or not a canonical code");
    }
  }
  return Status::Ok();
}

RetryPolicy::RetryPolicy(const RetryPolicyOptions& options) : options_(options) {
  for (StatusCode code : options_.retryable_codes) {
    retryable_mask_ |= 1u << static_cast<int>(code);
  }
}

Result<RetryPolicy> RetryPolicy::Create(const RetryPolicyOptions& options) {
  HML_RETURN_IF_ERROR(options.Validate());
  return RetryPolicy(options);
}

int64_t RetryPolicy::BackoffCapNanos(int retry_index) const {
  // Computed in double and clamped before converting, so large indexes cannot overflow.
  double cap = static_cast<double>(options_.initial_backoff_nanos) *
               std::pow(options_.backoff_multiplier, std::max(retry_index, 0));
  double max = static_cast<double>(options_.max_backoff_nanos);
  return static_cast<int64_t>(std::min(cap, max));
}

int64_t RetryPolicy::BackoffNanos(int retry_index, double uniform01) const {
  double u = std::clamp(uniform01, 0.0, 1.0);
  return static_cast<int64_t>(u * static_cast<double>(BackoffCapNanos(retry_index)));
}

RetryDecision RetryPolicy::Decide(const Status& status, int attempts_made, int64_t now_nanos,
                                  int64_t deadline_nanos, double uniform01) const {
  RetryDecision decision;
  if (!IsRetryable(status.code())) {
    decision.reason = std::string(StatusCodeName(status.code())) + " is not retryable";
    return decision;
  }
  if (attempts_made >= options_.max_attempts) {
    decision.reason = "gave up after " + std::to_string(attempts_made) + " of " +
                      std::to_string(options_.max_attempts) + " attempts";
    return decision;
  }
  // attempts_made >= 1, so the next retry's index is attempts_made - 1.
  int64_t delay = BackoffNanos(attempts_made - 1, uniform01);
  if (now_nanos + delay >= deadline_nanos) {
    decision.reason = "no time for another attempt: backoff of " +
                      std::to_string(delay / 1'000'000) + " ms would reach the deadline";
    return decision;
  }
  decision.retry = true;
  decision.delay_nanos = delay;
  return decision;
}

}  // namespace hml::sdk

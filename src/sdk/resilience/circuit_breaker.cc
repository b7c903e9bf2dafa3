// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/sdk/resilience/circuit_breaker.h"

#include <string>

namespace hml::sdk {

std::string_view BreakerStateName(BreakerState state) {
  switch (state) {
    case BreakerState::kClosed:
      return "closed";
    case BreakerState::kOpen:
      return "open";
    case BreakerState::kHalfOpen:
      return "half-open";
  }
  return "unknown";
}

Status CircuitBreakerOptions::Validate() const {
  if (name.empty()) return InvalidArgumentError("CircuitBreakerOptions.name is empty");
  if (failure_threshold < 1) {
    return InvalidArgumentError("CircuitBreakerOptions.failure_threshold must be >= 1, got " +
                                std::to_string(failure_threshold));
  }
  if (open_duration_nanos <= 0) {
    return InvalidArgumentError("CircuitBreakerOptions.open_duration_nanos must be positive, got " +
                                std::to_string(open_duration_nanos));
  }
  for (StatusCode code : failure_codes) {
    int c = static_cast<int>(code);
    if (code == StatusCode::kOk || code == StatusCode::kCancelled || c < 0 ||
        c > static_cast<int>(StatusCode::kUnauthenticated)) {
      return InvalidArgumentError("CircuitBreakerOptions.failure_codes may not hold code " +
                                  std::to_string(c) + " (OK and CANCELLED are never failures)");
    }
  }
  return Status::Ok();
}

Result<std::unique_ptr<CircuitBreaker>> CircuitBreaker::Create(const CircuitBreakerOptions& options,
                                                               Clock* clock) {
  HML_RETURN_IF_ERROR(options.Validate());
  if (clock == nullptr) return InvalidArgumentError("CircuitBreaker: clock is null");
  return std::unique_ptr<CircuitBreaker>(new CircuitBreaker(options, clock));
}

CircuitBreaker::CircuitBreaker(const CircuitBreakerOptions& options, Clock* clock)
    : options_(options), clock_(clock) {
  for (StatusCode code : options_.failure_codes) failure_mask_ |= 1u << static_cast<int>(code);
}

void CircuitBreaker::MaybeHalfOpen() {
  if (state_ == BreakerState::kOpen &&
      clock_->NowNanos() - opened_at_nanos_ >= options_.open_duration_nanos) {
    state_ = BreakerState::kHalfOpen;
    probe_in_flight_ = false;
    generation_++;
  }
}

void CircuitBreaker::Open() {
  state_ = BreakerState::kOpen;
  opened_at_nanos_ = clock_->NowNanos();
  probe_in_flight_ = false;
  generation_++;
  stats_.opened++;
}

Result<CircuitBreaker::Permit> CircuitBreaker::Acquire() {
  std::lock_guard<std::mutex> lock(mu_);
  MaybeHalfOpen();
  switch (state_) {
    case BreakerState::kClosed:
      stats_.admitted++;
      return Permit{generation_, false};
    case BreakerState::kHalfOpen:
      if (!probe_in_flight_) {
        probe_in_flight_ = true;
        stats_.admitted++;
        stats_.probes++;
        return Permit{generation_, true};
      }
      stats_.refused++;
      return UnavailableError("circuit breaker '" + options_.name +
                              "' is half-open and its one probe is in flight");
    case BreakerState::kOpen:
      break;
  }
  stats_.refused++;
  int64_t left_ms =
      (opened_at_nanos_ + options_.open_duration_nanos - clock_->NowNanos()) / 1'000'000;
  return UnavailableError("circuit breaker '" + options_.name + "' is open after " +
                          std::to_string(stats_.consecutive_failures) +
                          " consecutive failures; next probe in " + std::to_string(left_ms) +
                          " ms");
}

void CircuitBreaker::Release(const Permit& permit, const Status& outcome) {
  std::lock_guard<std::mutex> lock(mu_);
  const bool cancelled = outcome.code() == StatusCode::kCancelled;
  const bool failure = !outcome.ok() && IsFailure(outcome.code());
  if (!cancelled) (failure ? stats_.failures : stats_.successes)++;
  if (permit.generation != generation_) return;  // stale: admitted before the last change

  if (permit.probe) {
    // Only a probe is admitted in half-open, so this is the half-open verdict.
    probe_in_flight_ = false;
    if (cancelled) return;  // no verdict: the next Acquire() sends another probe
    if (failure) {
      stats_.consecutive_failures++;
      Open();
    } else {
      state_ = BreakerState::kClosed;
      stats_.consecutive_failures = 0;
      generation_++;
    }
    return;
  }
  if (state_ != BreakerState::kClosed || cancelled) return;
  if (!failure) {
    stats_.consecutive_failures = 0;
    return;
  }
  if (++stats_.consecutive_failures >= options_.failure_threshold) Open();
}

BreakerState CircuitBreaker::state() {
  std::lock_guard<std::mutex> lock(mu_);
  MaybeHalfOpen();
  return state_;
}

CircuitBreakerStats CircuitBreaker::stats() {
  std::lock_guard<std::mutex> lock(mu_);
  MaybeHalfOpen();
  CircuitBreakerStats s = stats_;
  s.state = state_;
  return s;
}

}  // namespace hml::sdk

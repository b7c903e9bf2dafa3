// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// CircuitBreaker: stops calling a backend that keeps failing, and probes it now and then.
//
//   closed    -- `failure_threshold` consecutive failures -->  open
//   open      -- `open_duration` passed (checked lazily)  -->  half-open
//   half-open -- the one probe succeeds --> closed;  the probe fails --> open (timer restarts)
//
// While open, Acquire() refuses at once with kUnavailable naming the breaker, without the call
// being attempted, so the SDK falls back to the local model immediately instead of waiting for
// a dead link. In half-open exactly one call (the probe) is let through; others are refused
// until it reports.
//
// Which outcomes count (the decision, and why): a *failure* is a code in `failure_codes`,
// default UNAVAILABLE, DEADLINE_EXCEEDED and INTERNAL — the server is unreachable, too slow, or
// broken. Any other error (INVALID_ARGUMENT, NOT_FOUND, PERMISSION_DENIED, ...) proves that the
// server is up and answering, so it counts as a *success* for health and resets the streak.
// CANCELLED is neutral (we cancel hedging losers and calls past their deadline ourselves): it
// neither resets nor extends the streak; a cancelled probe frees the half-open slot.
//
// Acquire() hands out a Permit that must be passed back to Release() with the outcome. Permits
// carry the breaker's generation, so an outcome from a call admitted before the last state change
// (a slow call that returns after the breaker already opened) updates the counters but not the
// state.
//
// Thread-safe (one mutex); the clock must outlive the breaker.
#ifndef HML_SRC_SDK_RESILIENCE_CIRCUIT_BREAKER_H_
#define HML_SRC_SDK_RESILIENCE_CIRCUIT_BREAKER_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "hml/clock.h"
#include "hml/status.h"

namespace hml::sdk {

struct CircuitBreakerOptions {
  // Names the breaker in refusals and telemetry, e.g. "cloud-infer". Default: "cloud".
  std::string name = "cloud";
  // Consecutive failures that open the breaker. Default: 5.
  int failure_threshold = 5;
  // How long the breaker stays open before letting one probe through. Default: 5 s.
  int64_t open_duration_nanos = 5'000'000'000;
  // Codes that count as failures. Default: UNAVAILABLE, DEADLINE_EXCEEDED, INTERNAL.
  std::vector<StatusCode> failure_codes = {StatusCode::kUnavailable, StatusCode::kDeadlineExceeded,
                                           StatusCode::kInternal};

  // kInvalidArgument naming the field (empty name, threshold < 1, duration <= 0, kOk or
  // kCancelled among failure_codes).
  Status Validate() const;
};

enum class BreakerState { kClosed, kOpen, kHalfOpen };
// "closed", "open", "half-open".
std::string_view BreakerStateName(BreakerState state);

// Telemetry counters, cumulative since creation, plus the current state.
struct CircuitBreakerStats {
  BreakerState state = BreakerState::kClosed;
  int consecutive_failures = 0;
  int64_t admitted = 0;   // permits handed out (probes included)
  int64_t refused = 0;    // Acquire() refusals
  int64_t successes = 0;  // outcomes counted as success
  int64_t failures = 0;   // outcomes counted as failure
  int64_t opened = 0;     // transitions to open (from closed or a failed probe)
  int64_t probes = 0;     // half-open probes admitted
};

class CircuitBreaker {
 public:
  struct Permit {
    uint64_t generation = 0;
    bool probe = false;
  };

  static Result<std::unique_ptr<CircuitBreaker>> Create(const CircuitBreakerOptions& options,
                                                        Clock* clock);

  // A permit to make one call, or kUnavailable "circuit breaker '<name>' is open ...".
  Result<Permit> Acquire();
  // Reports the outcome of the call made under `permit`. Call exactly once per permit.
  void Release(const Permit& permit, const Status& outcome);

  // The current state (open turns into half-open here once open_duration has passed).
  BreakerState state();
  CircuitBreakerStats stats();
  const std::string& name() const { return options_.name; }

 private:
  CircuitBreaker(const CircuitBreakerOptions& options, Clock* clock);
  // Open -> half-open when the timer ran out. REQUIRES: mu_ held.
  void MaybeHalfOpen();
  // REQUIRES: mu_ held.
  void Open();
  bool IsFailure(StatusCode code) const { return (failure_mask_ >> static_cast<int>(code)) & 1u; }

  const CircuitBreakerOptions options_;
  Clock* const clock_;
  uint32_t failure_mask_ = 0;

  std::mutex mu_;
  BreakerState state_ = BreakerState::kClosed;
  uint64_t generation_ = 0;  // bumped on every state change
  int64_t opened_at_nanos_ = 0;
  bool probe_in_flight_ = false;
  CircuitBreakerStats stats_;
};

}  // namespace hml::sdk

#endif  // HML_SRC_SDK_RESILIENCE_CIRCUIT_BREAKER_H_

// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// ResilientCaller: makes one logical cloud call out of one or more attempts, combining the call
// deadline, RetryPolicy, RetryBudget, CircuitBreaker and (optional) hedging. It knows nothing of
// the network: an attempt is a function supplied by the transport layer.
//
// Asynchronous by design: an attempt is started with AttemptFn(info, done) and reports once
// through `done` (from any thread, or inline before returning); it returns a cancel callback that
// the driver calls for a hedging loser or when the deadline passes (the attempt then still
// reports, normally CANCELLED). Timers (backoff, hedge delay, deadline) run on an injected
// Scheduler, so with ManualScheduler + ManualClock a whole retry storm runs deterministically in
// microseconds. Async was chosen over a blocking loop because hedging needs two attempts in
// flight at once; a blocking wrapper is a condition variable around Call().
//
// One call, step by step:
//   1. The budget records the call; a timer is set at the deadline: when it fires the call ends
//      with DEADLINE_EXCEEDED and in-flight attempts are cancelled. No attempt starts at or after
//      the deadline.
//   2. Each attempt first takes a CircuitBreaker permit; a refusal ends the call at once with the
//      breaker's kUnavailable (the attempt function is not called); the permit is released with
//      the attempt's outcome.
//   3. A failed attempt (with no other attempt in flight) goes to RetryPolicy::Decide(); a retry
//      also needs one unit of RetryBudget, then starts after the jittered backoff. The final
//      error keeps the last attempt's code, with the reason the driver stopped as context.
//   4. Hedging (see hedging.h): after the p95 delay a second attempt is started if the first is
//      still running; the first OK wins and the other is cancelled. Successful attempt
//      latencies feed the tracker.
//
// Thread-safe: Call() may be used from many threads; each call's state has its own mutex, and
// no lock is held while AttemptFn, a cancel callback or CallDone runs. The ResilientCaller and
// the Scheduler must outlive every call in flight.
#ifndef HML_SRC_SDK_RESILIENCE_RESILIENT_CALLER_H_
#define HML_SRC_SDK_RESILIENCE_RESILIENT_CALLER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <random>

#include "hml/status.h"
#include "src/sdk/resilience/circuit_breaker.h"
#include "src/sdk/resilience/hedging.h"
#include "src/sdk/resilience/retry_budget.h"
#include "src/sdk/resilience/retry_policy.h"
#include "src/sdk/resilience/scheduler.h"

namespace hml::sdk {

// What an attempt is told.
struct AttemptInfo {
  int attempt_number = 1;      // 1-based, counting hedges
  bool hedge = false;          // a hedged copy rather than the first attempt or a retry
  int64_t deadline_nanos = 0;  // the call's deadline (Scheduler clock): the attempt's timeout
};

// Reports an attempt's outcome; call exactly once.
using AttemptDone = std::function<void(Status)>;
// Cancels an attempt in flight; may be empty (not cancellable). Idempotent.
using CancelFn = std::function<void()>;
// Starts one attempt.
using AttemptFn = std::function<CancelFn(const AttemptInfo&, AttemptDone)>;

// The per-call report, for the caller and for telemetry.
struct CallReport {
  Status status;                  // OK, or the final error
  int attempts = 0;               // attempts started (hedges included)
  bool hedged = false;            // a hedge was sent
  bool hedge_won = false;         // the OK answer came from a hedge
  bool breaker_refused = false;   // the circuit breaker refused an attempt
  bool budget_exhausted = false;  // a retry was refused by the budget
  int64_t elapsed_nanos = 0;      // from Call() to the report
};
using CallDone = std::function<void(const CallReport&)>;

struct ResilienceOptions {
  RetryPolicyOptions retry;
  // Whether calls share a RetryBudget. Default: true.
  bool use_budget = true;
  RetryBudgetOptions budget;
  // Whether attempts pass a CircuitBreaker. Default: true.
  bool use_breaker = true;
  CircuitBreakerOptions breaker;
  // Disabled by default (HedgingOptions::enabled).
  HedgingOptions hedging;
  // Seed of the jitter random source (std::mt19937_64). Default: 1; give each device its own
  // seed so a fleet's retries do not line up.
  uint64_t seed = 1;

  // The first failing Validate() of the parts.
  Status Validate() const;
};

class ResilientCaller {
 public:
  // `scheduler` (and its clock) must outlive the caller.
  static Result<std::unique_ptr<ResilientCaller>> Create(const ResilienceOptions& options,
                                                         Scheduler* scheduler);

  // Starts a call that must finish by `deadline_nanos` of the scheduler's clock. `on_done`
  // runs exactly once, possibly inside Call() (an inline attempt, an open breaker, a deadline
  // already past), otherwise on the thread that finished the last attempt or ran the timer.
  void Call(int64_t deadline_nanos, AttemptFn attempt, CallDone on_done);

  // Null when disabled in the options.
  CircuitBreaker* breaker() { return breaker_.get(); }
  RetryBudget* budget() { return budget_.get(); }
  HedgingPolicy& hedging() { return *hedging_; }
  const RetryPolicy& retry_policy() const { return policy_; }

 private:
  struct CallState;
  ResilientCaller(const ResilienceOptions& options, Scheduler* scheduler, RetryPolicy policy);

  void StartAttempt(const std::shared_ptr<CallState>& state, bool hedge);
  void OnAttemptDone(const std::shared_ptr<CallState>& state, size_t index, Status status);
  void OnHedgeTimer(const std::shared_ptr<CallState>& state);
  void OnDeadline(const std::shared_ptr<CallState>& state);
  // Ends the call: cancels timers and in-flight attempts, then reports. Unlocks `lock`.
  void Finish(const std::shared_ptr<CallState>& state, std::unique_lock<std::mutex>& lock,
              Status status);
  double Uniform01();

  const ResilienceOptions options_;
  Scheduler* const scheduler_;
  Clock* const clock_;
  const RetryPolicy policy_;
  std::unique_ptr<RetryBudget> budget_;
  std::unique_ptr<CircuitBreaker> breaker_;
  std::unique_ptr<HedgingPolicy> hedging_;
  std::mutex rng_mu_;
  std::mt19937_64 rng_;
};

}  // namespace hml::sdk

#endif  // HML_SRC_SDK_RESILIENCE_RESILIENT_CALLER_H_

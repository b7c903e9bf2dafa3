// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// RetryBudget: caps retries at a fraction of calls, so retries cannot multiply the load on a
// server that is already failing (a "retry storm").
//
// Modelled on Finagle's RetryBudget (a TTL'd deposit window), not on gRPC's token bucket: gRPC's
// retry throttling counts failures and successes, which does not give the stated contract "at
// most 10 % of calls are retried". Here every call deposits `retry_ratio` of a retry and every
// retry withdraws one; deposits expire after `window_nanos`. The window is a ring of
// `num_buckets` time buckets (default 10 x 1 s), so it slides in steps of window/num_buckets.
// Over any window:
//
//   retries allowed = min_retries_per_second * window_seconds + retry_ratio * calls in window
//
// The fixed reserve (default 1 retry per second, i.e. 10 per 10 s window) lets a low-traffic
// client still retry its occasional failure; under a storm of N calls per window at most
// reserve + 10 % of N retries go out. Hedged requests withdraw from the same budget.
//
// Thread-safe (one mutex). The clock must outlive the budget.
#ifndef HML_SRC_SDK_RESILIENCE_RETRY_BUDGET_H_
#define HML_SRC_SDK_RESILIENCE_RETRY_BUDGET_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "hml/clock.h"
#include "hml/status.h"

namespace hml::sdk {

struct RetryBudgetOptions {
  // Retries allowed per call made, over the window. Default: 0.1 (10 %).
  double retry_ratio = 0.1;
  // Retries allowed per second regardless of traffic. Default: 1.0 (10 per 10 s window).
  double min_retries_per_second = 1.0;
  // How long a call's deposit lasts. Default: 10 s.
  int64_t window_nanos = 10'000'000'000;
  // Buckets in the window; the window slides one bucket at a time. Default: 10.
  int num_buckets = 10;

  // kInvalidArgument naming the field (ratio outside [0, 1000], negative reserve, window <= 0,
  // num_buckets < 1 or window not divisible into buckets of at least 1 ns).
  Status Validate() const;
};

struct RetryBudgetCounters {
  int64_t calls = 0;            // calls deposited, since creation
  int64_t retries_allowed = 0;  // withdrawals granted
  int64_t retries_refused = 0;  // withdrawals refused: budget exhausted
};

class RetryBudget {
 public:
  static Result<std::unique_ptr<RetryBudget>> Create(const RetryBudgetOptions& options,
                                                     Clock* clock);

  // Records one call (an original request, not a retry).
  void RecordCall();
  // Takes one retry from the budget; false (and counted as refused) when the budget is spent.
  bool TryWithdrawRetry();
  // Retries still available in the current window (may be fractional; < 1 means none).
  double Balance();

  RetryBudgetCounters counters() const;

 private:
  RetryBudget(const RetryBudgetOptions& options, Clock* clock);
  struct Bucket {
    int64_t epoch = -1;  // bucket index since the clock's zero this slot currently holds
    int64_t calls = 0;
    int64_t retries = 0;
  };
  // Drops buckets older than the window. REQUIRES: mu_ held.
  void Slide(int64_t now_epoch);
  double BalanceLocked();

  const RetryBudgetOptions options_;
  Clock* const clock_;
  const int64_t bucket_nanos_;
  mutable std::mutex mu_;
  std::vector<Bucket> buckets_;  // ring indexed by epoch % num_buckets
  RetryBudgetCounters counters_;
};

}  // namespace hml::sdk

#endif  // HML_SRC_SDK_RESILIENCE_RETRY_BUDGET_H_

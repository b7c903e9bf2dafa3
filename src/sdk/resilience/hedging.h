// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Hedged requests ("The Tail at Scale", Dean and Barroso, 2013): when an attempt has taken
// longer than the p95 latency of recent successful attempts, send a second copy; the first OK
// answer wins and the other attempt is cancelled. At most ~5 % of calls are hedged when the
// latency distribution is stable, and the tail is cut to roughly the time of two independent
// draws.
//
// LatencyTracker keeps the last `window` successful attempt latencies in a ring and answers a
// percentile over them. HedgingPolicy turns it into a delay: none until `min_samples` latencies
// are known (a cold client does not hedge on guesses), then max(min_delay, percentile).
//
// The rules the driver (ResilientCaller) applies, stated here once:
//   - at most `max_hedges` extra attempts per call (default 1), started while the first attempt
//     of the call is still in flight; if the first attempt fails before the hedge is due, the
//     hedge is disarmed and the retry that follows is not hedged; hedges count against RetryPolicyOptions::max_attempts and
//     withdraw from the RetryBudget like retries, and each needs a CircuitBreaker permit;
//   - a hedge is not sent if it would start at or after the call's deadline;
//   - the first OK answer wins; the losers are cancelled through their cancel callback; an error
//     from one attempt while another is in flight waits for that other attempt.
//
// Both classes are thread-safe (one mutex each).
#ifndef HML_SRC_SDK_RESILIENCE_HEDGING_H_
#define HML_SRC_SDK_RESILIENCE_HEDGING_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "hml/status.h"

namespace hml::sdk {

class LatencyTracker {
 public:
  // REQUIRES: window >= 1 (checked by HedgingOptions::Validate()).
  explicit LatencyTracker(int window);

  void Record(int64_t latency_nanos);
  // The q-quantile (0 < q <= 1, nearest-rank) of the recorded window, or nullopt when empty.
  std::optional<int64_t> Percentile(double q) const;
  int size() const;

 private:
  mutable std::mutex mu_;
  std::vector<int64_t> ring_;
  size_t next_ = 0;
  bool full_ = false;
  mutable std::vector<int64_t> scratch_;  // reused by Percentile(): no allocation per query
};

struct HedgingOptions {
  // Whether hedges are sent at all. Default: false (hedging doubles load on the slow tail;
  // enable it per model where latency matters more than server cost).
  bool enabled = false;
  // The latency quantile after which a hedge goes out. Default: 0.95.
  double percentile = 0.95;
  // Successful attempt latencies remembered. Default: 100.
  int window = 100;
  // Latencies needed before any hedge is sent. Default: 20.
  int min_samples = 20;
  // The hedge delay is never shorter than this. Default: 1 ms.
  int64_t min_delay_nanos = 1'000'000;
  // Extra attempts per call. Default: 1.
  int max_hedges = 1;

  // kInvalidArgument naming the field.
  Status Validate() const;
};

class HedgingPolicy {
 public:
  static Result<std::unique_ptr<HedgingPolicy>> Create(const HedgingOptions& options);

  // Delay after the first attempt's start at which a hedge is sent; nullopt when hedging is
  // disabled or fewer than min_samples latencies are known.
  std::optional<int64_t> HedgeDelayNanos() const;
  // Records a successful attempt's latency.
  void RecordLatency(int64_t latency_nanos) { tracker_.Record(latency_nanos); }

  const HedgingOptions& options() const { return options_; }
  const LatencyTracker& tracker() const { return tracker_; }

 private:
  explicit HedgingPolicy(const HedgingOptions& options)
      : options_(options), tracker_(options.window) {}
  const HedgingOptions options_;
  LatencyTracker tracker_;
};

}  // namespace hml::sdk

#endif  // HML_SRC_SDK_RESILIENCE_HEDGING_H_

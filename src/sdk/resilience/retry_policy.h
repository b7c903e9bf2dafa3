// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// RetryPolicy: which failed cloud calls are tried again, how often, and how long to wait first.
//
// A declarative, bounded policy in the style of gRPC's service-config retry policy: only an
// allow-list of status codes is retried (default UNAVAILABLE and DEADLINE_EXCEEDED: the request
// did not reach a healthy server or did not finish, so trying again may help; every other code is
// an answer that a retry would only repeat), at most `max_attempts` attempts in all, and between
// attempts an exponential backoff with "full jitter" (AWS Architecture Blog, "Exponential Backoff
// And Jitter"): before retry r (r = 0 for the first retry)
//
//   cap(r)   = min(max_backoff, initial_backoff * multiplier^r)
//   delay(r) = uniform(0, cap(r))
//
// Full jitter spreads a fleet's retries over the whole interval, so devices that failed together
// (an outage) do not come back together. A retry is never scheduled to start at or after the
// call's deadline: an attempt with no time left cannot succeed and only loads the server.
//
// The policy is pure logic: it holds no clock and no random source. The caller passes the time
// and a uniform number in [0, 1) (ResilientCaller draws it from a seeded std::mt19937_64), so
// tests are deterministic. Immutable after Create(); thread-safe.
#ifndef HML_SRC_SDK_RESILIENCE_RETRY_POLICY_H_
#define HML_SRC_SDK_RESILIENCE_RETRY_POLICY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "hml/status.h"

namespace hml::sdk {

struct RetryPolicyOptions {
  // Attempts per call in all, the first included (hedged attempts count too). 1 disables
  // retries. Default: 5 (gRPC's upper limit for maxAttempts).
  int max_attempts = 5;
  // The backoff cap before the first retry. Default: 100 ms.
  int64_t initial_backoff_nanos = 100'000'000;
  // No backoff cap grows beyond this. Default: 5 s.
  int64_t max_backoff_nanos = 5'000'000'000;
  // Growth of the cap per retry. Default: 2.0.
  double backoff_multiplier = 2.0;
  // Codes that are retried; every other code ends the call. Default: UNAVAILABLE,
  // DEADLINE_EXCEEDED (a per-attempt timeout; the call's own deadline is enforced separately).
  std::vector<StatusCode> retryable_codes = {StatusCode::kUnavailable,
                                             StatusCode::kDeadlineExceeded};

  // kInvalidArgument naming the field when an option is out of range (max_attempts < 1,
  // non-positive backoffs, initial > max, multiplier < 1, kOk in retryable_codes).
  Status Validate() const;
};

// What to do after a failed attempt.
struct RetryDecision {
  bool retry = false;
  // Delay before the next attempt starts; meaningful when retry.
  int64_t delay_nanos = 0;
  // Why the call stops, for the final status message (empty when retry).
  std::string reason;
};

class RetryPolicy {
 public:
  // kInvalidArgument when options.Validate() fails.
  static Result<RetryPolicy> Create(const RetryPolicyOptions& options);

  // Whether `code` is in the retryable set.
  bool IsRetryable(StatusCode code) const {
    return (retryable_mask_ >> static_cast<int>(code)) & 1u;
  }

  // The upper bound of the jittered delay before retry `retry_index` (0 = first retry):
  // min(max_backoff, initial_backoff * multiplier^retry_index).
  int64_t BackoffCapNanos(int retry_index) const;

  // The jittered delay: uniform01 * BackoffCapNanos(retry_index), uniform01 in [0, 1).
  int64_t BackoffNanos(int retry_index, double uniform01) const;

  // Decides after attempt number `attempts_made` (1-based, including hedges) failed with
  // `status` at time `now_nanos`, for a call whose deadline is `deadline_nanos`. Retries only
  // when the code is retryable, attempts remain, and now + delay < deadline.
  // REQUIRES: !status.ok().
  RetryDecision Decide(const Status& status, int attempts_made, int64_t now_nanos,
                       int64_t deadline_nanos, double uniform01) const;

  const RetryPolicyOptions& options() const { return options_; }

 private:
  explicit RetryPolicy(const RetryPolicyOptions& options);

  RetryPolicyOptions options_;
  uint32_t retryable_mask_ = 0;
};

}  // namespace hml::sdk

#endif  // HML_SRC_SDK_RESILIENCE_RETRY_POLICY_H_

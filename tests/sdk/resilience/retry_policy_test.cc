// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/sdk/resilience/retry_policy.h"

#include <gtest/gtest.h>

#include <random>

namespace hml::sdk {
namespace {

constexpr int64_t kMs = 1'000'000;

RetryPolicy MakePolicy(const RetryPolicyOptions& options = {}) {
  Result<RetryPolicy> policy = RetryPolicy::Create(options);
  EXPECT_TRUE(policy.ok()) << policy.status().ToString();
  return *policy;
}

TEST(RetryPolicyTest, DefaultsRetryOnlyUnavailableAndDeadlineExceeded) {
  RetryPolicy policy = MakePolicy();
  for (int c = 1; c <= static_cast<int>(StatusCode::kUnauthenticated); ++c) {
    StatusCode code = static_cast<StatusCode>(c);
    bool expected = code == StatusCode::kUnavailable || code == StatusCode::kDeadlineExceeded;
    EXPECT_EQ(policy.IsRetryable(code), expected) << StatusCodeName(code);
  }
}

TEST(RetryPolicyTest, RetryableSetIsConfigurable) {
  RetryPolicyOptions options;
  options.retryable_codes = {StatusCode::kAborted};
  RetryPolicy policy = MakePolicy(options);
  EXPECT_TRUE(policy.IsRetryable(StatusCode::kAborted));
  EXPECT_FALSE(policy.IsRetryable(StatusCode::kUnavailable));
}

TEST(RetryPolicyTest, BackoffCapsDoubleUpToTheMaximum) {
  RetryPolicyOptions options;
  options.initial_backoff_nanos = 100 * kMs;
  options.max_backoff_nanos = 1000 * kMs;
  RetryPolicy policy = MakePolicy(options);
  EXPECT_EQ(policy.BackoffCapNanos(0), 100 * kMs);
  EXPECT_EQ(policy.BackoffCapNanos(1), 200 * kMs);
  EXPECT_EQ(policy.BackoffCapNanos(2), 400 * kMs);
  EXPECT_EQ(policy.BackoffCapNanos(3), 800 * kMs);
  EXPECT_EQ(policy.BackoffCapNanos(4), 1000 * kMs);
  EXPECT_EQ(policy.BackoffCapNanos(1000), 1000 * kMs);  // no overflow
}

TEST(RetryPolicyTest, JitteredDelaysStayWithinBoundsAndSpanThem) {
  RetryPolicy policy = MakePolicy();
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (int retry = 0; retry < 6; ++retry) {
    const int64_t cap = policy.BackoffCapNanos(retry);
    int64_t lo = cap;
    int64_t hi = 0;
    for (int i = 0; i < 2000; ++i) {
      int64_t d = policy.BackoffNanos(retry, u(rng));
      ASSERT_GE(d, 0);
      ASSERT_LE(d, cap);
      lo = std::min(lo, d);
      hi = std::max(hi, d);
    }
    // Full jitter: the delays cover [0, cap], not a narrow band near the cap.
    EXPECT_LT(lo, cap / 20) << "retry " << retry;
    EXPECT_GT(hi, cap - cap / 20) << "retry " << retry;
    if (retry > 0) {
      EXPECT_GT(cap, policy.BackoffCapNanos(retry - 1));
    }
  }
}

TEST(RetryPolicyTest, DecideRetriesRetryableCodesUntilMaxAttempts) {
  RetryPolicyOptions options;
  options.max_attempts = 3;
  RetryPolicy policy = MakePolicy(options);
  const int64_t far = 1'000'000 * kMs;
  EXPECT_TRUE(policy.Decide(UnavailableError("x"), 1, 0, far, 0.5).retry);
  EXPECT_TRUE(policy.Decide(UnavailableError("x"), 2, 0, far, 0.5).retry);
  RetryDecision last = policy.Decide(UnavailableError("x"), 3, 0, far, 0.5);
  EXPECT_FALSE(last.retry);
  EXPECT_NE(last.reason.find("3 of 3"), std::string::npos) << last.reason;
  RetryDecision internal = policy.Decide(InternalError("x"), 1, 0, far, 0.5);
  EXPECT_FALSE(internal.retry);
  EXPECT_NE(internal.reason.find("INTERNAL"), std::string::npos) << internal.reason;
}

TEST(RetryPolicyTest, DecideUsesTheRetryIndexAndNeverPassesTheDeadline) {
  RetryPolicy policy = MakePolicy();  // 100 ms initial
  RetryDecision d = policy.Decide(UnavailableError("x"), 2, 0, 10'000 * kMs, 0.5);
  ASSERT_TRUE(d.retry);
  EXPECT_EQ(d.delay_nanos, 100 * kMs);  // half of cap(1) = 200 ms
  // 100 ms of backoff from t=950 ms would start the retry at the 1 s deadline: refused.
  RetryDecision late = policy.Decide(UnavailableError("x"), 2, 950 * kMs, 1000 * kMs, 0.5);
  EXPECT_FALSE(late.retry);
  EXPECT_NE(late.reason.find("deadline"), std::string::npos);
  EXPECT_TRUE(policy.Decide(UnavailableError("x"), 2, 899 * kMs, 1000 * kMs, 0.5).retry);
}

TEST(RetryPolicyTest, ValidateRejectsBadOptions) {
  RetryPolicyOptions options;
  options.max_attempts = 0;
  EXPECT_EQ(RetryPolicy::Create(options).status().code(), StatusCode::kInvalidArgument);
  options = {};
  options.initial_backoff_nanos = 2 * options.max_backoff_nanos;
  EXPECT_EQ(RetryPolicy::Create(options).status().code(), StatusCode::kInvalidArgument);
  options = {};
  options.backoff_multiplier = 0.5;
  EXPECT_EQ(RetryPolicy::Create(options).status().code(), StatusCode::kInvalidArgument);
  options = {};
  options.retryable_codes = {StatusCode::kOk};
  Status s = RetryPolicy::Create(options).status();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("retryable_codes"), std::string_view::npos);
}

}  // namespace
}  // namespace hml::sdk

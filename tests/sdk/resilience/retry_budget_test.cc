// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/sdk/resilience/retry_budget.h"

#include <gtest/gtest.h>

namespace hml::sdk {
namespace {

constexpr int64_t kMs = 1'000'000;

std::unique_ptr<RetryBudget> MakeBudget(ManualClock* clock, RetryBudgetOptions options = {}) {
  auto budget = RetryBudget::Create(options, clock);
  EXPECT_TRUE(budget.ok()) << budget.status().ToString();
  return std::move(*budget);
}

TEST(RetryBudgetTest, LowTrafficClientCanStillRetryFromTheReserve) {
  ManualClock clock;
  auto budget = MakeBudget(&clock);  // reserve: 1/s over 10 s = 10
  budget->RecordCall();
  // One call deposits 0.1 retry; the reserve still allows 10 retries in the window.
  int allowed = 0;
  while (budget->TryWithdrawRetry()) allowed++;
  EXPECT_EQ(allowed, 10);
  EXPECT_EQ(budget->counters().retries_refused, 1);
}

TEST(RetryBudgetTest, FailureStormIsCappedAtTenPercentOfCallsAndRecovers) {
  ManualClock clock;
  auto budget = MakeBudget(&clock);
  // 2000 calls over 10 s (one per 5 ms), each failing and asking for a retry.
  int calls = 0;
  int retries = 0;
  for (int i = 0; i < 2000; ++i) {
    budget->RecordCall();
    calls++;
    if (budget->TryWithdrawRetry()) retries++;
    clock.Advance(5 * kMs);
  }
  // At most 10 % of calls plus the 10-retry reserve; and the budget was actually used.
  EXPECT_LE(retries, calls / 10 + 10);
  EXPECT_GE(retries, calls / 10);
  EXPECT_GT(budget->counters().retries_refused, 1500);

  // Another window of storm: deposits and withdrawals both expire, the cap holds per window.
  int retries2 = 0;
  for (int i = 0; i < 2000; ++i) {
    budget->RecordCall();
    if (budget->TryWithdrawRetry()) retries2++;
    clock.Advance(5 * kMs);
  }
  EXPECT_LE(retries2, 2000 / 10 + 10);

  // The storm ends; after a quiet window the reserve is back.
  clock.Advance(10'000 * kMs);
  EXPECT_GE(budget->Balance(), 10.0 - 1e-9);
  EXPECT_TRUE(budget->TryWithdrawRetry());
}

TEST(RetryBudgetTest, DepositsExpireAfterTheWindow) {
  ManualClock clock;
  RetryBudgetOptions options;
  options.min_retries_per_second = 0;
  auto budget = MakeBudget(&clock, options);
  for (int i = 0; i < 100; ++i) budget->RecordCall();  // deposits 10 retries at t=0
  EXPECT_NEAR(budget->Balance(), 10.0, 1e-9);
  clock.Advance(9'999 * kMs);  // still inside the 10 s window
  EXPECT_NEAR(budget->Balance(), 10.0, 1e-9);
  clock.Advance(1 * kMs);  // t = 10 s: the t=0 bucket slid out
  EXPECT_NEAR(budget->Balance(), 0.0, 1e-9);
  EXPECT_FALSE(budget->TryWithdrawRetry());
}

TEST(RetryBudgetTest, ValidateRejectsBadOptions) {
  ManualClock clock;
  RetryBudgetOptions options;
  options.retry_ratio = -0.1;
  EXPECT_EQ(RetryBudget::Create(options, &clock).status().code(), StatusCode::kInvalidArgument);
  options = {};
  options.num_buckets = 0;
  EXPECT_EQ(RetryBudget::Create(options, &clock).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(RetryBudget::Create({}, nullptr).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace hml::sdk

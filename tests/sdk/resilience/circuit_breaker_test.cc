// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/sdk/resilience/circuit_breaker.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace hml::sdk {
namespace {

constexpr int64_t kMs = 1'000'000;

std::unique_ptr<CircuitBreaker> MakeBreaker(ManualClock* clock, int threshold = 3,
                                            int64_t open_ms = 1000) {
  CircuitBreakerOptions options;
  options.name = "cloud-infer";
  options.failure_threshold = threshold;
  options.open_duration_nanos = open_ms * kMs;
  auto breaker = CircuitBreaker::Create(options, clock);
  EXPECT_TRUE(breaker.ok()) << breaker.status().ToString();
  return std::move(*breaker);
}

// One call through the breaker with the given outcome; returns whether it was admitted.
bool CallWith(CircuitBreaker& breaker, const Status& outcome) {
  Result<CircuitBreaker::Permit> permit = breaker.Acquire();
  if (!permit.ok()) return false;
  breaker.Release(*permit, outcome);
  return true;
}

TEST(CircuitBreakerTest, OpensAfterNConsecutiveFailuresOnly) {
  ManualClock clock;
  auto breaker = MakeBreaker(&clock, 3);
  EXPECT_TRUE(CallWith(*breaker, UnavailableError("down")));
  EXPECT_TRUE(CallWith(*breaker, DeadlineExceededError("slow")));
  EXPECT_TRUE(CallWith(*breaker, Status::Ok()));  // resets the streak
  EXPECT_TRUE(CallWith(*breaker, InternalError("bug")));
  EXPECT_TRUE(CallWith(*breaker, UnavailableError("down")));
  EXPECT_EQ(breaker->state(), BreakerState::kClosed);
  EXPECT_TRUE(CallWith(*breaker, UnavailableError("down")));
  EXPECT_EQ(breaker->state(), BreakerState::kOpen);
  CircuitBreakerStats stats = breaker->stats();
  EXPECT_EQ(stats.opened, 1);
  EXPECT_EQ(stats.failures, 5);
  EXPECT_EQ(stats.successes, 1);
}

TEST(CircuitBreakerTest, CallerErrorsProveTheServerIsUpAndCancelledIsNeutral) {
  ManualClock clock;
  auto breaker = MakeBreaker(&clock, 2);
  EXPECT_TRUE(CallWith(*breaker, UnavailableError("down")));
  EXPECT_TRUE(CallWith(*breaker, InvalidArgumentError("bad tensor")));  // resets
  EXPECT_TRUE(CallWith(*breaker, UnavailableError("down")));
  EXPECT_TRUE(CallWith(*breaker, CancelledError("hedge loser")));  // neither resets nor counts
  EXPECT_EQ(breaker->stats().consecutive_failures, 1);
  EXPECT_TRUE(CallWith(*breaker, UnavailableError("down")));
  EXPECT_EQ(breaker->state(), BreakerState::kOpen);
}

TEST(CircuitBreakerTest, RefusesWhileOpenNamingTheBreaker) {
  ManualClock clock;
  auto breaker = MakeBreaker(&clock, 1, 1000);
  EXPECT_TRUE(CallWith(*breaker, UnavailableError("down")));
  clock.Advance(999 * kMs);
  Result<CircuitBreaker::Permit> refused = breaker->Acquire();
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(refused.status().message().find("'cloud-infer' is open"), std::string_view::npos)
      << refused.status().ToString();
  EXPECT_EQ(breaker->stats().refused, 1);
}

TEST(CircuitBreakerTest, HalfOpensAfterTAndOneGoodProbeCloses) {
  ManualClock clock;
  auto breaker = MakeBreaker(&clock, 1, 1000);
  EXPECT_TRUE(CallWith(*breaker, UnavailableError("down")));
  clock.Advance(1000 * kMs);
  EXPECT_EQ(breaker->state(), BreakerState::kHalfOpen);
  Result<CircuitBreaker::Permit> probe = breaker->Acquire();
  ASSERT_TRUE(probe.ok());
  EXPECT_TRUE(probe->probe);
  // Only one probe at a time.
  Result<CircuitBreaker::Permit> second = breaker->Acquire();
  EXPECT_EQ(second.status().code(), StatusCode::kUnavailable);
  breaker->Release(*probe, Status::Ok());
  EXPECT_EQ(breaker->state(), BreakerState::kClosed);
  EXPECT_TRUE(CallWith(*breaker, Status::Ok()));
  EXPECT_EQ(breaker->stats().probes, 1);
}

TEST(CircuitBreakerTest, BadProbeReopensAndRestartsTheTimer) {
  ManualClock clock;
  auto breaker = MakeBreaker(&clock, 1, 1000);
  EXPECT_TRUE(CallWith(*breaker, UnavailableError("down")));
  clock.Advance(1500 * kMs);
  EXPECT_TRUE(CallWith(*breaker, UnavailableError("still down")));  // the probe
  EXPECT_EQ(breaker->state(), BreakerState::kOpen);
  EXPECT_EQ(breaker->stats().opened, 2);
  clock.Advance(999 * kMs);
  EXPECT_EQ(breaker->state(), BreakerState::kOpen);
  clock.Advance(1 * kMs);
  EXPECT_EQ(breaker->state(), BreakerState::kHalfOpen);
}

TEST(CircuitBreakerTest, CancelledProbeLetsAnotherProbeThrough) {
  ManualClock clock;
  auto breaker = MakeBreaker(&clock, 1, 1000);
  EXPECT_TRUE(CallWith(*breaker, UnavailableError("down")));
  clock.Advance(1000 * kMs);
  EXPECT_TRUE(CallWith(*breaker, CancelledError("deadline")));
  EXPECT_EQ(breaker->state(), BreakerState::kHalfOpen);
  EXPECT_TRUE(CallWith(*breaker, Status::Ok()));
  EXPECT_EQ(breaker->state(), BreakerState::kClosed);
}

TEST(CircuitBreakerTest, StaleOutcomeAfterOpeningDoesNotChangeState) {
  ManualClock clock;
  auto breaker = MakeBreaker(&clock, 1, 1000);
  Result<CircuitBreaker::Permit> slow = breaker->Acquire();
  ASSERT_TRUE(slow.ok());
  EXPECT_TRUE(CallWith(*breaker, UnavailableError("down")));  // opens
  breaker->Release(*slow, Status::Ok());                      // admitted before the breaker opened
  EXPECT_EQ(breaker->state(), BreakerState::kOpen);
}

TEST(CircuitBreakerTest, ConcurrentUseKeepsCountersConsistent) {
  ManualClock clock;
  auto breaker = MakeBreaker(&clock, 5, 1);
  std::vector<std::thread> threads;
  std::atomic<int64_t> admitted{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 5000; ++i) {
        // Streaks of 15 failures then 5 successes per thread.
        Status outcome = (i + t) % 20 >= 15 ? Status::Ok() : UnavailableError("x");
        if (CallWith(*breaker, outcome)) admitted++;
        if (i % 50 == 0) clock.Advance(1 * kMs);
      }
    });
  }
  for (std::thread& th : threads) th.join();
  CircuitBreakerStats stats = breaker->stats();
  EXPECT_EQ(stats.admitted, admitted.load());
  EXPECT_EQ(stats.admitted + stats.refused, 4 * 5000);
  EXPECT_EQ(stats.successes + stats.failures, stats.admitted);
  EXPECT_GT(stats.opened, 0);
}

TEST(CircuitBreakerTest, ValidateRejectsBadOptions) {
  ManualClock clock;
  CircuitBreakerOptions options;
  options.failure_threshold = 0;
  EXPECT_EQ(CircuitBreaker::Create(options, &clock).status().code(), StatusCode::kInvalidArgument);
  options = {};
  options.failure_codes = {StatusCode::kCancelled};
  EXPECT_EQ(CircuitBreaker::Create(options, &clock).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace hml::sdk

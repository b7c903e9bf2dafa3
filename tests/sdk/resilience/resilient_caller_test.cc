// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The driver against a scripted fake backend on a ManualScheduler: every attempt's outcome and
// latency is fixed by the test, time moves only through the scheduler, so each test is exact.
#include "src/sdk/resilience/resilient_caller.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <optional>
#include <random>
#include <thread>
#include <vector>

namespace hml::sdk {
namespace {

constexpr int64_t kMs = 1'000'000;

// A backend whose attempts finish after a scripted latency with a scripted status. Once the
// script runs out, every attempt gets `fallback`. Cancel reports CANCELLED at once.
class FakeBackend {
 public:
  struct Outcome {
    Status status;
    int64_t latency_nanos = 10 * kMs;
  };
  struct Started {
    AttemptInfo info;
    int64_t at_nanos = 0;
    bool cancelled = false;
  };

  explicit FakeBackend(ManualScheduler* scheduler) : scheduler_(scheduler) {}

  void Push(Status status, int64_t latency_nanos = 10 * kMs) {
    script_.push_back({std::move(status), latency_nanos});
  }
  void SetFallback(Status status, int64_t latency_nanos = 10 * kMs) {
    fallback_ = Outcome{std::move(status), latency_nanos};
  }

  AttemptFn Fn() {
    return [this](const AttemptInfo& info, AttemptDone done) -> CancelFn {
      Outcome outcome = fallback_;
      if (!script_.empty()) {
        outcome = script_.front();
        script_.pop_front();
      }
      size_t index = started_.size();
      started_.push_back({info, scheduler_->clock()->NowNanos(), false});
      auto shared_done = std::make_shared<AttemptDone>(std::move(done));
      Scheduler::TaskId task = scheduler_->ScheduleAt(
          scheduler_->clock()->NowNanos() + outcome.latency_nanos,
          [shared_done, status = outcome.status] { (*shared_done)(status); });
      return [this, index, task, shared_done] {
        scheduler_->Cancel(task);
        started_[index].cancelled = true;
        (*shared_done)(CancelledError("attempt cancelled"));
      };
    };
  }

  const std::vector<Started>& started() const { return started_; }

 private:
  ManualScheduler* scheduler_;
  std::deque<Outcome> script_;
  Outcome fallback_{Status::Ok(), 10 * kMs};
  std::vector<Started> started_;
};

class ResilientCallerTest : public ::testing::Test {
 protected:
  ResilientCallerTest() : scheduler_(&clock_), backend_(&scheduler_) {}

  void MakeCaller(const ResilienceOptions& options) {
    auto caller = ResilientCaller::Create(options, &scheduler_);
    ASSERT_TRUE(caller.ok()) << caller.status().ToString();
    caller_ = std::move(*caller);
  }

  // Runs one call to completion with a deadline `deadline_ms` from now.
  CallReport RunCall(int64_t deadline_ms = 10'000) {
    std::optional<CallReport> report;
    caller_->Call(clock_.NowNanos() + deadline_ms * kMs, backend_.Fn(),
                  [&](const CallReport& r) { report = r; });
    scheduler_.RunUntilIdle();
    EXPECT_TRUE(report.has_value());
    return report.value_or(CallReport{});
  }

  ManualClock clock_;
  ManualScheduler scheduler_;
  FakeBackend backend_;
  std::unique_ptr<ResilientCaller> caller_;
};

TEST_F(ResilientCallerTest, UnavailableThreeTimesThenOkSucceedsWithFourAttempts) {
  MakeCaller({});
  for (int i = 0; i < 3; ++i) backend_.Push(UnavailableError("server down"));
  backend_.Push(Status::Ok());
  CallReport report = RunCall();
  EXPECT_TRUE(report.status.ok()) << report.status.ToString();
  EXPECT_EQ(report.attempts, 4);
  EXPECT_EQ(backend_.started().size(), 4u);
  EXPECT_FALSE(report.hedged);
  // Each retry waited within its full-jitter bound: [0, 100 * 2^r ms] after the failure.
  const RetryPolicy& policy = caller_->retry_policy();
  for (int r = 0; r < 3; ++r) {
    int64_t failed_at = backend_.started()[r].at_nanos + 10 * kMs;
    int64_t gap = backend_.started()[r + 1].at_nanos - failed_at;
    EXPECT_GE(gap, 0);
    EXPECT_LE(gap, policy.BackoffCapNanos(r)) << "retry " << r;
  }
  EXPECT_EQ(report.elapsed_nanos, backend_.started()[3].at_nanos + 10 * kMs);
}

TEST_F(ResilientCallerTest, InternalMakesExactlyOneAttempt) {
  MakeCaller({});
  backend_.SetFallback(InternalError("model crashed"));
  CallReport report = RunCall();
  EXPECT_EQ(report.status.code(), StatusCode::kInternal);
  EXPECT_NE(report.status.message().find("model crashed"), std::string_view::npos);
  EXPECT_EQ(report.attempts, 1);
  EXPECT_EQ(backend_.started().size(), 1u);
}

TEST_F(ResilientCallerTest, GivesUpAfterMaxAttemptsWithTheLastCode) {
  ResilienceOptions options;
  options.retry.max_attempts = 3;
  MakeCaller(options);
  backend_.SetFallback(UnavailableError("server down"));
  CallReport report = RunCall();
  EXPECT_EQ(report.status.code(), StatusCode::kUnavailable);
  EXPECT_EQ(report.attempts, 3);
  EXPECT_NE(report.status.message().find("3 of 3"), std::string_view::npos)
      << report.status.ToString();
}

TEST_F(ResilientCallerTest, NoAttemptStartsAfterTheDeadline) {
  ResilienceOptions options;
  options.retry.max_attempts = 1000;
  options.retry.initial_backoff_nanos = 20 * kMs;
  options.retry.max_backoff_nanos = 50 * kMs;
  options.use_budget = false;
  options.use_breaker = false;
  MakeCaller(options);
  backend_.SetFallback(UnavailableError("server down"), 30 * kMs);
  const int64_t deadline = clock_.NowNanos() + 500 * kMs;
  CallReport report = RunCall(500);
  EXPECT_FALSE(report.status.ok());
  EXPECT_GT(report.attempts, 3);
  for (const auto& s : backend_.started()) {
    EXPECT_LT(s.at_nanos, deadline);
    EXPECT_EQ(s.info.deadline_nanos, deadline);
  }
  EXPECT_LE(report.elapsed_nanos, 500 * kMs);
}

// A retry whose backoff would reach the deadline is not scheduled: the call ends at once with
// the last error (so the router can fall back now), not later with DEADLINE_EXCEEDED.
TEST_F(ResilientCallerTest, StopsEarlyWhenTheBackoffWouldReachTheDeadline) {
  ResilienceOptions options;
  options.retry.max_attempts = 1000;
  options.retry.initial_backoff_nanos = 20 * kMs;
  options.retry.max_backoff_nanos = 50 * kMs;
  options.use_budget = false;
  options.use_breaker = false;
  MakeCaller(options);
  backend_.SetFallback(UnavailableError("server down"), 0);  // fails instantly
  CallReport report = RunCall(500);
  EXPECT_EQ(report.status.code(), StatusCode::kUnavailable) << report.status.ToString();
  EXPECT_NE(report.status.message().find("no time for another attempt"), std::string_view::npos)
      << report.status.ToString();
  EXPECT_LT(report.elapsed_nanos, 500 * kMs);
  EXPECT_GT(report.attempts, 10);
}

TEST_F(ResilientCallerTest, HangingAttemptIsCancelledAtTheDeadline) {
  MakeCaller({});
  backend_.SetFallback(Status::Ok(), 60'000 * kMs);  // answers only after a minute
  CallReport report = RunCall(200);
  EXPECT_EQ(report.status.code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(report.elapsed_nanos, 200 * kMs);
  ASSERT_EQ(backend_.started().size(), 1u);
  EXPECT_TRUE(backend_.started()[0].cancelled);
  // The cancelled attempt is neutral for the breaker.
  EXPECT_EQ(caller_->breaker()->stats().failures, 0);
}

TEST_F(ResilientCallerTest, BreakerOpensRefusesWithoutAttemptingHalfOpensAndRecovers) {
  ResilienceOptions options;
  options.retry.max_attempts = 1;  // one attempt per call: one breaker outcome per call
  options.breaker.name = "cloud-infer";
  options.breaker.failure_threshold = 3;
  options.breaker.open_duration_nanos = 1000 * kMs;
  MakeCaller(options);
  backend_.SetFallback(UnavailableError("server down"));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(RunCall().attempts, 1);
  EXPECT_EQ(caller_->breaker()->state(), BreakerState::kOpen);

  // Open: refused at once, the attempt function is not called.
  const size_t before = backend_.started().size();
  CallReport refused = RunCall();
  EXPECT_EQ(refused.status.code(), StatusCode::kUnavailable);
  EXPECT_TRUE(refused.breaker_refused);
  EXPECT_EQ(refused.attempts, 0);
  EXPECT_EQ(refused.elapsed_nanos, 0);
  EXPECT_NE(refused.status.message().find("'cloud-infer' is open"), std::string_view::npos);
  EXPECT_EQ(backend_.started().size(), before);

  // After T the breaker half-opens; a failing probe re-opens it.
  clock_.Advance(1000 * kMs);
  EXPECT_EQ(caller_->breaker()->state(), BreakerState::kHalfOpen);
  EXPECT_EQ(RunCall().attempts, 1);
  EXPECT_EQ(caller_->breaker()->state(), BreakerState::kOpen);
  EXPECT_TRUE(RunCall().breaker_refused);

  // After T again a good probe closes it and calls flow.
  clock_.Advance(1000 * kMs);
  backend_.SetFallback(Status::Ok());
  EXPECT_TRUE(RunCall().status.ok());
  EXPECT_EQ(caller_->breaker()->state(), BreakerState::kClosed);
  EXPECT_TRUE(RunCall().status.ok());
  CircuitBreakerStats stats = caller_->breaker()->stats();
  EXPECT_EQ(stats.opened, 2);
  EXPECT_EQ(stats.probes, 2);
  EXPECT_EQ(stats.refused, 2);
}

TEST_F(ResilientCallerTest, BudgetStopsRetriesInAFailureStormAndRecovers) {
  ResilienceOptions options;
  options.use_breaker = false;  // isolate the budget
  options.retry.max_attempts = 5;
  options.retry.initial_backoff_nanos = 1 * kMs;
  options.retry.max_backoff_nanos = 2 * kMs;
  MakeCaller(options);
  backend_.SetFallback(UnavailableError("server down"), 1 * kMs);
  // 1000 calls, one every 10 ms (at most ~13 ms with retries), all failing. Without a budget
  // that would be 5000 attempts.
  int calls = 0;
  int attempts = 0;
  int exhausted = 0;
  const int64_t storm_start = clock_.NowNanos();
  for (int i = 0; i < 1000; ++i) {
    CallReport r = RunCall(50);  // the 5 attempts of a call fit well inside 50 ms
    calls++;
    attempts += r.attempts;
    exhausted += r.budget_exhausted ? 1 : 0;
    clock_.Advance(std::max<int64_t>(0, 10 * kMs - r.elapsed_nanos));
  }
  const int retries = attempts - calls;
  // The storm spans under 20 s: 10 % of calls plus at most two windows' reserve (2 x 10).
  ASSERT_LT(clock_.NowNanos() - storm_start, 20'000 * kMs);
  EXPECT_LE(retries, calls / 10 + 20);
  EXPECT_GE(retries, calls / 20);  // and retries did happen
  EXPECT_GT(exhausted, 500);
  std::printf("storm: %d calls, %d attempts, %d retries (%.1f %%), %d calls refused a retry\n",
              calls, attempts, retries, 100.0 * retries / calls, exhausted);

  // After a quiet window the reserve lets a failed call retry again.
  clock_.Advance(10'000 * kMs);
  backend_.Push(UnavailableError("blip"), 1 * kMs);
  backend_.SetFallback(Status::Ok(), 1 * kMs);
  CallReport recovered = RunCall(1000);
  EXPECT_TRUE(recovered.status.ok());
  EXPECT_EQ(recovered.attempts, 2);
}

class HedgingTest : public ResilientCallerTest {
 protected:
  void SetUp() override {
    ResilienceOptions options;
    options.hedging.enabled = true;
    MakeCaller(options);
    // Successful latencies 1..100 ms, as if measured by earlier calls: p95 = 95 ms.
    for (int i = 1; i <= 100; ++i) caller_->hedging().RecordLatency(i * kMs);
    ASSERT_EQ(caller_->hedging().HedgeDelayNanos(), 95 * kMs);
    warm_attempts_ = backend_.started().size();
  }
  size_t warm_attempts_ = 0;
};

TEST_F(HedgingTest, SecondRequestOnlyAfterP95AndTheLoserIsCancelled) {
  backend_.Push(Status::Ok(), 1000 * kMs);  // the first attempt is stuck in the tail
  backend_.Push(Status::Ok(), 5 * kMs);     // the hedge answers fast
  const int64_t start = clock_.NowNanos();
  CallReport report = RunCall();
  ASSERT_TRUE(report.status.ok());
  EXPECT_TRUE(report.hedged);
  EXPECT_TRUE(report.hedge_won);
  EXPECT_EQ(report.attempts, 2);
  ASSERT_EQ(backend_.started().size(), warm_attempts_ + 2);
  const auto& first = backend_.started()[warm_attempts_];
  const auto& hedge = backend_.started()[warm_attempts_ + 1];
  EXPECT_FALSE(first.info.hedge);
  EXPECT_TRUE(hedge.info.hedge);
  EXPECT_EQ(hedge.at_nanos - start, 95 * kMs);  // exactly the p95 delay, not earlier
  EXPECT_TRUE(first.cancelled);
  EXPECT_FALSE(hedge.cancelled);
  EXPECT_EQ(report.elapsed_nanos, 100 * kMs);
}

TEST_F(HedgingTest, FastAnswerSendsNoHedge) {
  backend_.Push(Status::Ok(), 94 * kMs);
  CallReport report = RunCall();
  ASSERT_TRUE(report.status.ok());
  EXPECT_FALSE(report.hedged);
  EXPECT_EQ(report.attempts, 1);
  EXPECT_EQ(backend_.started().size(), warm_attempts_ + 1);
}

TEST_F(HedgingTest, FirstAttemptWinsWhenItAnswersBeforeTheHedge) {
  backend_.Push(Status::Ok(), 120 * kMs);  // slow, but...
  backend_.Push(Status::Ok(), 500 * kMs);  // ...the hedge is slower
  CallReport report = RunCall();
  ASSERT_TRUE(report.status.ok());
  EXPECT_TRUE(report.hedged);
  EXPECT_FALSE(report.hedge_won);
  EXPECT_EQ(report.elapsed_nanos, 120 * kMs);
  EXPECT_TRUE(backend_.started()[warm_attempts_ + 1].cancelled);
}

TEST_F(HedgingTest, AnErrorWaitsForTheOtherAttempt) {
  backend_.Push(Status::Ok(), 300 * kMs);                    // the first attempt: slow but OK
  backend_.Push(UnavailableError("hedge failed"), 1 * kMs);  // the hedge fails fast
  CallReport report = RunCall();
  ASSERT_TRUE(report.status.ok()) << report.status.ToString();
  EXPECT_EQ(report.attempts, 2);
  EXPECT_FALSE(report.hedge_won);
  EXPECT_EQ(report.elapsed_nanos, 300 * kMs);
}

// Real threads and real time: attempts finish on the scheduler's thread while four client threads
// start calls, with retries, hedges, cancellations and the breaker all active. Every call must
// report exactly once, and the attempts the reports count must be the attempts started.
TEST(ResilientCallerThreadTest, ConcurrentCallsEachReportExactlyOnce) {
  ThreadScheduler scheduler(RealClock());
  ResilienceOptions options;
  options.retry.initial_backoff_nanos = 200'000;  // 0.2 ms
  options.retry.max_backoff_nanos = 1 * kMs;
  options.breaker.open_duration_nanos = 2 * kMs;
  options.hedging.enabled = true;
  options.hedging.min_samples = 1;
  auto created = ResilientCaller::Create(options, &scheduler);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  ResilientCaller& caller = **created;

  std::atomic<int> started{0};
  std::mutex rng_mu;
  std::mt19937 rng(7);
  AttemptFn attempt = [&](const AttemptInfo&, AttemptDone done) -> CancelFn {
    started++;
    int64_t latency;
    Status status;
    {
      std::lock_guard<std::mutex> lock(rng_mu);
      latency = static_cast<int64_t>(rng() % 300'000);  // up to 0.3 ms
      int roll = static_cast<int>(rng() % 100);
      if (roll < 30) {
        status = UnavailableError("flaky");
      } else if (roll < 35) {
        status = InternalError("bug");
      }
    }
    auto shared_done = std::make_shared<AttemptDone>(std::move(done));
    auto reported = std::make_shared<std::atomic<bool>>(false);
    auto report_once = [shared_done, reported](Status s) {
      if (!reported->exchange(true)) (*shared_done)(std::move(s));
    };
    Scheduler::TaskId task = scheduler.ScheduleAt(RealClock()->NowNanos() + latency,
                                                  [report_once, status] { report_once(status); });
    return [&scheduler, task, report_once] {
      scheduler.Cancel(task);
      report_once(CancelledError("cancelled"));
    };
  };

  constexpr int kThreads = 4;
  constexpr int kCallsPerThread = 150;
  std::mutex mu;
  std::condition_variable cv;
  int reports = 0;
  int attempts_reported = 0;
  int bad_codes = 0;
  std::vector<std::atomic<int>> per_call(kThreads * kCallsPerThread);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCallsPerThread; ++i) {
        int id = t * kCallsPerThread + i;
        caller.Call(RealClock()->NowNanos() + 50 * kMs, attempt, [&, id](const CallReport& r) {
          per_call[id]++;
          StatusCode c = r.status.code();
          std::lock_guard<std::mutex> lock(mu);
          if (c != StatusCode::kOk && c != StatusCode::kUnavailable && c != StatusCode::kInternal &&
              c != StatusCode::kDeadlineExceeded) {
            bad_codes++;
          }
          attempts_reported += r.attempts;
          reports++;
          cv.notify_all();
        });
      }
    });
  }
  for (std::thread& th : threads) th.join();
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(20),
                            [&] { return reports == kThreads * kCallsPerThread; }))
        << reports << " of " << kThreads * kCallsPerThread << " calls reported";
  }
  // Let stray timers (deadline tasks were cancelled; attempts cancelled) settle.
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  for (int id = 0; id < kThreads * kCallsPerThread; ++id) {
    ASSERT_EQ(per_call[id].load(), 1) << "call " << id;
  }
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(bad_codes, 0);
  EXPECT_EQ(attempts_reported, started.load());
  CircuitBreakerStats b = caller.breaker()->stats();
  RetryBudgetCounters budget = caller.budget()->counters();
  std::printf(
      "threads: %d attempts; breaker admitted %lld refused %lld opened %lld; "
      "budget retries %lld refused %lld\n",
      started.load(), static_cast<long long>(b.admitted), static_cast<long long>(b.refused),
      static_cast<long long>(b.opened), static_cast<long long>(budget.retries_allowed),
      static_cast<long long>(budget.retries_refused));
  EXPECT_EQ(b.admitted, started.load());  // every attempt passed the breaker
  EXPECT_GT(budget.retries_allowed, 0);   // retries or hedges happened
}

TEST_F(HedgingTest, EarlyFailureDisarmsTheHedgeAndTheRetryIsNotHedged) {
  ResilienceOptions options;
  options.hedging.enabled = true;
  options.retry.initial_backoff_nanos = 1 * kMs;
  options.retry.max_backoff_nanos = 1 * kMs;
  MakeCaller(options);
  for (int i = 1; i <= 100; ++i) caller_->hedging().RecordLatency(i * kMs);
  const size_t before = backend_.started().size();
  backend_.Push(UnavailableError("blip"), 50 * kMs);  // fails before the 95 ms hedge delay
  backend_.Push(Status::Ok(), 200 * kMs);             // the retry is slow, but is not hedged
  CallReport report = RunCall();
  ASSERT_TRUE(report.status.ok()) << report.status.ToString();
  EXPECT_EQ(report.attempts, 2);
  EXPECT_FALSE(report.hedged);
  EXPECT_EQ(backend_.started().size(), before + 2);
}

TEST_F(ResilientCallerTest, CreateRejectsBadOptions) {
  ResilienceOptions options;
  options.breaker.failure_threshold = 0;
  EXPECT_EQ(ResilientCaller::Create(options, &scheduler_).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ResilientCaller::Create({}, nullptr).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace hml::sdk

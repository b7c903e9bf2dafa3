// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/sdk/resilience/resilient_caller.h"

#include <string>
#include <utility>
#include <vector>

namespace hml::sdk {

Status ResilienceOptions::Validate() const {
  HML_RETURN_IF_ERROR(retry.Validate());
  if (use_budget) HML_RETURN_IF_ERROR(budget.Validate());
  if (use_breaker) HML_RETURN_IF_ERROR(breaker.Validate());
  HML_RETURN_IF_ERROR(hedging.Validate());
  return Status::Ok();
}

struct ResilientCaller::CallState {
  struct Attempt {
    int number = 0;
    bool hedge = false;
    int64_t start_nanos = 0;
    bool has_permit = false;
    CircuitBreaker::Permit permit;
    CancelFn cancel;
    bool finished = false;
  };

  std::mutex mu;
  AttemptFn attempt_fn;
  CallDone on_done;
  int64_t start_nanos = 0;
  int64_t deadline_nanos = 0;
  bool done = false;
  int in_flight = 0;
  int hedges = 0;
  std::vector<Attempt> attempts;  // every attempt started, in order
  Status last_error;
  CallReport report;
  // Pending timers, 0 when none.
  Scheduler::TaskId deadline_task = 0;
  Scheduler::TaskId hedge_task = 0;
  Scheduler::TaskId retry_task = 0;
};

Result<std::unique_ptr<ResilientCaller>> ResilientCaller::Create(const ResilienceOptions& options,
                                                                 Scheduler* scheduler) {
  if (scheduler == nullptr || scheduler->clock() == nullptr) {
    return InvalidArgumentError("ResilientCaller: scheduler (with a clock) is required");
  }
  HML_RETURN_IF_ERROR(options.Validate());
  HML_ASSIGN_OR_RETURN(RetryPolicy policy, RetryPolicy::Create(options.retry));
  std::unique_ptr<ResilientCaller> caller(
      new ResilientCaller(options, scheduler, std::move(policy)));
  if (options.use_budget) {
    HML_ASSIGN_OR_RETURN(caller->budget_, RetryBudget::Create(options.budget, caller->clock_));
  }
  if (options.use_breaker) {
    HML_ASSIGN_OR_RETURN(caller->breaker_, CircuitBreaker::Create(options.breaker, caller->clock_));
  }
  HML_ASSIGN_OR_RETURN(caller->hedging_, HedgingPolicy::Create(options.hedging));
  return caller;
}

ResilientCaller::ResilientCaller(const ResilienceOptions& options, Scheduler* scheduler,
                                 RetryPolicy policy)
    : options_(options),
      scheduler_(scheduler),
      clock_(scheduler->clock()),
      policy_(std::move(policy)),
      rng_(options.seed) {}

double ResilientCaller::Uniform01() {
  std::lock_guard<std::mutex> lock(rng_mu_);
  // 53 random bits -> [0, 1), independent of the standard library's distribution code.
  return static_cast<double>(rng_() >> 11) * 0x1.0p-53;
}

void ResilientCaller::Call(int64_t deadline_nanos, AttemptFn attempt, CallDone on_done) {
  auto state = std::make_shared<CallState>();
  state->attempt_fn = std::move(attempt);
  state->on_done = std::move(on_done);
  state->start_nanos = clock_->NowNanos();
  state->deadline_nanos = deadline_nanos;
  if (budget_) budget_->RecordCall();
  {
    std::unique_lock<std::mutex> lock(state->mu);
    if (state->start_nanos >= deadline_nanos) {
      Finish(state, lock, DeadlineExceededError("call deadline passed before the first attempt"));
      return;
    }
    state->deadline_task =
        scheduler_->ScheduleAt(deadline_nanos, [this, state] { OnDeadline(state); });
  }
  StartAttempt(state, /*hedge=*/false);
}

void ResilientCaller::StartAttempt(const std::shared_ptr<CallState>& state, bool hedge) {
  CircuitBreaker::Permit permit;
  bool has_permit = false;
  if (breaker_) {
    Result<CircuitBreaker::Permit> acquired = breaker_->Acquire();
    if (!acquired.ok()) {
      if (hedge) return;  // no hedge; the first attempt carries on
      std::unique_lock<std::mutex> lock(state->mu);
      if (state->done) return;
      state->report.breaker_refused = true;
      Finish(state, lock, acquired.status());
      return;
    }
    permit = *acquired;
    has_permit = true;
  }

  AttemptInfo info;
  size_t index = 0;
  {
    std::unique_lock<std::mutex> lock(state->mu);
    int64_t now = clock_->NowNanos();
    if (state->done || now >= state->deadline_nanos) {
      // Lost a race with the deadline timer: the attempt never starts.
      if (has_permit) breaker_->Release(permit, CancelledError("call already finished"));
      return;
    }
    CallState::Attempt a;
    a.number = static_cast<int>(state->attempts.size()) + 1;
    a.hedge = hedge;
    a.start_nanos = now;
    a.has_permit = has_permit;
    a.permit = permit;
    index = state->attempts.size();
    state->attempts.push_back(std::move(a));
    state->in_flight++;
    if (hedge) {
      state->hedges++;
      state->report.hedged = true;
    }
    info.attempt_number = static_cast<int>(index) + 1;
    info.hedge = hedge;
    info.deadline_nanos = state->deadline_nanos;

    // Arm the hedge timer: after the first attempt, or after a hedge while more are allowed.
    bool first = index == 0;
    if ((first || hedge) && state->hedges < options_.hedging.max_hedges) {
      std::optional<int64_t> delay = hedging_->HedgeDelayNanos();
      if (delay && now + *delay < state->deadline_nanos) {
        state->hedge_task =
            scheduler_->ScheduleAt(now + *delay, [this, state] { OnHedgeTimer(state); });
      }
    }
  }

  CancelFn cancel = state->attempt_fn(info, [this, state, index](Status status) {
    OnAttemptDone(state, index, std::move(status));
  });

  bool cancel_now = false;
  {
    std::lock_guard<std::mutex> lock(state->mu);
    CallState::Attempt& a = state->attempts[index];
    if (!a.finished) {
      // The call may have finished while the attempt was starting; then nobody else will
      // cancel this attempt.
      if (state->done) {
        cancel_now = true;
      } else {
        a.cancel = cancel;
      }
    }
  }
  if (cancel_now && cancel) cancel();
}

void ResilientCaller::OnAttemptDone(const std::shared_ptr<CallState>& state, size_t index,
                                    Status status) {
  std::unique_lock<std::mutex> lock(state->mu);
  CallState::Attempt& a = state->attempts[index];
  if (a.finished) return;  // a second report for one attempt is ignored
  a.finished = true;
  a.cancel = nullptr;
  state->in_flight--;
  int64_t now = clock_->NowNanos();
  // The breaker never calls back into the driver, so its lock nests safely inside ours.
  if (a.has_permit) breaker_->Release(a.permit, status);
  if (state->done) return;  // a cancelled loser or an attempt outliving the deadline

  if (status.ok()) {
    hedging_->RecordLatency(now - a.start_nanos);
    state->report.hedge_won = a.hedge;
    Finish(state, lock, Status::Ok());
    return;
  }
  state->last_error = status;
  if (state->in_flight > 0) return;  // another attempt may still answer OK
  if (state->hedge_task != 0) {
    // The first attempt failed before its hedge was due: a hedge would copy the retry instead.
    // Scheduler::Cancel never runs tasks, so calling it under our lock is safe.
    scheduler_->Cancel(state->hedge_task);
    state->hedge_task = 0;
  }

  const int attempts = static_cast<int>(state->attempts.size());
  RetryDecision decision =
      policy_.Decide(status, attempts, now, state->deadline_nanos, Uniform01());
  if (!decision.retry) {
    Finish(state, lock,
           status.WithContext("cloud call failed after " + std::to_string(attempts) +
                              " attempt(s) (" + decision.reason + ")"));
    return;
  }
  if (budget_ && !budget_->TryWithdrawRetry()) {
    state->report.budget_exhausted = true;
    Finish(state, lock,
           status.WithContext("cloud call failed after " + std::to_string(attempts) +
                              " attempt(s) (retry budget exhausted)"));
    return;
  }
  state->retry_task = scheduler_->ScheduleAt(now + decision.delay_nanos, [this, state] {
    {
      std::lock_guard<std::mutex> l(state->mu);
      state->retry_task = 0;
    }
    StartAttempt(state, /*hedge=*/false);
  });
}

void ResilientCaller::OnHedgeTimer(const std::shared_ptr<CallState>& state) {
  {
    std::lock_guard<std::mutex> lock(state->mu);
    state->hedge_task = 0;
    if (state->done || state->in_flight == 0) return;
    if (state->hedges >= options_.hedging.max_hedges) return;
    if (static_cast<int>(state->attempts.size()) >= policy_.options().max_attempts) return;
    if (clock_->NowNanos() >= state->deadline_nanos) return;
    if (budget_ && !budget_->TryWithdrawRetry()) return;
  }
  StartAttempt(state, /*hedge=*/true);
}

void ResilientCaller::OnDeadline(const std::shared_ptr<CallState>& state) {
  std::unique_lock<std::mutex> lock(state->mu);
  state->deadline_task = 0;
  if (state->done) return;
  std::string message =
      "call deadline passed after " + std::to_string(state->attempts.size()) + " attempt(s)";
  if (!state->last_error.ok()) message += "; last error: " + state->last_error.ToString();
  Finish(state, lock, DeadlineExceededError(message));
}

void ResilientCaller::Finish(const std::shared_ptr<CallState>& state,
                             std::unique_lock<std::mutex>& lock, Status status) {
  state->done = true;
  state->report.status = std::move(status);
  state->report.attempts = static_cast<int>(state->attempts.size());
  state->report.elapsed_nanos = clock_->NowNanos() - state->start_nanos;
  std::vector<CancelFn> cancels;
  for (CallState::Attempt& a : state->attempts) {
    if (!a.finished && a.cancel) cancels.push_back(std::move(a.cancel));
    a.cancel = nullptr;
  }
  std::vector<Scheduler::TaskId> timers;
  for (Scheduler::TaskId* t : {&state->deadline_task, &state->hedge_task, &state->retry_task}) {
    if (*t != 0) timers.push_back(*t);
    *t = 0;
  }
  CallReport report = state->report;
  CallDone on_done = std::move(state->on_done);
  lock.unlock();

  for (Scheduler::TaskId t : timers) scheduler_->Cancel(t);
  for (CancelFn& cancel : cancels) cancel();
  if (on_done) on_done(report);
}

}  // namespace hml::sdk

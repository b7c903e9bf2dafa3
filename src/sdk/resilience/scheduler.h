// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Scheduler: runs a task at a time of an injected Clock. The resilience driver needs timers
// (backoff before a retry, the hedge delay, the call deadline) but owns no thread: the transport
// supplies a Scheduler backed by its event loop (gRPC's completion queue thread, the in-process
// transport's loop, the fleet simulator's virtual time).
//
// ThreadScheduler is a plain implementation for apps and tests with real time: one timer
// thread that sleeps on a condition variable until the earliest task is due.
//
// ManualScheduler is the deterministic one for tests and the simulator: tasks run only inside
// RunUntilIdle()/RunUntil(), in time order (ties in scheduling order), and the ManualClock is
// advanced to each task's time before it runs. Tasks may schedule or cancel other tasks.
#ifndef HML_SRC_SDK_RESILIENCE_SCHEDULER_H_
#define HML_SRC_SDK_RESILIENCE_SCHEDULER_H_

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <utility>

#include "hml/clock.h"

namespace hml::sdk {

class Scheduler {
 public:
  using TaskId = uint64_t;
  virtual ~Scheduler() = default;
  // Runs `task` once at or after `when_nanos` of clock(); a time in the past means "soon".
  // Thread-safe. Never runs the task inside this call.
  virtual TaskId ScheduleAt(int64_t when_nanos, std::function<void()> task) = 0;
  // Best effort: a task that has not started will not run. Unknown ids are ignored.
  virtual void Cancel(TaskId id) = 0;
  virtual Clock* clock() = 0;
};

class ManualScheduler final : public Scheduler {
 public:
  // `clock` must outlive the scheduler.
  explicit ManualScheduler(ManualClock* clock) : clock_(clock) {}

  TaskId ScheduleAt(int64_t when_nanos, std::function<void()> task) override;
  void Cancel(TaskId id) override;
  Clock* clock() override { return clock_; }

  // Runs due tasks (advancing the clock) until none is left; returns how many ran.
  // REQUIRES: not called from inside a task.
  int RunUntilIdle();
  // Like RunUntilIdle() but stops before tasks later than `until_nanos`; the clock ends at
  // max(now, until_nanos).
  int RunUntil(int64_t until_nanos);
  size_t pending() const;

 private:
  ManualClock* const clock_;
  mutable std::mutex mu_;
  TaskId next_id_ = 1;
  // Ordered by (time, id): ties run in scheduling order.
  std::map<std::pair<int64_t, TaskId>, std::function<void()>> tasks_;
};

// Runs tasks on one owned thread, in time order. Tasks must be short (they delay the others).
// The destructor stops the thread; tasks not yet run are dropped, so destroy the scheduler only
// after the calls using it have finished.
class ThreadScheduler final : public Scheduler {
 public:
  // `clock` must be a real-time clock (RealClock()) and outlive the scheduler: the thread sleeps
  // in real time for the clock's differences.
  explicit ThreadScheduler(Clock* clock);
  ~ThreadScheduler() override;
  ThreadScheduler(const ThreadScheduler&) = delete;
  ThreadScheduler& operator=(const ThreadScheduler&) = delete;

  TaskId ScheduleAt(int64_t when_nanos, std::function<void()> task) override;
  void Cancel(TaskId id) override;
  Clock* clock() override { return clock_; }

 private:
  void Loop();

  Clock* const clock_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  TaskId next_id_ = 1;
  std::map<std::pair<int64_t, TaskId>, std::function<void()>> tasks_;
  std::thread thread_;  // last: starts after the members it uses
};

}  // namespace hml::sdk

#endif  // HML_SRC_SDK_RESILIENCE_SCHEDULER_H_

// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// TimerQueue: one thread that runs tasks at given times of a Clock, from a priority queue
// ordered by due time (ties in the order they were scheduled). The in-process transport
// schedules every delivery, timeout and callback of an emulated link on one, so a simulator with
// thousands of devices shares a single queue and a single thread instead of a thread or a
// sleeping call per message: scheduling is O(log n) and an idle queue costs nothing.
//
// Waiting: the thread waits on a condition variable until the earliest task is due, computing
// the wait from clock->NowNanos(). That is exact for RealClock(). For a clock that only moves when
// told to (ManualClock), call Wake() after moving it, or set poll_nanos so the thread looks again
// at that real-time interval.
//
// Tasks run on the queue's thread, one at a time, outside its lock: they may Schedule() more
// tasks. A task must be short and must not block on another task of the same queue.
//
// Thread-safe. The destructor stops the thread after the task running (if any) returns; tasks
// not yet due are destroyed without running (their captures are released).
#ifndef HML_SRC_SIM_TIMER_QUEUE_H_
#define HML_SRC_SIM_TIMER_QUEUE_H_

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <queue>
#include <thread>
#include <vector>

#include "hml/clock.h"

namespace hml::sim {

struct TimerQueueOptions {
  // The clock due times are on; must outlive the queue. Default: RealClock().
  Clock* clock = RealClock();
  // Longest real-time wait before the thread looks at the clock again; 0 = wait exactly until
  // the next due time (right for RealClock()). Default: 0.
  int64_t poll_nanos = 0;
};

class TimerQueue {
 public:
  explicit TimerQueue(TimerQueueOptions options = {});
  ~TimerQueue();
  TimerQueue(const TimerQueue&) = delete;
  TimerQueue& operator=(const TimerQueue&) = delete;

  // Runs `task` on the queue's thread once clock()->NowNanos() >= due_nanos (at once when it is
  // already past). Tasks scheduled after the destructor began are dropped.
  void Schedule(int64_t due_nanos, std::function<void()> task);
  // Makes the thread look at the clock now (after a ManualClock was advanced).
  void Wake();
  // Tasks waiting to run.
  size_t pending() const;
  // True when no task is running and none is due at the clock's current time: what a test that
  // steps a ManualClock waits for before the next step, so a loaded machine cannot make virtual
  // time run ahead of the tasks due.
  bool Idle() const;

  Clock* clock() const { return options_.clock; }

 private:
  struct Item {
    int64_t due_nanos;
    uint64_t seq;
    std::function<void()> task;
  };
  struct Later {
    bool operator()(const Item& a, const Item& b) const {
      return a.due_nanos != b.due_nanos ? a.due_nanos > b.due_nanos : a.seq > b.seq;
    }
  };
  void Loop();

  const TimerQueueOptions options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::priority_queue<Item, std::vector<Item>, Later> items_;  // guarded by mu_
  uint64_t next_seq_ = 0;                                      // guarded by mu_
  bool stop_ = false;                                          // guarded by mu_
  bool running_ = false;                                       // guarded by mu_
  std::thread thread_;
};

}  // namespace hml::sim

#endif  // HML_SRC_SIM_TIMER_QUEUE_H_

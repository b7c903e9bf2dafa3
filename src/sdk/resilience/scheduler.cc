// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/sdk/resilience/scheduler.h"

#include <chrono>
#include <limits>

namespace hml::sdk {

Scheduler::TaskId ManualScheduler::ScheduleAt(int64_t when_nanos, std::function<void()> task) {
  std::lock_guard<std::mutex> lock(mu_);
  TaskId id = next_id_++;
  tasks_.emplace(std::make_pair(when_nanos, id), std::move(task));
  return id;
}

void ManualScheduler::Cancel(TaskId id) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = tasks_.begin(); it != tasks_.end(); ++it) {
    if (it->first.second == id) {
      tasks_.erase(it);
      return;
    }
  }
}

size_t ManualScheduler::pending() const {
  std::lock_guard<std::mutex> lock(mu_);
  return tasks_.size();
}

int ManualScheduler::RunUntil(int64_t until_nanos) {
  int ran = 0;
  while (true) {
    std::function<void()> task;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (tasks_.empty() || tasks_.begin()->first.first > until_nanos) break;
      auto it = tasks_.begin();
      int64_t when = it->first.first;
      if (when > clock_->NowNanos()) clock_->Advance(when - clock_->NowNanos());
      task = std::move(it->second);
      tasks_.erase(it);
    }
    task();
    ran++;
  }
  if (until_nanos != std::numeric_limits<int64_t>::max() && until_nanos > clock_->NowNanos()) {
    clock_->Advance(until_nanos - clock_->NowNanos());
  }
  return ran;
}

int ManualScheduler::RunUntilIdle() { return RunUntil(std::numeric_limits<int64_t>::max()); }

ThreadScheduler::ThreadScheduler(Clock* clock) : clock_(clock), thread_([this] { Loop(); }) {}

ThreadScheduler::~ThreadScheduler() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

Scheduler::TaskId ThreadScheduler::ScheduleAt(int64_t when_nanos, std::function<void()> task) {
  TaskId id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    id = next_id_++;
    tasks_.emplace(std::make_pair(when_nanos, id), std::move(task));
  }
  cv_.notify_all();
  return id;
}

void ThreadScheduler::Cancel(TaskId id) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = tasks_.begin(); it != tasks_.end(); ++it) {
    if (it->first.second == id) {
      tasks_.erase(it);
      return;
    }
  }
}

void ThreadScheduler::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    if (tasks_.empty()) {
      cv_.wait(lock);
      continue;
    }
    int64_t wait = tasks_.begin()->first.first - clock_->NowNanos();
    if (wait > 0) {
      cv_.wait_for(lock, std::chrono::nanoseconds(wait));
      continue;  // re-check: a new earlier task, a cancel, or stop
    }
    std::function<void()> task = std::move(tasks_.begin()->second);
    tasks_.erase(tasks_.begin());
    lock.unlock();
    task();
    lock.lock();
  }
}

}  // namespace hml::sdk

// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/sdk/resilience/scheduler.h"

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

}  // namespace hml::sdk

// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/sim/timer_queue.h"

#include <algorithm>
#include <chrono>
#include <utility>

namespace hml::sim {

TimerQueue::TimerQueue(TimerQueueOptions options) : options_(options) {
  thread_ = std::thread([this] { Loop(); });
}

TimerQueue::~TimerQueue() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
  // Tasks not run are destroyed here, outside the lock: their captures may own other queues'
  // users, whose destructors must not find this lock held.
  std::priority_queue<Item, std::vector<Item>, Later> dropped;
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::swap(dropped, items_);
  }
}

void TimerQueue::Schedule(int64_t due_nanos, std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return;
    const bool earliest = items_.empty() || due_nanos < items_.top().due_nanos;
    items_.push(Item{due_nanos, next_seq_++, std::move(task)});
    if (!earliest) return;
  }
  cv_.notify_one();
}

void TimerQueue::Wake() { cv_.notify_all(); }

size_t TimerQueue::pending() const {
  std::lock_guard<std::mutex> lock(mu_);
  return items_.size();
}

bool TimerQueue::Idle() const {
  std::lock_guard<std::mutex> lock(mu_);
  return !running_ && (items_.empty() || items_.top().due_nanos > options_.clock->NowNanos());
}

void TimerQueue::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    if (items_.empty()) {
      if (options_.poll_nanos > 0) {
        cv_.wait_for(lock, std::chrono::nanoseconds(options_.poll_nanos));
      } else {
        cv_.wait(lock);
      }
      continue;
    }
    const int64_t now = options_.clock->NowNanos();
    const int64_t due = items_.top().due_nanos;
    if (due > now) {
      int64_t wait = due - now;
      if (options_.poll_nanos > 0) wait = std::min(wait, options_.poll_nanos);
      cv_.wait_for(lock, std::chrono::nanoseconds(wait));
      continue;
    }
    // top() is const; moving the task out through a const_cast is safe because pop() destroys
    // the element right after, so nothing sees the moved-from state.
    std::function<void()> task = std::move(const_cast<Item&>(items_.top()).task);
    items_.pop();
    running_ = true;
    lock.unlock();
    task();
    task = nullptr;  // release its captures outside the lock
    lock.lock();
    running_ = false;
  }
}

}  // namespace hml::sim

// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/sim/timer_queue.h"

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace hml::sim {
namespace {

constexpr int64_t kMs = 1'000'000;

TEST(TimerQueueTest, RunsTasksInDueOrderAndTiesInScheduleOrder) {
  TimerQueue queue;
  const int64_t now = RealClock()->NowNanos();
  std::mutex mu;
  std::vector<int> order;
  std::promise<void> all;
  auto add = [&](int v) {
    std::lock_guard<std::mutex> lock(mu);
    order.push_back(v);
    if (order.size() == 5) all.set_value();
  };
  queue.Schedule(now + 30 * kMs, [&] { add(3); });
  queue.Schedule(now + 10 * kMs, [&] { add(1); });
  queue.Schedule(now + 20 * kMs, [&] { add(2); });
  queue.Schedule(now + 30 * kMs, [&] { add(4); });
  queue.Schedule(now - 5 * kMs, [&] { add(0); });  // already due
  ASSERT_EQ(all.get_future().wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
  // Not early: the last task ran no sooner than its due time.
  EXPECT_GE(RealClock()->NowNanos(), now + 30 * kMs);
}

TEST(TimerQueueTest, ManualClockTasksRunWhenTheClockIsAdvancedAndWoken) {
  ManualClock clock(0);
  TimerQueueOptions options;
  options.clock = &clock;
  TimerQueue queue(options);
  std::promise<int64_t> ran;
  queue.Schedule(1000 * kMs, [&] { ran.set_value(clock.NowNanos()); });
  std::future<int64_t> f = ran.get_future();
  EXPECT_EQ(f.wait_for(std::chrono::milliseconds(50)), std::future_status::timeout);
  clock.Advance(999 * kMs);
  queue.Wake();
  EXPECT_EQ(f.wait_for(std::chrono::milliseconds(50)), std::future_status::timeout);
  clock.Advance(1 * kMs);
  queue.Wake();
  ASSERT_EQ(f.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_EQ(f.get(), 1000 * kMs);
}

TEST(TimerQueueTest, TasksMayScheduleTasksAndPendingOnesAreDroppedOnDestruction) {
  auto dropped = std::make_shared<int>(0);
  std::promise<void> second;
  {
    TimerQueue queue;
    const int64_t now = RealClock()->NowNanos();
    queue.Schedule(now,
                   [&] { queue.Schedule(RealClock()->NowNanos(), [&] { second.set_value(); }); });
    ASSERT_EQ(second.get_future().wait_for(std::chrono::seconds(5)), std::future_status::ready);
    queue.Schedule(now + 3600'000 * kMs, [dropped] { ++*dropped; });
    EXPECT_EQ(queue.pending(), 1u);
    EXPECT_EQ(dropped.use_count(), 2);
  }
  // Destroyed unrun: its capture was released.
  EXPECT_EQ(*dropped, 0);
  EXPECT_EQ(dropped.use_count(), 1);
}

}  // namespace
}  // namespace hml::sim

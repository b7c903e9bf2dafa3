// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "hml/clock.h"

#include <gtest/gtest.h>

namespace hml {
namespace {

TEST(ClockTest, ManualClockMovesOnlyWhenTold) {
  ManualClock clock(1000, 5'000'000);
  EXPECT_EQ(clock.NowNanos(), 1000);
  clock.Advance(2000);
  EXPECT_EQ(clock.NowNanos(), 3000);
  clock.SleepNanos(7000);
  EXPECT_EQ(clock.NowNanos(), 10000);
  EXPECT_EQ(clock.WallMicros(), 5'000'000 + 10);
  EXPECT_EQ(clock.NowMicros(), 10);
}

TEST(ClockTest, RealClockIsMonotonic) {
  Clock* clock = RealClock();
  const int64_t a = clock->NowNanos();
  clock->SleepNanos(1'000'000);
  const int64_t b = clock->NowNanos();
  EXPECT_GE(b - a, 1'000'000);
  EXPECT_GT(clock->WallMicros(), int64_t{1'600'000'000} * 1'000'000);
}

}  // namespace
}  // namespace hml

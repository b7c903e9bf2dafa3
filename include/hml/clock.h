// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// An injectable clock. Code that measures or waits takes a Clock* (default: RealClock()), so
// tests and the fleet simulator drive time by hand with a ManualClock.
#ifndef HML_CLOCK_H_
#define HML_CLOCK_H_

#include <atomic>
#include <cstdint>

namespace hml {

class Clock {
 public:
  virtual ~Clock() = default;
  // Monotonic time in nanoseconds since an arbitrary epoch; never goes back.
  virtual int64_t NowNanos() const = 0;
  // Wall-clock time in microseconds since the Unix epoch; may jump.
  virtual int64_t WallMicros() const = 0;
  // Blocks the calling thread for `nanos` of this clock's time.
  virtual void SleepNanos(int64_t nanos) = 0;

  int64_t NowMicros() const { return NowNanos() / 1000; }
};

// The process's real clocks (steady_clock, system_clock). Thread-safe, lives forever.
Clock* RealClock();

// A clock that moves only when told to. Thread-safe. SleepNanos() advances the clock.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t start_nanos = 0, int64_t wall_start_micros = 0)
      : now_(start_nanos), wall_offset_micros_(wall_start_micros) {}
  int64_t NowNanos() const override { return now_.load(std::memory_order_acquire); }
  int64_t WallMicros() const override { return wall_offset_micros_ + NowNanos() / 1000; }
  void SleepNanos(int64_t nanos) override { Advance(nanos); }
  void Advance(int64_t nanos) { now_.fetch_add(nanos, std::memory_order_acq_rel); }

 private:
  std::atomic<int64_t> now_;
  int64_t wall_offset_micros_;
};

}  // namespace hml

#endif  // HML_CLOCK_H_

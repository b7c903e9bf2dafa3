// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// LinkEmulator: one device's network link, as the fleet simulator and the in-process transport
// see it. It does not move bytes; it answers, for a message of N bytes sent now in one
// direction, whether it arrives and when, on an injected Clock:
//
//   start   = max(now, the time this direction finishes sending the previous message)
//   arrive  = start + N / bandwidth + RTT / 2
//
// Each direction (uplink: device -> cloud, downlink: cloud -> device) is a serial pipe: its
// transmissions do not overlap, so back-to-back messages queue behind each other, while the
// propagation half of the RTT overlaps freely (a pipeline, as on a real link). Example: 1 MB
// (10^6 bytes) over 10 Mbit/s with a 50 ms RTT arrives after 0.8 s + 25 ms = 0.825 s; a second
// 1 MB message sent at the same moment arrives at 1.625 s.
//
// Failures:
//   - Loss: each message is lost independently with `loss_probability`, drawn from a seeded
//     RNG (std::mt19937_64), so a run is reproducible for a given seed and sequence of sends. A
//     lost message still occupied the pipe (its bytes were sent).
//   - Outages: intervals [start, end) of the clock during which the link is down. A message
//     whose transmission or flight [start, arrive) overlaps an outage is lost. A message sent
//     while the link is down is refused up front when OutageMode is kFailFast (the device knows
//     it has no network, as Android's ConnectivityManager tells an app: the call fails at once
//     with kUnavailable and sends no bytes), or lost like any other when kBlackHole (a Wi-Fi that
//     is associated but has no route: the caller only finds out by a timeout).
//   - The "offline" profile is down all the time.
// What a loss means to a call (kUnavailable after a timeout, or kDeadlineExceeded) is the
// transport's business (src/sim/in_process_transport.h).
//
// Thread-safe: every method may be called from any thread (one mutex; each call is a few
// arithmetic operations).
#ifndef HML_SRC_SIM_LINK_H_
#define HML_SRC_SIM_LINK_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "hml/clock.h"
#include "hml/status.h"

namespace hml::sim {

// A link's steady properties.
struct LinkProfile {
  // For logs and tables. Default: "".
  std::string name;
  // Round-trip time; each message takes half of it to propagate. >= 0. Default: 0.
  int64_t rtt_nanos = 0;
  // Bytes per second device -> cloud; 0 = unlimited (no transmission time). >= 0. Default: 0.
  double uplink_bytes_per_second = 0;
  // Bytes per second cloud -> device; 0 = unlimited. >= 0. Default: 0.
  double downlink_bytes_per_second = 0;
  // Probability in [0, 1] that a message is lost. Default: 0.
  double loss_probability = 0;
  // The link is down all the time (the "offline" profile). Default: false.
  bool offline = false;

  // kInvalidArgument naming the field.
  Status Validate() const;
};

// Megabits per second (10^6 bits) as bytes per second.
constexpr double MbpsToBytesPerSecond(double mbps) { return mbps * 1e6 / 8.0; }

// The named profiles (symmetric bandwidth, no loss):
//   "4g"      50 ms RTT, 10 Mbit/s
//   "poor"   300 ms RTT,  1 Mbit/s
//   "wifi"    10 ms RTT, 50 Mbit/s
//   "offline" always down
// kNotFound naming the unknown profile and listing the known ones.
Result<LinkProfile> NamedLinkProfile(std::string_view name);
// The names NamedLinkProfile accepts, in the order above.
std::vector<std::string> LinkProfileNames();

// An interval [start_nanos, end_nanos) of the link's clock during which the link is down.
struct Outage {
  int64_t start_nanos = 0;
  int64_t end_nanos = 0;
};

// What a message sent while the link is down meets (see the file comment).
enum class OutageMode {
  kFailFast,   // refused at once: kUnavailable, no bytes sent
  kBlackHole,  // sent and lost: the caller times out
};

enum class Direction { kUplink, kDownlink };

struct LinkOptions {
  LinkProfile profile;
  // Down intervals; each with start < end, in any order, may overlap. Default: none.
  std::vector<Outage> outages;
  // Default: kFailFast.
  OutageMode outage_mode = OutageMode::kFailFast;
  // Seed of the loss RNG. Default: 1.
  uint64_t seed = 1;
  // The clock "now" is read from; must outlive the emulator. Default: RealClock().
  Clock* clock = RealClock();

  // kInvalidArgument naming the field or outage.
  Status Validate() const;
};

// The fate of one message.
struct Transmission {
  enum class Fate {
    kDelivered,  // arrives at arrive_nanos
    kLost,       // sent (bytes spent, pipe occupied) but never arrives; arrive_nanos is when it
                 // would have arrived
    kRefused,    // the link is down and OutageMode is kFailFast: nothing sent
  };
  Fate fate = Fate::kDelivered;
  int64_t send_nanos = 0;    // when it was handed to the link
  int64_t start_nanos = 0;   // when its first byte went out (after queueing)
  int64_t arrive_nanos = 0;  // when its last byte arrives
  bool delivered() const { return fate == Fate::kDelivered; }
};

class LinkEmulator {
 public:
  // REQUIRES: options.Validate() is OK (Create() checks it).
  explicit LinkEmulator(LinkOptions options);
  static Result<std::unique_ptr<LinkEmulator>> Create(LinkOptions options);
  LinkEmulator(const LinkEmulator&) = delete;
  LinkEmulator& operator=(const LinkEmulator&) = delete;

  // Sends `bytes` in `direction` at clock()->NowNanos() and returns its fate (the file comment
  // has the arithmetic). Occupies the direction's pipe unless refused.
  Transmission Send(Direction direction, int64_t bytes);
  // The same at an explicit time `now_nanos` (the simulator's discrete-event loop; the caller
  // keeps sends on one direction in non-decreasing time order).
  Transmission SendAt(Direction direction, int64_t bytes, int64_t now_nanos);

  // Whether the link is down at `at_nanos` (an outage covers it, or the profile is offline).
  bool IsDown(int64_t at_nanos) const;
  // The pure arithmetic: how long `bytes` take to pass an idle pipe in `direction`, RTT/2
  // included.
  int64_t TransferNanos(Direction direction, int64_t bytes) const;

  // Replaces the outage schedule (the simulator's scenario changes as it runs).
  void SetOutages(std::vector<Outage> outages);

  const LinkProfile& profile() const { return options_.profile; }
  Clock* clock() const { return options_.clock; }

  // Messages handed to Send by fate, and bytes that went out (delivered + lost).
  struct Counters {
    int64_t delivered = 0;
    int64_t lost = 0;
    int64_t refused = 0;
    int64_t bytes_sent[2] = {0, 0};  // by Direction
  };
  Counters counters() const;

 private:
  // Whether [from, to) overlaps an outage. REQUIRES: mu_ held.
  bool DownDuringLocked(int64_t from_nanos, int64_t to_nanos) const;

  LinkOptions options_;
  mutable std::mutex mu_;
  std::mt19937_64 rng_;                   // guarded by mu_
  int64_t busy_until_nanos_[2] = {0, 0};  // guarded by mu_; by Direction
  Counters counters_;                     // guarded by mu_
};

}  // namespace hml::sim

#endif  // HML_SRC_SIM_LINK_H_

// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/sim/link.h"

#include <algorithm>
#include <cmath>
#include <utility>

namespace hml::sim {
namespace {

constexpr int64_t kMillis = 1'000'000;

int Index(Direction d) { return d == Direction::kUplink ? 0 : 1; }

}  // namespace

Status LinkProfile::Validate() const {
  const std::string what = "link profile '" + name + "'";
  if (rtt_nanos < 0) return InvalidArgumentError(what + ": rtt_nanos is negative");
  if (!(uplink_bytes_per_second >= 0) || !std::isfinite(uplink_bytes_per_second)) {
    return InvalidArgumentError(what + ": uplink_bytes_per_second must be finite and >= 0");
  }
  if (!(downlink_bytes_per_second >= 0) || !std::isfinite(downlink_bytes_per_second)) {
    return InvalidArgumentError(what + ": downlink_bytes_per_second must be finite and >= 0");
  }
  if (!(loss_probability >= 0 && loss_probability <= 1)) {
    return InvalidArgumentError(what + ": loss_probability must be in [0, 1]");
  }
  return Status::Ok();
}

Status LinkOptions::Validate() const {
  HML_RETURN_IF_ERROR(profile.Validate());
  if (clock == nullptr) return InvalidArgumentError("link options: clock is null");
  for (size_t i = 0; i < outages.size(); ++i) {
    if (outages[i].start_nanos >= outages[i].end_nanos) {
      return InvalidArgumentError("link options: outage #" + std::to_string(i) + " [" +
                                  std::to_string(outages[i].start_nanos) + ", " +
                                  std::to_string(outages[i].end_nanos) + ") is empty");
    }
  }
  return Status::Ok();
}

std::vector<std::string> LinkProfileNames() { return {"4g", "poor", "wifi", "offline"}; }

Result<LinkProfile> NamedLinkProfile(std::string_view name) {
  LinkProfile p;
  p.name = std::string(name);
  auto symmetric = [&p](int64_t rtt_ms, double mbps) {
    p.rtt_nanos = rtt_ms * kMillis;
    p.uplink_bytes_per_second = MbpsToBytesPerSecond(mbps);
    p.downlink_bytes_per_second = MbpsToBytesPerSecond(mbps);
  };
  if (name == "4g") {
    symmetric(50, 10);
  } else if (name == "poor") {
    symmetric(300, 1);
  } else if (name == "wifi") {
    symmetric(10, 50);
  } else if (name == "offline") {
    p.offline = true;
  } else {
    std::string known;
    for (const std::string& n : LinkProfileNames()) known += (known.empty() ? "" : ", ") + n;
    return NotFoundError("link profile '" + std::string(name) + "' is unknown (known: " + known +
                         ")");
  }
  return p;
}

LinkEmulator::LinkEmulator(LinkOptions options)
    : options_(std::move(options)), rng_(options_.seed) {}

Result<std::unique_ptr<LinkEmulator>> LinkEmulator::Create(LinkOptions options) {
  HML_RETURN_IF_ERROR(options.Validate());
  return std::make_unique<LinkEmulator>(std::move(options));
}

int64_t LinkEmulator::TransferNanos(Direction direction, int64_t bytes) const {
  const double bandwidth = direction == Direction::kUplink
                               ? options_.profile.uplink_bytes_per_second
                               : options_.profile.downlink_bytes_per_second;
  const int64_t transmit =
      bandwidth > 0
          ? static_cast<int64_t>(std::llround(static_cast<double>(bytes) / bandwidth * 1e9))
          : 0;
  return transmit + options_.profile.rtt_nanos / 2;
}

bool LinkEmulator::DownDuringLocked(int64_t from_nanos, int64_t to_nanos) const {
  if (options_.profile.offline) return true;
  for (const Outage& o : options_.outages) {
    // [from, to) against [start, end); a point (from == to) counts when it lies inside.
    const bool overlaps = from_nanos == to_nanos
                              ? o.start_nanos <= from_nanos && from_nanos < o.end_nanos
                              : o.start_nanos < to_nanos && from_nanos < o.end_nanos;
    if (overlaps) return true;
  }
  return false;
}

bool LinkEmulator::IsDown(int64_t at_nanos) const {
  std::lock_guard<std::mutex> lock(mu_);
  return DownDuringLocked(at_nanos, at_nanos);
}

void LinkEmulator::SetOutages(std::vector<Outage> outages) {
  std::lock_guard<std::mutex> lock(mu_);
  options_.outages = std::move(outages);
}

Transmission LinkEmulator::Send(Direction direction, int64_t bytes) {
  return SendAt(direction, bytes, options_.clock->NowNanos());
}

Transmission LinkEmulator::SendAt(Direction direction, int64_t bytes, int64_t now_nanos) {
  std::lock_guard<std::mutex> lock(mu_);
  Transmission t;
  t.send_nanos = now_nanos;
  const int i = Index(direction);
  if (options_.outage_mode == OutageMode::kFailFast && DownDuringLocked(now_nanos, now_nanos)) {
    t.fate = Transmission::Fate::kRefused;
    t.start_nanos = t.arrive_nanos = now_nanos;
    ++counters_.refused;
    return t;
  }
  t.start_nanos = std::max(now_nanos, busy_until_nanos_[i]);
  const int64_t total = TransferNanos(direction, bytes);
  const int64_t transmit = total - options_.profile.rtt_nanos / 2;
  busy_until_nanos_[i] = t.start_nanos + transmit;
  t.arrive_nanos = t.start_nanos + total;
  counters_.bytes_sent[i] += bytes;
  // Draw for every message, so that the sequence of draws does not depend on outages.
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  const bool dropped = uniform(rng_) < options_.profile.loss_probability;
  if (dropped || DownDuringLocked(t.start_nanos, t.arrive_nanos)) {
    t.fate = Transmission::Fate::kLost;
    ++counters_.lost;
  } else {
    ++counters_.delivered;
  }
  return t;
}

LinkEmulator::Counters LinkEmulator::counters() const {
  std::lock_guard<std::mutex> lock(mu_);
  return counters_;
}

}  // namespace hml::sim

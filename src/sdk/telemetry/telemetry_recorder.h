// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// TelemetryRecorder: what the device measures about hybrid inference (issue 6), kept as
// counters and histograms per (model, model version, route) until a report carries them to the
// server. The app (or a wrapper around Router::Infer) calls Record() with each request's
// RouteInfo, or RecordFailure() when Infer returned an error; TelemetryReporter sends the
// recorded delta in batches. The metric names, labels and bucket bounds are the contract in
// telemetry_schema.h.
//
// What one Record() counts, under the route RouteLabel(placement):
//   - the latency (RouteInfo::latency_nanos) in the latency histogram;
//   - one request; one fallback when the answer came from the second choice after the first
//     failed (local after a cloud failure, cloud after a local failure, or a cascade whose
//     offload failed); one offloaded request when the cloud answered (IsOffloaded);
//   - one error, with the cloud's code, when the cloud was called and failed (the request was
//     still answered: that is what a fallback is for);
//   - the radio bytes and the energy estimate (energy.h) of the request.
// RecordFailure() counts a request, its latency and one error with its code under route "none".
//
// Deltas and failed reports: Snapshot() takes everything recorded since the previous snapshot
// and leaves the recorder at zero; a report that fails hands the snapshot back to Restore(), which
// adds it to what was recorded meanwhile. So every recorded event is reported exactly once as
// long as each report either reaches the server or fails visibly. (A report the server applied
// but whose acknowledgement was lost is restored and counted twice: the telemetry call carries no
// idempotency key. Counters over-count in that rare case rather than lose data.)
//
// Bounded memory: the state is one fixed-size record per series, whatever the number of
// requests or failed reports, and at most RecorderOptions::max_series series exist; a request of
// a new series beyond that is dropped and counted in dropped(). So is a request whose model or
// version is not a valid label value (IsValidDeviceLabelValue), which the server would refuse.
//
// Thread-safe: Record, RecordFailure, Snapshot and Restore may be called from any thread; each
// takes one mutex for a map lookup and a few additions.
//
// Device target: no exceptions, no server headers.
#ifndef HML_SRC_SDK_TELEMETRY_TELEMETRY_RECORDER_H_
#define HML_SRC_SDK_TELEMETRY_TELEMETRY_RECORDER_H_

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "hml/status.h"
#include "src/sdk/router.h"
#include "src/sdk/telemetry/energy.h"
#include "src/sdk/telemetry/telemetry_schema.h"
#include "src/sdk/transport.h"

namespace hml::sdk {

// The `route` label of a placement: "local", "cloud", "cascade" or "split" (a split request's
// fallbacks count under the route that answered: local-after-cloud-failure is "local"). The one
// place placements map to routes: extend it with new placements.
std::string_view RouteLabel(Placement placement);
// Whether the second choice answered after the first failed. A cascade whose offload failed is a
// fallback too; it is recognised from the RouteInfo (cloud called, local answer), so this takes
// the whole route.
bool IsFallback(const RouteInfo& route);
// Whether the cloud computed the answer (wholly, or the tail of a split request).
bool IsOffloaded(Placement placement);

struct RecorderOptions {
  // Energy figures of this device. Default: DeviceProfile{} (LTE phone, see energy.h).
  DeviceProfile profile;
  // Most (model, version, route) series kept between snapshots. >= 1. Default: 64.
  int max_series = 64;

  // kInvalidArgument naming the field.
  Status Validate() const;
};

// The delta of one snapshot. Movable; Restore() takes it back after a failed report.
class TelemetrySnapshot {
 public:
  bool empty() const { return series_.empty(); }
  // The Prometheus-style series of this delta, in a stable order (by model, version, route):
  // per series the latency histogram (every bucket, _sum and _count) and the counters that are
  // not zero (requests always).
  std::vector<TelemetryMeasurement> ToMeasurements() const;

 private:
  friend class TelemetryRecorder;
  // (model, version, route)
  using Key = std::tuple<std::string, std::string, std::string>;
  struct Series {
    // Non-cumulative counts: buckets[i] latencies <= kDeviceLatencyBuckets[i] (and above the
    // bound before); the last is +Inf.
    std::array<uint64_t, kDeviceLatencyBuckets.size() + 1> buckets{};
    double latency_sum_seconds = 0;
    uint64_t requests = 0;
    uint64_t fallbacks = 0;
    uint64_t offloaded = 0;
    std::map<std::string, uint64_t> errors;  // by canonical code name
    double compute_joules = 0;
    double radio_joules = 0;
    int64_t bytes_sent = 0;
    int64_t bytes_received = 0;

    void Add(const Series& other);
  };
  std::map<Key, Series> series_;
};

class TelemetryRecorder {
 public:
  // kInvalidArgument for bad options.
  static Result<std::unique_ptr<TelemetryRecorder>> Create(RecorderOptions options = {});
  TelemetryRecorder(const TelemetryRecorder&) = delete;
  TelemetryRecorder& operator=(const TelemetryRecorder&) = delete;

  // One answered request of `model` at `model_version` (the version that answered, e.g. the
  // local model's or InferAnswer::model_version) routed as `route`; `local_macs` is the MACs of
  // one local run (MacsOf), used for the energy estimate when route.local_runs > 0.
  void Record(std::string_view model, std::string_view model_version, const RouteInfo& route,
              int64_t local_macs);
  // One request that Router::Infer answered with `error` after `latency_nanos`.
  void RecordFailure(std::string_view model, std::string_view model_version, const Status& error,
                     int64_t latency_nanos);

  // Everything recorded since the previous snapshot; the recorder starts again from zero.
  TelemetrySnapshot Snapshot();
  // Adds a snapshot whose report failed back into the recorder. Series beyond max_series are
  // dropped (counted in dropped()).
  void Restore(TelemetrySnapshot snapshot);

  // Requests not recorded: max_series series already existed, or the model or version was not a
  // valid label value.
  uint64_t dropped() const;
  const DeviceProfile& profile() const { return options_.profile; }

 private:
  explicit TelemetryRecorder(RecorderOptions options) : options_(std::move(options)) {}
  // The series for the key, created when there is room; null (and one more drop) otherwise.
  // REQUIRES: mu_ held.
  TelemetrySnapshot::Series* FindOrAdd(std::string_view model, std::string_view version,
                                       std::string_view route);

  const RecorderOptions options_;
  mutable std::mutex mu_;
  TelemetrySnapshot current_;  // guarded by mu_
  uint64_t dropped_ = 0;       // guarded by mu_
};

}  // namespace hml::sdk

#endif  // HML_SRC_SDK_TELEMETRY_TELEMETRY_RECORDER_H_

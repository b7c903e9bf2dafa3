// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// TelemetryAggregator: the server side of device telemetry (issue 6). Telemetry.Report hands it
// the caller's device id and the TelemetryReport; it validates the report as a whole and then
// adds it to Prometheus families in the server's MetricsRegistry, so `GET /metrics` shows the
// fleet's device-side measurements per model, model version and route.
//
// The contract (names, labels, routes, latency bounds) is src/sdk/telemetry/telemetry_schema.h,
// shared with the device's TelemetryRecorder. Device counters arrive as deltas since the
// device's previous accepted report and are added to the server's counters; the device's latency
// histogram is merged bucket by bucket into the server's histogram of the same bounds. Families:
//
//   hml_device_inference_latency_seconds{model,version,route}      histogram
//   hml_device_requests_total{model,version,route}                 counter
//   hml_device_fallbacks_total{model,version,route}                counter
//   hml_device_errors_total{model,version,route,code}              counter
//   hml_device_offloaded_total{model,version,route}                counter
//   hml_device_energy_joules_total{model,version,route,component}  counter
//   hml_device_radio_bytes_total{model,version,route,direction}    counter
//   hml_device_offload_ratio{model,version}                        gauge: offloaded / requests
//                                                                  over all routes and devices
//   hml_device_reporting_devices                                   gauge: distinct devices with
//                                                                  an accepted report
//   hml_device_telemetry_reports_total{result}                     counter: "accepted"/"rejected"
//
// No series carries a device id: /metrics is open to scrapers and shows fleet aggregates only.
//
// Validation, before anything changes (a refused report changes nothing but the "rejected"
// counter): a non-empty device id; 1 to max_measurements measurements; each name one of the
// names above with the hml_device_ prefix (histograms as _bucket/_sum/_count); exactly the label
// keys the name takes; label values of [A-Za-z0-9._:+-], 1 to 128 bytes, routes, codes,
// components and directions from their fixed sets; values finite and >= 0, counts whole
// numbers; no series twice; for each histogram every bound of kDeviceLatencyBuckets and +Inf,
// cumulative counts that never decrease, _count equal to the +Inf bucket, and a _sum. Errors
// are kInvalidArgument naming the measurement (index, name and labels) and the reason. A report
// that would add a (model, version) pair beyond max_model_versions is kResourceExhausted: label
// values come from devices, and a bound keeps one device from creating series without end.
//
// Memory: the families' children (bounded by max_model_versions x routes x codes) and the set
// of device ids that reported (bounded by the enrolled devices: callers are authenticated).
//
// Thread-safe: reports are applied one at a time under a mutex (validation runs outside it).
#ifndef HML_SRC_SERVER_TELEMETRY_TELEMETRY_AGGREGATOR_H_
#define HML_SRC_SERVER_TELEMETRY_TELEMETRY_AGGREGATOR_H_

#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <utility>

#include "hml/status.h"
#include "src/server/metrics/metrics.h"

namespace hybridml::v1 {
class TelemetryReport;
}  // namespace hybridml::v1

namespace hml::server {

inline constexpr std::string_view kDeviceOffloadRatio = "hml_device_offload_ratio";
inline constexpr std::string_view kDeviceReportingDevices = "hml_device_reporting_devices";
inline constexpr std::string_view kDeviceTelemetryReportsTotal =
    "hml_device_telemetry_reports_total";

struct TelemetryAggregatorOptions {
  // Most measurements in one report. >= 1. Default: 10000 (a device's recorder sends at most
  // about 30 per series and keeps 64 series by default).
  size_t max_measurements = 10000;
  // Most distinct (model, version) pairs over all devices. >= 1. Default: 1000.
  size_t max_model_versions = 1000;

  // kInvalidArgument naming the field.
  Status Validate() const;
};

class TelemetryAggregator {
 public:
  // Registers the families above in `registry`, which must outlive the aggregator.
  // kAlreadyExists when they are registered already; kInvalidArgument for bad options.
  static Result<std::unique_ptr<TelemetryAggregator>> Create(
      MetricsRegistry& registry, TelemetryAggregatorOptions options = {});
  TelemetryAggregator(const TelemetryAggregator&) = delete;
  TelemetryAggregator& operator=(const TelemetryAggregator&) = delete;
  ~TelemetryAggregator();

  // Validates `report` from device `device_id` and adds it to the metrics (see the file comment
  // for the rules and errors). The entry point of Telemetry.Report and of the in-process
  // transport.
  Status Report(std::string_view device_id, const hybridml::v1::TelemetryReport& report);

 private:
  struct Families;
  struct Parsed;
  TelemetryAggregator(TelemetryAggregatorOptions options, std::unique_ptr<Families> families);
  Result<Parsed> Parse(const hybridml::v1::TelemetryReport& report) const;

  const TelemetryAggregatorOptions options_;
  const std::unique_ptr<Families> families_;
  std::mutex mu_;
  std::set<std::string, std::less<>> devices_;  // guarded by mu_
  // Per (model, version): requests and offloaded over all routes, for the ratio. Guarded by mu_.
  std::map<std::pair<std::string, std::string>, std::pair<double, double>> totals_;
};

}  // namespace hml::server

#endif  // HML_SRC_SERVER_TELEMETRY_TELEMETRY_AGGREGATOR_H_

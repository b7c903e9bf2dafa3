// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The wire contract of device telemetry (issue 6): the metric names, label names, label values
// and latency bucket bounds that the device's TelemetryRecorder sends and the server's
// TelemetryAggregator accepts. Header-only constants, so that the server includes this one
// header and does not link the device SDK; the device never includes server headers.
//
// Every series carries the labels model, version and route; some add one more:
//
//   hml_device_inference_latency_seconds{model,version,route}      histogram (_bucket{le}, _sum,
//                                                                  _count) of Router::Infer's
//                                                                  latency, seconds
//   hml_device_requests_total{model,version,route}                 requests
//   hml_device_fallbacks_total{model,version,route}                requests the second choice
//                                                                  answered after the first failed
//   hml_device_errors_total{model,version,route,code}              errors met (see the recorder)
//   hml_device_offloaded_total{model,version,route}                requests the cloud answered
//   hml_device_energy_joules_total{model,version,route,component}  estimated energy, component
//                                                                  "compute" or "radio"
//   hml_device_radio_bytes_total{model,version,route,direction}    bytes on the wire, direction
//                                                                  "sent" or "received"
//
// Routes: "local", "cloud", "cascade", "split" and "none" (the request failed; no route
// answered). Counters travel as deltas since the device's last accepted report; the server adds
// them up.
#ifndef HML_SRC_SDK_TELEMETRY_TELEMETRY_SCHEMA_H_
#define HML_SRC_SDK_TELEMETRY_TELEMETRY_SCHEMA_H_

#include <array>
#include <cstddef>
#include <string_view>

namespace hml::sdk {

inline constexpr std::string_view kDeviceMetricPrefix = "hml_device_";

inline constexpr std::string_view kDeviceLatencySeconds = "hml_device_inference_latency_seconds";
inline constexpr std::string_view kDeviceRequestsTotal = "hml_device_requests_total";
inline constexpr std::string_view kDeviceFallbacksTotal = "hml_device_fallbacks_total";
inline constexpr std::string_view kDeviceErrorsTotal = "hml_device_errors_total";
inline constexpr std::string_view kDeviceOffloadedTotal = "hml_device_offloaded_total";
inline constexpr std::string_view kDeviceEnergyJoulesTotal = "hml_device_energy_joules_total";
inline constexpr std::string_view kDeviceRadioBytesTotal = "hml_device_radio_bytes_total";

inline constexpr std::string_view kModelLabel = "model";
inline constexpr std::string_view kVersionLabel = "version";
inline constexpr std::string_view kRouteLabel = "route";
inline constexpr std::string_view kCodeLabel = "code";
inline constexpr std::string_view kComponentLabel = "component";
inline constexpr std::string_view kDirectionLabel = "direction";
inline constexpr std::string_view kLeLabel = "le";

inline constexpr std::string_view kRouteLocal = "local";
inline constexpr std::string_view kRouteCloud = "cloud";
inline constexpr std::string_view kRouteCascade = "cascade";
inline constexpr std::string_view kRouteSplit = "split";
inline constexpr std::string_view kRouteNone = "none";
inline constexpr std::array<std::string_view, 5> kDeviceRoutes = {
    kRouteLocal, kRouteCloud, kRouteCascade, kRouteSplit, kRouteNone};

inline constexpr std::string_view kComponentCompute = "compute";
inline constexpr std::string_view kComponentRadio = "radio";
inline constexpr std::string_view kDirectionSent = "sent";
inline constexpr std::string_view kDirectionReceived = "received";

// Upper bounds (seconds) of the latency buckets; +Inf is implicit. The Prometheus client
// defaults (5 ms to 10 s) with 1 ms and 2.5 ms added below them, because a small model answers
// on the device in a few milliseconds and those requests would otherwise all share the first
// bucket. Device and server must agree on them: the server refuses other bounds.
inline constexpr std::array<double, 13> kDeviceLatencyBuckets = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

// Longest label value either side accepts (model names and versions).
inline constexpr size_t kMaxDeviceLabelValueBytes = 128;

// A label value both sides accept: 1 to kMaxDeviceLabelValueBytes bytes of [A-Za-z0-9._:+-].
// The server refuses a report with any other value, so the recorder drops such a request rather
// than poison the whole report.
constexpr bool IsValidDeviceLabelValue(std::string_view value) {
  if (value.empty() || value.size() > kMaxDeviceLabelValueBytes) return false;
  for (char c : value) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == ':' || c == '+' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace hml::sdk

#endif  // HML_SRC_SDK_TELEMETRY_TELEMETRY_SCHEMA_H_

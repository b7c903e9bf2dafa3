// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/sdk/telemetry/telemetry_recorder.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <utility>

namespace hml::sdk {
namespace {

// The canonical code name at the start of a Status::ToString() ("UNAVAILABLE: link down" ->
// "UNAVAILABLE"); "UNKNOWN" when it names no code.
std::string CodeNameOf(std::string_view status_text) {
  const std::string_view head = status_text.substr(0, status_text.find(':'));
  for (int code = 0; code <= static_cast<int>(StatusCode::kUnauthenticated); ++code) {
    const std::string_view name = StatusCodeName(static_cast<StatusCode>(code));
    if (name == head) return std::string(name);
  }
  return std::string(StatusCodeName(StatusCode::kUnknown));
}

// The index of the latency bucket of `seconds`: the first bound >= it, or +Inf.
size_t BucketIndex(double seconds) {
  if (std::isnan(seconds)) return kDeviceLatencyBuckets.size();
  return static_cast<size_t>(
      std::lower_bound(kDeviceLatencyBuckets.begin(), kDeviceLatencyBuckets.end(), seconds) -
      kDeviceLatencyBuckets.begin());
}

// Shortest decimal that reads back as `value` (the form Prometheus clients write bounds in).
std::string FormatBound(double value) {
  char buffer[32];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof(buffer), value);
  if (ec != std::errc()) return std::to_string(value);
  return std::string(buffer, end);
}

// Nanoseconds as seconds. A division, not a multiplication by 1e-9, so that a latency equal to a
// bound (1'000'000 ns) gives exactly that bound (0.001) and lands in its bucket.
double Seconds(int64_t nanos) { return static_cast<double>(std::max<int64_t>(nanos, 0)) / 1e9; }

}  // namespace

std::string_view RouteLabel(Placement placement) {
  // No default: a new Placement (kSplit) makes this switch fail to compile (-Wswitch -Werror)
  // until it is given its route here.
  switch (placement) {
    case Placement::kLocal:
    case Placement::kLocalAfterCloudFailure:
      return kRouteLocal;
    case Placement::kCloud:
    case Placement::kCloudAfterLocalFailure:
      return kRouteCloud;
    case Placement::kCascadeLocal:
    case Placement::kCascadeOffloaded:
      return kRouteCascade;
    case Placement::kSplit:
      return kRouteSplit;
  }
  return kRouteNone;
}

bool IsFallback(const RouteInfo& route) {
  switch (route.placement) {
    case Placement::kLocalAfterCloudFailure:
    case Placement::kCloudAfterLocalFailure:
      return true;
    case Placement::kCascadeLocal:
      // The local answer stood because the offload failed, not because it was confident.
      return route.attempts > 0 && route.cloud_status != "OK";
    case Placement::kLocal:
    case Placement::kCloud:
    case Placement::kCascadeOffloaded:
    case Placement::kSplit:
      return false;
  }
  return false;
}

bool IsOffloaded(Placement placement) {
  switch (placement) {
    case Placement::kCloud:
    case Placement::kCloudAfterLocalFailure:
    case Placement::kCascadeOffloaded:
    case Placement::kSplit:
      return true;
    case Placement::kLocal:
    case Placement::kLocalAfterCloudFailure:
    case Placement::kCascadeLocal:
      return false;
  }
  return false;
}

Status RecorderOptions::Validate() const {
  HML_RETURN_IF_ERROR(profile.Validate());
  if (max_series < 1) {
    return InvalidArgumentError("RecorderOptions.max_series is " + std::to_string(max_series) +
                                "; it must be >= 1");
  }
  return Status::Ok();
}

void TelemetrySnapshot::Series::Add(const Series& other) {
  for (size_t i = 0; i < buckets.size(); ++i) buckets[i] += other.buckets[i];
  latency_sum_seconds += other.latency_sum_seconds;
  requests += other.requests;
  fallbacks += other.fallbacks;
  offloaded += other.offloaded;
  for (const auto& [code, count] : other.errors) errors[code] += count;
  compute_joules += other.compute_joules;
  radio_joules += other.radio_joules;
  bytes_sent += other.bytes_sent;
  bytes_received += other.bytes_received;
}

std::vector<TelemetryMeasurement> TelemetrySnapshot::ToMeasurements() const {
  std::vector<TelemetryMeasurement> out;
  for (const auto& [key, series] : series_) {
    const auto& [model, version, route] = key;
    const std::map<std::string, std::string> labels = {{std::string(kModelLabel), model},
                                                       {std::string(kVersionLabel), version},
                                                       {std::string(kRouteLabel), route}};
    auto add = [&](std::string_view name, double value, std::string_view extra_label = {},
                   std::string_view extra_value = {}) {
      TelemetryMeasurement m;
      m.name = std::string(name);
      m.value = value;
      m.labels = labels;
      if (!extra_label.empty()) m.labels[std::string(extra_label)] = std::string(extra_value);
      out.push_back(std::move(m));
    };
    const std::string latency(kDeviceLatencySeconds);
    uint64_t cumulative = 0;
    for (size_t i = 0; i < series.buckets.size(); ++i) {
      cumulative += series.buckets[i];
      const std::string le =
          i < kDeviceLatencyBuckets.size() ? FormatBound(kDeviceLatencyBuckets[i]) : "+Inf";
      add(latency + "_bucket", static_cast<double>(cumulative), kLeLabel, le);
    }
    add(latency + "_sum", series.latency_sum_seconds);
    add(latency + "_count", static_cast<double>(cumulative));
    add(kDeviceRequestsTotal, static_cast<double>(series.requests));
    if (series.fallbacks > 0) add(kDeviceFallbacksTotal, static_cast<double>(series.fallbacks));
    if (series.offloaded > 0) add(kDeviceOffloadedTotal, static_cast<double>(series.offloaded));
    for (const auto& [code, count] : series.errors) {
      add(kDeviceErrorsTotal, static_cast<double>(count), kCodeLabel, code);
    }
    if (series.compute_joules > 0) {
      add(kDeviceEnergyJoulesTotal, series.compute_joules, kComponentLabel, kComponentCompute);
    }
    if (series.radio_joules > 0) {
      add(kDeviceEnergyJoulesTotal, series.radio_joules, kComponentLabel, kComponentRadio);
    }
    if (series.bytes_sent > 0) {
      add(kDeviceRadioBytesTotal, static_cast<double>(series.bytes_sent), kDirectionLabel,
          kDirectionSent);
    }
    if (series.bytes_received > 0) {
      add(kDeviceRadioBytesTotal, static_cast<double>(series.bytes_received), kDirectionLabel,
          kDirectionReceived);
    }
  }
  return out;
}

Result<std::unique_ptr<TelemetryRecorder>> TelemetryRecorder::Create(RecorderOptions options) {
  HML_RETURN_IF_ERROR(options.Validate());
  return std::unique_ptr<TelemetryRecorder>(new TelemetryRecorder(std::move(options)));
}

TelemetrySnapshot::Series* TelemetryRecorder::FindOrAdd(std::string_view model,
                                                        std::string_view version,
                                                        std::string_view route) {
  if (!IsValidDeviceLabelValue(model) || !IsValidDeviceLabelValue(version)) {
    ++dropped_;
    return nullptr;
  }
  TelemetrySnapshot::Key key{std::string(model), std::string(version), std::string(route)};
  auto it = current_.series_.find(key);
  if (it != current_.series_.end()) return &it->second;
  if (current_.series_.size() >= static_cast<size_t>(options_.max_series)) {
    ++dropped_;
    return nullptr;
  }
  return &current_.series_.emplace(std::move(key), TelemetrySnapshot::Series{}).first->second;
}

void TelemetryRecorder::Record(std::string_view model, std::string_view model_version,
                               const RouteInfo& route, int64_t local_macs) {
  const EnergyEstimate energy = EstimateEnergy(options_.profile, route, local_macs);
  const double seconds = Seconds(route.latency_nanos);
  std::lock_guard lock(mu_);
  TelemetrySnapshot::Series* series = FindOrAdd(model, model_version, RouteLabel(route.placement));
  if (series == nullptr) return;
  ++series->buckets[BucketIndex(seconds)];
  series->latency_sum_seconds += seconds;
  ++series->requests;
  if (IsFallback(route)) ++series->fallbacks;
  if (IsOffloaded(route.placement)) ++series->offloaded;
  if (route.attempts > 0 && !route.cloud_status.empty() && route.cloud_status != "OK") {
    ++series->errors[CodeNameOf(route.cloud_status)];
  }
  series->compute_joules += energy.compute_joules;
  series->radio_joules += energy.radio_joules;
  series->bytes_sent += std::max<int64_t>(route.bytes_sent, 0);
  series->bytes_received += std::max<int64_t>(route.bytes_received, 0);
}

void TelemetryRecorder::RecordFailure(std::string_view model, std::string_view model_version,
                                      const Status& error, int64_t latency_nanos) {
  const double seconds = Seconds(latency_nanos);
  std::lock_guard lock(mu_);
  TelemetrySnapshot::Series* series = FindOrAdd(model, model_version, kRouteNone);
  if (series == nullptr) return;
  ++series->buckets[BucketIndex(seconds)];
  series->latency_sum_seconds += seconds;
  ++series->requests;
  // An OK status here is a caller's mistake; it is still an error the request met.
  const StatusCode code = error.ok() ? StatusCode::kUnknown : error.code();
  ++series->errors[std::string(StatusCodeName(code))];
}

TelemetrySnapshot TelemetryRecorder::Snapshot() {
  std::lock_guard lock(mu_);
  TelemetrySnapshot taken;
  std::swap(taken, current_);
  return taken;
}

void TelemetryRecorder::Restore(TelemetrySnapshot snapshot) {
  std::lock_guard lock(mu_);
  for (auto& [key, series] : snapshot.series_) {
    auto it = current_.series_.find(key);
    if (it != current_.series_.end()) {
      it->second.Add(series);
    } else if (current_.series_.size() < static_cast<size_t>(options_.max_series)) {
      current_.series_.emplace(key, std::move(series));
    } else {
      dropped_ += series.requests;
    }
  }
}

uint64_t TelemetryRecorder::dropped() const {
  std::lock_guard lock(mu_);
  return dropped_;
}

}  // namespace hml::sdk

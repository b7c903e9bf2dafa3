// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/server/telemetry/telemetry_aggregator.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <optional>
#include <tuple>
#include <vector>

#include "proto/hybridml_device.pb.h"
#include "src/sdk/telemetry/telemetry_schema.h"

namespace hml::server {
namespace {

namespace v1 = ::hybridml::v1;
namespace schema = ::hml::sdk;

constexpr size_t kBuckets = schema::kDeviceLatencyBuckets.size() + 1;  // with +Inf

// What a measurement name stands for.
enum class Kind {
  kRequests,
  kFallbacks,
  kErrors,
  kOffloaded,
  kEnergy,
  kBytes,
  kBucket,
  kSum,
  kCount,
};

struct NameRule {
  Kind kind;
  // The label besides model, version and route ("" for none).
  std::string_view extra_label;
  // Whether the value counts events (a whole number).
  bool whole;
};

std::optional<NameRule> RuleOf(std::string_view name) {
  if (name == schema::kDeviceRequestsTotal) return NameRule{Kind::kRequests, "", true};
  if (name == schema::kDeviceFallbacksTotal) return NameRule{Kind::kFallbacks, "", true};
  if (name == schema::kDeviceErrorsTotal) return NameRule{Kind::kErrors, schema::kCodeLabel, true};
  if (name == schema::kDeviceOffloadedTotal) return NameRule{Kind::kOffloaded, "", true};
  if (name == schema::kDeviceEnergyJoulesTotal) {
    return NameRule{Kind::kEnergy, schema::kComponentLabel, false};
  }
  if (name == schema::kDeviceRadioBytesTotal) {
    return NameRule{Kind::kBytes, schema::kDirectionLabel, true};
  }
  if (name.starts_with(schema::kDeviceLatencySeconds)) {
    const std::string_view suffix = name.substr(schema::kDeviceLatencySeconds.size());
    if (suffix == "_bucket") return NameRule{Kind::kBucket, schema::kLeLabel, true};
    if (suffix == "_sum") return NameRule{Kind::kSum, "", false};
    if (suffix == "_count") return NameRule{Kind::kCount, "", true};
  }
  return std::nullopt;
}

bool IsCanonicalCode(std::string_view value) {
  for (int code = 0; code <= static_cast<int>(StatusCode::kUnauthenticated); ++code) {
    if (StatusCodeName(static_cast<StatusCode>(code)) == value) return true;
  }
  return false;
}

// The value of label `key` of `m`; "" when it has none.
const std::string& LabelOf(const v1::Measurement& m, std::string_view key) {
  static const std::string* const kEmpty = new std::string();
  auto it = m.labels().find(std::string(key));
  return it == m.labels().end() ? *kEmpty : it->second;
}

// The bucket index of an `le` value: the bound it equals, kBuckets - 1 for "+Inf".
std::optional<size_t> BucketOf(std::string_view le) {
  if (le == "+Inf") return kBuckets - 1;
  double bound = 0;
  auto [end, ec] = std::from_chars(le.data(), le.data() + le.size(), bound);
  if (ec != std::errc() || end != le.data() + le.size()) return std::nullopt;
  for (size_t i = 0; i < schema::kDeviceLatencyBuckets.size(); ++i) {
    if (schema::kDeviceLatencyBuckets[i] == bound) return i;
  }
  return std::nullopt;
}

// "measurement 3 'name{k="v",...}'" for error messages, labels sorted by key; names and values
// are capped in length (they may be the problem).
std::string Describe(int index, const v1::Measurement& m) {
  std::string out = "measurement " + std::to_string(index) + " '" + m.name().substr(0, 200);
  std::map<std::string, std::string> sorted(m.labels().begin(), m.labels().end());
  if (!sorted.empty()) {
    out += '{';
    bool first = true;
    for (const auto& [key, value] : sorted) {
      if (!first) out += ',';
      first = false;
      out += key.substr(0, 64) + "=\"" + value.substr(0, 140) + '"';
    }
    out += '}';
  }
  return out + "'";
}

std::string HistogramName(const std::tuple<std::string, std::string, std::string>& key) {
  return std::string(schema::kDeviceLatencySeconds) + "{model=\"" + std::get<0>(key) +
         "\",route=\"" + std::get<2>(key) + "\",version=\"" + std::get<1>(key) + "\"}";
}

std::string AllowedNames() {
  return std::string(schema::kDeviceLatencySeconds) + "_bucket/_sum/_count, " +
         std::string(schema::kDeviceRequestsTotal) + ", " +
         std::string(schema::kDeviceFallbacksTotal) + ", " +
         std::string(schema::kDeviceErrorsTotal) + ", " +
         std::string(schema::kDeviceOffloadedTotal) + ", " +
         std::string(schema::kDeviceEnergyJoulesTotal) + ", " +
         std::string(schema::kDeviceRadioBytesTotal);
}

}  // namespace

struct TelemetryAggregator::Families {
  HistogramFamily* latency = nullptr;
  CounterFamily* requests = nullptr;
  CounterFamily* fallbacks = nullptr;
  CounterFamily* errors = nullptr;
  CounterFamily* offloaded = nullptr;
  CounterFamily* energy = nullptr;
  CounterFamily* bytes = nullptr;
  GaugeFamily* offload_ratio = nullptr;
  Gauge* reporting_devices = nullptr;
  Counter* accepted = nullptr;
  Counter* rejected = nullptr;
};

// A validated report, ready to apply.
struct TelemetryAggregator::Parsed {
  struct CounterAdd {
    Kind kind;
    std::vector<std::string> values;  // model, version, route[, extra]
    double value = 0;
  };
  struct HistogramAdd {
    std::array<std::optional<double>, kBuckets> cumulative;
    std::optional<double> sum;
    std::optional<double> count;
  };
  std::vector<CounterAdd> counters;
  std::map<std::tuple<std::string, std::string, std::string>, HistogramAdd> histograms;
  // Per (model, version): requests and offloaded in this report.
  std::map<std::pair<std::string, std::string>, std::pair<double, double>> totals;
};

Status TelemetryAggregatorOptions::Validate() const {
  if (max_measurements < 1) {
    return InvalidArgumentError("TelemetryAggregatorOptions.max_measurements must be >= 1");
  }
  if (max_model_versions < 1) {
    return InvalidArgumentError("TelemetryAggregatorOptions.max_model_versions must be >= 1");
  }
  return Status::Ok();
}

Result<std::unique_ptr<TelemetryAggregator>> TelemetryAggregator::Create(
    MetricsRegistry& registry, TelemetryAggregatorOptions options) {
  HML_RETURN_IF_ERROR(options.Validate());
  auto families = std::make_unique<Families>();
  const std::string model(schema::kModelLabel), version(schema::kVersionLabel),
      route(schema::kRouteLabel);
  HML_ASSIGN_OR_RETURN(
      families->latency,
      registry.AddHistogram(schema::kDeviceLatencySeconds,
                            "Latency of inference requests on devices (Router::Infer), seconds.",
                            {model, version, route},
                            std::vector<double>(schema::kDeviceLatencyBuckets.begin(),
                                                schema::kDeviceLatencyBuckets.end())));
  HML_ASSIGN_OR_RETURN(families->requests,
                       registry.AddCounter(schema::kDeviceRequestsTotal,
                                           "Inference requests on devices, by the route that "
                                           "answered (\"none\": the request failed).",
                                           {model, version, route}));
  HML_ASSIGN_OR_RETURN(
      families->fallbacks,
      registry.AddCounter(schema::kDeviceFallbacksTotal,
                          "Device requests answered by the second choice after the first failed.",
                          {model, version, route}));
  HML_ASSIGN_OR_RETURN(
      families->errors,
      registry.AddCounter(schema::kDeviceErrorsTotal,
                          "Errors device requests met: failed requests (route \"none\") and "
                          "failed cloud calls that a fallback answered.",
                          {model, version, route, std::string(schema::kCodeLabel)}));
  HML_ASSIGN_OR_RETURN(
      families->offloaded,
      registry.AddCounter(schema::kDeviceOffloadedTotal, "Device requests the cloud answered.",
                          {model, version, route}));
  HML_ASSIGN_OR_RETURN(
      families->energy,
      registry.AddCounter(schema::kDeviceEnergyJoulesTotal,
                          "Estimated device energy of inference requests, joules (compute: "
                          "local MACs x J/MAC; radio: bytes x J/byte), from the device profile.",
                          {model, version, route, std::string(schema::kComponentLabel)}));
  HML_ASSIGN_OR_RETURN(
      families->bytes,
      registry.AddCounter(schema::kDeviceRadioBytesTotal,
                          "Bytes device requests moved over the radio.",
                          {model, version, route, std::string(schema::kDirectionLabel)}));
  HML_ASSIGN_OR_RETURN(families->offload_ratio,
                       registry.AddGauge(kDeviceOffloadRatio,
                                         "Share of device requests the cloud answered, over all "
                                         "routes and devices since the server started.",
                                         {model, version}));
  HML_ASSIGN_OR_RETURN(GaugeFamily * devices,
                       registry.AddGauge(kDeviceReportingDevices,
                                         "Distinct devices that sent an accepted telemetry "
                                         "report since the server started."));
  HML_ASSIGN_OR_RETURN(families->reporting_devices, devices->WithLabels({}));
  HML_ASSIGN_OR_RETURN(
      CounterFamily * reports,
      registry.AddCounter(kDeviceTelemetryReportsTotal,
                          "Telemetry reports received from devices, by result.", {"result"}));
  HML_ASSIGN_OR_RETURN(families->accepted, reports->WithLabels({"accepted"}));
  HML_ASSIGN_OR_RETURN(families->rejected, reports->WithLabels({"rejected"}));
  return std::unique_ptr<TelemetryAggregator>(
      new TelemetryAggregator(std::move(options), std::move(families)));
}

TelemetryAggregator::TelemetryAggregator(TelemetryAggregatorOptions options,
                                         std::unique_ptr<Families> families)
    : options_(std::move(options)), families_(std::move(families)) {}

TelemetryAggregator::~TelemetryAggregator() = default;

Result<TelemetryAggregator::Parsed> TelemetryAggregator::Parse(
    const v1::TelemetryReport& report) const {
  if (report.measurements_size() == 0) {
    return InvalidArgumentError("telemetry report has no measurements");
  }
  if (static_cast<size_t>(report.measurements_size()) > options_.max_measurements) {
    return InvalidArgumentError(
        "telemetry report has " + std::to_string(report.measurements_size()) +
        " measurements; at most " + std::to_string(options_.max_measurements) + " are accepted");
  }
  Parsed parsed;
  std::set<std::string> seen;
  for (int i = 0; i < report.measurements_size(); ++i) {
    const v1::Measurement& m = report.measurements(i);
    auto fail = [&](const std::string& why) {
      return InvalidArgumentError(Describe(i, m) + ": " + why);
    };
    if (!m.name().starts_with(schema::kDeviceMetricPrefix)) {
      return fail("the name must start with '" + std::string(schema::kDeviceMetricPrefix) + "'");
    }
    const std::optional<NameRule> rule = RuleOf(m.name());
    if (!rule.has_value()) return fail("unknown name; the names are " + AllowedNames());
    // Labels: exactly model, version, route and the name's extra label.
    const size_t want_labels = rule->extra_label.empty() ? 3 : 4;
    for (const auto& [key, value] : m.labels()) {
      if (key.empty() || (key != schema::kModelLabel && key != schema::kVersionLabel &&
                          key != schema::kRouteLabel && key != rule->extra_label)) {
        return fail("label '" + key.substr(0, 64) + "' is not allowed for this name");
      }
      if (!schema::IsValidDeviceLabelValue(value)) {
        return fail("label '" + key + "' must be 1-" +
                    std::to_string(schema::kMaxDeviceLabelValueBytes) +
                    " bytes of [A-Za-z0-9._:+-]");
      }
    }
    if (m.labels().size() != want_labels) {
      std::string names = "model, version, route";
      if (!rule->extra_label.empty()) names += ", " + std::string(rule->extra_label);
      return fail("needs exactly the labels " + names);
    }
    // Every allowed key is present now (unique keys, none other, the right count).
    const std::string& model = LabelOf(m, schema::kModelLabel);
    const std::string& version = LabelOf(m, schema::kVersionLabel);
    const std::string& route = LabelOf(m, schema::kRouteLabel);
    if (std::find(schema::kDeviceRoutes.begin(), schema::kDeviceRoutes.end(), route) ==
        schema::kDeviceRoutes.end()) {
      return fail("route '" + route + "' is not one of local, cloud, cascade, split, none");
    }
    const double value = m.value();
    if (!std::isfinite(value) || value < 0) return fail("the value must be finite and >= 0");
    if (rule->whole && value != std::floor(value)) {
      return fail("the value counts events and must be a whole number");
    }
    if (!seen.insert(Describe(0, m)).second) return fail("the series appears twice");

    const std::string extra =
        rule->extra_label.empty() ? std::string() : LabelOf(m, rule->extra_label);
    const std::pair<std::string, std::string> model_version{model, version};
    switch (rule->kind) {
      case Kind::kBucket:
      case Kind::kSum:
      case Kind::kCount: {
        Parsed::HistogramAdd& h = parsed.histograms[{model, version, route}];
        if (rule->kind == Kind::kSum) {
          h.sum = value;
        } else if (rule->kind == Kind::kCount) {
          h.count = value;
        } else {
          const std::optional<size_t> bucket = BucketOf(extra);
          if (!bucket.has_value()) {
            return fail("le '" + extra +
                        "' is not a bound of the device latency buckets (telemetry_schema.h)");
          }
          h.cumulative[*bucket] = value;
        }
        continue;
      }
      case Kind::kErrors:
        if (!IsCanonicalCode(extra)) return fail("code '" + extra + "' is not a canonical code");
        break;
      case Kind::kEnergy:
        if (extra != schema::kComponentCompute && extra != schema::kComponentRadio) {
          return fail("component '" + extra + "' is not compute or radio");
        }
        break;
      case Kind::kBytes:
        if (extra != schema::kDirectionSent && extra != schema::kDirectionReceived) {
          return fail("direction '" + extra + "' is not sent or received");
        }
        break;
      case Kind::kRequests:
        parsed.totals[model_version].first += value;
        break;
      case Kind::kOffloaded:
        parsed.totals[model_version].second += value;
        break;
      case Kind::kFallbacks:
        break;
    }
    Parsed::CounterAdd add{rule->kind, {model, version, route}, value};
    if (!extra.empty()) add.values.push_back(extra);
    parsed.counters.push_back(std::move(add));
  }
  for (const auto& [key, h] : parsed.histograms) {
    const std::string name = HistogramName(key);
    for (size_t b = 0; b < kBuckets; ++b) {
      if (!h.cumulative[b].has_value()) {
        return InvalidArgumentError(
            "histogram " + name + ": the bucket le=\"" +
            (b + 1 < kBuckets ? FormatValue(schema::kDeviceLatencyBuckets[b]) : "+Inf") +
            "\" is missing; every bound and +Inf must be sent");
      }
      if (b > 0 && *h.cumulative[b] < *h.cumulative[b - 1]) {
        return InvalidArgumentError("histogram " + name +
                                    ": bucket counts decrease; they must be cumulative");
      }
    }
    if (!h.sum.has_value()) return InvalidArgumentError("histogram " + name + ": _sum is missing");
    if (!h.count.has_value()) {
      return InvalidArgumentError("histogram " + name + ": _count is missing");
    }
    if (*h.count != *h.cumulative[kBuckets - 1]) {
      return InvalidArgumentError(
          "histogram " + name + ": _count is " + std::to_string(static_cast<uint64_t>(*h.count)) +
          " but the +Inf bucket is " + std::to_string(static_cast<uint64_t>(*h.cumulative.back())));
    }
  }
  return parsed;
}

Status TelemetryAggregator::Report(std::string_view device_id, const v1::TelemetryReport& report) {
  if (device_id.empty()) {
    families_->rejected->Increment();
    return InvalidArgumentError("telemetry report without a device id");
  }
  Result<Parsed> parsed = Parse(report);
  if (!parsed.ok()) {
    families_->rejected->Increment();
    return parsed.status().WithContext("telemetry report from device '" + std::string(device_id) +
                                       "'");
  }
  std::lock_guard lock(mu_);
  // Every (model, version) of the report, histogram-only ones included.
  std::set<std::pair<std::string, std::string>> pairs;
  for (const Parsed::CounterAdd& add : parsed->counters)
    pairs.emplace(add.values[0], add.values[1]);
  for (const auto& [key, h] : parsed->histograms) pairs.emplace(std::get<0>(key), std::get<1>(key));
  size_t new_pairs = 0;
  for (const auto& pair : pairs) new_pairs += totals_.count(pair) == 0 ? 1 : 0;
  if (totals_.size() + new_pairs > options_.max_model_versions) {
    families_->rejected->Increment();
    return ResourceExhaustedError("telemetry report from device '" + std::string(device_id) +
                                  "' adds " + std::to_string(new_pairs) +
                                  " (model, version) pairs; the server tracks at most " +
                                  std::to_string(options_.max_model_versions));
  }
  for (const Parsed::CounterAdd& add : parsed->counters) {
    CounterFamily* family = nullptr;
    switch (add.kind) {
      case Kind::kRequests:
        family = families_->requests;
        break;
      case Kind::kFallbacks:
        family = families_->fallbacks;
        break;
      case Kind::kErrors:
        family = families_->errors;
        break;
      case Kind::kOffloaded:
        family = families_->offloaded;
        break;
      case Kind::kEnergy:
        family = families_->energy;
        break;
      case Kind::kBytes:
        family = families_->bytes;
        break;
      case Kind::kBucket:
      case Kind::kSum:
      case Kind::kCount:
        continue;  // not counters; Parse never lists them here
    }
    std::vector<std::string_view> values(add.values.begin(), add.values.end());
    HML_ASSIGN_OR_RETURN(Counter * counter, family->WithLabels(values));
    counter->Increment(add.value);
  }
  for (const auto& [key, h] : parsed->histograms) {
    const auto& [model, version, route] = key;
    HML_ASSIGN_OR_RETURN(Histogram * histogram,
                         families_->latency->WithLabels({model, version, route}));
    std::array<uint64_t, kBuckets> counts{};
    double previous = 0;
    for (size_t b = 0; b < kBuckets; ++b) {
      counts[b] = static_cast<uint64_t>(*h.cumulative[b] - previous);
      previous = *h.cumulative[b];
    }
    histogram->Merge(counts, *h.sum);
  }
  for (const auto& pair : pairs) {
    std::pair<double, double>& total = totals_[pair];
    auto it = parsed->totals.find(pair);
    if (it != parsed->totals.end()) {
      total.first += it->second.first;
      total.second += it->second.second;
    }
    if (total.first > 0) {
      HML_ASSIGN_OR_RETURN(Gauge * ratio,
                           families_->offload_ratio->WithLabels({pair.first, pair.second}));
      ratio->Set(total.second / total.first);
    }
  }
  devices_.emplace(device_id);
  families_->reporting_devices->Set(static_cast<double>(devices_.size()));
  families_->accepted->Increment();
  return Status::Ok();
}

}  // namespace hml::server

// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/sdk/collect/collector.h"

#include <sodium.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

namespace hml::sdk {
namespace {

// BLAKE2b-128 of the record's content: its encoding with the timestamp zeroed.
Result<std::string> ContentHash(const sync::Record& record) {
  sync::Record content = record;
  content.timestamp_ms = 0;
  HML_ASSIGN_OR_RETURN(std::string encoded, sync::EncodeRecord(content));
  std::string hash(16, '\0');
  crypto_generichash(reinterpret_cast<unsigned char*>(hash.data()), hash.size(),
                     reinterpret_cast<const unsigned char*>(encoded.data()), encoded.size(),
                     nullptr, 0);
  return hash;
}

}  // namespace

Status CollectorOptions::Validate() const {
  HML_RETURN_IF_ERROR(queue.Validate().WithContext("CollectorOptions.queue"));
  if (!(sample_rate >= 0 && sample_rate <= 1)) {
    return InvalidArgumentError("CollectorOptions.sample_rate " + std::to_string(sample_rate) +
                                " is outside [0, 1]");
  }
  if (dedup && dedup_memory < 1) {
    return InvalidArgumentError("CollectorOptions.dedup_memory must be >= 1 when dedup is on");
  }
  if (!(low_confidence_threshold > 0 && low_confidence_threshold <= 1)) {
    return InvalidArgumentError("CollectorOptions.low_confidence_threshold " +
                                std::to_string(low_confidence_threshold) + " is outside (0, 1]");
  }
  if (sensor_window_ms < 1) {
    return InvalidArgumentError("CollectorOptions.sensor_window_ms " +
                                std::to_string(sensor_window_ms) + " is < 1");
  }
  return Status::Ok();
}

std::string_view CollectOutcomeName(CollectOutcome outcome) {
  switch (outcome) {
    case CollectOutcome::kQueued:
      return "queued";
    case CollectOutcome::kNotLabelled:
      return "not labelled";
    case CollectOutcome::kConfident:
      return "confident";
    case CollectOutcome::kSampledOut:
      return "sampled out";
    case CollectOutcome::kDuplicate:
      return "duplicate";
    case CollectOutcome::kQueueFull:
      return "queue full";
    case CollectOutcome::kAggregated:
      return "aggregated";
    case CollectOutcome::kLate:
      return "late";
  }
  return "unknown";
}

Result<std::unique_ptr<Collector>> Collector::Create(EncryptedStore* store,
                                                     const CollectorOptions& options) {
  if (store == nullptr) return InvalidArgumentError("Collector: store is null");
  HML_RETURN_IF_ERROR(options.Validate());
  if (sodium_init() < 0) return InternalError("Collector: libsodium failed to initialise");
  HML_ASSIGN_OR_RETURN(std::unique_ptr<BoundedQueue> queue,
                       BoundedQueue::Create(store, options.queue));
  return std::unique_ptr<Collector>(new Collector(std::move(queue), options));
}

Result<CollectOutcome> Collector::EnqueueLocked(std::string_view encoded) {
  Result<int64_t> id = queue_->Enqueue(encoded);
  if (id.ok()) {
    ++counters_.queued;
    return CollectOutcome::kQueued;
  }
  if (id.status().code() == StatusCode::kResourceExhausted) {
    ++counters_.queue_full;
    return CollectOutcome::kQueueFull;
  }
  return id.status();
}

bool Collector::RememberLocked(const std::string& hash) {
  if (recent_.count(hash) > 0) return false;
  recent_.insert(hash);
  recent_order_.push_back(hash);
  while (recent_order_.size() > options_.dedup_memory) {
    recent_.erase(recent_order_.front());
    recent_order_.pop_front();
  }
  return true;
}

Result<CollectOutcome> Collector::Collect(const sync::Record& record) {
  if (record.kind == sync::RecordKind::kSensorSummary) {
    return InvalidArgumentError("Collector::Collect: sensor summaries come from RecordSensorRow");
  }
  HML_ASSIGN_OR_RETURN(std::string encoded, sync::EncodeRecord(record));
  std::lock_guard<std::mutex> lock(mu_);
  ++counters_.offered;
  const bool labelled = record.label >= 0;
  if (options_.only_labelled && !labelled) {
    ++counters_.not_labelled;
    return CollectOutcome::kNotLabelled;
  }
  if (options_.only_low_confidence && !labelled &&
      !(record.predicted_class >= 0 && record.confidence < options_.low_confidence_threshold)) {
    ++counters_.confident;
    return CollectOutcome::kConfident;
  }
  if (options_.sample_rate < 1) {
    const double u = static_cast<double>(rng_() >> 11) * 0x1.0p-53;
    if (!(u < options_.sample_rate)) {
      ++counters_.sampled_out;
      return CollectOutcome::kSampledOut;
    }
  }
  std::string hash;
  if (options_.dedup) {
    HML_ASSIGN_OR_RETURN(hash, ContentHash(record));
    if (recent_.count(hash) > 0) {
      ++counters_.duplicates;
      return CollectOutcome::kDuplicate;
    }
  }
  HML_ASSIGN_OR_RETURN(CollectOutcome outcome, EnqueueLocked(encoded));
  // Only what was queued is remembered: a record the queue refused may come again.
  if (options_.dedup && outcome == CollectOutcome::kQueued) RememberLocked(hash);
  return outcome;
}

namespace {
sync::Record MakeRecord(sync::RecordKind kind, std::string_view model, int64_t model_version,
                        int64_t timestamp_ms, std::vector<int64_t> shape,
                        std::span<const float> features) {
  sync::Record r;
  r.kind = kind;
  r.model = std::string(model);
  r.model_version = model_version;
  r.timestamp_ms = timestamp_ms;
  r.shape = std::move(shape);
  r.features.assign(features.begin(), features.end());
  return r;
}
}  // namespace

Result<CollectOutcome> Collector::RecordInput(std::string_view model, int64_t model_version,
                                              int64_t timestamp_ms, std::vector<int64_t> shape,
                                              std::span<const float> features) {
  return Collect(MakeRecord(sync::RecordKind::kInput, model, model_version, timestamp_ms,
                            std::move(shape), features));
}

Result<CollectOutcome> Collector::RecordPrediction(std::string_view model, int64_t model_version,
                                                   int64_t timestamp_ms, std::vector<int64_t> shape,
                                                   std::span<const float> features,
                                                   int32_t predicted_class, float confidence) {
  sync::Record r = MakeRecord(sync::RecordKind::kPrediction, model, model_version, timestamp_ms,
                              std::move(shape), features);
  r.predicted_class = predicted_class;
  r.confidence = confidence;
  return Collect(r);
}

Result<CollectOutcome> Collector::RecordLabel(std::string_view model, int64_t model_version,
                                              int64_t timestamp_ms, std::vector<int64_t> shape,
                                              std::span<const float> features, int64_t label) {
  sync::Record r = MakeRecord(sync::RecordKind::kLabel, model, model_version, timestamp_ms,
                              std::move(shape), features);
  r.label = label;
  return Collect(r);
}

Result<CollectOutcome> Collector::CloseWindowLocked(const std::string& stream, Window& w) {
  const size_t c = w.channels;
  sync::Record r;
  r.kind = sync::RecordKind::kSensorSummary;
  r.model = stream;
  r.timestamp_ms = w.start_ms;
  r.shape = {sync::kSummaryRows, static_cast<int64_t>(c)};
  r.features.assign(sync::kSummaryRows * c, 0.f);
  for (size_t i = 0; i < c; ++i) {
    r.features[sync::kSummaryCount * c + i] = static_cast<float>(w.count);
    r.features[sync::kSummaryMean * c + i] = static_cast<float>(w.mean[i]);
    r.features[sync::kSummaryMin * c + i] = w.min[i];
    r.features[sync::kSummaryMax * c + i] = w.max[i];
    r.features[sync::kSummaryStd * c + i] =
        static_cast<float>(std::sqrt(w.m2[i] / static_cast<double>(w.count)));
  }
  ++counters_.sensor_windows;
  HML_ASSIGN_OR_RETURN(std::string encoded, sync::EncodeRecord(r));
  return EnqueueLocked(encoded);
}

Result<CollectOutcome> Collector::RecordSensorRow(std::string_view stream, int64_t timestamp_ms,
                                                  std::span<const float> values) {
  if (stream.empty() || stream.size() > sync::kMaxModelNameBytes) {
    return InvalidArgumentError("sensor stream name must be 1-256 bytes");
  }
  if (values.empty()) {
    return InvalidArgumentError("sensor stream '" + std::string(stream) +
                                "': a row without values");
  }
  for (float v : values) {
    if (!std::isfinite(v)) {
      return InvalidArgumentError("sensor stream '" + std::string(stream) +
                                  "': a value is not finite");
    }
  }
  const int64_t width = options_.sensor_window_ms;
  // floor division, also for timestamps before the epoch.
  const int64_t start =
      (timestamp_ms >= 0 ? timestamp_ms / width : -((-timestamp_ms + width - 1) / width)) * width;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = windows_.find(stream);
  if (it != windows_.end()) {
    Window& w = it->second;
    if (values.size() != w.channels) {
      return InvalidArgumentError("sensor stream '" + std::string(stream) + "': a row of " +
                                  std::to_string(values.size()) + " values; the stream has " +
                                  std::to_string(w.channels) + " channels");
    }
    // Earlier than the open window, or in a window FlushSensors already closed (count 0).
    if (start < w.start_ms || (w.count == 0 && start == w.start_ms)) {
      ++counters_.late_sensor_rows;
      return CollectOutcome::kLate;
    }
    if (start > w.start_ms && w.count > 0) {
      Result<CollectOutcome> closed = CloseWindowLocked(it->first, w);
      if (!closed.ok()) return closed.status();
      w.count = 0;
    }
  } else {
    it = windows_.emplace(std::string(stream), Window{}).first;
    it->second.channels = values.size();
  }
  Window& w = it->second;
  if (w.count == 0) {
    w.start_ms = start;
    w.mean.assign(w.channels, 0.0);
    w.m2.assign(w.channels, 0.0);
    w.min.assign(values.begin(), values.end());
    w.max.assign(values.begin(), values.end());
  }
  ++w.count;
  for (size_t i = 0; i < w.channels; ++i) {
    const double x = values[i];
    const double delta = x - w.mean[i];
    w.mean[i] += delta / static_cast<double>(w.count);
    w.m2[i] += delta * (x - w.mean[i]);
    w.min[i] = std::min(w.min[i], values[i]);
    w.max[i] = std::max(w.max[i], values[i]);
  }
  ++counters_.sensor_rows;
  return CollectOutcome::kAggregated;
}

Result<int64_t> Collector::FlushSensors() {
  std::lock_guard<std::mutex> lock(mu_);
  int64_t queued = 0;
  for (auto& [stream, w] : windows_) {
    if (w.count == 0) continue;
    HML_ASSIGN_OR_RETURN(CollectOutcome outcome, CloseWindowLocked(stream, w));
    w.count = 0;
    if (outcome == CollectOutcome::kQueued) ++queued;
  }
  return queued;
}

CollectorCounters Collector::counters() const {
  std::lock_guard<std::mutex> lock(mu_);
  return counters_;
}

Result<TableStats> Collector::QueueStats() { return queue_->Stats(); }

}  // namespace hml::sdk

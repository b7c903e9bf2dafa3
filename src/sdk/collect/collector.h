// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Collector: the SDK's data collection API (issue 6, "Data and sync"). The app records model
// inputs, predictions, labels and sensor rows; the collector filters them on the device, sums
// sensor streams up per time window, and queues what it keeps in the encrypted local store's
// bounded queue (src/sdk/store/), from which the Uploader (uploader.h) sends sealed batches.
//
// Each sample is encoded once, as a sync::Record (src/sync/batch.h), and queued as that
// record's bytes, so the uploader builds a batch by concatenation. Nothing is written in the
// clear: the store seals every record (XChaCha20-Poly1305 under the keystore's key).
//
// Filters, applied to inputs, predictions and labels in this order (the first that refuses a
// record decides its counter; a record refused by one step does not reach the next):
//   1. only_labelled: keep only records with a label (>= 0)          -> counters.not_labelled
//   2. only_low_confidence: keep a record when it has a label, or a prediction with confidence
//      below low_confidence_threshold (the samples a model learns most from); drop the others,
//      plain inputs included                                          -> counters.confident
//   3. sampling: keep with probability sample_rate. One draw per record that reaches this step
//      from std::mt19937_64(seed): keep when (rng() >> 11) * 2^-53 < sample_rate, so a seed gives
//      the same selection on every platform                          -> counters.sampled_out
//   4. dedup: drop a record whose content (kind, model, version, shape, features, label,
//      prediction; not the timestamp) hashes (BLAKE2b-128) like one of the last dedup_memory
//      records queued. The memory is in RAM: after a restart a repeat is queued again (the
//      server side may deduplicate by content if it must)           -> counters.duplicates
//   5. the bounded queue: under kRejectNew a full queue refuses      -> counters.queue_full
//      (and the queue's own persisted TableStats::rejected); under kDropOldest the new record
//      goes in and the oldest are dropped (TableStats::dropped, in QueueStats()).
// Sensor summaries skip steps 1-4: they are already aggregates.
//
// Sensor aggregation: RecordSensorRow(stream, t, values) adds a row of `channels` values to
// the stream's current window [start, start + sensor_window_ms), start = floor(t / window) *
// window. A row in a later window closes the current one first: it is queued as a
// kSensorSummary record whose features are [5, channels] (count, mean, min, max, population
// std, in the rows of sync::SensorSummaryRow) and whose timestamp is the window's start. A row
// older than the stream's current window, or in a window FlushSensors already closed, is
// dropped (counters.late_sensor_rows): windows are never reopened. FlushSensors() closes every open
// window (call it before an upload, or when the app goes to the background). The open windows live
// in RAM: rows of a window not yet closed are lost if the process dies.
//
// Thread-safe: one mutex around the filters, the windows and the queue calls.
#ifndef HML_SRC_SDK_COLLECT_COLLECTOR_H_
#define HML_SRC_SDK_COLLECT_COLLECTOR_H_

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "hml/status.h"
#include "src/sdk/store/bounded_queue.h"
#include "src/sdk/store/encrypted_store.h"
#include "src/sync/batch.h"

namespace hml::sdk {

struct CollectorOptions {
  // The queue the records go to (table, bounds, overflow policy). Default: table "collected",
  // BoundedQueueOptions' bounds and its kDropOldest policy.
  BoundedQueueOptions queue = {.table = "collected"};
  // Fraction of records kept by sampling, in [0, 1]. Default: 1 (all).
  double sample_rate = 1.0;
  // Seed of the sampling draws. Default: 1.
  uint64_t seed = 1;
  // Whether repeats of a recently queued record are dropped. Default: true.
  bool dedup = true;
  // How many recent records' hashes dedup remembers. Default: 4096. Must be >= 1 when dedup.
  size_t dedup_memory = 4096;
  // Keep only labelled records. Default: false.
  bool only_labelled = false;
  // Keep only labelled records and low-confidence predictions. Default: false.
  bool only_low_confidence = false;
  // A prediction is low-confidence below this, in (0, 1]. Default: 0.6.
  float low_confidence_threshold = 0.6f;
  // Width of a sensor summary window in milliseconds. Default: 1000. Must be >= 1.
  int64_t sensor_window_ms = 1000;

  Status Validate() const;
};

// What happened to one recorded sample.
enum class CollectOutcome {
  kQueued,
  kNotLabelled,  // only_labelled
  kConfident,    // only_low_confidence
  kSampledOut,
  kDuplicate,
  kQueueFull,   // the queue's kRejectNew policy refused it
  kAggregated,  // a sensor row went into its window
  kLate,        // a sensor row older than its stream's window
};

std::string_view CollectOutcomeName(CollectOutcome outcome);

// In-process counts since the collector was created (the queue's own drop counts persist; see
// QueueStats()).
struct CollectorCounters {
  int64_t offered = 0;  // samples given to Collect (sensor rows not included)
  int64_t queued = 0;   // records queued (samples and sensor summaries)
  int64_t not_labelled = 0;
  int64_t confident = 0;
  int64_t sampled_out = 0;
  int64_t duplicates = 0;
  int64_t queue_full = 0;
  int64_t sensor_rows = 0;       // rows aggregated
  int64_t late_sensor_rows = 0;  // rows dropped as late
  int64_t sensor_windows = 0;    // summaries produced (queued or refused by the queue)
};

class Collector {
 public:
  // Creates the bounded queue over `store`. REQUIRES: `store` outlives the collector.
  // kInvalidArgument for bad options.
  static Result<std::unique_ptr<Collector>> Create(EncryptedStore* store,
                                                   const CollectorOptions& options);

  // Filters and queues one sample. kInvalidArgument for an invalid record (sync::ValidateRecord)
  // or a kSensorSummary (use RecordSensorRow); the queue's errors other than "full".
  Result<CollectOutcome> Collect(const sync::Record& record);

  // Shorthands for Collect. `features` has product(shape) floats.
  Result<CollectOutcome> RecordInput(std::string_view model, int64_t model_version,
                                     int64_t timestamp_ms, std::vector<int64_t> shape,
                                     std::span<const float> features);
  Result<CollectOutcome> RecordPrediction(std::string_view model, int64_t model_version,
                                          int64_t timestamp_ms, std::vector<int64_t> shape,
                                          std::span<const float> features, int32_t predicted_class,
                                          float confidence);
  Result<CollectOutcome> RecordLabel(std::string_view model, int64_t model_version,
                                     int64_t timestamp_ms, std::vector<int64_t> shape,
                                     std::span<const float> features, int64_t label);

  // Adds one row of a sensor stream (see the file comment). kInvalidArgument for an empty
  // stream name, no values, non-finite values, or a channel count that differs from the
  // stream's first row.
  Result<CollectOutcome> RecordSensorRow(std::string_view stream, int64_t timestamp_ms,
                                         std::span<const float> values);
  // Closes and queues every open sensor window; returns how many summaries were queued.
  Result<int64_t> FlushSensors();

  CollectorCounters counters() const;
  // The queue's persisted counts (records, bytes, dropped by kDropOldest, rejected).
  Result<TableStats> QueueStats();
  // The queue the uploader drains.
  BoundedQueue* queue() { return queue_.get(); }

 private:
  struct Window {
    int64_t start_ms = 0;
    size_t channels = 0;
    int64_t count = 0;
    std::vector<double> mean, m2;  // Welford's running mean and sum of squared deviations
    std::vector<float> min, max;
  };

  Collector(std::unique_ptr<BoundedQueue> queue, const CollectorOptions& options)
      : queue_(std::move(queue)), options_(options), rng_(options.seed) {}

  // Queues an encoded record. REQUIRES: mu_ held.
  Result<CollectOutcome> EnqueueLocked(std::string_view encoded);
  Result<CollectOutcome> CloseWindowLocked(const std::string& stream, Window& window);
  bool RememberLocked(const std::string& hash);

  std::unique_ptr<BoundedQueue> queue_;
  const CollectorOptions options_;
  mutable std::mutex mu_;
  std::mt19937_64 rng_;                                 // GUARDED_BY(mu_)
  std::deque<std::string> recent_order_;                // GUARDED_BY(mu_)
  std::unordered_set<std::string> recent_;              // GUARDED_BY(mu_)
  std::map<std::string, Window, std::less<>> windows_;  // GUARDED_BY(mu_)
  CollectorCounters counters_;                          // GUARDED_BY(mu_)
};

}  // namespace hml::sdk

#endif  // HML_SRC_SDK_COLLECT_COLLECTOR_H_

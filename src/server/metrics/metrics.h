// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Prometheus metrics for the server: a MetricsRegistry of counter, gauge and histogram families
// and their exposition in the Prometheus text format, version 0.0.4 (what `GET /metrics`
// returns), plus ServingMetrics, the conventional serving metrics the batcher and the front ends
// record through.
//
// A family has a name, a help text and a fixed list of label names; it holds one child (the
// Counter, Gauge or Histogram that is actually incremented) per tuple of label values. Children
// are created on first use and never removed, so a child pointer stays valid as long as the
// registry lives and may be cached. Updating a child is lock-free (std::atomic); looking a child
// up by its label values takes a shared lock on the family.
//
// Label values are often derived from input (model names): record only for values from a bounded
// set (models that exist), never for arbitrary client strings, or a client can create series
// without bound.
//
// Families are never removed either. There are no process-wide registries: the server creates
// one MetricsRegistry and passes it to whatever records.
#ifndef HML_SRC_SERVER_METRICS_METRICS_H_
#define HML_SRC_SERVER_METRICS_METRICS_H_

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "hml/status.h"

namespace hml::server {

// A value that only goes up: requests served, bytes sent. Thread-safe, lock-free.
class Counter {
 public:
  Counter() = default;
  Counter(const Counter&) = delete;
  Counter& operator=(const Counter&) = delete;

  // Adds `delta`. Negative and NaN deltas are ignored: Prometheus reads any decrease of a
  // counter as a process restart, so a counter must never go down.
  void Increment(double delta = 1.0);
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  // C++20 atomic<double>::fetch_add; a compare-exchange loop on x86-64, lock-free.
  std::atomic<double> value_{0.0};
};

// A value that goes up and down: queue depth, loaded models. Thread-safe, lock-free.
class Gauge {
 public:
  Gauge() = default;
  Gauge(const Gauge&) = delete;
  Gauge& operator=(const Gauge&) = delete;

  void Set(double value) { value_.store(value, std::memory_order_relaxed); }
  void Increment(double delta = 1.0) { value_.fetch_add(delta, std::memory_order_relaxed); }
  void Decrement(double delta = 1.0) { value_.fetch_add(-delta, std::memory_order_relaxed); }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// Observations counted into buckets with fixed upper bounds (`le`, "less or equal"), plus their
// sum and count. Thread-safe, lock-free. The bounds are the family's (see
// MetricsRegistry::AddHistogram); the bucket +Inf is implicit.
class Histogram {
 public:
  // REQUIRES: `bounds` strictly increasing and finite, and it outlives this histogram (the
  // family owns it).
  explicit Histogram(std::span<const double> bounds);
  Histogram(const Histogram&) = delete;
  Histogram& operator=(const Histogram&) = delete;

  // Counts `value` in the first bucket whose bound is >= value (the +Inf bucket when none is,
  // and for NaN) and adds it to the sum.
  void Observe(double value);

  // Adds observations counted elsewhere (a device's histogram with the same bounds):
  // `bucket_counts[i]` more observations in bucket i (not cumulative; one entry per bound plus
  // the +Inf bucket) and `sum` to the sum. A `bucket_counts` of the wrong size is ignored (the
  // caller validates against bounds()).
  void Merge(std::span<const uint64_t> bucket_counts, double sum);

  // A copy of the state. Buckets are read one by one while other threads may observe, so a
  // snapshot taken under load may mix observations from slightly different instants; its count
  // is the sum of its buckets, so `_count` always equals the `le="+Inf"` bucket.
  struct Snapshot {
    // Cumulative counts: cumulative[i] observations <= bounds[i]; the last entry is +Inf.
    std::vector<uint64_t> cumulative;
    double sum = 0.0;
    uint64_t count = 0;
  };
  Snapshot Read() const;

 private:
  std::span<const double> bounds_;
  // Non-cumulative counts, one per bound plus the +Inf bucket.
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;
  std::atomic<double> sum_{0.0};
};

// The Prometheus default buckets for latencies in seconds: 5 ms to 10 s.
inline constexpr std::array<double, 11> kDefaultLatencyBuckets = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
// `count` bounds start, start*factor, start*factor^2, ... REQUIRES: start > 0, factor > 1.
std::vector<double> ExponentialBuckets(double start, double factor, int count);
// `count` bounds start, start+width, start+2*width, ... REQUIRES: width > 0.
std::vector<double> LinearBuckets(double start, double width, int count);

enum class MetricType { kCounter, kGauge, kHistogram };

// What all families share; the registry holds them through this base to expose them.
class FamilyBase {
 public:
  virtual ~FamilyBase() = default;
  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }
  const std::vector<std::string>& label_names() const { return label_names_; }
  MetricType type() const { return type_; }

  // Appends the family's HELP, TYPE and sample lines to `out`; nothing when it has no child.
  virtual void AppendExposition(std::string* out) const = 0;

 protected:
  FamilyBase(std::string name, std::string help, std::vector<std::string> label_names,
             MetricType type)
      : name_(std::move(name)),
        help_(std::move(help)),
        label_names_(std::move(label_names)),
        type_(type) {}

 private:
  std::string name_;
  std::string help_;
  std::vector<std::string> label_names_;
  MetricType type_;
};

// Orders label-value tuples lexicographically, and accepts string_view tuples for lookups so that
// finding an existing child does not allocate.
struct LabelValuesLess {
  using is_transparent = void;
  template <typename A, typename B>
  bool operator()(const A& a, const B& b) const {
    return std::lexicographical_compare(
        a.begin(), a.end(), b.begin(), b.end(),
        [](std::string_view x, std::string_view y) { return x < y; });
  }
};

// A family of children of type T (Counter, Gauge or Histogram), one per label-value tuple.
// Created by MetricsRegistry, which owns it. Thread-safe.
template <typename T>
class Family final : public FamilyBase {
 public:
  // The child for `values` (one per label name, in the order the family declared them), created
  // on first use. The pointer stays valid as long as the registry, and the same tuple always
  // gives the same child. kInvalidArgument when the number of values differs from the number of
  // label names. Any string is a valid label value; exposition escapes it.
  Result<T*> WithLabels(std::span<const std::string_view> values);
  Result<T*> WithLabels(std::initializer_list<std::string_view> values) {
    return WithLabels(std::span<const std::string_view>(values.begin(), values.size()));
  }

  // The histogram bounds; empty for counters and gauges.
  const std::vector<double>& bounds() const { return bounds_; }

  void AppendExposition(std::string* out) const override;

  // Use MetricsRegistry::AddCounter / AddGauge / AddHistogram.
  Family(std::string name, std::string help, std::vector<std::string> label_names,
         std::vector<double> bounds);

 private:
  std::vector<double> bounds_;
  mutable std::shared_mutex mu_;
  std::map<std::vector<std::string>, std::unique_ptr<T>, LabelValuesLess> children_;
};

using CounterFamily = Family<Counter>;
using GaugeFamily = Family<Gauge>;
using HistogramFamily = Family<Histogram>;

struct MetricsRegistryOptions {
  // Expose the process metrics (process_cpu_seconds_total, process_resident_memory_bytes,
  // process_virtual_memory_bytes, process_open_fds, process_start_time_seconds), read from
  // procfs at each exposition. Their names are then taken: registering them is kAlreadyExists.
  // Default: true.
  bool process_metrics = true;
  // Where procfs is mounted; tests point it at a directory of fake files.
  // Default: "/proc".
  std::string proc_dir = "/proc";

  // kInvalidArgument for an empty proc_dir when process metrics are on.
  Status Validate() const;
};

// The metrics of one process, as exposed on `/metrics`. Thread-safe: families may be added,
// children updated and the text exposed from any thread.
class MetricsRegistry {
 public:
  // REQUIRES: options.Validate() is OK (an invalid proc_dir only makes process metrics absent).
  explicit MetricsRegistry(MetricsRegistryOptions options = {});
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // Register a family; the returned pointer lives as long as the registry. Names must match
  // [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]* without a leading "__" and
  // without duplicates; counter names must end in "_total" (the sample name and the TYPE line
  // then agree, as in the Go client); histograms may not use the label "le". A bad name is
  // kInvalidArgument naming it; a name already registered (or a process metric's) is
  // kAlreadyExists. A family without labels has its one child from the start, exposed as 0.
  Result<CounterFamily*> AddCounter(std::string_view name, std::string_view help,
                                    std::vector<std::string> label_names = {});
  Result<GaugeFamily*> AddGauge(std::string_view name, std::string_view help,
                                std::vector<std::string> label_names = {});
  // `bounds`: the upper bounds of the buckets, strictly increasing and finite (+Inf is added
  // implicitly); empty means only +Inf. Otherwise kInvalidArgument.
  Result<HistogramFamily*> AddHistogram(std::string_view name, std::string_view help,
                                        std::vector<std::string> label_names,
                                        std::vector<double> bounds);

  // The text exposition format 0.0.4 (Content-Type "text/plain; version=0.0.4"): families sorted
  // by name, children by label values, process metrics included when enabled and readable.
  std::string Expose() const;

 private:
  // Validates `family`'s name and label names and adds it; see AddCounter for the errors.
  Status Register(std::unique_ptr<FamilyBase> family);

  const MetricsRegistryOptions options_;
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<FamilyBase>, std::less<>> families_;
};

// The Content-Type of Expose()'s text.
inline constexpr std::string_view kExpositionContentType = "text/plain; version=0.0.4";

// What Prometheus client libraries expose as process metrics, read from procfs.
struct ProcessStats {
  double cpu_seconds = 0;         // user + system CPU time
  double resident_bytes = 0;      // resident set size
  double virtual_bytes = 0;       // virtual memory size
  double open_fds = 0;            // entries in <proc>/self/fd, including the one used to count
  double start_time_seconds = 0;  // process start, seconds since the Unix epoch
};
// Reads <proc_dir>/self/stat, <proc_dir>/stat (for the boot time) and lists <proc_dir>/self/fd.
// kNotFound (or the errno's code) naming the file that cannot be read; kInvalidArgument when a
// file does not parse.
Result<ProcessStats> ReadProcessStats(const std::string& proc_dir);

// Escaping of the text format: in HELP text backslash and newline, in label values also the
// double quote.
std::string EscapeHelp(std::string_view text);
std::string EscapeLabelValue(std::string_view value);
// A sample value as the text format writes it: shortest round-trip decimal, "+Inf", "-Inf", "NaN".
std::string FormatValue(double value);

// ---------------------------------------------------------------------------------------------
// The conventional serving metrics. Every front end and the batcher record through these, so the
// names and labels below are the server's metric contract:
//
//   hml_inference_requests_total{model,version,protocol,code}   counter
//       every answered inference request, once, by its final status code
//   hml_inference_failures_total{model,version,protocol,code}   counter
//       the subset of those whose code is not OK
//   hml_inference_rejected_total{model,version,protocol}        counter
//       requests refused by admission control (queue full) before any work; they are also
//       recorded as requests with RESOURCE_EXHAUSTED
//   hml_inference_queue_time_seconds{model,version}             histogram
//       from admission to the start of the batch's compute
//   hml_inference_compute_time_seconds{model,version}           histogram
//       one batch's compute in the runtime
//   hml_inference_batch_size{model,version}                     histogram
//       requests per executed batch
//   hml_inference_split_requests_total{model,version,protocol,code}   counter
//       the subset of requests_total that were split requests (inputs at a cut through the
//       model; the server ran the tail). Their batches (each cut has its own batcher) are
//       observed in the three histograms above with the version's full-model batches.
//
// `model` is the model name, `version` the resolved version number (never "latest"), `protocol`
// "grpc" or "http", `code` the canonical name ("OK", "RESOURCE_EXHAUSTED", ...).
// ---------------------------------------------------------------------------------------------
inline constexpr std::string_view kRequestsTotal = "hml_inference_requests_total";
inline constexpr std::string_view kFailuresTotal = "hml_inference_failures_total";
inline constexpr std::string_view kRejectedTotal = "hml_inference_rejected_total";
inline constexpr std::string_view kQueueTimeSeconds = "hml_inference_queue_time_seconds";
inline constexpr std::string_view kComputeTimeSeconds = "hml_inference_compute_time_seconds";
inline constexpr std::string_view kBatchSize = "hml_inference_batch_size";
inline constexpr std::string_view kSplitRequestsTotal = "hml_inference_split_requests_total";

enum class ServingProtocol { kGrpc = 0, kHttp = 1 };
// "grpc" or "http", the `protocol` label value.
std::string_view ServingProtocolName(ServingProtocol protocol);

struct ServingMetricsOptions {
  // Default: kDefaultLatencyBuckets (5 ms to 10 s).
  std::vector<double> queue_time_buckets{kDefaultLatencyBuckets.begin(),
                                         kDefaultLatencyBuckets.end()};
  // Default: kDefaultLatencyBuckets.
  std::vector<double> compute_time_buckets{kDefaultLatencyBuckets.begin(),
                                           kDefaultLatencyBuckets.end()};
  // Default: 1, 2, 4, ..., 256.
  std::vector<double> batch_size_buckets = ExponentialBuckets(1, 2, 9);
};

// The serving metrics of one model version: the batcher and the front ends get it once, when
// the version is loaded, and record without any lookup or lock afterwards. Owned by
// ServingMetrics; thread-safe.
class ModelMetrics {
 public:
  ModelMetrics(const ModelMetrics&) = delete;
  ModelMetrics& operator=(const ModelMetrics&) = delete;

  // One answered request: requests_total, and failures_total when `code` is not OK.
  void RecordRequest(ServingProtocol protocol, StatusCode code);
  // One answered split request: RecordRequest(), and split_requests_total.
  void RecordSplitRequest(ServingProtocol protocol, StatusCode code);
  // One admission-control refusal. The front end also calls RecordRequest with the code it
  // answered (RESOURCE_EXHAUSTED).
  void RecordRejected(ServingProtocol protocol);
  void ObserveQueueTime(double seconds) { queue_time_->Observe(seconds); }
  void ObserveComputeTime(double seconds) { compute_time_->Observe(seconds); }
  void ObserveBatchSize(int64_t size) { batch_size_->Observe(static_cast<double>(size)); }

 private:
  friend class ServingMetrics;
  static constexpr int kProtocols = 2;
  static constexpr int kCodes = 17;

  ModelMetrics(std::string model, std::string version, CounterFamily* requests,
               CounterFamily* failures, CounterFamily* rejected, CounterFamily* split_requests,
               Histogram* queue_time, Histogram* compute_time, Histogram* batch_size);
  // The child of `family` for this model and `protocol` (and `code` when `with_code`), resolved
  // on first use and cached in `slot`. Children are created lazily so that /metrics lists only
  // the (protocol, code) pairs that occurred.
  Counter* Resolve(std::atomic<Counter*>& slot, CounterFamily* family, ServingProtocol protocol,
                   StatusCode code, bool with_code);

  const std::string model_;
  const std::string version_;
  CounterFamily* const requests_;
  CounterFamily* const failures_;
  CounterFamily* const rejected_;
  CounterFamily* const split_requests_;
  Histogram* const queue_time_;
  Histogram* const compute_time_;
  Histogram* const batch_size_;
  std::array<std::atomic<Counter*>, kProtocols * kCodes> requests_by_code_{};
  std::array<std::atomic<Counter*>, kProtocols * kCodes> failures_by_code_{};
  std::array<std::atomic<Counter*>, kProtocols * kCodes> split_requests_by_code_{};
  std::array<std::atomic<Counter*>, kProtocols> rejected_by_protocol_{};
};

// The serving metric families registered in one registry, and the ModelMetrics of each model
// version. The registry must outlive it. Thread-safe.
class ServingMetrics {
 public:
  // Registers the seven families above. kAlreadyExists when the registry already has them,
  // kInvalidArgument for bad bucket bounds.
  static Result<std::unique_ptr<ServingMetrics>> Create(MetricsRegistry& registry,
                                                        const ServingMetricsOptions& options = {});

  // The metrics of `model` at `version`, created on first use (so the histograms of a loaded
  // version are exposed even before its first request); the same pointer for the same pair, valid
  // as long as this object. Call it when the version is loaded, not per request (it locks and
  // allocates). An error only if the families' label names do not match (a bug).
  Result<ModelMetrics*> ForModel(std::string_view model, std::string_view version);

 private:
  ServingMetrics() = default;

  CounterFamily* requests_ = nullptr;
  CounterFamily* failures_ = nullptr;
  CounterFamily* rejected_ = nullptr;
  CounterFamily* split_requests_ = nullptr;
  HistogramFamily* queue_time_ = nullptr;
  HistogramFamily* compute_time_ = nullptr;
  HistogramFamily* batch_size_ = nullptr;
  std::mutex mu_;
  std::map<std::pair<std::string, std::string>, std::unique_ptr<ModelMetrics>> models_;
};

}  // namespace hml::server

#endif  // HML_SRC_SERVER_METRICS_METRICS_H_

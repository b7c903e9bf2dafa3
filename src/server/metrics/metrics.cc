// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/server/metrics/metrics.h"


#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <optional>
#include <type_traits>

#include "hml/env.h"
#include "src/base/errno_status.h"
#include "src/base/file_util.h"

namespace hml::server {
namespace {

// procfs files are small; anything larger is not what we expect to parse.
constexpr size_t kMaxProcFileBytes = size_t{1} << 20;

bool IsNameStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// [a-zA-Z_:][a-zA-Z0-9_:]*
bool IsValidMetricName(std::string_view name) {
  if (name.empty() || !(IsNameStart(name[0]) || name[0] == ':')) return false;
  for (char c : name) {
    if (!(IsNameStart(c) || IsDigit(c) || c == ':')) return false;
  }
  return true;
}

// [a-zA-Z_][a-zA-Z0-9_]*: label names, unlike metric names, may not contain ':'.
bool IsValidLabelName(std::string_view name) {
  if (name.empty() || !IsNameStart(name[0])) return false;
  for (char c : name) {
    if (!(IsNameStart(c) || IsDigit(c))) return false;
  }
  return true;
}

std::string_view TypeName(MetricType type) {
  switch (type) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

template <typename T>
std::unique_ptr<T> NewChild(const std::vector<double>& /*bounds*/) {
  return std::make_unique<T>();
}
template <>
std::unique_ptr<Histogram> NewChild<Histogram>(const std::vector<double>& bounds) {
  return std::make_unique<Histogram>(bounds);
}

void AppendHeader(const FamilyBase& family, std::string* out) {
  out->append("# HELP ").append(family.name()).append(" ");
  out->append(EscapeHelp(family.help())).append("\n");
  out->append("# TYPE ").append(family.name()).append(" ");
  out->append(TypeName(family.type())).append("\n");
}

// Appends `{a="x",b="y"}` (or nothing without labels), with `le` last when given.
void AppendLabels(const std::vector<std::string>& names, const std::vector<std::string>& values,
                  std::string_view le, std::string* out) {
  if (names.empty() && le.empty()) return;
  out->push_back('{');
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out->push_back(',');
    out->append(names[i]).append("=\"").append(EscapeLabelValue(values[i])).append("\"");
  }
  if (!le.empty()) {
    if (!names.empty()) out->push_back(',');
    out->append("le=\"").append(le).append("\"");
  }
  out->push_back('}');
}

void AppendSample(std::string_view name, const std::vector<std::string>& label_names,
                  const std::vector<std::string>& values, std::string_view le,
                  std::string_view value, std::string* out) {
  out->append(name);
  AppendLabels(label_names, values, le, out);
  out->append(" ").append(value).append("\n");
}

// One label-less process metric family.
void AppendProcessFamily(std::string_view name, std::string_view help, std::string_view type,
                         double value, std::string* out) {
  out->append("# HELP ").append(name).append(" ").append(help).append("\n");
  out->append("# TYPE ").append(name).append(" ").append(type).append("\n");
  out->append(name).append(" ").append(FormatValue(value)).append("\n");
}

// The names process metrics take, sorted, so that Expose can merge them into the families.
constexpr std::array<std::string_view, 5> kProcessMetricNames = {
    "process_cpu_seconds_total", "process_open_fds", "process_resident_memory_bytes",
    "process_start_time_seconds", "process_virtual_memory_bytes"};

// Each process metric's exposition block, in the order of kProcessMetricNames.
std::array<std::string, 5> ProcessBlocks(const ProcessStats& stats) {
  std::array<std::string, 5> blocks;
  AppendProcessFamily(kProcessMetricNames[0], "Total user and system CPU time spent in seconds.",
                      "counter", stats.cpu_seconds, &blocks[0]);
  AppendProcessFamily(kProcessMetricNames[1], "Number of open file descriptors.", "gauge",
                      stats.open_fds, &blocks[1]);
  AppendProcessFamily(kProcessMetricNames[2], "Resident memory size in bytes.", "gauge",
                      stats.resident_bytes, &blocks[2]);
  AppendProcessFamily(kProcessMetricNames[3],
                      "Start time of the process since unix epoch in seconds.", "gauge",
                      stats.start_time_seconds, &blocks[3]);
  AppendProcessFamily(kProcessMetricNames[4], "Virtual memory size in bytes.", "gauge",
                      stats.virtual_bytes, &blocks[4]);
  return blocks;
}

// A procfs file, read to its end (Env::ReadFile does not trust procfs's size of 0).
Result<std::string> ReadProcFile(const std::string& path) {
  return DefaultEnv()->ReadFile(path, kMaxProcFileBytes);
}

Result<uint64_t> ParseUint(std::string_view text, const std::string& path, std::string_view what) {
  uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) {
    return InvalidArgumentError("'" + path + "': " + std::string(what) + " '" + std::string(text) +
                                "' is not an unsigned integer");
  }
  return value;
}

std::vector<std::string_view> SplitWhitespace(std::string_view text) {
  std::vector<std::string_view> fields;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    const size_t start = i;
    while (i < text.size() && !std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    if (i > start) fields.push_back(text.substr(start, i - start));
  }
  return fields;
}

}  // namespace

// ----- Children --------------------------------------------------------------------------------

void Counter::Increment(double delta) {
  if (!(delta >= 0)) return;
  value_.fetch_add(delta, std::memory_order_relaxed);
}

Histogram::Histogram(std::span<const double> bounds)
    : bounds_(bounds), buckets_(std::make_unique<std::atomic<uint64_t>[]>(bounds.size() + 1)) {}

void Histogram::Observe(double value) {
  // NaN compares false with every bound, so lower_bound would put it first; like the Go client,
  // count it in +Inf.
  const size_t index =
      std::isnan(value)
          ? bounds_.size()
          : static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), value) -
                                bounds_.begin());
  buckets_[index].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
}

void Histogram::Merge(std::span<const uint64_t> bucket_counts, double sum) {
  if (bucket_counts.size() != bounds_.size() + 1) return;
  for (size_t i = 0; i < bucket_counts.size(); ++i) {
    if (bucket_counts[i] != 0) buckets_[i].fetch_add(bucket_counts[i], std::memory_order_relaxed);
  }
  sum_.fetch_add(sum, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::Read() const {
  Snapshot snapshot;
  snapshot.cumulative.resize(bounds_.size() + 1);
  uint64_t total = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    total += buckets_[i].load(std::memory_order_relaxed);
    snapshot.cumulative[i] = total;
  }
  snapshot.count = total;
  snapshot.sum = sum_.load(std::memory_order_relaxed);
  return snapshot;
}

std::vector<double> ExponentialBuckets(double start, double factor, int count) {
  std::vector<double> bounds;
  double bound = start;
  for (int i = 0; i < count; ++i) {
    bounds.push_back(bound);
    bound *= factor;
  }
  return bounds;
}

std::vector<double> LinearBuckets(double start, double width, int count) {
  std::vector<double> bounds;
  for (int i = 0; i < count; ++i) bounds.push_back(start + width * i);
  return bounds;
}

// ----- Families --------------------------------------------------------------------------------

template <typename T>
Family<T>::Family(std::string name, std::string help, std::vector<std::string> label_names,
                  std::vector<double> bounds)
    : FamilyBase(std::move(name), std::move(help), std::move(label_names),
                 std::is_same_v<T, Counter> ? MetricType::kCounter
                 : std::is_same_v<T, Gauge> ? MetricType::kGauge
                                            : MetricType::kHistogram),
      bounds_(std::move(bounds)) {
  // A family without labels has exactly one child; creating it now exposes it as 0 from the
  // start, so a scraper sees the series before the first event.
  if (this->label_names().empty())
    children_.emplace(std::vector<std::string>{}, NewChild<T>(bounds_));
}

template <typename T>
Result<T*> Family<T>::WithLabels(std::span<const std::string_view> values) {
  if (values.size() != label_names().size()) {
    std::string names;
    for (const std::string& label : label_names()) names += (names.empty() ? "" : ", ") + label;
    return InvalidArgumentError("metric '" + name() + "': " + std::to_string(values.size()) +
                                " label values given for " + std::to_string(label_names().size()) +
                                " label names (" + names + ")");
  }
  {
    std::shared_lock lock(mu_);
    auto it = children_.find(values);
    if (it != children_.end()) return it->second.get();
  }
  std::unique_lock lock(mu_);
  // Another thread may have created the child between the two locks.
  auto it = children_.lower_bound(values);
  if (it != children_.end() && !children_.key_comp()(values, it->first)) return it->second.get();
  it = children_.emplace_hint(it, std::vector<std::string>(values.begin(), values.end()),
                              NewChild<T>(bounds_));
  return it->second.get();
}

template <typename T>
void Family<T>::AppendExposition(std::string* out) const {
  std::shared_lock lock(mu_);
  if (children_.empty()) return;
  AppendHeader(*this, out);
  for (const auto& [values, child] : children_) {
    if constexpr (std::is_same_v<T, Histogram>) {
      const Histogram::Snapshot snapshot = child->Read();
      const std::string bucket_name = name() + "_bucket";
      for (size_t i = 0; i < bounds_.size(); ++i) {
        AppendSample(bucket_name, label_names(), values, FormatValue(bounds_[i]),
                     std::to_string(snapshot.cumulative[i]), out);
      }
      AppendSample(bucket_name, label_names(), values, "+Inf", std::to_string(snapshot.count), out);
      AppendSample(name() + "_sum", label_names(), values, "", FormatValue(snapshot.sum), out);
      AppendSample(name() + "_count", label_names(), values, "", std::to_string(snapshot.count),
                   out);
    } else {
      AppendSample(name(), label_names(), values, "", FormatValue(child->Value()), out);
    }
  }
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

// ----- Registry --------------------------------------------------------------------------------

Status MetricsRegistryOptions::Validate() const {
  if (process_metrics && proc_dir.empty()) {
    return InvalidArgumentError("metrics: proc_dir is empty but process metrics are enabled");
  }
  return Status::Ok();
}

MetricsRegistry::MetricsRegistry(MetricsRegistryOptions options) : options_(std::move(options)) {}

Status MetricsRegistry::Register(std::unique_ptr<FamilyBase> family) {
  const std::string& name = family->name();
  if (!IsValidMetricName(name)) {
    return InvalidArgumentError("metric name '" + name +
                                "' is not valid: it must match [a-zA-Z_:][a-zA-Z0-9_:]*");
  }
  if (family->type() == MetricType::kCounter && !name.ends_with("_total")) {
    return InvalidArgumentError("counter '" + name + "': the name must end in _total");
  }
  const std::vector<std::string>& labels = family->label_names();
  for (size_t i = 0; i < labels.size(); ++i) {
    if (!IsValidLabelName(labels[i])) {
      return InvalidArgumentError("metric '" + name + "': label name '" + labels[i] +
                                  "' is not valid: it must match [a-zA-Z_][a-zA-Z0-9_]*");
    }
    if (labels[i].starts_with("__")) {
      return InvalidArgumentError("metric '" + name + "': label name '" + labels[i] +
                                  "' is reserved: names starting with __ are Prometheus's");
    }
    if (family->type() == MetricType::kHistogram && labels[i] == "le") {
      return InvalidArgumentError("histogram '" + name +
                                  "': label name 'le' is reserved for the bucket bound");
    }
    for (size_t j = 0; j < i; ++j) {
      if (labels[j] == labels[i]) {
        return InvalidArgumentError("metric '" + name + "': label name '" + labels[i] +
                                    "' appears twice");
      }
    }
  }
  if (options_.process_metrics && std::find(kProcessMetricNames.begin(), kProcessMetricNames.end(),
                                            name) != kProcessMetricNames.end()) {
    return AlreadyExistsError("metric '" + name + "' is a process metric of this registry");
  }
  std::lock_guard lock(mu_);
  if (families_.contains(name)) {
    return AlreadyExistsError("metric '" + name + "' is already registered");
  }
  std::string key = name;
  families_.emplace(std::move(key), std::move(family));
  return Status::Ok();
}

Result<CounterFamily*> MetricsRegistry::AddCounter(std::string_view name, std::string_view help,
                                                   std::vector<std::string> label_names) {
  auto family = std::make_unique<CounterFamily>(std::string(name), std::string(help),
                                                std::move(label_names), std::vector<double>{});
  CounterFamily* raw = family.get();
  HML_RETURN_IF_ERROR(Register(std::move(family)));
  return raw;
}

Result<GaugeFamily*> MetricsRegistry::AddGauge(std::string_view name, std::string_view help,
                                               std::vector<std::string> label_names) {
  auto family = std::make_unique<GaugeFamily>(std::string(name), std::string(help),
                                              std::move(label_names), std::vector<double>{});
  GaugeFamily* raw = family.get();
  HML_RETURN_IF_ERROR(Register(std::move(family)));
  return raw;
}

Result<HistogramFamily*> MetricsRegistry::AddHistogram(std::string_view name, std::string_view help,
                                                       std::vector<std::string> label_names,
                                                       std::vector<double> bounds) {
  for (size_t i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds[i])) {
      return InvalidArgumentError("histogram '" + std::string(name) + "': bucket bound " +
                                  FormatValue(bounds[i]) + " is not finite (+Inf is implicit)");
    }
    if (i > 0 && !(bounds[i - 1] < bounds[i])) {
      return InvalidArgumentError(
          "histogram '" + std::string(name) + "': bucket bounds must be strictly increasing, but " +
          FormatValue(bounds[i]) + " follows " + FormatValue(bounds[i - 1]));
    }
  }
  auto family = std::make_unique<HistogramFamily>(std::string(name), std::string(help),
                                                  std::move(label_names), std::move(bounds));
  HistogramFamily* raw = family.get();
  HML_RETURN_IF_ERROR(Register(std::move(family)));
  return raw;
}

std::string MetricsRegistry::Expose() const {
  // Process metrics are read before taking the lock: procfs reads are the slow part.
  std::array<std::string, 5> process_blocks;
  bool have_process = false;
  if (options_.process_metrics) {
    Result<ProcessStats> stats = ReadProcessStats(options_.proc_dir);
    if (stats.ok()) {
      process_blocks = ProcessBlocks(*stats);
      have_process = true;
    }
  }
  std::string out;
  size_t next_process = have_process ? 0 : kProcessMetricNames.size();
  std::lock_guard lock(mu_);
  // Merge the two sorted sequences; names never collide (Register refuses process names).
  for (const auto& [name, family] : families_) {
    while (next_process < kProcessMetricNames.size() && kProcessMetricNames[next_process] < name) {
      out += process_blocks[next_process++];
    }
    family->AppendExposition(&out);
  }
  while (next_process < kProcessMetricNames.size()) out += process_blocks[next_process++];
  return out;
}

// ----- Text format -----------------------------------------------------------------------------

std::string EscapeHelp(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string EscapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"') {
      out += "\\\"";
    } else {
      out += c;
    }
  }
  return out;
}

std::string FormatValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buf[64];
  // Whole numbers below 1e15 (counts, bytes, seconds since the epoch) in plain digits, as the Go
  // client writes them ("400000", not "4e+05"); anything else in the shortest form that reads
  // back as the same double. 64 bytes hold either form of any such double.
  const bool whole = value == std::trunc(value) && std::fabs(value) < 1e15;
  const auto [end, ec] =
      whole ? std::to_chars(buf, buf + sizeof(buf), value, std::chars_format::fixed)
            : std::to_chars(buf, buf + sizeof(buf), value);
  if (ec != std::errc()) return "NaN";
  return std::string(buf, end);
}

// ----- Process metrics -------------------------------------------------------------------------

Result<ProcessStats> ReadProcessStats(const std::string& proc_dir) {
  const std::string stat_path = proc_dir + "/self/stat";
  HML_ASSIGN_OR_RETURN(const std::string stat, ReadProcFile(stat_path));
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so fields are counted
  // from the last ')'. Field numbers below are those of proc(5).
  const size_t paren = stat.rfind(')');
  if (paren == std::string::npos) {
    return InvalidArgumentError("'" + stat_path + "': no ')' closing the command name");
  }
  const std::vector<std::string_view> fields =
      SplitWhitespace(std::string_view(stat).substr(paren + 1));
  // fields[0] is field 3 (state); we need up to field 24 (rss).
  constexpr size_t kFirstField = 3;
  if (fields.size() < 24 - kFirstField + 1) {
    return InvalidArgumentError("'" + stat_path + "' has " +
                                std::to_string(fields.size() + kFirstField - 1) +
                                " fields, fewer than the 24 needed");
  }
  auto field = [&](size_t number) { return fields[number - kFirstField]; };
  HML_ASSIGN_OR_RETURN(const uint64_t utime, ParseUint(field(14), stat_path, "utime"));
  HML_ASSIGN_OR_RETURN(const uint64_t stime, ParseUint(field(15), stat_path, "stime"));
  HML_ASSIGN_OR_RETURN(const uint64_t start_ticks, ParseUint(field(22), stat_path, "starttime"));
  HML_ASSIGN_OR_RETURN(const uint64_t vsize, ParseUint(field(23), stat_path, "vsize"));
  HML_ASSIGN_OR_RETURN(const uint64_t rss_pages, ParseUint(field(24), stat_path, "rss"));

  // The start time in stat counts clock ticks since boot; the boot time is in <proc>/stat.
  const std::string boot_path = proc_dir + "/stat";
  HML_ASSIGN_OR_RETURN(const std::string boot_stat, ReadProcFile(boot_path));
  std::optional<uint64_t> btime;
  size_t line_start = 0;
  while (line_start < boot_stat.size()) {
    size_t line_end = boot_stat.find('\n', line_start);
    if (line_end == std::string::npos) line_end = boot_stat.size();
    const std::string_view line =
        std::string_view(boot_stat).substr(line_start, line_end - line_start);
    if (line.starts_with("btime ")) {
      HML_ASSIGN_OR_RETURN(btime, ParseUint(line.substr(6), boot_path, "btime"));
      break;
    }
    line_start = line_end + 1;
  }
  if (!btime.has_value()) return InvalidArgumentError("'" + boot_path + "' has no btime line");

  HML_ASSIGN_OR_RETURN(const std::vector<std::string> fds, ListDir(proc_dir + "/self/fd"));

  const double ticks_per_second = static_cast<double>(::sysconf(_SC_CLK_TCK));
  const double page_bytes = static_cast<double>(::sysconf(_SC_PAGESIZE));
  ProcessStats stats;
  stats.cpu_seconds = static_cast<double>(utime + stime) / ticks_per_second;
  stats.resident_bytes = static_cast<double>(rss_pages) * page_bytes;
  stats.virtual_bytes = static_cast<double>(vsize);
  stats.open_fds = static_cast<double>(fds.size());
  stats.start_time_seconds =
      static_cast<double>(*btime) + static_cast<double>(start_ticks) / ticks_per_second;
  return stats;
}

// ----- Serving metrics -------------------------------------------------------------------------

std::string_view ServingProtocolName(ServingProtocol protocol) {
  return protocol == ServingProtocol::kGrpc ? "grpc" : "http";
}

ModelMetrics::ModelMetrics(std::string model, std::string version, CounterFamily* requests,
                           CounterFamily* failures, CounterFamily* rejected,
                           CounterFamily* split_requests, Histogram* queue_time,
                           Histogram* compute_time, Histogram* batch_size)
    : model_(std::move(model)),
      version_(std::move(version)),
      requests_(requests),
      failures_(failures),
      rejected_(rejected),
      split_requests_(split_requests),
      queue_time_(queue_time),
      compute_time_(compute_time),
      batch_size_(batch_size) {}

Counter* ModelMetrics::Resolve(std::atomic<Counter*>& slot, CounterFamily* family,
                               ServingProtocol protocol, StatusCode code, bool with_code) {
  Counter* counter = slot.load(std::memory_order_acquire);
  if (counter != nullptr) return counter;
  const std::string_view protocol_name = ServingProtocolName(protocol);
  // Two threads may both get here; WithLabels gives both the same child.
  Result<Counter*> child =
      with_code ? family->WithLabels({model_, version_, protocol_name, StatusCodeName(code)})
                : family->WithLabels({model_, version_, protocol_name});
  if (!child.ok()) return nullptr;  // only if the family lost its labels: not recorded
  slot.store(*child, std::memory_order_release);
  return *child;
}

void ModelMetrics::RecordRequest(ServingProtocol protocol, StatusCode code) {
  int code_index = static_cast<int>(code);
  // A code outside the 17 canonical ones can only come from a cast; record it as UNKNOWN.
  if (code_index < 0 || code_index >= kCodes) code = StatusCode::kUnknown;
  code_index = static_cast<int>(code);
  const int index = static_cast<int>(protocol) * kCodes + code_index;
  if (Counter* c = Resolve(requests_by_code_[index], requests_, protocol, code, true)) {
    c->Increment();
  }
  if (code == StatusCode::kOk) return;
  if (Counter* c = Resolve(failures_by_code_[index], failures_, protocol, code, true)) {
    c->Increment();
  }
}

void ModelMetrics::RecordSplitRequest(ServingProtocol protocol, StatusCode code) {
  RecordRequest(protocol, code);
  if (static_cast<int>(code) < 0 || static_cast<int>(code) >= kCodes) code = StatusCode::kUnknown;
  const int index = static_cast<int>(protocol) * kCodes + static_cast<int>(code);
  if (Counter* c = Resolve(split_requests_by_code_[index], split_requests_, protocol, code, true)) {
    c->Increment();
  }
}

void ModelMetrics::RecordRejected(ServingProtocol protocol) {
  const int index = static_cast<int>(protocol);
  if (Counter* c =
          Resolve(rejected_by_protocol_[index], rejected_, protocol, StatusCode::kOk, false)) {
    c->Increment();
  }
}

Result<std::unique_ptr<ServingMetrics>> ServingMetrics::Create(
    MetricsRegistry& registry, const ServingMetricsOptions& options) {
  std::unique_ptr<ServingMetrics> metrics(new ServingMetrics());
  HML_ASSIGN_OR_RETURN(
      metrics->requests_,
      registry.AddCounter(kRequestsTotal, "Inference requests answered, by final status code.",
                          {"model", "version", "protocol", "code"}));
  HML_ASSIGN_OR_RETURN(
      metrics->failures_,
      registry.AddCounter(kFailuresTotal,
                          "Inference requests answered with a status other than OK.",
                          {"model", "version", "protocol", "code"}));
  HML_ASSIGN_OR_RETURN(
      metrics->rejected_,
      registry.AddCounter(kRejectedTotal,
                          "Inference requests refused by admission control (queue full).",
                          {"model", "version", "protocol"}));
  HML_ASSIGN_OR_RETURN(
      metrics->split_requests_,
      registry.AddCounter(kSplitRequestsTotal,
                          "Split inference requests (inputs at a cut; the server ran the tail) "
                          "answered, by final status code.",
                          {"model", "version", "protocol", "code"}));
  HML_ASSIGN_OR_RETURN(
      metrics->queue_time_,
      registry.AddHistogram(kQueueTimeSeconds,
                            "Seconds from admission to the start of the batch's compute.",
                            {"model", "version"}, options.queue_time_buckets));
  HML_ASSIGN_OR_RETURN(
      metrics->compute_time_,
      registry.AddHistogram(kComputeTimeSeconds, "Seconds of compute per executed batch.",
                            {"model", "version"}, options.compute_time_buckets));
  HML_ASSIGN_OR_RETURN(metrics->batch_size_,
                       registry.AddHistogram(kBatchSize, "Requests per executed batch.",
                                             {"model", "version"}, options.batch_size_buckets));
  return metrics;
}

Result<ModelMetrics*> ServingMetrics::ForModel(std::string_view model, std::string_view version) {
  std::lock_guard lock(mu_);
  std::pair<std::string, std::string> key(model, version);
  auto it = models_.find(key);
  if (it != models_.end()) return it->second.get();
  HML_ASSIGN_OR_RETURN(Histogram * queue_time, queue_time_->WithLabels({model, version}));
  HML_ASSIGN_OR_RETURN(Histogram * compute_time, compute_time_->WithLabels({model, version}));
  HML_ASSIGN_OR_RETURN(Histogram * batch_size, batch_size_->WithLabels({model, version}));
  std::unique_ptr<ModelMetrics> metrics(
      new ModelMetrics(std::string(model), std::string(version), requests_, failures_, rejected_,
                       split_requests_, queue_time, compute_time, batch_size));
  ModelMetrics* raw = metrics.get();
  models_.emplace(std::move(key), std::move(metrics));
  return raw;
}

}  // namespace hml::server

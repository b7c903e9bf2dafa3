// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The transport-independent half of the load generator: options, the open-loop run, percentiles
// and the JSON report. The transports live in grpc_target.cc and http_target.cc.
#include "src/server/loadgen/loadgen.h"

#include <sys/resource.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>
#include <numeric>
#include <string>
#include <utility>

#include "hml/runtime/tensor_util.h"
#include "src/server/loadgen/targets.h"

namespace hml::server {

Result<LoadProtocol> ParseLoadProtocol(std::string_view name) {
  if (name == "grpc") return LoadProtocol::kGrpc;
  if (name == "http") return LoadProtocol::kHttp;
  return InvalidArgumentError("protocol '" + std::string(name) + "' is not grpc or http");
}

Status LoadgenOptions::Validate() const {
  if (target.empty()) return InvalidArgumentError("loadgen: the target (host:port) is empty");
  if (model.empty()) return InvalidArgumentError("loadgen: the model name is empty");
  if (version < 0) {
    return InvalidArgumentError("loadgen: version " + std::to_string(version) +
                                " is negative (0 = latest)");
  }
  if (batch < 1 || batch > 65536) {
    return InvalidArgumentError("loadgen: batch " + std::to_string(batch) +
                                " is not in [1, 65536]");
  }
  if (timeout_ms < 0 || timeout_ms > int64_t{86400} * 1000) {
    return InvalidArgumentError("loadgen: timeout_ms " + std::to_string(timeout_ms) +
                                " is not in [0, 86400000]");
  }
  if (client_cert.empty() != client_key.empty()) {
    return InvalidArgumentError("loadgen: client_cert and client_key must be given together");
  }
  const bool https = target.rfind("https://", 0) == 0;
  if (!client_cert.empty() && ca_cert.empty() && !https) {
    return InvalidArgumentError(
        "loadgen: client_cert/client_key need TLS (ca_cert or an https:// target)");
  }
  if (http_connections < 1 || http_connections > 1024) {
    return InvalidArgumentError("loadgen: http_connections " + std::to_string(http_connections) +
                                " is not in [1, 1024]");
  }
  if (grpc_channels < 1 || grpc_channels > 64) {
    return InvalidArgumentError("loadgen: grpc_channels " + std::to_string(grpc_channels) +
                                " is not in [1, 64]");
  }
  if (connect_timeout_ms < 1) {
    return InvalidArgumentError("loadgen: connect_timeout_ms must be at least 1");
  }
  return Status::Ok();
}

Status RunOptions::Validate() const {
  if (!(rate > 0) || rate > 1e6) {
    return InvalidArgumentError("loadgen: rate " + std::to_string(rate) +
                                " is not in (0, 1000000] requests/s");
  }
  if (!(duration_seconds > 0) || duration_seconds > 86400) {
    return InvalidArgumentError("loadgen: duration " + std::to_string(duration_seconds) +
                                " s is not in (0, 86400]");
  }
  if (!(warmup_seconds >= 0) || warmup_seconds > 86400) {
    return InvalidArgumentError("loadgen: warmup " + std::to_string(warmup_seconds) +
                                " s is not in [0, 86400]");
  }
  if (!(drain_seconds >= 0) || drain_seconds > 86400) {
    return InvalidArgumentError("loadgen: drain " + std::to_string(drain_seconds) +
                                " s is not in [0, 86400]");
  }
  return Status::Ok();
}

Result<std::unique_ptr<LoadTarget>> ConnectLoadTarget(const LoadgenOptions& options, Clock* clock) {
  HML_RETURN_IF_ERROR(options.Validate());
  if (clock == nullptr) return InvalidArgumentError("loadgen: the clock is null");
  return options.protocol == LoadProtocol::kGrpc ? loadgen_internal::ConnectGrpc(options, clock)
                                                 : loadgen_internal::ConnectHttp(options, clock);
}

double Percentile(std::span<const double> sorted, double q) {
  if (sorted.empty()) return 0;
  q = std::clamp(q, 0.0, 100.0);
  // Nearest rank: the ceil(q/100 * n)-th smallest value (1-based), at least the first. The
  // epsilon keeps 99.9 % of 1000 at 999 (the product rounds to 999.0000000000001).
  const double n = static_cast<double>(sorted.size());
  const double rank = std::ceil(q / 100.0 * n - 1e-9 * n);
  const size_t index = rank < 1 ? 0 : static_cast<size_t>(rank) - 1;
  return sorted[std::min(index, sorted.size() - 1)];
}

LatencySummary Summarize(std::vector<double>& values_ms) {
  LatencySummary s;
  std::sort(values_ms.begin(), values_ms.end());
  s.count = static_cast<int64_t>(values_ms.size());
  if (values_ms.empty()) return s;
  s.mean_ms = std::accumulate(values_ms.begin(), values_ms.end(), 0.0) /
              static_cast<double>(values_ms.size());
  s.p50_ms = Percentile(values_ms, 50);
  s.p90_ms = Percentile(values_ms, 90);
  s.p99_ms = Percentile(values_ms, 99);
  s.p999_ms = Percentile(values_ms, 99.9);
  s.max_ms = values_ms.back();
  return s;
}

namespace {

// What the completion callbacks of one run write, shared with them: a callback that arrives
// after RunAtRate gave up waiting still finds it alive.
struct RunState {
  struct Record {
    bool done = false;
    LoadOutcome outcome = LoadOutcome::kError;
    double latency_ms = 0;
  };
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Record> records;  // GUARDED_BY(mu)
  int64_t outstanding = 0;      // GUARDED_BY(mu)
  int64_t first_counted = 0;    // records before it are warm-up
  std::string first_error;      // GUARDED_BY(mu)
};

// User + system CPU seconds of this process so far.
double ProcessCpuSeconds() {
  rusage usage{};
  if (getrusage(RUSAGE_SELF, &usage) != 0) return 0;
  auto seconds = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

}  // namespace

Result<RateResult> RunAtRate(LoadTarget& target, const RunOptions& options, Clock* clock) {
  HML_RETURN_IF_ERROR(options.Validate());
  if (clock == nullptr) return InvalidArgumentError("loadgen: the clock is null");
  const double interval_nanos = 1e9 / options.rate;
  const int64_t warmup_count = std::llround(options.warmup_seconds * options.rate);
  const int64_t counted =
      std::max<int64_t>(1, std::llround(options.duration_seconds * options.rate));
  const int64_t total = warmup_count + counted;
  auto state = std::make_shared<RunState>();
  state->records.resize(static_cast<size_t>(total));
  state->first_counted = warmup_count;

  RateResult result;
  result.offered_rate = options.rate;
  result.duration_seconds = options.duration_seconds;
  result.sent = counted;
  int64_t max_lag_nanos = 0;
  const double cpu_start = ProcessCpuSeconds();
  const int64_t t0 = clock->NowNanos() + 1'000'000;  // 1 ms to get going
  for (int64_t i = 0; i < total; ++i) {
    const int64_t intended = t0 + static_cast<int64_t>(static_cast<double>(i) * interval_nanos);
    // Sleep rather than spin, so that the sender does not take a core from a server on the same
    // machine. An oversleep sends the requests that came due in a burst; their latencies still
    // count from their intended times.
    const int64_t ahead = intended - clock->NowNanos();
    if (ahead > 0) clock->SleepNanos(ahead);
    if (i >= warmup_count) max_lag_nanos = std::max(max_lag_nanos, clock->NowNanos() - intended);
    {
      std::lock_guard<std::mutex> lock(state->mu);
      ++state->outstanding;
    }
    target.Send(intended, [state, clock, intended, i](LoadOutcome outcome, std::string_view error) {
      const int64_t now = clock->NowNanos();
      std::lock_guard<std::mutex> lock(state->mu);
      RunState::Record& r = state->records[static_cast<size_t>(i)];
      r.done = true;
      r.outcome = outcome;
      r.latency_ms = static_cast<double>(now - intended) / 1e6;
      if (outcome == LoadOutcome::kError && i >= state->first_counted &&
          state->first_error.empty()) {
        state->first_error = std::string(error);
      }
      if (--state->outstanding == 0) state->cv.notify_all();
    });
  }
  result.max_send_lag_ms = static_cast<double>(max_lag_nanos) / 1e6;

  std::unique_lock<std::mutex> lock(state->mu);
  state->cv.wait_for(lock, std::chrono::duration<double>(options.drain_seconds),
                     [&] { return state->outstanding == 0; });
  std::vector<double> rejected_ms;
  int64_t unanswered = 0;
  for (int64_t i = warmup_count; i < total; ++i) {
    const RunState::Record& r = state->records[static_cast<size_t>(i)];
    if (!r.done) {
      ++unanswered;
      continue;
    }
    switch (r.outcome) {
      case LoadOutcome::kOk:
        ++result.ok;
        result.ok_latencies_ms.push_back(r.latency_ms);
        break;
      case LoadOutcome::kRejected:
        ++result.rejected;
        rejected_ms.push_back(r.latency_ms);
        break;
      case LoadOutcome::kDeadline:
        ++result.deadline;
        break;
      case LoadOutcome::kError:
        ++result.errors;
        break;
    }
  }
  result.first_error = state->first_error;
  lock.unlock();
  const double wall_seconds = static_cast<double>(clock->NowNanos() - t0) / 1e9;
  if (wall_seconds > 0) result.client_cpu_cores = (ProcessCpuSeconds() - cpu_start) / wall_seconds;
  if (unanswered > 0) {
    result.errors += unanswered;
    if (result.first_error.empty()) {
      result.first_error = std::to_string(unanswered) + " request(s) unanswered " +
                           std::to_string(options.drain_seconds) + " s after the last send";
    }
  }
  result.goodput = static_cast<double>(result.ok) / options.duration_seconds;
  result.ok_latency = Summarize(result.ok_latencies_ms);
  result.rejected_latency = Summarize(rejected_ms);
  return result;
}

Result<std::vector<double>> ParseRates(std::string_view list) {
  std::vector<double> rates;
  size_t start = 0;
  while (start <= list.size()) {
    const size_t comma = std::min(list.find(',', start), list.size());
    const std::string item(list.substr(start, comma - start));
    double rate = 0;
    auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), rate);
    if (item.empty() || ec != std::errc() || end != item.data() + item.size() || !(rate > 0) ||
        rate > 1e6) {
      return InvalidArgumentError("rate '" + item + "' is not a number in (0, 1000000]");
    }
    rates.push_back(rate);
    start = comma + 1;
  }
  return rates;
}

namespace {

nlohmann::json SummaryJson(const LatencySummary& s) {
  return {{"count", s.count},   {"mean_ms", s.mean_ms}, {"p50_ms", s.p50_ms}, {"p90_ms", s.p90_ms},
          {"p99_ms", s.p99_ms}, {"p999_ms", s.p999_ms}, {"max_ms", s.max_ms}};
}

}  // namespace

std::string RateResultsToJson(const LoadgenOptions& options, const RunOptions& run,
                              std::span<const RateResult> results) {
  nlohmann::json doc;
  doc["tool"] = "hybridml loadgen";
  doc["target"] = options.target;
  doc["protocol"] = options.protocol == LoadProtocol::kGrpc ? "grpc" : "http";
  doc["model"] = options.model;
  doc["version"] = options.version;
  doc["batch"] = options.batch;
  doc["timeout_ms"] = options.timeout_ms;
  doc["http_connections"] = options.http_connections;
  doc["grpc_channels"] = options.grpc_channels;
  doc["duration_s"] = run.duration_seconds;
  doc["warmup_s"] = run.warmup_seconds;
  doc["latency_from"] = "intended send time";
  nlohmann::json points = nlohmann::json::array();
  for (const RateResult& r : results) {
    points.push_back({{"offered_per_s", r.offered_rate},
                      {"goodput_per_s", r.goodput},
                      {"sent", r.sent},
                      {"ok", r.ok},
                      {"rejected", r.rejected},
                      {"deadline", r.deadline},
                      {"errors", r.errors},
                      {"ok_latency", SummaryJson(r.ok_latency)},
                      {"rejected_latency", SummaryJson(r.rejected_latency)},
                      {"max_send_lag_ms", r.max_send_lag_ms},
                      {"client_cpu_cores", r.client_cpu_cores},
                      {"first_error", r.first_error}});
  }
  doc["points"] = std::move(points);
  // Server messages may hold invalid UTF-8: replaced, never thrown about.
  return doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

namespace loadgen_internal {

Result<V2InferRequest> RandomRequest(const std::vector<TensorSpec>& inputs, int64_t batch,
                                     uint64_t seed) {
  V2InferRequest request;
  for (const TensorSpec& spec : inputs) {
    if (spec.dtype == DType::kUndefined) {
      return InvalidArgumentError("input '" + spec.name + "' has no datatype");
    }
    Shape shape = spec.shape;
    bool batch_set = false;
    for (int64_t& d : shape) {
      if (d >= 0) continue;
      d = batch_set ? 1 : batch;
      batch_set = true;
    }
    HML_RETURN_IF_ERROR(
        CheckedNumElements(shape, spec.dtype).status().WithContext("input '" + spec.name + "'"));
    HML_ASSIGN_OR_RETURN(Tensor t, Tensor::Allocate(spec.dtype, shape));
    FillRandom(t, seed++);
    request.inputs.push_back(NamedTensor{spec.name, std::move(t)});
  }
  if (request.inputs.empty()) return InvalidArgumentError("the model has no inputs");
  return request;
}

std::string FirstInputShape(const V2InferRequest& request) {
  return request.inputs.empty() ? "[]" : ShapeToString(request.inputs[0].tensor.shape());
}

Result<HostPort> ParseTarget(const std::string& target) {
  HostPort hp;
  std::string rest = target;
  const size_t scheme_end = rest.find("://");
  if (scheme_end != std::string::npos) {
    hp.scheme = rest.substr(0, scheme_end);
    rest = rest.substr(scheme_end + 3);
    if (hp.scheme != "http" && hp.scheme != "https" && hp.scheme != "grpc") {
      return InvalidArgumentError("target '" + target + "': scheme '" + hp.scheme +
                                  "' is not http, https or grpc");
    }
  }
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  const size_t colon = rest.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return InvalidArgumentError("target '" + target + "' is not host:port");
  }
  hp.host = rest.substr(0, colon);
  const std::string port = rest.substr(colon + 1);
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), hp.port);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || hp.port < 1 ||
      hp.port > 65535) {
    return InvalidArgumentError("target '" + target + "': port '" + port +
                                "' is not in [1, 65535]");
  }
  return hp;
}

}  // namespace loadgen_internal
}  // namespace hml::server

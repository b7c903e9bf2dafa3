// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The Router's routing logic; router.h explains the policies, the fallback rule and threading.
#include "src/sdk/router.h"

#ifdef __linux__
#include <sys/prctl.h>
#endif

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <thread>
#include <utility>

#include "src/sdk/split/cut_quantization.h"

namespace hml::sdk {

std::string_view RoutePolicyName(RoutePolicy policy) {
  switch (policy) {
    case RoutePolicy::kLocalOnly:
      return "local-only";
    case RoutePolicy::kCloudOnly:
      return "cloud-only";
    case RoutePolicy::kPreferLocal:
      return "prefer-local";
    case RoutePolicy::kPreferCloud:
      return "prefer-cloud";
    case RoutePolicy::kCascade:
      return "cascade";
    case RoutePolicy::kSplit:
      return "split";
  }
  return "unknown";
}

std::string_view PlacementName(Placement placement) {
  switch (placement) {
    case Placement::kLocal:
      return "local";
    case Placement::kCloud:
      return "cloud";
    case Placement::kLocalAfterCloudFailure:
      return "local-after-cloud-failure";
    case Placement::kCloudAfterLocalFailure:
      return "cloud-after-local-failure";
    case Placement::kCascadeLocal:
      return "cascade-local";
    case Placement::kCascadeOffloaded:
      return "cascade-offloaded";
    case Placement::kSplit:
      return "split";
  }
  return "unknown";
}

Status RouterOptions::Validate() const {
  if (transport == nullptr) return InvalidArgumentError("RouterOptions.transport is required");
  if (local_reserve_nanos < 0) {
    return InvalidArgumentError("RouterOptions.local_reserve_nanos must be >= 0");
  }
  return resilience.Validate();
}

Status SplitConfig::Validate() const {
  HML_RETURN_IF_ERROR(candidates.Validate());
  HML_RETURN_IF_ERROR(plan.Validate());
  HML_RETURN_IF_ERROR(default_link.Validate());
  if (!(server_speedup > 0) || !std::isfinite(server_speedup)) {
    return InvalidArgumentError("SplitConfig.server_speedup must be finite and > 0");
  }
  if (profile_runs < 1) return InvalidArgumentError("SplitConfig.profile_runs must be >= 1");
  if (max_cached_sessions < 1) {
    return InvalidArgumentError("SplitConfig.max_cached_sessions must be >= 1");
  }
  if (explore_every < 0) return InvalidArgumentError("SplitConfig.explore_every must be >= 0");
  return Status::Ok();
}

namespace {

// How long (real time) a finished cloud call waits for the CallStats of attempts cancelled at its
// end; the transport answers a Cancel() at once, so this bounds a slow callback thread only.
constexpr int64_t kLateStatsWaitNanos = 5'000'000;

// Weight of the newest sample in the latency moving averages.
constexpr double kAverageWeight = 0.2;

double Blend(double average, double sample) {
  return average <= 0 ? sample : (1 - kAverageWeight) * average + kAverageWeight * sample;
}

// Runs `session` on `inputs` matched to its inputs by name; the outputs by name.
Result<std::vector<NamedTensor>> RunNamed(Session& session, std::span<const NamedTensor> inputs) {
  std::vector<Tensor> ordered;
  ordered.reserve(session.num_inputs());
  for (size_t i = 0; i < session.num_inputs(); ++i) {
    const std::string& want = session.input_spec(i).name;
    auto it = std::find_if(inputs.begin(), inputs.end(),
                           [&](const NamedTensor& t) { return t.name == want; });
    if (it == inputs.end()) {
      return InvalidArgumentError("local model: input '" + want + "' is missing");
    }
    // A view: Session::Run only reads its inputs.
    ordered.push_back(Tensor::View(it->tensor.dtype(), it->tensor.shape(),
                                   const_cast<void*>(it->tensor.raw_data())));
  }
  HML_ASSIGN_OR_RETURN(std::vector<Tensor> outputs, session.Run(ordered));
  std::vector<NamedTensor> named;
  named.reserve(outputs.size());
  for (size_t i = 0; i < outputs.size(); ++i) {
    named.push_back({session.output_spec(i).name, std::move(outputs[i])});
  }
  return named;
}

// A LocalRunner over one Session: inputs are matched to the session's inputs by name.
class SessionRunner final : public LocalRunner {
 public:
  explicit SessionRunner(std::unique_ptr<Session> session) : session_(std::move(session)) {}

  Result<std::vector<NamedTensor>> Run(std::span<const NamedTensor> inputs) override {
    return RunNamed(*session_, inputs);
  }

 private:
  std::unique_ptr<Session> session_;
};

// Device compute is timed on the steady clock, whatever the transport's clock is (a simulator's
// manual clock does not advance while the CPU computes).
int64_t SteadyNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Device-slowdown emulation: after a local compute that took `compute_nanos`, sleeps
// (slowdown - 1) x that on the real clock. On Linux the calling thread's timer slack is set to
// 1 us first (once per thread): the default 50 us would add about that much to every sleep,
// which is the size of a small model's whole emulated compute.
void EmulateSlowdown(double slowdown, int64_t compute_nanos) {
  if (slowdown <= 1.0 || compute_nanos <= 0) return;
#ifdef __linux__
  thread_local const bool tight_slack = prctl(PR_SET_TIMERSLACK, 1000UL, 0UL, 0UL, 0UL) == 0;
  (void)tight_slack;
#endif
  std::this_thread::sleep_for(std::chrono::nanoseconds(
      static_cast<int64_t>((slowdown - 1.0) * static_cast<double>(compute_nanos))));
}

// The smallest over rows of the largest value of `t`'s last dimension (after a softmax when
// `logits`). kInvalidArgument for a non-float32 or empty output.
Result<double> Top1(const Tensor& t, bool logits) {
  if (t.dtype() != DType::kFloat32 || t.num_elements() == 0 || t.rank() == 0) {
    return InvalidArgumentError(
        "cascade: the local model's first output is not a non-empty "
        "float32 tensor of probabilities");
  }
  const int64_t classes = t.dim(t.rank() - 1);
  if (classes <= 0) return InvalidArgumentError("cascade: the first output has no classes");
  std::span<const float> v = t.values<float>();
  double lowest = 1e30;
  for (int64_t row = 0; row * classes < static_cast<int64_t>(v.size()); ++row) {
    std::span<const float> r =
        v.subspan(static_cast<size_t>(row * classes), static_cast<size_t>(classes));
    double top = *std::max_element(r.begin(), r.end());
    if (logits) {
      double sum = 0;
      for (float x : r) sum += std::exp(static_cast<double>(x) - top);
      top = 1.0 / sum;  // exp(top - top) / sum
    }
    lowest = std::min(lowest, top);
  }
  return lowest;
}

std::string FormatTop1(double top1, double threshold, bool offload) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "top1 %.3f %s %.3f", top1, offload ? "<" : ">=", threshold);
  return buf;
}

}  // namespace

struct Router::Entry {
  std::string name;
  ModelConfig config;
  // Null when there is no usable local model; `local_status` then says why.
  std::shared_ptr<LocalRunner> runner;
  Status local_status;
  bool local_configured = false;
  std::mutex run_mu;  // serializes runner->Run()

  mutable std::mutex stats_mu;
  double local_avg_nanos = 0;  // guarded by stats_mu
  double cloud_avg_nanos = 0;  // guarded by stats_mu

  // The split policy's state; null for other policies.
  std::unique_ptr<SplitState> split;
};

struct Router::SplitState {
  Model model;
  std::vector<SplitCandidate> candidates;
  size_t local_index = 0;
  // The fixed candidate, or candidates.size() to plan per request.
  size_t fixed = 0;
  SplitProfile profile;  // guarded by Entry::stats_mu
  // Planned requests in a row that ran nothing on the device; guarded by Entry::stats_mu.
  int without_device_run = 0;

  // Head and tail Sessions by (candidate, tail), guarded by Entry::run_mu.
  struct Cached {
    size_t index = 0;
    bool tail = false;
    std::unique_ptr<Session> session;
    int64_t last_use = 0;
  };
  std::vector<Cached> sessions;
  int64_t tick = 0;

  explicit SplitState(Model m) : model(std::move(m)) {}

  // The head (tail = false) or tail Session of candidate `index`, created on first use.
  // REQUIRES: Entry::run_mu held; the candidate is a cut (not local, not input).
  Result<Session*> GetSession(size_t index, bool tail, const SessionOptions& options,
                              int max_cached) {
    ++tick;
    for (Cached& c : sessions) {
      if (c.index == index && c.tail == tail) {
        c.last_use = tick;
        return c.session.get();
      }
    }
    const std::vector<std::string>& cut = candidates[index].tensors;
    Result<Model> part = tail ? model.Slice(cut, {}) : model.Slice({}, cut);
    if (!part.ok()) {
      return part.status().WithContext(std::string(tail ? "tail" : "head") + " of " +
                                       candidates[index].label);
    }
    HML_ASSIGN_OR_RETURN(std::unique_ptr<Session> session, Session::Create(*part, options));
    if (static_cast<int>(sessions.size()) >= max_cached) {
      auto oldest = std::min_element(
          sessions.begin(), sessions.end(),
          [](const Cached& a, const Cached& b) { return a.last_use < b.last_use; });
      sessions.erase(oldest);
    }
    sessions.push_back({index, tail, std::move(session), tick});
    return sessions.back().session.get();
  }
};

Router::Router(RouterOptions options, std::unique_ptr<Scheduler> own_scheduler,
               std::unique_ptr<ResilientCaller> caller)
    : options_(std::move(options)),
      clock_(options_.transport->clock()),
      own_scheduler_(std::move(own_scheduler)),
      caller_(std::move(caller)) {}

Router::~Router() = default;

Result<std::unique_ptr<Router>> Router::Create(RouterOptions options) {
  HML_RETURN_IF_ERROR(options.Validate());
  std::unique_ptr<Scheduler> own;
  Scheduler* scheduler = options.scheduler;
  if (scheduler == nullptr) {
    own = std::make_unique<ThreadScheduler>(options.transport->clock());
    scheduler = own.get();
  }
  HML_ASSIGN_OR_RETURN(std::unique_ptr<ResilientCaller> caller,
                       ResilientCaller::Create(options.resilience, scheduler));
  return std::unique_ptr<Router>(new Router(std::move(options), std::move(own), std::move(caller)));
}

Status Router::AddModel(const std::string& name, ModelConfig config) {
  const std::string what =
      "model '" + name + "' (" + std::string(RoutePolicyName(config.policy)) + ")";
  if (name.empty()) return InvalidArgumentError("Router::AddModel: empty model name");
  const bool local = config.local_model.has_value() || config.local_runner != nullptr;
  const bool cloud = !config.cloud_model.empty();
  const RoutePolicy p = config.policy;
  if (!cloud && p != RoutePolicy::kLocalOnly && p != RoutePolicy::kPreferLocal) {
    return InvalidArgumentError(what + ": the policy needs ModelConfig.cloud_model");
  }
  if (!local && (p == RoutePolicy::kLocalOnly || p == RoutePolicy::kCascade)) {
    return InvalidArgumentError(what + ": the policy needs a local model");
  }
  if (!local && !cloud) return InvalidArgumentError(what + ": neither a local nor a cloud model");
  if (config.default_deadline_nanos <= 0) {
    return InvalidArgumentError(what + ": default_deadline_nanos must be > 0");
  }
  if (config.expected_cloud_latency_nanos < 0 || config.cloud_version < 0) {
    return InvalidArgumentError(what +
                                ": expected_cloud_latency_nanos and cloud_version must be >= 0");
  }
  if (std::isnan(config.cascade_threshold)) {
    return InvalidArgumentError(what + ": cascade_threshold is NaN");
  }
  if (!(config.device_slowdown >= 1.0) || !std::isfinite(config.device_slowdown)) {
    return InvalidArgumentError(what + ": device_slowdown must be finite and >= 1");
  }
  if (p == RoutePolicy::kSplit) {
    if (!config.local_model.has_value()) {
      return InvalidArgumentError(what + ": the policy needs ModelConfig.local_model (a Model)");
    }
    if (Status s = config.split.Validate(); !s.ok()) return s.WithContext(what);
  }

  auto entry = std::make_shared<Entry>();
  entry->name = name;
  entry->local_configured = local;
  entry->cloud_avg_nanos = static_cast<double>(config.expected_cloud_latency_nanos);
  if (config.local_runner != nullptr) {
    entry->runner = config.local_runner;
  } else if (config.local_model.has_value()) {
    Result<std::unique_ptr<Session>> session =
        Session::Create(*config.local_model, config.session_options);
    if (session.ok()) {
      entry->runner = std::make_shared<SessionRunner>(std::move(*session));
    } else {
      entry->local_status =
          session.status().WithContext("local model of '" + name + "' cannot be compiled");
    }
  } else {
    entry->local_status = NotFoundError("model '" + name + "' has no local model");
  }
  if (p == RoutePolicy::kSplit) {
    if (entry->runner == nullptr) return entry->local_status;
    Result<std::unique_ptr<SplitState>> split = PrepareSplit(name, *config.local_model, config);
    if (!split.ok()) return split.status().WithContext(what);
    entry->split = std::move(*split);
    entry->local_avg_nanos = entry->split->profile.device_nanos[entry->split->local_index];
  }
  config.local_model.reset();  // the Session (and the split state) hold what they need
  entry->config = std::move(config);

  std::lock_guard<std::mutex> lock(mu_);
  if (!models_.emplace(name, std::move(entry)).second) {
    return AlreadyExistsError("Router::AddModel: model '" + name + "' is already registered");
  }
  return Status::Ok();
}

Result<std::shared_ptr<Router::Entry>> Router::Find(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = models_.find(name);
  if (it == models_.end()) return NotFoundError("Router: no model '" + name + "' registered");
  return it->second;
}

Result<std::vector<NamedTensor>> Router::RunLocal(Entry& entry, std::span<const NamedTensor> inputs,
                                                  RouteInfo& route) {
  if (entry.runner == nullptr) return entry.local_status;
  const int64_t start = clock_->NowNanos();
  int64_t compute = 0;  // the run itself, on the steady clock, without waiting for run_mu
  Result<std::vector<NamedTensor>> out = [&] {
    std::lock_guard<std::mutex> lock(entry.run_mu);
    const int64_t run_start = SteadyNanos();
    Result<std::vector<NamedTensor>> o = entry.runner->Run(inputs);
    compute = SteadyNanos() - run_start;
    EmulateSlowdown(entry.config.device_slowdown, compute);
    return o;
  }();
  ++route.local_runs;
  if (out.ok()) {
    std::lock_guard<std::mutex> lock(entry.stats_mu);
    entry.local_avg_nanos =
        Blend(entry.local_avg_nanos, static_cast<double>(clock_->NowNanos() - start));
    if (entry.split != nullptr) {
      RecordDeviceRun(entry.split->profile, entry.split->local_index,
                      entry.config.device_slowdown * static_cast<double>(compute));
    }
  }
  return out;
}

int64_t Router::CloudDeadline(const Entry& entry, int64_t deadline_nanos) const {
  if (entry.runner == nullptr) return deadline_nanos;
  double local_avg;
  {
    std::lock_guard<std::mutex> lock(entry.stats_mu);
    local_avg = entry.local_avg_nanos;
  }
  const int64_t reserve =
      std::max(options_.local_reserve_nanos, static_cast<int64_t>(2 * local_avg));
  return deadline_nanos - reserve;
}

Router::CloudOutcome Router::RunCloud(Entry& entry, std::span<const NamedTensor> inputs,
                                      int64_t deadline_nanos, RouteInfo& route) {
  // Shared with the transport's callbacks, which may outlive this call (a cancelled attempt
  // reports later).
  struct Shared {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    CallReport report;
    std::optional<std::vector<NamedTensor>> answer;
    int64_t bytes_sent = 0;
    int64_t bytes_received = 0;
    int outstanding = 0;  // transport calls whose callback has not run yet
  };
  auto shared = std::make_shared<Shared>();
  Transport* transport = options_.transport;
  const std::string model = entry.config.cloud_model;
  const int64_t version = entry.config.cloud_version;

  // The driver may start an attempt on another thread while the call is finishing (it checks
  // "done" and then calls the attempt function outside its lock), so the attempt function may
  // run after this function returned: it reads `inputs` only under `ref->mu` while
  // `ref->valid`, which this function clears before returning.
  struct InputsRef {
    std::mutex mu;
    std::span<const NamedTensor> inputs;
    bool valid = true;
  };
  auto ref = std::make_shared<InputsRef>();
  ref->inputs = inputs;

  AttemptFn attempt = [shared, ref, transport, model, version](const AttemptInfo& info,
                                                               AttemptDone done) -> CancelFn {
    InferCall call;
    call.model = model;
    call.version = version;
    call.deadline_nanos = info.deadline_nanos;
    Status copied;  // `done` is called after ref->mu is released: it may finish the call
    {
      std::lock_guard<std::mutex> lock(ref->mu);
      if (!ref->valid) copied = CancelledError("cloud call already finished");
      for (size_t i = 0; copied.ok() && i < ref->inputs.size(); ++i) {
        const NamedTensor& in = ref->inputs[i];
        Result<Tensor> copy = in.tensor.Clone();
        if (copy.ok()) {
          call.inputs.push_back({in.name, std::move(*copy), in.parameters});
        } else {
          copied = copy.status();
        }
      }
    }
    if (!copied.ok()) {
      done(std::move(copied));
      return {};
    }
    {
      std::lock_guard<std::mutex> lock(shared->mu);
      ++shared->outstanding;
    }
    const CallId id = transport->Infer(
        std::move(call),
        [shared, done = std::move(done)](Result<InferAnswer> answer, const CallStats& stats) {
          Status status = answer.status();
          {
            std::lock_guard<std::mutex> lock(shared->mu);
            shared->bytes_sent += stats.bytes_sent;
            shared->bytes_received += stats.bytes_received;
            if (answer.ok() && !shared->answer.has_value()) {
              shared->answer = std::move(answer->outputs);
            }
            if (--shared->outstanding == 0) shared->cv.notify_all();
          }
          done(status);
        });
    return [transport, id] { transport->Cancel(id); };
  };

  caller_->Call(deadline_nanos, std::move(attempt), [shared](const CallReport& report) {
    std::lock_guard<std::mutex> lock(shared->mu);
    shared->report = report;
    shared->done = true;
    shared->cv.notify_all();
  });

  {
    std::unique_lock<std::mutex> lock(shared->mu);
    shared->cv.wait(lock, [&] { return shared->done; });
    // Attempts the driver cancelled at the end (the deadline, a hedging loser) report their
    // CallStats a moment later; wait briefly so that their bytes are counted.
    shared->cv.wait_for(lock, std::chrono::nanoseconds(kLateStatsWaitNanos),
                        [&] { return shared->outstanding == 0; });
  }
  {
    std::lock_guard<std::mutex> ref_lock(ref->mu);
    ref->valid = false;
  }
  CloudOutcome outcome;
  std::lock_guard<std::mutex> lock(shared->mu);
  outcome.attempts = shared->report.attempts;
  outcome.breaker_refused = shared->report.breaker_refused;
  outcome.bytes_sent = shared->bytes_sent;
  outcome.bytes_received = shared->bytes_received;
  outcome.elapsed_nanos = shared->report.elapsed_nanos;
  if (shared->report.status.ok() && shared->answer.has_value()) {
    outcome.outputs = std::move(*shared->answer);
    std::lock_guard<std::mutex> stats_lock(entry.stats_mu);
    entry.cloud_avg_nanos =
        Blend(entry.cloud_avg_nanos, static_cast<double>(shared->report.elapsed_nanos));
  } else if (shared->report.status.ok()) {
    outcome.outputs = InternalError("cloud call reported OK without an answer");
  } else {
    outcome.outputs = shared->report.status;
  }
  route.attempts += outcome.attempts;
  route.bytes_sent += outcome.bytes_sent;
  route.bytes_received += outcome.bytes_received;
  route.cloud_status = outcome.outputs.status().ToString();
  return outcome;
}

Result<RoutedResult> Router::Complete(RoutedResult& result, int64_t start_nanos,
                                      Placement placement, std::string reason,
                                      std::vector<NamedTensor> outputs) const {
  result.route.placement = placement;
  result.route.reason = std::move(reason);
  result.route.latency_nanos = clock_->NowNanos() - start_nanos;
  result.outputs = std::move(outputs);
  return std::move(result);
}

Result<RoutedResult> Router::Infer(const std::string& name, std::span<const NamedTensor> inputs,
                                   int64_t deadline_nanos) {
  HML_ASSIGN_OR_RETURN(std::shared_ptr<Entry> entry, Find(name));
  const ModelConfig& config = entry->config;
  const int64_t start = clock_->NowNanos();
  if (deadline_nanos == 0) deadline_nanos = start + config.default_deadline_nanos;

  RoutedResult result;
  RouteInfo& route = result.route;
  auto done = [&](Placement placement, std::string reason, std::vector<NamedTensor> outputs) {
    return Complete(result, start, placement, std::move(reason), std::move(outputs));
  };
  auto cloud = [&](int64_t cloud_deadline) {
    return RunCloud(*entry, inputs, cloud_deadline, route);
  };
  // A cloud call that falls back to the local model when it fails (the rule for every policy),
  // unless the local model already failed for this request (`local_error` not OK).
  auto cloud_first = [&](const Status& local_error) -> Result<RoutedResult> {
    const bool fallback = entry->runner != nullptr && local_error.ok();
    CloudOutcome c = cloud(fallback ? CloudDeadline(*entry, deadline_nanos) : deadline_nanos);
    if (c.outputs.ok() && !local_error.ok()) {
      return done(Placement::kCloudAfterLocalFailure, "local failed: " + local_error.ToString(),
                  std::move(*c.outputs));
    }
    if (c.outputs.ok()) return done(Placement::kCloud, "policy", std::move(*c.outputs));
    const Status cloud_error = c.outputs.status();
    if (!fallback) return cloud_error.WithContext("model '" + name + "': cloud call failed");
    if (clock_->NowNanos() >= deadline_nanos) {
      return cloud_error.WithContext("model '" + name +
                                     "': cloud call failed and the deadline passed");
    }
    Result<std::vector<NamedTensor>> local = RunLocal(*entry, inputs, route);
    if (!local.ok()) {
      return local.status().WithContext("model '" + name + "': local fallback failed after " +
                                        cloud_error.ToString());
    }
    return done(Placement::kLocalAfterCloudFailure,
                c.breaker_refused ? "breaker open" : "cloud failed: " + cloud_error.ToString(),
                std::move(*local));
  };

  switch (config.policy) {
    case RoutePolicy::kLocalOnly: {
      Result<std::vector<NamedTensor>> local = RunLocal(*entry, inputs, route);
      if (!local.ok()) return local.status().WithContext("model '" + name + "' (local-only)");
      return done(Placement::kLocal, "policy", std::move(*local));
    }
    case RoutePolicy::kCloudOnly:
      return cloud_first(Status::Ok());
    case RoutePolicy::kPreferLocal: {
      Status local_error = entry->local_status;
      if (entry->runner != nullptr) {
        Result<std::vector<NamedTensor>> local = RunLocal(*entry, inputs, route);
        if (local.ok()) return done(Placement::kLocal, "policy", std::move(*local));
        local_error = local.status();
      }
      if (config.cloud_model.empty()) {
        return local_error.WithContext("model '" + name + "' (prefer-local, no cloud model)");
      }
      CloudOutcome c = cloud(deadline_nanos);
      if (!c.outputs.ok()) {
        return c.outputs.status().WithContext("model '" + name + "': cloud call failed after " +
                                              local_error.ToString());
      }
      if (!entry->local_configured) {
        return done(Placement::kCloud, "no local model", std::move(*c.outputs));
      }
      return done(Placement::kCloudAfterLocalFailure, "local failed: " + local_error.ToString(),
                  std::move(*c.outputs));
    }
    case RoutePolicy::kPreferCloud: {
      Status local_error;
      if (entry->runner != nullptr) {
        std::string reason;
        CircuitBreaker* b = caller_->breaker();
        if (b != nullptr && b->state() == BreakerState::kOpen) {
          reason = "breaker open";
        } else {
          double expected;
          {
            std::lock_guard<std::mutex> lock(entry->stats_mu);
            expected = entry->cloud_avg_nanos;
          }
          if (static_cast<double>(deadline_nanos - clock_->NowNanos()) < expected) {
            reason = "deadline near";
          }
        }
        if (!reason.empty()) {
          Result<std::vector<NamedTensor>> local = RunLocal(*entry, inputs, route);
          if (local.ok()) return done(Placement::kLocal, std::move(reason), std::move(*local));
          // The local model failed: the cloud is still worth a try (a half-open breaker or a
          // fast answer may still come), without a second local run.
          local_error = local.status();
        }
      }
      return cloud_first(local_error);
    }
    case RoutePolicy::kCascade: {
      Result<std::vector<NamedTensor>> local = RunLocal(*entry, inputs, route);
      if (!local.ok()) {
        CloudOutcome c = cloud(deadline_nanos);
        if (!c.outputs.ok()) {
          return c.outputs.status().WithContext("model '" + name + "': cloud call failed after " +
                                                local.status().ToString());
        }
        return done(Placement::kCloudAfterLocalFailure,
                    "local failed: " + local.status().ToString(), std::move(*c.outputs));
      }
      if (local->empty()) {
        return InvalidArgumentError("model '" + name +
                                    "' (cascade): the local model has no output");
      }
      HML_ASSIGN_OR_RETURN(double top1,
                           Top1(local->front().tensor, config.cascade_output_is_logits));
      route.top1 = top1;
      const bool offload = top1 < config.cascade_threshold;
      std::string why = FormatTop1(top1, config.cascade_threshold, offload);
      if (!offload) return done(Placement::kCascadeLocal, std::move(why), std::move(*local));
      // The local answer is kept for a failed offload: leave time to return it.
      CloudOutcome c = cloud(CloudDeadline(*entry, deadline_nanos));
      if (c.outputs.ok()) {
        return done(Placement::kCascadeOffloaded, std::move(why), std::move(*c.outputs));
      }
      return done(Placement::kCascadeLocal,
                  why + "; offload failed: " + c.outputs.status().ToString(), std::move(*local));
    }
    case RoutePolicy::kSplit:
      return InferSplit(*entry, inputs, start, deadline_nanos);
  }
  return InternalError("Router: unknown policy");
}

Result<std::unique_ptr<Router::SplitState>> Router::PrepareSplit(const std::string& name,
                                                                 const Model& model,
                                                                 const ModelConfig& config) {
  auto state = std::make_unique<SplitState>(model);
  HML_ASSIGN_OR_RETURN(state->candidates, MakeSplitCandidates(model, config.split.candidates));
  const size_t n = state->candidates.size();
  state->fixed = n;
  std::string labels;
  for (size_t i = 0; i < n; ++i) {
    if (state->candidates[i].local) state->local_index = i;
    if (state->candidates[i].label == config.split.fixed_candidate) state->fixed = i;
    labels += (i == 0 ? "" : ", ") + state->candidates[i].label;
  }
  if (!config.split.fixed_candidate.empty() && state->fixed == n) {
    return InvalidArgumentError("SplitConfig.fixed_candidate '" + config.split.fixed_candidate +
                                "' is not a candidate of model '" + name + "' (" + labels + ")");
  }

  // Zeros at the planned shapes (dynamic dimensions at 1), for timing.
  std::vector<NamedTensor> zeros;
  for (const TensorSpec& spec : model.inputs()) {
    Shape shape = spec.shape;
    for (int64_t& d : shape) d = std::max<int64_t>(d, 1);
    HML_ASSIGN_OR_RETURN(Tensor t, Tensor::Allocate(spec.dtype, shape));
    std::memset(t.raw_data(), 0, t.byte_size());
    zeros.push_back({spec.name, std::move(t)});
  }
  // A Session for the whole model and for each cut's head, one warm-up run each, then
  // profile_runs rounds that time every Session once (interleaved, so that what else the device
  // is doing meets every candidate alike); each keeps its fastest run (unslowed), the one least
  // disturbed, and the live factor (SplitProfile::device_scale) adds the disturbance back as real
  // runs show it. Heads are nested (a later cut's head contains an earlier one's), so a head's
  // time is raised to the largest time of the heads before it and capped by the whole model's.
  std::vector<std::unique_ptr<Session>> sessions(n);
  for (size_t i = 0; i < n; ++i) {
    const SplitCandidate& c = state->candidates[i];
    if (c.at_inputs) continue;
    Result<Model> part = c.local ? Result<Model>(model) : model.Slice({}, c.tensors);
    if (!part.ok()) return part.status().WithContext("head of " + c.label);
    HML_ASSIGN_OR_RETURN(sessions[i], Session::Create(*part, config.session_options));
    HML_RETURN_IF_ERROR(RunNamed(*sessions[i], zeros).status());
  }
  std::vector<double> fastest(n, 0);
  for (int r = 0; r < config.split.profile_runs; ++r) {
    for (size_t i = 0; i < n; ++i) {
      if (sessions[i] == nullptr) continue;
      const int64_t start = SteadyNanos();
      HML_RETURN_IF_ERROR(RunNamed(*sessions[i], zeros).status());
      const double took = static_cast<double>(SteadyNanos() - start);
      fastest[i] = r == 0 ? took : std::min(fastest[i], took);
    }
  }
  sessions.clear();
  const double full = fastest[state->local_index];
  const double slowdown = config.device_slowdown;
  const double speedup = config.split.server_speedup;
  SplitProfile& profile = state->profile;
  profile.device_nanos.assign(n, 0);
  profile.server_nanos.assign(n, 0);
  double earlier = 0;  // the largest head time of the cuts before (execution order)
  for (size_t i = 0; i < n; ++i) {
    const SplitCandidate& c = state->candidates[i];
    double head = 0;
    if (c.local) {
      head = full;
    } else if (!c.at_inputs) {
      head = std::min(std::max(fastest[i], earlier), full);
      earlier = head;
    }
    profile.device_nanos[i] = head * slowdown;
    profile.server_nanos[i] = c.local ? 0 : (full - head) / speedup;
  }
  profile.downlink_bytes = static_cast<double>(kMessageOverheadBytes);
  for (const TensorSpec& spec : model.outputs()) {
    int64_t elements = 1;
    for (int64_t d : spec.shape) elements *= std::max<int64_t>(d, 1);
    profile.downlink_bytes +=
        static_cast<double>(elements * static_cast<int64_t>(DTypeSize(spec.dtype)));
  }
  return state;
}

LinkEstimate Router::CurrentLink(const ModelConfig& config) const {
  LinkEstimate link = config.split.default_link;
  if (options_.platform != nullptr) {
    const NetworkState net = options_.platform->network();
    if (net.bandwidth_bps > 0 && net.rtt_ms > 0) {
      link.rtt_nanos = static_cast<int64_t>(net.rtt_ms * 1e6);
      link.uplink_bytes_per_second = net.bandwidth_bps / 8;
      link.downlink_bytes_per_second = net.bandwidth_bps / 8;
    }
  }
  return link;
}

Result<RoutedResult> Router::InferSplit(Entry& entry, std::span<const NamedTensor> inputs,
                                        int64_t start_nanos, int64_t deadline_nanos) {
  SplitState& split = *entry.split;
  const ModelConfig& config = entry.config;
  const std::string& name = entry.name;
  RoutedResult result;
  RouteInfo& route = result.route;
  auto done = [&](Placement placement, std::string reason, std::vector<NamedTensor> outputs) {
    return Complete(result, start_nanos, placement, std::move(reason), std::move(outputs));
  };

  // The plan: a fixed candidate, or the planner's choice; the local candidate when the device is
  // offline or the breaker is open.
  const LinkEstimate link = CurrentLink(config);
  size_t k;
  SplitCost cost;
  std::string reason;
  {
    std::lock_guard<std::mutex> lock(entry.stats_mu);
    if (split.fixed < split.candidates.size()) {
      k = split.fixed;
      cost = PredictSplitCost(split.candidates[k], k, split.profile, link);
      reason = "fixed " + DescribeSplitCost(split.candidates[k], cost);
    } else {
      HML_ASSIGN_OR_RETURN(SplitPlan plan,
                           PlanSplit(split.candidates, split.profile, link,
                                     deadline_nanos - clock_->NowNanos(), config.split.plan));
      k = plan.index;
      cost = plan.cost;
      reason = std::move(plan.reason);
    }
    if (!split.candidates[k].local) {
      std::string why;
      CircuitBreaker* b = caller_->breaker();
      if (options_.platform != nullptr && options_.platform->network().type == NetworkType::kNone) {
        why = "offline";
      } else if (b != nullptr && b->state() == BreakerState::kOpen) {
        why = "breaker open";
      }
      if (why.empty() && split.fixed == split.candidates.size() && split.candidates[k].at_inputs &&
          config.split.explore_every > 0 &&
          ++split.without_device_run > config.split.explore_every) {
        // The device profile only learns from device runs: after explore_every planned
        // requests without one, run locally once to measure the device again.
        why = "explore (" + std::to_string(split.without_device_run - 1) +
              " requests without a device run)";
      }
      if (!why.empty()) {
        k = split.local_index;
        cost = PredictSplitCost(split.candidates[k], k, split.profile, link);
        reason = why + "; " + DescribeSplitCost(split.candidates[k], cost);
      }
    }
    if (!split.candidates[k].at_inputs) split.without_device_run = 0;
  }
  const SplitCandidate* candidate = &split.candidates[k];
  route.split_cut = candidate->label;
  route.predicted_nanos = cost.total();
  if (candidate->local) {
    Result<std::vector<NamedTensor>> local = RunLocal(entry, inputs, route);
    if (!local.ok()) return local.status().WithContext("model '" + name + "' (split, local)");
    return done(Placement::kLocal, std::move(reason), std::move(*local));
  }

  // The head on the device (nothing for the input candidate). A head that fails sends the
  // inputs instead (the input candidate), as any policy offloads a failed local run.
  std::vector<NamedTensor> head_outputs;
  std::span<const NamedTensor> cut = inputs;
  if (!candidate->at_inputs) {
    Result<std::vector<NamedTensor>> head = [&]() -> Result<std::vector<NamedTensor>> {
      std::lock_guard<std::mutex> lock(entry.run_mu);
      HML_ASSIGN_OR_RETURN(Session * session,
                           split.GetSession(k, /*tail=*/false, config.session_options,
                                            config.split.max_cached_sessions));
      const int64_t run_start = SteadyNanos();
      Result<std::vector<NamedTensor>> out = RunNamed(*session, inputs);
      const int64_t compute = SteadyNanos() - run_start;
      EmulateSlowdown(config.device_slowdown, compute);
      if (out.ok()) {
        // The profile learns from the run (slowdown included), not a first use's compilation.
        std::lock_guard<std::mutex> stats_lock(entry.stats_mu);
        RecordDeviceRun(split.profile, k, config.device_slowdown * static_cast<double>(compute));
      }
      return out;
    }();
    ++route.local_runs;
    if (head.ok()) {
      head_outputs = std::move(*head);
      cut = head_outputs;
    } else {
      for (size_t i = 0; i < split.candidates.size(); ++i) {
        if (split.candidates[i].at_inputs) k = i;
      }
      candidate = &split.candidates[k];
      route.split_cut = candidate->label;
      reason += "; head failed: " + head.status().ToString() + "; sending the inputs";
    }
  }

  std::vector<NamedTensor> quantized;
  quantized.reserve(cut.size());
  for (const NamedTensor& t : cut) {
    Result<NamedTensor> q = QuantizeCutTensor(t.name, t.tensor);
    if (!q.ok()) {
      return q.status().WithContext("model '" + name + "' (split, " + candidate->label + ")");
    }
    quantized.push_back(std::move(*q));
  }

  // The cloud, keeping time to finish on the device if it fails.
  double tail_on_device;
  {
    std::lock_guard<std::mutex> lock(entry.stats_mu);
    const double scale = split.profile.device_scale();
    tail_on_device = scale * std::max(split.profile.device_nanos[split.local_index] -
                                          split.profile.device_nanos[k],
                                      0.0);
  }
  const int64_t reserve =
      std::max(options_.local_reserve_nanos, static_cast<int64_t>(2 * tail_on_device));
  CloudOutcome c = RunCloud(entry, quantized, deadline_nanos - reserve, route);
  if (c.outputs.ok()) {
    std::lock_guard<std::mutex> lock(entry.stats_mu);
    if (c.attempts == 1) {
      // What the call took beyond the link's predicted share is the server's (file comment).
      const SplitCost predicted = PredictSplitCost(*candidate, k, split.profile, link);
      RecordServerTime(split.profile, k,
                       static_cast<double>(c.elapsed_nanos - predicted.uplink - predicted.rtt -
                                           predicted.downlink));
      split.profile.downlink_bytes =
          Blend(split.profile.downlink_bytes, static_cast<double>(c.bytes_received));
    }
    return done(Placement::kSplit, std::move(reason), std::move(*c.outputs));
  }

  // The cloud failed: finish on the device while the deadline allows.
  const Status cloud_error = c.outputs.status();
  const std::string failed =
      c.breaker_refused ? "breaker open" : "cloud failed: " + cloud_error.ToString();
  if (clock_->NowNanos() >= deadline_nanos) {
    return cloud_error.WithContext("model '" + name + "' (split, " + candidate->label +
                                   "): cloud call failed and the deadline passed");
  }
  Result<std::vector<NamedTensor>> tail = [&]() -> Result<std::vector<NamedTensor>> {
    if (candidate->at_inputs) return RunLocal(entry, inputs, route);
    ++route.local_runs;
    std::lock_guard<std::mutex> lock(entry.run_mu);
    HML_ASSIGN_OR_RETURN(Session * session,
                         split.GetSession(k, /*tail=*/true, config.session_options,
                                          config.split.max_cached_sessions));
    const int64_t run_start = SteadyNanos();
    Result<std::vector<NamedTensor>> out = RunNamed(*session, cut);
    EmulateSlowdown(config.device_slowdown, SteadyNanos() - run_start);
    return out;
  }();
  if (!tail.ok()) {
    return tail.status().WithContext("model '" + name + "' (split, " + candidate->label +
                                     "): finishing on the device failed after " +
                                     cloud_error.ToString());
  }
  return done(Placement::kLocalAfterCloudFailure, reason + "; " + failed, std::move(*tail));
}

}  // namespace hml::sdk

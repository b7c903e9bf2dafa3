// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Router: hybrid inference on the device (issue 6). For each registered model it decides, per
// request, whether the local model (a Session on the device) or the cloud model (through the
// Transport) answers, and falls back from one to the other when the first choice fails.
//
// Policies (RoutePolicy), per model:
//   local-only    run the local model; its error is the answer.
//   cloud-only    call the cloud model.
//   prefer-local  run the local model; call the cloud when there is no local model or it fails.
//   prefer-cloud  call the cloud, except run locally at once when the cloud's circuit breaker is
//                 open or the deadline is near (less time left than the cloud's expected
//                 latency); run locally when the cloud call fails. When that early local run
//                 fails, the cloud is still tried (cloud-after-local-failure).
//   cascade       run the local model; when the top-1 probability of its first output is below
//                 ModelConfig::cascade_threshold, offload the request to the cloud model and
//                 answer with the cloud's outputs (a failed offload answers with the local ones).
//   split         run the model's head on the device up to a cut chosen per request, send the
//                 cut tensors as INT8, and let the cloud run the tail (below).
// Fallback rule for every policy: a failed cloud call falls back to the local model when one is
// configured and the deadline has not passed. So cloud-only with a local model behaves like
// prefer-cloud without the up-front checks; give cloud-only no local model for "never on device".
//
// Cloud calls: every cloud call goes through one ResilientCaller per Router (the device talks
// to one cloud, so one CircuitBreaker and one RetryBudget are shared by all models); each
// attempt is a Transport::Infer() with the call's deadline, cancelled when the caller gives up.
// Retries follow RouterOptions::resilience (by default only UNAVAILABLE and DEADLINE_EXCEEDED are
// retried). When a local fallback exists, the cloud call is given the deadline minus a reserve
// for the local run (max(RouterOptions::local_reserve_nanos, 2 x the local run's moving
// average)), so that a cloud failure still leaves time to answer locally by the deadline.
//
// The cloud's expected latency (for prefer-cloud's "deadline near" test) is an exponential
// moving average (weight 0.2) of successful cloud calls for that model, starting from
// ModelConfig::expected_cloud_latency_nanos.
//
// Local inference: one Session per model, created by AddModel() and guarded by a per-model mutex,
// so concurrent requests for one model run one at a time on the device (phones are better served
// by one model run at a time than by several competing for the same cores), while different
// models run in parallel. A Session that cannot be created (e.g. a node no backend can run) does
// not fail AddModel(): the model's local side is marked failed with that status, so prefer-local
// and the fallbacks go to the cloud, and local-only returns the status. Tests may inject a
// LocalRunner instead of a Model.
//
// Threading: Infer() is synchronous. It blocks the calling thread until the answer (it waits on a
// condition variable for the cloud call) and is thread-safe: many threads may call it at once.
// It must not be called from a Transport callback or a Scheduler task (it would wait for the
// thread it is running on). AddModel() is thread-safe too. The Transport and Scheduler must
// outlive the Router.
//
// Split inference (kSplit; src/sdk/split/split_planner.h has the planning model): the model's
// head runs on the device up to a cut, the cut tensors go to the cloud as INT8 (per-tensor
// scale/zero_point from the tensor's min and max; split/cut_quantization.h) through the same
// ResilientCaller as every other cloud call, and the cloud runs the tail (ModelRepository's split
// requests). The cut is chosen per request by PlanSplit() among the model's candidates (local,
// input, cut points) from:
//   - the device profile: each candidate's head time, measured by AddModel() (one warm-up and
//     SplitConfig::profile_runs timed rounds over every head Session and the whole model on
//     zeros, interleaved, the fastest run of each kept, made non-decreasing along the cuts,
//     times ModelConfig::device_slowdown), times one live factor learned from every real run of
//     a head or of the whole model (SplitProfile::device_scale(), the median ratio of the last
//     15 runs to their profiled times: load and throttling slow all layers alike);
//   - the server profile: the tail's time, first (whole model's device time - head's device
//     time, unslowed) / SplitConfig::server_speedup, then blended (weight 0.2) with what each
//     successful split call took beyond the link's predicted share (elapsed - uplink - RTT -
//     downlink, >= 0; so link mispredictions land here too);
//   - the link estimate: RouterOptions::platform's NetworkState (rtt_ms and bandwidth_bps, the
//     latter used for both directions) when it reports both (> 0), else
//     SplitConfig::default_link. The router does not (yet) estimate bandwidth from its own calls;
//   - the answer's bytes: the outputs' FP32 size + overhead, then blended with each answer's
//     bytes;
//   - the time left before the deadline.
// A split request for a cut runs the head Session (created on first use from Model::Slice and
// kept, at most SplitConfig::max_cached_sessions heads and tails per model, least recently used
// evicted), quantizes the cut, and calls the cloud with the deadline minus a reserve for
// finishing on the device (max(local_reserve_nanos, 2 x the tail's predicted device time)).
// When the cloud call fails and the deadline has not passed, the tail runs on the device on the
// FP32 cut tensors (placement local-after-cloud-failure). When the platform reports no network
// or the breaker is open, the plan is the local candidate, and after SplitConfig::explore_every
// planned requests in a row without a device run (the input candidate) one request runs locally
// to re-measure the device (the profile learns only from device runs). A head that fails sends the
// inputs instead (the input candidate). The input candidate sends the model's inputs as INT8 and
// runs nothing on the device. The split policy needs ModelConfig::local_model (a Model, for
// slicing) and cloud_model; the cloud must serve the same model (the same tensor names). Requests
// must have the shapes the model was planned at (dynamic dimensions at 1).
//
// Emulating a slower device (benchmarks, the simulator): with ModelConfig::device_slowdown = s
// > 1, every local compute of the model (local runs of every policy, split heads and tails) is
// followed by a sleep of (s - 1) x its measured time, on the real clock. Device compute (the
// profile, the slowdown) is timed on the steady clock whatever the transport's clock is.
//
// Device target: no exceptions, no server headers.
#ifndef HML_SRC_SDK_ROUTER_H_
#define HML_SRC_SDK_ROUTER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "hml/runtime/model.h"
#include "hml/runtime/session.h"
#include "hml/runtime/tensor.h"
#include "hml/sdk/platform.h"
#include "hml/status.h"
#include "src/sdk/resilience/resilient_caller.h"
#include "src/sdk/resilience/scheduler.h"
#include "src/sdk/split/split_planner.h"
#include "src/sdk/transport.h"

namespace hml::sdk {

enum class RoutePolicy { kLocalOnly, kCloudOnly, kPreferLocal, kPreferCloud, kCascade, kSplit };
// "local-only", "cloud-only", "prefer-local", "prefer-cloud", "cascade", "split".
std::string_view RoutePolicyName(RoutePolicy policy);

// Where a request was answered.
enum class Placement {
  kLocal,                   // the local model, by choice
  kCloud,                   // the cloud model, by choice
  kLocalAfterCloudFailure,  // the cloud call failed; the local model answered
  kCloudAfterLocalFailure,  // the local model failed; the cloud answered
  kCascadeLocal,            // cascade: the local answer was confident enough (or offload failed)
  kCascadeOffloaded,        // cascade: the local answer was not confident; the cloud answered
  kSplit,                   // split: the head ran on the device, the tail in the cloud
};
// "local", "cloud", "local-after-cloud-failure", "cloud-after-local-failure", "cascade-local",
// "cascade-offloaded", "split".
std::string_view PlacementName(Placement placement);

// How a request was routed, for the caller and telemetry.
struct RouteInfo {
  Placement placement = Placement::kLocal;
  // Why, in a few words: "policy", "no local model", "local failed: <status>", "breaker open",
  // "deadline near", "cloud failed: <status>", "top1 0.42 < 0.80", ...
  std::string reason;
  // Cloud attempts started (retries and hedges included); 0 when the cloud was not called.
  int attempts = 0;
  // Local model runs (0 or 1; a split request counts its head and a tail finished on the
  // device, so 0 to 2).
  int local_runs = 0;
  // Bytes on the wire over all cloud attempts, failed ones included (CallStats). Attempts the
  // driver cancelled at the end (the deadline, a hedging loser) are waited for up to 5 ms so
  // their bytes count; one reporting later than that is not counted.
  int64_t bytes_sent = 0;
  int64_t bytes_received = 0;
  // From Infer() to its return, on the transport's clock.
  int64_t latency_nanos = 0;
  // The cloud's final status when it was called ("OK" or the error), for telemetry.
  std::string cloud_status;
  // Cascade only: the top-1 probability of the local answer; -1 otherwise.
  double top1 = -1;
  // Split only: the chosen candidate's label ("local", "input", "cut <tensor>") and its predicted
  // latency; "" and 0 otherwise. The reason then reads "cut <tensor>: predicted 84.0 ms (device
  // 40.0, up 30.0, rtt 5.0, server 9.0, down 0.5)", possibly followed by "; ..." (a fallback).
  std::string split_cut;
  int64_t predicted_nanos = 0;
};

struct RoutedResult {
  // The model's outputs, in the answering model's output order, by name.
  std::vector<NamedTensor> outputs;
  RouteInfo route;
};

// Runs a model on the device. The Router wraps a Session in one; tests inject failing ones.
// Called under the model's mutex: implementations need not be thread-safe.
class LocalRunner {
 public:
  virtual ~LocalRunner() = default;
  // The outputs for `inputs` (the model's inputs by name, any order).
  virtual Result<std::vector<NamedTensor>> Run(std::span<const NamedTensor> inputs) = 0;
};

// What the split policy needs besides the model (see the file comment).
struct SplitConfig {
  // Which cut points become candidates. Default: SplitCandidateOptions{} (single-tensor cuts,
  // dominated ones pruned).
  SplitCandidateOptions candidates;
  // Tie-breaks and the latency/bytes trade. Default: SplitPlanOptions{} (0.5 ms ties, latency
  // only).
  SplitPlanOptions plan;
  // The link estimate used when RouterOptions::platform is null or reports 0 for bandwidth or
  // RTT. Default: LinkEstimate{} (50 ms, 10 Mbit/s each way).
  LinkEstimate default_link;
  // The server's speed relative to this device unslowed: the first estimate of a tail's time in
  // the cloud is its device time (without device_slowdown) / this. > 0. Default: 1.
  double server_speedup = 1.0;
  // Timed runs of each candidate's head by AddModel() (after one untimed warm-up; the fastest
  // is kept). >= 1. Default: 2.
  int profile_runs = 2;
  // Head and tail Sessions kept per model (least recently used evicted). >= 1. Default: 4.
  int max_cached_sessions = 4;
  // The device profile learns only from device runs, so after this many planned requests in a
  // row that ran nothing on the device (the input candidate), the next one runs locally once
  // (reason "explore (...)") to measure the device again. 0 never explores. >= 0. Default: 16.
  int explore_every = 16;
  // Use this candidate ("local", "input", "cut <tensor>") for every request instead of planning
  // (benchmarks, or an app that knows its cut). Unknown labels fail AddModel(). Default: "".
  std::string fixed_candidate;

  // kInvalidArgument naming the field.
  Status Validate() const;
};

struct ModelConfig {
  // Default: kPreferLocal.
  RoutePolicy policy = RoutePolicy::kPreferLocal;
  // The on-device model; a Session is created from it by AddModel(). Default: none.
  std::optional<Model> local_model;
  // Options of that Session. Default: SessionOptions{} (xnnpack, 1 thread).
  SessionOptions session_options;
  // Instead of local_model (takes precedence when set): a runner supplied by the app or a test.
  // Default: null.
  std::shared_ptr<LocalRunner> local_runner;
  // The model's name and version in the cloud registry. Empty name: no cloud model (only
  // local-only and prefer-local accept that). Version 0 = the latest. Defaults: "", 0.
  std::string cloud_model;
  int64_t cloud_version = 0;
  // Cascade: offload when the local top-1 probability (the largest value of the first output's
  // row; the minimum over rows for a batch) is below this. 0 never offloads; > 1 always does.
  // Default: 0.8.
  double cascade_threshold = 0.8;
  // Cascade: apply a softmax to the first output's rows before taking the top-1 (for models that
  // output logits). Default: false (the output already holds probabilities).
  bool cascade_output_is_logits = false;
  // The deadline of a request that gives none (Infer(..., 0)), relative to the call. > 0.
  // Default: 1 s.
  int64_t default_deadline_nanos = 1'000'000'000;
  // The cloud's expected latency before any call was measured (prefer-cloud's "deadline near"
  // test). >= 0. Default: 0 (assume the cloud is fast until measured).
  int64_t expected_cloud_latency_nanos = 0;
  // Emulates a device this many times slower than the one running the code (file comment):
  // every local compute of this model is followed by a sleep of (slowdown - 1) x its time. >= 1.
  // Default: 1 (no emulation).
  double device_slowdown = 1.0;
  // The split policy's settings. Default: SplitConfig{}.
  SplitConfig split;
};

struct RouterOptions {
  // Carries every cloud call; its clock is the Router's clock. Must outlive the Router. Required.
  Transport* transport = nullptr;
  // Runs the resilience timers (backoff, deadline, hedge delay), on the transport's clock. Must
  // outlive the Router. Null: the Router owns a ThreadScheduler (requires the transport's clock
  // to be real time). Default: null.
  Scheduler* scheduler = nullptr;
  // Retry policy, budget, breaker and hedging of cloud calls. Default: ResilienceOptions{}
  // (5 attempts, 10 % budget, breaker after 5 failures for 5 s, no hedging).
  ResilienceOptions resilience;
  // Minimum time kept for the local fallback: a cloud call with a local fallback gets
  // deadline - max(this, 2 x the local run's average) as its own deadline. >= 0. Default: 20 ms.
  int64_t local_reserve_nanos = 20'000'000;
  // The app's platform hooks; the split policy reads the link estimate from network() (file
  // comment). Must outlive the Router. Default: null (SplitConfig::default_link).
  const Platform* platform = nullptr;

  // kInvalidArgument naming the field.
  Status Validate() const;
};

class Router {
 public:
  // kInvalidArgument for bad options.
  static Result<std::unique_ptr<Router>> Create(RouterOptions options);
  ~Router();
  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

  // Registers `name`. kInvalidArgument when the config does not fit the policy (no cloud model
  // for a policy that needs one, no local model for local-only or cascade, a bad deadline),
  // kAlreadyExists for a name already registered. A local Session that fails to compile is
  // recorded, not returned (see the file comment), except for the split policy, which needs it
  // (its compile error is returned, as are the candidates' and the profiling's errors). The
  // split policy profiles every candidate's head here (file comment): this takes a few runs of
  // the model.
  Status AddModel(const std::string& name, ModelConfig config);

  // Answers one request for model `name` by `deadline_nanos` (transport clock; 0 = now + the
  // model's default deadline). `inputs` are the model's inputs by name. kNotFound for an unknown
  // model; otherwise the answering side's error when every allowed route failed (the last
  // error, with the earlier one as context).
  Result<RoutedResult> Infer(const std::string& name, std::span<const NamedTensor> inputs,
                             int64_t deadline_nanos = 0);

  // The shared cloud breaker (null when disabled in the options).
  CircuitBreaker* breaker() { return caller_->breaker(); }
  Clock* clock() const { return clock_; }

 private:
  struct Entry;
  struct SplitState;
  struct CloudOutcome {
    Result<std::vector<NamedTensor>> outputs = InternalError("cloud not called");
    int attempts = 0;
    bool breaker_refused = false;
    int64_t bytes_sent = 0;
    int64_t bytes_received = 0;
    // From the call's start to its end (CallReport::elapsed_nanos).
    int64_t elapsed_nanos = 0;
  };

  Router(RouterOptions options, std::unique_ptr<Scheduler> own_scheduler,
         std::unique_ptr<ResilientCaller> caller);
  Result<std::shared_ptr<Entry>> Find(const std::string& name);
  // Runs the local model (under its mutex) and updates its latency average.
  Result<std::vector<NamedTensor>> RunLocal(Entry& entry, std::span<const NamedTensor> inputs,
                                            RouteInfo& route);
  // One resilient cloud call with `deadline_nanos`; blocks until it ends.
  // Adds the call's attempts, bytes and final status to `route`.
  CloudOutcome RunCloud(Entry& entry, std::span<const NamedTensor> inputs, int64_t deadline_nanos,
                        RouteInfo& route);
  // Fills in `result`'s placement, reason, latency since `start_nanos` and outputs; returns it.
  Result<RoutedResult> Complete(RoutedResult& result, int64_t start_nanos, Placement placement,
                                std::string reason, std::vector<NamedTensor> outputs) const;
  // The deadline given to a cloud call that may still fall back to the local model.
  int64_t CloudDeadline(const Entry& entry, int64_t deadline_nanos) const;
  // The split policy's state for `model` (candidates, profile, Sessions), profiled.
  Result<std::unique_ptr<SplitState>> PrepareSplit(const std::string& name, const Model& model,
                                                   const ModelConfig& config);
  // The link estimate for planning (the file comment).
  LinkEstimate CurrentLink(const ModelConfig& config) const;
  // The split policy's Infer() (Infer() found the entry and fixed the deadline).
  Result<RoutedResult> InferSplit(Entry& entry, std::span<const NamedTensor> inputs,
                                  int64_t start_nanos, int64_t deadline_nanos);

  const RouterOptions options_;
  Clock* const clock_;
  std::unique_ptr<Scheduler> own_scheduler_;
  std::unique_ptr<ResilientCaller> caller_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<Entry>> models_;  // guarded by mu_
};

}  // namespace hml::sdk

#endif  // HML_SRC_SDK_ROUTER_H_

// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Split planning for the Router's split policy (issue 6, "as Neurosurgeon does": Kang et al.,
// ASPLOS 2017). A request for a split model runs in one of several ways, the candidates:
//   local   the whole model on the device; nothing is sent.
//   input   nothing on the device; the model's inputs go to the cloud as INT8 (the "cut" is the
//           model's inputs) and the cloud runs the whole model.
//   cut X   the device runs the head of the model up to a cut (Model::Analyze's CutPoint: the
//           tensors after which the rest of the graph needs nothing else), sends the cut
//           tensors as INT8 (split/cut_quantization.h), and the cloud runs the tail.
// For each candidate the planner predicts the request's latency from a profile and the link:
//
//   device(k) + uplink_bytes(k) / uplink bandwidth + RTT + server(k) + downlink_bytes / downlink
//   bandwidth                                     (the local candidate: device(local) alone)
//
// which is the arithmetic of the emulated link (src/sim/link.h: each message takes size /
// bandwidth + RTT / 2) and of a real one without congestion. device(k) is the head's time on the
// device (profiled once, times a live factor: SplitProfile), server(k) the tail's time in the
// cloud (an estimate first, then measured), uplink_bytes(k) the INT8 payload of the cut (one
// byte per element) plus kMessageOverheadBytes, downlink_bytes the answer's bytes.
//
// Which candidate (PlanSplit): the one with the lowest predicted latency among those that meet
// the time left before the deadline; if none does, the fastest overall (the plan then says so).
// Tie-breaks, in order, among candidates whose predictions are within SplitPlanOptions::tie_nanos
// of the best: the local candidate (no radio, no dependence on the cloud), then fewer uplink
// bytes, then the earlier candidate in the list (less work on the device). With
// SplitPlanOptions::byte_saving_slack > 0 a candidate that sends fewer bytes wins when it is at
// most that fraction slower than the best and still meets the deadline: the deadline then decides
// how much latency may be traded for radio energy and data. With the default (latency only) the
// deadline does not change the choice, which is the fastest either way; the plan says whether it
// meets the deadline.
//
// Candidates (MakeSplitCandidates): local, input, and the model's cut points through at most
// SplitCandidateOptions::max_cut_tensors tensors, each tensor set once. With prune_dominated (the
// default) a cut is kept only when it sends fewer bytes than every earlier candidate (the input
// included). The reasoning: for cuts j < k, device(k) - device(j) is the device's time for the
// layers between them and server(j) - server(k) the server's time for the same layers; when the
// device is no faster than the server on every layer (a phone against a data-centre CPU or GPU),
// moving those layers to the device never saves time, so k can only win by sending fewer bytes
// than j. A device faster than its server should turn pruning off. Cuts are meant for FP32
// models: a cut's element count is taken as its bytes / 4.
//
// Device target: no exceptions, no server headers.
#ifndef HML_SRC_SDK_SPLIT_SPLIT_PLANNER_H_
#define HML_SRC_SDK_SPLIT_SPLIT_PLANNER_H_

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "hml/runtime/model.h"
#include "hml/status.h"

namespace hml::sdk {

// Bytes a request or an answer carries besides its tensors' data (names, shapes, parameters,
// protobuf framing), for predictions. An estimate: a v2 request with one INT8 cut tensor and
// its scale/zero_point parameters encodes ~100 bytes of such overhead.
inline constexpr int64_t kMessageOverheadBytes = 128;

// One way to run a request (see the file comment).
struct SplitCandidate {
  // "local", "input", or "cut <first tensor name>" (unique within a model's list).
  std::string label;
  // Everything on the device; `tensors` is then empty.
  bool local = false;
  // The cut is the model's inputs: nothing runs on the device.
  bool at_inputs = false;
  // The cut tensors (the model's inputs for the input candidate), in the model's value order.
  std::vector<std::string> tensors;
  // FLOPs on the device (head) and in the cloud (tail), from Model::Analyze.
  int64_t head_flops = 0;
  int64_t tail_flops = 0;
  // The request's predicted bytes: one byte per element of the cut tensors (INT8) plus
  // kMessageOverheadBytes; 0 for the local candidate.
  int64_t uplink_bytes = 0;
};

struct SplitCandidateOptions {
  // Cut points through more tensors than this are left out (1: only cuts through a single
  // tensor, i.e. between the blocks of a residual network). >= 1. Default: 1.
  int max_cut_tensors = 1;
  // Keep a cut only when it sends fewer bytes than every earlier candidate (file comment).
  // Default: true.
  bool prune_dominated = true;

  // kInvalidArgument naming the field.
  Status Validate() const;
};

// The candidates of `model` at its input shapes (dynamic dimensions at 1, i.e. batch 1): local
// first, input second, then the cuts in execution order. Errors: Analyze()'s, kInvalidArgument
// for bad options.
Result<std::vector<SplitCandidate>> MakeSplitCandidates(const Model& model,
                                                        const SplitCandidateOptions& options);

// The network as the planner sees it. A bandwidth of 0 means "unlimited" (no transmission time).
struct LinkEstimate {
  // Default: 50 ms (a 4G-like link).
  int64_t rtt_nanos = 50'000'000;
  // Bytes per second; default: 10 Mbit/s each way.
  double uplink_bytes_per_second = 1.25e6;
  double downlink_bytes_per_second = 1.25e6;

  // kInvalidArgument naming the field (negative, or not finite).
  Status Validate() const;
};

// The measured side of planning, one entry per candidate (same order). Not thread-safe: the
// Router guards it with the model's stats mutex.
//
// Device times are kept as profiled once per candidate (`device_nanos`, measured when the model
// is added) times one live factor, device_scale(): the median of the ratios real run / profiled
// time of the device's last kDeviceRatioWindow runs. Load and thermal throttling slow every
// layer alike, so one factor learned from the candidates that run keeps the ones that do not run
// current too. A median, not a mean: run times on a busy device have a long right tail, and a
// mean would inflate every candidate with a device part against those without one. Server times are
// per candidate moving averages of what the calls showed (the router's file comment says how).
struct SplitProfile {
  // The head's time on the device as profiled, slowdown included (the local candidate: the whole
  // model; the input candidate: 0).
  std::vector<double> device_nanos;
  // The tail's time in the cloud, as far as the device can tell (0 for the local candidate).
  std::vector<double> server_nanos;
  // The answer's bytes (the model's outputs as the cloud sends them back, framing included).
  double downlink_bytes = 0;
  // Real run / profiled time of the last kDeviceRatioWindow device runs, oldest first
  // (RecordDeviceRun).
  std::vector<double> device_ratios;

  // The median of device_ratios; 1 before any run.
  double device_scale() const;
};

// Weight of the newest sample in the profile's moving averages (server times, answer bytes).
inline constexpr double kSplitProfileWeight = 0.2;
// Device runs whose ratios device_scale() takes the median of.
inline constexpr size_t kDeviceRatioWindow = 15;

// Records a real run of candidate `index`'s device part (head, or the whole model for the local
// candidate) that took `nanos`, slowdown included. Runs of a candidate without a device part are
// ignored. REQUIRES: `index` < the profile's sizes.
void RecordDeviceRun(SplitProfile& profile, size_t index, double nanos);

// Records a successful cloud call of candidate `index` whose server part was `nanos` (< 0 counts
// as 0). REQUIRES: `index` < the profile's sizes.
void RecordServerTime(SplitProfile& profile, size_t index, double nanos);

// A prediction in nanoseconds, by part.
struct SplitCost {
  int64_t device = 0;
  int64_t uplink = 0;
  int64_t rtt = 0;
  int64_t server = 0;
  int64_t downlink = 0;
  int64_t total() const { return device + uplink + rtt + server + downlink; }
};

// The prediction for `candidate` (see the file comment). REQUIRES: `index` < the profile's sizes.
SplitCost PredictSplitCost(const SplitCandidate& candidate, size_t index,
                           const SplitProfile& profile, const LinkEstimate& link);

// "cut conv_12: predicted 84.0 ms (device 40.0, up 30.0, rtt 50.0, server 9.0, down 5.0)"; the
// local candidate shows the device part only.
std::string DescribeSplitCost(const SplitCandidate& candidate, const SplitCost& cost);

struct SplitPlanOptions {
  // Predictions within this of the best are ties (file comment). >= 0. Default: 0.5 ms.
  int64_t tie_nanos = 500'000;
  // A candidate sending fewer uplink bytes (the local one sends none) wins when its prediction is
  // at most this fraction above the best and it meets the deadline. >= 0. Default: 0 (latency
  // only).
  double byte_saving_slack = 0;

  // kInvalidArgument naming the field.
  Status Validate() const;
};

struct SplitPlan {
  size_t index = 0;  // into the candidates
  SplitCost cost;
  // Whether the prediction fits the time left.
  bool meets_deadline = true;
  // DescribeSplitCost(), with "; no candidate meets the deadline (X ms left)" when none did.
  std::string reason;
};

// Chooses a candidate for a request with `time_left_nanos` until its deadline (file comment).
// kInvalidArgument when the candidate list is empty or the profile's sizes differ from it.
Result<SplitPlan> PlanSplit(std::span<const SplitCandidate> candidates, const SplitProfile& profile,
                            const LinkEstimate& link, int64_t time_left_nanos,
                            const SplitPlanOptions& options = {});

}  // namespace hml::sdk

#endif  // HML_SRC_SDK_SPLIT_SPLIT_PLANNER_H_

// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Candidates, predictions and the choice of a cut; split_planner.h explains the model.
#include "src/sdk/split/split_planner.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <set>

namespace hml::sdk {

Status SplitCandidateOptions::Validate() const {
  if (max_cut_tensors < 1) {
    return InvalidArgumentError("SplitCandidateOptions.max_cut_tensors must be >= 1");
  }
  return Status::Ok();
}

Status LinkEstimate::Validate() const {
  if (rtt_nanos < 0) return InvalidArgumentError("LinkEstimate.rtt_nanos must be >= 0");
  if (!(uplink_bytes_per_second >= 0) || !std::isfinite(uplink_bytes_per_second)) {
    return InvalidArgumentError("LinkEstimate.uplink_bytes_per_second must be finite and >= 0");
  }
  if (!(downlink_bytes_per_second >= 0) || !std::isfinite(downlink_bytes_per_second)) {
    return InvalidArgumentError("LinkEstimate.downlink_bytes_per_second must be finite and >= 0");
  }
  return Status::Ok();
}

Status SplitPlanOptions::Validate() const {
  if (tie_nanos < 0) return InvalidArgumentError("SplitPlanOptions.tie_nanos must be >= 0");
  if (!(byte_saving_slack >= 0) || !std::isfinite(byte_saving_slack)) {
    return InvalidArgumentError("SplitPlanOptions.byte_saving_slack must be finite and >= 0");
  }
  return Status::Ok();
}

Result<std::vector<SplitCandidate>> MakeSplitCandidates(const Model& model,
                                                        const SplitCandidateOptions& options) {
  HML_RETURN_IF_ERROR(options.Validate());
  HML_ASSIGN_OR_RETURN(ModelAnalysis analysis, model.Analyze());
  std::vector<SplitCandidate> candidates;

  SplitCandidate local;
  local.label = "local";
  local.local = true;
  local.head_flops = analysis.total_flops;
  candidates.push_back(std::move(local));

  SplitCandidate input;
  input.label = "input";
  input.at_inputs = true;
  input.tail_flops = analysis.total_flops;
  input.uplink_bytes = kMessageOverheadBytes;
  for (const auto& [name, shape] : analysis.input_shapes) {
    input.tensors.push_back(name);
    int64_t elements = 1;
    for (int64_t d : shape) elements *= std::max<int64_t>(d, 1);
    input.uplink_bytes += elements;
  }
  int64_t fewest_bytes = input.uplink_bytes;
  candidates.push_back(std::move(input));

  // Element counts of the cut tensors come from CutPoint::bytes (native bytes): INT8 sends one
  // byte per element, and every cut tensor of an FP32 model is FP32 (4 bytes). A byte count that
  // is not a multiple of 4 cannot be FP32 and is left out.
  std::set<std::vector<std::string>> seen;
  for (const CutPoint& cut : analysis.cut_points) {
    if (cut.tensors.empty() || static_cast<int>(cut.tensors.size()) > options.max_cut_tensors) {
      continue;
    }
    bool at_input = false;
    for (const std::string& t : cut.tensors) {
      if (analysis.input_shapes.count(t) != 0) at_input = true;
    }
    if (at_input) continue;  // the input candidate covers the inputs
    std::vector<std::string> key = cut.tensors;
    std::sort(key.begin(), key.end());
    if (!seen.insert(key).second) continue;
    if (cut.bytes % 4 != 0) continue;
    const int64_t bytes = cut.bytes / 4 + kMessageOverheadBytes;
    if (options.prune_dominated && bytes >= fewest_bytes) continue;
    fewest_bytes = std::min(fewest_bytes, bytes);
    SplitCandidate c;
    c.label = "cut " + cut.tensors.front();
    c.tensors = cut.tensors;
    c.head_flops = cut.flops_before;
    c.tail_flops = cut.flops_after;
    c.uplink_bytes = bytes;
    candidates.push_back(std::move(c));
  }
  return candidates;
}

namespace {

double Blend(double average, double sample) {
  return average <= 0 ? sample : (1 - kSplitProfileWeight) * average + kSplitProfileWeight * sample;
}

}  // namespace

double SplitProfile::device_scale() const {
  if (device_ratios.empty()) return 1.0;
  std::vector<double> sorted = device_ratios;
  std::sort(sorted.begin(), sorted.end());
  const size_t mid = sorted.size() / 2;
  return sorted.size() % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

void RecordDeviceRun(SplitProfile& profile, size_t index, double nanos) {
  const double profiled = profile.device_nanos[index];
  if (profiled <= 0 || nanos <= 0) return;
  if (profile.device_ratios.size() >= kDeviceRatioWindow) {
    profile.device_ratios.erase(profile.device_ratios.begin());
  }
  profile.device_ratios.push_back(nanos / profiled);
}

void RecordServerTime(SplitProfile& profile, size_t index, double nanos) {
  profile.server_nanos[index] = Blend(profile.server_nanos[index], std::max(nanos, 0.0));
}

namespace {

int64_t TransferNanos(double bytes, double bytes_per_second) {
  if (bytes_per_second <= 0 || bytes <= 0) return 0;
  return static_cast<int64_t>(std::llround(bytes / bytes_per_second * 1e9));
}

std::string Ms(int64_t nanos) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f", static_cast<double>(nanos) / 1e6);
  return buf;
}

}  // namespace

SplitCost PredictSplitCost(const SplitCandidate& candidate, size_t index,
                           const SplitProfile& profile, const LinkEstimate& link) {
  SplitCost cost;
  cost.device =
      static_cast<int64_t>(std::llround(profile.device_nanos[index] * profile.device_scale()));
  if (candidate.local) return cost;
  cost.uplink =
      TransferNanos(static_cast<double>(candidate.uplink_bytes), link.uplink_bytes_per_second);
  cost.rtt = link.rtt_nanos;
  cost.server = static_cast<int64_t>(std::llround(profile.server_nanos[index]));
  cost.downlink = TransferNanos(profile.downlink_bytes, link.downlink_bytes_per_second);
  return cost;
}

std::string DescribeSplitCost(const SplitCandidate& candidate, const SplitCost& cost) {
  std::string s =
      candidate.label + ": predicted " + Ms(cost.total()) + " ms (device " + Ms(cost.device);
  if (!candidate.local) {
    s += ", up " + Ms(cost.uplink) + ", rtt " + Ms(cost.rtt) + ", server " + Ms(cost.server) +
         ", down " + Ms(cost.downlink);
  }
  return s + ")";
}

Result<SplitPlan> PlanSplit(std::span<const SplitCandidate> candidates, const SplitProfile& profile,
                            const LinkEstimate& link, int64_t time_left_nanos,
                            const SplitPlanOptions& options) {
  HML_RETURN_IF_ERROR(options.Validate());
  if (candidates.empty()) return InvalidArgumentError("PlanSplit: no candidates");
  if (profile.device_nanos.size() != candidates.size() ||
      profile.server_nanos.size() != candidates.size()) {
    return InvalidArgumentError(
        "PlanSplit: the profile has " + std::to_string(profile.device_nanos.size()) +
        " device and " + std::to_string(profile.server_nanos.size()) + " server entries for " +
        std::to_string(candidates.size()) + " candidates");
  }
  std::vector<SplitCost> costs;
  costs.reserve(candidates.size());
  for (size_t i = 0; i < candidates.size(); ++i) {
    costs.push_back(PredictSplitCost(candidates[i], i, profile, link));
  }
  auto meets = [&](size_t i) { return costs[i].total() <= time_left_nanos; };
  bool any_meets = false;
  for (size_t i = 0; i < candidates.size(); ++i) any_meets = any_meets || meets(i);
  auto eligible = [&](size_t i) { return !any_meets || meets(i); };

  // The best prediction among the eligible, then the tie-breaks.
  int64_t best_total = std::numeric_limits<int64_t>::max();
  for (size_t i = 0; i < candidates.size(); ++i) {
    if (eligible(i)) best_total = std::min(best_total, costs[i].total());
  }
  // Fewer bytes first (local sends none), then the earlier candidate: `better(i, j)` says whether
  // i wins over j once both are within the tolerance.
  auto better = [&](size_t i, size_t j) {
    if (candidates[i].uplink_bytes != candidates[j].uplink_bytes) {
      return candidates[i].uplink_bytes < candidates[j].uplink_bytes;
    }
    return i < j;
  };
  const double slack_limit = static_cast<double>(best_total) * (1.0 + options.byte_saving_slack);
  size_t chosen = candidates.size();
  for (size_t i = 0; i < candidates.size(); ++i) {
    if (!eligible(i)) continue;
    const int64_t total = costs[i].total();
    const bool tie = total - best_total <= options.tie_nanos;
    const bool slack =
        options.byte_saving_slack > 0 && any_meets && static_cast<double>(total) <= slack_limit;
    if (!tie && !slack) continue;
    if (chosen == candidates.size() || better(i, chosen)) chosen = i;
  }
  SplitPlan plan;
  plan.index = chosen;
  plan.cost = costs[chosen];
  plan.meets_deadline = any_meets;
  plan.reason = DescribeSplitCost(candidates[chosen], plan.cost);
  if (!any_meets) {
    plan.reason += "; no candidate meets the deadline (" +
                   Ms(std::max<int64_t>(time_left_nanos, 0)) + " ms left)";
  }
  return plan;
}

}  // namespace hml::sdk

// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/fl/coordinator.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <sstream>
#include <utility>

namespace hml::fl {
namespace {

Status OutOfRange(const char* field, double value, const char* want) {
  std::ostringstream out;
  out << "round config: " << field << " = " << value << ", must be " << want;
  return InvalidArgumentError(out.str());
}

// ceil(x) for a product of a config fraction and a count, ignoring the last-bit error of the
// product (1.3 * 10 must give 13, not 14).
int64_t CeilCount(double x) { return static_cast<int64_t>(std::ceil(x - 1e-9)); }

std::string FormatDouble(double value) {
  std::ostringstream out;
  out.precision(17);
  out << value;
  return out.str();
}

// SplitMix64's finaliser: spreads (seed, round) into a well-mixed engine seed.
uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Uniform in [0, bound) from the engine's 64-bit output by rejection (Lemire's threshold):
// std::uniform_int_distribution's algorithm differs between standard libraries.
uint64_t UniformBelow(std::mt19937_64& engine, uint64_t bound) {
  const uint64_t threshold = (0 - bound) % bound;  // 2^64 mod bound
  while (true) {
    const uint64_t r = engine();
    if (r >= threshold) return r % bound;
  }
}

}  // namespace

Status RoundConfig::Validate() const {
  if (clients_per_round < 1) return OutOfRange("clients_per_round", clients_per_round, ">= 1");
  if (!(over_selection >= 1.0 && std::isfinite(over_selection))) {
    return OutOfRange("over_selection", over_selection, "finite and >= 1");
  }
  if (!(min_report_fraction > 0.0 && min_report_fraction <= 1.0)) {
    return OutOfRange("min_report_fraction", min_report_fraction, "in (0, 1]");
  }
  if (deadline_ms <= 0) return OutOfRange("deadline_ms", deadline_ms, "> 0");
  if (local_epochs < 0) return OutOfRange("local_epochs", local_epochs, ">= 0");
  if (local_steps < 0) return OutOfRange("local_steps", local_steps, ">= 0");
  if (local_epochs == 0 && local_steps == 0) {
    return InvalidArgumentError("round config: local_epochs and local_steps are both 0");
  }
  if (batch_size < 1) return OutOfRange("batch_size", batch_size, ">= 1");
  if (!(learning_rate > 0.0 && std::isfinite(learning_rate))) {
    return OutOfRange("learning_rate", learning_rate, "finite and > 0");
  }
  if (!(server_lr >= 0.0 && std::isfinite(server_lr))) {
    return OutOfRange("server_lr", server_lr, "finite and >= 0 (0: the strategy's default)");
  }
  HML_ASSIGN_OR_RETURN(StrategyOptions options, ToStrategyOptions());
  if (!(dp_clip_norm >= 0.0 && std::isfinite(dp_clip_norm))) {
    return OutOfRange("dp_clip_norm", dp_clip_norm, "finite and >= 0 (0: no DP)");
  }
  if (!(dp_noise_multiplier >= 0.0 && std::isfinite(dp_noise_multiplier))) {
    return OutOfRange("dp_noise_multiplier", dp_noise_multiplier, "finite and >= 0");
  }
  if (!(dp_delta > 0.0 && dp_delta < 1.0)) return OutOfRange("dp_delta", dp_delta, "in (0, 1)");
  if (dp_enabled() && options.aggregator != AggregatorKind::kWeightedMean) {
    return InvalidArgumentError("round config: aggregator '" + aggregator +
                                "' cannot be used with DP (dp_clip_norm > 0): the noised sum "
                                "bounds each client's influence only for the mean");
  }
  if (secure_aggregation && options.aggregator != AggregatorKind::kWeightedMean) {
    return InvalidArgumentError("round config: aggregator '" + aggregator +
                                "' cannot be used with secure aggregation: the server sees only "
                                "the sum, never one update");
  }
  if (secure_aggregation && dp_enabled()) {
    return InvalidArgumentError(
        "round config: secure aggregation with central DP (dp_clip_norm > 0) is not supported: "
        "the clipping would have to happen on the clients");
  }
  if (secure_aggregation && codec != "none") {
    return InvalidArgumentError("round config: codec '" + codec +
                                "' cannot be used with secure aggregation: devices send masked "
                                "fixed-point inputs, which do not compress");
  }
  if (!(secure_threshold_fraction > 0.5 && secure_threshold_fraction <= 1.0)) {
    return OutOfRange("secure_threshold_fraction", secure_threshold_fraction, "in (0.5, 1]");
  }
  if (secure_aggregation && MinReports() < 2) {
    return InvalidArgumentError(
        "round config: secure aggregation needs rounds of at least 2 reports (min_report_fraction "
        "x clients_per_round): a sum of one update is that update");
  }
  if (codec != "none" && codec != "int8" && codec != "topk") {
    return InvalidArgumentError("round config: codec '" + codec +
                                "' is unknown; use none, int8 or topk");
  }
  if (int8_chunk_size < 0 || int8_chunk_size > UINT32_MAX) {
    return OutOfRange("int8_chunk_size", static_cast<double>(int8_chunk_size),
                      "in [0, 2^32) (0: one scale per update)");
  }
  if (!(topk_fraction > 0.0 && topk_fraction <= 1.0)) {
    return OutOfRange("topk_fraction", topk_fraction, "in (0, 1]");
  }
  if (!(max_l2_norm >= 0.0 && std::isfinite(max_l2_norm))) {
    return OutOfRange("max_l2_norm", max_l2_norm, "finite and >= 0 (0: no bound)");
  }
  return Status::Ok();
}

Result<StrategyOptions> RoundConfig::ToStrategyOptions() const {
  StrategyKind kind;
  if (strategy == "fedavg") {
    kind = StrategyKind::kFedAvg;
  } else if (strategy == "fedprox") {
    kind = StrategyKind::kFedProx;
  } else if (strategy == "fedavgm") {
    kind = StrategyKind::kFedAvgM;
  } else if (strategy == "fedadam") {
    kind = StrategyKind::kFedAdam;
  } else if (strategy == "fedyogi") {
    kind = StrategyKind::kFedYogi;
  } else {
    return InvalidArgumentError("round config: strategy '" + strategy +
                                "' is unknown; use fedavg, fedprox, fedavgm, fedadam or fedyogi");
  }
  StrategyOptions options = DefaultStrategyOptions(kind);
  if (aggregator == "weighted_mean") {
    options.aggregator = AggregatorKind::kWeightedMean;
  } else if (aggregator == "median") {
    options.aggregator = AggregatorKind::kCoordinateMedian;
  } else if (aggregator == "trimmed_mean") {
    options.aggregator = AggregatorKind::kTrimmedMean;
  } else if (aggregator == "krum") {
    options.aggregator = AggregatorKind::kKrum;
  } else {
    return InvalidArgumentError("round config: aggregator '" + aggregator +
                                "' is unknown; use weighted_mean, median, trimmed_mean or krum");
  }
  if (server_lr > 0.0) options.server_lr = server_lr;
  options.momentum = server_momentum;
  options.beta1 = beta1;
  options.beta2 = beta2;
  options.tau = tau;
  options.proximal_mu = prox_mu;
  options.trim_fraction = trim_fraction;
  options.krum_f = krum_f;
  Status status = options.Validate();
  if (!status.ok()) return status.WithContext("round config");
  return options;
}

int64_t RoundConfig::NumToSelect() const {
  return std::max(clients_per_round,
                  CeilCount(over_selection * static_cast<double>(clients_per_round)));
}

int64_t RoundConfig::MinReports() const {
  return std::max<int64_t>(1,
                           CeilCount(min_report_fraction * static_cast<double>(clients_per_round)));
}

std::map<std::string, std::string> RoundConfig::ClientConfig() const {
  std::map<std::string, std::string> out;
  out["local_epochs"] = std::to_string(local_epochs);
  out["local_steps"] = std::to_string(local_steps);
  out["batch_size"] = std::to_string(batch_size);
  out["learning_rate"] = FormatDouble(learning_rate);
  out["strategy"] = strategy;
  if (strategy == "fedprox") out["prox_mu"] = FormatDouble(prox_mu);
  out["codec"] = codec;
  if (codec == "int8") out["int8_chunk_size"] = std::to_string(int8_chunk_size);
  if (codec == "topk") out["topk_fraction"] = FormatDouble(topk_fraction);
  if (max_l2_norm > 0.0) out["max_l2_norm"] = FormatDouble(max_l2_norm);
  if (secure_aggregation) out["secure_aggregation"] = "1";
  return out;
}

std::string_view RoundStatusName(RoundStatus status) {
  return status == RoundStatus::kApplied ? "applied" : "abandoned";
}

Coordinator::Coordinator(const RoundConfig& config, UpdateLayout layout, int64_t num_elements,
                         std::vector<float> weights, std::set<std::string> population,
                         std::unique_ptr<Strategy> strategy, UpdateValidator validator)
    : config_(config),
      layout_(std::move(layout)),
      num_elements_(num_elements),
      global_(std::move(weights)),
      population_(std::move(population)),
      strategy_(std::move(strategy)),
      validator_(std::move(validator)),
      noise_(Mix(config.seed ^ 0x6e6f697365ull)) {  // "noise": a stream apart from sampling
  if (config_.dp_enabled()) accountant_.emplace();
}

Result<std::unique_ptr<Coordinator>> Coordinator::Create(const RoundConfig& config,
                                                         UpdateLayout layout,
                                                         std::vector<float> initial_weights,
                                                         std::vector<std::string> population) {
  HML_RETURN_IF_ERROR(config.Validate());
  HML_ASSIGN_OR_RETURN(StrategyOptions strategy_options, config.ToStrategyOptions());
  HML_ASSIGN_OR_RETURN(int64_t num_elements, LayoutNumElements(layout));
  if (num_elements != static_cast<int64_t>(initial_weights.size())) {
    return InvalidArgumentError("coordinator: the layout holds " + std::to_string(num_elements) +
                                " values, the initial weights " +
                                std::to_string(initial_weights.size()));
  }
  for (size_t i = 0; i < initial_weights.size(); ++i) {
    if (!std::isfinite(initial_weights[i])) {
      return InvalidArgumentError("coordinator: initial weight " + std::to_string(i) +
                                  " is not finite");
    }
  }
  std::set<std::string> population_set(population.begin(), population.end());
  if (config.dp_enabled() && population_set.empty()) {
    return InvalidArgumentError(
        "coordinator: DP needs the client population (its size sets the sampling rate)");
  }
  ValidatorOptions validator_options;
  validator_options.max_l2_norm = config.max_l2_norm;
  HML_ASSIGN_OR_RETURN(UpdateValidator validator,
                       UpdateValidator::Create(layout, /*round_id=*/0, validator_options));
  HML_ASSIGN_OR_RETURN(std::unique_ptr<Strategy> strategy, Strategy::Create(strategy_options));
  return std::unique_ptr<Coordinator>(
      new Coordinator(config, std::move(layout), num_elements, std::move(initial_weights),
                      std::move(population_set), std::move(strategy), std::move(validator)));
}

Result<RoundPlan> Coordinator::StartRound(int64_t now_ms, std::span<const std::string> eligible) {
  if (round_open_) {
    return FailedPreconditionError("coordinator: round " + std::to_string(round_id_) +
                                   " is still open; close it first");
  }
  std::set<std::string> unique(eligible.begin(), eligible.end());
  if (!population_.empty()) {
    for (const std::string& id : unique) {
      if (!population_.contains(id)) {
        return InvalidArgumentError("coordinator: eligible client '" + id +
                                    "' is not in the population");
      }
    }
  }
  const int64_t min_reports = config_.MinReports();
  if (static_cast<int64_t>(unique.size()) < min_reports) {
    return FailedPreconditionError("coordinator: " + std::to_string(unique.size()) +
                                   " eligible clients, a round needs at least " +
                                   std::to_string(min_reports));
  }
  const int64_t round_id = round_id_ + 1;
  // Partial Fisher-Yates over the sorted ids (std::set iterates in order).
  std::vector<std::string> pool(unique.begin(), unique.end());
  std::mt19937_64 engine(Mix(config_.seed ^ Mix(static_cast<uint64_t>(round_id))));
  const size_t count = std::min(pool.size(), static_cast<size_t>(config_.NumToSelect()));
  for (size_t i = 0; i < count; ++i) {
    const size_t j = i + static_cast<size_t>(UniformBelow(engine, pool.size() - i));
    std::swap(pool[i], pool[j]);
  }
  pool.resize(count);

  round_open_ = true;
  round_id_ = round_id;
  started_ms_ = now_ms;
  deadline_ms_ = now_ms + config_.deadline_ms;
  selected_ = std::set<std::string>(pool.begin(), pool.end());
  accepted_.clear();
  secure_.reset();
  rejections_ = RoundRejections();
  bytes_received_ = 0;
  bytes_accepted_ = 0;
  validator_.StartRound(round_id);

  RoundPlan plan;
  plan.round_id = round_id;
  plan.selected = std::move(pool);
  plan.deadline_ms = deadline_ms_;
  plan.client_config = config_.ClientConfig();
  return plan;
}

Status Coordinator::Submit(ModelUpdate update, int64_t wire_bytes, int64_t now_ms) {
  if (!round_open_) {
    return FailedPreconditionError("coordinator: no round is open (update from client '" +
                                   update.client_id + "' for round " +
                                   std::to_string(update.round_id) + ")");
  }
  if (config_.secure_aggregation) {
    return FailedPreconditionError("coordinator: round " + std::to_string(round_id_) +
                                   " uses secure aggregation; client '" + update.client_id +
                                   "' must send a masked input, not an update");
  }
  bytes_received_ += std::max<int64_t>(0, wire_bytes);
  if (now_ms > deadline_ms_) {
    ++rejections_.late;
    return DeadlineExceededError("coordinator: update from client '" + update.client_id +
                                 "' arrived " + std::to_string(now_ms - deadline_ms_) +
                                 " ms after round " + std::to_string(round_id_) + "'s deadline");
  }
  if (!selected_.contains(update.client_id)) {
    ++rejections_.not_selected;
    return PermissionDeniedError("coordinator: client '" + update.client_id +
                                 "' is not selected for round " + std::to_string(round_id_));
  }
  // A client already accepted gets the validator's duplicate answer, even in a full round, so a
  // retry after a lost acknowledgement is told the same thing every time.
  const bool already_accepted =
      std::any_of(accepted_.begin(), accepted_.end(),
                  [&](const ModelUpdate& u) { return u.client_id == update.client_id; });
  if (!already_accepted && static_cast<int64_t>(accepted_.size()) >= config_.clients_per_round) {
    ++rejections_.over_target;
    return ResourceExhaustedError("coordinator: round " + std::to_string(round_id_) +
                                  " already has its " + std::to_string(config_.clients_per_round) +
                                  " updates; update from client '" + update.client_id +
                                  "' not used");
  }
  Status status = validator_.Check(update);
  rejections_.validator = validator_.rejections();
  if (!status.ok()) return status;
  bytes_accepted_ += std::max<int64_t>(0, wire_bytes);
  accepted_.push_back(std::move(update));
  return Status::Ok();
}

bool Coordinator::ShouldClose(int64_t now_ms) const {
  return round_open_ && (static_cast<int64_t>(accepted_.size()) >= config_.clients_per_round ||
                         secure_.has_value() || now_ms > deadline_ms_);
}

bool Coordinator::IsSelected(const std::string& client_id) const {
  return round_open_ && selected_.contains(client_id);
}

RoundProgress Coordinator::Progress() const {
  RoundProgress progress;
  progress.open = round_open_;
  progress.round_id = round_id_;
  progress.target = config_.clients_per_round;
  progress.min_reports = config_.MinReports();
  if (round_open_) {
    progress.selected = static_cast<int64_t>(selected_.size());
    progress.accepted = static_cast<int64_t>(accepted_.size());
    progress.started_ms = started_ms_;
    progress.deadline_ms = deadline_ms_;
    progress.rejected = rejections_.total();
  }
  return progress;
}

std::optional<double> Coordinator::epsilon() const {
  if (!accountant_) return std::nullopt;
  return accountant_->Epsilon(config_.dp_delta);
}

Status Coordinator::SubmitSecureAggregate(SecureAggregate aggregate, int64_t now_ms) {
  if (!round_open_) return FailedPreconditionError("coordinator: no round is open");
  if (!config_.secure_aggregation) {
    return FailedPreconditionError("coordinator: round " + std::to_string(round_id_) +
                                   " does not use secure aggregation");
  }
  if (secure_.has_value()) {
    return FailedPreconditionError("coordinator: round " + std::to_string(round_id_) +
                                   " already has its secure aggregate");
  }
  if (static_cast<int64_t>(aggregate.weighted_delta_sum.size()) != num_elements_) {
    return InvalidArgumentError("coordinator: secure aggregate has " +
                                std::to_string(aggregate.weighted_delta_sum.size()) +
                                " values, the model " + std::to_string(num_elements_));
  }
  for (size_t i = 0; i < aggregate.weighted_delta_sum.size(); ++i) {
    if (!std::isfinite(aggregate.weighted_delta_sum[i])) {
      return InvalidArgumentError("coordinator: secure aggregate value " + std::to_string(i) +
                                  " is not finite");
    }
  }
  if (!(aggregate.total_examples > 0.0) || !std::isfinite(aggregate.total_examples)) {
    return InvalidArgumentError("coordinator: secure aggregate's example total must be positive");
  }
  std::set<std::string> seen;
  for (const std::string& id : aggregate.participants) {
    if (!selected_.contains(id)) {
      return InvalidArgumentError("coordinator: secure aggregate names client '" + id +
                                  "', not selected for round " + std::to_string(round_id_));
    }
    if (!seen.insert(id).second) {
      return InvalidArgumentError("coordinator: secure aggregate names client '" + id +
                                  "' twice");
    }
  }
  bytes_received_ += std::max<int64_t>(0, aggregate.wire_bytes);
  if (now_ms > deadline_ms_) {
    rejections_.late += static_cast<int64_t>(aggregate.participants.size());
    return DeadlineExceededError("coordinator: round " + std::to_string(round_id_) +
                                 "'s secure aggregate arrived " +
                                 std::to_string(now_ms - deadline_ms_) + " ms after its deadline");
  }
  bytes_accepted_ += std::max<int64_t>(0, aggregate.wire_bytes);
  secure_ = std::move(aggregate);
  return Status::Ok();
}

Result<std::vector<float>> Coordinator::ComputeNextWeights(GaussianSampler& sampler,
                                                           int64_t* dp_clipped) {
  if (secure_.has_value()) {
    // The weighted mean, as WeightedMean computes it from individual updates.
    ModelUpdate mean;
    mean.client_id = "secure-aggregate";
    mean.round_id = round_id_;
    mean.num_examples = 1;
    mean.delta = secure_->weighted_delta_sum;
    const double inverse = 1.0 / secure_->total_examples;
    for (float& value : mean.delta) value = static_cast<float>(value * inverse);
    return strategy_->Apply(global_, std::span<const ModelUpdate>(&mean, 1));
  }
  if (!config_.dp_enabled()) return strategy_->Apply(global_, accepted_);
  std::vector<std::vector<float>> deltas;
  deltas.reserve(accepted_.size());
  for (const ModelUpdate& update : accepted_) deltas.push_back(update.delta);
  CentralDpOptions dp;
  dp.clip_norm = config_.dp_clip_norm;
  dp.noise_multiplier = config_.dp_noise_multiplier;
  CentralDpReport report;
  HML_ASSIGN_OR_RETURN(std::vector<float> sum, ClipAndNoiseSum(deltas, dp, sampler, &report));
  *dp_clipped = report.clipped_count;
  // The noised sum over the public cohort size: one pseudo-update for the server optimizer.
  ModelUpdate mean;
  mean.client_id = "dp-mean";
  mean.round_id = round_id_;
  mean.num_examples = 1;
  mean.delta = std::move(sum);
  const float inverse = 1.0f / static_cast<float>(config_.clients_per_round);
  for (float& value : mean.delta) value *= inverse;
  return strategy_->Apply(global_, std::span<const ModelUpdate>(&mean, 1));
}

Result<RoundResult> Coordinator::Close(int64_t now_ms) {
  if (!round_open_) return FailedPreconditionError("coordinator: no round is open to close");
  RoundResult result;
  result.round_id = round_id_;
  result.started_ms = started_ms_;
  result.deadline_ms = deadline_ms_;
  result.closed_ms = now_ms;
  result.selected = static_cast<int64_t>(selected_.size());
  result.participants = secure_.has_value()
                            ? static_cast<int64_t>(secure_->participants.size())
                            : static_cast<int64_t>(accepted_.size());
  result.target = config_.clients_per_round;
  result.min_reports = config_.MinReports();
  result.rejections = rejections_;
  result.bytes_received = bytes_received_;
  result.bytes_accepted = bytes_accepted_;
  double norm_sum = 0.0;
  for (const ModelUpdate& update : accepted_) {
    result.examples += update.num_examples;
    norm_sum += L2Norm(update.delta);
  }
  // A secure round knows only the sum: examples in all, no update norms.
  if (secure_.has_value()) result.examples = std::llround(secure_->total_examples);
  result.dense_bytes_accepted = result.participants * num_elements_ * 4;
  if (result.participants > 0) result.mean_update_norm = norm_sum / result.participants;

  if (result.participants < result.min_reports) {
    result.status = RoundStatus::kAbandoned;
    result.abandon_reason = std::to_string(result.participants) + " updates accepted, " +
                            std::to_string(result.min_reports) + " required";
  } else {
    GaussianSampler sampler = noise_;
    int64_t clipped = 0;
    Result<std::vector<float>> next = ComputeNextWeights(sampler, &clipped);
    if (!next.ok()) {
      result.status = RoundStatus::kAbandoned;
      result.abandon_reason = "aggregation failed: " + std::string(next.status().message());
    } else {
      double sq = 0.0;
      for (size_t i = 0; i < global_.size(); ++i) {
        const double d = static_cast<double>((*next)[i]) - global_[i];
        sq += d * d;
      }
      if (accountant_) {
        // q and sigma are validated, so Step cannot fail here; it is still checked before
        // anything is committed.
        const double q = std::min(1.0, static_cast<double>(config_.clients_per_round) /
                                           static_cast<double>(population_.size()));
        HML_RETURN_IF_ERROR(accountant_->Step(q, config_.dp_noise_multiplier));
      }
      result.status = RoundStatus::kApplied;
      result.global_delta_norm = std::sqrt(sq);
      result.dp_clipped = clipped;
      global_ = std::move(*next);
      noise_ = sampler;
    }
  }
  result.epsilon = epsilon();
  round_open_ = false;
  selected_.clear();
  accepted_.clear();
  secure_.reset();
  history_.push_back(result);
  return result;
}

}  // namespace hml::fl

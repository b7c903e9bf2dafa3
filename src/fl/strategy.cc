// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/fl/strategy.h"

#include <cmath>
#include <string>

#include "src/fl/robust.h"

namespace hml::fl {
namespace {

bool InUnitInterval(double x) { return x >= 0.0 && x < 1.0; }

Status OutOfRange(std::string_view field, double value, std::string_view range) {
  return InvalidArgumentError("StrategyOptions." + std::string(field) + " must be " +
                              std::string(range) + ", got " + std::to_string(value));
}

}  // namespace

std::string_view StrategyKindName(StrategyKind kind) {
  switch (kind) {
    case StrategyKind::kFedAvg:
      return "FedAvg";
    case StrategyKind::kFedProx:
      return "FedProx";
    case StrategyKind::kFedAvgM:
      return "FedAvgM";
    case StrategyKind::kFedAdam:
      return "FedAdam";
    case StrategyKind::kFedYogi:
      return "FedYogi";
  }
  return "unknown";
}

std::string_view AggregatorKindName(AggregatorKind kind) {
  switch (kind) {
    case AggregatorKind::kWeightedMean:
      return "weighted_mean";
    case AggregatorKind::kCoordinateMedian:
      return "median";
    case AggregatorKind::kTrimmedMean:
      return "trimmed_mean";
    case AggregatorKind::kKrum:
      return "krum";
  }
  return "unknown";
}

Status StrategyOptions::Validate() const {
  if (!(std::isfinite(server_lr) && server_lr > 0.0)) {
    return OutOfRange("server_lr", server_lr, "finite and > 0");
  }
  if (!InUnitInterval(momentum)) return OutOfRange("momentum", momentum, "in [0, 1)");
  if (!InUnitInterval(beta1)) return OutOfRange("beta1", beta1, "in [0, 1)");
  if (!InUnitInterval(beta2)) return OutOfRange("beta2", beta2, "in [0, 1)");
  if (!(std::isfinite(tau) && tau > 0.0)) return OutOfRange("tau", tau, "finite and > 0");
  if (!(std::isfinite(proximal_mu) && proximal_mu >= 0.0)) {
    return OutOfRange("proximal_mu", proximal_mu, "finite and >= 0");
  }
  if (!(trim_fraction >= 0.0 && trim_fraction < 0.5)) {
    return OutOfRange("trim_fraction", trim_fraction, "in [0, 0.5)");
  }
  if (krum_f < 0) return OutOfRange("krum_f", static_cast<double>(krum_f), ">= 0");
  return Status::Ok();
}

StrategyOptions DefaultStrategyOptions(StrategyKind kind) {
  StrategyOptions options;
  options.kind = kind;
  if (kind == StrategyKind::kFedAdam || kind == StrategyKind::kFedYogi) options.server_lr = 0.1;
  return options;
}

Result<std::vector<float>> WeightedMean(std::span<const ModelUpdate> updates) {
  HML_ASSIGN_OR_RETURN(int64_t size, CommonDeltaSize(updates));
  double total_examples = 0.0;
  for (const ModelUpdate& update : updates) {
    if (update.num_examples <= 0) {
      return InvalidArgumentError("update from client '" + update.client_id +
                                  "' has num_examples " + std::to_string(update.num_examples) +
                                  ", must be > 0");
    }
    total_examples += static_cast<double>(update.num_examples);
  }
  std::vector<double> sum(static_cast<size_t>(size), 0.0);
  for (const ModelUpdate& update : updates) {
    const double weight = static_cast<double>(update.num_examples) / total_examples;
    for (int64_t j = 0; j < size; ++j) sum[j] += weight * update.delta[j];
  }
  return std::vector<float>(sum.begin(), sum.end());
}

Result<std::vector<float>> Aggregate(std::span<const ModelUpdate> updates,
                                     const StrategyOptions& options) {
  switch (options.aggregator) {
    case AggregatorKind::kWeightedMean:
      return WeightedMean(updates);
    case AggregatorKind::kCoordinateMedian:
      return CoordinateMedian(updates);
    case AggregatorKind::kTrimmedMean:
      return TrimmedMean(updates, options.trim_fraction);
    case AggregatorKind::kKrum:
      return Krum(updates, options.krum_f);
  }
  return InternalError("unknown aggregator kind");
}

Result<std::unique_ptr<Strategy>> Strategy::Create(const StrategyOptions& options) {
  HML_RETURN_IF_ERROR(options.Validate());
  return std::unique_ptr<Strategy>(new Strategy(options));
}

Result<std::vector<float>> Strategy::Apply(std::span<const float> global,
                                           std::span<const ModelUpdate> updates) {
  HML_ASSIGN_OR_RETURN(std::vector<float> delta, Aggregate(updates, options_));
  const size_t n = global.size();
  if (delta.size() != n) {
    return InvalidArgumentError(std::string(StrategyKindName(options_.kind)) + ": updates hold " +
                                std::to_string(delta.size()) + " values, the global model has " +
                                std::to_string(n));
  }
  if (!m_.empty() && m_.size() != n) {
    return InvalidArgumentError(std::string(StrategyKindName(options_.kind)) +
                                ": the global model has " + std::to_string(n) +
                                " values, earlier rounds had " + std::to_string(m_.size()));
  }
  const double lr = options_.server_lr;
  std::vector<float> next(n);
  switch (options_.kind) {
    case StrategyKind::kFedAvg:
    case StrategyKind::kFedProx:
      for (size_t j = 0; j < n; ++j) next[j] = static_cast<float>(global[j] + lr * delta[j]);
      break;
    case StrategyKind::kFedAvgM:
      m_.resize(n, 0.0);
      for (size_t j = 0; j < n; ++j) {
        m_[j] = options_.momentum * m_[j] + delta[j];
        next[j] = static_cast<float>(global[j] + lr * m_[j]);
      }
      break;
    case StrategyKind::kFedAdam:
    case StrategyKind::kFedYogi: {
      const bool yogi = options_.kind == StrategyKind::kFedYogi;
      const double b1 = options_.beta1;
      const double b2 = options_.beta2;
      m_.resize(n, 0.0);
      v_.resize(n, 0.0);
      for (size_t j = 0; j < n; ++j) {
        const double d = delta[j];
        const double d2 = d * d;
        m_[j] = b1 * m_[j] + (1.0 - b1) * d;
        if (yogi) {
          const double diff = v_[j] - d2;
          const double sign = diff > 0.0 ? 1.0 : (diff < 0.0 ? -1.0 : 0.0);
          v_[j] = v_[j] - (1.0 - b2) * d2 * sign;
        } else {
          v_[j] = b2 * v_[j] + (1.0 - b2) * d2;
        }
        next[j] = static_cast<float>(global[j] + lr * m_[j] / (std::sqrt(v_[j]) + options_.tau));
      }
      break;
    }
  }
  return next;
}

}  // namespace hml::fl

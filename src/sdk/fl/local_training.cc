// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/sdk/fl/local_training.h"

#include <cmath>
#include <random>
#include <string>
#include <vector>

namespace hml::sdk {
Status LocalTrainingConfig::Validate() const {
  if (local_epochs < 1 && local_steps == 0) {
    return InvalidArgumentError("local_epochs must be >= 1 when local_steps is 0, got " +
                                std::to_string(local_epochs));
  }
  if (local_steps < 0) {
    return InvalidArgumentError("local_steps must be >= 0, got " + std::to_string(local_steps));
  }
  if (batch_size < 1) {
    return InvalidArgumentError("batch_size must be >= 1, got " + std::to_string(batch_size));
  }
  if (!(learning_rate > 0.0f) || !std::isfinite(learning_rate)) {
    return InvalidArgumentError("learning_rate must be positive and finite, got " +
                                std::to_string(learning_rate));
  }
  if (!(momentum >= 0.0f && momentum < 1.0f)) {
    return InvalidArgumentError("momentum must be in [0, 1), got " + std::to_string(momentum));
  }
  if (!(prox_mu >= 0.0f) || !std::isfinite(prox_mu)) {
    return InvalidArgumentError("prox_mu must be >= 0 and finite, got " + std::to_string(prox_mu));
  }
  return Status::Ok();
}

Result<LocalTrainingConfig> LocalTrainingConfig::FromConfigMap(
    const std::map<std::string, std::string>& config) {
  LocalTrainingConfig c;
  HML_ASSIGN_OR_RETURN(c.local_epochs, RoundConfigNumber(config, "local_epochs", c.local_epochs));
  HML_ASSIGN_OR_RETURN(c.local_steps, RoundConfigNumber(config, "local_steps", c.local_steps));
  HML_ASSIGN_OR_RETURN(c.batch_size, RoundConfigNumber(config, "batch_size", c.batch_size));
  HML_ASSIGN_OR_RETURN(c.learning_rate,
                       RoundConfigNumber(config, "learning_rate", c.learning_rate));
  HML_ASSIGN_OR_RETURN(c.momentum, RoundConfigNumber(config, "momentum", c.momentum));
  HML_ASSIGN_OR_RETURN(c.prox_mu, RoundConfigNumber(config, "prox_mu", c.prox_mu));
  HML_ASSIGN_OR_RETURN(c.seed, RoundConfigNumber(config, "seed", c.seed));
  HML_RETURN_IF_ERROR(c.Validate());
  return c;
}

Status TrainingBudget::Validate() const {
  if (!(max_seconds > 0.0)) {
    return InvalidArgumentError("max_seconds must be positive, got " + std::to_string(max_seconds));
  }
  if (max_memory_bytes < 1) {
    return InvalidArgumentError("max_memory_bytes must be positive, got " +
                                std::to_string(max_memory_bytes));
  }
  if (check_every_steps < 1) {
    return InvalidArgumentError("check_every_steps must be >= 1, got " +
                                std::to_string(check_every_steps));
  }
  return Status::Ok();
}

fl::UpdateLayout LayoutOf(const runtime::Trainer& trainer) {
  fl::UpdateLayout layout;
  for (const runtime::ParameterInfo& p : trainer.parameters()) {
    layout.push_back({p.name, std::vector<int64_t>(p.shape.begin(), p.shape.end())});
  }
  return layout;
}

Result<LocalTrainingResult> TrainLocally(runtime::Trainer& trainer, const data::Dataset& data,
                                         std::span<const float> global,
                                         const LocalTrainingConfig& config,
                                         const TrainingBudget& budget, const Platform& platform,
                                         const Clock& clock, const std::atomic<bool>* cancel) {
  HML_RETURN_IF_ERROR(config.Validate());
  HML_RETURN_IF_ERROR(budget.Validate());
  if (data.size() < 1) {
    return InvalidArgumentError("local training needs at least one labelled sample, got none");
  }
  if (static_cast<int64_t>(global.size()) != trainer.num_parameter_elements()) {
    return InvalidArgumentError("the round's global weights have " + std::to_string(global.size()) +
                                " values, the model has " +
                                std::to_string(trainer.num_parameter_elements()));
  }
  if (Status s = CheckBackgroundConditions(platform, budget.conditions); !s.ok()) {
    return FailedPreconditionError("local training not started: " + std::string(s.message()));
  }

  int64_t batch = std::min(config.batch_size, data.size());
  int64_t needed = trainer.EstimateMemoryBytes(batch);
  while (needed > budget.max_memory_bytes && batch > 1) {
    batch /= 2;
    needed = trainer.EstimateMemoryBytes(batch);
  }
  if (needed > budget.max_memory_bytes) {
    return ResourceExhaustedError("local training needs " + std::to_string(needed) +
                                  " bytes even with a batch of 1; the memory budget is " +
                                  std::to_string(budget.max_memory_bytes));
  }

  const int64_t steps_per_epoch = (data.size() + batch - 1) / batch;
  const int64_t total_steps =
      config.local_steps > 0 ? config.local_steps : steps_per_epoch * config.local_epochs;

  HML_RETURN_IF_ERROR(trainer.SetParameters(global));
  trainer.ResetOptimizer();
  HML_RETURN_IF_ERROR(trainer.SetLearningRate(config.learning_rate));
  HML_RETURN_IF_ERROR(trainer.SetMomentum(config.momentum));
  HML_RETURN_IF_ERROR(trainer.SetProxMu(config.prox_mu));
  if (config.prox_mu > 0.0f) HML_RETURN_IF_ERROR(trainer.SetProxAnchor(global));

  const int64_t feature_size = data.feature_size();
  Shape batch_shape = {batch};
  for (int64_t d : data.feature_shape()) batch_shape.push_back(d);
  std::vector<float> features(static_cast<size_t>(batch * feature_size));
  std::vector<int64_t> labels(static_cast<size_t>(batch));

  std::mt19937_64 rng(config.seed);
  std::vector<int64_t> order;
  size_t next = 0;
  const int64_t start = clock.NowNanos();
  LocalTrainingResult result;
  result.batch_size = batch;
  double loss_sum = 0.0;
  // Puts the trainer back at the global weights and says why training stopped.
  auto abort = [&](const std::string& why) -> Status {
    (void)trainer.SetParameters(global);
    trainer.ResetOptimizer();
    return AbortedError("local training stopped after " + std::to_string(result.steps) + " of " +
                        std::to_string(total_steps) + " steps: " + why);
  };
  while (result.steps < total_steps) {
    if (result.steps % budget.check_every_steps == 0 && result.steps > 0) {
      if (cancel != nullptr && cancel->load(std::memory_order_relaxed)) {
        return abort("cancelled by the app");
      }
      if (Status s = CheckBackgroundConditions(platform, budget.conditions); !s.ok()) {
        return abort(std::string(s.message()));
      }
      if (static_cast<double>(clock.NowNanos() - start) * 1e-9 >= budget.max_seconds) {
        result.stop = TrainingStop::kTimeBudget;
        break;
      }
    }
    // The batch: the next `batch` samples of the shuffled order, reshuffled at each epoch's end
    // (the last batch of an epoch is filled from the next epoch, so every batch is full).
    for (int64_t b = 0; b < batch; ++b) {
      if (next == order.size()) {
        order = data::ShuffledIndices(data.size(), rng);
        next = 0;
      }
      HML_ASSIGN_OR_RETURN(labels[static_cast<size_t>(b)],
                           data.Get(order[next++], std::span<float>(features).subspan(
                                                       static_cast<size_t>(b * feature_size),
                                                       static_cast<size_t>(feature_size))));
    }
    HML_ASSIGN_OR_RETURN(Tensor inputs, Tensor::FromVector<float>(batch_shape, features));
    HML_ASSIGN_OR_RETURN(runtime::StepResult step, trainer.Step(inputs, labels));
    loss_sum += step.loss;
    ++result.steps;
  }

  // The update's example count is the local data size n_k, FedAvg's weight (McMahan et al.
  // 2017), whatever the number of steps.
  const std::vector<float> trained = trainer.GetParameters();
  result.update.delta.resize(trained.size());
  for (size_t i = 0; i < trained.size(); ++i) result.update.delta[i] = trained[i] - global[i];
  result.update.layout = LayoutOf(trainer);
  result.update.num_examples = data.size();
  result.mean_loss = result.steps > 0 ? loss_sum / static_cast<double>(result.steps) : 0.0;
  result.seconds = static_cast<double>(clock.NowNanos() - start) * 1e-9;
  return result;
}

}  // namespace hml::sdk

// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The device half of a federated round: local training on the device's own labelled data with
// the on-device trainer (src/runtime/train/), under the device's training conditions and
// within a time and memory budget, ending in the model update the device submits.
//
// The round's settings arrive as strings in JoinRoundResponse.config (LocalTrainingConfig::
// FromConfigMap reads them). TrainLocally then:
//   1. checks the conditions (BackgroundPolicy: by default unmetered network, charging and
//      idle) and refuses to start when one is not met;
//   2. picks the batch size: the configured one, halved until the trainer's estimated working
//      memory fits the budget (kResourceExhausted when even a batch of 1 does not);
//   3. runs SGD steps over shuffled epochs of the local data, re-checking the conditions, the
//      time budget and the cancel flag every `check_every_steps` steps;
//   4. returns the update: the trained weights minus the round's global weights, with the
//      number of examples the steps consumed (FedAvg's weight).
// When the time budget runs out the steps done so far still form a valid update (the stop
// reason says so; FedProx is designed for such partial work). When the conditions end (the user
// unplugs the phone, picks it up, or leaves Wi-Fi) or the app cancels, training stops at the
// next check, the trainer is put back to the global weights, and kAborted names the reason: a
// half-trained update is never submitted by accident.
#ifndef HML_SRC_SDK_FL_LOCAL_TRAINING_H_
#define HML_SRC_SDK_FL_LOCAL_TRAINING_H_

#include <atomic>
#include <charconv>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <system_error>

#include "hml/clock.h"
#include "hml/sdk/platform.h"
#include "hml/status.h"
#include "src/data/dataset.h"
#include "src/fl/update.h"
#include "src/runtime/train/trainer.h"

namespace hml::sdk {

// The number under `key` of a round config (JoinRoundResponse.config), or `fallback` when the
// key is absent. kInvalidArgument naming the key and the text when it is not a whole T.
template <typename T>
Result<T> RoundConfigNumber(const std::map<std::string, std::string>& config,
                            const std::string& key, T fallback) {
  const auto it = config.find(key);
  if (it == config.end()) return fallback;
  const std::string& text = it->second;
  T value{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) {
    return InvalidArgumentError("round config key '" + key + "' has value '" + text +
                                "', which is not a number of the expected type");
  }
  return value;
}

// How one device trains in one round (the server's round config).
struct LocalTrainingConfig {
  // Passes over the local data; used when local_steps is 0. Default: 1.
  int local_epochs = 1;
  // SGD steps to run regardless of the data size (0 = local_epochs passes). Default: 0.
  int64_t local_steps = 0;
  // Default: 32.
  int64_t batch_size = 32;
  // Client SGD. Defaults: learning rate 0.05, momentum 0.9.
  float learning_rate = 0.05f;
  float momentum = 0.9f;
  // FedProx proximal weight mu (0 = plain local SGD). Default: 0.
  float prox_mu = 0.0f;
  // Seed of the local shuffle. Default: 0.
  uint64_t seed = 0;

  // kInvalidArgument naming the field for values out of range.
  Status Validate() const;

  // Reads the keys local_epochs, local_steps, batch_size, learning_rate, momentum, prox_mu and
  // seed (missing keys keep their defaults). kInvalidArgument naming the key for a value that
  // does not parse or is out of range; unknown keys are ignored (newer servers may send more).
  static Result<LocalTrainingConfig> FromConfigMap(
      const std::map<std::string, std::string>& config);
};

struct TrainingBudget {
  // Wall time for the whole local training. Default: 120 s.
  double max_seconds = 120.0;
  // Working memory the trainer may use (parameters, optimiser state, activations of a batch).
  // Default: 64 MiB.
  int64_t max_memory_bytes = int64_t{64} << 20;
  // The conditions training runs under. Default: unmetered network, charging, idle.
  BackgroundPolicy conditions = {.require_unmetered = true,
                                 .require_charging = true,
                                 .require_idle = true,
                                 .min_battery_level = 0.2};
  // Steps between checks of the conditions, the time and the cancel flag. Default: 10.
  int64_t check_every_steps = 10;

  // kInvalidArgument naming the field for values out of range.
  Status Validate() const;
};

enum class TrainingStop {
  kCompleted,   // every configured step ran
  kTimeBudget,  // the time budget ended training early; the update covers the steps done
};

struct LocalTrainingResult {
  fl::ModelUpdate update;  // client_id and round_id are the caller's to fill
  TrainingStop stop = TrainingStop::kCompleted;
  int64_t steps = 0;
  int64_t batch_size = 0;  // the batch size actually used (see the memory budget)
  double mean_loss = 0.0;  // over the steps run
  double seconds = 0.0;
};

// Trains `trainer`, which must hold `global` (the round's starting weights, in the trainer's
// parameter order), on `data`, and returns the update. `cancel` may be null.
// Errors: kFailedPrecondition when the conditions are not met at the start; kAborted when they
// end or `cancel` is set during training (the trainer is back at `global`); kResourceExhausted
// when a batch of one does not fit max_memory_bytes; kInvalidArgument for empty data, a
// config/budget out of range or `global` of the wrong size; the trainer's errors otherwise.
Result<LocalTrainingResult> TrainLocally(runtime::Trainer& trainer, const data::Dataset& data,
                                         std::span<const float> global,
                                         const LocalTrainingConfig& config,
                                         const TrainingBudget& budget, const Platform& platform,
                                         const Clock& clock,
                                         const std::atomic<bool>* cancel = nullptr);

// The update layout of `trainer`'s parameters (names and shapes), as fl::ModelUpdate carries it.
fl::UpdateLayout LayoutOf(const runtime::Trainer& trainer);

}  // namespace hml::sdk

#endif  // HML_SRC_SDK_FL_LOCAL_TRAINING_H_

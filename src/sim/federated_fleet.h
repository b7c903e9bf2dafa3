// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Federated learning across the fleet simulator's devices, end to end through the same paths a
// deployment uses (the federated phase of `hybridml demo`):
//   - the server side is a server::FederatedTasks with one task over a model of the registry
//     (rounds, cohorts, validation, aggregation, evaluation, publishing and rollout);
//   - every device is a thread with its own emulated link and an InProcessTransport to that
//     FederatedTasks (JoinRound / SubmitUpdate pay the link like any call), a ModelUpdater that
//     installs the task's model over the air from the registry's signed repository (every new
//     global version the task rolls out travels to the devices that way, as a delta when the
//     repository has one), a FederatedParticipant, and its own local labelled data;
//   - a ticker thread calls FederatedTasks::Tick every `tick_interval_ms` (what `hybridml serve`
//     does on its timer), which starts rounds from the devices waiting and closes them.
// A device's loop: join; when selected, install the round's version if it does not have it yet,
// train locally (src/sdk/fl/local_training.h) and submit; otherwise wait a little and join again.
// The run ends when the task reports "done" (its max_rounds applied) or "failed", or at the
// timeout; every device then checks for an update once more, so the final rollout is installed.
#ifndef HML_SRC_SIM_FEDERATED_FLEET_H_
#define HML_SRC_SIM_FEDERATED_FLEET_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "hml/status.h"
#include "src/data/dataset.h"
#include "src/sdk/fl/local_training.h"
#include "src/server/fl/federated_tasks.h"
#include "src/server/serving/inference_backend.h"

namespace hml::sim {

struct FederatedFleetOptions {
  // The registry (its repo/ is what devices install from). Required.
  std::string registry_dir;
  // The task's model in the registry and the channel its versions are rolled out to (the task's
  // rollout_channel). Required; channel default "stable".
  std::string model;
  std::string channel = "stable";
  // The server: the task `task` of `tasks` trains `model`. Must outlive the run. Required.
  server::FederatedTasks* tasks = nullptr;
  std::string task;
  // The transports' inference backend (unused by the federated calls, required by the
  // transport). Required.
  server::InferenceBackend* backend = nullptr;
  // One entry per device: its local labelled data. The number of entries is the number of
  // devices. Required, non-empty.
  std::vector<std::shared_ptr<const data::Dataset>> device_data;
  // Link profiles cycled over the devices (NamedLinkProfile). Default: {"wifi"} (training runs
  // on unmetered networks).
  std::vector<std::string> link_profiles = {"wifi"};
  // The devices' local training conditions and budget. Every simulated device is charging, idle
  // and on an unmetered network, so the default conditions hold. Default: TrainingBudget{}.
  sdk::TrainingBudget budget;
  // Devices' pause between two JoinRound calls when they get no round. Default: 50 ms.
  int64_t join_interval_ms = 50;
  // The ticker's period. Default: 20 ms.
  int64_t tick_interval_ms = 20;
  // Give up (kDeadlineExceeded) after this long. Default: 600 s.
  int64_t timeout_ms = 600000;
  // The CPU device threads are pinned to; -1 = none. Default: -1.
  int device_cpu = -1;
  // Devices keep their installed models in <work_dir>/<device id>/. Required.
  std::string work_dir;
  // Told about progress (installs, rounds) in a line of text. Default: none.
  std::function<void(std::string_view line)> progress;

  Status Validate() const;
};

// One device's part in the run.
struct FederatedDeviceRow {
  std::string device_id;
  int64_t samples = 0;            // local labelled samples
  int64_t rounds_trained = 0;     // updates submitted
  int64_t rounds_accepted = 0;    // of those, used by their round
  int64_t update_bytes = 0;       // sealed updates sent
  int64_t wire_bytes_sent = 0;    // JoinRound + SubmitUpdate through the link
  int64_t ota_bytes = 0;          // model installs through the link
  int64_t installed_version = 0;  // after the run
  std::string installed_path;     // that version's file on the device
  double train_seconds = 0;
};

struct FederatedFleetReport {
  std::vector<FederatedDeviceRow> devices;
  std::vector<fl::RoundResult> rounds;  // the task's round history
  server::FederatedTaskStatus status;   // at the end
  double seconds = 0;
};

// Runs the task to its end across the devices (see the file comment).
Result<FederatedFleetReport> RunFederatedFleet(const FederatedFleetOptions& options);

}  // namespace hml::sim

#endif  // HML_SRC_SIM_FEDERATED_FLEET_H_

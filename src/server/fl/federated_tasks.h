// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The server side of federated learning: named tasks, each a fl::Coordinator over one model of
// the registry, behind FederatedLearning.JoinRound / SubmitUpdate (device_services.h), driven by
// Tick().
//
// A task (FederatedTaskSpec, usually read from <registry>/fl/<task>/task.json, see task_file.h)
// trains model `model` starting from its newest registry version. The trained parameters are
// float constants (ONNX initializers) of that version's graph, named by `parameters` (all float
// constants when empty), in order: their names and shapes are the fl::UpdateLayout devices train
// and encode against, their values the coordinator's initial global weights.
//
// The round cycle:
//   1. Devices call Join. Outside an open round, or when not selected for it, a device is added
//      to the task's waiting pool and gets no round (it asks again later). A selected device of
//      the open round gets the round id, the model version to start from (the task's current
//      registry version, downloaded through Registry like any OTA target), the deadline (wall ms
//      since the Unix epoch) and the local training config (fl::RoundConfig::ClientConfig).
//   2. Tick(now) starts a round from the waiting pool once it holds NumToSelect() devices, or
//      MinReports() devices of which the first has waited gather_ms: the coordinator samples the
//      cohort among them, and the pool empties (devices not selected join again).
//   3. Devices Submit the update sealed with fl/update_wire.h. The sealed round id, example count
//      and codec must match the request and the task; the client id is the authenticated device.
//      In a task with round.secure_aggregation devices submit nothing: the round's cohort runs
//      a fl::SecureRoundServer through SecureExchange (keys, sealed shares, masked inputs,
//      unmasking; its stages end at fractions of the round's window), and when the sum is
//      taken the coordinator gets it (SubmitSecureAggregate) and may close the round.
//   4. Tick(now) closes the round when the coordinator says so (target reached or deadline
//      passed). An applied round writes the new global weights into the graph's constants by name
//      (shapes checked), saves the ONNX file to <registry>/fl/<task>/round-<R>.onnx, evaluates it
//      on the task's held-out data if it has some (data::EvaluateModel), publishes it as the next
//      version of the model with the round history in metadata_json (see PublishMetadata) and,
//      when rollout_channel is set, rolls it out. An abandoned round publishes nothing.
//
// The registry is opened (Registry::Open, with the keys in keys_dir) only for the moment of a
// publish, so `hybridml publish` and friends keep working while the server runs; it is read
// (Registry::ListDir, no lock) to find a task's starting version. If publishing fails, the task
// stops starting rounds (state "failed", the error in its status): the coordinator's weights would
// otherwise run ahead of the version devices train from.
//
// Thread-safe: one mutex per task; Join/Submit of one task are serialised with its Tick, tasks
// are independent. Publishing (ONNX write, evaluation, registry) happens under the task's mutex
// and a registry mutex, so a task's devices wait for it; other tasks do not.
#ifndef HML_SRC_SERVER_FL_FEDERATED_TASKS_H_
#define HML_SRC_SERVER_FL_FEDERATED_TASKS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "hml/clock.h"
#include "hml/env.h"
#include "hml/status.h"
#include "src/fl/coordinator.h"

namespace hybridml::v1 {
class JoinRoundResponse;
}  // namespace hybridml::v1

namespace hml::server {

struct FederatedTaskSpec {
  // Task name, what devices send in JoinRoundRequest.task: [A-Za-z0-9._-], 1 to 128 characters.
  // Required.
  std::string name;
  // The registry model trained. Required.
  std::string model;
  // The float constants (ONNX initializers) trained, in update-layout order. Default: empty =
  // every float32 constant of the graph, in graph order.
  std::vector<std::string> parameters;
  // Rounds: cohort, deadline, local training, strategy, DP, codec (fl/coordinator.h).
  // Default: RoundConfig's defaults.
  fl::RoundConfig round;
  // Device ids that may take part; also sets DP's sampling rate. Default: empty = any
  // authenticated device (not allowed with DP).
  std::vector<std::string> population;
  // Held-out data each new version is evaluated on, a data spec (data::OpenDataSpec:
  // "fashion-mnist[:DIR]", "csv:PATH", "dir:PATH"; its test part when it has one). Default: ""
  // (no evaluation; accuracy is not reported).
  std::string eval_data;
  // Evaluate on at most this many samples; 0 = all. Default: 0.
  int64_t eval_max_samples = 0;
  // Channel each new version is rolled out to; empty = publish only. Default: "".
  std::string rollout_channel;
  // Percent of the channel's devices the rollout reaches, in [1, 100]. Default: 100.
  int64_t rollout_percent = 100;
  // How long the first waiting device waits for a full cohort before a round starts with at
  // least MinReports() devices. Default: 30000; >= 0.
  int64_t gather_ms = 30000;
  // Stop after this many applied rounds; 0 = no limit. Default: 0.
  int64_t max_rounds = 0;

  // kInvalidArgument naming the field.
  Status Validate() const;
};

// What Join answers.
struct JoinAnswer {
  // 0: no round for this device now; ask again later.
  int64_t round_id = 0;
  int64_t model_version = 0;
  int64_t deadline_ms = 0;
  std::map<std::string, std::string> config;
};

// `answer` as FederatedLearning.JoinRound sends it: the round id (as text), deadline and config
// only when there is a round, the model version always. The one wire form of a join, shared by
// the gRPC service and the in-process transport.
void FillJoinRoundResponse(const JoinAnswer& answer, hybridml::v1::JoinRoundResponse* response);

// A task's progress, for `hybridml fl status` (written to <registry>/fl/<task>/status.json).
struct FederatedTaskStatus {
  std::string task;
  std::string model;
  // The registry version devices train from (the last one published by the task, or its start).
  int64_t model_version = 0;
  // "waiting" (gathering devices), "open" (round in progress), "done" (max_rounds reached),
  // "failed" (publishing failed; see error).
  std::string state;
  int64_t round_id = 0;     // the open round, or the last one
  int64_t waiting = 0;      // devices in the pool for the next round
  int64_t selected = 0;     // of the open round
  int64_t submitted = 0;    // accepted updates of the open round (secure: masked inputs)
  int64_t target = 0;       // clients_per_round
  int64_t min_reports = 0;  // needed to apply
  int64_t deadline_ms = 0;  // of the open round, wall ms since the Unix epoch; 0 when none
  int64_t rounds_applied = 0;
  int64_t rounds_abandoned = 0;
  std::optional<double> last_accuracy;  // of the last published version, when evaluated
  std::optional<double> epsilon;        // with DP, after the applied rounds
  std::string last_round_status;        // "applied", "abandoned: <why>" or "" before any
  std::string error;
};

struct FederatedTasksOptions {
  // The registry directory. Required.
  std::string registry_dir;
  // The registry's signing keys (as `hybridml publish --keys`). Required.
  std::string keys_dir;
  // Write <registry>/fl/<task>/status.json when a task is added and after every Tick that
  // changed it (not on every Join/Submit: each write is an fsync). Default: true.
  bool write_status_files = true;
  // Default: DefaultEnv(), RealClock() (the clock stamps registry versions; rounds use the
  // now_ms given to each call).
  Env* env = DefaultEnv();
  Clock* clock = RealClock();
  // Longest wait a device in a secure round is told between polls (SecureRoundOptions::poll_ms).
  // Default: 1000; >= 1.
  int64_t secure_poll_ms = 1000;

  Status Validate() const;
};

class FederatedTasks {
 public:
  static Result<std::unique_ptr<FederatedTasks>> Create(FederatedTasksOptions options);
  ~FederatedTasks();

  // Adds a task: loads the model's newest registry version and builds its coordinator.
  // kAlreadyExists for a task name in use; kNotFound for a model without versions;
  // kInvalidArgument for an invalid spec or a parameter that is not a float constant of the
  // graph (named).
  Status AddTask(const FederatedTaskSpec& spec);
  // Adds every <registry>/fl/<task>/task.json not added yet; returns the names added. A file
  // that fails to parse or add is skipped and reported in `errors` (when non-null).
  std::vector<std::string> AddTasksFromRegistry(std::vector<std::string>* errors = nullptr);

  // JoinRound for `device_id` (see the file comment). kNotFound for an unknown task;
  // kPermissionDenied for a device outside the task's population.
  Result<JoinAnswer> Join(const std::string& task, const std::string& device_id, int64_t now_ms);

  // SubmitUpdate: true when the update is accepted, false when it arrived too late to be used
  // (deadline passed, round closed or full). kInvalidArgument for undecodable bytes or a
  // mismatch with the request or the task (codec, round id, example count); kPermissionDenied
  // for a device that is not selected or an update sealed by another client; kAlreadyExists for
  // a second update of the device in the round; the validator's other codes.
  Result<bool> Submit(const std::string& task, const std::string& device_id,
                      const std::string& round_id, std::string_view sealed_update,
                      uint64_t example_count, int64_t now_ms);

  // One message of a secure round's exchange (fl/secure_round.h bytes) from `device_id`; returns
  // the reply bytes. kNotFound for an unknown task; kFailedPrecondition when the task does not
  // use secure aggregation or the round is not open; kInvalidArgument for undecodable bytes or a
  // message the protocol refuses; kPermissionDenied for a device outside the round's cohort.
  // When the exchange completes the sum, the coordinator gets the aggregate at once.
  Result<std::string> SecureExchange(const std::string& task, const std::string& device_id,
                                     const std::string& round_id, std::string_view message,
                                     int64_t now_ms);

  // Closes the rounds that should close and starts those that can start. Returns the first error
  // (a failed publish); every task is still visited.
  Status Tick(int64_t now_ms);

  Result<FederatedTaskStatus> TaskStatus(const std::string& task);
  std::vector<FederatedTaskStatus> AllStatus();
  // The coordinator's round history of a task (for tests and reports).
  Result<std::vector<fl::RoundResult>> History(const std::string& task);

 private:
  struct Task;
  explicit FederatedTasks(FederatedTasksOptions options);
  Task* Find(const std::string& name);
  Status TickTask(Task& task, int64_t now_ms);
  // Advances the open round's secure aggregation and hands a finished sum to the coordinator.
  void OfferSecureAggregate(Task& task, int64_t now_ms);
  Status PublishRound(Task& task, const fl::RoundResult& result);
  FederatedTaskStatus StatusLocked(const Task& task) const;
  void WriteStatusLocked(Task& task);

  const FederatedTasksOptions options_;
  std::mutex tasks_mu_;  // guards the map, not the tasks
  std::map<std::string, std::unique_ptr<Task>> tasks_;
  std::mutex registry_mu_;  // one publish at a time
};

// The JSON object stored as metadata_json of a version a federated round published:
//   {"federated": {"task", "parent_version", "round_id", "participants", "selected",
//    "rejected", "rejections": {reason: count}, "examples", "bytes_received", "strategy",
//    "aggregator", "accuracy" (or null), "epsilon" (or null; null also when infinite),
//    "dp_delta" (with DP), "abandoned_since_parent"}}
// Registry metadata is canonical JSON with integers only, so accuracy, epsilon and dp_delta are
// decimal strings ("0.8125", 6 significant digits).
std::string PublishMetadata(const FederatedTaskSpec& spec, int64_t parent_version,
                            const fl::RoundResult& result, std::optional<double> accuracy,
                            int64_t abandoned_since_parent);

}  // namespace hml::server

#endif  // HML_SRC_SERVER_FL_FEDERATED_TASKS_H_

// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// FederatedParticipant: what an app calls from its background job to take part in federated
// learning. One RunOnce() is one attempt at one round, over the SDK's Transport (gRPC to
// `hybridml serve`, or in-process in the fleet simulator):
//   1. FederatedLearning.JoinRound for the task. No round for this device (none open, or not
//      selected): nothing else happens; the app asks again at its next background window.
//   2. The round names the global model version to start from. The app's model source (usually
//      the OTA updater, which installs what the task rolls out) hands back the file of exactly
//      that version, or says it does not have it yet (the round is skipped, never trained on
//      another version: the update would be a delta against the wrong weights).
//   3. Local training (local_training.h) with the round's config, under the training
//      conditions and budget; the trainer for a version is kept between rounds.
//   4. The update is sealed with the round's codec (src/fl/update_wire.h: int8, top-k with this
//      device's error-feedback residual, or dense) and sent with SubmitUpdate.
// In a round with secure aggregation (config secure_aggregation = 1) steps 3 and 4 are instead
// the device's side of src/fl/secure_round.h over FederatedLearning.SecureAggregation: keys and
// sealed shares first, local training while the server gathers the cohort's shares, then the
// masked input (the clipped delta weighted by the example count, in fixed point) and the unmask
// response; between stages the device polls as the server says (sleeping on the transport's
// clock), until the sum is taken (kSubmitted, accepted), the device is out of the round
// (kSecureOut: it missed a stage or the secure aggregation aborted) or the round's deadline
// passes (kSecureOut). An error (a failed call, training stopped by the conditions) leaves the
// exchange where it was: the next RunOnce in the same round resumes it.
// Blocking: RunOnce waits for each call's callback. Not thread-safe; one per task per device.
#ifndef HML_SRC_SDK_FL_PARTICIPANT_H_
#define HML_SRC_SDK_FL_PARTICIPANT_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hml/clock.h"
#include "hml/sdk/platform.h"
#include "hml/status.h"
#include "src/data/dataset.h"
#include "src/fl/codec.h"
#include "src/fl/secure_round.h"
#include "src/runtime/train/trainer.h"
#include "src/sdk/fl/local_training.h"
#include "src/sdk/transport.h"

namespace hml::sdk {

struct ParticipantOptions {
  // The federated task to join (JoinRoundRequest.task). Required.
  std::string task;
  // Conditions, time and memory of local training. Default: TrainingBudget's.
  TrainingBudget budget;
  // Deadline of each JoinRound / SubmitUpdate call. Default: 30 s.
  int64_t call_timeout_nanos = int64_t{30} * 1000000000;
  // Train only the last K parameterised layers (0 = all); must match the task's parameters.
  // Default: 0.
  int trainable_layers = 0;
  // Client SGD momentum (the round config may override it with "momentum"). Default: 0.9.
  float momentum = 0.9f;
  // This device's id, for the update (the server checks it against the authenticated device).
  // Required.
  std::string client_id;

  Status Validate() const;
};

// The model file of a global version, or kUnavailable when this device does not have it yet.
using ModelSource = std::function<Result<std::string>(int64_t version)>;

struct ParticipationResult {
  enum class Outcome {
    kNoRound,       // no round for this device now (or it already sent this round's update)
    kModelMissing,  // selected, but the round's model version is not on the device yet
    kSubmitted,     // trained and sent; `accepted` says whether the round used it
    kSecureOut,     // a secure round went on without this device, or aborted: see detail
  };
  Outcome outcome = Outcome::kNoRound;
  std::string round_id;
  int64_t model_version = 0;
  bool accepted = false;
  LocalTrainingResult training;  // when trained
  int64_t update_bytes = 0;      // sealed update size (secure: the masked input message)
  int64_t wire_bytes_sent = 0;   // both calls, as the transport counted them
  int64_t wire_bytes_received = 0;
  std::string detail;  // why a round was skipped
};

std::string_view OutcomeName(ParticipationResult::Outcome outcome);

class FederatedParticipant {
 public:
  // `transport`, `platform` and `clock` must outlive the participant.
  static Result<std::unique_ptr<FederatedParticipant>> Create(Transport& transport,
                                                              const Platform& platform,
                                                              const Clock& clock,
                                                              ParticipantOptions options);

  // One attempt at one round on `data` (see the file comment). Errors: the transport's (the
  // JoinRound, SubmitUpdate or SecureAggregation call failed), TrainLocally's (conditions not met
  // or ended, budgets), kInvalidArgument when the model cannot be trained or the round config is
  // invalid.
  Result<ParticipationResult> RunOnce(const data::Dataset& data, const ModelSource& models,
                                      const std::atomic<bool>* cancel = nullptr);

 private:
  FederatedParticipant(Transport& transport, const Platform& platform, const Clock& clock,
                       ParticipantOptions options);
  // The trainer over `path`'s graph, reused while the version stays the same; global_ holds the
  // version's weights (the round's starting point; the trainer's own drift after a round).
  Result<runtime::Trainer*> TrainerFor(int64_t version, const std::string& path);
  // Trains for the round into result.training.update (client and round id set, clipped to the
  // round's max_l2_norm).
  Status Train(const JoinRoundAnswer& joined, runtime::Trainer& trainer, const data::Dataset& data,
               const std::atomic<bool>* cancel, ParticipationResult& result);
  // The secure-aggregation exchange of the round (file comment), training inside it.
  Status RunSecureRound(const JoinRoundAnswer& joined, runtime::Trainer& trainer,
                        const data::Dataset& data, const std::atomic<bool>* cancel,
                        ParticipationResult& result);

  Transport& transport_;
  const Platform& platform_;
  const Clock& clock_;
  ParticipantOptions options_;
  int64_t trainer_version_ = 0;
  std::unique_ptr<runtime::Trainer> trainer_;
  std::vector<float> global_;
  std::unique_ptr<fl::ErrorFeedbackTopK> feedback_;  // top-k residual, kept across rounds
  std::string last_round_submitted_;
  // The secure round in progress, kept across RunOnce calls of that round: a failed call or an
  // interrupted training resumes the exchange (same keys, same trained input) instead of
  // restarting it, which the server would refuse.
  struct SecureExchange {
    std::string round_id;
    fl::SecureRoundClient client;
    fl::SecureClientMessage next;  // a poll first: the server says what it needs
    std::optional<std::vector<uint32_t>> input;
    LocalTrainingResult training;
    bool shared = false;
  };
  std::unique_ptr<SecureExchange> secure_;
};

}  // namespace hml::sdk

#endif  // HML_SRC_SDK_FL_PARTICIPANT_H_

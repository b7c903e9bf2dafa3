// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// A federated population in one process: N simulated clients, each with its own slice of a
// dataset, taking part in rounds run by the real coordinator (src/fl/coordinator.h) and training
// with the real device code (src/sdk/fl/local_training.h over the on-device trainer). Used by
// bench/federated (Dirichlet-split Fashion-MNIST, 10 to 1,000 clients) and by tests.
//
// A round goes exactly as it does over the network, minus the network:
//   1. the coordinator samples the cohort (StartRound) among all clients;
//   2. each selected client (skipping the ones the dropout rate removes) reads the round's
//      client config the way a device reads JoinRoundResponse.config, trains from the global
//      weights, and encodes its update with the round's codec (src/fl/update_wire.h): the bytes
//      the device would send;
//   3. the server side decodes those bytes and submits them (Submit with their wire size), then
//      closes the round (Close), which applies it or abandons it;
//   4. the new global model is scored on the test set.
// With round.secure_aggregation the updates never reach the server one by one: the selected
// clients and a fl::SecureRoundServer exchange the messages devices and the service exchange
// (src/fl/secure_round.h, encoded and decoded: each surviving client's input is its
// example-weighted delta in fixed point; the dropped ones vanish after sending their shares, the
// worst moment for the server), and the server hands the unmasked sum to
// Coordinator::SubmitSecureAggregate. The bytes counted are every message the server received.
// Below the threshold (round.secure_threshold_fraction) the secure round aborts and the round is
// abandoned.
// Clients train on `threads` worker threads, each owning one Trainer (a client's state between
// rounds is only its data slice and, for top-k, its error-feedback residual), so 1,000 clients
// cost little more memory than 10. Time is simulated: round r starts at r * deadline and every
// surviving client answers before the deadline.
#ifndef HML_SRC_SIM_FEDERATED_H_
#define HML_SRC_SIM_FEDERATED_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "hml/status.h"
#include "src/data/dataset.h"
#include "src/fl/coordinator.h"
#include "src/runtime/graph.h"

namespace hml::sim {

// One simulated client: its id and its local labelled data.
struct FederatedClient {
  std::string id;
  std::shared_ptr<const data::Dataset> data;
};

struct FederatedSimOptions {
  // Cohort, local training settings, strategy, codec and DP, as a deployment configures them.
  fl::RoundConfig round;
  // Client SGD momentum (the device's default). Default: 0.9.
  float client_momentum = 0.9f;
  // Rounds to run. Default: 100.
  int rounds = 100;
  // Worker threads training clients in parallel (each holds one Trainer). Default: 2.
  int threads = 2;
  // Score the global model every this many rounds (and after the last). Default: 1.
  int eval_every = 1;
  // Fraction of the selected clients that drop out before sending (seeded). Default: 0.
  double dropout_rate = 0.0;
  // Default: 0.
  uint64_t seed = 0;
  // Called after every round (and its evaluation) from the calling thread. Default: none.
  std::function<void(const struct FederatedRoundRecord&)> progress;

  // kInvalidArgument naming the field.
  Status Validate() const;
};

struct FederatedRoundRecord {
  fl::RoundResult result;
  // Test accuracy of the global model after this round, in [0, 1]; negative when the round was
  // not scored (eval_every).
  double accuracy = -1.0;
  // Mean local training loss of the clients that trained this round.
  double mean_local_loss = 0.0;
  // Wall time of the round: local training, encoding, aggregation (not the evaluation).
  double seconds = 0.0;
  // With secure aggregation: the secure round's server and (summed) client compute time.
  double secagg_server_seconds = 0.0;
  double secagg_client_seconds = 0.0;
};

struct FederatedSimResult {
  std::vector<FederatedRoundRecord> rounds;
  std::vector<float> final_weights;  // the trainer's parameter order
  double initial_accuracy = 0.0;     // of the starting model
};

// Runs `options.rounds` rounds of federated training of `model` (an inference graph the
// on-device trainer accepts; its current weights are round 0's global model) across `clients`,
// scoring on `test`. kInvalidArgument for an empty client list, duplicate client ids or bad
// options; the trainer's and coordinator's errors otherwise (a round that is abandoned is not an
// error: it is recorded and the run goes on).
Result<FederatedSimResult> RunFederatedSimulation(const runtime::Graph& model,
                                                  const std::vector<FederatedClient>& clients,
                                                  const data::Dataset& test,
                                                  const FederatedSimOptions& options);

// Top-1 accuracy of `model` with `weights` (the trainer's parameter order; empty = the graph's
// own) on `dataset`, computed with the on-device trainer's forward pass.
Result<double> EvaluateWeights(const runtime::Graph& model, const std::vector<float>& weights,
                               const data::Dataset& dataset);

}  // namespace hml::sim

#endif  // HML_SRC_SIM_FEDERATED_H_

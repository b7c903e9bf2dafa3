// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The federated round coordinator: which clients train in a round, which of their updates count,
// and when the round's aggregate becomes the new global model.
//
// A round goes StartRound -> Submit* -> Close:
//   - StartRound samples ceil(over_selection * clients_per_round) of the eligible clients without
//     replacement (over-selection absorbs dropouts, as in Bonawitz et al. 2019, "Towards
//     Federated Learning at Scale") and fixes the deadline. Sampling is a partial Fisher-Yates
//     shuffle of the sorted eligible ids driven by std::mt19937_64 seeded from (seed, round id)
//     with our own unbiased bounded draw, so a seed gives the same cohort on every platform and
//     a round's cohort does not depend on what happened in earlier rounds.
//   - Submit gates each update: late (after the deadline), from a client not selected, after the
//     target count was reached (unless the client's update was already accepted: a retry is
//     always a duplicate), then UpdateValidator's checks (round id, duplicate/replay,
//     examples, layout, NaN/Inf, norm bound). Every rejection is counted by reason and reported
//     in the RoundResult.
//   - Close applies the round only when at least ceil(min_report_fraction * clients_per_round)
//     updates were accepted: the updates are aggregated and handed to the strategy (strategy.h),
//     optionally through central DP (privacy.h). Otherwise the round is abandoned: the global
//     weights, the strategy's optimizer state, the DP noise generator and the privacy accountant
//     are exactly as before the round. A round is applied whole or not at all.
//
// Central DP. With dp_clip_norm > 0 each accepted delta is clipped to that L2 norm, the clipped
// deltas are summed, Gaussian noise of stddev noise_multiplier * clip_norm is added and the sum is
// divided by clients_per_round (a public constant, so the division costs no privacy; McMahan et
// al. 2018, "Learning Differentially Private Recurrent Language Models"). Clients are weighted
// equally (example counts would raise the sensitivity), so only the weighted-mean aggregator is
// allowed. The noised mean is then the single input of the strategy's server optimizer. The
// accountant composes one sampled Gaussian step per applied round with q = clients_per_round /
// population size; the cohort is a fixed-size sample without replacement rather than Poisson
// sampling, the usual approximation in DP-FedAvg deployments.
//
// Codecs. The coordinator sees decoded updates (update_wire.h decodes them); it only tells the
// clients which codec to use (client_config) and sums the wire bytes it is told about.
//
// Pure logic: no clock (time is passed in as now_ms, any monotonic millisecond count), no I/O,
// no threads. Not thread-safe: the caller serialises calls (the server holds one mutex per task).
#ifndef HML_SRC_FL_COORDINATOR_H_
#define HML_SRC_FL_COORDINATOR_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "hml/status.h"
#include "src/fl/accountant.h"
#include "src/fl/privacy.h"
#include "src/fl/strategy.h"
#include "src/fl/update.h"

namespace hml::fl {

// Everything a federated run is configured with. Strings select implementations so a task file
// or an RPC config map can carry it unchanged.
struct RoundConfig {
  // --- The cohort ---
  // Number of accepted updates a round aims for; reaching it lets the round close early.
  // Default: 10; must be >= 1.
  int64_t clients_per_round = 10;
  // Factor of clients selected per round over the target, to absorb dropouts and stragglers:
  // ceil(over_selection * clients_per_round) are selected (fewer if fewer are eligible).
  // Default: 1.3; must be >= 1.
  double over_selection = 1.3;
  // A round is applied only if at least ceil(min_report_fraction * clients_per_round) updates
  // were accepted; otherwise it is abandoned. Default: 0.8; in (0, 1].
  double min_report_fraction = 0.8;
  // Round length: updates arriving more than deadline_ms after StartRound are late.
  // Default: 600000 (10 minutes); must be > 0.
  int64_t deadline_ms = 600000;

  // --- Local training, sent to the clients (client_config) ---
  // Passes over the local data per round. Default: 1; must be >= 0 (0 with local_steps > 0).
  int64_t local_epochs = 1;
  // If > 0, the number of local SGD steps instead of epochs. Default: 0 (use local_epochs).
  int64_t local_steps = 0;
  // Local mini-batch size. Default: 32; must be >= 1.
  int64_t batch_size = 32;
  // Local SGD learning rate. Default: 0.01; must be > 0 and finite.
  double learning_rate = 0.01;
  // FedProx's proximal mu the clients add to their loss; sent only with strategy "fedprox".
  // Default: 0.01; must be >= 0.
  double prox_mu = 0.01;

  // --- Server aggregation ---
  // "fedavg", "fedprox", "fedavgm", "fedadam" or "fedyogi". Default: "fedavg".
  std::string strategy = "fedavg";
  // "weighted_mean" (by example count), or a robust aggregator: "median", "trimmed_mean",
  // "krum" (robust.h; they ignore example counts). Default: "weighted_mean".
  std::string aggregator = "weighted_mean";
  // Server learning rate; 0 means the strategy's default (1.0 for fedavg/fedprox/fedavgm, 0.1
  // for fedadam/fedyogi). Default: 0; must be >= 0.
  double server_lr = 0.0;
  // FedAvgM momentum. Default: 0.9; in [0, 1).
  double server_momentum = 0.9;
  // FedAdam/FedYogi moment decays and adaptivity. Defaults: 0.9, 0.99, 1e-3 (see strategy.h).
  double beta1 = 0.9;
  double beta2 = 0.99;
  double tau = 1e-3;
  // trimmed_mean's fraction cut from each end. Default: 0.1; in [0, 0.5).
  double trim_fraction = 0.1;
  // krum's tolerated Byzantine clients; a krum round needs >= krum_f + 3 updates.
  // Default: 1; must be >= 0.
  int64_t krum_f = 1;

  // --- Central differential privacy (see the file comment) ---
  // L2 norm every accepted delta is clipped to; 0 disables DP. Default: 0 (no DP); >= 0.
  double dp_clip_norm = 0.0;
  // Noise stddev over clip norm. 0 clips without noise (epsilon is then infinite).
  // Default: 1.0; must be >= 0.
  double dp_noise_multiplier = 1.0;
  // The delta epsilon is reported for. Default: 1e-5; in (0, 1).
  double dp_delta = 1e-5;

  // --- Update transport ---
  // Codec the clients encode their updates with (update_wire.h): "none", "int8" or "topk".
  // Default: "none".
  std::string codec = "none";
  // int8: elements per quantization scale (0: one scale per update). Default: 0; >= 0.
  int64_t int8_chunk_size = 0;
  // topk: fraction of the elements each client sends. Default: 0.01; in (0, 1].
  double topk_fraction = 0.01;

  // --- Secure aggregation ---
  // The round is summed by secure aggregation (secagg.h): the server gets only the
  // example-weighted sum of the participants' deltas (SubmitSecureAggregate), never one update.
  // Requires aggregator "weighted_mean" (the robust ones need individual updates), no central
  // DP (noise on a secure sum needs clipping on the clients: not built), codec "none" (masked
  // inputs do not compress) and MinReports() >= 2. Default: false.
  bool secure_aggregation = false;
  // The Shamir threshold as a fraction of the selected clients n:
  // t = max(floor(n / 2) + 1, ceil(fraction x n)) (secure_round.h); the sum is recovered while at
  // least t clients stay to the end, so up to n - t may drop out. Default: 2 / 3; in (0.5, 1].
  double secure_threshold_fraction = 2.0 / 3.0;
  // --- Validation ---
  // Largest accepted L2 norm of a delta; 0 means no bound (ValidatorOptions). Default: 0; >= 0.
  double max_l2_norm = 0.0;

  // Seeds cohort sampling and DP noise. Default: 0. A deployment with DP must use a secret,
  // unpredictable seed (privacy.h).
  uint64_t seed = 0;

  // kInvalidArgument naming the first field out of range or the unknown name.
  Status Validate() const;
  // The StrategyOptions these fields describe. kInvalidArgument as Validate().
  Result<StrategyOptions> ToStrategyOptions() const;
  // Number of clients selected per round: ceil(over_selection * clients_per_round).
  int64_t NumToSelect() const;
  // Accepted updates a round needs to be applied: ceil(min_report_fraction * clients_per_round).
  int64_t MinReports() const;
  bool dp_enabled() const { return dp_clip_norm > 0.0; }
  // The local training configuration as strings for the clients: local_epochs, local_steps,
  // batch_size, learning_rate, strategy, prox_mu (fedprox only), codec, int8_chunk_size (int8),
  // topk_fraction (topk), max_l2_norm (when > 0; clients may clip to it before sending).
  std::map<std::string, std::string> ClientConfig() const;
};

// What StartRound decided.
struct RoundPlan {
  int64_t round_id = 0;
  // The selected clients, in sampling order.
  std::vector<std::string> selected;
  // now_ms + deadline_ms: updates submitted after it are late.
  int64_t deadline_ms = 0;
  // RoundConfig::ClientConfig().
  std::map<std::string, std::string> client_config;
};

// Rejections of one round: the validator's reasons plus the coordinator's own.
struct RoundRejections {
  RejectionCounts validator;
  int64_t late = 0;          // submitted after the deadline
  int64_t not_selected = 0;  // from a client that was not selected for the round
  int64_t over_target = 0;   // arrived after clients_per_round updates had been accepted

  int64_t total() const { return validator.total() + late + not_selected + over_target; }
};

enum class RoundStatus { kApplied, kAbandoned };
// "applied" or "abandoned".
std::string_view RoundStatusName(RoundStatus status);

struct RoundResult {
  int64_t round_id = 0;
  RoundStatus status = RoundStatus::kAbandoned;
  // Why the round was abandoned (empty when applied), e.g. "3 updates accepted, 8 required".
  std::string abandon_reason;
  int64_t started_ms = 0;
  int64_t deadline_ms = 0;
  int64_t closed_ms = 0;
  // Clients selected, updates accepted, the target and the minimum.
  int64_t selected = 0;
  int64_t participants = 0;
  int64_t target = 0;
  int64_t min_reports = 0;
  // Sum of accepted updates' num_examples.
  int64_t examples = 0;
  RoundRejections rejections;
  // Wire bytes of every submission this round (accepted or not), and of the accepted ones.
  int64_t bytes_received = 0;
  int64_t bytes_accepted = 0;
  // Bytes the accepted updates would take as dense float32 (for the compression ratio).
  int64_t dense_bytes_accepted = 0;
  // Mean L2 norm of the accepted deltas (before any clipping); 0 without updates.
  double mean_update_norm = 0.0;
  // L2 norm of (new global - old global); 0 when abandoned.
  double global_delta_norm = 0.0;
  // With DP: epsilon at dp_delta after this round (unchanged by an abandoned round), and how
  // many accepted deltas were clipped. Empty without DP.
  std::optional<double> epsilon;
  int64_t dp_clipped = 0;
};

// The unmasked outcome of a secure-aggregation round (secagg.h): what the server learns instead
// of the individual updates.
struct SecureAggregate {
  // The clients whose masked inputs were summed.
  std::vector<std::string> participants;
  // sum over the participants of num_examples x delta (the layout's element count).
  std::vector<float> weighted_delta_sum;
  // sum over the participants of num_examples; > 0.
  double total_examples = 0;
  // Bytes of every secure-aggregation message of the round the server received.
  int64_t wire_bytes = 0;
};

// A snapshot of the open round for progress displays.
struct RoundProgress {
  bool open = false;
  int64_t round_id = 0;  // the open round, or the last closed one (0 before any)
  int64_t selected = 0;
  int64_t accepted = 0;
  int64_t target = 0;
  int64_t min_reports = 0;
  int64_t started_ms = 0;
  int64_t deadline_ms = 0;
  int64_t rejected = 0;
};

class Coordinator {
 public:
  // `layout` describes `initial_weights` (LayoutNumElements(layout) floats, all finite).
  // `population` is every client id that may ever be eligible; it sets DP's sampling rate and
  // StartRound refuses ids outside it. An empty population is open (any id is eligible) and
  // cannot be combined with DP. kInvalidArgument for an invalid config, layout or weights.
  static Result<std::unique_ptr<Coordinator>> Create(const RoundConfig& config, UpdateLayout layout,
                                                     std::vector<float> initial_weights,
                                                     std::vector<std::string> population = {});

  // Opens the next round at `now_ms` and selects its clients among `eligible` (duplicates are
  // ignored). kFailedPrecondition if a round is open or fewer than MinReports() clients are
  // eligible (no round starts; the round id is not used up); kInvalidArgument for an id outside
  // a closed population.
  Result<RoundPlan> StartRound(int64_t now_ms, std::span<const std::string> eligible);

  // Offers one decoded update that took `wire_bytes` on the wire. OK when accepted. Otherwise,
  // with the rejection counted in the round: kDeadlineExceeded (late), kPermissionDenied (not
  // selected), kResourceExhausted (target already reached), or UpdateValidator::Check's codes.
  // kFailedPrecondition (not counted) when no round is open.
  Status Submit(ModelUpdate update, int64_t wire_bytes, int64_t now_ms);

  // Offers the round's secure aggregate, in a round of a config with secure_aggregation (which
  // takes no individual updates: Submit answers kFailedPrecondition there). The round then
  // counts the aggregate's participants as its accepted updates and Close applies their
  // weighted mean through the strategy. kFailedPrecondition when no round is open, the config
  // does not use secure aggregation or the round already has its aggregate; kDeadlineExceeded
  // after the deadline (counted late, one per participant); kInvalidArgument (nothing counted)
  // for a sum of the wrong size or with a NaN/Inf, a non-positive example total, a participant
  // named twice, or a participant not selected for the round (named).
  Status SubmitSecureAggregate(SecureAggregate aggregate, int64_t now_ms);

  // True when the open round should be closed: the target is reached or the deadline passed.
  bool ShouldClose(int64_t now_ms) const;

  // Closes the open round: applies it if it has MinReports() accepted updates and the strategy
  // accepts them, abandons it otherwise (see the file comment). The result is appended to
  // history(). kFailedPrecondition if no round is open.
  Result<RoundResult> Close(int64_t now_ms);

  const std::vector<float>& global_weights() const { return global_; }
  const UpdateLayout& layout() const { return layout_; }
  const RoundConfig& config() const { return config_; }
  const std::vector<RoundResult>& history() const { return history_; }
  bool round_open() const { return round_open_; }
  // The open round's id, or the last round's (0 before the first).
  int64_t round_id() const { return round_id_; }
  // True if `client_id` is selected for the open round.
  bool IsSelected(const std::string& client_id) const;
  RoundProgress Progress() const;
  // Epsilon after the applied rounds so far (empty without DP).
  std::optional<double> epsilon() const;

 private:
  Coordinator(const RoundConfig& config, UpdateLayout layout, int64_t num_elements,
              std::vector<float> weights, std::set<std::string> population,
              std::unique_ptr<Strategy> strategy, UpdateValidator validator);

  // The next global weights from the accepted updates. DP noise is drawn from `sampler` (a copy
  // of noise_ the caller commits only on success); the strategy's state changes only when it
  // succeeds (strategy.h), and it is the last step, so an error leaves every state unchanged.
  Result<std::vector<float>> ComputeNextWeights(GaussianSampler& sampler, int64_t* dp_clipped);

  RoundConfig config_;
  UpdateLayout layout_;
  int64_t num_elements_;
  std::vector<float> global_;
  std::set<std::string> population_;
  std::unique_ptr<Strategy> strategy_;
  UpdateValidator validator_;
  std::optional<RdpAccountant> accountant_;
  GaussianSampler noise_;

  // The open (or last) round.
  bool round_open_ = false;
  int64_t round_id_ = 0;
  int64_t started_ms_ = 0;
  int64_t deadline_ms_ = 0;
  std::set<std::string> selected_;
  std::vector<ModelUpdate> accepted_;
  std::optional<SecureAggregate> secure_;  // a secure round's aggregate, once offered
  RoundRejections rejections_;
  int64_t bytes_received_ = 0;
  int64_t bytes_accepted_ = 0;

  std::vector<RoundResult> history_;
};

}  // namespace hml::fl

#endif  // HML_SRC_FL_COORDINATOR_H_

// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/sim/federated.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <utility>

#include "hml/clock.h"
#include "hml/sdk/platform.h"
#include "src/fl/secure_round.h"
#include "src/fl/update_wire.h"
#include "src/runtime/train/trainer.h"
#include "src/sdk/fl/local_training.h"

namespace hml::sim {
namespace {

using Seconds = std::chrono::duration<double>;

// Scores `trainer`'s current weights on `dataset` in batches of 500.
Result<double> Score(runtime::Trainer& trainer, const data::Dataset& dataset) {
  const int64_t batch = 500;
  const int64_t feature_size = dataset.feature_size();
  std::vector<float> features;
  int64_t correct = 0;
  for (int64_t begin = 0; begin < dataset.size(); begin += batch) {
    const int64_t n = std::min(batch, dataset.size() - begin);
    features.resize(static_cast<size_t>(n * feature_size));
    std::vector<int64_t> labels(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      HML_ASSIGN_OR_RETURN(labels[static_cast<size_t>(i)],
                           dataset.Get(begin + i, std::span<float>(features).subspan(
                                                      static_cast<size_t>(i * feature_size),
                                                      static_cast<size_t>(feature_size))));
    }
    Shape shape = {n};
    for (int64_t d : dataset.feature_shape()) shape.push_back(d);
    HML_ASSIGN_OR_RETURN(Tensor inputs, Tensor::FromVector<float>(shape, features));
    HML_ASSIGN_OR_RETURN(Tensor logits, trainer.Logits(inputs));
    const std::span<const float> values = std::as_const(logits).values<float>();
    const size_t classes = values.size() / static_cast<size_t>(n);
    for (int64_t i = 0; i < n; ++i) {
      const auto row = values.subspan(static_cast<size_t>(i) * classes, classes);
      const auto best = std::max_element(row.begin(), row.end()) - row.begin();
      if (best == labels[static_cast<size_t>(i)]) ++correct;
    }
  }
  return dataset.size() > 0 ? static_cast<double>(correct) / static_cast<double>(dataset.size())
                            : 0.0;
}

// What one client sends in a round, or why it sends nothing.
struct ClientOutcome {
  std::string bytes;
  fl::ModelUpdate update;  // kept instead of bytes in a secure-aggregation round
  double loss = 0.0;
  Status status;
};

// The secure-aggregation path of one round (see federated.h): the selected clients and a
// fl::SecureRoundServer exchange the same bytes devices and FederatedTasks exchange over
// FederatedLearning.SecureAggregation; clients not in `survivors` vanish after sending their
// shares. Time moves to a stage's deadline only when every remaining client waits for it.
// Returns the simulated time the exchange ended.
Result<int64_t> SecureRound(const fl::RoundPlan& plan, const std::vector<std::string>& survivors,
                            const std::vector<ClientOutcome>& outcomes, int64_t num_elements,
                            int64_t now_ms, fl::Coordinator& coordinator,
                            FederatedRoundRecord* record) {
  fl::SecureRoundOptions secure;
  secure.cohort = plan.selected;
  secure.elements = num_elements;
  secure.threshold_fraction = coordinator.config().secure_threshold_fraction;
  secure.start_ms = now_ms;
  secure.deadline_ms = plan.deadline_ms;
  HML_ASSIGN_OR_RETURN(std::unique_ptr<fl::SecureRoundServer> server,
                       fl::SecureRoundServer::Create(std::move(secure)));
  std::map<std::string, size_t> outcome_of;
  for (size_t k = 0; k < survivors.size(); ++k) outcome_of[survivors[k]] = k;
  const size_t n = plan.selected.size();
  std::vector<fl::SecureRoundClient> clients(n);
  std::vector<fl::SecureClientMessage> next(n);  // polls at first
  std::vector<bool> finished(n, false);
  double client_seconds = 0.0, server_seconds = 0.0;
  for (bool progress = true; !server->done() && !server->aborted();) {
    if (!progress) {  // everyone left waits for the current stage to close
      now_ms = std::max(now_ms, server->stage_deadline_ms());
      server->Advance(now_ms);
    }
    progress = false;
    for (size_t i = 0; i < n && !server->done() && !server->aborted(); ++i) {
      const bool survives = outcome_of.contains(plan.selected[i]);
      if (finished[i]) continue;
      auto t0 = std::chrono::steady_clock::now();
      const std::string bytes = fl::EncodeSecureClientMessage(next[i]);
      auto t1 = std::chrono::steady_clock::now();
      HML_ASSIGN_OR_RETURN(fl::SecureClientMessage received, fl::DecodeSecureClientMessage(bytes));
      HML_ASSIGN_OR_RETURN(
          fl::SecureReply reply,
          server->Exchange(plan.selected[i], received, static_cast<int64_t>(bytes.size()), now_ms));
      const std::string reply_bytes = fl::EncodeSecureReply(reply);
      auto t2 = std::chrono::steady_clock::now();
      HML_ASSIGN_OR_RETURN(reply, fl::DecodeSecureReply(reply_bytes));
      // Done, out, or a dropout vanishing where its masked input was due.
      if (reply.stage == fl::SecureStage::kDone || reply.stage == fl::SecureStage::kOut ||
          (!survives && reply.stage == fl::SecureStage::kMaskedInput)) {
        finished[i] = true;
        continue;
      }
      std::optional<std::vector<uint32_t>> input;
      if (reply.stage == fl::SecureStage::kMaskedInput && survives) {
        const fl::ModelUpdate& u = outcomes[outcome_of.at(plan.selected[i])].update;
        HML_ASSIGN_OR_RETURN(input, fl::EncodeSecureInput(u.delta, u.num_examples, reply.clients));
      }
      HML_ASSIGN_OR_RETURN(next[i], clients[i].Respond(reply, input));
      auto t3 = std::chrono::steady_clock::now();
      client_seconds += Seconds(t1 - t0).count() + Seconds(t3 - t2).count();
      server_seconds += Seconds(t2 - t1).count();
      progress = progress || next[i].stage != fl::SecureStage::kWait;
    }
  }
  record->secagg_server_seconds = server_seconds;
  record->secagg_client_seconds = client_seconds;
  // Aborted below the threshold: no sum, so the round will be abandoned. An aggregate the
  // coordinator refuses is counted in the round's result.
  if (std::optional<fl::SecureAggregate> aggregate = server->TakeAggregate()) {
    (void)coordinator.SubmitSecureAggregate(std::move(*aggregate), now_ms);
  }
  return now_ms;
}

}  // namespace

Status FederatedSimOptions::Validate() const {
  HML_RETURN_IF_ERROR(round.Validate());
  if (rounds < 1) return InvalidArgumentError("rounds must be >= 1, got " + std::to_string(rounds));
  if (threads < 1) {
    return InvalidArgumentError("threads must be >= 1, got " + std::to_string(threads));
  }
  if (eval_every < 1) {
    return InvalidArgumentError("eval_every must be >= 1, got " + std::to_string(eval_every));
  }
  if (!(dropout_rate >= 0.0 && dropout_rate < 1.0)) {
    return InvalidArgumentError("dropout_rate must be in [0, 1), got " +
                                std::to_string(dropout_rate));
  }
  if (!(client_momentum >= 0.0f && client_momentum < 1.0f)) {
    return InvalidArgumentError("client_momentum must be in [0, 1), got " +
                                std::to_string(client_momentum));
  }
  return Status::Ok();
}

Result<double> EvaluateWeights(const runtime::Graph& model, const std::vector<float>& weights,
                               const data::Dataset& dataset) {
  HML_ASSIGN_OR_RETURN(std::unique_ptr<runtime::Trainer> trainer,
                       runtime::Trainer::Create(model, runtime::TrainOptions{}));
  if (!weights.empty()) HML_RETURN_IF_ERROR(trainer->SetParameters(weights));
  return Score(*trainer, dataset);
}

Result<FederatedSimResult> RunFederatedSimulation(const runtime::Graph& model,
                                                  const std::vector<FederatedClient>& clients,
                                                  const data::Dataset& test,
                                                  const FederatedSimOptions& options) {
  HML_RETURN_IF_ERROR(options.Validate());
  if (clients.empty()) return InvalidArgumentError("a federated simulation needs clients");
  std::map<std::string, size_t> index;
  std::vector<std::string> ids;
  for (size_t i = 0; i < clients.size(); ++i) {
    if (clients[i].data == nullptr || clients[i].data->size() == 0) {
      return InvalidArgumentError("client '" + clients[i].id + "' has no data");
    }
    if (!index.emplace(clients[i].id, i).second) {
      return InvalidArgumentError("client id '" + clients[i].id + "' appears twice");
    }
    ids.push_back(clients[i].id);
  }
  HML_ASSIGN_OR_RETURN(fl::WireCodec codec, fl::ParseWireCodec(options.round.codec));

  // One trainer per worker and one for scoring, all starting from the model's weights.
  std::vector<std::unique_ptr<runtime::Trainer>> trainers;
  for (int t = 0; t <= options.threads; ++t) {
    HML_ASSIGN_OR_RETURN(std::unique_ptr<runtime::Trainer> trainer,
                         runtime::Trainer::Create(model, runtime::TrainOptions{}));
    trainers.push_back(std::move(trainer));
  }
  runtime::Trainer& scorer = *trainers.back();
  const fl::UpdateLayout layout = sdk::LayoutOf(scorer);
  HML_ASSIGN_OR_RETURN(std::unique_ptr<fl::Coordinator> coordinator,
                       fl::Coordinator::Create(options.round, layout, scorer.GetParameters(), ids));

  // Simulated devices are always plugged in, idle and on Wi-Fi, with no time limit that matters.
  sdk::StaticPlatform platform;
  platform.set_network({.type = sdk::NetworkType::kUnmetered});
  platform.set_power({.battery_level = 1.0, .charging = true});
  platform.set_idle(true);
  sdk::TrainingBudget budget;
  budget.max_seconds = 1e9;
  budget.max_memory_bytes = int64_t{1} << 40;

  // Top-k error feedback is per client and survives between rounds, as it would on a device.
  std::vector<std::unique_ptr<fl::ErrorFeedbackTopK>> feedback(clients.size());
  const int64_t num_elements = coordinator->global_weights().size();
  const uint32_t topk = static_cast<uint32_t>(std::max<int64_t>(
      1, std::llround(options.round.topk_fraction * static_cast<double>(num_elements))));

  FederatedSimResult result;
  HML_ASSIGN_OR_RETURN(result.initial_accuracy, Score(scorer, test));
  std::mt19937_64 dropout_rng(options.seed ^ 0x5eed0d0eULL);
  for (int r = 0; r < options.rounds; ++r) {
    const auto started = std::chrono::steady_clock::now();
    const int64_t now_ms = static_cast<int64_t>(r) * options.round.deadline_ms;
    HML_ASSIGN_OR_RETURN(fl::RoundPlan plan, coordinator->StartRound(now_ms, ids));
    HML_ASSIGN_OR_RETURN(sdk::LocalTrainingConfig local,
                         sdk::LocalTrainingConfig::FromConfigMap(plan.client_config));
    local.momentum = options.client_momentum;
    std::vector<std::string> survivors;
    for (const std::string& id : plan.selected) {
      const double u = static_cast<double>(dropout_rng() >> 11) * 0x1.0p-53;
      if (u >= options.dropout_rate) survivors.push_back(id);
    }
    const std::vector<float> global = coordinator->global_weights();

    std::vector<ClientOutcome> outcomes(survivors.size());
    std::atomic<size_t> next{0};
    auto work = [&](runtime::Trainer& trainer) {
      for (size_t k = next++; k < survivors.size(); k = next++) {
        const size_t c = index.at(survivors[k]);
        sdk::LocalTrainingConfig config = local;
        config.seed = options.seed ^ (static_cast<uint64_t>(r) << 32) ^ c;
        ClientOutcome& out = outcomes[k];
        Result<sdk::LocalTrainingResult> trained = sdk::TrainLocally(
            trainer, *clients[c].data, global, config, budget, platform, *RealClock());
        if (!trained.ok()) {
          out.status = trained.status();
          continue;
        }
        trained->update.client_id = survivors[k];
        trained->update.round_id = plan.round_id;
        out.loss = trained->mean_loss;
        if (options.round.secure_aggregation) {
          out.update = std::move(trained->update);
          continue;
        }
        fl::WireEncodeOptions encode;
        encode.codec = codec;
        encode.int8_chunk_size = static_cast<uint32_t>(options.round.int8_chunk_size);
        encode.topk_fraction = options.round.topk_fraction;
        if (codec == fl::WireCodec::kTopK) {
          if (feedback[c] == nullptr) feedback[c] = std::make_unique<fl::ErrorFeedbackTopK>(topk);
          encode.feedback = feedback[c].get();
        }
        Result<std::string> bytes = fl::EncodeUpdate(trained->update, encode);
        if (!bytes.ok()) {
          out.status = bytes.status();
          continue;
        }
        out.bytes = std::move(*bytes);
      }
    };
    std::vector<std::thread> workers;
    for (int t = 1; t < options.threads; ++t) {
      workers.emplace_back(work, std::ref(*trainers[static_cast<size_t>(t)]));
    }
    work(*trainers[0]);
    for (std::thread& w : workers) w.join();

    // The server side: decode each client's bytes and offer them to the coordinator, or run the
    // secure aggregation and offer the sum.
    double loss_sum = 0.0;
    int64_t trained_clients = 0;
    FederatedRoundRecord record;
    for (size_t k = 0; k < outcomes.size(); ++k) {
      HML_RETURN_IF_ERROR(outcomes[k].status);
      loss_sum += outcomes[k].loss;
      ++trained_clients;
      if (options.round.secure_aggregation) continue;
      HML_ASSIGN_OR_RETURN(fl::DecodedUpdate decoded, fl::DecodeUpdate(outcomes[k].bytes));
      // A rejected update is counted in the round's result; the simulation goes on.
      (void)coordinator->Submit(std::move(decoded.update),
                                static_cast<int64_t>(outcomes[k].bytes.size()), now_ms + 1);
    }
    int64_t close_ms = now_ms + 2;
    if (options.round.secure_aggregation) {
      HML_ASSIGN_OR_RETURN(int64_t ended, SecureRound(plan, survivors, outcomes, num_elements,
                                                      now_ms + 1, *coordinator, &record));
      close_ms = std::max(close_ms, ended + 1);
    }
    HML_ASSIGN_OR_RETURN(record.result, coordinator->Close(close_ms));
    record.mean_local_loss =
        trained_clients > 0 ? loss_sum / static_cast<double>(trained_clients) : 0.0;
    record.seconds = Seconds(std::chrono::steady_clock::now() - started).count();
    if ((r + 1) % options.eval_every == 0 || r + 1 == options.rounds) {
      HML_RETURN_IF_ERROR(scorer.SetParameters(coordinator->global_weights()));
      HML_ASSIGN_OR_RETURN(record.accuracy, Score(scorer, test));
    }
    if (options.progress) options.progress(record);
    result.rounds.push_back(std::move(record));
  }
  result.final_weights = coordinator->global_weights();
  return result;
}

}  // namespace hml::sim

// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/sdk/fl/participant.h"

#include <charconv>
#include <cmath>
#include <optional>
#include <system_error>
#include <utility>

#include "hml/env.h"
#include "src/fl/secure_round.h"
#include "src/fl/update_wire.h"
#include "src/runtime/onnx_io.h"

namespace hml::sdk {
Status ParticipantOptions::Validate() const {
  if (task.empty()) return InvalidArgumentError("ParticipantOptions: task is required");
  if (client_id.empty()) return InvalidArgumentError("ParticipantOptions: client_id is required");
  if (call_timeout_nanos <= 0) {
    return InvalidArgumentError("ParticipantOptions: call_timeout_nanos must be positive");
  }
  if (trainable_layers < 0) {
    return InvalidArgumentError("ParticipantOptions: trainable_layers must be >= 0");
  }
  return budget.Validate();
}

std::string_view OutcomeName(ParticipationResult::Outcome outcome) {
  switch (outcome) {
    case ParticipationResult::Outcome::kNoRound:
      return "no-round";
    case ParticipationResult::Outcome::kModelMissing:
      return "model-missing";
    case ParticipationResult::Outcome::kSubmitted:
      return "submitted";
    case ParticipationResult::Outcome::kSecureOut:
      return "secure-out";
  }
  return "unknown";
}

Result<std::unique_ptr<FederatedParticipant>> FederatedParticipant::Create(
    Transport& transport, const Platform& platform, const Clock& clock,
    ParticipantOptions options) {
  HML_RETURN_IF_ERROR(options.Validate());
  return std::unique_ptr<FederatedParticipant>(
      new FederatedParticipant(transport, platform, clock, std::move(options)));
}

FederatedParticipant::FederatedParticipant(Transport& transport, const Platform& platform,
                                           const Clock& clock, ParticipantOptions options)
    : transport_(transport), platform_(platform), clock_(clock), options_(std::move(options)) {}

Result<runtime::Trainer*> FederatedParticipant::TrainerFor(int64_t version,
                                                           const std::string& path) {
  if (trainer_ != nullptr && trainer_version_ == version) return trainer_.get();
  HML_ASSIGN_OR_RETURN(std::string bytes, DefaultEnv()->ReadFile(path));
  HML_ASSIGN_OR_RETURN(runtime::Graph graph, runtime::ParseOnnxModel(bytes));
  runtime::TrainOptions train;
  train.trainable_layers = options_.trainable_layers;
  train.momentum = options_.momentum;
  HML_ASSIGN_OR_RETURN(trainer_, runtime::Trainer::Create(graph, train));
  trainer_version_ = version;
  global_ = trainer_->GetParameters();
  return trainer_.get();
}

Status FederatedParticipant::Train(const JoinRoundAnswer& joined, runtime::Trainer& trainer,
                                   const data::Dataset& data, const std::atomic<bool>* cancel,
                                   ParticipationResult& result) {
  HML_ASSIGN_OR_RETURN(LocalTrainingConfig config,
                       LocalTrainingConfig::FromConfigMap(joined.config));
  if (joined.config.find("momentum") == joined.config.end()) config.momentum = options_.momentum;
  HML_ASSIGN_OR_RETURN(result.training, TrainLocally(trainer, data, global_, config,
                                                     options_.budget, platform_, clock_, cancel));
  fl::ModelUpdate& update = result.training.update;
  update.client_id = options_.client_id;
  // The round id travels as text; the update carries it as a number.
  {
    const std::string& id = joined.round_id;
    const auto [end, ec] = std::from_chars(id.data(), id.data() + id.size(), update.round_id);
    if (ec != std::errc() || end != id.data() + id.size()) {
      return InvalidArgumentError("JoinRound answered round id '" + id + "', not a number");
    }
  }
  // Clip to the server's norm bound, if it announces one, so the update is not rejected.
  HML_ASSIGN_OR_RETURN(double max_norm,
                       RoundConfigNumber<double>(joined.config, "max_l2_norm", 0.0));
  if (max_norm > 0.0) {
    const double norm = fl::L2Norm(update.delta);
    if (norm > max_norm) {
      const float scale = static_cast<float>(max_norm / norm);
      for (float& v : update.delta) v *= scale;
    }
  }
  return Status::Ok();
}

Status FederatedParticipant::RunSecureRound(const JoinRoundAnswer& joined,
                                            runtime::Trainer& trainer, const data::Dataset& data,
                                            const std::atomic<bool>* cancel,
                                            ParticipationResult& result) {
  if (secure_ == nullptr || secure_->round_id != joined.round_id) {
    secure_ = std::make_unique<SecureExchange>();
    secure_->round_id = joined.round_id;
  }
  SecureExchange& s = *secure_;
  const auto train = [&](int clients) -> Status {
    HML_RETURN_IF_ERROR(Train(joined, trainer, data, cancel, result));
    const fl::ModelUpdate& update = result.training.update;
    HML_ASSIGN_OR_RETURN(s.input,
                         fl::EncodeSecureInput(update.delta, update.num_examples, clients));
    s.training = result.training;
    return Status::Ok();
  };
  // The exchange is over either way: report the training it used and forget it.
  const auto finish = [&](ParticipationResult::Outcome outcome, std::string detail) {
    result.outcome = outcome;
    result.accepted = outcome == ParticipationResult::Outcome::kSubmitted;
    result.detail = std::move(detail);
    result.training = std::move(s.training);
    secure_.reset();
    return Status::Ok();
  };
  const std::string where = "secure aggregation of round " + joined.round_id;
  while (true) {
    if (cancel != nullptr && cancel->load()) return CancelledError(where + ": cancelled");
    if (clock_.WallMicros() / 1000 > joined.deadline_ms) {
      return finish(ParticipationResult::Outcome::kSecureOut,
                    "the round's deadline passed before its secure aggregation ended");
    }
    SecureAggregationCall call;
    call.task = options_.task;
    call.round_id = joined.round_id;
    call.message = fl::EncodeSecureClientMessage(s.next);
    call.deadline_nanos = transport_.clock()->NowNanos() + options_.call_timeout_nanos;
    if (s.next.stage == fl::SecureStage::kMaskedInput) {
      result.update_bytes = static_cast<int64_t>(call.message.size());
    }
    auto [answer, stats] =
        CallAndWait<SecureAggregationAnswer>([&](SecureAggregationCallback done) {
          transport_.SecureAggregation(std::move(call), std::move(done));
        });
    result.wire_bytes_sent += stats.bytes_sent;
    result.wire_bytes_received += stats.bytes_received;
    HML_RETURN_IF_ERROR(answer.status().WithContext(where));
    HML_ASSIGN_OR_RETURN(fl::SecureReply reply, fl::DecodeSecureReply(answer->reply));
    switch (reply.stage) {
      case fl::SecureStage::kDone:
        return finish(ParticipationResult::Outcome::kSubmitted, "");
      case fl::SecureStage::kOut:
        return finish(ParticipationResult::Outcome::kSecureOut, reply.reason);
      case fl::SecureStage::kMaskedInput:
        if (!s.input.has_value()) HML_RETURN_IF_ERROR(train(reply.clients));
        break;
      case fl::SecureStage::kWait:
        // Waiting after the shares went out: the time to train. Otherwise wait as told.
        if (s.shared && !s.input.has_value()) {
          HML_RETURN_IF_ERROR(train(reply.clients));
        } else {
          transport_.clock()->SleepNanos(reply.retry_after_ms * 1000000);
        }
        break;
      default:
        break;
    }
    HML_ASSIGN_OR_RETURN(s.next, s.client.Respond(reply, s.input));
    s.shared = s.shared || s.next.stage == fl::SecureStage::kShares;
  }
}

Result<ParticipationResult> FederatedParticipant::RunOnce(const data::Dataset& data,
                                                          const ModelSource& models,
                                                          const std::atomic<bool>* cancel) {
  ParticipationResult result;
  // 1. Join.
  JoinRoundCall join;
  join.task = options_.task;
  join.deadline_nanos = transport_.clock()->NowNanos() + options_.call_timeout_nanos;
  auto [joined, join_stats] = CallAndWait<JoinRoundAnswer>(
      [&](JoinRoundCallback done) { transport_.JoinRound(std::move(join), std::move(done)); });
  result.wire_bytes_sent += join_stats.bytes_sent;
  result.wire_bytes_received += join_stats.bytes_received;
  HML_RETURN_IF_ERROR(joined.status().WithContext("JoinRound for task " + options_.task));
  if (joined->round_id.empty()) return result;
  result.round_id = joined->round_id;
  // The server keeps naming an open round to the devices selected for it; one update per round.
  if (joined->round_id == last_round_submitted_) {
    result.detail = "already took part in round " + joined->round_id;
    return result;
  }
  result.model_version = joined->model_version;

  // 2. The round's model version.
  Result<std::string> path = models(joined->model_version);
  if (!path.ok()) {
    result.outcome = ParticipationResult::Outcome::kModelMissing;
    result.detail = std::string(path.status().message());
    return result;
  }
  HML_ASSIGN_OR_RETURN(runtime::Trainer * trainer, TrainerFor(joined->model_version, *path));

  // 3. Local training from the version's weights (in a secure round, when the exchange has
  // reached the point where the input is needed or where the device would only wait).
  const auto secure = joined->config.find("secure_aggregation");
  if (secure != joined->config.end() && secure->second == "1") {
    HML_RETURN_IF_ERROR(RunSecureRound(*joined, *trainer, data, cancel, result));
    last_round_submitted_ = result.round_id;
    return result;
  }
  HML_RETURN_IF_ERROR(Train(*joined, *trainer, data, cancel, result));
  fl::ModelUpdate& update = result.training.update;

  // 4. Seal with the round's codec and submit.
  fl::WireEncodeOptions encode;
  const auto codec_name = joined->config.find("codec");
  HML_ASSIGN_OR_RETURN(
      encode.codec,
      fl::ParseWireCodec(codec_name == joined->config.end() ? "none" : codec_name->second));
  HML_ASSIGN_OR_RETURN(encode.int8_chunk_size,
                       RoundConfigNumber<uint32_t>(joined->config, "int8_chunk_size", 0));
  HML_ASSIGN_OR_RETURN(encode.topk_fraction,
                       RoundConfigNumber<double>(joined->config, "topk_fraction", 0.01));
  if (encode.codec == fl::WireCodec::kTopK) {
    const uint32_t k = static_cast<uint32_t>(std::max<double>(
        1.0, std::round(encode.topk_fraction * static_cast<double>(update.delta.size()))));
    if (feedback_ == nullptr) feedback_ = std::make_unique<fl::ErrorFeedbackTopK>(k);
    encode.feedback = feedback_.get();
  }
  HML_ASSIGN_OR_RETURN(std::string sealed, fl::EncodeUpdate(update, encode));
  result.update_bytes = static_cast<int64_t>(sealed.size());
  SubmitUpdateCall submit;
  submit.task = options_.task;
  submit.round_id = joined->round_id;
  submit.sealed_update = std::move(sealed);
  submit.example_count = static_cast<uint64_t>(update.num_examples);
  submit.deadline_nanos = transport_.clock()->NowNanos() + options_.call_timeout_nanos;
  auto [submitted, submit_stats] = CallAndWait<SubmitUpdateAnswer>([&](SubmitUpdateCallback done) {
    transport_.SubmitUpdate(std::move(submit), std::move(done));
  });
  result.wire_bytes_sent += submit_stats.bytes_sent;
  result.wire_bytes_received += submit_stats.bytes_received;
  HML_RETURN_IF_ERROR(submitted.status().WithContext("SubmitUpdate for round " + result.round_id));
  result.outcome = ParticipationResult::Outcome::kSubmitted;
  result.accepted = submitted->accepted;
  last_round_submitted_ = result.round_id;
  return result;
}

}  // namespace hml::sdk

// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/sdk/grpc/wire.h"

#include <algorithm>
#include <string>
#include <type_traits>
#include <utility>

#include "src/protocol/v2_grpc_codec.h"
#include "src/protocol/v2_types.h"

namespace hml::sdk {

// The SDK's tensor parameters are the protocol's, so converting a tensor is a move.
static_assert(std::is_same_v<TensorParameters, protocol::V2Parameters>);

Status EncodeInferCall(InferCall& call, inference::ModelInferRequest* out) {
  protocol::V2InferRequest request;
  request.model_name = std::move(call.model);
  if (call.version != 0) request.model_version = std::to_string(call.version);
  request.inputs.reserve(call.inputs.size());
  for (NamedTensor& t : call.inputs) {
    request.inputs.push_back({std::move(t.name), std::move(t.tensor), std::move(t.parameters)});
  }
  return protocol::EncodeModelInferRequest(request, protocol::V2TensorEncoding::kRaw, out);
}

Result<InferAnswer> DecodeInferAnswer(inference::ModelInferResponse& response) {
  HML_ASSIGN_OR_RETURN(protocol::V2InferResponse decoded,
                       protocol::DecodeModelInferResponse(response));
  InferAnswer answer;
  answer.model_version = std::move(decoded.model_version);
  answer.outputs.reserve(decoded.outputs.size());
  for (protocol::NamedTensor& t : decoded.outputs) {
    answer.outputs.push_back({std::move(t.name), std::move(t.tensor), std::move(t.parameters)});
  }
  return answer;
}

void EncodeUploadCall(UploadCall& call, hybridml::v1::UploadBatchRequest* out) {
  out->set_idempotency_key(std::move(call.idempotency_key));
  out->set_sealed_batch(std::move(call.sealed_batch));
  out->set_sample_count(call.sample_count);
}

void EncodeTelemetryCall(TelemetryCall& call, hybridml::v1::TelemetryReport* out) {
  out->set_timestamp_ms(call.timestamp_ms);
  for (TelemetryMeasurement& m : call.measurements) {
    hybridml::v1::Measurement* measurement = out->add_measurements();
    measurement->set_name(std::move(m.name));
    measurement->set_value(m.value);
    for (auto& [key, value] : m.labels) (*measurement->mutable_labels())[key] = std::move(value);
  }
}

void EncodeJoinRoundCall(JoinRoundCall& call, hybridml::v1::JoinRoundRequest* out) {
  out->set_task(std::move(call.task));
}

Result<JoinRoundAnswer> DecodeJoinRoundAnswer(hybridml::v1::JoinRoundResponse& response) {
  JoinRoundAnswer answer;
  const std::string& version = response.model_version();
  // At most 18 digits: any int64 the registry hands out, and no overflow here.
  if (version.size() > 18 ||
      !std::all_of(version.begin(), version.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return InternalError("the server's answer has model_version '" + version +
                         "', not a version number");
  }
  for (char c : version) answer.model_version = answer.model_version * 10 + (c - '0');
  answer.round_id = std::move(*response.mutable_round_id());
  if (!answer.round_id.empty() && response.deadline_ms() <= 0) {
    return InternalError("the server's answer has round " + answer.round_id +
                         " without a deadline");
  }
  answer.deadline_ms = response.deadline_ms();
  for (auto& [key, value] : *response.mutable_config()) answer.config[key] = std::move(value);
  return answer;
}

void EncodeSubmitUpdateCall(SubmitUpdateCall& call, hybridml::v1::SubmitUpdateRequest* out) {
  out->set_task(std::move(call.task));
  out->set_round_id(std::move(call.round_id));
  out->set_sealed_update(std::move(call.sealed_update));
  out->set_example_count(call.example_count);
}

void EncodeSecureAggregationCall(SecureAggregationCall& call,
                                 hybridml::v1::SecureAggregationRequest* out) {
  out->set_task(std::move(call.task));
  out->set_round_id(std::move(call.round_id));
  out->set_message(std::move(call.message));
}

Result<SecureAggregationAnswer> DecodeSecureAggregationAnswer(
    hybridml::v1::SecureAggregationResponse& response) {
  if (response.reply().empty()) {
    return InternalError("secure aggregation: the server's answer has no reply");
  }
  SecureAggregationAnswer answer;
  answer.reply = std::move(*response.mutable_reply());
  return answer;
}

Result<SubmitUpdateAnswer> DecodeSubmitUpdateAnswer(hybridml::v1::SubmitUpdateResponse& response) {
  SubmitUpdateAnswer answer;
  answer.accepted = response.accepted();
  return answer;
}

}  // namespace hml::sdk

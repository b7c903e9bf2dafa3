// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/sdk/transport.h"

#include <cmath>
#include <set>
#include <string>

namespace hml::sdk {

Status ValidateInferCall(const InferCall& call) {
  if (call.model.empty()) return InvalidArgumentError("infer call: the model name is empty");
  const std::string what = "infer call to model '" + call.model + "'";
  if (call.version < 0) {
    return InvalidArgumentError(what + ": version " + std::to_string(call.version) +
                                " is negative (0 means the latest)");
  }
  if (call.deadline_nanos < 0) {
    return InvalidArgumentError(what + ": deadline " + std::to_string(call.deadline_nanos) +
                                " is negative (0 means none)");
  }
  if (call.inputs.empty()) return InvalidArgumentError(what + ": no inputs");
  std::set<std::string> names;
  for (size_t i = 0; i < call.inputs.size(); ++i) {
    const NamedTensor& input = call.inputs[i];
    if (input.name.empty()) {
      return InvalidArgumentError(what + ": input #" + std::to_string(i) + " has no name");
    }
    if (!names.insert(input.name).second) {
      return InvalidArgumentError(what + ": input '" + input.name + "' is given twice");
    }
    if (input.tensor.empty()) {
      return InvalidArgumentError(what + ": input '" + input.name + "' is an empty tensor");
    }
  }
  return Status::Ok();
}

Status ValidateUploadCall(const UploadCall& call) {
  const std::string& key = call.idempotency_key;
  if (key.empty() || key.size() > 128) {
    return InvalidArgumentError("upload: the idempotency key must have 1 to 128 characters, not " +
                                std::to_string(key.size()));
  }
  for (char c : key) {
    const bool allowed = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                         (c >= '0' && c <= '9') || c == '.' || c == '_' || c == ':' || c == '-';
    if (!allowed) {
      return InvalidArgumentError("upload: idempotency key '" + key +
                                  "' has a character outside [A-Za-z0-9._:-]");
    }
  }
  const std::string what = "upload '" + key + "'";
  if (call.sealed_batch.empty()) return InvalidArgumentError(what + ": the batch is empty");
  if (call.deadline_nanos < 0) {
    return InvalidArgumentError(what + ": deadline " + std::to_string(call.deadline_nanos) +
                                " is negative (0 means none)");
  }
  return Status::Ok();
}

Status ValidateTelemetryCall(const TelemetryCall& call) {
  if (call.measurements.empty()) return InvalidArgumentError("telemetry: no measurements");
  if (call.deadline_nanos < 0) {
    return InvalidArgumentError("telemetry: deadline " + std::to_string(call.deadline_nanos) +
                                " is negative (0 means none)");
  }
  for (size_t i = 0; i < call.measurements.size(); ++i) {
    const TelemetryMeasurement& m = call.measurements[i];
    if (m.name.empty()) {
      return InvalidArgumentError("telemetry: measurement #" + std::to_string(i) + " has no name");
    }
    if (!std::isfinite(m.value)) {
      return InvalidArgumentError("telemetry: measurement '" + m.name + "' (#" + std::to_string(i) +
                                  ") has a value that is not finite");
    }
  }
  return Status::Ok();
}

Status ValidateJoinRoundCall(const JoinRoundCall& call) {
  if (call.task.empty()) return InvalidArgumentError("join round: the task name is empty");
  if (call.deadline_nanos < 0) {
    return InvalidArgumentError("join round of task '" + call.task + "': deadline " +
                                std::to_string(call.deadline_nanos) +
                                " is negative (0 means none)");
  }
  return Status::Ok();
}

Status ValidateSecureAggregationCall(const SecureAggregationCall& call) {
  if (call.task.empty()) return InvalidArgumentError("secure aggregation: the task name is empty");
  if (call.round_id.empty()) {
    return InvalidArgumentError("secure aggregation in task '" + call.task +
                                "': the round id is empty");
  }
  const std::string what = "secure aggregation in task '" + call.task + "' round " + call.round_id;
  if (call.message.empty()) return InvalidArgumentError(what + ": the message is empty");
  if (call.deadline_nanos < 0) {
    return InvalidArgumentError(what + ": deadline " + std::to_string(call.deadline_nanos) +
                                " is negative (0 means none)");
  }
  return Status::Ok();
}

Status ValidateSubmitUpdateCall(const SubmitUpdateCall& call) {
  if (call.task.empty()) return InvalidArgumentError("submit update: the task name is empty");
  if (call.round_id.empty()) {
    return InvalidArgumentError("submit update to task '" + call.task + "': the round id is empty");
  }
  const std::string what = "submit update to task '" + call.task + "' round " + call.round_id;
  if (call.sealed_update.empty()) return InvalidArgumentError(what + ": the update is empty");
  if (call.example_count == 0) {
    return InvalidArgumentError(what +
                                ": example_count is 0 (the update's aggregation weight "
                                "must be > 0)");
  }
  if (call.deadline_nanos < 0) {
    return InvalidArgumentError(what + ": deadline " + std::to_string(call.deadline_nanos) +
                                " is negative (0 means none)");
  }
  return Status::Ok();
}

}  // namespace hml::sdk

// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/sdk/transport.h"

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

}  // namespace hml::sdk

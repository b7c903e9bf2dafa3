// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// What the front ends (gRPC and HTTP) serve: the seam between wire protocols and the models.
// The model repository implements it (registry-fed models, each version behind a dynamic
// batcher); tests give the front ends fakes. Inputs are in the model's input order, as the
// protocol codecs (src/server/protocol/) produce them after matching names.
#ifndef HML_SRC_SERVER_SERVING_INFERENCE_BACKEND_H_
#define HML_SRC_SERVER_SERVING_INFERENCE_BACKEND_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "hml/runtime/model.h"
#include "hml/runtime/tensor.h"
#include "hml/status.h"
#include "src/server/metrics/metrics.h"
#include "src/server/serving/batcher.h"

namespace hml::server {

struct ServedModel {
  std::string name;
  int64_t version = 0;              // the registry's version number
  std::vector<int64_t> versions;    // every version of `name` that is loaded
  std::vector<TensorSpec> inputs;   // dynamic dims -1 (the batch dim among them)
  std::vector<TensorSpec> outputs;
};

class InferenceBackend {
 public:
  virtual ~InferenceBackend() = default;

  // The server is up and every model it was configured with is loaded.
  virtual bool Ready() const = 0;

  // The model `name` at `version` (0 = the latest loaded version). kNotFound naming the model
  // or version.
  virtual Result<ServedModel> GetModel(const std::string& name, int64_t version) const = 0;
  virtual std::vector<ServedModel> ListModels() const = 0;

  // Runs `request` on `name` at `version` (0 = latest). Returns at once: the SubmitResult of the
  // model's batcher (kResourceExhausted with retry_after_micros when its queue is full,
  // kInvalidArgument for inputs that do not fit, kDeadlineExceeded for a deadline already
  // passed), or kNotFound for an unknown model/version; request.done is called exactly once
  // for every request accepted. A version being unloaded finishes the requests it accepted.
  // `protocol` is the front end's, for the metrics' `protocol` label.
  virtual SubmitResult Infer(const std::string& name, int64_t version, ServingProtocol protocol,
                             InferRequest request) = 0;
};

}  // namespace hml::server

#endif  // HML_SRC_SERVER_SERVING_INFERENCE_BACKEND_H_

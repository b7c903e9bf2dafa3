// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// What the front ends (gRPC and HTTP) serve: the seam between wire protocols and the models.
// The model repository implements it (registry-fed models, each version behind a dynamic
// batcher); tests give the front ends fakes.
//
// Inputs reach the backend by name, as the protocol codecs (src/server/protocol/) decode them,
// with their per-tensor parameters. Matching names to the model is the backend's job, not the
// front ends': the names are either the model's inputs (the whole model runs) or, for a split
// request, the tensors of a cut through the model that a device computed itself (the rest of
// the model runs; see src/server/serving/split_inference.h and docs/serving.md).
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
#include "src/server/protocol/v2_json.h"
#include "src/server/serving/batcher.h"

namespace hml::server {

struct ServedModel {
  std::string name;
  int64_t version = 0;              // the registry's version number
  std::vector<int64_t> versions;    // every version of `name` that is loaded
  std::vector<TensorSpec> inputs;   // dynamic dims -1 (the batch dim among them)
  std::vector<TensorSpec> outputs;
};

// One inference request as a front end hands it to the backend: InferRequest (batcher.h) with
// named inputs instead of inputs in model order.
struct NamedInferRequest {
  // Unique names, in any order; dimension 0 of each tensor is its number of samples. Either
  // the model's inputs, or the tensors of a complete cut (split inference). Each tensor owns its
  // buffer.
  std::vector<NamedTensor> inputs;
  // Clock::NowNanos() of the backend's clock after which the result is useless; 0 = none.
  int64_t deadline_nanos = 0;
  // As InferRequest::done: called exactly once for every request Infer() accepted, with the
  // model's outputs in ServedModel::outputs order (a split request answers the same outputs).
  std::function<void(Result<std::vector<Tensor>>)> done;
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
  // kDeadlineExceeded for a deadline already passed), kInvalidArgument for inputs that do not
  // fit (an unknown or missing name, a wrong dtype or shape, bad quantization parameters; the
  // message names the input), or kNotFound for an unknown model/version; request.done is called
  // exactly once for every request accepted. A version being unloaded finishes the requests it
  // accepted. `protocol` is the front end's, for the metrics' `protocol` label.
  virtual SubmitResult Infer(const std::string& name, int64_t version, ServingProtocol protocol,
                             NamedInferRequest request) = 0;

  // Whether Infer() on `name` at `version` would be refused for overload right now (the
  // batcher's CheckAdmission: kResourceExhausted with retry_after_micros, or kUnavailable while
  // draining), asked by the front ends before they decode a request body, so that refusing
  // costs no parsing. A hint: Infer() decides. Refusals are recorded like Infer()'s. Unknown
  // models are left to Infer(). Default: always admits.
  virtual SubmitResult CheckAdmission(const std::string& name, int64_t version,
                                      ServingProtocol protocol) {
    return {};
  }
};

}  // namespace hml::server

#endif  // HML_SRC_SERVER_SERVING_INFERENCE_BACKEND_H_

// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// A fake InferenceBackend for front-end tests (gRPC, TLS): one DynamicBatcher on the 28x28 CNN,
// served as "cnn28" version 3. Its gate, when closed, holds every answer in the batcher's worker
// thread (inside `done`), which blocks the only instance: a test controls what is queued and what
// is computed.
#ifndef HML_TESTS_TESTING_SERVING_FAKES_H_
#define HML_TESTS_TESTING_SERVING_FAKES_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "hml/runtime/model.h"
#include "hml/status.h"
#include "src/server/serving/batcher.h"
#include "src/server/serving/inference_backend.h"
#include "src/server/serving/split_inference.h"
#include "tests/testing/models.h"

namespace hml::testing {

// The name and version FakeCnnBackend serves.
inline constexpr char kFakeCnnModel[] = "cnn28";
inline constexpr int64_t kFakeCnnVersion = 3;

// Serves kFakeCnnModel version kFakeCnnVersion from one DynamicBatcher built with `options`.
// Thread-safe like the batcher; the gate is guarded by mu_.
class FakeCnnBackend final : public server::InferenceBackend {
 public:
  explicit FakeCnnBackend(const server::BatchingOptions& options)
      : model_(*Model::FromGraph(Cnn28Graph())) {
    batcher_ = std::move(*server::DynamicBatcher::Create(model_, options));
  }

  bool Ready() const override { return true; }

  Result<server::ServedModel> GetModel(const std::string& name, int64_t version) const override {
    if (name != kFakeCnnModel) return NotFoundError("model '" + name + "' is not loaded");
    if (version != 0 && version != kFakeCnnVersion) {
      return NotFoundError("model '" + name + "' has no version " + std::to_string(version));
    }
    return Served();
  }

  std::vector<server::ServedModel> ListModels() const override { return {Served()}; }

  server::SubmitResult CheckAdmission(const std::string&, int64_t,
                                      server::ServingProtocol) override {
    return batcher_->CheckAdmission();
  }

  // Matches the named inputs to the model's like the model repository (no split requests).
  server::SubmitResult Infer(const std::string& name, int64_t version, server::ServingProtocol,
                             server::NamedInferRequest request) override {
    Result<server::ServedModel> model = GetModel(name, version);
    if (!model.ok()) return {model.status()};
    Result<std::vector<Tensor>> inputs =
        server::InputsInSpecOrder("model '" + name + "'", model->inputs, request.inputs);
    if (!inputs.ok()) return {inputs.status()};
    server::InferRequest infer;
    infer.inputs = std::move(*inputs);
    infer.deadline_nanos = request.deadline_nanos;
    // Holds the answer while the gate is closed; the worker thread waits here.
    infer.done = [this, done = std::move(request.done)](Result<std::vector<Tensor>> result) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return open_; });
      }
      done(std::move(result));
    };
    return batcher_->Submit(std::move(infer));
  }

  void CloseGate() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = false;
  }
  void OpenGate() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }

  // Waits (real time, up to 10 s) until `predicate` holds for the batcher's stats.
  bool WaitForStats(const std::function<bool(const server::BatcherStats&)>& predicate) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < until) {
      if (predicate(batcher_->stats())) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return false;
  }

  server::DynamicBatcher& batcher() { return *batcher_; }

 private:
  server::ServedModel Served() const {
    server::ServedModel served;
    served.name = kFakeCnnModel;
    served.version = kFakeCnnVersion;
    served.versions = {kFakeCnnVersion};
    served.inputs = model_.inputs();
    // The graph's output carries no element type before shape inference; the model repository
    // reports the inferred one, so the fake states it.
    served.outputs = {{"probs", DType::kFloat32, {-1, 10}}};
    return served;
  }

  const Model model_;
  std::unique_ptr<server::DynamicBatcher> batcher_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = true;  // GUARDED_BY(mu_)
};

}  // namespace hml::testing

#endif  // HML_TESTS_TESTING_SERVING_FAKES_H_

// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// A fake Transport for uploader tests: its Upload() plays an ingest service that stores each
// (idempotency key -> sealed bytes) once, with a script of what each call does:
//   kAck            store (or recognise a retry: duplicate) and acknowledge
//   kFail           answer `status` without storing (the request never reached the server)
//   kCommitThenFail store, then answer `status` (the server died after its commit, before the
//                   ack: the device sees a failure although the batch is stored)
// Calls beyond the script are kAck. Callbacks run on a thread of the fake, never inside
// Upload(), as the Transport contract says. Infer, ReportTelemetry, JoinRound, SubmitUpdate and
// SecureAggregation answer kUnimplemented.
#ifndef HML_TESTS_TESTING_UPLOAD_FAKES_H_
#define HML_TESTS_TESTING_UPLOAD_FAKES_H_

#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "hml/clock.h"
#include "hml/status.h"
#include "src/sdk/transport.h"

namespace hml::testing {

class FakeIngestTransport final : public sdk::Transport {
 public:
  enum class Action { kAck, kFail, kCommitThenFail };
  struct Step {
    Action action = Action::kAck;
    Status status;  // for kFail / kCommitThenFail
  };

  explicit FakeIngestTransport(Clock* clock) : clock_(clock) {}
  ~FakeIngestTransport() override {
    for (std::thread& t : threads_) t.join();
  }

  void Script(std::vector<Step> steps) {
    std::lock_guard<std::mutex> lock(mu_);
    script_.assign(steps.begin(), steps.end());
  }
  // Runs inside Upload(), before anything is answered (e.g. to inspect the device's store).
  void OnUpload(std::function<void(const sdk::UploadCall&)> hook) {
    std::lock_guard<std::mutex> lock(mu_);
    hook_ = std::move(hook);
  }

  // What the "server" holds: key -> sealed bytes.
  std::map<std::string, std::string> stored() const {
    std::lock_guard<std::mutex> lock(mu_);
    return stored_;
  }
  // The idempotency key of every Upload call, in order.
  std::vector<std::string> call_keys() const {
    std::lock_guard<std::mutex> lock(mu_);
    return call_keys_;
  }

  sdk::CallId Upload(sdk::UploadCall call, sdk::UploadCallback done) override {
    std::function<void(const sdk::UploadCall&)> hook;
    {
      std::lock_guard<std::mutex> lock(mu_);
      hook = hook_;
    }
    if (hook) hook(call);
    std::lock_guard<std::mutex> lock(mu_);
    const sdk::CallId id = ++next_id_;
    call_keys_.push_back(call.idempotency_key);
    Step step;
    if (!script_.empty()) {
      step = script_.front();
      script_.pop_front();
    }
    sdk::CallStats stats;
    stats.bytes_sent = static_cast<int64_t>(call.sealed_batch.size());
    Result<sdk::UploadAnswer> answer = step.status;  // replaced below unless kFail
    Status valid = sdk::ValidateUploadCall(call);
    if (!valid.ok()) {
      answer = valid;
    } else if (step.action != Action::kFail) {
      sdk::UploadAnswer a;
      auto it = stored_.find(call.idempotency_key);
      if (it == stored_.end()) {
        stored_[call.idempotency_key] = call.sealed_batch;
        answer = a;
      } else if (it->second == call.sealed_batch) {
        a.duplicate = true;
        answer = a;
      } else {
        answer = AlreadyExistsError("key " + call.idempotency_key + " was used for other bytes");
      }
      if (step.action == Action::kCommitThenFail && answer.ok()) answer = step.status;
    }
    threads_.emplace_back([done = std::move(done), answer = std::move(answer), stats]() mutable {
      done(std::move(answer), stats);
    });
    return id;
  }

  sdk::CallId Infer(sdk::InferCall, sdk::InferCallback done) override {
    return Unimplemented([done = std::move(done)](sdk::CallStats s) {
      done(UnimplementedError("fake ingest transport"), s);
    });
  }
  sdk::CallId ReportTelemetry(sdk::TelemetryCall, sdk::TelemetryCallback done) override {
    return Unimplemented([done = std::move(done)](sdk::CallStats s) {
      done(UnimplementedError("fake ingest transport"), s);
    });
  }
  sdk::CallId JoinRound(sdk::JoinRoundCall, sdk::JoinRoundCallback done) override {
    return Unimplemented([done = std::move(done)](sdk::CallStats s) {
      done(UnimplementedError("fake ingest transport"), s);
    });
  }
  sdk::CallId SubmitUpdate(sdk::SubmitUpdateCall, sdk::SubmitUpdateCallback done) override {
    return Unimplemented([done = std::move(done)](sdk::CallStats s) {
      done(UnimplementedError("fake ingest transport"), s);
    });
  }
  sdk::CallId SecureAggregation(sdk::SecureAggregationCall,
                                sdk::SecureAggregationCallback done) override {
    return Unimplemented([done = std::move(done)](sdk::CallStats s) {
      done(UnimplementedError("fake ingest transport"), s);
    });
  }
  bool Cancel(sdk::CallId) override { return false; }
  Clock* clock() const override { return clock_; }

 private:
  sdk::CallId Unimplemented(std::function<void(sdk::CallStats)> answer) {
    std::lock_guard<std::mutex> lock(mu_);
    threads_.emplace_back([answer = std::move(answer)] { answer(sdk::CallStats{}); });
    return ++next_id_;
  }

  Clock* const clock_;
  mutable std::mutex mu_;
  std::deque<Step> script_;
  std::function<void(const sdk::UploadCall&)> hook_;
  std::map<std::string, std::string> stored_;
  std::vector<std::string> call_keys_;
  std::vector<std::thread> threads_;
  sdk::CallId next_id_ = 0;
};

}  // namespace hml::testing

#endif  // HML_TESTS_TESTING_UPLOAD_FAKES_H_

// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/sim/in_process_transport.h"

#include <condition_variable>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "proto/hybridml_device.pb.h"
#include "proto/inference.pb.h"
#include "src/sdk/grpc/wire.h"
#include "src/server/protocol/v2_grpc_codec.h"
#include "src/server/protocol/v2_json.h"

namespace hml::sim {

namespace {

// One call from Infer(), Upload() or ReportTelemetry() until its callback ran. The typed callback
// lives in TypedCall; the machinery below (deadline, link, cancel, shutdown) only needs to fail a
// call, which Fail() does for every kind.
struct Call {
  virtual ~Call() = default;
  // Runs the callback with `error`.
  virtual void Fail(Status error) = 0;

  // Names the call in errors: "model 'm'", "upload 'key'", "telemetry".
  std::string what;
  int64_t version = 0;
  int64_t deadline_nanos = 0;
  sdk::CallStats stats;
  bool cancelled = false;  // Cancel() ran: only its own callback may finish the call
};

template <typename Answer>
struct TypedCall final : Call {
  std::function<void(Result<Answer>, const sdk::CallStats&)> done;
  void Fail(Status error) override { done(std::move(error), stats); }
};

}  // namespace

struct InProcessTransport::Impl {
  InProcessTransportOptions options;
  TimerQueue* timers = nullptr;
  Clock* clock = nullptr;

  std::mutex mu;
  std::condition_variable idle;
  // Guarded by mu. `busy` counts the tasks running and the backend requests outstanding; the
  // destructor waits for it to reach 0. `calls` holds the calls whose callback has not run.
  bool closed = false;
  int busy = 0;
  sdk::CallId next_id = 1;
  std::unordered_map<sdk::CallId, std::unique_ptr<Call>> calls;
  Counters counters;
};

namespace {

using Impl = InProcessTransport::Impl;

// Marks one unit of work of the transport as running; false once the transport is closing.
bool Enter(Impl& impl) {
  std::lock_guard<std::mutex> lock(impl.mu);
  if (impl.closed) return false;
  ++impl.busy;
  return true;
}

void Exit(Impl& impl) {
  std::lock_guard<std::mutex> lock(impl.mu);
  if (--impl.busy == 0) impl.idle.notify_all();
}

// Runs `task` on the transport's queue at `due_nanos`, unless the transport is closing by then.
void Schedule(const std::shared_ptr<Impl>& impl, int64_t due_nanos, std::function<void()> task) {
  impl->timers->Schedule(due_nanos, [impl, task = std::move(task)] {
    if (!Enter(*impl)) return;
    task();
    Exit(*impl);
  });
}

// Takes call `id` out of the table to end it, unless it already ended (or was cancelled and this is
// not the cancellation); null then. Adds `bytes_received` to its stats and counts the outcome.
std::unique_ptr<Call> Take(Impl& impl, sdk::CallId id, bool ok, int64_t bytes_received,
                           bool is_cancellation) {
  std::lock_guard<std::mutex> lock(impl.mu);
  auto it = impl.calls.find(id);
  if (it == impl.calls.end() || (it->second->cancelled && !is_cancellation)) return nullptr;
  std::unique_ptr<Call> call = std::move(it->second);
  impl.calls.erase(it);
  call->stats.bytes_received += bytes_received;
  call->stats.end_nanos = impl.clock->NowNanos();
  if (ok) {
    ++impl.counters.answered_ok;
  } else {
    ++impl.counters.failed;
  }
  return call;
}

// Ends call `id` with `status` (an error) and runs its callback.
void FailNow(Impl& impl, sdk::CallId id, Status status, int64_t bytes_received,
             bool is_cancellation = false) {
  std::unique_ptr<Call> call = Take(impl, id, false, bytes_received, is_cancellation);
  if (call != nullptr) call->Fail(std::move(status));
}

// Ends call `id` with `result` and runs its callback.
template <typename Answer>
void Finish(Impl& impl, sdk::CallId id, Result<Answer> result, int64_t bytes_received) {
  if (!result.ok()) return FailNow(impl, id, result.status(), bytes_received);
  std::unique_ptr<Call> call = Take(impl, id, true, bytes_received, false);
  if (call == nullptr) return;
  auto& typed = static_cast<TypedCall<Answer>&>(*call);
  typed.done(std::move(result), typed.stats);
}

// Fails call `id` with `status` at `due_nanos`.
void FailAt(const std::shared_ptr<Impl>& impl, sdk::CallId id, int64_t due_nanos, Status status) {
  Schedule(impl, due_nanos,
           [impl = impl.get(), id, status = std::move(status)] { FailNow(*impl, id, status, 0); });
}

// Sends an answer of `bytes` (already decoded on the device side: `answer`) down the link and
// finishes the call when it arrives, or fails it when the link loses or refuses it.
template <typename Answer>
void SendDown(const std::shared_ptr<Impl>& impl, sdk::CallId id, int64_t bytes,
              Result<Answer> answer, const std::string& what) {
  const Transmission t = impl->options.link->Send(Direction::kDownlink, bytes);
  switch (t.fate) {
    case Transmission::Fate::kRefused:
      FailAt(impl, id, t.send_nanos,
             UnavailableError(what + ": the link is down, the response cannot reach the device"));
      return;
    case Transmission::Fate::kLost:
      FailAt(impl, id, t.send_nanos + impl->options.lost_message_timeout_nanos,
             UnavailableError(what + ": the response was lost on the link"));
      return;
    case Transmission::Fate::kDelivered:
      break;
  }
  // std::function needs a copyable callable: the answer (move-only tensors) rides in a
  // shared_ptr.
  auto payload = std::make_shared<Result<Answer>>(std::move(answer));
  Schedule(impl, t.arrive_nanos, [impl = impl.get(), id, bytes, payload] {
    Finish(*impl, id, std::move(*payload), bytes);
  });
}

// The answer type of an error travelling down: the error path never looks at the answer, so any
// call kind may be failed with it.
struct ErrorOnly {};

// An error answer travels as a message of its text's length.
void SendError(const std::shared_ptr<Impl>& impl, sdk::CallId id, Status status,
               const std::string& what) {
  const int64_t bytes =
      static_cast<int64_t>(status.message().size()) + impl->options.per_message_overhead_bytes;
  SendDown(impl, id, bytes, Result<ErrorOnly>(std::move(status)), what);
}

// The backend's answer, as the gRPC handler encodes it and the device decodes it.
void Respond(const std::shared_ptr<Impl>& impl, sdk::CallId id, const server::ServedModel& served,
             Result<std::vector<Tensor>> result) {
  const std::string what = "model '" + served.name + "' version " + std::to_string(served.version);
  if (!result.ok()) return SendError(impl, id, result.status(), what);
  if (result->size() != served.outputs.size()) {
    return SendError(impl, id,
                     InternalError(what + ": backend returned " + std::to_string(result->size()) +
                                   " outputs, expected " + std::to_string(served.outputs.size())),
                     what);
  }
  std::vector<server::NamedTensor> named;
  named.reserve(result->size());
  for (size_t i = 0; i < result->size(); ++i) {
    named.push_back({served.outputs[i].name, std::move((*result)[i])});
  }
  inference::ModelInferResponse message;
  Status encoded = server::EncodeModelInferResponse(served.name, std::to_string(served.version), "",
                                                    named, &message);
  if (!encoded.ok()) return SendError(impl, id, std::move(encoded), what);
  const int64_t bytes =
      static_cast<int64_t>(message.ByteSizeLong()) + impl->options.per_message_overhead_bytes;
  Result<sdk::InferAnswer> answer = sdk::DecodeInferAnswer(message);
  if (!answer.ok()) return SendError(impl, id, answer.status(), what);
  SendDown(impl, id, bytes, std::move(answer), what);
}

// Whether call `id` still waits for its answer, with its version and deadline. A call that ended
// (deadline, cancel) is gone: a real client would have reset the stream; nothing is computed.
bool StillPending(Impl& impl, sdk::CallId id, int64_t* version, int64_t* deadline) {
  std::lock_guard<std::mutex> lock(impl.mu);
  auto it = impl.calls.find(id);
  if (it == impl.calls.end() || it->second->cancelled) return false;
  *version = it->second->version;
  *deadline = it->second->deadline_nanos;
  return true;
}

// The server side of a request that reached it: what `hybridml serve`'s ModelInfer handler does.
void Deliver(const std::shared_ptr<Impl>& impl, sdk::CallId id,
             const inference::ModelInferRequest& message) {
  int64_t version = 0, deadline = 0;
  if (!StillPending(*impl, id, &version, &deadline)) return;
  server::InferenceBackend& backend = *impl->options.backend;
  const std::string& model = message.model_name();
  const std::string what = "model '" + model + "'";
  server::SubmitResult admitted =
      backend.CheckAdmission(model, version, server::ServingProtocol::kGrpc);
  if (!admitted.ok()) return SendError(impl, id, admitted.status, what);
  Result<server::V2InferRequest> decoded = server::DecodeModelInferRequest(message);
  if (!decoded.ok()) return SendError(impl, id, decoded.status(), what);
  Result<server::ServedModel> served = backend.GetModel(model, version);
  if (!served.ok()) return SendError(impl, id, served.status(), what);

  server::NamedInferRequest request;
  request.inputs = std::move(decoded->inputs);
  request.deadline_nanos = deadline;
  {
    std::lock_guard<std::mutex> lock(impl->mu);
    ++impl->busy;  // the backend request; its `done` ends it
    ++impl->counters.delivered_to_backend;
  }
  const int64_t served_version = served->version;
  request.done = [impl, id, served = std::move(*served)](Result<std::vector<Tensor>> result) {
    Respond(impl, id, served, std::move(result));
    Exit(*impl);
  };
  server::SubmitResult submitted =
      backend.Infer(model, served_version, server::ServingProtocol::kGrpc, std::move(request));
  if (!submitted.ok()) {
    Exit(*impl);  // refused: `done` will not run
    SendError(impl, id, submitted.status, what);
  }
}

// The server side of an upload: what Ingest.UploadBatch does for an authenticated device.
void DeliverUpload(const std::shared_ptr<Impl>& impl, sdk::CallId id,
                   const hybridml::v1::UploadBatchRequest& message) {
  int64_t version = 0, deadline = 0;
  if (!StillPending(*impl, id, &version, &deadline)) return;
  const std::string what = "upload '" + message.idempotency_key() + "'";
  const InProcessTransportOptions& options = impl->options;
  if (options.ingest == nullptr) {
    return SendError(impl, id, UnimplementedError(what + ": the server has no ingest store"), what);
  }
  Result<bool> duplicate = options.ingest->Put(
      options.device_id, message.idempotency_key(), static_cast<int64_t>(message.sample_count()),
      message.sealed_batch(), impl->clock->WallMicros() / 1000000);
  if (!duplicate.ok()) return SendError(impl, id, duplicate.status(), what);
  if (options.after_ingest_commit && !options.after_ingest_commit()) {
    // The server died between its commit and its answer: the device hears nothing.
    return FailAt(impl, id, impl->clock->NowNanos() + options.lost_message_timeout_nanos,
                  UnavailableError(what + ": the connection was lost before the server's answer"));
  }
  hybridml::v1::UploadBatchResponse response;
  response.set_duplicate(*duplicate);
  const int64_t bytes =
      static_cast<int64_t>(response.ByteSizeLong()) + options.per_message_overhead_bytes;
  SendDown(impl, id, bytes, Result<sdk::UploadAnswer>(sdk::UploadAnswer{*duplicate}), what);
}

// The server side of a telemetry report: what Telemetry.Report does for an authenticated device.
void DeliverTelemetry(const std::shared_ptr<Impl>& impl, sdk::CallId id,
                      const hybridml::v1::TelemetryReport& message) {
  int64_t version = 0, deadline = 0;
  if (!StillPending(*impl, id, &version, &deadline)) return;
  const std::string what = "telemetry";
  const InProcessTransportOptions& options = impl->options;
  if (!options.telemetry) {
    return SendError(impl, id, UnimplementedError("telemetry: the server does not collect it"),
                     what);
  }
  if (Status reported = options.telemetry(options.device_id, message); !reported.ok()) {
    return SendError(impl, id, std::move(reported), what);
  }
  const int64_t bytes =
      hybridml::v1::TelemetryAck().ByteSizeLong() + options.per_message_overhead_bytes;
  SendDown(impl, id, bytes, Result<sdk::TelemetryAnswer>(sdk::TelemetryAnswer{}), what);
}

// Sends the service's `response` down: its protobuf size (+ the overhead) travels, and the device
// reads it with `decode` (sdk/grpc/wire.h), as GrpcTransport does.
template <typename Response, typename Answer>
void Reply(const std::shared_ptr<Impl>& impl, sdk::CallId id, Response& response,
           Result<Answer> (*decode)(Response&), const std::string& what) {
  const int64_t bytes =
      static_cast<int64_t>(response.ByteSizeLong()) + impl->options.per_message_overhead_bytes;
  Result<Answer> answer = decode(response);
  if (!answer.ok()) return SendError(impl, id, answer.status(), what);
  SendDown(impl, id, bytes, std::move(answer), what);
}

// The server side of a join: what FederatedLearning.JoinRound does for an authenticated device.
void DeliverJoin(const std::shared_ptr<Impl>& impl, sdk::CallId id,
                 const hybridml::v1::JoinRoundRequest& message) {
  int64_t version = 0, deadline = 0;
  if (!StillPending(*impl, id, &version, &deadline)) return;
  const std::string what = "join round of task '" + message.task() + "'";
  const InProcessTransportOptions& options = impl->options;
  if (options.federated == nullptr) {
    return SendError(impl, id, UnimplementedError(what + ": the server runs no federated tasks"),
                     what);
  }
  Result<server::JoinAnswer> joined =
      options.federated->Join(message.task(), options.device_id, impl->clock->WallMicros() / 1000);
  if (!joined.ok()) return SendError(impl, id, joined.status(), what);
  hybridml::v1::JoinRoundResponse response;
  server::FillJoinRoundResponse(*joined, &response);
  Reply(impl, id, response, &sdk::DecodeJoinRoundAnswer, what);
}

// The server side of an update: what FederatedLearning.SubmitUpdate does for an authenticated
// device.
void DeliverSubmit(const std::shared_ptr<Impl>& impl, sdk::CallId id,
                   const hybridml::v1::SubmitUpdateRequest& message) {
  int64_t version = 0, deadline = 0;
  if (!StillPending(*impl, id, &version, &deadline)) return;
  const std::string what = "update of task '" + message.task() + "' round " + message.round_id();
  const InProcessTransportOptions& options = impl->options;
  if (options.federated == nullptr) {
    return SendError(impl, id, UnimplementedError(what + ": the server runs no federated tasks"),
                     what);
  }
  Result<bool> accepted = options.federated->Submit(
      message.task(), options.device_id, message.round_id(), message.sealed_update(),
      message.example_count(), impl->clock->WallMicros() / 1000);
  if (!accepted.ok()) return SendError(impl, id, accepted.status(), what);
  hybridml::v1::SubmitUpdateResponse response;
  response.set_accepted(*accepted);
  Reply(impl, id, response, &sdk::DecodeSubmitUpdateAnswer, what);
}

// The server side of a secure-aggregation message: what FederatedLearning.SecureAggregation
// does for an authenticated device.
void DeliverSecure(const std::shared_ptr<Impl>& impl, sdk::CallId id,
                   const hybridml::v1::SecureAggregationRequest& message) {
  int64_t version = 0, deadline = 0;
  if (!StillPending(*impl, id, &version, &deadline)) return;
  const std::string what =
      "secure aggregation in task '" + message.task() + "' round " + message.round_id();
  const InProcessTransportOptions& options = impl->options;
  if (options.federated == nullptr) {
    return SendError(impl, id, UnimplementedError(what + ": the server runs no federated tasks"),
                     what);
  }
  Result<std::string> reply =
      options.federated->SecureExchange(message.task(), options.device_id, message.round_id(),
                                        message.message(), impl->clock->WallMicros() / 1000);
  if (!reply.ok()) return SendError(impl, id, reply.status(), what);
  hybridml::v1::SecureAggregationResponse response;
  response.set_reply(std::move(*reply));
  Reply(impl, id, response, &sdk::DecodeSecureAggregationAnswer, what);
}

}  // namespace

Status InProcessTransportOptions::Validate() const {
  if (backend == nullptr) return InvalidArgumentError("in-process transport: backend is null");
  if (link == nullptr) return InvalidArgumentError("in-process transport: link is null");
  if (timers != nullptr && timers->clock() != link->clock()) {
    return InvalidArgumentError(
        "in-process transport: the timer queue's clock "
        "is not the link's clock");
  }
  if (lost_message_timeout_nanos <= 0) {
    return InvalidArgumentError("in-process transport: lost_message_timeout_nanos must be > 0");
  }
  if (per_message_overhead_bytes < 0) {
    return InvalidArgumentError("in-process transport: per_message_overhead_bytes must be >= 0");
  }
  if (device_id.empty()) return InvalidArgumentError("in-process transport: device_id is empty");
  return Status::Ok();
}

Result<std::unique_ptr<InProcessTransport>> InProcessTransport::Create(
    InProcessTransportOptions options) {
  HML_RETURN_IF_ERROR(options.Validate());
  std::unique_ptr<TimerQueue> own;
  auto impl = std::make_shared<Impl>();
  impl->clock = options.link->clock();
  if (options.timers == nullptr) {
    TimerQueueOptions timer_options;
    timer_options.clock = impl->clock;
    own = std::make_unique<TimerQueue>(timer_options);
    impl->timers = own.get();
  } else {
    impl->timers = options.timers;
  }
  impl->options = std::move(options);
  return std::unique_ptr<InProcessTransport>(
      new InProcessTransport(std::move(own), std::move(impl)));
}

InProcessTransport::InProcessTransport(std::unique_ptr<TimerQueue> own_timers,
                                       std::shared_ptr<Impl> impl)
    : own_timers_(std::move(own_timers)), impl_(std::move(impl)) {}

InProcessTransport::~InProcessTransport() {
  std::vector<std::unique_ptr<Call>> pending;
  {
    std::unique_lock<std::mutex> lock(impl_->mu);
    impl_->closed = true;
    for (auto& [id, call] : impl_->calls) pending.push_back(std::move(call));
    impl_->calls.clear();
    impl_->counters.failed += static_cast<int64_t>(pending.size());
    impl_->idle.wait(lock, [this] { return impl_->busy == 0; });
  }
  for (std::unique_ptr<Call>& call : pending) {
    call->stats.end_nanos = impl_->clock->NowNanos();
    call->Fail(CancelledError(call->what + ": the transport was destroyed"));
  }
  // own_timers_ (if any) is destroyed after this body: its pending tasks are dropped unrun.
}

Clock* InProcessTransport::clock() const { return impl_->clock; }

InProcessTransport::Counters InProcessTransport::counters() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->counters;
}

namespace {

// Server-side work for a request that reached the server.
using Delivery = std::function<void(const std::shared_ptr<Impl>& impl, sdk::CallId id)>;

// Starts a call of any kind: `failure` is the device-side verdict (validation, encoding); when it
// is OK, `request_bytes` go up the link and `deliver` runs at their arrival. Returns the call id.
sdk::CallId Launch(const std::shared_ptr<Impl>& impl_, std::unique_ptr<Call> state, Status failure,
                   int64_t request_bytes, Delivery deliver) {
  Call& call = *state;
  const int64_t now = impl_->clock->NowNanos();
  call.stats.start_nanos = now;
  const int64_t deadline = call.deadline_nanos;
  const std::string what = call.what;
  int64_t fail_at = now;
  Transmission sent;
  if (failure.ok() && deadline != 0 && deadline <= now) {
    failure = DeadlineExceededError(what + ": the deadline passed before the call was made");
  }
  if (failure.ok()) {
    const int64_t bytes = request_bytes + impl_->options.per_message_overhead_bytes;
    sent = impl_->options.link->Send(Direction::kUplink, bytes);
    if (sent.fate == Transmission::Fate::kRefused) {
      failure = UnavailableError(what + ": the link is down (no network)");
    } else {
      call.stats.bytes_sent = bytes;
      if (sent.fate == Transmission::Fate::kLost) {
        failure = UnavailableError(what + ": the request was lost on the link");
        fail_at = sent.send_nanos + impl_->options.lost_message_timeout_nanos;
      }
    }
  }

  // Everything up to the link is decided before the call becomes visible to Cancel().
  sdk::CallId id = 0;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    id = impl_->next_id++;
    impl_->calls.emplace(id, std::move(state));
    ++impl_->counters.calls;
  }
  if (deadline != 0 && deadline > now) {
    FailAt(impl_, id, deadline,
           DeadlineExceededError(what + ": no answer by the deadline (" +
                                 std::to_string((deadline - now) / 1000) + " us after the call)"));
  }
  if (!failure.ok()) {
    FailAt(impl_, id, fail_at, std::move(failure));
    return id;
  }
  // A request that would arrive after the deadline is not even scheduled: the deadline task above
  // ends the call and the server computes nothing (the delivery would also find the call ended and
  // skip it; the tests remove both gates to see them fail).
  if (deadline != 0 && sent.arrive_nanos > deadline) return id;
  Schedule(impl_, sent.arrive_nanos,
           [impl = impl_, id, deliver = std::move(deliver)] { deliver(impl, id); });
  return id;
}

// Launches a call whose request is the protobuf `message`, handed to the server side by
// `deliver` when it arrives: the calls other than Infer.
template <typename Answer, typename Message>
sdk::CallId LaunchMessage(const std::shared_ptr<Impl>& impl, std::string what,
                          int64_t deadline_nanos,
                          std::function<void(Result<Answer>, const sdk::CallStats&)> done,
                          Status failure, std::shared_ptr<Message> message,
                          void (*deliver)(const std::shared_ptr<Impl>&, sdk::CallId,
                                          const Message&)) {
  auto state = std::make_unique<TypedCall<Answer>>();
  state->what = std::move(what);
  state->deadline_nanos = deadline_nanos;
  state->done = std::move(done);
  const auto bytes = static_cast<int64_t>(message->ByteSizeLong());
  return Launch(impl, std::move(state), std::move(failure), bytes,
                [message, deliver](const std::shared_ptr<Impl>& impl, sdk::CallId id) {
                  deliver(impl, id, *message);
                });
}

}  // namespace

sdk::CallId InProcessTransport::Infer(sdk::InferCall call, sdk::InferCallback done) {
  auto state = std::make_unique<TypedCall<sdk::InferAnswer>>();
  state->what = "model '" + call.model + "'";
  state->version = call.version;
  state->deadline_nanos = call.deadline_nanos;
  state->done = std::move(done);

  Status failure = sdk::ValidateInferCall(call);
  auto message = std::make_shared<inference::ModelInferRequest>();
  if (failure.ok()) failure = sdk::EncodeInferCall(call, message.get());
  const auto bytes = static_cast<int64_t>(message->ByteSizeLong());
  return Launch(impl_, std::move(state), std::move(failure), bytes,
                [message](const std::shared_ptr<Impl>& impl, sdk::CallId id) {
                  Deliver(impl, id, *message);
                });
}

sdk::CallId InProcessTransport::Upload(sdk::UploadCall call, sdk::UploadCallback done) {
  Status failure = sdk::ValidateUploadCall(call);
  auto message = std::make_shared<hybridml::v1::UploadBatchRequest>();
  sdk::EncodeUploadCall(call, message.get());
  return LaunchMessage<sdk::UploadAnswer>(impl_, "upload '" + call.idempotency_key + "'",
                                          call.deadline_nanos, std::move(done), std::move(failure),
                                          std::move(message), &DeliverUpload);
}

sdk::CallId InProcessTransport::ReportTelemetry(sdk::TelemetryCall call,
                                                sdk::TelemetryCallback done) {
  Status failure = sdk::ValidateTelemetryCall(call);
  auto message = std::make_shared<hybridml::v1::TelemetryReport>();
  sdk::EncodeTelemetryCall(call, message.get());
  return LaunchMessage<sdk::TelemetryAnswer>(impl_, "telemetry", call.deadline_nanos,
                                             std::move(done), std::move(failure),
                                             std::move(message), &DeliverTelemetry);
}

sdk::CallId InProcessTransport::JoinRound(sdk::JoinRoundCall call, sdk::JoinRoundCallback done) {
  Status failure = sdk::ValidateJoinRoundCall(call);
  auto message = std::make_shared<hybridml::v1::JoinRoundRequest>();
  sdk::EncodeJoinRoundCall(call, message.get());
  return LaunchMessage<sdk::JoinRoundAnswer>(impl_, "join round of task '" + call.task + "'",
                                             call.deadline_nanos, std::move(done),
                                             std::move(failure), std::move(message), &DeliverJoin);
}

sdk::CallId InProcessTransport::SubmitUpdate(sdk::SubmitUpdateCall call,
                                             sdk::SubmitUpdateCallback done) {
  Status failure = sdk::ValidateSubmitUpdateCall(call);
  auto message = std::make_shared<hybridml::v1::SubmitUpdateRequest>();
  sdk::EncodeSubmitUpdateCall(call, message.get());
  return LaunchMessage<sdk::SubmitUpdateAnswer>(
      impl_, "update of task '" + call.task + "' round " + call.round_id, call.deadline_nanos,
      std::move(done), std::move(failure), std::move(message), &DeliverSubmit);
}

sdk::CallId InProcessTransport::SecureAggregation(sdk::SecureAggregationCall call,
                                                  sdk::SecureAggregationCallback done) {
  Status failure = sdk::ValidateSecureAggregationCall(call);
  auto message = std::make_shared<hybridml::v1::SecureAggregationRequest>();
  sdk::EncodeSecureAggregationCall(call, message.get());
  return LaunchMessage<sdk::SecureAggregationAnswer>(
      impl_, "secure aggregation in task '" + call.task + "' round " + call.round_id,
      call.deadline_nanos, std::move(done), std::move(failure), std::move(message), &DeliverSecure);
}

bool InProcessTransport::Cancel(sdk::CallId id) {
  std::string what;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    auto it = impl_->calls.find(id);
    if (it == impl_->calls.end() || it->second->cancelled) return false;
    it->second->cancelled = true;
    what = it->second->what;
  }
  Schedule(impl_, impl_->clock->NowNanos(), [impl = impl_.get(), id, what] {
    FailNow(*impl, id, CancelledError(what + ": the call was cancelled"), 0,
            /*is_cancellation=*/true);
  });
  return true;
}

}  // namespace hml::sim

// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/sim/in_process_transport.h"

#include <condition_variable>
#include <mutex>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "proto/inference.pb.h"
#include "src/server/protocol/v2_grpc_codec.h"
#include "src/server/protocol/v2_json.h"

namespace hml::sim {

// The SDK's parameters are the protocol's, so converting a tensor is a move.
static_assert(std::is_same_v<sdk::TensorParameters, server::V2Parameters>);

namespace {

// One call from Infer() until its callback ran.
struct Call {
  std::string model;
  int64_t version = 0;
  int64_t deadline_nanos = 0;
  sdk::InferCallback done;
  sdk::CallStats stats;
  bool cancelled = false;  // Cancel() ran: only its own callback may finish the call
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

// Ends call `id` with `result` and runs its callback, unless it already ended (or was cancelled
// and this is not the cancellation). `bytes_received` are added to its stats.
void Finish(Impl& impl, sdk::CallId id, Result<sdk::InferAnswer> result, int64_t bytes_received,
            bool is_cancellation = false) {
  std::unique_ptr<Call> call;
  {
    std::lock_guard<std::mutex> lock(impl.mu);
    auto it = impl.calls.find(id);
    if (it == impl.calls.end() || (it->second->cancelled && !is_cancellation)) return;
    call = std::move(it->second);
    impl.calls.erase(it);
    call->stats.bytes_received += bytes_received;
    call->stats.end_nanos = impl.clock->NowNanos();
    if (result.ok()) {
      ++impl.counters.answered_ok;
    } else {
      ++impl.counters.failed;
    }
  }
  call->done(std::move(result), call->stats);
}

// Fails call `id` with `status` at `due_nanos`.
void FailAt(const std::shared_ptr<Impl>& impl, sdk::CallId id, int64_t due_nanos, Status status) {
  Schedule(impl, due_nanos,
           [impl = impl.get(), id, status = std::move(status)] { Finish(*impl, id, status, 0); });
}

// Sends an answer of `bytes` (already decoded on the device side: `answer`) down the link and
// finishes the call when it arrives, or fails it when the link loses or refuses it.
void SendDown(const std::shared_ptr<Impl>& impl, sdk::CallId id, int64_t bytes,
              Result<sdk::InferAnswer> answer, const std::string& what) {
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
  auto payload = std::make_shared<Result<sdk::InferAnswer>>(std::move(answer));
  Schedule(impl, t.arrive_nanos, [impl = impl.get(), id, bytes, payload] {
    Finish(*impl, id, std::move(*payload), bytes);
  });
}

// An error answer travels as a message of its text's length.
void SendError(const std::shared_ptr<Impl>& impl, sdk::CallId id, Status status,
               const std::string& what) {
  const int64_t bytes =
      static_cast<int64_t>(status.message().size()) + impl->options.per_message_overhead_bytes;
  SendDown(impl, id, bytes, std::move(status), what);
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
  Result<server::V2InferResponse> decoded = server::DecodeModelInferResponse(message);
  if (!decoded.ok()) return SendError(impl, id, decoded.status(), what);
  sdk::InferAnswer answer;
  answer.model_version = std::move(decoded->model_version);
  answer.outputs.reserve(decoded->outputs.size());
  for (server::NamedTensor& t : decoded->outputs) {
    answer.outputs.push_back({std::move(t.name), std::move(t.tensor), std::move(t.parameters)});
  }
  SendDown(impl, id, bytes, std::move(answer), what);
}

// The server side of a request that reached it: what `hybridml serve`'s ModelInfer handler does.
void Deliver(const std::shared_ptr<Impl>& impl, sdk::CallId id,
             const inference::ModelInferRequest& message) {
  int64_t version = 0, deadline = 0;
  {
    std::lock_guard<std::mutex> lock(impl->mu);
    auto it = impl->calls.find(id);
    // Gone (deadline, cancel): a real client would have reset the stream; nothing is computed.
    if (it == impl->calls.end() || it->second->cancelled) return;
    version = it->second->version;
    deadline = it->second->deadline_nanos;
  }
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

}  // namespace

Status InProcessTransportOptions::Validate() const {
  if (backend == nullptr) return InvalidArgumentError("in-process transport: backend is null");
  if (link == nullptr) return InvalidArgumentError("in-process transport: link is null");
  if (timers != nullptr && timers->clock() != link->clock()) {
    return InvalidArgumentError(
        "in-process transport: the timer queue's clock is not the link's clock");
  }
  if (lost_message_timeout_nanos <= 0) {
    return InvalidArgumentError("in-process transport: lost_message_timeout_nanos must be > 0");
  }
  if (per_message_overhead_bytes < 0) {
    return InvalidArgumentError("in-process transport: per_message_overhead_bytes must be >= 0");
  }
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
    call->done(CancelledError("model '" + call->model + "': the transport was destroyed"),
               call->stats);
  }
  // own_timers_ (if any) is destroyed after this body: its pending tasks are dropped unrun.
}

Clock* InProcessTransport::clock() const { return impl_->clock; }

InProcessTransport::Counters InProcessTransport::counters() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->counters;
}

sdk::CallId InProcessTransport::Infer(sdk::InferCall call, sdk::InferCallback done) {
  const int64_t now = impl_->clock->NowNanos();
  auto state = std::make_unique<Call>();
  state->model = call.model;
  state->version = call.version;
  state->deadline_nanos = call.deadline_nanos;
  state->done = std::move(done);
  state->stats.start_nanos = now;
  const std::string what = "model '" + call.model + "'";

  // Everything up to the link is decided before the call becomes visible to Cancel().
  Status failure;
  int64_t fail_at = now;
  std::shared_ptr<inference::ModelInferRequest> message;
  Transmission sent;
  if (Status valid = sdk::ValidateInferCall(call); !valid.ok()) {
    failure = std::move(valid);
  } else if (call.deadline_nanos != 0 && call.deadline_nanos <= now) {
    failure = DeadlineExceededError(what + ": the deadline passed before the call was made");
  } else {
    server::V2InferRequest request;
    request.model_name = call.model;
    if (call.version != 0) request.model_version = std::to_string(call.version);
    request.inputs.reserve(call.inputs.size());
    for (sdk::NamedTensor& t : call.inputs) {
      request.inputs.push_back({std::move(t.name), std::move(t.tensor), std::move(t.parameters)});
    }
    message = std::make_shared<inference::ModelInferRequest>();
    failure =
        server::EncodeModelInferRequest(request, server::V2TensorEncoding::kRaw, message.get());
    if (failure.ok()) {
      const int64_t bytes =
          static_cast<int64_t>(message->ByteSizeLong()) + impl_->options.per_message_overhead_bytes;
      sent = impl_->options.link->Send(Direction::kUplink, bytes);
      if (sent.fate == Transmission::Fate::kRefused) {
        failure = UnavailableError(what + ": the link is down (no network)");
      } else {
        state->stats.bytes_sent = bytes;
        if (sent.fate == Transmission::Fate::kLost) {
          failure = UnavailableError(what + ": the request was lost on the link");
          fail_at = sent.send_nanos + impl_->options.lost_message_timeout_nanos;
        }
      }
    }
  }

  sdk::CallId id = 0;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    id = impl_->next_id++;
    impl_->calls.emplace(id, std::move(state));
    ++impl_->counters.calls;
  }
  if (call.deadline_nanos != 0 && call.deadline_nanos > now) {
    FailAt(impl_, id, call.deadline_nanos,
           DeadlineExceededError(what + ": no answer by the deadline (" +
                                 std::to_string((call.deadline_nanos - now) / 1000) +
                                 " us after the call)"));
  }
  if (!failure.ok()) {
    FailAt(impl_, id, fail_at, std::move(failure));
    return id;
  }
  // A request that would arrive after the deadline is not even scheduled: the deadline task
  // above ends the call and the backend computes nothing (Deliver() would also find the call
  // ended and skip it; the tests remove both gates to see them fail).
  if (call.deadline_nanos != 0 && sent.arrive_nanos > call.deadline_nanos) return id;
  Schedule(impl_, sent.arrive_nanos, [impl = impl_, id, message] { Deliver(impl, id, *message); });
  return id;
}

// Not carried yet: the in-process ingest and telemetry services land next.
sdk::CallId InProcessTransport::Upload(sdk::UploadCall call, sdk::UploadCallback done) {
  const int64_t now = impl_->clock->NowNanos();
  impl_->timers->Schedule(now, [done = std::move(done), now, key = call.idempotency_key] {
    done(UnimplementedError("upload '" + key + "': the in-process transport has no ingest yet"),
         sdk::CallStats{0, 0, now, now});
  });
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->next_id++;
}

sdk::CallId InProcessTransport::ReportTelemetry(sdk::TelemetryCall, sdk::TelemetryCallback done) {
  const int64_t now = impl_->clock->NowNanos();
  impl_->timers->Schedule(now, [done = std::move(done), now] {
    done(UnimplementedError("telemetry: the in-process transport has no telemetry yet"),
         sdk::CallStats{0, 0, now, now});
  });
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->next_id++;
}

bool InProcessTransport::Cancel(sdk::CallId id) {
  std::string model;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    auto it = impl_->calls.find(id);
    if (it == impl_->calls.end() || it->second->cancelled) return false;
    it->second->cancelled = true;
    model = it->second->model;
  }
  Schedule(impl_, impl_->clock->NowNanos(), [impl = impl_.get(), id, model] {
    Finish(*impl, id, CancelledError("model '" + model + "': the call was cancelled"), 0,
           /*is_cancellation=*/true);
  });
  return true;
}

}  // namespace hml::sim

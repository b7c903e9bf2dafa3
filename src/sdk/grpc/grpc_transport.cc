// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// One call, step by step: the typed front (Infer, Upload, ReportTelemetry, JoinRound, SubmitUpdate,
// SecureAggregation)
// validates and encodes the request, then Impl::Start() registers the call under a new id and
// either starts the RPC (a callback-API reactor, TypedCall) or, for a call refused on the device,
// sets a gRPC alarm that fails it at once. Whichever ends the call (the reactor's OnDone, after an
// answer, an error, a TryCancel from Cancel() or the destructor; or the alarm) does so through
// Impl::Finish(), which removes the call from `calls` under the lock: the one that removes it runs
// the callback, so each callback runs exactly once.
#include "src/sdk/grpc/grpc_transport.h"

#include <grpcpp/alarm.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <limits>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include "hml/env.h"
#include "proto/hybridml_device.grpc.pb.h"  // the Enroll stub; protobuf SerializationTraits
#include "proto/inference.pb.h"
#include "src/sdk/grpc/wire.h"

namespace hml::sdk {

namespace {

namespace v1 = ::hybridml::v1;

// How much longer than the connect timeout EnrollDevice() waits for the answer.
constexpr int64_t kEnrollAnswerNanos = 10'000'000'000;

// The one translation of grpc::Status: the codes have the same numbers.
Status FromGrpc(const grpc::Status& status, const std::string& what) {
  if (status.ok()) return Status::Ok();
  return Status(static_cast<StatusCode>(status.error_code()), status.error_message())
      .WithContext(what);
}

std::chrono::system_clock::time_point SystemTimeIn(int64_t nanos) {
  return std::chrono::system_clock::now() +
         std::chrono::duration_cast<std::chrono::system_clock::duration>(
             std::chrono::nanoseconds(nanos));
}

bool IsPortNumber(std::string_view s) {
  if (s.empty() || s.size() > 5) return false;
  int port = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    port = port * 10 + (c - '0');
  }
  return port >= 1 && port <= 65535;
}

// "host:port" with a non-empty host (brackets around an IPv6 literal) and a valid port.
bool IsHostPort(std::string_view target) {
  const size_t colon = target.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  std::string_view host = target.substr(0, colon);
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') return false;
  } else if (host.find(':') != std::string_view::npos) {
    return false;  // an IPv6 literal must be bracketed
  }
  for (char c : host) {
    if (c <= ' ' || c > '~' || c == '/') return false;
  }
  return IsPortNumber(target.substr(colon + 1));
}

// Reads the PEM file of option `field`.
Result<std::string> ReadPem(const std::string& field, const std::string& path) {
  Result<std::string> contents = DefaultEnv()->ReadFile(path);
  if (!contents.ok()) {
    return contents.status().WithContext("grpc transport: " + field + " '" + path + "'");
  }
  if (contents->find("-----BEGIN ") == std::string::npos) {
    return InvalidArgumentError("grpc transport: " + field + " '" + path + "' holds no PEM block");
  }
  return contents;
}

Result<std::shared_ptr<grpc::Channel>> MakeChannel(const GrpcTransportOptions& options) {
  HML_RETURN_IF_ERROR(options.Validate());
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (options.use_tls) {
    grpc::SslCredentialsOptions ssl;
    if (!options.root_ca_file.empty()) {
      HML_ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadPem("root_ca_file", options.root_ca_file));
    }
    if (!options.client_cert_file.empty()) {
      HML_ASSIGN_OR_RETURN(ssl.pem_cert_chain,
                           ReadPem("client_cert_file", options.client_cert_file));
      HML_ASSIGN_OR_RETURN(ssl.pem_private_key,
                           ReadPem("client_key_file", options.client_key_file));
    }
    credentials = grpc::SslCredentials(ssl);
  } else {
    credentials = grpc::InsecureChannelCredentials();
  }
  grpc::ChannelArguments args;
  args.SetMaxSendMessageSize(static_cast<int>(options.max_message_bytes));
  args.SetMaxReceiveMessageSize(static_cast<int>(options.max_message_bytes));
  // gRPC gives a connection attempt until max(its minimum connect timeout, the current reconnect
  // backoff); the first takes its value from GRPC_ARG_MIN_RECONNECT_BACKOFF_MS (at least 100 ms),
  // the second starts at GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS (default 1 s). A timeout below
  // 1 s therefore also shortens the first backoff, or the attempt would last 1 s anyway.
  const int connect_ms = static_cast<int>(std::min<int64_t>(
      (options.connect_timeout_nanos + 999'999) / 1'000'000, std::numeric_limits<int>::max()));
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, connect_ms);
  if (connect_ms < 1000) args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, connect_ms);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
              static_cast<int>(std::min<int64_t>(options.max_reconnect_backoff_nanos / 1'000'000,
                                                 std::numeric_limits<int>::max())));
  return grpc::CreateCustomChannel(options.target, credentials, args);
}

// A call from its start until its callback ran. The typed part (messages, callback, the gRPC
// reactor) lives in TypedCall below.
struct Call {
  virtual ~Call() = default;
  // Starts the RPC on `channel` (with `context` as set up by Impl::Start()).
  virtual void StartRpc(grpc::Channel* channel) = 0;
  // Runs the caller's callback: with `failure` when it is not OK, else with the decoded response.
  virtual void Complete(Status failure, const CallStats& stats) = 0;
  // The response's size on the wire. REQUIRES: a response was read.
  virtual int64_t ResponseBytes() const = 0;

  GrpcTransport::Impl* impl = nullptr;
  CallId id = 0;
  grpc::ClientContext context;
  // Set for a call refused on the device: it fails from this alarm's callback.
  std::unique_ptr<grpc::Alarm> alarm;
  // "model 'm' at host:port", for messages.
  std::string what;
  CallStats stats;
  int64_t request_bytes = 0;
  // Set by the reactions before OnDone() and read after it: the request was written to the
  // connection (gRPC's write completed), the response message was read.
  bool sent = false;
  bool received = false;
  // Guarded by Impl::mu. Cancel() ran (or the destructor): only kCancelled may end the call.
  bool cancelled = false;
  // Guarded by Impl::mu. The RPC was started, so TryCancel() means something.
  bool rpc_started = false;
};

}  // namespace

struct GrpcTransport::Impl {
  GrpcTransportOptions options;
  Clock* clock = nullptr;
  std::shared_ptr<grpc::Channel> channel;

  std::mutex mu;
  std::condition_variable idle;
  // Guarded by mu. `calls` holds every call whose callback has not started; `running` counts the
  // callbacks running now. The destructor waits for both to be empty.
  bool closed = false;
  CallId next_id = 1;
  std::unordered_map<CallId, std::shared_ptr<Call>> calls;
  int running = 0;

  // Registers `call` and starts it: the RPC when `refusal` is OK, else an alarm that fails the
  // call with `refusal` at once (nothing is sent).
  CallId Start(std::shared_ptr<Call> call, Status refusal, int64_t deadline_nanos);

  // Ends call `id`: after the RPC ended with `rpc_status` (`from_rpc`), or with `local` from the
  // alarm. Runs its callback unless the call already ended.
  void Finish(CallId id, const grpc::Status& rpc_status, Status local, bool from_rpc);
};

namespace {

// One RPC of a unary method, driven as a one-message stream (ClientBidiReactor over the method's
// name) rather than with the unary callback API: only the streaming reactor reports when the
// request has been written to the connection (OnWriteDone), which is what CallStats::bytes_sent
// must know. On the wire it is the same HTTP/2 stream as a unary call: one message each way.
template <typename Request, typename Response, typename Answer>
struct TypedCall final : Call, grpc::ClientBidiReactor<Request, Response> {
  using Callback = std::function<void(Result<Answer>, const CallStats&)>;
  using Decode = Result<Answer> (*)(Response&);

  void StartRpc(grpc::Channel* channel) override {
    grpc::TemplatedGenericStub<Request, Response> stub(channel->shared_from_this());
    stub.PrepareBidiStreamingCall(&context, method, grpc::StubOptions(), this);
    this->StartWriteLast(&request, grpc::WriteOptions());
    this->StartRead(&response);
    this->StartCall();
  }
  void OnWriteDone(bool ok) override { sent = ok; }
  void OnReadDone(bool ok) override { received = ok; }
  // The last reaction: the call may be destroyed inside it (Finish drops the last reference).
  void OnDone(const grpc::Status& status) override {
    impl->Finish(id, status, Status::Ok(), /*from_rpc=*/true);
  }

  void Complete(Status failure, const CallStats& final_stats) override {
    if (!failure.ok()) {
      done(std::move(failure), final_stats);
    } else {
      Result<Answer> answer = decode(response);
      done(answer.ok() ? std::move(answer) : Result<Answer>(answer.status().WithContext(what)),
           final_stats);
    }
  }
  int64_t ResponseBytes() const override { return static_cast<int64_t>(response.ByteSizeLong()); }

  // The method's path, e.g. "/inference.GRPCInferenceService/ModelInfer".
  std::string method;
  Request request;
  Response response;
  Decode decode = nullptr;
  Callback done;
};

// Builds the state of one call of `method` and starts it: `encode(request)` fills the request
// (and says whether it could) unless `refusal`, the call's own validation, refuses it already.
template <typename Request, typename Response, typename Answer, typename Encode>
CallId StartTypedCall(GrpcTransport::Impl& impl, std::string method, std::string what,
                      Result<Answer> (*decode)(Response&),
                      std::function<void(Result<Answer>, const CallStats&)> done, Status refusal,
                      int64_t deadline_nanos, Encode encode) {
  auto state = std::make_shared<TypedCall<Request, Response, Answer>>();
  state->method = std::move(method);
  state->what = std::move(what);
  state->decode = decode;
  state->done = std::move(done);
  if (refusal.ok()) {
    refusal = encode(state->request);
    state->request_bytes = static_cast<int64_t>(state->request.ByteSizeLong());
  }
  return impl.Start(std::move(state), std::move(refusal), deadline_nanos);
}

Result<UploadAnswer> DecodeUpload(v1::UploadBatchResponse& response) {
  UploadAnswer answer;
  answer.duplicate = response.duplicate();
  return answer;
}

Result<TelemetryAnswer> DecodeTelemetry(v1::TelemetryAck&) { return TelemetryAnswer{}; }

}  // namespace

CallId GrpcTransport::Impl::Start(std::shared_ptr<Call> call, Status refusal,
                                  int64_t deadline_nanos) {
  const int64_t now = clock->NowNanos();
  call->impl = this;
  call->stats.start_nanos = now;
  if (refusal.ok() && call->request_bytes > options.max_message_bytes) {
    refusal = ResourceExhaustedError(
        call->what + ": the request's " + std::to_string(call->request_bytes) +
        " bytes exceed max_message_bytes " + std::to_string(options.max_message_bytes));
  }
  if (refusal.ok() && deadline_nanos != 0 && deadline_nanos <= now) {
    refusal = DeadlineExceededError(call->what + ": the deadline passed before the call was made");
  }
  if (refusal.ok()) {
    // Everything on the context is set before Cancel() can see the call.
    if (deadline_nanos != 0) call->context.set_deadline(SystemTimeIn(deadline_nanos - now));
    if (!options.device_credential.empty()) {
      call->context.AddMetadata("authorization", "Bearer " + options.device_credential);
    }
  } else {
    call->alarm = std::make_unique<grpc::Alarm>();
  }
  CallId id = 0;
  {
    std::lock_guard<std::mutex> lock(mu);
    id = next_id++;
    call->id = id;
    call->rpc_started = refusal.ok();
    calls.emplace(id, call);
  }
  if (!refusal.ok()) {
    // The alarm fires on a gRPC thread, never inside this function; destroying the call (and the
    // alarm) from its own callback is allowed (gRPC holds its own reference while it runs).
    call->alarm->Set(std::chrono::system_clock::now(),
                     [this, id, refusal = std::move(refusal)](bool) {
                       Finish(id, grpc::Status::OK, refusal, /*from_rpc=*/false);
                     });
    return id;
  }
  // `call` stays referenced here: OnDone may already have run and dropped the map's reference.
  call->StartRpc(channel.get());
  return id;
}

void GrpcTransport::Impl::Finish(CallId id, const grpc::Status& rpc_status, Status local,
                                 bool from_rpc) {
  std::shared_ptr<Call> call;
  Status result;
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = calls.find(id);
    if (it == calls.end()) return;
    call = std::move(it->second);
    calls.erase(it);
    ++running;
  }
  if (from_rpc) {
    if (call->sent) call->stats.bytes_sent = call->request_bytes;
    if (rpc_status.ok()) {
      result = call->received ? Status::Ok()
                              : InternalError(call->what +
                                              ": the server answered OK without a "
                                              "response message");
      if (call->received) call->stats.bytes_received = call->ResponseBytes();
    } else {
      result = FromGrpc(rpc_status, call->what);
      // An error the server sent: its message came over the wire (gRPC's own deadline and
      // cancellation errors, and failures to connect, did not).
      if (call->sent && rpc_status.error_code() != grpc::StatusCode::CANCELLED &&
          rpc_status.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED &&
          rpc_status.error_code() != grpc::StatusCode::UNAVAILABLE) {
        call->stats.bytes_received = static_cast<int64_t>(rpc_status.error_message().size());
      }
    }
  } else {
    result = std::move(local);
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    if (call->cancelled) {
      result = CancelledError(
          call->what + (closed ? ": the transport was destroyed" : ": the call was cancelled"));
    }
  }
  call->stats.end_nanos = clock->NowNanos();
  call->Complete(std::move(result), call->stats);
  call.reset();  // the context and messages go before the destructor may proceed
  std::lock_guard<std::mutex> lock(mu);
  if (--running == 0 && calls.empty()) idle.notify_all();
}

Status GrpcTransportOptions::Validate() const {
  const std::string what = "grpc transport: ";
  if (target.empty()) return InvalidArgumentError(what + "target is empty (want host:port)");
  if (!IsHostPort(target)) {
    return InvalidArgumentError(what + "target '" + target +
                                "' is not host:port (port 1-65535, IPv6 in brackets)");
  }
  if (!use_tls) {
    for (const auto& [field, value] : {std::pair{"root_ca_file", &root_ca_file},
                                       std::pair{"client_cert_file", &client_cert_file},
                                       std::pair{"client_key_file", &client_key_file}}) {
      if (!value->empty()) {
        return InvalidArgumentError(what + field + " is set but use_tls is false");
      }
    }
  }
  if (client_cert_file.empty() != client_key_file.empty()) {
    return InvalidArgumentError(what + (client_cert_file.empty()
                                            ? "client_key_file is set without client_cert_file"
                                            : "client_cert_file is set without client_key_file"));
  }
  for (char c : device_credential) {
    if (c <= ' ' || c > '~') {
      return InvalidArgumentError(what +
                                  "device_credential holds a space or a non-printable character");
    }
  }
  if (max_message_bytes < 1 || max_message_bytes > std::numeric_limits<int32_t>::max()) {
    return InvalidArgumentError(what + "max_message_bytes " + std::to_string(max_message_bytes) +
                                " is outside [1, 2^31 - 1]");
  }
  if (clock == nullptr) return InvalidArgumentError(what + "clock is null");
  if (connect_timeout_nanos <= 0) {
    return InvalidArgumentError(what + "connect_timeout_nanos " +
                                std::to_string(connect_timeout_nanos) + " must be > 0");
  }
  if (max_reconnect_backoff_nanos < 100'000'000) {
    return InvalidArgumentError(what + "max_reconnect_backoff_nanos " +
                                std::to_string(max_reconnect_backoff_nanos) +
                                " is below 100 ms (gRPC's floor)");
  }
  return Status::Ok();
}

Result<std::unique_ptr<GrpcTransport>> GrpcTransport::Create(GrpcTransportOptions options) {
  auto impl = std::make_unique<Impl>();
  HML_ASSIGN_OR_RETURN(impl->channel, MakeChannel(options));
  impl->clock = options.clock;
  impl->options = std::move(options);
  return std::unique_ptr<GrpcTransport>(new GrpcTransport(std::move(impl)));
}

GrpcTransport::GrpcTransport(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

GrpcTransport::~GrpcTransport() {
  std::vector<std::shared_ptr<Call>> started;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->closed = true;
    for (auto& [id, call] : impl_->calls) {
      call->cancelled = true;
      if (call->rpc_started) started.push_back(call);
    }
  }
  // Outside the lock: gRPC may finish a cancelled call on another thread right away, and Finish()
  // takes the lock. The copies keep the contexts alive while they are cancelled.
  for (const std::shared_ptr<Call>& call : started) call->context.TryCancel();
  started.clear();
  std::unique_lock<std::mutex> lock(impl_->mu);
  impl_->idle.wait(lock, [this] { return impl_->calls.empty() && impl_->running == 0; });
}

Clock* GrpcTransport::clock() const { return impl_->clock; }

bool GrpcTransport::Cancel(CallId id) {
  std::shared_ptr<Call> call;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    auto it = impl_->calls.find(id);
    if (it == impl_->calls.end() || it->second->cancelled) return false;
    it->second->cancelled = true;
    if (it->second->rpc_started) call = it->second;
  }
  // A refused call ends from its alarm, which is due now; a started one ends when gRPC has
  // cancelled it (at once, on its thread).
  if (call != nullptr) call->context.TryCancel();
  return true;
}

CallId GrpcTransport::Infer(InferCall call, InferCallback done) {
  return StartTypedCall<inference::ModelInferRequest, inference::ModelInferResponse>(
      *impl_, "/inference.GRPCInferenceService/ModelInfer",
      "model '" + call.model + "' at " + impl_->options.target, &DecodeInferAnswer, std::move(done),
      ValidateInferCall(call), call.deadline_nanos,
      [&](inference::ModelInferRequest& request) { return EncodeInferCall(call, &request); });
}

CallId GrpcTransport::Upload(UploadCall call, UploadCallback done) {
  return StartTypedCall<v1::UploadBatchRequest, v1::UploadBatchResponse>(
      *impl_, "/hybridml.v1.Ingest/UploadBatch",
      "upload '" + call.idempotency_key + "' to " + impl_->options.target, &DecodeUpload,
      std::move(done), ValidateUploadCall(call), call.deadline_nanos,
      [&](v1::UploadBatchRequest& request) {
        EncodeUploadCall(call, &request);
        return Status::Ok();
      });
}

CallId GrpcTransport::ReportTelemetry(TelemetryCall call, TelemetryCallback done) {
  return StartTypedCall<v1::TelemetryReport, v1::TelemetryAck>(
      *impl_, "/hybridml.v1.Telemetry/Report", "telemetry to " + impl_->options.target,
      &DecodeTelemetry, std::move(done), ValidateTelemetryCall(call), call.deadline_nanos,
      [&](v1::TelemetryReport& request) {
        EncodeTelemetryCall(call, &request);
        return Status::Ok();
      });
}

CallId GrpcTransport::JoinRound(JoinRoundCall call, JoinRoundCallback done) {
  return StartTypedCall<v1::JoinRoundRequest, v1::JoinRoundResponse>(
      *impl_, "/hybridml.v1.FederatedLearning/JoinRound",
      "join round of task '" + call.task + "' at " + impl_->options.target, &DecodeJoinRoundAnswer,
      std::move(done), ValidateJoinRoundCall(call), call.deadline_nanos,
      [&](v1::JoinRoundRequest& request) {
        EncodeJoinRoundCall(call, &request);
        return Status::Ok();
      });
}

CallId GrpcTransport::SubmitUpdate(SubmitUpdateCall call, SubmitUpdateCallback done) {
  return StartTypedCall<v1::SubmitUpdateRequest, v1::SubmitUpdateResponse>(
      *impl_, "/hybridml.v1.FederatedLearning/SubmitUpdate",
      "update of task '" + call.task + "' round " + call.round_id + " at " + impl_->options.target,
      &DecodeSubmitUpdateAnswer, std::move(done), ValidateSubmitUpdateCall(call),
      call.deadline_nanos, [&](v1::SubmitUpdateRequest& request) {
        EncodeSubmitUpdateCall(call, &request);
        return Status::Ok();
      });
}

CallId GrpcTransport::SecureAggregation(SecureAggregationCall call,
                                        SecureAggregationCallback done) {
  return StartTypedCall<v1::SecureAggregationRequest, v1::SecureAggregationResponse>(
      *impl_, "/hybridml.v1.FederatedLearning/SecureAggregation",
      "secure aggregation in task '" + call.task + "' round " + call.round_id + " at " +
          impl_->options.target,
      &DecodeSecureAggregationAnswer, std::move(done), ValidateSecureAggregationCall(call),
      call.deadline_nanos, [&](v1::SecureAggregationRequest& request) {
        EncodeSecureAggregationCall(call, &request);
        return Status::Ok();
      });
}

Result<DeviceCredentials> EnrollDevice(const GrpcTransportOptions& options,
                                       std::string_view enrollment_secret,
                                       std::string_view device_name, std::string_view platform) {
  if (enrollment_secret.empty()) {
    return InvalidArgumentError("enroll device: the enrollment secret is empty");
  }
  if (device_name.empty()) return InvalidArgumentError("enroll device: the device name is empty");
  HML_ASSIGN_OR_RETURN(std::shared_ptr<grpc::Channel> channel, MakeChannel(options));
  auto stub = v1::DeviceEnrollment::NewStub(channel);
  v1::EnrollRequest request;
  request.set_enrollment_secret(std::string(enrollment_secret));
  request.set_device_name(std::string(device_name));
  request.set_platform(std::string(platform));
  v1::EnrollResponse response;
  grpc::ClientContext context;
  context.set_deadline(SystemTimeIn(options.connect_timeout_nanos + kEnrollAnswerNanos));
  // A fresh channel is still connecting: wait for it rather than fail at once.
  context.set_wait_for_ready(true);
  HML_RETURN_IF_ERROR(
      FromGrpc(stub->Enroll(&context, request, &response),
               "enroll device '" + std::string(device_name) + "' at " + options.target));
  if (response.device_id().empty() || response.device_credential().empty()) {
    return InternalError("enroll device '" + std::string(device_name) + "' at " + options.target +
                         ": the server's answer has no device id or credential");
  }
  return DeviceCredentials{response.device_id(), response.device_credential()};
}

}  // namespace hml::sdk

// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The gRPC transport of the load generator: `grpc_channels` channels (each its own connection;
// requests go round robin), the v2 service's generated stub and its callback API
// (Stub::async()->ModelInfer). Each Send() allocates one Call (context + response),
// starts the RPC and returns; gRPC's completion thread runs the callback, which records the
// outcome and frees the Call. The request message is encoded once and shared read-only by all
// calls (gRPC only reads it while serializing).
//
// The target owns the calls in flight: its destructor cancels them and waits until each callback
// has run, so no callback outlives the stub it was started on.
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "hml/env.h"
#include "proto/inference.grpc.pb.h"
#include "src/server/loadgen/targets.h"
#include "src/server/protocol/v2_grpc_codec.h"

namespace hml::server::loadgen_internal {
namespace {

// The one translation of grpc::Status: the codes have the same numbers.
Status FromGrpc(const grpc::Status& s, std::string_view what) {
  if (s.ok()) return Status::Ok();
  return Status(static_cast<StatusCode>(s.error_code()), s.error_message()).WithContext(what);
}

std::chrono::system_clock::time_point SystemTimeIn(int64_t nanos) {
  return std::chrono::system_clock::now() +
         std::chrono::duration_cast<std::chrono::system_clock::duration>(
             std::chrono::nanoseconds(nanos));
}

class GrpcTarget final : public LoadTarget {
 public:
  GrpcTarget(const std::vector<std::shared_ptr<grpc::Channel>>& channels,
             const LoadgenOptions& options, Clock* clock)
      : options_(options), clock_(clock) {
    for (const auto& channel : channels) {
      stubs_.push_back(inference::GRPCInferenceService::NewStub(channel));
    }
  }

  ~GrpcTarget() override {
    // Cancelled outside the lock (a cancelled call's callback takes it); the copies keep the
    // calls alive until they are cancelled.
    std::vector<std::shared_ptr<Call>> calls;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& [raw, call] : in_flight_) calls.push_back(call);
    }
    for (const auto& call : calls) call->context.TryCancel();
    calls.clear();
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return in_flight_.empty(); });
  }

  // Reads the model's metadata and encodes the request. The errors of ConnectLoadTarget.
  Status Prepare() {
    grpc::ClientContext context;
    context.set_deadline(SystemTimeIn(options_.connect_timeout_ms * 1'000'000));
    AddCredentials(context);
    inference::ModelMetadataRequest request;
    request.set_name(options_.model);
    if (options_.version > 0) request.set_version(std::to_string(options_.version));
    inference::ModelMetadataResponse metadata;
    grpc::Status s = stubs_[0]->ModelMetadata(&context, request, &metadata);
    if (s.error_code() == grpc::StatusCode::UNAVAILABLE ||
        s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
      return UnavailableError("cannot reach the gRPC server at " + options_.target + ": " +
                              s.error_message());
    }
    HML_RETURN_IF_ERROR(FromGrpc(s, "ModelMetadata of model '" + options_.model + "'"));
    std::vector<TensorSpec> inputs;
    for (const auto& input : metadata.inputs()) {
      TensorSpec spec;
      spec.name = input.name();
      HML_ASSIGN_OR_RETURN(spec.dtype,
                           DTypeFromV2DataType(input.datatype(), "input '" + input.name() + "'"));
      spec.shape.assign(input.shape().begin(), input.shape().end());
      inputs.push_back(std::move(spec));
    }
    HML_ASSIGN_OR_RETURN(V2InferRequest v2, RandomRequest(inputs, options_.batch, options_.seed));
    shape_ = FirstInputShape(v2);
    v2.model_name = options_.model;
    if (options_.version > 0) v2.model_version = std::to_string(options_.version);
    HML_RETURN_IF_ERROR(EncodeModelInferRequest(v2, V2TensorEncoding::kRaw, &request_));
    request_.set_model_name(options_.model);
    if (options_.version > 0) request_.set_model_version(std::to_string(options_.version));
    return Status::Ok();
  }

  void Send(int64_t intended_nanos, DoneFn done) override {
    int64_t remaining_nanos = 0;
    if (options_.timeout_ms > 0) {
      remaining_nanos = intended_nanos + options_.timeout_ms * 1'000'000 - clock_->NowNanos();
      if (remaining_nanos <= 0) {
        done(LoadOutcome::kDeadline, "deadline passed before the request was sent");
        return;
      }
    }
    auto owned = std::make_shared<Call>();
    Call* call = owned.get();
    call->done = std::move(done);
    if (remaining_nanos > 0) call->context.set_deadline(SystemTimeIn(remaining_nanos));
    AddCredentials(call->context);
    {
      std::lock_guard<std::mutex> lock(mu_);
      in_flight_.emplace(call, std::move(owned));
    }
    // Round robin over the connections.
    inference::GRPCInferenceService::Stub& stub = *stubs_[next_stub_++ % stubs_.size()];
    stub.async()->ModelInfer(&call->context, &request_, &call->response,
                             [this, call](grpc::Status status) { Finish(call, status); });
  }

  std::string Describe() const override {
    return "grpc " + options_.target + " model '" + options_.model + "' " + shape_;
  }

 private:
  struct Call {
    grpc::ClientContext context;
    inference::ModelInferResponse response;
    DoneFn done;
  };

  void AddCredentials(grpc::ClientContext& context) const {
    if (!options_.token.empty()) context.AddMetadata("authorization", "Bearer " + options_.token);
  }

  void Finish(Call* call, const grpc::Status& status) {
    switch (status.error_code()) {
      case grpc::StatusCode::OK:
        call->done(LoadOutcome::kOk, {});
        break;
      case grpc::StatusCode::RESOURCE_EXHAUSTED:
        call->done(LoadOutcome::kRejected, status.error_message());
        break;
      case grpc::StatusCode::DEADLINE_EXCEEDED:
        call->done(LoadOutcome::kDeadline, status.error_message());
        break;
      default:
        call->done(LoadOutcome::kError, FromGrpc(status, "ModelInfer").ToString());
        break;
    }
    std::shared_ptr<Call> last;  // freed after the lock is released
    std::lock_guard<std::mutex> lock(mu_);
    auto it = in_flight_.find(call);
    last = std::move(it->second);
    in_flight_.erase(it);
    if (in_flight_.empty()) cv_.notify_all();
  }

  const LoadgenOptions options_;
  Clock* const clock_;
  // One stub per channel (connection).
  std::vector<std::unique_ptr<inference::GRPCInferenceService::Stub>> stubs_;
  std::atomic<size_t> next_stub_{0};
  inference::ModelInferRequest request_;  // encoded once, read-only afterwards
  std::string shape_;

  std::mutex mu_;
  std::condition_variable cv_;
  // Every call started and not yet finished, owning it.
  std::unordered_map<Call*, std::shared_ptr<Call>> in_flight_;  // GUARDED_BY(mu_)
};

}  // namespace

Result<std::unique_ptr<LoadTarget>> ConnectGrpc(const LoadgenOptions& options, Clock* clock) {
  HML_ASSIGN_OR_RETURN(HostPort hp, ParseTarget(options.target));
  if (hp.scheme == "http" || hp.scheme == "https") {
    return InvalidArgumentError("target '" + options.target +
                                "': an http(s):// URL with --protocol grpc; give host:port");
  }
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (!options.ca_cert.empty()) {
    grpc::SslCredentialsOptions ssl;
    HML_ASSIGN_OR_RETURN(ssl.pem_root_certs, DefaultEnv()->ReadFile(options.ca_cert));
    if (!options.client_cert.empty()) {
      HML_ASSIGN_OR_RETURN(ssl.pem_cert_chain, DefaultEnv()->ReadFile(options.client_cert));
      HML_ASSIGN_OR_RETURN(ssl.pem_private_key, DefaultEnv()->ReadFile(options.client_key));
    }
    credentials = grpc::SslCredentials(ssl);
  } else {
    credentials = grpc::InsecureChannelCredentials();
  }
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < options.grpc_channels; ++i) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(64 << 20);
    // Channels with equal arguments share one connection; a distinct argument per channel gives
    // each its own.
    args.SetInt("hml.loadgen.channel", i);
    channels.push_back(
        grpc::CreateCustomChannel(hp.host + ":" + std::to_string(hp.port), credentials, args));
  }
  auto target = std::make_unique<GrpcTarget>(channels, options, clock);
  HML_RETURN_IF_ERROR(target->Prepare());
  return std::unique_ptr<LoadTarget>(std::move(target));
}

}  // namespace hml::server::loadgen_internal

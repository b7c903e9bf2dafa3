// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/server/grpc/grpc_server.h"

#include <grpcpp/grpcpp.h>

#include <charconv>
#include <limits>
#include <string_view>
#include <utility>
#include <vector>

#include "hml/env.h"
#include "proto/inference.grpc.pb.h"
#include "proto/inference.pb.h"
#include "src/server/auth/authenticator.h"
#include "src/server/grpc/grpc_auth.h"
#include "src/server/protocol/v2_grpc_codec.h"
#include "src/server/protocol/v2_json.h"
#include "src/server/tls/certs.h"

namespace hml::server {
namespace {

// The protocol's version string -> the backend's version number ("" = 0 = latest).
Result<int64_t> ParseVersion(std::string_view model, std::string_view version) {
  if (version.empty()) return int64_t{0};
  int64_t value = 0;
  const auto [end, error] = std::from_chars(version.data(), version.data() + version.size(), value);
  if (error != std::errc() || end != version.data() + version.size() || value < 1) {
    return InvalidArgumentError("model '" + std::string(model) + "': version '" +
                                std::string(version) + "' is not a positive integer");
  }
  return value;
}

// The client's deadline on `clock`, as InferRequest::deadline_nanos (0 = none). The remaining
// time is measured on the system clock, which the gRPC deadline is expressed in, and added to
// `clock`'s now, so a jump of the wall clock between the two reads costs at most that jump.
// kDeadlineExceeded naming the model when the deadline has already passed (the request is then
// not submitted at all).
Result<int64_t> DeadlineOnClock(std::chrono::system_clock::time_point deadline, Clock* clock,
                                const std::string& model) {
  if (deadline == std::chrono::system_clock::time_point::max()) return int64_t{0};
  const int64_t remaining = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                deadline - std::chrono::system_clock::now())
                                .count();
  if (remaining <= 0) {
    return DeadlineExceededError("model '" + model +
                                 "': the client's deadline passed before the request was queued");
  }
  const int64_t now = clock->NowNanos();
  if (remaining > std::numeric_limits<int64_t>::max() - now) return int64_t{0};
  return now + remaining;
}

void FillTensorMetadata(const TensorSpec& spec,
                        inference::ModelMetadataResponse::TensorMetadata* out) {
  out->set_name(spec.name);
  out->set_datatype(std::string(V2DataTypeName(spec.dtype)));
  for (int64_t dim : spec.shape) out->add_shape(dim);
}

// Indices into model.outputs of the outputs requested (all when none is named). kInvalidArgument
// naming the model and the output for an unknown name.
Result<std::vector<size_t>> RequestedOutputs(const ServedModel& model,
                                             const std::vector<V2RequestedOutput>& requested) {
  std::vector<size_t> indices;
  if (requested.empty()) {
    for (size_t i = 0; i < model.outputs.size(); ++i) indices.push_back(i);
    return indices;
  }
  for (const V2RequestedOutput& output : requested) {
    size_t i = 0;
    while (i < model.outputs.size() && model.outputs[i].name != output.name) ++i;
    if (i == model.outputs.size()) {
      return InvalidArgumentError("model '" + model.name + "' has no output '" + output.name + "'");
    }
    indices.push_back(i);
  }
  return indices;
}

// Largest PEM file read: certificate chains and CA bundles are a few KiB; Debian's whole system
// bundle is about 200 KiB.
constexpr int64_t kMaxPemBytes = int64_t{1} << 20;

// The listening port's credentials: plain text when no certificate is configured, else TLS from
// the PEM files, requesting client certificates when a client CA is given.
Result<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const GrpcServerOptions& options) {
  if (options.cert_file.empty()) return grpc::InsecureServerCredentials();
  // gRPC's own loader only logs that it failed; this names the file and OpenSSL's reason (the
  // same check as the HTTPS front end), including a key that does not match the certificate.
  if (Status s = CheckPemFiles(options.cert_file, options.key_file, options.client_ca_file);
      !s.ok()) {
    return s.WithContext("gRPC server");
  }
  auto read = [](const std::string& path) -> Result<std::string> {
    Result<std::string> contents = DefaultEnv()->ReadFile(path, kMaxPemBytes);
    if (!contents.ok()) return contents.status().WithContext("gRPC server");
    return contents;
  };
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  HML_ASSIGN_OR_RETURN(pair.cert_chain, read(options.cert_file));
  HML_ASSIGN_OR_RETURN(pair.private_key, read(options.key_file));
  grpc::SslServerCredentialsOptions ssl(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  ssl.pem_key_cert_pairs.push_back(std::move(pair));
  if (!options.client_ca_file.empty()) {
    HML_ASSIGN_OR_RETURN(ssl.pem_root_certs, read(options.client_ca_file));
    ssl.client_certificate_request =
        options.require_client_cert ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                                    : GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(ssl);
}

}  // namespace

Status GrpcServerOptions::Validate() const {
  if (max_receive_message_bytes < 1 ||
      max_receive_message_bytes > std::numeric_limits<int32_t>::max()) {
    return InvalidArgumentError("GrpcServerOptions: max_receive_message_bytes " +
                                std::to_string(max_receive_message_bytes) +
                                " is not in [1, 2^31 - 1]");
  }
  if (clock == nullptr) return InvalidArgumentError("GrpcServerOptions: clock is null");
  if (server_name.empty()) return InvalidArgumentError("GrpcServerOptions: server_name is empty");
  if (cert_file.empty() != key_file.empty()) {
    return InvalidArgumentError(cert_file.empty()
                                    ? "GrpcServerOptions: key_file is set but cert_file is empty"
                                    : "GrpcServerOptions: cert_file is set but key_file is empty");
  }
  if (!client_ca_file.empty() && cert_file.empty()) {
    return InvalidArgumentError(
        "GrpcServerOptions: client_ca_file is set but cert_file and key_file are empty (client "
        "certificates need TLS)");
  }
  for (const grpc::Service* service : extra_services) {
    if (service == nullptr) {
      return InvalidArgumentError("GrpcServerOptions: extra_services has a null entry");
    }
  }
  return Status::Ok();
}

// The v2 service. Every handler returns a reactor; all but ModelInfer finish it at once.
class GrpcServer::Service final : public inference::GRPCInferenceService::CallbackService {
 public:
  Service(InferenceBackend* backend, const GrpcServerOptions* options)
      : backend_(backend), options_(options) {}

  grpc::ServerUnaryReactor* ServerLive(grpc::CallbackServerContext* context,
                                       const inference::ServerLiveRequest* /*request*/,
                                       inference::ServerLiveResponse* response) override {
    response->set_live(true);
    return FinishNow(context, grpc::Status::OK);
  }

  grpc::ServerUnaryReactor* ServerReady(grpc::CallbackServerContext* context,
                                        const inference::ServerReadyRequest* /*request*/,
                                        inference::ServerReadyResponse* response) override {
    response->set_ready(backend_->Ready());
    return FinishNow(context, grpc::Status::OK);
  }

  // An unknown model or version is "not ready" rather than an error, as Triton answers.
  grpc::ServerUnaryReactor* ModelReady(grpc::CallbackServerContext* context,
                                       const inference::ModelReadyRequest* request,
                                       inference::ModelReadyResponse* response) override {
    if (Status caller = CheckCaller(*context); !caller.ok()) {
      return FinishNow(context, ToGrpcStatus(caller));
    }
    Result<int64_t> version = ParseVersion(request->name(), request->version());
    if (!version.ok()) return FinishNow(context, ToGrpcStatus(version.status()));
    response->set_ready(backend_->GetModel(request->name(), *version).ok());
    return FinishNow(context, grpc::Status::OK);
  }

  grpc::ServerUnaryReactor* ServerMetadata(grpc::CallbackServerContext* context,
                                           const inference::ServerMetadataRequest* /*request*/,
                                           inference::ServerMetadataResponse* response) override {
    if (Status caller = CheckCaller(*context); !caller.ok()) {
      return FinishNow(context, ToGrpcStatus(caller));
    }
    response->set_name(options_->server_name);
    response->set_version(options_->server_version);
    return FinishNow(context, grpc::Status::OK);
  }

  grpc::ServerUnaryReactor* ModelMetadata(grpc::CallbackServerContext* context,
                                          const inference::ModelMetadataRequest* request,
                                          inference::ModelMetadataResponse* response) override {
    if (Status caller = CheckCaller(*context); !caller.ok()) {
      return FinishNow(context, ToGrpcStatus(caller));
    }
    Result<int64_t> version = ParseVersion(request->name(), request->version());
    if (!version.ok()) return FinishNow(context, ToGrpcStatus(version.status()));
    Result<ServedModel> model = backend_->GetModel(request->name(), *version);
    if (!model.ok()) return FinishNow(context, ToGrpcStatus(model.status()));
    response->set_name(model->name);
    for (int64_t v : model->versions) response->add_versions(std::to_string(v));
    response->set_platform(options_->platform);
    for (const TensorSpec& spec : model->inputs) FillTensorMetadata(spec, response->add_inputs());
    for (const TensorSpec& spec : model->outputs) {
      FillTensorMetadata(spec, response->add_outputs());
    }
    return FinishNow(context, grpc::Status::OK);
  }

  // Decodes and submits; the backend's `done` encodes the response and finishes the call. gRPC
  // keeps `request`, `response` and `context` alive until the reactor is finished.
  grpc::ServerUnaryReactor* ModelInfer(grpc::CallbackServerContext* context,
                                       const inference::ModelInferRequest* request,
                                       inference::ModelInferResponse* response) override {
    if (Status caller = CheckCaller(*context); !caller.ok()) {
      return FinishNow(context, ToGrpcStatus(caller));
    }
    // Overload is refused before the tensors are decoded (a bad version is reported below).
    if (Result<int64_t> v = ParseVersion(request->model_name(), request->model_version());
        v.ok()) {
      SubmitResult admitted =
          backend_->CheckAdmission(request->model_name(), *v, ServingProtocol::kGrpc);
      if (!admitted.ok()) return FinishRefused(context, context->DefaultReactor(), admitted);
    }
    Result<V2InferRequest> decoded = DecodeModelInferRequest(*request);
    if (!decoded.ok()) return FinishNow(context, ToGrpcStatus(decoded.status()));
    Result<int64_t> version = ParseVersion(decoded->model_name, decoded->model_version);
    if (!version.ok()) return FinishNow(context, ToGrpcStatus(version.status()));
    Result<ServedModel> model = backend_->GetModel(decoded->model_name, *version);
    if (!model.ok()) return FinishNow(context, ToGrpcStatus(model.status()));
    Result<std::vector<size_t>> outputs = RequestedOutputs(*model, decoded->outputs);
    if (!outputs.ok()) return FinishNow(context, ToGrpcStatus(outputs.status()));

    Result<int64_t> deadline = DeadlineOnClock(context->deadline(), options_->clock, model->name);
    if (!deadline.ok()) return FinishNow(context, ToGrpcStatus(deadline.status()));

    const std::string name = model->name;
    const int64_t served_version = model->version;
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    // The backend matches the input names to the model (its inputs, or a cut for split
    // inference).
    NamedInferRequest infer;
    infer.inputs = std::move(decoded->inputs);
    infer.deadline_nanos = *deadline;
    // The served model's identity is fixed now: the response names the version that accepted
    // the request even if a newer one is loaded meanwhile.
    infer.done = [reactor, context, response, served = std::move(*model),
                  output_indices = std::move(*outputs),
                  id = decoded->id](Result<std::vector<Tensor>> result) {
      if (!result.ok()) {
        reactor->Finish(ToGrpcStatus(result.status()));
        return;
      }
      // A cancelled call's response is dropped by gRPC: skip encoding it.
      if (context->IsCancelled()) {
        reactor->Finish(grpc::Status::CANCELLED);
        return;
      }
      std::vector<NamedTensor> named;
      named.reserve(output_indices.size());
      for (size_t i : output_indices) {
        if (i >= result->size()) {
          reactor->Finish(ToGrpcStatus(InternalError(
              "model '" + served.name + "': backend returned " + std::to_string(result->size()) +
              " outputs, expected " + std::to_string(served.outputs.size()))));
          return;
        }
        named.push_back({served.outputs[i].name, std::move((*result)[i])});
      }
      Status encoded = EncodeModelInferResponse(served.name, std::to_string(served.version), id,
                                                named, response);
      reactor->Finish(ToGrpcStatus(encoded));
    };
    SubmitResult submitted =
        backend_->Infer(name, served_version, ServingProtocol::kGrpc, std::move(infer));
    // Refused: `done` will not be called, so the call is finished here.
    if (!submitted.ok()) return FinishRefused(context, reactor, submitted);
    return reactor;
  }

 private:
  // With an authenticator: kUnauthenticated unless the call carries a valid admin key or device
  // credential. Any of them may use every model: models are not per-tenant data.
  Status CheckCaller(const grpc::CallbackServerContext& context) const {
    if (options_->authenticator == nullptr) return Status::Ok();
    return AuthenticateCall(*options_->authenticator, context).status();
  }

  // Finishes a call the backend refused, with `retry-after-ms` (rounded up) for overload.
  static grpc::ServerUnaryReactor* FinishRefused(grpc::CallbackServerContext* context,
                                                 grpc::ServerUnaryReactor* reactor,
                                                 const SubmitResult& refused) {
    if (refused.retry_after_micros > 0) {
      const int64_t ms = (refused.retry_after_micros + 999) / 1000;
      context->AddTrailingMetadata("retry-after-ms", std::to_string(ms));
    }
    reactor->Finish(ToGrpcStatus(refused.status));
    return reactor;
  }

  static grpc::ServerUnaryReactor* FinishNow(grpc::CallbackServerContext* context,
                                             const grpc::Status& status) {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(status);
    return reactor;
  }

  InferenceBackend* const backend_;
  const GrpcServerOptions* const options_;
};

GrpcServer::GrpcServer(InferenceBackend* backend, GrpcServerOptions options)
    : backend_(backend), options_(std::move(options)) {}

GrpcServer::~GrpcServer() {
  if (server_ != nullptr) Shutdown(std::chrono::system_clock::now());
}

Result<int> GrpcServer::Start(const std::string& address) {
  HML_RETURN_IF_ERROR(options_.Validate());
  if (server_ != nullptr) {
    return FailedPreconditionError("gRPC server: already started on port " + std::to_string(port_));
  }
  // The PEM files are checked before anything is bound, so a bad path fails fast and clearly
  // instead of as a handshake failure on every call.
  HML_ASSIGN_OR_RETURN(std::shared_ptr<grpc::ServerCredentials> credentials,
                       MakeServerCredentials(options_));
  service_ = std::make_unique<Service>(backend_, &options_);
  grpc::ServerBuilder builder;
  int selected_port = 0;
  builder.AddListeningPort(address, credentials, &selected_port);
  builder.SetMaxReceiveMessageSize(static_cast<int>(options_.max_receive_message_bytes));
  builder.RegisterService(service_.get());
  for (grpc::Service* service : options_.extra_services) builder.RegisterService(service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || selected_port == 0) {
    if (server != nullptr) server->Shutdown(std::chrono::system_clock::now());
    return UnavailableError("gRPC server: cannot listen on '" + address +
                            "' (address in use, malformed, or not local)");
  }
  server_ = std::move(server);
  port_ = selected_port;
  return port_;
}

void GrpcServer::Shutdown(std::chrono::system_clock::time_point deadline) {
  if (server_ == nullptr || shut_down_) return;
  shut_down_ = true;
  server_->Shutdown(deadline);
  server_->Wait();
}

}  // namespace hml::server

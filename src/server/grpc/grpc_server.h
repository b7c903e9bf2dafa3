// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The gRPC front end: the Open Inference Protocol v2 service (inference.GRPCInferenceService:
// ServerLive, ServerReady, ModelReady, ServerMetadata, ModelMetadata, ModelInfer) served over an
// InferenceBackend.
//
// It uses gRPC's callback API, so no thread is held while a request waits in a batcher:
// ModelInfer decodes the message, submits it to the backend and returns; the batcher's `done`
// callback encodes the response and finishes the call from the batcher's worker thread.
//
// Status mapping: hml::StatusCode has gRPC's numbers, so a backend error becomes the gRPC status
// of the same code with the same message (kNotFound -> NOT_FOUND, kInvalidArgument ->
// INVALID_ARGUMENT, kDeadlineExceeded -> DEADLINE_EXCEEDED, ...). A full queue becomes
// RESOURCE_EXHAUSTED with the trailing metadata `retry-after-ms` (decimal milliseconds, rounded
// up), so that clients can back off without parsing the message.
//
// Deadlines: the client's deadline (ServerContext::deadline(), system time) is converted to the
// batchers' clock as "now on that clock + time remaining", and becomes
// InferRequest::deadline_nanos, so work whose deadline passes in the queue is never computed.
//
// Cancellation: a cancelled call is still finished exactly once, when the backend calls `done`
// (the backend promises one call for every accepted request), so nothing leaks; the result is
// then dropped by gRPC.
//
// Transport: TLS when GrpcServerOptions::cert_file and key_file are set, optionally with client
// certificates verified against client_ca_file (mutual TLS, for devices). With none of the three
// set the server speaks plain text and must only listen on trusted networks; `hybridml serve`
// asks for an explicit --insecure flag for that. The PEM files are read once, in Start().
//
// Authentication: with GrpcServerOptions::authenticator set, ServerMetadata, ModelReady,
// ModelMetadata and ModelInfer first authenticate the call's `authorization: Bearer <token>`
// metadata (an admin key or a device credential; src/server/auth/authenticator.h) and answer
// UNAUTHENTICATED before touching the backend. ServerLive and ServerReady stay open: load
// balancers and orchestrators probe them without credentials, and they reveal only that the
// process is up. With no authenticator every call is open; `hybridml serve` sets one unless it
// is given --no-auth.
//
// Other services: GrpcServerOptions::extra_services are registered on the same server and port
// (hybridml serve adds the device services of src/server/grpc/device_services.h), so this
// class knows nothing of what they serve.
//
// Thread safety: Start() and Shutdown() are called from one thread; the service's handlers run
// on gRPC's threads and on the backend's worker threads concurrently.
#ifndef HML_SRC_SERVER_GRPC_GRPC_SERVER_H_
#define HML_SRC_SERVER_GRPC_GRPC_SERVER_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "hml/clock.h"
#include "hml/status.h"
#include "src/server/serving/inference_backend.h"

namespace grpc {
class Server;
class Service;
}  // namespace grpc

namespace hml::server {

class Authenticator;

struct GrpcServerOptions {
  // Largest request message accepted. gRPC checks the declared message length before reading
  // the message and refuses larger ones with RESOURCE_EXHAUSTED. Default: 64 MiB.
  int64_t max_receive_message_bytes = int64_t{64} << 20;
  // The clock of the backend's batchers: client deadlines are converted onto it.
  // Default: RealClock().
  Clock* clock = RealClock();
  // What ServerMetadata reports. Default: "hybridml", "0.1.0".
  std::string server_name = "hybridml";
  std::string server_version = "0.1.0";
  // What ModelMetadata reports as the platform. Default: "hybridml_onnx".
  std::string platform = "hybridml_onnx";

  // TLS. Paths of PEM files: the server's certificate chain (leaf first) and its private key. Both
  // empty = plain text; one without the other is an error. Default: "" (plain text).
  std::string cert_file;
  std::string key_file;
  // PEM file of the CA certificates that client certificates must chain to. Empty = clients are
  // not asked for a certificate. Requires cert_file and key_file. Default: "".
  std::string client_ca_file;
  // With client_ca_file: true = a client without a valid certificate is refused in the handshake
  // (mutual TLS); false = a certificate is requested and verified if the client sends one, but a
  // client without one is let in. Default: true.
  bool require_client_cert = true;

  // Checks the credential of every inference call but ServerLive/ServerReady (see above). Must
  // outlive the server. Default: nullptr (no authentication: every call is open).
  const Authenticator* authenticator = nullptr;
  // More services served on the same port, e.g. DeviceServices::services(). Not owned; each must
  // outlive the server and must not be the inference service. Default: none.
  std::vector<grpc::Service*> extra_services;

  // kInvalidArgument naming the field: max_receive_message_bytes in [1, 2 GiB - 1], a non-null
  // clock, a non-empty server_name, cert_file and key_file both set or both empty, client_ca_file
  // only together with them, no null entry in extra_services.
  Status Validate() const;
};

// Owns a grpc::Server serving the v2 inference service over `backend`.
class GrpcServer {
 public:
  // `backend` must outlive the server (until Shutdown() returned or the destructor ran).
  GrpcServer(InferenceBackend* backend, GrpcServerOptions options = {});
  // Shuts down with an immediate deadline if Start() succeeded and Shutdown() was not called:
  // in-flight calls are cancelled. Like Shutdown(), it returns only once the backend has
  // answered every request it accepted (gRPC waits for every call to be finished).
  ~GrpcServer();
  GrpcServer(const GrpcServer&) = delete;
  GrpcServer& operator=(const GrpcServer&) = delete;

  // Listens on `address` ("host:port"; port 0 picks a free port) and starts serving. Returns the
  // port actually bound. Errors: the options' Validate() error; kFailedPrecondition when already
  // started; for TLS, CheckPemFiles' errors (src/server/tls/certs.h: kNotFound for a missing
  // file, kInvalidArgument naming the file for one without the expected PEM block or a key that
  // does not match the certificate), prefixed "gRPC server" and checked before binding;
  // kUnavailable naming the address when it cannot be bound or the server cannot start.
  // REQUIRES: called at most once successfully.
  Result<int> Start(const std::string& address);

  // Graceful stop: refuses new calls at once and lets in-flight calls complete normally until
  // `deadline`; calls still running then are cancelled on the wire. Returns once every call has
  // been finished, which for an accepted ModelInfer means the backend has answered it (the
  // batcher always does: it drains, it never drops), and gRPC's threads have stopped.
  // Idempotent.
  void Shutdown(std::chrono::system_clock::time_point deadline);

  // The port Start() bound; 0 before.
  int port() const { return port_; }

 private:
  class Service;

  InferenceBackend* const backend_;
  const GrpcServerOptions options_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  bool shut_down_ = false;
};

}  // namespace hml::server

#endif  // HML_SRC_SERVER_GRPC_GRPC_SERVER_H_

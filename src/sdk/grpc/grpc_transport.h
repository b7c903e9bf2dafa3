// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// GrpcTransport: the device's real network Transport (src/sdk/transport.h), over gRPC to
// `hybridml serve`. It is the wire twin of the in-process transport (src/sim/
// in_process_transport.h): the same messages, the same byte counts, the same errors.
//
//   Infer()            inference.GRPCInferenceService/ModelInfer (Open Inference Protocol v2):
//                      inputs as raw_input_contents, each tensor's parameters (scale/zero_point of
//                      an INT8/UINT8 cut tensor) as InferInputTensor parameters, model_version
//                      when InferCall::version != 0; outputs decoded by name; the answer's
//                      model_version is the server's.
//   Upload()           hybridml.v1.Ingest/UploadBatch, after ValidateUploadCall.
//   ReportTelemetry()  hybridml.v1.Telemetry/Report, after ValidateTelemetryCall.
//   JoinRound()        hybridml.v1.FederatedLearning/JoinRound, after ValidateJoinRoundCall;
//                      the answer's model version string becomes a number (wire.h).
//   SubmitUpdate()     hybridml.v1.FederatedLearning/SubmitUpdate, after
//                      ValidateSubmitUpdateCall.
//   Cancel()           grpc::ClientContext::TryCancel; the callback runs with kCancelled.
// and, for the one-time setup, EnrollDevice() (hybridml.v1.DeviceEnrollment/Enroll) turns the
// fleet's enrollment secret into this device's credential.
//
// Every call carries `authorization: Bearer <device_credential>` metadata (none when the
// credential is empty, e.g. for a server run with --no-auth). A deadline becomes the gRPC
// deadline, so the server drops work whose caller has gone, and gRPC ends the call with
// kDeadlineExceeded when it passes. gRPC status codes become hml::StatusCode of the same number,
// the message prefixed with what the call was ("model 'm' at host:port: ...").
//
// Calls are refused on the device, costing no radio, when the call is malformed (the
// Validate*Call functions: kInvalidArgument) or its deadline has already passed
// (kDeadlineExceeded); their callbacks run from a gRPC alarm, never inside the starting call.
//
// CallStats: bytes_sent is the serialized request's size (ByteSizeLong, the protobuf payload,
// without gRPC's framing, HTTP/2 or TLS) once gRPC has written it to a connection, for calls that
// then fail or are cancelled too. A call that never reached a connection (server down, handshake
// refused: kUnavailable) or was refused on the device sent 0; so, by a race, does a call cancelled
// or timed out between its bytes leaving and gRPC confirming the write. To learn when the write
// happened, each unary RPC is driven as a one-message stream (a ClientBidiReactor, whose
// OnWriteDone reports it); on the wire it is the same HTTP/2 stream as a unary call.
// bytes_received is the response's ByteSizeLong for an answer, the status message's length for an
// error the server sent, 0 otherwise. start/end_nanos are on options.clock.
//
// Threads: the gRPC callback API. Infer(), Upload(), ReportTelemetry(), JoinRound() and
// SubmitUpdate() start the RPC and return; the callback runs exactly once on one of gRPC's threads.
// Callbacks of different calls may run concurrently. Thread-safe. The destructor cancels every
// pending call, waits until each callback has run (with kCancelled unless its answer was already
// being delivered) and returns; no callback of this transport runs afterwards. Do not destroy the
// transport from its callback.
//
// Footprint: this target (hml_sdk_grpc) links gRPC++; hml_sdk does not. Applications that talk
// to a server link hml_sdk_grpc; those that only run models locally link hml_sdk alone.
#ifndef HML_SRC_SDK_GRPC_GRPC_TRANSPORT_H_
#define HML_SRC_SDK_GRPC_GRPC_TRANSPORT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "hml/clock.h"
#include "hml/status.h"
#include "src/sdk/transport.h"

namespace hml::sdk {

struct GrpcTransportOptions {
  // The server's gRPC port, "host:port" (a name, an IPv4 literal or a bracketed IPv6 literal;
  // port 1-65535). Required. Default: "".
  std::string target;

  // TLS. true: the server must present a certificate that chains to root_ca_file (or to gRPC's
  // default roots when root_ca_file is empty) and names `target`'s host. false: plain text, only
  // for trusted networks and tests (`hybridml serve --insecure`). Default: true.
  bool use_tls = true;
  // PEM file of the CA certificates trusted for the server. Requires use_tls. Default: "" (gRPC's
  // default roots).
  std::string root_ca_file;
  // PEM files of the device's client certificate chain and its private key, for a server that
  // asks for mutual TLS. Both or neither; require use_tls. Read once, in Create(). Default: "".
  std::string client_cert_file;
  std::string client_key_file;

  // The device credential from EnrollDevice(), sent as `authorization: Bearer <credential>` on
  // every call; printable ASCII without spaces. Empty = no authorization metadata. Default: "".
  std::string device_credential;

  // Largest message sent or received; larger requests fail kResourceExhausted on the device,
  // larger responses when they arrive. In [1, 2^31 - 1]. Default: 64 MiB (the server's limit).
  int64_t max_message_bytes = int64_t{64} << 20;
  // The clock of InferCall::deadline_nanos and CallStats. Must outlive the transport.
  // Default: RealClock().
  Clock* clock = RealClock();
  // How long one attempt to connect (TCP and TLS handshake) may take before it counts as failed
  // and the calls waiting on it fail kUnavailable (gRPC's minimum connect timeout; gRPC waits at
  // least 100 ms, and a value below 1 s also shortens gRPC's first reconnect backoff to it).
  // Calls do not wait for a connection that is known to be down: they fail kUnavailable at once,
  // and the transport reconnects with gRPC's backoff. > 0. Default: 5 s.
  int64_t connect_timeout_nanos = 5'000'000'000;
  // Longest wait between two reconnection attempts while the server is unreachable (gRPC's
  // backoff grows 1.6x per failed attempt up to this). It bounds how long after a server comes
  // back the device keeps failing fast with kUnavailable. >= connect_timeout_nanos's first
  // backoff. Default: 10 s (gRPC's own default is 120 s, too long for a phone in front of a user).
  int64_t max_reconnect_backoff_nanos = 10'000'000'000;

  // kInvalidArgument naming the field: an empty or malformed target, TLS files without use_tls,
  // a client certificate without its key (or the reverse), a credential with spaces or control
  // characters, max_message_bytes out of range, a null clock, connect_timeout_nanos <= 0,
  // max_reconnect_backoff_nanos < 100 ms.
  Status Validate() const;
};

class GrpcTransport final : public Transport {
 public:
  // Validates the options, reads the TLS files and creates the channel (it connects lazily, on
  // the first call). Errors: Validate()'s; kNotFound / the file system's error naming the field
  // and path for a TLS file that cannot be read; kInvalidArgument for one without a PEM block.
  static Result<std::unique_ptr<GrpcTransport>> Create(GrpcTransportOptions options);
  ~GrpcTransport() override;
  GrpcTransport(const GrpcTransport&) = delete;
  GrpcTransport& operator=(const GrpcTransport&) = delete;

  CallId Infer(InferCall call, InferCallback done) override;
  CallId Upload(UploadCall call, UploadCallback done) override;
  CallId ReportTelemetry(TelemetryCall call, TelemetryCallback done) override;
  CallId JoinRound(JoinRoundCall call, JoinRoundCallback done) override;
  CallId SubmitUpdate(SubmitUpdateCall call, SubmitUpdateCallback done) override;
  CallId SecureAggregation(SecureAggregationCall call, SecureAggregationCallback done) override;
  bool Cancel(CallId id) override;
  Clock* clock() const override;

  struct Impl;  // shared with the calls in flight; public only so the .cc's helpers can name it

 private:
  explicit GrpcTransport(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// What enrollment gives the device: its identity and its bearer credential. The credential is a
// secret: store it in the platform keystore, never in logs.
struct DeviceCredentials {
  std::string device_id;
  std::string credential;
};

// Enrolls this device (hybridml.v1.DeviceEnrollment/Enroll) with the fleet's enrollment secret,
// over the channel `options` describe (options.device_credential is not used: the secret is the
// proof). Blocks until the server answers, at most options.connect_timeout_nanos + 10 s.
// Errors: options.Validate()'s and Create()'s file errors; kInvalidArgument for an empty secret
// or device name; the server's (kUnauthenticated for a wrong or revoked secret) and the
// network's (kUnavailable, kDeadlineExceeded), with the target in the message.
Result<DeviceCredentials> EnrollDevice(const GrpcTransportOptions& options,
                                       std::string_view enrollment_secret,
                                       std::string_view device_name, std::string_view platform);

}  // namespace hml::sdk

#endif  // HML_SRC_SDK_GRPC_GRPC_TRANSPORT_H_

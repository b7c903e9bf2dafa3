// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Transport: the one seam through which the device SDK talks to the cloud (issue 6). The router,
// the uploader and the telemetry reporter call a Transport; they never open sockets themselves.
// Two kinds of implementation stand behind it:
//   - the real one (gRPC / HTTP to `hybridml serve`, Open Inference Protocol v2), and
//   - the in-process one (src/sim/in_process_transport.h) for tests and the fleet simulator: it
//     hands requests to an InferenceBackend in the same process through an emulated link (RTT,
//     bandwidth, loss, outages; src/sim/link.h), counting the bytes the real wire would carry.
// The SDK depends only on this header, so the same router code runs against both.
//
// Calls are asynchronous: Infer() returns a CallId at once and the callback runs later, exactly
// once, on a thread of the transport (never inside Infer() itself, so a caller may hold its own
// lock while starting a call). Cancel() exists for hedging (the losing request of two is
// cancelled) and for callers that give up.
//
// Every answer carries CallStats: the bytes sent and received on the wire for this call and the
// times it started and finished. Telemetry reports them, and the energy estimate multiplies them
// by the radio's joules per byte, so they count what the radio really moved, failures included.
//
// Five kinds of call share that shape: Infer() (one remote inference), Upload() (one sealed
// data batch for the ingest service, with its idempotency key), ReportTelemetry() (one batch of
// device measurements), and the federated-learning exchange (issue 7): JoinRound() (ask for a
// round of a federated task) and SubmitUpdate() (send the sealed model update trained for it).
// Each takes a plain request struct and answers through a callback with Result<answer> and
// CallStats, exactly once, on a transport thread; each returns a CallId that Cancel() accepts.
//
// This header is part of the device target (hml_sdk): it must not include server headers. Its
// NamedTensor mirrors the server's protocol model (src/server/protocol/v2_json.h) field for
// field, so the conversion between them is a move.
#ifndef HML_SRC_SDK_TRANSPORT_H_
#define HML_SRC_SDK_TRANSPORT_H_

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "hml/clock.h"
#include "hml/runtime/tensor.h"
#include "hml/status.h"

namespace hml::sdk {

// A per-tensor parameter as the v2 protocol carries it (InferParameter: bool, int64, uint64,
// double, string). The same variant as the server's V2Parameter.
using TensorParameter = std::variant<bool, int64_t, uint64_t, double, std::string>;
using TensorParameters = std::map<std::string, TensorParameter>;

// Names of the parameters that describe an INT8/UINT8 cut tensor standing for FP32 data
// (split inference): x = scale * (q - zero_point). The server dequantizes with them.
inline constexpr char kScaleParameter[] = "scale";
inline constexpr char kZeroPointParameter[] = "zero_point";

// A tensor with the name it has on the wire: a model input or output, or, for a split request,
// an intermediate tensor of the model (a cut), with its per-tensor parameters (scale and
// zero_point for INT8/UINT8 cut tensors, nothing otherwise).
struct NamedTensor {
  std::string name;
  Tensor tensor;
  TensorParameters parameters = {};
};

// One remote inference.
struct InferCall {
  // The model's name in the registry. Required.
  std::string model;
  // The registry version; 0 = the latest the server has loaded. Default: 0.
  int64_t version = 0;
  // Unique, non-empty names; dimension 0 of each tensor is its number of samples. Either the
  // model's inputs or the tensors of a complete cut (split inference). Each tensor owns its
  // buffer (the transport may move it into the request).
  std::vector<NamedTensor> inputs;
  // Transport::clock()->NowNanos() after which the answer is useless; 0 = none. The transport
  // answers kDeadlineExceeded at the deadline if no answer has arrived by then, and forwards the
  // deadline to the server so that it does not compute for a caller that has gone. Default: 0.
  int64_t deadline_nanos = 0;
};

// What came back: the model's outputs in the model's output order, by name.
struct InferAnswer {
  std::vector<NamedTensor> outputs;
  // The version that answered, as the server reported it ("" when it did not say).
  std::string model_version;
};

// The cost of one call on the wire. Counted for failed calls too: bytes the radio sent before a
// loss or timeout were spent all the same.
struct CallStats {
  // Bytes of the request as encoded for the wire (the v2 protobuf message), counted once the
  // request left the device; 0 when it never did (refused before sending, or the device knew it
  // was offline).
  int64_t bytes_sent = 0;
  // Bytes of the response that reached the device; 0 when none did.
  int64_t bytes_received = 0;
  // Transport::clock() times at which Infer() was called and the callback was made.
  int64_t start_nanos = 0;
  int64_t end_nanos = 0;
};

// The callback of Infer(): the answer or why there is none, and the call's cost. Errors:
//   kInvalidArgument  the call is malformed (ValidateInferCall) or the server refused its inputs
//   kNotFound         the server does not have the model or version
//   kUnavailable      the network is down or the message was lost, or the server is draining
//   kDeadlineExceeded no answer by InferCall::deadline_nanos
//   kCancelled        Cancel() was called, or the transport was destroyed first
//   kResourceExhausted the server refused for overload
// and any error the server's model returned.
using InferCallback = std::function<void(Result<InferAnswer> answer, const CallStats& stats)>;

// One sealed data batch for the ingest service (Ingest.UploadBatch).
struct UploadCall {
  // Chosen by the device per batch and reused by every retry of that batch, so that the server
  // stores it once: 1-128 characters of [A-Za-z0-9._:-]. Required.
  std::string idempotency_key;
  // The batch as the device sealed it (opaque bytes here; the format is the uploader's).
  // Required, non-empty.
  std::string sealed_batch;
  // Samples in the batch, for the server's quotas and metrics before it is opened. Default: 0.
  uint32_t sample_count = 0;
  // As InferCall::deadline_nanos. Default: 0 (none).
  int64_t deadline_nanos = 0;
};

struct UploadAnswer {
  // True when the server had already stored this idempotency key (this call was a retry).
  bool duplicate = false;
};

using UploadCallback = std::function<void(Result<UploadAnswer> answer, const CallStats& stats)>;

// One measurement as the telemetry service receives it: a Prometheus-style series. Histograms
// travel as their series (name_bucket with an "le" label, name_sum, name_count), counters and
// gauges as one value each.
struct TelemetryMeasurement {
  std::string name;
  double value = 0;
  std::map<std::string, std::string> labels;
};

// One batch of device measurements (Telemetry.Report).
struct TelemetryCall {
  // Device wall clock when the batch was cut, milliseconds since the Unix epoch. Default: 0.
  int64_t timestamp_ms = 0;
  // At least one. Required.
  std::vector<TelemetryMeasurement> measurements;
  // As InferCall::deadline_nanos. Default: 0 (none).
  int64_t deadline_nanos = 0;
};

// The telemetry service answers with an acknowledgement only.
struct TelemetryAnswer {};

using TelemetryCallback =
    std::function<void(Result<TelemetryAnswer> answer, const CallStats& stats)>;

// Asks the federated-learning service for a round of one task (FederatedLearning.JoinRound).
struct JoinRoundCall {
  // The federated task the device takes part in, as the server names it. Required, non-empty.
  std::string task;
  // As InferCall::deadline_nanos. Default: 0 (none).
  int64_t deadline_nanos = 0;
};

// The server's answer to JoinRound.
struct JoinRoundAnswer {
  // The round this device was selected for; empty = no round for this device now (none open,
  // or it was not selected and waits in the pool for the next one): ask again later.
  // Default: "".
  std::string round_id;
  // The global model version to start local training from (fetched over the air like any model
  // version); the task's current version, also when there is no round. Default: 0.
  int64_t model_version = 0;
  // The last moment the round accepts an update, wall milliseconds since the Unix epoch; 0 with
  // no round. Default: 0.
  int64_t deadline_ms = 0;
  // Local training settings (fl::RoundConfig::ClientConfig(): local_epochs, batch_size,
  // learning_rate, codec, ...); empty with no round. Default: empty.
  std::map<std::string, std::string> config;
};

// The callback of JoinRound(). Errors besides Infer()'s transport errors: kInvalidArgument
// (ValidateJoinRoundCall), kNotFound (the server has no such task), kPermissionDenied (the device
// is outside the task's population, or the caller is not a device), kUnauthenticated (a missing
// or revoked credential), kUnimplemented (the server runs no federated tasks).
using JoinRoundCallback =
    std::function<void(Result<JoinRoundAnswer> answer, const CallStats& stats)>;

// Sends the update trained for a round (FederatedLearning.SubmitUpdate).
struct SubmitUpdateCall {
  // The task and the round (JoinRoundAnswer::round_id) the update answers. Required, non-empty.
  std::string task;
  std::string round_id;
  // The update as src/fl/update_wire.h encodes it (opaque bytes here; its sealed round id and
  // example count must equal this call's). Required, non-empty.
  std::string sealed_update;
  // Local examples the update was trained on (its aggregation weight). Required, > 0.
  // Default: 0 (invalid).
  uint64_t example_count = 0;
  // As InferCall::deadline_nanos. Default: 0 (none).
  int64_t deadline_nanos = 0;
};

struct SubmitUpdateAnswer {
  // False when the round had already closed (deadline passed, round closed or full): the update
  // was not used. Default: false.
  bool accepted = false;
};

// The callback of SubmitUpdate(). Errors besides Infer()'s transport errors: kInvalidArgument
// (ValidateSubmitUpdateCall, or the server could not decode the update or found it mismatching
// the call or the task), kPermissionDenied (the device was not selected for the round, or the
// update was sealed by another client), kAlreadyExists (an update of this device in this round
// was already received: also what a retry after a lost answer gets), kNotFound (no such task),
// kUnauthenticated, kUnimplemented (the server runs no federated tasks).
using SubmitUpdateCallback =
    std::function<void(Result<SubmitUpdateAnswer> answer, const CallStats& stats)>;

// One message of a round's secure aggregation (FederatedLearning.SecureAggregation), in a round
// whose config has secure_aggregation = 1.
struct SecureAggregationCall {
  // The task and the round (JoinRoundAnswer::round_id). Required, non-empty.
  std::string task;
  std::string round_id;
  // The device's message as src/fl/secure_round.h encodes it (opaque bytes here). Required,
  // non-empty.
  std::string message;
  // As InferCall::deadline_nanos. Default: 0 (none).
  int64_t deadline_nanos = 0;
};

struct SecureAggregationAnswer {
  // The server's reply as src/fl/secure_round.h encodes it. Default: "".
  std::string reply;
};

// The callback of SecureAggregation(). Errors besides Infer()'s transport errors:
// kInvalidArgument (ValidateSecureAggregationCall, or the server could not decode the message or
// the protocol refused it), kPermissionDenied (the device is not in the round's cohort),
// kFailedPrecondition (the round is not open, or does not use secure aggregation), kNotFound (no
// such task), kUnauthenticated, kUnimplemented (the server runs no federated tasks).
using SecureAggregationCallback =
    std::function<void(Result<SecureAggregationAnswer> answer, const CallStats& stats)>;

// Identifies a call for Cancel(); never 0.
using CallId = uint64_t;

class Transport {
 public:
  virtual ~Transport() = default;

  // Starts a remote inference. Returns at once; `done` is called exactly once, on a thread of
  // the transport, never inside Infer(). `done` should be quick and must not block on other
  // calls of this transport (the transport may run every callback on one thread).
  virtual CallId Infer(InferCall call, InferCallback done) = 0;

  // Cancels call `id`: if its callback has not run yet, it runs soon with kCancelled (and the
  // stats of what was already sent) and any answer that arrives later is dropped. Returns
  // whether the call was still pending. Unknown or finished ids return false. A request already
  // delivered to the server may still be computed there; its result is discarded.
  virtual bool Cancel(CallId id) = 0;

  // Uploads one sealed batch to the ingest service; as Infer() for the callback and Cancel().
  // Errors besides Infer()'s transport errors: kInvalidArgument (ValidateUploadCall, or the server
  // refused the key), kAlreadyExists (the key was used before for other bytes: a device bug),
  // kResourceExhausted (the batch is over the server's size limit), kUnimplemented (the server
  // has no ingest store).
  virtual CallId Upload(UploadCall call, UploadCallback done) = 0;

  // Sends one batch of measurements to the telemetry service; as Infer() for the callback and
  // Cancel(). Errors: kInvalidArgument (ValidateTelemetryCall, or the server refused a
  // measurement), the transport errors, kUnimplemented (the server does not collect telemetry).
  virtual CallId ReportTelemetry(TelemetryCall call, TelemetryCallback done) = 0;

  // Asks for a round of a federated task (JoinRoundCallback lists the errors); as Infer() for
  // the callback and Cancel(). A call without a round (empty round_id) is an answer, not an
  // error: the device asks again later.
  virtual CallId JoinRound(JoinRoundCall call, JoinRoundCallback done) = 0;

  // Sends a round's update (SubmitUpdateCallback lists the errors); as Infer() for the callback
  // and Cancel(). Not idempotent on the server: after a lost answer, a retry of an update the
  // server did accept fails kAlreadyExists.
  virtual CallId SubmitUpdate(SubmitUpdateCall call, SubmitUpdateCallback done) = 0;

  // Sends one message of a round's secure aggregation (SecureAggregationCallback lists the
  // errors); as Infer() for the callback and Cancel(). Safe to retry: the server answers a
  // repeated message like a poll.
  virtual CallId SecureAggregation(SecureAggregationCall call, SecureAggregationCallback done) = 0;

  // The clock deadlines and CallStats are measured on. Lives as long as the transport.
  virtual Clock* clock() const = 0;
};

// Checks what every transport checks before sending: a model name, at least one input, unique
// non-empty input names, no empty tensor, a version >= 0 and a deadline >= 0.
// kInvalidArgument naming the model and the offending input.
Status ValidateInferCall(const InferCall& call);

// Checks an upload before sending: the idempotency key's length and characters (the server's
// rule, so that a bad key fails on the device and never costs the radio), a non-empty batch and
// a deadline >= 0. kInvalidArgument naming the key.
Status ValidateUploadCall(const UploadCall& call);

// Checks a telemetry batch before sending: at least one measurement, each with a non-empty name
// and a finite value, and a deadline >= 0. kInvalidArgument naming the measurement.
Status ValidateTelemetryCall(const TelemetryCall& call);

// Checks a JoinRound call before sending: a non-empty task and a deadline >= 0.
// kInvalidArgument naming the task.
Status ValidateJoinRoundCall(const JoinRoundCall& call);

// Checks a SubmitUpdate call before sending: a non-empty task and round id, a non-empty update,
// example_count > 0 and a deadline >= 0. kInvalidArgument naming the task and round.
Status ValidateSubmitUpdateCall(const SubmitUpdateCall& call);

// Checks a SecureAggregation call before sending: a non-empty task, round id and message and a
// deadline >= 0. kInvalidArgument naming the task and round.
Status ValidateSecureAggregationCall(const SecureAggregationCall& call);

// Starts one call with `start(callback)` (e.g. `[&](UploadCallback done) { t.Upload(call,
// std::move(done)); }`) and blocks until its callback has run; returns the answer and the call's
// stats. For code that runs on its own background thread (the uploader, the federated
// participant); never call it on a transport thread, whose callbacks it would wait for.
template <typename Answer, typename Start>
std::pair<Result<Answer>, CallStats> CallAndWait(Start&& start) {
  struct Wait {
    std::mutex mu;
    std::condition_variable cv;
    std::optional<Result<Answer>> answer;
    CallStats stats;
  };
  auto wait = std::make_shared<Wait>();
  start([wait](Result<Answer> answer, const CallStats& stats) {
    std::lock_guard<std::mutex> lock(wait->mu);
    wait->answer.emplace(std::move(answer));
    wait->stats = stats;
    wait->cv.notify_all();
  });
  std::unique_lock<std::mutex> lock(wait->mu);
  wait->cv.wait(lock, [&] { return wait->answer.has_value(); });
  return {std::move(*wait->answer), wait->stats};
}

}  // namespace hml::sdk

#endif  // HML_SRC_SDK_TRANSPORT_H_

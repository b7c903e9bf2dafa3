// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// InProcessTransport: an sdk::Transport that reaches an InferenceBackend in the same process
// (a ModelRepository, or a fake) through an emulated link (LinkEmulator, link.h). Tests and the
// fleet simulator put it where the gRPC transport would be, so the router sees real latencies,
// losses and outages without a socket.
//
// One call, step by step (times on the link's clock):
//   1. Infer() validates the call (sdk::ValidateInferCall), encodes it as the v2 gRPC message
//      (ModelInferRequest, raw_input_contents, with the cut tensors' parameters) exactly as the
//      real client would, and hands its size (+ per_message_overhead_bytes) to the link's
//      uplink. CallStats::bytes_sent is that size: the bytes match the real wire's protobuf
//      payload.
//   2. At the request's arrival time the server side runs as `hybridml serve`'s gRPC handler
//      does: the message is decoded (DecodeModelInferRequest), admission is checked, the model
//      is resolved, and the inputs are submitted to the backend with the call's deadline.
//   3. When the backend answers, the outputs are encoded as ModelInferResponse; its size goes
//      down the downlink; at its arrival the device decodes it and the callback runs. An error
//      answer travels the same way as a message of its text's length (+ the overhead).
//
// Upload() and ReportTelemetry() travel the same way (the same link, deadline, loss and cancel
// rules): the request is the device service's protobuf message (UploadBatchRequest,
// TelemetryReport) whose size goes up the link; at arrival the server side runs what the gRPC
// handler runs for an authenticated device (InProcessTransportOptions::device_id): the batch is
// put into the IngestStore (once per idempotency key) or the report is handed to the telemetry
// service; the response message's size comes down.
//
// JoinRound() and SubmitUpdate() too: JoinRoundRequest / SubmitUpdateRequest go up, and at their
// arrival the server side is FederatedLearning's handler for an authenticated device: Join /
// Submit of the FederatedTasks (InProcessTransportOptions::federated) with device_id and the
// arrival's wall time (the link clock's WallMicros() / 1000, the rounds' milliseconds since the
// Unix epoch). Its errors come back with their code unchanged, as gRPC carries them; its answer is
// encoded as the service encodes it (JoinRoundResponse: the round id as a decimal string, none
// for "no round", the model version always) and decoded by the device (sdk/grpc/wire.h). Join and
// Submit run on the queue's thread and take the task's lock, which a Tick() that publishes a
// round holds for the publish: calls arriving meanwhile (and every device sharing the queue) wait.
//
// Failures, as the caller sees them:
//   - Deadline: at InferCall::deadline_nanos the callback runs with kDeadlineExceeded unless the
//     answer arrived first. When the request could only arrive after the deadline, it is never
//     delivered: the backend does not compute it (a real server would see the gRPC deadline
//     already expired). When it arrives in time, the deadline is forwarded to the backend (whose
//     batcher drops it if it expires in the queue); an answer computed anyway but arriving late
//     is dropped.
//   - Loss (LinkProfile::loss_probability, or an outage hitting a message in flight): the
//     callback runs with kUnavailable at the lost message's send time + lost_message_timeout_nanos
//     (standing for the transport noticing a dead connection), or kDeadlineExceeded at the
//     deadline if that comes first. A lost response means the backend did compute.
//   - Outage with OutageMode::kFailFast: a request sent while the link is down fails with
//     kUnavailable at once, sending nothing; a response the server sends while the link is down
//     fails the call with kUnavailable at that moment. With kBlackHole both are losses (above).
//   - Cancel(): the callback runs at once (on the queue's thread) with kCancelled; whatever of
//     the call is still on the link or in the backend runs to its end and is discarded.
// CallStats count the request's bytes once it went onto the link (lost or not) and the
// response's bytes only when it reached the device.
//
// Threads and scale: every delivery, timeout and callback is a task on a TimerQueue (one thread,
// a priority queue of due times; timer_queue.h); the backend answers on its own threads and the
// transport only schedules the downlink delivery from there. Many transports (one per simulated
// device, each with its own LinkEmulator) can share one TimerQueue, so a fleet of thousands of
// devices costs one timer thread plus the backend's threads, and a call costs a few heap
// entries. Callbacks run on the queue's thread: they must be quick (a slow callback delays every
// device on the queue).
//
// Thread-safe. The destructor answers calls still pending with kCancelled (in the destroying
// thread), waits for any task or backend request of this transport that is running, and after
// it returns no callback of this transport runs. Do not destroy the transport from one of its
// callbacks.
#ifndef HML_SRC_SIM_IN_PROCESS_TRANSPORT_H_
#define HML_SRC_SIM_IN_PROCESS_TRANSPORT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "hml/clock.h"
#include "hml/status.h"
#include "src/sdk/transport.h"
#include "src/server/fl/federated_tasks.h"
#include "src/server/ingest/ingest_store.h"
#include "src/server/serving/inference_backend.h"
#include "src/sim/link.h"
#include "src/sim/timer_queue.h"

namespace hybridml::v1 {
class TelemetryReport;
}  // namespace hybridml::v1

namespace hml::sim {

struct InProcessTransportOptions {
  // The server side; must outlive the transport. Its deadlines (e.g. ModelRepositoryOptions::
  // clock) must be on the link's clock. Required.
  server::InferenceBackend* backend = nullptr;
  // The device's link; its clock is the transport's clock. Must outlive the transport. Required.
  LinkEmulator* link = nullptr;
  // The queue that runs deliveries and callbacks, shared by many transports; it must be on the
  // link's clock and outlive the transport. Null: the transport makes its own (which waits on
  // the real time; with a ManualClock, pass a queue and Wake() it after each advance of the
  // clock). Default: null.
  TimerQueue* timers = nullptr;
  // After a message is lost, how long until the call fails with kUnavailable (a deadline earlier
  // than that wins with kDeadlineExceeded). > 0. Default: 1 s.
  int64_t lost_message_timeout_nanos = 1'000'000'000;
  // Bytes added to every message for framing below the protobuf payload (gRPC's 5-byte length
  // prefix, HTTP/2 frames and headers, TLS records). >= 0. Default: 0 (CallStats count the
  // protobuf payload only).
  int64_t per_message_overhead_bytes = 0;

  // The device as the server knows it (as if its credential had been checked): uploads are
  // stored and telemetry is counted under this id. Non-empty. Default: "sim-device".
  std::string device_id = "sim-device";
  // The ingest service's store: Upload() puts batches here, as Ingest.UploadBatch does. Null:
  // Upload() answers kUnimplemented, as a server without an ingest store. Must outlive the
  // transport. Default: null.
  server::IngestStore* ingest = nullptr;
  // Fault injection, as DeviceServicesOptions::after_ingest_commit: called after a batch is
  // committed, before the ack; returning false drops the ack (the call fails kUnavailable after
  // the store kept the batch), as a server dying there would. Default: none.
  std::function<bool()> after_ingest_commit;
  // The telemetry service: ReportTelemetry() hands it the decoded report with device_id. Null:
  // kUnimplemented. Default: none.
  std::function<Status(std::string_view device_id, const hybridml::v1::TelemetryReport& report)>
      telemetry;
  // The federated-learning tasks: JoinRound() and SubmitUpdate() reach their Join and Submit.
  // Null: both answer kUnimplemented, as a server without federated tasks. Must outlive the
  // transport. Default: null.
  server::FederatedTasks* federated = nullptr;

  // kInvalidArgument naming the field.
  Status Validate() const;
};

class InProcessTransport final : public sdk::Transport {
 public:
  // kInvalidArgument for bad options.
  static Result<std::unique_ptr<InProcessTransport>> Create(InProcessTransportOptions options);
  ~InProcessTransport() override;
  InProcessTransport(const InProcessTransport&) = delete;
  InProcessTransport& operator=(const InProcessTransport&) = delete;

  sdk::CallId Infer(sdk::InferCall call, sdk::InferCallback done) override;
  sdk::CallId Upload(sdk::UploadCall call, sdk::UploadCallback done) override;
  sdk::CallId ReportTelemetry(sdk::TelemetryCall call, sdk::TelemetryCallback done) override;
  sdk::CallId JoinRound(sdk::JoinRoundCall call, sdk::JoinRoundCallback done) override;
  sdk::CallId SubmitUpdate(sdk::SubmitUpdateCall call, sdk::SubmitUpdateCallback done) override;
  sdk::CallId SecureAggregation(sdk::SecureAggregationCall call,
                                sdk::SecureAggregationCallback done) override;
  bool Cancel(sdk::CallId id) override;
  Clock* clock() const override;

  // Counts since creation, for tests and the simulator's tables.
  struct Counters {
    int64_t calls = 0;
    int64_t delivered_to_backend = 0;  // requests that reached the backend's Infer()
    int64_t answered_ok = 0;
    int64_t failed = 0;  // callbacks with an error, cancellations included
  };
  Counters counters() const;

  struct Impl;  // shared with the tasks in flight; public only so the .cc's helpers can name it

 private:
  InProcessTransport(std::unique_ptr<TimerQueue> own_timers, std::shared_ptr<Impl> impl);

  std::unique_ptr<TimerQueue> own_timers_;  // null when the options gave a shared one
  std::shared_ptr<Impl> impl_;
};

}  // namespace hml::sim

#endif  // HML_SRC_SIM_IN_PROCESS_TRANSPORT_H_

// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The load generator behind `hybridml loadgen`: open-loop load on one model of a v2 inference
// server (ours or any Open Inference Protocol server) over gRPC or HTTP, at a fixed rate or a
// sweep of rates.
//
// Open loop, no coordinated omission. Request i of a run is due at t0 + i / rate (its intended
// send time) whatever happened to the requests before it; the sender sleeps until that time,
// hands the request to the transport and moves on without waiting for any answer. Every latency
// is measured from the intended send time, so time a request spent waiting for the sender (an
// oversleep), for a free HTTP connection, or in the server's queue is all counted. A closed-loop
// client (send, wait, send) would instead slow down exactly when the server does and report the
// latency of the few requests it managed to send.
//
// Transports (LoadTarget):
//   gRPC  one channel and gRPC's callback client API: each request is one asynchronous
//         ModelInfer whose completion callback records the outcome. No thread per request; the
//         request message is encoded once (raw tensor contents) and shared by every call.
//   HTTP  a pool of keep-alive cpp-httplib clients, one thread each, fed by one queue. A request
//         that waits for a free connection keeps its intended send time. The JSON body is
//         serialized once. A request still queued in the client when its timeout has passed is
//         counted as a deadline without being sent (it would be useless to the caller anyway,
//         and this bounds the client's backlog at overload).
// Both transports first ask the server for the model's metadata (gRPC ModelMetadata, or GET
// /v2/models/{name}[/versions/{v}]) and build random inputs of its input shapes: the first
// dynamic dimension becomes LoadgenOptions::batch, any other dynamic dimension 1. A server that
// cannot be reached fails there, with the address and the transport's reason. Answers are not
// decoded: an OK status (gRPC OK, HTTP 200) is an OK answer.
//
// Deadlines: with timeout_ms > 0 a request's deadline is its intended send time + timeout_ms. It
// travels as the gRPC deadline, or as the `Timeout-Ms` header (the time left when it is sent),
// which hybridml's HTTP front end turns into the batcher's deadline. Credentials: `token` is sent
// as `authorization: Bearer <token>` on every request (metadata on gRPC, a header on HTTP).
// TLS: ca_cert (PEM) is the trust root; client_cert/client_key (PEM) are sent for mutual TLS.
//
// Outcomes: kOk, kRejected (gRPC RESOURCE_EXHAUSTED / HTTP 429: the server's admission control),
// kDeadline (gRPC DEADLINE_EXCEEDED / HTTP 504, or expired in the client's queue), kError
// (anything else, including transport failures; the first message is kept).
//
// The sender shares the machine with whatever else runs there (the server, in a local
// benchmark); RateResult::max_send_lag_ms reports how late it was at worst.
//
// Thread safety: a LoadTarget may be used by one RunAtRate at a time; Send() may be called from
// any thread and its callbacks run on transport threads.
#ifndef HML_SRC_SERVER_LOADGEN_LOADGEN_H_
#define HML_SRC_SERVER_LOADGEN_LOADGEN_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "hml/clock.h"
#include "hml/status.h"

namespace hml::server {

enum class LoadProtocol { kGrpc, kHttp };

// "grpc" / "http"; kInvalidArgument for anything else.
Result<LoadProtocol> ParseLoadProtocol(std::string_view name);

struct LoadgenOptions {
  // The server: "host:port". For HTTP also "http://host:port" or "https://host:port" (https
  // turns TLS on). Required.
  std::string target;
  // Default: kGrpc.
  LoadProtocol protocol = LoadProtocol::kGrpc;
  // The model's name. Required.
  std::string model;
  // The model version; 0 = the server's latest. Default: 0.
  int64_t version = 0;
  // Samples per request: the value of each input's first dynamic dimension. Default: 1.
  int64_t batch = 1;
  // Deadline of every request, counted from its intended send time; 0 = none. Default: 0.
  int64_t timeout_ms = 0;
  // Bearer token sent as `authorization: Bearer <token>`; empty = no header. Default: "".
  std::string token;
  // TLS: PEM trust root of the server's certificate; setting it (or an https:// target) turns
  // TLS on. Default: "" (plain text).
  std::string ca_cert;
  // Mutual TLS: the client's PEM certificate chain and unencrypted PEM key, both or neither.
  // Default: "".
  std::string client_cert;
  std::string client_key;
  // HTTP only: keep-alive connections (and client threads). Requests beyond them wait in the
  // client's queue, counted from their intended send time. Keep it at most the server's HTTP
  // worker threads (hybridml serve --http-threads): cpp-httplib serves a kept-alive connection
  // on one worker thread. Default: 8.
  int http_connections = 8;
  // gRPC only: channels, each its own HTTP/2 connection; requests go round robin. Default: 1.
  int grpc_channels = 1;
  // How long connecting and the metadata query may take. Default: 5000.
  int64_t connect_timeout_ms = 5000;
  // Seed of the random input data. Default: 1.
  uint64_t seed = 1;

  // kInvalidArgument naming the field: a non-empty target and model, version >= 0, batch in
  // [1, 65536], timeout_ms in [0, 86400000], client_cert and client_key together and only with
  // TLS, http_connections in [1, 1024], grpc_channels in [1, 64], connect_timeout_ms >= 1.
  Status Validate() const;
};

enum class LoadOutcome { kOk, kRejected, kDeadline, kError };

// Sends requests to one model of one server (see the file comment).
class LoadTarget {
 public:
  // Called exactly once per Send(), from a transport thread (or from Send() itself), with the
  // outcome and, for kError, the reason. It must return quickly.
  using DoneFn = std::function<void(LoadOutcome outcome, std::string_view error)>;

  virtual ~LoadTarget() = default;

  // Starts one request whose intended send time is `intended_nanos` (the Clock given to
  // ConnectLoadTarget). Never waits for the answer.
  virtual void Send(int64_t intended_nanos, DoneFn done) = 0;

  // What is being loaded, for progress lines: "grpc 127.0.0.1:8001 model 'x' [1,1,28,28]".
  virtual std::string Describe() const = 0;
};

// Connects to the server, reads the model's metadata and prepares the request payload. Errors:
// the options' Validate() error; kUnavailable naming the address when the server cannot be
// reached; the server's status for the metadata query (kNotFound for an unknown model, ...);
// kInvalidArgument when the metadata is malformed or names a datatype hml::Tensor cannot hold;
// kNotFound / the Env's error for unreadable TLS files. `clock` must outlive the target.
Result<std::unique_ptr<LoadTarget>> ConnectLoadTarget(const LoadgenOptions& options,
                                                      Clock* clock = RealClock());

// Percentiles over latencies in milliseconds.
struct LatencySummary {
  int64_t count = 0;
  double mean_ms = 0, p50_ms = 0, p90_ms = 0, p99_ms = 0, p999_ms = 0, max_ms = 0;
};

// The nearest-rank percentile `q` (in [0, 100]) of `sorted` (ascending): the smallest value such
// that at least q % of the values are at most it; q = 0 gives the minimum. 0 for an empty span.
double Percentile(std::span<const double> sorted, double q);

// count, mean, p50/p90/p99/p99.9 (nearest rank) and max of `values_ms`, which is sorted in place.
LatencySummary Summarize(std::vector<double>& values_ms);

struct RunOptions {
  // Offered rate, requests per second. Required (> 0).
  double rate = 0;
  // Measured time: requests due in it are counted. Default: 10 s.
  double duration_seconds = 10;
  // Sending at `rate` before the measured time, not counted. Default: 1 s.
  double warmup_seconds = 1;
  // After the last send, how long to wait for outstanding answers; those still missing then are
  // counted as errors ("unanswered"). Default: 30 s.
  double drain_seconds = 30;

  // kInvalidArgument naming the field: rate in (0, 1e6], duration_seconds in (0, 86400],
  // warmup_seconds and drain_seconds in [0, 86400].
  Status Validate() const;
};

// One point of a run: counts and latencies of the requests due in the measured time.
struct RateResult {
  double offered_rate = 0;      // requests/s asked for
  double duration_seconds = 0;  // measured time
  int64_t sent = 0;             // requests due in the measured time (all are sent)
  int64_t ok = 0, rejected = 0, deadline = 0, errors = 0;
  double goodput = 0;  // ok / duration_seconds
  // Of OK answers, and of rejections, from the intended send time.
  LatencySummary ok_latency;
  LatencySummary rejected_latency;
  // The latest the sender handed a request to the transport, after its intended time.
  double max_send_lag_ms = 0;
  // CPU time of this process (all its threads: sender and transport) over the run's wall time,
  // in cores: what the load generator took from a machine it shares with the server.
  double client_cpu_cores = 0;
  // The first kError reason seen, if any.
  std::string first_error;
  // Every OK answer's latency (ms), ascending: for tests and for finer analysis.
  std::vector<double> ok_latencies_ms;
};

// Runs one open-loop point at options.rate on `target` (see the file comment). Blocks for
// warmup + duration + the time the last answers take (at most drain_seconds). Errors: the
// options' Validate() error.
Result<RateResult> RunAtRate(LoadTarget& target, const RunOptions& options,
                             Clock* clock = RealClock());

// Rates from a comma-separated list ("100,200,400"): kInvalidArgument naming the bad item.
Result<std::vector<double>> ParseRates(std::string_view list);

// `results` (one entry per rate) as a JSON document with the options that produced them.
std::string RateResultsToJson(const LoadgenOptions& options, const RunOptions& run,
                              std::span<const RateResult> results);

}  // namespace hml::server

#endif  // HML_SRC_SERVER_LOADGEN_LOADGEN_H_

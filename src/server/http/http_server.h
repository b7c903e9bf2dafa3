// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The HTTP front end: the Open Inference Protocol v2 REST endpoints over an InferenceBackend,
// Prometheus `/metrics`, `/healthz`, and the OTA repository files (`/ota/<target path>`) with
// Range support. HTTPS from PEM files (HttpServerOptions::cert_file/key_file), with optional
// mutual TLS (client_ca_file); plain HTTP when they are empty, which `hybridml serve` allows only
// with --insecure.
//
//   GET  /v2                                           server metadata
//   GET  /v2/health/live, /v2/health/ready             200 or 503
//   GET  /v2/models/{name}[/versions/{v}]              model metadata
//   GET  /v2/models/{name}[/versions/{v}]/ready        200 or 404
//   POST /v2/models/{name}[/versions/{v}]/infer        v2 JSON (src/server/protocol/v2_json.h)
//   GET  /metrics                                      text/plain; version=0.0.4
//   GET  /healthz                                      "ok"
//   GET  /ota/{path}                                   a file under the repository dir
//   GET  /v1/devices                                   enrolled devices (admin key only)
//   GET  /v1/devices/{id}                              one device (admin, or that device)
//
// Authentication: with HttpServerOptions::authenticator set, every request except /healthz,
// /v2/health/live, /v2/health/ready and /metrics must carry `Authorization: Bearer <token>` (an
// admin key or a device credential; src/server/auth/authenticator.h), checked before routing and
// before the body is read: a missing, malformed, unknown or revoked credential gets 401 with
// `WWW-Authenticate: Bearer`, a valid one that may not touch the data (another device's record,
// a device listing devices) 403. The health endpoints stay open because load balancers and
// orchestrators probe them without credentials and they say only that the process is up;
// /metrics stays open for Prometheus scrapers (restrict it by network; it holds counts and
// latencies per model, no device data or model content). Without an authenticator every route
// is open and /v1/devices does not exist (404); `hybridml serve` sets one unless given --no-auth.
//
// Errors are {"error": "..."} with 400 (bad input), 401 / 403 (see above), 404 (unknown
// model/version/file), 413 (body over max_body_bytes, refused from Content-Length before the
// body is read), 429 with Retry-After in seconds (queue full), 503 (not ready / draining), 504
// (deadline from the `Timeout-Ms` request header passed), 500 otherwise.
//
// cpp-httplib (Debian's compiled 0.11) is used only in http_server.cc and throws internally;
// every handler catches at its boundary, so no exception leaves this class.
//
// Slow clients (a request dribbled byte by byte, a response not read, a connection that sends
// nothing) are cut off by the read, write and keep-alive timeouts (HttpServerOptions), so each
// holds a worker thread for a bounded time.
//
// Thread-safe: Start() and Stop() from one controlling thread; handlers run on httplib's pool.
#ifndef HML_SRC_SERVER_HTTP_HTTP_SERVER_H_
#define HML_SRC_SERVER_HTTP_HTTP_SERVER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "hml/clock.h"
#include "hml/status.h"
#include "src/server/metrics/metrics.h"
#include "src/server/serving/inference_backend.h"

namespace hml::server {

class Authenticator;

struct HttpServerOptions {
  // Address to bind. Default: "127.0.0.1".
  std::string address = "127.0.0.1";
  // Port; 0 picks a free one (see HttpServer::port()). Default: 0.
  int port = 0;
  // The registry's repo/ directory served under /ota/; empty = no /ota/ endpoint (404).
  // Default: empty.
  std::string ota_repo_dir;
  // Largest request body; larger ones get 413 before they are read. Default: 64 MiB.
  size_t max_body_bytes = size_t{64} << 20;
  // Worker threads of the HTTP server. Each serves one connection at a time, from its first
  // request until it closes or idles past keep_alive_timeout_millis. Default: 32.
  int threads = 32;
  // Slow clients: a request whose bytes stop arriving for read_timeout_millis (headers or body)
  // gets 400 and a response not accepted for write_timeout_millis is abandoned. cpp-httplib then
  // still waits keep_alive_timeout_millis (whole seconds, rounded up) for a next request on the
  // connection before it frees the worker, and a connection that never sends anything is held
  // that long too; so a silent or stalled client holds a worker for at most read + keep-alive
  // timeout, and only `threads` of them at once can delay other clients.
  // Defaults: 5000, 5000, 1000 (ms); each must be in [1, 600000].
  int64_t read_timeout_millis = 5000;
  int64_t write_timeout_millis = 5000;
  int64_t keep_alive_timeout_millis = 1000;
  // The clock of the backend's batchers (Timeout-Ms becomes a deadline in its NowNanos()); must
  // outlive the server. Default: RealClock().
  Clock* clock = RealClock();
  // TLS: the server's PEM certificate (chain) and its unencrypted PEM private key. Both empty =
  // plain HTTP; one without the other is invalid. Default: empty.
  std::string cert_file;
  std::string key_file;
  // Mutual TLS: PEM file of the CA(s) whose client certificates are accepted. When set, every
  // client must present a certificate signed by one of them or the handshake fails. Needs
  // cert_file/key_file. Default: empty (clients are not asked for a certificate).
  std::string client_ca_file;
  // Checks credentials (see the top of this file); must outlive the server. Default: nullptr
  // (no authentication: every route is open).
  const Authenticator* authenticator = nullptr;

  // kInvalidArgument naming the field.
  Status Validate() const;
};

class HttpServer {
 public:
  // `backend` and `metrics` must outlive the server.
  HttpServer(InferenceBackend& backend, MetricsRegistry& metrics, HttpServerOptions options);
  // Stops (see Stop()).
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and starts serving on a background thread. Errors: kInvalidArgument for bad options
  // or PEM files that cannot be loaded (naming the file), kNotFound for a missing PEM file,
  // kUnavailable naming the address and port when it cannot bind, kFailedPrecondition when
  // already started.
  Status Start();
  // Stops accepting connections, lets the requests being handled finish, and joins the server
  // thread. Idempotent.
  void Stop();
  // The bound port; 0 before Start().
  int port() const { return port_; }

 private:
  class Impl;  // holds the httplib::Server, so that httplib.h stays out of this header
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

}  // namespace hml::server

#endif  // HML_SRC_SERVER_HTTP_HTTP_SERVER_H_

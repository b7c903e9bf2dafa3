// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// `hybridml serve`: loads the models a registry's channels point at into a ModelRepository
// (and follows the registry as it changes: --reload-interval-ms),
// serves them over HTTP (src/server/http/http_server.h: v2 REST, /metrics, the registry's OTA
// files) and gRPC (src/server/grpc/grpc_server.h: the v2 inference service), and drains on
// SIGTERM/SIGINT.
//
// Transport security: with --tls-cert/--tls-key both ports speak TLS with the same certificate
// (HTTPS and gRPC over TLS), and --tls-client-ca makes both require client certificates signed
// by that CA (mutual TLS). Plain text on both needs an explicit --insecure. --grpc-port -1
// disables the gRPC front end.
//
// Authentication is on by default: the server opens <registry>/auth.db (created if missing) and
// every call but the health endpoints and /metrics needs `authorization: Bearer <token>`, an
// admin key (`hybridml auth admin-key create`) or a device credential (from
// DeviceEnrollment.Enroll with a secret from `hybridml auth enrollment-secret create`). The
// device services (src/server/grpc/device_services.h) are served on the gRPC port, among them
// Telemetry.Report, whose device measurements /metrics shows as hml_device_* families
// (src/server/telemetry/telemetry_aggregator.h). --no-auth
// turns all of that off explicitly: every route is open and the device services are not served.
//
// Federated learning: with --keys (the registry's signing keys, as `hybridml publish --keys`)
// the server runs the federated tasks registered in <registry>/fl/ (`hybridml fl start`):
// FederatedLearning.JoinRound/SubmitUpdate on the gRPC port, and a timer thread that every
// --fl-tick-ms loads newly registered tasks and calls FederatedTasks::Tick (closes rounds that
// are due, publishes applied ones to the registry, starts new ones), which also rewrites each
// task's status.json for `hybridml fl status`. Without --keys, FederatedLearning answers
// UNIMPLEMENTED. --keys needs authentication: devices are known by their credentials.
//
// Batching: --max-batch, --batch-delay-us, --instances, --max-queue and --no-batching set the
// BatchingOptions of every model's batcher (defaults: BatchingOptions' own); --http-threads the
// HTTP front end's worker threads, each of which holds one request (or one kept-alive
// connection) at a time.
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "hml/env.h"
#include "src/cli/commands.h"
#include "src/server/auth/auth_store.h"
#include "src/server/ingest/ingest_store.h"
#include "src/server/auth/authenticator.h"
#include "src/server/fl/federated_tasks.h"
#include "src/server/fl/task_file.h"
#include "src/server/grpc/device_services.h"
#include "src/server/grpc/grpc_server.h"
#include "src/server/http/http_server.h"
#include "src/server/metrics/metrics.h"
#include "src/server/serving/model_repository.h"
#include "src/server/serving/registry_watcher.h"
#include "src/server/telemetry/telemetry_aggregator.h"

namespace hml::cli {
namespace {

struct ServeFlags {
  std::string registry_dir;
  std::string address = "127.0.0.1";
  int http_port = 8000;
  int grpc_port = 8001;  // -1: no gRPC front end
  bool insecure = false;
  bool no_auth = false;
  std::string tls_cert;
  std::string tls_key;
  std::string tls_client_ca;
  // Batching of every model (BatchingOptions; the defaults are its defaults) and the HTTP
  // front end's worker threads (HttpServerOptions::threads).
  server::BatchingOptions batching;
  bool no_batching = false;
  int max_split_tails = 4;  // split-inference tails kept per model version; 0 = no split
  int http_threads = server::HttpServerOptions{}.threads;
  int64_t reload_interval_ms = 2000;  // 0: do not follow the registry
  std::string keys_dir;               // registry keys; enables federated tasks
  int64_t fl_tick_ms = 1000;          // how often federated rounds are driven
};

// Drives the federated tasks from a thread: every `tick_ms`, loads tasks registered since the
// last tick and calls Tick(now). Stop() (or the destructor) joins the thread.
class FederatedDriver {
 public:
  FederatedDriver(server::FederatedTasks* tasks, int64_t tick_ms)
      : tasks_(tasks), tick_ms_(tick_ms), thread_([this] { Run(); }) {}
  ~FederatedDriver() { Stop(); }
  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Run() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_) {
      lock.unlock();
      std::vector<std::string> errors;
      for (const std::string& name : tasks_->AddTasksFromRegistry(&errors)) {
        std::printf("federated task '%s' loaded\n", name.c_str());
        std::fflush(stdout);
      }
      for (const std::string& error : errors) {
        if (reported_.insert(error).second) {
          std::fprintf(stderr, "hybridml serve: federated task: %s\n", error.c_str());
        }
      }
      // Publish failures are logged by the tasks and shown in their status.
      (void)tasks_->Tick(RealClock()->WallMicros() / 1000);
      lock.lock();
      cv_.wait_for(lock, std::chrono::milliseconds(tick_ms_), [this] { return stop_; });
    }
  }

  server::FederatedTasks* const tasks_;
  const int64_t tick_ms_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::set<std::string> reported_;  // task file errors already printed
  std::thread thread_;
};

int Fail(const Status& s) {
  std::fprintf(stderr, "hybridml serve: %s\n", s.ToString().c_str());
  return 1;
}

int Serve(const ServeFlags& flags) {
  const bool tls = !flags.tls_cert.empty() || !flags.tls_key.empty();
  if (tls && (flags.tls_cert.empty() || flags.tls_key.empty())) {
    return Fail(InvalidArgumentError("--tls-cert and --tls-key must be given together"));
  }
  if (!tls && !flags.tls_client_ca.empty()) {
    return Fail(InvalidArgumentError("--tls-client-ca needs --tls-cert and --tls-key"));
  }
  if (!tls && !flags.insecure) {
    std::fprintf(stderr,
                 "hybridml serve: refusing to serve plain text; pass --tls-cert/--tls-key, or "
                 "--insecure\n");
    return 1;
  }
  const bool grpc_enabled = flags.grpc_port != -1;
  if (flags.grpc_port < -1 || flags.grpc_port > 65535) {
    return Fail(InvalidArgumentError("--grpc-port " + std::to_string(flags.grpc_port) +
                                     " is not -1 (disabled) or in [0, 65535]"));
  }
  if (!flags.keys_dir.empty() && flags.no_auth) {
    return Fail(InvalidArgumentError(
        "--keys (federated learning) needs authentication: devices are known by their "
        "credentials; drop --no-auth"));
  }
  if (tls && flags.insecure) {
    return Fail(InvalidArgumentError("--insecure contradicts --tls-cert/--tls-key"));
  }
  // Block the stop signals before any thread starts, so that every thread inherits the mask and
  // sigwait below is the one place they arrive.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  server::MetricsRegistry metrics;
  auto serving_metrics = server::ServingMetrics::Create(metrics);
  if (!serving_metrics.ok()) return Fail(serving_metrics.status());
  server::ModelRepositoryOptions repository_options;
  repository_options.batching = flags.batching;
  repository_options.batching.dynamic_batching = !flags.no_batching;
  repository_options.max_split_tails_per_version = flags.max_split_tails;
  if (Status s = repository_options.Validate(); !s.ok()) return Fail(s);
  server::ModelRepository repository(repository_options, serving_metrics->get());
  {
    Result<server::ModelRepository::SyncReport> synced =
        repository.SyncWithRegistry(*DefaultEnv(), flags.registry_dir);
    if (!synced.ok()) return Fail(synced.status());
    // At startup a model that cannot be loaded is an operator error to fix now, not later.
    if (!synced->failed.empty()) return Fail(synced->failed.front());
  }
  // Authentication (see the top of this file). The store, authenticator and device services
  // outlive both servers: they are declared before them.
  std::unique_ptr<server::AuthStore> auth_store;
  std::unique_ptr<server::Authenticator> authenticator;
  std::unique_ptr<server::DeviceServices> device_services;
  std::unique_ptr<server::IngestStore> ingest;
  std::unique_ptr<server::TelemetryAggregator> telemetry;
  std::unique_ptr<server::FederatedTasks> federated;
  if (!flags.no_auth) {
    auto opened = server::AuthStore::OpenInRegistry(flags.registry_dir, *RealClock());
    if (!opened.ok()) return Fail(opened.status());
    auth_store = std::move(*opened);
    authenticator = std::make_unique<server::Authenticator>(auth_store.get());
    server::DeviceServicesOptions device_options;
    device_options.repo_dir = flags.registry_dir + "/repo";
    auto ingest_opened = server::IngestStore::Open(flags.registry_dir + "/ingest.db");
    if (!ingest_opened.ok()) return Fail(ingest_opened.status());
    ingest = std::move(*ingest_opened);
    device_options.ingest = ingest.get();
    // Device telemetry reports end up in the same registry as the serving metrics (/metrics).
    auto aggregator = server::TelemetryAggregator::Create(metrics);
    if (!aggregator.ok()) return Fail(aggregator.status());
    telemetry = std::move(*aggregator);
    device_options.telemetry = telemetry.get();
    if (!flags.keys_dir.empty()) {
      server::FederatedTasksOptions fl_options;
      fl_options.registry_dir = flags.registry_dir;
      fl_options.keys_dir = flags.keys_dir;
      auto tasks = server::FederatedTasks::Create(fl_options);
      if (!tasks.ok()) return Fail(tasks.status());
      federated = std::move(*tasks);
      device_options.federated = federated.get();
    }
    auto services = server::DeviceServices::Create(authenticator.get(), device_options);
    if (!services.ok()) return Fail(services.status());
    device_services = std::move(*services);
    auto admin_keys = auth_store->ListCredentials(server::CredentialKind::kAdminKey);
    if (!admin_keys.ok()) return Fail(admin_keys.status());
    bool any_active = false;
    for (const server::CredentialInfo& key : *admin_keys) any_active = any_active || !key.revoked;
    if (!any_active) {
      std::fprintf(stderr,
                   "hybridml serve: note: %s/auth.db has no active admin key; create one with "
                   "`hybridml auth admin-key create --registry %s --name NAME`\n",
                   flags.registry_dir.c_str(), flags.registry_dir.c_str());
    }
  }

  server::HttpServerOptions options;
  options.address = flags.address;
  options.port = flags.http_port;
  options.ota_repo_dir = flags.registry_dir + "/repo";
  options.cert_file = flags.tls_cert;
  options.key_file = flags.tls_key;
  options.client_ca_file = flags.tls_client_ca;
  options.threads = flags.http_threads;
  options.authenticator = authenticator.get();
  server::HttpServer http(repository, metrics, options);
  if (Status s = http.Start(); !s.ok()) return Fail(s);
  server::GrpcServerOptions grpc_options;
  grpc_options.cert_file = flags.tls_cert;
  grpc_options.key_file = flags.tls_key;
  grpc_options.client_ca_file = flags.tls_client_ca;
  grpc_options.authenticator = authenticator.get();
  if (device_services != nullptr) grpc_options.extra_services = device_services->services();
  server::GrpcServer grpc(&repository, grpc_options);
  int grpc_port = -1;
  if (grpc_enabled) {
    Result<int> bound = grpc.Start(flags.address + ":" + std::to_string(flags.grpc_port));
    if (!bound.ok()) return Fail(bound.status());
    grpc_port = *bound;
  }
  server::RegistryWatcherOptions watch_options;
  watch_options.interval_millis = flags.reload_interval_ms;
  server::RegistryWatcher watcher(repository, *DefaultEnv(), flags.registry_dir, watch_options);
  if (flags.reload_interval_ms > 0) {
    if (Status s = watcher.Start(); !s.ok()) return Fail(s);
  }
  std::unique_ptr<FederatedDriver> federated_driver;
  if (federated != nullptr) {
    federated_driver = std::make_unique<FederatedDriver>(federated.get(), flags.fl_tick_ms);
  }
  for (const server::ServedModel& m : repository.ListModels()) {
    std::printf("serving model '%s' version %lld\n", m.name.c_str(),
                static_cast<long long>(m.version));
  }
  const char* security = !tls                          ? "insecure"
                         : flags.tls_client_ca.empty() ? "TLS"
                                                       : "mutual TLS";
  std::printf("http listening on %s:%d (%s)\n", flags.address.c_str(), http.port(),
              !tls ? "plain HTTP, insecure" : tls && flags.tls_client_ca.empty()
                                                  ? "HTTPS"
                                                  : "HTTPS, mutual TLS");
  if (grpc_enabled) {
    std::printf("grpc listening on %s:%d (%s)\n", flags.address.c_str(), grpc_port, security);
  } else {
    std::printf("grpc disabled (--grpc-port -1)\n");
  }
  if (flags.no_auth) {
    std::printf("auth off (--no-auth): every route is open, no device services\n");
  } else {
    std::printf("auth on: bearer credentials from %s/auth.db%s\n", flags.registry_dir.c_str(),
                grpc_enabled ? "; device services on the gRPC port" : "");
    const std::string fl_line = federated == nullptr
                                    ? "off (no --keys)"
                                    : "tasks from " + server::FederatedDir(flags.registry_dir) +
                                          ", tick " + std::to_string(flags.fl_tick_ms) + " ms";
    std::printf("federated learning: %s\n", fl_line.c_str());
  }
  std::fflush(stdout);

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  std::printf("signal %d: draining\n", signal_number);
  std::fflush(stdout);
  if (federated_driver != nullptr) federated_driver->Stop();
  watcher.Stop();
  http.Stop();  // stop accepting, finish the requests being handled
  if (grpc_enabled) grpc.Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(10));
  return 0;     // the repository drains its batchers when it goes out of scope
}

}  // namespace

void AddServeCommand(CLI::App& app, int& exit_code) {
  auto flags = std::make_shared<ServeFlags>();
  auto* serve = app.add_subcommand(
      "serve", "Serve the registry's models over HTTP (v2 REST) and gRPC (v2 inference service)");
  serve->add_option("--registry", flags->registry_dir, "Registry directory")->required();
  serve->add_option("--http-port", flags->http_port, "HTTP port; 0 picks a free one");
  serve->add_option("--grpc-port", flags->grpc_port,
                    "gRPC port; 0 picks a free one, -1 disables gRPC");
  serve->add_option("--address", flags->address, "Address to bind (default 127.0.0.1)");
  serve->add_flag("--insecure", flags->insecure,
                  "Allow plain text on both ports (no --tls-cert/--tls-key): only on trusted "
                  "networks");
  serve->add_flag("--no-auth", flags->no_auth,
                  "Turn authentication off: every route open to anyone, no device services. "
                  "Default: on, with admin keys and device credentials from <registry>/auth.db "
                  "(see `hybridml auth`); health endpoints and /metrics are always open");
  serve->add_option("--tls-cert", flags->tls_cert, "PEM certificate (chain) of the HTTPS server");
  serve->add_option("--tls-key", flags->tls_key, "Unencrypted PEM private key of --tls-cert");
  serve->add_option("--tls-client-ca", flags->tls_client_ca,
                    "PEM CA file: require client certificates signed by it (mutual TLS)");
  // Batching (src/server/serving/batcher.h), for every model.
  serve->add_option("--max-batch", flags->batching.max_batch_size, "Most samples per batch")
      ->capture_default_str();
  serve->add_option("--batch-delay-us", flags->batching.max_queue_delay_micros,
                    "How long a forming batch waits for more requests (microseconds)")
      ->capture_default_str();
  serve->add_option("--instances", flags->batching.instances,
                    "Model instances per version (worker threads of 1 intra-op thread each)")
      ->capture_default_str();
  serve->add_option("--max-queue", flags->batching.max_queue_size,
                    "Requests queued per version before RESOURCE_EXHAUSTED / HTTP 429")
      ->capture_default_str();
  serve->add_flag("--no-batching", flags->no_batching,
                  "Run every request alone (the baseline of dynamic batching)");
  serve->add_option("--http-threads", flags->http_threads, "HTTP worker threads")
      ->capture_default_str();
  serve->add_option("--max-split-tails", flags->max_split_tails,
                    "Split inference: tail models (one per distinct cut) kept per model version, "
                    "least recently used evicted; 0 refuses split requests. Default 4")
      ->check(CLI::Range(0, 64));
  serve->add_option("--reload-interval-ms", flags->reload_interval_ms,
                    "How often to follow the registry (publish/rollout/rollback by other "
                    "processes are served without restart); 0 disables. Default 2000")
      ->check(CLI::Range(int64_t{0}, int64_t{3600} * 1000));
  serve->add_option("--keys", flags->keys_dir,
                    "Registry key directory (as `hybridml publish --keys`): runs the federated "
                    "tasks registered with `hybridml fl start` and publishes their rounds. "
                    "Default: none (federated learning off)");
  serve->add_option("--fl-tick-ms", flags->fl_tick_ms,
                    "How often federated rounds are driven (closed, published, started) and new "
                    "tasks loaded. Default 1000")
      ->check(CLI::Range(int64_t{10}, int64_t{60} * 1000));
  serve->callback([flags, &exit_code] { exit_code = Serve(*flags); });
}

}  // namespace hml::cli

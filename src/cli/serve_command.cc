// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// `hybridml serve`: loads the models a registry's channels point at into a ModelRepository,
// serves them over HTTP (src/server/http/http_server.h: v2 REST, /metrics, the registry's OTA
// files) and gRPC (src/server/grpc/grpc_server.h: the v2 inference service), and drains on
// SIGTERM/SIGINT. Plain text only: TLS is not implemented yet, so --insecure is required and
// says so.
#include <chrono>
#include <csignal>
#include <cstdio>
#include <memory>
#include <string>

#include "hml/env.h"
#include "src/cli/commands.h"
#include "src/server/grpc/grpc_server.h"
#include "src/server/http/http_server.h"
#include "src/server/metrics/metrics.h"
#include "src/server/serving/model_repository.h"

namespace hml::cli {
namespace {

struct ServeFlags {
  std::string registry_dir;
  std::string address = "127.0.0.1";
  int http_port = 8000;
  int grpc_port = 8001;
  bool insecure = false;
};

int Fail(const Status& s) {
  std::fprintf(stderr, "hybridml serve: %s\n", s.ToString().c_str());
  return 1;
}

int Serve(const ServeFlags& flags) {
  if (!flags.insecure) {
    std::fprintf(stderr,
                 "hybridml serve: TLS is not implemented yet; pass --insecure to serve plain "
                 "HTTP\n");
    return 1;
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
  server::ModelRepository repository({}, serving_metrics->get());
  if (Status s = repository.LoadFromRegistry(*DefaultEnv(), flags.registry_dir); !s.ok()) {
    return Fail(s);
  }
  server::HttpServerOptions options;
  options.address = flags.address;
  options.port = flags.http_port;
  options.ota_repo_dir = flags.registry_dir + "/repo";
  server::HttpServer http(repository, metrics, options);
  if (Status s = http.Start(); !s.ok()) return Fail(s);
  server::GrpcServer grpc(&repository);
  Result<int> grpc_port =
      grpc.Start(flags.address + ":" + std::to_string(flags.grpc_port));
  if (!grpc_port.ok()) return Fail(grpc_port.status());
  for (const server::ServedModel& m : repository.ListModels()) {
    std::printf("serving model '%s' version %lld\n", m.name.c_str(),
                static_cast<long long>(m.version));
  }
  std::printf("http listening on %s:%d (plain HTTP, insecure)\n", flags.address.c_str(),
              http.port());
  std::printf("grpc listening on %s:%d (insecure)\n", flags.address.c_str(), *grpc_port);
  std::fflush(stdout);

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  std::printf("signal %d: draining\n", signal_number);
  std::fflush(stdout);
  http.Stop();  // stop accepting, finish the requests being handled
  grpc.Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(10));
  return 0;     // the repository drains its batchers when it goes out of scope
}

}  // namespace

void AddServeCommand(CLI::App& app, int& exit_code) {
  auto flags = std::make_shared<ServeFlags>();
  auto* serve = app.add_subcommand(
      "serve", "Serve the registry's models over HTTP (v2 REST) and gRPC (v2 inference service)");
  serve->add_option("--registry", flags->registry_dir, "Registry directory")->required();
  serve->add_option("--http-port", flags->http_port, "HTTP port; 0 picks a free one");
  serve->add_option("--grpc-port", flags->grpc_port, "gRPC port; 0 picks a free one");
  serve->add_option("--address", flags->address, "Address to bind (default 127.0.0.1)");
  serve->add_flag("--insecure", flags->insecure,
                  "Serve plain HTTP and gRPC (required: TLS is not implemented yet)");
  serve->callback([flags, &exit_code] { exit_code = Serve(*flags); });
}

}  // namespace hml::cli

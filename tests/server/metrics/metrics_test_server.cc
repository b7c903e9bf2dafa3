// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// A small HTTP server for prometheus_scrape_test.sh: it serves `GET /metrics` from a
// MetricsRegistry (with the serving metrics and the process metrics) and counts every
// `POST /work` as one answered HTTP request of model "m" version "1". It binds 127.0.0.1 on a
// port the kernel picks (no race with other tests over a chosen port) and prints
// "listening on 127.0.0.1:<port>" on stdout once the socket listens; connections made after
// that wait in the backlog until the accept loop runs.
//
// cpp-httplib (Debian's libcpp-httplib-dev 0.11, a compiled library) uses exceptions internally; it
// is confined to this test binary, not linked into hml_server.
#include <httplib.h>

#include <cstdio>
#include <memory>
#include <string>

#include "src/server/metrics/metrics.h"

namespace {

int Run() {
  hml::server::MetricsRegistry registry;
  hml::Result<std::unique_ptr<hml::server::ServingMetrics>> serving =
      hml::server::ServingMetrics::Create(registry);
  if (!serving.ok()) {
    std::fprintf(stderr, "%s\n", serving.status().ToString().c_str());
    return 1;
  }
  hml::Result<hml::server::ModelMetrics*> model = (*serving)->ForModel("m", "1");
  if (!model.ok()) {
    std::fprintf(stderr, "%s\n", model.status().ToString().c_str());
    return 1;
  }
  // A label value with every character the text format escapes: Prometheus must parse it back
  // to exactly this string (the script checks it through the query API).
  hml::Result<hml::server::GaugeFamily*> escaping = registry.AddGauge(
      "hml_test_label_escaping", "Holds a label value that needs escaping.\nSecond line.", {"v"});
  if (!escaping.ok()) {
    std::fprintf(stderr, "%s\n", escaping.status().ToString().c_str());
    return 1;
  }
  hml::Result<hml::server::Gauge*> escaped =
      (*escaping)->WithLabels({"quote \" backslash \\ newline \n end"});
  if (!escaped.ok()) {
    std::fprintf(stderr, "%s\n", escaped.status().ToString().c_str());
    return 1;
  }
  (*escaped)->Set(1);

  hml::server::ModelMetrics* metrics = *model;
  httplib::Server server;
  server.Get("/metrics", [&registry](const httplib::Request&, httplib::Response& response) {
    response.set_content(registry.Expose(), std::string(hml::server::kExpositionContentType));
  });
  server.Post("/work", [metrics](const httplib::Request&, httplib::Response& response) {
    metrics->ObserveQueueTime(0.001);
    metrics->ObserveComputeTime(0.002);
    metrics->ObserveBatchSize(1);
    metrics->RecordRequest(hml::server::ServingProtocol::kHttp, hml::StatusCode::kOk);
    response.set_content("done\n", "text/plain");
  });
  const int port = server.bind_to_any_port("127.0.0.1");
  if (port < 0) {
    std::fprintf(stderr, "cannot bind 127.0.0.1\n");
    return 1;
  }
  std::printf("listening on 127.0.0.1:%d\n", port);
  std::fflush(stdout);
  // Runs until the script kills the process.
  return server.listen_after_bind() ? 0 : 1;
}

}  // namespace

int main() { return Run(); }

// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// `hybridml loadgen`: open-loop load on one model of a v2 inference server over gRPC or HTTP, at
// one rate (--rate) or a sweep of rates (--rates), with latency measured from each request's
// intended send time (src/server/loadgen/loadgen.h explains the method). Prints a progress line
// per rate and a table at the end; --json writes every point.
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "src/cli/commands.h"
#include "src/server/loadgen/loadgen.h"

namespace hml::cli {
namespace {

struct LoadgenFlags {
  std::string target;
  std::string protocol = "grpc";
  std::string model;
  int64_t version = 0;
  double rate = 0;
  std::string rates;
  double duration = 10;
  double warmup = 1;
  double drain = 30;
  int64_t batch = 1;
  int64_t timeout_ms = 0;
  std::string token;
  std::string ca_cert;
  std::string client_cert;
  std::string client_key;
  int connections = 8;
  int channels = 1;
  std::string json_path;
  bool quiet = false;
};

int Fail(const Status& s) {
  std::fprintf(stderr, "hybridml loadgen: %s\n", s.ToString().c_str());
  return 1;
}

void PrintPoint(const server::RateResult& r) {
  std::printf("%10.1f %10.1f %8lld %8lld %8lld %8lld %8lld %9.2f %9.2f %9.2f %9.2f %9.2f %9.2f\n",
              r.offered_rate, r.goodput, static_cast<long long>(r.sent),
              static_cast<long long>(r.ok), static_cast<long long>(r.rejected),
              static_cast<long long>(r.deadline), static_cast<long long>(r.errors),
              r.ok_latency.p50_ms, r.ok_latency.p90_ms, r.ok_latency.p99_ms, r.ok_latency.p999_ms,
              r.rejected_latency.p50_ms, r.rejected_latency.p99_ms);
}

int RunLoadgen(const LoadgenFlags& f) {
  Result<server::LoadProtocol> protocol = server::ParseLoadProtocol(f.protocol);
  if (!protocol.ok()) return Fail(protocol.status().WithContext("--protocol"));
  std::vector<double> rates;
  if (!f.rates.empty()) {
    Result<std::vector<double>> parsed = server::ParseRates(f.rates);
    if (!parsed.ok()) return Fail(parsed.status().WithContext("--rates"));
    rates = *parsed;
  }
  if (f.rate > 0) rates.insert(rates.begin(), f.rate);
  if (rates.empty()) return Fail(InvalidArgumentError("give --rate R or --rates R1,R2,..."));

  server::LoadgenOptions options;
  options.target = f.target;
  options.protocol = *protocol;
  options.model = f.model;
  options.version = f.version;
  options.batch = f.batch;
  options.timeout_ms = f.timeout_ms;
  options.token = f.token;
  options.ca_cert = f.ca_cert;
  options.client_cert = f.client_cert;
  options.client_key = f.client_key;
  options.http_connections = f.connections;
  options.grpc_channels = f.channels;
  server::RunOptions run;
  run.duration_seconds = f.duration;
  run.warmup_seconds = f.warmup;
  run.drain_seconds = f.drain;
  for (double rate : rates) {
    run.rate = rate;
    if (Status s = run.Validate(); !s.ok()) return Fail(s);
  }

  Result<std::unique_ptr<server::LoadTarget>> target = server::ConnectLoadTarget(options);
  if (!target.ok()) return Fail(target.status());
  std::printf(
      "loadgen: %s, batch %lld, %s timeout; open loop, %.1f s warm-up + %.1f s per rate; "
      "latency from the intended send time\n",
      (*target)->Describe().c_str(), static_cast<long long>(f.batch),
      f.timeout_ms > 0 ? (std::to_string(f.timeout_ms) + " ms").c_str() : "no", f.warmup,
      f.duration);
  std::fflush(stdout);

  std::vector<server::RateResult> results;
  for (double rate : rates) {
    run.rate = rate;
    Result<server::RateResult> r = server::RunAtRate(**target, run);
    if (!r.ok()) return Fail(r.status());
    if (!f.quiet) {
      std::printf(
          "rate %.1f/s: goodput %.1f/s, ok %lld rejected %lld deadline %lld errors %lld, "
          "p50 %.2f ms p99 %.2f ms, sender lag max %.1f ms, loadgen CPU %.2f cores\n",
          r->offered_rate, r->goodput, static_cast<long long>(r->ok),
          static_cast<long long>(r->rejected), static_cast<long long>(r->deadline),
          static_cast<long long>(r->errors), r->ok_latency.p50_ms, r->ok_latency.p99_ms,
          r->max_send_lag_ms, r->client_cpu_cores);
      if (!r->first_error.empty()) std::printf("  first error: %s\n", r->first_error.c_str());
      std::fflush(stdout);
    }
    results.push_back(std::move(*r));
  }

  std::printf("\n%10s %10s %8s %8s %8s %8s %8s %9s %9s %9s %9s %9s %9s\n", "offered/s", "goodput/s",
              "sent", "ok", "rejected", "deadline", "errors", "p50 ms", "p90 ms", "p99 ms",
              "p99.9 ms", "rej p50", "rej p99");
  for (const server::RateResult& r : results) PrintPoint(r);

  if (!f.json_path.empty()) {
    std::ofstream out(f.json_path);
    out << server::RateResultsToJson(options, run, results);
    out.close();
    if (!out) return Fail(UnavailableError("cannot write --json '" + f.json_path + "'"));
    std::printf("wrote %s\n", f.json_path.c_str());
  }
  return 0;
}

}  // namespace

void AddLoadgenCommand(CLI::App& app, int& exit_code) {
  auto f = std::make_shared<LoadgenFlags>();
  auto* cmd = app.add_subcommand(
      "loadgen",
      "Open-loop load on a v2 inference server (gRPC or HTTP): latency percentiles from the "
      "intended send time, at one rate or a sweep");
  cmd->add_option("--target,--url", f->target,
                  "Server: host:port (gRPC or HTTP), or http(s)://host:port for HTTP")
      ->required();
  cmd->add_option("--protocol", f->protocol, "grpc | http")->capture_default_str();
  cmd->add_option("--model", f->model, "Model name")->required();
  cmd->add_option("--version", f->version, "Model version; 0 = the server's latest")
      ->capture_default_str();
  cmd->add_option("--rate", f->rate, "Offered rate, requests/s")
      ->check(CLI::Range(0.001, 1000000.0));
  cmd->add_option("--rates", f->rates, "Rate sweep: requests/s, comma-separated (after --rate)");
  cmd->add_option("--duration", f->duration, "Measured seconds per rate")->capture_default_str();
  cmd->add_option("--warmup", f->warmup, "Seconds of load before each measurement, not counted")
      ->capture_default_str();
  cmd->add_option("--drain", f->drain,
                  "Seconds to wait for answers after the last send; missing ones count as "
                  "errors")
      ->capture_default_str();
  cmd->add_option("--batch", f->batch, "Samples per request (the first dynamic dimension)")
      ->capture_default_str();
  cmd->add_option("--timeout-ms", f->timeout_ms,
                  "Deadline from the intended send time: the gRPC deadline / HTTP Timeout-Ms "
                  "header; 0 = none")
      ->capture_default_str();
  cmd->add_option("--token", f->token, "Sent as `authorization: Bearer <token>`");
  cmd->add_option("--ca-cert", f->ca_cert, "PEM trust root of the server: turns TLS on");
  cmd->add_option("--client-cert", f->client_cert, "PEM client certificate (mutual TLS)");
  cmd->add_option("--client-key", f->client_key, "PEM key of --client-cert");
  cmd->add_option("--connections", f->connections,
                  "HTTP keep-alive connections (at most the server's HTTP threads)")
      ->capture_default_str();
  cmd->add_option("--channels", f->channels, "gRPC channels (connections), used round robin")
      ->capture_default_str();
  cmd->add_option("--json", f->json_path, "Also write every point as JSON here");
  cmd->add_flag("--quiet", f->quiet, "No progress line per rate");
  cmd->callback([f, &exit_code] { exit_code = RunLoadgen(*f); });
}

}  // namespace hml::cli

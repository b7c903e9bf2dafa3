// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Costs of device telemetry (issue 6), with Google Benchmark:
//   BM_Record                 one TelemetryRecorder::Record() (energy estimate, one mutex, a map
//                             lookup, a few additions); with ->Threads(4) under contention
//   BM_SnapshotAndEncode      Snapshot() + ToMeasurements() + the TelemetryReport proto the wire
//                             carries, for 1 model x 4 routes with errors, energy and bytes; the
//                             counters give the measurements per report and the encoded bytes
//                             (what the radio sends per report, before gRPC/HTTP2 framing)
//   BM_AggregatorReport       the server's TelemetryAggregator::Report() of that report
//                             (validation and aggregation into the Prometheus families)
// Run: build/bench/telemetry_bench [--benchmark_out=bench/results/telemetry.json
//      --benchmark_out_format=json]
#include <benchmark/benchmark.h>

#include <memory>
#include <string>

#include "proto/hybridml_device.pb.h"
#include "src/sdk/telemetry/telemetry_recorder.h"
#include "src/server/metrics/metrics.h"
#include "src/server/telemetry/telemetry_aggregator.h"

namespace {

using hml::sdk::Placement;
using hml::sdk::RouteInfo;
using hml::sdk::TelemetryRecorder;

RouteInfo Route(Placement placement, int64_t latency_nanos) {
  RouteInfo route;
  route.placement = placement;
  route.latency_nanos = latency_nanos;
  route.local_runs = placement == Placement::kCloud ? 0 : 1;
  if (placement != Placement::kLocal) {
    route.attempts = 1;
    route.bytes_sent = 3200;
    route.bytes_received = 90;
    route.cloud_status = placement == Placement::kLocalAfterCloudFailure ? "UNAVAILABLE: x" : "OK";
  }
  return route;
}

// A recorder holding a typical interval: one model over four routes, failures included.
void Fill(TelemetryRecorder& recorder) {
  const Placement placements[] = {Placement::kLocal, Placement::kCloud,
                                  Placement::kLocalAfterCloudFailure, Placement::kCascadeOffloaded};
  for (int i = 0; i < 200; ++i) {
    recorder.Record("cnn", "7", Route(placements[i % 4], 1'000'000 + 97'000 * i), 235'000);
  }
  recorder.RecordFailure("cnn", "7", hml::UnavailableError("down"), 80'000'000);
}

hybridml::v1::TelemetryReport Encode(const std::vector<hml::sdk::TelemetryMeasurement>& ms) {
  hybridml::v1::TelemetryReport report;
  report.set_timestamp_ms(1'700'000'000'000);
  for (const auto& m : ms) {
    auto* out = report.add_measurements();
    out->set_name(m.name);
    out->set_value(m.value);
    out->mutable_labels()->insert(m.labels.begin(), m.labels.end());
  }
  return report;
}

void BM_Record(benchmark::State& state) {
  static std::unique_ptr<TelemetryRecorder> recorder;
  if (state.thread_index() == 0) recorder = std::move(*TelemetryRecorder::Create());
  const RouteInfo route = Route(Placement::kCascadeOffloaded, 12'000'000);
  for (auto _ : state) recorder->Record("cnn", "7", route, 235'000);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Record);
BENCHMARK(BM_Record)->Threads(4)->UseRealTime();

void BM_SnapshotAndEncode(benchmark::State& state) {
  auto recorder = std::move(*TelemetryRecorder::Create());
  size_t measurements = 0, bytes = 0;
  for (auto _ : state) {
    state.PauseTiming();
    Fill(*recorder);
    state.ResumeTiming();
    const auto ms = recorder->Snapshot().ToMeasurements();
    const std::string wire = Encode(ms).SerializeAsString();
    measurements = ms.size();
    bytes = wire.size();
    benchmark::DoNotOptimize(wire.data());
  }
  state.counters["measurements"] = static_cast<double>(measurements);
  state.counters["report_bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_SnapshotAndEncode);

void BM_AggregatorReport(benchmark::State& state) {
  hml::server::MetricsRegistryOptions options;
  options.process_metrics = false;
  hml::server::MetricsRegistry registry(options);
  auto aggregator = std::move(*hml::server::TelemetryAggregator::Create(registry));
  auto recorder = std::move(*TelemetryRecorder::Create());
  Fill(*recorder);
  const hybridml::v1::TelemetryReport report = Encode(recorder->Snapshot().ToMeasurements());
  for (auto _ : state) {
    hml::Status s = aggregator->Report("device-1", report);
    if (!s.ok()) state.SkipWithError(s.ToString().c_str());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AggregatorReport);

}  // namespace

BENCHMARK_MAIN();

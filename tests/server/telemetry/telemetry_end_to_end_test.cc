// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Device to server: a TelemetryRecorder and TelemetryReporter on the device, a transport that
// carries each TelemetryCall as a hybridml.v1.TelemetryReport to a TelemetryAggregator, and the
// server's Prometheus exposition at the end. Ten rounds of requests with an outage in the middle
// (three reports fail UNAVAILABLE and are merged back): the server's totals equal what the device
// recorded, request for request, so nothing is lost and nothing is counted twice.
#include <gtest/gtest.h>

#include <cmath>
#include <deque>
#include <map>
#include <mutex>
#include <string>

#include "proto/hybridml_device.pb.h"
#include "src/sdk/telemetry/telemetry_reporter.h"
#include "src/server/metrics/metrics.h"
#include "src/server/telemetry/telemetry_aggregator.h"

namespace hml {
namespace {

// Carries telemetry calls to an aggregator when the test calls Deliver(); the callback runs
// there, never inside ReportTelemetry().
class AggregatorTransport final : public sdk::Transport {
 public:
  AggregatorTransport(Clock* clock, server::TelemetryAggregator* aggregator)
      : clock_(clock), aggregator_(aggregator) {}

  sdk::CallId Infer(sdk::InferCall, sdk::InferCallback done) override {
    done(UnimplementedError("telemetry only"), {});
    return 0;
  }
  sdk::CallId Upload(sdk::UploadCall, sdk::UploadCallback done) override {
    done(UnimplementedError("telemetry only"), {});
    return 0;
  }
  sdk::CallId ReportTelemetry(sdk::TelemetryCall call, sdk::TelemetryCallback done) override {
    std::lock_guard lock(mu_);
    queue_.push_back({std::move(call), std::move(done)});
    return ++next_id_;
  }
  sdk::CallId JoinRound(sdk::JoinRoundCall, sdk::JoinRoundCallback done) override {
    done(UnimplementedError("telemetry only"), {});
    return 0;
  }
  sdk::CallId SubmitUpdate(sdk::SubmitUpdateCall, sdk::SubmitUpdateCallback done) override {
    done(UnimplementedError("telemetry only"), {});
    return 0;
  }
  sdk::CallId SecureAggregation(sdk::SecureAggregationCall,
                                sdk::SecureAggregationCallback done) override {
    done(UnimplementedError("telemetry only"), {});
    return 0;
  }
  bool Cancel(sdk::CallId) override { return false; }
  Clock* clock() const override { return clock_; }

  // Answers the pending call: UNAVAILABLE without reaching the server when `outage`, otherwise
  // with the aggregator's status. Returns whether a call was pending.
  bool Deliver(bool outage) {
    Pending pending;
    {
      std::lock_guard lock(mu_);
      if (queue_.empty()) return false;
      pending = std::move(queue_.front());
      queue_.pop_front();
    }
    if (outage) {
      pending.done(UnavailableError("outage"), {});
      return true;
    }
    hybridml::v1::TelemetryReport report;
    report.set_timestamp_ms(pending.call.timestamp_ms);
    for (const sdk::TelemetryMeasurement& m : pending.call.measurements) {
      hybridml::v1::Measurement* out = report.add_measurements();
      out->set_name(m.name);
      out->set_value(m.value);
      out->mutable_labels()->insert(m.labels.begin(), m.labels.end());
    }
    const Status status = aggregator_->Report("device-7", report);
    if (status.ok()) {
      pending.done(sdk::TelemetryAnswer{}, {});
    } else {
      pending.done(status, {});
    }
    return true;
  }

 private:
  struct Pending {
    sdk::TelemetryCall call;
    sdk::TelemetryCallback done;
  };
  Clock* const clock_;
  server::TelemetryAggregator* const aggregator_;
  std::mutex mu_;
  sdk::CallId next_id_ = 0;
  std::deque<Pending> queue_;
};

// The value of the exposition line that starts with `series` + " "; NaN when there is none.
double Sample(const std::string& text, const std::string& series) {
  const size_t at = text.find("\n" + series + " ");
  if (at == std::string::npos) return std::nan("");
  return std::stod(text.substr(at + series.size() + 2));
}

TEST(TelemetryEndToEndTest, ServerTotalsEqualDeviceRecordsAcrossAnOutage) {
  server::MetricsRegistryOptions metrics_options;
  metrics_options.process_metrics = false;
  server::MetricsRegistry registry(metrics_options);
  auto aggregator = server::TelemetryAggregator::Create(registry);
  ASSERT_TRUE(aggregator.ok());
  ManualClock clock(1'000'000'000, 1'700'000'000'000'000);
  AggregatorTransport transport(&clock, aggregator->get());
  auto recorder = sdk::TelemetryRecorder::Create();
  ASSERT_TRUE(recorder.ok());
  sdk::ReporterOptions options;
  options.transport = &transport;
  options.recorder = recorder->get();
  auto reporter = sdk::TelemetryReporter::Create(options);
  ASSERT_TRUE(reporter.ok());

  const sdk::Placement placements[] = {
      sdk::Placement::kLocal, sdk::Placement::kCloud, sdk::Placement::kLocalAfterCloudFailure,
      sdk::Placement::kCascadeOffloaded, sdk::Placement::kCascadeLocal};
  std::map<std::string, int> requests;  // by route
  int fallbacks = 0, offloaded = 0;
  double energy = 0;
  int64_t sent = 0;
  int n = 0;
  for (int round = 0; round < 10; ++round) {
    for (int i = 0; i < 7 + round; ++i, ++n) {
      sdk::RouteInfo route;
      route.placement = placements[n % 5];
      route.latency_nanos = 500'000 + int64_t{n} * 3'000'000;
      route.local_runs = route.placement == sdk::Placement::kCloud ? 0 : 1;
      if (route.placement != sdk::Placement::kLocal) {
        route.attempts = 1;
        route.bytes_sent = 1000 + n;
        route.cloud_status =
            route.placement == sdk::Placement::kLocalAfterCloudFailure ? "UNAVAILABLE: x" : "OK";
      }
      (*recorder)->Record("cnn", "4", route, 50'000);
      ++requests[std::string(sdk::RouteLabel(route.placement))];
      fallbacks += sdk::IsFallback(route) ? 1 : 0;
      offloaded += sdk::IsOffloaded(route.placement) ? 1 : 0;
      energy += sdk::EstimateEnergy((*recorder)->profile(), route, 50'000).total_joules();
      sent += route.bytes_sent;
    }
    (*reporter)->Flush();
    ASSERT_TRUE(transport.Deliver(/*outage=*/round >= 3 && round <= 5));
  }
  EXPECT_EQ((*reporter)->failed_reports(), 3u);
  EXPECT_EQ((*reporter)->sent_reports(), 7u);
  EXPECT_TRUE((*recorder)->Snapshot().empty()) << "the last report carried everything";

  const std::string text = registry.Expose();
  int total = 0;
  for (const auto& [route, count] : requests) {
    const std::string labels = R"({model="cnn",version="4",route=")" + route + "\"}";
    EXPECT_EQ(Sample(text, "hml_device_requests_total" + labels), count) << route;
    EXPECT_EQ(Sample(text, "hml_device_inference_latency_seconds_count" + labels), count) << route;
    total += count;
  }
  EXPECT_EQ(total, n);
  EXPECT_EQ(Sample(text, R"(hml_device_fallbacks_total{model="cnn",version="4",route="local"})"),
            fallbacks);
  double server_offloaded = 0, server_energy = 0, server_sent = 0;
  for (const char* route : {"local", "cloud", "cascade"}) {
    const std::string base = std::string(R"({model="cnn",version="4",route=")") + route + "\"";
    const double o = Sample(text, "hml_device_offloaded_total" + base + "}");
    server_offloaded += std::isnan(o) ? 0 : o;
    for (const char* component : {"compute", "radio"}) {
      const double e = Sample(
          text, "hml_device_energy_joules_total" + base + ",component=\"" + component + "\"}");
      server_energy += std::isnan(e) ? 0 : e;
    }
    const double b = Sample(text, "hml_device_radio_bytes_total" + base + ",direction=\"sent\"}");
    server_sent += std::isnan(b) ? 0 : b;
  }
  EXPECT_EQ(server_offloaded, offloaded);
  EXPECT_EQ(server_sent, static_cast<double>(sent));
  EXPECT_NEAR(server_energy, energy, 1e-12 * n);
  EXPECT_NEAR(Sample(text, R"(hml_device_offload_ratio{model="cnn",version="4"})"),
              static_cast<double>(offloaded) / n, 1e-12);
}

}  // namespace
}  // namespace hml

// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// TelemetryAggregator: a report made by the device's TelemetryRecorder shows up in the
// Prometheus exposition with the right labels and values (histogram merged bucket by bucket,
// counters summed over reports and devices, offload ratio, device count); malformed reports are
// refused with a message naming the measurement and change nothing; the (model, version) bound.
#include "src/server/telemetry/telemetry_aggregator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "proto/hybridml_device.pb.h"
#include "src/sdk/telemetry/telemetry_recorder.h"

namespace hml::server {
namespace {

namespace v1 = ::hybridml::v1;
using ::testing::HasSubstr;
using ::testing::Not;

MetricsRegistryOptions NoProcess() {
  MetricsRegistryOptions options;
  options.process_metrics = false;
  return options;
}

// The wire form of a device snapshot, as the transport sends it.
v1::TelemetryReport ToReport(const std::vector<sdk::TelemetryMeasurement>& measurements) {
  v1::TelemetryReport report;
  report.set_timestamp_ms(1'700'000'000'000);
  for (const sdk::TelemetryMeasurement& m : measurements) {
    v1::Measurement* out = report.add_measurements();
    out->set_name(m.name);
    out->set_value(m.value);
    out->mutable_labels()->insert(m.labels.begin(), m.labels.end());
  }
  return report;
}

sdk::RouteInfo Route(sdk::Placement placement, int64_t latency_nanos) {
  sdk::RouteInfo route;
  route.placement = placement;
  route.latency_nanos = latency_nanos;
  return route;
}

// A device's report: two local requests (1.5 ms and 40 ms), one cloud request (120 ms, 1000 B
// sent, 500 B received), one failed request (UNAVAILABLE, 10 ms), for model "m" version "3".
v1::TelemetryReport DeviceReport() {
  sdk::RecorderOptions options;
  options.profile.compute_joules_per_mac = 1e-9;
  options.profile.radio_joules_per_byte_sent = 1e-6;
  options.profile.radio_joules_per_byte_received = 1e-6;
  auto recorder = sdk::TelemetryRecorder::Create(options);
  EXPECT_TRUE(recorder.ok());
  sdk::RouteInfo local = Route(sdk::Placement::kLocal, 1'500'000);
  local.local_runs = 1;
  (*recorder)->Record("m", "3", local, 1'000'000);
  local.latency_nanos = 40'000'000;
  (*recorder)->Record("m", "3", local, 1'000'000);
  sdk::RouteInfo cloud = Route(sdk::Placement::kCloud, 120'000'000);
  cloud.attempts = 1;
  cloud.bytes_sent = 1000;
  cloud.bytes_received = 500;
  cloud.cloud_status = "OK";
  (*recorder)->Record("m", "3", cloud, 1'000'000);
  (*recorder)->RecordFailure("m", "3", UnavailableError("down"), 10'000'000);
  return ToReport((*recorder)->Snapshot().ToMeasurements());
}

class TelemetryAggregatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto aggregator = TelemetryAggregator::Create(registry_);
    ASSERT_TRUE(aggregator.ok()) << aggregator.status().ToString();
    aggregator_ = std::move(*aggregator);
  }

  // Expose() without the reports counter, which a refused report changes on purpose.
  std::string ExposedData() const {
    std::string out;
    const std::string text = registry_.Expose();
    size_t start = 0;
    while (start < text.size()) {
      size_t end = text.find('\n', start);
      if (end == std::string::npos) end = text.size();
      const std::string line = text.substr(start, end - start);
      if (line.find("hml_device_telemetry_reports_total") == std::string::npos) out += line + "\n";
      start = end + 1;
    }
    return out;
  }

  // Sends `report` and expects INVALID_ARGUMENT with `message` in it and no data change.
  void ExpectRefused(const v1::TelemetryReport& report, const std::string& message) {
    const std::string before = ExposedData();
    Status s = aggregator_->Report("dev-1", report);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
    EXPECT_THAT(std::string(s.message()), HasSubstr(message));
    EXPECT_THAT(std::string(s.message()), HasSubstr("dev-1"));
    EXPECT_EQ(ExposedData(), before) << "a refused report changed the metrics";
  }

  MetricsRegistry registry_{NoProcess()};
  std::unique_ptr<TelemetryAggregator> aggregator_;
};

TEST_F(TelemetryAggregatorTest, DeviceReportShowsUpInTheExposition) {
  ASSERT_TRUE(aggregator_->Report("dev-1", DeviceReport()).ok());
  const std::string text = registry_.Expose();
  const std::string local = R"({model="m",version="3",route="local")";
  EXPECT_THAT(text, HasSubstr("hml_device_inference_latency_seconds_bucket" + local +
                              ",le=\"0.001\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("hml_device_inference_latency_seconds_bucket" + local +
                              ",le=\"0.0025\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("hml_device_inference_latency_seconds_bucket" + local +
                              ",le=\"0.025\"} 1\n"));
  EXPECT_THAT(
      text, HasSubstr("hml_device_inference_latency_seconds_bucket" + local + ",le=\"0.05\"} 2\n"));
  EXPECT_THAT(
      text, HasSubstr("hml_device_inference_latency_seconds_bucket" + local + ",le=\"+Inf\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("hml_device_inference_latency_seconds_count" + local + "} 2\n"));
  EXPECT_THAT(text, HasSubstr("hml_device_inference_latency_seconds_sum" + local + "} " +
                              FormatValue(1'500'000 / 1e9 + 40'000'000 / 1e9) + "\n"));
  EXPECT_THAT(text, HasSubstr("hml_device_requests_total" + local + "} 2\n"));
  // 2 runs x 1e6 MACs x 1e-9 J/MAC.
  const double run_joules = 1.0 * 1e6 * 1e-9;
  EXPECT_THAT(text,
              HasSubstr("hml_device_energy_joules_total" + local + ",component=\"compute\"} " +
                        FormatValue(run_joules + run_joules) + "\n"));
  const std::string cloud = R"({model="m",version="3",route="cloud")";
  EXPECT_THAT(text, HasSubstr("hml_device_offloaded_total" + cloud + "} 1\n"));
  EXPECT_THAT(text,
              HasSubstr("hml_device_radio_bytes_total" + cloud + ",direction=\"sent\"} 1000\n"));
  // (1000 + 500) B x 1e-6 J/B.
  EXPECT_THAT(text, HasSubstr("hml_device_energy_joules_total" + cloud + ",component=\"radio\"} " +
                              FormatValue(1000 * 1e-6 + 500 * 1e-6) + "\n"));
  const std::string none = R"({model="m",version="3",route="none")";
  EXPECT_THAT(text, HasSubstr("hml_device_errors_total" + none + ",code=\"UNAVAILABLE\"} 1\n"));
  // 1 offloaded of 4 requests.
  EXPECT_THAT(text, HasSubstr("hml_device_offload_ratio{model=\"m\",version=\"3\"} 0.25\n"));
  EXPECT_THAT(text, HasSubstr("hml_device_reporting_devices 1\n"));
  EXPECT_THAT(text, HasSubstr("hml_device_telemetry_reports_total{result=\"accepted\"} 1\n"));
}

TEST_F(TelemetryAggregatorTest, ReportsAddUpOverReportsAndDevices) {
  ASSERT_TRUE(aggregator_->Report("dev-1", DeviceReport()).ok());
  ASSERT_TRUE(aggregator_->Report("dev-1", DeviceReport()).ok());
  ASSERT_TRUE(aggregator_->Report("dev-2", DeviceReport()).ok());
  const std::string text = registry_.Expose();
  const std::string local = R"({model="m",version="3",route="local")";
  EXPECT_THAT(text, HasSubstr("hml_device_requests_total" + local + "} 6\n"));
  EXPECT_THAT(text, HasSubstr("hml_device_inference_latency_seconds_bucket" + local +
                              ",le=\"0.0025\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("hml_device_inference_latency_seconds_count" + local + "} 6\n"));
  EXPECT_THAT(text, HasSubstr("hml_device_offload_ratio{model=\"m\",version=\"3\"} 0.25\n"));
  EXPECT_THAT(text, HasSubstr("hml_device_reporting_devices 2\n"));
}

// A minimal valid report: one counter.
v1::TelemetryReport OneCounter() {
  v1::TelemetryReport report;
  v1::Measurement* m = report.add_measurements();
  m->set_name("hml_device_requests_total");
  m->set_value(1);
  (*m->mutable_labels())["model"] = "m";
  (*m->mutable_labels())["version"] = "3";
  (*m->mutable_labels())["route"] = "local";
  return report;
}

TEST_F(TelemetryAggregatorTest, BadReportsAreRefusedNamingTheMeasurementAndChangeNothing) {
  ASSERT_TRUE(aggregator_->Report("dev-1", DeviceReport()).ok());

  ExpectRefused(v1::TelemetryReport(), "no measurements");

  // A bad measurement after a good one: the good one is not applied either.
  v1::TelemetryReport report = OneCounter();
  *report.add_measurements() = report.measurements(0);
  report.mutable_measurements(1)->set_name("process_cpu_seconds_total");
  ExpectRefused(report, "measurement 1 'process_cpu_seconds_total");
  report.mutable_measurements(1)->set_name("hml_device_unknown_total");
  ExpectRefused(report, "unknown name");

  report = OneCounter();
  (*report.mutable_measurements(0)->mutable_labels())["host"] = "x";
  ExpectRefused(report, "label 'host' is not allowed");
  report = OneCounter();
  report.mutable_measurements(0)->mutable_labels()->erase("route");
  (*report.mutable_measurements(0)->mutable_labels())[""] = "local";
  ExpectRefused(report, "label '' is not allowed");
  report = OneCounter();
  report.mutable_measurements(0)->mutable_labels()->erase("route");
  ExpectRefused(report, "needs exactly the labels model, version, route");
  report = OneCounter();
  (*report.mutable_measurements(0)->mutable_labels())["route"] = "moon";
  ExpectRefused(report, "route 'moon'");
  report = OneCounter();
  (*report.mutable_measurements(0)->mutable_labels())["model"] = "a\"b";
  ExpectRefused(report, "label 'model' must be 1-128 bytes");
  report = OneCounter();
  (*report.mutable_measurements(0)->mutable_labels())["model"] = std::string(129, 'a');
  ExpectRefused(report, "label 'model' must be 1-128 bytes");

  report = OneCounter();
  report.mutable_measurements(0)->set_value(std::numeric_limits<double>::infinity());
  ExpectRefused(report, "finite");
  report.mutable_measurements(0)->set_value(-1);
  ExpectRefused(report, ">= 0");
  report.mutable_measurements(0)->set_value(1.5);
  ExpectRefused(report, "whole number");

  report = OneCounter();
  *report.add_measurements() = report.measurements(0);
  ExpectRefused(report,
                "measurement 1 'hml_device_requests_total{model=\"m\",route=\"local\","
                "version=\"3\"}': the series appears twice");

  report = OneCounter();
  report.mutable_measurements(0)->set_name("hml_device_errors_total");
  (*report.mutable_measurements(0)->mutable_labels())["code"] = "OOPS";
  ExpectRefused(report, "code 'OOPS' is not a canonical code");
  report = OneCounter();
  report.mutable_measurements(0)->set_name("hml_device_energy_joules_total");
  (*report.mutable_measurements(0)->mutable_labels())["component"] = "screen";
  ExpectRefused(report, "component 'screen'");

  EXPECT_THAT(registry_.Expose(),
              HasSubstr("hml_device_telemetry_reports_total{result=\"rejected\"} 15\n"));
  EXPECT_THAT(aggregator_->Report("", OneCounter()).message(), HasSubstr("device id"));
}

// The histogram series of DeviceReport()'s local route, edited by `edit`.
v1::TelemetryReport EditedHistogram(const std::function<void(v1::TelemetryReport&)>& edit) {
  v1::TelemetryReport all = DeviceReport();
  v1::TelemetryReport report;
  for (const v1::Measurement& m : all.measurements()) {
    if (m.name().starts_with("hml_device_inference_latency_seconds") &&
        m.labels().at("route") == "local") {
      *report.add_measurements() = m;
    }
  }
  edit(report);
  return report;
}

int IndexOf(const v1::TelemetryReport& report, const std::string& name, const std::string& le) {
  for (int i = 0; i < report.measurements_size(); ++i) {
    const v1::Measurement& m = report.measurements(i);
    if (m.name() == name && (le.empty() || m.labels().at("le") == le)) return i;
  }
  ADD_FAILURE() << "no " << name << " le=" << le;
  return 0;
}

TEST_F(TelemetryAggregatorTest, InconsistentHistogramsAreRefused) {
  const std::string bucket = "hml_device_inference_latency_seconds_bucket";
  // The unedited series are accepted.
  ASSERT_TRUE(aggregator_->Report("dev-1", EditedHistogram([](auto&) {})).ok());
  const std::string histogram =
      R"(histogram hml_device_inference_latency_seconds{model="m",route="local",version="3"})";

  ExpectRefused(EditedHistogram([&](v1::TelemetryReport& r) {
                  r.mutable_measurements()->DeleteSubrange(IndexOf(r, bucket, "0.1"), 1);
                }),
                histogram + ": the bucket le=\"0.1\" is missing");
  ExpectRefused(EditedHistogram([&](v1::TelemetryReport& r) {
                  (*r.mutable_measurements(IndexOf(r, bucket, "0.1"))->mutable_labels())["le"] =
                      "0.2";
                }),
                "le '0.2' is not a bound");
  ExpectRefused(EditedHistogram([&](v1::TelemetryReport& r) {
                  r.mutable_measurements(IndexOf(r, bucket, "0.1"))->set_value(0);
                }),
                histogram + ": bucket counts decrease");
  ExpectRefused(
      EditedHistogram([&](v1::TelemetryReport& r) {
        r.mutable_measurements(IndexOf(r, "hml_device_inference_latency_seconds_count", ""))
            ->set_value(3);
      }),
      histogram + ": _count is 3 but the +Inf bucket is 2");
  ExpectRefused(EditedHistogram([&](v1::TelemetryReport& r) {
                  r.mutable_measurements()->DeleteSubrange(
                      IndexOf(r, "hml_device_inference_latency_seconds_sum", ""), 1);
                }),
                histogram + ": _sum is missing");
}

TEST_F(TelemetryAggregatorTest, SizeLimits) {
  TelemetryAggregatorOptions options;
  options.max_measurements = 2;
  options.max_model_versions = 2;
  MetricsRegistry registry(NoProcess());
  auto aggregator = TelemetryAggregator::Create(registry, options);
  ASSERT_TRUE(aggregator.ok());
  v1::TelemetryReport report = OneCounter();
  for (int i = 0; i < 2; ++i) *report.add_measurements() = report.measurements(0);
  EXPECT_THAT((*aggregator)->Report("d", report).message(), HasSubstr("3 measurements; at most 2"));

  for (const char* model : {"a", "b", "c"}) {
    v1::TelemetryReport one = OneCounter();
    (*one.mutable_measurements(0)->mutable_labels())["model"] = model;
    const Status s = (*aggregator)->Report("d", one);
    if (std::string(model) == "c") {
      EXPECT_EQ(s.code(), StatusCode::kResourceExhausted) << s.ToString();
      EXPECT_THAT(registry.Expose(), Not(HasSubstr("model=\"c\"")));
    } else {
      EXPECT_TRUE(s.ok()) << s.ToString();
    }
  }
  // Known pairs still count.
  v1::TelemetryReport again = OneCounter();
  (*again.mutable_measurements(0)->mutable_labels())["model"] = "a";
  EXPECT_TRUE((*aggregator)->Report("d", again).ok());
}

TEST_F(TelemetryAggregatorTest, RegisteringTwiceIsAlreadyExists) {
  EXPECT_EQ(TelemetryAggregator::Create(registry_).status().code(), StatusCode::kAlreadyExists);
}

}  // namespace
}  // namespace hml::server

// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// TelemetryRecorder: exact bucket counts for known latencies (bounds inclusive), the counters
// per route (fallbacks, offloads, errors with their codes), the energy sums, snapshot deltas
// (two snapshots, a failed report merged back), the series bound, and RouteLabel.
#include "src/sdk/telemetry/telemetry_recorder.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace hml::sdk {
namespace {

using Labels = std::map<std::string, std::string>;

// The value of the measurement named `name` with exactly `labels`; nullopt when absent.
std::optional<double> Find(const std::vector<TelemetryMeasurement>& ms, const std::string& name,
                           const Labels& labels) {
  std::optional<double> found;
  for (const TelemetryMeasurement& m : ms) {
    if (m.name == name && m.labels == labels) {
      EXPECT_FALSE(found.has_value()) << "series " << name << " appears twice";
      found = m.value;
    }
  }
  return found;
}

Labels L(const std::string& route,
         std::initializer_list<std::pair<const std::string, std::string>> extra = {}) {
  Labels labels = {{"model", "m"}, {"version", "3"}, {"route", route}};
  labels.insert(extra.begin(), extra.end());
  return labels;
}

RouteInfo Route(Placement placement, int64_t latency_nanos) {
  RouteInfo route;
  route.placement = placement;
  route.latency_nanos = latency_nanos;
  return route;
}

std::unique_ptr<TelemetryRecorder> MakeRecorder(RecorderOptions options = {}) {
  auto recorder = TelemetryRecorder::Create(std::move(options));
  EXPECT_TRUE(recorder.ok()) << recorder.status().ToString();
  return recorder.ok() ? std::move(*recorder) : nullptr;
}

const std::string kLatency = "hml_device_inference_latency_seconds";

TEST(TelemetryRecorderTest, BucketCountsAreExactForKnownLatencies) {
  auto recorder = MakeRecorder();
  ASSERT_NE(recorder, nullptr);
  // 0.5 ms and exactly 1 ms (bounds are inclusive) -> le 0.001; 1.5 ms -> 0.0025; 7 ms -> 0.01;
  // 3 s -> 5; 20 s -> +Inf only.
  for (int64_t nanos : std::initializer_list<int64_t>{500'000, 1'000'000, 1'500'000, 7'000'000,
                                                      3'000'000'000, 20'000'000'000}) {
    recorder->Record("m", "3", Route(Placement::kLocal, nanos), 0);
  }
  const std::vector<TelemetryMeasurement> ms = recorder->Snapshot().ToMeasurements();
  const std::vector<std::pair<std::string, double>> want = {
      {"0.001", 2}, {"0.0025", 3}, {"0.005", 3}, {"0.01", 4}, {"0.025", 4},
      {"0.05", 4},  {"0.1", 4},    {"0.25", 4},  {"0.5", 4},  {"1", 4},
      {"2.5", 4},   {"5", 5},      {"10", 5},    {"+Inf", 6}};
  for (const auto& [le, count] : want) {
    EXPECT_EQ(Find(ms, kLatency + "_bucket", L("local", {{"le", le}})), count) << "le=" << le;
  }
  EXPECT_EQ(Find(ms, kLatency + "_count", L("local")), 6);
  EXPECT_DOUBLE_EQ(*Find(ms, kLatency + "_sum", L("local")),
                   0.0005 + 0.001 + 0.0015 + 0.007 + 3 + 20);
  EXPECT_EQ(Find(ms, "hml_device_requests_total", L("local")), 6);
  // Nothing that did not happen is sent.
  EXPECT_FALSE(Find(ms, "hml_device_fallbacks_total", L("local")).has_value());
  EXPECT_FALSE(Find(ms, "hml_device_offloaded_total", L("local")).has_value());
}

TEST(TelemetryRecorderTest, CountsFallbacksOffloadsErrorsAndEnergyByRoute) {
  RecorderOptions options;
  options.profile.compute_joules_per_mac = 1e-9;
  options.profile.radio_joules_per_byte_sent = 1e-6;
  options.profile.radio_joules_per_byte_received = 1e-7;
  auto recorder = MakeRecorder(options);
  ASSERT_NE(recorder, nullptr);

  RouteInfo local_fallback = Route(Placement::kLocalAfterCloudFailure, 1'000'000);
  local_fallback.local_runs = 1;
  local_fallback.attempts = 2;
  local_fallback.bytes_sent = 300;
  local_fallback.cloud_status = "UNAVAILABLE: link down";
  recorder->Record("m", "3", local_fallback, 1000);

  RouteInfo cloud = Route(Placement::kCloud, 1'000'000);
  cloud.attempts = 1;
  cloud.bytes_sent = 200;
  cloud.bytes_received = 1000;
  cloud.cloud_status = "OK";
  recorder->Record("m", "3", cloud, 1000);

  RouteInfo offloaded = Route(Placement::kCascadeOffloaded, 1'000'000);
  offloaded.local_runs = 1;
  offloaded.attempts = 1;
  offloaded.cloud_status = "OK";
  recorder->Record("m", "3", offloaded, 1000);
  RouteInfo failed_offload = Route(Placement::kCascadeLocal, 1'000'000);
  failed_offload.local_runs = 1;
  failed_offload.attempts = 1;
  failed_offload.cloud_status = "DEADLINE_EXCEEDED: late";
  recorder->Record("m", "3", failed_offload, 1000);
  RouteInfo confident = Route(Placement::kCascadeLocal, 1'000'000);
  confident.local_runs = 1;
  recorder->Record("m", "3", confident, 1000);

  recorder->RecordFailure("m", "3", UnavailableError("no route"), 2'000'000);

  const std::vector<TelemetryMeasurement> ms = recorder->Snapshot().ToMeasurements();
  // local: one request, a fallback, the cloud's UNAVAILABLE, 1000 MACs x 1e-9 + 300 B x 1e-6.
  EXPECT_EQ(Find(ms, "hml_device_requests_total", L("local")), 1);
  EXPECT_EQ(Find(ms, "hml_device_fallbacks_total", L("local")), 1);
  EXPECT_EQ(Find(ms, "hml_device_errors_total", L("local", {{"code", "UNAVAILABLE"}})), 1);
  EXPECT_DOUBLE_EQ(
      *Find(ms, "hml_device_energy_joules_total", L("local", {{"component", "compute"}})), 1e-6);
  EXPECT_DOUBLE_EQ(
      *Find(ms, "hml_device_energy_joules_total", L("local", {{"component", "radio"}})), 3e-4);
  EXPECT_EQ(Find(ms, "hml_device_radio_bytes_total", L("local", {{"direction", "sent"}})), 300);
  // cloud: offloaded, no compute energy, 200 x 1e-6 + 1000 x 1e-7 of radio.
  EXPECT_EQ(Find(ms, "hml_device_offloaded_total", L("cloud")), 1);
  EXPECT_FALSE(Find(ms, "hml_device_fallbacks_total", L("cloud")).has_value());
  EXPECT_FALSE(Find(ms, "hml_device_energy_joules_total", L("cloud", {{"component", "compute"}}))
                   .has_value());
  EXPECT_DOUBLE_EQ(
      *Find(ms, "hml_device_energy_joules_total", L("cloud", {{"component", "radio"}})), 3e-4);
  EXPECT_EQ(Find(ms, "hml_device_radio_bytes_total", L("cloud", {{"direction", "received"}})),
            1000);
  // cascade: three requests, one offloaded, one fallback (the failed offload) with its code.
  EXPECT_EQ(Find(ms, "hml_device_requests_total", L("cascade")), 3);
  EXPECT_EQ(Find(ms, "hml_device_offloaded_total", L("cascade")), 1);
  EXPECT_EQ(Find(ms, "hml_device_fallbacks_total", L("cascade")), 1);
  EXPECT_EQ(Find(ms, "hml_device_errors_total", L("cascade", {{"code", "DEADLINE_EXCEEDED"}})), 1);
  EXPECT_DOUBLE_EQ(
      *Find(ms, "hml_device_energy_joules_total", L("cascade", {{"component", "compute"}})), 3e-6);
  // The failed request: route "none", its code, its latency.
  EXPECT_EQ(Find(ms, "hml_device_requests_total", L("none")), 1);
  EXPECT_EQ(Find(ms, "hml_device_errors_total", L("none", {{"code", "UNAVAILABLE"}})), 1);
  EXPECT_EQ(Find(ms, kLatency + "_bucket", L("none", {{"le", "0.0025"}})), 1);
  EXPECT_EQ(Find(ms, kLatency + "_bucket", L("none", {{"le", "0.001"}})), 0);
}

TEST(TelemetryRecorderTest, SnapshotsAreDeltas) {
  auto recorder = MakeRecorder();
  ASSERT_NE(recorder, nullptr);
  recorder->Record("m", "3", Route(Placement::kLocal, 1'000'000), 0);
  recorder->Record("m", "3", Route(Placement::kLocal, 1'000'000), 0);
  const auto first = recorder->Snapshot().ToMeasurements();
  EXPECT_EQ(Find(first, "hml_device_requests_total", L("local")), 2);

  recorder->Record("m", "3", Route(Placement::kLocal, 30'000'000), 0);
  const auto second = recorder->Snapshot().ToMeasurements();
  EXPECT_EQ(Find(second, "hml_device_requests_total", L("local")), 1);
  EXPECT_EQ(Find(second, kLatency + "_count", L("local")), 1);
  EXPECT_EQ(Find(second, kLatency + "_bucket", L("local", {{"le", "0.001"}})), 0);
  EXPECT_EQ(Find(second, kLatency + "_bucket", L("local", {{"le", "0.05"}})), 1);

  // Nothing new: an empty snapshot, no measurements.
  TelemetrySnapshot third = recorder->Snapshot();
  EXPECT_TRUE(third.empty());
  EXPECT_TRUE(third.ToMeasurements().empty());
}

TEST(TelemetryRecorderTest, FailedReportIsMergedBackWithWhatCameMeanwhile) {
  auto recorder = MakeRecorder();
  ASSERT_NE(recorder, nullptr);
  RouteInfo cloud = Route(Placement::kCloud, 1'000'000);
  cloud.bytes_sent = 100;
  recorder->Record("m", "3", cloud, 0);
  recorder->Record("m", "3", Route(Placement::kLocal, 1'000'000), 0);
  TelemetrySnapshot failed = recorder->Snapshot();  // this report will fail

  recorder->Record("m", "3", cloud, 0);                                    // meanwhile
  recorder->Record("other", "1", Route(Placement::kLocal, 1'000'000), 0);  // a new series
  recorder->Restore(std::move(failed));

  const auto ms = recorder->Snapshot().ToMeasurements();
  EXPECT_EQ(Find(ms, "hml_device_requests_total", L("cloud")), 2);
  EXPECT_EQ(Find(ms, "hml_device_offloaded_total", L("cloud")), 2);
  EXPECT_EQ(Find(ms, "hml_device_radio_bytes_total", L("cloud", {{"direction", "sent"}})), 200);
  EXPECT_EQ(Find(ms, kLatency + "_count", L("cloud")), 2);
  EXPECT_EQ(Find(ms, "hml_device_requests_total", L("local")), 1);
  EXPECT_EQ(Find(ms, "hml_device_requests_total",
                 {{"model", "other"}, {"version", "1"}, {"route", "local"}}),
            1);
  EXPECT_EQ(recorder->dropped(), 0u);
}

TEST(TelemetryRecorderTest, SeriesBeyondTheBoundAreDroppedAndCounted) {
  RecorderOptions options;
  options.max_series = 2;
  auto recorder = MakeRecorder(options);
  ASSERT_NE(recorder, nullptr);
  recorder->Record("a", "1", Route(Placement::kLocal, 1), 0);
  recorder->Record("b", "1", Route(Placement::kLocal, 1), 0);
  recorder->Record("c", "1", Route(Placement::kLocal, 1), 0);  // third series: dropped
  recorder->Record("a", "1", Route(Placement::kLocal, 1), 0);  // existing: kept
  EXPECT_EQ(recorder->dropped(), 1u);
  const auto ms = recorder->Snapshot().ToMeasurements();
  EXPECT_EQ(
      Find(ms, "hml_device_requests_total", {{"model", "a"}, {"version", "1"}, {"route", "local"}}),
      2);
  EXPECT_FALSE(
      Find(ms, "hml_device_requests_total", {{"model", "c"}, {"version", "1"}, {"route", "local"}})
          .has_value());
  // After the snapshot there is room again.
  recorder->Record("c", "1", Route(Placement::kLocal, 1), 0);
  EXPECT_EQ(recorder->dropped(), 1u);
}

TEST(TelemetryRecorderTest, ModelNamesTheServerWouldRefuseAreDropped) {
  auto recorder = MakeRecorder();
  ASSERT_NE(recorder, nullptr);
  recorder->Record("bad\"name", "3", Route(Placement::kLocal, 1), 0);
  recorder->Record("m", "", Route(Placement::kLocal, 1), 0);
  recorder->RecordFailure(std::string(129, 'a'), "3", UnavailableError("x"), 1);
  recorder->Record("m", "3", Route(Placement::kLocal, 1), 0);
  EXPECT_EQ(recorder->dropped(), 3u);
  const auto ms = recorder->Snapshot().ToMeasurements();
  EXPECT_EQ(Find(ms, "hml_device_requests_total", L("local")), 1);
  for (const TelemetryMeasurement& m : ms) EXPECT_EQ(m.labels.at("model"), "m");
}

TEST(TelemetryRecorderTest, ConcurrentRecordsAreAllCounted) {
  auto recorder = MakeRecorder();
  ASSERT_NE(recorder, nullptr);
  std::vector<std::thread> threads;
  uint64_t snapshotted = 0;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&recorder] {
      for (int i = 0; i < 1000; ++i) recorder->Record("m", "3", Route(Placement::kLocal, 1), 0);
    });
  }
  // Snapshots taken while recording lose nothing and count nothing twice.
  for (int i = 0; i < 20; ++i) {
    auto v = Find(recorder->Snapshot().ToMeasurements(), "hml_device_requests_total", L("local"));
    snapshotted += static_cast<uint64_t>(v.value_or(0));
  }
  for (std::thread& thread : threads) thread.join();
  auto rest = Find(recorder->Snapshot().ToMeasurements(), "hml_device_requests_total", L("local"));
  snapshotted += static_cast<uint64_t>(rest.value_or(0));
  EXPECT_EQ(snapshotted, 4000u);
}

TEST(TelemetryRecorderTest, RouteLabelsAndFlags) {
  EXPECT_EQ(RouteLabel(Placement::kLocal), "local");
  EXPECT_EQ(RouteLabel(Placement::kLocalAfterCloudFailure), "local");
  EXPECT_EQ(RouteLabel(Placement::kCloud), "cloud");
  EXPECT_EQ(RouteLabel(Placement::kCloudAfterLocalFailure), "cloud");
  EXPECT_EQ(RouteLabel(Placement::kCascadeLocal), "cascade");
  EXPECT_EQ(RouteLabel(Placement::kCascadeOffloaded), "cascade");
  EXPECT_EQ(RouteLabel(Placement::kSplit), "split");
  EXPECT_TRUE(IsOffloaded(Placement::kSplit));
  EXPECT_FALSE(IsFallback(Route(Placement::kSplit, 1)));
  EXPECT_TRUE(IsOffloaded(Placement::kCloudAfterLocalFailure));
  EXPECT_TRUE(IsOffloaded(Placement::kCascadeOffloaded));
  EXPECT_FALSE(IsOffloaded(Placement::kLocalAfterCloudFailure));
  EXPECT_FALSE(IsOffloaded(Placement::kCascadeLocal));
  EXPECT_TRUE(IsFallback(Route(Placement::kCloudAfterLocalFailure, 0)));
  EXPECT_FALSE(IsFallback(Route(Placement::kCascadeLocal, 0)));  // confident: no cloud call
}

TEST(TelemetryRecorderTest, OptionsAreValidated) {
  RecorderOptions options;
  options.max_series = 0;
  auto recorder = TelemetryRecorder::Create(options);
  ASSERT_FALSE(recorder.ok());
  EXPECT_NE(recorder.status().message().find("max_series"), std::string_view::npos);
  options = RecorderOptions{};
  options.profile.radio_joules_per_byte_sent = -1;
  EXPECT_EQ(TelemetryRecorder::Create(options).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace hml::sdk

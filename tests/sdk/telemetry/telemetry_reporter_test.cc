// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// TelemetryReporter over a fake Transport whose telemetry calls the test answers by hand: a
// flushed report carries the recorder's delta; a failed one is restored and goes out with the
// next; a refused one (INVALID_ARGUMENT) is dropped; one report at a time, a Flush() during one
// runs after it; periodic reports on a ManualScheduler; the destructor restores the report in
// flight.
#include "src/sdk/telemetry/telemetry_reporter.h"

#include <gtest/gtest.h>

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace hml::sdk {
namespace {

// Records ReportTelemetry calls; the test answers them with Answer(). Cancel() answers at once
// with kCancelled (from the cancelling thread, which the reporter allows: it holds no lock then).
class FakeTransport final : public Transport {
 public:
  explicit FakeTransport(Clock* clock) : clock_(clock) {}

  CallId Infer(InferCall, InferCallback done) override {
    done(UnimplementedError("fake"), {});
    return 0;
  }
  CallId Upload(UploadCall, UploadCallback done) override {
    done(UnimplementedError("fake"), {});
    return 0;
  }
  CallId JoinRound(JoinRoundCall, JoinRoundCallback done) override {
    done(UnimplementedError("fake"), {});
    return 0;
  }
  CallId SubmitUpdate(SubmitUpdateCall, SubmitUpdateCallback done) override {
    done(UnimplementedError("fake"), {});
    return 0;
  }
  CallId SecureAggregation(SecureAggregationCall, SecureAggregationCallback done) override {
    done(UnimplementedError("fake"), {});
    return 0;
  }
  CallId ReportTelemetry(TelemetryCall call, TelemetryCallback done) override {
    std::lock_guard lock(mu_);
    EXPECT_TRUE(ValidateTelemetryCall(call).ok());
    calls_.push_back(std::move(call));
    const CallId id = next_id_++;
    pending_[id] = std::move(done);
    return id;
  }
  bool Cancel(CallId id) override {
    TelemetryCallback done;
    {
      std::lock_guard lock(mu_);
      auto it = pending_.find(id);
      if (it == pending_.end()) return false;
      done = std::move(it->second);
      pending_.erase(it);
    }
    done(CancelledError("cancelled"), {});
    return true;
  }
  Clock* clock() const override { return clock_; }

  // Answers the oldest pending call with `status` (OK = acknowledged).
  void Answer(const Status& status) {
    TelemetryCallback done;
    {
      std::lock_guard lock(mu_);
      ASSERT_FALSE(pending_.empty());
      done = std::move(pending_.begin()->second);
      pending_.erase(pending_.begin());
    }
    if (status.ok()) {
      done(TelemetryAnswer{}, {});
    } else {
      done(status, {});
    }
  }
  size_t pending() {
    std::lock_guard lock(mu_);
    return pending_.size();
  }
  std::vector<TelemetryCall> calls() {
    std::lock_guard lock(mu_);
    return calls_;
  }

 private:
  Clock* const clock_;
  std::mutex mu_;
  CallId next_id_ = 1;
  std::map<CallId, TelemetryCallback> pending_;
  std::vector<TelemetryCall> calls_;
};

// The requests_total of route "local" of model m in `call`; nullopt when absent.
std::optional<double> LocalRequests(const TelemetryCall& call) {
  for (const TelemetryMeasurement& m : call.measurements) {
    if (m.name == "hml_device_requests_total" && m.labels.at("route") == "local") return m.value;
  }
  return std::nullopt;
}

class TelemetryReporterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto recorder = TelemetryRecorder::Create();
    ASSERT_TRUE(recorder.ok());
    recorder_ = std::move(*recorder);
  }

  std::unique_ptr<TelemetryReporter> MakeReporter(Scheduler* scheduler = nullptr) {
    ReporterOptions options;
    options.transport = &transport_;
    options.recorder = recorder_.get();
    options.scheduler = scheduler;
    options.interval_nanos = 1'000'000'000;
    options.timeout_nanos = 5'000'000'000;
    auto reporter = TelemetryReporter::Create(options);
    EXPECT_TRUE(reporter.ok()) << reporter.status().ToString();
    return reporter.ok() ? std::move(*reporter) : nullptr;
  }

  void RecordLocal(int n) {
    RouteInfo route;
    route.placement = Placement::kLocal;
    route.latency_nanos = 2'000'000;
    for (int i = 0; i < n; ++i) recorder_->Record("m", "3", route, 0);
  }

  ManualClock clock_{100'000'000'000, 1'700'000'000'000'000};
  FakeTransport transport_{&clock_};
  std::unique_ptr<TelemetryRecorder> recorder_;
};

TEST_F(TelemetryReporterTest, FlushSendsTheDeltaOnce) {
  auto reporter = MakeReporter();
  ASSERT_NE(reporter, nullptr);
  reporter->Flush();  // nothing recorded: nothing sent
  EXPECT_EQ(transport_.calls().size(), 0u);

  RecordLocal(3);
  reporter->Flush();
  ASSERT_EQ(transport_.calls().size(), 1u);
  const TelemetryCall call = transport_.calls()[0];
  EXPECT_EQ(LocalRequests(call), 3);
  EXPECT_EQ(call.timestamp_ms, 1'700'000'000'000 + 100'000);
  EXPECT_EQ(call.deadline_nanos, 105'000'000'000);
  transport_.Answer(Status::Ok());
  EXPECT_EQ(reporter->sent_reports(), 1u);
  EXPECT_FALSE(reporter->in_flight());

  reporter->Flush();  // acknowledged data is not sent again
  EXPECT_EQ(transport_.calls().size(), 1u);
}

TEST_F(TelemetryReporterTest, FailedReportGoesOutWithTheNext) {
  auto reporter = MakeReporter();
  ASSERT_NE(reporter, nullptr);
  RecordLocal(2);
  reporter->Flush();
  transport_.Answer(UnavailableError("offline"));
  EXPECT_EQ(reporter->failed_reports(), 1u);
  EXPECT_EQ(reporter->last_status().code(), StatusCode::kUnavailable);

  RecordLocal(1);
  reporter->Flush();
  ASSERT_EQ(transport_.calls().size(), 2u);
  EXPECT_EQ(LocalRequests(transport_.calls()[1]), 3);  // 2 restored + 1 new, counted once each
  transport_.Answer(Status::Ok());
  EXPECT_EQ(reporter->sent_reports(), 1u);
  EXPECT_TRUE(recorder_->Snapshot().empty());
}

TEST_F(TelemetryReporterTest, RefusedReportIsDropped) {
  auto reporter = MakeReporter();
  ASSERT_NE(reporter, nullptr);
  RecordLocal(2);
  reporter->Flush();
  transport_.Answer(InvalidArgumentError("measurement 0: bad"));
  EXPECT_EQ(reporter->rejected_reports(), 1u);
  EXPECT_TRUE(recorder_->Snapshot().empty());
}

TEST_F(TelemetryReporterTest, OneReportInFlightAndAFlushDuringItRunsAfter) {
  auto reporter = MakeReporter();
  ASSERT_NE(reporter, nullptr);
  RecordLocal(1);
  reporter->Flush();
  RecordLocal(4);
  reporter->Flush();  // in flight: remembered
  EXPECT_EQ(transport_.calls().size(), 1u);
  EXPECT_EQ(transport_.pending(), 1u);
  transport_.Answer(Status::Ok());
  ASSERT_EQ(transport_.calls().size(), 2u);
  EXPECT_EQ(LocalRequests(transport_.calls()[1]), 4);
  transport_.Answer(Status::Ok());
  EXPECT_EQ(reporter->sent_reports(), 2u);
}

TEST_F(TelemetryReporterTest, ReportsPeriodicallyOnTheScheduler) {
  ManualScheduler scheduler(&clock_);
  auto reporter = MakeReporter(&scheduler);
  ASSERT_NE(reporter, nullptr);
  RecordLocal(1);
  scheduler.RunUntil(clock_.NowNanos() + 999'000'000);
  EXPECT_EQ(transport_.calls().size(), 0u);
  scheduler.RunUntil(clock_.NowNanos() + 1'000'000);  // the interval has passed
  ASSERT_EQ(transport_.calls().size(), 1u);
  transport_.Answer(Status::Ok());
  RecordLocal(2);
  scheduler.RunUntil(clock_.NowNanos() + 1'000'000'000);
  ASSERT_EQ(transport_.calls().size(), 2u);
  EXPECT_EQ(LocalRequests(transport_.calls()[1]), 2);
  transport_.Answer(Status::Ok());
  reporter.reset();
  EXPECT_EQ(scheduler.pending(), 0u);  // the destructor cancelled the timer
}

TEST_F(TelemetryReporterTest, DestructorRestoresTheReportInFlight) {
  auto reporter = MakeReporter();
  ASSERT_NE(reporter, nullptr);
  RecordLocal(2);
  reporter->Flush();
  ASSERT_EQ(transport_.pending(), 1u);
  reporter.reset();  // cancels the call; its callback restores the snapshot
  EXPECT_EQ(transport_.pending(), 0u);
  EXPECT_EQ(LocalRequests(TelemetryCall{0, recorder_->Snapshot().ToMeasurements(), 0}), 2);
}

TEST_F(TelemetryReporterTest, OptionsAreValidated) {
  ReporterOptions options;
  options.recorder = recorder_.get();
  EXPECT_NE(TelemetryReporter::Create(options).status().message().find("transport"),
            std::string_view::npos);
  options.transport = &transport_;
  options.interval_nanos = 0;
  EXPECT_NE(TelemetryReporter::Create(options).status().message().find("interval_nanos"),
            std::string_view::npos);
}

}  // namespace
}  // namespace hml::sdk

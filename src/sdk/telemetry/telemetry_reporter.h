// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// TelemetryReporter: sends what a TelemetryRecorder measured to the server in batches (issue 6),
// through Transport::ReportTelemetry (Telemetry.Report on the wire).
//
// Each report is one TelemetryRecorder::Snapshot() (the delta since the last report) as a
// TelemetryCall. When the report fails, the snapshot is handed back to the recorder (Restore) and
// goes out with the next one; so a device that is offline for an hour sends one report with the
// hour's counts when it is back, not sixty. The exception is kInvalidArgument, the server
// refusing the measurements themselves: sending them again would fail again, so they are dropped
// and counted (rejected_reports()).
//
// When: every ReporterOptions::interval_nanos when a Scheduler is given, and on Flush(). At most
// one report is in flight; a Flush() during one is remembered and runs when it ends. An empty
// snapshot sends nothing.
//
// Bound on pending data: the recorder's state is bounded (RecorderOptions::max_series fixed-size
// series, whatever the number of requests or failed reports), one snapshot at most is in flight,
// and a report carries at most one snapshot.
//
// Threading: Flush() and the accessors are thread-safe and never block on the network. The
// transport's callback restores or drops the snapshot and may start the next report. The
// destructor cancels the timer and the report in flight and waits for its callback, which
// restores the snapshot into the recorder; the recorder, transport and scheduler must outlive
// the reporter.
//
// Device target: no exceptions, no server headers.
#ifndef HML_SRC_SDK_TELEMETRY_TELEMETRY_REPORTER_H_
#define HML_SRC_SDK_TELEMETRY_TELEMETRY_REPORTER_H_

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>

#include "hml/status.h"
#include "src/sdk/resilience/scheduler.h"
#include "src/sdk/telemetry/telemetry_recorder.h"
#include "src/sdk/transport.h"

namespace hml::sdk {

struct ReporterOptions {
  // Carries the reports. Must outlive the reporter. Required.
  Transport* transport = nullptr;
  // Holds the measurements. Must outlive the reporter. Required.
  TelemetryRecorder* recorder = nullptr;
  // Runs the periodic reports on the transport's clock. Null: no periodic reports, Flush() only.
  // Must outlive the reporter. Default: null.
  Scheduler* scheduler = nullptr;
  // Time between periodic reports. > 0. Default: 60 s.
  int64_t interval_nanos = 60'000'000'000;
  // Deadline of each report, relative to its start. > 0. Default: 10 s.
  int64_t timeout_nanos = 10'000'000'000;

  // kInvalidArgument naming the field.
  Status Validate() const;
};

class TelemetryReporter {
 public:
  // Starts the periodic timer when a scheduler is given. kInvalidArgument for bad options.
  static Result<std::unique_ptr<TelemetryReporter>> Create(ReporterOptions options);
  ~TelemetryReporter();
  TelemetryReporter(const TelemetryReporter&) = delete;
  TelemetryReporter& operator=(const TelemetryReporter&) = delete;

  // Sends what the recorder holds now, unless it holds nothing; when a report is in flight, sends
  // again as soon as it ends. Returns at once.
  void Flush();

  // Reports acknowledged by the server.
  uint64_t sent_reports() const;
  // Reports that failed and were restored into the recorder.
  uint64_t failed_reports() const;
  // Reports the server refused (kInvalidArgument); their measurements were dropped.
  uint64_t rejected_reports() const;
  // The status of the last finished report (OK before any).
  Status last_status() const;
  // Whether a report is in flight.
  bool in_flight() const;

 private:
  explicit TelemetryReporter(ReporterOptions options) : options_(options) {}
  // Starts a report when none is in flight and the recorder has data. REQUIRES: mu_ held.
  void StartLocked();
  // The transport's callback of the report in flight.
  void Finished(const Result<TelemetryAnswer>& answer);
  // Schedules the next periodic report. REQUIRES: mu_ held.
  void ScheduleTickLocked();
  void Tick();

  // What the timer task holds instead of `this`, so that a task the scheduler already started
  // when the destructor runs finds a null owner rather than a dead object.
  struct TimerLink {
    std::mutex mu;
    TelemetryReporter* owner = nullptr;  // guarded by mu; null once the destructor began
  };

  const ReporterOptions options_;
  const std::shared_ptr<TimerLink> link_ = std::make_shared<TimerLink>();
  mutable std::mutex mu_;
  std::condition_variable idle_cv_;
  bool in_flight_ = false;                         // guarded by mu_
  bool flush_again_ = false;                       // guarded by mu_
  bool stopping_ = false;                          // guarded by mu_
  CallId call_ = 0;                                // guarded by mu_
  std::optional<TelemetrySnapshot> pending_;       // guarded by mu_: the report in flight
  std::optional<Scheduler::TaskId> timer_;         // guarded by mu_
  uint64_t sent_ = 0, failed_ = 0, rejected_ = 0;  // guarded by mu_
  Status last_status_;                             // guarded by mu_
};

}  // namespace hml::sdk

#endif  // HML_SRC_SDK_TELEMETRY_TELEMETRY_REPORTER_H_

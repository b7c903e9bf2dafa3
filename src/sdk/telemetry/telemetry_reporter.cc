// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/sdk/telemetry/telemetry_reporter.h"

#include <utility>
#include <vector>

namespace hml::sdk {

Status ReporterOptions::Validate() const {
  if (transport == nullptr) return InvalidArgumentError("ReporterOptions.transport is required");
  if (recorder == nullptr) return InvalidArgumentError("ReporterOptions.recorder is required");
  if (interval_nanos <= 0) {
    return InvalidArgumentError("ReporterOptions.interval_nanos is " +
                                std::to_string(interval_nanos) + "; it must be > 0");
  }
  if (timeout_nanos <= 0) {
    return InvalidArgumentError("ReporterOptions.timeout_nanos is " +
                                std::to_string(timeout_nanos) + "; it must be > 0");
  }
  return Status::Ok();
}

Result<std::unique_ptr<TelemetryReporter>> TelemetryReporter::Create(ReporterOptions options) {
  HML_RETURN_IF_ERROR(options.Validate());
  std::unique_ptr<TelemetryReporter> reporter(new TelemetryReporter(options));
  reporter->link_->owner = reporter.get();
  if (options.scheduler != nullptr) {
    std::lock_guard lock(reporter->mu_);
    reporter->ScheduleTickLocked();
  }
  return reporter;
}

TelemetryReporter::~TelemetryReporter() {
  {
    // After this block no timer task reaches this object: one running now has finished.
    std::lock_guard link_lock(link_->mu);
    link_->owner = nullptr;
  }
  std::unique_lock lock(mu_);
  stopping_ = true;
  if (timer_.has_value() && options_.scheduler != nullptr) options_.scheduler->Cancel(*timer_);
  if (in_flight_) {
    // The callback restores the snapshot; it runs soon after a Cancel(), on a transport thread.
    const CallId call = call_;
    lock.unlock();
    options_.transport->Cancel(call);
    lock.lock();
    idle_cv_.wait(lock, [this] { return !in_flight_; });
  }
}

void TelemetryReporter::Flush() {
  std::lock_guard lock(mu_);
  if (stopping_) return;
  if (in_flight_) {
    flush_again_ = true;
    return;
  }
  StartLocked();
}

void TelemetryReporter::StartLocked() {
  if (in_flight_ || stopping_) return;
  TelemetrySnapshot snapshot = options_.recorder->Snapshot();
  if (snapshot.empty()) return;
  TelemetryCall call;
  Clock* clock = options_.transport->clock();
  call.timestamp_ms = clock->WallMicros() / 1000;
  call.measurements = snapshot.ToMeasurements();
  call.deadline_nanos = clock->NowNanos() + options_.timeout_nanos;
  pending_ = std::move(snapshot);
  in_flight_ = true;
  // The transport never runs the callback inside ReportTelemetry(), so holding mu_ here is safe.
  call_ = options_.transport->ReportTelemetry(
      std::move(call),
      [this](Result<TelemetryAnswer> answer, const CallStats& /*stats*/) { Finished(answer); });
}

void TelemetryReporter::Finished(const Result<TelemetryAnswer>& answer) {
  std::lock_guard lock(mu_);
  last_status_ = answer.status();
  if (answer.ok()) {
    ++sent_;
  } else if (answer.status().code() == StatusCode::kInvalidArgument) {
    // Sending the same measurements again would be refused again.
    ++rejected_;
  } else {
    ++failed_;
    if (pending_.has_value()) options_.recorder->Restore(std::move(*pending_));
  }
  pending_.reset();
  in_flight_ = false;
  call_ = 0;
  if (flush_again_ && !stopping_) {
    flush_again_ = false;
    StartLocked();
  }
  idle_cv_.notify_all();
}

void TelemetryReporter::ScheduleTickLocked() {
  if (options_.scheduler == nullptr || stopping_) return;
  const int64_t when = options_.scheduler->clock()->NowNanos() + options_.interval_nanos;
  timer_ = options_.scheduler->ScheduleAt(when, [link = link_] {
    std::lock_guard link_lock(link->mu);
    if (link->owner != nullptr) link->owner->Tick();
  });
}

void TelemetryReporter::Tick() {
  std::lock_guard lock(mu_);
  timer_.reset();
  if (stopping_) return;
  if (in_flight_) {
    flush_again_ = true;
  } else {
    StartLocked();
  }
  ScheduleTickLocked();
}

uint64_t TelemetryReporter::sent_reports() const {
  std::lock_guard lock(mu_);
  return sent_;
}

uint64_t TelemetryReporter::failed_reports() const {
  std::lock_guard lock(mu_);
  return failed_;
}

uint64_t TelemetryReporter::rejected_reports() const {
  std::lock_guard lock(mu_);
  return rejected_;
}

Status TelemetryReporter::last_status() const {
  std::lock_guard lock(mu_);
  return last_status_;
}

bool TelemetryReporter::in_flight() const {
  std::lock_guard lock(mu_);
  return in_flight_;
}

}  // namespace hml::sdk

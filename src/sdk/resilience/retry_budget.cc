// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/sdk/resilience/retry_budget.h"

#include <cmath>
#include <memory>
#include <string>

namespace hml::sdk {

Status RetryBudgetOptions::Validate() const {
  if (!(retry_ratio >= 0.0 && retry_ratio <= 1000.0)) {
    return InvalidArgumentError("RetryBudgetOptions.retry_ratio must be in [0, 1000], got " +
                                std::to_string(retry_ratio));
  }
  if (!(min_retries_per_second >= 0.0) || !std::isfinite(min_retries_per_second)) {
    return InvalidArgumentError("RetryBudgetOptions.min_retries_per_second must be >= 0");
  }
  if (window_nanos <= 0) {
    return InvalidArgumentError("RetryBudgetOptions.window_nanos must be positive, got " +
                                std::to_string(window_nanos));
  }
  if (num_buckets < 1 || window_nanos / num_buckets < 1) {
    return InvalidArgumentError(
        "RetryBudgetOptions.num_buckets must be in [1, window_nanos], got " +
        std::to_string(num_buckets));
  }
  return Status::Ok();
}

Result<std::unique_ptr<RetryBudget>> RetryBudget::Create(const RetryBudgetOptions& options,
                                                         Clock* clock) {
  HML_RETURN_IF_ERROR(options.Validate());
  if (clock == nullptr) return InvalidArgumentError("RetryBudget: clock is null");
  return std::unique_ptr<RetryBudget>(new RetryBudget(options, clock));
}

RetryBudget::RetryBudget(const RetryBudgetOptions& options, Clock* clock)
    : options_(options),
      clock_(clock),
      bucket_nanos_(options.window_nanos / options.num_buckets),
      buckets_(options.num_buckets) {}

void RetryBudget::Slide(int64_t now_epoch) {
  // A slot whose epoch is not within the last num_buckets epochs holds expired counts.
  for (Bucket& b : buckets_) {
    if (b.epoch <= now_epoch - options_.num_buckets) b = Bucket{};
  }
  Bucket& current = buckets_[static_cast<size_t>(now_epoch % options_.num_buckets)];
  if (current.epoch != now_epoch) current = Bucket{now_epoch, 0, 0};
}

double RetryBudget::BalanceLocked() {
  int64_t calls = 0;
  int64_t retries = 0;
  for (const Bucket& b : buckets_) {
    calls += b.calls;
    retries += b.retries;
  }
  double window_seconds = static_cast<double>(options_.window_nanos) / 1e9;
  return options_.min_retries_per_second * window_seconds +
         options_.retry_ratio * static_cast<double>(calls) - static_cast<double>(retries);
}

void RetryBudget::RecordCall() {
  int64_t epoch = clock_->NowNanos() / bucket_nanos_;
  std::lock_guard<std::mutex> lock(mu_);
  Slide(epoch);
  buckets_[static_cast<size_t>(epoch % options_.num_buckets)].calls++;
  counters_.calls++;
}

bool RetryBudget::TryWithdrawRetry() {
  int64_t epoch = clock_->NowNanos() / bucket_nanos_;
  std::lock_guard<std::mutex> lock(mu_);
  Slide(epoch);
  if (BalanceLocked() < 1.0) {
    counters_.retries_refused++;
    return false;
  }
  buckets_[static_cast<size_t>(epoch % options_.num_buckets)].retries++;
  counters_.retries_allowed++;
  return true;
}

double RetryBudget::Balance() {
  int64_t epoch = clock_->NowNanos() / bucket_nanos_;
  std::lock_guard<std::mutex> lock(mu_);
  Slide(epoch);
  return BalanceLocked();
}

RetryBudgetCounters RetryBudget::counters() const {
  std::lock_guard<std::mutex> lock(mu_);
  return counters_;
}

}  // namespace hml::sdk

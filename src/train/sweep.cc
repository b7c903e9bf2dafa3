// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/train/sweep.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

namespace hml::train {

Status SweepGrid::Validate() const {
  for (double v : learning_rates) {
    if (!(v > 0.0)) return InvalidArgumentError("sweep: learning rates must be > 0");
  }
  for (int64_t v : batch_sizes) {
    if (v < 1) return InvalidArgumentError("sweep: batch sizes must be >= 1");
  }
  for (double v : widths) {
    if (!(v > 0.0)) return InvalidArgumentError("sweep: widths must be > 0");
  }
  const size_t points = std::max<size_t>(1, learning_rates.size()) *
                        std::max<size_t>(1, batch_sizes.size()) *
                        std::max<size_t>(1, widths.size());
  if (points > 256) {
    return InvalidArgumentError("sweep: " + std::to_string(points) +
                                " grid points; at most 256 are allowed");
  }
  return Status::Ok();
}

std::vector<SweepPoint> ExpandGrid(const SweepGrid& grid, const TrainOptions& base) {
  const std::vector<double> lrs =
      grid.learning_rates.empty() ? std::vector<double>{base.learning_rate} : grid.learning_rates;
  const std::vector<int64_t> batches =
      grid.batch_sizes.empty() ? std::vector<int64_t>{base.batch_size} : grid.batch_sizes;
  const std::vector<double> widths = grid.widths.empty() ? std::vector<double>{1.0} : grid.widths;
  std::vector<SweepPoint> points;
  for (double lr : lrs) {
    for (int64_t b : batches) {
      for (double w : widths) points.push_back({lr, b, w});
    }
  }
  return points;
}

Result<SweepReport> RunSweep(
    const SweepGrid& grid, const ModelFactory& factory, const data::Dataset& train,
    const data::Dataset& validation, const TrainOptions& base,
    const std::function<void(const SweepResult&, size_t, size_t)>& on_result) {
  HML_RETURN_IF_ERROR(grid.Validate());
  if (validation.size() == 0) {
    return InvalidArgumentError("sweep: the validation set is empty (points are ranked on it)");
  }
  const std::vector<SweepPoint> points = ExpandGrid(grid, base);
  SweepReport report;
  double best_accuracy = -1;
  for (size_t i = 0; i < points.size(); ++i) {
    const SweepPoint& p = points[i];
    HML_ASSIGN_OR_RETURN(runtime::Graph graph, factory(p.width));
    HML_ASSIGN_OR_RETURN(std::unique_ptr<GraphModule> module, GraphModule::Create(graph));
    TrainOptions options = base;
    options.learning_rate = p.learning_rate;
    options.batch_size = p.batch_size;
    SweepResult r;
    r.point = p;
    r.parameters = module->num_parameters();
    const auto start = std::chrono::steady_clock::now();
    Result<TrainReport> trained = Train(*module, train, &validation, options);
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (trained.ok()) {
      const EpochStats& e = trained->epochs[static_cast<size_t>(trained->best_epoch - 1)];
      r.validation_accuracy = e.validation_accuracy;
      r.train_loss = e.train_loss;
    } else {
      r.status = trained.status();
    }
    if (r.status.ok() && r.validation_accuracy > best_accuracy) {
      best_accuracy = r.validation_accuracy;
      report.best = i;
      report.best_module = std::move(module);
    }
    report.results.push_back(r);
    if (on_result) on_result(r, i, points.size());
  }
  if (report.best_module == nullptr) {
    return AbortedError("sweep: every run failed; the first: " +
                        report.results.front().status.ToString());
  }
  return report;
}

std::string FormatLeaderboard(const std::vector<SweepResult>& results) {
  std::vector<const SweepResult*> ranked;
  for (const SweepResult& r : results) ranked.push_back(&r);
  std::stable_sort(ranked.begin(), ranked.end(), [](const SweepResult* a, const SweepResult* b) {
    if (a->status.ok() != b->status.ok()) return a->status.ok();
    return a->validation_accuracy > b->validation_accuracy;
  });
  std::string out;
  char line[512];
  std::snprintf(line, sizeof(line), "%4s %10s %6s %6s %11s %9s %11s %8s\n", "rank", "lr", "batch",
                "width", "parameters", "val acc", "train loss", "seconds");
  out += line;
  for (size_t i = 0; i < ranked.size(); ++i) {
    const SweepResult& r = *ranked[i];
    if (r.status.ok()) {
      std::snprintf(line, sizeof(line), "%4zu %10g %6lld %6g %11lld %8.2f%% %11.4f %8.1f\n", i + 1,
                    r.point.learning_rate, static_cast<long long>(r.point.batch_size),
                    r.point.width, static_cast<long long>(r.parameters),
                    100.0 * r.validation_accuracy, r.train_loss, r.seconds);
    } else {
      std::snprintf(line, sizeof(line), "%4zu %10g %6lld %6g %11lld   failed: %s\n", i + 1,
                    r.point.learning_rate, static_cast<long long>(r.point.batch_size),
                    r.point.width, static_cast<long long>(r.parameters),
                    r.status.ToString().c_str());
    }
    out += line;
  }
  return out;
}

}  // namespace hml::train

// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Hyper-parameter sweep: trains one model per point of a grid over learning rate, batch size and
// architecture width, scores each on the validation set (never the test set: that would make the
// test accuracy of the winner optimistic) and ranks them in a leaderboard. Runs are sequential
// and each is seeded the same way, so a sweep is reproducible and its points comparable.
//
// Torch-free header.
#ifndef HML_SRC_TRAIN_SWEEP_H_
#define HML_SRC_TRAIN_SWEEP_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "hml/status.h"
#include "src/data/dataset.h"
#include "src/runtime/graph.h"
#include "src/train/graph_module.h"
#include "src/train/trainer.h"

namespace hml::train {

// The axes of the grid. An empty axis takes the base TrainOptions' value (width: 1).
struct SweepGrid {
  std::vector<double> learning_rates;
  std::vector<int64_t> batch_sizes;
  std::vector<double> widths;

  // kInvalidArgument for a non-positive value on any axis, or more than 256 points.
  Status Validate() const;
};

struct SweepPoint {
  double learning_rate = 0;
  int64_t batch_size = 0;
  double width = 1;
};

// Every combination, learning rate varying slowest, width fastest.
std::vector<SweepPoint> ExpandGrid(const SweepGrid& grid, const TrainOptions& base);

struct SweepResult {
  SweepPoint point;
  int64_t parameters = 0;
  double validation_accuracy = -1;  // of the weights the run ended with (or its best epoch)
  double train_loss = 0;
  double seconds = 0;
  Status status;  // a failed run (e.g. diverged) is ranked last, with its error
};

struct SweepReport {
  std::vector<SweepResult> results;  // in run order
  size_t best = 0;                   // index into results
  std::unique_ptr<GraphModule> best_module;
};

// Builds the model of a grid point (from its width).
using ModelFactory = std::function<Result<runtime::Graph>(double width)>;

// Runs the sweep. `base` supplies every other option (epochs, optimizer, schedule, seed, ...);
// its progress callback is kept for each run, and `on_result` (optional) is called after each.
// Errors: kInvalidArgument for a bad grid or an empty validation set; a factory error is
// returned as it comes. A run that fails (e.g. kAborted on a NaN loss) does not stop the sweep;
// kAborted when every run fails.
Result<SweepReport> RunSweep(const SweepGrid& grid, const ModelFactory& factory,
                             const data::Dataset& train, const data::Dataset& validation,
                             const TrainOptions& base,
                             const std::function<void(const SweepResult&, size_t index,
                                                      size_t count)>& on_result = {});

// The results ranked by validation accuracy (failed runs last), one row per point.
std::string FormatLeaderboard(const std::vector<SweepResult>& results);

}  // namespace hml::train

#endif  // HML_SRC_TRAIN_SWEEP_H_

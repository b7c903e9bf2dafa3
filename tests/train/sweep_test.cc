// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/train/sweep.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "src/train/zoo.h"
#include "tests/testing/datasets.h"

namespace hml::train {
namespace {

using ::testing::HasSubstr;

using testing::Blobs;

TEST(SweepTest, GridOrderAndDefaults) {
  TrainOptions base;
  base.learning_rate = 0.5;
  base.batch_size = 7;
  SweepGrid grid;
  grid.learning_rates = {0.1, 0.2};
  grid.widths = {1, 2};
  const std::vector<SweepPoint> points = ExpandGrid(grid, base);
  ASSERT_EQ(points.size(), 4u);
  EXPECT_EQ(points[0].learning_rate, 0.1);
  EXPECT_EQ(points[0].width, 1);
  EXPECT_EQ(points[1].width, 2);  // width varies fastest
  EXPECT_EQ(points[2].learning_rate, 0.2);
  for (const SweepPoint& p : points) EXPECT_EQ(p.batch_size, 7);  // the base value

  SweepGrid bad;
  bad.batch_sizes = {0};
  EXPECT_EQ(bad.Validate().code(), StatusCode::kInvalidArgument);
  SweepGrid huge;
  for (int i = 1; i <= 20; ++i) {
    huge.learning_rates.push_back(i);
    huge.batch_sizes.push_back(i);
  }
  EXPECT_THAT(std::string(huge.Validate().message()), HasSubstr("400 grid points"));
}

TEST(SweepTest, RanksOnValidationKeepsTheBestModelAndSurvivesADivergedRun) {
  auto train = Blobs(300, 1), validation = Blobs(90, 2);
  TrainOptions base;
  base.batch_size = 16;
  base.epochs = 2;
  SweepGrid grid;
  // 1e-6 barely moves; 1e30 diverges (NaN loss); 0.05 learns.
  grid.learning_rates = {1e-6, 1e30, 0.05};
  grid.widths = {0.05, 1.0};  // an MLP with 13 or 256 hidden units
  std::vector<double> widths_built;
  ModelFactory factory = [&](double width) {
    widths_built.push_back(width);
    return BuildArchitecture("mlp", {4}, 3, 3, width);
  };
  size_t callbacks = 0;
  auto report = RunSweep(grid, factory, *train, *validation, base,
                         [&](const SweepResult&, size_t i, size_t n) {
                           EXPECT_EQ(i, callbacks);
                           EXPECT_EQ(n, 6u);
                           ++callbacks;
                         });
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(callbacks, 6u);
  EXPECT_EQ(widths_built.size(), 6u);
  ASSERT_EQ(report->results.size(), 6u);
  EXPECT_LT(report->results[0].parameters, report->results[1].parameters);
  EXPECT_EQ(report->results[2].status.code(), StatusCode::kAborted);  // the diverged runs
  EXPECT_EQ(report->results[3].status.code(), StatusCode::kAborted);
  const SweepResult& best = report->results[report->best];
  EXPECT_EQ(best.point.learning_rate, 0.05);
  EXPECT_GT(best.validation_accuracy, 0.9);
  for (const SweepResult& r : report->results) {
    if (r.status.ok()) {
      EXPECT_LE(r.validation_accuracy, best.validation_accuracy);
    }
  }
  // The kept module is the best run's: it scores what the sweep measured.
  ASSERT_NE(report->best_module, nullptr);
  auto acc = Evaluate(*report->best_module, *validation);
  ASSERT_TRUE(acc.ok());
  EXPECT_DOUBLE_EQ(*acc, best.validation_accuracy);

  const std::string board = FormatLeaderboard(report->results);
  EXPECT_THAT(board, HasSubstr("failed: ABORTED"));
  // Rank 1 is the best point; failed runs come last.
  EXPECT_LT(board.find("   1       0.05"), board.find("failed"));
}

TEST(SweepTest, EmptyValidationAndAllFailedRunsAreErrors) {
  auto train = Blobs(30, 1);
  auto empty = *data::InMemoryDataset::Create({4}, 3, {}, {});
  ModelFactory factory = [](double width) { return BuildArchitecture("mlp", {4}, 3, 3, width); };
  TrainOptions base;
  EXPECT_EQ(RunSweep({}, factory, *train, *empty, base).status().code(),
            StatusCode::kInvalidArgument);
  base.batch_size = 8;  // several steps, so the loss after the first huge one is seen
  SweepGrid diverging;
  diverging.learning_rates = {1e30};
  auto all_failed = RunSweep(diverging, factory, *train, *Blobs(30, 2), base);
  EXPECT_EQ(all_failed.status().code(), StatusCode::kAborted);
  EXPECT_THAT(std::string(all_failed.status().message()), HasSubstr("every run failed"));
}

}  // namespace
}  // namespace hml::train

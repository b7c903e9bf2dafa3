// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// RunFederatedFleet end to end on a real registry: three devices with label-skewed blobs install
// a linear classifier over the air, take part in a FederatedTasks task through their
// InProcessTransports (JoinRound / SubmitUpdate over emulated Wi-Fi), and the task publishes and
// rolls out one version per round, which the devices install; the final version is far better
// than the first on held-out data. The same with secure aggregation (FederatedLearning.
// SecureAggregation instead of SubmitUpdate).
#include "src/sim/federated_fleet.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "hml/runtime/model.h"
#include "src/data/evaluate.h"
#include "src/runtime/onnx_io.h"
#include "src/server/registry/keys.h"
#include "src/server/registry/registry.h"
#include "tests/testing/datasets.h"
#include "tests/testing/models.h"
#include "tests/testing/serving_fakes.h"

namespace hml::sim {
namespace {

namespace fs = std::filesystem;

class FederatedFleetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/federated_fleet_test_" + std::to_string(::getpid());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    registry_dir_ = dir_ + "/registry";
    keys_dir_ = dir_ + "/keys";
    ASSERT_TRUE(server::InitKeyDir(keys_dir_).ok());
    const std::string model_path = dir_ + "/linear.onnx";
    std::ofstream(model_path, std::ios::binary)
        << *runtime::SerializeOnnxModel(testing::LinearClassifierGraph());
    server::RegistryOptions options;
    options.create_if_missing = true;
    auto registry = server::Registry::Open(*DefaultEnv(), *RealClock(), registry_dir_,
                                           *server::LoadKeyDir(*DefaultEnv(), keys_dir_), options);
    ASSERT_TRUE(registry.ok()) << registry.status().ToString();
    ASSERT_TRUE((*registry)->Publish(model_path, "linear", "1.0.0", "").ok());
    ASSERT_TRUE((*registry)->Rollout("linear", 1, "stable", 100).ok());
    registry->reset();
    // Held-out data for the server's evaluation, as CSV.
    test_ = testing::Blobs(300, 2);
    std::ofstream csv(dir_ + "/eval.csv");
    csv << "a,b,c,d,label\n";
    for (int64_t i = 0; i < test_->size(); ++i) {
      for (int64_t d = 0; d < 4; ++d)
        csv << test_->features()[static_cast<size_t>(i * 4 + d)] << ",";
      csv << test_->labels()[static_cast<size_t>(i)] << "\n";
    }
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string dir_, registry_dir_, keys_dir_;
  std::shared_ptr<data::InMemoryDataset> test_;
};

// Both ways of summing a round: plain updates (int8) and secure aggregation, where the server
// only ever holds masked inputs and their sum.
class FederatedFleetModeTest : public FederatedFleetTest,
                               public ::testing::WithParamInterface<bool> {};

TEST_P(FederatedFleetModeTest, DevicesTrainAndInstallEachNewVersionOverTheAir) {
  const bool secure = GetParam();
  server::FederatedTasksOptions tasks_options;
  tasks_options.registry_dir = registry_dir_;
  tasks_options.keys_dir = keys_dir_;
  tasks_options.secure_poll_ms = 20;
  auto tasks = server::FederatedTasks::Create(tasks_options);
  ASSERT_TRUE(tasks.ok()) << tasks.status().ToString();
  server::FederatedTaskSpec spec;
  spec.name = "blobs";
  spec.model = "linear";
  spec.eval_data = "csv:" + dir_ + "/eval.csv";
  spec.rollout_channel = "stable";
  spec.gather_ms = 0;
  spec.max_rounds = 2;
  spec.round.clients_per_round = 3;
  spec.round.over_selection = 1.0;
  spec.round.min_report_fraction = 1.0;
  spec.round.deadline_ms = 60000;
  spec.round.local_epochs = 0;
  spec.round.local_steps = 15;
  spec.round.batch_size = 16;
  spec.round.learning_rate = 0.05;
  spec.round.codec = secure ? "none" : "int8";
  spec.round.secure_aggregation = secure;
  const Status added = (*tasks)->AddTask(spec);
  ASSERT_TRUE(added.ok()) << added.ToString();

  // Device i holds the training blobs of class i only.
  const auto train = testing::Blobs(300, 1);
  std::vector<std::vector<int64_t>> parts(3);
  for (int64_t i = 0; i < train->size(); ++i) {
    parts[static_cast<size_t>(train->labels()[static_cast<size_t>(i)])].push_back(i);
  }
  testing::FakeCnnBackend backend(server::BatchingOptions{});
  FederatedFleetOptions options;
  options.registry_dir = registry_dir_;
  options.model = "linear";
  options.tasks = tasks->get();
  options.task = "blobs";
  options.backend = &backend;
  for (auto& p : parts) options.device_data.push_back(*data::SubsetDataset::Create(train, p));
  options.work_dir = dir_ + "/devices";
  options.timeout_ms = 60000;
  std::vector<std::string> lines;
  options.progress = [&](std::string_view line) { lines.emplace_back(line); };
  auto report = RunFederatedFleet(options);
  ASSERT_TRUE(report.ok()) << report.status().ToString();

  EXPECT_EQ(report->status.state, "done");
  ASSERT_EQ(report->rounds.size(), 2u);
  for (const fl::RoundResult& r : report->rounds) {
    EXPECT_EQ(r.status, fl::RoundStatus::kApplied) << r.abandon_reason;
    EXPECT_EQ(r.participants, 3);
    EXPECT_GT(r.bytes_received, 0);
  }
  ASSERT_EQ(report->devices.size(), 3u);
  for (const FederatedDeviceRow& d : report->devices) {
    EXPECT_EQ(d.rounds_trained, 2) << d.device_id;
    EXPECT_EQ(d.rounds_accepted, 2) << d.device_id;
    EXPECT_EQ(d.installed_version, 3) << d.device_id;  // v1 + one version per round
    EXPECT_GT(d.update_bytes, 0);
    EXPECT_GT(d.wire_bytes_sent, d.update_bytes);
    EXPECT_GT(d.ota_bytes, 0);
  }
  EXPECT_FALSE(lines.empty());
  // The version the devices installed over the air beats the first one on held-out data.
  auto first = Model::FromGraph(testing::LinearClassifierGraph());
  auto last = Model::Load(report->devices[0].installed_path);
  ASSERT_TRUE(first.ok() && last.ok());
  data::EvaluateOptions eval;
  eval.backend = "reference";
  auto before = data::EvaluateModel(*first, *test_, eval);
  auto after = data::EvaluateModel(*last, *test_, eval);
  ASSERT_TRUE(before.ok() && after.ok());
  EXPECT_LT(before->accuracy, 0.7);
  EXPECT_GT(after->accuracy, 0.9);
  ASSERT_TRUE(report->status.last_accuracy.has_value());
  EXPECT_NEAR(*report->status.last_accuracy, after->accuracy, 1e-9);
}

INSTANTIATE_TEST_SUITE_P(PlainAndSecure, FederatedFleetModeTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? std::string("Secure") : std::string("Plain");
                         });

}  // namespace
}  // namespace hml::sim

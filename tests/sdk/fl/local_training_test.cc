// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/sdk/fl/local_training.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <memory>
#include <vector>

#include "tests/testing/datasets.h"
#include "tests/testing/models.h"

namespace hml::sdk {
namespace {

// A plugged-in, idle device on Wi-Fi.
std::unique_ptr<StaticPlatform> ReadyPlatform() {
  auto p = std::make_unique<StaticPlatform>();
  p->set_network({.type = NetworkType::kUnmetered});
  p->set_power({.battery_level = 0.9, .charging = true});
  p->set_idle(true);
  return p;
}

// Unplugs itself once power() has been asked `checks` times.
class UnplugAfter final : public Platform {
 public:
  explicit UnplugAfter(int checks) : left_(checks) {}
  NetworkState network() const override { return {.type = NetworkType::kUnmetered}; }
  PowerState power() const override { return {.battery_level = 0.9, .charging = left_-- > 0}; }
  bool idle() const override { return true; }
  Result<std::string> StoreKey(uint32_t) const override { return NotFoundError("no keys"); }

 private:
  mutable std::atomic<int> left_;
};

// Each reading is one second later than the last.
class SecondPerRead final : public Clock {
 public:
  int64_t NowNanos() const override { return 1'000'000'000 * reads_++; }
  int64_t WallMicros() const override { return 0; }
  void SleepNanos(int64_t) override {}

 private:
  mutable std::atomic<int64_t> reads_{0};
};

class LocalTrainingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto t = runtime::Trainer::Create(testing::LinearClassifierGraph(), runtime::TrainOptions{});
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    trainer_ = std::move(*t);
    global_ = trainer_->GetParameters();
    config_.local_steps = 40;
    config_.batch_size = 16;
    config_.learning_rate = 0.1f;
  }

  std::unique_ptr<runtime::Trainer> trainer_;
  std::vector<float> global_;
  std::shared_ptr<data::InMemoryDataset> data_ = testing::Blobs(300, 3);
  LocalTrainingConfig config_;
  TrainingBudget budget_;
};

TEST_F(LocalTrainingTest, TrainsAndReturnsTheDeltaFromTheGlobalWeights) {
  auto platform = ReadyPlatform();
  auto r = TrainLocally(*trainer_, *data_, global_, config_, budget_, *platform, *RealClock());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->stop, TrainingStop::kCompleted);
  EXPECT_EQ(r->steps, 40);
  EXPECT_EQ(r->batch_size, 16);
  EXPECT_EQ(r->update.num_examples, 300);
  ASSERT_EQ(r->update.layout.size(), 2u);
  EXPECT_EQ(r->update.layout[0].name, "fc.w");
  EXPECT_EQ(r->update.layout[0].shape, (std::vector<int64_t>{3, 4}));
  const std::vector<float> trained = trainer_->GetParameters();
  ASSERT_EQ(r->update.delta.size(), trained.size());
  for (size_t i = 0; i < trained.size(); ++i) {
    EXPECT_FLOAT_EQ(r->update.delta[i], trained[i] - global_[i]);
  }
  // Learned: the loss on the data fell well below ln(3).
  std::vector<float> grads;
  auto inputs = Tensor::FromVector<float>({300, 4}, data_->features());
  ASSERT_TRUE(inputs.ok());
  auto loss = trainer_->LossAndGradients(*inputs, data_->labels(), &grads);
  ASSERT_TRUE(loss.ok());
  EXPECT_LT(*loss, 0.3);
  EXPECT_LT(r->mean_loss, std::log(3.0));
}

TEST_F(LocalTrainingTest, DoesNotStartWhenTheConditionsAreNotMet) {
  auto platform = ReadyPlatform();
  platform->set_network({.type = NetworkType::kMetered});
  auto r = TrainLocally(*trainer_, *data_, global_, config_, budget_, *platform, *RealClock());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("metered"), std::string::npos) << r.status().ToString();
  EXPECT_EQ(trainer_->GetParameters(), global_);
}

TEST_F(LocalTrainingTest, StopsCleanlyWhenTheDeviceIsUnplugged) {
  UnplugAfter platform(2);  // the start check and the first in-training check pass
  budget_.check_every_steps = 5;
  auto r = TrainLocally(*trainer_, *data_, global_, config_, budget_, platform, *RealClock());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kAborted);
  EXPECT_NE(r.status().message().find("after 10 of 40 steps"), std::string::npos)
      << r.status().ToString();
  EXPECT_NE(r.status().message().find("charging"), std::string::npos) << r.status().ToString();
  EXPECT_EQ(trainer_->GetParameters(), global_);  // back at the round's weights
}

TEST_F(LocalTrainingTest, StopsWhenTheAppCancels) {
  auto platform = ReadyPlatform();
  std::atomic<bool> cancel{true};
  auto r =
      TrainLocally(*trainer_, *data_, global_, config_, budget_, *platform, *RealClock(), &cancel);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kAborted);
  EXPECT_NE(r.status().message().find("cancelled"), std::string::npos);
  EXPECT_EQ(trainer_->GetParameters(), global_);
}

TEST_F(LocalTrainingTest, TimeBudgetEndsTrainingWithAValidPartialUpdate) {
  auto platform = ReadyPlatform();
  SecondPerRead clock;
  budget_.max_seconds = 3.0;
  budget_.check_every_steps = 1;
  auto r = TrainLocally(*trainer_, *data_, global_, config_, budget_, *platform, clock);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->stop, TrainingStop::kTimeBudget);
  EXPECT_GT(r->steps, 0);
  EXPECT_LT(r->steps, 40);
  const std::vector<float> trained = trainer_->GetParameters();
  for (size_t i = 0; i < trained.size(); ++i) {
    EXPECT_FLOAT_EQ(r->update.delta[i], trained[i] - global_[i]);
  }
}

TEST_F(LocalTrainingTest, MemoryBudgetShrinksTheBatchOrRefuses) {
  auto platform = ReadyPlatform();
  budget_.max_memory_bytes = trainer_->EstimateMemoryBytes(4);
  auto r = TrainLocally(*trainer_, *data_, global_, config_, budget_, *platform, *RealClock());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_LE(r->batch_size, 4);
  EXPECT_GE(r->batch_size, 1);
  budget_.max_memory_bytes = trainer_->EstimateMemoryBytes(1) - 1;
  auto refused =
      TrainLocally(*trainer_, *data_, global_, config_, budget_, *platform, *RealClock());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kResourceExhausted);
}

TEST_F(LocalTrainingTest, RejectsWeightsOfTheWrongSizeAndEmptyData) {
  auto platform = ReadyPlatform();
  std::vector<float> short_weights(global_.begin(), global_.end() - 1);
  auto r =
      TrainLocally(*trainer_, *data_, short_weights, config_, budget_, *platform, *RealClock());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  auto empty = *data::InMemoryDataset::Create({4}, 3, {}, {});
  auto e = TrainLocally(*trainer_, *empty, global_, config_, budget_, *platform, *RealClock());
  EXPECT_EQ(e.status().code(), StatusCode::kInvalidArgument);
}

TEST(LocalTrainingConfigTest, ReadsTheRoundConfigAndNamesBadKeys) {
  auto c = LocalTrainingConfig::FromConfigMap({{"local_steps", "25"},
                                               {"batch_size", "8"},
                                               {"learning_rate", "0.02"},
                                               {"prox_mu", "0.01"},
                                               {"strategy", "fedprox"}});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->local_steps, 25);
  EXPECT_EQ(c->batch_size, 8);
  EXPECT_FLOAT_EQ(c->learning_rate, 0.02f);
  EXPECT_FLOAT_EQ(c->prox_mu, 0.01f);
  auto bad = LocalTrainingConfig::FromConfigMap({{"batch_size", "eight"}});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("batch_size"), std::string::npos);
  EXPECT_FALSE(LocalTrainingConfig::FromConfigMap({{"learning_rate", "-1"}}).ok());
}

}  // namespace
}  // namespace hml::sdk

// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/fl/strategy.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

namespace hml::fl {
namespace {

using ::testing::HasSubstr;

ModelUpdate Update(std::string client, int64_t examples, std::vector<float> delta) {
  ModelUpdate update;
  update.client_id = std::move(client);
  update.num_examples = examples;
  update.delta = std::move(delta);
  return update;
}

// Client a: delta {1, -1} on 1 example; client b: delta {4, 2} on 3 examples.
// Weighted mean: {(1 + 12) / 4, (-1 + 6) / 4} = {3.25, 1.25}.
std::vector<ModelUpdate> TwoClients() { return {Update("a", 1, {1, -1}), Update("b", 3, {4, 2})}; }

std::unique_ptr<Strategy> Make(const StrategyOptions& options) {
  Result<std::unique_ptr<Strategy>> s = Strategy::Create(options);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? std::move(*s) : nullptr;
}

TEST(WeightedMeanTest, WeightsByExamples) {
  std::vector<ModelUpdate> updates = TwoClients();
  Result<std::vector<float>> mean = WeightedMean(updates);
  ASSERT_TRUE(mean.ok());
  EXPECT_THAT(*mean, ::testing::ElementsAre(3.25f, 1.25f));
}

TEST(WeightedMeanTest, RejectsEmptyMismatchedAndExampleLess) {
  EXPECT_FALSE(WeightedMean({}).ok());
  std::vector<ModelUpdate> sizes = {Update("a", 1, {1, 2}), Update("b", 1, {1})};
  EXPECT_THAT(WeightedMean(sizes).status().message(), HasSubstr("client 'b'"));
  std::vector<ModelUpdate> zero = {Update("a", 0, {1})};
  EXPECT_THAT(WeightedMean(zero).status().message(), HasSubstr("num_examples"));
}

TEST(StrategyTest, FedAvgAddsTheWeightedMeanDelta) {
  auto s = Make(DefaultStrategyOptions(StrategyKind::kFedAvg));
  std::vector<float> global = {1, 2};
  Result<std::vector<float>> next = s->Apply(global, TwoClients());
  ASSERT_TRUE(next.ok());
  EXPECT_THAT(*next, ::testing::ElementsAre(4.25f, 3.25f));
}

TEST(StrategyTest, FedAvgServerLearningRateScalesTheStep) {
  StrategyOptions options = DefaultStrategyOptions(StrategyKind::kFedAvg);
  options.server_lr = 0.5;
  auto s = Make(options);
  std::vector<float> global = {1, 2};
  Result<std::vector<float>> next = s->Apply(global, TwoClients());
  ASSERT_TRUE(next.ok());
  EXPECT_THAT(*next, ::testing::ElementsAre(2.625f, 2.625f));
}

TEST(StrategyTest, FedProxServerIsFedAvgAndCarriesMu) {
  StrategyOptions options = DefaultStrategyOptions(StrategyKind::kFedProx);
  EXPECT_DOUBLE_EQ(options.proximal_mu, 0.01);
  options.proximal_mu = 0.1;
  auto prox = Make(options);
  auto avg = Make(DefaultStrategyOptions(StrategyKind::kFedAvg));
  std::vector<float> global = {1, 2};
  Result<std::vector<float>> a = prox->Apply(global, TwoClients());
  Result<std::vector<float>> b = avg->Apply(global, TwoClients());
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);
  EXPECT_DOUBLE_EQ(prox->options().proximal_mu, 0.1);
}

TEST(StrategyTest, FedAvgMAccumulatesMomentumAcrossRounds) {
  auto s = Make(DefaultStrategyOptions(StrategyKind::kFedAvgM));  // momentum 0.9, lr 1
  std::vector<float> global = {0, 0};
  Result<std::vector<float>> r1 = s->Apply(global, TwoClients());
  ASSERT_TRUE(r1.ok());
  EXPECT_THAT(*r1, ::testing::ElementsAre(3.25f, 1.25f));  // v = d
  Result<std::vector<float>> r2 = s->Apply(global, TwoClients());
  ASSERT_TRUE(r2.ok());
  // v = 0.9 * d + d = 1.9 * d.
  EXPECT_NEAR((*r2)[0], 1.9 * 3.25, 1e-6);
  EXPECT_NEAR((*r2)[1], 1.9 * 1.25, 1e-6);
}

// One coordinate, aggregated delta 2 in round 1 and 0.1 in round 2; lr 0.1, b1 0.9, b2 0.99,
// tau 1e-3. Round 1 (both): m = 0.2, v = 0.04, step = 0.1 * 0.2 / (0.2 + 1e-3) = 0.0995024876.
// Round 2: m = 0.19. FedAdam v = 0.99 * 0.04 + 0.01 * 0.01 = 0.0397 -> step 0.0948820671.
// FedYogi v = 0.04 - 0.01 * 0.01 * sign(0.04 - 0.01) = 0.0399 -> step 0.0946451547.
void ExpectAdaptiveSteps(StrategyKind kind, double round2_step) {
  auto s = Make(DefaultStrategyOptions(kind));
  std::vector<float> global = {0};
  std::vector<ModelUpdate> r1_updates = {Update("a", 1, {1}), Update("b", 1, {3})};
  Result<std::vector<float>> r1 = s->Apply(global, r1_updates);
  ASSERT_TRUE(r1.ok());
  EXPECT_NEAR((*r1)[0], 0.0995024876, 1e-7);
  std::vector<ModelUpdate> r2_updates = {Update("a", 1, {0.1f})};
  Result<std::vector<float>> r2 = s->Apply(global, r2_updates);
  ASSERT_TRUE(r2.ok());
  EXPECT_NEAR((*r2)[0], round2_step, 1e-7);
}

TEST(StrategyTest, FedAdamMatchesHandComputedSteps) {
  ExpectAdaptiveSteps(StrategyKind::kFedAdam, 0.0948820671);
}

TEST(StrategyTest, FedYogiMatchesHandComputedSteps) {
  ExpectAdaptiveSteps(StrategyKind::kFedYogi, 0.0946451547);
}

TEST(StrategyTest, DocumentedDefaults) {
  StrategyOptions avg = DefaultStrategyOptions(StrategyKind::kFedAvg);
  EXPECT_DOUBLE_EQ(avg.server_lr, 1.0);
  EXPECT_EQ(avg.aggregator, AggregatorKind::kWeightedMean);
  StrategyOptions adam = DefaultStrategyOptions(StrategyKind::kFedAdam);
  EXPECT_DOUBLE_EQ(adam.server_lr, 0.1);
  EXPECT_DOUBLE_EQ(adam.beta1, 0.9);
  EXPECT_DOUBLE_EQ(adam.beta2, 0.99);
  EXPECT_DOUBLE_EQ(adam.tau, 1e-3);
  EXPECT_DOUBLE_EQ(DefaultStrategyOptions(StrategyKind::kFedYogi).server_lr, 0.1);
  EXPECT_DOUBLE_EQ(DefaultStrategyOptions(StrategyKind::kFedAvgM).momentum, 0.9);
}

TEST(StrategyTest, RobustAggregatorReplacesTheMean) {
  StrategyOptions options = DefaultStrategyOptions(StrategyKind::kFedAvg);
  options.aggregator = AggregatorKind::kCoordinateMedian;
  auto s = Make(options);
  std::vector<ModelUpdate> updates = {Update("a", 1, {1}), Update("b", 1, {2}),
                                      Update("evil", 100, {1000})};
  std::vector<float> global = {10};
  Result<std::vector<float>> next = s->Apply(global, updates);
  ASSERT_TRUE(next.ok());
  EXPECT_FLOAT_EQ((*next)[0], 12.0f);  // median 2, example counts ignored
}

TEST(StrategyTest, RejectsBadOptions) {
  StrategyOptions bad = DefaultStrategyOptions(StrategyKind::kFedAdam);
  bad.beta2 = 1.0;
  Result<std::unique_ptr<Strategy>> s = Strategy::Create(bad);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.status().message(), HasSubstr("beta2"));
  bad = {};
  bad.server_lr = 0.0;
  EXPECT_FALSE(Strategy::Create(bad).ok());
  bad = {};
  bad.trim_fraction = 0.5;
  EXPECT_FALSE(Strategy::Create(bad).ok());
  bad = {};
  bad.proximal_mu = -1;
  EXPECT_FALSE(Strategy::Create(bad).ok());
}

TEST(StrategyTest, SizeMismatchIsAnErrorAndLeavesStateUnchanged) {
  auto s = Make(DefaultStrategyOptions(StrategyKind::kFedAvgM));
  std::vector<float> global3 = {0, 0, 0};
  Result<std::vector<float>> bad = s->Apply(global3, TwoClients());
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("global model has 3"));
  EXPECT_FALSE(s->Apply(global3, {}).ok());
  // The failed rounds did not touch the momentum: the next good round is a first round.
  std::vector<float> global = {0, 0};
  Result<std::vector<float>> next = s->Apply(global, TwoClients());
  ASSERT_TRUE(next.ok());
  EXPECT_THAT(*next, ::testing::ElementsAre(3.25f, 1.25f));
}

}  // namespace
}  // namespace hml::fl

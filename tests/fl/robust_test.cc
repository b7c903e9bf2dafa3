// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Robust aggregators on hand-made vectors, and the Byzantine test: federated logistic
// regression where 2 of 10 clients send their honest update sign-flipped and scaled by 10.
#include "src/fl/robust.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <numbers>
#include <random>
#include <string>
#include <vector>

#include "src/fl/strategy.h"

namespace hml::fl {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

ModelUpdate Update(std::string client, std::vector<float> delta, int64_t examples = 1) {
  ModelUpdate update;
  update.client_id = std::move(client);
  update.num_examples = examples;
  update.delta = std::move(delta);
  return update;
}

// Four close points on a line and one far outlier.
std::vector<ModelUpdate> FiveWithOutlier() {
  return {Update("a", {1, 10}), Update("b", {2, 20}), Update("c", {3, 30}), Update("d", {4, 40}),
          Update("e", {100, -1000})};
}

TEST(CoordinateMedianTest, OddAndEvenCounts) {
  std::vector<ModelUpdate> five = FiveWithOutlier();
  Result<std::vector<float>> odd = CoordinateMedian(five);
  ASSERT_TRUE(odd.ok());
  EXPECT_THAT(*odd, ElementsAre(3.0f, 20.0f));
  std::vector<ModelUpdate> four(five.begin(), five.begin() + 4);
  Result<std::vector<float>> even = CoordinateMedian(four);
  ASSERT_TRUE(even.ok());
  EXPECT_THAT(*even, ElementsAre(2.5f, 25.0f));
}

TEST(CoordinateMedianTest, RejectsEmptyAndMismatchedSizes) {
  EXPECT_FALSE(CoordinateMedian({}).ok());
  std::vector<ModelUpdate> mixed = {Update("a", {1, 2}), Update("b", {1})};
  EXPECT_THAT(CoordinateMedian(mixed).status().message(), HasSubstr("client 'b'"));
}

TEST(TrimmedMeanTest, TrimsPerCoordinate) {
  std::vector<ModelUpdate> five = FiveWithOutlier();
  // floor(0.2 * 5) = 1 from each end: {2,3,4} and {10,20,30}.
  Result<std::vector<float>> trimmed = TrimmedMean(five, 0.2);
  ASSERT_TRUE(trimmed.ok());
  EXPECT_THAT(*trimmed, ElementsAre(3.0f, 20.0f));
  // floor(0.39 * 5) = 1 as well.
  EXPECT_THAT(*TrimmedMean(five, 0.39), ElementsAre(3.0f, 20.0f));
  // Nothing trimmed: the plain (unweighted) mean.
  EXPECT_THAT(*TrimmedMean(five, 0.0), ElementsAre(22.0f, -180.0f));
  // floor(0.1 * 5) = 0: also the plain mean.
  EXPECT_THAT(*TrimmedMean(five, 0.1), ElementsAre(22.0f, -180.0f));
}

TEST(TrimmedMeanTest, RejectsBadFraction) {
  std::vector<ModelUpdate> five = FiveWithOutlier();
  EXPECT_THAT(TrimmedMean(five, 0.5).status().message(), HasSubstr("trim_fraction"));
  EXPECT_FALSE(TrimmedMean(five, -0.1).ok());
  EXPECT_FALSE(TrimmedMean(five, NAN).ok());
}

TEST(KrumTest, PicksTheMostCentralUpdate) {
  // 1-D points 0, 1, 2, 10, 100 with f = 1: each scores its 5 - 1 - 2 = 2 nearest squared
  // distances: 0 -> 1 + 4 = 5, 1 -> 1 + 1 = 2, 2 -> 1 + 4 = 5, 10 -> 64 + 81, 100 -> large.
  std::vector<ModelUpdate> updates = {Update("p0", {0}), Update("p1", {1}), Update("p2", {2}),
                                      Update("p10", {10}), Update("p100", {100})};
  Result<int64_t> index = KrumSelect(updates, 1);
  ASSERT_TRUE(index.ok());
  EXPECT_EQ(*index, 1);
  EXPECT_THAT(*Krum(updates, 1), ElementsAre(1.0f));
}

TEST(KrumTest, TiesGoToTheLowestIndex) {
  // Squared distances: a-b = b-c = c-d = 101, a-c = b-d = 404; with f = 1 (2 neighbours) b and c
  // both score 202.
  std::vector<ModelUpdate> five = FiveWithOutlier();
  Result<int64_t> index = KrumSelect(five, 1);
  ASSERT_TRUE(index.ok());
  EXPECT_EQ(*index, 1);
}

TEST(KrumTest, NeedsFPlusThreeUpdates) {
  std::vector<ModelUpdate> five = FiveWithOutlier();
  EXPECT_TRUE(KrumSelect(five, 2).ok());
  Result<int64_t> too_few = KrumSelect(five, 3);
  ASSERT_FALSE(too_few.ok());
  EXPECT_THAT(too_few.status().message(), HasSubstr("at least 6 updates"));
  EXPECT_FALSE(KrumSelect(five, -1).ok());
}

// ---- Byzantine test -----------------------------------------------------------------------

// Deterministic standard normals from a seeded engine (Box-Muller on our own uniform, so the
// data is the same with every standard library).
class Gaussian {
 public:
  explicit Gaussian(uint64_t seed) : engine_(seed) {}
  double Next() {
    const double u1 = Uniform();
    const double u2 = Uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
  }

 private:
  double Uniform() { return (static_cast<double>(engine_() >> 11) + 0.5) * 0x1.0p-53; }
  std::mt19937_64 engine_;
};

constexpr int kFeatures = 10;
constexpr int kParams = kFeatures + 1;  // weights, then the bias

struct Example {
  std::vector<float> x;
  int label;
};

// Labels come from a fixed linear teacher plus logistic-scale noise, so the best accuracy is
// below 100 % and a model pushed the wrong way visibly loses accuracy.
std::vector<Example> MakeData(Gaussian& gauss, const std::vector<double>& teacher, int count) {
  std::vector<Example> data(count);
  for (Example& e : data) {
    e.x.resize(kFeatures);
    double logit = teacher[kFeatures];
    for (int k = 0; k < kFeatures; ++k) {
      e.x[k] = static_cast<float>(gauss.Next());
      logit += teacher[k] * e.x[k];
    }
    e.label = logit + 0.5 * gauss.Next() > 0.0 ? 1 : 0;
  }
  return data;
}

double Logit(const std::vector<float>& w, const Example& e) {
  double z = w[kFeatures];
  for (int k = 0; k < kFeatures; ++k) z += static_cast<double>(w[k]) * e.x[k];
  return z;
}

double Accuracy(const std::vector<float>& w, const std::vector<Example>& data) {
  int correct = 0;
  for (const Example& e : data) correct += (Logit(w, e) > 0.0 ? 1 : 0) == e.label;
  return 100.0 * correct / static_cast<double>(data.size());
}

// Local training: full-batch gradient descent on the mean log loss; returns the delta.
std::vector<float> LocalDelta(const std::vector<float>& global, const std::vector<Example>& data,
                              int steps, double lr) {
  std::vector<float> w = global;
  std::vector<double> grad(kParams);
  for (int s = 0; s < steps; ++s) {
    std::fill(grad.begin(), grad.end(), 0.0);
    for (const Example& e : data) {
      const double p = 1.0 / (1.0 + std::exp(-Logit(w, e)));
      const double err = p - e.label;
      for (int k = 0; k < kFeatures; ++k) grad[k] += err * e.x[k];
      grad[kFeatures] += err;
    }
    for (int k = 0; k < kParams; ++k) {
      w[k] -= static_cast<float>(lr * grad[k] / static_cast<double>(data.size()));
    }
  }
  std::vector<float> delta(kParams);
  for (int k = 0; k < kParams; ++k) delta[k] = w[k] - global[k];
  return delta;
}

struct Federation {
  std::vector<std::vector<Example>> clients;
  std::vector<Example> test;
};

Federation MakeFederation() {
  Gaussian gauss(20261126);
  std::vector<double> teacher(kParams);
  for (double& t : teacher) t = gauss.Next();
  Federation fed;
  for (int c = 0; c < 10; ++c) fed.clients.push_back(MakeData(gauss, teacher, 100));
  fed.test = MakeData(gauss, teacher, 4000);
  return fed;
}

// Runs `rounds` rounds from zero weights; clients listed in `byzantine` send their honest delta
// times -10. Returns the test accuracy in percent.
double RunFederation(const Federation& fed, AggregatorKind aggregator,
                     const std::vector<int>& byzantine) {
  StrategyOptions options = DefaultStrategyOptions(StrategyKind::kFedAvg);
  options.aggregator = aggregator;
  options.trim_fraction = 0.2;
  options.krum_f = 2;
  Result<std::unique_ptr<Strategy>> strategy = Strategy::Create(options);
  EXPECT_TRUE(strategy.ok());
  std::vector<float> global(kParams, 0.0f);
  for (int round = 0; round < 5; ++round) {
    std::vector<ModelUpdate> updates;
    for (int c = 0; c < static_cast<int>(fed.clients.size()); ++c) {
      ModelUpdate u;
      u.client_id = "client-" + std::to_string(c);
      u.round_id = round;
      u.num_examples = static_cast<int64_t>(fed.clients[c].size());
      u.delta = LocalDelta(global, fed.clients[c], /*steps=*/5, /*lr=*/0.5);
      if (std::find(byzantine.begin(), byzantine.end(), c) != byzantine.end()) {
        for (float& v : u.delta) v *= -10.0f;
      }
      updates.push_back(std::move(u));
    }
    Result<std::vector<float>> next = (*strategy)->Apply(global, updates);
    EXPECT_TRUE(next.ok()) << next.status().ToString();
    if (!next.ok()) return 0.0;
    global = std::move(*next);
  }
  return Accuracy(global, fed.test);
}

TEST(ByzantineTest, MedianAndTrimmedMeanResistSignFlippedClients) {
  const Federation fed = MakeFederation();
  const std::vector<int> attackers = {3, 7};
  const double clean = RunFederation(fed, AggregatorKind::kWeightedMean, {});
  const double fedavg = RunFederation(fed, AggregatorKind::kWeightedMean, attackers);
  const double median = RunFederation(fed, AggregatorKind::kCoordinateMedian, attackers);
  const double trimmed = RunFederation(fed, AggregatorKind::kTrimmedMean, attackers);
  const double krum = RunFederation(fed, AggregatorKind::kKrum, attackers);
  RecordProperty("clean_fedavg_accuracy", std::to_string(clean));
  std::printf(
      "clean FedAvg %.2f %%, attacked: FedAvg %.2f %%, median %.2f %%, "
      "trimmed mean %.2f %%, Krum %.2f %%\n",
      clean, fedavg, median, trimmed, krum);
  EXPECT_GT(clean, 80.0);  // the clean run learns the task
  EXPECT_LT(fedavg, clean - 2.0);
  EXPECT_NEAR(median, clean, 2.0);
  EXPECT_NEAR(trimmed, clean, 2.0);
  EXPECT_NEAR(krum, clean, 5.0);  // one client's model: noisier, still near the clean run
}

}  // namespace
}  // namespace hml::fl

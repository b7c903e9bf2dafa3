// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/fl/coordinator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "src/fl/strategy.h"

namespace hml::fl {
namespace {

using ::testing::HasSubstr;

const UpdateLayout kLayout = {{"w", {2, 2}}, {"b", {2}}};  // 6 values
const std::vector<float> kInitial = {0.5f, -0.25f, 1.0f, 0.0f, 0.125f, -1.0f};

std::vector<std::string> Ids(int n, const std::string& prefix = "dev-") {
  std::vector<std::string> ids;
  for (int i = 0; i < n; ++i) ids.push_back(prefix + std::to_string(i));
  return ids;
}

std::unique_ptr<Coordinator> Make(const RoundConfig& config,
                                  std::vector<std::string> population = {}) {
  Result<std::unique_ptr<Coordinator>> c =
      Coordinator::Create(config, kLayout, kInitial, std::move(population));
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.ok() ? std::move(*c) : nullptr;
}

// A deterministic delta for (client, round): small values that differ per client.
ModelUpdate UpdateFor(const std::string& client, int64_t round, int64_t examples = 10) {
  ModelUpdate update;
  update.client_id = client;
  update.round_id = round;
  update.num_examples = examples;
  update.layout = kLayout;
  const float base = static_cast<float>(std::hash<std::string>{}(client) % 97) / 97.0f;
  for (int i = 0; i < 6; ++i) {
    update.delta.push_back(0.1f * (base - 0.5f) + 0.01f * static_cast<float>(i) +
                           0.001f * static_cast<float>(round));
  }
  return update;
}

bool BitwiseEqual(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

RoundConfig SmallConfig() {
  RoundConfig config;
  config.clients_per_round = 4;
  config.over_selection = 1.5;        // selects 6
  config.min_report_fraction = 0.75;  // needs 3
  config.deadline_ms = 1000;
  return config;
}

TEST(RoundConfigTest, CountsAndValidation) {
  RoundConfig config;
  EXPECT_TRUE(config.Validate().ok());
  EXPECT_EQ(config.NumToSelect(), 13);  // ceil(1.3 * 10), not 14 from rounding error
  EXPECT_EQ(config.MinReports(), 8);
  config.over_selection = 1.0;
  EXPECT_EQ(config.NumToSelect(), 10);
  config.clients_per_round = 7;
  config.min_report_fraction = 0.5;
  EXPECT_EQ(config.MinReports(), 4);

  auto invalid = [](RoundConfig c, const char* text) {
    Status status = c.Validate();
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << text;
    EXPECT_THAT(status.message(), HasSubstr(text));
  };
  RoundConfig c;
  c.strategy = "fedsgd";
  invalid(c, "strategy 'fedsgd'");
  c = RoundConfig();
  c.aggregator = "mean";
  invalid(c, "aggregator 'mean'");
  c = RoundConfig();
  c.over_selection = 0.9;
  invalid(c, "over_selection");
  c = RoundConfig();
  c.min_report_fraction = 0.0;
  invalid(c, "min_report_fraction");
  c = RoundConfig();
  c.codec = "zip";
  invalid(c, "codec 'zip'");
  c = RoundConfig();
  c.dp_clip_norm = 1.0;
  c.aggregator = "median";
  invalid(c, "cannot be used with DP");
  c = RoundConfig();
  c.beta2 = 1.0;
  invalid(c, "beta2");
}

TEST(RoundConfigTest, ClientConfigCarriesLocalTraining) {
  RoundConfig config;
  config.strategy = "fedprox";
  config.prox_mu = 0.5;
  config.codec = "int8";
  config.int8_chunk_size = 128;
  config.local_epochs = 2;
  const auto map = config.ClientConfig();
  EXPECT_EQ(map.at("local_epochs"), "2");
  EXPECT_EQ(map.at("prox_mu"), "0.5");
  EXPECT_EQ(map.at("codec"), "int8");
  EXPECT_EQ(map.at("int8_chunk_size"), "128");
  EXPECT_EQ(map.at("learning_rate"), "0.01");
  EXPECT_FALSE(map.contains("topk_fraction"));
  EXPECT_FALSE(RoundConfig().ClientConfig().contains("prox_mu"));
}

TEST(CoordinatorTest, CreateChecksWeightsAndDpPopulation) {
  EXPECT_EQ(Coordinator::Create(RoundConfig(), kLayout, {1.0f}).status().code(),
            StatusCode::kInvalidArgument);
  std::vector<float> nan = kInitial;
  nan[2] = NAN;
  EXPECT_EQ(Coordinator::Create(RoundConfig(), kLayout, nan).status().code(),
            StatusCode::kInvalidArgument);
  RoundConfig dp;
  dp.dp_clip_norm = 1.0;
  Result<std::unique_ptr<Coordinator>> open = Coordinator::Create(dp, kLayout, kInitial);
  EXPECT_THAT(open.status().message(), HasSubstr("population"));
}

TEST(CoordinatorTest, SamplingIsSeededAndWithoutReplacement) {
  RoundConfig config;  // 10 per round, 1.3 over-selection: 13
  config.seed = 17;
  const std::vector<std::string> population = Ids(100);
  auto a = Make(config, population);
  auto b = Make(config, population);
  Result<RoundPlan> pa = a->StartRound(0, population);
  Result<RoundPlan> pb = b->StartRound(5, population);
  ASSERT_TRUE(pa.ok() && pb.ok());
  EXPECT_EQ(pa->round_id, 1);
  ASSERT_EQ(pa->selected.size(), 13u);
  EXPECT_EQ(pa->selected, pb->selected);  // same seed, same round: same cohort
  EXPECT_EQ(std::set<std::string>(pa->selected.begin(), pa->selected.end()).size(), 13u);
  for (const std::string& id : pa->selected) EXPECT_TRUE(a->IsSelected(id));
  EXPECT_EQ(pa->deadline_ms, config.deadline_ms);

  // The order of the eligible list does not matter; the seed and the round do.
  std::vector<std::string> reversed(population.rbegin(), population.rend());
  config.seed = 17;
  auto c = Make(config, population);
  EXPECT_EQ(c->StartRound(0, reversed)->selected, pa->selected);
  config.seed = 18;
  auto d = Make(config, population);
  EXPECT_NE(d->StartRound(0, population)->selected, pa->selected);
  ASSERT_TRUE(a->Close(1).ok());
  Result<RoundPlan> second = a->StartRound(2, population);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->round_id, 2);
  EXPECT_NE(second->selected, pa->selected);
}

TEST(CoordinatorTest, SamplingIsRoughlyUniform) {
  RoundConfig config = SmallConfig();  // 6 of 12 per round
  const std::vector<std::string> population = Ids(12);
  auto c = Make(config, population);
  std::map<std::string, int> counts;
  for (int round = 0; round < 600; ++round) {
    Result<RoundPlan> plan = c->StartRound(round, population);
    ASSERT_TRUE(plan.ok());
    for (const std::string& id : plan->selected) ++counts[id];
    ASSERT_TRUE(c->Close(round).ok());
  }
  for (const auto& [id, count] : counts) {
    EXPECT_NEAR(count, 300, 60) << id;  // each selected with probability 1/2
  }
}

TEST(CoordinatorTest, OverSelectionIsCappedByTheEligibleClients) {
  auto c = Make(SmallConfig());
  Result<RoundPlan> plan = c->StartRound(0, Ids(5));
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->selected.size(), 5u);
  ASSERT_TRUE(c->Close(0).ok());
  // Duplicates count once.
  std::vector<std::string> twice = Ids(10);
  twice.insert(twice.end(), twice.begin(), twice.end());
  plan = c->StartRound(1, twice);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->selected.size(), 6u);
}

TEST(CoordinatorTest, StartRoundPreconditions) {
  auto c = Make(SmallConfig(), Ids(10));
  Result<RoundPlan> few = c->StartRound(0, Ids(2));
  EXPECT_EQ(few.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(few.status().message(), HasSubstr("needs at least 3"));
  EXPECT_EQ(c->StartRound(0, Ids(4, "stranger-")).status().code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(c->StartRound(0, Ids(10)).ok());
  EXPECT_EQ(c->round_id(), 1);  // the refused starts did not use up an id
  EXPECT_EQ(c->StartRound(1, Ids(10)).status().code(), StatusCode::kFailedPrecondition);
}

TEST(CoordinatorTest, SubmitWithoutARoundIsRefused) {
  auto c = Make(SmallConfig());
  EXPECT_EQ(c->Submit(UpdateFor("dev-0", 1), 10, 0).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(c->Close(0).status().code(), StatusCode::kFailedPrecondition);
}

TEST(CoordinatorTest, TargetReachedClosesEarlyAndRefusesMore) {
  auto c = Make(SmallConfig());
  Result<RoundPlan> plan = c->StartRound(100, Ids(6));
  ASSERT_TRUE(plan.ok());
  for (int i = 0; i < 4; ++i) {
    EXPECT_FALSE(c->ShouldClose(200));
    ASSERT_TRUE(c->Submit(UpdateFor(plan->selected[i], 1), 50, 200).ok());
  }
  EXPECT_TRUE(c->ShouldClose(200));  // long before the deadline
  EXPECT_EQ(c->Submit(UpdateFor(plan->selected[4], 1), 50, 201).code(),
            StatusCode::kResourceExhausted);
  // A retry from an accepted client is a duplicate even in a full round.
  EXPECT_EQ(c->Submit(UpdateFor(plan->selected[3], 1), 0, 202).code(), StatusCode::kAlreadyExists);
  Result<RoundResult> result = c->Close(210);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->status, RoundStatus::kApplied);
  EXPECT_EQ(result->participants, 4);
  EXPECT_EQ(result->selected, 6);
  EXPECT_EQ(result->rejections.over_target, 1);
  EXPECT_EQ(result->rejections.validator.duplicate, 1);
  EXPECT_EQ(result->bytes_received, 250);
  EXPECT_EQ(result->bytes_accepted, 200);
  EXPECT_EQ(result->dense_bytes_accepted, 4 * 6 * 4);
  EXPECT_EQ(result->examples, 40);
  EXPECT_EQ(result->started_ms, 100);
  EXPECT_EQ(result->deadline_ms, 1100);
  EXPECT_EQ(result->closed_ms, 210);
  EXPECT_FALSE(result->epsilon.has_value());
  EXPECT_GT(result->global_delta_norm, 0.0);
  EXPECT_FALSE(c->round_open());
  EXPECT_EQ(c->history().size(), 1u);
}

TEST(CoordinatorTest, StragglersAfterTheDeadlineAreLateAndTheRoundStillApplies) {
  auto c = Make(SmallConfig());
  Result<RoundPlan> plan = c->StartRound(0, Ids(6));
  ASSERT_TRUE(plan.ok());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(c->Submit(UpdateFor(plan->selected[i], 1), 1, 999).ok());
  EXPECT_FALSE(c->ShouldClose(1000));  // the deadline itself is still in time
  ASSERT_TRUE(c->Submit(UpdateFor(plan->selected[3], 1), 1, 1000).ok());
  c = Make(SmallConfig());
  plan = c->StartRound(0, Ids(6));
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(c->Submit(UpdateFor(plan->selected[i], 1), 1, 500).ok());
  EXPECT_TRUE(c->ShouldClose(1001));
  Status late = c->Submit(UpdateFor(plan->selected[3], 1), 1, 1001);
  EXPECT_EQ(late.code(), StatusCode::kDeadlineExceeded);
  EXPECT_THAT(late.message(), HasSubstr("1 ms after round 1's deadline"));
  Result<RoundResult> result = c->Close(1002);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->status, RoundStatus::kApplied);  // 3 >= ceil(0.75 * 4)
  EXPECT_EQ(result->participants, 3);
  EXPECT_EQ(result->rejections.late, 1);
}

TEST(CoordinatorTest, AppliedRoundEqualsTheStrategyComputedDirectly) {
  for (const char* name : {"fedavg", "fedavgm", "fedadam", "fedyogi"}) {
    RoundConfig config = SmallConfig();
    config.strategy = name;
    auto c = Make(config);
    Result<StrategyOptions> options = config.ToStrategyOptions();
    ASSERT_TRUE(options.ok());
    Result<std::unique_ptr<Strategy>> direct = Strategy::Create(*options);
    ASSERT_TRUE(direct.ok());
    std::vector<float> weights = kInitial;
    for (int64_t round = 1; round <= 3; ++round) {
      Result<RoundPlan> plan = c->StartRound(round * 10, Ids(6));
      ASSERT_TRUE(plan.ok());
      std::vector<ModelUpdate> sent;
      for (int i = 0; i < 4; ++i) {
        sent.push_back(UpdateFor(plan->selected[i], round, 5 + i));
        ASSERT_TRUE(c->Submit(sent.back(), 1, round * 10 + 1).ok());
      }
      ASSERT_TRUE(c->Close(round * 10 + 2).ok());
      Result<std::vector<float>> next = (*direct)->Apply(weights, sent);
      ASSERT_TRUE(next.ok());
      weights = *next;
      EXPECT_TRUE(BitwiseEqual(c->global_weights(), weights)) << name << " round " << round;
    }
  }
}

TEST(CoordinatorTest, AbandonedRoundLeavesWeightsAndStrategyStateExactlyUnchanged) {
  for (const char* name : {"fedavgm", "fedadam", "fedyogi"}) {
    RoundConfig config = SmallConfig();
    config.over_selection = 1.0;  // 4 selected
    config.strategy = name;
    // With 4 eligible clients every round selects all of them (in a round-dependent order).
    auto with_abandon = Make(config);
    auto twin = Make(config);
    int64_t now = 0;
    // Round 1 applied; round 2 gets 2 of the 3 required updates.
    ASSERT_TRUE(with_abandon->StartRound(now, Ids(4)).ok());
    for (const std::string& id : Ids(4)) {
      ASSERT_TRUE(with_abandon->Submit(UpdateFor(id, 1), 1, now).ok());
    }
    ASSERT_EQ(with_abandon->Close(now)->status, RoundStatus::kApplied);
    const std::vector<float> after_first = with_abandon->global_weights();
    ASSERT_TRUE(with_abandon->StartRound(now, Ids(4)).ok());
    ASSERT_TRUE(with_abandon->Submit(UpdateFor("dev-0", 2), 1, now).ok());
    ASSERT_TRUE(with_abandon->Submit(UpdateFor("dev-1", 2), 1, now).ok());
    Result<RoundResult> abandoned = with_abandon->Close(now + 5000);
    ASSERT_TRUE(abandoned.ok());
    EXPECT_EQ(abandoned->status, RoundStatus::kAbandoned);
    EXPECT_EQ(abandoned->abandon_reason, "2 updates accepted, 3 required");
    EXPECT_EQ(abandoned->global_delta_norm, 0.0);
    EXPECT_TRUE(BitwiseEqual(with_abandon->global_weights(), after_first)) << name;

    // The twin never saw round 2. Both then apply the same updates: if the abandoned round had
    // touched the optimizer's moments, the results would differ.
    ASSERT_TRUE(twin->StartRound(now, Ids(4)).ok());
    for (const std::string& id : Ids(4)) ASSERT_TRUE(twin->Submit(UpdateFor(id, 1), 1, now).ok());
    ASSERT_EQ(twin->Close(now)->status, RoundStatus::kApplied);
    ASSERT_TRUE(BitwiseEqual(twin->global_weights(), after_first));
    for (Coordinator* c : {with_abandon.get(), twin.get()}) {
      Result<RoundPlan> plan = c->StartRound(now, Ids(4));
      ASSERT_TRUE(plan.ok());
      for (const std::string& id : Ids(4)) {
        ModelUpdate update = UpdateFor(id, 7);
        update.round_id = plan->round_id;
        ASSERT_TRUE(c->Submit(update, 1, now).ok());
      }
      ASSERT_EQ(c->Close(now)->status, RoundStatus::kApplied);
    }
    EXPECT_FALSE(BitwiseEqual(twin->global_weights(), after_first));
    EXPECT_TRUE(BitwiseEqual(with_abandon->global_weights(), twin->global_weights())) << name;
    EXPECT_EQ(with_abandon->history().size(), 3u);
    EXPECT_EQ(twin->history().size(), 2u);
  }
}

TEST(CoordinatorTest, AFailingAggregatorAbandonsTheRoundCleanly) {
  RoundConfig config = SmallConfig();
  config.aggregator = "krum";
  config.krum_f = 1;  // needs 4 updates
  auto c = Make(config);
  Result<RoundPlan> plan = c->StartRound(0, Ids(6));
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(c->Submit(UpdateFor(plan->selected[i], 1), 1, 0).ok());
  Result<RoundResult> result = c->Close(2000);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->status, RoundStatus::kAbandoned);
  EXPECT_THAT(result->abandon_reason, HasSubstr("aggregation failed"));
  EXPECT_TRUE(BitwiseEqual(c->global_weights(), kInitial));
}

TEST(CoordinatorTest, BadUpdatesAreRejectedAndCountedInTheRoundResult) {
  RoundConfig config = SmallConfig();
  config.max_l2_norm = 1.0;
  auto c = Make(config, Ids(8));
  Result<RoundPlan> plan = c->StartRound(0, Ids(8));
  ASSERT_TRUE(plan.ok());
  const std::set<std::string> selected(plan->selected.begin(), plan->selected.end());
  std::string outsider;
  for (const std::string& id : Ids(8)) {
    if (!selected.contains(id)) outsider = id;
  }
  ASSERT_FALSE(outsider.empty());
  const std::vector<std::string>& s = plan->selected;

  ASSERT_TRUE(c->Submit(UpdateFor(s[0], 1), 10, 1).ok());
  // Replay of an accepted update.
  EXPECT_EQ(c->Submit(UpdateFor(s[0], 1), 10, 2).code(), StatusCode::kAlreadyExists);
  // Stale (names round 0).
  EXPECT_EQ(c->Submit(UpdateFor(s[1], 0), 10, 2).code(), StatusCode::kFailedPrecondition);
  // Malformed: wrong layout, NaN, no examples, too large.
  ModelUpdate bad_layout = UpdateFor(s[1], 1);
  bad_layout.layout[1].shape = {3};
  EXPECT_FALSE(c->Submit(bad_layout, 10, 2).ok());
  ModelUpdate nan = UpdateFor(s[1], 1);
  nan.delta[4] = NAN;
  EXPECT_FALSE(c->Submit(nan, 10, 2).ok());
  EXPECT_FALSE(c->Submit(UpdateFor(s[1], 1, 0), 10, 2).ok());
  ModelUpdate big = UpdateFor(s[1], 1);
  for (float& v : big.delta) v = 10.0f;
  EXPECT_FALSE(c->Submit(big, 10, 2).ok());
  // Not selected.
  EXPECT_EQ(c->Submit(UpdateFor(outsider, 1), 10, 2).code(), StatusCode::kPermissionDenied);
  // A rejected client may still send a good update.
  ASSERT_TRUE(c->Submit(UpdateFor(s[1], 1), 10, 3).ok());
  ASSERT_TRUE(c->Submit(UpdateFor(s[2], 1), 10, 4).ok());
  // Late.
  EXPECT_EQ(c->Submit(UpdateFor(s[3], 1), 10, 5000).code(), StatusCode::kDeadlineExceeded);

  Result<RoundResult> result = c->Close(5001);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->status, RoundStatus::kApplied);
  EXPECT_EQ(result->participants, 3);
  const RoundRejections& r = result->rejections;
  EXPECT_EQ(r.validator.duplicate, 1);
  EXPECT_EQ(r.validator.round_mismatch, 1);
  EXPECT_EQ(r.validator.layout_mismatch, 1);
  EXPECT_EQ(r.validator.non_finite, 1);
  EXPECT_EQ(r.validator.bad_examples, 1);
  EXPECT_EQ(r.validator.norm_exceeded, 1);
  EXPECT_EQ(r.not_selected, 1);
  EXPECT_EQ(r.late, 1);
  EXPECT_EQ(r.total(), 8);
  EXPECT_EQ(result->bytes_received, 110);
  EXPECT_EQ(result->bytes_accepted, 30);

  // The next round starts with fresh counters; an update for the closed round is stale.
  Result<RoundPlan> next = c->StartRound(6000, Ids(8));
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(c->Progress().rejected, 0);
  EXPECT_EQ(c->Submit(UpdateFor(next->selected[0], 1), 10, 6001).code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(c->Progress().rejected, 1);
}

TEST(CoordinatorTest, DpRoundsReportGrowingEpsilonAndAbandonedRoundsCostNothing) {
  RoundConfig config = SmallConfig();
  config.dp_clip_norm = 0.01;
  config.dp_noise_multiplier = 1.1;
  config.dp_delta = 1e-5;
  config.seed = 3;
  auto c = Make(config, Ids(100));  // q = 4 / 100
  int64_t now = 0;
  std::vector<double> eps;
  for (int round = 0; round < 4; ++round) {
    Result<RoundPlan> plan = c->StartRound(now, Ids(100));
    ASSERT_TRUE(plan.ok());
    const int count = round == 2 ? 2 : 4;  // round 3 is abandoned
    for (int i = 0; i < count; ++i) {
      ASSERT_TRUE(c->Submit(UpdateFor(plan->selected[i], plan->round_id), 1, now).ok());
    }
    const std::vector<float> before = c->global_weights();
    now += 2000;
    Result<RoundResult> result = c->Close(now);
    ASSERT_TRUE(result.ok());
    ASSERT_TRUE(result->epsilon.has_value());
    eps.push_back(*result->epsilon);
    if (round == 2) {
      EXPECT_EQ(result->status, RoundStatus::kAbandoned);
      EXPECT_TRUE(BitwiseEqual(before, c->global_weights()));
    } else {
      EXPECT_EQ(result->status, RoundStatus::kApplied);
      EXPECT_GT(result->dp_clipped, 0);  // every delta's norm is above 0.04
    }
  }
  EXPECT_GT(eps[0], 0.0);
  EXPECT_GT(eps[1], eps[0]);
  EXPECT_EQ(eps[2], eps[1]);  // abandoned: no release, no privacy cost
  EXPECT_GT(eps[3], eps[1]);
  RdpAccountant reference;
  ASSERT_TRUE(reference.Steps(0.04, 1.1, 3).ok());
  EXPECT_DOUBLE_EQ(eps[3], reference.Epsilon(1e-5));
}

TEST(CoordinatorTest, DpWithoutNoiseIsTheClippedSumOverTheCohortSize) {
  RoundConfig config = SmallConfig();
  config.over_selection = 1.0;
  config.dp_clip_norm = 0.01;
  config.dp_noise_multiplier = 0.0;
  auto c = Make(config, Ids(4));
  Result<RoundPlan> plan = c->StartRound(0, Ids(4));
  ASSERT_TRUE(plan.ok());
  std::vector<double> want(kInitial.begin(), kInitial.end());
  for (int i = 0; i < 3; ++i) {  // 3 of 4 report: the sum is still divided by 4
    ModelUpdate update = UpdateFor(plan->selected[i], 1);
    const double norm = L2Norm(update.delta);
    const double scale = norm > 0.01 ? 0.01 / norm : 1.0;
    for (size_t j = 0; j < 6; ++j) want[j] += scale * update.delta[j] / 4.0;
    ASSERT_TRUE(c->Submit(update, 1, 0).ok());
  }
  Result<RoundResult> result = c->Close(1);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->status, RoundStatus::kApplied);
  EXPECT_EQ(result->dp_clipped, 3);
  ASSERT_TRUE(result->epsilon.has_value());
  EXPECT_TRUE(std::isinf(*result->epsilon));  // clipping alone gives no guarantee
  for (size_t j = 0; j < 6; ++j) EXPECT_NEAR(c->global_weights()[j], want[j], 1e-6) << j;
}

TEST(CoordinatorTest, ProgressReportsTheOpenRound) {
  auto c = Make(SmallConfig());
  EXPECT_FALSE(c->Progress().open);
  Result<RoundPlan> plan = c->StartRound(50, Ids(6));
  ASSERT_TRUE(c->Submit(UpdateFor(plan->selected[0], 1), 1, 60).ok());
  EXPECT_FALSE(c->Submit(UpdateFor("nobody", 1), 1, 60).ok());
  RoundProgress p = c->Progress();
  EXPECT_TRUE(p.open);
  EXPECT_EQ(p.round_id, 1);
  EXPECT_EQ(p.selected, 6);
  EXPECT_EQ(p.accepted, 1);
  EXPECT_EQ(p.target, 4);
  EXPECT_EQ(p.min_reports, 3);
  EXPECT_EQ(p.started_ms, 50);
  EXPECT_EQ(p.deadline_ms, 1050);
  EXPECT_EQ(p.rejected, 1);
}

}  // namespace
}  // namespace hml::fl

namespace hml::fl {
namespace {

TEST(CoordinatorSecureTest, TheSecureAggregateAppliesTheWeightedMeanOfItsParticipants) {
  RoundConfig config = SmallConfig();
  config.secure_aggregation = true;
  config.strategy = "fedadam";
  auto plain_config = SmallConfig();
  plain_config.strategy = "fedadam";
  auto secure = Make(config);
  auto plain = Make(plain_config);
  ASSERT_TRUE(secure && plain);
  EXPECT_EQ(config.ClientConfig().at("secure_aggregation"), "1");
  for (int64_t round = 1; round <= 2; ++round) {
    auto sp = secure->StartRound(round * 10, Ids(6));
    auto pp = plain->StartRound(round * 10, Ids(6));
    ASSERT_TRUE(sp.ok() && pp.ok());
    ASSERT_EQ(sp->selected, pp->selected);
    // Updates go to the plain coordinator one by one; the secure one gets only their sum.
    SecureAggregate aggregate;
    aggregate.weighted_delta_sum.assign(6, 0.0f);
    for (int i = 0; i < 3; ++i) {
      const ModelUpdate u = UpdateFor(sp->selected[i], round, 4 + i);
      ASSERT_TRUE(plain->Submit(u, 10, round * 10 + 1).ok());
      aggregate.participants.push_back(u.client_id);
      for (size_t j = 0; j < 6; ++j) {
        aggregate.weighted_delta_sum[j] += static_cast<float>(u.num_examples) * u.delta[j];
      }
      aggregate.total_examples += static_cast<double>(u.num_examples);
    }
    aggregate.wire_bytes = 99;
    // Individual updates are refused in a secure round.
    EXPECT_EQ(secure->Submit(UpdateFor(sp->selected[3], round), 1, round * 10 + 1).code(),
              StatusCode::kFailedPrecondition);
    ASSERT_TRUE(secure->SubmitSecureAggregate(aggregate, round * 10 + 1).ok());
    EXPECT_TRUE(secure->ShouldClose(round * 10 + 1));
    EXPECT_EQ(secure->SubmitSecureAggregate(aggregate, round * 10 + 1).code(),
              StatusCode::kFailedPrecondition);  // one aggregate per round
    auto sr = secure->Close(round * 10 + 2);
    auto pr = plain->Close(round * 10 + 2);
    ASSERT_TRUE(sr.ok() && pr.ok());
    EXPECT_EQ(sr->status, RoundStatus::kApplied);
    EXPECT_EQ(sr->participants, 3);
    EXPECT_EQ(sr->examples, pr->examples);
    EXPECT_EQ(sr->bytes_received, 99);
    for (size_t j = 0; j < 6; ++j) {
      EXPECT_NEAR(secure->global_weights()[j], plain->global_weights()[j], 1e-6) << j;
    }
  }
}

TEST(CoordinatorSecureTest, BadAggregatesAndConfigsAreRefused) {
  RoundConfig config = SmallConfig();
  config.secure_aggregation = true;
  auto c = Make(config);
  auto plan = c->StartRound(0, Ids(6));
  ASSERT_TRUE(plan.ok());
  SecureAggregate bad;
  bad.participants = {plan->selected[0]};
  bad.weighted_delta_sum.assign(5, 0.0f);
  bad.total_examples = 1;
  EXPECT_EQ(c->SubmitSecureAggregate(bad, 1).code(), StatusCode::kInvalidArgument);  // size
  bad.weighted_delta_sum.assign(6, 0.0f);
  bad.participants = {"stranger"};
  Status s = c->SubmitSecureAggregate(bad, 1);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("'stranger'"));
  bad.participants = {plan->selected[0], plan->selected[0]};
  EXPECT_EQ(c->SubmitSecureAggregate(bad, 1).code(), StatusCode::kInvalidArgument);
  bad.participants = {plan->selected[0]};
  bad.total_examples = 0;
  EXPECT_EQ(c->SubmitSecureAggregate(bad, 1).code(), StatusCode::kInvalidArgument);
  // One participant is below the minimum of 3: the round is abandoned, the weights stay.
  bad.total_examples = 2;
  bad.weighted_delta_sum.assign(6, 1.0f);
  ASSERT_TRUE(c->SubmitSecureAggregate(bad, 1).ok());
  auto result = c->Close(2);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->status, RoundStatus::kAbandoned);
  EXPECT_TRUE(BitwiseEqual(c->global_weights(), kInitial));

  RoundConfig robust = config;
  robust.aggregator = "median";
  EXPECT_EQ(robust.Validate().code(), StatusCode::kInvalidArgument);
  RoundConfig dp = config;
  dp.dp_clip_norm = 1.0;
  EXPECT_EQ(dp.Validate().code(), StatusCode::kInvalidArgument);
  RoundConfig compressed = config;
  compressed.codec = "int8";
  EXPECT_THAT(std::string(compressed.Validate().message()), HasSubstr("codec 'int8'"));
  RoundConfig single = config;  // one report would be summed alone: the sum is that update
  single.clients_per_round = 1;
  single.min_report_fraction = 1.0;
  EXPECT_THAT(std::string(single.Validate().message()), HasSubstr("at least 2 reports"));
  RoundConfig threshold = config;
  threshold.secure_threshold_fraction = 0.5;  // must stay above half
  EXPECT_EQ(threshold.Validate().code(), StatusCode::kInvalidArgument);
  RoundConfig plain = SmallConfig();
  auto p = Make(plain);
  ASSERT_TRUE(p->StartRound(0, Ids(6)).ok());
  EXPECT_EQ(p->SubmitSecureAggregate(bad, 1).code(), StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace hml::fl

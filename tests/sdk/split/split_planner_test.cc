// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The split planner on synthetic profiles whose best candidate is known by hand, and the candidates
// of a real (test) model.
#include "src/sdk/split/split_planner.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/testing/models.h"

namespace hml::sdk {
namespace {

constexpr int64_t kMs = 1'000'000;

// A 4-candidate model: local (100 ms on the device), input (1 MB up, 20 ms in the cloud), a mid cut
// (40 ms on the device, 100 kB up, 12 ms in the cloud) and a late cut (80 ms, 1 kB, 4 ms). Answers
// are 4 kB.
struct Synthetic {
  std::vector<SplitCandidate> candidates;
  SplitProfile profile;
  Synthetic() {
    auto add = [&](std::string label, bool local, bool at_inputs, int64_t bytes, double device_ms,
                   double server_ms) {
      SplitCandidate c;
      c.label = std::move(label);
      c.local = local;
      c.at_inputs = at_inputs;
      c.uplink_bytes = bytes;
      candidates.push_back(c);
      profile.device_nanos.push_back(device_ms * kMs);
      profile.server_nanos.push_back(server_ms * kMs);
    };
    add("local", true, false, 0, 100, 0);
    add("input", false, true, 1'000'000, 0, 20);
    add("cut mid", false, false, 100'000, 40, 12);
    add("cut late", false, false, 1'000, 80, 4);
    profile.downlink_bytes = 4'000;
  }
};

LinkEstimate Link(double rtt_ms, double mbps) {
  LinkEstimate link;
  link.rtt_nanos = static_cast<int64_t>(rtt_ms * kMs);
  link.uplink_bytes_per_second = mbps * 1e6 / 8;
  link.downlink_bytes_per_second = mbps * 1e6 / 8;
  return link;
}

TEST(SplitPlannerTest, PredictionAddsDeviceLinkAndServer) {
  Synthetic s;
  // 10 Mbit/s = 1.25 MB/s: 100 kB up = 80 ms, 4 kB down = 3.2 ms.
  SplitCost cost = PredictSplitCost(s.candidates[2], 2, s.profile, Link(50, 10));
  EXPECT_EQ(cost.device, 40 * kMs);
  EXPECT_EQ(cost.uplink, 80 * kMs);
  EXPECT_EQ(cost.rtt, 50 * kMs);
  EXPECT_EQ(cost.server, 12 * kMs);
  EXPECT_EQ(cost.downlink, 3'200'000);
  EXPECT_EQ(cost.total(), 185'200'000);
  EXPECT_EQ(DescribeSplitCost(s.candidates[2], cost),
            "cut mid: predicted 185.2 ms (device 40.0, up 80.0, rtt 50.0, server 12.0, down 3.2)");
  // The local candidate has no network part.
  cost = PredictSplitCost(s.candidates[0], 0, s.profile, Link(50, 10));
  EXPECT_EQ(cost.total(), 100 * kMs);
  EXPECT_EQ(DescribeSplitCost(s.candidates[0], cost), "local: predicted 100.0 ms (device 100.0)");
}

TEST(SplitPlannerTest, AFastLinkSendsTheInput) {
  Synthetic s;
  // 1 Gbit/s, 2 ms: input 8 + 2 + 20 + 0.03 = 30 ms beats the mid cut (40.8 + 2 + 12 + ...).
  Result<SplitPlan> plan = PlanSplit(s.candidates, s.profile, Link(2, 1000), 1000 * kMs);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(s.candidates[plan->index].label, "input");
  EXPECT_TRUE(plan->meets_deadline);
  EXPECT_EQ(plan->reason.rfind("input: predicted 30.0 ms", 0), 0u) << plan->reason;
}

TEST(SplitPlannerTest, AMediumLinkSplitsAndASlowLinkStaysLocal) {
  Synthetic s;
  // 100 Mbit/s, 10 ms: input 80+10+20 = 110, mid 40+8+10+12 = 70.3, late 80+0.08+10+4 = 94.4, local
  // 100.
  Result<SplitPlan> plan = PlanSplit(s.candidates, s.profile, Link(10, 100), 1000 * kMs);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(s.candidates[plan->index].label, "cut mid") << plan->reason;
  // 1 Mbit/s, 300 ms: every cloud candidate pays >= 300 ms; local wins.
  plan = PlanSplit(s.candidates, s.profile, Link(300, 1), 1000 * kMs);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(s.candidates[plan->index].label, "local") << plan->reason;
  // 4G-like (50 ms, 10 Mbit/s): late = 80 + 0.8 + 50 + 4 + 3.2 = 138 > local 100.
  plan = PlanSplit(s.candidates, s.profile, Link(50, 10), 1000 * kMs);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(s.candidates[plan->index].label, "local") << plan->reason;
}

TEST(SplitPlannerTest, ATightDeadlineThatNothingMeetsGetsTheFastest) {
  Synthetic s;
  Result<SplitPlan> plan = PlanSplit(s.candidates, s.profile, Link(10, 100), 50 * kMs);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(s.candidates[plan->index].label, "cut mid");
  EXPECT_FALSE(plan->meets_deadline);
  EXPECT_NE(plan->reason.find("no candidate meets the deadline (50.0 ms left)"), std::string::npos)
      << plan->reason;
}

TEST(SplitPlannerTest, ByteSavingSlackTradesLatencyForBytesOnlyWithinTheDeadline) {
  Synthetic s;
  SplitPlanOptions options;
  options.byte_saving_slack = 0.5;  // up to 50 % slower for fewer bytes
  // 100 Mbit/s, 10 ms: the mid cut is fastest (70.3 ms); local (100 ms, no bytes) is within 50 %
  // and wins when the deadline allows it ...
  Result<SplitPlan> plan = PlanSplit(s.candidates, s.profile, Link(10, 100), 1000 * kMs, options);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(s.candidates[plan->index].label, "local") << plan->reason;
  // ... but not with 95 ms left: the late cut (94.4 ms, 1 kB) is the cheapest that meets it.
  plan = PlanSplit(s.candidates, s.profile, Link(10, 100), 95 * kMs, options);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(s.candidates[plan->index].label, "cut late") << plan->reason;
  // ... and with 80 ms left only the mid cut meets it.
  plan = PlanSplit(s.candidates, s.profile, Link(10, 100), 80 * kMs, options);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(s.candidates[plan->index].label, "cut mid") << plan->reason;
  EXPECT_TRUE(plan->meets_deadline);
}

TEST(SplitPlannerTest, TiesPreferLocalThenFewerBytes) {
  Synthetic s;
  // Make local and the mid cut equal at 100 Mbit/s, 10 ms (mid: 70.32 ms).
  s.profile.device_nanos[0] = 70.32 * kMs;
  Result<SplitPlan> plan = PlanSplit(s.candidates, s.profile, Link(10, 100), 1000 * kMs);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(s.candidates[plan->index].label, "local") << plan->reason;
  // Without ties (tolerance 0) the strictly fastest wins.
  SplitPlanOptions strict;
  strict.tie_nanos = 0;
  s.profile.device_nanos[0] = 70.4 * kMs;
  plan = PlanSplit(s.candidates, s.profile, Link(10, 100), 1000 * kMs, strict);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(s.candidates[plan->index].label, "cut mid") << plan->reason;
}

TEST(SplitPlannerTest, RejectsAProfileThatDoesNotFit) {
  Synthetic s;
  s.profile.server_nanos.pop_back();
  EXPECT_EQ(PlanSplit(s.candidates, s.profile, Link(10, 100), kMs).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(PlanSplit({}, {}, Link(10, 100), kMs).status().code(), StatusCode::kInvalidArgument);
  SplitPlanOptions bad;
  bad.tie_nanos = -1;
  EXPECT_FALSE(bad.Validate().ok());
}

TEST(SplitPlannerTest, CandidatesOfTheCnnArePrunedByBytes) {
  Model model = *Model::FromGraph(testing::Cnn28Graph());
  // Unpruned: local, input, and the cuts {conv} {relu} {pool} {flat} {logits}.
  SplitCandidateOptions all;
  all.prune_dominated = false;
  Result<std::vector<SplitCandidate>> c = MakeSplitCandidates(model, all);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  std::vector<std::string> labels;
  for (const SplitCandidate& x : *c) labels.push_back(x.label);
  EXPECT_EQ(labels, (std::vector<std::string>{"local", "input", "cut conv", "cut relu", "cut pool",
                                              "cut flat", "cut logits"}));
  EXPECT_TRUE((*c)[0].local);
  EXPECT_TRUE((*c)[1].at_inputs);
  EXPECT_EQ((*c)[1].tensors, std::vector<std::string>{"image"});
  EXPECT_EQ((*c)[1].uplink_bytes, 784 + kMessageOverheadBytes);
  EXPECT_EQ((*c)[4].tensors, std::vector<std::string>{"pool"});
  EXPECT_EQ((*c)[4].uplink_bytes, 1568 + kMessageOverheadBytes);
  EXPECT_GT((*c)[4].head_flops, 0);
  EXPECT_GT((*c)[4].tail_flops, 0);
  EXPECT_EQ((*c)[2].head_flops + (*c)[2].tail_flops, (*c)[0].head_flops);
  // Pruned: only cuts smaller than the input (784 bytes) and every earlier cut remain.
  c = MakeSplitCandidates(model, {});
  ASSERT_TRUE(c.ok());
  labels.clear();
  for (const SplitCandidate& x : *c) labels.push_back(x.label);
  EXPECT_EQ(labels, (std::vector<std::string>{"local", "input", "cut logits"}));
}

}  // namespace
}  // namespace hml::sdk

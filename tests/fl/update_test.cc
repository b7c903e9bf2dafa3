// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/fl/update.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

namespace hml::fl {
namespace {

using ::testing::HasSubstr;

UpdateLayout TwoTensors() { return {{"fc.weight", {2, 2}}, {"fc.bias", {2}}}; }

ModelUpdate MakeUpdate(std::string client, int64_t round, std::vector<float> delta) {
  ModelUpdate update;
  update.client_id = std::move(client);
  update.round_id = round;
  update.num_examples = 10;
  update.layout = TwoTensors();
  update.delta = std::move(delta);
  return update;
}

TEST(UpdateLayoutTest, CountsElementsAndRejectsBadShapes) {
  Result<int64_t> n = LayoutNumElements(TwoTensors());
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 6);
  Result<int64_t> negative = LayoutNumElements({{"w", {3, -1}}});
  ASSERT_FALSE(negative.ok());
  EXPECT_THAT(negative.status().message(), HasSubstr("'w'"));
  Result<int64_t> overflow = LayoutNumElements({{"huge", {1LL << 40, 1LL << 40}}});
  EXPECT_FALSE(overflow.ok());
}

TEST(UpdateValidatorTest, AcceptsAWellFormedUpdate) {
  Result<UpdateValidator> v = UpdateValidator::Create(TwoTensors(), 3, {.max_l2_norm = 10.0});
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->Check(MakeUpdate("a", 3, {1, 2, 3, 4, 0, 0})).ok());
  EXPECT_EQ(v->num_accepted(), 1);
  EXPECT_EQ(v->rejections().total(), 0);
}

TEST(UpdateValidatorTest, EveryRejectionIsCountedByReasonAndNamesTheClient) {
  Result<UpdateValidator> v = UpdateValidator::Create(TwoTensors(), 7, {.max_l2_norm = 5.0});
  ASSERT_TRUE(v.ok());
  const std::vector<float> good = {1, 0, 0, 0, 0, 0};

  // Stale round.
  Status s = v->Check(MakeUpdate("stale", 6, good));
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("client 'stale'"));
  EXPECT_THAT(s.message(), HasSubstr("round 6"));
  EXPECT_EQ(v->rejections().round_mismatch, 1);

  // Accepted, then replayed, then a second different update from the same client.
  ASSERT_TRUE(v->Check(MakeUpdate("c1", 7, good)).ok());
  s = v->Check(MakeUpdate("c1", 7, good));
  EXPECT_EQ(s.code(), StatusCode::kAlreadyExists);
  EXPECT_THAT(s.message(), HasSubstr("client 'c1'"));
  EXPECT_FALSE(v->Check(MakeUpdate("c1", 7, {0, 1, 0, 0, 0, 0})).ok());
  EXPECT_EQ(v->rejections().duplicate, 2);

  // No examples.
  ModelUpdate empty = MakeUpdate("empty", 7, good);
  empty.num_examples = 0;
  EXPECT_THAT(v->Check(empty).message(), HasSubstr("num_examples"));
  EXPECT_EQ(v->rejections().bad_examples, 1);

  // Layout: a wrong shape, a renamed tensor, and the right layout with too few values.
  ModelUpdate shape = MakeUpdate("shape", 7, good);
  shape.layout[0].shape = {4, 1};
  s = v->Check(shape);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("client 'shape'"));
  EXPECT_THAT(s.message(), HasSubstr("[4,1]"));
  ModelUpdate renamed = MakeUpdate("renamed", 7, good);
  renamed.layout[1].name = "fc.b";
  EXPECT_FALSE(v->Check(renamed).ok());
  EXPECT_THAT(v->Check(MakeUpdate("short", 7, {1, 2, 3})).message(), HasSubstr("3 values"));
  EXPECT_EQ(v->rejections().layout_mismatch, 3);

  // NaN and Inf.
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  s = v->Check(MakeUpdate("nan", 7, {0, 0, nan, 0, 0, 0}));
  EXPECT_THAT(s.message(), HasSubstr("client 'nan'"));
  EXPECT_THAT(s.message(), HasSubstr("NaN"));
  EXPECT_THAT(v->Check(MakeUpdate("inf", 7, {0, 0, 0, 0, 0, -inf})).message(),
              HasSubstr("infinite"));
  EXPECT_EQ(v->rejections().non_finite, 2);

  // Norm: 3-4-0 has norm 5 (on the bound, accepted); 3-4-1 is above it.
  EXPECT_TRUE(v->Check(MakeUpdate("edge", 7, {3, 4, 0, 0, 0, 0})).ok());
  s = v->Check(MakeUpdate("big", 7, {3, 4, 1, 0, 0, 0}));
  EXPECT_THAT(s.message(), HasSubstr("client 'big'"));
  EXPECT_THAT(s.message(), HasSubstr("L2 norm"));
  EXPECT_EQ(v->rejections().norm_exceeded, 1);

  EXPECT_EQ(v->rejections().total(), 1 + 2 + 1 + 3 + 2 + 1);
  EXPECT_EQ(v->num_accepted(), 2);

  // A rejected client may still send a good update in the same round.
  EXPECT_TRUE(v->Check(MakeUpdate("big", 7, {1, 0, 0, 0, 0, 0})).ok());
}

TEST(UpdateValidatorTest, NextRoundRejectsTheOldRoundsUpdatesAndResetsCounters) {
  Result<UpdateValidator> v = UpdateValidator::Create(TwoTensors(), 1);
  ASSERT_TRUE(v.ok());
  const ModelUpdate old = MakeUpdate("a", 1, {1e6f, 0, 0, 0, 0, 0});  // no norm bound by default
  ASSERT_TRUE(v->Check(old).ok());
  ASSERT_FALSE(v->Check(old).ok());
  v->StartRound(2);
  EXPECT_EQ(v->rejections().total(), 0);
  EXPECT_EQ(v->num_accepted(), 0);
  EXPECT_EQ(v->Check(old).code(), StatusCode::kFailedPrecondition);  // replay of round 1
  EXPECT_EQ(v->rejections().round_mismatch, 1);
  EXPECT_TRUE(v->Check(MakeUpdate("a", 2, {1, 0, 0, 0, 0, 0})).ok());
}

TEST(UpdateValidatorTest, RejectsBadOptionsAndLayouts) {
  EXPECT_FALSE(UpdateValidator::Create(TwoTensors(), 1, {.max_l2_norm = -1.0}).ok());
  EXPECT_FALSE(UpdateValidator::Create(TwoTensors(), 1, {.max_l2_norm = NAN}).ok());
  EXPECT_FALSE(UpdateValidator::Create({{"w", {-2}}}, 1).ok());
}

TEST(L2NormTest, IsTheEuclideanNorm) { EXPECT_DOUBLE_EQ(L2Norm({3, 4}), 5.0); }

}  // namespace
}  // namespace hml::fl

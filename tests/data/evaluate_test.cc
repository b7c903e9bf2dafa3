// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/data/evaluate.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/testing/graph_builder.h"

namespace hml::data {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Flatten + Gemm with an identity weight: the predicted class of a [1,2,2] image is the index of
// its largest pixel. Batch dimension `batch` (-1 = dynamic).
Model ArgmaxPixelModel(int64_t batch) {
  testing::GraphBuilder b;
  std::vector<float> eye(16, 0.0f);
  for (int i = 0; i < 4; ++i) eye[static_cast<size_t>(i * 5)] = 1.0f;
  runtime::Attributes trans_b;
  trans_b.SetInt("transB", 1);
  b.Input("x", DType::kFloat32, {batch, 1, 2, 2})
      .Constant("w", *Tensor::FromVector<float>({4, 4}, eye))
      .Node("Flatten", {"x"}, {"f"})
      .Node("Gemm", {"f", "w"}, {"y"}, trans_b)
      .Output("y");
  Result<Model> m = Model::FromGraph(b.Build());
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  return std::move(*m);
}

// Ten [1,2,2] images of class i % 4 whose brightest pixel is the class, except samples 7 and 8,
// whose brightest pixel is one further.
std::shared_ptr<InMemoryDataset> Images() {
  std::vector<float> f;
  std::vector<int64_t> labels;
  for (int i = 0; i < 10; ++i) {
    const int label = i % 4;
    const int hot = (i == 7 || i == 8) ? (label + 1) % 4 : label;
    for (int p = 0; p < 4; ++p) f.push_back(p == hot ? 1.0f : 0.1f * static_cast<float>(p));
    labels.push_back(label);
  }
  return *InMemoryDataset::Create({1, 2, 2}, 4, std::move(f), std::move(labels));
}

TEST(EvaluateTest, AccuracyAndPredictionsWithAShortLastBatch) {
  const Model model = ArgmaxPixelModel(-1);
  auto data = Images();
  for (const char* backend : {"reference", "xnnpack"}) {
    EvaluateOptions options;
    options.batch_size = 3;  // batches of 3, 3, 3 and a padded 1
    options.backend = backend;
    Result<Evaluation> e = EvaluateModel(model, *data, options);
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    EXPECT_EQ(e->samples, 10);
    EXPECT_DOUBLE_EQ(e->accuracy, 0.8);
    EXPECT_THAT(e->predictions, ElementsAre(0, 1, 2, 3, 0, 1, 2, 0, 1, 1));
  }
}

TEST(EvaluateTest, FixedBatchDimensionAndMaxSamples) {
  EvaluateOptions options;
  options.max_samples = 8;
  Result<Evaluation> e = EvaluateModel(ArgmaxPixelModel(1), *Images(), options);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->samples, 8);
  EXPECT_EQ(e->predictions.size(), 8u);
  EXPECT_DOUBLE_EQ(e->accuracy, 7.0 / 8.0);
}

TEST(EvaluateTest, MismatchedInputsAndBadOptionsAreNamed) {
  auto wide = *InMemoryDataset::Create({5}, 4, std::vector<float>(10, 0.0f), {0, 1});
  Result<Evaluation> e = EvaluateModel(ArgmaxPixelModel(-1), *wide);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(e.status().message(), HasSubstr("input 'x'"));
  EXPECT_THAT(e.status().message(), HasSubstr("[5]"));

  auto empty = *InMemoryDataset::Create({1, 2, 2}, 4, {}, {});
  EXPECT_THAT(EvaluateModel(ArgmaxPixelModel(-1), *empty).status().message(), HasSubstr("empty"));
  EvaluateOptions bad;
  bad.batch_size = 0;
  EXPECT_EQ(EvaluateModel(ArgmaxPixelModel(-1), *Images(), bad).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(EvaluateTest, Agreement) {
  EXPECT_DOUBLE_EQ(*Agreement({1, 2, 3, 4}, {1, 2, 0, 4}), 0.75);
  EXPECT_FALSE(Agreement({1, 2}, {1}).ok());
  EXPECT_FALSE(Agreement({}, {}).ok());
}

TEST(CascadeTest, CurveFollowsTheRoutersRuleAndTheCheapestThresholdReachingTheTargetWins) {
  // Four samples, labels 0..3. The small model is right on 0 and 1 (confident on 0 only) and
  // wrong on 2 and 3 (confidence 0.5 and 0.9); the large model is right on all but 1.
  Evaluation small, large;
  small.predictions = {0, 1, 9, 9};
  small.top_values = {0.95f, 0.6f, 0.5f, 0.9f};
  small.labels = {0, 1, 2, 3};
  large.predictions = {0, 7, 2, 3};
  large.top_values = {0.9f, 0.9f, 0.9f, 0.9f};
  large.labels = small.labels;
  small.samples = large.samples = 4;
  const std::vector<double> thresholds = {0.0, 0.55, 0.7, 0.92, 1.0};
  Result<std::vector<CascadePoint>> curve = CascadeCurve(small, large, thresholds);
  ASSERT_TRUE(curve.ok()) << curve.status().ToString();
  ASSERT_EQ(curve->size(), 5u);
  EXPECT_DOUBLE_EQ((*curve)[0].offload, 0.0);  // nothing below 0
  EXPECT_DOUBLE_EQ((*curve)[0].accuracy, 0.5);
  EXPECT_DOUBLE_EQ((*curve)[1].offload, 0.25);  // sample 2 goes up and is fixed
  EXPECT_DOUBLE_EQ((*curve)[1].accuracy, 0.75);
  EXPECT_DOUBLE_EQ((*curve)[2].offload, 0.5);  // sample 1 too, and the large model breaks it
  EXPECT_DOUBLE_EQ((*curve)[2].accuracy, 0.5);
  EXPECT_DOUBLE_EQ((*curve)[3].offload, 0.75);
  EXPECT_DOUBLE_EQ((*curve)[3].accuracy, 0.75);
  EXPECT_DOUBLE_EQ((*curve)[4].offload, 1.0);

  Result<CascadePoint> chosen = ChooseCascadeThreshold(*curve, 0.75, 1.0);
  ASSERT_TRUE(chosen.ok());
  EXPECT_DOUBLE_EQ(chosen->threshold, 0.55);          // the cheapest of the two reaching 75 %
  chosen = ChooseCascadeThreshold(*curve, 0.9, 0.6);  // unreachable: the best within 60 %
  ASSERT_TRUE(chosen.ok());
  EXPECT_DOUBLE_EQ(chosen->threshold, 0.55);
  EXPECT_EQ(ChooseCascadeThreshold(std::span<const CascadePoint>(curve->data() + 4, 1), 0.5, 0.5)
                .status()
                .code(),
            StatusCode::kNotFound);

  large.labels = {0, 1, 2, 2};
  EXPECT_EQ(CascadeCurve(small, large, thresholds).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace hml::data

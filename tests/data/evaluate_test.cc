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
  EXPECT_THAT(EvaluateModel(ArgmaxPixelModel(-1), *empty).status().message(),
              HasSubstr("empty"));
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

}  // namespace
}  // namespace hml::data

// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/train/trainer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>

#include "hml/runtime/model.h"
#include "hml/runtime/session.h"
#include "src/train/zoo.h"

namespace hml::train {
namespace {

using ::testing::HasSubstr;

double Gaussian(std::mt19937_64& rng) {
  // Box-Muller on our own uniforms: the same numbers with every standard library.
  const double u1 = (static_cast<double>(rng() >> 11) + 1.0) / 9007199254740993.0;
  const double u2 = static_cast<double>(rng() >> 11) / 9007199254740992.0;
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

// Three linearly separable blobs in 4-D: class c is centred at 3 * e_c.
std::shared_ptr<InMemoryDataset> Blobs(int64_t n, uint64_t seed, float scale = 1.0f) {
  std::mt19937_64 rng(seed);
  std::vector<float> f;
  std::vector<int64_t> l;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t c = i % 3;
    for (int64_t d = 0; d < 4; ++d) {
      f.push_back(scale * static_cast<float>((d == c ? 3.0 : 0.0) + 0.5 * Gaussian(rng)));
    }
    l.push_back(c);
  }
  return *InMemoryDataset::Create({4}, 3, std::move(f), std::move(l));
}

// 1x8x8 images: class 0 is bright in the top half, class 1 in the bottom half, plus noise.
std::shared_ptr<InMemoryDataset> TopBottom(int64_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<float> f;
  std::vector<int64_t> l;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t c = i % 2;
    for (int64_t y = 0; y < 8; ++y) {
      for (int64_t x = 0; x < 8; ++x) {
        const bool bright = (y < 4) == (c == 0);
        f.push_back(static_cast<float>((bright ? 1.0 : 0.0) + 0.3 * Gaussian(rng)));
      }
    }
    l.push_back(c);
  }
  return *InMemoryDataset::Create({1, 8, 8}, 2, std::move(f), std::move(l));
}

std::vector<float> Weights(GraphModule& m) {
  auto g = m.ExportGraph();
  EXPECT_TRUE(g.ok());
  std::vector<float> all;
  for (const runtime::Value& v : g->values) {
    if (!v.is_constant() || v.constant->dtype() != DType::kFloat32) continue;
    auto s = v.constant->values<float>();
    all.insert(all.end(), s.begin(), s.end());
  }
  return all;
}

TEST(TrainerTest, OneEpochSgdConvergesOnSeparableSet) {
  auto graph = BuildMlp({4}, {16}, 3, 7);
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();
  auto module = GraphModule::Create(*graph);
  ASSERT_TRUE(module.ok()) << module.status().ToString();
  auto train = Blobs(600, 1), test = Blobs(300, 2);
  auto before = Evaluate(**module, *test);
  ASSERT_TRUE(before.ok());
  TrainOptions options;
  options.batch_size = 16;
  options.learning_rate = 0.05;
  std::vector<std::string> lines;
  options.progress = [&](std::string_view s) { lines.emplace_back(s); };
  options.progress_every = 10;
  auto report = Train(**module, *train, test.get(), options);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  ASSERT_EQ(report->epochs.size(), 1u);
  EXPECT_GT(report->epochs[0].validation_accuracy, 0.9);
  auto after = Evaluate(**module, *test);
  ASSERT_TRUE(after.ok());
  EXPECT_GT(*after, 0.9);
  EXPECT_DOUBLE_EQ(*after, report->epochs[0].validation_accuracy);
  ASSERT_EQ(lines.size(), 4u);  // after batches 10, 20, 30 and the epoch line
  EXPECT_THAT(lines.back(), HasSubstr("epoch 1/1"));
  EXPECT_THAT(lines.back(), HasSubstr("loss"));
  EXPECT_THAT(lines.back(), HasSubstr("val_acc"));
}

TEST(TrainerTest, AdamWithWeightDecayConverges) {
  auto module = GraphModule::Create(*BuildMlp({4}, {16}, 3, 8));
  ASSERT_TRUE(module.ok());
  TrainOptions options;
  options.optimizer = OptimizerKind::kAdam;
  options.learning_rate = 0.01;
  options.weight_decay = 1e-4;
  options.batch_size = 16;
  ASSERT_TRUE(Train(**module, *Blobs(600, 3), nullptr, options).ok());
  auto acc = Evaluate(**module, *Blobs(300, 4));
  ASSERT_TRUE(acc.ok());
  EXPECT_GT(*acc, 0.9);
}

TEST(TrainerTest, SameSeedGivesIdenticalWeights) {
  auto graph = *BuildMlp({4}, {8}, 3, 9);
  TrainOptions options;
  options.batch_size = 32;
  options.seed = 5;
  auto train = Blobs(200, 5);
  auto a = GraphModule::Create(graph), b = GraphModule::Create(graph);
  ASSERT_TRUE(Train(**a, *train, nullptr, options).ok());
  ASSERT_TRUE(Train(**b, *train, nullptr, options).ok());
  EXPECT_EQ(Weights(**a), Weights(**b));
  EXPECT_NE(Weights(**a), Weights(*GraphModule::Create(graph).value()));
}

TEST(TrainerTest, CnnWithAugmentationTrainsAndExportsToTheRuntime) {
  auto graph = BuildCnn({1, 8, 8}, {4}, 8, 0.2f, 2, 11);
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();
  auto module = GraphModule::Create(*graph);
  ASSERT_TRUE(module.ok()) << module.status().ToString();
  TrainOptions options;
  options.batch_size = 16;
  options.learning_rate = 0.05;
  options.augment.horizontal_flip = true;  // labels are top/bottom: flips keep them
  options.augment.crop_padding = 1;
  auto report = Train(**module, *TopBottom(400, 6), TopBottom(200, 7).get(), options);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_GT(report->epochs[0].validation_accuracy, 0.9);

  // The trained weights (and BatchNorm statistics) run in the runtime with the same outputs.
  auto exported = (*module)->ExportGraph();
  ASSERT_TRUE(exported.ok());
  auto model = Model::FromGraph(*exported);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  SessionOptions so;
  so.backend = "reference";
  so.input_shapes["input"] = {4, 1, 8, 8};
  auto session = Session::Create(*model, so);
  ASSERT_TRUE(session.ok()) << session.status().ToString();
  auto data = TopBottom(4, 8);
  std::vector<Tensor> in;
  in.push_back(*Tensor::FromVector<float>({4, 1, 8, 8}, data->features()));
  auto want = (*session)->Run(in);
  ASSERT_TRUE(want.ok()) << want.status().ToString();
  auto got = (*module)->Forward(in);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  for (int64_t i = 0; i < (*want)[0].num_elements(); ++i) {
    EXPECT_NEAR((*got)[0].data<float>()[i], (*want)[0].data<float>()[i], 1e-4f);
  }
}

TEST(TrainerTest, NonFiniteLossAbortsAndRestoresWeights) {
  auto module = GraphModule::Create(*BuildMlp({4}, {8}, 3, 10));
  ASSERT_TRUE(module.ok());
  const std::vector<float> before = Weights(**module);
  TrainOptions options;
  auto report = Train(**module, *Blobs(64, 9, 1e38f), nullptr, options);
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().code(), StatusCode::kAborted);
  EXPECT_THAT(std::string(report.status().message()), HasSubstr("epoch 1 batch 1"));
  EXPECT_EQ(Weights(**module), before);
}

TEST(TrainerTest, BadOptionsAndMismatchedDataAreRejected) {
  auto module = GraphModule::Create(*BuildMlp({4}, {8}, 3, 10));
  ASSERT_TRUE(module.ok());
  TrainOptions bad;
  bad.batch_size = 0;
  EXPECT_EQ(Train(**module, *Blobs(10, 1), nullptr, bad).status().code(),
            StatusCode::kInvalidArgument);
  // 8x8 images into a 4-feature MLP: the error names the failing node.
  auto wrong = Train(**module, *TopBottom(10, 1), nullptr, TrainOptions{});
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(wrong.status().message()), HasSubstr("Gemm"));
}

TEST(TrainerTest, LearningRateSchedules) {
  auto graph = *BuildMlp({4}, {8}, 3, 12);
  auto train = Blobs(60, 13);
  TrainOptions options;
  options.epochs = 4;
  options.learning_rate = 0.1;
  options.lr_schedule = LrSchedule::kCosine;
  auto cosine = Train(**GraphModule::Create(graph), *train, nullptr, options);
  ASSERT_TRUE(cosine.ok()) << cosine.status().ToString();
  ASSERT_EQ(cosine->epochs.size(), 4u);
  EXPECT_DOUBLE_EQ(cosine->epochs[0].learning_rate, 0.1);
  EXPECT_NEAR(cosine->epochs[2].learning_rate, 0.05, 1e-12);
  EXPECT_LT(cosine->epochs[3].learning_rate, cosine->epochs[2].learning_rate);
  options.lr_schedule = LrSchedule::kStep;
  options.step_epochs = 2;
  options.step_gamma = 0.5;
  auto step = Train(**GraphModule::Create(graph), *train, nullptr, options);
  ASSERT_TRUE(step.ok());
  EXPECT_DOUBLE_EQ(step->epochs[1].learning_rate, 0.1);
  EXPECT_DOUBLE_EQ(step->epochs[2].learning_rate, 0.05);
}

TEST(TrainerTest, EarlyStoppingKeepsTheBestEpochsWeights) {
  auto module = GraphModule::Create(*BuildMlp({4}, {16}, 3, 14));
  ASSERT_TRUE(module.ok());
  auto validation = Blobs(90, 16);
  TrainOptions options;
  options.epochs = 30;
  options.batch_size = 16;
  options.learning_rate = 0.05;
  options.early_stopping_patience = 2;
  std::vector<std::string> lines;
  options.progress = [&](std::string_view s) { lines.emplace_back(s); };
  auto report = Train(**module, *Blobs(300, 15), validation.get(), options);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_TRUE(report->stopped_early);
  EXPECT_LT(report->epochs.size(), 30u);
  EXPECT_EQ(static_cast<int>(report->epochs.size()), report->best_epoch + 2);
  double best = 0.0;
  for (const EpochStats& e : report->epochs) best = std::max(best, e.validation_accuracy);
  EXPECT_DOUBLE_EQ(report->epochs[static_cast<size_t>(report->best_epoch - 1)].validation_accuracy,
                   best);
  auto acc = Evaluate(**module, *validation);
  ASSERT_TRUE(acc.ok());
  EXPECT_DOUBLE_EQ(*acc, best);  // the module holds the best epoch's weights
  EXPECT_THAT(lines.back(), HasSubstr("early stop"));
}

TEST(TrainerTest, EpochCallbackRunsPerEpochAndItsErrorStopsTraining) {
  auto module = GraphModule::Create(*BuildMlp({4}, {8}, 3, 17));
  ASSERT_TRUE(module.ok());
  TrainOptions options;
  options.epochs = 3;
  std::vector<int> seen;
  options.on_epoch_end = [&](const EpochStats& e) {
    seen.push_back(e.epoch);
    return e.epoch == 2 ? UnavailableError("disk full") : Status::Ok();
  };
  auto report = Train(**module, *Blobs(30, 18), nullptr, options);
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().code(), StatusCode::kUnavailable);
  EXPECT_THAT(std::string(report.status().message()), HasSubstr("after epoch 2"));
  EXPECT_EQ(seen, (std::vector<int>{1, 2}));
}

TEST(ZooTest, ArchitecturesBuildAndRunInTheRuntime) {
  for (const char* name : {"mlp", "student-cnn", "teacher-cnn"}) {
    auto g = BuildArchitecture(name, {1, 28, 28}, 10, 1);
    ASSERT_TRUE(g.ok()) << name << ": " << g.status().ToString();
    auto model = Model::FromGraph(*g);
    ASSERT_TRUE(model.ok()) << name;
    auto session = Session::Create(*model, SessionOptions{});
    ASSERT_TRUE(session.ok()) << name << ": " << session.status().ToString();
    EXPECT_EQ((*session)->output_spec(0).shape, (Shape{1, 10})) << name;
  }
  EXPECT_EQ(BuildArchitecture("resnet", {1, 28, 28}, 10, 1).status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace hml::train

// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/train/trainer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>

#include "hml/runtime/model.h"
#include "hml/runtime/session.h"
#include "src/train/zoo.h"
#include "tests/testing/datasets.h"

namespace hml::train {
namespace {

using testing::Blobs;
using testing::TopBottom;

using ::testing::HasSubstr;

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

// Zeroes every third element of the graph's matrices (a crude magnitude pruning that leaves
// every input feature connected).
runtime::Graph ThirdZeroed(runtime::Graph g) {
  for (runtime::Value& v : g.values) {
    if (!v.is_constant() || v.constant->rank() < 2) continue;
    Tensor t = *v.constant->Clone();
    std::span<float> w = t.values<float>();
    for (size_t i = 0; i < w.size(); i += 3) w[i] = 0.0f;
    v.constant = std::make_shared<const Tensor>(std::move(t));
  }
  return g;
}

// Zeros among the exported graph's matrices.
int64_t ZeroWeights(GraphModule& m) {
  auto g = m.ExportGraph();
  EXPECT_TRUE(g.ok());
  int64_t zeros = 0;
  for (const runtime::Value& v : g->values) {
    if (!v.is_constant() || v.constant->rank() < 2) continue;
    for (float x : v.constant->values<float>()) zeros += x == 0.0f;
  }
  return zeros;
}

TEST(TrainerTest, KeepZeroWeightsPreservesPruningWhileFineTuning) {
  const runtime::Graph pruned = ThirdZeroed(*BuildMlp({4}, {8}, 3, 12));
  auto train = Blobs(300, 13), test = Blobs(150, 14);
  TrainOptions options;
  options.batch_size = 16;
  options.learning_rate = 0.05;
  options.weight_decay = 1e-3;
  options.epochs = 2;
  auto kept = GraphModule::Create(pruned), free = GraphModule::Create(pruned);
  const int64_t zeros_before = ZeroWeights(**kept);
  ASSERT_GE(zeros_before, (4 * 8 + 8 * 3) / 3);
  ASSERT_TRUE(Train(**free, *train, nullptr, options).ok());
  EXPECT_LT(ZeroWeights(**free), zeros_before / 10);  // plain training refills the zeros
  options.keep_zero_weights = true;
  ASSERT_TRUE(Train(**kept, *train, nullptr, options).ok());
  EXPECT_EQ(ZeroWeights(**kept), zeros_before);
  auto acc = Evaluate(**kept, *test);
  ASSERT_TRUE(acc.ok());
  EXPECT_GT(*acc, 0.9);
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

// The exported graph's float constants by name.
std::map<std::string, std::vector<float>> WeightsByName(GraphModule& m) {
  auto g = m.ExportGraph();
  EXPECT_TRUE(g.ok());
  std::map<std::string, std::vector<float>> out;
  for (const runtime::Value& v : g->values) {
    if (!v.is_constant() || v.constant->dtype() != DType::kFloat32) continue;
    auto s = v.constant->values<float>();
    out[v.name] = std::vector<float>(s.begin(), s.end());
  }
  return out;
}

TEST(TrainerTest, TrainableRestrictsTrainingToTheNamedLayers) {
  const runtime::Graph graph = *BuildCnn({1, 8, 8}, {4}, 8, 0.0f, 2, 51);
  auto data = TopBottom(100, 52);
  auto module = GraphModule::Create(graph);
  ASSERT_TRUE(module.ok());
  const auto before = WeightsByName(**module);
  TrainOptions options;
  options.batch_size = 16;
  options.learning_rate = 0.05;
  options.trainable = {"logits"};
  ASSERT_TRUE(Train(**module, *data, nullptr, options).ok());
  const auto after = WeightsByName(**module);
  int changed = 0;
  for (const auto& [name, values] : before) {
    if (name.rfind("logits", 0) == 0) {
      changed += values != after.at(name);
    } else {
      // Conv, BatchNorm scale/bias AND running statistics, fc1: bit-identical.
      EXPECT_EQ(values, after.at(name)) << name;
    }
  }
  EXPECT_EQ(changed, 2);  // logits.weight and logits.bias

  // Freezing lasts one call: training again without the option moves every layer.
  options.trainable.clear();
  ASSERT_TRUE(Train(**module, *data, nullptr, options).ok());
  const auto again = WeightsByName(**module);
  for (const char* name : {"conv1.weight", "conv1.bn.mean", "fc1.weight"}) {
    EXPECT_NE(after.at(name), again.at(name)) << name;
  }

  options.trainable = {"logits", "nothing"};
  Result<TrainReport> bad = Train(**module, *data, nullptr, options);
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("'nothing'"));
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("conv1.weight"));
}

TEST(TrainerTest, ResumeAfterAKillEqualsAnUninterruptedRun) {
  // Adam (moments), BatchNorm (buffers), Dropout (torch's generator), augmentation and
  // shuffling (our generator) and early-stopping bookkeeping all have to survive the restart.
  const runtime::Graph graph = *BuildCnn({1, 8, 8}, {4}, 8, 0.3f, 2, 41);
  auto data = TopBottom(120, 42), validation = TopBottom(40, 43);
  const std::string dir = ::testing::TempDir() + "/resume_test";
  std::filesystem::create_directories(dir);
  TrainOptions options;
  options.optimizer = OptimizerKind::kAdam;
  options.learning_rate = 0.01;
  options.batch_size = 16;
  options.epochs = 4;
  options.seed = 44;
  options.lr_schedule = LrSchedule::kCosine;
  options.early_stopping_patience = 10;
  options.augment.horizontal_flip = true;
  options.augment.crop_padding = 1;

  auto straight = GraphModule::Create(graph);
  options.state_path = dir + "/straight.state";
  auto full = Train(**straight, *data, validation.get(), options);
  ASSERT_TRUE(full.ok()) << full.status().ToString();

  // "Killed" after epoch 2: the state was written before the callback ran.
  auto killed = GraphModule::Create(graph);
  options.state_path = dir + "/killed.state";
  options.on_epoch_end = [](const EpochStats& e) -> Status {
    return e.epoch == 2 ? AbortedError("killed") : Status::Ok();
  };
  ASSERT_EQ(Train(**killed, *data, validation.get(), options).status().code(),
            StatusCode::kAborted);
  options.on_epoch_end = nullptr;
  options.resume = true;
  auto resumed = GraphModule::Create(graph);  // fresh weights: all of it comes from the state
  auto rest = Train(**resumed, *data, validation.get(), options);
  ASSERT_TRUE(rest.ok()) << rest.status().ToString();
  EXPECT_EQ(rest->first_epoch, 3);
  ASSERT_EQ(rest->epochs.size(), 2u);
  EXPECT_EQ(rest->epochs[1].train_loss, full->epochs[3].train_loss);
  EXPECT_EQ(rest->epochs[1].validation_accuracy, full->epochs[3].validation_accuracy);
  EXPECT_EQ(rest->best_epoch, full->best_epoch);

  EXPECT_EQ(Weights(**resumed), Weights(**straight));

  // A finished run has nothing to resume; other options or a missing file are named errors.
  EXPECT_EQ(Train(**resumed, *data, validation.get(), options).status().code(),
            StatusCode::kFailedPrecondition);
  options.state_path = dir + "/killed.state";
  TrainOptions other = options;
  std::filesystem::copy_file(dir + "/straight.state", dir + "/unused.state");
  other.batch_size = 32;
  Result<TrainReport> mismatched = Train(**resumed, *data, nullptr, other);
  EXPECT_EQ(mismatched.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(mismatched.status().message()), HasSubstr("batch 16"));
  other = options;
  other.state_path = dir + "/missing.state";
  EXPECT_EQ(Train(**resumed, *data, nullptr, other).status().code(), StatusCode::kNotFound);
  other.resume = true;
  other.state_path.clear();
  EXPECT_EQ(Train(**resumed, *data, nullptr, other).status().code(),
            StatusCode::kInvalidArgument);
  std::filesystem::remove_all(dir);
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

// The Blobs task with every label c replaced by (c + 1) % 3.
std::shared_ptr<data::InMemoryDataset> ShiftedLabels(const data::InMemoryDataset& d) {
  std::vector<int64_t> labels(d.labels().begin(), d.labels().end());
  for (int64_t& l : labels) l = (l + 1) % 3;
  return *data::InMemoryDataset::Create(d.feature_shape(), d.num_classes(),
                                  std::vector<float>(d.features().begin(), d.features().end()),
                                  std::move(labels));
}

// An MLP teacher trained on `data`'s labels to > 95 % accuracy.
std::unique_ptr<GraphModule> TrainedTeacher(const data::Dataset& data, uint64_t seed) {
  auto teacher = GraphModule::Create(*BuildMlp({4}, {16}, 3, seed));
  EXPECT_TRUE(teacher.ok());
  TrainOptions options;
  options.batch_size = 16;
  options.learning_rate = 0.05;
  options.epochs = 2;
  EXPECT_TRUE(Train(**teacher, data, nullptr, options).ok());
  auto acc = Evaluate(**teacher, data);
  EXPECT_TRUE(acc.ok());
  EXPECT_GT(*acc, 0.95);
  return std::move(*teacher);
}

TEST(DistillTest, AlphaZeroEqualsLabelOnlyTrainingBitForBit) {
  // A CNN student with BatchNorm, Dropout and augmentation, so the teacher must not disturb
  // the random streams or the student's state; the teacher (a different CNN, with Dropout and
  // BatchNorm) is untrained: its logits are far from the labels.
  auto graph = *BuildCnn({1, 8, 8}, {4}, 8, 0.3f, 2, 21);
  auto teacher = GraphModule::Create(*BuildCnn({1, 8, 8}, {6}, 12, 0.5f, 2, 22));
  ASSERT_TRUE(teacher.ok()) << teacher.status().ToString();
  const std::vector<float> teacher_before = Weights(**teacher);
  auto data = TopBottom(200, 23);
  TrainOptions options;
  options.batch_size = 16;
  options.learning_rate = 0.05;
  options.epochs = 2;
  options.seed = 3;
  options.augment.horizontal_flip = true;
  options.augment.crop_padding = 1;
  auto plain = GraphModule::Create(graph), distilled = GraphModule::Create(graph);
  auto plain_report = Train(**plain, *data, nullptr, options);
  ASSERT_TRUE(plain_report.ok()) << plain_report.status().ToString();
  options.distill.teacher = teacher->get();
  options.distill.alpha = 0.0;
  auto distilled_report = Train(**distilled, *data, nullptr, options);
  ASSERT_TRUE(distilled_report.ok()) << distilled_report.status().ToString();
  EXPECT_EQ(Weights(**plain), Weights(**distilled));
  for (size_t e = 0; e < 2; ++e) {
    EXPECT_EQ(plain_report->epochs[e].train_loss, distilled_report->epochs[e].train_loss);
  }
  // The teacher is untouched and back in eval mode.
  EXPECT_EQ(Weights(**teacher), teacher_before);
  EXPECT_FALSE((*teacher)->training());

  // With alpha > 0 the same run differs: the teacher does enter the loss.
  options.distill.alpha = 0.5;
  auto mixed = GraphModule::Create(graph);
  ASSERT_TRUE(Train(**mixed, *data, nullptr, options).ok());
  EXPECT_NE(Weights(**plain), Weights(**mixed));
}

TEST(DistillTest, StudentLearnsTheTeachersMappingNotTheLabels) {
  auto data = Blobs(600, 31), test = Blobs(300, 32);
  // The teacher predicts class (c + 1) % 3 for a sample of class c.
  std::unique_ptr<GraphModule> teacher = TrainedTeacher(*ShiftedLabels(*data), 33);
  auto teacher_acc = Evaluate(*teacher, *ShiftedLabels(*test));
  ASSERT_TRUE(teacher_acc.ok());
  ASSERT_GT(*teacher_acc, 0.95);

  const runtime::Graph student_graph = *BuildMlp({4}, {8}, 3, 34);
  TrainOptions options;
  options.batch_size = 16;
  options.learning_rate = 0.05;
  options.epochs = 2;
  options.distill.teacher = teacher.get();
  options.distill.temperature = 2.0;

  // alpha = 1: only the teacher's soft targets; the (true) labels are ignored.
  options.distill.alpha = 1.0;
  auto soft_only = GraphModule::Create(student_graph);
  auto report = Train(**soft_only, *data, nullptr, options);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_LT(report->epochs.back().train_loss, report->epochs.front().train_loss);
  auto on_teacher_mapping = Evaluate(**soft_only, *ShiftedLabels(*test));
  auto on_labels = Evaluate(**soft_only, *test);
  ASSERT_TRUE(on_teacher_mapping.ok() && on_labels.ok());
  EXPECT_GT(*on_teacher_mapping, 0.9);
  EXPECT_LT(*on_labels, 0.1);
  EXPECT_LT(report->epochs.back().train_accuracy, 0.1);  // measured against the labels

  // alpha = 0: only the labels.
  options.distill.alpha = 0.0;
  auto labels_only = GraphModule::Create(student_graph);
  ASSERT_TRUE(Train(**labels_only, *data, nullptr, options).ok());
  auto acc = Evaluate(**labels_only, *test);
  ASSERT_TRUE(acc.ok());
  EXPECT_GT(*acc, 0.9);
}

TEST(DistillTest, StudentOfAGoodTeacherConverges) {
  auto data = Blobs(600, 41), test = Blobs(300, 42);
  std::unique_ptr<GraphModule> teacher = TrainedTeacher(*data, 43);
  auto student = GraphModule::Create(*BuildMlp({4}, {8}, 3, 44));
  ASSERT_TRUE(student.ok());
  TrainOptions options;  // the default temperature 4 and alpha 0.7
  options.batch_size = 16;
  options.learning_rate = 0.05;
  options.distill.teacher = teacher.get();
  auto report = Train(**student, *data, test.get(), options);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_GT(report->epochs[0].validation_accuracy, 0.9);
}

TEST(DistillTest, BadOptionsAndMismatchedTeachersAreRejected) {
  auto data = Blobs(30, 51);
  auto student = GraphModule::Create(*BuildMlp({4}, {8}, 3, 52));
  auto teacher = GraphModule::Create(*BuildMlp({4}, {8}, 3, 53));
  ASSERT_TRUE(student.ok() && teacher.ok());
  auto error = [&](const TrainOptions& o) {
    auto r = Train(**student, *data, nullptr, o);
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    return std::string(r.status().message());
  };
  const std::vector<float> before = Weights(**student);

  TrainOptions o;
  o.distill.teacher = teacher->get();
  for (double t : {0.0, -1.0, std::nan(""), HUGE_VAL}) {
    o.distill.temperature = t;
    EXPECT_THAT(error(o), HasSubstr("temperature")) << t;
  }
  o.distill.temperature = 4.0;
  for (double a : {-0.1, 1.5, std::nan("")}) {
    o.distill.alpha = a;
    EXPECT_THAT(error(o), HasSubstr("alpha")) << a;
  }
  o.distill.alpha = 0.7;
  // Bad values are rejected even without a teacher.
  TrainOptions no_teacher;
  no_teacher.distill.alpha = 2.0;
  EXPECT_THAT(error(no_teacher), HasSubstr("alpha"));

  // The student as its own teacher.
  o.distill.teacher = student->get();
  EXPECT_THAT(error(o), HasSubstr("teacher is the student"));

  // A teacher for 8x8 images (64 values per sample) on 4-feature samples.
  auto image_teacher = GraphModule::Create(*BuildMlp({1, 8, 8}, {8}, 3, 54));
  ASSERT_TRUE(image_teacher.ok());
  o.distill.teacher = image_teacher->get();
  std::string msg = error(o);
  EXPECT_THAT(msg, HasSubstr("teacher: input 'input'"));
  EXPECT_THAT(msg, HasSubstr("64 values per sample"));

  // A teacher with 5 classes for a 3-class student.
  auto wide_teacher = GraphModule::Create(*BuildMlp({4}, {8}, 5, 55));
  ASSERT_TRUE(wide_teacher.ok());
  o.distill.teacher = wide_teacher->get();
  msg = error(o);
  EXPECT_THAT(msg, HasSubstr("teacher: logits 'logits' have shape [2,5]"));
  EXPECT_THAT(msg, HasSubstr("student's 'logits' have [2,3]"));

  // Nothing was trained.
  EXPECT_EQ(Weights(**student), before);

  // A teacher whose input takes the same values in another layout is fine: an MLP teacher on
  // [N,1,2,2] features for a student on [N,4].
  auto reshaped_teacher = GraphModule::Create(*BuildMlp({1, 2, 2}, {8}, 3, 56));
  ASSERT_TRUE(reshaped_teacher.ok());
  o.distill.teacher = reshaped_teacher->get();
  EXPECT_TRUE(Train(**student, *data, nullptr, o).ok());
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

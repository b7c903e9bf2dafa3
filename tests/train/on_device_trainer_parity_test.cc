// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The on-device trainer (src/runtime/train, no LibTorch) against LibTorch on the same graph:
// loss, every parameter gradient and SGD-with-momentum steps of the student CNN must agree.
// GraphModule (src/train/graph_module.h) translates the IR to torch; the torch side here uses
// its Impl directly (torch_internal.h), so this one test is a torch translation unit.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "src/runtime/train/trainer.h"
#include "src/train/graph_module.h"
#include "src/train/torch_internal.h"
#include "src/train/zoo.h"

namespace hml::train {
namespace {

using runtime::Trainer;
using runtime::TrainOptions;

struct Batch {
  Tensor x;
  std::vector<int64_t> labels;
};

Batch MakeBatch(int64_t n, uint32_t seed) {
  Batch b;
  b.x = std::move(Tensor::Allocate(DType::kFloat32, {n, 1, 28, 28}).value());
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  for (float& v : b.x.values<float>()) v = u(rng);
  for (int64_t i = 0; i < n; ++i) b.labels.push_back(static_cast<int64_t>(rng() % 10));
  return b;
}

torch::Tensor ToTorch(const Tensor& t) {
  return torch::from_blob(const_cast<float*>(t.data<float>()), t.shape(), torch::kFloat32).clone();
}

// ||a - b|| / ||b||.
double RelativeError(const std::vector<float>& a, const float* b) {
  double diff = 0, norm = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff += (a[i] - b[i]) * static_cast<double>(a[i] - b[i]);
    norm += static_cast<double>(b[i]) * b[i];
  }
  return std::sqrt(diff) / std::max(std::sqrt(norm), 1e-30);
}

// The student CNN with non-trivial BatchNorm statistics, so folding them matters.
runtime::Graph StudentWithBatchNormStats() {
  runtime::Graph g = std::move(BuildArchitecture("student-cnn", {1, 28, 28}, 10, 7).value());
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(0.5f, 1.5f);
  for (runtime::Value& v : g.values) {
    if (!v.is_constant() || v.name.find(".bn.") == std::string::npos) continue;
    Tensor t = std::move(v.constant->Clone().value());
    for (float& x : t.values<float>()) x = v.name.ends_with(".mean") ? u(rng) - 1.0f : u(rng);
    v.constant = std::make_shared<const Tensor>(std::move(t));
  }
  return g;
}

// Torch's mean cross-entropy of `module`'s logits and the gradient of every parameter.
struct TorchResult {
  double loss = 0;
  std::map<std::string, std::vector<float>> gradients;
};

TorchResult TorchLossAndGradients(GraphModule& module, const Batch& batch) {
  GraphModule::Impl& impl = module.impl();
  for (torch::Tensor& p : impl.parameters) {
    if (p.grad().defined()) p.grad().zero_();
  }
  auto out = impl.Run({ToTorch(batch.x)}, {impl.logits});
  EXPECT_TRUE(out.ok()) << out.status().ToString();
  torch::Tensor labels = torch::tensor(batch.labels, torch::kInt64);
  torch::Tensor loss = torch::nn::functional::cross_entropy((*out)[0], labels);
  loss.backward();
  TorchResult r;
  r.loss = loss.item<double>();
  for (size_t i = 0; i < impl.parameter_ids.size(); ++i) {
    torch::Tensor g = impl.parameters[i].grad().contiguous();
    const float* d = g.data_ptr<float>();
    r.gradients[impl.graph.value(impl.parameter_ids[i]).name] =
        std::vector<float>(d, d + g.numel());
  }
  return r;
}

TEST(OnDeviceTrainerParityTest, LossAndGradientsMatchLibTorch) {
  const runtime::Graph graph = StudentWithBatchNormStats();
  TrainOptions options;
  options.momentum = 0.0f;
  auto trainer = Trainer::Create(graph, options);
  ASSERT_TRUE(trainer.ok()) << trainer.status().ToString();
  const Batch batch = MakeBatch(16, 11);
  std::vector<float> ours;
  auto loss = (*trainer)->LossAndGradients(batch.x, batch.labels, &ours);
  ASSERT_TRUE(loss.ok()) << loss.status().ToString();

  // The original graph with BatchNorm in eval mode computes the same loss as the folded one.
  auto with_bn = GraphModule::Create(graph);
  ASSERT_TRUE(with_bn.ok()) << with_bn.status().ToString();
  const TorchResult bn = TorchLossAndGradients(**with_bn, batch);
  EXPECT_NEAR(*loss, bn.loss, 1e-4 * bn.loss);

  // Gradients: torch on the trainer's folded graph has exactly the trainer's parameters.
  auto folded = (*trainer)->ExportGraph();
  ASSERT_TRUE(folded.ok());
  auto module = GraphModule::Create(*folded);
  ASSERT_TRUE(module.ok()) << module.status().ToString();
  const TorchResult torch_result = TorchLossAndGradients(**module, batch);
  EXPECT_NEAR(*loss, torch_result.loss, 1e-4 * torch_result.loss);
  ASSERT_EQ(torch_result.gradients.size(), (*trainer)->parameters().size());
  size_t offset = 0;
  for (const runtime::ParameterInfo& p : (*trainer)->parameters()) {
    ASSERT_TRUE(torch_result.gradients.count(p.name)) << p.name;
    const std::vector<float>& theirs = torch_result.gradients.at(p.name);
    const std::vector<float> mine(ours.begin() + static_cast<ptrdiff_t>(offset),
                                  ours.begin() + static_cast<ptrdiff_t>(offset + theirs.size()));
    const double rel = RelativeError(mine, theirs.data());
    EXPECT_LT(rel, 1e-4) << p.name;
    std::printf("%-16s %6zu values, relative error %.2e\n", p.name.c_str(), theirs.size(), rel);
    offset += theirs.size();
  }
  EXPECT_EQ(offset, ours.size());
}

TEST(OnDeviceTrainerParityTest, MomentumStepsMatchTorchOptimSgd) {
  const runtime::Graph graph = StudentWithBatchNormStats();
  TrainOptions options;
  options.learning_rate = 0.05f;
  options.momentum = 0.9f;
  options.weight_decay = 1e-3f;
  auto trainer = Trainer::Create(graph, options);
  ASSERT_TRUE(trainer.ok());
  auto folded = (*trainer)->ExportGraph();
  ASSERT_TRUE(folded.ok());
  auto module = GraphModule::Create(*folded);
  ASSERT_TRUE(module.ok());
  GraphModule::Impl& impl = (*module)->impl();
  torch::optim::SGD sgd(impl.parameters,
                        torch::optim::SGDOptions(0.05).momentum(0.9).weight_decay(1e-3));
  for (int step = 0; step < 3; ++step) {
    const Batch batch = MakeBatch(8, 20 + static_cast<uint32_t>(step));
    ASSERT_TRUE((*trainer)->Step(batch.x, batch.labels).ok());
    sgd.zero_grad();
    TorchLossAndGradients(**module, batch);
    sgd.step();
  }
  const std::vector<float> ours = (*trainer)->GetParameters();
  size_t offset = 0;
  for (const runtime::ParameterInfo& p : (*trainer)->parameters()) {
    torch::Tensor theirs;
    for (size_t i = 0; i < impl.parameter_ids.size(); ++i) {
      if (impl.graph.value(impl.parameter_ids[i]).name == p.name) {
        theirs = impl.parameters[i].detach().contiguous();
      }
    }
    ASSERT_TRUE(theirs.defined()) << p.name;
    const std::vector<float> mine(ours.begin() + static_cast<ptrdiff_t>(offset),
                                  ours.begin() + static_cast<ptrdiff_t>(offset + theirs.numel()));
    EXPECT_LT(RelativeError(mine, theirs.data_ptr<float>()), 1e-4) << p.name;
    offset += static_cast<size_t>(theirs.numel());
  }
}

}  // namespace
}  // namespace hml::train

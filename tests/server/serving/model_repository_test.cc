// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/server/serving/model_repository.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <future>
#include <memory>
#include <thread>

#include "hml/runtime/session.h"
#include "src/server/metrics/metrics.h"
#include "tests/testing/models.h"
#include "tests/testing/split_requests.h"

namespace hml::server {
namespace {

Model Cnn28() { return *Model::FromGraph(testing::Cnn28Graph()); }

TEST(ModelRepositoryTest, UnknownModelIsNotFound) {
  ModelRepository repo;
  EXPECT_EQ(repo.GetModel("m", 0).status().code(), StatusCode::kNotFound);
  NamedInferRequest r;
  r.done = [](Result<std::vector<Tensor>>) {};
  EXPECT_EQ(repo.Infer("m", 0, ServingProtocol::kHttp, std::move(r)).status.code(),
            StatusCode::kNotFound);
}

TEST(ModelRepositoryTest, LatestAndPinnedVersionsAndUnloadLosesNoRequest) {
  ModelRepository repo;
  ASSERT_TRUE(repo.LoadModel("m", 1, Cnn28()).ok());
  ASSERT_TRUE(repo.LoadModel("m", 2, Cnn28()).ok());
  EXPECT_EQ(repo.GetModel("m", 0)->version, 2);
  EXPECT_EQ(repo.GetModel("m", 1)->version, 1);
  EXPECT_EQ(repo.GetModel("m", 3).status().code(), StatusCode::kNotFound);

  std::atomic<int> answered{0}, accepted{0};
  std::atomic<bool> stop{false};
  std::thread client([&] {
    while (!stop) {
      NamedInferRequest r;
      r.inputs.push_back({"image", testing::RandomTensor({1, 1, 28, 28}, 1, 1.0f)});
      r.done = [&](Result<std::vector<Tensor>> out) {
        if (out.ok()) ++answered;
      };
      if (repo.Infer("m", 0, ServingProtocol::kHttp, std::move(r)).ok()) ++accepted;
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(repo.Unload("m", 2).ok());
  EXPECT_EQ(repo.GetModel("m", 0)->version, 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  stop = true;
  client.join();
  ASSERT_TRUE(repo.Unload("m", 1).ok());
  EXPECT_EQ(answered.load(), accepted.load());
  EXPECT_GT(accepted.load(), 0);
}

TEST(ModelRepositoryTest, InferMatchesASession) {
  const Model model = Cnn28();
  ModelRepository repo;
  ASSERT_TRUE(repo.LoadModel("m", 1, model).ok());
  Tensor image = testing::RandomTensor({1, 1, 28, 28}, 7, 1.0f);
  auto session = *Session::Create(model, {});
  std::vector<Tensor> in;
  in.push_back(*image.Clone());
  auto expected = *session->Run(in);
  std::promise<Result<std::vector<Tensor>>> p;
  NamedInferRequest r;
  r.inputs.push_back({"image", std::move(image)});
  r.done = [&](Result<std::vector<Tensor>> out) { p.set_value(std::move(out)); };
  ASSERT_TRUE(repo.Infer("m", 1, ServingProtocol::kHttp, std::move(r)).ok());
  auto got = p.get_future().get();
  ASSERT_TRUE(got.ok());
  auto a = (*got)[0].data<float>();
  auto b = expected[0].data<float>();
  for (int i = 0; i < 10; ++i) EXPECT_FLOAT_EQ(a[i], b[i]);
}

// ---------------------------------------------------------------------------------------------
// Split inference: requests that name the tensors of a cut instead of the model's inputs.

Model TwoBranch() { return *Model::FromGraph(testing::TwoBranchCnnGraph()); }

// Runs `inputs` through repo.Infer on ("m", 1) and waits for the answer.
Result<std::vector<Tensor>> InferNamed(ModelRepository& repo, std::vector<NamedTensor> inputs) {
  auto promise = std::make_shared<std::promise<Result<std::vector<Tensor>>>>();
  NamedInferRequest r;
  r.inputs = std::move(inputs);
  r.done = [promise](Result<std::vector<Tensor>> out) { promise->set_value(std::move(out)); };
  SubmitResult submitted = repo.Infer("m", 1, ServingProtocol::kGrpc, std::move(r));
  if (!submitted.ok()) return submitted.status;
  return promise->get_future().get();
}

std::vector<NamedTensor> Clones(const std::vector<NamedTensor>& tensors) {
  std::vector<NamedTensor> out;
  for (const NamedTensor& t : tensors) out.push_back({t.name, *t.tensor.Clone(), t.parameters});
  return out;
}

float MaxAbsDiff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  float diff = 0.0f;
  auto x = a.values<float>();
  auto y = b.values<float>();
  for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
    diff = std::max(diff, std::fabs(x[i] - y[i]));
  }
  return diff;
}

std::vector<CutPoint> CutPoints(const Model& model) {
  Result<ModelAnalysis> analysis = model.Analyze();
  EXPECT_TRUE(analysis.ok()) << analysis.status().ToString();
  return analysis.ok() ? analysis->cut_points : std::vector<CutPoint>{};
}

TEST(ModelRepositorySplitTest, Fp32CutTensorsAtEveryCutPointGiveTheFullModelsOutputs) {
  const Model model = TwoBranch();
  ModelRepositoryOptions options;
  options.max_split_tails_per_version = 16;
  ModelRepository repo(options);
  ASSERT_TRUE(repo.LoadModel("m", 1, model).ok());
  const Tensor images = testing::RandomTensor({3, 1, 28, 28}, 41, 1.0f);
  std::vector<NamedTensor> full_inputs;
  full_inputs.push_back({"image", *images.Clone()});
  const std::vector<Tensor> full = testing::RunInProcess(model, full_inputs);
  ASSERT_EQ(full.size(), 1u);

  const std::vector<CutPoint> cuts = CutPoints(model);
  ASSERT_EQ(cuts.size(), 8u);
  int two_tensor_cuts = 0;
  for (const CutPoint& cut : cuts) {
    SCOPED_TRACE(::testing::PrintToString(cut.tensors));
    two_tensor_cuts += cut.tensors.size() == 2 ? 1 : 0;
    const std::vector<NamedTensor> head = testing::HeadTensors(model, cut.tensors, images);
    ASSERT_EQ(head.size(), cut.tensors.size());
    Result<std::vector<Tensor>> got = InferNamed(repo, Clones(head));
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    ASSERT_EQ(got->size(), 1u);
    EXPECT_LE(MaxAbsDiff((*got)[0], full[0]), 1e-5f);
  }
  EXPECT_EQ(two_tensor_cuts, 4);
  // The whole model is still served from the same version.
  Result<std::vector<Tensor>> whole = InferNamed(repo, Clones(full_inputs));
  ASSERT_TRUE(whole.ok());
  EXPECT_LE(MaxAbsDiff((*whole)[0], full[0]), 1e-5f);
}

TEST(ModelRepositorySplitTest, Int8CutTensorsAreDequantizedAndKeepTheTopClass) {
  const Model model = TwoBranch();
  ModelRepositoryOptions options;
  options.max_split_tails_per_version = 16;
  ModelRepository repo(options);
  ASSERT_TRUE(repo.LoadModel("m", 1, model).ok());
  const int64_t samples = 4;
  const Tensor images = testing::RandomTensor({samples, 1, 28, 28}, 43, 1.0f);
  std::vector<NamedTensor> full_inputs;
  full_inputs.push_back({"image", *images.Clone()});
  const std::vector<Tensor> full = testing::RunInProcess(model, full_inputs);
  ASSERT_EQ(full.size(), 1u);

  for (const CutPoint& cut : CutPoints(model)) {
    SCOPED_TRACE(::testing::PrintToString(cut.tensors));
    const std::vector<NamedTensor> head = testing::HeadTensors(model, cut.tensors, images);
    std::vector<NamedTensor> quantized;
    std::vector<NamedTensor> dequantized;
    for (const NamedTensor& t : head) {
      quantized.push_back(testing::QuantizeInt8(t));
      dequantized.push_back(testing::DequantizeInt8(quantized.back()));
      // The quantization error bound of each cut tensor: half a step.
      const double scale = std::get<double>(quantized.back().parameters.at("scale"));
      EXPECT_LE(MaxAbsDiff(dequantized.back().tensor, t.tensor), scale / 2 * (1 + 1e-5));
    }
    Result<std::vector<Tensor>> got = InferNamed(repo, std::move(quantized));
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    // The server computes exactly the tail of the dequantized tensors...
    const std::vector<Tensor> tail = testing::RunInProcess(
        *model.Slice(cut.tensors, {}, {{"image", images.shape()}}), dequantized);
    ASSERT_EQ(tail.size(), 1u);
    EXPECT_LE(MaxAbsDiff((*got)[0], tail[0]), 1e-5f);
    // ...which stays close to the full model's probabilities, with the same top class.
    EXPECT_LE(MaxAbsDiff((*got)[0], full[0]), 0.01f);
    for (int64_t n = 0; n < samples; ++n) {
      EXPECT_EQ(testing::ArgMaxRow((*got)[0], n), testing::ArgMaxRow(full[0], n)) << "sample " << n;
    }
  }
}

TEST(ModelRepositorySplitTest, BadCutsAreInvalidArgumentNamingTheTensor) {
  const Model model = TwoBranch();
  ModelRepository repo;
  ASSERT_TRUE(repo.LoadModel("m", 1, model).ok());
  const Tensor images = testing::RandomTensor({1, 1, 28, 28}, 47, 1.0f);
  const std::vector<NamedTensor> cut = testing::HeadTensors(model, {"ra", "rb"}, images);
  const auto expect_invalid = [&](std::vector<NamedTensor> inputs,
                                  const std::vector<std::string>& parts) {
    Result<std::vector<Tensor>> got = InferNamed(repo, std::move(inputs));
    ASSERT_FALSE(got.ok());
    EXPECT_EQ(got.status().code(), StatusCode::kInvalidArgument);
    for (const std::string& part : parts) {
      EXPECT_THAT(std::string(got.status().message()), ::testing::HasSubstr(part));
    }
  };
  // One tensor of a two-tensor cut missing.
  std::vector<NamedTensor> half;
  half.push_back({"ra", *cut[0].tensor.Clone()});
  expect_invalid(std::move(half),
                 {"model 'm' version 1", "neither the model's inputs [image] nor a complete cut",
                  "'rb' of the cut [ra, rb]"});
  // An unknown name.
  std::vector<NamedTensor> unknown = Clones(cut);
  unknown.push_back({"nope", *cut[0].tensor.Clone()});
  expect_invalid(std::move(unknown), {"'nope' is not a tensor of the model"});
  // INT8 without a scale, and with a zero point out of range.
  std::vector<NamedTensor> no_scale = Clones(cut);
  no_scale[1] = testing::QuantizeInt8(cut[1]);
  no_scale[1].parameters.erase("scale");
  expect_invalid(std::move(no_scale), {"input 'rb'", "no parameter 'scale'"});
  std::vector<NamedTensor> bad_zero = Clones(cut);
  bad_zero[0] = testing::QuantizeInt8(cut[0]);
  bad_zero[0].parameters["zero_point"] = int64_t{200};
  expect_invalid(std::move(bad_zero), {"input 'ra'", "'zero_point' must be an integer"});
  // A wrong shape (the batch dimension is free, the others are not).
  std::vector<NamedTensor> wrong_shape = Clones(cut);
  wrong_shape[1].tensor = testing::RandomTensor({1, 4, 27, 28}, 1, 1.0f);
  expect_invalid(std::move(wrong_shape), {"'rb'", "[1,4,27,28]", "expected [?,4,28,28]"});
  // A model input missing is still reported as such (a full request, not a split one).
  expect_invalid({}, {"input 'image' is missing"});
}

TEST(ModelRepositorySplitTest, TailsAreBoundedPerVersionAndEvictedTailsCanComeBack) {
  const Model model = TwoBranch();
  ModelRepositoryOptions options;
  options.max_split_tails_per_version = 2;
  ModelRepository repo(options);
  ASSERT_TRUE(repo.LoadModel("m", 1, model).ok());
  const Tensor images = testing::RandomTensor({2, 1, 28, 28}, 53, 1.0f);
  std::vector<NamedTensor> full_inputs;
  full_inputs.push_back({"image", *images.Clone()});
  const std::vector<Tensor> full = testing::RunInProcess(model, full_inputs);
  // Five distinct cuts through a cache of two, then the first again.
  const std::vector<std::vector<std::string>> cuts = {{"pool"}, {"flat"},   {"ra", "rb"},
                                                      {"cat"},  {"logits"}, {"pool"}};
  for (const auto& cut : cuts) {
    SCOPED_TRACE(::testing::PrintToString(cut));
    Result<std::vector<Tensor>> got = InferNamed(repo, testing::HeadTensors(model, cut, images));
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_LE(MaxAbsDiff((*got)[0], full[0]), 1e-5f);
  }
  // With split inference disabled, a cut is refused and says so.
  ModelRepositoryOptions off;
  off.max_split_tails_per_version = 0;
  ModelRepository no_split(off);
  ASSERT_TRUE(no_split.LoadModel("m", 1, model).ok());
  Result<std::vector<Tensor>> refused =
      InferNamed(no_split, testing::HeadTensors(model, {"pool"}, images));
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(refused.status().message()), ::testing::HasSubstr("disabled"));
  off.max_split_tails_per_version = 65;
  EXPECT_EQ(off.Validate().code(), StatusCode::kInvalidArgument);
}

TEST(ModelRepositorySplitTest, UnloadWhileSplitRequestsAreInFlightAnswersEveryOne) {
  const Model model = TwoBranch();
  ModelRepositoryOptions options;
  options.max_split_tails_per_version = 2;  // three cuts below: evictions happen meanwhile
  ModelRepository repo(options);
  ASSERT_TRUE(repo.LoadModel("m", 1, model).ok());
  const Tensor images = testing::RandomTensor({1, 1, 28, 28}, 59, 1.0f);
  const std::vector<std::vector<NamedTensor>> requests = [&] {
    std::vector<std::vector<NamedTensor>> r;
    r.push_back(testing::HeadTensors(model, {"pool"}, images));
    r.push_back(testing::HeadTensors(model, {"ra", "rb"}, images));
    r.push_back(testing::HeadTensors(model, {"flat"}, images));
    r.push_back(testing::HeadTensors(model, {"image"}, images));
    return r;
  }();
  std::atomic<int> answered{0}, accepted{0}, split_accepted{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> clients;
  for (int c = 0; c < 3; ++c) {
    clients.emplace_back([&, c] {
      for (size_t i = static_cast<size_t>(c); !stop; ++i) {
        const size_t which = i % requests.size();
        NamedInferRequest r;
        r.inputs = Clones(requests[which]);
        r.done = [&](Result<std::vector<Tensor>> out) {
          if (out.ok()) ++answered;
        };
        if (repo.Infer("m", 1, ServingProtocol::kHttp, std::move(r)).ok()) {
          ++accepted;
          if (which != 3) ++split_accepted;
        }
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_TRUE(repo.Unload("m", 1).ok());
  // Everything accepted before Unload() returned has been answered by then. A client may not
  // have counted its last accepted request yet (it counts after Infer() returns, and the answer
  // can come first), so answers may exceed the count read here, never fall short of it.
  const int answered_at_unload = answered.load();
  const int accepted_at_unload = accepted.load();
  EXPECT_GE(answered_at_unload, accepted_at_unload);
  stop = true;
  for (std::thread& t : clients) t.join();
  EXPECT_EQ(answered.load(), accepted.load());
  EXPECT_GT(split_accepted.load(), 0);
}

TEST(ModelRepositorySplitTest, SplitRequestsAreCountedUnderTheModelAndVersion) {
  MetricsRegistry registry;
  Result<std::unique_ptr<ServingMetrics>> serving = ServingMetrics::Create(registry);
  ASSERT_TRUE(serving.ok());
  const Model model = TwoBranch();
  ModelRepository repo({}, serving->get());
  ASSERT_TRUE(repo.LoadModel("m", 1, model).ok());
  const Tensor images = testing::RandomTensor({1, 1, 28, 28}, 61, 1.0f);
  ASSERT_TRUE(InferNamed(repo, testing::HeadTensors(model, {"pool"}, images)).ok());
  ASSERT_TRUE(InferNamed(repo, testing::HeadTensors(model, {"pool"}, images)).ok());
  ASSERT_TRUE(InferNamed(repo, testing::HeadTensors(model, {"image"}, images)).ok());
  EXPECT_FALSE(InferNamed(repo, testing::HeadTensors(model, {"ra"}, images)).ok());
  const std::string text = registry.Expose();
  EXPECT_THAT(text, ::testing::HasSubstr("hml_inference_split_requests_total{model=\"m\","
                                         "version=\"1\",protocol=\"grpc\",code=\"OK\"} 2\n"));
  EXPECT_THAT(text,
              ::testing::HasSubstr("hml_inference_split_requests_total{model=\"m\",version=\"1\","
                                   "protocol=\"grpc\",code=\"INVALID_ARGUMENT\"} 1\n"));
  // Split requests are also requests of the version.
  EXPECT_THAT(text, ::testing::HasSubstr("hml_inference_requests_total{model=\"m\",version=\"1\","
                                         "protocol=\"grpc\",code=\"OK\"} 3\n"));
  // Their batches are observed with the version's.
  EXPECT_THAT(
      text, ::testing::HasSubstr("hml_inference_batch_size_count{model=\"m\",version=\"1\"} 3\n"));
}

}  // namespace
}  // namespace hml::server

// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/server/serving/model_repository.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <chrono>
#include <thread>

#include "hml/runtime/session.h"
#include "tests/testing/models.h"

namespace hml::server {
namespace {

Model Cnn28() { return *Model::FromGraph(testing::Cnn28Graph()); }

TEST(ModelRepositoryTest, UnknownModelIsNotFound) {
  ModelRepository repo;
  EXPECT_EQ(repo.GetModel("m", 0).status().code(), StatusCode::kNotFound);
  InferRequest r;
  r.done = [](Result<std::vector<Tensor>>) {};
  EXPECT_EQ(repo.Infer("m", 0, ServingProtocol::kHttp, std::move(r)).status.code(), StatusCode::kNotFound);
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
      InferRequest r;
      r.inputs.push_back(testing::RandomTensor({1, 1, 28, 28}, 1, 1.0f));
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
  InferRequest r;
  r.inputs.push_back(std::move(image));
  r.done = [&](Result<std::vector<Tensor>> out) { p.set_value(std::move(out)); };
  ASSERT_TRUE(repo.Infer("m", 1, ServingProtocol::kHttp, std::move(r)).ok());
  auto got = p.get_future().get();
  ASSERT_TRUE(got.ok());
  auto a = (*got)[0].data<float>();
  auto b = expected[0].data<float>();
  for (int i = 0; i < 10; ++i) EXPECT_FLOAT_EQ(a[i], b[i]);
}

}  // namespace
}  // namespace hml::server

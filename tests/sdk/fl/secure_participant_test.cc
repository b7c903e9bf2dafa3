// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Two FederatedParticipants in a secure-aggregation round of a real FederatedTasks server (the
// registry and task of tests/testing/federated_fixture.h), over a transport that hands each call
// straight to the server as the device it stands for. One device's call fails in the middle of
// the exchange: its RunOnce reports the error, the next RunOnce resumes the exchange (same keys,
// same input), and the round is applied with both devices' updates in the sum.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "hml/sdk/platform.h"
#include "proto/hybridml_device.pb.h"
#include "src/sdk/fl/participant.h"
#include "src/sdk/grpc/wire.h"
#include "tests/testing/federated_fixture.h"

namespace hml::sdk {
namespace {

// Calls FederatedTasks directly as `device`; the `fail_secure_call`-th SecureAggregation call
// (1-based; 0 = none) fails with kUnavailable before reaching the server. Callbacks run on a
// thread of their own, as the Transport contract asks.
class DirectTransport final : public Transport {
 public:
  DirectTransport(server::FederatedTasks* tasks, std::string device)
      : tasks_(tasks), device_(std::move(device)) {}
  ~DirectTransport() override {
    for (std::thread& t : threads_) t.join();
  }
  int fail_secure_call = 0;
  std::atomic<int> secure_calls{0};

  CallId JoinRound(JoinRoundCall call, JoinRoundCallback done) override {
    Result<server::JoinAnswer> joined = tasks_->Join(call.task, device_, NowMs());
    if (!joined.ok()) return Answer(Result<JoinRoundAnswer>(joined.status()), std::move(done));
    // The answer's wire form both transports share.
    hybridml::v1::JoinRoundResponse response;
    server::FillJoinRoundResponse(*joined, &response);
    return Answer(DecodeJoinRoundAnswer(response), std::move(done));
  }
  CallId SecureAggregation(SecureAggregationCall call, SecureAggregationCallback done) override {
    if (++secure_calls == fail_secure_call) {
      return Answer(Result<SecureAggregationAnswer>(UnavailableError("link down")),
                    std::move(done));
    }
    Result<std::string> reply =
        tasks_->SecureExchange(call.task, device_, call.round_id, call.message, NowMs());
    if (!reply.ok())
      return Answer(Result<SecureAggregationAnswer>(reply.status()), std::move(done));
    return Answer(Result<SecureAggregationAnswer>(SecureAggregationAnswer{std::move(*reply)}),
                  std::move(done));
  }
  CallId SubmitUpdate(SubmitUpdateCall, SubmitUpdateCallback done) override {
    return Answer(Result<SubmitUpdateAnswer>(UnimplementedError("secure rounds only")),
                  std::move(done));
  }
  CallId Infer(InferCall, InferCallback done) override {
    return Answer(Result<InferAnswer>(UnimplementedError("no")), std::move(done));
  }
  CallId Upload(UploadCall, UploadCallback done) override {
    return Answer(Result<UploadAnswer>(UnimplementedError("no")), std::move(done));
  }
  CallId ReportTelemetry(TelemetryCall, TelemetryCallback done) override {
    return Answer(Result<TelemetryAnswer>(UnimplementedError("no")), std::move(done));
  }
  bool Cancel(CallId) override { return false; }
  Clock* clock() const override { return RealClock(); }

 private:
  static int64_t NowMs() { return RealClock()->WallMicros() / 1000; }
  template <typename T, typename Callback>
  CallId Answer(Result<T> answer, Callback done) {
    std::lock_guard<std::mutex> lock(mu_);
    threads_.emplace_back([answer = std::move(answer), done = std::move(done)]() mutable {
      done(std::move(answer), CallStats{});
    });
    return static_cast<CallId>(threads_.size());
  }
  server::FederatedTasks* tasks_;
  std::string device_;
  std::mutex mu_;
  std::vector<std::thread> threads_;
};

// 40 random 1x28x28 images with labels, for the test CNN.
std::shared_ptr<data::InMemoryDataset> Images(uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> pixel(0.0f, 1.0f);
  std::vector<float> features(40 * 784);
  for (float& f : features) f = pixel(rng);
  std::vector<int64_t> labels(40);
  for (size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<int64_t>(i % 10);
  return *data::InMemoryDataset::Create({1, 28, 28}, 10, std::move(features), std::move(labels));
}

TEST(SecureParticipantTest, AFailedCallResumesTheExchangeAndTheRoundAppliesBothUpdates) {
  const std::string dir =
      ::testing::TempDir() + "/secure_participant_test_" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  testing::FederatedServer server;
  ASSERT_NO_FATAL_FAILURE(server.Create(dir, /*clients=*/2));
  const ModelSource models = [&](int64_t version) -> Result<std::string> {
    if (version != 1) return UnavailableError("only v1 here");
    return dir + "/cnn.onnx";
  };
  StaticPlatform platform;
  platform.set_network({.type = NetworkType::kUnmetered});
  platform.set_power({.battery_level = 1.0, .charging = true});
  platform.set_idle(true);
  DirectTransport transport_a(server.tasks.get(), "a"), transport_b(server.tasks.get(), "b");
  transport_a.fail_secure_call = 4;  // after the poll, the keys and one more message
  std::unique_ptr<FederatedParticipant> participants[2];
  DirectTransport* transports[2] = {&transport_a, &transport_b};
  for (int i = 0; i < 2; ++i) {
    ParticipantOptions options;
    options.task = testing::kSecureFederatedTask;
    options.client_id = i == 0 ? "a" : "b";
    auto created = FederatedParticipant::Create(*transports[i], platform, *RealClock(), options);
    ASSERT_TRUE(created.ok()) << created.status().ToString();
    participants[i] = std::move(*created);
  }
  const auto data_a = Images(1), data_b = Images(2);

  // Both join the pool; the tick opens round 1 with both.
  ASSERT_TRUE(participants[0]->RunOnce(*data_a, models).ok());
  ASSERT_TRUE(participants[1]->RunOnce(*data_b, models).ok());
  ASSERT_TRUE(server.tasks->Tick(RealClock()->WallMicros() / 1000).ok());

  Result<ParticipationResult> first_a = UnknownError("not run"), second_a = first_a, b = first_a;
  std::thread device_b([&] { b = participants[1]->RunOnce(*data_b, models); });
  first_a = participants[0]->RunOnce(*data_a, models);
  second_a = participants[0]->RunOnce(*data_a, models);
  device_b.join();

  EXPECT_EQ(first_a.status().code(), StatusCode::kUnavailable) << first_a.status().ToString();
  ASSERT_TRUE(second_a.ok()) << second_a.status().ToString();
  EXPECT_EQ(second_a->outcome, ParticipationResult::Outcome::kSubmitted) << second_a->detail;
  EXPECT_TRUE(second_a->accepted);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(b->outcome, ParticipationResult::Outcome::kSubmitted) << b->detail;
  EXPECT_EQ(b->training.update.num_examples, 40);

  ASSERT_TRUE(server.tasks->Tick(RealClock()->WallMicros() / 1000).ok());
  auto history = server.tasks->History(testing::kSecureFederatedTask);
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), 1u);
  EXPECT_EQ(history->front().status, fl::RoundStatus::kApplied) << history->front().abandon_reason;
  EXPECT_EQ(history->front().participants, 2);
  EXPECT_EQ(history->front().examples, 80);
  // One update per round: a third attempt finds the round already taken part in.
  auto again = participants[0]->RunOnce(*data_a, models);
  ASSERT_TRUE(again.ok());
  EXPECT_NE(again->outcome, ParticipationResult::Outcome::kSubmitted);
  server.tasks.reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace hml::sdk

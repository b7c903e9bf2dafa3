// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// FederatedParticipant against a scripted FederatedLearning server (a fake Transport): no round,
// the round's model missing, a round trained, sealed with the round's codec, clipped to the
// announced norm bound and submitted once; errors of either call passed on with context.
#include "src/sdk/fl/participant.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "src/fl/update_wire.h"
#include "src/runtime/onnx_io.h"
#include "tests/testing/datasets.h"
#include "tests/testing/models.h"

namespace hml::sdk {
namespace {

// Answers JoinRound with `join` and SubmitUpdate with `submit`, keeping what was submitted.
// Callbacks run on a thread of the fake; the other calls answer kUnimplemented.
class FakeFederatedServer final : public Transport {
 public:
  ~FakeFederatedServer() override {
    for (std::thread& t : threads_) t.join();
  }
  Result<JoinRoundAnswer> join = JoinRoundAnswer{};
  Result<SubmitUpdateAnswer> submit = SubmitUpdateAnswer{.accepted = true};
  std::vector<SubmitUpdateCall> submitted;
  int joins = 0;

  CallId JoinRound(JoinRoundCall call, JoinRoundCallback done) override {
    EXPECT_TRUE(ValidateJoinRoundCall(call).ok());
    ++joins;
    return Answer(join, std::move(done), call.task.size(), 40);
  }
  CallId SubmitUpdate(SubmitUpdateCall call, SubmitUpdateCallback done) override {
    EXPECT_TRUE(ValidateSubmitUpdateCall(call).ok());
    const int64_t size = static_cast<int64_t>(call.sealed_update.size());
    submitted.push_back(std::move(call));
    return Answer(submit, std::move(done), size, 2);
  }
  CallId SecureAggregation(SecureAggregationCall, SecureAggregationCallback done) override {
    return Answer(Result<SecureAggregationAnswer>(UnimplementedError("no")), std::move(done), 0, 0);
  }
  CallId Infer(InferCall, InferCallback done) override {
    return Answer(Result<InferAnswer>(UnimplementedError("no")), std::move(done), 0, 0);
  }
  CallId Upload(UploadCall, UploadCallback done) override {
    return Answer(Result<UploadAnswer>(UnimplementedError("no")), std::move(done), 0, 0);
  }
  CallId ReportTelemetry(TelemetryCall, TelemetryCallback done) override {
    return Answer(Result<TelemetryAnswer>(UnimplementedError("no")), std::move(done), 0, 0);
  }
  bool Cancel(CallId) override { return false; }
  Clock* clock() const override { return RealClock(); }

 private:
  template <typename T, typename Callback>
  CallId Answer(Result<T> answer, Callback done, int64_t sent, int64_t received) {
    CallStats stats;
    stats.bytes_sent = sent;
    stats.bytes_received = received;
    threads_.emplace_back([answer = std::move(answer), done = std::move(done), stats]() mutable {
      done(std::move(answer), stats);
    });
    return static_cast<CallId>(threads_.size());
  }
  std::vector<std::thread> threads_;
};

class ParticipantTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/participant_test_" + std::to_string(::getpid());
    std::filesystem::create_directories(dir_);
    model_path_ = dir_ + "/v7.onnx";
    std::ofstream(model_path_, std::ios::binary)
        << *runtime::SerializeOnnxModel(testing::LinearClassifierGraph());
    platform_.set_network({.type = NetworkType::kUnmetered});
    platform_.set_power({.battery_level = 1.0, .charging = true});
    platform_.set_idle(true);
    ParticipantOptions options;
    options.task = "blobs";
    options.client_id = "phone-1";
    participant_ = *FederatedParticipant::Create(server_, platform_, *RealClock(), options);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // The round every test joins: round 12 of version 7, int8 updates.
  static JoinRoundAnswer Round() {
    JoinRoundAnswer a;
    a.round_id = "12";
    a.model_version = 7;
    a.deadline_ms = 1;
    a.config = {
        {"local_steps", "5"}, {"batch_size", "8"}, {"learning_rate", "0.1"}, {"codec", "int8"}};
    return a;
  }
  ModelSource Source() {
    return [this](int64_t version) -> Result<std::string> {
      if (version != 7) return UnavailableError("only v7 here");
      return model_path_;
    };
  }

  std::string dir_, model_path_;
  FakeFederatedServer server_;
  StaticPlatform platform_;
  std::unique_ptr<FederatedParticipant> participant_;
  std::shared_ptr<data::InMemoryDataset> data_ = testing::Blobs(60, 4);
};

TEST_F(ParticipantTest, NoRoundMeansNoTrainingAndNoSubmission) {
  auto r = participant_->RunOnce(*data_, Source());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->outcome, ParticipationResult::Outcome::kNoRound);
  EXPECT_EQ(r->wire_bytes_sent, 5);  // the join's bytes still count
  EXPECT_TRUE(server_.submitted.empty());
}

TEST_F(ParticipantTest, TrainsSealsWithTheRoundsCodecAndSubmitsOncePerRound) {
  server_.join = Round();
  auto r = participant_->RunOnce(*data_, Source());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->outcome, ParticipationResult::Outcome::kSubmitted);
  EXPECT_TRUE(r->accepted);
  EXPECT_EQ(r->training.steps, 5);
  ASSERT_EQ(server_.submitted.size(), 1u);
  const SubmitUpdateCall& call = server_.submitted[0];
  EXPECT_EQ(call.task, "blobs");
  EXPECT_EQ(call.round_id, "12");
  EXPECT_EQ(call.example_count, 60u);
  EXPECT_EQ(r->update_bytes, static_cast<int64_t>(call.sealed_update.size()));
  auto decoded = fl::DecodeUpdate(call.sealed_update);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->codec, fl::WireCodec::kInt8);
  EXPECT_EQ(decoded->update.round_id, 12);
  EXPECT_EQ(decoded->update.client_id, "phone-1");
  EXPECT_EQ(decoded->update.layout,
            LayoutOf(*runtime::Trainer::Create(testing::LinearClassifierGraph(), {}).value()));
  // Asked again while round 12 is still open: no second update.
  auto again = participant_->RunOnce(*data_, Source());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->outcome, ParticipationResult::Outcome::kNoRound);
  EXPECT_NE(again->detail.find("already took part in round 12"), std::string::npos);
  EXPECT_EQ(server_.submitted.size(), 1u);
}

TEST_F(ParticipantTest, EveryRoundStartsFromTheVersionsWeights) {
  server_.join = Round();
  ASSERT_TRUE(participant_->RunOnce(*data_, Source()).ok());
  JoinRoundAnswer next = Round();
  next.round_id = "13";
  next.config["codec"] = "none";
  server_.join = next;
  ASSERT_TRUE(participant_->RunOnce(*data_, Source()).ok());
  ASSERT_EQ(server_.submitted.size(), 2u);
  // Same version, same data, same steps: the same update both times (not one trained on top of
  // the other), up to int8 rounding in the first.
  auto a = fl::DecodeUpdate(server_.submitted[0].sealed_update);
  auto b = fl::DecodeUpdate(server_.submitted[1].sealed_update);
  ASSERT_TRUE(a.ok() && b.ok());
  double max_delta = 0;
  for (float v : b->update.delta) max_delta = std::max<double>(max_delta, std::abs(v));
  for (size_t i = 0; i < a->update.delta.size(); ++i) {
    EXPECT_NEAR(a->update.delta[i], b->update.delta[i], max_delta / 100) << i;
  }
}

TEST_F(ParticipantTest, ClipsToTheAnnouncedNormBound) {
  JoinRoundAnswer round = Round();
  round.config["codec"] = "none";
  round.config["max_l2_norm"] = "0.01";
  server_.join = round;
  auto r = participant_->RunOnce(*data_, Source());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto decoded = fl::DecodeUpdate(server_.submitted.at(0).sealed_update);
  ASSERT_TRUE(decoded.ok());
  EXPECT_NEAR(fl::L2Norm(decoded->update.delta), 0.01, 1e-6);
}

TEST_F(ParticipantTest, AMissingModelVersionSkipsTheRound) {
  JoinRoundAnswer round = Round();
  round.model_version = 8;
  server_.join = round;
  auto r = participant_->RunOnce(*data_, Source());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->outcome, ParticipationResult::Outcome::kModelMissing);
  EXPECT_NE(r->detail.find("only v7"), std::string::npos);
  EXPECT_TRUE(server_.submitted.empty());
}

TEST_F(ParticipantTest, CallErrorsAndBadConfigsAreReportedWithContext) {
  server_.join = UnavailableError("server restarting");
  auto r = participant_->RunOnce(*data_, Source());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("JoinRound for task blobs"), std::string::npos);

  JoinRoundAnswer bad = Round();
  bad.config["codec"] = "zip";
  server_.join = bad;
  EXPECT_EQ(participant_->RunOnce(*data_, Source()).status().code(), StatusCode::kInvalidArgument);

  server_.join = Round();
  server_.submit = AlreadyExistsError("duplicate");
  auto s = participant_->RunOnce(*data_, Source());
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kAlreadyExists);
  EXPECT_NE(s.status().message().find("round 12"), std::string::npos);

  platform_.set_power({.battery_level = 1.0, .charging = false});
  server_.submit = SubmitUpdateAnswer{.accepted = true};
  JoinRoundAnswer later = Round();
  later.round_id = "14";
  server_.join = later;
  EXPECT_EQ(participant_->RunOnce(*data_, Source()).status().code(),
            StatusCode::kFailedPrecondition);

  ParticipantOptions missing;
  EXPECT_FALSE(FederatedParticipant::Create(server_, platform_, *RealClock(), missing).ok());
}

}  // namespace
}  // namespace hml::sdk

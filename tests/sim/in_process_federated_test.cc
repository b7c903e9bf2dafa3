// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The in-process transport's federated-learning calls: JoinRound() and SubmitUpdate() of two
// simulated devices, each over its own emulated 4g link, into FederatedTasks over a real registry
// (tests/testing/federated_fixture.h), in virtual time (a ManualClock whose wall clock starts at a
// fixed moment, so the rounds' milliseconds are exact). Checked: the whole round (join, pool,
// tick, round, sealed updates accepted, duplicate, the tick publishing version 2), the bytes
// (the protobuf messages plus the per-message overhead) and the latency the link gives them, the
// rounds' time being the transport clock's (an update after the deadline in virtual time is not
// accepted), the server's error codes passed through, kUnimplemented without tasks, Cancel()
// before the request arrives (the server never sees it).
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "proto/hybridml_device.pb.h"
#include "src/server/serving/model_repository.h"
#include "src/sim/in_process_transport.h"
#include "tests/testing/federated_fixture.h"

namespace hml::sim {
namespace {

constexpr int64_t kMs = 1'000'000;
// The wall clock of virtual time 0: 2026-01-01T00:00:00Z, in microseconds.
constexpr int64_t kWallStartMicros = 1'767'225'600'000'000;
constexpr int64_t kOverhead = 9;  // per_message_overhead_bytes

template <typename Answer>
struct Outcome {
  Result<Answer> answer = InternalError("not answered");
  sdk::CallStats stats;
  int calls = 0;
};

class InProcessFederatedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/in_process_federated_" + std::to_string(::getpid());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    ASSERT_NO_FATAL_FAILURE(federated_.Create(dir_, /*clients=*/2));
    TimerQueueOptions timer_options;
    timer_options.clock = &clock_;
    timers_ = std::make_unique<TimerQueue>(timer_options);
  }
  void TearDown() override {
    devices_.clear();
    links_.clear();
    timers_.reset();
    federated_.tasks.reset();
    std::filesystem::remove_all(dir_);
  }

  // A device `id` on its own 4g link; `with_tasks` false: a server without federated tasks.
  InProcessTransport* Connect(const std::string& id, bool with_tasks = true) {
    LinkOptions link_options;
    link_options.profile = *NamedLinkProfile("4g");
    link_options.clock = &clock_;
    links_.push_back(std::make_unique<LinkEmulator>(link_options));
    InProcessTransportOptions options;
    options.backend = &repo_;
    options.link = links_.back().get();
    options.timers = timers_.get();
    options.per_message_overhead_bytes = kOverhead;
    options.device_id = id;
    options.federated = with_tasks ? federated_.tasks.get() : nullptr;
    Result<std::unique_ptr<InProcessTransport>> t = InProcessTransport::Create(std::move(options));
    EXPECT_TRUE(t.ok()) << t.status().ToString();
    if (!t.ok()) return nullptr;
    devices_.push_back(std::move(*t));
    return devices_.back().get();
  }

  // Advances virtual time in 1 ms steps until `f` is ready (at most 10 s of virtual time); before
  // each step, the tasks due run (however slow the machine), so the answer's virtual latency is
  // exact to the step.
  template <typename Answer>
  Outcome<Answer> Run(std::future<Outcome<Answer>>& f) {
    for (int step = 0; step < 10000; ++step) {
      const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
      while (!timers_->Idle() && std::chrono::steady_clock::now() < give_up) {
        std::this_thread::sleep_for(std::chrono::microseconds(50));
      }
      if (f.wait_for(std::chrono::microseconds(200)) == std::future_status::ready) return f.get();
      clock_.Advance(1 * kMs);
      timers_->Wake();
    }
    ADD_FAILURE() << "no callback within 10 s of virtual time";
    return {};
  }

  template <typename Answer>
  static std::function<void(Result<Answer>, const sdk::CallStats&)> Fulfil(
      std::shared_ptr<std::promise<Outcome<Answer>>> promise) {
    auto calls = std::make_shared<int>(0);
    return [promise, calls](Result<Answer> answer, const sdk::CallStats& stats) {
      promise->set_value({std::move(answer), stats, ++*calls});
    };
  }

  Outcome<sdk::JoinRoundAnswer> Join(InProcessTransport& device,
                                     const std::string& task = testing::kFederatedTask) {
    auto promise = std::make_shared<std::promise<Outcome<sdk::JoinRoundAnswer>>>();
    auto f = promise->get_future();
    sdk::JoinRoundCall call;
    call.task = task;
    device.JoinRound(std::move(call), Fulfil(promise));
    return Run(f);
  }

  Outcome<sdk::SubmitUpdateAnswer> Submit(InProcessTransport& device, sdk::SubmitUpdateCall call) {
    auto promise = std::make_shared<std::promise<Outcome<sdk::SubmitUpdateAnswer>>>();
    auto f = promise->get_future();
    device.SubmitUpdate(std::move(call), Fulfil(promise));
    return Run(f);
  }

  static sdk::SubmitUpdateCall Update(const std::string& client, const std::string& round) {
    sdk::SubmitUpdateCall call;
    call.task = testing::kFederatedTask;
    call.round_id = round;
    call.sealed_update = testing::FederatedServer::Sealed(client, std::stoll(round), 10, 0.01f);
    call.example_count = 10;
    return call;
  }

  int64_t NowMs() const { return clock_.WallMicros() / 1000; }

  // The link time of a call that moved `stats`' bytes, as the emulator models it.
  int64_t LinkNanos(const sdk::CallStats& stats) const {
    return links_[0]->TransferNanos(Direction::kUplink, stats.bytes_sent) +
           links_[0]->TransferNanos(Direction::kDownlink, stats.bytes_received);
  }

  std::string dir_;
  ManualClock clock_{0, kWallStartMicros};
  testing::FederatedServer federated_;
  server::ModelRepository repo_;  // no models: these devices only take part in rounds
  std::unique_ptr<TimerQueue> timers_;
  std::vector<std::unique_ptr<LinkEmulator>> links_;
  std::vector<std::unique_ptr<InProcessTransport>> devices_;
};

TEST_F(InProcessFederatedTest, ARoundOverTheLinkCountsItsBytesAndPublishes) {
  InProcessTransport* a = Connect("dev-a");
  InProcessTransport* b = Connect("dev-b");
  ASSERT_TRUE(a != nullptr && b != nullptr);
  hybridml::v1::JoinRoundRequest join_message;
  join_message.set_task(testing::kFederatedTask);
  hybridml::v1::JoinRoundResponse no_round;
  no_round.set_model_version("1");

  for (InProcessTransport* device : {a, b}) {
    Outcome<sdk::JoinRoundAnswer> joined = Join(*device);
    ASSERT_TRUE(joined.answer.ok()) << joined.answer.status().ToString();
    EXPECT_EQ(joined.calls, 1);
    EXPECT_EQ(joined.answer->round_id, "");
    EXPECT_EQ(joined.answer->model_version, 1);
    EXPECT_EQ(joined.stats.bytes_sent,
              static_cast<int64_t>(join_message.ByteSizeLong()) + kOverhead);
    EXPECT_EQ(joined.stats.bytes_received,
              static_cast<int64_t>(no_round.ByteSizeLong()) + kOverhead);
    const int64_t latency = joined.stats.end_nanos - joined.stats.start_nanos;
    EXPECT_GE(latency, LinkNanos(joined.stats));
    EXPECT_LE(latency, LinkNanos(joined.stats) + 2 * kMs);  // 1 ms steps
  }
  EXPECT_EQ(federated_.TaskStatus().waiting, 2);
  const int64_t opened_ms = NowMs();
  ASSERT_TRUE(federated_.tasks->Tick(opened_ms).ok());
  EXPECT_EQ(federated_.TaskStatus().selected, 2);

  for (const auto& [device, id] : {std::pair{a, "dev-a"}, std::pair{b, "dev-b"}}) {
    Outcome<sdk::JoinRoundAnswer> joined = Join(*device);
    ASSERT_TRUE(joined.answer.ok()) << joined.answer.status().ToString();
    EXPECT_EQ(joined.answer->round_id, "1");
    // The round's deadline is the tick's virtual wall time + the task's 60 s.
    EXPECT_EQ(joined.answer->deadline_ms, opened_ms + 60000);
    EXPECT_EQ(joined.answer->config.at("codec"), "int8");

    sdk::SubmitUpdateCall call = Update(id, "1");
    hybridml::v1::SubmitUpdateRequest message;
    message.set_task(call.task);
    message.set_round_id(call.round_id);
    message.set_sealed_update(call.sealed_update);
    message.set_example_count(call.example_count);
    Outcome<sdk::SubmitUpdateAnswer> submitted = Submit(*device, call);
    ASSERT_TRUE(submitted.answer.ok()) << submitted.answer.status().ToString();
    EXPECT_TRUE(submitted.answer->accepted);
    EXPECT_EQ(submitted.stats.bytes_sent, static_cast<int64_t>(message.ByteSizeLong()) + kOverhead);
    EXPECT_GT(submitted.stats.bytes_sent, 15770);  // an int8 code per parameter at least
    EXPECT_EQ(submitted.stats.bytes_received, 2 + kOverhead);  // accepted: field 1, varint 1
    const int64_t latency = submitted.stats.end_nanos - submitted.stats.start_nanos;
    EXPECT_GE(latency, LinkNanos(submitted.stats));
    EXPECT_LE(latency, LinkNanos(submitted.stats) + 2 * kMs);

    // The retry of an accepted update: the server's ALREADY_EXISTS, as its message travelled.
    Outcome<sdk::SubmitUpdateAnswer> again = Submit(*device, call);
    EXPECT_EQ(again.answer.status().code(), StatusCode::kAlreadyExists)
        << again.answer.status().ToString();
    EXPECT_EQ(again.stats.bytes_received,
              static_cast<int64_t>(again.answer.status().message().size()) + kOverhead);
  }
  EXPECT_EQ(federated_.TaskStatus().submitted, 2);
  ASSERT_TRUE(federated_.tasks->Tick(NowMs()).ok());
  EXPECT_EQ(federated_.TaskStatus().rounds_applied, 1);
  EXPECT_EQ(federated_.TaskStatus().model_version, 2);
  Outcome<sdk::JoinRoundAnswer> next = Join(*a);
  ASSERT_TRUE(next.answer.ok()) << next.answer.status().ToString();
  EXPECT_EQ(next.answer->model_version, 2);
}

TEST_F(InProcessFederatedTest, RoundsRunOnTheTransportsClock) {
  InProcessTransport* a = Connect("dev-a");
  InProcessTransport* b = Connect("dev-b");
  ASSERT_TRUE(a != nullptr && b != nullptr);
  ASSERT_TRUE(Join(*a).answer.ok());
  ASSERT_TRUE(Join(*b).answer.ok());
  ASSERT_TRUE(federated_.tasks->Tick(NowMs()).ok());
  Outcome<sdk::JoinRoundAnswer> joined = Join(*a);
  ASSERT_TRUE(joined.answer.ok()) << joined.answer.status().ToString();
  ASSERT_EQ(joined.answer->round_id, "1");
  // Virtual time passes the deadline (no real time does): the server, told the transport's
  // wall time, takes the update as late.
  clock_.Advance((joined.answer->deadline_ms - NowMs() + 1) * kMs);
  Outcome<sdk::SubmitUpdateAnswer> late = Submit(*a, Update("dev-a", "1"));
  ASSERT_TRUE(late.answer.ok()) << late.answer.status().ToString();
  EXPECT_FALSE(late.answer->accepted);
  EXPECT_EQ(late.stats.bytes_received, kOverhead);  // `accepted: false` encodes to nothing
}

TEST_F(InProcessFederatedTest, ErrorsUnimplementedAndCancel) {
  InProcessTransport* a = Connect("dev-a");
  ASSERT_TRUE(a != nullptr);
  // The server's codes come back unchanged.
  Outcome<sdk::JoinRoundAnswer> unknown = Join(*a, "no_such_task");
  EXPECT_EQ(unknown.answer.status().code(), StatusCode::kNotFound)
      << unknown.answer.status().ToString();
  EXPECT_GT(unknown.stats.bytes_received, kOverhead);
  sdk::SubmitUpdateCall garbage = Update("dev-a", "1");
  garbage.sealed_update = "not an update";
  EXPECT_EQ(Submit(*a, garbage).answer.status().code(), StatusCode::kInvalidArgument);
  // A malformed call costs no radio.
  sdk::SubmitUpdateCall zero = Update("dev-a", "1");
  zero.example_count = 0;
  Outcome<sdk::SubmitUpdateAnswer> refused = Submit(*a, zero);
  EXPECT_EQ(refused.answer.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(refused.stats.bytes_sent, 0);

  // Cancelled while the request is on the link: kCancelled at once, and the server never hears
  // of the device.
  auto promise = std::make_shared<std::promise<Outcome<sdk::JoinRoundAnswer>>>();
  auto f = promise->get_future();
  sdk::JoinRoundCall call;
  call.task = testing::kFederatedTask;
  const sdk::CallId id = a->JoinRound(std::move(call), Fulfil(promise));
  EXPECT_TRUE(a->Cancel(id));
  Outcome<sdk::JoinRoundAnswer> cancelled = Run(f);
  EXPECT_EQ(cancelled.answer.status().code(), StatusCode::kCancelled);
  EXPECT_EQ(cancelled.calls, 1);
  for (int step = 0; step < 200; ++step) {  // well past the request's arrival
    clock_.Advance(1 * kMs);
    timers_->Wake();
    std::this_thread::sleep_for(std::chrono::microseconds(100));  // the queue runs what is due
  }
  EXPECT_EQ(federated_.TaskStatus().waiting, 0);
  EXPECT_FALSE(a->Cancel(id));

  // A server without federated tasks.
  InProcessTransport* plain = Connect("dev-p", /*with_tasks=*/false);
  ASSERT_TRUE(plain != nullptr);
  EXPECT_EQ(Join(*plain).answer.status().code(), StatusCode::kUnimplemented);
  EXPECT_EQ(Submit(*plain, Update("dev-p", "1")).answer.status().code(),
            StatusCode::kUnimplemented);
}

}  // namespace
}  // namespace hml::sim

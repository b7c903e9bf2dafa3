// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The Router against an in-process cloud: a ModelRepository serving the test CNNs behind
// sim::InProcessTransport on a fast emulated link (2 ms RTT), all on the real clock. The local
// model is the 28x28 CNN ("cnn" in the cloud too); the cloud's "big" model is the two-branch CNN,
// whose outputs differ, so a test can tell which side answered.
#include "src/sdk/router.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "hml/runtime/session.h"
#include "src/server/serving/model_repository.h"
#include "src/sim/in_process_transport.h"
#include "src/sim/link.h"
#include "tests/testing/models.h"

namespace hml::sdk {
namespace {

constexpr int64_t kMs = 1'000'000;

// A local runner that always fails, standing for a local model that crashes at run time.
class FailingRunner final : public LocalRunner {
 public:
  Result<std::vector<NamedTensor>> Run(std::span<const NamedTensor>) override {
    ++runs;
    return InternalError("injected local failure");
  }
  int runs = 0;
};

std::vector<NamedTensor> Image(uint64_t seed) {
  std::vector<NamedTensor> in;
  in.push_back({"image", testing::RandomTensor({1, 1, 28, 28}, seed, 1.0f)});
  return in;
}

// The outputs of `graph` for `inputs`, computed by a plain Session.
std::vector<float> Expected(runtime::Graph graph, const std::vector<NamedTensor>& inputs) {
  Model model = *Model::FromGraph(std::move(graph));
  std::unique_ptr<Session> session = *Session::Create(model, {});
  std::vector<Tensor> in;
  in.push_back(*inputs[0].tensor.Clone());
  std::vector<Tensor> out = *session->Run(in);
  std::span<const float> v = out[0].values<float>();
  return {v.begin(), v.end()};
}

bool Near(const std::vector<NamedTensor>& outputs, const std::vector<float>& expected) {
  if (outputs.size() != 1) return false;
  std::span<const float> v = outputs[0].tensor.values<float>();
  if (v.size() != expected.size()) return false;
  for (size_t i = 0; i < v.size(); ++i) {
    if (std::abs(v[i] - expected[i]) > 1e-5f) return false;
  }
  return true;
}

class RouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    local_model_ = *Model::FromGraph(testing::Cnn28Graph());
    ASSERT_TRUE(repo_.LoadModel("cnn", 1, *local_model_).ok());
    ASSERT_TRUE(repo_.LoadModel("big", 1, *Model::FromGraph(testing::TwoBranchCnnGraph())).ok());
    Connect(sim::OutageMode::kFailFast);
    local_expected_ = Expected(testing::Cnn28Graph(), Image(7));
    cloud_expected_ = Expected(testing::TwoBranchCnnGraph(), Image(7));
  }

  // (Re)creates the link, the transport and the router; outages on the link meet `mode`.
  void Connect(sim::OutageMode mode) {
    router_.reset();
    transport_.reset();
    sim::LinkOptions link_options;
    link_options.outage_mode = mode;
    link_options.profile.name = "fast";
    link_options.profile.rtt_nanos = 2 * kMs;
    link_ = std::move(*sim::LinkEmulator::Create(std::move(link_options)));
    sim::InProcessTransportOptions transport_options;
    transport_options.backend = &repo_;
    transport_options.link = link_.get();
    transport_ = std::move(*sim::InProcessTransport::Create(transport_options));

    RouterOptions options;
    options.transport = transport_.get();
    options.resilience.retry.max_attempts = 3;
    options.resilience.retry.initial_backoff_nanos = 2 * kMs;
    options.resilience.retry.max_backoff_nanos = 5 * kMs;
    options.resilience.breaker.failure_threshold = 3;
    options.resilience.breaker.open_duration_nanos = 200 * kMs;
    Result<std::unique_ptr<Router>> router = Router::Create(options);
    ASSERT_TRUE(router.ok()) << router.status().ToString();
    router_ = std::move(*router);
  }

  ModelConfig Config(RoutePolicy policy, bool with_local, std::string cloud = "big") {
    ModelConfig config;
    config.policy = policy;
    if (with_local) config.local_model = local_model_;
    config.cloud_model = std::move(cloud);
    return config;
  }

  std::optional<Model> local_model_;
  server::ModelRepository repo_;
  std::unique_ptr<sim::LinkEmulator> link_;
  std::unique_ptr<sim::InProcessTransport> transport_;
  std::unique_ptr<Router> router_;
  std::vector<float> local_expected_;
  std::vector<float> cloud_expected_;
};

TEST_F(RouterTest, LocalOnlyRunsOnTheDeviceAndSendsNothing) {
  ASSERT_TRUE(router_->AddModel("m", Config(RoutePolicy::kLocalOnly, true, "")).ok());
  Result<RoutedResult> r = router_->Infer("m", Image(7));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->route.placement, Placement::kLocal);
  EXPECT_EQ(r->route.reason, "policy");
  EXPECT_EQ(r->route.attempts, 0);
  EXPECT_EQ(r->route.local_runs, 1);
  EXPECT_EQ(r->route.bytes_sent, 0);
  EXPECT_EQ(r->outputs[0].name, "probs");
  EXPECT_TRUE(Near(r->outputs, local_expected_));
  EXPECT_EQ(transport_->counters().calls, 0);
}

TEST_F(RouterTest, CloudOnlyCallsTheCloudModelAndCountsBytes) {
  ASSERT_TRUE(router_->AddModel("m", Config(RoutePolicy::kCloudOnly, false)).ok());
  Result<RoutedResult> r = router_->Infer("m", Image(7));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->route.placement, Placement::kCloud);
  EXPECT_EQ(r->route.attempts, 1);
  EXPECT_EQ(r->route.local_runs, 0);
  EXPECT_GT(r->route.bytes_sent, 28 * 28 * 4);  // the image's floats plus the message
  EXPECT_GT(r->route.bytes_received, 10 * 4);
  EXPECT_EQ(r->route.cloud_status, "OK");
  EXPECT_GE(r->route.latency_nanos, 2 * kMs);  // at least the RTT
  EXPECT_TRUE(Near(r->outputs, cloud_expected_));
  EXPECT_FALSE(Near(r->outputs, local_expected_));
}

TEST_F(RouterTest, CloudOnlyInAnOutageFailsUnavailableAfterRetries) {
  ASSERT_TRUE(router_->AddModel("m", Config(RoutePolicy::kCloudOnly, false)).ok());
  const int64_t now = RealClock()->NowNanos();
  link_->SetOutages({{now, now + 10'000 * kMs}});
  Result<RoutedResult> r = router_->Infer("m", Image(7), now + 1000 * kMs);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().ToString();
  EXPECT_NE(r.status().message().find("cloud call failed"), std::string::npos);
  // All three attempts were made (max_attempts = 3): each was refused by the down link.
  EXPECT_EQ(transport_->counters().calls, 3);
  EXPECT_EQ(link_->counters().refused, 3);
}

TEST_F(RouterTest, PreferLocalRunsLocallyAndGoesToTheCloudWithoutALocalModel) {
  ASSERT_TRUE(router_->AddModel("with", Config(RoutePolicy::kPreferLocal, true)).ok());
  ASSERT_TRUE(router_->AddModel("without", Config(RoutePolicy::kPreferLocal, false)).ok());
  Result<RoutedResult> r = router_->Infer("with", Image(7));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->route.placement, Placement::kLocal);
  EXPECT_TRUE(Near(r->outputs, local_expected_));
  r = router_->Infer("without", Image(7));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->route.placement, Placement::kCloud);
  EXPECT_EQ(r->route.reason, "no local model");
  EXPECT_TRUE(Near(r->outputs, cloud_expected_));
}

TEST_F(RouterTest, PreferLocalGoesToTheCloudWhenTheLocalModelFails) {
  auto failing = std::make_shared<FailingRunner>();
  ModelConfig config = Config(RoutePolicy::kPreferLocal, false);
  config.local_runner = failing;
  ASSERT_TRUE(router_->AddModel("m", std::move(config)).ok());
  Result<RoutedResult> r = router_->Infer("m", Image(7));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(failing->runs, 1);
  EXPECT_EQ(r->route.placement, Placement::kCloudAfterLocalFailure);
  EXPECT_NE(r->route.reason.find("injected local failure"), std::string::npos) << r->route.reason;
  EXPECT_EQ(r->route.local_runs, 1);
  EXPECT_EQ(r->route.attempts, 1);
  EXPECT_TRUE(Near(r->outputs, cloud_expected_));
}

TEST_F(RouterTest, ALocalModelThatCannotBeCompiledIsRecordedNotFatal) {
  ModelConfig config = Config(RoutePolicy::kPreferLocal, true);
  config.session_options.backend = "no-such-backend";
  ASSERT_TRUE(router_->AddModel("m", std::move(config)).ok());
  Result<RoutedResult> r = router_->Infer("m", Image(7));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->route.placement, Placement::kCloudAfterLocalFailure);
  EXPECT_NE(r->route.reason.find("cannot be compiled"), std::string::npos) << r->route.reason;
  EXPECT_EQ(r->route.local_runs, 0);

  // Local-only has nowhere else to go: the compile error is the answer.
  ModelConfig local_only = Config(RoutePolicy::kLocalOnly, true, "");
  local_only.session_options.backend = "no-such-backend";
  ASSERT_TRUE(router_->AddModel("l", std::move(local_only)).ok());
  r = router_->Infer("l", Image(7));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("cannot be compiled"), std::string::npos);
}

TEST_F(RouterTest, PreferCloudGoesToTheCloudUnlessTheDeadlineIsNear) {
  ASSERT_TRUE(router_->AddModel("m", Config(RoutePolicy::kPreferCloud, true)).ok());
  Result<RoutedResult> r = router_->Infer("m", Image(7));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->route.placement, Placement::kCloud);
  EXPECT_TRUE(Near(r->outputs, cloud_expected_));

  // The cloud is expected to take 500 ms; 100 ms are left: run locally without calling.
  ModelConfig slow = Config(RoutePolicy::kPreferCloud, true);
  slow.expected_cloud_latency_nanos = 500 * kMs;
  ASSERT_TRUE(router_->AddModel("slow", std::move(slow)).ok());
  const int64_t calls = transport_->counters().calls;
  r = router_->Infer("slow", Image(7), RealClock()->NowNanos() + 100 * kMs);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->route.placement, Placement::kLocal);
  EXPECT_EQ(r->route.reason, "deadline near");
  EXPECT_EQ(r->route.attempts, 0);
  EXPECT_EQ(transport_->counters().calls, calls);
  EXPECT_TRUE(Near(r->outputs, local_expected_));
}

// Prefer-cloud chose the local model (deadline near) but it failed: the cloud still answers,
// and the failed local model is not run a second time as a fallback.
TEST_F(RouterTest, PreferCloudTriesTheCloudWhenTheChosenLocalModelFails) {
  auto failing = std::make_shared<FailingRunner>();
  ModelConfig config = Config(RoutePolicy::kPreferCloud, false);
  config.local_runner = failing;
  config.expected_cloud_latency_nanos = 500 * kMs;
  ASSERT_TRUE(router_->AddModel("m", std::move(config)).ok());
  Result<RoutedResult> r = router_->Infer("m", Image(7), RealClock()->NowNanos() + 100 * kMs);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->route.placement, Placement::kCloudAfterLocalFailure);
  EXPECT_NE(r->route.reason.find("injected local failure"), std::string::npos) << r->route.reason;
  EXPECT_EQ(failing->runs, 1);
  EXPECT_EQ(r->route.local_runs, 1);
  EXPECT_TRUE(Near(r->outputs, cloud_expected_));
}

// The cloud goes down in the middle of a run of requests: every request is still answered by
// its deadline (locally), the breaker opens, and after the outage and the open time the cloud
// answers again.
TEST_F(RouterTest, PreferCloudSurvivesAnOutageMidRunAndReturnsToTheCloud) {
  ASSERT_TRUE(router_->AddModel("m", Config(RoutePolicy::kPreferCloud, true)).ok());
  constexpr int kRequests = 60;
  constexpr int kOutageAt = 10;
  int on_time = 0;
  int cloud = 0;
  int local_fallback = 0;
  int breaker_open_local = 0;
  std::vector<Placement> placements;
  int64_t max_latency = 0;
  for (int i = 0; i < kRequests; ++i) {
    const int64_t now = RealClock()->NowNanos();
    if (i == kOutageAt) link_->SetOutages({{now, now + 150 * kMs}});
    const int64_t deadline = now + 100 * kMs;
    Result<RoutedResult> r = router_->Infer("m", Image(static_cast<uint64_t>(i)), deadline);
    ASSERT_TRUE(r.ok()) << i << ": " << r.status().ToString();
    if (RealClock()->NowNanos() <= deadline) ++on_time;
    placements.push_back(r->route.placement);
    max_latency = std::max(max_latency, r->route.latency_nanos);
    if (r->route.placement == Placement::kCloud) ++cloud;
    if (r->route.placement == Placement::kLocalAfterCloudFailure) ++local_fallback;
    if (r->route.placement == Placement::kLocal && r->route.reason == "breaker open") {
      ++breaker_open_local;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::printf(
      "outage run: %d requests, %d on time, cloud %d, local after cloud failure %d, "
      "local with the breaker open %d, max latency %.1f ms\n",
      kRequests, on_time, cloud, local_fallback, breaker_open_local,
      static_cast<double>(max_latency) / kMs);
  EXPECT_EQ(on_time, kRequests);
  for (int i = 0; i < kOutageAt; ++i) EXPECT_EQ(placements[i], Placement::kCloud) << i;
  EXPECT_EQ(placements[kOutageAt], Placement::kLocalAfterCloudFailure);
  EXPECT_GE(local_fallback, 1);
  EXPECT_GE(breaker_open_local, 5);  // ~200 ms open at ~13 ms per request
  CircuitBreakerStats stats = router_->breaker()->stats();
  EXPECT_GE(stats.opened, 1);
  EXPECT_GE(stats.probes, 1);
  EXPECT_EQ(stats.state, BreakerState::kClosed);
  // The last 10 requests (> 500 ms after the outage began) went to the cloud again.
  for (int i = kRequests - 10; i < kRequests; ++i) {
    EXPECT_EQ(placements[i], Placement::kCloud) << i;
  }
  EXPECT_EQ(cloud + local_fallback + breaker_open_local, kRequests);
}

// A black-hole outage (the link looks up but nothing arrives): the cloud attempt hangs until
// the cloud call's own deadline (the request's minus the local reserve), and the local model
// still answers by the request's deadline.
TEST_F(RouterTest, PreferCloudAnswersLocallyByTheDeadlineWhenTheCloudHangs) {
  Connect(sim::OutageMode::kBlackHole);
  ASSERT_TRUE(router_->AddModel("m", Config(RoutePolicy::kPreferCloud, true)).ok());
  const int64_t now = RealClock()->NowNanos();
  link_->SetOutages({{now, now + 10'000 * kMs}});
  const int64_t deadline = now + 100 * kMs;
  Result<RoutedResult> r = router_->Infer("m", Image(7), deadline);
  const int64_t end = RealClock()->NowNanos();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->route.placement, Placement::kLocalAfterCloudFailure);
  EXPECT_NE(r->route.reason.find("DEADLINE_EXCEEDED"), std::string::npos) << r->route.reason;
  EXPECT_EQ(r->route.attempts, 1);
  EXPECT_GT(r->route.bytes_sent, 0);  // the request went onto the link and was lost
  EXPECT_EQ(r->route.bytes_received, 0);
  EXPECT_LE(end, deadline);
  EXPECT_GE(end - now, 70 * kMs);  // it waited for the cloud until deadline - 20 ms reserve
  EXPECT_TRUE(Near(r->outputs, local_expected_));
}

TEST_F(RouterTest, CascadeThresholdZeroNeverOffloadsAndAboveOneAlwaysDoes) {
  ModelConfig never = Config(RoutePolicy::kCascade, true);
  never.cascade_threshold = 0;
  ASSERT_TRUE(router_->AddModel("never", std::move(never)).ok());
  ModelConfig always = Config(RoutePolicy::kCascade, true);
  always.cascade_threshold = 1.01;
  ASSERT_TRUE(router_->AddModel("always", std::move(always)).ok());
  for (uint64_t seed : {7u, 8u, 9u}) {
    const std::vector<float> local = Expected(testing::Cnn28Graph(), Image(seed));
    const std::vector<float> remote = Expected(testing::TwoBranchCnnGraph(), Image(seed));
    Result<RoutedResult> r = router_->Infer("never", Image(seed));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->route.placement, Placement::kCascadeLocal);
    EXPECT_EQ(r->route.attempts, 0);
    EXPECT_GT(r->route.top1, 0.0);
    EXPECT_LE(r->route.top1, 1.0);
    EXPECT_TRUE(Near(r->outputs, local));

    r = router_->Infer("always", Image(seed));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->route.placement, Placement::kCascadeOffloaded);
    EXPECT_EQ(r->route.local_runs, 1);
    EXPECT_EQ(r->route.attempts, 1);
    EXPECT_NE(r->route.reason.find("< 1.010"), std::string::npos) << r->route.reason;
    EXPECT_TRUE(Near(r->outputs, remote));
  }
}

TEST_F(RouterTest, CascadeKeepsTheLocalAnswerWhenTheOffloadFails) {
  ModelConfig always = Config(RoutePolicy::kCascade, true);
  always.cascade_threshold = 1.01;
  ASSERT_TRUE(router_->AddModel("m", std::move(always)).ok());
  const int64_t now = RealClock()->NowNanos();
  link_->SetOutages({{now, now + 10'000 * kMs}});
  Result<RoutedResult> r = router_->Infer("m", Image(7), now + 200 * kMs);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->route.placement, Placement::kCascadeLocal);
  EXPECT_NE(r->route.reason.find("offload failed"), std::string::npos) << r->route.reason;
  EXPECT_TRUE(Near(r->outputs, local_expected_));
}

// Many threads share one Router: local runs of one model are serialized by its mutex, cloud calls
// run in parallel, and every request gets its own model's answer.
TEST_F(RouterTest, ConcurrentRequestsFromManyThreads) {
  ASSERT_TRUE(router_->AddModel("local", Config(RoutePolicy::kPreferLocal, true)).ok());
  ASSERT_TRUE(router_->AddModel("cloud", Config(RoutePolicy::kCloudOnly, false)).ok());
  constexpr int kThreads = 4;
  constexpr int kPerThread = 10;
  std::vector<int> good(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const bool local = (i + t) % 2 == 0;
        Result<RoutedResult> r = router_->Infer(local ? "local" : "cloud", Image(7));
        if (r.ok() && r->route.placement == (local ? Placement::kLocal : Placement::kCloud) &&
            Near(r->outputs, local ? local_expected_ : cloud_expected_)) {
          ++good[static_cast<size_t>(t)];
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(good[static_cast<size_t>(t)], kPerThread) << t;
}

TEST_F(RouterTest, RejectsConfigsThatDoNotFitThePolicyAndUnknownModels) {
  EXPECT_EQ(router_->AddModel("a", Config(RoutePolicy::kCloudOnly, true, "")).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(router_->AddModel("b", Config(RoutePolicy::kCascade, false)).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(router_->AddModel("c", Config(RoutePolicy::kLocalOnly, false, "")).code(),
            StatusCode::kInvalidArgument);
  ASSERT_TRUE(router_->AddModel("d", Config(RoutePolicy::kPreferLocal, true)).ok());
  EXPECT_EQ(router_->AddModel("d", Config(RoutePolicy::kPreferLocal, true)).code(),
            StatusCode::kAlreadyExists);
  EXPECT_EQ(router_->Infer("nope", Image(7)).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(Router::Create(RouterOptions{}).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace hml::sdk

// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The Router's split policy against an in-process cloud: a ModelRepository serving the 28x28 CNN
// ("cnn") behind sim::InProcessTransport on a fast emulated link (2 ms RTT), the same CNN as the
// local model. Every candidate (local, the input, each cut) must give the local model's answer up
// to the INT8 error of the cut; the planner must follow the link estimate the platform reports; a
// failed cloud call must be finished on the device.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hml/runtime/session.h"
#include "hml/sdk/platform.h"
#include "src/sdk/router.h"
#include "src/server/serving/model_repository.h"
#include "src/sim/in_process_transport.h"
#include "src/sim/link.h"
#include "tests/testing/models.h"

namespace hml::sdk {
namespace {

constexpr int64_t kMs = 1'000'000;

std::vector<NamedTensor> Image(uint64_t seed) {
  std::vector<NamedTensor> in;
  in.push_back({"image", testing::RandomTensor({1, 1, 28, 28}, seed, 1.0f)});
  return in;
}

std::vector<float> Expected(const Model& model, const std::vector<NamedTensor>& inputs) {
  std::unique_ptr<Session> session = *Session::Create(model, {});
  std::vector<Tensor> in;
  in.push_back(*inputs[0].tensor.Clone());
  std::vector<Tensor> out = *session->Run(in);
  std::span<const float> v = out[0].values<float>();
  return {v.begin(), v.end()};
}

double MaxDiff(const std::vector<NamedTensor>& outputs, const std::vector<float>& expected) {
  if (outputs.size() != 1 ||
      outputs[0].tensor.num_elements() != static_cast<int64_t>(expected.size())) {
    return 1e30;
  }
  std::span<const float> v = outputs[0].tensor.values<float>();
  double worst = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    worst = std::max(worst, std::fabs(static_cast<double>(v[i]) - expected[i]));
  }
  return worst;
}

class RouterSplitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = *Model::FromGraph(testing::Cnn28Graph());
    server::ModelRepositoryOptions repo_options;
    repo_options.max_split_tails_per_version = 8;
    repo_ = std::make_unique<server::ModelRepository>(repo_options);
    ASSERT_TRUE(repo_->LoadModel("cnn", 1, *model_).ok());
    sim::LinkOptions link_options;
    link_options.profile.name = "fast";
    link_options.profile.rtt_nanos = 2 * kMs;
    link_ = std::move(*sim::LinkEmulator::Create(std::move(link_options)));
    sim::InProcessTransportOptions transport_options;
    transport_options.backend = repo_.get();
    transport_options.link = link_.get();
    transport_ = std::move(*sim::InProcessTransport::Create(transport_options));
    RouterOptions options;
    options.transport = transport_.get();
    // Online, bandwidth and RTT unknown: the plan uses SplitConfig::default_link.
    platform_.set_network({NetworkType::kUnmetered, 0, 0});
    options.platform = &platform_;
    options.resilience.retry.max_attempts = 2;
    options.resilience.retry.initial_backoff_nanos = 1 * kMs;
    options.resilience.retry.max_backoff_nanos = 2 * kMs;
    router_ = std::move(*Router::Create(options));
    expected_ = Expected(*model_, Image(7));
  }

  // A split config with every single-tensor cut (no pruning).
  ModelConfig Config(std::string fixed = "") {
    ModelConfig config;
    config.policy = RoutePolicy::kSplit;
    config.local_model = model_;
    config.cloud_model = "cnn";
    config.split.candidates.prune_dominated = false;
    config.split.profile_runs = 1;
    config.split.fixed_candidate = std::move(fixed);
    return config;
  }

  std::optional<Model> model_;
  std::unique_ptr<server::ModelRepository> repo_;
  std::unique_ptr<sim::LinkEmulator> link_;
  std::unique_ptr<sim::InProcessTransport> transport_;
  StaticPlatform platform_;
  std::unique_ptr<Router> router_;
  std::vector<float> expected_;
};

TEST_F(RouterSplitTest, EveryFixedCandidateAnswersLikeTheLocalModel) {
  // The outputs are softmax probabilities; the INT8 error of a cut tensor (at most 1/510 of its
  // range per element) moves them by far less than this.
  constexpr double kInt8Tolerance = 0.02;
  const std::vector<std::string> labels = {"local",    "input",    "cut conv",  "cut relu",
                                           "cut pool", "cut flat", "cut logits"};
  for (const std::string& label : labels) {
    SCOPED_TRACE(label);
    ASSERT_TRUE(router_->AddModel(label, Config(label)).ok());
    Result<RoutedResult> r = router_->Infer(label, Image(7));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->route.split_cut, label);
    EXPECT_EQ(r->route.reason.rfind("fixed " + label + ": predicted", 0), 0u) << r->route.reason;
    EXPECT_GT(r->route.predicted_nanos, 0);
    const double diff = MaxDiff(r->outputs, expected_);
    if (label == "local") {
      EXPECT_EQ(r->route.placement, Placement::kLocal);
      EXPECT_EQ(r->route.bytes_sent, 0);
      EXPECT_LE(diff, 1e-6);
      continue;
    }
    EXPECT_EQ(r->route.placement, Placement::kSplit) << r->route.reason;
    EXPECT_EQ(r->route.attempts, 1);
    EXPECT_EQ(r->route.local_runs, label == "input" ? 0 : 1);
    EXPECT_EQ(r->outputs[0].name, "probs");
    EXPECT_LE(diff, kInt8Tolerance);
    EXPECT_GT(diff, 0.0);  // the cut really travelled as INT8
    std::printf("%-10s max |p - p_local| = %.5f, %lld bytes sent\n", label.c_str(), diff,
                static_cast<long long>(r->route.bytes_sent));
  }
  // INT8 on the wire: the pool cut (1568 floats) costs well under its FP32 size.
  Result<RoutedResult> r = router_->Infer("cut pool", Image(8));
  ASSERT_TRUE(r.ok());
  EXPECT_GT(r->route.bytes_sent, 1568);
  EXPECT_LT(r->route.bytes_sent, 1568 + 400);
}

TEST_F(RouterSplitTest, ThePlanFollowsTheLinkThePlatformReports) {
  ModelConfig config = Config();
  config.split.server_speedup = 1000;  // a cloud 1000x faster than this machine
  config.device_slowdown = 3000;       // so slow a device that the tiny CNN takes > 10 ms
  config.split.plan.tie_nanos = 0;
  ASSERT_TRUE(router_->AddModel("m", std::move(config)).ok());
  // A near-perfect network (1 Tbit/s, the emulated link's 2 ms): offloading everything is
  // fastest.
  platform_.set_network({NetworkType::kUnmetered, 1e12, 2.0});
  Result<RoutedResult> r = router_->Infer("m", Image(7));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->route.split_cut, "input") << r->route.reason;
  EXPECT_EQ(r->route.placement, Placement::kSplit);
  EXPECT_LE(MaxDiff(r->outputs, expected_), 0.02);
  // A poor network (1 kbit/s, 300 ms): the device runs everything.
  platform_.set_network({NetworkType::kMetered, 1e3, 300});
  r = router_->Infer("m", Image(7));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->route.split_cut, "local") << r->route.reason;
  EXPECT_EQ(r->route.placement, Placement::kLocal);
  EXPECT_EQ(r->route.reason.rfind("local: predicted", 0), 0u) << r->route.reason;
  EXPECT_EQ(r->route.attempts, 0);
  // Back to the fast network: the input again (one local run does not change that).
  platform_.set_network({NetworkType::kUnmetered, 1e12, 2.0});
  r = router_->Infer("m", Image(7));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->route.split_cut, "input") << r->route.reason;
  // Offline (with the fast estimate, which would send the input): local, saying why.
  platform_.set_network({NetworkType::kNone, 1e12, 2.0});
  r = router_->Infer("m", Image(7));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->route.placement, Placement::kLocal);
  EXPECT_EQ(r->route.reason.rfind("offline; local: predicted", 0), 0u) << r->route.reason;
}

// Planned requests that send the inputs teach the device profile nothing: every explore_every
// of them in a row, one runs locally to measure the device again.
TEST_F(RouterSplitTest, SendingTheInputsExploresTheDeviceNowAndThen) {
  ModelConfig config = Config();
  config.split.server_speedup = 1000;
  // So slow a device that every head costs more than the whole round trip of the input (~3 ms).
  config.device_slowdown = 3000;
  config.split.plan.tie_nanos = 0;
  config.split.explore_every = 2;
  ASSERT_TRUE(router_->AddModel("m", std::move(config)).ok());
  // The emulated link's real RTT, so that the measured server time stays small.
  platform_.set_network({NetworkType::kUnmetered, 1e12, 2.0});
  std::vector<std::string> cuts;
  for (int i = 0; i < 6; ++i) {
    Result<RoutedResult> r = router_->Infer("m", Image(7));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    cuts.push_back(r->route.split_cut);
    if (i == 2) {
      EXPECT_EQ(r->route.reason.rfind("explore (2 requests without a device run); local:", 0), 0u)
          << r->route.reason;
      EXPECT_EQ(r->route.placement, Placement::kLocal);
    }
  }
  EXPECT_EQ(cuts, (std::vector<std::string>{"input", "input", "local", "input", "input", "local"}));
}

TEST_F(RouterSplitTest, AFailedCloudCallIsFinishedOnTheDevice) {
  ASSERT_TRUE(router_->AddModel("m", Config("cut pool")).ok());
  const int64_t now = RealClock()->NowNanos();
  link_->SetOutages({{now, now + 10'000 * kMs}});
  Result<RoutedResult> r = router_->Infer("m", Image(7), now + 500 * kMs);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->route.placement, Placement::kLocalAfterCloudFailure);
  EXPECT_EQ(r->route.split_cut, "cut pool");
  EXPECT_NE(r->route.reason.find("cloud failed: UNAVAILABLE"), std::string::npos)
      << r->route.reason;
  EXPECT_EQ(r->route.attempts, 2);
  EXPECT_EQ(r->route.local_runs, 2);  // head and tail
  // The tail ran on the FP32 cut: the answer is the local model's.
  EXPECT_LE(MaxDiff(r->outputs, expected_), 1e-5);
  EXPECT_LE(RealClock()->NowNanos(), now + 500 * kMs);

  // The input candidate finishes with the whole local model.
  ASSERT_TRUE(router_->AddModel("in", Config("input")).ok());
  r = router_->Infer("in", Image(7), RealClock()->NowNanos() + 500 * kMs);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->route.placement, Placement::kLocalAfterCloudFailure);
  EXPECT_EQ(r->route.local_runs, 1);
  EXPECT_LE(MaxDiff(r->outputs, expected_), 1e-5);
}

TEST_F(RouterSplitTest, AddModelChecksTheSplitConfig) {
  ModelConfig no_model = Config();
  no_model.local_model.reset();
  EXPECT_EQ(router_->AddModel("a", std::move(no_model)).code(), StatusCode::kInvalidArgument);
  Status s = router_->AddModel("b", Config("cut nowhere"));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("local, input, cut conv"), std::string::npos) << s.ToString();
  ModelConfig slow = Config();
  slow.device_slowdown = 0.5;
  EXPECT_EQ(router_->AddModel("c", std::move(slow)).code(), StatusCode::kInvalidArgument);
  ModelConfig runs = Config();
  runs.split.profile_runs = 0;
  EXPECT_EQ(router_->AddModel("d", std::move(runs)).code(), StatusCode::kInvalidArgument);
}

// The slowdown emulation stretches the device's time, and the profile learns it.
TEST_F(RouterSplitTest, DeviceSlowdownStretchesLocalRuns) {
  ModelConfig fast = Config("local");
  ASSERT_TRUE(router_->AddModel("fast", std::move(fast)).ok());
  ModelConfig slow = Config("local");
  slow.device_slowdown = 50;
  ASSERT_TRUE(router_->AddModel("slow", std::move(slow)).ok());
  // The fastest of a few runs of each: a busy machine's preemptions stretch single runs of
  // either, never shorten the slow one's sleep.
  int64_t fast_ns = std::numeric_limits<int64_t>::max(), slow_ns = fast_ns;
  for (int i = 0; i < 5; ++i) {
    fast_ns = std::min(fast_ns, router_->Infer("fast", Image(7))->route.latency_nanos);
    slow_ns = std::min(slow_ns, router_->Infer("slow", Image(7))->route.latency_nanos);
  }
  EXPECT_GT(slow_ns, 10 * fast_ns) << fast_ns << " vs " << slow_ns;
  Result<RoutedResult> r = router_->Infer("slow", Image(7));
  ASSERT_TRUE(r.ok());
  EXPECT_GT(r->route.predicted_nanos, 10 * fast_ns);
}

}  // namespace
}  // namespace hml::sdk

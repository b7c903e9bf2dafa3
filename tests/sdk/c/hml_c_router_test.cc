// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The router through the C ABI against an in-process cloud: a ModelRepository serving the test
// CNNs behind sim::InProcessTransport on a fast emulated link (2 ms RTT), on the real clock, as
// tests/sdk/router_test.cc sets it up. The router is made with hml_router_create_with_transport
// (hml_c_internal.h); everything else goes through the public C functions. The local model is
// the 28x28 CNN, the cloud's "big" model the two-branch CNN, whose outputs differ, so a test can
// tell which side answered. Also: the no-transport router's fallbacks (prefer-cloud answers
// locally, cascade keeps the local answer).
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "hml/c/hml.h"
#include "hml/runtime/model.h"
#include "hml/runtime/session.h"
#include "src/sdk/c/hml_c_internal.h"
#include "src/server/serving/model_repository.h"
#include "src/sim/in_process_transport.h"
#include "src/sim/link.h"
#include "tests/testing/models.h"

namespace hml {
namespace {

constexpr int64_t kMs = 1'000'000;

// Owners for the C handles, so that a failed ASSERT does not leak.
struct Deleter {
  void operator()(hml_router* p) const { hml_router_free(p); }
  void operator()(hml_router_options* p) const { hml_router_options_free(p); }
  void operator()(hml_route_config* p) const { hml_route_config_free(p); }
  void operator()(hml_model* p) const { hml_model_free(p); }
  void operator()(hml_tensor_list* p) const { hml_tensor_list_free(p); }
  void operator()(hml_routed_result* p) const { hml_routed_result_free(p); }
  void operator()(hml_error* p) const { hml_error_free(p); }
};
template <typename T>
using Owned = std::unique_ptr<T, Deleter>;

// The outputs of `graph` for `image`, computed by a plain Session.
std::vector<float> Expected(runtime::Graph graph, const Tensor& image) {
  Model model = *Model::FromGraph(std::move(graph));
  std::unique_ptr<Session> session = *Session::Create(model, {});
  std::vector<Tensor> in;
  in.push_back(*image.Clone());
  std::vector<Tensor> out = *session->Run(in);
  std::span<const float> v = out[0].values<float>();
  return {v.begin(), v.end()};
}

// The first output of `result` as floats (empty when it is not float32).
std::vector<float> Output(const hml_routed_result* result) {
  hml_dtype dtype = HML_DTYPE_UNDEFINED;
  const void* data = nullptr;
  size_t bytes = 0;
  if (hml_routed_result_output(result, 0, &dtype, &data, &bytes, nullptr) != HML_OK ||
      dtype != HML_DTYPE_FLOAT32) {
    return {};
  }
  const float* f = static_cast<const float*>(data);
  return {f, f + bytes / sizeof(float)};
}

bool Near(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size() || a.empty()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::abs(a[i] - b[i]) > 1e-5f) return false;
  }
  return true;
}

class HmlCRouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(repo_.LoadModel("cnn", 1, *Model::FromGraph(testing::Cnn28Graph())).ok());
    ASSERT_TRUE(repo_.LoadModel("big", 1, *Model::FromGraph(testing::TwoBranchCnnGraph())).ok());
    sim::LinkOptions link_options;
    link_options.profile.name = "fast";
    link_options.profile.rtt_nanos = 2 * kMs;
    link_ = std::move(*sim::LinkEmulator::Create(std::move(link_options)));
    sim::InProcessTransportOptions transport_options;
    transport_options.backend = &repo_;
    transport_options.link = link_.get();
    transport_ = std::move(*sim::InProcessTransport::Create(transport_options));

    hml_router_options* options = nullptr;
    ASSERT_EQ(hml_router_options_create(&options, nullptr), HML_OK);
    Owned<hml_router_options> owned_options(options);
    ASSERT_EQ(hml_router_options_set_retry_max_attempts(options, 3, nullptr), HML_OK);
    ASSERT_EQ(hml_router_options_set_breaker_failure_threshold(options, 3, nullptr), HML_OK);
    ASSERT_EQ(hml_router_options_set_breaker_open_ms(options, 200, nullptr), HML_OK);
    hml_router* router = nullptr;
    hml_error* error = nullptr;
    ASSERT_EQ(hml_router_create_with_transport(options, transport_.get(), &router, &error), HML_OK)
        << hml_error_message(error);
    router_.reset(router);

    const std::string onnx = testing::Cnn28Onnx();
    hml_model* model = nullptr;
    ASSERT_EQ(hml_model_load_from_memory(onnx.data(), onnx.size(), &model, nullptr), HML_OK);
    local_model_.reset(model);

    image_ = testing::RandomTensor({1, 1, 28, 28}, 7, 1.0f);
    hml_tensor_list* list = nullptr;
    ASSERT_EQ(hml_tensor_list_create(&list, nullptr), HML_OK);
    inputs_.reset(list);
    const int64_t dims[4] = {1, 1, 28, 28};
    ASSERT_EQ(hml_tensor_list_add(list, "image", HML_DTYPE_FLOAT32, dims, 4, image_.raw_data(),
                                  image_.byte_size(), nullptr),
              HML_OK);
    local_expected_ = Expected(testing::Cnn28Graph(), image_);
    cloud_expected_ = Expected(testing::TwoBranchCnnGraph(), image_);
  }

  // A config of `policy`, with the local CNN when `with_local`, and the cloud model `cloud`.
  Owned<hml_route_config> Config(hml_route_policy policy, bool with_local,
                                 const char* cloud = "big") {
    hml_route_config* config = nullptr;
    EXPECT_EQ(hml_route_config_create(&config, nullptr), HML_OK);
    EXPECT_EQ(hml_route_config_set_policy(config, policy, nullptr), HML_OK);
    if (with_local) {
      EXPECT_EQ(hml_route_config_set_local_model(config, local_model_.get(), nullptr), HML_OK);
    }
    if (cloud != nullptr) {
      EXPECT_EQ(hml_route_config_set_cloud_model(config, cloud, 0, nullptr), HML_OK);
    }
    return Owned<hml_route_config>(config);
  }

  // Infers `name` on `router` (default: the router with the in-process cloud); the result, or
  // null with *status set.
  Owned<hml_routed_result> Infer(const char* name, hml_status* status, hml_router* router = nullptr,
                                 std::string* message = nullptr) {
    hml_routed_result* result = nullptr;
    hml_error* error = nullptr;
    *status = hml_router_infer(router == nullptr ? router_.get() : router, name, inputs_.get(),
                               2000, &result, &error);
    if (message != nullptr) *message = hml_error_message(error);
    hml_error_free(error);
    return Owned<hml_routed_result>(result);
  }

  server::ModelRepository repo_;
  std::unique_ptr<sim::LinkEmulator> link_;
  std::unique_ptr<sim::InProcessTransport> transport_;
  Owned<hml_router> router_;  // declared after transport_: freed first
  Owned<hml_model> local_model_;
  Owned<hml_tensor_list> inputs_;
  Tensor image_;
  std::vector<float> local_expected_;
  std::vector<float> cloud_expected_;
};

TEST_F(HmlCRouterTest, CreateWithTransportNamesANullTransport) {
  hml_router* router = nullptr;
  hml_error* error = nullptr;
  EXPECT_EQ(hml_router_create_with_transport(nullptr, nullptr, &router, &error),
            HML_INVALID_ARGUMENT);
  Owned<hml_error> owned(error);
  EXPECT_STREQ(hml_error_message(error), "hml_router_create_with_transport: transport is NULL");
  EXPECT_EQ(router, nullptr);
  EXPECT_EQ(hml_router_create_with_transport(nullptr, transport_.get(), nullptr, nullptr),
            HML_INVALID_ARGUMENT);
}

TEST_F(HmlCRouterTest, CloudOnlyAnswersFromTheCloudWithRouteInfo) {
  ASSERT_EQ(
      hml_router_add_model(router_.get(), "m", Config(HML_ROUTE_CLOUD_ONLY, false).get(), nullptr),
      HML_OK);
  hml_status status;
  Owned<hml_routed_result> r = Infer("m", &status);
  ASSERT_EQ(status, HML_OK);
  EXPECT_EQ(hml_routed_result_placement(r.get()), HML_PLACEMENT_CLOUD);
  EXPECT_STREQ(hml_placement_name(hml_routed_result_placement(r.get())), "cloud");
  EXPECT_STREQ(hml_routed_result_reason(r.get()), "policy");
  EXPECT_EQ(hml_routed_result_attempts(r.get()), 1);
  EXPECT_EQ(hml_routed_result_local_runs(r.get()), 0);
  EXPECT_GT(hml_routed_result_bytes_sent(r.get()), 28 * 28 * 4);  // the image plus the message
  EXPECT_GT(hml_routed_result_bytes_received(r.get()), 10 * 4);
  EXPECT_GE(hml_routed_result_latency_us(r.get()), 2000);  // at least the RTT
  EXPECT_STREQ(hml_routed_result_cloud_status(r.get()), "OK");
  EXPECT_EQ(hml_routed_result_cascade_top1(r.get()), -1.0);
  ASSERT_EQ(hml_routed_result_output_count(r.get()), 1u);
  int64_t dims[8];
  size_t rank = 0;
  ASSERT_EQ(hml_routed_result_output_shape(r.get(), 0, dims, 8, &rank, nullptr), HML_OK);
  EXPECT_EQ(rank, 2u);
  EXPECT_EQ(dims[0], 1);
  EXPECT_EQ(dims[1], 10);
  EXPECT_TRUE(Near(Output(r.get()), cloud_expected_));
  EXPECT_FALSE(Near(Output(r.get()), local_expected_));
  EXPECT_EQ(transport_->counters().calls, 1);
}

TEST_F(HmlCRouterTest, CascadeThresholdZeroKeepsLocalAndAboveOneOffloads) {
  Owned<hml_route_config> never = Config(HML_ROUTE_CASCADE, true);
  ASSERT_EQ(hml_route_config_set_cascade_threshold(never.get(), 0, nullptr), HML_OK);
  ASSERT_EQ(hml_router_add_model(router_.get(), "never", never.get(), nullptr), HML_OK);
  Owned<hml_route_config> always = Config(HML_ROUTE_CASCADE, true);
  ASSERT_EQ(hml_route_config_set_cascade_threshold(always.get(), 1.01, nullptr), HML_OK);
  ASSERT_EQ(hml_router_add_model(router_.get(), "always", always.get(), nullptr), HML_OK);
  // The configs were copied: freeing them (and the caller's model) changes nothing.
  never.reset();
  always.reset();
  local_model_.reset();

  hml_status status;
  Owned<hml_routed_result> r = Infer("never", &status);
  ASSERT_EQ(status, HML_OK);
  EXPECT_EQ(hml_routed_result_placement(r.get()), HML_PLACEMENT_CASCADE_LOCAL);
  EXPECT_EQ(hml_routed_result_attempts(r.get()), 0);
  EXPECT_EQ(hml_routed_result_local_runs(r.get()), 1);
  EXPECT_EQ(hml_routed_result_bytes_sent(r.get()), 0);
  EXPECT_GT(hml_routed_result_cascade_top1(r.get()), 0.0);
  EXPECT_LE(hml_routed_result_cascade_top1(r.get()), 1.0);
  EXPECT_TRUE(Near(Output(r.get()), local_expected_));
  const double top1 = hml_routed_result_cascade_top1(r.get());

  r = Infer("always", &status);
  ASSERT_EQ(status, HML_OK);
  EXPECT_EQ(hml_routed_result_placement(r.get()), HML_PLACEMENT_CASCADE_OFFLOADED);
  EXPECT_STREQ(hml_placement_name(hml_routed_result_placement(r.get())), "cascade-offloaded");
  EXPECT_EQ(hml_routed_result_local_runs(r.get()), 1);
  EXPECT_EQ(hml_routed_result_attempts(r.get()), 1);
  EXPECT_GT(hml_routed_result_bytes_sent(r.get()), 0);
  EXPECT_EQ(hml_routed_result_cascade_top1(r.get()), top1);  // the same local answer
  EXPECT_NE(std::string(hml_routed_result_reason(r.get())).find("< 1.010"), std::string::npos)
      << hml_routed_result_reason(r.get());
  EXPECT_STREQ(hml_routed_result_cloud_status(r.get()), "OK");
  EXPECT_TRUE(Near(Output(r.get()), cloud_expected_));
}

TEST_F(HmlCRouterTest, CloudErrorsComeThroughWithTheirCode) {
  // A cloud model the server does not have: NOT_FOUND from the server, through the C ABI.
  ASSERT_EQ(hml_router_add_model(router_.get(), "m",
                                 Config(HML_ROUTE_CLOUD_ONLY, false, "missing").get(), nullptr),
            HML_OK);
  hml_status status;
  std::string message;
  Owned<hml_routed_result> r = Infer("m", &status, nullptr, &message);
  EXPECT_EQ(status, HML_NOT_FOUND) << message;
  EXPECT_EQ(r, nullptr);
  EXPECT_NE(message.find("missing"), std::string::npos) << message;
}

// The options reach the router: max attempts 3 means three refused attempts in an outage.
TEST_F(HmlCRouterTest, RetryOptionReachesTheRouter) {
  ASSERT_EQ(
      hml_router_add_model(router_.get(), "m", Config(HML_ROUTE_CLOUD_ONLY, false).get(), nullptr),
      HML_OK);
  const int64_t now = RealClock()->NowNanos();
  link_->SetOutages({{now, now + 10'000 * kMs}});
  hml_status status;
  std::string message;
  Owned<hml_routed_result> r = Infer("m", &status, nullptr, &message);
  EXPECT_EQ(status, HML_UNAVAILABLE) << message;
  EXPECT_EQ(r, nullptr);
  EXPECT_EQ(transport_->counters().calls, 3);
  EXPECT_EQ(link_->counters().refused, 3);
}

// One router shared by several threads, each with its own tensor list and results: every
// request gets its own model's answer.
TEST_F(HmlCRouterTest, ConcurrentRequestsFromManyThreads) {
  ASSERT_EQ(hml_router_add_model(router_.get(), "local",
                                 Config(HML_ROUTE_LOCAL_ONLY, true, nullptr).get(), nullptr),
            HML_OK);
  ASSERT_EQ(hml_router_add_model(router_.get(), "cloud", Config(HML_ROUTE_CLOUD_ONLY, false).get(),
                                 nullptr),
            HML_OK);
  constexpr int kThreads = 4;
  constexpr int kRequests = 5;
  std::vector<int> good(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      hml_tensor_list* list = nullptr;
      if (hml_tensor_list_create(&list, nullptr) != HML_OK) return;
      Owned<hml_tensor_list> inputs(list);
      const int64_t dims[4] = {1, 1, 28, 28};
      if (hml_tensor_list_add(list, "image", HML_DTYPE_FLOAT32, dims, 4, image_.raw_data(),
                              image_.byte_size(), nullptr) != HML_OK) {
        return;
      }
      const bool cloud = t % 2 == 1;
      for (int i = 0; i < kRequests; ++i) {
        hml_routed_result* result = nullptr;
        if (hml_router_infer(router_.get(), cloud ? "cloud" : "local", list, 2000, &result,
                             nullptr) != HML_OK) {
          continue;
        }
        Owned<hml_routed_result> owned(result);
        const hml_placement expected = cloud ? HML_PLACEMENT_CLOUD : HML_PLACEMENT_LOCAL;
        if (hml_routed_result_placement(result) == expected &&
            Near(Output(result), cloud ? cloud_expected_ : local_expected_)) {
          ++good[static_cast<size_t>(t)];
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(good[static_cast<size_t>(t)], kRequests) << t;
  EXPECT_EQ(transport_->counters().calls, (kThreads / 2) * kRequests);
}

// Without a transport, the policies that fall back to the local model still answer.
TEST_F(HmlCRouterTest, WithoutATransportFallbacksAnswerLocally) {
  hml_router* router = nullptr;
  ASSERT_EQ(hml_router_create(nullptr, &router, nullptr), HML_OK);
  Owned<hml_router> owned(router);
  ASSERT_EQ(hml_router_add_model(router, "pc", Config(HML_ROUTE_PREFER_CLOUD, true).get(), nullptr),
            HML_OK);
  Owned<hml_route_config> cascade = Config(HML_ROUTE_CASCADE, true);
  ASSERT_EQ(hml_route_config_set_cascade_threshold(cascade.get(), 1.01, nullptr), HML_OK);
  ASSERT_EQ(hml_router_add_model(router, "cascade", cascade.get(), nullptr), HML_OK);
  ASSERT_EQ(
      hml_router_add_model(router, "pl", Config(HML_ROUTE_PREFER_LOCAL, false).get(), nullptr),
      HML_OK);

  hml_status status;
  Owned<hml_routed_result> r = Infer("pc", &status, router);
  ASSERT_EQ(status, HML_OK);
  EXPECT_EQ(hml_routed_result_placement(r.get()), HML_PLACEMENT_LOCAL_AFTER_CLOUD_FAILURE);
  EXPECT_NE(std::string(hml_routed_result_reason(r.get())).find("no transport configured"),
            std::string::npos)
      << hml_routed_result_reason(r.get());
  EXPECT_EQ(hml_routed_result_attempts(r.get()), 1);  // no retries without a transport
  EXPECT_EQ(hml_routed_result_bytes_sent(r.get()), 0);
  EXPECT_TRUE(Near(Output(r.get()), local_expected_));

  r = Infer("cascade", &status, router);
  ASSERT_EQ(status, HML_OK);
  EXPECT_EQ(hml_routed_result_placement(r.get()), HML_PLACEMENT_CASCADE_LOCAL);
  EXPECT_TRUE(Near(Output(r.get()), local_expected_));

  // Prefer-local without a local model needs the cloud: UNAVAILABLE, named, and fast (one
  // attempt, no backoff).
  std::string message;
  r = Infer("pl", &status, router, &message);
  EXPECT_EQ(status, HML_UNAVAILABLE);
  EXPECT_NE(message.find("no transport configured"), std::string::npos) << message;
  EXPECT_EQ(transport_->counters().calls, 0);  // the other router's transport was not used
}

}  // namespace
}  // namespace hml

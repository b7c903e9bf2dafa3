// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The energy estimate against hand computations, the profiles' figures and their validation,
// and MacsOf on a model of known size.
#include "src/sdk/telemetry/energy.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "tests/testing/graph_builder.h"

namespace hml::sdk {
namespace {

TEST(EnergyTest, EstimateEqualsHandComputation) {
  DeviceProfile profile;
  profile.compute_joules_per_mac = 2e-10;
  profile.radio_joules_per_byte_sent = 3e-6;
  profile.radio_joules_per_byte_received = 5e-7;
  RouteInfo route;
  route.placement = Placement::kLocalAfterCloudFailure;
  route.local_runs = 1;
  route.attempts = 2;
  route.bytes_sent = 1000;
  route.bytes_received = 4000;
  const EnergyEstimate e = EstimateEnergy(profile, route, 5'000'000);
  // 1 run x 5e6 MACs x 2e-10 J = 1e-3 J; 1000 B x 3e-6 + 4000 B x 5e-7 = 3e-3 + 2e-3 = 5e-3 J.
  EXPECT_DOUBLE_EQ(e.compute_joules, 1e-3);
  EXPECT_DOUBLE_EQ(e.radio_joules, 5e-3);
  EXPECT_DOUBLE_EQ(e.total_joules(), 6e-3);
}

TEST(EnergyTest, DefaultsAreTheLteFiguresOfTheDocumentedSources) {
  const DeviceProfile lte = LteProfile();
  EXPECT_DOUBLE_EQ(lte.compute_joules_per_mac, 1e-10);
  // Huang et al. 2012: 438.39 mW/Mbps up, 51.97 mW/Mbps down, i.e. nJ per bit, x 8 per byte.
  EXPECT_NEAR(lte.radio_joules_per_byte_sent, 438.39e-9 * 8, 1e-9);
  EXPECT_NEAR(lte.radio_joules_per_byte_received, 51.97e-9 * 8, 1e-9);
  EXPECT_EQ(lte.radio_tail_joules_per_call, 0);
  const DeviceProfile wifi = WifiProfile();
  EXPECT_NEAR(wifi.radio_joules_per_byte_sent, 283.17e-9 * 8, 1e-9);
  EXPECT_NEAR(wifi.radio_joules_per_byte_received, 137.01e-9 * 8, 1e-9);
  EXPECT_TRUE(lte.Validate().ok());
  EXPECT_TRUE(wifi.Validate().ok());
}

TEST(EnergyTest, LocalOnlyRequestHasNoRadioEnergyAndNoTail) {
  DeviceProfile profile;
  profile.radio_tail_joules_per_call = 12.3;
  RouteInfo route;
  route.local_runs = 1;
  const EnergyEstimate e = EstimateEnergy(profile, route, 1'000'000);
  EXPECT_DOUBLE_EQ(e.compute_joules, 1e-4);
  EXPECT_EQ(e.radio_joules, 0);
}

TEST(EnergyTest, TailIsChargedOncePerRequestThatMovedBytes) {
  DeviceProfile profile;
  profile.radio_joules_per_byte_sent = 1e-6;
  profile.radio_joules_per_byte_received = 0;
  profile.radio_tail_joules_per_call = 2.0;
  RouteInfo route;
  route.placement = Placement::kCloud;
  route.attempts = 3;  // retries share the request's one tail
  route.bytes_sent = 500;
  const EnergyEstimate e = EstimateEnergy(profile, route, 1'000'000);
  EXPECT_EQ(e.compute_joules, 0);  // no local run
  EXPECT_DOUBLE_EQ(e.radio_joules, 2.0 + 5e-4);
}

TEST(EnergyTest, NegativeInputsCountAsZero) {
  RouteInfo route;
  route.local_runs = -1;
  route.bytes_sent = -5;
  route.bytes_received = -5;
  const EnergyEstimate e = EstimateEnergy(DeviceProfile{}, route, -100);
  EXPECT_EQ(e.total_joules(), 0);
}

TEST(EnergyTest, ValidateNamesTheBadField) {
  DeviceProfile profile;
  profile.radio_joules_per_byte_received = -1;
  Status s = profile.Validate();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("radio_joules_per_byte_received"), std::string_view::npos)
      << s.ToString();
  profile = DeviceProfile{};
  profile.compute_joules_per_mac = std::numeric_limits<double>::quiet_NaN();
  s = profile.Validate();
  EXPECT_NE(s.message().find("compute_joules_per_mac"), std::string_view::npos) << s.ToString();
}

TEST(EnergyTest, MacsOfCountsAMultiplyAddOnce) {
  // x [2,4] x W [4,3]: 2 x 3 outputs of 4 multiply-adds each = 24 MACs.
  std::vector<float> w(12, 0.5f);
  auto weight = Tensor::FromVector<float>({4, 3}, w);
  ASSERT_TRUE(weight.ok()) << weight.status().ToString();
  auto model = Model::FromGraph(testing::GraphBuilder()
                                    .Input("x", DType::kFloat32, {2, 4})
                                    .Constant("w", std::move(*weight))
                                    .Node("MatMul", {"x", "w"}, {"y"})
                                    .Output("y")
                                    .Build());
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  Result<int64_t> macs = MacsOf(*model);
  ASSERT_TRUE(macs.ok()) << macs.status().ToString();
  EXPECT_EQ(*macs, 24);
}

}  // namespace
}  // namespace hml::sdk

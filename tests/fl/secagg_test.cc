#include "src/fl/secagg.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace hml::fl {
namespace {

std::vector<std::vector<uint32_t>> RandomInputs(int n, size_t len, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::vector<uint32_t>> inputs(n, std::vector<uint32_t>(len));
  for (auto& v : inputs) {
    for (auto& x : v) x = rng();
  }
  return inputs;
}

std::vector<uint32_t> PlainSum(const std::vector<std::vector<uint32_t>>& inputs,
                               const std::vector<int>& excluded) {
  std::vector<uint32_t> sum(inputs[0].size(), 0);
  for (size_t i = 0; i < inputs.size(); ++i) {
    const int id = static_cast<int>(i) + 1;
    if (std::find(excluded.begin(), excluded.end(), id) != excluded.end()) continue;
    for (size_t k = 0; k < sum.size(); ++k) sum[k] += inputs[i][k];
  }
  return sum;
}

SecAggConfig Config(int n, int t, size_t len) {
  SecAggConfig c;
  c.num_clients = n;
  c.threshold = t;
  c.vector_length = len;
  return c;
}

TEST(SecAggTest, ExactSumWithoutDropouts) {
  const auto inputs = RandomInputs(10, 257, 1);
  auto sum = RunSecAggRound(Config(10, 7, 257), inputs, {}, {});
  ASSERT_TRUE(sum.ok()) << sum.status().ToString();
  EXPECT_EQ(*sum, PlainSum(inputs, {}));
}

TEST(SecAggTest, ExactSumWithDropoutsUpToNMinusT) {
  const auto inputs = RandomInputs(10, 100, 2);
  for (const std::vector<int>& dropped :
       {std::vector<int>{4}, std::vector<int>{1, 10}, std::vector<int>{2, 5, 9}}) {
    auto sum = RunSecAggRound(Config(10, 7, 100), inputs, {}, dropped);
    ASSERT_TRUE(sum.ok()) << sum.status().ToString();
    EXPECT_EQ(*sum, PlainSum(inputs, dropped)) << dropped.size() << " dropped";
  }
}

TEST(SecAggTest, ExactSumWithDropoutsBeforeAndAfterSharing) {
  const auto inputs = RandomInputs(10, 50, 3);
  const std::vector<int> early = {3};
  const std::vector<int> late = {6, 7};
  auto sum = RunSecAggRound(Config(10, 7, 50), inputs, early, late);
  ASSERT_TRUE(sum.ok()) << sum.status().ToString();
  EXPECT_EQ(*sum, PlainSum(inputs, {3, 6, 7}));
}

TEST(SecAggTest, AbortsBelowThreshold) {
  const auto inputs = RandomInputs(10, 20, 4);
  const std::vector<int> four = {1, 2, 3, 4};
  auto after = RunSecAggRound(Config(10, 7, 20), inputs, {}, four);
  EXPECT_EQ(after.status().code(), StatusCode::kAborted);
  EXPECT_NE(after.status().message().find("fewer than the threshold 7"), std::string::npos)
      << after.status().ToString();
  auto before = RunSecAggRound(Config(10, 7, 20), inputs, four, {});
  EXPECT_EQ(before.status().code(), StatusCode::kAborted);
}

TEST(SecAggTest, AbortedServerRevealsNoShares) {
  // 4 of 10 drop after sharing: the server aborts before asking anyone for shares, and a client
  // asked to unmask with too few survivors refuses too.
  const SecAggConfig config = Config(10, 7, 8);
  auto server = SecAggServer::Create(config);
  ASSERT_TRUE(server.ok());
  std::vector<SecAggClient> clients;
  for (int id = 1; id <= 10; ++id) {
    auto c = SecAggClient::Create(config, id);
    ASSERT_TRUE(c.ok());
    clients.push_back(std::move(*c));
    ASSERT_TRUE(server->ReceivePublicKey(id, clients.back().public_keys()).ok());
  }
  auto keys = server->PublicKeys();
  ASSERT_TRUE(keys.ok());
  for (auto& c : clients) {
    auto m = c.ShareKeys(*keys);
    ASSERT_TRUE(m.ok());
    ASSERT_TRUE(server->ReceiveShares(c.id(), *m).ok());
  }
  std::vector<uint32_t> x(8, 5);
  for (int id = 1; id <= 6; ++id) {
    auto received = server->SharesFor(id);
    ASSERT_TRUE(received.ok());
    auto masked = clients[id - 1].MaskInput(x, *received);
    ASSERT_TRUE(masked.ok());
    ASSERT_TRUE(server->ReceiveMaskedInput(id, *masked).ok());
  }
  EXPECT_EQ(server->UnmaskRequest().status().code(), StatusCode::kAborted);
  SecAggUnmaskRequest forged{{1, 2, 3, 4, 5, 6}, {7, 8, 9, 10}};
  EXPECT_EQ(clients[0].Unmask(forged).status().code(), StatusCode::kAborted);
}

TEST(SecAggTest, ServerRejectsLateMaskedInputAfterUnmaskRequest) {
  // Once a client is declared dropped its mask key gets reconstructed; a masked input arriving
  // after that must not join the sum (its self mask would stay in it, and the round's sets are
  // fixed).
  const SecAggConfig config = Config(3, 2, 4);
  auto server = SecAggServer::Create(config);
  ASSERT_TRUE(server.ok());
  std::vector<SecAggClient> clients;
  for (int id = 1; id <= 3; ++id) {
    clients.push_back(std::move(*SecAggClient::Create(config, id)));
    ASSERT_TRUE(server->ReceivePublicKey(id, clients.back().public_keys()).ok());
  }
  auto keys = server->PublicKeys();
  ASSERT_TRUE(keys.ok());
  for (auto& c : clients) {
    auto m = c.ShareKeys(*keys);
    ASSERT_TRUE(m.ok());
    ASSERT_TRUE(server->ReceiveShares(c.id(), *m).ok());
  }
  std::vector<std::vector<uint32_t>> masked(4);
  const std::vector<uint32_t> x = {1, 2, 3, 4};
  for (int id = 1; id <= 3; ++id) {
    auto received = server->SharesFor(id);
    ASSERT_TRUE(received.ok());
    auto y = clients[id - 1].MaskInput(x, *received);
    ASSERT_TRUE(y.ok());
    masked[id] = *y;
  }
  ASSERT_TRUE(server->ReceiveMaskedInput(1, masked[1]).ok());
  ASSERT_TRUE(server->ReceiveMaskedInput(2, masked[2]).ok());
  auto request = server->UnmaskRequest();
  ASSERT_TRUE(request.ok());
  EXPECT_EQ(request->dropped, std::vector<int>{3});
  EXPECT_EQ(server->ReceiveMaskedInput(3, masked[3]).code(), StatusCode::kFailedPrecondition);
  for (int id : request->survivors) {
    auto response = clients[id - 1].Unmask(*request);
    ASSERT_TRUE(response.ok());
    ASSERT_TRUE(server->ReceiveUnmaskResponse(*response).ok());
  }
  auto sum = server->Finish();
  ASSERT_TRUE(sum.ok()) << sum.status().ToString();
  EXPECT_EQ(*sum, (std::vector<uint32_t>{2, 4, 6, 8}));
}

TEST(SecAggTest, ClientRefusesToRevealBothSharesOfOneClient) {
  const SecAggConfig config = Config(3, 2, 4);
  std::vector<SecAggClient> clients;
  std::map<int, SecAggPublicKeys> keys;
  for (int id = 1; id <= 3; ++id) {
    clients.push_back(std::move(*SecAggClient::Create(config, id)));
    keys[id] = clients.back().public_keys();
  }
  std::vector<std::vector<SecAggShareMessage>> inbox(4);
  for (auto& c : clients) {
    auto messages = c.ShareKeys(keys);
    ASSERT_TRUE(messages.ok());
    for (auto& m : *messages) inbox[m.to].push_back(m);
  }
  std::vector<uint32_t> x(4, 1);
  ASSERT_TRUE(clients[0].MaskInput(x, inbox[1]).ok());
  SecAggUnmaskRequest bad{{1, 2, 3}, {2}};
  EXPECT_EQ(clients[0].Unmask(bad).status().code(), StatusCode::kInvalidArgument);
}

TEST(SecAggTest, MaskedInputLooksUniform) {
  // The server only ever receives y = x + masks: with x = 0 everywhere, y must differ from x in
  // (nearly) every coordinate and its values must spread over the whole of Z_{2^32}.
  const SecAggConfig config = Config(3, 2, 4096);
  std::vector<SecAggClient> clients;
  std::map<int, SecAggPublicKeys> keys;
  for (int id = 1; id <= 3; ++id) {
    clients.push_back(std::move(*SecAggClient::Create(config, id)));
    keys[id] = clients.back().public_keys();
  }
  std::vector<std::vector<SecAggShareMessage>> inbox(4);
  for (auto& c : clients) {
    auto messages = c.ShareKeys(keys);
    ASSERT_TRUE(messages.ok());
    for (auto& m : *messages) inbox[m.to].push_back(m);
  }
  std::vector<uint32_t> x(4096, 0);
  auto y = clients[1].MaskInput(x, inbox[2]);
  ASSERT_TRUE(y.ok());
  int equal = 0;
  int high_bit = 0;
  for (size_t k = 0; k < x.size(); ++k) {
    equal += (*y)[k] == x[k];
    high_bit += ((*y)[k] >> 31) & 1;
  }
  EXPECT_LE(equal, 2);
  // A uniform top bit: mean 2048, standard deviation 32; allow 6 sigma.
  EXPECT_NEAR(high_bit, 2048, 192);
}

TEST(SecAggTest, FixedPointSumOfFloats) {
  FixedPointOptions fp;
  ASSERT_TRUE(fp.Validate(10).ok());
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  const int n = 10;
  const size_t len = 64;
  std::vector<std::vector<uint32_t>> encoded;
  std::vector<double> expected(len, 0.0);
  for (int i = 0; i < n; ++i) {
    std::vector<float> v(len);
    for (size_t k = 0; k < len; ++k) {
      v[k] = dist(rng);
      expected[k] += v[k];
    }
    auto e = EncodeFixedPoint(v, fp);
    ASSERT_TRUE(e.ok());
    encoded.push_back(std::move(*e));
  }
  auto sum = RunSecAggRound(Config(n, 7, len), encoded, {}, {});
  ASSERT_TRUE(sum.ok()) << sum.status().ToString();
  const std::vector<float> decoded = DecodeFixedPoint(*sum, fp);
  for (size_t k = 0; k < len; ++k) {
    EXPECT_NEAR(decoded[k], expected[k], n / (2.0 * fp.scale) + 1e-6) << k;
  }
}

TEST(SecAggTest, FixedPointRejectsOverflowAndBadValues) {
  FixedPointOptions fp;  // 2^16 scale, |v| <= 1: 32767 clients fit, 32768 do not
  EXPECT_TRUE(fp.Validate(32767).ok());
  EXPECT_EQ(fp.Validate(32768).code(), StatusCode::kInvalidArgument);
  const std::vector<float> too_big = {0.5f, 1.5f};
  EXPECT_EQ(EncodeFixedPoint(too_big, fp).status().code(), StatusCode::kInvalidArgument);
  const std::vector<float> nan = {std::nanf("")};
  EXPECT_EQ(EncodeFixedPoint(nan, fp).status().code(), StatusCode::kInvalidArgument);
}

TEST(SecAggTest, ConfigValidation) {
  EXPECT_EQ(Config(10, 5, 4).Validate().code(), StatusCode::kInvalidArgument);  // t <= n/2
  EXPECT_EQ(Config(10, 11, 4).Validate().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Config(10, 7, 0).Validate().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Config(10, 6, 4).Validate().ok());
}

}  // namespace
}  // namespace hml::fl

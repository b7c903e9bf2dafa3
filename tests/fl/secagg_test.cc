#include "src/fl/secagg.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <random>
#include <string>
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

// n clients with their keys exchanged and round 1 done; the relayed messages are in inbox[to].
struct SharedRound {
  std::vector<SecAggClient> clients;  // clients[id - 1]
  std::map<int, SecAggPublicKeys> keys;
  std::vector<std::vector<SecAggShareMessage>> inbox;
};

SharedRound ShareAmong(const SecAggConfig& config) {
  SharedRound round;
  round.inbox.resize(config.num_clients + 1);
  for (int id = 1; id <= config.num_clients; ++id) {
    round.clients.push_back(std::move(*SecAggClient::Create(config, id)));
    round.keys[id] = round.clients.back().public_keys();
  }
  for (auto& c : round.clients) {
    auto messages = c.ShareKeys(round.keys);
    EXPECT_TRUE(messages.ok()) << messages.status().ToString();
    if (!messages.ok()) continue;
    for (auto& m : *messages) round.inbox[m.to].push_back(m);
  }
  return round;
}

// The same through a server: every client's keys received and published, every client's shares
// received (the server then holds round 1's messages; SharesFor hands them out).
struct ServerRound {
  std::optional<SecAggServer> server;
  std::vector<SecAggClient> clients;  // clients[id - 1]
};

ServerRound ShareThroughServer(const SecAggConfig& config) {
  ServerRound round;
  auto server = SecAggServer::Create(config);
  EXPECT_TRUE(server.ok()) << server.status().ToString();
  if (!server.ok()) return round;
  round.server.emplace(std::move(*server));
  for (int id = 1; id <= config.num_clients; ++id) {
    round.clients.push_back(std::move(*SecAggClient::Create(config, id)));
    EXPECT_TRUE(round.server->ReceivePublicKey(id, round.clients.back().public_keys()).ok());
  }
  auto keys = round.server->PublicKeys();
  EXPECT_TRUE(keys.ok()) << keys.status().ToString();
  if (!keys.ok()) return round;
  for (auto& c : round.clients) {
    auto m = c.ShareKeys(*keys);
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    if (m.ok()) {
      EXPECT_TRUE(round.server->ReceiveShares(c.id(), *m).ok());
    }
  }
  return round;
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
  ServerRound round = ShareThroughServer(Config(10, 7, 8));
  ASSERT_FALSE(HasFailure());
  auto& server = round.server;
  auto& clients = round.clients;
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
  ServerRound round = ShareThroughServer(Config(3, 2, 4));
  ASSERT_FALSE(HasFailure());
  auto& server = round.server;
  auto& clients = round.clients;
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
  SharedRound round = ShareAmong(Config(3, 2, 4));
  ASSERT_FALSE(HasFailure());
  auto& clients = round.clients;
  auto& inbox = round.inbox;
  std::vector<uint32_t> x(4, 1);
  ASSERT_TRUE(clients[0].MaskInput(x, inbox[1]).ok());
  SecAggUnmaskRequest bad{{1, 2, 3}, {2}};
  EXPECT_EQ(clients[0].Unmask(bad).status().code(), StatusCode::kInvalidArgument);
}

bool HasSubstring(const std::vector<uint8_t>& haystack, const std::vector<uint8_t>& needle) {
  return std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end()) !=
         haystack.end();
}

std::vector<uint8_t> LittleEndian(uint64_t v) {
  std::vector<uint8_t> out(8);
  for (int b = 0; b < 8; ++b) out[b] = static_cast<uint8_t>(v >> (8 * b));
  return out;
}

TEST(SecAggTest, ClientsAdvertiseTwoDistinctKeys) {
  const SecAggConfig config = Config(3, 2, 4);
  auto a = SecAggClient::Create(config, 1);
  auto b = SecAggClient::Create(config, 2);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->public_keys().encryption, a->public_keys().masking);
  EXPECT_NE(a->public_keys().encryption, b->public_keys().encryption);
  EXPECT_NE(a->public_keys().masking, b->public_keys().masking);
}

TEST(SecAggTest, RelayedSharesAreSealed) {
  // Client 3 drops after sharing, so the unmask responses reveal shares of both kinds: of the
  // survivors' self-mask seeds and of client 3's masking key. None of their field elements may
  // appear in any message the server relayed in round 1.
  ServerRound round = ShareThroughServer(Config(3, 2, 16));
  ASSERT_FALSE(HasFailure());
  auto& server = round.server;
  auto& clients = round.clients;
  std::vector<SecAggShareMessage> relayed;
  const std::vector<uint32_t> x(16, 7);
  for (int id = 1; id <= 3; ++id) {
    auto received = server->SharesFor(id);
    ASSERT_TRUE(received.ok());
    relayed.insert(relayed.end(), received->begin(), received->end());
    auto y = clients[id - 1].MaskInput(x, *received);
    ASSERT_TRUE(y.ok()) << y.status().ToString();
    if (id != 3) {
      ASSERT_TRUE(server->ReceiveMaskedInput(id, *y).ok());
    }
  }
  ASSERT_EQ(relayed.size(), 9u);
  auto request = server->UnmaskRequest();
  ASSERT_TRUE(request.ok());
  ASSERT_EQ(request->dropped, std::vector<int>{3});
  std::vector<std::vector<uint8_t>> revealed;  // every field element of every revealed share
  for (int id : request->survivors) {
    auto response = clients[id - 1].Unmask(*request);
    ASSERT_TRUE(response.ok());
    for (const auto* shares : {&response->self_seed_shares, &response->secret_key_shares}) {
      for (const auto& [owner, share] : *shares) {
        for (uint64_t y : share.y) revealed.push_back(LittleEndian(y));
      }
    }
    ASSERT_TRUE(server->ReceiveUnmaskResponse(*response).ok());
  }
  ASSERT_EQ(revealed.size(), 2u * 3u * kSecAggShareChunks);  // 2 responders, 3 shares each
  for (const SecAggShareMessage& m : relayed) {
    EXPECT_EQ(m.ciphertext.size(), 24u + 16u + kSecAggSharesPlaintextBytes);
    for (const std::vector<uint8_t>& element : revealed) {
      EXPECT_FALSE(HasSubstring(m.ciphertext, element))
          << "a share element appears in the clear in the message " << m.from << " -> " << m.to;
    }
  }
  auto sum = server->Finish();
  ASSERT_TRUE(sum.ok()) << sum.status().ToString();
  EXPECT_EQ(*sum, std::vector<uint32_t>(16, 14));
}

TEST(SecAggTest, SealingTheSameSharesTwiceGivesDifferentCiphertexts) {
  auto peer = SecAggClient::Create(Config(3, 2, 4), 2);
  ASSERT_TRUE(peer.ok());
  SecAggKey own_secret;
  for (size_t k = 0; k < own_secret.size(); ++k) own_secret[k] = static_cast<uint8_t>(3 * k + 1);
  auto box_key = SecAggBoxKey(own_secret, peer->public_keys().encryption);
  ASSERT_TRUE(box_key.ok()) << box_key.status().ToString();
  SecAggShares shares;
  shares.from = 1;
  shares.to = 2;
  shares.self_seed_share = {2, {11, 12, 13, 14, 15}};
  shares.secret_key_share = {2, {21, 22, 23, 24, kShamirPrime - 1}};
  auto first = SealSecAggShares(*box_key, shares);
  auto second = SealSecAggShares(*box_key, shares);
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_NE(*first, *second);
  EXPECT_FALSE(std::equal(first->begin(), first->begin() + 24, second->begin()))
      << "the nonce must be fresh";
  for (const auto* sealed : {&*first, &*second}) {
    auto opened = OpenSecAggShares(*box_key, SecAggShareMessage{1, 2, *sealed});
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    EXPECT_EQ(opened->from, 1);
    EXPECT_EQ(opened->to, 2);
    EXPECT_EQ(opened->self_seed_share.x, 2u);
    EXPECT_EQ(opened->self_seed_share.y, shares.self_seed_share.y);
    EXPECT_EQ(opened->secret_key_share.y, shares.secret_key_share.y);
  }
  // Shares of the wrong size are not sealed; shares whose x is not the recipient's are not
  // accepted on opening.
  SecAggShares short_share = shares;
  short_share.self_seed_share.y.pop_back();
  EXPECT_EQ(SealSecAggShares(*box_key, short_share).status().code(), StatusCode::kInvalidArgument);
  SecAggShares wrong_x = shares;
  wrong_x.secret_key_share.x = 3;
  auto sealed_wrong_x = SealSecAggShares(*box_key, wrong_x);
  ASSERT_TRUE(sealed_wrong_x.ok());
  EXPECT_EQ(OpenSecAggShares(*box_key, SecAggShareMessage{1, 2, *sealed_wrong_x}).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(SecAggTest, TamperedShareIsRefused) {
  const SecAggConfig config = Config(3, 2, 4);
  SharedRound round = ShareAmong(config);
  const std::vector<uint32_t> x(4, 1);
  auto& inbox = round.inbox[1];
  ASSERT_EQ(inbox.size(), 3u);
  const size_t from2 = inbox[0].from == 2 ? 0 : (inbox[1].from == 2 ? 1 : 2);
  ASSERT_EQ(inbox[from2].from, 2);
  const size_t size = inbox[from2].ciphertext.size();
  // A bit of the nonce, of the MAC and of the body.
  for (size_t byte : {size_t{5}, size_t{30}, size - 1}) {
    auto tampered = inbox;
    tampered[from2].ciphertext[byte] ^= 0x10;
    auto y = round.clients[0].MaskInput(x, tampered);
    EXPECT_EQ(y.status().code(), StatusCode::kInvalidArgument) << "byte " << byte;
    EXPECT_NE(y.status().message().find("from client 2"), std::string::npos)
        << y.status().ToString();
    EXPECT_NE(y.status().message().find("authenticate"), std::string::npos)
        << y.status().ToString();
  }
  // A ciphertext of the wrong size (a byte appended or dropped) is refused too.
  for (int delta : {-1, 1}) {
    auto resized = inbox;
    resized[from2].ciphertext.resize(size + delta);
    EXPECT_EQ(round.clients[0].MaskInput(x, resized).status().code(), StatusCode::kInvalidArgument);
  }
  // The refusals changed nothing: the genuine messages are accepted.
  EXPECT_TRUE(round.clients[0].MaskInput(x, inbox).ok());
}

TEST(SecAggTest, ReaddressedShareIsRefused) {
  const SecAggConfig config = Config(3, 2, 4);
  SharedRound round = ShareAmong(config);
  const std::vector<uint32_t> x(4, 1);
  auto find = [&](int from, int to) {
    for (const SecAggShareMessage& m : round.inbox[to]) {
      if (m.from == from) return m;
    }
    ADD_FAILURE() << "no message " << from << " -> " << to;
    return SecAggShareMessage{};
  };
  auto replace = [&](int to, SecAggShareMessage forged) {
    std::vector<SecAggShareMessage> out;
    for (const SecAggShareMessage& m : round.inbox[to]) {
      out.push_back(m.from == forged.from ? forged : m);
    }
    return out;
  };
  // The server redirects client 2's share for client 1 to client 3 (in place of 2's share for
  // 3): it is sealed under k_12, not k_23.
  SecAggShareMessage redirected = find(2, 1);
  redirected.to = 3;
  auto at3 = round.clients[2].MaskInput(x, replace(3, redirected));
  EXPECT_EQ(at3.status().code(), StatusCode::kInvalidArgument) << at3.status().ToString();
  EXPECT_NE(at3.status().message().find("from client 2"), std::string::npos);
  // The server claims client 3's share for client 1 came from client 2.
  SecAggShareMessage relabelled = find(3, 1);
  relabelled.from = 2;
  auto relabelled_set = replace(1, relabelled);
  auto at1 = round.clients[0].MaskInput(x, relabelled_set);
  EXPECT_EQ(at1.status().code(), StatusCode::kInvalidArgument) << at1.status().ToString();
  // The server reflects client 1's share for client 2 back to client 1 as if 2 had sent it:
  // k_12 = k_21, so it authenticates, but the ids sealed inside give it away.
  SecAggShareMessage reflected = find(1, 2);
  std::swap(reflected.from, reflected.to);
  auto reflected_at1 = round.clients[0].MaskInput(x, replace(1, reflected));
  EXPECT_EQ(reflected_at1.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(reflected_at1.status().message().find("sealed as a message from 1 to 2"),
            std::string::npos)
      << reflected_at1.status().ToString();
  // The genuine set still works for everyone.
  for (int id = 1; id <= 3; ++id) {
    EXPECT_TRUE(round.clients[id - 1].MaskInput(x, round.inbox[id]).ok()) << id;
  }
}

TEST(SecAggTest, RepeatedKeysAreRefused) {
  const SecAggConfig config = Config(3, 2, 4);
  std::vector<SecAggClient> clients;
  std::map<int, SecAggPublicKeys> keys;
  for (int id = 1; id <= 3; ++id) {
    clients.push_back(std::move(*SecAggClient::Create(config, id)));
    keys[id] = clients.back().public_keys();
  }
  auto same_encryption = keys;
  same_encryption[3].encryption = same_encryption[2].encryption;
  auto same_masking = keys;
  same_masking[3].masking = same_masking[2].masking;
  auto crossed = keys;  // client 3 advertises 2's masking key as its encryption key
  crossed[3].encryption = crossed[2].masking;
  for (const auto* bad : {&same_encryption, &same_masking, &crossed}) {
    auto messages = clients[0].ShareKeys(*bad);
    EXPECT_EQ(messages.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(messages.status().message().find("client 3"), std::string::npos)
        << messages.status().ToString();
  }
  auto altered_own = keys;
  altered_own[1].encryption = keys[2].masking;
  EXPECT_EQ(clients[0].ShareKeys(altered_own).status().code(), StatusCode::kInvalidArgument);
  // The refusals changed nothing.
  EXPECT_TRUE(clients[0].ShareKeys(keys).ok());
}

TEST(SecAggTest, MaskedInputLooksUniform) {
  // The server only ever receives y = x + masks: with x = 0 everywhere, y must differ from x in
  // (nearly) every coordinate and its values must spread over the whole of Z_{2^32}.
  SharedRound round = ShareAmong(Config(3, 2, 4096));
  ASSERT_FALSE(HasFailure());
  auto& clients = round.clients;
  auto& inbox = round.inbox;
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

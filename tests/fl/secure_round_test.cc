// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The secure round between a SecureRoundServer and SecureRoundClients, every message through its
// byte form: the decoded sum equals the plain example-weighted sum, with and without dropouts;
// below the threshold it aborts and reveals nothing; stage deadlines put late devices out;
// repeats are answered like polls; strangers and out-of-order messages are refused; every
// truncation of every message kind is refused.
#include "src/fl/secure_round.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace hml::fl {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kStart = 1000;
constexpr int64_t kDeadline = 101000;  // a 100 s window: keys close 10 s after the start, ...
constexpr int64_t kElements = 50;

struct Device {
  std::string id;
  std::vector<float> delta;
  int64_t examples = 0;
  SecureRoundClient client;
  SecureClientMessage next;  // a poll at first
  SecureStage last = SecureStage::kWait;
  std::string reason;
};

class SecureRoundTest : public ::testing::Test {
 protected:
  void Make(int n) {
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> value(-0.05f, 0.05f);
    devices_.clear();
    devices_.resize(static_cast<size_t>(n));
    SecureRoundOptions options;
    for (int i = 0; i < n; ++i) {
      Device& d = devices_[static_cast<size_t>(i)];
      d.id = "device-" + std::to_string(i);
      d.examples = 10 + 7 * i;
      for (int64_t j = 0; j < kElements; ++j) d.delta.push_back(value(rng));
      options.cohort.push_back(d.id);
    }
    options.elements = kElements;
    options.start_ms = kStart;
    options.deadline_ms = kDeadline;
    auto server = SecureRoundServer::Create(options);
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(*server);
  }

  // One exchange of device `d` at now_ms, through the byte forms.
  void Step(Device& d, int64_t now_ms) {
    const std::string bytes = EncodeSecureClientMessage(d.next);
    auto message = DecodeSecureClientMessage(bytes);
    ASSERT_TRUE(message.ok()) << message.status().ToString();
    auto reply = server_->Exchange(d.id, *message, static_cast<int64_t>(bytes.size()), now_ms);
    ASSERT_TRUE(reply.ok()) << reply.status().ToString();
    auto decoded = DecodeSecureReply(EncodeSecureReply(*reply));
    ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
    d.last = decoded->stage;
    d.reason = decoded->reason;
    std::optional<std::vector<uint32_t>> input;
    if (decoded->stage == SecureStage::kMaskedInput) {
      auto encoded = EncodeSecureInput(d.delta, d.examples, decoded->clients);
      ASSERT_TRUE(encoded.ok()) << encoded.status().ToString();
      input = std::move(*encoded);
    }
    auto next = d.client.Respond(*decoded, input);
    ASSERT_TRUE(next.ok()) << next.status().ToString();
    d.next = std::move(*next);
  }

  // Every device steps until the server is done or aborted, then once more to learn the outcome;
  // a device in `vanish_after_shares` stops when asked for its masked input. Time jumps to the
  // stage's deadline when every device waits. Returns the time the exchange ended.
  int64_t Run(std::set<int> vanish_after_shares = {}) {
    int64_t now = kStart + 1;
    std::vector<bool> gone(devices_.size(), false);
    for (int guard = 0; guard < 100 && !server_->done() && !server_->aborted(); ++guard) {
      bool progress = false;
      for (size_t i = 0; i < devices_.size(); ++i) {
        if (gone[i]) continue;
        Step(devices_[i], now);
        if (HasFatalFailure()) return now;
        const SecureStage s = devices_[i].last;
        if (s == SecureStage::kDone || s == SecureStage::kOut ||
            (s == SecureStage::kMaskedInput && vanish_after_shares.contains(static_cast<int>(i)))) {
          gone[i] = true;
          continue;
        }
        progress = progress || devices_[i].next.stage != SecureStage::kWait;
      }
      if (!progress && !server_->done() && !server_->aborted()) {
        now = std::max(now, server_->stage_deadline_ms());
        server_->Advance(now);
      }
    }
    // The devices still there learn the outcome at their next poll.
    for (size_t i = 0; i < devices_.size(); ++i) {
      if (!gone[i]) Step(devices_[i], now);
    }
    return now;
  }

  // The plain example-weighted sums.
  void ExpectSumOf(const SecureAggregate& aggregate, const std::set<int>& members) {
    std::vector<double> sum(kElements, 0.0);
    double total = 0;
    std::vector<std::string> ids;
    for (int i : members) {
      const Device& d = devices_[static_cast<size_t>(i)];
      for (int64_t j = 0; j < kElements; ++j) {
        sum[static_cast<size_t>(j)] +=
            static_cast<double>(d.examples) * d.delta[static_cast<size_t>(j)];
      }
      total += static_cast<double>(d.examples);
      ids.push_back(d.id);
    }
    EXPECT_EQ(aggregate.participants, ids);
    EXPECT_NEAR(aggregate.total_examples, total, 1e-3);
    ASSERT_EQ(aggregate.weighted_delta_sum.size(), static_cast<size_t>(kElements));
    for (int64_t j = 0; j < kElements; ++j) {
      EXPECT_NEAR(aggregate.weighted_delta_sum[static_cast<size_t>(j)], sum[static_cast<size_t>(j)],
                  1e-3)
          << "element " << j;
    }
    EXPECT_GT(aggregate.wire_bytes, 0);
  }

  std::vector<Device> devices_;
  std::unique_ptr<SecureRoundServer> server_;
};

TEST_F(SecureRoundTest, SumEqualsThePlainWeightedSumWithoutDropouts) {
  Make(5);
  const int64_t ended = Run();
  ASSERT_TRUE(server_->done()) << server_->abort_reason();
  // Every stage closed as soon as everyone answered: no deadline was waited for.
  EXPECT_EQ(ended, kStart + 1);
  auto aggregate = server_->TakeAggregate();
  ASSERT_TRUE(aggregate.has_value());
  ExpectSumOf(*aggregate, {0, 1, 2, 3, 4});
  EXPECT_FALSE(server_->TakeAggregate().has_value());  // exactly once
  for (const Device& d : devices_) EXPECT_EQ(d.last, SecureStage::kDone) << d.id;
}

TEST_F(SecureRoundTest, DropoutsUpToNMinusTAreSummedWithout) {
  Make(7);  // t = max(4, ceil(2/3 x 7) = 5) = 5: two may drop
  ASSERT_EQ(server_->threshold(), 5);
  const int64_t ended = Run({1, 4});
  ASSERT_TRUE(server_->done()) << server_->abort_reason();
  // The masked-input stage waited for its deadline (85 % of the window).
  EXPECT_EQ(ended, kStart + 85000);
  EXPECT_LT(ended, kDeadline);
  auto aggregate = server_->TakeAggregate();
  ASSERT_TRUE(aggregate.has_value());
  ExpectSumOf(*aggregate, {0, 2, 3, 5, 6});
}

TEST_F(SecureRoundTest, BelowTheThresholdAbortsAndRevealsNothing) {
  Make(5);  // t = 4
  Run({0, 3});
  EXPECT_TRUE(server_->aborted());
  EXPECT_THAT(server_->abort_reason(), HasSubstr("threshold"));
  EXPECT_FALSE(server_->TakeAggregate().has_value());
  // The devices still in the protocol are told they are out, with the reason.
  for (int i : {1, 2, 4}) {
    EXPECT_EQ(devices_[static_cast<size_t>(i)].last, SecureStage::kOut);
    EXPECT_THAT(devices_[static_cast<size_t>(i)].reason, HasSubstr("aborted"));
  }
}

TEST_F(SecureRoundTest, ADeviceLateForTheKeysIsOut) {
  Make(4);  // t = 3
  // Devices 0..2 send keys; the keys stage closes at its deadline without device 3.
  for (int i = 0; i < 3; ++i) {
    Step(devices_[static_cast<size_t>(i)], kStart + 1);
    Step(devices_[static_cast<size_t>(i)], kStart + 1);
  }
  ASSERT_EQ(server_->stage(), SecureStage::kKeys);
  const int64_t keys_close = server_->stage_deadline_ms();
  EXPECT_EQ(keys_close, kStart + 10000);
  server_->Advance(keys_close - 1);
  ASSERT_EQ(server_->stage(), SecureStage::kKeys);
  server_->Advance(keys_close);
  ASSERT_EQ(server_->stage(), SecureStage::kShares);
  Step(devices_[3], keys_close + 1);
  EXPECT_EQ(devices_[3].last, SecureStage::kOut);
  EXPECT_THAT(devices_[3].reason, HasSubstr("public keys did not arrive"));
}

TEST_F(SecureRoundTest, RepeatsAreAnsweredLikePollsAndStrangersAreRefused) {
  Make(3);
  Step(devices_[0], kStart + 1);  // poll -> asked for keys
  ASSERT_EQ(devices_[0].last, SecureStage::kKeys);
  const SecureClientMessage keys = devices_[0].next;
  Step(devices_[0], kStart + 1);  // sends keys -> wait
  EXPECT_EQ(devices_[0].last, SecureStage::kWait);
  // The same keys again (a retry after a lost reply): a poll's answer, nothing counted twice.
  auto again = server_->Exchange(devices_[0].id, keys, 64, kStart + 2);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->stage, SecureStage::kWait);
  EXPECT_GE(again->retry_after_ms, 1);
  EXPECT_LE(again->retry_after_ms, 1000);
  // A device outside the cohort.
  auto stranger = server_->Exchange("intruder", SecureClientMessage{}, 8, kStart + 2);
  EXPECT_EQ(stranger.status().code(), StatusCode::kPermissionDenied);
  // A message for a stage that is not open yet.
  SecureClientMessage early;
  early.stage = SecureStage::kMaskedInput;
  early.masked_input.assign(kElements + 1, 0);
  auto refused = server_->Exchange(devices_[1].id, early, 8, kStart + 2);
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  // Keys equal to another device's are refused; the device may still send its own.
  auto copied = server_->Exchange(devices_[1].id, keys, 64, kStart + 2);
  EXPECT_EQ(copied.status().code(), StatusCode::kInvalidArgument);
  Step(devices_[1], kStart + 3);
  ASSERT_EQ(devices_[1].last, SecureStage::kKeys);
  Step(devices_[1], kStart + 3);
  EXPECT_EQ(devices_[1].last, SecureStage::kWait);
}

TEST_F(SecureRoundTest, AnUnmaskResponseNamingAnotherSenderIsRefused) {
  Make(3);
  // Run to the unmasking stage: everyone answers keys, shares, masked input.
  for (int pass = 0; pass < 20 && server_->stage() != SecureStage::kUnmask; ++pass) {
    for (Device& d : devices_) {
      if (server_->stage() != SecureStage::kUnmask) Step(d, kStart + 1);
    }
  }
  ASSERT_EQ(server_->stage(), SecureStage::kUnmask);
  if (devices_[0].next.stage != SecureStage::kUnmask) Step(devices_[0], kStart + 1);
  ASSERT_EQ(devices_[0].next.stage, SecureStage::kUnmask);
  SecureClientMessage forged = devices_[0].next;
  forged.unmask.from = 2;
  auto refused = server_->Exchange(devices_[0].id, forged, 8, kStart + 2);
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.status().message(), HasSubstr("names client 2"));
}

TEST(SecureRoundWireTest, EveryTruncationAndTrailingByteIsRefused) {
  SecureClientMessage keys;
  keys.stage = SecureStage::kKeys;
  keys.keys.encryption.fill(1);
  keys.keys.masking.fill(2);
  SecureClientMessage shares;
  shares.stage = SecureStage::kShares;
  shares.shares.push_back({1, 2, std::vector<uint8_t>(40, 9)});
  shares.shares.push_back({1, 3, std::vector<uint8_t>(40, 8)});
  SecureClientMessage masked;
  masked.stage = SecureStage::kMaskedInput;
  masked.masked_input = {1, 2, 3, 0xffffffffu};
  SecureClientMessage unmask;
  unmask.stage = SecureStage::kUnmask;
  unmask.unmask.from = 2;
  unmask.unmask.self_seed_shares[1] = ShamirShare{2, {5, 6, 7}};
  unmask.unmask.secret_key_shares[3] = ShamirShare{2, {8}};
  for (const SecureClientMessage& m : {SecureClientMessage{}, keys, shares, masked, unmask}) {
    const std::string bytes = EncodeSecureClientMessage(m);
    auto back = DecodeSecureClientMessage(bytes);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(EncodeSecureClientMessage(*back), bytes);
    for (size_t cut = 0; cut < bytes.size(); ++cut) {
      EXPECT_EQ(DecodeSecureClientMessage(bytes.substr(0, cut)).status().code(),
                StatusCode::kInvalidArgument)
          << "stage " << SecureStageName(m.stage) << " cut at " << cut;
    }
    EXPECT_FALSE(DecodeSecureClientMessage(bytes + "x").ok());
  }
  SecureReply base;
  base.index = 2;
  base.clients = 3;
  base.threshold = 2;
  base.elements = 4;
  base.stage_deadline_ms = 123;
  SecureReply with_keys = base;
  with_keys.stage = SecureStage::kShares;
  with_keys.public_keys[1] = keys.keys;
  SecureReply with_shares = base;
  with_shares.stage = SecureStage::kMaskedInput;
  with_shares.shares = shares.shares;
  SecureReply with_request = base;
  with_request.stage = SecureStage::kUnmask;
  with_request.unmask = {{1, 2}, {3}};
  SecureReply out = base;
  out.stage = SecureStage::kOut;
  out.reason = "late";
  for (const SecureReply& r : {base, with_keys, with_shares, with_request, out}) {
    const std::string bytes = EncodeSecureReply(r);
    auto back = DecodeSecureReply(bytes);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(EncodeSecureReply(*back), bytes);
    for (size_t cut = 0; cut < bytes.size(); ++cut) {
      EXPECT_FALSE(DecodeSecureReply(bytes.substr(0, cut)).ok()) << "cut at " << cut;
    }
    EXPECT_FALSE(DecodeSecureReply(bytes + "x").ok());
  }
}

TEST(SecureRoundWireTest, ForgedCountsAndFieldsAreRefusedByName) {
  SecureClientMessage masked;
  masked.stage = SecureStage::kMaskedInput;
  masked.masked_input = {1, 2};
  std::string bytes = EncodeSecureClientMessage(masked);
  // The u64 length right after the 8-byte header claims 2^40 elements.
  bytes[8 + 5] = 1;
  auto forged = DecodeSecureClientMessage(bytes);
  EXPECT_EQ(forged.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(forged.status().message(), HasSubstr("masked input length"));
  std::string wrong = EncodeSecureClientMessage(SecureClientMessage{});
  wrong[4] = 9;
  EXPECT_THAT(DecodeSecureClientMessage(wrong).status().message(), HasSubstr("version 9"));
  wrong = EncodeSecureClientMessage(SecureClientMessage{});
  wrong[5] = static_cast<char>(SecureStage::kDone);
  EXPECT_THAT(DecodeSecureClientMessage(wrong).status().message(), HasSubstr("cannot send"));
  EXPECT_THAT(
      DecodeSecureReply(EncodeSecureClientMessage(SecureClientMessage{})).status().message(),
      HasSubstr("not a secure aggregation reply"));
  SecureReply bad;
  bad.index = 4;
  bad.clients = 3;
  bad.threshold = 2;
  bad.elements = 1;
  EXPECT_THAT(DecodeSecureReply(EncodeSecureReply(bad)).status().message(), HasSubstr("index 4"));
}

TEST(SecureRoundInputTest, InputsAreWeightedClippedAndChecked) {
  auto fixed = SecureFixedPoint(10);
  ASSERT_TRUE(fixed.ok());
  EXPECT_TRUE(fixed->Validate(10).ok());
  EXPECT_FALSE(SecureFixedPoint(0).ok());
  const std::vector<float> delta = {0.5f, -0.25f, 1e6f};
  auto input = EncodeSecureInput(delta, 2048, 10);  // weight 2
  ASSERT_TRUE(input.ok());
  const SecureAggregate decoded = DecodeSecureSum(*input, *fixed, {"a"});
  ASSERT_EQ(decoded.weighted_delta_sum.size(), 3u);
  EXPECT_NEAR(decoded.weighted_delta_sum[0], 1024.0, 0.1);  // 2048 x 0.5
  EXPECT_NEAR(decoded.weighted_delta_sum[1], -512.0, 0.1);
  EXPECT_NEAR(decoded.weighted_delta_sum[2], kSecureMaxAbs * kSecureWeightScale, 0.1);  // clipped
  EXPECT_NEAR(decoded.total_examples, 2048.0, 0.1);
  EXPECT_FALSE(EncodeSecureInput(std::vector<float>{NAN}, 1, 10).ok());
  EXPECT_FALSE(EncodeSecureInput(delta, 0, 10).ok());
  EXPECT_EQ(SecureThreshold(3, 2.0 / 3.0), 2);
  EXPECT_EQ(SecureThreshold(10, 2.0 / 3.0), 7);
  EXPECT_EQ(SecureThreshold(4, 0.51), 3);
}

}  // namespace
}  // namespace hml::fl

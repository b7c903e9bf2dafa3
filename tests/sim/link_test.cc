// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/sim/link.h"

#include <gtest/gtest.h>

#include <cmath>
#include <memory>

namespace hml::sim {
namespace {

constexpr int64_t kMs = 1'000'000;

std::unique_ptr<LinkEmulator> MakeLink(const std::string& profile, ManualClock* clock,
                                       std::vector<Outage> outages = {},
                                       OutageMode mode = OutageMode::kFailFast) {
  LinkOptions options;
  options.profile = *NamedLinkProfile(profile);
  options.outages = std::move(outages);
  options.outage_mode = mode;
  options.clock = clock;
  Result<std::unique_ptr<LinkEmulator>> link = LinkEmulator::Create(std::move(options));
  EXPECT_TRUE(link.ok()) << link.status().ToString();
  return std::move(*link);
}

TEST(LinkProfileTest, NamedProfilesHaveTheirRttAndBandwidth) {
  Result<LinkProfile> g4 = NamedLinkProfile("4g");
  ASSERT_TRUE(g4.ok());
  EXPECT_EQ(g4->rtt_nanos, 50 * kMs);
  EXPECT_DOUBLE_EQ(g4->uplink_bytes_per_second, 1.25e6);
  EXPECT_DOUBLE_EQ(g4->downlink_bytes_per_second, 1.25e6);
  EXPECT_EQ(NamedLinkProfile("poor")->rtt_nanos, 300 * kMs);
  EXPECT_DOUBLE_EQ(NamedLinkProfile("poor")->uplink_bytes_per_second, 125'000);
  EXPECT_EQ(NamedLinkProfile("wifi")->rtt_nanos, 10 * kMs);
  EXPECT_DOUBLE_EQ(NamedLinkProfile("wifi")->downlink_bytes_per_second, 6.25e6);
  EXPECT_TRUE(NamedLinkProfile("offline")->offline);
  Result<LinkProfile> unknown = NamedLinkProfile("5g");
  EXPECT_EQ(unknown.status().code(), StatusCode::kNotFound);
  EXPECT_NE(unknown.status().message().find("'5g'"), std::string::npos);
  EXPECT_NE(unknown.status().message().find("wifi"), std::string::npos);
}

TEST(LinkOptionsTest, BadOptionsAreRefusedNamingTheField) {
  LinkOptions options;
  options.profile.loss_probability = 1.5;
  EXPECT_NE(LinkEmulator::Create(options).status().message().find("loss_probability"),
            std::string::npos);
  options.profile.loss_probability = 0;
  options.profile.rtt_nanos = -1;
  EXPECT_NE(LinkEmulator::Create(options).status().message().find("rtt_nanos"), std::string::npos);
  options.profile.rtt_nanos = 0;
  options.outages = {{10, 10}};
  EXPECT_NE(LinkEmulator::Create(options).status().message().find("outage #0"), std::string::npos);
  options.outages = {};
  options.profile.uplink_bytes_per_second = -5;
  EXPECT_EQ(LinkEmulator::Create(options).status().code(), StatusCode::kInvalidArgument);
}

TEST(LinkEmulatorTest, OneMegabyteOver4gTakesRttHalfPlusTransmission) {
  ManualClock clock(7 * kMs);
  auto link = MakeLink("4g", &clock);
  // 10^6 bytes at 1.25 * 10^6 B/s = 800 ms, plus half of the 50 ms RTT.
  EXPECT_EQ(link->TransferNanos(Direction::kUplink, 1'000'000), 825 * kMs);
  Transmission t = link->Send(Direction::kUplink, 1'000'000);
  EXPECT_TRUE(t.delivered());
  EXPECT_EQ(t.start_nanos, 7 * kMs);
  EXPECT_EQ(t.arrive_nanos - t.send_nanos, 825 * kMs);
  // A request of 1 MB and a response of 1 MB take one full RTT plus both transmissions.
  clock.Advance(825 * kMs);
  Transmission back = link->Send(Direction::kDownlink, 1'000'000);
  EXPECT_EQ(back.arrive_nanos - t.send_nanos, 50 * kMs + 1600 * kMs);
}

TEST(LinkEmulatorTest, BackToBackMessagesQueuePerDirection) {
  ManualClock clock(0);
  auto link = MakeLink("4g", &clock);
  Transmission first = link->Send(Direction::kUplink, 1'000'000);
  Transmission second = link->Send(Direction::kUplink, 1'000'000);
  EXPECT_EQ(first.arrive_nanos, 825 * kMs);
  // The second waits for the first's 800 ms of transmission; propagation overlaps.
  EXPECT_EQ(second.start_nanos, 800 * kMs);
  EXPECT_EQ(second.arrive_nanos, 1625 * kMs);
  // The other direction is a separate pipe: no queueing behind the uplink.
  Transmission down = link->Send(Direction::kDownlink, 1'000'000);
  EXPECT_EQ(down.arrive_nanos, 825 * kMs);
  // Once the pipe has drained, a message starts at once again.
  clock.Advance(2000 * kMs);
  Transmission later = link->Send(Direction::kUplink, 125'000);
  EXPECT_EQ(later.start_nanos, 2000 * kMs);
  EXPECT_EQ(later.arrive_nanos, 2000 * kMs + 100 * kMs + 25 * kMs);
  EXPECT_EQ(link->counters().bytes_sent[0], 2'125'000);
  EXPECT_EQ(link->counters().bytes_sent[1], 1'000'000);
}

TEST(LinkEmulatorTest, UnlimitedBandwidthCostsOnlyHalfTheRtt) {
  ManualClock clock(0);
  LinkOptions options;
  options.profile.rtt_nanos = 40 * kMs;
  options.clock = &clock;
  LinkEmulator link(options);
  EXPECT_EQ(link.Send(Direction::kUplink, 1 << 30).arrive_nanos, 20 * kMs);
  EXPECT_EQ(link.Send(Direction::kUplink, 1 << 30).arrive_nanos, 20 * kMs);
}

TEST(LinkEmulatorTest, LossRateMatchesTheProbabilityAndIsReproducibleBySeed) {
  ManualClock clock(0);
  auto run = [&clock](uint64_t seed, std::vector<bool>* fates) {
    LinkOptions options;
    options.profile.loss_probability = 0.1;
    options.seed = seed;
    options.clock = &clock;
    LinkEmulator link(options);
    int lost = 0;
    for (int i = 0; i < 20000; ++i) {
      const bool delivered = link.Send(Direction::kUplink, 100).delivered();
      fates->push_back(delivered);
      if (!delivered) ++lost;
    }
    EXPECT_EQ(link.counters().lost, lost);
    EXPECT_EQ(link.counters().delivered, 20000 - lost);
    return lost;
  };
  std::vector<bool> a, b, c;
  const int lost = run(42, &a);
  // Binomial(20000, 0.1): sd = 42; 5 sd = 210.
  EXPECT_NEAR(lost, 2000, 210);
  run(42, &b);
  EXPECT_EQ(a, b);
  run(43, &c);
  EXPECT_NE(a, c);
}

TEST(LinkEmulatorTest, OutageRefusesSendsFailFastAndLosesMessagesInFlight) {
  ManualClock clock(0);
  auto link = MakeLink("4g", &clock, {{100 * kMs, 300 * kMs}});
  EXPECT_FALSE(link->IsDown(99 * kMs));
  EXPECT_TRUE(link->IsDown(100 * kMs));
  EXPECT_TRUE(link->IsDown(299 * kMs));
  EXPECT_FALSE(link->IsDown(300 * kMs));

  // Sent at 90 ms, in flight until 115 ms: the outage at 100 ms loses it (bytes were spent).
  clock.Advance(90 * kMs);
  Transmission crossing = link->Send(Direction::kUplink, 0);
  EXPECT_EQ(crossing.fate, Transmission::Fate::kLost);
  EXPECT_EQ(link->counters().bytes_sent[0], 0);
  // During the outage: refused at once, nothing sent.
  clock.Advance(60 * kMs);
  Transmission refused = link->Send(Direction::kUplink, 1000);
  EXPECT_EQ(refused.fate, Transmission::Fate::kRefused);
  EXPECT_EQ(refused.arrive_nanos, 150 * kMs);
  EXPECT_EQ(link->counters().bytes_sent[0], 0);
  // After it: delivered again.
  clock.Advance(150 * kMs);
  EXPECT_TRUE(link->Send(Direction::kUplink, 1000).delivered());
  EXPECT_EQ(link->counters().refused, 1);
  EXPECT_EQ(link->counters().lost, 1);
  EXPECT_EQ(link->counters().delivered, 1);

  // A new schedule replaces the old one.
  link->SetOutages({});
  EXPECT_FALSE(link->IsDown(150 * kMs));
}

TEST(LinkEmulatorTest, BlackHoleOutageSendsAndLoses) {
  ManualClock clock(0);
  auto link = MakeLink("4g", &clock, {{0, 100 * kMs}}, OutageMode::kBlackHole);
  Transmission t = link->Send(Direction::kUplink, 1000);
  EXPECT_EQ(t.fate, Transmission::Fate::kLost);
  EXPECT_EQ(link->counters().bytes_sent[0], 1000);
  clock.Advance(100 * kMs);
  EXPECT_TRUE(link->Send(Direction::kUplink, 1000).delivered());
}

TEST(LinkEmulatorTest, OfflineProfileIsAlwaysDown) {
  ManualClock clock(0);
  auto link = MakeLink("offline", &clock);
  EXPECT_TRUE(link->IsDown(0));
  EXPECT_EQ(link->Send(Direction::kUplink, 10).fate, Transmission::Fate::kRefused);
  clock.Advance(3600'000 * kMs);
  EXPECT_EQ(link->Send(Direction::kDownlink, 10).fate, Transmission::Fate::kRefused);
}

}  // namespace
}  // namespace hml::sim

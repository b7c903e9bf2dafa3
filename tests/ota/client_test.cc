// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The attack suite: an in-process repository (ota::Repository) served through a Fetcher that
// tests tamper with, and a device client (ota::Client) persisting its trusted state in a temp
// directory. Every attack checks the error kind, that the persisted state is byte-identical and
// that the client still trusts what it trusted before.
#include "src/ota/client.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "src/ota/repository.h"
#include "tests/testing/ota_fakes.h"

namespace hml::ota {
namespace {

using ::hml::testing::MapFetcher;
using ::testing::HasSubstr;

constexpr int64_t kStart = 1'800'000'000;  // 2027-01-15

KeyPair Key(char seed) { return *KeyPair::FromSeed(std::string(32, seed)); }

// A server that streams `name` forever: it produces bytes until the client's limit stops it.
class EndlessFetcher : public Fetcher {
 public:
  EndlessFetcher(Fetcher& base, std::string name) : base_(base), name_(std::move(name)) {}
  int64_t produced = 0;
  Result<std::string> Fetch(const std::string& name, int64_t max_bytes) override {
    if (name != name_) return base_.Fetch(name, max_bytes);
    std::string got;
    while (true) {  // a reader that stops one byte past the limit
      got.append(4096, ' ');
      produced += 4096;
      if (static_cast<int64_t>(got.size()) > max_bytes) {
        return ResourceExhaustedError("'" + name + "' exceeds " + std::to_string(max_bytes));
      }
    }
  }

 private:
  Fetcher& base_;
  std::string name_;
};

class OtaClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/ota_client_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    auto repo = Repository::Create({{Key('r')}, 1}, {{Key('t')}, 1}, {{Key('s')}, 1},
                                   {{Key('x')}, 1}, kStart);
    ASSERT_TRUE(repo.ok()) << repo.status().ToString();
    repo_ = std::make_unique<Repository>(std::move(*repo));
    shipped_root_ = repo_->files().at("1.root.json");
    ASSERT_TRUE(repo_->AddTarget("student/model.onnx", "model v1", ModelFields(1), kStart).ok());
    Serve();
    clock_ = std::make_unique<ManualClock>(0, kStart * 1000000);
    client_ = Open();
    ASSERT_TRUE(client_->Refresh().ok());
    state_ = State();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  static Json ModelFields(int64_t version) {
    Json c = Json::Object{};
    c["version"] = version;
    return c;
  }
  void Serve() { fetcher_.files = repo_->files(); }
  std::unique_ptr<Client> Open() {
    auto c = Client::Open(*DefaultEnv(), dir_, shipped_root_, fetcher_, *clock_);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(*c) : nullptr;
  }
  std::string State() { return *DefaultEnv()->ReadFile(dir_ + "/trusted.json"); }
  void AdvanceDays(double days) {
    clock_->Advance(static_cast<int64_t>(days * 86400.0 * 1e9));
  }
  int64_t Now() const { return clock_->WallMicros() / 1000000; }
  // The refresh fails with `code` (and `message` in its text); nothing the client trusts or
  // persisted changed.
  void ExpectRefused(StatusCode code, const std::string& message) {
    const int64_t ts = client_->trusted().timestamp()->version;
    const int64_t tg = client_->trusted().targets()->version;
    const int64_t root = client_->trusted().root().version;
    const Status s = client_->Refresh();
    EXPECT_EQ(s.code(), code) << s.ToString();
    EXPECT_THAT(std::string(s.message()), HasSubstr(message));
    EXPECT_EQ(State(), state_) << "the persisted state changed";
    EXPECT_EQ(client_->trusted().timestamp()->version, ts);
    EXPECT_EQ(client_->trusted().targets()->version, tg);
    EXPECT_EQ(client_->trusted().root().version, root);
  }
  // Signs `meta` with `keys` and serves it as `name`.
  void ServeSigned(const std::string& name, const Json& meta, std::span<const KeyPair> keys) {
    fetcher_.files[name] = SignEnvelope(meta, keys).Serialize();
  }
  // Serves `snap` and a newer timestamp naming it (version only), both signed with the
  // repository's real keys: what an attacker holding those keys could serve.
  void ServeSnapshotAndTimestamp(const SnapshotMeta& snap) {
    ServeSigned("snapshot.json", snap.ToJson(), repo_->signers(Role::kSnapshot).keys);
    TimestampMeta ts = repo_->timestamp();
    ts.version += 1;
    ts.snapshot = {snap.version, -1, ""};
    ServeSigned("timestamp.json", ts.ToJson(), repo_->signers(Role::kTimestamp).keys);
  }

  std::string dir_;
  std::unique_ptr<Repository> repo_;
  std::string shipped_root_;
  MapFetcher fetcher_;
  std::unique_ptr<ManualClock> clock_;
  std::unique_ptr<Client> client_;
  std::string state_;
};

TEST_F(OtaClientTest, RefreshInstallsVerifiedMetadataAndSurvivesReopen) {
  ASSERT_TRUE(client_->trusted().targets().has_value());
  EXPECT_EQ(client_->trusted().targets()->targets.count("student/model.onnx"), 1u);
  auto model = client_->FetchTarget("student/model.onnx");
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  EXPECT_EQ(*model, "model v1");
  // A new version is published; the next refresh sees it.
  AdvanceDays(0.5);
  ASSERT_TRUE(repo_->AddTarget("student/model.onnx", "model v2!", ModelFields(2), Now()).ok());
  Serve();
  ASSERT_TRUE(client_->Refresh().ok());
  EXPECT_EQ(*client_->FetchTarget("student/model.onnx"), "model v2!");
  EXPECT_NE(State(), state_);
  // A second client on the same directory starts from the persisted state, not the shipped root.
  auto again = Open();
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(again->trusted().targets()->version, client_->trusted().targets()->version);
  EXPECT_EQ(again->trusted().timestamp()->version, client_->trusted().timestamp()->version);
  // Nothing new: the timestamp is unchanged and snapshot/targets are not fetched again.
  fetcher_.fetched.clear();
  ASSERT_TRUE(again->Refresh().ok());
  EXPECT_EQ(fetcher_.fetched, (std::vector<std::string>{"2.root.json", "timestamp.json"}));
}

// (1) Arbitrary file.
TEST_F(OtaClientTest, ReplacedModelBytesAreRejected) {
  fetcher_.files["targets/student/model.onnx"] = "model v6";  // same length, other bytes
  auto got = client_->FetchTarget("student/model.onnx");
  EXPECT_EQ(got.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(std::string(got.status().message()), HasSubstr("sha256"));
  fetcher_.files["targets/student/model.onnx"] = "model v1 and more";
  EXPECT_EQ(client_->FetchTarget("student/model.onnx").status().code(),
            StatusCode::kResourceExhausted);
  EXPECT_EQ(State(), state_);
}

TEST_F(OtaClientTest, MetadataSignedByAnUnknownKeyIsRejected) {
  TimestampMeta ts = repo_->timestamp();
  ts.version += 1;
  const KeyPair attacker = Key('a');
  ServeSigned("timestamp.json", ts.ToJson(), {&attacker, 1});
  ExpectRefused(StatusCode::kUnauthenticated, "timestamp: 0 valid signatures");
}

TEST_F(OtaClientTest, SignatureOverOtherBytesIsRejected) {
  Result<Envelope> e = Envelope::Parse(repo_->files().at("timestamp.json"), 1 << 20);
  ASSERT_TRUE(e.ok());
  e->signed_part["version"] = e->signed_part.Find("version")->as_int() + 1;  // signature kept
  fetcher_.files["timestamp.json"] = e->Serialize();
  ExpectRefused(StatusCode::kUnauthenticated, "timestamp");
}

// (2) Threshold bypass.
TEST_F(OtaClientTest, DuplicatedSignaturesCountOnce) {
  // The team raises the timestamp threshold to 2 of 2 keys.
  AdvanceDays(0.1);
  ASSERT_TRUE(repo_->RotateKeys(Role::kTimestamp, {{Key('x'), Key('y')}, 2}, Now()).ok());
  Serve();
  ASSERT_TRUE(client_->Refresh().ok());
  state_ = State();
  // An attacker holding only key 'x' repeats its signature.
  TimestampMeta ts = repo_->timestamp();
  ts.version += 1;
  Envelope e = SignEnvelope(ts.ToJson(), std::vector<KeyPair>{Key('x')});
  e.signatures.push_back(e.signatures[0]);
  fetcher_.files["timestamp.json"] = e.Serialize();
  ExpectRefused(StatusCode::kUnauthenticated, "1 valid signatures by distinct authorized keys, "
                                              "threshold 2");
}

TEST_F(OtaClientTest, RootListingAKeyIdTwiceIsRejected) {
  RootMeta root = repo_->root();
  root.version = 2;
  RoleKeys& ts = root.roles["timestamp"];
  ts.keyids.push_back(ts.keyids[0]);  // one key listed twice to meet threshold 2
  ts.threshold = 2;
  Json j = root.ToJson();
  ServeSigned("2.root.json", j, std::vector<KeyPair>{Key('r')});
  ExpectRefused(StatusCode::kInvalidArgument, "twice");
}

// (3) Rollback.
TEST_F(OtaClientTest, OlderTimestampSnapshotOrTargetsAreRejected) {
  const auto old_files = repo_->files();
  AdvanceDays(0.1);
  ASSERT_TRUE(repo_->AddTarget("student/model.onnx", "model v2", ModelFields(2), Now()).ok());
  Serve();
  ASSERT_TRUE(client_->Refresh().ok());
  state_ = State();
  // Replay of the whole older repository.
  fetcher_.files = old_files;
  ExpectRefused(StatusCode::kFailedPrecondition, "timestamp: version 2 is older than trusted");
  // A fresh timestamp that points at an older snapshot (signed with the real timestamp key,
  // e.g. by a compromised timestamp server).
  Serve();
  TimestampMeta ts = repo_->timestamp();
  ts.version += 1;
  ts.snapshot.version -= 1;
  ServeSigned("timestamp.json", ts.ToJson(), repo_->signers(Role::kTimestamp).keys);
  ExpectRefused(StatusCode::kFailedPrecondition, "snapshot version");
  // A newer snapshot that lists an older targets.json.
  Serve();
  SnapshotMeta snap = repo_->snapshot();
  snap.version += 1;
  snap.meta["targets.json"].version -= 1;
  snap.meta["targets.json"].length = -1;
  snap.meta["targets.json"].sha256.clear();
  ServeSnapshotAndTimestamp(snap);
  ExpectRefused(StatusCode::kFailedPrecondition, "'targets.json' version");
}

// (4) Mix and match.
TEST_F(OtaClientTest, SnapshotOrTargetsThatDoNotMatchTheirReferenceAreRejected) {
  const auto old_files = repo_->files();
  AdvanceDays(0.1);
  ASSERT_TRUE(repo_->AddTarget("student/model.onnx", "model v2", ModelFields(2), Now()).ok());
  Serve();
  // The new timestamp with the old snapshot.
  fetcher_.files["snapshot.json"] = old_files.at("snapshot.json");
  ExpectRefused(StatusCode::kDataLoss, "snapshot");
  // The new snapshot with the old targets.
  Serve();
  fetcher_.files["targets.json"] = old_files.at("targets.json");
  ExpectRefused(StatusCode::kDataLoss, "targets");
  // Versions that disagree while lengths and hashes are not given.
  Serve();
  SnapshotMeta snap = repo_->snapshot();
  snap.version += 5;
  ServeSigned("snapshot.json", snap.ToJson(), repo_->signers(Role::kSnapshot).keys);
  TimestampMeta ts = repo_->timestamp();
  ts.version += 1;
  ts.snapshot = {snap.version - 1, -1, ""};
  ServeSigned("timestamp.json", ts.ToJson(), repo_->signers(Role::kTimestamp).keys);
  ExpectRefused(StatusCode::kFailedPrecondition, "the timestamp says");
}

// (5) Root chain.
TEST_F(OtaClientTest, RootChainMustNotSkipAVersionAndNeedsOldAndNewKeys) {
  AdvanceDays(0.1);
  ASSERT_TRUE(repo_->RotateKeys(Role::kTargets, {{Key('T')}, 1}, Now()).ok());  // root v2
  ASSERT_TRUE(repo_->RotateKeys(Role::kTargets, {{Key('U')}, 1}, Now()).ok());  // root v3
  Serve();
  // v3 served where v2 belongs.
  fetcher_.files["2.root.json"] = repo_->files().at("3.root.json");
  ExpectRefused(StatusCode::kFailedPrecondition, "expected 2");
  // A v2 signed only by a new root key.
  Serve();
  RootMeta r2 = repo_->root();
  r2.version = 2;
  const KeyPair new_root = Key('R');
  r2.keys[new_root.Id()] = new_root.public_key;
  r2.roles["root"] = {{new_root.Id()}, 1};
  ServeSigned("2.root.json", r2.ToJson(), {&new_root, 1});
  fetcher_.files.erase("3.root.json");
  ExpectRefused(StatusCode::kUnauthenticated, "by the trusted root's keys");
  // The real chain works.
  Serve();
  ASSERT_TRUE(client_->Refresh().ok());
  EXPECT_EQ(client_->trusted().root().version, 3);
}

// (6) Fast-forward recovery.
TEST_F(OtaClientTest, KeyRotationRecoversFromAFastForwardedTimestamp) {
  // An attacker with the (compromised) timestamp key pushes version 1000.
  TimestampMeta evil = repo_->timestamp();
  evil.version = 1000;
  ServeSigned("timestamp.json", evil.ToJson(), repo_->signers(Role::kTimestamp).keys);
  ASSERT_TRUE(client_->Refresh().ok());
  EXPECT_EQ(client_->trusted().timestamp()->version, 1000);
  // The team rotates the timestamp key; its versions are far below 1000.
  AdvanceDays(0.1);
  ASSERT_TRUE(repo_->RotateKeys(Role::kTimestamp, {{Key('z')}, 1}, Now()).ok());
  Serve();
  const Status s = client_->Refresh();
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_LT(client_->trusted().timestamp()->version, 1000);
  EXPECT_EQ(client_->trusted().root().version, 2);
}

// (7) Freeze.
TEST_F(OtaClientTest, ExpiredMetadataIsRefusedAndAClockTurnedBackDoesNotReviveIt) {
  AdvanceDays(2);  // the timestamp (1 day) has expired; the server keeps serving it
  ExpectRefused(StatusCode::kDeadlineExceeded, "timestamp: expired");
  // The device still has its model: the trusted targets are intact.
  EXPECT_TRUE(client_->FetchTarget("student/model.onnx").ok());
  // After a restart with the clock turned back 10 days, the frozen timestamp is still refused:
  // the client remembers the latest time it saw.
  clock_ = std::make_unique<ManualClock>(0, (kStart - 10 * 86400) * 1000000);
  client_ = Open();
  ASSERT_NE(client_, nullptr);
  ExpectRefused(StatusCode::kDeadlineExceeded, "timestamp: expired");
  // Once the server signs a fresh timestamp, updates flow again.
  ASSERT_TRUE(repo_->RefreshTimestamp(kStart + 2 * 86400).ok());
  Serve();
  EXPECT_TRUE(client_->Refresh().ok());
}

// (8) Endless data.
TEST_F(OtaClientTest, AnEndlessMetadataStreamIsCutAtTheLimit) {
  EndlessFetcher endless(fetcher_, "timestamp.json");
  auto client = Client::Open(*DefaultEnv(), dir_, shipped_root_, endless, *clock_);
  ASSERT_TRUE(client.ok());
  const Status s = (*client)->Refresh();
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted);
  EXPECT_LE(endless.produced, (int64_t{1} << 20) + 4096);
  EXPECT_EQ(State(), state_);
}

// (9) Persist before verify.
TEST_F(OtaClientTest, AFailureLateInTheChainPersistsNothing) {
  AdvanceDays(0.1);
  ASSERT_TRUE(repo_->RotateKeys(Role::kTargets, {{Key('T')}, 1}, Now()).ok());
  Serve();
  // Root v2 and the timestamp verify; the targets file is corrupt.
  std::string& targets = fetcher_.files["targets.json"];
  targets[targets.size() / 2] ^= 1;
  ExpectRefused(StatusCode::kDataLoss, "targets");
  EXPECT_EQ(client_->trusted().root().version, 1);  // root v2 was not kept either
}

// (10) Path traversal.
TEST_F(OtaClientTest, TargetNamesThatEscapeAreRejected) {
  for (const char* name : {"../etc/passwd", "/abs", "a//b", "a/./b", "a\\b", "a/.."}) {
    EXPECT_EQ(repo_->AddTarget(name, "x", Json(), Now()).code(), StatusCode::kInvalidArgument)
        << name;
    EXPECT_EQ(client_->FetchTarget(name).status().code(), StatusCode::kInvalidArgument) << name;
  }
  // Signed by the real targets key all the same.
  Json targets = repo_->targets().ToJson();
  targets["version"] = repo_->targets().version + 1;
  targets["targets"]["../escape.onnx"]["length"] = 1;
  targets["targets"]["../escape.onnx"]["hashes"]["sha256"] = Sha256Hex("x");
  ServeSigned("targets.json", targets, repo_->signers(Role::kTargets).keys);
  SnapshotMeta snap = repo_->snapshot();
  snap.version += 1;
  snap.meta["targets.json"] = {repo_->targets().version + 1, -1, ""};
  ServeSnapshotAndTimestamp(snap);
  ExpectRefused(StatusCode::kInvalidArgument, "'../escape.onnx'");
}

TEST_F(OtaClientTest, CorruptStateFileIsDataLoss) {
  ASSERT_TRUE(DefaultEnv()->WriteFileAtomic(dir_ + "/trusted.json", "{not json").ok());
  auto c = Client::Open(*DefaultEnv(), dir_, shipped_root_, fetcher_, *clock_);
  EXPECT_EQ(c.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("trusted.json"));
}

}  // namespace
}  // namespace hml::ota

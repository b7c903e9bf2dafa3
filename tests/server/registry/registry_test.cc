// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The registry service end to end on a temp directory: publish, rollout, rollback and key
// rotation, each checked in the Store, in the signed targets metadata (custom fields as
// docs/ota.md documents them), and by a device ota::Client that refreshes from the repo/
// directory as a static server would serve it. Failures must leave the store and every file
// byte-identical.
#include "src/server/registry/registry.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "src/ota/client.h"
#include "src/ota/delta.h"
#include "src/server/registry/keys.h"

namespace hml::server {
namespace {

namespace fs = std::filesystem;
using ota::Json;
using ::testing::HasSubstr;

constexpr int64_t kStart = 1'800'000'000;  // 2027-01-15
constexpr const char* kNodeTests = "/usr/share/libonnx-testdata/data/node";

// Serves the files of a repository directory, as a static HTTP server would.
class DirFetcher : public ota::Fetcher {
 public:
  explicit DirFetcher(std::string dir) : dir_(std::move(dir)) {}
  Result<std::string> Fetch(const std::string& name, int64_t max_bytes) override {
    return DefaultEnv()->ReadFile(dir_ + "/" + name, max_bytes);
  }

 private:
  std::string dir_;
};

// Every file under `dir` by relative path, with its bytes.
std::map<std::string, std::string> ReadTree(const std::string& dir) {
  std::map<std::string, std::string> files;
  if (!fs::exists(dir)) return files;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    files[fs::relative(entry.path(), dir).string()] = *DefaultEnv()->ReadFile(entry.path());
  }
  return files;
}

// The store's whole content as text, to compare before and after a failed operation.
std::string StoreDump(Registry& registry) {
  auto models = registry.List();
  EXPECT_TRUE(models.ok()) << models.status().ToString();
  std::string out;
  for (const ModelSummary& m : *models) {
    for (const ModelVersion& v : m.versions) {
      out += m.name + " " + std::to_string(v.version) + " " + v.semver + " " + v.sha256 + " " +
             std::to_string(v.length) + " " + v.blob + " " + v.metadata_json + "\n";
    }
    for (const ChannelState& c : m.channels) {
      out += m.name + " channel " + c.channel + " " + std::to_string(c.version) + " " +
             std::to_string(c.percent) + " " + std::to_string(c.previous_version) + "\n";
    }
  }
  return out;
}

class RegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kNodeTests)) GTEST_SKIP() << kNodeTests << " is missing (libonnx-testdata)";
    base_ = ::testing::TempDir() + "/registry_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(base_);
    fs::create_directories(base_ + "/device");
    dir_ = base_ + "/registry";
    key_dir_ = base_ + "/keys";
    model_v1_ = std::string(kNodeTests) + "/test_relu/model.onnx";
    model_v2_ = std::string(kNodeTests) + "/test_abs/model.onnx";
    clock_ = std::make_unique<ManualClock>(0, kStart * 1000000);
    ASSERT_TRUE(InitKeyDir(key_dir_).ok());
    registry_ = Open();
    ASSERT_NE(registry_, nullptr);
    fetcher_ = std::make_unique<DirFetcher>(dir_ + "/repo");
    // The app ships the first root; every later one reaches the device through the chain.
    shipped_root_ = *DefaultEnv()->ReadFile(dir_ + "/repo/1.root.json");
    auto client =
        ota::Client::Open(*DefaultEnv(), base_ + "/device", shipped_root_, *fetcher_, *clock_);
    ASSERT_TRUE(client.ok()) << client.status().ToString();
    client_ = std::move(*client);
    ExpectDeviceVerifies();
  }
  void TearDown() override { fs::remove_all(base_); }

  std::unique_ptr<Registry> Open() {
    auto keys = LoadKeyDir(*DefaultEnv(), key_dir_);
    EXPECT_TRUE(keys.ok()) << keys.status().ToString();
    if (!keys.ok()) return nullptr;
    RegistryOptions options;
    options.create_if_missing = true;
    auto r = Registry::Open(*DefaultEnv(), *clock_, dir_, std::move(*keys), options);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(*r) : nullptr;
  }

  // The device refreshes from repo/ and verifies every role; its targets are the registry's.
  void ExpectDeviceVerifies() {
    clock_->Advance(int64_t{60} * 1000000000);  // a minute passes between operations
    const Status s = client_->Refresh();
    ASSERT_TRUE(s.ok()) << s.ToString();
    ASSERT_TRUE(client_->trusted().targets().has_value());
    EXPECT_EQ(client_->trusted().targets()->version, registry_->repository().targets().version);
    EXPECT_EQ(client_->trusted().root().version, registry_->repository().root().version);
  }

  const ota::TargetFile& Target(const std::string& name) {
    static const ota::TargetFile kMissing;
    const auto& targets = registry_->repository().targets().targets;
    auto it = targets.find(name);
    EXPECT_NE(it, targets.end()) << "no target " << name;
    return it == targets.end() ? kMissing : it->second;
  }
  Json Channels(const std::string& target) {
    const Json* c = Target(target).custom.Find("channels");
    return c == nullptr ? Json() : *c;
  }
  static Json Object(std::initializer_list<std::pair<const char*, int64_t>> members) {
    Json o = Json::Object{};
    for (const auto& [k, v] : members) o[k] = v;
    return o;
  }

  void PublishTwo() {
    ASSERT_TRUE(registry_->Publish(model_v1_, "m", "1.0.0", R"({"accuracy":91})").ok());
    ExpectDeviceVerifies();
    clock_->Advance(int64_t{60} * 1000000000);
    auto v2 = registry_->Publish(model_v2_, "m", "1.1.0", "");
    ASSERT_TRUE(v2.ok()) << v2.status().ToString();
    ExpectDeviceVerifies();
  }

  // Everything a failed operation must leave as it was.
  struct Snapshot {
    std::map<std::string, std::string> repo, blobs;
    std::string store;
    std::map<std::string, std::string> repo_in_memory;
  };
  Snapshot Take() {
    return {ReadTree(dir_ + "/repo"), ReadTree(dir_ + "/blobs"), StoreDump(*registry_),
            registry_->repository().files()};
  }
  void ExpectUnchanged(const Snapshot& before) {
    const Snapshot after = Take();
    EXPECT_EQ(after.repo, before.repo) << "a file under repo/ changed";
    EXPECT_EQ(after.blobs, before.blobs) << "a file under blobs/ changed";
    EXPECT_EQ(after.store, before.store) << "the store changed";
    EXPECT_EQ(after.repo_in_memory, before.repo_in_memory) << "the in-memory repository changed";
  }

  std::string base_, dir_, key_dir_, model_v1_, model_v2_, shipped_root_;
  std::unique_ptr<ManualClock> clock_;
  std::unique_ptr<Registry> registry_;
  std::unique_ptr<DirFetcher> fetcher_;
  std::unique_ptr<ota::Client> client_;
};

TEST_F(RegistryTest, PublishAddsSignedTargetsWithCustomFieldsAndAWorkingDelta) {
  PublishTwo();
  const std::string v1 = *DefaultEnv()->ReadFile(model_v1_);
  const std::string v2 = *DefaultEnv()->ReadFile(model_v2_);

  const ota::TargetFile& t1 = Target("m/1.onnx");
  EXPECT_EQ(t1.length, static_cast<int64_t>(v1.size()));
  EXPECT_EQ(t1.sha256, ota::Sha256Hex(v1));
  Json want1 = Json::Object{};
  want1["model"] = "m";
  want1["version"] = 1;
  want1["semver"] = "1.0.0";
  want1["parent"] = 0;
  want1["channels"] = Json::Object{};
  want1["metadata"] = Object({{"accuracy", 91}});
  EXPECT_EQ(CanonicalJson(t1.custom), CanonicalJson(want1));

  const ota::TargetFile& t2 = Target("m/2.onnx");
  EXPECT_EQ(t2.sha256, ota::Sha256Hex(v2));
  Json want2 = Json::Object{};
  want2["model"] = "m";
  want2["version"] = 2;
  want2["semver"] = "1.1.0";
  want2["parent"] = 1;
  want2["channels"] = Json::Object{};
  want2["delta_from"] = 1;
  want2["metadata"] = Json::Object{};
  EXPECT_EQ(CanonicalJson(t2.custom), CanonicalJson(want2));

  const ota::TargetFile& d = Target("m/2.from-1.delta");
  EXPECT_EQ(d.custom.Find("model")->as_string(), "m");
  EXPECT_EQ(d.custom.Find("version")->as_int(), 2);
  EXPECT_EQ(d.custom.Find("from")->as_int(), 1);
  EXPECT_EQ(d.custom.as_object().size(), 3u);

  // The device fetches the delta through the verified metadata and rebuilds v2 from v1.
  auto delta = client_->FetchTarget("m/2.from-1.delta");
  ASSERT_TRUE(delta.ok()) << delta.status().ToString();
  auto rebuilt = ota::ApplyDelta(v1, *delta, t2.length);
  ASSERT_TRUE(rebuilt.ok()) << rebuilt.status().ToString();
  EXPECT_EQ(*rebuilt, v2);
  auto full = client_->FetchTarget("m/2.onnx");
  ASSERT_TRUE(full.ok()) << full.status().ToString();
  EXPECT_EQ(*full, v2);

  // The store has both versions, blobs named by their hash.
  auto versions = registry_->store().ListVersions("m");
  ASSERT_TRUE(versions.ok());
  ASSERT_EQ(versions->size(), 2u);
  EXPECT_EQ((*versions)[1].semver, "1.1.0");
  EXPECT_EQ((*versions)[1].blob, ota::Sha256Hex(v2));
  EXPECT_EQ(*DefaultEnv()->ReadFile(dir_ + "/blobs/" + ota::Sha256Hex(v2)), v2);
}

TEST_F(RegistryTest, RolloutAndRollbackRewriteChannelsAsDocumented) {
  PublishTwo();
  ASSERT_TRUE(registry_->Rollout("m", 1, "stable", 100).ok());
  ExpectDeviceVerifies();
  EXPECT_EQ(Channels("m/1.onnx"), Object({{"stable", 100}}));
  EXPECT_EQ(Channels("m/2.onnx"), Json(Json::Object{}));

  // 50 %: the new version at 50, the previous one keeps 100 for the other devices.
  ASSERT_TRUE(registry_->Rollout("m", 2, "stable", 50).ok());
  ExpectDeviceVerifies();
  EXPECT_EQ(Channels("m/2.onnx"), Object({{"stable", 50}}));
  EXPECT_EQ(Channels("m/1.onnx"), Object({{"stable", 100}}));
  // What the device trusts says the same.
  const Json* device_channels =
      client_->trusted().targets()->targets.at("m/2.onnx").custom.Find("channels");
  ASSERT_NE(device_channels, nullptr);
  EXPECT_EQ(*device_channels, Object({{"stable", 50}}));
  auto state = registry_->store().GetChannel("m", "stable");
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(state->version, 2);
  EXPECT_EQ(state->percent, 50);
  EXPECT_EQ(state->previous_version, 1);

  // A second channel is independent.
  ASSERT_TRUE(registry_->Rollout("m", 2, "beta", 100).ok());
  ExpectDeviceVerifies();
  EXPECT_EQ(Channels("m/2.onnx"), Object({{"beta", 100}, {"stable", 50}}));

  // Rollback: the bad version loses the channel, the previous one has it at 100.
  ASSERT_TRUE(registry_->Rollback("m", "stable").ok());
  ExpectDeviceVerifies();
  EXPECT_EQ(Channels("m/2.onnx"), Object({{"beta", 100}}));
  EXPECT_EQ(Channels("m/1.onnx"), Object({{"stable", 100}}));
  state = registry_->store().GetChannel("m", "stable");
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(state->version, 1);
  EXPECT_EQ(state->percent, 100);
  EXPECT_EQ(state->previous_version, 0);

  // One step of history: a second rollback is refused and changes nothing.
  const Snapshot before = Take();
  const Status again = registry_->Rollback("m", "stable");
  EXPECT_EQ(again.code(), StatusCode::kFailedPrecondition) << again.ToString();
  ExpectUnchanged(before);
}

TEST_F(RegistryTest, ReopenedRegistrySeesTheSameStateAndKeepsPublishing) {
  PublishTwo();
  ASSERT_TRUE(registry_->Rollout("m", 2, "stable", 30).ok());
  ExpectDeviceVerifies();
  const std::map<std::string, std::string> files = registry_->repository().files();
  const std::string targets = CanonicalJson(registry_->repository().targets().ToJson());
  const std::string store = StoreDump(*registry_);

  registry_.reset();  // releases the lock
  registry_ = Open();
  ASSERT_NE(registry_, nullptr);
  EXPECT_EQ(CanonicalJson(registry_->repository().targets().ToJson()), targets);
  EXPECT_EQ(registry_->repository().files(), files);
  EXPECT_EQ(StoreDump(*registry_), store);

  // It continues the version sequence of every role, so the device accepts what follows.
  auto v3 = registry_->Publish(model_v1_, "m", "2.0.0", "");
  ASSERT_TRUE(v3.ok()) << v3.status().ToString();
  EXPECT_EQ(v3->version, 3);
  EXPECT_EQ(Target("m/3.from-2.delta").custom.Find("from")->as_int(), 2);
  EXPECT_EQ(Channels("m/2.onnx"), Object({{"stable", 30}}));
  ExpectDeviceVerifies();
}

TEST_F(RegistryTest, KeyRotationOfEveryRoleKeepsDevicesVerifying) {
  PublishTwo();
  for (ota::Role role :
       {ota::Role::kTimestamp, ota::Role::kSnapshot, ota::Role::kTargets, ota::Role::kRoot}) {
    SCOPED_TRACE(std::string(ota::RoleName(role)));
    const std::string old_key = *DefaultEnv()->ReadFile(KeyFilePath(key_dir_, role));
    const int64_t root_version = registry_->repository().root().version;
    const Status s = RotateRoleKey(*registry_, key_dir_, role);
    ASSERT_TRUE(s.ok()) << s.ToString();
    EXPECT_EQ(registry_->repository().root().version, root_version + 1);
    EXPECT_NE(*DefaultEnv()->ReadFile(KeyFilePath(key_dir_, role)), old_key);
    EXPECT_FALSE(fs::exists(KeyFilePath(key_dir_, role) + ".new"));
    EXPECT_TRUE(fs::exists(dir_ + "/repo/" + std::to_string(root_version + 1) + ".root.json"));
    ExpectDeviceVerifies();

    // The key directory now matches the repository: a reopened registry signs and the device
    // accepts it.
    registry_.reset();
    registry_ = Open();
    ASSERT_NE(registry_, nullptr);
    ASSERT_TRUE(registry_->Rollout("m", 2, "stable", 10 + static_cast<int>(role)).ok());
    ExpectDeviceVerifies();
  }
  // A device that shipped with root version 1 walks the whole chain on its first refresh.
  fs::create_directories(base_ + "/device2");
  auto fresh =
      ota::Client::Open(*DefaultEnv(), base_ + "/device2", shipped_root_, *fetcher_, *clock_);
  ASSERT_TRUE(fresh.ok());
  const Status s = (*fresh)->Refresh();
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ((*fresh)->trusted().root().version, 5);
}

TEST_F(RegistryTest, WrongKeysAreRefusedAtOpen) {
  registry_.reset();
  ASSERT_TRUE(InitKeyDir(base_ + "/other_keys").ok());
  auto keys = LoadKeyDir(*DefaultEnv(), base_ + "/other_keys");
  ASSERT_TRUE(keys.ok());
  auto r = Registry::Open(*DefaultEnv(), *clock_, dir_, std::move(*keys));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition) << r.status().ToString();
  EXPECT_THAT(r.status().ToString(), HasSubstr("root"));
}

TEST_F(RegistryTest, SecondOpenIsRefusedWhileTheFirstHoldsTheLock) {
  auto keys = LoadKeyDir(*DefaultEnv(), key_dir_);
  ASSERT_TRUE(keys.ok());
  auto second = Registry::Open(*DefaultEnv(), *clock_, dir_, std::move(*keys));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kUnavailable) << second.status().ToString();
}

TEST_F(RegistryTest, MissingRegistryIsNotFoundUnlessCreating) {
  auto keys = LoadKeyDir(*DefaultEnv(), key_dir_);
  ASSERT_TRUE(keys.ok());
  auto r = Registry::Open(*DefaultEnv(), *clock_, base_ + "/nothing", std::move(*keys));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(r.status().ToString(), HasSubstr("nothing"));
  EXPECT_FALSE(fs::exists(base_ + "/nothing"));
}

TEST_F(RegistryTest, FailedOperationsLeaveStoreAndFilesByteIdentical) {
  PublishTwo();
  ASSERT_TRUE(registry_->Rollout("m", 2, "stable", 50).ok());
  const Snapshot before = Take();

  // Not ONNX: refused before anything is written.
  const std::string garbage = base_ + "/garbage.onnx";
  ASSERT_TRUE(DefaultEnv()->WriteFileAtomic(garbage, "not a model").ok());
  Result<ModelVersion> v = registry_->Publish(garbage, "m", "9.0.0", "");
  EXPECT_EQ(v.status().code(), StatusCode::kInvalidArgument) << v.status().ToString();
  EXPECT_THAT(v.status().ToString(), HasSubstr("garbage.onnx"));
  ExpectUnchanged(before);

  // A semver the store refuses: the blob, the target files and the metadata were written
  // before the store said no, and are all put back (the new files removed).
  v = registry_->Publish(model_v1_, "m", "not-a-semver", "");
  EXPECT_EQ(v.status().code(), StatusCode::kInvalidArgument) << v.status().ToString();
  ExpectUnchanged(before);
  EXPECT_FALSE(fs::exists(dir_ + "/repo/targets/m/3.onnx"));

  // A new model refused by the store: its target directory is removed again too.
  v = registry_->Publish(model_v1_, "fresh", "bad", "");
  EXPECT_EQ(v.status().code(), StatusCode::kInvalidArgument) << v.status().ToString();
  ExpectUnchanged(before);
  EXPECT_FALSE(fs::exists(dir_ + "/repo/targets/fresh"));

  v = registry_->Publish(model_v1_, "m", "1.0.0", "");
  EXPECT_EQ(v.status().code(), StatusCode::kAlreadyExists) << v.status().ToString();
  v = registry_->Publish(model_v1_, "m", "3.0.0", "[1]");
  EXPECT_EQ(v.status().code(), StatusCode::kInvalidArgument) << v.status().ToString();
  v = registry_->Publish(base_ + "/missing.onnx", "m", "3.0.0", "");
  EXPECT_EQ(v.status().code(), StatusCode::kNotFound) << v.status().ToString();
  ExpectUnchanged(before);

  Status s = registry_->Rollout("m", 7, "stable", 50);
  EXPECT_EQ(s.code(), StatusCode::kNotFound) << s.ToString();
  EXPECT_THAT(s.ToString(), HasSubstr("no version 7"));
  s = registry_->Rollout("nope", 1, "stable", 50);
  EXPECT_EQ(s.code(), StatusCode::kNotFound) << s.ToString();
  s = registry_->Rollout("m", 2, "stable", 0);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
  s = registry_->Rollout("m", 2, "bad/channel", 10);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
  s = registry_->Rollout("m", 1, "stable", 100);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.ToString();
  s = registry_->Rollback("m", "nightly");
  EXPECT_EQ(s.code(), StatusCode::kNotFound) << s.ToString();
  ExpectUnchanged(before);

  // The failures consumed nothing: the next publish is version 3, and the device still
  // verifies.
  v = registry_->Publish(model_v1_, "m", "3.0.0", "");
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->version, 3);
  ExpectDeviceVerifies();
}

TEST(RegistryKeysTest, InitRefusesToOverwriteAndKeyFilesArePrivate) {
  const std::string dir = ::testing::TempDir() + "/registry_keys_test";
  fs::remove_all(dir);
  ASSERT_TRUE(InitKeyDir(dir).ok());
  struct stat st;
  ASSERT_EQ(::stat(KeyFilePath(dir, ota::Role::kTargets).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const std::string before = *DefaultEnv()->ReadFile(KeyFilePath(dir, ota::Role::kRoot));
  const Status again = InitKeyDir(dir);
  EXPECT_EQ(again.code(), StatusCode::kAlreadyExists) << again.ToString();
  EXPECT_EQ(*DefaultEnv()->ReadFile(KeyFilePath(dir, ota::Role::kRoot)), before);

  auto keys = LoadKeyDir(*DefaultEnv(), dir);
  ASSERT_TRUE(keys.ok()) << keys.status().ToString();
  EXPECT_EQ(keys->root.keys.size(), 1u);
  EXPECT_NE(keys->root.keys[0].Id(), keys->targets.keys[0].Id());

  ::chmod(KeyFilePath(dir, ota::Role::kSnapshot).c_str(), 0644);
  auto readable = LoadKeyDir(*DefaultEnv(), dir);
  EXPECT_EQ(readable.status().code(), StatusCode::kPermissionDenied);
  ::chmod(KeyFilePath(dir, ota::Role::kSnapshot).c_str(), 0600);

  ASSERT_TRUE(DefaultEnv()->WriteFileAtomic(KeyFilePath(dir, ota::Role::kRoot) + ".new", "x").ok());
  auto interrupted = LoadKeyDir(*DefaultEnv(), dir);
  EXPECT_EQ(interrupted.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(interrupted.status().ToString(), HasSubstr("root.key.new"));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace hml::server

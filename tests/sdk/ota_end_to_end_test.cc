// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The whole OTA path, in one process: the registry publishes signed versions of a model into its
// repository directory (exactly what a static HTTP server or `hybridml serve` would serve), a
// rollout releases them, and devices running the SDK's ModelUpdater refresh the metadata, pick
// their version by rollout bucket, download (full file or delta), install, and run the installed
// model in a Session.
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>

#include "hml/runtime/model.h"
#include "hml/runtime/session.h"
#include "src/ota/rollout.h"
#include "src/runtime/onnx_io.h"
#include "src/sdk/updater.h"
#include "src/server/registry/keys.h"
#include "src/server/registry/registry.h"
#include "tests/testing/models.h"

namespace hml {
namespace {

// Serves a repository directory: metadata through ota::Fetcher, model files by range.
class DirectoryServer : public ota::Fetcher, public sdk::ByteSource {
 public:
  explicit DirectoryServer(std::string dir) : dir_(std::move(dir)) {}
  Result<std::string> Fetch(const std::string& name, int64_t max_bytes) override {
    return DefaultEnv()->ReadFile(dir_ + "/" + name, max_bytes);
  }
  Result<std::string> FetchRange(const std::string& name, int64_t offset,
                                 int64_t max_bytes) override {
    HML_ASSIGN_OR_RETURN(std::string all, DefaultEnv()->ReadFile(dir_ + "/" + name));
    ++range_requests;
    if (offset >= static_cast<int64_t>(all.size())) return std::string();
    return all.substr(static_cast<size_t>(offset), static_cast<size_t>(max_bytes));
  }
  int range_requests = 0;

 private:
  std::string dir_;
};

// The 28x28 CNN with its classifier weights scaled by `scale`: versions of "the same" model that
// compute different outputs.
std::string CnnVersion(float scale) {
  runtime::Graph g = testing::Cnn28Graph();
  runtime::Value& fc = g.value(g.FindValue("fc.w"));
  Tensor w = *fc.constant->Clone();
  for (float& x : w.values<float>()) x *= scale;
  fc.constant = std::make_shared<const Tensor>(std::move(w));
  return *runtime::SerializeOnnxModel(g);
}

// The model's output on a fixed input.
std::vector<float> Outputs(const Model& model) {
  auto session = Session::Create(model);
  EXPECT_TRUE(session.ok()) << session.status().ToString();
  Tensor x = testing::RandomTensor({1, 1, 28, 28}, 7, 1.0f);
  auto y = (*session)->Run({&x, 1});
  EXPECT_TRUE(y.ok()) << y.status().ToString();
  auto v = (*y)[0].values<float>();
  return std::vector<float>(v.begin(), v.end());
}

std::vector<float> RunFile(const std::string& path) {
  auto model = Model::Load(path);
  EXPECT_TRUE(model.ok()) << model.status().ToString();
  return Outputs(*model);
}

class OtaEndToEndTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = ::testing::TempDir() + "/ota_e2e";
    std::filesystem::remove_all(base_);
    std::filesystem::create_directories(base_ + "/models");
    ASSERT_TRUE(server::InitKeyDir(base_ + "/keys").ok());
    auto keys = server::LoadKeyDir(*DefaultEnv(), base_ + "/keys");
    ASSERT_TRUE(keys.ok()) << keys.status().ToString();
    server::RegistryOptions options;
    options.create_if_missing = true;
    auto registry =
        server::Registry::Open(*DefaultEnv(), clock_, base_ + "/registry", std::move(*keys),
                               options);
    ASSERT_TRUE(registry.ok()) << registry.status().ToString();
    registry_ = std::move(*registry);
    server_ = std::make_unique<DirectoryServer>(registry_->repo_dir());
  }
  void TearDown() override { std::filesystem::remove_all(base_); }

  int64_t Publish(float scale, const std::string& semver) {
    const std::string path = base_ + "/models/v" + semver + ".onnx";
    EXPECT_TRUE(DefaultEnv()->WriteFileAtomic(path, CnnVersion(scale)).ok());
    auto v = registry_->Publish(path, "digits", semver, "{\"accuracy\": 99}");
    EXPECT_TRUE(v.ok()) << v.status().ToString();
    return v.ok() ? v->version : 0;
  }

  // A device: its own install dir, trusting the registry's first root (shipped with the app).
  std::unique_ptr<sdk::ModelUpdater> Device(const std::string& id) {
    sdk::UpdaterOptions o;
    o.device_id = id;
    o.model = "digits";
    o.install_dir = base_ + "/device-" + id;
    std::filesystem::create_directories(o.install_dir);
    const std::string root = *DefaultEnv()->ReadFile(registry_->repo_dir() + "/1.root.json");
    auto u = sdk::ModelUpdater::Open(o, root, *server_, *server_, clock_);
    EXPECT_TRUE(u.ok()) << u.status().ToString();
    return u.ok() ? std::move(*u) : nullptr;
  }

  // One device id in the first `percent` % of the rollout buckets of "digits" and one outside.
  static std::pair<std::string, std::string> DevicesAround(int percent) {
    std::string in, out;
    for (int i = 0; in.empty() || out.empty(); ++i) {
      const std::string id = "phone-" + std::to_string(i);
      (ota::InRollout(id, "digits", percent) ? in : out) = id;
    }
    return {in, out};
  }

  ManualClock clock_{0, int64_t{1'800'000'000} * 1'000'000};
  std::string base_;
  std::unique_ptr<server::Registry> registry_;
  std::unique_ptr<DirectoryServer> server_;
};

TEST_F(OtaEndToEndTest, PublishRolloutRefreshInstallRun) {
  const sdk::DeviceConditions wifi{/*unmetered=*/true, /*charging=*/false, /*idle=*/false};
  const int64_t v1 = Publish(1.0f, "1.0.0");
  ASSERT_EQ(v1, 1);
  auto [in, out] = DevicesAround(50);
  auto early = Device(in);
  auto late = Device(out);
  ASSERT_TRUE(early && late);
  // Published but not released: nothing to install.
  auto none = early->CheckForUpdate(wifi, false);
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_EQ(early->active_version(), 0);

  ASSERT_TRUE(registry_->Rollout("digits", v1, "stable", 100).ok());
  for (auto* device : {early.get(), late.get()}) {
    auto r = device->CheckForUpdate(wifi, false);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(device->active_version(), v1);
  }
  const std::vector<float> want_v1 = Outputs(*Model::FromOnnx(CnnVersion(1.0f)));
  EXPECT_EQ(RunFile(*early->ActiveModelPath()), want_v1);

  // Version 2 to half of the fleet: the device in the first half gets it (as a delta), the
  // other keeps version 1.
  clock_.Advance(int64_t{3600} * 1'000'000'000);
  const int64_t v2 = Publish(2.0f, "1.1.0");
  ASSERT_TRUE(registry_->Rollout("digits", v2, "stable", 50).ok());
  auto got = early->CheckForUpdate(wifi, false);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(early->active_version(), v2);
  EXPECT_TRUE(got->used_delta);
  ASSERT_TRUE(late->CheckForUpdate(wifi, false).ok());
  EXPECT_EQ(late->active_version(), v1);
  const std::vector<float> want_v2 = Outputs(*Model::FromOnnx(CnnVersion(2.0f)));
  ASSERT_NE(want_v1, want_v2);
  EXPECT_EQ(RunFile(*early->ActiveModelPath()), want_v2);
  EXPECT_EQ(RunFile(*late->ActiveModelPath()), want_v1);
  // The new model runs well: it is confirmed after its watched inferences.
  ASSERT_TRUE(early->ReportLoadResult(true).ok());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(early->ReportInference(true).ok());

  // A bad version 3 at 100 % reaches both; the registry rolls it back and both return to 2.
  clock_.Advance(int64_t{3600} * 1'000'000'000);
  const int64_t v3 = Publish(3.0f, "1.2.0");
  ASSERT_TRUE(registry_->Rollout("digits", v3, "stable", 100).ok());
  for (auto* device : {early.get(), late.get()}) {
    ASSERT_TRUE(device->CheckForUpdate(wifi, false).ok());
    EXPECT_EQ(device->active_version(), v3);
  }
  ASSERT_TRUE(registry_->Rollback("digits", "stable").ok());
  for (auto* device : {early.get(), late.get()}) {
    auto back = device->CheckForUpdate(wifi, false);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(device->active_version(), v2);
    EXPECT_EQ(RunFile(*device->ActiveModelPath()), want_v2);
  }
  // A metered network without "download now" fetches nothing at all.
  const int requests = server_->range_requests;
  const sdk::DeviceConditions cellular{false, false, false};
  EXPECT_EQ(late->CheckForUpdate(cellular, false).status().code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(server_->range_requests, requests);
}

}  // namespace
}  // namespace hml

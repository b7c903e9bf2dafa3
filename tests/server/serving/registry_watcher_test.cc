// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The model repository following a real registry (publish, rollout, rollback made through the
// Registry API, as `hybridml` does from another process), and hot reload under load through the
// HTTP front end: every request sent while versions come and go is answered.
#include "src/server/serving/registry_watcher.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <set>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "hml/clock.h"
#include "hml/env.h"
#include "src/base/file_util.h"
#include "src/server/http/http_server.h"
#include "src/server/metrics/metrics.h"
#include "src/server/registry/keys.h"
#include "src/server/registry/registry.h"
#include "tests/testing/models.h"

namespace hml::server {
namespace {

namespace fs = std::filesystem;
using Key = std::pair<std::string, int64_t>;

class RegistryWatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = ::testing::TempDir() + "/registry_watcher_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(base_);
    fs::create_directories(base_);
    dir_ = base_ + "/registry";
    model_ = base_ + "/cnn.onnx";
    ASSERT_TRUE(Model::FromGraph(testing::Cnn28Graph())->Save(model_).ok());
    ASSERT_TRUE(InitKeyDir(base_ + "/keys").ok());
    auto keys = LoadKeyDir(*DefaultEnv(), base_ + "/keys");
    ASSERT_TRUE(keys.ok()) << keys.status().ToString();
    RegistryOptions options;
    options.create_if_missing = true;
    auto registry = Registry::Open(*DefaultEnv(), *RealClock(), dir_, std::move(*keys), options);
    ASSERT_TRUE(registry.ok()) << registry.status().ToString();
    registry_ = std::move(*registry);
  }
  void TearDown() override {
    registry_.reset();
    fs::remove_all(base_);
  }

  // Publishes the CNN as the next version of "m" and rolls "stable" out to it.
  int64_t PublishAndRollOut() {
    const std::string semver = std::to_string(++published_) + ".0.0";
    Result<ModelVersion> v = registry_->Publish(model_, "m", semver, "");
    EXPECT_TRUE(v.ok()) << v.status().ToString();
    if (!v.ok()) return 0;
    const Status s = registry_->Rollout("m", v->version, "stable", 100);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return v->version;
  }

  ModelRepository::SyncReport Sync(ModelRepository& repo) {
    auto report = repo.SyncWithRegistry(*DefaultEnv(), dir_);
    EXPECT_TRUE(report.ok()) << report.status().ToString();
    return report.ok() ? *report : ModelRepository::SyncReport{};
  }

  static std::vector<int64_t> Versions(const ModelRepository& repo) {
    auto m = repo.GetModel("m", 0);
    return m.ok() ? m->versions : std::vector<int64_t>{};
  }

  std::string base_, dir_, model_;
  std::unique_ptr<Registry> registry_;
  int published_ = 0;
};

TEST_F(RegistryWatcherTest, SyncFollowsPublishRolloutAndRollback) {
  ModelRepository repo;
  // Loaded by hand: a sync never unloads it.
  ASSERT_TRUE(repo.LoadModel("pinned", 1, *Model::FromGraph(testing::Cnn28Graph())).ok());
  EXPECT_TRUE(Sync(repo).loaded.empty());  // empty registry

  ASSERT_EQ(PublishAndRollOut(), 1);
  auto r = Sync(repo);
  EXPECT_EQ(r.loaded, (std::vector<Key>{{"m", 1}}));
  EXPECT_TRUE(r.unloaded.empty());

  // Published but released to no channel: not served.
  ASSERT_TRUE(registry_->Publish(model_, "m", "1.5.0", "").ok());
  ++published_;
  EXPECT_TRUE(Sync(repo).loaded.empty());
  EXPECT_EQ(Versions(repo), (std::vector<int64_t>{1}));

  // v2 current, v1 previous: both served, latest is 2.
  ASSERT_TRUE(registry_->Rollout("m", 2, "stable", 50).ok());
  r = Sync(repo);
  EXPECT_EQ(r.loaded, (std::vector<Key>{{"m", 2}}));
  EXPECT_EQ(Versions(repo), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(repo.GetModel("m", 0)->version, 2);

  // v3 current, v2 previous: v1 drops out of every channel and is unloaded.
  ASSERT_EQ(PublishAndRollOut(), 3);
  r = Sync(repo);
  EXPECT_EQ(r.loaded, (std::vector<Key>{{"m", 3}}));
  EXPECT_EQ(r.unloaded, (std::vector<Key>{{"m", 1}}));
  EXPECT_EQ(Versions(repo), (std::vector<int64_t>{2, 3}));

  // Rollback: the channel is back on v2 with no previous, so v3 is unloaded.
  ASSERT_TRUE(registry_->Rollback("m", "stable").ok());
  r = Sync(repo);
  EXPECT_TRUE(r.loaded.empty());
  EXPECT_EQ(r.unloaded, (std::vector<Key>{{"m", 3}}));
  EXPECT_EQ(repo.GetModel("m", 0)->version, 2);
  EXPECT_TRUE(repo.GetModel("pinned", 1).ok());

  // Nothing changed: a sync changes nothing.
  r = Sync(repo);
  EXPECT_TRUE(r.loaded.empty() && r.unloaded.empty() && r.failed.empty());
}

TEST_F(RegistryWatcherTest, AVersionThatFailsToLoadIsReportedOnceAndTheRestIsServed) {
  ASSERT_EQ(PublishAndRollOut(), 1);
  // A second model (other bytes, so its own blob) whose blob is damaged after publishing.
  const std::string other_path = base_ + "/other.onnx";
  ASSERT_TRUE(Model::FromGraph(testing::Cnn28Graph(/*opset=*/14))->Save(other_path).ok());
  Result<ModelVersion> other = registry_->Publish(other_path, "other", "1.0.0", "");
  ASSERT_TRUE(other.ok()) << other.status().ToString();
  ASSERT_TRUE(registry_->Rollout("other", 1, "stable", 100).ok());
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/blobs/" + other->blob, "not onnx", {}).ok());

  ModelRepository repo;
  auto r = Sync(repo);
  EXPECT_EQ(r.loaded, (std::vector<Key>{{"m", 1}}));
  ASSERT_EQ(r.failed.size(), 1u);
  EXPECT_NE(r.failed[0].message().find("model 'other' version 1"), std::string::npos)
      << r.failed[0].ToString();
  EXPECT_TRUE(repo.Ready());
  EXPECT_TRUE(repo.GetModel("m", 1).ok());
  EXPECT_EQ(repo.GetModel("other", 0).status().code(), StatusCode::kNotFound);
  // Blobs are immutable: the failure is not retried (and not reported again) by later syncs.
  EXPECT_TRUE(Sync(repo).failed.empty());
}

TEST_F(RegistryWatcherTest, AnUnreadableRegistryChangesNothing) {
  ASSERT_EQ(PublishAndRollOut(), 1);
  ModelRepository repo;
  ASSERT_EQ(Sync(repo).loaded.size(), 1u);
  auto r = repo.SyncWithRegistry(*DefaultEnv(), base_ + "/no-such-registry");
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(Versions(repo), (std::vector<int64_t>{1}));
}

TEST_F(RegistryWatcherTest, OptionsAreValidated) {
  ModelRepository repo;
  RegistryWatcherOptions options;
  options.interval_millis = 0;
  RegistryWatcher watcher(repo, *DefaultEnv(), dir_, options);
  EXPECT_EQ(watcher.Start().code(), StatusCode::kInvalidArgument);
}

// Hot reload under load: clients send to the latest version through the HTTP front end without
// pause while three new versions are published and rolled out and the watcher swaps them in;
// every request is answered with 200.
TEST_F(RegistryWatcherTest, HotReloadUnderLoadLosesNoRequest) {
  ASSERT_EQ(PublishAndRollOut(), 1);
  MetricsRegistry metrics;
  ModelRepository repo;
  ASSERT_TRUE(Sync(repo).failed.empty());
  HttpServerOptions http_options;
  http_options.port = 0;
  HttpServer http(repo, metrics, http_options);
  ASSERT_TRUE(http.Start().ok());
  RegistryWatcherOptions options;
  options.interval_millis = 20;
  options.logger = NullLogger();
  RegistryWatcher watcher(repo, *DefaultEnv(), dir_, options);
  ASSERT_TRUE(watcher.Start().ok());

  nlohmann::json body;
  nlohmann::json image;
  image["name"] = "image";
  image["shape"] = {1, 1, 28, 28};
  image["datatype"] = "FP32";
  image["data"] = std::vector<float>(28 * 28, 0.25f);
  body["inputs"] = nlohmann::json::array({image});
  const std::string request = body.dump();

  std::atomic<bool> stop{false};
  std::atomic<int> sent{0}, ok{0};
  std::vector<std::string> failures;
  std::mutex failures_mu;
  std::vector<std::thread> clients;
  for (int c = 0; c < 3; ++c) {
    clients.emplace_back([&] {
      httplib::Client client("127.0.0.1", http.port());
      while (!stop.load()) {
        ++sent;
        auto res = client.Post("/v2/models/m/infer", request, "application/json");
        if (res && res->status == 200) {
          ++ok;
        } else {
          std::lock_guard<std::mutex> lock(failures_mu);
          failures.push_back(res ? std::to_string(res->status) + " " + res->body
                                 : "transport error " + httplib::to_string(res.error()));
        }
      }
    });
  }
  std::set<std::string> versions_seen;
  for (int i = 0; i < 3; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const int64_t version = PublishAndRollOut();
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (repo.GetModel("m", 0)->version != version &&
           std::chrono::steady_clock::now() < give_up) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    EXPECT_EQ(repo.GetModel("m", 0)->version, version);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  stop = true;
  for (std::thread& t : clients) t.join();
  watcher.Stop();
  http.Stop();

  EXPECT_TRUE(failures.empty()) << failures.size() << " failed, first: " << failures.front();
  EXPECT_EQ(ok.load(), sent.load());
  EXPECT_GT(ok.load(), 30);
  // Version 4 current, 3 previous; 1 and 2 were unloaded while requests were flowing.
  EXPECT_EQ(Versions(repo), (std::vector<int64_t>{3, 4}));
  EXPECT_GE(watcher.syncs(), 3);
}

}  // namespace
}  // namespace hml::server

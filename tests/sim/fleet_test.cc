// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// A small fleet end to end: a registry publishes and rolls out the device model, a
// ModelRepository follows the registry and serves a different cloud model, two devices (wifi and
// 4g) install over their links and route labelled samples under each policy. The labels are the
// cloud model's own answers, so the cloud is always right and the device model (a scaled copy
// whose answers differ on some samples) is not: accuracy tells who answered.
#include "src/sim/fleet.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <memory>

#include "hml/runtime/session.h"
#include "proto/hybridml_device.pb.h"
#include "src/runtime/onnx_io.h"
#include "src/sdk/telemetry/energy.h"
#include "src/server/ingest/ingest_store.h"
#include "src/server/metrics/metrics.h"
#include "src/server/registry/keys.h"
#include "src/server/registry/registry.h"
#include "src/server/serving/model_repository.h"
#include "src/server/telemetry/telemetry_aggregator.h"
#include "src/sync/batch.h"
#include "tests/testing/models.h"

namespace hml::sim {
namespace {

// The test CNN with its classifier weights scaled and perturbed by `seed`.
std::string CnnVariant(float scale, uint64_t seed) {
  runtime::Graph g = testing::Cnn28Graph();
  runtime::Value& fc = g.value(g.FindValue("fc.w"));
  Tensor w = *fc.constant->Clone();
  Tensor noise = testing::RandomTensor(w.shape(), seed, 0.05f);
  for (int64_t i = 0; i < w.num_elements(); ++i) {
    w.data<float>()[i] = w.data<float>()[i] * scale + noise.data<float>()[i];
  }
  fc.constant = std::make_shared<const Tensor>(std::move(w));
  return *runtime::SerializeOnnxModel(g);
}

class FleetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = ::testing::TempDir() + "/fleet_test_" + std::to_string(::getpid());
    std::filesystem::remove_all(base_);
    std::filesystem::create_directories(base_ + "/models");
    ASSERT_TRUE(server::InitKeyDir(base_ + "/keys").ok());
    server::RegistryOptions options;
    options.create_if_missing = true;
    auto registry =
        server::Registry::Open(*DefaultEnv(), *RealClock(), base_ + "/registry",
                               *server::LoadKeyDir(*DefaultEnv(), base_ + "/keys"), options);
    ASSERT_TRUE(registry.ok()) << registry.status().ToString();
    registry_ = std::move(*registry);
    Publish("device", CnnVariant(1.0f, 21));
    Publish("cloud", CnnVariant(1.5f, 22));
    ASSERT_TRUE(repo_.SyncWithRegistry(*DefaultEnv(), base_ + "/registry").ok());

    // Samples labelled by the cloud model.
    Model cloud = *Model::FromGraph(*runtime::ParseOnnxModel(CnnVariant(1.5f, 22)));
    auto session = *Session::Create(cloud);
    std::vector<float> features;
    std::vector<int64_t> labels;
    for (int i = 0; i < 24; ++i) {
      Tensor x = testing::RandomTensor({1, 1, 28, 28}, 100 + i, 1.0f);
      std::vector<Tensor> y = *session->Run({&x, 1});
      auto probs = y[0].values<float>();
      labels.push_back(std::max_element(probs.begin(), probs.end()) - probs.begin());
      features.insert(features.end(), x.values<float>().begin(), x.values<float>().end());
    }
    dataset_ = *data::InMemoryDataset::Create({1, 28, 28}, 10, features, labels);
  }
  void TearDown() override { std::filesystem::remove_all(base_); }

  void Publish(const std::string& name, const std::string& bytes) {
    const std::string path = base_ + "/models/" + name + ".onnx";
    ASSERT_TRUE(DefaultEnv()->WriteFileAtomic(path, bytes).ok());
    auto v = registry_->Publish(path, name, "1.0.0", "{}");
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    ASSERT_TRUE(registry_->Rollout(name, v->version, "stable", 100).ok());
  }

  FleetOptions Options() {
    FleetOptions o;
    o.registry_dir = base_ + "/registry";
    o.device_model = "device";
    o.cloud_model = "cloud";
    o.backend = &repo_;
    o.dataset = dataset_.get();
    o.samples = 24;
    o.input_name = "image";
    o.devices = 2;
    o.link_profiles = {"wifi", "4g"};
    o.work_dir = base_ + "/devices";
    return o;
  }

  const PolicyRow& Row(const FleetReport& r, const std::string& policy, const std::string& link) {
    for (const PolicyRow& row : r.rows) {
      if (row.policy == policy && row.link == link) return row;
    }
    ADD_FAILURE() << "no row " << policy << "/" << link;
    return r.rows.front();
  }

  std::string base_;
  std::unique_ptr<server::Registry> registry_;
  server::ModelRepository repo_;
  std::shared_ptr<data::InMemoryDataset> dataset_;
};

TEST_F(FleetTest, DevicesInstallOverTheAirAndEachPolicyAnswersWhereItShould) {
  FleetOptions options = Options();
  options.policies = {sdk::RoutePolicy::kLocalOnly, sdk::RoutePolicy::kCloudOnly,
                      sdk::RoutePolicy::kCascade};
  server::MetricsRegistry metrics;
  auto aggregator = server::TelemetryAggregator::Create(metrics);
  ASSERT_TRUE(aggregator.ok());
  options.telemetry = [agg = aggregator->get()](std::string_view id,
                                                const hybridml::v1::TelemetryReport& r) {
    return agg->Report(id, r);
  };
  options.cascade_threshold = 1.1;  // never confident enough: every request is offloaded
  Result<FleetReport> report = RunFleet(options);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  std::printf("%s", FormatFleetTable(*report).c_str());

  ASSERT_EQ(report->installs.size(), 2u);
  const int64_t model_bytes = static_cast<int64_t>(CnnVariant(1.0f, 21).size());
  for (const InstallRow& i : report->installs) {
    EXPECT_EQ(i.version, 1);
    EXPECT_GE(i.bytes, model_bytes);  // the model file plus the signed metadata
  }
  // 3 policies x (all + 2 links).
  ASSERT_EQ(report->rows.size(), 9u);

  const PolicyRow& local = Row(*report, "local-only", "all");
  EXPECT_EQ(local.requests, 24);
  EXPECT_EQ(local.answered, 24);
  EXPECT_EQ(local.placements.at("local"), 24);
  EXPECT_EQ(local.offload, 0);
  EXPECT_EQ(local.bytes_sent_per_request, 0);
  EXPECT_LT(local.accuracy, 1.0);  // the device model disagrees with the cloud on some samples
  // Local energy is compute only: MACs x the default 1e-10 J/MAC, in mJ.
  const int64_t macs = *sdk::MacsOf(*Model::FromGraph(*runtime::ParseOnnxModel(CnnVariant(1, 21))));
  EXPECT_NEAR(local.energy_mj_per_request, 1000.0 * macs * 1e-10, 1e-9);

  const PolicyRow& cloud = Row(*report, "cloud-only", "all");
  EXPECT_EQ(cloud.answered, 24);
  EXPECT_EQ(cloud.accuracy, 1.0);
  EXPECT_EQ(cloud.offload, 1.0);
  EXPECT_GT(cloud.bytes_sent_per_request, 28 * 28 * 4);
  // The 4g devices pay the 50 ms round trip; the wifi ones 10 ms.
  EXPECT_GE(Row(*report, "cloud-only", "4g").p50_ms, 50.0);
  EXPECT_GE(Row(*report, "cloud-only", "wifi").p50_ms, 10.0);
  EXPECT_LT(Row(*report, "cloud-only", "wifi").p50_ms, Row(*report, "cloud-only", "4g").p50_ms);

  // The radio costs more than the device's compute on this small model.
  EXPECT_GT(cloud.energy_mj_per_request, local.energy_mj_per_request);

  // Every device reported after every policy; the server counted every request.
  EXPECT_EQ(report->telemetry_reports_sent, 6);
  EXPECT_EQ(report->telemetry_reports_failed, 0);
  const std::string exposition = metrics.Expose();
  double requests = 0;
  for (size_t at = exposition.find("\nhml_device_requests_total{"); at != std::string::npos;
       at = exposition.find("\nhml_device_requests_total{", at + 1)) {
    const size_t end = exposition.find('\n', at + 1);
    requests += std::stod(exposition.substr(exposition.rfind(' ', end) + 1));
  }
  EXPECT_EQ(requests, 3 * 24) << exposition;

  const PolicyRow& cascade = Row(*report, "cascade", "all");
  EXPECT_EQ(cascade.placements.at("cascade-offloaded"), 24);
  EXPECT_EQ(cascade.accuracy, 1.0);
  EXPECT_NE(FleetReportJson(*report).find("\"cascade-offloaded\": 24"), std::string::npos);
}

TEST_F(FleetTest, DevicesSyncTheirLabelsOnlyOnUnmeteredNetworksAndTheServerStoresThemSealed) {
  auto ingest = server::IngestStore::Open(base_ + "/ingest.db");
  ASSERT_TRUE(ingest.ok());
  Result<sync::IngestKeyPair> keys = sync::GenerateIngestKeyPair();
  ASSERT_TRUE(keys.ok());
  FleetOptions options = Options();
  options.policies = {sdk::RoutePolicy::kLocalOnly};
  options.ingest = ingest->get();
  options.ingest_public_key = keys->public_key;
  Result<FleetReport> report = RunFleet(options);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  ASSERT_EQ(report->sync.size(), 2u);
  const SyncRow& wifi = report->sync[0];
  const SyncRow& lte = report->sync[1];
  EXPECT_EQ(wifi.link, "wifi");
  EXPECT_EQ(wifi.collected, 12);
  EXPECT_EQ(wifi.uploaded, 12);
  EXPECT_EQ(wifi.batches, 1);
  EXPECT_EQ(wifi.blocked, "");
  EXPECT_EQ(wifi.error, "");
  EXPECT_EQ(lte.collected, 12);
  EXPECT_EQ(lte.uploaded, 0);
  EXPECT_NE(lte.blocked.find("metered"), std::string::npos) << lte.blocked;

  // The server holds one sealed batch; the training side opens it with the secret key and finds
  // the wifi device's samples with their labels (device 0 routed samples 0, 2, 4, ...).
  Result<std::vector<server::IngestedBatch>> stored = (*ingest)->List(0, 10);
  ASSERT_TRUE(stored.ok());
  ASSERT_EQ(stored->size(), 1u);
  EXPECT_EQ((*stored)[0].device_id, "device-00-wifi");
  Result<std::vector<sync::Record>> records = sync::OpenAndDecodeBatch((*stored)[0].sealed, *keys);
  ASSERT_TRUE(records.ok()) << records.status().ToString();
  ASSERT_EQ(records->size(), 12u);
  std::vector<float> features(28 * 28);
  for (size_t i = 0; i < records->size(); ++i) {
    const int64_t label = *dataset_->Get(static_cast<int64_t>(2 * i), features);
    EXPECT_EQ((*records)[i].label, label);
    EXPECT_EQ((*records)[i].features, features);
  }
}

TEST_F(FleetTest, BadOptionsAreNamed) {
  FleetOptions options = Options();
  options.link_profiles = {"5g"};
  Result<FleetReport> report = RunFleet(options);
  EXPECT_EQ(report.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(report.status().message().find("5g"), std::string::npos);
  options = Options();
  options.device_model = "missing";
  report = RunFleet(options);
  EXPECT_FALSE(report.ok());
  EXPECT_NE(report.status().message().find("device-00"), std::string::npos)
      << report.status().ToString();
}

}  // namespace
}  // namespace hml::sim

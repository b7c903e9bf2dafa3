// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Federated tasks on a real registry (keys, blobs, signed repo/) with the test CNN published as
// version 1: a full round through the gRPC FederatedLearning service (real server, real stubs,
// real auth.db) applies, publishes version 2 with the round history in its metadata, rolls it out
// and carries the new weights; a round below the minimum publishes nothing; bad submissions are
// refused with the documented codes; the task file round-trips.
#include "src/server/fl/federated_tasks.h"

#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "proto/hybridml_device.grpc.pb.h"
#include "src/fl/secure_round.h"
#include "src/fl/update_wire.h"
#include "src/runtime/onnx_io.h"
#include "src/server/fl/task_file.h"
#include "src/server/grpc/device_services.h"
#include "src/server/grpc/grpc_server.h"
#include "src/server/registry/keys.h"
#include "src/server/registry/registry.h"
#include "tests/testing/auth_fixture.h"
#include "tests/testing/federated_fixture.h"
#include "tests/testing/models.h"
#include "tests/testing/serving_fakes.h"

namespace hml::server {
namespace {

namespace fs = std::filesystem;
namespace v1 = ::hybridml::v1;
using ::testing::HasSubstr;

// The test CNN's parameters (tests/testing/models.h), in graph order.
const fl::UpdateLayout kLayout = {
    {"conv.w", {8, 1, 3, 3}}, {"conv.b", {8}}, {"fc.w", {10, 1568}}, {"fc.b", {10}}};
constexpr int64_t kNumParams = 72 + 8 + 15680 + 10;

class FederatedTasksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auth_.Create("federated_tasks_test");
    ASSERT_FALSE(HasFatalFailure());
    registry_dir_ = auth_.dir;  // auth.db lives in the registry directory, as with serve
    keys_dir_ = auth_.dir + "/keys";
    ASSERT_TRUE(InitKeyDir(keys_dir_).ok());
    // Version 1 of "cnn", rolled out to "stable".
    const std::string model_path = auth_.dir + "/cnn.onnx";
    std::ofstream(model_path, std::ios::binary) << testing::Cnn28Onnx();
    {
      RegistryOptions options;
      options.create_if_missing = true;
      auto registry = Registry::Open(*DefaultEnv(), *RealClock(), registry_dir_,
                                     *LoadKeyDir(*DefaultEnv(), keys_dir_), options);
      ASSERT_TRUE(registry.ok()) << registry.status().ToString();
      ASSERT_TRUE((*registry)->Publish(model_path, "cnn", "1.0.0", "").ok());
      ASSERT_TRUE((*registry)->Rollout("cnn", 1, "stable", 100).ok());
    }
    // 8 held-out samples of 784 features + a label, for the accuracy.
    std::ofstream csv(auth_.dir + "/eval.csv");
    for (int i = 0; i < 784; ++i) csv << "f" << i << ",";
    csv << "label\n";
    for (int s = 0; s < 8; ++s) {
      for (int i = 0; i < 784; ++i) csv << ((i * 7 + s * 13) % 17) / 17.0 << ",";
      csv << s % 10 << "\n";
    }
    csv.close();
    // Two more enrolled devices: A, B, D and E take part.
    for (const char* name : {"d", "e"}) {
      auto enrolled = auth_.store->Enroll(auth_.enrollment_secret, name, "test");
      ASSERT_TRUE(enrolled.ok());
      tokens_.push_back(enrolled->credential);
      ids_.push_back(enrolled->device.id);
    }
    tokens_.insert(tokens_.begin(), {auth_.device_a, auth_.device_b});
    ids_.insert(ids_.begin(), {auth_.device_a_id, auth_.device_b_id});

    FederatedTasksOptions options;
    options.registry_dir = registry_dir_;
    options.keys_dir = keys_dir_;
    auto tasks = FederatedTasks::Create(options);
    ASSERT_TRUE(tasks.ok()) << tasks.status().ToString();
    tasks_ = std::move(*tasks);
  }
  void TearDown() override {
    server_.reset();
    services_.reset();
    backend_.reset();
    tasks_.reset();
    auth_.Remove();
  }

  FederatedTaskSpec Spec() {
    FederatedTaskSpec spec;
    spec.name = "fmnist";
    spec.model = "cnn";
    spec.eval_data = "csv:" + auth_.dir + "/eval.csv";
    spec.rollout_channel = "stable";
    spec.gather_ms = 0;
    spec.round.clients_per_round = 3;
    spec.round.over_selection = 1.0;
    spec.round.min_report_fraction = 2.0 / 3.0;  // 2 needed
    spec.round.deadline_ms = 60000;
    spec.round.codec = "int8";
    return spec;
  }

  // Starts a gRPC server with the device services over tasks_.
  void StartServer() {
    DeviceServicesOptions options;
    options.repo_dir = registry_dir_ + "/repo";
    options.federated = tasks_.get();
    auto services = DeviceServices::Create(auth_.authenticator.get(), options);
    ASSERT_TRUE(services.ok()) << services.status().ToString();
    services_ = std::move(*services);
    backend_ = std::make_unique<testing::FakeCnnBackend>(BatchingOptions());
    GrpcServerOptions grpc_options;
    grpc_options.authenticator = auth_.authenticator.get();
    grpc_options.extra_services = services_->services();
    server_ = std::make_unique<GrpcServer>(backend_.get(), grpc_options);
    Result<int> port = server_->Start("127.0.0.1:0");
    ASSERT_TRUE(port.ok()) << port.status().ToString();
    stub_ = v1::FederatedLearning::NewStub(grpc::CreateChannel("127.0.0.1:" + std::to_string(*port),
                                                               grpc::InsecureChannelCredentials()));
  }

  std::unique_ptr<grpc::ClientContext> Context(const std::string& token) {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    if (!token.empty()) context->AddMetadata("authorization", "Bearer " + token);
    return context;
  }

  // A delta of `value` everywhere, sealed for `round` with int8.
  static std::string Sealed(const std::string& client, int64_t round, int64_t examples, float value,
                            const std::string& codec = "int8") {
    fl::ModelUpdate update;
    update.client_id = client;
    update.round_id = round;
    update.num_examples = examples;
    update.layout = kLayout;
    update.delta.assign(kNumParams, value);
    fl::WireEncodeOptions options;
    options.codec = *fl::ParseWireCodec(codec);
    return *fl::EncodeUpdate(update, options);
  }

  static int64_t NowMs() { return RealClock()->WallMicros() / 1000; }

  std::vector<ModelVersion> Versions() {
    auto models = Registry::ListDir(*DefaultEnv(), registry_dir_);
    EXPECT_TRUE(models.ok());
    for (const ModelSummary& m : *models) {
      if (m.name == "cnn") return m.versions;
    }
    return {};
  }

  testing::AuthPrincipals auth_;
  std::string registry_dir_;
  std::string keys_dir_;
  std::vector<std::string> tokens_;
  std::vector<std::string> ids_;
  std::unique_ptr<FederatedTasks> tasks_;
  std::unique_ptr<DeviceServices> services_;
  std::unique_ptr<testing::FakeCnnBackend> backend_;
  std::unique_ptr<GrpcServer> server_;
  std::unique_ptr<v1::FederatedLearning::Stub> stub_;
};

TEST_F(FederatedTasksTest, FullRoundOverGrpcPublishesANewVersionWithItsHistory) {
  Status added = tasks_->AddTask(Spec());
  ASSERT_TRUE(added.ok()) << added.ToString();
  StartServer();
  ASSERT_FALSE(HasFatalFailure());

  // Unauthenticated and admin calls are refused before anything happens.
  v1::JoinRoundRequest join;
  join.set_task("fmnist");
  v1::JoinRoundResponse joined;
  EXPECT_EQ(stub_->JoinRound(Context("").get(), join, &joined).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(stub_->JoinRound(Context(auth_.revoked).get(), join, &joined).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(stub_->JoinRound(Context(auth_.admin_key).get(), join, &joined).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  v1::SubmitUpdateRequest refused;
  refused.set_task("fmnist");
  v1::SubmitUpdateResponse refused_answer;
  EXPECT_EQ(stub_->SubmitUpdate(Context("").get(), refused, &refused_answer).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(tasks_->TaskStatus("fmnist")->waiting, 0);
  v1::JoinRoundRequest unknown;
  unknown.set_task("nope");
  EXPECT_EQ(stub_->JoinRound(Context(tokens_[0]).get(), unknown, &joined).error_code(),
            grpc::StatusCode::NOT_FOUND);

  // Four devices join: no round yet, all wait.
  for (const std::string& token : tokens_) {
    v1::JoinRoundResponse answer;
    ASSERT_TRUE(stub_->JoinRound(Context(token).get(), join, &answer).ok());
    EXPECT_EQ(answer.round_id(), "");
    EXPECT_EQ(answer.model_version(), "1");
  }
  EXPECT_EQ(tasks_->TaskStatus("fmnist")->waiting, 4);
  ASSERT_TRUE(tasks_->Tick(NowMs()).ok());
  Result<FederatedTaskStatus> status = tasks_->TaskStatus("fmnist");
  EXPECT_EQ(status->state, "open");
  EXPECT_EQ(status->selected, 3);
  EXPECT_EQ(status->waiting, 0);

  // Each device asks again; the selected ones get the round and submit.
  std::vector<std::string> submitted;
  int not_selected = 0;
  for (size_t i = 0; i < tokens_.size(); ++i) {
    v1::JoinRoundResponse answer;
    ASSERT_TRUE(stub_->JoinRound(Context(tokens_[i]).get(), join, &answer).ok());
    v1::SubmitUpdateRequest request;
    request.set_task("fmnist");
    request.set_round_id("1");
    request.set_example_count(10);
    request.set_sealed_update(Sealed(ids_[i], 1, 10, 0.01f));
    v1::SubmitUpdateResponse response;
    if (answer.round_id().empty()) {
      ++not_selected;
      // Its update is refused: not selected.
      EXPECT_EQ(stub_->SubmitUpdate(Context(tokens_[i]).get(), request, &response).error_code(),
                grpc::StatusCode::PERMISSION_DENIED);
      continue;
    }
    EXPECT_EQ(answer.round_id(), "1");
    EXPECT_EQ(answer.model_version(), "1");
    EXPECT_GT(answer.deadline_ms(), NowMs());
    EXPECT_EQ(answer.config().at("codec"), "int8");
    EXPECT_EQ(answer.config().at("local_epochs"), "1");
    grpc::Status s = stub_->SubmitUpdate(Context(tokens_[i]).get(), request, &response);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_TRUE(response.accepted());
    // A retry (lost answer) is ALREADY_EXISTS and counted as a duplicate.
    EXPECT_EQ(stub_->SubmitUpdate(Context(tokens_[i]).get(), request, &response).error_code(),
              grpc::StatusCode::ALREADY_EXISTS);
    submitted.push_back(ids_[i]);
  }
  EXPECT_EQ(not_selected, 1);
  ASSERT_EQ(submitted.size(), 3u);
  EXPECT_EQ(tasks_->TaskStatus("fmnist")->submitted, 3);

  // The target is reached: the next tick closes, applies and publishes.
  ASSERT_TRUE(tasks_->Tick(NowMs()).ok());
  status = tasks_->TaskStatus("fmnist");
  EXPECT_EQ(status->state, "waiting");
  EXPECT_EQ(status->rounds_applied, 1);
  EXPECT_EQ(status->model_version, 2);
  ASSERT_TRUE(status->last_accuracy.has_value());
  EXPECT_EQ(status->last_round_status, "applied");

  std::vector<ModelVersion> versions = Versions();
  ASSERT_EQ(versions.size(), 2u);
  EXPECT_EQ(versions[1].semver, "1.0.0-fl.1.1");
  nlohmann::json meta = nlohmann::json::parse(versions[1].metadata_json)["federated"];
  EXPECT_EQ(meta["task"], "fmnist");
  EXPECT_EQ(meta["parent_version"], 1);
  EXPECT_EQ(meta["round_id"], 1);
  EXPECT_EQ(meta["participants"], 3);
  EXPECT_EQ(meta["rejected"], 4);  // 1 not selected + 3 duplicates
  EXPECT_EQ(meta["rejections"]["duplicate"], 3);
  EXPECT_EQ(meta["rejections"]["not_selected"], 1);
  EXPECT_EQ(meta["strategy"], "fedavg");
  EXPECT_NEAR(std::stod(meta["accuracy"].get<std::string>()), *status->last_accuracy, 1e-6);
  EXPECT_TRUE(meta["epsilon"].is_null());

  // Version 2 is on "stable" and its parameters moved by the (int8-exact) delta 0.01.
  auto channels = Registry::ListDir(*DefaultEnv(), registry_dir_);
  ASSERT_TRUE(channels.ok());
  ASSERT_EQ((*channels)[0].channels.size(), 1u);
  EXPECT_EQ((*channels)[0].channels[0].version, 2);
  auto v1_graph = runtime::ParseOnnxModel(
      *DefaultEnv()->ReadFile(registry_dir_ + "/blobs/" + versions[0].blob));
  auto v2_graph = runtime::ParseOnnxModel(
      *DefaultEnv()->ReadFile(registry_dir_ + "/blobs/" + versions[1].blob));
  ASSERT_TRUE(v1_graph.ok() && v2_graph.ok());
  for (const fl::TensorLayout& tensor : kLayout) {
    auto before = v1_graph->value(v1_graph->FindValue(tensor.name)).constant->values<float>();
    auto after = v2_graph->value(v2_graph->FindValue(tensor.name)).constant->values<float>();
    ASSERT_EQ(before.size(), after.size());
    for (size_t i = 0; i < before.size(); ++i) {
      ASSERT_NEAR(after[i] - before[i], 0.01f, 1e-6) << tensor.name << "[" << i << "]";
    }
  }
  // The status file `hybridml fl status` reads.
  auto text = DefaultEnv()->ReadFile(FederatedTaskDir(registry_dir_, "fmnist") + "/status.json");
  ASSERT_TRUE(text.ok());
  Result<FederatedTaskStatus> from_file = ParseTaskStatus(*text);
  ASSERT_TRUE(from_file.ok()) << from_file.status().ToString();
  EXPECT_EQ(from_file->model_version, 2);
  EXPECT_EQ(from_file->rounds_applied, 1);

  // The next round's devices train from version 2.
  v1::JoinRoundResponse next;
  ASSERT_TRUE(stub_->JoinRound(Context(tokens_[0]).get(), join, &next).ok());
  EXPECT_EQ(next.model_version(), "2");
}

TEST_F(FederatedTasksTest, RoundBelowTheMinimumPublishesNothing) {
  Status added = tasks_->AddTask(Spec());
  ASSERT_TRUE(added.ok()) << added.ToString();
  const int64_t t0 = 1'000'000;
  for (const std::string& id : ids_) ASSERT_TRUE(tasks_->Join("fmnist", id, t0).ok());
  ASSERT_TRUE(tasks_->Tick(t0).ok());
  std::string selected;
  for (const std::string& id : ids_) {
    Result<JoinAnswer> answer = tasks_->Join("fmnist", id, t0 + 1);
    ASSERT_TRUE(answer.ok());
    if (answer->round_id == 1 && selected.empty()) selected = id;
  }
  ASSERT_FALSE(selected.empty());
  Result<bool> accepted =
      tasks_->Submit("fmnist", selected, "1", Sealed(selected, 1, 5, 0.5f), 5, t0 + 2);
  ASSERT_TRUE(accepted.ok()) << accepted.status().ToString();
  EXPECT_TRUE(*accepted);
  ASSERT_TRUE(tasks_->Tick(t0 + 30000).ok());  // before the deadline: still open
  EXPECT_EQ(tasks_->TaskStatus("fmnist")->state, "open");
  ASSERT_TRUE(tasks_->Tick(t0 + 60001).ok());  // deadline passed with 1 of 2 needed
  Result<FederatedTaskStatus> status = tasks_->TaskStatus("fmnist");
  EXPECT_EQ(status->rounds_abandoned, 1);
  EXPECT_EQ(status->rounds_applied, 0);
  EXPECT_EQ(status->model_version, 1);
  EXPECT_EQ(status->last_round_status, "abandoned: 1 updates accepted, 2 required");
  EXPECT_EQ(Versions().size(), 1u);
  EXPECT_FALSE(fs::exists(FederatedTaskDir(registry_dir_, "fmnist") + "/round-1.onnx"));
  // A late update is not an error: accepted = false.
  Result<bool> late =
      tasks_->Submit("fmnist", selected, "1", Sealed(selected, 1, 5, 0.5f), 5, t0 + 70000);
  ASSERT_TRUE(late.ok());
  EXPECT_FALSE(*late);
}

TEST_F(FederatedTasksTest, APartialCohortStartsOnlyAfterGatherMs) {
  FederatedTaskSpec spec = Spec();
  spec.gather_ms = 10000;  // 3 wanted, 2 needed
  ASSERT_TRUE(tasks_->AddTask(spec).ok());
  ASSERT_TRUE(tasks_->Join("fmnist", ids_[0], 1000).ok());
  ASSERT_TRUE(tasks_->Tick(1000).ok());
  EXPECT_EQ(tasks_->TaskStatus("fmnist")->state, "waiting");  // 1 < the minimum
  ASSERT_TRUE(tasks_->Join("fmnist", ids_[1], 5000).ok());
  ASSERT_TRUE(tasks_->Join("fmnist", ids_[0], 6000).ok());  // a second join keeps the first time
  ASSERT_TRUE(tasks_->Tick(10999).ok());
  EXPECT_EQ(tasks_->TaskStatus("fmnist")->state, "waiting");
  EXPECT_EQ(tasks_->TaskStatus("fmnist")->waiting, 2);
  ASSERT_TRUE(tasks_->Tick(11000).ok());  // the first device has waited gather_ms
  Result<FederatedTaskStatus> status = tasks_->TaskStatus("fmnist");
  EXPECT_EQ(status->state, "open");
  EXPECT_EQ(status->selected, 2);
  EXPECT_EQ(status->deadline_ms, 11000 + 60000);
  // A full cohort does not wait.
  Status added = tasks_->AddTask([&] {
    FederatedTaskSpec other = spec;
    other.name = "other";
    return other;
  }());
  ASSERT_TRUE(added.ok()) << added.ToString();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(tasks_->Join("other", ids_[i], 20000).ok());
  ASSERT_TRUE(tasks_->Tick(20000).ok());
  EXPECT_EQ(tasks_->TaskStatus("other")->state, "open");
}

TEST_F(FederatedTasksTest, MismatchedSubmissionsAreRefused) {
  Status added = tasks_->AddTask(Spec());
  ASSERT_TRUE(added.ok()) << added.ToString();
  for (const std::string& id : ids_) ASSERT_TRUE(tasks_->Join("fmnist", id, 0).ok());
  ASSERT_TRUE(tasks_->Tick(0).ok());
  std::string device;
  for (const std::string& id : ids_) {
    if (tasks_->Join("fmnist", id, 1)->round_id == 1) device = id;
  }
  ASSERT_FALSE(device.empty());
  auto code = [&](const std::string& round, const std::string& sealed, uint64_t examples) {
    return tasks_->Submit("fmnist", device, round, sealed, examples, 2).status().code();
  };
  EXPECT_EQ(code("1", "garbage", 5), StatusCode::kInvalidArgument);
  EXPECT_EQ(code("x1", Sealed(device, 1, 5, 0.1f), 5), StatusCode::kInvalidArgument);
  EXPECT_EQ(code("2", Sealed(device, 1, 5, 0.1f), 5), StatusCode::kInvalidArgument);
  EXPECT_EQ(code("1", Sealed(device, 1, 5, 0.1f), 6), StatusCode::kInvalidArgument);
  EXPECT_EQ(code("1", Sealed(device, 1, 5, 0.1f, "none"), 5), StatusCode::kInvalidArgument);
  EXPECT_EQ(code("1", Sealed("someone-else", 1, 5, 0.1f), 5), StatusCode::kPermissionDenied);
  EXPECT_EQ(tasks_->Join("nope", device, 0).status().code(), StatusCode::kNotFound);
  // Then the real one is still accepted.
  Result<bool> ok = tasks_->Submit("fmnist", device, "1", Sealed(device, 1, 5, 0.1f), 5, 3);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_TRUE(*ok);
}

TEST_F(FederatedTasksTest, AddTaskChecksModelAndParameters) {
  FederatedTaskSpec spec = Spec();
  spec.model = "missing";
  EXPECT_EQ(tasks_->AddTask(spec).code(), StatusCode::kNotFound);
  spec = Spec();
  spec.parameters = {"fc.w", "probs"};
  Status status = tasks_->AddTask(spec);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("'probs'"));
  spec.parameters = {"fc.w", "fc.b"};
  ASSERT_TRUE(tasks_->AddTask(spec).ok());
  EXPECT_EQ(tasks_->AddTask(spec).code(), StatusCode::kAlreadyExists);
}

// A secure round whose cohort does not finish its exchange: the round closes at its deadline and
// is abandoned (nothing published, nothing summed), and a device still polling is told it is
// out and why. Malformed messages and strangers are refused with the documented codes.
TEST(FederatedTasksSecureTest, AnUnfinishedSecureRoundIsAbandonedAndDevicesAreToldWhy) {
  const std::string dir =
      ::testing::TempDir() + "/federated_tasks_secure_" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  testing::FederatedServer server;
  ASSERT_NO_FATAL_FAILURE(server.Create(dir, /*clients=*/2));
  const std::string task = testing::kSecureFederatedTask;
  constexpr int64_t kNow = 1000000;
  for (const char* device : {"a", "b"}) ASSERT_TRUE(server.tasks->Join(task, device, kNow).ok());
  ASSERT_TRUE(server.tasks->Tick(kNow).ok());
  auto joined = server.tasks->Join(task, "a", kNow + 1);
  ASSERT_TRUE(joined.ok());
  ASSERT_EQ(joined->round_id, 1);
  EXPECT_EQ(joined->config.at("secure_aggregation"), "1");
  const std::string poll = fl::EncodeSecureClientMessage(fl::SecureClientMessage{});

  // Device a asks what to do and sends its keys; b never answers.
  auto reply = server.tasks->SecureExchange(task, "a", "1", poll, kNow + 2);
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  auto decoded = fl::DecodeSecureReply(*reply);
  ASSERT_TRUE(decoded.ok());
  ASSERT_EQ(decoded->stage, fl::SecureStage::kKeys);
  EXPECT_EQ(decoded->clients, 2);
  fl::SecureRoundClient client;
  auto keys = client.Respond(*decoded, std::nullopt);
  ASSERT_TRUE(keys.ok());
  reply =
      server.tasks->SecureExchange(task, "a", "1", fl::EncodeSecureClientMessage(*keys), kNow + 3);
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  EXPECT_EQ(fl::DecodeSecureReply(*reply)->stage, fl::SecureStage::kWait);

  // Refusals: a device outside the cohort, bytes that are no message, a round that is not open.
  EXPECT_EQ(server.tasks->SecureExchange(task, "c", "1", poll, kNow + 4).status().code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(server.tasks->SecureExchange(task, "a", "1", "garbage", kNow + 4).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(server.tasks->SecureExchange(task, "a", "7", poll, kNow + 4).status().code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(server.tasks->SecureExchange("nope", "a", "1", poll, kNow + 4).status().code(),
            StatusCode::kNotFound);

  // The keys stage closes at 10 % of the window with one key, below the threshold of 2: the
  // exchange aborts; the round closes at its deadline, abandoned.
  ASSERT_TRUE(server.tasks->Tick(kNow + 6001).ok());
  EXPECT_EQ(server.TaskStatus(task).state, "open");
  ASSERT_TRUE(server.tasks->Tick(kNow + 60001).ok());
  const FederatedTaskStatus status = server.TaskStatus(task);
  EXPECT_EQ(status.rounds_abandoned, 1);
  EXPECT_EQ(status.rounds_applied, 0);
  EXPECT_EQ(status.model_version, 1);
  // Device a, polling after the round closed, learns it is out and why.
  reply = server.tasks->SecureExchange(task, "a", "1", poll, kNow + 60002);
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  decoded = fl::DecodeSecureReply(*reply);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->stage, fl::SecureStage::kOut);
  EXPECT_THAT(decoded->reason, HasSubstr("threshold"));
  server.tasks.reset();
  std::filesystem::remove_all(dir);
}

TEST(TaskFileTest, SpecRoundTripsAndRejectsTypos) {
  FederatedTaskSpec spec;
  spec.name = "t";
  spec.model = "m";
  spec.round.strategy = "fedadam";
  spec.round.clients_per_round = 7;
  spec.round.seed = 99;
  spec.population = {"a", "b"};
  Result<FederatedTaskSpec> parsed = ParseTaskSpec(TaskSpecToJson(spec));
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->round.strategy, "fedadam");
  EXPECT_EQ(parsed->round.clients_per_round, 7);
  EXPECT_EQ(parsed->round.seed, 99u);
  EXPECT_EQ(parsed->population, spec.population);
  EXPECT_FALSE(parsed->round.secure_aggregation);

  Result<FederatedTaskSpec> secure = ParseTaskSpec(
      R"({"name":"t","model":"m","round":{"secure_aggregation":true,)"
      R"("secure_threshold_fraction":0.75}})");
  ASSERT_TRUE(secure.ok()) << secure.status().ToString();
  EXPECT_TRUE(secure->round.secure_aggregation);
  EXPECT_EQ(secure->round.secure_threshold_fraction, 0.75);
  EXPECT_THAT(ParseTaskSpec(R"({"name":"t","model":"m","round":{"secure_aggregation":1}})")
                  .status()
                  .message(),
              HasSubstr("'secure_aggregation' must be true or false"));
  EXPECT_THAT(ParseTaskSpec(R"({"name":"t","model":"m","round":{"secure_aggregation":true,)"
                            R"("codec":"int8"}})")
                  .status()
                  .message(),
              HasSubstr("cannot be used with secure aggregation"));
  EXPECT_THAT(ParseTaskSpec(R"({"name":"t","model":"m","round":{"secure_threshold_fraction":0.5}})")
                  .status()
                  .message(),
              HasSubstr("secure_threshold_fraction"));

  EXPECT_THAT(ParseTaskSpec(R"({"name":"t","model":"m","gathr_ms":5})").status().message(),
              HasSubstr("unknown field 'gathr_ms'"));
  EXPECT_THAT(
      ParseTaskSpec(R"({"name":"t","model":"m","round":{"deadline_ms":"x"}})").status().message(),
      HasSubstr("'deadline_ms' must be an integer"));
  EXPECT_THAT(
      ParseTaskSpec(R"({"name":"t","model":"m","round":{"strategy":"sgd"}})").status().message(),
      HasSubstr("strategy 'sgd'"));
  EXPECT_EQ(ParseTaskSpec("{").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseTaskSpec(R"({"model":"m"})").status().code(), StatusCode::kInvalidArgument);
}

TEST(TaskFileTest, StatusRoundTripsWithInfiniteEpsilon) {
  FederatedTaskStatus status;
  status.task = "t";
  status.state = "open";
  status.epsilon = INFINITY;
  status.last_accuracy = 0.75;
  Result<FederatedTaskStatus> parsed = ParseTaskStatus(TaskStatusToJson(status));
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_TRUE(std::isinf(*parsed->epsilon));
  EXPECT_EQ(*parsed->last_accuracy, 0.75);
  EXPECT_EQ(parsed->state, "open");
}

TEST(TaskFileTest, StatusTableShowsRoundProgress) {
  FederatedTaskStatus open;
  open.task = "fmnist";
  open.model = "cnn";
  open.model_version = 4;
  open.state = "open";
  open.round_id = 7;
  open.selected = 13;
  open.submitted = 6;
  open.target = 10;
  open.deadline_ms = 100000;
  open.last_accuracy = 0.8512;
  open.epsilon = 1.234;
  open.rounds_applied = 5;
  open.rounds_abandoned = 1;
  open.last_round_status = "applied";
  FederatedTaskStatus failed;
  failed.task = "other";
  failed.model = "m";
  failed.state = "failed";
  failed.target = 3;
  failed.error = "INTERNAL: disk full";
  const std::string table = FormatStatusTable({open, failed}, 58000);
  EXPECT_EQ(table,
            "TASK    MODEL  VERSION  STATE   ROUND  WAITING  SELECTED  SUBMITTED  DEADLINE  "
            "ACCURACY  EPSILON\n"
            "fmnist  cnn    4        open    7      0        13        6/10       42s       "
            "85.12%    1.23\n"
            "other   m      0        failed  -      0        0         0/3        -         "
            "-         -\n"
            "fmnist: last round applied (5 applied, 1 abandoned)\n"
            "other: error: INTERNAL: disk full\n");
}

}  // namespace
}  // namespace hml::server

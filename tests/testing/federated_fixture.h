// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// A federated-learning server side for device tests: a real registry (signing keys, the test CNN
// of tests/testing/models.h published as version 1 of model "cnn") in a directory the caller owns,
// and server::FederatedTasks over it with two tasks that train the CNN's four parameters:
// "fmnist" (int8 updates) and "fmnist-secure" (secure aggregation, devices polled every 20 ms).
// Rounds are small and fast: no held-out evaluation, no rollout, gather_ms 0 (a round starts at
// the first Tick once the pool holds the cohort), a 60 s deadline. The
// device tests (tests/sdk/grpc, tests/sim) drive JoinRound/SubmitUpdate through a Transport and
// Tick() themselves; Sealed() makes the update a device would send.
#ifndef HML_TESTS_TESTING_FEDERATED_FIXTURE_H_
#define HML_TESTS_TESTING_FEDERATED_FIXTURE_H_

#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <memory>
#include <string>

#include "hml/env.h"
#include "src/fl/update_wire.h"
#include "src/server/fl/federated_tasks.h"
#include "src/server/registry/keys.h"
#include "src/server/registry/registry.h"
#include "tests/testing/models.h"

namespace hml::testing {

inline constexpr char kFederatedTask[] = "fmnist";
inline constexpr char kSecureFederatedTask[] = "fmnist-secure";

// The test CNN's parameters, in graph order: the layout every update of kFederatedTask has.
inline const fl::UpdateLayout& CnnLayout() {
  static const fl::UpdateLayout layout = {
      {"conv.w", {8, 1, 3, 3}}, {"conv.b", {8}}, {"fc.w", {10, 1568}}, {"fc.b", {10}}};
  return layout;
}

struct FederatedServer {
  std::string registry_dir;
  std::unique_ptr<server::FederatedTasks> tasks;

  // Makes the registry in `dir` (which must exist) and the tasks with kFederatedTask for
  // `clients` devices per round, all of which must report. Use with ASSERT_NO_FATAL_FAILURE.
  void Create(const std::string& dir, int64_t clients) {
    registry_dir = dir;
    const std::string keys_dir = dir + "/keys";
    ASSERT_TRUE(server::InitKeyDir(keys_dir).ok());
    const std::string model_path = dir + "/cnn.onnx";
    std::ofstream(model_path, std::ios::binary) << Cnn28Onnx();
    {
      server::RegistryOptions options;
      options.create_if_missing = true;
      auto registry = server::Registry::Open(*DefaultEnv(), *RealClock(), dir,
                                             *server::LoadKeyDir(*DefaultEnv(), keys_dir), options);
      ASSERT_TRUE(registry.ok()) << registry.status().ToString();
      ASSERT_TRUE((*registry)->Publish(model_path, "cnn", "1.0.0", "").ok());
    }
    server::FederatedTasksOptions options;
    options.registry_dir = dir;
    options.keys_dir = keys_dir;
    options.write_status_files = false;
    options.secure_poll_ms = 20;
    auto created = server::FederatedTasks::Create(options);
    ASSERT_TRUE(created.ok()) << created.status().ToString();
    tasks = std::move(*created);

    server::FederatedTaskSpec spec;
    spec.name = kFederatedTask;
    spec.model = "cnn";
    spec.gather_ms = 0;
    spec.round.clients_per_round = clients;
    spec.round.over_selection = 1.0;
    spec.round.min_report_fraction = 1.0;
    spec.round.deadline_ms = 60000;
    spec.round.codec = "int8";
    Status added = tasks->AddTask(spec);
    ASSERT_TRUE(added.ok()) << added.ToString();
    spec.name = kSecureFederatedTask;
    spec.round.codec = "none";
    spec.round.secure_aggregation = true;
    added = tasks->AddTask(spec);
    ASSERT_TRUE(added.ok()) << added.ToString();
  }

  server::FederatedTaskStatus TaskStatus(const std::string& task = kFederatedTask) {
    Result<server::FederatedTaskStatus> status = tasks->TaskStatus(task);
    EXPECT_TRUE(status.ok()) << status.status().ToString();
    return status.ok() ? *status : server::FederatedTaskStatus{};
  }

  // The update `client` sends for `round`: a delta of `value` everywhere, int8-encoded.
  static std::string Sealed(const std::string& client, int64_t round, int64_t examples,
                            float value) {
    fl::ModelUpdate update;
    update.client_id = client;
    update.round_id = round;
    update.num_examples = examples;
    update.layout = CnnLayout();
    update.delta.assign(static_cast<size_t>(*fl::LayoutNumElements(update.layout)), value);
    fl::WireEncodeOptions options;
    options.codec = fl::WireCodec::kInt8;
    Result<std::string> sealed = fl::EncodeUpdate(update, options);
    EXPECT_TRUE(sealed.ok()) << sealed.status().ToString();
    return sealed.ok() ? *sealed : std::string();
  }
};

}  // namespace hml::testing

#endif  // HML_TESTS_TESTING_FEDERATED_FIXTURE_H_

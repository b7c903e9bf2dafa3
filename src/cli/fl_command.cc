// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// `hybridml fl start|status`: federated learning tasks of a registry (docs/federated.md).
//
// The server runs the rounds: `hybridml serve --registry DIR --keys KEYS` loads every task of
// <registry>/fl/<task>/task.json (at start and then every --fl-tick-ms), answers
// FederatedLearning.JoinRound/SubmitUpdate on its gRPC port, and publishes each applied round as
// a new registry version. These commands only touch files, like `hybridml models`:
//   fl start   validates a task file, checks its model is in the registry, and registers it as
//              <registry>/fl/<task>/task.json (a running server picks it up within a tick);
//   fl status  prints the round progress of every task from the status.json the server keeps
//              up to date (a task no server has loaded yet shows as "registered").
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "hml/clock.h"
#include "hml/env.h"
#include "src/base/file_util.h"
#include "src/cli/commands.h"
#include "src/server/fl/task_file.h"
#include "src/server/registry/registry.h"

namespace hml::cli {
namespace {

struct FlFlags {
  std::string registry_dir;
  std::string task_file;
  std::string task;  // status: only this task
};

int Fail(const std::string& command, const Status& s) {
  std::fprintf(stderr, "hybridml fl %s: %s\n", command.c_str(), s.ToString().c_str());
  return 1;
}

int Start(const FlFlags& f) {
  Env& env = *DefaultEnv();
  Result<std::string> text = env.ReadFile(f.task_file, int64_t{1} << 20);
  if (!text.ok()) return Fail("start", text.status());
  Result<server::FederatedTaskSpec> spec = server::ParseTaskSpec(*text);
  if (!spec.ok()) return Fail("start", spec.status().WithContext(f.task_file));
  Result<std::vector<server::ModelSummary>> models = server::Registry::ListDir(env, f.registry_dir);
  if (!models.ok()) return Fail("start", models.status());
  const server::ModelSummary* model = nullptr;
  for (const server::ModelSummary& m : *models) {
    if (m.name == spec->model) model = &m;
  }
  if (model == nullptr || model->versions.empty()) {
    return Fail("start", NotFoundError("model '" + spec->model +
                                       "' has no version in the registry; publish it first"));
  }
  const std::string dir = server::FederatedTaskDir(f.registry_dir, spec->name);
  const std::string path = dir + "/task.json";
  if (env.FileExists(path)) {
    return Fail("start", AlreadyExistsError("task '" + spec->name + "' is already registered (" +
                                            path + ")"));
  }
  if (Status s = MakeDirs(dir); !s.ok()) return Fail("start", s);
  if (Status s = env.WriteFileAtomic(path, server::TaskSpecToJson(*spec)); !s.ok()) {
    return Fail("start", s);
  }
  const fl::RoundConfig& r = spec->round;
  std::printf(
      "registered task %s: model %s from version %lld, %s/%s, %lld clients per round "
      "(%lld selected, %lld needed), deadline %llds\n",
      spec->name.c_str(), spec->model.c_str(),
      static_cast<long long>(model->versions.back().version), r.strategy.c_str(),
      r.aggregator.c_str(), static_cast<long long>(r.clients_per_round),
      static_cast<long long>(r.NumToSelect()), static_cast<long long>(r.MinReports()),
      static_cast<long long>(r.deadline_ms / 1000));
  std::printf(
      "a server runs it: hybridml serve --registry %s --keys KEYS (a running one picks it "
      "up within --fl-tick-ms)\n",
      f.registry_dir.c_str());
  return 0;
}

int ShowStatus(const FlFlags& f) {
  Env& env = *DefaultEnv();
  const std::string dir = server::FederatedDir(f.registry_dir);
  std::vector<std::string> names;
  if (DirExists(dir)) {
    Result<std::vector<std::string>> entries = ListDir(dir);
    if (!entries.ok()) return Fail("status", entries.status());
    names = *entries;
  }
  std::vector<server::FederatedTaskStatus> rows;
  for (const std::string& name : names) {
    if (!f.task.empty() && name != f.task) continue;
    const std::string task_dir = server::FederatedTaskDir(f.registry_dir, name);
    if (!env.FileExists(task_dir + "/task.json")) continue;
    if (env.FileExists(task_dir + "/status.json")) {
      Result<std::string> text = env.ReadFile(task_dir + "/status.json", int64_t{1} << 20);
      if (!text.ok()) return Fail("status", text.status());
      Result<server::FederatedTaskStatus> status = server::ParseTaskStatus(*text);
      if (!status.ok()) return Fail("status", status.status().WithContext(task_dir));
      rows.push_back(*status);
      continue;
    }
    // Registered, not loaded by a server yet.
    Result<std::string> text = env.ReadFile(task_dir + "/task.json", int64_t{1} << 20);
    if (!text.ok()) return Fail("status", text.status());
    Result<server::FederatedTaskSpec> spec = server::ParseTaskSpec(*text);
    if (!spec.ok()) return Fail("status", spec.status().WithContext(task_dir));
    server::FederatedTaskStatus status;
    status.task = spec->name;
    status.model = spec->model;
    status.state = "registered";
    status.target = spec->round.clients_per_round;
    rows.push_back(status);
  }
  if (rows.empty()) {
    if (!f.task.empty()) {
      return Fail("status", NotFoundError("no federated task '" + f.task + "' in " + dir));
    }
    std::printf("no federated tasks in %s (register one with `hybridml fl start`)\n", dir.c_str());
    return 0;
  }
  std::fputs(server::FormatStatusTable(rows, RealClock()->WallMicros() / 1000).c_str(), stdout);
  return 0;
}

}  // namespace

void AddFlCommands(CLI::App& app, int& exit_code) {
  auto flags = std::make_shared<FlFlags>();
  auto* fl = app.add_subcommand(
      "fl",
      "Federated learning tasks: `fl start` registers a task file in the registry, `hybridml "
      "serve --keys KEYS` runs its rounds, `fl status` shows their progress");
  fl->require_subcommand(1);

  auto* start = fl->add_subcommand(
      "start",
      "Register a federated task (JSON: name, model, round settings; see docs/federated.md) as "
      "<registry>/fl/<name>/task.json; `hybridml serve --keys KEYS` runs it");
  start->add_option("--registry", flags->registry_dir, "Registry directory")->required();
  start->add_option("--task", flags->task_file, "Task file (JSON)")->required();
  start->callback([flags, &exit_code] { exit_code = Start(*flags); });

  auto* status = fl->add_subcommand(
      "status",
      "Round progress of every task: round, state, waiting/selected/submitted devices, deadline "
      "left, last accuracy, epsilon (from the status the server writes)");
  status->add_option("--registry", flags->registry_dir, "Registry directory")->required();
  status->add_option("--task", flags->task, "Only this task");
  status->callback([flags, &exit_code] { exit_code = ShowStatus(*flags); });
}

}  // namespace hml::cli

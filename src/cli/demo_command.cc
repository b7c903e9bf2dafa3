// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// `hybridml demo`: the whole loop on one machine, the README's first command. Wiring only: the
// cloud steps are the same `hybridml` subcommands a user would type (run as child processes of
// this binary, each printed before it runs), and the fleet is src/sim/fleet.h.
//
//   1. train the teacher (teacher-cnn) and 2. distil the student (student-cnn) on Fashion-MNIST;
//      both are cached in the work directory: a step whose output exists and whose command is
//      unchanged (recorded beside the output as <output>.cmd) is skipped;
//   3. compress the student to int8 (QDQ, calibrated on training samples);
//   4. make a fresh registry with new signing keys, publish the int8 student (the device model)
//      and the teacher (the cloud model), roll both out to 100 % of "stable";
//   5. start the server in this process (a ModelRepository following the registry, an ingest
//      store) and N simulated devices (threads with their own emulated links) that install the
//      student over the air and route the Fashion-MNIST test images under each policy;
//   6. print the table and write it as JSON.
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "hml/env.h"
#include "src/base/file_util.h"
#include "src/cli/commands.h"
#include "src/data/dataset.h"
#include "src/server/ingest/ingest_store.h"
#include "src/server/serving/model_repository.h"
#include "src/sim/fleet.h"

extern char** environ;

namespace hml::cli {
namespace {

struct DemoFlags {
  std::string work_dir = "hybridml-demo";
  int teacher_epochs = 3;
  int student_epochs = 3;
  int threads = 2;
  int devices = 12;
  std::vector<std::string> links = {"wifi", "4g", "poor"};
  int64_t samples = 1200;
  int64_t deadline_ms = 1000;
  double cascade_threshold = 0.8;
  std::string json_path;
};

// Runs this binary with `args`, printing the command first. Skips it when `output` exists and
// was made by the same command (recorded in <output>.cmd). Returns the exit status as a Status.
Status RunStep(const std::string& title, const std::vector<std::string>& args,
               const std::string& output = "") {
  std::string line = "hybridml";
  for (const std::string& a : args) line += " " + a;
  const std::string stamp = output.empty() ? "" : output + ".cmd";
  if (!output.empty() && DefaultEnv()->FileExists(output) && DefaultEnv()->FileExists(stamp)) {
    Result<std::string> previous = DefaultEnv()->ReadFile(stamp);
    if (previous.ok() && *previous == line) {
      std::printf("\n== %s: cached (%s, made by the same command)\n", title.c_str(),
                  output.c_str());
      return Status::Ok();
    }
  }
  std::printf("\n== %s\n$ %s\n", title.c_str(), line.c_str());
  std::fflush(stdout);
  std::vector<char*> argv;
  std::string self = "/proc/self/exe";
  std::string name = "hybridml";
  argv.push_back(name.data());
  std::vector<std::string> copies = args;
  for (std::string& a : copies) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  if (int err = posix_spawn(&pid, self.c_str(), nullptr, nullptr, argv.data(), environ); err != 0) {
    return InternalError(title + ": cannot start `" + line + "`: " + std::strerror(err));
  }
  int status = 0;
  if (waitpid(pid, &status, 0) < 0) {
    return InternalError(title + ": waiting for `" + line + "` failed: " + std::strerror(errno));
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return InternalError(title + ": `" + line + "` failed (exit status " +
                         std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) + ")");
  }
  if (!output.empty()) HML_RETURN_IF_ERROR(DefaultEnv()->WriteFileAtomic(stamp, line));
  return Status::Ok();
}

Status RunDemo(const DemoFlags& f) {
  const auto start = std::chrono::steady_clock::now();
  const std::string w = std::filesystem::absolute(f.work_dir).lexically_normal().string();
  HML_RETURN_IF_ERROR(MakeDirs(w));
  std::printf("hybridml demo: work directory %s\n", w.c_str());
  const std::string teacher = w + "/teacher.onnx", student = w + "/student.onnx",
                    student_int8 = w + "/student_int8.onnx";
  const std::vector<std::string> common = {
      "--optimizer", "sgd",    "--lr",           "0.05",
      "--momentum",  "0.9",    "--weight-decay", "5e-4",
      "--schedule",  "cosine", "--batch",        "128",
      "--seed",      "1",      "--threads",      std::to_string(f.threads)};
  std::vector<std::string> args = {"train", "--arch", "teacher-cnn", "--epochs",
                                   std::to_string(f.teacher_epochs)};
  args.insert(args.end(), common.begin(), common.end());
  args.insert(args.end(), {"--out", teacher});
  HML_RETURN_IF_ERROR(RunStep("1/6 train the teacher (cloud model)", args, teacher));

  args = {"train", "--arch", "student-cnn", "--epochs", std::to_string(f.student_epochs)};
  args.insert(args.end(), common.begin(), common.end());
  args.insert(args.end(),
              {"--teacher", teacher, "--temperature", "4", "--alpha", "0.5", "--out", student});
  HML_RETURN_IF_ERROR(RunStep("2/6 distil the student (device model)", args, student));

  HML_RETURN_IF_ERROR(RunStep("3/6 compress the student to int8",
                              {"compress", student, "--int8", "--data", "fashion-mnist",
                               "--iterations", "0", "-o", student_int8},
                              student_int8));

  // A fresh registry each run: new keys, versions from 1.
  const std::string registry = w + "/registry", keys = w + "/keys";
  std::filesystem::remove_all(registry);
  std::filesystem::remove_all(keys);
  std::filesystem::remove_all(w + "/devices");
  HML_RETURN_IF_ERROR(RunStep("4/6 sign and publish", {"keys", "init", "--dir", keys}));
  HML_RETURN_IF_ERROR(RunStep("4/6 sign and publish",
                              {"publish", student_int8, "--name", "fmnist-student", "--semver",
                               "1.0.0", "--registry", registry, "--keys", keys}));
  HML_RETURN_IF_ERROR(
      RunStep("4/6 sign and publish", {"publish", teacher, "--name", "fmnist-teacher", "--semver",
                                       "1.0.0", "--registry", registry, "--keys", keys}));
  for (const char* model : {"fmnist-student", "fmnist-teacher"}) {
    HML_RETURN_IF_ERROR(RunStep(
        "4/6 roll out", {"rollout", "--name", model, "--version", "1", "--channel", "stable",
                         "--percent", "100", "--registry", registry, "--keys", keys}));
  }

  std::printf("\n== 5/6 server and %d devices in this process\n", f.devices);
  server::ModelRepository repository;
  HML_ASSIGN_OR_RETURN(server::ModelRepository::SyncReport sync,
                       repository.SyncWithRegistry(*DefaultEnv(), registry));
  for (const Status& failed : sync.failed) return failed;
  std::printf("server: serving %zu model versions from the registry\n", sync.loaded.size());
  HML_RETURN_IF_ERROR(MakeDirs(w + "/server"));
  HML_ASSIGN_OR_RETURN(std::unique_ptr<server::IngestStore> ingest,
                       server::IngestStore::Open(w + "/server/ingest.db"));
  HML_ASSIGN_OR_RETURN(
      std::shared_ptr<data::InMemoryDataset> test,
      data::LoadFashionMnist(*DefaultEnv(), data::kFashionMnistDir, data::FashionMnistPart::kTest));

  sim::FleetOptions options;
  options.registry_dir = registry;
  options.device_model = "fmnist-student";
  options.cloud_model = "fmnist-teacher";
  options.backend = &repository;
  options.ingest = ingest.get();
  options.dataset = test.get();
  options.samples = f.samples;
  options.devices = f.devices;
  options.link_profiles = f.links;
  options.deadline_nanos = f.deadline_ms * 1'000'000;
  options.cascade_threshold = f.cascade_threshold;
  options.work_dir = w + "/devices";
  options.progress = [](std::string_view line) {
    std::printf("  %.*s\n", static_cast<int>(line.size()), line.data());
    std::fflush(stdout);
  };
  HML_ASSIGN_OR_RETURN(sim::FleetReport report, sim::RunFleet(options));

  std::printf(
      "\n== 6/6 results (%lld Fashion-MNIST test images per policy, %d devices, "
      "deadline %lld ms)\n",
      static_cast<long long>(std::min<int64_t>(f.samples, test->size())), f.devices,
      static_cast<long long>(f.deadline_ms));
  for (const sim::InstallRow& i : report.installs) {
    std::printf("  %-22s installed v%lld over the air: %lld bytes in %.2f s\n", i.device_id.c_str(),
                static_cast<long long>(i.version), static_cast<long long>(i.bytes), i.seconds);
  }
  std::printf("\n%s", sim::FormatFleetTable(report).c_str());
  const std::string json_path = f.json_path.empty() ? w + "/demo.json" : f.json_path;
  HML_RETURN_IF_ERROR(DefaultEnv()->WriteFileAtomic(json_path, sim::FleetReportJson(report)));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("\ntable written to %s; the demo took %.0f s\n", json_path.c_str(), seconds);
  return Status::Ok();
}

}  // namespace

void AddDemoCommand(CLI::App& app, int& exit_code) {
  auto f = std::make_shared<DemoFlags>();
  auto* cmd = app.add_subcommand(
      "demo",
      "The whole loop on this machine: train a teacher and distil a student on Fashion-MNIST, "
      "compress, sign, publish and roll out, then N simulated devices install the student over "
      "the air and route the test images under each policy; prints accuracy, latency, offload "
      "and bytes per policy");
  cmd->add_option("--workdir", f->work_dir, "Work directory (models are cached here)")
      ->capture_default_str();
  cmd->add_option("--teacher-epochs", f->teacher_epochs, "Teacher training epochs")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  cmd->add_option("--student-epochs", f->student_epochs, "Student distillation epochs")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  cmd->add_option("--threads", f->threads, "Training threads")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  cmd->add_option("--devices", f->devices, "Simulated devices (threads)")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  cmd->add_option("--links", f->links, "Link profiles, cycled over the devices (wifi, 4g, poor)")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--samples", f->samples, "Test images routed per policy")
      ->check(CLI::Range(int64_t{1}, int64_t{10000}))
      ->capture_default_str();
  cmd->add_option("--deadline-ms", f->deadline_ms, "Per-request deadline")
      ->check(CLI::Range(int64_t{1}, int64_t{60000}))
      ->capture_default_str();
  cmd->add_option("--cascade-threshold", f->cascade_threshold,
                  "Cascade offloads when the student's top-1 probability is below this")
      ->check(CLI::Range(0.0, 1.5))
      ->capture_default_str();
  cmd->add_option("--json", f->json_path,
                  "Where to write the table as JSON (default: "
                  "<workdir>/demo.json)");
  cmd->callback([f, &exit_code] {
    const Status s = RunDemo(*f);
    if (!s.ok()) {
      std::fprintf(stderr, "demo: %s\n", s.ToString().c_str());
      exit_code = 1;
    }
  });
}

}  // namespace hml::cli

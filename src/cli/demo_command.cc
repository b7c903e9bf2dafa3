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
//   6. print the table and write it as JSON;
//   7. federated learning (src/sim/federated_fleet.h): the float student is published as its own
//      model and a federated task of the server trains it with the devices, which hold labelled
//      images the cloud never saw; each round's global model is evaluated, published and rolled
//      out over the air; the table shows the accuracy before and after.
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "hml/env.h"
#include "hml/runtime/model.h"
#include "proto/hybridml_device.pb.h"
#include "src/base/file_util.h"
#include "src/cli/commands.h"
#include "src/data/dataset.h"
#include "src/data/evaluate.h"
#include "src/data/partition.h"
#include "src/fl/coordinator.h"
#include "src/runtime/onnx_io.h"
#include "src/runtime/train/trainer.h"
#include "src/server/fl/federated_tasks.h"
#include "src/server/fl/task_file.h"
#include "src/server/ingest/ingest_keys.h"
#include "src/server/ingest/ingest_store.h"
#include "src/server/metrics/metrics.h"
#include "src/server/serving/model_repository.h"
#include "src/server/telemetry/telemetry_aggregator.h"
#include "src/sim/federated_fleet.h"
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
  std::string cascade_threshold = "auto";
  std::vector<std::string> policies = {"local-only", "cloud-only", "prefer-local", "prefer-cloud",
                                       "cascade"};
  std::string teacher_path;  // given: skip steps 1-3 and ship these models as they are
  std::string student_path;
  bool separate_cpus = true;
  double device_slowdown = 1.0;
  int64_t think_ms = 0;
  std::string json_path;
  // The federated phase (step 7): rounds, local SGD steps per round and learning rate.
  int fl_rounds = 3;
  int64_t fl_local_steps = 20;
  double fl_lr = 0.003;
  // Near-IID by default: with a strong label skew (alpha 0.3) a few rounds on these 6,000 images
  // lower the distilled student's accuracy a little (docs/results.md).
  double fl_alpha = 100.0;
  // Sum each round by secure aggregation: the server never sees one device's update.
  bool fl_secure = true;
};

// The Router's policy of each name.
Result<std::vector<sdk::RoutePolicy>> ParsePolicies(const std::vector<std::string>& names) {
  std::vector<sdk::RoutePolicy> out;
  for (const std::string& name : names) {
    bool found = false;
    for (sdk::RoutePolicy p : {sdk::RoutePolicy::kLocalOnly, sdk::RoutePolicy::kCloudOnly,
                               sdk::RoutePolicy::kPreferLocal, sdk::RoutePolicy::kPreferCloud,
                               sdk::RoutePolicy::kCascade}) {
      if (sdk::RoutePolicyName(p) == name) {
        out.push_back(p);
        found = true;
      }
    }
    if (!found) return InvalidArgumentError("--policies: unknown policy '" + name + "'");
  }
  return out;
}

// --cascade-threshold auto: the threshold with the least offload (at most 30 %) whose cascade
// reaches the teacher's accuracy minus 0.25 points on the validation split the training held out
// (Fashion-MNIST train, 10 %, seed 1): calibrated on data the test never sees.
Result<double> CalibrateCascade(const std::string& student, const std::string& teacher) {
  HML_ASSIGN_OR_RETURN(std::shared_ptr<data::InMemoryDataset> train,
                       data::LoadFashionMnist(*DefaultEnv(), data::kFashionMnistDir,
                                              data::FashionMnistPart::kTrain));
  HML_ASSIGN_OR_RETURN(data::DatasetSplit split, data::SplitDataset(train, 0.1, 1));
  HML_ASSIGN_OR_RETURN(Model small, Model::Load(student));
  HML_ASSIGN_OR_RETURN(Model large, Model::Load(teacher));
  data::EvaluateOptions options;
  options.num_threads = 2;
  HML_ASSIGN_OR_RETURN(data::Evaluation s, data::EvaluateModel(small, *split.validation, options));
  HML_ASSIGN_OR_RETURN(data::Evaluation t, data::EvaluateModel(large, *split.validation, options));
  std::vector<double> thresholds;
  for (int i = 30; i <= 100; ++i) thresholds.push_back(i / 100.0);
  HML_ASSIGN_OR_RETURN(std::vector<data::CascadePoint> curve, data::CascadeCurve(s, t, thresholds));
  const double target = t.accuracy - 0.0025;
  HML_ASSIGN_OR_RETURN(data::CascadePoint chosen,
                       data::ChooseCascadeThreshold(curve, target, 0.30));
  std::printf(
      "cascade calibration on %lld validation images: student %.2f %%, teacher %.2f %%; "
      "threshold %.2f gives %.2f %% with %.1f %% offloaded (target %.2f %%, at most 30 %%)\n",
      static_cast<long long>(s.samples), 100 * s.accuracy, 100 * t.accuracy, chosen.threshold,
      100 * chosen.accuracy, 100 * chosen.offload, 100 * target);
  return chosen.threshold;
}

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

// Step 7: federated learning. The float student is published as its own model, the server runs
// a federated task over it (FedAvg, every device per round, each new version evaluated on the
// Fashion-MNIST test set and rolled out), and the devices train on labelled data the cloud never
// saw: the 10 % of the training images the cloud's training held out (validation split, seed 1),
// dealt to the devices by a Dirichlet(alpha) label partition (--fl-alpha: large = every phone sees
// every kind of clothes, small = a few kinds each). Returns the phase's JSON for demo.json.
Result<nlohmann::json> RunFederatedPhase(const DemoFlags& f, const std::string& w,
                                         const std::string& student, const std::string& registry,
                                         const std::string& keys,
                                         server::InferenceBackend& backend,
                                         const data::Dataset& test, int device_cpu) {
  const std::string model = "fmnist-student-fl";
  // The trainable form of the student: BatchNorm folded into the convolutions, Dropout removed
  // (what the on-device trainer trains), so the server's parameters are exactly the devices'.
  HML_ASSIGN_OR_RETURN(std::string student_bytes, DefaultEnv()->ReadFile(student));
  HML_ASSIGN_OR_RETURN(runtime::Graph student_graph, runtime::ParseOnnxModel(student_bytes));
  HML_ASSIGN_OR_RETURN(std::unique_ptr<runtime::Trainer> trainable,
                       runtime::Trainer::Create(student_graph, runtime::TrainOptions{}));
  HML_ASSIGN_OR_RETURN(runtime::Graph exported, trainable->ExportGraph());
  HML_ASSIGN_OR_RETURN(std::string exported_bytes, runtime::SerializeOnnxModel(exported));
  const std::string start_model = w + "/student_fl.onnx";
  HML_RETURN_IF_ERROR(DefaultEnv()->WriteFileAtomic(start_model, exported_bytes));
  HML_RETURN_IF_ERROR(RunStep("7/7 federated learning: publish the trainable float student",
                              {"publish", start_model, "--name", model, "--semver", "1.0.0",
                               "--registry", registry, "--keys", keys}));
  HML_RETURN_IF_ERROR(RunStep("7/7 federated learning: roll it out",
                              {"rollout", "--name", model, "--version", "1", "--channel",
                               "stable", "--percent", "100", "--registry", registry, "--keys",
                               keys}));
  HML_ASSIGN_OR_RETURN(std::shared_ptr<data::InMemoryDataset> train,
                       data::LoadFashionMnist(*DefaultEnv(), data::kFashionMnistDir,
                                              data::FashionMnistPart::kTrain));
  HML_ASSIGN_OR_RETURN(data::DatasetSplit split, data::SplitDataset(train, 0.1, 1));
  std::vector<int64_t> labels(static_cast<size_t>(split.validation->size()));
  std::vector<float> one(static_cast<size_t>(split.validation->feature_size()));
  for (int64_t i = 0; i < split.validation->size(); ++i) {
    HML_ASSIGN_OR_RETURN(labels[static_cast<size_t>(i)], split.validation->Get(i, one));
  }
  data::DirichletOptions partition;
  partition.alpha = f.fl_alpha;
  partition.seed = 1;
  HML_ASSIGN_OR_RETURN(auto parts,
                       data::DirichletPartition(labels, train->num_classes(), f.devices, partition));

  server::FederatedTasksOptions tasks_options;
  tasks_options.registry_dir = registry;
  tasks_options.keys_dir = keys;
  tasks_options.secure_poll_ms = 100;  // devices and server share the process
  HML_ASSIGN_OR_RETURN(std::unique_ptr<server::FederatedTasks> tasks,
                       server::FederatedTasks::Create(tasks_options));
  server::FederatedTaskSpec spec;
  spec.name = "fmnist";
  spec.model = model;
  spec.round.clients_per_round = f.devices;
  spec.round.over_selection = 1.0;
  spec.round.min_report_fraction = 0.75;
  spec.round.deadline_ms = 120000;
  spec.round.local_epochs = 0;
  spec.round.local_steps = f.fl_local_steps;
  spec.round.batch_size = 32;
  spec.round.learning_rate = f.fl_lr;
  spec.round.strategy = "fedavg";
  spec.round.secure_aggregation = f.fl_secure;
  spec.eval_data = "fashion-mnist";
  spec.rollout_channel = "stable";
  spec.gather_ms = 2000;
  spec.max_rounds = f.fl_rounds;
  for (const runtime::ParameterInfo& p : trainable->parameters()) spec.parameters.push_back(p.name);
  // Registered as a user would (`hybridml fl start`), then picked up by the server.
  const std::string task_file = w + "/fl_task.json";
  HML_RETURN_IF_ERROR(DefaultEnv()->WriteFileAtomic(task_file, server::TaskSpecToJson(spec)));
  HML_RETURN_IF_ERROR(RunStep("7/7 federated learning: register the task",
                              {"fl", "start", "--registry", registry, "--task", task_file}));
  std::vector<std::string> task_errors;
  const std::vector<std::string> added = tasks->AddTasksFromRegistry(&task_errors);
  if (added.size() != 1 || added[0] != spec.name) {
    return InternalError("the server did not pick up task '" + spec.name + "'" +
                         (task_errors.empty() ? "" : ": " + task_errors.front()));
  }

  sim::FederatedFleetOptions options;
  options.registry_dir = registry;
  options.model = model;
  options.tasks = tasks.get();
  options.task = spec.name;
  options.backend = &backend;
  for (std::vector<int64_t>& indices : parts) {
    HML_ASSIGN_OR_RETURN(auto subset, data::SubsetDataset::Create(split.validation, indices));
    options.device_data.push_back(std::move(subset));
  }
  options.device_cpu = device_cpu;
  options.work_dir = w + "/devices";
  options.progress = [](std::string_view line) {
    std::printf("  %.*s\n", static_cast<int>(line.size()), line.data());
    std::fflush(stdout);
  };
  std::printf("\n== 7/7 federated learning: %d devices train '%s' on %lld labelled images the "
              "cloud never saw (Dirichlet alpha %.2f), %d rounds of FedAvg%s\n",
              f.devices, model.c_str(), static_cast<long long>(split.validation->size()),
              f.fl_alpha, f.fl_rounds,
              f.fl_secure ? " summed by secure aggregation (the server sees only the sum)" : "");
  HML_ASSIGN_OR_RETURN(sim::FederatedFleetReport report, sim::RunFederatedFleet(options));
  HML_RETURN_IF_ERROR(RunStep("7/7 federated learning: the task's status",
                              {"fl", "status", "--registry", registry}));

  // Accuracy on the held-out test set: the model devices started from, and the version they
  // installed over the air at the end.
  data::EvaluateOptions eval;
  eval.num_threads = 2;
  HML_ASSIGN_OR_RETURN(Model before_model, Model::Load(start_model));
  HML_ASSIGN_OR_RETURN(data::Evaluation before, data::EvaluateModel(before_model, test, eval));
  const sim::FederatedDeviceRow& first = report.devices.front();
  HML_ASSIGN_OR_RETURN(Model after_model, Model::Load(first.installed_path));
  HML_ASSIGN_OR_RETURN(data::Evaluation after, data::EvaluateModel(after_model, test, eval));

  std::printf("\n%-6s %-9s %-13s %-10s %-12s\n", "round", "status", "participants",
              "rejected", "bytes up");
  for (const fl::RoundResult& r : report.rounds) {
    std::printf("%-6lld %-9s %-13lld %-10lld %-12lld\n", static_cast<long long>(r.round_id),
                std::string(fl::RoundStatusName(r.status)).c_str(),
                static_cast<long long>(r.participants),
                static_cast<long long>(r.rejections.total()),
                static_cast<long long>(r.bytes_received));
  }
  int64_t trained = 0, ota = 0, wire = 0;
  for (const sim::FederatedDeviceRow& d : report.devices) {
    trained += d.rounds_trained;
    ota += d.ota_bytes;
    wire += d.wire_bytes_sent;
  }
  std::printf("\n%-34s %-9s %-26s\n", "federated model", "version", "accuracy (10,000 test)");
  std::printf("%-34s v%-8d %.2f %%\n", "before (the distilled student)", 1, 100 * before.accuracy);
  std::printf("%-34s v%-8lld %.2f %% (%+.2f pt)\n", "after (installed over the air)",
              static_cast<long long>(first.installed_version), 100 * after.accuracy,
              100 * (after.accuracy - before.accuracy));
  std::printf("devices trained %lld updates in %.0f s; sent %lld bytes (join + updates), "
              "installed %lld bytes of new versions over the air\n",
              static_cast<long long>(trained), report.seconds, static_cast<long long>(wire),
              static_cast<long long>(ota));

  nlohmann::json j;
  j["model"] = model;
  j["secure_aggregation"] = f.fl_secure;
  j["rounds"] = nlohmann::json::array();
  for (const fl::RoundResult& r : report.rounds) {
    j["rounds"].push_back({{"round", r.round_id},
                           {"status", std::string(fl::RoundStatusName(r.status))},
                           {"participants", r.participants},
                           {"rejected", r.rejections.total()},
                           {"bytes_received", r.bytes_received}});
  }
  j["accuracy_before"] = before.accuracy;
  j["accuracy_after"] = after.accuracy;
  j["version_after"] = first.installed_version;
  j["updates"] = trained;
  j["seconds"] = report.seconds;
  return j;
}

Status RunDemo(const DemoFlags& f) {
  const auto start = std::chrono::steady_clock::now();
  const std::string w = std::filesystem::absolute(f.work_dir).lexically_normal().string();
  HML_RETURN_IF_ERROR(MakeDirs(w));
  std::printf("hybridml demo: work directory %s\n", w.c_str());
  const std::vector<std::string> common = {
      "--optimizer", "sgd",    "--lr",           "0.05",
      "--momentum",  "0.9",    "--weight-decay", "5e-4",
      "--schedule",  "cosine", "--batch",        "128",
      "--seed",      "1",      "--threads",      std::to_string(f.threads)};
  std::string teacher = w + "/teacher.onnx", student = w + "/student.onnx",
              student_int8 = w + "/student_int8.onnx";
  if (!f.teacher_path.empty()) {
    teacher = f.teacher_path;
    student_int8 = f.student_path;
    std::printf("\n== 1-3/7 given models: teacher %s, device model %s\n", teacher.c_str(),
                student_int8.c_str());
  } else {
    std::vector<std::string> args = {"train", "--arch", "teacher-cnn", "--epochs",
                                     std::to_string(f.teacher_epochs)};
    args.insert(args.end(), common.begin(), common.end());
    args.insert(args.end(), {"--out", teacher});
    HML_RETURN_IF_ERROR(RunStep("1/7 train the teacher (cloud model)", args, teacher));

    args = {"train", "--arch", "student-cnn", "--epochs", std::to_string(f.student_epochs)};
    args.insert(args.end(), common.begin(), common.end());
    args.insert(args.end(),
                {"--teacher", teacher, "--temperature", "4", "--alpha", "0.5", "--out", student});
    HML_RETURN_IF_ERROR(RunStep("2/7 distil the student (device model)", args, student));

    HML_RETURN_IF_ERROR(RunStep("3/7 compress the student to int8",
                                {"compress", student, "--int8", "--data", "fashion-mnist",
                                 "--iterations", "0", "-o", student_int8},
                                student_int8));
  }

  // A fresh registry each run: new keys, versions from 1.
  const std::string registry = w + "/registry", keys = w + "/keys";
  std::filesystem::remove_all(registry);
  std::filesystem::remove_all(keys);
  std::filesystem::remove_all(w + "/devices");
  HML_RETURN_IF_ERROR(RunStep("4/7 sign and publish", {"keys", "init", "--dir", keys}));
  HML_RETURN_IF_ERROR(RunStep("4/7 sign and publish",
                              {"publish", student_int8, "--name", "fmnist-student", "--semver",
                               "1.0.0", "--registry", registry, "--keys", keys}));
  HML_RETURN_IF_ERROR(
      RunStep("4/7 sign and publish", {"publish", teacher, "--name", "fmnist-teacher", "--semver",
                                       "1.0.0", "--registry", registry, "--keys", keys}));
  for (const char* model : {"fmnist-student", "fmnist-teacher"}) {
    HML_RETURN_IF_ERROR(RunStep(
        "4/7 roll out", {"rollout", "--name", model, "--version", "1", "--channel", "stable",
                         "--percent", "100", "--registry", registry, "--keys", keys}));
  }

  std::printf("\n== 5/7 server and %d devices in this process\n", f.devices);
  // Devices on CPU 0, the server on the others: a phone does not share its CPU with the cloud.
  // The server's threads are created by this thread below and inherit its affinity.
  const int cpus = static_cast<int>(std::thread::hardware_concurrency());
  const bool separate = f.separate_cpus && cpus >= 2;
  if (separate) {
    HML_RETURN_IF_ERROR(sim::PinCurrentThread(1, cpus));
    std::printf("devices run on CPU 0, the server on CPUs 1-%d\n", cpus - 1);
  }
  server::ModelRepository repository;
  HML_ASSIGN_OR_RETURN(server::ModelRepository::SyncReport sync,
                       repository.SyncWithRegistry(*DefaultEnv(), registry));
  for (const Status& failed : sync.failed) return failed;
  std::printf("server: serving %zu model versions from the registry\n", sync.loaded.size());
  // The ingest service stores sealed batches beside the registry, where `hybridml serve` and
  // `hybridml ingest export` look for them; devices seal to the public key.
  const std::string ingest_keys = w + "/ingest-keys";
  std::filesystem::remove_all(ingest_keys);
  HML_RETURN_IF_ERROR(RunStep("4/7 ingest keys", {"ingest", "keygen", "--out", ingest_keys}));
  HML_ASSIGN_OR_RETURN(std::unique_ptr<server::IngestStore> ingest,
                       server::IngestStore::Open(registry + "/ingest.db"));
  HML_ASSIGN_OR_RETURN(auto ingest_public_key,
                       server::ReadIngestPublicKeyFile(ingest_keys + "/ingest.pub"));
  server::MetricsRegistry metrics;
  HML_ASSIGN_OR_RETURN(std::unique_ptr<server::TelemetryAggregator> telemetry,
                       server::TelemetryAggregator::Create(metrics));
  HML_ASSIGN_OR_RETURN(
      std::shared_ptr<data::InMemoryDataset> test,
      data::LoadFashionMnist(*DefaultEnv(), data::kFashionMnistDir, data::FashionMnistPart::kTest));

  sim::FleetOptions options;
  options.registry_dir = registry;
  options.device_model = "fmnist-student";
  options.cloud_model = "fmnist-teacher";
  options.backend = &repository;
  options.ingest = ingest.get();
  options.ingest_public_key = ingest_public_key;
  options.telemetry = [agg = telemetry.get()](std::string_view device,
                                              const hybridml::v1::TelemetryReport& report) {
    return agg->Report(device, report);
  };
  options.dataset = test.get();
  options.samples = f.samples;
  options.devices = f.devices;
  options.link_profiles = f.links;
  options.deadline_nanos = f.deadline_ms * 1'000'000;
  HML_ASSIGN_OR_RETURN(options.policies, ParsePolicies(f.policies));
  if (f.cascade_threshold == "auto") {
    HML_ASSIGN_OR_RETURN(options.cascade_threshold, CalibrateCascade(student_int8, teacher));
  } else {
    char* end = nullptr;
    options.cascade_threshold = std::strtod(f.cascade_threshold.c_str(), &end);
    if (end == f.cascade_threshold.c_str() || *end != '\0') {
      return InvalidArgumentError("--cascade-threshold: '" + f.cascade_threshold +
                                  "' is neither a number nor auto");
    }
  }
  options.work_dir = w + "/devices";
  options.device_cpu = separate ? 0 : -1;
  options.device_slowdown = f.device_slowdown;
  options.think_time_nanos = f.think_ms * 1'000'000;
  options.progress = [](std::string_view line) {
    std::printf("  %.*s\n", static_cast<int>(line.size()), line.data());
    std::fflush(stdout);
  };
  HML_ASSIGN_OR_RETURN(sim::FleetReport report, sim::RunFleet(options));

  std::printf(
      "\n== 6/7 results (%lld Fashion-MNIST test images per policy, %d devices, "
      "deadline %lld ms)\n",
      static_cast<long long>(std::min<int64_t>(f.samples, test->size())), f.devices,
      static_cast<long long>(f.deadline_ms));
  for (const sim::InstallRow& i : report.installs) {
    std::printf("  %-22s installed v%lld over the air: %lld bytes in %.2f s\n", i.device_id.c_str(),
                static_cast<long long>(i.version), static_cast<long long>(i.bytes), i.seconds);
  }
  std::printf("\n%s", sim::FormatFleetTable(report).c_str());
  // What the server learnt from the devices' telemetry: its Prometheus series per model version.
  std::printf(
      "\ntelemetry: %lld reports from the devices (%lld failed); the server's /metrics "
      "now holds, among others:\n",
      static_cast<long long>(report.telemetry_reports_sent),
      static_cast<long long>(report.telemetry_reports_failed));
  const std::string exposition = metrics.Expose();
  size_t at = 0;
  while (at < exposition.size()) {
    const size_t end = std::min(exposition.find('\n', at), exposition.size());
    const std::string_view line(exposition.data() + at, end - at);
    if (line.starts_with("hml_device_requests_total{") ||
        line.starts_with("hml_device_offload_ratio{") ||
        line.starts_with("hml_device_energy_joules_total{")) {
      std::printf("  %.*s\n", static_cast<int>(line.size()), line.data());
    }
    at = end + 1;
  }
  // Data sync: what each device uploaded, and the dataset the training side opens from it.
  int64_t collected = 0, uploaded = 0, batches = 0, sealed = 0, held = 0;
  std::string blocked;
  for (const sim::SyncRow& r : report.sync) {
    collected += r.collected;
    uploaded += r.uploaded;
    batches += r.batches;
    sealed += r.bytes_sealed;
    if (!r.blocked.empty()) {
      held += r.collected;
      blocked = r.blocked;
    }
    if (!r.error.empty())
      std::printf("  %s: sync failed: %s\n", r.device_id.c_str(), r.error.c_str());
  }
  std::printf(
      "\nsync: devices labelled %lld samples; %lld uploaded in %lld sealed batches "
      "(%lld bytes, zstd + sealed box), %lld held on metered devices (%s)\n",
      static_cast<long long>(collected), static_cast<long long>(uploaded),
      static_cast<long long>(batches), static_cast<long long>(sealed), static_cast<long long>(held),
      blocked.empty() ? "none blocked" : blocked.c_str());
  ingest.reset();
  const std::string dataset = w + "/dataset";
  std::filesystem::remove_all(dataset);
  HML_RETURN_IF_ERROR(RunStep("6/7 the training side opens the uploads",
                              {"ingest", "export", "--registry", registry, "--key",
                               ingest_keys + "/ingest.key", "--out", dataset}));

  nlohmann::json out = nlohmann::json::parse(sim::FleetReportJson(report));
  if (f.fl_rounds > 0 && f.teacher_path.empty()) {
    HML_ASSIGN_OR_RETURN(out["federated"],
                         RunFederatedPhase(f, w, student, registry, keys, repository, *test,
                                           separate ? 0 : -1));
  } else if (f.fl_rounds > 0) {
    std::printf("\n== 7/7 federated learning: skipped (it trains the float student, which "
                "--student does not give)\n");
  }
  const std::string json_path = f.json_path.empty() ? w + "/demo.json" : f.json_path;
  HML_RETURN_IF_ERROR(DefaultEnv()->WriteFileAtomic(json_path, out.dump(1)));
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
                  "Cascade offloads when the student's top-1 probability is below this; auto "
                  "calibrates it on the validation split (least offload within 30 % reaching the "
                  "teacher's accuracy - 0.25 points)")
      ->capture_default_str();
  cmd->add_flag("!--shared-cpus", f->separate_cpus,
                "Let devices and the server share every CPU (default: devices on CPU 0, the "
                "server on the others)");
  cmd->add_option("--think-ms", f->think_ms,
                  "A device's pause between two requests (devices share CPU 0; without a pause "
                  "their local computes queue behind each other)")
      ->check(CLI::Range(int64_t{0}, int64_t{10000}))
      ->capture_default_str();
  cmd->add_option("--device-slowdown", f->device_slowdown,
                  "Emulate devices this many times slower than this machine (6 ~ a mid-range "
                  "phone: XNNPACK's mobilenet_v2 fp32 is 55 ms on a Pixel 3a, 9.3 ms here)")
      ->check(CLI::Range(1.0, 1000.0))
      ->capture_default_str();
  cmd->add_option("--policies", f->policies, "Routing policies to run, in order")
      ->delimiter(',')
      ->capture_default_str();
  auto* teacher = cmd->add_option("--teacher", f->teacher_path,
                                  "Use this cloud model instead of training one (with --student)");
  auto* student = cmd->add_option("--student", f->student_path,
                                  "Use this device model instead of training and compressing one");
  teacher->needs(student);
  student->needs(teacher);
  cmd->add_option("--fl-rounds", f->fl_rounds,
                  "Federated rounds in step 7 (devices train the float student on data the cloud "
                  "never saw); 0 skips the step")
      ->check(CLI::Range(0, 100))
      ->capture_default_str();
  cmd->add_option("--fl-local-steps", f->fl_local_steps, "Local SGD steps per device and round")
      ->check(CLI::Range(int64_t{1}, int64_t{10000}))
      ->capture_default_str();
  cmd->add_option("--fl-lr", f->fl_lr, "Devices' SGD learning rate in step 7")
      ->check(CLI::Range(1e-6, 10.0))
      ->capture_default_str();
  cmd->add_option("--fl-alpha", f->fl_alpha,
                  "Dirichlet alpha of the devices' label skew in step 7 (small = few classes each)")
      ->check(CLI::Range(0.01, 1e6))
      ->capture_default_str();
  cmd->add_option("--fl-secure", f->fl_secure,
                  "Sum step 7's rounds by secure aggregation (true/false)")
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

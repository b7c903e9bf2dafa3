// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/sim/fleet.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>
#include <utility>

#include "hml/env.h"
#include "hml/runtime/model.h"
#include "src/base/file_util.h"
#include "src/sdk/collect/collector.h"
#include "src/sdk/collect/uploader.h"
#include "src/sdk/store/encrypted_store.h"
#include "src/sdk/telemetry/energy.h"
#include "src/sdk/telemetry/telemetry_recorder.h"
#include "src/sdk/telemetry/telemetry_reporter.h"
#include "src/sdk/updater.h"
#include "src/sim/in_process_transport.h"
#include "src/sim/link.h"
#include "src/sim/link_fetcher.h"
#include "src/sim/timer_queue.h"

namespace hml::sim {
namespace {

// One labelled request.
struct Sample {
  Tensor image;  // [1, C, H, W]
  int64_t label = 0;
};

// What one request did.
struct Outcome {
  bool answered = false;
  bool on_time = false;
  bool correct = false;
  bool cloud_answered = false;
  double latency_ms = 0;
  std::string placement;
  int64_t bytes_sent = 0;
  int64_t bytes_received = 0;
  double energy_joules = 0;
};

// A simulated device: its link, the model it installed, its transport to the server.
struct Device {
  std::string id;
  size_t link_index = 0;
  std::unique_ptr<LinkEmulator> link;
  std::unique_ptr<Model> model;
  std::unique_ptr<InProcessTransport> transport;
  std::unique_ptr<sdk::TelemetryRecorder> recorder;
  int64_t local_macs = 0;
  InstallRow install;
};

// Whether the cloud produced the answer (offload).
bool CloudAnswered(sdk::Placement placement) {
  switch (placement) {
    case sdk::Placement::kCloud:
    case sdk::Placement::kCloudAfterLocalFailure:
    case sdk::Placement::kCascadeOffloaded:
    case sdk::Placement::kSplit:  // the cloud ran the tail
      return true;
    case sdk::Placement::kLocal:
    case sdk::Placement::kLocalAfterCloudFailure:
    case sdk::Placement::kCascadeLocal:
      return false;
  }
  return false;
}

// The class with the largest value in the first output's first row.
int64_t TopClass(const Tensor& t) {
  std::span<const float> v = t.values<float>();
  const int64_t classes = t.rank() >= 2 ? t.dim(t.rank() - 1) : static_cast<int64_t>(v.size());
  return std::max_element(v.begin(), v.begin() + classes) - v.begin();
}

double NearestRank(std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  const auto rank = static_cast<size_t>(std::ceil(q / 100.0 * static_cast<double>(sorted.size())));
  return sorted[std::min(sorted.size() - 1, rank == 0 ? 0 : rank - 1)];
}

PolicyRow Summarize(std::string policy, std::string link, const std::vector<const Outcome*>& outs) {
  PolicyRow row;
  row.policy = std::move(policy);
  row.link = std::move(link);
  row.requests = static_cast<int64_t>(outs.size());
  std::vector<double> latencies;
  int64_t offloaded = 0, sent = 0, received = 0;
  double joules = 0;
  for (const Outcome* o : outs) {
    sent += o->bytes_sent;
    received += o->bytes_received;
    joules += o->energy_joules;
    if (!o->answered) continue;
    ++row.answered;
    row.on_time += o->on_time ? 1 : 0;
    row.correct += o->correct ? 1 : 0;
    offloaded += o->cloud_answered ? 1 : 0;
    latencies.push_back(o->latency_ms);
    ++row.placements[o->placement];
  }
  std::sort(latencies.begin(), latencies.end());
  if (row.requests > 0) {
    const auto n = static_cast<double>(row.requests);
    row.accuracy = static_cast<double>(row.correct) / n;
    row.offload = static_cast<double>(offloaded) / n;
    row.bytes_sent_per_request = static_cast<double>(sent) / n;
    row.bytes_received_per_request = static_cast<double>(received) / n;
    row.energy_mj_per_request = 1000.0 * joules / n;
  }
  row.p50_ms = NearestRank(latencies, 50);
  row.p99_ms = NearestRank(latencies, 99);
  return row;
}

// Step 1 for one device: the OTA install over its link.
Status Install(const FleetOptions& options, const std::string& shipped_root, Device& device) {
  const std::string dir = options.work_dir + "/" + device.id;
  HML_RETURN_IF_ERROR(MakeDirs(dir));
  LinkFetcher fetcher(*DefaultEnv(), options.registry_dir + "/repo", device.link.get());
  sdk::UpdaterOptions updater_options;
  updater_options.device_id = device.id;
  updater_options.model = options.device_model;
  updater_options.channel = options.channel;
  updater_options.install_dir = dir + "/models";
  const int64_t start = RealClock()->NowNanos();
  HML_ASSIGN_OR_RETURN(
      std::unique_ptr<sdk::ModelUpdater> updater,
      sdk::ModelUpdater::Open(updater_options, shipped_root, fetcher, fetcher, *RealClock()));
  HML_ASSIGN_OR_RETURN(sdk::UpdateResult update,
                       updater->CheckForUpdate(sdk::DeviceConditions{}, /*foreground_now=*/true));
  HML_ASSIGN_OR_RETURN(std::string path, updater->ActiveModelPath());
  Result<Model> model = Model::Load(path);
  HML_RETURN_IF_ERROR(updater->ReportLoadResult(model.ok()).status());
  if (!model.ok()) return model.status();
  device.model = std::make_unique<Model>(std::move(*model));
  device.install.version = update.active_version;
  device.install.bytes = fetcher.bytes_received();
  device.install.seconds = static_cast<double>(RealClock()->NowNanos() - start) / 1e9;
  return Status::Ok();
}

// Step 2 for one device and one policy: its samples, one after the other.
Status Route(const FleetOptions& options, sdk::RoutePolicy policy, Device& device,
             const std::vector<Sample>& samples, size_t first, size_t stride,
             std::vector<Outcome>& outcomes) {
  sdk::RouterOptions router_options;
  router_options.transport = device.transport.get();
  HML_ASSIGN_OR_RETURN(std::unique_ptr<sdk::Router> router,
                       sdk::Router::Create(std::move(router_options)));
  sdk::ModelConfig config;
  config.policy = policy;
  config.local_model = *device.model;
  config.cloud_model = options.cloud_model;
  config.cloud_version = options.cloud_version;
  config.cascade_threshold = options.cascade_threshold;
  config.device_slowdown = options.device_slowdown;
  config.default_deadline_nanos = options.deadline_nanos;
  HML_RETURN_IF_ERROR(router->AddModel("model", std::move(config)));
  Clock* clock = device.transport->clock();
  for (size_t i = first; i < samples.size(); i += stride) {
    if (options.think_time_nanos > 0 && i != first) {
      std::this_thread::sleep_for(std::chrono::nanoseconds(options.think_time_nanos));
    }
    std::vector<sdk::NamedTensor> inputs;
    HML_ASSIGN_OR_RETURN(Tensor image, samples[i].image.Clone());
    inputs.push_back({options.input_name, std::move(image)});
    const int64_t start = clock->NowNanos();
    Result<sdk::RoutedResult> result =
        router->Infer("model", inputs, start + options.deadline_nanos);
    const int64_t end = clock->NowNanos();
    Outcome& out = outcomes[i];
    out.latency_ms = static_cast<double>(end - start) / 1e6;
    const std::string version = std::to_string(device.install.version);
    if (!result.ok()) {
      out.placement = "failed";
      device.recorder->RecordFailure(options.device_model, version, result.status(), end - start);
      continue;
    }
    device.recorder->Record(options.device_model, version, result->route, device.local_macs);
    out.energy_joules =
        sdk::EstimateEnergy(device.recorder->profile(), result->route, device.local_macs)
            .total_joules();
    out.answered = !result->outputs.empty();
    out.on_time = end - start <= options.deadline_nanos;
    out.correct = out.answered && TopClass(result->outputs[0].tensor) == samples[i].label;
    out.cloud_answered = CloudAnswered(result->route.placement);
    out.placement = std::string(sdk::PlacementName(result->route.placement));
    out.bytes_sent = result->route.bytes_sent;
    out.bytes_received = result->route.bytes_received;
  }
  return Status::Ok();
}

// Step 4 for one device: sends what its recorder holds and waits for the answer. Returns whether
// the server acknowledged it.
Result<bool> FlushTelemetry(Device& device) {
  sdk::ReporterOptions options;
  options.transport = device.transport.get();
  options.recorder = device.recorder.get();
  HML_ASSIGN_OR_RETURN(std::unique_ptr<sdk::TelemetryReporter> reporter,
                       sdk::TelemetryReporter::Create(options));
  reporter->Flush();
  while (reporter->in_flight()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return reporter->sent_reports() > 0;
}

// Step 5 for one device: labels for its samples into its encrypted store, then one sync.
Status CollectAndUpload(const FleetOptions& options, Device& device,
                        const std::vector<Sample>& samples, size_t first, size_t stride,
                        SyncRow& row) {
  row.device_id = device.id;
  row.link = device.install.link;
  sdk::StaticPlatform platform;
  platform.set_network(
      {device.install.link == "wifi" ? sdk::NetworkType::kUnmetered : sdk::NetworkType::kMetered, 0,
       0});
  platform.set_power({0.8, false});
  std::string key(32, '\0');
  std::random_device random;
  for (char& c : key) c = static_cast<char>(random());
  HML_RETURN_IF_ERROR(platform.set_store_key(1, std::move(key)));
  sdk::PlatformKeyProvider keys(platform);
  sdk::EncryptedStoreOptions store_options;
  store_options.keys = &keys;
  store_options.device_id = device.id;
  HML_ASSIGN_OR_RETURN(
      std::unique_ptr<sdk::EncryptedStore> store,
      sdk::EncryptedStore::Open(options.work_dir + "/" + device.id + "/store.db", store_options));
  HML_ASSIGN_OR_RETURN(std::unique_ptr<sdk::Collector> collector,
                       sdk::Collector::Create(store.get(), sdk::CollectorOptions{}));
  const int64_t now_ms = RealClock()->WallMicros() / 1000;
  for (size_t i = first; i < samples.size(); i += stride) {
    const Tensor& image = samples[i].image;
    std::vector<int64_t> shape(image.shape().begin() + 1, image.shape().end());
    HML_ASSIGN_OR_RETURN(
        sdk::CollectOutcome outcome,
        collector->RecordLabel(options.device_model, device.install.version, now_ms, shape,
                               image.values<float>(), samples[i].label));
    row.collected += outcome == sdk::CollectOutcome::kQueued ? 1 : 0;
  }
  sdk::UploaderOptions upload;
  upload.ingest_public_key = *options.ingest_public_key;
  upload.conditions = options.upload_conditions;
  upload.seed = std::hash<std::string>()(device.id);
  HML_ASSIGN_OR_RETURN(std::unique_ptr<sdk::Uploader> uploader,
                       sdk::Uploader::Create(store.get(), collector->queue(),
                                             device.transport.get(), &platform, upload));
  const sdk::SyncReport sync = uploader->SyncOnce();
  const sdk::UploadCounters counters = uploader->counters();
  row.uploaded = sync.samples_uploaded;
  row.batches = sync.batches_acked;
  row.attempts = sync.attempts;
  row.bytes_sealed = counters.bytes_sealed;
  row.blocked = sync.blocked_reason;
  if (!sync.status.ok() && sync.blocked_reason.empty()) row.error = sync.status.ToString();
  return Status::Ok();
}

void Tell(const FleetOptions& options, const std::string& line) {
  if (options.progress) options.progress(line);
}

// Runs `work(device, its index)` for every device on its own thread (pinned to `cpu` unless -1);
// the first error (by device order) wins.
Status ForEachDevice(std::vector<Device>& devices, int cpu,
                     const std::function<Status(Device&, size_t)>& work) {
  std::vector<Status> results(devices.size());
  std::vector<std::thread> threads;
  threads.reserve(devices.size());
  for (size_t i = 0; i < devices.size(); ++i) {
    threads.emplace_back([&, i] {
      results[i] = cpu < 0 ? Status::Ok() : PinCurrentThread(cpu, cpu + 1);
      if (results[i].ok()) results[i] = work(devices[i], i);
    });
  }
  for (std::thread& t : threads) t.join();
  for (size_t i = 0; i < devices.size(); ++i) {
    if (!results[i].ok()) {
      return Status(results[i].code(),
                    "device " + devices[i].id + ": " + std::string(results[i].message()));
    }
  }
  return Status::Ok();
}

}  // namespace

Status PinCurrentThread(int first_cpu, int end_cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int c = first_cpu; c < std::max(end_cpu, first_cpu + 1); ++c) CPU_SET(c, &set);
  if (int err = pthread_setaffinity_np(pthread_self(), sizeof(set), &set); err != 0) {
    return InternalError("cannot pin a thread to CPUs " + std::to_string(first_cpu) + "-" +
                         std::to_string(std::max(end_cpu, first_cpu + 1) - 1) + ": " +
                         std::strerror(err));
  }
  return Status::Ok();
}

Status FleetOptions::Validate() const {
  if (registry_dir.empty()) return InvalidArgumentError("fleet: registry_dir is empty");
  if (device_model.empty()) return InvalidArgumentError("fleet: device_model is empty");
  if (cloud_model.empty()) return InvalidArgumentError("fleet: cloud_model is empty");
  if (backend == nullptr) return InvalidArgumentError("fleet: backend is null");
  if (dataset == nullptr) return InvalidArgumentError("fleet: dataset is null");
  if (samples < 1) return InvalidArgumentError("fleet: samples must be >= 1");
  if (devices < 1) return InvalidArgumentError("fleet: devices must be >= 1");
  if (link_profiles.empty()) return InvalidArgumentError("fleet: no link profiles");
  for (const std::string& name : link_profiles) {
    if (Result<LinkProfile> p = NamedLinkProfile(name); !p.ok()) {
      return InvalidArgumentError("fleet: " + std::string(p.status().message()));
    }
  }
  if (policies.empty()) return InvalidArgumentError("fleet: no policies");
  if (deadline_nanos <= 0) return InvalidArgumentError("fleet: deadline_nanos must be > 0");
  if (work_dir.empty()) return InvalidArgumentError("fleet: work_dir is empty");
  if (device_cpu < -1) return InvalidArgumentError("fleet: device_cpu must be >= -1");
  if (think_time_nanos < 0) return InvalidArgumentError("fleet: think_time_nanos must be >= 0");
  if (!(device_slowdown >= 1.0)) return InvalidArgumentError("fleet: device_slowdown must be >= 1");
  return Status::Ok();
}

Result<FleetReport> RunFleet(const FleetOptions& options) {
  HML_RETURN_IF_ERROR(options.Validate());
  const int64_t run_start = RealClock()->NowNanos();
  FleetReport report;

  // The samples, as batch-1 tensors.
  const int64_t count = std::min(options.samples, options.dataset->size());
  Shape shape = options.dataset->feature_shape();
  shape.insert(shape.begin(), 1);
  std::vector<Sample> samples(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) {
    HML_ASSIGN_OR_RETURN(Tensor image, Tensor::Allocate(DType::kFloat32, shape));
    HML_ASSIGN_OR_RETURN(int64_t label, options.dataset->Get(i, image.values<float>()));
    samples[static_cast<size_t>(i)] = {std::move(image), label};
  }

  // The devices: links, OTA installs, transports.
  HML_ASSIGN_OR_RETURN(std::string shipped_root,
                       DefaultEnv()->ReadFile(options.registry_dir + "/repo/1.root.json"));
  TimerQueue timers;
  std::vector<Device> devices(static_cast<size_t>(options.devices));
  for (size_t i = 0; i < devices.size(); ++i) {
    Device& d = devices[i];
    d.link_index = i % options.link_profiles.size();
    char id[32];
    std::snprintf(id, sizeof(id), "device-%02zu-%s", i,
                  options.link_profiles[d.link_index].c_str());
    d.id = id;
    LinkOptions link_options;
    link_options.profile = *NamedLinkProfile(options.link_profiles[d.link_index]);
    link_options.seed = i + 1;
    HML_ASSIGN_OR_RETURN(d.link, LinkEmulator::Create(std::move(link_options)));
    d.install.device_id = d.id;
    d.install.link = options.link_profiles[d.link_index];
  }
  Tell(options, "installing '" + options.device_model + "' over the air on " +
                    std::to_string(devices.size()) + " devices");
  HML_RETURN_IF_ERROR(ForEachDevice(devices, options.device_cpu, [&](Device& d, size_t) {
    return Install(options, shipped_root, d);
  }));
  for (Device& d : devices) {
    InProcessTransportOptions t;
    t.backend = options.backend;
    t.link = d.link.get();
    t.timers = &timers;
    t.device_id = d.id;
    t.ingest = options.ingest;
    t.telemetry = options.telemetry;
    HML_ASSIGN_OR_RETURN(d.transport, InProcessTransport::Create(std::move(t)));
    sdk::RecorderOptions recorder;
    recorder.profile =
        options.link_profiles[d.link_index] == "wifi" ? sdk::WifiProfile() : sdk::LteProfile();
    HML_ASSIGN_OR_RETURN(d.recorder, sdk::TelemetryRecorder::Create(recorder));
    HML_ASSIGN_OR_RETURN(d.local_macs, sdk::MacsOf(*d.model));
    report.installs.push_back(d.install);
  }

  // The distinct link profiles, and the row of each entry of options.link_profiles.
  std::vector<std::string> links;
  std::vector<size_t> link_row;
  for (const std::string& profile : options.link_profiles) {
    auto it = std::find(links.begin(), links.end(), profile);
    link_row.push_back(static_cast<size_t>(it - links.begin()));
    if (it == links.end()) links.push_back(profile);
  }

  // Each policy over the whole fleet.
  const size_t stride = devices.size();
  for (sdk::RoutePolicy policy : options.policies) {
    const std::string name(sdk::RoutePolicyName(policy));
    const int64_t start = RealClock()->NowNanos();
    std::vector<Outcome> outcomes(samples.size());
    std::atomic<int64_t> reports_sent{0}, reports_failed{0};
    HML_RETURN_IF_ERROR(ForEachDevice(devices, options.device_cpu, [&](Device& d, size_t i) {
      HML_RETURN_IF_ERROR(Route(options, policy, d, samples, i, stride, outcomes));
      if (!options.telemetry) return Status::Ok();
      HML_ASSIGN_OR_RETURN(bool sent, FlushTelemetry(d));
      ++(sent ? reports_sent : reports_failed);
      return Status::Ok();
    }));
    report.telemetry_reports_sent += reports_sent;
    report.telemetry_reports_failed += reports_failed;
    // One row over all devices, then one per distinct link profile (in the options' order).
    std::vector<const Outcome*> all;
    std::vector<std::vector<const Outcome*>> by_link(links.size());
    for (size_t i = 0; i < outcomes.size(); ++i) {
      all.push_back(&outcomes[i]);
      by_link[link_row[devices[i % stride].link_index]].push_back(&outcomes[i]);
    }
    const PolicyRow overall = Summarize(name, "all", all);
    report.rows.push_back(overall);
    for (size_t l = 0; l < links.size(); ++l) {
      report.rows.push_back(Summarize(name, links[l], by_link[l]));
    }
    char line[160];
    std::snprintf(line, sizeof(line), "%-13s %zu requests in %.1f s, accuracy %.2f %%",
                  name.c_str(), samples.size(),
                  static_cast<double>(RealClock()->NowNanos() - start) / 1e9,
                  100.0 * overall.accuracy);
    Tell(options, line);
  }
  if (options.ingest != nullptr && options.ingest_public_key.has_value()) {
    Tell(options, "collecting labels on every device and syncing them to the ingest service");
    report.sync.resize(devices.size());
    HML_RETURN_IF_ERROR(ForEachDevice(devices, options.device_cpu, [&](Device& d, size_t i) {
      return CollectAndUpload(options, d, samples, i, stride, report.sync[i]);
    }));
  }
  report.seconds = static_cast<double>(RealClock()->NowNanos() - run_start) / 1e9;
  return report;
}

std::string FormatFleetTable(const FleetReport& report) {
  std::string out;
  char line[256];
  std::snprintf(line, sizeof(line), "%-13s %-5s %8s %9s %9s %9s %8s %9s %9s %9s  %s\n", "policy",
                "link", "accuracy", "p50 ms", "p99 ms", "on time", "offload", "B sent/rq",
                "B recv/rq", "mJ/rq", "answered by");
  out += line;
  for (const PolicyRow& r : report.rows) {
    std::string where;
    for (const auto& [placement, n] : r.placements) {
      if (!where.empty()) where += ", ";
      where += placement + " " + std::to_string(n);
    }
    const double n = r.requests > 0 ? static_cast<double>(r.requests) : 1.0;
    std::snprintf(line, sizeof(line),
                  "%-13s %-5s %7.2f%% %9.2f %9.2f %8.1f%% %7.1f%% %9.0f %9.0f %9.4f  %s\n",
                  r.policy.c_str(), r.link.c_str(), 100.0 * r.accuracy, r.p50_ms, r.p99_ms,
                  100.0 * static_cast<double>(r.on_time) / n, 100.0 * r.offload,
                  r.bytes_sent_per_request, r.bytes_received_per_request, r.energy_mj_per_request,
                  where.c_str());
    out += line;
  }
  return out;
}

std::string FleetReportJson(const FleetReport& report) {
  nlohmann::json j;
  j["seconds"] = report.seconds;
  j["telemetry_reports_sent"] = report.telemetry_reports_sent;
  j["telemetry_reports_failed"] = report.telemetry_reports_failed;
  for (const InstallRow& i : report.installs) {
    j["installs"].push_back({{"device", i.device_id},
                             {"link", i.link},
                             {"version", i.version},
                             {"bytes", i.bytes},
                             {"seconds", i.seconds}});
  }
  for (const SyncRow& r : report.sync) {
    j["sync"].push_back({{"device", r.device_id},
                         {"link", r.link},
                         {"collected", r.collected},
                         {"uploaded", r.uploaded},
                         {"batches", r.batches},
                         {"bytes_sealed", r.bytes_sealed},
                         {"attempts", r.attempts},
                         {"blocked", r.blocked},
                         {"error", r.error}});
  }
  for (const PolicyRow& r : report.rows) {
    j["rows"].push_back({{"policy", r.policy},
                         {"link", r.link},
                         {"requests", r.requests},
                         {"answered", r.answered},
                         {"on_time", r.on_time},
                         {"correct", r.correct},
                         {"accuracy", r.accuracy},
                         {"p50_ms", r.p50_ms},
                         {"p99_ms", r.p99_ms},
                         {"offload", r.offload},
                         {"bytes_sent_per_request", r.bytes_sent_per_request},
                         {"bytes_received_per_request", r.bytes_received_per_request},
                         {"energy_mj_per_request", r.energy_mj_per_request},
                         {"placements", r.placements}});
  }
  return j.dump(2);
}

}  // namespace hml::sim

// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/sim/federated_fleet.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <thread>
#include <utility>

#include "hml/env.h"
#include "src/base/file_util.h"
#include "src/sdk/fl/participant.h"
#include "src/sdk/updater.h"
#include "src/sim/fleet.h"
#include "src/sim/in_process_transport.h"
#include "src/sim/link.h"
#include "src/sim/link_fetcher.h"
#include "src/sim/timer_queue.h"

namespace hml::sim {
namespace {

int64_t WallMs() { return RealClock()->WallMicros() / 1000; }

struct FlDevice {
  FederatedDeviceRow row;
  std::unique_ptr<LinkEmulator> link;
  std::unique_ptr<LinkFetcher> fetcher;
  std::unique_ptr<sdk::ModelUpdater> updater;
  std::unique_ptr<InProcessTransport> transport;
  sdk::StaticPlatform platform;
  std::unique_ptr<sdk::FederatedParticipant> participant;
  Status status;
};

void Tell(const FederatedFleetOptions& options, const std::string& line) {
  if (options.progress) options.progress(line);
}

// Installs whatever the channel holds now (no-op when it is the installed version).
Status CheckForUpdate(FlDevice& d) {
  HML_ASSIGN_OR_RETURN(sdk::UpdateResult update,
                       d.updater->CheckForUpdate(sdk::DeviceConditions{}, /*foreground_now=*/true));
  (void)update;
  HML_RETURN_IF_ERROR(d.updater->ReportLoadResult(true).status());
  d.row.installed_version = d.updater->active_version();
  HML_ASSIGN_OR_RETURN(d.row.installed_path, d.updater->ActiveModelPath());
  return Status::Ok();
}

}  // namespace

Status FederatedFleetOptions::Validate() const {
  if (registry_dir.empty()) return InvalidArgumentError("federated fleet: registry_dir is empty");
  if (model.empty()) return InvalidArgumentError("federated fleet: model is empty");
  if (tasks == nullptr) return InvalidArgumentError("federated fleet: tasks is null");
  if (task.empty()) return InvalidArgumentError("federated fleet: task is empty");
  if (backend == nullptr) return InvalidArgumentError("federated fleet: backend is null");
  if (device_data.empty()) return InvalidArgumentError("federated fleet: no device data");
  for (size_t i = 0; i < device_data.size(); ++i) {
    if (device_data[i] == nullptr || device_data[i]->size() == 0) {
      return InvalidArgumentError("federated fleet: device " + std::to_string(i) + " has no data");
    }
  }
  if (link_profiles.empty()) return InvalidArgumentError("federated fleet: no link profiles");
  for (const std::string& name : link_profiles)
    HML_RETURN_IF_ERROR(NamedLinkProfile(name).status());
  if (join_interval_ms < 1 || tick_interval_ms < 1 || timeout_ms < 1) {
    return InvalidArgumentError(
        "federated fleet: join_interval_ms, tick_interval_ms and timeout_ms must be >= 1");
  }
  if (work_dir.empty()) return InvalidArgumentError("federated fleet: work_dir is empty");
  return budget.Validate();
}

Result<FederatedFleetReport> RunFederatedFleet(const FederatedFleetOptions& options) {
  HML_RETURN_IF_ERROR(options.Validate());
  const auto start = std::chrono::steady_clock::now();
  HML_ASSIGN_OR_RETURN(std::string shipped_root,
                       DefaultEnv()->ReadFile(options.registry_dir + "/repo/1.root.json"));
  TimerQueue timers;
  std::vector<std::unique_ptr<FlDevice>> devices;
  for (size_t i = 0; i < options.device_data.size(); ++i) {
    auto d = std::make_unique<FlDevice>();
    const std::string& profile = options.link_profiles[i % options.link_profiles.size()];
    char id[48];
    std::snprintf(id, sizeof(id), "fl-device-%02zu-%s", i, profile.c_str());
    d->row.device_id = id;
    d->row.samples = options.device_data[i]->size();
    LinkOptions link_options;
    link_options.profile = *NamedLinkProfile(profile);
    link_options.seed = 1000 + i;
    HML_ASSIGN_OR_RETURN(d->link, LinkEmulator::Create(std::move(link_options)));
    d->fetcher =
        std::make_unique<LinkFetcher>(*DefaultEnv(), options.registry_dir + "/repo", d->link.get());
    const std::string dir = options.work_dir + "/" + d->row.device_id;
    HML_RETURN_IF_ERROR(MakeDirs(dir));
    sdk::UpdaterOptions updater;
    updater.device_id = d->row.device_id;
    updater.model = options.model;
    updater.channel = options.channel;
    updater.install_dir = dir + "/models";
    HML_ASSIGN_OR_RETURN(d->updater, sdk::ModelUpdater::Open(updater, shipped_root, *d->fetcher,
                                                             *d->fetcher, *RealClock()));
    InProcessTransportOptions t;
    t.backend = options.backend;
    t.link = d->link.get();
    t.timers = &timers;
    t.device_id = d->row.device_id;
    t.federated = options.tasks;
    HML_ASSIGN_OR_RETURN(d->transport, InProcessTransport::Create(std::move(t)));
    // Night time: plugged in, idle, on Wi-Fi.
    d->platform.set_network({.type = sdk::NetworkType::kUnmetered});
    d->platform.set_power({.battery_level = 1.0, .charging = true});
    d->platform.set_idle(true);
    sdk::ParticipantOptions participant;
    participant.task = options.task;
    participant.client_id = d->row.device_id;
    participant.budget = options.budget;
    HML_ASSIGN_OR_RETURN(d->participant,
                         sdk::FederatedParticipant::Create(*d->transport, d->platform, *RealClock(),
                                                           std::move(participant)));
    devices.push_back(std::move(d));
  }
  Tell(options, std::to_string(devices.size()) + " devices join task '" + options.task +
                    "' (model '" + options.model + "', installed over the air)");

  std::atomic<bool> stop{false};
  std::mutex report_mu;
  Status ticker_status;
  std::thread ticker([&] {
    int64_t last_round = 0;
    std::string last_state;
    while (!stop.load()) {
      if (Status s = options.tasks->Tick(WallMs()); !s.ok()) {
        std::lock_guard<std::mutex> lock(report_mu);
        ticker_status = s;
      }
      Result<server::FederatedTaskStatus> status = options.tasks->TaskStatus(options.task);
      if (status.ok()) {
        if (status->round_id != last_round || status->state != last_state) {
          char line[256];
          std::snprintf(
              line, sizeof(line),
              "round %lld %s: %lld selected, %lld submitted of %lld (min %lld); model "
              "v%lld%s%s",
              static_cast<long long>(status->round_id), status->state.c_str(),
              static_cast<long long>(status->selected), static_cast<long long>(status->submitted),
              static_cast<long long>(status->target), static_cast<long long>(status->min_reports),
              static_cast<long long>(status->model_version),
              status->last_accuracy ? ", last accuracy " : "",
              status->last_accuracy
                  ? (std::to_string(100 * *status->last_accuracy).substr(0, 5) + " %").c_str()
                  : "");
          Tell(options, line);
          last_round = status->round_id;
          last_state = status->state;
        }
        if (status->state == "done" || status->state == "failed") stop.store(true);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(options.tick_interval_ms));
    }
  });

  const auto deadline = start + std::chrono::milliseconds(options.timeout_ms);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < devices.size(); ++i) {
    threads.emplace_back([&, i, d = devices[i].get()] {
      if (options.device_cpu >= 0) {
        d->status = PinCurrentThread(options.device_cpu, options.device_cpu + 1);
        if (!d->status.ok()) return;
      }
      const int64_t before = d->fetcher->bytes_received();
      d->status = CheckForUpdate(*d);
      if (!d->status.ok()) return;
      // The round's version: installed over the air when the channel has it.
      sdk::ModelSource models = [d](int64_t version) -> Result<std::string> {
        if (d->updater->active_version() != version) HML_RETURN_IF_ERROR(CheckForUpdate(*d));
        if (d->updater->active_version() != version) {
          return UnavailableError("the round trains v" + std::to_string(version) +
                                  ", the channel gives v" +
                                  std::to_string(d->updater->active_version()));
        }
        return d->updater->ActiveModelPath();
      };
      while (!stop.load() && std::chrono::steady_clock::now() < deadline) {
        Result<sdk::ParticipationResult> r =
            d->participant->RunOnce(*options.device_data[i], models);
        if (!r.ok()) {
          // A failed call or an aborted training costs this device its round, not the run.
          std::this_thread::sleep_for(std::chrono::milliseconds(options.join_interval_ms));
          continue;
        }
        d->row.wire_bytes_sent += r->wire_bytes_sent;
        if (r->outcome == sdk::ParticipationResult::Outcome::kSubmitted) {
          ++d->row.rounds_trained;
          d->row.rounds_accepted += r->accepted ? 1 : 0;
          d->row.update_bytes += r->update_bytes;
          d->row.train_seconds += r->training.seconds;
        } else {
          std::this_thread::sleep_for(std::chrono::milliseconds(options.join_interval_ms));
        }
      }
      d->status = CheckForUpdate(*d);
      d->row.ota_bytes = d->fetcher->bytes_received() - before;
    });
  }
  for (std::thread& t : threads) t.join();
  const bool timed_out = !stop.load();
  stop.store(true);
  ticker.join();

  FederatedFleetReport report;
  for (auto& d : devices) {
    if (!d->status.ok()) {
      return Status(d->status.code(),
                    "device " + d->row.device_id + ": " + std::string(d->status.message()));
    }
    report.devices.push_back(d->row);
  }
  HML_ASSIGN_OR_RETURN(report.rounds, options.tasks->History(options.task));
  HML_ASSIGN_OR_RETURN(report.status, options.tasks->TaskStatus(options.task));
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!ticker_status.ok()) return ticker_status;
  if (timed_out) {
    return DeadlineExceededError("federated task '" + options.task + "' did not finish in " +
                                 std::to_string(options.timeout_ms) + " ms (state " +
                                 report.status.state + ", round " +
                                 std::to_string(report.status.round_id) + ")");
  }
  return report;
}

}  // namespace hml::sim

// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The fleet simulator's run: N virtual devices, each a thread with its own emulated link, run the
// device SDK against an in-process server, the way `hybridml demo` and bench/hybrid measure the
// hybrid-inference claims. One run, step by step:
//
//   1. Install over the air. Every device opens a ModelUpdater on its own install directory with
//      the registry's shipped root, and fetches the device model's release for its channel from
//      the registry's repository through a LinkFetcher (every byte pays the device's link). The
//      installed file is what the device runs; nothing is copied around the OTA path.
//   2. Route. For each policy in turn, every device builds a Router over an InProcessTransport
//      (its link, the shared TimerQueue, the server's InferenceBackend) with the installed model
//      as the local side and the cloud model by name, and runs its share of the test samples
//      through Router::Infer with a per-request deadline. The devices run in parallel; a device
//      runs its requests one after the other (an app's inference thread). Each answer is scored
//      against the sample's label.
//   3. Report. Rows per policy and link profile (and per policy over all links): accuracy, p50 and
//      p99 latency of answered requests, requests answered by their deadline, offload ratio
//      (answers the cloud gave), bytes sent and received per request, the energy estimate per
//      request (sdk::EstimateEnergy with the device's profile: LTE figures on 4g and poor, Wi-Fi
//      figures on wifi), and where answers came from.
//   4. Telemetry. Every device records each answer in its TelemetryRecorder and, after each
//      policy, flushes it through its transport to the server's telemetry service (when the
//      options give one), as an app's reporter would.
//   5. Data sync (when the options give an ingest store and its public key). Every device labels
//      the samples it routed (the user confirming or correcting an answer) through a Collector
//      into its encrypted store (key from its platform keystore), then runs one Uploader sync
//      through its transport: batches zstd-compressed and sealed to the ingest key, one
//      idempotency key each, deleted locally after the server's ack, and only under
//      FleetOptions::upload_conditions (devices on "wifi" are on an unmetered network, the others
//      on a metered one; none is charging), so a metered device keeps its data for later.
//
// Time is real: links are emulated on the real clock, so a run lasts about as long as its
// slowest device's requests (cloud calls on "poor" take ~350 ms each). More devices in parallel
// make a run shorter, not longer: the threads mostly wait on their links.
#ifndef HML_SRC_SIM_FLEET_H_
#define HML_SRC_SIM_FLEET_H_

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hml/sdk/platform.h"
#include "hml/status.h"
#include "src/data/dataset.h"
#include "src/sdk/router.h"
#include "src/server/ingest/ingest_store.h"
#include "src/server/serving/inference_backend.h"
#include "src/sync/batch.h"

namespace hybridml::v1 {
class TelemetryReport;
}  // namespace hybridml::v1

namespace hml::sim {

struct FleetOptions {
  // The registry's directory (registry.db, repo/): devices install from <registry_dir>/repo and
  // ship <registry_dir>/repo/1.root.json as their trusted root. Required.
  std::string registry_dir;
  // The device model's name in the registry (installed over the air) and its channel. Required;
  // channel default "stable".
  std::string device_model;
  std::string channel = "stable";
  // The cloud model's name as the backend serves it, and its version (0 = latest). Required.
  std::string cloud_model;
  int64_t cloud_version = 0;
  // The server side: serves cloud_model. Must outlive the run. Required.
  server::InferenceBackend* backend = nullptr;
  // The server's ingest store and telemetry service, handed to every device's transport
  // (InProcessTransportOptions). Defaults: none.
  server::IngestStore* ingest = nullptr;
  std::function<Status(std::string_view, const hybridml::v1::TelemetryReport&)> telemetry;

  // Data sync (step 5): the ingest service's public key; with `ingest`, devices collect and upload.
  // Default: none (no step 5).
  std::optional<std::array<unsigned char, sync::kIngestKeyBytes>> ingest_public_key;
  // When devices may upload. Default: BackgroundPolicy{} (unmetered network; battery >= 20 %).
  sdk::BackgroundPolicy upload_conditions;

  // Labelled samples to route; the first `samples` of it are used (all when it has fewer). Each
  // sample is one request (batch 1). Required.
  const data::Dataset* dataset = nullptr;
  int64_t samples = 1000;
  // The input tensor's name in both models. Default: "input".
  std::string input_name = "input";

  // Number of devices; device i gets link_profiles[i % size] (NamedLinkProfile names). >= 1.
  // Defaults: 12 devices over wifi, 4g and poor.
  int devices = 12;
  std::vector<std::string> link_profiles = {"wifi", "4g", "poor"};
  // Policies to run, in order. Default: local-only, cloud-only, prefer-local, prefer-cloud,
  // cascade.
  std::vector<sdk::RoutePolicy> policies = {
      sdk::RoutePolicy::kLocalOnly, sdk::RoutePolicy::kCloudOnly, sdk::RoutePolicy::kPreferLocal,
      sdk::RoutePolicy::kPreferCloud, sdk::RoutePolicy::kCascade};
  // Per-request deadline, from the call. > 0. Default: 1 s.
  int64_t deadline_nanos = 1'000'000'000;
  // A device's pause between two of its requests (an app does not infer back to back). With many
  // devices pinned to one CPU, it keeps their local computes from queueing behind each other,
  // which a real device (one user, its own CPU) never sees. >= 0. Default: 0.
  int64_t think_time_nanos = 0;
  // Emulates devices this many times slower than this machine (ModelConfig::device_slowdown:
  // each local compute is followed by a sleep of (slowdown - 1) x its time). >= 1. Default: 1.
  double device_slowdown = 1.0;
  // Cascade's confidence threshold (ModelConfig::cascade_threshold). Default: 0.8.
  double cascade_threshold = 0.8;
  // The CPU every device thread is pinned to, so that devices do not share a core with the
  // server in this process (a phone does not share its CPU with the cloud; the caller pins the
  // server's threads elsewhere, e.g. by pinning the thread that creates them before it does).
  // -1 = no pinning. Default: -1.
  int device_cpu = -1;
  // Where devices keep their installed models (<work_dir>/<device id>/). Required.
  std::string work_dir;
  // Told about progress in a line of text (installs, each policy's start and end). Default: none.
  std::function<void(std::string_view line)> progress;

  // kInvalidArgument naming the field.
  Status Validate() const;
};

// One row of the table: a policy over one link profile ("all" for every device).
struct PolicyRow {
  std::string policy;
  std::string link;
  int64_t requests = 0;
  int64_t answered = 0;  // Router::Infer returned outputs
  int64_t on_time = 0;   // answered within the deadline
  int64_t correct = 0;   // answered with the sample's label as top-1
  double accuracy = 0;   // correct / requests
  double p50_ms = 0;     // latency of answered requests
  double p99_ms = 0;
  double offload = 0;  // share of requests the cloud answered (wholly or, for split, in part)
  double bytes_sent_per_request = 0;
  double bytes_received_per_request = 0;
  // Energy estimate per request on the device (compute + radio), millijoules.
  double energy_mj_per_request = 0;
  // Answers by Placement name.
  std::map<std::string, int64_t> placements;
};

// One device's over-the-air install.
struct InstallRow {
  std::string device_id;
  std::string link;
  int64_t version = 0;
  int64_t bytes = 0;  // received through the link
  double seconds = 0;
};

// One device's data sync.
struct SyncRow {
  std::string device_id;
  std::string link;
  int64_t collected = 0;  // labelled samples queued in the device's store
  int64_t uploaded = 0;   // deleted locally after the server's ack
  int64_t batches = 0;    // acknowledged batches
  int64_t bytes_sealed = 0;
  int64_t attempts = 0;
  std::string blocked;  // why the upload did not run ("" when it ran)
  std::string error;    // the sync's error ("" when none)
};

struct FleetReport {
  std::vector<InstallRow> installs;
  // Telemetry reports the devices sent and the server acknowledged, and those that failed.
  int64_t telemetry_reports_sent = 0;
  int64_t telemetry_reports_failed = 0;
  // For each policy in order: its "all" row, then one row per link profile in
  // FleetOptions::link_profiles order.
  std::vector<PolicyRow> rows;
  // Step 5, one row per device (empty without it).
  std::vector<SyncRow> sync;
  double seconds = 0;  // the whole run
};

// Pins the calling thread to CPUs [first_cpu, end_cpu) (end_cpu <= first_cpu: first_cpu alone);
// threads it creates afterwards inherit that. How the demo and the benchmarks keep the simulated
// devices (CPU 0) and the server (the other CPUs) off each other's cores. kInternal naming the
// CPUs when the kernel refuses.
Status PinCurrentThread(int first_cpu, int end_cpu);

// Runs the fleet as the file comment describes. Errors: options.Validate()'s; a device whose
// install fails (the error names the device); a dataset sample that cannot be read. A request
// that every allowed route fails is not an error: it counts as unanswered.
Result<FleetReport> RunFleet(const FleetOptions& options);

// The report as a fixed-width text table (one line per row) and as JSON.
std::string FormatFleetTable(const FleetReport& report);
std::string FleetReportJson(const FleetReport& report);

}  // namespace hml::sim

#endif  // HML_SRC_SIM_FLEET_H_

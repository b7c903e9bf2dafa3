// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// hybrid_split: split inference through the device Router (issue 6, "What must be shown" 1,
// second half). For a heavier model (mobilenet_v2 or resnet18) on a device slower than this
// machine, over emulated links, it measures the end-to-end latency of:
//   local-only     the whole model on the (slowed) device          (RoutePolicy::kLocalOnly)
//   cloud-only     the model's FP32 inputs sent to the cloud        (RoutePolicy::kCloudOnly)
//   fixed <c>      the split policy pinned to each candidate c: local, input (the inputs as
//                  INT8), and every cut the planner considers      (SplitConfig::fixed_candidate)
//   split          the split policy choosing its cut per request  (the planner)
// and reports per link: p50 per row, the best fixed candidate, the planner's p50 / the best fixed
// p50 (target <= 1.10; the local candidate's p50 pools the local-only and fixed local rows, which
// run the same computation), and whether the planner beats both local-only and cloud-only (and,
// more strictly, the INT8 input candidate too, i.e. whether the win needs a cut inside the
// network).
//
//   hybrid_split MODEL.onnx [--name NAME] [--slowdown S] [--links 4g,poor] [--requests N]
//                [--warmup W] [--server-speedup X] [--all-cuts] [--json PATH]
//
// The emulation, all in this process on this machine:
//   - Device: the Router runs the model (or its head) here and then sleeps (S - 1) x the
//     measured compute time (ModelConfig::device_slowdown), so the device looks S times slower
//     than this machine. The default S = 6 is a mid-range phone against this machine: XNNPACK's
//     README gives FP32 MobileNet v2 1.0X single-threaded at 55 ms on a Pixel 3a (Snapdragon
//     670, a mid-range phone of 2019), and the same model through hybridml's xnnpack backend on
//     one thread takes 9.3 ms at best on this machine (`hybridml bench mobilenet_v2.onnx
//     --backends xnnpack --threads 1`, min of 30 runs): 55 / 9.3 = 5.9. It is a flag: the
//     crossover points move with it.
//   - Link: sim::InProcessTransport over sim::LinkEmulator with the named profiles (4g: 50 ms
//     RTT, 10 Mbit/s; poor: 300 ms, 1 Mbit/s; wifi: 10 ms, 50 Mbit/s). Requests are encoded as
//     the real v2 gRPC messages, so bytes on the link are the real wire's payload.
//   - Cloud: a ModelRepository in this process running the model (or its tail for a split
//     request, INT8 cut tensors dequantized) at this machine's speed; --server-speedup only
//     sets the planner's first estimate (the server's real time is measured as calls complete).
//   - Link estimate: the router reads it from a StaticPlatform set to the profile's RTT and
//     bandwidth (an OS that measures its link exactly).
// Rows are measured round-robin (request i of every row, then request i + 1 ...) in a new random
// order each round, sequentially (one request in flight), after W warm-up rounds that compile
// every head and tail Session on both sides, so that load from other processes on this machine
// hits all rows alike. A row whose p50 after 5 requests is above 2.5x the fastest row's is not
// measured further (it cannot be the best; its row shows how many requests it got). Every
// request's deadline is 60 s (no row is cut short). Each output is compared with the local
// model's (max |difference| over the outputs, reported per row with the outputs' largest |value|).
//
// Prints one table per link; with --json PATH also writes the numbers as JSON.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "hml/runtime/model.h"
#include "hml/runtime/session.h"
#include "hml/runtime/tensor_util.h"
#include "hml/sdk/platform.h"
#include "hml/status.h"
#include "src/sdk/router.h"
#include "src/server/serving/model_repository.h"
#include "src/sim/fleet.h"
#include "src/sim/in_process_transport.h"
#include "src/sim/link.h"
#include "src/sim/timer_queue.h"

namespace hml::bench {
namespace {

constexpr char kUsage[] = R"(usage: hybrid_split MODEL.onnx [options]
  --name NAME          the model's name in tables and JSON (default: the file's stem)
  --slowdown S         device compute slowdown factor, >= 1 (default 6; see the file comment)
  --links L            comma-separated link profiles: 4g, poor, wifi (default 4g,poor)
  --requests N         measured requests per row and link (default 10)
  --warmup W           untimed rounds per link first (default 2)
  --server-speedup X   the planner's first guess of the server's speed vs. this machine (default 1)
  --all-cuts           every single-tensor cut is a candidate (default: dominated cuts pruned)
  --json PATH          also write the results as JSON
)";

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kDeadlineNanos = 60'000 * kMs;
// A row (not the planner's) whose p50 after kSettleAfter measured requests is above
// kSettleFactor x the fastest row's is settled: it cannot be the best fixed row, and more samples
// of it would only cost time (a cloud-only request on the poor link takes 5 s).
constexpr int kSettleAfter = 5;
constexpr double kSettleFactor = 2.5;

struct Flags {
  std::string model_path;
  std::string name;
  double slowdown = 6.0;
  std::vector<std::string> links = {"4g", "poor"};
  int requests = 10;
  int warmup = 2;
  double server_speedup = 1.0;
  bool all_cuts = false;
  std::string json_path;
};

Result<double> ParseNumber(const std::string& flag, const std::string& v, double min, double max) {
  char* end = nullptr;
  const double n = std::strtod(v.c_str(), &end);
  if (end == v.c_str() || *end != '\0' || !(n >= min) || !(n <= max)) {
    return InvalidArgumentError(flag + ": '" + v + "' is not a number in [" + std::to_string(min) +
                                ", " + std::to_string(max) + "]");
  }
  return n;
}

Result<Flags> ParseFlags(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto next = [&]() -> Result<std::string> {
      if (i + 1 >= argc) return InvalidArgumentError(arg + " needs a value");
      return std::string(argv[++i]);
    };
    if (arg == "--name") {
      HML_ASSIGN_OR_RETURN(f.name, next());
    } else if (arg == "--slowdown") {
      HML_ASSIGN_OR_RETURN(const std::string v, next());
      HML_ASSIGN_OR_RETURN(f.slowdown, ParseNumber(arg, v, 1, 1000));
    } else if (arg == "--links") {
      HML_ASSIGN_OR_RETURN(const std::string v, next());
      f.links.clear();
      std::stringstream ss(v);
      for (std::string item; std::getline(ss, item, ',');) {
        if (!item.empty()) f.links.push_back(item);
      }
    } else if (arg == "--requests") {
      HML_ASSIGN_OR_RETURN(const std::string v, next());
      HML_ASSIGN_OR_RETURN(const double n, ParseNumber(arg, v, 1, 10000));
      f.requests = static_cast<int>(n);
    } else if (arg == "--warmup") {
      HML_ASSIGN_OR_RETURN(const std::string v, next());
      HML_ASSIGN_OR_RETURN(const double n, ParseNumber(arg, v, 0, 1000));
      f.warmup = static_cast<int>(n);
    } else if (arg == "--server-speedup") {
      HML_ASSIGN_OR_RETURN(const std::string v, next());
      HML_ASSIGN_OR_RETURN(f.server_speedup, ParseNumber(arg, v, 0.01, 1000));
    } else if (arg == "--all-cuts") {
      f.all_cuts = true;
    } else if (arg == "--json") {
      HML_ASSIGN_OR_RETURN(f.json_path, next());
    } else if (arg.starts_with("--") || !f.model_path.empty()) {
      return InvalidArgumentError("unexpected argument '" + arg + "'\n" + kUsage);
    } else {
      f.model_path = arg;
    }
  }
  if (f.model_path.empty()) return InvalidArgumentError(std::string("need MODEL\n") + kUsage);
  if (f.name.empty()) f.name = std::filesystem::path(f.model_path).stem().string();
  return f;
}

// One row of a link's table.
struct Row {
  std::string label;      // "local-only", "cloud-only", "fixed <candidate>", "split"
  std::string model;      // its name in the router
  std::string candidate;  // fixed rows: the candidate's label
  std::vector<double> latency_ms = {};
  std::vector<double> predicted_ms = {};
  int64_t bytes_sent = 0;                  // over the measured requests
  std::map<std::string, int> chosen = {};  // the split row: cut -> requests
  std::map<std::string, int> placements = {};
  double max_diff = 0;
  int errors = 0;
  std::string first_error = {};
};

double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())));
  return v[i];
}

struct LinkResult {
  std::string link;
  std::vector<Row> rows;
  std::string best_fixed;
  double best_fixed_p50 = 0;
  double split_p50 = 0;
  double local_p50 = 0;
  double cloud_p50 = 0;
  double input_p50 = 0;
  double ratio = 0;  // split / best fixed
  // |p50(local-only) - p50(fixed local)| / the smaller: two rows of one computation.
  double identical_rows_gap = 0;
  // Share of the planner's requests that did not run locally.
  double planner_split_share = 0;
  // The planner split most requests and its p50 is below local-only's and cloud-only's.
  bool beats_local_and_cloud = false;
  // ... and it sent a cut inside the network on most requests, and its p50 is below the INT8
  // input candidate's (the win needs splitting, not only INT8 inputs).
  bool beats_local_and_input = false;
};

double MaxDiff(const std::vector<sdk::NamedTensor>& outputs, const std::vector<Tensor>& expected) {
  double worst = 0;
  if (outputs.size() != expected.size()) return 1e30;
  for (size_t o = 0; o < outputs.size(); ++o) {
    const Tensor& a = outputs[o].tensor;
    const Tensor& b = expected[o];
    if (a.num_elements() != b.num_elements() || a.dtype() != DType::kFloat32) return 1e30;
    for (int64_t i = 0; i < a.num_elements(); ++i) {
      worst = std::max(worst, std::fabs(static_cast<double>(a.data<float>()[i]) -
                                        static_cast<double>(b.data<float>()[i])));
    }
  }
  return worst;
}

Result<LinkResult> RunLink(const Flags& f, const Model& model, const std::string& link_name,
                           server::ModelRepository& repo, sim::TimerQueue* timers,
                           const std::vector<sdk::NamedTensor>& inputs,
                           const std::vector<Tensor>& expected) {
  HML_ASSIGN_OR_RETURN(sim::LinkProfile profile, sim::NamedLinkProfile(link_name));
  sim::LinkOptions link_options;
  link_options.profile = profile;
  HML_ASSIGN_OR_RETURN(std::unique_ptr<sim::LinkEmulator> link,
                       sim::LinkEmulator::Create(link_options));
  sim::InProcessTransportOptions transport_options;
  transport_options.backend = &repo;
  transport_options.link = link.get();
  transport_options.timers = timers;
  HML_ASSIGN_OR_RETURN(std::unique_ptr<sim::InProcessTransport> transport,
                       sim::InProcessTransport::Create(transport_options));
  sdk::StaticPlatform platform;
  platform.set_network({sdk::NetworkType::kMetered, profile.downlink_bytes_per_second * 8,
                        static_cast<double>(profile.rtt_nanos) / 1e6});
  sdk::RouterOptions options;
  options.transport = transport.get();
  options.platform = &platform;
  HML_ASSIGN_OR_RETURN(std::unique_ptr<sdk::Router> router, sdk::Router::Create(options));

  auto base = [&](sdk::RoutePolicy policy) {
    sdk::ModelConfig c;
    c.policy = policy;
    c.cloud_model = "model";
    c.default_deadline_nanos = kDeadlineNanos;
    c.device_slowdown = f.slowdown;
    c.split.server_speedup = f.server_speedup;
    c.split.candidates.prune_dominated = !f.all_cuts;
    c.split.profile_runs = 5;
    return c;
  };
  LinkResult result;
  result.link = link_name;
  std::vector<Row>& rows = result.rows;

  sdk::ModelConfig local = base(sdk::RoutePolicy::kLocalOnly);
  local.local_model = model;
  local.cloud_model.clear();
  HML_RETURN_IF_ERROR(router->AddModel("local-only", std::move(local)));
  rows.push_back({"local-only", "local-only", ""});
  HML_RETURN_IF_ERROR(router->AddModel("cloud-only", base(sdk::RoutePolicy::kCloudOnly)));
  rows.push_back({"cloud-only (fp32 input)", "cloud-only", ""});

  HML_ASSIGN_OR_RETURN(
      std::vector<sdk::SplitCandidate> candidates,
      sdk::MakeSplitCandidates(model, base(sdk::RoutePolicy::kSplit).split.candidates));
  for (const sdk::SplitCandidate& c : candidates) {
    sdk::ModelConfig fixed = base(sdk::RoutePolicy::kSplit);
    fixed.local_model = model;
    fixed.split.fixed_candidate = c.label;
    fixed.split.profile_runs = 1;  // fixed rows do not plan
    const std::string name = "fixed " + c.label;
    HML_RETURN_IF_ERROR(router->AddModel(name, std::move(fixed)));
    rows.push_back({name, name, c.label});
  }
  sdk::ModelConfig split = base(sdk::RoutePolicy::kSplit);
  split.local_model = model;
  HML_RETURN_IF_ERROR(router->AddModel("split", std::move(split)));
  rows.push_back({"split (planner)", "split", ""});

  // The rows in a new random order each round (fixed seed), so that no row always follows the
  // same other row (a cloud call's server threads finishing, caches).
  std::mt19937_64 rng(7);
  std::vector<size_t> order(rows.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  const int rounds = f.warmup + f.requests;
  for (int round = 0; round < rounds; ++round) {
    const bool measured = round >= f.warmup;
    std::shuffle(order.begin(), order.end(), rng);
    // Rows settled as far slower than the fastest (below) are not measured again.
    double fastest = 1e300;
    for (const Row& row : rows) {
      if (!row.latency_ms.empty()) fastest = std::min(fastest, Percentile(row.latency_ms, 0.5));
    }
    for (size_t index : order) {
      Row& row = rows[index];
      if (row.model != "split" && static_cast<int>(row.latency_ms.size()) >= kSettleAfter &&
          Percentile(row.latency_ms, 0.5) > kSettleFactor * fastest) {
        continue;
      }
      Result<sdk::RoutedResult> r = router->Infer(row.model, inputs);
      if (!measured) continue;
      if (!r.ok()) {
        if (row.errors++ == 0) row.first_error = r.status().ToString();
        continue;
      }
      row.latency_ms.push_back(static_cast<double>(r->route.latency_nanos) / 1e6);
      row.predicted_ms.push_back(static_cast<double>(r->route.predicted_nanos) / 1e6);
      row.bytes_sent += r->route.bytes_sent;
      row.placements[std::string(sdk::PlacementName(r->route.placement))]++;
      if (!r->route.split_cut.empty()) row.chosen[r->route.split_cut]++;
      row.max_diff = std::max(row.max_diff, MaxDiff(r->outputs, expected));
    }
    std::fprintf(stderr, "  %s: round %d/%d done\n", link_name.c_str(), round + 1, rounds);
  }

  result.best_fixed_p50 = 1e300;
  // "local-only" and "fixed local" run the very same computation: the local baseline pools their
  // samples, and the gap between their p50s shows the measurement's noise.
  std::vector<double> local_samples;
  double local_only_p50 = 0;
  double fixed_local_p50 = 0;
  for (const Row& row : rows) {
    const double p50 = Percentile(row.latency_ms, 0.5);
    if (row.label == "local-only" || row.candidate == "local") {
      local_samples.insert(local_samples.end(), row.latency_ms.begin(), row.latency_ms.end());
      (row.label == "local-only" ? local_only_p50 : fixed_local_p50) = p50;
    }
    if (row.model == "cloud-only") result.cloud_p50 = p50;
    if (row.candidate == "input") result.input_p50 = p50;
    if (row.model == "split") result.split_p50 = p50;
  }
  result.local_p50 = Percentile(local_samples, 0.5);
  // The best fixed candidate; "local" counts with both local rows pooled (one computation, twice
  // the samples: the minimum over rows would otherwise favour whichever local row came out low).
  for (const Row& row : rows) {
    if (row.candidate.empty() || row.errors > 0) continue;
    const double p50 =
        row.candidate == "local" ? result.local_p50 : Percentile(row.latency_ms, 0.5);
    if (p50 < result.best_fixed_p50) {
      result.best_fixed_p50 = p50;
      result.best_fixed = row.candidate;
    }
  }
  result.identical_rows_gap =
      std::fabs(local_only_p50 - fixed_local_p50) / std::min(local_only_p50, fixed_local_p50);
  result.ratio = result.split_p50 / result.best_fixed_p50;
  // A planner that ran everything locally on most requests is local-only under another name:
  // whatever it "beats" local-only by is noise, so it does not count.
  int split_requests = 0;
  int cut_requests = 0;
  int planner_requests = 0;
  for (const Row& row : rows) {
    if (row.model != "split") continue;
    for (const auto& [cut, n] : row.chosen) {
      planner_requests += n;
      if (cut != "local") split_requests += n;
      if (cut != "local" && cut != "input") cut_requests += n;
    }
  }
  const bool mostly_cuts = 2 * cut_requests > planner_requests;
  result.planner_split_share =
      planner_requests > 0 ? static_cast<double>(split_requests) / planner_requests : 0;
  result.beats_local_and_cloud = result.planner_split_share > 0.5 &&
                                 result.split_p50 < result.local_p50 &&
                                 result.split_p50 < result.cloud_p50;
  result.beats_local_and_input =
      result.beats_local_and_cloud && mostly_cuts && result.split_p50 < result.input_p50;
  return result;
}

std::string Chosen(const Row& row) {
  std::string s;
  for (const auto& [cut, n] : row.chosen) {
    if (!s.empty()) s += ", ";
    s += cut + " x" + std::to_string(n);
  }
  return s;
}

void PrintLink(const LinkResult& r, int requests) {
  std::printf("\nlink %s (%d requests per row)\n", r.link.c_str(), requests);
  std::printf("%-58s %4s %9s %9s %9s %11s %10s  %s\n", "row", "n", "p50 ms", "p90 ms", "pred ms",
              "KB sent/req", "max |diff|", "placement / cuts chosen");
  for (const Row& row : r.rows) {
    const double n = static_cast<double>(std::max<size_t>(row.latency_ms.size(), 1));
    std::string where;
    for (const auto& [p, c] : row.placements) where += (where.empty() ? "" : ", ") + p;
    if (row.model == "split") where = Chosen(row);
    if (row.errors > 0) where += " ERRORS " + std::to_string(row.errors) + ": " + row.first_error;
    std::printf("%-58s %4zu %9.1f %9.1f %9.1f %11.1f %10.2e  %s\n", row.label.c_str(),
                row.latency_ms.size(), Percentile(row.latency_ms, 0.5),
                Percentile(row.latency_ms, 0.9), Percentile(row.predicted_ms, 0.5),
                static_cast<double>(row.bytes_sent) / n / 1e3, row.max_diff, where.c_str());
  }
  std::printf(
      "best fixed: %s (p50 %.1f ms); split p50 %.1f ms; split / best fixed = %.3f (target <= "
      "1.10: %s); the planner split %.0f %% of requests; split beats local-only (%.1f, both local "
      "rows pooled) and cloud-only (%.1f): %s; and the int8 input too (%.1f): %s; noise: the two "
      "local rows' p50s differ by %.0f %%\n",
      r.best_fixed.c_str(), r.best_fixed_p50, r.split_p50, r.ratio,
      r.ratio <= 1.10 ? "met" : "NOT met", 100 * r.planner_split_share, r.local_p50, r.cloud_p50,
      r.beats_local_and_cloud ? "yes" : "no", r.input_p50, r.beats_local_and_input ? "yes" : "no",
      100 * r.identical_rows_gap);
}

std::string Quote(const std::string& s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) >= 0x20) out += c;
  }
  return out + "\"";
}

Status WriteJson(const Flags& f, const std::vector<LinkResult>& links, bool ratio_met,
                 bool beats_somewhere) {
  const std::filesystem::path path(f.json_path);
  std::error_code ec;
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path(), ec);
  std::ofstream out(f.json_path);
  if (!out) return PermissionDeniedError("cannot write " + f.json_path);
  out << "{\n  \"benchmark\": \"hybrid_split\",\n";
  out << "  \"target\": \"split p50 <= 1.10 x the best fixed cut per link; split beats "
         "local-only and cloud-only on at least one link\",\n";
  out << "  \"model\": " << Quote(f.name) << ",\n  \"model_path\": " << Quote(f.model_path)
      << ",\n";
  out << "  \"slowdown\": " << f.slowdown << ",\n  \"server_speedup\": " << f.server_speedup
      << ",\n  \"requests\": " << f.requests << ",\n  \"warmup\": " << f.warmup
      << ",\n  \"all_cuts\": " << (f.all_cuts ? "true" : "false") << ",\n";
  out << "  \"ratio_met_on_every_link\": " << (ratio_met ? "true" : "false") << ",\n";
  out << "  \"split_beats_local_and_cloud_somewhere\": " << (beats_somewhere ? "true" : "false")
      << ",\n  \"links\": [\n";
  for (size_t l = 0; l < links.size(); ++l) {
    const LinkResult& r = links[l];
    out << "    {\"link\": " << Quote(r.link) << ", \"best_fixed\": " << Quote(r.best_fixed)
        << ", \"best_fixed_p50_ms\": " << r.best_fixed_p50 << ", \"split_p50_ms\": " << r.split_p50
        << ", \"local_p50_ms\": " << r.local_p50 << ", \"cloud_p50_ms\": " << r.cloud_p50
        << ", \"input_int8_p50_ms\": " << r.input_p50 << ", \"split_vs_best_fixed\": " << r.ratio
        << ", \"planner_split_share\": " << r.planner_split_share
        << ", \"identical_local_rows_gap\": " << r.identical_rows_gap
        << ", \"split_beats_local_and_cloud\": " << (r.beats_local_and_cloud ? "true" : "false")
        << ", \"split_beats_local_and_int8_input\": "
        << (r.beats_local_and_input ? "true" : "false") << ",\n     \"rows\": [\n";
    for (size_t i = 0; i < r.rows.size(); ++i) {
      const Row& row = r.rows[i];
      const double n = static_cast<double>(std::max<size_t>(row.latency_ms.size(), 1));
      out << "       {\"row\": " << Quote(row.label) << ", \"requests\": " << row.latency_ms.size()
          << ", \"p50_ms\": " << Percentile(row.latency_ms, 0.5)
          << ", \"p90_ms\": " << Percentile(row.latency_ms, 0.9)
          << ", \"predicted_p50_ms\": " << Percentile(row.predicted_ms, 0.5)
          << ", \"bytes_sent_per_request\": " << static_cast<double>(row.bytes_sent) / n
          << ", \"max_abs_diff_vs_local\": " << row.max_diff << ", \"errors\": " << row.errors
          << ", \"chosen\": " << Quote(Chosen(row)) << "}" << (i + 1 < r.rows.size() ? "," : "")
          << "\n";
    }
    out << "     ]}" << (l + 1 < links.size() ? "," : "") << "\n";
  }
  out << "  ]\n}\n";
  if (!out) return DataLossError("writing " + f.json_path + " failed");
  return Status::Ok();
}

Status Run(const Flags& f) {
  HML_ASSIGN_OR_RETURN(Model model, Model::Load(f.model_path));
  if (model.inputs().size() != 1) {
    return InvalidArgumentError("hybrid_split expects a model with one input");
  }
  // One fixed input image at batch 1 (random: the weights are random too), and the local model's
  // outputs for it.
  Shape shape = model.inputs()[0].shape;
  for (int64_t& d : shape) d = std::max<int64_t>(d, 1);
  HML_ASSIGN_OR_RETURN(Tensor image, Tensor::Allocate(DType::kFloat32, shape));
  FillRandom(image, 42);
  std::vector<sdk::NamedTensor> inputs;
  HML_ASSIGN_OR_RETURN(Tensor copy, image.Clone());
  inputs.push_back({model.inputs()[0].name, std::move(copy)});
  HML_ASSIGN_OR_RETURN(std::unique_ptr<Session> session, Session::Create(model, {}));
  std::vector<Tensor> in;
  in.push_back(std::move(image));
  HML_ASSIGN_OR_RETURN(std::vector<Tensor> expected, session->Run(in));

  double largest = 0;
  for (const Tensor& t : expected) {
    for (float v : t.values<float>())
      largest = std::max(largest, std::fabs(static_cast<double>(v)));
  }

  // The device on CPU 0, the server on the others (a phone does not share its CPU with the
  // cloud): the threads created while this thread is pinned to the server's CPUs (the batchers,
  // the link's timer queue, which runs the deliveries and so creates the tails' batchers)
  // inherit them; then this thread, which runs the device's requests, moves to CPU 0.
  const int cpus = static_cast<int>(std::thread::hardware_concurrency());
  const bool pin = cpus >= 2;
  if (pin) HML_RETURN_IF_ERROR(sim::PinCurrentThread(1, cpus));
  server::ModelRepositoryOptions repo_options;
  repo_options.max_split_tails_per_version = 64;  // every cut's tail stays compiled
  server::ModelRepository repo(repo_options);
  HML_RETURN_IF_ERROR(repo.LoadModel("model", 1, model));
  sim::TimerQueue timers;
  if (pin) HML_RETURN_IF_ERROR(sim::PinCurrentThread(0, 1));

  std::printf(
      "hybrid_split: %s, device slowdown %.1fx, server speedup guess %.1fx, %s cuts; the local "
      "model's outputs reach |%.4g| (compare the max |diff| column with it)\n",
      f.name.c_str(), f.slowdown, f.server_speedup, f.all_cuts ? "all" : "pruned", largest);
  std::vector<LinkResult> results;
  bool ratio_met = true;
  bool beats = false;
  for (const std::string& link : f.links) {
    HML_ASSIGN_OR_RETURN(LinkResult r, RunLink(f, model, link, repo, &timers, inputs, expected));
    PrintLink(r, f.requests);
    ratio_met = ratio_met && r.ratio <= 1.10;
    beats = beats || r.beats_local_and_cloud;
    results.push_back(std::move(r));
  }
  std::printf(
      "\nsummary: split within 10 %% of the best fixed cut on every link: %s; split beats "
      "local-only and cloud-only on at least one link: %s\n",
      ratio_met ? "yes" : "NO", beats ? "yes" : "NO");
  if (!f.json_path.empty()) {
    HML_RETURN_IF_ERROR(WriteJson(f, results, ratio_met, beats));
    std::printf("wrote %s\n", f.json_path.c_str());
  }
  return Status::Ok();
}

int Main(int argc, char** argv) {
  Result<Flags> flags = ParseFlags(argc, argv);
  if (!flags.ok()) {
    std::fprintf(stderr, "%s\n", flags.status().message().data());
    return 2;
  }
  Status s = Run(*flags);
  if (!s.ok()) {
    std::fprintf(stderr, "hybrid_split: %s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace hml::bench

int main(int argc, char** argv) { return hml::bench::Main(argc, argv); }

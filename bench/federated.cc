// federated: federated learning of the student CNN on Fashion-MNIST split non-IID across
// simulated clients, against the same model trained centrally (issue 7's benchmark).
//
// Data: the 60,000 training images dealt to --clients clients by a Dirichlet(--alpha) label
// partition (src/data/partition.h, Hsu et al. 2019); the 10,000 test images score the global
// model after every round. With --validation N, N training images (a seeded random draw) are
// held out and score the model instead of the test images, and the clients share the other
// 60,000 - N: for tuning a strategy's settings without looking at the test set. Model: student-cnn
// (src/train/zoo.h: two 3x3 conv blocks of 8 and 16 channels, a 32-unit hidden layer) from the same
// seed for every run. Training: the device code (src/sdk/fl/local_training.h over the on-device
// trainer), rounds run by the real coordinator with updates encoded and decoded as they go over the
// wire (src/sim/federated.h).
//
// Runs (--runs, comma separated):
//   central       the same trainer on all 60,000 images; one "round" = the SGD steps of one
//                 federated round summed over its clients (per-round x local-steps), same batch
//                 and learning rate, so the x axis is the same amount of computation
//   fedavg fedprox fedavgm fedadam fedyogi   strategies (src/fl/strategy.h), dense updates
//   fedavg-int8 / fedavg-topk                FedAvg with int8 / top-k (1 %, error feedback)
//                                            update compression
//   fedavg-secagg                            FedAvg summed by secure aggregation (the server sees
//                                            only the sum; src/sim/federated.h)
// Printed: accuracy per round (every --print-every rounds), then one summary row per run:
// accuracy at round 60 and at the end, best, rounds to reach FedAvg's round-60 accuracy, upload
// bytes per round (and vs dense), seconds per round; then the targets with MET/MISSED,
// the public anchor (a Flower baseline with its own CNN: FedAvg 91.3 %, FedProx 92.1 %, FedAdam
// 94.0 % after 100 rounds, 10 clients, alpha 0.3) and the process's peak resident memory.
//
// Usage: federated [--clients 10] [--per-round 10] [--rounds 100] [--alpha 0.3]
//                  [--local-steps 50] [--batch 32] [--lr 0.02] [--momentum 0.9]
//                  [--prox-mu 0.01] [--adam-lr 0.05] [--adam-tau 1e-3] [--adam-beta1 0.9]
//                  [--min-samples 10] [--runs central,fedavg,fedprox,fedadam,fedavg-int8]
//                  [--threads 2] [--eval-every 1] [--print-every 10] [--seed 1]
//                  [--validation 0] [--data DIR] [--json PATH] [--name NAME]
// JSON goes to bench/results/federated[-NAME].json.
#include "src/sim/federated.h"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "hml/env.h"
#include "src/data/dataset.h"
#include "src/data/partition.h"
#include "src/runtime/train/trainer.h"
#include "src/train/zoo.h"

namespace {

using hml::Result;
using hml::Status;

struct Flags {
  int clients = 10;
  int per_round = 10;
  int rounds = 100;
  double alpha = 0.3;
  int64_t local_steps = 50;
  int64_t batch = 32;
  double lr = 0.02;
  float momentum = 0.9f;
  double prox_mu = 0.01;
  double adam_lr = 0.05;
  double adam_tau = 1e-3;
  double adam_beta1 = 0.9;
  int64_t min_samples = 10;
  int64_t validation = 0;
  std::vector<std::string> runs = {"central", "fedavg", "fedprox", "fedadam", "fedavg-int8"};
  int threads = 2;
  int eval_every = 1;
  int print_every = 10;
  uint64_t seed = 1;
  std::string data_dir = std::string(hml::data::kFashionMnistDir);
  std::string json_path;
  std::string name;
};

std::vector<std::string> SplitCommas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

bool ParseFlags(int argc, char** argv, Flags* f) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (i + 1 >= argc) {
      std::fprintf(stderr, "federated: %s needs a value\n", arg.c_str());
      return false;
    }
    const std::string v = argv[++i];
    if (arg == "--clients")
      f->clients = std::atoi(v.c_str());
    else if (arg == "--per-round")
      f->per_round = std::atoi(v.c_str());
    else if (arg == "--rounds")
      f->rounds = std::atoi(v.c_str());
    else if (arg == "--alpha")
      f->alpha = std::atof(v.c_str());
    else if (arg == "--local-steps")
      f->local_steps = std::atoll(v.c_str());
    else if (arg == "--batch")
      f->batch = std::atoll(v.c_str());
    else if (arg == "--lr")
      f->lr = std::atof(v.c_str());
    else if (arg == "--momentum")
      f->momentum = static_cast<float>(std::atof(v.c_str()));
    else if (arg == "--prox-mu")
      f->prox_mu = std::atof(v.c_str());
    else if (arg == "--adam-lr")
      f->adam_lr = std::atof(v.c_str());
    else if (arg == "--adam-tau")
      f->adam_tau = std::atof(v.c_str());
    else if (arg == "--adam-beta1")
      f->adam_beta1 = std::atof(v.c_str());
    else if (arg == "--min-samples")
      f->min_samples = std::atoll(v.c_str());
    else if (arg == "--validation")
      f->validation = std::atoll(v.c_str());
    else if (arg == "--runs")
      f->runs = SplitCommas(v);
    else if (arg == "--threads")
      f->threads = std::atoi(v.c_str());
    else if (arg == "--eval-every")
      f->eval_every = std::atoi(v.c_str());
    else if (arg == "--print-every")
      f->print_every = std::atoi(v.c_str());
    else if (arg == "--seed")
      f->seed = std::strtoull(v.c_str(), nullptr, 10);
    else if (arg == "--data")
      f->data_dir = v;
    else if (arg == "--json")
      f->json_path = v;
    else if (arg == "--name")
      f->name = v;
    else {
      std::fprintf(stderr, "federated: unknown flag %s (see the usage in bench/federated.cc)\n",
                   arg.c_str());
      return false;
    }
  }
  if (f->json_path.empty()) {
    f->json_path = std::string(HML_SOURCE_DIR) + "/bench/results/federated" +
                   (f->name.empty() ? "" : "-" + f->name) + ".json";
  }
  return true;
}

// Peak resident set size of this process (VmHWM), in bytes; 0 when unreadable.
int64_t PeakRssBytes() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmHWM:", 0) == 0) return std::atoll(line.c_str() + 6) * 1024;
  }
  return 0;
}

// Fashion-MNIST with the training set's per-channel mean and stddev applied to both parts,
// materialised once so the clients' reads are plain copies. `test` scores the model: the test
// images, or the held-out validation images with --validation.
struct Data {
  std::shared_ptr<hml::data::InMemoryDataset> train;
  std::shared_ptr<hml::data::InMemoryDataset> test;
};

// The rows `indices` of `d`, copied.
Result<std::shared_ptr<hml::data::InMemoryDataset>> Rows(const hml::data::InMemoryDataset& d,
                                                         std::span<const int64_t> indices) {
  const auto size = static_cast<size_t>(d.feature_size());
  std::vector<float> features;
  std::vector<int64_t> labels;
  features.reserve(indices.size() * size);
  for (int64_t i : indices) {
    auto row = d.features().subspan(static_cast<size_t>(i) * size, size);
    features.insert(features.end(), row.begin(), row.end());
    labels.push_back(d.labels()[static_cast<size_t>(i)]);
  }
  return hml::data::InMemoryDataset::Create(d.feature_shape(), d.num_classes(), std::move(features),
                                            std::move(labels));
}

Result<std::shared_ptr<hml::data::InMemoryDataset>> Normalise(const hml::data::InMemoryDataset& d,
                                                              const hml::data::Normalization& n) {
  std::vector<float> features(d.features().begin(), d.features().end());
  for (float& x : features) x = (x - n.mean[0]) / n.stddev[0];
  return hml::data::InMemoryDataset::Create(
      d.feature_shape(), d.num_classes(), std::move(features),
      std::vector<int64_t>(d.labels().begin(), d.labels().end()));
}

Result<Data> LoadData(const std::string& dir, int64_t validation, uint64_t seed) {
  hml::Env& env = *hml::DefaultEnv();
  HML_ASSIGN_OR_RETURN(auto train,
                       hml::data::LoadFashionMnist(env, dir, hml::data::FashionMnistPart::kTrain));
  HML_ASSIGN_OR_RETURN(auto test,
                       hml::data::LoadFashionMnist(env, dir, hml::data::FashionMnistPart::kTest));
  HML_ASSIGN_OR_RETURN(hml::data::Normalization n, hml::data::ComputeNormalization(*train));
  Data data;
  HML_ASSIGN_OR_RETURN(data.train, Normalise(*train, n));
  HML_ASSIGN_OR_RETURN(data.test, Normalise(*test, n));
  if (validation <= 0) return data;
  if (validation >= data.train->size()) {
    return hml::InvalidArgumentError("--validation " + std::to_string(validation) +
                                     " leaves no training images (the training set has " +
                                     std::to_string(data.train->size()) + ")");
  }
  std::mt19937_64 rng(seed ^ 0x76616c6964ull);
  std::vector<int64_t> order = hml::data::ShuffledIndices(data.train->size(), rng);
  const auto cut = order.end() - validation;
  std::sort(order.begin(), cut);
  std::sort(cut, order.end());
  HML_ASSIGN_OR_RETURN(data.test, Rows(*data.train, std::span(cut, order.end())));
  HML_ASSIGN_OR_RETURN(data.train, Rows(*data.train, std::span(order.begin(), cut)));
  return data;
}

struct RunResult {
  std::string name;
  std::vector<double> accuracy;  // per round, -1 when not scored
  double initial_accuracy = 0;
  double bytes_per_round = 0;        // mean upload bytes accepted per applied round
  double dense_bytes_per_round = 0;  // the same updates as float32
  double seconds_per_round = 0;
  int abandoned = 0;
  int64_t rejected = 0;
};

// Last scored accuracy at or before round `r` (1-based); -1 when none.
double AccuracyAt(const RunResult& run, int r) {
  for (int i = std::min<int>(r, static_cast<int>(run.accuracy.size())); i >= 1; --i) {
    if (run.accuracy[static_cast<size_t>(i - 1)] >= 0)
      return run.accuracy[static_cast<size_t>(i - 1)];
  }
  return -1;
}

double Best(const RunResult& run) {
  double best = -1;
  for (double a : run.accuracy) best = std::max(best, a);
  return best;
}

// First round (1-based) whose accuracy reaches `target`; 0 when never.
int RoundsTo(const RunResult& run, double target) {
  for (size_t i = 0; i < run.accuracy.size(); ++i) {
    if (run.accuracy[i] >= target) return static_cast<int>(i + 1);
  }
  return 0;
}

Result<RunResult> RunCentral(const hml::runtime::Graph& model, const Data& data, const Flags& f) {
  hml::runtime::TrainOptions options;
  options.learning_rate = static_cast<float>(f.lr);
  options.momentum = f.momentum;
  HML_ASSIGN_OR_RETURN(auto trainer, hml::runtime::Trainer::Create(model, options));
  RunResult run;
  run.name = "central";
  HML_ASSIGN_OR_RETURN(run.initial_accuracy, hml::sim::EvaluateWeights(model, {}, *data.test));
  const int64_t steps_per_round = static_cast<int64_t>(f.per_round) * f.local_steps;
  const int64_t feature_size = data.train->feature_size();
  std::mt19937_64 rng(f.seed);
  std::vector<int64_t> order;
  size_t next = 0;
  std::vector<float> features(static_cast<size_t>(f.batch * feature_size));
  std::vector<int64_t> labels(static_cast<size_t>(f.batch));
  double seconds = 0;
  for (int r = 1; r <= f.rounds; ++r) {
    const auto start = std::chrono::steady_clock::now();
    for (int64_t s = 0; s < steps_per_round; ++s) {
      for (int64_t b = 0; b < f.batch; ++b) {
        if (next == order.size()) {
          order = hml::data::ShuffledIndices(data.train->size(), rng);
          next = 0;
        }
        HML_ASSIGN_OR_RETURN(
            labels[static_cast<size_t>(b)],
            data.train->Get(order[next++], std::span<float>(features).subspan(
                                               static_cast<size_t>(b * feature_size),
                                               static_cast<size_t>(feature_size))));
      }
      HML_ASSIGN_OR_RETURN(hml::Tensor inputs,
                           hml::Tensor::FromVector<float>({f.batch, 1, 28, 28}, features));
      HML_ASSIGN_OR_RETURN(hml::runtime::StepResult step, trainer->Step(inputs, labels));
      (void)step;
    }
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    double acc = -1;
    if (r % f.eval_every == 0 || r == f.rounds) {
      HML_ASSIGN_OR_RETURN(acc,
                           hml::sim::EvaluateWeights(model, trainer->GetParameters(), *data.test));
    }
    run.accuracy.push_back(acc);
    if (acc >= 0 && (r % f.print_every == 0 || r == 1)) {
      std::printf("  central   round %3d  acc %.2f %%\n", r, 100 * acc);
      std::fflush(stdout);
    }
  }
  run.seconds_per_round = seconds / f.rounds;
  return run;
}

Result<RunResult> RunFederated(const std::string& name, const hml::runtime::Graph& model,
                               const std::vector<hml::sim::FederatedClient>& clients,
                               const Data& data, const Flags& f) {
  hml::sim::FederatedSimOptions options;
  hml::fl::RoundConfig& round = options.round;
  round.clients_per_round = f.per_round;
  round.over_selection = 1.0;
  round.min_report_fraction = 1.0;
  round.local_steps = f.local_steps;
  round.local_epochs = 0;
  round.batch_size = f.batch;
  round.learning_rate = f.lr;
  round.prox_mu = f.prox_mu;
  round.seed = f.seed;
  std::string strategy = name;
  if (name == "fedavg-int8" || name == "fedavg-topk") {
    strategy = "fedavg";
    round.codec = name == "fedavg-int8" ? "int8" : "topk";
    round.int8_chunk_size = 1024;
  }
  if (name == "fedavg-secagg") {
    strategy = "fedavg";
    round.secure_aggregation = true;
  }
  round.strategy = strategy;
  if (strategy == "fedadam" || strategy == "fedyogi") {
    round.server_lr = f.adam_lr;
    round.tau = f.adam_tau;
    round.beta1 = f.adam_beta1;
  }
  options.client_momentum = f.momentum;
  options.rounds = f.rounds;
  options.threads = f.threads;
  options.eval_every = f.eval_every;
  options.seed = f.seed;
  int printed_round = 0;
  options.progress = [&](const hml::sim::FederatedRoundRecord& rec) {
    ++printed_round;
    if (rec.accuracy >= 0 && (printed_round % f.print_every == 0 || printed_round == 1)) {
      std::printf("  %-12s round %3d  acc %.2f %%  %s  %lld B up  %.2f s\n", name.c_str(),
                  printed_round, 100 * rec.accuracy,
                  std::string(hml::fl::RoundStatusName(rec.result.status)).c_str(),
                  static_cast<long long>(rec.result.bytes_accepted), rec.seconds);
      std::fflush(stdout);
    }
  };
  HML_ASSIGN_OR_RETURN(hml::sim::FederatedSimResult sim,
                       hml::sim::RunFederatedSimulation(model, clients, *data.test, options));
  RunResult run;
  run.name = name;
  run.initial_accuracy = sim.initial_accuracy;
  double bytes = 0, dense = 0, seconds = 0;
  int applied = 0;
  for (const hml::sim::FederatedRoundRecord& rec : sim.rounds) {
    run.accuracy.push_back(rec.accuracy);
    seconds += rec.seconds;
    run.rejected += rec.result.rejections.total();
    if (rec.result.status == hml::fl::RoundStatus::kApplied) {
      ++applied;
      bytes += static_cast<double>(rec.result.bytes_accepted);
      dense += static_cast<double>(rec.result.dense_bytes_accepted);
    } else {
      ++run.abandoned;
    }
  }
  run.bytes_per_round = applied > 0 ? bytes / applied : 0;
  run.dense_bytes_per_round = applied > 0 ? dense / applied : 0;
  run.seconds_per_round = seconds / static_cast<double>(sim.rounds.size());
  return run;
}

const std::map<std::string, double> kFlowerAnchor = {
    {"fedavg", 0.913}, {"fedprox", 0.921}, {"fedadam", 0.940}};

const RunResult* Find(const std::vector<RunResult>& runs, const std::string& name) {
  for (const RunResult& r : runs) {
    if (r.name == name) return &r;
  }
  return nullptr;
}

int Main(int argc, char** argv) {
  Flags f;
  if (!ParseFlags(argc, argv, &f)) return 2;
  Result<Data> data = LoadData(f.data_dir, f.validation, f.seed);
  if (!data.ok()) {
    std::fprintf(stderr, "federated: %s\n", data.status().ToString().c_str());
    return 1;
  }
  Result<hml::runtime::Graph> model =
      hml::train::BuildArchitecture("student-cnn", {1, 28, 28}, 10, f.seed);
  if (!model.ok()) {
    std::fprintf(stderr, "federated: %s\n", model.status().ToString().c_str());
    return 1;
  }
  hml::data::DirichletOptions split;
  split.alpha = f.alpha;
  split.seed = f.seed;
  split.min_samples = f.min_samples;
  auto parts = hml::data::DirichletPartition(data->train->labels(), 10, f.clients, split);
  if (!parts.ok()) {
    std::fprintf(stderr, "federated: %s\n", parts.status().ToString().c_str());
    return 1;
  }
  std::vector<hml::sim::FederatedClient> clients;
  size_t smallest = data->train->size(), largest = 0;
  for (size_t c = 0; c < parts->size(); ++c) {
    smallest = std::min(smallest, (*parts)[c].size());
    largest = std::max(largest, (*parts)[c].size());
    auto subset = hml::data::SubsetDataset::Create(data->train, (*parts)[c]);
    if (!subset.ok()) return 1;
    clients.push_back({"client-" + std::to_string(c), *subset});
  }
  std::printf(
      "federated: %d clients (Dirichlet alpha %.2f: %zu to %zu samples each), %d per "
      "round, %d rounds, %lld local steps of %lld, lr %.3g, momentum %.2f\n",
      f.clients, f.alpha, smallest, largest, f.per_round, f.rounds,
      static_cast<long long>(f.local_steps), static_cast<long long>(f.batch), f.lr, f.momentum);
  std::printf("accuracy on %lld %s images\n", static_cast<long long>(data->test->size()),
              f.validation > 0 ? "held-out validation" : "test");

  std::vector<RunResult> runs;
  for (const std::string& name : f.runs) {
    std::printf("run %s\n", name.c_str());
    std::fflush(stdout);
    Result<RunResult> run = name == "central" ? RunCentral(*model, *data, f)
                                              : RunFederated(name, *model, clients, *data, f);
    if (!run.ok()) {
      std::fprintf(stderr, "federated: run %s: %s\n", name.c_str(),
                   run.status().ToString().c_str());
      return 1;
    }
    runs.push_back(std::move(*run));
  }

  // Accuracy per round, one column per run.
  std::printf("\n%5s", "round");
  for (const RunResult& r : runs) std::printf(" %12s", r.name.c_str());
  std::printf("\n%5d", 0);
  for (const RunResult& r : runs) std::printf(" %11.2f%%", 100 * r.initial_accuracy);
  std::printf("\n");
  for (int round = 1; round <= f.rounds; ++round) {
    std::printf("%5d", round);
    for (const RunResult& r : runs) {
      const double a = r.accuracy[static_cast<size_t>(round - 1)];
      if (a >= 0) {
        std::printf(" %11.2f%%", 100 * a);
      } else {
        std::printf(" %12s", "-");
      }
    }
    std::printf("\n");
  }

  const RunResult* fedavg = Find(runs, "fedavg");
  const double fedavg60 = fedavg != nullptr ? AccuracyAt(*fedavg, 60) : -1;
  std::printf("\n%-12s %8s %8s %8s %8s %10s %12s %8s %8s %8s\n", "run", "acc@0", "acc@60", "final",
              "best", "to fa@60", "bytes/round", "x dense", "s/round", "Flower");
  for (const RunResult& r : runs) {
    const int to = fedavg60 > 0 ? RoundsTo(r, fedavg60) : 0;
    const auto anchor = kFlowerAnchor.find(r.name);
    std::printf("%-12s %7.2f%% %7.2f%% %7.2f%% %7.2f%% %10s %12.0f %8.2f %8.2f %8s\n",
                r.name.c_str(), 100 * r.initial_accuracy, 100 * AccuracyAt(r, 60),
                100 * AccuracyAt(r, f.rounds), 100 * Best(r),
                to > 0 ? std::to_string(to).c_str() : "never", r.bytes_per_round,
                r.bytes_per_round > 0 ? r.dense_bytes_per_round / r.bytes_per_round : 0.0,
                r.seconds_per_round,
                anchor != kFlowerAnchor.end()
                    ? (std::to_string(anchor->second * 100).substr(0, 4) + "%").c_str()
                    : "");
  }

  // The targets, when the runs they need are present.
  nlohmann::json targets = nlohmann::json::array();
  auto target = [&](const std::string& what, bool met, const std::string& measured) {
    std::printf("target: %-64s %s (%s)\n", what.c_str(), met ? "MET" : "MISSED", measured.c_str());
    targets.push_back({{"target", what}, {"met", met}, {"measured", measured}});
  };
  char buf[256];
  const RunResult* central = Find(runs, "central");
  if (central != nullptr && fedavg != nullptr && f.rounds >= 60) {
    const double c = AccuracyAt(*central, f.rounds);
    std::snprintf(buf, sizeof buf, "FedAvg r60 %.2f %%, central %.2f %%, gap %.2f pt",
                  100 * fedavg60, 100 * c, 100 * (c - fedavg60));
    target("FedAvg within 1.5 pt of central by round 60", c - fedavg60 <= 0.015, buf);
  }
  if (fedavg != nullptr && f.rounds >= 60) {
    for (const char* name : {"fedprox", "fedadam"}) {
      if (const RunResult* r = Find(runs, name)) {
        const int to = RoundsTo(*r, fedavg60);
        std::snprintf(buf, sizeof buf, "%s reaches %.2f %% at round %s", name, 100 * fedavg60,
                      to > 0 ? std::to_string(to).c_str() : "never");
        target(std::string(name) + " reaches FedAvg's r60 accuracy in <= 40 rounds",
               to > 0 && to <= 40, buf);
      }
    }
  }
  if (const RunResult* q = Find(runs, "fedavg-int8"); q != nullptr && fedavg != nullptr) {
    const double ratio = q->dense_bytes_per_round / std::max(1.0, q->bytes_per_round);
    const double plain_ratio = fedavg->bytes_per_round / std::max(1.0, q->bytes_per_round);
    std::snprintf(buf, sizeof buf, "%.0f vs %.0f B/round: %.2fx (vs float32 %.2fx)",
                  q->bytes_per_round, fedavg->bytes_per_round, plain_ratio, ratio);
    target("int8 updates: >= 3.5x fewer bytes per round", plain_ratio >= 3.5, buf);
    const double diff = AccuracyAt(*fedavg, f.rounds) - AccuracyAt(*q, f.rounds);
    std::snprintf(buf, sizeof buf, "final %.2f %% vs %.2f %%: %.2f pt",
                  100 * AccuracyAt(*q, f.rounds), 100 * AccuracyAt(*fedavg, f.rounds), 100 * diff);
    target("int8 updates: final accuracy within 0.5 pt of dense",
           std::abs(diff) <= 0.005 || diff < 0, buf);
  }
  const int64_t peak = PeakRssBytes();
  std::printf("peak resident memory: %.1f MiB\n", static_cast<double>(peak) / (1 << 20));
  if (f.clients >= 1000) {
    std::snprintf(buf, sizeof buf, "%d clients, peak RSS %.1f MiB", f.clients,
                  static_cast<double>(peak) / (1 << 20));
    target("1,000-client simulation within 4 GB", peak > 0 && peak <= (int64_t{4} << 30), buf);
  }

  nlohmann::json out;
  out["benchmark"] = "federated";
  out["config"] = {{"clients", f.clients},
                   {"per_round", f.per_round},
                   {"rounds", f.rounds},
                   {"alpha", f.alpha},
                   {"local_steps", f.local_steps},
                   {"batch", f.batch},
                   {"lr", f.lr},
                   {"momentum", f.momentum},
                   {"prox_mu", f.prox_mu},
                   {"adam_lr", f.adam_lr},
                   {"adam_tau", f.adam_tau},
                   {"adam_beta1", f.adam_beta1},
                   {"threads", f.threads},
                   {"seed", f.seed},
                   {"scored_on", f.validation > 0 ? "validation" : "test"},
                   {"scored_samples", data->test->size()},
                   {"client_samples_min", smallest},
                   {"client_samples_max", largest}};
  out["runs"] = nlohmann::json::array();
  for (const RunResult& r : runs) {
    out["runs"].push_back({{"name", r.name},
                           {"initial_accuracy", r.initial_accuracy},
                           {"accuracy", r.accuracy},
                           {"bytes_per_round", r.bytes_per_round},
                           {"dense_bytes_per_round", r.dense_bytes_per_round},
                           {"seconds_per_round", r.seconds_per_round},
                           {"abandoned_rounds", r.abandoned},
                           {"rejected_updates", r.rejected}});
  }
  out["targets"] = targets;
  out["peak_rss_bytes"] = peak;
  out["flower_anchor"] = kFlowerAnchor;
  std::ofstream json(f.json_path);
  json << out.dump(1) << "\n";
  std::printf("wrote %s\n", f.json_path.c_str());
  return json.good() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) { return Main(argc, argv); }

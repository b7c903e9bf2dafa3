// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// train_throughput: training samples/s of hybridml's C++ trainer (hml::train::Train on a
// GraphModule built by src/train/zoo.cc) against the same model, batch and optimiser in Python
// with Debian's python3-torch (bench/train_throughput.py), side by side in one run, 1 intra-op
// thread in both. Target (issue 3): hybridml / python at least 1.0.
//
//   models      mlp, student-cnn, teacher-cnn (zoo.cc BuildArchitecture; the Python script
//               rebuilds each with torch.nn, and the parameter counts are checked to agree)
//   batches     64 and 128
//   optimizers  sgd (momentum 0.9, lr 0.01) and adam (lr 0.001), no weight decay
//   data        the first steps*batch Fashion-MNIST training images, [1,28,28] in [0,1]
//               (or --data synthetic: uniform random images of that shape)
//
// What is timed, in both: one epoch of `steps` batches after `warmup` untimed steps. A step is
// the whole training step of hml::train::Train: gathering the batch through a shuffled order
// (data loading is INCLUDED in both), forward, cross-entropy, loss.item(), zero_grad, backward,
// optimiser step and the accuracy count. For hybridml the time is EpochStats::seconds of the
// timed Train() call; the Python script times the same loop with perf_counter. Not timed: reading
// the dataset, building the model, the interpreter start and torch import.
//
// Two rates per run: samples per wall-clock second, and samples per second of process CPU time
// (CLOCK_PROCESS_CPUTIME_ID around the timed Train() call here, time.process_time() around the
// timed epoch in Python). With one intra-op thread the CPU-time rate is what the wall-clock rate
// would be on an idle core, and other processes on a busy machine disturb it far less; the
// target is judged on it, and the wall-clock rate is printed beside it.
//
// Each cell runs `--rounds` times, alternating hybridml (in this process) and Python (one child
// process for the whole run, `train_throughput.py --serve`, so torch is imported and the data
// read once), so that load from other processes hits both alike; the best round of each is
// reported (the least disturbed one) and every round is kept in the JSON. The load average at
// start and end is printed and recorded: on a shared machine the ratio is the claim, not the
// absolute numbers.
//
// Prints one table and writes JSON (default bench/results/train_throughput.json).
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "hml/env.h"
#include "hml/status.h"
#include "src/data/dataset.h"
#include "src/train/graph_module.h"
#include "src/train/trainer.h"
#include "src/train/zoo.h"

namespace hml::bench {
namespace {

struct Flags {
  std::vector<std::string> models{"mlp", "student-cnn", "teacher-cnn"};
  std::vector<int64_t> batches{64, 128};
  std::vector<std::string> optimizers{"sgd", "adam"};
  // teacher-cnn is ~15x slower per sample than student-cnn: by default only batch 64 with SGD.
  bool teacher_all = false;
  int rounds = 5;
  // Timed samples per cell (steps = samples / batch); 0 = the per-model default.
  int64_t samples = 0;
  int64_t warmup_steps = 5;
  std::string data = "fashion";
  std::string python = "/usr/bin/python3";
  std::string script = HML_SOURCE_DIR "/bench/train_throughput.py";
  std::string json_path = HML_SOURCE_DIR "/bench/results/train_throughput.json";
};

constexpr char kUsage[] = R"(usage: train_throughput [options]
  --models LIST        default mlp,student-cnn,teacher-cnn
  --batches LIST       default 64,128
  --optimizers LIST    sgd,adam (default both)
  --teacher-all        teacher-cnn in every batch/optimizer cell (default: batch 64, sgd only)
  --rounds N           alternating hybridml/python rounds per cell, best kept (default 2)
  --samples N          timed samples per cell (default: mlp 19200, student-cnn 9600,
                       teacher-cnn 1920)
  --warmup N           untimed warm-up steps (default 5)
  --data fashion|synthetic   default fashion (/usr/share/datasets/fashion-mnist)
  --python PATH        default /usr/bin/python3 (has Debian's python3-torch)
  --script PATH        default <source>/bench/train_throughput.py
  --json PATH          default <source>/bench/results/train_throughput.json
)";

std::vector<std::string> SplitList(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

Result<int64_t> ParseInt(const std::string& flag, const std::string& v, int64_t min) {
  char* end = nullptr;
  const long long n = std::strtoll(v.c_str(), &end, 10);
  if (end == v.c_str() || *end != '\0' || n < min) {
    return InvalidArgumentError(flag + ": '" + v + "' is not an integer >= " + std::to_string(min));
  }
  return static_cast<int64_t>(n);
}

Result<Flags> ParseFlags(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto next = [&]() -> Result<std::string> {
      if (i + 1 >= argc) return InvalidArgumentError(arg + " needs a value");
      return std::string(argv[++i]);
    };
    if (arg == "--models") {
      HML_ASSIGN_OR_RETURN(std::string v, next());
      f.models = SplitList(v);
    } else if (arg == "--batches") {
      HML_ASSIGN_OR_RETURN(std::string v, next());
      f.batches.clear();
      for (const std::string& b : SplitList(v)) {
        HML_ASSIGN_OR_RETURN(int64_t n, ParseInt(arg, b, 1));
        f.batches.push_back(n);
      }
    } else if (arg == "--optimizers") {
      HML_ASSIGN_OR_RETURN(std::string v, next());
      f.optimizers = SplitList(v);
      for (const std::string& o : f.optimizers) {
        if (o != "sgd" && o != "adam") return InvalidArgumentError("unknown optimizer " + o);
      }
    } else if (arg == "--teacher-all") {
      f.teacher_all = true;
    } else if (arg == "--rounds") {
      HML_ASSIGN_OR_RETURN(std::string v, next());
      HML_ASSIGN_OR_RETURN(int64_t n, ParseInt(arg, v, 1));
      f.rounds = static_cast<int>(n);
    } else if (arg == "--samples") {
      HML_ASSIGN_OR_RETURN(std::string v, next());
      HML_ASSIGN_OR_RETURN(f.samples, ParseInt(arg, v, 1));
    } else if (arg == "--warmup") {
      HML_ASSIGN_OR_RETURN(std::string v, next());
      HML_ASSIGN_OR_RETURN(f.warmup_steps, ParseInt(arg, v, 0));
    } else if (arg == "--data") {
      HML_ASSIGN_OR_RETURN(f.data, next());
      if (f.data != "fashion" && f.data != "synthetic") {
        return InvalidArgumentError("--data must be fashion or synthetic");
      }
    } else if (arg == "--python") {
      HML_ASSIGN_OR_RETURN(f.python, next());
    } else if (arg == "--script") {
      HML_ASSIGN_OR_RETURN(f.script, next());
    } else if (arg == "--json") {
      HML_ASSIGN_OR_RETURN(f.json_path, next());
    } else {
      return InvalidArgumentError("unknown argument '" + arg + "'\n" + kUsage);
    }
  }
  return f;
}

// Samples per second of one timed epoch: by wall clock and by process CPU time.
struct Rate {
  double wall = 0.0;
  double cpu = 0.0;
};

double Best(const std::vector<Rate>& v, double Rate::*field) {
  double best = 0.0;
  for (const Rate& r : v) best = std::max(best, r.*field);
  return best;
}

struct Cell {
  std::string model;
  int64_t batch = 0;
  std::string optimizer;
  int64_t steps = 0;
  std::vector<Rate> hml_rounds, py_rounds;
  int64_t hml_parameters = 0, py_parameters = 0;
  std::string error;
  double hml_best(double Rate::*field = &Rate::cpu) const { return Best(hml_rounds, field); }
  double py_best(double Rate::*field = &Rate::cpu) const { return Best(py_rounds, field); }
  double ratio(double Rate::*field = &Rate::cpu) const {
    return py_best(field) > 0 ? hml_best(field) / py_best(field) : 0.0;
  }
};

double CpuSeconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

int64_t DefaultSamples(const std::string& model) {
  if (model == "mlp") return 19200;
  if (model == "student-cnn") return 9600;
  return 1920;
}

std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

double LearningRate(const std::string& optimizer) { return optimizer == "sgd" ? 0.01 : 0.001; }

// The first n samples of `base`.
Result<std::shared_ptr<data::SubsetDataset>> FirstSamples(
    const std::shared_ptr<const data::Dataset>& base, int64_t n) {
  std::vector<int64_t> idx(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) idx[static_cast<size_t>(i)] = i;
  return data::SubsetDataset::Create(base, std::move(idx));
}

Result<std::shared_ptr<const data::Dataset>> LoadData(const std::string& source) {
  if (source == "fashion") {
    HML_ASSIGN_OR_RETURN(std::shared_ptr<data::InMemoryDataset> d,
                         data::LoadFashionMnist(*DefaultEnv(), data::kFashionMnistDir,
                                                 data::FashionMnistPart::kTrain));
    return std::shared_ptr<const data::Dataset>(std::move(d));
  }
  constexpr int64_t kN = 60000, kF = 784;
  std::mt19937_64 rng(1);
  std::vector<float> x(static_cast<size_t>(kN * kF));
  for (float& v : x) v = static_cast<float>(static_cast<double>(rng() >> 11) * 0x1p-53);
  std::vector<int64_t> y(static_cast<size_t>(kN));
  for (int64_t& v : y) v = static_cast<int64_t>(data::UniformIndex(rng, 10));
  HML_ASSIGN_OR_RETURN(std::shared_ptr<data::InMemoryDataset> d,
                       data::InMemoryDataset::Create({1, 28, 28}, 10, std::move(x), std::move(y)));
  return std::shared_ptr<const data::Dataset>(std::move(d));
}

// One hybridml round of a cell: a fresh module, `warmup` untimed steps, then one timed epoch
// of cell.steps steps. The CPU time spans the whole timed Train() call (optimizer creation
// included, which slightly favours Python).
Result<Rate> RunHybridml(const Flags& f, const std::shared_ptr<const data::Dataset>& data,
                         Cell& cell) {
  HML_ASSIGN_OR_RETURN(runtime::Graph graph,
                       train::BuildArchitecture(cell.model, {1, 28, 28}, 10, /*seed=*/1));
  HML_ASSIGN_OR_RETURN(std::unique_ptr<train::GraphModule> module,
                       train::GraphModule::Create(graph));
  cell.hml_parameters = module->num_parameters();
  train::TrainOptions o;
  o.optimizer = cell.optimizer == "sgd" ? train::OptimizerKind::kSgd : train::OptimizerKind::kAdam;
  o.learning_rate = LearningRate(cell.optimizer);
  o.momentum = 0.9;
  o.batch_size = cell.batch;
  o.epochs = 1;
  o.num_threads = 1;
  o.seed = 1;
  if (f.warmup_steps > 0) {
    HML_ASSIGN_OR_RETURN(std::shared_ptr<data::SubsetDataset> warm,
                         FirstSamples(data, f.warmup_steps * cell.batch));
    HML_RETURN_IF_ERROR(train::Train(*module, *warm, nullptr, o).status());
  }
  HML_ASSIGN_OR_RETURN(std::shared_ptr<data::SubsetDataset> timed,
                       FirstSamples(data, cell.steps * cell.batch));
  const double cpu_start = CpuSeconds();
  HML_ASSIGN_OR_RETURN(train::TrainReport report, train::Train(*module, *timed, nullptr, o));
  const double cpu = CpuSeconds() - cpu_start;
  Rate rate;
  rate.wall = report.epochs.at(0).samples_per_second;
  rate.cpu = static_cast<double>(cell.steps * cell.batch) / std::max(cpu, 1e-9);
  return rate;
}

// The number after "key": in a one-line JSON object, or -1.
double JsonNumber(const std::string& line, const std::string& key) {
  const std::string pat = "\"" + key + "\": ";
  const size_t p = line.find(pat);
  if (p == std::string::npos) return -1.0;
  return std::strtod(line.c_str() + p + pat.size(), nullptr);
}

// The Python peer: one `train_throughput.py --serve` child for the whole run. Measure() sends a
// cell on its stdin and reads the JSON line it answers with.
class PythonPeer {
 public:
  ~PythonPeer() { Stop(); }

  Status Start(const Flags& f) {
    int to_child[2], from_child[2];
    if (::pipe(to_child) != 0 || ::pipe(from_child) != 0) return InternalError("pipe failed");
    pid_ = ::fork();
    if (pid_ < 0) return InternalError("fork failed");
    if (pid_ == 0) {
      ::dup2(to_child[0], 0);
      ::dup2(from_child[1], 1);
      ::close(to_child[0]);
      ::close(to_child[1]);
      ::close(from_child[0]);
      ::close(from_child[1]);
      const std::string data = f.data;
      ::execl(f.python.c_str(), f.python.c_str(), f.script.c_str(), "--serve", "--threads", "1",
              "--data", data.c_str(), static_cast<char*>(nullptr));
      std::perror("exec python");
      ::_exit(127);
    }
    ::close(to_child[0]);
    ::close(from_child[1]);
    to_ = ::fdopen(to_child[1], "w");
    from_ = ::fdopen(from_child[0], "r");
    if (to_ == nullptr || from_ == nullptr) return InternalError("fdopen failed");
    command_ = f.python + " " + f.script + " --serve";
    // Wait until torch is imported and the data read, so that no measurement overlaps them.
    if (const std::string line = ReadLine(); line.find("\"ready\"") == std::string::npos) {
      return InternalError("python peer (" + command_ + ") did not start: " + line);
    }
    return Status::Ok();
  }

  Result<Rate> Measure(const Flags& f, Cell& cell) {
    std::fprintf(to_, "%s %lld %s %lld %lld\n", cell.model.c_str(),
                 static_cast<long long>(cell.batch), cell.optimizer.c_str(),
                 static_cast<long long>(cell.steps), static_cast<long long>(f.warmup_steps));
    std::fflush(to_);
    const std::string line = ReadLine();
    Rate rate;
    rate.wall = JsonNumber(line, "samples_per_second");
    rate.cpu = JsonNumber(line, "samples_per_cpu_second");
    if (rate.wall <= 0 || rate.cpu <= 0) {
      return InternalError("python peer (" + command_ + ") failed: " +
                           (line.empty() ? std::string("no answer (see stderr)") : line));
    }
    cell.py_parameters = static_cast<int64_t>(JsonNumber(line, "parameters"));
    return rate;
  }

  void Stop() {
    if (to_ != nullptr) std::fclose(to_);
    if (from_ != nullptr) std::fclose(from_);
    to_ = from_ = nullptr;
    if (pid_ > 0) ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  std::string ReadLine() {
    std::string line;
    int ch;
    while ((ch = std::fgetc(from_)) != EOF && ch != '\n') line.push_back(static_cast<char>(ch));
    return line;
  }

  pid_t pid_ = -1;
  FILE* to_ = nullptr;
  FILE* from_ = nullptr;
  std::string command_;
};

Status WriteJson(const Flags& f, const std::vector<Cell>& cells, const std::string& load_start,
                 const std::string& load_end) {
  std::filesystem::path path(f.json_path);
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  std::ofstream out(f.json_path);
  if (!out) return PermissionDeniedError("cannot write " + f.json_path);
  auto list = [](const std::vector<Rate>& v, double Rate::*field) {
    std::string s = "[";
    for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i].*field);
    return s + "]";
  };
  out << "{\n  \"benchmark\": \"train_throughput\",\n";
  out << "  \"target\": \"hybridml / python samples per CPU second >= 1.0\",\n";
  out << "  \"method\": \"best of " << f.rounds << " alternating rounds; one timed epoch after "
      << f.warmup_steps << " warm-up steps; data loading included in both; 1 intra-op thread\",\n";
  out << "  \"data\": \"" << f.data << "\",\n";
  out << "  \"host\": {\"cpus\": " << ::sysconf(_SC_NPROCESSORS_ONLN) << ", \"loadavg_start\": \""
      << load_start << "\", \"loadavg_end\": \"" << load_end << "\"},\n";
  out << "  \"cells\": [\n";
  for (size_t i = 0; i < cells.size(); ++i) {
    const Cell& c = cells[i];
    out << "    {\"model\": \"" << c.model << "\", \"batch\": " << c.batch << ", \"optimizer\": \""
        << c.optimizer << "\", \"steps\": " << c.steps
        << ", \"parameters_hybridml\": " << c.hml_parameters
        << ", \"parameters_python\": " << c.py_parameters
        << ", \"hybridml_samples_per_cpu_s\": " << c.hml_best()
        << ", \"python_samples_per_cpu_s\": " << c.py_best() << ", \"ratio\": " << c.ratio()
        << ", \"hybridml_samples_per_wall_s\": " << c.hml_best(&Rate::wall)
        << ", \"python_samples_per_wall_s\": " << c.py_best(&Rate::wall)
        << ", \"ratio_wall\": " << c.ratio(&Rate::wall)
        << ", \"hybridml_rounds_cpu\": " << list(c.hml_rounds, &Rate::cpu)
        << ", \"python_rounds_cpu\": " << list(c.py_rounds, &Rate::cpu)
        << ", \"hybridml_rounds_wall\": " << list(c.hml_rounds, &Rate::wall)
        << ", \"python_rounds_wall\": " << list(c.py_rounds, &Rate::wall) << ", \"error\": \""
        << c.error << "\"}" << (i + 1 < cells.size() ? "," : "") << "\n";
  }
  out << "  ]\n}\n";
  if (!out) return DataLossError("writing " + f.json_path + " failed");
  return Status::Ok();
}

int Main(int argc, char** argv) {
  Result<Flags> parsed = ParseFlags(argc, argv);
  if (!parsed.ok()) {
    std::fprintf(stderr, "%s\n", parsed.status().ToString().c_str());
    return 2;
  }
  const Flags& f = *parsed;
  std::vector<Cell> cells;
  for (const std::string& m : f.models) {
    for (int64_t b : f.batches) {
      for (const std::string& o : f.optimizers) {
        if (m == "teacher-cnn" && !f.teacher_all && (b != f.batches[0] || o != f.optimizers[0])) {
          continue;
        }
        Cell c;
        c.model = m;
        c.batch = b;
        c.optimizer = o;
        c.steps = std::max<int64_t>(1, (f.samples > 0 ? f.samples : DefaultSamples(m)) / b);
        if (std::max(c.steps, f.warmup_steps) * b > 60000) {
          std::fprintf(stderr, "steps * batch exceeds the 60000 training samples\n");
          return 2;
        }
        cells.push_back(c);
      }
    }
  }
  Result<std::shared_ptr<const data::Dataset>> data = LoadData(f.data);
  if (!data.ok()) {
    std::fprintf(stderr, "%s\n", data.status().ToString().c_str());
    return 1;
  }
  PythonPeer python;
  if (Status s = python.Start(f); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  const std::string load_start = LoadAverage();
  std::printf("train_throughput: %zu cells x %d rounds, data %s, 1 thread, load average %s\n",
              cells.size(), f.rounds, f.data.c_str(), load_start.c_str());
  bool failed = false;
  // Rounds outside, cells inside: each cell's rounds spread over the whole run, so that one busy
  // period of the machine cannot spoil all rounds of a cell.
  for (int r = 0; r < f.rounds; ++r) {
    for (Cell& c : cells) {
      if (!c.error.empty()) continue;
      Result<Rate> h = RunHybridml(f, *data, c);
      Result<Rate> p = h.ok() ? python.Measure(f, c) : Result<Rate>(h.status());
      if (!h.ok() || !p.ok()) {
        c.error = (!h.ok() ? h.status() : p.status()).ToString();
        std::fprintf(stderr, "%s b%lld %s: %s\n", c.model.c_str(), static_cast<long long>(c.batch),
                     c.optimizer.c_str(), c.error.c_str());
        failed = true;
        continue;
      }
      c.hml_rounds.push_back(*h);
      c.py_rounds.push_back(*p);
      std::printf(
          "  %-12s b%-4lld %-5s round %d: samples/cpu-s hybridml %7.0f python %7.0f | "
          "samples/wall-s hybridml %7.0f python %7.0f\n",
          c.model.c_str(), static_cast<long long>(c.batch), c.optimizer.c_str(), r + 1, h->cpu,
          p->cpu, h->wall, p->wall);
      std::fflush(stdout);
    }
  }
  for (Cell& c : cells) {
    if (c.error.empty() && c.hml_parameters != c.py_parameters) {
      c.error = "parameter counts differ";
      failed = true;
    }
  }
  python.Stop();
  const std::string load_end = LoadAverage();
  std::printf("\nsamples/s: per CPU second (the claim) and per wall second, best of %d rounds\n",
              f.rounds);
  std::printf("%-12s %5s %4s %8s | %9s %9s %6s | %9s %9s %6s\n", "model", "batch", "opt", "params",
              "hml/cpu", "py/cpu", "ratio", "hml/wall", "py/wall", "ratio");
  for (const Cell& c : cells) {
    char params[32];
    std::snprintf(params, sizeof(params), "%lld%s", static_cast<long long>(c.hml_parameters),
                  c.hml_parameters == c.py_parameters ? "" : "!=");
    std::printf("%-12s %5lld %4s %8s | %9.0f %9.0f %6.2f | %9.0f %9.0f %6.2f%s\n", c.model.c_str(),
                static_cast<long long>(c.batch), c.optimizer.c_str(), params, c.hml_best(),
                c.py_best(), c.ratio(), c.hml_best(&Rate::wall), c.py_best(&Rate::wall),
                c.ratio(&Rate::wall), c.error.empty() ? "" : ("  ERROR " + c.error).c_str());
  }
  std::printf(
      "load average: start %s, end %s (best of %d rounds; data loading included in "
      "both)\n",
      load_start.c_str(), load_end.c_str(), f.rounds);
  Status s = WriteJson(f, cells, load_start, load_end);
  if (!s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  std::printf("wrote %s\n", f.json_path.c_str());
  return failed ? 1 : 0;
}

}  // namespace
}  // namespace hml::bench

int main(int argc, char** argv) { return hml::bench::Main(argc, argv); }

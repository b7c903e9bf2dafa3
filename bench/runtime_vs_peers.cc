// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// runtime_vs_peers: per-inference latency, load+prepare time and peak RSS of hybridml against its
// peers, side by side in one run, 1 thread everywhere.
//
//   models   mobilenet_v2, resnet18, squeezenet1_1 (exported by bench/models/export_torchvision.py)
//            and cnn28, the 28x28 CNN of tests/testing/models.h (built here, with an int8 QDQ
//            twin quantized here so that raw XNNPACK can run the very same int8 network)
//   engines  hybridml-xnnpack-fp32, hybridml-xnnpack-int8 (cnn28, and the torchvision models
//            as `hybridml compress --int8` quantized them: <model>.int8.onnx, made by
//            run_runtime_vs_peers.sh), hybridml-reference,
//            hybridml-reference-int8 (the int8 oracle), opencv-dnn, libtorch,
//            libtorch-optimized (torchvision models: + torch::jit::optimize_for_inference),
//            raw-xnnpack and raw-xnnpack-int8 (cnn28), and hybridml-xnnpack-int8-pt-gemm
//            (cnn28 int8 with one Gemm weight scale, the quantization raw-xnnpack-int8 runs: this
//            XNNPACK has no per-channel fully-connected operator, see cnn28.h)
//   batches  1 and 32
//
// Every (model, batch, engine) cell runs in its own forked child process: its peak RSS is its
// own, a crash or a hang (killed after --timeout) costs one row, and no peer's thread pool or
// global state leaks into the next cell. Within a cell: load+prepare (everything before the first
// Run), one cold first run (timed separately), a warm-up of ~10 % of the budget, then timed runs
// until the budget (--seconds) is spent and at least --min-iters runs are done, or until
// --max-cell-seconds (at least one timed run).
//
// The overhead over raw XNNPACK (cnn28) is also measured interleaved: both engines in one child,
// alternating blocks of runs, so that load from other processes hits both alike; the target is
// judged on that.
//
// Prints one table and writes JSON (default bench/results/runtime_vs_peers.json). Ratios are
// computed on p50 (robust to other processes on a shared machine).
#include <fcntl.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "bench/cnn28.h"
#include "bench/engine.h"
#include "bench/hybridml_engine.h"
#include "bench/peers.h"
#include "hml/clock.h"
#include "hml/runtime/model.h"
#include "hml/runtime/tensor_util.h"

#ifndef HML_SOURCE_DIR
#define HML_SOURCE_DIR "."
#endif

namespace hml::bench {
namespace {

constexpr const char* kXnnFp32 = "hybridml-xnnpack-fp32";
constexpr const char* kXnnInt8 = "hybridml-xnnpack-int8";
constexpr const char* kXnnInt8PtGemm = "hybridml-xnnpack-int8-pt-gemm";
constexpr const char* kRef = "hybridml-reference";
constexpr const char* kRefInt8 = "hybridml-reference-int8";
constexpr const char* kOpenCv = "opencv-dnn";
constexpr const char* kLibTorch = "libtorch";
constexpr const char* kLibTorchOpt = "libtorch-optimized";
constexpr const char* kRawXnn = "raw-xnnpack";
constexpr const char* kRawXnnInt8 = "raw-xnnpack-int8";
const std::vector<std::string> kAllEngines = {kXnnFp32, kXnnInt8,   kXnnInt8PtGemm, kRef,
                                              kRefInt8, kOpenCv,    kLibTorch,      kLibTorchOpt,
                                              kRawXnn,  kRawXnnInt8};
const std::vector<std::string> kAllModels = {"mobilenet_v2", "resnet18", "squeezenet1_1", "cnn28"};
constexpr const char* kCnn28 = "cnn28";

// Samples kept per cell; the buffer is touched before the RSS baseline is read.
constexpr size_t kMaxSamples = 200000;
constexpr uint64_t kInputSeed = 20261126;
constexpr uint64_t kCalibrationSeed = 777;
constexpr int kCalibrationSamples = 64;

// ------------------------------------------------------------------------------------------
// Flags.

struct Flags {
  std::string models_dir = HML_SOURCE_DIR "/build/models";
  std::string json_path = HML_SOURCE_DIR "/bench/results/runtime_vs_peers.json";
  std::vector<std::string> models;   // empty: all
  std::vector<std::string> engines;  // substrings; empty: all
  std::vector<int64_t> batches;      // empty: 1 and 32 (quick: 1)
  double seconds = 1.5;              // timed budget per cell
  int min_iters = 5;
  double max_cell_seconds = 10.0;  // timed seconds after which a cell stops below min_iters
  int timeout_seconds = 600;       // a child is killed after this
  bool quick = false;
  bool fork = true;
};

constexpr const char* kUsage = R"(usage: runtime_vs_peers [flags]
  --models-dir DIR        models exported by bench/models/export_torchvision.py (default
                          <source>/build/models); cnn28 files are written there too
  --models a,b            of mobilenet_v2,resnet18,squeezenet1_1,cnn28 (default: all)
  --engines a,b           engines whose name contains any of these (default: all):
                          hybridml-xnnpack-fp32, hybridml-xnnpack-int8,
                          hybridml-xnnpack-int8-pt-gemm, hybridml-reference,
                          hybridml-reference-int8, opencv-dnn, libtorch,
                          libtorch-optimized, raw-xnnpack, raw-xnnpack-int8
  --batches 1,32          batch sizes (default 1,32; --quick: 1)
  --seconds S             timed seconds per cell (default 1.5; --quick 0.2)
  --min-iters N           timed runs per cell at least (default 5; --quick 2), unless
  --max-cell-seconds S    ... a cell's timed runs already took S seconds (default 10; --quick 2)
  --timeout S             kill a cell's process after S seconds (default 600)
  --json PATH             default <source>/bench/results/runtime_vs_peers.json
  --no-fork               run cells in this process (peak RSS then is not per cell)
  --quick                 a fast smoke run
)";

std::vector<std::string> SplitCsv(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

Result<Flags> ParseFlags(int argc, char** argv) {
  Flags f;
  bool seconds_set = false, min_set = false, max_set = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string value;
    bool has_value = false;
    if (size_t eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      has_value = true;
    }
    auto next = [&]() -> Result<std::string> {
      if (has_value) return value;
      if (i + 1 >= argc) return InvalidArgumentError(arg + " needs a value");
      return std::string(argv[++i]);
    };
    auto number = [&](double lo) -> Result<double> {
      HML_ASSIGN_OR_RETURN(std::string v, next());
      char* end = nullptr;
      const double d = std::strtod(v.c_str(), &end);
      if (end == v.c_str() || *end != '\0' || !(d >= lo)) {
        return InvalidArgumentError(arg + ": bad value '" + v + "'");
      }
      return d;
    };
    if (arg == "--models-dir") {
      HML_ASSIGN_OR_RETURN(f.models_dir, next());
    } else if (arg == "--json") {
      HML_ASSIGN_OR_RETURN(f.json_path, next());
    } else if (arg == "--models") {
      HML_ASSIGN_OR_RETURN(std::string v, next());
      f.models = SplitCsv(v);
      for (const std::string& m : f.models) {
        if (std::find(kAllModels.begin(), kAllModels.end(), m) == kAllModels.end()) {
          return InvalidArgumentError("unknown model '" + m + "'");
        }
      }
    } else if (arg == "--engines") {
      HML_ASSIGN_OR_RETURN(std::string v, next());
      f.engines = SplitCsv(v);
      for (const std::string& e : f.engines) {
        bool any = false;
        for (const std::string& known : kAllEngines) any |= known.find(e) != std::string::npos;
        if (!any) return InvalidArgumentError("--engines: '" + e + "' matches no engine");
      }
    } else if (arg == "--batches") {
      HML_ASSIGN_OR_RETURN(std::string v, next());
      for (const std::string& b : SplitCsv(v)) {
        const long long n = std::atoll(b.c_str());
        if (n < 1 || n > 4096) return InvalidArgumentError("--batches: bad batch '" + b + "'");
        f.batches.push_back(n);
      }
    } else if (arg == "--seconds") {
      HML_ASSIGN_OR_RETURN(f.seconds, number(0.0));
      seconds_set = true;
    } else if (arg == "--min-iters") {
      HML_ASSIGN_OR_RETURN(double v, number(1.0));
      f.min_iters = static_cast<int>(v);
      min_set = true;
    } else if (arg == "--max-cell-seconds") {
      HML_ASSIGN_OR_RETURN(f.max_cell_seconds, number(0.0));
      max_set = true;
    } else if (arg == "--timeout") {
      HML_ASSIGN_OR_RETURN(double v, number(1.0));
      f.timeout_seconds = static_cast<int>(v);
    } else if (arg == "--no-fork") {
      f.fork = false;
    } else if (arg == "--quick") {
      f.quick = true;
    } else {
      return InvalidArgumentError("unknown flag '" + arg + "'");
    }
  }
  if (f.quick) {
    if (!seconds_set) f.seconds = 0.2;
    if (!min_set) f.min_iters = 2;
    if (!max_set) f.max_cell_seconds = 2.0;
    if (f.batches.empty()) f.batches = {1};
  }
  if (f.batches.empty()) f.batches = {1, 32};
  if (f.models.empty()) f.models = kAllModels;
  return f;
}

bool EngineSelected(const Flags& f, const std::string& engine) {
  if (f.engines.empty()) return true;
  for (const std::string& e : f.engines) {
    if (engine.find(e) != std::string::npos) return true;
  }
  return false;
}

// ------------------------------------------------------------------------------------------
// Models and inputs.

struct ModelSpec {
  std::string name;
  std::string onnx;          // hybridml
  std::string int8_onnx;     // hybridml int8 engines; empty when there is no int8 model
  std::string int8_pt_onnx;  // the same with one Gemm weight scale
  std::string opencv_onnx;   // OpenCV DNN
  std::string torchscript;   // LibTorch; empty: the torch::nn rebuild (cnn28)
  std::string torch_output;  // PyTorch's output for torch_input; empty for cnn28
  std::string torch_input;
  Shape sample_shape;  // one sample, batch 1
};

bool Applies(const ModelSpec& m, const std::string& engine) {
  if (engine == kXnnInt8 || engine == kRefInt8) return !m.int8_onnx.empty();
  if (engine == kXnnInt8PtGemm) return !m.int8_pt_onnx.empty();
  if (engine == kRawXnn || engine == kRawXnnInt8) return m.name == kCnn28;
  if (engine == kLibTorchOpt) return !m.torchscript.empty();
  return true;
}

std::string Join(const std::string& dir, const std::string& file) {
  return (std::filesystem::path(dir) / file).string();
}

ModelSpec TorchvisionSpec(const Flags& f, const std::string& name) {
  ModelSpec m;
  m.name = name;
  m.onnx = Join(f.models_dir, name + ".onnx");
  m.opencv_onnx = Join(f.models_dir, name + ".opset10.onnx");
  m.torchscript = Join(f.models_dir, name + ".pt");
  m.torch_input = Join(f.models_dir, name + ".input.pb");
  m.torch_output = Join(f.models_dir, name + ".output.pb");
  m.sample_shape = {1, 3, 224, 224};
  // The int8 QDQ model our PTQ made (`hybridml compress --int8`, run_runtime_vs_peers.sh).
  const std::string int8 = Join(f.models_dir, name + ".int8.onnx");
  if (std::filesystem::exists(int8)) m.int8_onnx = int8;
  return m;
}

// What the bench builds for cnn28 before running any cell.
struct Cnn28Setup {
  Cnn28Weights weights;
  Cnn28Ranges ranges;
  Cnn28Int8 int8_pt_gemm;  // one Gemm weight scale: what raw XNNPACK's fully-connected takes
};

// Writes cnn28.onnx (fp32; also read by OpenCV), cnn28_int8_qdq.onnx (per-channel weights) and
// cnn28_int8_qdq_pt_gemm.onnx (one Gemm weight scale) into the models dir.
Result<Cnn28Setup> PrepareCnn28(const Flags& f, ModelSpec* spec) {
  Cnn28Setup setup;
  runtime::Graph g = Cnn28Fp32Graph();
  HML_ASSIGN_OR_RETURN(setup.weights, ExtractCnn28Weights(g));
  HML_ASSIGN_OR_RETURN(Model fp32, Model::FromGraph(std::move(g)));
  HML_ASSIGN_OR_RETURN(setup.ranges, CalibrateCnn28(fp32, kCalibrationSamples, kCalibrationSeed));
  HML_ASSIGN_OR_RETURN(runtime::Graph qdq,
                       BuildCnn28QdqGraph(QuantizeCnn28(setup.weights, setup.ranges)));
  HML_ASSIGN_OR_RETURN(Model int8, Model::FromGraph(std::move(qdq)));
  Cnn28QdqOptions pt;
  pt.gemm_per_channel = false;
  setup.int8_pt_gemm = QuantizeCnn28(setup.weights, setup.ranges, pt);
  HML_ASSIGN_OR_RETURN(runtime::Graph qdq_pt, BuildCnn28QdqGraph(setup.int8_pt_gemm));
  HML_ASSIGN_OR_RETURN(Model int8_pt, Model::FromGraph(std::move(qdq_pt)));
  std::error_code ec;
  std::filesystem::create_directories(f.models_dir, ec);
  spec->name = kCnn28;
  spec->onnx = Join(f.models_dir, "cnn28.onnx");
  spec->int8_onnx = Join(f.models_dir, "cnn28_int8_qdq.onnx");
  spec->int8_pt_onnx = Join(f.models_dir, "cnn28_int8_qdq_pt_gemm.onnx");
  spec->opencv_onnx = spec->onnx;
  spec->sample_shape = {1, 1, Cnn28Weights::kSide, Cnn28Weights::kSide};
  HML_RETURN_IF_ERROR(fp32.Save(spec->onnx));
  HML_RETURN_IF_ERROR(int8.Save(spec->int8_onnx));
  HML_RETURN_IF_ERROR(int8_pt.Save(spec->int8_pt_onnx));
  return setup;
}

// The input of a (model, batch): for the torchvision models sample 0 is PyTorch's input (so
// every batch can be compared with PyTorch's output), the rest uniform in [-1, 1); for cnn28
// all uniform in [-1, 1). The same bytes for every engine.
Result<Tensor> MakeInput(const ModelSpec& m, int64_t batch) {
  Shape shape = m.sample_shape;
  shape[0] = batch;
  HML_ASSIGN_OR_RETURN(Tensor input, Tensor::Allocate(DType::kFloat32, shape));
  FillRandom(input, kInputSeed + static_cast<uint64_t>(batch));
  if (!m.torch_input.empty()) {
    HML_ASSIGN_OR_RETURN(Tensor first, LoadTensor(m.torch_input));
    if (first.dtype() != DType::kFloat32 || first.shape() != m.sample_shape) {
      return InvalidArgumentError(m.torch_input + ": expected float32 " +
                                  ShapeToString(m.sample_shape) + ", got " +
                                  SummarizeTensor(first));
    }
    std::memcpy(input.raw_data(), first.raw_data(), first.byte_size());
  }
  return input;
}

Result<std::unique_ptr<Engine>> MakeEngine(const std::string& engine, const ModelSpec& m,
                                           const Shape& shape, const Cnn28Setup* cnn) {
  const bool is_cnn = m.name == kCnn28;
  auto need = [](const std::string& path) -> Status {
    if (std::filesystem::exists(path)) return Status::Ok();
    return NotFoundError(path + " is missing: run /usr/bin/python3 " HML_SOURCE_DIR
                                "/bench/models/export_torchvision.py <models dir>");
  };
  if (engine == kXnnFp32 || engine == kRef) {
    HML_RETURN_IF_ERROR(need(m.onnx));
    return CreateHybridmlEngine(m.onnx, engine == kRef ? "reference" : "xnnpack", shape);
  }
  if (engine == kXnnInt8 || engine == kRefInt8) {
    return CreateHybridmlEngine(m.int8_onnx, engine == kRefInt8 ? "reference" : "xnnpack", shape);
  }
  if (engine == kXnnInt8PtGemm) return CreateHybridmlEngine(m.int8_pt_onnx, "xnnpack", shape);
  if (engine == kOpenCv) {
    HML_RETURN_IF_ERROR(need(m.opencv_onnx));
    return CreateOpenCvEngine(m.opencv_onnx, shape);
  }
  if (engine == kLibTorch || engine == kLibTorchOpt) {
    if (is_cnn) return CreateLibTorchCnn28Engine(cnn->weights, shape[0]);
    HML_RETURN_IF_ERROR(need(m.torchscript));
    return CreateLibTorchEngine(m.torchscript, shape, /*optimize=*/engine == kLibTorchOpt);
  }
  if (engine == kRawXnn && is_cnn) return CreateRawXnnpackCnn28Engine(cnn->weights, shape[0]);
  if (engine == kRawXnnInt8 && is_cnn)
    return CreateRawXnnpackCnn28Int8Engine(cnn->int8_pt_gemm, shape[0]);
  return InvalidArgumentError("engine " + engine + " does not apply to " + m.name);
}

// ------------------------------------------------------------------------------------------
// One cell.

struct CellResult {
  std::string model, engine;
  int64_t batch = 0;
  bool ok = false;
  std::string error;
  std::string notes;
  LatencyStats stats;
  double load_ms = 0, first_run_ms = 0;
  double rss_start_mib = 0, rss_peak_mib = 0;
  Tensor output;
  // Filled by the parent.
  std::optional<double> speedup;             // p50(engine) / p50(hybridml-xnnpack-fp32)
  std::optional<double> diff_ref;            // max |output - hybridml-reference output|
  std::optional<double> diff_torch;          // max |sample 0 - PyTorch's output|
  std::optional<double> rel_ref, rel_torch;  // the same divided by max |expected|
  std::string extra_notes;
};

// kB value of a /proc/self/status line ("VmRSS", "VmHWM"); 0 when unreadable.
double ProcStatusMib(const char* key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const std::string prefix = std::string(key) + ":";
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) == 0) return std::atof(line.c_str() + prefix.size()) / 1024.0;
  }
  return 0.0;
}

std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

void RunCellBody(const Flags& f, const ModelSpec& m, const Cnn28Setup* cnn, const Tensor& input,
                 std::vector<double>& samples, CellResult& r) {
  Clock* clock = RealClock();
  const double rss_start = ProcStatusMib("VmRSS");
  r.rss_start_mib = rss_start;
  const int64_t t0 = clock->NowNanos();
  Result<std::unique_ptr<Engine>> engine = MakeEngine(r.engine, m, input.shape(), cnn);
  const int64_t t1 = clock->NowNanos();
  if (!engine.ok()) {
    r.error = engine.status().ToString();
    return;
  }
  r.load_ms = static_cast<double>(t1 - t0) / 1e6;
  Engine& e = **engine;
  auto timed_run = [&](double* micros) -> Status {
    const int64_t a = clock->NowNanos();
    Status s = e.Run(input);
    *micros = static_cast<double>(clock->NowNanos() - a) / 1e3;
    return s;
  };
  double us = 0;
  if (Status s = timed_run(&us); !s.ok()) {
    r.error = "first run: " + s.ToString();
    return;
  }
  r.first_run_ms = us / 1e3;
  // Warm-up: about 10 % of the budget (nothing when one run is longer than that).
  double last_s = us / 1e6;
  for (double warm = 0; warm + last_s <= 0.1 * f.seconds;) {
    if (Status s = timed_run(&us); !s.ok()) {
      r.error = "warm-up: " + s.ToString();
      return;
    }
    last_s = us / 1e6;
    warm += last_s;
  }
  samples.clear();
  double elapsed = 0;
  while (samples.size() < kMaxSamples) {
    if (Status s = timed_run(&us); !s.ok()) {
      r.error = "run: " + s.ToString();
      return;
    }
    samples.push_back(us);
    elapsed += us / 1e6;
    if (samples.size() >= static_cast<size_t>(f.min_iters) && elapsed >= f.seconds) break;
    // Slow cells: stop when the next run would pass the cell's cap.
    if (elapsed + us / 1e6 > f.max_cell_seconds) break;
  }
  // Before anything below allocates (the statistics copy the samples).
  r.rss_peak_mib = ProcStatusMib("VmHWM");
  r.stats = ComputeLatencyStats(samples);
  Result<Tensor> out = e.Output();
  if (!out.ok()) {
    r.error = "output: " + out.status().ToString();
    return;
  }
  r.output = std::move(*out);
  r.notes = e.Notes();
  r.ok = true;
}

// Serialization of a CellResult through the child's pipe.
class Writer {
 public:
  void Bytes(const void* p, size_t n) { out_.append(static_cast<const char*>(p), n); }
  template <typename T>
  void Pod(const T& v) {
    Bytes(&v, sizeof(v));
  }
  void Str(const std::string& s) {
    Pod<uint64_t>(s.size());
    Bytes(s.data(), s.size());
  }
  std::string& out() { return out_; }

 private:
  std::string out_;
};

class Reader {
 public:
  explicit Reader(const std::string& in) : in_(in) {}
  bool Bytes(void* p, size_t n) {
    if (pos_ + n > in_.size()) return false;
    std::memcpy(p, in_.data() + pos_, n);
    pos_ += n;
    return true;
  }
  template <typename T>
  bool Pod(T& v) {
    return Bytes(&v, sizeof(v));
  }
  bool Str(std::string& s) {
    uint64_t n = 0;
    if (!Pod(n) || pos_ + n > in_.size()) return false;
    s.assign(in_.data() + pos_, n);
    pos_ += n;
    return true;
  }

 private:
  const std::string& in_;
  size_t pos_ = 0;
};

std::string Serialize(const CellResult& r) {
  Writer w;
  w.Pod<uint8_t>(r.ok ? 1 : 0);
  w.Str(r.error);
  w.Str(r.notes);
  w.Pod(r.stats);
  w.Pod(r.load_ms);
  w.Pod(r.first_run_ms);
  w.Pod(r.rss_start_mib);
  w.Pod(r.rss_peak_mib);
  const bool has_output = !r.output.empty();
  w.Pod<uint8_t>(has_output ? 1 : 0);
  if (has_output) {
    w.Pod<uint64_t>(r.output.shape().size());
    for (int64_t d : r.output.shape()) w.Pod(d);
    w.Bytes(r.output.raw_data(), r.output.byte_size());
  }
  return std::move(w.out());
}

Status Deserialize(const std::string& bytes, CellResult& r) {
  Reader rd(bytes);
  uint8_t ok = 0, has_output = 0;
  if (!rd.Pod(ok) || !rd.Str(r.error) || !rd.Str(r.notes) || !rd.Pod(r.stats) ||
      !rd.Pod(r.load_ms) || !rd.Pod(r.first_run_ms) || !rd.Pod(r.rss_start_mib) ||
      !rd.Pod(r.rss_peak_mib) || !rd.Pod(has_output)) {
    return DataLossError("truncated cell result");
  }
  r.ok = ok != 0;
  if (has_output) {
    uint64_t rank = 0;
    if (!rd.Pod(rank) || rank > kMaxRank) return DataLossError("bad output rank");
    Shape shape(rank);
    for (int64_t& d : shape) {
      if (!rd.Pod(d)) return DataLossError("truncated output shape");
    }
    HML_ASSIGN_OR_RETURN(r.output, Tensor::Allocate(DType::kFloat32, shape));
    if (!rd.Bytes(r.output.raw_data(), r.output.byte_size())) {
      return DataLossError("truncated output data");
    }
  }
  return Status::Ok();
}

bool WriteAll(int fd, const std::string& s) {
  size_t done = 0;
  while (done < s.size()) {
    const ssize_t n = ::write(fd, s.data() + done, s.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

std::string ReadAll(int fd) {
  std::string out;
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// Runs `body` in a forked child (in this process with --no-fork) and returns the bytes it
// wrote. The child is killed after --timeout; a crash or a timeout is an error naming it.
Result<std::string> RunIsolated(const Flags& f, const std::function<std::string()>& body) {
  if (!f.fork) return body();
  int fds[2];
  if (::pipe(fds) != 0) return InternalError(std::string("pipe: ") + std::strerror(errno));
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    return InternalError(std::string("fork: ") + std::strerror(errno));
  }
  if (pid == 0) {
    ::close(fds[0]);
    ::alarm(static_cast<unsigned>(f.timeout_seconds));
    const bool written = WriteAll(fds[1], body());
    ::close(fds[1]);
    std::fflush(nullptr);
    ::_exit(written ? 0 : 3);
  }
  ::close(fds[1]);
  std::string bytes = ReadAll(fds[0]);
  ::close(fds[0]);
  int wstatus = 0;
  while (::waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  if (WIFSIGNALED(wstatus)) {
    const int sig = WTERMSIG(wstatus);
    if (sig == SIGALRM) {
      return DeadlineExceededError("timed out after " + std::to_string(f.timeout_seconds) + " s");
    }
    return InternalError(std::string("crashed: ") + strsignal(sig));
  }
  if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
    return InternalError("child exited with status " + std::to_string(WEXITSTATUS(wstatus)));
  }
  return bytes;
}

void RunCell(const Flags& f, const ModelSpec& m, const Cnn28Setup* cnn, const Tensor& input,
             CellResult& r) {
  Result<std::string> bytes = RunIsolated(f, [&]() {
    // Touched before the RSS baseline, so the sample buffer does not count for the engine.
    std::vector<double> samples(kMaxSamples, 0.0);
    CellResult child;
    child.model = r.model;
    child.engine = r.engine;
    child.batch = r.batch;
    RunCellBody(f, m, cnn, input, samples, child);
    return Serialize(child);
  });
  if (!bytes.ok()) {
    r.error = bytes.status().ToString();
    return;
  }
  if (Status s = Deserialize(*bytes, r); !s.ok()) r.error = s.ToString();
}

// hybridml-xnnpack-fp32 against raw XNNPACK on cnn28, interleaved in one process: blocks of runs
// of each engine alternate, so load from other processes hits both alike. The separate cells
// above can drift by more than the 10 % being judged on a shared machine.
struct PairedOverhead {
  int64_t batch = 0;
  bool ok = false;
  std::string error;
  int64_t rounds = 0, runs_per_block = 0;
  double hml_p50_us = 0, raw_p50_us = 0;
};

void RunPairedOverhead(const Flags& f, const ModelSpec& m, const Cnn28Setup& cnn,
                       const Tensor& input, PairedOverhead& p) {
  Result<std::string> bytes = RunIsolated(f, [&]() -> std::string {
    Writer w;
    auto fail = [&](const Status& s) {
      w.Pod<uint8_t>(0);
      w.Str(s.ToString());
      return std::move(w.out());
    };
    Result<std::unique_ptr<Engine>> hml = MakeEngine(kXnnFp32, m, input.shape(), &cnn);
    if (!hml.ok()) return fail(hml.status());
    Result<std::unique_ptr<Engine>> raw = MakeEngine(kRawXnn, m, input.shape(), &cnn);
    if (!raw.ok()) return fail(raw.status());
    Clock* clock = RealClock();
    // Warm each engine for ~0.1 s, then size a block to ~20 ms of the slower one's last run.
    double one_us = 0;
    for (Engine* e : {hml->get(), raw->get()}) {
      double last_us = 0;
      for (int64_t warm = clock->NowNanos(); clock->NowNanos() - warm < 100'000'000;) {
        const int64_t a = clock->NowNanos();
        if (Status s = e->Run(input); !s.ok()) return fail(s);
        last_us = static_cast<double>(clock->NowNanos() - a) / 1e3;
      }
      one_us = std::max(one_us, last_us);
    }
    const int64_t per_block = std::clamp<int64_t>(static_cast<int64_t>(2e4 / one_us), 1, 5000);
    std::vector<double> hml_us, raw_us;
    hml_us.reserve(kMaxSamples / 2);
    raw_us.reserve(kMaxSamples / 2);
    const int64_t start = clock->NowNanos();
    int64_t rounds = 0;
    while (static_cast<double>(clock->NowNanos() - start) / 1e9 < 2.0 * f.seconds &&
           hml_us.size() + static_cast<size_t>(per_block) <= kMaxSamples / 2) {
      for (auto [e, out] : {std::pair{hml->get(), &hml_us}, std::pair{raw->get(), &raw_us}}) {
        for (int64_t i = 0; i < per_block; ++i) {
          const int64_t a = clock->NowNanos();
          if (Status s = e->Run(input); !s.ok()) return fail(s);
          out->push_back(static_cast<double>(clock->NowNanos() - a) / 1e3);
        }
      }
      ++rounds;
    }
    w.Pod<uint8_t>(1);
    w.Pod(rounds);
    w.Pod(per_block);
    w.Pod(ComputeLatencyStats(hml_us).p50_us);
    w.Pod(ComputeLatencyStats(raw_us).p50_us);
    return std::move(w.out());
  });
  if (!bytes.ok()) {
    p.error = bytes.status().ToString();
    return;
  }
  Reader rd(*bytes);
  uint8_t ok = 0;
  if (!rd.Pod(ok)) {
    p.error = "truncated result";
  } else if (!ok) {
    rd.Str(p.error);
  } else if (!rd.Pod(p.rounds) || !rd.Pod(p.runs_per_block) || !rd.Pod(p.hml_p50_us) ||
             !rd.Pod(p.raw_p50_us)) {
    p.error = "truncated result";
  } else {
    p.ok = true;
  }
}

// ------------------------------------------------------------------------------------------
// Comparisons, table, JSON.

double MaxAbs(const Tensor& t) {
  double m = 0;
  if (t.dtype() != DType::kFloat32) return m;
  for (float v : t.values<float>()) m = std::max(m, static_cast<double>(std::fabs(v)));
  return m;
}

std::optional<double> Relative(const std::optional<double>& diff, double scale) {
  if (!diff || scale <= 0) return std::nullopt;
  return *diff / scale;
}

std::optional<double> MaxAbsDiff(const Tensor& a, const Tensor& b, int64_t rows_of_a = -1) {
  if (a.empty() || b.empty() || a.dtype() != DType::kFloat32 || b.dtype() != DType::kFloat32) {
    return std::nullopt;
  }
  int64_t n = a.num_elements();
  if (rows_of_a >= 0 && a.rank() >= 1 && a.dim(0) > 0) n = n / a.dim(0) * rows_of_a;
  if (n != b.num_elements()) return std::nullopt;
  double d = 0;
  for (int64_t i = 0; i < n; ++i) {
    d = std::max(d, static_cast<double>(std::fabs(a.data<float>()[i] - b.data<float>()[i])));
  }
  return d;
}

const CellResult* Find(const std::vector<CellResult>& all, const std::string& model, int64_t batch,
                       const std::string& engine) {
  for (const CellResult& r : all) {
    if (r.model == model && r.batch == batch && r.engine == engine && r.ok) return &r;
  }
  return nullptr;
}

std::string Fmt(double v, int precision = 1) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", precision, v);
  return buf;
}

std::string FmtDiff(const std::optional<double>& d) {
  if (!d) return "-";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1e", *d);
  return buf;
}

std::string JsonEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out;
}

std::string JsonNum(const std::optional<double>& v) {
  if (!v || !std::isfinite(*v)) return "null";
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.6g", *v);
  return buf;
}

struct Target {
  std::string name;
  std::string measured;  // human-readable
  std::optional<double> value;
  std::string threshold;
  std::optional<bool> met;  // empty: not measured
};

std::vector<Target> EvaluateTargets(const std::vector<CellResult>& all,
                                    const std::vector<PairedOverhead>& paired) {
  std::vector<Target> targets;
  for (const char* peer : {kOpenCv, kLibTorch, kLibTorchOpt}) {
    Target t;
    t.name = std::string("mobilenet_v2 batch 1: hybridml-xnnpack-fp32 vs ") + peer;
    t.threshold = ">= 1.5x faster (p50)";
    const CellResult* hml = Find(all, "mobilenet_v2", 1, kXnnFp32);
    const CellResult* other = Find(all, "mobilenet_v2", 1, peer);
    if (hml && other) {
      t.value = other->stats.p50_us / hml->stats.p50_us;
      t.measured = Fmt(*t.value, 2) + "x (" + Fmt(hml->stats.p50_us / 1e3, 2) + " ms vs " +
                   Fmt(other->stats.p50_us / 1e3, 2) + " ms)";
      t.met = *t.value >= 1.5;
    }
    targets.push_back(t);
  }
  for (int64_t batch : {1, 32}) {
    Target t;
    t.name = "cnn28 batch " + std::to_string(batch) + ": overhead over raw XNNPACK";
    t.threshold = "<= 10 % (p50; judged on the interleaved run when there is one)";
    const CellResult* hml = Find(all, kCnn28, batch, kXnnFp32);
    const CellResult* raw = Find(all, kCnn28, batch, kRawXnn);
    if (hml && raw) {
      t.value = (hml->stats.p50_us / raw->stats.p50_us - 1.0) * 100.0;
      t.measured = "separate cells " + Fmt(*t.value, 1) + " % (" + Fmt(hml->stats.p50_us, 2) +
                   " us vs " + Fmt(raw->stats.p50_us, 2) + " us)";
      t.met = *t.value <= 10.0;
    }
    for (const PairedOverhead& p : paired) {
      if (p.batch != batch || !p.ok) continue;
      t.value = (p.hml_p50_us / p.raw_p50_us - 1.0) * 100.0;
      t.measured = "interleaved " + Fmt(*t.value, 1) + " % (" + Fmt(p.hml_p50_us, 2) + " us vs " +
                   Fmt(p.raw_p50_us, 2) + " us, " + std::to_string(p.rounds) + " rounds of " +
                   std::to_string(p.runs_per_block) + " runs each)" +
                   (t.measured.empty() ? "" : "; " + t.measured);
      t.met = *t.value <= 10.0;
    }
    targets.push_back(t);
  }
  for (int64_t batch : {1, 32}) {
    Target t;
    t.name = "cnn28 batch " + std::to_string(batch) + ": int8 QDQ faster than fp32 (xnnpack)";
    t.threshold = "int8 p50 < fp32 p50";
    const CellResult* fp32 = Find(all, kCnn28, batch, kXnnFp32);
    const CellResult* int8 = Find(all, kCnn28, batch, kXnnInt8);
    if (fp32 && int8) {
      t.value = fp32->stats.p50_us / int8->stats.p50_us;
      t.measured = "int8 at " + Fmt(*t.value, 2) + "x the speed of fp32 (" +
                   Fmt(int8->stats.p50_us, 2) + " us vs " + Fmt(fp32->stats.p50_us, 2) + " us)";
      const CellResult* raw8 = Find(all, kCnn28, batch, kRawXnnInt8);
      const CellResult* raw32 = Find(all, kCnn28, batch, kRawXnn);
      if (raw8 && raw32) {
        t.measured += "; raw XNNPACK: int8 " + Fmt(raw8->stats.p50_us, 2) + " us vs fp32 " +
                      Fmt(raw32->stats.p50_us, 2) + " us";
      }
      t.measured += "; " + int8->notes;
      t.met = int8->stats.p50_us < fp32->stats.p50_us;
    }
    targets.push_back(t);
  }
  {
    Target t;
    t.name = "mobilenet_v2 batch 1: int8 (our PTQ) at least 1.5x faster than fp32 (xnnpack)";
    t.threshold = "fp32 p50 / int8 p50 >= 1.5";
    const CellResult* fp32 = Find(all, "mobilenet_v2", 1, kXnnFp32);
    const CellResult* int8 = Find(all, "mobilenet_v2", 1, kXnnInt8);
    if (fp32 && int8) {
      t.value = fp32->stats.p50_us / int8->stats.p50_us;
      t.measured = "int8 at " + Fmt(*t.value, 2) + "x the speed of fp32 (" +
                   Fmt(int8->stats.p50_us / 1000.0, 2) + " ms vs " +
                   Fmt(fp32->stats.p50_us / 1000.0, 2) + " ms)";
      t.met = *t.value >= 1.5;
    }
    targets.push_back(t);
  }
  return targets;
}

void PrintTable(const std::vector<CellResult>& all,
                const std::map<std::string, std::string>& model_lines) {
  std::printf("\n%-13s %5s %-29s %7s %11s %11s %11s %10s %11s %10s %9s %7s %8s %8s\n", "model",
              "batch", "engine", "iters", "mean us", "p50 us", "p90 us", "us/img", "load+prep ms",
              "1st run ms", "RSS+ MiB", "speedup", "d(ref)", "d(torch)");
  std::string last_model;
  for (const CellResult& r : all) {
    if (r.model != last_model) {
      auto it = model_lines.find(r.model);
      std::printf("-- %s%s\n", r.model.c_str(), it == model_lines.end() ? "" : it->second.c_str());
    }
    last_model = r.model;
    if (!r.ok) {
      std::printf("%-13s %5lld %-29s   %s\n", r.model.c_str(), static_cast<long long>(r.batch),
                  r.engine.c_str(), r.error.c_str());
      continue;
    }
    std::printf(
        "%-13s %5lld %-29s %7lld %11.1f %11.1f %11.1f %10.1f %11.1f %10.1f %9.1f %7s "
        "%8s %8s\n",
        r.model.c_str(), static_cast<long long>(r.batch), r.engine.c_str(),
        static_cast<long long>(r.stats.count), r.stats.mean_us, r.stats.p50_us, r.stats.p90_us,
        r.stats.p50_us / static_cast<double>(r.batch), r.load_ms, r.first_run_ms,
        r.rss_peak_mib - r.rss_start_mib, r.speedup ? (Fmt(*r.speedup, 2) + "x").c_str() : "-",
        FmtDiff(r.diff_ref).c_str(), FmtDiff(r.diff_torch).c_str());
  }
}

Status WriteJson(const Flags& f, const std::vector<CellResult>& all,
                 const std::vector<PairedOverhead>& paired, const std::vector<Target>& targets,
                 const std::string& header, const std::string& load_start,
                 const std::string& load_end, double parent_rss_mib, const Cnn28Setup* cnn) {
  std::filesystem::path path(f.json_path);
  std::error_code ec;
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path(), ec);
  std::ofstream out(f.json_path);
  if (!out) return PermissionDeniedError("cannot write " + f.json_path);
  out << "{\n  \"benchmark\": \"runtime_vs_peers\",\n";
  out << "  \"timestamp_unix\": " << std::time(nullptr) << ",\n";
  out << "  \"host\": {\"cpus\": " << ::sysconf(_SC_NPROCESSORS_ONLN) << ", \"loadavg_start\": \""
      << load_start << "\", \"loadavg_end\": \"" << load_end << "\"},\n";
  out << "  \"versions\": {\"opencv\": \"" << JsonEscape(OpenCvVersion()) << "\", \"libtorch\": \""
      << JsonEscape(LibTorchVersion()) << "\"},\n";
  out << "  \"settings\": {\"threads\": 1, \"seconds_per_cell\": " << f.seconds
      << ", \"min_iters\": " << f.min_iters << ", \"max_cell_seconds\": " << f.max_cell_seconds
      << ", \"quick\": " << (f.quick ? "true" : "false")
      << ", \"fork_per_cell\": " << (f.fork ? "true" : "false") << ", \"models_dir\": \""
      << JsonEscape(f.models_dir) << "\"},\n";
  out << "  \"method\": \"" << JsonEscape(header) << "\",\n";
  out << "  \"parent_rss_mib_at_start\": " << JsonNum(parent_rss_mib) << ",\n";
  if (cnn != nullptr) {
    const Cnn28Ranges& r = cnn->ranges;
    out << "  \"cnn28_int8_calibration\": {\"samples\": " << r.samples
        << ", \"input_min\": " << JsonNum(r.input_min)
        << ", \"input_max\": " << JsonNum(r.input_max) << ", \"relu_max\": " << JsonNum(r.relu_max)
        << ", \"logits_min\": " << JsonNum(r.logits_min)
        << ", \"logits_max\": " << JsonNum(r.logits_max) << "},\n";
  }
  out << "  \"results\": [\n";
  for (size_t i = 0; i < all.size(); ++i) {
    const CellResult& r = all[i];
    out << "    {\"model\": \"" << r.model << "\", \"batch\": " << r.batch << ", \"engine\": \""
        << r.engine << "\", \"ok\": " << (r.ok ? "true" : "false");
    if (!r.ok) {
      out << ", \"error\": \"" << JsonEscape(r.error) << "\"}";
    } else {
      const LatencyStats& s = r.stats;
      out << ", \"iterations\": " << s.count << ", \"mean_us\": " << JsonNum(s.mean_us)
          << ", \"min_us\": " << JsonNum(s.min_us) << ", \"p50_us\": " << JsonNum(s.p50_us)
          << ", \"p90_us\": " << JsonNum(s.p90_us) << ", \"p99_us\": " << JsonNum(s.p99_us)
          << ", \"max_us\": " << JsonNum(s.max_us)
          << ", \"p50_us_per_sample\": " << JsonNum(s.p50_us / static_cast<double>(r.batch))
          << ", \"load_prepare_ms\": " << JsonNum(r.load_ms)
          << ", \"first_run_ms\": " << JsonNum(r.first_run_ms)
          << ", \"rss_start_mib\": " << JsonNum(r.rss_start_mib)
          << ", \"peak_rss_mib\": " << JsonNum(r.rss_peak_mib)
          << ", \"peak_rss_delta_mib\": " << JsonNum(r.rss_peak_mib - r.rss_start_mib)
          << ", \"speedup_of_hybridml_xnnpack_fp32\": " << JsonNum(r.speedup)
          << ", \"max_abs_diff_vs_reference\": " << JsonNum(r.diff_ref)
          << ", \"max_abs_diff_vs_pytorch_sample0\": " << JsonNum(r.diff_torch)
          << ", \"max_rel_diff_vs_reference\": " << JsonNum(r.rel_ref)
          << ", \"max_rel_diff_vs_pytorch_sample0\": " << JsonNum(r.rel_torch) << ", \"notes\": \""
          << JsonEscape(r.notes + (r.extra_notes.empty() ? "" : "; " + r.extra_notes)) << "\"}";
    }
    out << (i + 1 < all.size() ? ",\n" : "\n");
  }
  out << "  ],\n  \"cnn28_interleaved_overhead\": [\n";
  for (size_t i = 0; i < paired.size(); ++i) {
    const PairedOverhead& p = paired[i];
    out << "    {\"batch\": " << p.batch << ", \"ok\": " << (p.ok ? "true" : "false");
    if (p.ok) {
      out << ", \"rounds\": " << p.rounds << ", \"runs_per_block\": " << p.runs_per_block
          << ", \"hybridml_xnnpack_fp32_p50_us\": " << JsonNum(p.hml_p50_us)
          << ", \"raw_xnnpack_p50_us\": " << JsonNum(p.raw_p50_us)
          << ", \"overhead_percent\": " << JsonNum((p.hml_p50_us / p.raw_p50_us - 1.0) * 100.0)
          << "}";
    } else {
      out << ", \"error\": \"" << JsonEscape(p.error) << "\"}";
    }
    out << (i + 1 < paired.size() ? ",\n" : "\n");
  }
  out << "  ],\n  \"targets\": [\n";
  for (size_t i = 0; i < targets.size(); ++i) {
    const Target& t = targets[i];
    out << "    {\"name\": \"" << JsonEscape(t.name) << "\", \"threshold\": \""
        << JsonEscape(t.threshold) << "\", \"value\": " << JsonNum(t.value) << ", \"measured\": \""
        << JsonEscape(t.measured)
        << "\", \"met\": " << (t.met ? (*t.met ? "true" : "false") : "null") << "}"
        << (i + 1 < targets.size() ? ",\n" : "\n");
  }
  out << "  ]\n}\n";
  out.close();
  if (!out) return DataLossError("writing " + f.json_path + " failed");
  return Status::Ok();
}

int Main(int argc, char** argv) {
  Result<Flags> parsed = ParseFlags(argc, argv);
  if (!parsed.ok()) {
    std::fprintf(stderr, "%s\n%s", parsed.status().ToString().c_str(), kUsage);
    return 2;
  }
  const Flags& f = *parsed;
  // Children die with SIGALRM on timeout; the parent never arms it.
  std::vector<ModelSpec> specs;
  std::optional<Cnn28Setup> cnn;
  for (const std::string& name : f.models) {
    if (name != kCnn28) {
      specs.push_back(TorchvisionSpec(f, name));
      continue;
    }
    ModelSpec spec;
    Result<Cnn28Setup> setup = PrepareCnn28(f, &spec);
    if (!setup.ok()) {
      std::fprintf(stderr, "cnn28 setup failed: %s\n", setup.status().ToString().c_str());
      return 1;
    }
    cnn = std::move(*setup);
    specs.push_back(spec);
  }

  const std::string load_start = LoadAverage();
  const double parent_rss = ProcStatusMib("VmRSS");
  const std::string header =
      "1 thread everywhere; per-run latency of Run() (input copied in where the engine needs its "
      "own buffer); load+prep = everything before the first run (OpenCV and LibTorch finish "
      "preparing lazily in the first run: see 1st run; raw XNNPACK and the torch::nn cnn28 start "
      "from weights in memory); RSS+ = peak VmHWM of the cell's forked child minus its VmRSS "
      "before loading (the child shares the parent's pages; the delta is the model, arenas, and "
      "library pages first touched by this engine); speedup = p50(engine) / "
      "p50(hybridml-xnnpack-fp32) of the same model and batch (> 1: hybridml fp32 is faster); "
      "d(ref) = max |output - hybridml-reference output| (int8 engines: vs the fp32 reference); "
      "d(torch) = max |sample 0 - PyTorch's output.pb|";
  std::printf("runtime_vs_peers: OpenCV %s, LibTorch %s; %ld CPUs, load average %s\n",
              OpenCvVersion().c_str(), LibTorchVersion().c_str(), ::sysconf(_SC_NPROCESSORS_ONLN),
              load_start.c_str());
  std::printf("models: %s; budget %.2g s per cell, >= %d runs (cap %.3g s); %s\n",
              f.models_dir.c_str(), f.seconds, f.min_iters, f.max_cell_seconds,
              f.fork ? "one forked process per cell" : "in process (RSS not per cell)");
  if (cnn) {
    const Cnn28Ranges& r = cnn->ranges;
    std::printf(
        "cnn28 int8 QDQ calibrated on %d random inputs: input [%.3g, %.3g], relu max "
        "%.3g, logits [%.3g, %.3g]\n",
        r.samples, r.input_min, r.input_max, r.relu_max, r.logits_min, r.logits_max);
  }
  for (const ModelSpec& m : specs) {
    if (m.name != kCnn28 && m.int8_onnx.empty()) {
      std::printf("%s: no %s.int8.onnx in the models dir, so no int8 rows (make it with "
                  "hybridml compress --int8, as run_runtime_vs_peers.sh does)\n",
                  m.name.c_str(), m.name.c_str());
    }
  }

  std::vector<CellResult> all;
  for (const ModelSpec& m : specs) {
    for (int64_t batch : f.batches) {
      Result<Tensor> input = MakeInput(m, batch);
      for (const std::string& engine : kAllEngines) {
        if (!EngineSelected(f, engine) || !Applies(m, engine)) continue;
        CellResult r;
        r.model = m.name;
        r.engine = engine;
        r.batch = batch;
        std::printf("  %-13s batch %-3lld %-29s ... ", m.name.c_str(),
                    static_cast<long long>(batch), engine.c_str());
        std::fflush(stdout);
        if (!input.ok()) {
          r.error = "input: " + input.status().ToString();
        } else {
          RunCell(f, m, cnn ? &*cnn : nullptr, *input, r);
        }
        if (r.ok) {
          std::printf("p50 %.1f us (%lld runs)\n", r.stats.p50_us,
                      static_cast<long long>(r.stats.count));
        } else {
          std::printf("%s\n", r.error.c_str());
        }
        all.push_back(std::move(r));
      }
    }
  }
  // The overhead target, measured interleaved (see PairedOverhead).
  std::vector<PairedOverhead> paired;
  for (const ModelSpec& m : specs) {
    if (m.name != kCnn28 || !cnn || !EngineSelected(f, kXnnFp32) || !EngineSelected(f, kRawXnn)) {
      continue;
    }
    for (int64_t batch : f.batches) {
      PairedOverhead p;
      p.batch = batch;
      std::printf("  %-13s batch %-3lld %-29s ... ", m.name.c_str(), static_cast<long long>(batch),
                  "interleaved fp32 vs raw");
      std::fflush(stdout);
      Result<Tensor> input = MakeInput(m, batch);
      if (!input.ok()) {
        p.error = input.status().ToString();
      } else {
        RunPairedOverhead(f, m, *cnn, *input, p);
      }
      if (p.ok) {
        std::printf("p50 %.2f us vs %.2f us\n", p.hml_p50_us, p.raw_p50_us);
      } else {
        std::printf("%s\n", p.error.c_str());
      }
      paired.push_back(std::move(p));
    }
  }
  const std::string load_end = LoadAverage();

  // Cross-cell comparisons.
  std::map<std::string, Tensor> torch_outputs;
  for (const ModelSpec& m : specs) {
    if (m.torch_output.empty()) continue;
    Result<Tensor> t = LoadTensor(m.torch_output);
    if (t.ok()) torch_outputs[m.name] = std::move(*t);
  }
  for (CellResult& r : all) {
    if (!r.ok) continue;
    if (const CellResult* base = Find(all, r.model, r.batch, kXnnFp32)) {
      r.speedup = r.stats.p50_us / base->stats.p50_us;
    }
    if (const CellResult* ref = Find(all, r.model, r.batch, kRef);
        ref && &r.output != &ref->output) {
      r.diff_ref = MaxAbsDiff(r.output, ref->output);
      r.rel_ref = Relative(r.diff_ref, MaxAbs(ref->output));
    }
    if (auto it = torch_outputs.find(r.model); it != torch_outputs.end()) {
      r.diff_torch = MaxAbsDiff(r.output, it->second, /*rows_of_a=*/1);
      r.rel_torch = Relative(r.diff_torch, MaxAbs(it->second));
    }
    if (r.engine == kRawXnn) {
      if (const CellResult* hml = Find(all, r.model, r.batch, kXnnFp32)) {
        r.extra_notes =
            "max |diff| vs hybridml-xnnpack-fp32 " + FmtDiff(MaxAbsDiff(r.output, hml->output));
      }
    }
    if (r.engine == kRawXnnInt8) {
      if (const CellResult* hml = Find(all, r.model, r.batch, kXnnInt8PtGemm)) {
        r.extra_notes = "max |diff| vs hybridml-xnnpack-int8-pt-gemm " +
                        FmtDiff(MaxAbsDiff(r.output, hml->output));
      }
    }
    if (r.engine == kXnnInt8) {
      if (const CellResult* ref8 = Find(all, r.model, r.batch, kRefInt8)) {
        r.extra_notes =
            "max |diff| vs hybridml-reference-int8 " + FmtDiff(MaxAbsDiff(r.output, ref8->output));
      }
    }
  }

  std::map<std::string, std::string> model_lines;
  for (const ModelSpec& m : specs) {
    if (auto it = torch_outputs.find(m.name); it != torch_outputs.end()) {
      char buf[128];
      std::snprintf(buf, sizeof(buf), " (max |PyTorch output| %.3g: read d() against it)",
                    MaxAbs(it->second));
      model_lines[m.name] = buf;
    } else if (m.name == kCnn28) {
      model_lines[m.name] = " (outputs are probabilities)";
    }
  }
  std::printf("\n%s\n", header.c_str());
  PrintTable(all, model_lines);
  std::printf("\nnotes:\n");
  for (const CellResult& r : all) {
    if (!r.ok) continue;
    std::string notes = r.notes;
    if (!r.extra_notes.empty()) notes += (notes.empty() ? "" : "; ") + r.extra_notes;
    if (notes.empty()) continue;
    std::printf("  %-13s b%-3lld %-29s %s\n", r.model.c_str(), static_cast<long long>(r.batch),
                r.engine.c_str(), notes.c_str());
  }
  const std::vector<Target> targets = EvaluateTargets(all, paired);
  std::printf("\ntargets:\n");
  for (const Target& t : targets) {
    std::printf("  [%s] %s: %s (target %s)\n", t.met ? (*t.met ? "MET " : "MISS") : "n/a ",
                t.name.c_str(), t.met ? t.measured.c_str() : "not measured", t.threshold.c_str());
  }
  std::printf("load average: %s at start, %s at end (%ld CPUs)\n", load_start.c_str(),
              load_end.c_str(), ::sysconf(_SC_NPROCESSORS_ONLN));
  if (Status s = WriteJson(f, all, paired, targets, header, load_start, load_end, parent_rss,
                           cnn ? &*cnn : nullptr);
      !s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  std::printf("wrote %s\n", f.json_path.c_str());
  return 0;
}

}  // namespace
}  // namespace hml::bench

int main(int argc, char** argv) { return hml::bench::Main(argc, argv); }

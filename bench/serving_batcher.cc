// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// serving_batcher: the dynamic batcher (src/server/serving/batcher.h) under open-loop load, in
// process (no RPC), with and without dynamic batching.
//
//   serving_batcher [--duration_ms N] [--instances N] [--max_batch N] [--delay_us N]
//                   [--queue N] [--rates R1,R2,...] [--large] [--model PATH.onnx] [--json PATH]
//                   [--runtime_only] [--gemm N]
//
// 1. Runtime alone: `instances` threads, each running its own Session at batch = max_batch in a
//    closed loop for --duration_ms: samples/s. This is the denominator of issue 5's "serving
//    efficiency" (same model, batch policy and cores, no serving machinery).
// 2. For each rate (requests/s, one sample each; default: fractions 0.1 ... 1.5 of the runtime's
//    rate) and for dynamic batching on and off: a sender thread submits at fixed intended times
//    t0 + i / rate for --duration_ms (open loop: it never waits for answers), and latency is
//    measured from the intended send time, so a sender that falls behind does not hide queueing
//    (no coordinated omission). Reported: achieved throughput of answered requests, p50/p99 of
//    their latency, refused (queue full) requests, and the mean batch size.
// The knee is the highest offered rate whose p99 is at most 50 ms with at most 1 % refused;
// serving efficiency = throughput at the knee / runtime alone.
// --runtime_only: step 1 only, at batch 1 and at batch max_batch (the denominators of serving
// without and with batching; bench/run_serving.sh uses it for the served model).
// --gemm N: also the machine's fp32 GEMM throughput through the runtime (a Gemm node, A [N,N] x
// B^T [N,N] + bias, XNNPACK's fully-connected kernel, as the CNNs' Gemm layers use): one Session
// of 1 thread, `instances` Sessions of 1 thread in parallel, and one Session of `instances`
// threads, in GFLOP/s (2 N^3 FLOPs per run). The compute bound of issue 5 divides model FLOPs x
// throughput by it.
//
// Models: the 28x28 CNN of tests/testing/models.h; with --large also a larger stand-in CNN
// (conv 1->32, conv 32->64, fc 3136->128->10, 8.6 MFLOPs per sample); with --model an ONNX file
// whose inputs all have a dynamic dimension 0. The sender thread shares the machine's cores with
// the workers (it sleeps until each send time, never spins); that cost is part of what is
// measured. Also printed: Session::Create time and arena bytes per batch size (the numbers behind
// the batcher's session policy).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "hml/clock.h"
#include "hml/runtime/model.h"
#include "hml/runtime/session.h"
#include "hml/runtime/tensor_util.h"
#include "hml/status.h"
#include "src/server/serving/batcher.h"
#include "tests/testing/graph_builder.h"
#include "tests/testing/models.h"

namespace hml::bench {
namespace {

constexpr double kLatencyBudgetMs = 50.0;
// A knee point may refuse this share of its requests: the sender's oversleeps on a shared machine
// make bursts that a 128-deep queue refuses even at low average load.
constexpr int64_t kMaxRefusedPercent = 1;

struct Flags {
  int64_t duration_ms = 400;
  int instances = 2;
  int64_t max_batch = 8;
  int64_t delay_us = 1000;
  int64_t queue = 128;
  std::vector<double> rates;  // empty: fractions of the runtime's rate
  bool large = false;
  std::string model_path;
  std::string json_path;
  bool runtime_only = false;
  int64_t gemm = 0;  // 0: no GEMM measurement
};

constexpr const char* kUsage = R"(usage: serving_batcher [flags]
  --duration_ms N   time per measurement point (default 400)
  --instances N     batcher instances = runtime threads (default 2)
  --max_batch N     max batch size, and the runtime-alone batch (default 8)
  --delay_us N      max queue delay (default 1000)
  --queue N         max queue size (default 128)
  --rates R1,R2     offered rates in requests/s (default: 0.1..1.5 x runtime alone)
  --large           also the larger stand-in CNN
  --model PATH      also this ONNX model (dynamic dimension 0 on every input)
  --json PATH       also write the results as JSON
  --runtime_only    only the runtime alone, at batch 1 and max_batch
  --gemm N          also fp32 GEMM GFLOP/s through the runtime at N x N x N
)";

Result<Flags> ParseFlags(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto next = [&]() -> Result<std::string> {
      if (i + 1 >= argc) return InvalidArgumentError("flag " + arg + " needs a value");
      return std::string(argv[++i]);
    };
    auto next_int = [&]() -> Result<int64_t> {
      HML_ASSIGN_OR_RETURN(std::string v, next());
      char* end = nullptr;
      const long long n = std::strtoll(v.c_str(), &end, 10);
      if (end == v.c_str() || *end != '\0' || n < 0) {
        return InvalidArgumentError("flag " + arg + ": '" + v + "' is not a count");
      }
      return static_cast<int64_t>(n);
    };
    if (arg == "--duration_ms") {
      HML_ASSIGN_OR_RETURN(f.duration_ms, next_int());
    } else if (arg == "--instances") {
      HML_ASSIGN_OR_RETURN(int64_t n, next_int());
      f.instances = static_cast<int>(n);
    } else if (arg == "--max_batch") {
      HML_ASSIGN_OR_RETURN(f.max_batch, next_int());
    } else if (arg == "--delay_us") {
      HML_ASSIGN_OR_RETURN(f.delay_us, next_int());
    } else if (arg == "--queue") {
      HML_ASSIGN_OR_RETURN(f.queue, next_int());
    } else if (arg == "--rates") {
      HML_ASSIGN_OR_RETURN(std::string list, next());
      std::stringstream in(list);
      std::string item;
      while (std::getline(in, item, ',')) {
        const double r = std::atof(item.c_str());
        if (r <= 0) return InvalidArgumentError("--rates: '" + item + "' is not a positive rate");
        f.rates.push_back(r);
      }
    } else if (arg == "--large") {
      f.large = true;
    } else if (arg == "--model") {
      HML_ASSIGN_OR_RETURN(f.model_path, next());
    } else if (arg == "--json") {
      HML_ASSIGN_OR_RETURN(f.json_path, next());
    } else if (arg == "--runtime_only") {
      f.runtime_only = true;
    } else if (arg == "--gemm") {
      HML_ASSIGN_OR_RETURN(f.gemm, next_int());
      if (f.gemm < 1 || f.gemm > 4096) return InvalidArgumentError("--gemm must be in [1, 4096]");
    } else {
      return InvalidArgumentError("unknown flag '" + arg + "'\n" + kUsage);
    }
  }
  if (f.duration_ms < 10) return InvalidArgumentError("--duration_ms must be at least 10");
  return f;
}

// A stand-in for a larger CNN on 28x28 inputs (see the file comment).
Result<Model> LargeCnn() {
  testing::GraphBuilder b(13);
  b.Input("image", DType::kFloat32, {-1, 1, 28, 28});
  b.Constant("c1.w", testing::RandomTensor({32, 1, 3, 3}, 21, 0.5f));
  b.Constant("c1.b", testing::RandomTensor({32}, 22, 0.1f));
  b.Constant("c2.w", testing::RandomTensor({64, 32, 3, 3}, 23, 0.1f));
  b.Constant("c2.b", testing::RandomTensor({64}, 24, 0.1f));
  b.Constant("f1.w", testing::RandomTensor({128, 3136}, 25, 0.02f));
  b.Constant("f1.b", testing::RandomTensor({128}, 26, 0.1f));
  b.Constant("f2.w", testing::RandomTensor({10, 128}, 27, 0.1f));
  b.Constant("f2.b", testing::RandomTensor({10}, 28, 0.1f));
  runtime::Attributes conv;
  conv.SetInts("kernel_shape", {3, 3});
  conv.SetInts("pads", {1, 1, 1, 1});
  runtime::Attributes pool;
  pool.SetInts("kernel_shape", {2, 2});
  pool.SetInts("strides", {2, 2});
  runtime::Attributes flat;
  flat.SetInt("axis", 1);
  runtime::Attributes gemm;
  gemm.SetInt("transB", 1);
  runtime::Attributes softmax;
  softmax.SetInt("axis", 1);
  b.Node("Conv", {"image", "c1.w", "c1.b"}, {"c1"}, conv);
  b.Node("Relu", {"c1"}, {"r1"});
  b.Node("MaxPool", {"r1"}, {"p1"}, pool);
  b.Node("Conv", {"p1", "c2.w", "c2.b"}, {"c2"}, conv);
  b.Node("Relu", {"c2"}, {"r2"});
  b.Node("MaxPool", {"r2"}, {"p2"}, pool);
  b.Node("Flatten", {"p2"}, {"flat"}, flat);
  b.Node("Gemm", {"flat", "f1.w", "f1.b"}, {"f1"}, gemm);
  b.Node("Relu", {"f1"}, {"h"});
  b.Node("Gemm", {"h", "f2.w", "f2.b"}, {"logits"}, gemm);
  b.Node("Softmax", {"logits"}, {"probs"}, softmax);
  b.Output("probs");
  runtime::Graph g = b.Build();
  g.name = "cnn_large";
  return Model::FromGraph(std::move(g));
}

// A single Gemm node, y = a x b^T + c with a [n,n] input and b [n,n], c [n] constants.
Result<Model> GemmModel(int64_t n) {
  testing::GraphBuilder b(13);
  b.Input("a", DType::kFloat32, {n, n});
  b.Constant("b", testing::RandomTensor({n, n}, 31, 0.1f));
  b.Constant("c", testing::RandomTensor({n}, 32, 0.1f));
  runtime::Attributes gemm;
  gemm.SetInt("transB", 1);
  b.Node("Gemm", {"a", "b", "c"}, {"y"}, gemm);
  b.Output("y");
  runtime::Graph g = b.Build();
  g.name = "gemm";
  return Model::FromGraph(std::move(g));
}

// fp32 GEMM GFLOP/s through the runtime (see the file comment).
struct GemmReport {
  int64_t n = 0;
  double one_thread = 0;         // one Session, 1 thread
  double parallel_sessions = 0;  // `instances` Sessions of 1 thread, in parallel
  double threaded_session = 0;   // one Session of `instances` threads
};

// One random sample per model input (dimension 0 = 1), shared read-only by every request.
Result<std::vector<Tensor>> OneSample(const Model& model) {
  std::vector<Tensor> sample;
  uint64_t seed = 1;
  for (const TensorSpec& spec : model.inputs()) {
    Shape shape = spec.shape;
    if (shape.empty() || shape[0] >= 0) {
      return InvalidArgumentError("model '" + model.name() + "': input '" + spec.name +
                                  "' has no dynamic dimension 0");
    }
    shape[0] = 1;
    HML_ASSIGN_OR_RETURN(Tensor t, Tensor::Allocate(spec.dtype, shape));
    FillRandom(t, seed++);
    sample.push_back(std::move(t));
  }
  return sample;
}

std::map<std::string, Shape> ShapesAt(const Model& model, int64_t batch) {
  std::map<std::string, Shape> shapes;
  for (const TensorSpec& spec : model.inputs()) {
    Shape s = spec.shape;
    s[0] = batch;
    shapes[spec.name] = s;
  }
  return shapes;
}

double SecondsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Session::Create time (best of 3) and arena bytes at each batch size 1..max_batch.
struct SessionCost {
  int64_t batch = 0;
  double create_ms = 0;
  size_t arena_bytes = 0;
};

Result<std::vector<SessionCost>> MeasureSessionCosts(const Model& model, int64_t max_batch) {
  std::vector<SessionCost> costs;
  for (int64_t b = 1; b <= max_batch; ++b) {
    SessionOptions so;
    so.input_shapes = ShapesAt(model, b);
    SessionCost c{b, 1e9, 0};
    for (int rep = 0; rep < 3; ++rep) {
      const auto t0 = std::chrono::steady_clock::now();
      HML_ASSIGN_OR_RETURN(std::unique_ptr<Session> s, Session::Create(model, so));
      c.create_ms = std::min(c.create_ms, SecondsSince(t0) * 1e3);
      c.arena_bytes = s->arena_bytes();
    }
    costs.push_back(c);
  }
  return costs;
}

// Samples/s of `threads` Sessions (of `session_threads` intra-op threads each) at batch `batch`
// in a closed loop, one caller thread per Session.
Result<double> RuntimeAlone(const Model& model, int threads, int64_t batch, int64_t duration_ms,
                            int session_threads = 1) {
  std::vector<std::unique_ptr<Session>> sessions;
  for (int t = 0; t < threads; ++t) {
    SessionOptions so;
    so.num_threads = session_threads;
    so.input_shapes = ShapesAt(model, batch);
    HML_ASSIGN_OR_RETURN(std::unique_ptr<Session> s, Session::Create(model, so));
    for (size_t i = 0; i < s->num_inputs(); ++i) FillRandom(s->input(i), 7 + i);
    HML_RETURN_IF_ERROR(s->Run());  // warm up
    sessions.push_back(std::move(s));
  }
  std::atomic<int64_t> runs{0};
  std::atomic<bool> failed{false};
  const auto t0 = std::chrono::steady_clock::now();
  const auto stop = t0 + std::chrono::milliseconds(duration_ms);
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      while (std::chrono::steady_clock::now() < stop) {
        if (!sessions[t]->Run().ok()) failed = true;
        runs.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  for (std::thread& w : workers) w.join();
  const double seconds = SecondsSince(t0);
  if (failed) return InternalError("model '" + model.name() + "': Session::Run failed");
  return static_cast<double>(runs.load()) * static_cast<double>(batch) / seconds;
}

struct Point {
  bool batching = false;
  double offered = 0;     // requests/s
  double throughput = 0;  // answered OK requests/s
  double p50_ms = 0, p99_ms = 0;
  int64_t sent = 0, ok = 0, refused = 0;
  double mean_batch = 0;
};

// One open-loop run at `rate` requests/s (see the file comment).
Result<Point> OpenLoop(const Model& model, const std::vector<Tensor>& sample, const Flags& f,
                       bool batching, double rate) {
  server::BatchingOptions options;
  options.max_batch_size = f.max_batch;
  options.max_queue_delay_micros = f.delay_us;
  options.instances = f.instances;
  options.max_queue_size = f.queue;
  options.dynamic_batching = batching;
  HML_ASSIGN_OR_RETURN(std::unique_ptr<server::DynamicBatcher> batcher,
                       server::DynamicBatcher::Create(model, options));
  Clock* clock = RealClock();
  const int64_t n = std::max<int64_t>(1, static_cast<int64_t>(rate * f.duration_ms / 1e3));
  const double interval_nanos = 1e9 / rate;
  // Per request: latency from the intended send time, or -1 when not answered OK.
  std::vector<double> latency_us(static_cast<size_t>(n), -1.0);
  std::atomic<int64_t> last_done_nanos{0};
  const int64_t t0 = clock->NowNanos() + 1'000'000;  // 1 ms to get going
  Point p;
  p.batching = batching;
  p.offered = rate;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t intended = t0 + static_cast<int64_t>(static_cast<double>(i) * interval_nanos);
    // Sleep rather than spin: the sender must not take a core from the workers. An oversleep
    // makes it submit the requests that came due in a burst, their latency still counted from
    // their intended times.
    const int64_t ahead = intended - clock->NowNanos();
    if (ahead > 0) std::this_thread::sleep_for(std::chrono::nanoseconds(ahead));
    server::InferRequest r;
    for (const Tensor& t : sample) {
      r.inputs.push_back(Tensor::View(t.dtype(), t.shape(), const_cast<void*>(t.raw_data())));
    }
    r.done = [&latency_us, &last_done_nanos, clock, intended,
              i](Result<std::vector<Tensor>> result) {
      const int64_t done = clock->NowNanos();
      if (result.ok())
        latency_us[static_cast<size_t>(i)] = static_cast<double>(done - intended) / 1e3;
      int64_t prev = last_done_nanos.load(std::memory_order_relaxed);
      while (prev < done && !last_done_nanos.compare_exchange_weak(prev, done)) {
      }
    };
    server::SubmitResult submitted = batcher->Submit(std::move(r));
    ++p.sent;
    if (!submitted.ok()) ++p.refused;
  }
  batcher->Drain();
  const server::BatcherStats stats = batcher->stats();
  std::vector<double> ok_latencies;
  for (double l : latency_us) {
    if (l >= 0) ok_latencies.push_back(l);
  }
  p.ok = static_cast<int64_t>(ok_latencies.size());
  const double seconds =
      static_cast<double>(std::max(last_done_nanos.load(), clock->NowNanos()) - t0) / 1e9;
  p.throughput = static_cast<double>(p.ok) / seconds;
  const LatencyStats ls = ComputeLatencyStats(ok_latencies);
  p.p50_ms = ls.p50_us / 1e3;
  p.p99_ms = ls.p99_us / 1e3;
  p.mean_batch = stats.batches > 0
                     ? static_cast<double>(stats.samples) / static_cast<double>(stats.batches)
                     : 0;
  return p;
}

struct ModelReport {
  std::string name;
  double runtime_alone = 0;  // samples/s
  double runtime_alone_batch1 = 0;  // samples/s at batch 1 (--runtime_only)
  std::vector<SessionCost> session_costs;
  std::vector<Point> points;
  double knee_batching = 0, knee_plain = 0;  // throughput at the knee, requests/s
};

Result<ModelReport> RunModel(const Model& model, const Flags& f) {
  ModelReport report;
  report.name = model.name();
  HML_ASSIGN_OR_RETURN(std::vector<Tensor> sample, OneSample(model));
  HML_ASSIGN_OR_RETURN(report.session_costs, MeasureSessionCosts(model, f.max_batch));
  HML_ASSIGN_OR_RETURN(report.runtime_alone,
                       RuntimeAlone(model, f.instances, f.max_batch, f.duration_ms));
  if (f.runtime_only) {
    HML_ASSIGN_OR_RETURN(report.runtime_alone_batch1,
                         RuntimeAlone(model, f.instances, 1, f.duration_ms));
    std::printf("\nmodel %s: runtime alone %.0f samples/s at batch %lld, %.0f samples/s at batch 1 "
                "(%d threads)\n",
                report.name.c_str(), report.runtime_alone, static_cast<long long>(f.max_batch),
                report.runtime_alone_batch1, f.instances);
    return report;
  }
  std::vector<double> rates = f.rates;
  if (rates.empty()) {
    for (double frac : {0.1, 0.3, 0.5, 0.7, 0.9, 1.1, 1.5}) {
      rates.push_back(std::round(report.runtime_alone * frac));
    }
  }
  std::printf("\nmodel %s: runtime alone %.0f samples/s (%d threads, batch %lld)\n",
              report.name.c_str(), report.runtime_alone, f.instances,
              static_cast<long long>(f.max_batch));
  std::printf("session per batch size: ");
  for (const SessionCost& c : report.session_costs) {
    std::printf("%lld:%.2fms/%zuKB ", static_cast<long long>(c.batch), c.create_ms,
                c.arena_bytes / 1024);
  }
  std::printf("\n%-9s %10s %10s %9s %9s %8s %8s %6s\n", "batching", "offered/s", "thrpt/s",
              "p50 ms", "p99 ms", "refused", "batch", "eff");
  for (bool batching : {true, false}) {
    for (double rate : rates) {
      HML_ASSIGN_OR_RETURN(Point p, OpenLoop(model, sample, f, batching, rate));
      std::printf("%-9s %10.0f %10.0f %9.2f %9.2f %8lld %8.2f %5.0f%%\n",
                  batching ? "dynamic" : "none", p.offered, p.throughput, p.p50_ms, p.p99_ms,
                  static_cast<long long>(p.refused), p.mean_batch,
                  100.0 * p.throughput / report.runtime_alone);
      if (p.p99_ms <= kLatencyBudgetMs && p.refused * 100 <= p.sent * kMaxRefusedPercent) {
        double& knee = batching ? report.knee_batching : report.knee_plain;
        knee = std::max(knee, p.throughput);
      }
      report.points.push_back(p);
    }
  }
  std::printf(
      "knee (p99 <= %.0f ms, <= 1%% refused): dynamic %.0f/s (efficiency %.0f%%), none %.0f/s "
      "(%.0f%%); batching gain %.2fx\n",
      kLatencyBudgetMs, report.knee_batching, 100.0 * report.knee_batching / report.runtime_alone,
      report.knee_plain, 100.0 * report.knee_plain / report.runtime_alone,
      report.knee_plain > 0 ? report.knee_batching / report.knee_plain : 0.0);
  return report;
}

Result<GemmReport> MeasureGemm(const Flags& f) {
  GemmReport g;
  g.n = f.gemm;
  HML_ASSIGN_OR_RETURN(Model model, GemmModel(f.gemm));
  const double flops_per_run = 2.0 * static_cast<double>(f.gemm) * static_cast<double>(f.gemm) *
                               static_cast<double>(f.gemm);
  // RuntimeAlone counts rows (dimension 0 = n) per second.
  auto gflops = [&](double rows_per_s) {
    return rows_per_s / static_cast<double>(f.gemm) * flops_per_run / 1e9;
  };
  HML_ASSIGN_OR_RETURN(double one, RuntimeAlone(model, 1, f.gemm, f.duration_ms));
  HML_ASSIGN_OR_RETURN(double parallel, RuntimeAlone(model, f.instances, f.gemm, f.duration_ms));
  HML_ASSIGN_OR_RETURN(double threaded,
                       RuntimeAlone(model, 1, f.gemm, f.duration_ms, f.instances));
  g.one_thread = gflops(one);
  g.parallel_sessions = gflops(parallel);
  g.threaded_session = gflops(threaded);
  std::printf("\nfp32 GEMM %lldx%lldx%lld through the runtime: %.2f GFLOP/s on 1 thread, %.2f "
              "GFLOP/s with %d Sessions x 1 thread, %.2f GFLOP/s with 1 Session x %d threads\n",
              static_cast<long long>(g.n), static_cast<long long>(g.n),
              static_cast<long long>(g.n), g.one_thread, g.parallel_sessions, f.instances,
              g.threaded_session, f.instances);
  return g;
}

Status WriteJson(const std::vector<ModelReport>& reports, const GemmReport& gemm,
                 const Flags& f) {
  const std::filesystem::path path(f.json_path);
  if (path.has_parent_path()) {
    std::error_code ec;
    std::filesystem::create_directories(path.parent_path(), ec);
  }
  std::ofstream out(f.json_path);
  if (!out) return PermissionDeniedError("cannot write " + f.json_path);
  out << "{\n  \"benchmark\": \"serving_batcher\",\n  \"instances\": " << f.instances
      << ",\n  \"max_batch\": " << f.max_batch << ",\n  \"delay_us\": " << f.delay_us
      << ",\n  \"queue\": " << f.queue << ",\n  \"duration_ms\": " << f.duration_ms;
  if (gemm.n > 0) {
    out << ",\n  \"gemm\": {\"n\": " << gemm.n << ", \"gflops_1_thread\": " << gemm.one_thread
        << ", \"gflops_parallel_sessions\": " << gemm.parallel_sessions
        << ", \"gflops_threaded_session\": " << gemm.threaded_session << "}";
  }
  out << ",\n  \"models\": [";
  for (size_t m = 0; m < reports.size(); ++m) {
    const ModelReport& r = reports[m];
    out << (m ? "," : "") << "\n    {\"name\": \"" << r.name
        << "\", \"runtime_alone_per_s\": " << r.runtime_alone
        << ", \"runtime_alone_batch1_per_s\": " << r.runtime_alone_batch1
        << ", \"knee_dynamic_per_s\": " << r.knee_batching
        << ", \"knee_none_per_s\": " << r.knee_plain << ",\n     \"session_costs\": [";
    for (size_t i = 0; i < r.session_costs.size(); ++i) {
      const SessionCost& c = r.session_costs[i];
      out << (i ? ", " : "") << "{\"batch\": " << c.batch << ", \"create_ms\": " << c.create_ms
          << ", \"arena_bytes\": " << c.arena_bytes << "}";
    }
    out << "],\n     \"points\": [";
    for (size_t i = 0; i < r.points.size(); ++i) {
      const Point& p = r.points[i];
      out << (i ? "," : "") << "\n       {\"dynamic_batching\": " << (p.batching ? "true" : "false")
          << ", \"offered_per_s\": " << p.offered << ", \"throughput_per_s\": " << p.throughput
          << ", \"p50_ms\": " << p.p50_ms << ", \"p99_ms\": " << p.p99_ms
          << ", \"sent\": " << p.sent << ", \"ok\": " << p.ok << ", \"refused\": " << p.refused
          << ", \"mean_batch\": " << p.mean_batch << "}";
    }
    out << "]}";
  }
  out << "\n  ]\n}\n";
  out.close();
  if (!out) return DataLossError("writing " + f.json_path + " failed");
  return Status::Ok();
}

int Main(int argc, char** argv) {
  Result<Flags> flags = ParseFlags(argc, argv);
  if (!flags.ok()) {
    std::fprintf(stderr, "serving_batcher: %s\n", flags.status().ToString().c_str());
    return 2;
  }
  std::vector<Model> models;
  Result<Model> cnn28 = Model::FromGraph(testing::Cnn28Graph());
  if (!cnn28.ok()) {
    std::fprintf(stderr, "serving_batcher: %s\n", cnn28.status().ToString().c_str());
    return 1;
  }
  models.push_back(*cnn28);
  if (flags->large) {
    Result<Model> large = LargeCnn();
    if (!large.ok()) {
      std::fprintf(stderr, "serving_batcher: %s\n", large.status().ToString().c_str());
      return 1;
    }
    models.push_back(*large);
  }
  if (!flags->model_path.empty()) {
    Result<Model> loaded = Model::Load(flags->model_path);
    if (!loaded.ok()) {
      std::fprintf(stderr, "serving_batcher: %s\n", loaded.status().ToString().c_str());
      return 1;
    }
    models.push_back(*loaded);
  }
  std::printf(
      "serving_batcher: %d instance(s) x 1 thread, max batch %lld, delay %lld us, "
      "queue %lld, %lld ms per point; latency from the intended send time\n",
      flags->instances, static_cast<long long>(flags->max_batch),
      static_cast<long long>(flags->delay_us), static_cast<long long>(flags->queue),
      static_cast<long long>(flags->duration_ms));
  std::vector<ModelReport> reports;
  for (const Model& model : models) {
    Result<ModelReport> report = RunModel(model, *flags);
    if (!report.ok()) {
      std::fprintf(stderr, "serving_batcher: %s\n", report.status().ToString().c_str());
      return 1;
    }
    reports.push_back(std::move(*report));
  }
  GemmReport gemm;
  if (flags->gemm > 0) {
    Result<GemmReport> measured = MeasureGemm(*flags);
    if (!measured.ok()) {
      std::fprintf(stderr, "serving_batcher: %s\n", measured.status().ToString().c_str());
      return 1;
    }
    gemm = *measured;
  }
  if (!flags->json_path.empty()) {
    Status written = WriteJson(reports, gemm, *flags);
    if (!written.ok()) {
      std::fprintf(stderr, "serving_batcher: %s\n", written.ToString().c_str());
      return 1;
    }
    std::printf("wrote %s\n", flags->json_path.c_str());
  }
  return 0;
}

}  // namespace
}  // namespace hml::bench

int main(int argc, char** argv) { return hml::bench::Main(argc, argv); }

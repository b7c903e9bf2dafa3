// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Google Benchmark micro-benchmarks of the runtime's own phases on the 28x28 CNN: ONNX import,
// session creation (prepare + plan + compile) per backend, Run() per backend and batch, and the
// memory planner. The peer comparison lives in runtime_vs_peers; these track our overheads.
//
// Usage: runtime_micro_bench [--benchmark_filter=...] [--benchmark_out=bench/results/micro.json
//                             --benchmark_out_format=json]
#include <benchmark/benchmark.h>

#include <random>
#include <string>
#include <vector>

#include "hml/runtime/model.h"
#include "hml/runtime/session.h"
#include "hml/runtime/tensor_util.h"
#include "src/runtime/memory_plan.h"
#include "tests/testing/models.h"

namespace hml {
namespace {

const std::string& Cnn28Bytes() {
  static const std::string* bytes = new std::string(testing::Cnn28Onnx());
  return *bytes;
}

void BM_ImportOnnx(benchmark::State& state) {
  for (auto _ : state) {
    Result<Model> model = Model::FromOnnx(Cnn28Bytes());
    if (!model.ok()) state.SkipWithError(model.status().ToString().c_str());
    benchmark::DoNotOptimize(model);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(Cnn28Bytes().size()));
}
BENCHMARK(BM_ImportOnnx);

void BM_CreateSession(benchmark::State& state, const char* backend) {
  Model model = *Model::FromOnnx(Cnn28Bytes());
  SessionOptions options;
  options.backend = backend;
  for (auto _ : state) {
    auto session = Session::Create(model, options);
    if (!session.ok()) state.SkipWithError(session.status().ToString().c_str());
    benchmark::DoNotOptimize(session);
  }
}
BENCHMARK_CAPTURE(BM_CreateSession, xnnpack, "xnnpack");
BENCHMARK_CAPTURE(BM_CreateSession, reference, "reference");

void BM_Run(benchmark::State& state, const char* backend) {
  Model model = *Model::FromOnnx(Cnn28Bytes());
  SessionOptions options;
  options.backend = backend;
  options.input_shapes["image"] = {state.range(0), 1, 28, 28};
  auto session = Session::Create(model, options);
  if (!session.ok()) {
    state.SkipWithError(session.status().ToString().c_str());
    return;
  }
  FillRandom((*session)->input(0), 1);
  for (auto _ : state) {
    Status s = (*session)->Run();
    if (!s.ok()) state.SkipWithError(s.ToString().c_str());
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK_CAPTURE(BM_Run, xnnpack, "xnnpack")->Arg(1)->Arg(32);
BENCHMARK_CAPTURE(BM_Run, reference, "reference")->Arg(1)->Arg(32);

void BM_PlanMemory(benchmark::State& state) {
  std::mt19937 rng(1);
  std::vector<runtime::BufferRequest> requests;
  for (int64_t i = 0; i < state.range(0); ++i) {
    const int first = static_cast<int>(rng() % 200);
    requests.push_back({1 + rng() % 100000, first, first + static_cast<int>(rng() % 10)});
  }
  for (auto _ : state) benchmark::DoNotOptimize(runtime::PlanMemory(requests));
}
BENCHMARK(BM_PlanMemory)->Arg(100)->Arg(1000);

}  // namespace
}  // namespace hml

BENCHMARK_MAIN();

// trainer_throughput: training samples/s of the on-device trainer (src/runtime/train/trainer.h)
// on the student CNN (zoo "student-cnn", [1, 28, 28] -> 10 classes), for issue 7's federated
// benchmark, which runs ~100 rounds of local training per client. One thread; each
// configuration (batch 32 and 64, all layers and the last 2) first runs warm-up steps (the
// first step of a batch size allocates its plan), then times SGD steps on random images and
// labels and reports the best of the repetitions, per wall-clock second and per second of the
// thread's CPU time (the second is steadier when other processes share the cores). Target:
// >= 3000 samples/s at batch 32, all layers.
//
// Usage: trainer_throughput [--seconds S] [--reps R] [--json PATH]
//   Defaults: 1 second per repetition, 3 repetitions, JSON to
//   bench/results/trainer_throughput.json.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <random>
#include <string>
#include <vector>

#include "src/runtime/train/gemm.h"
#include "src/runtime/train/trainer.h"
#include "src/train/zoo.h"

namespace {

using hml::runtime::Trainer;
using hml::runtime::TrainOptions;

struct Row {
  int batch = 0;
  int trainable_layers = 0;  // 0 = all
  double samples_per_second = 0;
  double samples_per_cpu_second = 0;
  double ms_per_step = 0;
};

double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 1.0;
  int reps = 3;
  std::string json_path = HML_SOURCE_DIR "/bench/results/trainer_throughput.json";
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const bool has_value = i + 1 < argc;
    if (arg == "--seconds" && has_value) {
      seconds = std::max(0.05, std::atof(argv[++i]));
    } else if (arg == "--reps" && has_value) {
      reps = std::max(1, std::atoi(argv[++i]));
    } else if (arg == "--json" && has_value) {
      json_path = argv[++i];
    } else {
      std::fprintf(stderr, "usage: trainer_throughput [--seconds S] [--reps R] [--json PATH]\n");
      return 2;
    }
  }
  auto graph = hml::train::BuildArchitecture("student-cnn", {1, 28, 28}, 10, 1);
  if (!graph.ok()) {
    std::fprintf(stderr, "%s\n", graph.status().ToString().c_str());
    return 1;
  }
  const bool avx2 = hml::runtime::train_internal::CpuHasAvx2Fma();
  std::printf("student-cnn [1,28,28] -> 10, one thread, GEMM kernels: %s\n",
              avx2 ? "AVX2+FMA" : "portable");
  std::vector<Row> rows;
  std::mt19937 rng(1);
  for (int trainable : {0, 2}) {
    for (int batch : {32, 64}) {
      TrainOptions options;
      options.trainable_layers = trainable;
      auto trainer = Trainer::Create(*graph, options);
      if (!trainer.ok()) {
        std::fprintf(stderr, "%s\n", trainer.status().ToString().c_str());
        return 1;
      }
      // A few distinct batches so the timing does not ride on one batch staying in cache.
      std::vector<hml::Tensor> inputs;
      std::vector<std::vector<int64_t>> labels;
      for (int b = 0; b < 8; ++b) {
        hml::Tensor x =
            std::move(hml::Tensor::Allocate(hml::DType::kFloat32, {batch, 1, 28, 28}).value());
        std::uniform_real_distribution<float> pixel(0.0f, 1.0f);
        for (float& v : x.values<float>()) v = pixel(rng);
        std::vector<int64_t> y(static_cast<size_t>(batch));
        for (int64_t& v : y) v = static_cast<int64_t>(rng() % 10);
        inputs.push_back(std::move(x));
        labels.push_back(std::move(y));
      }
      for (int w = 0; w < 5; ++w) {
        auto r = (*trainer)->Step(inputs[static_cast<size_t>(w % 8)],
                                  labels[static_cast<size_t>(w % 8)]);
        if (!r.ok()) {
          std::fprintf(stderr, "%s\n", r.status().ToString().c_str());
          return 1;
        }
      }
      double best = 0, best_cpu = 0;
      for (int rep = 0; rep < reps; ++rep) {
        int64_t steps = 0;
        const double cpu_start = ThreadCpuSeconds();
        const auto start = std::chrono::steady_clock::now();
        double elapsed = 0;
        while (elapsed < seconds) {
          const size_t b = static_cast<size_t>(steps % 8);
          if (!(*trainer)->Step(inputs[b], labels[b]).ok()) return 1;
          ++steps;
          elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        }
        best = std::max(best, static_cast<double>(steps * batch) / elapsed);
        best_cpu = std::max(best_cpu, static_cast<double>(steps * batch) /
                                          std::max(ThreadCpuSeconds() - cpu_start, 1e-9));
      }
      Row row;
      row.batch = batch;
      row.trainable_layers = trainable;
      row.samples_per_second = best;
      row.samples_per_cpu_second = best_cpu;
      row.ms_per_step = 1000.0 * batch / best;
      rows.push_back(row);
    }
  }
  std::printf("%-7s %-18s %-12s %-16s %-10s\n", "batch", "trained layers", "samples/s",
              "samples/CPU-s", "ms/step");
  for (const Row& r : rows) {
    std::printf("%-7d %-18s %-12.0f %-16.0f %-10.3f\n", r.batch,
                r.trainable_layers == 0 ? "all (4)" : "last 2 (fc1, fc2)", r.samples_per_second,
                r.samples_per_cpu_second, r.ms_per_step);
  }
  if (FILE* f = std::fopen(json_path.c_str(), "w")) {
    std::fprintf(f,
                 "{\n  \"model\": \"student-cnn\",\n  \"input\": [1, 28, 28],\n  \"classes\": 10,\n"
                 "  \"threads\": 1,\n  \"gemm_kernels\": \"%s\",\n  \"seconds_per_rep\": %.2f,\n"
                 "  \"repetitions\": %d,\n  \"rows\": [\n",
                 avx2 ? "avx2+fma" : "portable", seconds, reps);
    for (size_t i = 0; i < rows.size(); ++i) {
      const Row& r = rows[i];
      std::fprintf(f,
                   "    {\"batch\": %d, \"trainable_layers\": %d, \"samples_per_second\": %.1f, "
                   "\"samples_per_cpu_second\": %.1f, \"ms_per_step\": %.4f}%s\n",
                   r.batch, r.trainable_layers, r.samples_per_second, r.samples_per_cpu_second,
                   r.ms_per_step, i + 1 < rows.size() ? "," : "");
    }
    std::fprintf(f, "  ]\n}\n");
    std::fclose(f);
    std::printf("wrote %s\n", json_path.c_str());
  } else {
    std::fprintf(stderr, "trainer_throughput: cannot write %s\n", json_path.c_str());
    return 1;
  }
  return 0;
}

// secagg: cost of secure aggregation (src/fl/secagg.h) against plain summation, for issue 7's
// "secure aggregation at 100 clients" figure. For each dropout rate (0, 10 and 30 % of the
// clients vanish after sharing their keys, the worst moment for the server: it must rebuild their
// pairwise masks) it runs one in-process round on random integer vectors and reports
//  - client time: mean per participating client (key generation, sharing, masking, unmasking);
//    a plain client does no work beyond sending x;
//  - server time: all server work for the round, beside the plain sum of the same survivors;
//  - whether the secure sum equals the plain sum exactly.
// Timings are wall-clock on one thread and include no networking.
//
// Usage: secagg [--clients N] [--threshold T] [--length L] [--reps R] [--json PATH]
//   Defaults: 100 clients, threshold 2n/3 + 1 (67), length 10000, 3 repetitions (the median is
//   reported), JSON to bench/results/secagg.json.
#include "src/fl/secagg.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace {

struct Row {
  int dropout_percent = 0;
  int dropped = 0;
  double client_ms = 0;  // per participating client
  double server_ms = 0;
  double plain_ms = 0;
  bool exact = false;
};

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int clients = 100;
  int threshold = 0;
  size_t length = 10000;
  int reps = 3;
  std::string json_path = HML_SOURCE_DIR "/bench/results/secagg.json";
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const bool has_value = i + 1 < argc;
    if (arg == "--clients" && has_value) {
      clients = std::atoi(argv[++i]);
    } else if (arg == "--threshold" && has_value) {
      threshold = std::atoi(argv[++i]);
    } else if (arg == "--length" && has_value) {
      length = static_cast<size_t>(std::atol(argv[++i]));
    } else if (arg == "--reps" && has_value) {
      reps = std::max(1, std::atoi(argv[++i]));
    } else if (arg == "--json" && has_value) {
      json_path = argv[++i];
    } else {
      std::fprintf(stderr,
                   "usage: secagg [--clients N] [--threshold T] [--length L] [--reps R] "
                   "[--json PATH]\n");
      return 2;
    }
  }
  if (threshold == 0) threshold = 2 * clients / 3 + 1;
  hml::fl::SecAggConfig config;
  config.num_clients = clients;
  config.threshold = threshold;
  config.vector_length = length;
  if (hml::Status s = config.Validate(); !s.ok()) {
    std::fprintf(stderr, "secagg: %s\n", s.ToString().c_str());
    return 2;
  }

  std::mt19937 rng(7);
  std::vector<std::vector<uint32_t>> inputs(clients, std::vector<uint32_t>(length));
  for (auto& v : inputs) {
    for (auto& x : v) x = rng();
  }

  std::vector<Row> rows;
  for (int percent : {0, 10, 30}) {
    Row row;
    row.dropout_percent = percent;
    row.dropped = clients * percent / 100;
    if (clients - row.dropped < threshold) {
      std::fprintf(stderr, "secagg: %d %% dropouts leave fewer than %d clients; skipped\n", percent,
                   threshold);
      continue;
    }
    // Drop every k-th client so the dropped ids spread over the range.
    std::vector<int> dropped;
    std::vector<bool> is_dropped(clients + 1, false);
    for (int d = 0; d < row.dropped; ++d) {
      const int id = 1 + static_cast<int>(static_cast<long>(d) * clients / row.dropped);
      dropped.push_back(id);
      is_dropped[id] = true;
    }
    std::vector<double> client_ms, server_ms, plain_ms;
    row.exact = true;
    for (int r = 0; r < reps; ++r) {
      hml::fl::SecAggTimings t;
      auto sum = hml::fl::RunSecAggRound(config, inputs, {}, dropped, &t);
      if (!sum.ok()) {
        std::fprintf(stderr, "secagg: round failed: %s\n", sum.status().ToString().c_str());
        return 1;
      }
      // The same survivors summed in the clear.
      const auto start = std::chrono::steady_clock::now();
      std::vector<uint32_t> plain(length, 0);
      for (int id = 1; id <= clients; ++id) {
        if (is_dropped[id]) continue;
        const std::vector<uint32_t>& x = inputs[id - 1];
        for (size_t k = 0; k < length; ++k) plain[k] += x[k];
      }
      plain_ms.push_back(
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
              .count());
      row.exact = row.exact && (*sum == plain);
      client_ms.push_back(1e3 * t.client_seconds / clients);
      server_ms.push_back(1e3 * t.server_seconds);
    }
    row.client_ms = Median(client_ms);
    row.server_ms = Median(server_ms);
    row.plain_ms = Median(plain_ms);
    rows.push_back(row);
  }

  std::printf("secure aggregation: %d clients, threshold %d, vector length %zu, median of %d\n",
              clients, threshold, length, reps);
  std::printf("%-9s %-8s %-16s %-14s %-14s %-12s %-6s\n", "dropouts", "dropped", "client ms/client",
              "server ms", "plain sum ms", "server/plain", "exact");
  for (const Row& r : rows) {
    std::printf("%-9s %-8d %-16.2f %-14.2f %-14.3f %-12.0f %-6s\n",
                (std::to_string(r.dropout_percent) + " %").c_str(), r.dropped, r.client_ms,
                r.server_ms, r.plain_ms, r.server_ms / std::max(r.plain_ms, 1e-6),
                r.exact ? "yes" : "NO");
  }

  if (FILE* f = std::fopen(json_path.c_str(), "w")) {
    std::fprintf(f,
                 "{\n  \"clients\": %d,\n  \"threshold\": %d,\n  \"vector_length\": %zu,\n"
                 "  \"repetitions\": %d,\n  \"rows\": [\n",
                 clients, threshold, length, reps);
    for (size_t i = 0; i < rows.size(); ++i) {
      const Row& r = rows[i];
      std::fprintf(f,
                   "    {\"dropout_percent\": %d, \"dropped\": %d, \"client_ms_per_client\": %.3f, "
                   "\"server_ms\": %.3f, \"plain_sum_ms\": %.4f, \"exact\": %s}%s\n",
                   r.dropout_percent, r.dropped, r.client_ms, r.server_ms, r.plain_ms,
                   r.exact ? "true" : "false", i + 1 < rows.size() ? "," : "");
    }
    std::fprintf(f, "  ]\n}\n");
    std::fclose(f);
    std::printf("wrote %s\n", json_path.c_str());
  } else {
    std::fprintf(stderr, "secagg: cannot write %s\n", json_path.c_str());
    return 1;
  }
  bool all_exact = true;
  for (const Row& r : rows) all_exact = all_exact && r.exact;
  return all_exact ? 0 : 1;
}

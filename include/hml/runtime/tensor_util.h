// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Helpers around tensors for tools and tests: deterministic random fill, loading and saving ONNX
// TensorProto files, summaries for printing, and latency statistics for benchmarking sessions.
#ifndef HML_RUNTIME_TENSOR_UTIL_H_
#define HML_RUNTIME_TENSOR_UTIL_H_

#include <cstdint>
#include <string>
#include <vector>

#include "hml/clock.h"
#include "hml/runtime/session.h"
#include "hml/runtime/tensor.h"
#include "hml/status.h"

namespace hml {

// Fills `t` with values from a fixed-seed generator: floats uniform in [-1, 1), integers over a
// small range valid for their type (int64: [0, 10)).
void FillRandom(Tensor& t, uint64_t seed);

// Reads / writes a tensor as a serialized ONNX TensorProto (.pb), the format of the ONNX test
// suite. Errors name the path.
Result<Tensor> LoadTensor(const std::string& path);
Status SaveTensor(const Tensor& t, const std::string& path, const std::string& name = "");

// "float32[1,10] min -2.1 max 3.4 mean 0.01 | argmax 7 (3.4)" style one-line summary.
std::string SummarizeTensor(const Tensor& t);

struct LatencyStats {
  int64_t count = 0;
  double mean_us = 0, min_us = 0, p50_us = 0, p90_us = 0, p99_us = 0, max_us = 0;
};

// Percentiles (nearest rank) of the given per-run latencies in microseconds.
LatencyStats ComputeLatencyStats(std::vector<double> micros);

// Runs `session` `warmup` times untimed, then `iterations` times timed with `clock`.
Result<LatencyStats> TimeSession(Session& session, int warmup, int iterations,
                                 Clock* clock = nullptr);

}  // namespace hml

#endif  // HML_RUNTIME_TENSOR_UTIL_H_

// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The numbers that compare model variants (fp32, pruned, int8): parameters, FLOPs, ONNX file
// size raw and zstd-compressed, latency in our runtime and, when the caller supplies an
// evaluation, accuracy.
#ifndef HML_SRC_COMPRESS_REPORT_H_
#define HML_SRC_COMPRESS_REPORT_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>

#include "hml/clock.h"
#include "hml/runtime/model.h"
#include "hml/status.h"
#include "src/runtime/graph.h"

namespace hml::compress {

struct VariantReport {
  std::string name;
  int64_t params = 0;      // elements of constant inputs (Model::Analyze), batch 1
  int64_t flops = 0;       // multiply-adds count 2 (Model::Analyze), batch 1
  int64_t onnx_bytes = 0;  // serialized ModelProto
  int64_t zstd_bytes = 0;  // the same, zstd-compressed
  double latency_p50_us = 0;
  double latency_mean_us = 0;
  std::optional<double> accuracy;   // from the caller's evaluation, in [0, 1]
  std::optional<double> agreement;  // from the caller's evaluation, in [0, 1]
};

// What the caller's evaluation of a variant found; either may be absent.
struct Score {
  std::optional<double> accuracy;   // e.g. top-1 accuracy on a test set
  std::optional<double> agreement;  // e.g. predictions equal to the fp32 model's
};

// Scores a model. Called once per variant.
using EvaluateFn = std::function<Result<Score>(const Model&)>;

struct ReportOptions {
  // Backend the latency is measured on. Default: "xnnpack".
  std::string backend = "xnnpack";
  // Intra-op threads. Default: 1.
  int num_threads = 1;
  // Untimed and timed runs at batch 1 on random inputs. Default: 5 and 50; 0 timed runs skips
  // the latency measurement.
  int warmup = 5;
  int iterations = 50;
  // zstd compression level in [1, 22]. Default: 19.
  int zstd_level = 19;
  // Default: null = RealClock().
  Clock* clock = nullptr;
  // kInvalidArgument for negative run counts, threads outside [1, 64], a level outside [1, 22].
  Status Validate() const;
};

// zstd-compressed `bytes`. kInternal naming zstd's error if compression fails.
Result<std::string> ZstdCompress(std::string_view bytes, int level);

// Measures `graph` as described above; `evaluate` may be empty. Errors from serialization,
// session creation or the evaluation are returned with the variant's name.
Result<VariantReport> ReportVariant(const std::string& name, const runtime::Graph& graph,
                                    const ReportOptions& options, const EvaluateFn& evaluate = {});

// A fixed-width table with one row per variant.
std::string FormatReportTable(std::span<const VariantReport> variants);

}  // namespace hml::compress

#endif  // HML_SRC_COMPRESS_REPORT_H_

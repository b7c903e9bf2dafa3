// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/compress/report.h"

#include <zstd.h>

#include <cstdio>
#include <memory>

#include "hml/runtime/session.h"
#include "hml/runtime/tensor_util.h"
#include "src/runtime/onnx_io.h"

namespace hml::compress {
namespace {

// The one translation of zstd's error space.
Status ZstdStatus(size_t code, const std::string& context) {
  return InternalError(context + ": zstd: " + ZSTD_getErrorName(code));
}

Status WithName(const Status& s, const std::string& name) {
  return Status(s.code(), "variant '" + name + "': " + std::string(s.message()));
}

}  // namespace

Status ReportOptions::Validate() const {
  if (warmup < 0 || iterations < 0) {
    return InvalidArgumentError("ReportOptions: warmup and iterations must not be negative");
  }
  if (num_threads < 1 || num_threads > 64) {
    return InvalidArgumentError("ReportOptions: num_threads " + std::to_string(num_threads) +
                                " is outside [1, 64]");
  }
  if (zstd_level < 1 || zstd_level > 22) {
    return InvalidArgumentError("ReportOptions: zstd_level " + std::to_string(zstd_level) +
                                " is outside [1, 22]");
  }
  if (backend.empty()) return InvalidArgumentError("ReportOptions: backend is empty");
  return Status::Ok();
}

Result<std::string> ZstdCompress(std::string_view bytes, int level) {
  std::string out(ZSTD_compressBound(bytes.size()), '\0');
  const size_t n = ZSTD_compress(out.data(), out.size(), bytes.data(), bytes.size(), level);
  if (ZSTD_isError(n))
    return ZstdStatus(n, "compressing " + std::to_string(bytes.size()) + " bytes");
  out.resize(n);
  return out;
}

Result<VariantReport> ReportVariant(const std::string& name, const runtime::Graph& graph,
                                    const ReportOptions& options, const EvaluateFn& evaluate) {
  HML_RETURN_IF_ERROR(options.Validate());
  VariantReport r;
  r.name = name;
  Result<Model> model = Model::FromGraph(graph);
  if (!model.ok()) return WithName(model.status(), name);
  Result<ModelAnalysis> analysis = model->Analyze();
  if (!analysis.ok()) return WithName(analysis.status(), name);
  r.params = analysis->total_params;
  r.flops = analysis->total_flops;
  Result<std::string> onnx = model->ToOnnx();
  if (!onnx.ok()) return WithName(onnx.status(), name);
  r.onnx_bytes = static_cast<int64_t>(onnx->size());
  Result<std::string> packed = ZstdCompress(*onnx, options.zstd_level);
  if (!packed.ok()) return WithName(packed.status(), name);
  r.zstd_bytes = static_cast<int64_t>(packed->size());

  if (options.iterations > 0) {
    SessionOptions so;
    so.backend = options.backend;
    so.num_threads = options.num_threads;
    Result<std::unique_ptr<Session>> session = Session::Create(*model, so);
    if (!session.ok()) return WithName(session.status(), name);
    for (size_t i = 0; i < (*session)->num_inputs(); ++i) FillRandom((*session)->input(i), 1 + i);
    Result<LatencyStats> stats =
        TimeSession(**session, options.warmup, options.iterations, options.clock);
    if (!stats.ok()) return WithName(stats.status(), name);
    r.latency_p50_us = stats->p50_us;
    r.latency_mean_us = stats->mean_us;
  }
  if (evaluate) {
    Result<Score> score = evaluate(*model);
    if (!score.ok()) return WithName(score.status(), name);
    r.accuracy = score->accuracy;
    r.agreement = score->agreement;
  }
  return r;
}

std::string FormatReportTable(std::span<const VariantReport> variants) {
  std::string out;
  char line[256];
  std::snprintf(line, sizeof(line), "%-20s %10s %12s %12s %12s %12s %10s %10s\n", "variant",
                "params", "FLOPs", "ONNX bytes", "zstd bytes", "p50 us", "accuracy", "agreement");
  out += line;
  auto percent = [](const std::optional<double>& v) {
    char s[32] = "-";
    if (v) std::snprintf(s, sizeof(s), "%.2f%%", *v * 100.0);
    return std::string(s);
  };
  for (const VariantReport& v : variants) {
    char latency[32] = "-";  // not timed (ReportOptions::iterations 0)
    if (v.latency_p50_us > 0) std::snprintf(latency, sizeof(latency), "%.1f", v.latency_p50_us);
    std::snprintf(line, sizeof(line), "%-20s %10lld %12lld %12lld %12lld %12s %10s %10s\n",
                  v.name.substr(0, 20).c_str(), static_cast<long long>(v.params),
                  static_cast<long long>(v.flops), static_cast<long long>(v.onnx_bytes),
                  static_cast<long long>(v.zstd_bytes), latency, percent(v.accuracy).c_str(),
                  percent(v.agreement).c_str());
    out += line;
  }
  return out;
}

}  // namespace hml::compress

// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// `hybridml compress`: prune and/or int8-quantize an ONNX model and print the report table.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "hml/runtime/model.h"
#include "hml/runtime/session.h"
#include "hml/runtime/tensor_util.h"
#include "src/cli/commands.h"
#include "src/compress/prune.h"
#include "src/compress/quantize.h"
#include "src/compress/report.h"
#include "src/runtime/graph.h"

namespace hml::cli {
namespace {

struct CompressFlags {
  std::string model_path;
  std::string output_path;
  bool int8 = false;
  int calibration_samples = 32;
  std::string calibration = "minmax";
  double percentile = 99.99;
  double prune_structured = -1;
  double prune_magnitude = -1;
  int agreement_samples = 100;
  int iterations = 50;
  uint64_t seed = 1;
};

int Fail(const Status& s) {
  std::fprintf(stderr, "hybridml compress: %s\n", s.ToString().c_str());
  return 1;
}

// One random sample per model input, dynamic dims set to 1.
Result<std::vector<Tensor>> RandomSample(const Model& model, uint64_t seed) {
  std::vector<Tensor> sample;
  for (const TensorSpec& spec : model.inputs()) {
    Shape shape = spec.shape;
    for (int64_t& d : shape) {
      if (d < 0) d = 1;
    }
    HML_ASSIGN_OR_RETURN(Tensor t, Tensor::Allocate(spec.dtype, shape));
    FillRandom(t, seed++);
    sample.push_back(std::move(t));
  }
  return sample;
}

int ArgmaxOf(const Tensor& t) {
  if (t.dtype() != DType::kFloat32 || t.num_elements() == 0) return -1;
  const std::span<const float> v = t.values<float>();
  return static_cast<int>(std::max_element(v.begin(), v.end()) - v.begin());
}

// Argmax of the first output on each random sample, for the agreement column.
Result<std::vector<int>> Predictions(const Model& model, int samples, uint64_t seed) {
  SessionOptions options;
  HML_ASSIGN_OR_RETURN(std::unique_ptr<Session> session, Session::Create(model, options));
  std::vector<int> out;
  for (int i = 0; i < samples; ++i) {
    HML_ASSIGN_OR_RETURN(std::vector<Tensor> in,
                         RandomSample(model, seed + 1000 * static_cast<uint64_t>(i)));
    HML_ASSIGN_OR_RETURN(std::vector<Tensor> y, session->Run(std::span<const Tensor>(in)));
    out.push_back(y.empty() ? -1 : ArgmaxOf(y[0]));
  }
  return out;
}

int RunCompress(const CompressFlags& f) {
  if (!f.int8 && f.prune_structured < 0 && f.prune_magnitude < 0) {
    return Fail(InvalidArgumentError(
        "nothing to do: give --int8, --prune-structured R or --prune-magnitude S"));
  }
  std::error_code in_ec, out_ec;
  const std::filesystem::path in = std::filesystem::weakly_canonical(f.model_path, in_ec);
  const std::filesystem::path out_path = std::filesystem::weakly_canonical(f.output_path, out_ec);
  if (!in_ec && !out_ec && in == out_path) {
    return Fail(InvalidArgumentError("-o '" + f.output_path + "' would overwrite the input model"));
  }
  Result<Model> fp32 = Model::Load(f.model_path);
  if (!fp32.ok()) return Fail(fp32.status());

  Result<std::vector<int>> reference = Predictions(*fp32, f.agreement_samples, f.seed + 7);
  if (!reference.ok()) return Fail(reference.status());
  compress::EvaluateFn agreement = [&](const Model& m) -> Result<double> {
    HML_ASSIGN_OR_RETURN(std::vector<int> got, Predictions(m, f.agreement_samples, f.seed + 7));
    int same = 0;
    for (size_t i = 0; i < got.size(); ++i) same += got[i] == (*reference)[i];
    return got.empty() ? 0.0 : static_cast<double>(same) / static_cast<double>(got.size());
  };
  compress::ReportOptions report_options;
  report_options.iterations = f.iterations;

  std::vector<compress::VariantReport> rows;
  auto report = [&](const std::string& name, const runtime::Graph& g) -> Status {
    HML_ASSIGN_OR_RETURN(compress::VariantReport r,
                         compress::ReportVariant(name, g, report_options, agreement));
    rows.push_back(std::move(r));
    return Status::Ok();
  };
  Status st = report("fp32", fp32->graph());
  if (!st.ok()) return Fail(st);

  runtime::Graph current = fp32->graph();
  if (f.prune_structured >= 0) {
    compress::ChannelPruneOptions options;
    options.ratio = f.prune_structured;
    compress::PruneReport pr;
    Result<runtime::Graph> pruned = compress::PruneChannels(current, options, &pr);
    if (!pruned.ok()) return Fail(pruned.status());
    for (const std::string& s : pr.pruned) std::printf("pruned   %s\n", s.c_str());
    for (const std::string& s : pr.skipped) std::printf("skipped  %s\n", s.c_str());
    current = std::move(*pruned);
    st = report("pruned-structured", current);
    if (!st.ok()) return Fail(st);
  } else if (f.prune_magnitude >= 0) {
    compress::MagnitudePruneOptions options;
    options.sparsity = f.prune_magnitude;
    compress::PruneReport pr;
    Result<runtime::Graph> pruned = compress::PruneMagnitude(current, options, &pr);
    if (!pruned.ok()) return Fail(pruned.status());
    std::printf("sparsity %.4f (%lld of %lld weights are zero)\n", pr.sparsity(),
                static_cast<long long>(pr.zero_weights), static_cast<long long>(pr.weights));
    current = std::move(*pruned);
    st = report("pruned-magnitude", current);
    if (!st.ok()) return Fail(st);
  }
  if (f.int8) {
    compress::QuantizeOptions options;
    if (f.calibration == "percentile") {
      options.method = compress::CalibrationMethod::kPercentile;
    } else if (f.calibration != "minmax") {
      return Fail(
          InvalidArgumentError("--calibration '" + f.calibration + "': use minmax or percentile"));
    }
    options.percentile = f.percentile;
    compress::CalibrationSet data;
    for (int i = 0; i < f.calibration_samples; ++i) {
      Result<std::vector<Tensor>> sample =
          RandomSample(*fp32, f.seed + 100000 + static_cast<uint64_t>(i));
      if (!sample.ok()) return Fail(sample.status());
      data.samples.push_back(std::move(*sample));
    }
    compress::QuantizeReport qr;
    Result<runtime::Graph> q = compress::QuantizeStatic(current, data, options, &qr);
    if (!q.ok()) return Fail(q.status());
    std::printf(
        "int8: %zu nodes quantized, %zu activations folded, calibrated on %d random "
        "samples\n",
        qr.quantized_nodes.size(), qr.folded_activations.size(), f.calibration_samples);
    current = std::move(*q);
    st = report("int8", current);
    if (!st.ok()) return Fail(st);
  }

  Result<Model> out = Model::FromGraph(current);
  if (!out.ok()) return Fail(out.status());
  st = out->Save(f.output_path);
  if (!st.ok()) return Fail(st);
  std::printf("\n%s", compress::FormatReportTable(rows).c_str());
  std::printf(
      "(batch 1, 1 thread, xnnpack; 'accuracy' = argmax agreement with the fp32 model on "
      "%d random inputs until a dataset module exists)\nwritten to %s\n",
      f.agreement_samples, f.output_path.c_str());
  return 0;
}

}  // namespace

void AddCompressCommand(CLI::App& app, int& exit_code) {
  auto flags = std::make_shared<CompressFlags>();
  auto* cmd = app.add_subcommand(
      "compress",
      "Prune and/or int8-quantize (ONNX QDQ) a model and print a size/FLOPs/latency report.\n"
      "Calibration uses random inputs (uniform in [-1, 1)) until a dataset module exists.");
  cmd->add_option("model", flags->model_path, "fp32 ONNX model file")->required();
  cmd->add_option("-o,--output", flags->output_path, "Where to write the compressed model")
      ->required();
  cmd->add_flag("--int8", flags->int8, "Post-training static int8 quantization (QDQ)");
  cmd->add_option("--calibration-samples", flags->calibration_samples,
                  "Random calibration samples (no dataset module yet)")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd->add_option("--calibration", flags->calibration, "minmax or percentile")
      ->capture_default_str();
  cmd->add_option("--percentile", flags->percentile,
                  "Upper percentile for --calibration "
                  "percentile")
      ->capture_default_str();
  auto* structured = cmd->add_option("--prune-structured", flags->prune_structured,
                                     "Remove this fraction of each prunable Conv's channels")
                         ->check(CLI::Range(0.0, 0.99));
  auto* magnitude = cmd->add_option("--prune-magnitude", flags->prune_magnitude,
                                    "Zero this fraction of all Conv/Gemm/MatMul weights")
                        ->check(CLI::Range(0.0, 1.0));
  structured->excludes(magnitude);
  cmd->add_option("--agreement-samples", flags->agreement_samples,
                  "Random inputs for the agreement column")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd->add_option("--iterations", flags->iterations, "Timed runs per variant (0 skips timing)")
      ->check(CLI::Range(0, 100000))
      ->capture_default_str();
  cmd->add_option("--seed", flags->seed, "Seed of the random inputs")->capture_default_str();
  cmd->callback([flags, &exit_code] { exit_code = RunCompress(*flags); });
}

}  // namespace hml::cli

// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// `hybridml compress`: prune and/or int8-quantize an ONNX model and print the report table.
// With --data, calibration samples come from the training part of the dataset and every variant
// is scored on its test part (accuracy, and agreement with the fp32 model's predictions);
// without it, random inputs stand in for both and only agreement is reported.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "hml/env.h"
#include "hml/runtime/model.h"
#include "hml/runtime/tensor_util.h"
#include "src/cli/commands.h"
#include "src/compress/prune.h"
#include "src/compress/quantize.h"
#include "src/compress/report.h"
#include "src/data/dataset.h"
#include "src/data/evaluate.h"
#include "src/runtime/graph.h"

namespace hml::cli {
namespace {

struct CompressFlags {
  std::string model_path;
  std::string output_path;
  std::string data;
  bool int8 = false;
  int calibration_samples = 256;
  std::string calibration = "minmax";
  double percentile = 99.99;
  double prune_structured = -1;
  double prune_magnitude = -1;
  int64_t eval_samples = 0;
  int random_samples = 100;
  int iterations = 50;
  uint64_t seed = 1;
  std::string json_path;
};

int Fail(const Status& s) {
  std::fprintf(stderr, "hybridml compress: %s\n", s.ToString().c_str());
  return 1;
}

// The model's per-sample input shape: its input shape without the batch dim, dynamic dims 1.
Result<Shape> SampleShape(const Model& model) {
  const std::vector<TensorSpec> inputs = model.inputs();
  if (inputs.size() != 1 || inputs[0].dtype != DType::kFloat32 || inputs[0].shape.empty()) {
    return InvalidArgumentError(
        "compress needs a model with one float input [batch, ...], this one has " +
        std::to_string(inputs.size()) + " inputs");
  }
  Shape shape(inputs[0].shape.begin() + 1, inputs[0].shape.end());
  for (int64_t& d : shape) d = d < 0 ? 1 : d;
  return shape;
}

// `n` samples uniform in [-1, 1) of the model's input shape, all labelled 0: stands in for a
// dataset when none is given (scores then mean agreement with the fp32 model only).
Result<std::shared_ptr<data::InMemoryDataset>> RandomDataset(const Model& model, int n,
                                                             uint64_t seed) {
  HML_ASSIGN_OR_RETURN(Shape shape, SampleShape(model));
  Shape batch{n};
  batch.insert(batch.end(), shape.begin(), shape.end());
  HML_ASSIGN_OR_RETURN(Tensor t, Tensor::Allocate(DType::kFloat32, batch));
  FillRandom(t, seed);
  const std::span<const float> v = t.values<float>();
  return data::InMemoryDataset::Create(shape, 1, std::vector<float>(v.begin(), v.end()),
                                       std::vector<int64_t>(static_cast<size_t>(n), 0));
}

// `n` samples of `d` in a seeded random order, each a [1, ...] tensor of the model's input shape.
Result<compress::CalibrationSet> CalibrationFrom(const data::Dataset& d, const Model& model,
                                                 int n, uint64_t seed) {
  if (d.size() == 0) return InvalidArgumentError("the calibration set is empty");
  HML_ASSIGN_OR_RETURN(Shape shape, SampleShape(model));
  Shape batch{1};
  batch.insert(batch.end(), shape.begin(), shape.end());
  std::mt19937_64 rng(seed);
  const std::vector<int64_t> order = data::ShuffledIndices(d.size(), rng);
  compress::CalibrationSet set;
  for (int i = 0; i < n && i < d.size(); ++i) {
    HML_ASSIGN_OR_RETURN(Tensor t, Tensor::Allocate(DType::kFloat32, batch));
    if (t.num_elements() != d.feature_size()) {
      return InvalidArgumentError("the model's input takes " + std::to_string(t.num_elements()) +
                                  " values per sample, the dataset's samples have " +
                                  std::to_string(d.feature_size()));
    }
    HML_RETURN_IF_ERROR(d.Get(order[static_cast<size_t>(i)], t.values<float>()).status());
    std::vector<Tensor> sample;
    sample.push_back(std::move(t));
    set.samples.push_back(std::move(sample));
  }
  return set;
}

std::string ReportJson(const std::vector<compress::VariantReport>& rows, const CompressFlags& f) {
  auto number = [](const std::optional<double>& v) {
    return v ? std::to_string(*v) : std::string("null");
  };
  std::string out = "{\"model\":\"" + f.model_path + "\",\"data\":\"" + f.data +
                    "\",\"variants\":[";
  for (size_t i = 0; i < rows.size(); ++i) {
    const compress::VariantReport& r = rows[i];
    out += (i ? "," : "") + std::string("{\"name\":\"") + r.name +
           "\",\"params\":" + std::to_string(r.params) + ",\"flops\":" + std::to_string(r.flops) +
           ",\"onnx_bytes\":" + std::to_string(r.onnx_bytes) +
           ",\"zstd_bytes\":" + std::to_string(r.zstd_bytes) +
           ",\"latency_p50_us\":" + std::to_string(r.latency_p50_us) +
           ",\"accuracy\":" + number(r.accuracy) + ",\"agreement\":" + number(r.agreement) + "}";
  }
  return out + "]}\n";
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

  // Where calibration samples come from and what every variant is scored on.
  std::shared_ptr<const data::Dataset> calibration_set, eval_set;
  const bool real_data = !f.data.empty();
  if (real_data) {
    Result<data::DataSource> source = data::OpenDataSpec(*DefaultEnv(), f.data);
    if (!source.ok()) return Fail(source.status().WithContext("--data"));
    calibration_set = source->all;
    eval_set = source->test;
    if (eval_set == nullptr) {
      // No test part: hold out 10 % (seeded) for scoring, calibrate on the rest.
      Result<data::DatasetSplit> split = data::SplitDataset(source->all, 0.1, f.seed);
      if (!split.ok()) return Fail(split.status());
      calibration_set = split->train;
      eval_set = split->validation;
      if (eval_set->size() == 0 || calibration_set->size() == 0) {
        return Fail(InvalidArgumentError(
            "--data " + f.data + ": " + std::to_string(source->all->size()) +
            " samples are too few to hold out 10 % for scoring and calibrate on the rest"));
      }
    }
  } else {
    Result<std::shared_ptr<data::InMemoryDataset>> random =
        RandomDataset(*fp32, f.random_samples, f.seed + 7);
    if (!random.ok()) return Fail(random.status());
    eval_set = *random;
    Result<std::shared_ptr<data::InMemoryDataset>> calib =
        RandomDataset(*fp32, f.calibration_samples, f.seed + 100000);
    if (!calib.ok()) return Fail(calib.status());
    calibration_set = *calib;
  }
  data::EvaluateOptions eval_options;
  eval_options.max_samples = f.eval_samples;
  Result<data::Evaluation> reference = data::EvaluateModel(*fp32, *eval_set, eval_options);
  if (!reference.ok()) return Fail(reference.status().WithContext("evaluating " + f.model_path));
  compress::EvaluateFn score = [&](const Model& m) -> Result<compress::Score> {
    HML_ASSIGN_OR_RETURN(data::Evaluation e, data::EvaluateModel(m, *eval_set, eval_options));
    compress::Score s;
    if (real_data) s.accuracy = e.accuracy;
    HML_ASSIGN_OR_RETURN(s.agreement, data::Agreement(e.predictions, reference->predictions));
    return s;
  };
  compress::ReportOptions report_options;
  report_options.iterations = f.iterations;

  std::vector<compress::VariantReport> rows;
  auto report = [&](const std::string& name, const runtime::Graph& g) -> Status {
    HML_ASSIGN_OR_RETURN(compress::VariantReport r,
                         compress::ReportVariant(name, g, report_options, score));
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
    Result<compress::CalibrationSet> calibration =
        CalibrationFrom(*calibration_set, *fp32, f.calibration_samples, f.seed);
    if (!calibration.ok()) return Fail(calibration.status().WithContext("calibration"));
    compress::QuantizeReport qr;
    Result<runtime::Graph> q = compress::QuantizeStatic(current, *calibration, options, &qr);
    if (!q.ok()) return Fail(q.status());
    std::printf("int8: %zu nodes quantized, %zu activations folded, calibrated on %zu %s samples\n",
                qr.quantized_nodes.size(), qr.folded_activations.size(),
                calibration->samples.size(), real_data ? "training" : "random");
    current = std::move(*q);
    st = report("int8", current);
    if (!st.ok()) return Fail(st);
  }

  Result<Model> out = Model::FromGraph(current);
  if (!out.ok()) return Fail(out.status());
  st = out->Save(f.output_path);
  if (!st.ok()) return Fail(st);
  std::printf("\n%s", compress::FormatReportTable(rows).c_str());
  if (real_data) {
    std::printf("(batch 1, 1 thread, xnnpack; accuracy on %lld samples of %s; agreement = same "
                "prediction as fp32)\n",
                static_cast<long long>(reference->samples), f.data.c_str());
  } else {
    std::printf("(batch 1, 1 thread, xnnpack; no --data: agreement with fp32 on %lld random "
                "inputs, no accuracy)\n",
                static_cast<long long>(reference->samples));
  }
  if (!f.json_path.empty()) {
    st = DefaultEnv()->WriteFileAtomic(f.json_path, ReportJson(rows, f));
    if (!st.ok()) return Fail(st);
  }
  std::printf("written to %s\n", f.output_path.c_str());
  return 0;
}

}  // namespace

void AddCompressCommand(CLI::App& app, int& exit_code) {
  auto flags = std::make_shared<CompressFlags>();
  auto* cmd = app.add_subcommand(
      "compress",
      "Prune and/or int8-quantize (ONNX QDQ) a model and print a size/FLOPs/latency/accuracy "
      "report.\nWith --data, calibrates on training samples and scores every variant on the "
      "test set.");
  cmd->add_option("model", flags->model_path, "fp32 ONNX model file")->required();
  cmd->add_option("-o,--output", flags->output_path, "Where to write the compressed model")
      ->required();
  cmd->add_option("--data", flags->data,
                  "fashion-mnist[:DIR] | csv:PATH | dir:PATH (without: random inputs)");
  cmd->add_flag("--int8", flags->int8, "Post-training static int8 quantization (QDQ)");
  cmd->add_option("--calibration-samples", flags->calibration_samples,
                  "Calibration samples (training samples in a seeded random order)")
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
  cmd->add_option("--eval-samples", flags->eval_samples,
                  "Score on the first N test samples (0 = all)")
      ->check(CLI::Range(int64_t{0}, int64_t{10000000}))
      ->capture_default_str();
  cmd->add_option("--random-samples", flags->random_samples,
                  "Without --data: random inputs for the agreement column")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd->add_option("--iterations", flags->iterations, "Timed runs per variant (0 skips timing)")
      ->check(CLI::Range(0, 100000))
      ->capture_default_str();
  cmd->add_option("--seed", flags->seed, "Seed of calibration order and random inputs")
      ->capture_default_str();
  cmd->add_option("--json", flags->json_path, "Also write the report as JSON to this file");
  cmd->callback([flags, &exit_code] { exit_code = RunCompress(*flags); });
}

}  // namespace hml::cli

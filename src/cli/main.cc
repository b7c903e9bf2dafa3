// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The `hybridml` command: parses arguments and wires subcommands to the libraries. No logic of
// its own lives here beyond formatting what the libraries return.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "hml/clock.h"
#include "hml/runtime/model.h"
#include "hml/runtime/session.h"
#include "hml/runtime/tensor_util.h"
#include "src/cli/commands.h"

namespace hml::cli {
namespace {

int Fail(const Status& s) {
  std::fprintf(stderr, "hybridml: %s\n", s.ToString().c_str());
  return 1;
}

// "name=1x3x224x224" -> {"name", {1,3,224,224}}.
Result<std::pair<std::string, Shape>> ParseShapeFlag(const std::string& flag) {
  const size_t eq = flag.find('=');
  if (eq == std::string::npos || eq == 0) {
    return InvalidArgumentError("--shape '" + flag + "' must look like name=1x3x224x224");
  }
  Shape shape;
  std::stringstream ss(flag.substr(eq + 1));
  std::string dim;
  while (std::getline(ss, dim, 'x')) {
    char* end = nullptr;
    const long long v = std::strtoll(dim.c_str(), &end, 10);
    if (dim.empty() || *end != '\0' || v < 0) {
      return InvalidArgumentError("--shape '" + flag + "': '" + dim + "' is not a dimension");
    }
    shape.push_back(v);
  }
  return std::make_pair(flag.substr(0, eq), shape);
}

// Input shapes from --shape flags, plus --batch for inputs whose first dim is dynamic.
Result<std::map<std::string, Shape>> InputShapes(const Model& model,
                                                 const std::vector<std::string>& flags,
                                                 int64_t batch) {
  std::map<std::string, Shape> shapes;
  for (const std::string& f : flags) {
    HML_ASSIGN_OR_RETURN(auto kv, ParseShapeFlag(f));
    shapes[kv.first] = kv.second;
  }
  if (batch > 0) {
    for (const TensorSpec& spec : model.inputs()) {
      if (shapes.count(spec.name) || spec.shape.empty()) continue;
      Shape s = spec.shape;
      if (s[0] >= 0 && s[0] != batch) {
        return InvalidArgumentError("--batch " + std::to_string(batch) + ": input '" +
                                    spec.name + "' has a fixed batch of " + std::to_string(s[0]));
      }
      s[0] = batch;
      for (int64_t& d : s) {
        if (d < 0) d = 1;
      }
      shapes[spec.name] = s;
    }
  }
  return shapes;
}

std::string Human(double v) {
  char buf[32];
  if (v >= 1e9) {
    std::snprintf(buf, sizeof(buf), "%.2fG", v / 1e9);
  } else if (v >= 1e6) {
    std::snprintf(buf, sizeof(buf), "%.2fM", v / 1e6);
  } else if (v >= 1e3) {
    std::snprintf(buf, sizeof(buf), "%.1fk", v / 1e3);
  } else {
    std::snprintf(buf, sizeof(buf), "%.0f", v);
  }
  return buf;
}

int Inspect(const std::string& path, const std::vector<std::string>& shape_flags, int64_t batch,
            bool all_cuts) {
  auto model = Model::Load(path);
  if (!model.ok()) return Fail(model.status());
  auto shapes = InputShapes(*model, shape_flags, batch);
  if (!shapes.ok()) return Fail(shapes.status());
  auto analysis = model->Analyze(*shapes);
  if (!analysis.ok()) return Fail(analysis.status());
  std::printf("model: %s (opset %lld)\n", path.c_str(), static_cast<long long>(model->opset()));
  for (const TensorSpec& s : model->inputs()) {
    std::printf("  input  %-20s %s%s\n", s.name.c_str(), std::string(DTypeName(s.dtype)).c_str(),
                ShapeToString(s.shape).c_str());
  }
  for (const TensorSpec& s : model->outputs()) {
    std::printf("  output %-20s %s%s\n", s.name.c_str(), std::string(DTypeName(s.dtype)).c_str(),
                ShapeToString(s.shape).c_str());
  }
  std::printf("analysed at:");
  for (const auto& [name, shape] : analysis->input_shapes) {
    std::printf(" %s=%s", name.c_str(), ShapeToString(shape).c_str());
  }
  std::printf("\nparameters: %s (%s bytes)   FLOPs: %s   nodes: %zu\n",
              Human(static_cast<double>(analysis->total_params)).c_str(),
              Human(static_cast<double>(analysis->param_bytes)).c_str(),
              Human(static_cast<double>(analysis->total_flops)).c_str(), analysis->nodes.size());
  std::printf("ops:");
  for (const auto& [op, count] : analysis->op_counts) std::printf(" %s x%d", op.c_str(), count);
  std::printf("\n\n%-4s %-18s %-28s %10s %10s %12s\n", "#", "op", "name", "FLOPs", "params",
              "out bytes");
  for (size_t i = 0; i < analysis->nodes.size(); ++i) {
    const NodeCost& n = analysis->nodes[i];
    std::printf("%-4zu %-18s %-28s %10s %10s %12s\n", i, n.op_type.c_str(),
                n.name.substr(0, 28).c_str(), Human(static_cast<double>(n.flops)).c_str(),
                Human(static_cast<double>(n.params)).c_str(),
                Human(static_cast<double>(n.output_bytes)).c_str());
  }
  std::printf("\ncut points (split after node #; tensors sent; FLOPs on each side):\n");
  std::printf("%-6s %12s %12s %12s  %s\n", "after", "bytes", "FLOPs before", "FLOPs after",
              "tensors");
  for (const CutPoint& c : analysis->cut_points) {
    if (!all_cuts && c.tensors.size() != 1) continue;
    std::string names;
    for (const std::string& t : c.tensors) names += (names.empty() ? "" : ",") + t;
    std::printf("%-6d %12s %12s %12s  %s\n", c.after_node,
                Human(static_cast<double>(c.bytes)).c_str(),
                Human(static_cast<double>(c.flops_before)).c_str(),
                Human(static_cast<double>(c.flops_after)).c_str(), names.c_str());
  }
  if (!all_cuts) std::printf("(single-tensor cuts only; --all-cuts lists every position)\n");
  return 0;
}

int Infer(const std::string& path, const std::vector<std::string>& input_files,
          const std::vector<std::string>& shape_flags, int64_t batch, const std::string& backend,
          int threads, const std::string& output_dir, uint64_t seed) {
  auto model = Model::Load(path);
  if (!model.ok()) return Fail(model.status());
  auto shapes = InputShapes(*model, shape_flags, batch);
  if (!shapes.ok()) return Fail(shapes.status());
  std::vector<Tensor> inputs;
  const std::vector<TensorSpec> specs = model->inputs();
  if (!input_files.empty() && input_files.size() != specs.size()) {
    return Fail(InvalidArgumentError("the model has " + std::to_string(specs.size()) +
                                     " inputs but " + std::to_string(input_files.size()) +
                                     " --input files were given"));
  }
  for (size_t i = 0; i < input_files.size(); ++i) {
    auto t = LoadTensor(input_files[i]);
    if (!t.ok()) return Fail(t.status());
    (*shapes)[specs[i].name] = t->shape();
    inputs.push_back(std::move(*t));
  }
  SessionOptions options;
  options.backend = backend;
  options.num_threads = threads;
  options.input_shapes = *shapes;
  auto session = Session::Create(*model, options);
  if (!session.ok()) return Fail(session.status());
  Session& s = **session;
  if (inputs.empty()) {
    for (size_t i = 0; i < s.num_inputs(); ++i) {
      FillRandom(s.input(i), seed + i);
      std::printf("input  %-20s random (seed %llu) %s\n", s.input_spec(i).name.c_str(),
                  static_cast<unsigned long long>(seed + i), SummarizeTensor(s.input(i)).c_str());
    }
    Status st = s.Run();
    if (!st.ok()) return Fail(st);
  } else {
    std::vector<Tensor> views;
    for (size_t i = 0; i < s.num_outputs(); ++i) {
      auto t = Tensor::Allocate(s.output_spec(i).dtype, s.output_spec(i).shape);
      if (!t.ok()) return Fail(t.status());
      views.push_back(std::move(*t));
    }
    Status st = s.Run(inputs, views);
    if (!st.ok()) return Fail(st);
  }
  if (!output_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(output_dir, ec);
    if (ec) return Fail(InvalidArgumentError("cannot create '" + output_dir + "': " + ec.message()));
  }
  for (size_t i = 0; i < s.num_outputs(); ++i) {
    std::printf("output %-20s %s\n", s.output_spec(i).name.c_str(),
                SummarizeTensor(s.output(i)).c_str());
    if (!output_dir.empty()) {
      const std::string file = output_dir + "/output_" + std::to_string(i) + ".pb";
      Status st = SaveTensor(s.output(i), file, s.output_spec(i).name);
      if (!st.ok()) return Fail(st);
      std::printf("       written to %s\n", file.c_str());
    }
  }
  for (const SegmentInfo& seg : s.segments()) {
    std::printf("ran on %-10s %zu node(s)\n", seg.backend.c_str(), seg.nodes.size());
  }
  return 0;
}

int Bench(const std::string& path, const std::vector<std::string>& backends,
          const std::vector<int>& thread_counts, const std::vector<std::string>& shape_flags,
          int64_t batch, int warmup, int iterations, const std::string& json_path) {
  auto model = Model::Load(path);
  if (!model.ok()) return Fail(model.status());
  auto shapes = InputShapes(*model, shape_flags, batch);
  if (!shapes.ok()) return Fail(shapes.status());
  std::printf("%-10s %7s %10s %10s %10s %10s %10s %12s %9s\n", "backend", "threads", "mean us",
              "p50 us", "p90 us", "p99 us", "min us", "prepare ms", "segments");
  std::string json = "{\n  \"model\": \"" + path + "\",\n  \"results\": [";
  bool first = true;
  for (const std::string& backend : backends) {
    for (int threads : thread_counts) {
      SessionOptions options;
      options.backend = backend;
      options.num_threads = threads;
      options.input_shapes = *shapes;
      const int64_t t0 = RealClock()->NowNanos();
      auto session = Session::Create(*model, options);
      const double prepare_ms = static_cast<double>(RealClock()->NowNanos() - t0) / 1e6;
      if (!session.ok()) return Fail(session.status().WithContext(backend));
      for (size_t i = 0; i < (*session)->num_inputs(); ++i) FillRandom((*session)->input(i), i);
      auto stats = TimeSession(**session, warmup, iterations);
      if (!stats.ok()) return Fail(stats.status());
      const size_t segments = (*session)->segments().size();
      std::printf("%-10s %7d %10.1f %10.1f %10.1f %10.1f %10.1f %12.2f %9zu\n", backend.c_str(),
                  threads, stats->mean_us, stats->p50_us, stats->p90_us, stats->p99_us,
                  stats->min_us, prepare_ms, segments);
      std::fflush(stdout);
      char entry[512];
      std::snprintf(entry, sizeof(entry),
                    "%s\n    {\"backend\": \"%s\", \"threads\": %d, \"iterations\": %lld, "
                    "\"mean_us\": %.3f, \"p50_us\": %.3f, \"p90_us\": %.3f, \"p99_us\": %.3f, "
                    "\"min_us\": %.3f, \"prepare_ms\": %.3f, \"segments\": %zu}",
                    first ? "" : ",", backend.c_str(), threads,
                    static_cast<long long>(stats->count), stats->mean_us, stats->p50_us,
                    stats->p90_us, stats->p99_us, stats->min_us, prepare_ms, segments);
      json += entry;
      first = false;
    }
  }
  json += "\n  ]\n}\n";
  if (!json_path.empty()) {
    std::ofstream out(json_path);
    out << json;
    if (!out) return Fail(UnavailableError("cannot write '" + json_path + "'"));
    std::printf("wrote %s\n", json_path.c_str());
  }
  return 0;
}

}  // namespace
}  // namespace hml::cli

int main(int argc, char** argv) {
  using namespace hml::cli;
  CLI::App app{"hybridml: hybrid on-device / cloud machine learning"};
  app.require_subcommand(1);

  std::string model_path;
  std::vector<std::string> shape_flags;
  int64_t batch = 0;

  auto* inspect = app.add_subcommand("inspect", "Ops, parameters, FLOPs and cut points of a model");
  bool all_cuts = false;
  inspect->add_option("model", model_path, "ONNX model file")->required();
  inspect->add_option("--shape", shape_flags, "Input shape, name=1x3x224x224 (repeatable)");
  inspect->add_option("--batch", batch, "Batch size for inputs with a dynamic first dim");
  inspect->add_flag("--all-cuts", all_cuts, "List every cut position, not only single-tensor ones");

  auto* infer = app.add_subcommand("infer", "Run a model once and print its outputs");
  std::vector<std::string> input_files;
  std::string backend = "xnnpack";
  int threads = 1;
  std::string output_dir;
  uint64_t seed = 1;
  infer->add_option("model", model_path, "ONNX model file")->required();
  infer->add_option("--input", input_files,
                    "Input tensor as an ONNX TensorProto .pb, one per model input in order "
                    "(default: random data)");
  infer->add_option("--shape", shape_flags, "Input shape, name=1x3x224x224 (repeatable)");
  infer->add_option("--batch", batch, "Batch size for inputs with a dynamic first dim");
  infer->add_option("--backend", backend, "xnnpack or reference")->capture_default_str();
  infer->add_option("--threads", threads, "Intra-op threads")->capture_default_str();
  infer->add_option("--output-dir", output_dir, "Write each output as output_N.pb here");
  infer->add_option("--seed", seed, "Seed for random inputs")->capture_default_str();

  auto* bench = app.add_subcommand("bench", "Latency percentiles per backend and thread count");
  std::vector<std::string> backends = {"xnnpack", "reference"};
  std::vector<int> thread_counts = {1, 2};
  int warmup = 5, iterations = 50;
  std::string json_path;
  bench->add_option("model", model_path, "ONNX model file")->required();
  bench->add_option("--backends", backends, "Backends to time")->delimiter(',')->capture_default_str();
  bench->add_option("--threads", thread_counts, "Thread counts to time")
      ->delimiter(',')
      ->capture_default_str();
  bench->add_option("--shape", shape_flags, "Input shape, name=1x3x224x224 (repeatable)");
  bench->add_option("--batch", batch, "Batch size for inputs with a dynamic first dim");
  bench->add_option("--warmup", warmup, "Untimed runs first")->capture_default_str();
  bench->add_option("--iterations", iterations, "Timed runs")->capture_default_str();
  bench->add_option("--json", json_path, "Also write the results as JSON here");

  int exit_code = 0;
  AddAuthCommands(app, exit_code);
  AddCertsCommand(app, exit_code);
  AddCompressCommand(app, exit_code);
  AddFlCommands(app, exit_code);
  AddIngestCommands(app, exit_code);
  AddLoadgenCommand(app, exit_code);
  AddRegistryCommands(app, exit_code);
  AddServeCommand(app, exit_code);
#ifdef HML_WITH_TRAIN
  AddDemoCommand(app, exit_code);
  AddTrainCommand(app, exit_code);
#endif

  CLI11_PARSE(app, argc, argv);

  if (*inspect) return Inspect(model_path, shape_flags, batch, all_cuts);
  if (*infer) {
    return Infer(model_path, input_files, shape_flags, batch, backend, threads, output_dir, seed);
  }
  if (*bench) {
    return Bench(model_path, backends, thread_counts, shape_flags, batch, warmup, iterations,
                 json_path);
  }
  return exit_code;
}

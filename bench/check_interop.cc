// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// check_interop: do the ONNX files our trainer exports work elsewhere? For each model:
//   1. onnx::checker::check_model (the ONNX project's own validator, C++ libonnx);
//   2. OpenCV DNN loads it and its outputs match LibTorch's (the trainer's own forward pass,
//      GraphModule on the graph as written) within --tolerance, absolute;
//   3. our runtime (XNNPACK backend) matches LibTorch the same way.
// Inputs: the first --samples images of the Fashion-MNIST test set (--data), or uniform random
// inputs. Prints a table, optionally writes JSON, and exits non-zero when any check fails.
//
//   check_interop [--data fashion-mnist[:DIR]] [--samples N] [--json PATH] MODEL.onnx...
//   check_interop --zoo DIR   (exports mlp, student-cnn and teacher-cnn, each trained for a few
//                              steps on random data, into DIR and checks them: the CTest form)
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "bench/peers.h"
#include "hml/env.h"
#include "hml/runtime/model.h"
#include "hml/runtime/session.h"
#include "hml/runtime/tensor_util.h"
#include "src/data/dataset.h"
#include "src/runtime/onnx_io.h"
#include "src/train/graph_module.h"
#include "src/train/trainer.h"
#include "src/train/zoo.h"

namespace hml::bench {
namespace {

struct Flags {
  std::vector<std::string> models;
  std::string zoo_dir;
  std::string data;
  int64_t samples = 1000;
  int64_t batch = 100;
  double tolerance = 1e-4;
  std::string json_path;
};

struct Row {
  std::string model;
  std::string checker = "-";  // "ok" or the checker's message
  double opencv_diff = -1;    // max |OpenCV - LibTorch|, -1 = not run
  double runtime_diff = -1;   // max |hybridml - LibTorch|
  double argmax_agreement = -1;
  std::string error;
};

// ONNX's checker throws (ValidationError); this is the one place that catches it.
std::string RunChecker(const std::string& bytes) {
  onnx::ModelProto proto;
  if (!proto.ParseFromString(bytes)) return "not a ModelProto";
  try {
    onnx::checker::check_model(proto);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "ok";
}

// The per-sample input shape of the graph's first input (dynamic dims are an error here).
Result<Shape> SampleShape(const runtime::Graph& g) {
  const runtime::Value& in = g.value(g.inputs.at(0));
  Shape s(in.shape.begin() + (in.shape.empty() ? 0 : 1), in.shape.end());
  for (int64_t d : s) {
    if (d <= 0) return InvalidArgumentError("input '" + in.name + "' has a dynamic sample dim");
  }
  return s;
}

// `n` inputs: Fashion-MNIST test images when `test` is set, else uniform in [0, 1).
Result<Tensor> Inputs(const data::Dataset* test, const Shape& sample, int64_t n, uint64_t seed) {
  Shape shape{n};
  shape.insert(shape.end(), sample.begin(), sample.end());
  HML_ASSIGN_OR_RETURN(Tensor t, Tensor::Allocate(DType::kFloat32, shape));
  std::span<float> v = t.values<float>();
  if (test == nullptr) {
    std::mt19937_64 rng(seed);
    for (float& x : v) x = static_cast<float>(rng() >> 40) / static_cast<float>(1 << 24);
    return t;
  }
  const int64_t fs = test->feature_size();
  if (fs * n != t.num_elements()) {
    return InvalidArgumentError("the model's input " + ShapeToString(shape) +
                                " does not take the dataset's samples");
  }
  for (int64_t i = 0; i < n; ++i) {
    HML_RETURN_IF_ERROR(test->Get(i, v.subspan(static_cast<size_t>(i * fs),
                                               static_cast<size_t>(fs))).status());
  }
  return t;
}

Result<Tensor> Slice(const Tensor& all, int64_t begin, int64_t n) {
  Shape shape = all.shape();
  shape[0] = n;
  HML_ASSIGN_OR_RETURN(Tensor t, Tensor::Allocate(DType::kFloat32, shape));
  const int64_t per = all.num_elements() / all.dim(0);
  std::copy_n(all.values<float>().data() + begin * per, n * per, t.values<float>().data());
  return t;
}

double MaxAbsDiff(std::span<const float> a, std::span<const float> b) {
  if (a.size() != b.size()) return INFINITY;
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    m = std::max(m, std::fabs(static_cast<double>(a[i]) - static_cast<double>(b[i])));
  }
  return m;
}

int64_t SameArgmax(std::span<const float> a, std::span<const float> b, int64_t rows) {
  const size_t cols = a.size() / static_cast<size_t>(rows);
  int64_t same = 0;
  for (size_t r = 0; r < static_cast<size_t>(rows); ++r) {
    auto ra = a.subspan(r * cols, cols), rb = b.subspan(r * cols, cols);
    same += std::max_element(ra.begin(), ra.end()) - ra.begin() ==
            std::max_element(rb.begin(), rb.end()) - rb.begin();
  }
  return same;
}

Status CheckModel(const std::string& path, const Flags& f, const data::Dataset* test, Row& row) {
  HML_ASSIGN_OR_RETURN(std::string bytes, DefaultEnv()->ReadFile(path));
  row.checker = RunChecker(bytes);
  HML_ASSIGN_OR_RETURN(runtime::Graph graph, runtime::ParseOnnxModel(bytes));
  HML_ASSIGN_OR_RETURN(Shape sample, SampleShape(graph));
  const int64_t n = test != nullptr ? std::min(f.samples, test->size()) : f.samples;
  HML_ASSIGN_OR_RETURN(Tensor inputs, Inputs(test, sample, n, 7));

  HML_ASSIGN_OR_RETURN(std::unique_ptr<train::GraphModule> torch_model,
                       train::GraphModule::Create(graph));
  torch_model->SetTraining(false);
  HML_ASSIGN_OR_RETURN(Model model, Model::Load(path));
  double opencv = 0, ours = 0;
  int64_t same = 0;
  for (int64_t begin = 0; begin < n; begin += f.batch) {
    const int64_t b = std::min(f.batch, n - begin);
    HML_ASSIGN_OR_RETURN(Tensor x, Slice(inputs, begin, b));
    HML_ASSIGN_OR_RETURN(std::vector<Tensor> want, torch_model->Forward({&x, 1}));
    const std::span<const float> w = want.at(0).values<float>();

    HML_ASSIGN_OR_RETURN(std::unique_ptr<Engine> cv, CreateOpenCvEngine(path, x.shape()));
    HML_RETURN_IF_ERROR(cv->Run(x));
    HML_ASSIGN_OR_RETURN(Tensor got_cv, cv->Output());
    opencv = std::max(opencv, MaxAbsDiff(got_cv.values<float>(), w));
    same += SameArgmax(got_cv.values<float>(), w, b);

    SessionOptions options;
    options.input_shapes[graph.value(graph.inputs[0]).name] = x.shape();
    HML_ASSIGN_OR_RETURN(std::unique_ptr<Session> session, Session::Create(model, options));
    HML_ASSIGN_OR_RETURN(std::vector<Tensor> got, session->Run({&x, 1}));
    ours = std::max(ours, MaxAbsDiff(got.at(0).values<float>(), w));
  }
  row.opencv_diff = opencv;
  row.runtime_diff = ours;
  row.argmax_agreement = static_cast<double>(same) / static_cast<double>(n);
  return Status::Ok();
}

// The zoo's architectures, trained for one epoch on random 28x28 data (so weights and BatchNorm
// statistics move away from their initial values), exported as `hybridml train --out` does.
Result<std::vector<std::string>> ExportZoo(const std::string& dir) {
  const Shape sample{1, 28, 28};
  std::mt19937_64 rng(3);
  std::vector<float> features(static_cast<size_t>(256 * 784));
  std::vector<int64_t> labels(256);
  for (float& x : features) x = static_cast<float>(rng() >> 40) / static_cast<float>(1 << 24);
  for (int64_t& l : labels) l = static_cast<int64_t>(rng() % 10);
  HML_ASSIGN_OR_RETURN(auto data, data::InMemoryDataset::Create(sample, 10, std::move(features),
                                                                std::move(labels)));
  std::vector<std::string> paths;
  for (const char* arch : {"mlp", "student-cnn", "teacher-cnn"}) {
    HML_ASSIGN_OR_RETURN(runtime::Graph g, train::BuildArchitecture(arch, sample, 10, 5));
    HML_ASSIGN_OR_RETURN(std::unique_ptr<train::GraphModule> m, train::GraphModule::Create(g));
    train::TrainOptions options;
    options.batch_size = 32;
    options.learning_rate = 0.01;
    HML_RETURN_IF_ERROR(train::Train(*m, *data, nullptr, options).status());
    HML_ASSIGN_OR_RETURN(runtime::Graph trained, m->ExportGraph());
    HML_ASSIGN_OR_RETURN(Model model, Model::FromGraph(std::move(trained)));
    const std::string path = dir + "/" + arch + ".onnx";
    HML_RETURN_IF_ERROR(model.Save(path));
    paths.push_back(path);
  }
  return paths;
}

int Run(Flags f) {
  if (!f.zoo_dir.empty()) {
    Result<std::vector<std::string>> paths = ExportZoo(f.zoo_dir);
    if (!paths.ok()) {
      std::fprintf(stderr, "check_interop: %s\n", paths.status().ToString().c_str());
      return 1;
    }
    f.models.insert(f.models.end(), paths->begin(), paths->end());
    if (f.data.empty()) f.samples = std::min<int64_t>(f.samples, 200);
  }
  std::shared_ptr<const data::Dataset> test;
  if (!f.data.empty()) {
    Result<data::DataSource> source = data::OpenDataSpec(*DefaultEnv(), f.data);
    if (!source.ok() || source->test == nullptr) {
      std::fprintf(stderr, "check_interop: --data %s: %s\n", f.data.c_str(),
                   source.ok() ? "no test part" : source.status().ToString().c_str());
      return 1;
    }
    test = source->test;
  }
  bool all_ok = true;
  std::vector<Row> rows;
  for (const std::string& path : f.models) {
    Row row;
    row.model = path;
    Status st = CheckModel(path, f, test.get(), row);
    if (!st.ok()) row.error = st.ToString();
    all_ok = all_ok && st.ok() && row.checker == "ok" && row.opencv_diff <= f.tolerance &&
             row.runtime_diff <= f.tolerance;
    rows.push_back(row);
  }
  std::printf("inputs: %s, %lld samples; tolerance %g (max absolute difference of the first "
              "output)\n",
              test ? f.data.c_str() : "uniform random", static_cast<long long>(f.samples),
              f.tolerance);
  std::printf("| model | onnx checker | OpenCV vs LibTorch | hybridml vs LibTorch | "
              "OpenCV argmax = LibTorch |\n|---|---|---|---|---|\n");
  std::string json = "[";
  for (const Row& r : rows) {
    std::printf("| %s | %s | %.2e | %.2e | %.2f%% |%s\n", r.model.c_str(), r.checker.c_str(),
                r.opencv_diff, r.runtime_diff, 100.0 * r.argmax_agreement,
                r.error.empty() ? "" : (" error: " + r.error).c_str());
    json += (json.size() > 1 ? "," : "") + std::string("{\"model\":\"") + r.model +
            "\",\"checker_ok\":" + (r.checker == "ok" ? "true" : "false") +
            ",\"opencv_max_abs_diff\":" + std::to_string(r.opencv_diff) +
            ",\"hybridml_max_abs_diff\":" + std::to_string(r.runtime_diff) +
            ",\"argmax_agreement\":" + std::to_string(r.argmax_agreement) + "}";
  }
  json += "]\n";
  if (!f.json_path.empty()) {
    Status st = DefaultEnv()->WriteFileAtomic(f.json_path, json);
    if (!st.ok()) std::fprintf(stderr, "check_interop: %s\n", st.ToString().c_str());
  }
  std::printf("%s\n", all_ok ? "all checks passed" : "SOME CHECKS FAILED");
  return all_ok ? 0 : 1;
}

}  // namespace
}  // namespace hml::bench

int main(int argc, char** argv) {
  hml::bench::Flags f;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "check_interop: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--zoo") {
      f.zoo_dir = value();
    } else if (a == "--data") {
      f.data = value();
    } else if (a == "--samples") {
      f.samples = std::max<int64_t>(1, std::atoll(value().c_str()));
    } else if (a == "--tolerance") {
      f.tolerance = std::atof(value().c_str());
    } else if (a == "--json") {
      f.json_path = value();
    } else if (!a.empty() && a[0] == '-') {
      std::fprintf(stderr,
                   "usage: check_interop [--data SPEC] [--samples N] [--tolerance T] "
                   "[--json PATH] MODEL.onnx... | --zoo DIR\n");
      return 2;
    } else {
      f.models.push_back(a);
    }
  }
  if (f.models.empty() && f.zoo_dir.empty()) {
    std::fprintf(stderr, "check_interop: no models (give MODEL.onnx... or --zoo DIR)\n");
    return 2;
  }
  return hml::bench::Run(f);
}

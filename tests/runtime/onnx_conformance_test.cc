// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Runs the ONNX backend test suite shipped in Debian's libonnx-testdata (a suite nobody here
// wrote) on both backends and compares every output with the expected output_N.pb, using the
// tolerances of the ONNX backend runner (rtol 1e-3, atol 1e-7).
//
// A test counts as "not supported" when its model uses an op hybridml does not know, an element
// type it does not support, or a mode a kernel rejects as unimplemented; the table prints these,
// and lists every one whose ops are all in the required list. Any other error, and any
// wrong number, is a failure.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "hml/env.h"
#include "hml/runtime/model.h"
#include "hml/runtime/session.h"
#include "src/runtime/graph.h"
#include "src/runtime/onnx_io.h"
#include "src/runtime/op_registry.h"

namespace hml {
namespace {

namespace fs = std::filesystem;

constexpr const char* kDataRoot = "/usr/share/libonnx-testdata/data";

// The op list the runtime must support (the runtime issue's list).
const std::set<std::string>& RequiredOps() {
  static const std::set<std::string> ops = {
      "Conv",       "ConvTranspose",     "Gemm",      "MatMul",         "Add",
      "Sub",        "Mul",               "Div",       "Relu",           "LeakyRelu",
      "Clip",       "Sigmoid",           "Tanh",      "HardSigmoid",    "HardSwish",
      "MaxPool",    "AveragePool",       "GlobalAveragePool",           "Flatten",
      "Reshape",    "Squeeze",           "Unsqueeze", "Transpose",      "Concat",
      "Softmax",    "BatchNormalization", "Pad",      "Resize",         "QuantizeLinear",
      "DequantizeLinear",                "QLinearConv", "QLinearMatMul", "Constant",
      "Identity",   "Dropout"};
  return ops;
}

enum class Outcome { kPassed, kFailed, kNotSupported };

struct CaseResult {
  Outcome outcome = Outcome::kPassed;
  std::string detail;
  bool used_xnnpack = false;
  bool bound_shape_inputs = false;  // passed only with shape-determining inputs as constants
};

std::string ReadOrEmpty(const fs::path& p) {
  auto r = DefaultEnv()->ReadFile(p.string());
  return r.ok() ? *r : std::string();
}

// Op types of a model file, read straight from the protobuf so unsupported ones are known even
// when import fails.
Result<std::set<std::string>> ModelOps(const std::string& bytes) {
  HML_ASSIGN_OR_RETURN(runtime::Graph g, runtime::ParseOnnxModel(bytes));
  std::set<std::string> ops;
  for (const runtime::Node& n : g.nodes) ops.insert(n.op_type);
  return ops;
}

bool Close(const Tensor& got, const Tensor& want, std::string& why) {
  if (got.dtype() != want.dtype() || got.shape() != want.shape()) {
    why = "got " + std::string(DTypeName(got.dtype())) + ShapeToString(got.shape()) +
          ", expected " + std::string(DTypeName(want.dtype())) + ShapeToString(want.shape());
    return false;
  }
  for (int64_t i = 0; i < got.num_elements(); ++i) {
    double a = 0, b = 0;
    switch (got.dtype()) {
      case DType::kFloat32:
        a = got.data<float>()[i];
        b = want.data<float>()[i];
        break;
      case DType::kInt8:
        a = got.data<int8_t>()[i];
        b = want.data<int8_t>()[i];
        break;
      case DType::kUInt8:
        a = got.data<uint8_t>()[i];
        b = want.data<uint8_t>()[i];
        break;
      case DType::kInt32:
        a = got.data<int32_t>()[i];
        b = want.data<int32_t>()[i];
        break;
      case DType::kInt64:
        a = static_cast<double>(got.data<int64_t>()[i]);
        b = static_cast<double>(want.data<int64_t>()[i]);
        break;
      case DType::kUndefined:
        break;
    }
    if (std::isnan(a) && std::isnan(b)) continue;
    if (std::isinf(a) && a == b) continue;
    if (!(std::fabs(a - b) <= 1e-7 + 1e-3 * std::fabs(b))) {
      why = "element " + std::to_string(i) + ": got " + std::to_string(a) + ", expected " +
            std::to_string(b);
      return false;
    }
  }
  return true;
}

// Turns every graph input except the first into a constant holding `data`, as a deployed model
// holds its weights (the suite passes weights as inputs, which no weight-packing backend takes).
Result<Model> WithConstantWeights(const Model& model, const std::vector<Tensor>& data) {
  runtime::Graph g = model.graph();
  std::vector<runtime::ValueId> keep;
  for (size_t i = 0; i < g.inputs.size(); ++i) {
    if (i == 0 || i >= data.size()) {
      keep.push_back(g.inputs[i]);
      continue;
    }
    HML_ASSIGN_OR_RETURN(Tensor copy, data[i].Clone());
    runtime::Value& v = g.value(g.inputs[i]);
    v.dtype = copy.dtype();
    v.shape = copy.shape();
    v.shape_known = true;
    v.constant = std::make_shared<const Tensor>(std::move(copy));
  }
  g.inputs = std::move(keep);
  return Model::FromGraph(std::move(g));
}

CaseResult RunCase(const fs::path& dir, const std::string& backend, bool constant_weights) {
  CaseResult result;
  const std::string bytes = ReadOrEmpty(dir / "model.onnx");
  auto loaded = Model::FromOnnx(bytes);
  if (!loaded.ok()) {
    result.outcome = loaded.status().code() == StatusCode::kUnimplemented ? Outcome::kNotSupported
                                                                          : Outcome::kFailed;
    result.detail = loaded.status().ToString();
    return result;
  }
  std::vector<fs::path> sets;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.is_directory() && entry.path().filename().string().rfind("test_data_set_", 0) == 0) {
      sets.push_back(entry.path());
    }
  }
  std::sort(sets.begin(), sets.end());
  if (sets.empty()) {
    result.outcome = Outcome::kNotSupported;
    result.detail = "no test data sets";
    return result;
  }
  for (const fs::path& set : sets) {
    std::vector<Tensor> inputs, expected;
    for (int i = 0;; ++i) {
      const fs::path p = set / ("input_" + std::to_string(i) + ".pb");
      if (!fs::exists(p)) break;
      auto t = runtime::ParseOnnxTensor(ReadOrEmpty(p));
      if (!t.ok()) {
        result.outcome = t.status().code() == StatusCode::kUnimplemented ? Outcome::kNotSupported
                                                                         : Outcome::kFailed;
        result.detail = "input_" + std::to_string(i) + ": " + t.status().ToString();
        return result;
      }
      inputs.push_back(std::move(*t));
    }
    for (int i = 0;; ++i) {
      const fs::path p = set / ("output_" + std::to_string(i) + ".pb");
      if (!fs::exists(p)) break;
      auto t = runtime::ParseOnnxTensor(ReadOrEmpty(p));
      if (!t.ok()) {
        result.outcome = t.status().code() == StatusCode::kUnimplemented ? Outcome::kNotSupported
                                                                         : Outcome::kFailed;
        result.detail = "output_" + std::to_string(i) + ": " + t.status().ToString();
        return result;
      }
      expected.push_back(std::move(*t));
    }
    Model model = *loaded;
    if (constant_weights) {
      auto m = WithConstantWeights(*loaded, inputs);
      if (!m.ok()) {
        result.outcome = Outcome::kFailed;
        result.detail = m.status().ToString();
        return result;
      }
      model = *m;
      inputs.resize(std::min<size_t>(inputs.size(), 1));
    }
    std::vector<TensorSpec> specs = model.inputs();
    if (specs.size() != inputs.size()) {
      result.outcome = Outcome::kFailed;
      result.detail = "the model has " + std::to_string(specs.size()) + " inputs, the data set " +
                      std::to_string(inputs.size());
      return result;
    }
    SessionOptions options;
    options.backend = backend;
    options.logger = NullLogger();
    for (size_t i = 0; i < specs.size(); ++i) options.input_shapes[specs[i].name] = inputs[i].shape();
    auto session = Session::Create(model, options);
    if (!session.ok()) {
      result.outcome = session.status().code() == StatusCode::kUnimplemented
                           ? Outcome::kNotSupported
                           : Outcome::kFailed;
      result.detail = session.status().ToString();
      return result;
    }
    for (const SegmentInfo& s : (*session)->segments()) result.used_xnnpack |= s.backend == "xnnpack";
    auto outputs = (*session)->Run(inputs);
    if (!outputs.ok()) {
      result.outcome = Outcome::kFailed;
      result.detail = "Run: " + outputs.status().ToString();
      return result;
    }
    if (outputs->size() < expected.size()) {
      result.outcome = Outcome::kFailed;
      result.detail = "fewer outputs than expected";
      return result;
    }
    for (size_t i = 0; i < expected.size(); ++i) {
      std::string why;
      if (!Close((*outputs)[i], expected[i], why)) {
        result.outcome = Outcome::kFailed;
        result.detail = set.filename().string() + " output " + std::to_string(i) + ": " + why;
        return result;
      }
    }
  }
  return result;
}

struct Tally {
  int passed = 0, failed = 0, not_supported = 0, xnnpack_used = 0, bound = 0;
  std::vector<std::string> failures;
  std::vector<std::string> required_not_supported;
};

// Some suite models pass shape-determining operands (Reshape's shape, Pad's pads, Resize's
// scales) as graph inputs; hybridml needs those known when a session is prepared, as they are in
// any exported model. Such a case is retried with its non-first inputs bound as constants.
CaseResult RunCaseBindingShapes(const fs::path& dir, const std::string& backend,
                                bool constant_weights) {
  CaseResult r = RunCase(dir, backend, constant_weights);
  if (!constant_weights && r.outcome == Outcome::kNotSupported &&
      r.detail.find("must be a constant") != std::string::npos) {
    r = RunCase(dir, backend, true);
    r.bound_shape_inputs = true;
  }
  return r;
}

TEST(OnnxConformanceTest, BackendNodeSuite) {
  if (!fs::exists(kDataRoot)) GTEST_SKIP() << kDataRoot << " is missing (libonnx-testdata)";
  const runtime::OpRegistry& ops = runtime::BuiltinOps();
  struct Variant {
    const char* name;
    const char* backend;
    bool constant_weights;
  };
  const Variant variants[] = {{"reference", "reference", false},
                              {"xnnpack", "xnnpack", false},
                              {"xnnpack+const-weights", "xnnpack", true}};
  std::map<std::string, Tally> tallies;
  int skipped_unknown_op = 0, considered = 0;
  for (const char* suite : {"node", "pytorch-converted", "pytorch-operator"}) {
    const fs::path root = fs::path(kDataRoot) / suite;
    if (!fs::exists(root)) continue;
    std::vector<fs::path> dirs;
    for (const auto& e : fs::directory_iterator(root)) {
      if (e.is_directory() && fs::exists(e.path() / "model.onnx")) dirs.push_back(e.path());
    }
    std::sort(dirs.begin(), dirs.end());
    for (const fs::path& dir : dirs) {
      auto model_ops = ModelOps(ReadOrEmpty(dir / "model.onnx"));
      bool known = model_ops.ok();
      bool required = model_ops.ok();
      if (model_ops.ok()) {
        for (const std::string& op : *model_ops) {
          known &= op == "Constant" || ops.Find("", op) != nullptr;
          required &= RequiredOps().count(op) > 0;
        }
      }
      if (!known) {
        ++skipped_unknown_op;
        continue;
      }
      ++considered;
      const std::string name = std::string(suite) + "/" + dir.filename().string();
      for (const Variant& v : variants) {
        Tally& t = tallies[v.name];
        CaseResult r = RunCaseBindingShapes(dir, v.backend, v.constant_weights);
        if (r.used_xnnpack) ++t.xnnpack_used;
        if (r.bound_shape_inputs && r.outcome == Outcome::kPassed) ++t.bound;
        switch (r.outcome) {
          case Outcome::kPassed:
            ++t.passed;
            break;
          case Outcome::kFailed:
            ++t.failed;
            t.failures.push_back(name + ": " + r.detail);
            break;
          case Outcome::kNotSupported:
            ++t.not_supported;
            if (required) t.required_not_supported.push_back(name + ": " + r.detail);
            break;
        }
      }
    }
  }
  std::printf("\nONNX backend test suite (%s): %d tests use only known ops, %d skipped (unknown ops)\n",
              kDataRoot, considered, skipped_unknown_op);
  std::printf("%-24s %8s %8s %14s %16s %22s\n", "backend", "passed", "failed", "not supported",
              "xnnpack used in", "passed w/ shape consts");
  for (const Variant& v : variants) {
    const Tally& t = tallies[v.name];
    std::printf("%-24s %8d %8d %14d %16d %22d\n", v.name, t.passed, t.failed, t.not_supported,
                t.xnnpack_used, t.bound);
  }
  for (const Variant& v : variants) {
    const Tally& t = tallies[v.name];
    for (const std::string& s : t.required_not_supported) {
      std::printf("  [%s] not supported (required op): %s\n", v.name, s.c_str());
    }
    for (const std::string& f : t.failures) {
      ADD_FAILURE() << "[" << v.name << "] " << f;
    }
  }
  EXPECT_GT(tallies["reference"].passed, 200);
}

}  // namespace
}  // namespace hml

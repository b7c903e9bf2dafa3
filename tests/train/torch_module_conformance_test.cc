// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The translator on a suite we did not write: every PyTorch-exported model in Debian's
// libonnx-testdata (pytorch-converted, pytorch-operator) whose ops are all in the training
// subset must reproduce the suite's expected outputs; every other model must be refused with
// kUnimplemented, never crash or compute something wrong.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "src/runtime/onnx_io.h"
#include "src/train/graph_module.h"

namespace hml::train {
namespace {

namespace fs = std::filesystem;

constexpr char kData[] = "/usr/share/libonnx-testdata/data";

std::string Read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(GraphModuleConformanceTest, PytorchExportedModelsMatchExpectedOutputs) {
  if (!fs::exists(kData)) GTEST_SKIP() << "libonnx-testdata is not installed";
  int translated = 0, refused = 0;
  std::vector<std::string> passed;
  for (const char* suite : {"pytorch-converted", "pytorch-operator"}) {
    std::vector<fs::path> dirs;
    for (const auto& e : fs::directory_iterator(fs::path(kData) / suite)) dirs.push_back(e.path());
    std::sort(dirs.begin(), dirs.end());
    for (const fs::path& dir : dirs) {
      const std::string name = std::string(suite) + "/" + dir.filename().string();
      auto graph = runtime::ParseOnnxModel(Read(dir / "model.onnx"));
      if (!graph.ok()) continue;  // the importer's own conformance test covers these
      auto module = GraphModule::Create(*graph);
      if (!module.ok()) {
        EXPECT_EQ(module.status().code(), StatusCode::kUnimplemented)
            << name << ": " << module.status().ToString();
        ++refused;
        continue;
      }
      const fs::path set = dir / "test_data_set_0";
      std::vector<Tensor> inputs, expected;
      for (int i = 0; fs::exists(set / ("input_" + std::to_string(i) + ".pb")); ++i) {
        auto t = runtime::ParseOnnxTensor(Read(set / ("input_" + std::to_string(i) + ".pb")));
        ASSERT_TRUE(t.ok()) << name;
        inputs.push_back(std::move(*t));
      }
      for (int i = 0; fs::exists(set / ("output_" + std::to_string(i) + ".pb")); ++i) {
        auto t = runtime::ParseOnnxTensor(Read(set / ("output_" + std::to_string(i) + ".pb")));
        ASSERT_TRUE(t.ok()) << name;
        expected.push_back(std::move(*t));
      }
      if (inputs.size() != graph->inputs.size()) continue;
      auto out = (*module)->Forward(inputs);
      ASSERT_TRUE(out.ok()) << name << ": " << out.status().ToString();
      ASSERT_EQ(out->size(), expected.size()) << name;
      for (size_t o = 0; o < expected.size(); ++o) {
        ASSERT_EQ((*out)[o].shape(), expected[o].shape()) << name << " output " << o;
        const auto got = (*out)[o].values<float>();
        const auto want = expected[o].values<float>();
        for (size_t k = 0; k < want.size(); ++k) {
          ASSERT_NEAR(got[k], want[k], std::max(1e-4f, 1e-3f * std::fabs(want[k])))
              << name << " output " << o << " element " << k;
        }
      }
      ++translated;
      passed.push_back(name);
    }
  }
  std::string list;
  for (const std::string& p : passed) list += p + " ";
  RecordProperty("translated", translated);
  RecordProperty("refused", refused);
  std::printf("translated and matched %d models, refused %d: %s\n", translated, refused,
              list.c_str());
  EXPECT_GE(translated, 30);
}

}  // namespace
}  // namespace hml::train

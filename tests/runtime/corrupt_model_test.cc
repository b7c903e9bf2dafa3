// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Bad model files must give errors, never crashes: thousands of randomly corrupted and truncated
// copies of real models go through import, session creation and one run. Every outcome is either
// OK or a Status with a message; the test fails on a crash (and, under sanitizers, on any memory
// error).
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "hml/env.h"
#include "hml/runtime/model.h"
#include "hml/runtime/session.h"
#include "hml/runtime/tensor_util.h"
#include "tests/testing/models.h"

namespace hml {
namespace {

// Imports `bytes`, and when that works, prepares and runs a session on `backend`.
// Returns true when every step succeeded.
bool TryModel(const std::string& bytes, const char* backend) {
  auto model = Model::FromOnnx(bytes);
  if (!model.ok()) {
    EXPECT_FALSE(model.status().message().empty());
    return false;
  }
  SessionOptions options;
  options.backend = backend;
  options.logger = NullLogger();
  auto session = Session::Create(*model, options);
  if (!session.ok()) {
    EXPECT_FALSE(session.status().message().empty());
    return false;
  }
  for (size_t i = 0; i < (*session)->num_inputs(); ++i) FillRandom((*session)->input(i), i);
  return (*session)->Run().ok();
}

void Corrupt(const std::string& original, int rounds, uint64_t seed) {
  std::mt19937_64 rng(seed);
  int survived = 0;
  for (int round = 0; round < rounds; ++round) {
    std::string bytes = original;
    switch (rng() % 4) {
      case 0:  // truncate
        bytes.resize(rng() % bytes.size());
        break;
      case 1:  // flip a few random bytes
        for (int i = 0, n = 1 + static_cast<int>(rng() % 8); i < n; ++i) {
          bytes[rng() % bytes.size()] = static_cast<char>(rng());
        }
        break;
      case 2: {  // overwrite a run with 0xff (varints that claim huge lengths)
        const size_t at = rng() % bytes.size();
        for (size_t i = at; i < bytes.size() && i < at + 6; ++i) bytes[i] = '\xff';
        break;
      }
      default: {  // duplicate a slice (repeated fields, shifted tags)
        const size_t at = rng() % bytes.size();
        const size_t len = std::min<size_t>(1 + rng() % 64, bytes.size() - at);
        bytes.insert(at, bytes.substr(at, len));
        break;
      }
    }
    survived += TryModel(bytes, rng() % 2 ? "xnnpack" : "reference") ? 1 : 0;
  }
  // Most corruptions are caught; some (e.g. a flipped weight byte) are still valid models.
  EXPECT_LT(survived, rounds);
}

TEST(CorruptModelTest, Cnn28CorruptionsNeverCrash) {
  const std::string original = testing::Cnn28Onnx();
  ASSERT_TRUE(TryModel(original, "xnnpack"));
  Corrupt(original, 3000, 1);
}

TEST(CorruptModelTest, SuiteModelCorruptionsNeverCrash) {
  for (const char* path : {"/usr/share/libonnx-testdata/data/node/test_conv_with_strides_padding/model.onnx",
                           "/usr/share/libonnx-testdata/data/node/test_resize_upsample_scales_linear/model.onnx",
                           "/usr/share/libonnx-testdata/data/node/test_qlinearconv/model.onnx"}) {
    auto bytes = DefaultEnv()->ReadFile(path);
    if (!bytes.ok()) GTEST_SKIP() << path << " is missing (libonnx-testdata)";
    SCOPED_TRACE(path);
    Corrupt(*bytes, 1000, 2);
  }
}

}  // namespace
}  // namespace hml

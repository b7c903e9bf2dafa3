// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "hml/env.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

namespace hml {
namespace {

std::string TempDir() {
  char tmpl[] = "/tmp/hml_env_test_XXXXXX";
  const char* dir = ::mkdtemp(tmpl);
  return dir ? dir : "/tmp";
}

TEST(EnvTest, WriteAtomicThenRead) {
  Env* env = DefaultEnv();
  const std::string path = TempDir() + "/file.bin";
  EXPECT_FALSE(env->FileExists(path));
  ASSERT_TRUE(env->WriteFileAtomic(path, std::string("abc\0def", 7)).ok());
  auto data = env->ReadFile(path);
  ASSERT_TRUE(data.ok());
  EXPECT_EQ(*data, std::string("abc\0def", 7));
  ASSERT_TRUE(env->WriteFileAtomic(path, "new").ok());
  EXPECT_EQ(*env->ReadFile(path), "new");
}

TEST(EnvTest, ErrorsNameThePathAndMapErrno) {
  Env* env = DefaultEnv();
  auto missing = env->ReadFile("/nonexistent/hml/model.onnx");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("/nonexistent/hml/model.onnx"), std::string::npos);
  auto dir = env->ReadFile("/tmp");
  EXPECT_EQ(dir.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(env->WriteFileAtomic("/nonexistent/dir/x", "y").code(), StatusCode::kNotFound);
}

TEST(EnvTest, SizeLimitCheckedBeforeReading) {
  Env* env = DefaultEnv();
  const std::string path = TempDir() + "/big.bin";
  ASSERT_TRUE(env->WriteFileAtomic(path, std::string(100, 'x')).ok());
  auto r = env->ReadFile(path, 10);
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
}

TEST(EnvTest, FilesWithoutAKnownSizeAreReadToTheirEnd) {
  // procfs reports size 0; the read must go to end of file, and still respect the limit.
  auto stat = DefaultEnv()->ReadFile("/proc/self/stat");
  ASSERT_TRUE(stat.ok()) << stat.status().ToString();
  EXPECT_GT(stat->size(), 20u);
  auto maps = DefaultEnv()->ReadFile("/proc/self/maps", 16);
  EXPECT_EQ(maps.status().code(), StatusCode::kResourceExhausted);
}

}  // namespace
}  // namespace hml

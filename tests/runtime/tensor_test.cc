// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "hml/runtime/tensor.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "hml/runtime/tensor_util.h"

namespace hml {
namespace {

TEST(TensorTest, AllocateIsZeroedAlignedAndSized) {
  auto t = Tensor::Allocate(DType::kFloat32, {2, 3});
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->num_elements(), 6);
  EXPECT_EQ(t->byte_size(), 24u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t->raw_data()) % 64, 0u);
  for (float v : t->values<float>()) EXPECT_EQ(v, 0.0f);
  EXPECT_TRUE(t->owns_data());
}

TEST(TensorTest, AbsurdShapesAreRejectedBeforeAllocating) {
  EXPECT_EQ(Tensor::Allocate(DType::kFloat32, {1 << 20, 1 << 20}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(Tensor::Allocate(DType::kFloat32, {-1, 3}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(Tensor::Allocate(DType::kUndefined, {1}).status().code(),
            StatusCode::kInvalidArgument);
  // Overflowing products must not wrap around to a small size.
  auto n = CheckedNumElements({int64_t{1} << 40, int64_t{1} << 40, 16}, DType::kInt8);
  EXPECT_FALSE(n.ok());
  EXPECT_FALSE(CheckedNumElements(Shape(9, 1)).ok());  // rank above kMaxRank
  EXPECT_EQ(*CheckedNumElements({0, 1 << 30}), 0);
}

TEST(TensorTest, FromVectorCloneAndViews) {
  std::vector<int32_t> v = {1, 2, 3, 4, 5, 6};
  auto t = Tensor::FromVector<int32_t>({2, 3}, v);
  ASSERT_TRUE(t.ok());
  EXPECT_FALSE(Tensor::FromVector<int32_t>({4}, v).ok());
  auto c = t->Clone();
  ASSERT_TRUE(c.ok());
  c->data<int32_t>()[0] = 100;
  EXPECT_EQ(t->data<int32_t>()[0], 1);
  Tensor view = t->Reshaped({3, 2});
  EXPECT_FALSE(view.owns_data());
  EXPECT_EQ(view.raw_data(), t->raw_data());
  EXPECT_EQ(view.shape(), (Shape{3, 2}));
}

TEST(TensorTest, DTypeNamesAndOnnxCodes) {
  EXPECT_EQ(*DTypeFromOnnx(1), DType::kFloat32);
  EXPECT_EQ(*DTypeFromOnnx(3), DType::kInt8);
  auto bf16 = DTypeFromOnnx(16);
  EXPECT_EQ(bf16.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(bf16.status().message().find("BFLOAT16"), std::string::npos);
  EXPECT_EQ(DTypeName(DType::kInt64), "int64");
  EXPECT_EQ(ShapeToString({1, -1, 3}), "[1,?,3]");
}

TEST(TensorUtilTest, RandomFillIsDeterministicAndStatsArePercentiles) {
  Tensor a = std::move(*Tensor::Allocate(DType::kFloat32, {100}));
  Tensor b = std::move(*Tensor::Allocate(DType::kFloat32, {100}));
  FillRandom(a, 3);
  FillRandom(b, 3);
  EXPECT_EQ(std::memcmp(a.raw_data(), b.raw_data(), a.byte_size()), 0);
  for (float v : a.values<float>()) {
    EXPECT_GE(v, -1.0f);
    EXPECT_LT(v, 1.0f);
  }
  std::vector<double> us;
  for (int i = 1; i <= 100; ++i) us.push_back(i);
  LatencyStats s = ComputeLatencyStats(us);
  EXPECT_EQ(s.count, 100);
  EXPECT_DOUBLE_EQ(s.p50_us, 50);
  EXPECT_DOUBLE_EQ(s.p90_us, 90);
  EXPECT_DOUBLE_EQ(s.p99_us, 99);
  EXPECT_DOUBLE_EQ(s.mean_us, 50.5);
}

}  // namespace
}  // namespace hml

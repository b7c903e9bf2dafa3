// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Helpers for tests that handle tensors (the reference kernel tests, the protocol codec tests):
// make small tensors, evaluate one node on constant inputs, and compare values or bytes.
#ifndef HML_TESTS_TESTING_KERNEL_TEST_UTIL_H_
#define HML_TESTS_TESTING_KERNEL_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "tests/testing/graph_builder.h"

namespace hml::testing {

template <typename T>
Tensor Make(Shape shape, std::vector<T> values) {
  Result<Tensor> t = Tensor::FromVector<T>(std::move(shape), values);
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  return t.ok() ? std::move(*t) : Tensor();
}
inline Tensor F(Shape shape, std::vector<float> values) { return Make<float>(std::move(shape), values); }
template <typename... Ts>
std::vector<Tensor> Inputs(Ts&&... tensors) {
  std::vector<Tensor> v;
  (v.push_back(std::forward<Ts>(tensors)), ...);
  return v;
}
// Checks that `a` and `b` have the same dtype, shape and bytes.
inline void ExpectSameTensor(const Tensor& a, const Tensor& b) {
  ASSERT_EQ(a.dtype(), b.dtype());
  ASSERT_EQ(a.shape(), b.shape());
  ASSERT_EQ(a.byte_size(), b.byte_size());
  EXPECT_EQ(std::memcmp(a.raw_data(), b.raw_data(), a.byte_size()), 0);
}
// Checks dtype, shape and values (relative tolerance for floats; NaN matches NaN).
template <typename T>
void ExpectValues(const Tensor& t, const Shape& shape, const std::vector<T>& expected,
                  double tolerance = 1e-5) {
  ASSERT_EQ(t.dtype(), DTypeOf<T>());
  ASSERT_EQ(t.shape(), shape);
  ASSERT_EQ(t.num_elements(), static_cast<int64_t>(expected.size()));
  for (size_t i = 0; i < expected.size(); ++i) {
    if constexpr (std::is_floating_point_v<T>) {
      if (std::isnan(expected[i])) {
        EXPECT_TRUE(std::isnan(t.data<T>()[i])) << "at " << i;
      } else {
        EXPECT_NEAR(t.data<T>()[i], expected[i], tolerance * (1.0 + std::fabs(expected[i])))
            << "at " << i;
      }
    } else {
      EXPECT_EQ(t.data<T>()[i], expected[i]) << "at " << i;
    }
  }
}
// Evaluates a one-output node and returns its output, failing the test on error.
inline Tensor Eval1(const std::string& op, std::vector<Tensor> inputs, runtime::Attributes attrs = {},
             int64_t opset = 17) {
  Result<std::vector<Tensor>> r = EvalOp(op, std::move(inputs), std::move(attrs), 1, opset);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  if (!r.ok() || r->empty()) return Tensor();
  return std::move((*r)[0]);
}
inline Status EvalStatus(const std::string& op, std::vector<Tensor> inputs, runtime::Attributes attrs = {},
                  int64_t opset = 17, int num_outputs = 1) {
  return EvalOp(op, std::move(inputs), std::move(attrs), num_outputs, opset).status();
}

}  // namespace hml::testing

#endif  // HML_TESTS_TESTING_KERNEL_TEST_UTIL_H_

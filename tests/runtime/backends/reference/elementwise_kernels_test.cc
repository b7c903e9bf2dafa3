// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Numeric tests of the elementwise reference kernels and their schemas, evaluated one node at a
// time on constant inputs. Expected values are computed by hand (or follow the ONNX backend
// test cases of the same name).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "tests/testing/graph_builder.h"
#include "tests/testing/kernel_test_util.h"

namespace hml {
namespace {

using ::hml::testing::EvalOp;
using ::hml::testing::Eval1;
using ::hml::testing::EvalStatus;
using ::hml::testing::ExpectValues;
using ::hml::testing::F;
using ::hml::testing::Inputs;
using ::hml::testing::Make;
using ::testing::HasSubstr;







runtime::Attributes FloatAttr(const std::string& name, float v) {
  runtime::Attributes a;
  a.SetFloat(name, v);
  return a;
}

// ---- Binary arithmetic.

TEST(ArithmeticTest, AddSameShape) {
  Tensor y = Eval1("Add", Inputs(F({2, 2}, {1, 2, 3, 4}), F({2, 2}, {10, 20, 30, 40})));
  ExpectValues<float>(y, {2, 2}, {11, 22, 33, 44});
}

TEST(ArithmeticTest, AddBroadcastsTrailingVector) {
  // test_add_bcast: [3,4,5] + [5]; here [2,3] + [3].
  Tensor y = Eval1("Add", Inputs(F({2, 3}, {1, 2, 3, 4, 5, 6}), F({3}, {10, 20, 30})));
  ExpectValues<float>(y, {2, 3}, {11, 22, 33, 14, 25, 36});
}

TEST(ArithmeticTest, SubBroadcastsBothWays) {
  // [2,1] - [1,3] -> [2,3]: out[i][j] = a[i] - b[j].
  Tensor y = Eval1("Sub", Inputs(F({2, 1}, {10, 20}), F({1, 3}, {1, 2, 3})));
  ExpectValues<float>(y, {2, 3}, {9, 8, 7, 19, 18, 17});
}

TEST(ArithmeticTest, MulScalarAndMiddleBroadcast) {
  Tensor y = Eval1("Mul", Inputs(F({}, {2}), F({2, 2}, {1, 2, 3, 4})));
  ExpectValues<float>(y, {2, 2}, {2, 4, 6, 8});
  // [2,1,2] * [3,1] -> [2,3,2].
  Tensor z = Eval1("Mul", Inputs(F({2, 1, 2}, {1, 2, 3, 4}), F({3, 1}, {1, 10, 100})));
  ExpectValues<float>(z, {2, 3, 2}, {1, 2, 10, 20, 100, 200, 3, 4, 30, 40, 300, 400});
}

TEST(ArithmeticTest, DivFloat) {
  Tensor y = Eval1("Div", Inputs(F({2}, {3, 4}), F({2}, {1, 2})));
  ExpectValues<float>(y, {2}, {3, 2});
}

TEST(ArithmeticTest, IntegerDivTruncatesTowardZero) {
  Tensor y =
      Eval1("Div", Inputs(Make<int32_t>({4}, {7, -7, 7, -7}), Make<int32_t>({4}, {2, 2, -2, -2})));
  ExpectValues<int32_t>(y, {4}, {3, -3, -3, 3});
  // Division by zero gives 0 rather than trapping; INT_MIN / -1 wraps.
  const int64_t min64 = std::numeric_limits<int64_t>::min();
  Tensor z = Eval1("Div", Inputs(Make<int64_t>({2}, {5, min64}), Make<int64_t>({2}, {0, -1})));
  ExpectValues<int64_t>(z, {2}, {0, min64});
  // test_div_uint8.
  Tensor u = Eval1("Div", Inputs(Make<uint8_t>({3}, {16, 6, 3}), Make<uint8_t>({3}, {11, 5, 1})));
  ExpectValues<uint8_t>(u, {3}, {1, 1, 3});
}

TEST(ArithmeticTest, IntegerAddSubMulWrap) {
  ExpectValues<uint8_t>(
      Eval1("Add", Inputs(Make<uint8_t>({2}, {250, 12}), Make<uint8_t>({2}, {10, 6}))), {2},
      {4, 18});
  ExpectValues<int8_t>(
      Eval1("Sub", Inputs(Make<int8_t>({2}, {-128, 5}), Make<int8_t>({2}, {1, 7}))), {2},
      {127, -2});
  const int32_t max32 = std::numeric_limits<int32_t>::max();
  ExpectValues<int32_t>(
      Eval1("Mul", Inputs(Make<int32_t>({2}, {max32, -3}), Make<int32_t>({2}, {2, 4}))), {2},
      {-2, -12});
  ExpectValues<int64_t>(
      Eval1("Add", Inputs(Make<int64_t>({2, 2}, {1, 2, 3, 4}), Make<int64_t>({2}, {10, 20}))),
      {2, 2}, {11, 22, 13, 24});
}

TEST(ArithmeticTest, ZeroSizedBroadcast) {
  Tensor y = Eval1("Add", Inputs(F({0, 3}, {}), F({3}, {1, 2, 3})));
  ExpectValues<float>(y, {0, 3}, {});
}

TEST(ArithmeticTest, RejectsIncompatibleShapes) {
  Status s = EvalStatus("Add", Inputs(F({2, 3}, {1, 2, 3, 4, 5, 6}), F({4}, {1, 2, 3, 4})));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("Add"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("[2,3] and [4] are not broadcastable"));
}

TEST(ArithmeticTest, RejectsMixedTypes) {
  Status s = EvalStatus("Mul", Inputs(F({1}, {1}), Make<int32_t>({1}, {1})));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("same element type"));
}

TEST(ArithmeticTest, LegacyBroadcastWithAxis) {
  // Opset 6 (test_operator_add_broadcast & co): B = [2] placed at axis 0 of A = [2,3].
  runtime::Attributes attrs;
  attrs.SetInt("broadcast", 1);
  attrs.SetInt("axis", 0);
  Tensor y = Eval1("Add", Inputs(F({2, 3}, {1, 2, 3, 4, 5, 6}), F({2}, {10, 20})), attrs, 6);
  ExpectValues<float>(y, {2, 3}, {11, 12, 13, 24, 25, 26});
  // Without axis B is right-aligned, as in numpy.
  runtime::Attributes right;
  right.SetInt("broadcast", 1);
  Tensor z = Eval1("Mul", Inputs(F({2, 3}, {1, 2, 3, 4, 5, 6}), F({3}, {1, 10, 100})), right, 6);
  ExpectValues<float>(z, {2, 3}, {1, 20, 300, 4, 50, 600});
  // A size-1 dim in B still broadcasts (test_operator_add_size1_broadcast).
  Tensor w = Eval1("Add", Inputs(F({2, 3}, {1, 2, 3, 4, 5, 6}), F({2, 1}, {10, 20})), attrs, 6);
  ExpectValues<float>(w, {2, 3}, {11, 12, 13, 24, 25, 26});
}

TEST(ArithmeticTest, LegacyWithoutBroadcastNeedsEqualShapes) {
  Status s = EvalStatus("Add", Inputs(F({2, 3}, {1, 2, 3, 4, 5, 6}), F({3}, {1, 2, 3})), {}, 6);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("broadcast=1"));
}

// ---- Pow.

TEST(PowTest, FloatAndBroadcast) {
  // test_pow_bcast_array.
  Tensor y = Eval1("Pow", Inputs(F({2, 3}, {1, 2, 3, 4, 5, 6}), F({3}, {1, 2, 3})));
  ExpectValues<float>(y, {2, 3}, {1, 4, 27, 4, 25, 216});
  Tensor r = Eval1("Pow", Inputs(F({2}, {4, 2}), F({}, {0.5f})));
  ExpectValues<float>(r, {2}, {2, std::sqrt(2.0f)});
}

TEST(PowTest, MixedTypes) {
  // test_pow_types_float32_int64 and test_pow_types_int32_int32.
  ExpectValues<float>(Eval1("Pow", Inputs(F({3}, {1, 2, 3}), Make<int64_t>({3}, {4, 5, 6}))), {3},
                      {1, 32, 729});
  ExpectValues<int32_t>(
      Eval1("Pow", Inputs(Make<int32_t>({3}, {1, 2, 3}), Make<int32_t>({3}, {4, 5, 6}))), {3},
      {1, 32, 729});
  ExpectValues<int64_t>(Eval1("Pow", Inputs(Make<int64_t>({2}, {2, 3}), F({2}, {3, 0.5f}))), {2},
                        {8, 1});
  // Negative integer exponents truncate the real result.
  ExpectValues<int32_t>(
      Eval1("Pow", Inputs(Make<int32_t>({3}, {2, 1, -1}), Make<int32_t>({3}, {-1, -3, -3}))), {3},
      {0, 1, -1});
}

// ---- Variadic.

TEST(VariadicTest, MaxMinOfThree) {
  // test_max_example / test_min_example.
  Tensor mx = Eval1("Max", Inputs(F({3}, {3, 2, 1}), F({3}, {1, 4, 4}), F({3}, {2, 5, 3})));
  ExpectValues<float>(mx, {3}, {3, 5, 4});
  Tensor mn = Eval1("Min", Inputs(F({3}, {3, 2, 1}), F({3}, {1, 4, 4}), F({3}, {2, 5, 0})));
  ExpectValues<float>(mn, {3}, {1, 2, 0});
}

TEST(VariadicTest, SingleInputAndBroadcast) {
  ExpectValues<float>(Eval1("Max", Inputs(F({3}, {3, 2, 1}))), {3}, {3, 2, 1});
  // [3] vs [2,1] -> [2,3]; the first input is broadcast into the output.
  Tensor y = Eval1("Min", Inputs(Make<int8_t>({3}, {1, 5, -3}), Make<int8_t>({2, 1}, {2, -4})));
  ExpectValues<int8_t>(y, {2, 3}, {1, 2, -3, -4, -4, -4});
  Tensor u = Eval1("Max", Inputs(Make<uint8_t>({2}, {3, 200}), Make<uint8_t>({2}, {250, 4})));
  ExpectValues<uint8_t>(u, {2}, {250, 200});
}

TEST(VariadicTest, MaxPropagatesNan) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  Tensor y = Eval1("Max", Inputs(F({2}, {nan, 1}), F({2}, {1, nan})));
  ExpectValues<float>(y, {2}, {nan, nan});
}

TEST(VariadicTest, SumAndMean) {
  Tensor s = Eval1("Sum", Inputs(F({2}, {1, 2}), F({2}, {10, 20}), F({}, {100})));
  ExpectValues<float>(s, {2}, {111, 122});
  Tensor m = Eval1("Mean", Inputs(F({2}, {1, 2}), F({2}, {3, 6})));
  ExpectValues<float>(m, {2}, {2, 4});
  ExpectValues<int32_t>(Eval1("Sum", Inputs(Make<int32_t>({2}, {1, 2}), Make<int32_t>({1}, {5}))),
                        {2}, {6, 7});
}

// ---- Unary activations.

TEST(UnaryTest, Relu) {
  ExpectValues<float>(Eval1("Relu", Inputs(F({4}, {-1, 0, 0.5f, 3}))), {4}, {0, 0, 0.5f, 3});
  ExpectValues<int32_t>(Eval1("Relu", Inputs(Make<int32_t>({3}, {-5, 0, 7}))), {3}, {0, 0, 7});
}

TEST(UnaryTest, LeakyRelu) {
  // test_leakyrelu_example and the 0.01 default.
  ExpectValues<float>(Eval1("LeakyRelu", Inputs(F({3}, {-1, 0, 1})), FloatAttr("alpha", 0.1f)), {3},
                      {-0.1f, 0, 1});
  ExpectValues<float>(Eval1("LeakyRelu", Inputs(F({2}, {-2, 2}))), {2}, {-0.02f, 2});
}

TEST(UnaryTest, SigmoidTanhExpLogSqrt) {
  ExpectValues<float>(Eval1("Sigmoid", Inputs(F({3}, {-1, 0, 1}))), {3},
                      {0.26894142f, 0.5f, 0.73105858f});
  // No overflow for large magnitudes.
  ExpectValues<float>(Eval1("Sigmoid", Inputs(F({2}, {-200, 200}))), {2}, {0, 1});
  ExpectValues<float>(Eval1("Tanh", Inputs(F({3}, {-1, 0, 1}))), {3},
                      {-0.76159416f, 0, 0.76159416f});
  ExpectValues<float>(Eval1("Exp", Inputs(F({3}, {-1, 0, 1}))), {3}, {0.36787944f, 1, 2.71828183f});
  ExpectValues<float>(Eval1("Log", Inputs(F({2}, {1, 10}))), {2}, {0, 2.30258509f});
  ExpectValues<float>(Eval1("Sqrt", Inputs(F({2}, {1, 9}))), {2}, {1, 3});
}

TEST(UnaryTest, HardSigmoidAndHardSwish) {
  // Defaults alpha 0.2, beta 0.5.
  ExpectValues<float>(Eval1("HardSigmoid", Inputs(F({4}, {-3, -1, 0, 4}))), {4},
                      {0, 0.3f, 0.5f, 1});
  // test_hardsigmoid_example: alpha 0.5, beta 0.6.
  runtime::Attributes attrs;
  attrs.SetFloat("alpha", 0.5f);
  attrs.SetFloat("beta", 0.6f);
  ExpectValues<float>(Eval1("HardSigmoid", Inputs(F({3}, {-1, 0, 1})), attrs), {3},
                      {0.1f, 0.6f, 1});
  // x * clamp(x / 6 + 0.5, 0, 1).
  ExpectValues<float>(Eval1("HardSwish", Inputs(F({4}, {-4, -1, 1, 4}))), {4},
                      {0, -1.0f / 3.0f, 2.0f / 3.0f, 4});
}

TEST(UnaryTest, Elu) {
  ExpectValues<float>(Eval1("Elu", Inputs(F({3}, {-1, 0, 1})), FloatAttr("alpha", 2.0f)), {3},
                      {-1.26424112f, 0, 1});
  ExpectValues<float>(Eval1("Elu", Inputs(F({1}, {-1}))), {1}, {-0.63212056f});
}

TEST(UnaryTest, SeluSoftplusSoftsign) {
  // test_selu_example: alpha 2, gamma 3.
  runtime::Attributes attrs;
  attrs.SetFloat("alpha", 2.0f);
  attrs.SetFloat("gamma", 3.0f);
  ExpectValues<float>(Eval1("Selu", Inputs(F({3}, {-1, 0, 1})), attrs), {3}, {-3.79272318f, 0, 3});
  ExpectValues<float>(Eval1("Selu", Inputs(F({2}, {-1, 1}))), {2}, {-1.11133074f, 1.05070102f});
  // log(1 + e^x), also for magnitudes where e^x overflows.
  ExpectValues<float>(Eval1("Softplus", Inputs(F({4}, {-1, 0, 1, 100}))), {4},
                      {0.31326169f, 0.69314718f, 1.31326169f, 100});
  ExpectValues<float>(Eval1("Softsign", Inputs(F({3}, {-1, 0, 3}))), {3}, {-0.5f, 0, 0.75f});
}

TEST(UnaryTest, RoundingAndMath) {
  ExpectValues<float>(Eval1("Floor", Inputs(F({3}, {-1.5f, 1.2f, 2}))), {3}, {-2, 1, 2});
  ExpectValues<float>(Eval1("Ceil", Inputs(F({3}, {-1.5f, 1.2f, 2}))), {3}, {-1, 2, 2});
  // test_round: halves go to the even neighbour.
  ExpectValues<float>(
      Eval1("Round", Inputs(F({8}, {0.5f, 1.5f, 2.5f, -0.5f, -1.5f, 2.3f, -2.7f, 0.49999997f}))),
      {8}, {0, 2, 2, 0, -2, 2, -3, 0});
  ExpectValues<float>(Eval1("Reciprocal", Inputs(F({2}, {-4, 0.5f}))), {2}, {-0.25f, 2});
  ExpectValues<float>(Eval1("Erf", Inputs(F({3}, {-1, 0, 0.5f}))), {3},
                      {-0.84270079f, 0, 0.52049988f});
}

TEST(UnaryTest, NegAndAbs) {
  ExpectValues<float>(Eval1("Neg", Inputs(F({2}, {-4, 2}))), {2}, {4, -2});
  ExpectValues<int8_t>(Eval1("Neg", Inputs(Make<int8_t>({3}, {-128, 5, 0}))), {3}, {-128, -5, 0});
  ExpectValues<float>(Eval1("Abs", Inputs(F({2}, {-4, 2}))), {2}, {4, 2});
  ExpectValues<int64_t>(Eval1("Abs", Inputs(Make<int64_t>({2}, {-9, 9}))), {2}, {9, 9});
  ExpectValues<uint8_t>(Eval1("Abs", Inputs(Make<uint8_t>({1}, {200}))), {1}, {200});
}

TEST(UnaryTest, FloatOnlyOpsRejectIntegers) {
  Status s = EvalStatus("Sigmoid", Inputs(Make<int32_t>({1}, {1})));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("int32"));
  EXPECT_EQ(EvalStatus("Neg", Inputs(Make<uint8_t>({1}, {1}))).code(),
            StatusCode::kInvalidArgument);
}

// ---- PRelu.

TEST(PReluTest, SlopeBroadcasts) {
  // test_prelu_broadcast: slope [5] over [3,4,5]; here slope [3] over [2,3].
  Tensor y = Eval1("PRelu", Inputs(F({2, 3}, {-1, -2, 3, -4, 5, -6}), F({3}, {0.5f, 0.1f, 2})));
  ExpectValues<float>(y, {2, 3}, {-0.5f, -0.2f, 3, -2, 5, -12});
}

TEST(PReluTest, LegacyPerChannelSlope) {
  // Opset 6 (test_PReLU_2d_multiparam): slope [C] applies per channel of [N,C,H].
  Tensor y = Eval1("PRelu", Inputs(F({1, 2, 2}, {-1, 1, -1, 1}), F({2}, {0.25f, 0.5f})), {}, 6);
  ExpectValues<float>(y, {1, 2, 2}, {-0.25f, 1, -0.5f, 1});
}

TEST(PReluTest, RejectsSlopeThatDoesNotBroadcast) {
  Status s = EvalStatus("PRelu", Inputs(F({2, 3}, {1, 2, 3, 4, 5, 6}), F({2}, {1, 1})));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("slope [2] does not broadcast"));
}

// ---- Clip.

TEST(ClipTest, BoundsAsInputs) {
  // test_clip_example.
  Tensor y = Eval1("Clip", Inputs(F({3}, {-2, 0, 2}), F({}, {-1}), F({}, {1})), {}, 13);
  ExpectValues<float>(y, {3}, {-1, 0, 1});
  // Absent min (test_clip_default_max), absent max (test_clip_default_min), none.
  ExpectValues<float>(Eval1("Clip", Inputs(F({3}, {-2, 0, 2}), Tensor(), F({}, {0})), {}, 13), {3},
                      {-2, 0, 0});
  ExpectValues<float>(Eval1("Clip", Inputs(F({3}, {-2, 0, 2}), F({}, {0})), {}, 13), {3},
                      {0, 0, 2});
  ExpectValues<float>(Eval1("Clip", Inputs(F({2}, {-1e30f, 1e30f})), {}, 13), {2}, {-1e30f, 1e30f});
}

TEST(ClipTest, Integers) {
  // test_clip_default_int8_min.
  Tensor y = Eval1("Clip", Inputs(Make<int8_t>({3}, {-5, 0, 5}), Make<int8_t>({}, {0})), {}, 13);
  ExpectValues<int8_t>(y, {3}, {0, 0, 5});
  Tensor z = Eval1(
      "Clip",
      Inputs(Make<int64_t>({3}, {-5, 0, 5}), Make<int64_t>({1}, {-2}), Make<int64_t>({1}, {3})), {},
      13);
  ExpectValues<int64_t>(z, {3}, {-2, 0, 3});
}

TEST(ClipTest, MinAboveMaxGivesMax) {
  Tensor y = Eval1("Clip", Inputs(F({3}, {-2, 0, 2}), F({}, {1}), F({}, {-1})), {}, 13);
  ExpectValues<float>(y, {3}, {-1, -1, -1});
}

TEST(ClipTest, AttributesBeforeOpset11) {
  // test_operator_clip: min -0.5, max 0.5 at opset 6.
  runtime::Attributes attrs;
  attrs.SetFloat("min", -0.5f);
  attrs.SetFloat("max", 0.5f);
  ExpectValues<float>(Eval1("Clip", Inputs(F({3}, {-2, 0.25f, 2})), attrs, 6), {3},
                      {-0.5f, 0.25f, 0.5f});
  ExpectValues<float>(Eval1("Clip", Inputs(F({2}, {-2, 2})), FloatAttr("max", 1.0f), 6), {2},
                      {-2, 1});
}

TEST(ClipTest, RejectsNonScalarBounds) {
  Status s = EvalStatus("Clip", Inputs(F({3}, {-2, 0, 2}), F({2}, {0, 1})), {}, 13);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("min must be a scalar"));
}

// ---- Cast.

runtime::Attributes To(int onnx_type) {
  runtime::Attributes a;
  a.SetInt("to", onnx_type);
  return a;
}

TEST(CastTest, FloatToIntegersTruncatesAndSaturates) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  ExpectValues<int32_t>(Eval1("Cast", Inputs(F({4}, {-1.7f, 2.9f, 0.5f, nan})), To(6)), {4},
                        {-1, 2, 0, 0});
  ExpectValues<uint8_t>(Eval1("Cast", Inputs(F({3}, {300, -5, 7.9f})), To(2)), {3}, {255, 0, 7});
  ExpectValues<int8_t>(Eval1("Cast", Inputs(F({2}, {-1000, 1000})), To(3)), {2}, {-128, 127});
  ExpectValues<int64_t>(Eval1("Cast", Inputs(F({1}, {-3e9f})), To(7)), {1}, {-3000000000LL});
}

TEST(CastTest, IntegerConversions) {
  ExpectValues<float>(Eval1("Cast", Inputs(Make<int64_t>({2}, {-3, 1LL << 40})), To(1)), {2},
                      {-3.0f, 1099511627776.0f});
  // Narrowing integer casts wrap, as in C.
  ExpectValues<int8_t>(Eval1("Cast", Inputs(Make<int32_t>({2}, {300, -129})), To(3)), {2},
                       {44, 127});
  ExpectValues<int32_t>(Eval1("Cast", Inputs(Make<uint8_t>({1}, {255})), To(6)), {1}, {255});
  ExpectValues<float>(Eval1("Cast", Inputs(F({1}, {1.5f})), To(1)), {1}, {1.5f});
}

TEST(CastTest, UnsupportedTargetIsUnimplemented) {
  Status s = EvalStatus("Cast", Inputs(F({1}, {1})), To(11));
  EXPECT_EQ(s.code(), StatusCode::kUnimplemented);
  EXPECT_THAT(std::string(s.message()), HasSubstr("DOUBLE"));
  EXPECT_EQ(EvalStatus("Cast", Inputs(F({1}, {1}))).code(), StatusCode::kInvalidArgument);
}

// ---- Identity and Dropout.

TEST(CopyTest, IdentityAndDropout) {
  ExpectValues<int64_t>(Eval1("Identity", Inputs(Make<int64_t>({2}, {5, -6}))), {2}, {5, -6});
  // test_dropout_default_old / test_dropout_random_old: inference copies the input.
  ExpectValues<float>(Eval1("Dropout", Inputs(F({3}, {-1, 0, 1})), FloatAttr("ratio", 0.2f), 11),
                      {3}, {-1, 0, 1});
  ExpectValues<float>(Eval1("Dropout", Inputs(F({2}, {3, 4}), F({}, {0.5f}))), {2}, {3, 4});
}

TEST(CopyTest, DropoutMaskIsUnimplemented) {
  Status s = EvalStatus("Dropout", Inputs(F({3}, {-1, 0, 1})), {}, 13, 2);
  EXPECT_EQ(s.code(), StatusCode::kUnimplemented);
  EXPECT_THAT(std::string(s.message()), HasSubstr("mask output"));
}

// ---- Schema checks that need a graph (non-constant inputs, arity).

TEST(SchemaTest, ClipBoundsMayBeRunTimeValues) {
  testing::GraphBuilder b(13);
  b.Input("x", DType::kFloat32, {3}).Input("lo", DType::kFloat32, {});
  b.Node("Clip", {"x", "lo"}, {"y"}).Output("y");
  runtime::Graph& g = b.graph();
  ASSERT_TRUE(runtime::InferShapes(g, runtime::BuiltinOps()).ok());
  EXPECT_EQ(g.value(g.FindValue("y")).shape, (Shape{3}));
}

TEST(SchemaTest, ArityIsChecked) {
  Status s = EvalStatus("Add", Inputs(F({1}, {1})));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("has 1 inputs, expected 2"));
}

}  // namespace
}  // namespace hml

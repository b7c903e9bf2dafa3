// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Numeric tests of the data-movement reference kernels and their schemas, evaluated one node at
// a time on constant inputs. Resize expectations come from hand computation or from ONNX's
// reference interpolation (onnx/backend/test/case/node/resize.py) for the same inputs.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
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
using ::hml::testing::GraphBuilder;
using ::testing::HasSubstr;


Tensor I64(std::vector<int64_t> values) {
  const int64_t n = static_cast<int64_t>(values.size());
  return Make<int64_t>({n}, std::move(values));
}
// 0, 1, 2, ... as float in `shape`.
Tensor Iota(Shape shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  std::vector<float> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), 0.0f);
  return F(std::move(shape), v);
}

runtime::Attributes IntAttr(const std::string& name, int64_t v) {
  runtime::Attributes a;
  a.SetInt(name, v);
  return a;
}
runtime::Attributes IntsAttr(const std::string& name, std::vector<int64_t> v) {
  runtime::Attributes a;
  a.SetInts(name, std::move(v));
  return a;
}

// Shape inference on a graph whose input `x` is a run-time value and whose other inputs are
// graph inputs too (not constants): for checking the "must be a constant" errors.
Status InferWithRuntimeInputs(const std::string& op, std::vector<std::pair<DType, Shape>> inputs,
                              runtime::Attributes attrs = {}, int64_t opset = 17) {
  GraphBuilder b(opset);
  std::vector<std::string> names;
  for (size_t i = 0; i < inputs.size(); ++i) {
    names.push_back("in" + std::to_string(i));
    b.Input(names.back(), inputs[i].first, inputs[i].second);
  }
  b.Node(op, names, {"y"}, std::move(attrs)).Output("y");
  return runtime::InferShapes(b.graph(), runtime::BuiltinOps());
}

// ---- Flatten.

TEST(FlattenTest, Axes) {
  // test_flatten_*: [2,3,4,5] with every axis.
  EXPECT_EQ(Eval1("Flatten", Inputs(Iota({2, 3, 4, 5})), IntAttr("axis", 0)).shape(),
            (Shape{1, 120}));
  EXPECT_EQ(Eval1("Flatten", Inputs(Iota({2, 3, 4, 5}))).shape(), (Shape{2, 60}));
  EXPECT_EQ(Eval1("Flatten", Inputs(Iota({2, 3, 4, 5})), IntAttr("axis", 3)).shape(),
            (Shape{24, 5}));
  EXPECT_EQ(Eval1("Flatten", Inputs(Iota({2, 3, 4, 5})), IntAttr("axis", 4)).shape(),
            (Shape{120, 1}));
  EXPECT_EQ(Eval1("Flatten", Inputs(Iota({2, 3, 4, 5})), IntAttr("axis", -1)).shape(),
            (Shape{24, 5}));
  Tensor y = Eval1("Flatten", Inputs(Iota({2, 2, 2})), IntAttr("axis", -2));
  ExpectValues<float>(y, {2, 4}, {0, 1, 2, 3, 4, 5, 6, 7});
}

TEST(FlattenTest, RejectsAxisOutOfRange) {
  Status s = EvalStatus("Flatten", Inputs(Iota({2, 3})), IntAttr("axis", 3));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("axis 3 is out of range [-2, 2]"));
}

// ---- Reshape.

TEST(ReshapeTest, InfersAndCopiesDims) {
  // test_reshape_negative_dim, _zero_dim, _zero_and_negative_dim.
  Tensor a = Eval1("Reshape", Inputs(Iota({2, 3}), I64({-1, 2})));
  ExpectValues<float>(a, {3, 2}, {0, 1, 2, 3, 4, 5});
  EXPECT_EQ(Eval1("Reshape", Inputs(Iota({2, 3, 4}), I64({2, -1, 2}))).shape(), (Shape{2, 6, 2}));
  EXPECT_EQ(Eval1("Reshape", Inputs(Iota({2, 3, 4}), I64({2, 0, 4, 1}))).shape(),
            (Shape{2, 3, 4, 1}));
  EXPECT_EQ(Eval1("Reshape", Inputs(Iota({2, 3, 4}), I64({2, 0, 1, -1}))).shape(),
            (Shape{2, 3, 1, 4}));
  EXPECT_EQ(Eval1("Reshape", Inputs(Iota({2, 3, 4}), I64({24}))).shape(), (Shape{24}));
  // int8 data and int32 shape.
  Tensor b =
      Eval1("Reshape", Inputs(Make<int8_t>({4}, {1, -2, 3, -4}), Make<int32_t>({2}, {2, 2})));
  ExpectValues<int8_t>(b, {2, 2}, {1, -2, 3, -4});
}

TEST(ReshapeTest, AllowZeroKeepsZeros) {
  // test_reshape_allowzero_reordered: [0,3,4] -> [3,4,0].
  Tensor y =
      Eval1("Reshape", Inputs(F({0, 3, 4}, {}), I64({3, 4, 0})), IntAttr("allowzero", 1), 14);
  EXPECT_EQ(y.shape(), (Shape{3, 4, 0}));
}

TEST(ReshapeTest, ShapeAttributeBeforeOpset5) {
  Tensor y = Eval1("Reshape", Inputs(Iota({2, 3})), IntsAttr("shape", {3, -1}), 4);
  ExpectValues<float>(y, {3, 2}, {0, 1, 2, 3, 4, 5});
}

TEST(ReshapeTest, ErrorsNameTheShapes) {
  Status s = EvalStatus("Reshape", Inputs(Iota({2, 3, 4}), I64({5, 5})));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("cannot reshape [2,3,4] (24 elements) to [5,5] (25 elements)"));
  s = EvalStatus("Reshape", Inputs(Iota({2, 3, 4}), I64({-1, -1})));
  EXPECT_THAT(std::string(s.message()), HasSubstr("more than one -1"));
  s = EvalStatus("Reshape", Inputs(Iota({2, 3, 4}), I64({5, -1})));
  EXPECT_THAT(std::string(s.message()), HasSubstr("the -1 cannot be inferred"));
  s = EvalStatus("Reshape", Inputs(Iota({2, 3}), I64({-2, 3})));
  EXPECT_THAT(std::string(s.message()), HasSubstr("invalid dim -2"));
  s = EvalStatus("Reshape", Inputs(Iota({6}), I64({3, 0})));
  EXPECT_THAT(std::string(s.message()), HasSubstr("copies dim 1"));
  s = EvalStatus("Reshape", Inputs(F({0, 3}, {}), I64({0, -1})), IntAttr("allowzero", 1), 14);
  EXPECT_THAT(std::string(s.message()), HasSubstr("both 0 and -1"));
}

TEST(ReshapeTest, RunTimeShapeIsUnimplemented) {
  Status s = InferWithRuntimeInputs("Reshape", {{DType::kFloat32, {2, 3}}, {DType::kInt64, {2}}});
  EXPECT_EQ(s.code(), StatusCode::kUnimplemented);
  EXPECT_THAT(std::string(s.message()), HasSubstr("shape must be a constant"));
}

// ---- Squeeze / Unsqueeze.

TEST(SqueezeTest, AxesInputAndAttribute) {
  // test_squeeze, test_squeeze_negative_axes.
  EXPECT_EQ(Eval1("Squeeze", Inputs(Iota({1, 3, 4, 5}), I64({0}))).shape(), (Shape{3, 4, 5}));
  EXPECT_EQ(Eval1("Squeeze", Inputs(Iota({1, 3, 1, 5}), I64({-2}))).shape(), (Shape{1, 3, 5}));
  // No axes: every 1 goes.
  Tensor y = Eval1("Squeeze", Inputs(Iota({1, 3, 1, 2})));
  ExpectValues<float>(y, {3, 2}, {0, 1, 2, 3, 4, 5});
  // Opset 11 attribute (test_operator_index).
  EXPECT_EQ(Eval1("Squeeze", Inputs(Iota({1, 1})), IntsAttr("axes", {0}), 11).shape(), (Shape{1}));
}

TEST(SqueezeTest, RejectsDimsOtherThanOne) {
  Status s = EvalStatus("Squeeze", Inputs(Iota({1, 3}), I64({1})));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("cannot squeeze dim 1 of input [1,3]"));
  s = EvalStatus("Squeeze", Inputs(Iota({1, 3}), I64({2})));
  EXPECT_THAT(std::string(s.message()), HasSubstr("axes 2 is out of range"));
}

TEST(UnsqueezeTest, AxesInOutputCoordinates) {
  // test_unsqueeze_two_axes, _three_axes, _unsorted_axes, _negative_axes.
  EXPECT_EQ(Eval1("Unsqueeze", Inputs(Iota({3, 4, 5}), I64({1, 4}))).shape(),
            (Shape{3, 1, 4, 5, 1}));
  EXPECT_EQ(Eval1("Unsqueeze", Inputs(Iota({3, 4, 5}), I64({2, 4, 5}))).shape(),
            (Shape{3, 4, 1, 5, 1, 1}));
  EXPECT_EQ(Eval1("Unsqueeze", Inputs(Iota({3, 4, 5}), I64({5, 4, 2}))).shape(),
            (Shape{3, 4, 1, 5, 1, 1}));
  EXPECT_EQ(Eval1("Unsqueeze", Inputs(Iota({1, 3, 1, 5}), I64({-2}))).shape(),
            (Shape{1, 3, 1, 1, 5}));
  // test_unsqueeze_axis_3 (opset 11 attribute); scalars become [1].
  EXPECT_EQ(Eval1("Unsqueeze", Inputs(Iota({3, 4, 5})), IntsAttr("axes", {3}), 11).shape(),
            (Shape{3, 4, 5, 1}));
  ExpectValues<int64_t>(Eval1("Unsqueeze", Inputs(Make<int64_t>({}, {7}), I64({0}))), {1}, {7});
}

TEST(UnsqueezeTest, RejectsDuplicateAxes) {
  Status s = EvalStatus("Unsqueeze", Inputs(Iota({3}), I64({0, -3})));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("repeats axis 0"));
}

// ---- Transpose.

TEST(TransposeTest, DefaultReversesDims) {
  Tensor y = Eval1("Transpose", Inputs(Iota({2, 3})));
  ExpectValues<float>(y, {3, 2}, {0, 3, 1, 4, 2, 5});
}

TEST(TransposeTest, Permutation3D) {
  // test_transpose_all_permutations_4: perm [2,0,1] of [2,3,4]: y[k][i][j] = x[i][j][k].
  Tensor y = Eval1("Transpose", Inputs(Iota({2, 3, 4})), IntsAttr("perm", {2, 0, 1}));
  ASSERT_EQ(y.shape(), (Shape{4, 2, 3}));
  for (int k = 0; k < 4; ++k) {
    for (int i = 0; i < 2; ++i) {
      for (int j = 0; j < 3; ++j) {
        EXPECT_EQ(y.data<float>()[(k * 2 + i) * 3 + j], static_cast<float>(i * 12 + j * 4 + k));
      }
    }
  }
  Tensor z =
      Eval1("Transpose", Inputs(Make<int64_t>({2, 2}, {1, 2, 3, 4})), IntsAttr("perm", {1, 0}));
  ExpectValues<int64_t>(z, {2, 2}, {1, 3, 2, 4});
}

TEST(TransposeTest, RejectsBadPerm) {
  Status s = EvalStatus("Transpose", Inputs(Iota({2, 3})), IntsAttr("perm", {0, 0}));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("perm [0,0] is not a permutation"));
}

// ---- Concat.

TEST(ConcatTest, AxesIncludingNegative) {
  // test_concat_2d_axis_1 / _negative_2.
  Tensor a =
      Eval1("Concat", Inputs(F({2, 2}, {1, 2, 3, 4}), F({2, 2}, {5, 6, 7, 8})), IntAttr("axis", 1));
  ExpectValues<float>(a, {2, 4}, {1, 2, 5, 6, 3, 4, 7, 8});
  Tensor b = Eval1("Concat", Inputs(F({2, 2}, {1, 2, 3, 4}), F({2, 2}, {5, 6, 7, 8})),
                   IntAttr("axis", -2));
  ExpectValues<float>(b, {4, 2}, {1, 2, 3, 4, 5, 6, 7, 8});
  // Three int64 inputs of different lengths, one empty.
  Tensor c =
      Eval1("Concat", Inputs(I64({1}), Make<int64_t>({0}, {}), I64({2, 3})), IntAttr("axis", 0));
  ExpectValues<int64_t>(c, {3}, {1, 2, 3});
}

TEST(ConcatTest, RejectsMismatchedDims) {
  Status s = EvalStatus("Concat", Inputs(Iota({2, 2}), Iota({3, 3})), IntAttr("axis", 1));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("input 1 has shape [3,3]"));
  EXPECT_THAT(std::string(EvalStatus("Concat", Inputs(Iota({2}))).message()),
              HasSubstr("axis attribute is required"));
}

// ---- Split.

// Evaluates a Split with `count` outputs.
std::vector<Tensor> EvalSplit(std::vector<Tensor> inputs, runtime::Attributes attrs, int count,
                              int64_t opset = 17) {
  Result<std::vector<Tensor>> r =
      EvalOp("Split", std::move(inputs), std::move(attrs), count, opset);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? std::move(*r) : std::vector<Tensor>();
}

TEST(SplitTest, EqualAndVariableParts) {
  // test_split_equal_parts_2d: [2,6] on axis 1 in three.
  std::vector<Tensor> a = EvalSplit(Inputs(Iota({2, 6})), IntAttr("axis", 1), 3);
  ASSERT_EQ(a.size(), 3u);
  ExpectValues<float>(a[0], {2, 2}, {0, 1, 6, 7});
  ExpectValues<float>(a[2], {2, 2}, {4, 5, 10, 11});
  // test_split_variable_parts_1d with the split input (opset 13) and attribute (opset 11).
  std::vector<Tensor> b = EvalSplit(Inputs(Iota({6}), I64({2, 4})), {}, 2);
  ASSERT_EQ(b.size(), 2u);
  ExpectValues<float>(b[0], {2}, {0, 1});
  ExpectValues<float>(b[1], {4}, {2, 3, 4, 5});
  std::vector<Tensor> c =
      EvalSplit(Inputs(Make<int64_t>({3}, {7, 8, 9})), IntsAttr("split", {1, 2}), 2, 11);
  ASSERT_EQ(c.size(), 2u);
  ExpectValues<int64_t>(c[1], {2}, {8, 9});
  // num_outputs (opset 18): the last part is smaller.
  std::vector<Tensor> d = EvalSplit(Inputs(Iota({5})), IntAttr("num_outputs", 2), 2, 18);
  ASSERT_EQ(d.size(), 2u);
  ExpectValues<float>(d[0], {3}, {0, 1, 2});
  ExpectValues<float>(d[1], {2}, {3, 4});
}

TEST(SplitTest, Errors) {
  Status s = EvalOp("Split", Inputs(Iota({5})), {}, 2).status();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("does not split into 2 equal parts"));
  s = EvalOp("Split", Inputs(Iota({5}), I64({2, 2})), {}, 2).status();
  EXPECT_THAT(std::string(s.message()), HasSubstr("split [2,2] sums to 4"));
}

// ---- Gather.

TEST(GatherTest, AxisZeroAndOne) {
  // test_gather_0 / test_gather_1 in miniature.
  Tensor a = Eval1("Gather", Inputs(Iota({3, 2}), I64({2, 0})));
  ExpectValues<float>(a, {2, 2}, {4, 5, 0, 1});
  Tensor b =
      Eval1("Gather", Inputs(Iota({3, 2}), Make<int32_t>({1, 2}, {1, 1})), IntAttr("axis", -1));
  ExpectValues<float>(b, {3, 1, 2}, {1, 1, 3, 3, 5, 5});
}

TEST(GatherTest, NegativeIndicesAndScalarIndex) {
  // test_gather_negative_indices.
  Tensor y = Eval1("Gather", Inputs(Iota({10}), I64({0, -9, -10})));
  ExpectValues<float>(y, {3}, {0, 1, 0});
  Tensor s = Eval1("Gather", Inputs(Make<int64_t>({3}, {7, 8, 9}), Make<int64_t>({}, {-1})));
  ExpectValues<int64_t>(s, {}, {9});
}

TEST(GatherTest, OutOfRangeIndex) {
  Status s = EvalStatus("Gather", Inputs(Iota({3}), I64({3})));
  EXPECT_EQ(s.code(), StatusCode::kOutOfRange);
  EXPECT_THAT(std::string(s.message()), HasSubstr("index 3 is out of range [-3, 2]"));
}

// ---- Shape.

TEST(ShapeTest, StartAndEnd) {
  ExpectValues<int64_t>(Eval1("Shape", Inputs(Iota({3, 4, 5}))), {3}, {3, 4, 5});
  runtime::Attributes a;
  a.SetInt("start", 1);
  a.SetInt("end", -1);
  ExpectValues<int64_t>(Eval1("Shape", Inputs(Iota({3, 4, 5})), a), {1}, {4});
  ExpectValues<int64_t>(Eval1("Shape", Inputs(Iota({3, 4, 5})), IntAttr("start", -10)), {3},
                        {3, 4, 5});
  ExpectValues<int64_t>(Eval1("Shape", Inputs(Iota({3, 4, 5})), IntAttr("end", 10)), {3},
                        {3, 4, 5});
  ExpectValues<int64_t>(Eval1("Shape", Inputs(Iota({3, 4, 5})), IntAttr("start", 5)), {0}, {});
}

// ---- Slice.

TEST(SliceTest, BasicAndDefaults) {
  // [3,4] rows 0..2, cols 1..3.
  Tensor a = Eval1("Slice", Inputs(Iota({3, 4}), I64({0, 1}), I64({2, 3})));
  ExpectValues<float>(a, {2, 2}, {1, 2, 5, 6});
  // Negative axes and end = -1 (test_slice_neg, test_slice_negative_axes).
  Tensor b = Eval1("Slice", Inputs(Iota({3, 4}), I64({0}), I64({-1}), I64({-1})));
  ExpectValues<float>(b, {3, 3}, {0, 1, 2, 4, 5, 6, 8, 9, 10});
}

TEST(SliceTest, StepsAndClamping) {
  // test_slice_neg_steps-like: starts past the end clamp to dim - 1.
  Tensor a = Eval1("Slice", Inputs(Iota({5}), I64({20}), I64({0}), I64({0}), I64({-2})));
  ExpectValues<float>(a, {2}, {4, 2});
  // Reverse everything with INT64_MIN as the end.
  Tensor b = Eval1("Slice", Inputs(Iota({4}), I64({-1}), I64({std::numeric_limits<int64_t>::min()}),
                                   I64({0}), I64({-1})));
  ExpectValues<float>(b, {4}, {3, 2, 1, 0});
  // test_slice_end_out_of_bounds / _start_out_of_bounds.
  ExpectValues<float>(Eval1("Slice", Inputs(Iota({4}), I64({1}), I64({1000}))), {3}, {1, 2, 3});
  ExpectValues<float>(Eval1("Slice", Inputs(Iota({4}), I64({1000}), I64({1000}))), {0}, {});
  // Step 3 over 7 elements: 0, 3, 6.
  ExpectValues<float>(Eval1("Slice", Inputs(Iota({7}), I64({0}), I64({7}), I64({0}), I64({3}))),
                      {3}, {0, 3, 6});
}

TEST(SliceTest, AttributesBeforeOpset10) {
  runtime::Attributes a;
  a.SetInts("starts", {1});
  a.SetInts("ends", {3});
  a.SetInts("axes", {1});
  Tensor y = Eval1("Slice", Inputs(Make<uint8_t>({2, 3}, {1, 2, 3, 4, 5, 6})), a, 9);
  ExpectValues<uint8_t>(y, {2, 2}, {2, 3, 5, 6});
}

TEST(SliceTest, Errors) {
  Status s = EvalStatus("Slice", Inputs(Iota({4}), I64({0}), I64({4}), I64({0}), I64({0})));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("steps [0] contain 0"));
  s = EvalStatus("Slice", Inputs(Iota({4, 4}), I64({0, 0}), I64({1, 1}), I64({1, -1})));
  EXPECT_THAT(std::string(s.message()), HasSubstr("repeats axis 1"));
  s = InferWithRuntimeInputs("Slice",
                             {{DType::kFloat32, {4}}, {DType::kInt64, {1}}, {DType::kInt64, {1}}});
  EXPECT_EQ(s.code(), StatusCode::kUnimplemented);
  EXPECT_THAT(std::string(s.message()), HasSubstr("starts must be a constant"));
}

// ---- Pad.

runtime::Attributes Mode(const std::string& mode) {
  runtime::Attributes a;
  a.SetString("mode", mode);
  return a;
}

TEST(PadTest, ConstantWithValue) {
  // [2,2] padded by 1 row before, 1 col after, with 9.
  Tensor y = Eval1("Pad", Inputs(F({2, 2}, {1, 2, 3, 4}), I64({1, 0, 0, 1}), F({}, {9})),
                   Mode("constant"), 13);
  ExpectValues<float>(y, {3, 3}, {9, 9, 9, 1, 2, 9, 3, 4, 9});
  // Default value 0, int32 data.
  Tensor z = Eval1("Pad", Inputs(Make<int32_t>({2}, {5, 6}), I64({2, 1})), {}, 13);
  ExpectValues<int32_t>(z, {5}, {0, 0, 5, 6, 0});
}

TEST(PadTest, ReflectAndEdge) {
  // numpy.pad([1,2,3], (2,2), 'reflect') = [3,2,1,2,3,2,1].
  ExpectValues<float>(Eval1("Pad", Inputs(F({3}, {1, 2, 3}), I64({2, 2})), Mode("reflect"), 13),
                      {7}, {3, 2, 1, 2, 3, 2, 1});
  // Pads longer than the dim keep reflecting.
  ExpectValues<float>(Eval1("Pad", Inputs(F({2}, {1, 2}), I64({3, 0})), Mode("reflect"), 13), {5},
                      {2, 1, 2, 1, 2});
  ExpectValues<int64_t>(Eval1("Pad", Inputs(Make<int64_t>({2, 2}, {1, 2, 3, 4}), I64({1, 1, 0, 0})),
                              Mode("edge"), 13),
                        {3, 3}, {1, 1, 2, 1, 1, 2, 3, 3, 4});
}

TEST(PadTest, NegativePadsCrop) {
  Tensor y = Eval1("Pad", Inputs(Iota({2, 4}), I64({0, -1, 0, 1})), {}, 13);
  ExpectValues<float>(y, {2, 4}, {1, 2, 3, 0, 5, 6, 7, 0});
}

TEST(PadTest, AttributesBeforeOpset11) {
  // test_ConstantPad2d-style: pads and value attributes.
  runtime::Attributes a = Mode("constant");
  a.SetInts("pads", {0, 1, 0, 1});
  a.SetFloat("value", 2.5f);
  ExpectValues<float>(Eval1("Pad", Inputs(F({1, 2}, {1, 2})), a, 6), {1, 4}, {2.5f, 1, 2, 2.5f});
  runtime::Attributes r = Mode("reflect");
  r.SetInts("pads", {0, 2, 0, 1});
  ExpectValues<float>(Eval1("Pad", Inputs(F({1, 3}, {1, 2, 3})), r, 2), {1, 6}, {3, 2, 1, 2, 3, 2});
}

TEST(PadTest, Errors) {
  Status s = EvalStatus("Pad", Inputs(Iota({2}), I64({1})), {}, 13);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("pads [1] must have 2 entries"));
  s = EvalStatus("Pad", Inputs(Iota({2}), I64({-2, -1})), {}, 13);
  EXPECT_THAT(std::string(s.message()), HasSubstr("below zero"));
  s = EvalStatus("Pad", Inputs(Iota({2}), I64({1, 1})), Mode("wrap"), 19);
  EXPECT_EQ(s.code(), StatusCode::kUnimplemented);
  s = InferWithRuntimeInputs("Pad", {{DType::kFloat32, {4}}, {DType::kInt64, {2}}}, {}, 13);
  EXPECT_EQ(s.code(), StatusCode::kUnimplemented);
  EXPECT_THAT(std::string(s.message()), HasSubstr("pads must be a constant"));
}

// ---- Expand and Tile.

TEST(ExpandTest, Broadcasts) {
  // test_expand_dim_changed: [3,1] to [2,1,6] -> [2,3,6].
  Tensor y = Eval1("Expand", Inputs(F({3, 1}, {1, 2, 3}), I64({2, 1, 6})));
  ASSERT_EQ(y.shape(), (Shape{2, 3, 6}));
  for (int i = 0; i < 36; ++i) EXPECT_EQ(y.data<float>()[i], static_cast<float>((i / 6) % 3 + 1));
  ExpectValues<int8_t>(Eval1("Expand", Inputs(Make<int8_t>({2}, {1, 2}), I64({2, 1}))), {2, 2},
                       {1, 2, 1, 2});
  Status s = EvalStatus("Expand", Inputs(Iota({3}), I64({2})));
  EXPECT_THAT(std::string(s.message()), HasSubstr("not broadcastable"));
}

TEST(TileTest, Repeats) {
  // test_tile_precomputed.
  Tensor y = Eval1("Tile", Inputs(F({2, 2}, {0, 1, 2, 3}), I64({2, 2})));
  ExpectValues<float>(y, {4, 4}, {0, 1, 0, 1, 2, 3, 2, 3, 0, 1, 0, 1, 2, 3, 2, 3});
  Status s = EvalStatus("Tile", Inputs(Iota({2}), I64({1, 2})));
  EXPECT_THAT(std::string(s.message()), HasSubstr("one entry per dim"));
}

// ---- Resize.

runtime::Attributes ResizeAttrs(const std::string& mode, const std::string& coordinate = "",
                                const std::string& nearest = "") {
  runtime::Attributes a;
  a.SetString("mode", mode);
  if (!coordinate.empty()) a.SetString("coordinate_transformation_mode", coordinate);
  if (!nearest.empty()) a.SetString("nearest_mode", nearest);
  return a;
}

// Resizes [1,4] = {1,2,3,4} to [1,7] with the given nearest settings.
std::vector<float> Nearest7(const std::string& coordinate, const std::string& nearest) {
  Tensor y = Eval1("Resize", Inputs(F({1, 4}, {1, 2, 3, 4}), Tensor(), Tensor(), I64({1, 7})),
                   ResizeAttrs("nearest", coordinate, nearest), 13);
  EXPECT_EQ(y.shape(), (Shape{1, 7}));
  return std::vector<float>(y.data<float>(), y.data<float>() + y.num_elements());
}

TEST(ResizeTest, NearestModes) {
  using V = std::vector<float>;
  EXPECT_EQ(Nearest7("half_pixel", "round_prefer_floor"), (V{1, 1, 2, 2, 3, 4, 4}));
  EXPECT_EQ(Nearest7("half_pixel", "round_prefer_ceil"), (V{1, 1, 2, 3, 3, 4, 4}));
  EXPECT_EQ(Nearest7("half_pixel", "floor"), (V{1, 1, 1, 2, 3, 3, 4}));
  EXPECT_EQ(Nearest7("half_pixel", "ceil"), (V{1, 2, 2, 3, 4, 4, 4}));
  EXPECT_EQ(Nearest7("asymmetric", "round_prefer_ceil"), (V{1, 2, 2, 3, 3, 4, 4}));
  EXPECT_EQ(Nearest7("asymmetric", "ceil"), (V{1, 2, 3, 3, 4, 4, 4}));
  EXPECT_EQ(Nearest7("align_corners", "floor"), (V{1, 1, 2, 2, 3, 3, 4}));
  EXPECT_EQ(Nearest7("align_corners", "round_prefer_floor"), (V{1, 1, 2, 2, 3, 3, 4}));
  EXPECT_EQ(Nearest7("pytorch_half_pixel", "round_prefer_floor"), (V{1, 1, 2, 2, 3, 4, 4}));
}

TEST(ResizeTest, NearestScalesDefault) {
  // test_resize_upsample_scales_nearest.
  Tensor y = Eval1("Resize", Inputs(F({1, 1, 2, 2}, {1, 2, 3, 4}), Tensor(), F({4}, {1, 1, 2, 3})),
                   ResizeAttrs("nearest"), 13);
  ExpectValues<float>(y, {1, 1, 4, 6},
                      {1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 3, 3, 3, 4, 4, 4});
  // test_resize_downsample_scales_nearest: scale 0.6 on [2,4] -> [1,2].
  Tensor z =
      Eval1("Resize",
            Inputs(F({1, 1, 2, 4}, {1, 2, 3, 4, 5, 6, 7, 8}), Tensor(), F({4}, {1, 1, 0.6f, 0.6f})),
            ResizeAttrs("nearest"), 13);
  ExpectValues<float>(z, {1, 1, 1, 2}, {1, 3});
}

TEST(ResizeTest, NearestTfHalfPixelAndIntegers) {
  // 6 -> 4: x = (o + 0.5) * 1.5 = 0.75, 2.25, 3.75, 5.25 -> 1, 2, 4, 5.
  Tensor y = Eval1("Resize",
                   Inputs(Make<int8_t>({6}, {1, 2, 3, 4, 5, 6}), F({0}, {}), F({0}, {}), I64({4})),
                   ResizeAttrs("nearest", "tf_half_pixel_for_nn"), 11);
  ExpectValues<int8_t>(y, {4}, {2, 3, 5, 6});
}

TEST(ResizeTest, LinearHalfPixel) {
  // test_resize_upsample_scales_linear.
  Tensor y = Eval1("Resize", Inputs(F({1, 1, 2, 2}, {1, 2, 3, 4}), Tensor(), F({4}, {1, 1, 2, 2})),
                   ResizeAttrs("linear"), 13);
  ExpectValues<float>(
      y, {1, 1, 4, 4},
      {1, 1.25f, 1.75f, 2, 1.5f, 1.75f, 2.25f, 2.5f, 2.5f, 2.75f, 3.25f, 3.5f, 3, 3.25f, 3.75f, 4});
  // test_resize_downsample_scales_linear.
  Tensor z =
      Eval1("Resize",
            Inputs(F({1, 1, 2, 4}, {1, 2, 3, 4, 5, 6, 7, 8}), Tensor(), F({4}, {1, 1, 0.6f, 0.6f})),
            ResizeAttrs("linear"), 13);
  ExpectValues<float>(z, {1, 1, 1, 2}, {2.6666665f, 4.333333f});
}

TEST(ResizeTest, LinearAlignCornersAsymmetricPytorch) {
  Tensor a = Eval1("Resize", Inputs(F({1, 1, 2, 2}, {1, 2, 3, 4}), Tensor(), F({4}, {1, 1, 2, 2})),
                   ResizeAttrs("linear", "align_corners"), 13);
  const float t = 1.0f / 3.0f;
  ExpectValues<float>(a, {1, 1, 4, 4},
                      {1, 1 + t, 1 + 2 * t, 2, 1 + 2 * t, 2, 2 + t, 2 + 2 * t, 2 + t, 2 + 2 * t, 3,
                       3 + t, 3, 3 + t, 3 + 2 * t, 4});
  // test_resize_downsample_scales_linear_align_corners: the unrounded length 2.4 is used.
  Tensor b =
      Eval1("Resize",
            Inputs(F({1, 1, 2, 4}, {1, 2, 3, 4, 5, 6, 7, 8}), Tensor(), F({4}, {1, 1, 0.6f, 0.6f})),
            ResizeAttrs("linear", "align_corners"), 13);
  ExpectValues<float>(b, {1, 1, 1, 2}, {1, 3.142857f});
  Tensor c = Eval1("Resize", Inputs(F({1, 5}, {1, 2, 3, 4, 5}), Tensor(), Tensor(), I64({1, 3})),
                   ResizeAttrs("linear", "asymmetric"), 13);
  ExpectValues<float>(c, {1, 3}, {1, 2 + 2 * t, 4 + t});
  Tensor d = Eval1("Resize", Inputs(F({1, 4}, {1, 2, 3, 4}), Tensor(), Tensor(), I64({1, 3})),
                   ResizeAttrs("linear", "pytorch_half_pixel"), 13);
  ExpectValues<float>(d, {1, 3}, {1.1666666f, 2.5f, 3.8333333f});
  // Length 1 samples index 0 (test_resize_downsample_sizes_linear_pytorch_half_pixel).
  Tensor e = Eval1("Resize", Inputs(F({1, 4}, {1, 2, 3, 4}), Tensor(), Tensor(), I64({1, 1})),
                   ResizeAttrs("linear", "pytorch_half_pixel"), 13);
  ExpectValues<float>(e, {1, 1}, {1});
}

TEST(ResizeTest, TrilinearReproducesLinearFunctions) {
  // x[i][j][k] = 4i + 2j + k on [2,2,2]; align_corners to [3,3,3] samples at half steps, where
  // N-linear interpolation of a linear function is exact.
  Tensor y = Eval1("Resize", Inputs(Iota({2, 2, 2}), Tensor(), Tensor(), I64({3, 3, 3})),
                   ResizeAttrs("linear", "align_corners"), 13);
  ASSERT_EQ(y.shape(), (Shape{3, 3, 3}));
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 3; ++j) {
      for (int k = 0; k < 3; ++k) {
        EXPECT_FLOAT_EQ(y.data<float>()[(i * 3 + j) * 3 + k], 2.0f * i + 1.0f * j + 0.5f * k);
      }
    }
  }
}

TEST(ResizeTest, TfCropAndResize) {
  // roi [0.2, 0.9] of 5 elements to 4 samples: 0.8 + o * 0.7 * 4 / 3.
  runtime::Attributes a = ResizeAttrs("linear", "tf_crop_and_resize");
  Tensor y = Eval1(
      "Resize",
      Inputs(F({1, 5}, {1, 2, 3, 4, 5}), F({4}, {0, 0.2f, 1, 0.9f}), Tensor(), I64({1, 4})), a, 13);
  ExpectValues<float>(y, {1, 4}, {1.8f, 2.7333333f, 3.6666666f, 4.6f});
  // Samples past the input take extrapolation_value, in linear and nearest mode.
  a.SetFloat("extrapolation_value", -1.0f);
  Tensor z = Eval1(
      "Resize",
      Inputs(F({1, 5}, {1, 2, 3, 4, 5}), F({4}, {0, 0.5f, 1, 1.5f}), Tensor(), I64({1, 3})), a, 13);
  ExpectValues<float>(z, {1, 3}, {3, 5, -1});
  runtime::Attributes n = ResizeAttrs("nearest", "tf_crop_and_resize");
  n.SetFloat("extrapolation_value", -1.0f);
  Tensor w = Eval1(
      "Resize",
      Inputs(F({1, 5}, {1, 2, 3, 4, 5}), F({4}, {0, 0.5f, 1, 1.5f}), Tensor(), I64({1, 3})), n, 13);
  ExpectValues<float>(w, {1, 3}, {3, 5, -1});
}

TEST(ResizeTest, LegacyResizeAndUpsample) {
  // Resize-10 and Upsample-9 use asymmetric coordinates; nearest floors when upsampling.
  Tensor a = Eval1("Resize", Inputs(F({1, 1, 2, 2}, {1, 2, 3, 4}), F({4}, {1, 1, 2, 3})),
                   ResizeAttrs("nearest"), 10);
  ExpectValues<float>(a, {1, 1, 4, 6},
                      {1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 3, 3, 3, 4, 4, 4});
  // Linear: x / 2 = 0, 0.5, 1, 1.5 with the last sample clamped to the edge.
  Tensor b = Eval1("Upsample", Inputs(F({1, 1, 2, 2}, {1, 2, 3, 4}), F({4}, {1, 1, 2, 2})),
                   ResizeAttrs("linear"), 9);
  ExpectValues<float>(b, {1, 1, 4, 4},
                      {1, 1.5f, 2, 2, 2, 2.5f, 3, 3, 3, 3.5f, 4, 4, 3, 3.5f, 4, 4});
  // Upsample-7 takes scales as an attribute.
  runtime::Attributes c = ResizeAttrs("nearest");
  c.SetFloats("scales", {1, 2});
  ExpectValues<uint8_t>(Eval1("Upsample", Inputs(Make<uint8_t>({1, 2}, {7, 9})), c, 7), {1, 4},
                        {7, 7, 9, 9});
}

TEST(ResizeTest, UnsupportedModesAreUnimplemented) {
  Status s = EvalStatus("Resize", Inputs(Iota({1, 1, 2, 2}), Tensor(), F({4}, {1, 1, 2, 2})),
                        ResizeAttrs("cubic"), 13);
  EXPECT_EQ(s.code(), StatusCode::kUnimplemented);
  EXPECT_THAT(std::string(s.message()), HasSubstr("Resize 'Resize_0'"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("mode 'cubic'"));
  runtime::Attributes a = ResizeAttrs("linear");
  a.SetInt("antialias", 1);
  s = EvalStatus("Resize", Inputs(Iota({1, 1, 2, 2}), Tensor(), F({4}, {1, 1, 2, 2})), a, 18);
  EXPECT_EQ(s.code(), StatusCode::kUnimplemented);
  EXPECT_THAT(std::string(s.message()), HasSubstr("antialias"));
  runtime::Attributes k = ResizeAttrs("nearest");
  k.SetString("keep_aspect_ratio_policy", "not_larger");
  s = EvalStatus("Resize", Inputs(Iota({1, 1, 2, 2}), Tensor(), Tensor(), I64({1, 1, 3, 3})), k,
                 18);
  EXPECT_EQ(s.code(), StatusCode::kUnimplemented);
  EXPECT_THAT(std::string(s.message()), HasSubstr("keep_aspect_ratio_policy"));
  s = EvalStatus("Resize", Inputs(Make<int32_t>({1, 2}, {1, 2}), Tensor(), F({2}, {1, 2})),
                 ResizeAttrs("linear"), 13);
  EXPECT_EQ(s.code(), StatusCode::kUnimplemented);
  EXPECT_THAT(std::string(s.message()), HasSubstr("float32 only"));
}

TEST(ResizeTest, Errors) {
  Status s = EvalStatus("Resize", Inputs(Iota({1, 2}), Tensor(), F({2}, {1, 2}), I64({1, 4})),
                        ResizeAttrs("nearest"), 13);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("exactly one of scales and sizes"));
  s = EvalStatus("Resize", Inputs(Iota({1, 2}), Tensor(), F({1}, {2})), ResizeAttrs("nearest"), 13);
  EXPECT_THAT(std::string(s.message()), HasSubstr("scales has 1 entries"));
  s = EvalStatus("Resize", Inputs(Iota({1, 2}), Tensor(), F({2}, {1, -2})), ResizeAttrs("nearest"),
                 13);
  EXPECT_THAT(std::string(s.message()), HasSubstr("positive"));
  s = InferWithRuntimeInputs(
      "Resize", {{DType::kFloat32, {1, 2}}, {DType::kFloat32, {0}}, {DType::kFloat32, {2}}},
      ResizeAttrs("nearest"), 13);
  EXPECT_EQ(s.code(), StatusCode::kUnimplemented);
  EXPECT_THAT(std::string(s.message()), HasSubstr("scales must be a constant"));
}

}  // namespace
}  // namespace hml

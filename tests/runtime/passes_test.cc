// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/runtime/passes.h"

#include <gtest/gtest.h>

#include "hml/runtime/model.h"
#include "hml/runtime/session.h"
#include "hml/runtime/tensor_util.h"
#include "tests/testing/models.h"

namespace hml::runtime {
namespace {

using testing::GraphBuilder;
using testing::RandomTensor;

Tensor Ints(std::vector<int64_t> v) {
  return std::move(*Tensor::FromVector<int64_t>({static_cast<int64_t>(v.size())}, v));
}

std::vector<float> RunOnce(const Graph& g, const Shape& shape, uint64_t seed) {
  auto model = Model::FromGraph(g);
  EXPECT_TRUE(model.ok()) << model.status().ToString();
  SessionOptions options;
  options.backend = "reference";
  options.input_shapes[g.value(g.inputs[0]).name] = shape;
  auto session = Session::Create(*model, options);
  EXPECT_TRUE(session.ok()) << session.status().ToString();
  if (!session.ok()) return {};
  FillRandom((*session)->input(0), seed);
  EXPECT_TRUE((*session)->Run().ok());
  auto v = (*session)->output(0).values<float>();
  return {v.begin(), v.end()};
}

TEST(PassesTest, IdentityAndDropoutAreRemovedKeepingOutputNames) {
  GraphBuilder b;
  b.Input("x", DType::kFloat32, {4});
  b.Node("Relu", {"x"}, {"r"});
  b.Node("Identity", {"r"}, {"i"});
  b.Node("Dropout", {"i"}, {"d"});
  b.Node("Identity", {"d"}, {"y"});
  b.Output("y");
  Graph g = b.Build();
  ASSERT_TRUE(RunImportPasses(g).ok());
  ASSERT_EQ(g.nodes.size(), 1u);
  EXPECT_EQ(g.nodes[0].op_type, "Relu");
  EXPECT_EQ(g.value(g.outputs[0]).name, "y");
  EXPECT_EQ(g.nodes[0].outputs[0], g.outputs[0]);
}

TEST(PassesTest, IdentityFromInputToOutputIsKept) {
  GraphBuilder b;
  b.Input("x", DType::kFloat32, {4});
  b.Node("Identity", {"x"}, {"y"});
  b.Output("y");
  Graph g = b.Build();
  ASSERT_TRUE(RunImportPasses(g).ok());
  ASSERT_EQ(g.nodes.size(), 1u);
  EXPECT_EQ(RunOnce(g, {4}, 3).size(), 4u);
}

TEST(PassesTest, BatchNormFoldsIntoConvWithSameResults) {
  GraphBuilder b(13);
  b.Input("x", DType::kFloat32, {1, 3, 8, 8});
  b.Constant("w", RandomTensor({4, 3, 3, 3}, 1, 0.5f));
  b.Constant("bias", RandomTensor({4}, 2, 0.5f));
  b.Constant("scale", RandomTensor({4}, 3, 1.0f));
  b.Constant("beta", RandomTensor({4}, 4, 1.0f));
  b.Constant("mean", RandomTensor({4}, 5, 1.0f));
  Tensor var = RandomTensor({4}, 6, 1.0f);
  for (float& v : var.values<float>()) v = v * v + 0.1f;
  b.Constant("var", std::move(var));
  Attributes conv;
  conv.SetInts("pads", {1, 1, 1, 1});
  b.Node("Conv", {"x", "w", "bias"}, {"c"}, conv);
  Attributes bn;
  bn.SetFloat("epsilon", 1e-3f);
  b.Node("BatchNormalization", {"c", "scale", "beta", "mean", "var"}, {"y"}, bn);
  b.Output("y");
  Graph original = b.Build();
  ASSERT_TRUE(original.Validate().ok());
  const std::vector<float> want = RunOnce(original, {1, 3, 8, 8}, 7);

  Graph folded = original;
  ASSERT_TRUE(FoldBatchNormIntoConv(folded).ok());
  ASSERT_EQ(folded.nodes.size(), 1u);
  EXPECT_EQ(folded.nodes[0].op_type, "Conv");
  EXPECT_EQ(folded.value(folded.outputs[0]).name, "y");
  const std::vector<float> got = RunOnce(folded, {1, 3, 8, 8}, 7);
  ASSERT_EQ(got.size(), want.size());
  ASSERT_FALSE(got.empty());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-4) << i;
}

TEST(PassesTest, BatchNormWithSecondConsumerIsNotFolded) {
  GraphBuilder b(13);
  b.Input("x", DType::kFloat32, {1, 2, 4, 4});
  b.Constant("w", RandomTensor({2, 2, 1, 1}, 1, 1.0f));
  for (const char* n : {"s", "bb", "m", "v"}) b.Constant(n, RandomTensor({2}, 9, 0.0f));
  b.Node("Conv", {"x", "w"}, {"c"});
  b.Node("BatchNormalization", {"c", "s", "bb", "m", "v"}, {"y"});
  b.Node("Relu", {"c"}, {"z"});
  b.Output("y");
  b.Output("z");
  Graph g = b.Build();
  ASSERT_TRUE(FoldBatchNormIntoConv(g).ok());
  EXPECT_EQ(g.nodes.size(), 3u);
}

// x.view(x.size(0), -1) as PyTorch exports it: Shape -> Gather(0) -> Unsqueeze -> Concat(-1)
// -> Reshape. With a dynamic batch this folds only once the session fixes the input shape.
Graph PytorchFlatten() {
  GraphBuilder b(13);
  b.Input("x", DType::kFloat32, {-1, 2, 3, 4});
  b.Constant("zero", std::move(*Tensor::FromVector<int64_t>({}, std::vector<int64_t>{0})));
  b.Constant("axes", Ints({0}));
  b.Constant("minus_one", Ints({-1}));
  b.Node("Shape", {"x"}, {"shape"});
  Attributes gather;
  gather.SetInt("axis", 0);
  b.Node("Gather", {"shape", "zero"}, {"batch"}, gather);
  b.Node("Unsqueeze", {"batch", "axes"}, {"batch1"});
  Attributes concat;
  concat.SetInt("axis", 0);
  b.Node("Concat", {"batch1", "minus_one"}, {"target"}, concat);
  b.Node("Reshape", {"x", "target"}, {"y"});
  b.Output("y");
  Graph g = b.Build();
  EXPECT_TRUE(g.Validate().ok());
  return g;
}

TEST(PassesTest, ShapeSubgraphFoldsAtEachBatchSize) {
  for (int64_t batch : {1, 5}) {
    Graph g = PytorchFlatten();
    ASSERT_TRUE(PrepareGraph(g, {{"x", {batch, 2, 3, 4}}}, BuiltinOps()).ok());
    ASSERT_EQ(g.nodes.size(), 1u) << "the shape chain should fold away";
    EXPECT_EQ(g.nodes[0].op_type, "Reshape");
    EXPECT_EQ(g.value(g.outputs[0]).shape, (Shape{batch, 24}));
  }
  auto model = Model::FromGraph(PytorchFlatten());
  ASSERT_TRUE(model.ok());
  SessionOptions options;
  options.backend = "reference";
  options.input_shapes["x"] = {3, 2, 3, 4};
  auto session = Session::Create(*model, options);
  ASSERT_TRUE(session.ok()) << session.status().ToString();
  FillRandom((*session)->input(0), 1);
  ASSERT_TRUE((*session)->Run().ok());
  EXPECT_EQ((*session)->output(0).shape(), (Shape{3, 24}));
  EXPECT_EQ((*session)->output(0).data<float>()[30], (*session)->input(0).data<float>()[30]);
  ASSERT_TRUE((*session)->Reshape({{"x", {7, 2, 3, 4}}}).ok());
  EXPECT_EQ((*session)->output(0).shape(), (Shape{7, 24}));
}

TEST(PassesTest, PrepareRejectsBadInputShapes) {
  Graph g = PytorchFlatten();
  EXPECT_EQ(PrepareGraph(g, {{"x", {1, 2, 3}}}, BuiltinOps()).code(),
            StatusCode::kInvalidArgument);
  g = PytorchFlatten();
  Status s = PrepareGraph(g, {{"x", {1, 9, 3, 4}}}, BuiltinOps());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("dim 1"), std::string::npos);
  g = PytorchFlatten();
  s = PrepareGraph(g, {{"x", {1'000'000, 2'000'000, 3, 4}}}, BuiltinOps());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace hml::runtime

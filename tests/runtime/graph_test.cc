// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/runtime/graph.h"

#include <gtest/gtest.h>

#include "tests/testing/graph_builder.h"

namespace hml::runtime {
namespace {

using testing::GraphBuilder;

TEST(GraphTest, TopologicalSortReordersAndDetectsCycles) {
  GraphBuilder b;
  b.Input("x", DType::kFloat32, {2});
  b.Node("Relu", {"a"}, {"b"});  // consumes a value produced later
  b.Node("Relu", {"x"}, {"a"});
  b.Output("b");
  Graph g = b.Build();
  ASSERT_TRUE(g.Validate().ok());
  EXPECT_EQ(g.value(g.nodes[0].outputs[0]).name, "a");

  GraphBuilder c;
  c.Input("x", DType::kFloat32, {2});
  c.Node("Add", {"x", "q"}, {"p"});
  c.Node("Relu", {"p"}, {"q"});
  c.Output("q");
  Graph cyclic = c.Build();
  Status s = cyclic.Validate();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("cycle"), std::string::npos);
}

TEST(GraphTest, DeadCodeIsRemovedAndValuesCompacted) {
  GraphBuilder b;
  b.Input("x", DType::kFloat32, {2});
  b.Node("Relu", {"x"}, {"used"});
  b.Node("Sigmoid", {"x"}, {"unused"});
  b.Output("used");
  Graph g = b.Build();
  ASSERT_TRUE(g.Validate().ok());
  g.RemoveDeadCode();
  ASSERT_EQ(g.nodes.size(), 1u);
  EXPECT_EQ(g.nodes[0].op_type, "Relu");
  EXPECT_EQ(g.FindValue("unused"), kNoValue);
  EXPECT_EQ(g.values.size(), 2u);
  EXPECT_EQ(g.value(g.outputs[0]).name, "used");
}

TEST(GraphTest, ValidateRejectsMismatchedInitializerAndMissingOutputs) {
  GraphBuilder b;
  b.Input("x", DType::kFloat32, {2});
  b.Node("Relu", {"x"}, {"y"});
  Graph no_outputs = b.Build();
  EXPECT_EQ(no_outputs.Validate().code(), StatusCode::kInvalidArgument);

  b.Output("y");
  Graph g = b.Build();
  const ValueId c = g.AddConstant("c", std::move(*Tensor::Allocate(DType::kFloat32, {3})));
  g.value(c).shape = {4};
  Status s = g.Validate();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("initializer 'c'"), std::string::npos);
}

}  // namespace
}  // namespace hml::runtime

// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "hml/runtime/model.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "hml/runtime/session.h"
#include "hml/runtime/tensor_util.h"
#include "tests/testing/models.h"

namespace hml {
namespace {

TEST(ModelTest, LoadSaveRoundTripAndErrorsNamePath) {
  auto model = Model::FromOnnx(testing::Cnn28Onnx());
  ASSERT_TRUE(model.ok());
  EXPECT_EQ(model->opset(), 13);
  ASSERT_EQ(model->inputs().size(), 1u);
  EXPECT_EQ(model->inputs()[0].shape, (Shape{-1, 1, 28, 28}));
  EXPECT_EQ(model->outputs()[0].name, "probs");
  char dir[] = "/tmp/hml_model_test_XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string path = std::string(dir) + "/cnn28.onnx";
  ASSERT_TRUE(model->Save(path).ok());
  auto back = Model::Load(path);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->graph().nodes.size(), model->graph().nodes.size());
  auto missing = Model::Load(std::string(dir) + "/nope.onnx");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("nope.onnx"), std::string::npos);
}

TEST(ModelTest, SplitExecutionEqualsFullRun) {
  auto model = Model::FromOnnx(testing::Cnn28Onnx());
  ASSERT_TRUE(model.ok());
  auto analysis = model->Analyze();
  ASSERT_TRUE(analysis.ok()) << analysis.status().ToString();
  ASSERT_EQ(analysis->nodes.size(), 6u);
  ASSERT_EQ(analysis->cut_points.size(), 5u);
  // After MaxPool (node 2) only the pooled tensor crosses: 8*14*14 floats.
  const CutPoint& cut = analysis->cut_points[2];
  EXPECT_EQ(cut.tensors, (std::vector<std::string>{"pool"}));
  EXPECT_EQ(cut.bytes, 8 * 14 * 14 * 4);
  EXPECT_EQ(cut.flops_before + cut.flops_after, analysis->total_flops);
  EXPECT_EQ(analysis->nodes[0].flops, 2 * 8 * 28 * 28 * 9);
  EXPECT_EQ(analysis->nodes[4].flops, 2 * 10 * 1568);
  EXPECT_EQ(analysis->total_params, 8 * 9 + 8 + 10 * 1568 + 10);

  auto head = model->Slice({}, cut.tensors);
  ASSERT_TRUE(head.ok()) << head.status().ToString();
  auto tail = model->Slice(cut.tensors, {});
  ASSERT_TRUE(tail.ok()) << tail.status().ToString();
  EXPECT_EQ(tail->inputs()[0].shape, (Shape{1, 8, 14, 14}));

  auto full = Session::Create(*model, {});
  auto s1 = Session::Create(*head, {});
  auto s2 = Session::Create(*tail, {});
  ASSERT_TRUE(full.ok() && s1.ok() && s2.ok());
  FillRandom((*full)->input(0), 9);
  FillRandom((*s1)->input(0), 9);
  ASSERT_TRUE((*full)->Run().ok());
  ASSERT_TRUE((*s1)->Run().ok());
  ASSERT_EQ((*s1)->output(0).shape(), (Shape{1, 8, 14, 14}));
  std::copy((*s1)->output(0).data<float>(), (*s1)->output(0).data<float>() + 8 * 14 * 14,
            (*s2)->input(0).data<float>());
  ASSERT_TRUE((*s2)->Run().ok());
  for (int j = 0; j < 10; ++j) {
    EXPECT_FLOAT_EQ((*s2)->output(0).data<float>()[j], (*full)->output(0).data<float>()[j]);
  }
}

TEST(ModelTest, SliceRejectsInsufficientInputs) {
  auto model = Model::FromOnnx(testing::Cnn28Onnx());
  ASSERT_TRUE(model.ok());
  // "pool" comes after "relu": it cannot produce it.
  std::vector<std::string> in = {"pool"}, out = {"relu"};
  auto bad = model->Slice(in, out);
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  std::vector<std::string> unknown = {"nope"};
  EXPECT_EQ(model->Slice(unknown, {}).status().code(), StatusCode::kInvalidArgument);
}

TEST(ModelTest, OutputsAreTypedEvenWhenTheGraphDoesNotSayHow) {
  // Cnn28Graph declares no output type; the model infers it, keeping the batch dim dynamic.
  runtime::Graph g = testing::Cnn28Graph();
  g.value(g.inputs[0]).shape[0] = -1;
  ASSERT_EQ(g.value(g.outputs[0]).dtype, DType::kUndefined);
  auto model = Model::FromGraph(g);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  ASSERT_EQ(model->outputs().size(), 1u);
  EXPECT_EQ(model->outputs()[0].dtype, DType::kFloat32);
  EXPECT_EQ(model->outputs()[0].shape, (Shape{-1, 10}));
}

}  // namespace
}  // namespace hml

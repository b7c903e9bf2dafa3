// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The IR -> LibTorch translator against the runtime's reference backend (the oracle).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "hml/runtime/model.h"
#include "hml/runtime/session.h"
#include "src/train/graph_module.h"
#include "tests/testing/graph_builder.h"
#include "tests/testing/models.h"

namespace hml::train {
namespace {

using ::testing::HasSubstr;
using testing::GraphBuilder;
using testing::RandomTensor;

Tensor Ints(Shape shape, std::vector<int64_t> v) {
  return std::move(*Tensor::FromVector<int64_t>(std::move(shape), v));
}
Tensor Floats(Shape shape, std::vector<float> v) {
  return std::move(*Tensor::FromVector<float>(std::move(shape), v));
}

// A graph with every op of the training subset:
// x[2,3,8,8] -> Conv(pad 1) -> BatchNorm -> Clip(0,6) -> MaxPool 2x2 -> Conv(asymmetric pads)
// -> Add(residual) -> Relu -> {AveragePool 2x2 (pads), GlobalAveragePool}
// AveragePool -> Flatten -> Gemm(transB); GlobalAveragePool -> Reshape [0,-1] -> MatMul
// -> Add -> Dropout -> Softmax. Outputs: the logits and the probabilities.
runtime::Graph EveryOpGraph() {
  GraphBuilder b(17);
  b.Input("x", DType::kFloat32, {2, 3, 8, 8});
  b.Constant("c1.w", RandomTensor({4, 3, 3, 3}, 1, 0.4f));
  b.Constant("c1.b", RandomTensor({4}, 2, 0.1f));
  b.Constant("bn.scale", Floats({4}, {1.2f, 0.8f, 1.0f, 1.5f}));
  b.Constant("bn.bias", Floats({4}, {0.1f, -0.2f, 0.3f, 0.0f}));
  b.Constant("bn.mean", Floats({4}, {0.05f, -0.1f, 0.2f, 0.0f}));
  b.Constant("bn.var", Floats({4}, {0.9f, 1.1f, 0.5f, 2.0f}));
  b.Constant("clip.min", Floats({}, {0.0f}));
  b.Constant("clip.max", Floats({}, {6.0f}));
  b.Constant("c2.w", RandomTensor({4, 4, 2, 2}, 3, 0.3f));
  b.Constant("c2.b", RandomTensor({4}, 4, 0.1f));
  b.Constant("fc.w", RandomTensor({5, 16}, 5, 0.3f));
  b.Constant("fc.b", RandomTensor({5}, 6, 0.1f));
  b.Constant("shape", Ints({2}, {0, -1}));
  b.Constant("mm.w", RandomTensor({4, 5}, 7, 0.3f));
  b.Constant("bias", RandomTensor({5}, 8, 0.1f));

  runtime::Attributes conv1;
  conv1.SetInts("pads", {1, 1, 1, 1});
  b.Node("Conv", {"x", "c1.w", "c1.b"}, {"c1"}, conv1);
  runtime::Attributes bn;
  bn.SetFloat("epsilon", 1e-3f);
  b.Node("BatchNormalization", {"c1", "bn.scale", "bn.bias", "bn.mean", "bn.var"}, {"bn"}, bn);
  b.Node("Clip", {"bn", "clip.min", "clip.max"}, {"clip"});
  runtime::Attributes mp;
  mp.SetInts("kernel_shape", {2, 2});
  mp.SetInts("strides", {2, 2});
  b.Node("MaxPool", {"clip"}, {"mp"}, mp);  // [2,4,4,4]
  runtime::Attributes conv2;
  conv2.SetInts("pads", {0, 0, 1, 1});  // 2x2 kernel, same size output
  b.Node("Conv", {"mp", "c2.w", "c2.b"}, {"c2"}, conv2);
  b.Node("Add", {"c2", "mp"}, {"res"});
  b.Node("Relu", {"res"}, {"r"});
  runtime::Attributes ap;
  ap.SetInts("kernel_shape", {3, 3});
  ap.SetInts("strides", {2, 2});
  ap.SetInts("pads", {1, 1, 1, 1});
  b.Node("AveragePool", {"r"}, {"ap"}, ap);  // [2,4,2,2]
  b.Node("GlobalAveragePool", {"r"}, {"gap"});  // [2,4,1,1]
  runtime::Attributes flat;
  flat.SetInt("axis", 1);
  b.Node("Flatten", {"ap"}, {"f"}, flat);  // [2,16]
  runtime::Attributes gemm;
  gemm.SetInt("transB", 1);
  gemm.SetFloat("alpha", 0.5f);
  b.Node("Gemm", {"f", "fc.w", "fc.b"}, {"g"}, gemm);  // [2,5]
  b.Node("Reshape", {"gap", "shape"}, {"gr"});         // [2,4]
  b.Node("MatMul", {"gr", "mm.w"}, {"mm"});             // [2,5]
  b.Node("Add", {"g", "mm"}, {"s0"});
  b.Node("Add", {"s0", "bias"}, {"s"});
  b.Node("Dropout", {"s"}, {"d"});
  b.Node("Softmax", {"d"}, {"probs"});
  b.Output("s");
  b.Output("probs");
  runtime::Graph g = b.Build();
  g.name = "every_op";
  return g;
}

std::vector<Tensor> RunReference(const runtime::Graph& graph, const Tensor& x) {
  auto model = Model::FromGraph(graph);
  EXPECT_TRUE(model.ok()) << model.status().ToString();
  SessionOptions options;
  options.backend = "reference";
  auto session = Session::Create(*model, options);
  EXPECT_TRUE(session.ok()) << session.status().ToString();
  std::vector<Tensor> inputs;
  inputs.push_back(std::move(*x.Clone()));
  auto out = (*session)->Run(inputs);
  EXPECT_TRUE(out.ok()) << out.status().ToString();
  return std::move(*out);
}

void ExpectNear(const Tensor& a, const Tensor& b, float tol) {
  ASSERT_EQ(a.shape(), b.shape());
  for (int64_t i = 0; i < a.num_elements(); ++i) {
    EXPECT_NEAR(a.data<float>()[i], b.data<float>()[i], tol) << "element " << i;
  }
}

TEST(GraphModuleTest, EveryTrainingOpMatchesReferenceBackend) {
  const runtime::Graph graph = EveryOpGraph();
  auto module = GraphModule::Create(graph);
  ASSERT_TRUE(module.ok()) << module.status().ToString();
  EXPECT_FALSE((*module)->training());
  const Tensor x = RandomTensor({2, 3, 8, 8}, 42, 1.0f);
  std::vector<Tensor> in;
  in.push_back(std::move(*x.Clone()));
  auto got = (*module)->Forward(in);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  std::vector<Tensor> want = RunReference(graph, x);
  ASSERT_EQ(got->size(), 2u);
  ASSERT_EQ(want.size(), 2u);
  ExpectNear((*got)[0], want[0], 1e-4f);
  ExpectNear((*got)[1], want[1], 1e-4f);
  // The logits are not trivially small: the comparison means something.
  float max_abs = 0.0f;
  for (float v : (*got)[0].values<float>()) max_abs = std::max(max_abs, std::fabs(v));
  EXPECT_GT(max_abs, 0.05f);
}

TEST(GraphModuleTest, Cnn28MatchesReferenceBackend) {
  const runtime::Graph graph = testing::Cnn28Graph();
  auto module = GraphModule::Create(graph);
  ASSERT_TRUE(module.ok()) << module.status().ToString();
  const Tensor x = RandomTensor({1, 1, 28, 28}, 5, 1.0f);
  std::vector<Tensor> in;
  in.push_back(std::move(*x.Clone()));
  auto got = (*module)->Forward(in);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ExpectNear((*got)[0], RunReference(graph, x)[0], 1e-4f);
}

// Older-opset forms and less common attributes: Clip bounds as attributes (opset < 11),
// Softmax's coerce-to-2D semantics on a 4-D input (opset < 13), auto_pad SAME_UPPER with
// stride 2 (asymmetric pads), MaxPool ceil_mode, AveragePool with
// count_include_pad, Gemm with transA and beta, Dropout's ratio attribute.
runtime::Graph OldOpsetGraph() {
  GraphBuilder b(10);
  b.Input("x", DType::kFloat32, {2, 2, 7, 7});
  b.Constant("w", RandomTensor({3, 2, 3, 3}, 21, 0.4f));
  b.Constant("a", RandomTensor({16, 3}, 22, 0.5f));
  b.Constant("c", RandomTensor({1, 3}, 23, 0.5f));
  runtime::Attributes conv;
  conv.SetString("auto_pad", "SAME_UPPER");
  conv.SetInts("strides", {2, 2});
  b.Node("Conv", {"x", "w"}, {"c1"}, conv);  // [2,3,4,4], no bias
  runtime::Attributes clip;
  clip.SetFloat("min", -0.5f);
  clip.SetFloat("max", 0.7f);
  b.Node("Clip", {"c1"}, {"cl"}, clip);
  runtime::Attributes mp;
  mp.SetInts("kernel_shape", {2, 2});
  mp.SetInts("strides", {2, 2});
  mp.SetInt("ceil_mode", 1);
  b.Node("MaxPool", {"x"}, {"mp"}, mp);  // [2,2,4,4]
  runtime::Attributes ap;
  ap.SetInts("kernel_shape", {3, 3});
  ap.SetInts("pads", {1, 1, 1, 1});
  ap.SetInt("count_include_pad", 1);
  b.Node("AveragePool", {"cl"}, {"ap"}, ap);  // [2,3,4,4]
  runtime::Attributes sm;
  sm.SetInt("axis", 1);
  b.Node("Softmax", {"ap"}, {"sm"}, sm);  // softmax over the 48 values of each sample
  runtime::Attributes dr;
  dr.SetFloat("ratio", 0.3f);
  b.Node("Dropout", {"mp"}, {"dr"}, dr);
  runtime::Attributes fl;
  fl.SetInt("axis", 3);
  b.Node("Flatten", {"dr"}, {"f"}, fl);  // [16,4]
  runtime::Attributes gemm;
  gemm.SetInt("transA", 1);
  gemm.SetFloat("beta", 0.5f);
  b.Node("Gemm", {"f", "a", "c"}, {"g"}, gemm);  // f^T [4,16] x a [16,3] -> [4,3]
  b.Output("sm");
  b.Output("g");
  return b.Build();
}

TEST(GraphModuleTest, OlderOpsetFormsMatchReferenceBackend) {
  const runtime::Graph graph = OldOpsetGraph();
  auto module = GraphModule::Create(graph);
  ASSERT_TRUE(module.ok()) << module.status().ToString();
  const Tensor x = RandomTensor({2, 2, 7, 7}, 25, 1.0f);
  std::vector<Tensor> in;
  in.push_back(std::move(*x.Clone()));
  auto got = (*module)->Forward(in);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  std::vector<Tensor> want = RunReference(graph, x);
  ASSERT_EQ(got->size(), 2u);
  ExpectNear((*got)[0], want[0], 1e-4f);
  ExpectNear((*got)[1], want[1], 1e-4f);
  EXPECT_EQ((*got)[1].shape(), (Shape{4, 3}));
}

TEST(GraphModuleTest, ParametersAndBuffersAreTheWeights) {
  auto module = GraphModule::Create(EveryOpGraph());
  ASSERT_TRUE(module.ok());
  std::vector<std::string> names = (*module)->parameter_names();
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"bias", "bn.bias", "bn.scale", "c1.b", "c1.w",
                                             "c2.b", "c2.w", "fc.b", "fc.w", "mm.w"}));
  EXPECT_EQ((*module)->num_parameters(), 108 + 4 + 4 + 4 + 64 + 4 + 80 + 5 + 20 + 5);
}

TEST(GraphModuleTest, WriteBackOfUnchangedWeightsIsBitIdentical) {
  const runtime::Graph graph = EveryOpGraph();
  auto module = GraphModule::Create(graph);
  ASSERT_TRUE(module.ok());
  auto exported = (*module)->ExportGraph();
  ASSERT_TRUE(exported.ok()) << exported.status().ToString();
  ASSERT_EQ(exported->values.size(), graph.values.size());
  ASSERT_EQ(exported->nodes.size(), graph.nodes.size());
  int constants = 0;
  for (const runtime::Value& v : graph.values) {
    if (!v.is_constant()) continue;
    ++constants;
    const runtime::ValueId id = exported->FindValue(v.name);
    ASSERT_NE(id, runtime::kNoValue) << v.name;
    const Tensor& a = *v.constant;
    const Tensor& b = *exported->value(id).constant;
    ASSERT_EQ(a.dtype(), b.dtype()) << v.name;
    ASSERT_EQ(a.shape(), b.shape()) << v.name;
    EXPECT_EQ(std::memcmp(a.raw_data(), b.raw_data(), a.byte_size()), 0) << v.name;
  }
  EXPECT_EQ(constants, 15);
  // The exported graph is a valid model that runs and gives the same outputs.
  const Tensor x = RandomTensor({2, 3, 8, 8}, 43, 1.0f);
  std::vector<Tensor> a = RunReference(graph, x), b = RunReference(*exported, x);
  EXPECT_EQ(std::memcmp(a[1].raw_data(), b[1].raw_data(), a[1].byte_size()), 0);
}

TEST(GraphModuleTest, TrainingModeUpdatesBatchNormStatisticsAndWritesThemBack) {
  const runtime::Graph graph = EveryOpGraph();
  auto module = GraphModule::Create(graph);
  ASSERT_TRUE(module.ok());
  (*module)->SetTraining(true);
  std::vector<Tensor> in;
  in.push_back(RandomTensor({2, 3, 8, 8}, 44, 1.0f));
  ASSERT_TRUE((*module)->Forward(in).ok());
  auto exported = (*module)->ExportGraph();
  ASSERT_TRUE(exported.ok());
  const Tensor& before = *graph.value(graph.FindValue("bn.mean")).constant;
  const Tensor& after = *exported->value(exported->FindValue("bn.mean")).constant;
  EXPECT_NE(std::memcmp(before.raw_data(), after.raw_data(), before.byte_size()), 0);
}

TEST(GraphModuleTest, OpOutsideTheSubsetIsUnimplementedNamingNodeAndOp) {
  GraphBuilder b(17);
  b.Input("x", DType::kFloat32, {1, 4});
  b.Node("Relu", {"x"}, {"r"});
  b.Node("Sigmoid", {"r"}, {"y"});
  b.Output("y");
  runtime::Graph g = b.Build();
  g.nodes[1].name = "gate";
  auto module = GraphModule::Create(g);
  ASSERT_FALSE(module.ok());
  EXPECT_EQ(module.status().code(), StatusCode::kUnimplemented);
  EXPECT_THAT(std::string(module.status().message()), HasSubstr("gate"));
  EXPECT_THAT(std::string(module.status().message()), HasSubstr("Sigmoid"));
}

TEST(GraphModuleTest, NonConstantReshapeShapeIsUnimplemented) {
  GraphBuilder b(17);
  b.Input("x", DType::kFloat32, {1, 4});
  b.Input("shape", DType::kInt64, {2});
  b.Node("Reshape", {"x", "shape"}, {"y"});
  b.Output("y");
  auto module = GraphModule::Create(b.Build());
  ASSERT_FALSE(module.ok());
  EXPECT_EQ(module.status().code(), StatusCode::kUnimplemented);
  EXPECT_THAT(std::string(module.status().message()), HasSubstr("Reshape"));
}

TEST(GraphModuleTest, TorchErrorsBecomeStatusNamingTheNode) {
  auto module = GraphModule::Create(testing::Cnn28Graph());
  ASSERT_TRUE(module.ok());
  std::vector<Tensor> in;
  in.push_back(RandomTensor({1, 2, 28, 28}, 1, 1.0f));  // 2 channels, the conv wants 1
  auto out = (*module)->Forward(in);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(out.status().message()), HasSubstr("Conv"));
}

}  // namespace
}  // namespace hml::train

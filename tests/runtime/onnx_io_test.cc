// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/runtime/onnx_io.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "hml/runtime/model.h"
#include "onnx/onnx_pb.h"
#include "tests/testing/models.h"

namespace hml::runtime {
namespace {

// A minimal valid model: y = Relu(x), x float [2,3], plus an initializer `w`.
onnx::ModelProto ReluModel() {
  onnx::ModelProto m;
  m.set_ir_version(8);
  auto* op = m.add_opset_import();
  op->set_version(13);
  auto* g = m.mutable_graph();
  g->set_name("relu");
  auto* in = g->add_input();
  in->set_name("x");
  auto* tt = in->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(onnx::TensorProto::FLOAT);
  tt->mutable_shape()->add_dim()->set_dim_param("batch");
  tt->mutable_shape()->add_dim()->set_dim_value(3);
  auto* node = g->add_node();
  node->set_op_type("Relu");
  node->set_name("r");
  node->add_input("x");
  node->add_output("y");
  g->add_output()->set_name("y");
  return m;
}

std::string Bytes(const onnx::ModelProto& m) { return m.SerializeAsString(); }

TEST(OnnxImportTest, ReadsInputsNodesAndDynamicDims) {
  auto g = ParseOnnxModel(Bytes(ReluModel()));
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ(g->opset, 13);
  ASSERT_EQ(g->inputs.size(), 1u);
  EXPECT_EQ(g->value(g->inputs[0]).shape, (Shape{-1, 3}));
  ASSERT_EQ(g->nodes.size(), 1u);
  EXPECT_EQ(g->nodes[0].op_type, "Relu");
}

TEST(OnnxImportTest, RejectsTruncatedAndCorruptBytes) {
  const std::string good = Bytes(ReluModel());
  auto truncated = ParseOnnxModel(good.substr(0, good.size() / 2));
  ASSERT_FALSE(truncated.ok());
  EXPECT_EQ(truncated.status().code(), StatusCode::kInvalidArgument);
  std::string corrupt = good;
  for (size_t i = 0; i < corrupt.size(); i += 3) corrupt[i] = static_cast<char>(0xff);
  EXPECT_FALSE(ParseOnnxModel(corrupt).ok());
  EXPECT_EQ(ParseOnnxModel("").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseOnnxModel("not a model at all").status().code(), StatusCode::kInvalidArgument);
}

TEST(OnnxImportTest, RejectsUnsupportedOpsetAndTypes) {
  onnx::ModelProto m = ReluModel();
  m.mutable_opset_import(0)->set_version(5);
  auto old = ParseOnnxModel(Bytes(m));
  EXPECT_EQ(old.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(old.status().message().find("opset 5"), std::string::npos);

  m = ReluModel();
  m.mutable_graph()->mutable_input(0)->mutable_type()->mutable_tensor_type()->set_elem_type(
      onnx::TensorProto::DOUBLE);
  auto dbl = ParseOnnxModel(Bytes(m));
  EXPECT_EQ(dbl.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(dbl.status().message().find("DOUBLE"), std::string::npos);
}

TEST(OnnxImportTest, InitializerSizeIsCheckedBeforeAllocating) {
  onnx::ModelProto m = ReluModel();
  auto* init = m.mutable_graph()->add_initializer();
  init->set_name("huge");
  init->set_data_type(onnx::TensorProto::FLOAT);
  init->add_dims(1'000'000);
  init->add_dims(1'000'000);
  init->set_raw_data(std::string(16, '\0'));
  auto r = ParseOnnxModel(Bytes(m));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("huge"), std::string::npos);

  m = ReluModel();
  init = m.mutable_graph()->add_initializer();
  init->set_name("short");
  init->set_data_type(onnx::TensorProto::FLOAT);
  init->add_dims(4);
  init->set_raw_data(std::string(12, '\0'));
  r = ParseOnnxModel(Bytes(m));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("'short'"), std::string::npos);
  EXPECT_NE(r.status().message().find("12 bytes"), std::string::npos);

  m = ReluModel();
  init = m.mutable_graph()->add_initializer();
  init->set_name("neg");
  init->set_data_type(onnx::TensorProto::FLOAT);
  init->add_dims(-3);
  EXPECT_EQ(ParseOnnxModel(Bytes(m)).status().code(), StatusCode::kInvalidArgument);
}

TEST(OnnxImportTest, RejectsMissingInputsCyclesAndDuplicates) {
  onnx::ModelProto m = ReluModel();
  m.mutable_graph()->mutable_node(0)->set_input(0, "ghost");
  auto missing = ParseOnnxModel(Bytes(m));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("ghost"), std::string::npos);

  m = ReluModel();
  // a = Relu(b), b = Relu(a): a cycle.
  auto* g = m.mutable_graph();
  g->mutable_node(0)->set_input(0, "b");
  g->mutable_node(0)->set_output(0, "a");
  auto* n2 = g->add_node();
  n2->set_op_type("Relu");
  n2->set_name("second");
  n2->add_input("a");
  n2->add_output("b");
  g->mutable_output(0)->set_name("b");
  auto cyclic = ParseOnnxModel(Bytes(m));
  ASSERT_FALSE(cyclic.ok());
  EXPECT_NE(cyclic.status().message().find("cycle"), std::string::npos);

  m = ReluModel();
  auto* dup = m.mutable_graph()->add_node();
  *dup = m.graph().node(0);
  dup->set_name("again");
  auto twice = ParseOnnxModel(Bytes(m));
  ASSERT_FALSE(twice.ok());
  EXPECT_NE(twice.status().message().find("produced by two nodes"), std::string::npos);

  m = ReluModel();
  m.mutable_graph()->mutable_output(0)->set_name("nowhere");
  EXPECT_FALSE(ParseOnnxModel(Bytes(m)).ok());
}

TEST(OnnxImportTest, ControlFlowAttributesAreUnimplemented) {
  onnx::ModelProto m = ReluModel();
  auto* attr = m.mutable_graph()->mutable_node(0)->add_attribute();
  attr->set_name("body");
  attr->set_type(onnx::AttributeProto::GRAPH);
  attr->mutable_g()->set_name("sub");
  EXPECT_EQ(ParseOnnxModel(Bytes(m)).status().code(), StatusCode::kUnimplemented);
}

TEST(OnnxImportTest, ConstantNodesBecomeConstants) {
  onnx::ModelProto m = ReluModel();
  auto* g = m.mutable_graph();
  auto* c = g->add_node();
  c->set_op_type("Constant");
  c->add_output("k");
  auto* a = c->add_attribute();
  a->set_name("value_floats");
  a->set_type(onnx::AttributeProto::FLOATS);
  a->add_floats(1.5f);
  a->add_floats(-2.0f);
  auto r = ParseOnnxModel(Bytes(m));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const ValueId k = r->FindValue("k");
  ASSERT_NE(k, kNoValue);
  ASSERT_TRUE(r->value(k).is_constant());
  EXPECT_EQ(r->value(k).constant->data<float>()[1], -2.0f);
}

TEST(OnnxExportTest, RoundTripKeepsGraphAndWeights) {
  Graph g = testing::Cnn28Graph();
  auto bytes = SerializeOnnxModel(g);
  ASSERT_TRUE(bytes.ok());
  auto back = ParseOnnxModel(*bytes);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ASSERT_EQ(back->nodes.size(), g.nodes.size());
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    EXPECT_EQ(back->nodes[i].op_type, g.nodes[i].op_type);
    EXPECT_EQ(back->nodes[i].attrs.GetInts("pads"), g.nodes[i].attrs.GetInts("pads"));
  }
  const Tensor& w0 = *g.value(g.FindValue("fc.w")).constant;
  const Tensor& w1 = *back->value(back->FindValue("fc.w")).constant;
  ASSERT_EQ(w0.shape(), w1.shape());
  EXPECT_EQ(std::memcmp(w0.raw_data(), w1.raw_data(), w0.byte_size()), 0);
  EXPECT_EQ(back->value(back->inputs[0]).shape, (Shape{-1, 1, 28, 28}));
}

TEST(OnnxExportTest, GraphOutputsAlwaysCarryTypeAndShape) {
  // ReluModel declares output 'y' without a type: export infers float [batch, 3] (the dynamic
  // batch dim stays dynamic), and import then reads the declared type back.
  auto g = ParseOnnxModel(Bytes(ReluModel()));
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ(g->value(g->outputs[0]).dtype, DType::kUndefined);
  auto bytes = SerializeOnnxModel(*g);
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  onnx::ModelProto proto;
  ASSERT_TRUE(proto.ParseFromString(*bytes));
  const auto& tt = proto.graph().output(0).type().tensor_type();
  EXPECT_EQ(tt.elem_type(), onnx::TensorProto::FLOAT);
  ASSERT_EQ(tt.shape().dim_size(), 2);
  EXPECT_FALSE(tt.shape().dim(0).has_dim_value());
  EXPECT_EQ(tt.shape().dim(1).dim_value(), 3);
  auto back = ParseOnnxModel(*bytes);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  const Value& y = back->value(back->outputs[0]);
  EXPECT_EQ(y.dtype, DType::kFloat32);
  EXPECT_TRUE(y.shape_known);
  EXPECT_EQ(y.shape, (Shape{-1, 3}));
}

TEST(OnnxTensorTest, RoundTripAndTypedFields) {
  Tensor t = std::move(*Tensor::FromVector<int64_t>({2, 2}, std::vector<int64_t>{1, -2, 3, 4}));
  auto bytes = SerializeOnnxTensor(t, "t");
  ASSERT_TRUE(bytes.ok());
  auto back = ParseOnnxTensor(*bytes);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->data<int64_t>()[1], -2);

  onnx::TensorProto p;
  p.set_data_type(onnx::TensorProto::INT8);
  p.add_dims(2);
  p.add_int32_data(5);
  p.add_int32_data(300);  // out of int8 range
  auto bad = ParseOnnxTensor(p.SerializeAsString());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace hml::runtime

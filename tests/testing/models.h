// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Small models built in code, for tests and benchmarks.
#ifndef HML_TESTS_TESTING_MODELS_H_
#define HML_TESTS_TESTING_MODELS_H_

#include <string>

#include "hml/runtime/model.h"
#include "hml/runtime/tensor_util.h"
#include "src/runtime/onnx_io.h"
#include "tests/testing/graph_builder.h"

namespace hml::testing {

inline Tensor RandomTensor(Shape shape, uint64_t seed, float scale) {
  Tensor t = std::move(*Tensor::Allocate(DType::kFloat32, std::move(shape)));
  FillRandom(t, seed);
  for (float& v : t.values<float>()) v *= scale;
  return t;
}

// The 28x28 CNN: input [N,1,28,28] (N dynamic) -> Conv 3x3 (1->8, pad 1) -> Relu -> MaxPool 2x2
// -> Flatten -> Gemm (1568->10, transB) -> Softmax -> probs [N,10]. Deterministic weights.
// The head both test CNNs share: `from` [N,8,28,28] -> MaxPool 2x2 "pool" -> Flatten "flat" ->
// Gemm with the constants "fc.w" [10,1568] and "fc.b" (transB) "logits" -> Softmax "probs", the
// graph's output.
inline void AddClassifierHead(GraphBuilder& b, const std::string& from) {
  runtime::Attributes pool;
  pool.SetInts("kernel_shape", {2, 2});
  pool.SetInts("strides", {2, 2});
  b.Node("MaxPool", {from}, {"pool"}, pool);
  runtime::Attributes flat;
  flat.SetInt("axis", 1);
  b.Node("Flatten", {"pool"}, {"flat"}, flat);
  runtime::Attributes gemm;
  gemm.SetInt("transB", 1);
  b.Node("Gemm", {"flat", "fc.w", "fc.b"}, {"logits"}, gemm);
  runtime::Attributes softmax;
  softmax.SetInt("axis", 1);
  b.Node("Softmax", {"logits"}, {"probs"}, softmax);
  b.Output("probs");
}

// A linear classifier for 4-feature, 3-class data (datasets.h Blobs): input "x" [N,4] (N
// dynamic) -> Gemm with "fc.w" [3,4] (transB) and "fc.b" [3] "logits" -> Softmax "probs".
// Small deterministic weights, so it starts near chance.
inline runtime::Graph LinearClassifierGraph() {
  GraphBuilder b(13);
  b.Input("x", DType::kFloat32, {-1, 4});
  b.Constant("fc.w", RandomTensor({3, 4}, 5, 0.1f));
  b.Constant("fc.b", RandomTensor({3}, 6, 0.1f));
  runtime::Attributes gemm;
  gemm.SetInt("transB", 1);
  b.Node("Gemm", {"x", "fc.w", "fc.b"}, {"logits"}, gemm);
  runtime::Attributes softmax;
  softmax.SetInt("axis", 1);
  b.Node("Softmax", {"logits"}, {"probs"}, softmax);
  b.Output("probs");
  runtime::Graph g = b.Build();
  g.name = "linear";
  return g;
}

inline runtime::Graph Cnn28Graph(int64_t opset = 13) {
  GraphBuilder b(opset);
  b.Input("image", DType::kFloat32, {-1, 1, 28, 28});
  b.Constant("conv.w", RandomTensor({8, 1, 3, 3}, 11, 0.5f));
  b.Constant("conv.b", RandomTensor({8}, 12, 0.1f));
  b.Constant("fc.w", RandomTensor({10, 1568}, 13, 0.05f));
  b.Constant("fc.b", RandomTensor({10}, 14, 0.1f));
  runtime::Attributes conv;
  conv.SetInts("kernel_shape", {3, 3});
  conv.SetInts("pads", {1, 1, 1, 1});
  b.Node("Conv", {"image", "conv.w", "conv.b"}, {"conv"}, conv);
  b.Node("Relu", {"conv"}, {"relu"});
  AddClassifierHead(b, "relu");
  runtime::Graph g = b.Build();
  g.name = "cnn28";
  return g;
}

// A CNN with two branches, so that some of its cut points hold two tensors: input
// image [N,1,28,28] (N dynamic) -> Conv 3x3 (1->4, pad 1) "a" -> Relu "ra", and in parallel
// Conv 3x3 (1->4, pad 1) "b" -> Relu "rb"; Concat(ra, rb) on channels "cat" [N,8,28,28] ->
// MaxPool 2x2 "pool" -> Flatten "flat" -> Gemm (1568->10, transB) "logits" -> Softmax "probs".
// Its cut points (Model::Analyze) are {image, a}, {image, ra}, {ra, b}, {ra, rb}, {cat}, {pool},
// {flat}, {logits}. Deterministic weights.
inline runtime::Graph TwoBranchCnnGraph(int64_t opset = 13) {
  GraphBuilder b(opset);
  b.Input("image", DType::kFloat32, {-1, 1, 28, 28});
  b.Constant("a.w", RandomTensor({4, 1, 3, 3}, 21, 0.5f));
  b.Constant("a.b", RandomTensor({4}, 22, 0.1f));
  b.Constant("b.w", RandomTensor({4, 1, 3, 3}, 23, 0.5f));
  b.Constant("b.b", RandomTensor({4}, 24, 0.1f));
  b.Constant("fc.w", RandomTensor({10, 1568}, 25, 0.05f));
  b.Constant("fc.b", RandomTensor({10}, 26, 0.1f));
  runtime::Attributes conv;
  conv.SetInts("kernel_shape", {3, 3});
  conv.SetInts("pads", {1, 1, 1, 1});
  b.Node("Conv", {"image", "a.w", "a.b"}, {"a"}, conv);
  b.Node("Relu", {"a"}, {"ra"});
  b.Node("Conv", {"image", "b.w", "b.b"}, {"b"}, conv);
  b.Node("Relu", {"b"}, {"rb"});
  runtime::Attributes concat;
  concat.SetInt("axis", 1);
  b.Node("Concat", {"ra", "rb"}, {"cat"}, concat);
  AddClassifierHead(b, "cat");
  runtime::Graph g = b.Build();
  g.name = "two_branch_cnn";
  return g;
}

// The same CNN as serialized ONNX bytes.
inline std::string Cnn28Onnx(int64_t opset = 13) {
  return *runtime::SerializeOnnxModel(Cnn28Graph(opset));
}

}  // namespace hml::testing

#endif  // HML_TESTS_TESTING_MODELS_H_

// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Test helpers: build small graphs by name, and evaluate single nodes on the reference kernels.
#ifndef HML_TESTS_TESTING_GRAPH_BUILDER_H_
#define HML_TESTS_TESTING_GRAPH_BUILDER_H_

#include <initializer_list>
#include <string>
#include <vector>

#include "src/runtime/backends/reference/reference_backend.h"
#include "src/runtime/graph.h"
#include "src/runtime/op_registry.h"

namespace hml::testing {

class GraphBuilder {
 public:
  explicit GraphBuilder(int64_t opset = 17) { graph_.opset = opset; }

  GraphBuilder& Input(const std::string& name, DType dtype, Shape shape) {
    runtime::Value v;
    v.name = name;
    v.dtype = dtype;
    v.shape = std::move(shape);
    v.shape_known = true;
    graph_.inputs.push_back(graph_.AddValue(std::move(v)));
    return *this;
  }
  GraphBuilder& Constant(const std::string& name, Tensor tensor) {
    graph_.AddConstant(name, std::move(tensor));
    return *this;
  }
  // Adds a node; input names "" mean an absent optional input. Output values are created.
  GraphBuilder& Node(const std::string& op_type, std::vector<std::string> inputs,
                     std::vector<std::string> outputs, runtime::Attributes attrs = {},
                     const std::string& domain = "") {
    runtime::Node node;
    node.name = op_type + "_" + std::to_string(graph_.nodes.size());
    node.op_type = op_type;
    node.domain = domain;
    node.attrs = std::move(attrs);
    for (const std::string& in : inputs) {
      if (in.empty()) {
        node.inputs.push_back(runtime::kNoValue);
        continue;
      }
      runtime::ValueId id = graph_.FindValue(in);
      if (id == runtime::kNoValue) {  // produced by a node added later
        runtime::Value v;
        v.name = in;
        id = graph_.AddValue(std::move(v));
      }
      node.inputs.push_back(id);
    }
    for (const std::string& out : outputs) {
      if (out.empty()) {
        node.outputs.push_back(runtime::kNoValue);
        continue;
      }
      runtime::ValueId id = graph_.FindValue(out);
      if (id == runtime::kNoValue) {
        runtime::Value v;
        v.name = out;
        id = graph_.AddValue(std::move(v));
      }
      node.outputs.push_back(id);
    }
    graph_.nodes.push_back(std::move(node));
    return *this;
  }
  GraphBuilder& Output(const std::string& name) {
    graph_.outputs.push_back(graph_.FindValue(name));
    return *this;
  }
  runtime::Graph& graph() { return graph_; }
  runtime::Graph Build() { return graph_; }

 private:
  runtime::Graph graph_;
};

// Builds a one-node graph whose inputs are all constants, infers shapes and evaluates it on the
// reference kernels. Returns the node's outputs.
inline Result<std::vector<Tensor>> EvalOp(const std::string& op_type,
                                          std::vector<Tensor> inputs,
                                          runtime::Attributes attrs = {}, int num_outputs = 1,
                                          int64_t opset = 17, const std::string& domain = "") {
  GraphBuilder b(opset);
  std::vector<std::string> in_names;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i].empty()) {
      in_names.push_back("");
      continue;
    }
    std::string name = "in" + std::to_string(i);
    HML_ASSIGN_OR_RETURN(Tensor owned, inputs[i].Clone());
    b.Constant(name, std::move(owned));
    in_names.push_back(name);
  }
  std::vector<std::string> out_names;
  for (int i = 0; i < num_outputs; ++i) out_names.push_back("out" + std::to_string(i));
  b.Node(op_type, in_names, out_names, std::move(attrs), domain);
  for (const std::string& o : out_names) b.Output(o);
  runtime::Graph& g = b.graph();
  HML_RETURN_IF_ERROR(runtime::InferShapes(g, runtime::BuiltinOps()));
  return runtime::EvaluateNode(g, g.nodes[0]);
}

}  // namespace hml::testing

#endif  // HML_TESTS_TESTING_GRAPH_BUILDER_H_

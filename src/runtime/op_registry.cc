// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/runtime/op_registry.h"

namespace hml::runtime {
namespace {
std::string_view CanonicalDomain(std::string_view domain) {
  return domain == "ai.onnx" ? std::string_view() : domain;
}
}  // namespace

void InferContext::SetOutput(size_t i, DType dtype, Shape shape) {
  if (!has_output(i)) return;
  Value& v = graph_.value(node_.outputs[i]);
  v.dtype = dtype;
  v.shape = std::move(shape);
  v.shape_known = true;
}

Status InferContext::Error(std::string_view why) const {
  std::string msg = node_.Describe(node_index_) + ": ";
  msg += why;
  return InvalidArgumentError(msg);
}

void OpRegistry::Add(OpSchema schema) {
  schema.domain = std::string(CanonicalDomain(schema.domain));
  auto key = std::make_pair(schema.domain, schema.op_type);
  schemas_[key] = std::move(schema);
}

const OpSchema* OpRegistry::Find(std::string_view domain, std::string_view op_type) const {
  auto it = schemas_.find({std::string(CanonicalDomain(domain)), std::string(op_type)});
  return it == schemas_.end() ? nullptr : &it->second;
}

void RegisterBuiltinOps(OpRegistry& registry) {
  AddNnOps(registry);
  AddElementwiseOps(registry);
  AddTensorOps(registry);
}

const OpRegistry& BuiltinOps() {
  static const OpRegistry* registry = [] {
    auto* r = new OpRegistry();
    RegisterBuiltinOps(*r);
    return r;
  }();
  return *registry;
}

Status InferShapes(Graph& graph, const OpRegistry& ops) {
  for (size_t n = 0; n < graph.nodes.size(); ++n) HML_RETURN_IF_ERROR(InferNodeShapes(graph, n, ops));
  return Status::Ok();
}

Status InferNodeShapes(Graph& graph, size_t n, const OpRegistry& ops) {
  {
    Node& node = graph.nodes[n];
    const OpSchema* schema = ops.Find(node.domain, node.op_type);
    if (schema == nullptr) {
      return UnimplementedError(node.Describe(n) + ": op '" +
                                (node.domain.empty() ? "" : node.domain + ".") + node.op_type +
                                "' is not supported");
    }
    // Trailing absent inputs do not count towards the arity.
    int present_inputs = static_cast<int>(node.inputs.size());
    while (present_inputs > 0 && node.inputs[static_cast<size_t>(present_inputs - 1)] == kNoValue) {
      --present_inputs;
    }
    if (present_inputs < schema->min_inputs || present_inputs > schema->max_inputs) {
      return InvalidArgumentError(node.Describe(n) + ": has " + std::to_string(present_inputs) +
                                  " inputs, expected " + std::to_string(schema->min_inputs) +
                                  (schema->max_inputs != schema->min_inputs
                                       ? " to " + std::to_string(schema->max_inputs)
                                       : std::string()));
    }
    const int num_outputs = static_cast<int>(node.outputs.size());
    if (num_outputs < schema->min_outputs || num_outputs > schema->max_outputs) {
      return InvalidArgumentError(node.Describe(n) + ": has " + std::to_string(num_outputs) +
                                  " outputs, expected " + std::to_string(schema->min_outputs) +
                                  (schema->max_outputs != schema->min_outputs
                                       ? " to " + std::to_string(schema->max_outputs)
                                       : std::string()));
    }
    for (size_t i = 0; i < node.inputs.size(); ++i) {
      if (node.inputs[i] == kNoValue) continue;
      const Value& v = graph.value(node.inputs[i]);
      if (!v.shape_known || !IsStaticShape(v.shape)) {
        return InvalidArgumentError(node.Describe(n) + ": input '" + v.name +
                                    "' has no static shape " + ShapeToString(v.shape));
      }
    }
    InferContext ctx(graph, node, n);
    HML_RETURN_IF_ERROR(schema->infer(ctx));
    for (ValueId out : node.outputs) {
      if (out == kNoValue) continue;
      const Value& v = graph.value(out);
      if (!v.shape_known || v.dtype == DType::kUndefined) {
        return InternalError(node.Describe(n) + ": shape inference left output '" + v.name +
                             "' undefined");
      }
      auto elements = CheckedNumElements(v.shape, v.dtype);
      if (!elements.ok()) {
        return elements.status().WithContext(node.Describe(n) + ": output '" + v.name + "'");
      }
    }
  }
  return Status::Ok();
}

}  // namespace hml::runtime

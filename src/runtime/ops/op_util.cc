// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/runtime/ops/op_util.h"

#include <utility>

namespace hml::runtime {

std::string DTypeSet::Names() const {
  std::string names;
  for (DType d : {DType::kFloat32, DType::kUInt8, DType::kInt8, DType::kInt32, DType::kInt64}) {
    if (!Contains(d)) continue;
    if (!names.empty()) names += ", ";
    names += DTypeName(d);
  }
  return names;
}

void AddSchema(OpRegistry& registry, std::string op_type, int min_inputs, int max_inputs,
               InferShapesFn infer, int max_outputs) {
  OpSchema schema;
  schema.op_type = std::move(op_type);
  schema.min_inputs = min_inputs;
  schema.max_inputs = max_inputs;
  schema.min_outputs = 1;
  schema.max_outputs = max_outputs;
  schema.infer = infer;
  registry.Add(std::move(schema));
}

Status RequireInputs(const InferContext& ctx, size_t count) {
  for (size_t i = 0; i < count; ++i) {
    if (!ctx.has_input(i)) return ctx.Error("input " + std::to_string(i) + " is required");
  }
  return Status::Ok();
}

Status Unimplemented(const InferContext& ctx, std::string_view why) {
  return UnimplementedError(ctx.Error(why).message());
}

std::string IntsToString(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(v[i]);
  }
  return s + "]";
}

int64_t FloorDiv(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

}  // namespace hml::runtime

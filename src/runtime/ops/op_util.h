// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Small helpers shared by the op groups (src/runtime/ops/*_ops.cc), their parameter parsers and
// the reference kernels: sets of element types, schema registration, required-input and
// unsupported-feature errors, and integer formatting and arithmetic for the shape formulas.
#ifndef HML_SRC_RUNTIME_OPS_OP_UTIL_H_
#define HML_SRC_RUNTIME_OPS_OP_UTIL_H_

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "hml/runtime/tensor.h"
#include "src/runtime/op_registry.h"

namespace hml::runtime {

// A set of element types, as an op's schema accepts and a kernel supports them. It is a
// structural type, so a set can be a template argument (the reference kernels' DispatchDType
// instantiates its callback for the members only).
struct DTypeSet {
  constexpr DTypeSet(std::initializer_list<DType> dtypes) {
    for (DType d : dtypes) bits |= Bit(d);
  }
  constexpr bool Contains(DType dtype) const {
    return dtype != DType::kUndefined && (bits & Bit(dtype)) != 0;
  }
  // "float32, int32, int64": the members in DType order, for error messages.
  std::string Names() const;

  static constexpr uint32_t Bit(DType dtype) { return uint32_t{1} << static_cast<unsigned>(dtype); }

  uint32_t bits = 0;  // bit (1 << dtype) per member; public, as structural types require
};

inline constexpr DTypeSet kFloatDTypes{DType::kFloat32};
// Quantized tensors and their zero points.
inline constexpr DTypeSet kQuantizedDTypes{DType::kUInt8, DType::kInt8};
// float32 and the signed integers.
inline constexpr DTypeSet kSignedDTypes{DType::kFloat32, DType::kInt8, DType::kInt32,
                                        DType::kInt64};
// Every hybridml element type.
inline constexpr DTypeSet kAllDTypes{DType::kFloat32, DType::kUInt8, DType::kInt8, DType::kInt32,
                                     DType::kInt64};

// Adds the schema of op `op_type` of the default ONNX domain: `min_inputs` to `max_inputs`
// inputs, 1 to `max_outputs` outputs.
void AddSchema(OpRegistry& registry, std::string op_type, int min_inputs, int max_inputs,
               InferShapesFn infer, int max_outputs = 1);

// Checks that the node's first `count` inputs are present: a required input may still be given
// as "" (absent). kInvalidArgument "<node>: input <i> is required".
Status RequireInputs(const InferContext& ctx, size_t count);

// kUnimplemented "<node>: <why>", naming the node as ctx.Error does; for valid ONNX that
// hybridml does not support.
Status Unimplemented(const InferContext& ctx, std::string_view why);

// "[1,2,3]" for error messages (unlike ShapeToString, negative values print as numbers).
std::string IntsToString(const std::vector<int64_t>& v);

// Floor division, as Python's // in the ONNX formulas. REQUIRES: b > 0.
int64_t FloorDiv(int64_t a, int64_t b);

}  // namespace hml::runtime

#endif  // HML_SRC_RUNTIME_OPS_OP_UTIL_H_

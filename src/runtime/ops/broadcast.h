// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Numpy-style broadcasting rules, shared by the elementwise schemas (to infer output shapes) and
// the reference kernels (to plan their loops), so the two cannot disagree about which shapes
// broadcast.
#ifndef HML_SRC_RUNTIME_OPS_BROADCAST_H_
#define HML_SRC_RUNTIME_OPS_BROADCAST_H_

#include "hml/runtime/tensor.h"
#include "src/runtime/graph.h"

namespace hml::runtime {

// Multidirectional broadcasting (ONNX opset >= 7): shapes are right-aligned and each pair of
// dims must be equal or contain a 1; the result takes the larger. kInvalidArgument (without a
// node prefix; callers add it) naming both shapes and the first offending dim.
Result<Shape> BroadcastShapes(const Shape& a, const Shape& b);

// Unidirectional broadcasting: true when `from` broadcasts to exactly `to` (PRelu's slope,
// Expand-free checks).
bool BroadcastsTo(const Shape& from, const Shape& to);

// Legacy broadcasting of ONNX opset < 7 (Add/Sub/Mul/Div/Pow with attributes `broadcast` and
// `axis`): returns `b`'s shape padded with 1s to the rank of `a` so that ordinary broadcasting
// applies, i.e. `b` starts at dim `axis` of `a` (right-aligned when `axis` is absent). Without
// broadcast=1 the shapes must be equal. The result always broadcasts to `a`'s shape on success.
Result<Shape> LegacyBroadcastShape(const Node& node, const Shape& a, const Shape& b);

}  // namespace hml::runtime

#endif  // HML_SRC_RUNTIME_OPS_BROADCAST_H_

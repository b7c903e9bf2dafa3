// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// ONNX <-> graph IR. The importer validates everything it reads: bytes that are not a
// ModelProto, unsupported element types, tensors whose data does not match their dims, absurd
// sizes (checked before allocating), unsupported opsets, graphs with subgraph attributes. Errors
// name the tensor/node and the reason.
#ifndef HML_SRC_RUNTIME_ONNX_IO_H_
#define HML_SRC_RUNTIME_ONNX_IO_H_

#include <string>
#include <string_view>

#include "src/runtime/graph.h"

namespace hml::runtime {

// Default-domain opsets the importer accepts.
inline constexpr int64_t kMinOpset = 6;  // 6 for the PyTorch-exported tests of the suite
inline constexpr int64_t kMaxOpset = 17;
// Largest model file accepted (protobuf's own limit).
inline constexpr size_t kMaxModelBytes = size_t{2} << 30;

// Parses a serialized ONNX ModelProto into a validated, topologically sorted Graph. Constant
// nodes become constant values; initializers listed as graph inputs are constants.
// No graph rewriting beyond that: see passes.h for the import-time passes.
Result<Graph> ParseOnnxModel(std::string_view bytes);

// Parses a serialized ONNX TensorProto (as the ONNX test suite's input_N.pb / output_N.pb).
Result<Tensor> ParseOnnxTensor(std::string_view bytes);

// Serializes `graph` as an ONNX ModelProto (ir_version 8, the graph's opset). Constants become
// initializers. Shapes with unknown dims are written as symbolic dims.
Result<std::string> SerializeOnnxModel(const Graph& graph);

// Serializes one tensor as an ONNX TensorProto with raw_data.
Result<std::string> SerializeOnnxTensor(const Tensor& tensor, std::string_view name);

}  // namespace hml::runtime

#endif  // HML_SRC_RUNTIME_ONNX_IO_H_

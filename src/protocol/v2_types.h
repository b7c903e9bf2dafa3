// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The Open Inference Protocol's ("v2", KServe/Triton) request model, shared by the two ends of
// the wire: the cloud server's front ends (src/server) and the device's network transport
// (src/sdk/grpc). It holds named hml::Tensors with their per-tensor parameters and the mapping
// between hml::DType and the protocol's datatype strings; the encodings live beside it
// (v2_grpc_codec.h for protobuf here, the REST JSON in src/server/protocol/v2_json.h, which only
// the server and its tools need).
//
// This folder is a device-safe target (hml_protocol: no exceptions, no server code), so that the
// device encodes exactly what the server decodes without linking the server. The server keeps
// speaking of these types as server::NamedTensor etc. (using-declarations in v2_json.h).
//
// Every function here is pure and thread-safe.
#ifndef HML_SRC_PROTOCOL_V2_TYPES_H_
#define HML_SRC_PROTOCOL_V2_TYPES_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "hml/runtime/tensor.h"
#include "hml/status.h"

namespace hml::protocol {

// A request, tensor or response parameter: the protocol allows booleans, integers, floats and
// strings. uint64_t holds only values above INT64_MAX (Triton's uint64_param); smaller unsigned
// values are int64_t.
using V2Parameter = std::variant<bool, int64_t, uint64_t, double, std::string>;
using V2Parameters = std::map<std::string, V2Parameter>;

// A tensor with the name it has on the wire (a model input or output name, or for a split
// request an intermediate tensor of the model) and its per-tensor parameters. Both codecs decode
// and encode the parameters of inputs and outputs; the server reads "scale" and "zero_point" of
// INT8/UINT8 inputs (src/server/serving/split_inference.h) and ignores the others.
struct NamedTensor {
  std::string name;
  Tensor tensor;
  V2Parameters parameters = {};
};

// An output the client asked for. Its parameters (e.g. Triton's "binary_data") are kept for the
// server to inspect; the codecs always answer with plain (JSON or raw gRPC) data.
struct V2RequestedOutput {
  std::string name;
  V2Parameters parameters;
};

// One decoded inference request. Input names are unique and non-empty; each tensor owns its
// buffer.
struct V2InferRequest {
  // From the gRPC message; for REST they come from the URL, and the JSON parser leaves them empty.
  std::string model_name;
  std::string model_version;
  // Echoed in the response; may be empty.
  std::string id;
  V2Parameters parameters;
  std::vector<NamedTensor> inputs;
  // Empty: every output of the model.
  std::vector<V2RequestedOutput> outputs;
};

// One decoded inference response (what a client sees): the device transport, loadgen, tests.
struct V2InferResponse {
  std::string model_name;
  std::string model_version;
  std::string id;
  V2Parameters parameters;
  std::vector<NamedTensor> outputs;
};

// The protocol's name for `dtype`: "FP32", "UINT8", "INT8", "INT32", "INT64"; "" for kUndefined.
std::string_view V2DataTypeName(DType dtype);

// Maps a protocol datatype string to a DType. kInvalidArgument for strings the protocol does not
// define; kUnimplemented for protocol types hml::Tensor cannot hold yet (BOOL, FP16, BF16, FP64,
// UINT16, UINT32, UINT64, INT16, BYTES). Messages name `what` (e.g. "input 'x'").
Result<DType> DTypeFromV2DataType(std::string_view datatype, std::string_view what);

}  // namespace hml::protocol

#endif  // HML_SRC_PROTOCOL_V2_TYPES_H_

// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The Open Inference Protocol ("v2", KServe/Triton) as hybridml's server speaks it: the REST JSON
// bodies, over the protocol-level request model and datatype mapping of src/protocol/v2_types.h
// (shared with the device SDK, which needs the gRPC encoding only).
//
// A REST infer request body looks like
//   {"id": "42", "parameters": {...},
//    "inputs": [{"name": "x", "shape": [2, 3], "datatype": "FP32", "data": [[1, 2, 3], [4, 5,
//    6]]}], "outputs": [{"name": "y"}]}
// where `data` is either flat (row-major) or nested exactly along `shape`, and each input may
// carry its own "parameters" object (kept in NamedTensor::parameters). The gRPC codec
// (v2_grpc_codec.h) decodes into the same V2InferRequest, so the server core handles one shape.
//
// Every function here is pure and thread-safe. None throws: the JSON library's exceptions are
// disabled at each call, and every malformed input becomes a Status whose message names the
// tensor and the problem.
#ifndef HML_SERVER_PROTOCOL_V2_JSON_H_
#define HML_SERVER_PROTOCOL_V2_JSON_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "hml/runtime/model.h"
#include "hml/runtime/tensor.h"
#include "hml/status.h"
#include "src/protocol/v2_types.h"

namespace hml::server {

// ---------------------------------------------------------------------------------------------
// Shared protocol model (src/protocol/v2_types.h, shared with the device's transport): the server
// names it in its own namespace.

using protocol::DTypeFromV2DataType;
using protocol::NamedTensor;
using protocol::V2DataTypeName;
using protocol::V2InferRequest;
using protocol::V2InferResponse;
using protocol::V2Parameter;
using protocol::V2Parameters;
using protocol::V2RequestedOutput;

// ---------------------------------------------------------------------------------------------
// REST JSON.

struct V2JsonOptions {
  // Largest request body accepted, checked before any parsing. Default: 64 MiB.
  size_t max_body_bytes = size_t{64} << 20;
  // Deepest nesting of JSON arrays and objects, checked by a linear scan before parsing so that a
  // body of brackets cannot make the parser build a pathological tree. A request needs about
  // 4 + rank levels. Default: 32.
  int max_depth = 32;

  // kInvalidArgument for a zero size limit or a depth below 4 + kMaxRank.
  Status Validate() const;
};

// Parses a v2 infer request body. Errors: kResourceExhausted when the body exceeds
// options.max_body_bytes or options.max_depth; kInvalidArgument for malformed JSON, missing or
// mistyped fields, bad shapes, data that is non-numeric, out of range for the datatype, nested
// differently from the shape or of the wrong element count, duplicate names; kUnimplemented for
// protocol datatypes hml::Tensor cannot hold and for the binary tensor data extension. Messages
// name the input: "input 'x': shape [2,3] needs 6 elements but data has 5".
// REQUIRES: options.Validate() is OK (checked; its error is returned).
Result<V2InferRequest> ParseV2InferRequestJson(std::string_view body,
                                               const V2JsonOptions& options = {});

// Serializes a request body (model_name and model_version are not part of it: they go in the
// URL). Data is written flat. kInvalidArgument for an empty input tensor (no dtype).
Result<std::string> SerializeV2InferRequestJson(const V2InferRequest& request);

// Serializes an infer response body:
//   {"model_name", "model_version", "id", "parameters", "outputs": [{"name", "shape", "datatype",
//   "data"}]}
// "id" and "parameters" are omitted when empty. FP32 data prints in the shortest form that reads
// back to the same float; NaN and infinities, which JSON cannot express, print as null.
// kInvalidArgument for an empty output tensor.
Result<std::string> SerializeV2InferResponseJson(std::string_view model_name,
                                                 std::string_view model_version,
                                                 std::string_view id,
                                                 std::span<const NamedTensor> outputs,
                                                 const V2Parameters& parameters = {});

// Parses an infer response body, with the same checks as the request parser (a client must not
// trust the server's JSON either). "model_name" and "outputs" are required.
Result<V2InferResponse> ParseV2InferResponseJson(std::string_view body,
                                                 const V2JsonOptions& options = {});

// What the model metadata endpoint reports.
struct V2ModelMetadata {
  std::string name;
  std::vector<std::string> versions;
  // Where the model runs, e.g. "onnxruntime_onnx"-style names; ours is "hybridml_onnx".
  std::string platform;
  std::vector<TensorSpec> inputs;
  std::vector<TensorSpec> outputs;
};

// {"name", "versions", "platform", "inputs": [{"name", "datatype", "shape"}], "outputs": [...]};
// dynamic dimensions print as -1. kInvalidArgument for a spec with an undefined dtype.
Result<std::string> SerializeV2ModelMetadataJson(const V2ModelMetadata& metadata);

// {"error": "<message>"}. Invalid UTF-8 in the message is replaced, never an error.
std::string SerializeV2ErrorJson(std::string_view message);

}  // namespace hml::server

#endif  // HML_SERVER_PROTOCOL_V2_JSON_H_

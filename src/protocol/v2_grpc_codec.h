// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Conversion between the Open Inference Protocol's gRPC messages (proto/inference.proto) and the
// protocol model of v2_types.h (V2InferRequest / V2InferResponse holding hml::Tensor). Both ends
// use it: the server's gRPC front end and the device's network transport (src/sdk/grpc), so it
// lives in the device-safe hml_protocol target; the server names these functions as
// server::EncodeModelInferRequest etc. (src/server/protocol/v2_grpc_codec.h).
//
// Tensor data travels either as typed repeated fields (InferTensorContents: fp32_contents,
// int64_contents, int_contents for INT8/INT32, uint_contents for UINT8) or as raw bytes
// (raw_input_contents / raw_output_contents: one entry per tensor, row-major, little-endian).
// Decoding accepts both and applies the same validation as the JSON parser, with messages that
// name the tensor and the problem. Encoding a response always uses raw_output_contents: it is the
// compact form, and what Triton does, so stock clients read it.
//
// The size of a gRPC message is bounded by the server's maximum receive size before it reaches
// these functions; per tensor, sizes are checked against kMaxTensorBytes before allocating.
// All functions are pure and thread-safe.
#ifndef HML_SRC_PROTOCOL_V2_GRPC_CODEC_H_
#define HML_SRC_PROTOCOL_V2_GRPC_CODEC_H_

#include <span>
#include <string_view>

#include "hml/status.h"
#include "proto/inference.pb.h"
#include "src/protocol/v2_types.h"

namespace hml::protocol {

// Decodes a ModelInferRequest; each input tensor owns a copy of its data and keeps its
// per-tensor parameters (NamedTensor::parameters; the encoders write them back). Errors
// (kInvalidArgument unless noted), each naming the input: missing name or datatype, unknown
// datatype (kUnimplemented for protocol types hml::Tensor cannot hold), a negative or oversized
// shape, raw_input_contents present but not one entry per input, or present together with typed
// contents, a raw entry whose byte size does not match shape and datatype, typed contents in the
// field of another datatype or with the wrong element count, INT8/UINT8 values out of range, no
// data at all for a non-empty tensor, duplicate input or requested output names.
Result<V2InferRequest> DecodeModelInferRequest(const inference::ModelInferRequest& message);

// How EncodeModelInferRequest lays out tensor data.
enum class V2TensorEncoding {
  kRaw,    // raw_input_contents, little-endian
  kTyped,  // InferTensorContents
};

// Encodes a request (the client side: the device transport, loadgen and tests). kInvalidArgument
// for an empty tensor. `message` is cleared first.
Status EncodeModelInferRequest(const V2InferRequest& request, V2TensorEncoding encoding,
                               inference::ModelInferRequest* message);

// Encodes an infer response with raw_output_contents. kInvalidArgument for an empty output
// tensor. `message` is cleared first.
Status EncodeModelInferResponse(std::string_view model_name, std::string_view model_version,
                                std::string_view id, std::span<const NamedTensor> outputs,
                                inference::ModelInferResponse* message,
                                const V2Parameters& parameters = {});

// Decodes a response (the client side), raw or typed, with the same checks as the request
// decoder.
Result<V2InferResponse> DecodeModelInferResponse(const inference::ModelInferResponse& message);

// InferParameter <-> V2Parameter. A message with no value set is kInvalidArgument naming `what`.
Result<V2Parameter> ParameterFromProto(const inference::InferParameter& parameter,
                                       std::string_view what);
void ParameterToProto(const V2Parameter& parameter, inference::InferParameter* out);

}  // namespace hml::protocol

#endif  // HML_SRC_PROTOCOL_V2_GRPC_CODEC_H_

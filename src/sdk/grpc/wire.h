// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The device side of the wire: the Transport's calls as the protobuf messages `hybridml serve`
// receives (v2 ModelInferRequest, UploadBatchRequest, TelemetryReport) and the v2 answer back as an
// InferAnswer. One encoding for every transport: GrpcTransport sends these messages, and the
// simulator's in-process transport (src/sim/) builds the very same ones to count the bytes the
// real wire would carry. Each Encode* consumes its call (tensors and strings are moved).
#ifndef HML_SRC_SDK_GRPC_WIRE_H_
#define HML_SRC_SDK_GRPC_WIRE_H_

#include "hml/status.h"
#include "proto/hybridml_device.pb.h"
#include "proto/inference.pb.h"
#include "src/sdk/transport.h"

namespace hml::sdk {

// Raw tensor contents; the version string only when call.version != 0. Errors: the codec's
// (an unsupported dtype, a tensor too large for the message).
Status EncodeInferCall(InferCall& call, inference::ModelInferRequest* out);
// The outputs by name and the answering version. Errors: the codec's for a malformed response.
Result<InferAnswer> DecodeInferAnswer(inference::ModelInferResponse& response);
void EncodeUploadCall(UploadCall& call, hybridml::v1::UploadBatchRequest* out);
void EncodeTelemetryCall(TelemetryCall& call, hybridml::v1::TelemetryReport* out);

}  // namespace hml::sdk

#endif  // HML_SRC_SDK_GRPC_WIRE_H_

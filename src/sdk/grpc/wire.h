// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The device side of the wire: the Transport's calls as the protobuf messages `hybridml serve`
// receives (v2 ModelInferRequest, UploadBatchRequest, TelemetryReport, JoinRoundRequest,
// SubmitUpdateRequest) and the answers back (the v2 answer as an InferAnswer, the federated
// service's JoinRoundResponse and SubmitUpdateResponse). One encoding for every transport:
// GrpcTransport sends these messages, and the simulator's in-process transport (src/sim/) builds
// the very same ones to count the bytes the real wire would carry. Each Encode* consumes its call
// (tensors and strings are moved).
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

void EncodeJoinRoundCall(JoinRoundCall& call, hybridml::v1::JoinRoundRequest* out);
// The round (an empty round id: none), its deadline and config, and the model version, which the
// message carries as a decimal string ("" reads as 0). kInternal for a model version that is not
// a non-negative decimal number, or a round without a deadline.
Result<JoinRoundAnswer> DecodeJoinRoundAnswer(hybridml::v1::JoinRoundResponse& response);
void EncodeSubmitUpdateCall(SubmitUpdateCall& call, hybridml::v1::SubmitUpdateRequest* out);
Result<SubmitUpdateAnswer> DecodeSubmitUpdateAnswer(hybridml::v1::SubmitUpdateResponse& response);
void EncodeSecureAggregationCall(SecureAggregationCall& call,
                                 hybridml::v1::SecureAggregationRequest* out);
// kInternal for an empty reply (the server always answers something).
Result<SecureAggregationAnswer> DecodeSecureAggregationAnswer(
    hybridml::v1::SecureAggregationResponse& response);

}  // namespace hml::sdk

#endif  // HML_SRC_SDK_GRPC_WIRE_H_

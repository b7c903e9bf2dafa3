// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The server's names for the v2 gRPC codec. The codec itself (src/protocol/v2_grpc_codec.h) is
// shared with the device's network transport and lives in the device-safe hml_protocol target;
// the server, its tools (loadgen) and the simulator keep calling it server::EncodeModelInferRequest
// and so on through these using-declarations.
#ifndef HML_SERVER_PROTOCOL_V2_GRPC_CODEC_H_
#define HML_SERVER_PROTOCOL_V2_GRPC_CODEC_H_

#include "src/protocol/v2_grpc_codec.h"
#include "src/server/protocol/v2_json.h"

namespace hml::server {

using protocol::DecodeModelInferRequest;
using protocol::DecodeModelInferResponse;
using protocol::EncodeModelInferRequest;
using protocol::EncodeModelInferResponse;
using protocol::ParameterFromProto;
using protocol::ParameterToProto;
using protocol::V2TensorEncoding;

}  // namespace hml::server

#endif  // HML_SERVER_PROTOCOL_V2_GRPC_CODEC_H_

// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// What the gRPC services share: the one translation of hml::Status into grpc::Status (the codes
// have the same numbers, so it keeps the code and the message), and authentication of a call
// from its `authorization` metadata ("Bearer <token>", as proto/hybridml_device.proto says) with
// an Authenticator (src/server/auth/authenticator.h). Each handler calls AuthenticateCall first
// and answers its error before it reads or changes anything.
#ifndef HML_SRC_SERVER_GRPC_GRPC_AUTH_H_
#define HML_SRC_SERVER_GRPC_GRPC_AUTH_H_

#include <grpcpp/grpcpp.h>

#include <optional>
#include <string_view>

#include "hml/status.h"
#include "src/server/auth/authenticator.h"

namespace hml::server {

grpc::Status ToGrpcStatus(const Status& status);

// The value of the call's `authorization` metadata; nullopt when it has none. The view points
// into `context`, valid while the call is.
std::optional<std::string_view> AuthorizationMetadata(const grpc::ServerContextBase& context);

// The caller of `context` by its `authorization` metadata (Authenticator::Authenticate).
Result<Principal> AuthenticateCall(const Authenticator& authenticator,
                                   const grpc::ServerContextBase& context);

}  // namespace hml::server

#endif  // HML_SRC_SERVER_GRPC_GRPC_AUTH_H_

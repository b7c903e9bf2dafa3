// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/server/grpc/grpc_auth.h"

#include <string>

namespace hml::server {

grpc::Status ToGrpcStatus(const Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

std::optional<std::string_view> AuthorizationMetadata(const grpc::ServerContextBase& context) {
  // gRPC lower-cases metadata keys on the wire, so this one spelling finds every client's.
  const auto& metadata = context.client_metadata();
  const auto it = metadata.find("authorization");
  if (it == metadata.end()) return std::nullopt;
  return std::string_view(it->second.data(), it->second.size());
}

Result<Principal> AuthenticateCall(const Authenticator& authenticator,
                                   const grpc::ServerContextBase& context) {
  return authenticator.Authenticate(AuthorizationMetadata(context));
}

}  // namespace hml::server

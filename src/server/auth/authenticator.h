// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The one authentication and authorization check of both front ends. A call carries its
// credential as `authorization: Bearer <token>` (gRPC metadata or the HTTP header); Authenticate
// turns that value into a Principal (an admin key or a device) or kUnauthenticated, and the
// Require* helpers decide what the principal may touch (kPermissionDenied otherwise). Handlers
// call these first, before they read or change anything, so a refused call changes nothing.
//
// Messages name the reason (missing, malformed, unknown or wrong, revoked) and may name a
// credential's public id; they never contain a secret.
//
// Every check reads the store (AuthStore::Verify: one indexed SELECT and a SHA-256), so a
// revocation committed by any process is in force from the next call on; auth_store_test
// measures what one check costs.
//
// Thread-safe: const methods over a thread-safe AuthStore.
#ifndef HML_SRC_SERVER_AUTH_AUTHENTICATOR_H_
#define HML_SRC_SERVER_AUTH_AUTHENTICATOR_H_

#include <optional>
#include <string_view>

#include "hml/status.h"
#include "src/server/auth/auth_store.h"

namespace hml::server {

class Authenticator {
 public:
  // `store` must outlive the authenticator.
  explicit Authenticator(AuthStore* store) : store_(store) {}

  // `authorization` is the header's value, or nullopt when the call has none. The scheme
  // "Bearer" is matched case-insensitively (RFC 7235); exactly one space or tab run separates it
  // from the token.
  Result<Principal> Authenticate(std::optional<std::string_view> authorization) const;

  AuthStore& store() const { return *store_; }

  // kPermissionDenied naming `what` and the principal unless it is an admin.
  static Status RequireAdmin(const Principal& principal, std::string_view what);
  // kPermissionDenied unless the principal is an admin or the device `device_id`.
  static Status RequireAdminOrDevice(const Principal& principal, std::string_view device_id,
                                     std::string_view what);

 private:
  AuthStore* const store_;
};

}  // namespace hml::server

#endif  // HML_SRC_SERVER_AUTH_AUTHENTICATOR_H_

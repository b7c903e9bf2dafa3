// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/server/auth/authenticator.h"

#include <string>

namespace hml::server {
namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t'; }

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    const char x = (a[i] >= 'A' && a[i] <= 'Z') ? static_cast<char>(a[i] - 'A' + 'a') : a[i];
    const char y = (b[i] >= 'A' && b[i] <= 'Z') ? static_cast<char>(b[i] - 'A' + 'a') : b[i];
    if (x != y) return false;
  }
  return true;
}

}  // namespace

Result<Principal> Authenticator::Authenticate(std::optional<std::string_view> authorization) const {
  if (!authorization.has_value() || authorization->empty()) {
    return UnauthenticatedError(
        "missing credential: send 'authorization: Bearer <admin key or device credential>'");
  }
  std::string_view value = *authorization;
  constexpr std::string_view kScheme = "bearer";
  if (value.size() <= kScheme.size() ||
      !EqualsIgnoreCase(value.substr(0, kScheme.size()), kScheme) ||
      !IsSpace(value[kScheme.size()])) {
    return UnauthenticatedError(
        "malformed authorization: expected the scheme 'Bearer' followed by a token");
  }
  value.remove_prefix(kScheme.size());
  while (!value.empty() && IsSpace(value.front())) value.remove_prefix(1);
  while (!value.empty() && IsSpace(value.back())) value.remove_suffix(1);
  return store_->Verify(value);
}

Status Authenticator::RequireAdmin(const Principal& principal, std::string_view what) {
  if (principal.is_admin()) return Status::Ok();
  return PermissionDeniedError(std::string(what) + ": needs an admin key; the caller is " +
                               principal.ToString());
}

Status Authenticator::RequireAdminOrDevice(const Principal& principal, std::string_view device_id,
                                           std::string_view what) {
  if (principal.is_admin()) return Status::Ok();
  if (principal.id == device_id) return Status::Ok();
  return PermissionDeniedError(std::string(what) + ": " + principal.ToString() +
                               " may act only on its own data");
}

}  // namespace hml::server

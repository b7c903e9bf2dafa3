// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The shim behind include/hml/c/hml_grpc.h: GrpcTransport for C callers. Errors go through the
// core shim's hml_c_fail (src/sdk/c/hml_c_internal.h), so they look like every other C ABI error.
#include <memory>
#include <new>
#include <string>

#include "hml/c/hml_grpc.h"
#include "src/sdk/c/hml_c_internal.h"
#include "src/sdk/grpc/grpc_transport.h"

struct hml_grpc_options {
  hml::sdk::GrpcTransportOptions options;
};

struct hml_transport {
  std::unique_ptr<hml::sdk::GrpcTransport> transport;
};

namespace {

hml_status OutOfMemory(hml_error** out_error) {
  return hml_c_fail(out_error, hml::ResourceExhaustedError("out of memory"));
}

}  // namespace

extern "C" {

hml_status hml_grpc_options_create(hml_grpc_options** out_options, hml_error** out_error) {
  if (out_options == nullptr) {
    return hml_c_null_argument(out_error, "hml_grpc_options_create", "out_options");
  }
  *out_options = new (std::nothrow) hml_grpc_options{};
  if (*out_options == nullptr) return OutOfMemory(out_error);
  return hml_c_fail(out_error, hml::Status::Ok());
}

void hml_grpc_options_free(hml_grpc_options* options) { delete options; }

hml_status hml_grpc_options_set_target(hml_grpc_options* options, const char* target,
                                       hml_error** out_error) {
  constexpr const char* kFunction = "hml_grpc_options_set_target";
  if (options == nullptr) return hml_c_null_argument(out_error, kFunction, "options");
  if (target == nullptr) return hml_c_null_argument(out_error, kFunction, "target");
  options->options.target = target;
  return hml_c_fail(out_error, hml::Status::Ok());
}

hml_status hml_grpc_options_set_tls(hml_grpc_options* options, int use_tls,
                                    const char* root_ca_file, hml_error** out_error) {
  constexpr const char* kFunction = "hml_grpc_options_set_tls";
  if (options == nullptr) return hml_c_null_argument(out_error, kFunction, "options");
  options->options.use_tls = use_tls != 0;
  options->options.root_ca_file = root_ca_file == nullptr ? "" : root_ca_file;
  return hml_c_fail(out_error, hml::Status::Ok());
}

hml_status hml_grpc_options_set_credential(hml_grpc_options* options, const char* credential,
                                           hml_error** out_error) {
  constexpr const char* kFunction = "hml_grpc_options_set_credential";
  if (options == nullptr) return hml_c_null_argument(out_error, kFunction, "options");
  if (credential == nullptr) return hml_c_null_argument(out_error, kFunction, "credential");
  options->options.device_credential = credential;
  return hml_c_fail(out_error, hml::Status::Ok());
}

hml_status hml_grpc_options_set_connect_timeout_ms(hml_grpc_options* options, int64_t timeout_ms,
                                                   hml_error** out_error) {
  constexpr const char* kFunction = "hml_grpc_options_set_connect_timeout_ms";
  if (options == nullptr) return hml_c_null_argument(out_error, kFunction, "options");
  if (timeout_ms < 1 || timeout_ms > 3'600'000) {
    return hml_c_fail(out_error, hml::InvalidArgumentError(
                                     std::string(kFunction) + ": timeout_ms " +
                                     std::to_string(timeout_ms) + " is outside [1, 3600000]"));
  }
  options->options.connect_timeout_nanos = timeout_ms * 1'000'000;
  return hml_c_fail(out_error, hml::Status::Ok());
}

hml_status hml_transport_create_grpc(const hml_grpc_options* options, hml_transport** out_transport,
                                     hml_error** out_error) {
  constexpr const char* kFunction = "hml_transport_create_grpc";
  if (options == nullptr) return hml_c_null_argument(out_error, kFunction, "options");
  if (out_transport == nullptr) return hml_c_null_argument(out_error, kFunction, "out_transport");
  hml::Result<std::unique_ptr<hml::sdk::GrpcTransport>> transport =
      hml::sdk::GrpcTransport::Create(options->options);
  if (!transport.ok()) {
    return hml_c_fail(out_error, transport.status().WithContext(kFunction));
  }
  *out_transport = new (std::nothrow) hml_transport{std::move(*transport)};
  if (*out_transport == nullptr) return OutOfMemory(out_error);
  return hml_c_fail(out_error, hml::Status::Ok());
}

void hml_transport_free(hml_transport* transport) { delete transport; }

hml_status hml_router_create_over(const hml_router_options* options, hml_transport* transport,
                                  hml_router** out_router, hml_error** out_error) {
  if (transport == nullptr)
    return hml_c_null_argument(out_error, "hml_router_create_over", "transport");
  return hml_router_create_with_transport(options, transport->transport.get(), out_router,
                                          out_error);
}

}  // extern "C"

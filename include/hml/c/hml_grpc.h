/* Copyright hybridml authors. Licensed under the Apache License 2.0.
 *
 * The network part of the hybridml C ABI: a gRPC transport to `hybridml serve` for the router's
 * cloud calls. It lives in its own library (hml_sdk_grpc, which links gRPC) so that apps that only
 * run models on the device link the core C ABI (hml.h, hml_sdk) alone.
 *
 *   hml_grpc_options* o; hml_grpc_options_create(&o, NULL);
 *   hml_grpc_options_set_target(o, "cloud.example.com:8001", NULL);
 *   hml_grpc_options_set_credential(o, device_credential, NULL);
 *   hml_transport* t; hml_transport_create_grpc(o, &t, &err);
 *   hml_router* r; hml_router_create_over(router_options, t, &r, &err);
 *   ... hml_router_add_model / hml_router_infer as in hml.h ...
 *   hml_router_free(r); hml_transport_free(t);   (the transport outlives the router)
 *
 * Conventions are hml.h's: status codes with gRPC's numbers, optional error objects naming the
 * bad argument, *_free accepting NULL. The transport is thread-safe; options are used by one
 * thread at a time. */
#ifndef HML_C_HML_GRPC_H_
#define HML_C_HML_GRPC_H_

#include "hml/c/hml.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hml_grpc_options hml_grpc_options;

/* Defaults: no target (required), TLS on with the system's default roots, no credential,
 * connect timeout 5000 ms. */
hml_status hml_grpc_options_create(hml_grpc_options** out_options, hml_error** out_error);
void hml_grpc_options_free(hml_grpc_options* options);
/* "host:port" of the server's gRPC port. */
hml_status hml_grpc_options_set_target(hml_grpc_options* options, const char* target,
                                       hml_error** out_error);
/* use_tls 0: plain text (`hybridml serve --insecure`, trusted networks only); root_ca_file NULL:
 * the default roots. */
hml_status hml_grpc_options_set_tls(hml_grpc_options* options, int use_tls,
                                    const char* root_ca_file, hml_error** out_error);
/* The device credential from enrollment, sent as a bearer token on every call. */
hml_status hml_grpc_options_set_credential(hml_grpc_options* options, const char* credential,
                                           hml_error** out_error);
/* Longest wait for a connection before a call fails with HML_UNAVAILABLE; >= 1. */
hml_status hml_grpc_options_set_connect_timeout_ms(hml_grpc_options* options, int64_t timeout_ms,
                                                   hml_error** out_error);

typedef struct hml_transport hml_transport;

/* Validates the options (errors name the field) and creates the transport; no connection is
 * made until the first call. */
hml_status hml_transport_create_grpc(const hml_grpc_options* options, hml_transport** out_transport,
                                     hml_error** out_error);
/* Cancels the transport's pending calls and waits for them. Free its routers first. */
void hml_transport_free(hml_transport* transport);

/* As hml_router_create, with every cloud call through `transport`, which must outlive the
 * router. */
hml_status hml_router_create_over(const hml_router_options* options, hml_transport* transport,
                                  hml_router** out_router, hml_error** out_error);

#ifdef __cplusplus
}
#endif

#endif /* HML_C_HML_GRPC_H_ */

// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// C++-only entry points of the C ABI shim, for tests and for the network part of the C ABI
// (src/sdk/grpc/grpc_c.cc behind include/hml/c/hml_grpc.h, which lives with the gRPC transport so
// that hml_sdk stays free of gRPC). Not part of the public API: apps reach the router through
// hml_router_create (no network) or hml_router_create_grpc (hml_grpc.h); tests inject an
// in-process transport here.
#ifndef HML_SRC_SDK_C_HML_C_INTERNAL_H_
#define HML_SRC_SDK_C_HML_C_INTERNAL_H_

#include "hml/c/hml.h"
#include "hml/status.h"
#include "src/sdk/transport.h"

// As hml_router_create, but every cloud call goes through `transport` (with the options' retry,
// breaker and hedging settings), and the router's clock is the transport's. `transport` must
// outlive the router, and its clock must be real time (the router runs its timers on a thread of
// its own that sleeps in real time). HML_INVALID_ARGUMENT naming `transport`
// when it is NULL.
hml_status hml_router_create_with_transport(const hml_router_options* options,
                                            hml::sdk::Transport* transport, hml_router** out_router,
                                            hml_error** out_error);

// Returns `status`'s code as an hml_status and, when out_error is not NULL, stores a new error
// object with its message (NULL when `status` is OK). The one way every part of the C ABI
// reports errors.
hml_status hml_c_fail(hml_error** out_error, const hml::Status& status);

// HML_INVALID_ARGUMENT "<function>: <what> is NULL", the C ABI's message for a NULL argument.
hml_status hml_c_null_argument(hml_error** out_error, const char* function, const char* what);

#endif  // HML_SRC_SDK_C_HML_C_INTERNAL_H_

// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// C++-only entry points of the C ABI shim, for tests and for SDK code that already holds C++
// objects. Not part of the public API (include/hml/c/hml.h): apps reach the router through
// hml_router_create, which has no network transport until the gRPC transport (src/sdk/grpc/)
// lands; then hml_router_create will build one from the options and this header stays for
// tests that inject an in-process transport.
#ifndef HML_SRC_SDK_C_HML_C_INTERNAL_H_
#define HML_SRC_SDK_C_HML_C_INTERNAL_H_

#include "hml/c/hml.h"
#include "src/sdk/transport.h"

// As hml_router_create, but every cloud call goes through `transport` (with the options' retry,
// breaker and hedging settings), and the router's clock is the transport's. `transport` must
// outlive the router, and its clock must be real time (the router runs its timers on a thread of
// its own that sleeps in real time). HML_INVALID_ARGUMENT naming `transport`
// when it is NULL.
hml_status hml_router_create_with_transport(const hml_router_options* options,
                                            hml::sdk::Transport* transport, hml_router** out_router,
                                            hml_error** out_error);

#endif  // HML_SRC_SDK_C_HML_C_INTERNAL_H_

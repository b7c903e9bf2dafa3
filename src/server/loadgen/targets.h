// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The transports behind ConnectLoadTarget (loadgen.h), and what they share: the random request
// built from a model's metadata. Internal to src/server/loadgen/.
#ifndef HML_SRC_SERVER_LOADGEN_TARGETS_H_
#define HML_SRC_SERVER_LOADGEN_TARGETS_H_

#include <memory>
#include <string>
#include <vector>

#include "hml/clock.h"
#include "hml/runtime/model.h"
#include "hml/status.h"
#include "src/server/loadgen/loadgen.h"
#include "src/server/protocol/v2_json.h"

namespace hml::server::loadgen_internal {

// A request with one random tensor per input of `inputs` (the metadata's specs, dynamic dims
// -1): the first dynamic dimension becomes `batch`, other dynamic dimensions 1. kInvalidArgument
// for an input without a dtype or a shape that is too large.
Result<V2InferRequest> RandomRequest(const std::vector<TensorSpec>& inputs, int64_t batch,
                                     uint64_t seed);

// "[1,1,28,28]" of the request's first input, for Describe().
std::string FirstInputShape(const V2InferRequest& request);

// Splits "host:port" (after stripping an optional scheme) into its parts. kInvalidArgument when
// the port is missing or not a number in [1, 65535].
struct HostPort {
  std::string scheme;  // "http", "https", "grpc" or "" when none was given
  std::string host;
  int port = 0;
};
Result<HostPort> ParseTarget(const std::string& target);

Result<std::unique_ptr<LoadTarget>> ConnectGrpc(const LoadgenOptions& options, Clock* clock);
Result<std::unique_ptr<LoadTarget>> ConnectHttp(const LoadgenOptions& options, Clock* clock);

}  // namespace hml::server::loadgen_internal

#endif  // HML_SRC_SERVER_LOADGEN_TARGETS_H_

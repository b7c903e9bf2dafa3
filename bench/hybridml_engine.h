// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// hybridml as a benchmark Engine, through the public API only: Model::Load + Session::Create.
#ifndef HML_BENCH_HYBRIDML_ENGINE_H_
#define HML_BENCH_HYBRIDML_ENGINE_H_

#include <memory>
#include <string>
#include <vector>

#include "bench/engine.h"
#include "hml/runtime/session.h"
#include "hml/runtime/tensor.h"
#include "hml/status.h"

namespace hml::bench {

// Loads `onnx_path` and creates a 1-thread Session on `backend` ("xnnpack" or "reference") with
// the first input fixed to `input_shape`. Run() copies the input into the session and runs it.
Result<std::unique_ptr<Engine>> CreateHybridmlEngine(const std::string& onnx_path,
                                                     const std::string& backend,
                                                     const Shape& input_shape);

// "xnnpack 12/12 nodes" or "xnnpack 10/12 nodes; reference: Op 'a', Op 'b'": where the nodes of
// a session ran, for a session whose preferred backend is `preferred`.
std::string SummarizeSegments(const std::vector<SegmentInfo>& segments,
                              const std::string& preferred);

}  // namespace hml::bench

#endif  // HML_BENCH_HYBRIDML_ENGINE_H_

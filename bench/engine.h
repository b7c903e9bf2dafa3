// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The one interface runtime_vs_peers times: an Engine runs one model at one fixed input shape.
// hybridml sessions and every peer (OpenCV DNN, LibTorch, raw XNNPACK) implement it, each in its
// own translation unit, so the heavy peer headers stay out of the rest of the benchmark.
//
// Everything an engine does before its first Run() counts as "load+prepare"; Run() is what the
// latency columns measure. Engines are used from one thread.
#ifndef HML_BENCH_ENGINE_H_
#define HML_BENCH_ENGINE_H_

#include <string>

#include "hml/runtime/tensor.h"
#include "hml/status.h"

namespace hml::bench {

class Engine {
 public:
  virtual ~Engine() = default;

  // Computes the output for `input`: float32, NCHW, the shape the engine was created for. An
  // engine that needs its own input buffer copies `input` in (the copy is part of the timing,
  // for every engine that needs one). hybridml's engines do not allocate here; peers may.
  virtual Status Run(const Tensor& input) = 0;

  // A float32 copy of the first output of the last Run(), shaped [batch, rest].
  virtual Result<Tensor> Output() const = 0;

  // Facts worth printing next to the numbers (where the nodes ran, options used). May be empty.
  virtual std::string Notes() const { return ""; }
};

}  // namespace hml::bench

#endif  // HML_BENCH_ENGINE_H_

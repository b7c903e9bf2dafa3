// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Stand-ins for the peers a build leaves out: the OpenCV and LibTorch peers without
// HML_BUILD_PEER_BENCH, raw XNNPACK without HML_WITH_XNNPACK. Each returns kUnavailable, which the
// benchmark prints as a skipped row.
#include <memory>
#include <string>

#include "bench/peers.h"

namespace hml::bench {

#ifndef HML_BENCH_WITH_OPENCV
Result<std::unique_ptr<Engine>> CreateOpenCvEngine(const std::string&, const Shape&) {
  return UnavailableError("OpenCV peer not built (HML_BUILD_PEER_BENCH=OFF)");
}
std::string OpenCvVersion() { return "unavailable"; }
#endif

#ifndef HML_BENCH_WITH_LIBTORCH
Result<std::unique_ptr<Engine>> CreateLibTorchEngine(const std::string&, const Shape&, bool) {
  return UnavailableError("LibTorch peer not built (HML_BUILD_PEER_BENCH=OFF)");
}
Result<std::unique_ptr<Engine>> CreateLibTorchCnn28Engine(const Cnn28Weights&, int64_t) {
  return UnavailableError("LibTorch peer not built (HML_BUILD_PEER_BENCH=OFF)");
}
std::string LibTorchVersion() { return "unavailable"; }
#endif

#ifndef HML_BENCH_WITH_RAW_XNNPACK
Result<std::unique_ptr<Engine>> CreateRawXnnpackCnn28Engine(const Cnn28Weights&, int64_t) {
  return UnavailableError("raw XNNPACK peer not built (HML_WITH_XNNPACK=OFF)");
}
Result<std::unique_ptr<Engine>> CreateRawXnnpackCnn28Int8Engine(const Cnn28Int8&, int64_t) {
  return UnavailableError("raw XNNPACK peer not built (HML_WITH_XNNPACK=OFF)");
}
#endif

}  // namespace hml::bench

// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Factories of the peer engines runtime_vs_peers compares hybridml with. Each peer lives in one
// translation unit (peer_opencv.cc, peer_libtorch.cc, raw_xnnpack_cnn28.cc) so that LibTorch's
// ~25 s headers are compiled once; peers_unavailable.cc stands in for the peers a build leaves
// out (HML_BUILD_PEER_BENCH=OFF, HML_WITH_XNNPACK=OFF) and returns kUnavailable.
//
// The peer libraries throw; their adapters catch everything and return a Status.
#ifndef HML_BENCH_PEERS_H_
#define HML_BENCH_PEERS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bench/engine.h"
#include "hml/runtime/tensor.h"
#include "hml/status.h"

namespace hml::bench {

// The weights of the 28x28 CNN (tests/testing/models.h), in ONNX layouts.
struct Cnn28Weights {
  static constexpr int64_t kChannels = 8;  // conv output channels
  static constexpr int64_t kSide = 28;     // input height and width
  static constexpr int64_t kPooled = 14;   // after the 2x2 max pool
  static constexpr int64_t kClasses = 10;
  static constexpr int64_t kFlat = kChannels * kPooled * kPooled;  // 1568

  std::vector<float> conv_w;  // [8,1,3,3] OIHW (the same bytes as OHWI: one input channel)
  std::vector<float> conv_b;  // [8]
  std::vector<float> fc_w;    // [10,1568], columns in NCHW flatten order: c*196 + h*14 + w
  std::vector<float> fc_b;    // [10]
};

// The int8 quantization of the 28x28 CNN (made by QuantizeCnn28 in cnn28.h): int8 activations
// with per-tensor parameters, symmetric int8 weights (zero point 0) with one scale per output
// channel or one per tensor, int32 biases with scale input_scale * weight_scale.
struct Cnn28Int8 {
  float input_scale = 1.0f;
  int8_t input_zero_point = 0;
  float act_scale = 1.0f;  // conv output with the ReLU folded in (zero point -128), pool, flatten
  int8_t act_zero_point = 0;
  float logits_scale = 1.0f;
  int8_t logits_zero_point = 0;
  std::vector<int8_t> conv_w;        // [8,1,3,3]
  std::vector<float> conv_w_scales;  // 8 (always per channel)
  std::vector<int32_t> conv_b;       // [8]
  std::vector<float> conv_b_scales;  // 8
  std::vector<int8_t> fc_w;          // [10,1568], NCHW flatten order
  std::vector<float> fc_w_scales;    // 10 or 1
  std::vector<int32_t> fc_b;         // [10]
  std::vector<float> fc_b_scales;    // 10 (all equal with one Gemm weight scale)
};

// OpenCV DNN: cv::dnn::readNetFromONNX, backend OPENCV, target CPU, cv::setNumThreads(1).
// `onnx_path` must be a model OpenCV 4.6 reads (opset 10 for models with ReLU6: see FACTS.md).
Result<std::unique_ptr<Engine>> CreateOpenCvEngine(const std::string& onnx_path,
                                                   const Shape& input_shape);

// LibTorch: torch::jit::load of a TorchScript file, eval(), 1 intra-op and 1 inter-op thread,
// forward() under c10::InferenceMode. `optimize` adds torch::jit::optimize_for_inference (freezes
// the module, folds BatchNorm into convolutions, ...).
Result<std::unique_ptr<Engine>> CreateLibTorchEngine(const std::string& torchscript_path,
                                                     const Shape& input_shape, bool optimize);

// LibTorch running the 28x28 CNN rebuilt from torch::nn modules (Conv2d, Linear) holding copies
// of `weights`: there is no TorchScript file of this model.
Result<std::unique_ptr<Engine>> CreateLibTorchCnn28Engine(const Cnn28Weights& weights,
                                                          int64_t batch);

// The 28x28 CNN written directly against XNNPACK's subgraph API (fp32, NHWC, 1 thread): the
// floor hybridml's XNNPACK backend is measured against.
Result<std::unique_ptr<Engine>> CreateRawXnnpackCnn28Engine(const Cnn28Weights& weights,
                                                            int64_t batch);

// The int8 twin in raw XNNPACK: convert fp32 -> qs8, qc8 convolution (ReLU by saturation), qs8
// max pool, qs8 fully connected, convert qs8 -> fp32, fp32 softmax. REQUIRES one Gemm weight
// scale (Cnn28QdqOptions::gemm_per_channel = false): this XNNPACK snapshot has no per-channel
// fully-connected operator.
Result<std::unique_ptr<Engine>> CreateRawXnnpackCnn28Int8Engine(const Cnn28Int8& q, int64_t batch);

// "4.6.0", "1.13.1"; "unavailable" when the peer is not built.
std::string OpenCvVersion();
std::string LibTorchVersion();

}  // namespace hml::bench

#endif  // HML_BENCH_PEERS_H_

// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The 28x28 CNN of tests/testing/models.h for the benchmarks: its weights as plain arrays (for the
// peers that rebuild it), and its int8 twin in ONNX QDQ form, built here because hybridml has no
// quantizer yet.
//
// The int8 twin is what a post-training quantizer would write (ONNX Runtime's QDQ layout):
//   image -> Q -> DQ -> Conv(DQ(w int8, per channel), DQ(b int32)) -> Q -> DQ -> MaxPool -> Q
//   -> DQ -> Flatten -> Q -> DQ -> Gemm(DQ(w int8, per channel), DQ(b int32)) -> Q -> DQ
//   -> Softmax -> probs
// Activations are int8 with per-tensor scale and zero point, calibrated from the min/max of the
// fp32 model's activations on random inputs. The ReLU is folded into the quantization of the
// conv output: its range is [0, max] with zero point -128, so negatives saturate to 0 (as ONNX
// Runtime's quantizer removes a Relu followed by QuantizeLinear). Weights are int8, symmetric
// (zero point 0), one scale per output channel; biases are int32 with scale
// input_scale * weight_scale[c].
//
// The Gemm may take one weight scale instead (Cnn28QdqOptions): the XNNPACK snapshot on Debian 12
// (2022-02) has per-channel (qc8) convolutions but no per-channel fully-connected operator (no
// xnn_create_fully_connected_nc_qc8). hybridml's backend runs a per-channel Gemm as a 1x1 qc8
// convolution; the per-tensor form is what raw XNNPACK's fully-connected node takes.
#ifndef HML_BENCH_CNN28_H_
#define HML_BENCH_CNN28_H_

#include <cstdint>
#include <string>

#include "bench/peers.h"
#include "hml/runtime/model.h"
#include "hml/status.h"
#include "src/runtime/graph.h"

namespace hml::bench {

// The fp32 CNN (opset 13), as tests/testing/models.h builds it, with the output's shape [N,10]
// declared (OpenCV DNN refuses graph outputs without a shape).
runtime::Graph Cnn28Fp32Graph();

// The weights of a graph built by Cnn28Fp32Graph(). kInvalidArgument if a constant is missing or
// has another shape.
Result<Cnn28Weights> ExtractCnn28Weights(const runtime::Graph& graph);

// Activation ranges seen when running the fp32 model on random inputs.
struct Cnn28Ranges {
  int samples = 0;
  float input_min = 0, input_max = 0;
  float relu_max = 0;  // conv + ReLU output; MaxPool and Flatten keep its range
  float logits_min = 0, logits_max = 0;
};

// Runs `fp32` sliced to its "relu" and "logits" tensors on `samples` random inputs (uniform in
// [-1, 1), seed `seed`) on the reference backend and records the ranges.
Result<Cnn28Ranges> CalibrateCnn28(const Model& fp32, int samples, uint64_t seed);

struct Cnn28QdqOptions {
  // One weight scale per output channel for the Gemm too (else one per tensor). The conv weights
  // are always per channel. Default: true.
  bool gemm_per_channel = true;
};

// Quantizes `w` for `ranges` (see the file comment).
Cnn28Int8 QuantizeCnn28(const Cnn28Weights& w, const Cnn28Ranges& ranges,
                        const Cnn28QdqOptions& options = {});

// The int8 QDQ twin of the CNN holding `q` (see the file comment).
Result<runtime::Graph> BuildCnn28QdqGraph(const Cnn28Int8& q);

}  // namespace hml::bench

#endif  // HML_BENCH_CNN28_H_

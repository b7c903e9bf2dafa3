// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Post-training static int8 quantization of an fp32 graph into standard ONNX QDQ form, the form
// the runtime's XNNPACK backend maps to qs8 kernels (see
// src/runtime/backends/xnnpack/subgraph_builder.h) and other runtimes (ONNX Runtime) read too.
//
// What is quantized:
//   - Conv, Gemm (alpha = beta = 1, transA = 0) and MatMul with constant float32 weights: the
//     weight becomes a symmetric int8 constant (zero point 0) with one scale per output channel
//     (axis 0 for Conv and for Gemm with transB = 1, axis 1 for MatMul and Gemm with transB = 0),
//     followed by DequantizeLinear; a constant 1-D bias becomes int32 with scale
//     x_scale * w_scale[c] and zero point 0.
//   - Activations read by Conv/Gemm/MatMul/MaxPool/Add and the outputs of those ops get a
//     QuantizeLinear -> DequantizeLinear pair with per-tensor asymmetric int8 parameters from
//     calibration. A Relu, or a Clip whose range contains the quantized range, that directly and
//     solely follows a Conv/Gemm/MatMul/Add is folded into the output quantization (Q saturates
//     exactly as the activation would). MaxPool and the Reshape family (Flatten, Reshape,
//     Squeeze, Unsqueeze) of a quantized tensor reuse its parameters, as XNNPACK's qs8 max pool
//     and reshape require.
//   - Everything else (Softmax, Sigmoid, AveragePool, ...) stays fp32 between DQ and Q.
#ifndef HML_SRC_COMPRESS_QUANTIZE_H_
#define HML_SRC_COMPRESS_QUANTIZE_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "hml/runtime/tensor.h"
#include "hml/status.h"
#include "src/runtime/graph.h"

namespace hml::compress {

// Calibration data: each sample holds one tensor per graph input, in the graph's input order.
// Samples may differ in their batch size.
struct CalibrationSet {
  std::vector<std::vector<Tensor>> samples;
};

enum class CalibrationMethod {
  kMinMax,      // the observed minimum and maximum of each tensor
  kPercentile,  // the (100 - p)-th and p-th percentiles, clipping rare outliers
};

struct QuantizeOptions {
  // Default: kMinMax.
  CalibrationMethod method = CalibrationMethod::kMinMax;
  // For kPercentile: the upper percentile in (50, 100]; the lower one is 100 - percentile.
  // Default: 99.99.
  double percentile = 99.99;
  // Histogram bins per tensor for kPercentile. Default: 4096.
  int histogram_bins = 4096;
  // One weight scale per output channel; false uses one scale per weight tensor.
  // Default: true. Per-channel needs opset >= 13 (DequantizeLinear's axis).
  bool per_channel = true;
  // Fold Relu/Clip after Conv/Gemm/MatMul/Add into the output quantization range. Default: true.
  bool fold_activations = true;
  // Backend that runs the fp32 model during calibration. Default: "xnnpack".
  std::string calibration_backend = "xnnpack";

  // kInvalidArgument for a percentile outside (50, 100], bins outside [16, 1 << 20], or an
  // empty backend name.
  Status Validate() const;
};

// Per-tensor affine int8 parameters: real = scale * (q - zero_point).
struct QuantParams {
  float scale = 1.0f;
  int8_t zero_point = 0;
};

// Asymmetric int8 parameters covering [lo, hi] widened to contain 0 (so 0 is exact).
// REQUIRES: lo and hi finite.
QuantParams AsymmetricInt8Params(float lo, float hi);

// Symmetric per-channel int8 quantization of `weight` along `axis`: zero point 0 and
// scale[c] = max|w_c| / 127 (a channel of zeros gets the tensor's largest scale, or 1/127).
// `scales` receives one scale per channel (one in total when `per_channel` is false).
// kInvalidArgument for a non-float32 weight or an axis out of range.
Result<Tensor> QuantizeWeightSymmetric(const Tensor& weight, int axis, bool per_channel,
                                       std::vector<float>* scales);

// The observed range of each calibrated tensor, by tensor name.
struct TensorRange {
  float min = 0.0f;
  float max = 0.0f;
};

// Runs `fp32` over every sample with `tensors` exposed as outputs (one session) and returns their
// ranges by `options.method`. Graph inputs may be listed. Errors: kInvalidArgument for an empty
// set, samples that do not match the inputs (named), unknown tensor names, non-finite values.
Result<std::map<std::string, TensorRange>> Calibrate(const runtime::Graph& fp32,
                                                     const CalibrationSet& data,
                                                     const std::vector<std::string>& tensors,
                                                     const QuantizeOptions& options);

// What QuantizeStatic did, for reports and tests.
struct QuantizeReport {
  std::vector<std::string> quantized_nodes;  // "Conv 'conv1'"
  std::vector<std::string> folded_activations;
  std::map<std::string, QuantParams> activations;  // by original tensor name
};

// Quantizes `fp32` (an imported graph; import passes are re-run, so BatchNorm folds first).
// Errors: kInvalidArgument for bad options, an empty calibration set, samples that do not match
// the model's inputs, an already quantized model or one with no quantizable op;
// kUnimplemented for a quantizable op with non-float32 weights or per-channel at opset < 13.
// `report` may be null.
Result<runtime::Graph> QuantizeStatic(const runtime::Graph& fp32, const CalibrationSet& data,
                                      const QuantizeOptions& options,
                                      QuantizeReport* report = nullptr);

}  // namespace hml::compress

#endif  // HML_SRC_COMPRESS_QUANTIZE_H_

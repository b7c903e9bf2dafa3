// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Architecture builders: IR graphs with freshly initialised weights, ready for GraphModule.
// Models are written once, as IR, so the trained result exports to ONNX and runs in the runtime
// with no second definition. Torch-free.
#ifndef HML_SRC_TRAIN_ZOO_H_
#define HML_SRC_TRAIN_ZOO_H_

#include <cstdint>
#include <string_view>
#include <vector>

#include "hml/runtime/tensor.h"
#include "hml/status.h"
#include "src/runtime/graph.h"

namespace hml::train {

// input [N, features...] -> Flatten -> (Gemm -> Relu) per hidden width -> Gemm -> Softmax.
// Input "input", outputs "probs" (the Softmax's input is "logits"). Weights He-uniform from
// `seed`, biases zero. kInvalidArgument for empty/non-positive shapes or widths.
Result<runtime::Graph> BuildMlp(const Shape& sample_shape, const std::vector<int64_t>& hidden,
                                int64_t num_classes, uint64_t seed);

// input [N, C, H, W] -> per entry of `channels`: Conv 3x3 pad 1 -> BatchNorm -> Relu -> MaxPool
// 2x2 -> Flatten -> Gemm(hidden) -> Relu -> Dropout(dropout) -> Gemm -> Softmax.
// kInvalidArgument when the image is too small for the number of pooling stages.
Result<runtime::Graph> BuildCnn(const Shape& sample_shape, const std::vector<int64_t>& channels,
                                int64_t hidden, float dropout, int64_t num_classes,
                                uint64_t seed);

// The named architectures: "mlp" (784-256-10 style: one hidden layer of 256), "student-cnn"
// (channels 8,16, hidden 32), "teacher-cnn" (channels 32,64,128, hidden 256, dropout 0.3).
// `width` multiplies every layer's channels and hidden units (rounded, at least 1), as the
// hyper-parameter sweep's width axis does. kInvalidArgument for an unknown name or a width
// outside (0, 64].
Result<runtime::Graph> BuildArchitecture(std::string_view name, const Shape& sample_shape,
                                         int64_t num_classes, uint64_t seed, double width = 1.0);

}  // namespace hml::train

#endif  // HML_SRC_TRAIN_ZOO_H_

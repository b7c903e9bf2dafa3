// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Pruning on the graph IR.
//
// Magnitude pruning zeroes the globally smallest weights of every Conv/Gemm/MatMul with a
// constant float32 weight; shapes do not change, so it only pays with sparse kernels or
// compression (a zstd-compressed file shrinks).
//
// Channel pruning removes whole Conv output channels (the filters with the smallest L1 norm) and
// rewrites every consumer, so FLOPs and latency really drop. A Conv is pruned only when each path
// from its output reaches, through channel-wise ops (Relu, Clip, Sigmoid, Tanh, LeakyRelu,
// BatchNormalization with constant parameters, MaxPool, AveragePool, GlobalAveragePool,
// GlobalMaxPool), nothing but
//   - a Conv with group 1 reading it as its input (its input channels are sliced), or
//   - a Flatten(axis 1) whose readers are Gemm (transA 0) or MatMul with a constant weight (the
//     weight rows/columns of the removed channels' spatial blocks are dropped).
// Anything else on the way (Add with another branch, Concat, Reshape, a grouped Conv, a graph
// output, a shared weight) leaves that Conv unpruned; the report says why.
#ifndef HML_SRC_COMPRESS_PRUNE_H_
#define HML_SRC_COMPRESS_PRUNE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "hml/status.h"
#include "src/runtime/graph.h"

namespace hml::compress {

struct MagnitudePruneOptions {
  // Fraction of the weights of all Conv/Gemm/MatMul weights set to zero, in [0, 1].
  // Default: 0.5.
  double sparsity = 0.5;
  // kInvalidArgument for a sparsity outside [0, 1].
  Status Validate() const;
};

struct ChannelPruneOptions {
  // Fraction of each prunable Conv's output channels removed, in [0, 1). Default: 0.5.
  double ratio = 0.5;
  // Channels every pruned Conv keeps at least. Default: 1.
  int64_t min_channels = 1;
  // kInvalidArgument for a ratio outside [0, 1) or min_channels < 1.
  Status Validate() const;
};

struct PruneReport {
  int64_t weights = 0;       // elements of the weights considered
  int64_t zero_weights = 0;  // of those, zero after pruning
  int64_t channels_before = 0;
  int64_t channels_after = 0;
  std::vector<std::string> pruned;   // "Conv 'conv1': 8 -> 4 channels"
  std::vector<std::string> skipped;  // "Conv 'conv2': its output is read by Add 'add'"
  double sparsity() const {
    return weights > 0 ? static_cast<double>(zero_weights) / static_cast<double>(weights) : 0.0;
  }
};

// Zeroes exactly round(sparsity * N) of the N weights, the smallest magnitudes first (ties by
// position). Errors: kInvalidArgument for bad options or a graph without such weights.
Result<runtime::Graph> PruneMagnitude(const runtime::Graph& graph,
                                      const MagnitudePruneOptions& options,
                                      PruneReport* report = nullptr);

// Removes floor(ratio * C) output channels of every prunable Conv (see above). The result
// validates and keeps its inputs and outputs. Errors: kInvalidArgument for bad options, a graph
// that does not validate, or one where no Conv can be pruned (the message gives the reasons).
Result<runtime::Graph> PruneChannels(const runtime::Graph& graph,
                                     const ChannelPruneOptions& options,
                                     PruneReport* report = nullptr);

}  // namespace hml::compress

#endif  // HML_SRC_COMPRESS_PRUNE_H_

// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Compiles one segment into one XNNPACK subgraph runtime.
//
// Values and layouts. Every rank-4 value inside the subgraph is NHWC; other values keep the
// graph's layout, except the kFlatNhwc flattenings described in layout.h. Each segment input
// gets a staging buffer (NHWC for rank 4; a copy otherwise, because XNNPACK may read
// XNN_EXTRA_BYTES past the end of an input); Run() fills it (transpose or memcpy), invokes the
// runtime, and transposes rank-4 / kFlatNhwc outputs back to NCHW. Outputs whose two orders
// agree are written by XNNPACK straight into the session's buffers.
//
// Quantization. A graph value may exist in the subgraph in two forms: fp32, and qint8 with given
// parameters; each is created on first use, with an XNNPACK Convert node between them.
// QuantizeLinear and DequantizeLinear over activations only switch forms (a DequantizeLinear
// output is, in int8 form, its input). Compute nodes run as XNNPACK qs8 nodes when these
// patterns match (all pattern nodes in the segment, each intermediate value read once):
//   DQ(x int8) , DQ(W int8 const, zero point 0, per-tensor or per-output-channel)
//     [, DQ(B int32 const) or fp32 B] -> Conv / Gemm / MatMul -> [Relu | Clip] -> Q(int8)
//                               => qs8 convolution / depthwise convolution (qcint8 filter,
//                                  qcint32 bias) or fully connected (qint8 filter, qint32 bias);
//                                  per-channel FC filters run as a 1x1 qs8 convolution, since
//                                  this snapshot's qs8 fully-connected node rejects qcint8. The
//                                  bias is re-quantized to x_scale * w_scale[c]; the clamp fused.
//   DQ(x) -> MaxPool -> [Relu | Clip] -> Q with Q's parameters equal to DQ's    => qs8 max pool
//   DQ(x) -> Reshape-family -> Q with equal parameters                          => qs8 reshape
//   DQ(a), DQ(b) or DQ(int8 const per-tensor) -> Add / Mul -> [Relu | Clip] -> Q => qs8 add/mul
//   QLinearConv, QLinearMatMul with symmetric int8 weights                  => qs8 conv / FC
//   int8 Reshape-family and MaxPool                                          => qs8 nodes
// Anything else between Q and DQ (Softmax, AveragePool, Sigmoid, ...) runs in fp32 between
// Convert nodes, which is exactly the QDQ semantics. If XNNPACK rejects a qs8 node (for
// instance a requantization scale out of its range), the segment is rebuilt with every compute
// node in fp32, so a claimed segment always compiles.
#ifndef HML_SRC_RUNTIME_BACKENDS_XNNPACK_SUBGRAPH_BUILDER_H_
#define HML_SRC_RUNTIME_BACKENDS_XNNPACK_SUBGRAPH_BUILDER_H_

#include <pthreadpool.h>

#include <memory>
#include <vector>

#include "src/runtime/backend.h"
#include "src/runtime/backends/xnnpack/node_specs.h"

namespace hml::runtime::xnnpack {

struct CompileOptions {
  // Run matched QDQ patterns as qs8 nodes; when false they run in fp32 between converts.
  // Default: true.
  bool quantized_compute = true;
  // A dense (group 1) QDQ convolution whose reduction depth per output (C_in * kernel_h *
  // kernel_w) is below this runs in fp32 between converts. On x86 this XNNPACK snapshot's qs8
  // dense convolution is 3.3x slower than fp32 at depth 9 (a 3x3 conv of a 1-channel image;
  // bench/xnnpack_qs8_vs_fp32 on AVX-512) and about even from depth 72; whole networks are
  // faster kept in qs8 than broken into fp32 islands, whose converts cost more than the shallow
  // layers lose (mobilenet_v2: all qs8 7.3 ms, depth < 256 in fp32 8.3 ms). Depthwise
  // convolutions always stay qs8. 0 quantizes every matched convolution.
  // Default: 16 on x86-64, 0 elsewhere (ARM's int8 kernels win at every depth).
#if defined(__x86_64__) || defined(__i386__)
  int64_t min_qs8_conv_depth = 16;
#else
  int64_t min_qs8_conv_depth = 0;
#endif
  // Shared with the backend; null runs on the calling thread. Default: null.
  std::shared_ptr<pthreadpool> threadpool;
};

// What a build decided, for tests and diagnostics.
struct BuildReport {
  std::vector<int> quantized_nodes;  // compute nodes that run as XNNPACK qs8 nodes
  std::vector<int> fused_nodes;      // Relu/Clip/QuantizeLinear folded into the node before
  int xnn_nodes = 0;                 // XNNPACK nodes defined (converts and reshapes included)
};

// Builds the executable of `segment`. REQUIRES: every node of the segment has a spec in
// `analysis`, which was built over segment.graph. The executable reads and writes
// segment.buffers, which must outlive it. `report` may be null.
Result<std::unique_ptr<Executable>> BuildExecutable(const Segment& segment,
                                                    const GraphAnalysis& analysis,
                                                    const CompileOptions& options,
                                                    BuildReport* report = nullptr);

}  // namespace hml::runtime::xnnpack

#endif  // HML_SRC_RUNTIME_BACKENDS_XNNPACK_SUBGRAPH_BUILDER_H_

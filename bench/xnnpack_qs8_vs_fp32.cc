// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// xnnpack_qs8_vs_fp32: times single XNNPACK convolutions and fully-connected layers in fp32 and
// in qs8 (per-channel int8 weights) on this machine, 1 thread. This is the measurement behind
// xnnpack::CompileOptions::min_qs8_conv_depth: on x86 the 2022 XNNPACK snapshot's qs8
// convolution only beats fp32 when the reduction depth ((C_in / group) * kh * kw) is large.
// Like bench/raw_xnnpack_cnn28.cc it talks to XNNPACK directly, so it includes <xnnpack.h>.
//
// Usage: xnnpack_qs8_vs_fp32 [--json PATH]   (default bench/results/xnnpack_qs8_vs_fp32.json)
#include <xnnpack.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace {

struct Layer {
  const char* kind;  // "conv" or "fc"
  size_t h, c_in, c_out, k;
};

double TimeRuntime(xnn_runtime_t runtime) {
  for (int i = 0; i < 50; ++i) xnn_invoke_runtime(runtime);
  int iterations = 0;
  const auto start = std::chrono::steady_clock::now();
  double elapsed = 0;
  do {
    for (int i = 0; i < 50; ++i) xnn_invoke_runtime(runtime);
    iterations += 50;
    elapsed = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
                  .count();
  } while (elapsed < 300000.0);
  return elapsed / iterations;
}

// Returns microseconds per run, or a negative number when XNNPACK rejects the layer.
double TimeLayer(const Layer& l, bool quantized) {
  const bool conv = std::strcmp(l.kind, "conv") == 0;
  const size_t in_elems = conv ? l.h * l.h * l.c_in : l.c_in;
  const size_t out_elems = conv ? l.h * l.h * l.c_out : l.c_out;
  const size_t w_elems = l.c_out * l.k * l.k * l.c_in;
  std::vector<float> in(in_elems + 64, 0.5f), out(out_elems + 64), w(w_elems, 0.01f),
      b(l.c_out, 0.1f), scales(l.c_out, 0.01f);
  std::vector<int8_t> qin(in_elems + 64, 3), qout(out_elems + 64), qw(w_elems, 2);
  std::vector<int32_t> qb(l.c_out, 7);
  xnn_subgraph_t sg = nullptr;
  if (xnn_create_subgraph(2, 0, &sg) != xnn_status_success) return -1;
  std::vector<size_t> in_dims = conv ? std::vector<size_t>{1, l.h, l.h, l.c_in}
                                     : std::vector<size_t>{1, l.c_in};
  std::vector<size_t> out_dims = conv ? std::vector<size_t>{1, l.h, l.h, l.c_out}
                                      : std::vector<size_t>{1, l.c_out};
  std::vector<size_t> w_dims = conv ? std::vector<size_t>{l.c_out, l.k, l.k, l.c_in}
                                    : std::vector<size_t>{l.c_out, l.c_in};
  const size_t b_dims[] = {l.c_out};
  uint32_t x = 0, y = 0, wid = 0, bid = 0;
  bool ok = true;
  if (!quantized) {
    ok &= xnn_define_tensor_value(sg, xnn_datatype_fp32, in_dims.size(), in_dims.data(), nullptr,
                                  0, XNN_VALUE_FLAG_EXTERNAL_INPUT, &x) == xnn_status_success;
    ok &= xnn_define_tensor_value(sg, xnn_datatype_fp32, out_dims.size(), out_dims.data(),
                                  nullptr, 1, XNN_VALUE_FLAG_EXTERNAL_OUTPUT,
                                  &y) == xnn_status_success;
    ok &= xnn_define_tensor_value(sg, xnn_datatype_fp32, w_dims.size(), w_dims.data(), w.data(),
                                  XNN_INVALID_VALUE_ID, 0, &wid) == xnn_status_success;
    ok &= xnn_define_tensor_value(sg, xnn_datatype_fp32, 1, b_dims, b.data(),
                                  XNN_INVALID_VALUE_ID, 0, &bid) == xnn_status_success;
  } else {
    ok &= xnn_define_quantized_tensor_value(sg, xnn_datatype_qint8, 0, 0.01f, in_dims.size(),
                                            in_dims.data(), nullptr, 0,
                                            XNN_VALUE_FLAG_EXTERNAL_INPUT,
                                            &x) == xnn_status_success;
    ok &= xnn_define_quantized_tensor_value(sg, xnn_datatype_qint8, -128, 0.05f, out_dims.size(),
                                            out_dims.data(), nullptr, 1,
                                            XNN_VALUE_FLAG_EXTERNAL_OUTPUT,
                                            &y) == xnn_status_success;
    if (conv) {
      ok &= xnn_define_channelwise_quantized_tensor_value(
                sg, xnn_datatype_qcint8, scales.data(), w_dims.size(), 0, w_dims.data(),
                qw.data(), XNN_INVALID_VALUE_ID, 0, &wid) == xnn_status_success;
      ok &= xnn_define_channelwise_quantized_tensor_value(
                sg, xnn_datatype_qcint32, scales.data(), 1, 0, b_dims, qb.data(),
                XNN_INVALID_VALUE_ID, 0, &bid) == xnn_status_success;
    } else {  // this snapshot's qs8 fully-connected node takes per-tensor weights only
      ok &= xnn_define_quantized_tensor_value(sg, xnn_datatype_qint8, 0, 0.01f, w_dims.size(),
                                              w_dims.data(), qw.data(), XNN_INVALID_VALUE_ID, 0,
                                              &wid) == xnn_status_success;
      ok &= xnn_define_quantized_tensor_value(sg, xnn_datatype_qint32, 0, 1e-4f, 1, b_dims,
                                              qb.data(), XNN_INVALID_VALUE_ID, 0,
                                              &bid) == xnn_status_success;
    }
  }
  const float inf = INFINITY;
  const size_t p = l.k / 2;
  if (conv) {
    ok &= xnn_define_convolution_2d(sg, p, p, p, p, l.k, l.k, 1, 1, 1, 1, 1, l.c_in, l.c_out,
                                    -inf, inf, x, wid, bid, y, 0) == xnn_status_success;
  } else {
    ok &= xnn_define_fully_connected(sg, -inf, inf, x, wid, bid, y, 0) == xnn_status_success;
  }
  xnn_runtime_t runtime = nullptr;
  ok = ok && xnn_create_runtime_v2(sg, nullptr, 0, &runtime) == xnn_status_success;
  xnn_delete_subgraph(sg);
  if (!ok) return -1;
  const xnn_external_value ext[] = {{x, quantized ? static_cast<void*>(qin.data()) : in.data()},
                                    {y, quantized ? static_cast<void*>(qout.data()) : out.data()}};
  double us = -1;
  if (xnn_setup_runtime(runtime, 2, ext) == xnn_status_success) us = TimeRuntime(runtime);
  xnn_delete_runtime(runtime);
  return us;
}

}  // namespace

int main(int argc, char** argv) {
  std::string json_path = std::string(HML_SOURCE_DIR) + "/bench/results/xnnpack_qs8_vs_fp32.json";
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--json") == 0 && i + 1 < argc) {
      json_path = argv[++i];
    } else {
      std::fprintf(stderr, "usage: xnnpack_qs8_vs_fp32 [--json PATH]\n");
      return 2;
    }
  }
  if (xnn_initialize(nullptr) != xnn_status_success) {
    std::fprintf(stderr, "xnn_initialize failed\n");
    return 1;
  }
  const Layer layers[] = {{"conv", 28, 1, 8, 3},    {"conv", 28, 8, 8, 3},
                          {"conv", 14, 8, 16, 3},   {"conv", 56, 32, 32, 1},
                          {"conv", 28, 16, 32, 3},  {"conv", 56, 64, 64, 1},
                          {"conv", 14, 64, 64, 3},  {"conv", 7, 256, 256, 3},
                          {"fc", 1, 1568, 10, 1},   {"fc", 1, 1280, 1000, 1}};
  std::printf("%-5s %5s %6s %6s %3s %7s %11s %11s %14s\n", "layer", "HxW", "C_in", "C_out", "k",
              "depth", "fp32 us", "qs8 us", "qs8 speedup");
  std::string json = "{\n  \"threads\": 1,\n  \"layers\": [";
  bool first = true;
  for (const Layer& l : layers) {
    const double fp32 = TimeLayer(l, false);
    const double qs8 = TimeLayer(l, true);
    const size_t depth = l.c_in * l.k * l.k;
    std::printf("%-5s %5zu %6zu %6zu %3zu %7zu %11.2f %11.2f %13.2fx\n", l.kind, l.h, l.c_in,
                l.c_out, l.k, depth, fp32, qs8, qs8 > 0 ? fp32 / qs8 : 0.0);
    char entry[256];
    std::snprintf(entry, sizeof(entry),
                  "%s\n    {\"kind\": \"%s\", \"hw\": %zu, \"c_in\": %zu, \"c_out\": %zu, "
                  "\"k\": %zu, \"depth\": %zu, \"fp32_us\": %.3f, \"qs8_us\": %.3f}",
                  first ? "" : ",", l.kind, l.h, l.c_in, l.c_out, l.k, depth, fp32, qs8);
    json += entry;
    first = false;
  }
  json += "\n  ]\n}\n";
  std::ofstream out(json_path);
  out << json;
  if (out) std::printf("wrote %s\n", json_path.c_str());
  return 0;
}

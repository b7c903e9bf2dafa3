// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "hml/runtime/tensor_util.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "hml/env.h"
#include "src/runtime/onnx_io.h"

namespace hml {
namespace {

// splitmix64: small, fast, good enough for test data.
uint64_t NextRandom(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

std::string FormatFloat(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.6g", v);
  return buf;
}

}  // namespace

void FillRandom(Tensor& t, uint64_t seed) {
  uint64_t state = seed;
  for (int64_t i = 0; i < t.num_elements(); ++i) {
    const uint64_t r = NextRandom(state);
    const double u = static_cast<double>(r >> 11) / static_cast<double>(uint64_t{1} << 53);
    switch (t.dtype()) {
      case DType::kFloat32:
        t.data<float>()[i] = static_cast<float>(2.0 * u - 1.0);
        break;
      case DType::kUInt8:
        t.data<uint8_t>()[i] = static_cast<uint8_t>(r & 0xFF);
        break;
      case DType::kInt8:
        t.data<int8_t>()[i] = static_cast<int8_t>(static_cast<int>(r & 0xFF) - 128);
        break;
      case DType::kInt32:
        t.data<int32_t>()[i] = static_cast<int32_t>(r % 201) - 100;
        break;
      case DType::kInt64:
        t.data<int64_t>()[i] = static_cast<int64_t>(r % 10);
        break;
      case DType::kUndefined:
        break;
    }
  }
}

Result<Tensor> LoadTensor(const std::string& path) {
  HML_ASSIGN_OR_RETURN(std::string bytes, DefaultEnv()->ReadFile(path));
  auto t = runtime::ParseOnnxTensor(bytes);
  if (!t.ok()) return t.status().WithContext("'" + path + "'");
  return t;
}

Status SaveTensor(const Tensor& t, const std::string& path, const std::string& name) {
  HML_ASSIGN_OR_RETURN(std::string bytes, runtime::SerializeOnnxTensor(t, name));
  return DefaultEnv()->WriteFileAtomic(path, bytes);
}

std::string SummarizeTensor(const Tensor& t) {
  std::string out = std::string(DTypeName(t.dtype())) + ShapeToString(t.shape());
  if (t.num_elements() == 0) return out + " (empty)";
  double mn = std::numeric_limits<double>::infinity(), mx = -mn, sum = 0;
  int64_t argmax = 0;
  for (int64_t i = 0; i < t.num_elements(); ++i) {
    double v = 0;
    switch (t.dtype()) {
      case DType::kFloat32:
        v = t.data<float>()[i];
        break;
      case DType::kUInt8:
        v = t.data<uint8_t>()[i];
        break;
      case DType::kInt8:
        v = t.data<int8_t>()[i];
        break;
      case DType::kInt32:
        v = t.data<int32_t>()[i];
        break;
      case DType::kInt64:
        v = static_cast<double>(t.data<int64_t>()[i]);
        break;
      case DType::kUndefined:
        break;
    }
    if (v > mx) {
      mx = v;
      argmax = i;
    }
    mn = std::min(mn, v);
    sum += v;
  }
  out += " min " + FormatFloat(mn) + " max " + FormatFloat(mx) + " mean " +
         FormatFloat(sum / static_cast<double>(t.num_elements()));
  out += " | argmax " + std::to_string(argmax);
  return out;
}

LatencyStats ComputeLatencyStats(std::vector<double> micros) {
  LatencyStats s;
  if (micros.empty()) return s;
  std::sort(micros.begin(), micros.end());
  s.count = static_cast<int64_t>(micros.size());
  double sum = 0;
  for (double m : micros) sum += m;
  s.mean_us = sum / static_cast<double>(micros.size());
  auto rank = [&](double q) {
    const size_t idx = static_cast<size_t>(std::ceil(q * static_cast<double>(micros.size()))) - 1;
    return micros[std::min(idx, micros.size() - 1)];
  };
  s.min_us = micros.front();
  s.p50_us = rank(0.50);
  s.p90_us = rank(0.90);
  s.p99_us = rank(0.99);
  s.max_us = micros.back();
  return s;
}

Result<LatencyStats> TimeSession(Session& session, int warmup, int iterations, Clock* clock) {
  if (iterations < 1) return InvalidArgumentError("iterations must be at least 1");
  if (clock == nullptr) clock = RealClock();
  for (int i = 0; i < warmup; ++i) HML_RETURN_IF_ERROR(session.Run());
  std::vector<double> micros;
  micros.reserve(static_cast<size_t>(iterations));
  for (int i = 0; i < iterations; ++i) {
    const int64_t start = clock->NowNanos();
    HML_RETURN_IF_ERROR(session.Run());
    micros.push_back(static_cast<double>(clock->NowNanos() - start) / 1000.0);
  }
  return ComputeLatencyStats(std::move(micros));
}

}  // namespace hml

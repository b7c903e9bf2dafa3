// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// What a device does before it sends a split-inference request, for tests: run the head of a
// model up to a cut in process, and quantize the cut tensors to INT8.
#ifndef HML_TESTS_TESTING_SPLIT_REQUESTS_H_
#define HML_TESTS_TESTING_SPLIT_REQUESTS_H_

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "hml/runtime/model.h"
#include "hml/runtime/session.h"
#include "hml/runtime/tensor.h"
#include "src/server/protocol/v2_json.h"

namespace hml::testing {

// Runs `model` in process on `inputs` (named, any order) at their shapes, with the default
// SessionOptions (as the server's batchers). Empty on error (reported as a test failure).
inline std::vector<Tensor> RunInProcess(const Model& model,
                                        const std::vector<server::NamedTensor>& inputs) {
  SessionOptions options;
  std::vector<Tensor> ordered;
  for (const TensorSpec& spec : model.inputs()) {
    auto it = std::find_if(inputs.begin(), inputs.end(),
                           [&](const server::NamedTensor& t) { return t.name == spec.name; });
    if (it == inputs.end()) {
      ADD_FAILURE() << "no input " << spec.name;
      return {};
    }
    options.input_shapes[spec.name] = it->tensor.shape();
    ordered.push_back(*it->tensor.Clone());
  }
  Result<std::unique_ptr<Session>> session = Session::Create(model, options);
  if (!session.ok()) {
    ADD_FAILURE() << session.status().ToString();
    return {};
  }
  Result<std::vector<Tensor>> outputs = (*session)->Run(ordered);
  if (!outputs.ok()) {
    ADD_FAILURE() << outputs.status().ToString();
    return {};
  }
  return std::move(*outputs);
}

// The tensors of `cut` for `images` (the model's one input): what the head Slice({}, cut)
// computes, named; a cut tensor that is the model's input is `images` itself.
inline std::vector<server::NamedTensor> HeadTensors(const Model& model,
                                                    const std::vector<std::string>& cut,
                                                    const Tensor& images) {
  const std::string input = model.inputs()[0].name;
  std::vector<std::string> computed;
  for (const std::string& name : cut) {
    if (name != input) computed.push_back(name);
  }
  std::vector<Tensor> outputs;
  if (!computed.empty()) {
    Result<Model> head = model.Slice({}, computed);
    if (!head.ok()) {
      ADD_FAILURE() << head.status().ToString();
      return {};
    }
    std::vector<server::NamedTensor> head_inputs;
    head_inputs.push_back({input, *images.Clone()});
    outputs = RunInProcess(*head, head_inputs);
  }
  std::vector<server::NamedTensor> named;
  size_t next = 0;
  for (const std::string& name : cut) {
    if (name == input) {
      named.push_back({name, *images.Clone()});
    } else if (next < outputs.size()) {
      named.push_back({name, std::move(outputs[next++])});
    }
  }
  return named;
}

// Symmetric per-tensor INT8 quantization of an FP32 tensor: scale = max |x| / 127 (1 for an
// all-zero tensor), zero_point 0, q = round(x / scale); the parameters travel with the tensor.
inline server::NamedTensor QuantizeInt8(const server::NamedTensor& x) {
  float max_abs = 0.0f;
  for (float v : x.tensor.values<float>()) max_abs = std::max(max_abs, std::fabs(v));
  const double scale = max_abs > 0.0f ? static_cast<double>(max_abs) / 127.0 : 1.0;
  Tensor q = *Tensor::Allocate(DType::kInt8, x.tensor.shape());
  const float* in = x.tensor.data<float>();
  int8_t* out = q.data<int8_t>();
  for (int64_t i = 0; i < x.tensor.num_elements(); ++i) {
    const double r = std::round(static_cast<double>(in[i]) / scale);
    out[i] = static_cast<int8_t>(std::clamp(r, -127.0, 127.0));
  }
  return {x.name, std::move(q), {{"scale", scale}, {"zero_point", int64_t{0}}}};
}

// scale * (q - zero_point) as FP32, for a tensor made by QuantizeInt8.
inline server::NamedTensor DequantizeInt8(const server::NamedTensor& q) {
  const float scale = static_cast<float>(std::get<double>(q.parameters.at("scale")));
  Tensor x = *Tensor::Allocate(DType::kFloat32, q.tensor.shape());
  const int8_t* in = q.tensor.data<int8_t>();
  float* out = x.data<float>();
  for (int64_t i = 0; i < q.tensor.num_elements(); ++i) out[i] = scale * static_cast<float>(in[i]);
  return {q.name, std::move(x)};
}

// Index of the largest value in row `row` of a [N, C] tensor.
inline int64_t ArgMaxRow(const Tensor& t, int64_t row) {
  const int64_t c = t.dim(1);
  const float* p = t.data<float>() + row * c;
  return std::max_element(p, p + c) - p;
}

}  // namespace hml::testing

#endif  // HML_TESTS_TESTING_SPLIT_REQUESTS_H_

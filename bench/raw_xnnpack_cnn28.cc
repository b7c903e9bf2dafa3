// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The raw-XNNPACK peers: the 28x28 CNN (fp32, and its int8 twin) written by hand against
// XNNPACK's subgraph API, the way an app without hybridml would. They are the floor for
// hybridml's XNNPACK backend (target: at most 10 % overhead).
//
// Besides src/runtime/backends/xnnpack/, this file is the one place allowed to include
// <xnnpack.h>, and only for this peer: the benchmark needs a baseline that bypasses hybridml.
#include <xnnpack.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "bench/peers.h"

namespace hml::bench {
namespace {

// The one translation of xnn_status into Status for this file.
Status XnnError(xnn_status status, const char* what) {
  if (status == xnn_status_success) return Status::Ok();
  std::string msg = std::string("raw XNNPACK: ") + what + " failed with xnn_status " +
                    std::to_string(static_cast<int>(status));
  switch (status) {
    case xnn_status_uninitialized:
    case xnn_status_unsupported_hardware:
      return UnavailableError(msg);
    case xnn_status_invalid_parameter:
    case xnn_status_unsupported_parameter:
      return InvalidArgumentError(msg);
    case xnn_status_out_of_memory:
      return ResourceExhaustedError(msg);
    default:
      return InternalError(msg);
  }
}

#define RAW_XNN_RETURN_IF_ERROR(call, what) HML_RETURN_IF_ERROR(XnnError((call), what))

// FC weights [10,1568] from NCHW flatten order (c*196 + h*14 + w) to NHWC ((h*14 + w)*8 + c),
// the order XNNPACK reads the [N,14,14,8] pool output in.
template <typename T>
std::vector<T> FcWeightsToNhwc(const std::vector<T>& w) {
  using W = Cnn28Weights;
  std::vector<T> out(w.size());
  const int64_t hw = W::kPooled * W::kPooled;
  for (int64_t o = 0; o < W::kClasses; ++o) {
    for (int64_t c = 0; c < W::kChannels; ++c) {
      for (int64_t p = 0; p < hw; ++p)
        out[o * W::kFlat + p * W::kChannels + c] = w[o * W::kFlat + c * hw + p];
    }
  }
  return out;
}

class RawXnnpackCnn28 final : public Engine {
 public:
  static Result<std::unique_ptr<Engine>> Create(const Cnn28Weights& w, int64_t batch) {
    using W = Cnn28Weights;
    if (batch < 1) return InvalidArgumentError("raw XNNPACK: batch must be >= 1");
    if (w.conv_w.size() != static_cast<size_t>(W::kChannels * 9) ||
        w.conv_b.size() != static_cast<size_t>(W::kChannels) ||
        w.fc_w.size() != static_cast<size_t>(W::kClasses * W::kFlat) ||
        w.fc_b.size() != static_cast<size_t>(W::kClasses)) {
      return InvalidArgumentError("raw XNNPACK: Cnn28Weights have the wrong sizes");
    }
    RAW_XNN_RETURN_IF_ERROR(xnn_initialize(/*allocator=*/nullptr), "xnn_initialize");
    auto engine = std::unique_ptr<RawXnnpackCnn28>(new RawXnnpackCnn28(batch));

    // Weights must outlive the runtime: the engine keeps them. Conv OIHW with one input channel
    // is already OHWI. The FC weight columns move from NCHW to NHWC flatten order.
    engine->conv_w_ = w.conv_w;
    engine->conv_b_ = w.conv_b;
    engine->fc_b_ = w.fc_b;
    engine->fc_w_ = FcWeightsToNhwc(w.fc_w);
    // XNNPACK may read up to XNN_EXTRA_BYTES past the end of an input.
    const size_t in_elems = static_cast<size_t>(batch * W::kSide * W::kSide);
    engine->input_.resize(in_elems + XNN_EXTRA_BYTES / sizeof(float));
    engine->output_.resize(static_cast<size_t>(batch * W::kClasses));
    HML_RETURN_IF_ERROR(engine->Build());
    return std::unique_ptr<Engine>(std::move(engine));
  }

  ~RawXnnpackCnn28() override {
    if (runtime_ != nullptr) xnn_delete_runtime(runtime_);
  }

  Status Run(const Tensor& input) override {
    const size_t n = static_cast<size_t>(batch_ * Cnn28Weights::kSide * Cnn28Weights::kSide);
    if (input.dtype() != DType::kFloat32 || static_cast<size_t>(input.num_elements()) != n) {
      return InvalidArgumentError("raw XNNPACK: input must be float32 [" + std::to_string(batch_) +
                                  ",1,28,28]");
    }
    // NCHW with one channel is NHWC: a plain copy.
    std::memcpy(input_.data(), input.raw_data(), n * sizeof(float));
    return XnnError(xnn_invoke_runtime(runtime_), "xnn_invoke_runtime");
  }

  Result<Tensor> Output() const override {
    return Tensor::FromVector<float>({batch_, Cnn28Weights::kClasses}, output_);
  }

  std::string Notes() const override { return "hand-written XNNPACK subgraph, NHWC, 1 thread"; }

 private:
  explicit RawXnnpackCnn28(int64_t batch) : batch_(batch) {}

  Status Build() {
    using W = Cnn28Weights;
    constexpr float kInf = std::numeric_limits<float>::infinity();
    const size_t n = static_cast<size_t>(batch_);
    xnn_subgraph_t sg = nullptr;
    RAW_XNN_RETURN_IF_ERROR(xnn_create_subgraph(/*external_value_ids=*/2, 0, &sg),
                            "xnn_create_subgraph");
    std::unique_ptr<xnn_subgraph, decltype(&xnn_delete_subgraph)> owner(sg, xnn_delete_subgraph);

    auto define = [&](std::vector<size_t> dims, const void* data, uint32_t external_id,
                      uint32_t flags, uint32_t* id) {
      return XnnError(xnn_define_tensor_value(sg, xnn_datatype_fp32, dims.size(), dims.data(), data,
                                              external_id, flags, id),
                      "xnn_define_tensor_value");
    };
    const size_t side = W::kSide, pooled = W::kPooled, ch = W::kChannels, cls = W::kClasses;
    uint32_t in_id, conv_w_id, conv_b_id, conv_id, pool_id, fc_w_id, fc_b_id, logits_id, probs_id;
    HML_RETURN_IF_ERROR(
        define({n, side, side, 1}, nullptr, 0, XNN_VALUE_FLAG_EXTERNAL_INPUT, &in_id));
    HML_RETURN_IF_ERROR(define({ch, 3, 3, 1}, conv_w_.data(), XNN_INVALID_VALUE_ID, 0, &conv_w_id));
    HML_RETURN_IF_ERROR(define({ch}, conv_b_.data(), XNN_INVALID_VALUE_ID, 0, &conv_b_id));
    HML_RETURN_IF_ERROR(define({n, side, side, ch}, nullptr, XNN_INVALID_VALUE_ID, 0, &conv_id));
    HML_RETURN_IF_ERROR(
        define({n, pooled, pooled, ch}, nullptr, XNN_INVALID_VALUE_ID, 0, &pool_id));
    HML_RETURN_IF_ERROR(define({cls, static_cast<size_t>(W::kFlat)}, fc_w_.data(),
                               XNN_INVALID_VALUE_ID, 0, &fc_w_id));
    HML_RETURN_IF_ERROR(define({cls}, fc_b_.data(), XNN_INVALID_VALUE_ID, 0, &fc_b_id));
    HML_RETURN_IF_ERROR(define({n, cls}, nullptr, XNN_INVALID_VALUE_ID, 0, &logits_id));
    HML_RETURN_IF_ERROR(define({n, cls}, nullptr, 1, XNN_VALUE_FLAG_EXTERNAL_OUTPUT, &probs_id));

    // Conv 3x3 pad 1 with the ReLU fused through output_min = 0.
    RAW_XNN_RETURN_IF_ERROR(
        xnn_define_convolution_2d(sg, 1, 1, 1, 1, /*kernel=*/3, 3, /*stride=*/1, 1,
                                  /*dilation=*/1, 1, /*groups=*/1, /*group_in=*/1,
                                  /*group_out=*/ch, 0.0f, kInf, in_id, conv_w_id, conv_b_id,
                                  conv_id, 0),
        "xnn_define_convolution_2d");
    RAW_XNN_RETURN_IF_ERROR(
        xnn_define_max_pooling_2d(sg, 0, 0, 0, 0, /*pool=*/2, 2, /*stride=*/2, 2,
                                  /*dilation=*/1, 1, -kInf, kInf, conv_id, pool_id, 0),
        "xnn_define_max_pooling_2d");
    // The [N,14,14,8] pool output is read as [N,1568] (NHWC flatten order, matching fc_w_).
    RAW_XNN_RETURN_IF_ERROR(xnn_define_fully_connected(sg, -kInf, kInf, pool_id, fc_w_id, fc_b_id,
                                                       logits_id, XNN_FLAG_TENSORFLOW_RESHAPE_2D),
                            "xnn_define_fully_connected");
    RAW_XNN_RETURN_IF_ERROR(xnn_define_softmax(sg, logits_id, probs_id, 0), "xnn_define_softmax");

    RAW_XNN_RETURN_IF_ERROR(xnn_create_runtime_v2(sg, /*threadpool=*/nullptr, 0, &runtime_),
                            "xnn_create_runtime_v2");
    const xnn_external_value externals[2] = {{in_id, input_.data()}, {probs_id, output_.data()}};
    return XnnError(xnn_setup_runtime(runtime_, 2, externals), "xnn_setup_runtime");
  }

  int64_t batch_;
  std::vector<float> conv_w_, conv_b_, fc_w_, fc_b_;
  std::vector<float> input_, output_;
  xnn_runtime_t runtime_ = nullptr;
};

// The int8 twin (see peers.h): the floor for hybridml's qs8 path.
class RawXnnpackCnn28Int8 final : public Engine {
 public:
  static Result<std::unique_ptr<Engine>> Create(const Cnn28Int8& q, int64_t batch) {
    using W = Cnn28Weights;
    if (batch < 1) return InvalidArgumentError("raw XNNPACK int8: batch must be >= 1");
    if (q.conv_w.size() != static_cast<size_t>(W::kChannels * 9) ||
        q.conv_w_scales.size() != static_cast<size_t>(W::kChannels) ||
        q.conv_b.size() != static_cast<size_t>(W::kChannels) ||
        q.conv_b_scales.size() != static_cast<size_t>(W::kChannels) ||
        q.fc_w.size() != static_cast<size_t>(W::kClasses * W::kFlat) ||
        q.fc_b.size() != static_cast<size_t>(W::kClasses) || q.fc_w_scales.empty() ||
        q.fc_b_scales.empty()) {
      return InvalidArgumentError("raw XNNPACK int8: Cnn28Int8 has the wrong sizes");
    }
    for (float s : q.fc_w_scales) {
      if (s != q.fc_w_scales[0]) {
        return UnimplementedError(
            "raw XNNPACK int8: per-channel fully-connected weights (no qc8 fully-connected "
            "operator in this XNNPACK)");
      }
    }
    RAW_XNN_RETURN_IF_ERROR(xnn_initialize(/*allocator=*/nullptr), "xnn_initialize");
    auto engine = std::unique_ptr<RawXnnpackCnn28Int8>(new RawXnnpackCnn28Int8(batch, q));
    engine->q_.fc_w = FcWeightsToNhwc(q.fc_w);
    const size_t in_elems = static_cast<size_t>(batch * W::kSide * W::kSide);
    engine->input_.resize(in_elems + XNN_EXTRA_BYTES / sizeof(float));
    engine->output_.resize(static_cast<size_t>(batch * W::kClasses));
    HML_RETURN_IF_ERROR(engine->Build());
    return std::unique_ptr<Engine>(std::move(engine));
  }

  ~RawXnnpackCnn28Int8() override {
    if (runtime_ != nullptr) xnn_delete_runtime(runtime_);
  }

  Status Run(const Tensor& input) override {
    const size_t n = static_cast<size_t>(batch_ * Cnn28Weights::kSide * Cnn28Weights::kSide);
    if (input.dtype() != DType::kFloat32 || static_cast<size_t>(input.num_elements()) != n) {
      return InvalidArgumentError("raw XNNPACK int8: input must be float32 [" +
                                  std::to_string(batch_) + ",1,28,28]");
    }
    std::memcpy(input_.data(), input.raw_data(), n * sizeof(float));
    return XnnError(xnn_invoke_runtime(runtime_), "xnn_invoke_runtime");
  }

  Result<Tensor> Output() const override {
    return Tensor::FromVector<float>({batch_, Cnn28Weights::kClasses}, output_);
  }

  std::string Notes() const override {
    return "hand-written XNNPACK subgraph: convert f32->qs8, qc8 conv, qs8 max pool, qs8 fully "
           "connected, convert qs8->f32, f32 softmax; 1 thread";
  }

 private:
  RawXnnpackCnn28Int8(int64_t batch, const Cnn28Int8& q) : batch_(batch), q_(q) {}

  Status Build() {
    using W = Cnn28Weights;
    constexpr float kInf = std::numeric_limits<float>::infinity();
    const size_t n = static_cast<size_t>(batch_);
    const size_t side = W::kSide, pooled = W::kPooled, ch = W::kChannels, cls = W::kClasses;
    xnn_subgraph_t sg = nullptr;
    RAW_XNN_RETURN_IF_ERROR(xnn_create_subgraph(/*external_value_ids=*/2, 0, &sg),
                            "xnn_create_subgraph");
    std::unique_ptr<xnn_subgraph, decltype(&xnn_delete_subgraph)> owner(sg, xnn_delete_subgraph);
    const uint32_t kInternal = XNN_INVALID_VALUE_ID;
    auto fp32 = [&](std::vector<size_t> dims, uint32_t external_id, uint32_t flags, uint32_t* id) {
      return XnnError(xnn_define_tensor_value(sg, xnn_datatype_fp32, dims.size(), dims.data(),
                                              nullptr, external_id, flags, id),
                      "xnn_define_tensor_value");
    };
    auto qs8 = [&](std::vector<size_t> dims, float scale, int32_t zero_point, const void* data,
                   uint32_t* id) {
      return XnnError(
          xnn_define_quantized_tensor_value(sg, xnn_datatype_qint8, zero_point, scale, dims.size(),
                                            dims.data(), data, kInternal, 0, id),
          "xnn_define_quantized_tensor_value");
    };
    uint32_t in_id, in_q, conv_w, conv_b, conv_q, pool_q, fc_w, fc_b, logits_q, logits, probs;
    HML_RETURN_IF_ERROR(fp32({n, side, side, 1}, 0, XNN_VALUE_FLAG_EXTERNAL_INPUT, &in_id));
    HML_RETURN_IF_ERROR(
        qs8({n, side, side, 1}, q_.input_scale, q_.input_zero_point, nullptr, &in_q));
    const size_t conv_w_dims[4] = {ch, 3, 3, 1};
    RAW_XNN_RETURN_IF_ERROR(
        xnn_define_channelwise_quantized_tensor_value(
            sg, xnn_datatype_qcint8, q_.conv_w_scales.data(), 4,
            /*channel_dim=*/0, conv_w_dims, q_.conv_w.data(), kInternal, 0, &conv_w),
        "xnn_define_channelwise_quantized_tensor_value");
    const size_t conv_b_dims[1] = {ch};
    RAW_XNN_RETURN_IF_ERROR(
        xnn_define_channelwise_quantized_tensor_value(
            sg, xnn_datatype_qcint32, q_.conv_b_scales.data(), 1,
            /*channel_dim=*/0, conv_b_dims, q_.conv_b.data(), kInternal, 0, &conv_b),
        "xnn_define_channelwise_quantized_tensor_value");
    HML_RETURN_IF_ERROR(
        qs8({n, side, side, ch}, q_.act_scale, q_.act_zero_point, nullptr, &conv_q));
    HML_RETURN_IF_ERROR(
        qs8({n, pooled, pooled, ch}, q_.act_scale, q_.act_zero_point, nullptr, &pool_q));
    HML_RETURN_IF_ERROR(
        qs8({cls, static_cast<size_t>(W::kFlat)}, q_.fc_w_scales[0], 0, q_.fc_w.data(), &fc_w));
    const size_t fc_b_dims[1] = {cls};
    RAW_XNN_RETURN_IF_ERROR(
        xnn_define_quantized_tensor_value(sg, xnn_datatype_qint32, 0, q_.fc_b_scales[0], 1,
                                          fc_b_dims, q_.fc_b.data(), kInternal, 0, &fc_b),
        "xnn_define_quantized_tensor_value");
    HML_RETURN_IF_ERROR(qs8({n, cls}, q_.logits_scale, q_.logits_zero_point, nullptr, &logits_q));
    HML_RETURN_IF_ERROR(fp32({n, cls}, kInternal, 0, &logits));
    HML_RETURN_IF_ERROR(fp32({n, cls}, 1, XNN_VALUE_FLAG_EXTERNAL_OUTPUT, &probs));

    RAW_XNN_RETURN_IF_ERROR(xnn_define_convert(sg, in_id, in_q, 0), "xnn_define_convert");
    RAW_XNN_RETURN_IF_ERROR(xnn_define_convolution_2d(sg, 1, 1, 1, 1, 3, 3, 1, 1, 1, 1, 1, 1, ch,
                                                      0.0f, kInf, in_q, conv_w, conv_b, conv_q, 0),
                            "xnn_define_convolution_2d");
    RAW_XNN_RETURN_IF_ERROR(
        xnn_define_max_pooling_2d(sg, 0, 0, 0, 0, 2, 2, 2, 2, 1, 1, -kInf, kInf, conv_q, pool_q, 0),
        "xnn_define_max_pooling_2d");
    RAW_XNN_RETURN_IF_ERROR(xnn_define_fully_connected(sg, -kInf, kInf, pool_q, fc_w, fc_b,
                                                       logits_q, XNN_FLAG_TENSORFLOW_RESHAPE_2D),
                            "xnn_define_fully_connected");
    RAW_XNN_RETURN_IF_ERROR(xnn_define_convert(sg, logits_q, logits, 0), "xnn_define_convert");
    RAW_XNN_RETURN_IF_ERROR(xnn_define_softmax(sg, logits, probs, 0), "xnn_define_softmax");
    RAW_XNN_RETURN_IF_ERROR(xnn_create_runtime_v2(sg, /*threadpool=*/nullptr, 0, &runtime_),
                            "xnn_create_runtime_v2");
    const xnn_external_value externals[2] = {{in_id, input_.data()}, {probs, output_.data()}};
    return XnnError(xnn_setup_runtime(runtime_, 2, externals), "xnn_setup_runtime");
  }

  int64_t batch_;
  Cnn28Int8 q_;  // the weights must outlive the runtime
  std::vector<float> input_, output_;
  xnn_runtime_t runtime_ = nullptr;
};

}  // namespace

Result<std::unique_ptr<Engine>> CreateRawXnnpackCnn28Engine(const Cnn28Weights& weights,
                                                            int64_t batch) {
  return RawXnnpackCnn28::Create(weights, batch);
}

Result<std::unique_ptr<Engine>> CreateRawXnnpackCnn28Int8Engine(const Cnn28Int8& q, int64_t batch) {
  return RawXnnpackCnn28Int8::Create(q, batch);
}

}  // namespace hml::bench

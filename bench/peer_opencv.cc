// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The OpenCV DNN peer. OpenCV throws cv::Exception (and std::exception); everything is caught in
// this file and becomes a Status.
#include <cstring>
#include <exception>
#include <memory>
#include <opencv2/core.hpp>
#include <opencv2/core/utility.hpp>
#include <opencv2/dnn.hpp>
#include <string>
#include <vector>

#include "bench/peers.h"

namespace hml::bench {
namespace {

// The one translation of OpenCV's exceptions into Status for this file.
Status FromException(const std::exception& e, const std::string& what) {
  return InternalError("OpenCV DNN: " + what + ": " + e.what());
}

class OpenCvEngine final : public Engine {
 public:
  static Result<std::unique_ptr<Engine>> Create(const std::string& onnx_path,
                                                const Shape& input_shape) {
    auto engine = std::unique_ptr<OpenCvEngine>(new OpenCvEngine(input_shape));
    try {
      cv::setNumThreads(1);
      engine->net_ = cv::dnn::readNetFromONNX(onnx_path);
      if (engine->net_.empty()) return InvalidArgumentError("OpenCV DNN: empty net " + onnx_path);
      engine->net_.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
      engine->net_.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
    } catch (const std::exception& e) {
      return FromException(e, "loading " + onnx_path);
    }
    return std::unique_ptr<Engine>(std::move(engine));
  }

  Status Run(const Tensor& input) override {
    if (input.dtype() != DType::kFloat32 || input.shape() != input_shape_) {
      return InvalidArgumentError("OpenCV DNN: input must be float32 " +
                                  ShapeToString(input_shape_));
    }
    try {
      // A header over the caller's buffer (no copy); setInput() keeps its own reference.
      cv::Mat blob(static_cast<int>(dims_.size()), dims_.data(), CV_32F,
                   const_cast<void*>(input.raw_data()));
      net_.setInput(blob);
      output_ = net_.forward();
    } catch (const std::exception& e) {
      return FromException(e, "forward");
    }
    return Status::Ok();
  }

  Result<Tensor> Output() const override {
    if (output_.empty() || output_.type() != CV_32F || !output_.isContinuous()) {
      return FailedPreconditionError("OpenCV DNN: no float output (Run() first)");
    }
    const int64_t total = static_cast<int64_t>(output_.total());
    const int64_t batch = input_shape_[0];
    HML_ASSIGN_OR_RETURN(Tensor t, Tensor::Allocate(DType::kFloat32, {batch, total / batch}));
    std::memcpy(t.raw_data(), output_.ptr<float>(), t.byte_size());
    return t;
  }

  std::string Notes() const override { return "readNetFromONNX, backend OPENCV, target CPU"; }

 private:
  explicit OpenCvEngine(const Shape& input_shape) : input_shape_(input_shape) {
    for (int64_t d : input_shape) dims_.push_back(static_cast<int>(d));
  }

  Shape input_shape_;
  std::vector<int> dims_;
  cv::dnn::Net net_;
  cv::Mat output_;
};

}  // namespace

Result<std::unique_ptr<Engine>> CreateOpenCvEngine(const std::string& onnx_path,
                                                   const Shape& input_shape) {
  return OpenCvEngine::Create(onnx_path, input_shape);
}

std::string OpenCvVersion() { return CV_VERSION; }

}  // namespace hml::bench

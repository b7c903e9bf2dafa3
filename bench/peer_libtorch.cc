// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The LibTorch peer: TorchScript files through torch::jit, and the 28x28 CNN rebuilt from
// torch::nn modules. LibTorch throws c10::Error (a std::exception); everything is caught in this
// file and becomes a Status. This is the only benchmark file that includes torch headers (~25 s
// to compile).
#include <torch/script.h>
#include <torch/torch.h>

#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "bench/peers.h"

namespace hml::bench {
namespace {

// The one translation of LibTorch's exceptions into Status for this file.
Status FromException(const std::exception& e, const std::string& what) {
  std::string msg = e.what();
  // c10::Error messages carry a long C++ backtrace after the first line.
  if (size_t nl = msg.find('\n'); nl != std::string::npos) msg.resize(nl);
  return InternalError("LibTorch: " + what + ": " + msg);
}

// One intra-op thread, one inter-op thread. The inter-op count can be set only once per
// process, before any inter-op work; each benchmark cell runs in a fresh child process.
void UseOneThread() {
  torch::set_num_threads(1);
  at::init_num_threads();
  try {
    at::set_num_interop_threads(1);
  } catch (const std::exception&) {
    // Already set in this process: the first setting stays.
  }
}

Result<Tensor> ToHml(const torch::Tensor& out, int64_t batch) {
  torch::Tensor t = out.contiguous().to(torch::kFloat32);
  const int64_t total = t.numel();
  HML_ASSIGN_OR_RETURN(Tensor result, Tensor::Allocate(DType::kFloat32, {batch, total / batch}));
  std::memcpy(result.raw_data(), t.data_ptr<float>(), result.byte_size());
  return result;
}

std::vector<int64_t> Dims(const Shape& shape) { return {shape.begin(), shape.end()}; }

class TorchScriptEngine final : public Engine {
 public:
  static Result<std::unique_ptr<Engine>> Create(const std::string& path, const Shape& shape,
                                                bool optimize) {
    auto engine = std::unique_ptr<TorchScriptEngine>(new TorchScriptEngine(shape, optimize));
    try {
      UseOneThread();
      engine->module_ = torch::jit::load(path);
      engine->module_.eval();
      if (optimize) engine->module_ = torch::jit::optimize_for_inference(engine->module_);
    } catch (const std::exception& e) {
      return FromException(e, "loading " + path);
    }
    return std::unique_ptr<Engine>(std::move(engine));
  }

  Status Run(const Tensor& input) override {
    if (input.dtype() != DType::kFloat32 || input.shape() != shape_) {
      return InvalidArgumentError("LibTorch: input must be float32 " + ShapeToString(shape_));
    }
    try {
      c10::InferenceMode guard;
      // A tensor over the caller's buffer (no copy); forward() does not write to its input.
      torch::Tensor x =
          torch::from_blob(const_cast<void*>(input.raw_data()), Dims(shape_), torch::kFloat32);
      std::vector<torch::jit::IValue> args{x};
      output_ = module_.forward(args).toTensor();
    } catch (const std::exception& e) {
      return FromException(e, "forward");
    }
    return Status::Ok();
  }

  Result<Tensor> Output() const override {
    if (!output_.defined()) return FailedPreconditionError("LibTorch: no output (Run() first)");
    try {
      return ToHml(output_, shape_[0]);
    } catch (const std::exception& e) {
      return FromException(e, "reading the output");
    }
  }

  std::string Notes() const override {
    return std::string("torch::jit::load (traced), eval") +
           (optimize_ ? ", torch::jit::optimize_for_inference (freeze, fold BN)" : "") +
           ", InferenceMode, 1 thread";
  }

 private:
  TorchScriptEngine(const Shape& shape, bool optimize) : shape_(shape), optimize_(optimize) {}

  Shape shape_;
  bool optimize_;
  torch::jit::Module module_;
  torch::Tensor output_;
};

// The 28x28 CNN as torch::nn modules: Conv2d(1->8, 3x3, pad 1) -> relu -> max_pool 2x2 ->
// flatten -> Linear(1568->10) -> softmax.
struct Cnn28NetImpl : torch::nn::Module {
  Cnn28NetImpl()
      : conv(register_module(
            "conv",
            torch::nn::Conv2d(torch::nn::Conv2dOptions(1, Cnn28Weights::kChannels, 3).padding(1)))),
        fc(register_module("fc", torch::nn::Linear(Cnn28Weights::kFlat, Cnn28Weights::kClasses))) {}

  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor y = torch::relu(conv->forward(x));
    y = torch::max_pool2d(y, {2, 2}, {2, 2});
    y = fc->forward(y.flatten(1));
    return torch::softmax(y, 1);
  }

  torch::nn::Conv2d conv;
  torch::nn::Linear fc;
};
TORCH_MODULE(Cnn28Net);

class TorchCnn28Engine final : public Engine {
 public:
  static Result<std::unique_ptr<Engine>> Create(const Cnn28Weights& w, int64_t batch) {
    auto engine = std::unique_ptr<TorchCnn28Engine>(new TorchCnn28Engine(batch));
    try {
      UseOneThread();
      engine->net_->eval();
      torch::NoGradGuard no_grad;
      auto copy_in = [](torch::Tensor& dst, const std::vector<float>& src) {
        if (static_cast<size_t>(dst.numel()) != src.size()) return false;
        dst.copy_(torch::from_blob(const_cast<float*>(src.data()), dst.sizes(), torch::kFloat32));
        return true;
      };
      if (!copy_in(engine->net_->conv->weight, w.conv_w) ||
          !copy_in(engine->net_->conv->bias, w.conv_b) ||
          !copy_in(engine->net_->fc->weight, w.fc_w) || !copy_in(engine->net_->fc->bias, w.fc_b)) {
        return InvalidArgumentError("LibTorch: Cnn28Weights have the wrong sizes");
      }
    } catch (const std::exception& e) {
      return FromException(e, "building the 28x28 CNN");
    }
    return std::unique_ptr<Engine>(std::move(engine));
  }

  Status Run(const Tensor& input) override {
    const Shape shape = {batch_, 1, Cnn28Weights::kSide, Cnn28Weights::kSide};
    if (input.dtype() != DType::kFloat32 || input.shape() != shape) {
      return InvalidArgumentError("LibTorch: input must be float32 " + ShapeToString(shape));
    }
    try {
      c10::InferenceMode guard;
      torch::Tensor x =
          torch::from_blob(const_cast<void*>(input.raw_data()), Dims(shape), torch::kFloat32);
      output_ = net_->forward(x);
    } catch (const std::exception& e) {
      return FromException(e, "forward");
    }
    return Status::Ok();
  }

  Result<Tensor> Output() const override {
    if (!output_.defined()) return FailedPreconditionError("LibTorch: no output (Run() first)");
    try {
      return ToHml(output_, batch_);
    } catch (const std::exception& e) {
      return FromException(e, "reading the output");
    }
  }

  std::string Notes() const override {
    return "torch::nn rebuild with the same weights (no TorchScript file), InferenceMode, 1 thread";
  }

 private:
  explicit TorchCnn28Engine(int64_t batch) : batch_(batch) {}

  int64_t batch_;
  Cnn28Net net_;
  torch::Tensor output_;
};

}  // namespace

Result<std::unique_ptr<Engine>> CreateLibTorchEngine(const std::string& torchscript_path,
                                                     const Shape& input_shape, bool optimize) {
  return TorchScriptEngine::Create(torchscript_path, input_shape, optimize);
}

Result<std::unique_ptr<Engine>> CreateLibTorchCnn28Engine(const Cnn28Weights& weights,
                                                          int64_t batch) {
  return TorchCnn28Engine::Create(weights, batch);
}

std::string LibTorchVersion() { return TORCH_VERSION; }

}  // namespace hml::bench

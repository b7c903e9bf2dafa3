// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "bench/hybridml_engine.h"

#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "hml/logging.h"
#include "hml/runtime/model.h"

namespace hml::bench {
namespace {

// Keeps the session's warnings and errors (e.g. a backend falling back from int8 to fp32) so the
// benchmark can print them next to the numbers instead of interleaving them with its progress.
class CapturingLogger final : public Logger {
 public:
  void Write(LogLevel level, std::string_view file, int line, std::string_view message) override {
    std::lock_guard<std::mutex> lock(mu_);
    lines_.push_back(std::string(LogLevelName(level)) + ": " + std::string(message));
  }
  LogLevel min_level() const override { return LogLevel::kWarning; }
  std::vector<std::string> lines() const {
    std::lock_guard<std::mutex> lock(mu_);
    return lines_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> lines_;
};

class HybridmlEngine final : public Engine {
 public:
  static Result<std::unique_ptr<Engine>> Create(const std::string& onnx_path,
                                                const std::string& backend,
                                                const Shape& input_shape) {
    HML_ASSIGN_OR_RETURN(Model model, Model::Load(onnx_path));
    if (model.inputs().size() != 1) {
      return InvalidArgumentError(onnx_path + ": the benchmark expects exactly one input");
    }
    auto logger = std::make_unique<CapturingLogger>();
    SessionOptions options;
    options.backend = backend;
    options.num_threads = 1;
    options.input_shapes[model.inputs()[0].name] = input_shape;
    options.logger = logger.get();
    HML_ASSIGN_OR_RETURN(std::unique_ptr<Session> session, Session::Create(model, options));
    if (session->num_outputs() < 1) return InvalidArgumentError(onnx_path + ": no outputs");
    if (session->input(0).dtype() != DType::kFloat32 || session->input(0).shape() != input_shape) {
      return InvalidArgumentError(onnx_path + ": the session's input is " +
                                  ShapeToString(session->input(0).shape()) + ", not float32 " +
                                  ShapeToString(input_shape));
    }
    return std::unique_ptr<Engine>(
        new HybridmlEngine(std::move(logger), std::move(session), backend));
  }

  Status Run(const Tensor& input) override {
    Tensor& in = session_->input(0);
    if (input.dtype() != in.dtype() || input.shape() != in.shape()) {
      return InvalidArgumentError("hybridml: input must be float32 " + ShapeToString(in.shape()));
    }
    std::memcpy(in.raw_data(), input.raw_data(), in.byte_size());
    return session_->Run();
  }

  Result<Tensor> Output() const override {
    const Tensor& out = session_->output(0);
    if (out.dtype() != DType::kFloat32 || out.rank() < 1) {
      return InvalidArgumentError("hybridml: the first output is not a float tensor");
    }
    const int64_t batch = out.dim(0);
    HML_ASSIGN_OR_RETURN(
        Tensor copy,
        Tensor::Allocate(DType::kFloat32, {batch, batch > 0 ? out.num_elements() / batch : 0}));
    std::memcpy(copy.raw_data(), out.raw_data(), out.byte_size());
    return copy;
  }

  std::string Notes() const override {
    std::string notes = SummarizeSegments(session_->segments(), backend_) + "; arena " +
                        std::to_string((session_->arena_bytes() + 1023) / 1024) + " KiB";
    for (const std::string& line : logger_->lines()) notes += "; log " + line;
    return notes;
  }

 private:
  HybridmlEngine(std::unique_ptr<CapturingLogger> logger, std::unique_ptr<Session> session,
                 std::string backend)
      : logger_(std::move(logger)), session_(std::move(session)), backend_(std::move(backend)) {}

  // Declared before session_: the session logs through it until destroyed.
  std::unique_ptr<CapturingLogger> logger_;
  std::unique_ptr<Session> session_;
  std::string backend_;
};

}  // namespace

Result<std::unique_ptr<Engine>> CreateHybridmlEngine(const std::string& onnx_path,
                                                     const std::string& backend,
                                                     const Shape& input_shape) {
  return HybridmlEngine::Create(onnx_path, backend, input_shape);
}

std::string SummarizeSegments(const std::vector<SegmentInfo>& segments,
                              const std::string& preferred) {
  size_t total = 0, on_preferred = 0;
  std::vector<std::string> elsewhere;
  for (const SegmentInfo& s : segments) {
    total += s.nodes.size();
    if (s.backend == preferred) {
      on_preferred += s.nodes.size();
    } else {
      for (const std::string& n : s.nodes) elsewhere.push_back(s.backend + ": " + n);
    }
  }
  std::string out = preferred + " " + std::to_string(on_preferred) + "/" + std::to_string(total) +
                    " nodes in " + std::to_string(segments.size()) + " segment" +
                    (segments.size() == 1 ? "" : "s");
  constexpr size_t kShown = 4;
  for (size_t i = 0; i < elsewhere.size() && i < kShown; ++i) {
    out += (i == 0 ? "; not on " + preferred + ": " : ", ") + elsewhere[i];
  }
  if (elsewhere.size() > kShown) out += ", +" + std::to_string(elsewhere.size() - kShown) + " more";
  return out;
}

}  // namespace hml::bench

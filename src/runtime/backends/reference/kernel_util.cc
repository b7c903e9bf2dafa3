// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/runtime/backends/reference/kernel_util.h"

#include <cstring>

namespace hml::runtime {

Status UnsupportedElementType(const KernelArgs& args, DType dtype) {
  return args.Error("element type " + std::string(DTypeName(dtype)) + " is not supported");
}

Status UnsupportedDType(const KernelArgs& args, std::string_view what, DType dtype,
                        DTypeSet allowed) {
  return Unimplemented(args, std::string(what) + " " + std::string(DTypeName(dtype)) +
                                 " is not supported (" + allowed.Names() + " are)");
}

Status Unimplemented(const KernelArgs& args, std::string_view why) {
  return UnimplementedError(args.Error(why).message());
}

bool HasInput(const KernelArgs& args, size_t i) {
  return i < args.inputs.size() && !args.inputs[i].empty();
}

Status CheckArity(const KernelArgs& args, size_t min_inputs, size_t num_outputs) {
  if (args.inputs.size() < min_inputs) {
    return args.Error("has " + std::to_string(args.inputs.size()) + " inputs, expected at least " +
                      std::to_string(min_inputs));
  }
  for (size_t i = 0; i < min_inputs; ++i) {
    if (args.inputs[i].empty()) return args.Error("input " + std::to_string(i) + " is missing");
  }
  if (num_outputs > 0 && (args.outputs.size() < num_outputs || args.outputs[0].empty())) {
    return args.Error("expected " + std::to_string(num_outputs) + " output(s)");
  }
  return Status::Ok();
}

Status CheckInput(const KernelArgs& args, size_t i, DType dtype) {
  if (!HasInput(args, i)) return args.Error("input " + std::to_string(i) + " is missing");
  if (args.inputs[i].dtype() != dtype) {
    return args.Error("input " + std::to_string(i) + " has dtype " +
                      std::string(DTypeName(args.inputs[i].dtype())) + ", expected " +
                      std::string(DTypeName(dtype)));
  }
  return Status::Ok();
}

Status CheckOutput(const KernelArgs& args, size_t i, DType dtype, const Shape& shape) {
  if (i >= args.outputs.size() || args.outputs[i].empty()) {
    return args.Error("output " + std::to_string(i) + " is missing");
  }
  const Tensor& t = args.outputs[i];
  if (t.dtype() != dtype || t.shape() != shape) {
    return args.Error("output " + std::to_string(i) + " is " + std::string(DTypeName(t.dtype())) +
                      ShapeToString(t.shape()) + ", expected " + std::string(DTypeName(dtype)) +
                      ShapeToString(shape));
  }
  return Status::Ok();
}

int64_t Product(Shape::const_iterator begin, Shape::const_iterator end) {
  int64_t n = 1;
  for (auto it = begin; it != end; ++it) n *= *it;
  return n;
}

namespace {

class CopyKernel final : public Kernel {
 public:
  explicit CopyKernel(KernelArgs args) : args_(std::move(args)) {}
  Status Run() override {
    const void* src = args_.inputs[0].raw_data();
    void* dst = args_.outputs[0].raw_data();
    if (src != dst && args_.outputs[0].byte_size() > 0) {
      std::memmove(dst, src, args_.outputs[0].byte_size());
    }
    return Status::Ok();
  }

 private:
  KernelArgs args_;
};

}  // namespace

std::unique_ptr<Kernel> MakeCopyKernel(KernelArgs args) {
  return std::make_unique<CopyKernel>(std::move(args));
}

}  // namespace hml::runtime

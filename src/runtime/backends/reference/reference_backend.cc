// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/runtime/backends/reference/reference_backend.h"

namespace hml::runtime {
namespace {

// Builds the kernel of node `node` over the given buffers (null = read from the constant).
Result<std::unique_ptr<Kernel>> MakeKernel(const Graph& graph, const Node& node,
                                           const std::vector<void*>& buffers) {
  KernelFactory factory = ReferenceKernels().Find(node.domain, node.op_type);
  if (factory == nullptr) {
    return UnimplementedError(node.op_type + " '" + node.name +
                              "': the reference backend has no kernel for this op");
  }
  KernelArgs args;
  args.node = &node;
  args.opset = graph.opset;
  for (ValueId in : node.inputs) {
    if (in == kNoValue) {
      args.inputs.emplace_back();
      args.input_is_constant.push_back(false);
      continue;
    }
    const Value& v = graph.value(in);
    void* data = v.is_constant() ? const_cast<void*>(v.constant->raw_data())
                                 : buffers[static_cast<size_t>(in)];
    if (data == nullptr) {
      return InternalError(node.op_type + " '" + node.name + "': input '" + v.name +
                           "' has no buffer");
    }
    args.inputs.push_back(Tensor::View(v.dtype, v.shape, data));
    args.input_is_constant.push_back(v.is_constant());
  }
  for (ValueId out : node.outputs) {
    if (out == kNoValue) {
      args.outputs.emplace_back();
      continue;
    }
    const Value& v = graph.value(out);
    void* data = buffers[static_cast<size_t>(out)];
    if (data == nullptr) {
      return InternalError(node.op_type + " '" + node.name + "': output '" + v.name +
                           "' has no buffer");
    }
    args.outputs.push_back(Tensor::View(v.dtype, v.shape, data));
  }
  return factory(std::move(args));
}

class ReferenceExecutable final : public Executable {
 public:
  explicit ReferenceExecutable(std::vector<std::unique_ptr<Kernel>> kernels)
      : kernels_(std::move(kernels)) {}
  Status Run() override {
    for (auto& kernel : kernels_) HML_RETURN_IF_ERROR(kernel->Run());
    return Status::Ok();
  }

 private:
  std::vector<std::unique_ptr<Kernel>> kernels_;
};

class ReferenceBackend final : public Backend {
 public:
  std::string_view name() const override { return "reference"; }

  std::vector<bool> Claim(const Graph& graph) const override {
    std::vector<bool> claimed(graph.nodes.size());
    for (size_t n = 0; n < graph.nodes.size(); ++n) {
      claimed[n] =
          ReferenceKernels().Find(graph.nodes[n].domain, graph.nodes[n].op_type) != nullptr;
    }
    return claimed;
  }

  bool NeedsInternalBuffers() const override { return true; }

  Result<std::unique_ptr<Executable>> Compile(const Segment& segment) override {
    std::vector<void*> buffers(segment.buffers.begin(), segment.buffers.end());
    std::vector<std::unique_ptr<Kernel>> kernels;
    for (int n : segment.nodes) {
      HML_ASSIGN_OR_RETURN(
          std::unique_ptr<Kernel> kernel,
          MakeKernel(*segment.graph, segment.graph->nodes[static_cast<size_t>(n)], buffers));
      kernels.push_back(std::move(kernel));
    }
    return std::unique_ptr<Executable>(new ReferenceExecutable(std::move(kernels)));
  }
};

}  // namespace

const KernelRegistry& ReferenceKernels() {
  static const KernelRegistry* registry = [] {
    auto* r = new KernelRegistry();
    AddNnKernels(*r);
    AddElementwiseKernels(*r);
    AddTensorKernels(*r);
    return r;
  }();
  return *registry;
}

std::unique_ptr<Backend> CreateReferenceBackend(const BackendOptions& options) {
  return std::make_unique<ReferenceBackend>();
}

Result<std::vector<Tensor>> EvaluateNode(const Graph& graph, const Node& node) {
  std::vector<void*> buffers(graph.values.size(), nullptr);
  std::vector<Tensor> outputs;
  for (ValueId out : node.outputs) {
    if (out == kNoValue) {
      outputs.emplace_back();
      continue;
    }
    const Value& v = graph.value(out);
    HML_ASSIGN_OR_RETURN(Tensor t, Tensor::Allocate(v.dtype, v.shape));
    buffers[static_cast<size_t>(out)] = t.raw_data();
    outputs.push_back(std::move(t));
  }
  HML_ASSIGN_OR_RETURN(std::unique_ptr<Kernel> kernel, MakeKernel(graph, node, buffers));
  HML_RETURN_IF_ERROR(kernel->Run());
  return outputs;
}

}  // namespace hml::runtime

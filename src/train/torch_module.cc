// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The IR -> LibTorch translator (GraphModule). One of the two translation units of hybridml that
// include torch headers (with trainer.cc).
#include <algorithm>
#include <cfloat>
#include <cstring>
#include <limits>
#include <optional>
#include <set>

#include "src/runtime/ops/window_params.h"
#include "src/train/torch_internal.h"

namespace hml::train {
namespace {

using runtime::Graph;
using runtime::kNoValue;
using runtime::Node;
using runtime::ValueId;

constexpr std::string_view kTrainableOps[] = {
    "Conv",    "Gemm",        "MatMul",            "Add",     "Relu",
    "Clip",    "MaxPool",     "AveragePool",       "GlobalAveragePool",
    "Flatten", "Reshape",     "BatchNormalization", "Dropout", "Softmax",
    "Identity"};

std::string NodeName(const Graph& g, const Node& n) {
  const size_t index = static_cast<size_t>(&n - g.nodes.data());
  return n.Describe(index);
}

Result<torch::ScalarType> TorchType(DType d) {
  switch (d) {
    case DType::kFloat32: return torch::kFloat;
    case DType::kUInt8: return torch::kByte;
    case DType::kInt8: return torch::kChar;
    case DType::kInt32: return torch::kInt;
    case DType::kInt64: return torch::kLong;
    default: break;
  }
  return UnimplementedError("element type " + std::string(DTypeName(d)) + " has no torch type");
}

// A torch tensor owning a copy of `t`.
Result<torch::Tensor> ToTorch(const Tensor& t) {
  HML_ASSIGN_OR_RETURN(torch::ScalarType type, TorchType(t.dtype()));
  std::vector<int64_t> sizes(t.shape().begin(), t.shape().end());
  return torch::from_blob(const_cast<void*>(t.raw_data()), sizes,
                          torch::TensorOptions().dtype(type))
      .clone();
}

std::vector<int64_t> SpatialSizes(const torch::Tensor& x) {
  return std::vector<int64_t>(x.sizes().begin(), x.sizes().end());
}

Result<runtime::WindowParams> Window(const Node& node, runtime::WindowKind kind,
                                     const torch::Tensor& x, const std::vector<int64_t>& kernel) {
  return runtime::ResolveWindow(node, kind, SpatialSizes(x), kernel);
}

// Pads [N,C,spatial...] with pads_begin/pads_end (torch orders pads from the last dim).
torch::Tensor PadSpatial(const torch::Tensor& x, const runtime::WindowParams& p, double value) {
  std::vector<int64_t> pads;
  for (int i = p.spatial_rank - 1; i >= 0; --i) {
    pads.push_back(p.pads_begin[static_cast<size_t>(i)]);
    pads.push_back(p.pads_end[static_cast<size_t>(i)]);
  }
  return torch::constant_pad_nd(x, pads, value);
}

// True when pads are symmetric and small enough for torch's pooling (pad <= kernel / 2).
bool TorchPoolPadding(const runtime::WindowParams& p) {
  for (int i = 0; i < p.spatial_rank; ++i) {
    const size_t k = static_cast<size_t>(i);
    if (p.pads_begin[k] != p.pads_end[k] || p.pads_begin[k] > p.kernel[k] / 2) return false;
  }
  return true;
}


}  // namespace

// --- Error translation ---

Status TorchErrorStatus(const std::exception& e, std::string_view context) {
  const std::string prefix = context.empty() ? std::string() : std::string(context) + ": ";
  if (const auto* c = dynamic_cast<const c10::Error*>(&e)) {
    // msg() without the C++ backtrace LibTorch appends to what().
    return InvalidArgumentError(prefix + "LibTorch: " + c->msg());
  }
  if (dynamic_cast<const std::bad_alloc*>(&e) != nullptr) {
    return ResourceExhaustedError(prefix + "out of memory");
  }
  return InternalError(prefix + e.what());
}

bool IsTrainableOp(std::string_view op_type) {
  return std::find(std::begin(kTrainableOps), std::end(kTrainableOps), op_type) !=
         std::end(kTrainableOps);
}

namespace {

// Reads a scalar float constant input (Clip bounds, Dropout ratio), or `fallback` when absent.
std::optional<double> ScalarInput(const GraphModule::Impl& m, const Node& n, size_t i) {
  const ValueId id = n.input(i);
  if (id == kNoValue) return std::nullopt;
  const torch::Tensor& t = m.constants[static_cast<size_t>(id)];
  return t.item<double>();
}

Result<torch::Tensor> RunNode(const GraphModule::Impl& m, const Node& n, const std::string& desc,
                      const std::vector<torch::Tensor>& in, std::vector<torch::Tensor>& out) {
  const std::string& op = n.op_type;
  auto input = [&](size_t i) -> const torch::Tensor& { return in[i]; };
  auto has = [&](size_t i) { return i < in.size() && in[i].defined(); };
  if (op == "Relu") return torch::relu(input(0));
  if (op == "Identity") return input(0);
  if (op == "Add") return input(0) + input(1);
  if (op == "MatMul") return torch::matmul(input(0), input(1));
  if (op == "Gemm") {
    torch::Tensor a = n.attrs.GetInt("transA", 0) ? input(0).t() : input(0);
    torch::Tensor b = n.attrs.GetInt("transB", 0) ? input(1).t() : input(1);
    torch::Tensor y = torch::mm(a, b);
    const double alpha = n.attrs.GetFloat("alpha", 1.0f);
    if (alpha != 1.0) y = y * alpha;
    if (has(2)) {
      const double beta = n.attrs.GetFloat("beta", 1.0f);
      y = beta == 1.0 ? y + input(2) : y + input(2) * beta;
    }
    return y;
  }
  if (op == "Conv") {
    const torch::Tensor& x = input(0);
    const torch::Tensor& w = input(1);
    std::vector<int64_t> kernel(w.sizes().begin() + 2, w.sizes().end());
    HML_ASSIGN_OR_RETURN(runtime::WindowParams p,
                         Window(n, runtime::WindowKind::kConv, x, kernel));
    torch::Tensor xp = x;
    std::vector<int64_t> padding = p.pads_begin;
    if (p.pads_begin != p.pads_end) {
      xp = PadSpatial(x, p, 0.0);
      padding.assign(static_cast<size_t>(p.spatial_rank), 0);
    }
    std::vector<int64_t> output_padding(static_cast<size_t>(p.spatial_rank), 0);
    return at::convolution(xp, w, has(2) ? c10::optional<at::Tensor>(input(2)) : c10::nullopt,
                           p.strides, padding, p.dilations, false, output_padding, p.group);
  }
  if (op == "MaxPool" || op == "AveragePool") {
    const torch::Tensor& x = input(0);
    HML_ASSIGN_OR_RETURN(
        runtime::WindowParams p,
        Window(n, runtime::WindowKind::kPool, x, n.attrs.GetInts("kernel_shape")));
    const bool is_max = op == "MaxPool";
    const bool count_include_pad = n.attrs.GetInt("count_include_pad", 0) != 0;
    torch::Tensor xp = x;
    std::vector<int64_t> padding = p.pads_begin;
    if (!TorchPoolPadding(p)) {
      if (!is_max && !count_include_pad) {
        return UnimplementedError(desc + ": asymmetric pads with count_include_pad=0");
      }
      xp = PadSpatial(x, p, is_max ? -std::numeric_limits<double>::infinity() : 0.0);
      padding.assign(static_cast<size_t>(p.spatial_rank), 0);
    }
    if (is_max) {
      switch (p.spatial_rank) {
        case 1:
          return torch::max_pool1d(xp, p.kernel, p.strides, padding, p.dilations, p.ceil_mode);
        case 2:
          return torch::max_pool2d(xp, p.kernel, p.strides, padding, p.dilations, p.ceil_mode);
        case 3:
          return torch::max_pool3d(xp, p.kernel, p.strides, padding, p.dilations, p.ceil_mode);
        default: break;
      }
    } else {
      for (int64_t d : p.dilations) {
        if (d != 1) return UnimplementedError(desc + ": dilated AveragePool");
      }
      switch (p.spatial_rank) {
        case 1:
          return torch::avg_pool1d(xp, p.kernel, p.strides, padding, p.ceil_mode,
                                   count_include_pad);
        case 2:
          return torch::avg_pool2d(xp, p.kernel, p.strides, padding, p.ceil_mode,
                                   count_include_pad);
        case 3:
          return torch::avg_pool3d(xp, p.kernel, p.strides, padding, p.ceil_mode,
                                   count_include_pad);
        default: break;
      }
    }
    return UnimplementedError(desc + ": " + std::to_string(p.spatial_rank) + "-D pooling");
  }
  if (op == "GlobalAveragePool") {
    const torch::Tensor& x = input(0);
    std::vector<int64_t> dims;
    for (int64_t d = 2; d < x.dim(); ++d) dims.push_back(d);
    return x.mean(dims, /*keepdim=*/true);
  }
  if (op == "BatchNormalization") {
    const double eps = n.attrs.GetFloat("epsilon", 1e-5f);
    // ONNX: running = running * momentum + batch * (1 - momentum); torch weighs the batch by its
    // momentum.
    const double momentum = 1.0 - n.attrs.GetFloat("momentum", 0.9f);
    const bool batch_statistics = m.training && !m.IsFrozen(n.inputs[1]);
    return torch::batch_norm(input(0), input(1), input(2), input(3), input(4), batch_statistics,
                             momentum, eps, /*cudnn_enabled=*/false);
  }
  if (op == "Clip") {
    std::optional<double> lo, hi;
    if (m.graph.opset < 11) {
      lo = n.attrs.GetFloat("min", -FLT_MAX);
      hi = n.attrs.GetFloat("max", FLT_MAX);
    } else {
      lo = ScalarInput(m, n, 1);
      hi = ScalarInput(m, n, 2);
    }
    return torch::clamp(input(0), lo ? c10::optional<c10::Scalar>(*lo) : c10::nullopt,
                        hi ? c10::optional<c10::Scalar>(*hi) : c10::nullopt);
  }
  if (op == "Flatten") {
    const torch::Tensor& x = input(0);
    int64_t axis = n.attrs.GetInt("axis", 1);
    if (axis < 0) axis += x.dim();
    int64_t outer = 1;
    for (int64_t d = 0; d < axis; ++d) outer *= x.size(d);
    return x.reshape({outer, -1});
  }
  if (op == "Reshape") {
    const torch::Tensor& x = input(0);
    const torch::Tensor& shape_t = m.constants[static_cast<size_t>(n.input(1))];
    const bool allow_zero = n.attrs.GetInt("allowzero", 0) != 0;
    std::vector<int64_t> shape(static_cast<size_t>(shape_t.numel()));
    auto acc = shape_t.to(torch::kLong).contiguous();
    for (size_t i = 0; i < shape.size(); ++i) {
      shape[i] = acc.data_ptr<int64_t>()[i];
      if (shape[i] == 0 && !allow_zero) shape[i] = x.size(static_cast<int64_t>(i));
    }
    return x.reshape(shape);
  }
  if (op == "Dropout") {
    double ratio = 0.5;
    if (m.graph.opset < 12) {
      ratio = n.attrs.GetFloat("ratio", 0.5f);
    } else if (auto r = ScalarInput(m, n, 1)) {
      ratio = *r;
    }
    return torch::dropout(input(0), ratio, m.training);
  }
  if (op == "Softmax") {
    const torch::Tensor& x = input(0);
    if (m.graph.opset >= 13) {
      return torch::softmax(x, n.attrs.GetInt("axis", -1));
    }
    // Before opset 13: coerce to 2-D at `axis`, softmax over the second dim.
    int64_t axis = n.attrs.GetInt("axis", 1);
    if (axis < 0) axis += x.dim();
    int64_t outer = 1;
    for (int64_t d = 0; d < axis; ++d) outer *= x.size(d);
    return torch::softmax(x.reshape({outer, -1}), 1).reshape(x.sizes());
  }
  (void)out;
  return UnimplementedError(desc + ": op not in the training subset");
}

// Static checks at Create time, so unsupported forms fail before any data flows.
Status CheckNode(const Graph& g, const Node& n, const std::vector<int>& uses) {
  const std::string desc = NodeName(g, n);
  if (!n.domain.empty() && n.domain != "ai.onnx") {
    return UnimplementedError(desc + ": domain '" + n.domain + "' is not in the training subset");
  }
  if (!IsTrainableOp(n.op_type)) {
    return UnimplementedError(desc + ": op " + n.op_type +
                              " is not in the training subset (Conv, Gemm, MatMul, Add, Relu, "
                              "Clip, MaxPool, AveragePool, GlobalAveragePool, "
                              "BatchNormalization, Flatten, Reshape, Dropout, Softmax)");
  }
  auto constant_input = [&](size_t i) {
    const ValueId id = n.input(i);
    return id == kNoValue || g.value(id).is_constant();
  };
  for (size_t o = 1; o < n.outputs.size(); ++o) {
    const ValueId id = n.outputs[o];
    if (id != kNoValue && uses[static_cast<size_t>(id)] > 0) {
      return UnimplementedError(desc + ": output " + std::to_string(o) + " ('" +
                                g.value(id).name + "') is not supported for training");
    }
  }
  if (n.op_type == "Reshape" && !constant_input(1)) {
    return UnimplementedError(desc + ": the shape input must be a constant");
  }
  if (n.op_type == "Clip" && (!constant_input(1) || !constant_input(2))) {
    return UnimplementedError(desc + ": min/max must be constants");
  }
  if (n.op_type == "Dropout" && !constant_input(1)) {
    return UnimplementedError(desc + ": the ratio must be a constant");
  }
  if (n.op_type == "BatchNormalization") {
    for (size_t i = 1; i < 5; ++i) {
      if (n.input(i) == kNoValue || !g.value(n.input(i)).is_constant()) {
        return UnimplementedError(desc + ": scale, bias, mean and var must be constants");
      }
    }
  }
  return Status::Ok();
}

}  // namespace

// --- GraphModule::Impl ---

Result<std::vector<torch::Tensor>> GraphModule::Impl::Run(
    const std::vector<torch::Tensor>& inputs, const std::vector<ValueId>& wanted) {
  if (inputs.size() != graph.inputs.size()) {
    return InvalidArgumentError("graph '" + graph.name + "' has " +
                                std::to_string(graph.inputs.size()) + " inputs, " +
                                std::to_string(inputs.size()) + " given");
  }
  std::vector<torch::Tensor> values = constants;
  for (size_t i = 0; i < inputs.size(); ++i) {
    values[static_cast<size_t>(graph.inputs[i])] = inputs[i];
  }
  // Only the nodes that lead to `wanted`.
  std::vector<bool> needed(graph.values.size(), false);
  for (ValueId id : wanted) needed[static_cast<size_t>(id)] = true;
  std::vector<bool> run(graph.nodes.size(), false);
  for (size_t k = graph.nodes.size(); k-- > 0;) {
    const Node& n = graph.nodes[k];
    for (ValueId o : n.outputs) {
      if (o != kNoValue && needed[static_cast<size_t>(o)]) run[k] = true;
    }
    if (run[k]) {
      for (ValueId i : n.inputs) {
        if (i != kNoValue) needed[static_cast<size_t>(i)] = true;
      }
    }
  }
  std::vector<torch::Tensor> in, extra;
  for (size_t k = 0; k < graph.nodes.size(); ++k) {
    if (!run[k]) continue;
    const Node& n = graph.nodes[k];
    const std::string desc = n.Describe(k);
    in.clear();
    for (ValueId i : n.inputs) {
      in.push_back(i == kNoValue ? torch::Tensor() : values[static_cast<size_t>(i)]);
    }
    try {
      Result<torch::Tensor> y = RunNode(*this, n, desc, in, extra);
      if (!y.ok()) return y.status();
      values[static_cast<size_t>(n.outputs[0])] = std::move(*y);
    } catch (const c10::Error& e) {
      return TorchErrorStatus(e, desc);
    }
  }
  std::vector<torch::Tensor> out;
  for (ValueId id : wanted) out.push_back(values[static_cast<size_t>(id)]);
  return out;
}

// --- GraphModule ---

GraphModule::GraphModule(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
GraphModule::~GraphModule() = default;

Result<std::unique_ptr<GraphModule>> GraphModule::Create(const runtime::Graph& source) {
  auto impl = std::make_unique<Impl>();
  impl->graph = source;
  Graph& g = impl->graph;
  HML_RETURN_IF_ERROR(g.Validate());
  const std::vector<int> uses = g.UseCounts();
  for (const Node& n : g.nodes) HML_RETURN_IF_ERROR(CheckNode(g, n, uses));
  if (g.outputs.empty()) return InvalidArgumentError("graph '" + g.name + "' has no outputs");

  // Roles of constants: trainable parameters and BatchNorm buffers.
  std::set<ValueId> params, buffers;
  auto mark = [&](const Node& n, size_t i, std::set<ValueId>& into) {
    const ValueId id = n.input(i);
    if (id != kNoValue && g.value(id).is_constant() &&
        g.value(id).constant->dtype() == DType::kFloat32) {
      into.insert(id);
    }
  };
  for (const Node& n : g.nodes) {
    if (n.op_type == "Conv" || n.op_type == "Gemm") {
      mark(n, 1, params);
      mark(n, 2, params);
    } else if (n.op_type == "MatMul" || n.op_type == "Add") {
      mark(n, 0, params);
      mark(n, 1, params);
    } else if (n.op_type == "BatchNormalization") {
      mark(n, 1, params);
      mark(n, 2, params);
      mark(n, 3, buffers);
      mark(n, 4, buffers);
    }
  }
  for (ValueId id : params) {
    if (buffers.count(id)) {
      return UnimplementedError("constant '" + g.value(id).name +
                                "' is both a weight and BatchNorm statistics");
    }
  }
  try {
    impl->constants.resize(g.values.size());
    for (size_t i = 0; i < g.values.size(); ++i) {
      if (!g.values[i].is_constant()) continue;
      HML_ASSIGN_OR_RETURN(impl->constants[i], ToTorch(*g.values[i].constant));
    }
    for (ValueId id : params) {
      torch::Tensor& t = impl->constants[static_cast<size_t>(id)];
      t.set_requires_grad(true);
      impl->parameter_ids.push_back(id);
      impl->parameters.push_back(t);
    }
    impl->buffer_ids.assign(buffers.begin(), buffers.end());
  } catch (const std::exception& e) {
    return TorchErrorStatus(e, "graph '" + g.name + "'");
  }
  impl->logits = g.outputs[0];
  const std::vector<int> producers = g.Producers();
  const int p = producers[static_cast<size_t>(impl->logits)];
  if (p >= 0 && g.nodes[static_cast<size_t>(p)].op_type == "Softmax") {
    impl->logits = g.nodes[static_cast<size_t>(p)].inputs[0];
  }
  return std::unique_ptr<GraphModule>(new GraphModule(std::move(impl)));
}

void GraphModule::SetTraining(bool training) { impl_->training = training; }
bool GraphModule::training() const { return impl_->training; }

Result<std::vector<Tensor>> GraphModule::Forward(std::span<const Tensor> inputs) {
  const Graph& g = impl_->graph;
  try {
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> in;
    for (size_t i = 0; i < inputs.size(); ++i) {
      if (inputs[i].dtype() != DType::kFloat32) {
        const std::string name =
            i < g.inputs.size() ? g.value(g.inputs[i]).name : std::to_string(i);
        return InvalidArgumentError("input '" + name + "' is " +
                                    std::string(DTypeName(inputs[i].dtype())) +
                                    ", the trainer takes float32");
      }
      std::vector<int64_t> sizes(inputs[i].shape().begin(), inputs[i].shape().end());
      in.push_back(torch::from_blob(const_cast<void*>(inputs[i].raw_data()), sizes,
                                    torch::TensorOptions().dtype(torch::kFloat)));
    }
    HML_ASSIGN_OR_RETURN(std::vector<torch::Tensor> out, impl_->Run(in, g.outputs));
    std::vector<Tensor> result;
    for (torch::Tensor& t : out) {
      torch::Tensor c = t.contiguous().to(torch::kFloat);
      HML_ASSIGN_OR_RETURN(Tensor r,
                           Tensor::Allocate(DType::kFloat32, Shape(c.sizes().begin(),
                                                                   c.sizes().end())));
      std::memcpy(r.raw_data(), c.data_ptr<float>(), r.byte_size());
      result.push_back(std::move(r));
    }
    return result;
  } catch (const std::exception& e) {
    return TorchErrorStatus(e, "graph '" + g.name + "'");
  }
}

Result<runtime::Graph> GraphModule::ExportGraph() const {
  Graph out = impl_->graph;
  try {
    auto write = [&](ValueId id) -> Status {
      torch::Tensor t = impl_->constants[static_cast<size_t>(id)].detach().contiguous();
      runtime::Value& v = out.value(id);
      HML_ASSIGN_OR_RETURN(Tensor r, Tensor::Allocate(DType::kFloat32, v.constant->shape()));
      if (static_cast<size_t>(t.numel()) != static_cast<size_t>(r.num_elements())) {
        return InternalError("constant '" + v.name + "' changed its size during training");
      }
      std::memcpy(r.raw_data(), t.data_ptr<float>(), r.byte_size());
      v.constant = std::make_shared<const Tensor>(std::move(r));
      return Status::Ok();
    };
    for (ValueId id : impl_->parameter_ids) HML_RETURN_IF_ERROR(write(id));
    for (ValueId id : impl_->buffer_ids) HML_RETURN_IF_ERROR(write(id));
  } catch (const std::exception& e) {
    return TorchErrorStatus(e, "exporting graph '" + out.name + "'");
  }
  return out;
}

std::vector<std::string> GraphModule::parameter_names() const {
  std::vector<std::string> names;
  for (ValueId id : impl_->parameter_ids) names.push_back(impl_->graph.value(id).name);
  return names;
}

int64_t GraphModule::num_parameters() const {
  int64_t n = 0;
  for (const torch::Tensor& t : impl_->parameters) n += t.numel();
  return n;
}

}  // namespace hml::train

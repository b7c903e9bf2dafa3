// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "hml/runtime/session.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "src/runtime/backend.h"
#include "src/runtime/graph.h"
#include "src/runtime/memory_plan.h"
#include "src/runtime/op_registry.h"
#include "src/runtime/passes.h"

namespace hml {

using runtime::Backend;
using runtime::Executable;
using runtime::Graph;
using runtime::kNoValue;
using runtime::Node;
using runtime::ValueId;

Status SessionOptions::Validate() const {
  if (num_threads < 1 || num_threads > 64) {
    return InvalidArgumentError("SessionOptions.num_threads must be in [1, 64], got " +
                                std::to_string(num_threads));
  }
  if (backend.empty()) return InvalidArgumentError("SessionOptions.backend is empty");
  return Status::Ok();
}

namespace {

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};

// Everything that depends on the input shapes; rebuilt by Reshape().
struct Prepared {
  Graph graph;
  std::unique_ptr<void, FreeDeleter> arena;
  size_t arena_bytes = 0;
  std::vector<void*> buffers;             // by ValueId; null when not materialised
  std::vector<Tensor> constant_outputs;   // copies of graph outputs that folded to constants
  std::vector<std::unique_ptr<Executable>> executables;  // destroyed before the backends
  std::vector<SegmentInfo> segments;
  std::vector<TensorSpec> input_specs;
  std::vector<TensorSpec> output_specs;
  std::vector<Tensor> inputs;   // views into the arena
  std::vector<Tensor> outputs;  // views into the arena (or constant_outputs)
};

}  // namespace

struct Session::State {
  std::shared_ptr<const Graph> source;
  SessionOptions options;
  std::map<std::string, Shape> input_shapes;
  std::unique_ptr<Backend> preferred;  // null when it is the reference backend
  std::unique_ptr<Backend> reference;
  std::unique_ptr<Prepared> prepared;  // declared last: its executables go before the backends

  ~State() { prepared.reset(); }
};

namespace {

Result<std::unique_ptr<Prepared>> Prepare(const Graph& source,
                                          const std::map<std::string, Shape>& input_shapes,
                                          Backend* preferred, Backend& reference) {
  auto p = std::make_unique<Prepared>();
  p->graph = source;
  Graph& g = p->graph;
  HML_RETURN_IF_ERROR(runtime::PrepareGraph(g, input_shapes, runtime::BuiltinOps()));

  // Partition: the preferred backend first, the reference backend for the rest.
  const size_t num_nodes = g.nodes.size();
  std::vector<Backend*> owner(num_nodes, nullptr);
  std::vector<bool> ref_claims = reference.Claim(g);
  std::vector<bool> pref_claims =
      preferred ? preferred->Claim(g) : std::vector<bool>(num_nodes, false);
  for (size_t n = 0; n < num_nodes; ++n) {
    if (pref_claims[n]) {
      owner[n] = preferred;
    } else if (ref_claims[n]) {
      owner[n] = &reference;
    } else {
      const Node& node = g.nodes[n];
      return UnimplementedError(node.Describe(n) + ": no backend can run op '" + node.op_type +
                                "'");
    }
  }

  // Segments: maximal runs of consecutive nodes on one backend.
  struct SegmentNodes {
    Backend* backend;
    std::vector<int> nodes;
  };
  std::vector<SegmentNodes> segs;
  for (size_t n = 0; n < num_nodes; ++n) {
    if (segs.empty() || segs.back().backend != owner[n]) segs.push_back({owner[n], {}});
    segs.back().nodes.push_back(static_cast<int>(n));
  }

  // Execution steps: each node of a backend that needs internal buffers is a step; a segment of
  // a backend that keeps its own intermediates is one step. Step 0 is "before anything".
  std::vector<int> node_step(num_nodes, 0);
  std::vector<int> node_segment(num_nodes, 0);
  int step = 0;
  for (size_t s = 0; s < segs.size(); ++s) {
    const bool per_node = segs[s].backend->NeedsInternalBuffers();
    if (!per_node) ++step;
    for (int n : segs[s].nodes) {
      if (per_node) ++step;
      node_step[static_cast<size_t>(n)] = step;
      node_segment[static_cast<size_t>(n)] = static_cast<int>(s);
    }
  }
  const int last_step = step + 1;

  // Which values need session memory, and for how long.
  const size_t num_values = g.values.size();
  std::vector<int> first(num_values, -1), last(num_values, -1);
  std::vector<int> producer_segment(num_values, -1);
  std::vector<bool> needed(num_values, false);
  // Graph inputs live through the whole run: the caller's data must survive Run() so that
  // running again on the same inputs gives the same outputs.
  for (ValueId in : g.inputs) {
    first[static_cast<size_t>(in)] = 0;
    last[static_cast<size_t>(in)] = last_step;
    needed[static_cast<size_t>(in)] = true;
  }
  for (size_t n = 0; n < num_nodes; ++n) {
    for (ValueId out : g.nodes[n].outputs) {
      if (out == kNoValue) continue;
      first[static_cast<size_t>(out)] = node_step[n];
      last[static_cast<size_t>(out)] = node_step[n];
      producer_segment[static_cast<size_t>(out)] = node_segment[n];
      if (owner[n]->NeedsInternalBuffers()) needed[static_cast<size_t>(out)] = true;
    }
  }
  for (size_t n = 0; n < num_nodes; ++n) {
    for (ValueId in : g.nodes[n].inputs) {
      if (in == kNoValue || g.value(in).is_constant()) continue;
      const size_t v = static_cast<size_t>(in);
      last[v] = std::max(last[v], node_step[n]);
      if (owner[n]->NeedsInternalBuffers() || producer_segment[v] != node_segment[n]) {
        needed[v] = true;
      }
    }
  }
  for (ValueId out : g.outputs) {
    if (g.value(out).is_constant()) continue;
    needed[static_cast<size_t>(out)] = true;
    last[static_cast<size_t>(out)] = last_step;
  }

  std::vector<runtime::BufferRequest> requests;
  std::vector<ValueId> request_values;
  for (size_t v = 0; v < num_values; ++v) {
    if (!needed[v] || g.values[v].is_constant()) continue;
    const runtime::Value& value = g.values[v];
    HML_ASSIGN_OR_RETURN(int64_t count, CheckedNumElements(value.shape, value.dtype));
    requests.push_back({static_cast<size_t>(count) * DTypeSize(value.dtype), first[v], last[v]});
    request_values.push_back(static_cast<ValueId>(v));
  }
  runtime::MemoryPlan plan = runtime::PlanMemory(requests);
  if (plan.arena_bytes > static_cast<size_t>(kMaxTensorBytes) * 4) {
    return ResourceExhaustedError("the activation arena would need " +
                                  std::to_string(plan.arena_bytes) + " bytes");
  }
  p->arena_bytes = plan.arena_bytes;
  void* arena = std::aligned_alloc(64, std::max<size_t>(64, (plan.arena_bytes + 63) / 64 * 64));
  if (arena == nullptr) {
    return ResourceExhaustedError("out of memory allocating a " +
                                  std::to_string(plan.arena_bytes) + "-byte activation arena");
  }
  std::memset(arena, 0, std::max<size_t>(64, plan.arena_bytes));
  p->arena.reset(arena);
  p->buffers.assign(num_values, nullptr);
  for (size_t r = 0; r < requests.size(); ++r) {
    p->buffers[static_cast<size_t>(request_values[r])] = static_cast<char*>(arena) + plan.offsets[r];
  }

  // Compile the segments.
  for (size_t s = 0; s < segs.size(); ++s) {
    runtime::Segment segment;
    segment.graph = &g;
    segment.nodes = segs[s].nodes;
    segment.buffers = p->buffers;
    std::vector<bool> seen_in(num_values, false), seen_out(num_values, false);
    for (int n : segs[s].nodes) {
      for (ValueId in : g.nodes[static_cast<size_t>(n)].inputs) {
        if (in == kNoValue || g.value(in).is_constant()) continue;
        if (producer_segment[static_cast<size_t>(in)] != static_cast<int>(s) &&
            !seen_in[static_cast<size_t>(in)]) {
          seen_in[static_cast<size_t>(in)] = true;
          segment.inputs.push_back(in);
        }
      }
    }
    for (int n : segs[s].nodes) {
      for (ValueId out : g.nodes[static_cast<size_t>(n)].outputs) {
        if (out == kNoValue || seen_out[static_cast<size_t>(out)]) continue;
        bool escapes =
            std::find(g.outputs.begin(), g.outputs.end(), out) != g.outputs.end();
        for (size_t m = 0; m < num_nodes && !escapes; ++m) {
          if (node_segment[m] == static_cast<int>(s)) continue;
          const auto& ins = g.nodes[m].inputs;
          escapes = std::find(ins.begin(), ins.end(), out) != ins.end();
        }
        if (escapes) {
          seen_out[static_cast<size_t>(out)] = true;
          segment.outputs.push_back(out);
        }
      }
    }
    HML_ASSIGN_OR_RETURN(std::unique_ptr<Executable> exe, segs[s].backend->Compile(segment));
    p->executables.push_back(std::move(exe));
    SegmentInfo info;
    info.backend = std::string(segs[s].backend->name());
    for (int n : segs[s].nodes) {
      info.nodes.push_back(g.nodes[static_cast<size_t>(n)].Describe(static_cast<size_t>(n)));
    }
    p->segments.push_back(std::move(info));
  }

  for (ValueId in : g.inputs) {
    const runtime::Value& v = g.value(in);
    p->input_specs.push_back({v.name, v.dtype, v.shape});
    p->inputs.push_back(Tensor::View(v.dtype, v.shape, p->buffers[static_cast<size_t>(in)]));
  }
  for (ValueId out : g.outputs) {
    const runtime::Value& v = g.value(out);
    p->output_specs.push_back({v.name, v.dtype, v.shape});
    if (v.is_constant()) {
      HML_ASSIGN_OR_RETURN(Tensor copy, v.constant->Clone());
      p->constant_outputs.push_back(std::move(copy));
      Tensor& c = p->constant_outputs.back();
      p->outputs.push_back(Tensor::View(c.dtype(), c.shape(), c.raw_data()));
    } else {
      p->outputs.push_back(Tensor::View(v.dtype, v.shape, p->buffers[static_cast<size_t>(out)]));
    }
  }
  return p;
}

}  // namespace

Session::Session(std::unique_ptr<State> state) : state_(std::move(state)) {}
Session::~Session() = default;

Result<std::unique_ptr<Session>> Session::Create(const Model& model,
                                                 const SessionOptions& options) {
  HML_RETURN_IF_ERROR(options.Validate());
  auto state = std::make_unique<State>();
  state->source = std::make_shared<const Graph>(model.graph());
  state->options = options;
  state->input_shapes = options.input_shapes;
  const runtime::BackendRegistry& registry =
      options.backends ? *options.backends : runtime::BuiltinBackends();
  runtime::BackendOptions backend_options;
  backend_options.num_threads = options.num_threads;
  backend_options.logger = options.logger;
  HML_ASSIGN_OR_RETURN(state->reference, registry.Create("reference", backend_options));
  if (options.backend != "reference") {
    HML_ASSIGN_OR_RETURN(state->preferred, registry.Create(options.backend, backend_options));
  }
  HML_ASSIGN_OR_RETURN(state->prepared, Prepare(*state->source, state->input_shapes,
                                                state->preferred.get(), *state->reference));
  return std::unique_ptr<Session>(new Session(std::move(state)));
}

size_t Session::num_inputs() const { return state_->prepared->inputs.size(); }
size_t Session::num_outputs() const { return state_->prepared->outputs.size(); }
const TensorSpec& Session::input_spec(size_t i) const { return state_->prepared->input_specs[i]; }
const TensorSpec& Session::output_spec(size_t i) const {
  return state_->prepared->output_specs[i];
}

Result<size_t> Session::InputIndex(std::string_view name) const {
  const auto& specs = state_->prepared->input_specs;
  for (size_t i = 0; i < specs.size(); ++i) {
    if (specs[i].name == name) return i;
  }
  return NotFoundError("the model has no input named '" + std::string(name) + "'");
}

Result<size_t> Session::OutputIndex(std::string_view name) const {
  const auto& specs = state_->prepared->output_specs;
  for (size_t i = 0; i < specs.size(); ++i) {
    if (specs[i].name == name) return i;
  }
  return NotFoundError("the model has no output named '" + std::string(name) + "'");
}

Tensor& Session::input(size_t i) { return state_->prepared->inputs[i]; }
const Tensor& Session::output(size_t i) const { return state_->prepared->outputs[i]; }

Status Session::Run() {
  for (auto& exe : state_->prepared->executables) HML_RETURN_IF_ERROR(exe->Run());
  return Status::Ok();
}

namespace {
Status CheckMatches(const Tensor& t, const TensorSpec& spec, const char* what) {
  if (t.dtype() != spec.dtype || t.shape() != spec.shape) {
    return InvalidArgumentError(std::string(what) + " '" + spec.name + "': expected " +
                                std::string(DTypeName(spec.dtype)) + ShapeToString(spec.shape) +
                                ", got " + std::string(DTypeName(t.dtype())) +
                                ShapeToString(t.shape()));
  }
  return Status::Ok();
}
}  // namespace

Status Session::Run(std::span<const Tensor> inputs, std::span<Tensor> outputs) {
  Prepared& p = *state_->prepared;
  if (inputs.size() != p.inputs.size()) {
    return InvalidArgumentError("expected " + std::to_string(p.inputs.size()) +
                                " input tensors, got " + std::to_string(inputs.size()));
  }
  if (outputs.size() != p.outputs.size()) {
    return InvalidArgumentError("expected " + std::to_string(p.outputs.size()) +
                                " output tensors, got " + std::to_string(outputs.size()));
  }
  for (size_t i = 0; i < inputs.size(); ++i) {
    HML_RETURN_IF_ERROR(CheckMatches(inputs[i], p.input_specs[i], "input"));
  }
  for (size_t i = 0; i < outputs.size(); ++i) {
    HML_RETURN_IF_ERROR(CheckMatches(outputs[i], p.output_specs[i], "output"));
  }
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i].byte_size() > 0 && inputs[i].raw_data() != p.inputs[i].raw_data()) {
      std::memcpy(p.inputs[i].raw_data(), inputs[i].raw_data(), inputs[i].byte_size());
    }
  }
  HML_RETURN_IF_ERROR(Run());
  for (size_t i = 0; i < outputs.size(); ++i) {
    if (outputs[i].byte_size() > 0 && outputs[i].raw_data() != p.outputs[i].raw_data()) {
      std::memcpy(outputs[i].raw_data(), p.outputs[i].raw_data(), outputs[i].byte_size());
    }
  }
  return Status::Ok();
}

Result<std::vector<Tensor>> Session::Run(std::span<const Tensor> inputs) {
  std::vector<Tensor> outputs;
  for (const TensorSpec& spec : state_->prepared->output_specs) {
    HML_ASSIGN_OR_RETURN(Tensor t, Tensor::Allocate(spec.dtype, spec.shape));
    outputs.push_back(std::move(t));
  }
  HML_RETURN_IF_ERROR(Run(inputs, outputs));
  return outputs;
}

Status Session::Reshape(const std::map<std::string, Shape>& input_shapes) {
  std::map<std::string, Shape> shapes = state_->input_shapes;
  for (const auto& [name, shape] : input_shapes) shapes[name] = shape;
  HML_ASSIGN_OR_RETURN(std::unique_ptr<Prepared> prepared,
                       Prepare(*state_->source, shapes, state_->preferred.get(),
                               *state_->reference));
  state_->prepared = std::move(prepared);
  state_->input_shapes = std::move(shapes);
  return Status::Ok();
}

std::vector<SegmentInfo> Session::segments() const { return state_->prepared->segments; }
size_t Session::arena_bytes() const { return state_->prepared->arena_bytes; }

}  // namespace hml

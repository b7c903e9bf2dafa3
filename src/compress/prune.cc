// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/compress/prune.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <numeric>
#include <set>
#include <utility>

#include "src/compress/graph_util.h"
#include "src/runtime/op_registry.h"
#include "src/runtime/passes.h"

namespace hml::compress {
namespace {

using runtime::Graph;
using runtime::kNoValue;
using runtime::Node;
using runtime::ValueId;

std::string Describe(const Graph& g, int n) { return g.nodes[n].Describe(static_cast<size_t>(n)); }

bool IsWeighted(const std::string& op) { return op == "Conv" || op == "Gemm" || op == "MatMul"; }

// A float32 constant read only by node input (n, i): safe to replace in place.
bool OwnedFloatConstant(const Graph& g, const std::vector<int>& uses, const Node& node, size_t i) {
  const ValueId v = node.input(i);
  return v != kNoValue && g.value(v).is_constant() &&
         g.value(v).constant->dtype() == DType::kFloat32 && uses[static_cast<size_t>(v)] == 1;
}

// `t` restricted to the indices `keep` along `axis`. REQUIRES: float32, indices in range.
Result<Tensor> SliceAxis(const Tensor& t, int axis, const std::vector<int64_t>& keep) {
  Shape shape = t.shape();
  const int64_t dim = shape[static_cast<size_t>(axis)];
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < axis; ++d) outer *= t.dim(d);
  for (int d = axis + 1; d < t.rank(); ++d) inner *= t.dim(d);
  shape[static_cast<size_t>(axis)] = static_cast<int64_t>(keep.size());
  HML_ASSIGN_OR_RETURN(Tensor out, Tensor::Allocate(DType::kFloat32, shape));
  const float* src = t.data<float>();
  float* dst = out.data<float>();
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t k : keep) {
      const float* from = src + (o * dim + k) * inner;
      std::copy(from, from + inner, dst);
      dst += inner;
    }
  }
  return out;
}

void ReplaceConstant(Graph& g, ValueId v, Tensor t) {
  g.value(v).shape = t.shape();
  g.value(v).constant = std::make_shared<const Tensor>(std::move(t));
}

bool IsChannelwise(const std::string& op) {
  static const std::set<std::string, std::less<>> kOps = {
      "Relu",    "Clip",        "Sigmoid",           "Tanh",         "LeakyRelu", "Elu",
      "Selu",    "HardSigmoid", "HardSwish",         "Softplus",     "Identity",  "Dropout",
      "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool"};
  return kOps.count(op) > 0;
}

// How one consumer changes when a Conv's output channels shrink.
struct Fix {
  enum Kind { kConvInput, kBatchNorm, kDenseRows } kind = kConvInput;
  int node = -1;
  int64_t spatial = 1;  // kDenseRows: elements per channel in the flattened tensor
};

struct Tracer {
  const Graph& g;
  const std::vector<std::vector<int>>& consumers;
  const std::vector<int>& uses;
  const std::set<ValueId>& graph_outputs;
  const Graph& prepared;  // shapes at the default input shapes

  // Follows `v` (with `channels` channels on axis 1) to its channel consumers.
  bool Trace(ValueId v, int64_t channels, std::vector<Fix>& fixes, std::string& why) const {
    const std::string& name = g.value(v).name;
    if (graph_outputs.count(v)) {
      why = "'" + name + "' is a graph output";
      return false;
    }
    for (int n : consumers[static_cast<size_t>(v)]) {
      const Node& node = g.nodes[static_cast<size_t>(n)];
      const std::string& op = node.op_type;
      const std::string who = Describe(g, n);
      if (node.input(0) != v) {
        why = "'" + name + "' is read by " + who + " as a parameter";
        return false;
      }
      for (size_t i = 1; i < node.inputs.size(); ++i) {
        if (node.inputs[i] == v) {
          why = "'" + name + "' is read twice by " + who;
          return false;
        }
      }
      if (op == "Conv") {
        if (node.attrs.GetInt("group", 1) != 1 || !OwnedFloatConstant(g, uses, node, 1) ||
            g.value(node.input(1)).constant->rank() < 3 ||
            g.value(node.input(1)).constant->dim(1) != channels) {
          why = who + " (grouped, or with a shared or non-constant weight) reads '" + name + "'";
          return false;
        }
        fixes.push_back({Fix::kConvInput, n, 1});
        continue;
      }
      if (op == "BatchNormalization") {
        for (size_t i = 1; i <= 4; ++i) {
          if (!OwnedFloatConstant(g, uses, node, i) ||
              g.value(node.input(i)).constant->num_elements() != channels) {
            why = who + " has non-constant or shared parameters";
            return false;
          }
        }
        fixes.push_back({Fix::kBatchNorm, n, 1});
        if (!TraceSingleOutput(node, n, channels, fixes, why)) return false;
        continue;
      }
      if (IsChannelwise(op)) {
        if (!TraceSingleOutput(node, n, channels, fixes, why)) return false;
        continue;
      }
      if (op == "Flatten" && node.attrs.GetInt("axis", 1) == 1) {
        const ValueId pv = prepared.FindValue(name);
        if (pv == kNoValue || !prepared.value(pv).shape_known ||
            prepared.value(pv).shape.size() < 2) {
          why = "the shape of '" + name + "' is unknown";
          return false;
        }
        int64_t spatial = 1;
        const Shape& s = prepared.value(pv).shape;
        for (size_t d = 2; d < s.size(); ++d) spatial *= s[d];
        const ValueId flat = node.outputs.empty() ? kNoValue : node.outputs[0];
        if (flat == kNoValue || graph_outputs.count(flat)) {
          why = who + " output is a graph output";
          return false;
        }
        for (int d : consumers[static_cast<size_t>(flat)]) {
          const Node& dense = g.nodes[static_cast<size_t>(d)];
          const bool gemm = dense.op_type == "Gemm" && dense.attrs.GetInt("transA", 0) == 0;
          if (!(gemm || dense.op_type == "MatMul") || dense.input(0) != flat ||
              dense.input(1) == flat || !OwnedFloatConstant(g, uses, dense, 1) ||
              g.value(dense.input(1)).constant->rank() != 2) {
            why = "the flattened '" + name + "' is read by " + Describe(g, d) +
                  ", not by a Gemm/MatMul with its own constant weight";
            return false;
          }
          const Tensor& w = *g.value(dense.input(1)).constant;
          const int axis = gemm && dense.attrs.GetInt("transB", 0) != 0 ? 1 : 0;
          if (w.dim(axis) != channels * spatial) {
            why = Describe(g, d) + " weight does not match " + std::to_string(channels) + " x " +
                  std::to_string(spatial) + " flattened features";
            return false;
          }
          fixes.push_back({Fix::kDenseRows, d, spatial});
        }
        continue;
      }
      why = "'" + name + "' is read by " + who;
      return false;
    }
    return true;
  }

  bool TraceSingleOutput(const Node& node, int n, int64_t channels, std::vector<Fix>& fixes,
                         std::string& why) const {
    for (size_t o = 1; o < node.outputs.size(); ++o) {
      if (node.outputs[o] != kNoValue && uses[static_cast<size_t>(node.outputs[o])] > 0) {
        why = Describe(g, n) + " has a second output in use";
        return false;
      }
    }
    if (node.outputs.empty() || node.outputs[0] == kNoValue) return true;
    return Trace(node.outputs[0], channels, fixes, why);
  }
};

// Node outputs' shapes are stale after pruning; PrepareGraph infers them again.
void ForgetIntermediateShapes(Graph& g) {
  std::set<ValueId> keep(g.outputs.begin(), g.outputs.end());
  for (const Node& node : g.nodes) {
    for (ValueId out : node.outputs) {
      if (out == kNoValue || keep.count(out) || g.value(out).is_constant()) continue;
      g.value(out).shape.clear();
      g.value(out).shape_known = false;
    }
  }
}

}  // namespace

Status MagnitudePruneOptions::Validate() const {
  if (!(sparsity >= 0.0 && sparsity <= 1.0)) {
    return InvalidArgumentError("MagnitudePruneOptions: sparsity " + std::to_string(sparsity) +
                                " is outside [0, 1]");
  }
  return Status::Ok();
}

Status ChannelPruneOptions::Validate() const {
  if (!(ratio >= 0.0 && ratio < 1.0)) {
    return InvalidArgumentError("ChannelPruneOptions: ratio " + std::to_string(ratio) +
                                " is outside [0, 1)");
  }
  if (min_channels < 1) {
    return InvalidArgumentError("ChannelPruneOptions: min_channels " +
                                std::to_string(min_channels) + " is below 1");
  }
  return Status::Ok();
}

Result<Graph> PruneMagnitude(const Graph& graph, const MagnitudePruneOptions& options,
                             PruneReport* report) {
  HML_RETURN_IF_ERROR(options.Validate());
  Graph g = graph;
  HML_RETURN_IF_ERROR(g.Validate());
  std::vector<ValueId> weights;
  for (const Node& node : g.nodes) {
    if (!IsWeighted(node.op_type)) continue;
    const ValueId w = node.input(1);
    if (w == kNoValue || !g.value(w).is_constant() ||
        g.value(w).constant->dtype() != DType::kFloat32) {
      continue;
    }
    if (std::find(weights.begin(), weights.end(), w) == weights.end()) weights.push_back(w);
  }
  if (weights.empty()) {
    return InvalidArgumentError("model '" + g.name +
                                "' has no Conv/Gemm/MatMul with a constant float32 weight to "
                                "prune");
  }
  // (|w|, weight index, element) for every element; the k smallest are zeroed.
  struct Entry {
    float magnitude;
    uint32_t weight;
    int64_t element;
  };
  std::vector<Entry> entries;
  int64_t total = 0;
  for (ValueId w : weights) total += g.value(w).constant->num_elements();
  entries.reserve(static_cast<size_t>(total));
  std::vector<Tensor> copies;
  for (size_t i = 0; i < weights.size(); ++i) {
    HML_ASSIGN_OR_RETURN(Tensor copy, g.value(weights[i]).constant->Clone());
    const std::span<const float> v = copy.values<float>();
    for (size_t e = 0; e < v.size(); ++e) {
      entries.push_back({std::fabs(v[e]), static_cast<uint32_t>(i), static_cast<int64_t>(e)});
    }
    copies.push_back(std::move(copy));
  }
  const int64_t k =
      static_cast<int64_t>(std::llround(options.sparsity * static_cast<double>(total)));
  auto less = [](const Entry& a, const Entry& b) {
    if (a.magnitude != b.magnitude) return a.magnitude < b.magnitude;
    if (a.weight != b.weight) return a.weight < b.weight;
    return a.element < b.element;
  };
  if (k > 0 && k < total) {
    std::nth_element(entries.begin(), entries.begin() + k, entries.end(), less);
  }
  for (int64_t i = 0; i < k; ++i) {
    const Entry& e = entries[static_cast<size_t>(i)];
    copies[e.weight].data<float>()[e.element] = 0.0f;
  }
  int64_t zeros = 0;
  for (size_t i = 0; i < weights.size(); ++i) {
    for (float v : copies[i].values<float>()) zeros += v == 0.0f;
    ReplaceConstant(g, weights[i], std::move(copies[i]));
  }
  if (report) {
    report->weights = total;
    report->zero_weights = zeros;
    for (ValueId w : weights) report->pruned.push_back(g.value(w).name);
  }
  return g;
}

Result<Graph> PruneChannels(const Graph& graph, const ChannelPruneOptions& options,
                            PruneReport* report) {
  HML_RETURN_IF_ERROR(options.Validate());
  Graph g = graph;
  HML_RETURN_IF_ERROR(g.Validate());
  Graph prepared = g;
  HML_RETURN_IF_ERROR(runtime::PrepareGraph(prepared, {}, runtime::BuiltinOps()));

  const std::vector<std::vector<int>> consumers = Consumers(g);
  const std::vector<int> uses = g.UseCounts();
  const std::set<ValueId> graph_outputs(g.outputs.begin(), g.outputs.end());
  const Tracer tracer{g, consumers, uses, graph_outputs, prepared};

  // Decide every Conv's kept channels on the original weights first.
  std::map<int, std::vector<int64_t>> out_keep;  // Conv node -> kept output channels
  std::map<int, std::vector<int64_t>> in_keep;   // Conv node -> kept input channels
  std::map<int, std::vector<int64_t>> bn_keep;   // BatchNorm node -> kept channels
  std::map<int, std::pair<std::vector<int64_t>, int64_t>> dense_keep;  // node -> (channels, S)
  std::vector<std::string> skipped, pruned;
  int64_t channels_before = 0, channels_after = 0;
  for (int n = 0; n < static_cast<int>(g.nodes.size()); ++n) {
    const Node& node = g.nodes[static_cast<size_t>(n)];
    if (node.op_type != "Conv") continue;
    const std::string who = Describe(g, n);
    if (node.attrs.GetInt("group", 1) != 1) {
      skipped.push_back(who + ": grouped convolution");
      continue;
    }
    if (!OwnedFloatConstant(g, uses, node, 1) || g.value(node.input(1)).constant->rank() < 3) {
      skipped.push_back(who + ": weight is not its own float32 constant");
      continue;
    }
    const Tensor& w = *g.value(node.input(1)).constant;
    const int64_t channels = w.dim(0);
    if (node.input(2) != kNoValue &&
        (!OwnedFloatConstant(g, uses, node, 2) ||
         g.value(node.input(2)).constant->num_elements() != channels)) {
      skipped.push_back(who + ": bias is not its own float32 constant");
      continue;
    }
    int64_t remove =
        static_cast<int64_t>(std::floor(options.ratio * static_cast<double>(channels)));
    remove = std::min(remove, channels - std::min(channels, options.min_channels));
    if (remove <= 0 || node.outputs.empty() || node.outputs[0] == kNoValue) {
      skipped.push_back(who + ": nothing to remove at this ratio");
      continue;
    }
    std::vector<Fix> fixes;
    std::string why;
    if (!tracer.Trace(node.outputs[0], channels, fixes, why)) {
      skipped.push_back(who + ": " + why);
      continue;
    }
    // The filters with the largest L1 norms stay (ties keep the earlier channel).
    const int64_t per = w.num_elements() / channels;
    std::vector<double> norm(static_cast<size_t>(channels), 0.0);
    for (int64_t c = 0; c < channels; ++c) {
      for (int64_t i = 0; i < per; ++i)
        norm[static_cast<size_t>(c)] += std::fabs(w.data<float>()[c * per + i]);
    }
    std::vector<int64_t> order(static_cast<size_t>(channels));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
      return norm[static_cast<size_t>(a)] > norm[static_cast<size_t>(b)];
    });
    std::vector<int64_t> keep(order.begin(), order.begin() + (channels - remove));
    std::sort(keep.begin(), keep.end());
    out_keep[n] = keep;
    for (const Fix& f : fixes) {
      if (f.kind == Fix::kConvInput) in_keep[f.node] = keep;
      if (f.kind == Fix::kBatchNorm) bn_keep[f.node] = keep;
      if (f.kind == Fix::kDenseRows) dense_keep[f.node] = {keep, f.spatial};
    }
    channels_before += channels;
    channels_after += static_cast<int64_t>(keep.size());
    pruned.push_back(who + ": " + std::to_string(channels) + " -> " + std::to_string(keep.size()) +
                     " channels");
  }
  if (out_keep.empty()) {
    std::string reasons;
    for (const std::string& s : skipped) reasons += (reasons.empty() ? "" : "; ") + s;
    return InvalidArgumentError("no Conv of model '" + g.name + "' can be channel-pruned" +
                                (reasons.empty() ? std::string(" (it has none)") : ": " + reasons));
  }

  // Apply: weights sliced along the output axis, then the input axis.
  for (auto& [n, keep] : out_keep) {
    Node& node = g.nodes[static_cast<size_t>(n)];
    HML_ASSIGN_OR_RETURN(Tensor w, SliceAxis(*g.value(node.input(1)).constant, 0, keep));
    ReplaceConstant(g, node.input(1), std::move(w));
    if (node.input(2) != kNoValue) {
      HML_ASSIGN_OR_RETURN(Tensor b, SliceAxis(*g.value(node.input(2)).constant, 0, keep));
      ReplaceConstant(g, node.input(2), std::move(b));
    }
  }
  for (auto& [n, keep] : in_keep) {
    const ValueId wv = g.nodes[static_cast<size_t>(n)].input(1);
    HML_ASSIGN_OR_RETURN(Tensor w, SliceAxis(*g.value(wv).constant, 1, keep));
    ReplaceConstant(g, wv, std::move(w));
  }
  for (auto& [n, keep] : bn_keep) {
    for (size_t i = 1; i <= 4; ++i) {
      const ValueId pv = g.nodes[static_cast<size_t>(n)].input(i);
      const Tensor& p = *g.value(pv).constant;
      HML_ASSIGN_OR_RETURN(Tensor sliced, SliceAxis(p.Reshaped({p.num_elements()}), 0, keep));
      ReplaceConstant(g, pv, std::move(sliced));
    }
  }
  for (auto& [n, plan] : dense_keep) {
    const Node& node = g.nodes[static_cast<size_t>(n)];
    const auto& [keep, spatial] = plan;
    std::vector<int64_t> rows;
    for (int64_t c : keep) {
      for (int64_t s = 0; s < spatial; ++s) rows.push_back(c * spatial + s);
    }
    const bool columns = node.op_type == "Gemm" && node.attrs.GetInt("transB", 0) != 0;
    HML_ASSIGN_OR_RETURN(Tensor w,
                         SliceAxis(*g.value(node.input(1)).constant, columns ? 1 : 0, rows));
    ReplaceConstant(g, node.input(1), std::move(w));
  }
  ForgetIntermediateShapes(g);
  HML_RETURN_IF_ERROR(g.Validate());
  Graph check = g;
  Status prepared_ok = runtime::PrepareGraph(check, {}, runtime::BuiltinOps());
  if (!prepared_ok.ok()) {
    return InternalError("channel pruning produced inconsistent shapes: " +
                         std::string(prepared_ok.message()));
  }
  if (report) {
    report->channels_before = channels_before;
    report->channels_after = channels_after;
    report->pruned = std::move(pruned);
    report->skipped = std::move(skipped);
  }
  return g;
}

}  // namespace hml::compress

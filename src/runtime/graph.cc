// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/runtime/graph.h"

#include <algorithm>
#include <queue>

namespace hml::runtime {

const Attribute* Attributes::Find(std::string_view name) const {
  auto it = map_.find(name);
  return it == map_.end() ? nullptr : &it->second;
}

int64_t Attributes::GetInt(std::string_view name, int64_t default_value) const {
  const Attribute* a = Find(name);
  return a && a->kind == Attribute::Kind::kInt ? a->i : default_value;
}

float Attributes::GetFloat(std::string_view name, float default_value) const {
  const Attribute* a = Find(name);
  if (!a) return default_value;
  if (a->kind == Attribute::Kind::kFloat) return a->f;
  if (a->kind == Attribute::Kind::kInt) return static_cast<float>(a->i);
  return default_value;
}

std::string Attributes::GetString(std::string_view name, std::string_view default_value) const {
  const Attribute* a = Find(name);
  return a && a->kind == Attribute::Kind::kString ? a->s : std::string(default_value);
}

std::vector<int64_t> Attributes::GetInts(std::string_view name,
                                         std::vector<int64_t> default_value) const {
  const Attribute* a = Find(name);
  return a && a->kind == Attribute::Kind::kInts ? a->ints : default_value;
}

std::vector<float> Attributes::GetFloats(std::string_view name,
                                         std::vector<float> default_value) const {
  const Attribute* a = Find(name);
  return a && a->kind == Attribute::Kind::kFloats ? a->floats : default_value;
}

void Attributes::SetInt(std::string name, int64_t v) {
  Attribute a;
  a.kind = Attribute::Kind::kInt;
  a.i = v;
  Set(std::move(name), std::move(a));
}

void Attributes::SetFloat(std::string name, float v) {
  Attribute a;
  a.kind = Attribute::Kind::kFloat;
  a.f = v;
  Set(std::move(name), std::move(a));
}

void Attributes::SetString(std::string name, std::string v) {
  Attribute a;
  a.kind = Attribute::Kind::kString;
  a.s = std::move(v);
  Set(std::move(name), std::move(a));
}

void Attributes::SetInts(std::string name, std::vector<int64_t> v) {
  Attribute a;
  a.kind = Attribute::Kind::kInts;
  a.ints = std::move(v);
  Set(std::move(name), std::move(a));
}

void Attributes::SetFloats(std::string name, std::vector<float> v) {
  Attribute a;
  a.kind = Attribute::Kind::kFloats;
  a.floats = std::move(v);
  Set(std::move(name), std::move(a));
}

void Attributes::Erase(std::string_view name) {
  auto it = map_.find(name);
  if (it != map_.end()) map_.erase(it);
}

std::string Node::Describe(size_t index) const {
  if (!name.empty()) return op_type + " '" + name + "'";
  return op_type + " #" + std::to_string(index);
}

ValueId Graph::AddValue(Value value) {
  if (value.name.empty()) {
    do {
      value.name = "hml_value_" + std::to_string(next_generated_++);
    } while (index_.count(value.name));
  }
  const ValueId id = static_cast<ValueId>(values.size());
  index_[value.name] = id;
  values.push_back(std::move(value));
  return id;
}

ValueId Graph::AddConstant(std::string name, Tensor tensor) {
  Value v;
  v.name = std::move(name);
  v.dtype = tensor.dtype();
  v.shape = tensor.shape();
  v.shape_known = true;
  v.constant = std::make_shared<const Tensor>(std::move(tensor));
  return AddValue(std::move(v));
}

ValueId Graph::FindValue(std::string_view name) const {
  auto it = index_.find(std::string(name));
  return it == index_.end() ? kNoValue : it->second;
}

void Graph::ReindexNames() {
  index_.clear();
  for (size_t i = 0; i < values.size(); ++i) index_[values[i].name] = static_cast<ValueId>(i);
}

std::vector<int> Graph::Producers() const {
  std::vector<int> producer(values.size(), -1);
  for (size_t n = 0; n < nodes.size(); ++n) {
    for (ValueId out : nodes[n].outputs) {
      if (out != kNoValue) producer[static_cast<size_t>(out)] = static_cast<int>(n);
    }
  }
  return producer;
}

std::vector<int> Graph::UseCounts() const {
  std::vector<int> uses(values.size(), 0);
  for (const Node& node : nodes) {
    for (ValueId in : node.inputs) {
      if (in != kNoValue) ++uses[static_cast<size_t>(in)];
    }
  }
  for (ValueId out : outputs) ++uses[static_cast<size_t>(out)];
  return uses;
}

Status Graph::TopologicalSort() {
  const size_t num_values = values.size();
  std::vector<int> producer(num_values, -1);
  for (size_t n = 0; n < nodes.size(); ++n) {
    for (ValueId out : nodes[n].outputs) {
      if (out == kNoValue) continue;
      if (out < 0 || static_cast<size_t>(out) >= num_values) {
        return InvalidArgumentError(nodes[n].Describe(n) + ": output id out of range");
      }
      if (producer[static_cast<size_t>(out)] != -1) {
        return InvalidArgumentError("value '" + values[static_cast<size_t>(out)].name +
                                    "' is produced by two nodes: " +
                                    nodes[static_cast<size_t>(producer[static_cast<size_t>(out)])]
                                        .Describe(static_cast<size_t>(
                                            producer[static_cast<size_t>(out)])) +
                                    " and " + nodes[n].Describe(n));
      }
      producer[static_cast<size_t>(out)] = static_cast<int>(n);
    }
  }
  // Kahn's algorithm with a min-heap on the original index keeps the given order when valid.
  std::vector<int> pending(nodes.size(), 0);
  std::vector<std::vector<int>> consumers(nodes.size());
  for (size_t n = 0; n < nodes.size(); ++n) {
    for (ValueId in : nodes[n].inputs) {
      if (in == kNoValue) continue;
      if (in < 0 || static_cast<size_t>(in) >= num_values) {
        return InvalidArgumentError(nodes[n].Describe(n) + ": input id out of range");
      }
      const Value& v = values[static_cast<size_t>(in)];
      const int p = producer[static_cast<size_t>(in)];
      if (p == -1) {
        const bool is_input = std::find(inputs.begin(), inputs.end(), in) != inputs.end();
        if (!v.is_constant() && !is_input) {
          return InvalidArgumentError(nodes[n].Describe(n) + " reads '" + v.name +
                                      "', which is not a graph input, an initializer, or the "
                                      "output of any node");
        }
        continue;
      }
      if (p == static_cast<int>(n)) {
        return InvalidArgumentError(nodes[n].Describe(n) + " reads its own output '" + v.name +
                                    "' (a cycle)");
      }
      ++pending[n];
      consumers[static_cast<size_t>(p)].push_back(static_cast<int>(n));
    }
  }
  std::priority_queue<int, std::vector<int>, std::greater<int>> ready;
  for (size_t n = 0; n < nodes.size(); ++n) {
    if (pending[n] == 0) ready.push(static_cast<int>(n));
  }
  std::vector<int> order;
  order.reserve(nodes.size());
  while (!ready.empty()) {
    const int n = ready.top();
    ready.pop();
    order.push_back(n);
    for (int c : consumers[static_cast<size_t>(n)]) {
      if (--pending[static_cast<size_t>(c)] == 0) ready.push(c);
    }
  }
  if (order.size() != nodes.size()) {
    for (size_t n = 0; n < nodes.size(); ++n) {
      if (pending[n] > 0) {
        return InvalidArgumentError("the graph has a cycle through " + nodes[n].Describe(n));
      }
    }
  }
  std::vector<Node> sorted;
  sorted.reserve(nodes.size());
  for (int n : order) sorted.push_back(std::move(nodes[static_cast<size_t>(n)]));
  nodes = std::move(sorted);
  return Status::Ok();
}

Status Graph::Validate() {
  const size_t num_values = values.size();
  for (size_t i = 0; i < num_values; ++i) {
    const Value& v = values[i];
    if (v.is_constant()) {
      if (v.constant->dtype() != v.dtype || v.constant->shape() != v.shape) {
        return InvalidArgumentError("initializer '" + v.name + "': declared " +
                                    std::string(DTypeName(v.dtype)) + ShapeToString(v.shape) +
                                    " but holds " +
                                    std::string(DTypeName(v.constant->dtype())) +
                                    ShapeToString(v.constant->shape()));
      }
    }
  }
  for (ValueId in : inputs) {
    if (in < 0 || static_cast<size_t>(in) >= num_values) {
      return InvalidArgumentError("graph input id out of range");
    }
    if (values[static_cast<size_t>(in)].dtype == DType::kUndefined) {
      return InvalidArgumentError("graph input '" + values[static_cast<size_t>(in)].name +
                                  "' has no element type");
    }
  }
  if (outputs.empty()) return InvalidArgumentError("the graph has no outputs");
  HML_RETURN_IF_ERROR(TopologicalSort());
  const std::vector<int> producer = Producers();
  for (ValueId out : outputs) {
    if (out < 0 || static_cast<size_t>(out) >= num_values) {
      return InvalidArgumentError("graph output id out of range");
    }
    const Value& v = values[static_cast<size_t>(out)];
    const bool is_input = std::find(inputs.begin(), inputs.end(), out) != inputs.end();
    if (producer[static_cast<size_t>(out)] == -1 && !v.is_constant() && !is_input) {
      return InvalidArgumentError("graph output '" + v.name + "' is not produced by any node");
    }
  }
  for (size_t n = 0; n < nodes.size(); ++n) {
    if (nodes[n].op_type.empty()) {
      return InvalidArgumentError("node #" + std::to_string(n) + " has no op_type");
    }
  }
  return Status::Ok();
}

void Graph::RemoveDeadCode() {
  const std::vector<int> producer = Producers();
  std::vector<bool> live_node(nodes.size(), false);
  std::vector<ValueId> stack(outputs.begin(), outputs.end());
  std::vector<bool> seen(values.size(), false);
  while (!stack.empty()) {
    const ValueId v = stack.back();
    stack.pop_back();
    if (v == kNoValue || seen[static_cast<size_t>(v)]) continue;
    seen[static_cast<size_t>(v)] = true;
    const int p = producer[static_cast<size_t>(v)];
    if (p < 0 || live_node[static_cast<size_t>(p)]) continue;
    live_node[static_cast<size_t>(p)] = true;
    for (ValueId in : nodes[static_cast<size_t>(p)].inputs) stack.push_back(in);
  }
  std::vector<Node> kept;
  for (size_t n = 0; n < nodes.size(); ++n) {
    if (live_node[n]) kept.push_back(std::move(nodes[n]));
  }
  nodes = std::move(kept);
  CompactValues();
}

void Graph::CompactValues() {
  std::vector<bool> used(values.size(), false);
  for (const Node& node : nodes) {
    for (ValueId v : node.inputs) {
      if (v != kNoValue) used[static_cast<size_t>(v)] = true;
    }
    for (ValueId v : node.outputs) {
      if (v != kNoValue) used[static_cast<size_t>(v)] = true;
    }
  }
  for (ValueId v : inputs) used[static_cast<size_t>(v)] = true;
  for (ValueId v : outputs) used[static_cast<size_t>(v)] = true;
  std::vector<ValueId> remap(values.size(), kNoValue);
  std::vector<Value> kept;
  for (size_t i = 0; i < values.size(); ++i) {
    if (!used[i]) continue;
    remap[i] = static_cast<ValueId>(kept.size());
    kept.push_back(std::move(values[i]));
  }
  auto fix = [&](std::vector<ValueId>& ids) {
    for (ValueId& id : ids) {
      if (id != kNoValue) id = remap[static_cast<size_t>(id)];
    }
  };
  for (Node& node : nodes) {
    fix(node.inputs);
    fix(node.outputs);
  }
  fix(inputs);
  fix(outputs);
  values = std::move(kept);
  ReindexNames();
}

}  // namespace hml::runtime

// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The graph IR every part of hybridml works on: the ONNX importer produces it, passes rewrite
// it, backends compile it, the exporter writes it back to ONNX, and (later) the compressor and
// trainer edit it. It mirrors ONNX's data model closely: values (tensors) by id, nodes with
// attributes, constant values (initializers) holding their data.
//
// A Graph is a plain value type. Constant data is shared (shared_ptr<const Tensor>), so copying
// a Graph to rewrite it is cheap.
#ifndef HML_SRC_RUNTIME_GRAPH_H_
#define HML_SRC_RUNTIME_GRAPH_H_

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "hml/runtime/tensor.h"
#include "hml/status.h"

namespace hml::runtime {

using ValueId = int32_t;
inline constexpr ValueId kNoValue = -1;  // an absent optional input or output

// A tensor in the graph: a graph input, a node output, or a constant.
struct Value {
  std::string name;
  DType dtype = DType::kUndefined;
  // Dims; negative = unknown until a Session fixes the input shapes. Empty + !shape_known =
  // unknown rank.
  Shape shape;
  bool shape_known = false;
  // Non-null for constants (ONNX initializers and folded values).
  std::shared_ptr<const Tensor> constant;

  bool is_constant() const { return constant != nullptr; }
};

struct Attribute {
  enum class Kind { kInt, kFloat, kString, kInts, kFloats, kStrings, kTensor };
  Kind kind = Kind::kInt;
  int64_t i = 0;
  float f = 0.0f;
  std::string s;
  std::vector<int64_t> ints;
  std::vector<float> floats;
  std::vector<std::string> strings;
  std::shared_ptr<const Tensor> tensor;
};

// Named attributes of a node, with typed getters that fall back to a default.
class Attributes {
 public:
  bool Has(std::string_view name) const { return map_.find(name) != map_.end(); }
  const Attribute* Find(std::string_view name) const;
  int64_t GetInt(std::string_view name, int64_t default_value) const;
  float GetFloat(std::string_view name, float default_value) const;
  std::string GetString(std::string_view name, std::string_view default_value) const;
  std::vector<int64_t> GetInts(std::string_view name, std::vector<int64_t> default_value = {}) const;
  std::vector<float> GetFloats(std::string_view name, std::vector<float> default_value = {}) const;

  void Set(std::string name, Attribute attribute) { map_[std::move(name)] = std::move(attribute); }
  void SetInt(std::string name, int64_t v);
  void SetFloat(std::string name, float v);
  void SetString(std::string name, std::string v);
  void SetInts(std::string name, std::vector<int64_t> v);
  void SetFloats(std::string name, std::vector<float> v);
  void Erase(std::string_view name);

  const std::map<std::string, Attribute, std::less<>>& map() const { return map_; }

 private:
  std::map<std::string, Attribute, std::less<>> map_;
};

struct Node {
  std::string name;
  std::string op_type;
  std::string domain;  // "" is the default ONNX domain
  std::vector<ValueId> inputs;   // kNoValue for an absent optional input
  std::vector<ValueId> outputs;  // kNoValue for an absent optional output
  Attributes attrs;

  // Returns the i-th input id or kNoValue when there are fewer inputs.
  ValueId input(size_t i) const { return i < inputs.size() ? inputs[i] : kNoValue; }
  // "Conv 'conv1'" or "Conv #3" for error messages.
  std::string Describe(size_t index) const;
};

class Graph {
 public:
  std::string name;
  int64_t opset = 0;  // default-domain opset the model was written for
  std::vector<Value> values;
  std::vector<Node> nodes;  // topologically sorted after Validate()/TopologicalSort()
  std::vector<ValueId> inputs;   // graph inputs (non-constant)
  std::vector<ValueId> outputs;  // graph outputs

  // Adds a value and returns its id. Names must be unique (empty names are allowed for
  // internal values and are given a unique generated name).
  ValueId AddValue(Value value);
  ValueId AddConstant(std::string name, Tensor tensor);
  // kNoValue when absent.
  ValueId FindValue(std::string_view name) const;
  Value& value(ValueId id) { return values[static_cast<size_t>(id)]; }
  const Value& value(ValueId id) const { return values[static_cast<size_t>(id)]; }

  // Producer node index of each value (-1 for graph inputs, constants, and unused ids).
  std::vector<int> Producers() const;
  // Number of node inputs + graph outputs that read each value.
  std::vector<int> UseCounts() const;

  // Rebuilds the name index; call after editing `values` directly.
  void ReindexNames();

  // Reorders nodes topologically (stable: keeps the given order where possible).
  // kInvalidArgument naming a node on a cycle, or a value read before anything produces it.
  Status TopologicalSort();

  // Checks structural invariants: ids in range, every value produced at most once, every node
  // input produced (or a graph input or constant), no cycles, outputs produced, constant shapes
  // match their data. Sorts nodes topologically. Errors name the node/value and the reason.
  Status Validate();

  // Drops nodes whose outputs reach no graph output, and values nothing refers to.
  void RemoveDeadCode();

  // Renumbers values after nodes/values were dropped, keeping only referenced ones.
  void CompactValues();

 private:
  std::unordered_map<std::string, ValueId> index_;
  int64_t next_generated_ = 0;
};

}  // namespace hml::runtime

#endif  // HML_SRC_RUNTIME_GRAPH_H_

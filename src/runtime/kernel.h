// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// A Kernel runs one node on memory fixed when it was created: Create does all shape-dependent
// work and allocation; Run only computes.
#ifndef HML_SRC_RUNTIME_KERNEL_H_
#define HML_SRC_RUNTIME_KERNEL_H_

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "src/runtime/graph.h"

namespace hml::runtime {

struct KernelArgs {
  const Node* node = nullptr;
  int64_t opset = 0;
  // Views of the node's inputs with their static shapes; an empty Tensor for an absent optional
  // input. Constant inputs hold their data already at creation; the others are filled before
  // each Run().
  std::vector<Tensor> inputs;
  std::vector<bool> input_is_constant;
  // Views of the node's outputs with their inferred shapes (empty Tensor for absent outputs).
  std::vector<Tensor> outputs;

  // InvalidArgument "<op> '<name>': <why>".
  Status Error(std::string_view why) const;
};

class Kernel {
 public:
  virtual ~Kernel() = default;
  // Reads the inputs, writes the outputs. Does not allocate.
  virtual Status Run() = 0;
};

using KernelFactory = Result<std::unique_ptr<Kernel>> (*)(KernelArgs args);

// Maps (domain, op_type) to a kernel factory.
class KernelRegistry {
 public:
  void Add(std::string domain, std::string op_type, KernelFactory factory);
  // Null when there is none. The domains "" and "ai.onnx" are the same.
  KernelFactory Find(std::string_view domain, std::string_view op_type) const;

 private:
  std::map<std::pair<std::string, std::string>, KernelFactory, std::less<>> factories_;
};

}  // namespace hml::runtime

#endif  // HML_SRC_RUNTIME_KERNEL_H_

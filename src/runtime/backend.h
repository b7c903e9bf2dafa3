// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// A Backend turns a run of graph nodes (a segment) into an Executable. A Session partitions its
// graph: the preferred backend claims the nodes it can run, the reference backend takes the rest,
// and consecutive nodes on one backend form a segment.
//
// Backends are registered explicitly (RegisterBuiltinBackends), never by static initialisers.
#ifndef HML_SRC_RUNTIME_BACKEND_H_
#define HML_SRC_RUNTIME_BACKEND_H_

#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "hml/logging.h"
#include "src/runtime/graph.h"

namespace hml::runtime {

struct BackendOptions {
  // Threads for intra-op parallelism. Default: 1.
  int num_threads = 1;
  // Default: StderrLogger().
  Logger* logger = nullptr;
};

// What a backend compiles: nodes of a graph whose shapes are all static, plus where the session
// keeps each value that crosses the segment's boundary.
struct Segment {
  const Graph* graph = nullptr;
  std::vector<int> nodes;        // indices into graph->nodes, topological order
  std::vector<ValueId> inputs;   // non-constant values read from outside the segment
  std::vector<ValueId> outputs;  // values read after the segment, or graph outputs
  // Session memory for each value id, in the graph's (ONNX, NCHW) layout; null for values the
  // session does not materialise. Constants are read from Value::constant. Valid for the
  // executable's whole life; contents of inputs change before every Run().
  std::span<void* const> buffers;
};

class Executable {
 public:
  virtual ~Executable() = default;
  // Computes the segment's outputs from its inputs. Does not allocate.
  virtual Status Run() = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string_view name() const = 0;
  // For each node of `graph` (static shapes, constants known): whether this backend runs it.
  virtual std::vector<bool> Claim(const Graph& graph) const = 0;
  // Whether the session must give buffers to values produced and read only inside one of this
  // backend's segments (false when the backend keeps them itself).
  virtual bool NeedsInternalBuffers() const = 0;
  // REQUIRES: every node of the segment was claimed by this backend.
  virtual Result<std::unique_ptr<Executable>> Compile(const Segment& segment) = 0;
};

using BackendFactory =
    std::function<Result<std::unique_ptr<Backend>>(const BackendOptions& options)>;

// Named backend factories. Immutable after setup; safe to share between threads then.
class BackendRegistry {
 public:
  void Add(std::string name, BackendFactory factory);
  // kNotFound listing the registered names.
  Result<std::unique_ptr<Backend>> Create(std::string_view name,
                                          const BackendOptions& options) const;
  bool Has(std::string_view name) const;
  std::vector<std::string> names() const;

 private:
  std::map<std::string, BackendFactory, std::less<>> factories_;
};

// The one list of built-in backends: "reference" always, "xnnpack" when built with it.
void RegisterBuiltinBackends(BackendRegistry& registry);
// The registry with the built-in backends, built on first use and never changed.
const BackendRegistry& BuiltinBackends();

}  // namespace hml::runtime

#endif  // HML_SRC_RUNTIME_BACKEND_H_

// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// A Session executes one Model. Create() fixes the input shapes, folds constants, partitions the
// graph between backends (the preferred one, with the reference backend taking whatever it
// cannot run), plans all memory and compiles every segment. Run() then only computes: it does not
// allocate.
//
// Not thread-safe: use one Session per thread. Sessions over one Model may run concurrently.
#ifndef HML_RUNTIME_SESSION_H_
#define HML_RUNTIME_SESSION_H_

#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "hml/logging.h"
#include "hml/runtime/model.h"
#include "hml/runtime/tensor.h"
#include "hml/status.h"

namespace hml {

namespace runtime {
class BackendRegistry;
}  // namespace runtime

struct SessionOptions {
  // The preferred backend: "xnnpack" or "reference". Nodes it cannot run fall back to
  // "reference". Default: "xnnpack".
  std::string backend = "xnnpack";
  // Intra-op threads for the preferred backend. Default: 1 (faster at batch 1 on phones).
  int num_threads = 1;
  // Shapes for named inputs, fixing dynamic dims (e.g. the batch size). Dynamic dims not fixed
  // here become 1. Default: none.
  std::map<std::string, Shape> input_shapes;
  // Default: StderrLogger().
  Logger* logger = nullptr;
  // Where backends come from. Default: null = the built-in backends.
  const runtime::BackendRegistry* backends = nullptr;

  // kInvalidArgument for num_threads outside [1, 64] or an empty backend name.
  Status Validate() const;
};

// Which backend runs which nodes, in execution order.
struct SegmentInfo {
  std::string backend;
  std::vector<std::string> nodes;  // "Op 'name'"
};

class Session {
 public:
  // Errors: kInvalidArgument for bad options or input shapes, kUnimplemented when no backend
  // supports a node (the message names the node and op), kResourceExhausted when memory cannot
  // be planned, kNotFound for an unknown backend.
  static Result<std::unique_ptr<Session>> Create(const Model& model,
                                                 const SessionOptions& options = {});
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  size_t num_inputs() const;
  size_t num_outputs() const;
  // Specs with the session's static shapes.
  const TensorSpec& input_spec(size_t i) const;
  const TensorSpec& output_spec(size_t i) const;
  // Index of the named input/output, or kNotFound.
  Result<size_t> InputIndex(std::string_view name) const;
  Result<size_t> OutputIndex(std::string_view name) const;

  // Views into the session's memory: fill the inputs, call Run(), read the outputs. Valid until
  // Reshape() or destruction.
  Tensor& input(size_t i);
  const Tensor& output(size_t i) const;

  // Runs the model on the current contents of input(i). Does not allocate.
  Status Run();
  // Copies `inputs` (in input order, checked against the specs: dtype and shape) into the
  // session, runs, and copies the results into `outputs`, which must match the output specs.
  // Does not allocate. kInvalidArgument naming the tensor on any mismatch.
  Status Run(std::span<const Tensor> inputs, std::span<Tensor> outputs);
  // Like Run(inputs, outputs) but allocates and returns the outputs.
  Result<std::vector<Tensor>> Run(std::span<const Tensor> inputs);

  // Changes input shapes (e.g. the batch size): re-plans memory and recompiles. May allocate.
  // On error the session keeps its previous shapes and stays usable.
  Status Reshape(const std::map<std::string, Shape>& input_shapes);

  std::vector<SegmentInfo> segments() const;
  // Bytes of the planned activation arena.
  size_t arena_bytes() const;

 private:
  struct State;
  explicit Session(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace hml

#endif  // HML_RUNTIME_SESSION_H_

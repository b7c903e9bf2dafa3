// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/runtime/backends/xnnpack/xnnpack_backend.h"

#include <pthreadpool.h>
#include <xnnpack.h>

#include <string>
#include <vector>

#include "src/runtime/backends/xnnpack/node_specs.h"
#include "src/runtime/backends/xnnpack/subgraph_builder.h"
#include "src/runtime/backends/xnnpack/xnnpack_status.h"

namespace hml::runtime {
namespace {

class XnnpackBackend final : public Backend {
 public:
  XnnpackBackend(Logger* logger, std::shared_ptr<pthreadpool> threadpool)
      : logger_(logger), threadpool_(std::move(threadpool)) {}

  std::string_view name() const override { return "xnnpack"; }

  std::vector<bool> Claim(const Graph& graph) const override {
    const xnnpack::GraphAnalysis analysis(graph);
    std::vector<bool> claimed(graph.nodes.size());
    for (size_t n = 0; n < graph.nodes.size(); ++n) {
      claimed[n] = analysis.Claimed(static_cast<int>(n));
    }
    return claimed;
  }

  // Values produced and read inside a segment live in XNNPACK's own arena.
  bool NeedsInternalBuffers() const override { return false; }

  Result<std::unique_ptr<Executable>> Compile(const Segment& segment) override {
    if (segment.graph == nullptr)
      return InvalidArgumentError("XNNPACK backend: segment has no graph");
    const xnnpack::GraphAnalysis analysis(*segment.graph);
    xnnpack::CompileOptions options;
    options.threadpool = threadpool_;
    Result<std::unique_ptr<Executable>> exe = xnnpack::BuildExecutable(segment, analysis, options);
    if (exe.ok()) return exe;
    // A qs8 node XNNPACK rejects (e.g. a requantization scale out of range) must not fail the
    // session: the same segment always compiles with every compute node in fp32.
    options.quantized_compute = false;
    Result<std::unique_ptr<Executable>> fp32 = xnnpack::BuildExecutable(segment, analysis, options);
    if (fp32.ok()) {
      HML_LOG(logger_, kWarning) << "XNNPACK backend: running quantized nodes in fp32: "
                                 << exe.status().ToString();
    }
    return fp32;
  }

 private:
  Logger* logger_;
  std::shared_ptr<pthreadpool> threadpool_;
};

}  // namespace

Result<std::unique_ptr<Backend>> CreateXnnpackBackend(const BackendOptions& options) {
  if (options.num_threads < 1) {
    return InvalidArgumentError("XNNPACK backend: num_threads must be >= 1, got " +
                                std::to_string(options.num_threads));
  }
  // Idempotent; the snapshot's xnn_deinitialize releases nothing, so it is never called.
  HML_RETURN_IF_ERROR(
      xnnpack::XnnStatusToStatus(xnn_initialize(nullptr), "xnn_initialize", "XNNPACK backend"));
  std::shared_ptr<pthreadpool> threadpool;
  if (options.num_threads > 1) {
    pthreadpool_t pool = pthreadpool_create(static_cast<size_t>(options.num_threads));
    if (pool == nullptr) {
      return ResourceExhaustedError("XNNPACK backend: cannot create a thread pool of " +
                                    std::to_string(options.num_threads) + " threads");
    }
    threadpool.reset(pool, pthreadpool_destroy);
  }
  return std::unique_ptr<Backend>(new XnnpackBackend(options.logger, std::move(threadpool)));
}

}  // namespace hml::runtime

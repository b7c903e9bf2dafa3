// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The model repository: the InferenceBackend the front ends serve. It holds models under
// (name, version), each version behind its own DynamicBatcher, and is fed either one file at a
// time (Load) or from a registry directory (SyncWithRegistry: the versions the channels point
// at, followed as the registry changes; RegistryWatcher in registry_watcher.h calls it
// periodically). Version 0 in GetModel/Infer means the latest (highest) loaded version of the
// name.
//
// Following the registry: a sync loads the versions that channels point at and that are not
// loaded yet, and only then unloads the versions an earlier sync loaded that no channel points at
// any more. So after a publish + rollout of version N+1, `latest` moves to N+1 the moment it is
// loaded, and the version that dropped out of every channel (N-1 once N+1 is current and N its
// previous) is unloaded as below: requests it accepted are answered, requests to `latest` never
// see a gap. A rollback removes the bad version from its channel, so the next sync unloads it and
// `latest` falls back to the good one.
//
// Inputs: Infer() matches the request's input names to the version. The model's inputs (all of
// them) run the whole model. Names that are not all model inputs make a split request: they
// must be the tensors of a complete cut through the model (Model::Analyze's cut points), and
// the version runs the tail after them (Model::Slice(cut, {})) behind a batcher of its own
// with the version's batching options, so split requests with the same cut batch together.
// Tails are created on the first request naming their cut and kept per version, at most
// ModelRepositoryOptions::max_split_tails_per_version; one more evicts the least recently used,
// whose queued requests are answered before it goes (split_inference.h has the details and the
// INT8/UINT8 dequantization of cut tensors).
//
// Hot unload: Unload() removes the version from the map first, so requests that arrive after it
// resolve to the remaining versions (or kNotFound); it then waits for Submit() calls that already
// hold the version to return, and drains its batcher and every tail's batcher, so every request
// the version accepted, full or split, is answered before Unload() returns. The version is kept
// alive by a shared_ptr held by Unload() (and by any Infer() still submitting to it) until then.
//
// Metrics: with a ServingMetrics, each version records requests and failures by final code
// (split requests also in split_requests_total), admission refusals (queue full), and, from the
// counters of its batchers (the full model's and the tails') after each answered request, the
// batch sizes, compute time per batch and queue time (the batcher only keeps sums, so the queue
// time observed per request is the mean over the requests computed since the last look).
//
// Thread-safe: every method may be called from any thread.
#ifndef HML_SRC_SERVER_SERVING_MODEL_REPOSITORY_H_
#define HML_SRC_SERVER_SERVING_MODEL_REPOSITORY_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <string>
#include <utility>
#include <vector>

#include "hml/clock.h"
#include "hml/env.h"
#include "hml/runtime/model.h"
#include "hml/status.h"
#include "src/server/metrics/metrics.h"
#include "src/server/serving/batcher.h"
#include "src/server/serving/inference_backend.h"
#include "src/server/serving/split_inference.h"

namespace hml::server {

struct ModelRepositoryOptions {
  // Batching of every model without an entry in `per_model`. Default: BatchingOptions{}.
  BatchingOptions batching;
  // Batching by model name. Default: empty.
  std::map<std::string, BatchingOptions> per_model;
  // The batchers' clock (deadlines are in its NowNanos()); must outlive the repository.
  // Default: RealClock().
  Clock* clock = RealClock();
  // Most split-inference tails (one per distinct cut, each with its own batcher and Sessions)
  // kept per loaded version; in [0, 64], 0 refuses split requests. Default: 4.
  int max_split_tails_per_version = 4;

  // kInvalidArgument naming the model whose batching options are invalid, or the field.
  Status Validate() const;
};

class ModelRepository final : public InferenceBackend {
 public:
  // `metrics` may be null (nothing recorded); otherwise it must outlive the repository.
  // REQUIRES: options.Validate() is OK (Load() reports it otherwise).
  explicit ModelRepository(ModelRepositoryOptions options = {}, ServingMetrics* metrics = nullptr);
  // Drains every loaded version.
  ~ModelRepository() override;
  ModelRepository(const ModelRepository&) = delete;
  ModelRepository& operator=(const ModelRepository&) = delete;

  // Loads the ONNX file `path` as `name` at `version` (>= 1). Errors: kInvalidArgument for a
  // bad name or version, kAlreadyExists when (name, version) is loaded, Model::Load's and
  // DynamicBatcher::Create's errors prefixed with the model and version.
  Status Load(const std::string& name, int64_t version, const std::string& path);
  // The same for an already loaded Model (tests, and callers that loaded it themselves).
  Status LoadModel(const std::string& name, int64_t version, const Model& model);
  // Unloads (name, version) as described in the file comment. kNotFound when it is not loaded.
  Status Unload(const std::string& name, int64_t version);
  // What one SyncWithRegistry changed.
  struct SyncReport {
    std::vector<std::pair<std::string, int64_t>> loaded;
    std::vector<std::pair<std::string, int64_t>> unloaded;
    // Versions that could not be loaded (their error names the model, version and file). They
    // are not tried again by later syncs: blobs are immutable, so the error would repeat.
    std::vector<Status> failed;
  };
  // Makes the served versions follow the registry in `dir` (see the file comment): loads every
  // version a channel points at (current and previous: devices outside a rollout keep the
  // previous one) from <dir>/blobs/<blob>, then unloads the versions earlier syncs loaded that
  // no channel points at now. Versions loaded with Load()/LoadModel() are never unloaded by a
  // sync. Ready() is false while the first sync runs, not during later ones.
  // Errors: Registry::ListDir's (nothing changes then). A version that fails to load does not
  // stop the sync; it is listed in SyncReport::failed.
  // Syncs are serialised with each other; Infer() runs concurrently with them.
  Result<SyncReport> SyncWithRegistry(Env& env, const std::string& dir);

  bool Ready() const override { return ready_.load(std::memory_order_acquire); }
  Result<ServedModel> GetModel(const std::string& name, int64_t version) const override;
  std::vector<ServedModel> ListModels() const override;
  // As InferenceBackend::Infer, with the input matching and split requests of the file comment.
  // Split-specific errors (kInvalidArgument unless noted), each naming the model and version: a
  // name that is not a tensor of the model; names that are not a complete cut (naming the
  // missing tensors of the cut points that contain the given ones); an INT8/UINT8 cut tensor
  // without valid "scale"/"zero_point"; a cut tensor whose shape differs from the one inferred
  // (dimension 0 free); kUnimplemented for a cut whose tensors do not carry the batch in
  // dimension 0. The first request with a new cut compiles its tail (Sessions for the batch
  // sizes the batcher creates up front) before it is queued, in the caller's thread; one that
  // evicts a tail waits, after queueing, for the evicted tail's requests to be answered.
  // The version's own batcher's CheckAdmission (split requests' tails are not consulted).
  SubmitResult CheckAdmission(const std::string& name, int64_t version,
                              ServingProtocol protocol) override;
  SubmitResult Infer(const std::string& name, int64_t version, ServingProtocol protocol,
                     NamedInferRequest request) override;

 private:
  // One loaded version.
  struct Entry {
    std::string what;                // "model 'm' version 2", for messages
    std::vector<TensorSpec> inputs;  // Model::inputs(), dynamic dims -1
    std::vector<TensorSpec> outputs;
    // Loaded by SyncWithRegistry, so a later sync may unload it.
    bool from_registry = false;
    std::unique_ptr<DynamicBatcher> batcher;
    ModelMetrics* metrics = nullptr;  // null without ServingMetrics
    // Infer() holds it shared while it submits (to the batcher or a tail); Unload() takes it
    // exclusively once the entry is out of the map, so that no Submit() races with Drain().
    std::shared_mutex submit_mu;
    // Turns the batcher's counters into histogram observations.
    BatcherMetricsObserver observer;
    // The split-inference tails of this version.
    std::unique_ptr<SplitTails> tails;
  };

  // Infer() for a request naming the model's inputs, and for a split request.
  // REQUIRES: entry.submit_mu held shared.
  static SubmitResult InferFull(Entry& entry, ServingProtocol protocol, NamedInferRequest request);
  static SubmitResult InferSplit(Entry& entry, ServingProtocol protocol, NamedInferRequest request);
  // Drains the batcher and the tails of `entry`. REQUIRES: entry.submit_mu held exclusively.
  static void DrainEntry(Entry& entry);
  // The entry for (name, version), version 0 = latest. REQUIRES: mu_ held.
  Result<std::shared_ptr<Entry>> FindLocked(const std::string& name, int64_t version) const;
  ServedModel DescribeLocked(const std::string& name, int64_t version, const Entry& entry) const;
  Status LoadEntry(const std::string& name, int64_t version, const Model& model,
                   bool from_registry);

  const ModelRepositoryOptions options_;
  ServingMetrics* const metrics_;
  std::atomic<bool> ready_{true};
  // Serialises SyncWithRegistry calls; held while loading and unloading, never inside mu_.
  std::mutex sync_mu_;
  bool synced_once_ = false;                              // GUARDED_BY(sync_mu_)
  std::set<std::pair<std::string, int64_t>> sync_failed_;  // GUARDED_BY(sync_mu_)
  mutable std::mutex mu_;
  // name -> version -> entry.
  std::map<std::string, std::map<int64_t, std::shared_ptr<Entry>>> models_;  // GUARDED_BY(mu_)
};

}  // namespace hml::server

#endif  // HML_SRC_SERVER_SERVING_MODEL_REPOSITORY_H_

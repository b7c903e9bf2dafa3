// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Split inference on the server, and the matching of a request's named inputs to a model.
//
// A device may run the first layers of a model itself and send the tensors at a cut (the
// tensors after which the rest of the graph needs nothing else: Model::Analyze's cut points)
// instead of the model's inputs. The server then runs the tail: Model::Slice(cut, {}), which
// computes the model's outputs from the cut tensors. The request looks like any other v2
// request; only its input names differ. Cut tensors travel as FP32, or as INT8/UINT8 with the
// per-tensor parameters "scale" (a number > 0) and "zero_point" (an integer in the type's
// range), which are dequantized to FP32 before the tail runs: x = scale * (q - zero_point).
//
// The pieces, used by ModelRepository (model_repository.h):
//   TensorForSpec / InputsInSpecOrder   names -> the model's (or tail's) input order, dtype
//                                       conversion (dequantization) and checks
//   MakeTailModel                       the tail for a cut, with a dynamic batch dimension
//   SplitTails                          the tails of one model version: created on first use,
//                                       at most max_tails, each behind its own DynamicBatcher
//   BatcherMetricsObserver              batcher counters -> ModelMetrics histograms
#ifndef HML_SRC_SERVER_SERVING_SPLIT_INFERENCE_H_
#define HML_SRC_SERVER_SERVING_SPLIT_INFERENCE_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "hml/clock.h"
#include "hml/runtime/model.h"
#include "hml/runtime/tensor.h"
#include "hml/status.h"
#include "src/server/metrics/metrics.h"
#include "src/server/protocol/v2_json.h"
#include "src/server/serving/batcher.h"

namespace hml::server {

// The per-tensor parameters of a quantized input.
inline constexpr char kScaleParameter[] = "scale";
inline constexpr char kZeroPointParameter[] = "zero_point";

// The tensor to feed where the model expects `spec`, taken from `input` (its buffer is moved
// out). When the dtypes match, the tensor as it is (it must then carry no "scale" or
// "zero_point": those only describe INT8/UINT8 data standing for FP32). When `spec` is FP32 and
// the input INT8 or UINT8, the input dequantized with its "scale" (an integer or float > 0,
// finite) and "zero_point" (an integer in [-128, 127] for INT8, [0, 255] for UINT8), both
// required. Shapes are not checked here (the batcher does, with the batch dimension dynamic).
// Errors: kInvalidArgument starting with "<model>: input '<name>'" (`model` e.g. "model 'm'
// version 1") and naming the dtype or parameter at fault. Messages are built only on error.
Result<Tensor> TensorForSpec(const TensorSpec& spec, NamedTensor& input, std::string_view model);

// The tensors of `inputs` in the order of `specs`, each through TensorForSpec. Moves the tensors
// out of `inputs`. kInvalidArgument starting with `model` for a name that is not in `specs`, one
// of `specs` missing, or a name given twice.
Result<std::vector<Tensor>> InputsInSpecOrder(std::string_view model,
                                              const std::vector<TensorSpec>& specs,
                                              std::vector<NamedTensor>& inputs);

// The tail of `model` after `cut` (tensor names): Model::Slice(cut, {}), computing the model's
// outputs, with each tail input's dimension 0 made dynamic when the model's batch dimension is
// (every input has a dynamic dimension 0), so that split requests batch like full ones. The cut
// tensors' other dimensions are those inferred with the batch at 1. Errors: Slice's
// kInvalidArgument (an unknown name, or tensors that do not suffice: the message names a
// missing tensor); kUnimplemented naming the cut tensor whose dimension 0 is not the batch (its
// shape at batch 1 and 2 differs elsewhere, or dimension 0 is not 1 and 2).
Result<Model> MakeTailModel(const Model& model, const std::vector<std::string>& cut);

// Turns the counters of a batcher into ModelMetrics observations (batch sizes, compute time per
// batch, queue time per request) for what changed since the last call. The batcher only keeps
// sums, so the queue time observed per request is the mean over the requests computed since the
// last look. Thread-safe.
class BatcherMetricsObserver {
 public:
  // Does nothing when `metrics` is null.
  void Observe(const DynamicBatcher& batcher, ModelMetrics* metrics);

 private:
  std::mutex mu_;
  BatcherStats seen_;  // GUARDED_BY(mu_)
};

// The tails of one model version, by cut (sorted tensor names). A tail is created by the first
// request that names its cut (Slice, then a DynamicBatcher with the version's batching options,
// compiled in the requesting thread; creations are serialized per version) and kept for the
// requests after it. At most `max_tails` are kept: creating one more evicts the least recently
// used tail, whose batcher the caller then drains with Retire() (every request it accepted is
// answered). Cuts that fail are not kept; each request naming one pays a Slice again (serialized
// with the creations, so such requests cost at most one thread of compute per version).
//
// Thread-safe. REQUIRES: nothing is acquired after DrainAll() has started.
class SplitTails {
 public:
  struct Tail {
    std::vector<std::string> cut;    // sorted
    std::string what;                // "model 'm' version 1 (split at [a, b])", for messages
    std::vector<TensorSpec> inputs;  // the tail model's inputs (dimension 0 dynamic), cut order
    std::unique_ptr<DynamicBatcher> batcher;
    // Held shared by whoever submits to the batcher; taken exclusively before draining, so that
    // no Submit() meets a draining batcher because of an eviction.
    std::shared_mutex submit_mu;
    BatcherMetricsObserver observer;
    int64_t last_use = 0;  // GUARDED_BY(SplitTails::mu_)
  };
  struct Acquired {
    std::shared_ptr<Tail> tail;
    // Shared on tail->submit_mu, taken before the tail could be evicted: hold it while
    // submitting.
    std::shared_lock<std::shared_mutex> submit_lock;
    // The tail this acquisition evicted, or null. The caller passes it to Retire() once it has
    // submitted (so that the new request does not wait for the old tail to drain).
    std::shared_ptr<Tail> evicted;
  };

  // `model` is the whole model (copied: cheap). `what` names it in errors ("model 'm' version
  // 1"). `clock` must outlive this; `metrics` (may be null) too.
  SplitTails(const Model& model, std::string what, BatchingOptions batching, Clock* clock,
             int max_tails, ModelMetrics* metrics);
  // Drains every tail (DrainAll()).
  ~SplitTails();
  SplitTails(const SplitTails&) = delete;
  SplitTails& operator=(const SplitTails&) = delete;

  // The tail for `cut` (tensor names, any order, no duplicates), created on first use.
  // Errors, each starting with `what`: kInvalidArgument when a name is not a computed tensor of
  // the model, or the names are not a complete cut (naming the missing tensor, with the cut
  // points of the model that contain the given names); kUnimplemented from MakeTailModel;
  // DynamicBatcher::Create's errors.
  Result<Acquired> Acquire(std::vector<std::string> cut);
  // Takes `tail` (an Acquired::evicted), drains it once no one submits to it any more, and
  // observes its counters. Blocks until its queued requests are answered. Null is a no-op.
  void Retire(std::shared_ptr<Tail> tail);
  // Removes and drains every tail.
  void DrainAll();

  // The cuts of the tails kept now, least recently used first (tests, diagnostics).
  std::vector<std::vector<std::string>> Cuts() const;
  // Tails evicted since construction.
  int64_t evictions() const;

 private:
  // The kInvalidArgument for a `cut` that Slice refused with `slice_error`: names the missing
  // tensors against the model's cut points (Analyze()d once, under create_mu_).
  Status IncompleteCutError(const std::vector<std::string>& cut, const Status& slice_error);
  // The start of the kInvalidArgument messages for a `cut` that is not usable.
  std::string Neither(const std::vector<std::string>& cut) const;
  // Finds `cut`, marks it used and locks it for submitting. REQUIRES: mu_ held.
  bool FindLocked(const std::vector<std::string>& cut, Acquired* acquired);

  const Model model_;
  const std::string what_;
  const BatchingOptions batching_;
  Clock* const clock_;
  const int max_tails_;
  ModelMetrics* const metrics_;

  // Serializes tail creation (Slice, Analyze, Session compilation) for this version.
  std::mutex create_mu_;
  bool analyzed_ = false;                             // GUARDED_BY(create_mu_)
  std::vector<std::vector<std::string>> cut_points_;  // GUARDED_BY(create_mu_), each sorted

  mutable std::mutex mu_;
  std::vector<std::shared_ptr<Tail>> tails_;  // GUARDED_BY(mu_)
  int64_t tick_ = 0;                          // GUARDED_BY(mu_)
  int64_t evictions_ = 0;                     // GUARDED_BY(mu_)
};

}  // namespace hml::server

#endif  // HML_SRC_SERVER_SERVING_SPLIT_INFERENCE_H_

// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The serving core's dynamic batcher: requests for one model wait in a bounded queue, and a
// worker thread per model instance gathers them into one batch and runs it as one Session::Run.
//
// A request carries one or more samples: the model's first dimension is the batch dimension.
// Samples of several requests are concatenated along dimension 0, the batch is run, and every
// output is split back along dimension 0, so each request gets exactly its own rows. Batching
// needs every input and output of the model to have a dynamic dimension 0; a model whose batch
// dimension is fixed (e.g. 1) is served one request per Session::Run, and each request must
// then have exactly the model's shape. Dimensions other than the batch dimension must be static
// (Create() refuses dynamic ones: they cannot be concatenated).
//
// Batch formation (BatchingOptions::dynamic_batching = true). One worker at a time forms a batch;
// the others wait for it to finish forming (so that concurrent workers do not split the
// arrivals into many small batches). The forming worker takes the oldest request, then the next
// ones in arrival order while they fit in max_batch_size samples, and stops as soon as it holds
// max_batch_size samples or a preferred batch size: that batch runs at once. Otherwise it waits
// for more until max_queue_delay_micros after the oldest request was queued (at once when the
// batcher is draining) and then runs what it holds. A request that does not fit ends the batch
// and starts the next one (requests are never reordered). With dynamic_batching = false every
// request runs alone.
//
// Deadlines: a request whose deadline has passed when Submit() is called is refused; one whose
// deadline passes while it waits is answered kDeadlineExceeded when its batch is formed and is
// never computed (BatcherStats::expired counts those).
//
// Sessions: a Session has fixed input shapes, so each instance keeps one Session per batch size
// (samples in the batch). Sizes 1, max_batch_size and every preferred size are created by
// Create() (compile errors surface there, and the common sizes do not pay compilation at the
// first request); any other size is created the first time a batch of that size runs.
// Measured with bench/serving_batcher (it prints Session::Create time per batch size): ~0.07 ms
// for the 28x28 CNN, ~1.3 ms for the larger stand-in CNN (XNNPACK repacks the weights per
// Session). So a lazy size costs one short stall per size and instance, while creating all sizes
// up front would multiply start-up time and weight copies by max_batch_size for large models.
//
// Thread safety: Submit(), stats() and Drain() may be called from any thread concurrently.
// `done` callbacks run on the worker threads, outside the batcher's lock.
#ifndef HML_SRC_SERVER_SERVING_BATCHER_H_
#define HML_SRC_SERVER_SERVING_BATCHER_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "hml/clock.h"
#include "hml/runtime/model.h"
#include "hml/runtime/session.h"
#include "hml/runtime/tensor.h"
#include "hml/status.h"

namespace hml::server {

struct BatchingOptions {
  // Most samples in one Session::Run. A request with more samples is refused by Submit().
  // Default: 8.
  int64_t max_batch_size = 8;
  // How long a forming batch waits for more requests, measured from the time its oldest request
  // was queued. 0 runs whatever is queued at once. Default: 1000 (1 ms).
  int64_t max_queue_delay_micros = 1000;
  // Wait for more requests only while every other instance is running a batch. When an
  // instance is idle, waiting cannot raise throughput (the idle one would take the next
  // requests) and only adds latency: at low load requests then run at once, as without
  // batching, and batches still grow under load, as requests queue behind busy instances
  // (bench/serving_batcher). false: always wait up to max_queue_delay_micros. Default: true.
  bool wait_only_when_busy = true;
  // Batch sizes that are run at once when reached, without waiting for max_queue_delay. Each in
  // [1, max_batch_size]. Default: none.
  std::vector<int64_t> preferred_batch_sizes;
  // Model instances, each one worker thread with its own Sessions. Default: 1.
  int instances = 1;
  // Intra-op threads of each instance's Sessions. Default: 1 (scale out with instances).
  int threads_per_instance = 1;
  // Most requests waiting in the queue (not counting batches being formed or run); Submit()
  // beyond it fails with kResourceExhausted. Default: 128.
  int64_t max_queue_size = 128;
  // false: every request runs alone in its own Session::Run (the baseline the benchmark compares
  // batching with). Default: true.
  bool dynamic_batching = true;

  // kInvalidArgument naming the field: max_batch_size in [1, 4096], max_queue_delay_micros in
  // [0, 10 s], preferred sizes in [1, max_batch_size], instances in [1, 256],
  // threads_per_instance in [1, 64], max_queue_size in [1, 1 << 20].
  Status Validate() const;
};

// One inference request. The batcher takes ownership of the tensors; a tensor that is a View
// must keep its memory valid until `done` has been called.
struct InferRequest {
  // In model input order; dimension 0 is the number of samples (see the file comment).
  std::vector<Tensor> inputs;
  // Clock::NowNanos() of the batcher's clock after which the result is useless; 0 = none.
  int64_t deadline_nanos = 0;
  // Called exactly once, from a worker thread, for every request Submit() accepted: with the
  // request's outputs (model output order, dimension 0 = the request's samples) or with an
  // error (kDeadlineExceeded when the deadline passed in the queue, or the Session's error).
  // Not called when Submit() refuses the request. REQUIRES: it does not call Drain() or destroy
  // the batcher (a worker would join itself), and it returns quickly (it delays the worker).
  std::function<void(Result<std::vector<Tensor>>)> done;
};

// What Submit() returns: a Status plus, for kResourceExhausted, how long the caller should wait
// before retrying, as a number, so that the HTTP front end can send `Retry-After` (seconds,
// rounded up) and the gRPC one a metadata entry without parsing the message. The hint is also
// in the message.
struct [[nodiscard]] SubmitResult {
  Status status;
  // > 0 only with kResourceExhausted: the estimated time for the instances to work off the
  // current queue, at least max_queue_delay_micros and at least 1000 (1 ms).
  int64_t retry_after_micros = 0;

  bool ok() const { return status.ok(); }
};

// Counters since Create(). Plain values, copied out under the lock, for the metrics module.
struct BatcherStats {
  // Requests Submit() accepted (each gets exactly one `done`).
  int64_t requests = 0;
  // Submit() refusals, by reason: queue full (kResourceExhausted), invalid inputs or options
  // (kInvalidArgument), deadline already passed (kDeadlineExceeded), draining (kUnavailable).
  int64_t rejected_queue_full = 0;
  int64_t rejected_invalid = 0;
  int64_t rejected_deadline = 0;
  int64_t rejected_draining = 0;
  // Accepted requests whose deadline passed in the queue: answered kDeadlineExceeded, never
  // computed.
  int64_t expired = 0;
  // Accepted requests answered with outputs, and with a Session error.
  int64_t completed = 0;
  int64_t failed = 0;
  // Session::Run calls and the samples they computed.
  int64_t batches = 0;
  int64_t samples = 0;
  // batch_size_counts[n] = batches that computed n samples; size max_batch_size + 1 (index 0
  // unused), ready to be turned into histogram buckets.
  std::vector<int64_t> batch_size_counts;
  // Sum over computed requests of the time from Submit() to the start of their batch, and sum
  // over batches of the time to copy inputs in, run and split outputs out (Clock nanoseconds).
  int64_t queue_nanos_sum = 0;
  int64_t compute_nanos_sum = 0;
  // Requests waiting in the queue now (a gauge).
  int64_t queue_depth = 0;
};

class DynamicBatcher {
 public:
  // Starts `options.instances` worker threads. `model` is copied (a Model shares its graph);
  // `clock` must outlive the batcher. Errors: kInvalidArgument for bad options,
  // kUnimplemented for a model with a dynamic dimension other than dimension 0, or whose
  // outputs do not follow the batch dimension, the Session's errors (naming the batch size) when
  // a Session cannot be created, kResourceExhausted when a thread cannot be started.
  static Result<std::unique_ptr<DynamicBatcher>> Create(const Model& model,
                                                        const BatchingOptions& options,
                                                        Clock* clock = RealClock());
  // Drains (see Drain()).
  ~DynamicBatcher();
  DynamicBatcher(const DynamicBatcher&) = delete;
  DynamicBatcher& operator=(const DynamicBatcher&) = delete;

  // Queues `request` without blocking on computation. Inputs are checked before queueing
  // (count, dtype, shape except dimension 0, samples in [1, max_batch_size], all inputs with the
  // same samples): kInvalidArgument naming the input. A full queue: kResourceExhausted with
  // retry_after_micros. A deadline already passed: kDeadlineExceeded. After Drain():
  // kUnavailable. A null `done`: kInvalidArgument. On any error `done` is not called.
  SubmitResult Submit(InferRequest request);

  // What Submit() would answer now for a valid request, without one: kResourceExhausted with
  // retry_after_micros when the queue is full, kUnavailable while draining, else OK. Front ends
  // ask it before decoding a request, so that under overload a refusal costs no parsing (an
  // overloaded HTTP server otherwise spends its cores parsing JSON it then refuses). A hint,
  // not a reservation: Submit() checks again. A refusal is counted like Submit()'s.
  SubmitResult CheckAdmission();

  // Stops accepting (Submit() then returns kUnavailable), finishes every queued request, and
  // joins the workers. Idempotent; blocks until the workers have exited.
  void Drain();

  BatcherStats stats() const;

  // True when requests are concatenated into batches (dynamic_batching and a model whose batch
  // dimension is dynamic).
  bool batches_requests() const { return batch_dim_dynamic_ && options_.dynamic_batching; }

 private:
  // A queued request.
  struct Pending {
    InferRequest request;
    int64_t samples = 0;        // dimension 0 of its inputs
    int64_t enqueue_nanos = 0;  // clock_->NowNanos() at Submit()
  };
  struct Instance;

  DynamicBatcher(const Model& model, const BatchingOptions& options, Clock* clock);

  Status CheckInputs(const std::vector<Tensor>& inputs, int64_t* samples) const;
  // The worker loop of instance `index`.
  void WorkerLoop(size_t index);
  // Blocks until a batch is formed (true) or the batcher is drained and empty (false). Requests
  // found expired are moved to `expired`.
  bool NextBatch(std::vector<Pending>* batch, std::vector<Pending>* expired);
  bool IsBatchComplete(int64_t samples) const;
  // Runs `batch` on `instance` and answers every request in it.
  void RunBatch(Instance& instance, std::vector<Pending>& batch);
  // The Session of `instance` for `samples` samples, created on first use.
  Result<Session*> SessionFor(Instance& instance, int64_t samples);
  int64_t RetryAfterMicrosLocked() const;
  // The refusals shared by Submit() and CheckAdmission(); counted. REQUIRES: mu_ held.
  SubmitResult DrainingRefusalLocked();
  SubmitResult QueueFullRefusalLocked();

  const Model model_;
  const BatchingOptions options_;
  Clock* const clock_;
  std::vector<TensorSpec> input_specs_;
  std::vector<TensorSpec> output_specs_;
  bool batch_dim_dynamic_ = false;
  std::vector<std::unique_ptr<Instance>> instances_;
  std::vector<std::thread> workers_;

  // Serializes Drain() callers around joining the workers.
  std::mutex drain_mu_;

  mutable std::mutex mu_;
  // Workers wait on it for requests, for the forming token and, while forming, for more
  // requests; Submit() and Drain() notify it.
  std::condition_variable cv_;
  std::deque<Pending> queue_;  // GUARDED_BY(mu_)
  bool draining_ = false;      // GUARDED_BY(mu_)
  bool forming_ = false;       // GUARDED_BY(mu_): a worker is forming a batch
  int running_ = 0;            // GUARDED_BY(mu_): instances running a batch
  BatcherStats stats_;         // GUARDED_BY(mu_)
};

}  // namespace hml::server

#endif  // HML_SRC_SERVER_SERVING_BATCHER_H_

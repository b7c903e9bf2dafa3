// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/server/serving/batcher.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <string>
#include <system_error>
#include <utility>

namespace hml::server {
namespace {

// Longest single wait on the condition variable while a batch is forming. The delay is measured
// on the injected Clock, which a real-time wait cannot follow when it is a ManualClock: the
// worker re-reads the clock at least this often.
constexpr int64_t kMaxWaitSliceNanos = 10'000'000;
// Upper bound of the retry-after hint: beyond it the estimate says nothing useful.
constexpr int64_t kMaxRetryAfterMicros = 60'000'000;

std::string Quoted(const std::string& name) { return "'" + name + "'"; }

}  // namespace

Status BatchingOptions::Validate() const {
  if (max_batch_size < 1 || max_batch_size > 4096) {
    return InvalidArgumentError("BatchingOptions.max_batch_size must be in [1, 4096], got " +
                                std::to_string(max_batch_size));
  }
  if (max_queue_delay_micros < 0 || max_queue_delay_micros > 10'000'000) {
    return InvalidArgumentError(
        "BatchingOptions.max_queue_delay_micros must be in [0, 10000000], got " +
        std::to_string(max_queue_delay_micros));
  }
  for (int64_t size : preferred_batch_sizes) {
    if (size < 1 || size > max_batch_size) {
      return InvalidArgumentError("BatchingOptions.preferred_batch_sizes: " + std::to_string(size) +
                                  " is outside [1, max_batch_size " +
                                  std::to_string(max_batch_size) + "]");
    }
  }
  if (instances < 1 || instances > 256) {
    return InvalidArgumentError("BatchingOptions.instances must be in [1, 256], got " +
                                std::to_string(instances));
  }
  if (threads_per_instance < 1 || threads_per_instance > 64) {
    return InvalidArgumentError("BatchingOptions.threads_per_instance must be in [1, 64], got " +
                                std::to_string(threads_per_instance));
  }
  if (max_queue_size < 1 || max_queue_size > (int64_t{1} << 20)) {
    return InvalidArgumentError("BatchingOptions.max_queue_size must be in [1, 1048576], got " +
                                std::to_string(max_queue_size));
  }
  return Status::Ok();
}

// The Sessions of one instance, by batch size. Touched only by Create() before the worker starts
// and then by that instance's worker alone.
struct DynamicBatcher::Instance {
  std::map<int64_t, std::unique_ptr<Session>> sessions;
};

DynamicBatcher::DynamicBatcher(const Model& model, const BatchingOptions& options, Clock* clock)
    : model_(model),
      options_(options),
      clock_(clock),
      input_specs_(model.inputs()),
      output_specs_(model.outputs()) {
  stats_.batch_size_counts.assign(static_cast<size_t>(options.max_batch_size) + 1, 0);
}

Result<std::unique_ptr<DynamicBatcher>> DynamicBatcher::Create(const Model& model,
                                                               const BatchingOptions& options,
                                                               Clock* clock) {
  HML_RETURN_IF_ERROR(options.Validate());
  if (clock == nullptr) return InvalidArgumentError("DynamicBatcher: clock is null");
  std::unique_ptr<DynamicBatcher> batcher(new DynamicBatcher(model, options, clock));
  const std::string model_name = Quoted(model.name());
  if (batcher->input_specs_.empty()) {
    return InvalidArgumentError("model " + model_name + " has no inputs to batch");
  }

  // Batching concatenates along dimension 0, so every input must have a dynamic dimension 0
  // and static others; a model with a fixed dimension 0 is served request by request.
  int dynamic_batch_inputs = 0;
  for (const TensorSpec& spec : batcher->input_specs_) {
    for (size_t d = 1; d < spec.shape.size(); ++d) {
      if (spec.shape[d] < 0) {
        return UnimplementedError("model " + model_name + ": input " + Quoted(spec.name) +
                                  " has a dynamic dimension " + std::to_string(d) + " in " +
                                  ShapeToString(spec.shape) +
                                  "; the batcher serves static shapes except dimension 0");
      }
    }
    if (!spec.shape.empty() && spec.shape[0] < 0) ++dynamic_batch_inputs;
  }
  const int num_inputs = static_cast<int>(batcher->input_specs_.size());
  if (dynamic_batch_inputs != 0 && dynamic_batch_inputs != num_inputs) {
    return UnimplementedError("model " + model_name + ": " + std::to_string(dynamic_batch_inputs) +
                              " of " + std::to_string(num_inputs) +
                              " inputs have a dynamic dimension 0; the batch dimension must be "
                              "dynamic on all inputs or on none");
  }
  batcher->batch_dim_dynamic_ = dynamic_batch_inputs == num_inputs;

  // Sizes created up front (see the header): 1, max and the preferred ones. A fixed-batch model
  // has one Session, at its own shapes, kept under key 1.
  std::vector<int64_t> eager_sizes = {1};
  if (batcher->batch_dim_dynamic_) {
    eager_sizes.push_back(options.max_batch_size);
    eager_sizes.insert(eager_sizes.end(), options.preferred_batch_sizes.begin(),
                       options.preferred_batch_sizes.end());
  }
  for (int i = 0; i < options.instances; ++i) {
    auto instance = std::make_unique<Instance>();
    for (int64_t size : eager_sizes) {
      HML_RETURN_IF_ERROR(batcher->SessionFor(*instance, size).status());
    }
    batcher->instances_.push_back(std::move(instance));
  }

  for (int i = 0; i < options.instances; ++i) {
    // std::thread reports a failure to start a thread by throwing; this is the one place it is
    // translated into a Status. Workers already started are joined by the destructor.
    try {
      batcher->workers_.emplace_back(&DynamicBatcher::WorkerLoop, batcher.get(),
                                     static_cast<size_t>(i));
    } catch (const std::system_error& e) {
      return ResourceExhaustedError("model " + model_name + ": cannot start worker thread " +
                                    std::to_string(i) + ": " + e.what());
    }
  }
  return batcher;
}

DynamicBatcher::~DynamicBatcher() { Drain(); }

Result<Session*> DynamicBatcher::SessionFor(Instance& instance, int64_t samples) {
  const int64_t key = batch_dim_dynamic_ ? samples : 1;
  auto it = instance.sessions.find(key);
  if (it != instance.sessions.end()) return it->second.get();

  SessionOptions session_options;
  session_options.num_threads = options_.threads_per_instance;
  if (batch_dim_dynamic_) {
    for (const TensorSpec& spec : input_specs_) {
      Shape shape = spec.shape;
      shape[0] = samples;
      session_options.input_shapes[spec.name] = std::move(shape);
    }
  }
  const std::string context =
      "model " + Quoted(model_.name()) + ": session for batch size " + std::to_string(key);
  Result<std::unique_ptr<Session>> session = Session::Create(model_, session_options);
  if (!session.ok()) return session.status().WithContext(context);
  // Splitting outputs back per request needs every output to carry the batch dimension.
  if (batch_dim_dynamic_) {
    for (size_t o = 0; o < (*session)->num_outputs(); ++o) {
      const TensorSpec& spec = (*session)->output_spec(o);
      if (spec.shape.empty() || spec.shape[0] != samples) {
        return UnimplementedError(context + ": output " + Quoted(spec.name) + " has shape " +
                                  ShapeToString(spec.shape) + ", whose dimension 0 is not the " +
                                  "batch size; its rows cannot be split back per request");
      }
    }
  }
  Session* raw = session->get();
  instance.sessions.emplace(key, std::move(*session));
  return raw;
}

Status DynamicBatcher::CheckInputs(const std::vector<Tensor>& inputs, int64_t* samples) const {
  if (inputs.size() != input_specs_.size()) {
    return InvalidArgumentError("model " + Quoted(model_.name()) + " takes " +
                                std::to_string(input_specs_.size()) + " inputs, the request has " +
                                std::to_string(inputs.size()));
  }
  *samples = 1;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const TensorSpec& spec = input_specs_[i];
    const Tensor& t = inputs[i];
    // Built only on error: Submit() is on the request path.
    const auto what = [&] {
      return "model " + Quoted(model_.name()) + ": input " + Quoted(spec.name);
    };
    if (t.dtype() != spec.dtype) {
      return InvalidArgumentError(what() + " has dtype " + std::string(DTypeName(t.dtype())) +
                                  ", expected " + std::string(DTypeName(spec.dtype)));
    }
    bool shape_ok = t.shape().size() == spec.shape.size();
    for (size_t d = batch_dim_dynamic_ ? 1 : 0; shape_ok && d < spec.shape.size(); ++d) {
      shape_ok = t.shape()[d] == spec.shape[d];
    }
    if (!shape_ok) {
      return InvalidArgumentError(what() + " has shape " + ShapeToString(t.shape()) +
                                  ", expected " + ShapeToString(spec.shape));
    }
    if (t.raw_data() == nullptr && t.num_elements() > 0) {
      return InvalidArgumentError(what() + " has no data");
    }
    if (!batch_dim_dynamic_) continue;
    const int64_t n = t.dim(0);
    if (n < 1 || n > options_.max_batch_size) {
      return InvalidArgumentError(what() + " has " + std::to_string(n) +
                                  " samples (dimension 0); must be in [1, max_batch_size " +
                                  std::to_string(options_.max_batch_size) + "]");
    }
    if (i == 0) {
      *samples = n;
    } else if (n != *samples) {
      return InvalidArgumentError(what() + " has " + std::to_string(n) + " samples but input " +
                                  Quoted(input_specs_[0].name) + " has " +
                                  std::to_string(*samples));
    }
  }
  return Status::Ok();
}

SubmitResult DynamicBatcher::DrainingRefusalLocked() {
  ++stats_.rejected_draining;
  return {UnavailableError("model " + Quoted(model_.name()) +
                           ": the batcher is draining and accepts no new requests")};
}

SubmitResult DynamicBatcher::QueueFullRefusalLocked() {
  ++stats_.rejected_queue_full;
  const int64_t retry_after = RetryAfterMicrosLocked();
  return {ResourceExhaustedError("model " + Quoted(model_.name()) + ": queue full (" +
                                 std::to_string(options_.max_queue_size) +
                                 " requests); retry after " + std::to_string(retry_after) + " us"),
          retry_after};
}

SubmitResult DynamicBatcher::CheckAdmission() {
  std::lock_guard<std::mutex> lock(mu_);
  if (draining_) return DrainingRefusalLocked();
  if (static_cast<int64_t>(queue_.size()) >= options_.max_queue_size) {
    return QueueFullRefusalLocked();
  }
  return {};
}

SubmitResult DynamicBatcher::Submit(InferRequest request) {
  int64_t samples = 0;
  Status checked = request.done ? CheckInputs(request.inputs, &samples)
                                : InvalidArgumentError("model " + Quoted(model_.name()) +
                                                       ": request has no done callback");
  const int64_t now = clock_->NowNanos();
  std::unique_lock<std::mutex> lock(mu_);
  if (draining_) return DrainingRefusalLocked();
  if (!checked.ok()) {
    ++stats_.rejected_invalid;
    return {std::move(checked)};
  }
  if (request.deadline_nanos != 0 && now >= request.deadline_nanos) {
    ++stats_.rejected_deadline;
    return {DeadlineExceededError("model " + Quoted(model_.name()) + ": deadline passed " +
                                  std::to_string((now - request.deadline_nanos) / 1000) +
                                  " us before the request was queued")};
  }
  if (static_cast<int64_t>(queue_.size()) >= options_.max_queue_size) {
    return QueueFullRefusalLocked();
  }
  queue_.push_back(Pending{std::move(request), samples, now});
  ++stats_.requests;
  stats_.queue_depth = static_cast<int64_t>(queue_.size());
  lock.unlock();
  // All workers: the one forming a batch must see the arrival, and a notify_one could go to an
  // idle worker that only goes back to waiting for the forming token.
  cv_.notify_all();
  return {};
}

int64_t DynamicBatcher::RetryAfterMicrosLocked() const {
  // The time the instances need to work off the queued samples at the average compute time per
  // sample seen so far, plus the batching delay the next request would wait anyway.
  int64_t queued_samples = 0;
  for (const Pending& p : queue_) queued_samples += p.samples;
  const int64_t nanos_per_sample =
      stats_.samples > 0 ? stats_.compute_nanos_sum / stats_.samples : 0;
  const int64_t work_micros = queued_samples * nanos_per_sample / options_.instances / 1000;
  return std::clamp(work_micros + options_.max_queue_delay_micros,
                    std::max<int64_t>(1000, options_.max_queue_delay_micros), kMaxRetryAfterMicros);
}

bool DynamicBatcher::IsBatchComplete(int64_t samples) const {
  if (samples >= options_.max_batch_size) return true;
  return std::find(options_.preferred_batch_sizes.begin(), options_.preferred_batch_sizes.end(),
                   samples) != options_.preferred_batch_sizes.end();
}

bool DynamicBatcher::NextBatch(std::vector<Pending>* batch, std::vector<Pending>* expired) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return !forming_ && (!queue_.empty() || draining_); });
  if (queue_.empty()) return false;  // drained: nothing left, ever
  forming_ = true;

  const bool batching = batches_requests();
  const auto is_expired = [](const Pending& p, int64_t now) {
    return p.request.deadline_nanos != 0 && now >= p.request.deadline_nanos;
  };
  int64_t samples = 0;
  bool closed = false;  // the batch takes no more requests
  while (true) {
    const int64_t now = clock_->NowNanos();
    while (!closed && !queue_.empty()) {
      Pending& next = queue_.front();
      if (is_expired(next, now)) {
        expired->push_back(std::move(next));
        queue_.pop_front();
        continue;
      }
      if (!batch->empty() && samples + next.samples > options_.max_batch_size) {
        closed = true;
        break;
      }
      samples += next.samples;
      batch->push_back(std::move(next));
      queue_.pop_front();
      closed = !batching || IsBatchComplete(samples);
    }
    // An empty batch here means the queue held only expired requests.
    if (batch->empty() || closed || draining_) break;
    if (options_.wait_only_when_busy && running_ < options_.instances - 1) break;
    const int64_t wait_until =
        batch->front().enqueue_nanos + options_.max_queue_delay_micros * 1000;
    if (now >= wait_until) break;
    cv_.wait_for(lock, std::chrono::nanoseconds(std::min(wait_until - now, kMaxWaitSliceNanos)));
  }

  // Requests gathered early may have expired while the batch waited for more.
  const int64_t now = clock_->NowNanos();
  auto live_end = std::stable_partition(batch->begin(), batch->end(),
                                        [&](const Pending& p) { return !is_expired(p, now); });
  for (auto it = live_end; it != batch->end(); ++it) expired->push_back(std::move(*it));
  batch->erase(live_end, batch->end());

  stats_.expired += static_cast<int64_t>(expired->size());
  stats_.queue_depth = static_cast<int64_t>(queue_.size());
  if (!batch->empty()) ++running_;  // until WorkerLoop has run it
  forming_ = false;
  lock.unlock();
  cv_.notify_all();  // the forming token is free for the next idle worker
  return true;
}

void DynamicBatcher::RunBatch(Instance& instance, std::vector<Pending>& batch) {
  const int64_t start = clock_->NowNanos();
  int64_t samples = 0;
  for (const Pending& p : batch) samples += p.samples;
  // Built only on error: RunBatch() is on the request path.
  const auto context = [&] {
    return "model " + Quoted(model_.name()) + ": batch of " + std::to_string(batch.size()) +
           " requests, " + std::to_string(samples) + " samples";
  };

  std::vector<Result<std::vector<Tensor>>> results;
  results.reserve(batch.size());
  Status status = Status::Ok();
  Result<Session*> session_or = SessionFor(instance, samples);
  if (!session_or.ok()) status = session_or.status().WithContext(context());

  if (status.ok()) {
    Session& session = **session_or;
    // Concatenate along dimension 0: the samples of consecutive requests are contiguous.
    for (size_t i = 0; i < session.num_inputs() && status.ok(); ++i) {
      Tensor& dst = session.input(i);
      size_t offset = 0;
      for (const Pending& p : batch) {
        const Tensor& src = p.request.inputs[i];
        if (offset + src.byte_size() > dst.byte_size()) {
          status = InternalError(context() + ": input " + Quoted(input_specs_[i].name) +
                                 " does not fit the session's " + ShapeToString(dst.shape()));
          break;
        }
        std::memcpy(static_cast<char*>(dst.raw_data()) + offset, src.raw_data(), src.byte_size());
        offset += src.byte_size();
      }
    }
    if (status.ok()) {
      status = session.Run();
      if (!status.ok()) status = status.WithContext(context());
    }
  }

  if (status.ok()) {
    const Session& session = **session_or;
    std::vector<size_t> offsets(session.num_outputs(), 0);
    for (const Pending& p : batch) {
      std::vector<Tensor> outputs;
      outputs.reserve(session.num_outputs());
      Status split = Status::Ok();
      for (size_t o = 0; o < session.num_outputs() && split.ok(); ++o) {
        const Tensor& src = session.output(o);
        Shape shape = src.shape();
        if (batch_dim_dynamic_) shape[0] = p.samples;
        Result<Tensor> out = Tensor::Allocate(src.dtype(), std::move(shape));
        if (!out.ok()) {
          split = out.status().WithContext(context());
          break;
        }
        std::memcpy(out->raw_data(), static_cast<const char*>(src.raw_data()) + offsets[o],
                    out->byte_size());
        offsets[o] += out->byte_size();
        outputs.push_back(std::move(*out));
      }
      if (split.ok()) {
        results.emplace_back(std::move(outputs));
      } else {
        results.emplace_back(std::move(split));
      }
    }
  } else {
    for (size_t r = 0; r < batch.size(); ++r) results.emplace_back(status);
  }
  const int64_t end = clock_->NowNanos();

  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.batches;
    stats_.samples += samples;
    const size_t bucket =
        static_cast<size_t>(std::clamp<int64_t>(samples, 0, options_.max_batch_size));
    ++stats_.batch_size_counts[bucket];
    stats_.compute_nanos_sum += end - start;
    for (size_t r = 0; r < batch.size(); ++r) {
      stats_.queue_nanos_sum += start - batch[r].enqueue_nanos;
      if (results[r].ok()) {
        ++stats_.completed;
      } else {
        ++stats_.failed;
      }
    }
  }
  for (size_t r = 0; r < batch.size(); ++r) batch[r].request.done(std::move(results[r]));
}

void DynamicBatcher::WorkerLoop(size_t index) {
  Instance& instance = *instances_[index];
  std::vector<Pending> batch;
  std::vector<Pending> expired;
  while (true) {
    batch.clear();
    expired.clear();
    const bool more = NextBatch(&batch, &expired);
    for (Pending& p : expired) {
      p.request.done(DeadlineExceededError("model " + Quoted(model_.name()) +
                                           ": deadline passed while the request was queued"));
    }
    if (!batch.empty()) {
      RunBatch(instance, batch);
      std::lock_guard<std::mutex> lock(mu_);
      --running_;
    }
    if (!more) return;
  }
}

void DynamicBatcher::Drain() {
  std::lock_guard<std::mutex> join_lock(drain_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    draining_ = true;
  }
  cv_.notify_all();
  for (std::thread& worker : workers_) {
    if (worker.joinable()) worker.join();
  }
}

BatcherStats DynamicBatcher::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

}  // namespace hml::server

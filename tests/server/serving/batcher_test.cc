// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The dynamic batcher on the 28x28 CNN (dynamic batch dimension): results equal running each
// request alone, every accepted request is answered exactly once, requests are really batched
// (driven by a ManualClock, so the batching delay passes only when the test says so), expired
// work is never computed, overload and bad input are refused before queueing, and Drain()
// finishes queued work.
#include "src/server/serving/batcher.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "hml/runtime/session.h"
#include "hml/runtime/tensor_util.h"
#include "tests/testing/models.h"

namespace hml::server {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kMs = 1'000'000;  // nanoseconds

Model Cnn28() { return *Model::FromGraph(testing::Cnn28Graph()); }

Tensor Images(int64_t samples, uint64_t seed) {
  return testing::RandomTensor({samples, 1, 28, 28}, seed, 1.0f);
}

// Collects the results handed to `done`, by request index, and counts calls per index.
class Collector {
 public:
  std::function<void(Result<std::vector<Tensor>>)> Done(int index) {
    return [this, index](Result<std::vector<Tensor>> result) {
      std::lock_guard<std::mutex> lock(mu_);
      ++calls_[index];
      results_.emplace(index, std::move(result));
      ++total_;
      cv_.notify_all();
    };
  }
  // Waits (real time) until `n` calls arrived; false after 10 s.
  bool WaitFor(int n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(10), [&] { return total_ >= n; });
  }
  int total() {
    std::lock_guard<std::mutex> lock(mu_);
    return total_;
  }
  int calls(int index) {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_[index];
  }
  // REQUIRES: the call for `index` arrived.
  Result<std::vector<Tensor>>& result(int index) {
    std::lock_guard<std::mutex> lock(mu_);
    return results_.at(index);
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<int, int> calls_;
  std::map<int, Result<std::vector<Tensor>>> results_;
  int total_ = 0;
};

InferRequest Request(Tensor images, std::function<void(Result<std::vector<Tensor>>)> done,
                     int64_t deadline_nanos = 0) {
  InferRequest r;
  r.inputs.push_back(std::move(images));
  r.deadline_nanos = deadline_nanos;
  r.done = std::move(done);
  return r;
}

TEST(BatchingOptionsTest, ValidateNamesTheField) {
  EXPECT_TRUE(BatchingOptions{}.Validate().ok());
  BatchingOptions o;
  o.max_batch_size = 0;
  EXPECT_THAT(std::string(o.Validate().message()), HasSubstr("max_batch_size"));
  o = {};
  o.preferred_batch_sizes = {4, 9};
  EXPECT_THAT(std::string(o.Validate().message()), HasSubstr("preferred_batch_sizes: 9"));
  o = {};
  o.instances = 0;
  EXPECT_EQ(o.Validate().code(), StatusCode::kInvalidArgument);
  o = {};
  o.max_queue_size = 0;
  EXPECT_THAT(std::string(o.Validate().message()), HasSubstr("max_queue_size"));
  o = {};
  o.max_queue_delay_micros = -1;
  EXPECT_EQ(DynamicBatcher::Create(Cnn28(), o).status().code(), StatusCode::kInvalidArgument);
}

TEST(DynamicBatcherTest, ResultsEqualEachRequestRunAlone) {
  const Model model = Cnn28();
  BatchingOptions options;
  options.instances = 2;
  options.max_queue_delay_micros = 2000;
  auto batcher = *DynamicBatcher::Create(model, options);
  ASSERT_TRUE(batcher->batches_requests());

  constexpr int kRequests = 24;
  Collector collector;
  std::vector<Tensor> inputs;
  for (int i = 0; i < kRequests; ++i) {
    Tensor images = Images(1 + i % 3, 100 + i);
    inputs.push_back(*images.Clone());
    ASSERT_TRUE(batcher->Submit(Request(std::move(images), collector.Done(i))).ok());
  }
  ASSERT_TRUE(collector.WaitFor(kRequests));

  std::map<int64_t, std::unique_ptr<Session>> alone;  // by samples
  for (int i = 0; i < kRequests; ++i) {
    const int64_t samples = inputs[i].dim(0);
    if (!alone.count(samples)) {
      SessionOptions so;
      so.input_shapes["image"] = {samples, 1, 28, 28};
      alone[samples] = *Session::Create(model, so);
    }
    Result<std::vector<Tensor>> want = alone[samples]->Run(std::span<const Tensor>(&inputs[i], 1));
    ASSERT_TRUE(want.ok()) << want.status().ToString();
    Result<std::vector<Tensor>>& got = collector.result(i);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    ASSERT_EQ(got->size(), 1u);
    ASSERT_EQ((*got)[0].shape(), (Shape{samples, 10}));
    for (int64_t k = 0; k < samples * 10; ++k) {
      EXPECT_NEAR((*got)[0].data<float>()[k], (*want)[0].data<float>()[k], 1e-6)
          << "request " << i << " element " << k;
    }
  }
  const BatcherStats stats = batcher->stats();
  EXPECT_EQ(stats.requests, kRequests);
  EXPECT_EQ(stats.completed, kRequests);
  EXPECT_EQ(stats.samples, 48);  // 8 x (1 + 2 + 3)
  int64_t from_histogram = 0;
  for (size_t n = 0; n < stats.batch_size_counts.size(); ++n) {
    from_histogram += static_cast<int64_t>(n) * stats.batch_size_counts[n];
  }
  EXPECT_EQ(from_histogram, stats.samples);
  EXPECT_LT(stats.batches, kRequests);  // 2 ms of delay gathers the quick submits
}

TEST(DynamicBatcherTest, ConcurrentSubmittersAreAllAnsweredOnce) {
  BatchingOptions options;
  options.instances = 2;
  options.max_queue_size = 1024;
  auto batcher = *DynamicBatcher::Create(Cnn28(), options);
  constexpr int kThreads = 4;
  constexpr int kPerThread = 50;
  Collector collector;
  std::atomic<int> refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const int index = t * kPerThread + i;
        if (!batcher->Submit(Request(Images(1, index), collector.Done(index))).ok()) ++refused;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  ASSERT_EQ(refused.load(), 0);
  ASSERT_TRUE(collector.WaitFor(kThreads * kPerThread));
  batcher->Drain();  // after it no worker can call done again
  EXPECT_EQ(collector.total(), kThreads * kPerThread);
  for (int i = 0; i < kThreads * kPerThread; ++i) {
    ASSERT_EQ(collector.calls(i), 1) << "request " << i;
    EXPECT_TRUE(collector.result(i).ok()) << collector.result(i).status().ToString();
  }
  const BatcherStats stats = batcher->stats();
  EXPECT_EQ(stats.requests, kThreads * kPerThread);
  EXPECT_EQ(stats.completed, kThreads * kPerThread);
  EXPECT_EQ(stats.samples, kThreads * kPerThread);
}

TEST(DynamicBatcherTest, QuickSubmitsFormOneFullBatch) {
  ManualClock clock;  // never advanced: only a full batch can run
  BatchingOptions options;
  options.max_batch_size = 8;
  auto batcher = *DynamicBatcher::Create(Cnn28(), options, &clock);
  Collector collector;
  for (int i = 0; i < 8; ++i) {
    ASSERT_TRUE(batcher->Submit(Request(Images(1, i), collector.Done(i))).ok());
  }
  ASSERT_TRUE(collector.WaitFor(8));
  const BatcherStats stats = batcher->stats();
  EXPECT_EQ(stats.batches, 1);
  EXPECT_EQ(stats.samples, 8);
  EXPECT_EQ(stats.batch_size_counts[8], 1);
  EXPECT_EQ(stats.completed, 8);
}

TEST(DynamicBatcherTest, PartialBatchWaitsForTheDelayOnTheInjectedClock) {
  ManualClock clock;
  BatchingOptions options;
  options.max_queue_delay_micros = 1000;
  auto batcher = *DynamicBatcher::Create(Cnn28(), options, &clock);
  Collector collector;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(batcher->Submit(Request(Images(1, i), collector.Done(i))).ok());
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  EXPECT_EQ(collector.total(), 0);  // 30 ms of real time are not 1 ms of this clock
  clock.Advance(1 * kMs);
  ASSERT_TRUE(collector.WaitFor(3));
  const BatcherStats stats = batcher->stats();
  EXPECT_EQ(stats.batches, 1);
  EXPECT_EQ(stats.batch_size_counts[3], 1);
  EXPECT_EQ(stats.queue_nanos_sum, 3 * kMs);
}

TEST(DynamicBatcherTest, WithAnIdleInstanceRequestsRunWithoutWaiting) {
  // Two instances and a clock that stands still: a lone request must not wait for company while
  // the other instance is idle (wait_only_when_busy, the default) ...
  ManualClock clock;
  BatchingOptions options;
  options.instances = 2;
  options.max_queue_delay_micros = 1000;
  auto batcher = *DynamicBatcher::Create(Cnn28(), options, &clock);
  Collector collector;
  ASSERT_TRUE(batcher->Submit(Request(Images(1, 0), collector.Done(0))).ok());
  ASSERT_TRUE(collector.WaitFor(1));
  EXPECT_EQ(batcher->stats().queue_nanos_sum, 0);

  // ... and always waits the delay when told to.
  options.wait_only_when_busy = false;
  auto waiting = *DynamicBatcher::Create(Cnn28(), options, &clock);
  Collector later;
  ASSERT_TRUE(waiting->Submit(Request(Images(1, 1), later.Done(0))).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  EXPECT_EQ(later.total(), 0);
  clock.Advance(1 * kMs);
  ASSERT_TRUE(later.WaitFor(1));
}

TEST(DynamicBatcherTest, PreferredSizeRunsWithoutWaiting) {
  ManualClock clock;
  BatchingOptions options;
  options.preferred_batch_sizes = {4};
  auto batcher = *DynamicBatcher::Create(Cnn28(), options, &clock);
  Collector collector;
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(batcher->Submit(Request(Images(1, i), collector.Done(i))).ok());
  }
  ASSERT_TRUE(collector.WaitFor(4));  // the clock stands still: only a preferred size runs
  clock.Advance(1 * kMs);
  ASSERT_TRUE(collector.WaitFor(6));
  const BatcherStats stats = batcher->stats();
  EXPECT_EQ(stats.batch_size_counts[4], 1);
  EXPECT_EQ(stats.batch_size_counts[2], 1);
}

TEST(DynamicBatcherTest, ExpiredRequestsAreAnsweredButNeverComputed) {
  ManualClock clock(100 * kMs);
  BatchingOptions options;
  options.max_queue_delay_micros = 1000;
  auto batcher = *DynamicBatcher::Create(Cnn28(), options, &clock);
  Collector collector;
  // Request 0 expires while the batch waits; 1 has no deadline; 2 a distant one.
  ASSERT_TRUE(batcher->Submit(Request(Images(1, 0), collector.Done(0), 100 * kMs + kMs / 2)).ok());
  ASSERT_TRUE(batcher->Submit(Request(Images(1, 1), collector.Done(1))).ok());
  ASSERT_TRUE(batcher->Submit(Request(Images(1, 2), collector.Done(2), 200 * kMs)).ok());
  clock.Advance(1 * kMs);
  ASSERT_TRUE(collector.WaitFor(3));
  EXPECT_EQ(collector.result(0).status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(collector.result(1).ok());
  EXPECT_TRUE(collector.result(2).ok());

  // Already past: refused at once, `done` never called.
  SubmitResult late = batcher->Submit(Request(Images(1, 3), collector.Done(3), 50 * kMs));
  EXPECT_EQ(late.status.code(), StatusCode::kDeadlineExceeded);
  batcher->Drain();
  EXPECT_EQ(collector.calls(3), 0);

  const BatcherStats stats = batcher->stats();
  EXPECT_EQ(stats.expired, 1);
  EXPECT_EQ(stats.rejected_deadline, 1);
  EXPECT_EQ(stats.requests, 3);
  EXPECT_EQ(stats.completed, 2);
  EXPECT_EQ(stats.batches, 1);
  EXPECT_EQ(stats.samples, 2);  // the expired sample was not computed
  EXPECT_EQ(stats.batch_size_counts[2], 1);
}

TEST(DynamicBatcherTest, FullQueueIsRefusedAtOnceWithARetryHint) {
  BatchingOptions options;
  options.dynamic_batching = false;
  options.max_queue_size = 4;
  options.max_queue_delay_micros = 2000;
  auto batcher = *DynamicBatcher::Create(Cnn28(), options);
  // The first request's `done` holds the only worker, so the next ones stay queued.
  std::mutex mu;
  std::condition_variable cv;
  bool entered = false;
  bool release = false;
  Collector collector;
  auto blocking_done = [&](Result<std::vector<Tensor>> result) {
    std::unique_lock<std::mutex> lock(mu);
    entered = true;
    cv.notify_all();
    cv.wait(lock, [&] { return release; });
  };
  ASSERT_TRUE(batcher->Submit(Request(Images(1, 0), blocking_done)).ok());
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return entered; }));
  }
  for (int i = 1; i <= 4; ++i) {
    EXPECT_TRUE(batcher->CheckAdmission().ok());
    ASSERT_TRUE(batcher->Submit(Request(Images(1, i), collector.Done(i))).ok());
  }
  // The admission check answers what Submit() would, without a request.
  SubmitResult would = batcher->CheckAdmission();
  EXPECT_EQ(would.status.code(), StatusCode::kResourceExhausted);
  EXPECT_GE(would.retry_after_micros, 2000);
  EXPECT_THAT(std::string(would.status.message()), HasSubstr("queue full (4 requests)"));
  const auto start = std::chrono::steady_clock::now();
  SubmitResult refused = batcher->Submit(Request(Images(1, 5), collector.Done(5)));
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_LT(elapsed, std::chrono::milliseconds(5));
  EXPECT_EQ(refused.status.code(), StatusCode::kResourceExhausted);
  EXPECT_GE(refused.retry_after_micros, 2000);
  EXPECT_THAT(std::string(refused.status.message()),
              HasSubstr("retry after " + std::to_string(refused.retry_after_micros) + " us"));
  EXPECT_THAT(std::string(refused.status.message()), HasSubstr("queue full (4 requests)"));
  EXPECT_EQ(batcher->stats().queue_depth, 4);
  {
    std::lock_guard<std::mutex> lock(mu);
    release = true;
  }
  cv.notify_all();
  ASSERT_TRUE(collector.WaitFor(4));
  batcher->Drain();
  EXPECT_EQ(batcher->CheckAdmission().status.code(), StatusCode::kUnavailable);
  EXPECT_EQ(collector.calls(5), 0);
  const BatcherStats stats = batcher->stats();
  EXPECT_EQ(stats.rejected_queue_full, 2);
  EXPECT_EQ(stats.requests, 5);
  EXPECT_EQ(stats.completed, 5);
}

TEST(DynamicBatcherTest, InvalidInputsAreRefusedBeforeQueueing) {
  auto batcher = *DynamicBatcher::Create(Cnn28(), {});
  Collector collector;
  auto expect_invalid = [&](InferRequest request, const std::string& part) {
    SubmitResult r = batcher->Submit(std::move(request));
    EXPECT_EQ(r.status.code(), StatusCode::kInvalidArgument) << part;
    EXPECT_THAT(std::string(r.status.message()), HasSubstr(part));
  };
  InferRequest none;
  none.done = collector.Done(0);
  expect_invalid(std::move(none), "takes 1 inputs, the request has 0");
  expect_invalid(Request(*Tensor::Allocate(DType::kInt64, {1, 1, 28, 28}), collector.Done(1)),
                 "input 'image' has dtype int64, expected float32");
  expect_invalid(Request(Images(1, 1).Reshaped({1, 1, 14, 56}), collector.Done(2)),
                 "input 'image' has shape [1,1,14,56], expected [?,1,28,28]");
  expect_invalid(Request(*Tensor::Allocate(DType::kFloat32, {1, 28, 28}), collector.Done(3)),
                 "input 'image' has shape [1,28,28]");
  expect_invalid(Request(Images(9, 1), collector.Done(4)),
                 "input 'image' has 9 samples (dimension 0); must be in [1, max_batch_size 8]");
  expect_invalid(Request(Images(1, 1), nullptr), "no done callback");
  batcher->Drain();
  EXPECT_EQ(collector.total(), 0);
  const BatcherStats stats = batcher->stats();
  EXPECT_EQ(stats.rejected_invalid, 6);
  EXPECT_EQ(stats.requests, 0);
  EXPECT_EQ(stats.batches, 0);
}

TEST(DynamicBatcherTest, DrainFinishesQueuedWorkThenRefuses) {
  ManualClock clock;  // stands still: without Drain() the partial batch would wait forever
  BatchingOptions options;
  options.max_batch_size = 32;
  auto batcher = *DynamicBatcher::Create(Cnn28(), options, &clock);
  Collector collector;
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(batcher->Submit(Request(Images(1, i), collector.Done(i))).ok());
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(collector.total(), 0);
  batcher->Drain();
  EXPECT_EQ(collector.total(), 20);
  for (int i = 0; i < 20; ++i) EXPECT_TRUE(collector.result(i).ok());
  SubmitResult after = batcher->Submit(Request(Images(1, 20), collector.Done(20)));
  EXPECT_EQ(after.status.code(), StatusCode::kUnavailable);
  EXPECT_THAT(std::string(after.status.message()), HasSubstr("draining"));
  batcher->Drain();  // idempotent
  const BatcherStats stats = batcher->stats();
  EXPECT_EQ(stats.completed, 20);
  EXPECT_EQ(stats.rejected_draining, 1);
  EXPECT_EQ(collector.calls(20), 0);
}

TEST(DynamicBatcherTest, WithoutDynamicBatchingEachRequestRunsAlone) {
  BatchingOptions options;
  options.dynamic_batching = false;
  options.max_queue_delay_micros = 5000;
  auto batcher = *DynamicBatcher::Create(Cnn28(), options);
  EXPECT_FALSE(batcher->batches_requests());
  Collector collector;
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(batcher->Submit(Request(Images(1 + i % 2, i), collector.Done(i))).ok());
  }
  ASSERT_TRUE(collector.WaitFor(10));
  const BatcherStats stats = batcher->stats();
  EXPECT_EQ(stats.batches, 10);
  EXPECT_EQ(stats.batch_size_counts[1], 5);
  EXPECT_EQ(stats.batch_size_counts[2], 5);
  EXPECT_EQ(collector.result(1)->at(0).shape(), (Shape{2, 10}));
}

TEST(DynamicBatcherTest, FixedBatchDimensionRunsRequestsOneByOne) {
  runtime::Graph graph = testing::Cnn28Graph();
  graph.value(graph.FindValue("image")).shape = {1, 1, 28, 28};
  auto batcher = *DynamicBatcher::Create(*Model::FromGraph(std::move(graph)), {});
  EXPECT_FALSE(batcher->batches_requests());
  Collector collector;
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(batcher->Submit(Request(Images(1, i), collector.Done(i))).ok());
  }
  EXPECT_EQ(batcher->Submit(Request(Images(2, 9), collector.Done(9))).status.code(),
            StatusCode::kInvalidArgument);
  ASSERT_TRUE(collector.WaitFor(4));
  EXPECT_EQ(batcher->stats().batches, 4);
}

}  // namespace
}  // namespace hml::server

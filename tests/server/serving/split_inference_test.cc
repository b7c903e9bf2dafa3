// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The pieces of split inference on their own: input matching and dequantization, the tail model
// with a dynamic batch dimension, and the bounded per-version cache of tails. The repository-level
// behaviour (every cut point against the full model, errors, unload) is in
// model_repository_test.cc.
#include "src/server/serving/split_inference.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <vector>

#include "tests/testing/kernel_test_util.h"
#include "tests/testing/models.h"
#include "tests/testing/split_requests.h"

namespace hml::server {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::Make;

const TensorSpec kFloatSpec{"pool", DType::kFloat32, {-1, 3}};

Model TwoBranch() { return *Model::FromGraph(testing::TwoBranchCnnGraph()); }

std::string Message(const Status& status) { return std::string(status.message()); }

TEST(SplitInferenceTest, Int8AndUint8AreDequantizedWithScaleAndZeroPoint) {
  NamedTensor q{
      "pool", Make<int8_t>({1, 3}, {-128, 0, 127}), {{"scale", 0.5}, {"zero_point", int64_t{-2}}}};
  Result<Tensor> x = TensorForSpec(kFloatSpec, q, "model 'm'");
  ASSERT_TRUE(x.ok()) << x.status().ToString();
  EXPECT_EQ(x->dtype(), DType::kFloat32);
  EXPECT_EQ(x->shape(), (Shape{1, 3}));
  EXPECT_THAT(x->values<float>(), ElementsAre(-63.0f, 1.0f, 64.5f));

  // An integral scale is accepted (JSON writes 2.0 as 2).
  NamedTensor u{"pool",
                Make<uint8_t>({1, 3}, {0, 128, 255}),
                {{"scale", int64_t{2}}, {"zero_point", int64_t{128}}}};
  Result<Tensor> y = TensorForSpec(kFloatSpec, u, "model 'm'");
  ASSERT_TRUE(y.ok()) << y.status().ToString();
  EXPECT_THAT(y->values<float>(), ElementsAre(-256.0f, 0.0f, 254.0f));

  // Matching dtypes pass as they are.
  NamedTensor f{"pool", Make<float>({1, 3}, {1.0f, 2.0f, 3.0f})};
  Result<Tensor> z = TensorForSpec(kFloatSpec, f, "model 'm'");
  ASSERT_TRUE(z.ok());
  EXPECT_THAT(z->values<float>(), ElementsAre(1.0f, 2.0f, 3.0f));
}

TEST(SplitInferenceTest, BadQuantizationParametersNameTheInputAndTheParameter) {
  struct Case {
    DType dtype;
    V2Parameters parameters;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {DType::kInt8, {}, "no parameter 'scale'"},
      {DType::kInt8, {{"scale", 0.1}}, "no parameter 'zero_point'"},
      {DType::kInt8, {{"zero_point", int64_t{0}}}, "no parameter 'scale'"},
      {DType::kInt8, {{"scale", 0.0}, {"zero_point", int64_t{0}}}, "'scale' must be a finite"},
      {DType::kInt8, {{"scale", -1.0}, {"zero_point", int64_t{0}}}, "'scale' must be a finite"},
      {DType::kInt8,
       {{"scale", std::string("1")}, {"zero_point", int64_t{0}}},
       "'scale' must be a number"},
      {DType::kInt8,
       {{"scale", 0.1}, {"zero_point", int64_t{128}}},
       "'zero_point' must be an integer in [-128, 127]"},
      {DType::kUInt8,
       {{"scale", 0.1}, {"zero_point", int64_t{-1}}},
       "'zero_point' must be an integer in [0, 255]"},
      {DType::kInt8, {{"scale", 0.1}, {"zero_point", 0.5}}, "'zero_point' must be an integer"},
      {DType::kInt32, {}, "has datatype INT32, expected FP32"},
      {DType::kFloat32, {{"scale", 0.1}}, "like the tensor it feeds but has 'scale'"},
  };
  for (const Case& c : cases) {
    NamedTensor input{"pool", *Tensor::Allocate(c.dtype, {1, 3}), c.parameters};
    Result<Tensor> x = TensorForSpec(kFloatSpec, input, "model 'm'");
    ASSERT_FALSE(x.ok()) << c.expected;
    EXPECT_EQ(x.status().code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(Message(x.status()), HasSubstr("model 'm': input 'pool'"));
    EXPECT_THAT(Message(x.status()), HasSubstr(c.expected));
  }
}

TEST(SplitInferenceTest, InputsAreMatchedByName) {
  const std::vector<TensorSpec> specs = {{"a", DType::kFloat32, {-1, 1}},
                                         {"b", DType::kFloat32, {-1, 1}}};
  std::vector<NamedTensor> inputs;
  inputs.push_back({"b", Make<float>({1, 1}, {2.0f})});
  inputs.push_back({"a", Make<float>({1, 1}, {1.0f})});
  Result<std::vector<Tensor>> ordered = InputsInSpecOrder("model 'm'", specs, inputs);
  ASSERT_TRUE(ordered.ok());
  EXPECT_EQ((*ordered)[0].values<float>()[0], 1.0f);
  EXPECT_EQ((*ordered)[1].values<float>()[0], 2.0f);

  std::vector<NamedTensor> missing;
  missing.push_back({"a", Make<float>({1, 1}, {1.0f})});
  EXPECT_THAT(Message(InputsInSpecOrder("model 'm'", specs, missing).status()),
              HasSubstr("model 'm': input 'b' is missing"));
  std::vector<NamedTensor> extra;
  extra.push_back({"a", Make<float>({1, 1}, {1.0f})});
  extra.push_back({"b", Make<float>({1, 1}, {1.0f})});
  extra.push_back({"c", Make<float>({1, 1}, {1.0f})});
  EXPECT_THAT(Message(InputsInSpecOrder("model 'm'", specs, extra).status()),
              HasSubstr("model 'm' has no input 'c'"));
  std::vector<NamedTensor> twice;
  twice.push_back({"a", Make<float>({1, 1}, {1.0f})});
  twice.push_back({"a", Make<float>({1, 1}, {1.0f})});
  EXPECT_THAT(Message(InputsInSpecOrder("model 'm'", specs, twice).status()),
              HasSubstr("input 'a' appears twice"));
}

TEST(SplitInferenceTest, TailModelsHaveADynamicBatchDimension) {
  const Model model = TwoBranch();
  Result<Model> tail = MakeTailModel(model, {"rb", "ra"});
  ASSERT_TRUE(tail.ok()) << tail.status().ToString();
  const std::vector<TensorSpec> inputs = tail->inputs();
  ASSERT_EQ(inputs.size(), 2u);
  EXPECT_EQ(inputs[0].name, "rb");
  EXPECT_EQ(inputs[0].shape, (Shape{-1, 4, 28, 28}));
  EXPECT_EQ(inputs[1].shape, (Shape{-1, 4, 28, 28}));
  EXPECT_EQ(inputs[1].dtype, DType::kFloat32);
  ASSERT_EQ(tail->outputs().size(), 1u);
  EXPECT_EQ(tail->outputs()[0].name, "probs");

  Result<Model> flat = MakeTailModel(model, {"flat"});
  ASSERT_TRUE(flat.ok());
  EXPECT_EQ(flat->inputs()[0].shape, (Shape{-1, 1568}));

  Result<Model> incomplete = MakeTailModel(model, {"ra"});
  EXPECT_EQ(incomplete.status().code(), StatusCode::kInvalidArgument);
}

// Submits `count` split requests at `cut` to the acquired tail; `answered` counts the answers.
void SubmitTo(SplitTails::Acquired& acquired, const Model& model, int count,
              std::atomic<int>* answered) {
  const Tensor images = testing::RandomTensor({1, 1, 28, 28}, 5, 1.0f);
  const std::vector<NamedTensor> head = testing::HeadTensors(model, acquired.tail->cut, images);
  for (int i = 0; i < count; ++i) {
    std::vector<NamedTensor> named;
    for (const NamedTensor& t : head) named.push_back({t.name, *t.tensor.Clone()});
    Result<std::vector<Tensor>> inputs = InputsInSpecOrder("tail", acquired.tail->inputs, named);
    ASSERT_TRUE(inputs.ok()) << inputs.status().ToString();
    InferRequest request;
    request.inputs = std::move(*inputs);
    request.done = [answered](Result<std::vector<Tensor>> out) {
      if (out.ok()) ++*answered;
    };
    ASSERT_TRUE(acquired.tail->batcher->Submit(std::move(request)).ok());
  }
}

TEST(SplitInferenceTest, TailsAreBoundedAndTheLeastRecentlyUsedIsEvictedAndDrained) {
  const Model model = TwoBranch();
  BatchingOptions batching;
  batching.max_queue_size = 64;
  SplitTails tails(model, "model 'm' version 1", batching, RealClock(), 2, nullptr);

  Result<SplitTails::Acquired> pool = tails.Acquire({"pool"});
  ASSERT_TRUE(pool.ok()) << pool.status().ToString();
  EXPECT_EQ(pool->evicted, nullptr);
  std::atomic<int> pool_answered{0};
  SubmitTo(*pool, model, 20, &pool_answered);
  SplitTails::Tail* pool_tail = pool->tail.get();
  pool->submit_lock.unlock();

  Result<SplitTails::Acquired> flat = tails.Acquire({"flat"});
  ASSERT_TRUE(flat.ok());
  flat->submit_lock.unlock();
  // The same cut in another order is the same tail, and now the most recently used.
  Result<SplitTails::Acquired> again = tails.Acquire({"pool"});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->tail.get(), pool_tail);
  again->submit_lock.unlock();
  EXPECT_EQ(tails.Cuts(), (std::vector<std::vector<std::string>>{{"flat"}, {"pool"}}));

  // A third cut evicts the least recently used ("flat").
  Result<SplitTails::Acquired> two = tails.Acquire({"rb", "ra"});
  ASSERT_TRUE(two.ok()) << two.status().ToString();
  ASSERT_NE(two->evicted, nullptr);
  EXPECT_EQ(two->evicted->cut, (std::vector<std::string>{"flat"}));
  two->submit_lock.unlock();
  tails.Retire(std::move(two->evicted));
  EXPECT_EQ(tails.Cuts(), (std::vector<std::vector<std::string>>{{"pool"}, {"ra", "rb"}}));
  EXPECT_EQ(tails.evictions(), 1);

  // Evicting "pool", which has requests queued: Retire() returns once all of them are answered.
  Result<SplitTails::Acquired> touch = tails.Acquire({"ra", "rb"});
  ASSERT_TRUE(touch.ok());
  touch->submit_lock.unlock();
  Result<SplitTails::Acquired> next = tails.Acquire({"logits"});
  ASSERT_TRUE(next.ok());
  ASSERT_NE(next->evicted, nullptr);
  EXPECT_EQ(next->evicted.get(), pool_tail);
  next->submit_lock.unlock();
  std::shared_ptr<SplitTails::Tail> evicted = next->evicted;
  tails.Retire(std::move(next->evicted));
  EXPECT_EQ(pool_answered.load(), 20);
  InferRequest late;
  late.done = [](Result<std::vector<Tensor>>) {};
  EXPECT_EQ(evicted->batcher->Submit(std::move(late)).status.code(), StatusCode::kUnavailable);
  EXPECT_EQ(tails.evictions(), 2);
}

TEST(SplitInferenceTest, BadCutsNameTheMissingTensorAndAreNotKept) {
  SplitTails tails(TwoBranch(), "model 'm' version 1", {}, RealClock(), 4, nullptr);
  Result<SplitTails::Acquired> half = tails.Acquire({"ra"});
  ASSERT_FALSE(half.ok());
  EXPECT_EQ(half.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(half.status()),
              HasSubstr("model 'm' version 1: the inputs [ra] are neither the model's inputs "
                        "[image] nor a complete cut through it: missing"));
  EXPECT_THAT(Message(half.status()), HasSubstr("'rb' of the cut [ra, rb]"));
  Result<SplitTails::Acquired> unknown = tails.Acquire({"pool", "nope"});
  EXPECT_EQ(unknown.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(unknown.status()), HasSubstr("'nope' is not a tensor of the model"));
  Result<SplitTails::Acquired> constant = tails.Acquire({"fc.w"});
  EXPECT_THAT(Message(constant.status()), HasSubstr("'fc.w' is a constant"));
  EXPECT_TRUE(tails.Cuts().empty());

  // The model's output itself is a (trivial) cut: the tail passes it through.
  Result<SplitTails::Acquired> output = tails.Acquire({"probs"});
  ASSERT_TRUE(output.ok()) << output.status().ToString();
  std::atomic<int> answered{0};
  SubmitTo(*output, TwoBranch(), 1, &answered);
  output->submit_lock.unlock();
  tails.DrainAll();
  EXPECT_EQ(answered.load(), 1);

  SplitTails disabled(TwoBranch(), "model 'm' version 1", {}, RealClock(), 0, nullptr);
  EXPECT_THAT(Message(disabled.Acquire({"pool"}).status()), HasSubstr("disabled"));
}

}  // namespace
}  // namespace hml::server

// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The gRPC front end with a real server on 127.0.0.1:0 and a real GRPCInferenceService::Stub:
// health and metadata, ModelInfer round trips equal a Session run (raw and typed contents),
// errors map to the right codes, overload gets RESOURCE_EXHAUSTED with `retry-after-ms`, work
// whose client deadline passes in the queue is never computed, concurrent calls are all answered,
// and a graceful shutdown finishes in-flight calls.
//
// The backend is testing::FakeCnnBackend: one DynamicBatcher on the 28x28 CNN, served as "cnn28"
// version 3, with a gate that holds answers so the test controls what is queued and computed;
// the split-inference round trip runs over a real ModelRepository.
#include "src/server/grpc/grpc_server.h"

#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "hml/runtime/session.h"
#include "proto/inference.grpc.pb.h"
#include "proto/inference.pb.h"
#include "src/server/protocol/v2_grpc_codec.h"
#include "src/server/serving/batcher.h"
#include "src/server/serving/model_repository.h"
#include "tests/testing/models.h"
#include "tests/testing/serving_fakes.h"
#include "tests/testing/split_requests.h"

namespace hml::server {
namespace {

using ::testing::HasSubstr;

constexpr const char* kModel = testing::kFakeCnnModel;
constexpr int64_t kVersion = testing::kFakeCnnVersion;

Model Cnn28() { return *Model::FromGraph(testing::Cnn28Graph()); }

Tensor Images(int64_t samples, uint64_t seed) {
  return testing::RandomTensor({samples, 1, 28, 28}, seed, 1.0f);
}

using FakeBackend = testing::FakeCnnBackend;

// One backend, server and client stub per test.
class GrpcServerTest : public ::testing::Test {
 protected:
  void StartServer(const BatchingOptions& options) {
    backend_ = std::make_unique<FakeBackend>(options);
    server_ = std::make_unique<GrpcServer>(backend_.get());
    Result<int> port = server_->Start("127.0.0.1:0");
    ASSERT_TRUE(port.ok()) << port.status().ToString();
    ASSERT_GT(*port, 0);
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(*port),
                                   grpc::InsecureChannelCredentials());
    stub_ = inference::GRPCInferenceService::NewStub(channel_);
  }

  void TearDown() override {
    if (backend_ != nullptr) backend_->OpenGate();
    server_.reset();
    backend_.reset();
  }

  // A ModelInferRequest for `model` with `images` as its input.
  static inference::ModelInferRequest InferMessage(
      const Tensor& images, V2TensorEncoding encoding = V2TensorEncoding::kRaw,
      const std::string& model = kModel) {
    V2InferRequest request;
    request.model_name = model;
    request.id = "req-1";
    request.inputs.push_back({"image", *images.Clone()});
    inference::ModelInferRequest message;
    Status status = EncodeModelInferRequest(request, encoding, &message);
    EXPECT_TRUE(status.ok()) << status.ToString();
    return message;
  }

  // Runs one ModelInfer with a client deadline of `deadline_ms`. Every call has a deadline so
  // that a failed assertion cannot leave a client thread waiting forever on a closed gate.
  grpc::Status Infer(const inference::ModelInferRequest& message,
                     inference::ModelInferResponse* response, int64_t deadline_ms = 20'000,
                     std::string* retry_after = nullptr) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(deadline_ms));
    grpc::Status status = stub_->ModelInfer(&context, message, response);
    if (retry_after != nullptr) {
      auto it = context.GetServerTrailingMetadata().find("retry-after-ms");
      if (it != context.GetServerTrailingMetadata().end()) {
        *retry_after = std::string(it->second.data(), it->second.size());
      }
    }
    return status;
  }

  std::unique_ptr<FakeBackend> backend_;
  std::unique_ptr<GrpcServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<inference::GRPCInferenceService::Stub> stub_;
};

// What a Session computes for `images` alone.
std::vector<float> SessionProbs(const Tensor& images) {
  SessionOptions options;
  options.input_shapes["image"] = images.shape();
  std::unique_ptr<Session> session = std::move(*Session::Create(Cnn28(), options));
  Result<std::vector<Tensor>> outputs = session->Run(std::span<const Tensor>(&images, 1));
  EXPECT_TRUE(outputs.ok()) << outputs.status().ToString();
  std::span<const float> values = (*outputs)[0].values<float>();
  return std::vector<float>(values.begin(), values.end());
}

void ExpectProbs(const inference::ModelInferResponse& response, const Tensor& images) {
  Result<V2InferResponse> decoded = DecodeModelInferResponse(response);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->model_name, kModel);
  EXPECT_EQ(decoded->model_version, std::to_string(kVersion));
  ASSERT_EQ(decoded->outputs.size(), 1u);
  EXPECT_EQ(decoded->outputs[0].name, "probs");
  ASSERT_EQ(decoded->outputs[0].tensor.shape(), (Shape{images.dim(0), 10}));
  std::vector<float> want = SessionProbs(images);
  std::span<const float> got = decoded->outputs[0].tensor.values<float>();
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-6f) << "at " << i;
}

BatchingOptions DefaultBatching() {
  BatchingOptions options;
  options.max_queue_delay_micros = 500;
  return options;
}

// One instance, batches of one, a queue of one: with the gate closed, one request is computed
// and held, one waits in the queue, and the next is refused.
BatchingOptions TinyQueue() {
  BatchingOptions options;
  options.max_batch_size = 1;
  options.max_queue_size = 1;
  options.max_queue_delay_micros = 0;
  return options;
}

TEST_F(GrpcServerTest, HealthAndServerMetadata) {
  StartServer(DefaultBatching());
  grpc::ClientContext live_context;
  inference::ServerLiveResponse live;
  ASSERT_TRUE(stub_->ServerLive(&live_context, {}, &live).ok());
  EXPECT_TRUE(live.live());

  grpc::ClientContext ready_context;
  inference::ServerReadyResponse ready;
  ASSERT_TRUE(stub_->ServerReady(&ready_context, {}, &ready).ok());
  EXPECT_TRUE(ready.ready());

  grpc::ClientContext metadata_context;
  inference::ServerMetadataResponse metadata;
  ASSERT_TRUE(stub_->ServerMetadata(&metadata_context, {}, &metadata).ok());
  EXPECT_EQ(metadata.name(), "hybridml");
  EXPECT_FALSE(metadata.version().empty());
}

TEST_F(GrpcServerTest, ModelReadyAndMetadata) {
  StartServer(DefaultBatching());
  for (const auto& [name, version, want] : std::vector<std::tuple<std::string, std::string, bool>>{
           {kModel, "", true}, {kModel, "3", true}, {kModel, "4", false}, {"nope", "", false}}) {
    grpc::ClientContext context;
    inference::ModelReadyRequest request;
    request.set_name(name);
    request.set_version(version);
    inference::ModelReadyResponse response;
    ASSERT_TRUE(stub_->ModelReady(&context, request, &response).ok());
    EXPECT_EQ(response.ready(), want) << name << " version '" << version << "'";
  }

  grpc::ClientContext context;
  inference::ModelMetadataRequest request;
  request.set_name(kModel);
  inference::ModelMetadataResponse metadata;
  grpc::Status status = stub_->ModelMetadata(&context, request, &metadata);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(metadata.name(), kModel);
  ASSERT_EQ(metadata.versions_size(), 1);
  EXPECT_EQ(metadata.versions(0), "3");
  EXPECT_EQ(metadata.platform(), "hybridml_onnx");
  ASSERT_EQ(metadata.inputs_size(), 1);
  EXPECT_EQ(metadata.inputs(0).name(), "image");
  EXPECT_EQ(metadata.inputs(0).datatype(), "FP32");
  EXPECT_THAT(metadata.inputs(0).shape(), ::testing::ElementsAre(-1, 1, 28, 28));
  ASSERT_EQ(metadata.outputs_size(), 1);
  EXPECT_EQ(metadata.outputs(0).name(), "probs");
  EXPECT_EQ(metadata.outputs(0).datatype(), "FP32");

  grpc::ClientContext missing_context;
  request.set_name("nope");
  status = stub_->ModelMetadata(&missing_context, request, &metadata);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(status.error_message(), HasSubstr("nope"));
}

TEST_F(GrpcServerTest, ModelInferRawEqualsSession) {
  StartServer(DefaultBatching());
  Tensor images = Images(2, 7);
  inference::ModelInferResponse response;
  grpc::Status status = Infer(InferMessage(images, V2TensorEncoding::kRaw), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.id(), "req-1");
  ExpectProbs(response, images);
}

TEST_F(GrpcServerTest, ModelInferTypedEqualsSession) {
  StartServer(DefaultBatching());
  Tensor images = Images(3, 8);
  inference::ModelInferResponse response;
  grpc::Status status = Infer(InferMessage(images, V2TensorEncoding::kTyped), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ExpectProbs(response, images);
}

TEST_F(GrpcServerTest, UnknownModelIsNotFound) {
  StartServer(DefaultBatching());
  inference::ModelInferResponse response;
  grpc::Status status =
      Infer(InferMessage(Images(1, 1), V2TensorEncoding::kRaw, "nope"), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(status.error_message(), HasSubstr("'nope'"));

  inference::ModelInferRequest message = InferMessage(Images(1, 1));
  message.set_model_version("9");
  status = Infer(message, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(GrpcServerTest, BadInputIsInvalidArgument) {
  StartServer(DefaultBatching());
  inference::ModelInferResponse response;
  // 27x27 images do not fit the model's [N,1,28,28].
  grpc::Status status =
      Infer(InferMessage(testing::RandomTensor({1, 1, 27, 27}, 3, 1.0f)), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("image"));

  inference::ModelInferRequest renamed = InferMessage(Images(1, 1));
  renamed.mutable_inputs(0)->set_name("picture");
  status = Infer(renamed, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("'image' is missing"));

  inference::ModelInferRequest bad_output = InferMessage(Images(1, 1));
  bad_output.add_outputs()->set_name("logits2");
  status = Infer(bad_output, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("no output 'logits2'"));

  inference::ModelInferRequest bad_version = InferMessage(Images(1, 1));
  bad_version.set_model_version("latest");
  status = Infer(bad_version, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  // Ill-formed raw contents: 4 bytes for a 784-element tensor.
  inference::ModelInferRequest short_raw = InferMessage(Images(1, 1));
  short_raw.set_raw_input_contents(0, std::string(4, '\0'));
  status = Infer(short_raw, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(backend_->batcher().stats().batches, 0);
}

TEST_F(GrpcServerTest, OversizeMessageIsRefusedBeforeReading) {
  backend_ = std::make_unique<FakeBackend>(DefaultBatching());
  GrpcServerOptions options;
  options.max_receive_message_bytes = 1024;
  server_ = std::make_unique<GrpcServer>(backend_.get(), options);
  Result<int> port = server_->Start("127.0.0.1:0");
  ASSERT_TRUE(port.ok()) << port.status().ToString();
  stub_ = inference::GRPCInferenceService::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string(*port), grpc::InsecureChannelCredentials()));
  inference::ModelInferResponse response;
  grpc::Status status = Infer(InferMessage(Images(1, 1)), &response);  // ~3 KiB
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(backend_->batcher().stats().requests, 0);
}

TEST_F(GrpcServerTest, OverloadIsResourceExhaustedWithRetryAfter) {
  StartServer(TinyQueue());
  backend_->CloseGate();
  Tensor images = Images(1, 5);
  inference::ModelInferRequest message = InferMessage(images);
  grpc::Status held_status, queued_status;
  inference::ModelInferResponse held_response, queued_response;
  std::jthread held([&] { held_status = Infer(message, &held_response); });
  ASSERT_TRUE(backend_->WaitForStats([](const BatcherStats& s) { return s.batches == 1; }));
  std::jthread queued([&] { queued_status = Infer(message, &queued_response); });
  ASSERT_TRUE(backend_->WaitForStats([](const BatcherStats& s) { return s.queue_depth == 1; }));

  inference::ModelInferResponse response;
  std::string retry_after;
  grpc::Status status = Infer(message, &response, 20'000, &retry_after);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  ASSERT_FALSE(retry_after.empty());
  EXPECT_GE(std::stoll(retry_after), 1);
  // Refused before its tensors are decoded: a malformed request is answered as overload too.
  inference::ModelInferRequest malformed = message;
  malformed.mutable_raw_input_contents(0)->resize(3);
  status = Infer(malformed, &response, 20'000, &retry_after);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();

  backend_->OpenGate();
  held.join();
  queued.join();
  ASSERT_TRUE(held_status.ok()) << held_status.error_message();
  ASSERT_TRUE(queued_status.ok()) << queued_status.error_message();
  ExpectProbs(held_response, images);
  ExpectProbs(queued_response, images);
  EXPECT_EQ(backend_->batcher().stats().rejected_queue_full, 2);
}

TEST_F(GrpcServerTest, ClientDeadlinePassedInQueueIsNotComputed) {
  StartServer(TinyQueue());
  backend_->CloseGate();
  inference::ModelInferRequest message = InferMessage(Images(1, 6));
  grpc::Status held_status;
  inference::ModelInferResponse held_response;
  std::jthread held([&] { held_status = Infer(message, &held_response); });
  ASSERT_TRUE(backend_->WaitForStats([](const BatcherStats& s) { return s.batches == 1; }));

  // Waits in the queue behind the held batch for longer than its 200 ms deadline.
  inference::ModelInferResponse response;
  grpc::Status status = Infer(message, &response, 200);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_EQ(backend_->batcher().stats().requests, 2);
  // gRPC sends the deadline as a timeout, so the server's copy ends a little after the client's
  // (by the transport latency): wait until it has surely passed before the worker frees up.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));

  backend_->OpenGate();
  held.join();
  EXPECT_TRUE(held_status.ok()) << held_status.error_message();
  ASSERT_TRUE(backend_->WaitForStats([](const BatcherStats& s) { return s.expired == 1; }));
  EXPECT_EQ(backend_->batcher().stats().batches, 1);
  EXPECT_EQ(backend_->batcher().stats().completed, 1);
}

// A call the client cancels while it waits in the queue is still answered by the batcher and
// finished on the server, so nothing is left behind: Shutdown() returns at once afterwards.
TEST_F(GrpcServerTest, CancelledCallDoesNotLeak) {
  StartServer(TinyQueue());
  backend_->CloseGate();
  inference::ModelInferRequest message = InferMessage(Images(1, 4));
  grpc::Status held_status;
  inference::ModelInferResponse held_response;
  std::jthread held([&] { held_status = Infer(message, &held_response); });
  ASSERT_TRUE(backend_->WaitForStats([](const BatcherStats& s) { return s.batches == 1; }));

  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  grpc::Status cancelled_status;
  inference::ModelInferResponse cancelled_response;
  std::jthread cancelled(
      [&] { cancelled_status = stub_->ModelInfer(&context, message, &cancelled_response); });
  ASSERT_TRUE(backend_->WaitForStats([](const BatcherStats& s) { return s.queue_depth == 1; }));
  context.TryCancel();
  cancelled.join();
  EXPECT_EQ(cancelled_status.error_code(), grpc::StatusCode::CANCELLED);

  backend_->OpenGate();
  held.join();
  EXPECT_TRUE(held_status.ok()) << held_status.error_message();
  ASSERT_TRUE(backend_->WaitForStats([](const BatcherStats& s) { return s.completed == 2; }));
  const auto start = std::chrono::steady_clock::now();
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(20));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST_F(GrpcServerTest, ConcurrentCallsAreAllAnswered) {
  StartServer(DefaultBatching());
  constexpr int kThreads = 4;
  constexpr int kCalls = 50;
  std::vector<Tensor> images;
  for (int i = 0; i < kCalls; ++i) images.push_back(Images(1 + i % 3, 200 + i));
  std::vector<grpc::Status> statuses(kCalls);
  std::vector<inference::ModelInferResponse> responses(kCalls);
  std::atomic<int> next{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = next++; i < kCalls; i = next++) {
        statuses[i] = Infer(InferMessage(images[i]), &responses[i], 10'000);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int i = 0; i < kCalls; ++i) {
    ASSERT_TRUE(statuses[i].ok()) << "call " << i << ": " << statuses[i].error_message();
    ExpectProbs(responses[i], images[i]);
  }
  EXPECT_EQ(backend_->batcher().stats().completed, kCalls);
}

TEST_F(GrpcServerTest, GracefulShutdownCompletesInFlightCalls) {
  StartServer(TinyQueue());
  backend_->CloseGate();
  Tensor images = Images(1, 9);
  grpc::Status held_status;
  inference::ModelInferResponse held_response;
  std::jthread held([&] { held_status = Infer(InferMessage(images), &held_response); });
  ASSERT_TRUE(backend_->WaitForStats([](const BatcherStats& s) { return s.batches == 1; }));

  std::atomic<bool> shut_down{false};
  std::jthread shutdown([&] {
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(20));
    shut_down = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(shut_down) << "Shutdown returned while a call was in flight";
  backend_->OpenGate();
  shutdown.join();
  held.join();
  ASSERT_TRUE(held_status.ok()) << held_status.error_message();
  ExpectProbs(held_response, images);

  // No new calls after shutdown.
  inference::ModelInferResponse response;
  grpc::Status status = Infer(InferMessage(images), &response, 2000);
  EXPECT_FALSE(status.ok());
}

TEST_F(GrpcServerTest, StartFailsOnBadAddressAndTwice) {
  StartServer(DefaultBatching());
  Result<int> again = server_->Start("127.0.0.1:0");
  EXPECT_EQ(again.status().code(), StatusCode::kFailedPrecondition);

  GrpcServer bad(backend_.get());
  Result<int> port = bad.Start("256.1.1.1:99999");
  EXPECT_EQ(port.status().code(), StatusCode::kUnavailable);
  EXPECT_THAT(port.status().message(), HasSubstr("256.1.1.1:99999"));

  GrpcServerOptions options;
  options.max_receive_message_bytes = 0;
  GrpcServer invalid(backend_.get(), options);
  EXPECT_EQ(invalid.Start("127.0.0.1:0").status().code(), StatusCode::kInvalidArgument);
}

// A split request through the gRPC front end and a real repository: the tensors of the cut
// {ra, rb} of the two-branch CNN, one as FP32 and one as INT8 with its scale and zero point in
// InferInputTensor.parameters, give what the tail computes in process.
TEST(GrpcSplitInferenceTest, SplitRequestRoundTripsThroughARepository) {
  const Model model = *Model::FromGraph(testing::TwoBranchCnnGraph());
  ModelRepository repo;
  ASSERT_TRUE(repo.LoadModel("split", 2, model).ok());
  GrpcServer server(&repo);
  Result<int> port = server.Start("127.0.0.1:0");
  ASSERT_TRUE(port.ok()) << port.status().ToString();
  auto stub = inference::GRPCInferenceService::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string(*port), grpc::InsecureChannelCredentials()));

  const Tensor images = testing::RandomTensor({2, 1, 28, 28}, 71, 1.0f);
  std::vector<NamedTensor> cut = testing::HeadTensors(model, {"ra", "rb"}, images);
  ASSERT_EQ(cut.size(), 2u);
  V2InferRequest request;
  request.model_name = "split";
  request.inputs.push_back({"rb", *cut[1].tensor.Clone()});
  request.inputs.push_back(testing::QuantizeInt8(cut[0]));  // "ra" as INT8
  std::vector<NamedTensor> expected_inputs;
  expected_inputs.push_back({"rb", *cut[1].tensor.Clone()});
  expected_inputs.push_back(testing::DequantizeInt8(request.inputs[1]));
  const std::vector<Tensor> want = testing::RunInProcess(
      *model.Slice(std::vector<std::string>{"ra", "rb"}, {}, {{"image", images.shape()}}),
      expected_inputs);
  ASSERT_EQ(want.size(), 1u);

  inference::ModelInferRequest message;
  ASSERT_TRUE(EncodeModelInferRequest(request, V2TensorEncoding::kRaw, &message).ok());
  inference::ModelInferResponse response;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  grpc::Status status = stub->ModelInfer(&context, message, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  Result<V2InferResponse> decoded = DecodeModelInferResponse(response);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->model_version, "2");
  ASSERT_EQ(decoded->outputs.size(), 1u);
  EXPECT_EQ(decoded->outputs[0].name, "probs");
  ASSERT_EQ(decoded->outputs[0].tensor.shape(), (Shape{2, 10}));
  std::span<const float> got = decoded->outputs[0].tensor.values<float>();
  std::span<const float> w = want[0].values<float>();
  for (size_t i = 0; i < w.size(); ++i) EXPECT_NEAR(got[i], w[i], 1e-5f) << i;

  // Half of the cut: INVALID_ARGUMENT naming the missing tensor.
  request.inputs.pop_back();
  ASSERT_TRUE(EncodeModelInferRequest(request, V2TensorEncoding::kTyped, &message).ok());
  grpc::ClientContext bad_context;
  bad_context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  status = stub->ModelInfer(&bad_context, message, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("'ra' of the cut [ra, rb]"));
  server.Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
}

}  // namespace
}  // namespace hml::server

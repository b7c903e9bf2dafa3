// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The device's gRPC transport against a real in-process `hybridml serve` front end: a GrpcServer
// on 127.0.0.1:0 serving the v2 inference service over testing::FakeCnnBackend and the device
// services (DeviceServices over a real auth.db, an IngestStore and a TelemetryAggregator). The
// device enrolls with EnrollDevice() and then calls through GrpcTransport. Checked: an Infer round
// trip equals a local Session run, the answer's version, byte counts equal to the messages'
// ByteSizeLong; the error codes of an unknown model, a missing or revoked credential, a deadline
// shorter than the (gated, so slow) model (and the forwarded deadline expiring the work in the
// server's queue), Cancel(), a server that is not listening, a handshake that never completes
// (connect timeout), an oversized request; Upload stored once across a retry and a bad key
// refused on the device; telemetry reaching the server's aggregator (and refused by it); the
// destructor cancelling pending calls; concurrent calls and cancels; the Router falling back
// locally when the server goes; a split request with an INT8 cut tensor; TLS and mutual TLS with
// the dev certificates of src/server/tls. The federated-learning calls against FederatedTasks
// over a real registry: join, a round, updates sealed with fl::EncodeUpdate accepted, the tick
// publishing the next version; a late update not accepted; their errors (credentials, unknown
// task, undecodable, refused on the device) and a server without tasks.
#include "src/sdk/grpc/grpc_transport.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "hml/c/hml_grpc.h"
#include "hml/runtime/session.h"
#include "proto/hybridml_device.pb.h"
#include "proto/inference.grpc.pb.h"
#include "src/fl/secure_round.h"
#include "src/protocol/v2_grpc_codec.h"
#include "src/sdk/grpc/wire.h"
#include "src/sdk/router.h"
#include "src/server/grpc/device_services.h"
#include "src/server/grpc/grpc_server.h"
#include "src/server/ingest/ingest_store.h"
#include "src/server/metrics/metrics.h"
#include "src/server/serving/model_repository.h"
#include "src/server/telemetry/telemetry_aggregator.h"
#include "src/server/tls/certs.h"
#include "tests/testing/auth_fixture.h"
#include "tests/testing/federated_fixture.h"
#include "tests/testing/models.h"
#include "tests/testing/serving_fakes.h"
#include "tests/testing/split_requests.h"

namespace hml::sdk {
namespace {

using ::testing::HasSubstr;
constexpr int64_t kMillis = 1'000'000;

// Collects the callback of one call: its result, stats, how often it ran and on which thread.
template <typename Answer>
class Waiter {
 public:
  std::function<void(Result<Answer>, const CallStats&)> Callback() {
    return [this](Result<Answer> result, const CallStats& stats) {
      std::lock_guard<std::mutex> lock(mu_);
      result_ = std::make_unique<Result<Answer>>(std::move(result));
      stats_ = stats;
      thread_ = std::this_thread::get_id();
      ++calls_;
      cv_.notify_all();
    };
  }
  // Waits (up to 20 s) for the callback; the result, or kUnknown when it never came.
  Result<Answer>& Await() {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_for(lock, std::chrono::seconds(20), [&] { return calls_ > 0; })) {
      result_ = std::make_unique<Result<Answer>>(UnknownError("the callback never ran"));
    }
    return *result_;
  }
  int calls() {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }
  CallStats stats() {
    std::lock_guard<std::mutex> lock(mu_);
    return stats_;
  }
  std::thread::id thread() {
    std::lock_guard<std::mutex> lock(mu_);
    return thread_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::unique_ptr<Result<Answer>> result_;
  CallStats stats_;
  std::thread::id thread_;
  int calls_ = 0;
};

// A loopback port nothing listens on: bound, read and closed again.
int UnusedPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof(address);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    ::close(fd);
    return 0;
  }
  ::close(fd);
  return ntohs(address.sin_port);
}

// One image batch of the test CNN.
InferCall CnnCall(int64_t batch, uint64_t seed) {
  InferCall call;
  call.model = testing::kFakeCnnModel;
  call.inputs.push_back({"image", testing::RandomTensor({batch, 1, 28, 28}, seed, 1.0f)});
  return call;
}

// The size of the ModelInferRequest the transport must send for `call`.
int64_t RequestBytes(const InferCall& call) {
  protocol::V2InferRequest request;
  request.model_name = call.model;
  if (call.version != 0) request.model_version = std::to_string(call.version);
  for (const NamedTensor& t : call.inputs) {
    request.inputs.push_back({t.name, *t.tensor.Clone(), t.parameters});
  }
  inference::ModelInferRequest message;
  EXPECT_TRUE(
      protocol::EncodeModelInferRequest(request, protocol::V2TensorEncoding::kRaw, &message).ok());
  return static_cast<int64_t>(message.ByteSizeLong());
}

// What a local Session computes for `images`.
std::vector<float> LocalProbs(const Tensor& images) {
  SessionOptions options;
  options.input_shapes["image"] = images.shape();
  const Model model = *Model::FromGraph(testing::Cnn28Graph());
  std::unique_ptr<Session> session = std::move(*Session::Create(model, options));
  Result<std::vector<Tensor>> outputs = session->Run(std::span<const Tensor>(&images, 1));
  EXPECT_TRUE(outputs.ok()) << outputs.status().ToString();
  std::span<const float> values = (*outputs)[0].values<float>();
  return std::vector<float>(values.begin(), values.end());
}

class GrpcTransportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fixture_.Create("grpc_transport_test");
    ASSERT_FALSE(HasFatalFailure());
    std::filesystem::create_directories(fixture_.dir + "/repo");
    auto store = server::IngestStore::Open(fixture_.dir + "/ingest.db");
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    ingest_ = std::move(*store);
    server::MetricsRegistryOptions metrics_options;
    metrics_options.process_metrics = false;
    metrics_ = std::make_unique<server::MetricsRegistry>(metrics_options);
    auto aggregator = server::TelemetryAggregator::Create(*metrics_);
    ASSERT_TRUE(aggregator.ok()) << aggregator.status().ToString();
    telemetry_ = std::move(*aggregator);
    server::DeviceServicesOptions services;
    services.repo_dir = fixture_.dir + "/repo";
    services.ingest = ingest_.get();
    services.telemetry = telemetry_.get();
    auto created = server::DeviceServices::Create(fixture_.authenticator.get(), services);
    ASSERT_TRUE(created.ok()) << created.status().ToString();
    services_ = std::move(*created);
    server::BatchingOptions batching;
    batching.max_queue_delay_micros = 0;
    backend_ = std::make_unique<testing::FakeCnnBackend>(batching);
  }

  void TearDown() override {
    if (backend_ != nullptr) backend_->OpenGate();
    transport_.reset();
    server_.reset();
    services_.reset();
    backend_.reset();
    ingest_.reset();
    telemetry_.reset();
    metrics_.reset();
    fixture_.Remove();
  }

  // Starts the server with `options` (plus the authenticator and device services); the target.
  std::string StartServer(server::GrpcServerOptions options = {}) {
    options.authenticator = fixture_.authenticator.get();
    options.extra_services = services_->services();
    server_ = std::make_unique<server::GrpcServer>(backend_.get(), options);
    Result<int> port = server_->Start("127.0.0.1:0");
    EXPECT_TRUE(port.ok()) << port.status().ToString();
    return "127.0.0.1:" + std::to_string(port.ok() ? *port : 0);
  }

  // Plain-text options for `target`.
  static GrpcTransportOptions Plain(const std::string& target) {
    GrpcTransportOptions options;
    options.target = target;
    options.use_tls = false;
    return options;
  }

  // Starts the server, enrolls a device and makes transport_ with its credential.
  void StartEnrolled() {
    options_ = Plain(StartServer());
    Result<DeviceCredentials> enrolled =
        EnrollDevice(options_, fixture_.enrollment_secret, "phone-1", "test linux");
    ASSERT_TRUE(enrolled.ok()) << enrolled.status().ToString();
    device_ = *enrolled;
    options_.device_credential = device_.credential;
    auto transport = GrpcTransport::Create(options_);
    ASSERT_TRUE(transport.ok()) << transport.status().ToString();
    transport_ = std::move(*transport);
  }

  testing::AuthPrincipals fixture_;
  std::unique_ptr<server::IngestStore> ingest_;
  std::unique_ptr<server::MetricsRegistry> metrics_;
  std::unique_ptr<server::TelemetryAggregator> telemetry_;
  std::unique_ptr<server::DeviceServices> services_;
  std::unique_ptr<testing::FakeCnnBackend> backend_;
  std::unique_ptr<server::GrpcServer> server_;
  GrpcTransportOptions options_;
  DeviceCredentials device_;
  std::unique_ptr<GrpcTransport> transport_;
};

TEST_F(GrpcTransportTest, InferRoundTripMatchesALocalRun) {
  StartEnrolled();
  ASSERT_FALSE(HasFatalFailure());
  EXPECT_FALSE(device_.device_id.empty());
  InferCall call = CnnCall(2, 41);
  const Tensor images = *call.inputs[0].tensor.Clone();
  const int64_t request_bytes = RequestBytes(call);
  call.deadline_nanos = transport_->clock()->NowNanos() + 20'000 * kMillis;
  Waiter<InferAnswer> waiter;
  const CallId id = transport_->Infer(std::move(call), waiter.Callback());
  EXPECT_NE(id, 0u);
  Result<InferAnswer>& answer = waiter.Await();
  ASSERT_TRUE(answer.ok()) << answer.status().ToString();
  EXPECT_EQ(answer->model_version, std::to_string(testing::kFakeCnnVersion));
  ASSERT_EQ(answer->outputs.size(), 1u);
  EXPECT_EQ(answer->outputs[0].name, "probs");
  ASSERT_EQ(answer->outputs[0].tensor.shape(), (Shape{2, 10}));
  const std::vector<float> want = LocalProbs(images);
  std::span<const float> got = answer->outputs[0].tensor.values<float>();
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-6f) << i;

  // The bytes are the messages' protobuf sizes; the response is what the server encodes.
  const CallStats stats = waiter.stats();
  EXPECT_EQ(stats.bytes_sent, request_bytes);
  std::vector<protocol::NamedTensor> outputs;
  outputs.push_back({"probs", *answer->outputs[0].tensor.Clone()});
  inference::ModelInferResponse response;
  ASSERT_TRUE(protocol::EncodeModelInferResponse(testing::kFakeCnnModel,
                                                 std::to_string(testing::kFakeCnnVersion), "",
                                                 outputs, &response)
                  .ok());
  EXPECT_EQ(stats.bytes_received, static_cast<int64_t>(response.ByteSizeLong()));
  EXPECT_LE(stats.start_nanos, stats.end_nanos);
  EXPECT_NE(waiter.thread(), std::this_thread::get_id());
  EXPECT_EQ(waiter.calls(), 1);
  EXPECT_FALSE(transport_->Cancel(id));  // finished

  // A pinned version is forwarded: the served one answers, another is NOT_FOUND.
  InferCall pinned = CnnCall(1, 42);
  pinned.version = testing::kFakeCnnVersion;
  Waiter<InferAnswer> pinned_waiter;
  transport_->Infer(std::move(pinned), pinned_waiter.Callback());
  EXPECT_TRUE(pinned_waiter.Await().ok()) << pinned_waiter.Await().status().ToString();
  InferCall other = CnnCall(1, 43);
  other.version = 99;
  Waiter<InferAnswer> other_waiter;
  transport_->Infer(std::move(other), other_waiter.Callback());
  EXPECT_EQ(other_waiter.Await().status().code(), StatusCode::kNotFound);
}

// Sequential round trips over loopback: every one answers with the same byte counts. Prints the
// latency next to the generated stub's blocking unary call on the same server, for the record
// (docs/sdk.md); timings are not asserted.
TEST_F(GrpcTransportTest, SequentialRoundTripsCountTheSameBytes) {
  StartEnrolled();
  ASSERT_FALSE(HasFatalFailure());
  constexpr int kCalls = 200;
  const InferCall probe = CnnCall(1, 60);
  const int64_t request_bytes = RequestBytes(probe);
  std::vector<int64_t> transport_nanos;
  int64_t bytes_received = -1;
  for (int i = 0; i < kCalls; ++i) {
    InferCall call = CnnCall(1, 60);
    call.deadline_nanos = transport_->clock()->NowNanos() + 20'000 * kMillis;
    Waiter<InferAnswer> waiter;
    transport_->Infer(std::move(call), waiter.Callback());
    ASSERT_TRUE(waiter.Await().ok()) << waiter.Await().status().ToString();
    const CallStats stats = waiter.stats();
    EXPECT_EQ(stats.bytes_sent, request_bytes);
    if (bytes_received < 0) bytes_received = stats.bytes_received;
    EXPECT_EQ(stats.bytes_received, bytes_received);
    transport_nanos.push_back(stats.end_nanos - stats.start_nanos);
  }

  auto stub = inference::GRPCInferenceService::NewStub(
      grpc::CreateChannel(options_.target, grpc::InsecureChannelCredentials()));
  protocol::V2InferRequest v2;
  v2.model_name = probe.model;
  v2.inputs.push_back({"image", *probe.inputs[0].tensor.Clone()});
  inference::ModelInferRequest message;
  ASSERT_TRUE(
      protocol::EncodeModelInferRequest(v2, protocol::V2TensorEncoding::kRaw, &message).ok());
  std::vector<int64_t> stub_nanos;
  for (int i = 0; i < kCalls; ++i) {
    grpc::ClientContext context;
    context.AddMetadata("authorization", "Bearer " + device_.credential);
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    inference::ModelInferResponse response;
    const int64_t start = RealClock()->NowNanos();
    ASSERT_TRUE(stub->ModelInfer(&context, message, &response).ok());
    stub_nanos.push_back(RealClock()->NowNanos() - start);
  }
  const auto percentile = [](std::vector<int64_t> v, double p) {
    std::sort(v.begin(), v.end());
    return static_cast<double>(v[static_cast<size_t>(p * (v.size() - 1))]) / 1e3;
  };
  std::printf(
      "[ measure  ] %d sequential CNN calls over loopback, request %lld B, response %lld B\n"
      "[ measure  ] GrpcTransport:        p50 %.0f us  p90 %.0f us  p99 %.0f us\n"
      "[ measure  ] generated sync stub:  p50 %.0f us  p90 %.0f us  p99 %.0f us\n",
      kCalls, static_cast<long long>(request_bytes), static_cast<long long>(bytes_received),
      percentile(transport_nanos, 0.5), percentile(transport_nanos, 0.9),
      percentile(transport_nanos, 0.99), percentile(stub_nanos, 0.5), percentile(stub_nanos, 0.9),
      percentile(stub_nanos, 0.99));
}

TEST_F(GrpcTransportTest, UnknownModelIsNotFound) {
  StartEnrolled();
  ASSERT_FALSE(HasFatalFailure());
  InferCall call = CnnCall(1, 1);
  call.model = "no_such_model";
  const int64_t request_bytes = RequestBytes(call);
  Waiter<InferAnswer> waiter;
  transport_->Infer(std::move(call), waiter.Callback());
  const Status status = waiter.Await().status();
  EXPECT_EQ(status.code(), StatusCode::kNotFound) << status.ToString();
  EXPECT_THAT(std::string(status.message()), HasSubstr("no_such_model"));
  EXPECT_EQ(waiter.stats().bytes_sent, request_bytes);
  EXPECT_GT(waiter.stats().bytes_received, 0);  // the error's message came back
}

TEST_F(GrpcTransportTest, MissingOrRevokedCredentialIsUnauthenticated) {
  StartEnrolled();
  ASSERT_FALSE(HasFatalFailure());
  const auto infer_with = [&](const std::string& credential) {
    GrpcTransportOptions options = options_;
    options.device_credential = credential;
    auto transport = GrpcTransport::Create(options);
    EXPECT_TRUE(transport.ok()) << transport.status().ToString();
    Waiter<InferAnswer> waiter;
    (*transport)->Infer(CnnCall(1, 2), waiter.Callback());
    return waiter.Await().status();
  };
  EXPECT_EQ(infer_with("").code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(infer_with(fixture_.revoked).code(), StatusCode::kUnauthenticated);
  EXPECT_TRUE(infer_with(device_.credential).ok());
  // The enrolled device revoked: its next call is refused.
  ASSERT_TRUE(fixture_.store->RevokeDevice(device_.device_id).ok());
  const Status revoked = infer_with(device_.credential);
  EXPECT_EQ(revoked.code(), StatusCode::kUnauthenticated) << revoked.ToString();
  EXPECT_THAT(std::string(revoked.message()), ::testing::Not(HasSubstr(device_.credential)));
}

TEST_F(GrpcTransportTest, EnrollmentWithAWrongSecretIsUnauthenticated) {
  const GrpcTransportOptions options = Plain(StartServer());
  Result<DeviceCredentials> wrong = EnrollDevice(options, fixture_.unknown, "phone-2", "test");
  EXPECT_EQ(wrong.status().code(), StatusCode::kUnauthenticated) << wrong.status().ToString();
  EXPECT_EQ(EnrollDevice(options, "", "phone-2", "test").status().code(),
            StatusCode::kInvalidArgument);
}

TEST_F(GrpcTransportTest, DeadlineShorterThanTheModelIsDeadlineExceeded) {
  StartEnrolled();
  ASSERT_FALSE(HasFatalFailure());
  backend_->CloseGate();  // the model answers only when the gate opens: a slow model
  InferCall call = CnnCall(1, 3);
  const int64_t request_bytes = RequestBytes(call);
  const int64_t start = transport_->clock()->NowNanos();
  call.deadline_nanos = start + 150 * kMillis;
  Waiter<InferAnswer> waiter;
  transport_->Infer(std::move(call), waiter.Callback());
  const Status status = waiter.Await().status();
  EXPECT_EQ(status.code(), StatusCode::kDeadlineExceeded) << status.ToString();
  const CallStats stats = waiter.stats();
  EXPECT_GE(stats.end_nanos - start, 140 * kMillis);
  EXPECT_LT(stats.end_nanos - start, 5'000 * kMillis);
  EXPECT_EQ(stats.bytes_sent, request_bytes);
  backend_->OpenGate();

  // The deadline reached the server: with the only worker held by a call without a deadline, a
  // call with one expires in the batcher's queue and is never computed. (An answered call first
  // proves the worker is past the gate for the call above.)
  Waiter<InferAnswer> flushed;
  transport_->Infer(CnnCall(1, 6), flushed.Callback());
  ASSERT_TRUE(flushed.Await().ok()) << flushed.Await().status().ToString();
  backend_->CloseGate();
  Waiter<InferAnswer> holder;
  transport_->Infer(CnnCall(1, 7), holder.Callback());
  // Computed (batches counts it) and held in `done` by the gate: the worker is busy.
  EXPECT_TRUE(
      backend_->WaitForStats([](const server::BatcherStats& stats) { return stats.batches >= 3; }));
  InferCall queued = CnnCall(1, 8);
  queued.deadline_nanos = transport_->clock()->NowNanos() + 100 * kMillis;
  Waiter<InferAnswer> queued_waiter;
  transport_->Infer(std::move(queued), queued_waiter.Callback());
  EXPECT_EQ(queued_waiter.Await().status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(backend_->batcher().stats().requests, 4);  // it reached the batcher's queue
  // gRPC sends the deadline as a timeout, so the server's copy ends a little after the client's
  // (by the transport latency): wait until it has surely passed before the worker frees up.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  backend_->OpenGate();
  EXPECT_TRUE(holder.Await().ok()) << holder.Await().status().ToString();
  EXPECT_TRUE(
      backend_->WaitForStats([](const server::BatcherStats& stats) { return stats.expired == 1; }));
  // Computed: the first call, the flushing call and the holder; not the expired one.
  const server::BatcherStats after = backend_->batcher().stats();
  EXPECT_EQ(after.samples, 3);
  EXPECT_EQ(after.batches, 3);

  // A deadline already passed is refused on the device: nothing is sent.
  InferCall late = CnnCall(1, 4);
  late.deadline_nanos = transport_->clock()->NowNanos() - 1;
  Waiter<InferAnswer> late_waiter;
  transport_->Infer(std::move(late), late_waiter.Callback());
  EXPECT_EQ(late_waiter.Await().status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(late_waiter.stats().bytes_sent, 0);
}

TEST_F(GrpcTransportTest, CancelAnswersCancelledExactlyOnce) {
  StartEnrolled();
  ASSERT_FALSE(HasFatalFailure());
  backend_->CloseGate();
  Waiter<InferAnswer> waiter;
  const CallId id = transport_->Infer(CnnCall(1, 5), waiter.Callback());
  // Wait until the server holds it, so that the cancellation is of a call on the wire.
  ASSERT_TRUE(backend_->WaitForStats(
      [](const server::BatcherStats& stats) { return stats.requests >= 1; }));
  // gRPC confirms the write on its own thread, possibly after the server has read the bytes; a
  // cancellation before that confirmation would count 0 bytes (docs/sdk.md), so give it time.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_TRUE(transport_->Cancel(id));
  EXPECT_FALSE(transport_->Cancel(id));  // already cancelled
  const Status status = waiter.Await().status();
  EXPECT_EQ(status.code(), StatusCode::kCancelled) << status.ToString();
  EXPECT_GT(waiter.stats().bytes_sent, 0);  // it had been sent
  backend_->OpenGate();                     // the server's late answer is dropped
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(waiter.calls(), 1);
  EXPECT_FALSE(transport_->Cancel(id));
  EXPECT_FALSE(transport_->Cancel(12345));  // unknown
}

TEST_F(GrpcTransportTest, DestroyingTheTransportCancelsPendingCalls) {
  StartEnrolled();
  ASSERT_FALSE(HasFatalFailure());
  backend_->CloseGate();
  std::vector<std::unique_ptr<Waiter<InferAnswer>>> waiters;
  for (int i = 0; i < 3; ++i) {
    waiters.push_back(std::make_unique<Waiter<InferAnswer>>());
    transport_->Infer(CnnCall(1, 10 + i), waiters.back()->Callback());
  }
  // One refused on the device, still pending in its alarm or already answered: either way once.
  Waiter<UploadAnswer> refused;
  UploadCall bad;
  bad.idempotency_key = "bad key";
  bad.sealed_batch = "x";
  transport_->Upload(bad, refused.Callback());
  transport_.reset();
  for (auto& waiter : waiters) {
    EXPECT_EQ(waiter->calls(), 1);  // before the destructor returned
    EXPECT_EQ(waiter->Await().status().code(), StatusCode::kCancelled)
        << waiter->Await().status().ToString();
  }
  EXPECT_EQ(refused.calls(), 1);
  backend_->OpenGate();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  for (auto& waiter : waiters) EXPECT_EQ(waiter->calls(), 1);
}

// Many calls from several threads, half of them cancelled at once from yet another thread: every
// callback runs exactly once, with an answer or kCancelled, and Cancel() is true at most once per
// call (and false for a call whose callback had already run).
TEST_F(GrpcTransportTest, ConcurrentCallsAndCancelsAnswerEachCallOnce) {
  StartEnrolled();
  ASSERT_FALSE(HasFatalFailure());
  constexpr int kThreads = 4;
  constexpr int kCallsPerThread = 25;  // 100 calls: under the batcher's queue limit of 128
  std::mutex mu;
  std::vector<int> callbacks(kThreads * kCallsPerThread, 0);
  std::vector<CallId> ids(kThreads * kCallsPerThread, 0);
  int ok = 0, cancelled = 0, other = 0;
  std::condition_variable all_done;
  int done_count = 0;
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kCallsPerThread; ++i) {
          const int index = t * kCallsPerThread + i;
          const CallId id = transport_->Infer(
              CnnCall(1, 100 + index), [&, index](Result<InferAnswer> answer, const CallStats&) {
                std::lock_guard<std::mutex> lock(mu);
                ++callbacks[index];
                if (answer.ok()) {
                  ++ok;
                } else if (answer.status().code() == StatusCode::kCancelled) {
                  ++cancelled;
                } else {
                  ++other;
                  ADD_FAILURE() << answer.status().ToString();
                }
                if (++done_count == kThreads * kCallsPerThread) all_done.notify_all();
              });
          std::lock_guard<std::mutex> lock(mu);
          ids[index] = id;
        }
      });
    }
    threads.emplace_back([&] {
      for (int round = 0; round < 200; ++round) {
        for (size_t index = 0; index < ids.size(); index += 2) {
          CallId id = 0;
          {
            std::lock_guard<std::mutex> lock(mu);
            id = ids[index];
          }
          if (id != 0) transport_->Cancel(id);
        }
      }
    });
  }
  std::unique_lock<std::mutex> lock(mu);
  ASSERT_TRUE(all_done.wait_for(lock, std::chrono::seconds(20),
                                [&] { return done_count == kThreads * kCallsPerThread; }));
  lock.unlock();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // no late second callbacks
  lock.lock();
  for (size_t i = 0; i < callbacks.size(); ++i) EXPECT_EQ(callbacks[i], 1) << "call " << i;
  EXPECT_EQ(other, 0);
  EXPECT_EQ(ok + cancelled, kThreads * kCallsPerThread);
  EXPECT_GE(ok, kThreads * kCallsPerThread / 2);  // the odd calls were never cancelled
  std::set<CallId> unique(ids.begin(), ids.end());
  EXPECT_EQ(unique.size(), ids.size());
  lock.unlock();
  for (CallId id : ids) EXPECT_FALSE(transport_->Cancel(id));  // all finished
}

TEST_F(GrpcTransportTest, ServerNotListeningIsUnavailable) {
  const int port = UnusedPort();
  ASSERT_NE(port, 0);
  auto transport = GrpcTransport::Create(Plain("127.0.0.1:" + std::to_string(port)));
  ASSERT_TRUE(transport.ok()) << transport.status().ToString();
  Waiter<InferAnswer> waiter;
  (*transport)->Infer(CnnCall(1, 6), waiter.Callback());
  const Status status = waiter.Await().status();
  EXPECT_EQ(status.code(), StatusCode::kUnavailable) << status.ToString();
  EXPECT_THAT(std::string(status.message()), HasSubstr(std::to_string(port)));
  EXPECT_EQ(waiter.stats().bytes_sent, 0);  // never reached a connection
  EXPECT_EQ(waiter.stats().bytes_received, 0);
  EXPECT_NE(waiter.thread(), std::this_thread::get_id());
}

// A server whose port accepts TCP connections but never answers (a listening socket nobody
// accepts from: the kernel completes the TCP handshake, the TLS handshake never progresses): the
// connection attempt fails after connect_timeout_nanos and the call with it, kUnavailable.
TEST_F(GrpcTransportTest, ConnectTimeoutBoundsAHandshakeThatNeverCompletes) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  ASSERT_EQ(::listen(fd, 16), 0);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length), 0);
  GrpcTransportOptions options;
  options.target = "127.0.0.1:" + std::to_string(ntohs(address.sin_port));
  options.connect_timeout_nanos = 300 * kMillis;
  auto transport = GrpcTransport::Create(options);
  ASSERT_TRUE(transport.ok()) << transport.status().ToString();
  Waiter<InferAnswer> waiter;
  (*transport)->Infer(CnnCall(1, 9), waiter.Callback());
  const Status status = waiter.Await().status();
  EXPECT_EQ(status.code(), StatusCode::kUnavailable) << status.ToString();
  const CallStats stats = waiter.stats();
  EXPECT_GE(stats.end_nanos - stats.start_nanos, 250 * kMillis);
  EXPECT_LT(stats.end_nanos - stats.start_nanos, 900 * kMillis);  // gRPC's 1 s backoff is not it
  std::printf("[ measure  ] connect timeout 300 ms: the call failed after %.0f ms\n",
              static_cast<double>(stats.end_nanos - stats.start_nanos) / 1e6);
  EXPECT_EQ(stats.bytes_sent, 0);
  transport->reset();
  ::close(fd);
}

TEST_F(GrpcTransportTest, UploadIsStoredOnceAndARetryIsADuplicate) {
  StartEnrolled();
  ASSERT_FALSE(HasFatalFailure());
  UploadCall call;
  call.idempotency_key = "batch-1";
  call.sealed_batch = std::string(1000, 's');
  call.sample_count = 7;
  hybridml::v1::UploadBatchRequest message;
  message.set_idempotency_key(call.idempotency_key);
  message.set_sealed_batch(call.sealed_batch);
  message.set_sample_count(call.sample_count);
  for (bool want_duplicate : {false, true}) {
    Waiter<UploadAnswer> waiter;
    transport_->Upload(call, waiter.Callback());
    Result<UploadAnswer>& answer = waiter.Await();
    ASSERT_TRUE(answer.ok()) << answer.status().ToString();
    EXPECT_EQ(answer->duplicate, want_duplicate);
    EXPECT_EQ(waiter.stats().bytes_sent, static_cast<int64_t>(message.ByteSizeLong()));
  }
  ASSERT_EQ(*ingest_->Count(), 1);
  auto stored = ingest_->List(0, 10);
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ((*stored)[0].device_id, device_.device_id);
  EXPECT_EQ((*stored)[0].sealed, call.sealed_batch);
  EXPECT_EQ((*stored)[0].sample_count, 7);
}

TEST_F(GrpcTransportTest, UploadWithABadKeyFailsOnTheDevice) {
  StartEnrolled();
  ASSERT_FALSE(HasFatalFailure());
  UploadCall call;
  call.idempotency_key = "no spaces allowed";
  call.sealed_batch = "sealed";
  Waiter<UploadAnswer> waiter;
  transport_->Upload(call, waiter.Callback());
  const Status status = waiter.Await().status();
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << status.ToString();
  EXPECT_EQ(waiter.stats().bytes_sent, 0);
  EXPECT_EQ(waiter.stats().bytes_received, 0);
  EXPECT_NE(waiter.thread(), std::this_thread::get_id());
  EXPECT_EQ(*ingest_->Count(), 0);

  // A malformed infer call is refused the same way.
  InferCall empty;
  empty.model = testing::kFakeCnnModel;
  Waiter<InferAnswer> infer_waiter;
  transport_->Infer(std::move(empty), infer_waiter.Callback());
  EXPECT_EQ(infer_waiter.Await().status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(infer_waiter.stats().bytes_sent, 0);
}

// A request over max_message_bytes is refused on the device, naming the limit; nothing is sent.
TEST_F(GrpcTransportTest, OversizedRequestIsRefusedOnTheDevice) {
  StartEnrolled();
  ASSERT_FALSE(HasFatalFailure());
  GrpcTransportOptions small = options_;
  small.max_message_bytes = 1000;  // a 28x28 FP32 image alone is 3136 bytes
  auto transport = GrpcTransport::Create(small);
  ASSERT_TRUE(transport.ok()) << transport.status().ToString();
  Waiter<InferAnswer> waiter;
  (*transport)->Infer(CnnCall(1, 70), waiter.Callback());
  const Status status = waiter.Await().status();
  EXPECT_EQ(status.code(), StatusCode::kResourceExhausted) << status.ToString();
  EXPECT_THAT(std::string(status.message()), HasSubstr("max_message_bytes 1000"));
  EXPECT_EQ(waiter.stats().bytes_sent, 0);
  EXPECT_EQ(backend_->batcher().stats().requests, 0);
}

// Telemetry reaches the server's aggregator (as `hybridml serve` wires it): an accepted report
// shows in the fleet metrics; one the server refuses is kInvalidArgument after it was sent; an
// empty one is refused on the device.
TEST_F(GrpcTransportTest, TelemetryReachesTheServersMetrics) {
  StartEnrolled();
  ASSERT_FALSE(HasFatalFailure());
  TelemetryCall call;
  call.timestamp_ms = 1'700'000'000'000;
  call.measurements.push_back(
      {"hml_device_requests_total", 5, {{"model", "cnn28"}, {"version", "3"}, {"route", "cloud"}}});
  hybridml::v1::TelemetryReport message;
  message.set_timestamp_ms(call.timestamp_ms);
  for (const TelemetryMeasurement& m : call.measurements) {
    auto* out = message.add_measurements();
    out->set_name(m.name);
    out->set_value(m.value);
    for (const auto& [k, v] : m.labels) (*out->mutable_labels())[k] = v;
  }
  Waiter<TelemetryAnswer> waiter;
  transport_->ReportTelemetry(call, waiter.Callback());
  ASSERT_TRUE(waiter.Await().ok()) << waiter.Await().status().ToString();
  EXPECT_EQ(waiter.stats().bytes_sent, static_cast<int64_t>(message.ByteSizeLong()));
  EXPECT_EQ(waiter.stats().bytes_received, 0);  // TelemetryAck is empty
  EXPECT_THAT(metrics_->Expose(),
              HasSubstr(R"(hml_device_requests_total{model="cnn28",version="3",route="cloud"} 5)"));
  EXPECT_THAT(metrics_->Expose(), HasSubstr("hml_device_reporting_devices 1\n"));

  // A name outside the schema: the server refuses it, naming it.
  TelemetryCall unknown = call;
  unknown.measurements[0].name = "hml_device_made_up_total";
  Waiter<TelemetryAnswer> refused;
  transport_->ReportTelemetry(unknown, refused.Callback());
  const Status status = refused.Await().status();
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << status.ToString();
  EXPECT_THAT(std::string(status.message()), HasSubstr("hml_device_made_up_total"));
  EXPECT_GT(refused.stats().bytes_sent, 0);

  // An empty batch is refused on the device.
  Waiter<TelemetryAnswer> empty;
  transport_->ReportTelemetry(TelemetryCall{}, empty.Callback());
  EXPECT_EQ(empty.Await().status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(empty.stats().bytes_sent, 0);
}

TEST_F(GrpcTransportTest, OptionsAreValidatedNamingTheField) {
  const auto error = [](const GrpcTransportOptions& options) {
    auto created = GrpcTransport::Create(options);
    return created.ok() ? std::string("OK") : created.status().ToString();
  };
  GrpcTransportOptions options;
  EXPECT_THAT(error(options), HasSubstr("target"));
  options.target = "localhost";
  EXPECT_THAT(error(options), HasSubstr("host:port"));
  options.target = "localhost:70000";
  EXPECT_THAT(error(options), HasSubstr("host:port"));
  options.target = "[::1]:8001";
  options.client_cert_file = "/nonexistent/client.pem";
  EXPECT_THAT(error(options), HasSubstr("client_key_file"));
  options.client_cert_file.clear();
  options.root_ca_file = "/nonexistent/ca.pem";
  EXPECT_THAT(error(options), HasSubstr("root_ca_file '/nonexistent/ca.pem'"));
  options.use_tls = false;
  EXPECT_THAT(error(options), HasSubstr("root_ca_file is set but use_tls is false"));
  options.root_ca_file.clear();
  options.device_credential = "has space";
  EXPECT_THAT(error(options), HasSubstr("device_credential"));
  options.device_credential.clear();
  options.max_message_bytes = 0;
  EXPECT_THAT(error(options), HasSubstr("max_message_bytes"));
  options.max_message_bytes = 1 << 20;
  options.clock = nullptr;
  EXPECT_THAT(error(options), HasSubstr("clock"));
  options.clock = RealClock();
  options.connect_timeout_nanos = 0;
  EXPECT_THAT(error(options), HasSubstr("connect_timeout_nanos"));
  options.connect_timeout_nanos = 1'000 * kMillis;
  EXPECT_EQ(error(options), "OK");
}

// The Router over the real transport: prefer-cloud answers from the server while it serves, and
// from the local model by the deadline once the server is gone (the calls fail kUnavailable).
TEST_F(GrpcTransportTest, RouterFallsBackLocallyWhenTheServerGoes) {
  StartEnrolled();
  ASSERT_FALSE(HasFatalFailure());
  RouterOptions router_options;
  router_options.transport = transport_.get();
  auto router = Router::Create(router_options);
  ASSERT_TRUE(router.ok()) << router.status().ToString();
  ModelConfig config;
  config.policy = RoutePolicy::kPreferCloud;
  config.local_model = *Model::FromGraph(testing::Cnn28Graph());
  config.cloud_model = testing::kFakeCnnModel;
  ASSERT_TRUE((*router)->AddModel("cnn", std::move(config)).ok());
  const auto route = [&](uint64_t seed) {
    std::vector<NamedTensor> inputs;
    inputs.push_back({"image", testing::RandomTensor({1, 1, 28, 28}, seed, 1.0f)});
    return (*router)->Infer("cnn", inputs, transport_->clock()->NowNanos() + 300 * kMillis);
  };
  for (int i = 0; i < 5; ++i) {
    Result<RoutedResult> result = route(200 + i);
    ASSERT_TRUE(result.ok()) << result.status().ToString();
    EXPECT_EQ(result->route.placement, Placement::kCloud) << result->route.reason;
    EXPECT_GT(result->route.bytes_sent, 0);
  }
  server_->Shutdown(std::chrono::system_clock::now());
  const int64_t start = transport_->clock()->NowNanos();
  Result<RoutedResult> result = route(300);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->route.placement, Placement::kLocalAfterCloudFailure) << result->route.reason;
  EXPECT_THAT(result->route.cloud_status, HasSubstr("UNAVAILABLE"));
  EXPECT_LT(transport_->clock()->NowNanos() - start, 300 * kMillis);
}

// Issue 6's fault test at the network level: the cloud is killed in the middle of a run of
// prefer-cloud requests with 300 ms deadlines and comes back later on the same port. Every
// request is answered by its deadline (locally while the cloud is gone), the breaker opens, and
// after the restart a half-open probe closes it and the cloud answers again.
TEST_F(GrpcTransportTest, CloudKilledMidRunEveryRequestAnsweredInTimeAndTheBreakerRecovers) {
  StartEnrolled();
  ASSERT_FALSE(HasFatalFailure());
  const std::string target = options_.target;
  // Reconnect quickly once the server is back (the defaults wait up to 10 s between attempts).
  options_.connect_timeout_nanos = 200 * kMillis;
  options_.max_reconnect_backoff_nanos = 200 * kMillis;
  transport_ = std::move(*GrpcTransport::Create(options_));
  RouterOptions router_options;
  router_options.transport = transport_.get();
  router_options.resilience.breaker.failure_threshold = 3;
  router_options.resilience.breaker.open_duration_nanos = 300 * kMillis;
  auto router = Router::Create(router_options);
  ASSERT_TRUE(router.ok()) << router.status().ToString();
  ModelConfig config;
  config.policy = RoutePolicy::kPreferCloud;
  config.local_model = *Model::FromGraph(testing::Cnn28Graph());
  config.cloud_model = testing::kFakeCnnModel;
  ASSERT_TRUE((*router)->AddModel("cnn", std::move(config)).ok());

  constexpr int kRequests = 60;
  constexpr int64_t kDeadline = 300 * kMillis;
  std::map<Placement, int> placements;
  std::vector<Placement> order;
  int on_time = 0;
  for (int i = 0; i < kRequests; ++i) {
    if (i == 15) server_->Shutdown(std::chrono::system_clock::now());  // the cloud is killed
    if (i == 35) {  // and comes back on the same port
      server::GrpcServerOptions again;
      again.authenticator = fixture_.authenticator.get();
      again.extra_services = services_->services();
      server_ = std::make_unique<server::GrpcServer>(backend_.get(), again);
      ASSERT_TRUE(server_->Start(target).ok()) << "restart on " << target;
      std::this_thread::sleep_for(std::chrono::milliseconds(350));  // past the open duration
    }
    std::vector<NamedTensor> inputs;
    inputs.push_back({"image", testing::RandomTensor({1, 1, 28, 28}, 500 + i, 1.0f)});
    const int64_t start = transport_->clock()->NowNanos();
    Result<RoutedResult> result = (*router)->Infer("cnn", inputs, start + kDeadline);
    const int64_t took = transport_->clock()->NowNanos() - start;
    ASSERT_TRUE(result.ok()) << "request " << i << ": " << result.status().ToString();
    on_time += took <= kDeadline ? 1 : 0;
    ++placements[result->route.placement];
    order.push_back(result->route.placement);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::printf(
      "cloud killed at request 15, back at 35: cloud %d, local after a cloud failure %d, "
      "local (breaker open) %d; on time %d/%d; breaker opened %lld time(s)\n",
      placements[Placement::kCloud], placements[Placement::kLocalAfterCloudFailure],
      placements[Placement::kLocal], on_time, kRequests,
      static_cast<long long>((*router)->breaker()->stats().opened));
  EXPECT_EQ(on_time, kRequests);
  for (int i = 0; i < 15; ++i) EXPECT_EQ(order[i], Placement::kCloud) << i;
  for (int i = 15; i < 35; ++i) EXPECT_NE(order[i], Placement::kCloud) << i;
  EXPECT_GE(placements[Placement::kLocalAfterCloudFailure], 1);  // until the breaker opened
  EXPECT_GE(placements[Placement::kLocal], 10);                  // answered at once while open
  EXPECT_GE((*router)->breaker()->stats().opened, 1);
  for (int i = 40; i < kRequests; ++i) EXPECT_EQ(order[i], Placement::kCloud) << i;
  EXPECT_EQ((*router)->breaker()->state(), BreakerState::kClosed);
}

// A split request: the tensors of a cut of the two-branch CNN, one FP32 and one INT8 with its
// scale and zero point, through a real ModelRepository (no auth), give what the tail computes.
TEST(GrpcTransportSplitTest, Int8CutTensorsCarryTheirScaleAndZeroPoint) {
  const Model model = *Model::FromGraph(testing::TwoBranchCnnGraph());
  server::ModelRepository repo;
  ASSERT_TRUE(repo.LoadModel("split", 2, model).ok());
  server::GrpcServer server(&repo);
  Result<int> port = server.Start("127.0.0.1:0");
  ASSERT_TRUE(port.ok()) << port.status().ToString();
  GrpcTransportOptions options;
  options.target = "127.0.0.1:" + std::to_string(*port);
  options.use_tls = false;
  auto transport = GrpcTransport::Create(options);
  ASSERT_TRUE(transport.ok()) << transport.status().ToString();

  const Tensor images = testing::RandomTensor({2, 1, 28, 28}, 71, 1.0f);
  std::vector<server::NamedTensor> cut = testing::HeadTensors(model, {"ra", "rb"}, images);
  ASSERT_EQ(cut.size(), 2u);
  server::NamedTensor ra = testing::QuantizeInt8(cut[0]);
  std::vector<server::NamedTensor> expected_inputs;
  expected_inputs.push_back({"rb", *cut[1].tensor.Clone()});
  expected_inputs.push_back(testing::DequantizeInt8(ra));
  const std::vector<Tensor> want = testing::RunInProcess(
      *model.Slice(std::vector<std::string>{"ra", "rb"}, {}, {{"image", images.shape()}}),
      expected_inputs);
  ASSERT_EQ(want.size(), 1u);

  InferCall call;
  call.model = "split";
  call.inputs.push_back({"rb", *cut[1].tensor.Clone()});
  call.inputs.push_back({ra.name, std::move(ra.tensor), std::move(ra.parameters)});
  const int64_t request_bytes = RequestBytes(call);
  Waiter<InferAnswer> waiter;
  (*transport)->Infer(std::move(call), waiter.Callback());
  Result<InferAnswer>& answer = waiter.Await();
  ASSERT_TRUE(answer.ok()) << answer.status().ToString();
  EXPECT_EQ(answer->model_version, "2");
  ASSERT_EQ(answer->outputs.size(), 1u);
  ASSERT_EQ(answer->outputs[0].tensor.shape(), (Shape{2, 10}));
  std::span<const float> got = answer->outputs[0].tensor.values<float>();
  std::span<const float> w = want[0].values<float>();
  for (size_t i = 0; i < w.size(); ++i) EXPECT_NEAR(got[i], w[i], 1e-5f) << i;
  EXPECT_EQ(waiter.stats().bytes_sent, request_bytes);
  transport->reset();
  server.Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
}

// TLS with the dev certificates (src/server/tls): a device trusting the CA enrolls and infers;
// with mutual TLS a device without a client certificate is refused in the handshake
// (kUnavailable) and one with the CA's client certificate is served.
TEST_F(GrpcTransportTest, TlsAndMutualTls) {
  const std::string pki = fixture_.dir + "/pki";
  ASSERT_TRUE(server::MakeDevCertificates(pki, server::CertOptions()).ok());
  server::GrpcServerOptions tls;
  tls.cert_file = pki + "/server.pem";
  tls.key_file = pki + "/server.key";
  tls.client_ca_file = pki + "/ca.pem";
  tls.require_client_cert = true;
  GrpcTransportOptions options;
  options.target = StartServer(tls);
  options.use_tls = true;
  options.root_ca_file = pki + "/ca.pem";
  options.client_cert_file = pki + "/client.pem";
  options.client_key_file = pki + "/client.key";
  Result<DeviceCredentials> enrolled =
      EnrollDevice(options, fixture_.enrollment_secret, "phone-tls", "test");
  ASSERT_TRUE(enrolled.ok()) << enrolled.status().ToString();
  options.device_credential = enrolled->credential;

  auto transport = GrpcTransport::Create(options);
  ASSERT_TRUE(transport.ok()) << transport.status().ToString();
  InferCall call = CnnCall(1, 50);
  const int64_t request_bytes = RequestBytes(call);
  Waiter<InferAnswer> waiter;
  (*transport)->Infer(std::move(call), waiter.Callback());
  ASSERT_TRUE(waiter.Await().ok()) << waiter.Await().status().ToString();
  EXPECT_EQ(waiter.stats().bytes_sent, request_bytes);  // the payload, not the TLS records

  GrpcTransportOptions no_client_cert = options;
  no_client_cert.client_cert_file.clear();
  no_client_cert.client_key_file.clear();
  auto refused = GrpcTransport::Create(no_client_cert);
  ASSERT_TRUE(refused.ok()) << refused.status().ToString();
  Waiter<InferAnswer> refused_waiter;
  (*refused)->Infer(CnnCall(1, 51), refused_waiter.Callback());
  EXPECT_EQ(refused_waiter.Await().status().code(), StatusCode::kUnavailable)
      << refused_waiter.Await().status().ToString();
  EXPECT_EQ(refused_waiter.stats().bytes_sent, 0);

  GrpcTransportOptions plain = options;
  plain.use_tls = false;
  plain.root_ca_file.clear();
  plain.client_cert_file.clear();
  plain.client_key_file.clear();
  auto plain_transport = GrpcTransport::Create(plain);
  ASSERT_TRUE(plain_transport.ok());
  Waiter<InferAnswer> plain_waiter;
  (*plain_transport)->Infer(CnnCall(1, 52), plain_waiter.Callback());
  EXPECT_EQ(plain_waiter.Await().status().code(), StatusCode::kUnavailable);
}

// The network part of the C ABI (include/hml/c/hml_grpc.h): a router made from C over the real
// transport answers cloud-only requests from the server; bad options are named.
TEST_F(GrpcTransportTest, CAbiRouterOverTheGrpcTransportAnswersFromTheCloud) {
  const std::string target = StartServer();
  Result<DeviceCredentials> enrolled =
      EnrollDevice(Plain(target), fixture_.enrollment_secret, "c-phone", "test linux");
  ASSERT_TRUE(enrolled.ok()) << enrolled.status().ToString();

  hml_grpc_options* options = nullptr;
  ASSERT_EQ(hml_grpc_options_create(&options, nullptr), HML_OK);
  hml_transport* transport = nullptr;
  hml_error* error = nullptr;
  // No target yet: refused, naming it.
  EXPECT_EQ(hml_transport_create_grpc(options, &transport, &error), HML_INVALID_ARGUMENT);
  ASSERT_NE(error, nullptr);
  EXPECT_NE(std::string(hml_error_message(error)).find("target"), std::string::npos)
      << hml_error_message(error);
  hml_error_free(error);
  EXPECT_EQ(hml_grpc_options_set_connect_timeout_ms(options, 0, nullptr), HML_INVALID_ARGUMENT);
  EXPECT_EQ(hml_grpc_options_set_target(nullptr, "x:1", nullptr), HML_INVALID_ARGUMENT);
  ASSERT_EQ(hml_grpc_options_set_target(options, target.c_str(), nullptr), HML_OK);
  ASSERT_EQ(hml_grpc_options_set_tls(options, 0, nullptr, nullptr), HML_OK);
  ASSERT_EQ(hml_grpc_options_set_credential(options, enrolled->credential.c_str(), nullptr),
            HML_OK);
  ASSERT_EQ(hml_transport_create_grpc(options, &transport, nullptr), HML_OK);
  hml_grpc_options_free(options);

  hml_router* router = nullptr;
  EXPECT_EQ(hml_router_create_over(nullptr, nullptr, &router, nullptr), HML_INVALID_ARGUMENT);
  ASSERT_EQ(hml_router_create_over(nullptr, transport, &router, nullptr), HML_OK);
  hml_route_config* config = nullptr;
  ASSERT_EQ(hml_route_config_create(&config, nullptr), HML_OK);
  ASSERT_EQ(hml_route_config_set_policy(config, HML_ROUTE_CLOUD_ONLY, nullptr), HML_OK);
  ASSERT_EQ(hml_route_config_set_cloud_model(config, testing::kFakeCnnModel, 0, nullptr), HML_OK);
  ASSERT_EQ(hml_router_add_model(router, "cnn", config, nullptr), HML_OK);
  hml_route_config_free(config);

  InferCall call = CnnCall(1, 77);
  hml_tensor_list* inputs = nullptr;
  ASSERT_EQ(hml_tensor_list_create(&inputs, nullptr), HML_OK);
  const Tensor& image = call.inputs[0].tensor;
  ASSERT_EQ(
      hml_tensor_list_add(inputs, "image", HML_DTYPE_FLOAT32, image.shape().data(),
                          image.shape().size(), image.data<float>(), image.byte_size(), nullptr),
      HML_OK);
  hml_routed_result* result = nullptr;
  ASSERT_EQ(hml_router_infer(router, "cnn", inputs, 5000, &result, &error), HML_OK)
      << (error != nullptr ? hml_error_message(error) : "");
  EXPECT_EQ(hml_routed_result_placement(result), HML_PLACEMENT_CLOUD);
  EXPECT_EQ(hml_routed_result_attempts(result), 1);
  EXPECT_EQ(hml_routed_result_bytes_sent(result), RequestBytes(call));
  ASSERT_EQ(hml_routed_result_output_count(result), 1u);
  hml_routed_result_free(result);
  hml_tensor_list_free(inputs);
  hml_router_free(router);
  hml_transport_free(transport);
}

// ---- The federated-learning exchange (issue 7) ----------------------------------------------
//
// The server also runs FederatedTasks over a real registry (tests/testing/federated_fixture.h:
// the test CNN as version 1 of "cnn", task "fmnist" with two devices per round, both needed).
// Devices A and B of the auth fixture take part, each through its own GrpcTransport.
class GrpcTransportFederatedTest : public GrpcTransportTest {
 protected:
  void SetUp() override {
    GrpcTransportTest::SetUp();
    ASSERT_FALSE(HasFatalFailure());
    const std::string registry = fixture_.dir + "/registry";
    std::filesystem::create_directories(registry);
    ASSERT_NO_FATAL_FAILURE(federated_.Create(registry, /*clients=*/2));
    server::DeviceServicesOptions services;
    services.repo_dir = fixture_.dir + "/repo";
    services.federated = federated_.tasks.get();
    auto created = server::DeviceServices::Create(fixture_.authenticator.get(), services);
    ASSERT_TRUE(created.ok()) << created.status().ToString();
    services_ = std::move(*created);
    target_ = StartServer();
  }
  void TearDown() override {
    GrpcTransportTest::TearDown();  // the server goes before the tasks it serves
    federated_.tasks.reset();
  }

  std::unique_ptr<GrpcTransport> Device(const std::string& credential) {
    GrpcTransportOptions options = Plain(target_);
    options.device_credential = credential;
    auto transport = GrpcTransport::Create(options);
    EXPECT_TRUE(transport.ok()) << transport.status().ToString();
    return transport.ok() ? std::move(*transport) : nullptr;
  }

  struct Joined {
    Result<JoinRoundAnswer> answer = UnknownError("not joined");
    CallStats stats;
  };
  static Joined Join(GrpcTransport& device, const std::string& task = testing::kFederatedTask) {
    JoinRoundCall call;
    call.task = task;
    Waiter<JoinRoundAnswer> waiter;
    device.JoinRound(std::move(call), waiter.Callback());
    Result<JoinRoundAnswer> answer = std::move(waiter.Await());
    EXPECT_EQ(waiter.calls(), 1);
    return {std::move(answer), waiter.stats()};
  }

  static SubmitUpdateCall Update(const std::string& round_id, std::string sealed) {
    SubmitUpdateCall call;
    call.task = testing::kFederatedTask;
    call.round_id = round_id;
    call.sealed_update = std::move(sealed);
    call.example_count = 10;
    return call;
  }

  static int64_t NowMs() { return RealClock()->WallMicros() / 1000; }

  testing::FederatedServer federated_;
  std::string target_;
};

TEST_F(GrpcTransportFederatedTest, JoinSubmitAndTheTickPublishesTheNextVersion) {
  std::unique_ptr<GrpcTransport> a = Device(fixture_.device_a);
  std::unique_ptr<GrpcTransport> b = Device(fixture_.device_b);
  ASSERT_TRUE(a != nullptr && b != nullptr);
  hybridml::v1::JoinRoundRequest join_message;
  join_message.set_task(testing::kFederatedTask);

  // No round is open: both wait in the pool, told the version they would start from.
  for (GrpcTransport* device : {a.get(), b.get()}) {
    Joined joined = Join(*device);
    ASSERT_TRUE(joined.answer.ok()) << joined.answer.status().ToString();
    EXPECT_EQ(joined.answer->round_id, "");
    EXPECT_EQ(joined.answer->model_version, 1);
    EXPECT_EQ(joined.answer->deadline_ms, 0);
    EXPECT_TRUE(joined.answer->config.empty());
    EXPECT_EQ(joined.stats.bytes_sent, static_cast<int64_t>(join_message.ByteSizeLong()));
    hybridml::v1::JoinRoundResponse no_round;
    no_round.set_model_version("1");
    EXPECT_EQ(joined.stats.bytes_received, static_cast<int64_t>(no_round.ByteSizeLong()));
  }
  EXPECT_EQ(federated_.TaskStatus().waiting, 2);
  ASSERT_TRUE(federated_.tasks->Tick(NowMs()).ok());
  EXPECT_EQ(federated_.TaskStatus().state, "open");
  EXPECT_EQ(federated_.TaskStatus().selected, 2);

  // Both were selected: they get round 1 with its deadline and training config, and submit.
  const std::pair<GrpcTransport*, std::string> devices[] = {{a.get(), fixture_.device_a_id},
                                                            {b.get(), fixture_.device_b_id}};
  for (const auto& [device, id] : devices) {
    Joined joined = Join(*device);
    ASSERT_TRUE(joined.answer.ok()) << joined.answer.status().ToString();
    EXPECT_EQ(joined.answer->round_id, "1");
    EXPECT_EQ(joined.answer->model_version, 1);
    EXPECT_GT(joined.answer->deadline_ms, NowMs());
    EXPECT_LE(joined.answer->deadline_ms, NowMs() + 60000);
    EXPECT_EQ(joined.answer->config.at("codec"), "int8");

    SubmitUpdateCall call =
        Update(joined.answer->round_id, testing::FederatedServer::Sealed(id, 1, 10, 0.01f));
    hybridml::v1::SubmitUpdateRequest message;
    message.set_round_id(call.round_id);
    message.set_sealed_update(call.sealed_update);
    message.set_example_count(call.example_count);
    message.set_task(call.task);
    Waiter<SubmitUpdateAnswer> submitted;
    device->SubmitUpdate(call, submitted.Callback());
    ASSERT_TRUE(submitted.Await().ok()) << submitted.Await().status().ToString();
    EXPECT_TRUE(submitted.Await()->accepted);
    EXPECT_EQ(submitted.stats().bytes_sent, static_cast<int64_t>(message.ByteSizeLong()));
    EXPECT_EQ(submitted.stats().bytes_received, 2);  // accepted: field 1, varint 1
    EXPECT_NE(submitted.thread(), std::this_thread::get_id());

    // A retry after a lost answer is ALREADY_EXISTS, with what the call was in the message.
    Waiter<SubmitUpdateAnswer> retried;
    device->SubmitUpdate(std::move(call), retried.Callback());
    const Status again = retried.Await().status();
    EXPECT_EQ(again.code(), StatusCode::kAlreadyExists) << again.ToString();
    EXPECT_THAT(std::string(again.message()),
                HasSubstr("update of task 'fmnist' round 1 at " + target_));
  }
  EXPECT_EQ(federated_.TaskStatus().submitted, 2);

  // The cohort reported: the tick applies the round and publishes version 2, which the next join
  // names.
  ASSERT_TRUE(federated_.tasks->Tick(NowMs()).ok());
  const server::FederatedTaskStatus status = federated_.TaskStatus();
  EXPECT_EQ(status.rounds_applied, 1);
  EXPECT_EQ(status.model_version, 2);
  EXPECT_EQ(status.last_round_status, "applied");
  Joined next = Join(*a);
  ASSERT_TRUE(next.answer.ok()) << next.answer.status().ToString();
  EXPECT_EQ(next.answer->round_id, "");
  EXPECT_EQ(next.answer->model_version, 2);
}

TEST_F(GrpcTransportFederatedTest, ErrorsKeepTheServersCodes) {
  // Without a credential, or with a revoked one: UNAUTHENTICATED, and nobody joined the pool.
  for (const std::string& credential : {std::string(), fixture_.revoked}) {
    std::unique_ptr<GrpcTransport> device = Device(credential);
    ASSERT_TRUE(device != nullptr);
    const Status status = Join(*device).answer.status();
    EXPECT_EQ(status.code(), StatusCode::kUnauthenticated) << status.ToString();
    Waiter<SubmitUpdateAnswer> submitted;
    device->SubmitUpdate(Update("1", "x"), submitted.Callback());
    EXPECT_EQ(submitted.Await().status().code(), StatusCode::kUnauthenticated);
  }
  EXPECT_EQ(federated_.TaskStatus().waiting, 0);

  std::unique_ptr<GrpcTransport> a = Device(fixture_.device_a);
  ASSERT_TRUE(a != nullptr);
  // An unknown task: NOT_FOUND, naming the call.
  Joined unknown = Join(*a, "no_such_task");
  EXPECT_EQ(unknown.answer.status().code(), StatusCode::kNotFound)
      << unknown.answer.status().ToString();
  EXPECT_THAT(std::string(unknown.answer.status().message()),
              HasSubstr("join round of task 'no_such_task' at " + target_));
  EXPECT_GT(unknown.stats.bytes_received, 0);  // the error's message came back

  // An update for a round that is not open is no error: it came too late, accepted = false.
  // Undecodable bytes: INVALID_ARGUMENT from the server (the bytes were sent).
  Waiter<SubmitUpdateAnswer> too_late;
  a->SubmitUpdate(Update("1", testing::FederatedServer::Sealed(fixture_.device_a_id, 1, 10, 0.1f)),
                  too_late.Callback());
  ASSERT_TRUE(too_late.Await().ok()) << too_late.Await().status().ToString();
  EXPECT_FALSE(too_late.Await()->accepted);
  EXPECT_EQ(too_late.stats().bytes_received, 0);  // proto3: `accepted: false` encodes to nothing
  Waiter<SubmitUpdateAnswer> garbage;
  a->SubmitUpdate(Update("1", "not an update"), garbage.Callback());
  EXPECT_EQ(garbage.Await().status().code(), StatusCode::kInvalidArgument)
      << garbage.Await().status().ToString();
  EXPECT_GT(garbage.stats().bytes_sent, 0);

  // Malformed calls and passed deadlines are refused on the device: nothing is sent.
  Waiter<SubmitUpdateAnswer> no_examples;
  SubmitUpdateCall zero = Update("1", "bytes");
  zero.example_count = 0;
  a->SubmitUpdate(std::move(zero), no_examples.Callback());
  EXPECT_EQ(no_examples.Await().status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(no_examples.stats().bytes_sent, 0);
  EXPECT_NE(no_examples.thread(), std::this_thread::get_id());
  Waiter<JoinRoundAnswer> late;
  JoinRoundCall past;
  past.task = testing::kFederatedTask;
  past.deadline_nanos = 1;
  a->JoinRound(std::move(past), late.Callback());
  EXPECT_EQ(late.Await().status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(late.stats().bytes_sent, 0);
  EXPECT_EQ(federated_.TaskStatus().waiting, 0);
}

// A secure round over gRPC: two devices exchange their SecureAggregation messages (keys, sealed
// shares, masked inputs, unmasking) with the server until the sum is taken; the tick then applies
// the example-weighted mean of their deltas, which the server never saw one by one.
TEST_F(GrpcTransportFederatedTest, SecureAggregationRoundAppliesTheWeightedMean) {
  std::unique_ptr<GrpcTransport> a = Device(fixture_.device_a);
  std::unique_ptr<GrpcTransport> b = Device(fixture_.device_b);
  ASSERT_TRUE(a != nullptr && b != nullptr);
  for (GrpcTransport* device : {a.get(), b.get()}) {
    ASSERT_TRUE(Join(*device, testing::kSecureFederatedTask).answer.ok());
  }
  ASSERT_TRUE(federated_.tasks->Tick(NowMs()).ok());
  struct Party {
    GrpcTransport* transport;
    float value;
    int64_t examples;
    std::string round_id;
    fl::SecureRoundClient client;
    fl::SecureClientMessage next;
    fl::SecureStage last = fl::SecureStage::kWait;
  };
  Party parties[] = {{a.get(), 0.01f, 10, "", {}, {}, {}}, {b.get(), 0.04f, 30, "", {}, {}, {}}};
  const int64_t elements = *fl::LayoutNumElements(testing::CnnLayout());
  for (Party& p : parties) {
    Joined joined = Join(*p.transport, testing::kSecureFederatedTask);
    ASSERT_TRUE(joined.answer.ok()) << joined.answer.status().ToString();
    ASSERT_EQ(joined.answer->round_id, "1");
    EXPECT_EQ(joined.answer->config.at("secure_aggregation"), "1");
    p.round_id = joined.answer->round_id;
  }
  int64_t bytes_sent = 0;
  for (int step = 0; step < 40; ++step) {
    bool all_done = true;
    for (Party& p : parties) {
      if (p.last == fl::SecureStage::kDone) continue;
      all_done = false;
      SecureAggregationCall call;
      call.task = testing::kSecureFederatedTask;
      call.round_id = p.round_id;
      call.message = fl::EncodeSecureClientMessage(p.next);
      Waiter<SecureAggregationAnswer> answered;
      p.transport->SecureAggregation(std::move(call), answered.Callback());
      ASSERT_TRUE(answered.Await().ok()) << answered.Await().status().ToString();
      bytes_sent += answered.stats().bytes_sent;
      auto reply = fl::DecodeSecureReply(answered.Await()->reply);
      ASSERT_TRUE(reply.ok()) << reply.status().ToString();
      ASSERT_NE(reply->stage, fl::SecureStage::kOut) << reply->reason;
      p.last = reply->stage;
      std::optional<std::vector<uint32_t>> input;
      if (reply->stage == fl::SecureStage::kMaskedInput) {
        const std::vector<float> delta(static_cast<size_t>(elements), p.value);
        auto encoded = fl::EncodeSecureInput(delta, p.examples, reply->clients);
        ASSERT_TRUE(encoded.ok());
        input = std::move(*encoded);
      }
      auto next = p.client.Respond(*reply, input);
      ASSERT_TRUE(next.ok()) << next.status().ToString();
      p.next = std::move(*next);
    }
    if (all_done) break;
  }
  for (const Party& p : parties) EXPECT_EQ(p.last, fl::SecureStage::kDone);
  // Both masked inputs went over the wire (4 bytes per element and the weight, each).
  EXPECT_GT(bytes_sent, 2 * 4 * elements);

  ASSERT_TRUE(federated_.tasks->Tick(NowMs()).ok());
  const server::FederatedTaskStatus status = federated_.TaskStatus(testing::kSecureFederatedTask);
  EXPECT_EQ(status.rounds_applied, 1) << status.last_round_status;
  EXPECT_EQ(status.model_version, 2);
  auto history = federated_.tasks->History(testing::kSecureFederatedTask);
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), 1u);
  const fl::RoundResult& round = history->front();
  EXPECT_EQ(round.participants, 2);
  EXPECT_EQ(round.examples, 40);
  // (10 x 0.01 + 30 x 0.04) / 40 = 0.0325 on every element.
  EXPECT_NEAR(round.global_delta_norm, 0.0325 * std::sqrt(static_cast<double>(elements)), 1e-3);

  // The plain task refuses secure messages, naming why; a device outside the cohort is refused.
  SecureAggregationCall plain;
  plain.task = testing::kFederatedTask;
  plain.round_id = "1";
  plain.message = fl::EncodeSecureClientMessage(fl::SecureClientMessage{});
  Waiter<SecureAggregationAnswer> refused;
  a->SecureAggregation(std::move(plain), refused.Callback());
  EXPECT_EQ(refused.Await().status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(refused.Await().status().message()),
              HasSubstr("does not use secure aggregation"));
  // An empty message is refused on the device: nothing is sent.
  SecureAggregationCall empty;
  empty.task = testing::kSecureFederatedTask;
  empty.round_id = "2";
  Waiter<SecureAggregationAnswer> not_sent;
  a->SecureAggregation(std::move(empty), not_sent.Callback());
  EXPECT_EQ(not_sent.Await().status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(not_sent.stats().bytes_sent, 0);
}

// A server without federated tasks answers UNIMPLEMENTED (after authenticating the device).
TEST_F(GrpcTransportTest, FederatedCallsWithoutTasksAreUnimplemented) {
  StartEnrolled();
  ASSERT_FALSE(HasFatalFailure());
  JoinRoundCall join;
  join.task = "t";
  Waiter<JoinRoundAnswer> joined;
  transport_->JoinRound(std::move(join), joined.Callback());
  EXPECT_EQ(joined.Await().status().code(), StatusCode::kUnimplemented)
      << joined.Await().status().ToString();
  SubmitUpdateCall update;
  update.task = "t";
  update.round_id = "1";
  update.sealed_update = "u";
  update.example_count = 1;
  Waiter<SubmitUpdateAnswer> submitted;
  transport_->SubmitUpdate(std::move(update), submitted.Callback());
  EXPECT_EQ(submitted.Await().status().code(), StatusCode::kUnimplemented);
}

// The JoinRoundResponse decoding both transports share (wire.h).
TEST(FederatedWireTest, JoinRoundAnswerDecodesTheVersionAndRefusesNonsense) {
  hybridml::v1::JoinRoundResponse response;
  response.set_round_id("7");
  response.set_model_version("12");
  response.set_deadline_ms(1234);
  (*response.mutable_config())["codec"] = "topk";
  Result<JoinRoundAnswer> answer = DecodeJoinRoundAnswer(response);
  ASSERT_TRUE(answer.ok()) << answer.status().ToString();
  EXPECT_EQ(answer->round_id, "7");
  EXPECT_EQ(answer->model_version, 12);
  EXPECT_EQ(answer->deadline_ms, 1234);
  EXPECT_EQ(answer->config.at("codec"), "topk");

  hybridml::v1::JoinRoundResponse empty;
  answer = DecodeJoinRoundAnswer(empty);
  ASSERT_TRUE(answer.ok());
  EXPECT_EQ(answer->model_version, 0);
  EXPECT_EQ(answer->round_id, "");

  for (const char* version : {"-1", "1.5", "v2", "1234567890123456789"}) {
    hybridml::v1::JoinRoundResponse bad;
    bad.set_model_version(version);
    EXPECT_EQ(DecodeJoinRoundAnswer(bad).status().code(), StatusCode::kInternal) << version;
  }
  hybridml::v1::JoinRoundResponse no_deadline;
  no_deadline.set_round_id("3");
  no_deadline.set_model_version("1");
  EXPECT_EQ(DecodeJoinRoundAnswer(no_deadline).status().code(), StatusCode::kInternal);
}

}  // namespace
}  // namespace hml::sdk

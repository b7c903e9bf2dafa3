// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The in-process transport against a real ModelRepository serving the test CNN, over emulated
// links on the real clock. Times are asserted as lower bounds (the link's arithmetic) plus a
// generous upper tolerance for a busy 2-core machine.
#include "src/sim/in_process_transport.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "hml/runtime/session.h"
#include "proto/inference.pb.h"
#include "src/server/protocol/v2_grpc_codec.h"
#include "src/server/serving/model_repository.h"
#include "tests/testing/models.h"
#include "tests/testing/split_requests.h"

namespace hml::sim {
namespace {

constexpr int64_t kMs = 1'000'000;
// Scheduling noise allowed on top of the link's arithmetic and the model's compute.
constexpr int64_t kTolerance = 150 * kMs;

// A backend that counts the requests that reach Infer() and forwards them.
class CountingBackend final : public server::InferenceBackend {
 public:
  explicit CountingBackend(server::InferenceBackend* inner) : inner_(inner) {}
  bool Ready() const override { return inner_->Ready(); }
  Result<server::ServedModel> GetModel(const std::string& name, int64_t version) const override {
    return inner_->GetModel(name, version);
  }
  std::vector<server::ServedModel> ListModels() const override { return inner_->ListModels(); }
  server::SubmitResult Infer(const std::string& name, int64_t version,
                             server::ServingProtocol protocol,
                             server::NamedInferRequest request) override {
    ++infers;
    return inner_->Infer(name, version, protocol, std::move(request));
  }
  std::atomic<int> infers{0};

 private:
  server::InferenceBackend* inner_;
};

// What a callback received.
struct Outcome {
  Result<sdk::InferAnswer> answer = InternalError("not answered");
  sdk::CallStats stats;
};

class InProcessTransportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = std::make_unique<Model>(*Model::FromGraph(testing::Cnn28Graph()));
    ASSERT_TRUE(repo_.LoadModel("cnn", 1, *model_).ok());
  }

  // A link on the real clock with `profile`, and a transport over it to the counting backend.
  void Connect(LinkProfile profile, std::vector<Outage> outages = {},
               int64_t lost_message_timeout_nanos = 1000 * kMs) {
    LinkOptions link_options;
    link_options.profile = std::move(profile);
    link_options.outages = std::move(outages);
    link_ = std::move(*LinkEmulator::Create(std::move(link_options)));
    InProcessTransportOptions options;
    options.backend = &backend_;
    options.link = link_.get();
    options.lost_message_timeout_nanos = lost_message_timeout_nanos;
    Result<std::unique_ptr<InProcessTransport>> t = InProcessTransport::Create(options);
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    transport_ = std::move(*t);
  }

  static sdk::InferCall ImageCall(uint64_t seed, int64_t deadline_nanos = 0) {
    sdk::InferCall call;
    call.model = "cnn";
    call.inputs.push_back({"image", testing::RandomTensor({1, 1, 28, 28}, seed, 1.0f)});
    call.deadline_nanos = deadline_nanos;
    return call;
  }

  // Starts `call` and returns a future of its outcome; counts callbacks in callbacks_.
  std::future<Outcome> Start(sdk::InferCall call, sdk::CallId* id = nullptr) {
    auto promise = std::make_shared<std::promise<Outcome>>();
    std::future<Outcome> f = promise->get_future();
    const sdk::CallId started = transport_->Infer(
        std::move(call),
        [this, promise](Result<sdk::InferAnswer> answer, const sdk::CallStats& stats) {
          ++callbacks_;
          promise->set_value(Outcome{std::move(answer), stats});
        });
    if (id != nullptr) *id = started;
    return f;
  }

  static Outcome Wait(std::future<Outcome>& f) {
    if (f.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
      ADD_FAILURE() << "no callback within 10 s";
      return {};
    }
    return f.get();
  }

  // The bytes of `call`'s request on the wire, computed independently with the codec.
  static int64_t RequestBytes(const sdk::InferCall& call) {
    server::V2InferRequest request;
    request.model_name = call.model;
    if (call.version != 0) request.model_version = std::to_string(call.version);
    for (const sdk::NamedTensor& t : call.inputs) {
      request.inputs.push_back({t.name, *t.tensor.Clone(), t.parameters});
    }
    inference::ModelInferRequest message;
    EXPECT_TRUE(
        server::EncodeModelInferRequest(request, server::V2TensorEncoding::kRaw, &message).ok());
    return static_cast<int64_t>(message.ByteSizeLong());
  }

  std::unique_ptr<Model> model_;
  server::ModelRepository repo_;
  CountingBackend backend_{&repo_};
  std::unique_ptr<LinkEmulator> link_;
  std::unique_ptr<InProcessTransport> transport_;
  std::atomic<int> callbacks_{0};
};

TEST_F(InProcessTransportTest, RoundTripMatchesASessionAndTakesTheLinksTime) {
  Connect(*NamedLinkProfile("4g"));
  sdk::InferCall call = ImageCall(7);
  const int64_t request_bytes = RequestBytes(call);
  std::vector<Tensor> in;
  in.push_back(*call.inputs[0].tensor.Clone());
  auto session = *Session::Create(*model_, {});
  const int64_t compute_start = RealClock()->NowNanos();
  std::vector<Tensor> expected = *session->Run(in);
  const int64_t compute = RealClock()->NowNanos() - compute_start;

  std::future<Outcome> f = Start(std::move(call));
  Outcome out = Wait(f);
  ASSERT_TRUE(out.answer.ok()) << out.answer.status().ToString();
  ASSERT_EQ(out.answer->outputs.size(), 1u);
  EXPECT_EQ(out.answer->outputs[0].name, "probs");
  EXPECT_EQ(out.answer->model_version, "1");
  const Tensor& probs = out.answer->outputs[0].tensor;
  ASSERT_EQ(probs.shape(), expected[0].shape());
  for (int i = 0; i < 10; ++i)
    EXPECT_FLOAT_EQ(probs.data<float>()[i], expected[0].data<float>()[i]);

  // Bytes: the request as the v2 gRPC codec encodes it; the response holds 10 floats and names.
  EXPECT_EQ(out.stats.bytes_sent, request_bytes);
  EXPECT_GT(request_bytes, 28 * 28 * 4);
  EXPECT_GT(out.stats.bytes_received, 10 * 4);
  EXPECT_LT(out.stats.bytes_received, 200);

  // Latency: a full RTT plus both transmissions at 10 Mbit/s, plus the model's compute.
  const int64_t latency = out.stats.end_nanos - out.stats.start_nanos;
  const int64_t link_model = link_->TransferNanos(Direction::kUplink, out.stats.bytes_sent) +
                             link_->TransferNanos(Direction::kDownlink, out.stats.bytes_received);
  EXPECT_GE(link_model, 50 * kMs);
  std::printf(
      "4g round trip: %.2f ms measured, %.2f ms link model (%lld B up, %lld B down), "
      "%.2f ms compute in a Session\n",
      latency / 1e6, link_model / 1e6, static_cast<long long>(out.stats.bytes_sent),
      static_cast<long long>(out.stats.bytes_received), compute / 1e6);
  EXPECT_GE(latency, link_model);
  EXPECT_LE(latency, link_model + compute + kTolerance);
  EXPECT_EQ(backend_.infers.load(), 1);
  EXPECT_EQ(transport_->counters().answered_ok, 1);
}

TEST_F(InProcessTransportTest, DeadlineShorterThanTheRttFailsAndTheBackendNeverComputes) {
  Connect(*NamedLinkProfile("poor"));  // 300 ms RTT: the request alone takes 150 ms
  const int64_t now = RealClock()->NowNanos();
  std::future<Outcome> f = Start(ImageCall(1, now + 100 * kMs));
  Outcome out = Wait(f);
  EXPECT_EQ(out.answer.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_GE(out.stats.end_nanos, now + 100 * kMs);
  EXPECT_LE(out.stats.end_nanos, now + 100 * kMs + kTolerance);
  // The request left the device (the radio spent its bytes) but never reached the server.
  EXPECT_GT(out.stats.bytes_sent, 0);
  EXPECT_EQ(out.stats.bytes_received, 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // past the would-be arrival
  EXPECT_EQ(backend_.infers.load(), 0);
  EXPECT_EQ(transport_->counters().delivered_to_backend, 0);
  EXPECT_EQ(callbacks_.load(), 1);
}

TEST_F(InProcessTransportTest, DeadlineBetweenArrivalAndAnswerDropsTheComputedResult) {
  // The request arrives after 150 ms and is computed; the answer would arrive after 300 ms.
  Connect(*NamedLinkProfile("poor"));
  const int64_t now = RealClock()->NowNanos();
  std::future<Outcome> f = Start(ImageCall(1, now + 250 * kMs));
  Outcome out = Wait(f);
  EXPECT_EQ(out.answer.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_GE(out.stats.end_nanos, now + 250 * kMs);
  std::this_thread::sleep_for(std::chrono::milliseconds(150));  // past the answer's arrival
  EXPECT_EQ(backend_.infers.load(), 1);
  EXPECT_EQ(callbacks_.load(), 1);
  EXPECT_EQ(out.stats.bytes_received, 0);
}

TEST_F(InProcessTransportTest, CancelAnswersAtOnceAndTheLateAnswerIsDropped) {
  Connect(*NamedLinkProfile("4g"));
  sdk::CallId id = 0;
  const int64_t now = RealClock()->NowNanos();
  std::future<Outcome> f = Start(ImageCall(2), &id);
  EXPECT_NE(id, 0u);
  EXPECT_TRUE(transport_->Cancel(id));
  EXPECT_FALSE(transport_->Cancel(id));  // already cancelled
  Outcome out = Wait(f);
  EXPECT_EQ(out.answer.status().code(), StatusCode::kCancelled);
  // At once: well before the ~52 ms round trip could have answered it.
  EXPECT_LT(out.stats.end_nanos - now, 45 * kMs);
  std::this_thread::sleep_for(std::chrono::milliseconds(120));
  EXPECT_EQ(callbacks_.load(), 1);
  EXPECT_EQ(backend_.infers.load(), 0);  // cancelled before arrival: never delivered
  EXPECT_FALSE(transport_->Cancel(id));
  EXPECT_FALSE(transport_->Cancel(12345));
}

TEST_F(InProcessTransportTest, HedgedPairTheLoserIsCancelledAndTheWinnerAnswers) {
  Connect(*NamedLinkProfile("wifi"));
  sdk::CallId first = 0, second = 0;
  std::future<Outcome> a = Start(ImageCall(3), &first);
  std::future<Outcome> b = Start(ImageCall(3), &second);
  EXPECT_NE(first, second);
  Outcome winner = Wait(a);
  ASSERT_TRUE(winner.answer.ok()) << winner.answer.status().ToString();
  // The second may have been answered already, in which case it is no longer cancellable.
  const bool cancelled = transport_->Cancel(second);
  Outcome loser = Wait(b);
  EXPECT_EQ(loser.answer.ok(), !cancelled);
  if (cancelled) {
    EXPECT_EQ(loser.answer.status().code(), StatusCode::kCancelled);
  }
}

TEST_F(InProcessTransportTest, OutageFailsCallsAtOnceAndRecoveryWorks) {
  const int64_t now = RealClock()->NowNanos();
  Connect(*NamedLinkProfile("4g"), {{now, now + 200 * kMs}});
  std::future<Outcome> down = Start(ImageCall(4));
  Outcome out = Wait(down);
  EXPECT_EQ(out.answer.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(out.answer.status().message().find("link is down"), std::string::npos);
  EXPECT_EQ(out.stats.bytes_sent, 0);
  EXPECT_LT(out.stats.end_nanos - out.stats.start_nanos, 45 * kMs);  // no round trip
  EXPECT_EQ(backend_.infers.load(), 0);

  std::this_thread::sleep_for(std::chrono::nanoseconds(now + 200 * kMs - RealClock()->NowNanos()));
  std::future<Outcome> up = Start(ImageCall(4));
  Outcome recovered = Wait(up);
  ASSERT_TRUE(recovered.answer.ok()) << recovered.answer.status().ToString();
  EXPECT_EQ(backend_.infers.load(), 1);
}

TEST_F(InProcessTransportTest, OutageStartingWhileTheServerComputesLosesTheResponse) {
  // The request arrives at ~25 ms; the link goes down at 30 ms for a while. The response is
  // either sent into the outage (refused: the call fails at once) or was already in flight when
  // it began (lost: the call fails after the 50 ms loss timeout); kUnavailable either way.
  const int64_t now = RealClock()->NowNanos();
  Connect(*NamedLinkProfile("4g"), {{now + 30 * kMs, now + 10'000 * kMs}}, 50 * kMs);
  std::future<Outcome> f = Start(ImageCall(5));
  Outcome out = Wait(f);
  EXPECT_EQ(out.answer.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(backend_.infers.load(), 1);
  EXPECT_GT(out.stats.bytes_sent, 0);
  EXPECT_EQ(out.stats.bytes_received, 0);
  EXPECT_LE(out.stats.end_nanos - now, 30 * kMs + 50 * kMs + kTolerance);
}

TEST_F(InProcessTransportTest, LostRequestFailsAfterTheLossTimeoutOrAtTheDeadline) {
  LinkProfile lossy = *NamedLinkProfile("wifi");
  lossy.loss_probability = 1.0;
  Connect(lossy, {}, 80 * kMs);
  std::future<Outcome> f = Start(ImageCall(6));
  Outcome out = Wait(f);
  EXPECT_EQ(out.answer.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(out.answer.status().message().find("lost"), std::string::npos);
  const int64_t took = out.stats.end_nanos - out.stats.start_nanos;
  EXPECT_GE(took, 80 * kMs);
  EXPECT_LE(took, 80 * kMs + kTolerance);
  EXPECT_GT(out.stats.bytes_sent, 0);

  const int64_t now = RealClock()->NowNanos();
  std::future<Outcome> g = Start(ImageCall(6, now + 30 * kMs));
  Outcome early = Wait(g);
  EXPECT_EQ(early.answer.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(backend_.infers.load(), 0);
}

TEST_F(InProcessTransportTest, OfflineProfileFailsEveryCallAtOnce) {
  Connect(*NamedLinkProfile("offline"));
  std::future<Outcome> f = Start(ImageCall(7));
  Outcome out = Wait(f);
  EXPECT_EQ(out.answer.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(out.stats.bytes_sent, 0);
}

TEST_F(InProcessTransportTest, ServerErrorsComeBackOverTheLink) {
  Connect(*NamedLinkProfile("4g"));
  sdk::InferCall unknown = ImageCall(8);
  unknown.model = "nope";
  std::future<Outcome> f = Start(std::move(unknown));
  Outcome out = Wait(f);
  EXPECT_EQ(out.answer.status().code(), StatusCode::kNotFound);
  EXPECT_GE(out.stats.end_nanos - out.stats.start_nanos, 50 * kMs);  // a full round trip
  EXPECT_GT(out.stats.bytes_received, 0);

  sdk::InferCall wrong_shape = ImageCall(8);
  wrong_shape.inputs[0].tensor = testing::RandomTensor({1, 1, 14, 14}, 1, 1.0f);
  std::future<Outcome> g = Start(std::move(wrong_shape));
  EXPECT_EQ(Wait(g).answer.status().code(), StatusCode::kInvalidArgument);

  // Malformed on the device: refused before anything is sent, still through the callback.
  sdk::InferCall malformed = ImageCall(8);
  malformed.inputs.push_back({"image", testing::RandomTensor({1}, 1, 1.0f)});
  std::future<Outcome> h = Start(std::move(malformed));
  Outcome refused = Wait(h);
  EXPECT_EQ(refused.answer.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(refused.stats.bytes_sent, 0);
}

TEST_F(InProcessTransportTest, Int8CutTensorsTravelWithTheirParameters) {
  Connect(*NamedLinkProfile("wifi"));
  Tensor image = testing::RandomTensor({1, 1, 28, 28}, 9, 1.0f);
  std::vector<server::NamedTensor> head = testing::HeadTensors(*model_, {"pool"}, image);
  ASSERT_EQ(head.size(), 1u);
  server::NamedTensor q = testing::QuantizeInt8(head[0]);
  sdk::InferCall call;
  call.model = "cnn";
  call.version = 1;
  call.inputs.push_back({q.name, std::move(q.tensor), q.parameters});
  ASSERT_TRUE(call.inputs[0].parameters.count(sdk::kScaleParameter));
  const int64_t int8_bytes = RequestBytes(call);
  std::future<Outcome> f = Start(std::move(call));
  Outcome out = Wait(f);
  ASSERT_TRUE(out.answer.ok()) << out.answer.status().ToString();
  // The full model's top class survives INT8 cut tensors.
  std::vector<Tensor> in;
  in.push_back(std::move(image));
  std::vector<Tensor> expected = *(*Session::Create(*model_, {}))->Run(in);
  EXPECT_EQ(testing::ArgMaxRow(out.answer->outputs[0].tensor, 0),
            testing::ArgMaxRow(expected[0], 0));
  EXPECT_EQ(out.stats.bytes_sent, int8_bytes);
  EXPECT_LT(int8_bytes, 8 * 14 * 14 + 200);  // one byte per value, not four
}

TEST_F(InProcessTransportTest, DestroyingTheTransportCancelsPendingCalls) {
  Connect(*NamedLinkProfile("poor"));
  std::future<Outcome> f = Start(ImageCall(10));
  transport_.reset();
  ASSERT_EQ(f.wait_for(std::chrono::seconds(0)), std::future_status::ready);
  EXPECT_EQ(f.get().answer.status().code(), StatusCode::kCancelled);
  EXPECT_EQ(callbacks_.load(), 1);
}

TEST(InProcessTransportOptionsTest, RequiresABackendALinkAndMatchingClocks) {
  InProcessTransportOptions options;
  EXPECT_NE(InProcessTransport::Create(options).status().message().find("backend"),
            std::string::npos);
  server::ModelRepository repo;
  options.backend = &repo;
  EXPECT_NE(InProcessTransport::Create(options).status().message().find("link"), std::string::npos);
  LinkOptions link_options;
  LinkEmulator link(link_options);
  options.link = &link;
  ManualClock other;
  TimerQueueOptions timer_options;
  timer_options.clock = &other;
  TimerQueue timers(timer_options);
  options.timers = &timers;
  EXPECT_NE(InProcessTransport::Create(options).status().message().find("clock"),
            std::string::npos);
  options.timers = nullptr;
  options.lost_message_timeout_nanos = 0;
  EXPECT_EQ(InProcessTransport::Create(options).status().code(), StatusCode::kInvalidArgument);
}

// On a ManualClock (the simulator's virtual time) nothing moves until the clock does: the call
// is answered once the clock has been advanced past the link's round trip, and its latency is
// virtual time.
TEST(InProcessTransportVirtualTimeTest, CallsAdvanceWithAManualClock) {
  server::ModelRepository repo;
  ASSERT_TRUE(repo.LoadModel("cnn", 1, *Model::FromGraph(testing::Cnn28Graph())).ok());
  ManualClock clock(1000 * kMs);
  LinkOptions link_options;
  link_options.profile = *NamedLinkProfile("poor");
  link_options.clock = &clock;
  LinkEmulator link(link_options);
  TimerQueueOptions timer_options;
  timer_options.clock = &clock;
  TimerQueue timers(timer_options);
  InProcessTransportOptions options;
  options.backend = &repo;
  options.link = &link;
  options.timers = &timers;
  std::unique_ptr<InProcessTransport> transport = *InProcessTransport::Create(options);

  sdk::InferCall call;
  call.model = "cnn";
  call.inputs.push_back({"image", testing::RandomTensor({1, 1, 28, 28}, 1, 1.0f)});
  std::promise<Outcome> promise;
  std::future<Outcome> f = promise.get_future();
  transport->Infer(std::move(call),
                   [&](Result<sdk::InferAnswer> answer, const sdk::CallStats& stats) {
                     promise.set_value(Outcome{std::move(answer), stats});
                   });
  // Real time passes, virtual time does not: no answer.
  EXPECT_EQ(f.wait_for(std::chrono::milliseconds(50)), std::future_status::timeout);
  // Step virtual time in 1 ms steps, giving the backend real time to compute at each step.
  for (int step = 0; step < 2000; ++step) {
    if (f.wait_for(std::chrono::microseconds(500)) == std::future_status::ready) break;
    clock.Advance(1 * kMs);
    timers.Wake();
  }
  ASSERT_EQ(f.wait_for(std::chrono::seconds(0)), std::future_status::ready);
  Outcome out = f.get();
  ASSERT_TRUE(out.answer.ok()) << out.answer.status().ToString();
  const int64_t model = link.TransferNanos(Direction::kUplink, out.stats.bytes_sent) +
                        link.TransferNanos(Direction::kDownlink, out.stats.bytes_received);
  const int64_t latency = out.stats.end_nanos - out.stats.start_nanos;
  EXPECT_GE(latency, model);
  EXPECT_LE(latency, model + 20 * kMs);  // the backend answers within a few steps
  EXPECT_EQ(out.stats.start_nanos, 1000 * kMs);
}

// Many devices, each with its own link and transport, on one shared timer queue: every call is
// answered, and each device's latency respects its own link.
TEST(InProcessTransportFleetTest, ManyDevicesShareOneTimerQueue) {
  server::ModelRepository repo;
  ASSERT_TRUE(repo.LoadModel("cnn", 1, *Model::FromGraph(testing::Cnn28Graph())).ok());
  TimerQueue timers;
  constexpr int kDevices = 40;
  constexpr int kCallsPerDevice = 3;
  std::vector<std::unique_ptr<LinkEmulator>> links;
  std::vector<std::unique_ptr<InProcessTransport>> transports;
  for (int d = 0; d < kDevices; ++d) {
    LinkOptions link_options;
    link_options.profile = *NamedLinkProfile(d % 2 == 0 ? "wifi" : "4g");
    link_options.seed = static_cast<uint64_t>(d + 1);
    links.push_back(std::move(*LinkEmulator::Create(link_options)));
    InProcessTransportOptions options;
    options.backend = &repo;
    options.link = links.back().get();
    options.timers = &timers;
    transports.push_back(std::move(*InProcessTransport::Create(options)));
  }
  std::mutex mu;
  std::vector<std::pair<int, int64_t>> latencies;  // (device, latency)
  std::atomic<int> ok{0};
  std::promise<void> all;
  std::atomic<int> remaining{kDevices * kCallsPerDevice};
  for (int c = 0; c < kCallsPerDevice; ++c) {
    for (int d = 0; d < kDevices; ++d) {
      sdk::InferCall call;
      call.model = "cnn";
      call.inputs.push_back({"image", testing::RandomTensor({1, 1, 28, 28}, d, 1.0f)});
      transports[d]->Infer(std::move(call),
                           [&, d](Result<sdk::InferAnswer> answer, const sdk::CallStats& stats) {
                             if (answer.ok()) ++ok;
                             {
                               std::lock_guard<std::mutex> lock(mu);
                               latencies.emplace_back(d, stats.end_nanos - stats.start_nanos);
                             }
                             if (--remaining == 0) all.set_value();
                           });
    }
  }
  ASSERT_EQ(all.get_future().wait_for(std::chrono::seconds(20)), std::future_status::ready);
  EXPECT_EQ(ok.load(), kDevices * kCallsPerDevice);
  for (const auto& [d, latency] : latencies) {
    EXPECT_GE(latency, (d % 2 == 0 ? 10 : 50) * kMs) << "device " << d;
  }
  transports.clear();
}

}  // namespace
}  // namespace hml::sim

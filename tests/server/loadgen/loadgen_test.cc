// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The load generator's correctness (not performance): percentiles, option checks, and runs
// against our real gRPC and HTTP front ends on 127.0.0.1 over a fake backend whose answers take a
// known time, refuse, or stall once. What must hold: latencies are at least the backend's time;
// the number of requests sent matches rate x duration; refusals are counted as rejections; and
// latency is measured from the intended send time (a stall makes the requests due during it
// late, and their latency shows it), i.e. no coordinated omission.
#include "src/server/loadgen/loadgen.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "src/server/auth/authenticator.h"
#include "src/server/grpc/grpc_server.h"
#include "src/server/http/http_server.h"
#include "src/server/metrics/metrics.h"
#include "src/server/serving/inference_backend.h"
#include "tests/testing/auth_fixture.h"

namespace hml::server {
namespace {

using ::testing::HasSubstr;

// Serves model "sleepy" version 1 (input "x" FP32 [-1,4], output "y" = x): every answer takes
// `delay_ms` on one of `workers` threads, the very first one `first_stall_ms` more; with
// `refuse` every request is refused as a full queue.
class SleepyBackend final : public InferenceBackend {
 public:
  struct Behaviour {
    int64_t delay_ms = 0;
    int64_t first_stall_ms = 0;
    bool refuse = false;
  };

  explicit SleepyBackend(Behaviour behaviour, int workers = 8) : behaviour_(behaviour) {
    for (int i = 0; i < workers; ++i) threads_.emplace_back([this] { Work(); });
  }
  ~SleepyBackend() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (std::thread& t : threads_) t.join();
  }

  bool Ready() const override { return true; }
  Result<ServedModel> GetModel(const std::string& name, int64_t version) const override {
    if (name != "sleepy" || (version != 0 && version != 1)) {
      return NotFoundError("model '" + name + "' is not loaded");
    }
    ServedModel m;
    m.name = "sleepy";
    m.version = 1;
    m.versions = {1};
    m.inputs = {{"x", DType::kFloat32, {-1, 4}}};
    m.outputs = {{"y", DType::kFloat32, {-1, 4}}};
    return m;
  }
  std::vector<ServedModel> ListModels() const override { return {*GetModel("sleepy", 1)}; }
  SubmitResult Infer(const std::string& name, int64_t version, ServingProtocol,
                     NamedInferRequest request) override {
    if (Result<ServedModel> m = GetModel(name, version); !m.ok()) return {m.status()};
    received_.fetch_add(1);
    if (behaviour_.refuse) return {ResourceExhaustedError("queue full"), 1000};
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.push_back(std::move(request));
    }
    cv_.notify_one();
    return {Status::Ok()};
  }

  int64_t received() const { return received_.load(); }

 private:
  void Work() {
    for (;;) {
      NamedInferRequest request;
      bool first = false;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;
        request = std::move(queue_.front());
        queue_.pop_front();
        first = !stalled_;
        stalled_ = true;
      }
      const int64_t ms = behaviour_.delay_ms + (first ? behaviour_.first_stall_ms : 0);
      std::this_thread::sleep_for(std::chrono::milliseconds(ms));
      std::vector<Tensor> outputs;
      for (NamedTensor& input : request.inputs) outputs.push_back(std::move(input.tensor));
      request.done(std::move(outputs));
    }
  }

  const Behaviour behaviour_;
  std::atomic<int64_t> received_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<NamedInferRequest> queue_;  // GUARDED_BY(mu_)
  bool stopping_ = false;           // GUARDED_BY(mu_)
  bool stalled_ = false;            // GUARDED_BY(mu_)
  std::vector<std::thread> threads_;
};

// Both front ends on 127.0.0.1 over one backend.
class Servers {
 public:
  // With `authenticator`, both front ends require a bearer token.
  explicit Servers(SleepyBackend::Behaviour behaviour,
                   const Authenticator* authenticator = nullptr)
      : backend_(behaviour), grpc_(&backend_, GrpcOptions(authenticator)) {
    HttpServerOptions options;
    options.threads = 8;
    options.authenticator = authenticator;
    http_ = std::make_unique<HttpServer>(backend_, metrics_, options);
    EXPECT_TRUE(http_->Start().ok());
    Result<int> port = grpc_.Start("127.0.0.1:0");
    EXPECT_TRUE(port.ok());
    grpc_port_ = port.ok() ? *port : 0;
  }
  ~Servers() {
    grpc_.Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
    http_->Stop();
  }

  LoadgenOptions Options(LoadProtocol protocol) const {
    LoadgenOptions o;
    o.protocol = protocol;
    o.model = "sleepy";
    o.target =
        "127.0.0.1:" + std::to_string(protocol == LoadProtocol::kGrpc ? grpc_port_ : http_->port());
    return o;
  }
  SleepyBackend& backend() { return backend_; }

 private:
  static GrpcServerOptions GrpcOptions(const Authenticator* authenticator) {
    GrpcServerOptions options;
    options.authenticator = authenticator;
    return options;
  }

  SleepyBackend backend_;
  MetricsRegistry metrics_;
  std::unique_ptr<HttpServer> http_;
  GrpcServer grpc_;
  int grpc_port_ = 0;
};

RunOptions AtRate(double rate, double duration, double warmup = 0) {
  RunOptions r;
  r.rate = rate;
  r.duration_seconds = duration;
  r.warmup_seconds = warmup;
  r.drain_seconds = 10;
  return r;
}

TEST(PercentileTest, NearestRank) {
  std::vector<double> v;
  for (int i = 1; i <= 100; ++i) v.push_back(i);
  EXPECT_EQ(Percentile(v, 0), 1);
  EXPECT_EQ(Percentile(v, 50), 50);
  EXPECT_EQ(Percentile(v, 90), 90);
  EXPECT_EQ(Percentile(v, 99), 99);
  EXPECT_EQ(Percentile(v, 99.9), 100);
  EXPECT_EQ(Percentile(v, 100), 100);
  const std::vector<double> one = {7};
  EXPECT_EQ(Percentile(one, 50), 7);
  EXPECT_EQ(Percentile(one, 99.9), 7);
  EXPECT_EQ(Percentile(std::vector<double>{}, 50), 0);
  // 1000 values: p99.9 is the 999th, not the maximum.
  std::vector<double> k(1000);
  for (int i = 0; i < 1000; ++i) k[i] = i + 1;
  EXPECT_EQ(Percentile(k, 99.9), 999);
  EXPECT_EQ(Percentile(k, 99), 990);
}

TEST(PercentileTest, SummarizeSortsAndReportsMeanAndMax) {
  std::vector<double> v = {5, 1, 4, 2, 3};
  const LatencySummary s = Summarize(v);
  EXPECT_EQ(s.count, 5);
  EXPECT_DOUBLE_EQ(s.mean_ms, 3);
  EXPECT_EQ(s.p50_ms, 3);
  EXPECT_EQ(s.max_ms, 5);
  EXPECT_TRUE(std::is_sorted(v.begin(), v.end()));
  std::vector<double> none;
  EXPECT_EQ(Summarize(none).count, 0);
}

TEST(LoadgenOptionsTest, ChecksFlags) {
  EXPECT_EQ(ParseRates("100,250.5").value(), (std::vector<double>{100, 250.5}));
  EXPECT_THAT(ParseRates("100,x").status().message(), HasSubstr("'x'"));
  EXPECT_FALSE(ParseRates("100,,200").ok());
  EXPECT_FALSE(ParseRates("-5").ok());
  EXPECT_FALSE(ParseLoadProtocol("udp").ok());

  LoadgenOptions o;
  o.target = "127.0.0.1:1";
  o.model = "m";
  EXPECT_TRUE(o.Validate().ok());
  o.batch = 0;
  EXPECT_THAT(o.Validate().message(), HasSubstr("batch"));
  o.batch = 1;
  o.client_cert = "c.pem";
  EXPECT_THAT(o.Validate().message(), HasSubstr("client_key"));
  o.client_key = "k.pem";
  EXPECT_THAT(o.Validate().message(), HasSubstr("TLS"));

  RunOptions r;
  EXPECT_THAT(r.Validate().message(), HasSubstr("rate"));
  r.rate = 10;
  r.duration_seconds = 0;
  EXPECT_THAT(r.Validate().message(), HasSubstr("duration"));

  o.client_cert.clear();
  o.client_key.clear();
  o.target = "localhost";
  Result<std::unique_ptr<LoadTarget>> t = ConnectLoadTarget(o);
  EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(t.status().message(), HasSubstr("host:port"));
}

// A server that is down fails at connection time with kUnavailable naming the address.
TEST(LoadgenTest, ServerDownIsAClearError) {
  for (LoadProtocol protocol : {LoadProtocol::kGrpc, LoadProtocol::kHttp}) {
    LoadgenOptions o;
    o.protocol = protocol;
    o.model = "sleepy";
    o.target = "127.0.0.1:1";  // nothing listens on port 1
    o.connect_timeout_ms = 2000;
    Result<std::unique_ptr<LoadTarget>> t = ConnectLoadTarget(o);
    ASSERT_FALSE(t.ok());
    EXPECT_EQ(t.status().code(), StatusCode::kUnavailable) << t.status().ToString();
    EXPECT_THAT(t.status().message(), HasSubstr("cannot reach"));
    EXPECT_THAT(t.status().message(), HasSubstr("127.0.0.1:1"));
  }
}

TEST(LoadgenTest, UnknownModelIsNotFound) {
  Servers servers({});
  for (LoadProtocol protocol : {LoadProtocol::kGrpc, LoadProtocol::kHttp}) {
    LoadgenOptions o = servers.Options(protocol);
    o.model = "nope";
    Result<std::unique_ptr<LoadTarget>> t = ConnectLoadTarget(o);
    EXPECT_EQ(t.status().code(), StatusCode::kNotFound) << t.status().ToString();
  }
}

// --token travels as `authorization: Bearer <token>`: a server that requires one refuses the
// metadata query without it and serves every request with it.
TEST(LoadgenTest, TokenIsSentAsBearerCredentials) {
  testing::AuthPrincipals auth;
  auth.Create("loadgen_token");
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  {
    Servers servers({}, auth.authenticator.get());
    for (LoadProtocol protocol : {LoadProtocol::kGrpc, LoadProtocol::kHttp}) {
      SCOPED_TRACE(protocol == LoadProtocol::kGrpc ? "grpc" : "http");
      LoadgenOptions o = servers.Options(protocol);
      Result<std::unique_ptr<LoadTarget>> refused = ConnectLoadTarget(o);
      EXPECT_EQ(refused.status().code(), StatusCode::kUnauthenticated)
          << refused.status().ToString();
      o.token = auth.admin_key;
      Result<std::unique_ptr<LoadTarget>> t = ConnectLoadTarget(o);
      ASSERT_TRUE(t.ok()) << t.status().ToString();
      Result<RateResult> r = RunAtRate(**t, AtRate(50, 0.2));
      ASSERT_TRUE(r.ok());
      EXPECT_EQ(r->ok, 10) << r->first_error;
    }
  }
  auth.Remove();
}

// Every answer takes 20 ms: every latency is at least that, and rate x (warm-up + duration)
// requests reach the server, of which rate x duration are counted.
TEST(LoadgenTest, LatencyIsAtLeastTheBackendTimeAndCountsFollowTheRate) {
  Servers servers({.delay_ms = 20});
  for (LoadProtocol protocol : {LoadProtocol::kGrpc, LoadProtocol::kHttp}) {
    SCOPED_TRACE(protocol == LoadProtocol::kGrpc ? "grpc" : "http");
    const int64_t before = servers.backend().received();
    Result<std::unique_ptr<LoadTarget>> t = ConnectLoadTarget(servers.Options(protocol));
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    Result<RateResult> r = RunAtRate(**t, AtRate(100, 0.8, 0.2));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->sent, 80);
    EXPECT_EQ(r->ok, 80) << r->first_error;
    EXPECT_EQ(r->rejected + r->deadline + r->errors, 0);
    EXPECT_EQ(servers.backend().received() - before, 100);
    ASSERT_EQ(r->ok_latencies_ms.size(), 80u);
    EXPECT_GE(r->ok_latencies_ms.front(), 20.0);
    EXPECT_GE(r->ok_latency.p50_ms, 20.0);
    EXPECT_LT(r->ok_latency.p50_ms, 500.0);
    EXPECT_NEAR(r->goodput, 100, 1e-9);
  }
}

TEST(LoadgenTest, RefusalsAreRejections) {
  Servers servers({.refuse = true});
  for (LoadProtocol protocol : {LoadProtocol::kGrpc, LoadProtocol::kHttp}) {
    SCOPED_TRACE(protocol == LoadProtocol::kGrpc ? "grpc" : "http");
    Result<std::unique_ptr<LoadTarget>> t = ConnectLoadTarget(servers.Options(protocol));
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    Result<RateResult> r = RunAtRate(**t, AtRate(100, 0.3));
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->rejected, 30);
    EXPECT_EQ(r->ok, 0);
    EXPECT_EQ(r->errors, 0) << r->first_error;
    EXPECT_EQ(r->rejected_latency.count, 30);
    EXPECT_GT(r->rejected_latency.p50_ms, 0.0);
    EXPECT_EQ(r->goodput, 0.0);
  }
}

// The gRPC deadline is the intended send time + timeout: a 200 ms answer with a 50 ms timeout is
// a deadline, answered near 50 ms.
TEST(LoadgenTest, GrpcTimeoutBecomesDeadlineOutcomes) {
  Servers servers({.delay_ms = 200});
  LoadgenOptions o = servers.Options(LoadProtocol::kGrpc);
  o.timeout_ms = 50;
  Result<std::unique_ptr<LoadTarget>> t = ConnectLoadTarget(o);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  Result<RateResult> r = RunAtRate(**t, AtRate(50, 0.2));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->deadline, 10);
  EXPECT_EQ(r->ok, 0);
}

// One HTTP connection and a backend whose first answer stalls 300 ms: the requests due during
// the stall wait for the connection. Measured from their intended send times, a third of them
// are over 100 ms late; measured from when they were actually sent, all but the first would look
// fast (the coordinated omission this must not have).
TEST(LoadgenTest, LatencyCountsFromTheIntendedSendTime) {
  Servers servers({.delay_ms = 1, .first_stall_ms = 300});
  LoadgenOptions o = servers.Options(LoadProtocol::kHttp);
  o.http_connections = 1;
  Result<std::unique_ptr<LoadTarget>> t = ConnectLoadTarget(o);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  Result<RateResult> r = RunAtRate(**t, AtRate(50, 0.6));
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->ok, 30) << r->first_error;
  EXPECT_GE(r->ok_latency.max_ms, 300.0);
  const auto slow = std::count_if(r->ok_latencies_ms.begin(), r->ok_latencies_ms.end(),
                                  [](double ms) { return ms >= 100.0; });
  EXPECT_GE(slow, 10);
  EXPECT_GE(r->ok_latency.p90_ms, 100.0);
}

// The same for a sender that falls behind: a transport whose first Send() blocks 200 ms. The
// requests due meanwhile go out late in a burst and are answered at once, yet their latency
// includes the lateness.
class StallingTarget final : public LoadTarget {
 public:
  void Send(int64_t, DoneFn done) override {
    if (sends_++ == 0) std::this_thread::sleep_for(std::chrono::milliseconds(200));
    done(LoadOutcome::kOk, {});
  }
  std::string Describe() const override { return "stalling"; }

 private:
  int sends_ = 0;
};

TEST(LoadgenTest, SenderLagIsCountedInLatency) {
  StallingTarget target;
  Result<RateResult> r = RunAtRate(target, AtRate(100, 0.5));
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->ok, 50);
  EXPECT_GE(r->max_send_lag_ms, 150.0);
  const auto slow = std::count_if(r->ok_latencies_ms.begin(), r->ok_latencies_ms.end(),
                                  [](double ms) { return ms >= 50.0; });
  EXPECT_GE(slow, 10);
}

TEST(LoadgenTest, JsonReportHasEveryPoint) {
  RateResult a;
  a.offered_rate = 10;
  a.ok = 9;
  a.first_error = "bad \xff byte";
  RateResult b;
  b.offered_rate = 20;
  LoadgenOptions o;
  o.model = "m";
  const std::vector<RateResult> results = {a, b};
  const std::string json = RateResultsToJson(o, AtRate(10, 1), results);
  EXPECT_THAT(json, HasSubstr("\"offered_per_s\": 10"));
  EXPECT_THAT(json, HasSubstr("\"offered_per_s\": 20"));
  EXPECT_THAT(json, HasSubstr("\"p999_ms\""));
  EXPECT_THAT(json, HasSubstr("intended send time"));
}

}  // namespace
}  // namespace hml::server

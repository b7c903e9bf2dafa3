// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The in-process transport's device-service calls: Upload() into a real
// IngestStore and ReportTelemetry() into a telemetry function, over an emulated
// 4g link on the real clock.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <future>
#include <memory>
#include <string>

#include "proto/hybridml_device.pb.h"
#include "src/server/serving/model_repository.h"
#include "src/sim/in_process_transport.h"

namespace hml::sim {
namespace {

constexpr int64_t kMs = 1'000'000;

template <typename Answer>
struct Outcome {
  Result<Answer> answer = InternalError("not answered");
  sdk::CallStats stats;
};

template <typename Answer>
Outcome<Answer> Wait(std::future<Outcome<Answer>>& f) {
  if (f.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
    ADD_FAILURE() << "no callback within 10 s";
    return {};
  }
  return f.get();
}

class InProcessServicesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/in_process_services_" + std::to_string(::getpid());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    ingest_ = std::move(*server::IngestStore::Open(dir_ + "/ingest.db"));
    LinkOptions link_options;
    link_options.profile = *NamedLinkProfile("4g");
    link_ = std::move(*LinkEmulator::Create(std::move(link_options)));
  }
  void TearDown() override {
    transport_.reset();
    std::filesystem::remove_all(dir_);
  }

  void Connect(InProcessTransportOptions options) {
    options.backend = &repo_;
    options.link = link_.get();
    options.lost_message_timeout_nanos = 100 * kMs;
    Result<std::unique_ptr<InProcessTransport>> t = InProcessTransport::Create(std::move(options));
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    transport_ = std::move(*t);
  }

  std::future<Outcome<sdk::UploadAnswer>> Upload(const std::string& key, const std::string& bytes,
                                                 sdk::CallId* id = nullptr) {
    auto promise = std::make_shared<std::promise<Outcome<sdk::UploadAnswer>>>();
    auto f = promise->get_future();
    sdk::UploadCall call;
    call.idempotency_key = key;
    call.sealed_batch = bytes;
    call.sample_count = 3;
    const sdk::CallId started = transport_->Upload(
        std::move(call), [promise](Result<sdk::UploadAnswer> a, const sdk::CallStats& s) {
          promise->set_value({std::move(a), s});
        });
    if (id != nullptr) *id = started;
    return f;
  }

  std::string dir_;
  server::ModelRepository repo_;
  std::unique_ptr<server::IngestStore> ingest_;
  std::unique_ptr<LinkEmulator> link_;
  std::unique_ptr<InProcessTransport> transport_;
};

TEST_F(InProcessServicesTest, UploadIsStoredOnceAndARetryIsADuplicate) {
  InProcessTransportOptions options;
  options.ingest = ingest_.get();
  options.device_id = "dev-1";
  Connect(std::move(options));
  const std::string batch(2000, 'x');
  auto first = Upload("batch-1", batch);
  Outcome<sdk::UploadAnswer> out = Wait(first);
  ASSERT_TRUE(out.answer.ok()) << out.answer.status().ToString();
  EXPECT_FALSE(out.answer->duplicate);
  EXPECT_GT(out.stats.bytes_sent, 2000);
  EXPECT_EQ(out.stats.bytes_received,
            0);  // proto3: `duplicate: false` encodes to nothing
  EXPECT_GE(out.stats.end_nanos - out.stats.start_nanos,
            50 * kMs);  // one RTT at least

  auto again = Upload("batch-1", batch);
  out = Wait(again);
  ASSERT_TRUE(out.answer.ok()) << out.answer.status().ToString();
  EXPECT_TRUE(out.answer->duplicate);
  EXPECT_EQ(out.stats.bytes_received, 2);  // field 1, varint 1
  Result<std::vector<server::IngestedBatch>> stored = ingest_->List(0, 10);
  ASSERT_TRUE(stored.ok());
  ASSERT_EQ(stored->size(), 1u);
  EXPECT_EQ((*stored)[0].device_id, "dev-1");
  EXPECT_EQ((*stored)[0].sample_count, 3);
  EXPECT_EQ((*stored)[0].sealed, batch);
}

TEST_F(InProcessServicesTest, ServerDyingAfterTheCommitLosesTheAckAndTheRetryIsStoredOnce) {
  InProcessTransportOptions options;
  options.ingest = ingest_.get();
  int commits = 0;
  options.after_ingest_commit = [&commits] { return ++commits > 1; };  // the first ack is lost
  Connect(std::move(options));
  auto first = Upload("batch-7", "sealed bytes");
  Outcome<sdk::UploadAnswer> out = Wait(first);
  EXPECT_EQ(out.answer.status().code(), StatusCode::kUnavailable) << out.answer.status().ToString();
  EXPECT_EQ(*ingest_->Count(), 1);  // committed before the ack was lost

  auto retry = Upload("batch-7", "sealed bytes");
  out = Wait(retry);
  ASSERT_TRUE(out.answer.ok()) << out.answer.status().ToString();
  EXPECT_TRUE(out.answer->duplicate);
  EXPECT_EQ(*ingest_->Count(), 1);
}

TEST_F(InProcessServicesTest, UploadErrors) {
  Connect({});  // no ingest store
  auto none = Upload("k1", "bytes");
  EXPECT_EQ(Wait(none).answer.status().code(), StatusCode::kUnimplemented);

  InProcessTransportOptions options;
  options.ingest = ingest_.get();
  Connect(std::move(options));
  auto bad = Upload("no spaces allowed", "bytes");
  Outcome<sdk::UploadAnswer> out = Wait(bad);
  EXPECT_EQ(out.answer.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(out.stats.bytes_sent,
            0);  // refused on the device: the radio sent nothing
  auto first = Upload("k2", "one");
  ASSERT_TRUE(Wait(first).answer.ok());
  auto reused = Upload("k2", "other bytes");  // the same key for other bytes: a device bug
  EXPECT_EQ(Wait(reused).answer.status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(*ingest_->Count(), 1);
}

TEST_F(InProcessServicesTest, CancelledUploadAnswersCancelledOnce) {
  InProcessTransportOptions options;
  options.ingest = ingest_.get();
  Connect(std::move(options));
  sdk::CallId id = 0;
  auto f = Upload("k3", "bytes", &id);
  EXPECT_TRUE(transport_->Cancel(id));
  EXPECT_FALSE(transport_->Cancel(id));
  EXPECT_EQ(Wait(f).answer.status().code(), StatusCode::kCancelled);
}

TEST_F(InProcessServicesTest, TelemetryReachesTheServiceWithTheDeviceId) {
  std::promise<std::string> seen;
  InProcessTransportOptions options;
  options.device_id = "dev-9";
  options.telemetry = [&seen](std::string_view device, const hybridml::v1::TelemetryReport& r) {
    if (r.measurements_size() != 2) return InvalidArgumentError("expected 2 measurements");
    seen.set_value(std::string(device) + " " + r.measurements(1).name() + " " +
                   std::to_string(static_cast<int>(r.measurements(1).value())) + " " +
                   r.measurements(1).labels().at("route"));
    return Status::Ok();
  };
  Connect(std::move(options));
  sdk::TelemetryCall call;
  call.timestamp_ms = 1234;
  call.measurements.push_back({"hml_device_requests_total", 5, {{"route", "local"}}});
  call.measurements.push_back({"hml_device_requests_total", 7, {{"route", "cloud"}}});
  auto promise = std::make_shared<std::promise<Outcome<sdk::TelemetryAnswer>>>();
  auto f = promise->get_future();
  transport_->ReportTelemetry(call,
                              [promise](Result<sdk::TelemetryAnswer> a, const sdk::CallStats& s) {
                                promise->set_value({std::move(a), s});
                              });
  Outcome<sdk::TelemetryAnswer> out = Wait(f);
  ASSERT_TRUE(out.answer.ok()) << out.answer.status().ToString();
  EXPECT_EQ(seen.get_future().get(), "dev-9 hml_device_requests_total 7 cloud");
  EXPECT_GT(out.stats.bytes_sent, 40);

  // A refusal by the service comes back as its error; an invalid call never
  // leaves the device.
  call.measurements.pop_back();
  auto p2 = std::make_shared<std::promise<Outcome<sdk::TelemetryAnswer>>>();
  auto f2 = p2->get_future();
  transport_->ReportTelemetry(call, [p2](Result<sdk::TelemetryAnswer> a, const sdk::CallStats& s) {
    p2->set_value({std::move(a), s});
  });
  EXPECT_EQ(Wait(f2).answer.status().code(), StatusCode::kInvalidArgument);
  sdk::TelemetryCall empty;
  auto p3 = std::make_shared<std::promise<Outcome<sdk::TelemetryAnswer>>>();
  auto f3 = p3->get_future();
  transport_->ReportTelemetry(empty, [p3](Result<sdk::TelemetryAnswer> a, const sdk::CallStats& s) {
    p3->set_value({std::move(a), s});
  });
  Outcome<sdk::TelemetryAnswer> refused = Wait(f3);
  EXPECT_EQ(refused.answer.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(refused.stats.bytes_sent, 0);
}

}  // namespace
}  // namespace hml::sim

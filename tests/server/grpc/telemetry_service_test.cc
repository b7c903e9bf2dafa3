// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Telemetry.Report through a real GrpcServer and stub, with a TelemetryAggregator behind the
// device services: a device credential is accepted and its report reaches /metrics; an admin key
// is PERMISSION_DENIED, no or a bad credential UNAUTHENTICATED, and neither changes the metrics;
// a malformed report is INVALID_ARGUMENT naming the measurement.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

#include "proto/hybridml_device.grpc.pb.h"
#include "src/server/grpc/device_services.h"
#include "src/server/grpc/grpc_server.h"
#include "src/server/metrics/metrics.h"
#include "src/server/telemetry/telemetry_aggregator.h"
#include "tests/testing/auth_fixture.h"
#include "tests/testing/serving_fakes.h"

namespace hml::server {
namespace {

namespace v1 = ::hybridml::v1;
using ::testing::HasSubstr;
using ::testing::Not;

v1::TelemetryReport OneRequest(const std::string& model) {
  v1::TelemetryReport report;
  report.set_timestamp_ms(1'700'000'000'000);
  v1::Measurement* m = report.add_measurements();
  m->set_name("hml_device_requests_total");
  m->set_value(7);
  (*m->mutable_labels())["model"] = model;
  (*m->mutable_labels())["version"] = "2";
  (*m->mutable_labels())["route"] = "cascade";
  return report;
}

class TelemetryServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fixture_.Create("telemetry_service_test");
    ASSERT_FALSE(HasFatalFailure());
    std::filesystem::create_directories(fixture_.dir + "/repo");
    MetricsRegistryOptions metrics_options;
    metrics_options.process_metrics = false;
    metrics_ = std::make_unique<MetricsRegistry>(metrics_options);
    auto aggregator = TelemetryAggregator::Create(*metrics_);
    ASSERT_TRUE(aggregator.ok()) << aggregator.status().ToString();
    aggregator_ = std::move(*aggregator);

    DeviceServicesOptions options;
    options.repo_dir = fixture_.dir + "/repo";
    options.telemetry = aggregator_.get();
    auto services = DeviceServices::Create(fixture_.authenticator.get(), options);
    ASSERT_TRUE(services.ok()) << services.status().ToString();
    services_ = std::move(*services);

    BatchingOptions batching;
    batching.max_queue_delay_micros = 0;
    backend_ = std::make_unique<testing::FakeCnnBackend>(batching);
    GrpcServerOptions grpc_options;
    grpc_options.authenticator = fixture_.authenticator.get();
    grpc_options.extra_services = services_->services();
    server_ = std::make_unique<GrpcServer>(backend_.get(), grpc_options);
    Result<int> port = server_->Start("127.0.0.1:0");
    ASSERT_TRUE(port.ok()) << port.status().ToString();
    stub_ = v1::Telemetry::NewStub(grpc::CreateChannel("127.0.0.1:" + std::to_string(*port),
                                                       grpc::InsecureChannelCredentials()));
  }

  void TearDown() override {
    server_.reset();
    backend_.reset();
    services_.reset();
    aggregator_.reset();
    fixture_.Remove();
  }

  // Calls Report with `token` as the bearer credential ("" = no authorization metadata).
  grpc::Status Report(const std::string& token, const v1::TelemetryReport& report) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
    v1::TelemetryAck ack;
    return stub_->Report(&context, report, &ack);
  }

  testing::AuthPrincipals fixture_;
  std::unique_ptr<MetricsRegistry> metrics_;
  std::unique_ptr<TelemetryAggregator> aggregator_;
  std::unique_ptr<DeviceServices> services_;
  std::unique_ptr<testing::FakeCnnBackend> backend_;
  std::unique_ptr<GrpcServer> server_;
  std::unique_ptr<v1::Telemetry::Stub> stub_;
};

TEST_F(TelemetryServiceTest, DeviceCredentialIsAcceptedAndTheReportReachesTheMetrics) {
  grpc::Status status = Report(fixture_.device_a, OneRequest("m"));
  ASSERT_TRUE(status.ok()) << status.error_message();
  const std::string text = metrics_->Expose();
  EXPECT_THAT(text,
              HasSubstr(R"(hml_device_requests_total{model="m",version="2",route="cascade"} 7)"));
  EXPECT_THAT(text, HasSubstr("hml_device_reporting_devices 1\n"));
  ASSERT_TRUE(Report(fixture_.device_b, OneRequest("m")).ok());
  EXPECT_THAT(metrics_->Expose(),
              HasSubstr(R"(hml_device_requests_total{model="m",version="2",route="cascade"} 14)"));
  EXPECT_THAT(metrics_->Expose(), HasSubstr("hml_device_reporting_devices 2\n"));
}

TEST_F(TelemetryServiceTest, AdminIsRefusedAndBadCredentialsAreUnauthenticated) {
  grpc::Status admin = Report(fixture_.admin_key, OneRequest("admin-model"));
  EXPECT_EQ(admin.error_code(), grpc::StatusCode::PERMISSION_DENIED) << admin.error_message();
  EXPECT_THAT(admin.error_message(), HasSubstr("only devices report telemetry"));
  EXPECT_EQ(Report("", OneRequest("anon-model")).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Report(fixture_.revoked, OneRequest("anon-model")).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Report(fixture_.unknown, OneRequest("anon-model")).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Report(fixture_.enrollment_secret, OneRequest("anon-model")).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  const std::string text = metrics_->Expose();
  EXPECT_THAT(text, Not(HasSubstr("admin-model")));
  EXPECT_THAT(text, Not(HasSubstr("anon-model")));
  EXPECT_THAT(text, HasSubstr("hml_device_reporting_devices 0\n"));
}

TEST_F(TelemetryServiceTest, MalformedReportIsInvalidArgumentNamingTheMeasurement) {
  v1::TelemetryReport report = OneRequest("m");
  report.mutable_measurements(0)->set_name("hml_device_secret_total");
  grpc::Status status = Report(fixture_.device_a, report);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("measurement 0 'hml_device_secret_total"));
  EXPECT_THAT(status.error_message(), HasSubstr(fixture_.device_a_id));
  EXPECT_THAT(metrics_->Expose(), Not(HasSubstr("model=\"m\"")));
}

}  // namespace
}  // namespace hml::server

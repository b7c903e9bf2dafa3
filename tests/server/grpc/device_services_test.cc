// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The gRPC auth matrix: one real GrpcServer serving the v2 inference service (over
// testing::FakeCnnBackend) and the device services (DeviceServices over a real auth.db and a
// repo/ directory), called through real stubs. Every device RPC and ModelInfer is called with no
// credential, a malformed one, an unknown one, a revoked device's, an enrollment secret, another
// device's, an admin key and the device's own, and each answer's code is checked; refused calls
// are shown to change nothing (RevokeDevice by another device leaves the target active, a failed
// Enroll creates no device, a refused ModelInfer never reaches the batcher). Also the registry
// reads: windows, traversal refused, NOT_FOUND.
#include "src/server/grpc/device_services.h"

#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "proto/hybridml_device.grpc.pb.h"
#include "proto/inference.grpc.pb.h"
#include "src/server/grpc/grpc_server.h"
#include "src/server/protocol/v2_grpc_codec.h"
#include "tests/testing/auth_fixture.h"
#include "tests/testing/models.h"
#include "tests/testing/serving_fakes.h"

namespace hml::server {
namespace {

namespace v1 = ::hybridml::v1;
using ::testing::HasSubstr;

// The callers of the matrix, by name.
enum class Caller {
  kNone,
  kMalformed,
  kUnknown,
  kRevoked,
  kEnrollmentSecret,
  kOther,
  kAdmin,
  kOwn
};

const char* CallerName(Caller caller) {
  switch (caller) {
    case Caller::kNone:
      return "no credential";
    case Caller::kMalformed:
      return "malformed";
    case Caller::kUnknown:
      return "unknown";
    case Caller::kRevoked:
      return "revoked device";
    case Caller::kEnrollmentSecret:
      return "enrollment secret";
    case Caller::kOther:
      return "other device";
    case Caller::kAdmin:
      return "admin";
    case Caller::kOwn:
      return "own device";
  }
  return "?";
}

constexpr Caller kAllCallers[] = {Caller::kNone,
                                  Caller::kMalformed,
                                  Caller::kUnknown,
                                  Caller::kRevoked,
                                  Caller::kEnrollmentSecret,
                                  Caller::kOther,
                                  Caller::kAdmin,
                                  Caller::kOwn};

// The five callers that must be UNAUTHENTICATED everywhere.
bool IsUnauthenticated(Caller caller) {
  return caller == Caller::kNone || caller == Caller::kMalformed || caller == Caller::kUnknown ||
         caller == Caller::kRevoked || caller == Caller::kEnrollmentSecret;
}

constexpr char kTargetBytes[] = "0123456789abcdefghij";  // 20 bytes

class DeviceServicesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fixture_.Create("device_services_test");
    ASSERT_FALSE(HasFatalFailure());
    repo_ = fixture_.dir + "/repo";
    std::filesystem::create_directories(repo_ + "/targets/m");
    std::ofstream(repo_ + "/root.json") << R"({"signed":{}})";
    std::ofstream(repo_ + "/targets/m/1.onnx") << kTargetBytes;
    std::ofstream(fixture_.dir + "/secret.json") << "outside repo/";

    DeviceServicesOptions options;
    options.repo_dir = repo_;
    options.max_chunk_bytes = 8;
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
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(*port),
                                   grpc::InsecureChannelCredentials());
    enrollment_ = v1::DeviceEnrollment::NewStub(channel_);
    registry_ = v1::Registry::NewStub(channel_);
    devices_ = v1::Devices::NewStub(channel_);
    ingest_ = v1::Ingest::NewStub(channel_);
    telemetry_ = v1::Telemetry::NewStub(channel_);
    federated_ = v1::FederatedLearning::NewStub(channel_);
    inference_ = inference::GRPCInferenceService::NewStub(channel_);
  }

  void TearDown() override {
    server_.reset();
    backend_.reset();
    services_.reset();
    fixture_.Remove();
  }

  // A client context carrying `caller`'s credential (the device under test is A).
  std::unique_ptr<grpc::ClientContext> Context(Caller caller) {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    std::string token;
    switch (caller) {
      case Caller::kNone:
        return context;
      case Caller::kMalformed:
        context->AddMetadata("authorization", "Bearer not-a-token");
        return context;
      case Caller::kUnknown:
        token = fixture_.unknown;
        break;
      case Caller::kRevoked:
        token = fixture_.revoked;
        break;
      case Caller::kEnrollmentSecret:
        token = fixture_.enrollment_secret;
        break;
      case Caller::kOther:
        token = fixture_.device_b;
        break;
      case Caller::kAdmin:
        token = fixture_.admin_key;
        break;
      case Caller::kOwn:
        token = fixture_.device_a;
        break;
    }
    context->AddMetadata("authorization", "Bearer " + token);
    return context;
  }

  // Calls `rpc` once per caller and checks each code: UNAUTHENTICATED for the five bad
  // credentials, `other`, `admin` and `own` for the three valid ones.
  void ExpectMatrix(const std::string& rpc_name,
                    const std::function<grpc::Status(grpc::ClientContext*)>& rpc,
                    grpc::StatusCode other, grpc::StatusCode admin, grpc::StatusCode own) {
    for (Caller caller : kAllCallers) {
      const grpc::StatusCode want = IsUnauthenticated(caller)  ? grpc::StatusCode::UNAUTHENTICATED
                                    : caller == Caller::kOther ? other
                                    : caller == Caller::kAdmin ? admin
                                                               : own;
      grpc::Status status = rpc(Context(caller).get());
      EXPECT_EQ(status.error_code(), want)
          << rpc_name << " by " << CallerName(caller) << ": " << status.error_message();
      if (IsUnauthenticated(caller)) {
        // The refusal never echoes a secret back.
        EXPECT_THAT(status.error_message(), ::testing::Not(HasSubstr(fixture_.enrollment_secret)));
      }
    }
  }

  inference::ModelInferRequest InferMessage() {
    V2InferRequest request;
    request.model_name = testing::kFakeCnnModel;
    request.inputs.push_back({"image", testing::RandomTensor({1, 1, 28, 28}, 1, 1.0f)});
    inference::ModelInferRequest message;
    EXPECT_TRUE(EncodeModelInferRequest(request, V2TensorEncoding::kRaw, &message).ok());
    return message;
  }

  testing::AuthPrincipals fixture_;
  std::string repo_;
  std::unique_ptr<DeviceServices> services_;
  std::unique_ptr<testing::FakeCnnBackend> backend_;
  std::unique_ptr<GrpcServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::DeviceEnrollment::Stub> enrollment_;
  std::unique_ptr<v1::Registry::Stub> registry_;
  std::unique_ptr<v1::Devices::Stub> devices_;
  std::unique_ptr<v1::Ingest::Stub> ingest_;
  std::unique_ptr<v1::Telemetry::Stub> telemetry_;
  std::unique_ptr<v1::FederatedLearning::Stub> federated_;
  std::unique_ptr<inference::GRPCInferenceService::Stub> inference_;
};

using Code = grpc::StatusCode;

TEST_F(DeviceServicesTest, GetDeviceMatrix) {
  ExpectMatrix(
      "GetDevice",
      [&](grpc::ClientContext* context) {
        v1::GetDeviceRequest request;
        request.set_device_id(fixture_.device_a_id);
        v1::Device device;
        grpc::Status status = devices_->GetDevice(context, request, &device);
        if (status.ok()) {
          EXPECT_EQ(device.device_id(), fixture_.device_a_id);
          EXPECT_EQ(device.device_name(), "a");
          EXPECT_FALSE(device.revoked());
        }
        return status;
      },
      Code::PERMISSION_DENIED, Code::OK, Code::OK);
}

TEST_F(DeviceServicesTest, ListDevicesMatrix) {
  ExpectMatrix(
      "ListDevices",
      [&](grpc::ClientContext* context) {
        v1::ListDevicesResponse response;
        grpc::Status status = devices_->ListDevices(context, v1::ListDevicesRequest(), &response);
        if (status.ok()) {
          EXPECT_EQ(response.devices_size(), 3);
        }
        return status;
      },
      Code::PERMISSION_DENIED, Code::OK, Code::PERMISSION_DENIED);
}

TEST_F(DeviceServicesTest, RevokeDeviceMatrixAndRefusalsChangeNothing) {
  // Every caller but admin and own is refused; each refusal must leave A active, so A is
  // checked after every call. The admin revokes B (so that A's own revoke still has a target)...
  for (Caller caller : kAllCallers) {
    if (caller == Caller::kAdmin || caller == Caller::kOwn) continue;
    v1::RevokeDeviceRequest request;
    request.set_device_id(fixture_.device_a_id);
    v1::Device device;
    grpc::Status status = devices_->RevokeDevice(Context(caller).get(), request, &device);
    EXPECT_EQ(status.error_code(),
              caller == Caller::kOther ? Code::PERMISSION_DENIED : Code::UNAUTHENTICATED)
        << CallerName(caller) << ": " << status.error_message();
    Result<DeviceInfo> a = fixture_.store->GetDevice(fixture_.device_a_id);
    ASSERT_TRUE(a.ok());
    EXPECT_FALSE(a->revoked) << "RevokeDevice by " << CallerName(caller) << " revoked A";
  }
  {
    v1::RevokeDeviceRequest request;
    request.set_device_id(fixture_.device_b_id);
    v1::Device device;
    grpc::Status status = devices_->RevokeDevice(Context(Caller::kAdmin).get(), request, &device);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_TRUE(device.revoked());
    EXPECT_TRUE(fixture_.store->GetDevice(fixture_.device_b_id)->revoked);
  }
  // ...and A retires its own credential, which is refused from the next call on.
  v1::RevokeDeviceRequest request;
  request.set_device_id(fixture_.device_a_id);
  v1::Device device;
  grpc::Status status = devices_->RevokeDevice(Context(Caller::kOwn).get(), request, &device);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(device.revoked());
  v1::GetDeviceRequest get;
  get.set_device_id(fixture_.device_a_id);
  status = devices_->GetDevice(Context(Caller::kOwn).get(), get, &device);
  EXPECT_EQ(status.error_code(), Code::UNAUTHENTICATED);
  EXPECT_THAT(status.error_message(), HasSubstr("revoked"));
  // Unknown devices are NOT_FOUND for an admin.
  request.set_device_id("0000000000000000");
  EXPECT_EQ(devices_->RevokeDevice(Context(Caller::kAdmin).get(), request, &device).error_code(),
            Code::NOT_FOUND);
}

TEST_F(DeviceServicesTest, RegistryMatrix) {
  ExpectMatrix(
      "GetMetadata",
      [&](grpc::ClientContext* context) {
        v1::GetMetadataRequest request;
        request.set_name("root.json");
        v1::GetMetadataResponse response;
        grpc::Status status = registry_->GetMetadata(context, request, &response);
        if (status.ok()) {
          EXPECT_EQ(response.content(), R"({"signed":{}})");
        }
        return status;
      },
      Code::OK, Code::OK, Code::OK);
  ExpectMatrix(
      "GetFile",
      [&](grpc::ClientContext* context) {
        v1::GetFileRequest request;
        request.set_name("m/1.onnx");
        v1::GetFileResponse response;
        return registry_->GetFile(context, request, &response);
      },
      Code::OK, Code::OK, Code::OK);
}

// Ingest with a store: devices upload under their own id, admins may not; a batch committed
// whose acknowledgement is lost is stored once when the device retries with the same key.
TEST_F(DeviceServicesTest, IngestStoresEachBatchOnceAcrossALostAcknowledgement) {
  auto store = IngestStore::Open(fixture_.dir + "/ingest.db");
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  int drop_acks = 0;
  DeviceServicesOptions options;
  options.repo_dir = repo_;
  options.ingest = store->get();
  options.after_ingest_commit = [&] { return drop_acks-- <= 0; };
  auto services = DeviceServices::Create(fixture_.authenticator.get(), options);
  ASSERT_TRUE(services.ok());
  GrpcServerOptions grpc_options;
  grpc_options.authenticator = fixture_.authenticator.get();
  grpc_options.extra_services = (*services)->services();
  GrpcServer server(backend_.get(), grpc_options);
  Result<int> port = server.Start("127.0.0.1:0");
  ASSERT_TRUE(port.ok());
  auto ingest = v1::Ingest::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string(*port), grpc::InsecureChannelCredentials()));
  int64_t key = 0;
  const auto upload = [&](grpc::ClientContext* context, const std::string& idempotency_key,
                          const std::string& bytes, v1::UploadBatchResponse* response) {
    v1::UploadBatchRequest request;
    request.set_idempotency_key(idempotency_key);
    request.set_sealed_batch(bytes);
    request.set_sample_count(3);
    return ingest->UploadBatch(context, request, response);
  };

  // Every valid device uploads its own batches; an admin key has none to upload.
  ExpectMatrix(
      "UploadBatch",
      [&](grpc::ClientContext* context) {
        v1::UploadBatchResponse response;
        return upload(context, "matrix-" + std::to_string(++key), "sealed", &response);
      },
      Code::OK, Code::PERMISSION_DENIED, Code::OK);
  const int64_t after_matrix = *(*store)->Count();
  EXPECT_EQ(after_matrix, 2);  // device A's and device B's, nothing from refused callers

  // The server commits, then the acknowledgement is lost; the retry is recognised.
  drop_acks = 1;
  v1::UploadBatchResponse response;
  grpc::Status lost = upload(Context(Caller::kOwn).get(), "batch-1", "payload", &response);
  EXPECT_EQ(lost.error_code(), Code::UNAVAILABLE) << lost.error_message();
  grpc::Status retried = upload(Context(Caller::kOwn).get(), "batch-1", "payload", &response);
  ASSERT_TRUE(retried.ok()) << retried.error_message();
  EXPECT_TRUE(response.duplicate());
  EXPECT_EQ(*(*store)->Count(), after_matrix + 1);
  auto stored = (*store)->List(0, 100);
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->back().idempotency_key, "batch-1");
  EXPECT_EQ(stored->back().sealed, "payload");
  EXPECT_EQ(stored->back().sample_count, 3);

  // The same key from another device is that device's own batch.
  ASSERT_TRUE(upload(Context(Caller::kOther).get(), "batch-1", "payload", &response).ok());
  EXPECT_FALSE(response.duplicate());
  // A key reused for other bytes is a device bug: refused, nothing stored.
  grpc::Status reused = upload(Context(Caller::kOwn).get(), "batch-1", "other", &response);
  EXPECT_EQ(reused.error_code(), Code::ALREADY_EXISTS) << reused.error_message();
  grpc::Status bad_key = upload(Context(Caller::kOwn).get(), "no spaces", "x", &response);
  EXPECT_EQ(bad_key.error_code(), Code::INVALID_ARGUMENT) << bad_key.error_message();
  EXPECT_EQ(*(*store)->Count(), after_matrix + 2);
  server.Shutdown(std::chrono::system_clock::now());
}

TEST_F(DeviceServicesTest, SeamsAuthenticateThenAnswerUnimplemented) {
  const auto expect_seam = [&](const std::string& name,
                               const std::function<grpc::Status(grpc::ClientContext*)>& rpc) {
    ExpectMatrix(name, rpc, Code::UNIMPLEMENTED, Code::UNIMPLEMENTED, Code::UNIMPLEMENTED);
    grpc::Status status = rpc(Context(Caller::kOwn).get());
    EXPECT_THAT(status.error_message(), HasSubstr("issue")) << name;
  };
  expect_seam("UploadBatch", [&](grpc::ClientContext* context) {
    v1::UploadBatchResponse response;
    return ingest_->UploadBatch(context, v1::UploadBatchRequest(), &response);
  });
  expect_seam("Report", [&](grpc::ClientContext* context) {
    v1::TelemetryAck response;
    return telemetry_->Report(context, v1::TelemetryReport(), &response);
  });
  expect_seam("JoinRound", [&](grpc::ClientContext* context) {
    v1::JoinRoundResponse response;
    return federated_->JoinRound(context, v1::JoinRoundRequest(), &response);
  });
  expect_seam("SubmitUpdate", [&](grpc::ClientContext* context) {
    v1::SubmitUpdateResponse response;
    return federated_->SubmitUpdate(context, v1::SubmitUpdateRequest(), &response);
  });
}

TEST_F(DeviceServicesTest, InferenceMatrixRefusalsNeverReachTheBatcher) {
  const inference::ModelInferRequest message = InferMessage();
  for (Caller caller : kAllCallers) {
    if (!IsUnauthenticated(caller)) continue;
    inference::ModelInferResponse response;
    grpc::Status status = inference_->ModelInfer(Context(caller).get(), message, &response);
    EXPECT_EQ(status.error_code(), Code::UNAUTHENTICATED) << CallerName(caller);
  }
  EXPECT_EQ(backend_->batcher().stats().requests, 0) << "a refused call was queued";
  ExpectMatrix(
      "ModelInfer",
      [&](grpc::ClientContext* context) {
        inference::ModelInferResponse response;
        return inference_->ModelInfer(context, message, &response);
      },
      Code::OK, Code::OK, Code::OK);
  ExpectMatrix(
      "ModelMetadata",
      [&](grpc::ClientContext* context) {
        inference::ModelMetadataRequest request;
        request.set_name(testing::kFakeCnnModel);
        inference::ModelMetadataResponse response;
        return inference_->ModelMetadata(context, request, &response);
      },
      Code::OK, Code::OK, Code::OK);
  ExpectMatrix(
      "ModelReady",
      [&](grpc::ClientContext* context) {
        inference::ModelReadyRequest request;
        request.set_name(testing::kFakeCnnModel);
        inference::ModelReadyResponse response;
        return inference_->ModelReady(context, request, &response);
      },
      Code::OK, Code::OK, Code::OK);
  // Liveness and readiness stay open.
  inference::ServerLiveResponse live;
  EXPECT_TRUE(
      inference_->ServerLive(Context(Caller::kNone).get(), inference::ServerLiveRequest(), &live)
          .ok());
  EXPECT_TRUE(live.live());
  inference::ServerReadyResponse ready;
  EXPECT_TRUE(
      inference_->ServerReady(Context(Caller::kNone).get(), inference::ServerReadyRequest(), &ready)
          .ok());
}

TEST_F(DeviceServicesTest, EnrollCreatesADeviceOnlyForAValidSecret) {
  Result<IssuedToken> old =
      fixture_.store->CreateCredential(CredentialKind::kEnrollmentSecret, "o");
  ASSERT_TRUE(old.ok());
  ASSERT_TRUE(fixture_.store->RevokeCredential(CredentialKind::kEnrollmentSecret, old->id).ok());
  const std::string wrong = fixture_.enrollment_secret.substr(0, 22) + std::string(64, '0');
  for (const std::string& secret :
       {std::string(), std::string("nope"), wrong, old->token, fixture_.admin_key}) {
    v1::EnrollRequest request;
    request.set_enrollment_secret(secret);
    request.set_device_name("intruder");
    v1::EnrollResponse response;
    grpc::Status status = enrollment_->Enroll(Context(Caller::kNone).get(), request, &response);
    EXPECT_EQ(status.error_code(), Code::UNAUTHENTICATED) << status.error_message();
    EXPECT_TRUE(response.device_credential().empty());
  }
  EXPECT_EQ(fixture_.store->ListDevices()->size(), 3u) << "a refused Enroll created a device";

  v1::EnrollRequest request;
  request.set_enrollment_secret(fixture_.enrollment_secret);
  request.set_device_name("line-3-camera");
  request.set_platform("armv8 linux 6.1");
  v1::EnrollResponse response;
  grpc::Status status = enrollment_->Enroll(Context(Caller::kNone).get(), request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(fixture_.store->ListDevices()->size(), 4u);
  EXPECT_TRUE(response.device_credential().starts_with("hmld_" + response.device_id() + "_"));
  // The new credential reads its own record and nobody else's.
  auto context = std::make_unique<grpc::ClientContext>();
  context->AddMetadata("authorization", "Bearer " + response.device_credential());
  v1::GetDeviceRequest get;
  get.set_device_id(response.device_id());
  v1::Device device;
  status = devices_->GetDevice(context.get(), get, &device);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(device.device_name(), "line-3-camera");
  EXPECT_EQ(device.platform(), "armv8 linux 6.1");
  context = std::make_unique<grpc::ClientContext>();
  context->AddMetadata("authorization", "Bearer " + response.device_credential());
  get.set_device_id(fixture_.device_a_id);
  EXPECT_EQ(devices_->GetDevice(context.get(), get, &device).error_code(), Code::PERMISSION_DENIED);
}

TEST_F(DeviceServicesTest, RegistryReadsWindowsAndRefusesTraversal) {
  const auto get_file = [&](const std::string& name, uint64_t offset, uint64_t limit,
                            v1::GetFileResponse* response) {
    v1::GetFileRequest request;
    request.set_name(name);
    request.set_offset(offset);
    request.set_limit(limit);
    return registry_->GetFile(Context(Caller::kOwn).get(), request, response);
  };
  v1::GetFileResponse response;
  ASSERT_TRUE(get_file("m/1.onnx", 3, 4, &response).ok());
  EXPECT_EQ(response.data(), "3456");
  EXPECT_EQ(response.offset(), 3u);
  EXPECT_EQ(response.total_size(), 20u);
  // limit 0 and limits above max_chunk_bytes (8) get 8 bytes; the last window is short.
  ASSERT_TRUE(get_file("m/1.onnx", 0, 0, &response).ok());
  EXPECT_EQ(response.data(), "01234567");
  ASSERT_TRUE(get_file("m/1.onnx", 8, 100, &response).ok());
  EXPECT_EQ(response.data(), "89abcdef");
  ASSERT_TRUE(get_file("m/1.onnx", 16, 0, &response).ok());
  EXPECT_EQ(response.data(), "ghij");
  ASSERT_TRUE(get_file("m/1.onnx", 20, 0, &response).ok());
  EXPECT_EQ(response.data(), "");
  EXPECT_EQ(get_file("m/1.onnx", 21, 0, &response).error_code(), Code::OUT_OF_RANGE);
  EXPECT_EQ(get_file("m/2.onnx", 0, 0, &response).error_code(), Code::NOT_FOUND);
  EXPECT_EQ(get_file("m", 0, 0, &response).error_code(), Code::NOT_FOUND);  // a directory
  for (const char* bad :
       {"../root.json", "../../secret.json", "/etc/passwd", "m/../../auth.db", "m//1.onnx", ""}) {
    EXPECT_EQ(get_file(bad, 0, 0, &response).error_code(), Code::INVALID_ARGUMENT) << bad;
  }

  const auto get_metadata = [&](const std::string& name, v1::GetMetadataResponse* out) {
    v1::GetMetadataRequest request;
    request.set_name(name);
    return registry_->GetMetadata(Context(Caller::kOwn).get(), request, out);
  };
  v1::GetMetadataResponse metadata;
  EXPECT_EQ(get_metadata("timestamp.json", &metadata).error_code(), Code::NOT_FOUND);
  for (const char* bad : {"../secret.json", "targets/m/1.onnx", "auth.db", "..", "", "a/b.json"}) {
    EXPECT_EQ(get_metadata(bad, &metadata).error_code(), Code::INVALID_ARGUMENT) << bad;
  }
}

TEST(DeviceServicesOptionsTest, ValidateNamesTheField) {
  DeviceServicesOptions options;
  EXPECT_THAT(std::string(options.Validate().message()), HasSubstr("repo_dir"));
  options.repo_dir = "/tmp";
  EXPECT_TRUE(options.Validate().ok());
  options.max_chunk_bytes = 0;
  EXPECT_THAT(std::string(options.Validate().message()), HasSubstr("max_chunk_bytes"));
  options.max_chunk_bytes = 1;
  options.max_metadata_bytes = int64_t{64} << 20;
  EXPECT_THAT(std::string(options.Validate().message()), HasSubstr("max_metadata_bytes"));
  EXPECT_EQ(DeviceServices::Create(nullptr, {}).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace hml::server

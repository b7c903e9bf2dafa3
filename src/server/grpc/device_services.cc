// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/server/grpc/device_services.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string>
#include <utility>

#include "hml/env.h"
#include "proto/hybridml_device.grpc.pb.h"
#include "proto/hybridml_device.pb.h"
#include "src/base/errno_status.h"
#include "src/ota/metadata.h"
#include "src/server/grpc/grpc_auth.h"
#include "src/server/telemetry/telemetry_aggregator.h"

namespace hml::server {
namespace {

namespace v1 = ::hybridml::v1;

constexpr uint64_t kMaxWindowLimit = uint64_t{3} << 20;

void FillDevice(const DeviceInfo& info, v1::Device* out) {
  out->set_device_id(info.id);
  out->set_device_name(info.name);
  out->set_platform(info.platform);
  out->set_enrollment_secret_id(info.enrollment_secret_id);
  out->set_created_unix(info.created_unix);
  out->set_revoked(info.revoked);
  out->set_revoked_unix(info.revoked ? info.revoked_unix : 0);
}

// A metadata file name: one segment of [A-Za-z0-9._-] ending in ".json".
Status ValidateMetadataName(std::string_view name) {
  if (Status valid = ota::ValidateTargetName(name); !valid.ok()) {
    return InvalidArgumentError("metadata name '" + std::string(name) +
                                "': " + std::string(valid.message()));
  }
  if (name.find('/') != std::string_view::npos || !name.ends_with(".json")) {
    return InvalidArgumentError("metadata name '" + std::string(name) +
                                "' is not a role file name like 'timestamp.json' or "
                                "'3.root.json'");
  }
  return Status::Ok();
}

// Closes a file descriptor when it goes out of scope.
class ScopedFd {
 public:
  explicit ScopedFd(int fd) : fd_(fd) {}
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;
  ~ScopedFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

// Reads [offset, offset + limit) of the regular file `path` into `response`. `name` is the
// target's name for messages. kNotFound for a missing file or one that is not a regular file;
// kOutOfRange for an offset past the end.
Status ReadWindow(const std::string& path, std::string_view name, uint64_t offset, uint64_t limit,
                  v1::GetFileResponse* response) {
  ScopedFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    const int err = errno;
    if (err == ENOENT || err == ENOTDIR) {
      return NotFoundError("target '" + std::string(name) + "' does not exist");
    }
    return ErrnoStatus(err, "open target '" + std::string(name) + "'");
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0)
    return ErrnoStatus(errno, "stat target '" + std::string(name) + "'");
  if (!S_ISREG(st.st_mode)) {
    return NotFoundError("target '" + std::string(name) + "' does not exist");
  }
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (offset > size) {
    return OutOfRangeError("target '" + std::string(name) + "': offset " + std::to_string(offset) +
                           " is past its end (" + std::to_string(size) + " bytes)");
  }
  const uint64_t length = std::min(limit, size - offset);
  std::string* data = response->mutable_data();
  data->resize(length);
  uint64_t done = 0;
  while (done < length) {
    const ssize_t n =
        ::pread(fd.get(), data->data() + done, length - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, "read target '" + std::string(name) + "'");
    if (n == 0) break;  // the file shrank: return what there is
    done += static_cast<uint64_t>(n);
  }
  data->resize(done);
  response->set_offset(offset);
  response->set_total_size(size);
  return Status::Ok();
}

class EnrollmentService final : public v1::DeviceEnrollment::Service {
 public:
  explicit EnrollmentService(const Authenticator* auth) : auth_(auth) {}

  // The enrollment secret is the credential here, so no authorization metadata is needed.
  grpc::Status Enroll(grpc::ServerContext* /*context*/, const v1::EnrollRequest* request,
                      v1::EnrollResponse* response) override {
    Result<EnrolledDevice> enrolled = auth_->store().Enroll(
        request->enrollment_secret(), request->device_name(), request->platform());
    if (!enrolled.ok()) return ToGrpcStatus(enrolled.status());
    response->set_device_id(enrolled->device.id);
    response->set_device_credential(enrolled->credential);
    return grpc::Status::OK;
  }

 private:
  const Authenticator* const auth_;
};

class RegistryService final : public v1::Registry::Service {
 public:
  RegistryService(const Authenticator* auth, const DeviceServicesOptions* options)
      : auth_(auth), options_(options) {}

  grpc::Status GetMetadata(grpc::ServerContext* context, const v1::GetMetadataRequest* request,
                           v1::GetMetadataResponse* response) override {
    Result<Principal> caller = AuthenticateCall(*auth_, *context);
    if (!caller.ok()) return ToGrpcStatus(caller.status());
    if (Status valid = ValidateMetadataName(request->name()); !valid.ok()) {
      return ToGrpcStatus(valid);
    }
    Result<std::string> content = DefaultEnv()->ReadFile(options_->repo_dir + "/" + request->name(),
                                                         options_->max_metadata_bytes);
    if (!content.ok()) {
      if (content.status().code() == StatusCode::kNotFound) {
        return ToGrpcStatus(
            NotFoundError("metadata file '" + request->name() + "' does not exist"));
      }
      return ToGrpcStatus(content.status());
    }
    *response->mutable_content() = std::move(*content);
    return grpc::Status::OK;
  }

  grpc::Status GetFile(grpc::ServerContext* context, const v1::GetFileRequest* request,
                       v1::GetFileResponse* response) override {
    Result<Principal> caller = AuthenticateCall(*auth_, *context);
    if (!caller.ok()) return ToGrpcStatus(caller.status());
    if (Status valid = ota::ValidateTargetName(request->name()); !valid.ok()) {
      return ToGrpcStatus(InvalidArgumentError("target name '" + request->name() +
                                               "': " + std::string(valid.message())));
    }
    const uint64_t limit = request->limit() == 0
                               ? options_->max_chunk_bytes
                               : std::min(request->limit(), options_->max_chunk_bytes);
    return ToGrpcStatus(ReadWindow(options_->repo_dir + "/targets/" + request->name(),
                                   request->name(), request->offset(), limit, response));
  }

 private:
  const Authenticator* const auth_;
  const DeviceServicesOptions* const options_;
};

class DevicesService final : public v1::Devices::Service {
 public:
  explicit DevicesService(const Authenticator* auth) : auth_(auth) {}

  grpc::Status GetDevice(grpc::ServerContext* context, const v1::GetDeviceRequest* request,
                         v1::Device* response) override {
    Result<Principal> caller = AuthenticateCall(*auth_, *context);
    if (!caller.ok()) return ToGrpcStatus(caller.status());
    if (Status allowed = Authenticator::RequireAdminOrDevice(*caller, request->device_id(),
                                                             "GetDevice " + request->device_id());
        !allowed.ok()) {
      return ToGrpcStatus(allowed);
    }
    Result<DeviceInfo> device = auth_->store().GetDevice(request->device_id());
    if (!device.ok()) return ToGrpcStatus(device.status());
    FillDevice(*device, response);
    return grpc::Status::OK;
  }

  grpc::Status RevokeDevice(grpc::ServerContext* context, const v1::RevokeDeviceRequest* request,
                            v1::Device* response) override {
    Result<Principal> caller = AuthenticateCall(*auth_, *context);
    if (!caller.ok()) return ToGrpcStatus(caller.status());
    if (Status allowed = Authenticator::RequireAdminOrDevice(
            *caller, request->device_id(), "RevokeDevice " + request->device_id());
        !allowed.ok()) {
      return ToGrpcStatus(allowed);
    }
    if (Status revoked = auth_->store().RevokeDevice(request->device_id()); !revoked.ok()) {
      return ToGrpcStatus(revoked);
    }
    Result<DeviceInfo> device = auth_->store().GetDevice(request->device_id());
    if (!device.ok()) return ToGrpcStatus(device.status());
    FillDevice(*device, response);
    return grpc::Status::OK;
  }

  grpc::Status ListDevices(grpc::ServerContext* context, const v1::ListDevicesRequest* /*request*/,
                           v1::ListDevicesResponse* response) override {
    Result<Principal> caller = AuthenticateCall(*auth_, *context);
    if (!caller.ok()) return ToGrpcStatus(caller.status());
    if (Status allowed = Authenticator::RequireAdmin(*caller, "ListDevices"); !allowed.ok()) {
      return ToGrpcStatus(allowed);
    }
    Result<std::vector<DeviceInfo>> devices = auth_->store().ListDevices();
    if (!devices.ok()) return ToGrpcStatus(devices.status());
    for (const DeviceInfo& device : *devices) FillDevice(device, response->add_devices());
    return grpc::Status::OK;
  }

 private:
  const Authenticator* const auth_;
};

// The seams: authenticated like every device call, then UNIMPLEMENTED naming who fills them in.
grpc::Status Seam(const Authenticator& auth, const grpc::ServerContext& context,
                  std::string_view rpc, std::string_view issue) {
  Result<Principal> caller = AuthenticateCall(auth, context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  return ToGrpcStatus(UnimplementedError(std::string(rpc) + " is not implemented yet; " +
                                         std::string(issue) + " implements it"));
}

class IngestService final : public v1::Ingest::Service {
 public:
  IngestService(const Authenticator* auth, const DeviceServicesOptions* options)
      : auth_(auth), options_(options) {}
  grpc::Status UploadBatch(grpc::ServerContext* context, const v1::UploadBatchRequest* request,
                           v1::UploadBatchResponse* response) override {
    if (options_->ingest == nullptr) {
      return Seam(*auth_, *context, "Ingest.UploadBatch", "the ingest issue");
    }
    Result<Principal> caller = AuthenticateCall(*auth_, *context);
    if (!caller.ok()) return ToGrpcStatus(caller.status());
    // Batches belong to the device that collected them; an admin key has no data to upload.
    if (caller->is_admin()) {
      return ToGrpcStatus(PermissionDeniedError(
          "Ingest.UploadBatch: only devices upload batches, not " + caller->ToString()));
    }
    const int64_t now_unix = options_->clock->WallMicros() / 1000000;
    Result<bool> duplicate =
        options_->ingest->Put(caller->id, request->idempotency_key(),
                              static_cast<int64_t>(request->sample_count()),
                              request->sealed_batch(), now_unix);
    if (!duplicate.ok()) return ToGrpcStatus(duplicate.status());
    // The fault hook stands for a server that dies after the commit, before the ack.
    if (options_->after_ingest_commit && !options_->after_ingest_commit()) {
      return ToGrpcStatus(UnavailableError("Ingest.UploadBatch: connection lost after commit"));
    }
    response->set_duplicate(*duplicate);
    return grpc::Status::OK;
  }

 private:
  const Authenticator* const auth_;
  const DeviceServicesOptions* const options_;
};

class TelemetryService final : public v1::Telemetry::Service {
 public:
  TelemetryService(const Authenticator* auth, const DeviceServicesOptions* options)
      : auth_(auth), options_(options) {}
  grpc::Status Report(grpc::ServerContext* context, const v1::TelemetryReport* request,
                      v1::TelemetryAck* /*response*/) override {
    if (options_->telemetry == nullptr) {
      return Seam(*auth_, *context, "Telemetry.Report", "the telemetry issue");
    }
    Result<Principal> caller = AuthenticateCall(*auth_, *context);
    if (!caller.ok()) return ToGrpcStatus(caller.status());
    // Measurements describe the device that took them; an admin key has none to report.
    if (caller->is_admin()) {
      return ToGrpcStatus(PermissionDeniedError(
          "Telemetry.Report: only devices report telemetry, not " + caller->ToString()));
    }
    return ToGrpcStatus(options_->telemetry->Report(caller->id, *request));
  }

 private:
  const Authenticator* const auth_;
  const DeviceServicesOptions* const options_;
};

class FederatedLearningService final : public v1::FederatedLearning::Service {
 public:
  FederatedLearningService(const Authenticator* auth, const DeviceServicesOptions* options)
      : auth_(auth), options_(options) {}

  grpc::Status JoinRound(grpc::ServerContext* context, const v1::JoinRoundRequest* request,
                         v1::JoinRoundResponse* response) override {
    if (options_->federated == nullptr) {
      return Seam(*auth_, *context, "FederatedLearning.JoinRound", "the federated learning issue");
    }
    Result<Principal> caller = AuthenticateDevice(*context, "JoinRound");
    if (!caller.ok()) return ToGrpcStatus(caller.status());
    Result<JoinAnswer> answer = options_->federated->Join(request->task(), caller->id, NowMs());
    if (!answer.ok()) return ToGrpcStatus(answer.status());
    FillJoinRoundResponse(*answer, response);
    return grpc::Status::OK;
  }

  grpc::Status SubmitUpdate(grpc::ServerContext* context, const v1::SubmitUpdateRequest* request,
                            v1::SubmitUpdateResponse* response) override {
    if (options_->federated == nullptr) {
      return Seam(*auth_, *context, "FederatedLearning.SubmitUpdate",
                  "the federated learning issue");
    }
    Result<Principal> caller = AuthenticateDevice(*context, "SubmitUpdate");
    if (!caller.ok()) return ToGrpcStatus(caller.status());
    Result<bool> accepted =
        options_->federated->Submit(request->task(), caller->id, request->round_id(),
                                    request->sealed_update(), request->example_count(), NowMs());
    if (!accepted.ok()) return ToGrpcStatus(accepted.status());
    response->set_accepted(*accepted);
    return grpc::Status::OK;
  }

  grpc::Status SecureAggregation(grpc::ServerContext* context,
                                 const v1::SecureAggregationRequest* request,
                                 v1::SecureAggregationResponse* response) override {
    if (options_->federated == nullptr) {
      return Seam(*auth_, *context, "FederatedLearning.SecureAggregation",
                  "the federated learning issue");
    }
    Result<Principal> caller = AuthenticateDevice(*context, "SecureAggregation");
    if (!caller.ok()) return ToGrpcStatus(caller.status());
    Result<std::string> reply = options_->federated->SecureExchange(
        request->task(), caller->id, request->round_id(), request->message(), NowMs());
    if (!reply.ok()) return ToGrpcStatus(reply.status());
    response->set_reply(std::move(*reply));
    return grpc::Status::OK;
  }

 private:
  // Rounds belong to devices: an admin key has no local data to train on.
  Result<Principal> AuthenticateDevice(const grpc::ServerContext& context, std::string_view rpc) {
    HML_ASSIGN_OR_RETURN(Principal caller, AuthenticateCall(*auth_, context));
    if (caller.is_admin()) {
      return PermissionDeniedError("FederatedLearning." + std::string(rpc) +
                                   ": only devices take part in rounds, not " + caller.ToString());
    }
    return caller;
  }
  int64_t NowMs() const { return options_->clock->WallMicros() / 1000; }

  const Authenticator* const auth_;
  const DeviceServicesOptions* const options_;
};

}  // namespace

Status DeviceServicesOptions::Validate() const {
  if (repo_dir.empty()) return InvalidArgumentError("DeviceServicesOptions: repo_dir is empty");
  if (max_chunk_bytes < 1 || max_chunk_bytes > kMaxWindowLimit) {
    return InvalidArgumentError("DeviceServicesOptions: max_chunk_bytes " +
                                std::to_string(max_chunk_bytes) + " is not in [1, 3 MiB]");
  }
  if (clock == nullptr) return InvalidArgumentError("DeviceServicesOptions: clock is null");
  if (max_metadata_bytes < 1 || max_metadata_bytes > static_cast<int64_t>(kMaxWindowLimit)) {
    return InvalidArgumentError("DeviceServicesOptions: max_metadata_bytes " +
                                std::to_string(max_metadata_bytes) + " is not in [1, 3 MiB]");
  }
  return Status::Ok();
}

struct DeviceServices::Impl {
  Impl(const Authenticator* auth, DeviceServicesOptions opts)
      : options(std::move(opts)),
        enrollment(auth),
        registry(auth, &options),
        devices(auth),
        ingest(auth, &options),
        telemetry(auth, &options),
        federated(auth, &options) {}

  const DeviceServicesOptions options;
  EnrollmentService enrollment;
  RegistryService registry;
  DevicesService devices;
  IngestService ingest;
  TelemetryService telemetry;
  FederatedLearningService federated;
};

Result<std::unique_ptr<DeviceServices>> DeviceServices::Create(const Authenticator* authenticator,
                                                               DeviceServicesOptions options) {
  if (authenticator == nullptr)
    return InvalidArgumentError("DeviceServices: authenticator is null");
  HML_RETURN_IF_ERROR(options.Validate());
  return std::unique_ptr<DeviceServices>(
      new DeviceServices(std::make_unique<Impl>(authenticator, std::move(options))));
}

DeviceServices::DeviceServices(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DeviceServices::~DeviceServices() = default;

std::vector<grpc::Service*> DeviceServices::services() const {
  return {&impl_->enrollment, &impl_->registry,  &impl_->devices,
          &impl_->ingest,     &impl_->telemetry, &impl_->federated};
}

}  // namespace hml::server

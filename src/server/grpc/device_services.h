// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// hybridml's device services (proto/hybridml_device.proto, package hybridml.v1), served on the
// same gRPC port as the inference service: GrpcServer registers them through
// GrpcServerOptions::extra_services, so the inference service knows nothing of the registry or
// of devices.
//
//   DeviceEnrollment.Enroll   enrollment secret (in the message) -> new device + credential;
//                             a wrong or revoked secret is UNAUTHENTICATED and creates nothing
//   Registry.GetMetadata      a role file of the registry's repo/ dir ("timestamp.json",
//                             "3.root.json"), whole
//   Registry.GetFile          a window [offset, offset + limit) of repo/targets/<name>
//   Devices.GetDevice         admin, or the device itself
//   Devices.RevokeDevice      admin, or the device itself
//   Devices.ListDevices       admin only
//   Ingest.UploadBatch        devices only (an admin key is PERMISSION_DENIED): the sealed
//                             batch is stored under the caller's device id, once per
//                             idempotency key (IngestStore); `duplicate` tells a retry. Without
//                             an IngestStore: UNIMPLEMENTED
//   Telemetry.Report          devices only (an admin key is PERMISSION_DENIED): the report is
//                             validated and added to the server's fleet metrics per model,
//                             version and route (TelemetryAggregator; the caller's device id
//                             only counts reporting devices); a refused report is
//                             INVALID_ARGUMENT naming the measurement. Without an aggregator:
//                             UNIMPLEMENTED
//   FederatedLearning         devices only (an admin key is PERMISSION_DENIED), over the
//                             FederatedTasks (src/server/fl/federated_tasks.h). JoinRound: the
//                             round for the caller in the named task, or an empty round id (ask
//                             again later). SubmitUpdate: the sealed update (fl/update_wire.h)
//                             under the caller's device id; accepted = false when it came too
//                             late (deadline passed, round closed or full), INVALID_ARGUMENT for
//                             undecodable or mismatching bytes, PERMISSION_DENIED when the caller
//                             is not selected, ALREADY_EXISTS for a second update in a round
//                             (also what a retry after a lost answer gets). SecureAggregation:
//                             one message of a secure round's exchange (fl/secure_round.h) from
//                             the caller, answered with the server's reply bytes;
//                             PERMISSION_DENIED outside the round's cohort, INVALID_ARGUMENT for
//                             a message the protocol refuses, FAILED_PRECONDITION when the round
//                             is not open or not secure. An unknown task is NOT_FOUND. Without
//                             FederatedTasks: UNIMPLEMENTED
//
// Authentication: every RPC but Enroll starts with AuthenticateCall (src/server/grpc/grpc_auth.h)
// on the `authorization` metadata and then the authorization rule above; a refused call returns
// before it reads or changes anything. Registry files are open to any admin or device: they are
// the signed public repository (clients verify signatures themselves), the same bytes /ota/
// serves over HTTP.
//
// Names: metadata names are one path segment ending in ".json"; target names follow
// ota::ValidateTargetName (no "..", no leading '/'). Anything else is INVALID_ARGUMENT, so no
// request reaches outside repo/. A missing file is NOT_FOUND.
//
// The services use gRPC's synchronous API: their handlers do blocking work (SQLite, file reads)
// and run on gRPC's sync thread pool, not on the callback threads ModelInfer uses.
//
// Thread-safe: handlers run concurrently; the AuthStore serializes its own calls.
#ifndef HML_SRC_SERVER_GRPC_DEVICE_SERVICES_H_
#define HML_SRC_SERVER_GRPC_DEVICE_SERVICES_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "hml/status.h"
#include "hml/clock.h"
#include "src/server/auth/authenticator.h"
#include "src/server/fl/federated_tasks.h"
#include "src/server/ingest/ingest_store.h"
#include "src/server/telemetry/telemetry_aggregator.h"

namespace grpc {
class Service;
}  // namespace grpc

namespace hml::server {

struct DeviceServicesOptions {
  // The registry's TUF repository directory (<registry dir>/repo). Required. Default: "".
  std::string repo_dir;
  // Largest GetFile window. A request's limit of 0, or above this, gets this many bytes; it stays
  // under gRPC's default 4 MiB receive limit of clients. Default: 1 MiB.
  uint64_t max_chunk_bytes = uint64_t{1} << 20;
  // Largest metadata file GetMetadata returns (whole); larger ones are RESOURCE_EXHAUSTED.
  // Default: 3 MiB (under clients' default 4 MiB receive limit).
  int64_t max_metadata_bytes = int64_t{3} << 20;

  // Where uploaded batches go; null = Ingest answers UNIMPLEMENTED. Must outlive the services.
  // Default: null.
  IngestStore* ingest = nullptr;
  // Where device telemetry reports go; null = Telemetry.Report answers UNIMPLEMENTED. Must
  // outlive the services. Default: null.
  TelemetryAggregator* telemetry = nullptr;
  // The federated learning tasks; null = FederatedLearning answers UNIMPLEMENTED. Must outlive
  // the services. Default: null.
  FederatedTasks* federated = nullptr;
  // Stamps received batches, and is the federated rounds' time (WallMicros / 1000: deadlines
  // are wall milliseconds since the Unix epoch). Default: RealClock().
  Clock* clock = RealClock();
  // Tests only: called after a batch is committed, before it is acknowledged; returning false
  // drops the acknowledgement (the call fails UNAVAILABLE), as a server dying there would.
  // Default: none.
  std::function<bool()> after_ingest_commit;

  // kInvalidArgument naming the field: a null clock, repo_dir empty, max_chunk_bytes outside [1, 3 MiB],
  // max_metadata_bytes outside [1, 3 MiB].
  Status Validate() const;
};

class DeviceServices {
 public:
  // `authenticator` (and its store) must outlive the services. Errors: options.Validate()'s.
  static Result<std::unique_ptr<DeviceServices>> Create(const Authenticator* authenticator,
                                                        DeviceServicesOptions options);
  ~DeviceServices();
  DeviceServices(const DeviceServices&) = delete;
  DeviceServices& operator=(const DeviceServices&) = delete;

  // The services to register (GrpcServerOptions::extra_services). Owned by this object, which
  // must outlive the grpc::Server they are registered with.
  std::vector<grpc::Service*> services() const;

 private:
  struct Impl;
  explicit DeviceServices(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace hml::server

#endif  // HML_SRC_SERVER_GRPC_DEVICE_SERVICES_H_

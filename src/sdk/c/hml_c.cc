// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The C ABI (include/hml/c/hml.h) as a thin shim over the C++ API: each handle wraps the C++
// object, each call checks its arguments, calls through, and turns an hml::Status into an
// hml_status plus an optional hml_error. No routing, storage or retry logic of its own lives
// here; what it adds is argument checking, copying into owned C++ objects, relative deadlines,
// and the stand-in transport of a router created without one (NoTransport below).
#include <sodium.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <memory>
#include <new>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "hml/c/hml.h"
#include "hml/clock.h"
#include "hml/runtime/model.h"
#include "hml/runtime/session.h"
#include "hml/runtime/tensor.h"
#include "hml/status.h"
#include "src/sdk/c/hml_c_internal.h"
#include "src/sdk/resilience/scheduler.h"
#include "src/sdk/router.h"
#include "src/sdk/store/bounded_queue.h"
#include "src/sdk/store/encrypted_store.h"
#include "src/sdk/transport.h"

#ifndef HML_VERSION_STRING
#error "HML_VERSION_STRING must be defined by the build"
#endif

struct hml_error {
  hml_status code;
  std::string message;
};

struct hml_model {
  hml::Model model;
  std::vector<hml::TensorSpec> inputs;
  std::vector<hml::TensorSpec> outputs;
};

struct hml_session_options {
  hml::SessionOptions options;
};

struct hml_session {
  std::unique_ptr<hml::Session> session;
  bool ran = false;
};

struct hml_tensor_list {
  std::vector<hml::sdk::NamedTensor> tensors;
};

struct hml_router_options {
  hml::sdk::RouterOptions options;  // transport and scheduler stay null here
};

struct hml_router {
  // Only for a router without a transport (hml_router_create): the thread that answers its
  // cloud calls and runs its timers, and the stand-in transport. Declared before `router` so
  // that they outlive it.
  std::unique_ptr<hml::sdk::Scheduler> scheduler;
  std::unique_ptr<hml::sdk::Transport> own_transport;
  std::unique_ptr<hml::sdk::Router> router;
};

struct hml_route_config {
  hml::sdk::ModelConfig config;
};

struct hml_routed_result {
  hml::sdk::RoutedResult result;
};

struct hml_store_options {
  std::string path;
  std::string device_id;
  int64_t max_records = 10000;
  int64_t max_bytes = int64_t{16} << 20;
  hml::sdk::OverflowPolicy overflow = hml::sdk::OverflowPolicy::kDropOldest;
  size_t max_record_bytes = size_t{1} << 20;
};

struct hml_store {
  // Declared before `store`, which uses it until it is closed. Holds the key (zeroed when freed).
  std::unique_ptr<hml::sdk::FixedKeyProvider> keys;
  std::unique_ptr<hml::sdk::EncryptedStore> store;
  hml::sdk::BoundedQueueOptions queue;  // every table's bound; `table` is set per call
};

struct hml_bytes {
  std::string data;
};

struct hml_records {
  std::vector<hml::sdk::StoredRecord> records;
};

namespace {

// Stores `status` in *out_error (when asked for) and returns its code. REQUIRES: !status.ok().
hml_status Fail(hml_error** out_error, const hml::Status& status) {
  const auto code = static_cast<hml_status>(status.code());
  if (out_error != nullptr) {
    *out_error = new (std::nothrow) hml_error{code, std::string(status.message())};
  }
  return code;
}

hml_status InvalidArgument(hml_error** out_error, const std::string& message) {
  return Fail(out_error, hml::InvalidArgumentError(message));
}

hml_status Ok(hml_error** out_error) {
  if (out_error != nullptr) *out_error = nullptr;
  return HML_OK;
}

// "<function>: <what> is NULL".
hml_status NullArgument(hml_error** out_error, const char* function, const char* what) {
  return InvalidArgument(out_error, std::string(function) + ": " + what + " is NULL");
}

hml_status MakeModel(hml::Result<hml::Model> loaded, hml_model** out_model, hml_error** out_error) {
  if (!loaded.ok()) return Fail(out_error, loaded.status());
  auto* model = new (std::nothrow) hml_model{std::move(*loaded), {}, {}};
  if (model == nullptr) return Fail(out_error, hml::ResourceExhaustedError("out of memory"));
  model->inputs = model->model.inputs();
  model->outputs = model->model.outputs();
  *out_model = model;
  return Ok(out_error);
}

// HML_OK when index < count; else HML_INVALID_ARGUMENT "<function>: index I >= N <what>".
hml_status CheckIndex(const char* function, size_t index, size_t count, const char* what,
                      hml_error** out_error) {
  if (index < count) return HML_OK;
  return InvalidArgument(out_error, std::string(function) + ": index " + std::to_string(index) +
                                        " >= " + std::to_string(count) + " " + what);
}

hml_status Shape(const char* function, const hml::TensorSpec& spec, int64_t* dims, size_t capacity,
                 size_t* out_rank, hml_error** out_error) {
  if (out_rank == nullptr) return NullArgument(out_error, function, "out_rank");
  if (capacity > 0 && dims == nullptr) return NullArgument(out_error, function, "dims");
  for (size_t i = 0; i < spec.shape.size() && i < capacity; ++i) dims[i] = spec.shape[i];
  *out_rank = spec.shape.size();
  return Ok(out_error);
}

hml_status OutOfMemory(hml_error** out_error) {
  return Fail(out_error, hml::ResourceExhaustedError("out of memory"));
}

// Milliseconds accepted for durations and deadlines: up to 10^9 ms (11.5 days), so that the
// nanoseconds fit in an int64_t with room for the clock's time added.
constexpr int64_t kMaxMillis = 1'000'000'000;
constexpr int64_t kNanosPerMilli = 1'000'000;

// HML_OK when lo <= value <= kMaxMillis; else "<function>: <what> <value> is not in [lo, 1e9]".
hml_status CheckMillis(const char* function, const char* what, int64_t value, int64_t lo,
                       hml_error** out_error) {
  if (value >= lo && value <= kMaxMillis) return HML_OK;
  return InvalidArgument(out_error, std::string(function) + ": " + what + " " +
                                        std::to_string(value) + " is not in [" +
                                        std::to_string(lo) + ", 1000000000]");
}

// The hml::DType of a C dtype; nullopt for values outside the enum and for UNDEFINED.
std::optional<hml::DType> ToDType(hml_dtype dtype) {
  switch (dtype) {
    case HML_DTYPE_FLOAT32:
    case HML_DTYPE_UINT8:
    case HML_DTYPE_INT8:
    case HML_DTYPE_INT32:
    case HML_DTYPE_INT64:
      return static_cast<hml::DType>(dtype);
    case HML_DTYPE_UNDEFINED:
      break;
  }
  return std::nullopt;
}

// A new Placement must get a C value: this switch has no default so that the compiler says so.
hml_placement ToPlacement(hml::sdk::Placement placement) {
  switch (placement) {
    case hml::sdk::Placement::kLocal:
      return HML_PLACEMENT_LOCAL;
    case hml::sdk::Placement::kCloud:
      return HML_PLACEMENT_CLOUD;
    case hml::sdk::Placement::kLocalAfterCloudFailure:
      return HML_PLACEMENT_LOCAL_AFTER_CLOUD_FAILURE;
    case hml::sdk::Placement::kCloudAfterLocalFailure:
      return HML_PLACEMENT_CLOUD_AFTER_LOCAL_FAILURE;
    case hml::sdk::Placement::kCascadeLocal:
      return HML_PLACEMENT_CASCADE_LOCAL;
    case hml::sdk::Placement::kCascadeOffloaded:
      return HML_PLACEMENT_CASCADE_OFFLOADED;
    case hml::sdk::Placement::kSplit:
      return HML_PLACEMENT_SPLIT;
  }
  return HML_PLACEMENT_LOCAL;
}

std::optional<hml::sdk::Placement> FromPlacement(hml_placement placement) {
  switch (placement) {
    case HML_PLACEMENT_LOCAL:
      return hml::sdk::Placement::kLocal;
    case HML_PLACEMENT_CLOUD:
      return hml::sdk::Placement::kCloud;
    case HML_PLACEMENT_LOCAL_AFTER_CLOUD_FAILURE:
      return hml::sdk::Placement::kLocalAfterCloudFailure;
    case HML_PLACEMENT_CLOUD_AFTER_LOCAL_FAILURE:
      return hml::sdk::Placement::kCloudAfterLocalFailure;
    case HML_PLACEMENT_CASCADE_LOCAL:
      return hml::sdk::Placement::kCascadeLocal;
    case HML_PLACEMENT_CASCADE_OFFLOADED:
      return hml::sdk::Placement::kCascadeOffloaded;
    case HML_PLACEMENT_SPLIT:
      return hml::sdk::Placement::kSplit;
  }
  return std::nullopt;
}

std::optional<hml::sdk::RoutePolicy> FromPolicy(hml_route_policy policy) {
  switch (policy) {
    case HML_ROUTE_LOCAL_ONLY:
      return hml::sdk::RoutePolicy::kLocalOnly;
    case HML_ROUTE_CLOUD_ONLY:
      return hml::sdk::RoutePolicy::kCloudOnly;
    case HML_ROUTE_PREFER_LOCAL:
      return hml::sdk::RoutePolicy::kPreferLocal;
    case HML_ROUTE_PREFER_CLOUD:
      return hml::sdk::RoutePolicy::kPreferCloud;
    case HML_ROUTE_CASCADE:
      return hml::sdk::RoutePolicy::kCascade;
    case HML_ROUTE_SPLIT:
      return hml::sdk::RoutePolicy::kSplit;
  }
  return std::nullopt;
}

// The transport of a router created without one: every call fails with kUnavailable "no
// transport configured", answered on the scheduler's thread (a Transport never answers inside
// Infer()). The router makes one attempt per call with no breaker (hml_router_create), so the
// caller sees this message rather than "breaker open" or a retry's deadline.
class NoTransport final : public hml::sdk::Transport {
 public:
  explicit NoTransport(hml::sdk::Scheduler* scheduler) : scheduler_(scheduler) {}

  hml::sdk::CallId Infer(hml::sdk::InferCall call, hml::sdk::InferCallback done) override {
    return Refuse("inference of model '" + call.model + "'", std::move(done));
  }
  bool Cancel(hml::sdk::CallId) override { return false; }  // every call is answered at once
  hml::sdk::CallId Upload(hml::sdk::UploadCall, hml::sdk::UploadCallback done) override {
    return Refuse("upload", std::move(done));
  }
  hml::sdk::CallId ReportTelemetry(hml::sdk::TelemetryCall,
                                   hml::sdk::TelemetryCallback done) override {
    return Refuse("telemetry report", std::move(done));
  }
  hml::sdk::CallId JoinRound(hml::sdk::JoinRoundCall, hml::sdk::JoinRoundCallback done) override {
    return Refuse("join round", std::move(done));
  }
  hml::sdk::CallId SubmitUpdate(hml::sdk::SubmitUpdateCall,
                                hml::sdk::SubmitUpdateCallback done) override {
    return Refuse("model update", std::move(done));
  }
  hml::sdk::CallId SecureAggregation(hml::sdk::SecureAggregationCall,
                                     hml::sdk::SecureAggregationCallback done) override {
    return Refuse("secure aggregation", std::move(done));
  }
  hml::Clock* clock() const override { return hml::RealClock(); }

 private:
  template <typename Callback>
  hml::sdk::CallId Refuse(std::string what, Callback done) {
    hml::sdk::CallStats stats;
    stats.start_nanos = clock()->NowNanos();
    // The task does not touch `this`: it may run after the router (and this transport) is gone.
    scheduler_->ScheduleAt(0, [what = std::move(what), done = std::move(done), stats]() {
      hml::sdk::CallStats end = stats;
      end.end_nanos = hml::RealClock()->NowNanos();
      done(hml::UnavailableError("no transport configured: the router was created without a "
                                 "network transport, so the " +
                                 what + " cannot reach the cloud"),
           end);
    });
    return next_id_.fetch_add(1) + 1;
  }

  hml::sdk::Scheduler* const scheduler_;
  std::atomic<hml::sdk::CallId> next_id_{0};
};

hml_status MakeRouter(const hml_router_options* options, hml::sdk::Transport* transport,
                      hml_router** out_router, hml_error** out_error) {
  auto handle = std::unique_ptr<hml_router>(new (std::nothrow) hml_router{});
  if (handle == nullptr) return OutOfMemory(out_error);
  hml::sdk::RouterOptions router_options =
      options == nullptr ? hml::sdk::RouterOptions{} : options->options;
  if (transport == nullptr) {
    handle->scheduler = std::make_unique<hml::sdk::ThreadScheduler>(hml::RealClock());
    handle->own_transport = std::make_unique<NoTransport>(handle->scheduler.get());
    transport = handle->own_transport.get();
    router_options.scheduler = handle->scheduler.get();
    // Nothing can succeed: one attempt, and no breaker to turn the reason into "breaker open".
    router_options.resilience.retry.max_attempts = 1;
    router_options.resilience.use_breaker = false;
    router_options.resilience.hedging.enabled = false;
  }
  router_options.transport = transport;
  hml::Result<std::unique_ptr<hml::sdk::Router>> router =
      hml::sdk::Router::Create(std::move(router_options));
  if (!router.ok()) return Fail(out_error, router.status());
  handle->router = std::move(*router);
  *out_router = handle.release();
  return Ok(out_error);
}

hml_status CheckTable(const char* function, const char* table, hml_error** out_error) {
  if (table == nullptr) return NullArgument(out_error, function, "table");
  return HML_OK;
}

}  // namespace

extern "C" {

const char* hml_version(void) { return HML_VERSION_STRING; }

const char* hml_status_name(hml_status status) {
  const int index = static_cast<int>(status);
  if (index < 0 || index > static_cast<int>(hml::StatusCode::kUnauthenticated)) return "UNKNOWN";
  // The names are string literals, so the view's data is NUL-terminated.
  return hml::StatusCodeName(static_cast<hml::StatusCode>(index)).data();
}

hml_status hml_error_code(const hml_error* error) {
  return error == nullptr ? HML_UNKNOWN : error->code;
}

const char* hml_error_message(const hml_error* error) {
  return error == nullptr ? "" : error->message.c_str();
}

void hml_error_free(hml_error* error) { delete error; }

hml_status hml_model_load(const char* path, hml_model** out_model, hml_error** out_error) {
  if (path == nullptr) return NullArgument(out_error, "hml_model_load", "path");
  if (out_model == nullptr) return NullArgument(out_error, "hml_model_load", "out_model");
  return MakeModel(hml::Model::Load(path), out_model, out_error);
}

hml_status hml_model_load_from_memory(const void* data, size_t size, hml_model** out_model,
                                      hml_error** out_error) {
  if (data == nullptr && size > 0) {
    return NullArgument(out_error, "hml_model_load_from_memory", "data");
  }
  if (out_model == nullptr) {
    return NullArgument(out_error, "hml_model_load_from_memory", "out_model");
  }
  return MakeModel(hml::Model::FromOnnx(std::string_view(static_cast<const char*>(data), size)),
                   out_model, out_error);
}

void hml_model_free(hml_model* model) { delete model; }

size_t hml_model_input_count(const hml_model* model) {
  return model == nullptr ? 0 : model->inputs.size();
}

size_t hml_model_output_count(const hml_model* model) {
  return model == nullptr ? 0 : model->outputs.size();
}

const char* hml_model_input_name(const hml_model* model, size_t index) {
  if (model == nullptr || index >= model->inputs.size()) return nullptr;
  return model->inputs[index].name.c_str();
}

const char* hml_model_output_name(const hml_model* model, size_t index) {
  if (model == nullptr || index >= model->outputs.size()) return nullptr;
  return model->outputs[index].name.c_str();
}

hml_status hml_session_options_create(hml_session_options** out_options, hml_error** out_error) {
  if (out_options == nullptr) {
    return NullArgument(out_error, "hml_session_options_create", "out_options");
  }
  auto* options = new (std::nothrow) hml_session_options{};
  if (options == nullptr) return Fail(out_error, hml::ResourceExhaustedError("out of memory"));
  *out_options = options;
  return Ok(out_error);
}

void hml_session_options_free(hml_session_options* options) { delete options; }

hml_status hml_session_options_set_threads(hml_session_options* options, int threads,
                                           hml_error** out_error) {
  if (options == nullptr) {
    return NullArgument(out_error, "hml_session_options_set_threads", "options");
  }
  if (threads < 1 || threads > 64) {
    return InvalidArgument(out_error, "hml_session_options_set_threads: threads " +
                                          std::to_string(threads) + " is not in [1, 64]");
  }
  options->options.num_threads = threads;
  return Ok(out_error);
}

hml_status hml_session_options_set_backend(hml_session_options* options, const char* backend,
                                           hml_error** out_error) {
  if (options == nullptr) {
    return NullArgument(out_error, "hml_session_options_set_backend", "options");
  }
  if (backend == nullptr || backend[0] == '\0') {
    return InvalidArgument(out_error, "hml_session_options_set_backend: backend is NULL or empty");
  }
  options->options.backend = backend;
  return Ok(out_error);
}

hml_status hml_session_options_set_input_shape(hml_session_options* options, const char* input,
                                               const int64_t* dims, size_t rank,
                                               hml_error** out_error) {
  constexpr const char* kFunction = "hml_session_options_set_input_shape";
  if (options == nullptr) return NullArgument(out_error, kFunction, "options");
  if (input == nullptr) return NullArgument(out_error, kFunction, "input");
  if (rank > 8) {
    return InvalidArgument(
        out_error, std::string(kFunction) + ": rank " + std::to_string(rank) + " is not in [0, 8]");
  }
  if (rank > 0 && dims == nullptr) return NullArgument(out_error, kFunction, "dims");
  hml::Shape shape;
  for (size_t i = 0; i < rank; ++i) {
    if (dims[i] < 1) {
      return InvalidArgument(out_error, std::string(kFunction) + ": input '" + input +
                                            "' dimension " + std::to_string(i) + " is " +
                                            std::to_string(dims[i]) + ", not >= 1");
    }
    shape.push_back(dims[i]);
  }
  options->options.input_shapes[input] = std::move(shape);
  return Ok(out_error);
}

hml_status hml_session_create(const hml_model* model, const hml_session_options* options,
                              hml_session** out_session, hml_error** out_error) {
  if (model == nullptr) return NullArgument(out_error, "hml_session_create", "model");
  if (out_session == nullptr) return NullArgument(out_error, "hml_session_create", "out_session");
  const hml::SessionOptions defaults;
  hml::Result<std::unique_ptr<hml::Session>> session =
      hml::Session::Create(model->model, options == nullptr ? defaults : options->options);
  if (!session.ok()) return Fail(out_error, session.status());
  auto* handle = new (std::nothrow) hml_session{std::move(*session), false};
  if (handle == nullptr) return Fail(out_error, hml::ResourceExhaustedError("out of memory"));
  *out_session = handle;
  return Ok(out_error);
}

void hml_session_free(hml_session* session) { delete session; }

hml_status hml_session_input_shape(const hml_session* session, size_t index, int64_t* dims,
                                   size_t capacity, size_t* out_rank, hml_error** out_error) {
  constexpr const char* kFunction = "hml_session_input_shape";
  if (session == nullptr) return NullArgument(out_error, kFunction, "session");
  if (hml_status s =
          CheckIndex(kFunction, index, session->session->num_inputs(), "inputs", out_error);
      s != HML_OK) {
    return s;
  }
  return Shape(kFunction, session->session->input_spec(index), dims, capacity, out_rank, out_error);
}

hml_status hml_session_output_shape(const hml_session* session, size_t index, int64_t* dims,
                                    size_t capacity, size_t* out_rank, hml_error** out_error) {
  constexpr const char* kFunction = "hml_session_output_shape";
  if (session == nullptr) return NullArgument(out_error, kFunction, "session");
  if (hml_status s =
          CheckIndex(kFunction, index, session->session->num_outputs(), "outputs", out_error);
      s != HML_OK) {
    return s;
  }
  return Shape(kFunction, session->session->output_spec(index), dims, capacity, out_rank,
               out_error);
}

hml_status hml_session_set_input(hml_session* session, size_t index, hml_dtype dtype,
                                 const void* data, size_t byte_size, hml_error** out_error) {
  constexpr const char* kFunction = "hml_session_set_input";
  if (session == nullptr) return NullArgument(out_error, kFunction, "session");
  if (hml_status s =
          CheckIndex(kFunction, index, session->session->num_inputs(), "inputs", out_error);
      s != HML_OK) {
    return s;
  }
  hml::Tensor& input = session->session->input(index);
  const std::string what =
      std::string(kFunction) + ": input '" + session->session->input_spec(index).name + "'";
  if (static_cast<hml::DType>(dtype) != input.dtype()) {
    return InvalidArgument(out_error, what + " is " + std::string(hml::DTypeName(input.dtype())) +
                                          ", not dtype " + std::to_string(dtype));
  }
  if (byte_size != input.byte_size()) {
    return InvalidArgument(out_error, what + " takes " + std::to_string(input.byte_size()) +
                                          " bytes, not " + std::to_string(byte_size));
  }
  if (data == nullptr && byte_size > 0) return NullArgument(out_error, kFunction, "data");
  if (byte_size > 0) std::memcpy(input.raw_data(), data, byte_size);
  return Ok(out_error);
}

hml_status hml_session_run(hml_session* session, hml_error** out_error) {
  if (session == nullptr) return NullArgument(out_error, "hml_session_run", "session");
  session->ran = false;
  if (hml::Status s = session->session->Run(); !s.ok()) return Fail(out_error, s);
  session->ran = true;
  return Ok(out_error);
}

hml_status hml_session_get_output(const hml_session* session, size_t index, hml_dtype* out_dtype,
                                  const void** out_data, size_t* out_byte_size,
                                  hml_error** out_error) {
  constexpr const char* kFunction = "hml_session_get_output";
  if (session == nullptr) return NullArgument(out_error, kFunction, "session");
  if (out_dtype == nullptr) return NullArgument(out_error, kFunction, "out_dtype");
  if (out_data == nullptr) return NullArgument(out_error, kFunction, "out_data");
  if (out_byte_size == nullptr) return NullArgument(out_error, kFunction, "out_byte_size");
  if (hml_status s =
          CheckIndex(kFunction, index, session->session->num_outputs(), "outputs", out_error);
      s != HML_OK) {
    return s;
  }
  if (!session->ran) {
    return Fail(out_error, hml::FailedPreconditionError(std::string(kFunction) +
                                                        ": no successful hml_session_run yet"));
  }
  const hml::Tensor& output = session->session->output(index);
  *out_dtype = static_cast<hml_dtype>(output.dtype());
  *out_data = output.raw_data();
  *out_byte_size = output.byte_size();
  return Ok(out_error);
}

// ---- Tensor lists ----------------------------------------------------------------------------

hml_status hml_tensor_list_create(hml_tensor_list** out_list, hml_error** out_error) {
  if (out_list == nullptr) return NullArgument(out_error, "hml_tensor_list_create", "out_list");
  auto* list = new (std::nothrow) hml_tensor_list{};
  if (list == nullptr) return OutOfMemory(out_error);
  *out_list = list;
  return Ok(out_error);
}

void hml_tensor_list_free(hml_tensor_list* list) { delete list; }

hml_status hml_tensor_list_add(hml_tensor_list* list, const char* name, hml_dtype dtype,
                               const int64_t* dims, size_t rank, const void* data, size_t byte_size,
                               hml_error** out_error) {
  constexpr const char* kFunction = "hml_tensor_list_add";
  if (list == nullptr) return NullArgument(out_error, kFunction, "list");
  if (name == nullptr) return NullArgument(out_error, kFunction, "name");
  if (name[0] == '\0')
    return InvalidArgument(out_error, std::string(kFunction) + ": name is empty");
  const std::string what = std::string(kFunction) + ": tensor '" + name + "'";
  for (const hml::sdk::NamedTensor& t : list->tensors) {
    if (t.name == name) return InvalidArgument(out_error, what + " is already in the list");
  }
  const std::optional<hml::DType> type = ToDType(dtype);
  if (!type) {
    return InvalidArgument(
        out_error, what + ": dtype " + std::to_string(dtype) + " is not a supported hml_dtype");
  }
  if (rank > static_cast<size_t>(hml::kMaxRank)) {
    return InvalidArgument(out_error,
                           what + ": rank " + std::to_string(rank) + " is not in [0, 8]");
  }
  if (rank > 0 && dims == nullptr) return NullArgument(out_error, kFunction, "dims");
  hml::Shape shape(dims, dims + rank);
  hml::Result<int64_t> elements = hml::CheckedNumElements(shape, *type);
  if (!elements.ok()) {
    return InvalidArgument(out_error, what + ": " + std::string(elements.status().message()));
  }
  const size_t expected = static_cast<size_t>(*elements) * hml::DTypeSize(*type);
  if (byte_size != expected) {
    return InvalidArgument(out_error, what + " of shape " + hml::ShapeToString(shape) + " takes " +
                                          std::to_string(expected) + " bytes, not byte_size " +
                                          std::to_string(byte_size));
  }
  if (data == nullptr && byte_size > 0) return NullArgument(out_error, kFunction, "data");
  hml::Result<hml::Tensor> tensor = hml::Tensor::Allocate(*type, std::move(shape));
  if (!tensor.ok()) return Fail(out_error, tensor.status());
  if (byte_size > 0) std::memcpy(tensor->raw_data(), data, byte_size);
  list->tensors.push_back({name, std::move(*tensor)});
  return Ok(out_error);
}

void hml_tensor_list_clear(hml_tensor_list* list) {
  if (list != nullptr) list->tensors.clear();
}

size_t hml_tensor_list_count(const hml_tensor_list* list) {
  return list == nullptr ? 0 : list->tensors.size();
}

// ---- Router ----------------------------------------------------------------------------------

const char* hml_route_policy_name(hml_route_policy policy) {
  const std::optional<hml::sdk::RoutePolicy> p = FromPolicy(policy);
  // The names are string literals, so their data is NUL-terminated.
  return p ? hml::sdk::RoutePolicyName(*p).data() : "unknown";
}

const char* hml_placement_name(hml_placement placement) {
  const std::optional<hml::sdk::Placement> p = FromPlacement(placement);
  return p ? hml::sdk::PlacementName(*p).data() : "unknown";
}

hml_status hml_router_options_create(hml_router_options** out_options, hml_error** out_error) {
  if (out_options == nullptr) {
    return NullArgument(out_error, "hml_router_options_create", "out_options");
  }
  auto* options = new (std::nothrow) hml_router_options{};
  if (options == nullptr) return OutOfMemory(out_error);
  *out_options = options;
  return Ok(out_error);
}

void hml_router_options_free(hml_router_options* options) { delete options; }

hml_status hml_router_options_set_local_reserve_ms(hml_router_options* options, int64_t reserve_ms,
                                                   hml_error** out_error) {
  constexpr const char* kFunction = "hml_router_options_set_local_reserve_ms";
  if (options == nullptr) return NullArgument(out_error, kFunction, "options");
  if (hml_status s = CheckMillis(kFunction, "reserve_ms", reserve_ms, 0, out_error); s != HML_OK) {
    return s;
  }
  options->options.local_reserve_nanos = reserve_ms * kNanosPerMilli;
  return Ok(out_error);
}

hml_status hml_router_options_set_retry_max_attempts(hml_router_options* options, int max_attempts,
                                                     hml_error** out_error) {
  constexpr const char* kFunction = "hml_router_options_set_retry_max_attempts";
  if (options == nullptr) return NullArgument(out_error, kFunction, "options");
  if (max_attempts < 1 || max_attempts > 5) {
    return InvalidArgument(out_error, std::string(kFunction) + ": max_attempts " +
                                          std::to_string(max_attempts) + " is not in [1, 5]");
  }
  options->options.resilience.retry.max_attempts = max_attempts;
  return Ok(out_error);
}

hml_status hml_router_options_set_breaker_failure_threshold(hml_router_options* options,
                                                            int threshold, hml_error** out_error) {
  constexpr const char* kFunction = "hml_router_options_set_breaker_failure_threshold";
  if (options == nullptr) return NullArgument(out_error, kFunction, "options");
  if (threshold < 1) {
    return InvalidArgument(out_error, std::string(kFunction) + ": threshold " +
                                          std::to_string(threshold) + " is not >= 1");
  }
  options->options.resilience.breaker.failure_threshold = threshold;
  return Ok(out_error);
}

hml_status hml_router_options_set_breaker_open_ms(hml_router_options* options, int64_t open_ms,
                                                  hml_error** out_error) {
  constexpr const char* kFunction = "hml_router_options_set_breaker_open_ms";
  if (options == nullptr) return NullArgument(out_error, kFunction, "options");
  if (hml_status s = CheckMillis(kFunction, "open_ms", open_ms, 1, out_error); s != HML_OK) {
    return s;
  }
  options->options.resilience.breaker.open_duration_nanos = open_ms * kNanosPerMilli;
  return Ok(out_error);
}

hml_status hml_router_options_set_hedging(hml_router_options* options, int enabled,
                                          hml_error** out_error) {
  if (options == nullptr) {
    return NullArgument(out_error, "hml_router_options_set_hedging", "options");
  }
  options->options.resilience.hedging.enabled = enabled != 0;
  return Ok(out_error);
}

hml_status hml_router_create(const hml_router_options* options, hml_router** out_router,
                             hml_error** out_error) {
  if (out_router == nullptr) return NullArgument(out_error, "hml_router_create", "out_router");
  return MakeRouter(options, nullptr, out_router, out_error);
}

void hml_router_free(hml_router* router) { delete router; }

hml_status hml_route_config_create(hml_route_config** out_config, hml_error** out_error) {
  if (out_config == nullptr) {
    return NullArgument(out_error, "hml_route_config_create", "out_config");
  }
  auto* config = new (std::nothrow) hml_route_config{};
  if (config == nullptr) return OutOfMemory(out_error);
  *out_config = config;
  return Ok(out_error);
}

void hml_route_config_free(hml_route_config* config) { delete config; }

hml_status hml_route_config_set_policy(hml_route_config* config, hml_route_policy policy,
                                       hml_error** out_error) {
  constexpr const char* kFunction = "hml_route_config_set_policy";
  if (config == nullptr) return NullArgument(out_error, kFunction, "config");
  const std::optional<hml::sdk::RoutePolicy> p = FromPolicy(policy);
  if (!p) {
    return InvalidArgument(out_error, std::string(kFunction) + ": policy " +
                                          std::to_string(policy) + " is not an hml_route_policy");
  }
  config->config.policy = *p;
  return Ok(out_error);
}

hml_status hml_route_config_set_local_model(hml_route_config* config, const hml_model* model,
                                            hml_error** out_error) {
  if (config == nullptr) {
    return NullArgument(out_error, "hml_route_config_set_local_model", "config");
  }
  // hml::Model shares its immutable graph: the copy outlives the caller's hml_model.
  if (model == nullptr) {
    config->config.local_model.reset();
  } else {
    config->config.local_model = model->model;
  }
  return Ok(out_error);
}

hml_status hml_route_config_set_session_options(hml_route_config* config,
                                                const hml_session_options* options,
                                                hml_error** out_error) {
  if (config == nullptr) {
    return NullArgument(out_error, "hml_route_config_set_session_options", "config");
  }
  config->config.session_options = options == nullptr ? hml::SessionOptions{} : options->options;
  return Ok(out_error);
}

hml_status hml_route_config_set_cloud_model(hml_route_config* config, const char* name,
                                            int64_t version, hml_error** out_error) {
  constexpr const char* kFunction = "hml_route_config_set_cloud_model";
  if (config == nullptr) return NullArgument(out_error, kFunction, "config");
  if (name == nullptr) return NullArgument(out_error, kFunction, "name");
  if (name[0] == '\0')
    return InvalidArgument(out_error, std::string(kFunction) + ": name is empty");
  if (version < 0) {
    return InvalidArgument(out_error, std::string(kFunction) + ": version " +
                                          std::to_string(version) + " is not >= 0");
  }
  config->config.cloud_model = name;
  config->config.cloud_version = version;
  return Ok(out_error);
}

hml_status hml_route_config_set_cascade_threshold(hml_route_config* config, double threshold,
                                                  hml_error** out_error) {
  constexpr const char* kFunction = "hml_route_config_set_cascade_threshold";
  if (config == nullptr) return NullArgument(out_error, kFunction, "config");
  if (!std::isfinite(threshold) || threshold < 0) {
    return InvalidArgument(out_error, std::string(kFunction) + ": threshold " +
                                          std::to_string(threshold) + " is not finite and >= 0");
  }
  config->config.cascade_threshold = threshold;
  return Ok(out_error);
}

hml_status hml_route_config_set_outputs_are_logits(hml_route_config* config, int logits,
                                                   hml_error** out_error) {
  if (config == nullptr) {
    return NullArgument(out_error, "hml_route_config_set_outputs_are_logits", "config");
  }
  config->config.cascade_output_is_logits = logits != 0;
  return Ok(out_error);
}

hml_status hml_route_config_set_default_deadline_ms(hml_route_config* config, int64_t deadline_ms,
                                                    hml_error** out_error) {
  constexpr const char* kFunction = "hml_route_config_set_default_deadline_ms";
  if (config == nullptr) return NullArgument(out_error, kFunction, "config");
  if (hml_status s = CheckMillis(kFunction, "deadline_ms", deadline_ms, 1, out_error);
      s != HML_OK) {
    return s;
  }
  config->config.default_deadline_nanos = deadline_ms * kNanosPerMilli;
  return Ok(out_error);
}

hml_status hml_route_config_set_expected_cloud_latency_ms(hml_route_config* config,
                                                          int64_t latency_ms,
                                                          hml_error** out_error) {
  constexpr const char* kFunction = "hml_route_config_set_expected_cloud_latency_ms";
  if (config == nullptr) return NullArgument(out_error, kFunction, "config");
  if (hml_status s = CheckMillis(kFunction, "latency_ms", latency_ms, 0, out_error); s != HML_OK) {
    return s;
  }
  config->config.expected_cloud_latency_nanos = latency_ms * kNanosPerMilli;
  return Ok(out_error);
}

hml_status hml_router_add_model(hml_router* router, const char* name,
                                const hml_route_config* config, hml_error** out_error) {
  constexpr const char* kFunction = "hml_router_add_model";
  if (router == nullptr) return NullArgument(out_error, kFunction, "router");
  if (name == nullptr) return NullArgument(out_error, kFunction, "name");
  if (config == nullptr) return NullArgument(out_error, kFunction, "config");
  if (name[0] == '\0')
    return InvalidArgument(out_error, std::string(kFunction) + ": name is empty");
  if (hml::Status s = router->router->AddModel(name, config->config); !s.ok()) {
    return Fail(out_error, s);
  }
  return Ok(out_error);
}

hml_status hml_router_infer(hml_router* router, const char* name, const hml_tensor_list* inputs,
                            int64_t deadline_ms, hml_routed_result** out_result,
                            hml_error** out_error) {
  constexpr const char* kFunction = "hml_router_infer";
  if (router == nullptr) return NullArgument(out_error, kFunction, "router");
  if (name == nullptr) return NullArgument(out_error, kFunction, "name");
  if (inputs == nullptr) return NullArgument(out_error, kFunction, "inputs");
  if (out_result == nullptr) return NullArgument(out_error, kFunction, "out_result");
  if (hml_status s = CheckMillis(kFunction, "deadline_ms", deadline_ms, 0, out_error);
      s != HML_OK) {
    return s;
  }
  auto result = std::unique_ptr<hml_routed_result>(new (std::nothrow) hml_routed_result{});
  if (result == nullptr) return OutOfMemory(out_error);
  const int64_t deadline_nanos =
      deadline_ms == 0 ? 0 : router->router->clock()->NowNanos() + deadline_ms * kNanosPerMilli;
  hml::Result<hml::sdk::RoutedResult> routed =
      router->router->Infer(name, inputs->tensors, deadline_nanos);
  if (!routed.ok()) return Fail(out_error, routed.status());
  result->result = std::move(*routed);
  *out_result = result.release();
  return Ok(out_error);
}

void hml_routed_result_free(hml_routed_result* result) { delete result; }

size_t hml_routed_result_output_count(const hml_routed_result* result) {
  return result == nullptr ? 0 : result->result.outputs.size();
}

const char* hml_routed_result_output_name(const hml_routed_result* result, size_t index) {
  if (result == nullptr || index >= result->result.outputs.size()) return nullptr;
  return result->result.outputs[index].name.c_str();
}

hml_status hml_routed_result_output_shape(const hml_routed_result* result, size_t index,
                                          int64_t* dims, size_t capacity, size_t* out_rank,
                                          hml_error** out_error) {
  constexpr const char* kFunction = "hml_routed_result_output_shape";
  if (result == nullptr) return NullArgument(out_error, kFunction, "result");
  if (out_rank == nullptr) return NullArgument(out_error, kFunction, "out_rank");
  if (capacity > 0 && dims == nullptr) return NullArgument(out_error, kFunction, "dims");
  if (hml_status s =
          CheckIndex(kFunction, index, result->result.outputs.size(), "outputs", out_error);
      s != HML_OK) {
    return s;
  }
  const hml::Shape& shape = result->result.outputs[index].tensor.shape();
  for (size_t i = 0; i < shape.size() && i < capacity; ++i) dims[i] = shape[i];
  *out_rank = shape.size();
  return Ok(out_error);
}

hml_status hml_routed_result_output(const hml_routed_result* result, size_t index,
                                    hml_dtype* out_dtype, const void** out_data,
                                    size_t* out_byte_size, hml_error** out_error) {
  constexpr const char* kFunction = "hml_routed_result_output";
  if (result == nullptr) return NullArgument(out_error, kFunction, "result");
  if (out_dtype == nullptr) return NullArgument(out_error, kFunction, "out_dtype");
  if (out_data == nullptr) return NullArgument(out_error, kFunction, "out_data");
  if (out_byte_size == nullptr) return NullArgument(out_error, kFunction, "out_byte_size");
  if (hml_status s =
          CheckIndex(kFunction, index, result->result.outputs.size(), "outputs", out_error);
      s != HML_OK) {
    return s;
  }
  const hml::Tensor& output = result->result.outputs[index].tensor;
  *out_dtype = static_cast<hml_dtype>(output.dtype());
  *out_data = output.raw_data();
  *out_byte_size = output.byte_size();
  return Ok(out_error);
}

hml_placement hml_routed_result_placement(const hml_routed_result* result) {
  return result == nullptr ? HML_PLACEMENT_LOCAL : ToPlacement(result->result.route.placement);
}

const char* hml_routed_result_reason(const hml_routed_result* result) {
  return result == nullptr ? "" : result->result.route.reason.c_str();
}

int hml_routed_result_attempts(const hml_routed_result* result) {
  return result == nullptr ? 0 : result->result.route.attempts;
}

int hml_routed_result_local_runs(const hml_routed_result* result) {
  return result == nullptr ? 0 : result->result.route.local_runs;
}

int64_t hml_routed_result_bytes_sent(const hml_routed_result* result) {
  return result == nullptr ? 0 : result->result.route.bytes_sent;
}

int64_t hml_routed_result_bytes_received(const hml_routed_result* result) {
  return result == nullptr ? 0 : result->result.route.bytes_received;
}

int64_t hml_routed_result_latency_us(const hml_routed_result* result) {
  return result == nullptr ? 0 : result->result.route.latency_nanos / 1000;
}

double hml_routed_result_cascade_top1(const hml_routed_result* result) {
  return result == nullptr ? -1.0 : result->result.route.top1;
}

const char* hml_routed_result_cloud_status(const hml_routed_result* result) {
  return result == nullptr ? "" : result->result.route.cloud_status.c_str();
}

// ---- Encrypted store -------------------------------------------------------------------------

hml_status hml_store_options_create(hml_store_options** out_options, hml_error** out_error) {
  if (out_options == nullptr) {
    return NullArgument(out_error, "hml_store_options_create", "out_options");
  }
  auto* options = new (std::nothrow) hml_store_options{};
  if (options == nullptr) return OutOfMemory(out_error);
  *out_options = options;
  return Ok(out_error);
}

void hml_store_options_free(hml_store_options* options) { delete options; }

hml_status hml_store_options_set_path(hml_store_options* options, const char* path,
                                      hml_error** out_error) {
  constexpr const char* kFunction = "hml_store_options_set_path";
  if (options == nullptr) return NullArgument(out_error, kFunction, "options");
  if (path == nullptr) return NullArgument(out_error, kFunction, "path");
  if (path[0] == '\0')
    return InvalidArgument(out_error, std::string(kFunction) + ": path is empty");
  options->path = path;
  return Ok(out_error);
}

hml_status hml_store_options_set_device_id(hml_store_options* options, const char* device_id,
                                           hml_error** out_error) {
  constexpr const char* kFunction = "hml_store_options_set_device_id";
  if (options == nullptr) return NullArgument(out_error, kFunction, "options");
  if (device_id == nullptr) return NullArgument(out_error, kFunction, "device_id");
  const size_t length = std::strlen(device_id);
  if (length < 1 || length > 128) {
    return InvalidArgument(out_error, std::string(kFunction) + ": device_id of " +
                                          std::to_string(length) + " bytes is not 1-128 bytes");
  }
  options->device_id = device_id;
  return Ok(out_error);
}

hml_status hml_store_options_set_queue_capacity(hml_store_options* options, int64_t max_records,
                                                int64_t max_bytes, hml_error** out_error) {
  constexpr const char* kFunction = "hml_store_options_set_queue_capacity";
  if (options == nullptr) return NullArgument(out_error, kFunction, "options");
  if (max_records < 1) {
    return InvalidArgument(out_error, std::string(kFunction) + ": max_records " +
                                          std::to_string(max_records) + " is not >= 1");
  }
  if (max_bytes < 1) {
    return InvalidArgument(out_error, std::string(kFunction) + ": max_bytes " +
                                          std::to_string(max_bytes) + " is not >= 1");
  }
  options->max_records = max_records;
  options->max_bytes = max_bytes;
  return Ok(out_error);
}

hml_status hml_store_options_set_overflow_policy(hml_store_options* options,
                                                 hml_overflow_policy policy,
                                                 hml_error** out_error) {
  constexpr const char* kFunction = "hml_store_options_set_overflow_policy";
  if (options == nullptr) return NullArgument(out_error, kFunction, "options");
  switch (policy) {
    case HML_OVERFLOW_DROP_OLDEST:
      options->overflow = hml::sdk::OverflowPolicy::kDropOldest;
      return Ok(out_error);
    case HML_OVERFLOW_REJECT_NEW:
      options->overflow = hml::sdk::OverflowPolicy::kRejectNew;
      return Ok(out_error);
  }
  return InvalidArgument(out_error, std::string(kFunction) + ": policy " + std::to_string(policy) +
                                        " is not an hml_overflow_policy");
}

hml_status hml_store_options_set_max_record_bytes(hml_store_options* options, size_t max_bytes,
                                                  hml_error** out_error) {
  constexpr const char* kFunction = "hml_store_options_set_max_record_bytes";
  if (options == nullptr) return NullArgument(out_error, kFunction, "options");
  if (max_bytes < 1 || max_bytes > (size_t{64} << 20)) {
    return InvalidArgument(out_error, std::string(kFunction) + ": max_bytes " +
                                          std::to_string(max_bytes) + " is not in [1, 64 MiB]");
  }
  options->max_record_bytes = max_bytes;
  return Ok(out_error);
}

hml_status hml_store_open(const hml_store_options* options, const void* key, size_t key_len,
                          hml_store** out_store, hml_error** out_error) {
  constexpr const char* kFunction = "hml_store_open";
  if (options == nullptr) return NullArgument(out_error, kFunction, "options");
  if (key == nullptr) return NullArgument(out_error, kFunction, "key");
  if (out_store == nullptr) return NullArgument(out_error, kFunction, "out_store");
  if (key_len != hml::sdk::kStoreKeyBytes) {
    return InvalidArgument(out_error, std::string(kFunction) + ": key_len is " +
                                          std::to_string(key_len) + ", not 32 (a 256-bit key)");
  }
  if (options->path.empty()) {
    return InvalidArgument(
        out_error, std::string(kFunction) + ": options have no path (hml_store_options_set_path)");
  }
  if (options->device_id.empty()) {
    return InvalidArgument(
        out_error,
        std::string(kFunction) + ": options have no device id (hml_store_options_set_device_id)");
  }
  hml::Result<hml::sdk::StoreKey> store_key =
      hml::sdk::StoreKey::FromBytes(std::string_view(static_cast<const char*>(key), key_len));
  if (!store_key.ok()) return Fail(out_error, store_key.status());
  auto handle = std::unique_ptr<hml_store>(new (std::nothrow) hml_store{});
  if (handle == nullptr) return OutOfMemory(out_error);
  handle->keys = std::make_unique<hml::sdk::FixedKeyProvider>(*store_key);
  handle->queue.max_records = options->max_records;
  handle->queue.max_bytes = options->max_bytes;
  handle->queue.overflow = options->overflow;
  hml::sdk::EncryptedStoreOptions store_options;
  store_options.keys = handle->keys.get();
  store_options.device_id = options->device_id;
  store_options.max_record_bytes = options->max_record_bytes;
  hml::Result<std::unique_ptr<hml::sdk::EncryptedStore>> store =
      hml::sdk::EncryptedStore::Open(options->path, store_options);
  if (!store.ok()) return Fail(out_error, store.status());
  handle->store = std::move(*store);
  *out_store = handle.release();
  return Ok(out_error);
}

void hml_store_free(hml_store* store) { delete store; }

hml_status hml_store_put(hml_store* store, const char* table, const void* value, size_t size,
                         int64_t* out_id, hml_error** out_error) {
  constexpr const char* kFunction = "hml_store_put";
  if (store == nullptr) return NullArgument(out_error, kFunction, "store");
  if (hml_status s = CheckTable(kFunction, table, out_error); s != HML_OK) return s;
  if (value == nullptr && size > 0) return NullArgument(out_error, kFunction, "value");
  // A BoundedQueue is a view (the table and its bounds) over the store: making one per call
  // costs nothing, and every put checks the bounds inside its own transaction.
  hml::sdk::BoundedQueueOptions queue_options = store->queue;
  queue_options.table = table;
  hml::Result<std::unique_ptr<hml::sdk::BoundedQueue>> queue =
      hml::sdk::BoundedQueue::Create(store->store.get(), queue_options);
  if (!queue.ok()) return Fail(out_error, queue.status());
  hml::Result<int64_t> id = (*queue)->Enqueue(
      size == 0 ? std::string_view() : std::string_view(static_cast<const char*>(value), size));
  if (!id.ok()) return Fail(out_error, id.status());
  if (out_id != nullptr) *out_id = *id;
  return Ok(out_error);
}

hml_status hml_store_get(hml_store* store, const char* table, int64_t id, hml_bytes** out_value,
                         hml_error** out_error) {
  constexpr const char* kFunction = "hml_store_get";
  if (store == nullptr) return NullArgument(out_error, kFunction, "store");
  if (hml_status s = CheckTable(kFunction, table, out_error); s != HML_OK) return s;
  if (out_value == nullptr) return NullArgument(out_error, kFunction, "out_value");
  auto bytes = std::unique_ptr<hml_bytes>(new (std::nothrow) hml_bytes{});
  if (bytes == nullptr) return OutOfMemory(out_error);
  hml::Result<std::string> value = store->store->Get(table, id);
  if (!value.ok()) return Fail(out_error, value.status());
  bytes->data = std::move(*value);
  *out_value = bytes.release();
  return Ok(out_error);
}

hml_status hml_store_scan(hml_store* store, const char* table, int64_t after_id, size_t limit,
                          hml_records** out_records, hml_error** out_error) {
  constexpr const char* kFunction = "hml_store_scan";
  if (store == nullptr) return NullArgument(out_error, kFunction, "store");
  if (hml_status s = CheckTable(kFunction, table, out_error); s != HML_OK) return s;
  if (out_records == nullptr) return NullArgument(out_error, kFunction, "out_records");
  if (limit < 1) return InvalidArgument(out_error, std::string(kFunction) + ": limit is 0");
  auto records = std::unique_ptr<hml_records>(new (std::nothrow) hml_records{});
  if (records == nullptr) return OutOfMemory(out_error);
  hml::Result<std::vector<hml::sdk::StoredRecord>> scanned =
      store->store->Scan(table, after_id, limit);
  if (!scanned.ok()) return Fail(out_error, scanned.status());
  records->records = std::move(*scanned);
  *out_records = records.release();
  return Ok(out_error);
}

hml_status hml_store_delete(hml_store* store, const char* table, const int64_t* ids, size_t count,
                            int64_t* out_deleted, hml_error** out_error) {
  constexpr const char* kFunction = "hml_store_delete";
  if (store == nullptr) return NullArgument(out_error, kFunction, "store");
  if (hml_status s = CheckTable(kFunction, table, out_error); s != HML_OK) return s;
  if (ids == nullptr && count > 0) return NullArgument(out_error, kFunction, "ids");
  hml::Result<int64_t> deleted = store->store->Delete(table, std::span<const int64_t>(ids, count));
  if (!deleted.ok()) return Fail(out_error, deleted.status());
  if (out_deleted != nullptr) *out_deleted = *deleted;
  return Ok(out_error);
}

hml_status hml_store_count(hml_store* store, const char* table, int64_t* out_count,
                           hml_error** out_error) {
  constexpr const char* kFunction = "hml_store_count";
  if (store == nullptr) return NullArgument(out_error, kFunction, "store");
  if (hml_status s = CheckTable(kFunction, table, out_error); s != HML_OK) return s;
  if (out_count == nullptr) return NullArgument(out_error, kFunction, "out_count");
  hml::Result<int64_t> count = store->store->Count(table);
  if (!count.ok()) return Fail(out_error, count.status());
  *out_count = *count;
  return Ok(out_error);
}

hml_status hml_store_overflow_counts(hml_store* store, const char* table, int64_t* out_dropped,
                                     int64_t* out_rejected, hml_error** out_error) {
  constexpr const char* kFunction = "hml_store_overflow_counts";
  if (store == nullptr) return NullArgument(out_error, kFunction, "store");
  if (hml_status s = CheckTable(kFunction, table, out_error); s != HML_OK) return s;
  hml::Result<hml::sdk::TableStats> stats = store->store->Stats(table);
  if (!stats.ok()) return Fail(out_error, stats.status());
  if (out_dropped != nullptr) *out_dropped = stats->dropped;
  if (out_rejected != nullptr) *out_rejected = stats->rejected;
  return Ok(out_error);
}

const void* hml_bytes_data(const hml_bytes* bytes) {
  return bytes == nullptr ? nullptr : bytes->data.data();
}

size_t hml_bytes_size(const hml_bytes* bytes) { return bytes == nullptr ? 0 : bytes->data.size(); }

void hml_bytes_free(hml_bytes* bytes) {
  if (bytes == nullptr) return;
  // Plaintext of an encrypted record: do not leave it in freed memory.
  if (!bytes->data.empty()) sodium_memzero(bytes->data.data(), bytes->data.size());
  delete bytes;
}

size_t hml_records_count(const hml_records* records) {
  return records == nullptr ? 0 : records->records.size();
}

int64_t hml_records_id(const hml_records* records, size_t index) {
  if (records == nullptr || index >= records->records.size()) return 0;
  return records->records[index].id;
}

hml_status hml_records_value(const hml_records* records, size_t index, const void** out_data,
                             size_t* out_size, hml_error** out_error) {
  constexpr const char* kFunction = "hml_records_value";
  if (records == nullptr) return NullArgument(out_error, kFunction, "records");
  if (out_data == nullptr) return NullArgument(out_error, kFunction, "out_data");
  if (out_size == nullptr) return NullArgument(out_error, kFunction, "out_size");
  if (hml_status s = CheckIndex(kFunction, index, records->records.size(), "records", out_error);
      s != HML_OK) {
    return s;
  }
  const std::string& payload = records->records[index].payload;
  *out_data = payload.data();
  *out_size = payload.size();
  return Ok(out_error);
}

void hml_records_free(hml_records* records) {
  if (records == nullptr) return;
  for (hml::sdk::StoredRecord& record : records->records) {
    if (!record.payload.empty()) sodium_memzero(record.payload.data(), record.payload.size());
  }
  delete records;
}

}  // extern "C"

// ---- C++-only entry points (hml_c_internal.h) ------------------------------------------------

hml_status hml_c_null_argument(hml_error** out_error, const char* function, const char* what) {
  return NullArgument(out_error, function, what);
}

hml_status hml_c_fail(hml_error** out_error, const hml::Status& status) {
  if (status.ok()) return Ok(out_error);
  return Fail(out_error, status);
}

hml_status hml_router_create_with_transport(const hml_router_options* options,
                                            hml::sdk::Transport* transport, hml_router** out_router,
                                            hml_error** out_error) {
  constexpr const char* kFunction = "hml_router_create_with_transport";
  if (transport == nullptr) return NullArgument(out_error, kFunction, "transport");
  if (out_router == nullptr) return NullArgument(out_error, kFunction, "out_router");
  return MakeRouter(options, transport, out_router, out_error);
}

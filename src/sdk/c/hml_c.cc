// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The C ABI (include/hml/c/hml.h) as a thin shim over the C++ API: each handle wraps the C++
// object, each call checks its arguments, calls through, and turns an hml::Status into an
// hml_status plus an optional hml_error. No logic of its own lives here.
#include "hml/c/hml.h"

#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "hml/runtime/model.h"
#include "hml/runtime/session.h"
#include "hml/status.h"

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

hml_status MakeModel(hml::Result<hml::Model> loaded, hml_model** out_model,
                     hml_error** out_error) {
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

hml_status Shape(const char* function, const hml::TensorSpec& spec, int64_t* dims,
                 size_t capacity, size_t* out_rank, hml_error** out_error) {
  if (out_rank == nullptr) return NullArgument(out_error, function, "out_rank");
  if (capacity > 0 && dims == nullptr) return NullArgument(out_error, function, "dims");
  for (size_t i = 0; i < spec.shape.size() && i < capacity; ++i) dims[i] = spec.shape[i];
  *out_rank = spec.shape.size();
  return Ok(out_error);
}

}  // namespace

extern "C" {

const char* hml_version(void) { return HML_VERSION_STRING; }

const char* hml_status_name(hml_status status) {
  static const char* const kNames[] = {
      "OK",        "CANCELLED",         "UNKNOWN",          "INVALID_ARGUMENT",
      "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",   "PERMISSION_DENIED",
      "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
      "UNIMPLEMENTED", "INTERNAL",      "UNAVAILABLE",      "DATA_LOSS",
      "UNAUTHENTICATED"};
  const int index = static_cast<int>(status);
  if (index < 0 || index >= static_cast<int>(sizeof(kNames) / sizeof(kNames[0]))) {
    return "UNKNOWN";
  }
  return kNames[index];
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
  return MakeModel(
      hml::Model::FromOnnx(std::string_view(static_cast<const char*>(data), size)), out_model,
      out_error);
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

hml_status hml_session_options_create(hml_session_options** out_options,
                                      hml_error** out_error) {
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
    return InvalidArgument(out_error, std::string(kFunction) + ": rank " +
                                          std::to_string(rank) + " is not in [0, 8]");
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
  if (hml_status s = CheckIndex(kFunction, index, session->session->num_inputs(),
                                "inputs", out_error);
      s != HML_OK) {
    return s;
  }
  return Shape(kFunction, session->session->input_spec(index), dims, capacity, out_rank,
               out_error);
}

hml_status hml_session_output_shape(const hml_session* session, size_t index, int64_t* dims,
                                    size_t capacity, size_t* out_rank, hml_error** out_error) {
  constexpr const char* kFunction = "hml_session_output_shape";
  if (session == nullptr) return NullArgument(out_error, kFunction, "session");
  if (hml_status s = CheckIndex(kFunction, index, session->session->num_outputs(),
                                "outputs", out_error);
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
  if (hml_status s = CheckIndex(kFunction, index, session->session->num_inputs(),
                                "inputs", out_error);
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

hml_status hml_session_get_output(const hml_session* session, size_t index,
                                  hml_dtype* out_dtype, const void** out_data,
                                  size_t* out_byte_size, hml_error** out_error) {
  constexpr const char* kFunction = "hml_session_get_output";
  if (session == nullptr) return NullArgument(out_error, kFunction, "session");
  if (out_dtype == nullptr) return NullArgument(out_error, kFunction, "out_dtype");
  if (out_data == nullptr) return NullArgument(out_error, kFunction, "out_data");
  if (out_byte_size == nullptr) return NullArgument(out_error, kFunction, "out_byte_size");
  if (hml_status s = CheckIndex(kFunction, index, session->session->num_outputs(),
                                "outputs", out_error);
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

}  // extern "C"

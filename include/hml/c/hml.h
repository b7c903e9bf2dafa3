/* Copyright hybridml authors. Licensed under the Apache License 2.0.
 *
 * The C ABI of hybridml: what an Android app reaches through JNI and an iOS app through Swift.
 * Plain C99; every object is an opaque handle.
 *
 * Conventions
 * - Names are hml_<object>_<verb>. Every handle made by hml_<object>_create/load is released by
 *   hml_<object>_free, which accepts NULL.
 * - Calls that can fail return an hml_status (HML_OK = 0) and take a last argument
 *   `hml_error** out_error`: NULL when the caller needs only the code; otherwise, on failure,
 *   *out_error receives an error object (code + message naming what and why) that the caller
 *   frees with hml_error_free; on success it is set to NULL. Outputs are written only on success.
 * - Bad arguments (NULL where a handle or buffer is needed, an index out of range, a size that
 *   does not match) are HML_INVALID_ARGUMENT with a message naming the argument; they never
 *   crash and never change the object.
 * - Strings returned (names, messages) are owned by the object they come from and stay valid
 *   until it is freed.
 *
 * Thread safety: an hml_model is immutable once loaded and may be shared by any number of
 * sessions on any threads. Every other object is used by one thread at a time.
 *
 * So far this is the runtime: load an ONNX model, run it in a session. The SDK's router, store
 * and sync join it as they land (docs/sdk.md).
 */
#ifndef HML_C_HML_H_
#define HML_C_HML_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes: the same numbers as gRPC's and hml::StatusCode. */
typedef enum hml_status {
  HML_OK = 0,
  HML_CANCELLED = 1,
  HML_UNKNOWN = 2,
  HML_INVALID_ARGUMENT = 3,
  HML_DEADLINE_EXCEEDED = 4,
  HML_NOT_FOUND = 5,
  HML_ALREADY_EXISTS = 6,
  HML_PERMISSION_DENIED = 7,
  HML_RESOURCE_EXHAUSTED = 8,
  HML_FAILED_PRECONDITION = 9,
  HML_ABORTED = 10,
  HML_OUT_OF_RANGE = 11,
  HML_UNIMPLEMENTED = 12,
  HML_INTERNAL = 13,
  HML_UNAVAILABLE = 14,
  HML_DATA_LOSS = 15,
  HML_UNAUTHENTICATED = 16
} hml_status;

/* Element types of tensors (the values of hml::DType). */
typedef enum hml_dtype {
  HML_DTYPE_UNDEFINED = 0,
  HML_DTYPE_FLOAT32 = 1,
  HML_DTYPE_UINT8 = 2,
  HML_DTYPE_INT8 = 3,
  HML_DTYPE_INT32 = 6,
  HML_DTYPE_INT64 = 7
} hml_dtype;

/* The library version, "MAJOR.MINOR.PATCH". */
const char* hml_version(void);
/* "OK", "INVALID_ARGUMENT", ...; "UNKNOWN" for values outside the enum. */
const char* hml_status_name(hml_status status);

/* ---- Errors ---------------------------------------------------------------------------- */

typedef struct hml_error hml_error;

/* HML_UNKNOWN for a NULL error. */
hml_status hml_error_code(const hml_error* error);
/* The message; "" for a NULL error. */
const char* hml_error_message(const hml_error* error);
void hml_error_free(hml_error* error);

/* ---- Models ---------------------------------------------------------------------------- */

typedef struct hml_model hml_model;

/* Loads and validates the ONNX file at `path`. HML_NOT_FOUND / HML_PERMISSION_DENIED for a file
 * that cannot be read, HML_INVALID_ARGUMENT naming the node or tensor for a model that is not
 * valid ONNX or uses what the runtime does not support. */
hml_status hml_model_load(const char* path, hml_model** out_model, hml_error** out_error);
/* The same from `size` bytes of a serialized ONNX ModelProto (copied; the buffer may be freed
 * after the call). */
hml_status hml_model_load_from_memory(const void* data, size_t size, hml_model** out_model,
                                      hml_error** out_error);
void hml_model_free(hml_model* model);

/* Number of inputs / outputs; 0 for a NULL model. */
size_t hml_model_input_count(const hml_model* model);
size_t hml_model_output_count(const hml_model* model);
/* The name of input / output `index`; NULL for a NULL model or an index out of range. */
const char* hml_model_input_name(const hml_model* model, size_t index);
const char* hml_model_output_name(const hml_model* model, size_t index);

/* ---- Session options ------------------------------------------------------------------- */

typedef struct hml_session_options hml_session_options;

/* Defaults: backend "xnnpack" (nodes it cannot run fall back to "reference"), 1 thread, dynamic
 * dimensions of every input fixed at 1. */
hml_status hml_session_options_create(hml_session_options** out_options, hml_error** out_error);
void hml_session_options_free(hml_session_options* options);
/* Intra-op threads, in [1, 64]. */
hml_status hml_session_options_set_threads(hml_session_options* options, int threads,
                                           hml_error** out_error);
/* "xnnpack" or "reference". An unknown name is reported by hml_session_create. */
hml_status hml_session_options_set_backend(hml_session_options* options, const char* backend,
                                           hml_error** out_error);
/* Fixes the shape of the input named `input` (e.g. its batch dimension): `rank` dimensions,
 * each >= 1, rank in [0, 8]. */
hml_status hml_session_options_set_input_shape(hml_session_options* options, const char* input,
                                               const int64_t* dims, size_t rank,
                                               hml_error** out_error);

/* ---- Sessions -------------------------------------------------------------------------- */

typedef struct hml_session hml_session;

/* Compiles `model` for the options (NULL = defaults). The model must outlive the session.
 * Errors: HML_INVALID_ARGUMENT for bad options or shapes, HML_NOT_FOUND for an unknown backend,
 * HML_UNIMPLEMENTED naming a node no backend supports. */
hml_status hml_session_create(const hml_model* model, const hml_session_options* options,
                              hml_session** out_session, hml_error** out_error);
void hml_session_free(hml_session* session);

/* Shape of input / output `index`: writes up to `capacity` dimensions to `dims` and the rank
 * to *out_rank (capacity may be 0 to ask for the rank alone). */
hml_status hml_session_input_shape(const hml_session* session, size_t index, int64_t* dims,
                                   size_t capacity, size_t* out_rank, hml_error** out_error);
hml_status hml_session_output_shape(const hml_session* session, size_t index, int64_t* dims,
                                    size_t capacity, size_t* out_rank, hml_error** out_error);

/* Copies `byte_size` bytes of `dtype` elements into input `index`. The dtype and the byte size
 * must be the input's (its shape's element count x the element size). */
hml_status hml_session_set_input(hml_session* session, size_t index, hml_dtype dtype,
                                 const void* data, size_t byte_size, hml_error** out_error);
/* Runs the model on the inputs set so far. */
hml_status hml_session_run(hml_session* session, hml_error** out_error);
/* A view of output `index` after a successful run: its dtype, its bytes and their count. The
 * view stays valid until the next hml_session_run or hml_session_free. */
hml_status hml_session_get_output(const hml_session* session, size_t index,
                                  hml_dtype* out_dtype, const void** out_data,
                                  size_t* out_byte_size, hml_error** out_error);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* HML_C_HML_H_ */

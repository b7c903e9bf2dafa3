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
 * - Options objects (hml_<object>_options, hml_route_config) start at documented defaults; each
 *   setter validates its value at once (HML_INVALID_ARGUMENT naming it, the object unchanged).
 *   The object that takes them copies what it needs, so options may be freed after the call.
 *
 * Thread safety: an hml_model is immutable once loaded and may be shared by any number of
 * sessions on any threads. An hml_router and an hml_store are thread-safe: any number of threads
 * may call them at once. Every other object (options, sessions, tensor lists, routed results,
 * byte buffers, scanned records) is used by one thread at a time; a routed result belongs to the
 * call that made it and is not shared.
 *
 * Contents: the runtime (load an ONNX model, run it in a session), the hybrid-inference router
 * (local model or cloud model per request, with fallback) and the encrypted local store
 * (docs/sdk.md, "C ABI").
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
hml_status hml_session_get_output(const hml_session* session, size_t index, hml_dtype* out_dtype,
                                  const void** out_data, size_t* out_byte_size,
                                  hml_error** out_error);

/* ---- Tensor lists (inputs of a routed inference) ----------------------------------------- */

/* A list of named tensors built one tensor at a time: the inputs of hml_router_infer. Each
 * hml_tensor_list_add copies the name, shape and bytes, so the caller's buffers may be reused at
 * once (a JNI array released, a Swift buffer pointer gone out of scope). A list may be passed to
 * any number of hml_router_infer calls, and cleared and refilled. */
typedef struct hml_tensor_list hml_tensor_list;

hml_status hml_tensor_list_create(hml_tensor_list** out_list, hml_error** out_error);
void hml_tensor_list_free(hml_tensor_list* list);
/* Appends a copy of the tensor `name` (non-empty, unique in the list) of `dtype` and shape
 * `dims[0..rank)` (rank in [0, 8], each dimension >= 0) from `byte_size` bytes at `data`, which
 * must be exactly the shape's element count x the element size. */
hml_status hml_tensor_list_add(hml_tensor_list* list, const char* name, hml_dtype dtype,
                               const int64_t* dims, size_t rank, const void* data, size_t byte_size,
                               hml_error** out_error);
/* Removes every tensor. Nothing happens for a NULL list. */
void hml_tensor_list_clear(hml_tensor_list* list);
/* Number of tensors; 0 for a NULL list. */
size_t hml_tensor_list_count(const hml_tensor_list* list);

/* ---- Router: hybrid inference ------------------------------------------------------------ */

/* How a model's requests are routed (the router's RoutePolicy; docs/sdk.md explains each). */
typedef enum hml_route_policy {
  HML_ROUTE_LOCAL_ONLY = 0,   /* the local model; its error is the answer */
  HML_ROUTE_CLOUD_ONLY = 1,   /* the cloud model (a local model, if given, is the fallback) */
  HML_ROUTE_PREFER_LOCAL = 2, /* the local model; the cloud when there is none or it fails */
  HML_ROUTE_PREFER_CLOUD = 3, /* the cloud; local when its breaker is open or time is short */
  HML_ROUTE_CASCADE = 4,      /* local; offloaded to the cloud when its top-1 is too low */
  HML_ROUTE_SPLIT = 5 /* the model's head on the device, its tail in the cloud (int8 cut tensors);
                         the cut is planned per request with the default SplitConfig; needs the
                         same model on both sides */
} hml_route_policy;

/* Where a request was answered (the router's Placement). */
typedef enum hml_placement {
  HML_PLACEMENT_LOCAL = 0,                     /* the local model, by choice */
  HML_PLACEMENT_CLOUD = 1,                     /* the cloud model, by choice */
  HML_PLACEMENT_LOCAL_AFTER_CLOUD_FAILURE = 2, /* the cloud failed; the local model answered */
  HML_PLACEMENT_CLOUD_AFTER_LOCAL_FAILURE = 3, /* the local model failed; the cloud answered */
  HML_PLACEMENT_CASCADE_LOCAL = 4,     /* cascade: local was confident (or offload failed) */
  HML_PLACEMENT_CASCADE_OFFLOADED = 5, /* cascade: local was not confident; the cloud answered */
  HML_PLACEMENT_SPLIT = 6 /* split: the head ran on the device, the tail in the cloud */
} hml_placement;

/* "local-only", "cloud-only", "prefer-local", "prefer-cloud", "cascade"; "unknown" otherwise. */
const char* hml_route_policy_name(hml_route_policy policy);
/* "local", "cloud", "local-after-cloud-failure", "cloud-after-local-failure", "cascade-local",
 * "cascade-offloaded"; "unknown" otherwise. */
const char* hml_placement_name(hml_placement placement);

/* Options of a router: how cloud calls are retried and when they stop being tried. */
typedef struct hml_router_options hml_router_options;

/* Defaults: local reserve 20 ms, 5 attempts per cloud call, the breaker opens after 5
 * consecutive failures for 5000 ms, no hedging. */
hml_status hml_router_options_create(hml_router_options** out_options, hml_error** out_error);
void hml_router_options_free(hml_router_options* options);
/* Time kept for the local fallback: a cloud call that may still fall back to the local model
 * gets the deadline minus max(this, 2 x the local run's average). In [0, 1e9]. */
hml_status hml_router_options_set_local_reserve_ms(hml_router_options* options, int64_t reserve_ms,
                                                   hml_error** out_error);
/* Attempts per cloud call, the first included; 1 disables retries. In [1, 5] (gRPC's limit). */
hml_status hml_router_options_set_retry_max_attempts(hml_router_options* options, int max_attempts,
                                                     hml_error** out_error);
/* Consecutive cloud failures that open the circuit breaker. >= 1. */
hml_status hml_router_options_set_breaker_failure_threshold(hml_router_options* options,
                                                            int threshold, hml_error** out_error);
/* How long the open breaker refuses cloud calls before letting one probe through. In
 * [1, 1e9]. */
hml_status hml_router_options_set_breaker_open_ms(hml_router_options* options, int64_t open_ms,
                                                  hml_error** out_error);
/* Nonzero: send a second (hedge) cloud attempt when the first is slower than the 95th
 * percentile of recent ones. 0: never (the default; hedging costs server load). */
hml_status hml_router_options_set_hedging(hml_router_options* options, int enabled,
                                          hml_error** out_error);

/* A router: registered models, each with a route policy, answering requests on the device or in
 * the cloud. Thread-safe. */
typedef struct hml_router hml_router;

/* A router with the options (NULL = defaults) and no network (for one, hml_router_create_over in
 * hml/c/hml_grpc.h): every cloud call fails at once with HML_UNAVAILABLE ("no transport
 * configured"; retries and the breaker do not apply to it). Local-only and
 * prefer-local models with a local model work fully; cloud-only, prefer-cloud and cascade
 * models can be added, and answer locally only where their policy falls back to a local model. */
hml_status hml_router_create(const hml_router_options* options, hml_router** out_router,
                             hml_error** out_error);
/* REQUIRES: no call on this router is running (it is not waited for). */
void hml_router_free(hml_router* router);

/* How one model is served: the arguments of hml_router_add_model. */
typedef struct hml_route_config hml_route_config;

/* Defaults: policy HML_ROUTE_PREFER_LOCAL, no local model, default session options, no cloud
 * model (version 0 = the latest), cascade threshold 0.8 on outputs that already are
 * probabilities, default deadline 1000 ms, expected cloud latency 0 ms (fast until measured). */
hml_status hml_route_config_create(hml_route_config** out_config, hml_error** out_error);
void hml_route_config_free(hml_route_config* config);
hml_status hml_route_config_set_policy(hml_route_config* config, hml_route_policy policy,
                                       hml_error** out_error);
/* The on-device model. The config shares the model's (immutable) contents, so the caller may
 * free its hml_model at once. NULL removes the local model. */
hml_status hml_route_config_set_local_model(hml_route_config* config, const hml_model* model,
                                            hml_error** out_error);
/* Options of the local model's session (copied). NULL restores the defaults. */
hml_status hml_route_config_set_session_options(hml_route_config* config,
                                                const hml_session_options* options,
                                                hml_error** out_error);
/* The model's name (non-empty) and version (>= 0; 0 = the latest) in the cloud registry. */
hml_status hml_route_config_set_cloud_model(hml_route_config* config, const char* name,
                                            int64_t version, hml_error** out_error);
/* Cascade: offload when the local top-1 probability is below `threshold`; 0 never offloads,
 * above 1 always does. Finite and >= 0. */
hml_status hml_route_config_set_cascade_threshold(hml_route_config* config, double threshold,
                                                  hml_error** out_error);
/* Cascade: nonzero when the model's first output holds logits (a softmax is applied before the
 * top-1); 0 when it holds probabilities. */
hml_status hml_route_config_set_outputs_are_logits(hml_route_config* config, int logits,
                                                   hml_error** out_error);
/* The deadline of a request that gives none (deadline_ms 0), from the call. In [1, 1e9]. */
hml_status hml_route_config_set_default_deadline_ms(hml_route_config* config, int64_t deadline_ms,
                                                    hml_error** out_error);
/* The cloud's latency assumed before any call is measured (prefer-cloud's "deadline near"
 * test). In [0, 1e9]. */
hml_status hml_route_config_set_expected_cloud_latency_ms(hml_route_config* config,
                                                          int64_t latency_ms,
                                                          hml_error** out_error);

/* Registers model `name` (copies the config). HML_INVALID_ARGUMENT when the config does not fit
 * its policy (no cloud model for cloud-only, prefer-cloud or cascade; no local model for
 * local-only or cascade), HML_ALREADY_EXISTS for a name already registered. A local model that
 * does not compile is not an error here: the router records it and its requests report it (or
 * fall back to the cloud). Thread-safe. */
hml_status hml_router_add_model(hml_router* router, const char* name,
                                const hml_route_config* config, hml_error** out_error);

/* The outputs and the route of one answered request. Owned by the caller; not shared. */
typedef struct hml_routed_result hml_routed_result;

/* Answers one request for model `name` with `inputs` (the model's inputs by name, any order;
 * the list is only read and may be reused). `deadline_ms` is relative to the call; 0 = the
 * model's default deadline; in [0, 1e9]. Blocks until the answer; thread-safe, so requests from
 * many threads run at once (one local run per model at a time). Errors: HML_NOT_FOUND for an
 * unknown model; otherwise the error of the last route tried (e.g. HML_UNAVAILABLE,
 * HML_DEADLINE_EXCEEDED, HML_INVALID_ARGUMENT for inputs that do not fit the model), with the
 * earlier one in its message. */
hml_status hml_router_infer(hml_router* router, const char* name, const hml_tensor_list* inputs,
                            int64_t deadline_ms, hml_routed_result** out_result,
                            hml_error** out_error);
void hml_routed_result_free(hml_routed_result* result);

/* Number of outputs; 0 for a NULL result. */
size_t hml_routed_result_output_count(const hml_routed_result* result);
/* The name of output `index`; NULL for a NULL result or an index out of range. */
const char* hml_routed_result_output_name(const hml_routed_result* result, size_t index);
/* Shape of output `index`, as hml_session_output_shape. */
hml_status hml_routed_result_output_shape(const hml_routed_result* result, size_t index,
                                          int64_t* dims, size_t capacity, size_t* out_rank,
                                          hml_error** out_error);
/* A view of output `index`: its dtype, its bytes and their count, valid until the result is
 * freed. */
hml_status hml_routed_result_output(const hml_routed_result* result, size_t index,
                                    hml_dtype* out_dtype, const void** out_data,
                                    size_t* out_byte_size, hml_error** out_error);

/* The route taken. For a NULL result: HML_PLACEMENT_LOCAL, "", 0 and -1 (top-1). */
hml_placement hml_routed_result_placement(const hml_routed_result* result);
/* Why, in a few words: "policy", "no local model", "local failed: ...", "breaker open",
 * "deadline near", "cloud failed: ...", "top1 0.42 < 0.80". */
const char* hml_routed_result_reason(const hml_routed_result* result);
/* Cloud attempts started (retries and hedges included); 0 when the cloud was not called. */
int hml_routed_result_attempts(const hml_routed_result* result);
/* Local model runs (0 or 1). */
int hml_routed_result_local_runs(const hml_routed_result* result);
/* Bytes on the wire over all cloud attempts, failed ones included. */
int64_t hml_routed_result_bytes_sent(const hml_routed_result* result);
int64_t hml_routed_result_bytes_received(const hml_routed_result* result);
/* From the start of hml_router_infer to its answer, in microseconds. */
int64_t hml_routed_result_latency_us(const hml_routed_result* result);
/* Cascade only: the top-1 probability of the local answer; -1 otherwise. */
double hml_routed_result_cascade_top1(const hml_routed_result* result);
/* The cloud's final status when it was called ("OK" or the error); "" when it was not. */
const char* hml_routed_result_cloud_status(const hml_routed_result* result);

/* ---- Encrypted store --------------------------------------------------------------------- */

/* What a full table does with a new record (hml_store_put). */
typedef enum hml_overflow_policy {
  HML_OVERFLOW_DROP_OLDEST = 0, /* the oldest records are deleted until the new one fits */
  HML_OVERFLOW_REJECT_NEW = 1   /* the new record is refused with HML_RESOURCE_EXHAUSTED */
} hml_overflow_policy;

typedef struct hml_store_options hml_store_options;

/* Defaults: no path and no device id (both required), tables bounded at 10000 records and
 * 16 MiB of plaintext, HML_OVERFLOW_DROP_OLDEST, records up to 1 MiB. */
hml_status hml_store_options_create(hml_store_options** out_options, hml_error** out_error);
void hml_store_options_free(hml_store_options* options);
/* The store file (created, mode 0600, if absent; its directory must exist). Required. */
hml_status hml_store_options_set_path(hml_store_options* options, const char* path,
                                      hml_error** out_error);
/* This device's id (1-128 bytes), bound into every record; a file created for another device id
 * does not open (HML_FAILED_PRECONDITION). Required. */
hml_status hml_store_options_set_device_id(hml_store_options* options, const char* device_id,
                                           hml_error** out_error);
/* Each table's bound: at most `max_records` (>= 1) records and `max_bytes` (>= 1) plaintext
 * bytes; a put beyond them meets the overflow policy. */
hml_status hml_store_options_set_queue_capacity(hml_store_options* options, int64_t max_records,
                                                int64_t max_bytes, hml_error** out_error);
hml_status hml_store_options_set_overflow_policy(hml_store_options* options,
                                                 hml_overflow_policy policy, hml_error** out_error);
/* The largest value a put accepts, in [1, 64 MiB]. */
hml_status hml_store_options_set_max_record_bytes(hml_store_options* options, size_t max_bytes,
                                                  hml_error** out_error);

/* Bytes returned by the library: a decrypted value (hml_store_get). */
typedef struct hml_bytes hml_bytes;

/* An open store: append-only record tables in one SQLite file, every value sealed with
 * XChaCha20-Poly1305 under the app's key. Thread-safe. */
typedef struct hml_store hml_store;

/* Opens (creating if absent) the store of the options with the app's 32-byte key from its
 * keystore (copied, and zeroed when the store is freed). HML_INVALID_ARGUMENT when key_len is
 * not 32 or an option is missing; HML_PERMISSION_DENIED when the file was created under another
 * key; HML_FAILED_PRECONDITION for another device id; HML_DATA_LOSS for a file that is not a
 * store; HML_NOT_FOUND when the directory does not exist. */
hml_status hml_store_open(const hml_store_options* options, const void* key, size_t key_len,
                          hml_store** out_store, hml_error** out_error);
/* Closes the store. REQUIRES: no call on it is running. */
void hml_store_free(hml_store* store);

/* Appends `size` bytes of `value` to `table` (1-64 characters of [A-Za-z0-9_.-]) and writes the
 * new record's id to *out_id (may be NULL). Ids grow and are never reused. The table is bounded
 * by the queue capacity: a full table drops its oldest records, or refuses this one with
 * HML_RESOURCE_EXHAUSTED, by the overflow policy; a value over max_record_bytes is
 * HML_INVALID_ARGUMENT. Durable when it returns HML_OK. */
hml_status hml_store_put(hml_store* store, const char* table, const void* value, size_t size,
                         int64_t* out_id, hml_error** out_error);
/* Record `id` of `table`, decrypted, as a new hml_bytes the caller frees (values come back as
 * library-owned bytes rather than through a caller buffer, so one call suffices and the
 * plaintext is zeroed on hml_bytes_free). HML_NOT_FOUND when the table has no such record;
 * HML_DATA_LOSS when it does not authenticate. */
hml_status hml_store_get(hml_store* store, const char* table, int64_t id, hml_bytes** out_value,
                         hml_error** out_error);
/* Up to `limit` (>= 1; clamped to 10000) records of `table` with id > `after_id`, in id order,
 * decrypted, as a new hml_records the caller frees. Page through a table with after_id = the
 * last id returned (0 to start). HML_DATA_LOSS naming the first record that does not
 * authenticate. */
typedef struct hml_records hml_records;
hml_status hml_store_scan(hml_store* store, const char* table, int64_t after_id, size_t limit,
                          hml_records** out_records, hml_error** out_error);
/* Deletes the records `ids[0..count)` of `table` in one transaction; ids not in the table are
 * skipped. Writes how many were deleted to *out_deleted (may be NULL). */
hml_status hml_store_delete(hml_store* store, const char* table, const int64_t* ids, size_t count,
                            int64_t* out_deleted, hml_error** out_error);
/* The number of records in `table` (0 for a table never written). */
hml_status hml_store_count(hml_store* store, const char* table, int64_t* out_count,
                           hml_error** out_error);
/* Records dropped (HML_OVERFLOW_DROP_OLDEST) and refused (HML_OVERFLOW_REJECT_NEW, or larger
 * than the byte capacity) by `table` ever. Either output may be NULL. */
hml_status hml_store_overflow_counts(hml_store* store, const char* table, int64_t* out_dropped,
                                     int64_t* out_rejected, hml_error** out_error);

/* The bytes, valid until hml_bytes_free; NULL for a NULL object. */
const void* hml_bytes_data(const hml_bytes* bytes);
/* Their count; 0 for a NULL object. */
size_t hml_bytes_size(const hml_bytes* bytes);
/* Zeroes the bytes, then frees them. */
void hml_bytes_free(hml_bytes* bytes);

/* Number of records scanned; 0 for NULL. */
size_t hml_records_count(const hml_records* records);
/* The id of record `index`; 0 for a NULL object or an index out of range. */
int64_t hml_records_id(const hml_records* records, size_t index);
/* A view of the value of record `index`, valid until hml_records_free. */
hml_status hml_records_value(const hml_records* records, size_t index, const void** out_data,
                             size_t* out_size, hml_error** out_error);
/* Zeroes the values, then frees them. */
void hml_records_free(hml_records* records);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* HML_C_HML_H_ */

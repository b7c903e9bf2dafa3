/* Copyright hybridml authors. Licensed under the Apache License 2.0.
 *
 * The C ABI from plain C99 (compiled with -std=c99 -pedantic): load an ONNX model (from a file
 * and from memory), run it, read the output; route it through a router without a transport
 * (local-only answers on the device, the cloud fails naming why); round-trip records through the
 * encrypted store (bounds, overflow policies, reopening, a wrong key). Every bad argument is
 * HML_INVALID_ARGUMENT with a message naming it, a missing file HML_NOT_FOUND, and errors are
 * optional.
 * Usage: hml_c_test MODEL.onnx DIR
 *   MODEL.onnx: ONNX's test_relu (input x float [3,4,5], output y = relu(x));
 *   DIR: an existing directory for the store file (created and removed by the test).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hml/c/hml.h"

static int failures = 0;

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      ++failures;                                                              \
    }                                                                          \
  } while (0)

/* Checks that `status` is `expected` and that `error` says so with a message holding `needle`;
 * frees the error. */
static void expect_error(hml_status status, hml_error* error, hml_status expected,
                         const char* needle, int line) {
  if (status != expected || hml_error_code(error) != expected ||
      strstr(hml_error_message(error), needle) == NULL) {
    fprintf(stderr, "line %d: expected %s with '%s', got %s / %s: '%s'\n", line,
            hml_status_name(expected), needle, hml_status_name(status),
            hml_status_name(hml_error_code(error)), hml_error_message(error));
    ++failures;
  }
  hml_error_free(error);
}

/* Runs `call` (which writes `error`) before looking at `error`: C leaves the order in which
 * function arguments are evaluated open, so the call cannot be an argument beside `error`. */
#define EXPECT_ERROR(call, expected, needle)                  \
  do {                                                        \
    hml_status status_ = (call);                              \
    expect_error(status_, error, expected, needle, __LINE__); \
    error = NULL;                                             \
  } while (0)

static char* read_file(const char* path, size_t* size) {
  FILE* f = fopen(path, "rb");
  char* data;
  long n;
  if (f == NULL) return NULL;
  fseek(f, 0, SEEK_END);
  n = ftell(f);
  fseek(f, 0, SEEK_SET);
  data = (char*)malloc((size_t)n);
  if (data != NULL && fread(data, 1, (size_t)n, f) != (size_t)n) {
    free(data);
    data = NULL;
  }
  fclose(f);
  *size = (size_t)n;
  return data;
}

/* Runs relu on -30..29 and checks y = max(x, 0). */
static void run_relu(const hml_model* model) {
  hml_session* session = NULL;
  hml_error* error = NULL;
  float x[60];
  int64_t dims[8];
  size_t rank = 0;
  hml_dtype dtype = HML_DTYPE_UNDEFINED;
  const void* data = NULL;
  size_t bytes = 0;
  int i;
  CHECK(hml_session_create(model, NULL, &session, &error) == HML_OK);
  CHECK(error == NULL);
  if (session == NULL) return;
  CHECK(hml_session_input_shape(session, 0, dims, 8, &rank, NULL) == HML_OK);
  CHECK(rank == 3 && dims[0] == 3 && dims[1] == 4 && dims[2] == 5);
  /* Output before any run: a precondition, not garbage. */
  EXPECT_ERROR(hml_session_get_output(session, 0, &dtype, &data, &bytes, &error),
               HML_FAILED_PRECONDITION, "no successful hml_session_run");
  for (i = 0; i < 60; ++i) x[i] = (float)(i - 30);
  CHECK(hml_session_set_input(session, 0, HML_DTYPE_FLOAT32, x, sizeof(x), NULL) == HML_OK);
  CHECK(hml_session_run(session, NULL) == HML_OK);
  CHECK(hml_session_get_output(session, 0, &dtype, &data, &bytes, NULL) == HML_OK);
  CHECK(dtype == HML_DTYPE_FLOAT32);
  CHECK(bytes == sizeof(x));
  if (data != NULL && bytes == sizeof(x)) {
    const float* y = (const float*)data;
    for (i = 0; i < 60; ++i) CHECK(y[i] == (x[i] > 0.0f ? x[i] : 0.0f));
  }
  /* Wrong dtype, wrong size, bad index: named, and the session is still usable. */
  EXPECT_ERROR(hml_session_set_input(session, 0, HML_DTYPE_INT8, x, sizeof(x), &error),
               HML_INVALID_ARGUMENT, "input 'x' is float32");
  EXPECT_ERROR(hml_session_set_input(session, 0, HML_DTYPE_FLOAT32, x, 8, &error),
               HML_INVALID_ARGUMENT, "takes 240 bytes, not 8");
  EXPECT_ERROR(hml_session_set_input(session, 1, HML_DTYPE_FLOAT32, x, sizeof(x), &error),
               HML_INVALID_ARGUMENT, "index 1 >= 1 inputs");
  CHECK(hml_session_run(session, NULL) == HML_OK);
  hml_session_free(session);
}

/* ---- Router ------------------------------------------------------------------------------- */

/* The relu model's input x [3,4,5] = -30..29 in a new tensor list. */
static hml_tensor_list* relu_inputs(float* x) {
  hml_tensor_list* list = NULL;
  const int64_t dims[3] = {3, 4, 5};
  int i;
  for (i = 0; i < 60; ++i) x[i] = (float)(i - 30);
  CHECK(hml_tensor_list_create(&list, NULL) == HML_OK);
  CHECK(hml_tensor_list_add(list, "x", HML_DTYPE_FLOAT32, dims, 3, x, 60 * sizeof(float), NULL) ==
        HML_OK);
  return list;
}

static void test_names(void) {
  CHECK(strcmp(hml_route_policy_name(HML_ROUTE_LOCAL_ONLY), "local-only") == 0);
  CHECK(strcmp(hml_route_policy_name(HML_ROUTE_CLOUD_ONLY), "cloud-only") == 0);
  CHECK(strcmp(hml_route_policy_name(HML_ROUTE_PREFER_LOCAL), "prefer-local") == 0);
  CHECK(strcmp(hml_route_policy_name(HML_ROUTE_PREFER_CLOUD), "prefer-cloud") == 0);
  CHECK(strcmp(hml_route_policy_name(HML_ROUTE_CASCADE), "cascade") == 0);
  CHECK(strcmp(hml_route_policy_name(HML_ROUTE_SPLIT), "split") == 0);
  CHECK(strcmp(hml_route_policy_name((hml_route_policy)99), "unknown") == 0);
  CHECK(strcmp(hml_placement_name(HML_PLACEMENT_LOCAL), "local") == 0);
  CHECK(strcmp(hml_placement_name(HML_PLACEMENT_CLOUD), "cloud") == 0);
  CHECK(strcmp(hml_placement_name(HML_PLACEMENT_LOCAL_AFTER_CLOUD_FAILURE),
               "local-after-cloud-failure") == 0);
  CHECK(strcmp(hml_placement_name(HML_PLACEMENT_CLOUD_AFTER_LOCAL_FAILURE),
               "cloud-after-local-failure") == 0);
  CHECK(strcmp(hml_placement_name(HML_PLACEMENT_CASCADE_LOCAL), "cascade-local") == 0);
  CHECK(strcmp(hml_placement_name(HML_PLACEMENT_CASCADE_OFFLOADED), "cascade-offloaded") == 0);
  CHECK(strcmp(hml_placement_name((hml_placement)-1), "unknown") == 0);
}

static void test_tensor_list(void) {
  hml_tensor_list* list = NULL;
  hml_error* error = NULL;
  const int64_t dims[2] = {2, 3};
  const int64_t negative[2] = {2, -1};
  const int64_t nine[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
  const float v[6] = {1, 2, 3, 4, 5, 6};
  EXPECT_ERROR(hml_tensor_list_create(NULL, &error), HML_INVALID_ARGUMENT,
               "hml_tensor_list_create: out_list is NULL");
  CHECK(hml_tensor_list_create(&list, &error) == HML_OK && error == NULL);
  EXPECT_ERROR(hml_tensor_list_add(NULL, "a", HML_DTYPE_FLOAT32, dims, 2, v, sizeof(v), &error),
               HML_INVALID_ARGUMENT, "hml_tensor_list_add: list is NULL");
  EXPECT_ERROR(hml_tensor_list_add(list, NULL, HML_DTYPE_FLOAT32, dims, 2, v, sizeof(v), &error),
               HML_INVALID_ARGUMENT, "hml_tensor_list_add: name is NULL");
  EXPECT_ERROR(hml_tensor_list_add(list, "", HML_DTYPE_FLOAT32, dims, 2, v, sizeof(v), &error),
               HML_INVALID_ARGUMENT, "name is empty");
  EXPECT_ERROR(hml_tensor_list_add(list, "a", (hml_dtype)99, dims, 2, v, sizeof(v), &error),
               HML_INVALID_ARGUMENT, "dtype 99");
  EXPECT_ERROR(hml_tensor_list_add(list, "a", HML_DTYPE_UNDEFINED, dims, 2, v, sizeof(v), &error),
               HML_INVALID_ARGUMENT, "dtype 0");
  EXPECT_ERROR(hml_tensor_list_add(list, "a", HML_DTYPE_FLOAT32, nine, 9, v, 4, &error),
               HML_INVALID_ARGUMENT, "rank 9 is not in [0, 8]");
  EXPECT_ERROR(hml_tensor_list_add(list, "a", HML_DTYPE_FLOAT32, NULL, 2, v, sizeof(v), &error),
               HML_INVALID_ARGUMENT, "hml_tensor_list_add: dims is NULL");
  EXPECT_ERROR(hml_tensor_list_add(list, "a", HML_DTYPE_FLOAT32, negative, 2, v, sizeof(v), &error),
               HML_INVALID_ARGUMENT, "tensor 'a'");
  EXPECT_ERROR(hml_tensor_list_add(list, "a", HML_DTYPE_FLOAT32, dims, 2, v, 8, &error),
               HML_INVALID_ARGUMENT, "takes 24 bytes, not byte_size 8");
  EXPECT_ERROR(hml_tensor_list_add(list, "a", HML_DTYPE_FLOAT32, dims, 2, NULL, sizeof(v), &error),
               HML_INVALID_ARGUMENT, "hml_tensor_list_add: data is NULL");
  CHECK(hml_tensor_list_count(list) == 0);
  CHECK(hml_tensor_list_add(list, "a", HML_DTYPE_FLOAT32, dims, 2, v, sizeof(v), &error) == HML_OK);
  CHECK(error == NULL);
  EXPECT_ERROR(hml_tensor_list_add(list, "a", HML_DTYPE_FLOAT32, dims, 2, v, sizeof(v), &error),
               HML_INVALID_ARGUMENT, "tensor 'a' is already in the list");
  /* A scalar (rank 0) and an empty tensor (a 0 dimension, no data) are tensors too. */
  CHECK(hml_tensor_list_add(list, "s", HML_DTYPE_INT64, NULL, 0, v, 8, NULL) == HML_OK);
  CHECK(hml_tensor_list_count(list) == 2);
  hml_tensor_list_clear(list);
  CHECK(hml_tensor_list_count(list) == 0);
  hml_tensor_list_clear(NULL);
  CHECK(hml_tensor_list_count(NULL) == 0);
  hml_tensor_list_free(list);
  hml_tensor_list_free(NULL);
}

static void test_router_options(void) {
  hml_router_options* options = NULL;
  hml_error* error = NULL;
  EXPECT_ERROR(hml_router_options_create(NULL, &error), HML_INVALID_ARGUMENT,
               "hml_router_options_create: out_options is NULL");
  CHECK(hml_router_options_create(&options, NULL) == HML_OK);
  EXPECT_ERROR(hml_router_options_set_local_reserve_ms(NULL, 5, &error), HML_INVALID_ARGUMENT,
               "hml_router_options_set_local_reserve_ms: options is NULL");
  EXPECT_ERROR(hml_router_options_set_local_reserve_ms(options, -1, &error), HML_INVALID_ARGUMENT,
               "reserve_ms -1 is not in [0, 1000000000]");
  EXPECT_ERROR(hml_router_options_set_retry_max_attempts(NULL, 2, &error), HML_INVALID_ARGUMENT,
               "hml_router_options_set_retry_max_attempts: options is NULL");
  EXPECT_ERROR(hml_router_options_set_retry_max_attempts(options, 0, &error), HML_INVALID_ARGUMENT,
               "max_attempts 0 is not in [1, 5]");
  EXPECT_ERROR(hml_router_options_set_retry_max_attempts(options, 6, &error), HML_INVALID_ARGUMENT,
               "max_attempts 6 is not in [1, 5]");
  EXPECT_ERROR(hml_router_options_set_breaker_failure_threshold(NULL, 2, &error),
               HML_INVALID_ARGUMENT,
               "hml_router_options_set_breaker_failure_threshold: options is NULL");
  EXPECT_ERROR(hml_router_options_set_breaker_failure_threshold(options, 0, &error),
               HML_INVALID_ARGUMENT, "threshold 0 is not >= 1");
  EXPECT_ERROR(hml_router_options_set_breaker_open_ms(NULL, 10, &error), HML_INVALID_ARGUMENT,
               "hml_router_options_set_breaker_open_ms: options is NULL");
  EXPECT_ERROR(hml_router_options_set_breaker_open_ms(options, 0, &error), HML_INVALID_ARGUMENT,
               "open_ms 0 is not in [1, 1000000000]");
  EXPECT_ERROR(hml_router_options_set_hedging(NULL, 1, &error), HML_INVALID_ARGUMENT,
               "hml_router_options_set_hedging: options is NULL");
  CHECK(hml_router_options_set_local_reserve_ms(options, 5, NULL) == HML_OK);
  CHECK(hml_router_options_set_retry_max_attempts(options, 2, NULL) == HML_OK);
  CHECK(hml_router_options_set_breaker_failure_threshold(options, 3, NULL) == HML_OK);
  CHECK(hml_router_options_set_breaker_open_ms(options, 100, NULL) == HML_OK);
  CHECK(hml_router_options_set_hedging(options, 1, NULL) == HML_OK);
  hml_router_options_free(options);
  hml_router_options_free(NULL);
}

static void test_route_config(const hml_model* model) {
  hml_route_config* config = NULL;
  hml_error* error = NULL;
  EXPECT_ERROR(hml_route_config_create(NULL, &error), HML_INVALID_ARGUMENT,
               "hml_route_config_create: out_config is NULL");
  CHECK(hml_route_config_create(&config, NULL) == HML_OK);
  EXPECT_ERROR(hml_route_config_set_policy(NULL, HML_ROUTE_CASCADE, &error), HML_INVALID_ARGUMENT,
               "hml_route_config_set_policy: config is NULL");
  EXPECT_ERROR(hml_route_config_set_policy(config, (hml_route_policy)7, &error),
               HML_INVALID_ARGUMENT, "policy 7 is not an hml_route_policy");
  EXPECT_ERROR(hml_route_config_set_local_model(NULL, model, &error), HML_INVALID_ARGUMENT,
               "hml_route_config_set_local_model: config is NULL");
  EXPECT_ERROR(hml_route_config_set_session_options(NULL, NULL, &error), HML_INVALID_ARGUMENT,
               "hml_route_config_set_session_options: config is NULL");
  EXPECT_ERROR(hml_route_config_set_cloud_model(NULL, "m", 0, &error), HML_INVALID_ARGUMENT,
               "hml_route_config_set_cloud_model: config is NULL");
  EXPECT_ERROR(hml_route_config_set_cloud_model(config, NULL, 0, &error), HML_INVALID_ARGUMENT,
               "hml_route_config_set_cloud_model: name is NULL");
  EXPECT_ERROR(hml_route_config_set_cloud_model(config, "", 0, &error), HML_INVALID_ARGUMENT,
               "name is empty");
  EXPECT_ERROR(hml_route_config_set_cloud_model(config, "m", -1, &error), HML_INVALID_ARGUMENT,
               "version -1 is not >= 0");
  EXPECT_ERROR(hml_route_config_set_cascade_threshold(NULL, 0.5, &error), HML_INVALID_ARGUMENT,
               "hml_route_config_set_cascade_threshold: config is NULL");
  EXPECT_ERROR(hml_route_config_set_cascade_threshold(config, -0.5, &error), HML_INVALID_ARGUMENT,
               "is not finite and >= 0");
  EXPECT_ERROR(hml_route_config_set_outputs_are_logits(NULL, 1, &error), HML_INVALID_ARGUMENT,
               "hml_route_config_set_outputs_are_logits: config is NULL");
  EXPECT_ERROR(hml_route_config_set_default_deadline_ms(NULL, 10, &error), HML_INVALID_ARGUMENT,
               "hml_route_config_set_default_deadline_ms: config is NULL");
  EXPECT_ERROR(hml_route_config_set_default_deadline_ms(config, 0, &error), HML_INVALID_ARGUMENT,
               "deadline_ms 0 is not in [1, 1000000000]");
  EXPECT_ERROR(hml_route_config_set_expected_cloud_latency_ms(NULL, 10, &error),
               HML_INVALID_ARGUMENT,
               "hml_route_config_set_expected_cloud_latency_ms: config is NULL");
  EXPECT_ERROR(hml_route_config_set_expected_cloud_latency_ms(config, -3, &error),
               HML_INVALID_ARGUMENT, "latency_ms -3 is not in [0, 1000000000]");
  CHECK(hml_route_config_set_cascade_threshold(config, 0.5, NULL) == HML_OK);
  CHECK(hml_route_config_set_outputs_are_logits(config, 1, NULL) == HML_OK);
  CHECK(hml_route_config_set_default_deadline_ms(config, 500, NULL) == HML_OK);
  CHECK(hml_route_config_set_expected_cloud_latency_ms(config, 30, NULL) == HML_OK);
  CHECK(hml_route_config_set_local_model(config, NULL, NULL) == HML_OK);
  hml_route_config_free(config);
  hml_route_config_free(NULL);
}

/* Checks a local answer of relu for -30..29: the route info and the outputs. */
static void check_relu_result(const hml_routed_result* result, const float* x) {
  hml_error* error = NULL;
  int64_t dims[8];
  size_t rank = 0;
  hml_dtype dtype = HML_DTYPE_UNDEFINED;
  const void* data = NULL;
  size_t bytes = 0;
  int i;
  CHECK(hml_routed_result_placement(result) == HML_PLACEMENT_LOCAL);
  CHECK(strcmp(hml_routed_result_reason(result), "policy") == 0);
  CHECK(hml_routed_result_attempts(result) == 0);
  CHECK(hml_routed_result_local_runs(result) == 1);
  CHECK(hml_routed_result_bytes_sent(result) == 0);
  CHECK(hml_routed_result_bytes_received(result) == 0);
  CHECK(hml_routed_result_latency_us(result) >= 0);
  CHECK(hml_routed_result_cascade_top1(result) == -1.0);
  CHECK(strcmp(hml_routed_result_cloud_status(result), "") == 0);
  CHECK(hml_routed_result_output_count(result) == 1);
  CHECK(hml_routed_result_output_name(result, 0) != NULL &&
        strcmp(hml_routed_result_output_name(result, 0), "y") == 0);
  CHECK(hml_routed_result_output_name(result, 1) == NULL);
  CHECK(hml_routed_result_output_shape(result, 0, dims, 8, &rank, NULL) == HML_OK);
  CHECK(rank == 3 && dims[0] == 3 && dims[1] == 4 && dims[2] == 5);
  CHECK(hml_routed_result_output_shape(result, 0, NULL, 0, &rank, NULL) == HML_OK && rank == 3);
  CHECK(hml_routed_result_output(result, 0, &dtype, &data, &bytes, NULL) == HML_OK);
  CHECK(dtype == HML_DTYPE_FLOAT32 && bytes == 60 * sizeof(float));
  if (data != NULL && bytes == 60 * sizeof(float)) {
    const float* y = (const float*)data;
    for (i = 0; i < 60; ++i) CHECK(y[i] == (x[i] > 0.0f ? x[i] : 0.0f));
  }
  EXPECT_ERROR(hml_routed_result_output(NULL, 0, &dtype, &data, &bytes, &error),
               HML_INVALID_ARGUMENT, "hml_routed_result_output: result is NULL");
  EXPECT_ERROR(hml_routed_result_output(result, 0, NULL, &data, &bytes, &error),
               HML_INVALID_ARGUMENT, "hml_routed_result_output: out_dtype is NULL");
  EXPECT_ERROR(hml_routed_result_output(result, 0, &dtype, NULL, &bytes, &error),
               HML_INVALID_ARGUMENT, "hml_routed_result_output: out_data is NULL");
  EXPECT_ERROR(hml_routed_result_output(result, 0, &dtype, &data, NULL, &error),
               HML_INVALID_ARGUMENT, "hml_routed_result_output: out_byte_size is NULL");
  EXPECT_ERROR(hml_routed_result_output(result, 1, &dtype, &data, &bytes, &error),
               HML_INVALID_ARGUMENT, "index 1 >= 1 outputs");
  EXPECT_ERROR(hml_routed_result_output_shape(NULL, 0, dims, 8, &rank, &error),
               HML_INVALID_ARGUMENT, "hml_routed_result_output_shape: result is NULL");
  EXPECT_ERROR(hml_routed_result_output_shape(result, 0, dims, 8, NULL, &error),
               HML_INVALID_ARGUMENT, "hml_routed_result_output_shape: out_rank is NULL");
  EXPECT_ERROR(hml_routed_result_output_shape(result, 0, NULL, 8, &rank, &error),
               HML_INVALID_ARGUMENT, "hml_routed_result_output_shape: dims is NULL");
  EXPECT_ERROR(hml_routed_result_output_shape(result, 2, dims, 8, &rank, &error),
               HML_INVALID_ARGUMENT, "index 2 >= 1 outputs");
}

static void test_router(const char* model_path) {
  hml_router_options* options = NULL;
  hml_router* router = NULL;
  hml_route_config* config = NULL;
  hml_session_options* session_options = NULL;
  hml_model* model = NULL;
  hml_tensor_list* inputs;
  hml_tensor_list* wrong = NULL;
  hml_routed_result* result = NULL;
  hml_error* error = NULL;
  float x[60];
  const float one = 1.0f;
  const int64_t dims1[1] = {1};

  EXPECT_ERROR(hml_router_create(NULL, NULL, &error), HML_INVALID_ARGUMENT,
               "hml_router_create: out_router is NULL");
  CHECK(hml_router_options_create(&options, NULL) == HML_OK);
  CHECK(hml_router_options_set_retry_max_attempts(options, 3, NULL) == HML_OK);
  CHECK(hml_router_create(options, &router, &error) == HML_OK && error == NULL);
  hml_router_options_free(options); /* the router copied them */
  if (router == NULL) return;

  /* A local-only model whose hml_model is freed before the router uses it: the config shares
   * the model's contents. */
  CHECK(hml_model_load(model_path, &model, NULL) == HML_OK);
  CHECK(hml_route_config_create(&config, NULL) == HML_OK);
  CHECK(hml_route_config_set_policy(config, HML_ROUTE_LOCAL_ONLY, NULL) == HML_OK);
  CHECK(hml_route_config_set_local_model(config, model, NULL) == HML_OK);
  hml_model_free(model);
  CHECK(hml_session_options_create(&session_options, NULL) == HML_OK);
  CHECK(hml_session_options_set_backend(session_options, "reference", NULL) == HML_OK);
  CHECK(hml_route_config_set_session_options(config, session_options, NULL) == HML_OK);
  hml_session_options_free(session_options);
  EXPECT_ERROR(hml_router_add_model(NULL, "relu", config, &error), HML_INVALID_ARGUMENT,
               "hml_router_add_model: router is NULL");
  EXPECT_ERROR(hml_router_add_model(router, NULL, config, &error), HML_INVALID_ARGUMENT,
               "hml_router_add_model: name is NULL");
  EXPECT_ERROR(hml_router_add_model(router, "relu", NULL, &error), HML_INVALID_ARGUMENT,
               "hml_router_add_model: config is NULL");
  EXPECT_ERROR(hml_router_add_model(router, "", config, &error), HML_INVALID_ARGUMENT,
               "hml_router_add_model: name is empty");
  CHECK(hml_router_add_model(router, "relu", config, &error) == HML_OK && error == NULL);
  EXPECT_ERROR(hml_router_add_model(router, "relu", config, &error), HML_ALREADY_EXISTS,
               "model 'relu' is already registered");
  /* Cascade needs a local model; cloud-only a cloud model: the router's checks come through. */
  CHECK(hml_route_config_set_local_model(config, NULL, NULL) == HML_OK);
  CHECK(hml_route_config_set_policy(config, HML_ROUTE_CLOUD_ONLY, NULL) == HML_OK);
  EXPECT_ERROR(hml_router_add_model(router, "nocloud", config, &error), HML_INVALID_ARGUMENT,
               "model 'nocloud' (cloud-only): the policy needs");
  CHECK(hml_route_config_set_cloud_model(config, "big", 2, NULL) == HML_OK);
  CHECK(hml_router_add_model(router, "cloud", config, NULL) == HML_OK);
  CHECK(hml_route_config_set_policy(config, HML_ROUTE_CASCADE, NULL) == HML_OK);
  EXPECT_ERROR(hml_router_add_model(router, "cascade", config, &error), HML_INVALID_ARGUMENT,
               "model 'cascade' (cascade)");
  hml_route_config_free(config);

  /* Local-only: answered on the device. */
  inputs = relu_inputs(x);
  EXPECT_ERROR(hml_router_infer(NULL, "relu", inputs, 0, &result, &error), HML_INVALID_ARGUMENT,
               "hml_router_infer: router is NULL");
  EXPECT_ERROR(hml_router_infer(router, NULL, inputs, 0, &result, &error), HML_INVALID_ARGUMENT,
               "hml_router_infer: name is NULL");
  EXPECT_ERROR(hml_router_infer(router, "relu", NULL, 0, &result, &error), HML_INVALID_ARGUMENT,
               "hml_router_infer: inputs is NULL");
  EXPECT_ERROR(hml_router_infer(router, "relu", inputs, 0, NULL, &error), HML_INVALID_ARGUMENT,
               "hml_router_infer: out_result is NULL");
  EXPECT_ERROR(hml_router_infer(router, "relu", inputs, -1, &result, &error), HML_INVALID_ARGUMENT,
               "deadline_ms -1 is not in [0, 1000000000]");
  EXPECT_ERROR(hml_router_infer(router, "nope", inputs, 0, &result, &error), HML_NOT_FOUND, "nope");
  CHECK(result == NULL);
  CHECK(hml_router_infer(router, "relu", inputs, 0, &result, &error) == HML_OK && error == NULL);
  if (result != NULL) check_relu_result(result, x);
  hml_routed_result_free(result);
  result = NULL;
  /* The list is only read: the same inputs again, with a deadline. */
  CHECK(hml_router_infer(router, "relu", inputs, 2000, &result, NULL) == HML_OK);
  if (result != NULL) check_relu_result(result, x);
  hml_routed_result_free(result);
  result = NULL;
  /* Inputs that do not fit the model are the model's error, named. */
  CHECK(hml_tensor_list_create(&wrong, NULL) == HML_OK);
  CHECK(hml_tensor_list_add(wrong, "z", HML_DTYPE_FLOAT32, dims1, 1, &one, sizeof(one), NULL) ==
        HML_OK);
  EXPECT_ERROR(hml_router_infer(router, "relu", wrong, 0, &result, &error), HML_INVALID_ARGUMENT,
               "input 'x' is missing");
  CHECK(result == NULL);
  hml_tensor_list_free(wrong);

  /* No transport: the cloud fails at once, naming why. */
  EXPECT_ERROR(hml_router_infer(router, "cloud", inputs, 0, &result, &error), HML_UNAVAILABLE,
               "no transport configured");
  CHECK(result == NULL);
  hml_tensor_list_free(inputs);

  /* A NULL result reads as empty. */
  CHECK(hml_routed_result_output_count(NULL) == 0);
  CHECK(hml_routed_result_output_name(NULL, 0) == NULL);
  CHECK(hml_routed_result_placement(NULL) == HML_PLACEMENT_LOCAL);
  CHECK(strcmp(hml_routed_result_reason(NULL), "") == 0);
  CHECK(hml_routed_result_attempts(NULL) == 0 && hml_routed_result_local_runs(NULL) == 0);
  CHECK(hml_routed_result_bytes_sent(NULL) == 0 && hml_routed_result_bytes_received(NULL) == 0);
  CHECK(hml_routed_result_latency_us(NULL) == 0);
  CHECK(hml_routed_result_cascade_top1(NULL) == -1.0);
  CHECK(strcmp(hml_routed_result_cloud_status(NULL), "") == 0);
  hml_routed_result_free(NULL);
  hml_router_free(router);
  hml_router_free(NULL);
}

/* ---- Encrypted store ---------------------------------------------------------------------- */

static void remove_store(const char* path) {
  char name[1100];
  remove(path);
  sprintf(name, "%s-wal", path);
  remove(name);
  sprintf(name, "%s-shm", path);
  remove(name);
}

/* Record `id` of `table` holds the `size` bytes of `expected`. */
static int holds(hml_store* store, const char* table, int64_t id, const char* expected,
                 size_t size) {
  hml_bytes* value = NULL;
  int ok = hml_store_get(store, table, id, &value, NULL) == HML_OK &&
           hml_bytes_size(value) == size && memcmp(hml_bytes_data(value), expected, size) == 0;
  hml_bytes_free(value);
  return ok;
}

/* `table` "labels" holds one record, `alpha` = "alpha": scanned in pages, and the errors. */
static void test_scan(hml_store* store, int64_t alpha) {
  hml_records* records = NULL;
  hml_error* error = NULL;
  const void* data = NULL;
  size_t size = 0;
  int64_t beta = 0;
  CHECK(hml_store_put(store, "labels", "beta", 4, &beta, NULL) == HML_OK);
  CHECK(hml_store_scan(store, "labels", 0, 10, &records, &error) == HML_OK && error == NULL);
  CHECK(hml_records_count(records) == 2);
  CHECK(hml_records_id(records, 0) == alpha && hml_records_id(records, 1) == beta);
  CHECK(hml_records_id(records, 2) == 0);
  CHECK(hml_records_value(records, 1, &data, &size, NULL) == HML_OK);
  CHECK(size == 4 && memcmp(data, "beta", 4) == 0);
  EXPECT_ERROR(hml_records_value(records, 2, &data, &size, &error), HML_INVALID_ARGUMENT,
               "index 2 >= 2 records");
  EXPECT_ERROR(hml_records_value(NULL, 0, &data, &size, &error), HML_INVALID_ARGUMENT,
               "hml_records_value: records is NULL");
  EXPECT_ERROR(hml_records_value(records, 0, NULL, &size, &error), HML_INVALID_ARGUMENT,
               "hml_records_value: out_data is NULL");
  EXPECT_ERROR(hml_records_value(records, 0, &data, NULL, &error), HML_INVALID_ARGUMENT,
               "hml_records_value: out_size is NULL");
  hml_records_free(records);
  records = NULL;
  /* A page of one after the first record: the second. */
  CHECK(hml_store_scan(store, "labels", alpha, 1, &records, NULL) == HML_OK);
  CHECK(hml_records_count(records) == 1 && hml_records_id(records, 0) == beta);
  hml_records_free(records);
  records = NULL;
  EXPECT_ERROR(hml_store_scan(NULL, "labels", 0, 1, &records, &error), HML_INVALID_ARGUMENT,
               "hml_store_scan: store is NULL");
  EXPECT_ERROR(hml_store_scan(store, NULL, 0, 1, &records, &error), HML_INVALID_ARGUMENT,
               "hml_store_scan: table is NULL");
  EXPECT_ERROR(hml_store_scan(store, "labels", 0, 1, NULL, &error), HML_INVALID_ARGUMENT,
               "hml_store_scan: out_records is NULL");
  EXPECT_ERROR(hml_store_scan(store, "labels", 0, 0, &records, &error), HML_INVALID_ARGUMENT,
               "hml_store_scan: limit is 0");
  CHECK(records == NULL);
  CHECK(hml_records_count(NULL) == 0 && hml_records_id(NULL, 0) == 0);
  hml_records_free(NULL);
  CHECK(hml_store_delete(store, "labels", &beta, 1, NULL, NULL) == HML_OK);
}

static void test_store_options(void) {
  hml_store_options* options = NULL;
  hml_error* error = NULL;
  char long_id[130];
  memset(long_id, 'd', 129);
  long_id[129] = '\0';
  EXPECT_ERROR(hml_store_options_create(NULL, &error), HML_INVALID_ARGUMENT,
               "hml_store_options_create: out_options is NULL");
  CHECK(hml_store_options_create(&options, NULL) == HML_OK);
  EXPECT_ERROR(hml_store_options_set_path(NULL, "p", &error), HML_INVALID_ARGUMENT,
               "hml_store_options_set_path: options is NULL");
  EXPECT_ERROR(hml_store_options_set_path(options, NULL, &error), HML_INVALID_ARGUMENT,
               "hml_store_options_set_path: path is NULL");
  EXPECT_ERROR(hml_store_options_set_path(options, "", &error), HML_INVALID_ARGUMENT,
               "path is empty");
  EXPECT_ERROR(hml_store_options_set_device_id(NULL, "d", &error), HML_INVALID_ARGUMENT,
               "hml_store_options_set_device_id: options is NULL");
  EXPECT_ERROR(hml_store_options_set_device_id(options, NULL, &error), HML_INVALID_ARGUMENT,
               "hml_store_options_set_device_id: device_id is NULL");
  EXPECT_ERROR(hml_store_options_set_device_id(options, "", &error), HML_INVALID_ARGUMENT,
               "device_id of 0 bytes");
  EXPECT_ERROR(hml_store_options_set_device_id(options, long_id, &error), HML_INVALID_ARGUMENT,
               "device_id of 129 bytes");
  EXPECT_ERROR(hml_store_options_set_queue_capacity(NULL, 1, 1, &error), HML_INVALID_ARGUMENT,
               "hml_store_options_set_queue_capacity: options is NULL");
  EXPECT_ERROR(hml_store_options_set_queue_capacity(options, 0, 1, &error), HML_INVALID_ARGUMENT,
               "max_records 0 is not >= 1");
  EXPECT_ERROR(hml_store_options_set_queue_capacity(options, 1, 0, &error), HML_INVALID_ARGUMENT,
               "max_bytes 0 is not >= 1");
  EXPECT_ERROR(hml_store_options_set_overflow_policy(NULL, HML_OVERFLOW_REJECT_NEW, &error),
               HML_INVALID_ARGUMENT, "hml_store_options_set_overflow_policy: options is NULL");
  EXPECT_ERROR(hml_store_options_set_overflow_policy(options, (hml_overflow_policy)5, &error),
               HML_INVALID_ARGUMENT, "policy 5 is not an hml_overflow_policy");
  EXPECT_ERROR(hml_store_options_set_max_record_bytes(NULL, 10, &error), HML_INVALID_ARGUMENT,
               "hml_store_options_set_max_record_bytes: options is NULL");
  EXPECT_ERROR(hml_store_options_set_max_record_bytes(options, 0, &error), HML_INVALID_ARGUMENT,
               "max_bytes 0 is not in [1, 64 MiB]");
  hml_store_options_free(options);
  hml_store_options_free(NULL);
}

static void test_store(const char* dir) {
  char path[1024];
  unsigned char key[32];
  unsigned char other_key[32];
  hml_store_options* options = NULL;
  hml_store* store = NULL;
  hml_bytes* value = NULL;
  hml_error* error = NULL;
  int64_t ids[3] = {0, 0, 0};
  int64_t gone[2];
  int64_t count = -1;
  int64_t deleted = -1;
  int64_t dropped = -1;
  int64_t rejected = -1;
  int64_t id = 0;
  int64_t alpha = 0;
  int i;
  for (i = 0; i < 32; ++i) {
    key[i] = (unsigned char)(i * 7 + 1);
    other_key[i] = (unsigned char)(i * 7 + 2);
  }
  if (strlen(dir) > 1000) return;
  sprintf(path, "%s/hml_c_test.store", dir);
  remove_store(path);

  CHECK(hml_store_options_create(&options, NULL) == HML_OK);
  EXPECT_ERROR(hml_store_open(options, key, 32, &store, &error), HML_INVALID_ARGUMENT,
               "options have no path");
  CHECK(hml_store_options_set_path(options, path, NULL) == HML_OK);
  EXPECT_ERROR(hml_store_open(options, key, 32, &store, &error), HML_INVALID_ARGUMENT,
               "options have no device id");
  CHECK(hml_store_options_set_device_id(options, "device-1", NULL) == HML_OK);
  CHECK(hml_store_options_set_queue_capacity(options, 2, 1 << 20, NULL) == HML_OK);
  CHECK(hml_store_options_set_max_record_bytes(options, 64, NULL) == HML_OK);
  EXPECT_ERROR(hml_store_open(NULL, key, 32, &store, &error), HML_INVALID_ARGUMENT,
               "hml_store_open: options is NULL");
  EXPECT_ERROR(hml_store_open(options, NULL, 32, &store, &error), HML_INVALID_ARGUMENT,
               "hml_store_open: key is NULL");
  EXPECT_ERROR(hml_store_open(options, key, 32, NULL, &error), HML_INVALID_ARGUMENT,
               "hml_store_open: out_store is NULL");
  EXPECT_ERROR(hml_store_open(options, key, 16, &store, &error), HML_INVALID_ARGUMENT,
               "key_len is 16, not 32");
  CHECK(store == NULL);
  CHECK(hml_store_open(options, key, 32, &store, &error) == HML_OK && error == NULL);
  if (store == NULL) {
    hml_store_options_free(options);
    return;
  }

  /* Round trip: put, get, count, delete. */
  CHECK(hml_store_put(store, "labels", "alpha", 5, &ids[0], &error) == HML_OK && error == NULL);
  CHECK(hml_store_put(store, "labels", "", 0, &ids[1], NULL) == HML_OK);
  CHECK(ids[1] > ids[0]);
  alpha = ids[0];
  CHECK(holds(store, "labels", ids[0], "alpha", 5));
  CHECK(holds(store, "labels", ids[1], "", 0));
  CHECK(hml_store_count(store, "labels", &count, NULL) == HML_OK && count == 2);
  CHECK(hml_store_count(store, "never-written", &count, NULL) == HML_OK && count == 0);
  EXPECT_ERROR(hml_store_get(store, "labels", ids[1] + 100, &value, &error), HML_NOT_FOUND,
               "labels");
  CHECK(value == NULL);
  gone[0] = ids[1];
  gone[1] = 12345;
  CHECK(hml_store_delete(store, "labels", gone, 2, &deleted, &error) == HML_OK && error == NULL);
  CHECK(deleted == 1);
  CHECK(hml_store_delete(store, "labels", gone, 2, &deleted, NULL) == HML_OK && deleted == 0);
  CHECK(hml_store_delete(store, "labels", NULL, 0, NULL, NULL) == HML_OK);
  CHECK(hml_store_count(store, "labels", &count, NULL) == HML_OK && count == 1);
  EXPECT_ERROR(hml_store_get(store, "labels", ids[1], &value, &error), HML_NOT_FOUND, "labels");
  test_scan(store, alpha);

  /* Bad arguments, named. */
  EXPECT_ERROR(hml_store_put(NULL, "labels", "a", 1, &id, &error), HML_INVALID_ARGUMENT,
               "hml_store_put: store is NULL");
  EXPECT_ERROR(hml_store_put(store, NULL, "a", 1, &id, &error), HML_INVALID_ARGUMENT,
               "hml_store_put: table is NULL");
  EXPECT_ERROR(hml_store_put(store, "labels", NULL, 1, &id, &error), HML_INVALID_ARGUMENT,
               "hml_store_put: value is NULL");
  EXPECT_ERROR(hml_store_put(store, "bad table!", "a", 1, &id, &error), HML_INVALID_ARGUMENT,
               "invalid table name");
  EXPECT_ERROR(hml_store_put(store, "labels",
                             "0123456789012345678901234567890123456789012345678901234567890123456",
                             65, &id, &error),
               HML_INVALID_ARGUMENT, "record of 65 bytes exceeds max_record_bytes 64");
  EXPECT_ERROR(hml_store_get(NULL, "labels", 1, &value, &error), HML_INVALID_ARGUMENT,
               "hml_store_get: store is NULL");
  EXPECT_ERROR(hml_store_get(store, NULL, 1, &value, &error), HML_INVALID_ARGUMENT,
               "hml_store_get: table is NULL");
  EXPECT_ERROR(hml_store_get(store, "labels", 1, NULL, &error), HML_INVALID_ARGUMENT,
               "hml_store_get: out_value is NULL");
  EXPECT_ERROR(hml_store_delete(NULL, "labels", gone, 1, &deleted, &error), HML_INVALID_ARGUMENT,
               "hml_store_delete: store is NULL");
  EXPECT_ERROR(hml_store_delete(store, NULL, gone, 1, &deleted, &error), HML_INVALID_ARGUMENT,
               "hml_store_delete: table is NULL");
  EXPECT_ERROR(hml_store_delete(store, "labels", NULL, 1, &deleted, &error), HML_INVALID_ARGUMENT,
               "hml_store_delete: ids is NULL");
  EXPECT_ERROR(hml_store_count(NULL, "labels", &count, &error), HML_INVALID_ARGUMENT,
               "hml_store_count: store is NULL");
  EXPECT_ERROR(hml_store_count(store, NULL, &count, &error), HML_INVALID_ARGUMENT,
               "hml_store_count: table is NULL");
  EXPECT_ERROR(hml_store_count(store, "labels", NULL, &error), HML_INVALID_ARGUMENT,
               "hml_store_count: out_count is NULL");
  EXPECT_ERROR(hml_store_overflow_counts(NULL, "labels", &dropped, &rejected, &error),
               HML_INVALID_ARGUMENT, "hml_store_overflow_counts: store is NULL");
  EXPECT_ERROR(hml_store_overflow_counts(store, NULL, &dropped, &rejected, &error),
               HML_INVALID_ARGUMENT, "hml_store_overflow_counts: table is NULL");

  /* Capacity 2, drop-oldest: a third record drops the first. */
  CHECK(hml_store_put(store, "q", "one", 3, &ids[0], NULL) == HML_OK);
  CHECK(hml_store_put(store, "q", "two", 3, &ids[1], NULL) == HML_OK);
  CHECK(hml_store_put(store, "q", "three", 5, &ids[2], NULL) == HML_OK);
  CHECK(hml_store_count(store, "q", &count, NULL) == HML_OK && count == 2);
  CHECK(hml_store_overflow_counts(store, "q", &dropped, &rejected, NULL) == HML_OK);
  CHECK(dropped == 1 && rejected == 0);
  CHECK(!holds(store, "q", ids[0], "one", 3));
  CHECK(holds(store, "q", ids[2], "three", 5));
  CHECK(hml_store_overflow_counts(store, "q", NULL, NULL, NULL) == HML_OK);
  hml_store_free(store);
  store = NULL;

  /* Reopened with reject-new: the full table refuses, and the data survived the close. */
  CHECK(hml_store_options_set_overflow_policy(options, HML_OVERFLOW_REJECT_NEW, NULL) == HML_OK);
  CHECK(hml_store_open(options, key, 32, &store, NULL) == HML_OK);
  if (store != NULL) {
    CHECK(holds(store, "labels", alpha, "alpha", 5));
    CHECK(holds(store, "q", ids[2], "three", 5));
    EXPECT_ERROR(hml_store_put(store, "q", "four", 4, &id, &error), HML_RESOURCE_EXHAUSTED,
                 "queue full");
    CHECK(hml_store_overflow_counts(store, "q", &dropped, &rejected, NULL) == HML_OK);
    CHECK(dropped == 1 && rejected == 1);
    CHECK(hml_store_count(store, "q", &count, NULL) == HML_OK && count == 2);
    hml_store_free(store);
    store = NULL;
  }

  /* Another key does not open the store; another device id neither. */
  EXPECT_ERROR(hml_store_open(options, other_key, 32, &store, &error), HML_PERMISSION_DENIED,
               "does not open this store");
  CHECK(store == NULL);
  CHECK(hml_store_options_set_device_id(options, "device-2", NULL) == HML_OK);
  EXPECT_ERROR(hml_store_open(options, key, 32, &store, &error), HML_FAILED_PRECONDITION,
               "belongs to device 'device-1'");
  CHECK(store == NULL);

  CHECK(hml_bytes_data(NULL) == NULL && hml_bytes_size(NULL) == 0);
  hml_bytes_free(NULL);
  hml_store_free(NULL);
  hml_store_options_free(options);
  remove_store(path);
}

int main(int argc, char** argv) {
  hml_model* model = NULL;
  hml_model* from_memory = NULL;
  hml_session_options* options = NULL;
  hml_session* session = NULL;
  hml_error* error = NULL;
  char* bytes;
  size_t size = 0;
  const int64_t bad_dims[1] = {0};
  if (argc != 3) {
    fprintf(stderr, "usage: hml_c_test MODEL.onnx DIR\n");
    return 2;
  }
  CHECK(strlen(hml_version()) >= 5);
  CHECK(strcmp(hml_status_name(HML_UNAUTHENTICATED), "UNAUTHENTICATED") == 0);
  CHECK(strcmp(hml_status_name((hml_status)99), "UNKNOWN") == 0);

  /* Loading: a file, and the same bytes from memory. */
  CHECK(hml_model_load(argv[1], &model, &error) == HML_OK);
  CHECK(error == NULL);
  if (model == NULL) return 1;
  CHECK(hml_model_input_count(model) == 1 && hml_model_output_count(model) == 1);
  CHECK(strcmp(hml_model_input_name(model, 0), "x") == 0);
  CHECK(strcmp(hml_model_output_name(model, 0), "y") == 0);
  CHECK(hml_model_input_name(model, 1) == NULL);
  run_relu(model);
  bytes = read_file(argv[1], &size);
  CHECK(bytes != NULL);
  CHECK(hml_model_load_from_memory(bytes, size, &from_memory, NULL) == HML_OK);
  if (from_memory != NULL) run_relu(from_memory);
  hml_model_free(from_memory);
  /* Not ONNX: rejected with the parser's reason; nothing is written to the output. */
  from_memory = NULL;
  EXPECT_ERROR(hml_model_load_from_memory("garbage", 7, &from_memory, &error), HML_INVALID_ARGUMENT,
               "");
  CHECK(from_memory == NULL);
  free(bytes);

  /* Errors: a missing file, NULL arguments; the error object is optional. */
  EXPECT_ERROR(hml_model_load("/nonexistent/model.onnx", &from_memory, &error), HML_NOT_FOUND,
               "/nonexistent/model.onnx");
  EXPECT_ERROR(hml_model_load(NULL, &from_memory, &error), HML_INVALID_ARGUMENT,
               "hml_model_load: path is NULL");
  CHECK(hml_model_load(NULL, &from_memory, NULL) == HML_INVALID_ARGUMENT);
  EXPECT_ERROR(hml_session_create(NULL, NULL, &session, &error), HML_INVALID_ARGUMENT,
               "hml_session_create: model is NULL");
  EXPECT_ERROR(hml_session_run(NULL, &error), HML_INVALID_ARGUMENT,
               "hml_session_run: session is NULL");
  CHECK(hml_error_code(NULL) == HML_UNKNOWN);
  CHECK(strcmp(hml_error_message(NULL), "") == 0);
  hml_model_free(NULL);
  hml_session_free(NULL);
  hml_session_options_free(NULL);
  hml_error_free(NULL);

  /* Options: validated setters, and the errors of a session they make impossible. */
  CHECK(hml_session_options_create(&options, NULL) == HML_OK);
  EXPECT_ERROR(hml_session_options_set_threads(options, 0, &error), HML_INVALID_ARGUMENT,
               "threads 0 is not in [1, 64]");
  EXPECT_ERROR(hml_session_options_set_input_shape(options, "x", bad_dims, 1, &error),
               HML_INVALID_ARGUMENT, "dimension 0 is 0");
  CHECK(hml_session_options_set_threads(options, 2, NULL) == HML_OK);
  CHECK(hml_session_options_set_backend(options, "no-such-backend", NULL) == HML_OK);
  EXPECT_ERROR(hml_session_create(model, options, &session, &error), HML_NOT_FOUND,
               "no-such-backend");
  CHECK(session == NULL);
  CHECK(hml_session_options_set_backend(options, "reference", NULL) == HML_OK);
  CHECK(hml_session_create(model, options, &session, NULL) == HML_OK);
  hml_session_free(session);
  hml_session_options_free(options);
  test_route_config(model);
  hml_model_free(model);

  test_names();
  test_tensor_list();
  test_router_options();
  test_router(argv[1]);
  test_store_options();
  test_store(argv[2]);

  if (failures > 0) {
    fprintf(stderr, "%d check(s) failed\n", failures);
    return 1;
  }
  printf("PASS\n");
  return 0;
}

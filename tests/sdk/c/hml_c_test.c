/* Copyright hybridml authors. Licensed under the Apache License 2.0.
 *
 * The C ABI from plain C99 (compiled with -std=c99 -pedantic): load an ONNX model (from a file
 * and from memory), run it, read the output; every bad argument is HML_INVALID_ARGUMENT with a
 * message naming it, a missing file HML_NOT_FOUND, and errors are optional.
 * Usage: hml_c_test MODEL.onnx   (ONNX's test_relu: input x float [3,4,5], output y = relu(x))
 */
#include "hml/c/hml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures = 0;

#define CHECK(cond)                                                    \
  do {                                                                 \
    if (!(cond)) {                                                     \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      ++failures;                                                      \
    }                                                                  \
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
#define EXPECT_ERROR(call, expected, needle)                   \
  do {                                                         \
    hml_status status_ = (call);                               \
    expect_error(status_, error, expected, needle, __LINE__);  \
    error = NULL;                                              \
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

int main(int argc, char** argv) {
  hml_model* model = NULL;
  hml_model* from_memory = NULL;
  hml_session_options* options = NULL;
  hml_session* session = NULL;
  hml_error* error = NULL;
  char* bytes;
  size_t size = 0;
  const int64_t bad_dims[1] = {0};
  if (argc != 2) {
    fprintf(stderr, "usage: hml_c_test MODEL.onnx\n");
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
  EXPECT_ERROR(hml_model_load_from_memory("garbage", 7, &from_memory, &error),
               HML_INVALID_ARGUMENT, "");
  CHECK(from_memory == NULL);
  free(bytes);

  /* Errors: a missing file, NULL arguments; the error object is optional. */
  EXPECT_ERROR(hml_model_load("/nonexistent/model.onnx", &from_memory, &error),
               HML_NOT_FOUND, "/nonexistent/model.onnx");
  EXPECT_ERROR(hml_model_load(NULL, &from_memory, &error),
               HML_INVALID_ARGUMENT, "hml_model_load: path is NULL");
  CHECK(hml_model_load(NULL, &from_memory, NULL) == HML_INVALID_ARGUMENT);
  EXPECT_ERROR(hml_session_create(NULL, NULL, &session, &error),
               HML_INVALID_ARGUMENT, "hml_session_create: model is NULL");
  EXPECT_ERROR(hml_session_run(NULL, &error),
               HML_INVALID_ARGUMENT, "hml_session_run: session is NULL");
  CHECK(hml_error_code(NULL) == HML_UNKNOWN);
  CHECK(strcmp(hml_error_message(NULL), "") == 0);
  hml_model_free(NULL);
  hml_session_free(NULL);
  hml_session_options_free(NULL);
  hml_error_free(NULL);

  /* Options: validated setters, and the errors of a session they make impossible. */
  CHECK(hml_session_options_create(&options, NULL) == HML_OK);
  EXPECT_ERROR(hml_session_options_set_threads(options, 0, &error),
               HML_INVALID_ARGUMENT, "threads 0 is not in [1, 64]");
  EXPECT_ERROR(hml_session_options_set_input_shape(options, "x", bad_dims, 1, &error),
               HML_INVALID_ARGUMENT, "dimension 0 is 0");
  CHECK(hml_session_options_set_threads(options, 2, NULL) == HML_OK);
  CHECK(hml_session_options_set_backend(options, "no-such-backend", NULL) == HML_OK);
  EXPECT_ERROR(hml_session_create(model, options, &session, &error),
               HML_NOT_FOUND, "no-such-backend");
  CHECK(session == NULL);
  CHECK(hml_session_options_set_backend(options, "reference", NULL) == HML_OK);
  CHECK(hml_session_create(model, options, &session, NULL) == HML_OK);
  hml_session_free(session);
  hml_session_options_free(options);
  hml_model_free(model);

  if (failures > 0) {
    fprintf(stderr, "%d check(s) failed\n", failures);
    return 1;
  }
  printf("PASS\n");
  return 0;
}

// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/server/protocol/v2_json.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "tests/testing/kernel_test_util.h"
namespace hml::server {
namespace {

using ::testing::HasSubstr;

using testing::ExpectSameTensor;
using testing::Make;

// One tensor of each supported datatype, with the extremes of its range.
std::vector<NamedTensor> EveryDatatype() {
  std::vector<NamedTensor> tensors;
  tensors.push_back({"f", Make<float>({2, 3}, {0.1f, -2.5f, 1e-45f, 3.4028235e38f, -3.4028235e38f,
                                               123456.789f})});
  tensors.push_back({"u8", Make<uint8_t>({3}, {0, 128, 255})});
  tensors.push_back({"i8", Make<int8_t>({3}, {-128, 0, 127})});
  tensors.push_back({"i32", Make<int32_t>({1, 3}, {std::numeric_limits<int32_t>::min(), 7,
                                                   std::numeric_limits<int32_t>::max()})});
  tensors.push_back({"i64", Make<int64_t>({3}, {std::numeric_limits<int64_t>::min(), -1,
                                                std::numeric_limits<int64_t>::max()})});
  return tensors;
}

Status ParseStatus(const std::string& body, const V2JsonOptions& options = {}) {
  return ParseV2InferRequestJson(body, options).status();
}

TEST(V2JsonTest, RequestRoundTripsEveryDatatypeExactly) {
  V2InferRequest request;
  request.id = "req-1";
  request.inputs = EveryDatatype();
  request.outputs.push_back({"y", {}});
  Result<std::string> body = SerializeV2InferRequestJson(request);
  ASSERT_TRUE(body.ok()) << body.status().ToString();

  Result<V2InferRequest> parsed = ParseV2InferRequestJson(*body);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->id, "req-1");
  EXPECT_TRUE(parsed->model_name.empty());  // REST carries it in the URL
  ASSERT_EQ(parsed->inputs.size(), request.inputs.size());
  for (size_t i = 0; i < request.inputs.size(); ++i) {
    SCOPED_TRACE(request.inputs[i].name);
    EXPECT_EQ(parsed->inputs[i].name, request.inputs[i].name);
    ExpectSameTensor(parsed->inputs[i].tensor, request.inputs[i].tensor);
  }
  ASSERT_EQ(parsed->outputs.size(), 1u);
  EXPECT_EQ(parsed->outputs[0].name, "y");
}

TEST(V2JsonTest, ResponseRoundTripsEveryDatatypeExactly) {
  std::vector<NamedTensor> outputs = EveryDatatype();
  Result<std::string> body = SerializeV2InferResponseJson("cnn", "3", "r7", outputs);
  ASSERT_TRUE(body.ok()) << body.status().ToString();
  Result<V2InferResponse> parsed = ParseV2InferResponseJson(*body);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->model_name, "cnn");
  EXPECT_EQ(parsed->model_version, "3");
  EXPECT_EQ(parsed->id, "r7");
  ASSERT_EQ(parsed->outputs.size(), outputs.size());
  for (size_t i = 0; i < outputs.size(); ++i) {
    SCOPED_TRACE(outputs[i].name);
    EXPECT_EQ(parsed->outputs[i].name, outputs[i].name);
    ExpectSameTensor(parsed->outputs[i].tensor, outputs[i].tensor);
  }
}

TEST(V2JsonTest, ResponseTextIsCompactWithShortestFloats) {
  std::vector<NamedTensor> outputs;
  outputs.push_back({"y", Make<float>({1, 2}, {0.1f, -2.5f})});
  Result<std::string> body = SerializeV2InferResponseJson("m", "1", "", outputs);
  ASSERT_TRUE(body.ok());
  // No "id" when the request had none; 0.1f prints as 0.1, not as its double widening.
  EXPECT_EQ(*body,
            R"({"model_name":"m","model_version":"1","outputs":[{"name":"y","datatype":"FP32",)"
            R"("shape":[1,2],"data":[0.1,-2.5]}]})");
}

TEST(V2JsonTest, NonFiniteFloatsSerializeAsNull) {
  std::vector<NamedTensor> outputs;
  outputs.push_back(
      {"y", Make<float>({3}, {std::nanf(""), std::numeric_limits<float>::infinity(), 1.0f})});
  Result<std::string> body = SerializeV2InferResponseJson("m", "1", "", outputs);
  ASSERT_TRUE(body.ok());
  EXPECT_THAT(*body, HasSubstr(R"("data":[null,null,1])"));
}

TEST(V2JsonTest, NestedDataEqualsFlatData) {
  const std::string nested = R"({"inputs":[{"name":"x","shape":[2,3],"datatype":"INT32",
      "data":[[1,2,3],[4,5,6]]}]})";
  const std::string flat = R"({"inputs":[{"name":"x","shape":[2,3],"datatype":"INT32",
      "data":[1,2,3,4,5,6]}]})";
  Result<V2InferRequest> a = ParseV2InferRequestJson(nested);
  Result<V2InferRequest> b = ParseV2InferRequestJson(flat);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  ExpectSameTensor(a->inputs[0].tensor, b->inputs[0].tensor);
  EXPECT_EQ(a->inputs[0].tensor.values<int32_t>()[4], 5);
}

TEST(V2JsonTest, BatchDimensionShapesAreKept) {
  // A batch of 4 images of 1x2x2, nested the way numpy's tolist() writes it.
  const std::string body = R"({"inputs":[{"name":"image","shape":[4,1,2,2],"datatype":"FP32",
      "data":[[[[1,2],[3,4]]],[[[5,6],[7,8]]],[[[9,10],[11,12]]],[[[13,14],[15,16]]]]}]})";
  Result<V2InferRequest> r = ParseV2InferRequestJson(body);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const Tensor& t = r->inputs[0].tensor;
  EXPECT_EQ(t.shape(), (Shape{4, 1, 2, 2}));
  EXPECT_EQ(t.values<float>()[0], 1.0f);
  EXPECT_EQ(t.values<float>()[15], 16.0f);
}

TEST(V2JsonTest, ScalarsAndEmptyTensors) {
  Result<V2InferRequest> scalar = ParseV2InferRequestJson(
      R"({"inputs":[{"name":"s","shape":[],"datatype":"INT64","data":[42]}]})");
  ASSERT_TRUE(scalar.ok()) << scalar.status().ToString();
  EXPECT_EQ(scalar->inputs[0].tensor.rank(), 0);
  EXPECT_EQ(scalar->inputs[0].tensor.values<int64_t>()[0], 42);

  Result<V2InferRequest> empty = ParseV2InferRequestJson(
      R"({"inputs":[{"name":"e","shape":[0,3],"datatype":"FP32","data":[]}]})");
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_EQ(empty->inputs[0].tensor.num_elements(), 0);
  EXPECT_EQ(empty->inputs[0].tensor.shape(), (Shape{0, 3}));
}

TEST(V2JsonTest, IntegralJsonNumbersFillFloatTensors) {
  Result<V2InferRequest> r =
      ParseV2InferRequestJson(R"({"inputs":[{"name":"x","shape":[3],"datatype":"FP32",)"
                              R"("data":[1,-2,18446744073709551615]}]})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->inputs[0].tensor.values<float>()[1], -2.0f);
  EXPECT_EQ(r->inputs[0].tensor.values<float>()[2], 18446744073709551615.0f);
}

TEST(V2JsonTest, ParametersRoundTrip) {
  V2InferRequest request;
  request.parameters = {{"flag", true},
                        {"count", int64_t{-3}},
                        {"big", uint64_t{18446744073709551615u}},
                        {"ratio", 0.25},
                        {"tag", std::string("a\"b")}};
  request.inputs.push_back({"x", Make<uint8_t>({1}, {9})});
  request.outputs.push_back({"y", {{"binary_data", false}}});
  Result<std::string> body = SerializeV2InferRequestJson(request);
  ASSERT_TRUE(body.ok());
  Result<V2InferRequest> parsed = ParseV2InferRequestJson(*body);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->parameters, request.parameters);
  ASSERT_EQ(parsed->outputs.size(), 1u);
  EXPECT_EQ(parsed->outputs[0].parameters, request.outputs[0].parameters);
}

// Per-tensor parameters (the scale and zero point of an INT8 cut tensor for split inference)
// are kept on the decoded input and written back by the serializer.
TEST(V2JsonTest, InputTensorParametersRoundTrip) {
  Result<V2InferRequest> parsed = ParseV2InferRequestJson(
      R"({"inputs": [{"name": "pool", "shape": [1, 2], "datatype": "INT8", "data": [-5, 7],
                      "parameters": {"scale": 0.5, "zero_point": -3}},
                     {"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}]})");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  ASSERT_EQ(parsed->inputs.size(), 2u);
  const V2Parameters want = {{"scale", 0.5}, {"zero_point", int64_t{-3}}};
  EXPECT_EQ(parsed->inputs[0].parameters, want);
  EXPECT_TRUE(parsed->inputs[1].parameters.empty());
  Result<std::string> body = SerializeV2InferRequestJson(*parsed);
  ASSERT_TRUE(body.ok());
  Result<V2InferRequest> again = ParseV2InferRequestJson(*body);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->inputs[0].parameters, want);
  EXPECT_TRUE(again->inputs[1].parameters.empty());
  // A parameter of the wrong kind names the input.
  Status bad = ParseStatus(R"({"inputs": [{"name": "pool", "shape": [1], "datatype": "INT8",
                                           "data": [1], "parameters": {"scale": [1]}}]})");
  EXPECT_EQ(bad.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.message()), HasSubstr("input 'pool'"));
}

TEST(V2JsonTest, NamesWithQuotesAndUnicodeRoundTrip) {
  V2InferRequest request;
  request.inputs.push_back({"in \"0\" \xC3\xA9\\", Make<int8_t>({1}, {-1})});
  Result<std::string> body = SerializeV2InferRequestJson(request);
  ASSERT_TRUE(body.ok());
  Result<V2InferRequest> parsed = ParseV2InferRequestJson(*body);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->inputs[0].name, request.inputs[0].name);
}

TEST(V2JsonTest, UnknownFieldsAreIgnored) {
  Result<V2InferRequest> r = ParseV2InferRequestJson(
      R"({"future":1,"inputs":[{"name":"x","shape":[1],"datatype":"UINT8","data":[1],"z":[]}]})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
}

struct Rejection {
  const char* label;
  std::string body;
  StatusCode code;
  std::string message;  // a substring of the status message
};

std::string OneInput(const std::string& fields) { return R"({"inputs":[{)" + fields + "}]}"; }

TEST(V2JsonTest, EveryRejectionClassHasItsCodeAndNamesTheInput) {
  const StatusCode kInvalid = StatusCode::kInvalidArgument;
  const std::vector<Rejection> cases = {
      {"malformed", R"({"inputs":[)", kInvalid, "malformed JSON: "},
      {"not an object", "[1,2]", kInvalid, "JSON body must be an object"},
      {"no inputs", "{}", kInvalid, "missing 'inputs'"},
      {"empty inputs", R"({"inputs":[]})", kInvalid, "'inputs' must be a non-empty array"},
      {"input not an object", R"({"inputs":[3]})", kInvalid, "input 0: must be an object"},
      {"no name", OneInput(R"("shape":[1],"datatype":"FP32","data":[1])"), kInvalid,
       "input 0: missing 'name'"},
      {"empty name", OneInput(R"("name":"","shape":[1],"datatype":"FP32","data":[1])"), kInvalid,
       "input 0: 'name' must be a non-empty string"},
      {"no datatype", OneInput(R"("name":"x","shape":[1],"data":[1])"), kInvalid,
       "input 'x': missing 'datatype'"},
      {"unknown datatype", OneInput(R"("name":"x","shape":[1],"datatype":"FLOAT","data":[1])"),
       kInvalid, "input 'x': unknown datatype 'FLOAT'"},
      {"no shape", OneInput(R"("name":"x","datatype":"FP32","data":[1])"), kInvalid,
       "input 'x': missing 'shape'"},
      {"negative dim", OneInput(R"("name":"x","shape":[2,-1],"datatype":"FP32","data":[1])"),
       kInvalid, "input 'x': shape dimension -1 is negative"},
      {"fractional dim", OneInput(R"("name":"x","shape":[1.5],"datatype":"FP32","data":[1])"),
       kInvalid, "input 'x': 'shape' must be an array of integers"},
      {"rank 9", OneInput(R"("name":"x","shape":[1,1,1,1,1,1,1,1,1],"datatype":"FP32","data":[1])"),
       kInvalid, "input 'x': rank 9 exceeds the maximum of 8"},
      {"too many bytes",
       OneInput(R"("name":"x","shape":[1000000,1000000],"datatype":"FP32","data":[1])"), kInvalid,
       "input 'x': "},
      {"no data", OneInput(R"("name":"x","shape":[1],"datatype":"FP32")"), kInvalid,
       "input 'x': missing 'data'"},
      {"data not array", OneInput(R"("name":"x","shape":[1],"datatype":"FP32","data":1)"), kInvalid,
       "input 'x': 'data' must be an array"},
      {"count mismatch",
       OneInput(R"("name":"x","shape":[2,3],"datatype":"FP32","data":[1,2,3,4,5])"), kInvalid,
       "input 'x': shape [2,3] needs 6 elements but data has 5"},
      {"huge shape, tiny data",
       OneInput(R"("name":"x","shape":[100000000],"datatype":"UINT8","data":[1])"), kInvalid,
       "input 'x': shape [100000000] needs 100000000 elements but data has 1"},
      {"ragged nesting",
       OneInput(R"("name":"x","shape":[2,3],"datatype":"FP32","data":[[1,2,3],[4,5]])"), kInvalid,
       "input 'x': data nesting does not match shape [2,3]: level 1 has 2 entries, not 3"},
      {"transposed nesting",
       OneInput(R"("name":"x","shape":[2,3],"datatype":"FP32","data":[[1,2],[3,4],[5,6]])"),
       kInvalid,
       "input 'x': data nesting does not match shape [2,3]: level 0 has 3 entries, not 2"},
      {"scalar in nesting",
       OneInput(R"("name":"x","shape":[2,1],"datatype":"FP32","data":[[1],2])"), kInvalid,
       "level 1 holds a scalar where an array of 1 is needed"},
      {"nests too deep", OneInput(R"("name":"x","shape":[2],"datatype":"FP32","data":[[1],[2]])"),
       kInvalid, "input 'x': data nests deeper than shape [2]"},
      {"array inside flat data",
       OneInput(R"("name":"x","shape":[3],"datatype":"FP32","data":[1,[2],3])"), kInvalid,
       "input 'x': data element 1 is an array"},
      {"string element", OneInput(R"("name":"x","shape":[3],"datatype":"FP32","data":[1,2,"3"])"),
       kInvalid, "input 'x': data element 2 is not a number"},
      {"null element", OneInput(R"("name":"x","shape":[1],"datatype":"INT64","data":[null])"),
       kInvalid, "input 'x': data element 0 is not a number"},
      {"bool element", OneInput(R"("name":"x","shape":[1],"datatype":"UINT8","data":[true])"),
       kInvalid, "input 'x': data element 0 is not a number"},
      {"fraction for INT32",
       OneInput(R"("name":"x","shape":[2],"datatype":"INT32","data":[1,2.5])"), kInvalid,
       "input 'x': data element 1 is not an integer"},
      {"INT8 overflow", OneInput(R"("name":"x","shape":[1],"datatype":"INT8","data":[128])"),
       kInvalid, "input 'x': data element 0 is out of range for INT8"},
      {"UINT8 negative", OneInput(R"("name":"x","shape":[1],"datatype":"UINT8","data":[-1])"),
       kInvalid, "input 'x': data element 0 is out of range for UINT8"},
      {"INT32 overflow",
       OneInput(R"("name":"x","shape":[1],"datatype":"INT32","data":[2147483648])"), kInvalid,
       "input 'x': data element 0 is out of range for INT32"},
      {"INT64 overflow",
       OneInput(R"("name":"x","shape":[1],"datatype":"INT64","data":[9223372036854775808])"),
       kInvalid, "input 'x': data element 0 is out of range for INT64"},
      {"FP32 overflow", OneInput(R"("name":"x","shape":[1],"datatype":"FP32","data":[1e39])"),
       kInvalid, "input 'x': data element 0 is out of range for FP32"},
      {"duplicate input",
       R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]},
                     {"name":"x","shape":[1],"datatype":"FP32","data":[2]}]})",
       kInvalid, "input 'x' appears twice"},
      {"id not a string",
       R"({"id":5,"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]})", kInvalid,
       "request: 'id' must be a string"},
      {"parameters not an object",
       R"({"parameters":[],"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]})",
       kInvalid, "request: 'parameters' must be an object"},
      {"parameter of a bad type",
       R"({"parameters":{"p":[1]},)"
       R"("inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]})",
       kInvalid, "request: parameter 'p' must be a bool, number or string"},
      {"outputs not an array",
       R"({"outputs":{},"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]})",
       kInvalid, "'outputs' must be an array"},
      {"output without a name",
       R"({"outputs":[{}],"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]})",
       kInvalid, "requested output 0: missing 'name'"},
      {"duplicate output",
       R"({"outputs":[{"name":"y"},{"name":"y"}],
           "inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]})",
       kInvalid, "requested output 'y' appears twice"},
      {"BOOL", OneInput(R"("name":"x","shape":[1],"datatype":"BOOL","data":[true])"),
       StatusCode::kUnimplemented, "input 'x': datatype BOOL is not supported"},
      {"FP64", OneInput(R"("name":"x","shape":[1],"datatype":"FP64","data":[1.5])"),
       StatusCode::kUnimplemented, "input 'x': datatype FP64 is not supported"},
      {"BYTES", OneInput(R"("name":"x","shape":[1],"datatype":"BYTES","data":["a"])"),
       StatusCode::kUnimplemented, "input 'x': datatype BYTES is not supported"},
      {"binary extension",
       OneInput(R"("name":"x","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":4})"),
       StatusCode::kUnimplemented, "input 'x': the binary tensor data extension is not supported"},
  };
  for (const Rejection& c : cases) {
    SCOPED_TRACE(c.label);
    Status s = ParseStatus(c.body);
    EXPECT_EQ(s.code(), c.code) << s.ToString();
    EXPECT_THAT(std::string(s.message()), HasSubstr(c.message));
  }
}

TEST(V2JsonTest, SizeLimitIsCheckedBeforeParsing) {
  const std::string body =
      R"({"inputs":[{"name":"x","shape":[2],"datatype":"FP32","data":[1,2]}]})";
  V2JsonOptions options;
  options.max_body_bytes = body.size();
  EXPECT_TRUE(ParseStatus(body, options).ok());

  options.max_body_bytes = body.size() - 1;
  Status s = ParseStatus(body, options);
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(s.message(), "JSON body of " + std::to_string(body.size()) +
                             " bytes exceeds the limit of " + std::to_string(body.size() - 1) +
                             " bytes");

  // Malformed but oversize: the limit answers first, so the parser never saw it.
  options.max_body_bytes = 8;
  EXPECT_EQ(ParseStatus("{{{{{{{{{{{{", options).code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(ParseV2InferResponseJson("{{{{{{{{{{{{", options).status().code(),
            StatusCode::kResourceExhausted);
}

TEST(V2JsonTest, NestingDepthIsLimitedButBracketsInStringsDoNotCount) {
  Status deep = ParseStatus(std::string(100000, '[') + std::string(100000, ']'));
  EXPECT_EQ(deep.code(), StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(deep.message()), HasSubstr("nests deeper than 32 levels"));

  const std::string brackets(100, '[');
  Result<V2InferRequest> r =
      ParseV2InferRequestJson(R"({"id":")" + brackets +
                              R"(\"[","inputs":[{"name":"x","shape":[1],"datatype":"FP32",)"
                              R"("data":[1]}]})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->id, brackets + "\"[");
}

TEST(V2JsonTest, OptionsAreValidated) {
  V2JsonOptions options;
  EXPECT_TRUE(options.Validate().ok());
  options.max_depth = 5;
  EXPECT_EQ(options.Validate().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseStatus("{}", options).code(), StatusCode::kInvalidArgument);
  options = V2JsonOptions();
  options.max_body_bytes = 0;
  EXPECT_EQ(options.Validate().code(), StatusCode::kInvalidArgument);
}

TEST(V2JsonTest, ResponseParserRejectsLikeTheRequestParser) {
  EXPECT_THAT(std::string(ParseV2InferResponseJson(R"({"outputs":[]})").status().message()),
              HasSubstr("response: missing 'model_name'"));
  Status s = ParseV2InferResponseJson(
                 R"({"model_name":"m","outputs":[{"name":"y","shape":[2],"datatype":"INT8",)"
                 R"("data":[1,999]}]})")
                 .status();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("output 'y': data element 1 is out of range for INT8"));
}

TEST(V2JsonTest, SerializersRejectEmptyTensors) {
  V2InferRequest request;
  request.inputs.push_back({"x", Tensor()});
  EXPECT_EQ(SerializeV2InferRequestJson(request).status().code(), StatusCode::kInvalidArgument);
  std::vector<NamedTensor> outputs;
  outputs.push_back({"y", Tensor()});
  Status s = SerializeV2InferResponseJson("m", "1", "", outputs).status();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("output 'y' has no element type"));
}

TEST(V2JsonTest, ModelMetadataListsSignaturesWithDynamicDimsAsMinusOne) {
  V2ModelMetadata metadata;
  metadata.name = "cnn";
  metadata.versions = {"1", "2"};
  metadata.platform = "hybridml_onnx";
  metadata.inputs.push_back({"image", DType::kFloat32, {-1, 1, 28, 28}});
  metadata.outputs.push_back({"logits", DType::kFloat32, {-1, 10}});
  metadata.outputs.push_back({"label", DType::kInt64, {-1}});
  Result<std::string> body = SerializeV2ModelMetadataJson(metadata);
  ASSERT_TRUE(body.ok()) << body.status().ToString();
  EXPECT_EQ(*body, R"({"name":"cnn","versions":["1","2"],"platform":"hybridml_onnx",)"
                   R"("inputs":[{"name":"image","datatype":"FP32","shape":[-1,1,28,28]}],)"
                   R"("outputs":[{"name":"logits","datatype":"FP32","shape":[-1,10]},)"
                   R"({"name":"label","datatype":"INT64","shape":[-1]}]})");

  metadata.inputs[0].dtype = DType::kUndefined;
  Status s = SerializeV2ModelMetadataJson(metadata).status();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("tensor 'image' has no element type"));
}

TEST(V2JsonTest, ErrorBodyEscapesAndNeverFailsOnBadUtf8) {
  EXPECT_EQ(SerializeV2ErrorJson("input 'x': \"bad\"\n"), R"({"error":"input 'x': \"bad\"\n"})");
  // A client-supplied name with invalid UTF-8 ends up in messages; it is replaced, not fatal.
  std::string body = SerializeV2ErrorJson("name \xFF\xFE end");
  EXPECT_THAT(body, HasSubstr("\xEF\xBF\xBD"));
  EXPECT_THAT(body, HasSubstr(" end\"}"));
}

TEST(V2JsonTest, DatatypeNamesMatchTheProtocol) {
  EXPECT_EQ(V2DataTypeName(DType::kFloat32), "FP32");
  EXPECT_EQ(V2DataTypeName(DType::kUInt8), "UINT8");
  EXPECT_EQ(V2DataTypeName(DType::kInt8), "INT8");
  EXPECT_EQ(V2DataTypeName(DType::kInt32), "INT32");
  EXPECT_EQ(V2DataTypeName(DType::kInt64), "INT64");
  EXPECT_EQ(V2DataTypeName(DType::kUndefined), "");
  for (DType d : {DType::kFloat32, DType::kUInt8, DType::kInt8, DType::kInt32, DType::kInt64}) {
    Result<DType> back = DTypeFromV2DataType(V2DataTypeName(d), "t");
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, d);
  }
  // Case matters in the protocol.
  EXPECT_EQ(DTypeFromV2DataType("fp32", "t").status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace hml::server

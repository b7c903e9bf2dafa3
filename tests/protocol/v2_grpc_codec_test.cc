// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/protocol/v2_grpc_codec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "proto/inference.pb.h"
#include "tests/testing/kernel_test_util.h"

namespace hml::protocol {
namespace {

using ::testing::HasSubstr;

using testing::ExpectSameTensor;
using testing::Make;

std::vector<NamedTensor> EveryDatatype() {
  std::vector<NamedTensor> tensors;
  tensors.push_back({"f", Make<float>({2, 2}, {0.1f, -2.5f, 1e-45f, 3.4028235e38f})});
  tensors.push_back({"u8", Make<uint8_t>({3}, {0, 128, 255})});
  tensors.push_back({"i8", Make<int8_t>({3}, {-128, 0, 127})});
  tensors.push_back({"i32", Make<int32_t>({1, 3}, {std::numeric_limits<int32_t>::min(), 7,
                                                   std::numeric_limits<int32_t>::max()})});
  tensors.push_back({"i64", Make<int64_t>({3}, {std::numeric_limits<int64_t>::min(), -1,
                                                std::numeric_limits<int64_t>::max()})});
  return tensors;
}

V2InferRequest EveryDatatypeRequest() {
  V2InferRequest request;
  request.model_name = "cnn";
  request.model_version = "2";
  request.id = "r1";
  request.inputs = EveryDatatype();
  request.outputs.push_back({"y", {}});
  return request;
}

// Sends `message` through its wire encoding, as a peer would see it.
template <typename M>
M OverTheWire(const M& message) {
  std::string bytes;
  EXPECT_TRUE(message.SerializeToString(&bytes));
  M parsed;
  EXPECT_TRUE(parsed.ParseFromString(bytes));
  return parsed;
}

void ExpectSameRequest(const V2InferRequest& got, const V2InferRequest& want) {
  EXPECT_EQ(got.model_name, want.model_name);
  EXPECT_EQ(got.model_version, want.model_version);
  EXPECT_EQ(got.id, want.id);
  EXPECT_EQ(got.parameters, want.parameters);
  ASSERT_EQ(got.inputs.size(), want.inputs.size());
  for (size_t i = 0; i < want.inputs.size(); ++i) {
    SCOPED_TRACE(want.inputs[i].name);
    EXPECT_EQ(got.inputs[i].name, want.inputs[i].name);
    EXPECT_EQ(got.inputs[i].parameters, want.inputs[i].parameters);
    ExpectSameTensor(got.inputs[i].tensor, want.inputs[i].tensor);
  }
  ASSERT_EQ(got.outputs.size(), want.outputs.size());
  for (size_t i = 0; i < want.outputs.size(); ++i) {
    EXPECT_EQ(got.outputs[i].name, want.outputs[i].name);
    EXPECT_EQ(got.outputs[i].parameters, want.outputs[i].parameters);
  }
}

TEST(V2GrpcCodecTest, RawRequestRoundTripsEveryDatatype) {
  V2InferRequest request = EveryDatatypeRequest();
  inference::ModelInferRequest message;
  ASSERT_TRUE(EncodeModelInferRequest(request, V2TensorEncoding::kRaw, &message).ok());
  ASSERT_EQ(message.raw_input_contents_size(), 5);
  for (const auto& input : message.inputs()) EXPECT_FALSE(input.has_contents());
  Result<V2InferRequest> decoded = DecodeModelInferRequest(OverTheWire(message));
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  ExpectSameRequest(*decoded, request);
}

TEST(V2GrpcCodecTest, TypedRequestRoundTripsEveryDatatypeInTheProtocolsFields) {
  V2InferRequest request = EveryDatatypeRequest();
  inference::ModelInferRequest message;
  ASSERT_TRUE(EncodeModelInferRequest(request, V2TensorEncoding::kTyped, &message).ok());
  EXPECT_EQ(message.raw_input_contents_size(), 0);
  EXPECT_EQ(message.inputs(0).contents().fp32_contents_size(), 4);
  EXPECT_EQ(message.inputs(1).contents().uint_contents_size(), 3);  // UINT8 widened
  EXPECT_EQ(message.inputs(2).contents().int_contents_size(), 3);   // INT8 widened
  EXPECT_EQ(message.inputs(2).contents().int_contents(0), -128);
  EXPECT_EQ(message.inputs(3).contents().int_contents_size(), 3);
  EXPECT_EQ(message.inputs(4).contents().int64_contents_size(), 3);
  Result<V2InferRequest> decoded = DecodeModelInferRequest(OverTheWire(message));
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  ExpectSameRequest(*decoded, request);
}

TEST(V2GrpcCodecTest, RawContentsAreLittleEndianRowMajor) {
  V2InferRequest request;
  request.inputs.push_back({"x", Make<int32_t>({2}, {0x01020304, -2})});
  inference::ModelInferRequest message;
  ASSERT_TRUE(EncodeModelInferRequest(request, V2TensorEncoding::kRaw, &message).ok());
  EXPECT_EQ(message.raw_input_contents(0), std::string("\x04\x03\x02\x01\xfe\xff\xff\xff", 8));

  // A message built by hand, the way a Python client packs numpy bytes.
  inference::ModelInferRequest hand;
  auto* input = hand.add_inputs();
  input->set_name("x");
  input->set_datatype("FP32");
  input->add_shape(1);
  input->add_shape(2);
  hand.add_raw_input_contents(std::string("\x00\x00\x80\x3f\x00\x00\x20\xc0", 8));  // 1, -2.5
  Result<V2InferRequest> decoded = DecodeModelInferRequest(hand);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->inputs[0].tensor.shape(), (Shape{1, 2}));
  EXPECT_EQ(decoded->inputs[0].tensor.values<float>()[0], 1.0f);
  EXPECT_EQ(decoded->inputs[0].tensor.values<float>()[1], -2.5f);
}

TEST(V2GrpcCodecTest, RawAndTypedDecodeToTheSameTensors) {
  V2InferRequest request = EveryDatatypeRequest();
  inference::ModelInferRequest raw;
  inference::ModelInferRequest typed;
  ASSERT_TRUE(EncodeModelInferRequest(request, V2TensorEncoding::kRaw, &raw).ok());
  ASSERT_TRUE(EncodeModelInferRequest(request, V2TensorEncoding::kTyped, &typed).ok());
  Result<V2InferRequest> a = DecodeModelInferRequest(raw);
  Result<V2InferRequest> b = DecodeModelInferRequest(typed);
  ASSERT_TRUE(a.ok() && b.ok());
  ExpectSameRequest(*a, *b);
}

TEST(V2GrpcCodecTest, BatchDimensionShapesAreKept) {
  std::vector<float> values(4 * 3 * 2);
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i);
  V2InferRequest request;
  request.inputs.push_back({"batch", Make<float>({4, 3, 2}, values)});
  for (V2TensorEncoding encoding : {V2TensorEncoding::kRaw, V2TensorEncoding::kTyped}) {
    inference::ModelInferRequest message;
    ASSERT_TRUE(EncodeModelInferRequest(request, encoding, &message).ok());
    EXPECT_THAT(message.inputs(0).shape(), ::testing::ElementsAre(4, 3, 2));
    Result<V2InferRequest> decoded = DecodeModelInferRequest(OverTheWire(message));
    ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
    ExpectSameTensor(decoded->inputs[0].tensor, request.inputs[0].tensor);
  }
}

TEST(V2GrpcCodecTest, ResponseUsesRawOutputContentsAndRoundTrips) {
  std::vector<NamedTensor> outputs = EveryDatatype();
  inference::ModelInferResponse message;
  ASSERT_TRUE(
      EncodeModelInferResponse("cnn", "2", "r1", outputs, &message, {{"batch", int64_t{4}}}).ok());
  EXPECT_EQ(message.model_name(), "cnn");
  EXPECT_EQ(message.model_version(), "2");
  EXPECT_EQ(message.id(), "r1");
  ASSERT_EQ(message.raw_output_contents_size(), 5);
  EXPECT_EQ(message.raw_output_contents(0).size(), 16u);  // 4 floats
  EXPECT_EQ(message.outputs(1).datatype(), "UINT8");
  for (const auto& output : message.outputs()) EXPECT_FALSE(output.has_contents());

  Result<V2InferResponse> decoded = DecodeModelInferResponse(OverTheWire(message));
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->model_name, "cnn");
  EXPECT_EQ(decoded->id, "r1");
  EXPECT_EQ(decoded->parameters, (V2Parameters{{"batch", int64_t{4}}}));
  ASSERT_EQ(decoded->outputs.size(), outputs.size());
  for (size_t i = 0; i < outputs.size(); ++i) {
    EXPECT_EQ(decoded->outputs[i].name, outputs[i].name);
    ExpectSameTensor(decoded->outputs[i].tensor, outputs[i].tensor);
  }
}

TEST(V2GrpcCodecTest, TypedResponsesFromOtherServersDecode) {
  inference::ModelInferResponse message;
  message.set_model_name("m");
  auto* output = message.add_outputs();
  output->set_name("y");
  output->set_datatype("INT64");
  output->add_shape(2);
  output->mutable_contents()->add_int64_contents(-5);
  output->mutable_contents()->add_int64_contents(6);
  Result<V2InferResponse> decoded = DecodeModelInferResponse(message);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->outputs[0].tensor.values<int64_t>()[1], 6);
}

TEST(V2GrpcCodecTest, ParametersRoundTrip) {
  V2InferRequest request;
  request.parameters = {{"flag", true},
                        {"count", int64_t{-3}},
                        {"big", uint64_t{18446744073709551615u}},
                        {"ratio", 0.25},
                        {"tag", std::string("t")}};
  request.inputs.push_back({"x", Make<uint8_t>({1}, {9})});
  request.outputs.push_back({"y", {{"binary_data", true}}});
  inference::ModelInferRequest message;
  ASSERT_TRUE(EncodeModelInferRequest(request, V2TensorEncoding::kRaw, &message).ok());
  EXPECT_EQ(message.parameters().at("big").uint64_param(), 18446744073709551615u);
  EXPECT_EQ(message.parameters().at("ratio").double_param(), 0.25);
  Result<V2InferRequest> decoded = DecodeModelInferRequest(OverTheWire(message));
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  ExpectSameRequest(*decoded, request);

  // A small uint64_param reads as int64, as JSON integers do.
  inference::InferParameter small;
  small.set_uint64_param(7);
  Result<V2Parameter> p = ParameterFromProto(small, "p");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(*p, V2Parameter(int64_t{7}));
}

// Per-tensor parameters (the scale and zero point of an INT8 cut tensor for split inference)
// travel in InferInputTensor.parameters, raw or typed.
TEST(V2GrpcCodecTest, InputTensorParametersRoundTrip) {
  V2InferRequest request;
  request.inputs.push_back(
      {"pool", Make<int8_t>({1, 2}, {-5, 7}), {{"scale", 0.5}, {"zero_point", int64_t{-3}}}});
  request.inputs.push_back({"other", Make<float>({1}, {1.0f})});
  for (V2TensorEncoding encoding : {V2TensorEncoding::kRaw, V2TensorEncoding::kTyped}) {
    inference::ModelInferRequest message;
    ASSERT_TRUE(EncodeModelInferRequest(request, encoding, &message).ok());
    EXPECT_EQ(message.inputs(0).parameters().at("scale").double_param(), 0.5);
    EXPECT_EQ(message.inputs(0).parameters().at("zero_point").int64_param(), -3);
    Result<V2InferRequest> decoded = DecodeModelInferRequest(OverTheWire(message));
    ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
    ExpectSameRequest(*decoded, request);
  }
  // A parameter without a value names the input.
  inference::ModelInferRequest message;
  ASSERT_TRUE(EncodeModelInferRequest(request, V2TensorEncoding::kRaw, &message).ok());
  (*message.mutable_inputs(0)->mutable_parameters())["scale"].Clear();
  Result<V2InferRequest> bad = DecodeModelInferRequest(message);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("input 'pool' parameter 'scale'"));
}

TEST(V2GrpcCodecTest, ZeroElementTensorsNeedNoData) {
  inference::ModelInferRequest message;
  auto* input = message.add_inputs();
  input->set_name("e");
  input->set_datatype("FP32");
  input->add_shape(0);
  input->add_shape(3);
  Result<V2InferRequest> decoded = DecodeModelInferRequest(message);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->inputs[0].tensor.num_elements(), 0);
}

// A valid typed request of one FP32 input 'x' of shape [2,3], which each case then breaks.
inference::ModelInferRequest ValidRequest() {
  inference::ModelInferRequest message;
  message.set_model_name("m");
  auto* input = message.add_inputs();
  input->set_name("x");
  input->set_datatype("FP32");
  input->add_shape(2);
  input->add_shape(3);
  for (int i = 0; i < 6; ++i) input->mutable_contents()->add_fp32_contents(static_cast<float>(i));
  return message;
}

struct Rejection {
  const char* label;
  std::function<void(inference::ModelInferRequest*)> breaks;
  StatusCode code;
  std::string message;  // a substring of the status message
};

TEST(V2GrpcCodecTest, EveryRejectionClassHasItsCodeAndNamesTheInput) {
  using Request = inference::ModelInferRequest;
  const StatusCode kInvalid = StatusCode::kInvalidArgument;
  auto x = [](Request* m) { return m->mutable_inputs(0); };
  auto raw_x = [](Request* m, size_t bytes) {
    m->mutable_inputs(0)->clear_contents();
    m->add_raw_input_contents(std::string(bytes, '\0'));
  };
  const std::vector<Rejection> cases = {
      {"no inputs", [](Request* m) { m->clear_inputs(); }, kInvalid, "request has no inputs"},
      {"no name", [&](Request* m) { x(m)->clear_name(); }, kInvalid, "input 0: missing 'name'"},
      {"no datatype", [&](Request* m) { x(m)->clear_datatype(); }, kInvalid,
       "input 'x': missing 'datatype'"},
      {"unknown datatype", [&](Request* m) { x(m)->set_datatype("FLOAT32"); }, kInvalid,
       "input 'x': unknown datatype 'FLOAT32'"},
      {"BOOL", [&](Request* m) { x(m)->set_datatype("BOOL"); }, StatusCode::kUnimplemented,
       "input 'x': datatype BOOL is not supported"},
      {"FP64", [&](Request* m) { x(m)->set_datatype("FP64"); }, StatusCode::kUnimplemented,
       "input 'x': datatype FP64 is not supported"},
      {"negative dim", [&](Request* m) { x(m)->set_shape(1, -3); }, kInvalid,
       "input 'x': shape dimension -3 is negative"},
      {"rank 9",
       [&](Request* m) {
         for (int i = 0; i < 7; ++i) x(m)->add_shape(1);
       },
       kInvalid, "input 'x': rank 9 exceeds the maximum of 8"},
      {"too many bytes", [&](Request* m) { x(m)->set_shape(0, int64_t{1} << 40); }, kInvalid,
       "input 'x': "},
      {"typed count mismatch", [&](Request* m) { x(m)->mutable_contents()->add_fp32_contents(7); },
       kInvalid, "input 'x': shape [2,3] needs 6 elements but fp32_contents holds 7"},
      {"typed wrong field",
       [&](Request* m) {
         x(m)->clear_contents();
         for (int i = 0; i < 6; ++i) x(m)->mutable_contents()->add_int_contents(i);
       },
       kInvalid, "input 'x': datatype FP32 expects fp32_contents but int_contents holds 6 values"},
      {"no data", [&](Request* m) { x(m)->clear_contents(); }, kInvalid,
       "input 'x': no data (contents are empty and there is no raw_input_contents)"},
      {"INT8 out of range",
       [&](Request* m) {
         x(m)->set_datatype("INT8");
         x(m)->clear_contents();
         for (int v : {1, 2, 3, 4, 5, 200}) x(m)->mutable_contents()->add_int_contents(v);
       },
       kInvalid, "input 'x': element 5 (200) is out of range for INT8"},
      {"UINT8 out of range",
       [&](Request* m) {
         x(m)->set_datatype("UINT8");
         x(m)->clear_contents();
         for (int v : {256, 2, 3, 4, 5, 6}) x(m)->mutable_contents()->add_uint_contents(v);
       },
       kInvalid, "input 'x': element 0 (256) is out of range for UINT8"},
      {"raw byte size", [&](Request* m) { raw_x(m, 23); }, kInvalid,
       "input 'x': raw_input_contents entry holds 23 bytes but shape [2,3] of FP32 needs 24"},
      {"raw and typed together", [](Request* m) { m->add_raw_input_contents(std::string(24, 0)); },
       kInvalid, "input 'x': has both fp32_contents and a raw_input_contents entry"},
      {"raw entry count",
       [&](Request* m) {
         raw_x(m, 24);
         m->add_raw_input_contents(std::string(24, 0));
       },
       kInvalid, "raw_input_contents has 2 entries for 1 inputs"},
      {"duplicate input", [](Request* m) { m->add_inputs()->CopyFrom(m->inputs(0)); }, kInvalid,
       "input 'x' appears twice"},
      {"output without a name", [](Request* m) { m->add_outputs(); }, kInvalid,
       "requested output 0: missing 'name'"},
      {"duplicate output",
       [](Request* m) {
         m->add_outputs()->set_name("y");
         m->add_outputs()->set_name("y");
       },
       kInvalid, "requested output 'y' appears twice"},
      {"parameter without a value", [](Request* m) { (*m->mutable_parameters())["p"]; }, kInvalid,
       "request parameter 'p' has no value"},
  };
  ASSERT_TRUE(DecodeModelInferRequest(ValidRequest()).ok());
  for (const Rejection& c : cases) {
    SCOPED_TRACE(c.label);
    inference::ModelInferRequest message = ValidRequest();
    c.breaks(&message);
    Status s = DecodeModelInferRequest(message).status();
    EXPECT_EQ(s.code(), c.code) << s.ToString();
    EXPECT_THAT(std::string(s.message()), HasSubstr(c.message));
  }
}

TEST(V2GrpcCodecTest, EncodersRejectEmptyTensors) {
  V2InferRequest request;
  request.inputs.push_back({"x", Tensor()});
  inference::ModelInferRequest message;
  EXPECT_EQ(EncodeModelInferRequest(request, V2TensorEncoding::kRaw, &message).code(),
            StatusCode::kInvalidArgument);
  std::vector<NamedTensor> outputs;
  outputs.push_back({"y", Tensor()});
  inference::ModelInferResponse response;
  Status s = EncodeModelInferResponse("m", "1", "", outputs, &response);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("output 'y' has no element type"));
}

// The wire contract with KServe/Triton clients: the names and numbers they were built against.
TEST(V2GrpcCodecTest, ProtoMatchesThePublicFieldNumbers) {
  struct Field {
    const google::protobuf::Descriptor* message;
    const char* name;
    int number;
  };
  using inference::ModelInferRequest;
  using inference::ModelInferResponse;
  const std::vector<Field> fields = {
      {ModelInferRequest::descriptor(), "model_name", 1},
      {ModelInferRequest::descriptor(), "model_version", 2},
      {ModelInferRequest::descriptor(), "id", 3},
      {ModelInferRequest::descriptor(), "parameters", 4},
      {ModelInferRequest::descriptor(), "inputs", 5},
      {ModelInferRequest::descriptor(), "outputs", 6},
      {ModelInferRequest::descriptor(), "raw_input_contents", 7},
      {ModelInferRequest::InferInputTensor::descriptor(), "name", 1},
      {ModelInferRequest::InferInputTensor::descriptor(), "datatype", 2},
      {ModelInferRequest::InferInputTensor::descriptor(), "shape", 3},
      {ModelInferRequest::InferInputTensor::descriptor(), "parameters", 4},
      {ModelInferRequest::InferInputTensor::descriptor(), "contents", 5},
      {ModelInferRequest::InferRequestedOutputTensor::descriptor(), "parameters", 2},
      {ModelInferResponse::descriptor(), "outputs", 5},
      {ModelInferResponse::descriptor(), "raw_output_contents", 6},
      {ModelInferResponse::InferOutputTensor::descriptor(), "contents", 5},
      {inference::InferTensorContents::descriptor(), "bool_contents", 1},
      {inference::InferTensorContents::descriptor(), "int_contents", 2},
      {inference::InferTensorContents::descriptor(), "int64_contents", 3},
      {inference::InferTensorContents::descriptor(), "uint_contents", 4},
      {inference::InferTensorContents::descriptor(), "uint64_contents", 5},
      {inference::InferTensorContents::descriptor(), "fp32_contents", 6},
      {inference::InferTensorContents::descriptor(), "fp64_contents", 7},
      {inference::InferTensorContents::descriptor(), "bytes_contents", 8},
      {inference::InferParameter::descriptor(), "bool_param", 1},
      {inference::InferParameter::descriptor(), "int64_param", 2},
      {inference::InferParameter::descriptor(), "string_param", 3},
      {inference::InferParameter::descriptor(), "double_param", 4},
      {inference::InferParameter::descriptor(), "uint64_param", 5},
      {inference::ModelMetadataResponse::descriptor(), "platform", 3},
      {inference::ModelMetadataResponse::descriptor(), "inputs", 4},
      {inference::ModelMetadataResponse::descriptor(), "outputs", 5},
      {inference::ServerMetadataResponse::descriptor(), "extensions", 3},
      {inference::ModelReadyRequest::descriptor(), "version", 2},
  };
  for (const Field& f : fields) {
    const google::protobuf::FieldDescriptor* field = f.message->FindFieldByName(f.name);
    ASSERT_NE(field, nullptr) << f.message->full_name() << "." << f.name;
    EXPECT_EQ(field->number(), f.number) << field->full_name();
  }
  const google::protobuf::ServiceDescriptor* service =
      inference::ModelInferRequest::descriptor()->file()->FindServiceByName("GRPCInferenceService");
  ASSERT_NE(service, nullptr);
  EXPECT_EQ(service->full_name(), "inference.GRPCInferenceService");
  for (const char* rpc : {"ServerLive", "ServerReady", "ModelReady", "ServerMetadata",
                          "ModelMetadata", "ModelInfer"}) {
    EXPECT_NE(service->FindMethodByName(rpc), nullptr) << rpc;
  }
}

}  // namespace
}  // namespace hml::protocol

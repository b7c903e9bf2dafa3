// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The HTTP front end through a real socket: a real model repository for the round trips (a
// whole model, and a split request with an INT8 cut tensor), and a scripted backend for the
// error mappings (429 with Retry-After, 504 from Timeout-Ms).
#include "src/server/http/http_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "hml/env.h"
#include "hml/runtime/session.h"
#include "src/server/metrics/metrics.h"
#include "src/server/serving/model_repository.h"
#include "tests/testing/models.h"
#include "tests/testing/split_requests.h"

namespace hml::server {
namespace {

using ::testing::HasSubstr;

// Answers every Infer with what the test scripts, and records the deadline it was given.
class ScriptedBackend : public InferenceBackend {
 public:
  SubmitResult next{Status::Ok(), 0};
  // What CheckAdmission answers (before the body is parsed).
  SubmitResult admission{Status::Ok(), 0};
  SubmitResult CheckAdmission(const std::string&, int64_t, ServingProtocol) override {
    return admission;
  }
  Status done_with = Status::Ok();
  int64_t last_deadline = -1;
  bool Ready() const override { return true; }
  Result<ServedModel> GetModel(const std::string& name, int64_t version) const override {
    if (name != "m") return NotFoundError("model '" + name + "' is not loaded");
    ServedModel m;
    m.name = "m";
    m.version = 1;
    m.versions = {1};
    m.inputs = {{"x", DType::kFloat32, {-1, 2}}};
    m.outputs = {{"y", DType::kFloat32, {-1, 2}}};
    return m;
  }
  std::vector<ServedModel> ListModels() const override { return {*GetModel("m", 0)}; }
  SubmitResult Infer(const std::string&, int64_t, ServingProtocol,
                     NamedInferRequest request) override {
    last_deadline = request.deadline_nanos;
    if (!next.ok()) return next;
    if (done_with.ok()) {
      std::vector<Tensor> echoed;
      for (NamedTensor& input : request.inputs) echoed.push_back(std::move(input.tensor));
      request.done(std::move(echoed));
    } else {
      request.done(done_with);
    }
    return {Status::Ok(), 0};
  }
};

std::string InferBody(int n) {
  nlohmann::json body;
  body["inputs"] = nlohmann::json::array();
  nlohmann::json x;
  x["name"] = "x";
  x["shape"] = {n, 2};
  x["datatype"] = "FP32";
  x["data"] = std::vector<float>(static_cast<size_t>(2 * n), 0.5f);
  body["inputs"].push_back(x);
  return body.dump();
}

class HttpServerTest : public ::testing::Test {
 protected:
  void Start(InferenceBackend& backend, HttpServerOptions options = {}) {
    server_ = std::make_unique<HttpServer>(backend, metrics_, std::move(options));
    ASSERT_TRUE(server_->Start().ok());
    client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
  }
  MetricsRegistry metrics_;
  std::unique_ptr<HttpServer> server_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(HttpServerTest, HealthMetadataAndInferAgainstARealModel) {
  auto serving = ServingMetrics::Create(metrics_);
  ASSERT_TRUE(serving.ok()) << serving.status().ToString();
  ModelRepository repo({}, serving->get());
  auto model = Model::FromGraph(testing::Cnn28Graph());
  ASSERT_TRUE(model.ok());
  ASSERT_TRUE(repo.LoadModel("cnn", 1, *model).ok());
  Start(repo);
  EXPECT_EQ(client_->Get("/v2/health/live")->status, 200);
  EXPECT_EQ(client_->Get("/v2/health/ready")->status, 200);
  auto meta = client_->Get("/v2/models/cnn");
  ASSERT_TRUE(meta);
  EXPECT_EQ(meta->status, 200);
  EXPECT_THAT(meta->body, HasSubstr("\"name\":\"cnn\""));
  EXPECT_EQ(client_->Get("/v2/models/nope")->status, 404);
  EXPECT_EQ(client_->Get("/v2/models/cnn/versions/7")->status, 404);

  Tensor x = testing::RandomTensor({1, 1, 28, 28}, 3, 1.0f);
  nlohmann::json body;
  nlohmann::json in;
  const std::string input_name = model->inputs()[0].name;
  in["name"] = input_name;
  in["shape"] = {1, 1, 28, 28};
  in["datatype"] = "FP32";
  auto xs = x.values<float>();
  in["data"] = std::vector<float>(xs.begin(), xs.end());
  body["inputs"] = {in};
  auto res = client_->Post("/v2/models/cnn/infer", body.dump(), "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  const nlohmann::json out = nlohmann::json::parse(res->body);
  const std::vector<float> got = out["outputs"][0]["data"].get<std::vector<float>>();
  auto session = Session::Create(*model);
  ASSERT_TRUE(session.ok());
  auto want = (*session)->Run({&x, 1});
  ASSERT_TRUE(want.ok());
  auto w = (*want)[0].values<float>();
  ASSERT_EQ(got.size(), w.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_FLOAT_EQ(got[i], w[i]);
  auto scraped = client_->Get("/metrics");
  ASSERT_TRUE(scraped);
  EXPECT_THAT(scraped->body,
              HasSubstr("hml_inference_requests_total{model=\"cnn\",version=\"1\",protocol=\"http\","
                        "code=\"OK\"} 1"));
}

// A split request in v2 JSON: the tensors of the cut {ra, rb} of the two-branch CNN, "ra" as
// FP32 and "rb" as INT8 with "parameters": {"scale", "zero_point"} on the input.
TEST_F(HttpServerTest, SplitRequestWithAnInt8CutTensorAgainstARealModel) {
  auto serving = ServingMetrics::Create(metrics_);
  ASSERT_TRUE(serving.ok()) << serving.status().ToString();
  ModelRepository repo({}, serving->get());
  const Model model = *Model::FromGraph(testing::TwoBranchCnnGraph());
  ASSERT_TRUE(repo.LoadModel("cnn", 1, model).ok());
  Start(repo);

  const Tensor images = testing::RandomTensor({1, 1, 28, 28}, 73, 1.0f);
  std::vector<NamedTensor> cut = testing::HeadTensors(model, {"ra", "rb"}, images);
  ASSERT_EQ(cut.size(), 2u);
  const NamedTensor rb = testing::QuantizeInt8(cut[1]);
  const double scale = std::get<double>(rb.parameters.at("scale"));
  nlohmann::json ra_json;
  ra_json["name"] = "ra";
  ra_json["shape"] = cut[0].tensor.shape();
  ra_json["datatype"] = "FP32";
  auto ra_values = cut[0].tensor.values<float>();
  ra_json["data"] = std::vector<float>(ra_values.begin(), ra_values.end());
  nlohmann::json rb_json;
  rb_json["name"] = "rb";
  rb_json["shape"] = rb.tensor.shape();
  rb_json["datatype"] = "INT8";
  auto rb_values = rb.tensor.values<int8_t>();
  rb_json["data"] = std::vector<int>(rb_values.begin(), rb_values.end());
  rb_json["parameters"] = {{"scale", scale}, {"zero_point", 0}};
  nlohmann::json body;
  body["id"] = "split-1";
  body["inputs"] = {rb_json, ra_json};
  auto res = client_->Post("/v2/models/cnn/infer", body.dump(), "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  const nlohmann::json out = nlohmann::json::parse(res->body);
  EXPECT_EQ(out["id"], "split-1");
  EXPECT_EQ(out["outputs"][0]["name"], "probs");
  const std::vector<float> got = out["outputs"][0]["data"].get<std::vector<float>>();

  std::vector<NamedTensor> tail_inputs;
  tail_inputs.push_back({"ra", *cut[0].tensor.Clone()});
  tail_inputs.push_back(testing::DequantizeInt8(rb));
  const std::vector<Tensor> want =
      testing::RunInProcess(*model.Slice(std::vector<std::string>{"ra", "rb"}, {}), tail_inputs);
  ASSERT_EQ(want.size(), 1u);
  auto w = want[0].values<float>();
  ASSERT_EQ(got.size(), w.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], w[i], 1e-5f);

  // Without its scale, the INT8 tensor is a 400 naming the input and the parameter.
  body["inputs"][0]["parameters"].erase("scale");
  auto bad = client_->Post("/v2/models/cnn/infer", body.dump(), "application/json");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_THAT(bad->body, HasSubstr("input 'rb'"));
  EXPECT_THAT(bad->body, HasSubstr("no parameter 'scale'"));

  auto scraped = client_->Get("/metrics");
  ASSERT_TRUE(scraped);
  EXPECT_THAT(scraped->body, HasSubstr("hml_inference_split_requests_total{model=\"cnn\","
                                       "version=\"1\",protocol=\"http\",code=\"OK\"} 1"));
}

TEST_F(HttpServerTest, ErrorsMapToTheirStatusCodes) {
  ScriptedBackend backend;
  HttpServerOptions options;
  options.max_body_bytes = 4096;
  Start(backend, options);
  // Malformed JSON and a shape that does not match the data.
  EXPECT_EQ(client_->Post("/v2/models/m/infer", "{not json", "application/json")->status, 400);
  EXPECT_EQ(client_->Post("/v2/models/m/infer", "{\"inputs\":[{\"name\":\"x\",\"shape\":[1,2],"
                                                 "\"datatype\":\"FP32\",\"data\":[1]}]}",
                          "application/json")
                ->status,
            400);
  // Unknown model.
  EXPECT_EQ(client_->Post("/v2/models/nope/infer", InferBody(1), "application/json")->status, 404);
  // Larger than the body limit: refused before it is read.
  auto big = client_->Post("/v2/models/m/infer", InferBody(1000), "application/json");
  ASSERT_TRUE(big);
  EXPECT_EQ(big->status, 413);
  // Overload: 429 with Retry-After rounded up to whole seconds.
  backend.next = {ResourceExhaustedError("queue full"), 2'500'000};
  auto busy = client_->Post("/v2/models/m/infer", InferBody(1), "application/json");
  ASSERT_TRUE(busy);
  EXPECT_EQ(busy->status, 429);
  EXPECT_EQ(busy->get_header_value("Retry-After"), "3");
  // Overload is refused before the body is parsed: even malformed JSON gets the 429.
  backend.admission = {ResourceExhaustedError("queue full"), 1'000'000};
  auto early = client_->Post("/v2/models/m/infer", "{not json", "application/json");
  ASSERT_TRUE(early);
  EXPECT_EQ(early->status, 429) << early->body;
  EXPECT_EQ(early->get_header_value("Retry-After"), "1");
  backend.admission = {Status::Ok(), 0};
  // A deadline from Timeout-Ms reaches the backend; work that misses it is a 504.
  backend.next = {Status::Ok(), 0};
  backend.done_with = DeadlineExceededError("expired in the queue");
  httplib::Headers headers{{"Timeout-Ms", "250"}};
  auto late = client_->Post("/v2/models/m/infer", headers, InferBody(1), "application/json");
  ASSERT_TRUE(late);
  EXPECT_EQ(late->status, 504);
  EXPECT_GT(backend.last_deadline, 0);
  // Success through the scripted backend (it echoes the inputs).
  backend.done_with = Status::Ok();
  auto ok = client_->Post("/v2/models/m/infer", InferBody(2), "application/json");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200) << ok->body;
}

TEST_F(HttpServerTest, OtaFilesWithRangesAndNoTraversal) {
  const std::string dir = ::testing::TempDir() + "/http_ota";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir + "/targets");
  ASSERT_TRUE(DefaultEnv()->WriteFileAtomic(dir + "/targets/model.onnx", "0123456789").ok());
  ASSERT_TRUE(DefaultEnv()->WriteFileAtomic(::testing::TempDir() + "/secret", "s").ok());
  ScriptedBackend backend;
  HttpServerOptions options;
  options.ota_repo_dir = dir;
  Start(backend, options);
  auto whole = client_->Get("/ota/targets/model.onnx");
  ASSERT_TRUE(whole);
  EXPECT_EQ(whole->status, 200);
  EXPECT_EQ(whole->body, "0123456789");
  httplib::Headers range{{"Range", "bytes=3-5"}};
  auto part = client_->Get("/ota/targets/model.onnx", range);
  ASSERT_TRUE(part);
  EXPECT_EQ(part->status, 206);
  EXPECT_EQ(part->body, "345");
  EXPECT_EQ(client_->Get("/ota/../secret")->status == 200, false);
  EXPECT_EQ(client_->Get("/ota/targets/%2e%2e/%2e%2e/secret")->status == 200, false);
  EXPECT_EQ(client_->Get("/ota/targets/missing.onnx")->status, 404);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace hml::server

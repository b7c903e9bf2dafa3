// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The HTTP auth matrix through a real socket: HttpServer with an Authenticator over a real
// auth.db. Open routes (health, /metrics) answer without a credential; model metadata, infer,
// /ota/ and the device routes answer 401 with `WWW-Authenticate: Bearer` to a missing,
// malformed, unknown or revoked credential, 403 to a valid one that may not see the data, 200
// otherwise; a refused infer never reaches the backend. Without an authenticator everything is
// open and /v1/devices does not exist.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "src/server/http/http_server.h"
#include "src/server/metrics/metrics.h"
#include "tests/testing/auth_fixture.h"

namespace hml::server {
namespace {

using ::testing::HasSubstr;

// Serves model "m" (x -> y, float [-1, 2]) and echoes the inputs; counts Infer calls.
class CountingBackend : public InferenceBackend {
 public:
  std::atomic<int> infers{0};
  bool Ready() const override { return true; }
  Result<ServedModel> GetModel(const std::string& name, int64_t) const override {
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
    ++infers;
    std::vector<Tensor> echo;
    for (NamedTensor& input : request.inputs) echo.push_back(std::move(input.tensor));
    request.done(std::move(echo));
    return {Status::Ok(), 0};
  }
};

constexpr char kInferBody[] =
    R"({"inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[1,2]}]})";

class HttpAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fixture_.Create("http_auth_test");
    ASSERT_FALSE(HasFatalFailure());
    std::filesystem::create_directories(fixture_.dir + "/repo");
    std::ofstream(fixture_.dir + "/repo/timestamp.json") << "{}";
  }
  void TearDown() override {
    server_.reset();
    fixture_.Remove();
  }

  void Start(bool with_auth) {
    HttpServerOptions options;
    options.ota_repo_dir = fixture_.dir + "/repo";
    options.authenticator = with_auth ? fixture_.authenticator.get() : nullptr;
    server_ = std::make_unique<HttpServer>(backend_, metrics_, options);
    ASSERT_TRUE(server_->Start().ok());
    client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
  }

  // GET or POST `path` with `token` ("" = no Authorization header; "raw:<v>" = header value v).
  httplib::Result Send(const std::string& method, const std::string& path,
                       const std::string& token) {
    httplib::Headers headers;
    if (token.starts_with("raw:")) {
      headers.emplace("Authorization", token.substr(4));
    } else if (!token.empty()) {
      headers.emplace("Authorization", "Bearer " + token);
    }
    if (method == "POST")
      return client_->Post(path.c_str(), headers, kInferBody, "application/json");
    return client_->Get(path.c_str(), headers);
  }

  CountingBackend backend_;
  MetricsRegistry metrics_;
  testing::AuthPrincipals fixture_;
  std::unique_ptr<HttpServer> server_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(HttpAuthTest, Matrix) {
  Start(/*with_auth=*/true);
  ASSERT_FALSE(HasFatalFailure());
  const std::string own_record = "/v1/devices/" + fixture_.device_a_id;
  struct Route {
    std::string method;
    std::string path;
    int other_device;  // device B
    int admin;
    int own_device;  // device A
  };
  const std::vector<Route> routes = {
      {"GET", "/v2", 200, 200, 200},
      {"GET", "/v2/models/m", 200, 200, 200},
      {"GET", "/v2/models/m/versions/1/ready", 200, 200, 200},
      {"POST", "/v2/models/m/infer", 200, 200, 200},
      {"GET", "/ota/timestamp.json", 200, 200, 200},
      {"GET", "/v1/devices", 403, 200, 403},
      {"GET", own_record, 403, 200, 200},
  };
  const std::vector<std::pair<std::string, std::string>> refused = {
      {"no credential", ""},
      {"malformed scheme", "raw:Basic dXNlcjpwYXNz"},
      {"malformed token", "not-a-token"},
      {"unknown", fixture_.unknown},
      {"revoked device", fixture_.revoked},
      {"enrollment secret", fixture_.enrollment_secret}};
  for (const Route& route : routes) {
    for (const auto& [who, token] : refused) {
      httplib::Result res = Send(route.method, route.path, token);
      ASSERT_TRUE(res) << route.path;
      EXPECT_EQ(res->status, 401) << route.method << " " << route.path << " by " << who;
      EXPECT_THAT(res->get_header_value("WWW-Authenticate"), HasSubstr("Bearer"))
          << route.path << " by " << who;
      EXPECT_THAT(res->body, HasSubstr("\"error\"")) << route.path << " by " << who;
    }
    for (const auto& [who, token, want] :
         {std::tuple{"other device", fixture_.device_b, route.other_device},
          std::tuple{"admin", fixture_.admin_key, route.admin},
          std::tuple{"own device", fixture_.device_a, route.own_device}}) {
      httplib::Result res = Send(route.method, route.path, token);
      ASSERT_TRUE(res) << route.path;
      EXPECT_EQ(res->status, want)
          << route.method << " " << route.path << " by " << who << ": " << res->body;
      if (want == 403) {
        EXPECT_FALSE(res->has_header("WWW-Authenticate")) << route.path;
      }
    }
  }
  // Only the three accepted infer calls reached the backend.
  EXPECT_EQ(backend_.infers.load(), 3);

  // The device record and the listing carry the data, never a credential.
  httplib::Result record = Send("GET", own_record, fixture_.device_a);
  ASSERT_TRUE(record);
  const nlohmann::json device = nlohmann::json::parse(record->body);
  EXPECT_EQ(device["device_id"], fixture_.device_a_id);
  EXPECT_EQ(device["revoked"], false);
  httplib::Result listing = Send("GET", "/v1/devices", fixture_.admin_key);
  ASSERT_TRUE(listing);
  EXPECT_EQ(nlohmann::json::parse(listing->body)["devices"].size(), 3u);
  EXPECT_THAT(listing->body, ::testing::Not(HasSubstr("hmld_")));
  EXPECT_EQ(Send("GET", "/v1/devices/0000000000000000", fixture_.admin_key)->status, 404);
}

TEST_F(HttpAuthTest, HealthAndMetricsStayOpen) {
  Start(/*with_auth=*/true);
  ASSERT_FALSE(HasFatalFailure());
  for (const char* path : {"/healthz", "/v2/health/live", "/v2/health/ready", "/metrics"}) {
    httplib::Result res = Send("GET", path, "");
    ASSERT_TRUE(res) << path;
    EXPECT_EQ(res->status, 200) << path;
  }
  // Unknown routes are not told apart from known ones before authentication.
  EXPECT_EQ(Send("GET", "/nope", "")->status, 401);
  EXPECT_EQ(Send("GET", "/nope", fixture_.admin_key)->status, 404);
}

TEST_F(HttpAuthTest, RevocationByAnotherHandleTakesEffectOnTheNextRequest) {
  Start(/*with_auth=*/true);
  ASSERT_FALSE(HasFatalFailure());
  EXPECT_EQ(Send("GET", "/v2/models/m", fixture_.device_a)->status, 200);
  auto cli = AuthStore::OpenInRegistry(fixture_.dir, *RealClock());
  ASSERT_TRUE(cli.ok());
  ASSERT_TRUE((*cli)->RevokeDevice(fixture_.device_a_id).ok());
  httplib::Result res = Send("GET", "/v2/models/m", fixture_.device_a);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 401);
  EXPECT_THAT(res->body, HasSubstr("revoked"));
  EXPECT_THAT(res->get_header_value("WWW-Authenticate"), HasSubstr("invalid_token"));
}

TEST_F(HttpAuthTest, WithoutAnAuthenticatorEverythingIsOpen) {
  Start(/*with_auth=*/false);
  ASSERT_FALSE(HasFatalFailure());
  EXPECT_EQ(Send("GET", "/v2/models/m", "")->status, 200);
  EXPECT_EQ(Send("POST", "/v2/models/m/infer", "")->status, 200);
  EXPECT_EQ(Send("GET", "/ota/timestamp.json", "")->status, 200);
  EXPECT_EQ(Send("GET", "/v1/devices", fixture_.admin_key)->status, 404);
}

}  // namespace
}  // namespace hml::server

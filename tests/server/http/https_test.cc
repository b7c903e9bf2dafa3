// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The HTTP front end over TLS (issue 5, must-show #1: "TLS and mTLS handshakes succeed and fail
// as they should"), with certificates from MakeDevCertificates and cpp-httplib's SSLClient:
// a client trusting the CA gets through, one trusting another CA fails the handshake; with a
// client CA configured, a client without a certificate fails and one with the client
// certificate gets through. Also the PEM loading errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <filesystem>
#include <string>

#include "src/server/http/http_server.h"
#include "src/server/metrics/metrics.h"
#include "src/server/tls/certs.h"

namespace hml::server {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// A backend with no models that is always ready: the TLS layer is what is under test.
class ReadyBackend : public InferenceBackend {
 public:
  bool Ready() const override { return true; }
  Result<ServedModel> GetModel(const std::string& name, int64_t) const override {
    return NotFoundError("model '" + name + "' is not loaded");
  }
  std::vector<ServedModel> ListModels() const override { return {}; }
  SubmitResult Infer(const std::string& name, int64_t, ServingProtocol,
                     NamedInferRequest) override {
    return {NotFoundError("model '" + name + "' is not loaded"), 0};
  }
};

class HttpsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/https_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(dir_);
    ASSERT_TRUE(MakeDevCertificates(dir_ + "/pki", {}).ok());
    ASSERT_TRUE(MakeDevCertificates(dir_ + "/other", {}).ok());
  }
  void TearDown() override {
    if (server_ != nullptr) server_->Stop();
    fs::remove_all(dir_);
  }

  // Starts an HTTPS server with pki/server.pem; with `mutual`, clients need a pki/ certificate.
  void StartServer(bool mutual) {
    HttpServerOptions options;
    options.threads = 2;
    options.cert_file = dir_ + "/pki/server.pem";
    options.key_file = dir_ + "/pki/server.key";
    if (mutual) options.client_ca_file = dir_ + "/pki/ca.pem";
    server_ = std::make_unique<HttpServer>(backend_, metrics_, options);
    Status s = server_->Start();
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  // GET /v2/health/ready through `client`, which trusts `ca_file`; the HTTP status, or -1 when
  // the connection (handshake) failed.
  int Ready(httplib::SSLClient& client, const std::string& ca_file) {
    client.set_ca_cert_path(ca_file.c_str());
    client.enable_server_certificate_verification(true);
    client.set_connection_timeout(10);
    httplib::Result res = client.Get("/v2/health/ready");
    return res ? res->status : -1;
  }

  std::string dir_;
  ReadyBackend backend_;
  MetricsRegistry metrics_;
  std::unique_ptr<HttpServer> server_;
};

TEST_F(HttpsTest, ClientTrustingTheCaSucceeds) {
  StartServer(/*mutual=*/false);
  httplib::SSLClient client("localhost", server_->port());
  EXPECT_EQ(Ready(client, dir_ + "/pki/ca.pem"), 200);
}

TEST_F(HttpsTest, ClientTrustingAnotherCaFailsTheHandshake) {
  StartServer(/*mutual=*/false);
  httplib::SSLClient client("localhost", server_->port());
  EXPECT_EQ(Ready(client, dir_ + "/other/ca.pem"), -1);
  EXPECT_NE(client.get_openssl_verify_result(), X509_V_OK);
}

TEST_F(HttpsTest, PlainHttpClientGetsNoResponse) {
  StartServer(/*mutual=*/false);
  httplib::Client client("127.0.0.1", server_->port());
  client.set_connection_timeout(10);
  client.set_read_timeout(10);
  httplib::Result res = client.Get("/v2/health/ready");
  EXPECT_TRUE(!res || res->status != 200);
}

TEST_F(HttpsTest, MutualTlsRequiresTheClientCertificate) {
  StartServer(/*mutual=*/true);
  {
    httplib::SSLClient no_cert("localhost", server_->port());
    EXPECT_EQ(Ready(no_cert, dir_ + "/pki/ca.pem"), -1);
  }
  {
    // A certificate from another CA is refused as well.
    httplib::SSLClient foreign_cert("localhost", server_->port(), dir_ + "/other/client.pem",
                                    dir_ + "/other/client.key");
    EXPECT_EQ(Ready(foreign_cert, dir_ + "/pki/ca.pem"), -1);
  }
  httplib::SSLClient with_cert("localhost", server_->port(), dir_ + "/pki/client.pem",
                               dir_ + "/pki/client.key");
  EXPECT_EQ(Ready(with_cert, dir_ + "/pki/ca.pem"), 200);
}

TEST_F(HttpsTest, BadPemFilesAreInvalidArgumentNamingTheFile) {
  HttpServerOptions options;
  options.cert_file = dir_ + "/pki/server.key";  // a key where the certificate belongs
  options.key_file = dir_ + "/pki/server.key";
  HttpServer bad_cert(backend_, metrics_, options);
  Status s = bad_cert.Start();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("server.key"));

  options.cert_file = dir_ + "/pki/server.pem";
  options.key_file = dir_ + "/pki/client.key";
  HttpServer mismatch(backend_, metrics_, options);
  s = mismatch.Start();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("client.key"));

  options.key_file = dir_ + "/pki/server.key";
  options.client_ca_file = dir_ + "/pki/missing.pem";
  HttpServer missing_ca(backend_, metrics_, options);
  s = missing_ca.Start();
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_THAT(s.message(), HasSubstr("missing.pem"));

  options.client_ca_file.clear();
  options.key_file.clear();
  HttpServer half(backend_, metrics_, options);
  EXPECT_EQ(half.Start().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace hml::server

// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// TLS and mutual TLS on the gRPC front end, with real handshakes: a client that trusts the
// server's CA gets answers (ServerLive, ModelInfer); a client that trusts another CA, or speaks
// plain text, is refused; with a client CA and require_client_cert, a client without a
// certificate (or with one from another CA) is refused and a client with one is served; bad PEM
// paths fail Start() (kNotFound for a missing file, kInvalidArgument for one that is not PEM)
// naming the file, before anything is bound.
//
// The certificates are made once per test binary by the `openssl` command line (Debian's
// /usr/bin/openssl) in a fresh temporary directory: a CA, a server certificate for localhost and
// 127.0.0.1 signed by it, a client certificate signed by it, and an unrelated second CA with a
// client certificate of its own. P-256 keys keep the generation fast.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "hml/env.h"
#include "proto/inference.grpc.pb.h"
#include "proto/inference.pb.h"
#include "src/server/grpc/grpc_server.h"
#include "src/server/protocol/v2_grpc_codec.h"
#include "tests/testing/models.h"
#include "tests/testing/serving_fakes.h"

namespace hml::server {
namespace {

using ::testing::HasSubstr;

// Runs `command` with /bin/sh; true when it exited with 0.
bool Run(const std::string& command) { return std::system(command.c_str()) == 0; }

// The test PKI in a temporary directory, removed at the end of the test binary.
class Pki {
 public:
  // Makes the certificates; ok() tells whether every openssl step succeeded.
  Pki() {
    char pattern[] = "/tmp/hml_grpc_tls_XXXXXX";
    if (mkdtemp(pattern) == nullptr) return;
    dir_ = pattern;
    const std::string cd = "cd '" + dir_ + "' && ";
    const std::string key = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    // A self-signed CA (Debian's openssl.cnf marks -x509 requests CA:TRUE).
    auto make_ca = [&](const std::string& name) {
      return Run(cd + "openssl req -x509" + key + " -keyout " + name + ".key -out " + name +
                 ".pem -days 2 -subj '/CN=hybridml test " + name + "' 2>/dev/null");
    };
    // A leaf certificate named `name` signed by `ca` with the extensions `ext`.
    auto make_leaf = [&](const std::string& name, const std::string& ca, const std::string& cn,
                         const std::string& ext) {
      return Run(cd + "printf '" + ext + "' > " + name + ".ext && openssl req" + key + " -keyout " +
                 name + ".key -out " + name + ".csr -subj '/CN=" + cn +
                 "' 2>/dev/null && openssl x509 -req -in " + name + ".csr -CA " + ca +
                 ".pem -CAkey " + ca + ".key -CAcreateserial -days 2 -extfile " + name +
                 ".ext -out " + name + ".pem 2>/dev/null");
    };
    ok_ = make_ca("ca") && make_ca("other_ca") &&
          make_leaf("server", "ca", "localhost",
                    "basicConstraints=CA:FALSE\\nextendedKeyUsage=serverAuth\\n"
                    "subjectAltName=DNS:localhost,IP:127.0.0.1\\n") &&
          make_leaf("client", "ca", "device-1",
                    "basicConstraints=CA:FALSE\\nextendedKeyUsage=clientAuth\\n") &&
          make_leaf("other_client", "other_ca", "device-2",
                    "basicConstraints=CA:FALSE\\nextendedKeyUsage=clientAuth\\n");
  }
  ~Pki() {
    std::error_code ignored;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ignored);
  }

  bool ok() const { return ok_; }
  // The path of `name` ("ca.pem", "server.key", ...) in the directory.
  std::string Path(const std::string& name) const { return dir_ + "/" + name; }
  // The contents of `name`; "" when it cannot be read (the test then fails on the handshake).
  std::string Read(const std::string& name) const {
    Result<std::string> contents = DefaultEnv()->ReadFile(Path(name));
    return contents.ok() ? *contents : std::string();
  }

 private:
  std::string dir_;
  bool ok_ = false;
};

class GrpcTlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { pki_ = new Pki(); }
  static void TearDownTestSuite() {
    delete pki_;
    pki_ = nullptr;
  }

  void SetUp() override {
    ASSERT_TRUE(pki_->ok()) << "openssl could not make the test certificates";
    server::BatchingOptions batching;
    batching.max_queue_delay_micros = 500;
    backend_ = std::make_unique<testing::FakeCnnBackend>(batching);
  }

  void TearDown() override {
    server_.reset();
    backend_.reset();
  }

  // Options for a TLS server with the test CA's server certificate.
  static GrpcServerOptions TlsOptions() {
    GrpcServerOptions options;
    options.cert_file = pki_->Path("server.pem");
    options.key_file = pki_->Path("server.key");
    return options;
  }

  // Starts the server on 127.0.0.1 with `options`; the port, 0 on failure.
  int StartServer(const GrpcServerOptions& options) {
    server_ = std::make_unique<GrpcServer>(backend_.get(), options);
    Result<int> port = server_->Start("127.0.0.1:0");
    EXPECT_TRUE(port.ok()) << port.status().ToString();
    return port.ok() ? *port : 0;
  }

  // TLS client credentials trusting the CA file `root`, with the certificate and key `client`
  // ("client" -> client.pem, client.key) or none when empty.
  static std::shared_ptr<grpc::ChannelCredentials> TlsClient(const std::string& root,
                                                             const std::string& client = "") {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = pki_->Read(root);
    if (!client.empty()) {
      ssl.pem_cert_chain = pki_->Read(client + ".pem");
      ssl.pem_private_key = pki_->Read(client + ".key");
    }
    return grpc::SslCredentials(ssl);
  }

  // One ServerLive call to localhost:`port` (the name the server certificate is issued for), with
  // a deadline so that a hanging handshake fails the test instead of blocking it.
  static grpc::Status Live(int port, const std::shared_ptr<grpc::ChannelCredentials>& creds) {
    std::unique_ptr<inference::GRPCInferenceService::Stub> stub =
        inference::GRPCInferenceService::NewStub(
            grpc::CreateChannel("localhost:" + std::to_string(port), creds));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    inference::ServerLiveResponse response;
    grpc::Status status = stub->ServerLive(&context, {}, &response);
    if (status.ok()) {
      EXPECT_TRUE(response.live());
    }
    return status;
  }

  // One ModelInfer of one random image; checks the answer's shape when it succeeds.
  static grpc::Status Infer(int port, const std::shared_ptr<grpc::ChannelCredentials>& creds) {
    std::unique_ptr<inference::GRPCInferenceService::Stub> stub =
        inference::GRPCInferenceService::NewStub(
            grpc::CreateChannel("localhost:" + std::to_string(port), creds));
    V2InferRequest request;
    request.model_name = testing::kFakeCnnModel;
    request.inputs.push_back({"image", testing::RandomTensor({1, 1, 28, 28}, 7, 1.0f)});
    inference::ModelInferRequest message;
    Status encoded = EncodeModelInferRequest(request, V2TensorEncoding::kRaw, &message);
    EXPECT_TRUE(encoded.ok()) << encoded.ToString();
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    inference::ModelInferResponse response;
    grpc::Status status = stub->ModelInfer(&context, message, &response);
    if (status.ok()) {
      Result<V2InferResponse> decoded = DecodeModelInferResponse(response);
      EXPECT_TRUE(decoded.ok()) << decoded.status().ToString();
      if (decoded.ok()) {
        EXPECT_EQ(decoded->model_name, testing::kFakeCnnModel);
        EXPECT_EQ(decoded->outputs.size(), 1u);
        if (!decoded->outputs.empty()) {
          EXPECT_EQ(decoded->outputs[0].tensor.shape(), (Shape{1, 10}));
        }
      }
    }
    return status;
  }

  static Pki* pki_;
  std::unique_ptr<testing::FakeCnnBackend> backend_;
  std::unique_ptr<GrpcServer> server_;
};

Pki* GrpcTlsTest::pki_ = nullptr;

TEST_F(GrpcTlsTest, ClientTrustingTheCaIsServed) {
  const int port = StartServer(TlsOptions());
  ASSERT_GT(port, 0);
  grpc::Status live = Live(port, TlsClient("ca.pem"));
  EXPECT_TRUE(live.ok()) << live.error_code() << ": " << live.error_message();
  grpc::Status infer = Infer(port, TlsClient("ca.pem"));
  EXPECT_TRUE(infer.ok()) << infer.error_code() << ": " << infer.error_message();
}

TEST_F(GrpcTlsTest, ClientTrustingAnotherCaFailsTheHandshake) {
  const int port = StartServer(TlsOptions());
  ASSERT_GT(port, 0);
  grpc::Status status = Live(port, TlsClient("other_ca.pem"));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  // The same server serves a client that trusts its CA: the refusal was the handshake's.
  grpc::Status control = Live(port, TlsClient("ca.pem"));
  EXPECT_TRUE(control.ok()) << control.error_code() << ": " << control.error_message();
}

TEST_F(GrpcTlsTest, PlainTextClientIsRefused) {
  const int port = StartServer(TlsOptions());
  ASSERT_GT(port, 0);
  grpc::Status status = Live(port, grpc::InsecureChannelCredentials());
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  // The same server serves a client that trusts its CA: the refusal was the handshake's.
  grpc::Status control = Live(port, TlsClient("ca.pem"));
  EXPECT_TRUE(control.ok()) << control.error_code() << ": " << control.error_message();
}

TEST_F(GrpcTlsTest, MutualTlsRefusesClientsWithoutAValidCertificate) {
  GrpcServerOptions options = TlsOptions();
  options.client_ca_file = pki_->Path("ca.pem");
  options.require_client_cert = true;
  const int port = StartServer(options);
  ASSERT_GT(port, 0);
  grpc::Status none = Live(port, TlsClient("ca.pem"));
  EXPECT_EQ(none.error_code(), grpc::StatusCode::UNAVAILABLE) << none.error_message();
  grpc::Status other = Live(port, TlsClient("ca.pem", "other_client"));
  EXPECT_EQ(other.error_code(), grpc::StatusCode::UNAVAILABLE) << other.error_message();
  grpc::Status live = Live(port, TlsClient("ca.pem", "client"));
  EXPECT_TRUE(live.ok()) << live.error_code() << ": " << live.error_message();
  grpc::Status infer = Infer(port, TlsClient("ca.pem", "client"));
  EXPECT_TRUE(infer.ok()) << infer.error_code() << ": " << infer.error_message();
}

TEST_F(GrpcTlsTest, OptionalClientCertificateLetsClientsWithoutOneIn) {
  GrpcServerOptions options = TlsOptions();
  options.client_ca_file = pki_->Path("ca.pem");
  options.require_client_cert = false;
  const int port = StartServer(options);
  ASSERT_GT(port, 0);
  grpc::Status none = Live(port, TlsClient("ca.pem"));
  EXPECT_TRUE(none.ok()) << none.error_code() << ": " << none.error_message();
  grpc::Status with = Live(port, TlsClient("ca.pem", "client"));
  EXPECT_TRUE(with.ok()) << with.error_code() << ": " << with.error_message();
  // A certificate that is sent is verified even when it is optional.
  grpc::Status other = Live(port, TlsClient("ca.pem", "other_client"));
  EXPECT_EQ(other.error_code(), grpc::StatusCode::UNAVAILABLE) << other.error_message();
}

TEST_F(GrpcTlsTest, MissingCertFileFailsStartNamingIt) {
  GrpcServerOptions options = TlsOptions();
  options.cert_file = pki_->Path("no_such.pem");
  GrpcServer server(backend_.get(), options);
  Result<int> port = server.Start("127.0.0.1:0");
  ASSERT_FALSE(port.ok());
  EXPECT_EQ(port.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(std::string(port.status().message()), HasSubstr("gRPC server"));
  EXPECT_THAT(std::string(port.status().message()), HasSubstr(options.cert_file));
  EXPECT_EQ(server.port(), 0);
}

TEST_F(GrpcTlsTest, NonPemFilesFailStartNamingThem) {
  // server.ext exists but holds no PEM block.
  GrpcServerOptions key = TlsOptions();
  key.key_file = pki_->Path("server.ext");
  Result<int> port = GrpcServer(backend_.get(), key).Start("127.0.0.1:0");
  ASSERT_FALSE(port.ok());
  EXPECT_EQ(port.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(port.status().message()), HasSubstr("key file '" + key.key_file));
  EXPECT_THAT(std::string(port.status().message()), HasSubstr("no unencrypted PEM private key"));

  // A PEM key that is not the certificate's: refused before binding, naming both files.
  GrpcServerOptions mismatched = TlsOptions();
  mismatched.key_file = pki_->Path("other_client.key");
  port = GrpcServer(backend_.get(), mismatched).Start("127.0.0.1:0");
  ASSERT_FALSE(port.ok());
  EXPECT_EQ(port.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(port.status().message()), HasSubstr("does not match certificate"));

  GrpcServerOptions ca = TlsOptions();
  ca.client_ca_file = pki_->Path("missing_ca.pem");
  port = GrpcServer(backend_.get(), ca).Start("127.0.0.1:0");
  ASSERT_FALSE(port.ok());
  EXPECT_EQ(port.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(std::string(port.status().message()), HasSubstr(ca.client_ca_file));
}

TEST_F(GrpcTlsTest, InconsistentTlsOptionsAreRejected) {
  GrpcServerOptions no_key = TlsOptions();
  no_key.key_file.clear();
  EXPECT_EQ(no_key.Validate().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(no_key.Validate().message()), HasSubstr("key_file"));

  GrpcServerOptions no_cert;
  no_cert.client_ca_file = pki_->Path("ca.pem");
  EXPECT_EQ(no_cert.Validate().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(no_cert.Validate().message()), HasSubstr("client_ca_file"));

  EXPECT_TRUE(TlsOptions().Validate().ok());
  EXPECT_TRUE(GrpcServerOptions().Validate().ok());
}

}  // namespace
}  // namespace hml::server

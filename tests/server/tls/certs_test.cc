// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// MakeDevCertificates: the six files with their modes, refusal to overwrite, and the chain as
// OpenSSL's own verifier sees it (server and client certificates verify against ca.pem for their
// purpose, the server certificate carries the SANs, a second CA does not verify them).
#include "src/server/tls/certs.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "src/base/file_util.h"

namespace hml::server {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

struct X509Free {
  void operator()(X509* p) const { X509_free(p); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;

X509Ptr ReadCert(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) return nullptr;
  X509Ptr cert(PEM_read_X509(f, nullptr, nullptr, nullptr));
  std::fclose(f);
  return cert;
}

// X509_verify_cert of `leaf` against the single trusted `ca` for `purpose`; the verify error
// code (X509_V_OK on success).
int Verify(X509* leaf, X509* ca, int purpose) {
  X509_STORE* store = X509_STORE_new();
  X509_STORE_add_cert(store, ca);
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  X509_STORE_CTX_init(ctx, store, leaf, nullptr);
  X509_STORE_CTX_set_purpose(ctx, purpose);
  const int ok = X509_verify_cert(ctx);
  const int error = ok == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx);
  X509_STORE_CTX_free(ctx);
  X509_STORE_free(store);
  return error;
}

class CertsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/certs_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string dir_;
};

TEST_F(CertsTest, WritesSixFilesWithPrivateKeyModes) {
  ASSERT_TRUE(MakeDevCertificates(dir_ + "/nested", {}).ok());
  for (const char* file : kDevCertFiles) {
    const std::string path = dir_ + "/nested/" + file;
    Result<int> mode = FileMode(path);
    ASSERT_TRUE(mode.ok()) << mode.status().ToString();
    const bool is_key = std::string(file).ends_with(".key");
    EXPECT_EQ(*mode, is_key ? 0600 : 0644) << path;
  }
}

TEST_F(CertsTest, RefusesToOverwrite) {
  ASSERT_TRUE(MakeDevCertificates(dir_, {}).ok());
  X509Ptr before = ReadCert(dir_ + "/ca.pem");
  ASSERT_NE(before, nullptr);
  Status again = MakeDevCertificates(dir_, {});
  EXPECT_EQ(again.code(), StatusCode::kAlreadyExists);
  EXPECT_THAT(again.message(), HasSubstr("ca.pem"));
  X509Ptr after = ReadCert(dir_ + "/ca.pem");
  ASSERT_NE(after, nullptr);
  EXPECT_EQ(X509_cmp(before.get(), after.get()), 0) << "ca.pem was replaced";

  // One leftover file is enough to refuse, and nothing else is written.
  fs::remove_all(dir_);
  fs::create_directories(dir_);
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/client.key", "x", {}).ok());
  Status one = MakeDevCertificates(dir_, {});
  EXPECT_EQ(one.code(), StatusCode::kAlreadyExists);
  EXPECT_THAT(one.message(), HasSubstr("client.key"));
  EXPECT_FALSE(fs::exists(dir_ + "/ca.pem"));
}

TEST_F(CertsTest, ChainVerifiesWithSansAndPurposes) {
  CertOptions options;
  options.days = 30;
  options.extra_names = {"hml.example", "10.1.2.3", "::1"};
  ASSERT_TRUE(MakeDevCertificates(dir_, options).ok());
  X509Ptr ca = ReadCert(dir_ + "/ca.pem");
  X509Ptr server = ReadCert(dir_ + "/server.pem");
  X509Ptr client = ReadCert(dir_ + "/client.pem");
  ASSERT_NE(ca, nullptr);
  ASSERT_NE(server, nullptr);
  ASSERT_NE(client, nullptr);

  EXPECT_EQ(X509_check_ca(ca.get()), 1);
  EXPECT_EQ(X509_get_version(server.get()), X509_VERSION_3);
  EXPECT_EQ(Verify(server.get(), ca.get(), X509_PURPOSE_SSL_SERVER), X509_V_OK);
  EXPECT_EQ(Verify(client.get(), ca.get(), X509_PURPOSE_SSL_CLIENT), X509_V_OK);
  // Each leaf is good only for its own role (extendedKeyUsage).
  EXPECT_NE(Verify(server.get(), ca.get(), X509_PURPOSE_SSL_CLIENT), X509_V_OK);
  EXPECT_NE(Verify(client.get(), ca.get(), X509_PURPOSE_SSL_SERVER), X509_V_OK);

  EXPECT_EQ(X509_check_host(server.get(), "localhost", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_host(server.get(), "hml.example", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_host(server.get(), "other.example", 0, 0, nullptr), 0);
  EXPECT_EQ(X509_check_ip_asc(server.get(), "127.0.0.1", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(server.get(), "10.1.2.3", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(server.get(), "::1", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(server.get(), "10.9.9.9", 0), 0);

  // About `days` of validity from now.
  int days = 0, seconds = 0;
  ASSERT_EQ(ASN1_TIME_diff(&days, &seconds, X509_get0_notBefore(server.get()),
                           X509_get0_notAfter(server.get())),
            1);
  EXPECT_EQ(days, 30);

  // A second, unrelated CA does not vouch for this server.
  const std::string other = dir_ + "/other";
  ASSERT_TRUE(MakeDevCertificates(other, {}).ok());
  X509Ptr other_ca = ReadCert(other + "/ca.pem");
  ASSERT_NE(other_ca, nullptr);
  EXPECT_NE(Verify(server.get(), other_ca.get(), X509_PURPOSE_SSL_SERVER), X509_V_OK);
}

TEST_F(CertsTest, RejectsBadOptions) {
  CertOptions zero_days;
  zero_days.days = 0;
  EXPECT_EQ(MakeDevCertificates(dir_, zero_days).code(), StatusCode::kInvalidArgument);
  CertOptions injected;
  injected.extra_names = {"a.example,DNS:evil.example"};
  Status s = MakeDevCertificates(dir_, injected);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("evil.example"));
  EXPECT_FALSE(fs::exists(dir_));
}

TEST_F(CertsTest, CheckPemFilesNamesTheBadFile) {
  ASSERT_TRUE(MakeDevCertificates(dir_, {}).ok());
  EXPECT_TRUE(CheckPemFiles(dir_ + "/server.pem", dir_ + "/server.key", dir_ + "/ca.pem").ok());
  Status missing = CheckPemFiles(dir_ + "/nope.pem", dir_ + "/server.key", "");
  EXPECT_EQ(missing.code(), StatusCode::kNotFound);
  EXPECT_THAT(missing.message(), HasSubstr("nope.pem"));
  Status not_cert = CheckPemFiles(dir_ + "/server.key", dir_ + "/server.key", "");
  EXPECT_EQ(not_cert.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(not_cert.message(), HasSubstr("server.key"));
  Status mismatch = CheckPemFiles(dir_ + "/server.pem", dir_ + "/client.key", "");
  EXPECT_EQ(mismatch.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(mismatch.message(), HasSubstr("does not match"));
  Status bad_ca = CheckPemFiles(dir_ + "/server.pem", dir_ + "/server.key", dir_ + "/ca.key");
  EXPECT_EQ(bad_ca.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(bad_ca.message(), HasSubstr("ca.key"));
}

}  // namespace
}  // namespace hml::server

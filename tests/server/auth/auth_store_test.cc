// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The auth store on a real SQLite file: tokens have the documented form and are never written
// in plaintext (the bytes of auth.db and its WAL hold only their SHA-256), create / list /
// revoke of admin keys, enrollment secrets and devices, enrollment refusals that create nothing,
// Verify's one message per reason (never echoing the secret), and bad input.
#include "src/server/auth/auth_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "src/ota/crypto.h"
#include "tests/testing/auth_fixture.h"

namespace hml::server {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream out;
  out << in.rdbuf();
  return out.str();
}

class AuthStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Wall clock 2026-01-01T00:00:00Z; monotonic time from 0.
    clock_ = std::make_unique<ManualClock>(0, int64_t{1767225600} * 1000000);
    fixture_.Create("auth_store_test", *clock_);
  }
  void TearDown() override { fixture_.Remove(); }

  AuthStore& store() { return *fixture_.store; }

  std::unique_ptr<ManualClock> clock_;
  testing::AuthPrincipals fixture_;
};

TEST(ParseTokenTest, AcceptsTheDocumentedFormAndRefusesEverythingElse) {
  const std::string id = "0123456789abcdef";
  const std::string secret(64, 'e');
  const std::string token = "hmla_" + id + "_" + secret;  // the views point into it
  Result<ParsedToken> admin = ParseToken(token);
  ASSERT_TRUE(admin.ok()) << admin.status().ToString();
  EXPECT_EQ(admin->kind, CredentialKind::kAdminKey);
  EXPECT_EQ(admin->id, id);
  EXPECT_EQ(admin->secret, secret);
  EXPECT_EQ(ParseToken("hmle_" + id + "_" + secret)->kind, CredentialKind::kEnrollmentSecret);
  EXPECT_EQ(ParseToken("hmld_" + id + "_" + secret)->kind, CredentialKind::kDevice);
  for (const std::string& bad :
       {std::string(), std::string("hmla"), "hmlx_" + id + "_" + secret,
        "hmla-" + id + "_" + secret, "hmla_" + id + "-" + secret, "hmla_" + id + "_" + secret + "0",
        "hmla_" + id + "_" + secret.substr(1), "hmla_0123456789ABCDEF_" + secret,
        "hmla_" + id + "_" + std::string(63, 'e') + "g"}) {
    Result<ParsedToken> parsed = ParseToken(bad);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_EQ(parsed.status().code(), StatusCode::kUnauthenticated) << bad;
    EXPECT_THAT(parsed.status().message(), HasSubstr("malformed"));
    if (bad.size() > 20) {
      EXPECT_THAT(parsed.status().message(), Not(HasSubstr(bad)));
    }
  }
}

TEST_F(AuthStoreTest, IssuedTokensHaveTheDocumentedFormAndVerify) {
  for (const std::string* token : {&fixture_.admin_key, &fixture_.device_a}) {
    Result<ParsedToken> parsed = ParseToken(*token);
    ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  }
  EXPECT_TRUE(fixture_.admin_key.starts_with("hmla_" + fixture_.admin_id + "_"));
  EXPECT_TRUE(fixture_.device_a.starts_with("hmld_" + fixture_.device_a_id + "_"));
  EXPECT_TRUE(fixture_.enrollment_secret.starts_with("hmle_"));
  EXPECT_NE(fixture_.device_a_id, fixture_.device_b_id);

  Result<Principal> admin = store().Verify(fixture_.admin_key);
  ASSERT_TRUE(admin.ok()) << admin.status().ToString();
  EXPECT_TRUE(admin->is_admin());
  EXPECT_EQ(admin->id, fixture_.admin_id);
  Result<Principal> device = store().Verify(fixture_.device_a);
  ASSERT_TRUE(device.ok()) << device.status().ToString();
  EXPECT_FALSE(device->is_admin());
  EXPECT_EQ(device->id, fixture_.device_a_id);
}

TEST_F(AuthStoreTest, TokensAreNeverStoredInPlaintext) {
  // The store stays open, so the recent writes are still in auth.db-wal.
  const std::string db = ReadBytes(fixture_.dir + "/auth.db");
  const std::string wal = ReadBytes(fixture_.dir + "/auth.db-wal");
  ASSERT_FALSE(db.empty());
  ASSERT_FALSE(wal.empty()) << "expected the WAL to hold the recent writes";
  const std::string files = db + wal;
  for (const std::string* token : {&fixture_.admin_key, &fixture_.enrollment_secret,
                                   &fixture_.device_a, &fixture_.device_b, &fixture_.revoked}) {
    Result<ParsedToken> parsed = ParseToken(*token);
    ASSERT_TRUE(parsed.ok());
    const std::string secret_hex(parsed->secret);
    Result<std::string> secret_raw = ota::FromHex(secret_hex, "secret");
    ASSERT_TRUE(secret_raw.ok());
    EXPECT_EQ(files.find(secret_hex), std::string::npos) << "hex secret of " << parsed->id;
    EXPECT_EQ(files.find(*secret_raw), std::string::npos) << "raw secret of " << parsed->id;
    // What is stored instead: the hash of the token, next to its public id.
    EXPECT_NE(files.find(ota::Sha256(*token)), std::string::npos) << parsed->id;
    EXPECT_NE(files.find(std::string(parsed->id)), std::string::npos) << parsed->id;
  }
}

TEST_F(AuthStoreTest, TheFilesAreReadableByTheOwnerOnly) {
  for (const char* file : {"/auth.db", "/auth.db-wal"}) {
    const auto perms = std::filesystem::status(fixture_.dir + file).permissions();
    EXPECT_EQ(perms & std::filesystem::perms::all,
              std::filesystem::perms::owner_read | std::filesystem::perms::owner_write)
        << file;
  }
}

TEST_F(AuthStoreTest, ListAndRevokeCredentials) {
  clock_->Advance(int64_t{10} * 1000000000);
  Result<IssuedToken> second = store().CreateCredential(CredentialKind::kAdminKey, "ci");
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  Result<std::vector<CredentialInfo>> keys = store().ListCredentials(CredentialKind::kAdminKey);
  ASSERT_TRUE(keys.ok()) << keys.status().ToString();
  ASSERT_EQ(keys->size(), 2u);
  EXPECT_EQ((*keys)[0].id, fixture_.admin_id);
  EXPECT_EQ((*keys)[0].name, "ops");
  EXPECT_EQ((*keys)[0].created_unix, 1767225600);
  EXPECT_EQ((*keys)[1].name, "ci");
  EXPECT_EQ((*keys)[1].created_unix, 1767225610);
  EXPECT_FALSE((*keys)[0].revoked);

  clock_->Advance(int64_t{5} * 1000000000);
  ASSERT_TRUE(store().RevokeCredential(CredentialKind::kAdminKey, second->id).ok());
  clock_->Advance(int64_t{5} * 1000000000);
  // Idempotent: the first revocation time stays.
  ASSERT_TRUE(store().RevokeCredential(CredentialKind::kAdminKey, second->id).ok());
  keys = store().ListCredentials(CredentialKind::kAdminKey);
  ASSERT_TRUE(keys.ok());
  EXPECT_FALSE((*keys)[0].revoked);
  EXPECT_TRUE((*keys)[1].revoked);
  EXPECT_EQ((*keys)[1].revoked_unix, 1767225615);

  Result<Principal> revoked = store().Verify(second->token);
  ASSERT_FALSE(revoked.ok());
  EXPECT_EQ(revoked.status().code(), StatusCode::kUnauthenticated);
  EXPECT_THAT(revoked.status().message(), HasSubstr("revoked"));
  EXPECT_TRUE(store().Verify(fixture_.admin_key).ok());

  // Enrollment secrets are listed apart from admin keys.
  Result<std::vector<CredentialInfo>> secrets =
      store().ListCredentials(CredentialKind::kEnrollmentSecret);
  ASSERT_TRUE(secrets.ok());
  ASSERT_EQ(secrets->size(), 1u);
  EXPECT_EQ((*secrets)[0].name, "fleet");
}

TEST_F(AuthStoreTest, DevicesAreListedAndRevokedWithTheirEnrollment) {
  Result<std::vector<DeviceInfo>> devices = store().ListDevices();
  ASSERT_TRUE(devices.ok()) << devices.status().ToString();
  ASSERT_EQ(devices->size(), 3u);
  Result<DeviceInfo> a = store().GetDevice(fixture_.device_a_id);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->name, "a");
  EXPECT_EQ(a->platform, "test");
  EXPECT_EQ(a->enrollment_secret_id, ParseToken(fixture_.enrollment_secret)->id);
  EXPECT_FALSE(a->revoked);
  Result<DeviceInfo> c = store().GetDevice(fixture_.revoked_id);
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->revoked);

  ASSERT_TRUE(store().RevokeDevice(fixture_.device_a_id).ok());
  EXPECT_TRUE(store().GetDevice(fixture_.device_a_id)->revoked);
  EXPECT_FALSE(store().GetDevice(fixture_.device_b_id)->revoked);
  Result<Principal> verified = store().Verify(fixture_.device_a);
  ASSERT_FALSE(verified.ok());
  EXPECT_EQ(verified.status().code(), StatusCode::kUnauthenticated);
  EXPECT_THAT(verified.status().message(), HasSubstr("revoked"));
}

TEST_F(AuthStoreTest, RefusedEnrollmentCreatesNoDevice) {
  Result<ParsedToken> secret = ParseToken(fixture_.enrollment_secret);
  ASSERT_TRUE(secret.ok());
  const std::string wrong = "hmle_" + std::string(secret->id) + "_" + std::string(64, '0');
  Result<IssuedToken> revoked_secret =
      store().CreateCredential(CredentialKind::kEnrollmentSecret, "old");
  ASSERT_TRUE(revoked_secret.ok());
  ASSERT_TRUE(store().RevokeCredential(CredentialKind::kEnrollmentSecret, revoked_secret->id).ok());

  struct Case {
    std::string secret;
    std::string message;
  };
  for (const Case& c :
       {Case{wrong, "unknown or wrong enrollment secret"},
        Case{"hmle_ffffffffffffffff_" + std::string(64, '1'), "unknown or wrong"},
        Case{revoked_secret->token, "revoked"},
        Case{fixture_.admin_key, "not an enrollment secret"},
        Case{fixture_.device_a, "not an enrollment secret"}, Case{"", "malformed"}}) {
    Result<EnrolledDevice> enrolled = store().Enroll(c.secret, "intruder", "x");
    ASSERT_FALSE(enrolled.ok()) << c.message;
    EXPECT_EQ(enrolled.status().code(), StatusCode::kUnauthenticated) << c.message;
    EXPECT_THAT(enrolled.status().message(), HasSubstr(c.message));
    if (!c.secret.empty()) {
      EXPECT_THAT(enrolled.status().message(), Not(HasSubstr(c.secret.substr(22))));
    }
  }
  EXPECT_EQ(store().ListDevices()->size(), 3u);
}

TEST_F(AuthStoreTest, VerifyGivesOneMessagePerReasonWithoutTheSecret) {
  const std::string wrong_secret = fixture_.device_a.substr(0, 22) + std::string(64, '0');
  struct Case {
    std::string token;
    std::string message;
  };
  for (const Case& c : {Case{"nonsense", "malformed"},
                        Case{fixture_.enrollment_secret, "only DeviceEnrollment.Enroll"},
                        Case{fixture_.unknown, "unknown or wrong device credential"},
                        Case{wrong_secret, "unknown or wrong device credential"},
                        Case{fixture_.revoked, "is revoked"}}) {
    Result<Principal> verified = store().Verify(c.token);
    ASSERT_FALSE(verified.ok()) << c.message;
    EXPECT_EQ(verified.status().code(), StatusCode::kUnauthenticated) << c.message;
    EXPECT_THAT(verified.status().message(), HasSubstr(c.message));
    if (c.token.size() > 22) {
      EXPECT_THAT(verified.status().message(), Not(HasSubstr(c.token.substr(22)))) << c.message;
    }
  }
}

TEST_F(AuthStoreTest, BadInputIsRefusedByName) {
  const auto code = [](const Status& s) { return s.code(); };
  EXPECT_EQ(code(store().CreateCredential(CredentialKind::kAdminKey, "").status()),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(
      code(store().CreateCredential(CredentialKind::kAdminKey, std::string(129, 'n')).status()),
      StatusCode::kInvalidArgument);
  EXPECT_EQ(code(store().CreateCredential(CredentialKind::kAdminKey, "tab\there").status()),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(code(store().CreateCredential(CredentialKind::kDevice, "d").status()),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(code(store().Enroll(fixture_.enrollment_secret, "", "p").status()),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(code(store().Enroll(fixture_.enrollment_secret, "n", std::string(200, 'p')).status()),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(code(store().RevokeCredential(CredentialKind::kAdminKey, "0000000000000000")),
            StatusCode::kNotFound);
  // An enrollment secret's id is not an admin key's.
  EXPECT_EQ(code(store().RevokeCredential(CredentialKind::kAdminKey,
                                          std::string(ParseToken(fixture_.enrollment_secret)->id))),
            StatusCode::kNotFound);
  EXPECT_EQ(code(store().RevokeDevice("nope")), StatusCode::kNotFound);
  EXPECT_EQ(code(store().GetDevice("nope").status()), StatusCode::kNotFound);
  EXPECT_EQ(store().ListDevices()->size(), 3u);
  EXPECT_EQ(store().ListCredentials(CredentialKind::kAdminKey)->size(), 1u);
}

TEST_F(AuthStoreTest, OpenRefusesAMissingDirectoryAndAFileThatIsNotADatabase) {
  Result<std::unique_ptr<AuthStore>> missing =
      AuthStore::OpenInRegistry(fixture_.dir + "/no/such/dir", *RealClock());
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("no/such/dir"));

  const std::string garbage = fixture_.dir + "/garbage.db";
  std::ofstream(garbage) << std::string(4096, 'x');
  Result<std::unique_ptr<AuthStore>> opened = AuthStore::Open(garbage, *RealClock());
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), StatusCode::kDataLoss);
}

TEST_F(AuthStoreTest, ASecondHandleSeesTheSameCredentials) {
  Result<std::unique_ptr<AuthStore>> other = AuthStore::OpenInRegistry(fixture_.dir, *clock_);
  ASSERT_TRUE(other.ok()) << other.status().ToString();
  EXPECT_TRUE((*other)->Verify(fixture_.admin_key).ok());
  EXPECT_EQ((*other)->ListDevices()->size(), 3u);
}

}  // namespace
}  // namespace hml::server

// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The Authenticator: the `Bearer` header forms it accepts and refuses, revocation made through a
// second store handle (as the CLI does from another process) taking effect on the next check,
// the authorization rules, and the cost of one check (printed, not asserted: timings belong in
// benchmarks, but the number is what the design rests on).
#include "src/server/auth/authenticator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tests/testing/auth_fixture.h"

namespace hml::server {
namespace {

using ::testing::HasSubstr;

class AuthenticatorTest : public ::testing::Test {
 protected:
  void SetUp() override { fixture_.Create("authenticator_test"); }
  void TearDown() override { fixture_.Remove(); }

  Result<Principal> Check(std::optional<std::string_view> header) {
    return fixture_.authenticator->Authenticate(header);
  }

  testing::AuthPrincipals fixture_;
};

TEST_F(AuthenticatorTest, AcceptsBearerTokensCaseInsensitiveScheme) {
  for (const std::string& header :
       {"Bearer " + fixture_.admin_key, "bearer " + fixture_.admin_key,
        "BEARER  " + fixture_.admin_key + " ", "Bearer\t" + fixture_.admin_key}) {
    Result<Principal> principal = Check(header);
    ASSERT_TRUE(principal.ok()) << header << ": " << principal.status().ToString();
    EXPECT_TRUE(principal->is_admin());
  }
  Result<Principal> device = Check("Bearer " + fixture_.device_b);
  ASSERT_TRUE(device.ok());
  EXPECT_EQ(device->kind, Principal::Kind::kDevice);
  EXPECT_EQ(device->id, fixture_.device_b_id);
}

TEST_F(AuthenticatorTest, RefusesMissingMalformedUnknownAndRevokedWithOneMessageEach) {
  struct Case {
    std::optional<std::string> header;
    std::string message;
  };
  for (const Case& c : {Case{std::nullopt, "missing credential"}, Case{"", "missing credential"},
                        Case{"Basic dXNlcjpwYXNz", "malformed authorization"},
                        Case{"Bearer", "malformed authorization"},
                        Case{"Bearer" + fixture_.admin_key, "malformed authorization"},
                        Case{"Bearer not-a-token", "malformed credential"},
                        Case{"Bearer " + fixture_.unknown, "unknown or wrong"},
                        Case{"Bearer " + fixture_.revoked, "revoked"},
                        Case{"Bearer " + fixture_.enrollment_secret, "only DeviceEnrollment"}}) {
    Result<Principal> principal =
        c.header.has_value() ? Check(std::string_view(*c.header)) : Check(std::nullopt);
    ASSERT_FALSE(principal.ok()) << c.message;
    EXPECT_EQ(principal.status().code(), StatusCode::kUnauthenticated) << c.message;
    EXPECT_THAT(principal.status().message(), HasSubstr(c.message));
  }
}

TEST_F(AuthenticatorTest, RevocationThroughASecondHandleTakesEffectOnTheNextCheck) {
  ASSERT_TRUE(Check("Bearer " + fixture_.device_a).ok());
  ASSERT_TRUE(Check("Bearer " + fixture_.admin_key).ok());
  // A second connection to the same file, as `hybridml devices revoke` opens while serving.
  Result<std::unique_ptr<AuthStore>> cli = AuthStore::OpenInRegistry(fixture_.dir, *RealClock());
  ASSERT_TRUE(cli.ok()) << cli.status().ToString();
  ASSERT_TRUE((*cli)->RevokeDevice(fixture_.device_a_id).ok());
  Result<Principal> device = Check("Bearer " + fixture_.device_a);
  ASSERT_FALSE(device.ok());
  EXPECT_EQ(device.status().code(), StatusCode::kUnauthenticated);
  EXPECT_THAT(device.status().message(), HasSubstr("revoked"));
  EXPECT_TRUE(Check("Bearer " + fixture_.device_b).ok());

  ASSERT_TRUE((*cli)->RevokeCredential(CredentialKind::kAdminKey, fixture_.admin_id).ok());
  Result<Principal> admin = Check("Bearer " + fixture_.admin_key);
  ASSERT_FALSE(admin.ok());
  EXPECT_THAT(admin.status().message(), HasSubstr("revoked"));
  // And a credential created through the other handle works at once.
  Result<IssuedToken> fresh = (*cli)->CreateCredential(CredentialKind::kAdminKey, "new");
  ASSERT_TRUE(fresh.ok());
  EXPECT_TRUE(Check("Bearer " + fresh->token).ok());
}

TEST_F(AuthenticatorTest, AuthorizationRules) {
  Principal admin{Principal::Kind::kAdmin, fixture_.admin_id};
  Principal a{Principal::Kind::kDevice, fixture_.device_a_id};
  EXPECT_TRUE(Authenticator::RequireAdmin(admin, "list").ok());
  Status denied = Authenticator::RequireAdmin(a, "list devices");
  EXPECT_EQ(denied.code(), StatusCode::kPermissionDenied);
  EXPECT_THAT(denied.message(), HasSubstr("list devices"));
  EXPECT_THAT(denied.message(), HasSubstr(fixture_.device_a_id));
  EXPECT_TRUE(Authenticator::RequireAdminOrDevice(admin, fixture_.device_b_id, "get").ok());
  EXPECT_TRUE(Authenticator::RequireAdminOrDevice(a, fixture_.device_a_id, "get").ok());
  EXPECT_EQ(Authenticator::RequireAdminOrDevice(a, fixture_.device_b_id, "get").code(),
            StatusCode::kPermissionDenied);
  // An admin key whose id happens to equal a device id is still judged as an admin key.
  Principal device_named_like_admin{Principal::Kind::kDevice, fixture_.admin_id};
  EXPECT_EQ(Authenticator::RequireAdmin(device_named_like_admin, "x").code(),
            StatusCode::kPermissionDenied);
}

// What one check costs: a SHA-256 and one indexed SELECT in its own read transaction. Printed
// for the report; the assertion is only that every check gave the right answer, including from
// several threads at once.
TEST_F(AuthenticatorTest, CostOfOneCheck) {
  const std::string device = "Bearer " + fixture_.device_a;
  const std::string admin = "Bearer " + fixture_.admin_key;
  constexpr int kChecks = 20000;
  for (int i = 0; i < 200; ++i) ASSERT_TRUE(Check(device).ok());  // warm up
  auto start = std::chrono::steady_clock::now();
  int ok = 0;
  for (int i = 0; i < kChecks; ++i) ok += Check(i % 2 == 0 ? device : admin).ok() ? 1 : 0;
  const double single =
      std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count() /
      kChecks;
  EXPECT_EQ(ok, kChecks);

  constexpr int kThreads = 2;
  std::vector<int> oks(kThreads, 0);
  start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kChecks / kThreads; ++i) oks[t] += Check(device).ok() ? 1 : 0;
    });
  }
  for (std::thread& thread : threads) thread.join();
  const double threaded =
      std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count() /
      kChecks;
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(oks[t], kChecks / kThreads);

  // Refusals cost the same lookup (an unknown id finds no row).
  start = std::chrono::steady_clock::now();
  const std::string unknown = "Bearer " + fixture_.unknown;
  for (int i = 0; i < kChecks; ++i) ASSERT_FALSE(Check(unknown).ok());
  const double refused =
      std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count() /
      kChecks;
  std::printf(
      "[ cost ] one check: %.2f us (1 thread), %.2f us per check with %d threads, "
      "%.2f us for an unknown credential\n",
      single, threaded, kThreads, refused);
  RecordProperty("check_micros", std::to_string(single));
}

}  // namespace
}  // namespace hml::server

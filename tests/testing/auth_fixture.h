// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// A fresh directory with an auth.db holding the principals of the auth matrix tests: an admin
// key, an enrollment secret, devices A and B (active) and C (revoked), and a well-formed device
// credential that was never issued. For the store, gRPC and HTTP auth tests.
#ifndef HML_TESTS_TESTING_AUTH_FIXTURE_H_
#define HML_TESTS_TESTING_AUTH_FIXTURE_H_

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>
#include <tuple>

#include "hml/clock.h"
#include "src/server/auth/auth_store.h"
#include "src/server/auth/authenticator.h"

namespace hml::testing {

struct AuthPrincipals {
  std::string dir;  // holds auth.db
  std::unique_ptr<server::AuthStore> store;
  std::unique_ptr<server::Authenticator> authenticator;
  std::string admin_key;
  std::string admin_id;
  std::string enrollment_secret;
  std::string device_a, device_a_id;
  std::string device_b, device_b_id;
  std::string revoked, revoked_id;  // device C
  std::string unknown;              // "hmld_<16 hex>_<64 hex>" that no device has

  // Makes `<TempDir>/<name>_<pid>` afresh and fills it as described above. Check
  // HasFatalFailure() after calling.
  void Create(const std::string& name, Clock& clock = *RealClock()) {
    dir = ::testing::TempDir() + "/" + name + "_" + std::to_string(::getpid());
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    auto opened = server::AuthStore::OpenInRegistry(dir, clock);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    store = std::move(*opened);
    authenticator = std::make_unique<server::Authenticator>(store.get());
    auto admin = store->CreateCredential(server::CredentialKind::kAdminKey, "ops");
    ASSERT_TRUE(admin.ok()) << admin.status().ToString();
    admin_key = admin->token;
    admin_id = admin->id;
    auto secret = store->CreateCredential(server::CredentialKind::kEnrollmentSecret, "fleet");
    ASSERT_TRUE(secret.ok()) << secret.status().ToString();
    enrollment_secret = secret->token;
    for (auto [token, id, device_name] :
         {std::tuple{&device_a, &device_a_id, "a"}, std::tuple{&device_b, &device_b_id, "b"},
          std::tuple{&revoked, &revoked_id, "c"}}) {
      auto enrolled = store->Enroll(enrollment_secret, device_name, "test");
      ASSERT_TRUE(enrolled.ok()) << enrolled.status().ToString();
      *token = enrolled->credential;
      *id = enrolled->device.id;
    }
    ASSERT_TRUE(store->RevokeDevice(revoked_id).ok());
    unknown = "hmld_0123456789abcdef_" + std::string(64, 'a');
  }

  void Remove() {
    authenticator.reset();
    store.reset();
    if (!dir.empty()) std::filesystem::remove_all(dir);
  }

  static std::string Bearer(const std::string& token) { return "Bearer " + token; }
};

}  // namespace hml::testing

#endif  // HML_TESTS_TESTING_AUTH_FIXTURE_H_

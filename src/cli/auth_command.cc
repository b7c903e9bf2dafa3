// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The credential commands, over <registry dir>/auth.db (src/server/auth/auth_store.h):
//   hybridml auth admin-key create|revoke|list          --registry DIR [--name N] [ID]
//     (--name defaults to "unnamed"; revoke takes the id)
//   hybridml auth enrollment-secret create|revoke|list  --registry DIR [--name N] [ID]
//   hybridml devices list|revoke                        --registry DIR [ID]
// `create` prints the new token once, on its own line, and nothing else stores it. Each command
// opens the store, does one operation and prints what changed; a running `hybridml serve` sees
// a revocation on its next call (it reads the same file). Listings show ids, names and times,
// never secrets.
#include <cstdio>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "hml/clock.h"
#include "src/cli/commands.h"
#include "src/server/auth/auth_store.h"

namespace hml::cli {
namespace {

int Fail(const std::string& command, const Status& s) {
  std::fprintf(stderr, "hybridml %s: %s\n", command.c_str(), s.ToString().c_str());
  return 1;
}

struct AuthFlags {
  std::string registry_dir;
  std::string name = "unnamed";
  std::string id;
};

// "2026-11-26 12:00:00Z", or "-" for 0.
std::string TimeText(int64_t unix_seconds) {
  const std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%SZ", &tm);
  return buf;
}

std::string StateText(bool revoked, int64_t revoked_unix) {
  return revoked ? "revoked " + TimeText(revoked_unix) : std::string("active");
}

Result<std::unique_ptr<server::AuthStore>> OpenStore(const AuthFlags& f) {
  return server::AuthStore::OpenInRegistry(f.registry_dir, *RealClock());
}

int Create(const std::string& command, server::CredentialKind kind, const AuthFlags& f) {
  auto store = OpenStore(f);
  if (!store.ok()) return Fail(command, store.status());
  auto issued = (*store)->CreateCredential(kind, f.name);
  if (!issued.ok()) return Fail(command, issued.status());
  std::printf("created %s %s '%s'; the token is shown only now:\n%s\n",
              std::string(server::CredentialKindName(kind)).c_str(), issued->id.c_str(),
              f.name.c_str(), issued->token.c_str());
  return 0;
}

int Revoke(const std::string& command, server::CredentialKind kind, const AuthFlags& f) {
  auto store = OpenStore(f);
  if (!store.ok()) return Fail(command, store.status());
  const Status s = (*store)->RevokeCredential(kind, f.id);
  if (!s.ok()) return Fail(command, s);
  std::printf("revoked %s %s\n", std::string(server::CredentialKindName(kind)).c_str(),
              f.id.c_str());
  return 0;
}

int List(const std::string& command, server::CredentialKind kind, const AuthFlags& f) {
  auto store = OpenStore(f);
  if (!store.ok()) return Fail(command, store.status());
  auto list = (*store)->ListCredentials(kind);
  if (!list.ok()) return Fail(command, list.status());
  if (list->empty()) {
    std::printf("no %ss in %s\n", std::string(server::CredentialKindName(kind)).c_str(),
                f.registry_dir.c_str());
    return 0;
  }
  std::printf("%-16s %-24s %-21s %s\n", "id", "name", "created", "state");
  for (const server::CredentialInfo& c : *list) {
    std::printf("%-16s %-24s %-21s %s\n", c.id.c_str(), c.name.c_str(),
                TimeText(c.created_unix).c_str(), StateText(c.revoked, c.revoked_unix).c_str());
  }
  return 0;
}

int DevicesList(const AuthFlags& f) {
  auto store = OpenStore(f);
  if (!store.ok()) return Fail("devices list", store.status());
  auto devices = (*store)->ListDevices();
  if (!devices.ok()) return Fail("devices list", devices.status());
  if (devices->empty()) {
    std::printf("no devices in %s\n", f.registry_dir.c_str());
    return 0;
  }
  std::printf("%-16s %-24s %-20s %-16s %-21s %s\n", "id", "name", "platform", "enrolled with",
              "created", "state");
  for (const server::DeviceInfo& d : *devices) {
    std::printf("%-16s %-24s %-20s %-16s %-21s %s\n", d.id.c_str(), d.name.c_str(),
                d.platform.empty() ? "-" : d.platform.c_str(), d.enrollment_secret_id.c_str(),
                TimeText(d.created_unix).c_str(), StateText(d.revoked, d.revoked_unix).c_str());
  }
  return 0;
}

void AddRegistryOption(CLI::App* cmd, AuthFlags& f) {
  cmd->add_option("--registry", f.registry_dir, "Registry directory (auth.db lives in it)")
      ->required();
}

// create|revoke|list under `parent` for credentials of `kind`.
void AddCredentialCommands(CLI::App* parent, const std::string& label, server::CredentialKind kind,
                           std::shared_ptr<AuthFlags> f, int& exit_code) {
  const std::string prefix = "auth " + label;
  auto* create = parent->add_subcommand("create", "Create one; prints its token once");
  AddRegistryOption(create, *f);
  create->add_option("--name", f->name,
                     "A name for listings, e.g. who or what holds it (default: unnamed)");
  create->callback(
      [f, kind, prefix, &exit_code] { exit_code = Create(prefix + " create", kind, *f); });
  auto* revoke = parent->add_subcommand("revoke", "Revoke one by id (refused from the next call)");
  AddRegistryOption(revoke, *f);
  revoke->add_option("id", f->id, "The id (the 16 hex digits after the prefix)")->required();
  revoke->callback(
      [f, kind, prefix, &exit_code] { exit_code = Revoke(prefix + " revoke", kind, *f); });
  auto* list = parent->add_subcommand("list", "List ids, names, creation and revocation times");
  AddRegistryOption(list, *f);
  list->callback([f, kind, prefix, &exit_code] { exit_code = List(prefix + " list", kind, *f); });
}

}  // namespace

void AddAuthCommands(CLI::App& app, int& exit_code) {
  auto f = std::make_shared<AuthFlags>();

  auto* auth = app.add_subcommand(
      "auth", "Admin API keys and enrollment secrets of a registry's server (auth.db)");
  auth->require_subcommand(1);
  auto* admin = auth->add_subcommand(
      "admin-key", "Admin API keys: full access (CLI, publishing tools, fleet management)");
  admin->require_subcommand(1);
  AddCredentialCommands(admin, "admin-key", server::CredentialKind::kAdminKey, f, exit_code);
  auto* enrollment = auth->add_subcommand(
      "enrollment-secret", "Enrollment secrets: provisioned on devices, traded for a credential");
  enrollment->require_subcommand(1);
  AddCredentialCommands(enrollment, "enrollment-secret", server::CredentialKind::kEnrollmentSecret,
                        f, exit_code);

  auto* devices = app.add_subcommand("devices", "Enrolled devices of a registry's server");
  devices->require_subcommand(1);
  auto* list = devices->add_subcommand("list", "List devices and whether they are revoked");
  AddRegistryOption(list, *f);
  list->callback([f, &exit_code] { exit_code = DevicesList(*f); });
  auto* revoke = devices->add_subcommand("revoke", "Revoke a device's credential");
  AddRegistryOption(revoke, *f);
  revoke->add_option("id", f->id, "Device id")->required();
  revoke->callback([f, &exit_code] {
    exit_code = Revoke("devices revoke", server::CredentialKind::kDevice, *f);
  });
}

}  // namespace hml::cli

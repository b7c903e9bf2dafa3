// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The model registry commands: `hybridml keys init|rotate`, `publish`, `rollout`, `rollback`
// and `models`. Each opens the registry directory (src/server/registry/registry.h), does one
// operation and prints what changed; the registry guarantees that a failed operation changed
// nothing.
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "hml/clock.h"
#include "hml/env.h"
#include "src/cli/commands.h"
#include "src/server/registry/keys.h"
#include "src/server/registry/registry.h"

namespace hml::cli {
namespace {

int Fail(const std::string& command, const Status& s) {
  std::fprintf(stderr, "hybridml %s: %s\n", command.c_str(), s.ToString().c_str());
  return 1;
}

Result<ota::Role> ParseRole(const std::string& role) {
  for (ota::Role r :
       {ota::Role::kRoot, ota::Role::kTargets, ota::Role::kSnapshot, ota::Role::kTimestamp}) {
    if (ota::RoleName(r) == role) return r;
  }
  return InvalidArgumentError("--role '" + role +
                              "' is not one of root, targets, snapshot, timestamp");
}

// Opens the registry in `registry_dir` with the keys in `keys_dir`.
Result<std::unique_ptr<server::Registry>> OpenRegistry(const std::string& registry_dir,
                                                       const std::string& keys_dir, bool create) {
  HML_ASSIGN_OR_RETURN(server::RegistryKeys keys, server::LoadKeyDir(*DefaultEnv(), keys_dir));
  server::RegistryOptions options;
  options.create_if_missing = create;
  return server::Registry::Open(*DefaultEnv(), *RealClock(), registry_dir, std::move(keys),
                                options);
}

std::string HumanBytes(int64_t bytes) {
  char buf[32];
  if (bytes >= (int64_t{1} << 20)) {
    std::snprintf(buf, sizeof(buf), "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  } else if (bytes >= 1024) {
    std::snprintf(buf, sizeof(buf), "%.1f KiB", static_cast<double>(bytes) / 1024);
  } else {
    std::snprintf(buf, sizeof(buf), "%lld B", static_cast<long long>(bytes));
  }
  return buf;
}

// The channels that reach `version`: "stable 50% rolling out", "stable 100%", or
// "stable previous" for the version devices outside a rollout keep (and Rollback returns to).
std::string ChannelsText(int64_t version, const std::vector<server::ChannelState>& channels) {
  std::string out;
  for (const server::ChannelState& c : channels) {
    std::string item;
    if (c.version == version) {
      item = c.channel + " " + std::to_string(static_cast<int64_t>(c.percent)) + "%";
      if (c.percent < 100) item += " rolling out";
    } else if (c.previous_version == version) {
      item = c.channel + " previous";
    }
    if (!item.empty()) out += (out.empty() ? "" : ", ") + item;
  }
  return out.empty() ? "-" : out;
}

int Models(const std::string& registry_dir) {
  auto models = server::Registry::ListDir(*DefaultEnv(), registry_dir);
  if (!models.ok()) return Fail("models", models.status());
  if (models->empty()) {
    std::printf("no models in %s\n", registry_dir.c_str());
    return 0;
  }
  std::printf("%-24s %7s %-14s %10s %-12s %s\n", "model", "version", "semver", "size", "sha256",
              "channels");
  for (const server::ModelSummary& m : *models) {
    for (const server::ModelVersion& v : m.versions) {
      std::printf("%-24s %7lld %-14s %10s %-12s %s\n", m.name.c_str(),
                  static_cast<long long>(v.version), v.semver.c_str(), HumanBytes(v.length).c_str(),
                  v.sha256.substr(0, 12).c_str(), ChannelsText(v.version, m.channels).c_str());
    }
  }
  return 0;
}

struct RegistryFlags {
  std::string registry_dir;
  std::string keys_dir;
  std::string model_path;
  std::string name;
  std::string semver;
  std::string metadata;
  std::string channel;
  std::string role;
  int64_t version = 0;
  double percent = 0;
};

int KeysInit(const RegistryFlags& f) {
  const Status s = server::InitKeyDir(f.keys_dir);
  if (!s.ok()) return Fail("keys init", s);
  std::printf("created keys for root, targets, snapshot and timestamp in %s (mode 0600)\n",
              f.keys_dir.c_str());
  return 0;
}

int KeysRotate(const RegistryFlags& f) {
  auto role = ParseRole(f.role);
  if (!role.ok()) return Fail("keys rotate", role.status());
  auto registry = OpenRegistry(f.registry_dir, f.keys_dir, /*create=*/false);
  if (!registry.ok()) return Fail("keys rotate", registry.status());
  const Status s = server::RotateRoleKey(**registry, f.keys_dir, *role);
  if (!s.ok()) return Fail("keys rotate", s);
  std::printf("rotated the %s key; root is now version %lld\n", f.role.c_str(),
              static_cast<long long>((*registry)->repository().root().version));
  return 0;
}

int Publish(const RegistryFlags& f) {
  auto registry = OpenRegistry(f.registry_dir, f.keys_dir, /*create=*/true);
  if (!registry.ok()) return Fail("publish", registry.status());
  auto v = (*registry)->Publish(f.model_path, f.name, f.semver, f.metadata);
  if (!v.ok()) return Fail("publish", v.status());
  std::printf("published %s version %lld (%s), %s, sha256 %s\n", v->name.c_str(),
              static_cast<long long>(v->version), v->semver.c_str(), HumanBytes(v->length).c_str(),
              v->sha256.c_str());
  if (v->version > 1) {
    std::printf("delta target %s/%lld.from-%lld.delta\n", v->name.c_str(),
                static_cast<long long>(v->version), static_cast<long long>(v->version - 1));
  }
  return 0;
}

int Rollout(const RegistryFlags& f) {
  if (!(f.percent >= 1 && f.percent <= 100) || std::floor(f.percent) != f.percent) {
    char text[32];
    std::snprintf(text, sizeof(text), "%g", f.percent);
    return Fail("rollout", InvalidArgumentError(std::string("--percent ") + text +
                                                " must be an integer from 1 to 100"));
  }
  auto registry = OpenRegistry(f.registry_dir, f.keys_dir, /*create=*/false);
  if (!registry.ok()) return Fail("rollout", registry.status());
  const Status s =
      (*registry)->Rollout(f.name, f.version, f.channel, static_cast<int64_t>(f.percent));
  if (!s.ok()) return Fail("rollout", s);
  std::printf("%s version %lld on channel %s at %g%%\n", f.name.c_str(),
              static_cast<long long>(f.version), f.channel.c_str(), f.percent);
  return 0;
}

int Rollback(const RegistryFlags& f) {
  auto registry = OpenRegistry(f.registry_dir, f.keys_dir, /*create=*/false);
  if (!registry.ok()) return Fail("rollback", registry.status());
  const Status s = (*registry)->Rollback(f.name, f.channel);
  if (!s.ok()) return Fail("rollback", s);
  auto channel = (*registry)->store().GetChannel(f.name, f.channel);
  if (!channel.ok()) return Fail("rollback", channel.status());
  std::printf("%s channel %s rolled back to version %lld for 100%%\n", f.name.c_str(),
              f.channel.c_str(), static_cast<long long>(channel->version));
  return 0;
}

void AddRegistryOption(CLI::App* cmd, RegistryFlags& f) {
  cmd->add_option("--registry", f.registry_dir, "Registry directory (registry.db, blobs/, repo/)")
      ->required();
}
void AddKeysOption(CLI::App* cmd, RegistryFlags& f) {
  cmd->add_option("--keys", f.keys_dir, "Key directory made by `hybridml keys init`")->required();
}

}  // namespace

void AddRegistryCommands(CLI::App& app, int& exit_code) {
  auto f = std::make_shared<RegistryFlags>();

  auto* keys = app.add_subcommand("keys", "Create or rotate the registry's signing keys");
  keys->require_subcommand(1);
  auto* init = keys->add_subcommand("init", "Create a key directory with one key per role");
  init->add_option("--dir", f->keys_dir, "Key directory (created; existing keys are refused)")
      ->required();
  init->callback([f, &exit_code] { exit_code = KeysInit(*f); });
  auto* rotate = keys->add_subcommand(
      "rotate", "Replace a role's key; the new root is signed by the old and new root keys");
  rotate->add_option("--dir", f->keys_dir, "Key directory")->required();
  rotate->add_option("--role", f->role, "root, targets, snapshot or timestamp")->required();
  AddRegistryOption(rotate, *f);
  rotate->callback([f, &exit_code] { exit_code = KeysRotate(*f); });

  auto* publish = app.add_subcommand(
      "publish", "Publish an ONNX model as the next version (signed target, delta from the last)");
  publish->add_option("model", f->model_path, "ONNX model file")->required();
  publish->add_option("--name", f->name, "Model name")->required();
  publish->add_option("--semver", f->semver, "Version label, MAJOR.MINOR.PATCH[-pre]")->required();
  publish->add_option("--metadata", f->metadata,
                      "JSON object: input/output specs, accuracy, platforms, minimum SDK");
  AddRegistryOption(publish, *f);
  AddKeysOption(publish, *f);
  publish->callback([f, &exit_code] { exit_code = Publish(*f); });

  auto* rollout = app.add_subcommand("rollout", "Release a version on a channel to P % of devices");
  rollout->add_option("--name", f->name, "Model name")->required();
  rollout->add_option("--version", f->version, "Model version (the registry's integer)")
      ->required();
  rollout->add_option("--channel", f->channel, "Channel, e.g. stable or beta")->required();
  rollout->add_option("--percent", f->percent, "Share of devices, an integer from 1 to 100")
      ->required();
  AddRegistryOption(rollout, *f);
  AddKeysOption(rollout, *f);
  rollout->callback([f, &exit_code] { exit_code = Rollout(*f); });

  auto* rollback =
      app.add_subcommand("rollback", "Return a channel to its previous version for every device");
  rollback->add_option("--name", f->name, "Model name")->required();
  rollback->add_option("--channel", f->channel, "Channel")->required();
  AddRegistryOption(rollback, *f);
  AddKeysOption(rollback, *f);
  rollback->callback([f, &exit_code] { exit_code = Rollback(*f); });

  auto* models = app.add_subcommand("models", "List models, versions, channels and rollouts");
  AddRegistryOption(models, *f);
  models->callback([f, &exit_code] { exit_code = Models(f->registry_dir); });
}

}  // namespace hml::cli

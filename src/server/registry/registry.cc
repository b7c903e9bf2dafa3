// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/server/registry/registry.h"

#include <algorithm>
#include <string>
#include <string_view>
#include <utility>

#include "hml/runtime/model.h"
#include "src/ota/crypto.h"
#include "src/ota/json.h"
#include "src/server/registry/sqlite_store.h"

namespace hml::server {
namespace {

std::string OnnxTarget(const std::string& name, int64_t version) {
  return name + "/" + std::to_string(version) + ".onnx";
}

std::string DeltaTarget(const std::string& name, int64_t version, int64_t from) {
  return name + "/" + std::to_string(version) + ".from-" + std::to_string(from) + ".delta";
}

// Model and channel names as the Store accepts them ([A-Za-z0-9._-], 1 to 128 characters, not
// "." or ".."), checked before anything is written so that a bad name never causes a
// repository change that must be undone.
Status ValidateName(std::string_view kind, const std::string& name) {
  bool ok = !name.empty() && name.size() <= 128 && name != "." && name != "..";
  for (char c : name) {
    ok = ok && ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                c == '.' || c == '_' || c == '-');
  }
  if (!ok) {
    return InvalidArgumentError(std::string(kind) + " name '" + name +
                                "' must be 1 to 128 characters of [A-Za-z0-9._-], not '.' or '..'");
  }
  return Status::Ok();
}

// The "channels" custom field of version `version`: each channel pointing at it with its
// percent, and each channel whose previous version it is at 100 (the devices outside the
// rollout stay there; Rollback returns everyone there).
ota::Json ChannelsOf(int64_t version, const std::vector<ChannelState>& channels) {
  ota::Json out = ota::Json::Object{};
  for (const ChannelState& c : channels) {
    if (c.version == version) {
      out[c.channel] = static_cast<int64_t>(c.percent);
    } else if (c.previous_version == version) {
      out[c.channel] = int64_t{100};
    }
  }
  return out;
}

// The model's versions; empty (not an error) when the model does not exist yet.
Result<std::vector<ModelVersion>> VersionsOrEmpty(Store& store, const std::string& name) {
  Result<std::vector<ModelVersion>> versions = store.ListVersions(name);
  if (versions.status().code() == StatusCode::kNotFound) return std::vector<ModelVersion>();
  return versions;
}

Result<std::vector<ModelSummary>> Summarize(Store& store) {
  HML_ASSIGN_OR_RETURN(const std::vector<std::string> names, store.ListModels());
  std::vector<ModelSummary> out;
  for (const std::string& name : names) {
    ModelSummary m;
    m.name = name;
    HML_ASSIGN_OR_RETURN(m.versions, store.ListVersions(name));
    HML_ASSIGN_OR_RETURN(m.channels, store.ListChannels(name));
    out.push_back(std::move(m));
  }
  return out;
}

// What a path held before an operation wrote it: its bytes, or nothing when it did not exist.
struct Backup {
  std::string path;
  std::optional<std::string> bytes;
};

}  // namespace

Status RegistryOptions::Validate() const {
  if (max_model_bytes <= 0) {
    return InvalidArgumentError("registry options: max_model_bytes " +
                                std::to_string(max_model_bytes) + " must be positive");
  }
  return delta.Validate();
}

Result<std::unique_ptr<Registry>> Registry::Open(Env& env, Clock& clock, const std::string& dir,
                                                 RegistryKeys keys,
                                                 const RegistryOptions& options) {
  HML_RETURN_IF_ERROR(options.Validate());
  const std::string db_path = dir + "/registry.db";
  if (!options.create_if_missing) {
    if (!DirExists(dir)) {
      return NotFoundError("registry directory '" + dir + "' does not exist");
    }
    if (!env.FileExists(db_path)) {
      return NotFoundError("'" + dir + "' holds no registry (no registry.db); " +
                           "`hybridml publish` creates one");
    }
  }
  HML_RETURN_IF_ERROR(MakeDirs(dir));
  HML_ASSIGN_OR_RETURN(FileLock lock, FileLock::Acquire(dir + "/registry.lock"));
  HML_RETURN_IF_ERROR(MakeDirs(dir + "/blobs"));
  HML_RETURN_IF_ERROR(MakeDirs(dir + "/repo/targets"));
  HML_ASSIGN_OR_RETURN(std::unique_ptr<Store> store, OpenSqliteStore(db_path));

  const std::string repo_dir = dir + "/repo";
  if (env.FileExists(repo_dir + "/root.json")) {
    Result<ota::Repository> repo = ota::Repository::Load(
        env, repo_dir, std::move(keys.root), std::move(keys.targets), std::move(keys.snapshot),
        std::move(keys.timestamp), options.repository);
    if (!repo.ok()) return repo.status().WithContext("registry '" + dir + "'");
    return std::unique_ptr<Registry>(new Registry(env, clock, dir, options, std::move(lock),
                                                  std::move(store), std::move(*repo)));
  }
  // A new repository. The store opened (and perhaps created) above must be empty: its versions
  // would otherwise be missing from what devices see.
  HML_ASSIGN_OR_RETURN(const std::vector<std::string> models, store->ListModels());
  if (!models.empty()) {
    return FailedPreconditionError("registry '" + dir + "': registry.db holds " +
                                   std::to_string(models.size()) + " model(s) (first '" +
                                   models[0] + "') but '" + repo_dir +
                                   "/root.json' is missing; restore repo/ from a backup");
  }
  const int64_t now = clock.WallMicros() / 1000000;
  HML_ASSIGN_OR_RETURN(ota::Repository repo,
                       ota::Repository::Create(std::move(keys.root), std::move(keys.targets),
                                               std::move(keys.snapshot), std::move(keys.timestamp),
                                               now, options.repository));
  // root.json is written last by Save, so a failure part way leaves no root.json and the next
  // Open starts over.
  HML_RETURN_IF_ERROR(repo.Save(env, repo_dir));
  return std::unique_ptr<Registry>(
      new Registry(env, clock, dir, options, std::move(lock), std::move(store), std::move(repo)));
}

Status Registry::Apply(ota::Repository staged,
                       const std::vector<std::pair<std::string, std::string>>& new_files,
                       const std::vector<std::string>& new_dirs,
                       const std::function<Status()>& commit) {
  // Remember what every path we are about to write holds now.
  std::vector<Backup> backups;
  const auto remember = [&](const std::string& path) -> Status {
    Backup b{path, std::nullopt};
    if (env_.FileExists(path)) {
      HML_ASSIGN_OR_RETURN(b.bytes, env_.ReadFile(path));
    }
    backups.push_back(std::move(b));
    return Status::Ok();
  };
  for (const auto& [path, bytes] : new_files) HML_RETURN_IF_ERROR(remember(path));
  for (const auto& [name, bytes] : staged.files()) {
    HML_RETURN_IF_ERROR(remember(repo_dir() + "/" + name));
  }
  std::vector<std::string> created_dirs;
  // Puts every remembered path back: old bytes first, in the order they were written (so
  // timestamp.json again comes last among the metadata), then removes the files that are new,
  // which the restored metadata no longer refers to.
  const auto restore = [&](const Status& cause) -> Status {
    std::string failures;
    for (const Backup& b : backups) {
      if (!b.bytes) continue;
      const Status s = env_.WriteFileAtomic(b.path, *b.bytes);
      if (!s.ok()) failures += "; " + s.ToString();
    }
    for (const Backup& b : backups) {
      if (b.bytes) continue;
      const Status s = RemoveFile(b.path);
      if (!s.ok()) failures += "; " + s.ToString();
    }
    for (auto it = created_dirs.rbegin(); it != created_dirs.rend(); ++it) {
      (void)RemoveEmptyDir(*it);
    }
    if (failures.empty()) return cause;
    return DataLossError(cause.ToString() +
                         "; restoring the registry's files failed as well, so repo/ may not "
                         "match registry.db" +
                         failures);
  };

  for (const std::string& d : new_dirs) {
    bool created = false;
    const Status s = MakeDirs(d, 0755, &created);
    if (created) created_dirs.push_back(d);
    if (!s.ok()) return restore(s);
  }
  for (const auto& [path, bytes] : new_files) {
    const Status s = env_.WriteFileAtomic(path, bytes);
    if (!s.ok()) return restore(s);
  }
  Status s = staged.Save(env_, repo_dir());
  if (!s.ok()) return restore(s);
  s = commit();
  if (!s.ok()) return restore(s);
  repo_ = std::move(staged);
  return Status::Ok();
}

std::map<std::string, ota::TargetFile> Registry::TargetsWithChannels(
    const std::string& name, const std::vector<ChannelState>& channels) const {
  std::map<std::string, ota::TargetFile> targets = repo_.targets().targets;
  for (auto& [target, file] : targets) {
    if (!target.starts_with(name + "/") || !target.ends_with(".onnx") || !file.custom.is_object()) {
      continue;
    }
    const ota::Json* version = file.custom.Find("version");
    if (version == nullptr || !version->is_int()) continue;
    file.custom["channels"] = ChannelsOf(version->as_int(), channels);
  }
  return targets;
}

Result<ModelVersion> Registry::Publish(const std::string& model_path, const std::string& name,
                                       const std::string& semver,
                                       const std::string& metadata_json) {
  const std::string what = "publish '" + model_path + "' as model '" + name + "' " + semver;
  HML_RETURN_IF_ERROR(ValidateName("model", name).WithContext(what));
  ota::Json metadata = ota::Json::Object{};
  if (!metadata_json.empty()) {
    Result<ota::Json> parsed = ota::ParseJson(metadata_json);
    if (!parsed.ok()) return parsed.status().WithContext(what + ": metadata");
    if (!parsed->is_object()) {
      return InvalidArgumentError(what + ": metadata must be a JSON object, not " +
                                  std::string(ota::JsonTypeName(parsed->type())));
    }
    metadata = std::move(*parsed);
  }
  Result<std::string> bytes = env_.ReadFile(model_path, options_.max_model_bytes);
  if (!bytes.ok()) return bytes.status().WithContext(what);
  // The bytes just read are the ones validated and published (Model::FromOnnx is what
  // Model::Load runs after reading), so the file cannot change between check and use.
  Result<Model> model = Model::FromOnnx(*bytes);
  if (!model.ok()) {
    return model.status().WithContext(what + ": the runtime cannot load the model");
  }

  HML_ASSIGN_OR_RETURN(const std::vector<ModelVersion> versions, VersionsOrEmpty(*store_, name));
  for (const ModelVersion& v : versions) {
    if (v.semver == semver) {
      return AlreadyExistsError(what + ": model '" + name + "' has semver " + semver +
                                " already (version " + std::to_string(v.version) + ")");
    }
  }
  // The number the Store will assign: one more than the last (versions are never removed, and
  // the lock file keeps other writers out). Checked again after AddVersion.
  const int64_t version = versions.empty() ? 1 : versions.back().version + 1;
  const int64_t previous = versions.empty() ? 0 : versions.back().version;
  const int64_t now = NowUnix();

  ModelVersion v;
  v.name = name;
  v.semver = semver;
  v.sha256 = ota::Sha256Hex(*bytes);
  v.length = static_cast<int64_t>(bytes->size());
  v.blob = v.sha256;
  v.metadata_json = metadata_json.empty() ? "{}" : metadata_json;
  v.created_unix = now;

  std::map<std::string, ota::TargetFile> targets = repo_.targets().targets;
  ota::Json custom = ota::Json::Object{};
  custom["model"] = name;
  custom["version"] = version;
  custom["semver"] = semver;
  custom["parent"] = previous;
  custom["channels"] = ota::Json::Object{};
  if (previous != 0) custom["delta_from"] = previous;
  custom["metadata"] = std::move(metadata);
  const std::string onnx_target = OnnxTarget(name, version);
  targets[onnx_target] = {v.length, v.sha256, std::move(custom)};

  const std::string model_dir = repo_dir() + "/targets/" + name;
  std::vector<std::pair<std::string, std::string>> files;
  files.emplace_back(blob_dir() + "/" + v.blob, *bytes);
  if (previous != 0) {
    const ModelVersion& prev = versions.back();
    Result<std::string> old_bytes =
        env_.ReadFile(blob_dir() + "/" + prev.blob, options_.max_model_bytes);
    if (!old_bytes.ok()) {
      return old_bytes.status().WithContext(what + ": blob of version " + std::to_string(previous));
    }
    Result<std::string> delta = ota::MakeDelta(*old_bytes, *bytes, options_.delta);
    if (!delta.ok()) {
      return delta.status().WithContext(what + ": delta from version " + std::to_string(previous));
    }
    ota::Json delta_custom = ota::Json::Object{};
    delta_custom["model"] = name;
    delta_custom["version"] = version;
    delta_custom["from"] = previous;
    const std::string delta_target = DeltaTarget(name, version, previous);
    targets[delta_target] = {static_cast<int64_t>(delta->size()), ota::Sha256Hex(*delta),
                             std::move(delta_custom)};
    files.emplace_back(repo_dir() + "/targets/" + delta_target, std::move(*delta));
  }
  files.emplace_back(repo_dir() + "/targets/" + onnx_target, std::move(*bytes));

  ota::Repository staged = repo_;
  HML_RETURN_IF_ERROR(staged.SetTargets(std::move(targets), now).WithContext(what));
  HML_RETURN_IF_ERROR(Apply(std::move(staged), files, {model_dir}, [&]() -> Status {
                        HML_ASSIGN_OR_RETURN(const int64_t assigned, store_->AddVersion(v));
                        if (assigned != version) {
                          // Committed already: only another writer bypassing the lock can
                          // cause this; the files are restored, the store keeps the version.
                          return InternalError("the store assigned version " +
                                               std::to_string(assigned) + ", expected " +
                                               std::to_string(version));
                        }
                        return Status::Ok();
                      }).WithContext(what));
  v.version = version;
  return v;
}

Status Registry::Rollout(const std::string& name, int64_t version, const std::string& channel,
                         int64_t percent) {
  const std::string what = "roll out model '" + name + "' version " + std::to_string(version) +
                           " on channel '" + channel + "' to " + std::to_string(percent) + " %";
  if (percent < 1 || percent > 100) {
    return InvalidArgumentError(what + ": the percent must be an integer in [1, 100]");
  }
  HML_RETURN_IF_ERROR(ValidateName("channel", channel).WithContext(what));
  Result<std::vector<ModelVersion>> listed = store_->ListVersions(name);
  if (!listed.ok()) return listed.status().WithContext(what);
  const std::vector<ModelVersion>& versions = *listed;
  const bool known = std::any_of(versions.begin(), versions.end(),
                                 [&](const ModelVersion& v) { return v.version == version; });
  if (!known) {
    return NotFoundError(what + ": model '" + name + "' has no version " + std::to_string(version) +
                         " (its versions are 1 to " + std::to_string(versions.back().version) +
                         ")");
  }
  HML_ASSIGN_OR_RETURN(std::vector<ChannelState> channels, store_->ListChannels(name));
  // The channel as Store::SetRollout will leave it (store.h): a new version pushes the old one
  // into previous_version; the same version only changes the percent.
  auto it = std::find_if(channels.begin(), channels.end(),
                         [&](const ChannelState& c) { return c.channel == channel; });
  ChannelState next;
  next.name = name;
  next.channel = channel;
  next.version = version;
  next.percent = static_cast<double>(percent);
  if (it != channels.end()) {
    if (version < it->version) {
      return FailedPreconditionError(
          what + ": the channel points at version " + std::to_string(it->version) +
          "; devices do not move to a lower version while theirs is listed (use rollback)");
    }
    next.previous_version = it->version != version ? it->version : it->previous_version;
    *it = next;
  } else {
    channels.push_back(next);
  }
  const int64_t now = NowUnix();
  ota::Repository staged = repo_;
  HML_RETURN_IF_ERROR(staged.SetTargets(TargetsWithChannels(name, channels), now));
  return Apply(std::move(staged), {}, {},
               [&]() { return store_->SetRollout(name, channel, version, next.percent, now); })
      .WithContext(what);
}

Status Registry::Rollback(const std::string& name, const std::string& channel) {
  const std::string what = "roll back channel '" + channel + "' of model '" + name + "'";
  Result<std::vector<ChannelState>> listed = store_->ListChannels(name);
  if (!listed.ok()) return listed.status().WithContext(what);
  std::vector<ChannelState> channels = std::move(*listed);
  auto it = std::find_if(channels.begin(), channels.end(),
                         [&](const ChannelState& c) { return c.channel == channel; });
  if (it == channels.end()) {
    return NotFoundError(what + ": the model has no channel '" + channel + "'");
  }
  if (it->previous_version == 0) {
    return FailedPreconditionError(what + ": the channel points at version " +
                                   std::to_string(it->version) +
                                   " and has no previous version to return to");
  }
  // As Store::Rollback will leave it: the previous version for everyone, no history left.
  it->version = it->previous_version;
  it->percent = 100;
  it->previous_version = 0;
  const int64_t now = NowUnix();
  ota::Repository staged = repo_;
  HML_RETURN_IF_ERROR(staged.SetTargets(TargetsWithChannels(name, channels), now));
  return Apply(std::move(staged), {}, {}, [&]() { return store_->Rollback(name, channel, now); })
      .WithContext(what);
}

Status Registry::RotateKeys(ota::Role role, ota::RoleSigners signers) {
  ota::Repository staged = repo_;
  const std::string what = "rotate the " + std::string(ota::RoleName(role)) + " keys";
  HML_RETURN_IF_ERROR(staged.RotateKeys(role, std::move(signers), NowUnix()).WithContext(what));
  return Apply(std::move(staged), {}, {}, [] { return Status::Ok(); }).WithContext(what);
}

Result<std::vector<ModelSummary>> Registry::List() { return Summarize(*store_); }

Result<std::vector<ModelSummary>> Registry::ListDir(Env& env, const std::string& dir) {
  if (!DirExists(dir)) return NotFoundError("registry directory '" + dir + "' does not exist");
  const std::string db_path = dir + "/registry.db";
  // Checked first because OpenSqliteStore would create an empty database.
  if (!env.FileExists(db_path)) {
    return NotFoundError("'" + dir + "' holds no registry (no registry.db)");
  }
  HML_ASSIGN_OR_RETURN(std::unique_ptr<Store> store, OpenSqliteStore(db_path));
  return Summarize(*store);
}

}  // namespace hml::server

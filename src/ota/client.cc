// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/ota/client.h"

namespace hml::ota {
namespace {

constexpr int64_t kMaxStateBytes = int64_t{64} << 20;

int64_t WallSeconds(const Clock& clock) { return clock.WallMicros() / 1000000; }

}  // namespace

Result<std::unique_ptr<Client>> Client::Open(Env& env, std::string dir,
                                             std::string_view shipped_root, Fetcher& fetcher,
                                             Clock& clock, const ClientOptions& options) {
  std::unique_ptr<Client> c(new Client(env, std::move(dir), fetcher, clock, options));
  int64_t trusted_time = 0;
  if (env.FileExists(c->time_path())) {
    HML_ASSIGN_OR_RETURN(std::string text, env.ReadFile(c->time_path(), 64));
    Result<Json> t = ParseJson(text);
    if (!t.ok() || !t->is_int()) {
      return DataLossError("'" + c->time_path() + "' does not hold a time");
    }
    trusted_time = t->as_int();
  }
  const std::string path = c->state_path();
  if (!env.FileExists(path)) {
    HML_ASSIGN_OR_RETURN(TrustedSet set,
                         TrustedSet::Create(shipped_root, trusted_time, options.limits));
    c->trusted_ = std::make_unique<TrustedSet>(std::move(set));
    return c;
  }
  HML_ASSIGN_OR_RETURN(std::string bytes, env.ReadFile(path, kMaxStateBytes));
  Result<Json> state = ParseJson(bytes, {kMaxStateBytes, 8});
  if (!state.ok()) return DataLossError("'" + path + "': " + std::string(state.status().message()));
  auto field = [&](const char* key) -> Result<std::string> {
    Result<std::string> v = state->GetString(key);
    if (!v.ok()) return DataLossError("'" + path + "': " + std::string(v.status().message()));
    return v;
  };
  HML_ASSIGN_OR_RETURN(std::string root, field("root"));
  HML_ASSIGN_OR_RETURN(std::string timestamp, field("timestamp"));
  HML_ASSIGN_OR_RETURN(std::string snapshot, field("snapshot"));
  HML_ASSIGN_OR_RETURN(std::string targets, field("targets"));
  HML_ASSIGN_OR_RETURN(TrustedSet set, TrustedSet::Create(root, trusted_time, options.limits));
  HML_RETURN_IF_ERROR(set.LoadPersisted(timestamp, snapshot, targets).WithContext("'" + path + "'"));
  c->trusted_ = std::make_unique<TrustedSet>(std::move(set));
  return c;
}

Status Client::Persist(const TrustedSet& set) {
  Json state = Json::Object{};
  state["root"] = set.root_bytes();
  state["timestamp"] = set.timestamp_bytes();
  state["snapshot"] = set.snapshot_bytes();
  state["targets"] = set.targets_bytes();
  return env_.WriteFileAtomic(state_path(), PrettyJson(state));
}

Status Client::Refresh() {
  // Every step works on a copy; the trusted set and the state file change only at the end.
  TrustedSet next = *trusted_;
  const int64_t before = next.time();
  next.SetTime(WallSeconds(clock_));
  if (next.time() > before) {
    // Recorded even if this refresh fails: the clock reading is not metadata.
    HML_RETURN_IF_ERROR(env_.WriteFileAtomic(time_path(), std::to_string(next.time())));
    trusted_->SetTime(next.time());
  }
  const TrustedSetOptions& limits = options_.limits;
  for (int i = 0; i < options_.max_root_rotations; ++i) {
    const std::string name = std::to_string(next.root().version + 1) + ".root.json";
    Result<std::string> bytes = fetcher_.Fetch(name, limits.max_root_bytes);
    if (bytes.status().code() == StatusCode::kNotFound) break;
    if (!bytes.ok()) return bytes.status().WithContext("fetching " + name);
    HML_RETURN_IF_ERROR(next.UpdateRoot(*bytes).WithContext(name));
  }
  HML_RETURN_IF_ERROR(next.CheckRootFresh());
  HML_ASSIGN_OR_RETURN(std::string ts, fetcher_.Fetch("timestamp.json", limits.max_timestamp_bytes));
  bool unchanged = false;
  HML_RETURN_IF_ERROR(next.UpdateTimestamp(ts, &unchanged).WithContext("timestamp.json"));
  if (!unchanged || !next.snapshot() || !next.targets()) {
    const MetaFile& s = next.timestamp()->snapshot;
    const int64_t snapshot_limit = s.length >= 0 ? s.length : limits.max_snapshot_bytes;
    HML_ASSIGN_OR_RETURN(std::string snap, fetcher_.Fetch("snapshot.json", snapshot_limit));
    HML_RETURN_IF_ERROR(next.UpdateSnapshot(snap).WithContext("snapshot.json"));
    const MetaFile& t = next.snapshot()->meta.at("targets.json");
    const bool have = next.targets() && next.targets()->version == t.version;
    if (!have) {
      const int64_t targets_limit = t.length >= 0 ? t.length : limits.max_targets_bytes;
      HML_ASSIGN_OR_RETURN(std::string targets, fetcher_.Fetch("targets.json", targets_limit));
      HML_RETURN_IF_ERROR(next.UpdateTargets(targets).WithContext("targets.json"));
    }
  }
  HML_RETURN_IF_ERROR(Persist(next));
  *trusted_ = std::move(next);
  return Status::Ok();
}

Result<std::string> Client::FetchTarget(const std::string& name) {
  HML_RETURN_IF_ERROR(ValidateTargetName(name));
  const auto& targets = trusted_->targets();
  if (!targets) return NotFoundError("target '" + name + "': no trusted targets metadata");
  auto it = targets->targets.find(name);
  if (it == targets->targets.end()) {
    return NotFoundError("target '" + name + "' is not in the trusted targets");
  }
  const TargetFile& want = it->second;
  HML_ASSIGN_OR_RETURN(std::string bytes, fetcher_.Fetch("targets/" + name, want.length));
  if (static_cast<int64_t>(bytes.size()) != want.length) {
    return DataLossError("target '" + name + "': " + std::to_string(bytes.size()) +
                         " bytes, the targets metadata says " + std::to_string(want.length));
  }
  if (Sha256Hex(bytes) != want.sha256) {
    return DataLossError("target '" + name + "': sha256 differs from the targets metadata's");
  }
  return bytes;
}

}  // namespace hml::ota

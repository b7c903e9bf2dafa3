// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/server/serving/model_repository.h"

#include <algorithm>
#include <map>
#include <utility>

#include "src/server/registry/registry.h"

namespace hml::server {
namespace {

std::string Describe(const std::string& name, int64_t version) {
  return "model '" + name + "' version " + std::to_string(version);
}

}  // namespace

Status ModelRepositoryOptions::Validate() const {
  if (Status s = batching.Validate(); !s.ok()) {
    return InvalidArgumentError("default batching: " + std::string(s.message()));
  }
  for (const auto& [name, options] : per_model) {
    if (Status s = options.Validate(); !s.ok()) {
      return InvalidArgumentError("batching of model '" + name + "': " + std::string(s.message()));
    }
  }
  if (clock == nullptr) return InvalidArgumentError("ModelRepositoryOptions: clock is null");
  return Status::Ok();
}

ModelRepository::ModelRepository(ModelRepositoryOptions options, ServingMetrics* metrics)
    : options_(std::move(options)), metrics_(metrics) {}

ModelRepository::~ModelRepository() {
  // Drain outside mu_: done callbacks never take it, but Infer() calls in other threads may.
  std::map<std::string, std::map<int64_t, std::shared_ptr<Entry>>> models;
  {
    std::lock_guard<std::mutex> lock(mu_);
    models.swap(models_);
  }
  for (auto& [name, versions] : models) {
    for (auto& [version, entry] : versions) {
      std::unique_lock<std::shared_mutex> submit_lock(entry->submit_mu);
      entry->batcher->Drain();
    }
  }
}

Status ModelRepository::Load(const std::string& name, int64_t version, const std::string& path) {
  Result<Model> model = Model::Load(path);
  if (!model.ok()) {
    return Status(model.status().code(), Describe(name, version) + ": cannot load '" + path +
                                             "': " + std::string(model.status().message()));
  }
  return LoadModel(name, version, *model);
}

Status ModelRepository::LoadModel(const std::string& name, int64_t version, const Model& model) {
  return LoadEntry(name, version, model, /*from_registry=*/false);
}

Status ModelRepository::LoadEntry(const std::string& name, int64_t version, const Model& model,
                                  bool from_registry) {
  HML_RETURN_IF_ERROR(options_.Validate());
  if (name.empty()) return InvalidArgumentError("ModelRepository::Load: empty model name");
  if (version < 1) {
    return InvalidArgumentError(Describe(name, version) + ": versions start at 1");
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = models_.find(name);
    if (it != models_.end() && it->second.count(version) > 0) {
      return AlreadyExistsError(Describe(name, version) + " is already loaded");
    }
  }
  auto per_model = options_.per_model.find(name);
  const BatchingOptions& batching =
      per_model != options_.per_model.end() ? per_model->second : options_.batching;
  // Created outside mu_: compiling the Sessions takes a while and must not stall Infer().
  auto entry = std::make_shared<Entry>();
  entry->from_registry = from_registry;
  entry->inputs = model.inputs();
  entry->outputs = model.outputs();
  Result<std::unique_ptr<DynamicBatcher>> batcher =
      DynamicBatcher::Create(model, batching, options_.clock);
  if (!batcher.ok()) {
    return Status(batcher.status().code(),
                  Describe(name, version) + ": " + std::string(batcher.status().message()));
  }
  entry->batcher = std::move(*batcher);
  if (metrics_ != nullptr) {
    HML_ASSIGN_OR_RETURN(entry->metrics, metrics_->ForModel(name, std::to_string(version)));
  }
  entry->seen.batch_size_counts.assign(static_cast<size_t>(batching.max_batch_size) + 1, 0);
  std::lock_guard<std::mutex> lock(mu_);
  auto [it, inserted] = models_[name].emplace(version, entry);
  if (!inserted) {
    // A concurrent Load() of the same pair won; ours drains when `entry` goes out of scope.
    return AlreadyExistsError(Describe(name, version) + " is already loaded");
  }
  return Status::Ok();
}

Status ModelRepository::Unload(const std::string& name, int64_t version) {
  std::shared_ptr<Entry> entry;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = models_.find(name);
    if (it == models_.end() || it->second.count(version) == 0) {
      return NotFoundError(Describe(name, version) + " is not loaded");
    }
    entry = it->second[version];
    it->second.erase(version);
    if (it->second.empty()) models_.erase(it);
  }
  // From here no Infer() finds the entry. Wait for those that found it before to finish their
  // Submit(), then answer everything queued.
  std::unique_lock<std::shared_mutex> submit_lock(entry->submit_mu);
  entry->batcher->Drain();
  ObserveBatcherStats(*entry);
  return Status::Ok();
}

Result<ModelRepository::SyncReport> ModelRepository::SyncWithRegistry(Env& env,
                                                                     const std::string& dir) {
  std::lock_guard<std::mutex> sync_lock(sync_mu_);
  const bool first = !synced_once_;
  if (first) ready_.store(false, std::memory_order_release);
  Result<std::vector<ModelSummary>> models = Registry::ListDir(env, dir);
  if (!models.ok()) {
    if (first) ready_.store(true, std::memory_order_release);
    return models.status();
  }
  synced_once_ = true;
  // What the channels point at, with the blob to load each from.
  std::map<std::pair<std::string, int64_t>, std::string> wanted;
  for (const ModelSummary& summary : *models) {
    for (const ModelVersion& v : summary.versions) {
      for (const ChannelState& channel : summary.channels) {
        if (channel.version == v.version || channel.previous_version == v.version) {
          wanted[{v.name, v.version}] = v.blob;
        }
      }
    }
  }
  SyncReport report;
  for (const auto& [key, blob] : wanted) {
    const auto& [name, version] = key;
    if (sync_failed_.count(key) > 0) continue;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = models_.find(name);
      if (it != models_.end() && it->second.count(version) > 0) continue;
    }
    const std::string path = dir + "/blobs/" + blob;
    Result<Model> model = Model::Load(path);
    Status loaded = model.ok() ? LoadEntry(name, version, *model, /*from_registry=*/true)
                               : Status(model.status().code(),
                                        Describe(name, version) + ": cannot load '" + path +
                                            "': " + std::string(model.status().message()));
    if (loaded.ok()) {
      report.loaded.push_back(key);
    } else {
      sync_failed_.insert(key);
      report.failed.push_back(std::move(loaded));
    }
  }
  std::vector<std::pair<std::string, int64_t>> stale;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [name, versions] : models_) {
      for (const auto& [version, entry] : versions) {
        if (entry->from_registry && wanted.count({name, version}) == 0) {
          stale.emplace_back(name, version);
        }
      }
    }
  }
  for (const auto& [name, version] : stale) {
    // Only a concurrent Unload() can make this fail (the version is then gone anyway).
    if (Unload(name, version).ok()) report.unloaded.emplace_back(name, version);
  }
  if (first) ready_.store(true, std::memory_order_release);
  return report;
}

Result<std::shared_ptr<ModelRepository::Entry>> ModelRepository::FindLocked(
    const std::string& name, int64_t version) const {
  auto it = models_.find(name);
  if (it == models_.end() || it->second.empty()) {
    return NotFoundError("model '" + name + "' is not loaded");
  }
  if (version == 0) return it->second.rbegin()->second;
  auto v = it->second.find(version);
  if (v == it->second.end()) return NotFoundError(Describe(name, version) + " is not loaded");
  return v->second;
}

ServedModel ModelRepository::DescribeLocked(const std::string& name, int64_t version,
                                            const Entry& entry) const {
  ServedModel served;
  served.name = name;
  served.version = version;
  for (const auto& [v, e] : models_.at(name)) served.versions.push_back(v);
  served.inputs = entry.inputs;
  served.outputs = entry.outputs;
  return served;
}

Result<ServedModel> ModelRepository::GetModel(const std::string& name, int64_t version) const {
  std::lock_guard<std::mutex> lock(mu_);
  HML_ASSIGN_OR_RETURN(std::shared_ptr<Entry> entry, FindLocked(name, version));
  if (version == 0) version = models_.at(name).rbegin()->first;
  return DescribeLocked(name, version, *entry);
}

std::vector<ServedModel> ModelRepository::ListModels() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<ServedModel> out;
  for (const auto& [name, versions] : models_) {
    for (const auto& [version, entry] : versions) {
      out.push_back(DescribeLocked(name, version, *entry));
    }
  }
  return out;
}

SubmitResult ModelRepository::Infer(const std::string& name, int64_t version,
                                    ServingProtocol protocol,
                                    InferRequest request) {
  std::shared_ptr<Entry> entry;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Result<std::shared_ptr<Entry>> found = FindLocked(name, version);
    if (!found.ok()) return SubmitResult{found.status()};
    entry = std::move(*found);
  }
  // Unload() takes submit_mu exclusively only after removing the entry from the map, and drains
  // after that, so a Submit() under the shared lock never meets a draining batcher because of
  // an unload. The raw pointer in the callback stays valid: Unload() and the destructor hold the
  // entry until Drain() has answered every request.
  std::shared_lock<std::shared_mutex> submit_lock(entry->submit_mu);
  Entry* raw = entry.get();
  std::function<void(Result<std::vector<Tensor>>)> done = std::move(request.done);
  request.done = [raw, protocol, done = std::move(done)](Result<std::vector<Tensor>> result) {
    if (raw->metrics != nullptr) {
      raw->metrics->RecordRequest(protocol, result.status().code());
      ObserveBatcherStats(*raw);
    }
    done(std::move(result));
  };
  SubmitResult submitted = entry->batcher->Submit(std::move(request));
  if (!submitted.ok() && entry->metrics != nullptr) {
    if (submitted.status.code() == StatusCode::kResourceExhausted) {
      entry->metrics->RecordRejected(protocol);
    }
    entry->metrics->RecordRequest(protocol, submitted.status.code());
  }
  return submitted;
}

void ModelRepository::ObserveBatcherStats(Entry& entry) {
  if (entry.metrics == nullptr) return;
  const BatcherStats now = entry.batcher->stats();
  std::lock_guard<std::mutex> lock(entry.stats_mu);
  BatcherStats& seen = entry.seen;
  const size_t sizes = std::min(now.batch_size_counts.size(), seen.batch_size_counts.size());
  for (size_t n = 1; n < sizes; ++n) {
    for (int64_t i = seen.batch_size_counts[n]; i < now.batch_size_counts[n]; ++i) {
      entry.metrics->ObserveBatchSize(static_cast<int64_t>(n));
    }
  }
  const int64_t new_batches = now.batches - seen.batches;
  if (new_batches > 0) {
    const double per_batch =
        static_cast<double>(now.compute_nanos_sum - seen.compute_nanos_sum) / 1e9 /
        static_cast<double>(new_batches);
    for (int64_t i = 0; i < new_batches; ++i) entry.metrics->ObserveComputeTime(per_batch);
  }
  const int64_t new_computed = (now.completed + now.failed) - (seen.completed + seen.failed);
  if (new_computed > 0) {
    const double per_request =
        static_cast<double>(now.queue_nanos_sum - seen.queue_nanos_sum) / 1e9 /
        static_cast<double>(new_computed);
    for (int64_t i = 0; i < new_computed; ++i) entry.metrics->ObserveQueueTime(per_request);
  }
  seen = now;
}

}  // namespace hml::server

// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/server/serving/model_repository.h"

#include <algorithm>
#include <map>
#include <utility>

#include "src/server/registry/registry.h"

namespace hml::server {
namespace {

// Records a request the version's batcher refused (a full queue also counts as rejected).
void RecordRefusal(ModelMetrics* metrics, ServingProtocol protocol, StatusCode code) {
  if (metrics == nullptr) return;
  if (code == StatusCode::kResourceExhausted) metrics->RecordRejected(protocol);
  metrics->RecordRequest(protocol, code);
}

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
  if (max_split_tails_per_version < 0 || max_split_tails_per_version > 64) {
    return InvalidArgumentError(
        "ModelRepositoryOptions.max_split_tails_per_version must be in [0, 64], got " +
        std::to_string(max_split_tails_per_version));
  }
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
      DrainEntry(*entry);
    }
  }
}

void ModelRepository::DrainEntry(Entry& entry) {
  entry.batcher->Drain();
  entry.tails->DrainAll();
  entry.observer.Observe(*entry.batcher, entry.metrics);
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
  entry->what = Describe(name, version);
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
  entry->tails = std::make_unique<SplitTails>(model, entry->what, batching, options_.clock,
                                              options_.max_split_tails_per_version, entry->metrics);
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
  DrainEntry(*entry);
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
                                    ServingProtocol protocol, NamedInferRequest request) {
  std::shared_ptr<Entry> entry;
  std::shared_lock<std::shared_mutex> submit_lock;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Result<std::shared_ptr<Entry>> found = FindLocked(name, version);
    if (!found.ok()) return SubmitResult{found.status()};
    entry = std::move(*found);
    // Taken while the entry is still in the map, so before Unload() can take it exclusively:
    // this never blocks, and a Submit() under it never meets a batcher drained by an unload.
    submit_lock = std::shared_lock<std::shared_mutex>(entry->submit_mu);
  }
  // A request is split when it names a tensor that is not a model input; one that names only
  // model inputs but not all of them is a full request with an input missing.
  const bool split =
      std::any_of(request.inputs.begin(), request.inputs.end(), [&](const NamedTensor& input) {
        return std::none_of(entry->inputs.begin(), entry->inputs.end(),
                            [&](const TensorSpec& spec) { return spec.name == input.name; });
      });
  // The raw pointers in the `done` callbacks stay valid: Unload() and the destructor hold the
  // entry until every batcher of it has answered every request.
  return split ? InferSplit(*entry, protocol, std::move(request))
               : InferFull(*entry, protocol, std::move(request));
}

SubmitResult ModelRepository::CheckAdmission(const std::string& name, int64_t version,
                                            ServingProtocol protocol) {
  std::shared_ptr<Entry> entry;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Result<std::shared_ptr<Entry>> found = FindLocked(name, version);
    if (!found.ok()) return {};
    entry = std::move(*found);
  }
  SubmitResult admitted = entry->batcher->CheckAdmission();
  if (!admitted.ok()) RecordRefusal(entry->metrics, protocol, admitted.status.code());
  return admitted;
}

SubmitResult ModelRepository::InferFull(Entry& entry, ServingProtocol protocol,
                                        NamedInferRequest request) {
  Result<std::vector<Tensor>> inputs = InputsInSpecOrder(entry.what, entry.inputs, request.inputs);
  if (!inputs.ok()) {
    if (entry.metrics != nullptr) entry.metrics->RecordRequest(protocol, inputs.status().code());
    return {inputs.status()};
  }
  Entry* raw = &entry;
  InferRequest infer;
  infer.inputs = std::move(*inputs);
  infer.deadline_nanos = request.deadline_nanos;
  infer.done = [raw, protocol, done = std::move(request.done)](Result<std::vector<Tensor>> result) {
    if (raw->metrics != nullptr) {
      raw->metrics->RecordRequest(protocol, result.status().code());
      raw->observer.Observe(*raw->batcher, raw->metrics);
    }
    done(std::move(result));
  };
  SubmitResult submitted = entry.batcher->Submit(std::move(infer));
  if (!submitted.ok()) RecordRefusal(entry.metrics, protocol, submitted.status.code());
  return submitted;
}

SubmitResult ModelRepository::InferSplit(Entry& entry, ServingProtocol protocol,
                                         NamedInferRequest request) {
  // Every refusal is recorded once, as a split request with its code.
  const auto refuse = [&](SubmitResult refused) {
    if (entry.metrics != nullptr) {
      if (refused.status.code() == StatusCode::kResourceExhausted) {
        entry.metrics->RecordRejected(protocol);
      }
      entry.metrics->RecordSplitRequest(protocol, refused.status.code());
    }
    return refused;
  };
  std::vector<std::string> names;
  names.reserve(request.inputs.size());
  for (const NamedTensor& input : request.inputs) names.push_back(input.name);
  Result<SplitTails::Acquired> acquired = entry.tails->Acquire(std::move(names));
  if (!acquired.ok()) return refuse({acquired.status()});
  SplitTails::Tail* tail = acquired->tail.get();

  SubmitResult submitted;
  Result<std::vector<Tensor>> inputs = InputsInSpecOrder(tail->what, tail->inputs, request.inputs);
  if (!inputs.ok()) {
    submitted = refuse({inputs.status()});
  } else {
    Entry* raw = &entry;
    InferRequest infer;
    infer.inputs = std::move(*inputs);
    infer.deadline_nanos = request.deadline_nanos;
    // `tail` stays valid like `raw`: an evicted tail is drained before it is released.
    infer.done = [raw, tail, protocol,
                  done = std::move(request.done)](Result<std::vector<Tensor>> result) {
      if (raw->metrics != nullptr) {
        raw->metrics->RecordSplitRequest(protocol, result.status().code());
        tail->observer.Observe(*tail->batcher, raw->metrics);
      }
      done(std::move(result));
    };
    submitted = tail->batcher->Submit(std::move(infer));
    if (!submitted.ok()) submitted = refuse(std::move(submitted));
  }
  acquired->submit_lock.unlock();
  // Drains the tail this request evicted (if any) after the request is queued on its own.
  entry.tails->Retire(std::move(acquired->evicted));
  return submitted;
}

}  // namespace hml::server

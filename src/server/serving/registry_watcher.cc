// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/server/serving/registry_watcher.h"

#include <chrono>
#include <utility>
#include <vector>

namespace hml::server {

Status RegistryWatcherOptions::Validate() const {
  if (interval_millis < 10 || interval_millis > int64_t{3600} * 1000) {
    return InvalidArgumentError("RegistryWatcherOptions: interval_millis " +
                                std::to_string(interval_millis) +
                                " is not in [10, 3600000]");
  }
  return Status::Ok();
}

std::vector<std::string> DescribeSyncReport(const ModelRepository::SyncReport& report) {
  std::vector<std::string> lines;
  auto model = [](const std::pair<std::string, int64_t>& key) {
    return "model '" + key.first + "' version " + std::to_string(key.second);
  };
  for (const auto& key : report.loaded) lines.push_back("loaded " + model(key));
  for (const auto& key : report.unloaded) lines.push_back("unloaded " + model(key));
  for (const Status& s : report.failed) lines.push_back("failed to load: " + s.ToString());
  return lines;
}

RegistryWatcher::RegistryWatcher(ModelRepository& repository, Env& env, std::string dir,
                                 RegistryWatcherOptions options)
    : repository_(repository), env_(env), dir_(std::move(dir)), options_(options) {}

RegistryWatcher::~RegistryWatcher() { Stop(); }

Status RegistryWatcher::Start() {
  HML_RETURN_IF_ERROR(options_.Validate());
  if (thread_.joinable()) return FailedPreconditionError("RegistryWatcher: already started");
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = false;
  }
  thread_ = std::thread([this] { Run(); });
  return Status::Ok();
}

void RegistryWatcher::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

int64_t RegistryWatcher::syncs() const {
  std::lock_guard<std::mutex> lock(mu_);
  return syncs_;
}

void RegistryWatcher::Run() {
  const auto interval = std::chrono::milliseconds(options_.interval_millis);
  std::unique_lock<std::mutex> lock(mu_);
  while (!wake_.wait_for(lock, interval, [this] { return stop_; })) {
    lock.unlock();
    Result<ModelRepository::SyncReport> report = repository_.SyncWithRegistry(env_, dir_);
    if (!report.ok()) {
      HML_LOG(options_.logger, kWarning)
          << "registry sync of '" << dir_ << "' failed (retrying in " << options_.interval_millis
          << " ms): " << report.status().ToString();
    } else {
      for (const std::string& line : DescribeSyncReport(*report)) {
        if (line.rfind("failed", 0) == 0) {
          HML_LOG(options_.logger, kWarning) << "registry sync: " << line;
        } else {
          HML_LOG(options_.logger, kInfo) << "registry sync: " << line;
        }
      }
    }
    lock.lock();
    ++syncs_;
  }
}

}  // namespace hml::server

// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Keeps a ModelRepository in step with a registry directory while the server runs: a thread calls
// ModelRepository::SyncWithRegistry every `interval`, so a `hybridml publish` + `rollout` (or a
// `rollback`) made by another process is served within one interval, without a restart and
// without dropping requests (the repository loads before it unloads; see model_repository.h).
//
// Why polling: the registry is changed by other processes through SQLite (registry.db, WAL mode),
// which offers no cross-process change notification. A sync reads the channels with one
// read-only query set (Registry::ListDir; about a millisecond on a small registry) and acts only
// on differences, so polling every second or two costs nothing measurable.
//
// Each change (loaded, unloaded, failed to load) is logged; a failed sync (e.g. registry.db
// briefly unreadable) is logged and retried at the next tick.
#ifndef HML_SRC_SERVER_SERVING_REGISTRY_WATCHER_H_
#define HML_SRC_SERVER_SERVING_REGISTRY_WATCHER_H_

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

#include "hml/env.h"
#include "hml/logging.h"
#include "hml/status.h"
#include "src/server/serving/model_repository.h"

namespace hml::server {

struct RegistryWatcherOptions {
  // Time between two syncs. Default: 2000 (2 s).
  int64_t interval_millis = 2000;
  // Where loads, unloads and errors are logged. Default: null (StderrLogger()).
  Logger* logger = nullptr;

  // kInvalidArgument unless interval_millis is in [10, 1 hour].
  Status Validate() const;
};

class RegistryWatcher {
 public:
  // `repository` and `env` must outlive the watcher.
  RegistryWatcher(ModelRepository& repository, Env& env, std::string dir,
                  RegistryWatcherOptions options = {});
  // Stops the thread.
  ~RegistryWatcher();
  RegistryWatcher(const RegistryWatcher&) = delete;
  RegistryWatcher& operator=(const RegistryWatcher&) = delete;

  // Starts the thread; its first sync happens one interval from now (the caller has normally
  // just synced). Errors: the options' Validate() error; kFailedPrecondition when started already.
  Status Start();
  // Stops the thread, waiting for a sync in progress to finish. Idempotent.
  void Stop();

  // Syncs that completed (successfully or not) since Start().
  int64_t syncs() const;

 private:
  void Run();

  ModelRepository& repository_;
  Env& env_;
  const std::string dir_;
  const RegistryWatcherOptions options_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool stop_ = false;      // GUARDED_BY(mu_)
  int64_t syncs_ = 0;      // GUARDED_BY(mu_)
  std::thread thread_;
};

// One line per change of `report`, e.g. "loaded model 'm' version 3", for logs and the CLI.
std::vector<std::string> DescribeSyncReport(const ModelRepository::SyncReport& report);

}  // namespace hml::server

#endif  // HML_SRC_SERVER_SERVING_REGISTRY_WATCHER_H_

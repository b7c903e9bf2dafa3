// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The device side of signed update metadata: refreshes the trusted metadata from a repository in
// TUF order, verifies all of it before persisting any of it, and downloads target files within
// their declared lengths. Transport-free: bytes come through a Fetcher (the in-process
// repository in tests and the simulator; HTTP GET later). Installing a model (temp file, fsync,
// rename, rollback) is the SDK's updater's job, on top of this.
//
// Persistent state: <dir>/trusted.json holds the trusted root, timestamp, snapshot and targets
// files, replaced atomically (Env::WriteFileAtomic) after a refresh in which every step
// verified; a failed refresh leaves it byte-identical. <dir>/trusted_time holds the latest clock
// reading any refresh saw (unix seconds), written before verifying: expiry is judged at the
// later of the clock and that time, so turning the clock back cannot revive expired metadata.
#ifndef HML_SRC_OTA_CLIENT_H_
#define HML_SRC_OTA_CLIENT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "hml/clock.h"
#include "hml/env.h"
#include "hml/status.h"
#include "src/ota/trusted_set.h"

namespace hml::ota {

class Fetcher {
 public:
  virtual ~Fetcher() = default;
  // The bytes of repository file `name`. kNotFound when there is none; kResourceExhausted when
  // it holds more than `max_bytes` (an implementation stops reading after max_bytes + 1 bytes,
  // so an endless stream costs at most that much).
  virtual Result<std::string> Fetch(const std::string& name, int64_t max_bytes) = 0;
};

struct ClientOptions {
  TrustedSetOptions limits;
  // Most root versions applied in one refresh. Default: 64.
  int max_root_rotations = 64;
};

class Client {
 public:
  // Opens the trusted state in `dir`, or starts one from `shipped_root` (the root metadata the
  // app ships with) when there is none. `env`, `fetcher` and `clock` must outlive the client.
  // Errors: those of reading and verifying the state; kDataLoss naming the file when it is not a
  // state file.
  static Result<std::unique_ptr<Client>> Open(Env& env, std::string dir,
                                              std::string_view shipped_root, Fetcher& fetcher,
                                              Clock& clock, const ClientOptions& options = {});

  // Root chain, timestamp, snapshot and targets, each verified before the next is fetched; on
  // success the new state is persisted. On any error the persisted state and trusted() are as
  // before the call, and the error says which role failed and why.
  Status Refresh();

  // Target `name` of the trusted targets, fetched with its declared length as the limit and
  // checked for exact length and sha256. kNotFound when the trusted targets do not list it
  // (or there are none), kResourceExhausted beyond the declared length, kDataLoss on mismatch.
  Result<std::string> FetchTarget(const std::string& name);

  const TrustedSet& trusted() const { return *trusted_; }
  std::string state_path() const { return dir_ + "/trusted.json"; }
  std::string time_path() const { return dir_ + "/trusted_time"; }

 private:
  Client(Env& env, std::string dir, Fetcher& fetcher, Clock& clock, ClientOptions options)
      : env_(env), dir_(std::move(dir)), fetcher_(fetcher), clock_(clock), options_(options) {}
  Status Persist(const TrustedSet& set);

  Env& env_;
  std::string dir_;
  Fetcher& fetcher_;
  Clock& clock_;
  ClientOptions options_;
  std::unique_ptr<TrustedSet> trusted_;
};

}  // namespace hml::ota

#endif  // HML_SRC_OTA_CLIENT_H_

// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// LinkFetcher: a simulated device's OTA source. It serves the registry's repository directory
// (<registry>/repo: the signed metadata and targets/, exactly what `hybridml serve` publishes under
// /ota/ and through Registry.GetMetadata / GetFile) to the SDK's ModelUpdater, and makes every
// read pay the device's link: a small request up (kRequestBytes), the answer's bytes down, both
// through the LinkEmulator, and the calling thread sleeps until the answer's arrival time (the
// updater is synchronous, as it is on a phone's background thread). So installing a model over
// "poor" takes the time its bytes take at 1 Mbit/s, and an outage makes the check fail with
// kUnavailable, naming the file, after which the updater keeps its partial download.
//
// A read of a missing file is kNotFound without touching the link (a real 404 costs a round
// trip too, but the updater never asks for files the signed metadata does not list).
//
// Thread-safe when the link is (it is); one LinkFetcher per device.
#ifndef HML_SRC_SIM_LINK_FETCHER_H_
#define HML_SRC_SIM_LINK_FETCHER_H_

#include <atomic>
#include <cstdint>
#include <string>

#include "hml/env.h"
#include "hml/status.h"
#include "src/ota/client.h"
#include "src/sdk/updater.h"
#include "src/sim/link.h"

namespace hml::sim {

class LinkFetcher final : public ota::Fetcher, public sdk::ByteSource {
 public:
  // Bytes of one request message (an HTTP GET with a Range header, or a GetFile message).
  static constexpr int64_t kRequestBytes = 200;

  // `repo_dir` is the registry's repo/ directory; `link` (and its clock, which must be a real-time
  // clock: the fetcher sleeps) must outlive the fetcher.
  LinkFetcher(Env& env, std::string repo_dir, LinkEmulator* link);

  Result<std::string> Fetch(const std::string& name, int64_t max_bytes) override;
  Result<std::string> FetchRange(const std::string& name, int64_t offset,
                                 int64_t max_bytes) override;

  // Bytes that reached the device through this fetcher.
  int64_t bytes_received() const { return bytes_received_.load(); }

 private:
  // Sends a request up and `answer_bytes` down; sleeps until the answer arrives. kUnavailable
  // naming `name` when either message is refused or lost.
  Status Travel(const std::string& name, int64_t answer_bytes);

  Env& env_;
  const std::string repo_dir_;
  LinkEmulator* const link_;
  std::atomic<int64_t> bytes_received_{0};
};

}  // namespace hml::sim

#endif  // HML_SRC_SIM_LINK_FETCHER_H_

// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/sim/link_fetcher.h"

#include <algorithm>
#include <utility>

namespace hml::sim {

LinkFetcher::LinkFetcher(Env& env, std::string repo_dir, LinkEmulator* link)
    : env_(env), repo_dir_(std::move(repo_dir)), link_(link) {}

Status LinkFetcher::Travel(const std::string& name, int64_t answer_bytes) {
  const Transmission up = link_->Send(Direction::kUplink, kRequestBytes);
  if (!up.delivered()) {
    return UnavailableError("OTA fetch of '" + name + "': the request did not get through (" +
                            (up.fate == Transmission::Fate::kRefused ? "link down" : "lost") + ")");
  }
  Clock* clock = link_->clock();
  const int64_t now = clock->NowNanos();
  if (up.arrive_nanos > now) clock->SleepNanos(up.arrive_nanos - now);
  const Transmission down = link_->Send(Direction::kDownlink, answer_bytes);
  if (!down.delivered()) {
    return UnavailableError("OTA fetch of '" + name + "': the answer did not get through (" +
                            (down.fate == Transmission::Fate::kRefused ? "link down" : "lost") +
                            ")");
  }
  const int64_t after = clock->NowNanos();
  if (down.arrive_nanos > after) clock->SleepNanos(down.arrive_nanos - after);
  bytes_received_ += answer_bytes;
  return Status::Ok();
}

Result<std::string> LinkFetcher::Fetch(const std::string& name, int64_t max_bytes) {
  HML_ASSIGN_OR_RETURN(std::string bytes, env_.ReadFile(repo_dir_ + "/" + name, max_bytes));
  HML_RETURN_IF_ERROR(Travel(name, static_cast<int64_t>(bytes.size())));
  return bytes;
}

Result<std::string> LinkFetcher::FetchRange(const std::string& name, int64_t offset,
                                            int64_t max_bytes) {
  if (offset < 0 || max_bytes < 0) {
    return InvalidArgumentError("OTA fetch of '" + name + "': negative offset or length");
  }
  HML_ASSIGN_OR_RETURN(std::string all, env_.ReadFile(repo_dir_ + "/" + name));
  std::string window;
  if (offset < static_cast<int64_t>(all.size())) {
    const int64_t n = std::min<int64_t>(max_bytes, static_cast<int64_t>(all.size()) - offset);
    window = all.substr(static_cast<size_t>(offset), static_cast<size_t>(n));
  }
  HML_RETURN_IF_ERROR(Travel(name, static_cast<int64_t>(window.size())));
  return window;
}

}  // namespace hml::sim

// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "hml/sdk/platform.h"

#include <cmath>
#include <utility>

namespace hml::sdk {

Status CheckBackgroundConditions(const Platform& platform, const BackgroundPolicy& policy) {
  if (!(policy.min_battery_level >= 0 && policy.min_battery_level <= 1)) {
    return InvalidArgumentError("BackgroundPolicy: min_battery_level " +
                                std::to_string(policy.min_battery_level) + " is not in [0, 1]");
  }
  const NetworkState network = platform.network();
  if (network.type == NetworkType::kNone) return FailedPreconditionError("the device is offline");
  if (policy.require_unmetered && network.type != NetworkType::kUnmetered) {
    return FailedPreconditionError("network is metered and the policy requires unmetered");
  }
  const PowerState power = platform.power();
  if (policy.require_charging && !power.charging) {
    return FailedPreconditionError("not charging and the policy requires charging");
  }
  if (!power.charging && power.battery_level >= 0 &&
      power.battery_level < policy.min_battery_level) {
    return FailedPreconditionError(
        "battery at " + std::to_string(static_cast<int>(std::lround(power.battery_level * 100))) +
        " % and not charging (minimum " +
        std::to_string(static_cast<int>(std::lround(policy.min_battery_level * 100))) + " %)");
  }
  if (policy.require_idle && !platform.idle()) {
    return FailedPreconditionError("the device is in use and the policy requires idle");
  }
  return Status::Ok();
}

void StaticPlatform::set_network(NetworkState state) {
  std::lock_guard<std::mutex> lock(mu_);
  network_ = state;
}

void StaticPlatform::set_power(PowerState state) {
  std::lock_guard<std::mutex> lock(mu_);
  power_ = state;
}

void StaticPlatform::set_idle(bool idle) {
  std::lock_guard<std::mutex> lock(mu_);
  idle_ = idle;
}

Status StaticPlatform::set_store_key(uint32_t key_id, std::string key) {
  if (key.size() != 32) {
    return InvalidArgumentError("StaticPlatform: store key " + std::to_string(key_id) + " has " +
                                std::to_string(key.size()) + " bytes, not 32");
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [id, bytes] : keys_) {
    if (id == key_id) {
      bytes = std::move(key);
      return Status::Ok();
    }
  }
  keys_.emplace_back(key_id, std::move(key));
  return Status::Ok();
}

NetworkState StaticPlatform::network() const {
  std::lock_guard<std::mutex> lock(mu_);
  return network_;
}

PowerState StaticPlatform::power() const {
  std::lock_guard<std::mutex> lock(mu_);
  return power_;
}

bool StaticPlatform::idle() const {
  std::lock_guard<std::mutex> lock(mu_);
  return idle_;
}

Result<std::string> StaticPlatform::StoreKey(uint32_t key_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [id, bytes] : keys_) {
    if (id == key_id) return bytes;
  }
  return NotFoundError("the keystore has no store key " + std::to_string(key_id));
}

}  // namespace hml::sdk

// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The platform hooks: what the SDK asks the app about the device it runs on. The app implements
// `Platform` over Android's ConnectivityManager / BatteryManager / Keystore or iOS's
// NWPathMonitor / UIDevice / Keychain; tests and the fleet simulator use `StaticPlatform`.
//
// The SDK calls the hooks when it decides something (whether to upload now, whether to update a
// model, where to run an inference), never on a timer, so an implementation may be a plain read
// of state the app keeps current. Every hook must be cheap (microseconds) and thread-safe.
#ifndef HML_SDK_PLATFORM_H_
#define HML_SDK_PLATFORM_H_

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "hml/logging.h"
#include "hml/status.h"

namespace hml::sdk {

enum class NetworkType {
  kNone,       // offline
  kMetered,    // cellular, or a network the user pays for per byte
  kUnmetered,  // Wi-Fi, Ethernet
};

struct NetworkState {
  NetworkType type = NetworkType::kNone;
  // Measured downlink bandwidth in bits per second, and round-trip time in milliseconds, as the
  // platform estimates them; 0 = unknown (the SDK then uses its own measurements).
  double bandwidth_bps = 0;
  double rtt_ms = 0;
};

struct PowerState {
  // Battery level in [0, 1]; negative = unknown (e.g. a device without a battery).
  double battery_level = -1;
  bool charging = false;
};

class Platform {
 public:
  virtual ~Platform() = default;

  virtual NetworkState network() const = 0;
  virtual PowerState power() const = 0;
  // The user is not using the device (screen off, no input for a while).
  virtual bool idle() const = 0;
  // The 32-byte key that encrypts the local store, from the platform keystore, for `key_id`
  // (the SDK asks for the id it stored with each record; new records use key id 1 until the
  // app rotates). kNotFound when the keystore has no such key; kUnavailable when the keystore
  // is locked (e.g. before the first unlock after boot): the SDK retries later, never falls back
  // to a weaker key.
  virtual Result<std::string> StoreKey(uint32_t key_id) const = 0;
  // Where the SDK logs (logcat / os_log); null = standard error.
  virtual Logger* logger() const { return nullptr; }
};

// The conditions background work (uploads, model updates, on-device training) is allowed
// under, as the app configures them, checked against the platform's current state.
struct BackgroundPolicy {
  bool require_unmetered = true;
  bool require_charging = false;
  bool require_idle = false;
  // Battery level below which nothing runs unless charging; in [0, 1]. Default: 0.2.
  double min_battery_level = 0.2;
};

// OK when `platform`'s state satisfies `policy`; otherwise kFailedPrecondition naming the first
// condition that is not met ("network is metered", "battery at 12 % and not charging", ...).
Status CheckBackgroundConditions(const Platform& platform, const BackgroundPolicy& policy);

// A Platform whose state the owner sets (tests, the fleet simulator, apps that push state).
// Thread-safe; key material is kept only for the ids set.
class StaticPlatform final : public Platform {
 public:
  void set_network(NetworkState state);
  void set_power(PowerState state);
  void set_idle(bool idle);
  // REQUIRES: key.size() == 32 (kInvalidArgument otherwise; nothing changes).
  Status set_store_key(uint32_t key_id, std::string key);

  NetworkState network() const override;
  PowerState power() const override;
  bool idle() const override;
  Result<std::string> StoreKey(uint32_t key_id) const override;

 private:
  mutable std::mutex mu_;
  NetworkState network_;                          // GUARDED_BY(mu_)
  PowerState power_;                              // GUARDED_BY(mu_)
  bool idle_ = false;                             // GUARDED_BY(mu_)
  std::vector<std::pair<uint32_t, std::string>> keys_;  // GUARDED_BY(mu_)
};

}  // namespace hml::sdk

#endif  // HML_SDK_PLATFORM_H_

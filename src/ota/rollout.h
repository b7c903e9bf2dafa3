// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Staged rollouts: which devices get a model version while its channel is below 100 %.
//
// Each device has a bucket in [0, 10000) per model: SHA-256 of `model_name + "/" + device_id`,
// first 8 bytes big-endian, mod 10000. The bucket depends on nothing else, so a device keeps its
// bucket across calls, processes and model versions, and raising the percentage only ever adds
// devices. Hashing the model name in gives each model its own independent split of the fleet, so
// the same devices are not always the first to receive every new model.
//
// The server and the device compute the same function; the constant 10000 and the hash input
// are part of the protocol and must not change.
#ifndef HML_SRC_OTA_ROLLOUT_H_
#define HML_SRC_OTA_ROLLOUT_H_

#include <string_view>

namespace hml::ota {

// Number of buckets: a rollout percentage has a resolution of 0.01 %.
inline constexpr int kRolloutBuckets = 10000;

// The bucket of `device_id` for `model_name`, in [0, kRolloutBuckets).
// Thread-safe.
int RolloutBucket(std::string_view device_id, std::string_view model_name);

// True when `device_id` is in a rollout of `model_name` to `percent` % of devices, i.e. when its
// bucket is below percent * 100. `percent` is clamped to [0, 100]: 0 (or below, or NaN) reaches
// no device, 100 (or above) every device. Thread-safe.
bool InRollout(std::string_view device_id, std::string_view model_name, double percent);

}  // namespace hml::ota

#endif  // HML_SRC_OTA_ROLLOUT_H_

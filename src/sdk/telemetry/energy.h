// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Energy estimate of one inference on the device (issue 6): a linear model of two parts,
//
//   compute = local_runs x local_macs x compute_joules_per_mac
//   radio   = bytes_sent x radio_joules_per_byte_sent
//           + bytes_received x radio_joules_per_byte_received
//           + radio_tail_joules_per_call            (once per request whose cloud call moved bytes)
//
// from the RouteInfo the Router returns (local_runs, bytes on the wire over all cloud attempts,
// failed ones included) and the MACs of one local run (Model::Analyze: total_flops / 2, see
// MacsOf). It is an estimate for comparing routes and fleets, not a power meter: it ignores the
// radio's idle and promotion power, the screen, DVFS and the memory hierarchy beyond what the
// per-MAC figure folds in. Calibrate DeviceProfile on a device to make it more than that.
//
// The defaults and where they come from:
//   radio (LTE): Huang et al., "A Close Examination of Performance and Power Characteristics of
//     4G LTE Networks", MobiSys 2012, its LTE power model: uplink 438.39 mW/Mbps and downlink
//     51.97 mW/Mbps above the base power. mW/Mbps is nJ/bit, so 3.507 uJ/byte sent and 0.416
//     uJ/byte received.
//     The same paper's LTE tail (1060 mW for 11.576 s, about 12.3 J) is not charged by default:
//     one tail covers every call inside it, so per call it overcounts anything but rare calls.
//   radio (WiFi): the same paper's WiFi model, 283.17 mW/Mbps up and 137.01 mW/Mbps down:
//     2.265 uJ/byte sent, 1.096 uJ/byte received (WifiProfile()).
//   compute: 100 pJ per MAC (1e-10 J) for a mobile CPU core. Horowitz, "Computing's Energy
//     Problem (and what we can do about it)", ISSCC 2014, puts the arithmetic of a 32-bit float
//     multiply and add at 3.7 + 0.9 pJ (45 nm); instruction issue and data movement on a general
//     CPU cost an order of magnitude more, and Warden ("Why the future of machine learning is
//     tiny", 2018) gives low double-digit pJ per multiply-add for a DSP and an order of
//     magnitude more for a general-purpose CPU. 100 pJ/MAC puts MobileNet v1 (569 M MACs) at
//     57 mJ per inference.
//
// Device target: no exceptions, no server headers.
#ifndef HML_SRC_SDK_TELEMETRY_ENERGY_H_
#define HML_SRC_SDK_TELEMETRY_ENERGY_H_

#include <cstdint>
#include <map>
#include <string>

#include "hml/runtime/model.h"
#include "hml/status.h"
#include "src/sdk/router.h"

namespace hml::sdk {

// The energy figures of one device. Defaults: a phone on LTE (see the file comment).
struct DeviceProfile {
  // Joules per multiply-accumulate of a local model run. >= 0, finite. Default: 1e-10.
  double compute_joules_per_mac = 1e-10;
  // Joules per byte the radio sends. >= 0, finite. Default: 3.507e-6 (LTE uplink).
  double radio_joules_per_byte_sent = 3.507e-6;
  // Joules per byte the radio receives. >= 0, finite. Default: 4.16e-7 (LTE downlink).
  double radio_joules_per_byte_received = 4.16e-7;
  // Joules charged once per request whose cloud call moved bytes (the radio's tail after
  // activity). >= 0, finite. Default: 0 (LTE's would be about 12.3 J; see the file comment).
  double radio_tail_joules_per_call = 0;

  // kInvalidArgument naming the field that is negative or not finite.
  Status Validate() const;
};

// The LTE defaults (DeviceProfile{}), and the WiFi figures of the same paper.
DeviceProfile LteProfile();
DeviceProfile WifiProfile();

struct EnergyEstimate {
  double compute_joules = 0;
  double radio_joules = 0;
  double total_joules() const { return compute_joules + radio_joules; }
};

// The estimate for one request routed as `route`, whose local model run takes `local_macs`
// multiply-accumulates (the head's for a split request). Negative inputs count as 0.
EnergyEstimate EstimateEnergy(const DeviceProfile& profile, const RouteInfo& route,
                              int64_t local_macs);

// The MACs of one run of `model` at `input_shapes` (Model::Analyze's total_flops / 2, since
// Analyze counts a multiply-add as two FLOPs). Analyze's errors.
Result<int64_t> MacsOf(const Model& model, const std::map<std::string, Shape>& input_shapes = {});

}  // namespace hml::sdk

#endif  // HML_SRC_SDK_TELEMETRY_ENERGY_H_

// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/sdk/telemetry/energy.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <string_view>

namespace hml::sdk {
namespace {

Status CheckFigure(std::string_view field, double value) {
  if (!std::isfinite(value) || value < 0) {
    return InvalidArgumentError("DeviceProfile." + std::string(field) + " is " +
                                std::to_string(value) + "; it must be finite and >= 0");
  }
  return Status::Ok();
}

}  // namespace

Status DeviceProfile::Validate() const {
  HML_RETURN_IF_ERROR(CheckFigure("compute_joules_per_mac", compute_joules_per_mac));
  HML_RETURN_IF_ERROR(CheckFigure("radio_joules_per_byte_sent", radio_joules_per_byte_sent));
  HML_RETURN_IF_ERROR(
      CheckFigure("radio_joules_per_byte_received", radio_joules_per_byte_received));
  HML_RETURN_IF_ERROR(CheckFigure("radio_tail_joules_per_call", radio_tail_joules_per_call));
  return Status::Ok();
}

DeviceProfile LteProfile() { return DeviceProfile{}; }

DeviceProfile WifiProfile() {
  DeviceProfile profile;
  profile.radio_joules_per_byte_sent = 2.265e-6;
  profile.radio_joules_per_byte_received = 1.096e-6;
  return profile;
}

EnergyEstimate EstimateEnergy(const DeviceProfile& profile, const RouteInfo& route,
                              int64_t local_macs) {
  const double runs = static_cast<double>(std::max(route.local_runs, 0));
  const double macs = static_cast<double>(std::max<int64_t>(local_macs, 0));
  const double sent = static_cast<double>(std::max<int64_t>(route.bytes_sent, 0));
  const double received = static_cast<double>(std::max<int64_t>(route.bytes_received, 0));
  EnergyEstimate estimate;
  estimate.compute_joules = runs * macs * profile.compute_joules_per_mac;
  estimate.radio_joules =
      sent * profile.radio_joules_per_byte_sent + received * profile.radio_joules_per_byte_received;
  if (sent > 0 || received > 0) estimate.radio_joules += profile.radio_tail_joules_per_call;
  return estimate;
}

Result<int64_t> MacsOf(const Model& model, const std::map<std::string, Shape>& input_shapes) {
  HML_ASSIGN_OR_RETURN(ModelAnalysis analysis, model.Analyze(input_shapes));
  return analysis.total_flops / 2;
}

}  // namespace hml::sdk

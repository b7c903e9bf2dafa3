// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Byzantine-robust aggregators: each turns the deltas of a round's accepted updates into one
// aggregated delta while bounding the influence of a minority of malicious or broken clients.
//
//   - CoordinateMedian: per coordinate, the median of the clients' values (the mean of the two
//     middle values when the count is even). Ignores example counts.
//   - TrimmedMean: per coordinate, drops the floor(trim_fraction * n) largest and as many
//     smallest values and averages the rest (Yin et al. 2018). Ignores example counts.
//   - Krum: picks the one update whose summed squared L2 distance to its n - f - 2 nearest
//     other updates is smallest (Blanchard et al. 2017); f is the number of Byzantine clients
//     tolerated and needs n >= f + 3. Ties go to the lowest index.
//
// A secure-aggregation round cannot use any of them: the server only ever sees the masked sum of
// the updates, never an individual update, and each of these needs the individual values (per
// coordinate or per update). Such rounds use the weighted mean (strategy.h), and robustness has
// to come from the norm bound applied on the clients before masking.
//
// All inputs must have deltas of one size (the validator guarantees it; checked again here).
// Pure functions: no state, thread-safe.
#ifndef HML_SRC_FL_ROBUST_H_
#define HML_SRC_FL_ROBUST_H_

#include <cstdint>
#include <span>
#include <vector>

#include "hml/status.h"
#include "src/fl/update.h"

namespace hml::fl {

// kInvalidArgument for no updates or deltas of different sizes.
Result<std::vector<float>> CoordinateMedian(std::span<const ModelUpdate> updates);

// REQUIRES: 0 <= trim_fraction < 0.5 (checked: kInvalidArgument otherwise).
Result<std::vector<float>> TrimmedMean(std::span<const ModelUpdate> updates, double trim_fraction);

// Index of the update Krum selects. kInvalidArgument if f < 0 or n < f + 3.
Result<int64_t> KrumSelect(std::span<const ModelUpdate> updates, int64_t f);

// The delta of the update KrumSelect picks.
Result<std::vector<float>> Krum(std::span<const ModelUpdate> updates, int64_t f);

// Checks that `updates` is non-empty and all deltas have one size; returns that size.
Result<int64_t> CommonDeltaSize(std::span<const ModelUpdate> updates);

}  // namespace hml::fl

#endif  // HML_SRC_FL_ROBUST_H_

// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/fl/robust.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace hml::fl {

Result<int64_t> CommonDeltaSize(std::span<const ModelUpdate> updates) {
  if (updates.empty()) return InvalidArgumentError("no updates to aggregate");
  const size_t size = updates[0].delta.size();
  for (const ModelUpdate& update : updates) {
    if (update.delta.size() != size) {
      return InvalidArgumentError("update from client '" + update.client_id + "' has " +
                                  std::to_string(update.delta.size()) + " values, client '" +
                                  updates[0].client_id + "' has " + std::to_string(size));
    }
  }
  return static_cast<int64_t>(size);
}

Result<std::vector<float>> CoordinateMedian(std::span<const ModelUpdate> updates) {
  HML_ASSIGN_OR_RETURN(int64_t size, CommonDeltaSize(updates));
  const size_t n = updates.size();
  std::vector<float> out(static_cast<size_t>(size));
  std::vector<float> column(n);
  for (int64_t j = 0; j < size; ++j) {
    for (size_t i = 0; i < n; ++i) column[i] = updates[i].delta[j];
    std::sort(column.begin(), column.end());
    out[j] =
        n % 2 == 1
            ? column[n / 2]
            : static_cast<float>(0.5 * (static_cast<double>(column[n / 2 - 1]) + column[n / 2]));
  }
  return out;
}

Result<std::vector<float>> TrimmedMean(std::span<const ModelUpdate> updates, double trim_fraction) {
  if (!(trim_fraction >= 0.0 && trim_fraction < 0.5)) {
    return InvalidArgumentError("trim_fraction must be in [0, 0.5), got " +
                                std::to_string(trim_fraction));
  }
  HML_ASSIGN_OR_RETURN(int64_t size, CommonDeltaSize(updates));
  const size_t n = updates.size();
  const size_t trim = static_cast<size_t>(std::floor(trim_fraction * static_cast<double>(n)));
  // trim < n / 2 because trim_fraction < 0.5, so at least one value is kept.
  const size_t kept = n - 2 * trim;
  std::vector<float> out(static_cast<size_t>(size));
  std::vector<float> column(n);
  for (int64_t j = 0; j < size; ++j) {
    for (size_t i = 0; i < n; ++i) column[i] = updates[i].delta[j];
    std::sort(column.begin(), column.end());
    double sum = 0.0;
    for (size_t i = trim; i < n - trim; ++i) sum += column[i];
    out[j] = static_cast<float>(sum / static_cast<double>(kept));
  }
  return out;
}

Result<int64_t> KrumSelect(std::span<const ModelUpdate> updates, int64_t f) {
  HML_ASSIGN_OR_RETURN(int64_t size, CommonDeltaSize(updates));
  const int64_t n = static_cast<int64_t>(updates.size());
  if (f < 0 || n < f + 3) {
    return InvalidArgumentError("Krum with f = " + std::to_string(f) +
                                " needs f >= 0 and at least " + std::to_string(f + 3) +
                                " updates, got " + std::to_string(n));
  }
  // Pairwise squared distances, in double so that large deltas do not lose the ordering.
  std::vector<double> dist(static_cast<size_t>(n * n), 0.0);
  for (int64_t a = 0; a < n; ++a) {
    for (int64_t b = a + 1; b < n; ++b) {
      double d = 0.0;
      for (int64_t j = 0; j < size; ++j) {
        const double diff = static_cast<double>(updates[a].delta[j]) - updates[b].delta[j];
        d += diff * diff;
      }
      dist[a * n + b] = d;
      dist[b * n + a] = d;
    }
  }
  const int64_t neighbours = n - f - 2;
  int64_t best = 0;
  double best_score = 0.0;
  std::vector<double> row;
  for (int64_t a = 0; a < n; ++a) {
    row.clear();
    for (int64_t b = 0; b < n; ++b) {
      if (b != a) row.push_back(dist[a * n + b]);
    }
    std::partial_sort(row.begin(), row.begin() + neighbours, row.end());
    double score = 0.0;
    for (int64_t k = 0; k < neighbours; ++k) score += row[k];
    if (a == 0 || score < best_score) {
      best = a;
      best_score = score;
    }
  }
  return best;
}

Result<std::vector<float>> Krum(std::span<const ModelUpdate> updates, int64_t f) {
  HML_ASSIGN_OR_RETURN(int64_t index, KrumSelect(updates, f));
  return updates[index].delta;
}

}  // namespace hml::fl

// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/data/partition.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>

#include "src/data/dataset.h"

namespace hml::data {
namespace {

// A double uniform in (0, 1): never 0, so logs and powers are finite.
double OpenUniform(std::mt19937_64& rng) {
  return (static_cast<double>(rng() >> 11) + 0.5) * 0x1.0p-53;
}

double StandardNormal(std::mt19937_64& rng) {
  const double u1 = OpenUniform(rng);
  const double u2 = OpenUniform(rng);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

}  // namespace

Status DirichletOptions::Validate() const {
  if (!(alpha > 0.0) || !std::isfinite(alpha)) {
    return InvalidArgumentError("Dirichlet alpha must be a positive finite number, got " +
                                std::to_string(alpha));
  }
  if (min_samples < 0) {
    return InvalidArgumentError("min_samples must be >= 0, got " + std::to_string(min_samples));
  }
  if (max_attempts < 1) {
    return InvalidArgumentError("max_attempts must be >= 1, got " + std::to_string(max_attempts));
  }
  return Status::Ok();
}

double GammaVariate(std::mt19937_64& rng, double shape) {
  if (shape < 1.0) {
    // Gamma(a) = Gamma(a + 1) * U^(1/a).
    const double g = GammaVariate(rng, shape + 1.0);
    return g * std::pow(OpenUniform(rng), 1.0 / shape);
  }
  const double d = shape - 1.0 / 3.0;
  const double c = 1.0 / std::sqrt(9.0 * d);
  for (;;) {
    double x = 0.0;
    double v = 0.0;
    do {
      x = StandardNormal(rng);
      v = 1.0 + c * x;
    } while (v <= 0.0);
    v = v * v * v;
    const double u = OpenUniform(rng);
    if (u < 1.0 - 0.0331 * x * x * x * x) return d * v;
    if (std::log(u) < 0.5 * x * x + d * (1.0 - v + std::log(v))) return d * v;
  }
}

Result<std::vector<std::vector<int64_t>>> DirichletPartition(std::span<const int64_t> labels,
                                                             int64_t num_classes, int num_clients,
                                                             const DirichletOptions& options) {
  HML_RETURN_IF_ERROR(options.Validate());
  if (num_clients < 1) {
    return InvalidArgumentError("num_clients must be >= 1, got " + std::to_string(num_clients));
  }
  if (num_classes < 1) {
    return InvalidArgumentError("num_classes must be >= 1, got " + std::to_string(num_classes));
  }
  std::vector<std::vector<int64_t>> by_class(static_cast<size_t>(num_classes));
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] < 0 || labels[i] >= num_classes) {
      return InvalidArgumentError("label " + std::to_string(labels[i]) + " of sample " +
                                  std::to_string(i) + " is outside [0, " +
                                  std::to_string(num_classes) + ")");
    }
    by_class[static_cast<size_t>(labels[i])].push_back(static_cast<int64_t>(i));
  }
  std::mt19937_64 rng(options.seed);
  // Each class is dealt in a seeded order, so which samples of a class a client gets is random
  // too, not only how many.
  for (std::vector<int64_t>& members : by_class) {
    const std::vector<int64_t> order = ShuffledIndices(static_cast<int64_t>(members.size()), rng);
    std::vector<int64_t> shuffled(members.size());
    for (size_t j = 0; j < order.size(); ++j) {
      shuffled[j] = members[static_cast<size_t>(order[j])];
    }
    members = std::move(shuffled);
  }
  const size_t n = static_cast<size_t>(num_clients);
  int64_t smallest = 0;
  for (int attempt = 0; attempt < options.max_attempts; ++attempt) {
    std::vector<std::vector<int64_t>> clients(n);
    for (const std::vector<int64_t>& members : by_class) {
      std::vector<double> p(n);
      double total = 0.0;
      for (double& x : p) {
        x = GammaVariate(rng, options.alpha);
        total += x;
      }
      // Split points at the rounded cumulative proportions: every sample is dealt exactly once.
      const double count = static_cast<double>(members.size());
      double cumulative = 0.0;
      size_t begin = 0;
      for (size_t k = 0; k < n; ++k) {
        cumulative += p[k];
        size_t end = k + 1 == n ? members.size()
                                : static_cast<size_t>(std::llround(cumulative / total * count));
        end = std::clamp(end, begin, members.size());
        clients[k].insert(clients[k].end(), members.begin() + static_cast<std::ptrdiff_t>(begin),
                          members.begin() + static_cast<std::ptrdiff_t>(end));
        begin = end;
      }
    }
    smallest = static_cast<int64_t>(labels.size());
    for (const std::vector<int64_t>& c : clients) {
      smallest = std::min(smallest, static_cast<int64_t>(c.size()));
    }
    if (smallest >= options.min_samples) {
      for (std::vector<int64_t>& c : clients) std::sort(c.begin(), c.end());
      return clients;
    }
  }
  return FailedPreconditionError(
      "no Dirichlet(" + std::to_string(options.alpha) + ") draw in " +
      std::to_string(options.max_attempts) + " attempts gave each of " +
      std::to_string(num_clients) + " clients at least " + std::to_string(options.min_samples) +
      " of " + std::to_string(labels.size()) + " samples (smallest client in the last draw: " +
      std::to_string(smallest) + "); lower min_samples, raise alpha or use fewer clients");
}

Result<std::vector<std::vector<int64_t>>> IidPartition(int64_t num_samples, int num_clients,
                                                       uint64_t seed) {
  if (num_clients < 1) {
    return InvalidArgumentError("num_clients must be >= 1, got " + std::to_string(num_clients));
  }
  if (num_samples < 0) {
    return InvalidArgumentError("num_samples must be >= 0, got " + std::to_string(num_samples));
  }
  std::mt19937_64 rng(seed);
  const std::vector<int64_t> order = ShuffledIndices(num_samples, rng);
  std::vector<std::vector<int64_t>> clients(static_cast<size_t>(num_clients));
  for (size_t i = 0; i < order.size(); ++i) {
    clients[i % clients.size()].push_back(order[i]);
  }
  for (std::vector<int64_t>& c : clients) std::sort(c.begin(), c.end());
  return clients;
}

}  // namespace hml::data

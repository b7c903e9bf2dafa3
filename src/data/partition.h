// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Splitting a labelled dataset across simulated clients, the way federated-learning benchmarks
// make their data non-IID: IID (a seeded shuffle dealt round-robin) and the Dirichlet label
// partition of Hsu et al. 2019 ("Measuring the effects of non-identical data distribution"),
// the scheme Flower's DirichletPartitioner and most FL papers use. For each class c a vector
// p_c ~ Dirichlet(alpha, ..., alpha) over the clients is drawn and the samples of class c are
// dealt to the clients in those proportions. Small alpha (0.1-0.5) gives each client a few
// dominant classes; alpha -> infinity approaches IID.
//
// Randomness is our own (Marsaglia-Tsang gamma variates on std::mt19937_64, uniform doubles
// from its raw output), not <random>'s distributions, so a seed gives the same partition with
// every standard library. A draw that leaves some client with fewer than `min_samples` samples
// is redrawn (a fresh set of proportions from the same generator), as Flower does, up to
// `max_attempts` times.
#ifndef HML_SRC_DATA_PARTITION_H_
#define HML_SRC_DATA_PARTITION_H_

#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "hml/status.h"

namespace hml::data {

struct DirichletOptions {
  // Concentration of the per-class Dirichlet over clients; > 0. Default: 0.3.
  double alpha = 0.3;
  // Every client gets at least this many samples, else the draw is repeated. Default: 10.
  int64_t min_samples = 10;
  // Draws before giving up with kFailedPrecondition. Default: 100.
  int max_attempts = 100;
  // Default: 0.
  uint64_t seed = 0;

  // kInvalidArgument naming the field for alpha <= 0 or not finite, a negative min_samples, or
  // max_attempts < 1.
  Status Validate() const;
};

// Sample indices of each client (ascending within a client); every index of `labels` is in
// exactly one client. kInvalidArgument for num_clients < 1, a label outside
// [0, num_classes) or num_classes < 1; kFailedPrecondition when no draw in max_attempts gives
// every client min_samples (e.g. more clients than samples / min_samples).
Result<std::vector<std::vector<int64_t>>> DirichletPartition(std::span<const int64_t> labels,
                                                             int64_t num_classes, int num_clients,
                                                             const DirichletOptions& options);

// Seeded shuffle of 0..num_samples-1 dealt round-robin: client sizes differ by at most one.
// kInvalidArgument for num_clients < 1 or num_samples < 0.
Result<std::vector<std::vector<int64_t>>> IidPartition(int64_t num_samples, int num_clients,
                                                       uint64_t seed);

// A Gamma(shape, 1) variate (Marsaglia and Tsang 2000; shape < 1 by the boost
// Gamma(shape + 1) * U^(1/shape)). REQUIRES: shape > 0.
double GammaVariate(std::mt19937_64& rng, double shape);

}  // namespace hml::data

#endif  // HML_SRC_DATA_PARTITION_H_

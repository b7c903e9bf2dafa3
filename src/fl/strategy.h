// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Server strategies: how a round's accepted updates become the next global model.
//
// A strategy is two steps (Reddi et al. 2021, "Adaptive Federated Optimization"):
//   1. aggregate the clients' deltas into one delta d: by default the mean weighted by example
//      counts, or one of the robust aggregators of robust.h;
//   2. a server optimizer treats -d as a pseudo-gradient and moves the global weights w:
//        FedAvg, FedProx:  w += lr * d
//        FedAvgM:          v = momentum * v + d;                     w += lr * v
//        FedAdam:          m = b1 * m + (1 - b1) * d;  v = b2 * v + (1 - b2) * d^2
//                          w += lr * m / (sqrt(v) + tau)
//        FedYogi:          as FedAdam but v = v - (1 - b2) * d^2 * sign(v - d^2)
//      m and v start at zero, with no bias correction, as in the paper's Algorithm 2.
//
// FedProx differs from FedAvg only on the clients: each client adds (mu / 2) * ||w - w_global||^2
// to its local loss. The server sends `proximal_mu` with the round's configuration and
// aggregates exactly like FedAvg.
//
// A delta is "client weights after local training minus the global weights it started from",
// so FedAvg with lr 1 sets the global model to the weighted mean of the clients' models.
//
// Not thread-safe: a strategy holds optimizer state across rounds (FedAvgM, FedAdam, FedYogi)
// and belongs to one federated run; Apply() is called once per round, in order.
#ifndef HML_SRC_FL_STRATEGY_H_
#define HML_SRC_FL_STRATEGY_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "hml/status.h"
#include "src/fl/update.h"

namespace hml::fl {

enum class StrategyKind { kFedAvg, kFedProx, kFedAvgM, kFedAdam, kFedYogi };
enum class AggregatorKind { kWeightedMean, kCoordinateMedian, kTrimmedMean, kKrum };

// "FedAvg", "FedProx", ... and "weighted_mean", "median", "trimmed_mean", "krum".
std::string_view StrategyKindName(StrategyKind kind);
std::string_view AggregatorKindName(AggregatorKind kind);

struct StrategyOptions {
  // Default: kFedAvg.
  StrategyKind kind = StrategyKind::kFedAvg;
  // How deltas are combined before the server optimizer. The robust ones cannot be used in a
  // secure-aggregation round (see robust.h). Default: kWeightedMean.
  AggregatorKind aggregator = AggregatorKind::kWeightedMean;

  // Server learning rate. 1 makes FedAvg the plain weighted average of client models; adaptive
  // servers need a smaller one (Reddi et al. tune it over 10^-3..10^0; 0.1 is Flower's FedAdam
  // default). Default: 1.0 for FedAvg/FedProx/FedAvgM, 0.1 for FedAdam/FedYogi (see
  // DefaultStrategyOptions); must be > 0.
  double server_lr = 1.0;
  // FedAvgM's server momentum. Default: 0.9 (Hsu et al. 2019); in [0, 1).
  double momentum = 0.9;
  // FedAdam/FedYogi first- and second-moment decay. Defaults: 0.9 and 0.99 (Reddi et al.);
  // each in [0, 1).
  double beta1 = 0.9;
  double beta2 = 0.99;
  // FedAdam/FedYogi adaptivity: added to sqrt(v); bounds the step where v is tiny.
  // Default: 1e-3 (Reddi et al.'s usual choice); must be > 0.
  double tau = 1e-3;
  // FedProx's proximal coefficient mu. Client-side only: sent to the clients in the round
  // configuration, unused by the server. Default: 0.01; must be >= 0 (0 is FedAvg's client).
  double proximal_mu = 0.01;
  // TrimmedMean's fraction trimmed from each end per coordinate. Default: 0.1; in [0, 0.5).
  double trim_fraction = 0.1;
  // Krum's number of Byzantine clients tolerated; a round needs >= krum_f + 3 updates.
  // Default: 1; must be >= 0.
  int64_t krum_f = 1;

  // kInvalidArgument naming the first field out of range.
  Status Validate() const;
};

// The documented defaults for `kind` (server_lr 0.1 for the adaptive strategies).
StrategyOptions DefaultStrategyOptions(StrategyKind kind);

// The example-weighted mean of the deltas (FedAvg's aggregate). kInvalidArgument for no updates,
// different sizes, or a non-positive example count.
Result<std::vector<float>> WeightedMean(std::span<const ModelUpdate> updates);

// Aggregates with `options.aggregator`.
Result<std::vector<float>> Aggregate(std::span<const ModelUpdate> updates,
                                     const StrategyOptions& options);

class Strategy {
 public:
  // kInvalidArgument for invalid options.
  static Result<std::unique_ptr<Strategy>> Create(const StrategyOptions& options);

  // Returns the next global weights from the current ones and the round's accepted updates.
  // kInvalidArgument (and no state change) if there are no updates or a delta's size differs
  // from `global`'s; a round that cannot be applied leaves the strategy as it was.
  Result<std::vector<float>> Apply(std::span<const float> global,
                                   std::span<const ModelUpdate> updates);

  const StrategyOptions& options() const { return options_; }

 private:
  explicit Strategy(const StrategyOptions& options) : options_(options) {}

  StrategyOptions options_;
  // Optimizer state, sized on the first Apply(): FedAvgM's velocity, FedAdam/Yogi's m and v.
  std::vector<double> m_;
  std::vector<double> v_;
};

}  // namespace hml::fl

#endif  // HML_SRC_FL_STRATEGY_H_

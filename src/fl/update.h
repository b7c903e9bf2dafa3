// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// A client's model update and the server's check of it before aggregation.
//
// An update is the model delta (client weights after local training minus the round's global
// weights) as one flat float vector, plus the layout that maps the vector back to the model's
// named parameter tensors (in order, row-major), the number of local examples it was trained on
// (FedAvg's weight), the round it answers and the client that sent it. A flat vector keeps the
// strategies, robust aggregators, compression and secure aggregation simple: they are all
// coordinate-wise over one span.
//
// UpdateValidator is the gate between the transport and the strategy: an update is accepted
// only if its layout equals the round's, every value is finite, its L2 norm is within the bound,
// it names the current round and it is the first update from its client in this round (a replay
// or a duplicate is rejected). Every rejection is counted by reason; the counters are reported
// with the round. Pure logic: no clock, no I/O, no threads.
#ifndef HML_SRC_FL_UPDATE_H_
#define HML_SRC_FL_UPDATE_H_

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "hml/status.h"

namespace hml::fl {

// One named parameter tensor of the model, e.g. {"fc.weight", {10, 64}}.
struct TensorLayout {
  std::string name;
  std::vector<int64_t> shape;

  friend bool operator==(const TensorLayout&, const TensorLayout&) = default;
};

// The model's parameters in the order they are laid out in a flat update.
using UpdateLayout = std::vector<TensorLayout>;

// Number of floats a flat vector with `layout` holds. kInvalidArgument for a negative dimension
// or an overflow of int64 (the message names the tensor).
Result<int64_t> LayoutNumElements(const UpdateLayout& layout);

struct ModelUpdate {
  std::string client_id;
  int64_t round_id = 0;
  // Number of local training examples; FedAvg weights updates by it. Must be > 0.
  int64_t num_examples = 0;
  UpdateLayout layout;
  // The model delta, LayoutNumElements(layout) floats.
  std::vector<float> delta;
};

// L2 norm of `values`, accumulated in double.
double L2Norm(const std::vector<float>& values);

struct ValidatorOptions {
  // Largest accepted L2 norm of an update's delta. Bounds how far one client can move the model;
  // with central DP the clipping norm is usually this value or below. 0 means no bound.
  // Default: 0 (no bound).
  double max_l2_norm = 0.0;

  // kInvalidArgument if max_l2_norm is negative or not finite.
  Status Validate() const;
};

// Rejections of one round, by reason. A rejected update is counted under the first check it
// fails, in the order of the fields.
struct RejectionCounts {
  int64_t round_mismatch = 0;   // names another round (stale or from the future)
  int64_t duplicate = 0;        // a second update from a client already accepted this round
  int64_t bad_examples = 0;     // num_examples <= 0
  int64_t layout_mismatch = 0;  // layout differs from the round's, or delta has the wrong size
  int64_t non_finite = 0;       // a NaN or an Inf in the delta
  int64_t norm_exceeded = 0;    // L2 norm above ValidatorOptions::max_l2_norm

  int64_t total() const {
    return round_mismatch + duplicate + bad_examples + layout_mismatch + non_finite + norm_exceeded;
  }
};

// Checks the updates of one round. Not thread-safe: the coordinator owns one per round and
// calls Check() from its round loop.
class UpdateValidator {
 public:
  // kInvalidArgument for invalid options or an invalid layout.
  static Result<UpdateValidator> Create(UpdateLayout layout, int64_t round_id,
                                        const ValidatorOptions& options = {});

  // OK if `update` may be aggregated; it is then recorded, so a replay of it, or any other
  // update from the same client in this round, is rejected. Otherwise kInvalidArgument
  // (kAlreadyExists for a duplicate, kFailedPrecondition for a wrong round) with a message that
  // names the client and the reason, and the matching counter goes up.
  Status Check(const ModelUpdate& update);

  // Starts the next round: new round id, forgets which clients sent updates, resets counters.
  void StartRound(int64_t round_id);

  int64_t round_id() const { return round_id_; }
  int64_t num_accepted() const { return static_cast<int64_t>(accepted_clients_.size()); }
  const RejectionCounts& rejections() const { return rejections_; }
  const UpdateLayout& layout() const { return layout_; }

 private:
  UpdateValidator(UpdateLayout layout, int64_t num_elements, int64_t round_id,
                  const ValidatorOptions& options);

  UpdateLayout layout_;
  int64_t num_elements_;
  int64_t round_id_;
  ValidatorOptions options_;
  std::set<std::string> accepted_clients_;
  RejectionCounts rejections_;
};

}  // namespace hml::fl

#endif  // HML_SRC_FL_UPDATE_H_

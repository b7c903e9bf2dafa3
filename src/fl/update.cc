// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/fl/update.h"

#include <cmath>
#include <limits>
#include <string>
#include <utility>

namespace hml::fl {
namespace {

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) out += ",";
    out += std::to_string(shape[i]);
  }
  return out + "]";
}

// Describes the first difference between two layouts, for the rejection message.
std::string LayoutDifference(const UpdateLayout& want, const UpdateLayout& got) {
  if (want.size() != got.size()) {
    return std::to_string(got.size()) + " tensors, the round's model has " +
           std::to_string(want.size());
  }
  for (size_t i = 0; i < want.size(); ++i) {
    if (want[i] == got[i]) continue;
    return "tensor " + std::to_string(i) + " is '" + got[i].name + "' " +
           ShapeString(got[i].shape) + ", the round's model has '" + want[i].name + "' " +
           ShapeString(want[i].shape);
  }
  return "layouts are equal";
}

}  // namespace

Result<int64_t> LayoutNumElements(const UpdateLayout& layout) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  int64_t total = 0;
  for (const TensorLayout& tensor : layout) {
    int64_t count = 1;
    for (int64_t dim : tensor.shape) {
      if (dim < 0) {
        return InvalidArgumentError("tensor '" + tensor.name + "': negative dimension in shape " +
                                    ShapeString(tensor.shape));
      }
      if (dim != 0 && count > kMax / dim) {
        return InvalidArgumentError("tensor '" + tensor.name + "': shape " +
                                    ShapeString(tensor.shape) + " overflows int64");
      }
      count *= dim;
    }
    if (total > kMax - count) return InvalidArgumentError("layout size overflows int64");
    total += count;
  }
  return total;
}

double L2Norm(const std::vector<float>& values) {
  double sum = 0.0;
  for (float v : values) sum += static_cast<double>(v) * v;
  return std::sqrt(sum);
}

Status ValidatorOptions::Validate() const {
  if (!std::isfinite(max_l2_norm) || max_l2_norm < 0.0) {
    return InvalidArgumentError("ValidatorOptions.max_l2_norm must be finite and >= 0, got " +
                                std::to_string(max_l2_norm));
  }
  return Status::Ok();
}

UpdateValidator::UpdateValidator(UpdateLayout layout, int64_t num_elements, int64_t round_id,
                                 const ValidatorOptions& options)
    : layout_(std::move(layout)),
      num_elements_(num_elements),
      round_id_(round_id),
      options_(options) {}

Result<UpdateValidator> UpdateValidator::Create(UpdateLayout layout, int64_t round_id,
                                                const ValidatorOptions& options) {
  HML_RETURN_IF_ERROR(options.Validate());
  HML_ASSIGN_OR_RETURN(int64_t num_elements, LayoutNumElements(layout));
  return UpdateValidator(std::move(layout), num_elements, round_id, options);
}

void UpdateValidator::StartRound(int64_t round_id) {
  round_id_ = round_id;
  accepted_clients_.clear();
  rejections_ = RejectionCounts{};
}

Status UpdateValidator::Check(const ModelUpdate& update) {
  const std::string who = "update from client '" + update.client_id + "'";
  if (update.round_id != round_id_) {
    ++rejections_.round_mismatch;
    return FailedPreconditionError(who + ": names round " + std::to_string(update.round_id) +
                                   ", the current round is " + std::to_string(round_id_));
  }
  if (accepted_clients_.count(update.client_id) > 0) {
    ++rejections_.duplicate;
    return AlreadyExistsError(who + ": the client already sent an update in round " +
                              std::to_string(round_id_) + " (duplicate or replay)");
  }
  if (update.num_examples <= 0) {
    ++rejections_.bad_examples;
    return InvalidArgumentError(who + ": num_examples is " + std::to_string(update.num_examples) +
                                ", must be > 0");
  }
  if (update.layout != layout_) {
    ++rejections_.layout_mismatch;
    return InvalidArgumentError(who +
                                ": layout mismatch: " + LayoutDifference(layout_, update.layout));
  }
  if (static_cast<int64_t>(update.delta.size()) != num_elements_) {
    ++rejections_.layout_mismatch;
    return InvalidArgumentError(who + ": delta holds " + std::to_string(update.delta.size()) +
                                " values, the layout needs " + std::to_string(num_elements_));
  }
  double sum = 0.0;
  for (size_t i = 0; i < update.delta.size(); ++i) {
    const float v = update.delta[i];
    if (!std::isfinite(v)) {
      ++rejections_.non_finite;
      return InvalidArgumentError(who + ": value " + std::to_string(i) + " is " +
                                  (std::isnan(v) ? "NaN" : "infinite"));
    }
    sum += static_cast<double>(v) * v;
  }
  const double norm = std::sqrt(sum);
  if (options_.max_l2_norm > 0.0 && norm > options_.max_l2_norm) {
    ++rejections_.norm_exceeded;
    return InvalidArgumentError(who + ": L2 norm " + std::to_string(norm) + " exceeds the bound " +
                                std::to_string(options_.max_l2_norm));
  }
  accepted_clients_.insert(update.client_id);
  return Status::Ok();
}

}  // namespace hml::fl

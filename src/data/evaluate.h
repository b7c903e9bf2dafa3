// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// A classifier exported to ONNX, measured on a dataset in our own runtime: top-1 accuracy and the
// predicted class of every sample (so two variants of a model can be compared sample by sample,
// e.g. int8 against fp32). Everything that scores a model outside LibTorch uses this: the
// compression report, and later the device trainer and the fleet simulator.
#ifndef HML_SRC_DATA_EVALUATE_H_
#define HML_SRC_DATA_EVALUATE_H_

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "hml/runtime/model.h"
#include "hml/status.h"
#include "src/data/dataset.h"

namespace hml::data {

struct EvaluateOptions {
  // Samples per Run() when the model's batch dimension is dynamic; a fixed batch dimension
  // wins. Default: 64.
  int64_t batch_size = 64;
  // Evaluate only the first this many samples; 0 = all. Default: 0.
  int64_t max_samples = 0;
  // Default: "xnnpack".
  std::string backend = "xnnpack";
  // Default: 1.
  int num_threads = 1;

  // kInvalidArgument for a batch size < 1 or a negative max_samples.
  Status Validate() const;
};

struct Evaluation {
  int64_t samples = 0;
  double accuracy = 0.0;             // in [0, 1]
  std::vector<int32_t> predictions;  // argmax of the first output, one per sample
  std::vector<float> top_values;     // the value at that argmax (top-1 probability for softmax)
  std::vector<int32_t> labels;       // the dataset's label of each sample
};

// Runs `model` (one float input taking a batch of samples, first output [batch, classes]) on the
// samples of `dataset`. A first output of higher rank ([batch, ...]) is argmaxed over all of a
// sample's values, which still lets two variants of any model be compared. Each sample's features
// are fed in the model input's per-sample shape when the element counts agree (an MLP taking
// [N,784] evaluates [1,28,28] images). Errors: kInvalidArgument for bad options, an empty dataset,
// a model with other than one input, a non-float input, an input whose per-sample size differs from
// the dataset's (both named), or an output that is not [batch, classes]; errors of the runtime and
// the dataset as they come.
Result<Evaluation> EvaluateModel(const Model& model, const Dataset& dataset,
                                 const EvaluateOptions& options = {});

// Fraction of positions where `a` and `b` agree. kInvalidArgument when their sizes differ or are 0.
Result<double> Agreement(const std::vector<int32_t>& a, const std::vector<int32_t>& b);

// A cascade of a small model and a large one (the Router's cascade policy), scored offline: a
// sample goes to the large model when the small one's top-1 value is below `threshold`.
struct CascadePoint {
  double threshold = 0;
  double accuracy = 0;  // of the cascade's answers, in [0, 1]
  double offload = 0;   // share of samples sent to the large model, in [0, 1]
};

// The cascade's accuracy and offload for each threshold, from evaluations of both models on the
// same samples. kInvalidArgument when they do not cover the same samples.
Result<std::vector<CascadePoint>> CascadeCurve(const Evaluation& small, const Evaluation& large,
                                               std::span<const double> thresholds);

// The point with the least offload whose accuracy reaches `target_accuracy` among those offloading
// at most `max_offload`; when none reaches it, the most accurate of those. kNotFound when every
// point offloads more than max_offload; kInvalidArgument for an empty curve.
Result<CascadePoint> ChooseCascadeThreshold(std::span<const CascadePoint> curve,
                                            double target_accuracy, double max_offload);

}  // namespace hml::data

#endif  // HML_SRC_DATA_EVALUATE_H_

// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/data/evaluate.h"

#include <algorithm>
#include <map>
#include <memory>

#include "hml/runtime/session.h"

namespace hml::data {

Status EvaluateOptions::Validate() const {
  if (batch_size < 1) return InvalidArgumentError("evaluate: batch size must be >= 1");
  if (max_samples < 0) return InvalidArgumentError("evaluate: max_samples must be >= 0");
  return Status::Ok();
}

Result<Evaluation> EvaluateModel(const Model& model, const Dataset& dataset,
                                 const EvaluateOptions& options) {
  HML_RETURN_IF_ERROR(options.Validate());
  const int64_t total =
      options.max_samples > 0 ? std::min(options.max_samples, dataset.size()) : dataset.size();
  if (total == 0) return InvalidArgumentError("evaluate: the dataset is empty");
  const std::vector<TensorSpec> inputs = model.inputs();
  if (inputs.size() != 1) {
    return InvalidArgumentError("evaluate: the model must have exactly one input, it has " +
                                std::to_string(inputs.size()));
  }
  const TensorSpec& in = inputs[0];
  if (in.dtype != DType::kFloat32) {
    return InvalidArgumentError("evaluate: input '" + in.name + "' is " +
                                std::string(DTypeName(in.dtype)) + ", expected float32");
  }
  // The per-sample shape: the model's when fully known, else the dataset's.
  Shape sample(dataset.feature_shape());
  if (in.shape.size() >= 2) {
    Shape dims(in.shape.begin() + 1, in.shape.end());
    int64_t n = 1;
    bool known = true;
    for (int64_t d : dims) {
      known = known && d > 0;
      n *= d;
    }
    if (known && n != dataset.feature_size()) {
      return InvalidArgumentError("evaluate: input '" + in.name + "' " + ShapeToString(in.shape) +
                                  " takes " + std::to_string(n) + " values per sample, the " +
                                  "dataset's samples " + ShapeToString(dataset.feature_shape()) +
                                  " have " + std::to_string(dataset.feature_size()));
    }
    if (known) sample = dims;
  }
  const int64_t batch = !in.shape.empty() && in.shape[0] > 0 ? in.shape[0] : options.batch_size;
  Shape batch_shape{batch};
  batch_shape.insert(batch_shape.end(), sample.begin(), sample.end());

  SessionOptions session_options;
  session_options.backend = options.backend;
  session_options.num_threads = options.num_threads;
  session_options.input_shapes[in.name] = batch_shape;
  HML_ASSIGN_OR_RETURN(std::unique_ptr<Session> session, Session::Create(model, session_options));
  const TensorSpec& out = session->output_spec(0);
  if (out.shape.size() < 2 || out.shape[0] != batch || out.dtype != DType::kFloat32) {
    return InvalidArgumentError("evaluate: output '" + out.name + "' is " +
                                std::string(DTypeName(out.dtype)) + " " + ShapeToString(out.shape) +
                                ", expected float32 [" + std::to_string(batch) + ", classes]");
  }
  const int64_t classes = session->output(0).num_elements() / batch;
  const int64_t fs = dataset.feature_size();
  Evaluation result;
  result.samples = total;
  result.predictions.reserve(static_cast<size_t>(total));
  result.top_values.reserve(static_cast<size_t>(total));
  result.labels.reserve(static_cast<size_t>(total));
  int64_t correct = 0;
  for (int64_t begin = 0; begin < total; begin += batch) {
    const int64_t n = std::min(batch, total - begin);
    std::span<float> x = session->input(0).values<float>();
    // A short last batch is padded with zeros; those rows' predictions are ignored.
    std::fill(x.begin() + n * fs, x.end(), 0.0f);
    std::vector<int64_t> labels(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      HML_ASSIGN_OR_RETURN(
          labels[static_cast<size_t>(i)],
          dataset.Get(begin + i, x.subspan(static_cast<size_t>(i * fs), static_cast<size_t>(fs))));
    }
    HML_RETURN_IF_ERROR(session->Run());
    const std::span<const float> y = session->output(0).values<float>();
    for (int64_t i = 0; i < n; ++i) {
      const float* row = y.data() + i * classes;
      const auto best = static_cast<int32_t>(std::max_element(row, row + classes) - row);
      result.predictions.push_back(best);
      result.top_values.push_back(row[best]);
      result.labels.push_back(static_cast<int32_t>(labels[static_cast<size_t>(i)]));
      correct += best == labels[static_cast<size_t>(i)];
    }
  }
  result.accuracy = static_cast<double>(correct) / static_cast<double>(total);
  return result;
}

Result<double> Agreement(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  if (a.size() != b.size() || a.empty()) {
    return InvalidArgumentError("agreement: prediction lists have " + std::to_string(a.size()) +
                                " and " + std::to_string(b.size()) + " entries");
  }
  size_t same = 0;
  for (size_t i = 0; i < a.size(); ++i) same += a[i] == b[i];
  return static_cast<double>(same) / static_cast<double>(a.size());
}

Result<std::vector<CascadePoint>> CascadeCurve(const Evaluation& small, const Evaluation& large,
                                               std::span<const double> thresholds) {
  const size_t n = small.predictions.size();
  if (n == 0 || large.predictions.size() != n || small.top_values.size() != n ||
      small.labels.size() != n || large.labels != small.labels) {
    return InvalidArgumentError(
        "cascade curve: the two evaluations must cover the same non-empty samples (" +
        std::to_string(n) + " and " + std::to_string(large.predictions.size()) + " predictions)");
  }
  std::vector<CascadePoint> curve;
  curve.reserve(thresholds.size());
  for (double threshold : thresholds) {
    size_t offloaded = 0, correct = 0;
    for (size_t i = 0; i < n; ++i) {
      // The router's rule: offload when the top-1 value is below the threshold.
      const bool offload = small.top_values[i] < threshold;
      offloaded += offload;
      correct += (offload ? large.predictions[i] : small.predictions[i]) == small.labels[i];
    }
    curve.push_back({threshold, static_cast<double>(correct) / static_cast<double>(n),
                     static_cast<double>(offloaded) / static_cast<double>(n)});
  }
  return curve;
}

Result<CascadePoint> ChooseCascadeThreshold(std::span<const CascadePoint> curve,
                                            double target_accuracy, double max_offload) {
  if (curve.empty()) return InvalidArgumentError("cascade threshold: the curve is empty");
  const CascadePoint* best = nullptr;           // the cheapest point reaching the target
  const CascadePoint* most_accurate = nullptr;  // within max_offload
  for (const CascadePoint& p : curve) {
    if (p.offload > max_offload) continue;
    if (p.accuracy >= target_accuracy && (best == nullptr || p.offload < best->offload)) best = &p;
    if (most_accurate == nullptr || p.accuracy > most_accurate->accuracy) most_accurate = &p;
  }
  if (best != nullptr) return *best;
  if (most_accurate != nullptr) return *most_accurate;
  return NotFoundError("cascade threshold: every threshold offloads more than " +
                       std::to_string(max_offload));
}

}  // namespace hml::data

// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/server/serving/split_inference.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <utility>
#include <variant>

#include "src/runtime/graph.h"

namespace hml::server {
namespace {

std::string Quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

// "[a, b]".
std::string NameList(const std::vector<std::string>& names) {
  std::string out = "[";
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += ", ";
    out += names[i];
  }
  return out + "]";
}

std::string SpecNames(const std::vector<TensorSpec>& specs) {
  std::vector<std::string> names;
  for (const TensorSpec& spec : specs) names.push_back(spec.name);
  return NameList(names);
}

std::string ParameterToString(const V2Parameter& parameter) {
  return std::visit(
      [](const auto& v) -> std::string {
        using V = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<V, bool>) {
          return v ? "true" : "false";
        } else if constexpr (std::is_same_v<V, std::string>) {
          return "\"" + v + "\"";
        } else {
          return std::to_string(v);
        }
      },
      parameter);
}

template <typename Q>
void Dequantize(const Tensor& q, float scale, int64_t zero_point, Tensor* out) {
  const Q* in = q.data<Q>();
  float* x = out->data<float>();
  const int64_t n = q.num_elements();
  const int32_t zero = static_cast<int32_t>(zero_point);
  for (int64_t i = 0; i < n; ++i) {
    x[i] = scale * static_cast<float>(static_cast<int32_t>(in[i]) - zero);
  }
}

}  // namespace

Result<Tensor> TensorForSpec(const TensorSpec& spec, NamedTensor& input, std::string_view model) {
  const DType have = input.tensor.dtype();
  const auto scale_it = input.parameters.find(kScaleParameter);
  const auto zero_it = input.parameters.find(kZeroPointParameter);
  const bool has_scale = scale_it != input.parameters.end();
  const bool has_zero = zero_it != input.parameters.end();
  if (have == spec.dtype && !has_scale && !has_zero) return std::move(input.tensor);
  const std::string w = std::string(model) + ": input " + Quoted(input.name);
  if (have == spec.dtype) {
    return InvalidArgumentError(
        w + " is " + std::string(V2DataTypeName(have)) + " like the tensor it feeds but has " +
        Quoted(has_scale ? kScaleParameter : kZeroPointParameter) +
        ": quantization parameters only describe INT8/UINT8 data sent for an FP32 tensor");
  }
  const bool quantized = have == DType::kInt8 || have == DType::kUInt8;
  if (spec.dtype != DType::kFloat32 || !quantized) {
    return InvalidArgumentError(
        w + " has datatype " + std::string(V2DataTypeName(have)) + ", expected " +
        std::string(V2DataTypeName(spec.dtype)) +
        (spec.dtype == DType::kFloat32 ? " (or INT8/UINT8 with 'scale' and 'zero_point')" : ""));
  }
  const std::string data = std::string(V2DataTypeName(have)) + " data for an FP32 tensor";
  if (!has_scale || !has_zero) {
    return InvalidArgumentError(w + " is " + data + " but has no parameter " +
                                Quoted(!has_scale ? kScaleParameter : kZeroPointParameter) +
                                "; quantized inputs need 'scale' and 'zero_point' (x = scale * "
                                "(q - zero_point))");
  }
  double scale = 0.0;
  if (const auto* d = std::get_if<double>(&scale_it->second)) {
    scale = *d;
  } else if (const auto* i = std::get_if<int64_t>(&scale_it->second)) {
    scale = static_cast<double>(*i);
  } else {
    return InvalidArgumentError(w + ": parameter 'scale' must be a number, got " +
                                ParameterToString(scale_it->second));
  }
  const float scale_f = static_cast<float>(scale);
  if (!std::isfinite(scale_f) || !(scale_f > 0.0f)) {
    return InvalidArgumentError(w + ": parameter 'scale' must be a finite number > 0, got " +
                                ParameterToString(scale_it->second));
  }
  const auto* zero = std::get_if<int64_t>(&zero_it->second);
  const int64_t low = have == DType::kInt8 ? -128 : 0;
  const int64_t high = have == DType::kInt8 ? 127 : 255;
  if (zero == nullptr || *zero < low || *zero > high) {
    return InvalidArgumentError(w + ": parameter 'zero_point' must be an integer in [" +
                                std::to_string(low) + ", " + std::to_string(high) + "] for " +
                                std::string(V2DataTypeName(have)) + ", got " +
                                ParameterToString(zero_it->second));
  }
  HML_ASSIGN_OR_RETURN(Tensor x, Tensor::Allocate(DType::kFloat32, input.tensor.shape()));
  if (have == DType::kInt8) {
    Dequantize<int8_t>(input.tensor, scale_f, *zero, &x);
  } else {
    Dequantize<uint8_t>(input.tensor, scale_f, *zero, &x);
  }
  return x;
}

Result<std::vector<Tensor>> InputsInSpecOrder(std::string_view model,
                                              const std::vector<TensorSpec>& specs,
                                              std::vector<NamedTensor>& inputs) {
  for (size_t i = 0; i < inputs.size(); ++i) {
    for (size_t j = i + 1; j < inputs.size(); ++j) {
      if (inputs[i].name == inputs[j].name) {
        return InvalidArgumentError(std::string(model) + ": input " + Quoted(inputs[i].name) +
                                    " appears twice");
      }
    }
  }
  std::vector<Tensor> ordered;
  ordered.reserve(specs.size());
  for (const TensorSpec& spec : specs) {
    auto it = std::find_if(inputs.begin(), inputs.end(),
                           [&](const NamedTensor& t) { return t.name == spec.name; });
    if (it == inputs.end()) {
      return InvalidArgumentError(std::string(model) + ": input " + Quoted(spec.name) +
                                  " is missing");
    }
    HML_ASSIGN_OR_RETURN(Tensor t, TensorForSpec(spec, *it, model));
    ordered.push_back(std::move(t));
  }
  if (inputs.size() != specs.size()) {
    for (const NamedTensor& input : inputs) {
      const bool known = std::any_of(specs.begin(), specs.end(), [&](const TensorSpec& spec) {
        return spec.name == input.name;
      });
      if (!known)
        return InvalidArgumentError(std::string(model) + " has no input " + Quoted(input.name));
    }
  }
  return ordered;
}

Result<Model> MakeTailModel(const Model& model, const std::vector<std::string>& cut) {
  HML_ASSIGN_OR_RETURN(Model tail, model.Slice(cut, {}));
  const std::vector<TensorSpec> model_inputs = model.inputs();
  bool batched = !model_inputs.empty();
  for (const TensorSpec& spec : model_inputs) {
    batched = batched && !spec.shape.empty() && spec.shape[0] < 0;
  }
  if (!batched) return tail;  // the batcher serves it request by request, at batch 1

  // Which dimension of each cut tensor follows the batch: infer the shapes again at batch 2.
  std::map<std::string, Shape> at_two;
  for (const TensorSpec& spec : model_inputs) {
    Shape shape = spec.shape;
    shape[0] = 2;
    for (size_t d = 1; d < shape.size(); ++d) shape[d] = std::max<int64_t>(shape[d], 1);
    at_two[spec.name] = std::move(shape);
  }
  HML_ASSIGN_OR_RETURN(Model tail_two, model.Slice(cut, {}, at_two));
  const std::vector<TensorSpec> one = tail.inputs();
  const std::vector<TensorSpec> two = tail_two.inputs();
  runtime::Graph graph = tail.graph();
  for (size_t i = 0; i < one.size() && i < two.size(); ++i) {
    const Shape& a = one[i].shape;
    const Shape& b = two[i].shape;
    bool follows = !a.empty() && a.size() == b.size() && a[0] == 1 && b[0] == 2;
    for (size_t d = 1; follows && d < a.size(); ++d) follows = a[d] == b[d];
    if (!follows) {
      return UnimplementedError("cut tensor " + Quoted(one[i].name) + " has shape " +
                                ShapeToString(a) + " at batch 1 and " + ShapeToString(b) +
                                " at batch 2; split requests need the batch in dimension 0");
    }
    graph.value(graph.inputs[i]).shape[0] = -1;
  }
  return Model::FromGraph(std::move(graph));
}

void BatcherMetricsObserver::Observe(const DynamicBatcher& batcher, ModelMetrics* metrics) {
  if (metrics == nullptr) return;
  const BatcherStats now = batcher.stats();
  std::lock_guard<std::mutex> lock(mu_);
  BatcherStats& seen = seen_;
  if (seen.batch_size_counts.size() < now.batch_size_counts.size()) {
    seen.batch_size_counts.resize(now.batch_size_counts.size(), 0);
  }
  for (size_t n = 1; n < now.batch_size_counts.size(); ++n) {
    for (int64_t i = seen.batch_size_counts[n]; i < now.batch_size_counts[n]; ++i) {
      metrics->ObserveBatchSize(static_cast<int64_t>(n));
    }
  }
  const int64_t new_batches = now.batches - seen.batches;
  if (new_batches > 0) {
    const double per_batch = static_cast<double>(now.compute_nanos_sum - seen.compute_nanos_sum) /
                             1e9 / static_cast<double>(new_batches);
    for (int64_t i = 0; i < new_batches; ++i) metrics->ObserveComputeTime(per_batch);
  }
  const int64_t new_computed = (now.completed + now.failed) - (seen.completed + seen.failed);
  if (new_computed > 0) {
    const double per_request = static_cast<double>(now.queue_nanos_sum - seen.queue_nanos_sum) /
                               1e9 / static_cast<double>(new_computed);
    for (int64_t i = 0; i < new_computed; ++i) metrics->ObserveQueueTime(per_request);
  }
  seen = now;
}

SplitTails::SplitTails(const Model& model, std::string what, BatchingOptions batching, Clock* clock,
                       int max_tails, ModelMetrics* metrics)
    : model_(model),
      what_(std::move(what)),
      batching_(std::move(batching)),
      clock_(clock),
      max_tails_(max_tails),
      metrics_(metrics) {}

SplitTails::~SplitTails() { DrainAll(); }

bool SplitTails::FindLocked(const std::vector<std::string>& cut, Acquired* acquired) {
  for (const std::shared_ptr<Tail>& tail : tails_) {
    if (tail->cut != cut) continue;
    tail->last_use = ++tick_;
    acquired->tail = tail;
    // Never blocks: Retire() locks exclusively only tails already out of tails_.
    acquired->submit_lock = std::shared_lock<std::shared_mutex>(tail->submit_mu);
    return true;
  }
  return false;
}

std::string SplitTails::Neither(const std::vector<std::string>& cut) const {
  return what_ + ": the inputs " + NameList(cut) + " are neither the model's inputs " +
         SpecNames(model_.inputs()) + " nor a complete cut through it";
}

Result<SplitTails::Acquired> SplitTails::Acquire(std::vector<std::string> cut) {
  std::sort(cut.begin(), cut.end());
  if (max_tails_ < 1) {
    return InvalidArgumentError(Neither(cut) + ": split inference is disabled on this server");
  }
  if (std::adjacent_find(cut.begin(), cut.end()) != cut.end()) {
    return InvalidArgumentError(what_ + ": input " +
                                Quoted(*std::adjacent_find(cut.begin(), cut.end())) +
                                " appears twice");
  }
  // Cheap checks first: only well-formed names reach Slice.
  const runtime::Graph& graph = model_.graph();
  for (const std::string& name : cut) {
    const runtime::ValueId id = graph.FindValue(name);
    if (id == runtime::kNoValue) {
      return InvalidArgumentError(Neither(cut) + ": " + Quoted(name) +
                                  " is not a tensor of the model");
    }
    if (graph.value(id).is_constant()) {
      return InvalidArgumentError(Neither(cut) + ": " + Quoted(name) +
                                  " is a constant of the model, not a computed tensor");
    }
  }

  Acquired acquired;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (FindLocked(cut, &acquired)) return acquired;
  }
  std::lock_guard<std::mutex> create_lock(create_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (FindLocked(cut, &acquired)) return acquired;  // created while we waited
  }
  Result<Model> tail_model = MakeTailModel(model_, cut);
  if (!tail_model.ok()) {
    if (tail_model.status().code() == StatusCode::kInvalidArgument) {
      return IncompleteCutError(cut, tail_model.status());
    }
    return Status(tail_model.status().code(), what_ + ": the tail after " + NameList(cut) + ": " +
                                                  std::string(tail_model.status().message()));
  }
  auto tail = std::make_shared<Tail>();
  tail->cut = cut;
  tail->what = what_ + " (split at " + NameList(cut) + ")";
  tail->inputs = tail_model->inputs();
  Result<std::unique_ptr<DynamicBatcher>> batcher =
      DynamicBatcher::Create(*tail_model, batching_, clock_);
  if (!batcher.ok()) {
    return Status(batcher.status().code(), what_ + ": the tail after " + NameList(cut) + ": " +
                                               std::string(batcher.status().message()));
  }
  tail->batcher = std::move(*batcher);

  std::lock_guard<std::mutex> lock(mu_);
  tail->last_use = ++tick_;
  tails_.push_back(tail);
  if (tails_.size() > static_cast<size_t>(max_tails_)) {
    auto victim = std::min_element(tails_.begin(), tails_.end(), [](const auto& a, const auto& b) {
      return a->last_use < b->last_use;
    });
    acquired.evicted = *victim;
    tails_.erase(victim);
    ++evictions_;
  }
  acquired.tail = tail;
  acquired.submit_lock = std::shared_lock<std::shared_mutex>(tail->submit_mu);
  return acquired;
}

Status SplitTails::IncompleteCutError(const std::vector<std::string>& cut,
                                      const Status& slice_error) {
  if (!analyzed_) {
    analyzed_ = true;
    Result<ModelAnalysis> analysis = model_.Analyze();
    if (analysis.ok()) {
      for (CutPoint& point : analysis->cut_points) {
        std::sort(point.tensors.begin(), point.tensors.end());
        cut_points_.push_back(std::move(point.tensors));
      }
    }
  }
  // The cut points that contain every given name, fewest missing tensors first.
  std::vector<std::pair<std::vector<std::string>, const std::vector<std::string>*>> candidates;
  for (const std::vector<std::string>& point : cut_points_) {
    if (!std::includes(point.begin(), point.end(), cut.begin(), cut.end())) continue;
    std::vector<std::string> missing;
    std::set_difference(point.begin(), point.end(), cut.begin(), cut.end(),
                        std::back_inserter(missing));
    candidates.emplace_back(std::move(missing), &point);
  }
  std::stable_sort(candidates.begin(), candidates.end(),
                   [](const auto& a, const auto& b) { return a.first.size() < b.first.size(); });
  std::string message = Neither(cut);
  constexpr size_t kMaxCandidates = 3;
  for (size_t i = 0; i < candidates.size() && i < kMaxCandidates; ++i) {
    message += i == 0 ? ": missing " : "; or ";
    const std::vector<std::string>& missing = candidates[i].first;
    for (size_t j = 0; j < missing.size(); ++j) {
      message += (j > 0 ? ", " : "") + Quoted(missing[j]);
    }
    message += " of the cut " + NameList(*candidates[i].second);
  }
  message += " (" + std::string(slice_error.message()) + ")";
  return InvalidArgumentError(message);
}

void SplitTails::Retire(std::shared_ptr<Tail> tail) {
  if (tail == nullptr) return;
  std::unique_lock<std::shared_mutex> lock(tail->submit_mu);
  tail->batcher->Drain();
  tail->observer.Observe(*tail->batcher, metrics_);
}

void SplitTails::DrainAll() {
  std::vector<std::shared_ptr<Tail>> tails;
  {
    std::lock_guard<std::mutex> lock(mu_);
    tails.swap(tails_);
  }
  for (std::shared_ptr<Tail>& tail : tails) Retire(std::move(tail));
}

std::vector<std::vector<std::string>> SplitTails::Cuts() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<const Tail*> sorted;
  for (const auto& tail : tails_) sorted.push_back(tail.get());
  std::sort(sorted.begin(), sorted.end(),
            [](const Tail* a, const Tail* b) { return a->last_use < b->last_use; });
  std::vector<std::vector<std::string>> cuts;
  for (const Tail* tail : sorted) cuts.push_back(tail->cut);
  return cuts;
}

int64_t SplitTails::evictions() const {
  std::lock_guard<std::mutex> lock(mu_);
  return evictions_;
}

}  // namespace hml::server

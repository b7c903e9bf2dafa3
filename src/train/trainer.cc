// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The training loop. One of the two translation units of hybridml that include torch headers
// (with torch_module.cc).
#include "src/train/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <optional>
#include <random>
#include <sstream>

#include "hml/env.h"
#include "src/train/torch_internal.h"

namespace hml::train {
namespace {

using runtime::ValueId;

// The per-sample shape the graph input wants, or the dataset's own shape.
std::vector<int64_t> SampleShape(const GraphModule::Impl& m, const data::Dataset& d) {
  const runtime::Value& in = m.graph.value(m.graph.inputs[0]);
  if (in.shape_known && in.shape.size() >= 2) {
    std::vector<int64_t> dims(in.shape.begin() + 1, in.shape.end());
    int64_t n = 1;
    bool known = true;
    for (int64_t v : dims) {
      known = known && v > 0;
      n *= v;
    }
    if (known && n == d.feature_size()) return dims;
  }
  return std::vector<int64_t>(d.feature_shape().begin(), d.feature_shape().end());
}

// Fills a batch [n, sample_shape...] and its labels from `indices`.
Status LoadBatch(const data::Dataset& d, const std::vector<int64_t>& indices, size_t begin, size_t end,
                 const std::vector<int64_t>& sample_shape, const data::AugmentOptions* augment,
                 std::mt19937_64* rng, torch::Tensor* x, torch::Tensor* y) {
  const int64_t n = static_cast<int64_t>(end - begin);
  std::vector<int64_t> sizes{n};
  sizes.insert(sizes.end(), sample_shape.begin(), sample_shape.end());
  *x = torch::empty(sizes, torch::kFloat);
  *y = torch::empty({n}, torch::kLong);
  const int64_t fs = d.feature_size();
  float* xp = x->data_ptr<float>();
  int64_t* yp = y->data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    std::span<float> sample(xp + i * fs, static_cast<size_t>(fs));
    HML_ASSIGN_OR_RETURN(yp[i], d.Get(indices[begin + static_cast<size_t>(i)], sample));
    if (augment != nullptr && augment->enabled()) {
      data::AugmentImage(sample, d.feature_shape(), *augment, *rng);
    }
  }
  return Status::Ok();
}

std::string ProgressBar(double fraction, int width = 20) {
  const int filled = static_cast<int>(fraction * width + 0.5);
  std::string bar = "[";
  for (int i = 0; i < width; ++i) bar += i < filled ? '=' : ' ';
  return bar + "]";
}

std::string Format(const char* fmt, auto... args) {
  char buf[256];
  std::snprintf(buf, sizeof(buf), fmt, args...);
  return buf;
}

double EpochLearningRate(const TrainOptions& o, int epoch) {
  switch (o.lr_schedule) {
    case LrSchedule::kConstant: return o.learning_rate;
    case LrSchedule::kCosine:
      return o.learning_rate * 0.5 *
             (1.0 + std::cos(M_PI * static_cast<double>(epoch - 1) /
                             static_cast<double>(o.epochs)));
    case LrSchedule::kStep:
      return o.learning_rate * std::pow(o.step_gamma, (epoch - 1) / o.step_epochs);
  }
  return o.learning_rate;
}

// Puts a module in eval mode and restores its previous mode on scope exit (also on errors).
class EvalModeGuard {
 public:
  explicit EvalModeGuard(GraphModule::Impl& m) : m_(m), was_training_(m.training) {
    m_.training = false;
  }
  ~EvalModeGuard() { m_.training = was_training_; }
  EvalModeGuard(const EvalModeGuard&) = delete;
  EvalModeGuard& operator=(const EvalModeGuard&) = delete;

 private:
  GraphModule::Impl& m_;
  bool was_training_;
};

std::string DimsToString(c10::IntArrayRef dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? "," : "") + std::to_string(dims[i]);
  return s + "]";
}

// The teacher of a distillation run: runs in eval mode without gradients on the student's
// batches, reshaped to the teacher's per-sample input shape.
class Teacher {
 public:
  // REQUIRES: `teacher` outlives this object.
  Teacher(GraphModule::Impl& teacher, const data::Dataset& d)
      : m_(teacher), eval_(teacher), sample_shape_(SampleShape(teacher, d)) {}

  // Computes the teacher's logits for every sample of `d` once, in evaluation batches, so that
  // BatchLogits() looks them up instead of running the teacher per training batch. Only valid
  // when training batches are not augmented (the teacher must see what the student sees).
  Status Precompute(const data::Dataset& d, int64_t batch_size) {
    std::vector<int64_t> order(static_cast<size_t>(d.size()));
    for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
    std::vector<torch::Tensor> parts;
    for (size_t b = 0; b < order.size(); b += static_cast<size_t>(batch_size)) {
      const size_t e = std::min(order.size(), b + static_cast<size_t>(batch_size));
      torch::Tensor x, y;
      HML_RETURN_IF_ERROR(LoadBatch(d, order, b, e, sample_shape_, nullptr, nullptr, &x, &y));
      HML_ASSIGN_OR_RETURN(torch::Tensor logits, Logits(x));
      parts.push_back(std::move(logits));
    }
    cache_ = torch::cat(parts, 0);
    return Status::Ok();
  }

  // The teacher's logits for the training batch `x` made of samples order[begin, end): looked up
  // after Precompute(), else computed now.
  Result<torch::Tensor> BatchLogits(const torch::Tensor& x, const std::vector<int64_t>& order,
                                    size_t begin, size_t end) {
    if (!cache_.defined()) return Logits(x);
    const torch::Tensor rows =
        torch::from_blob(const_cast<int64_t*>(order.data() + begin),
                         {static_cast<int64_t>(end - begin)}, torch::kLong);
    return cache_.index_select(0, rows);
  }

  // The teacher's logits for the student's input batch `x` ([n, ...], feature_size per sample).
  // Errors carry the context "teacher".
  Result<torch::Tensor> Logits(const torch::Tensor& x) {
    try {
      torch::NoGradGuard no_grad;
      std::vector<int64_t> sizes{x.size(0)};
      sizes.insert(sizes.end(), sample_shape_.begin(), sample_shape_.end());
      const torch::Tensor in = x.sizes() == c10::IntArrayRef(sizes) ? x : x.reshape(sizes);
      Result<std::vector<torch::Tensor>> out = m_.Run({in}, {m_.logits});
      if (!out.ok()) return out.status().WithContext("teacher");
      return std::move((*out)[0]);
    } catch (const std::exception& e) {
      return TorchErrorStatus(e, "teacher");
    }
  }

 private:
  GraphModule::Impl& m_;
  EvalModeGuard eval_;
  std::vector<int64_t> sample_shape_;
  torch::Tensor cache_;  // [dataset size, classes] after Precompute()
};

// Static checks of a distillation teacher against the student and the data: errors that the
// first batch would otherwise report from deep inside the teacher's forward pass.
Status CheckTeacher(const GraphModule::Impl& student, const GraphModule::Impl& teacher,
                    const data::Dataset& d) {
  if (&student == &teacher) {
    return InvalidArgumentError("train: teacher: the teacher is the student module itself");
  }
  if (teacher.graph.inputs.size() != 1) {
    return InvalidArgumentError("train: teacher: the teacher must have exactly one input, it has " +
                                std::to_string(teacher.graph.inputs.size()));
  }
  const runtime::Value& in = teacher.graph.value(teacher.graph.inputs[0]);
  if (in.shape_known && in.shape.size() >= 2) {
    int64_t n = 1;
    bool known = true;
    for (size_t i = 1; i < in.shape.size(); ++i) {
      known = known && in.shape[i] > 0;
      n *= in.shape[i];
    }
    if (known && n != d.feature_size()) {
      return InvalidArgumentError(
          "train: teacher: input '" + in.name + "' " + ShapeToString(in.shape) + " takes " +
          std::to_string(n) + " values per sample, the training samples " +
          ShapeToString(d.feature_shape()) + " have " + std::to_string(d.feature_size()));
    }
  }
  return Status::Ok();
}

// Runs the student (eval mode, no gradients: no state changes, no random numbers drawn) and the
// teacher on the first samples and checks that their logits have the same shape.
Status CheckTeacherLogits(GraphModule::Impl& student, Teacher& teacher,
                          const GraphModule::Impl& teacher_impl, const data::Dataset& d,
                          const std::vector<int64_t>& sample_shape) {
  std::vector<int64_t> first{0};
  if (d.size() > 1) first.push_back(1);
  torch::Tensor x, y;
  HML_RETURN_IF_ERROR(LoadBatch(d, first, 0, first.size(), sample_shape, nullptr, nullptr, &x, &y));
  torch::Tensor s, t;
  {
    EvalModeGuard eval(student);
    torch::NoGradGuard no_grad;
    HML_ASSIGN_OR_RETURN(std::vector<torch::Tensor> out, student.Run({x}, {student.logits}));
    s = out[0];
  }
  HML_ASSIGN_OR_RETURN(t, teacher.Logits(x));
  if (s.sizes() != t.sizes()) {
    return InvalidArgumentError(
        "train: teacher: logits '" + teacher_impl.graph.value(teacher_impl.logits).name +
        "' have shape " + DimsToString(t.sizes()) + " for " + std::to_string(first.size()) +
        " samples, the student's '" + student.graph.value(student.logits).name + "' have " +
        DimsToString(s.sizes()));
  }
  return Status::Ok();
}

Result<double> EvaluateImpl(GraphModule::Impl& m, const data::Dataset& d, int64_t batch_size) {
  if (d.size() == 0) return InvalidArgumentError("evaluate: the dataset is empty");
  EvalModeGuard eval(m);
  torch::NoGradGuard no_grad;
  std::vector<int64_t> order(static_cast<size_t>(d.size()));
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
  const std::vector<int64_t> shape = SampleShape(m, d);
  int64_t correct = 0;
  for (size_t b = 0; b < order.size(); b += static_cast<size_t>(batch_size)) {
    const size_t e = std::min(order.size(), b + static_cast<size_t>(batch_size));
    torch::Tensor x, y;
    HML_RETURN_IF_ERROR(LoadBatch(d, order, b, e, shape, nullptr, nullptr, &x, &y));
    HML_ASSIGN_OR_RETURN(std::vector<torch::Tensor> out, m.Run({x}, {m.logits}));
    torch::Tensor logits = out[0];
    correct += logits.argmax(1).eq(y).sum().item<int64_t>();
  }
  return static_cast<double>(correct) / static_cast<double>(d.size());
}

// By value id: the parameters that `trainable` (name prefixes; empty = all) leaves fixed.
Result<std::vector<bool>> FrozenValues(const GraphModule::Impl& m,
                                       const std::vector<std::string>& trainable) {
  std::vector<bool> frozen;
  if (trainable.empty()) return frozen;
  frozen.assign(m.graph.values.size(), false);
  std::vector<bool> used(trainable.size(), false);
  for (ValueId id : m.parameter_ids) {
    const std::string& name = m.graph.value(id).name;
    bool train = false;
    for (size_t k = 0; k < trainable.size(); ++k) {
      if (name.compare(0, trainable[k].size(), trainable[k]) == 0) train = used[k] = true;
    }
    frozen[static_cast<size_t>(id)] = !train;
  }
  for (size_t k = 0; k < trainable.size(); ++k) {
    if (used[k]) continue;
    std::string names;
    for (ValueId id : m.parameter_ids) names += (names.empty() ? "" : ", ") + m.graph.value(id).name;
    return InvalidArgumentError("train: no parameter name starts with '" + trainable[k] +
                                "' (parameters: " + names + ")");
  }
  return frozen;
}

// What resuming needs besides the module and the optimizer.
struct LoopState {
  int epoch = 0;  // the last completed epoch
  bool finished = false;  // the final epoch, or stopped early
  double best_accuracy = -1.0;
  int best_epoch = 0;
  std::vector<torch::Tensor> best_parameters, best_buffers;
};

// The options a resumed run must share with the one that wrote the state.
std::string OptionsFingerprint(const TrainOptions& o) {
  std::ostringstream s;
  s << "optimizer " << (o.optimizer == OptimizerKind::kSgd ? "sgd" : "adam") << ", lr "
    << o.learning_rate << ", momentum " << o.momentum << ", weight decay " << o.weight_decay
    << ", schedule " << static_cast<int>(o.lr_schedule) << ", batch " << o.batch_size
    << ", epochs " << o.epochs << ", seed " << o.seed << ", crop " << o.augment.crop_padding
    << ", flip " << o.augment.horizontal_flip << ", patience " << o.early_stopping_patience
    << ", distill " << o.distill.enabled() << " T " << o.distill.temperature << " alpha "
    << o.distill.alpha << ", keep zeros " << o.keep_zero_weights << ", trainable";
  for (const std::string& t : o.trainable) s << " " << t;
  return s.str();
}

torch::Tensor BytesTensor(const std::string& bytes) {
  return torch::from_blob(const_cast<char*>(bytes.data()),
                          {static_cast<int64_t>(bytes.size())}, torch::kUInt8)
      .clone();
}

std::string TensorBytes(const torch::Tensor& t) {
  const torch::Tensor c = t.contiguous();
  return std::string(static_cast<const char*>(c.data_ptr()), static_cast<size_t>(c.numel()));
}

void WriteTensors(torch::serialize::OutputArchive& ar, const std::string& prefix,
                  const std::vector<torch::Tensor>& tensors) {
  ar.write(prefix + ".count", torch::tensor(static_cast<int64_t>(tensors.size())));
  for (size_t i = 0; i < tensors.size(); ++i) {
    ar.write(prefix + "." + std::to_string(i), tensors[i].detach());
  }
}

// Reads tensors written by WriteTensors; each must have the shape of `like[i]`.
Result<std::vector<torch::Tensor>> ReadTensors(torch::serialize::InputArchive& ar,
                                               const std::string& prefix,
                                               const std::vector<torch::Tensor>& like,
                                               const std::string& path) {
  torch::Tensor count;  // fresh tensors: read() into a defined one keeps its storage type
  ar.read(prefix + ".count", count);
  if (count.item<int64_t>() != static_cast<int64_t>(like.size())) {
    return InvalidArgumentError("train: state '" + path + "' holds " +
                                std::to_string(count.item<int64_t>()) + " " + prefix +
                                " tensors, the model has " + std::to_string(like.size()));
  }
  std::vector<torch::Tensor> out(like.size());
  for (size_t i = 0; i < like.size(); ++i) {
    ar.read(prefix + "." + std::to_string(i), out[i]);
    if (out[i].sizes() != like[i].sizes()) {
      return InvalidArgumentError("train: state '" + path + "': " + prefix + " " +
                                  std::to_string(i) + " has shape " + DimsToString(out[i].sizes()) +
                                  ", the model's " + DimsToString(like[i].sizes()));
    }
  }
  return out;
}

std::vector<torch::Tensor> BufferTensors(GraphModule::Impl& m) {
  std::vector<torch::Tensor> out;
  for (ValueId id : m.buffer_ids) out.push_back(m.constants[static_cast<size_t>(id)]);
  return out;
}

Status SaveState(const std::string& path, GraphModule::Impl& m, torch::optim::Optimizer& optimizer,
                 const std::mt19937_64& rng, const LoopState& loop, const TrainOptions& o) {
  torch::serialize::OutputArchive ar;
  ar.write("format", torch::tensor(int64_t{1}));
  ar.write("options", BytesTensor(OptionsFingerprint(o)));
  ar.write("epoch", torch::tensor(static_cast<int64_t>(loop.epoch)));
  ar.write("finished", torch::tensor(static_cast<int64_t>(loop.finished)));
  ar.write("best_accuracy", torch::tensor(loop.best_accuracy, torch::kDouble));
  ar.write("best_epoch", torch::tensor(static_cast<int64_t>(loop.best_epoch)));
  WriteTensors(ar, "parameters", m.parameters);
  WriteTensors(ar, "buffers", BufferTensors(m));
  WriteTensors(ar, "best_parameters", loop.best_parameters);
  WriteTensors(ar, "best_buffers", loop.best_buffers);
  torch::serialize::OutputArchive opt;
  optimizer.save(opt);
  ar.write("optimizer", opt);
  std::ostringstream rng_text;
  rng_text << rng;
  ar.write("rng", BytesTensor(rng_text.str()));
  {
    at::Generator gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    ar.write("torch_rng", gen.get_state());
  }
  std::ostringstream bytes;
  ar.save_to(bytes);
  return DefaultEnv()->WriteFileAtomic(path, bytes.str()).WithContext("train: writing state");
}

// Restores what SaveState wrote into the module, the optimizer, `rng` and `loop`.
Status LoadState(const std::string& path, GraphModule::Impl& m,
                 torch::optim::Optimizer& optimizer, std::mt19937_64& rng, LoopState& loop,
                 const TrainOptions& o) {
  HML_ASSIGN_OR_RETURN(std::string bytes, DefaultEnv()->ReadFile(path));
  torch::serialize::InputArchive ar;
  std::istringstream in(bytes);
  ar.load_from(in);
  // A fresh tensor per key: read() into a defined tensor keeps that tensor's storage type.
  auto read = [&ar](const char* key) {
    torch::Tensor t;
    ar.read(key, t);
    return t;
  };
  torch::Tensor t = read("options");
  const std::string saved = TensorBytes(t), now = OptionsFingerprint(o);
  if (saved != now) {
    return InvalidArgumentError("train: state '" + path + "' was written with other options (" +
                                saved + "), not (" + now + ")");
  }
  t = read("epoch");
  loop.epoch = static_cast<int>(t.item<int64_t>());
  t = read("finished");
  if (t.item<int64_t>() != 0 || loop.epoch >= o.epochs) {
    return FailedPreconditionError("train: state '" + path + "' is from a finished run (epoch " +
                                   std::to_string(loop.epoch) + "): nothing to resume");
  }
  t = read("best_accuracy");
  loop.best_accuracy = t.item<double>();
  t = read("best_epoch");
  loop.best_epoch = static_cast<int>(t.item<int64_t>());
  HML_ASSIGN_OR_RETURN(std::vector<torch::Tensor> params,
                       ReadTensors(ar, "parameters", m.parameters, path));
  const std::vector<torch::Tensor> buffers = BufferTensors(m);
  HML_ASSIGN_OR_RETURN(std::vector<torch::Tensor> bufs, ReadTensors(ar, "buffers", buffers, path));
  HML_ASSIGN_OR_RETURN(loop.best_parameters,
                       ReadTensors(ar, "best_parameters",
                                   loop.best_accuracy >= 0 ? m.parameters
                                                           : std::vector<torch::Tensor>{},
                                   path));
  HML_ASSIGN_OR_RETURN(loop.best_buffers,
                       ReadTensors(ar, "best_buffers",
                                   loop.best_accuracy >= 0 ? buffers : std::vector<torch::Tensor>{},
                                   path));
  {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < params.size(); ++i) m.parameters[i].copy_(params[i]);
    for (size_t i = 0; i < bufs.size(); ++i) {
      m.constants[static_cast<size_t>(m.buffer_ids[i])].copy_(bufs[i]);
    }
  }
  torch::serialize::InputArchive opt;
  ar.read("optimizer", opt);
  optimizer.load(opt);
  t = read("rng");
  std::istringstream rng_text(TensorBytes(t));
  rng_text >> rng;
  t = read("torch_rng");
  at::Generator gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(t);
  return Status::Ok();
}

}  // namespace

Status TrainOptions::Validate() const {
  if (!(learning_rate > 0.0)) return InvalidArgumentError("train: learning rate must be > 0");
  if (momentum < 0.0) return InvalidArgumentError("train: momentum must be >= 0");
  if (weight_decay < 0.0) return InvalidArgumentError("train: weight decay must be >= 0");
  if (batch_size < 1) return InvalidArgumentError("train: batch size must be >= 1");
  if (epochs < 1) return InvalidArgumentError("train: epochs must be >= 1");
  if (num_threads < 1 || num_threads > 64) {
    return InvalidArgumentError("train: num_threads " + std::to_string(num_threads) +
                                " outside [1, 64]");
  }
  if (progress_every < 0) return InvalidArgumentError("train: progress_every must be >= 0");
  if (step_epochs < 1) return InvalidArgumentError("train: step_epochs must be >= 1");
  if (!(step_gamma > 0.0)) return InvalidArgumentError("train: step_gamma must be > 0");
  if (early_stopping_patience < 0) {
    return InvalidArgumentError("train: early stopping patience must be >= 0");
  }
  if (augment.crop_padding < 0) return InvalidArgumentError("train: crop padding must be >= 0");
  if (resume && state_path.empty()) {
    return InvalidArgumentError("train: resume needs the state_path to resume from");
  }
  return distill.Validate();
}

Status DistillOptions::Validate() const {
  if (!(temperature > 0.0) || !std::isfinite(temperature)) {
    return InvalidArgumentError("train: distillation temperature must be finite and > 0, got " +
                                std::to_string(temperature));
  }
  if (!(alpha >= 0.0 && alpha <= 1.0)) {
    return InvalidArgumentError("train: distillation alpha must be in [0, 1], got " +
                                std::to_string(alpha));
  }
  return Status::Ok();
}

Result<TrainReport> Train(GraphModule& module, const data::Dataset& train, const data::Dataset* validation,
                          const TrainOptions& options) {
  HML_RETURN_IF_ERROR(options.Validate());
  HML_RETURN_IF_ERROR(options.augment.Validate(train.feature_shape()));
  if (train.size() == 0) return InvalidArgumentError("train: the training set is empty");
  GraphModule::Impl& m = module.impl();
  if (m.graph.inputs.size() != 1) {
    return InvalidArgumentError("train: the model must have exactly one input, it has " +
                                std::to_string(m.graph.inputs.size()));
  }
  if (options.distill.enabled()) {
    HML_RETURN_IF_ERROR(CheckTeacher(m, options.distill.teacher->impl(), train));
  }
  HML_ASSIGN_OR_RETURN(std::vector<bool> frozen, FrozenValues(m, options.trainable));
  // Parameters are frozen for this call only.
  struct Unfreeze {
    GraphModule::Impl& m;
    ~Unfreeze() {
      for (torch::Tensor& p : m.parameters) p.set_requires_grad(true);
      m.frozen.clear();
    }
  } unfreeze{m};
  try {
    torch::set_num_threads(options.num_threads);
    torch::manual_seed(options.seed);
    m.frozen = frozen;
    std::vector<torch::Tensor> trained;
    for (size_t i = 0; i < m.parameters.size(); ++i) {
      const bool fixed = m.IsFrozen(m.parameter_ids[i]);
      m.parameters[i].set_requires_grad(!fixed);
      if (!fixed) trained.push_back(m.parameters[i]);
    }
    std::unique_ptr<torch::optim::Optimizer> optimizer;
    if (options.optimizer == OptimizerKind::kSgd) {
      optimizer = std::make_unique<torch::optim::SGD>(
          trained, torch::optim::SGDOptions(options.learning_rate)
                            .momentum(options.momentum)
                            .weight_decay(options.weight_decay));
    } else {
      optimizer = std::make_unique<torch::optim::Adam>(
          trained, torch::optim::AdamOptions(options.learning_rate)
                            .weight_decay(options.weight_decay));
    }
    // Masks of the weights whose zeros must survive (keep_zero_weights), by parameter index.
    std::vector<std::pair<size_t, torch::Tensor>> zero_masks;
    if (options.keep_zero_weights) {
      for (size_t i = 0; i < m.parameters.size(); ++i) {
        const torch::Tensor& p = m.parameters[i];
        if (p.dim() < 2) continue;
        torch::Tensor nonzero = p.detach().ne(0).to(torch::kFloat);
        if (nonzero.min().item<float>() == 0.0f) zero_masks.emplace_back(i, std::move(nonzero));
      }
    }
    std::mt19937_64 rng(options.seed);
    const std::vector<int64_t> shape = SampleShape(m, train);
    // Distillation: the teacher stays in eval mode until Train() returns.
    std::optional<Teacher> teacher;
    if (options.distill.enabled()) {
      GraphModule::Impl& t = options.distill.teacher->impl();
      teacher.emplace(t, train);
      HML_RETURN_IF_ERROR(CheckTeacherLogits(m, *teacher, t, train, shape));
      // Without augmentation every epoch shows the teacher the same samples: run it once.
      if (!options.augment.enabled()) {
        if (options.progress) options.progress("distill: computing the teacher's logits once");
        HML_RETURN_IF_ERROR(
            teacher->Precompute(train, std::max<int64_t>(256, options.batch_size)));
      }
    }
    const size_t bs = static_cast<size_t>(options.batch_size);
    const size_t num_batches = (static_cast<size_t>(train.size()) + bs - 1) / bs;
    TrainReport report;
    // The epoch reached and early stopping's best validation accuracy so far with that epoch's
    // weights; restored from the state file on resume.
    LoopState loop;
    if (options.resume) {
      HML_RETURN_IF_ERROR(LoadState(options.state_path, m, *optimizer, rng, loop, options));
      if (options.progress) {
        options.progress(Format("resuming after epoch %d of %d from %s", loop.epoch,
                                options.epochs, options.state_path.c_str()));
      }
    }
    report.first_epoch = loop.epoch + 1;
    auto copy_state = [&](std::vector<torch::Tensor>& params, std::vector<torch::Tensor>& bufs) {
      torch::NoGradGuard no_grad;
      params.clear();
      bufs.clear();
      for (const torch::Tensor& p : m.parameters) params.push_back(p.detach().clone());
      for (ValueId id : m.buffer_ids) {
        bufs.push_back(m.constants[static_cast<size_t>(id)].detach().clone());
      }
    };
    auto restore_state = [&](const std::vector<torch::Tensor>& params,
                             const std::vector<torch::Tensor>& bufs) {
      torch::NoGradGuard no_grad;
      for (size_t i = 0; i < m.parameters.size(); ++i) m.parameters[i].copy_(params[i]);
      for (size_t i = 0; i < m.buffer_ids.size(); ++i) {
        m.constants[static_cast<size_t>(m.buffer_ids[i])].copy_(bufs[i]);
      }
    };
    for (int epoch = loop.epoch + 1; epoch <= options.epochs; ++epoch) {
      const auto start = std::chrono::steady_clock::now();
      const double lr = EpochLearningRate(options, epoch);
      for (auto& group : optimizer->param_groups()) {
        if (options.optimizer == OptimizerKind::kSgd) {
          static_cast<torch::optim::SGDOptions&>(group.options()).lr(lr);
        } else {
          static_cast<torch::optim::AdamOptions&>(group.options()).lr(lr);
        }
      }
      // The weights at the start of the epoch, restored if the loss diverges.
      std::vector<torch::Tensor> snapshot, snapshot_buffers;
      copy_state(snapshot, snapshot_buffers);
      m.training = true;
      const std::vector<int64_t> order = data::ShuffledIndices(train.size(), rng);
      double loss_sum = 0.0;
      int64_t correct = 0, seen = 0;
      auto elapsed = [&] {
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      };
      auto progress_line = [&](size_t batches_done) {
        const double t = elapsed();
        const double frac = static_cast<double>(batches_done) / static_cast<double>(num_batches);
        const double eta = frac > 0 ? t / frac - t : 0.0;
        return Format("epoch %d/%d %s %lld/%lld loss %.4f acc %.2f%% %.0f samples/s eta %.1fs",
                      epoch, options.epochs, ProgressBar(frac).c_str(),
                      static_cast<long long>(seen), static_cast<long long>(train.size()),
                      loss_sum / static_cast<double>(std::max<int64_t>(seen, 1)),
                      100.0 * static_cast<double>(correct) /
                          static_cast<double>(std::max<int64_t>(seen, 1)),
                      static_cast<double>(seen) / std::max(t, 1e-9), eta);
      };
      for (size_t b = 0; b < num_batches; ++b) {
        const size_t begin = b * bs, end = std::min(order.size(), begin + bs);
        torch::Tensor x, y;
        HML_RETURN_IF_ERROR(
            LoadBatch(train, order, begin, end, shape, &options.augment, &rng, &x, &y));
        HML_ASSIGN_OR_RETURN(std::vector<torch::Tensor> out, m.Run({x}, {m.logits}));
        torch::Tensor logits = out[0];
        if (logits.dim() != 2) {
          return InvalidArgumentError("train: logits '" + m.graph.value(m.logits).name +
                                      "' have rank " + std::to_string(logits.dim()) +
                                      ", expected [batch, classes]");
        }
        if (train.num_classes() > logits.size(1)) {
          return InvalidArgumentError(
              "train: the dataset has " + std::to_string(train.num_classes()) +
              " classes but the model outputs " + std::to_string(logits.size(1)));
        }
        torch::Tensor loss = torch::nn::functional::cross_entropy(logits, y);
        if (teacher) {
          // Computed even when alpha is 0: the soft term then adds exact zeros to the loss and
          // the gradients, so the result equals label-only training bit-for-bit.
          HML_ASSIGN_OR_RETURN(const torch::Tensor teacher_logits,
                               teacher->BatchLogits(x, order, begin, end));
          if (teacher_logits.sizes() != logits.sizes()) {
            return InvalidArgumentError("train: teacher: logits have shape " +
                                        DimsToString(teacher_logits.sizes()) + ", the student's " +
                                        DimsToString(logits.sizes()) + " (batch " +
                                        std::to_string(b + 1) + ")");
          }
          const double t = options.distill.temperature, alpha = options.distill.alpha;
          // KL(p_teacher || p_student) at temperature t, from log-probabilities on both sides
          // (log_target) so a teacher probability that underflows to 0 gives no 0 * log 0.
          const torch::Tensor soft = torch::nn::functional::kl_div(
              torch::log_softmax(logits / t, 1), torch::log_softmax(teacher_logits / t, 1),
              torch::nn::functional::KLDivFuncOptions()
                  .reduction(torch::kBatchMean)
                  .log_target(true));
          loss = (alpha * t * t) * soft + (1.0 - alpha) * loss;
        }
        const double loss_value = loss.item<double>();
        if (!std::isfinite(loss_value)) {
          restore_state(snapshot, snapshot_buffers);
          m.training = false;
          return AbortedError("train: loss is " + std::to_string(loss_value) + " at epoch " +
                              std::to_string(epoch) + " batch " + std::to_string(b + 1) +
                              "; stopped and restored the weights from the start of the epoch");
        }
        optimizer->zero_grad();
        loss.backward();
        optimizer->step();
        if (!zero_masks.empty()) {
          torch::NoGradGuard no_grad;
          for (const auto& [i, mask] : zero_masks) m.parameters[i].mul_(mask);
        }
        const int64_t n = static_cast<int64_t>(end - begin);
        loss_sum += loss_value * static_cast<double>(n);
        correct += logits.argmax(1).eq(y).sum().item<int64_t>();
        seen += n;
        if (options.progress && options.progress_every > 0 &&
            (b + 1) % static_cast<size_t>(options.progress_every) == 0 && b + 1 < num_batches) {
          options.progress(progress_line(b + 1));
        }
      }
      m.training = false;
      EpochStats stats;
      stats.epoch = epoch;
      stats.train_loss = loss_sum / static_cast<double>(seen);
      stats.train_accuracy = static_cast<double>(correct) / static_cast<double>(seen);
      stats.seconds = elapsed();
      stats.samples_per_second = static_cast<double>(seen) / std::max(stats.seconds, 1e-9);
      stats.learning_rate = lr;
      std::string line = progress_line(num_batches);
      if (validation != nullptr && validation->size() > 0) {
        const int64_t eval_batch = std::max<int64_t>(256, options.batch_size);
        HML_ASSIGN_OR_RETURN(stats.validation_accuracy, EvaluateImpl(m, *validation, eval_batch));
        line += Format(" val_acc %.2f%%", 100.0 * stats.validation_accuracy);
      }
      if (options.progress) options.progress(line);
      report.epochs.push_back(stats);
      report.best_epoch = epoch;
      loop.epoch = epoch;
      bool stop = false;
      if (options.early_stopping_patience > 0 && stats.validation_accuracy >= 0) {
        if (stats.validation_accuracy > loop.best_accuracy) {
          loop.best_accuracy = stats.validation_accuracy;
          loop.best_epoch = epoch;
          copy_state(loop.best_parameters, loop.best_buffers);
        }
        report.best_epoch = loop.best_epoch;
        stop = epoch - loop.best_epoch >= options.early_stopping_patience;
      }
      loop.finished = stop || epoch == options.epochs;
      if (!options.state_path.empty()) {
        HML_RETURN_IF_ERROR(SaveState(options.state_path, m, *optimizer, rng, loop, options));
      }
      if (options.on_epoch_end) {
        HML_RETURN_IF_ERROR(options.on_epoch_end(stats).WithContext(
            "train: after epoch " + std::to_string(epoch)));
      }
      if (options.early_stopping_patience > 0 && loop.best_epoch > 0 &&
          (stop || epoch == options.epochs)) {
        restore_state(loop.best_parameters, loop.best_buffers);
        if (epoch < options.epochs) {
          report.stopped_early = true;
          if (options.progress) {
            options.progress(Format("early stop after epoch %d: best validation accuracy "
                                    "%.2f%% at epoch %d",
                                    epoch, 100.0 * loop.best_accuracy, loop.best_epoch));
          }
          break;
        }
      }
    }
    return report;
  } catch (const std::exception& e) {
    m.training = false;
    return TorchErrorStatus(e, "train");
  }
}

Result<double> Evaluate(GraphModule& module, const data::Dataset& dataset, int64_t batch_size) {
  if (batch_size < 1) return InvalidArgumentError("evaluate: batch size must be >= 1");
  try {
    return EvaluateImpl(module.impl(), dataset, batch_size);
  } catch (const std::exception& e) {
    module.impl().training = false;
    return TorchErrorStatus(e, "evaluate");
  }
}

}  // namespace hml::train

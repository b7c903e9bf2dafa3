// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The on-device trainer: mini-batch SGD over the runtime's graph IR, without LibTorch, so a
// phone can fine-tune the model it serves (federated learning, docs/federated.md).
//
// Create() takes an inference graph (imported from ONNX or built by src/train/zoo.h), folds
// BatchNormalization into Conv and drops Dropout/Identity (so training sees the deployed
// model), finds the logits and collects the trainable parameters. The loss is the mean softmax
// cross-entropy of the logits, plus the optional FedProx term. Forward and backward run on the
// trainer's own kernels (train_kernels.h): Conv through im2col and a blocked GEMM (gemm.h), Gemm,
// MatMul, Add, Relu, Clip, MaxPool, AveragePool, GlobalAveragePool, Flatten and Reshape.
//
// Memory: per batch size the trainer prepares a plan (shapes via PrepareGraph, one buffer per
// activation and per activation gradient). The first Step() of a batch size allocates it; later
// steps of that size do not allocate. Plans are kept for every batch size seen.
//
// Thread-safety: a Trainer is not thread-safe; distinct Trainers may run on distinct threads
// (they share only immutable constant tensors of the graph they were created from).
#ifndef HML_SRC_RUNTIME_TRAIN_TRAINER_H_
#define HML_SRC_RUNTIME_TRAIN_TRAINER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "hml/runtime/tensor.h"
#include "hml/status.h"
#include "src/runtime/graph.h"

namespace hml::runtime {

struct TrainOptions {
  // SGD step size. Default: 0.05. Must be > 0 and finite.
  float learning_rate = 0.05f;
  // Heavy-ball momentum as torch.optim.SGD applies it (v = momentum * v + g; w -= lr * v).
  // 0 = plain SGD. Default: 0.9. Must be in [0, 1).
  float momentum = 0.9f;
  // L2 weight decay added to the gradient in the update (decay * w), as torch.optim.SGD does;
  // not part of the reported loss nor of LossAndGradients(). Default: 0. Must be >= 0.
  float weight_decay = 0.0f;
  // FedProx: loss += mu / 2 * ||w - anchor||^2, the anchor being the weights at Create() or
  // the last SetProxAnchor(). Default: 0 (off). Must be >= 0.
  float prox_mu = 0.0f;
  // 0 = train every parameterised layer; K > 0 = only the last K Conv/Gemm/MatMul nodes in
  // topological order (and the Add bias right after each). The frozen prefix runs forward only:
  // in a runtime Session (default backend: XNNPACK where built) when the runtime can run it,
  // else on the trainer's own kernels.
  // Default: 0. Must be >= 0 and at most the number of such layers (checked in Create()).
  int trainable_layers = 0;
  // The value whose softmax cross-entropy is the loss. "" = the input of the graph's last
  // Softmax, or the single graph output when there is no Softmax. Must be [N, classes].
  // Default: "".
  std::string logits;

  // kInvalidArgument naming the offending option.
  Status Validate() const;
};

struct ParameterInfo {
  std::string name;  // the graph constant's name
  Shape shape;
};

struct StepResult {
  // Mean cross-entropy over the batch plus the prox term, before the update.
  double loss = 0;
  // Examples whose largest logit is the label (before the update).
  int64_t correct = 0;
  int64_t examples = 0;
};

class Trainer {
 public:
  // Errors: kInvalidArgument for bad options or graphs (no single float input, logits missing
  // or not 2-D, trainable_layers larger than the number of layers); kUnimplemented naming the
  // node for an op the trainer cannot run (no backward kernel in the trainable part, no forward
  // kernel anywhere on the way to the logits). `graph` is copied; it need not outlive the
  // Trainer.
  static Result<std::unique_ptr<Trainer>> Create(const Graph& graph, const TrainOptions& options);

  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  // The trainable parameters, in a fixed order (graph topological order: each layer's weight,
  // then its bias) that is also the layout of the flat vectors below.
  const std::vector<ParameterInfo>& parameters() const { return parameters_; }
  int64_t num_parameter_elements() const { return static_cast<int64_t>(weights_.size()); }
  // All trainable parameters, flat in parameters() order, each row-major.
  std::vector<float> GetParameters() const { return weights_; }
  // kInvalidArgument when flat.size() != num_parameter_elements(). Momentum is kept.
  Status SetParameters(std::span<const float> flat);
  // The FedProx anchor. kInvalidArgument on a size mismatch.
  Status SetProxAnchor(std::span<const float> flat);
  // Zeroes the momentum buffers.
  void ResetOptimizer();
  // kInvalidArgument unless lr > 0 and finite.
  Status SetLearningRate(float lr);
  // Changes TrainOptions::momentum / prox_mu for the next steps (a federated round's config).
  // kInvalidArgument for values outside the ranges TrainOptions documents.
  Status SetMomentum(float momentum);
  Status SetProxMu(float mu);

  // Bytes of working memory a step on batches of `batch_size` takes: the weights, gradients,
  // momentum and prox anchor, every activation and activation gradient of the batch, and the
  // im2col scratch. Computed from the plan a step of that size would use (built and dropped);
  // 0 when no plan can be built for that size.
  int64_t EstimateMemoryBytes(int64_t batch_size) const;

  // One SGD step on a batch: `inputs` float32 [N, ...] (the graph input's shape with any
  // N >= 1), `labels` N class indices in [0, classes). Errors (kInvalidArgument) name what is
  // wrong: dtype, rank, a dim, the label count or an out-of-range label.
  Result<StepResult> Step(const Tensor& inputs, std::span<const int64_t> labels);

  // Mean loss (cross-entropy + prox term) and its gradient, flat in parameters() order, without
  // changing the weights or the optimizer. `gradients` is resized to num_parameter_elements();
  // it may be null when only the loss is wanted.
  Result<double> LossAndGradients(const Tensor& inputs, std::span<const int64_t> labels,
                                  std::vector<float>* gradients);

  // Forward only: the logits [N, classes].
  Result<Tensor> Logits(const Tensor& inputs);

  // The inference graph (BatchNorm folded, Dropout/Identity removed, Softmax kept) holding the
  // current weights, for the runtime or the ONNX exporter.
  Result<Graph> ExportGraph() const;

  // Classes of the logits.
  int64_t num_classes() const { return num_classes_; }

 private:
  struct Plan;
  Trainer();

  // Checks `inputs` against the graph input and returns the plan for its shape, preparing it
  // on first use.
  Result<Plan*> PlanFor(const Tensor& inputs);
  Result<std::unique_ptr<Plan>> BuildPlan(const Shape& input_shape) const;
  // With trainable_layers > 0: moves the frozen prefix of `order` into a runtime Session (the
  // default backend, XNNPACK where built) and returns those nodes; returns none when there is
  // no prefix or the runtime cannot run it (the trainer's kernels then do).
  Result<std::set<size_t>> PrepareFrozenSession(Plan& plan, const std::vector<size_t>& order,
                                                const std::vector<bool>& carries,
                                                const Shape& input_shape) const;
  Status Forward(Plan& plan, const Tensor& inputs);
  void Backward(Plan& plan);
  // Forward + loss + backward, leaving the mean gradient (with the prox term) in gradients_.
  Result<StepResult> Compute(const Tensor& inputs, std::span<const int64_t> labels);

  TrainOptions options_;
  Graph graph_;  // after the import passes; constants of parameters are stale
  std::string input_name_;
  Shape input_shape_;  // declared; dim 0 is the batch
  std::string logits_name_;
  int64_t num_classes_ = 0;
  std::vector<ParameterInfo> parameters_;
  std::vector<int64_t> offsets_;  // of each parameter in the flat vectors
  std::vector<float> weights_;
  std::vector<float> gradients_;
  std::vector<float> momentum_;
  std::vector<float> anchor_;
  std::map<Shape, std::unique_ptr<Plan>> plans_;  // by input shape
};

}  // namespace hml::runtime

#endif  // HML_SRC_RUNTIME_TRAIN_TRAINER_H_

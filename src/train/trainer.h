// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The trainer: minibatch training of a GraphModule on a Dataset with SGD-momentum or Adam,
// weight decay, seeded shuffling and augmentation, and a progress line per epoch. Classification
// only: the loss is cross-entropy on the module's logits (the input of a final Softmax, or the
// first graph output when there is none).
//
// With a teacher (DistillOptions), the loss is knowledge distillation (Hinton et al., 2015):
//   alpha * T^2 * KL(softmax(teacher_logits / T) || softmax(student_logits / T))
//     + (1 - alpha) * CE(student_logits, labels),
// the teacher's logits computed on the fly for the same augmented batch, or, without augmentation,
// once for the whole training set before the first epoch (the teacher is fixed, so every epoch
// would compute the same values).
//
// Torch-free header; the implementation (trainer.cc) catches every LibTorch exception.
#ifndef HML_SRC_TRAIN_TRAINER_H_
#define HML_SRC_TRAIN_TRAINER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "hml/status.h"
#include "src/data/dataset.h"
#include "src/train/graph_module.h"

namespace hml::train {

enum class OptimizerKind { kSgd, kAdam };

// Learning rate per epoch e (1-based) of E: kConstant keeps it; kCosine anneals it as
// lr * (1 + cos(pi * (e - 1) / E)) / 2; kStep multiplies it by step_gamma every step_epochs.
enum class LrSchedule { kConstant, kCosine, kStep };

struct EpochStats {
  int epoch = 0;                      // 1-based
  double train_loss = 0.0;            // mean over the epoch's samples
  double train_accuracy = 0.0;        // in [0, 1], on the (augmented) training batches
  double validation_accuracy = -1.0;  // -1 without a validation set
  double learning_rate = 0.0;
  double seconds = 0.0;
  double samples_per_second = 0.0;
};

// Knowledge distillation: train the student on a teacher's softened predictions plus the labels.
struct DistillOptions {
  // The teacher. Not owned: must outlive Train(). Train() runs it in eval mode (Dropout off,
  // BatchNorm on running statistics) without gradients, never changes its weights, and restores
  // its training mode on return. Its logits are found as the student's are (the input of a final
  // Softmax). nullptr = no distillation: plain cross-entropy on the labels. Default: nullptr.
  GraphModule* teacher = nullptr;
  // Softens both distributions; the soft loss is scaled by T^2 so its gradients keep their size
  // as T changes. Default: 4.
  double temperature = 4.0;
  // Weight of the soft (teacher) loss in [0, 1]; the labels get 1 - alpha. With alpha = 0 the
  // result equals label-only training bit-for-bit (same seed). Default: 0.7.
  double alpha = 0.7;

  bool enabled() const { return teacher != nullptr; }
  // kInvalidArgument for a temperature that is not > 0 (or not finite), an alpha outside [0, 1].
  // Checked even without a teacher, so a misspelt option is never silently ignored.
  Status Validate() const;
};

struct TrainOptions {
  // Default: kSgd (with momentum).
  OptimizerKind optimizer = OptimizerKind::kSgd;
  // Default: 0.01.
  double learning_rate = 0.01;
  // SGD only. Default: 0.9.
  double momentum = 0.9;
  // L2 penalty added by the optimizer. Default: 0.
  double weight_decay = 0.0;
  // Default: kConstant.
  LrSchedule lr_schedule = LrSchedule::kConstant;
  // kStep only. Defaults: 1 and 0.1.
  int step_epochs = 1;
  double step_gamma = 0.1;
  // Stop when validation accuracy has not improved for this many epochs, and restore the
  // weights of the best epoch. 0 = off; needs a validation set. Default: 0.
  int early_stopping_patience = 0;
  // Default: 64.
  int64_t batch_size = 64;
  // Default: 1.
  int epochs = 1;
  // Seeds shuffling, augmentation and LibTorch's generator (dropout). Default: 1.
  uint64_t seed = 1;
  // LibTorch intra-op threads (process-wide: at::set_num_threads). Default: 1, which was fastest
  // on the 2-core build VM (see FACTS.md); measure before raising it.
  int num_threads = 1;
  // Applied to training batches only. Default: none.
  data::AugmentOptions augment;
  // Receives progress lines ("epoch 1/3 ... loss 0.53 acc 81.2% ..."). Default: none.
  std::function<void(std::string_view)> progress;
  // Batches between progress lines within an epoch; 0 = only at the end of each epoch.
  // Default: 0.
  int64_t progress_every = 0;
  // Called after each epoch (with the weights that epoch ended with, before early stopping
  // restores the best ones), e.g. to write a checkpoint with
  // GraphModule::ExportGraph. An error stops training and is returned. Default: none.
  std::function<Status(const EpochStats&)> on_epoch_end;
  // Knowledge distillation from a teacher. Default: off.
  DistillOptions distill;
  // Weights (parameters of rank >= 2) that are exactly zero when training starts stay zero: for
  // fine-tuning after magnitude pruning, whose sparsity the optimizer would otherwise undo.
  // Default: false.
  bool keep_zero_weights = false;
  // Name prefixes of the parameters to train (e.g. {"logits"} fine-tunes only the last layer);
  // the others stay fixed, and a BatchNormalization with fixed parameters keeps its running
  // statistics. Empty = train everything. kInvalidArgument (listing the parameters) when a
  // prefix matches none. Default: empty.
  std::vector<std::string> trainable;
  // Where the trainer writes its whole state after every epoch (weights, BatchNorm statistics,
  // optimizer moments, the epoch, both random streams, early stopping's best so far), replaced
  // atomically, so a killed run loses at most the epoch in progress. Empty = none.
  // Default: empty.
  std::string state_path;
  // Continue from the state in state_path instead of starting at epoch 1. With the same options
  // the result is bit-identical to a run that was never interrupted. Errors: kNotFound without
  // a state file; kInvalidArgument when the state was written with other options (named) or
  // for parameters of other shapes; kFailedPrecondition when it is from a finished run (final epoch or stopped early).
  // Default: false.
  bool resume = false;

  // kInvalidArgument for a non-positive learning rate, batch size, epoch or thread count, a
  // negative momentum or weight decay, bad distillation options, or resume without state_path.
  Status Validate() const;
};


struct TrainReport {
  std::vector<EpochStats> epochs;
  // With early stopping: the epoch whose weights the module holds (1-based), else the last.
  int best_epoch = 0;
  bool stopped_early = false;
  // The first epoch this call trained: 1, or after a resume the epoch after the saved one.
  int first_epoch = 1;
};

// Trains `module` in place. Features of each sample are reshaped to the graph input's shape
// without the batch dim when its element count matches (so an MLP with input [N,784] trains on
// [1,28,28] images), else fed as [N, feature_shape...].
// With options.distill.teacher, EpochStats::train_loss is the distillation loss and
// train_accuracy is the student's against the labels.
// Errors: kInvalidArgument for bad options, an empty dataset, or labels beyond the model's
// classes; with a teacher also (checked on one sample before any weight changes, messages
// prefixed "train: teacher") a teacher that is the student itself, has other than one input,
// whose input does not take the training samples, or whose logits differ in shape from the
// student's; kAborted when the loss becomes NaN or infinite (the message names the epoch and
// batch; the module keeps the weights it had at the start of that epoch).
Result<TrainReport> Train(GraphModule& module, const data::Dataset& train, const data::Dataset* validation,
                          const TrainOptions& options);

// Top-1 accuracy of `module` (eval mode) on `dataset`, in [0, 1].
Result<double> Evaluate(GraphModule& module, const data::Dataset& dataset, int64_t batch_size = 256);

}  // namespace hml::train

#endif  // HML_SRC_TRAIN_TRAINER_H_

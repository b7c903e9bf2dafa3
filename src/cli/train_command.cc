// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// `hybridml train`: wiring of src/train (datasets, zoo, GraphModule, Trainer). No logic here
// beyond choosing the dataset and printing what the trainer returns.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>

#include "hml/env.h"
#include "hml/runtime/model.h"
#include "src/cli/commands.h"
#include "src/data/dataset.h"
#include "src/runtime/onnx_io.h"
#include "src/train/graph_module.h"
#include "src/train/sweep.h"
#include "src/train/trainer.h"
#include "src/train/zoo.h"

namespace hml::cli {
namespace {

struct TrainFlags {
  std::string data = "fashion-mnist";
  std::string arch = "mlp";
  std::string model_path;
  std::string out;
  std::string optimizer = "sgd";
  int epochs = 1;
  int64_t batch = 64;
  double lr = 0.01;
  double momentum = 0.9;
  double weight_decay = 0.0;
  uint64_t seed = 1;
  int threads = 1;
  double val_fraction = 0.1;
  int64_t crop_padding = 0;
  bool flip = false;
  std::string schedule = "constant";
  int patience = 0;
  std::string checkpoint;
  bool progress = true;
  // Knowledge distillation (off without --teacher).
  std::string teacher_path;
  double temperature = 4.0;
  double alpha = 0.7;
  bool keep_sparsity = false;
  bool resume = false;
  std::vector<std::string> trainable;
  double width = 1.0;
  // Hyper-parameter sweep (on when any axis is given).
  std::vector<double> sweep_lr;
  std::vector<int64_t> sweep_batch;
  std::vector<double> sweep_width;
  bool sweeping() const { return !sweep_lr.empty() || !sweep_batch.empty() || !sweep_width.empty(); }
};

// The ONNX file's graph as written: not Model::Load's inference passes, which fold BatchNorm
// and drop Dropout (right for inference, wrong for training).
Result<runtime::Graph> ReadGraphAsWritten(const std::string& path) {
  HML_ASSIGN_OR_RETURN(std::string bytes, DefaultEnv()->ReadFile(path));
  return runtime::ParseOnnxModel(bytes);
}

// Loads the distillation teacher (read like --model) as a module the trainer runs in eval mode.
// Errors name the file.
Result<std::unique_ptr<train::GraphModule>> LoadTeacher(const std::string& path) {
  const std::string context = "--teacher " + path;
  Result<runtime::Graph> graph = ReadGraphAsWritten(path);
  if (!graph.ok()) return graph.status().WithContext(context);
  Result<std::unique_ptr<train::GraphModule>> teacher = train::GraphModule::Create(*graph);
  if (!teacher.ok()) return teacher.status().WithContext(context);
  return teacher;
}

Status RunTrain(const TrainFlags& f) {
  HML_ASSIGN_OR_RETURN(data::DataSource source, data::OpenDataSpec(*DefaultEnv(), f.data));
  HML_ASSIGN_OR_RETURN(data::DatasetSplit split,
                       data::SplitDataset(source.all, f.val_fraction, f.seed));
  std::fprintf(stderr, "data: %s, %lld samples of %s, %lld classes (train %lld, validation %lld)\n",
               f.data.c_str(), static_cast<long long>(source.all->size()),
               ShapeToString(source.all->feature_shape()).c_str(),
               static_cast<long long>(source.all->num_classes()),
               static_cast<long long>(split.train->size()),
               static_cast<long long>(split.validation->size()));

  if (f.resume && f.checkpoint.empty()) {
    return InvalidArgumentError("--resume needs --checkpoint (the checkpoint to resume from)");
  }
  if (f.sweeping() && !f.checkpoint.empty()) {
    return InvalidArgumentError("--checkpoint cannot be combined with a sweep");
  }
  if (!f.model_path.empty() && (f.width != 1.0 || !f.sweep_width.empty())) {
    return InvalidArgumentError("--width/--sweep-width apply to --arch, not to --model");
  }
  // The model to train at a width multiplier (an ONNX file is taken as it is).
  // Read once, however many sweep points train it.
  std::optional<runtime::Graph> model_graph;
  if (!f.model_path.empty()) {
    HML_ASSIGN_OR_RETURN(model_graph, ReadGraphAsWritten(f.model_path));
  }
  auto make_graph = [&](double width) -> Result<runtime::Graph> {
    if (model_graph) return *model_graph;
    return train::BuildArchitecture(f.arch, source.all->feature_shape(),
                                    source.all->num_classes(), f.seed, width);
  };

  train::TrainOptions options;
  std::unique_ptr<train::GraphModule> teacher;
  options.distill.temperature = f.temperature;
  options.distill.alpha = f.alpha;
  if (!f.teacher_path.empty()) {
    // Validate T and alpha before loading (and evaluating) the teacher.
    HML_RETURN_IF_ERROR(options.distill.Validate());
    HML_ASSIGN_OR_RETURN(teacher, LoadTeacher(f.teacher_path));
    options.distill.teacher = teacher.get();
    std::fprintf(stderr, "teacher: %s, %lld parameters, temperature %g, alpha %g\n",
                 f.teacher_path.c_str(), static_cast<long long>(teacher->num_parameters()),
                 f.temperature, f.alpha);
  }
  if (f.optimizer == "adam") {
    options.optimizer = train::OptimizerKind::kAdam;
  } else if (f.optimizer != "sgd") {
    return InvalidArgumentError("--optimizer '" + f.optimizer + "': expected sgd or adam");
  }
  if (f.schedule == "cosine") {
    options.lr_schedule = train::LrSchedule::kCosine;
  } else if (f.schedule != "constant") {
    return InvalidArgumentError("--schedule '" + f.schedule + "': expected constant or cosine");
  }
  options.early_stopping_patience = f.patience;
  options.keep_zero_weights = f.keep_sparsity;
  options.trainable = f.trainable;
  options.learning_rate = f.lr;
  options.momentum = f.momentum;
  options.weight_decay = f.weight_decay;
  options.batch_size = f.batch;
  options.epochs = f.epochs;
  options.seed = f.seed;
  options.num_threads = f.threads;
  options.augment.crop_padding = f.crop_padding;
  options.augment.horizontal_flip = f.flip;
  if (f.progress) {
    options.progress = [](std::string_view line) {
      std::fprintf(stderr, "%.*s\n", static_cast<int>(line.size()), line.data());
    };
    options.progress_every =
        std::max<int64_t>(1, (split.train->size() + f.batch - 1) / f.batch / 10);
  }
  std::unique_ptr<train::GraphModule> module;
  if (f.sweeping()) {
    train::SweepGrid grid;
    grid.learning_rates = f.sweep_lr;
    grid.batch_sizes = f.sweep_batch;
    grid.widths = f.sweep_width;
    auto on_result = [](const train::SweepResult& r, size_t i, size_t n) {
      char outcome[64];
      std::snprintf(outcome, sizeof(outcome), "validation accuracy %.2f%%",
                    100.0 * r.validation_accuracy);
      std::fprintf(stderr, "sweep %zu/%zu: lr %g batch %lld width %g -> %s\n", i + 1, n,
                   r.point.learning_rate, static_cast<long long>(r.point.batch_size),
                   r.point.width, r.status.ok() ? outcome : r.status.ToString().c_str());
    };
    HML_ASSIGN_OR_RETURN(train::SweepReport sweep,
                         train::RunSweep(grid, make_graph, *split.train, *split.validation,
                                         options, on_result));
    std::printf("%s", train::FormatLeaderboard(sweep.results).c_str());
    const train::SweepPoint& best = sweep.results[sweep.best].point;
    std::printf("best: lr %g batch %lld width %g (validation accuracy %.2f%%)\n",
                best.learning_rate, static_cast<long long>(best.batch_size), best.width,
                100.0 * sweep.results[sweep.best].validation_accuracy);
    module = std::move(sweep.best_module);
  } else {
    HML_ASSIGN_OR_RETURN(runtime::Graph graph, make_graph(f.width));
    HML_ASSIGN_OR_RETURN(module, train::GraphModule::Create(graph));
    std::fprintf(stderr, "model: %s, %lld parameters\n",
                 f.model_path.empty() ? f.arch.c_str() : f.model_path.c_str(),
                 static_cast<long long>(module->num_parameters()));
    if (!f.checkpoint.empty()) {
      // After every epoch, written atomically (a kill leaves the previous ones intact): the
      // model as ONNX, usable like any trained model, and beside it CHECKPOINT.state, the whole
      // training state that --resume continues from.
      options.state_path = f.checkpoint + ".state";
      options.resume = f.resume;
      train::GraphModule* m = module.get();
      const std::string path = f.checkpoint;
      options.on_epoch_end = [m, path](const train::EpochStats& e) -> Status {
        HML_ASSIGN_OR_RETURN(runtime::Graph g, m->ExportGraph());
        HML_ASSIGN_OR_RETURN(Model model, Model::FromGraph(std::move(g)));
        HML_RETURN_IF_ERROR(model.Save(path));
        std::fprintf(stderr, "checkpoint: epoch %d -> %s\n", e.epoch, path.c_str());
        return Status::Ok();
      };
    }
    HML_ASSIGN_OR_RETURN(train::TrainReport report,
                         train::Train(*module, *split.train, split.validation.get(), options));
    const train::EpochStats& last = report.epochs.back();
    std::printf("train loss %.4f  train accuracy %.2f%%", last.train_loss,
                100.0 * last.train_accuracy);
    if (last.validation_accuracy >= 0) {
      std::printf("  validation accuracy %.2f%%", 100.0 * last.validation_accuracy);
    }
    std::printf("  %.0f samples/s\n", last.samples_per_second);
    if (report.stopped_early) {
      std::printf("stopped early; keeping epoch %d's weights\n", report.best_epoch);
    }
  }
  if (source.test != nullptr) {
    HML_ASSIGN_OR_RETURN(double acc, train::Evaluate(*module, *source.test));
    std::printf("test accuracy %.2f%% (%lld samples)\n", 100.0 * acc,
                static_cast<long long>(source.test->size()));
  }
  if (!f.out.empty()) {
    HML_ASSIGN_OR_RETURN(runtime::Graph trained, module->ExportGraph());
    HML_ASSIGN_OR_RETURN(Model model, Model::FromGraph(std::move(trained)));
    HML_RETURN_IF_ERROR(model.Save(f.out));
    std::printf("wrote %s\n", f.out.c_str());
  }
  return Status::Ok();
}

}  // namespace

void AddTrainCommand(CLI::App& app, int& exit_code) {
  auto flags = std::make_shared<TrainFlags>();
  CLI::App* cmd = app.add_subcommand("train", "Train a model on LibTorch and export it to ONNX");
  cmd->add_option("--data", flags->data, "fashion-mnist[:DIR] | csv:PATH | dir:PATH")
      ->capture_default_str();
  cmd->add_option("--arch", flags->arch, "mlp | student-cnn | teacher-cnn")
      ->capture_default_str();
  cmd->add_option("--model", flags->model_path,
                  "ONNX model to train or fine-tune instead of --arch (training-subset ops)");
  cmd->add_option("--out", flags->out, "Where to write the trained ONNX model");
  cmd->add_option("--optimizer", flags->optimizer, "sgd | adam")->capture_default_str();
  cmd->add_option("--epochs", flags->epochs)->capture_default_str();
  cmd->add_option("--batch", flags->batch)->capture_default_str();
  cmd->add_option("--lr", flags->lr)->capture_default_str();
  cmd->add_option("--momentum", flags->momentum)->capture_default_str();
  cmd->add_option("--weight-decay", flags->weight_decay)->capture_default_str();
  cmd->add_option("--seed", flags->seed)->capture_default_str();
  cmd->add_option("--threads", flags->threads, "LibTorch intra-op threads")
      ->capture_default_str();
  cmd->add_option("--val-fraction", flags->val_fraction)->capture_default_str();
  cmd->add_option("--crop-padding", flags->crop_padding, "Random-crop augmentation padding")
      ->capture_default_str();
  cmd->add_flag("--flip", flags->flip, "Random horizontal flips");
  cmd->add_option("--schedule", flags->schedule, "Learning rate schedule: constant | cosine")
      ->capture_default_str();
  cmd->add_option("--checkpoint", flags->checkpoint,
                  "Write the model here (ONNX) after every epoch; resume with --model");
  cmd->add_option("--patience", flags->patience,
                  "Early stopping: epochs without validation improvement (0 = off)")
      ->capture_default_str();
  cmd->add_flag("!--no-progress", flags->progress, "No progress lines");
  cmd->add_option("--trainable", flags->trainable,
                  "Train only parameters whose names start with these prefixes (comma-separated, "
                  "e.g. logits: fine-tune the last layer)")
      ->delimiter(',');
  cmd->add_flag("--resume", flags->resume,
                "Continue the run whose --checkpoint is given (same options), after a kill");
  cmd->add_option("--width", flags->width,
                  "Multiplies every layer's channels/units of --arch (rounded, at least 1)")
      ->check(CLI::Range(0.01, 64.0))
      ->capture_default_str();
  cmd->add_option("--sweep-lr", flags->sweep_lr,
                  "Sweep: learning rates, comma-separated (a grid with the other --sweep-*)")
      ->delimiter(',');
  cmd->add_option("--sweep-batch", flags->sweep_batch, "Sweep: batch sizes, comma-separated")
      ->delimiter(',');
  cmd->add_option("--sweep-width", flags->sweep_width,
                  "Sweep: width multipliers of --arch, comma-separated")
      ->delimiter(',');
  cmd->add_flag("--keep-sparsity", flags->keep_sparsity,
                "Weights that are zero at the start stay zero (fine-tuning a pruned model)");
  CLI::Option* teacher =
      cmd->add_option("--teacher", flags->teacher_path,
                      "Knowledge distillation: train on this ONNX teacher's soft targets plus "
                      "the labels");
  cmd->add_option("--temperature", flags->temperature, "Distillation temperature T (> 0)")
      ->capture_default_str()
      ->needs(teacher);
  cmd->add_option("--alpha", flags->alpha,
                  "Distillation: weight of the teacher's soft loss in [0, 1]; labels get 1 - alpha")
      ->capture_default_str()
      ->needs(teacher);
  cmd->callback([flags, &exit_code] {
    const Status s = RunTrain(*flags);
    if (!s.ok()) {
      std::fprintf(stderr, "hybridml train: %s\n", s.ToString().c_str());
      exit_code = 1;
      return;
    }
    exit_code = 0;
  });
}

}  // namespace hml::cli

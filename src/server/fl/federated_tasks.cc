// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/server/fl/federated_tasks.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "hml/logging.h"
#include "hml/runtime/model.h"
#include "proto/hybridml_device.pb.h"
#include "src/base/file_util.h"
#include "src/data/dataset.h"
#include "src/data/evaluate.h"
#include "src/fl/secure_round.h"
#include "src/fl/update_wire.h"
#include "src/runtime/graph.h"
#include "src/runtime/onnx_io.h"
#include "src/server/fl/task_file.h"
#include "src/server/registry/keys.h"
#include "src/server/registry/registry.h"

namespace hml::server {
namespace {

bool ValidName(const std::string& name) {
  if (name.empty() || name.size() > 128 || name == "." || name == "..") return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

// "1.4.0-fl.3.2" -> "1.4.0": the release part of a semver label.
std::string ReleasePart(const std::string& semver) { return semver.substr(0, semver.find('-')); }

// A fraction as a decimal string with 6 significant digits, e.g. "0.8125", "1e-05".
std::string Decimal(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.6g", value);
  return buffer;
}

Result<int64_t> ParseRoundId(const std::string& text) {
  if (text.empty() || text.size() > 18 ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return InvalidArgumentError("round id '" + text + "' is not a round number");
  }
  return std::stoll(text);
}

}  // namespace

Status FederatedTaskSpec::Validate() const {
  if (!ValidName(name)) {
    return InvalidArgumentError("task name '" + name +
                                "' must be 1 to 128 characters of [A-Za-z0-9._-]");
  }
  if (model.empty()) return InvalidArgumentError("task '" + name + "': model is empty");
  Status round_ok = round.Validate();
  if (!round_ok.ok()) return round_ok.WithContext("task '" + name + "'");
  if (round.dp_enabled() && population.empty()) {
    return InvalidArgumentError("task '" + name +
                                "': DP (dp_clip_norm > 0) needs the population listed");
  }
  if (eval_max_samples < 0) {
    return InvalidArgumentError("task '" + name + "': eval_max_samples must be >= 0");
  }
  if (rollout_percent < 1 || rollout_percent > 100) {
    return InvalidArgumentError("task '" + name + "': rollout_percent " +
                                std::to_string(rollout_percent) + " is not in [1, 100]");
  }
  if (gather_ms < 0) return InvalidArgumentError("task '" + name + "': gather_ms must be >= 0");
  if (max_rounds < 0) return InvalidArgumentError("task '" + name + "': max_rounds must be >= 0");
  return Status::Ok();
}

Status FederatedTasksOptions::Validate() const {
  if (registry_dir.empty()) return InvalidArgumentError("FederatedTasks: registry_dir is empty");
  if (keys_dir.empty()) return InvalidArgumentError("FederatedTasks: keys_dir is empty");
  if (env == nullptr || clock == nullptr) {
    return InvalidArgumentError("FederatedTasks: env and clock must be set");
  }
  if (secure_poll_ms < 1) {
    return InvalidArgumentError("FederatedTasks: secure_poll_ms must be >= 1, got " +
                                std::to_string(secure_poll_ms));
  }
  return Status::Ok();
}

std::string PublishMetadata(const FederatedTaskSpec& spec, int64_t parent_version,
                            const fl::RoundResult& result, std::optional<double> accuracy,
                            int64_t abandoned_since_parent) {
  const fl::RoundRejections& r = result.rejections;
  nlohmann::json rejections = {{"round_mismatch", r.validator.round_mismatch},
                               {"duplicate", r.validator.duplicate},
                               {"bad_examples", r.validator.bad_examples},
                               {"layout_mismatch", r.validator.layout_mismatch},
                               {"non_finite", r.validator.non_finite},
                               {"norm_exceeded", r.validator.norm_exceeded},
                               {"late", r.late},
                               {"not_selected", r.not_selected},
                               {"over_target", r.over_target}};
  nlohmann::json federated = {{"task", spec.name},
                              {"parent_version", parent_version},
                              {"round_id", result.round_id},
                              {"participants", result.participants},
                              {"selected", result.selected},
                              {"rejected", r.total()},
                              {"rejections", rejections},
                              {"examples", result.examples},
                              {"bytes_received", result.bytes_received},
                              {"strategy", spec.round.strategy},
                              {"aggregator", spec.round.aggregator},
                              {"abandoned_since_parent", abandoned_since_parent}};
  // Registry metadata is canonical JSON, integers only: fractions go as decimal strings.
  federated["accuracy"] = accuracy ? nlohmann::json(Decimal(*accuracy)) : nlohmann::json(nullptr);
  if (result.epsilon && std::isfinite(*result.epsilon)) {
    federated["epsilon"] = Decimal(*result.epsilon);
  } else {
    federated["epsilon"] = nullptr;
  }
  if (spec.round.dp_enabled()) federated["dp_delta"] = Decimal(spec.round.dp_delta);
  return nlohmann::json({{"federated", federated}}).dump();
}

struct FederatedTasks::Task {
  std::mutex mu;
  FederatedTaskSpec spec;
  // The graph of the version devices train from; its parameter constants are replaced on apply.
  runtime::Graph graph;
  std::vector<runtime::ValueId> parameters;
  std::unique_ptr<fl::Coordinator> coordinator;
  // The secure aggregation of the open round, or of the last one until the next starts (so a
  // device polling after the round closed still learns whether its input was in the sum), in a
  // task with round.secure_aggregation.
  std::unique_ptr<fl::SecureRoundServer> secure;
  int64_t secure_round_id = 0;
  int64_t model_version = 0;
  std::string semver;
  std::shared_ptr<const data::Dataset> eval;
  // Devices waiting for the next round, with their first join.
  std::map<std::string, int64_t> waiting;
  std::set<std::string> population;
  std::optional<double> last_accuracy;
  int64_t applied = 0;
  int64_t abandoned = 0;
  int64_t abandoned_since_parent = 0;
  std::string last_round_status;
  std::string error;
  // The status.json last written, to skip rewriting an unchanged one.
  std::string status_written;
};

FederatedTasks::FederatedTasks(FederatedTasksOptions options) : options_(std::move(options)) {}
FederatedTasks::~FederatedTasks() = default;

Result<std::unique_ptr<FederatedTasks>> FederatedTasks::Create(FederatedTasksOptions options) {
  HML_RETURN_IF_ERROR(options.Validate());
  return std::unique_ptr<FederatedTasks>(new FederatedTasks(std::move(options)));
}

FederatedTasks::Task* FederatedTasks::Find(const std::string& name) {
  std::lock_guard<std::mutex> lock(tasks_mu_);
  auto it = tasks_.find(name);
  return it == tasks_.end() ? nullptr : it->second.get();
}

Status FederatedTasks::AddTask(const FederatedTaskSpec& spec) {
  HML_RETURN_IF_ERROR(spec.Validate());
  if (Find(spec.name) != nullptr) {
    return AlreadyExistsError("federated task '" + spec.name + "' exists already");
  }
  const std::string where = "federated task '" + spec.name + "'";
  HML_ASSIGN_OR_RETURN(std::vector<ModelSummary> models,
                       Registry::ListDir(*options_.env, options_.registry_dir));
  const ModelSummary* summary = nullptr;
  for (const ModelSummary& m : models) {
    if (m.name == spec.model) summary = &m;
  }
  if (summary == nullptr || summary->versions.empty()) {
    return NotFoundError(where + ": model '" + spec.model + "' has no version in the registry");
  }
  const ModelVersion& start = summary->versions.back();
  auto task = std::make_unique<Task>();
  task->spec = spec;
  task->model_version = start.version;
  task->semver = start.semver;
  HML_ASSIGN_OR_RETURN(std::string bytes,
                       options_.env->ReadFile(options_.registry_dir + "/blobs/" + start.blob));
  Result<runtime::Graph> graph = runtime::ParseOnnxModel(bytes);
  if (!graph.ok()) {
    return graph.status().WithContext(where + ": version " + std::to_string(start.version));
  }
  task->graph = std::move(*graph);

  // The layout: the named float constants, or all of them in graph order.
  fl::UpdateLayout layout;
  std::vector<float> weights;
  auto add = [&](runtime::ValueId id) -> Status {
    const runtime::Value& value = task->graph.value(id);
    if (!value.is_constant() || value.constant->dtype() != DType::kFloat32) {
      return InvalidArgumentError(where + ": parameter '" + value.name +
                                  "' is not a float32 constant of the model");
    }
    layout.push_back({value.name, value.constant->shape()});
    std::span<const float> data = value.constant->values<float>();
    weights.insert(weights.end(), data.begin(), data.end());
    task->parameters.push_back(id);
    return Status::Ok();
  };
  if (spec.parameters.empty()) {
    for (size_t i = 0; i < task->graph.values.size(); ++i) {
      const runtime::Value& value = task->graph.values[i];
      if (value.is_constant() && value.constant->dtype() == DType::kFloat32) {
        HML_RETURN_IF_ERROR(add(static_cast<runtime::ValueId>(i)));
      }
    }
    if (layout.empty()) return InvalidArgumentError(where + ": the model has no float constants");
  } else {
    for (const std::string& name : spec.parameters) {
      const runtime::ValueId id = task->graph.FindValue(name);
      if (id == runtime::kNoValue) {
        return InvalidArgumentError(where + ": parameter '" + name + "' is not in the model");
      }
      HML_RETURN_IF_ERROR(add(id));
    }
  }
  Result<std::unique_ptr<fl::Coordinator>> coordinator =
      fl::Coordinator::Create(spec.round, std::move(layout), std::move(weights), spec.population);
  if (!coordinator.ok()) return coordinator.status().WithContext(where);
  task->coordinator = std::move(*coordinator);
  task->population = std::set<std::string>(spec.population.begin(), spec.population.end());

  if (!spec.eval_data.empty()) {
    Result<data::DataSource> source = data::OpenDataSpec(*options_.env, spec.eval_data);
    if (!source.ok()) return source.status().WithContext(where + ": eval_data");
    task->eval = source->test != nullptr ? source->test : source->all;
  }

  std::lock_guard<std::mutex> lock(tasks_mu_);
  auto [it, inserted] = tasks_.emplace(spec.name, std::move(task));
  if (!inserted) return AlreadyExistsError(where + " exists already");
  std::lock_guard<std::mutex> task_lock(it->second->mu);
  WriteStatusLocked(*it->second);
  return Status::Ok();
}

std::vector<std::string> FederatedTasks::AddTasksFromRegistry(std::vector<std::string>* errors) {
  std::vector<std::string> added;
  const std::string dir = FederatedDir(options_.registry_dir);
  if (!DirExists(dir)) return added;
  Result<std::vector<std::string>> entries = ListDir(dir);
  if (!entries.ok()) {
    if (errors) errors->push_back(std::string(entries.status().ToString()));
    return added;
  }
  for (const std::string& entry : *entries) {
    if (Find(entry) != nullptr) continue;
    const std::string path = dir + "/" + entry + "/task.json";
    if (!options_.env->FileExists(path)) continue;
    Result<std::string> text = options_.env->ReadFile(path, int64_t{1} << 20);
    Result<FederatedTaskSpec> spec =
        text.ok() ? ParseTaskSpec(*text) : Result<FederatedTaskSpec>(text.status());
    Status status = spec.ok() ? AddTask(*spec) : spec.status();
    if (status.ok() && spec->name != entry) {
      // Added under its own name; the directory name is only where it was found.
      HML_LOG(nullptr, kWarning) << path << ": task name '" << spec->name
                                 << "' differs from its directory";
    }
    if (status.ok()) {
      added.push_back(spec->name);
    } else if (errors != nullptr) {
      errors->push_back(path + ": " + status.ToString());
    }
  }
  return added;
}

Result<JoinAnswer> FederatedTasks::Join(const std::string& name, const std::string& device_id,
                                        int64_t now_ms) {
  Task* task = Find(name);
  if (task == nullptr) return NotFoundError("federated task '" + name + "' does not exist");
  std::lock_guard<std::mutex> lock(task->mu);
  if (!task->population.empty() && !task->population.contains(device_id)) {
    return PermissionDeniedError("device '" + device_id + "' is not in the population of task '" +
                                 name + "'");
  }
  JoinAnswer answer;
  answer.model_version = task->model_version;
  const fl::Coordinator& c = *task->coordinator;
  if (c.IsSelected(device_id)) {
    const fl::RoundProgress progress = c.Progress();
    answer.round_id = progress.round_id;
    answer.deadline_ms = progress.deadline_ms;
    answer.config = c.config().ClientConfig();
    return answer;
  }
  task->waiting.emplace(device_id, now_ms);  // keeps the first join
  return answer;
}

Result<bool> FederatedTasks::Submit(const std::string& name, const std::string& device_id,
                                    const std::string& round_text, std::string_view sealed,
                                    uint64_t example_count, int64_t now_ms) {
  Task* task = Find(name);
  if (task == nullptr) return NotFoundError("federated task '" + name + "' does not exist");
  HML_ASSIGN_OR_RETURN(int64_t round_id, ParseRoundId(round_text));
  HML_ASSIGN_OR_RETURN(fl::DecodedUpdate decoded, fl::DecodeUpdate(sealed));
  fl::ModelUpdate& update = decoded.update;
  std::lock_guard<std::mutex> lock(task->mu);
  const fl::RoundConfig& config = task->coordinator->config();
  if (fl::WireCodecName(decoded.codec) != config.codec) {
    return InvalidArgumentError("update from device '" + device_id + "' is encoded with " +
                                std::string(fl::WireCodecName(decoded.codec)) + ", task '" + name +
                                "' uses " + config.codec);
  }
  if (update.round_id != round_id) {
    return InvalidArgumentError("update from device '" + device_id + "' is sealed for round " +
                                std::to_string(update.round_id) + " but sent for round " +
                                round_text);
  }
  if (update.num_examples < 0 || static_cast<uint64_t>(update.num_examples) != example_count) {
    return InvalidArgumentError("update from device '" + device_id + "' is sealed with " +
                                std::to_string(update.num_examples) + " examples but sent with " +
                                std::to_string(example_count));
  }
  if (!update.client_id.empty() && update.client_id != device_id) {
    return PermissionDeniedError("update sealed by client '" + update.client_id +
                                 "' was sent by device '" + device_id + "'");
  }
  update.client_id = device_id;
  Status status =
      task->coordinator->Submit(std::move(update), static_cast<int64_t>(sealed.size()), now_ms);
  if (status.ok()) return true;
  switch (status.code()) {
    case StatusCode::kDeadlineExceeded:    // late
    case StatusCode::kResourceExhausted:   // the round already has its target
    case StatusCode::kFailedPrecondition:  // no round open, or another round's update
      return false;
    default:
      return status;
  }
}

Status FederatedTasks::Tick(int64_t now_ms) {
  std::vector<Task*> tasks;
  {
    std::lock_guard<std::mutex> lock(tasks_mu_);
    for (auto& [name, task] : tasks_) tasks.push_back(task.get());
  }
  Status first;
  for (Task* task : tasks) {
    std::lock_guard<std::mutex> lock(task->mu);
    Status status = TickTask(*task, now_ms);
    WriteStatusLocked(*task);
    if (!status.ok() && first.ok()) first = status;
  }
  return first;
}

Result<std::string> FederatedTasks::SecureExchange(const std::string& name,
                                                   const std::string& device_id,
                                                   const std::string& round_text,
                                                   std::string_view message, int64_t now_ms) {
  Task* task = Find(name);
  if (task == nullptr) return NotFoundError("federated task '" + name + "' does not exist");
  HML_ASSIGN_OR_RETURN(int64_t round_id, ParseRoundId(round_text));
  std::lock_guard<std::mutex> lock(task->mu);
  fl::Coordinator& c = *task->coordinator;
  if (!c.config().secure_aggregation) {
    return FailedPreconditionError("federated task '" + name +
                                   "' does not use secure aggregation: submit the update instead");
  }
  const bool open = c.round_open() && c.round_id() == round_id;
  const bool just_closed = task->secure != nullptr && task->secure_round_id == round_id;
  if (!open && !just_closed) {
    return FailedPreconditionError("round " + round_text + " of task '" + name + "' is not open");
  }
  if (task->secure == nullptr) {
    return FailedPreconditionError("round " + round_text + " of task '" + name +
                                   "' has no secure aggregation (it could not start; see the "
                                   "server log)");
  }
  fl::SecureWireLimits limits;
  limits.max_elements = static_cast<int64_t>(c.global_weights().size());
  HML_ASSIGN_OR_RETURN(fl::SecureClientMessage decoded,
                       fl::DecodeSecureClientMessage(message, limits));
  HML_ASSIGN_OR_RETURN(
      fl::SecureReply reply,
      task->secure->Exchange(device_id, decoded, static_cast<int64_t>(message.size()), now_ms));
  if (open) OfferSecureAggregate(*task, now_ms);
  return fl::EncodeSecureReply(reply);
}

void FederatedTasks::OfferSecureAggregate(Task& task, int64_t now_ms) {
  if (task.secure == nullptr) return;
  task.secure->Advance(now_ms);
  std::optional<fl::SecureAggregate> aggregate = task.secure->TakeAggregate();
  if (!aggregate.has_value()) return;
  // A refused aggregate is counted in the round's result (and the round abandoned).
  Status offered = task.coordinator->SubmitSecureAggregate(std::move(*aggregate), now_ms);
  if (!offered.ok()) {
    HML_LOG(nullptr, kWarning) << "federated task '" << task.spec.name
                               << "': secure aggregate refused: " << offered.ToString();
  }
}

Status FederatedTasks::TickTask(Task& task, int64_t now_ms) {
  fl::Coordinator& c = *task.coordinator;
  OfferSecureAggregate(task, now_ms);
  if (c.round_open() && c.ShouldClose(now_ms)) {
    if (task.secure != nullptr) {
      task.secure->Abandon("the round closed at its deadline before the sum was taken");
      if (task.secure->aborted()) {
        HML_LOG(nullptr, kWarning) << "federated task '" << task.spec.name << "' round "
                                   << c.round_id() << ": " << task.secure->abort_reason();
      }
    }
    HML_ASSIGN_OR_RETURN(fl::RoundResult result, c.Close(now_ms));
    if (result.status == fl::RoundStatus::kApplied) {
      ++task.applied;
      task.last_round_status = "applied";
      Status published = PublishRound(task, result);
      if (!published.ok()) {
        task.error = published.ToString();
        HML_LOG(nullptr, kError) << "federated task '" << task.spec.name << "': " << task.error;
        return published;
      }
      task.abandoned_since_parent = 0;
    } else {
      ++task.abandoned;
      ++task.abandoned_since_parent;
      task.last_round_status = "abandoned: " + result.abandon_reason;
    }
  }
  if (c.round_open() || !task.error.empty()) return Status::Ok();
  if (task.spec.max_rounds > 0 && task.applied >= task.spec.max_rounds) return Status::Ok();
  const int64_t waiting = static_cast<int64_t>(task.waiting.size());
  if (waiting < c.config().MinReports()) return Status::Ok();
  int64_t first_join = now_ms;
  for (const auto& [device, joined] : task.waiting) first_join = std::min(first_join, joined);
  if (waiting < c.config().NumToSelect() && now_ms - first_join < task.spec.gather_ms) {
    return Status::Ok();
  }
  std::vector<std::string> eligible;
  for (const auto& [device, joined] : task.waiting) eligible.push_back(device);
  Result<fl::RoundPlan> plan = c.StartRound(now_ms, eligible);
  if (!plan.ok()) return plan.status().WithContext("federated task '" + task.spec.name + "'");
  task.waiting.clear();
  task.secure.reset();
  if (c.config().secure_aggregation) {
    fl::SecureRoundOptions secure;
    secure.cohort = plan->selected;
    secure.elements = static_cast<int64_t>(c.global_weights().size());
    secure.threshold_fraction = c.config().secure_threshold_fraction;
    secure.start_ms = now_ms;
    secure.deadline_ms = plan->deadline_ms;
    secure.poll_ms = options_.secure_poll_ms;
    Result<std::unique_ptr<fl::SecureRoundServer>> server =
        fl::SecureRoundServer::Create(std::move(secure));
    // Without it no device can contribute: the round is abandoned at its deadline.
    if (!server.ok()) {
      HML_LOG(nullptr, kError) << "federated task '" << task.spec.name << "' round "
                               << plan->round_id << ": secure aggregation cannot start: "
                               << server.status().ToString();
    } else {
      task.secure = std::move(*server);
      task.secure_round_id = plan->round_id;
    }
  }
  return Status::Ok();
}

Status FederatedTasks::PublishRound(Task& task, const fl::RoundResult& result) {
  const std::string where =
      "federated task '" + task.spec.name + "' round " + std::to_string(result.round_id);
  // The new weights into a copy of the graph, constant by constant (sizes checked).
  runtime::Graph graph = task.graph;
  const std::vector<float>& weights = task.coordinator->global_weights();
  size_t offset = 0;
  for (runtime::ValueId id : task.parameters) {
    runtime::Value& value = graph.value(id);
    const size_t n = static_cast<size_t>(value.constant->num_elements());
    if (offset + n > weights.size()) {
      return InternalError(where + ": the global weights end inside '" + value.name + "'");
    }
    HML_ASSIGN_OR_RETURN(Tensor tensor, Tensor::Allocate(DType::kFloat32, value.constant->shape()));
    std::memcpy(tensor.raw_data(), weights.data() + offset, n * sizeof(float));
    value.constant = std::make_shared<const Tensor>(std::move(tensor));
    offset += n;
  }
  if (offset != weights.size()) {
    return InternalError(where + ": " + std::to_string(weights.size()) +
                         " global weights, the parameters hold " + std::to_string(offset));
  }
  Result<std::string> onnx = runtime::SerializeOnnxModel(graph);
  if (!onnx.ok()) return onnx.status().WithContext(where);
  const std::string dir = FederatedTaskDir(options_.registry_dir, task.spec.name);
  HML_RETURN_IF_ERROR(MakeDirs(dir));
  const std::string path = dir + "/round-" + std::to_string(result.round_id) + ".onnx";
  HML_RETURN_IF_ERROR(options_.env->WriteFileAtomic(path, *onnx));

  std::optional<double> accuracy;
  if (task.eval != nullptr) {
    Result<Model> model = Model::FromOnnx(*onnx);
    if (!model.ok()) return model.status().WithContext(where + ": the new model");
    data::EvaluateOptions eval_options;
    eval_options.max_samples = task.spec.eval_max_samples;
    Result<data::Evaluation> evaluation = data::EvaluateModel(*model, *task.eval, eval_options);
    if (!evaluation.ok()) return evaluation.status().WithContext(where + ": evaluation");
    accuracy = evaluation->accuracy;
  }

  const std::string semver = ReleasePart(task.semver) + "-fl." +
                             std::to_string(task.model_version) + "." +
                             std::to_string(result.round_id);
  const std::string metadata =
      PublishMetadata(task.spec, task.model_version, result, accuracy, task.abandoned_since_parent);
  ModelVersion published;
  {
    std::lock_guard<std::mutex> lock(registry_mu_);
    Result<RegistryKeys> keys = LoadKeyDir(*options_.env, options_.keys_dir);
    if (!keys.ok()) return keys.status().WithContext(where + ": registry keys");
    Result<std::unique_ptr<Registry>> registry =
        Registry::Open(*options_.env, *options_.clock, options_.registry_dir, std::move(*keys));
    if (!registry.ok()) return registry.status().WithContext(where + ": open registry");
    Result<ModelVersion> version = (*registry)->Publish(path, task.spec.model, semver, metadata);
    if (!version.ok()) return version.status().WithContext(where + ": publish");
    published = *version;
    if (!task.spec.rollout_channel.empty()) {
      Status rolled = (*registry)->Rollout(task.spec.model, published.version,
                                           task.spec.rollout_channel, task.spec.rollout_percent);
      if (!rolled.ok()) return rolled.WithContext(where + ": rollout");
    }
  }
  // Devices now start from the published version: its graph is the next template.
  task.graph = std::move(graph);
  task.model_version = published.version;
  task.semver = published.semver;
  task.last_accuracy = accuracy;
  HML_LOG(nullptr, kInfo) << where << ": published " << task.spec.model << " version "
                          << published.version << " (" << result.participants << " participants"
                          << (accuracy ? ", accuracy " : "")
                          << (accuracy ? std::to_string(*accuracy) : "") << ")";
  return Status::Ok();
}

FederatedTaskStatus FederatedTasks::StatusLocked(const Task& task) const {
  const fl::Coordinator& c = *task.coordinator;
  const fl::RoundProgress progress = c.Progress();
  FederatedTaskStatus s;
  s.task = task.spec.name;
  s.model = task.spec.model;
  s.model_version = task.model_version;
  if (!task.error.empty()) {
    s.state = "failed";
  } else if (progress.open) {
    s.state = "open";
  } else if (task.spec.max_rounds > 0 && task.applied >= task.spec.max_rounds) {
    s.state = "done";
  } else {
    s.state = "waiting";
  }
  s.round_id = progress.round_id;
  s.waiting = static_cast<int64_t>(task.waiting.size());
  s.selected = progress.selected;
  s.submitted = progress.accepted;
  // A secure round accepts its updates all at once, with the sum: until then, its masked inputs.
  if (progress.open && task.secure != nullptr && progress.accepted == 0) {
    s.submitted = task.secure->inputs_received();
  }
  s.target = progress.target;
  s.min_reports = progress.min_reports;
  s.deadline_ms = progress.open ? progress.deadline_ms : 0;
  s.rounds_applied = task.applied;
  s.rounds_abandoned = task.abandoned;
  s.last_accuracy = task.last_accuracy;
  s.epsilon = c.epsilon();
  s.last_round_status = task.last_round_status;
  s.error = task.error;
  return s;
}

void FederatedTasks::WriteStatusLocked(Task& task) {
  if (!options_.write_status_files) return;
  std::string json = TaskStatusToJson(StatusLocked(task));
  if (json == task.status_written) return;  // unchanged: no write, no fsync
  const std::string dir = FederatedTaskDir(options_.registry_dir, task.spec.name);
  Status status = MakeDirs(dir);
  if (status.ok()) status = options_.env->WriteFileAtomic(dir + "/status.json", json);
  if (status.ok()) task.status_written = std::move(json);
  if (!status.ok()) {
    HML_LOG(nullptr, kWarning) << "federated task '" << task.spec.name
                               << "': status file: " << status.ToString();
  }
}

Result<FederatedTaskStatus> FederatedTasks::TaskStatus(const std::string& name) {
  Task* task = Find(name);
  if (task == nullptr) return NotFoundError("federated task '" + name + "' does not exist");
  std::lock_guard<std::mutex> lock(task->mu);
  return StatusLocked(*task);
}

std::vector<FederatedTaskStatus> FederatedTasks::AllStatus() {
  std::vector<Task*> tasks;
  {
    std::lock_guard<std::mutex> lock(tasks_mu_);
    for (auto& [name, task] : tasks_) tasks.push_back(task.get());
  }
  std::vector<FederatedTaskStatus> out;
  for (Task* task : tasks) {
    std::lock_guard<std::mutex> lock(task->mu);
    out.push_back(StatusLocked(*task));
  }
  return out;
}

Result<std::vector<fl::RoundResult>> FederatedTasks::History(const std::string& name) {
  Task* task = Find(name);
  if (task == nullptr) return NotFoundError("federated task '" + name + "' does not exist");
  std::lock_guard<std::mutex> lock(task->mu);
  return task->coordinator->history();
}

void FillJoinRoundResponse(const JoinAnswer& answer, hybridml::v1::JoinRoundResponse* response) {
  if (answer.round_id > 0) {
    response->set_round_id(std::to_string(answer.round_id));
    response->set_deadline_ms(answer.deadline_ms);
    response->mutable_config()->insert(answer.config.begin(), answer.config.end());
  }
  response->set_model_version(std::to_string(answer.model_version));
}

}  // namespace hml::server

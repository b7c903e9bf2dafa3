// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/server/fl/task_file.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

namespace hml::server {
namespace {

using Json = nlohmann::json;

// One JSON field bound to a struct member: how to read it and how to write it.
struct Field {
  std::function<Status(const Json&)> read;
  std::function<Json()> write;
};

Status WrongType(std::string_view where, std::string_view key, std::string_view want) {
  return InvalidArgumentError(std::string(where) + ": field '" + std::string(key) + "' must be " +
                              std::string(want));
}

// A field holding one JSON scalar of type T, checked with `is` (e.g. &Json::is_string).
template <typename T>
Field Scalar(std::string_view where, std::string key, T* out, bool (Json::*is)() const noexcept,
             const char* want) {
  return {[where, key, out, is, want](const Json& v) {
            if (!(v.*is)()) return WrongType(where, key, want);
            *out = v.get<T>();
            return Status::Ok();
          },
          [out] { return Json(*out); }};
}

Field Int(std::string_view where, std::string key, int64_t* out) {
  return Scalar(where, std::move(key), out, &Json::is_number_integer, "an integer");
}
Field Uint(std::string_view where, std::string key, uint64_t* out) {
  return Scalar(where, std::move(key), out, &Json::is_number_unsigned, "an integer >= 0");
}
Field Double(std::string_view where, std::string key, double* out) {
  return Scalar(where, std::move(key), out, &Json::is_number, "a number");
}
Field String(std::string_view where, std::string key, std::string* out) {
  return Scalar(where, std::move(key), out, &Json::is_string, "a string");
}
Field Bool(std::string_view where, std::string key, bool* out) {
  return Scalar(where, std::move(key), out, &Json::is_boolean, "true or false");
}

Field Strings(std::string_view where, std::string key, std::vector<std::string>* out) {
  return {[where, key, out](const Json& v) {
            if (!v.is_array()) return WrongType(where, key, "an array of strings");
            out->clear();
            for (const Json& item : v) {
              if (!item.is_string()) return WrongType(where, key, "an array of strings");
              out->push_back(item.get<std::string>());
            }
            return Status::Ok();
          },
          [out] { return Json(*out); }};
}

Field OptionalDouble(std::string_view where, std::string key, std::optional<double>* out) {
  return {[where, key, out](const Json& v) {
            if (v.is_null()) {
              out->reset();
              return Status::Ok();
            }
            if (!v.is_number()) return WrongType(where, key, "a number or null");
            *out = v.get<double>();
            return Status::Ok();
          },
          [out] {
            // JSON has no infinity: an infinite epsilon is written as the string "inf".
            if (!out->has_value()) return Json(nullptr);
            if (std::isinf(**out)) return Json("inf");
            return Json(**out);
          }};
}

std::map<std::string, Field> RoundFields(fl::RoundConfig& c) {
  constexpr std::string_view w = "task round";
  return {
      {"clients_per_round", Int(w, "clients_per_round", &c.clients_per_round)},
      {"over_selection", Double(w, "over_selection", &c.over_selection)},
      {"min_report_fraction", Double(w, "min_report_fraction", &c.min_report_fraction)},
      {"deadline_ms", Int(w, "deadline_ms", &c.deadline_ms)},
      {"local_epochs", Int(w, "local_epochs", &c.local_epochs)},
      {"local_steps", Int(w, "local_steps", &c.local_steps)},
      {"batch_size", Int(w, "batch_size", &c.batch_size)},
      {"learning_rate", Double(w, "learning_rate", &c.learning_rate)},
      {"prox_mu", Double(w, "prox_mu", &c.prox_mu)},
      {"strategy", String(w, "strategy", &c.strategy)},
      {"aggregator", String(w, "aggregator", &c.aggregator)},
      {"server_lr", Double(w, "server_lr", &c.server_lr)},
      {"server_momentum", Double(w, "server_momentum", &c.server_momentum)},
      {"beta1", Double(w, "beta1", &c.beta1)},
      {"beta2", Double(w, "beta2", &c.beta2)},
      {"tau", Double(w, "tau", &c.tau)},
      {"trim_fraction", Double(w, "trim_fraction", &c.trim_fraction)},
      {"krum_f", Int(w, "krum_f", &c.krum_f)},
      {"dp_clip_norm", Double(w, "dp_clip_norm", &c.dp_clip_norm)},
      {"dp_noise_multiplier", Double(w, "dp_noise_multiplier", &c.dp_noise_multiplier)},
      {"dp_delta", Double(w, "dp_delta", &c.dp_delta)},
      {"codec", String(w, "codec", &c.codec)},
      {"int8_chunk_size", Int(w, "int8_chunk_size", &c.int8_chunk_size)},
      {"topk_fraction", Double(w, "topk_fraction", &c.topk_fraction)},
      {"max_l2_norm", Double(w, "max_l2_norm", &c.max_l2_norm)},
      {"secure_aggregation", Bool(w, "secure_aggregation", &c.secure_aggregation)},
      {"secure_threshold_fraction",
       Double(w, "secure_threshold_fraction", &c.secure_threshold_fraction)},
      {"seed", Uint(w, "seed", &c.seed)},
  };
}

std::map<std::string, Field> SpecFields(FederatedTaskSpec& s) {
  constexpr std::string_view w = "task";
  return {
      {"name", String(w, "name", &s.name)},
      {"model", String(w, "model", &s.model)},
      {"parameters", Strings(w, "parameters", &s.parameters)},
      {"population", Strings(w, "population", &s.population)},
      {"eval_data", String(w, "eval_data", &s.eval_data)},
      {"eval_max_samples", Int(w, "eval_max_samples", &s.eval_max_samples)},
      {"rollout_channel", String(w, "rollout_channel", &s.rollout_channel)},
      {"rollout_percent", Int(w, "rollout_percent", &s.rollout_percent)},
      {"gather_ms", Int(w, "gather_ms", &s.gather_ms)},
      {"max_rounds", Int(w, "max_rounds", &s.max_rounds)},
  };
}

std::map<std::string, Field> StatusFields(FederatedTaskStatus& s) {
  constexpr std::string_view w = "task status";
  return {
      {"task", String(w, "task", &s.task)},
      {"model", String(w, "model", &s.model)},
      {"model_version", Int(w, "model_version", &s.model_version)},
      {"state", String(w, "state", &s.state)},
      {"round_id", Int(w, "round_id", &s.round_id)},
      {"waiting", Int(w, "waiting", &s.waiting)},
      {"selected", Int(w, "selected", &s.selected)},
      {"submitted", Int(w, "submitted", &s.submitted)},
      {"target", Int(w, "target", &s.target)},
      {"min_reports", Int(w, "min_reports", &s.min_reports)},
      {"deadline_ms", Int(w, "deadline_ms", &s.deadline_ms)},
      {"rounds_applied", Int(w, "rounds_applied", &s.rounds_applied)},
      {"rounds_abandoned", Int(w, "rounds_abandoned", &s.rounds_abandoned)},
      {"last_accuracy", OptionalDouble(w, "last_accuracy", &s.last_accuracy)},
      {"epsilon", OptionalDouble(w, "epsilon", &s.epsilon)},
      {"last_round_status", String(w, "last_round_status", &s.last_round_status)},
      {"error", String(w, "error", &s.error)},
  };
}

Status ReadObject(std::string_view where, const Json& object, std::map<std::string, Field>& fields,
                  const char* nested_key = nullptr,
                  std::map<std::string, Field>* nested = nullptr) {
  if (!object.is_object())
    return InvalidArgumentError(std::string(where) + " is not a JSON object");
  for (const auto& [key, value] : object.items()) {
    if (nested_key != nullptr && key == nested_key) {
      HML_RETURN_IF_ERROR(ReadObject(std::string(where) + " " + key, value, *nested));
      continue;
    }
    auto it = fields.find(key);
    if (it == fields.end()) {
      return InvalidArgumentError(std::string(where) + ": unknown field '" + key + "'");
    }
    HML_RETURN_IF_ERROR(it->second.read(value));
  }
  return Status::Ok();
}

Json WriteObject(std::map<std::string, Field>& fields) {
  Json out = Json::object();
  for (auto& [key, field] : fields) out[key] = field.write();
  return out;
}

Result<Json> Parse(std::string_view where, std::string_view text) {
  Json json = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return InvalidArgumentError(std::string(where) + " is not valid JSON");
  return json;
}

}  // namespace

std::string FederatedDir(const std::string& registry_dir) { return registry_dir + "/fl"; }

std::string FederatedTaskDir(const std::string& registry_dir, const std::string& task) {
  return FederatedDir(registry_dir) + "/" + task;
}

Result<FederatedTaskSpec> ParseTaskSpec(std::string_view json) {
  HML_ASSIGN_OR_RETURN(Json parsed, Parse("task file", json));
  FederatedTaskSpec spec;
  auto fields = SpecFields(spec);
  auto round = RoundFields(spec.round);
  HML_RETURN_IF_ERROR(ReadObject("task", parsed, fields, "round", &round));
  HML_RETURN_IF_ERROR(spec.Validate());
  return spec;
}

std::string TaskSpecToJson(const FederatedTaskSpec& spec) {
  FederatedTaskSpec copy = spec;
  auto fields = SpecFields(copy);
  auto round = RoundFields(copy.round);
  Json out = WriteObject(fields);
  out["round"] = WriteObject(round);
  return out.dump(2) + "\n";
}

std::string TaskStatusToJson(const FederatedTaskStatus& status) {
  FederatedTaskStatus copy = status;
  auto fields = StatusFields(copy);
  return WriteObject(fields).dump(2) + "\n";
}

Result<FederatedTaskStatus> ParseTaskStatus(std::string_view json) {
  HML_ASSIGN_OR_RETURN(Json parsed, Parse("task status", json));
  FederatedTaskStatus status;
  auto fields = StatusFields(status);
  // "inf" is how an infinite epsilon is written.
  if (parsed.is_object() && parsed.contains("epsilon") && parsed["epsilon"] == "inf") {
    parsed.erase("epsilon");
    status.epsilon = INFINITY;
  }
  HML_RETURN_IF_ERROR(ReadObject("task status", parsed, fields));
  return status;
}

std::string FormatStatusTable(const std::vector<FederatedTaskStatus>& tasks, int64_t now_ms) {
  std::vector<std::vector<std::string>> rows = {{"TASK", "MODEL", "VERSION", "STATE", "ROUND",
                                                 "WAITING", "SELECTED", "SUBMITTED", "DEADLINE",
                                                 "ACCURACY", "EPSILON"}};
  auto number = [](double value, const char* format) {
    char buffer[32];
    std::snprintf(buffer, sizeof(buffer), format, value);
    return std::string(buffer);
  };
  for (const FederatedTaskStatus& t : tasks) {
    std::string deadline = "-";
    if (t.state == "open" && t.deadline_ms > 0) {
      const int64_t left = t.deadline_ms - now_ms;
      deadline = left < 0 ? "passed" : number(static_cast<double>(left) / 1000.0, "%.0fs");
    }
    std::string epsilon = "-";
    if (t.epsilon) epsilon = std::isinf(*t.epsilon) ? "inf" : number(*t.epsilon, "%.3g");
    rows.push_back({t.task, t.model, std::to_string(t.model_version), t.state,
                    t.round_id > 0 ? std::to_string(t.round_id) : "-", std::to_string(t.waiting),
                    std::to_string(t.selected),
                    std::to_string(t.submitted) + "/" + std::to_string(t.target), deadline,
                    t.last_accuracy ? number(*t.last_accuracy * 100.0, "%.2f%%") : "-", epsilon});
  }
  std::vector<size_t> widths(rows[0].size(), 0);
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(widths[i] - row[i].size() + 2, ' ');
    }
    out += line + "\n";
  }
  for (const FederatedTaskStatus& t : tasks) {
    if (!t.error.empty()) {
      out += t.task + ": error: " + t.error + "\n";
    } else if (!t.last_round_status.empty()) {
      out += t.task + ": last round " + t.last_round_status + " (" +
             std::to_string(t.rounds_applied) + " applied, " + std::to_string(t.rounds_abandoned) +
             " abandoned)\n";
    }
  }
  return out;
}

}  // namespace hml::server

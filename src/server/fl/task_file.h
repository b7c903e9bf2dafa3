// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Federated tasks on disk, in the registry directory:
//   <registry>/fl/<task>/task.json     the FederatedTaskSpec (`hybridml fl start` writes it,
//                                      `hybridml serve --keys` runs it)
//   <registry>/fl/<task>/status.json   the FederatedTaskStatus, rewritten by the server when a
//                                      tick changed it (`hybridml fl status` prints it)
//   <registry>/fl/<task>/round-<R>.onnx  the model each applied round published
//
// task.json is one JSON object with the FederatedTaskSpec field names and a "round" object with
// the fl::RoundConfig field names, e.g.
//   {"name": "fmnist", "model": "cnn", "eval_data": "fashion-mnist",
//    "rollout_channel": "stable",
//    "round": {"clients_per_round": 10, "deadline_ms": 600000, "strategy": "fedadam"}}
// Every field is optional but name and model; an unknown field is an error (a typo must not
// silently fall back to a default).
#ifndef HML_SRC_SERVER_FL_TASK_FILE_H_
#define HML_SRC_SERVER_FL_TASK_FILE_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "hml/status.h"
#include "src/server/fl/federated_tasks.h"

namespace hml::server {

// <registry>/fl and <registry>/fl/<task>.
std::string FederatedDir(const std::string& registry_dir);
std::string FederatedTaskDir(const std::string& registry_dir, const std::string& task);

// Parses and validates task.json. kInvalidArgument naming the field (wrong type, unknown field,
// out of range) or the JSON error.
Result<FederatedTaskSpec> ParseTaskSpec(std::string_view json);
// The spec as task.json (every field written).
std::string TaskSpecToJson(const FederatedTaskSpec& spec);

std::string TaskStatusToJson(const FederatedTaskStatus& status);
// kInvalidArgument for text that is not a status object.
Result<FederatedTaskStatus> ParseTaskStatus(std::string_view json);

// The round-progress table `hybridml fl status` prints, one row per task:
//   TASK MODEL VERSION STATE ROUND WAITING SELECTED SUBMITTED DEADLINE ACCURACY EPSILON
// SUBMITTED is "accepted/target" of the open round; DEADLINE the time left at `now_ms` (wall ms)
// ("-" without an open round, "passed" after it); ACCURACY the last published version's; then,
// under the table, one line per task with a last round status or an error.
std::string FormatStatusTable(const std::vector<FederatedTaskStatus>& tasks, int64_t now_ms);

}  // namespace hml::server

#endif  // HML_SRC_SERVER_FL_TASK_FILE_H_

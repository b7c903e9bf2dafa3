// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/cli/commands.h"

namespace hml::cli {
// `hybridml compress` arrives with src/compress (issue 3); nothing is registered yet.
void AddCompressCommand(CLI::App& app, int& exit_code) {}
}  // namespace hml::cli

// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Subcommands that live in their own files. Each Add*Command registers one subcommand on `app`
// whose callback runs it and stores its exit code in `exit_code`.
#ifndef HML_SRC_CLI_COMMANDS_H_
#define HML_SRC_CLI_COMMANDS_H_

#include <CLI/CLI.hpp>

namespace hml::cli {

// auth admin-key|enrollment-secret create|revoke|list; devices list|revoke.
void AddAuthCommands(CLI::App& app, int& exit_code);  // auth_command.cc
// certs: a development CA and server/client certificates for TLS.
void AddCertsCommand(CLI::App& app, int& exit_code);     // certs_command.cc
void AddCompressCommand(CLI::App& app, int& exit_code);  // compress_command.cc
// fl start|status: register a federated task in a registry; its rounds' progress.
void AddFlCommands(CLI::App& app, int& exit_code);  // fl_command.cc
// ingest keygen|export: the ingest key pair; uploaded batches -> a sample directory.
void AddIngestCommands(CLI::App& app, int& exit_code);  // ingest_command.cc
// loadgen: open-loop load on a v2 inference server (gRPC or HTTP), latency percentiles.
void AddLoadgenCommand(CLI::App& app, int& exit_code);  // loadgen_command.cc
// keys init|rotate, publish, rollout, rollback, models.
void AddRegistryCommands(CLI::App& app, int& exit_code);  // registry_command.cc
// serve: the registry's models over HTTP(S) and gRPC.
void AddServeCommand(CLI::App& app, int& exit_code);  // serve_command.cc
#ifdef HML_WITH_TRAIN
// demo: train, compress, publish, roll out, and a simulated fleet routing under each policy.
void AddDemoCommand(CLI::App& app, int& exit_code);  // demo_command.cc
void AddTrainCommand(CLI::App& app, int& exit_code);  // train_command.cc
#endif

}  // namespace hml::cli

#endif  // HML_SRC_CLI_COMMANDS_H_

// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The ingest commands (issue 6, "Data and sync"):
//   hybridml ingest keygen --out DIR
//     writes DIR/ingest.pub (give it to devices) and DIR/ingest.key (0600, keep it where the
//     training job runs; `hybridml serve` never needs it); refuses to replace existing keys.
//   hybridml ingest export --registry DIR --key ingest.key --out DATASET_DIR [--model NAME]
//     opens every batch devices uploaded into DIR/ingest.db and writes the labelled samples as a
//     sample directory for `hybridml train --data dir:DATASET_DIR`; a batch that does not open
//     is listed by id and device and skipped; running it again only adds new samples.
// The logic lives in src/server/ingest/ (ingest_keys.h, dataset_export.h); this file is wiring.
#include <cstdio>
#include <memory>
#include <string>

#include "hml/env.h"
#include "src/cli/commands.h"
#include "src/data/dataset.h"
#include "src/server/ingest/dataset_export.h"
#include "src/server/ingest/ingest_keys.h"
#include "src/server/ingest/ingest_store.h"

namespace hml::cli {
namespace {

int Fail(const char* command, const Status& s) {
  std::fprintf(stderr, "hybridml ingest %s: %s\n", command, s.ToString().c_str());
  return 1;
}

struct IngestFlags {
  std::string out;
  std::string registry_dir;
  std::string key_file;
  std::string model;
};

int Keygen(const IngestFlags& f) {
  Result<sync::IngestKeyPair> keys = server::CreateIngestKeyFiles(f.out);
  if (!keys.ok()) return Fail("keygen", keys.status());
  std::printf("wrote %s/%s (public: %s) and %s/%s (secret, mode 0600)\n", f.out.c_str(),
              server::kIngestPublicKeyFile, sync::KeyToHex(keys->public_key).c_str(), f.out.c_str(),
              server::kIngestSecretKeyFile);
  return 0;
}

int Export(const IngestFlags& f) {
  Result<sync::IngestKeyPair> keys = server::ReadIngestSecretKeyFile(f.key_file);
  if (!keys.ok()) return Fail("export", keys.status());
  const std::string db = f.registry_dir + "/ingest.db";
  if (!DefaultEnv()->FileExists(db)) {
    return Fail("export", NotFoundError("'" + db + "' does not exist: no device has uploaded " +
                                        "to this registry's server yet"));
  }
  Result<std::unique_ptr<server::IngestStore>> store = server::IngestStore::Open(db);
  if (!store.ok()) return Fail("export", store.status());
  server::DatasetExportOptions options;
  options.out_dir = f.out;
  options.model = f.model;
  Result<server::DatasetExportReport> report =
      server::ExportDataset(**store, *keys, *DefaultEnv(), options);
  if (!report.ok()) return Fail("export", report.status());
  for (const server::FailedBatch& b : report->failed) {
    std::fprintf(stderr, "skipped batch %lld from device %s (key %s): %s\n",
                 static_cast<long long>(b.id), b.device_id.c_str(), b.idempotency_key.c_str(),
                 b.error.ToString().c_str());
  }
  const server::DatasetExportReport& r = *report;
  std::printf(
      "batches: %lld stored, %lld opened, %zu skipped; records: %lld; samples: %lld written, "
      "%lld unchanged, shape %s; not exported: %lld unlabelled, %lld without features, %lld "
      "other model, %lld other shape\n",
      static_cast<long long>(r.batches), static_cast<long long>(r.batches_opened), r.failed.size(),
      static_cast<long long>(r.records), static_cast<long long>(r.samples_written),
      static_cast<long long>(r.samples_unchanged),
      r.feature_shape.empty() ? "-" : ShapeToString(r.feature_shape).c_str(),
      static_cast<long long>(r.skipped_unlabelled), static_cast<long long>(r.skipped_no_features),
      static_cast<long long>(r.skipped_other_model), static_cast<long long>(r.skipped_other_shape));
  if (r.samples() > 0) std::printf("train with: hybridml train --data dir:%s\n", f.out.c_str());
  return 0;
}

}  // namespace

void AddIngestCommands(CLI::App& app, int& exit_code) {
  auto flags = std::make_shared<IngestFlags>();
  auto* ingest = app.add_subcommand("ingest", "Data devices upload: keys and dataset export");
  ingest->require_subcommand(1);

  auto* keygen = ingest->add_subcommand(
      "keygen", "Write a new ingest key pair: DIR/ingest.pub (for devices), DIR/ingest.key (0600)");
  keygen->add_option("--out", flags->out, "Directory for the key files")->required();
  keygen->callback([flags, &exit_code] { exit_code = Keygen(*flags); });

  auto* exp = ingest->add_subcommand(
      "export", "Open the uploaded batches and write labelled samples as a sample directory");
  exp->add_option("--registry", flags->registry_dir, "Registry directory (holds ingest.db)")
      ->required();
  exp->add_option("--key", flags->key_file, "The ingest secret key file (ingest.key)")->required();
  exp->add_option("--out", flags->out, "Sample directory to write (*.hmls)")->required();
  exp->add_option("--model", flags->model, "Export only samples for this model (default: all)");
  exp->callback([flags, &exit_code] { exit_code = Export(*flags); });
}

}  // namespace hml::cli

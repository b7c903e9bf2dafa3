// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/server/ingest/dataset_export.h"

#include <cstdio>
#include <string>
#include <utility>

#include "src/base/file_util.h"
#include "src/data/dataset.h"

namespace hml::server {

Status DatasetExportOptions::Validate() const {
  if (out_dir.empty()) return InvalidArgumentError("DatasetExportOptions.out_dir is required");
  if (page_size < 1) return InvalidArgumentError("DatasetExportOptions.page_size must be >= 1");
  if (max_batch_bytes < 1) {
    return InvalidArgumentError("DatasetExportOptions.max_batch_bytes must be >= 1");
  }
  return Status::Ok();
}

std::string SampleFileName(int64_t batch_id, size_t index) {
  char name[64];
  std::snprintf(name, sizeof(name), "b%010lld-r%06zu.hmls", static_cast<long long>(batch_id),
                index);
  return name;
}

Result<DatasetExportReport> ExportDataset(IngestStore& store, const sync::IngestKeyPair& keys,
                                          Env& env, const DatasetExportOptions& options) {
  HML_RETURN_IF_ERROR(options.Validate());
  HML_RETURN_IF_ERROR(MakeDirs(options.out_dir, 0700));
  DatasetExportReport report;
  int64_t after = 0;
  for (;;) {
    HML_ASSIGN_OR_RETURN(std::vector<IngestedBatch> page, store.List(after, options.page_size));
    if (page.empty()) break;
    after = page.back().id;
    for (const IngestedBatch& batch : page) {
      ++report.batches;
      Result<std::vector<sync::Record>> records =
          sync::OpenAndDecodeBatch(batch.sealed, keys, options.max_batch_bytes);
      if (!records.ok()) {
        report.failed.push_back(
            {batch.id, batch.device_id, batch.idempotency_key, records.status()});
        continue;
      }
      ++report.batches_opened;
      for (size_t i = 0; i < records->size(); ++i) {
        const sync::Record& r = (*records)[i];
        ++report.records;
        if (!options.model.empty() && r.model != options.model) {
          ++report.skipped_other_model;
          continue;
        }
        if (r.features.empty()) {
          ++report.skipped_no_features;
          continue;
        }
        if (r.label < 0) {
          ++report.skipped_unlabelled;
          continue;
        }
        if (report.feature_shape.empty()) report.feature_shape = r.shape;
        if (r.shape != report.feature_shape) {
          ++report.skipped_other_shape;
          continue;
        }
        const std::string path = options.out_dir + "/" + SampleFileName(batch.id, i);
        const std::string bytes = data::EncodeSampleFile(r.features, r.shape, r.label);
        if (env.FileExists(path)) {
          Result<std::string> existing = env.ReadFile(path, static_cast<int64_t>(bytes.size()));
          if (existing.ok() && *existing == bytes) {
            ++report.samples_unchanged;
            continue;
          }
        }
        HML_RETURN_IF_ERROR(env.WriteFileAtomic(path, bytes));
        ++report.samples_written;
      }
    }
  }
  return report;
}

}  // namespace hml::server

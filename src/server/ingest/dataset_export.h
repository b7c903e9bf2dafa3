// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The dataset export: turns the sealed batches the ingest service stored (ingest_store.h) into a
// sample directory that `hybridml train --data dir:PATH` trains on (src/data/dataset.h: one
// `*.hmls` file per labelled sample).
//
// Every stored batch is read in arrival order (IngestStore::List, paged), opened with the ingest
// secret key and decoded (src/sync/batch.h: authenticity, sizes and every field are checked). A
// batch that fails to open or decode is reported by id, device and reason and skipped; the
// others are still exported. From a batch that opens, a record becomes a sample when it has
// features and a label (>= 0) and, if `model` is set, is for that model. The first exported
// sample fixes the feature shape (a sample directory has one shape); a record with another
// shape is skipped and counted.
//
// Files are named b<batch id, 10 digits>-r<record index, 6 digits>.hmls, so name order (the
// order LoadSampleDirectory reads) is arrival order, and a record always maps to the same file.
// That makes re-export idempotent: a file that exists with the same bytes is left alone
// (counted unchanged); a new batch adds files; nothing is ever duplicated. Files are written
// atomically (a crash leaves no half sample). The directory holds plaintext samples: it is the
// training job's input, created 0700.
#ifndef HML_SRC_SERVER_INGEST_DATASET_EXPORT_H_
#define HML_SRC_SERVER_INGEST_DATASET_EXPORT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "hml/env.h"
#include "hml/status.h"
#include "src/server/ingest/ingest_store.h"
#include "src/sync/batch.h"

namespace hml::server {

struct DatasetExportOptions {
  // The sample directory to write (created if missing). Required.
  std::string out_dir;
  // Export only records for this model name; empty = every model. Default: empty.
  std::string model;
  // Batches read per IngestStore::List call. Default: 64. Must be >= 1.
  int64_t page_size = 64;
  // The largest decompressed batch opened (checked before allocating). Default: 256 MiB.
  size_t max_batch_bytes = size_t{256} << 20;

  Status Validate() const;
};

// A batch that could not be exported.
struct FailedBatch {
  int64_t id = 0;
  std::string device_id;
  std::string idempotency_key;
  Status error;
};

struct DatasetExportReport {
  int64_t batches = 0;         // stored batches seen
  int64_t batches_opened = 0;  // opened and decoded
  std::vector<FailedBatch> failed;
  int64_t records = 0;            // records in the opened batches
  int64_t samples_written = 0;    // new or changed files
  int64_t samples_unchanged = 0;  // files already there with the same bytes
  int64_t skipped_unlabelled = 0;
  int64_t skipped_no_features = 0;
  int64_t skipped_other_model = 0;
  int64_t skipped_other_shape = 0;
  std::vector<int64_t> feature_shape;  // empty when no sample was exported

  int64_t samples() const { return samples_written + samples_unchanged; }
};

// Exports every batch of `store` into options.out_dir. Errors only for what stops the whole
// export (bad options, the store, the output directory); a bad batch is in the report instead.
Result<DatasetExportReport> ExportDataset(IngestStore& store, const sync::IngestKeyPair& keys,
                                          Env& env, const DatasetExportOptions& options);

// The file name of record `index` of batch `batch_id`.
std::string SampleFileName(int64_t batch_id, size_t index);

}  // namespace hml::server

#endif  // HML_SRC_SERVER_INGEST_DATASET_EXPORT_H_

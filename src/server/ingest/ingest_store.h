// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The server side of data ingest: batches of samples uploaded by devices, stored as they arrive
// (sealed on the device to the ingest public key, so the server stores ciphertext that only the
// training job opens), at most once per (device, idempotency key).
//
// Exactly once across a lost acknowledgement: Put commits the batch in one SQLite transaction
// (WAL, synchronous FULL: durable when Put returns) before the service acknowledges it. If the
// server dies after the commit and before the device sees the ack, the device retries with the
// same idempotency key and Put answers "duplicate" without storing it again. A key reused by the
// same device for different bytes (its SHA-256 differs) is kAlreadyExists: a device bug, never
// silently merged. Keys are scoped per device, so devices cannot collide or probe each other.
//
// Layout: one table, batches(id, device_id, idempotency_key, sha256, sample_count,
// received_unix, sealed), UNIQUE(device_id, idempotency_key). `id` orders batches by arrival
// for the dataset export.
//
// Thread-safe: one connection behind a mutex.
#ifndef HML_SRC_SERVER_INGEST_INGEST_STORE_H_
#define HML_SRC_SERVER_INGEST_INGEST_STORE_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "hml/status.h"
#include "src/storage/sqlite_db.h"

namespace hml::server {

struct IngestOptions {
  // Largest sealed batch accepted; larger ones are kResourceExhausted. Default: 16 MiB.
  int64_t max_batch_bytes = int64_t{16} << 20;

  // kInvalidArgument unless max_batch_bytes is in [1, 1 GiB].
  Status Validate() const;
};

// One stored batch.
struct IngestedBatch {
  int64_t id = 0;
  std::string device_id;
  std::string idempotency_key;
  std::string sha256;  // of `sealed`, lowercase hex
  int64_t sample_count = 0;
  int64_t received_unix = 0;
  std::string sealed;
};

class IngestStore {
 public:
  // Opens (creating) the database at `path` (mode 0600). Errors: SqliteDb::Open's.
  static Result<std::unique_ptr<IngestStore>> Open(const std::string& path,
                                                   IngestOptions options = {});

  // Stores the batch, or recognises a retry. Returns true when (device_id, idempotency_key)
  // was stored before with the same bytes (nothing is written then), false when it is stored
  // now. Errors: kInvalidArgument for an empty device id, a key that is empty, longer than 128
  // characters or not [A-Za-z0-9._:-], a negative sample count or an empty batch;
  // kResourceExhausted over max_batch_bytes; kAlreadyExists when the key was used by this device
  // for other bytes; the database's errors (nothing stored then).
  Result<bool> Put(std::string_view device_id, std::string_view idempotency_key,
                   int64_t sample_count, std::string_view sealed, int64_t now_unix);

  // Batches with id > after_id, oldest first, at most `limit` (>= 1).
  Result<std::vector<IngestedBatch>> List(int64_t after_id, int64_t limit);
  // Number of stored batches.
  Result<int64_t> Count();

 private:
  IngestStore(storage::SqliteDb db, IngestOptions options)
      : db_(std::move(db)), options_(options) {}

  std::mutex mu_;
  storage::SqliteDb db_;  // GUARDED_BY(mu_)
  // Prepared once in Open(); declared after db_ so they are finalized before it closes.
  storage::StatementPtr find_;    // GUARDED_BY(mu_)
  storage::StatementPtr insert_;  // GUARDED_BY(mu_)
  storage::StatementPtr list_;    // GUARDED_BY(mu_)
  storage::StatementPtr count_;   // GUARDED_BY(mu_)
  const IngestOptions options_;
};

}  // namespace hml::server

#endif  // HML_SRC_SERVER_INGEST_INGEST_STORE_H_

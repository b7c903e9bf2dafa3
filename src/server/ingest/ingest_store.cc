// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/server/ingest/ingest_store.h"

#include <sqlite3.h>

#include <utility>

#include "src/ota/crypto.h"

namespace hml::server {
namespace {

constexpr int64_t kSchemaVersion = 1;
constexpr char kSchema[] = R"sql(
CREATE TABLE batches (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  device_id TEXT NOT NULL,
  idempotency_key TEXT NOT NULL,
  sha256 TEXT NOT NULL,
  sample_count INTEGER NOT NULL,
  received_unix INTEGER NOT NULL,
  sealed BLOB NOT NULL,
  UNIQUE (device_id, idempotency_key)
);
)sql";

Status ValidateKey(std::string_view key) {
  if (key.empty() || key.size() > 128) {
    return InvalidArgumentError("idempotency key must have 1 to 128 characters, not " +
                                std::to_string(key.size()));
  }
  for (char c : key) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == ':' || c == '-';
    if (!ok) {
      return InvalidArgumentError("idempotency key '" + std::string(key) +
                                  "' has a character outside [A-Za-z0-9._:-]");
    }
  }
  return Status::Ok();
}

}  // namespace

Status IngestOptions::Validate() const {
  if (max_batch_bytes < 1 || max_batch_bytes > (int64_t{1} << 30)) {
    return InvalidArgumentError("IngestOptions: max_batch_bytes " +
                                std::to_string(max_batch_bytes) + " is not in [1, 1 GiB]");
  }
  return Status::Ok();
}

Result<std::unique_ptr<IngestStore>> IngestStore::Open(const std::string& path,
                                                       IngestOptions options) {
  HML_RETURN_IF_ERROR(options.Validate());
  storage::SqliteOptions sqlite;
  sqlite.label = "ingest database";
  sqlite.create_mode = 0600;
  HML_ASSIGN_OR_RETURN(storage::SqliteDb db, storage::SqliteDb::Open(path, sqlite));
  // An acknowledged batch must survive a power cut, not only a process crash.
  HML_RETURN_IF_ERROR(db.Exec("PRAGMA synchronous=FULL", "set synchronous"));
  HML_RETURN_IF_ERROR(storage::EnsureSchema(db, kSchemaVersion, kSchema));
  std::unique_ptr<IngestStore> store(new IngestStore(std::move(db), options));
  storage::SqliteDb& d = store->db_;
  HML_RETURN_IF_ERROR(d.Prepare(
      "SELECT sha256 FROM batches WHERE device_id = ?1 AND idempotency_key = ?2", &store->find_));
  HML_RETURN_IF_ERROR(d.Prepare(
      "INSERT INTO batches (device_id, idempotency_key, sha256, sample_count, received_unix, "
      "sealed) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
      &store->insert_));
  HML_RETURN_IF_ERROR(d.Prepare(
      "SELECT id, device_id, idempotency_key, sha256, sample_count, received_unix, sealed "
      "FROM batches WHERE id > ?1 ORDER BY id LIMIT ?2",
      &store->list_));
  HML_RETURN_IF_ERROR(d.Prepare("SELECT COUNT(*) FROM batches", &store->count_));
  return store;
}

Result<bool> IngestStore::Put(std::string_view device_id, std::string_view idempotency_key,
                              int64_t sample_count, std::string_view sealed, int64_t now_unix) {
  if (device_id.empty()) return InvalidArgumentError("ingest: empty device id");
  HML_RETURN_IF_ERROR(ValidateKey(idempotency_key));
  if (sample_count < 0) {
    return InvalidArgumentError("ingest: negative sample count " + std::to_string(sample_count));
  }
  if (sealed.empty()) return InvalidArgumentError("ingest: empty batch");
  if (static_cast<int64_t>(sealed.size()) > options_.max_batch_bytes) {
    return ResourceExhaustedError("ingest: batch of " + std::to_string(sealed.size()) +
                                  " bytes is over the limit of " +
                                  std::to_string(options_.max_batch_bytes));
  }
  const std::string sha256 = ota::Sha256Hex(sealed);
  const std::string what = "store batch '" + std::string(idempotency_key) + "' of device '" +
                           std::string(device_id) + "'";
  std::lock_guard<std::mutex> lock(mu_);
  bool duplicate = false;
  HML_RETURN_IF_ERROR(db_.InTransaction(what, [&]() -> Status {
    sqlite3_stmt* find = find_.get();
    storage::ScopedReset reset_find(find);
    HML_RETURN_IF_ERROR(db_.BindText(find, 1, device_id, what));
    HML_RETURN_IF_ERROR(db_.BindText(find, 2, idempotency_key, what));
    HML_ASSIGN_OR_RETURN(bool found, db_.Step(find, what));
    if (found) {
      if (storage::ColumnText(find, 0) != sha256) {
        return AlreadyExistsError("ingest: device '" + std::string(device_id) +
                                  "' already used idempotency key '" +
                                  std::string(idempotency_key) + "' for a different batch");
      }
      duplicate = true;
      return Status::Ok();
    }
    sqlite3_stmt* insert = insert_.get();
    HML_RETURN_IF_ERROR(db_.BindText(insert, 1, device_id, what));
    HML_RETURN_IF_ERROR(db_.BindText(insert, 2, idempotency_key, what));
    HML_RETURN_IF_ERROR(db_.BindText(insert, 3, sha256, what));
    HML_RETURN_IF_ERROR(db_.BindInt64(insert, 4, sample_count, what));
    HML_RETURN_IF_ERROR(db_.BindInt64(insert, 5, now_unix, what));
    HML_RETURN_IF_ERROR(db_.BindBlob(insert, 6, sealed, what));
    return db_.Run(insert, what);
  }));
  return duplicate;
}

Result<std::vector<IngestedBatch>> IngestStore::List(int64_t after_id, int64_t limit) {
  if (limit < 1) return InvalidArgumentError("ingest: list limit " + std::to_string(limit) + " < 1");
  std::lock_guard<std::mutex> lock(mu_);
  sqlite3_stmt* list = list_.get();
  storage::ScopedReset reset(list);
  HML_RETURN_IF_ERROR(db_.BindInt64(list, 1, after_id, "list batches"));
  HML_RETURN_IF_ERROR(db_.BindInt64(list, 2, limit, "list batches"));
  return db_.ReadAll(list, "list batches", [](sqlite3_stmt* row) {
    IngestedBatch b;
    b.id = sqlite3_column_int64(row, 0);
    b.device_id = storage::ColumnText(row, 1);
    b.idempotency_key = storage::ColumnText(row, 2);
    b.sha256 = storage::ColumnText(row, 3);
    b.sample_count = sqlite3_column_int64(row, 4);
    b.received_unix = sqlite3_column_int64(row, 5);
    b.sealed = storage::ColumnBlob(row, 6);
    return b;
  });
}

Result<int64_t> IngestStore::Count() {
  std::lock_guard<std::mutex> lock(mu_);
  sqlite3_stmt* count = count_.get();
  storage::ScopedReset reset(count);
  HML_ASSIGN_OR_RETURN(bool row, db_.Step(count, "count batches"));
  if (!row) return InternalError("ingest: COUNT(*) returned no row");
  return static_cast<int64_t>(sqlite3_column_int64(count, 0));
}

}  // namespace hml::server

// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/sdk/store/encrypted_store.h"

#include <sodium.h>

#include <utility>

#include "src/ota/crypto.h"

namespace hml::sdk {
namespace {

constexpr int64_t kSchemaVersion = 1;

constexpr const char* kSchema = R"sql(
CREATE TABLE meta (name TEXT PRIMARY KEY, value NOT NULL);
INSERT INTO meta (name, value) VALUES ('next_id', 1);
CREATE TABLE records (
  id INTEGER PRIMARY KEY,
  tbl TEXT NOT NULL,
  key_id INTEGER NOT NULL,
  size INTEGER NOT NULL,
  sealed BLOB NOT NULL
);
CREATE INDEX records_by_table ON records (tbl, id);
CREATE TABLE table_stats (
  tbl TEXT PRIMARY KEY,
  records INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  dropped INTEGER NOT NULL,
  rejected INTEGER NOT NULL
);
CREATE TABLE keys (key_id INTEGER PRIMARY KEY, check_sealed BLOB NOT NULL);
)sql";

constexpr size_t kNonceBytes = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
constexpr size_t kTagBytes = crypto_aead_xchacha20poly1305_ietf_ABYTES;
static_assert(crypto_aead_xchacha20poly1305_ietf_KEYBYTES == kStoreKeyBytes);

// The plaintext of every key check.
constexpr std::string_view kKeyCheckPlaintext = "hml.store key check v1";

void AppendField(std::string* out, std::string_view field) {
  const uint32_t size = static_cast<uint32_t>(field.size());
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((size >> (8 * i)) & 0xff));
  out->append(field);
}

void AppendU64(std::string* out, uint64_t value) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

// The associated data of a record: see "Associated data" in the header.
std::string RecordAd(std::string_view device_id, std::string_view table, int64_t id,
                     uint32_t key_id) {
  std::string ad;
  AppendField(&ad, "hml.store.v1");
  AppendField(&ad, device_id);
  AppendField(&ad, table);
  AppendU64(&ad, static_cast<uint64_t>(id));
  AppendU64(&ad, key_id);
  return ad;
}

std::string KeyCheckAd(std::string_view device_id, uint32_t key_id) {
  std::string ad;
  AppendField(&ad, "hml.store.keycheck.v1");
  AppendField(&ad, device_id);
  AppendU64(&ad, key_id);
  return ad;
}

// nonce || ciphertext || tag.
std::string Seal(const StoreKey& key, std::string_view plaintext, std::string_view ad) {
  std::string sealed(kNonceBytes + plaintext.size() + kTagBytes, '\0');
  auto* nonce = reinterpret_cast<unsigned char*>(sealed.data());
  randombytes_buf(nonce, kNonceBytes);
  unsigned long long sealed_size = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(
      nonce + kNonceBytes, &sealed_size, reinterpret_cast<const unsigned char*>(plaintext.data()),
      plaintext.size(), reinterpret_cast<const unsigned char*>(ad.data()), ad.size(), nullptr,
      nonce, key.data());
  return sealed;
}

// The plaintext, or false when `sealed` does not authenticate under `key` and `ad`.
bool Unseal(const StoreKey& key, std::string_view sealed, std::string_view ad, std::string* out) {
  if (sealed.size() < kNonceBytes + kTagBytes) return false;
  out->assign(sealed.size() - kNonceBytes - kTagBytes, '\0');
  const auto* nonce = reinterpret_cast<const unsigned char*>(sealed.data());
  unsigned long long size = 0;
  const int rc = crypto_aead_xchacha20poly1305_ietf_decrypt(
      reinterpret_cast<unsigned char*>(out->data()), &size, nullptr, nonce + kNonceBytes,
      sealed.size() - kNonceBytes, reinterpret_cast<const unsigned char*>(ad.data()), ad.size(),
      nonce, key.data());
  if (rc != 0) {
    out->clear();
    return false;
  }
  return true;
}

}  // namespace

Result<StoreKey> StoreKey::FromBytes(std::string_view bytes) {
  if (bytes.size() != kStoreKeyBytes) {
    return InvalidArgumentError("store key: " + std::to_string(bytes.size()) + " bytes, expected " +
                                std::to_string(kStoreKeyBytes));
  }
  StoreKey key;
  for (size_t i = 0; i < kStoreKeyBytes; ++i) key.bytes_[i] = static_cast<unsigned char>(bytes[i]);
  return key;
}

StoreKey::~StoreKey() { sodium_memzero(bytes_.data(), bytes_.size()); }

Result<StoreKey> FixedKeyProvider::GetKey(uint32_t key_id) {
  if (key_id != key_id_) {
    return NotFoundError("fixed key provider: no key with id " + std::to_string(key_id) +
                         " (it holds key id " + std::to_string(key_id_) + ")");
  }
  return key_;
}

Result<StoreKey> PlatformKeyProvider::GetKey(uint32_t key_id) {
  HML_ASSIGN_OR_RETURN(std::string bytes, platform_.StoreKey(key_id));
  Result<StoreKey> key = StoreKey::FromBytes(bytes);
  sodium_memzero(bytes.data(), bytes.size());
  return key;
}

Status EncryptedStoreOptions::Validate() const {
  if (keys == nullptr) return InvalidArgumentError("encrypted store options: keys is null");
  if (device_id.empty() || device_id.size() > 128) {
    return InvalidArgumentError("encrypted store options: device_id must be 1-128 bytes, got " +
                                std::to_string(device_id.size()));
  }
  if (max_record_bytes < 1 || max_record_bytes > (size_t{64} << 20)) {
    return InvalidArgumentError("encrypted store options: max_record_bytes " +
                                std::to_string(max_record_bytes) + " is not in [1, 64 MiB]");
  }
  if (max_scan_records < 1) {
    return InvalidArgumentError("encrypted store options: max_scan_records must be >= 1");
  }
  if (busy_timeout_ms < 0) {
    return InvalidArgumentError("encrypted store options: busy_timeout_ms must be >= 0");
  }
  return Status::Ok();
}

EncryptedStore::EncryptedStore(storage::SqliteDb db, const EncryptedStoreOptions& options)
    : db_(std::move(db)),
      keys_(options.keys),
      device_id_(options.device_id),
      max_record_bytes_(options.max_record_bytes),
      max_scan_records_(options.max_scan_records) {}

EncryptedStore::~EncryptedStore() = default;

Result<std::unique_ptr<EncryptedStore>> EncryptedStore::Open(const std::string& path,
                                                             const EncryptedStoreOptions& options) {
  HML_RETURN_IF_ERROR(options.Validate());
  HML_RETURN_IF_ERROR(ota::InitCrypto());
  storage::SqliteOptions sqlite;
  sqlite.label = "encrypted store";
  sqlite.busy_timeout_ms = options.busy_timeout_ms;
  sqlite.secure_delete = true;
  sqlite.create_mode = 0600;
  HML_ASSIGN_OR_RETURN(storage::SqliteDb db, storage::SqliteDb::Open(path, sqlite));
  // See "No plaintext on disk" in the header for why each of these is set.
  HML_RETURN_IF_ERROR(db.Exec("PRAGMA temp_store = MEMORY", "set temp_store"));
  HML_RETURN_IF_ERROR(db.Exec("PRAGMA synchronous = FULL", "set synchronous"));
  HML_RETURN_IF_ERROR(storage::EnsureSchema(db, kSchemaVersion, kSchema));
  std::unique_ptr<EncryptedStore> store(new EncryptedStore(std::move(db), options));
  std::lock_guard<std::mutex> lock(store->mu_);
  HML_RETURN_IF_ERROR(store->Prepare());
  HML_RETURN_IF_ERROR(store->LoadDeviceId());
  const uint32_t key_id = store->keys_->CurrentKeyId();
  HML_RETURN_IF_ERROR(store->KeyFor(key_id, /*create_check=*/true).status());
  return store;
}

Status EncryptedStore::Prepare() {
  HML_RETURN_IF_ERROR(db_.Prepare(
      "INSERT INTO records (id, tbl, key_id, size, sealed) VALUES (?, ?, ?, ?, ?)", &insert_));
  HML_RETURN_IF_ERROR(
      db_.Prepare("SELECT key_id, sealed FROM records WHERE tbl = ? AND id = ?", &get_));
  HML_RETURN_IF_ERROR(db_.Prepare(
      "SELECT id, key_id, sealed FROM records WHERE tbl = ? AND id > ? ORDER BY id LIMIT ?",
      &scan_));
  HML_RETURN_IF_ERROR(
      db_.Prepare("DELETE FROM records WHERE tbl = ? AND id = ? RETURNING size", &delete_));
  HML_RETURN_IF_ERROR(db_.Prepare("SELECT value FROM meta WHERE name = 'next_id'", &next_id_get_));
  HML_RETURN_IF_ERROR(
      db_.Prepare("UPDATE meta SET value = ? WHERE name = 'next_id'", &next_id_set_));
  HML_RETURN_IF_ERROR(db_.Prepare(
      "SELECT records, bytes, dropped, rejected FROM table_stats WHERE tbl = ?", &stats_get_));
  HML_RETURN_IF_ERROR(db_.Prepare(
      "INSERT INTO table_stats (tbl, records, bytes, dropped, rejected) VALUES (?, ?, ?, ?, ?) "
      "ON CONFLICT (tbl) DO UPDATE SET records = records + excluded.records, "
      "bytes = bytes + excluded.bytes, dropped = dropped + excluded.dropped, "
      "rejected = rejected + excluded.rejected",
      &stats_upsert_));
  HML_RETURN_IF_ERROR(
      db_.Prepare("SELECT id FROM records WHERE tbl = ? ORDER BY id LIMIT 1", &oldest_));
  HML_RETURN_IF_ERROR(
      db_.Prepare("SELECT check_sealed FROM keys WHERE key_id = ?", &key_check_get_));
  HML_RETURN_IF_ERROR(db_.Prepare("INSERT OR IGNORE INTO keys (key_id, check_sealed) VALUES (?, ?)",
                                  &key_check_put_));
  return Status::Ok();
}

Status EncryptedStore::LoadDeviceId() {
  storage::StatementPtr put, get;
  HML_RETURN_IF_ERROR(
      db_.Prepare("INSERT OR IGNORE INTO meta (name, value) VALUES ('device_id', ?)", &put));
  HML_RETURN_IF_ERROR(db_.Prepare("SELECT value FROM meta WHERE name = 'device_id'", &get));
  std::string recorded;
  bool has_row = false;
  auto read = [&]() -> Status {
    storage::ScopedReset reset(get.get());
    HML_ASSIGN_OR_RETURN(has_row, db_.Step(get.get(), "read device id"));
    if (has_row) recorded = storage::ColumnText(get.get(), 0);
    return Status::Ok();
  };
  HML_RETURN_IF_ERROR(read());
  if (!has_row) {
    // A new store. INSERT OR IGNORE and read back: when two processes create the file at once,
    // the first device id wins and the other is compared with it.
    HML_RETURN_IF_ERROR(db_.InTransaction("record device id", [&]() -> Status {
      HML_RETURN_IF_ERROR(db_.BindText(put.get(), 1, device_id_, "record device id"));
      HML_RETURN_IF_ERROR(db_.Run(put.get(), "record device id"));
      return read();
    }));
    if (!has_row) return InternalError("encrypted store '" + path() + "': no device id recorded");
  }
  if (recorded != device_id_) {
    return FailedPreconditionError("encrypted store '" + path() + "' belongs to device '" +
                                   recorded + "', opened as device '" + device_id_ + "'");
  }
  return Status::Ok();
}

Result<const StoreKey*> EncryptedStore::KeyFor(uint32_t key_id, bool create_check) {
  auto cached = key_cache_.find(key_id);
  if (cached != key_cache_.end()) return &cached->second;
  const std::string where = "encrypted store '" + path() + "': key id " + std::to_string(key_id);
  if (key_id < 1) return InvalidArgumentError(where + ": key ids start at 1");
  Result<StoreKey> key = keys_->GetKey(key_id);
  if (!key.ok()) return key.status().WithContext(where + ": key provider");
  const std::string ad = KeyCheckAd(device_id_, key_id);
  std::string check;
  bool has_check = false;
  auto read_check = [&]() -> Status {
    storage::ScopedReset reset(key_check_get_.get());
    HML_RETURN_IF_ERROR(db_.BindInt64(key_check_get_.get(), 1, key_id, "read key check"));
    HML_ASSIGN_OR_RETURN(has_check, db_.Step(key_check_get_.get(), "read key check"));
    if (has_check) check = storage::ColumnBlob(key_check_get_.get(), 0);
    return Status::Ok();
  };
  HML_RETURN_IF_ERROR(read_check());
  if (!has_check && create_check) {
    // INSERT OR IGNORE and read back: when two processes race, both verify the winner's check.
    HML_RETURN_IF_ERROR(db_.InTransaction("create key check", [&]() -> Status {
      HML_RETURN_IF_ERROR(db_.BindInt64(key_check_put_.get(), 1, key_id, "create key check"));
      HML_RETURN_IF_ERROR(db_.BindBlob(key_check_put_.get(), 2, Seal(*key, kKeyCheckPlaintext, ad),
                                       "create key check"));
      HML_RETURN_IF_ERROR(db_.Run(key_check_put_.get(), "create key check"));
      return read_check();
    }));
  }
  if (has_check) {
    std::string plaintext;
    if (!Unseal(*key, check, ad, &plaintext) || plaintext != kKeyCheckPlaintext) {
      return PermissionDeniedError(where +
                                   ": the key provider's key does not open this store (wrong "
                                   "key, or the store belongs to another device)");
    }
  }
  // Without a key check (a key id only read, never written through this API) records are
  // still authenticated one by one; a wrong key then shows as kDataLoss on the first record.
  auto inserted = key_cache_.emplace(key_id, std::move(*key));
  return &inserted.first->second;
}

Status EncryptedStore::CheckTable(std::string_view table) const {
  bool valid = !table.empty() && table.size() <= 64;
  for (char c : table) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == '-';
    if (!ok) valid = false;
  }
  if (!valid) {
    // The name is not echoed: a bad name might be user data passed by mistake.
    return InvalidArgumentError("encrypted store '" + path() + "': invalid table name of " +
                                std::to_string(table.size()) +
                                " bytes (1-64 characters of [A-Za-z0-9_.-])");
  }
  return Status::Ok();
}

Status EncryptedStore::CheckPayload(std::string_view table, std::string_view payload) const {
  if (payload.size() > max_record_bytes_) {
    return InvalidArgumentError(Where(table) + ": record of " + std::to_string(payload.size()) +
                                " bytes exceeds max_record_bytes " +
                                std::to_string(max_record_bytes_));
  }
  return Status::Ok();
}

std::string EncryptedStore::Where(std::string_view table) const {
  return "encrypted store '" + path() + "': table '" + std::string(table) + "'";
}

std::string EncryptedStore::Where(std::string_view table, int64_t id) const {
  return Where(table) + " row " + std::to_string(id);
}

Result<int64_t> EncryptedStore::PutLocked(std::string_view table, std::string_view payload,
                                          uint32_t key_id, const StoreKey& key) {
  int64_t id = 0;
  {
    storage::ScopedReset reset(next_id_get_.get());
    HML_ASSIGN_OR_RETURN(const bool row, db_.Step(next_id_get_.get(), "read next record id"));
    if (!row) return InternalError("encrypted store '" + path() + "': next record id missing");
    id = sqlite3_column_int64(next_id_get_.get(), 0);
  }
  const std::string sealed = Seal(key, payload, RecordAd(device_id_, table, id, key_id));
  {
    storage::ScopedReset reset(insert_.get());
    HML_RETURN_IF_ERROR(db_.BindInt64(insert_.get(), 1, id, "put record"));
    HML_RETURN_IF_ERROR(db_.BindText(insert_.get(), 2, table, "put record"));
    HML_RETURN_IF_ERROR(db_.BindInt64(insert_.get(), 3, key_id, "put record"));
    HML_RETURN_IF_ERROR(
        db_.BindInt64(insert_.get(), 4, static_cast<int64_t>(payload.size()), "put record"));
    HML_RETURN_IF_ERROR(db_.BindBlob(insert_.get(), 5, sealed, "put record"));
    HML_RETURN_IF_ERROR(db_.Run(insert_.get(), "put record"));
  }
  {
    storage::ScopedReset reset(next_id_set_.get());
    HML_RETURN_IF_ERROR(db_.BindInt64(next_id_set_.get(), 1, id + 1, "advance next record id"));
    HML_RETURN_IF_ERROR(db_.Run(next_id_set_.get(), "advance next record id"));
  }
  TableStats delta;
  delta.records = 1;
  delta.bytes = static_cast<int64_t>(payload.size());
  HML_RETURN_IF_ERROR(AddStatsLocked(table, delta));
  return id;
}

Result<int64_t> EncryptedStore::DeleteLocked(std::string_view table, int64_t id) {
  storage::ScopedReset reset(delete_.get());
  HML_RETURN_IF_ERROR(db_.BindText(delete_.get(), 1, table, "delete record"));
  HML_RETURN_IF_ERROR(db_.BindInt64(delete_.get(), 2, id, "delete record"));
  HML_ASSIGN_OR_RETURN(const bool row, db_.Step(delete_.get(), "delete record"));
  if (!row) return int64_t{0};
  TableStats delta;
  delta.records = -1;
  delta.bytes = -sqlite3_column_int64(delete_.get(), 0);
  // Step to the end so the DELETE completes before the statement is reset.
  HML_ASSIGN_OR_RETURN(const bool more, db_.Step(delete_.get(), "delete record"));
  if (more) return InternalError(Where(table, id) + ": deleted more than one row");
  HML_RETURN_IF_ERROR(AddStatsLocked(table, delta));
  return int64_t{1};
}

Status EncryptedStore::AddStatsLocked(std::string_view table, const TableStats& delta) {
  storage::ScopedReset reset(stats_upsert_.get());
  sqlite3_stmt* stmt = stats_upsert_.get();
  HML_RETURN_IF_ERROR(db_.BindText(stmt, 1, table, "update table stats"));
  HML_RETURN_IF_ERROR(db_.BindInt64(stmt, 2, delta.records, "update table stats"));
  HML_RETURN_IF_ERROR(db_.BindInt64(stmt, 3, delta.bytes, "update table stats"));
  HML_RETURN_IF_ERROR(db_.BindInt64(stmt, 4, delta.dropped, "update table stats"));
  HML_RETURN_IF_ERROR(db_.BindInt64(stmt, 5, delta.rejected, "update table stats"));
  return db_.Run(stmt, "update table stats");
}

Result<TableStats> EncryptedStore::StatsLocked(std::string_view table) {
  storage::ScopedReset reset(stats_get_.get());
  HML_RETURN_IF_ERROR(db_.BindText(stats_get_.get(), 1, table, "read table stats"));
  HML_ASSIGN_OR_RETURN(const bool row, db_.Step(stats_get_.get(), "read table stats"));
  TableStats stats;
  if (row) {
    stats.records = sqlite3_column_int64(stats_get_.get(), 0);
    stats.bytes = sqlite3_column_int64(stats_get_.get(), 1);
    stats.dropped = sqlite3_column_int64(stats_get_.get(), 2);
    stats.rejected = sqlite3_column_int64(stats_get_.get(), 3);
  }
  return stats;
}

Result<std::string> EncryptedStore::OpenRecord(std::string_view table, int64_t id, uint32_t key_id,
                                               std::string_view sealed) {
  Result<const StoreKey*> key = KeyFor(key_id, /*create_check=*/false);
  if (!key.ok()) {
    return key.status().WithContext("table '" + std::string(table) + "' row " + std::to_string(id));
  }
  std::string plaintext;
  if (!Unseal(**key, sealed, RecordAd(device_id_, table, id, key_id), &plaintext)) {
    return DataLossError(Where(table, id) + ": record does not authenticate under key id " +
                         std::to_string(key_id) +
                         " (damaged, or moved from another row, table or device)");
  }
  return plaintext;
}

Result<int64_t> EncryptedStore::Put(std::string_view table, std::string_view payload) {
  const std::string_view one[] = {payload};
  HML_ASSIGN_OR_RETURN(std::vector<int64_t> ids, PutMany(table, one));
  return ids[0];
}

Result<std::vector<int64_t>> EncryptedStore::PutMany(std::string_view table,
                                                     std::span<const std::string_view> payloads) {
  HML_RETURN_IF_ERROR(CheckTable(table));
  for (std::string_view payload : payloads) HML_RETURN_IF_ERROR(CheckPayload(table, payload));
  std::lock_guard<std::mutex> lock(mu_);
  const uint32_t key_id = keys_->CurrentKeyId();
  HML_ASSIGN_OR_RETURN(const StoreKey* key, KeyFor(key_id, /*create_check=*/true));
  std::vector<int64_t> ids;
  ids.reserve(payloads.size());
  Status status = db_.InTransaction("put records", [&]() -> Status {
    for (std::string_view payload : payloads) {
      HML_ASSIGN_OR_RETURN(const int64_t id, PutLocked(table, payload, key_id, *key));
      ids.push_back(id);
    }
    return Status::Ok();
  });
  if (!status.ok()) return status.WithContext(Where(table));
  return ids;
}

Result<std::string> EncryptedStore::Get(std::string_view table, int64_t id) {
  HML_RETURN_IF_ERROR(CheckTable(table));
  std::lock_guard<std::mutex> lock(mu_);
  uint32_t key_id = 0;
  std::string sealed;
  {
    storage::ScopedReset reset(get_.get());
    HML_RETURN_IF_ERROR(db_.BindText(get_.get(), 1, table, "get record"));
    HML_RETURN_IF_ERROR(db_.BindInt64(get_.get(), 2, id, "get record"));
    HML_ASSIGN_OR_RETURN(const bool row, db_.Step(get_.get(), "get record"));
    if (!row) return NotFoundError(Where(table, id) + ": no such record");
    key_id = static_cast<uint32_t>(sqlite3_column_int64(get_.get(), 0));
    sealed = storage::ColumnBlob(get_.get(), 1);
  }
  return OpenRecord(table, id, key_id, sealed);
}

Result<std::vector<StoredRecord>> EncryptedStore::Scan(std::string_view table, int64_t after_id,
                                                       size_t limit) {
  HML_RETURN_IF_ERROR(CheckTable(table));
  if (limit > max_scan_records_) limit = max_scan_records_;
  std::lock_guard<std::mutex> lock(mu_);
  struct Row {
    int64_t id;
    uint32_t key_id;
    std::string sealed;
  };
  std::vector<Row> rows;
  {
    storage::ScopedReset reset(scan_.get());
    HML_RETURN_IF_ERROR(db_.BindText(scan_.get(), 1, table, "scan records"));
    HML_RETURN_IF_ERROR(db_.BindInt64(scan_.get(), 2, after_id, "scan records"));
    HML_RETURN_IF_ERROR(db_.BindInt64(scan_.get(), 3, static_cast<int64_t>(limit), "scan records"));
    HML_ASSIGN_OR_RETURN(rows, db_.ReadAll(scan_.get(), "scan records", [](sqlite3_stmt* stmt) {
      return Row{sqlite3_column_int64(stmt, 0),
                 static_cast<uint32_t>(sqlite3_column_int64(stmt, 1)),
                 storage::ColumnBlob(stmt, 2)};
    }));
  }
  std::vector<StoredRecord> records;
  records.reserve(rows.size());
  for (const Row& row : rows) {
    HML_ASSIGN_OR_RETURN(std::string payload, OpenRecord(table, row.id, row.key_id, row.sealed));
    records.push_back(StoredRecord{row.id, std::move(payload)});
  }
  return records;
}

Result<int64_t> EncryptedStore::Delete(std::string_view table, std::span<const int64_t> ids) {
  HML_RETURN_IF_ERROR(CheckTable(table));
  std::lock_guard<std::mutex> lock(mu_);
  int64_t deleted = 0;
  Status status = db_.InTransaction("delete records", [&]() -> Status {
    for (int64_t id : ids) {
      HML_ASSIGN_OR_RETURN(const int64_t n, DeleteLocked(table, id));
      deleted += n;
    }
    return Status::Ok();
  });
  if (!status.ok()) return status.WithContext(Where(table));
  return deleted;
}

Result<int64_t> EncryptedStore::Count(std::string_view table) {
  HML_ASSIGN_OR_RETURN(const TableStats stats, Stats(table));
  return stats.records;
}

Result<TableStats> EncryptedStore::Stats(std::string_view table) {
  HML_RETURN_IF_ERROR(CheckTable(table));
  std::lock_guard<std::mutex> lock(mu_);
  return StatsLocked(table);
}

}  // namespace hml::sdk

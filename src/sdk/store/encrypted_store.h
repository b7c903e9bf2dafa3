// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The device SDK's encrypted local store: append-only record tables in one SQLite file (WAL
// mode, through src/storage/sqlite_db.h), every record's payload sealed with
// XChaCha20-Poly1305 IETF (libsodium) under a 32-byte key the app supplies through a KeyProvider
// (the platform keystore hook). The collection API and the uploader keep their queues here.
//
// Layout (schema version 1). All user data is in `records.sealed`; nothing else holds any:
//   records(id INTEGER PRIMARY KEY, tbl TEXT, key_id INTEGER, size INTEGER, sealed BLOB)
//     one row per record. `id` is store-wide and never reused (a counter in `meta`, not
//     max(id)+1), so a deleted record's id is never given to a new record, and an old ciphertext
//     replayed into a reused id cannot exist. `sealed` = 24-byte random nonce || ciphertext ||
//     16-byte tag. `size` is the plaintext length (which the ciphertext length reveals anyway).
//   table_stats(tbl, records, bytes, dropped, rejected)
//     per table counts kept in the same transaction as every Put/Delete, so Count is O(1) and
//     the bounded queue's capacity check does not scan.
//   keys(key_id, check) - one "key check" per key id ever used: a known constant sealed under
//     that key, so a wrong key is told apart from a damaged record (see Errors).
//   meta(name, value) - device id, next record id.
// Table names and row ids are plain text: they are chosen by the SDK ("labels", "telemetry"),
// not by the user, and must not carry user data. Valid table names: 1-64 characters of
// [A-Za-z0-9_.-].
//
// Associated data. Each record's AEAD associated data is
//   "hml.store.v1" | device id | table | row id | key id
// (each field length-prefixed, integers little-endian), so a ciphertext copied into another row,
// another table or another device's store fails to authenticate: Get/Scan report kDataLoss
// naming the table and row. The key check's associated data binds the device id and key id.
//
// Keys and rotation. Every record stores the id of the key it was sealed under
// (KeyProvider::CurrentKeyId() at the time of Put). Records are opened with the key of their own
// key id, fetched from the provider once and cached (zeroed when the store closes). Rotating is
// therefore: the provider starts returning a new CurrentKeyId and keeps serving the old key for
// reading; new records use the new key. Re-sealing old records under the new key (so the old key
// can be destroyed) is not implemented yet; it would be one transaction per batch of rows,
// rewriting `sealed` and `key_id` with the AD of the same row.
//
// No plaintext on disk or in logs. Only ciphertext is ever bound into SQL, so the database, its
// WAL and shared-memory files, and SQLite's rollback/statement journals only ever see
// ciphertext. On top of that the connection sets:
//   PRAGMA temp_store = MEMORY: SQLite's temporary files (sorts, temporary indices, materialized
//     views) stay in memory, so no temp file in /tmp or elsewhere exists at all.
//   PRAGMA secure_delete = ON: pages freed by Delete (acked records) are zeroed, so ciphertext of
//     deleted records does not linger where a later key compromise could open it.
//   PRAGMA synchronous = FULL: a Put that returned OK survives power loss, not only a crash of
//     the process (the WAL is synced at every commit).
// The file and its -wal/-shm are created with mode 0600. Error messages and logs name tables,
// row ids and key ids, never payload bytes.
//
// Errors name the store file, the table and row, and why:
//   kPermissionDenied: the provider's key for a key id does not open that key id's key check (a
//     wrong key), or the provider failed to give a key;
//   kDataLoss: a record does not authenticate under the right key (damaged, or moved from
//     another row, table or device), or the file is not a database / corrupt;
//   kFailedPrecondition: the store was created for another device id, or has another schema;
//   kNotFound: Get of a row that is not in the table;
//   kInvalidArgument: a bad table name, options, or a record over max_record_bytes;
//   kUnavailable: another process holds the database lock past the busy timeout.
// A failed write changes nothing: every mutation is one IMMEDIATE transaction, rolled back on
// any error (including a crash: SQLite's WAL recovery).
//
// Thread safety: an EncryptedStore is safe to use from several threads (one mutex serializes the
// connection). Several processes may open the same file; SQLite's locks serialize their writes.
#ifndef HML_SRC_SDK_STORE_ENCRYPTED_STORE_H_
#define HML_SRC_SDK_STORE_ENCRYPTED_STORE_H_

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "hml/sdk/platform.h"
#include "hml/status.h"
#include "src/storage/sqlite_db.h"

namespace hml::sdk {

// The size of a store key: XChaCha20-Poly1305's 256-bit key.
inline constexpr size_t kStoreKeyBytes = 32;

// A 32-byte key. Zeroed when destroyed.
class StoreKey {
 public:
  StoreKey() { bytes_.fill(0); }
  // kInvalidArgument unless `bytes` is exactly kStoreKeyBytes long.
  static Result<StoreKey> FromBytes(std::string_view bytes);
  StoreKey(const StoreKey& other) = default;
  StoreKey& operator=(const StoreKey& other) = default;
  ~StoreKey();

  const unsigned char* data() const { return bytes_.data(); }

 private:
  std::array<unsigned char, kStoreKeyBytes> bytes_;
};

// The keystore hook: the app gives the store its keys (Android Keystore / iOS Keychain unwrap
// a key kept in the app's storage). Implementations must be thread-safe if the store is shared
// between threads; the store calls GetKey at most once per key id per open store.
class KeyProvider {
 public:
  virtual ~KeyProvider() = default;
  // The id of the key new records are sealed under. Must be >= 1.
  virtual uint32_t CurrentKeyId() = 0;
  // The key with id `key_id`. An error (e.g. kNotFound for a destroyed key, kUnavailable while
  // the device is locked) is passed on to the caller with the key id added.
  virtual Result<StoreKey> GetKey(uint32_t key_id) = 0;
};

// A provider of one fixed key under id `key_id` (tests, and apps that keep the key themselves).
class FixedKeyProvider final : public KeyProvider {
 public:
  explicit FixedKeyProvider(const StoreKey& key, uint32_t key_id = 1)
      : key_(key), key_id_(key_id) {}
  uint32_t CurrentKeyId() override { return key_id_; }
  Result<StoreKey> GetKey(uint32_t key_id) override;

 private:
  StoreKey key_;
  uint32_t key_id_;
};

// The app's keystore through the platform hooks (include/hml/sdk/platform.h): keys come from
// Platform::StoreKey, new records use `current_key_id` (the app raises it to rotate).
// `platform` must outlive the provider.
class PlatformKeyProvider final : public KeyProvider {
 public:
  explicit PlatformKeyProvider(const Platform& platform, uint32_t current_key_id = 1)
      : platform_(platform), current_key_id_(current_key_id) {}
  uint32_t CurrentKeyId() override { return current_key_id_; }
  // Platform::StoreKey's error, or kInvalidArgument when the keystore's key is not 32 bytes.
  Result<StoreKey> GetKey(uint32_t key_id) override;

 private:
  const Platform& platform_;
  uint32_t current_key_id_;
};

struct EncryptedStoreOptions {
  // Where the keys come from. Required (non-null); must outlive the store.
  KeyProvider* keys = nullptr;
  // This device's id, bound into every record's associated data and recorded in the file at
  // creation; opening the file with another id fails (kFailedPrecondition). Required: 1-128
  // bytes.
  std::string device_id;
  // The largest payload Put accepts, checked before anything is allocated or written.
  // Default: 1 MiB. Must be in [1, 64 MiB].
  size_t max_record_bytes = size_t{1} << 20;
  // The most records one Scan returns (a larger `limit` is clamped). Default: 10000. Must be >= 1.
  size_t max_scan_records = 10000;
  // How long a write waits for another process's lock before kUnavailable. Default: 5000.
  int busy_timeout_ms = 5000;

  Status Validate() const;
};

// One record read back: its id and its plaintext payload.
struct StoredRecord {
  int64_t id = 0;
  std::string payload;
};

// Per table counts, kept transactionally with the records.
struct TableStats {
  int64_t records = 0;   // records in the table now
  int64_t bytes = 0;     // sum of their plaintext sizes
  int64_t dropped = 0;   // records removed by a bounded queue's drop-oldest policy, ever
  int64_t rejected = 0;  // records refused by a bounded queue's reject-new policy, ever
};

class BoundedQueue;

class EncryptedStore {
 public:
  // Opens (creating if absent, mode 0600) the store file `path`, checks the device id and that
  // the provider's current key opens its key check (when the file has one for that id).
  // Errors: as listed at the top of this file; kNotFound when the directory does not exist.
  static Result<std::unique_ptr<EncryptedStore>> Open(const std::string& path,
                                                      const EncryptedStoreOptions& options);
  ~EncryptedStore();
  EncryptedStore(const EncryptedStore&) = delete;
  EncryptedStore& operator=(const EncryptedStore&) = delete;

  // Appends `payload` to `table` under the current key; returns the new record's id (ids grow
  // and are never reused). When it returns OK the record is committed (and synced).
  Result<int64_t> Put(std::string_view table, std::string_view payload);
  // Appends several payloads in one transaction: all or none. Ids are consecutive, in order.
  Result<std::vector<int64_t>> PutMany(std::string_view table,
                                       std::span<const std::string_view> payloads);
  // The record `id` of `table`. kNotFound when `table` has no record `id`; kDataLoss when it does
  // not authenticate.
  Result<std::string> Get(std::string_view table, int64_t id);
  // Up to `limit` records of `table` with id > `after_id`, in id order (`limit` is clamped to
  // max_scan_records). Page with after_id = the last id returned. Fails (kDataLoss) on the first
  // record that does not authenticate, naming it.
  Result<std::vector<StoredRecord>> Scan(std::string_view table, int64_t after_id, size_t limit);
  // Deletes the records `ids` of `table` (delete-after-ack) in one transaction; ids that are not
  // in the table are skipped, so repeating a delete is harmless. Returns how many were deleted.
  Result<int64_t> Delete(std::string_view table, std::span<const int64_t> ids);
  // The number of records in `table` (0 for a table never written).
  Result<int64_t> Count(std::string_view table);
  // The table's counts, including a bounded queue's drops.
  Result<TableStats> Stats(std::string_view table);

  const std::string& path() const { return db_.path(); }
  const std::string& device_id() const { return device_id_; }

 private:
  friend class BoundedQueue;
  EncryptedStore(storage::SqliteDb db, const EncryptedStoreOptions& options);

  Status Prepare();
  Status LoadDeviceId();
  // The key `key_id`, from the cache or the provider, checked against its key check (created,
  // when `create_check`, if the store has none for that id). REQUIRES: mu_ held.
  Result<const StoreKey*> KeyFor(uint32_t key_id, bool create_check);
  // The parts of Put/Delete/Stats that run inside a caller's transaction. REQUIRES: mu_ held.
  Result<int64_t> PutLocked(std::string_view table, std::string_view payload, uint32_t key_id,
                            const StoreKey& key);
  Result<int64_t> DeleteLocked(std::string_view table, int64_t id);
  Result<TableStats> StatsLocked(std::string_view table);
  Status AddStatsLocked(std::string_view table, const TableStats& delta);
  // The plaintext of one record read from the database. REQUIRES: mu_ held.
  Result<std::string> OpenRecord(std::string_view table, int64_t id, uint32_t key_id,
                                 std::string_view sealed);
  Status CheckTable(std::string_view table) const;
  Status CheckPayload(std::string_view table, std::string_view payload) const;
  std::string Where(std::string_view table) const;
  std::string Where(std::string_view table, int64_t id) const;

  std::mutex mu_;
  storage::SqliteDb db_;
  KeyProvider* keys_;
  std::string device_id_;
  size_t max_record_bytes_;
  size_t max_scan_records_;
  std::map<uint32_t, StoreKey> key_cache_;
  // Declared after db_ so they are finalized first.
  storage::StatementPtr insert_, get_, scan_, delete_, next_id_get_, next_id_set_, stats_get_,
      stats_upsert_, oldest_, key_check_get_, key_check_put_;
};

}  // namespace hml::sdk

#endif  // HML_SRC_SDK_STORE_ENCRYPTED_STORE_H_

// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// A bounded, persistent FIFO of records over one EncryptedStore table: what the collection API
// enqueues and the uploader drains (Peek, upload, Ack = delete after the server's ack).
//
// Capacity is bounded in records and in plaintext bytes. When an Enqueue would exceed either
// bound, the declared overflow policy decides:
//   kDropOldest: the oldest records are deleted, in the same transaction as the insert, until
//     the new one fits; each is counted in TableStats::dropped.
//   kRejectNew: the new record is refused with kResourceExhausted and counted in
//     TableStats::rejected; nothing queued changes.
// A record larger than max_bytes on its own can never fit: it is rejected (and counted) under
// both policies. The counts are stored with the records (table_stats), so they survive restarts
// and are exact even when the process dies: a drop is committed with the insert that caused it.
//
// Thread safety: as EncryptedStore (the queue uses the store's lock). Two queues over the same
// table, or a queue and direct Put/Delete on its table, are allowed but each checks the bounds
// inside its own transaction, so the bound holds for records enqueued through a queue.
#ifndef HML_SRC_SDK_STORE_BOUNDED_QUEUE_H_
#define HML_SRC_SDK_STORE_BOUNDED_QUEUE_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "hml/status.h"
#include "src/sdk/store/encrypted_store.h"

namespace hml::sdk {

enum class OverflowPolicy {
  kDropOldest,
  kRejectNew,
};

struct BoundedQueueOptions {
  // The store table holding the queue. Required: a valid table name (see encrypted_store.h).
  std::string table;
  // The most records queued at once. Default: 10000. Must be >= 1.
  int64_t max_records = 10000;
  // The most plaintext bytes queued at once. Default: 16 MiB. Must be >= 1.
  int64_t max_bytes = int64_t{16} << 20;
  // What a full queue does with a new record. Default: kDropOldest (fresh data is worth more
  // than old data for collection; telemetry and labels agree).
  OverflowPolicy overflow = OverflowPolicy::kDropOldest;

  Status Validate() const;
};

class BoundedQueue {
 public:
  // REQUIRES: `store` outlives the queue.
  static Result<std::unique_ptr<BoundedQueue>> Create(EncryptedStore* store,
                                                      const BoundedQueueOptions& options);

  // Appends `payload`; returns its record id once committed. kResourceExhausted when the
  // policy is kRejectNew and the queue is full, or when the record alone exceeds max_bytes.
  Result<int64_t> Enqueue(std::string_view payload);
  // Up to `limit` of the oldest records with id > `after_id`, oldest first (not removed).
  Result<std::vector<StoredRecord>> Peek(size_t limit, int64_t after_id = 0);
  // Removes the records `ids` (after the server acknowledged them); returns how many were
  // queued. Repeating an Ack is harmless.
  Result<int64_t> Ack(std::span<const int64_t> ids);
  // Records and bytes queued now, and the drops/rejections ever counted.
  Result<TableStats> Stats();

  const BoundedQueueOptions& options() const { return options_; }

 private:
  BoundedQueue(EncryptedStore* store, BoundedQueueOptions options)
      : store_(store), options_(std::move(options)) {}
  Status CountRejected();

  EncryptedStore* store_;
  BoundedQueueOptions options_;
};

}  // namespace hml::sdk

#endif  // HML_SRC_SDK_STORE_BOUNDED_QUEUE_H_

// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/sdk/store/bounded_queue.h"

#include <mutex>
#include <utility>

namespace hml::sdk {

Status BoundedQueueOptions::Validate() const {
  if (max_records < 1) {
    return InvalidArgumentError("bounded queue '" + table + "': max_records must be >= 1, got " +
                                std::to_string(max_records));
  }
  if (max_bytes < 1) {
    return InvalidArgumentError("bounded queue '" + table + "': max_bytes must be >= 1, got " +
                                std::to_string(max_bytes));
  }
  if (overflow != OverflowPolicy::kDropOldest && overflow != OverflowPolicy::kRejectNew) {
    return InvalidArgumentError("bounded queue '" + table + "': unknown overflow policy");
  }
  return Status::Ok();
}

Result<std::unique_ptr<BoundedQueue>> BoundedQueue::Create(EncryptedStore* store,
                                                           const BoundedQueueOptions& options) {
  if (store == nullptr) return InvalidArgumentError("bounded queue: store is null");
  HML_RETURN_IF_ERROR(options.Validate());
  HML_RETURN_IF_ERROR(store->CheckTable(options.table));
  return std::unique_ptr<BoundedQueue>(new BoundedQueue(store, options));
}

Status BoundedQueue::CountRejected() {
  TableStats delta;
  delta.rejected = 1;
  return store_->db_.InTransaction("count rejected record",
                                   [&] { return store_->AddStatsLocked(options_.table, delta); });
}

Result<int64_t> BoundedQueue::Enqueue(std::string_view payload) {
  EncryptedStore& s = *store_;
  const std::string& table = options_.table;
  HML_RETURN_IF_ERROR(s.CheckPayload(table, payload));
  const int64_t size = static_cast<int64_t>(payload.size());
  std::lock_guard<std::mutex> lock(s.mu_);
  if (size > options_.max_bytes) {
    HML_RETURN_IF_ERROR(CountRejected());
    return ResourceExhaustedError(s.Where(table) + ": record of " + std::to_string(size) +
                                  " bytes can never fit the queue's max_bytes " +
                                  std::to_string(options_.max_bytes) + " (rejected)");
  }
  const uint32_t key_id = s.keys_->CurrentKeyId();
  HML_ASSIGN_OR_RETURN(const StoreKey* key, s.KeyFor(key_id, /*create_check=*/true));
  int64_t id = 0;
  bool full = false;
  Status status = s.db_.InTransaction("enqueue record", [&]() -> Status {
    HML_ASSIGN_OR_RETURN(TableStats stats, s.StatsLocked(table));
    auto fits = [&] {
      return stats.records + 1 <= options_.max_records && stats.bytes + size <= options_.max_bytes;
    };
    if (!fits()) {
      if (options_.overflow == OverflowPolicy::kRejectNew) {
        // The refusal is counted, and nothing else changes.
        full = true;
        TableStats delta;
        delta.rejected = 1;
        return s.AddStatsLocked(table, delta);
      }
      int64_t dropped = 0;
      while (!fits() && stats.records > 0) {
        int64_t oldest = 0;
        {
          storage::ScopedReset reset(s.oldest_.get());
          HML_RETURN_IF_ERROR(s.db_.BindText(s.oldest_.get(), 1, table, "find oldest record"));
          HML_ASSIGN_OR_RETURN(const bool row, s.db_.Step(s.oldest_.get(), "find oldest record"));
          if (!row) {
            return InternalError(s.Where(table) + ": table_stats counts " +
                                 std::to_string(stats.records) + " records but none is stored");
          }
          oldest = sqlite3_column_int64(s.oldest_.get(), 0);
        }
        HML_RETURN_IF_ERROR(s.DeleteLocked(table, oldest).status());
        ++dropped;
        HML_ASSIGN_OR_RETURN(stats, s.StatsLocked(table));
      }
      TableStats delta;
      delta.dropped = dropped;
      HML_RETURN_IF_ERROR(s.AddStatsLocked(table, delta));
    }
    HML_ASSIGN_OR_RETURN(id, s.PutLocked(table, payload, key_id, *key));
    return Status::Ok();
  });
  if (!status.ok()) return status.WithContext(s.Where(table));
  if (full) {
    return ResourceExhaustedError(s.Where(table) + ": queue full (max_records " +
                                  std::to_string(options_.max_records) + ", max_bytes " +
                                  std::to_string(options_.max_bytes) +
                                  "); overflow policy reject-new refused the record");
  }
  return id;
}

Result<std::vector<StoredRecord>> BoundedQueue::Peek(size_t limit, int64_t after_id) {
  return store_->Scan(options_.table, after_id, limit);
}

Result<int64_t> BoundedQueue::Ack(std::span<const int64_t> ids) {
  return store_->Delete(options_.table, ids);
}

Result<TableStats> BoundedQueue::Stats() { return store_->Stats(options_.table); }

}  // namespace hml::sdk

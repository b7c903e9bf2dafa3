// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Uploader: drains the collector's queue (collector.h) to the ingest service as sealed batches
// (src/sync/batch.h) through Transport::Upload, exactly once from the server's point of view.
//
// One SyncOnce() call, step by step:
//   1. CheckBackgroundConditions (include/hml/sdk/platform.h) with the app's BackgroundPolicy.
//      When a condition does not hold, nothing is sent: the report says which condition
//      blocked (kFailedPrecondition "network is metered", ...). Checked again before every
//      attempt, so a device that leaves Wi-Fi mid-sync stops.
//   2. A batch left pending by an earlier sync (a failure, or a crash) is sent first, as it was.
//      Otherwise a new batch is cut from the oldest queued records: at most max_batch_samples
//      records and max_batch_bytes of encoded batch (a single record larger than that goes
//      alone). It is encoded, compressed, sealed to the ingest public key and given a fresh
//      idempotency key ("b-" + 32 random hex digits), and the whole pending batch (key, sealed
//      bytes, sample count and the queue ids it covers) is written to the store's pending table
//      BEFORE the first attempt. The sealed bytes are kept, not re-sealed on retry, because a
//      sealed box is randomized and the server refuses a key reused for other bytes.
//   3. Attempts: Transport::Upload with a per-attempt deadline. UNAVAILABLE and
//      DEADLINE_EXCEEDED (the RetryPolicy's retryable codes) are retried after the policy's
//      jittered backoff (slept on the transport's clock) with the same key and bytes, up to
//      max_attempts; any other error ends the sync with that error and leaves the batch pending.
//   4. On the server's ack (ok, or "duplicate": it already had the key, so an earlier attempt's
//      ack was lost) the queue records of the batch are deleted, then the pending batch. In that
//      order: a crash between the two leaves a pending batch whose records are gone, which the
//      next sync sends again (the server answers duplicate) and deletes; the reverse order could
//      queue the same records into a second batch.
//   5. Repeat from 2 until the queue is empty or max_batches_per_sync batches were acked.
// A crash anywhere loses nothing and duplicates nothing: records leave the store only after an
// ack, and every retry of a batch, across restarts, reuses its key.
//
// Known limit: a batch the server refuses for good (kInvalidArgument, kAlreadyExists,
// kResourceExhausted: a device bug or a server limit below max_batch_bytes) stays pending and
// blocks later batches; each sync reports the error (counters.permanent_failures).
//
// Blocking: SyncOnce() waits for each Upload callback (the app calls it from its background
// worker, e.g. WorkManager / BGTaskScheduler). Thread-safe: concurrent SyncOnce() calls run one
// after the other. Never call it from a transport callback.
#ifndef HML_SRC_SDK_COLLECT_UPLOADER_H_
#define HML_SRC_SDK_COLLECT_UPLOADER_H_

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "hml/sdk/platform.h"
#include "hml/status.h"
#include "src/sdk/resilience/retry_policy.h"
#include "src/sdk/store/bounded_queue.h"
#include "src/sdk/store/encrypted_store.h"
#include "src/sdk/transport.h"
#include "src/sync/batch.h"

namespace hml::sdk {

struct UploaderOptions {
  // The ingest service's X25519 public key (`hybridml ingest keygen` writes it). Required:
  // not all zero.
  std::array<unsigned char, sync::kIngestKeyBytes> ingest_public_key{};
  // The store table holding the batch in flight. Default: "upload_pending".
  std::string pending_table = "upload_pending";
  // Most records per batch. Default: 256. Must be >= 1.
  size_t max_batch_samples = 256;
  // Most bytes of encoded batch (before compression). Default: 512 KiB, so a pending batch
  // fits the store's default 1 MiB record limit even if it does not compress. Must be >= 1.
  size_t max_batch_bytes = size_t{512} << 10;
  // When uploads may run. Default: BackgroundPolicy's (unmetered network, battery >= 20 % or
  // charging).
  BackgroundPolicy conditions;
  // Retries of one batch within a sync (default 5 attempts, UNAVAILABLE/DEADLINE_EXCEEDED,
  // 100 ms doubling to 5 s, full jitter).
  RetryPolicyOptions retry;
  // Deadline of each attempt, from its start. Default: 30 s. Must be >= 1.
  int64_t attempt_timeout_nanos = 30'000'000'000;
  // Batches acked per SyncOnce; 0 = until the queue is empty. Default: 0.
  int max_batches_per_sync = 0;
  // Compression level. Default: SealOptions' (zstd 3).
  sync::SealOptions seal;
  // Seed of the backoff jitter. Default: 1; give each device its own.
  uint64_t seed = 1;

  Status Validate() const;
};

// Counts since the uploader was created.
struct UploadCounters {
  int64_t batches_acked = 0;     // batches the server acknowledged (duplicates included)
  int64_t duplicates = 0;        // acks that said "already stored"
  int64_t samples_uploaded = 0;  // records deleted after an ack
  int64_t bytes_plain = 0;       // encoded batch bytes of the batches sealed
  int64_t bytes_compressed = 0;  // their zstd frames
  int64_t bytes_sealed = 0;      // their sealed boxes (what Upload carries)
  int64_t wire_bytes_sent = 0;   // CallStats::bytes_sent summed over attempts
  int64_t attempts = 0;          // Upload calls
  int64_t retries = 0;           // attempts after the first of a batch (within a sync)
  int64_t failed_attempts = 0;
  int64_t permanent_failures = 0;  // syncs ended by a non-retryable error
  int64_t blocked = 0;             // syncs or attempts not made because of the conditions
};

// What one SyncOnce did.
struct SyncReport {
  // OK when the queue was drained (or max_batches_per_sync reached); kFailedPrecondition when
  // the conditions blocked (see blocked_reason); otherwise the error that ended the sync.
  Status status;
  std::string blocked_reason;  // empty unless blocked
  int64_t batches_acked = 0;
  int64_t duplicates = 0;
  int64_t samples_uploaded = 0;
  int64_t attempts = 0;
  int64_t retries = 0;
  // The idempotency keys acked, in order (for logs and tests).
  std::vector<std::string> acked_keys;
};

class Uploader {
 public:
  // REQUIRES: every pointer non-null and outliving the uploader; `queue` is the collector's
  // queue over `store`. kInvalidArgument for bad options.
  static Result<std::unique_ptr<Uploader>> Create(EncryptedStore* store, BoundedQueue* queue,
                                                  Transport* transport, const Platform* platform,
                                                  const UploaderOptions& options);

  // Uploads until the queue is empty (see the file comment). Blocks.
  SyncReport SyncOnce();

  UploadCounters counters() const;

 private:
  struct Pending {
    int64_t row = 0;  // its id in the pending table
    std::string key;
    uint32_t sample_count = 0;
    std::vector<int64_t> record_ids;
    std::string sealed;
  };

  Uploader(EncryptedStore* store, BoundedQueue* queue, Transport* transport,
           const Platform* platform, const UploaderOptions& options, RetryPolicy policy)
      : store_(store),
        queue_(queue),
        transport_(transport),
        platform_(platform),
        options_(options),
        policy_(std::move(policy)),
        rng_(options.seed) {}

  // The pending batch left by an earlier sync, if any (row 0 when none).
  Result<Pending> LoadPending();
  // Cuts, seals and persists a new batch from the queue (row 0 when the queue is empty).
  Result<Pending> MakeBatch();
  // Sends `batch` until acked, a non-retryable error, attempts run out or conditions block.
  Status Send(const Pending& batch, SyncReport& report);
  // One Upload call, waited for.
  Result<UploadAnswer> Attempt(const Pending& batch);
  Status Acked(const Pending& batch, bool duplicate, SyncReport& report);
  void Count(const std::function<void(UploadCounters&)>& update);

  EncryptedStore* const store_;
  BoundedQueue* const queue_;
  Transport* const transport_;
  const Platform* const platform_;
  const UploaderOptions options_;
  const RetryPolicy policy_;
  std::mutex sync_mu_;   // one SyncOnce at a time
  std::mt19937_64 rng_;  // GUARDED_BY(sync_mu_)
  mutable std::mutex counters_mu_;
  UploadCounters counters_;  // GUARDED_BY(counters_mu_)
};

}  // namespace hml::sdk

#endif  // HML_SRC_SDK_COLLECT_UPLOADER_H_

// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/sdk/collect/uploader.h"

#include <sodium.h>

#include <cstring>
#include <limits>
#include <string>
#include <utility>

namespace hml::sdk {
namespace {

// A pending batch as stored (sealed again by the store, like every record):
//   "HMLP" | u32 version (1) | u16 key length | key | u32 sample count | u32 id count
//   | id count x i64 queue ids | sealed batch (the rest)
constexpr char kPendingMagic[4] = {'H', 'M', 'L', 'P'};
constexpr uint32_t kPendingVersion = 1;

void PutLe(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

bool GetLe(std::string_view in, size_t& pos, int bytes, uint64_t* out) {
  if (in.size() - pos < static_cast<size_t>(bytes)) return false;
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) {
    v |= static_cast<uint64_t>(static_cast<unsigned char>(in[pos + i])) << (8 * i);
  }
  pos += bytes;
  *out = v;
  return true;
}

std::string NewIdempotencyKey() {
  unsigned char bytes[16];
  randombytes_buf(bytes, sizeof(bytes));
  static constexpr char kHex[] = "0123456789abcdef";
  std::string key = "b-";
  for (unsigned char c : bytes) {
    key.push_back(kHex[c >> 4]);
    key.push_back(kHex[c & 15]);
  }
  return key;
}

}  // namespace

Status UploaderOptions::Validate() const {
  bool zero = true;
  for (unsigned char c : ingest_public_key) zero = zero && c == 0;
  if (zero) return InvalidArgumentError("UploaderOptions.ingest_public_key is not set");
  if (max_batch_samples < 1) {
    return InvalidArgumentError("UploaderOptions.max_batch_samples must be >= 1");
  }
  if (max_batch_bytes < 1) {
    return InvalidArgumentError("UploaderOptions.max_batch_bytes must be >= 1");
  }
  if (attempt_timeout_nanos < 1) {
    return InvalidArgumentError("UploaderOptions.attempt_timeout_nanos must be >= 1");
  }
  if (max_batches_per_sync < 0) {
    return InvalidArgumentError("UploaderOptions.max_batches_per_sync must be >= 0");
  }
  HML_RETURN_IF_ERROR(retry.Validate().WithContext("UploaderOptions.retry"));
  return seal.Validate().WithContext("UploaderOptions.seal");
}

Result<std::unique_ptr<Uploader>> Uploader::Create(EncryptedStore* store, BoundedQueue* queue,
                                                   Transport* transport, const Platform* platform,
                                                   const UploaderOptions& options) {
  if (store == nullptr || queue == nullptr || transport == nullptr || platform == nullptr) {
    return InvalidArgumentError("Uploader: store, queue, transport and platform are required");
  }
  HML_RETURN_IF_ERROR(options.Validate());
  if (sodium_init() < 0) return InternalError("Uploader: libsodium failed to initialise");
  HML_ASSIGN_OR_RETURN(RetryPolicy policy, RetryPolicy::Create(options.retry));
  return std::unique_ptr<Uploader>(
      new Uploader(store, queue, transport, platform, options, std::move(policy)));
}

void Uploader::Count(const std::function<void(UploadCounters&)>& update) {
  std::lock_guard<std::mutex> lock(counters_mu_);
  update(counters_);
}

UploadCounters Uploader::counters() const {
  std::lock_guard<std::mutex> lock(counters_mu_);
  return counters_;
}

Result<Uploader::Pending> Uploader::LoadPending() {
  HML_ASSIGN_OR_RETURN(std::vector<StoredRecord> rows, store_->Scan(options_.pending_table, 0, 1));
  Pending p;
  if (rows.empty()) return p;
  const std::string_view in = rows[0].payload;
  const std::string where = "pending batch row " + std::to_string(rows[0].id) + " of table '" +
                            options_.pending_table + "'";
  size_t pos = 4;
  uint64_t version = 0, key_len = 0, samples = 0, ids = 0;
  if (in.size() < 4 || std::memcmp(in.data(), kPendingMagic, 4) != 0 ||
      !GetLe(in, pos, 4, &version)) {
    return DataLossError(where + ": not a pending batch");
  }
  if (version != kPendingVersion) {
    return DataLossError(where + ": version " + std::to_string(version) + " is unknown");
  }
  if (!GetLe(in, pos, 2, &key_len) || in.size() - pos < key_len) {
    return DataLossError(where + ": truncated key");
  }
  p.key = std::string(in.substr(pos, key_len));
  pos += key_len;
  if (!GetLe(in, pos, 4, &samples) || !GetLe(in, pos, 4, &ids) || (in.size() - pos) / 8 < ids) {
    return DataLossError(where + ": truncated record ids");
  }
  p.sample_count = static_cast<uint32_t>(samples);
  p.record_ids.reserve(ids);
  for (uint64_t i = 0; i < ids; ++i) {
    uint64_t id = 0;
    GetLe(in, pos, 8, &id);
    p.record_ids.push_back(static_cast<int64_t>(id));
  }
  p.sealed = std::string(in.substr(pos));
  p.row = rows[0].id;
  return p;
}

Result<Uploader::Pending> Uploader::MakeBatch() {
  HML_ASSIGN_OR_RETURN(std::vector<StoredRecord> records, queue_->Peek(options_.max_batch_samples));
  Pending p;
  if (records.empty()) return p;
  sync::BatchWriter writer;
  for (const StoredRecord& r : records) {
    // The first record always goes in, even when it alone is over the byte bound.
    if (writer.records() > 0 && writer.bytes() + r.payload.size() > options_.max_batch_bytes) {
      break;
    }
    writer.Add(r.payload);
    p.record_ids.push_back(r.id);
  }
  p.sample_count = static_cast<uint32_t>(writer.records());
  const std::string batch = writer.Finish();
  HML_ASSIGN_OR_RETURN(sync::SealedBatch sealed,
                       sync::SealBatch(batch, options_.ingest_public_key, options_.seal));
  p.sealed = std::move(sealed.sealed);
  p.key = NewIdempotencyKey();

  std::string payload(kPendingMagic, sizeof(kPendingMagic));
  PutLe(payload, kPendingVersion, 4);
  PutLe(payload, p.key.size(), 2);
  payload += p.key;
  PutLe(payload, p.sample_count, 4);
  PutLe(payload, p.record_ids.size(), 4);
  for (int64_t id : p.record_ids) PutLe(payload, static_cast<uint64_t>(id), 8);
  payload += p.sealed;
  // Persisted before the first attempt: every retry, after a crash too, reuses key and bytes.
  HML_ASSIGN_OR_RETURN(p.row, store_->Put(options_.pending_table, payload));
  Count([&](UploadCounters& c) {
    c.bytes_plain += static_cast<int64_t>(sealed.plain_bytes);
    c.bytes_compressed += static_cast<int64_t>(sealed.compressed_bytes);
    c.bytes_sealed += static_cast<int64_t>(p.sealed.size());
  });
  return p;
}

Result<UploadAnswer> Uploader::Attempt(const Pending& batch) {
  UploadCall call;
  call.idempotency_key = batch.key;
  call.sealed_batch = batch.sealed;
  call.sample_count = batch.sample_count;
  call.deadline_nanos = transport_->clock()->NowNanos() + options_.attempt_timeout_nanos;
  auto [answer, stats] = CallAndWait<UploadAnswer>(
      [&](UploadCallback done) { transport_->Upload(std::move(call), std::move(done)); });
  const int64_t sent = stats.bytes_sent;
  Count([&](UploadCounters& c) {
    ++c.attempts;
    c.wire_bytes_sent += sent;
  });
  return std::move(answer);
}

Status Uploader::Acked(const Pending& batch, bool duplicate, SyncReport& report) {
  HML_RETURN_IF_ERROR(queue_->Ack(batch.record_ids).status());
  const int64_t row = batch.row;
  HML_RETURN_IF_ERROR(store_->Delete(options_.pending_table, {&row, 1}).status());
  ++report.batches_acked;
  report.duplicates += duplicate ? 1 : 0;
  report.samples_uploaded += batch.sample_count;
  report.acked_keys.push_back(batch.key);
  Count([&](UploadCounters& c) {
    ++c.batches_acked;
    c.duplicates += duplicate ? 1 : 0;
    c.samples_uploaded += batch.sample_count;
  });
  return Status::Ok();
}

Status Uploader::Send(const Pending& batch, SyncReport& report) {
  for (int attempt = 1;; ++attempt) {
    const Status conditions = CheckBackgroundConditions(*platform_, options_.conditions);
    if (!conditions.ok()) {
      report.blocked_reason = std::string(conditions.message());
      Count([](UploadCounters& c) { ++c.blocked; });
      return conditions;
    }
    ++report.attempts;
    if (attempt > 1) {
      ++report.retries;
      Count([](UploadCounters& c) { ++c.retries; });
    }
    Result<UploadAnswer> answer = Attempt(batch);
    if (answer.ok()) return Acked(batch, answer->duplicate, report);
    Count([](UploadCounters& c) { ++c.failed_attempts; });
    const double uniform01 = static_cast<double>(rng_() >> 11) * 0x1.0p-53;
    const RetryDecision decision =
        policy_.Decide(answer.status(), attempt, transport_->clock()->NowNanos(),
                       std::numeric_limits<int64_t>::max() / 2, uniform01);
    const std::string context = "upload of batch " + batch.key + " (" +
                                std::to_string(batch.sample_count) + " samples), attempt " +
                                std::to_string(attempt);
    if (!decision.retry) {
      if (!policy_.IsRetryable(answer.status().code())) {
        Count([](UploadCounters& c) { ++c.permanent_failures; });
      }
      return answer.status().WithContext(context + ", not retried: " + decision.reason);
    }
    transport_->clock()->SleepNanos(decision.delay_nanos);
  }
}

SyncReport Uploader::SyncOnce() {
  std::lock_guard<std::mutex> lock(sync_mu_);
  SyncReport report;
  const Status conditions = CheckBackgroundConditions(*platform_, options_.conditions);
  if (!conditions.ok()) {
    report.status = conditions;
    report.blocked_reason = std::string(conditions.message());
    Count([](UploadCounters& c) { ++c.blocked; });
    return report;
  }
  while (options_.max_batches_per_sync == 0 ||
         report.batches_acked < options_.max_batches_per_sync) {
    Result<Pending> batch = LoadPending();
    if (batch.ok() && batch->row == 0) batch = MakeBatch();
    if (!batch.ok()) {
      report.status = batch.status().WithContext("uploader");
      return report;
    }
    if (batch->row == 0) break;  // the queue is empty
    const Status sent = Send(*batch, report);
    if (!sent.ok()) {
      report.status = sent;
      return report;
    }
  }
  return report;
}

}  // namespace hml::sdk

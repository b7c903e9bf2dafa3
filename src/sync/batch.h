// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The data batch a device uploads to the ingest service (issue 6, "Data and sync"): its wire
// format, compression and sealing. Both sides link this module: the SDK's uploader builds and
// seals batches, the server's dataset export opens and decodes them. It depends on hml_base,
// libzstd and libsodium only, so the server does not link the SDK and the device does not link
// server code (docs/architecture.md).
//
// Encoding (all integers little-endian, floats IEEE-754 binary32):
//   header:  "HMLB" | u32 version (1) | u32 record count | u32 schema (kRecordSchemaV1)
//   record:  u8 kind | u16 name length | name bytes | i64 model version | i64 timestamp (ms)
//            | u8 rank | rank x i64 dims | u32 float count | floats
//            | i64 label (-1 = none) | i32 predicted class (-1 = none) | f32 confidence
// A batch is the header followed by exactly `record count` records and nothing else. Records are
// encoded one by one (EncodeRecord) so the SDK can queue each record as it is collected and the
// uploader can make a batch by concatenating queued records behind a header (BatchWriter),
// without decoding them again.
//
// Sealing: the encoded batch is compressed with zstd (one frame that records its content size)
// and the frame is sealed with libsodium's sealed box (crypto_box_seal: an ephemeral X25519 key
// pair, XSalsa20-Poly1305) to the ingest service's X25519 public key. The server stores the
// sealed bytes as they arrive and never holds the secret key; only the export (the training
// job's side) opens them. A sealed box is anonymous and randomized: sealing the same batch twice
// gives different bytes, so an uploader must keep the bytes it sealed for its retries (the
// ingest store refuses a key reused for other bytes).
//
// Opening checks everything before trusting it: the box must authenticate under the secret key
// (a wrong key and a tampered ciphertext look the same: kDataLoss "does not open"), the zstd
// frame must declare its content size and that size must be within the caller's limit before
// anything is allocated, and the decoder checks magic, version, schema, the record count against
// the bytes left, each kind, length, rank, dimension, float count (against the dims and the
// bytes left, before allocating) and that no bytes trail. Errors name the record and field.
#ifndef HML_SRC_SYNC_BATCH_H_
#define HML_SRC_SYNC_BATCH_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "hml/status.h"

namespace hml::sync {

inline constexpr char kBatchMagic[4] = {'H', 'M', 'L', 'B'};
inline constexpr uint32_t kBatchVersion = 1;
// The record layout above. A new field means a new schema; decoders refuse schemas they do not
// know rather than guess.
inline constexpr uint32_t kRecordSchemaV1 = 1;
inline constexpr size_t kBatchHeaderBytes = 16;

// Decoder limits (a record over them is refused as malformed).
inline constexpr size_t kMaxModelNameBytes = 256;
inline constexpr uint32_t kMaxRank = 8;

enum class RecordKind : uint8_t {
  kInput = 1,          // a model input the app saw
  kPrediction = 2,     // an input with the model's predicted class and confidence
  kLabel = 3,          // an input with its true label (from the user or the app)
  kSensorSummary = 4,  // a window of a sensor stream summarised: features [5, channels]
};

// "input", "prediction", "label", "sensor-summary".
std::string_view RecordKindName(RecordKind kind);

// The rows of a sensor summary's [5, channels] features, in this order.
enum SensorSummaryRow : int64_t {
  kSummaryCount = 0,
  kSummaryMean = 1,
  kSummaryMin = 2,
  kSummaryMax = 3,
  kSummaryStd = 4,  // population standard deviation
  kSummaryRows = 5,
};

struct Record {
  RecordKind kind = RecordKind::kInput;
  // The model the sample is for (or, for a sensor summary, the stream's name); 0-256 bytes.
  std::string model;
  // The model's registry version; 0 = unknown.
  int64_t model_version = 0;
  // Device wall clock, milliseconds since the Unix epoch (a sensor window: its start).
  int64_t timestamp_ms = 0;
  // Feature shape (rank 0-8, each dim >= 1) and product(shape) floats; both empty when the
  // record carries no features.
  std::vector<int64_t> shape;
  std::vector<float> features;
  // The true class; -1 = none.
  int64_t label = -1;
  // The model's answer; -1 = none (confidence is then 0).
  int32_t predicted_class = -1;
  float confidence = 0;

  friend bool operator==(const Record&, const Record&) = default;
};

// kInvalidArgument naming the field when `record` cannot be encoded: an unknown kind, a name over
// 256 bytes, rank over 8, a dim < 1, features.size() != product(shape), label < -1,
// predicted_class < -1, a confidence outside [0, 1] or not finite.
Status ValidateRecord(const Record& record);

// The record's bytes (the layout above). kInvalidArgument as ValidateRecord.
Result<std::string> EncodeRecord(const Record& record);

// Builds a batch from records already encoded by EncodeRecord.
class BatchWriter {
 public:
  BatchWriter();
  // Appends one encoded record (not checked again: it came from EncodeRecord).
  void Add(std::string_view encoded_record);
  size_t records() const { return records_; }
  // Bytes of the batch so far, header included.
  size_t bytes() const { return buffer_.size(); }
  // The batch (header with the final count, then the records). The writer is empty afterwards.
  std::string Finish();

 private:
  std::string buffer_;
  size_t records_ = 0;
};

// Encodes `records` into one batch. kInvalidArgument as ValidateRecord, naming the record index.
Result<std::string> EncodeBatch(const std::vector<Record>& records);

// Decodes a batch. kInvalidArgument for a wrong magic, version or schema; kDataLoss for
// truncation, counts or sizes that disagree with the bytes, trailing bytes, or a field out of
// range; each error names the record index and the field.
Result<std::vector<Record>> DecodeBatch(std::string_view bytes);

// --- Keys and sealing ------------------------------------------------------------------------

inline constexpr size_t kIngestKeyBytes = 32;  // X25519 public and secret keys

struct IngestKeyPair {
  std::array<unsigned char, kIngestKeyBytes> public_key{};
  std::array<unsigned char, kIngestKeyBytes> secret_key{};
};

// A fresh key pair from libsodium's random source. kInternal when libsodium cannot start.
Result<IngestKeyPair> GenerateIngestKeyPair();
// The key pair whose secret key is `secret_key` (the public key is derived from it).
// kInvalidArgument unless it is kIngestKeyBytes long.
Result<IngestKeyPair> IngestKeyPairFromSecret(std::string_view secret_key);

// Key files hold the key as 64 lowercase hex characters and a newline. Parsing accepts
// surrounding whitespace; kInvalidArgument naming `what` ("public key", "secret key") otherwise.
std::string KeyToHex(const std::array<unsigned char, kIngestKeyBytes>& key);
Result<std::array<unsigned char, kIngestKeyBytes>> KeyFromHex(std::string_view text,
                                                              std::string_view what);

struct SealOptions {
  // zstd level, 1-19. Default: 3 (zstd's own default: fast on a phone, most of the gain).
  int compression_level = 3;

  Status Validate() const;
};

// The result of sealing, with the sizes a progress report wants.
struct SealedBatch {
  std::string sealed;
  size_t plain_bytes = 0;       // the encoded batch
  size_t compressed_bytes = 0;  // the zstd frame
};

// Compresses `batch` (an encoded batch) and seals it to `public_key`.
// kInvalidArgument for bad options; kInternal if zstd or libsodium fails.
Result<SealedBatch> SealBatch(std::string_view batch,
                              const std::array<unsigned char, kIngestKeyBytes>& public_key,
                              const SealOptions& options = {});

// Opens a sealed batch and returns the encoded batch (not yet decoded). kDataLoss when the box
// does not open (wrong key or tampered/truncated ciphertext), when the frame is not valid zstd
// or does not declare its size, or decompresses to other than its declared size;
// kResourceExhausted when the declared size exceeds `max_plain_bytes` (checked before
// allocating).
Result<std::string> OpenBatch(std::string_view sealed, const IngestKeyPair& keys,
                              size_t max_plain_bytes = size_t{256} << 20);

// OpenBatch then DecodeBatch.
Result<std::vector<Record>> OpenAndDecodeBatch(std::string_view sealed, const IngestKeyPair& keys,
                                               size_t max_plain_bytes = size_t{256} << 20);

}  // namespace hml::sync

#endif  // HML_SRC_SYNC_BATCH_H_

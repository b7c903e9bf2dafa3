// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/sync/batch.h"

#include <sodium.h>
#include <zstd.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>

namespace hml::sync {
namespace {

// Fixed bytes of a record around its variable parts: kind, name length, version, timestamp,
// rank, float count, label, predicted class, confidence.
constexpr size_t kRecordFixedBytes = 1 + 2 + 8 + 8 + 1 + 4 + 8 + 4 + 4;

void PutU8(std::string& out, uint8_t v) { out.push_back(static_cast<char>(v)); }
void PutLe(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void PutF32(std::string& out, float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof(bits));
  PutLe(out, bits, 4);
}

// A bounds-checked little-endian reader. Every Read* returns false (reading nothing) when fewer
// bytes remain than asked.
class Reader {
 public:
  explicit Reader(std::string_view bytes) : bytes_(bytes) {}
  size_t remaining() const { return bytes_.size() - pos_; }
  bool ReadLe(int n, uint64_t* out) {
    if (remaining() < static_cast<size_t>(n)) return false;
    uint64_t v = 0;
    for (int i = 0; i < n; ++i) {
      v |= static_cast<uint64_t>(static_cast<unsigned char>(bytes_[pos_ + i])) << (8 * i);
    }
    pos_ += n;
    *out = v;
    return true;
  }
  bool ReadBytes(size_t n, std::string_view* out) {
    if (remaining() < n) return false;
    *out = bytes_.substr(pos_, n);
    pos_ += n;
    return true;
  }

 private:
  std::string_view bytes_;
  size_t pos_ = 0;
};

Status Malformed(size_t index, std::string_view field, std::string_view why) {
  return DataLossError("batch record " + std::to_string(index) + ": " + std::string(field) + ": " +
                       std::string(why));
}

bool KnownKind(uint8_t kind) {
  return kind >= static_cast<uint8_t>(RecordKind::kInput) &&
         kind <= static_cast<uint8_t>(RecordKind::kSensorSummary);
}

Result<Record> DecodeRecord(Reader& in, size_t index) {
  Record r;
  uint64_t v = 0;
  if (!in.ReadLe(1, &v)) return Malformed(index, "kind", "truncated");
  if (!KnownKind(static_cast<uint8_t>(v))) {
    return Malformed(index, "kind", "unknown kind " + std::to_string(v));
  }
  r.kind = static_cast<RecordKind>(v);
  if (!in.ReadLe(2, &v)) return Malformed(index, "model name length", "truncated");
  if (v > kMaxModelNameBytes) {
    return Malformed(index, "model name length",
                     std::to_string(v) + " > " + std::to_string(kMaxModelNameBytes));
  }
  std::string_view name;
  if (!in.ReadBytes(v, &name)) return Malformed(index, "model name", "truncated");
  r.model = std::string(name);
  if (!in.ReadLe(8, &v)) return Malformed(index, "model version", "truncated");
  r.model_version = static_cast<int64_t>(v);
  if (!in.ReadLe(8, &v)) return Malformed(index, "timestamp", "truncated");
  r.timestamp_ms = static_cast<int64_t>(v);
  if (!in.ReadLe(1, &v)) return Malformed(index, "rank", "truncated");
  if (v > kMaxRank) {
    return Malformed(index, "rank", std::to_string(v) + " > " + std::to_string(kMaxRank));
  }
  const uint64_t rank = v;
  // The product of the dims, checked against the bytes left as it grows, so no overflow and no
  // allocation sized by an unchecked number.
  uint64_t elements = rank == 0 ? 0 : 1;
  for (uint64_t d = 0; d < rank; ++d) {
    if (!in.ReadLe(8, &v)) return Malformed(index, "dim " + std::to_string(d), "truncated");
    const int64_t dim = static_cast<int64_t>(v);
    if (dim < 1) return Malformed(index, "dim " + std::to_string(d), std::to_string(dim) + " < 1");
    if (static_cast<uint64_t>(dim) > in.remaining() / 4 + 1 ||
        elements > (in.remaining() / 4 + 1) / static_cast<uint64_t>(dim)) {
      return Malformed(index, "shape", "more elements than the batch has bytes for");
    }
    elements *= static_cast<uint64_t>(dim);
    r.shape.push_back(dim);
  }
  if (!in.ReadLe(4, &v)) return Malformed(index, "float count", "truncated");
  if (v != elements) {
    return Malformed(index, "float count",
                     std::to_string(v) + " floats for a shape of " + std::to_string(elements));
  }
  if (v > in.remaining() / 4) return Malformed(index, "features", "truncated");
  std::string_view raw;
  in.ReadBytes(v * 4, &raw);
  r.features.resize(v);
  for (uint64_t i = 0; i < v; ++i) {
    uint32_t bits = 0;
    for (int b = 0; b < 4; ++b) {
      bits |= static_cast<uint32_t>(static_cast<unsigned char>(raw[i * 4 + b])) << (8 * b);
    }
    std::memcpy(&r.features[i], &bits, sizeof(bits));
  }
  if (!in.ReadLe(8, &v)) return Malformed(index, "label", "truncated");
  r.label = static_cast<int64_t>(v);
  if (r.label < -1) return Malformed(index, "label", std::to_string(r.label) + " < -1");
  if (!in.ReadLe(4, &v)) return Malformed(index, "predicted class", "truncated");
  r.predicted_class = static_cast<int32_t>(static_cast<uint32_t>(v));
  if (r.predicted_class < -1) {
    return Malformed(index, "predicted class", std::to_string(r.predicted_class) + " < -1");
  }
  if (!in.ReadLe(4, &v)) return Malformed(index, "confidence", "truncated");
  const uint32_t bits = static_cast<uint32_t>(v);
  std::memcpy(&r.confidence, &bits, sizeof(bits));
  if (!std::isfinite(r.confidence) || r.confidence < 0 || r.confidence > 1) {
    return Malformed(index, "confidence", "outside [0, 1]");
  }
  return r;
}

Status SodiumReady() {
  if (sodium_init() < 0) return InternalError("libsodium failed to initialise");
  return Status::Ok();
}

}  // namespace

std::string_view RecordKindName(RecordKind kind) {
  switch (kind) {
    case RecordKind::kInput:
      return "input";
    case RecordKind::kPrediction:
      return "prediction";
    case RecordKind::kLabel:
      return "label";
    case RecordKind::kSensorSummary:
      return "sensor-summary";
  }
  return "unknown";
}

Status ValidateRecord(const Record& record) {
  if (!KnownKind(static_cast<uint8_t>(record.kind))) {
    return InvalidArgumentError("record kind " + std::to_string(static_cast<int>(record.kind)) +
                                " is unknown");
  }
  if (record.model.size() > kMaxModelNameBytes) {
    return InvalidArgumentError("record model name is " + std::to_string(record.model.size()) +
                                " bytes; at most " + std::to_string(kMaxModelNameBytes));
  }
  if (record.shape.size() > kMaxRank) {
    return InvalidArgumentError("record shape has rank " + std::to_string(record.shape.size()) +
                                "; at most " + std::to_string(kMaxRank));
  }
  uint64_t elements = record.shape.empty() ? 0 : 1;
  for (int64_t dim : record.shape) {
    if (dim < 1) return InvalidArgumentError("record shape has a dim " + std::to_string(dim));
    // The float count is a u32 on the wire.
    if (elements > 0xffffffffu / static_cast<uint64_t>(dim)) {
      return InvalidArgumentError("record shape has 2^32 elements or more");
    }
    elements *= static_cast<uint64_t>(dim);
  }
  if (record.features.size() != elements) {
    return InvalidArgumentError("record has " + std::to_string(record.features.size()) +
                                " features for a shape of " + std::to_string(elements));
  }
  if (record.label < -1) return InvalidArgumentError("record label is < -1");
  if (record.predicted_class < -1) return InvalidArgumentError("record predicted class is < -1");
  if (!std::isfinite(record.confidence) || record.confidence < 0 || record.confidence > 1) {
    return InvalidArgumentError("record confidence is outside [0, 1]");
  }
  return Status::Ok();
}

Result<std::string> EncodeRecord(const Record& record) {
  HML_RETURN_IF_ERROR(ValidateRecord(record));
  std::string out;
  out.reserve(kRecordFixedBytes + record.model.size() + 8 * record.shape.size() +
              4 * record.features.size());
  PutU8(out, static_cast<uint8_t>(record.kind));
  PutLe(out, record.model.size(), 2);
  out.append(record.model);
  PutLe(out, static_cast<uint64_t>(record.model_version), 8);
  PutLe(out, static_cast<uint64_t>(record.timestamp_ms), 8);
  PutU8(out, static_cast<uint8_t>(record.shape.size()));
  for (int64_t dim : record.shape) PutLe(out, static_cast<uint64_t>(dim), 8);
  PutLe(out, record.features.size(), 4);
  for (float f : record.features) PutF32(out, f);
  PutLe(out, static_cast<uint64_t>(record.label), 8);
  PutLe(out, static_cast<uint32_t>(record.predicted_class), 4);
  PutF32(out, record.confidence);
  return out;
}

BatchWriter::BatchWriter() { buffer_.resize(kBatchHeaderBytes); }

void BatchWriter::Add(std::string_view encoded_record) {
  buffer_.append(encoded_record);
  ++records_;
}

std::string BatchWriter::Finish() {
  std::string header(kBatchMagic, sizeof(kBatchMagic));
  PutLe(header, kBatchVersion, 4);
  PutLe(header, records_, 4);
  PutLe(header, kRecordSchemaV1, 4);
  std::string out = std::move(buffer_);
  out.replace(0, kBatchHeaderBytes, header);
  buffer_.assign(kBatchHeaderBytes, '\0');
  records_ = 0;
  return out;
}

Result<std::string> EncodeBatch(const std::vector<Record>& records) {
  BatchWriter writer;
  for (size_t i = 0; i < records.size(); ++i) {
    Result<std::string> encoded = EncodeRecord(records[i]);
    if (!encoded.ok()) return encoded.status().WithContext("record " + std::to_string(i));
    writer.Add(*encoded);
  }
  return writer.Finish();
}

Result<std::vector<Record>> DecodeBatch(std::string_view bytes) {
  if (bytes.size() < kBatchHeaderBytes) {
    return DataLossError("batch header: " + std::to_string(bytes.size()) + " bytes, needs " +
                         std::to_string(kBatchHeaderBytes));
  }
  if (std::memcmp(bytes.data(), kBatchMagic, sizeof(kBatchMagic)) != 0) {
    return InvalidArgumentError("batch header: wrong magic (not an HMLB batch)");
  }
  Reader in(bytes.substr(4));
  uint64_t version = 0, count = 0, schema = 0;
  in.ReadLe(4, &version);
  in.ReadLe(4, &count);
  in.ReadLe(4, &schema);
  if (version != kBatchVersion) {
    return InvalidArgumentError("batch header: version " + std::to_string(version) +
                                " is not supported (this build reads " +
                                std::to_string(kBatchVersion) + ")");
  }
  if (schema != kRecordSchemaV1) {
    return InvalidArgumentError("batch header: record schema " + std::to_string(schema) +
                                " is unknown");
  }
  // Every record takes at least kRecordFixedBytes, so the count is bounded by the bytes before
  // the vector is sized by it.
  if (count > in.remaining() / kRecordFixedBytes) {
    return DataLossError("batch header: " + std::to_string(count) + " records cannot fit in " +
                         std::to_string(in.remaining()) + " bytes");
  }
  std::vector<Record> records;
  records.reserve(count);
  for (uint64_t i = 0; i < count; ++i) {
    HML_ASSIGN_OR_RETURN(Record r, DecodeRecord(in, i));
    records.push_back(std::move(r));
  }
  if (in.remaining() != 0) {
    return DataLossError("batch: " + std::to_string(in.remaining()) + " bytes after the " +
                         std::to_string(count) + " records the header declares");
  }
  return records;
}

Result<IngestKeyPair> GenerateIngestKeyPair() {
  HML_RETURN_IF_ERROR(SodiumReady());
  IngestKeyPair keys;
  crypto_box_keypair(keys.public_key.data(), keys.secret_key.data());
  return keys;
}

Result<IngestKeyPair> IngestKeyPairFromSecret(std::string_view secret_key) {
  HML_RETURN_IF_ERROR(SodiumReady());
  if (secret_key.size() != kIngestKeyBytes) {
    return InvalidArgumentError("ingest secret key is " + std::to_string(secret_key.size()) +
                                " bytes; needs " + std::to_string(kIngestKeyBytes));
  }
  IngestKeyPair keys;
  std::memcpy(keys.secret_key.data(), secret_key.data(), kIngestKeyBytes);
  if (crypto_scalarmult_base(keys.public_key.data(), keys.secret_key.data()) != 0) {
    return InvalidArgumentError("ingest secret key does not give a public key");
  }
  return keys;
}

std::string KeyToHex(const std::array<unsigned char, kIngestKeyBytes>& key) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : key) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

Result<std::array<unsigned char, kIngestKeyBytes>> KeyFromHex(std::string_view text,
                                                              std::string_view what) {
  const size_t begin = text.find_first_not_of(" \t\r\n");
  const size_t end = text.find_last_not_of(" \t\r\n");
  if (begin == std::string_view::npos) {
    return InvalidArgumentError(std::string(what) + " is empty");
  }
  text = text.substr(begin, end - begin + 1);
  if (text.size() != 2 * kIngestKeyBytes) {
    return InvalidArgumentError(std::string(what) + " has " + std::to_string(text.size()) +
                                " characters; needs " + std::to_string(2 * kIngestKeyBytes) +
                                " hex digits");
  }
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::array<unsigned char, kIngestKeyBytes> key{};
  for (size_t i = 0; i < kIngestKeyBytes; ++i) {
    const int hi = nibble(text[2 * i]), lo = nibble(text[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      return InvalidArgumentError(std::string(what) + " has a character that is not hex");
    }
    key[i] = static_cast<unsigned char>(hi * 16 + lo);
  }
  return key;
}

Status SealOptions::Validate() const {
  if (compression_level < 1 || compression_level > 19) {
    return InvalidArgumentError("SealOptions.compression_level " +
                                std::to_string(compression_level) + " is outside [1, 19]");
  }
  return Status::Ok();
}

Result<SealedBatch> SealBatch(std::string_view batch,
                              const std::array<unsigned char, kIngestKeyBytes>& public_key,
                              const SealOptions& options) {
  HML_RETURN_IF_ERROR(options.Validate());
  HML_RETURN_IF_ERROR(SodiumReady());
  std::string frame(ZSTD_compressBound(batch.size()), '\0');
  const size_t n = ZSTD_compress(frame.data(), frame.size(), batch.data(), batch.size(),
                                 options.compression_level);
  if (ZSTD_isError(n)) {
    return InternalError(std::string("zstd compression of a batch failed: ") +
                         ZSTD_getErrorName(n));
  }
  frame.resize(n);
  SealedBatch out;
  out.plain_bytes = batch.size();
  out.compressed_bytes = frame.size();
  out.sealed.resize(frame.size() + crypto_box_SEALBYTES);
  if (crypto_box_seal(reinterpret_cast<unsigned char*>(out.sealed.data()),
                      reinterpret_cast<const unsigned char*>(frame.data()), frame.size(),
                      public_key.data()) != 0) {
    return InternalError("crypto_box_seal failed (is the ingest public key valid?)");
  }
  return out;
}

Result<std::string> OpenBatch(std::string_view sealed, const IngestKeyPair& keys,
                              size_t max_plain_bytes) {
  HML_RETURN_IF_ERROR(SodiumReady());
  if (sealed.size() <= crypto_box_SEALBYTES) {
    return DataLossError("sealed batch of " + std::to_string(sealed.size()) +
                         " bytes is shorter than a sealed box's overhead (" +
                         std::to_string(crypto_box_SEALBYTES) + ") plus content");
  }
  std::string frame(sealed.size() - crypto_box_SEALBYTES, '\0');
  if (crypto_box_seal_open(reinterpret_cast<unsigned char*>(frame.data()),
                           reinterpret_cast<const unsigned char*>(sealed.data()), sealed.size(),
                           keys.public_key.data(), keys.secret_key.data()) != 0) {
    return DataLossError(
        "sealed batch does not open: sealed to another ingest key, or the ciphertext was "
        "altered or truncated");
  }
  const unsigned long long declared = ZSTD_getFrameContentSize(frame.data(), frame.size());
  if (declared == ZSTD_CONTENTSIZE_ERROR) {
    return DataLossError("opened batch is not a zstd frame");
  }
  if (declared == ZSTD_CONTENTSIZE_UNKNOWN) {
    return DataLossError("opened batch's zstd frame does not declare its size");
  }
  if (declared > max_plain_bytes) {
    return ResourceExhaustedError("opened batch declares " + std::to_string(declared) +
                                  " bytes; the limit is " + std::to_string(max_plain_bytes));
  }
  std::string plain(static_cast<size_t>(declared), '\0');
  const size_t n = ZSTD_decompress(plain.data(), plain.size(), frame.data(), frame.size());
  if (ZSTD_isError(n)) {
    return DataLossError(std::string("opened batch does not decompress: ") + ZSTD_getErrorName(n));
  }
  if (n != plain.size()) {
    return DataLossError("opened batch decompressed to " + std::to_string(n) +
                         " bytes; its frame declares " + std::to_string(plain.size()));
  }
  return plain;
}

Result<std::vector<Record>> OpenAndDecodeBatch(std::string_view sealed, const IngestKeyPair& keys,
                                               size_t max_plain_bytes) {
  HML_ASSIGN_OR_RETURN(std::string plain, OpenBatch(sealed, keys, max_plain_bytes));
  return DecodeBatch(plain);
}

}  // namespace hml::sync

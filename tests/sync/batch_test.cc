// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/sync/batch.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

namespace hml::sync {
namespace {

using ::testing::HasSubstr;

std::vector<Record> SampleRecords() {
  Record input;
  input.kind = RecordKind::kInput;
  input.model = "student";
  input.model_version = 3;
  input.timestamp_ms = 1764000000123;
  input.shape = {1, 2, 2};
  input.features = {0.f, 0.25f, -1.5f, 3e6f};

  Record prediction = input;
  prediction.kind = RecordKind::kPrediction;
  prediction.predicted_class = 7;
  prediction.confidence = 0.42f;

  Record label = input;
  label.kind = RecordKind::kLabel;
  label.label = 4;

  Record summary;
  summary.kind = RecordKind::kSensorSummary;
  summary.model = "accel";
  summary.shape = {5, 1};
  summary.features = {3, 1, 0, 2, 0.8165f};

  Record bare;  // no features, empty name
  return {input, prediction, label, summary, bare};
}

std::string Encoded(const std::vector<Record>& records) {
  Result<std::string> batch = EncodeBatch(records);
  EXPECT_TRUE(batch.ok()) << batch.status().ToString();
  return batch.ok() ? *batch : std::string();
}

void PutU32(std::string& bytes, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) bytes[at + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

TEST(BatchFormatTest, RoundTripKeepsEveryField) {
  const std::vector<Record> records = SampleRecords();
  const std::string bytes = Encoded(records);
  Result<std::vector<Record>> decoded = DecodeBatch(bytes);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(*decoded, records);
}

TEST(BatchFormatTest, EmptyBatchRoundTrips) {
  const std::string bytes = Encoded({});
  EXPECT_EQ(bytes.size(), kBatchHeaderBytes);
  Result<std::vector<Record>> decoded = DecodeBatch(bytes);
  ASSERT_TRUE(decoded.ok());
  EXPECT_TRUE(decoded->empty());
}

TEST(BatchFormatTest, WriterOfEncodedRecordsEqualsEncodeBatch) {
  const std::vector<Record> records = SampleRecords();
  BatchWriter writer;
  for (const Record& r : records) writer.Add(*EncodeRecord(r));
  EXPECT_EQ(writer.records(), records.size());
  EXPECT_EQ(writer.Finish(), Encoded(records));
  // The writer starts again empty.
  EXPECT_EQ(writer.records(), 0u);
  EXPECT_EQ(writer.Finish(), Encoded({}));
}

TEST(BatchFormatTest, EncodeRefusesInvalidRecords) {
  Record r = SampleRecords()[0];
  r.features.pop_back();
  EXPECT_THAT(EncodeRecord(r).status().message(), HasSubstr("3 features for a shape of 4"));
  r = SampleRecords()[0];
  r.shape = {2, 0};
  EXPECT_EQ(EncodeRecord(r).status().code(), StatusCode::kInvalidArgument);
  r = SampleRecords()[1];
  r.confidence = 1.5f;
  EXPECT_THAT(EncodeRecord(r).status().message(), HasSubstr("confidence"));
  r = SampleRecords()[0];
  r.model = std::string(300, 'm');
  EXPECT_THAT(EncodeRecord(r).status().message(), HasSubstr("model name"));
  r = SampleRecords()[0];
  r.label = -2;
  EXPECT_THAT(EncodeBatch({SampleRecords()[0], r}).status().message(), HasSubstr("record 1"));
}

TEST(BatchFormatTest, EveryTruncationIsDataLoss) {
  const std::string bytes = Encoded(SampleRecords());
  for (size_t n = 0; n < bytes.size(); ++n) {
    Result<std::vector<Record>> decoded = DecodeBatch(std::string_view(bytes).substr(0, n));
    ASSERT_FALSE(decoded.ok()) << "prefix of " << n << " bytes decoded";
    EXPECT_EQ(decoded.status().code(), StatusCode::kDataLoss)
        << n << ": " << decoded.status().ToString();
  }
}

TEST(BatchFormatTest, WrongMagicVersionAndSchemaAreNamed) {
  std::string bytes = Encoded(SampleRecords());
  std::string bad = bytes;
  bad[0] = 'X';
  EXPECT_THAT(DecodeBatch(bad).status().message(), HasSubstr("wrong magic"));
  bad = bytes;
  PutU32(bad, 4, 9);
  EXPECT_THAT(DecodeBatch(bad).status().message(), HasSubstr("version 9 is not supported"));
  bad = bytes;
  PutU32(bad, 12, 2);
  EXPECT_THAT(DecodeBatch(bad).status().message(), HasSubstr("record schema 2 is unknown"));
}

TEST(BatchFormatTest, BadCountsAreRefusedBeforeAllocating) {
  std::string bytes = Encoded(SampleRecords());
  // A count far beyond what the bytes can hold.
  std::string bad = bytes;
  PutU32(bad, 8, 0xffffffffu);
  EXPECT_THAT(DecodeBatch(bad).status().message(), HasSubstr("cannot fit"));
  // One record fewer than present: trailing bytes.
  bad = bytes;
  PutU32(bad, 8, 4);
  EXPECT_THAT(DecodeBatch(bad).status().message(), HasSubstr("bytes after the 4 records"));
  // One more than present: the last record is truncated.
  bad = bytes + std::string(64, '\0');
  PutU32(bad, 8, 6);
  EXPECT_EQ(DecodeBatch(bad).status().code(), StatusCode::kDataLoss);
}

TEST(BatchFormatTest, BadRecordFieldsAreNamed) {
  Record r = SampleRecords()[0];
  const std::string one = Encoded({r});
  const size_t rec = kBatchHeaderBytes;
  const size_t name_len = r.model.size();
  const size_t rank_at = rec + 1 + 2 + name_len + 8 + 8;
  const size_t dims_at = rank_at + 1;
  const size_t count_at = dims_at + 8 * r.shape.size();

  std::string bad = one;
  bad[rec] = 9;
  EXPECT_THAT(DecodeBatch(bad).status().message(), HasSubstr("record 0: kind: unknown kind 9"));
  bad = one;
  bad[rank_at] = 9;
  EXPECT_THAT(DecodeBatch(bad).status().message(), HasSubstr("rank: 9 > 8"));
  bad = one;
  bad[dims_at] = 0;  // first dim 1 -> 0
  EXPECT_THAT(DecodeBatch(bad).status().message(), HasSubstr("dim 0: 0 < 1"));
  bad = one;
  bad[dims_at + 7] = 0x7f;  // a huge dim
  EXPECT_THAT(DecodeBatch(bad).status().message(), HasSubstr("more elements than the batch"));
  bad = one;
  PutU32(bad, count_at, 5);
  EXPECT_THAT(DecodeBatch(bad).status().message(), HasSubstr("5 floats for a shape of 4"));
  bad = one;
  bad[rec + 1] = static_cast<char>(0xff);  // name length 0x00ff -> 255 > bytes left
  EXPECT_EQ(DecodeBatch(bad).status().code(), StatusCode::kDataLoss);
  bad = one;
  bad[rec + 2] = 0x10;  // name length 0x1007 > 256
  EXPECT_THAT(DecodeBatch(bad).status().message(), HasSubstr("model name length"));
}

class SealTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<IngestKeyPair> keys = GenerateIngestKeyPair();
    ASSERT_TRUE(keys.ok());
    keys_ = *keys;
  }
  IngestKeyPair keys_;
};

TEST_F(SealTest, SealOpenRoundTripAndSizes) {
  // Repetitive features compress.
  Record r;
  r.kind = RecordKind::kLabel;
  r.shape = {1, 28, 28};
  r.features.assign(784, 0.5f);
  r.label = 3;
  const std::string batch = Encoded({r, r, r});
  Result<SealedBatch> sealed = SealBatch(batch, keys_.public_key);
  ASSERT_TRUE(sealed.ok()) << sealed.status().ToString();
  EXPECT_EQ(sealed->plain_bytes, batch.size());
  EXPECT_LT(sealed->compressed_bytes, batch.size() / 10);
  EXPECT_EQ(sealed->sealed.size(), sealed->compressed_bytes + 48);
  Result<std::vector<Record>> opened = OpenAndDecodeBatch(sealed->sealed, keys_);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ(*opened, (std::vector<Record>{r, r, r}));
  // Sealing is randomized: the same batch seals to other bytes.
  EXPECT_NE(SealBatch(batch, keys_.public_key)->sealed, sealed->sealed);
}

TEST_F(SealTest, WrongKeyDoesNotOpen) {
  const std::string batch = Encoded(SampleRecords());
  Result<SealedBatch> sealed = SealBatch(batch, keys_.public_key);
  ASSERT_TRUE(sealed.ok());
  Result<IngestKeyPair> other = GenerateIngestKeyPair();
  ASSERT_TRUE(other.ok());
  Result<std::string> opened = OpenBatch(sealed->sealed, *other);
  EXPECT_EQ(opened.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(opened.status().message(), HasSubstr("does not open"));
}

TEST_F(SealTest, EveryTamperedByteAndTruncationIsRefused) {
  const std::string batch = Encoded(SampleRecords());
  Result<SealedBatch> sealed = SealBatch(batch, keys_.public_key);
  ASSERT_TRUE(sealed.ok());
  const std::string& s = sealed->sealed;
  for (size_t i = 0; i < s.size(); i += 7) {
    std::string bad = s;
    bad[i] ^= 0x01;
    EXPECT_EQ(OpenBatch(bad, keys_).status().code(), StatusCode::kDataLoss) << "byte " << i;
  }
  EXPECT_EQ(OpenBatch(s.substr(0, s.size() - 1), keys_).status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(OpenBatch(s.substr(0, 40), keys_).status().message(), HasSubstr("shorter"));
  EXPECT_EQ(OpenBatch("", keys_).status().code(), StatusCode::kDataLoss);
}

TEST_F(SealTest, DeclaredSizeOverTheLimitIsRefusedBeforeAllocating) {
  const std::string batch = Encoded(SampleRecords());
  Result<SealedBatch> sealed = SealBatch(batch, keys_.public_key);
  ASSERT_TRUE(sealed.ok());
  Result<std::string> opened = OpenBatch(sealed->sealed, keys_, batch.size() - 1);
  EXPECT_EQ(opened.status().code(), StatusCode::kResourceExhausted);
  EXPECT_TRUE(OpenBatch(sealed->sealed, keys_, batch.size()).ok());
}

TEST_F(SealTest, KeysRoundTripThroughHexAndSecret) {
  const std::string hex = KeyToHex(keys_.secret_key);
  EXPECT_EQ(hex.size(), 64u);
  Result<std::array<unsigned char, kIngestKeyBytes>> parsed = KeyFromHex(" " + hex + "\n", "k");
  ASSERT_TRUE(parsed.ok());
  Result<IngestKeyPair> derived = IngestKeyPairFromSecret(
      std::string_view(reinterpret_cast<const char*>(parsed->data()), parsed->size()));
  ASSERT_TRUE(derived.ok());
  EXPECT_EQ(derived->public_key, keys_.public_key);
  EXPECT_THAT(KeyFromHex("abc", "secret key").status().message(),
              HasSubstr("secret key has 3 characters"));
  EXPECT_THAT(KeyFromHex(std::string(64, 'g'), "public key").status().message(),
              HasSubstr("not hex"));
  EXPECT_EQ(IngestKeyPairFromSecret("short").status().code(), StatusCode::kInvalidArgument);
}

TEST(SealOptionsTest, LevelOutOfRangeIsRefused) {
  SealOptions options;
  options.compression_level = 0;
  EXPECT_THAT(options.Validate().message(), HasSubstr("compression_level 0"));
}

}  // namespace
}  // namespace hml::sync

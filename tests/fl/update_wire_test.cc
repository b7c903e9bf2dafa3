// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/fl/update_wire.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace hml::fl {
namespace {

using ::testing::HasSubstr;

// Layout {"w": [3, 4]}, {"b": [4]}: 16 values.
ModelUpdate SmallUpdate() {
  ModelUpdate update;
  update.client_id = "dev-7";
  update.round_id = 42;
  update.num_examples = 130;
  update.layout = {{"w", {3, 4}}, {"b", {4}}};
  for (int i = 0; i < 16; ++i) update.delta.push_back(0.01f * static_cast<float>(i - 8));
  return update;
}

ModelUpdate LargeUpdate(int n, uint32_t seed) {
  ModelUpdate update;
  update.client_id = "dev-big";
  update.round_id = 3;
  update.num_examples = 10;
  update.layout = {{"fc.weight", {n}}};
  std::mt19937 engine(seed);
  std::normal_distribution<float> normal(0.0f, 0.05f);
  for (int i = 0; i < n; ++i) update.delta.push_back(normal(engine));
  return update;
}

std::string Encode(const ModelUpdate& update, const WireEncodeOptions& options = {}) {
  Result<std::string> bytes = EncodeUpdate(update, options);
  EXPECT_TRUE(bytes.ok()) << bytes.status().ToString();
  return bytes.ok() ? *bytes : std::string();
}

// Header bytes of SmallUpdate(): 24 fixed + 4 + 5 (client id) + 4 (tensor count)
// + (4 + 1 + 4 + 16) (w) + (4 + 1 + 4 + 8) (b) + 8 (payload length); the checksum adds 16.
constexpr size_t kSmallHeader = 24 + 9 + 4 + 25 + 17 + 8;

TEST(UpdateWireTest, DenseRoundTripIsExactAndSized) {
  const ModelUpdate update = SmallUpdate();
  const std::string bytes = Encode(update);
  EXPECT_EQ(bytes.size(), kSmallHeader + 16 * 4 + 16);
  Result<DecodedUpdate> decoded = DecodeUpdate(bytes);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->codec, WireCodec::kNone);
  EXPECT_EQ(decoded->update.client_id, "dev-7");
  EXPECT_EQ(decoded->update.round_id, 42);
  EXPECT_EQ(decoded->update.num_examples, 130);
  EXPECT_EQ(decoded->update.layout, update.layout);
  EXPECT_EQ(decoded->update.delta, update.delta);
}

TEST(UpdateWireTest, NonFiniteDenseValuesDecodeForTheValidatorToReject) {
  ModelUpdate update = SmallUpdate();
  update.delta[3] = std::nanf("");
  Result<DecodedUpdate> decoded = DecodeUpdate(Encode(update));
  ASSERT_TRUE(decoded.ok());
  EXPECT_TRUE(std::isnan(decoded->update.delta[3]));
}

TEST(UpdateWireTest, Int8RoundTripWithinHalfAScaleAndAtLeast3_5xSmaller) {
  const ModelUpdate update = LargeUpdate(10000, 1);
  WireEncodeOptions options;
  options.codec = WireCodec::kInt8;
  options.int8_chunk_size = 256;
  const std::string int8 = Encode(update, options);
  const std::string dense = Encode(update);
  EXPECT_GE(static_cast<double>(dense.size()) / static_cast<double>(int8.size()), 3.5)
      << dense.size() << " vs " << int8.size();
  // Payload: 8 + 4 * ceil(10000 / 256) + 10000.
  const size_t header = 24 + 4 + 7 + 4 + (4 + 9 + 4 + 8) + 8;
  EXPECT_EQ(int8.size(), header + 8 + 4 * 40 + 10000 + 16);
  Result<DecodedUpdate> decoded = DecodeUpdate(int8);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->codec, WireCodec::kInt8);
  ASSERT_EQ(decoded->update.delta.size(), 10000u);
  for (size_t chunk = 0; chunk < 40; ++chunk) {
    float max_abs = 0.0f;
    const size_t end = std::min<size_t>(10000, (chunk + 1) * 256);
    for (size_t i = chunk * 256; i < end; ++i)
      max_abs = std::max(max_abs, std::fabs(update.delta[i]));
    const float half_scale = max_abs / 127.0f / 2.0f;
    for (size_t i = chunk * 256; i < end; ++i) {
      ASSERT_LE(std::fabs(decoded->update.delta[i] - update.delta[i]), half_scale * 1.0001f)
          << "element " << i;
    }
  }
}

TEST(UpdateWireTest, Int8RefusesNonFiniteValues) {
  ModelUpdate update = SmallUpdate();
  update.delta[0] = INFINITY;
  WireEncodeOptions options;
  options.codec = WireCodec::kInt8;
  EXPECT_EQ(EncodeUpdate(update, options).status().code(), StatusCode::kInvalidArgument);
}

TEST(UpdateWireTest, TopKKeepsTheLargestAndZeroesTheRest) {
  const ModelUpdate update = LargeUpdate(1000, 2);
  WireEncodeOptions options;
  options.codec = WireCodec::kTopK;
  options.topk_fraction = 0.05;
  const std::string bytes = Encode(update, options);
  const size_t header = 24 + 4 + 7 + 4 + (4 + 9 + 4 + 8) + 8;
  EXPECT_EQ(bytes.size(), header + 8 + 8 * 50 + 16);
  Result<DecodedUpdate> decoded = DecodeUpdate(bytes);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->codec, WireCodec::kTopK);
  const TopKSparse want = EncodeTopK(update.delta, 50);
  EXPECT_EQ(decoded->update.delta, DecodeTopK(want));
}

TEST(UpdateWireTest, TopKWithErrorFeedbackSendsTheResidualLater) {
  ModelUpdate update = SmallUpdate();
  ErrorFeedbackTopK feedback(4);
  WireEncodeOptions options;
  options.codec = WireCodec::kTopK;
  options.feedback = &feedback;
  Result<DecodedUpdate> first = DecodeUpdate(Encode(update, options));
  ASSERT_TRUE(first.ok());
  // What was not sent stays in the residual: sent + residual == the update.
  for (size_t i = 0; i < update.delta.size(); ++i) {
    EXPECT_FLOAT_EQ(first->update.delta[i] + feedback.residual()[i], update.delta[i]);
  }
}

TEST(UpdateWireTest, CodecNamesRoundTrip) {
  for (WireCodec codec : {WireCodec::kNone, WireCodec::kInt8, WireCodec::kTopK}) {
    Result<WireCodec> parsed = ParseWireCodec(WireCodecName(codec));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, codec);
  }
  EXPECT_EQ(ParseWireCodec("zstd").status().code(), StatusCode::kInvalidArgument);
}

TEST(UpdateWireTest, EncodeRejectsADeltaThatDoesNotMatchTheLayout) {
  ModelUpdate update = SmallUpdate();
  update.delta.pop_back();
  Result<std::string> bytes = EncodeUpdate(update);
  EXPECT_EQ(bytes.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(bytes.status().message(), HasSubstr("layout holds 16"));
}

TEST(UpdateWireTest, EveryTruncationIsInvalidArgument) {
  for (WireCodec codec : {WireCodec::kNone, WireCodec::kInt8, WireCodec::kTopK}) {
    WireEncodeOptions options;
    options.codec = codec;
    options.topk_fraction = 0.5;
    const std::string bytes = Encode(SmallUpdate(), options);
    for (size_t len = 0; len < bytes.size(); ++len) {
      Result<DecodedUpdate> decoded = DecodeUpdate(std::string_view(bytes).substr(0, len));
      ASSERT_EQ(decoded.status().code(), StatusCode::kInvalidArgument)
          << WireCodecName(codec) << " truncated to " << len;
    }
    // And one byte too many.
    EXPECT_EQ(DecodeUpdate(bytes + "x").status().code(), StatusCode::kInvalidArgument);
  }
}

TEST(UpdateWireTest, EverySingleBitFlipIsInvalidArgument) {
  for (WireCodec codec : {WireCodec::kNone, WireCodec::kInt8, WireCodec::kTopK}) {
    WireEncodeOptions options;
    options.codec = codec;
    options.topk_fraction = 0.5;
    const std::string bytes = Encode(SmallUpdate(), options);
    for (size_t bit = 0; bit < 8 * bytes.size(); ++bit) {
      std::string flipped = bytes;
      flipped[bit / 8] = static_cast<char>(flipped[bit / 8] ^ (1 << (bit % 8)));
      ASSERT_EQ(DecodeUpdate(flipped).status().code(), StatusCode::kInvalidArgument)
          << WireCodecName(codec) << " bit " << bit;
    }
  }
}

TEST(UpdateWireTest, ErrorsNameTheProblem) {
  std::string bytes = Encode(SmallUpdate());
  EXPECT_THAT(DecodeUpdate("HMLX" + bytes.substr(4)).status().message(), HasSubstr("magic"));
  std::string v2 = bytes;
  v2[4] = 2;
  EXPECT_THAT(DecodeUpdate(v2).status().message(), HasSubstr("version 2 is not supported"));
  std::string corrupt = bytes;
  corrupt[40] ^= 1;
  EXPECT_THAT(DecodeUpdate(corrupt).status().message(), HasSubstr("checksum"));
}

// Structural checks behind the checksum: a message forged with a valid checksum.
class ForgedUpdateTest : public ::testing::Test {
 protected:
  // The body (without checksum) of SmallUpdate() under `codec`.
  static std::string Body(WireCodec codec) {
    WireEncodeOptions options;
    options.codec = codec;
    options.topk_fraction = 0.25;
    std::string bytes = Encode(SmallUpdate(), options);
    return bytes.substr(0, bytes.size() - 16);
  }
  static Status DecodeForged(std::string body) {
    AppendUpdateChecksum(body);
    return DecodeUpdate(body).status();
  }
  template <typename T>
  static void Put(std::string& body, size_t offset, T value) {
    std::memcpy(body.data() + offset, &value, sizeof(T));  // little-endian hosts only
  }
  // Offsets in SmallUpdate()'s body.
  static constexpr size_t kCodec = 5;
  static constexpr size_t kReserved = 6;
  static constexpr size_t kClientIdLength = 24;
  static constexpr size_t kTensorCount = 24 + 9;
  static constexpr size_t kFirstRank = kTensorCount + 4 + 4 + 1;
  static constexpr size_t kFirstDim = kFirstRank + 4;
  static constexpr size_t kPayloadLength = kSmallHeader - 8;
  static constexpr size_t kPayload = kSmallHeader;
};

TEST_F(ForgedUpdateTest, HeaderFieldsAreChecked) {
  const std::string body = Body(WireCodec::kNone);
  EXPECT_TRUE(DecodeForged(body).ok());
  auto expect = [](const Status& status, const char* text) {
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << text;
    EXPECT_THAT(status.message(), HasSubstr(text));
  };
  std::string b = body;
  b[kCodec] = 9;
  expect(DecodeForged(b), "unknown codec id 9");
  b = body;
  b[kReserved] = 1;
  expect(DecodeForged(b), "reserved");
  b = body;
  Put<uint32_t>(b, kClientIdLength, 100000);
  expect(DecodeForged(b), "client id length");
  b = body;
  Put<uint32_t>(b, kClientIdLength, 200);
  expect(DecodeForged(b), "truncated");
  b = body;
  Put<uint32_t>(b, kTensorCount, 1u << 20);
  expect(DecodeForged(b), "tensors exceed");
  b = body;
  Put<uint32_t>(b, kFirstRank, 9);
  expect(DecodeForged(b), "rank 9");
  b = body;
  Put<int64_t>(b, kFirstDim, -3);
  expect(DecodeForged(b), "negative dimension");
  b = body;
  Put<int64_t>(b, kFirstDim, int64_t{1} << 40);
  expect(DecodeForged(b), "more than the limit");
  b = body;
  Put<int64_t>(b, kFirstDim, 4);  // 4x4 + 4 = 20 values, the payload has 16
  expect(DecodeForged(b), "dense payload");
  b = body;
  Put<uint64_t>(b, kPayloadLength, 1);
  expect(DecodeForged(b), "payload length");
}

TEST_F(ForgedUpdateTest, Int8PayloadIsChecked) {
  const std::string body = Body(WireCodec::kInt8);
  ASSERT_TRUE(DecodeForged(body).ok());
  std::string b = body;
  Put<uint32_t>(b, kPayload + 4, 0);  // chunk size
  EXPECT_THAT(DecodeForged(b).message(), HasSubstr("chunk size is 0"));
  b = body;
  Put<float>(b, kPayload + 8, std::nanf(""));
  EXPECT_THAT(DecodeForged(b).message(), HasSubstr("int8 scale"));
  b = body;
  Put<float>(b, kPayload + 8, -1.0f);
  EXPECT_THAT(DecodeForged(b).message(), HasSubstr("int8 scale"));
  b = body;
  b[kPayload + 12] = static_cast<char>(-128);
  EXPECT_THAT(DecodeForged(b).message(), HasSubstr("-128"));
  b = body;
  Put<uint32_t>(b, kPayload, 15);
  EXPECT_THAT(DecodeForged(b).message(), HasSubstr("int8 payload of 15 values"));
}

TEST_F(ForgedUpdateTest, TopKPayloadIsChecked) {
  const std::string body = Body(WireCodec::kTopK);  // k = 4 of 16
  ASSERT_TRUE(DecodeForged(body).ok());
  std::string b = body;
  Put<uint32_t>(b, kPayload + 4, 17);
  EXPECT_THAT(DecodeForged(b).message(), HasSubstr("keeps 17 of 16"));
  b = body;
  Put<uint32_t>(b, kPayload + 8, 16);  // first index out of range
  EXPECT_THAT(DecodeForged(b).message(), HasSubstr("out of range or not ascending"));
  b = body;
  Put<uint32_t>(b, kPayload + 12, 0);  // second index not above the first
  Put<uint32_t>(b, kPayload + 8, 0);
  EXPECT_THAT(DecodeForged(b).message(), HasSubstr("out of range or not ascending"));
}

TEST_F(ForgedUpdateTest, RandomMutationsNeverCrashAndFailCleanly) {
  std::mt19937 engine(7);
  for (WireCodec codec : {WireCodec::kNone, WireCodec::kInt8, WireCodec::kTopK}) {
    const std::string body = Body(codec);
    for (int trial = 0; trial < 3000; ++trial) {
      std::string b = body;
      const int edits = 1 + static_cast<int>(engine() % 4);
      for (int e = 0; e < edits; ++e) {
        const size_t at = engine() % b.size();
        switch (engine() % 3) {
          case 0:
            b[at] = static_cast<char>(engine());
            break;
          case 1:
            b.erase(at, 1 + engine() % 8);
            break;
          default:
            b.insert(at, std::string(1 + engine() % 8, static_cast<char>(engine())));
            break;
        }
      }
      const Status status = DecodeForged(b);
      ASSERT_TRUE(status.ok() || status.code() == StatusCode::kInvalidArgument)
          << status.ToString();
      if (status.ok()) {
        // Whatever decodes is self-consistent: the delta matches the layout.
        std::string sealed = b;
        AppendUpdateChecksum(sealed);
        Result<DecodedUpdate> decoded = DecodeUpdate(sealed);
        ASSERT_TRUE(decoded.ok());
        Result<int64_t> n = LayoutNumElements(decoded->update.layout);
        ASSERT_TRUE(n.ok());
        EXPECT_EQ(static_cast<int64_t>(decoded->update.delta.size()), *n);
      }
    }
  }
}

}  // namespace
}  // namespace hml::fl

// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/ota/delta.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <zstd.h>

#include <cstdint>
#include <random>
#include <string>

namespace hml::ota {
namespace {

using ::testing::AnyOf;
using ::testing::HasSubstr;

// Incompressible bytes, like trained weights: whatever a delta saves comes from the old file.
std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng() & 0xff);
  return s;
}

// The old file with `length` bytes at `offset` replaced by fresh random ones: a fine-tuned layer.
std::string ChangeRegion(std::string file, size_t offset, size_t length, uint32_t seed) {
  const std::string fresh = RandomBytes(length, seed);
  file.replace(offset, length, fresh);
  return file;
}

constexpr int64_t kNoLimit = int64_t{1} << 30;

class DeltaTest : public ::testing::Test {
 protected:
  DeltaTest()
      : old_file_(RandomBytes(256 << 10, 1)),
        new_file_(ChangeRegion(old_file_, 200 << 10, 1 << 10, 2)) {
    Result<std::string> delta = MakeDelta(old_file_, new_file_);
    EXPECT_TRUE(delta.ok()) << delta.status().ToString();
    if (delta.ok()) delta_ = *delta;
  }

  const std::string old_file_;
  const std::string new_file_;
  std::string delta_;
};

TEST_F(DeltaTest, RoundTripsALocalizedChange) {
  Result<std::string> applied = ApplyDelta(old_file_, delta_, new_file_.size());
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  EXPECT_EQ(*applied, new_file_);
}

TEST_F(DeltaTest, LocalizedChangeCostsAboutTheChangedBytes) {
  // 1 KiB of 256 KiB changed: the delta is the 1 KiB of fresh (incompressible) bytes plus
  // back-references and the frame overhead, far below the 256 KiB a full download costs.
  EXPECT_LT(delta_.size(), 2048u);
  EXPECT_LT(delta_.size() * 100, new_file_.size());  // under 1 % of the full file
}

TEST(DeltaRoundTripTest, InsertionsDeletionsAndEdits) {
  const std::string old_file = RandomBytes(300000, 3);
  // Shifts every later offset: an insertion near the start, a deletion, and an in-place edit.
  std::string new_file = old_file;
  new_file.insert(1000, RandomBytes(777, 4));
  new_file.erase(150000, 5000);
  new_file = ChangeRegion(new_file, 250000, 300, 5);
  Result<std::string> delta = MakeDelta(old_file, new_file);
  ASSERT_TRUE(delta.ok()) << delta.status().ToString();
  EXPECT_LT(delta->size(), 4096u);
  Result<std::string> applied = ApplyDelta(old_file, *delta, new_file.size());
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  EXPECT_EQ(*applied, new_file);
}

TEST(DeltaRoundTripTest, EmptyOldFile) {
  const std::string new_file = RandomBytes(5000, 6);
  Result<std::string> delta = MakeDelta("", new_file);
  ASSERT_TRUE(delta.ok()) << delta.status().ToString();
  Result<std::string> applied = ApplyDelta("", *delta, new_file.size());
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  EXPECT_EQ(*applied, new_file);
}

TEST(DeltaRoundTripTest, EmptyNewFile) {
  const std::string old_file = RandomBytes(5000, 7);
  Result<std::string> delta = MakeDelta(old_file, "");
  ASSERT_TRUE(delta.ok()) << delta.status().ToString();
  // The content size 0 is recorded, so a zero output limit suffices.
  Result<std::string> applied = ApplyDelta(old_file, *delta, 0);
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  EXPECT_EQ(*applied, "");
}

TEST(DeltaRoundTripTest, BothEmpty) {
  Result<std::string> delta = MakeDelta("", "");
  ASSERT_TRUE(delta.ok()) << delta.status().ToString();
  Result<std::string> applied = ApplyDelta("", *delta, 0);
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  EXPECT_EQ(*applied, "");
}

TEST_F(DeltaTest, WrongOldFileIsDataLoss) {
  // A different file of the same size, the right file with one byte changed in a region the
  // delta copies from, a truncated old file, and no old file at all.
  std::string one_byte_off = old_file_;
  one_byte_off[1000] = static_cast<char>(one_byte_off[1000] ^ 0x01);
  const std::string wrong_bases[] = {RandomBytes(old_file_.size(), 99), one_byte_off,
                                     old_file_.substr(0, old_file_.size() / 2), ""};
  for (const std::string& base : wrong_bases) {
    Result<std::string> applied = ApplyDelta(base, delta_, kNoLimit);
    ASSERT_FALSE(applied.ok()) << "base of " << base.size() << " bytes";
    EXPECT_EQ(applied.status().code(), StatusCode::kDataLoss) << applied.status().ToString();
    EXPECT_THAT(applied.status().message(), HasSubstr("zstd error"));
    EXPECT_THAT(applied.status().message(), HasSubstr("applying delta"));
  }
}

TEST_F(DeltaTest, TruncatedDeltaIsDataLoss) {
  for (size_t length : {size_t{0}, size_t{1}, size_t{4}, size_t{5}, size_t{8}, delta_.size() / 2,
                        delta_.size() - 4, delta_.size() - 1}) {
    Result<std::string> applied = ApplyDelta(old_file_, delta_.substr(0, length), kNoLimit);
    ASSERT_FALSE(applied.ok()) << "truncated to " << length;
    EXPECT_EQ(applied.status().code(), StatusCode::kDataLoss)
        << length << ": " << applied.status().ToString();
  }
}

TEST_F(DeltaTest, BitFlipAfterTheHeaderIsDataLoss) {
  // Every byte past the largest possible frame header (18 bytes), one bit each: block headers,
  // literals, sequences and the checksum itself.
  for (size_t i = 18; i < delta_.size(); ++i) {
    std::string flipped = delta_;
    flipped[i] = static_cast<char>(flipped[i] ^ (1 << (i % 8)));
    Result<std::string> applied = ApplyDelta(old_file_, flipped, kNoLimit);
    ASSERT_FALSE(applied.ok()) << "bit " << i % 8 << " of byte " << i;
    EXPECT_EQ(applied.status().code(), StatusCode::kDataLoss)
        << "byte " << i << ": " << applied.status().ToString();
  }
}

TEST_F(DeltaTest, BitFlipInTheHeaderNeverYieldsOtherBytes) {
  // A header flip may enlarge the recorded size (refused as kResourceExhausted under a tight
  // limit) or hit a bit decoders ignore (then the output is still right); nothing else succeeds.
  for (size_t i = 0; i < 18; ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string flipped = delta_;
      flipped[i] = static_cast<char>(flipped[i] ^ (1 << bit));
      Result<std::string> applied = ApplyDelta(old_file_, flipped, new_file_.size());
      if (applied.ok()) {
        EXPECT_EQ(*applied, new_file_) << "bit " << bit << " of byte " << i;
      } else {
        EXPECT_THAT(applied.status().code(),
                    AnyOf(StatusCode::kDataLoss, StatusCode::kResourceExhausted))
            << applied.status().ToString();
      }
    }
  }
}

TEST_F(DeltaTest, TrailingBytesAreDataLoss) {
  Result<std::string> applied = ApplyDelta(old_file_, delta_ + delta_, kNoLimit);
  ASSERT_FALSE(applied.ok());
  EXPECT_EQ(applied.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(applied.status().message(), HasSubstr("follow the zstd frame"));
}

TEST_F(DeltaTest, OutputLimitIsCheckedBeforeDecoding) {
  Result<std::string> applied = ApplyDelta(old_file_, delta_, new_file_.size() - 1);
  ASSERT_FALSE(applied.ok());
  EXPECT_EQ(applied.status().code(), StatusCode::kResourceExhausted);
  EXPECT_THAT(applied.status().message(), HasSubstr(std::to_string(new_file_.size())));
  EXPECT_TRUE(ApplyDelta(old_file_, delta_, new_file_.size()).ok());
  EXPECT_EQ(ApplyDelta(old_file_, delta_, -1).status().code(), StatusCode::kInvalidArgument);
}

// zstd frames MakeDelta never writes: the content size or the checksum left out.
std::string ZstdFrame(std::string_view data, int content_size_flag, int checksum_flag) {
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, content_size_flag);
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, checksum_flag);
  std::string out(ZSTD_compressBound(data.size()), '\0');
  const size_t n = ZSTD_compress2(cctx, out.data(), out.size(), data.data(), data.size());
  ZSTD_freeCCtx(cctx);
  EXPECT_FALSE(ZSTD_isError(n));
  out.resize(ZSTD_isError(n) ? 0 : n);
  return out;
}

TEST(DeltaFrameTest, UnknownContentSizeIsRefused) {
  const std::string frame = ZstdFrame(RandomBytes(1000, 8), /*content_size_flag=*/0, 1);
  ASSERT_EQ(ZSTD_getFrameContentSize(frame.data(), frame.size()), ZSTD_CONTENTSIZE_UNKNOWN);
  Result<std::string> applied = ApplyDelta("", frame, kNoLimit);
  ASSERT_FALSE(applied.ok());
  EXPECT_EQ(applied.status().code(), StatusCode::kResourceExhausted);
  EXPECT_THAT(applied.status().message(), HasSubstr("content size"));
}

TEST(DeltaFrameTest, FrameWithoutChecksumIsRefused) {
  const std::string frame = ZstdFrame(RandomBytes(1000, 9), 1, /*checksum_flag=*/0);
  Result<std::string> applied = ApplyDelta("", frame, kNoLimit);
  ASSERT_FALSE(applied.ok());
  EXPECT_EQ(applied.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(applied.status().message(), HasSubstr("checksum"));
}

TEST(DeltaOptionsTest, Validate) {
  EXPECT_TRUE(DeltaOptions{}.Validate().ok());
  EXPECT_EQ(DeltaOptions{}.level, 19);
  EXPECT_EQ(DeltaOptions{}.max_input_bytes, int64_t{512} << 20);
  EXPECT_TRUE((DeltaOptions{.level = 1}).Validate().ok());
  EXPECT_TRUE((DeltaOptions{.level = 22}).Validate().ok());
  EXPECT_TRUE((DeltaOptions{.max_input_bytes = int64_t{1} << 30}).Validate().ok());
  for (const DeltaOptions& bad :
       {DeltaOptions{.level = 0}, DeltaOptions{.level = 23}, DeltaOptions{.level = -1},
        DeltaOptions{.max_input_bytes = 0}, DeltaOptions{.max_input_bytes = -5},
        DeltaOptions{.max_input_bytes = int64_t{1} << 40}}) {
    const Status s = bad.Validate();
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
    EXPECT_THAT(s.message(), HasSubstr("DeltaOptions"));
  }
  Result<std::string> delta = MakeDelta("a", "b", DeltaOptions{.level = 0});
  EXPECT_EQ(delta.status().code(), StatusCode::kInvalidArgument);
}

TEST(DeltaOptionsTest, InputLimit) {
  const DeltaOptions options{.max_input_bytes = 1000};
  const std::string half = RandomBytes(500, 10);
  EXPECT_TRUE(MakeDelta(half, half, options).ok());  // exactly the limit
  Result<std::string> delta = MakeDelta(half, half + "x", options);
  ASSERT_FALSE(delta.ok());
  EXPECT_EQ(delta.status().code(), StatusCode::kResourceExhausted);
  EXPECT_THAT(delta.status().message(), HasSubstr("max_input_bytes 1000"));
}

}  // namespace
}  // namespace hml::ota

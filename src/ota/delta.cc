// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/ota/delta.h"

#include <zstd.h>
#include <zstd_errors.h>

#include <memory>

namespace hml::ota {
namespace {

struct CCtxDeleter {
  void operator()(ZSTD_CCtx* cctx) const { ZSTD_freeCCtx(cctx); }
};
struct DCtxDeleter {
  void operator()(ZSTD_DCtx* dctx) const { ZSTD_freeDCtx(dctx); }
};

// The one translation of zstd's error space into Status. `context` names what was being done to
// which bytes. `input_code` is the code for errors that the input bytes cause (a corrupt frame, a
// checksum mismatch, a missing prefix): kDataLoss when decoding; kInternal when encoding, where
// no input can make zstd fail. Allocation failures and oversized windows are limits; parameter
// and state errors are our own bugs.
Status ZstdError(size_t code, StatusCode input_code, std::string_view context) {
  StatusCode status_code = input_code;
  switch (ZSTD_getErrorCode(code)) {
    case ZSTD_error_memory_allocation:
    case ZSTD_error_frameParameter_windowTooLarge:
      status_code = StatusCode::kResourceExhausted;
      break;
    case ZSTD_error_GENERIC:
    case ZSTD_error_parameter_unsupported:
    case ZSTD_error_parameter_combination_unsupported:
    case ZSTD_error_parameter_outOfBound:
    case ZSTD_error_stabilityCondition_notRespected:
    case ZSTD_error_stage_wrong:
    case ZSTD_error_init_missing:
    case ZSTD_error_workSpace_tooSmall:
    case ZSTD_error_dstBuffer_null:
      status_code = StatusCode::kInternal;
      break;
    default:
      break;
  }
  return Status(status_code, std::string(context) + ": zstd error " +
                                 std::to_string(static_cast<int>(ZSTD_getErrorCode(code))) + " (" +
                                 ZSTD_getErrorName(code) + ")");
}

// Smallest k with 2^k >= n (0 for n <= 1).
int CeilLog2(uint64_t n) {
  int k = 0;
  while (k < 64 && (uint64_t{1} << k) < n) ++k;
  return k;
}

// zstd's window log range as the library reports it (ZSTD_WINDOWLOG_MIN..ZSTD_WINDOWLOG_MAX; the
// macros themselves are in zstd's unstable section).
ZSTD_bounds CompressWindowLogBounds() { return ZSTD_cParam_getBounds(ZSTD_c_windowLog); }

int ClampLog(int log, ZSTD_bounds bounds) {
  if (log < bounds.lowerBound) return bounds.lowerBound;
  if (log > bounds.upperBound) return bounds.upperBound;
  return log;
}

std::string Describe(std::string_view what, size_t bytes) {
  return std::string(what) + " (" + std::to_string(bytes) + " bytes)";
}

}  // namespace

Status DeltaOptions::Validate() const {
  if (level < 1 || level > ZSTD_maxCLevel()) {
    return InvalidArgumentError("DeltaOptions: level " + std::to_string(level) +
                                " is outside [1, " + std::to_string(ZSTD_maxCLevel()) + "]");
  }
  const int64_t max_window = int64_t{1} << CompressWindowLogBounds().upperBound;
  if (max_input_bytes < 1 || max_input_bytes > max_window) {
    return InvalidArgumentError("DeltaOptions: max_input_bytes " + std::to_string(max_input_bytes) +
                                " is outside [1, " + std::to_string(max_window) +
                                "] (zstd's largest window)");
  }
  return Status::Ok();
}

Result<std::string> MakeDelta(std::string_view old_file, std::string_view new_file,
                              const DeltaOptions& options) {
  HML_RETURN_IF_ERROR(options.Validate());
  const uint64_t limit = static_cast<uint64_t>(options.max_input_bytes);
  if (old_file.size() > limit || new_file.size() > limit - old_file.size()) {
    return ResourceExhaustedError("MakeDelta: old file (" + std::to_string(old_file.size()) +
                                  " bytes) + new file (" + std::to_string(new_file.size()) +
                                  " bytes) exceed max_input_bytes " +
                                  std::to_string(options.max_input_bytes));
  }
  const std::string context = "making delta from " + Describe("old file", old_file.size()) +
                              " to " + Describe("new file", new_file.size());

  std::unique_ptr<ZSTD_CCtx, CCtxDeleter> cctx(ZSTD_createCCtx());
  if (cctx == nullptr) return ResourceExhaustedError(context + ": cannot allocate a zstd context");
  // The window must span the old file and everything of the new one decoded so far, or matches
  // into the start of the old file are out of reach. Checked against max_input_bytes above, so
  // the clamp only raises tiny inputs to zstd's minimum window.
  const int window_log =
      ClampLog(CeilLog2(uint64_t{old_file.size()} + new_file.size()), CompressWindowLogBounds());
  const struct {
    ZSTD_cParameter param;
    int value;
  } params[] = {
      {ZSTD_c_compressionLevel, options.level},
      {ZSTD_c_windowLog, window_log},
      // Long-distance matching finds the old file's unchanged stretches however far back they
      // are; the regular match finders only search a window of a few MiB well.
      {ZSTD_c_enableLongDistanceMatching, 1},
      // ApplyDelta refuses frames without these: the size bounds its allocation, the checksum
      // detects a wrong old file.
      {ZSTD_c_contentSizeFlag, 1},
      {ZSTD_c_checksumFlag, 1},
  };
  for (const auto& p : params) {
    const size_t rc = ZSTD_CCtx_setParameter(cctx.get(), p.param, p.value);
    if (ZSTD_isError(rc)) {
      return ZstdError(rc, StatusCode::kInternal,
                       context + ": setting parameter " + std::to_string(p.param) + " to " +
                           std::to_string(p.value));
    }
  }
  // The prefix is referenced, not copied: old_file must stay valid until ZSTD_compress2 returns.
  const size_t rc = ZSTD_CCtx_refPrefix(cctx.get(), old_file.data(), old_file.size());
  if (ZSTD_isError(rc)) {
    return ZstdError(rc, StatusCode::kInternal, context + ": referencing the old file");
  }
  std::string delta(ZSTD_compressBound(new_file.size()), '\0');
  const size_t n =
      ZSTD_compress2(cctx.get(), delta.data(), delta.size(), new_file.data(), new_file.size());
  if (ZSTD_isError(n)) return ZstdError(n, StatusCode::kInternal, context);
  delta.resize(n);
  return delta;
}

Result<std::string> ApplyDelta(std::string_view old_file, std::string_view delta,
                               int64_t max_output_bytes) {
  const std::string context = "applying " + Describe("delta", delta.size()) + " to " +
                              Describe("old file", old_file.size());
  if (max_output_bytes < 0) {
    return InvalidArgumentError(context + ": max_output_bytes " + std::to_string(max_output_bytes) +
                                " is negative");
  }
  // Magic number (4 bytes, little-endian) and frame header descriptor (RFC 8878, 3.1.1.1.1).
  // A skippable frame or a zstd frame without a checksum is not something MakeDelta writes.
  constexpr size_t kMagicBytes = 4;
  if (delta.size() < kMagicBytes + 1) {
    return DataLossError(context + ": too short for a zstd frame header");
  }
  uint32_t magic = 0;
  for (size_t i = 0; i < kMagicBytes; ++i) {
    magic |= uint32_t{static_cast<unsigned char>(delta[i])} << (8 * i);
  }
  if (magic != ZSTD_MAGICNUMBER) return DataLossError(context + ": not a zstd frame (bad magic)");
  constexpr unsigned char kContentChecksumFlag = 0x04;
  if ((static_cast<unsigned char>(delta[kMagicBytes]) & kContentChecksumFlag) == 0) {
    return DataLossError(context +
                         ": the zstd frame has no content checksum, so a wrong old "
                         "file could not be detected");
  }

  // Refuse before allocating anything sized by the input.
  const unsigned long long content_size = ZSTD_getFrameContentSize(delta.data(), delta.size());
  if (content_size == ZSTD_CONTENTSIZE_ERROR) {
    return DataLossError(context + ": the zstd frame header is corrupt or truncated");
  }
  if (content_size == ZSTD_CONTENTSIZE_UNKNOWN) {
    return ResourceExhaustedError(context +
                                  ": the zstd frame does not record its content size, "
                                  "so the output cannot be bounded by max_output_bytes " +
                                  std::to_string(max_output_bytes));
  }
  if (content_size > static_cast<uint64_t>(max_output_bytes)) {
    return ResourceExhaustedError(context + ": the new file would be " +
                                  std::to_string(content_size) + " bytes, over max_output_bytes " +
                                  std::to_string(max_output_bytes));
  }
  // Exactly one frame: trailing bytes (a second frame, garbage) mean the delta is not ours.
  const size_t frame_size = ZSTD_findFrameCompressedSize(delta.data(), delta.size());
  if (ZSTD_isError(frame_size)) return ZstdError(frame_size, StatusCode::kDataLoss, context);
  if (frame_size != delta.size()) {
    return DataLossError(context + ": " + std::to_string(delta.size() - frame_size) +
                         " bytes follow the zstd frame");
  }

  std::unique_ptr<ZSTD_DCtx, DCtxDeleter> dctx(ZSTD_createDCtx());
  if (dctx == nullptr) return ResourceExhaustedError(context + ": cannot allocate a zstd context");
  // The frame's window spans old + new (see MakeDelta); allow exactly that, which the size check
  // above caps at old + max_output_bytes. zstd consults this limit where it would allocate a
  // window buffer (streaming); the one-shot decode below writes into `out` and allocates none.
  const ZSTD_bounds d_bounds = ZSTD_dParam_getBounds(ZSTD_d_windowLogMax);
  const int window_log_max = ClampLog(CeilLog2(uint64_t{old_file.size()} + content_size), d_bounds);
  size_t rc = ZSTD_DCtx_setParameter(dctx.get(), ZSTD_d_windowLogMax, window_log_max);
  if (ZSTD_isError(rc)) {
    return ZstdError(rc, StatusCode::kInternal,
                     context + ": setting windowLogMax " + std::to_string(window_log_max));
  }
  rc = ZSTD_DCtx_refPrefix(dctx.get(), old_file.data(), old_file.size());
  if (ZSTD_isError(rc)) {
    return ZstdError(rc, StatusCode::kInternal, context + ": referencing the old file");
  }
  std::string out(static_cast<size_t>(content_size), '\0');
  const size_t n =
      ZSTD_decompressDCtx(dctx.get(), out.data(), out.size(), delta.data(), delta.size());
  if (ZSTD_isError(n)) return ZstdError(n, StatusCode::kDataLoss, context);
  if (n != out.size()) {
    return DataLossError(context + ": decoded " + std::to_string(n) +
                         " bytes but the frame header says " + std::to_string(content_size));
  }
  return out;
}

}  // namespace hml::ota

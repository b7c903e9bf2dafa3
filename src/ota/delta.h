// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Delta patches for over-the-air model updates. A delta is one zstd frame of the new file,
// compressed with the old file (the one the device already has) as a referenced prefix: bytes
// the two files share become back-references into the old file, so a model whose last layer
// changed costs little more than that layer.
//
// The frame always records the new file's size (so the device can refuse before allocating) and
// zstd's content checksum (XXH64, low 32 bits). A delta applied to the wrong old file therefore
// fails with kDataLoss: the back-references copy the wrong bytes and the checksum disagrees, or
// they point outside the old file and zstd reports corruption. The checksum is not cryptographic
// (a 1 in 2^32 miss, and forgeable): the device still compares the full file's SHA-256 from the
// signed targets metadata after applying, and falls back to the full file on any failure.
//
// Both functions are pure (no I/O, no globals) and thread-safe; each call creates its own zstd
// context.
#ifndef HML_SRC_OTA_DELTA_H_
#define HML_SRC_OTA_DELTA_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "hml/status.h"

namespace hml::ota {

struct DeltaOptions {
  // zstd compression level, in [1, 22]. Deltas are made once on the server and downloaded by
  // many devices, so a slow, strong level pays off; decoding speed hardly depends on it.
  // Default: 19.
  int level = 19;
  // Largest old + new size MakeDelta accepts; beyond it kResourceExhausted. The compressor's
  // window covers both files, and its memory grows with the window. At most 2^31 (zstd's largest
  // window on 64-bit hosts; 2^30 on 32-bit ones).
  // Default: 512 MiB.
  int64_t max_input_bytes = int64_t{512} << 20;

  // kInvalidArgument naming the field when a value is out of range.
  Status Validate() const;
};

// Returns a delta that turns `old_file` into `new_file`: one zstd frame with the content size
// and checksum, long-distance matching, and a window large enough to reach from the end of
// `new_file` back to the start of `old_file`.
// Errors: kInvalidArgument for bad options; kResourceExhausted when old + new exceeds
// options.max_input_bytes or zstd cannot allocate; kInternal if zstd rejects our parameters.
Result<std::string> MakeDelta(std::string_view old_file, std::string_view new_file,
                              const DeltaOptions& options = {});

// Returns the new file reconstructed from `old_file` and `delta` (made by MakeDelta with the same
// old file). Allocates the output only after reading its size from the frame header, and never
// more than `max_output_bytes` (plus zstd's fixed decoding context, about 100 KiB).
// Errors: kInvalidArgument when max_output_bytes < 0; kResourceExhausted when the frame's
// content size exceeds max_output_bytes or is not recorded; kDataLoss, with zstd's error name,
// when the delta is not one complete zstd frame with a checksum, is corrupt or truncated, or was
// made against a different old file.
// The caller must still verify the result's hash against signed metadata (see above).
Result<std::string> ApplyDelta(std::string_view old_file, std::string_view delta,
                               int64_t max_output_bytes);

}  // namespace hml::ota

#endif  // HML_SRC_OTA_DELTA_H_

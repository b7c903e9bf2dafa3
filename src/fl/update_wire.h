// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// The byte form of a ModelUpdate: what a device seals into SubmitUpdateRequest.sealed_update and
// the server decodes before the coordinator sees it.
//
// Format, version 1 (all integers little-endian, no padding):
//   "HMLU"                      4 bytes, magic
//   version                     u8 = 1
//   codec                       u8: 0 none, 1 int8, 2 topk (WireCodec)
//   reserved                    u16 = 0
//   round_id                    i64
//   num_examples                i64
//   client_id                   u32 length (<= 256) + bytes
//   tensor count                u32 (<= 65536)
//   per tensor                  u32 name length (<= 1024) + name, u32 rank (<= 8), rank x i64 dim
//   payload length              u64
//   payload                     codec-specific, below
//   checksum                    16 bytes: BLAKE2b-128 of every byte before it
// Payloads (the sizes codec.h documents):
//   none:  n x f32
//   int8:  u32 n, u32 chunk_size, ceil(n / chunk_size) x f32 scale, n x i8 code (never -128)
//   topk:  u32 n, u32 k, k x u32 index (strictly ascending, < n), k x f32 value
// where n is the layout's element count.
//
// Decoding checks everything a check can tell: length and magic, version, codec, reserved bits,
// the checksum (catches truncation and transmission bit flips before anything is parsed), every
// length against the bytes left, dimensions >= 0, the element count against a bound (so a forged
// header cannot make the server allocate gigabytes), the payload against the layout, int8 scales
// finite and >= 0, top-k indices in range and ascending, and no trailing bytes. Every failure is
// kInvalidArgument naming the field. What the decoder does not judge is the content: a NaN delta,
// num_examples <= 0, the wrong round or the wrong layout decode fine and are rejected (and counted)
// by the coordinator's UpdateValidator. The checksum is not authentication: the transport's TLS
// and the device's token say who sent the bytes.
#ifndef HML_SRC_FL_UPDATE_WIRE_H_
#define HML_SRC_FL_UPDATE_WIRE_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "hml/status.h"
#include "src/fl/codec.h"
#include "src/fl/update.h"

namespace hml::fl {

enum class WireCodec : uint8_t { kNone = 0, kInt8 = 1, kTopK = 2 };

// "none", "int8", "topk" and back; kInvalidArgument for another name.
std::string_view WireCodecName(WireCodec codec);
Result<WireCodec> ParseWireCodec(std::string_view name);

inline constexpr uint8_t kUpdateWireVersion = 1;

struct WireEncodeOptions {
  // Default: kNone (dense float32).
  WireCodec codec = WireCodec::kNone;
  // int8: elements per scale; 0 means one scale for the whole update. Default: 0.
  uint32_t int8_chunk_size = 0;
  // topk: fraction of the elements sent, at least one (ignored with `feedback`, which has its
  // own k). Default: 0.01; in (0, 1].
  double topk_fraction = 0.01;
  // topk: the client's error-feedback state (codec.h); when set, its residual is added before
  // selection and updated. Not owned; must outlive the call. Default: nullptr (plain top-k).
  ErrorFeedbackTopK* feedback = nullptr;
};

struct WireDecodeOptions {
  // Largest element count a decoded update may have. Default: 1 << 28 (1 GiB of floats).
  int64_t max_elements = int64_t{1} << 28;
};

// Encodes `update` (its delta must hold LayoutNumElements(layout) values). kInvalidArgument for a
// size mismatch, a client id or name over its limit, topk_fraction out of range, or a non-finite
// value under int8 (which cannot quantize it).
Result<std::string> EncodeUpdate(const ModelUpdate& update, const WireEncodeOptions& options = {});

// What DecodeUpdate returns: the update and the codec it came in.
struct DecodedUpdate {
  ModelUpdate update;
  WireCodec codec = WireCodec::kNone;
};

// Decodes bytes made by EncodeUpdate. kInvalidArgument naming what is wrong for any malformed
// input (see the file comment); never crashes on arbitrary bytes.
Result<DecodedUpdate> DecodeUpdate(std::string_view bytes, const WireDecodeOptions& options = {});

// Appends the 16-byte checksum of `body` to it. EncodeUpdate does this itself; exposed so tests
// and tools can forge a structurally bad message that passes the checksum, to reach the checks
// behind it.
void AppendUpdateChecksum(std::string& body);

}  // namespace hml::fl

#endif  // HML_SRC_FL_UPDATE_WIRE_H_

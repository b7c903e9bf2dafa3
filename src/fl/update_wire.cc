// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/fl/update_wire.h"

#include <sodium.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstring>
#include <vector>

#include "src/fl/byte_io.h"

namespace hml::fl {
namespace {

constexpr char kMagic[4] = {'H', 'M', 'L', 'U'};
constexpr size_t kChecksumSize = 16;
constexpr uint32_t kMaxClientIdSize = 256;
constexpr uint32_t kMaxTensors = 65536;
constexpr uint32_t kMaxNameSize = 1024;
constexpr uint32_t kMaxRank = 8;

Status Malformed(const std::string& what) { return InvalidArgumentError("update wire: " + what); }

std::array<unsigned char, kChecksumSize> Checksum(std::string_view bytes) {
  std::array<unsigned char, kChecksumSize> out;
  // sodium_init only selects the fastest BLAKE2b implementation; the result is the same without.
  [[maybe_unused]] const int init = sodium_init();
  crypto_generichash(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()),
                     bytes.size(), nullptr, 0);
  return out;
}

}  // namespace

std::string_view WireCodecName(WireCodec codec) {
  switch (codec) {
    case WireCodec::kNone:
      return "none";
    case WireCodec::kInt8:
      return "int8";
    case WireCodec::kTopK:
      return "topk";
  }
  return "unknown";
}

Result<WireCodec> ParseWireCodec(std::string_view name) {
  if (name == "none") return WireCodec::kNone;
  if (name == "int8") return WireCodec::kInt8;
  if (name == "topk") return WireCodec::kTopK;
  return InvalidArgumentError("update codec '" + std::string(name) +
                              "' is unknown; use none, int8 or topk");
}

Result<std::string> EncodeUpdate(const ModelUpdate& update, const WireEncodeOptions& options) {
  HML_ASSIGN_OR_RETURN(int64_t n, LayoutNumElements(update.layout));
  if (n != static_cast<int64_t>(update.delta.size())) {
    return Malformed("the layout holds " + std::to_string(n) + " values, the delta " +
                     std::to_string(update.delta.size()));
  }
  if (n > int64_t{UINT32_MAX}) return Malformed("more than 2^32 - 1 values");
  if (update.client_id.size() > kMaxClientIdSize) {
    return Malformed("client id of " + std::to_string(update.client_id.size()) + " bytes exceeds " +
                     std::to_string(kMaxClientIdSize));
  }
  if (update.layout.size() > kMaxTensors) {
    return Malformed(std::to_string(update.layout.size()) + " tensors exceed " +
                     std::to_string(kMaxTensors));
  }
  ByteWriter w;
  w.Bytes(std::string_view(kMagic, 4));
  w.Int<uint8_t>(kUpdateWireVersion);
  w.Int<uint8_t>(static_cast<uint8_t>(options.codec));
  w.Int<uint16_t>(0);
  w.Int<int64_t>(update.round_id);
  w.Int<int64_t>(update.num_examples);
  w.Int<uint32_t>(static_cast<uint32_t>(update.client_id.size()));
  w.Bytes(update.client_id);
  w.Int<uint32_t>(static_cast<uint32_t>(update.layout.size()));
  for (const TensorLayout& tensor : update.layout) {
    if (tensor.name.size() > kMaxNameSize || tensor.shape.size() > kMaxRank) {
      return Malformed("tensor '" + tensor.name + "': name over " + std::to_string(kMaxNameSize) +
                       " bytes or rank over " + std::to_string(kMaxRank));
    }
    w.Int<uint32_t>(static_cast<uint32_t>(tensor.name.size()));
    w.Bytes(tensor.name);
    w.Int<uint32_t>(static_cast<uint32_t>(tensor.shape.size()));
    for (int64_t dim : tensor.shape) w.Int<int64_t>(dim);
  }
  ByteWriter payload;
  switch (options.codec) {
    case WireCodec::kNone:
      for (float value : update.delta) payload.Float(value);
      break;
    case WireCodec::kInt8: {
      HML_ASSIGN_OR_RETURN(Int8Quantized q, EncodeInt8(update.delta, options.int8_chunk_size));
      payload.Int<uint32_t>(q.size);
      payload.Int<uint32_t>(q.chunk_size);
      for (float scale : q.scales) payload.Float(scale);
      for (int8_t code : q.codes) payload.Int<int8_t>(code);
      break;
    }
    case WireCodec::kTopK: {
      if (!(options.topk_fraction > 0.0 && options.topk_fraction <= 1.0)) {
        return Malformed("topk_fraction " + std::to_string(options.topk_fraction) +
                         " is not in (0, 1]");
      }
      TopKSparse s;
      if (options.feedback != nullptr) {
        HML_ASSIGN_OR_RETURN(s, options.feedback->Encode(update.delta));
      } else {
        const double k = std::ceil(options.topk_fraction * static_cast<double>(n));
        s = EncodeTopK(update.delta, static_cast<uint32_t>(std::max(1.0, k)));
      }
      payload.Int<uint32_t>(s.size);
      payload.Int<uint32_t>(static_cast<uint32_t>(s.indices.size()));
      for (uint32_t index : s.indices) payload.Int<uint32_t>(index);
      for (float value : s.values) payload.Float(value);
      break;
    }
    default:
      return Malformed("unknown codec id " + std::to_string(static_cast<int>(options.codec)));
  }
  w.Int<uint64_t>(payload.out().size());
  w.Bytes(payload.out());
  AppendUpdateChecksum(w.out());
  return std::move(w.out());
}

void AppendUpdateChecksum(std::string& body) {
  const auto sum = Checksum(body);
  body.append(reinterpret_cast<const char*>(sum.data()), sum.size());
}

Result<DecodedUpdate> DecodeUpdate(std::string_view bytes, const WireDecodeOptions& options) {
  if (bytes.size() < 4 + 4 + kChecksumSize) {
    return Malformed(std::to_string(bytes.size()) + " bytes is too short for an update");
  }
  if (std::memcmp(bytes.data(), kMagic, 4) != 0) return Malformed("bad magic, not an update");
  const uint8_t version = static_cast<uint8_t>(bytes[4]);
  if (version != kUpdateWireVersion) {
    return Malformed("version " + std::to_string(version) + " is not supported (this build reads " +
                     std::to_string(kUpdateWireVersion) + ")");
  }
  const std::string_view body = bytes.substr(0, bytes.size() - kChecksumSize);
  const auto want = Checksum(body);
  if (std::memcmp(want.data(), bytes.data() + body.size(), kChecksumSize) != 0) {
    return Malformed("checksum mismatch (truncated or corrupted)");
  }

  ByteReader r(body.substr(5), "update wire");
  DecodedUpdate out;
  HML_ASSIGN_OR_RETURN(uint8_t codec, r.Int<uint8_t>("codec"));
  if (codec > static_cast<uint8_t>(WireCodec::kTopK)) {
    return Malformed("unknown codec id " + std::to_string(codec));
  }
  out.codec = static_cast<WireCodec>(codec);
  HML_ASSIGN_OR_RETURN(uint16_t reserved, r.Int<uint16_t>("reserved"));
  if (reserved != 0) return Malformed("reserved field is " + std::to_string(reserved) + ", not 0");
  ModelUpdate& update = out.update;
  HML_ASSIGN_OR_RETURN(update.round_id, r.Int<int64_t>("round_id"));
  HML_ASSIGN_OR_RETURN(update.num_examples, r.Int<int64_t>("num_examples"));
  HML_ASSIGN_OR_RETURN(uint32_t id_size, r.Int<uint32_t>("client_id length"));
  if (id_size > kMaxClientIdSize) {
    return Malformed("client id length " + std::to_string(id_size) + " exceeds " +
                     std::to_string(kMaxClientIdSize));
  }
  HML_ASSIGN_OR_RETURN(std::string_view id, r.Bytes(id_size, "client_id"));
  update.client_id = std::string(id);
  HML_ASSIGN_OR_RETURN(uint32_t tensors, r.Int<uint32_t>("tensor count"));
  if (tensors > kMaxTensors) {
    return Malformed(std::to_string(tensors) + " tensors exceed " + std::to_string(kMaxTensors));
  }
  for (uint32_t t = 0; t < tensors; ++t) {
    TensorLayout tensor;
    HML_ASSIGN_OR_RETURN(uint32_t name_size, r.Int<uint32_t>("tensor name length"));
    if (name_size > kMaxNameSize) {
      return Malformed("tensor " + std::to_string(t) + ": name length " +
                       std::to_string(name_size) + " exceeds " + std::to_string(kMaxNameSize));
    }
    HML_ASSIGN_OR_RETURN(std::string_view name, r.Bytes(name_size, "tensor name"));
    tensor.name = std::string(name);
    HML_ASSIGN_OR_RETURN(uint32_t rank, r.Int<uint32_t>("tensor rank"));
    if (rank > kMaxRank) {
      return Malformed("tensor '" + tensor.name + "': rank " + std::to_string(rank) + " exceeds " +
                       std::to_string(kMaxRank));
    }
    for (uint32_t d = 0; d < rank; ++d) {
      HML_ASSIGN_OR_RETURN(int64_t dim, r.Int<int64_t>("tensor dimension"));
      if (dim < 0) {
        return Malformed("tensor '" + tensor.name + "': negative dimension " + std::to_string(dim));
      }
      tensor.shape.push_back(dim);
    }
    update.layout.push_back(std::move(tensor));
  }
  Result<int64_t> count = LayoutNumElements(update.layout);
  if (!count.ok()) return Malformed(std::string(count.status().message()));
  const int64_t n = *count;
  if (n > options.max_elements || n > int64_t{UINT32_MAX}) {
    return Malformed("layout holds " + std::to_string(n) + " values, more than the limit " +
                     std::to_string(std::min<int64_t>(options.max_elements, UINT32_MAX)));
  }
  HML_ASSIGN_OR_RETURN(uint64_t payload_size, r.Int<uint64_t>("payload length"));
  if (payload_size != r.left()) {
    return Malformed("payload length " + std::to_string(payload_size) + " but " +
                     std::to_string(r.left()) + " bytes follow");
  }
  const auto un = static_cast<uint64_t>(n);
  switch (out.codec) {
    case WireCodec::kNone: {
      if (payload_size != 4 * un) {
        return Malformed("dense payload of " + std::to_string(payload_size) +
                         " bytes, the layout " + "needs " + std::to_string(4 * un));
      }
      update.delta.resize(un);
      for (float& value : update.delta) {
        HML_ASSIGN_OR_RETURN(value, r.Float("value"));
      }
      break;
    }
    case WireCodec::kInt8: {
      Int8Quantized q;
      HML_ASSIGN_OR_RETURN(q.size, r.Int<uint32_t>("int8 size"));
      HML_ASSIGN_OR_RETURN(q.chunk_size, r.Int<uint32_t>("int8 chunk size"));
      if (q.size != un) {
        return Malformed("int8 payload of " + std::to_string(q.size) + " values, the layout " +
                         "holds " + std::to_string(un));
      }
      if (q.chunk_size == 0 && q.size != 0) return Malformed("int8 chunk size is 0");
      const uint64_t chunks =
          q.size == 0 ? 0 : (uint64_t{q.size} + q.chunk_size - 1) / q.chunk_size;
      if (payload_size != 8 + 4 * chunks + un) {
        return Malformed("int8 payload of " + std::to_string(payload_size) + " bytes, expected " +
                         std::to_string(8 + 4 * chunks + un));
      }
      q.scales.resize(chunks);
      for (float& scale : q.scales) {
        HML_ASSIGN_OR_RETURN(scale, r.Float("int8 scale"));
        if (!(std::isfinite(scale) && scale >= 0.0f)) {
          return Malformed("int8 scale " + std::to_string(scale) + " is not finite and >= 0");
        }
      }
      q.codes.resize(un);
      for (int8_t& code : q.codes) {
        HML_ASSIGN_OR_RETURN(code, r.Int<int8_t>("int8 code"));
        if (code == -128) return Malformed("int8 code -128 is outside [-127, 127]");
      }
      update.delta = DecodeInt8(q);
      break;
    }
    case WireCodec::kTopK: {
      TopKSparse s;
      HML_ASSIGN_OR_RETURN(s.size, r.Int<uint32_t>("topk size"));
      HML_ASSIGN_OR_RETURN(uint32_t k, r.Int<uint32_t>("topk count"));
      if (s.size != un) {
        return Malformed("topk payload of " + std::to_string(s.size) + " values, the layout " +
                         "holds " + std::to_string(un));
      }
      if (k > s.size) {
        return Malformed("topk keeps " + std::to_string(k) + " of " + std::to_string(s.size));
      }
      if (payload_size != 8 + 8 * uint64_t{k}) {
        return Malformed("topk payload of " + std::to_string(payload_size) + " bytes, expected " +
                         std::to_string(8 + 8 * uint64_t{k}));
      }
      s.indices.resize(k);
      for (uint32_t i = 0; i < k; ++i) {
        HML_ASSIGN_OR_RETURN(s.indices[i], r.Int<uint32_t>("topk index"));
        if (s.indices[i] >= s.size || (i > 0 && s.indices[i] <= s.indices[i - 1])) {
          return Malformed("topk index " + std::to_string(s.indices[i]) +
                           " is out of range or not ascending");
        }
      }
      s.values.resize(k);
      for (float& value : s.values) {
        HML_ASSIGN_OR_RETURN(value, r.Float("topk value"));
      }
      update.delta = DecodeTopK(s);
      break;
    }
  }
  if (r.left() != 0) return Malformed(std::to_string(r.left()) + " trailing bytes");
  return out;
}

}  // namespace hml::fl

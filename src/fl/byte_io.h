// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// Little-endian byte writing and bounds-checked reading for the federated wire formats
// (update_wire.h, secure_round.h). Internal to src/fl.
#ifndef HML_SRC_FL_BYTE_IO_H_
#define HML_SRC_FL_BYTE_IO_H_

#include <bit>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

#include "hml/status.h"

namespace hml::fl {

// Appends little-endian integers and floats to a byte string.
class ByteWriter {
 public:
  void Bytes(std::string_view bytes) { out_.append(bytes); }
  template <typename T>
  void Int(T value) {
    auto u = static_cast<std::make_unsigned_t<T>>(value);
    for (size_t i = 0; i < sizeof(T); ++i) {
      out_.push_back(static_cast<char>(static_cast<uint8_t>(u >> (8 * i))));
    }
  }
  void Float(float value) { Int(std::bit_cast<uint32_t>(value)); }
  std::string& out() { return out_; }

 private:
  std::string out_;
};

// Reads the same forms; every read checks the bytes left and fails with kInvalidArgument
// "<format>: truncated at <field>".
class ByteReader {
 public:
  // `format` names the format in errors ("update wire"); it must outlive the reader.
  ByteReader(std::string_view bytes, const char* format) : bytes_(bytes), format_(format) {}

  template <typename T>
  Result<T> Int(const char* field) {
    if (bytes_.size() < sizeof(T)) return Truncated(field);
    std::make_unsigned_t<T> u = 0;
    for (size_t i = 0; i < sizeof(T); ++i) {
      u |= static_cast<std::make_unsigned_t<T>>(static_cast<uint8_t>(bytes_[i])) << (8 * i);
    }
    bytes_.remove_prefix(sizeof(T));
    return static_cast<T>(u);
  }
  Result<float> Float(const char* field) {
    HML_ASSIGN_OR_RETURN(uint32_t bits, Int<uint32_t>(field));
    return std::bit_cast<float>(bits);
  }
  Result<std::string_view> Bytes(size_t size, const char* field) {
    if (bytes_.size() < size) return Truncated(field);
    std::string_view out = bytes_.substr(0, size);
    bytes_.remove_prefix(size);
    return out;
  }
  size_t left() const { return bytes_.size(); }

 private:
  Status Truncated(const char* field) const {
    return InvalidArgumentError(std::string(format_) + ": truncated at " + field);
  }
  std::string_view bytes_;
  const char* format_;
};

}  // namespace hml::fl

#endif  // HML_SRC_FL_BYTE_IO_H_

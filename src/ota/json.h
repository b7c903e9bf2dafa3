// Copyright hybridml authors. Licensed under the Apache License 2.0.
//
// JSON for signed update metadata: a small value type, a strict parser with limits (metadata
// arrives from the network before it is verified), and canonical serialization, the exact bytes
// signatures are computed over (securesystemslib's canonical JSON: no whitespace, object keys
// sorted by their bytes, strings escaping only '"' and '\', integers only).
//
// No floats: nothing in the metadata needs them, and their text forms are not canonical.
// No exceptions: errors are Status values.
#ifndef HML_SRC_OTA_JSON_H_
#define HML_SRC_OTA_JSON_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "hml/status.h"

namespace hml::ota {

class Json {
 public:
  enum class Type { kNull, kBool, kInt, kString, kArray, kObject };
  using Array = std::vector<Json>;
  using Object = std::map<std::string, Json, std::less<>>;  // keys sorted by bytes

  Json() = default;  // null
  Json(std::nullptr_t) {}
  Json(bool v) : value_(v) {}
  Json(int v) : value_(static_cast<int64_t>(v)) {}
  Json(int64_t v) : value_(v) {}
  Json(std::string v) : value_(std::move(v)) {}
  Json(std::string_view v) : value_(std::string(v)) {}
  Json(const char* v) : value_(std::string(v)) {}
  Json(Array v) : value_(std::move(v)) {}
  Json(Object v) : value_(std::move(v)) {}

  Type type() const { return static_cast<Type>(value_.index()); }
  bool is_null() const { return type() == Type::kNull; }
  bool is_bool() const { return type() == Type::kBool; }
  bool is_int() const { return type() == Type::kInt; }
  bool is_string() const { return type() == Type::kString; }
  bool is_array() const { return type() == Type::kArray; }
  bool is_object() const { return type() == Type::kObject; }

  // REQUIRES: the matching type. A mismatch is a bug: std::get throws, or aborts in device builds
  // (-fno-exceptions). Use the typed getters below for values from outside.
  bool as_bool() const { return std::get<bool>(value_); }
  int64_t as_int() const { return std::get<int64_t>(value_); }
  const std::string& as_string() const { return std::get<std::string>(value_); }
  const Array& as_array() const { return std::get<Array>(value_); }
  Array& as_array() { return std::get<Array>(value_); }
  const Object& as_object() const { return std::get<Object>(value_); }
  Object& as_object() { return std::get<Object>(value_); }

  // Object member by key, or null when this is not an object or has no such key.
  const Json* Find(std::string_view key) const;
  // Object member, created as null if absent; a null value becomes an empty object first.
  // REQUIRES: is_object() or is_null().
  Json& operator[](std::string_view key);

  // Typed members of an object. kInvalidArgument naming the key when this is not an object, the
  // key is missing, or the member has another type ("'version' is a string, expected an
  // integer").
  Result<const Json*> Get(std::string_view key) const;
  Result<bool> GetBool(std::string_view key) const;
  Result<int64_t> GetInt(std::string_view key) const;
  Result<std::string> GetString(std::string_view key) const;
  Result<const Array*> GetArray(std::string_view key) const;
  Result<const Object*> GetObject(std::string_view key) const;

  friend bool operator==(const Json& a, const Json& b) { return a.value_ == b.value_; }

 private:
  std::variant<std::nullptr_t, bool, int64_t, std::string, Array, Object> value_;
};

// "null", "bool", "integer", "string", "array", "object".
std::string_view JsonTypeName(Json::Type type);

struct JsonLimits {
  // Longest text accepted. Default: 16 MiB.
  int64_t max_bytes = int64_t{16} << 20;
  // Deepest nesting of arrays and objects. Default: 64.
  int max_depth = 64;
};

// Parses one JSON value (RFC 8259) surrounded by optional whitespace. Integers must fit in
// int64; fractions and exponents are rejected. Strings must be valid UTF-8; \u escapes (with
// surrogate pairs) are decoded to UTF-8. Every error names the byte offset and what was wrong:
// kResourceExhausted for text beyond max_bytes (checked first, before any parsing) and nesting
// beyond max_depth (checked before descending, so deep input cannot exhaust the stack);
// kInvalidArgument for everything else: a syntax error, a duplicate object key, a number that is
// not an integer or does not fit, invalid UTF-8, a lone surrogate escape, an unescaped control
// character in a string, trailing bytes.
Result<Json> ParseJson(std::string_view text, const JsonLimits& limits = {});

// The canonical form: no whitespace, object keys in byte order, strings with only '"' and '\'
// escaped (every other byte, control characters included, written as is). Because control
// characters stay raw, the canonical form of a string holding one is not strict JSON and
// ParseJson rejects it; it is meant for signing, not for parsing back.
std::string CanonicalJson(const Json& value);

// Indented text for people (files on disk, CLI output), with standard JSON escapes (control
// characters as \n, \t, ... or \u00XX); `indent` spaces per level (negative counts as 0).
// ParseJson reads it back to the same value when every string is valid UTF-8 (which holds for
// any value ParseJson produced).
std::string PrettyJson(const Json& value, int indent = 2);

}  // namespace hml::ota

#endif  // HML_SRC_OTA_JSON_H_

// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/ota/json.h"

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <utility>

namespace hml::ota {
namespace {

// The type name with its article, for messages: "'version' is a string, expected an integer".
std::string_view TypeWithArticle(Json::Type type) {
  switch (type) {
    case Json::Type::kNull:
      return "null";
    case Json::Type::kBool:
      return "a bool";
    case Json::Type::kInt:
      return "an integer";
    case Json::Type::kString:
      return "a string";
    case Json::Type::kArray:
      return "an array";
    case Json::Type::kObject:
      return "an object";
  }
  return "an unknown type";
}

// Text from the input (an object key, a number) made safe to put in a message: at most 64 bytes,
// control characters replaced by '?', so a hostile document cannot flood or garble logs.
std::string ForMessage(std::string_view text) {
  constexpr size_t kMaxBytes = 64;
  std::string out;
  for (size_t i = 0; i < text.size() && i < kMaxBytes; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    out.push_back(c < 0x20 || c == 0x7f ? '?' : text[i]);
  }
  if (text.size() > kMaxBytes) out += "...";
  return out;
}

std::string HexByte(unsigned char c) {
  constexpr char kDigits[] = "0123456789abcdef";
  std::string s = "0x";
  s.push_back(kDigits[c >> 4]);
  s.push_back(kDigits[c & 0xf]);
  return s;
}

// Appends `code_point` (a Unicode scalar value, <= U+10FFFF and not a surrogate) as UTF-8.
void AppendUtf8(uint32_t code_point, std::string& out) {
  if (code_point < 0x80) {
    out.push_back(static_cast<char>(code_point));
  } else if (code_point < 0x800) {
    out.push_back(static_cast<char>(0xc0 | (code_point >> 6)));
    out.push_back(static_cast<char>(0x80 | (code_point & 0x3f)));
  } else if (code_point < 0x10000) {
    out.push_back(static_cast<char>(0xe0 | (code_point >> 12)));
    out.push_back(static_cast<char>(0x80 | ((code_point >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (code_point & 0x3f)));
  } else {
    out.push_back(static_cast<char>(0xf0 | (code_point >> 18)));
    out.push_back(static_cast<char>(0x80 | ((code_point >> 12) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | ((code_point >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (code_point & 0x3f)));
  }
}

void AppendInt(int64_t v, std::string& out) {
  char buf[24];  // 20 digits and a sign for int64 min
  const auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, end);
}

// A recursive-descent parser over one text. Recursion happens only for arrays and objects and the
// depth is checked before each descent, so the stack holds at most max_depth frames of it.
class Parser {
 public:
  Parser(std::string_view text, const JsonLimits& limits) : text_(text), limits_(limits) {}

  Result<Json> ParseDocument() {
    if (static_cast<int64_t>(text_.size()) > limits_.max_bytes) {
      return ResourceExhaustedError(
          "JSON: text of " + std::to_string(text_.size()) + " bytes exceeds max_bytes " +
          std::to_string(limits_.max_bytes) + " at byte " + std::to_string(limits_.max_bytes));
    }
    Json value;
    SkipWhitespace();
    HML_RETURN_IF_ERROR(ParseValue(0, value));
    SkipWhitespace();
    if (pos_ != text_.size()) return Error(pos_, "unexpected data after the value");
    return value;  // C++20 moves a returned local into Result(T&&); no copy
  }

 private:
  static Status Error(size_t offset, std::string_view what) {
    return InvalidArgumentError("JSON: " + std::string(what) + " at byte " +
                                std::to_string(offset));
  }

  bool AtEnd() const { return pos_ >= text_.size(); }
  unsigned char Peek() const { return static_cast<unsigned char>(text_[pos_]); }

  void SkipWhitespace() {
    while (!AtEnd()) {
      const unsigned char c = Peek();
      if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
      ++pos_;
    }
  }

  // Names the byte at pos_ for "unexpected ..." messages.
  std::string Unexpected() const {
    if (AtEnd()) return "unexpected end of input";
    const unsigned char c = Peek();
    if (c >= 0x20 && c < 0x7f) return std::string("unexpected character '") + text_[pos_] + "'";
    return "unexpected byte " + HexByte(c);
  }

  // `depth` counts the arrays and objects around the value.
  Status ParseValue(int depth, Json& out) {
    if (AtEnd()) return Error(pos_, "unexpected end of input, expected a value");
    switch (Peek()) {
      case '{':
        return ParseObject(depth, out);
      case '[':
        return ParseArray(depth, out);
      case '"': {
        std::string s;
        HML_RETURN_IF_ERROR(ParseString(s));
        out = Json(std::move(s));
        return Status::Ok();
      }
      case 't':
        return ParseLiteral("true", Json(true), out);
      case 'f':
        return ParseLiteral("false", Json(false), out);
      case 'n':
        return ParseLiteral("null", Json(), out);
      default:
        if (Peek() == '-' || (Peek() >= '0' && Peek() <= '9')) return ParseInteger(out);
        return Error(pos_, Unexpected() + ", expected a value");
    }
  }

  Status ParseLiteral(std::string_view word, Json value, Json& out) {
    if (text_.substr(pos_, word.size()) != word) {
      return Error(pos_, "invalid literal, expected '" + std::string(word) + "'");
    }
    pos_ += word.size();
    out = std::move(value);
    return Status::Ok();
  }

  Status CheckDepth(int depth) const {
    if (depth + 1 > limits_.max_depth) {
      return ResourceExhaustedError("JSON: nesting deeper than max_depth " +
                                    std::to_string(limits_.max_depth) + " at byte " +
                                    std::to_string(pos_));
    }
    return Status::Ok();
  }

  Status ParseArray(int depth, Json& out) {
    HML_RETURN_IF_ERROR(CheckDepth(depth));
    ++pos_;  // '['
    Json::Array array;
    SkipWhitespace();
    if (!AtEnd() && Peek() == ']') {
      ++pos_;
      out = Json(std::move(array));
      return Status::Ok();
    }
    while (true) {
      array.emplace_back();
      HML_RETURN_IF_ERROR(ParseValue(depth + 1, array.back()));
      SkipWhitespace();
      if (AtEnd()) return Error(pos_, "unexpected end of input in an array");
      if (Peek() == ']') break;
      if (Peek() != ',') return Error(pos_, Unexpected() + ", expected ',' or ']' in an array");
      ++pos_;
      SkipWhitespace();
    }
    ++pos_;  // ']'
    out = Json(std::move(array));
    return Status::Ok();
  }

  Status ParseObject(int depth, Json& out) {
    HML_RETURN_IF_ERROR(CheckDepth(depth));
    ++pos_;  // '{'
    Json::Object object;
    SkipWhitespace();
    if (!AtEnd() && Peek() == '}') {
      ++pos_;
      out = Json(std::move(object));
      return Status::Ok();
    }
    while (true) {
      if (AtEnd() || Peek() != '"') {
        return Error(pos_, Unexpected() + ", expected a string key in an object");
      }
      const size_t key_offset = pos_;
      std::string key;
      HML_RETURN_IF_ERROR(ParseString(key));
      // Duplicate keys are an error, not "last one wins": two parsers that resolve them differently
      // would see different metadata behind the same signature.
      auto [it, inserted] = object.try_emplace(std::move(key));
      if (!inserted)
        return Error(key_offset, "duplicate object key '" + ForMessage(it->first) + "'");
      SkipWhitespace();
      if (AtEnd() || Peek() != ':') return Error(pos_, Unexpected() + ", expected ':' after a key");
      ++pos_;
      SkipWhitespace();
      HML_RETURN_IF_ERROR(ParseValue(depth + 1, it->second));
      SkipWhitespace();
      if (AtEnd()) return Error(pos_, "unexpected end of input in an object");
      if (Peek() == '}') break;
      if (Peek() != ',') return Error(pos_, Unexpected() + ", expected ',' or '}' in an object");
      ++pos_;
      SkipWhitespace();
    }
    ++pos_;  // '}'
    out = Json(std::move(object));
    return Status::Ok();
  }

  // An optional '-', then 0 or digits without a leading zero; nothing else. Accumulates the
  // magnitude in uint64 so that int64 min (whose magnitude int64 cannot hold) is accepted.
  Status ParseInteger(Json& out) {
    const size_t start = pos_;
    const bool negative = Peek() == '-';
    if (negative) ++pos_;
    if (AtEnd() || Peek() < '0' || Peek() > '9') {
      return Error(start, "'-' must be followed by a digit");
    }
    const size_t digits_start = pos_;
    const uint64_t limit = negative ? uint64_t{1} << 63 : (uint64_t{1} << 63) - 1;
    uint64_t magnitude = 0;
    bool overflow = false;
    while (!AtEnd() && Peek() >= '0' && Peek() <= '9') {
      const uint64_t digit = Peek() - '0';
      if (magnitude > (limit - digit) / 10) overflow = true;
      if (!overflow) magnitude = magnitude * 10 + digit;
      ++pos_;
    }
    if (text_[digits_start] == '0' && pos_ - digits_start > 1) {
      return Error(start, "number with a leading zero");
    }
    if (!AtEnd() && (Peek() == '.' || Peek() == 'e' || Peek() == 'E')) {
      return Error(start, "number with a fraction or exponent, only integers are allowed");
    }
    if (overflow) {
      return Error(start, "integer " + ForMessage(text_.substr(start, pos_ - start)) +
                              " does not fit in int64");
    }
    // Negating in uint64 and converting is exact for every magnitude up to 2^63.
    out = Json(negative ? static_cast<int64_t>(~magnitude + 1) : static_cast<int64_t>(magnitude));
    return Status::Ok();
  }

  // Reads four hex digits at pos_ (after "\u").
  Status ParseHex4(size_t escape_offset, uint32_t& value) {
    value = 0;
    for (int i = 0; i < 4; ++i) {
      if (AtEnd()) return Error(escape_offset, "truncated \\u escape");
      const unsigned char c = Peek();
      uint32_t digit;
      if (c >= '0' && c <= '9') {
        digit = c - '0';
      } else if (c >= 'a' && c <= 'f') {
        digit = c - 'a' + 10;
      } else if (c >= 'A' && c <= 'F') {
        digit = c - 'A' + 10;
      } else {
        return Error(escape_offset, "\\u escape needs four hex digits");
      }
      value = value * 16 + digit;
      ++pos_;
    }
    return Status::Ok();
  }

  // pos_ is at the backslash.
  Status ParseEscape(std::string& out) {
    const size_t offset = pos_;
    ++pos_;
    if (AtEnd()) return Error(offset, "unterminated escape");
    const unsigned char c = Peek();
    ++pos_;
    switch (c) {
      case '"':
        out.push_back('"');
        return Status::Ok();
      case '\\':
        out.push_back('\\');
        return Status::Ok();
      case '/':
        out.push_back('/');
        return Status::Ok();
      case 'b':
        out.push_back('\b');
        return Status::Ok();
      case 'f':
        out.push_back('\f');
        return Status::Ok();
      case 'n':
        out.push_back('\n');
        return Status::Ok();
      case 'r':
        out.push_back('\r');
        return Status::Ok();
      case 't':
        out.push_back('\t');
        return Status::Ok();
      case 'u':
        break;
      default:
        return Error(offset, c >= 0x20 && c < 0x7f
                                 ? std::string("invalid escape '\\") + static_cast<char>(c) + "'"
                                 : "invalid escape: backslash before byte " + HexByte(c));
    }
    uint32_t unit = 0;
    HML_RETURN_IF_ERROR(ParseHex4(offset, unit));
    if (unit >= 0xdc00 && unit <= 0xdfff) {
      return Error(offset, "lone low surrogate in \\u escape");
    }
    if (unit >= 0xd800 && unit <= 0xdbff) {
      // A high surrogate must be followed at once by an escaped low surrogate.
      const size_t low_offset = pos_;
      if (text_.substr(pos_, 2) != "\\u") {
        return Error(offset, "lone high surrogate in \\u escape");
      }
      pos_ += 2;
      uint32_t low = 0;
      HML_RETURN_IF_ERROR(ParseHex4(low_offset, low));
      if (low < 0xdc00 || low > 0xdfff) {
        return Error(offset, "high surrogate in \\u escape not followed by a low surrogate");
      }
      unit = 0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00);
    }
    AppendUtf8(unit, out);
    return Status::Ok();
  }

  // Validates one multi-byte UTF-8 sequence at pos_ (lead byte >= 0x80) and appends it. Well-formed
  // sequences as in Unicode's table 3-7: no overlong forms, no surrogates (U+D800..U+DFFF), nothing
  // beyond U+10FFFF.
  Status ParseUtf8Sequence(std::string& out) {
    const size_t offset = pos_;
    const unsigned char lead = Peek();
    int continuation;
    // The allowed range of the second byte; the later ones are always 0x80..0xbf.
    unsigned char low = 0x80;
    unsigned char high = 0xbf;
    if (lead < 0xc0) {
      return Error(offset, "invalid UTF-8: unexpected continuation byte " + HexByte(lead));
    } else if (lead < 0xc2) {
      return Error(offset, "invalid UTF-8: overlong encoding");
    } else if (lead < 0xe0) {
      continuation = 1;
    } else if (lead < 0xf0) {
      continuation = 2;
      if (lead == 0xe0) low = 0xa0;
      if (lead == 0xed) high = 0x9f;
    } else if (lead < 0xf5) {
      continuation = 3;
      if (lead == 0xf0) low = 0x90;
      if (lead == 0xf4) high = 0x8f;
    } else {
      return Error(offset, "invalid UTF-8: byte " + HexByte(lead) +
                               " cannot start a sequence (beyond U+10FFFF)");
    }
    if (text_.size() - pos_ - 1 < static_cast<size_t>(continuation)) {
      return Error(offset, "invalid UTF-8: incomplete sequence");
    }
    for (int i = 1; i <= continuation; ++i) {
      const auto c = static_cast<unsigned char>(text_[pos_ + i]);
      if (c < 0x80 || c > 0xbf) return Error(offset, "invalid UTF-8: incomplete sequence");
      if (i == 1 && c < low) return Error(offset, "invalid UTF-8: overlong encoding");
      if (i == 1 && c > high) {
        return Error(offset, lead == 0xed ? "invalid UTF-8: encoded surrogate"
                                          : "invalid UTF-8: code point beyond U+10FFFF");
      }
    }
    out.append(text_.substr(pos_, continuation + 1));
    pos_ += continuation + 1;
    return Status::Ok();
  }

  // pos_ is at the opening quote.
  Status ParseString(std::string& out) {
    const size_t start = pos_;
    ++pos_;
    while (true) {
      // Copy the run of plain printable ASCII in one append.
      const size_t run_start = pos_;
      while (!AtEnd()) {
        const unsigned char c = Peek();
        if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80) break;
        ++pos_;
      }
      out.append(text_.substr(run_start, pos_ - run_start));
      if (AtEnd()) return Error(start, "unterminated string");
      const unsigned char c = Peek();
      if (c == '"') {
        ++pos_;
        return Status::Ok();
      }
      if (c == '\\') {
        HML_RETURN_IF_ERROR(ParseEscape(out));
      } else if (c < 0x20) {
        return Error(pos_, "unescaped control character " + HexByte(c) + " in a string");
      } else {
        HML_RETURN_IF_ERROR(ParseUtf8Sequence(out));
      }
    }
  }

  std::string_view text_;
  const JsonLimits& limits_;
  size_t pos_ = 0;
};

void AppendCanonicalString(std::string_view s, std::string& out) {
  out.push_back('"');
  for (const char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
}

void AppendCanonical(const Json& value, std::string& out) {
  switch (value.type()) {
    case Json::Type::kNull:
      out += "null";
      return;
    case Json::Type::kBool:
      out += value.as_bool() ? "true" : "false";
      return;
    case Json::Type::kInt:
      AppendInt(value.as_int(), out);
      return;
    case Json::Type::kString:
      AppendCanonicalString(value.as_string(), out);
      return;
    case Json::Type::kArray: {
      out.push_back('[');
      bool first = true;
      for (const Json& element : value.as_array()) {
        if (!first) out.push_back(',');
        first = false;
        AppendCanonical(element, out);
      }
      out.push_back(']');
      return;
    }
    case Json::Type::kObject: {
      // std::map's order is std::less on std::string, which compares bytes as unsigned char
      // (char_traits<char>::lt), the byte order the canonical form needs.
      out.push_back('{');
      bool first = true;
      for (const auto& [key, member] : value.as_object()) {
        if (!first) out.push_back(',');
        first = false;
        AppendCanonicalString(key, out);
        out.push_back(':');
        AppendCanonical(member, out);
      }
      out.push_back('}');
      return;
    }
  }
}

// Standard JSON escaping: the short escapes where JSON has them, \u00XX for the other control
// characters; every other byte (UTF-8 included) as is.
void AppendPrettyString(std::string_view s, std::string& out) {
  constexpr char kDigits[] = "0123456789abcdef";
  out.push_back('"');
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out.push_back(kDigits[c >> 4]);
          out.push_back(kDigits[c & 0xf]);
        } else {
          out.push_back(ch);
        }
    }
  }
  out.push_back('"');
}

void AppendNewline(int depth, int indent, std::string& out) {
  out.push_back('\n');
  out.append(static_cast<size_t>(depth) * static_cast<size_t>(indent), ' ');
}

void AppendPretty(const Json& value, int depth, int indent, std::string& out) {
  switch (value.type()) {
    case Json::Type::kString:
      AppendPrettyString(value.as_string(), out);
      return;
    case Json::Type::kArray: {
      const Json::Array& array = value.as_array();
      if (array.empty()) {
        out += "[]";
        return;
      }
      out.push_back('[');
      for (size_t i = 0; i < array.size(); ++i) {
        if (i > 0) out.push_back(',');
        AppendNewline(depth + 1, indent, out);
        AppendPretty(array[i], depth + 1, indent, out);
      }
      AppendNewline(depth, indent, out);
      out.push_back(']');
      return;
    }
    case Json::Type::kObject: {
      const Json::Object& object = value.as_object();
      if (object.empty()) {
        out += "{}";
        return;
      }
      out.push_back('{');
      bool first = true;
      for (const auto& [key, member] : object) {
        if (!first) out.push_back(',');
        first = false;
        AppendNewline(depth + 1, indent, out);
        AppendPrettyString(key, out);
        out += ": ";
        AppendPretty(member, depth + 1, indent, out);
      }
      AppendNewline(depth, indent, out);
      out.push_back('}');
      return;
    }
    default:
      // Scalars other than strings have one form.
      AppendCanonical(value, out);
      return;
  }
}

}  // namespace

const Json* Json::Find(std::string_view key) const {
  if (!is_object()) return nullptr;
  const Object& object = as_object();
  const auto it = object.find(key);
  return it == object.end() ? nullptr : &it->second;
}

Json& Json::operator[](std::string_view key) {
  if (is_null()) value_ = Object();
  Object& object = as_object();
  auto it = object.find(key);
  if (it == object.end()) it = object.emplace(std::string(key), Json()).first;
  return it->second;
}

Result<const Json*> Json::Get(std::string_view key) const {
  if (!is_object()) {
    return InvalidArgumentError("cannot read '" + std::string(key) + "' from " +
                                std::string(TypeWithArticle(type())) + ", expected an object");
  }
  const Json* member = Find(key);
  if (member == nullptr) return InvalidArgumentError("missing key '" + std::string(key) + "'");
  return member;
}

namespace {

// The error of a typed getter when the member exists with another type.
Status WrongType(std::string_view key, Json::Type actual, Json::Type expected) {
  return InvalidArgumentError("'" + std::string(key) + "' is " +
                              std::string(TypeWithArticle(actual)) + ", expected " +
                              std::string(TypeWithArticle(expected)));
}

}  // namespace

Result<bool> Json::GetBool(std::string_view key) const {
  HML_ASSIGN_OR_RETURN(const Json* member, Get(key));
  if (!member->is_bool()) return WrongType(key, member->type(), Type::kBool);
  return member->as_bool();
}

Result<int64_t> Json::GetInt(std::string_view key) const {
  HML_ASSIGN_OR_RETURN(const Json* member, Get(key));
  if (!member->is_int()) return WrongType(key, member->type(), Type::kInt);
  return member->as_int();
}

Result<std::string> Json::GetString(std::string_view key) const {
  HML_ASSIGN_OR_RETURN(const Json* member, Get(key));
  if (!member->is_string()) return WrongType(key, member->type(), Type::kString);
  return member->as_string();
}

Result<const Json::Array*> Json::GetArray(std::string_view key) const {
  HML_ASSIGN_OR_RETURN(const Json* member, Get(key));
  if (!member->is_array()) return WrongType(key, member->type(), Type::kArray);
  return &member->as_array();
}

Result<const Json::Object*> Json::GetObject(std::string_view key) const {
  HML_ASSIGN_OR_RETURN(const Json* member, Get(key));
  if (!member->is_object()) return WrongType(key, member->type(), Type::kObject);
  return &member->as_object();
}

std::string_view JsonTypeName(Json::Type type) {
  switch (type) {
    case Json::Type::kNull:
      return "null";
    case Json::Type::kBool:
      return "bool";
    case Json::Type::kInt:
      return "integer";
    case Json::Type::kString:
      return "string";
    case Json::Type::kArray:
      return "array";
    case Json::Type::kObject:
      return "object";
  }
  return "unknown";
}

Result<Json> ParseJson(std::string_view text, const JsonLimits& limits) {
  return Parser(text, limits).ParseDocument();
}

std::string CanonicalJson(const Json& value) {
  std::string out;
  AppendCanonical(value, out);
  return out;
}

std::string PrettyJson(const Json& value, int indent) {
  std::string out;
  AppendPretty(value, 0, indent < 0 ? 0 : indent, out);
  return out;
}

}  // namespace hml::ota

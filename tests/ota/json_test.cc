// Copyright hybridml authors. Licensed under the Apache License 2.0.
#include "src/ota/json.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

namespace hml::ota {
namespace {

using ::testing::HasSubstr;
using namespace std::string_literals;

constexpr int64_t kInt64Min = std::numeric_limits<int64_t>::min();
constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();

// Parses `text`, which must succeed.
Json MustParse(std::string_view text) {
  Result<Json> r = ParseJson(text);
  EXPECT_TRUE(r.ok()) << r.status().ToString() << " for input: " << text;
  return r.ok() ? *r : Json();
}

// Parses `text`, which must fail; returns the error.
Status ParseError(std::string_view text, const JsonLimits& limits = {}) {
  Result<Json> r = ParseJson(text, limits);
  EXPECT_FALSE(r.ok()) << "parsed: " << text;
  return r.ok() ? Status::Ok() : r.status();
}

// One rejected input: the text, a substring of the message and the byte offset it must name.
struct Rejection {
  std::string text;
  std::string message;
  size_t offset;
};

void ExpectRejections(const std::vector<Rejection>& cases) {
  for (const Rejection& c : cases) {
    SCOPED_TRACE("input: " + c.text);
    const Status s = ParseError(c.text);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(s.message()), HasSubstr(c.message));
    EXPECT_THAT(std::string(s.message()), HasSubstr("at byte " + std::to_string(c.offset)));
  }
}

// --- Json value and accessors ---

TEST(JsonTest, TypeNames) {
  EXPECT_EQ(JsonTypeName(Json::Type::kNull), "null");
  EXPECT_EQ(JsonTypeName(Json::Type::kBool), "bool");
  EXPECT_EQ(JsonTypeName(Json::Type::kInt), "integer");
  EXPECT_EQ(JsonTypeName(Json::Type::kString), "string");
  EXPECT_EQ(JsonTypeName(Json::Type::kArray), "array");
  EXPECT_EQ(JsonTypeName(Json::Type::kObject), "object");
  EXPECT_EQ(Json().type(), Json::Type::kNull);
  EXPECT_EQ(Json(int64_t{7}).type(), Json::Type::kInt);
  EXPECT_EQ(Json("x").type(), Json::Type::kString);
}

TEST(JsonTest, FindAndSubscript) {
  Json j;
  EXPECT_EQ(j.Find("a"), nullptr);  // null is not an object
  j["a"] = 1;                       // null becomes an object
  ASSERT_TRUE(j.is_object());
  j["b"]["c"] = "deep";
  EXPECT_TRUE(j["z"].is_null());  // created as null
  EXPECT_EQ(j.as_object().size(), 3u);

  ASSERT_NE(j.Find("a"), nullptr);
  EXPECT_EQ(j.Find("a")->as_int(), 1);
  EXPECT_EQ(j.Find("missing"), nullptr);
  ASSERT_NE(j.Find("b"), nullptr);
  EXPECT_EQ(j.Find("b")->Find("c")->as_string(), "deep");
  EXPECT_EQ(Json(Json::Array{1, 2}).Find("a"), nullptr);
  EXPECT_EQ(Json("a").Find("a"), nullptr);
}

TEST(JsonTest, TypedGettersReturnMembers) {
  const Json j =
      MustParse(R"({"b": true, "i": -5, "s": "text", "a": [1, "x"], "o": {"k": null}, "n": null})");
  EXPECT_EQ(*j.GetBool("b"), true);
  EXPECT_EQ(*j.GetInt("i"), -5);
  EXPECT_EQ(*j.GetString("s"), "text");
  ASSERT_TRUE(j.GetArray("a").ok());
  EXPECT_EQ(**j.GetArray("a"), (Json::Array{1, "x"}));
  ASSERT_TRUE(j.GetObject("o").ok());
  EXPECT_EQ((*j.GetObject("o"))->size(), 1u);
  ASSERT_TRUE(j.Get("n").ok());
  EXPECT_TRUE((*j.Get("n"))->is_null());
}

TEST(JsonTest, TypedGettersNameTheKeyAndTheTypes) {
  const Json j = MustParse(R"({"version": "1", "n": null, "list": [], "obj": {}, "flag": 0})");
  auto expect = [](const Status& s, std::string_view message) {
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(s.message(), message);
  };
  expect(j.GetInt("version").status(), "'version' is a string, expected an integer");
  expect(j.GetString("n").status(), "'n' is null, expected a string");
  expect(j.GetObject("list").status(), "'list' is an array, expected an object");
  expect(j.GetArray("obj").status(), "'obj' is an object, expected an array");
  expect(j.GetBool("flag").status(), "'flag' is an integer, expected a bool");
  expect(j.GetInt("expires").status(), "missing key 'expires'");
  expect(j.Get("expires").status(), "missing key 'expires'");
  expect(j.GetString("expires").status(), "missing key 'expires'");
  expect(Json(Json::Array{}).GetInt("version").status(),
         "cannot read 'version' from an array, expected an object");
  expect(Json(true).GetBool("x").status(), "cannot read 'x' from a bool, expected an object");
}

// --- ParseJson: accepted input ---

TEST(ParseJsonTest, ParsesEveryType) {
  EXPECT_EQ(MustParse("null"), Json());
  EXPECT_EQ(MustParse("true"), Json(true));
  EXPECT_EQ(MustParse("false"), Json(false));
  EXPECT_EQ(MustParse("42"), Json(42));
  EXPECT_EQ(MustParse("\"s\""), Json("s"));
  EXPECT_EQ(MustParse("[]"), Json(Json::Array{}));
  EXPECT_EQ(MustParse("{}"), Json(Json::Object{}));
  const Json j = MustParse(" \t\r\n{ \"a\" : [ 1 , true , null , \"x\" , { } ] }\n ");
  EXPECT_EQ(j, Json(Json::Object{{"a", Json::Array{1, true, nullptr, "x", Json::Object{}}}}));
  // A bool is not an integer and an integer is not a bool.
  EXPECT_NE(MustParse("1"), Json(true));
  EXPECT_NE(MustParse("0"), Json(false));
}

TEST(ParseJsonTest, Int64BoundsAndOverflowByOne) {
  EXPECT_EQ(MustParse("9223372036854775807").as_int(), kInt64Max);
  EXPECT_EQ(MustParse("-9223372036854775808").as_int(), kInt64Min);
  EXPECT_EQ(MustParse("0").as_int(), 0);
  EXPECT_EQ(MustParse("-0").as_int(), 0);
  EXPECT_EQ(MustParse("-1").as_int(), -1);
  ExpectRejections({
      {"9223372036854775808", "integer 9223372036854775808 does not fit in int64", 0},
      {"-9223372036854775809", "integer -9223372036854775809 does not fit in int64", 0},
      {"[1, 99999999999999999999999]", "does not fit in int64", 4},
      {"18446744073709551616", "does not fit in int64", 0},  // 2^64 wraps uint64
  });
}

TEST(ParseJsonTest, DecodesEscapes) {
  EXPECT_EQ(MustParse(R"("\"\\\/\b\f\n\r\t")").as_string(), "\"\\/\b\f\n\r\t");
  EXPECT_EQ(MustParse(R"("\u0041\u00e9\u20AC")").as_string(), "A\xc3\xa9\xe2\x82\xac");
  EXPECT_EQ(MustParse(R"("a\u0000b")").as_string(), "a\0b"s);
  EXPECT_EQ(MustParse(R"("\u001f\u007f")").as_string(), "\x1f\x7f");
}

TEST(ParseJsonTest, DecodesSurrogatePairsToUtf8) {
  // U+1F600 and U+1D11E, with lower- and upper-case hex digits.
  EXPECT_EQ(MustParse(R"("\ud83d\ude00")").as_string(), "\xf0\x9f\x98\x80");
  EXPECT_EQ(MustParse(R"("\uD834\uDD1E")").as_string(), "\xf0\x9d\x84\x9e");
  // The extremes: U+10000 and U+10FFFF.
  EXPECT_EQ(MustParse(R"("\ud800\udc00")").as_string(), "\xf0\x90\x80\x80");
  EXPECT_EQ(MustParse(R"("\udbff\udfff")").as_string(), "\xf4\x8f\xbf\xbf");
}

TEST(ParseJsonTest, AcceptsValidUtf8AtTheBoundaries) {
  for (const std::string& s :
       {"\xc2\x80"s, "\xdf\xbf"s, "\xe0\xa0\x80"s, "\xed\x9f\xbf"s, "\xee\x80\x80"s,
        "\xef\xbf\xbf"s, "\xf0\x90\x80\x80"s, "\xf4\x8f\xbf\xbf"s, "\x7f"s}) {
    EXPECT_EQ(MustParse("\"" + s + "\"").as_string(), s);
  }
}

// --- ParseJson: rejected input ---

TEST(ParseJsonTest, RejectsLeadingZeros) {
  EXPECT_EQ(MustParse("[0]"), Json(Json::Array{0}));
  ExpectRejections({
      {"01", "leading zero", 0},
      {"-01", "leading zero", 0},
      {"[1, 00]", "leading zero", 4},
  });
}

TEST(ParseJsonTest, RejectsFractionsAndExponents) {
  ExpectRejections({
      {"1.5", "fraction or exponent, only integers are allowed", 0},
      {"1.0", "fraction or exponent", 0},
      {"-0.0", "fraction or exponent", 0},
      {"1e3", "fraction or exponent", 0},
      {"1E3", "fraction or exponent", 0},
      {"{\"a\": 2e-1}", "fraction or exponent", 6},
  });
}

TEST(ParseJsonTest, RejectsMalformedNumbers) {
  ExpectRejections({
      {"-", "'-' must be followed by a digit", 0},
      {"[-a]", "'-' must be followed by a digit", 1},
      {"+1", "unexpected character '+'", 0},
      {".5", "unexpected character '.'", 0},
      {"0x10", "unexpected data after the value", 1},
      {"NaN", "unexpected character 'N'", 0},
  });
}

TEST(ParseJsonTest, RejectsLoneSurrogatesAndBadEscapes) {
  ExpectRejections({
      {R"("\ud800")", "lone high surrogate", 1},
      {R"("ab\ud800x")", "lone high surrogate", 3},
      {R"("\udc00")", "lone low surrogate", 1},
      {R"("\ud800\u0041")", "not followed by a low surrogate", 1},
      {R"("\ud800\ud800")", "not followed by a low surrogate", 1},
      {R"("\ud800\u12")", "\\u escape needs four hex digits", 7},
      {R"("\x")", "invalid escape '\\x'", 1},
      {R"("\u12")", "\\u escape needs four hex digits", 1},
      {R"("\u12g4")", "\\u escape needs four hex digits", 1},
      {"\"\\u12", "truncated \\u escape", 1},
      {"\"\\", "unterminated escape", 1},
  });
}

TEST(ParseJsonTest, RejectsInvalidUtf8) {
  // Each sequence sits at byte 3 of "\"ab<sequence>\"".
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"\xc0\x80", "overlong"},                 // U+0000 in two bytes
      {"\xc1\xbf", "overlong"},                 // U+007F in two bytes
      {"\xe0\x80\x80", "overlong"},             // three bytes for U+0000
      {"\xe0\x9f\xbf", "overlong"},             // U+07FF in three bytes
      {"\xf0\x80\x80\x80", "overlong"},         // four bytes for U+0000
      {"\xf0\x8f\xbf\xbf", "overlong"},         // U+FFFF in four bytes
      {"\xed\xa0\x80", "encoded surrogate"},    // U+D800
      {"\xed\xbf\xbf", "encoded surrogate"},    // U+DFFF
      {"\xf4\x90\x80\x80", "beyond U+10FFFF"},  // U+110000
      {"\xf5\x80\x80\x80", "beyond U+10FFFF"},
      {"\xff", "beyond U+10FFFF"},
      {"\x80", "unexpected continuation byte 0x80"},
      {"\xbf", "unexpected continuation byte 0xbf"},
      {"\xe2\x82", "incomplete sequence"},  // the closing quote is no continuation byte
      {"\xc3"
       "a",
       "incomplete sequence"},
      {"\xf0\x9f\x98", "incomplete sequence"},
  };
  for (const auto& [sequence, message] : cases) {
    SCOPED_TRACE(message);
    const Status s = ParseError("\"ab" + sequence + "\"");
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(s.message()), HasSubstr("invalid UTF-8: "));
    EXPECT_THAT(std::string(s.message()), HasSubstr(message));
    EXPECT_THAT(std::string(s.message()), HasSubstr("at byte 3"));
  }
  // A sequence cut off by the end of the text.
  ExpectRejections({{"\"\xe2\x82", "incomplete sequence", 1}});
  // Invalid UTF-8 in a key is rejected too.
  ExpectRejections({{"{\"\xc0\xaf\": 1}", "overlong", 2}});
}

TEST(ParseJsonTest, RejectsUnescapedControlCharacters) {
  ExpectRejections({
      {"\"a\nb\"", "unescaped control character 0x0a in a string", 2},
      {"\"\t\"", "unescaped control character 0x09", 1},
      {"\"\x01\"", "unescaped control character 0x01", 1},
      {"\"xy\x1f\"", "unescaped control character 0x1f", 3},
      {"\"\0\""s, "unescaped control character 0x00", 1},
  });
}

TEST(ParseJsonTest, RejectsDuplicateKeys) {
  ExpectRejections({
      {R"({"a":1,"a":2})", "duplicate object key 'a'", 7},
      {R"({"x": {"k": 1, "k": 1}})", "duplicate object key 'k'", 15},
      // The same key after decoding escapes is the same key.
      {R"({"a":1,"\u0061":2})", "duplicate object key 'a'", 7},
  });
  // Equal keys in different objects are fine.
  EXPECT_EQ(MustParse(R"({"a": {"a": 1}})"), Json(Json::Object{{"a", Json::Object{{"a", 1}}}}));
}

TEST(ParseJsonTest, RejectsSyntaxErrors) {
  ExpectRejections({
      {"", "unexpected end of input", 0},
      {"   ", "unexpected end of input", 3},
      {"[1,]", "unexpected character ']', expected a value", 3},
      {"[1 2]", "expected ',' or ']' in an array", 3},
      {"[1", "unexpected end of input in an array", 2},
      {"[", "unexpected end of input, expected a value", 1},
      {"{\"a\" 1}", "expected ':' after a key", 5},
      {"{a:1}", "unexpected character 'a', expected a string key", 1},
      {"{\"a\":1,}", "expected a string key", 7},
      {"{\"a\":1 \"b\":2}", "expected ',' or '}' in an object", 7},
      {"{\"a\":1", "unexpected end of input in an object", 6},
      {"{\"a\":}", "expected a value", 5},
      {"tru", "invalid literal, expected 'true'", 0},
      {"nul", "invalid literal, expected 'null'", 0},
      {"fals", "invalid literal, expected 'false'", 0},
      {"True", "unexpected character 'T'", 0},
      {"\"abc", "unterminated string", 0},
      {"'a'", "unexpected character '''", 0},
      {"1 2", "unexpected data after the value", 2},
      {"{}x", "unexpected data after the value", 2},
      {"[1]]", "unexpected data after the value", 3},
      {"\"a\" \"b\"", "unexpected data after the value", 4},
      {"\xef\xbb\xbf"
       "1",
       "unexpected byte 0xef", 0},         // a byte order mark is not JSON
      {"\f1", "unexpected byte 0x0c", 0},  // form feed is not JSON whitespace
  });
}

// --- ParseJson: limits ---

TEST(ParseJsonTest, MaxBytesIsCheckedFirst) {
  JsonLimits limits;
  limits.max_bytes = 10;
  EXPECT_TRUE(ParseJson("[1,2,3,45]", limits).ok());  // exactly 10 bytes
  // 11 bytes of garbage: the size is reported, not the syntax.
  const Status s = ParseError("xxxxxxxxxxx", limits);
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(s.message()), HasSubstr("text of 11 bytes exceeds max_bytes 10"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("at byte 10"));
  // Trailing whitespace counts.
  EXPECT_EQ(ParseError("[1,2,3,45] ", limits).code(), StatusCode::kResourceExhausted);
}

TEST(ParseJsonTest, MaxDepthCountsArraysAndObjects) {
  // 64 levels (the default) parse.
  const std::string ok_arrays = std::string(64, '[') + std::string(64, ']');
  EXPECT_TRUE(ParseJson(ok_arrays).ok());
  // 65 levels do not; the offset is the '[' that opens level 65.
  const std::string deep_arrays = std::string(65, '[') + std::string(65, ']');
  Status s = ParseError(deep_arrays);
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(s.message()), HasSubstr("nesting deeper than max_depth 64 at byte 64"));

  // Objects count too: {"a":{"a":[...]}} with depth 3.
  JsonLimits limits;
  limits.max_depth = 2;
  EXPECT_TRUE(ParseJson(R"({"a":{"a":1}})", limits).ok());
  s = ParseError(R"({"a":{"a":[]}})", limits);
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(s.message()), HasSubstr("max_depth 2 at byte 10"));

  // max_depth 0 allows only scalars.
  limits.max_depth = 0;
  EXPECT_TRUE(ParseJson("7", limits).ok());
  EXPECT_EQ(ParseError("[]", limits).code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(ParseError("{}", limits).code(), StatusCode::kResourceExhausted);
}

TEST(ParseJsonTest, DeepInputStopsAtMaxDepthWithoutExhaustingTheStack) {
  // A megabyte of '[' (and of '{"a":'): were recursion not stopped at max_depth, this would need a
  // million stack frames.
  const std::string arrays(1 << 20, '[');
  Status s = ParseError(arrays);
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(s.message()), HasSubstr("at byte 64"));

  std::string objects;
  for (int i = 0; i < 200000; ++i) objects += "{\"a\":";
  s = ParseError(objects);
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(s.message()), HasSubstr("at byte 320"));  // 64 * 5
}

// --- CanonicalJson ---

TEST(CanonicalJsonTest, KnownNestedValue) {
  Json root;
  root["signed"]["_type"] = "targets";
  root["signed"]["version"] = int64_t{3};
  root["signed"]["targets"]["model.onnx"]["length"] = 1024;
  root["signed"]["targets"]["model.onnx"]["hashes"]["sha256"] = "ab12";
  root["signed"]["expires"] = "2030-01-01T00:00:00Z";
  root["signed"]["delegations"] = nullptr;
  root["signed"]["flags"] = Json::Array{true, false, -7, Json::Array{}, Json::Object{}};
  root["signatures"] = Json::Array{Json::Object{{"keyid", "k1"}, {"sig", "00ff"}}};
  EXPECT_EQ(CanonicalJson(root),
            R"({"signatures":[{"keyid":"k1","sig":"00ff"}],)"
            R"("signed":{"_type":"targets","delegations":null,"expires":"2030-01-01T00:00:00Z",)"
            R"("flags":[true,false,-7,[],{}],)"
            R"("targets":{"model.onnx":{"hashes":{"sha256":"ab12"},"length":1024}},)"
            R"("version":3}})");
}

TEST(CanonicalJsonTest, SortsKeysByBytes) {
  const Json j = MustParse(R"({"b": 1, "a": 2, "B": 3, "aa": 4, "_": 5, "\u00e9": 6, "z": 7})");
  // 'B' (0x42) < '_' (0x5f) < 'a' < "aa" < 'b' < 'z' < 0xc3 0xa9: bytes compare unsigned.
  EXPECT_EQ(CanonicalJson(j), "{\"B\":3,\"_\":5,\"a\":2,\"aa\":4,\"b\":1,\"z\":7,\"\xc3\xa9\":6}");
}

TEST(CanonicalJsonTest, EscapesOnlyQuoteAndBackslash) {
  const Json j(
      "q\"b\\s/n\nt\tc\x01"
      "d\x7f"
      "e\xc3\xa9z\0"s);
  EXPECT_EQ(CanonicalJson(j),
            "\"q\\\"b\\\\s/n\nt\tc\x01"
            "d\x7f"
            "e\xc3\xa9z\0\""s);
  // Keys are escaped the same way.
  EXPECT_EQ(CanonicalJson(Json(Json::Object{{"k\"\\", 1}})), R"({"k\"\\":1})");
}

TEST(CanonicalJsonTest, Integers) {
  EXPECT_EQ(CanonicalJson(Json(Json::Array{0, -1, 10, kInt64Min, kInt64Max})),
            "[0,-1,10,-9223372036854775808,9223372036854775807]");
  EXPECT_EQ(CanonicalJson(MustParse("-0")), "0");
}

TEST(CanonicalJsonTest, RoundTripsThroughParse) {
  const std::string text = R"(
    { "z" : [ 1, -2, { "y": "\u00e9\ud83d\ude00 \" \\ /" } ],
      "a" : { "c" : true, "b" : false, "n": null },
      "big": 9223372036854775807, "small": -9223372036854775808, "e": "", "arr": [] }
  )";
  const Json parsed = MustParse(text);
  const std::string canonical = CanonicalJson(parsed);
  EXPECT_EQ(canonical,
            "{\"a\":{\"b\":false,\"c\":true,\"n\":null},\"arr\":[],"
            "\"big\":9223372036854775807,\"e\":\"\",\"small\":-9223372036854775808,"
            "\"z\":[1,-2,{\"y\":\"\xc3\xa9\xf0\x9f\x98\x80 \\\" \\\\ /\"}]}");
  const Json reparsed = MustParse(canonical);
  EXPECT_EQ(reparsed, parsed);
  EXPECT_EQ(CanonicalJson(reparsed), canonical);  // a fixed point
}

TEST(CanonicalJsonTest, ControlCharactersStayRawSoTheFormIsNotStrictJson) {
  // securesystemslib's canonical form writes a newline as is; strict JSON forbids that, so
  // canonical bytes are for signing, and PrettyJson is the form to parse back.
  const std::string canonical = CanonicalJson(MustParse(R"(["a\nb"])"));
  EXPECT_EQ(canonical, "[\"a\nb\"]");
  EXPECT_THAT(std::string(ParseError(canonical).message()),
              HasSubstr("unescaped control character 0x0a"));
}

// --- PrettyJson ---

TEST(PrettyJsonTest, Layout) {
  const Json j(Json::Object{{"b", Json::Array{1, "x\n\x01"}},
                            {"a", Json::Object{}},
                            {"c", Json::Array{}},
                            {"d", Json::Object{{"e", nullptr}}}});
  EXPECT_EQ(PrettyJson(j),
            "{\n"
            "  \"a\": {},\n"
            "  \"b\": [\n"
            "    1,\n"
            "    \"x\\n\\u0001\"\n"
            "  ],\n"
            "  \"c\": [],\n"
            "  \"d\": {\n"
            "    \"e\": null\n"
            "  }\n"
            "}");
  EXPECT_EQ(PrettyJson(Json(Json::Array{true}), 4), "[\n    true\n]");
  EXPECT_EQ(PrettyJson(Json(Json::Array{true}), 0), "[\ntrue\n]");
  EXPECT_EQ(PrettyJson(Json(-3)), "-3");
}

TEST(PrettyJsonTest, RoundTripsEveryAsciiByteAndUtf8) {
  // Every byte below 0x80, NUL included, in a value and in a key, plus multi-byte UTF-8.
  std::string all;
  for (int c = 0; c < 0x80; ++c) all.push_back(static_cast<char>(c));
  all += "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";
  Json j;
  j[all] = all;
  j["list"] = Json::Array{all,     kInt64Min, kInt64Max,
                          nullptr, false,     Json::Array{Json(Json::Array{}), Json::Object{}}};
  j["nested"]["\t"] = Json::Object{{"\x1f", "\b\f\r"}};
  for (int indent : {0, 2, 4}) {
    SCOPED_TRACE(indent);
    const std::string pretty = PrettyJson(j, indent);
    // Only the layout's newlines are raw; string contents are escaped.
    EXPECT_EQ(pretty.find('\x01'), std::string::npos);
    EXPECT_THAT(pretty, HasSubstr("\\u0000\\u0001"));
    EXPECT_THAT(pretty, HasSubstr("\\b\\t\\n\\u000b\\f\\r"));
    Result<Json> back = ParseJson(pretty);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(*back, j);
  }
}

}  // namespace
}  // namespace hml::ota

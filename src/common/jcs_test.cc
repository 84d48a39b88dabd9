#include "common/jcs.h"

#include <gtest/gtest.h>

#include <bit>
#include <cstdint>

namespace custody {
namespace {

// RFC 8785 Appendix B: IEEE 754 bit patterns and their ECMAScript serializations.
TEST(JcsTest, Rfc8785NumberVectors) {
  struct Case {
    uint64_t bits;
    const char* text;
  };
  const Case cases[] = {
      {0x0000000000000000, "0"},
      {0x8000000000000000, "0"},
      {0x0000000000000001, "5e-324"},
      {0x8000000000000001, "-5e-324"},
      {0x7fefffffffffffff, "1.7976931348623157e+308"},
      {0xffefffffffffffff, "-1.7976931348623157e+308"},
      {0x4340000000000000, "9007199254740992"},
      {0xc340000000000000, "-9007199254740992"},
      {0x4430000000000000, "295147905179352830000"},
      {0x44b52d02c7e14af5, "9.999999999999997e+22"},
      {0x44b52d02c7e14af6, "1e+23"},
      {0x44b52d02c7e14af7, "1.0000000000000001e+23"},
      {0x444b1ae4d6e2ef4e, "999999999999999700000"},
      {0x444b1ae4d6e2ef4f, "999999999999999900000"},
      {0x444b1ae4d6e2ef50, "1e+21"},
      {0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"},
      {0x3eb0c6f7a0b5ed8d, "0.000001"},
      {0x41b3de4355555553, "333333333.3333332"},
      {0x41b3de4355555554, "333333333.33333325"},
      {0x41b3de4355555555, "333333333.3333333"},
      {0x41b3de4355555556, "333333333.3333334"},
      {0x41b3de4355555557, "333333333.33333343"},
      {0xbecbf647612f3696, "-0.0000033333333333333333"},
      {0x43143ff3c1cb0959, "1424953923781206.2"},
  };
  for (const Case& c : cases) {
    double d = std::bit_cast<double>(c.bits);
    EXPECT_EQ(SerializeJcsNumber(d), c.text) << std::hex << c.bits;
    // Parsing the serialization must give the same canonical text back.
    auto again = CanonicalizeJson(c.text);
    ASSERT_TRUE(again.ok()) << c.text;
    EXPECT_EQ(*again, c.text);
  }
}

// RFC 8785 §3.2.2 example.
TEST(JcsTest, Rfc8785SerializationExample) {
  const char* in = R"({
  "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
  "literals": [null, true, false]
})";
  auto out = CanonicalizeJson(in);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(*out,
            "{\"literals\":[null,true,false],\"numbers\":[333333333.3333333,1e+30,4.5,0.002,1e-27],"
            "\"string\":\"\xE2\x82\xAC$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}");
}

// RFC 8785 §3.2.3: members sort by UTF-16 code units, not by UTF-8 bytes or code points.
TEST(JcsTest, Rfc8785SortingExample) {
  const char* in = R"({
  "\u20ac": "Euro Sign",
  "\r": "Carriage Return",
  "\ufb33": "Hebrew Letter Dalet With Dagesh",
  "1": "One",
  "\ud83d\ude00": "Emoji: Grinning Face",
  "\u0080": "Control",
  "\u00f6": "Latin Small Letter O With Diaeresis"
})";
  auto out = CanonicalizeJson(in);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(*out,
            "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\xC2\x80\":\"Control\","
            "\"\xC3\xB6\":\"Latin Small Letter O With Diaeresis\",\"\xE2\x82\xAC\":\"Euro Sign\","
            "\"\xF0\x9F\x98\x80\":\"Emoji: Grinning Face\","
            "\"\xEF\xAC\xB3\":\"Hebrew Letter Dalet With Dagesh\"}");
}

TEST(JcsTest, NestedStructuresAndWhitespace) {
  auto out = CanonicalizeJson(" { \"b\" : [ 1 , {\"z\":1,\"a\":2} ], \"a\" : {} , \"c\":[]} ");
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(*out, R"({"a":{},"b":[1,{"a":2,"z":1}],"c":[]})");
  EXPECT_EQ(*CanonicalizeJson("12345678901234567890"), "12345678901234567000");
  EXPECT_EQ(*CanonicalizeJson("-0.0"), "0");
  EXPECT_EQ(*CanonicalizeJson("1e-400"), "0");  // underflow rounds to zero as in ECMAScript
}

TEST(JcsTest, RejectsWhatIJsonForbids) {
  const char* bad[] = {
      "",                         // nothing
      "{\"a\":1,\"a\":2}",        // duplicate names
      "{\"a\":1,\"\\u0061\":2}",  // duplicate after unescaping
      "[1,]",                     // trailing comma
      "01",                       // leading zero
      "1.",                       // bare dot
      "1e999",                    // overflow
      "NaN",
      "\"\\ud800\"",       // lone high surrogate
      "\"\\udc00\"",       // lone low surrogate
      "\"\xC0\xAF\"",      // overlong UTF-8
      "\"\xED\xA0\x80\"",  // UTF-8-encoded surrogate
      "\"a\nb\"",          // raw control character
      "\"\\x\"",           // bad escape
      "{\"a\" 1}",
      "[1] [2]",  // trailing data
      "tru",
  };
  for (const char* b : bad) {
    auto r = CanonicalizeJson(b);
    EXPECT_FALSE(r.ok()) << "accepted: " << b;
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    }
  }
}

// Strings are copied in runs of bytes that stand for themselves; an escape, a multi-byte
// character or an error at either end of a run, or between two, must not lose or move a byte.
TEST(JcsTest, StringsKeepEveryByteAroundEscapesAndUtf8) {
  const std::string pad(300, 'x');
  auto canon = [](const std::string& json) {
    auto r = CanonicalizeJson(json);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : std::string();
  };
  EXPECT_EQ(canon("\"" + pad + "\""), "\"" + pad + "\"");
  EXPECT_EQ(canon("\"\\n" + pad + "\\u0001\""), "\"\\n" + pad + "\\u0001\"");
  EXPECT_EQ(canon("\"" + pad + "\xC3\xB6" + pad + "\\/\\\"" + pad + "\""),
            "\"" + pad + "\xC3\xB6" + pad + "/\\\"" + pad + "\"");
  EXPECT_EQ(canon("\"a\x7F\xE2\x82\xAC\xE2\x82\xAC\\\\b\""),
            "\"a\x7F\xE2\x82\xAC\xE2\x82\xAC\\\\b\"");
  EXPECT_EQ(canon("{\"" + pad + "\\t\":\"\\u00e9" + pad + "\"}"),
            "{\"" + pad + "\\t\":\"\xC3\xA9" + pad + "\"}");
  // An error right after a run names its offset: the opening quote, 300 bytes, then the error.
  auto r = CanonicalizeJson("\"" + pad + "\n\"");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("offset 301: unescaped control"), std::string::npos)
      << r.status().message();
  r = CanonicalizeJson("\"" + pad + "\xC0\xAF\"");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("offset 301"), std::string::npos) << r.status().message();
  r = CanonicalizeJson("\"" + pad);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("unterminated string"), std::string::npos);
}

TEST(JcsTest, AppendJcsStringEscapesOnlyWhatItMust) {
  std::string out = "prefix:";
  AppendJcsString(
      std::string(200, 'y') + "\"\\\x01\x1F\x7F\xF0\x9F\x98\x80\b\f\n\r\t" + std::string(200, 'z'),
      out);
  EXPECT_EQ(out, "prefix:\"" + std::string(200, 'y') +
                     "\\\"\\\\\\u0001\\u001f\x7F\xF0\x9F\x98\x80\\b\\f\\n\\r\\t" +
                     std::string(200, 'z') + "\"");
  out.clear();
  AppendJcsString("", out);
  EXPECT_EQ(out, "\"\"");
}

TEST(JcsTest, BoundsNestingDepth) {
  std::string deep(kJcsMaxDepth, '[');
  deep += std::string(kJcsMaxDepth, ']');
  EXPECT_TRUE(CanonicalizeJson(deep).ok());
  std::string too_deep(100000, '[');
  too_deep += std::string(100000, ']');
  auto r = CanonicalizeJson(too_deep);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("nesting too deep"), std::string::npos);
}

TEST(JcsTest, ErrorNamesOffset) {
  auto r = CanonicalizeJson("{\"a\": tru}");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("offset 6"), std::string::npos) << r.status().message();
}

}  // namespace
}  // namespace custody

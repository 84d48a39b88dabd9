#include "common/jcs_value.h"

#include <gtest/gtest.h>

#include <bit>
#include <boost/json.hpp>
#include <cstdint>
#include <limits>
#include <string>

#include "common/jcs.h"

namespace custody {
namespace {

namespace json = boost::json;

// The walk must give exactly the bytes of print-then-parse, which is what the ledger stored
// before (and what anyone re-canonicalizing an event gets).
void ExpectSameAsParse(const json::value& v) {
  auto walked = CanonicalizeJsonValue(v);
  auto parsed = CanonicalizeJson(json::serialize(v));
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  ASSERT_TRUE(walked.ok()) << walked.status().ToString();
  EXPECT_EQ(*walked, *parsed) << json::serialize(v);
}

TEST(JcsValueTest, SameBytesAsCanonicalizingTheText) {
  const char* texts[] = {
      // RFC 8785 §3.2.2 and §3.2.3 examples.
      R"({"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
          "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
          "literals": [null, true, false]})",
      R"({"\u20ac": "Euro Sign", "\r": "Carriage Return", "\ufb33": "Hebrew", "1": "One",
          "\ud83d\ude00": "Emoji", "\u0080": "Control", "\u00f6": "o"})",
      R"({"b": [1, {"z": 1, "a": 2}], "a": {}, "c": [], "d": [[[]]], "e": ""})",
      R"({"kind": "action.decision", "time": "2026-11-22T13:49:40.178Z", "depth": 0,
          "ms": 1795355378123, "neg": -42, "big": 12345678901234567890, "tiny": 5e-324,
          "max": 1.7976931348623157e308, "frac": 0.1, "exp": 1e21, "ctl": "\u0001\u001f\t"})",
      R"([1, -0.0, 0, 9007199254740993, -9223372036854775808, 18446744073709551615])",
      R"("just a string")",
      R"(null)",
  };
  for (const char* t : texts) {
    SCOPED_TRACE(t);
    ExpectSameAsParse(json::parse(t));
  }
  // The RFC 8785 Appendix B doubles.
  for (uint64_t bits : {0x0000000000000001ull, 0x7fefffffffffffffull, 0x4340000000000000ull,
                        0x44b52d02c7e14af6ull, 0x444b1ae4d6e2ef50ull, 0x3eb0c6f7a0b5ed8cull,
                        0x41b3de4355555557ull, 0xbecbf647612f3696ull, 0x43143ff3c1cb0959ull}) {
    ExpectSameAsParse(json::value(std::bit_cast<double>(bits)));
  }
  // Values built in code, as events are.
  json::object e{{"z", json::array{1, 2.5, "x"}},
                 {"\xF0\x9F\x98\x80", true},
                 {"\xEF\xAC\xB3", nullptr},
                 {"a", json::object{{"nested", json::object{}}}}};
  ExpectSameAsParse(e);
  EXPECT_EQ(*CanonicalizeJsonValue(e),
            "{\"a\":{\"nested\":{}},\"z\":[1,2.5,\"x\"],\"\xF0\x9F\x98\x80\":true,"
            "\"\xEF\xAC\xB3\":null}");
}

TEST(JcsValueTest, RefusesWhatTheParserRefuses) {
  auto refused = [](const json::value& v) {
    auto r = CanonicalizeJsonValue(v);
    EXPECT_FALSE(r.ok()) << json::serialize(v);
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    }
    return r.ok() ? std::string() : r.status().message();
  };
  EXPECT_NE(refused(json::value(std::numeric_limits<double>::infinity())).find("not finite"),
            std::string::npos);
  refused(json::value(std::numeric_limits<double>::quiet_NaN()));
  EXPECT_NE(refused(json::string("\xC0\xAF")).find("UTF-8"), std::string::npos);   // overlong
  refused(json::string("\xED\xA0\x80"));                                           // surrogate
  refused(json::string("ab\xE2\x82"));                                             // truncated
  refused(json::object{{"\xFF", 1}});                                              // bad name
  refused(json::array{1, json::object{{"k", json::string("\xF4\x90\x80\x80")}}});  // > U+10FFFF
}

TEST(JcsValueTest, BoundsNestingDepthAsTheParserDoes) {
  auto nest = [](int levels) {
    json::value v = json::array{};
    for (int i = 1; i < levels; ++i) v = json::array{v};
    return v;
  };
  EXPECT_TRUE(CanonicalizeJsonValue(nest(kJcsMaxDepth)).ok());
  EXPECT_TRUE(CanonicalizeJson(json::serialize(nest(kJcsMaxDepth))).ok());
  auto r = CanonicalizeJsonValue(nest(kJcsMaxDepth + 1));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("nesting too deep"), std::string::npos);
  EXPECT_FALSE(CanonicalizeJson(json::serialize(nest(kJcsMaxDepth + 1))).ok());
}

}  // namespace
}  // namespace custody

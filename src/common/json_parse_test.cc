#include "common/json_parse.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <charconv>
#include <cmath>
#include <cstring>
#include <random>
#include <string>

namespace custody {
namespace {

namespace json = boost::json;

double FromChars(const std::string& s) {
  double d = 0;
  std::from_chars(s.data(), s.data() + s.size(), d);
  return d;
}

std::string Shortest(double d) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof(buf), d);
  return std::string(buf, r.ptr);
}

// The number the fuzzer found: Boost.JSON 1.81 reads it as 1.0000000186631377.
TEST(ParseJsonTest, ReadsASeventeenDigitNumberAsTheDoubleItNames) {
  json::value v = ParseJson(R"({"x":1.0000000186631375})");
  EXPECT_EQ(v.at("x").as_double(), FromChars("1.0000000186631375"));
  EXPECT_EQ(json::serialize(v), R"({"x":1.0000000186631375E0})");
}

// What a caller's JSON.stringify writes for any double reads back as that double, so it is
// recorded and forwarded as the caller sent it.
TEST(ParseJsonTest, EveryShortestDoubleTextReadsBackExactly) {
  std::mt19937_64 bits(7);
  int differs_in_boost = 0;
  for (int i = 0; i < 200000; ++i) {
    uint64_t b = bits();
    double d;
    std::memcpy(&d, &b, sizeof d);
    if (!std::isfinite(d)) continue;
    std::string text = "[" + Shortest(d) + "]";
    json::value v = ParseJson(text);
    const json::value& n = v.as_array()[0];
    double got = n.is_double() ? n.as_double() : n.to_number<double>();
    ASSERT_EQ(got, d) << text;
    json::value theirs = json::parse(text);
    const json::value& bn = theirs.as_array()[0];
    if ((bn.is_double() ? bn.as_double() : bn.to_number<double>()) != d) ++differs_in_boost;
  }
  // Not a property of ParseJson: shows what it corrects (Boost.JSON 1.81 on Debian 12).
  RecordProperty("boost_json_differs", differs_in_boost);
}

TEST(ParseJsonTest, IntegersStayIntegers) {
  json::value v = ParseJson(R"([0,-0,42,-9223372036854775808,18446744073709551615,1e2,-1.5])");
  const json::array& a = v.as_array();
  EXPECT_TRUE(a[0].is_int64());
  EXPECT_TRUE(a[1].is_int64());
  EXPECT_EQ(a[2].as_int64(), 42);
  EXPECT_EQ(a[3].as_int64(), INT64_MIN);
  EXPECT_EQ(a[4].as_uint64(), UINT64_MAX);
  EXPECT_EQ(a[5].as_double(), 100.0);
  EXPECT_EQ(a[6].as_double(), -1.5);
  // Beyond uint64: a double, read from its text.
  EXPECT_EQ(ParseJson("123456789012345678901234567").as_double(),
            FromChars("123456789012345678901234567"));
}

TEST(ParseJsonTest, ANumberBeyondADoubleKeepsBoostsReading) {
  EXPECT_EQ(ParseJson("[1e400]").as_array()[0], json::parse("[1e400]").as_array()[0]);
  EXPECT_TRUE(std::isinf(ParseJson("-1e400").as_double()));
  EXPECT_EQ(ParseJson("1e-400").as_double(), 0.0);
}

TEST(ParseJsonTest, StructureAndStringsAreBoostsOwn) {
  const std::string text =
      R"({"a":[1,2.5,"x\u00e9\n",true,false,null,{}],"b":{"c":[]},"k\"ey":"v"})";
  EXPECT_EQ(ParseJson(text), json::parse(text));
}

TEST(ParseJsonTest, MalformedTextIsAnErrorAsInBoost) {
  for (const char* bad : {"", "{", "[1,]", "{\"a\":1}x", "01", "1.", "-", "\"\\x\"", "nul", "[1e]",
                          "{\"a\" 1}", "\xff"}) {
    json::error_code ec, boost_ec;
    json::value v = ParseJson(bad, ec);
    json::parse(bad, boost_ec);
    EXPECT_TRUE(ec) << bad;
    EXPECT_TRUE(v.is_null()) << bad;
    EXPECT_EQ(ec, boost_ec) << bad;
  }
  EXPECT_THROW(ParseJson("[1,"), boost::system::system_error);
}

TEST(ParseJsonTest, TheOptionsApply) {
  json::parse_options shallow;
  shallow.max_depth = 2;
  json::error_code ec;
  ParseJson("[[[1]]]", ec, {}, shallow);
  EXPECT_EQ(ec, json::error::too_deep);
  ec = {};
  ParseJson("[[1.0000000186631375]]", ec, {}, shallow);
  EXPECT_FALSE(ec);
}

}  // namespace
}  // namespace custody

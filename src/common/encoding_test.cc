#include "common/encoding.h"

#include <gtest/gtest.h>

#include "common/utf8.h"

namespace custody {
namespace {

// RFC 4648 §10 test vectors.
TEST(EncodingTest, Rfc4648Vectors) {
  const char* in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
  const char* b64[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
  const char* hex[] = {"", "66", "666f", "666f6f", "666f6f62", "666f6f6261", "666f6f626172"};
  for (int i = 0; i < 7; ++i) {
    EXPECT_EQ(Base64Encode(std::string_view(in[i])), b64[i]);
    auto back = Base64Decode(b64[i]);
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(AsString(*back), in[i]);
    EXPECT_EQ(HexEncode(std::string_view(in[i])), hex[i]);
    EXPECT_EQ(AsString(*HexDecode(hex[i])), in[i]);
    std::string url = b64[i];
    while (!url.empty() && url.back() == '=') url.pop_back();
    EXPECT_EQ(Base64UrlEncode(std::string_view(in[i])), url);
    EXPECT_EQ(AsString(*Base64UrlDecode(url)), in[i]);
  }
}

TEST(EncodingTest, UrlAlphabet) {
  const uint8_t bytes[] = {0xfb, 0xff, 0xbf};
  EXPECT_EQ(Base64UrlEncode(bytes), "-_-_");
  EXPECT_EQ(Base64Encode(bytes), "+/+/");
}

TEST(EncodingTest, DecodersRejectMalformedInput) {
  EXPECT_FALSE(HexDecode("abc").ok());
  EXPECT_FALSE(HexDecode("zz").ok());
  EXPECT_FALSE(Base64Decode("Zm9").ok());       // missing padding
  EXPECT_FALSE(Base64Decode("Zm9v!A==").ok());  // bad character
  EXPECT_FALSE(Base64Decode("Zh==").ok());      // non-zero trailing bits
  EXPECT_FALSE(Base64UrlDecode("Zg==").ok());   // padding in base64url
  EXPECT_FALSE(Base64UrlDecode("Z").ok());      // impossible length
  EXPECT_FALSE(Base64UrlDecode("+/+/").ok());   // standard alphabet in base64url
  EXPECT_EQ(HexDecode("ABcd")->size(), 2u);
}

// RFC 3629's well-formed sequences only: overlong forms, surrogates and code points above
// U+10FFFF are not UTF-8, and each of their bytes becomes one U+FFFD.
TEST(Utf8Test, ValidationAndRepair) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain"));
  EXPECT_TRUE(IsValidUtf8("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"));  // é € 😀
  EXPECT_TRUE(IsValidUtf8("\xf4\x8f\xbf\xbf"));                      // U+10FFFF
  for (std::string_view bad : {"\xff", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80",
                               "\xf4\x90\x80\x80", "\xc3", "\xe2\x82", "a\x80z"}) {
    EXPECT_FALSE(IsValidUtf8(bad)) << bad.size();
  }
  EXPECT_EQ(ToValidUtf8("a\xffz"), "a\xEF\xBF\xBDz");
  EXPECT_EQ(ToValidUtf8("\xc3\xa9"), "\xc3\xa9");
  EXPECT_EQ(ToValidUtf8("\xe2\x82"), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_TRUE(IsValidUtf8(ToValidUtf8("\xed\xa0\x80\xc0\xaf\xff")));
}

}  // namespace
}  // namespace custody

// RS256 for trusted issuers' ID tokens: vectors made by the jose npm package
// (testdata/rs256_vectors.json, see tests/jose/make_rs256_vectors.mjs), and the refusals.
#include "crypto/rsa.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "common/encoding.h"
#include "crypto/jose.h"
#include "crypto/sha256.h"

namespace custody::crypto {
namespace {

namespace json = boost::json;

json::object LoadVectors() {
  const char* src = std::getenv("CUSTODY_SOURCE_DIR");
  std::string path = std::string(src ? src : ".") + "/src/crypto/testdata/rs256_vectors.json";
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "cannot open " << path << " (set CUSTODY_SOURCE_DIR)";
  std::stringstream ss;
  ss << in.rdbuf();
  return json::parse(ss.str()).as_object();
}

class Rs256Test : public ::testing::Test {
 protected:
  void SetUp() override {
    v_ = LoadVectors();
    auto set = Jwks::Parse(json::serialize(v_.at("jwks")));
    ASSERT_TRUE(set.ok()) << set.status().ToString();
    jwks_ = std::move(*set);
  }
  std::string Vec(std::string_view name) const { return std::string(v_.at(name).as_string()); }
  Result<VerifiedJws> Verify(const std::string& token,
                             JwsAlgorithms allowed = kTrustedIssuerAlgorithms) const {
    return VerifyJwsWithJwks(token, jwks_, allowed);
  }
  static std::string Part(std::string_view s) { return Base64UrlEncode(s); }

  json::object v_;
  Jwks jwks_;
};

TEST_F(Rs256Test, JwksHoldsRsaAndEcKeys) {
  EXPECT_EQ(jwks_.size(), 3u);
  ASSERT_NE(jwks_.FindRsa("rsa-2048"), nullptr);
  EXPECT_EQ(jwks_.FindRsa("rsa-2048")->bits(), 2048);
  EXPECT_EQ(jwks_.FindRsa("rsa-3072")->bits(), 3072);
  EXPECT_NE(jwks_.Find("ec-1"), nullptr);
  EXPECT_EQ(jwks_.Find("rsa-2048"), nullptr);  // kid names an RSA key, not an EC one
  EXPECT_EQ(jwks_.FindRsa("ec-1"), nullptr);
  // Our serialization parses back to the same keys.
  auto again = Jwks::Parse(jwks_.ToJson());
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->size(), 3u);
  EXPECT_EQ(again->FindRsa("rsa-2048")->n(), jwks_.FindRsa("rsa-2048")->n());
  EXPECT_EQ(again->FindRsa("rsa-2048")->e(), jwks_.FindRsa("rsa-2048")->e());
}

TEST_F(Rs256Test, JoseSignedTokensVerify) {
  for (const char* name : {"rs256_2048", "rs256_3072", "es256"}) {
    auto r = Verify(Vec(name));
    ASSERT_TRUE(r.ok()) << name << ": " << r.status().ToString();
    auto claims = json::parse(r->payload).as_object();
    EXPECT_EQ(claims.at("sub"), "alice@example.com") << name;
    EXPECT_EQ(r->typ, "JWT");
  }
  EXPECT_EQ(Verify(Vec("rs256_2048"))->alg, "RS256");
  EXPECT_EQ(Verify(Vec("rs256_2048"))->kid, "rsa-2048");
  EXPECT_EQ(Verify(Vec("es256"))->alg, "ES256");
}

TEST_F(Rs256Test, Rs256IsRefusedOutsideTheTrustedIssuerAllowList) {
  auto r = Verify(Vec("rs256_2048"), kCustodyAlgorithms);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnauthenticated);
  EXPECT_NE(r.status().message().find("not allowed"), std::string::npos);
  // Custody's own verifier (tokens, client assertions) never accepts RS256 either.
  auto own = VerifyJwsEs256(Vec("rs256_2048"), [](std::string_view) { return nullptr; });
  ASSERT_FALSE(own.ok());
  EXPECT_NE(own.status().message().find("not allowed"), std::string::npos);
}

TEST_F(Rs256Test, AlgNoneHs256AndPs256AreRefused) {
  std::string claims = Part(json::serialize(v_.at("claims")));
  std::string none = Part(R"({"alg":"none","kid":"rsa-2048"})") + "." + claims + ".";
  // HS256 "signed" with the RSA public key's modulus as the HMAC secret: never run.
  std::string hs = Part(R"({"alg":"HS256","kid":"rsa-2048"})") + "." + claims + "." +
                   Base64UrlEncode(Sha256(Base64UrlEncode(jwks_.FindRsa("rsa-2048")->n())));
  for (const std::string& t : {none, hs, Vec("ps256_2048")}) {
    auto r = Verify(t);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kUnauthenticated);
    EXPECT_NE(r.status().message().find("not allowed"), std::string::npos) << r.status().message();
  }
}

TEST_F(Rs256Test, AlgAndKeyTypeMustMatch) {
  // Correctly RS256-signed, but its kid names the EC key.
  auto r = Verify(Vec("rs256_with_ec_kid"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("not RSA"), std::string::npos) << r.status().message();
  // An ES256 header naming an RSA key, with the ES256 token's signature.
  std::string es = Vec("es256");
  std::string forged =
      Part(R"({"alg":"ES256","kid":"rsa-2048","typ":"JWT"})") + es.substr(es.find('.'));
  auto e = Verify(forged);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("not EC"), std::string::npos) << e.status().message();
  // A JWK whose alg contradicts its kty.
  EXPECT_FALSE(ParseRsaPublicJwk(R"({"kty":"RSA","alg":"ES256","n":"AQAB","e":"AQAB"})").ok());
  const json::object& ec = v_.at("jwks").at("keys").as_array()[2].as_object();
  json::object ec_as_rs = ec;
  ec_as_rs["alg"] = "RS256";
  EXPECT_FALSE(ParseEcPublicJwk(json::serialize(ec_as_rs)).ok());
}

TEST_F(Rs256Test, KeysUnder2048BitsAreRefused) {
  std::string small = json::serialize(v_.at("small_rsa_jwk"));
  auto k = ParseRsaPublicJwk(small);
  ASSERT_FALSE(k.ok());
  EXPECT_NE(k.status().message().find("1024 bits is too small"), std::string::npos)
      << k.status().message();
  EXPECT_FALSE(Jwks::Parse("{\"keys\":[" + small + "]}").ok());
  // And a token signed by it is not verified by a set that (rightly) does not hold it.
  EXPECT_FALSE(Verify(Vec("rs256_1024")).ok());
  // Directly: a 2047-bit modulus is refused, the exponent must be odd and >= 3.
  std::vector<uint8_t> n(256, 0xff);
  n[0] = 0x7f;  // 2047 bits
  std::vector<uint8_t> e = {0x01, 0x00, 0x01};
  EXPECT_FALSE(RsaPublicKey::FromComponents(n, e).ok());
  n[0] = 0xff;
  EXPECT_TRUE(RsaPublicKey::FromComponents(n, e).ok());
  EXPECT_FALSE(RsaPublicKey::FromComponents(n, std::vector<uint8_t>{0x01}).ok());
  EXPECT_FALSE(RsaPublicKey::FromComponents(n, std::vector<uint8_t>{0x01, 0x00, 0x00}).ok());
  std::vector<uint8_t> even = n;
  even.back() = 0xfe;
  EXPECT_FALSE(RsaPublicKey::FromComponents(even, e).ok());
}

TEST_F(Rs256Test, TamperedTokensAndBadSignaturesAreRefused) {
  std::string good = Vec("rs256_2048");
  size_t d1 = good.find('.'), d2 = good.rfind('.');
  json::object claims = v_.at("claims").as_object();
  claims["sub"] = "mallory@example.com";
  std::string tampered = good.substr(0, d1 + 1) + Part(json::serialize(claims)) + good.substr(d2);
  EXPECT_FALSE(Verify(tampered).ok());
  // One signature byte changed, a signature one byte short, and another key's signature.
  auto sig = *Base64UrlDecode(good.substr(d2 + 1));
  sig[10] ^= 0x01;
  EXPECT_FALSE(Verify(good.substr(0, d2 + 1) + Base64UrlEncode(sig)).ok());
  sig[10] ^= 0x01;
  sig.pop_back();
  EXPECT_FALSE(Verify(good.substr(0, d2 + 1) + Base64UrlEncode(sig)).ok());
  std::string other = Vec("rs256_3072");
  std::string swapped =
      Part(R"({"alg":"RS256","kid":"rsa-2048","typ":"JWT"})") + other.substr(other.find('.'));
  EXPECT_FALSE(Verify(swapped).ok());
  EXPECT_TRUE(Verify(good).ok());
}

TEST(RsaJwkTest, PrivateMembersAndForeignKeysAreHandled) {
  auto v = LoadVectors();
  json::object k = v.at("jwks").at("keys").as_array()[0].as_object();
  json::object priv = k;
  priv["d"] = "AQAB";
  EXPECT_FALSE(ParseRsaPublicJwk(json::serialize(priv)).ok());
  // A JWKS may publish RSA keys for encryption or other algorithms: skipped, not errors.
  json::object enc = k;
  enc["use"] = "enc";
  enc["kid"] = "enc-1";
  json::object ps = k;
  ps["alg"] = "PS256";
  ps["kid"] = "ps-1";
  json::object set{{"keys", json::array{k, enc, ps}}};
  auto parsed = Jwks::Parse(json::serialize(set));
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->size(), 1u);
  EXPECT_EQ(parsed->FindRsa("enc-1"), nullptr);
  // Duplicate kid across key types.
  json::object dup{{"keys", json::array{k, k}}};
  EXPECT_FALSE(Jwks::Parse(json::serialize(dup)).ok());
}

}  // namespace
}  // namespace custody::crypto

#include "crypto/jose.h"

#include <gtest/gtest.h>

#include "common/encoding.h"
#include "crypto/sha256.h"

namespace custody::crypto {
namespace {

// RFC 7515 Appendix A.3: ES256.
constexpr const char* kA3Jwk =
    R"({"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",)"
    R"("y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"})";
constexpr const char* kA3Input =
    "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNv"
    "bS9pc19yb290Ijp0cnVlfQ";
constexpr const char* kA3Sig =
    "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";

TEST(EcdsaP256Test, Rfc7515AppendixA3SignatureVerifies) {
  auto key = ParseEcPublicJwk(kA3Jwk);
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  auto sig = Base64UrlDecode(kA3Sig);
  ASSERT_TRUE(sig.ok());
  EXPECT_TRUE(key->Verify(AsBytes(kA3Input), *sig));
  std::vector<uint8_t> bad = *sig;
  bad[5] ^= 0x20;
  EXPECT_FALSE(key->Verify(AsBytes(kA3Input), bad));
  std::string other = std::string(kA3Input) + "x";
  EXPECT_FALSE(key->Verify(AsBytes(other), *sig));
}

TEST(EcdsaP256Test, FromScalarDerivesThePublicPointAndSignsVerifiably) {
  // d = 1: the public key is the P-256 base point G (SEC 2 / FIPS 186-4).
  std::vector<uint8_t> one(32, 0);
  one[31] = 1;
  auto g = EcdsaP256PrivateKey::FromScalar(one);
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ(HexEncode(g->public_key().x()),
            "6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296");
  EXPECT_EQ(HexEncode(g->public_key().y()),
            "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5");

  auto priv = EcdsaP256PrivateKey::Generate();
  ASSERT_TRUE(priv.ok());
  auto sig = priv->Sign(AsBytes(std::string_view("hello")));
  ASSERT_TRUE(sig.ok());
  EXPECT_TRUE(priv->public_key().Verify(AsBytes(std::string_view("hello")), *sig));
  EXPECT_FALSE(g->public_key().Verify(AsBytes(std::string_view("hello")), *sig));
  // PEM round trip keeps the key.
  auto pem = priv->ToPkcs8Pem();
  ASSERT_TRUE(pem.ok());
  auto again = EcdsaP256PrivateKey::FromPkcs8Pem(*pem);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->public_key().x(), priv->public_key().x());
  EXPECT_TRUE(again->public_key().Verify(AsBytes(std::string_view("hello")), *sig));
}

TEST(EcdsaP256Test, RejectsInvalidKeys) {
  std::vector<uint8_t> zeros(32, 0);
  EXPECT_FALSE(EcdsaP256PublicKey::FromCoordinates(zeros, zeros).ok());  // not on the curve
  EXPECT_FALSE(EcdsaP256PrivateKey::FromScalar(zeros).ok());
  std::vector<uint8_t> ones(32, 0xff);  // >= group order
  EXPECT_FALSE(EcdsaP256PrivateKey::FromScalar(ones).ok());
  auto ed = std::string(
      "-----BEGIN PRIVATE "
      "KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n-----END "
      "PRIVATE KEY-----\n");
  EXPECT_FALSE(EcdsaP256PrivateKey::FromPkcs8Pem(ed).ok());  // an Ed25519 key is not P-256
}

TEST(JwkTest, RoundTripAndThumbprint) {
  auto priv = EcdsaP256PrivateKey::Generate();
  ASSERT_TRUE(priv.ok());
  std::string kid = JwkThumbprint(priv->public_key());
  EXPECT_EQ(kid.size(), 43u);  // base64url of 32 bytes
  std::string jwk = EcPublicJwkJson(priv->public_key(), kid);
  std::string parsed_kid;
  auto back = ParseEcPublicJwk(jwk, &parsed_kid);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(parsed_kid, kid);
  EXPECT_EQ(back->x(), priv->public_key().x());
  // The thumbprint is over the required members only, so extra members do not change it.
  EXPECT_EQ(JwkThumbprint(*back), kid);
}

TEST(JwkTest, RejectsWrongOrPrivateKeys) {
  EXPECT_FALSE(ParseEcPublicJwk(R"({"kty":"RSA","n":"AQAB","e":"AQAB"})").ok());
  EXPECT_FALSE(ParseEcPublicJwk(R"({"kty":"EC","crv":"P-384","x":"AA","y":"AA"})").ok());
  std::string with_d = std::string(kA3Jwk);
  with_d.insert(with_d.size() - 1, R"(,"d":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE")");
  EXPECT_FALSE(ParseEcPublicJwk(with_d).ok());
  EXPECT_FALSE(ParseEcPublicJwk("not json").ok());
}

TEST(JwksTest, ParsesSkipsForeignKeysAndRejectsDuplicates) {
  auto a = EcdsaP256PrivateKey::Generate();
  auto b = EcdsaP256PrivateKey::Generate();
  Jwks set;
  set.Add("a", a->public_key());
  set.Add("b", b->public_key());
  std::string json = set.ToJson();
  auto parsed = Jwks::Parse(json);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->size(), 2u);
  ASSERT_NE(parsed->Find("b"), nullptr);
  EXPECT_EQ(parsed->Find("b")->x(), b->public_key().x());
  EXPECT_EQ(parsed->Find("c"), nullptr);
  auto with_oct = Jwks::Parse(R"({"keys":[{"kty":"oct","kid":"s","k":"AQAB"}]})");
  ASSERT_TRUE(with_oct.ok());
  EXPECT_EQ(with_oct->size(), 0u);
  // RSA keys are parsed now (rsa_test.cc); one far under 2048 bits is refused, not skipped.
  EXPECT_FALSE(Jwks::Parse(R"({"keys":[{"kty":"RSA","kid":"r","n":"AQAB","e":"AQAB"}]})").ok());
  std::string dup = "{\"keys\":[" + EcPublicJwkJson(a->public_key(), "x") + "," +
                    EcPublicJwkJson(b->public_key(), "x") + "]}";
  EXPECT_FALSE(Jwks::Parse(dup).ok());
}

class JwsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    key_ = std::make_unique<EcdsaP256PrivateKey>(std::move(*EcdsaP256PrivateKey::Generate()));
    jwks_.Add("k1", key_->public_key());
  }
  Result<VerifiedJws> Verify(const std::string& token) {
    return VerifyJwsEs256(token, [this](std::string_view kid) { return jwks_.Find(kid); });
  }
  std::string Sign(const std::string& header, const std::string& payload) {
    return *SignJwsEs256(header, payload, *key_);
  }
  std::unique_ptr<EcdsaP256PrivateKey> key_;
  Jwks jwks_;
};

TEST_F(JwsTest, SignedTokenVerifies) {
  std::string t = Sign(R"({"alg":"ES256","kid":"k1","typ":"JWT"})", R"({"sub":"x"})");
  auto v = Verify(t);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->payload, R"({"sub":"x"})");
  EXPECT_EQ(v->kid, "k1");
  EXPECT_EQ(v->typ, "JWT");
}

TEST_F(JwsTest, AlgNoneIsRefused) {
  std::string t = Base64UrlEncode(std::string_view(R"({"alg":"none","kid":"k1"})")) + "." +
                  Base64UrlEncode(std::string_view(R"({"sub":"x"})")) + ".";
  auto v = Verify(t);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), StatusCode::kUnauthenticated);
}

TEST_F(JwsTest, Hs256WithPublicKeyAsSecretIsRefused) {
  // The classic confusion: an HMAC "signed" with the public key bytes. We never run HMAC.
  std::string t = Base64UrlEncode(std::string_view(R"({"alg":"HS256","kid":"k1"})")) + "." +
                  Base64UrlEncode(std::string_view(R"({"sub":"x"})")) + "." +
                  Base64UrlEncode(Sha256(EcPublicJwkJson(key_->public_key(), "k1")));
  auto v = Verify(t);
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.status().message().find("not allowed"), std::string::npos);
}

TEST_F(JwsTest, UnknownKidTamperingAndMalformedAreRefused) {
  std::string good = Sign(R"({"alg":"ES256","kid":"k1"})", R"({"sub":"x"})");
  EXPECT_FALSE(Verify(Sign(R"({"alg":"ES256","kid":"k2"})", R"({"sub":"x"})")).ok());
  EXPECT_FALSE(Verify(Sign(R"({"alg":"ES256"})", R"({"sub":"x"})")).ok());  // no kid
  EXPECT_FALSE(Verify(Sign(R"({"alg":"ES256","kid":"k1","crit":["exp"]})", "{}")).ok());
  // Tampered payload: swap in another payload, keep the signature.
  size_t d1 = good.find('.'), d2 = good.rfind('.');
  std::string tampered = good.substr(0, d1 + 1) +
                         Base64UrlEncode(std::string_view(R"({"sub":"admin"})")) + good.substr(d2);
  EXPECT_FALSE(Verify(tampered).ok());
  EXPECT_FALSE(Verify(good + ".x").ok());
  EXPECT_FALSE(Verify("a.b").ok());
  EXPECT_FALSE(Verify(good.substr(0, good.size() - 2)).ok());
  // Signed by another key under the same kid.
  auto other = EcdsaP256PrivateKey::Generate();
  EXPECT_FALSE(
      Verify(*SignJwsEs256(R"({"alg":"ES256","kid":"k1"})", R"({"sub":"x"})", *other)).ok());
  EXPECT_TRUE(Verify(good).ok());
}

TEST_F(JwsTest, SignRefusesHeadersWithoutEs256) {
  EXPECT_FALSE(SignJwsEs256(R"({"alg":"none"})", "{}", *key_).ok());
  EXPECT_FALSE(SignJwsEs256("[]", "{}", *key_).ok());
}

}  // namespace
}  // namespace custody::crypto

#include "cli/token_client.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "common/encoding.h"
#include "crypto/jose.h"

namespace custody::cli {
namespace {

namespace json = boost::json;

std::string B64(std::span<const uint8_t> b) { return Base64UrlEncode(b); }

// A fixed private scalar (well below the group order) and its private JWK.
std::vector<uint8_t> Scalar() {
  std::vector<uint8_t> d(32);
  for (size_t i = 0; i < d.size(); ++i) d[i] = static_cast<uint8_t>(i + 1);
  return d;
}

json::object PrivateJwk(const std::vector<uint8_t>& d, const crypto::EcdsaP256PublicKey& pub) {
  return json::object{{"kty", "EC"},       {"crv", "P-256"},    {"kid", "planner-key"},
                      {"x", B64(pub.x())}, {"y", B64(pub.y())}, {"d", B64(d)}};
}

json::object DecodePart(const std::string& jwt, int part) {
  size_t a = jwt.find('.');
  size_t b = jwt.find('.', a + 1);
  std::string text = part == 0 ? jwt.substr(0, a) : jwt.substr(a + 1, b - a - 1);
  auto bytes = Base64UrlDecode(text);
  EXPECT_TRUE(bytes.ok());
  return json::parse(AsString(*bytes)).as_object();
}

std::string UnsignedJwt(const json::object& header, const json::object& claims) {
  return Base64UrlEncode(json::serialize(header)) + "." + Base64UrlEncode(json::serialize(claims)) +
         ".c2ln";
}

TEST(TokenEndpointFromMetadata, ReadsRfc8414IssuerAndTokenEndpoint) {
  auto e = TokenEndpointFromMetadata(json::parse(
      R"({"issuer":"http://127.0.0.1:8750","token_endpoint":"http://127.0.0.1:8750/oauth2/token"})"));
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->issuer, "http://127.0.0.1:8750");
  EXPECT_EQ(e->url, "http://127.0.0.1:8750/oauth2/token");
  auto no_endpoint = TokenEndpointFromMetadata(json::parse(R"({"issuer":"https://c.example"})"));
  ASSERT_TRUE(no_endpoint.has_value());
  EXPECT_EQ(no_endpoint->url, "https://c.example/oauth2/token");
  EXPECT_FALSE(TokenEndpointFromMetadata(json::parse(R"({"issuer":7})")).has_value());
  EXPECT_FALSE(TokenEndpointFromMetadata(json::parse(R"([])")).has_value());
}

TEST(ParseClientKey, ReadsThePkcs8PemCustodyTokenKeygenWrites) {
  auto key = crypto::EcdsaP256PrivateKey::Generate();
  ASSERT_TRUE(key.ok());
  auto pem = key->ToPkcs8Pem();
  ASSERT_TRUE(pem.ok());
  auto parsed = ParseClientKey(*pem + "\n");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->key.public_key().x(), key->public_key().x());
  EXPECT_EQ(parsed->key.public_key().y(), key->public_key().y());
  EXPECT_EQ(parsed->kid, "");
}

TEST(ParseClientKey, ReadsAPrivateJwkAndKeepsItsKid) {
  auto d = Scalar();
  auto key = crypto::EcdsaP256PrivateKey::FromScalar(d);
  ASSERT_TRUE(key.ok());
  auto parsed = ParseClientKey(json::serialize(PrivateJwk(d, key->public_key())));
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->key.public_key().x(), key->public_key().x());
  EXPECT_EQ(parsed->kid, "planner-key");
}

TEST(ParseClientKey, RefusesAJwkWhosePublicPointIsAnotherKeys) {
  auto d = Scalar();
  auto other = crypto::EcdsaP256PrivateKey::Generate();
  ASSERT_TRUE(other.ok());
  auto parsed = ParseClientKey(json::serialize(PrivateJwk(d, other->public_key())));
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.status().message().find("not the public key"), std::string::npos);
  EXPECT_EQ(parsed.status().message().find(B64(d)), std::string::npos);  // no key material
}

TEST(ParseClientKey, RefusesPublicKeysOtherCurvesAndJunk) {
  auto key = crypto::EcdsaP256PrivateKey::Generate();
  ASSERT_TRUE(key.ok());
  std::string public_jwk = crypto::EcPublicJwkJson(key->public_key(), "k");
  auto pub = ParseClientKey(public_jwk);
  ASSERT_FALSE(pub.ok());
  EXPECT_NE(pub.status().message().find("public key"), std::string::npos);

  json::object p384 = PrivateJwk(Scalar(), key->public_key());
  p384["crv"] = "P-384";
  EXPECT_FALSE(ParseClientKey(json::serialize(p384)).ok());
  json::object short_d = PrivateJwk(Scalar(), key->public_key());
  short_d["d"] = "AAEC";
  EXPECT_FALSE(ParseClientKey(json::serialize(short_d)).ok());
  EXPECT_FALSE(ParseClientKey("").ok());
  EXPECT_FALSE(ParseClientKey("not a key").ok());
  EXPECT_FALSE(ParseClientKey("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----").ok());
}

TEST(SignClientAssertion, IsAnEs256Rfc7523AssertionTheServerCanVerify) {
  auto d = Scalar();
  auto key = crypto::EcdsaP256PrivateKey::FromScalar(d);
  ASSERT_TRUE(key.ok());
  ClientKey client{std::move(*key), "planner-key"};
  auto jwt = SignClientAssertion(client, "planner", "https://custody.local/oauth2/token", 1000, 60,
                                 "jti-1");
  ASSERT_TRUE(jwt.ok()) << jwt.status().ToString();
  auto verified = crypto::VerifyJwsEs256(*jwt, [&](std::string_view kid) {
    return kid == "planner-key" ? &client.key.public_key() : nullptr;
  });
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  json::object claims = json::parse(verified->payload).as_object();
  EXPECT_EQ(claims["iss"], json::value("planner"));
  EXPECT_EQ(claims["sub"], json::value("planner"));
  EXPECT_EQ(claims["aud"], json::value("https://custody.local/oauth2/token"));
  EXPECT_EQ(claims["iat"], json::value(1000));
  EXPECT_EQ(claims["exp"], json::value(1060));
  EXPECT_EQ(claims["jti"], json::value("jti-1"));

  // A PEM key has no kid: none is sent (the server then uses the registered key).
  client.kid.clear();
  auto no_kid = SignClientAssertion(client, "planner", "aud", 1000, 60, "jti-2");
  ASSERT_TRUE(no_kid.ok());
  EXPECT_FALSE(DecodePart(*no_kid, 0).contains("kid"));
  EXPECT_EQ(DecodePart(*no_kid, 0)["alg"], json::value("ES256"));
}

TEST(SubjectTokenType, IsInferredFromTheToken) {
  EXPECT_EQ(*SubjectTokenType("", R"( {"sub":"alice","iss":"ci"})"),
            "urn:custody:params:oauth:token-type:initiator-assertion");
  EXPECT_EQ(*SubjectTokenType("", UnsignedJwt({{"alg", "ES256"}, {"typ", "at+jwt"}}, {})),
            "urn:ietf:params:oauth:token-type:access_token");
  EXPECT_EQ(*SubjectTokenType("", UnsignedJwt({{"alg", "RS256"}, {"typ", "JWT"}}, {})),
            "urn:ietf:params:oauth:token-type:id_token");
  auto junk = SubjectTokenType("", "secret-looking-opaque-token");
  ASSERT_FALSE(junk.ok());
  EXPECT_NE(junk.status().message().find("--subject-token-type"), std::string::npos);
  EXPECT_EQ(junk.status().message().find("secret-looking"), std::string::npos);
}

TEST(SubjectTokenType, FlagTakesShortNamesAndUrns) {
  EXPECT_EQ(*SubjectTokenType("access_token", "{}"),
            "urn:ietf:params:oauth:token-type:access_token");
  EXPECT_EQ(*SubjectTokenType("id_token", "x"), "urn:ietf:params:oauth:token-type:id_token");
  EXPECT_EQ(*SubjectTokenType("jwt", "x"), "urn:ietf:params:oauth:token-type:jwt");
  EXPECT_EQ(*SubjectTokenType("initiator-assertion", "x"),
            "urn:custody:params:oauth:token-type:initiator-assertion");
  EXPECT_EQ(*SubjectTokenType("urn:example:type", "x"), "urn:example:type");
  EXPECT_FALSE(SubjectTokenType("saml", "x").ok());
}

TEST(AgentOfSvid, IsTheAgentSegmentOfTheSpiffeId) {
  json::object h{{"alg", "ES256"}, {"typ", "JWT"}};
  EXPECT_EQ(*AgentOfSvid(UnsignedJwt(
                h, {{"sub", "spiffe://custody.local/agent/planner/instance/0190-abc"}})),
            "planner");
  EXPECT_FALSE(AgentOfSvid(UnsignedJwt(h, {{"sub", "spiffe://custody.local/agent/planner"}})).ok());
  EXPECT_FALSE(
      AgentOfSvid(UnsignedJwt(h, {{"sub", "spiffe://custody.local/workload/x/instance/y"}})).ok());
  EXPECT_FALSE(AgentOfSvid(UnsignedJwt(h, {{"sub", "planner"}})).ok());
  EXPECT_FALSE(AgentOfSvid("not-a-jwt").ok());
  EXPECT_FALSE(AgentOfSvid("a.b.c.d").ok());
}

TEST(ReadTokenArgument, ReadsLiteralStdinAndFileAndTrimsANewline) {
  std::istringstream none;
  EXPECT_EQ(*ReadTokenArgument("abc.def.ghi", none), "abc.def.ghi");
  std::istringstream in("abc.def.ghi\n");
  EXPECT_EQ(*ReadTokenArgument("-", in), "abc.def.ghi");

  char path[] = "/tmp/custody-token-arg-XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ::close(fd);
  std::ofstream(path) << "  file.token.value\r\n";
  EXPECT_EQ(*ReadTokenArgument(std::string("@") + path, none), "file.token.value");
  std::ofstream(path) << "\n";
  EXPECT_FALSE(ReadTokenArgument(std::string("@") + path, none).ok());
  ::unlink(path);
  EXPECT_FALSE(ReadTokenArgument(std::string("@") + path, none).ok());  // gone

  std::istringstream empty("");
  EXPECT_FALSE(ReadTokenArgument("-", empty).ok());
  EXPECT_FALSE(ReadTokenArgument("", none).ok());
}

}  // namespace
}  // namespace custody::cli

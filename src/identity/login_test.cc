// [login] with private_key_jwt: the client assertion Custody presents at the company IdP's token
// endpoint (RFC 7523 §2.2, OIDC Core §9), the key file it is signed with, and the options check.
#include "identity/login.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <boost/json.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>

#include "common/random.h"

namespace custody::identity {
namespace {

namespace json = boost::json;

TEST(LoginPrivateKeyJwt, ClientAssertionIsWellFormedAndFresh) {
  auto generated = crypto::EcdsaP256PrivateKey::Generate();
  ASSERT_TRUE(generated.ok());
  const crypto::EcdsaP256PublicKey pub = generated->public_key();
  const ClientAssertionKey key(std::move(*generated));
  EXPECT_EQ(key.alg(), "ES256");
  SystemRandom random;
  std::set<std::string> jtis;
  for (int i = 0; i < 3; ++i) {
    auto a = MakeClientAssertion("custody", "https://idp.test", key, "k1", 1000, random);
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    auto v = crypto::VerifyJwsEs256(
        *a, [&](std::string_view kid) { return kid == "k1" ? &pub : nullptr; });
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    EXPECT_EQ(v->alg, "ES256");
    EXPECT_EQ(v->kid, "k1");
    json::object c = json::parse(v->payload).as_object();
    EXPECT_EQ(c.at("iss").as_string(), "custody");
    EXPECT_EQ(c.at("sub").as_string(), "custody");
    EXPECT_EQ(c.at("aud").as_string(), "https://idp.test");
    EXPECT_EQ(c.at("iat").to_number<int64_t>(), 1000);
    int64_t exp = c.at("exp").to_number<int64_t>();
    EXPECT_GT(exp, 1000);
    EXPECT_LE(exp, 1000 + 300) << "a client assertion lives at most 5 minutes";
    std::string jti(c.at("jti").as_string());
    EXPECT_GE(jti.size(), 22u) << "128 random bits";
    jtis.insert(jti);
  }
  EXPECT_EQ(jtis.size(), 3u) << "a fresh jti each time";

  // Another key's signature does not verify; an empty kid is the key's RFC 7638 thumbprint.
  auto other = crypto::EcdsaP256PrivateKey::Generate();
  ASSERT_TRUE(other.ok());
  auto forged = MakeClientAssertion("custody", "https://idp.test",
                                    ClientAssertionKey(std::move(*other)), "k1", 1000, random);
  ASSERT_TRUE(forged.ok());
  EXPECT_FALSE(crypto::VerifyJwsEs256(*forged, [&](std::string_view) { return &pub; }).ok());
  auto by_thumbprint = MakeClientAssertion("custody", "https://idp.test", key, "", 1000, random);
  ASSERT_TRUE(by_thumbprint.ok());
  auto v = crypto::VerifyJwsEs256(*by_thumbprint, [&](std::string_view kid) {
    return kid == crypto::JwkThumbprint(pub) ? &pub : nullptr;
  });
  EXPECT_TRUE(v.ok()) << v.status().ToString();
}

// An IdP that registers only RSA keys for its clients gets an RS256 assertion, verified here
// through the same JWKS path as the IdPs' own RS256 ID tokens.
TEST(LoginPrivateKeyJwt, RsaKeySignsRs256Assertions) {
  auto generated = crypto::RsaPrivateKey::Generate(2048);
  ASSERT_TRUE(generated.ok()) << generated.status().ToString();
  const crypto::RsaPublicKey pub = generated->public_key();
  const ClientAssertionKey key(std::move(*generated));
  EXPECT_EQ(key.alg(), "RS256");
  SystemRandom random;
  auto a = MakeClientAssertion("custody", "https://idp.test", key, "", 1000, random);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  auto jwks =
      crypto::Jwks::Parse("{\"keys\":[" + crypto::RsaPublicJwkJson(pub, key.Thumbprint()) + "]}");
  ASSERT_TRUE(jwks.ok()) << jwks.status().ToString();
  auto v = crypto::VerifyJwsWithJwks(*a, *jwks, crypto::kTrustedIssuerAlgorithms);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->alg, "RS256");
  EXPECT_EQ(v->kid, key.Thumbprint());
  json::object c = json::parse(v->payload).as_object();
  EXPECT_EQ(c.at("iss").as_string(), "custody");
  EXPECT_EQ(c.at("aud").as_string(), "https://idp.test");
  // A flipped byte of the signature does not verify.
  std::string tampered = *a;
  tampered[tampered.size() - 5] = tampered[tampered.size() - 5] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(crypto::VerifyJwsWithJwks(tampered, *jwks, crypto::kTrustedIssuerAlgorithms).ok());
}

// A throwaway test key, used nowhere else.
const char kSec1Pem[] = R"(-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIBKiokPf+q2A8zlMXUQ2HQZyAcIaQMrj7bNNbInXTp5roAoGCCqGSM49
AwEHoUQDQgAEYsGKbATfw06wfgyu9oXuYbQpzNADUuFdt6TY1ufOjd88VXUWY6px
E7O436+Qu6cLyZvCFKPtw4UZlgADX2SBHg==
-----END EC PRIVATE KEY-----
)";

class LoginKeyFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("custody-login-key-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Write(const std::string& name, const std::string& text, mode_t mode) {
    std::string path = (dir_ / name).string();
    std::ofstream(path) << text;
    ::chmod(path.c_str(), mode);
    return path;
  }
  std::filesystem::path dir_;
};

TEST_F(LoginKeyFile, LoadsA0600P256KeyAndRefusesOthers) {
  auto key = crypto::EcdsaP256PrivateKey::Generate();
  ASSERT_TRUE(key.ok());
  auto pem = key->ToPkcs8Pem();
  ASSERT_TRUE(pem.ok());
  auto loaded = LoadLoginPrivateKey(Write("login.pem", *pem, 0600));
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ((*loaded)->alg(), "ES256");
  EXPECT_EQ((*loaded)->Thumbprint(), crypto::JwkThumbprint(key->public_key()));

  auto open = LoadLoginPrivateKey(Write("open.pem", *pem, 0644));
  ASSERT_FALSE(open.ok());
  EXPECT_NE(open.status().message().find("mode 0644"), std::string::npos)
      << open.status().message();
  EXPECT_EQ(open.status().message().find(dir_.string()), std::string::npos) << "no absolute path";

  // SEC1 ("EC PRIVATE KEY", what `openssl ecparam -genkey` writes) is read too.
  auto sec1 = LoadLoginPrivateKey(Write("sec1.pem", kSec1Pem, 0600));
  EXPECT_TRUE(sec1.ok()) << sec1.status().ToString();

  // RSA keys (PKCS#8) sign RS256; a key under 2048 bits is refused.
  auto rsa = crypto::RsaPrivateKey::Generate(3072);
  ASSERT_TRUE(rsa.ok());
  auto rsa_pem = rsa->ToPkcs8Pem();
  ASSERT_TRUE(rsa_pem.ok());
  auto rsa_loaded = LoadLoginPrivateKey(Write("rsa.pem", *rsa_pem, 0600));
  ASSERT_TRUE(rsa_loaded.ok()) << rsa_loaded.status().ToString();
  EXPECT_EQ((*rsa_loaded)->alg(), "RS256");
  EXPECT_EQ(crypto::RsaPrivateKey::Generate(1024).status().code(), StatusCode::kInvalidArgument);

  auto junk = LoadLoginPrivateKey(Write("junk.pem", "not a key", 0600));
  ASSERT_FALSE(junk.ok());
  EXPECT_NE(junk.status().message().find("EC P-256"), std::string::npos);
  EXPECT_FALSE(LoadLoginPrivateKey((dir_ / "missing.pem").string()).ok());
}

// The IdP's `groups` claim reaches the signed-in person (approvers' groups); a malformed one
// refuses the sign-in rather than being half read.
TEST(LoginIdToken, GroupsClaimIsReadAndAMalformedOneRefused) {
  auto claims = [](const std::string& groups) {
    return R"({"iss":"https://idp.test","aud":"custody","sub":"dana","exp":2000,"iat":1000,)"
           R"("nonce":"n1")" +
           (groups.empty() ? std::string() : ",\"groups\":" + groups) + "}";
  };
  auto p = CheckIdTokenClaims(claims(R"(["finance","sre"])"), "https://idp.test", "custody", "n1",
                              1500, 60);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->groups, (std::vector<std::string>{"finance", "sre"}));
  auto none = CheckIdTokenClaims(claims(""), "https://idp.test", "custody", "n1", 1500, 60);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->groups.empty());
  for (const char* bad : {R"("finance")", R"([1])", R"([""])", R"({"a":1})"}) {
    EXPECT_EQ(CheckIdTokenClaims(claims(bad), "https://idp.test", "custody", "n1", 1500, 60)
                  .status()
                  .code(),
              StatusCode::kUnauthenticated)
        << bad;
  }
  std::string many = "[";
  for (size_t i = 0; i <= kMaxIdpGroups; ++i)
    many += (i ? ",\"g" : "\"g") + std::to_string(i) + "\"";
  EXPECT_FALSE(
      CheckIdTokenClaims(claims(many + "]"), "https://idp.test", "custody", "n1", 1500, 60).ok());
}

TEST(LoginPrivateKeyJwt, OptionsNeedExactlyOneCredential) {
  OidcLoginOptions o;
  o.issuer = "https://idp.test";
  o.client_id = "custody";
  o.redirect_uri = "https://custody.test/oauth2/login/callback";
  EXPECT_FALSE(ValidateOidcLoginOptions(o, nullptr).ok()) << "neither";
  o.client_secret = "s";
  EXPECT_TRUE(ValidateOidcLoginOptions(o, nullptr).ok());
  auto key = crypto::EcdsaP256PrivateKey::Generate();
  ASSERT_TRUE(key.ok());
  o.private_key = std::make_shared<const ClientAssertionKey>(std::move(*key));
  auto both = ValidateOidcLoginOptions(o, nullptr);
  ASSERT_FALSE(both.ok()) << "both";
  EXPECT_NE(both.message().find("exactly one"), std::string::npos);
  o.client_secret.clear();
  EXPECT_TRUE(ValidateOidcLoginOptions(o, nullptr).ok());
}

}  // namespace
}  // namespace custody::identity

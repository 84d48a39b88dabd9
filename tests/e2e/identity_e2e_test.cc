// End-to-end tests of identity against the running server: `custody serve --quickstart` on port
// 0 with a trusted OIDC issuer whose key the test holds. Each way of getting a token accepted
// that must fail is its own test, with the OAuth error (RFC 6749 §5.2) or 401 a client sees.
// Forged tokens are built here with OpenSSL; where a test needs a correctly signed but expired
// or not-yet-valid token, it signs one with a key it controls (a client assertion or a trusted
// issuer's ID token), so no test waits for anything to expire. The last tests drive the
// `custody agent|session|credential` CLI against the same server.
#include <gtest/gtest.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <sys/wait.h>

#include <algorithm>
#include <boost/json.hpp>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/encoding.h"
#include "crypto/ecdsa_p256.h"
#include "crypto/jose.h"
#include "serve_util.h"

namespace custody {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using crypto::EcdsaP256PrivateKey;
using http::ClientResponse;
using testing::Get;
using testing::PostForm;
using testing::PostJson;
using testing::ServeProcess;
using testing::TempDir;
using Form = std::vector<std::pair<std::string, std::string>>;

constexpr const char* kIssuer = "https://custody.local";
constexpr const char* kIdp = "https://idp.example";
constexpr const char* kIdpAudience = "custody";
constexpr const char* kIdpKid = "idp-1";
constexpr const char* kBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
constexpr const char* kExchange = "urn:ietf:params:oauth:grant-type:token-exchange";
constexpr const char* kJwtType = "urn:ietf:params:oauth:token-type:jwt";
constexpr const char* kAccessType = "urn:ietf:params:oauth:token-type:access_token";
constexpr const char* kIdTokenType = "urn:ietf:params:oauth:token-type:id_token";
constexpr const char* kAssertionType = "urn:custody:params:oauth:token-type:initiator-assertion";

int64_t Now() { return static_cast<int64_t>(::time(nullptr)); }

std::string B64(std::string_view s) { return Base64UrlEncode(s); }

struct JwtParts {
  std::string header, payload, signature;  // still base64url
};

JwtParts Split(const std::string& jwt) {
  size_t a = jwt.find('.');
  size_t b = jwt.find('.', a + 1);
  return {jwt.substr(0, a), jwt.substr(a + 1, b - a - 1), jwt.substr(b + 1)};
}

json::object DecodePart(const std::string& b64) {
  auto bytes = Base64UrlDecode(b64);
  EXPECT_TRUE(bytes.ok());
  return json::parse(AsString(*bytes)).as_object();
}

std::string SignEs256(const json::object& header, const json::object& claims,
                      const EcdsaP256PrivateKey& key) {
  auto jws = crypto::SignJwsEs256(json::serialize(header), json::serialize(claims), key);
  EXPECT_TRUE(jws.ok()) << jws.status().ToString();
  return jws.ok() ? *jws : "";
}

// header.payload signed with HMAC-SHA256 under `secret`, as a confused verifier would check it.
std::string SignHs256(const json::object& header, const json::object& claims,
                      const std::string& secret) {
  std::string input = B64(json::serialize(header)) + "." + B64(json::serialize(claims));
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
  return input + "." + Base64UrlEncode(std::span<const uint8_t>(mac, len));
}

// The SubjectPublicKeyInfo PEM of a P-256 public key (what a confused HS256 verifier might use).
std::string PublicKeyPem(const crypto::EcdsaP256PublicKey& key) {
  std::vector<uint8_t> point = {0x04};
  point.insert(point.end(), key.x().begin(), key.x().end());
  point.insert(point.end(), key.y().begin(), key.y().end());
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, const_cast<char*>("P-256"), 0),
      OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()),
      OSSL_PARAM_construct_end()};
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr);
  EVP_PKEY* pkey = nullptr;
  EXPECT_EQ(EVP_PKEY_fromdata_init(ctx), 1);
  EXPECT_EQ(EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params), 1);
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(bio, pkey);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(n));
  BIO_free(bio);
  EVP_PKEY_free(pkey);
  EVP_PKEY_CTX_free(ctx);
  return pem;
}

json::object Body(const ClientResponse& r) {
  boost::system::error_code ec;
  json::value v = json::parse(r.body, ec);
  EXPECT_FALSE(ec) << r.body;
  return v.is_object() ? v.as_object() : json::object{};
}

// An RFC 6749 §5.2 error answer with `error` and a description containing `says`.
void ExpectOAuthError(const Result<ClientResponse>& r, int status, const std::string& error,
                      const std::string& says) {
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, status) << r->body;
  json::object o = Body(*r);
  EXPECT_EQ(o["error"], json::value(error)) << r->body;
  ASSERT_TRUE(o["error_description"].is_string()) << r->body;
  EXPECT_NE(std::string(o["error_description"].as_string()).find(says), std::string::npos)
      << r->body;
  EXPECT_EQ(o.find("access_token"), o.end());
  EXPECT_EQ(r->headers.Get("cache-control").value_or(""), "no-store");
  if (status == 401) {
    EXPECT_TRUE(r->headers.Get("www-authenticate").has_value());
  }
}

// A registered agent and the private key of its private_key_jwt credential.
struct TestAgent {
  std::string name;
  EcdsaP256PrivateKey key;
};

class IdentityE2e : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TempDir(std::string("identity_") +
                   ::testing::UnitTest::GetInstance()->current_test_info()->name());
    idp_key_ = std::make_unique<EcdsaP256PrivateKey>(*EcdsaP256PrivateKey::Generate());
    json::value jwk = json::parse(crypto::EcPublicJwkJson(idp_key_->public_key(), kIdpKid));
    json::array issuers{json::object{{"issuer", kIdp},
                                     {"audience", kIdpAudience},
                                     {"jwks", json::object{{"keys", json::array{jwk}}}}}};
    std::ofstream(dir_ / "trusted_issuers.json") << json::serialize(issuers);
    server_ = std::make_unique<ServeProcess>(
        dir_ / "data",
        std::vector<std::string>{
            "--log-level", "warn", "--set",
            "identity.trusted_issuers_file=" + (dir_ / "trusted_issuers.json").string(), "--set",
            std::string("identity.issuer=") + kIssuer});
    ASSERT_TRUE(server_->started());
    client_ = std::make_unique<http::BlockingHttpClient>("127.0.0.1", server_->port());
  }
  void TearDown() override {
    client_.reset();
    if (server_ && server_->started()) {
      EXPECT_EQ(server_->Stop(), 0);
    }
    server_.reset();
    fs::remove_all(dir_);
  }

  Result<ClientResponse> Send(http::ClientRequest r) { return client_->Send(std::move(r)); }
  const std::string& admin() const { return server_->token(); }

  // Registers an agent with a fresh P-256 key; `extra` adds or overrides record fields.
  TestAgent Register(const std::string& name, json::array grants, int max_depth = 3,
                     json::object extra = {}) {
    TestAgent a{name, *EcdsaP256PrivateKey::Generate()};
    json::object body{
        {"name", name},
        {"grants", std::move(grants)},
        {"permissions", json::array{"assert_initiator"}},
        {"max_delegation_depth", max_depth},
        {"client_jwk", json::parse(crypto::EcPublicJwkJson(a.key.public_key(), name + "-key"))}};
    for (auto& kv : extra) body[kv.key()] = kv.value();
    auto r = Send(PostJson(json::serialize(body), admin(), "/v1/agents"));
    EXPECT_TRUE(r.ok());
    if (r.ok()) {
      EXPECT_EQ(r->status, 201) << r->body;
    }
    return a;
  }

  json::object AssertionClaims(const TestAgent& a) {
    return json::object{{"iss", a.name},
                        {"sub", a.name},
                        {"aud", std::string(kIssuer) + "/oauth2/token"},
                        {"exp", Now() + 60},
                        {"iat", Now()},
                        {"jti", "assertion-" + std::to_string(++assertions_)}};
  }
  std::string Assertion(const TestAgent& a, json::object claims) {
    return SignEs256({{"alg", "ES256"}, {"kid", a.name + "-key"}}, claims, a.key);
  }
  std::string Assertion(const TestAgent& a) { return Assertion(a, AssertionClaims(a)); }
  Form ClientAuth(const TestAgent& a, const std::string& assertion) {
    return {
        {"client_id", a.name}, {"client_assertion_type", kBearer}, {"client_assertion", assertion}};
  }

  Result<ClientResponse> SvidRequest(const TestAgent& a, const std::string& assertion,
                                     const std::string& audience = kIssuer) {
    Form f = ClientAuth(a, assertion);
    f.emplace_back("grant_type", "client_credentials");
    f.emplace_back("audience", audience);
    return Send(PostForm("/oauth2/token", f));
  }
  // A JWT-SVID for a new instance of `a`.
  std::string Svid(const TestAgent& a, const std::string& audience = kIssuer) {
    auto r = SvidRequest(a, Assertion(a), audience);
    EXPECT_TRUE(r.ok());
    if (!r.ok()) return "";
    EXPECT_EQ(r->status, 200) << r->body;
    return std::string(Body(*r)["access_token"].as_string());
  }

  // Token exchange by `client`, acting as the instance `actor` (a JWT-SVID).
  Result<ClientResponse> Exchange(const TestAgent& client, const std::string& actor,
                                  const std::string& subject, const std::string& subject_type,
                                  const std::string& scope = "") {
    Form f = ClientAuth(client, Assertion(client));
    f.insert(f.end(), {{"grant_type", kExchange},
                       {"subject_token", subject},
                       {"subject_token_type", subject_type},
                       {"actor_token", actor},
                       {"actor_token_type", kJwtType},
                       {"audience", "custody-gateway"},
                       {"objective", "e2e"}});
    if (!scope.empty()) f.emplace_back("scope", scope);
    return Send(PostForm("/oauth2/token", f));
  }
  // The access token of a successful exchange.
  std::string Issued(const Result<ClientResponse>& r) {
    EXPECT_TRUE(r.ok());
    if (!r.ok()) return "";
    EXPECT_EQ(r->status, 200) << r->body;
    json::object o = Body(*r);
    return o["access_token"].is_string() ? std::string(o["access_token"].as_string()) : "";
  }
  // A root session started by `a` for an asserted initiator.
  std::string RootToken(const TestAgent& a, const std::string& scope = "") {
    return Issued(
        Exchange(a, Svid(a), R"({"sub":"nightly-triage","iss":"ci"})", kAssertionType, scope));
  }
  // A child session of `parent` (an access token), by `a`.
  std::string ChildToken(const TestAgent& a, const std::string& parent,
                         const std::string& scope = "") {
    return Issued(Exchange(a, Svid(a), parent, kAccessType, scope));
  }

  json::object Introspect(const std::string& token) {
    auto r = Send(PostForm("/oauth2/introspect", {{"token", token}}, admin()));
    EXPECT_TRUE(r.ok());
    if (!r.ok()) return {};
    EXPECT_EQ(r->status, 200) << r->body;
    return Body(*r);
  }
  bool Active(const std::string& token) { return Introspect(token)["active"] == json::value(true); }

  // An ID token from the trusted issuer (signed with its key) unless told otherwise.
  json::object IdClaims() {
    return json::object{{"iss", kIdp},
                        {"sub", "alice@example.com"},
                        {"aud", kIdpAudience},
                        {"exp", Now() + 300},
                        {"iat", Now()}};
  }
  std::string IdToken(const json::object& claims, const EcdsaP256PrivateKey* key = nullptr,
                      const std::string& kid = kIdpKid) {
    return SignEs256({{"alg", "ES256"}, {"kid", kid}, {"typ", "JWT"}}, claims,
                     key ? *key : *idp_key_);
  }

  // The published JWKS: the signing key's JWK (as served) and its parsed public key.
  std::pair<std::string, crypto::EcdsaP256PublicKey> PublishedKey(std::string* kid) {
    auto r = Send(Get("/.well-known/jwks.json"));
    EXPECT_TRUE(r.ok());
    json::object jwk = json::parse(r->body).as_object()["keys"].as_array()[0].as_object();
    std::string text = json::serialize(jwk);
    auto key = crypto::ParseEcPublicJwk(text, kid);
    EXPECT_TRUE(key.ok());
    return {text, *key};
  }

  fs::path dir_;
  std::unique_ptr<EcdsaP256PrivateKey> idp_key_;
  std::unique_ptr<ServeProcess> server_;
  std::unique_ptr<http::BlockingHttpClient> client_;
  int assertions_ = 0;
};

// --- Forged or invalid tokens --------------------------------------------------------------

TEST_F(IdentityE2e, AlgNoneIsRefused) {
  TestAgent a = Register("planner", {"github/*"});
  std::string real = RootToken(a);
  ASSERT_TRUE(Active(real));
  JwtParts p = Split(real);
  json::object header = DecodePart(p.header);
  header["alg"] = "none";
  std::string forged = B64(json::serialize(header)) + "." + p.payload + ".";
  EXPECT_FALSE(Active(forged));
  ExpectOAuthError(Exchange(a, Svid(a), forged, kAccessType), 400, "invalid_grant",
                   "\"none\" is not allowed");
  // Without the empty signature part it is not even a JWS.
  forged.pop_back();
  EXPECT_FALSE(Active(forged));
  ExpectOAuthError(Exchange(a, Svid(a), forged, kAccessType), 400, "invalid_grant", "malformed");
  // An unsigned client assertion does not authenticate the client either.
  std::string none_assertion =
      B64(R"({"alg":"none"})") + "." + B64(json::serialize(AssertionClaims(a))) + ".";
  ExpectOAuthError(SvidRequest(a, none_assertion), 401, "invalid_client",
                   "\"none\" is not allowed");
}

TEST_F(IdentityE2e, Hs256WithThePublicKeyAsSecretIsRefused) {
  TestAgent a = Register("planner", {"github/*"});
  std::string real = RootToken(a);
  std::string kid;
  auto [jwk_text, key] = PublishedKey(&kid);
  json::object header{{"alg", "HS256"}, {"kid", kid}, {"typ", "at+jwt"}};
  json::object claims = DecodePart(Split(real).payload);
  auto jwks = Send(Get("/.well-known/jwks.json"));
  ASSERT_TRUE(jwks.ok());
  for (const std::string& secret : {jwk_text, jwks->body, PublicKeyPem(key)}) {
    std::string forged = SignHs256(header, claims, secret);
    EXPECT_FALSE(Active(forged));
    ExpectOAuthError(Exchange(a, Svid(a), forged, kAccessType), 400, "invalid_grant",
                     "\"HS256\" is not allowed");
  }
  // The client's own registered public key as the secret of its assertion.
  std::string client_jwk = crypto::EcPublicJwkJson(a.key.public_key(), "planner-key");
  for (const std::string& secret : {client_jwk, PublicKeyPem(a.key.public_key())}) {
    std::string forged =
        SignHs256({{"alg", "HS256"}, {"kid", "planner-key"}}, AssertionClaims(a), secret);
    ExpectOAuthError(SvidRequest(a, forged), 401, "invalid_client", "\"HS256\" is not allowed");
  }
}

TEST_F(IdentityE2e, UnknownKidIsRefused) {
  TestAgent a = Register("planner", {"github/*"});
  std::string real = RootToken(a);
  json::object claims = DecodePart(Split(real).payload);
  auto attacker = EcdsaP256PrivateKey::Generate();
  std::string forged = SignEs256(
      {{"alg", "ES256"}, {"kid", "not-a-custody-key"}, {"typ", "at+jwt"}}, claims, *attacker);
  EXPECT_FALSE(Active(forged));
  ExpectOAuthError(Exchange(a, Svid(a), forged, kAccessType), 400, "invalid_grant", "unknown kid");
  // The same with Custody's real kid: the signature does not verify.
  std::string kid = DecodePart(Split(real).header)["kid"].as_string().c_str();
  forged = SignEs256({{"alg", "ES256"}, {"kid", kid}, {"typ", "at+jwt"}}, claims, *attacker);
  EXPECT_FALSE(Active(forged));
  ExpectOAuthError(Exchange(a, Svid(a), forged, kAccessType), 400, "invalid_grant",
                   "signature does not verify");
  // A client assertion under a kid that is not the registered one.
  ExpectOAuthError(
      SvidRequest(a, SignEs256({{"alg", "ES256"}, {"kid", "other"}}, AssertionClaims(a), a.key)),
      401, "invalid_client", "unknown kid");
}

TEST_F(IdentityE2e, ExpiredTokenIsRefused) {
  TestAgent a = Register("planner", {"github/*"});
  // A correctly signed client assertion that expired two minutes ago (past the 30 s leeway).
  json::object claims = AssertionClaims(a);
  claims["exp"] = Now() - 120;
  claims["iat"] = Now() - 180;
  ExpectOAuthError(SvidRequest(a, Assertion(a, claims)), 401, "invalid_client", "expired");
  // A trusted issuer's ID token, correctly signed, expired.
  json::object id = IdClaims();
  id["exp"] = Now() - 120;
  id["iat"] = Now() - 600;
  ExpectOAuthError(Exchange(a, Svid(a), IdToken(id), kIdTokenType), 400, "invalid_grant",
                   "expired");
}

TEST_F(IdentityE2e, NotBeforeInTheFutureIsRefused) {
  TestAgent a = Register("planner", {"github/*"});
  json::object claims = AssertionClaims(a);
  claims["nbf"] = Now() + 3600;
  ExpectOAuthError(SvidRequest(a, Assertion(a, claims)), 401, "invalid_client", "nbf");
  json::object id = IdClaims();
  id["nbf"] = Now() + 3600;
  id["exp"] = Now() + 7200;
  ExpectOAuthError(Exchange(a, Svid(a), IdToken(id), kIdTokenType), 400, "invalid_grant", "nbf");
}

TEST_F(IdentityE2e, WrongAudienceIsRefused) {
  TestAgent a = Register("planner", {"github/*"});
  // A genuine JWT-SVID, but minted for another audience, is no actor token for Custody.
  std::string elsewhere = Svid(a, "https://other-service.example");
  ExpectOAuthError(Exchange(a, elsewhere, R"({"sub":"nightly-triage"})", kAssertionType), 400,
                   "invalid_grant", "aud does not include");
  // A client assertion addressed to another server.
  json::object claims = AssertionClaims(a);
  claims["aud"] = "https://other-server.example/oauth2/token";
  ExpectOAuthError(SvidRequest(a, Assertion(a, claims)), 401, "invalid_client",
                   "aud must be the token endpoint");
  // An ID token from the trusted issuer, issued to another client.
  json::object id = IdClaims();
  id["aud"] = "someone-else";
  ExpectOAuthError(Exchange(a, Svid(a), IdToken(id), kIdTokenType), 400, "invalid_grant",
                   "iss/aud do not match");
}

TEST_F(IdentityE2e, TamperedPayloadIsRefused) {
  TestAgent a = Register("planner", {"github/read", "github/write"});
  std::string real = RootToken(a, "github/read");
  ASSERT_TRUE(Active(real));
  JwtParts p = Split(real);
  json::object claims = DecodePart(p.payload);
  claims["scope"] = "github/read github/write";
  std::string forged = p.header + "." + B64(json::serialize(claims)) + "." + p.signature;
  EXPECT_FALSE(Active(forged));
  ExpectOAuthError(Exchange(a, Svid(a), forged, kAccessType, "github/write"), 400, "invalid_grant",
                   "signature does not verify");
  // A JWT-SVID with its sub moved to another agent's instance.
  Register("admin-bot", {"github/*"});
  JwtParts s = Split(Svid(a));
  json::object svid_claims = DecodePart(s.payload);
  std::string sub(svid_claims["sub"].as_string());
  svid_claims["sub"] =
      "spiffe://custody.local/agent/admin-bot/instance/" + sub.substr(sub.rfind('/') + 1);
  std::string tampered_svid =
      s.header + "." + B64(json::serialize(svid_claims)) + "." + s.signature;
  ExpectOAuthError(Exchange(a, tampered_svid, R"({"sub":"x"})", kAssertionType), 400,
                   "invalid_grant", "signature does not verify");
  EXPECT_TRUE(Active(real));  // the genuine token is untouched
}

TEST_F(IdentityE2e, RevokedSessionAndItsGrandchildrenAreRefused) {
  TestAgent orch = Register("orchestrator", {"github/*"});
  TestAgent coder = Register("coder", {"github/*"});
  TestAgent tester = Register("tester", {"github/*"});
  std::string root = RootToken(orch);
  std::string child = ChildToken(coder, root);
  std::string grandchild = ChildToken(tester, child);
  ASSERT_TRUE(Active(root) && Active(child) && Active(grandchild));
  std::string root_sid(Introspect(root)["sid"].as_string());
  std::string grandchild_sid(Introspect(grandchild)["sid"].as_string());

  auto r = Send(
      PostJson(R"({"reason":"incident 42"})", admin(), "/v1/sessions/" + root_sid + "/revoke"));
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(Body(*r)["revoked_sessions"].as_array().size(), 3u) << r->body;

  for (const std::string* t : {&root, &child, &grandchild}) {
    EXPECT_EQ(Introspect(*t), (json::object{{"active", false}}));
    // No revoked session can seed a new one, by any agent.
    ExpectOAuthError(Exchange(tester, Svid(tester), *t, kAccessType), 400, "invalid_grant",
                     "session revoked: incident 42");
  }
  http::ClientRequest g = Get("/v1/sessions/" + grandchild_sid);
  g.headers.Set("authorization", "Bearer " + admin());
  r = Send(g);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Body(*r)["session"].as_object()["status"], "revoked");
  EXPECT_EQ(Body(*r)["session"].as_object()["revoke_reason"], "incident 42");
}

TEST_F(IdentityE2e, ScopeEscalationThroughExchangeIsRefused) {
  TestAgent orch = Register("orchestrator", {"github/*"});
  TestAgent coder = Register("coder", {"github/*", "fs/write"});
  std::string root = RootToken(orch, "github/read");
  // The child's agent holds github/* but the parent session only github/read.
  ExpectOAuthError(Exchange(coder, Svid(coder), root, kAccessType, "github/write"), 400,
                   "invalid_scope", "exceeds the parent session's scope");
  ExpectOAuthError(Exchange(coder, Svid(coder), root, kAccessType, "github/*"), 400,
                   "invalid_scope", "exceeds the parent session's scope");
  // A grant of the child's agent that the parent never had.
  ExpectOAuthError(Exchange(coder, Svid(coder), root, kAccessType, "fs/write"), 400,
                   "invalid_scope", "exceeds the parent session's scope");
  // More than the agent itself was granted, at the root.
  ExpectOAuthError(Exchange(orch, Svid(orch), R"({"sub":"x"})", kAssertionType, "fs/write"), 400,
                   "invalid_scope", "not granted to agent orchestrator");
  // Without a scope the child gets the intersection, never more.
  std::string child = ChildToken(coder, root);
  EXPECT_EQ(Introspect(child)["scope"], "github/read");

  // Each refusal is evidence in the ledger (token.refuse), without the tokens sent. Refusals are
  // recorded without waiting for durability, but in order: the child's events, durable when
  // its token was answered, come after them.
  auto read = [&](const std::string& path) {
    http::ClientRequest g = Get(path);
    g.headers.Set("authorization", "Bearer " + admin());
    return Send(g);
  };
  auto cp = read("/v1/ledger/checkpoint");
  ASSERT_TRUE(cp.ok());
  ASSERT_EQ(cp->status, 200) << cp->body;
  size_t nl = cp->body.find('\n');
  uint64_t size = std::stoull(cp->body.substr(nl + 1, cp->body.find('\n', nl + 1) - nl - 1));
  std::string root_sid(Introspect(root)["sid"].as_string());
  std::vector<json::object> refusals;
  for (uint64_t i = 0; i < size; ++i) {
    auto e = read("/v1/ledger/entries/" + std::to_string(i));
    ASSERT_TRUE(e.ok());
    json::object ev = Body(*e)["event"].as_object();
    if (ev["kind"] != "token.refuse") continue;
    EXPECT_EQ(e->body.find(root.substr(root.rfind('.') + 1)), std::string::npos);
    refusals.push_back(std::move(ev));
  }
  ASSERT_EQ(refusals.size(), 4u);
  json::object& first = refusals[0];
  EXPECT_EQ(first["refusal"].as_object()["error"], "invalid_scope");
  EXPECT_EQ(first["request"].as_object()["scope"], "github/write");
  EXPECT_EQ(first["actor"].as_object()["agent"], "coder");
  EXPECT_EQ(first["target"].as_object()["session"], json::value(root_sid));
  EXPECT_EQ(refusals[3]["refusal"].as_object()["reason"],
            "scope fs/write is not granted to agent orchestrator");
}

TEST_F(IdentityE2e, DepthLimitReachedIsRefused) {
  TestAgent orch = Register("orchestrator", {"github/*"}, /*max_depth=*/1);
  TestAgent coder = Register("coder", {"github/*"});
  std::string root = RootToken(orch);           // depth 0
  std::string child = ChildToken(coder, root);  // depth 1: the tree's limit
  ASSERT_FALSE(child.empty());
  ExpectOAuthError(Exchange(coder, Svid(coder), child, kAccessType), 400, "invalid_grant",
                   "delegation depth limit (1)");
  // The limit is the smallest on the chain: coder allows 3 but the tree was capped at 1.
  ExpectOAuthError(Exchange(orch, Svid(orch), child, kAccessType), 400, "invalid_grant",
                   "depth limit");
}

TEST_F(IdentityE2e, WrongClientWithAnotherAgentsActorTokenIsRefused) {
  TestAgent alice = Register("alice-bot", {"github/*"});
  TestAgent mallory = Register("mallory-bot", {"github/*"});
  std::string alice_svid = Svid(alice);
  ExpectOAuthError(Exchange(mallory, alice_svid, R"({"sub":"nightly"})", kAssertionType), 400,
                   "invalid_grant", "actor_token belongs to another agent");
  std::string root = RootToken(alice);
  ExpectOAuthError(Exchange(mallory, alice_svid, root, kAccessType), 400, "invalid_grant",
                   "actor_token belongs to another agent");
  // Nor can mallory authenticate as alice with its own key.
  Form f = ClientAuth(alice, Assertion(mallory, AssertionClaims(alice)));
  f.insert(f.end(), {{"grant_type", "client_credentials"}, {"audience", kIssuer}});
  ExpectOAuthError(Send(PostForm("/oauth2/token", f)), 401, "invalid_client", "");
}

TEST_F(IdentityE2e, IdTokenFromUntrustedIssuerIsRefused) {
  TestAgent a = Register("planner", {"github/*"});
  // The trusted issuer's token is accepted and the initiator is verified.
  std::string token = Issued(Exchange(a, Svid(a), IdToken(IdClaims()), kIdTokenType));
  json::object info = Introspect(token);
  EXPECT_EQ(info["active"], true);
  EXPECT_EQ(info["sub"], "alice@example.com");
  EXPECT_EQ(info["initiator_verification"], "verified");
  // Another issuer, correctly signed with its own key.
  auto rogue = EcdsaP256PrivateKey::Generate();
  json::object claims = IdClaims();
  claims["iss"] = "https://evil.example";
  ExpectOAuthError(Exchange(a, Svid(a), IdToken(claims, &*rogue, "evil-1"), kIdTokenType), 400,
                   "invalid_grant", "issuer is not trusted");
  // The trusted issuer's name with a key it never published (same kid).
  ExpectOAuthError(Exchange(a, Svid(a), IdToken(IdClaims(), &*rogue), kIdTokenType), 400,
                   "invalid_grant", "signature does not verify");
  // The trusted issuer's name with an unknown kid.
  ExpectOAuthError(Exchange(a, Svid(a), IdToken(IdClaims(), &*rogue, "idp-2"), kIdTokenType), 400,
                   "invalid_grant", "unknown kid");
}

TEST_F(IdentityE2e, ProdAgentWithoutOwnersIsRefused) {
  auto key = EcdsaP256PrivateKey::Generate();
  json::object body{{"name", "prod-bot"},
                    {"environment", "prod"},
                    {"grants", json::array{"db/read"}},
                    {"sponsor", "cto"},
                    {"client_jwk", json::parse(crypto::EcPublicJwkJson(key->public_key(), "k"))}};
  auto r = Send(PostJson(json::serialize(body), admin(), "/v1/agents"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 409) << r->body;
  std::string message(Body(*r)["error"].as_object()["message"].as_string());
  EXPECT_NE(message.find("missing: business_owner, technical_owner, revocation_contact"),
            std::string::npos)
      << message;
  body["business_owner"] = "payments";
  r = Send(PostJson(json::serialize(body), admin(), "/v1/agents"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 409);
  message = Body(*r)["error"].as_object()["message"].as_string().c_str();
  EXPECT_NE(message.find("missing: technical_owner, revocation_contact"), std::string::npos)
      << message;
  http::ClientRequest get = Get("/v1/agents/prod-bot");
  get.headers.Set("authorization", "Bearer " + admin());
  r = Send(get);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 404) << r->body;  // nothing was stored
  // Complete, it is registered.
  body["technical_owner"] = "sre";
  body["revocation_contact"] = "oncall@example.com";
  r = Send(PostJson(json::serialize(body), admin(), "/v1/agents"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 201) << r->body;
}

// --- The CLI against the same server --------------------------------------------------------

// What the CLI printed (testing::RunCli), with its stdout read as JSON.
struct CliResult : testing::CliResult {
  json::value Json() const {
    boost::system::error_code ec;
    json::value v = json::parse(out, ec);
    EXPECT_FALSE(ec) << out << err;
    return v;
  }
};

class IdentityCli : public IdentityE2e {
 protected:
  // Runs `custody ARGS --server URL [--token T]`, stdout and stderr apart.
  CliResult Cli(std::vector<std::string> args, bool with_token = true,
                std::vector<std::string> env = {}) {
    if (std::find(args.begin(), args.end(), "--server") == args.end()) {
      args.insert(args.end(), {"--server", server_->url()});
    }
    if (with_token) args.insert(args.end(), {"--token", admin()});
    return CliResult{testing::RunCli(args, dir_, "", env)};
  }
};

TEST_F(IdentityCli, AgentRegisterListShowDisable) {
  auto key = EcdsaP256PrivateKey::Generate();
  std::ofstream(dir_ / "planner.jwk") << crypto::EcPublicJwkJson(key->public_key(), "k1");
  CliResult r = Cli({"agent",
                     "register",
                     "--name",
                     "planner",
                     "--description",
                     "plans work",
                     "--environment",
                     "staging",
                     "--business-owner",
                     "eng",
                     "--technical-owner",
                     "platform",
                     "--sponsor",
                     "cto",
                     "--revocation-contact",
                     "oncall@example.com",
                     "--scope",
                     "github/read",
                     "--scope",
                     "github/write",
                     "--permission",
                     "assert_initiator",
                     "--max-depth",
                     "2",
                     "--max-token-lifetime",
                     "900",
                     "--jwk",
                     (dir_ / "planner.jwk").string()});
  ASSERT_EQ(r.rc, 0) << r.out << r.err;
  json::object agent = r.Json().as_object();
  EXPECT_EQ(agent["name"], "planner");
  EXPECT_EQ(agent["environment"], "staging");
  EXPECT_EQ(agent["grants"], (json::array{"github/read", "github/write"}));
  EXPECT_EQ(agent["max_delegation_depth"], 2);
  EXPECT_EQ(agent["max_token_lifetime_s"], 900);
  EXPECT_EQ(agent["credential"], "private_key_jwt");
  EXPECT_EQ(agent.find("client_secret"), agent.end());

  // From a file, with a generated client secret: printed once, on stdout.
  std::ofstream(dir_ / "bot.json") << R"({"name":"secret-bot","grants":["db/read"]})";
  r = Cli({"agent", "register", "--file", (dir_ / "bot.json").string(), "--client-secret"});
  ASSERT_EQ(r.rc, 0) << r.out << r.err;
  std::string secret(r.Json().as_object()["client_secret"].as_string());
  EXPECT_TRUE(secret.starts_with("cs_"));
  EXPECT_NE(r.err.find("shown only this once"), std::string::npos);
  // The secret works at the token endpoint.
  auto t = Send(PostForm("/oauth2/token", {{"grant_type", "client_credentials"},
                                           {"client_id", "secret-bot"},
                                           {"client_secret", secret},
                                           {"audience", kIssuer}}));
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->status, 200) << t->body;

  r = Cli({"agent", "list"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.Json().as_object()["agents"].as_array().size(), 2u);
  EXPECT_EQ(r.out.find("cs_"), std::string::npos);  // never a secret, never a token
  EXPECT_EQ(r.out.find(admin()), std::string::npos);
  // The token may come from CUSTODY_TOKEN.
  r = Cli({"agent", "show", "planner"}, /*with_token=*/false, {"CUSTODY_TOKEN=" + admin()});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.Json().as_object()["business_owner"], "eng");

  // A prod agent without owners: the server's reason, on stderr, and a non-zero exit.
  r = Cli({"agent", "register", "--name", "prod-bot", "--env", "prod", "--scope", "db/read",
           "--client-secret"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_TRUE(r.out.empty()) << r.out;
  EXPECT_NE(r.err.find("missing: business_owner, technical_owner, revocation_contact"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("failed_precondition"), std::string::npos) << r.err;

  // Disable revokes the agent's live sessions; its client can no longer get tokens.
  TestAgent orch = Register("orch", {"github/*"});
  std::string root = RootToken(orch);
  ASSERT_TRUE(Active(root));
  r = Cli({"agent", "disable", "orch"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.Json().as_object()["revoked_sessions"].as_array().size(), 1u);
  EXPECT_FALSE(Active(root));
  ExpectOAuthError(SvidRequest(orch, Assertion(orch)), 401, "invalid_client", "disabled");
  r = Cli({"agent", "show", "orch"});
  EXPECT_EQ(r.Json().as_object()["disabled"], true);

  r = Cli({"agent", "show", "nobody"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("not_found"), std::string::npos) << r.err;
}

TEST_F(IdentityCli, SessionShowTreeAndRevokeCascades) {
  TestAgent orch = Register("orchestrator", {"github/*"});
  TestAgent coder = Register("coder", {"github/*"});
  TestAgent tester = Register("tester", {"github/*"});
  std::string root = RootToken(orch);
  std::string child = ChildToken(coder, root, "github/read");
  std::string grandchild = ChildToken(tester, child);
  std::string sibling = ChildToken(tester, root);
  std::string root_sid(Introspect(root)["sid"].as_string());
  std::string child_sid(Introspect(child)["sid"].as_string());
  std::string grandchild_sid(Introspect(grandchild)["sid"].as_string());
  std::string grandchild_jti(Introspect(grandchild)["jti"].as_string());

  CliResult r = Cli({"session", "show", root_sid});
  ASSERT_EQ(r.rc, 0) << r.err;
  json::object s = r.Json().as_object();
  EXPECT_EQ(s["sid"], json::value(root_sid));
  EXPECT_EQ(s["agent"], "orchestrator");
  EXPECT_EQ(s["initiator"].as_object()["asserted_by"], "orchestrator");

  r = Cli({"session", "show", root_sid, "--tree", "--json"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.Json().as_object()["tree"].as_array().size(), 4u);

  r = Cli({"session", "show", root_sid, "--tree"});
  ASSERT_EQ(r.rc, 0) << r.err;
  // Three levels, indented, the grandchild under the child.
  std::istringstream lines(r.out);
  std::vector<std::string> tree;
  for (std::string l; std::getline(lines, l);) tree.push_back(l);
  ASSERT_EQ(tree.size(), 5u) << r.out;
  EXPECT_NE(tree[0].find("initiator nightly-triage"), std::string::npos) << r.out;
  EXPECT_NE(tree[0].find("asserted by orchestrator"), std::string::npos) << r.out;
  EXPECT_TRUE(tree[1].starts_with(root_sid + "  agent orchestrator  depth 0  active")) << r.out;
  EXPECT_TRUE(tree[2].starts_with("├── " + child_sid + "  agent coder  depth 1")) << r.out;
  EXPECT_NE(tree[2].find("scopes [github/read]"), std::string::npos) << r.out;
  EXPECT_TRUE(tree[3].starts_with("│   └── " + grandchild_sid + "  agent tester  depth 2"))
      << r.out;
  EXPECT_TRUE(tree[4].starts_with("└── ")) << r.out;
  EXPECT_EQ(r.out.find("eyJ"), std::string::npos);  // never a token

  // Revoking the child takes the grandchild with it, not the root or the sibling.
  r = Cli({"session", "revoke", child_sid, "--reason", "compromised"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.Json().as_object()["revoked_sessions"].as_array().size(), 2u) << r.out;
  EXPECT_FALSE(Active(child));
  EXPECT_FALSE(Active(grandchild));
  EXPECT_TRUE(Active(root));
  EXPECT_TRUE(Active(sibling));
  r = Cli({"session", "show", root_sid, "--tree"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find(child_sid + "  agent coder  depth 1  revoked (compromised)"),
            std::string::npos)
      << r.out;
  // Revoking the root cascades to everything left.
  r = Cli({"session", "revoke", root_sid, "--reason", "done"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_FALSE(Active(root));
  EXPECT_FALSE(Active(sibling));
  // `--reason` is required.
  r = Cli({"session", "revoke", root_sid});
  EXPECT_NE(r.rc, 0);
  // A single credential by jti (here one already dead: the call still succeeds and is recorded).
  r = Cli({"credential", "revoke", grandchild_jti});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.Json().as_object()["revoked"], true);
}

TEST_F(IdentityCli, CredentialRevokeEndsOneToken) {
  TestAgent orch = Register("orchestrator", {"github/*"});
  std::string root = RootToken(orch);
  std::string other = RootToken(orch);
  std::string jti(Introspect(root)["jti"].as_string());
  CliResult r = Cli({"credential", "revoke", jti});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_FALSE(Active(root));
  EXPECT_TRUE(Active(other));
}

TEST_F(IdentityCli, ErrorsAreClear) {
  // No token: the server's 401, with a hint.
  CliResult r = Cli({"agent", "list"}, /*with_token=*/false);
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("unauthenticated"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("CUSTODY_TOKEN"), std::string::npos) << r.err;
  // A reader token may read but not change anything.
  std::string reader = testing::CreateToken(dir_ / "data", "reader", nullptr);
  r = Cli({"agent", "disable", "x", "--token", reader}, /*with_token=*/false);
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("permission_denied"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find(reader), std::string::npos);  // the token is never echoed
  // Nobody listening: the message names the URL.
  std::string nowhere = "http://127.0.0.1:1";
  r = Cli({"agent", "list", "--server", nowhere});
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("cannot reach the Custody server at " + nowhere), std::string::npos)
      << r.err;
  // Local mistakes are caught before anything is sent.
  std::ofstream(dir_ / "private.jwk") << R"({"kty":"EC","crv":"P-256","x":"a","y":"b","d":"c"})";
  r = Cli({"agent", "register", "--name", "x", "--jwk", (dir_ / "private.jwk").string()});
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("private key"), std::string::npos) << r.err;
  r = Cli({"agent", "register", "--name", "x"});
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("--jwk FILE"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace custody

// TokenService against a real SQLite store and a fake clock. Most of the value is in the
// refusals: every forged, expired, escalated or misdirected token must be turned away.
#include "identity/token_service.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "common/encoding.h"
#include "crypto/sha256.h"
#include "store/stores.h"
#include "store/testing/fault_vfs.h"

namespace custody::identity {
namespace {

namespace json = boost::json;
constexpr const char* kIssuer = "https://custody.test";
constexpr const char* kIdp = "https://idp.example.com";

json::object Payload(const std::string& token) {
  size_t d1 = token.find('.'), d2 = token.rfind('.');
  auto bytes = Base64UrlDecode(std::string_view(token).substr(d1 + 1, d2 - d1 - 1));
  return json::parse(AsString(*bytes)).as_object();
}
json::object Header(const std::string& token) {
  auto bytes = Base64UrlDecode(std::string_view(token).substr(0, token.find('.')));
  return json::parse(AsString(*bytes)).as_object();
}

class TokenServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = std::filesystem::temp_directory_path() /
            ("custody-tokens-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".db");
    std::filesystem::remove(path_);
    store::StorageOptions files;
    files.identity_path = path_.string();
    store_ = std::move(*store::OpenIdentityStore(files));
    idp_key_ =
        std::make_unique<crypto::EcdsaP256PrivateKey>(*crypto::EcdsaP256PrivateKey::Generate());
    TokenServiceOptions o;
    o.trust_domain = "custody.test";
    o.issuer = kIssuer;
    TrustedIssuer idp;
    idp.issuer = kIdp;
    idp.audience = "custody";
    idp.jwks.Add("idp-1", idp_key_->public_key());
    o.trusted_issuers.push_back(idp);
    if (configure_) configure_(o);
    auto s = TokenService::Create(
        *store_, clock_, random_, errors_,
        [this](const std::string& e) {
          if (!sink_status_.ok()) return sink_status_;
          events_.push_back(e);
          return OkStatus();
        },
        o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    svc_ = std::move(*s);
    planner_key_ = Register("planner", {"github/*", "db/read"}, {"assert_initiator"}, 2);
    worker_key_ = Register("worker", {"github/create_issue", "github/list_issues"}, {}, 3);
  }
  void TearDown() override {
    svc_.reset();
    store_.reset();
    for (const char* suffix : {"", "-wal", "-shm"})
      std::filesystem::remove(path_.string() + suffix);
  }

  std::shared_ptr<crypto::EcdsaP256PrivateKey> Register(const std::string& name, ScopeSet grants,
                                                        std::vector<std::string> perms, int depth) {
    auto key =
        std::make_shared<crypto::EcdsaP256PrivateKey>(*crypto::EcdsaP256PrivateKey::Generate());
    Agent a;
    a.name = name;
    a.grants = std::move(grants);
    a.permissions = std::move(perms);
    a.max_delegation_depth = depth;
    a.client_jwk = crypto::EcPublicJwkJson(key->public_key(), name + "-key");
    auto r = svc_->RegisterAgent(a, false, "admin-1");
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return key;
  }

  int64_t Now() const {
    return std::chrono::duration_cast<std::chrono::seconds>(clock_.Now().time_since_epoch())
        .count();
  }

  std::string Assertion(const std::string& client, const crypto::EcdsaP256PrivateKey& key,
                        const std::string& aud = std::string(kIssuer) + "/oauth2/token",
                        int64_t exp_in = 60, std::string jti = "") {
    if (jti.empty()) jti = "a-" + std::to_string(++counter_);
    json::object c{{"iss", client},         {"sub", client}, {"aud", aud},
                   {"exp", Now() + exp_in}, {"iat", Now()},  {"jti", jti}};
    json::object h{{"alg", "ES256"}, {"kid", client + "-key"}};
    return *crypto::SignJwsEs256(json::serialize(h), json::serialize(c), key);
  }

  Agent Auth(const std::string& client, const crypto::EcdsaP256PrivateKey& key) {
    auto a = svc_->AuthenticateClient(client, std::string(kClientAssertionTypeJwtBearer),
                                      Assertion(client, key), "");
    EXPECT_TRUE(a.ok()) << a.error.description;
    return *a.value;
  }

  std::string Svid(const Agent& a) {
    auto t = svc_->IssueSvid(a, kIssuer);
    EXPECT_TRUE(t.ok()) << t.error.description;
    return t.value->access_token;
  }

  std::string IdToken(const std::string& sub, const crypto::EcdsaP256PrivateKey& key,
                      const std::string& iss = kIdp, int64_t exp_in = 300) {
    json::object c{
        {"iss", iss}, {"sub", sub}, {"aud", "custody"}, {"exp", Now() + exp_in}, {"iat", Now()}};
    return *crypto::SignJwsEs256(R"({"alg":"ES256","kid":"idp-1"})", json::serialize(c), key);
  }

  // planner starts a session for alice (verified by the IdP).
  OAuthResult<IssuedToken> RootSession(const std::string& scope = "") {
    Agent planner = Auth("planner", *planner_key_);
    ExchangeRequest r;
    r.subject_token = IdToken("alice@example.com", *idp_key_);
    r.subject_token_type = std::string(kTokenTypeIdToken);
    r.actor_token = Svid(planner);
    r.actor_token_type = std::string(kTokenTypeJwt);
    r.audience = "custody-gateway";
    r.scope = scope;
    r.objective = "triage the open issues";
    return svc_->Exchange(planner, r);
  }

  OAuthResult<IssuedToken> Delegate(const std::string& parent_token, const std::string& client,
                                    const crypto::EcdsaP256PrivateKey& key,
                                    const std::string& scope = "", int64_t lifetime = 0) {
    Agent agent = Auth(client, key);
    ExchangeRequest r;
    r.subject_token = parent_token;
    r.subject_token_type = std::string(kTokenTypeAccessToken);
    r.actor_token = Svid(agent);
    r.actor_token_type = std::string(kTokenTypeJwt);
    r.audience = "custody-gateway";
    r.scope = scope;
    r.requested_lifetime_s = lifetime;
    return svc_->Exchange(agent, r);
  }

  FakeClock clock_;
  SystemRandom random_;
  NullLogger log_;
  ErrorReporter errors_{log_};  // declared before svc_, which reports to it
  std::filesystem::path path_;
  std::unique_ptr<store::IdentityStore> store_;
  std::unique_ptr<TokenService> svc_;
  std::unique_ptr<crypto::EcdsaP256PrivateKey> idp_key_;
  std::shared_ptr<crypto::EcdsaP256PrivateKey> planner_key_, worker_key_;
  std::vector<std::string> events_;
  Status sink_status_ = OkStatus();  // what the event sink answers; events are kept if OK
  int counter_ = 0;
  std::function<void(TokenServiceOptions&)> configure_;  // SetUp's last word on the options
};

TEST_F(TokenServiceTest, JwtSvidFollowsTheSpiffeProfile) {
  Agent planner = Auth("planner", *planner_key_);
  auto t = svc_->IssueSvid(planner, "reports");
  ASSERT_TRUE(t.ok());
  json::object h = Header(t.value->access_token);
  EXPECT_EQ(h.size(), 3u);  // alg, kid, typ and nothing else
  EXPECT_EQ(h.at("alg"), "ES256");
  EXPECT_EQ(h.at("typ"), "JWT");
  json::object c = Payload(t.value->access_token);
  std::string sub(c.at("sub").as_string());
  EXPECT_EQ(sub.rfind("spiffe://custody.test/agent/planner/instance/", 0), 0u) << sub;
  EXPECT_EQ(c.at("aud").as_array().at(0), "reports");
  EXPECT_EQ(c.at("exp").as_int64(), Now() + 300);
  EXPECT_TRUE(svc_->VerifySvid(t.value->access_token, "reports").ok());
  EXPECT_FALSE(svc_->VerifySvid(t.value->access_token, "billing").ok());  // wrong aud
  clock_.Advance(std::chrono::seconds(301 + 30));
  EXPECT_FALSE(svc_->VerifySvid(t.value->access_token, "reports").ok());  // expired
  EXPECT_FALSE(svc_->IssueSvid(planner, "").ok());                        // aud required
}

TEST_F(TokenServiceTest, ClientAssertionsAreStrict) {
  auto kt = std::string(kClientAssertionTypeJwtBearer);
  std::string a = Assertion("planner", *planner_key_);
  EXPECT_TRUE(svc_->AuthenticateClient("planner", kt, a, "").ok());
  auto replay = svc_->AuthenticateClient("planner", kt, a, "");
  ASSERT_FALSE(replay.ok());
  EXPECT_EQ(replay.error.error, "invalid_client");
  EXPECT_EQ(replay.error.http_status, 401);
  EXPECT_FALSE(
      svc_->AuthenticateClient("planner", kt, Assertion("planner", *worker_key_), "").ok());
  EXPECT_FALSE(
      svc_->AuthenticateClient("planner", kt, Assertion("planner", *planner_key_, "elsewhere"), "")
          .ok());
  EXPECT_FALSE(svc_->AuthenticateClient("planner", kt,
                                        Assertion("planner", *planner_key_, kIssuer, -100), "")
                   .ok());  // expired
  EXPECT_FALSE(
      svc_->AuthenticateClient("worker", kt, Assertion("planner", *planner_key_), "").ok());
  EXPECT_FALSE(svc_->AuthenticateClient("nobody", kt, Assertion("nobody", *planner_key_), "").ok());
  EXPECT_FALSE(svc_->AuthenticateClient("planner", "", "", "").ok());
}

TEST_F(TokenServiceTest, ClientSecretIsShownOnceAndStoredHashed) {
  Agent a;
  a.name = "scripted";
  a.grants = {"db/read"};
  auto r = svc_->RegisterAgent(a, true, "admin-1");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_FALSE(r->client_secret.empty());
  auto stored = svc_->GetAgent("scripted");
  EXPECT_EQ(stored->client_secret_sha256.find(r->client_secret), std::string::npos);
  EXPECT_TRUE(svc_->AuthenticateClient("scripted", "", "", r->client_secret).ok());
  EXPECT_FALSE(svc_->AuthenticateClient("scripted", "", "", r->client_secret + "x").ok());
  for (const auto& e : events_) EXPECT_EQ(e.find(r->client_secret), std::string::npos);
}

TEST_F(TokenServiceTest, ProdAgentWithoutOwnersIsRefusedAndSaysWhy) {
  Agent a;
  a.name = "prod-bot";
  a.environment = Environment::kProd;
  a.grants = {"db/read"};
  auto r = svc_->RegisterAgent(a, true, "admin-1");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("business owner"), std::string::npos);
  // Promotion of an existing dev agent is checked the same way.
  auto planner = svc_->GetAgent("planner");
  planner->environment = Environment::kProd;
  EXPECT_EQ(svc_->UpdateAgent(*planner, "admin-1").status().code(),
            StatusCode::kFailedPrecondition);
}

TEST_F(TokenServiceTest, ExchangeBuildsAnAtJwtWithTheChain) {
  auto root = RootSession();
  ASSERT_TRUE(root.ok()) << root.error.description;
  json::object h = Header(root.value->access_token);
  EXPECT_EQ(h.at("typ"), "at+jwt");
  json::object c = Payload(root.value->access_token);
  EXPECT_EQ(c.at("sub"), "alice@example.com");
  EXPECT_EQ(c.at("scope"), "db/read github/*");
  EXPECT_EQ(c.at("initiator_verification"), "verified");
  EXPECT_EQ(std::string(c.at("objective").as_string()),
            "sha256:" + HexEncode(crypto::Sha256("triage the open issues")));
  std::string planner_instance(c.at("act").as_object().at("sub").as_string());

  auto child = Delegate(root.value->access_token, "worker", *worker_key_);
  ASSERT_TRUE(child.ok()) << child.error.description;
  json::object cc = Payload(child.value->access_token);
  EXPECT_EQ(cc.at("sub"), "alice@example.com");  // the initiator stays the subject
  EXPECT_EQ(cc.at("scope"), "github/create_issue github/list_issues");  // narrowed
  EXPECT_EQ(cc.at("txn"), c.at("txn"));
  EXPECT_EQ(cc.at("act").as_object().at("act").as_object().at("sub"), planner_instance.c_str());
  EXPECT_LE(cc.at("exp").as_int64(), c.at("exp").as_int64());
  auto v = svc_->VerifyAccessToken(child.value->access_token, "custody-gateway");
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->session.parent_sid, root.value->sid);
  EXPECT_EQ(v->session.depth, 1);
  EXPECT_FALSE(svc_->VerifyAccessToken(child.value->access_token, "other-aud").ok());
  // Events carry jtis, never tokens.
  for (const auto& e : events_) {
    EXPECT_EQ(e.find(root.value->access_token), std::string::npos);
    EXPECT_EQ(e.find("eyJ"), std::string::npos);
  }
}

TEST_F(TokenServiceTest, ScopeEscalationThroughExchangeIsRefused) {
  auto root = RootSession("github/create_issue");
  ASSERT_TRUE(root.ok());
  auto wider = Delegate(root.value->access_token, "worker", *worker_key_, "github/list_issues");
  ASSERT_FALSE(wider.ok());
  EXPECT_EQ(wider.error.error, "invalid_scope");
  auto ungranted = RootSession("fs/write");
  ASSERT_FALSE(ungranted.ok());
  EXPECT_EQ(ungranted.error.error, "invalid_scope");
}

// An escalation attempt through /oauth2/token is evidence: a token.refuse event names the
// client, its instance, the session it tried to widen, what it asked for and why it was refused,
// and carries none of the tokens or the assertion it sent.
TEST_F(TokenServiceTest, ARefusedEscalationIsRecordedWithoutItsTokens) {
  auto root = RootSession("github/create_issue");
  ASSERT_TRUE(root.ok());
  TokenRequest r;
  r.grant_type = "urn:ietf:params:oauth:grant-type:token-exchange";
  r.client_id = "worker";
  r.client_assertion_type = std::string(kClientAssertionTypeJwtBearer);
  r.client_assertion = Assertion("worker", *worker_key_);
  r.subject_token = root.value->access_token;
  r.subject_token_type = std::string(kTokenTypeAccessToken);
  r.actor_token = Svid(Auth("worker", *worker_key_));
  r.actor_token_type = std::string(kTokenTypeJwt);
  r.audience = "custody-gateway";
  r.scope = "github/list_issues";
  size_t before = events_.size();
  auto out = svc_->Token(r);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.error.error, "invalid_scope");
  ASSERT_EQ(events_.size(), before + 1);
  const std::string& text = events_.back();
  for (const std::string& secret : {r.client_assertion, r.subject_token, r.actor_token}) {
    EXPECT_EQ(text.find(secret), std::string::npos);
    // Not even a token's signature part.
    EXPECT_EQ(text.find(secret.substr(secret.rfind('.') + 1)), std::string::npos);
  }
  json::object e = json::parse(text).as_object();
  EXPECT_EQ(e.at("kind"), "token.refuse");
  EXPECT_EQ(e.at("refusal").at("error"), "invalid_scope");
  EXPECT_EQ(e.at("refusal").at("reason"),
            "scope github/list_issues exceeds the parent session's scope");
  EXPECT_EQ(e.at("request").at("scope"), "github/list_issues");
  EXPECT_EQ(e.at("client").at("id"), "worker");
  EXPECT_EQ(e.at("client").at("authenticated"), true);
  EXPECT_EQ(e.at("actor").at("agent"), "worker");
  std::string instance(e.at("actor").at("instance").as_string());
  EXPECT_EQ(instance.rfind("spiffe://custody.test/agent/worker/instance/", 0), 0u) << instance;
  EXPECT_EQ(e.at("target").at("session"),
            json::value(root.value->sid));    // filed under the widened session
  EXPECT_TRUE(svc_->Token(r).ok() == false);  // the same again: one more event
  EXPECT_EQ(events_.size(), before + 2);

  // The answer is what the primitives answer: a granted request through Token() is issued and
  // leaves no refusal.
  r.client_assertion = Assertion("worker", *worker_key_);
  r.scope = "github/create_issue";
  auto ok = svc_->Token(r);
  ASSERT_TRUE(ok.ok()) << ok.error.description;
  EXPECT_NE(events_.back().find("\"kind\":\"delegation\""), std::string::npos);
}

// Refusals before any grant runs are recorded too: a client that does not authenticate (named
// only as it asserted itself, never indexed under an agent), an unknown grant, a bad lifetime.
// What the client sent is bounded and made printable.
TEST_F(TokenServiceTest, EveryRefusedTokenRequestIsRecorded) {
  auto last = [&] { return json::parse(events_.back()).as_object(); };
  TokenRequest bad_secret;
  bad_secret.grant_type = "client_credentials";
  bad_secret.client_id = "planner";
  bad_secret.client_secret = "not-the-secret";
  bad_secret.audience = std::string(kIssuer);
  EXPECT_EQ(svc_->Token(bad_secret).error.http_status, 401);
  json::object e = last();
  EXPECT_EQ(e.at("kind"), "token.refuse");
  EXPECT_EQ(e.at("client").at("id"), "planner");
  EXPECT_EQ(e.at("client").at("authenticated"), false);
  EXPECT_EQ(e.at("client").at("authentication"), "client_secret");
  EXPECT_EQ(e.at("actor").at("agent"), "");  // asserted, not authenticated: no agent column
  EXPECT_EQ(e.at("refusal").at("error"), "invalid_client");
  EXPECT_EQ(events_.back().find("not-the-secret"), std::string::npos);

  TokenRequest grant;
  grant.grant_type = "password";
  grant.client_id = "planner";
  grant.client_assertion_type = std::string(kClientAssertionTypeJwtBearer);
  grant.client_assertion = Assertion("planner", *planner_key_);
  EXPECT_EQ(svc_->Token(grant).error.error, "unsupported_grant_type");
  e = last();
  EXPECT_EQ(e.at("request").at("grant_type"), "password");
  EXPECT_EQ(e.at("actor").at("agent"), "planner");
  EXPECT_EQ(e.at("client").at("authentication"), "private_key_jwt");

  grant.grant_type = "urn:ietf:params:oauth:grant-type:token-exchange";
  grant.client_assertion = Assertion("planner", *planner_key_);
  grant.requested_lifetime = "60s";
  EXPECT_EQ(svc_->Token(grant).error.description, "bad requested_lifetime");
  EXPECT_EQ(last().at("request").at("requested_lifetime"), "60s");

  TokenRequest noisy;
  noisy.grant_type = "client_credentials";
  noisy.client_id = "\x01\xff" + std::string(1000, 'x');
  noisy.client_secret = "s";
  EXPECT_EQ(svc_->Token(noisy).error.error, "invalid_client");
  EXPECT_EQ(last().at("client").at("id"), json::value("??" + std::string(254, 'x') + "..."));
}

// With an asynchronous refusal sink (custody serve), a refusal is answered without waiting for
// its event, and at most max_pending_refusals wait at once: past that a refusal is answered,
// not recorded, and reported; a failed recording is reported too.
TEST_F(TokenServiceTest, RefusalsAreRecordedWithoutWaitingAndBounded) {
  std::vector<std::pair<std::string, std::function<void(Status)>>> held;
  TearDown();
  configure_ = [&](TokenServiceOptions& o) {
    o.max_pending_refusals = 2;
    o.async_sink = [&](const std::string& e, std::function<void(Status)> done) {
      held.emplace_back(e, std::move(done));
    };
  };
  SetUp();
  TokenRequest r;
  r.grant_type = "client_credentials";
  r.client_id = "planner";
  r.client_secret = "wrong";
  for (int i = 0; i < 3; ++i) EXPECT_EQ(svc_->Token(r).error.error, "invalid_client");
  ASSERT_EQ(held.size(), 2u);
  EXPECT_NE(held[0].first.find("\"kind\":\"token.refuse\""), std::string::npos);
  EXPECT_EQ(errors_.Count("identity.refusal_dropped"), 1u);
  for (const auto& e : events_) EXPECT_EQ(e.find("token.refuse"), std::string::npos);
  held[0].second(OkStatus());
  held[1].second(UnavailableError("ledger is closed"));
  EXPECT_EQ(errors_.Count("identity.refusal_record"), 1u);
  EXPECT_EQ(svc_->Token(r).error.error, "invalid_client");  // room again
  ASSERT_EQ(held.size(), 3u);
  EXPECT_EQ(errors_.Count("identity.refusal_dropped"), 1u);
  held[2].second(OkStatus());
}

TEST_F(TokenServiceTest, DepthLimitAndExpiryExtensionAreRefused) {
  auto root = RootSession();
  auto d1 = Delegate(root.value->access_token, "worker", *worker_key_);
  ASSERT_TRUE(d1.ok());
  auto d2 = Delegate(d1.value->access_token, "worker", *worker_key_);
  ASSERT_TRUE(d2.ok()) << d2.error.description;
  // planner's limit is 2: a third level below its root session is refused.
  auto d3 = Delegate(d2.value->access_token, "worker", *worker_key_);
  ASSERT_FALSE(d3.ok());
  EXPECT_EQ(d3.error.error, "invalid_grant");
  EXPECT_NE(d3.error.description.find("depth"), std::string::npos);
  clock_.Advance(std::chrono::seconds(1800));
  auto longer = Delegate(root.value->access_token, "worker", *worker_key_, "", 3000);
  ASSERT_FALSE(longer.ok());
  EXPECT_NE(longer.error.description.find("outlive"), std::string::npos);
}

TEST_F(TokenServiceTest, SomeoneElsesActorTokenIsRefused) {
  auto root = RootSession();
  Agent worker = Auth("worker", *worker_key_);
  Agent planner = Auth("planner", *planner_key_);
  ExchangeRequest r;
  r.subject_token = root.value->access_token;
  r.subject_token_type = std::string(kTokenTypeAccessToken);
  r.actor_token = Svid(planner);  // planner's identity, presented by worker
  r.actor_token_type = std::string(kTokenTypeJwt);
  r.audience = "custody-gateway";
  auto out = svc_->Exchange(worker, r);
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.error.description.find("another agent"), std::string::npos);
}

TEST_F(TokenServiceTest, IdTokensMustComeFromATrustedIssuerAndBeValid) {
  Agent planner = Auth("planner", *planner_key_);
  auto rogue = crypto::EcdsaP256PrivateKey::Generate();
  ExchangeRequest r;
  r.subject_token_type = std::string(kTokenTypeIdToken);
  r.actor_token_type = std::string(kTokenTypeJwt);
  r.audience = "custody-gateway";
  for (const std::string& id_token :
       {IdToken("mallory", *rogue, "https://evil.example.com"),  // untrusted issuer
        IdToken("mallory", *rogue),                              // trusted iss, wrong key
        IdToken("alice", *idp_key_, kIdp, -60)}) {               // expired
    r.subject_token = id_token;
    r.actor_token = Svid(planner);
    auto out = svc_->Exchange(planner, r);
    ASSERT_FALSE(out.ok());
    EXPECT_EQ(out.error.error, "invalid_grant");
  }
}

TEST_F(TokenServiceTest, AssertedInitiatorNeedsThePermissionAndIsRecordedAsAsserted) {
  Agent worker = Auth("worker", *worker_key_);
  ExchangeRequest r;
  r.subject_token = R"({"sub":"nightly-workflow","iss":"ci"})";
  r.subject_token_type = std::string(kTokenTypeInitiatorAssertion);
  r.actor_token = Svid(worker);
  r.actor_token_type = std::string(kTokenTypeJwt);
  r.audience = "custody-gateway";
  EXPECT_FALSE(svc_->Exchange(worker, r).ok());
  Agent planner = Auth("planner", *planner_key_);
  r.actor_token = Svid(planner);
  auto out = svc_->Exchange(planner, r);
  ASSERT_TRUE(out.ok()) << out.error.description;
  auto v = svc_->VerifyAccessToken(out.value->access_token, "");
  EXPECT_EQ(v->session.verification, InitiatorVerification::kAsserted);
  EXPECT_EQ(v->session.asserted_by, "planner");
}

TEST_F(TokenServiceTest, RevokedSessionAndItsGrandchildrenAreRefusedAtOnce) {
  auto root = RootSession();
  auto child = Delegate(root.value->access_token, "worker", *worker_key_);
  auto grandchild = Delegate(child.value->access_token, "worker", *worker_key_);
  ASSERT_TRUE(grandchild.ok());
  auto revoked = svc_->RevokeSession(child.value->sid, "tripwire", "admin-1");
  ASSERT_TRUE(revoked.ok());
  EXPECT_EQ(revoked->size(), 2u);
  EXPECT_FALSE(svc_->VerifyAccessToken(child.value->access_token, "").ok());
  EXPECT_FALSE(svc_->VerifyAccessToken(grandchild.value->access_token, "").ok());
  EXPECT_TRUE(svc_->VerifyAccessToken(root.value->access_token, "").ok());
  EXPECT_EQ(svc_->Introspect(grandchild.value->access_token), R"({"active":false})");
  EXPECT_NE(svc_->Introspect(root.value->access_token).find("\"active\":true"), std::string::npos);
  // A revoked parent cannot be exchanged for a new child either.
  EXPECT_FALSE(Delegate(child.value->access_token, "worker", *worker_key_).ok());
}

TEST_F(TokenServiceTest, DisablingAnAgentRevokesItsSessions) {
  auto root = RootSession();
  auto child = Delegate(root.value->access_token, "worker", *worker_key_);
  ASSERT_TRUE(svc_->DisableAgent("planner", "admin-1").ok());
  EXPECT_FALSE(svc_->VerifyAccessToken(root.value->access_token, "").ok());
  EXPECT_FALSE(svc_->VerifyAccessToken(child.value->access_token, "").ok());
  EXPECT_FALSE(svc_->AuthenticateClient("planner", std::string(kClientAssertionTypeJwtBearer),
                                        Assertion("planner", *planner_key_), "")
                   .ok());
}

TEST_F(TokenServiceTest, RevocationListenersHearOfEveryRevokedSession) {
  std::vector<std::vector<std::string>> heard;
  int id = svc_->AddRevocationListener([&](const std::vector<std::string>& sids) {
    // Already revoked in the store when the listener runs.
    for (const auto& sid : sids) EXPECT_TRUE(svc_->GetSession(sid)->revoked) << sid;
    heard.push_back(sids);
  });
  auto root = RootSession();
  auto child = Delegate(root.value->access_token, "worker", *worker_key_);
  auto grandchild = Delegate(child.value->access_token, "worker", *worker_key_);
  ASSERT_TRUE(svc_->RevokeSession(child.value->sid, "tripwire", "admin-1").ok());
  ASSERT_EQ(heard.size(), 1u);
  std::set<std::string> got(heard[0].begin(), heard[0].end());
  EXPECT_EQ(got, (std::set<std::string>{child.value->sid, grandchild.value->sid}));
  ASSERT_TRUE(svc_->DisableAgent("planner", "admin-1").ok());
  ASSERT_EQ(heard.size(), 2u);
  EXPECT_EQ(heard[1], std::vector<std::string>{root.value->sid});
  svc_->RemoveRevocationListener(id);
  auto other = Delegate(grandchild.value->access_token, "worker", *worker_key_);
  EXPECT_FALSE(other.ok());  // revoked parent
  EXPECT_EQ(heard.size(), 2u);
}

TEST_F(TokenServiceTest, ForgedTokensAreRefused) {
  auto root = RootSession();
  const std::string& good = root.value->access_token;
  size_t d1 = good.find('.'), d2 = good.rfind('.');
  // Tampered payload.
  json::object c = Payload(good);
  c["scope"] = "admin/*";
  std::string tampered = good.substr(0, d1 + 1) +
                         Base64UrlEncode(std::string_view(json::serialize(c))) + good.substr(d2);
  EXPECT_FALSE(svc_->VerifyAccessToken(tampered, "").ok());
  // alg none.
  std::string none = Base64UrlEncode(std::string_view(R"({"alg":"none","typ":"at+jwt"})")) + "." +
                     good.substr(d1 + 1, d2 - d1 - 1) + ".";
  EXPECT_FALSE(svc_->VerifyAccessToken(none, "").ok());
  // HS256 with the public JWKS as the secret (we never run HMAC at all).
  std::string hs = Base64UrlEncode(std::string_view(R"({"alg":"HS256","typ":"at+jwt"})")) + "." +
                   good.substr(d1 + 1, d2 - d1 - 1) + "." +
                   Base64UrlEncode(crypto::Sha256(svc_->JwksJson()));
  EXPECT_FALSE(svc_->VerifyAccessToken(hs, "").ok());
  // Unknown kid: a well-formed token from a key Custody never published.
  auto rogue = crypto::EcdsaP256PrivateKey::Generate();
  std::string unknown = *crypto::SignJwsEs256(R"({"alg":"ES256","kid":"rogue","typ":"at+jwt"})",
                                              json::serialize(Payload(good)), *rogue);
  EXPECT_FALSE(svc_->VerifyAccessToken(unknown, "").ok());
  // A JWT-SVID is not an access token.
  Agent planner = Auth("planner", *planner_key_);
  EXPECT_FALSE(svc_->VerifyAccessToken(Svid(planner), "").ok());
  // Expired, and nbf in the future.
  clock_.Advance(std::chrono::seconds(3600 + 31));
  EXPECT_FALSE(svc_->VerifyAccessToken(good, "").ok());
  clock_.Advance(std::chrono::seconds(-(3600 + 31) - 120));
  EXPECT_FALSE(svc_->VerifyAccessToken(good, "").ok());  // issued "in the future" now
}

TEST_F(TokenServiceTest, RotationKeepsOldKeysPublishedForTheirTokens) {
  auto root = RootSession();
  std::string old_kid(Header(root.value->access_token).at("kid").as_string());
  auto new_kid = svc_->RotateSigningKey("admin:ops");
  ASSERT_TRUE(new_kid.ok());
  EXPECT_NE(*new_kid, old_kid);
  EXPECT_NE(events_.back().find("\"kind\":\"key.rotate\""), std::string::npos);
  EXPECT_NE(events_.back().find("\"requested_by\":\"admin:ops\""), std::string::npos);
  EXPECT_NE(events_.back().find(old_kid), std::string::npos);  // the retired kid
  auto jwks = crypto::Jwks::Parse(svc_->JwksJson());
  ASSERT_TRUE(jwks.ok());
  EXPECT_EQ(jwks->size(), 2u);
  EXPECT_NE(jwks->Find(old_kid), nullptr);
  EXPECT_TRUE(svc_->VerifyAccessToken(root.value->access_token, "").ok());
  auto next = RootSession();
  EXPECT_EQ(std::string(Header(next.value->access_token).at("kid").as_string()), *new_kid);
  // A day later the retired key is gone from the JWKS after a reload.
  clock_.Advance(std::chrono::hours(25));
  TokenServiceOptions options;
  options.trust_domain = "custody.test";
  options.issuer = kIssuer;
  auto reloaded = TokenService::Create(*store_, clock_, random_, errors_, nullptr, options);
  ASSERT_TRUE(reloaded.ok());
  EXPECT_EQ(crypto::Jwks::Parse((*reloaded)->JwksJson())->Find(old_kid), nullptr);
}

// A retired key leaves the JWKS and verifies nothing once its publication ends, in the running
// service: a token forged with it (a leaked key, say) is refused without a restart.
TEST_F(TokenServiceTest, ARetiredKeyIsWithdrawnOnTimeWhileRunning) {
  auto root = RootSession();
  std::string old_kid(Header(root.value->access_token).at("kid").as_string());
  ASSERT_TRUE(svc_->VerifyAccessToken(root.value->access_token, "").ok());  // now cached
  ASSERT_TRUE(svc_->RotateSigningKey("admin:ops").ok());
  std::string old_pem;
  auto records = store_->ListSigningKeys();
  ASSERT_TRUE(records.ok());
  for (const auto& r : *records) {
    if (r.kid == old_kid) old_pem = r.private_pem;
  }
  auto old_key = crypto::EcdsaP256PrivateKey::FromPkcs8Pem(old_pem);
  ASSERT_TRUE(old_key.ok());
  clock_.Advance(std::chrono::hours(25));
  EXPECT_EQ(crypto::Jwks::Parse(svc_->JwksJson())->Find(old_kid), nullptr);
  EXPECT_EQ(crypto::Jwks::Parse(svc_->JwksJson())->size(), 1u);
  // A live session's claims, signed with the retired key: only the key is wrong.
  auto next = RootSession();
  ASSERT_TRUE(svc_->VerifyAccessToken(next.value->access_token, "").ok());
  json::object claims = Payload(next.value->access_token);
  std::string header =
      json::serialize(json::object{{"alg", "ES256"}, {"kid", old_kid}, {"typ", "at+jwt"}});
  std::string forged = *crypto::SignJwsEs256(header, json::serialize(claims), *old_key);
  auto verified = svc_->VerifyAccessToken(forged, "");
  ASSERT_FALSE(verified.ok());
  EXPECT_EQ(verified.status().code(), StatusCode::kUnauthenticated);
}

// Most OIDC providers sign ID tokens with RS256. The vectors (signed by the jose npm package) are
// in src/crypto/testdata/rs256_vectors.json: iss https://idp.example.com, aud custody-test.
TEST_F(TokenServiceTest, Rs256IdTokensFromATrustedIssuerAreVerified) {
  const char* src = std::getenv("CUSTODY_SOURCE_DIR");
  std::ifstream in(std::string(src ? src : ".") + "/src/crypto/testdata/rs256_vectors.json");
  ASSERT_TRUE(in.good()) << "set CUSTODY_SOURCE_DIR";
  std::stringstream text;
  text << in.rdbuf();
  json::object v = json::parse(text.str()).as_object();
  auto vec = [&](const char* name) { return std::string(v.at(name).as_string()); };

  TokenServiceOptions o;
  o.trust_domain = "custody.test";
  o.issuer = kIssuer;
  TrustedIssuer idp;
  idp.issuer = std::string(v.at("claims").at("iss").as_string());
  idp.audience = std::string(v.at("claims").at("aud").as_string());
  auto jwks = crypto::Jwks::Parse(json::serialize(v.at("jwks")));
  ASSERT_TRUE(jwks.ok()) << jwks.status().ToString();
  idp.jwks = std::move(*jwks);
  o.trusted_issuers.push_back(std::move(idp));
  auto s = TokenService::Create(
      *store_, clock_, random_, errors_,
      [this](const std::string& e) {
        events_.push_back(e);
        return OkStatus();
      },
      o);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  svc_ = std::move(*s);  // same store: planner and worker stay registered

  auto exchange = [&](const std::string& id_token) {
    Agent planner = Auth("planner", *planner_key_);
    ExchangeRequest r;
    r.subject_token = id_token;
    r.subject_token_type = std::string(kTokenTypeIdToken);
    r.actor_token = Svid(planner);
    r.actor_token_type = std::string(kTokenTypeJwt);
    r.audience = "custody-gateway";
    return svc_->Exchange(planner, r);
  };
  for (const char* name : {"rs256_2048", "rs256_3072", "es256"}) {
    auto out = exchange(vec(name));
    ASSERT_TRUE(out.ok()) << name << ": " << out.error.description;
    auto verified = svc_->VerifyAccessToken(out.value->access_token, "custody-gateway");
    ASSERT_TRUE(verified.ok()) << verified.status().ToString();
    EXPECT_EQ(verified->session.initiator, "alice@example.com");
    EXPECT_EQ(verified->session.initiator_issuer, "https://idp.example.com");
    EXPECT_EQ(verified->session.verification, InitiatorVerification::kVerified);
    // Our own token is still ES256, whatever the ID token was signed with.
    EXPECT_EQ(Header(out.value->access_token).at("alg"), "ES256");
  }
  EXPECT_NE(events_.back().find("\"verification\":\"verified\""), std::string::npos);

  // Refused: a key under 2048 bits (not in the set), PS256 (not on the allow-list), alg none,
  // HS256 keyed with the public modulus, RS256 naming the EC key, and a tampered payload.
  std::string good = vec("rs256_2048");
  size_t d1 = good.find('.'), d2 = good.rfind('.');
  std::string payload = good.substr(d1 + 1, d2 - d1 - 1);
  json::object claims = Payload(good);
  claims["sub"] = "mallory@example.com";
  std::string tampered = good.substr(0, d1 + 1) +
                         Base64UrlEncode(std::string_view(json::serialize(claims))) +
                         good.substr(d2);
  std::string none =
      Base64UrlEncode(std::string_view(R"({"alg":"none","kid":"rsa-2048"})")) + "." + payload + ".";
  std::string hs = Base64UrlEncode(std::string_view(R"({"alg":"HS256","kid":"rsa-2048"})")) + "." +
                   payload + "." +
                   Base64UrlEncode(crypto::Sha256(
                       std::string(v.at("jwks").at("keys").as_array()[0].at("n").as_string())));
  for (const std::string& bad :
       {vec("rs256_1024"), vec("ps256_2048"), none, hs, vec("rs256_with_ec_kid"), tampered}) {
    auto out = exchange(bad);
    ASSERT_FALSE(out.ok());
    EXPECT_EQ(out.error.error, "invalid_grant") << out.error.description;
  }
  // The same RS256 token from an issuer we do not trust under that name is refused too.
  EXPECT_FALSE(exchange(IdToken("alice", *idp_key_)).ok());  // kIdp's ES256 key is not in the set
}

TEST_F(TokenServiceTest, VerifiedTokenCacheNeverHidesRevocation) {
  auto root = RootSession();
  auto child = Delegate(root.value->access_token, "worker", *worker_key_);
  ASSERT_TRUE(child.ok());
  // Fill the cache, and hit it.
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(svc_->VerifyAccessToken(root.value->access_token, "custody-gateway").ok());
    ASSERT_TRUE(svc_->VerifyAccessToken(child.value->access_token, "").ok());
  }
  // A cached token is still checked for audience and time on every hit.
  EXPECT_FALSE(svc_->VerifyAccessToken(root.value->access_token, "elsewhere").ok());
  // Revocation by jti and by session is effective at once for cached tokens.
  ASSERT_TRUE(svc_->RevokeCredential(child.value->jti, "admin-1").ok());
  EXPECT_FALSE(svc_->VerifyAccessToken(child.value->access_token, "").ok());
  ASSERT_TRUE(svc_->RevokeSession(root.value->sid, "tripwire", "admin-1").ok());
  auto refused = svc_->VerifyAccessToken(root.value->access_token, "");
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("revoked"), std::string::npos);
  EXPECT_EQ(svc_->Introspect(root.value->access_token), R"({"active":false})");
  // Expiry is not hidden by the cache either (entries live at most 60 s; exp is checked anyway).
  auto fresh = RootSession();
  ASSERT_TRUE(svc_->VerifyAccessToken(fresh.value->access_token, "").ok());
  clock_.Advance(std::chrono::seconds(3600 + 31));
  EXPECT_FALSE(svc_->VerifyAccessToken(fresh.value->access_token, "").ok());
}

TEST_F(TokenServiceTest, VerifiedSvidCacheNeverHidesAudienceExpiryOrRevocation) {
  Agent planner = Auth("planner", *planner_key_);
  auto t = svc_->IssueSvid(planner, "reports");
  ASSERT_TRUE(t.ok());
  const std::string& svid = t.value->access_token;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(svc_->VerifySvid(svid, "reports").ok());  // cached
  EXPECT_FALSE(svc_->VerifySvid(svid, "billing").ok());  // audience checked on every hit
  // A copy with one signature character changed is not the cached token.
  std::string forged = svid;
  forged[forged.size() - 3] = forged[forged.size() - 3] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(svc_->VerifySvid(forged, "reports").ok());
  ASSERT_TRUE(svc_->RevokeCredential(t.value->jti, "admin-1").ok());
  auto revoked = svc_->VerifySvid(svid, "reports");
  ASSERT_FALSE(revoked.ok());
  EXPECT_NE(revoked.status().message().find("revoked"), std::string::npos);
  // Expiry is not hidden by the cache (an entry lives at most 60 s; exp is checked anyway).
  auto u = svc_->IssueSvid(planner, "reports");
  ASSERT_TRUE(u.ok());
  ASSERT_TRUE(svc_->VerifySvid(u.value->access_token, "reports").ok());
  clock_.Advance(std::chrono::seconds(300 + 31));
  EXPECT_FALSE(svc_->VerifySvid(u.value->access_token, "reports").ok());
}

TEST_F(TokenServiceTest, VerifiedTokenCacheIsBoundedAndCanBeDisabled) {
  for (size_t entries : {size_t{0}, size_t{2}}) {
    TokenServiceOptions o;
    o.trust_domain = "custody.test";
    o.issuer = kIssuer;
    o.verify_cache_entries = entries;
    auto s = TokenService::Create(*store_, clock_, random_, errors_, nullptr, o);
    ASSERT_TRUE(s.ok());
    Agent planner = Auth("planner", *planner_key_);
    std::vector<std::string> tokens;
    for (int i = 0; i < 5; ++i) {
      ExchangeRequest r;
      r.subject_token = R"({"sub":"nightly-workflow"})";
      r.subject_token_type = std::string(kTokenTypeInitiatorAssertion);
      r.actor_token = Svid(planner);  // same store, same signing key
      r.actor_token_type = std::string(kTokenTypeJwt);
      r.audience = "custody-gateway";
      auto out = (*s)->Exchange(planner, r);
      ASSERT_TRUE(out.ok()) << out.error.description;
      tokens.push_back(out.value->access_token);
    }
    // More tokens than entries: every one still verifies (misses re-verify the signature).
    for (int round = 0; round < 2; ++round) {
      for (const auto& t : tokens) EXPECT_TRUE((*s)->VerifyAccessToken(t, "").ok());
    }
    ASSERT_TRUE((*s)->RevokeCredential(Payload(tokens[4]).at("jti").as_string().c_str(), "a").ok());
    EXPECT_FALSE((*s)->VerifyAccessToken(tokens[4], "").ok());
  }
}

// The bytes every identity event hands the sink (the ledger canonicalizes them), pinned whole:
// field names, order, types, and "" against absent. Ids (UUIDv7: event ids, sids, jtis, txns,
// instances) and key ids are random, so each is replaced by its order of first appearance.
TEST_F(TokenServiceTest, EveryIdentityEventKeepsItsBytes) {
  std::string old_kid(json::parse(svc_->JwksJson()).at("keys").at(0).at("kid").as_string());
  Agent full;
  full.name = "reporter";
  full.environment = Environment::kStaging;
  full.business_owner = "finance";
  full.technical_owner = "platform";
  full.sponsor = "cfo";
  full.revocation_contact = "sec@example.com";
  full.grants = {"db/read", "db/read", "crm/*"};
  full.permissions = {"assert_initiator"};
  full.max_delegation_depth = 1;
  full.max_token_lifetime_s = 900;
  auto reg = svc_->RegisterAgent(full, true, "admin-1");
  ASSERT_TRUE(reg.ok()) << reg.status().ToString();
  Agent upd = reg->agent;
  upd.grants = {"db/read"};
  ASSERT_TRUE(svc_->UpdateAgent(upd, "admin-2").ok());
  clock_.Advance(std::chrono::milliseconds(1234));
  auto root = RootSession();  // credential.issue, then session.start (verified)
  ASSERT_TRUE(root.ok()) << root.error.description;
  auto child = Delegate(root.value->access_token, "worker", *worker_key_, "github/create_issue");
  ASSERT_TRUE(child.ok()) << child.error.description;
  Agent reporter = *svc_->AuthenticateClient("reporter", "", "", reg->client_secret).value;
  ExchangeRequest asserted;
  asserted.subject_token = R"({"sub":"nightly-workflow"})";
  asserted.subject_token_type = std::string(kTokenTypeInitiatorAssertion);
  asserted.actor_token = Svid(reporter);
  asserted.actor_token_type = std::string(kTokenTypeJwt);
  asserted.audience = "custody-gateway";
  ASSERT_TRUE(svc_->Exchange(reporter, asserted).ok());
  ASSERT_TRUE(svc_->RevokeCredential(child.value->jti, "admin-1").ok());
  ASSERT_TRUE(svc_->RevokeSession(root.value->sid, "", "admin-1").ok());
  ASSERT_TRUE(svc_->DisableAgent("reporter", "admin-3").ok());
  auto new_kid = svc_->RotateSigningKey("admin:ops");
  ASSERT_TRUE(new_kid.ok());
  // Two refused token requests: a contained worker asking again on its revoked session, and a
  // client that cannot authenticate (what it sent is recorded bounded and printable).
  TokenRequest again;
  again.grant_type = "urn:ietf:params:oauth:grant-type:token-exchange";
  again.client_id = "worker";
  again.client_assertion_type = std::string(kClientAssertionTypeJwtBearer);
  again.client_assertion = Assertion("worker", *worker_key_);
  again.subject_token = child.value->access_token;
  again.subject_token_type = std::string(kTokenTypeAccessToken);
  again.actor_token = Svid(Auth("worker", *worker_key_));
  again.actor_token_type = std::string(kTokenTypeJwt);
  again.audience = "custody-gateway";
  again.scope = "github/create_issue";
  again.requested_lifetime = "60";
  ASSERT_EQ(svc_->Token(again).error.error, "invalid_grant");
  TokenRequest stranger;
  stranger.grant_type = "client_credentials";
  stranger.client_id = "mallory\n";
  stranger.client_secret = "guess";
  ASSERT_EQ(svc_->Token(stranger).error.error, "invalid_client");

  std::string all;
  for (const auto& e : events_) all += e + "\n";
  for (const auto& [kid, label] : {std::pair{old_kid, "<kid1>"}, std::pair{*new_kid, "<kid2>"}}) {
    for (size_t at; (at = all.find(kid)) != std::string::npos;) all.replace(at, kid.size(), label);
  }
  auto is_uuid_v7 = [](std::string_view s) {
    for (size_t i = 0; i < s.size(); ++i) {
      bool dash = i == 8 || i == 13 || i == 18 || i == 23;
      if (dash ? s[i] != '-' : !std::isxdigit(static_cast<unsigned char>(s[i]))) return false;
    }
    return s[14] == '7';
  };
  std::map<std::string, std::string> names;  // each id by its order of first appearance
  std::string out;
  for (size_t i = 0; i < all.size();) {
    if (i + 36 <= all.size() && is_uuid_v7(std::string_view(all).substr(i, 36))) {
      auto [it, fresh] = names.emplace(all.substr(i, 36), "");
      if (fresh) it->second = "<id" + std::to_string(names.size()) + ">";
      out += it->second;
      i += 36;
    } else {
      out += all[i++];
    }
  }
  EXPECT_EQ(
      out,
      R"({"kind":"agent.register","event_id":"<id1>","time":"2023-11-14T22:13:20.000Z",)"
      R"("requested_by":"admin-1","agent":{"name":"planner","environment":"dev",)"
      R"("business_owner":"","technical_owner":"","sponsor":"","revocation_contact":"",)"
      R"("grants":["db/read","github/*"],"permissions":["assert_initiator"],)"
      R"("max_delegation_depth":2,"max_token_lifetime_s":3600,)"
      R"("credential":"private_key_jwt"}})"
      "\n"
      R"({"kind":"agent.register","event_id":"<id2>","time":"2023-11-14T22:13:20.000Z",)"
      R"("requested_by":"admin-1","agent":{"name":"worker","environment":"dev",)"
      R"("business_owner":"","technical_owner":"","sponsor":"","revocation_contact":"",)"
      R"("grants":["github/create_issue","github/list_issues"],"permissions":[],)"
      R"("max_delegation_depth":3,"max_token_lifetime_s":3600,)"
      R"("credential":"private_key_jwt"}})"
      "\n"
      R"({"kind":"agent.register","event_id":"<id3>","time":"2023-11-14T22:13:20.000Z",)"
      R"("requested_by":"admin-1","agent":{"name":"reporter","environment":"staging",)"
      R"("business_owner":"finance","technical_owner":"platform","sponsor":"cfo",)"
      R"("revocation_contact":"sec@example.com","grants":["crm/*","db/read"],)"
      R"("permissions":["assert_initiator"],"max_delegation_depth":1,)"
      R"("max_token_lifetime_s":900,"credential":"client_secret"}})"
      "\n"
      R"({"kind":"agent.update","event_id":"<id4>","time":"2023-11-14T22:13:20.000Z",)"
      R"("requested_by":"admin-2","agent":{"name":"reporter","environment":"staging",)"
      R"("grants":["db/read"]}})"
      "\n"
      R"({"kind":"credential.issue","event_id":"<id5>","time":"2023-11-14T22:13:21.234Z",)"
      R"("actor":{"agent":"planner",)"
      R"("instance":"spiffe://custody.test/agent/planner/instance/<id6>",)"
      R"("credential":"<id7>"},"credential":{"type":"jwt-svid","jti":"<id7>",)"
      R"("exp":1700000301,"aud":["https://custody.test"]},"requested_by":"planner"})"
      "\n"
      R"({"kind":"session.start","event_id":"<id8>","time":"2023-11-14T22:13:21.234Z",)"
      R"("actor":{"agent":"planner",)"
      R"("instance":"spiffe://custody.test/agent/planner/instance/<id6>","session":"<id9>",)"
      R"("credential":"<id10>"},"initiator":{"id":"alice@example.com",)"
      R"("issuer":"https://idp.example.com","verification":"verified"},)"
      R"("session":{"sid":"<id9>","parent_sid":"","root_sid":"<id9>","depth":0,)"
      R"("scopes":["db/read","github/*"],"exp":1700003601,)"
      R"("objective_digest":"c34a8e08c5aab52cc2225799e67af9238355dc72d8c619cab4648adc2d982c50"},)"
      R"("trace":{"txn":"<id11>"},"requested_by":"planner"})"
      "\n"
      R"({"kind":"credential.issue","event_id":"<id12>","time":"2023-11-14T22:13:21.234Z",)"
      R"("actor":{"agent":"worker",)"
      R"("instance":"spiffe://custody.test/agent/worker/instance/<id13>",)"
      R"("credential":"<id14>"},"credential":{"type":"jwt-svid","jti":"<id14>",)"
      R"("exp":1700000301,"aud":["https://custody.test"]},"requested_by":"worker"})"
      "\n"
      R"({"kind":"delegation","event_id":"<id15>","time":"2023-11-14T22:13:21.234Z",)"
      R"("actor":{"agent":"worker",)"
      R"("instance":"spiffe://custody.test/agent/worker/instance/<id13>","session":"<id16>",)"
      R"("credential":"<id17>"},"initiator":{"id":"alice@example.com",)"
      R"("issuer":"https://idp.example.com","verification":"verified"},)"
      R"("session":{"sid":"<id16>","parent_sid":"<id9>","root_sid":"<id9>","depth":1,)"
      R"("scopes":["github/create_issue"],"exp":1700003601,"objective_digest":""},)"
      R"("trace":{"txn":"<id11>"},"requested_by":"worker"})"
      "\n"
      R"({"kind":"credential.issue","event_id":"<id18>","time":"2023-11-14T22:13:21.234Z",)"
      R"("actor":{"agent":"reporter",)"
      R"("instance":"spiffe://custody.test/agent/reporter/instance/<id19>",)"
      R"("credential":"<id20>"},"credential":{"type":"jwt-svid","jti":"<id20>",)"
      R"("exp":1700000301,"aud":["https://custody.test"]},"requested_by":"reporter"})"
      "\n"
      R"({"kind":"session.start","event_id":"<id21>","time":"2023-11-14T22:13:21.234Z",)"
      R"("actor":{"agent":"reporter",)"
      R"("instance":"spiffe://custody.test/agent/reporter/instance/<id19>",)"
      R"("session":"<id22>","credential":"<id23>"},"initiator":{"id":"nightly-workflow",)"
      R"("issuer":"","verification":"asserted","asserted_by":"reporter"},)"
      R"("session":{"sid":"<id22>","parent_sid":"","root_sid":"<id22>","depth":0,)"
      R"("scopes":["db/read"],"exp":1700000901,"objective_digest":""},)"
      R"("trace":{"txn":"<id24>"},"requested_by":"reporter"})"
      "\n"
      R"({"kind":"revocation","event_id":"<id25>","time":"2023-11-14T22:13:21.234Z",)"
      R"("requested_by":"admin-1","target":{"credential":"<id17>"}})"
      "\n"
      R"({"kind":"revocation","event_id":"<id26>","time":"2023-11-14T22:13:21.234Z",)"
      R"("requested_by":"admin-1","target":{"session":"<id9>"},"reason":"",)"
      R"("revoked_sessions":["<id9>","<id16>"]})"
      "\n"
      R"({"kind":"revocation","event_id":"<id27>","time":"2023-11-14T22:13:21.234Z",)"
      R"("requested_by":"admin-3","target":{"agent":"reporter"},"reason":"agent disabled",)"
      R"("revoked_sessions":["<id22>"]})"
      "\n"
      R"({"kind":"key.rotate","event_id":"<id28>","time":"2023-11-14T22:13:21.234Z",)"
      R"("requested_by":"admin:ops","kid":"<kid2>","retired_kids":["<kid1>"],)"
      R"("publish_until":1700086431})"
      "\n"
      R"({"kind":"credential.issue","event_id":"<id29>","time":"2023-11-14T22:13:21.234Z",)"
      R"("actor":{"agent":"worker",)"
      R"("instance":"spiffe://custody.test/agent/worker/instance/<id30>",)"
      R"("credential":"<id31>"},"credential":{"type":"jwt-svid","jti":"<id31>",)"
      R"("exp":1700000301,"aud":["https://custody.test"]},"requested_by":"worker"})"
      "\n"
      R"({"kind":"token.refuse","event_id":"<id32>","time":"2023-11-14T22:13:21.234Z",)"
      R"("actor":{"agent":"worker",)"
      R"("instance":"spiffe://custody.test/agent/worker/instance/<id30>"},)"
      R"("target":{"session":"<id16>"},)"
      R"("client":{"id":"worker","authenticated":true,"authentication":"private_key_jwt"},)"
      R"("request":{"grant_type":"urn:ietf:params:oauth:grant-type:token-exchange",)"
      R"("audience":"custody-gateway","scope":"github/create_issue",)"
      R"("subject_token_type":"urn:ietf:params:oauth:token-type:access_token",)"
      R"("actor_token_type":"urn:ietf:params:oauth:token-type:jwt","requested_lifetime":"60"},)"
      R"("refusal":{"error":"invalid_grant","reason":"subject_token: session revoked: "}})"
      "\n"
      R"({"kind":"token.refuse","event_id":"<id33>","time":"2023-11-14T22:13:21.234Z",)"
      R"("actor":{"agent":"","instance":""},"target":{"session":""},)"
      R"("client":{"id":"mallory?","authenticated":false,"authentication":"client_secret"},)"
      R"("request":{"grant_type":"client_credentials","audience":"","scope":"",)"
      R"("subject_token_type":"","actor_token_type":"","requested_lifetime":""},)"
      R"("refusal":{"error":"invalid_client","reason":"unknown client"}})"
      "\n");
}

// What no caller is told of goes to the ErrorReporter (warn + custody_errors_total{site}): a
// store write or an event that failed behind an OAuth server_error. A client that does not
// exist is not an error.
TEST_F(TokenServiceTest, FailuresBehindAServerErrorAreReported) {
  using store::testing::Fault;
  using store::testing::FaultVfs;
  FaultVfs::Install();  // before the identity store is reopened below
  TearDown();
  SetUp();
  Agent planner = Auth("planner", *planner_key_);
  ExchangeRequest r;
  r.subject_token = R"({"sub":"nightly-workflow"})";
  r.subject_token_type = std::string(kTokenTypeInitiatorAssertion);
  r.actor_token = Svid(planner);
  r.actor_token_type = std::string(kTokenTypeJwt);
  r.audience = "custody-gateway";

  FaultVfs::Fail(path_.filename().string(), Fault::kDiskFull);
  auto auth = svc_->AuthenticateClient("planner", std::string(kClientAssertionTypeJwtBearer),
                                       Assertion("planner", *planner_key_), "");
  ASSERT_FALSE(auth.ok());
  EXPECT_EQ(auth.error.error, "server_error");
  EXPECT_EQ(auth.error.http_status, 500);
  EXPECT_EQ(errors_.Count("identity.assertion_jti"), 1u);
  auto out = svc_->Exchange(planner, r);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.error.description, "cannot store session");
  EXPECT_EQ(errors_.Count("identity.session_store"), 1u);
  FaultVfs::Clear();
  ASSERT_TRUE(svc_->Exchange(planner, r).ok());

  // An event that cannot be recorded is Custody's failure too, but a passing one: the client
  // may try again (503 temporarily_unavailable).
  sink_status_ = UnavailableError("ledger is closed");
  auto svid = svc_->IssueSvid(planner, kIssuer);
  ASSERT_FALSE(svid.ok());
  EXPECT_EQ(svid.error.error, "temporarily_unavailable");
  EXPECT_EQ(svid.error.http_status, 503);
  EXPECT_EQ(svid.error.description, "cannot record issuance");
  out = svc_->Exchange(planner, r);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.error.error, "temporarily_unavailable");
  EXPECT_EQ(out.error.description, "cannot record session");
  EXPECT_EQ(errors_.Count("identity.event_record"), 2u);
  sink_status_ = OkStatus();

  EXPECT_FALSE(svc_->AuthenticateClient("nobody", "", "", "secret").ok());
  EXPECT_EQ(errors_.Count("identity.client_lookup"), 0u);
  std::vector<std::pair<std::string, uint64_t>> want{
      {"identity.assertion_jti", 1}, {"identity.event_record", 2}, {"identity.session_store", 1}};
  EXPECT_EQ(errors_.Counts(), want);
}

TEST_F(TokenServiceTest, CredentialRevocationByJti) {
  auto root = RootSession();
  ASSERT_TRUE(svc_->RevokeCredential(root.value->jti, "admin-1").ok());
  EXPECT_FALSE(svc_->VerifyAccessToken(root.value->access_token, "").ok());
}

}  // namespace
}  // namespace custody::identity

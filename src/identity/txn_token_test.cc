// TokenService::MintTxnToken: the Txn-Token's header and claims exactly as docs/IDENTITY.md
// documents them, its lifetime bound, the refusals, and its key as the JWKS publishes it
// (before and after a rotation, and once the retired key's publication ends).
#include "identity/txn_token.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <set>

#include "common/encoding.h"
#include "crypto/jose.h"
#include "identity/token_service.h"
#include "store/stores.h"

namespace custody::identity {
namespace {

namespace json = boost::json;
constexpr const char* kIssuer = "https://custody.test";

json::object Part(const std::string& token, int index) {
  size_t d1 = token.find('.'), d2 = token.rfind('.');
  std::string_view part = index == 0 ? std::string_view(token).substr(0, d1)
                                     : std::string_view(token).substr(d1 + 1, d2 - d1 - 1);
  auto bytes = Base64UrlDecode(part);
  EXPECT_TRUE(bytes.ok());
  return json::parse(AsString(*bytes)).as_object();
}

std::set<std::string> Keys(const json::object& o) {
  std::set<std::string> out;
  for (const auto& kv : o) out.insert(std::string(kv.key()));
  return out;
}

class TxnTokenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = std::move(*store::OpenIdentityStore(store::StorageOptions::InMemory()));
    TokenServiceOptions o;
    o.trust_domain = "custody.test";
    o.issuer = kIssuer;
    auto s = TokenService::Create(*store_, clock_, random_, errors_, nullptr, o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    svc_ = std::move(*s);
    planner_ = Register("planner", {"files/*", "db/read"}, {"assert_initiator"});
    worker_ = Register("worker", {"files/read_file"}, {});
  }

  struct Client {
    std::string name;
    std::shared_ptr<crypto::EcdsaP256PrivateKey> key;
  };
  Client Register(const std::string& name, ScopeSet grants, std::vector<std::string> perms) {
    auto key =
        std::make_shared<crypto::EcdsaP256PrivateKey>(*crypto::EcdsaP256PrivateKey::Generate());
    Agent a;
    a.name = name;
    a.grants = std::move(grants);
    a.permissions = std::move(perms);
    a.max_delegation_depth = 3;
    a.client_jwk = crypto::EcPublicJwkJson(key->public_key(), name + "-key");
    auto r = svc_->RegisterAgent(a, false, "admin-1");
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return Client{name, key};
  }
  Agent Auth(const Client& c) {
    int64_t now = Now();
    json::object claims{{"iss", c.name},   {"sub", c.name}, {"aud", kIssuer},
                        {"exp", now + 60}, {"iat", now},    {"jti", "a-" + std::to_string(++n_)}};
    std::string assertion = *crypto::SignJwsEs256(
        json::serialize(json::object{{"alg", "ES256"}, {"kid", c.name + "-key"}}),
        json::serialize(claims), *c.key);
    auto a =
        svc_->AuthenticateClient(c.name, std::string(kClientAssertionTypeJwtBearer), assertion, "");
    EXPECT_TRUE(a.ok()) << a.error.description;
    return *a.value;
  }
  std::string Exchange(const Client& c, std::string subject, std::string_view subject_type) {
    Agent agent = Auth(c);
    ExchangeRequest r;
    r.subject_token = std::move(subject);
    r.subject_token_type = std::string(subject_type);
    r.actor_token = svc_->IssueSvid(agent, kIssuer).value->access_token;
    r.actor_token_type = std::string(kTokenTypeJwt);
    r.audience = "https://custody.test/mcp";
    r.objective = "read the report";
    auto t = svc_->Exchange(agent, r);
    EXPECT_TRUE(t.ok()) << t.error.description;
    return t.value->access_token;
  }
  // alice -> planner -> worker, as the gateway sees the worker's token.
  VerifiedAccess DelegatedSession() {
    std::string root = Exchange(planner_, R"({"sub":"alice@example.com","iss":"https://idp"})",
                                kTokenTypeInitiatorAssertion);
    std::string child = Exchange(worker_, root, kTokenTypeAccessToken);
    session_token_ = child;
    auto v = svc_->VerifyAccessToken(child, "");
    EXPECT_TRUE(v.ok()) << v.status().ToString();
    return *v;
  }
  TxnTokenRequest RequestFor(const VerifiedAccess& v) {
    TxnTokenRequest r;
    r.audience = "urn:custody:mcp:files";
    r.txn = "0190a1b2-action";
    r.subject = v.session.initiator;
    r.act_json = v.act_json;
    r.scope = "files/read_file";
    r.requesting_workload = "https://custody.test/mcp";
    r.tctx = {{"action", "call_tool"}, {"action_id", "0190a1b2-action"}};
    r.rctx = {{"via", "mcp"}};
    return r;
  }
  int64_t Now() const {
    return std::chrono::duration_cast<std::chrono::seconds>(clock_.Now().time_since_epoch())
        .count();
  }
  Result<crypto::VerifiedJws> VerifyWithJwks(const std::string& token, const std::string& jwks) {
    auto keys = crypto::Jwks::Parse(jwks);
    if (!keys.ok()) return keys.status();
    return crypto::VerifyJwsWithJwks(token, *keys, crypto::kCustodyAlgorithms);
  }

  FakeClock clock_;
  SystemRandom random_;
  NullLogger log_;
  ErrorReporter errors_{log_};
  std::unique_ptr<store::IdentityStore> store_;
  std::unique_ptr<TokenService> svc_;
  Client planner_, worker_;
  std::string session_token_;
  int n_ = 0;
};

TEST_F(TxnTokenTest, HeaderAndClaimsAreExactlyAsDocumented) {
  VerifiedAccess v = DelegatedSession();
  auto t = svc_->MintTxnToken(RequestFor(v));
  ASSERT_TRUE(t.ok()) << t.status().ToString();

  json::object h = Part(t->token, 0);
  EXPECT_EQ(Keys(h), (std::set<std::string>{"alg", "kid", "typ"}));
  EXPECT_EQ(h.at("typ"), "txntoken+jwt");
  EXPECT_EQ(h.at("alg"), "ES256");
  EXPECT_EQ(std::string(h.at("kid").as_string()), t->kid);

  json::object c = Part(t->token, 1);
  EXPECT_EQ(Keys(c), (std::set<std::string>{"iss", "aud", "iat", "exp", "jti", "txn", "sub",
                                            "scope", "req_wl", "act", "tctx", "rctx"}));
  EXPECT_EQ(c.at("iss"), kIssuer);
  EXPECT_EQ(c.at("aud"), "urn:custody:mcp:files");
  EXPECT_EQ(c.at("iat").as_int64(), Now());
  EXPECT_EQ(c.at("exp").as_int64(), Now() + 60);
  EXPECT_EQ(c.at("jti"), t->jti.c_str());
  EXPECT_EQ(c.at("txn"), "0190a1b2-action");
  EXPECT_EQ(c.at("sub"), "alice@example.com");
  EXPECT_EQ(c.at("scope"), "files/read_file");
  EXPECT_EQ(c.at("req_wl"), "https://custody.test/mcp");
  EXPECT_EQ(c.at("tctx"),
            (json::object{{"action", "call_tool"}, {"action_id", "0190a1b2-action"}}));
  EXPECT_EQ(c.at("rctx"), (json::object{{"via", "mcp"}}));
  // The actor chain exactly as the session token has it: the worker, acting for the planner.
  json::object session_claims = Part(session_token_, 1);
  EXPECT_EQ(c.at("act"), session_claims.at("act"));
  const json::object& act = c.at("act").as_object();
  EXPECT_NE(act.at("sub").as_string().find("/agent/worker/"), json::string::npos);
  EXPECT_NE(act.at("act").as_object().at("sub").as_string().find("/agent/planner/"),
            json::string::npos);

  // It verifies against Custody's JWKS, and the client's session token is not in it.
  EXPECT_TRUE(VerifyWithJwks(t->token, svc_->JwksJson()).ok());
  EXPECT_EQ(json::serialize(c).find(session_token_), std::string::npos);
}

TEST_F(TxnTokenTest, EveryTokenIsFreshAndLivesAtMostSixtySeconds) {
  VerifiedAccess v = DelegatedSession();
  TxnTokenRequest r = RequestFor(v);
  auto a = svc_->MintTxnToken(r);
  auto b = svc_->MintTxnToken(r);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->jti, b->jti);
  EXPECT_NE(a->token, b->token);

  r.lifetime_s = 10;
  auto short_lived = svc_->MintTxnToken(r);
  ASSERT_TRUE(short_lived.ok());
  EXPECT_EQ(Part(short_lived->token, 1).at("exp").as_int64(), Now() + 10);
  for (int64_t bad : {int64_t{0}, int64_t{-5}, kTxnTokenMaxLifetimeS + 1, int64_t{3600}}) {
    r.lifetime_s = bad;
    auto refused = svc_->MintTxnToken(r);
    EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

TEST_F(TxnTokenTest, ARequestMissingAClaimIsRefused) {
  VerifiedAccess v = DelegatedSession();
  auto expect_refused = [&](TxnTokenRequest r, std::string_view says) {
    auto t = svc_->MintTxnToken(r);
    ASSERT_FALSE(t.ok());
    EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(t.status().message().find(says), std::string::npos) << t.status().message();
  };
  TxnTokenRequest r = RequestFor(v);
  r.audience.clear();
  expect_refused(r, "aud");
  r = RequestFor(v);
  r.txn.clear();
  expect_refused(r, "txn");
  r = RequestFor(v);
  r.subject.clear();
  expect_refused(r, "sub");
  r = RequestFor(v);
  r.scope.clear();
  expect_refused(r, "scope");
  r = RequestFor(v);
  r.requesting_workload.clear();
  expect_refused(r, "req_wl");
  r = RequestFor(v);
  r.act_json = R"(["not","an","object"])";
  expect_refused(r, "act");
  r.act_json = "{broken";
  expect_refused(r, "act");
  // Without an actor chain (a session of no agent) the token simply has no act.
  r.act_json.clear();
  auto no_act = svc_->MintTxnToken(r);
  ASSERT_TRUE(no_act.ok());
  EXPECT_FALSE(Part(no_act->token, 1).contains("act"));
}

// The token names the key that signed it, and the JWKS says whether that key still vouches
// for it: the current key, a rotated key while it is published, and no longer once it is not.
TEST_F(TxnTokenTest, ItsKeyIsWhatTheJwksSays) {
  VerifiedAccess v = DelegatedSession();
  auto before = svc_->MintTxnToken(RequestFor(v));
  ASSERT_TRUE(before.ok());
  auto new_kid = svc_->RotateSigningKey("admin:ops");
  ASSERT_TRUE(new_kid.ok());
  ASSERT_NE(*new_kid, before->kid);
  auto after = svc_->MintTxnToken(RequestFor(v));
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->kid, *new_kid);  // minted with the current key, not the retired one
  std::string jwks = svc_->JwksJson();
  EXPECT_TRUE(VerifyWithJwks(after->token, jwks).ok());
  EXPECT_TRUE(VerifyWithJwks(before->token, jwks).ok());  // still published

  // A token whose signature is another key's under a published kid does not verify.
  auto stranger = *crypto::EcdsaP256PrivateKey::Generate();
  json::object h = Part(after->token, 0);
  std::string forged =
      *crypto::SignJwsEs256(json::serialize(h), json::serialize(Part(after->token, 1)), stranger);
  EXPECT_FALSE(VerifyWithJwks(forged, jwks).ok());
  // Nor does one whose claims were changed after signing.
  std::string tampered = after->token;
  size_t d1 = tampered.find('.'), d2 = tampered.rfind('.');
  json::object claims = Part(after->token, 1);
  claims["sub"] = "mallory@example.com";
  tampered.replace(d1 + 1, d2 - d1 - 1, Base64UrlEncode(json::serialize(claims)));
  EXPECT_FALSE(VerifyWithJwks(tampered, jwks).ok());

  // Once the retired key's publication ends it is gone from the JWKS: its tokens no longer
  // verify there, while tokens of the current key do.
  clock_.Advance(std::chrono::hours(25));
  auto later = svc_->MintTxnToken(RequestFor(v));
  ASSERT_TRUE(later.ok());
  EXPECT_EQ(later->kid, *new_kid);
  std::string jwks_later = svc_->JwksJson();
  EXPECT_EQ(crypto::Jwks::Parse(jwks_later)->Find(before->kid), nullptr);
  EXPECT_FALSE(VerifyWithJwks(before->token, jwks_later).ok());
  EXPECT_TRUE(VerifyWithJwks(later->token, jwks_later).ok());
}

// TxnTokenSeries: one token per send. The first send takes the token minted with Start while it
// has kTxnTokenMinRemainingS left; every later send, and a first send after a long wait, gets a
// fresh one, valid then, with the same claims but iat, exp and jti (issue #18).
TEST_F(TxnTokenTest, ASeriesGivesEachSendATokenValidWhenSent) {
  VerifiedAccess v = DelegatedSession();
  auto stable = [](json::object c) {
    for (const char* k : {"iat", "exp", "jti"}) c.erase(k);
    return c;
  };
  auto series = TxnTokenSeries::Start(*svc_, clock_, RequestFor(v));
  ASSERT_TRUE(series.ok()) << series.status().ToString();
  const std::string first_jti = (*series)->last_jti();
  auto first = (*series)->ForSend();
  ASSERT_TRUE(first.ok());
  json::object c1 = Part(*first, 1);
  EXPECT_EQ(c1.at("jti"), first_jti.c_str()) << "the token minted with the decision goes first";
  EXPECT_EQ((*series)->minted(), 1);

  clock_.Advance(std::chrono::seconds(300));  // a person answers an input request 5 min later
  auto again = (*series)->ForSend();
  ASSERT_TRUE(again.ok());
  json::object c2 = Part(*again, 1);
  EXPECT_GT(c2.at("exp").as_int64(), Now());
  EXPECT_LT(c1.at("exp").as_int64(), Now());
  EXPECT_NE(c2.at("jti"), c1.at("jti"));
  EXPECT_EQ(stable(c2), stable(c1));
  EXPECT_EQ((*series)->last_jti(), c2.at("jti").as_string().c_str());
  auto third = (*series)->ForSend();  // sent again at once: still a token of its own
  ASSERT_TRUE(third.ok());
  EXPECT_NE(Part(*third, 1).at("jti"), c2.at("jti"));
  EXPECT_EQ((*series)->minted(), 3);
  EXPECT_TRUE(VerifyWithJwks(*third, svc_->JwksJson()).ok());

  // A first send after a wait (a server still starting): a fresh token when the first has less
  // than kTxnTokenMinRemainingS left, the first one otherwise.
  auto late = TxnTokenSeries::Start(*svc_, clock_, RequestFor(v));
  ASSERT_TRUE(late.ok());
  const std::string minted_jti = (*late)->last_jti();
  clock_.Advance(std::chrono::seconds(kTxnTokenMaxLifetimeS - kTxnTokenMinRemainingS + 1));
  auto sent = (*late)->ForSend();
  ASSERT_TRUE(sent.ok());
  json::object c = Part(*sent, 1);
  EXPECT_NE(c.at("jti"), minted_jti.c_str());
  EXPECT_GE(c.at("exp").as_int64() - Now(), kTxnTokenMinRemainingS);
  auto soon = TxnTokenSeries::Start(*svc_, clock_, RequestFor(v));
  ASSERT_TRUE(soon.ok());
  clock_.Advance(std::chrono::seconds(kTxnTokenMaxLifetimeS - kTxnTokenMinRemainingS));
  auto taken = (*soon)->ForSend();
  ASSERT_TRUE(taken.ok());
  EXPECT_EQ(Part(*taken, 1).at("jti"), (*soon)->last_jti().c_str());
  EXPECT_EQ((*soon)->minted(), 1);

  // A request that cannot be minted is refused at Start, before anything is sent.
  TxnTokenRequest bad = RequestFor(v);
  bad.scope.clear();
  EXPECT_EQ(TxnTokenSeries::Start(*svc_, clock_, bad).status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace custody::identity

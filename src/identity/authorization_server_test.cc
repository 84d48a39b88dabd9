// AuthorizationServer: the validation of /oauth2/authorize, the sign-in and consent legs, and
// the authorization_code and refresh_token grants, against a real TokenService and identity
// store. The company IdP is a small fake here (its real counterpart, oidc-provider, drives
// tests/oauth/); what is under test is Custody's side.
#include "identity/authorization_server.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <regex>
#include <thread>

#include "common/encoding.h"
#include "common/error_reporter.h"
#include "common/logger.h"
#include "crypto/sha256.h"
#include "http/server.h"
#include "identity/client_metadata.h"
#include "store/memory/memory_identity_store.h"

namespace custody::identity {
namespace {

constexpr char kIssuer[] = "https://custody.test";
constexpr char kResource[] = "https://custody.test/mcp";
constexpr char kIdp[] = "https://idp.test";
constexpr char kRedirect[] = "http://127.0.0.1:5555/callback";
const std::string kVerifier(64, 'v');

class FakeIdp final : public IdentityProvider {
 public:
  Result<std::string> AuthorizationUrl(const std::string& state, const std::string& nonce,
                                       const std::string& challenge) override {
    last_state = state;
    last_nonce = nonce;
    last_challenge = challenge;
    return std::string(kIdp) + "/auth?state=" + state;
  }
  Result<SignedInPerson> Redeem(const std::string& code, const std::string& verifier,
                                const std::string& nonce) override {
    ++redeemed;
    if (!refuse.ok()) return refuse;
    if (code != "idp-code") return UnauthenticatedError("bad code");
    if (PkceS256(verifier) != last_challenge) return UnauthenticatedError("bad verifier");
    if (nonce != last_nonce) return UnauthenticatedError("bad nonce");
    return SignedInPerson{"alice", kIdp, "Alice", "alice@example.com"};
  }
  std::string issuer() const override { return kIdp; }
  std::string last_state, last_nonce, last_challenge;
  int redeemed = 0;
  Status refuse;  // what Redeem answers instead, when not OK
};

std::string Param(const std::string& url, const std::string& name) {
  std::smatch m;
  if (std::regex_search(url, m, std::regex("[?&]" + name + "=([^&]*)"))) return m[1];
  return "";
}

std::string Cookie(const BrowserAnswer& a) {
  for (const std::string& c : a.set_cookies) {
    if (c.starts_with("custody_authz=")) return c.substr(0, c.find(';'));
  }
  return "";
}

class AuthorizationServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TokenServiceOptions o;
    o.trust_domain = "custody.test";
    o.issuer = kIssuer;
    auto s = TokenService::Create(store_, clock_, random_, errors_, Sink(), o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    tokens_ = std::move(*s);
    Agent a;
    a.name = "assistant";
    a.environment = Environment::kDev;
    a.grants = {"fake/*", "db/read"};
    ASSERT_TRUE(tokens_->RegisterAgent(a, true, "test").ok());
    auto d = StaticClientDirectory::Create(
        {OAuthClient{"desktop-app", "Desktop App", {kRedirect}, "assistant"}});
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    clients_ = std::make_unique<StaticClientDirectory>(std::move(*d));
    Make({});
  }
  IdentityEventSink Sink() {
    return [this](const std::string& e) {
      if (!ledger_down_.ok()) return ledger_down_;
      events_.push_back(e);
      return OkStatus();
    };
  }
  void Make(AuthorizationServerOptions o) { server_ = Another(std::move(o)); }
  // A server on the same stores as server_: another node, or this one after a restart.
  std::unique_ptr<AuthorizationServer> Another(AuthorizationServerOptions o = {}) {
    o.issuer = kIssuer;
    o.resource = kResource;
    return std::make_unique<AuthorizationServer>(*tokens_, store_, *clients_, &idp_, clock_,
                                                 random_, errors_, Sink(), o);
  }
  AuthorizeRequest Request() {
    AuthorizeRequest q;
    q.response_type = "code";
    q.client_id = "desktop-app";
    q.redirect_uri = kRedirect;
    q.state = "client-state";
    q.code_challenge = PkceS256(kVerifier);
    q.code_challenge_method = "S256";
    q.resource = kResource;
    q.scope = "fake/echo";
    return q;
  }
  // Authorize, sign in, consent (unless remembered): the redirect to the client.
  BrowserAnswer Through(const AuthorizeRequest& q, bool expect_page = true) {
    BrowserAnswer a = server_->Authorize(q, "");
    EXPECT_EQ(a.status, 302);
    EXPECT_TRUE(a.location.starts_with(std::string(kIdp) + "/auth")) << a.location;
    std::string cookie = Cookie(a);
    EXPECT_FALSE(cookie.empty());
    BrowserAnswer page =
        server_->LoginCallback(idp_.last_state, std::string("idp-code"), std::nullopt, cookie);
    if (!expect_page) return page;
    EXPECT_EQ(page.status, 200) << page.html;
    std::smatch m;
    std::regex_search(page.html, m, std::regex("name=\"request\" value=\"([^\"]+)\""));
    std::string request = m[1];
    std::regex_search(page.html, m, std::regex("name=\"csrf\" value=\"([^\"]+)\""));
    std::string csrf = m[1];
    return server_->Consent(request, csrf, "allow", cookie);
  }
  OAuthResult<CodeTokenAnswer> Redeem(const std::string& code,
                                      const std::string& verifier = kVerifier) {
    CodeTokenRequest t;
    t.grant_type = "authorization_code";
    t.client_id = "desktop-app";
    t.code = code;
    t.redirect_uri = kRedirect;
    t.code_verifier = verifier;
    t.resource = kResource;
    return server_->Token(t);
  }
  OAuthResult<CodeTokenAnswer> Refresh(const std::string& rt) {
    CodeTokenRequest t;
    t.grant_type = "refresh_token";
    t.client_id = "desktop-app";
    t.refresh_token = rt;
    return server_->Token(t);
  }
  bool Live(const std::string& token) { return tokens_->VerifyAccessToken(token, kResource).ok(); }
  std::string AllEvents() {
    std::string all;
    for (const auto& e : events_) all += e + "\n";
    return all;
  }

  FakeClock clock_;
  SystemRandom random_;
  NullLogger log_;
  ErrorReporter errors_{log_};
  store::MemoryIdentityStore store_;
  std::vector<std::string> events_;
  Status ledger_down_;  // what the sink answers instead of recording, when not OK
  std::unique_ptr<TokenService> tokens_;
  std::unique_ptr<StaticClientDirectory> clients_;
  FakeIdp idp_;
  std::unique_ptr<AuthorizationServer> server_;
};

TEST_F(AuthorizationServerTest, ErrorsBeforeTheRedirectUriIsValidatedAreAPageNeverARedirect) {
  AuthorizeRequest q = Request();
  q.client_id = "unknown-app";
  BrowserAnswer a = server_->Authorize(q, "");
  EXPECT_EQ(a.status, 400);
  EXPECT_TRUE(a.location.empty());
  EXPECT_EQ(a.error, "invalid_client");
  EXPECT_NE(a.html.find("invalid_client"), std::string::npos);
  q = Request();
  q.redirect_uri = "http://127.0.0.1:5555/callback/evil";
  a = server_->Authorize(q, "");
  EXPECT_EQ(a.status, 400);
  EXPECT_TRUE(a.location.empty()) << "a redirect URI that is not registered is never used";
  q.redirect_uri = std::nullopt;
  EXPECT_TRUE(server_->Authorize(q, "").location.empty());
  q = Request();
  q.client_id = std::nullopt;
  EXPECT_EQ(server_->Authorize(q, "").status, 400);
}

TEST_F(AuthorizationServerTest, PkceS256IsRequiredAndErrorsGoBackWithStateAndIss) {
  AuthorizeRequest q = Request();
  q.code_challenge = std::nullopt;
  q.code_challenge_method = std::nullopt;
  BrowserAnswer a = server_->Authorize(q, "");
  EXPECT_EQ(a.status, 302);
  EXPECT_TRUE(a.location.starts_with(std::string(kRedirect) + "?error=invalid_request"))
      << a.location;
  EXPECT_EQ(Param(a.location, "state"), "client-state");
  EXPECT_EQ(Param(a.location, "iss"), "https%3A%2F%2Fcustody.test");
  q = Request();
  q.code_challenge_method = "plain";
  q.code_challenge = kVerifier;
  EXPECT_EQ(Param(server_->Authorize(q, "").location, "error"), "invalid_request");
  q.code_challenge_method = std::nullopt;  // plain by default (RFC 7636)
  EXPECT_EQ(Param(server_->Authorize(q, "").location, "error"), "invalid_request");
  q = Request();
  q.response_type = "token";
  EXPECT_EQ(Param(server_->Authorize(q, "").location, "error"), "unsupported_response_type");
  q = Request();
  q.resource = "https://elsewhere.test/mcp";
  EXPECT_EQ(Param(server_->Authorize(q, "").location, "error"), "invalid_target");
  q = Request();
  q.scope = "github/write";
  EXPECT_EQ(Param(server_->Authorize(q, "").location, "error"), "invalid_scope");
  EXPECT_TRUE(idp_.last_state.empty()) << "no refused request reached the IdP";
}

TEST_F(AuthorizationServerTest, TheWholeFlowIssuesASessionTokenForTheVerifiedPerson) {
  BrowserAnswer back = Through(Request());
  ASSERT_EQ(back.status, 302);
  ASSERT_TRUE(back.location.starts_with(std::string(kRedirect) + "?code=")) << back.location;
  EXPECT_EQ(Param(back.location, "state"), "client-state");
  EXPECT_EQ(Param(back.location, "iss"), "https%3A%2F%2Fcustody.test");
  std::string code = Param(back.location, "code");
  auto t = Redeem(code);
  ASSERT_TRUE(t.ok()) << t.error.error << ": " << t.error.description;
  EXPECT_EQ(t.value->token.scope, "fake/echo");
  EXPECT_FALSE(t.value->refresh_token.empty());
  auto v = tokens_->VerifyAccessToken(t.value->token.access_token, kResource);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->session.initiator, "alice");
  EXPECT_EQ(v->session.initiator_issuer, kIdp);
  EXPECT_EQ(v->session.verification, InitiatorVerification::kVerified);
  EXPECT_EQ(v->session.agent, "assistant");
  EXPECT_TRUE(v->session.instance.starts_with("spiffe://custody.test/agent/assistant/instance/"));
  EXPECT_NE(v->act_json.find(v->session.instance), std::string::npos);
  // Every step is in the ledger, and no code, token or verifier is.
  std::string all = AllEvents();
  for (const char* kind : {"oauth.sign_in", "oauth.consent", "oauth.code_issue", "session.start",
                           "oauth.token_issue"}) {
    EXPECT_NE(all.find(kind), std::string::npos) << kind;
  }
  EXPECT_EQ(all.find(code), std::string::npos);
  EXPECT_EQ(all.find(t.value->refresh_token), std::string::npos);
  EXPECT_EQ(all.find(t.value->token.access_token), std::string::npos);
  EXPECT_EQ(all.find(kVerifier), std::string::npos);

  // Refresh: a new token of the same instance; the old refresh token is spent.
  auto r = Refresh(t.value->refresh_token);
  ASSERT_TRUE(r.ok()) << r.error.description;
  auto v2 = tokens_->VerifyAccessToken(r.value->token.access_token, kResource);
  ASSERT_TRUE(v2.ok());
  EXPECT_EQ(v2->session.instance, v->session.instance);
  EXPECT_NE(v2->session.sid, v->session.sid);
  EXPECT_NE(r.value->refresh_token, t.value->refresh_token);
  // Reuse of the rotated-out token: refused, and the family and its sessions are revoked.
  auto reuse = Refresh(t.value->refresh_token);
  ASSERT_FALSE(reuse.ok());
  EXPECT_EQ(reuse.error.error, "invalid_grant");
  EXPECT_FALSE(Live(t.value->token.access_token));
  EXPECT_FALSE(Live(r.value->token.access_token));
  auto after = Refresh(r.value->refresh_token);
  EXPECT_EQ(after.error.error, "invalid_grant") << "the family is revoked";
  EXPECT_NE(AllEvents().find("oauth.reuse"), std::string::npos);
}

TEST_F(AuthorizationServerTest, OpenIdConnectScopesAreDroppedNotRefused) {
  // mcp-remote's fallback when a server names no scopes: the agent's grants, nothing more.
  AuthorizeRequest q = Request();
  q.scope = "openid email profile";
  auto t = Redeem(Param(Through(q).location, "code"));
  ASSERT_TRUE(t.ok()) << t.error.error << ": " << t.error.description;
  EXPECT_EQ(t.value->token.scope, "db/read fake/*");
  // Alongside tool scopes: only the tool scopes, even for an agent whose grants would cover them.
  q.scope = "openid fake/echo offline_access";
  t = Redeem(Param(Through(q, false).location, "code"));
  ASSERT_TRUE(t.ok()) << t.error.error << ": " << t.error.description;
  EXPECT_EQ(t.value->token.scope, "fake/echo");
  // A refresh that repeats them (the SDK adds offline_access) keeps the grant's scopes.
  CodeTokenRequest r;
  r.grant_type = "refresh_token";
  r.client_id = "desktop-app";
  r.refresh_token = t.value->refresh_token;
  r.scope = "fake/echo offline_access";
  auto refreshed = server_->Token(r);
  ASSERT_TRUE(refreshed.ok()) << refreshed.error.description;
  EXPECT_EQ(refreshed.value->token.scope, "fake/echo");
  // Scopes that are neither OpenID's nor granted are still refused.
  q.scope = "openid github/write";
  EXPECT_EQ(Param(server_->Authorize(q, "").location, "error"), "invalid_scope");
}

TEST_F(AuthorizationServerTest, ACodeIsSingleUseAndItsReuseRevokesWhatItIssued) {
  std::string code = Param(Through(Request()).location, "code");
  auto t = Redeem(code);
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE(Live(t.value->token.access_token));
  auto again = Redeem(code);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error.error, "invalid_grant");
  EXPECT_FALSE(Live(t.value->token.access_token)) << "the first use's token is revoked";
  EXPECT_EQ(Refresh(t.value->refresh_token).error.error, "invalid_grant");
}

// Codes live in the identity store, not the issuing server's memory: behind several nodes the
// client's token request (server to server, not pinned by browser stickiness) lands anywhere.
TEST_F(AuthorizationServerTest, ACodeIssuedByOneServerIsRedeemedAtAnotherOverTheSameStore) {
  std::string code = Param(Through(Request()).location, "code");
  ASSERT_FALSE(code.empty());
  std::unique_ptr<AuthorizationServer> other = Another();
  CodeTokenRequest t;
  t.grant_type = "authorization_code";
  t.client_id = "desktop-app";
  t.code = code;
  t.redirect_uri = kRedirect;
  t.code_verifier = kVerifier;
  t.resource = kResource;
  auto first = other->Token(t);
  ASSERT_TRUE(first.ok()) << first.error.description;
  EXPECT_TRUE(Live(first.value->token.access_token));
  auto again = Redeem(code);  // at the server that issued it
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error.error, "invalid_grant");
  EXPECT_FALSE(Live(first.value->token.access_token))
      << "a reuse at another server revokes what the first use issued";
  EXPECT_EQ(Refresh(first.value->refresh_token).error.error, "invalid_grant");
}

// A used code is kept for a grace period so that its reuse is detected; after it, the code is
// unknown whether or not a purge ran, and the store is purged as new codes are issued.
TEST_F(AuthorizationServerTest, AUsedCodeIsForgottenAfterTheGracePeriod) {
  std::string code = Param(Through(Request()).location, "code");
  auto t = Redeem(code);
  ASSERT_TRUE(t.ok());
  clock_.Advance(std::chrono::seconds(60 + 600));
  auto late = Redeem(code);
  EXPECT_EQ(late.error.error, "invalid_grant");
  EXPECT_NE(late.error.description.find("unknown"), std::string::npos) << late.error.description;
  EXPECT_FALSE(store_.GetSession(t.value->token.sid)->revoked)
      << "past the grace period nothing is revoked";
  ASSERT_FALSE(Param(Through(Request(), false).location, "code").empty());  // purges
  EXPECT_EQ(store_.RedeemAuthorizationCode(HexEncode(crypto::Sha256(code))).status().code(),
            StatusCode::kNotFound);
}

TEST_F(AuthorizationServerTest, TheCodeIsBoundToVerifierClientRedirectResourceAndTime) {
  // Consent is remembered after the first authorization: no page the next times.
  std::string code = Param(Through(Request()).location, "code");
  EXPECT_EQ(Redeem(code, std::string(64, 'w')).error.error, "invalid_grant");
  EXPECT_EQ(Redeem(code).error.error, "invalid_grant") << "a failed redemption spends the code";

  auto fresh = [&]() { return Param(Through(Request(), false).location, "code"); };
  CodeTokenRequest t;
  t.grant_type = "authorization_code";
  t.client_id = "desktop-app";
  t.code = fresh();
  ASSERT_FALSE(t.code.empty()) << "remembered consent: straight back to the client";
  t.redirect_uri = "http://127.0.0.1:5555/other";
  t.code_verifier = kVerifier;
  EXPECT_EQ(server_->Token(t).error.error, "invalid_grant");
  t.code = fresh();
  t.redirect_uri = kRedirect;
  t.resource = "https://elsewhere.test/mcp";
  EXPECT_EQ(server_->Token(t).error.error, "invalid_target");
  t.code = fresh();
  t.resource = kResource;
  t.client_id = "other-app";
  EXPECT_EQ(server_->Token(t).error.error, "invalid_grant");
  t.code = fresh();
  t.client_id = "desktop-app";
  clock_.Advance(std::chrono::seconds(61));
  EXPECT_EQ(server_->Token(t).error.error, "invalid_grant") << "a code lives at most 60 s";
  t.code = fresh();
  t.code_verifier.clear();
  EXPECT_EQ(server_->Token(t).error.error, "invalid_grant");
  std::string all = AllEvents();
  EXPECT_NE(all.find("\"decision\":\"remembered\""), std::string::npos);
  EXPECT_NE(all.find("token.refuse"), std::string::npos);
}

TEST_F(AuthorizationServerTest, ConsentNeedsTheSameBrowserAndItsCsrfTokenAndCanBeDenied) {
  BrowserAnswer a = server_->Authorize(Request(), "");
  std::string cookie = Cookie(a);
  EXPECT_EQ(server_
                ->LoginCallback(idp_.last_state, std::string("idp-code"), std::nullopt,
                                "custody_authz=" + std::string(43, 'x'))
                .status,
            400)
      << "another browser's cookie";
  a = server_->Authorize(Request(), cookie);
  EXPECT_EQ(Cookie(a), cookie) << "a browser keeps its cookie";
  BrowserAnswer page =
      server_->LoginCallback(idp_.last_state, std::string("idp-code"), std::nullopt, cookie);
  ASSERT_EQ(page.status, 200);
  EXPECT_NE(page.html.find("Desktop App"), std::string::npos);
  EXPECT_NE(page.html.find("assistant"), std::string::npos);
  EXPECT_NE(page.html.find("fake/echo"), std::string::npos);
  EXPECT_EQ(page.html.find("http"), page.html.find("https://idp.test"))
      << "no external assets: the only URL is the IdP's name";
  std::smatch m;
  std::regex_search(page.html, m, std::regex("name=\"request\" value=\"([^\"]+)\""));
  std::string request = m[1];
  EXPECT_EQ(server_->Consent(request, "forged", "allow", cookie).status, 403);
  EXPECT_EQ(server_->Consent(request, "forged", "allow", cookie).status, 400)
      << "a request gets one decision";

  server_->Authorize(Request(), cookie);
  page = server_->LoginCallback(idp_.last_state, std::string("idp-code"), std::nullopt, cookie);
  std::regex_search(page.html, m, std::regex("name=\"request\" value=\"([^\"]+)\""));
  request = m[1];
  std::regex_search(page.html, m, std::regex("name=\"csrf\" value=\"([^\"]+)\""));
  BrowserAnswer denied = server_->Consent(request, m[1], "deny", cookie);
  EXPECT_EQ(Param(denied.location, "error"), "access_denied");
  EXPECT_FALSE(store_.GetConsent(kIdp, "alice", "desktop-app").ok());
}

TEST_F(AuthorizationServerTest, UnknownClientsComeInOnlyInDevelopmentAsDevAgentsOwnedByThePerson) {
  AuthorizeRequest q = Request();
  q.client_id = "http://127.0.0.1:7777/my-tool";
  q.scope = std::nullopt;
  EXPECT_EQ(server_->Authorize(q, "").error, "invalid_client");
  AuthorizationServerOptions o;
  o.dev_unknown_clients = true;
  o.dev_grants = {"fake/echo"};
  Make(o);
  AuthorizeRequest https = q;
  https.redirect_uri = "https://app.example/cb";
  EXPECT_EQ(server_->Authorize(https, "").status, 400) << "loopback redirect URIs only";
  BrowserAnswer back = Through(q);
  std::string code = Param(back.location, "code");
  ASSERT_FALSE(code.empty()) << back.location << back.html;
  CodeTokenRequest t;
  t.grant_type = "authorization_code";
  t.client_id = *q.client_id;
  t.code = code;
  t.redirect_uri = kRedirect;
  t.code_verifier = kVerifier;
  auto issued = server_->Token(t);
  ASSERT_TRUE(issued.ok()) << issued.error.description;
  EXPECT_EQ(issued.value->token.scope, "fake/echo");
  auto agent = tokens_->GetAgent(AuthorizationServer::DevAgentName(*q.client_id));
  ASSERT_TRUE(agent.ok());
  EXPECT_EQ(agent->environment, Environment::kDev);
  EXPECT_EQ(agent->business_owner, "alice@example.com");
}

TEST_F(AuthorizationServerTest, AnIdpAnswerNamingAnotherIssuerIsAMixUpAndNeverRedeemed) {
  BrowserAnswer a = server_->Authorize(Request(), "");
  std::string cookie = Cookie(a);
  BrowserAnswer back = server_->LoginCallback(idp_.last_state, std::string("idp-code"),
                                              std::nullopt, cookie, "https://evil.test");
  EXPECT_EQ(Param(back.location, "error"), "access_denied") << back.location;
  EXPECT_EQ(idp_.redeemed, 0);
  a = server_->Authorize(Request(), cookie);
  BrowserAnswer page = server_->LoginCallback(idp_.last_state, std::string("idp-code"),
                                              std::nullopt, cookie, std::string(kIdp));
  EXPECT_EQ(page.status, 200) << "the IdP's own iss is fine";
}

// --- Approvers: the same sign-in, ending in an approver session instead of consent.

std::string ApproverCookie(const BrowserAnswer& a) {
  for (const std::string& c : a.set_cookies) {
    if (c.starts_with("custody_approver=")) return c.substr(0, c.find(';'));
  }
  return "";
}

std::string SetCookieOf(const BrowserAnswer& a, std::string_view name) {
  for (const std::string& c : a.set_cookies) {
    if (c.starts_with(std::string(name) + "=")) return c;
  }
  return "";
}

TEST_F(AuthorizationServerTest, AnApproverSessionIsOpenedOnlyByAVerifiedSignIn) {
  BrowserAnswer start = server_->StartApproverSignIn("0198c3a2-aaaa", "");
  ASSERT_EQ(start.status, 302) << start.html;
  EXPECT_TRUE(start.location.starts_with(std::string(kIdp) + "/auth")) << start.location;
  EXPECT_FALSE(idp_.last_challenge.empty()) << "PKCE S256 towards the IdP";
  std::string browser = Cookie(start);
  ASSERT_FALSE(browser.empty()) << "the sign-in is bound to the browser";
  EXPECT_TRUE(ApproverCookie(start).empty()) << "no approver session before the IdP answers";

  // The IdP's code does not verify: an error page, no session, the pending sign-in spent.
  BrowserAnswer bad =
      server_->LoginCallback(idp_.last_state, std::string("forged-code"), std::nullopt, browser);
  EXPECT_EQ(bad.status, 403);
  EXPECT_EQ(bad.error, "access_denied");
  EXPECT_TRUE(bad.location.empty());
  EXPECT_TRUE(ApproverCookie(bad).empty());
  EXPECT_NE(bad.html.find("href=\"/approvals/0198c3a2-aaaa\""), std::string::npos)
      << "the way back to the approval";
  EXPECT_EQ(AllEvents().find("oauth.sign_in"), std::string::npos);

  // The IdP says the person did not sign in: nothing redeemed, no session.
  int redeemed = idp_.redeemed;
  start = server_->StartApproverSignIn("0198c3a2-aaaa", browser);
  EXPECT_EQ(Cookie(start), browser) << "a browser keeps its cookie";
  BrowserAnswer refused =
      server_->LoginCallback(idp_.last_state, std::nullopt, std::string("access_denied"), browser);
  EXPECT_EQ(refused.status, 403);
  EXPECT_TRUE(ApproverCookie(refused).empty());
  EXPECT_EQ(idp_.redeemed, redeemed);

  // Verified: the session cookie, and back to the approval page.
  start = server_->StartApproverSignIn("0198c3a2-aaaa", browser);
  BrowserAnswer done =
      server_->LoginCallback(idp_.last_state, std::string("idp-code"), std::nullopt, browser);
  ASSERT_EQ(done.status, 302) << done.html;
  EXPECT_EQ(done.location, std::string(kIssuer) + "/approvals/0198c3a2-aaaa");
  std::string set = SetCookieOf(done, kApproverCookie);
  EXPECT_NE(set.find("; Path=/approvals;"), std::string::npos) << set;
  EXPECT_NE(set.find("; Max-Age=900;"), std::string::npos) << set;
  EXPECT_NE(set.find("; HttpOnly"), std::string::npos) << set;
  EXPECT_NE(set.find("; Secure"), std::string::npos) << set;
  EXPECT_NE(set.find("; SameSite=Lax"), std::string::npos) << set;
  std::string approver = ApproverCookie(done);
  auto session = server_->FindApproverSession("other=1; " + approver);
  ASSERT_TRUE(session.has_value());
  EXPECT_EQ(session->person.subject, "alice");
  EXPECT_EQ(session->person.issuer, kIdp);
  EXPECT_EQ(session->csrf.size(), 43u);
  EXPECT_EQ(approver.find(session->csrf), std::string::npos) << "the CSRF token is not the cookie";
  // Recorded as a sign-in for the approval pages; the cookie's token is in no event.
  std::string events = AllEvents();
  EXPECT_NE(events.find("\"kind\":\"oauth.sign_in\""), std::string::npos) << events;
  EXPECT_NE(events.find("custody:approvals"), std::string::npos) << events;
  EXPECT_EQ(events.find(approver.substr(approver.find('=') + 1)), std::string::npos);
  EXPECT_EQ(events.find(session->csrf), std::string::npos);

  // The same IdP state again: one answer per sign-in.
  EXPECT_EQ(server_->LoginCallback(idp_.last_state, std::string("idp-code"), std::nullopt, browser)
                .status,
            400);
}

TEST_F(AuthorizationServerTest, AnApproverSignInNeedsItsStateAndItsBrowser) {
  BrowserAnswer start = server_->StartApproverSignIn("apr-1", "");
  std::string browser = Cookie(start);
  std::string state = idp_.last_state;
  BrowserAnswer wrong_state =
      server_->LoginCallback(std::string(43, 's'), std::string("idp-code"), std::nullopt, browser);
  EXPECT_EQ(wrong_state.status, 400);
  EXPECT_TRUE(ApproverCookie(wrong_state).empty());
  EXPECT_EQ(
      server_->LoginCallback(std::nullopt, std::string("idp-code"), std::nullopt, browser).status,
      400);
  // No browser cookie, or another browser's: refused (and the sign-in is spent).
  BrowserAnswer no_cookie =
      server_->LoginCallback(state, std::string("idp-code"), std::nullopt, "");
  EXPECT_EQ(no_cookie.status, 400);
  EXPECT_TRUE(ApproverCookie(no_cookie).empty());
  server_->StartApproverSignIn("apr-1", "");
  BrowserAnswer other =
      server_->LoginCallback(idp_.last_state, std::string("idp-code"), std::nullopt,
                             "custody_authz=" + std::string(43, 'x'));
  EXPECT_EQ(other.status, 400);
  EXPECT_TRUE(ApproverCookie(other).empty());
  EXPECT_EQ(idp_.redeemed, 0) << "no code is redeemed for a sign-in that does not match";
  // A mixed-up answer (RFC 9207 iss of another issuer) is never redeemed.
  server_->StartApproverSignIn("apr-1", browser);
  BrowserAnswer mixed = server_->LoginCallback(idp_.last_state, std::string("idp-code"),
                                               std::nullopt, browser, "https://evil.test");
  EXPECT_EQ(mixed.status, 403);
  EXPECT_EQ(idp_.redeemed, 0);
  // An id that is not an approval id is not put in a URL.
  for (const std::string& bad :
       std::vector<std::string>{"", "a/b", "..", "x?y", "a b", std::string(129, 'a')}) {
    BrowserAnswer a = server_->StartApproverSignIn(bad, "");
    EXPECT_EQ(a.status, 400) << bad;
    EXPECT_TRUE(a.location.empty()) << bad;
  }
  EXPECT_FALSE(server_->FindApproverSession("").has_value());
  EXPECT_FALSE(
      server_->FindApproverSession("custody_approver=" + std::string(43, 'x')).has_value());
}

TEST_F(AuthorizationServerTest, TheApproverFormNeedsTheSessionAndItsCsrfTokenUntilItExpires) {
  server_->StartApproverSignIn("apr-1", "");
  BrowserAnswer start = server_->StartApproverSignIn("apr-1", "");
  BrowserAnswer done =
      server_->LoginCallback(idp_.last_state, std::string("idp-code"), std::nullopt, Cookie(start));
  std::string cookie = ApproverCookie(done);
  ASSERT_FALSE(cookie.empty()) << done.html;
  auto session = server_->FindApproverSession(cookie);
  ASSERT_TRUE(session.has_value());

  EXPECT_EQ(server_->ApproverOfForm("", session->csrf).status().code(),
            StatusCode::kUnauthenticated)
      << "no cookie";
  EXPECT_EQ(server_->ApproverOfForm("custody_approver=" + std::string(43, 'x'), session->csrf)
                .status()
                .code(),
            StatusCode::kUnauthenticated)
      << "a cookie no sign-in opened";
  EXPECT_EQ(server_->ApproverOfForm(cookie, "").status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(server_->ApproverOfForm(cookie, std::string(43, 'c')).status().code(),
            StatusCode::kPermissionDenied)
      << "wrong CSRF token";
  auto person = server_->ApproverOfForm(cookie, session->csrf);
  ASSERT_TRUE(person.ok()) << person.status().ToString();
  EXPECT_EQ(person->subject, "alice");
  EXPECT_EQ(person->issuer, kIdp);
  EXPECT_TRUE(server_->ApproverOfForm(cookie, session->csrf).ok()) << "the session decides again";

  // Another person's session has its own CSRF token.
  start = server_->StartApproverSignIn("apr-2", "");
  std::string other = ApproverCookie(server_->LoginCallback(
      idp_.last_state, std::string("idp-code"), std::nullopt, Cookie(start)));
  ASSERT_FALSE(other.empty());
  EXPECT_NE(other, cookie);
  EXPECT_EQ(server_->ApproverOfForm(other, session->csrf).status().code(),
            StatusCode::kPermissionDenied);

  clock_.Advance(std::chrono::seconds(901));
  EXPECT_FALSE(server_->FindApproverSession(cookie).has_value());
  EXPECT_EQ(server_->ApproverOfForm(cookie, session->csrf).status().code(),
            StatusCode::kUnauthenticated)
      << "the session expired";
}

TEST_F(AuthorizationServerTest, ApproverSessionsAreBounded) {
  AuthorizationServerOptions o;
  o.max_approver_sessions = 1;
  Make(o);
  BrowserAnswer start = server_->StartApproverSignIn("apr-1", "");
  ASSERT_FALSE(ApproverCookie(server_->LoginCallback(idp_.last_state, std::string("idp-code"),
                                                     std::nullopt, Cookie(start)))
                   .empty());
  start = server_->StartApproverSignIn("apr-1", "");
  BrowserAnswer full =
      server_->LoginCallback(idp_.last_state, std::string("idp-code"), std::nullopt, Cookie(start));
  EXPECT_EQ(full.status, 503);
  EXPECT_TRUE(ApproverCookie(full).empty());
  clock_.Advance(std::chrono::seconds(901));
  start = server_->StartApproverSignIn("apr-1", "");
  EXPECT_FALSE(ApproverCookie(server_->LoginCallback(idp_.last_state, std::string("idp-code"),
                                                     std::nullopt, Cookie(start)))
                   .empty())
      << "an expired session makes room";
}

TEST_F(AuthorizationServerTest, AClientsSignInStateNeverOpensAnApproverSession) {
  // The client's sign-in goes to consent, whatever the browser holds.
  BrowserAnswer a = server_->Authorize(Request(), "");
  BrowserAnswer page =
      server_->LoginCallback(idp_.last_state, std::string("idp-code"), std::nullopt, Cookie(a));
  EXPECT_EQ(page.status, 200);
  EXPECT_TRUE(ApproverCookie(page).empty());
}

TEST_F(AuthorizationServerTest, ConsentsCanBeRevoked) {
  ASSERT_EQ(Through(Request()).status, 302);
  ASSERT_TRUE(store_.GetConsent(kIdp, "alice", "desktop-app").ok());
  ASSERT_TRUE(server_->RevokeConsent(kIdp, "alice", "desktop-app", "admin:1").ok());
  EXPECT_EQ(server_->RevokeConsent(kIdp, "alice", "desktop-app", "admin:1").code(),
            StatusCode::kNotFound);
  EXPECT_NE(AllEvents().find("\"decision\":\"revoked\""), std::string::npos);
  // Revoked: the page is shown again.
  server_->Authorize(Request(), "");
  EXPECT_EQ(Through(Request()).status, 302);
}

TEST_F(AuthorizationServerTest, TheConsentPageShowsTheClientsLogoFromCustodysOwnUrl) {
  // The client's host: a PNG, and an SVG (which a browser would run as a page).
  const std::string png = std::string("\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16) + "rest-of-the-image";
  http::Router router;
  ASSERT_TRUE(router
                  .Add({"GET", "/{name}",
                        [&](http::Request& r, http::Responder respond) {
                          if (r.params["name"] == "logo.png") {
                            return respond(http::Response::Text(200, png, "image/png"));
                          }
                          respond(http::Response::Text(200, "<svg/>", "image/svg+xml"));
                        },
                        http::AuthRequirement::None(), ""})
                  .ok());
  http::ServerOptions so;
  so.host = "127.0.0.1";
  so.port = 0;
  so.threads = 1;
  SystemClock wall;
  http::Server host(so, router, nullptr, nullptr, wall, random_);
  ASSERT_TRUE(host.Start().ok());
  std::string base = "http://127.0.0.1:" + std::to_string(host.port());
  ClientMetadataOptions mo;
  mo.clock = &clock_;
  mo.allow_loopback_http = true;
  ClientMetadataFetcher fetcher(mo);

  auto page_for = [&](const std::string& logo_uri) {
    OAuthClient c{"desktop-app", "Desktop App", {kRedirect}, "assistant"};
    c.logo_uri = logo_uri;
    auto d = StaticClientDirectory::Create({c});
    EXPECT_TRUE(d.ok());
    clients_ = std::make_unique<StaticClientDirectory>(std::move(*d));
    Make({});
    server_->EnableClientLogos(&fetcher);
    BrowserAnswer a = server_->Authorize(Request(), "");
    return server_->LoginCallback(idp_.last_state, std::string("idp-code"), std::nullopt,
                                  Cookie(a));
  };
  BrowserAnswer page = page_for(base + "/logo.png");
  ASSERT_EQ(page.status, 200) << page.html;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(
      page.html, m, std::regex("<img class=\"logo\" src=\"/oauth2/logo/([0-9a-f]{64})\"")))
      << page.html;
  EXPECT_EQ(page.html.find(base), std::string::npos) << "the client's host is never linked";
  std::string id = m[1];
  auto logo = server_->Logo(id);
  ASSERT_NE(logo, nullptr);
  EXPECT_EQ(logo->content_type, "image/png");
  EXPECT_EQ(logo->bytes, png);
  EXPECT_EQ(server_->Logo(std::string(64, '0')), nullptr);
  clock_.Advance(std::chrono::seconds(601));  // the consent page has expired, and its logo
  EXPECT_EQ(server_->Logo(id), nullptr);

  // A logo that is not one of the four image types: the page is shown without it.
  page = page_for(base + "/logo.svg");
  ASSERT_EQ(page.status, 200) << page.html;
  EXPECT_EQ(page.html.find("<img"), std::string::npos) << page.html;
  host.Shutdown();
}

TEST_F(AuthorizationServerTest, TheConsentPageNamesTheClientsSiteAsTextAtAnyServer) {
  OAuthClient c{"desktop-app", "Desktop App", {kRedirect}, "assistant"};
  c.client_uri = "https://desktop.example/app?a=1&b=<2>";
  auto d = StaticClientDirectory::Create({c});
  ASSERT_TRUE(d.ok());
  clients_ = std::make_unique<StaticClientDirectory>(std::move(*d));
  Make({});
  // Started at one server, its page shown by another: the site travels with the stored sign-in.
  std::unique_ptr<AuthorizationServer> other = Another();
  BrowserAnswer a = server_->Authorize(Request(), "");
  BrowserAnswer page =
      other->LoginCallback(idp_.last_state, std::string("idp-code"), std::nullopt, Cookie(a));
  ASSERT_EQ(page.status, 200) << page.html;
  EXPECT_NE(page.html.find("whose site is <code>https://desktop.example/app?a=1&amp;b=&lt;2&gt;"
                           "</code>"),
            std::string::npos)
      << page.html;
  EXPECT_EQ(page.html.find("<a "), std::string::npos) << "named, not linked: " << page.html;

  // A client without one: nothing said about a site.
  clients_ = std::make_unique<StaticClientDirectory>(*StaticClientDirectory::Create(
      {OAuthClient{"desktop-app", "Desktop App", {kRedirect}, "assistant"}}));
  Make({});
  a = server_->Authorize(Request(), "");
  page = server_->LoginCallback(idp_.last_state, std::string("idp-code"), std::nullopt, Cookie(a));
  ASSERT_EQ(page.status, 200) << page.html;
  EXPECT_EQ(page.html.find("whose site"), std::string::npos) << page.html;
}

// A directory as MetadataDocumentClientDirectory answers: a client known by its document only
// (no agent), and a document refused.
class DocumentDirectory final : public ClientDirectory {
 public:
  Result<OAuthClient> Find(const std::string& id) override {
    if (id == "https://tool.example/client.json") {
      return OAuthClient{id, "Tool", {"https://tool.example/cb"}, ""};
    }
    if (id == "https://bad.example/client.json") {
      return InvalidArgumentError("client metadata document: client_id does not match its URL");
    }
    return NotFoundError("unknown client");
  }
};

TEST_F(AuthorizationServerTest, ADocumentOnlyClientNeedsAnAgentMappingOrTheDevSwitch) {
  DocumentDirectory documents;
  AuthorizationServerOptions o;
  o.issuer = kIssuer;
  o.resource = kResource;
  auto strict = std::make_unique<AuthorizationServer>(*tokens_, store_, documents, &idp_, clock_,
                                                      random_, errors_, Sink(), o);
  AuthorizeRequest q = Request();
  q.client_id = "https://tool.example/client.json";
  q.redirect_uri = "https://tool.example/cb";
  BrowserAnswer a = strict->Authorize(q, "");
  EXPECT_EQ(a.status, 400);
  EXPECT_EQ(a.error, "invalid_client");
  EXPECT_NE(a.html.find("No agent is registered"), std::string::npos);
  q.client_id = "https://bad.example/client.json";
  a = strict->Authorize(q, "");
  EXPECT_EQ(a.error, "invalid_client");
  EXPECT_NE(a.html.find("does not match its URL"), std::string::npos);
  EXPECT_TRUE(a.location.empty());
  o.dev_unknown_clients = true;
  o.dev_grants = {"fake/echo"};
  auto dev = std::make_unique<AuthorizationServer>(*tokens_, store_, documents, &idp_, clock_,
                                                   random_, errors_, Sink(), o);
  q.client_id = "https://tool.example/client.json";
  q.redirect_uri = "https://tool.example/other";
  EXPECT_EQ(dev->Authorize(q, "").status, 400) << "the document's redirect URIs, exactly";
  q.redirect_uri = "https://tool.example/cb";
  a = dev->Authorize(q, "");
  EXPECT_EQ(a.status, 302);
  EXPECT_TRUE(a.location.starts_with(kIdp)) << a.location;
}

TEST_F(AuthorizationServerTest, DynamicallyRegisteredClientsArePublicAndComeInOnlyAsDevAgents) {
  DynamicClientRegistry registry(random_);
  FirstFoundClientDirectory all({clients_.get(), &registry});
  AuthorizationServerOptions o;
  o.issuer = kIssuer;
  o.resource = kResource;
  o.dev_unknown_clients = true;
  o.dev_grants = {"fake/echo"};
  AuthorizationServer server(*tokens_, store_, all, &idp_, clock_, random_, errors_, Sink(), o);
  EXPECT_EQ(server.RegisterClient("{}").status, 404) << "off until enabled";
  server.EnableDynamicRegistration(&registry);
  auto bad = server.RegisterClient(R"({"redirect_uris":["http://app.example/cb"]})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.json.find("invalid_redirect_uri"), std::string::npos) << bad.json;
  bad = server.RegisterClient(
      R"({"redirect_uris":["https://app.example/cb"],"token_endpoint_auth_method":"client_secret_basic"})");
  EXPECT_NE(bad.json.find("invalid_client_metadata"), std::string::npos) << bad.json;
  bad = server.RegisterClient(
      R"({"redirect_uris":["https://app.example/cb"],"grant_types":["implicit"]})");
  EXPECT_EQ(bad.status, 400);
  auto ok = server.RegisterClient(
      R"({"redirect_uris":["https://app.example/cb"],"client_name":"Tool","token_endpoint_auth_method":"none"})");
  ASSERT_EQ(ok.status, 201) << ok.json;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(ok.json, m, std::regex("\"client_id\":\"(dcr_[^\"]+)\"")));
  std::string id = m[1];
  EXPECT_NE(AllEvents().find("oauth.client_register"), std::string::npos);
  AuthorizeRequest q = Request();
  q.client_id = id;
  q.redirect_uri = "https://app.example/other";
  EXPECT_EQ(server.Authorize(q, "").status, 400) << "registered redirect URIs, exactly";
  q.redirect_uri = "https://app.example/cb";
  BrowserAnswer a = server.Authorize(q, "");
  EXPECT_EQ(a.status, 302);
  EXPECT_TRUE(a.location.starts_with(kIdp)) << a.location;
  // Without the dev switch a registered client has no agent: refused.
  o.dev_unknown_clients = false;
  AuthorizationServer strict(*tokens_, store_, all, &idp_, clock_, random_, errors_, Sink(), o);
  EXPECT_EQ(strict.Authorize(q, "").error, "invalid_client");
}

TEST(OAuthClients, RedirectUrisAreHttpsLoopbackOrPrivateUseAndClientsNeedAnAgent) {
  EXPECT_TRUE(ValidateRedirectUri("https://app.example/cb").ok());
  EXPECT_TRUE(ValidateRedirectUri("http://127.0.0.1:8080/cb").ok());
  EXPECT_TRUE(ValidateRedirectUri("http://[::1]:8080/cb").ok());
  EXPECT_TRUE(ValidateRedirectUri("http://localhost/cb").ok());
  EXPECT_TRUE(ValidateRedirectUri("com.example.app:/oauth").ok());
  EXPECT_FALSE(ValidateRedirectUri("http://app.example/cb").ok());
  EXPECT_FALSE(ValidateRedirectUri("https://app.example/cb#x").ok());
  EXPECT_FALSE(ValidateRedirectUri("javascript:alert(1)").ok());
  EXPECT_FALSE(ValidateRedirectUri("/relative").ok());
  EXPECT_FALSE(StaticClientDirectory::Create({OAuthClient{"a", "", {}, "x"}}).ok());
  EXPECT_TRUE(
      StaticClientDirectory::Create({OAuthClient{"https://a.example/c.json", "", {}, "x"}}).ok())
      << "a client_id URL may take its redirect URIs from its metadata document";
  EXPECT_FALSE(StaticClientDirectory::Create({OAuthClient{"a", "", {"https://a/cb"}, ""}}).ok());
  EXPECT_FALSE(StaticClientDirectory::Create({OAuthClient{"a b", "", {"https://a/cb"}, "x"}}).ok());
}

TEST(OidcLogin, IdTokenClaimsAreCheckedStrictly) {
  const std::string ok =
      R"({"iss":"https://idp.test","aud":"custody","exp":2000,"iat":1000,"nonce":"n1","sub":"alice","email":"a@x"})";
  auto p = CheckIdTokenClaims(ok, "https://idp.test", "custody", "n1", 1500, 60);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->subject, "alice");
  EXPECT_EQ(p->email, "a@x");
  EXPECT_FALSE(CheckIdTokenClaims(ok, "https://other.test", "custody", "n1", 1500, 60).ok());
  EXPECT_FALSE(CheckIdTokenClaims(ok, "https://idp.test", "someone", "n1", 1500, 60).ok());
  EXPECT_FALSE(CheckIdTokenClaims(ok, "https://idp.test", "custody", "n2", 1500, 60).ok());
  EXPECT_FALSE(CheckIdTokenClaims(ok, "https://idp.test", "custody", "", 1500, 60).ok());
  EXPECT_FALSE(CheckIdTokenClaims(ok, "https://idp.test", "custody", "n1", 2100, 60).ok())
      << "expired";
  EXPECT_FALSE(
      CheckIdTokenClaims(
          R"({"iss":"https://idp.test","aud":["custody","x"],"exp":2000,"iat":1000,"nonce":"n1","sub":"a"})",
          "https://idp.test", "custody", "n1", 1500, 60)
          .ok())
      << "several audiences need azp";
  bool plain = false;
  OidcLoginOptions o;
  o.issuer = "http://127.0.0.1:9/";
  o.client_id = "c";
  o.redirect_uri = "https://c/cb";
  o.client_secret = "s";
  EXPECT_TRUE(ValidateOidcLoginOptions(o, &plain).ok());
  EXPECT_TRUE(plain);
  o.issuer = "http://idp.example";
  EXPECT_FALSE(ValidateOidcLoginOptions(o, &plain).ok()) << "plain http only for a loopback issuer";
}

}  // namespace
}  // namespace custody::identity

namespace custody::identity {
namespace {

// --- The IdP refusing: named to the client (RFC 6749 §4.1.2.1) and on the approver's page.

TEST_F(AuthorizationServerTest, AnIdpRefusalIsNamedToTheClientAsServerErrorOrAccessDenied) {
  auto back_from_idp = [&](const Status& refusal, const std::optional<std::string>& idp_error) {
    idp_.refuse = refusal;
    BrowserAnswer a = server_->Authorize(Request(), "");
    return server_->LoginCallback(idp_.last_state,
                                  idp_error ? std::nullopt : std::optional<std::string>("idp-code"),
                                  idp_error, Cookie(a));
  };
  // The link back to the client on a page: its RFC 6749 §4.1.2.1 redirect (HTML-escaped).
  auto back_link = [](const BrowserAnswer& page) {
    std::smatch m;
    if (!std::regex_search(page.html, m, std::regex("<a href=\"([^\"]+)\">Return to"))) {
      return std::string();
    }
    return std::regex_replace(std::string(m[1]), std::regex("&amp;"), "&");
  };
  // The IdP refuses Custody's own client authentication at the code exchange: the person gets
  // Custody's page naming the IdP's code (nothing they can fix), whose way back is the client's
  // redirect with server_error, its state and iss; nothing is issued.
  BrowserAnswer b = back_from_idp(
      UnauthenticatedError("login provider refused the code (HTTP 401, invalid_client)"),
      std::nullopt);
  ASSERT_EQ(b.status, 502) << b.location;
  EXPECT_TRUE(b.location.empty());
  EXPECT_EQ(b.error, "server_error");
  EXPECT_TRUE(b.html.starts_with("<!doctype html>"));
  EXPECT_NE(b.html.find("refused Custody&#39;s client authentication (invalid_client)"),
            std::string::npos)
      << b.html;
  std::string link = back_link(b);
  ASSERT_TRUE(link.starts_with(std::string(kRedirect) + "?")) << b.html;
  EXPECT_EQ(Param(link, "error"), "server_error") << link;
  EXPECT_NE(Param(link, "error_description").find("invalid_client"), std::string::npos) << link;
  EXPECT_EQ(Param(link, "code"), "");
  EXPECT_EQ(Param(link, "state"), "client-state");
  EXPECT_FALSE(Param(link, "iss").empty());
  // A 401 without a code is the same failure.
  b = back_from_idp(UnauthenticatedError("login provider refused the code (HTTP 401)"),
                    std::nullopt);
  EXPECT_EQ(b.status, 502);
  EXPECT_EQ(Param(back_link(b), "error"), "server_error") << b.html;
  // The IdP refuses the code itself: the sign-in failed, access_denied naming it.
  b = back_from_idp(
      UnauthenticatedError("login provider refused the code (HTTP 400, invalid_grant)"),
      std::nullopt);
  EXPECT_EQ(Param(b.location, "error"), "access_denied") << b.location;
  EXPECT_NE(Param(b.location, "error_description").find("invalid_grant"), std::string::npos);
  // An ID token that does not verify: access_denied, as before.
  b = back_from_idp(UnauthenticatedError("ID token: bad signature"), std::nullopt);
  EXPECT_EQ(Param(b.location, "error"), "access_denied") << b.location;
  idp_.refuse = OkStatus();

  // The IdP answers the sign-in with an error: the person's is access_denied, the IdP refusing
  // Custody's request is server_error; either way named, and nothing is redeemed.
  int redeemed = idp_.redeemed;
  b = back_from_idp(OkStatus(), "login_required");
  EXPECT_EQ(Param(b.location, "error"), "access_denied") << b.location;
  EXPECT_NE(Param(b.location, "error_description").find("login_required"), std::string::npos);
  b = back_from_idp(OkStatus(), "unauthorized_client");
  EXPECT_EQ(b.status, 502);
  EXPECT_NE(b.html.find("unauthorized_client"), std::string::npos) << b.html;
  EXPECT_EQ(Param(back_link(b), "error"), "server_error") << b.html;
  b = back_from_idp(OkStatus(), "temporarily_unavailable");
  EXPECT_EQ(Param(b.location, "error"), "temporarily_unavailable") << b.location;
  // What is not an error code is not repeated.
  b = back_from_idp(OkStatus(), "<script>x</script>");
  EXPECT_EQ(b.status, 502);
  EXPECT_EQ(b.html.find("<script"), std::string::npos) << b.html;
  EXPECT_EQ(b.html.find("&lt;script"), std::string::npos) << b.html;
  EXPECT_EQ(b.html.find("%3Cscript"), std::string::npos) << b.html;
  EXPECT_NE(b.html.find("an unreadable error"), std::string::npos) << b.html;
  EXPECT_EQ(Param(back_link(b), "error"), "server_error") << b.html;
  EXPECT_EQ(idp_.redeemed, redeemed);
  EXPECT_EQ(AllEvents().find("oauth.code_issue"), std::string::npos);

  // An IdP error for a sign-in Custody does not know: a page naming it, no redirect.
  BrowserAnswer page =
      server_->LoginCallback(std::string(43, 's'), std::nullopt, std::string("access_denied"), "");
  EXPECT_EQ(page.status, 400);
  EXPECT_TRUE(page.location.empty());
  EXPECT_NE(page.html.find("access_denied"), std::string::npos) << page.html;
}

TEST_F(AuthorizationServerTest, AnIdpRefusalOfAnApproverSignInIsAPageNamingIt) {
  auto back_from_idp = [&](const Status& refusal, const std::optional<std::string>& idp_error) {
    idp_.refuse = refusal;
    BrowserAnswer start = server_->StartApproverSignIn("apr-1", "");
    return server_->LoginCallback(idp_.last_state,
                                  idp_error ? std::nullopt : std::optional<std::string>("idp-code"),
                                  idp_error, Cookie(start));
  };
  BrowserAnswer b = back_from_idp(
      UnauthenticatedError("login provider refused the code (HTTP 401, invalid_client)"),
      std::nullopt);
  EXPECT_EQ(b.status, 502);
  EXPECT_EQ(b.error, "server_error");
  EXPECT_TRUE(b.location.empty());
  EXPECT_TRUE(b.html.starts_with("<!doctype html>"));
  EXPECT_NE(b.html.find("invalid_client"), std::string::npos) << b.html;
  EXPECT_NE(b.html.find("client authentication"), std::string::npos) << b.html;
  EXPECT_NE(b.html.find("href=\"/approvals/apr-1\""), std::string::npos);
  EXPECT_TRUE(ApproverCookie(b).empty());
  b = back_from_idp(OkStatus(), "access_denied");
  EXPECT_EQ(b.status, 403);
  EXPECT_NE(b.html.find("access_denied"), std::string::npos) << b.html;
  b = back_from_idp(OkStatus(), "invalid_request");
  EXPECT_EQ(b.status, 502);
  EXPECT_EQ(b.error, "server_error");
  EXPECT_NE(b.html.find("invalid_request"), std::string::npos) << b.html;
}

// --- Approver sign-out, and the session's lifetime.

TEST_F(AuthorizationServerTest, AnApproverSignsOutWithTheCsrfTokenAndTheSessionIsDropped) {
  BrowserAnswer start = server_->StartApproverSignIn("apr-1", "");
  std::string cookie = ApproverCookie(server_->LoginCallback(
      idp_.last_state, std::string("idp-code"), std::nullopt, Cookie(start)));
  auto session = server_->FindApproverSession(cookie);
  ASSERT_TRUE(session.has_value());
  EXPECT_EQ(server_->held().approver_sessions, 1u);
  // Without the page's CSRF token: refused, the session stays.
  EXPECT_EQ(server_->SignOutApprover(cookie, "").code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(server_->SignOutApprover(cookie, std::string(43, 'c')).code(),
            StatusCode::kPermissionDenied);
  EXPECT_TRUE(server_->FindApproverSession(cookie).has_value());
  // With it: the session is gone at the server, whatever the browser keeps.
  EXPECT_TRUE(server_->SignOutApprover(cookie, session->csrf).ok());
  EXPECT_FALSE(server_->FindApproverSession(cookie).has_value());
  EXPECT_EQ(server_->ApproverOfForm(cookie, session->csrf).status().code(),
            StatusCode::kUnauthenticated);
  EXPECT_EQ(server_->held().approver_sessions, 0u);
  EXPECT_EQ(server_->SignOutApprover(cookie, session->csrf).code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(server_->SignOutApprover("", "").code(), StatusCode::kUnauthenticated);
  std::string cleared = AuthorizationServer::ClearedApproverCookie();
  EXPECT_TRUE(cleared.starts_with("custody_approver=;")) << cleared;
  EXPECT_NE(cleared.find("; Path=/approvals;"), std::string::npos) << cleared;
  EXPECT_NE(cleared.find("; Max-Age=0;"), std::string::npos) << cleared;
}

// The sign-out is on the record as the sign-in is: the person, their IdP, the approval pages;
// never the cookie (nor its hash) or the CSRF token.
TEST_F(AuthorizationServerTest, AnApproverSignOutIsRecordedNamingThePersonNeverTheCookie) {
  BrowserAnswer start = server_->StartApproverSignIn("apr-1", "");
  std::string cookie = ApproverCookie(server_->LoginCallback(
      idp_.last_state, std::string("idp-code"), std::nullopt, Cookie(start)));
  auto session = server_->FindApproverSession(cookie);
  ASSERT_TRUE(session.has_value());
  auto sign_outs = [&] {
    std::vector<std::string> out;
    for (const auto& e : events_) {
      if (e.find("\"kind\":\"oauth.sign_out\"") != std::string::npos) out.push_back(e);
    }
    return out;
  };
  // A forged sign-out (no CSRF token) and a sign-out without a session record nothing.
  EXPECT_EQ(server_->SignOutApprover(cookie, "").code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(server_->SignOutApprover("", "").code(), StatusCode::kUnauthenticated);
  EXPECT_TRUE(sign_outs().empty());

  ASSERT_TRUE(server_->SignOutApprover(cookie, session->csrf).ok());
  ASSERT_EQ(sign_outs().size(), 1u) << AllEvents();
  const std::string e = sign_outs()[0];
  EXPECT_NE(e.find("\"initiator\":{\"id\":\"alice\",\"issuer\":\"https://idp.test\","
                   "\"verification\":\"verified\"}"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("\"client\":{\"id\":\"custody:approvals\"}"), std::string::npos) << e;
  const std::string token = cookie.substr(cookie.find('=') + 1);
  EXPECT_EQ(e.find(token), std::string::npos) << "the cookie";
  EXPECT_EQ(e.find(HexEncode(crypto::Sha256(token))), std::string::npos) << "its hash";
  EXPECT_EQ(e.find(session->csrf), std::string::npos) << "the CSRF token";
  // Signed out already: nothing more to end, nothing more recorded.
  EXPECT_EQ(server_->SignOutApprover(cookie, session->csrf).code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(sign_outs().size(), 1u);

  // An expiry is not recorded (the sign-in's time and approval.session_ttl_s bound the session).
  start = server_->StartApproverSignIn("apr-1", "");
  std::string expiring = ApproverCookie(server_->LoginCallback(
      idp_.last_state, std::string("idp-code"), std::nullopt, Cookie(start)));
  ASSERT_TRUE(server_->FindApproverSession(expiring).has_value());
  size_t before = events_.size();
  clock_.Advance(std::chrono::seconds(901));
  EXPECT_FALSE(server_->FindApproverSession(expiring).has_value());
  EXPECT_EQ(events_.size(), before);
}

// The ledger cannot take the event: the session is dropped all the same (ending authority never
// waits for the ledger), and the failure is reported.
TEST_F(AuthorizationServerTest, AnApproverSignOutDropsTheSessionEvenWhenItCannotBeRecorded) {
  BrowserAnswer start = server_->StartApproverSignIn("apr-1", "");
  std::string cookie = ApproverCookie(server_->LoginCallback(
      idp_.last_state, std::string("idp-code"), std::nullopt, Cookie(start)));
  auto session = server_->FindApproverSession(cookie);
  ASSERT_TRUE(session.has_value());
  ledger_down_ = UnavailableError("ledger unavailable");
  EXPECT_TRUE(server_->SignOutApprover(cookie, session->csrf).ok());
  EXPECT_FALSE(server_->FindApproverSession(cookie).has_value());
  EXPECT_EQ(server_->ApproverOfForm(cookie, session->csrf).status().code(),
            StatusCode::kUnauthenticated);
  EXPECT_EQ(server_->held().approver_sessions, 0u);
}

TEST_F(AuthorizationServerTest, TheApproverSessionLifetimeIsConfigurable) {
  AuthorizationServerOptions o;
  o.approver_session_lifetime_s = 120;
  Make(o);
  BrowserAnswer start = server_->StartApproverSignIn("apr-1", "");
  BrowserAnswer done =
      server_->LoginCallback(idp_.last_state, std::string("idp-code"), std::nullopt, Cookie(start));
  EXPECT_NE(SetCookieOf(done, kApproverCookie).find("; Max-Age=120;"), std::string::npos);
  std::string cookie = ApproverCookie(done);
  clock_.Advance(std::chrono::seconds(119));
  EXPECT_TRUE(server_->FindApproverSession(cookie).has_value());
  clock_.Advance(std::chrono::seconds(2));
  EXPECT_FALSE(server_->FindApproverSession(cookie).has_value());
}

// --- Floods of bad requests: what is held and recorded stays bounded.

TEST_F(AuthorizationServerTest, AFloodOfBadTokenRequestsIsCountedNotRecordedOneByOne) {
  AuthorizationServerOptions o;
  o.refusal_events_per_minute = 50;
  Make(o);
  auto refusals = [&] {
    size_t n = 0;
    for (const auto& e : events_) n += e.find("\"kind\":\"token.refuse\"") != std::string::npos;
    return n;
  };
  for (int i = 0; i < 5000; ++i) {
    EXPECT_EQ(Redeem("no-such-code-" + std::to_string(i)).error.error, "invalid_grant");
  }
  EXPECT_EQ(refusals(), 50u) << "the ledger does not grow with the flood";
  for (int i = 0; i < 100; ++i) EXPECT_EQ(Refresh("rt_bogus").error.error, "invalid_grant");
  EXPECT_EQ(refusals(), 50u);
  // The next minute: recorded again, the first saying how many were not.
  clock_.Advance(std::chrono::seconds(61));
  EXPECT_EQ(Redeem("late").error.error, "invalid_grant");
  ASSERT_EQ(refusals(), 51u);
  EXPECT_NE(events_.back().find("\"unrecorded\":5050"), std::string::npos) << events_.back();
  EXPECT_EQ(Redeem("later").error.error, "invalid_grant");
  EXPECT_EQ(events_.back().find("unrecorded"), std::string::npos) << events_.back();
}

TEST_F(AuthorizationServerTest, AFloodOfAuthorizationsStaysWithinTheInFlightBound) {
  AuthorizationServerOptions o;
  o.max_in_flight = 100;
  Make(o);
  size_t sent = 0, refused = 0;
  for (int i = 0; i < 2000; ++i) {
    BrowserAnswer a = server_->Authorize(Request(), "");
    if (a.location.starts_with(kIdp)) {
      ++sent;
    } else {
      EXPECT_EQ(Param(a.location, "error"), "temporarily_unavailable") << a.location;
      ++refused;
    }
  }
  EXPECT_EQ(sent, 100u);
  EXPECT_EQ(refused, 1900u);
  EXPECT_EQ(server_->held().in_flight, 100u);
  // Abandoned sign-ins expire and make room.
  clock_.Advance(std::chrono::seconds(601));
  EXPECT_TRUE(server_->Authorize(Request(), "").location.starts_with(kIdp));
  EXPECT_EQ(server_->held().in_flight, 1u);
}

// One source address (the TCP peer, its port dropped) cannot take every in-flight slot: past
// max_in_flight_per_source it gets the global bound's refusal, while other addresses still sign
// in, and a finished or expired sign-in gives its slot back.
TEST_F(AuthorizationServerTest, OneAddressAtItsBoundIsRefusedWhileAnotherStillSignsIn) {
  AuthorizationServerOptions o;
  o.max_in_flight_per_source = 3;
  Make(o);
  auto from = [&](const std::string& remote) {
    AuthorizeRequest q = Request();
    q.remote = remote;
    return server_->Authorize(q, "");
  };
  // Three sign-ins from one host, over three connections (ports).
  BrowserAnswer first = from("203.0.113.7:40001");
  ASSERT_TRUE(first.location.starts_with(kIdp)) << first.location;
  const std::string first_state = idp_.last_state;
  ASSERT_TRUE(from("203.0.113.7:40002").location.starts_with(kIdp));
  ASSERT_TRUE(from("203.0.113.7:40003").location.starts_with(kIdp));
  EXPECT_EQ(server_->held_from("203.0.113.7:1"), 3u);
  // The fourth: the clean refusal of the global bound, back to the client.
  BrowserAnswer refused = from("203.0.113.7:40004");
  EXPECT_TRUE(refused.location.starts_with(kRedirect)) << refused.location;
  EXPECT_EQ(Param(refused.location, "error"), "temporarily_unavailable") << refused.location;
  EXPECT_EQ(Param(refused.location, "state"), "client-state");
  // An approver's or the console's sign-in from that address: a 503 page.
  BrowserAnswer approver = server_->StartApproverSignIn("apr-1", "", "203.0.113.7:40005");
  EXPECT_EQ(approver.status, 503);
  EXPECT_EQ(approver.error, "temporarily_unavailable");
  EXPECT_NE(approver.html.find("from your address"), std::string::npos) << approver.html;
  EXPECT_EQ(server_
                ->StartSignIn(
                    "custody:console", [](SignedInPerson) { return BrowserAnswer{}; }, "",
                    "203.0.113.7:40006")
                .status,
            503);
  EXPECT_EQ(server_->held().in_flight, 3u) << "nothing held for the refused ones";

  // Everyone else still signs in, the whole way (an IPv6 peer too).
  BrowserAnswer other = from("198.51.100.2:50000");
  ASSERT_TRUE(other.location.starts_with(kIdp)) << other.location;
  BrowserAnswer page =
      server_->LoginCallback(idp_.last_state, std::string("idp-code"), std::nullopt, Cookie(other));
  ASSERT_EQ(page.status, 200) << page.html;
  EXPECT_EQ(server_->held_from("198.51.100.2:50001"), 1u) << "the consent is held for it";
  EXPECT_TRUE(from("2001:db8::1:443").location.starts_with(kIdp));
  EXPECT_EQ(server_->held_from("[2001:db8::1]:8"), 1u);
  EXPECT_TRUE(
      server_->StartApproverSignIn("apr-1", "", "198.51.100.3:1").location.starts_with(kIdp));

  // The full address's sign-in that ends (here: the IdP answers that the person declined)
  // frees its slot; so does one that expires.
  BrowserAnswer declined = server_->LoginCallback(first_state, std::nullopt,
                                                  std::string("access_denied"), Cookie(first));
  EXPECT_EQ(Param(declined.location, "error"), "access_denied") << declined.location;
  EXPECT_EQ(server_->held_from("203.0.113.7:1"), 2u);
  EXPECT_TRUE(from("203.0.113.7:40007").location.starts_with(kIdp));
  EXPECT_FALSE(from("203.0.113.7:40008").location.starts_with(kIdp));
  clock_.Advance(std::chrono::seconds(601));
  EXPECT_TRUE(from("203.0.113.7:40009").location.starts_with(kIdp));
  EXPECT_EQ(server_->held_from("203.0.113.7:1"), 1u);
  EXPECT_EQ(server_->held_from("198.51.100.2:1"), 0u);
}

// The default bound per address is 64; 0 turns it off (behind a reverse proxy every browser
// has the proxy's address); an unknown address ("") is not bounded per address.
TEST_F(AuthorizationServerTest, TheBoundPerAddressDefaultsTo64AndZeroTurnsItOff) {
  auto fill = [&](const std::string& remote, int n) {
    int sent = 0;
    for (int i = 0; i < n; ++i) {
      AuthorizeRequest q = Request();
      q.remote = remote;
      sent += server_->Authorize(q, "").location.starts_with(kIdp);
    }
    return sent;
  };
  EXPECT_EQ(fill("192.0.2.1:1", 100), 64);
  EXPECT_EQ(fill("", 100), 100);
  AuthorizationServerOptions o;
  o.max_in_flight_per_source = 0;
  o.max_in_flight = 150;
  Make(o);
  EXPECT_EQ(fill("192.0.2.1:1", 200), 150) << "only the global bound";
  EXPECT_EQ(AuthorizationServer::SourceAddress("10.0.0.1:8443"), "10.0.0.1");
  EXPECT_EQ(AuthorizationServer::SourceAddress("::ffff:10.0.0.1:8443"), "::ffff:10.0.0.1");
  EXPECT_EQ(AuthorizationServer::SourceAddress(""), "");
}

TEST_F(AuthorizationServerTest, BrowserStepsWaitingForTheServersThreadsAreBounded) {
  AuthorizationServerOptions o;
  o.max_queued_work = 8;
  Make(o);
  std::promise<void> gate;
  std::shared_future<void> open = gate.get_future().share();
  std::atomic<int> ran{0};
  // Every thread busy (a slow IdP): later steps queue, up to the bound.
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(server_->Post([open, &ran] {
      open.wait();
      ++ran;
    }));
  }
  for (int i = 0; i < 500 && server_->held().queued_work > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(server_->held().queued_work, 0u) << "the four threads took their steps";
  for (int i = 0; i < 8; ++i) EXPECT_TRUE(server_->Post([&ran] { ++ran; }));
  EXPECT_FALSE(server_->Post([&ran] { ++ran; })) << "past the bound: refused, not queued";
  EXPECT_EQ(server_->held().queued_work, 8u);
  EXPECT_EQ(AuthorizationServer::BusyPage().status, 503);
  gate.set_value();
  server_->Stop();
  EXPECT_EQ(ran.load(), 12);
}

// Two servers on one identity store (two nodes, or a node and its restart): the browser's part
// of a sign-in continues at either, each step once; an approver session is honoured by both and
// ended by a sign-out at either.
TEST_F(AuthorizationServerTest, TheBrowsersStepsAndApproverSessionsWorkAtAnotherServer) {
  std::unique_ptr<AuthorizationServer> other = Another();
  BrowserAnswer a = server_->Authorize(Request(), "");
  std::string cookie = Cookie(a);
  std::string state = idp_.last_state;
  BrowserAnswer page = other->LoginCallback(state, std::string("idp-code"), std::nullopt, cookie);
  ASSERT_EQ(page.status, 200) << page.html;
  EXPECT_EQ(server_->LoginCallback(state, std::string("idp-code"), std::nullopt, cookie).status,
            400)
      << "the state was used at the other server";
  std::smatch m;
  ASSERT_TRUE(std::regex_search(page.html, m, std::regex("name=\"request\" value=\"([^\"]+)\"")));
  std::string request = m[1];
  ASSERT_TRUE(std::regex_search(page.html, m, std::regex("name=\"csrf\" value=\"([^\"]+)\"")));
  std::string csrf = m[1];
  EXPECT_EQ(server_->Consent(request, "forged", "allow", cookie).status, 403);
  BrowserAnswer again = other->Consent(request, csrf, "allow", cookie);
  EXPECT_EQ(again.status, 400) << "a refused form still used the request up: " << again.html;

  a = other->Authorize(Request(), "");
  cookie = Cookie(a);
  page = other->LoginCallback(idp_.last_state, std::string("idp-code"), std::nullopt, cookie);
  ASSERT_EQ(page.status, 200) << page.html;
  ASSERT_TRUE(std::regex_search(page.html, m, std::regex("name=\"request\" value=\"([^\"]+)\"")));
  request = m[1];
  ASSERT_TRUE(std::regex_search(page.html, m, std::regex("name=\"csrf\" value=\"([^\"]+)\"")));
  csrf = m[1];
  BrowserAnswer back = server_->Consent(request, csrf, "allow", cookie);
  ASSERT_EQ(back.status, 302) << back.html;
  EXPECT_EQ(other->Consent(request, csrf, "allow", cookie).status, 400)
      << "the form was answered at the other server";
  auto t = Redeem(Param(back.location, "code"));
  ASSERT_TRUE(t.ok()) << t.error.description;
  EXPECT_EQ(server_->held().in_flight, 0u);
  EXPECT_EQ(other->held().in_flight, 0u) << "a replay drops what a server held";

  BrowserAnswer start = server_->StartApproverSignIn("0198c3a2-aaaa", "");
  BrowserAnswer in =
      other->LoginCallback(idp_.last_state, std::string("idp-code"), std::nullopt, Cookie(start));
  ASSERT_EQ(in.status, 302) << in.html;
  std::string approver;
  for (const std::string& c : in.set_cookies) {
    if (c.starts_with("custody_approver=")) approver = c.substr(0, c.find(';'));
  }
  ASSERT_FALSE(approver.empty());
  auto session = server_->FindApproverSession(approver);
  ASSERT_TRUE(session.has_value()) << "opened at the other server";
  EXPECT_EQ(session->person.subject, "alice");
  ASSERT_TRUE(server_->ApproverOfForm(approver, session->csrf).ok());
  ASSERT_TRUE(server_->SignOutApprover(approver, session->csrf).ok());
  EXPECT_FALSE(other->FindApproverSession(approver).has_value()) << "ended everywhere";
  EXPECT_EQ(other->held().approver_sessions, 0u);
}

}  // namespace
}  // namespace custody::identity

// The authorization code flow on two nodes of one deployment: two AuthorizationServers, each
// with its own TokenService over its own PgIdentityStore (own connections), on one PostgreSQL
// database. A code issued at one node is redeemed at the other (the client's token request is
// server to server: no browser stickiness pins it to the node that issued the code), and a
// reuse at the first node is detected and revokes what the redemption at the second issued.
// Runs against the throwaway cluster of store/testing/pg_cluster.h (the CTest fixture
// `postgres`).
#include <gtest/gtest.h>

#include <atomic>
#include <regex>
#include <thread>
#include <vector>

#include "common/encoding.h"
#include "common/error_reporter.h"
#include "common/logger.h"
#include "crypto/sha256.h"
#include "identity/authorization_server.h"
#include "store/postgres/pg_identity_store.h"
#include "store/testing/pg_cluster.h"

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
    if (code != "idp-code" || PkceS256(verifier) != last_challenge || nonce != last_nonce) {
      return UnauthenticatedError("bad sign-in");
    }
    return SignedInPerson{"alice", kIdp, "Alice", "alice@example.com", {"Finance Team"}};
  }
  std::string issuer() const override { return kIdp; }
  std::string last_state, last_nonce, last_challenge;
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

// The desktop client's authorization request, as every test here makes it.
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

class AuthorizationServerPgTest : public ::testing::Test {
 protected:
  struct Node {
    std::unique_ptr<store::PgIdentityStore> store;
    std::unique_ptr<TokenService> tokens;
    std::unique_ptr<AuthorizationServer> server;
  };

  void SetUp() override {
    auto cluster = store::testing::PgCluster::Shared();
    ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
    auto url = (*cluster)->NewDatabase();
    ASSERT_TRUE(url.ok()) << url.status().ToString();
    auto d = StaticClientDirectory::Create(
        {OAuthClient{"desktop-app", "Desktop App", {kRedirect}, "assistant"}});
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    clients_ = std::make_unique<StaticClientDirectory>(std::move(*d));
    for (int i = 0; i < 2; ++i) {
      Node n;
      auto s = store::PgIdentityStore::Open(*url);
      ASSERT_TRUE(s.ok()) << s.status().ToString();
      n.store = std::move(*s);
      TokenServiceOptions o;
      o.trust_domain = "custody.test";
      o.issuer = kIssuer;
      auto t = TokenService::Create(*n.store, clock_, random_, errors_, Sink(), o);
      ASSERT_TRUE(t.ok()) << t.status().ToString();
      n.tokens = std::move(*t);
      if (i == 0) {
        Agent a;
        a.name = "assistant";
        a.environment = Environment::kDev;
        a.grants = {"fake/*"};
        ASSERT_TRUE(n.tokens->RegisterAgent(a, true, "test").ok());
      }
      AuthorizationServerOptions ao;
      ao.issuer = kIssuer;
      ao.resource = kResource;
      n.server = std::make_unique<AuthorizationServer>(*n.tokens, *n.store, *clients_, &idp_,
                                                       clock_, random_, errors_, Sink(), ao);
      nodes_.push_back(std::move(n));
    }
  }
  void TearDown() override {
    for (Node& n : nodes_) n.server.reset();
  }
  IdentityEventSink Sink() {
    return [this](const std::string& e) {
      std::lock_guard<std::mutex> lock(events_mu_);
      events_ += e + "\n";
      return OkStatus();
    };
  }
  // Authorize, sign in and consent at `node` (the browser's part, pinned to one node): the code.
  std::string CodeAt(int node) {
    AuthorizationServer& s = *nodes_[node].server;
    BrowserAnswer a = s.Authorize(Request(), "");
    std::string cookie = Cookie(a);
    EXPECT_FALSE(cookie.empty()) << a.html;
    BrowserAnswer page =
        s.LoginCallback(idp_.last_state, std::string("idp-code"), std::nullopt, cookie);
    if (page.status == 302) return Param(page.location, "code");  // consent remembered
    std::smatch m;
    std::regex_search(page.html, m, std::regex("name=\"request\" value=\"([^\"]+)\""));
    std::string request = m[1];
    std::regex_search(page.html, m, std::regex("name=\"csrf\" value=\"([^\"]+)\""));
    std::string csrf = m[1];
    return Param(s.Consent(request, csrf, "allow", cookie).location, "code");
  }
  OAuthResult<CodeTokenAnswer> RedeemAt(int node, const std::string& code) {
    CodeTokenRequest t;
    t.grant_type = "authorization_code";
    t.client_id = "desktop-app";
    t.code = code;
    t.redirect_uri = kRedirect;
    t.code_verifier = kVerifier;
    t.resource = kResource;
    return nodes_[node].server->Token(t);
  }
  OAuthResult<CodeTokenAnswer> RefreshAt(int node, const std::string& rt) {
    CodeTokenRequest t;
    t.grant_type = "refresh_token";
    t.client_id = "desktop-app";
    t.refresh_token = rt;
    return nodes_[node].server->Token(t);
  }
  bool Revoked(const std::string& sid) {
    auto s = nodes_[0].store->GetSession(sid);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() && s->revoked;
  }

  FakeClock clock_;
  SystemRandom random_;
  NullLogger log_;
  ErrorReporter errors_{log_};
  FakeIdp idp_;
  std::unique_ptr<StaticClientDirectory> clients_;
  std::mutex events_mu_;
  std::string events_;
  std::vector<Node> nodes_;
};

TEST_F(AuthorizationServerPgTest, ACodeIssuedAtOneNodeIsRedeemedAtAnother) {
  std::string code = CodeAt(0);
  ASSERT_FALSE(code.empty());
  auto t = RedeemAt(1, code);
  ASSERT_TRUE(t.ok()) << t.error.error << ": " << t.error.description;
  EXPECT_TRUE(nodes_[1].tokens->VerifyAccessToken(t.value->token.access_token, kResource).ok());
  EXPECT_TRUE(nodes_[0].tokens->VerifyAccessToken(t.value->token.access_token, kResource).ok())
      << "the session is in the shared store";
  auto refreshed = RefreshAt(0, t.value->refresh_token);
  ASSERT_TRUE(refreshed.ok()) << refreshed.error.description;
  EXPECT_FALSE(Revoked(refreshed.value->token.sid));
}

TEST_F(AuthorizationServerPgTest, AReuseAtTheIssuingNodeRevokesWhatTheOtherNodeIssued) {
  std::string code = CodeAt(0);
  auto t = RedeemAt(1, code);
  ASSERT_TRUE(t.ok()) << t.error.description;
  EXPECT_FALSE(Revoked(t.value->token.sid));
  auto again = RedeemAt(0, code);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error.error, "invalid_grant");
  EXPECT_NE(again.error.description.find("already used"), std::string::npos)
      << again.error.description;
  EXPECT_TRUE(Revoked(t.value->token.sid)) << "the session the other node issued is revoked";
  EXPECT_EQ(RefreshAt(1, t.value->refresh_token).error.error, "invalid_grant")
      << "and its refresh token family";
  std::lock_guard<std::mutex> lock(events_mu_);
  EXPECT_NE(events_.find("oauth.reuse"), std::string::npos);
}

// The same code presented at both nodes at once: exactly one redemption issues tokens that stay
// live; whatever the other issued (if it raced past the redemption) is revoked.
TEST_F(AuthorizationServerPgTest, RacingRedemptionsAtTwoNodesLeaveAtMostOneLiveSession) {
  for (int round = 0; round < 5; ++round) {
    std::string code = CodeAt(round % 2);
    std::atomic<bool> go{false};
    OAuthResult<CodeTokenAnswer> results[2];
    std::vector<std::thread> threads;
    for (int n = 0; n < 2; ++n) {
      threads.emplace_back([&, n] {
        while (!go.load()) std::this_thread::yield();
        results[n] = RedeemAt(n, code);
      });
    }
    go = true;
    for (auto& t : threads) t.join();
    int ok = 0, live = 0;
    for (const auto& r : results) {
      if (!r.ok()) continue;
      ++ok;
      if (!Revoked(r.value->token.sid)) ++live;
    }
    EXPECT_LE(ok, 1) << "round " << round;
    EXPECT_LE(live, 1) << "round " << round;
  }
}

// The consent page's form fields.
struct Form {
  std::string request, csrf;
};
Form FormOf(const BrowserAnswer& page) {
  Form f;
  std::smatch m;
  if (std::regex_search(page.html, m, std::regex("name=\"request\" value=\"([^\"]+)\""))) {
    f.request = m[1];
  }
  if (std::regex_search(page.html, m, std::regex("name=\"csrf\" value=\"([^\"]+)\""))) {
    f.csrf = m[1];
  }
  return f;
}

std::string ApproverCookie(const BrowserAnswer& a) {
  for (const std::string& c : a.set_cookies) {
    if (c.starts_with("custody_approver=")) return c.substr(0, c.find(';'));
  }
  return "";
}

// Behind a plain load balancer: /oauth2/authorize at one node, the IdP's callback at the other,
// the consent form at either, the code redeemed at either.
TEST_F(AuthorizationServerPgTest, ASignInStartedAtOneNodeIsContinuedAtAnother) {
  for (int consent_at : {0, 1}) {
    BrowserAnswer a = nodes_[0].server->Authorize(Request(), "");
    std::string cookie = Cookie(a);
    ASSERT_FALSE(cookie.empty()) << a.html;
    BrowserAnswer page = nodes_[1].server->LoginCallback(idp_.last_state, std::string("idp-code"),
                                                         std::nullopt, cookie);
    ASSERT_EQ(page.status, 200) << page.error << page.html;
    Form f = FormOf(page);
    ASSERT_FALSE(f.request.empty());
    BrowserAnswer back = nodes_[consent_at].server->Consent(f.request, f.csrf, "deny", cookie);
    EXPECT_EQ(back.error, "access_denied") << "consent at node " << consent_at << ": " << back.html;
    EXPECT_EQ(Param(back.location, "state"), "client-state");
  }
  // Allowed at the other node (the consent is remembered from here on).
  BrowserAnswer a = nodes_[1].server->Authorize(Request(), "");
  std::string cookie = Cookie(a);
  BrowserAnswer page = nodes_[0].server->LoginCallback(idp_.last_state, std::string("idp-code"),
                                                       std::nullopt, cookie);
  ASSERT_EQ(page.status, 200) << page.html;
  Form f = FormOf(page);
  BrowserAnswer back = nodes_[1].server->Consent(f.request, f.csrf, "allow", cookie);
  ASSERT_EQ(back.status, 302) << back.html;
  std::string code = Param(back.location, "code");
  ASSERT_FALSE(code.empty()) << back.location;
  auto t = RedeemAt(0, code);
  ASSERT_TRUE(t.ok()) << t.error.error << ": " << t.error.description;
  // The browser binding still holds across nodes.
  a = nodes_[0].server->Authorize(Request(), "");
  page = nodes_[1].server->LoginCallback(idp_.last_state, std::string("idp-code"), std::nullopt,
                                         "custody_authz=" + std::string(43, 'x'));
  EXPECT_EQ(page.status, 400);
  EXPECT_NE(page.html.find("another browser"), std::string::npos) << page.html;
}

// A state (and a consent form) is single use across the nodes, whichever node saw it first.
TEST_F(AuthorizationServerPgTest, AStepTakenAtOneNodeIsRefusedWhenReplayedAtAnother) {
  for (int first : {0, 1}) {
    BrowserAnswer a = nodes_[0].server->Authorize(Request(), "");
    std::string cookie = Cookie(a);
    std::string state = idp_.last_state;
    BrowserAnswer page =
        nodes_[first].server->LoginCallback(state, std::string("idp-code"), std::nullopt, cookie);
    ASSERT_EQ(page.status, 200) << "first at node " << first << ": " << page.html;
    BrowserAnswer replay = nodes_[1 - first].server->LoginCallback(state, std::string("idp-code"),
                                                                   std::nullopt, cookie);
    EXPECT_EQ(replay.status, 400) << "state replayed at node " << 1 - first;
    EXPECT_NE(replay.html.find("unknown or has expired"), std::string::npos) << replay.html;
    Form f = FormOf(page);
    BrowserAnswer decided = nodes_[1 - first].server->Consent(f.request, f.csrf, "deny", cookie);
    EXPECT_EQ(decided.error, "access_denied") << decided.html;
    BrowserAnswer again = nodes_[first].server->Consent(f.request, f.csrf, "allow", cookie);
    EXPECT_EQ(again.status, 400) << "consent replayed at node " << first << ": " << again.html;
    EXPECT_TRUE(again.location.empty());
  }
}

// An approver signs in at one node; the other honours the session, and a sign-out at either
// ends it at both.
TEST_F(AuthorizationServerPgTest, AnApproverSessionOpenedAtOneNodeIsHonouredAtAnother) {
  BrowserAnswer start = nodes_[0].server->StartApproverSignIn("0198c3a2-aaaa", "");
  std::string browser = Cookie(start);
  ASSERT_FALSE(browser.empty()) << start.html;
  BrowserAnswer in = nodes_[1].server->LoginCallback(idp_.last_state, std::string("idp-code"),
                                                     std::nullopt, browser);
  ASSERT_EQ(in.status, 302) << in.html;
  EXPECT_EQ(in.location, std::string(kIssuer) + "/approvals/0198c3a2-aaaa");
  std::string approver = ApproverCookie(in);
  ASSERT_FALSE(approver.empty());
  auto at0 = nodes_[0].server->FindApproverSession(approver);
  ASSERT_TRUE(at0.has_value()) << "opened at node 1, honoured at node 0";
  EXPECT_EQ(at0->person.subject, "alice");
  EXPECT_EQ(at0->person.groups, std::vector<std::string>{"Finance Team"});
  auto at1 = nodes_[1].server->FindApproverSession(approver);
  ASSERT_TRUE(at1.has_value());
  EXPECT_EQ(at0->csrf, at1->csrf) << "one session, one form token";
  auto who = nodes_[0].server->ApproverOfForm(approver, at1->csrf);
  ASSERT_TRUE(who.ok()) << who.status().ToString();
  EXPECT_EQ(who->email, "alice@example.com");
  EXPECT_EQ(nodes_[0].server->ApproverOfForm(approver, "forged").status().code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(nodes_[0].server->held().approver_sessions, 0u) << "bounds count what a node opened";
  EXPECT_EQ(nodes_[1].server->held().approver_sessions, 1u);
  // Signed out at node 0: node 1, which opened it, no longer honours it either.
  Status out = nodes_[0].server->SignOutApprover(approver, at0->csrf);
  ASSERT_TRUE(out.ok()) << out.ToString();
  EXPECT_FALSE(nodes_[1].server->FindApproverSession(approver).has_value());
  EXPECT_FALSE(nodes_[0].server->FindApproverSession(approver).has_value());
  EXPECT_EQ(nodes_[1].server->SignOutApprover(approver, at0->csrf).code(),
            StatusCode::kUnauthenticated);
  // And the other way round.
  start = nodes_[1].server->StartApproverSignIn("0198c3a2-bbbb", "");
  in = nodes_[1].server->LoginCallback(idp_.last_state, std::string("idp-code"), std::nullopt,
                                       Cookie(start));
  approver = ApproverCookie(in);
  ASSERT_FALSE(approver.empty()) << in.html;
  auto session = nodes_[0].server->FindApproverSession(approver);
  ASSERT_TRUE(session.has_value());
  ASSERT_TRUE(nodes_[1].server->SignOutApprover(approver, session->csrf).ok());
  EXPECT_FALSE(nodes_[0].server->FindApproverSession(approver).has_value());
}

// Expired entries are refused at every node, and purged from the store; the store keeps a hash
// of the state, never the state.
TEST_F(AuthorizationServerPgTest, AnExpiredSignInIsRefusedAndPurged) {
  BrowserAnswer a = nodes_[0].server->Authorize(Request(), "");
  std::string cookie = Cookie(a);
  std::string state = idp_.last_state;
  std::string key = HexEncode(crypto::Sha256(state));
  EXPECT_TRUE(nodes_[1].store->GetBrowserState("login", key, 0).ok());
  EXPECT_EQ(nodes_[1].store->GetBrowserState("login", state, 0).status().code(),
            StatusCode::kNotFound);
  clock_.Advance(std::chrono::seconds(601));
  nodes_[1].server->Authorize(Request(), "");  // a sign-in's start purges what expired
  EXPECT_EQ(nodes_[1].store->GetBrowserState("login", key, 0).status().code(),
            StatusCode::kNotFound)
      << "purged";
  for (int n : {1, 0}) {
    BrowserAnswer page =
        nodes_[n].server->LoginCallback(state, std::string("idp-code"), std::nullopt, cookie);
    EXPECT_EQ(page.status, 400) << "node " << n << ": " << page.html;
  }
}

}  // namespace
}  // namespace custody::identity

// The console's server side through a real `custody serve` Service on port 0: its embedded files
// and their headers, sign-in (cookie + CSRF), what a console session may do and when it ends, and
// the ledger event stream.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <filesystem>
#include <thread>

#include "api/auth.h"
#include "api/console_assets.h"
#include "api/console_routes.h"
#include "api/console_sessions.h"
#include "api/service.h"
#include "common/clock.h"
#include "common/logger.h"
#include "common/random.h"
#include "http/client.h"
#include "http/testing/self_signed.h"
#include "store/stores.h"

namespace custody::api {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

class ConsoleTest : public ::testing::Test {
 protected:
  void Open(bool console_enabled = true, bool tls = false) {
    static int n = 0;
    dir_ = fs::temp_directory_path() /
           ("custody-console-test-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
    fs::remove_all(dir_);
    Config c;
    c.data_dir = dir_.string();
    c.listen = "127.0.0.1:0";
    c.worker_threads = 2;
    c.identity.issuer = "https://custody.example";
    c.console.enabled = console_enabled;
    if (tls) {
      fs::create_directories(dir_);
      fs::permissions(dir_, fs::perms::owner_all, fs::perm_options::replace);
      c.tls.cert = (dir_ / "cert.pem").string();
      c.tls.key = (dir_ / "key.pem").string();
      ASSERT_TRUE(http::testing::WriteSelfSignedCertificate(c.tls.cert, c.tls.key, "127.0.0.1",
                                                            "IP:127.0.0.1"));
      tls_ = true;
    }
    auto s = Service::Open(c, {.quickstart = true}, clock_, random_, log_);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    service_ = std::move(*s);
    ASSERT_TRUE(service_->Start().ok());
    admin_ = service_->bootstrap_token()->token;
    auto tokens = store::OpenAdminTokenStore(c.Storage());
    ASSERT_TRUE(tokens.ok()) << tokens.status().ToString();
    tokens_ = std::move(*tokens);
  }
  void SetUp() override { Open(); }
  void TearDown() override {
    service_.reset();
    tokens_.reset();
    fs::remove_all(dir_);
  }

  std::string Issue(std::string_view role) {
    auto t = IssueAdminToken(*tokens_, role, "person", clock_, random_);
    EXPECT_TRUE(t.ok()) << t.status().ToString();
    return t.ok() ? t->token : "";
  }

  http::ClientResponse Send(http::ClientRequest r) {
    http::ClientOptions o;
    o.tls = tls_;
    o.verify_peer = false;  // a self-signed certificate of this test's
    auto resp = http::BlockingHttpClient("127.0.0.1", service_->port(), o).Send(std::move(r));
    EXPECT_TRUE(resp.ok()) << resp.status().ToString();
    return resp.ok() ? *resp : http::ClientResponse{};
  }
  http::ClientRequest Req(std::string method, std::string target, std::string body = "") {
    http::ClientRequest r;
    r.method = std::move(method);
    r.target = std::move(target);
    r.body = std::move(body);
    if (!r.body.empty()) r.headers.Set("content-type", "application/json");
    return r;
  }

  struct Session {
    std::string cookie;  // "custody_console=…"
    std::string csrf;
    std::string set_cookie;
  };
  Session SignIn(const std::string& token) {
    auto r = Send(Req("POST", "/v1/console/session", "{\"token\":\"" + token + "\"}"));
    EXPECT_EQ(r.status, 200) << r.body;
    Session s;
    s.set_cookie = std::string(r.headers.Get("set-cookie").value_or(""));
    s.cookie = s.set_cookie.substr(0, s.set_cookie.find(';'));
    if (r.status == 200) s.csrf = json::parse(r.body).at("csrf").as_string().c_str();
    return s;
  }
  // A request carrying the session's cookie and, when `csrf` is set, a CSRF header.
  http::ClientRequest With(const Session& s, std::optional<std::string> csrf,
                           http::ClientRequest r) {
    r.headers.Set("cookie", "other=1; " + s.cookie);
    if (csrf) r.headers.Set("x-custody-csrf", *csrf);
    return r;
  }
  static std::string Code(const http::ClientResponse& r) {
    auto v = json::parse(r.body);
    return v.as_object().contains("error") ? std::string(v.at("error").at("code").as_string()) : "";
  }
  static std::string Message(const http::ClientResponse& r) {
    return std::string(json::parse(r.body).at("error").at("message").as_string());
  }
  // A route that needs a reader (404: authenticated, no such event) and one that needs an admin.
  http::ClientRequest ReaderRoute() {
    return Req("GET", "/v1/trace/0198c3a2-0000-7000-8000-000000000010");
  }
  http::ClientRequest AdminRoute() {
    return Req("POST", "/v1/ledger/entries", "{\"kind\":\"test.console\",\"n\":1}");
  }

  FakeClock clock_;
  SystemRandom random_;
  NullLogger log_;
  fs::path dir_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<store::AdminTokenStore> tokens_;
  std::string admin_;
  bool tls_ = false;
};

TEST_F(ConsoleTest, ServesTheEmbeddedConsoleWithAStrictPolicy) {
  ASSERT_FALSE(ConsoleAssets().empty()) << "the console was not embedded";
  auto index = Send(Req("GET", "/console/"));
  ASSERT_EQ(index.status, 200) << index.body;
  EXPECT_EQ(index.headers.Get("content-type").value_or(""), "text/html; charset=utf-8");
  EXPECT_EQ(index.headers.Get("content-security-policy").value_or(""), kConsoleCsp);
  EXPECT_EQ(index.headers.Get("cache-control").value_or(""), "no-store");
  EXPECT_EQ(index.headers.Get("x-frame-options").value_or(""), "DENY");
  EXPECT_EQ(index.headers.Get("x-content-type-options").value_or(""), "nosniff");
  // No inline script: every <script> names a file of the console.
  size_t at = index.body.find("<script");
  ASSERT_NE(at, std::string::npos);
  for (; at != std::string::npos; at = index.body.find("<script", at + 1)) {
    std::string tag = index.body.substr(at, index.body.find('>', at) - at);
    EXPECT_NE(tag.find("src=\"/console/assets/"), std::string::npos) << tag;
    EXPECT_EQ(index.body.substr(index.body.find('>', at) + 1, 9), "</script>") << tag;
  }
  // Each asset index.html names is served, cached for good (its name is its content's hash).
  size_t src = index.body.find("/console/assets/");
  std::string asset = index.body.substr(src, index.body.find('"', src) - src);
  auto js = Send(Req("GET", asset));
  EXPECT_EQ(js.status, 200) << asset;
  EXPECT_EQ(js.headers.Get("content-type").value_or(""), "text/javascript; charset=utf-8");
  EXPECT_EQ(js.headers.Get("cache-control").value_or(""), "public, max-age=31536000, immutable");
  EXPECT_EQ(js.headers.Get("content-security-policy").value_or(""), kConsoleCsp);

  EXPECT_EQ(Send(Req("GET", "/console/assets/nope.js")).status, 404);
  EXPECT_EQ(Send(Req("GET", "/console/../v1/ledger/key")).status, 404);
  auto bare = Send(Req("GET", "/console"));
  EXPECT_EQ(bare.status, 301);
  EXPECT_EQ(bare.headers.Get("location").value_or(""), "/console/");
}

TEST_F(ConsoleTest, DisabledConsoleHasNoRoutes) {
  service_.reset();
  Open(/*console_enabled=*/false);
  EXPECT_EQ(Send(Req("GET", "/console/")).status, 404);
  EXPECT_EQ(Send(Req("POST", "/v1/console/session", "{\"token\":\"" + admin_ + "\"}")).status, 404);
}

TEST_F(ConsoleTest, SignInSetsAStrictHttpOnlyCookieAndReturnsACsrfToken) {
  auto r = Send(Req("POST", "/v1/console/session", "{\"token\":\"" + admin_ + "\"}"));
  ASSERT_EQ(r.status, 200) << r.body;
  std::string cookie(r.headers.Get("set-cookie").value_or(""));
  EXPECT_TRUE(cookie.starts_with("custody_console=")) << cookie;
  EXPECT_NE(cookie.find("; HttpOnly"), std::string::npos) << cookie;
  EXPECT_NE(cookie.find("; SameSite=Strict"), std::string::npos) << cookie;
  EXPECT_NE(cookie.find("; Path=/"), std::string::npos) << cookie;
  EXPECT_NE(cookie.find("; Max-Age=28800"), std::string::npos) << cookie;
  EXPECT_EQ(cookie.find("Secure"), std::string::npos) << "no TLS here: " << cookie;
  EXPECT_EQ(r.headers.Get("cache-control").value_or(""), "no-store");
  auto body = json::parse(r.body).as_object();
  EXPECT_EQ(body.at("role").as_string(), "admin");
  EXPECT_EQ(body.at("csrf").as_string().size(), 43u);
  EXPECT_TRUE(body.contains("expires_at"));
  // The token itself is never echoed, and the cookie is not the token.
  EXPECT_EQ(r.body.find(admin_), std::string::npos);
  EXPECT_EQ(cookie.find(admin_), std::string::npos);
}

TEST_F(ConsoleTest, CookieIsSecureUnderTls) {
  service_.reset();
  Open(/*console_enabled=*/true, /*tls=*/true);
  Session s = SignIn(admin_);
  EXPECT_NE(s.set_cookie.find("; Secure"), std::string::npos) << s.set_cookie;
  EXPECT_EQ(Send(With(s, s.csrf, AdminRoute())).status, 201);
}

TEST_F(ConsoleTest, SignInRefusals) {
  auto bad = Send(Req("POST", "/v1/console/session", "{\"token\":\"cst_nope\"}"));
  EXPECT_EQ(bad.status, 401);
  EXPECT_EQ(bad.headers.Get("set-cookie"), std::nullopt);
  EXPECT_EQ(Send(Req("POST", "/v1/console/session", "{\"tok\":1}")).status, 400);
  EXPECT_EQ(Send(Req("POST", "/v1/console/session", "not json")).status, 400);
  auto ingest =
      Send(Req("POST", "/v1/console/session", "{\"token\":\"" + Issue(kRoleIngest) + "\"}"));
  EXPECT_EQ(ingest.status, 403) << ingest.body;
  http::ClientRequest form = Req("POST", "/v1/console/session", "token=x");
  form.headers.Set("content-type", "application/x-www-form-urlencoded");
  EXPECT_EQ(Send(form).status, 415) << "a cross-site form cannot sign in";
}

// An approver signs in to decide approvals from the console and can do no more than its token:
// the approvals queue yes, a reader's route (the ledger) and an admin's no.
TEST_F(ConsoleTest, ApproverSignsInWithItsTokensPowersOnly) {
  Session s = SignIn(Issue(kRoleApprover));
  ASSERT_FALSE(s.csrf.empty());
  http::ClientRequest queue = Req("GET", "/v1/approvals", "");
  EXPECT_EQ(Send(With(s, s.csrf, queue)).status, 200);
  EXPECT_EQ(Send(With(s, s.csrf, ReaderRoute())).status, 403);
  EXPECT_EQ(Send(With(s, s.csrf, AdminRoute())).status, 403);
}

// The server-side verification behind the console's progress bar (POST /v1/ledger/verify, then
// polls): it reaches the checkpoint's size, and a leaf whose stored bytes were changed behind the
// ledger's back fails it.
TEST_F(ConsoleTest, LedgerVerificationReachesTheCheckpointAndCatchesAChangedLeaf) {
  auto bearer = [&](http::ClientRequest r) {
    r.headers.Set("authorization", "Bearer " + admin_);
    return Send(std::move(r));
  };
  std::string events = "[";
  for (int i = 0; i < 600; ++i)
    events += (i ? "," : "") + ("{\"kind\":\"test.v\",\"n\":" + std::to_string(i) + "}");
  ASSERT_EQ(bearer(Req("POST", "/v1/ledger/entries", events + "]")).status, 201);
  auto verify = [&]() {
    auto started = bearer(Req("POST", "/v1/ledger/verify"));
    EXPECT_EQ(started.status, 202) << started.body;
    json::object job = json::parse(started.body).as_object();
    EXPECT_GE(job.at("size").as_int64(), 600);
    int polls = 0;
    while (job.at("state").as_string() == "running" && polls++ < 10000) {
      auto r = bearer(Req("GET", "/v1/ledger/verify/" + std::string(job.at("id").as_string())));
      EXPECT_EQ(r.status, 200) << r.body;
      job = json::parse(r.body).as_object();
    }
    return job;
  };
  json::object ok = verify();
  EXPECT_EQ(ok.at("state").as_string(), "verified") << json::serialize(ok);
  EXPECT_EQ(ok.at("verified").as_int64(), ok.at("size").as_int64());

  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ / "ledger.db").c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  int rc = sqlite3_exec(
      db,
      "UPDATE leaves SET data = CAST(replace(CAST(data AS TEXT), '\"n\":7}', '\"n\":8}') "
      "AS BLOB) WHERE CAST(data AS TEXT) LIKE '%\"n\":7}'",
      nullptr, nullptr, &err);
  EXPECT_EQ(rc, SQLITE_OK) << (err ? err : "");
  EXPECT_EQ(sqlite3_changes(db), 1);
  sqlite3_free(err);
  sqlite3_close(db);
  json::object bad = verify();
  ASSERT_EQ(bad.at("state").as_string(), "failed") << json::serialize(bad);
  EXPECT_NE(std::string(bad.at("problem").as_string()).find("do not hash to the stored leaf hash"),
            std::string::npos)
      << json::serialize(bad);

  EXPECT_EQ(bearer(Req("GET", "/v1/ledger/verify/999")).status, 404);
  EXPECT_EQ(bearer(Req("GET", "/v1/ledger/verify/x")).status, 400);
}

TEST_F(ConsoleTest, SignInMethodsListTheTokenOnlyWithoutLogin) {
  auto r = Send(Req("GET", "/v1/console/methods", ""));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, "{\"methods\":[{\"type\":\"token\",\"available\":true}]}");
}

TEST_F(ConsoleTest, CookieWithItsCsrfTokenActsAsTheToken) {
  Session s = SignIn(admin_);
  EXPECT_EQ(Send(With(s, s.csrf, ReaderRoute())).status, 404);  // authenticated; no such event
  auto appended = Send(With(s, s.csrf, AdminRoute()));
  EXPECT_EQ(appended.status, 201) << appended.body;
  auto metrics = Send(Req("GET", "/metrics"));
  EXPECT_NE(metrics.body.find("\ncustody_console_sessions 1\n"), std::string::npos) << metrics.body;
  EXPECT_NE(metrics.body.find("\ncustody_ledger_streams 0\n"), std::string::npos);
}

TEST_F(ConsoleTest, CookieWithoutCsrfIsRefused) {
  Session s = SignIn(admin_);
  auto r = Send(With(s, std::nullopt, ReaderRoute()));
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_EQ(Code(r), "permission_denied");
  EXPECT_EQ(Send(With(s, std::nullopt, AdminRoute())).status, 403);
  EXPECT_EQ(Send(With(s, "", AdminRoute())).status, 403);
}

TEST_F(ConsoleTest, CookieWithAWrongCsrfIsRefused) {
  Session s = SignIn(admin_);
  Session other = SignIn(admin_);
  ASSERT_NE(s.csrf, other.csrf);
  EXPECT_EQ(Send(With(s, other.csrf, ReaderRoute())).status, 403);
  EXPECT_EQ(Send(With(s, s.csrf + "x", AdminRoute())).status, 403);
  EXPECT_EQ(Send(With(s, s.csrf.substr(1), AdminRoute())).status, 403);
  // An unknown session is not authenticated at all.
  Session forged{"custody_console=" + std::string(43, 'A'), s.csrf, ""};
  EXPECT_EQ(Send(With(forged, s.csrf, ReaderRoute())).status, 401);
}

TEST_F(ConsoleTest, ReaderCookieCannotCallAdminRoutes) {
  Session s = SignIn(Issue(kRoleReader));
  EXPECT_EQ(Send(With(s, s.csrf, ReaderRoute())).status, 404);
  auto r = Send(With(s, s.csrf, AdminRoute()));
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_EQ(Message(r), "role \"reader\" may not call this route");
}

TEST_F(ConsoleTest, RevokingTheTokenEndsItsSessions) {
  std::string token = Issue(kRoleAdmin);
  Session s = SignIn(token);
  ASSERT_EQ(Send(With(s, s.csrf, AdminRoute())).status, 201);
  auto id = TokenId(token);
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(tokens_->Revoke(*id, UnixMillis(clock_.Now())).ok());
  auto r = Send(With(s, s.csrf, AdminRoute()));
  EXPECT_EQ(r.status, 401) << r.body;
  EXPECT_EQ(Message(r), "token revoked");
  // The session is gone, not just refused once.
  auto again = Send(With(s, s.csrf, ReaderRoute()));
  EXPECT_EQ(again.status, 401);
  EXPECT_EQ(Message(again), "console session unknown or ended");
}

TEST_F(ConsoleTest, SessionsExpireAfterEightHours) {
  Session s = SignIn(admin_);
  clock_.Advance(std::chrono::hours(8) - std::chrono::seconds(1));
  EXPECT_EQ(Send(With(s, s.csrf, ReaderRoute())).status, 404);
  clock_.Advance(std::chrono::seconds(1));
  auto r = Send(With(s, s.csrf, ReaderRoute()));
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(Message(r), "console session expired");
}

TEST_F(ConsoleTest, LogoutEndsTheSessionAndClearsTheCookie) {
  Session s = SignIn(admin_);
  EXPECT_EQ(Send(With(s, std::nullopt, Req("POST", "/v1/console/session/logout"))).status, 403)
      << "logout needs the CSRF header too";
  auto out = Send(With(s, s.csrf, Req("POST", "/v1/console/session/logout")));
  EXPECT_EQ(out.status, 200) << out.body;
  std::string cleared(out.headers.Get("set-cookie").value_or(""));
  EXPECT_TRUE(cleared.starts_with("custody_console=;")) << cleared;
  EXPECT_NE(cleared.find("Max-Age=0"), std::string::npos) << cleared;
  EXPECT_EQ(Send(With(s, s.csrf, ReaderRoute())).status, 401);
}

TEST_F(ConsoleTest, BearerTokenStillWorksAndDecidesOverACookie) {
  Session s = SignIn(Issue(kRoleReader));
  http::ClientRequest r = With(s, s.csrf, AdminRoute());
  r.headers.Set("authorization", "Bearer " + admin_);
  EXPECT_EQ(Send(r).status, 201);
}

TEST_F(ConsoleTest, LedgerStreamSendsEntriesFromAnIndexThenNewOnes) {
  auto first = Send([&] {
    auto r = AdminRoute();
    r.headers.Set("authorization", "Bearer " + admin_);
    return r;
  }());
  ASSERT_EQ(first.status, 201) << first.body;
  uint64_t index = json::parse(first.body).at("index").to_number<uint64_t>();

  std::vector<json::object> got;
  bool appended = false;
  http::ClientRequest req = Req("GET", "/v1/ledger/stream?from=" + std::to_string(index));
  auto head = http::BlockingHttpClient("127.0.0.1", service_->port())
                  .Stream(req, [&](const http::SseEvent& e) {
                    EXPECT_EQ(e.event, "entry");
                    auto o = json::parse(e.data).as_object();
                    EXPECT_EQ(e.id, std::to_string(o.at("index").to_number<uint64_t>()));
                    got.push_back(o);
                    if (!appended) {
                      // An entry appended while the stream is open arrives on it.
                      appended = true;
                      auto r = AdminRoute();
                      r.body = "{\"kind\":\"test.console\",\"n\":2}";
                      r.headers.Set("authorization", "Bearer " + admin_);
                      EXPECT_EQ(Send(r).status, 201);
                    }
                    return got.back().at("event").at("kind") != "test.console" ||
                           got.back().at("event").at("n") != 2;
                  });
  ASSERT_TRUE(head.ok()) << head.status().ToString();
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->headers.Get("content-type").value_or(""), "text/event-stream");
  ASSERT_GE(got.size(), 2u);
  EXPECT_EQ(got[0].at("index").to_number<uint64_t>(), index);
  EXPECT_EQ(got[0].at("event").at("n"), 1);
  for (size_t i = 1; i < got.size(); ++i) {
    EXPECT_EQ(got[i].at("index").to_number<uint64_t>(), index + i) << "in order, none skipped";
  }

  EXPECT_EQ(Send(Req("GET", "/v1/ledger/stream?from=x")).status, 400);
  EXPECT_EQ(Send(Req("GET", "/v1/ledger/stream?from=01")).status, 400);
}

// A person signed in at the IdP ([console.idp_roles]): admin wins over reader; no group, no role.
TEST(ConsoleIdpRoles, GroupsMapToTheHighestRole) {
  const std::vector<std::string> admins{"secops"}, readers{"audit", "secops-readonly"};
  EXPECT_EQ(ConsoleRoleForGroups({"secops"}, admins, readers), "admin");
  EXPECT_EQ(ConsoleRoleForGroups({"audit", "secops"}, admins, readers), "admin");
  EXPECT_EQ(ConsoleRoleForGroups({"x", "secops-readonly"}, admins, readers), "reader");
  EXPECT_EQ(ConsoleRoleForGroups({"secops-ro", "SECOPS", "audit "}, admins, readers), std::nullopt)
      << "group names match exactly";
  EXPECT_EQ(ConsoleRoleForGroups({}, admins, readers), std::nullopt);
  EXPECT_EQ(ConsoleRoleForGroups({"secops"}, {}, {}), std::nullopt) << "no groups configured";
}

// A person's session: no token behind it, the person named, the CSRF rules as for a token's.
TEST(ConsoleIdpSessions, APersonsSessionActsAsItsRoleAndResumesWithTheCookieOnly) {
  FakeClock clock;
  SystemRandom random;
  auto tokens = store::OpenAdminTokenStore(store::StorageOptions::InMemory());
  ASSERT_TRUE(tokens.ok()) << tokens.status().ToString();
  ConsoleSessions sessions(**tokens, clock, random);
  NewConsoleSession s = sessions.CreateForPerson(
      ConsolePerson{"alice-sub", "Alice", "oidc:https://idp.example"}, std::string(kRoleReader));
  EXPECT_EQ(s.principal.id, "oidc:alice-sub");
  EXPECT_EQ(s.principal.role, "reader");
  auto p = sessions.Authenticate(s.id, s.csrf);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->id, "oidc:alice-sub");
  EXPECT_EQ(sessions.Authenticate(s.id, "").status().code(), StatusCode::kPermissionDenied);
  auto resumed = sessions.Resume(s.id);
  ASSERT_TRUE(resumed.ok()) << resumed.status().ToString();
  EXPECT_EQ(resumed->csrf, s.csrf);
  EXPECT_EQ(resumed->person.name, "Alice");
  EXPECT_EQ(resumed->person.verified_by, "oidc:https://idp.example");
  EXPECT_EQ(sessions.Resume("nope").status().code(), StatusCode::kUnauthenticated);
  clock.Advance(sessions.lifetime());
  EXPECT_EQ(sessions.Resume(s.id).status().code(), StatusCode::kUnauthenticated);
}

TEST_F(ConsoleTest, SessionRouteGivesTheCookiesCsrfTokenBack) {
  Session s = SignIn(admin_);
  auto none = Send(Req("GET", "/v1/console/session"));
  EXPECT_EQ(none.status, 401) << none.body;
  auto r = Send(With(s, std::nullopt, Req("GET", "/v1/console/session")));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body).at("csrf").as_string(), s.csrf);
  EXPECT_EQ(json::parse(r.body).at("role").as_string(), "admin");
  EXPECT_EQ(r.headers.Get("cache-control").value_or(""), "no-store");
}

}  // namespace
}  // namespace custody::api

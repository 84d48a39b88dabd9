// HttpUpstream against a real Streamable HTTP MCP server: testdata/fake_http_server.mjs, run
// with node (from PATH, like stdio_upstream_test.cc).
#include "mcp/http_upstream.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <boost/json.hpp>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <mutex>

#include "http/client.h"

extern char** environ;

namespace custody::mcp {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

std::string FakeServerScript() {
  const char* src = std::getenv("CUSTODY_SOURCE_DIR");
  return std::string(src ? src : ".") + "/src/mcp/testdata/fake_http_server.mjs";
}

// A port nothing listens on (bound, then released).
uint16_t FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len), 0);
  ::close(fd);
  return ntohs(a.sin_port);
}

// The fake server as a child process; the port is read from its stdout.
class FakeHttpServer {
 public:
  explicit FakeHttpServer(uint16_t port = 0, std::vector<std::string> extra_args = {}) {
    int out[2];
    EXPECT_EQ(::pipe(out), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    std::vector<std::string> argv_s{"node", FakeServerScript(), std::to_string(port)};
    argv_s.insert(argv_s.end(), extra_args.begin(), extra_args.end());
    std::vector<char*> argv;
    for (auto& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    EXPECT_EQ(::posix_spawnp(&pid_, "node", &fa, nullptr, argv.data(), environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    ::close(out[1]);
    std::string line;
    char c;
    while (::read(out[0], &c, 1) == 1 && c != '\n') line.push_back(c);
    ::close(out[0]);
    port_ = static_cast<uint16_t>(std::atoi(line.c_str()));
    EXPECT_NE(port_, 0) << "the fake server did not start";
  }
  ~FakeHttpServer() { Kill(); }
  void Kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = 0;
  }
  uint16_t port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/mcp"; }
  // The server's test hooks.
  json::value Debug(const std::string& method = "GET", const std::string& path = "/debug") {
    http::BlockingHttpClient client("127.0.0.1", port_);
    http::ClientRequest req;
    req.method = method;
    req.target = path;
    auto r = client.Send(req);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return nullptr;
    return json::parse(r->body);
  }

 private:
  pid_t pid_ = 0;
  uint16_t port_ = 0;
};

// Records the upstream's log lines as "<level> <server>: <message>", and its notifications.
struct Recorder : Logger {
  bool Enabled(LogLevel) const override { return true; }
  void Log(LogLevel level, std::string_view, std::initializer_list<LogField> fields) override {
    std::lock_guard lock(mu);
    logs.push_back(std::to_string(static_cast<int>(level)) + " " +
                   std::string(FieldString(fields, "server")) + ": " +
                   std::string(FieldString(fields, "message")));
    cv.notify_all();
  }
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> logs;            // guarded by mu
  std::vector<json::object> notifications;  // guarded by mu
  bool WaitForLog(const std::string& needle) {
    std::unique_lock lk(mu);
    return cv.wait_for(lk, 20s, [&] {
      for (auto& l : logs) {
        if (l.find(needle) != std::string::npos) return true;
      }
      return false;
    });
  }
  bool WaitForNotification(const std::string& method) {
    std::unique_lock lk(mu);
    return cv.wait_for(lk, 20s, [&] {
      for (auto& n : notifications) {
        if (n.at("method") == json::value(method)) return true;
      }
      return false;
    });
  }
  std::string AllLogs() {
    std::lock_guard lock(mu);
    std::string all;
    for (auto& l : logs) all += l + "\n";
    return all;
  }
};

using Answer = std::future<Result<json::object>>;

class HttpUpstreamTest : public ::testing::Test {
 protected:
  std::unique_ptr<Upstream> Make(const std::string& url, std::chrono::milliseconds timeout = 20s,
                                 std::map<std::string, std::string> headers = {}) {
    UpstreamOptions o;
    o.request_timeout = timeout;
    o.min_backoff = 20ms;
    o.max_backoff = 200ms;
    o.log = &rec_;
    o.on_notification = [this](const json::object& n, int64_t) {
      std::lock_guard lock(rec_.mu);
      rec_.notifications.push_back(n);
      rec_.cv.notify_all();
    };
    UpstreamConfig cfg;
    cfg.name = "remote";
    cfg.url = url;
    cfg.headers = std::move(headers);
    auto u = MakeUpstream(cfg, o);
    EXPECT_TRUE(u.ok()) << u.status().ToString();
    if (!u.ok()) return nullptr;
    (*u)->Start();
    return std::move(*u);
  }
  static Answer Call(Upstream& u, const std::string& tool, json::object args,
                     json::object meta = {}, int64_t* id = nullptr) {
    auto p = std::make_shared<std::promise<Result<json::object>>>();
    auto f = p->get_future();
    json::object params{{"name", tool}, {"arguments", std::move(args)}};
    if (!meta.empty()) params["_meta"] = std::move(meta);
    int64_t got = u.Call("tools/call", std::move(params),
                         [p](Result<json::object> r) { p->set_value(std::move(r)); });
    if (id) *id = got;
    return f;
  }
  static Result<json::object> Get(Answer& f) {
    if (f.wait_for(30s) != std::future_status::ready) return InternalError("no answer");
    return f.get();
  }
  static json::value Args(const Result<json::object>& r) {
    return r->at("result").at("structuredContent").at("arguments");
  }
  // Until the upstream's GET stream is open (it opens on its own after the handshake): a
  // session forgotten before then is found out by that GET, which handshakes anew, and the
  // next request never sees the 404 a test wants it to see.
  static void WaitForGetStream(FakeHttpServer& server) {
    for (int i = 0; i < 500; ++i) {
      if (server.Debug().at("gets").as_int64() >= 1) return;
      std::this_thread::sleep_for(20ms);
    }
    ADD_FAILURE() << "the upstream never opened its GET stream";
  }
  Recorder rec_;
};

TEST_F(HttpUpstreamTest, ManyConcurrentCallsAreMatchedToTheirCallers) {
  FakeHttpServer server;
  auto u = Make(server.url());
  ASSERT_TRUE(u);
  // Sent before the handshake completes: they wait for it.
  auto slow = Call(*u, "slow", json::object{{"ms", 300}, {"tag", "slow"}});
  std::vector<Answer> fast;
  for (int i = 0; i < 24; ++i) fast.push_back(Call(*u, "echo", json::object{{"i", i}}));
  for (int i = 0; i < 24; ++i) {
    auto r = Get(fast[i]);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(Args(r).at("i"), json::value(i));
    EXPECT_FALSE(r->contains("id"));
  }
  auto s = Get(slow);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(Args(s).at("tag"), json::value("slow"));
  EXPECT_TRUE(u->ready());
  EXPECT_EQ(static_cast<HttpUpstream&>(*u).handshakes(), 1);
  EXPECT_TRUE(rec_.WaitForLog("1 remote: initialized: protocol 2025-06-18"));

  // The server/discover probe came first (this server is of the 2025 era: it answered with an
  // error), then initialize. Every request after initialize carried the session and the
  // negotiated version, and the transport's own headers.
  json::value d = server.Debug();
  int posts = 0;
  for (const auto& e : d.at("headers").as_array()) {
    const auto& h = e.at("headers").as_object();
    if (e.at("method") != json::value("POST")) continue;
    ++posts;
    EXPECT_EQ(h.at("content-type"), json::value("application/json"));
    EXPECT_EQ(h.at("accept"), json::value("application/json, text/event-stream"));
    if (posts == 1) {
      EXPECT_EQ(h.at("mcp-method"), json::value("server/discover"));
      EXPECT_EQ(h.at("mcp-protocol-version"), json::value("2026-07-28"));
      EXPECT_FALSE(h.contains("mcp-session-id"));
    } else if (posts > 2) {
      EXPECT_TRUE(h.contains("mcp-session-id"));
      EXPECT_EQ(h.at("mcp-protocol-version"), json::value("2025-06-18"));
      EXPECT_FALSE(h.contains("mcp-method"));
    }
  }
  EXPECT_GE(posts, 28);  // server/discover, initialize, initialized, 25 calls
}

TEST_F(HttpUpstreamTest, ProgressArrivesBeforeTheResultAndServerPingsAreAnswered) {
  FakeHttpServer server;
  auto u = Make(server.url());
  ASSERT_TRUE(u);
  size_t progress_at_result = 0;
  std::promise<Result<json::object>> p;
  auto f = p.get_future();
  u->Call("tools/call",
          json::object{{"name", "slow"},
                       {"arguments", json::object{{"ms", 50}}},
                       {"_meta", json::object{{"progressToken", "tok-1"}}}},
          [&](Result<json::object> r) {
            {
              std::lock_guard lock(rec_.mu);
              progress_at_result = rec_.notifications.size();
            }
            p.set_value(std::move(r));
          });
  auto r = Get(f);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(progress_at_result, 2u);
  {
    std::lock_guard lock(rec_.mu);
    ASSERT_EQ(rec_.notifications.size(), 2u);
    EXPECT_EQ(rec_.notifications[0].at("method"), json::value("notifications/progress"));
    EXPECT_EQ(rec_.notifications[1].at("params").at("progressToken"), json::value("tok-1"));
    EXPECT_EQ(rec_.notifications[1].at("params").at("progress"), json::value(2));
  }

  // The server asks the client for a ping on the call's stream and waits for the answer.
  auto ping = Call(*u, "ping_client", json::object{});
  auto pr = Get(ping);
  ASSERT_TRUE(pr.ok()) << pr.status().ToString();
  const auto& reply = pr->at("result").at("structuredContent").at("reply").as_object();
  EXPECT_EQ(reply.at("result"), json::value(json::object{}));
  EXPECT_TRUE(reply.at("id").as_string().starts_with("srv-"));
}

TEST_F(HttpUpstreamTest, NotificationsOnTheGetStreamAreDelivered) {
  FakeHttpServer server;
  auto u = Make(server.url());
  ASSERT_TRUE(u);
  auto warm = Call(*u, "echo", json::object{});
  ASSERT_TRUE(Get(warm).ok());
  // The GET stream opens after the handshake (notify_get waits for it) and stays the only one.
  auto r = Call(*u, "notify_get", json::object{{"hello", "get"}});
  auto a = Get(r);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->at("result").at("structuredContent").at("streams"), json::value(1));
  EXPECT_TRUE(rec_.WaitForNotification("notifications/message"));
  EXPECT_EQ(server.Debug().at("gets"), json::value(1));
}

TEST_F(HttpUpstreamTest, RequestsWaitingForTheHandshakeAreBounded) {
  UpstreamConfig cfg;
  cfg.name = "remote";
  cfg.url = "http://127.0.0.1:" + std::to_string(FreePort()) + "/mcp";
  UpstreamOptions o;
  o.max_waiting = 2;
  o.min_backoff = 20ms;
  auto u = MakeUpstream(cfg, o);
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  (*u)->Start();
  auto a = Call(**u, "echo", json::object{});
  auto b = Call(**u, "echo", json::object{});
  int64_t id = -1;
  auto c = Call(**u, "echo", json::object{}, {}, &id);
  EXPECT_EQ(id, 0);
  ASSERT_EQ(c.wait_for(0s), std::future_status::ready);  // refused at once
  auto r = c.get();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(r.status().message(), "upstream remote is not ready and too many requests are waiting");
  (*u)->Stop();
  EXPECT_EQ(Get(a).status().message(), "the gateway is shutting down");
  EXPECT_EQ(Get(b).status().message(), "the gateway is shutting down");
}

TEST_F(HttpUpstreamTest, AServerWithoutGetStreamIsAskedOnce) {
  FakeHttpServer server(0, {"--no-get"});
  auto u = Make(server.url());
  ASSERT_TRUE(u);
  auto warm = Call(*u, "echo", json::object{});
  ASSERT_TRUE(Get(warm).ok());
  EXPECT_TRUE(rec_.WaitForLog("offers no server-to-client stream (GET answered HTTP 405)"));
  auto again = Call(*u, "echo", json::object{});
  ASSERT_TRUE(Get(again).ok());
  int get_requests = 0;
  json::value d = server.Debug();
  for (const auto& e : d.at("headers").as_array()) {
    if (e.at("method") == json::value("GET")) ++get_requests;
  }
  EXPECT_EQ(get_requests, 1);
}

TEST_F(HttpUpstreamTest, AnExpiredSessionIsReinitializedAndTheRequestRetried) {
  FakeHttpServer server;
  auto u = Make(server.url());
  ASSERT_TRUE(u);
  auto first = Call(*u, "echo", json::object{{"n", 1}});
  ASSERT_TRUE(Get(first).ok());
  WaitForGetStream(server);
  server.Debug("POST", "/debug/forget");
  auto second = Call(*u, "echo", json::object{{"n", 2}});
  auto r = Get(second);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(Args(r).at("n"), json::value(2));
  EXPECT_EQ(static_cast<HttpUpstream&>(*u).handshakes(), 2);
  EXPECT_TRUE(u->ready());
}

TEST_F(HttpUpstreamTest, Http500AndARefusedConnectionAreUnavailableWithClearMessages) {
  FakeHttpServer server;
  auto u = Make(server.url());
  ASSERT_TRUE(u);
  auto f = Call(*u, "fail500", json::object{});
  auto r = Get(f);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(r.status().message(), "upstream remote answered HTTP 500");

  auto down = Make("http://127.0.0.1:" + std::to_string(FreePort()) + "/mcp", 500ms);
  ASSERT_TRUE(down);
  auto d = Call(*down, "echo", json::object{});
  auto dr = Get(d);
  ASSERT_FALSE(dr.ok());
  EXPECT_EQ(dr.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(dr.status().message().find("upstream remote did not answer in time"), std::string::npos)
      << dr.status().ToString();
  EXPECT_NE(dr.status().message().find("Connection refused"), std::string::npos)
      << dr.status().ToString();
  EXPECT_FALSE(down->ready());
  EXPECT_TRUE(rec_.WaitForLog("2 remote: cannot initialize"));
}

TEST_F(HttpUpstreamTest, AServerThatGoesAwayFailsCallsUntilItIsBack) {
  auto server = std::make_unique<FakeHttpServer>();
  uint16_t port = server->port();
  auto u = Make(server->url(), 2s);
  ASSERT_TRUE(u);
  auto first = Call(*u, "echo", json::object{});
  ASSERT_TRUE(Get(first).ok());
  server->Kill();
  auto lost = Call(*u, "echo", json::object{});
  auto lr = Get(lost);
  ASSERT_FALSE(lr.ok());
  EXPECT_NE(lr.status().message().find("Connection refused"), std::string::npos)
      << lr.status().ToString();
  server = std::make_unique<FakeHttpServer>(port);
  auto back = Call(*u, "echo", json::object{{"back", true}});
  auto br = Get(back);
  ASSERT_TRUE(br.ok()) << br.status().ToString();
  EXPECT_EQ(Args(br).at("back"), json::value(true));
  EXPECT_GE(static_cast<HttpUpstream&>(*u).handshakes(), 2);
}

TEST_F(HttpUpstreamTest, ARequestPastItsDeadlineIsFailedAndCancelledUpstream) {
  FakeHttpServer server;
  auto u = Make(server.url(), 500ms);
  ASSERT_TRUE(u);
  auto warm = Call(*u, "echo", json::object{});
  ASSERT_TRUE(Get(warm).ok());
  int64_t id = 0;
  auto slow = Call(*u, "slow", json::object{{"ms", 60000}}, {}, &id);
  ASSERT_NE(id, 0);
  auto r = Get(slow);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(r.status().message(), "upstream remote did not answer in time");
  json::value c = server.Debug("GET", "/debug/cancelled?id=" + std::to_string(id));
  ASSERT_TRUE(c.is_object()) << "no notifications/cancelled upstream";
  EXPECT_EQ(c.at("requestId"), json::value(id));
  EXPECT_EQ(c.at("reason"), json::value("timed out at the Custody gateway"));
}

TEST_F(HttpUpstreamTest, CancelFailsTheCallAndTellsTheServer) {
  FakeHttpServer server;
  auto u = Make(server.url());
  ASSERT_TRUE(u);
  auto warm = Call(*u, "echo", json::object{});
  ASSERT_TRUE(Get(warm).ok());
  int64_t id = 0;
  auto slow =
      Call(*u, "slow", json::object{{"ms", 60000}}, json::object{{"progressToken", 7}}, &id);
  ASSERT_TRUE(rec_.WaitForNotification("notifications/progress"));  // the call is in flight
  u->Cancel(id, "the client gave up");
  auto r = Get(slow);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(r.status().message(), "cancelled: the client gave up");
  json::value c = server.Debug("GET", "/debug/cancelled?id=" + std::to_string(id));
  ASSERT_TRUE(c.is_object()) << "no notifications/cancelled upstream";
  EXPECT_EQ(c.at("reason"), json::value("the client gave up"));
  u->Cancel(id, "twice");  // nothing left to cancel: no second callback (the promise would throw)
  auto after = Call(*u, "echo", json::object{});
  EXPECT_TRUE(Get(after).ok());
}

TEST_F(HttpUpstreamTest, ConfiguredHeadersAreExpandedAndSentWithEveryRequest) {
  ::setenv("CUSTODY_HTTP_UPSTREAM_TEST_KEY", "s3cret-value", 1);
  FakeHttpServer server;
  auto u = Make(server.url(), 20s,
                {{"Authorization", "Bearer ${CUSTODY_HTTP_UPSTREAM_TEST_KEY}"},
                 {"X-Tenant", "t-${CUSTODY_HTTP_UPSTREAM_TEST_KEY}-x"}});
  ASSERT_TRUE(u);
  auto f = Call(*u, "echo", json::object{});
  ASSERT_TRUE(Get(f).ok());
  u->Stop();
  json::value d = server.Debug();
  int seen = 0;
  for (const auto& e : d.at("headers").as_array()) {
    const auto& h = e.at("headers").as_object();
    EXPECT_EQ(h.at("authorization"), json::value("Bearer s3cret-value")) << e.at("method");
    EXPECT_EQ(h.at("x-tenant"), json::value("t-s3cret-value-x"));
    ++seen;
  }
  EXPECT_GE(seen, 4);  // initialize, initialized, the call, GET and/or DELETE
  EXPECT_EQ(rec_.AllLogs().find("s3cret"), std::string::npos);

  // A missing variable is a configuration error that names it, not the value around it.
  ::unsetenv("CUSTODY_HTTP_UPSTREAM_TEST_MISSING");
  UpstreamConfig cfg;
  cfg.name = "remote";
  cfg.url = server.url();
  cfg.headers = {{"Authorization", "Bearer abc${CUSTODY_HTTP_UPSTREAM_TEST_MISSING}"}};
  auto bad = MakeUpstream(cfg, UpstreamOptions{});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("CUSTODY_HTTP_UPSTREAM_TEST_MISSING"), std::string::npos);
  EXPECT_EQ(bad.status().message().find("abc"), std::string::npos) << bad.status().ToString();
}

TEST_F(HttpUpstreamTest, WithoutConfiguredHeadersNoAuthorizationIsSent) {
  FakeHttpServer server;
  auto u = Make(server.url());
  ASSERT_TRUE(u);
  auto l = std::make_shared<std::promise<Result<json::object>>>();
  auto lf = l->get_future();
  u->Call("tools/list", json::object{},
          [l](Result<json::object> r) { l->set_value(std::move(r)); });
  auto lr = Get(lf);
  ASSERT_TRUE(lr.ok()) << lr.status().ToString();
  EXPECT_EQ(lr->at("result").at("tools").as_array().size(), 5u);
  json::value d = server.Debug();
  for (const auto& e : d.at("headers").as_array()) {
    EXPECT_FALSE(e.at("headers").as_object().contains("authorization"));
  }
}

// A Transaction Token (RequestExtras) goes in the Txn-Token header of its own request, and of no
// other; it cannot be configured as a static header.
TEST_F(HttpUpstreamTest, ATxnTokenGoesInTheTxnTokenHeaderOfItsRequestOnly) {
  FakeHttpServer server;
  auto u = Make(server.url());
  ASSERT_TRUE(u);
  auto p = std::make_shared<std::promise<Result<json::object>>>();
  auto with = p->get_future();
  json::object params{
      {"name", "echo"}, {"arguments", {{"i", 1}}}, {"_meta", {{kTxnTokenMetaKey, "client-made"}}}};
  u->Call("tools/call", std::move(params),
          RequestExtras{.txn_token = [] { return Result<std::string>("txn-token-1"); }},
          [p](Result<json::object> r) { p->set_value(std::move(r)); });
  auto without = Call(*u, "echo", json::object{{"i", 2}});
  auto r1 = Get(with);
  ASSERT_TRUE(r1.ok()) << r1.status().ToString();
  EXPECT_EQ(Args(r1).at("i"), json::value(1));
  ASSERT_TRUE(Get(without).ok());
  int carrying = 0;
  json::value d = server.Debug();
  for (const auto& e : d.at("headers").as_array()) {
    const auto& h = e.at("headers").as_object();
    if (const json::value* t = h.if_contains("txn-token")) {
      ++carrying;
      EXPECT_EQ(*t, json::value("txn-token-1"));
    }
  }
  EXPECT_EQ(carrying, 1) << "only the request it was minted for carries it";

  UpstreamConfig cfg;
  cfg.name = "remote";
  cfg.url = server.url();
  cfg.headers = {{"Txn-Token", "static"}};
  auto bad = MakeUpstream(cfg, UpstreamOptions{});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("set by the transport"), std::string::npos);
}

// Each POST of a request carries a token minted for that POST (issue #18): the retry after a
// 404 (the session expired) gets a fresh one, not the first, which may have expired meanwhile.
// A source with no token to give fails the request before anything is sent.
TEST_F(HttpUpstreamTest, EachPostOfARequestCarriesATokenMintedForIt) {
  FakeHttpServer server;
  auto u = Make(server.url());
  ASSERT_TRUE(u);
  auto first = Call(*u, "echo", json::object{{"n", 0}});
  ASSERT_TRUE(Get(first).ok());
  WaitForGetStream(server);
  server.Debug("POST", "/debug/forget");
  auto minted = std::make_shared<std::atomic<int>>(0);
  auto send = [&](TxnTokenSource source) {
    auto p = std::make_shared<std::promise<Result<json::object>>>();
    auto f = p->get_future();
    u->Call("tools/call", json::object{{"name", "echo"}, {"arguments", {{"n", 1}}}},
            RequestExtras{.txn_token = std::move(source)},
            [p](Result<json::object> r) { p->set_value(std::move(r)); });
    return f;
  };
  auto retried =
      send([minted] { return Result<std::string>("txn-token-" + std::to_string(++*minted)); });
  auto r = Get(retried);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(static_cast<HttpUpstream&>(*u).handshakes(), 2) << "a 404, a new session, a retry";
  EXPECT_EQ(minted->load(), 2);
  std::vector<std::string> carried;
  json::value d = server.Debug();
  for (const auto& e : d.at("headers").as_array()) {
    if (const json::value* t = e.at("headers").as_object().if_contains("txn-token")) {
      carried.emplace_back(t->as_string());
    }
  }
  EXPECT_EQ(carried, (std::vector<std::string>{"txn-token-1", "txn-token-2"}));

  auto posts = [&server] {
    size_t n = 0;
    json::value seen = server.Debug();
    for (const auto& e : seen.at("headers").as_array()) n += e.at("method") == "POST";
    return n;
  };
  size_t before = posts();
  auto refused = send([] { return Result<std::string>(UnavailableError("no signing key")); });
  auto f = Get(refused);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(f.status().message().find("transaction token could not be minted: no signing key"),
            std::string::npos)
      << f.status().message();
  EXPECT_EQ(posts(), before) << "nothing was sent";
}

TEST_F(HttpUpstreamTest, BadConfigurationsAreRefused) {
  auto refuse = [](std::string url, std::map<std::string, std::string> headers = {}) {
    UpstreamConfig cfg;
    cfg.name = "remote";
    cfg.url = std::move(url);
    cfg.headers = std::move(headers);
    auto u = MakeUpstream(cfg, UpstreamOptions{});
    EXPECT_FALSE(u.ok()) << cfg.url;
    return u.ok() ? std::string() : u.status().message();
  };
  EXPECT_NE(refuse("ftp://example.com/").find("http:// or https://"), std::string::npos);
  EXPECT_NE(refuse("http://:80/").find("no valid host"), std::string::npos);
  EXPECT_NE(refuse("http://example.com:99999/").find("invalid port"), std::string::npos);
  EXPECT_NE(refuse("http://example.com:x/").find("invalid port"), std::string::npos);
  EXPECT_NE(refuse("http://[::1/").find("IPv6"), std::string::npos);
  EXPECT_NE(refuse("http://user:pw@example.com/").find("user info"), std::string::npos);
  EXPECT_NE(refuse("http://example.com/", {{"Mcp-Session-Id", "x"}}).find("set by the transport"),
            std::string::npos);
  EXPECT_NE(refuse("http://example.com/", {{"X-Key", "a\r\nEvil: 1"}}).find("line break"),
            std::string::npos);
  for (std::string ok : {"http://example.com", "https://example.com/mcp?x=1",
                         "http://[::1]:8080/mcp", "HTTPS://EXAMPLE.COM:8443"}) {
    UpstreamConfig cfg;
    cfg.name = "remote";
    cfg.url = ok;
    EXPECT_TRUE(MakeUpstream(cfg, UpstreamOptions{}).ok()) << ok;
  }
}

TEST_F(HttpUpstreamTest, HttpsVerifiesThePeerAgainstTheConfiguredCaFile) {
  auto dir = std::filesystem::temp_directory_path() /
             ("custody-http-upstream-tls-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::string cert = (dir / "cert.pem").string(), key = (dir / "key.pem").string();
  std::string cmd =
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1"
      " -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout " +
      key + " -out " + cert + " 2>/dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  FakeHttpServer server(0, {"--tls=" + cert + "," + key});
  std::string url = "https://127.0.0.1:" + std::to_string(server.port()) + "/mcp";

  UpstreamConfig cfg;
  cfg.name = "remote";
  cfg.url = url;
  cfg.ca_file = cert;
  UpstreamOptions o;
  o.min_backoff = 20ms;
  o.max_backoff = 100ms;
  auto trusted = MakeUpstream(cfg, o);
  ASSERT_TRUE(trusted.ok()) << trusted.status().ToString();
  (*trusted)->Start();
  auto f = Call(**trusted, "echo", json::object{{"over", "tls"}});
  auto r = Get(f);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(Args(r).at("over"), json::value("tls"));

  // The system store does not know this certificate: the handshake fails, calls time out.
  auto untrusting = Make(url, 500ms);
  ASSERT_TRUE(untrusting);
  auto g = Call(*untrusting, "echo", json::object{});
  auto u = Get(g);
  ASSERT_FALSE(u.ok());
  EXPECT_NE(u.status().message().find("TLS handshake failed"), std::string::npos)
      << u.status().ToString();
  EXPECT_FALSE(untrusting->ready());
  std::filesystem::remove_all(dir);
}

TEST_F(HttpUpstreamTest, ADownServerIsInitializedOnceItComesUp) {
  uint16_t port = FreePort();
  auto u = Make("http://127.0.0.1:" + std::to_string(port) + "/mcp", 30s);
  ASSERT_TRUE(u);
  auto waiting = Call(*u, "echo", json::object{{"early", true}});
  ASSERT_TRUE(rec_.WaitForLog("cannot initialize"));
  EXPECT_TRUE(rec_.WaitForLog("retrying in"));
  EXPECT_FALSE(u->ready());
  FakeHttpServer server(port);
  auto r = Get(waiting);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(Args(r).at("early"), json::value(true));
  EXPECT_TRUE(u->ready());
  EXPECT_EQ(static_cast<HttpUpstream&>(*u).handshakes(), 1);
}

TEST_F(HttpUpstreamTest, StopFailsCallsInFlightAndEndsTheSession) {
  FakeHttpServer server;
  auto u = Make(server.url());
  ASSERT_TRUE(u);
  auto warm = Call(*u, "echo", json::object{});
  ASSERT_TRUE(Get(warm).ok());
  std::vector<Answer> slow;
  for (int i = 0; i < 5; ++i) slow.push_back(Call(*u, "slow", json::object{{"ms", 60000}}));
  std::atomic<int> late{0};
  std::atomic<bool> stopped{false};
  for (int i = 0; i < 3; ++i) {
    u->Call("tools/call", json::object{{"name", "slow"}, {"arguments", {{"ms", 60000}}}},
            [&](Result<json::object>) {
              if (stopped) ++late;
            });
  }
  EXPECT_TRUE(rec_.WaitForLog("initialized"));
  u->Stop();
  stopped = true;
  for (auto& f : slow) {
    ASSERT_EQ(f.wait_for(0s), std::future_status::ready);  // before Stop returned
    auto r = f.get();
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().message(), "the gateway is shutting down");
  }
  EXPECT_EQ(late, 0);
  EXPECT_EQ(server.Debug().at("deletes"), json::value(1));
  auto after = Call(*u, "echo", json::object{});
  auto ar = Get(after);
  EXPECT_FALSE(ar.ok());
  u.reset();  // the destructor after Stop: nothing left to do
}

}  // namespace
}  // namespace custody::mcp

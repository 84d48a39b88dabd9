// StdioUpstream against a tiny fake MCP server (testdata/fake_server.mjs, run with node).
#include "mcp/stdio_upstream.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>

namespace custody::mcp {
namespace {

namespace json = boost::json;

std::string FakeServer() {
  const char* src = std::getenv("CUSTODY_SOURCE_DIR");
  return std::string(src ? src : ".") + "/src/mcp/testdata/fake_server.mjs";
}

// Records the upstream's log lines as "<server>: <message>".
struct Logs : Logger {
  bool Enabled(LogLevel) const override { return true; }
  void Log(LogLevel, std::string_view, std::initializer_list<LogField> fields) override {
    std::lock_guard lock(mu);
    lines.push_back(std::string(FieldString(fields, "server")) + ": " +
                    std::string(FieldString(fields, "message")));
    cv.notify_all();
  }
  std::mutex mu;
  std::vector<std::string> lines;  // guarded by mu
  std::condition_variable cv;
  bool WaitFor(const std::string& needle) {
    std::unique_lock lk(mu);
    return cv.wait_for(lk, std::chrono::seconds(20), [&] {
      for (auto& l : lines) {
        if (l.find(needle) != std::string::npos) return true;
      }
      return false;
    });
  }
};

class StdioUpstreamTest : public ::testing::Test {
 protected:
  std::unique_ptr<StdioUpstream> Make(std::string command, std::vector<std::string> args,
                                      std::chrono::milliseconds timeout = std::chrono::seconds(20),
                                      std::map<std::string, std::string> env = {}) {
    UpstreamOptions o;
    o.request_timeout = timeout;
    o.min_backoff = std::chrono::milliseconds(10);
    o.max_backoff = std::chrono::milliseconds(50);
    o.log = &logs_;
    UpstreamConfig cfg;
    cfg.name = "fake";
    cfg.command = command;
    cfg.args = args;
    cfg.env = env;
    auto u = std::make_unique<StdioUpstream>(cfg, o);
    u->Start();
    return u;
  }
  std::future<Result<json::object>> Call(StdioUpstream& u, const std::string& tool,
                                         json::object args) {
    auto p = std::make_shared<std::promise<Result<json::object>>>();
    auto f = p->get_future();
    u.Call("tools/call", json::object{{"name", tool}, {"arguments", std::move(args)}},
           [p](Result<json::object> r) { p->set_value(std::move(r)); });
    return f;
  }
  static Result<json::object> Get(std::future<Result<json::object>>& f) {
    if (f.wait_for(std::chrono::seconds(30)) != std::future_status::ready) {
      return InternalError("no answer");
    }
    return f.get();
  }
  Logs logs_;
};

TEST_F(StdioUpstreamTest, ManyRequestsInFlightAreMatchedToTheirCallers) {
  auto u = Make("node", {FakeServer()});
  // Sent before the handshake completes: they wait for it.
  auto slow = Call(*u, "slow", json::object{{"ms", 300}, {"tag", "slow"}});
  std::vector<std::future<Result<json::object>>> fast;
  for (int i = 0; i < 20; ++i) fast.push_back(Call(*u, "echo", json::object{{"i", i}}));
  for (int i = 0; i < 20; ++i) {
    auto r = Get(fast[i]);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->at("result").at("structuredContent").at("arguments").at("i"), json::value(i));
  }
  auto s = Get(slow);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->at("result").at("structuredContent").at("arguments").at("tag"), json::value("slow"));
  // stderr went to the log.
  EXPECT_TRUE(logs_.WaitFor("fake: stderr: fake server started"));
  EXPECT_EQ(u->starts(), 1);
}

// A Transaction Token (RequestExtras) goes in params._meta["dev.custody/txn-token"] beside what
// _meta held; without one, a token a client put there is removed.
TEST_F(StdioUpstreamTest, ATxnTokenGoesInMetaAndOnlyTheGatewaysOwn) {
  auto u = Make("node", {FakeServer()});
  auto send = [&](json::object meta, std::string token) {
    auto p = std::make_shared<std::promise<Result<json::object>>>();
    auto f = p->get_future();
    u->Call("tools/call",
            json::object{{"name", "echo"}, {"arguments", json::object{}}, {"_meta", meta}},
            RequestExtras{.txn_token = token.empty()
                                           ? TxnTokenSource()
                                           : [token]() -> Result<std::string> { return token; }},
            [p](Result<json::object> r) { p->set_value(std::move(r)); });
    return f;
  };
  auto with = send({{"traceparent", "00-abc"}, {kTxnTokenMetaKey, "client-made"}}, "txn-token-1");
  auto without = send({{"traceparent", "00-def"}, {kTxnTokenMetaKey, "client-made"}}, "");
  auto r1 = Get(with);
  ASSERT_TRUE(r1.ok()) << r1.status().ToString();
  const json::value& m1 = r1->at("result").at("structuredContent").at("meta");
  EXPECT_EQ(m1.at(kTxnTokenMetaKey), json::value("txn-token-1"));
  EXPECT_EQ(m1.at("traceparent"), json::value("00-abc"));
  auto r2 = Get(without);
  ASSERT_TRUE(r2.ok()) << r2.status().ToString();
  const json::value& m2 = r2->at("result").at("structuredContent").at("meta");
  EXPECT_FALSE(m2.as_object().contains(kTxnTokenMetaKey)) << json::serialize(m2);
  EXPECT_EQ(m2.at("traceparent"), json::value("00-def"));
}

// A 2026-07-28 server's input_required round, answered later (by a person, minutes later in
// life), sends the request again with a token minted for that send, not the first (issue #18).
TEST_F(StdioUpstreamTest, AnInputRequiredRoundIsSentAgainWithAFreshTxnToken) {
  const char* src = std::getenv("CUSTODY_SOURCE_DIR");
  auto asked = std::make_shared<std::promise<json::value>>();
  UpstreamOptions o;
  o.request_timeout = std::chrono::seconds(20);
  o.log = &logs_;
  o.on_request = [asked](const json::object& request, int64_t) {
    asked->set_value(request.at("id"));  // one ask in this test
  };
  UpstreamConfig cfg;
  cfg.name = "modern";
  cfg.command = "node";
  cfg.args = {std::string(src ? src : ".") + "/src/mcp/testdata/fake_modern_server.mjs"};
  StdioUpstream u(cfg, o);
  u.Start();
  auto minted = std::make_shared<std::atomic<int>>(0);
  auto p = std::make_shared<std::promise<Result<json::object>>>();
  auto f = p->get_future();
  u.Call("tools/call", json::object{{"name", "ask"}, {"arguments", json::object{}}},
         RequestExtras{.txn_token =
                           [minted] {
                             return Result<std::string>("txn-token-" + std::to_string(++*minted));
                           }},
         [p](Result<json::object> r) { p->set_value(std::move(r)); });
  auto ask = asked->get_future();
  ASSERT_EQ(ask.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  EXPECT_EQ(minted->load(), 1);
  u.Respond(ask.get(), json::object{{"result", {{"action", "accept"}, {"content", {}}}}});
  auto r = Get(f);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const json::object& sc = r->at("result").at("structuredContent").as_object();
  EXPECT_EQ(sc.at("tokens"), (json::array{"txn-token-1", "txn-token-2"})) << json::serialize(sc);
  EXPECT_EQ(sc.at("responses").at("who").at("action"), "accept");
  u.Stop();
}

TEST_F(StdioUpstreamTest, ACrashFailsWhatIsInFlightAndTheServerIsRestarted) {
  auto u = Make("node", {FakeServer()});
  auto first = Call(*u, "echo", json::object{});
  auto r1 = Get(first);
  ASSERT_TRUE(r1.ok());
  int64_t pid1 = r1->at("result").at("structuredContent").at("pid").as_int64();

  auto crash = Call(*u, "crash", json::object{});
  auto rc = Get(crash);
  ASSERT_FALSE(rc.ok());
  EXPECT_EQ(rc.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(rc.status().message().find("exited with status 3"), std::string::npos)
      << rc.status().ToString();

  // The next call waits for the restarted process and is answered by it.
  auto again = Call(*u, "echo", json::object{{"after", "crash"}});
  auto r2 = Get(again);
  ASSERT_TRUE(r2.ok()) << r2.status().ToString();
  EXPECT_NE(r2->at("result").at("structuredContent").at("pid").as_int64(), pid1);
  EXPECT_EQ(u->starts(), 2);
  EXPECT_TRUE(logs_.WaitFor("restarting upstream server"));
}

TEST_F(StdioUpstreamTest, ARequestThatOutlivesItsDeadlineIsFailed) {
  auto u = Make("node", {FakeServer()}, std::chrono::milliseconds(500));
  auto warm = Call(*u, "echo", json::object{});
  ASSERT_TRUE(Get(warm).ok());
  auto slow = Call(*u, "slow", json::object{{"ms", 60000}});
  auto r = Get(slow);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("did not answer in time"), std::string::npos);
}

TEST_F(StdioUpstreamTest, ACancelledRequestIsFailedAndTheUpstreamIsTold) {
  std::string marker = (std::filesystem::temp_directory_path() /
                        ("custody-upstream-cancel-" + std::to_string(::getpid())))
                           .string();
  std::filesystem::remove(marker + ".cancelled");
  auto u = Make("node", {FakeServer()}, std::chrono::seconds(20), {{"FAKE_MARKER_FILE", marker}});
  auto warm = Call(*u, "echo", json::object{});
  ASSERT_TRUE(Get(warm).ok());
  auto p = std::make_shared<std::promise<Result<json::object>>>();
  auto f = p->get_future();
  int64_t id = u->Call("tools/call",
                       json::object{{"name", "slow"}, {"arguments", json::object{{"ms", 60000}}}},
                       [p](Result<json::object> r) { p->set_value(std::move(r)); });
  ASSERT_NE(id, 0);
  u->Cancel(id, "test");
  auto r = Get(f);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("cancelled"), std::string::npos);
  // The server reads stdin in order: once this echo is answered, it has seen the cancellation.
  auto after = Call(*u, "echo", json::object{});
  ASSERT_TRUE(Get(after).ok());
  std::ifstream in(marker + ".cancelled");
  std::string line;
  std::getline(in, line);
  EXPECT_NE(line.find("\"requestId\":" + std::to_string(id)), std::string::npos) << line;
  std::filesystem::remove(marker + ".cancelled");
  std::filesystem::remove(marker + ".slow-started");
}

TEST_F(StdioUpstreamTest, AMissingCommandIsLoggedAndCallsFail) {
  auto u = Make("/nonexistent/custody-no-such-server", {}, std::chrono::milliseconds(300));
  auto f = Call(*u, "echo", json::object{});
  auto r = Get(f);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_TRUE(logs_.WaitFor("cannot start /nonexistent/custody-no-such-server"));
  u->Stop();
  EXPECT_EQ(u->starts(), 0);
}

}  // namespace
}  // namespace custody::mcp

#include "mcp/upstream.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace custody::mcp {
namespace {

namespace json = boost::json;

TEST(Upstream, MakeUpstreamNeedsExactlyOneTransport) {
  UpstreamConfig neither;
  neither.name = "x";
  auto r = MakeUpstream(neither, {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("exactly one of command"), std::string::npos);

  UpstreamConfig both = neither;
  both.command = "node";
  both.url = "http://127.0.0.1:1/mcp";
  EXPECT_FALSE(MakeUpstream(both, {}).ok());

  UpstreamConfig ftp = neither;
  ftp.url = "ftp://example.com/mcp";
  EXPECT_FALSE(MakeUpstream(ftp, {}).ok());

  UpstreamConfig stdio = neither;
  stdio.command = "node";
  auto s = MakeUpstream(stdio, {});
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ((*s)->name(), "x");
  EXPECT_FALSE((*s)->ready());  // not started

  UpstreamConfig http = neither;
  http.url = "http://127.0.0.1:1/mcp";
  auto h = MakeUpstream(http, {});
  ASSERT_TRUE(h.ok()) << h.status().message();
  EXPECT_EQ((*h)->name(), "x");
}

TEST(Upstream, ServerRequestsGetPingOrMethodNotFound) {
  json::value ping = json::parse(AnswerServerRequest(7, "ping"));
  EXPECT_EQ(ping.at("id"), 7);
  EXPECT_TRUE(ping.at("result").as_object().empty());
  EXPECT_FALSE(ping.as_object().contains("error"));

  json::value other = json::parse(AnswerServerRequest("s-1", "sampling/createMessage"));
  EXPECT_EQ(other.at("id"), "s-1");
  EXPECT_EQ(other.at("error").at("code"), -32601);
  EXPECT_FALSE(other.as_object().contains("result"));
}

TEST(Upstream, InitializeDeclaresOnlyWhatIsRelayed) {
  UpstreamOptions o;
  json::value init = json::parse(InitializeRequest(3, o));
  EXPECT_EQ(init.at("method"), "initialize");
  EXPECT_EQ(init.at("id"), 3);
  EXPECT_EQ(init.at("params").at("protocolVersion"), "2025-06-18");
  EXPECT_TRUE(init.at("params").at("capabilities").as_object().empty());
  EXPECT_EQ(init.at("params").at("clientInfo").at("name"), "custody-gateway");

  // A gateway that relays server requests declares sampling and both elicitation modes, and
  // never roots (one client's roots would reshape a server every client shares).
  o.on_request = [](const json::object&, int64_t) {};
  json::value relaying = json::parse(InitializeRequest(4, o));
  const json::object& caps = relaying.at("params").at("capabilities").as_object();
  EXPECT_TRUE(caps.contains("sampling"));
  EXPECT_TRUE(caps.at("elicitation").as_object().contains("form"));
  EXPECT_TRUE(caps.at("elicitation").as_object().contains("url"));
  EXPECT_FALSE(caps.contains("roots"));
}

TEST(Upstream, ServerMessagesGoToTheirHandlers) {
  UpstreamOptions o;
  std::vector<std::pair<std::string, int64_t>> requests, notifications;
  std::vector<std::string> replies;
  auto reply = [&](std::string text) { replies.push_back(std::move(text)); };
  auto handle = [&](std::string_view text, int64_t related) {
    return HandleServerMessage(json::parse(text).as_object(), related, reply, o);
  };
  // Without on_request, requests are answered on the spot (ping {}, others -32601).
  EXPECT_TRUE(handle(R"({"jsonrpc":"2.0","id":1,"method":"sampling/createMessage"})", 0));
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(json::parse(replies[0]).at("error").at("code"), -32601);

  o.on_request = [&](const json::object& m, int64_t related) {
    requests.emplace_back(json::serialize(m.at("id")), related);
  };
  o.on_notification = [&](const json::object& m, int64_t related) {
    notifications.emplace_back(std::string(m.at("method").as_string()), related);
  };
  EXPECT_TRUE(handle(R"({"jsonrpc":"2.0","id":"e1","method":"elicitation/create"})", 9));
  EXPECT_TRUE(handle(R"({"jsonrpc":"2.0","id":2,"method":"ping"})", 9));
  EXPECT_TRUE(handle(R"({"jsonrpc":"2.0","method":"notifications/message","params":{}})", 9));
  EXPECT_FALSE(handle(R"({"jsonrpc":"2.0","id":5,"result":{}})", 0));  // a response: caller's
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0], std::make_pair(std::string(R"("e1")"), int64_t{9}));
  ASSERT_EQ(replies.size(), 2u);  // ping is still answered by the upstream itself
  EXPECT_TRUE(json::parse(replies[1]).at("result").as_object().empty());
  ASSERT_EQ(notifications.size(), 1u);
  EXPECT_EQ(notifications[0], std::make_pair(std::string("notifications/message"), int64_t{9}));

  json::value r = json::parse(ResponseText("e1", json::object{{"result", {{"action", "accept"}}}}));
  EXPECT_EQ(r.at("jsonrpc"), "2.0");
  EXPECT_EQ(r.at("id"), "e1");
  EXPECT_EQ(r.at("result").at("action"), "accept");
}

TEST(Upstream, CapabilityNamesIncludeTheFlagsThatAreTrue) {
  auto names = CapabilityNames(json::parse(R"({"capabilities":{"tools":{},"logging":{},
      "resources":{"subscribe":true,"listChanged":false},"prompts":{"listChanged":true}}})")
                                   .as_object());
  EXPECT_EQ(names, (std::set<std::string, std::less<>>{"tools", "logging", "resources",
                                                       "resources.subscribe", "prompts",
                                                       "prompts.listChanged"}));
}

}  // namespace
}  // namespace custody::mcp

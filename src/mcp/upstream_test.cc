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

TEST(Upstream, InitializeOffersNoClientCapabilities) {
  json::value init = json::parse(InitializeRequest(3, "2025-06-18"));
  EXPECT_EQ(init.at("method"), "initialize");
  EXPECT_EQ(init.at("id"), 3);
  EXPECT_EQ(init.at("params").at("protocolVersion"), "2025-06-18");
  EXPECT_TRUE(init.at("params").at("capabilities").as_object().empty());
  EXPECT_EQ(init.at("params").at("clientInfo").at("name"), "custody-gateway");
}

}  // namespace
}  // namespace custody::mcp

#include "mcp/upstream_era.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace custody::mcp {
namespace {

namespace json = boost::json;

UpstreamOptions Relaying() {
  UpstreamOptions o;
  o.on_request = [](const json::object&, int64_t) {};
  return o;
}

json::object Request(std::string method, json::object params) {
  return json::object{{"jsonrpc", "2.0"}, {"id", 7}, {"method", method}, {"params", params}};
}

json::object InputRequired(json::object requests, json::value state) {
  json::object result{{"resultType", "input_required"}, {"inputRequests", std::move(requests)}};
  if (!state.is_null()) result["requestState"] = state;
  return json::object{{"result", std::move(result)}};
}

TEST(UpstreamEra, DiscoverProbeAndItsAnswer) {
  json::value probe = json::parse(DiscoverRequest(3));
  EXPECT_EQ(probe.at("method"), "server/discover");
  EXPECT_EQ(probe.at("id"), 3);
  const json::object& meta = probe.at("params").at("_meta").as_object();
  EXPECT_EQ(meta.at("io.modelcontextprotocol/protocolVersion"), "2026-07-28");
  EXPECT_TRUE(meta.at("io.modelcontextprotocol/clientCapabilities").is_object());

  auto modern = ModernCapabilities(json::parse(R"({"result":{"resultType":"complete",
      "supportedVersions":["2025-11-25","2026-07-28"],
      "capabilities":{"tools":{"listChanged":true},"resources":{"subscribe":true}}}})")
                                       .as_object());
  ASSERT_TRUE(modern.has_value());
  EXPECT_TRUE(modern->contains("tools.listChanged"));
  EXPECT_TRUE(modern->contains("resources.subscribe"));
  // A 2025-era server: an error, or versions without ours.
  EXPECT_FALSE(ModernCapabilities(
      json::parse(R"({"error":{"code":-32601,"message":"Method not found"}})").as_object()));
  EXPECT_FALSE(ModernCapabilities(
      json::parse(R"({"result":{"supportedVersions":["2027-01-01"],"capabilities":{}}})")
          .as_object()));
  EXPECT_FALSE(ModernCapabilities(json::parse(R"({"result":{}})").as_object()));
}

TEST(UpstreamEra, McpNameHeaderEncodesWhatIsNotPlainAscii) {
  EXPECT_EQ(McpNameHeader(Request("tools/call", {{"name", "echo"}})), "echo");
  EXPECT_EQ(McpNameHeader(Request("resources/read", {{"uri", "memo://one"}})), "memo://one");
  EXPECT_EQ(McpNameHeader(Request("prompts/get", {{"name", "héllo"}})), "=?base64?aMOpbGxv?=");
  EXPECT_EQ(McpNameHeader(Request("tools/call", {{"name", " padded"}})), "=?base64?IHBhZGRlZA==?=");
  EXPECT_FALSE(McpNameHeader(Request("tools/list", {})));
  EXPECT_FALSE(McpNameHeader(Request("tools/call", {{"name", 5}})));
}

TEST(UpstreamEra, RemovedMethodsAreAnsweredByTheGateway) {
  ModernEra era(Relaying());
  bool changed = true;
  EXPECT_EQ(era.Local(Request("ping", {}), &changed), (json::object{{"result", json::object{}}}));
  EXPECT_FALSE(changed);
  EXPECT_FALSE(era.Local(Request("tools/call", {{"name", "echo"}}), &changed));

  EXPECT_TRUE(era.Local(Request("logging/setLevel", {{"level", "warning"}}), &changed));
  json::object call = Request("tools/call", {{"name", "echo"}});
  era.Shape(call);
  const json::object& meta = call.at("params").at("_meta").as_object();
  EXPECT_EQ(meta.at("io.modelcontextprotocol/logLevel"), "warning");
  EXPECT_EQ(meta.at("io.modelcontextprotocol/protocolVersion"), "2026-07-28");
  EXPECT_EQ(meta.at("io.modelcontextprotocol/clientInfo").at("name"), "custody-gateway");
  // The gateway declares what it relays to its clients, as at initialize (never roots).
  const json::object& caps = meta.at("io.modelcontextprotocol/clientCapabilities").as_object();
  EXPECT_TRUE(caps.contains("sampling"));
  EXPECT_TRUE(caps.contains("elicitation"));
  EXPECT_FALSE(caps.contains("roots"));

  auto bad = era.Local(Request("resources/subscribe", {}), &changed);
  ASSERT_TRUE(bad.has_value());
  EXPECT_EQ(bad->at("error").at("code"), -32602);
  EXPECT_FALSE(changed);
}

TEST(UpstreamEra, SubscriptionsBecomeTheListenFilter) {
  ModernEra era(Relaying());
  std::set<std::string, std::less<>> caps{"tools", "tools.listChanged", "resources",
                                          "resources.subscribe"};
  auto listen = era.ListenRequest(9, caps);
  ASSERT_TRUE(listen.has_value());
  EXPECT_EQ(listen->at("method"), "subscriptions/listen");
  const json::object& filter = listen->at("params").at("notifications").as_object();
  EXPECT_EQ(filter.at("toolsListChanged"), true);
  EXPECT_FALSE(filter.contains("resourceSubscriptions"));
  EXPECT_FALSE(filter.contains("promptsListChanged"));  // not declared by the server

  bool changed = false;
  ASSERT_TRUE(era.Local(Request("resources/subscribe", {{"uri", "memo://one"}}), &changed));
  EXPECT_TRUE(changed);
  ASSERT_TRUE(era.Local(Request("resources/subscribe", {{"uri", "memo://one"}}), &changed));
  listen = era.ListenRequest(10, caps);
  EXPECT_EQ(listen->at("params").at("notifications").at("resourceSubscriptions"),
            json::parse(R"(["memo://one"])"));
  // Two subscriptions, one unsubscribe: still subscribed, nothing changed.
  ASSERT_TRUE(era.Local(Request("resources/unsubscribe", {{"uri", "memo://one"}}), &changed));
  EXPECT_FALSE(changed);
  ASSERT_TRUE(era.Local(Request("resources/unsubscribe", {{"uri", "memo://one"}}), &changed));
  EXPECT_TRUE(changed);
  EXPECT_FALSE(era.ListenRequest(11, {"resources", "resources.subscribe"}).has_value());

  json::object ack = json::parse(R"({"jsonrpc":"2.0","method":
      "notifications/subscriptions/acknowledged","params":{"notifications":{}}})")
                         .as_object();
  EXPECT_FALSE(ModernEra::Inbound(ack));
  json::object updated = json::parse(R"({"jsonrpc":"2.0","method":"notifications/resources/updated",
      "params":{"uri":"memo://one","_meta":{"io.modelcontextprotocol/subscriptionId":10}}})")
                             .as_object();
  EXPECT_TRUE(ModernEra::Inbound(updated));
  EXPECT_EQ(updated.at("params"), json::parse(R"({"uri":"memo://one"})"));
}

TEST(UpstreamEra, InputRequiredBecomesRequestsThenARetry) {
  ModernEra era(Relaying());
  json::object sent = Request("tools/call", {{"name", "ask"}, {"arguments", json::object{}}});
  auto step = era.OnAnswer(
      7, sent,
      InputRequired(json::object{{"who", json::object{{"method", "elicitation/create"},
                                                      {"params", json::object{{"message", "?"}}}}},
                                 {"model", json::object{{"method", "sampling/createMessage"}}}},
                    "opaque-1"));
  ASSERT_EQ(step.kind, ModernEra::Step::kAsk);
  ASSERT_EQ(step.asks.size(), 2u);
  EXPECT_EQ(era.open_rounds(), 1u);
  json::value first = step.asks[0].at("id"), second = step.asks[1].at("id");
  EXPECT_NE(first, second);
  EXPECT_TRUE(first.as_string().starts_with("custody-input-"));

  // An id that is none of the gateway's asks is not taken.
  EXPECT_FALSE(era.OnRespond(json::value("custody-input-999"), {{"result", {}}}).has_value());
  EXPECT_FALSE(era.OnRespond(json::value(5), {{"result", {}}}).has_value());

  auto wait = era.OnRespond(first, {{"result", {{"action", "accept"}}}});
  ASSERT_TRUE(wait.has_value());
  EXPECT_EQ(wait->kind, ModernEra::Step::kWait);
  auto retry = era.OnRespond(second, {{"result", {{"model", "m"}}}});
  ASSERT_TRUE(retry.has_value());
  ASSERT_EQ(retry->kind, ModernEra::Step::kRetry);
  EXPECT_EQ(retry->call, 7);
  const json::object& params = retry->request.at("params").as_object();
  EXPECT_EQ(params.at("requestState"), "opaque-1");
  EXPECT_EQ(params.at("name"), "ask");
  const json::object& responses = params.at("inputResponses").as_object();
  EXPECT_EQ(responses.at("who").at("action"), "accept");
  EXPECT_EQ(responses.at("model").at("model"), "m");
  // An answer given twice is not taken twice.
  EXPECT_FALSE(era.OnRespond(second, {{"result", {}}}).has_value());

  // The final answer ends the round.
  auto done = era.OnAnswer(7, retry->request,
                           {{"result", {{"resultType", "complete"}, {"content", json::array{}}}}});
  EXPECT_EQ(done.kind, ModernEra::Step::kFinal);
  EXPECT_EQ(era.open_rounds(), 0u);
}

TEST(UpstreamEra, AClientThatCannotAnswerFailsTheRequestWithMissingCapability) {
  ModernEra era(Relaying());
  auto step = era.OnAnswer(
      4, Request("tools/call", {{"name", "sample"}}),
      InputRequired(json::object{{"m", json::object{{"method", "sampling/createMessage"}}}},
                    nullptr));
  ASSERT_EQ(step.kind, ModernEra::Step::kAsk);
  auto failed = era.OnRespond(
      step.asks[0].at("id"),
      {{"error", {{"code", -32601}, {"message", "the client did not declare sampling"}}}});
  ASSERT_TRUE(failed.has_value());
  ASSERT_EQ(failed->kind, ModernEra::Step::kFinal);
  const json::object& error = failed->answer.at("error").as_object();
  EXPECT_EQ(error.at("code"), -32021);
  EXPECT_EQ(error.at("data").at("requiredCapabilities"), json::parse(R"({"sampling":{}})"));
  EXPECT_EQ(era.open_rounds(), 0u);
}

TEST(UpstreamEra, EndlessOrEmptyInputRequestsEndTheRequest) {
  ModernEra era(Relaying());
  json::object sent = Request("tools/call", {{"name", "loop"}});
  json::object ask =
      InputRequired(json::object{{"k", json::object{{"method", "roots/list"}}}}, "s");
  for (int i = 0; i < kMaxInputRounds; ++i) {
    auto step = era.OnAnswer(1, sent, ask);
    ASSERT_EQ(step.kind, ModernEra::Step::kAsk) << i;
    auto retry = era.OnRespond(step.asks[0].at("id"), {{"result", {{"roots", json::array{}}}}});
    ASSERT_EQ(retry->kind, ModernEra::Step::kRetry);
    sent = retry->request;
  }
  auto over = era.OnAnswer(1, sent, ask);
  EXPECT_EQ(over.kind, ModernEra::Step::kFinal);
  EXPECT_EQ(over.answer.at("error").at("code"), -32603);

  auto empty = era.OnAnswer(2, sent, InputRequired(json::object{}, "s"));
  EXPECT_EQ(empty.kind, ModernEra::Step::kFinal);
  EXPECT_EQ(era.open_rounds(), 0u);

  // A request that ends (cancelled, timed out) forgets its asks.
  auto step = era.OnAnswer(3, sent, ask);
  era.Forget(3);
  EXPECT_FALSE(era.OnRespond(step.asks[0].at("id"), {{"result", {}}}).has_value());
}

TEST(UpstreamEra, DeliverHandsARoundToTheRelayOrFailsWithoutOne) {
  ModernEra era(Relaying());
  json::object ask =
      InputRequired(json::object{{"a", json::object{{"method", "roots/list"}}},
                                 {"b", json::object{{"method", "sampling/createMessage"}}}},
                    "s");
  std::vector<std::string> seen;
  UpstreamOptions relay;
  relay.on_request = [&](const json::object& r, int64_t related) {
    seen.push_back(std::string(r.at("inputKey").as_string()) + "@" + std::to_string(related));
  };
  relay.on_requests_end = [&](int64_t related) {
    seen.push_back("end@" + std::to_string(related));
  };
  auto step = ModernEra::Deliver(era.OnAnswer(5, Request("tools/call", {}), ask), relay);
  EXPECT_EQ(step.kind, ModernEra::Step::kWait);
  EXPECT_EQ(seen, (std::vector<std::string>{"a@5", "b@5", "end@5"}));

  auto none =
      ModernEra::Deliver(era.OnAnswer(6, Request("tools/call", {}), ask), UpstreamOptions{});
  EXPECT_EQ(none.kind, ModernEra::Step::kFinal);
  EXPECT_EQ(none.answer.at("error").at("code"), -32603);
}

}  // namespace
}  // namespace custody::mcp

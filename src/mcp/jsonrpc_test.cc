#include "mcp/jsonrpc.h"

#include <gtest/gtest.h>

namespace custody::mcp {
namespace {

struct Parsed {
  bool ok;
  Message msg;
  RpcError error;
  json::value id;
};
Parsed Parse(std::string_view text) {
  Parsed p;
  p.ok = ParseMessage(text, &p.msg, &p.error, &p.id);
  return p;
}

TEST(JsonRpcTest, ClassifiesRequestsNotificationsAndResponses) {
  auto r = Parse(R"({"jsonrpc":"2.0","id":7,"method":"tools/list","params":{"cursor":"x"}})");
  ASSERT_TRUE(r.ok) << r.error.message;
  EXPECT_EQ(r.msg.kind, MessageKind::kRequest);
  EXPECT_EQ(r.msg.method, "tools/list");
  EXPECT_EQ(r.msg.id, json::value(7));
  EXPECT_EQ(r.msg.params().at("cursor"), json::value("x"));

  auto n = Parse(R"({"jsonrpc":"2.0","method":"notifications/initialized"})");
  ASSERT_TRUE(n.ok);
  EXPECT_EQ(n.msg.kind, MessageKind::kNotification);
  EXPECT_TRUE(n.msg.params().empty());

  auto s = Parse(R"({"jsonrpc":"2.0","id":"a","result":{}})");
  ASSERT_TRUE(s.ok);
  EXPECT_EQ(s.msg.kind, MessageKind::kResponse);
  EXPECT_EQ(s.msg.id, json::value("a"));
}

TEST(JsonRpcTest, RefusesMalformedMessagesWithTheRightCodes) {
  auto bad = Parse("{not json");
  EXPECT_FALSE(bad.ok);
  EXPECT_EQ(bad.error.code, kParseError);

  auto batch = Parse(R"([{"jsonrpc":"2.0","id":1,"method":"ping"}])");
  EXPECT_FALSE(batch.ok);
  EXPECT_EQ(batch.error.code, kInvalidRequest);
  EXPECT_NE(batch.error.message.find("batch"), std::string::npos);

  for (const char* text : {
           R"({"id":1,"method":"ping"})",                            // no jsonrpc
           R"({"jsonrpc":"1.0","id":1,"method":"ping"})",            // wrong version
           R"({"jsonrpc":"2.0","id":null,"method":"ping"})",         // null id
           R"({"jsonrpc":"2.0","id":1.5,"method":"ping"})",          // fractional id
           R"({"jsonrpc":"2.0","id":1,"method":""})",                // empty method
           R"({"jsonrpc":"2.0","id":1,"method":"x","params":[1]})",  // positional params
           R"({"jsonrpc":"2.0","id":1})",                            // neither result nor error
           R"({"jsonrpc":"2.0","id":1,"result":{},"error":{}})",     // both
           R"("ping")",
       }) {
    auto p = Parse(text);
    EXPECT_FALSE(p.ok) << text;
    EXPECT_EQ(p.error.code, kInvalidRequest) << text;
  }
  // The id of a malformed request is still reported, so the error can answer it.
  auto p = Parse(R"({"jsonrpc":"2.0","id":9,"method":"x","params":"no"})");
  EXPECT_EQ(p.id, json::value(9));
}

// Boost.JSON reads a number too large for a double as infinity and writes it back as
// "Infinity", which is not JSON: a message with one must be refused as a parse error (answering
// its id), not forwarded upstream as invalid JSON. Found by the jsonrpc fuzzer.
TEST(JsonRpcTest, RefusesNumbersOutOfRangeAsParseErrors) {
  for (const char* text : {
           R"({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"arguments":{"n":1e400}}})",
           R"({"jsonrpc":"2.0","id":3,"error":{"code":-333333331.03e32000,"message":"m"}})",
           R"({"jsonrpc":"2.0","id":3,"result":[[{"deep":[-1e999]}]]})",
       }) {
    auto p = Parse(text);
    EXPECT_FALSE(p.ok) << text;
    EXPECT_EQ(p.error.code, kParseError) << text;
    EXPECT_NE(p.error.message.find("out of range"), std::string::npos) << p.error.message;
    EXPECT_EQ(p.id, json::value(3)) << text;
  }
  // Large but finite numbers still pass.
  auto ok = Parse(R"({"jsonrpc":"2.0","id":4,"method":"x","params":{"n":1e308,"m":-5e-324}})");
  EXPECT_TRUE(ok.ok) << ok.error.message;
}

TEST(JsonRpcTest, BuildsResultsAndErrors) {
  EXPECT_EQ(ResultText(json::value(1), json::object{}), R"({"jsonrpc":"2.0","id":1,"result":{}})");
  EXPECT_EQ(ErrorText(json::value("x"), kMethodNotFound, "nope"),
            R"({"jsonrpc":"2.0","id":"x","error":{"code":-32601,"message":"nope"}})");
  EXPECT_EQ(
      ErrorText(nullptr, kDenied, "no", json::object{{"reason", "r"}}),
      R"({"jsonrpc":"2.0","id":null,"error":{"code":-32001,"message":"no","data":{"reason":"r"}}})");
  EXPECT_EQ(JsonRpcCodeFor(StatusCode::kInvalidArgument), kInvalidParams);
  EXPECT_EQ(JsonRpcCodeFor(StatusCode::kPermissionDenied), kDenied);
  EXPECT_EQ(JsonRpcCodeFor(StatusCode::kUnavailable), kUnavailable);
  EXPECT_EQ(JsonRpcCodeFor(StatusCode::kInternal), kInternalError);
}

}  // namespace
}  // namespace custody::mcp

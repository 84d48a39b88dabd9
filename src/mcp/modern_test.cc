#include "mcp/modern.h"

#include <gtest/gtest.h>

#include "http/http.h"

namespace custody::mcp {
namespace {

Message Parse(const std::string& text) {
  Message m;
  RpcError e;
  json::value id;
  EXPECT_TRUE(ParseMessage(text, &m, &e, &id)) << e.message;
  return m;
}

std::string Call(std::string_view version, std::string_view name) {
  return std::string(R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":")") +
         std::string(name) + R"(","_meta":{"io.modelcontextprotocol/protocolVersion":")" +
         std::string(version) + R"(","io.modelcontextprotocol/clientCapabilities":{}}}})";
}

http::Request Headers(std::initializer_list<std::pair<const char*, const char*>> h) {
  http::Request r;
  for (auto [k, v] : h) r.headers.Set(k, v);
  return r;
}

TEST(Modern, TheBodyDecidesTheEra) {
  EXPECT_TRUE(ClaimsModern(Parse(Call("2026-07-28", "x"))));
  EXPECT_FALSE(ClaimsModern(Parse(R"({"jsonrpc":"2.0","id":1,"method":"tools/list"})")));
  // No claim, but a modern header: the request lacks its _meta.
  auto r = CheckLegacyHeader(Headers({{"mcp-protocol-version", "2026-07-28"}}));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->code, kInvalidParams);
  EXPECT_EQ(r->http_status, 400);
  EXPECT_FALSE(CheckLegacyHeader(Headers({{"mcp-protocol-version", "2025-11-25"}})).has_value());
}

TEST(Modern, TheLadderRefusesInTheSuitesOrder) {
  ModernRequest out;
  const auto ok = Headers({{"mcp-protocol-version", "2026-07-28"},
                           {"mcp-method", "tools/call"},
                           {"mcp-name", "  echo  "}});
  EXPECT_FALSE(CheckModern(ok, Parse(Call("2026-07-28", "echo")), &out).has_value());
  EXPECT_EQ(out.version, "2026-07-28");
  EXPECT_TRUE(out.client_info.is_null());

  // Header and body disagree on the version: -32020 before the version is judged.
  auto both = CheckModern(Headers({{"mcp-protocol-version", "2026-07-28"}}),
                          Parse(Call("v999", "echo")), &out);
  ASSERT_TRUE(both.has_value());
  EXPECT_EQ(both->code, kHeaderMismatch);
  auto unsupported =
      CheckModern(Headers({{"mcp-protocol-version", "v999"}}), Parse(Call("v999", "echo")), &out);
  ASSERT_TRUE(unsupported.has_value());
  EXPECT_EQ(unsupported->code, kUnsupportedVersion);
  EXPECT_EQ(unsupported->data.at("requested"), "v999");
  EXPECT_EQ(unsupported->data.at("supported").at(0), "2026-07-28");

  auto missing_name =
      CheckModern(Headers({{"mcp-protocol-version", "2026-07-28"}, {"mcp-method", "tools/call"}}),
                  Parse(Call("2026-07-28", "echo")), &out);
  ASSERT_TRUE(missing_name.has_value());
  EXPECT_EQ(missing_name->code, kHeaderMismatch);
  auto wrong_case =
      CheckModern(Headers({{"mcp-protocol-version", "2026-07-28"}, {"mcp-method", "TOOLS/CALL"}}),
                  Parse(Call("2026-07-28", "echo")), &out);
  ASSERT_TRUE(wrong_case.has_value());
  EXPECT_EQ(wrong_case->code, kHeaderMismatch);

  auto no_caps =
      CheckModern(ok,
                  Parse(R"({"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{)"
                        R"("io.modelcontextprotocol/protocolVersion":"2026-07-28"}}})"),
                  &out);
  ASSERT_TRUE(no_caps.has_value());
  EXPECT_EQ(no_caps->code, kInvalidParams);
}

TEST(Modern, NamesMayComeBase64Encoded) {
  EXPECT_EQ(HeaderValue("=?base64?w6ljaG8=?="),
            "\xC3\xA9"
            "cho");
  EXPECT_EQ(HeaderValue("  plain \t"), "plain");
  EXPECT_FALSE(HeaderValue("=?base64?!!!?=").has_value());
  EXPECT_FALSE(HeaderValue("caf\xC3\xA9").has_value()) << "non-ASCII must be sent encoded";
}

TEST(Modern, ResultsGetTheRevisionsShape) {
  json::object info{{"name", "custody-gateway/x"}, {"version", "0.1.0"}};
  json::value list =
      json::parse(ModernBody(R"({"jsonrpc":"2.0","id":1,"result":{"tools":[]}})", true, info));
  EXPECT_EQ(list.at("result").at("resultType"), "complete");
  EXPECT_EQ(list.at("result").at("ttlMs"), 0);
  EXPECT_EQ(list.at("result").at("cacheScope"), "private");
  EXPECT_EQ(list.at("result").at("_meta").at("io.modelcontextprotocol/serverInfo"), info);
  // An upstream's own -32601 stays as it was.
  json::value gone = json::parse(
      ModernBody(R"({"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"x"}})", false, info));
  int status = 200;
  ModernBody(R"({"jsonrpc":"2.0","id":1,"error":{"code":-32021,"message":"x"}})", false, info,
             &status);
  EXPECT_EQ(status, 400);  // a missing client capability is the revision's HTTP 400
  status = 200;
  ModernBody(R"({"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"x"}})", false, info,
             &status);
  EXPECT_EQ(status, 200);
  EXPECT_EQ(gone.at("error").at("code"), -32601);
  // -32002 is retired: the gateway's own (ErrorText marks it) becomes -32000, a 2025-era
  // server's resource-not-found the revision's -32602.
  json::value down = json::parse(ModernBody(ErrorText(1, kUnavailable, "down"), false, info));
  EXPECT_EQ(down.at("error").at("code"), -32000);
  EXPECT_EQ(down.at("error").at("data").at("reason").as_string(), kUnavailableReason);
  json::value missing = json::parse(
      ModernBody(R"({"jsonrpc":"2.0","id":1,"error":{"code":-32002,"message":"no such resource"}})",
                 false, info));
  EXPECT_EQ(missing.at("error").at("code"), kInvalidParams);
  EXPECT_TRUE(ServedInModern("tools/call"));
  EXPECT_FALSE(ServedInModern("ping"));
  EXPECT_FALSE(ServedInModern("tools/frobnicate"));
  EXPECT_EQ(LogSeverity("warning"), 3);
  EXPECT_EQ(LogSeverity("loud"), -1);
}

}  // namespace
}  // namespace custody::mcp

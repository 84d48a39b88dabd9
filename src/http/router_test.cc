#include <gtest/gtest.h>

#include "http/http.h"

namespace custody::http {
namespace {

Route R(std::string method, std::string pattern) {
  Route r;
  r.method = std::move(method);
  r.pattern = std::move(pattern);
  r.handler = [](Request&, Responder respond) { respond(Response::Text(200, "x")); };
  return r;
}

TEST(Router, MatchesLiteralsAndParams) {
  Router router;
  ASSERT_TRUE(router.Add(R("GET", "/v1/ledger/entries/{index}")).ok());
  ASSERT_TRUE(router.Add(R("POST", "/v1/ledger/entries")).ok());
  ASSERT_TRUE(router.Add(R("GET", "/v1/ledger/entries/latest")).ok());
  auto m = router.Find("GET", "/v1/ledger/entries/42");
  ASSERT_NE(m.route, nullptr);
  EXPECT_EQ(m.route->pattern, "/v1/ledger/entries/{index}");
  EXPECT_EQ(m.params.at("index"), "42");
  // Literal segments win over parameters.
  m = router.Find("GET", "/v1/ledger/entries/latest");
  ASSERT_NE(m.route, nullptr);
  EXPECT_EQ(m.route->pattern, "/v1/ledger/entries/latest");
  m = router.Find("POST", "/v1/ledger/entries");
  ASSERT_NE(m.route, nullptr);
}

TEST(Router, DistinguishesNotFoundFromMethodNotAllowed) {
  Router router;
  ASSERT_TRUE(router.Add(R("POST", "/v1/ledger/entries")).ok());
  auto m = router.Find("GET", "/v1/ledger/entries");
  EXPECT_EQ(m.route, nullptr);
  EXPECT_TRUE(m.path_matched);
  EXPECT_EQ(m.allowed, std::vector<std::string>{"POST"});
  m = router.Find("GET", "/nope");
  EXPECT_EQ(m.route, nullptr);
  EXPECT_FALSE(m.path_matched);
  // An empty segment does not match a parameter.
  ASSERT_TRUE(router.Add(R("GET", "/a/{x}")).ok());
  EXPECT_EQ(router.Find("GET", "/a/").route, nullptr);
  EXPECT_EQ(router.Find("GET", "/a/b/c").route, nullptr);
}

TEST(Router, RestParameterTakesTheRemainder) {
  Router router;
  ASSERT_TRUE(router.Add(R("GET", "/tlog/tile/{path...}")).ok());
  auto m = router.Find("GET", "/tlog/tile/0/x001/234.p/7");
  ASSERT_NE(m.route, nullptr);
  EXPECT_EQ(m.params.at("path"), "0/x001/234.p/7");
  EXPECT_EQ(router.Find("GET", "/tlog/tile").route, nullptr);
  EXPECT_EQ(router.Find("GET", "/tlog/tile/").route, nullptr);
  // HEAD is served by GET routes.
  EXPECT_NE(router.Find("HEAD", "/tlog/tile/1/2").route, nullptr);
}

TEST(Router, RejectsBadPatternsAndDuplicates) {
  Router router;
  EXPECT_EQ(router.Add(R("GET", "nope")).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(router.Add(R("GET", "/a/{b")).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(router.Add(R("GET", "/a/{rest...}/c")).code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(router.Add(R("GET", "/a")).ok());
  EXPECT_EQ(router.Add(R("GET", "/a")).code(), StatusCode::kAlreadyExists);
}

TEST(Errors, OneShapeAndOneMapping) {
  EXPECT_EQ(HttpStatusFor(StatusCode::kInvalidArgument), 400);
  EXPECT_EQ(HttpStatusFor(StatusCode::kUnauthenticated), 401);
  EXPECT_EQ(HttpStatusFor(StatusCode::kPermissionDenied), 403);
  EXPECT_EQ(HttpStatusFor(StatusCode::kNotFound), 404);
  EXPECT_EQ(HttpStatusFor(StatusCode::kAlreadyExists), 409);
  EXPECT_EQ(HttpStatusFor(StatusCode::kUnavailable), 503);
  EXPECT_EQ(HttpStatusFor(StatusCode::kDataLoss), 500);
  Response r = ErrorResponse(InvalidArgumentError("bad \"x\""), "rid-1");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body,
            R"({"error":{"code":"invalid_argument","message":"bad \"x\"","request_id":"rid-1"}})");
  EXPECT_EQ(r.headers.Get("Content-Type").value_or(""), "application/json");
  Response u = ErrorResponse(UnauthenticatedError("no"), "r");
  EXPECT_EQ(u.status, 401);
  EXPECT_TRUE(
      u.headers.Get("www-authenticate").value_or("").starts_with("Bearer realm=\"custody\""));
  EXPECT_EQ(ErrorResponse(InvalidArgumentError("big"), "r", 413).status, 413);
}

TEST(Request, QueryParamsAndRequestIds) {
  Request r;
  r.query = "index=3&size=10&name=a%20b+c&flag";
  EXPECT_EQ(r.QueryParam("index").value_or(""), "3");
  EXPECT_EQ(r.QueryParam("size").value_or(""), "10");
  EXPECT_EQ(r.QueryParam("name").value_or(""), "a b c");
  EXPECT_EQ(r.QueryParam("flag").value_or("x"), "");
  EXPECT_FALSE(r.QueryParam("missing").has_value());
  EXPECT_TRUE(IsSaneRequestId("abc-123_x.y:z"));
  EXPECT_FALSE(IsSaneRequestId(""));
  EXPECT_FALSE(IsSaneRequestId("a b"));
  EXPECT_FALSE(IsSaneRequestId("a\r\nSet-Cookie: x"));
  EXPECT_FALSE(IsSaneRequestId(std::string(129, 'a')));
}

TEST(Sse, FormatsMultiLineData) {
  EXPECT_EQ(FormatSseEvent("", "hi", ""), "data: hi\n\n");
  EXPECT_EQ(FormatSseEvent("tick", "a\nb", "7"), "event: tick\nid: 7\ndata: a\ndata: b\n\n");
}

}  // namespace
}  // namespace custody::http

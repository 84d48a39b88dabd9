#include "mcp/admission.h"

#include <gtest/gtest.h>

#include "http/http.h"
#include "mcp/sse_sink.h"

namespace custody::mcp {
namespace {

TEST(AdmissionTest, NegotiatesProtocolVersions) {
  EXPECT_EQ(NegotiateProtocolVersion("2025-11-25"), "2025-11-25");
  EXPECT_EQ(NegotiateProtocolVersion("2025-06-18"), "2025-06-18");
  EXPECT_EQ(NegotiateProtocolVersion("2025-03-26"), "2025-03-26");
  EXPECT_EQ(NegotiateProtocolVersion("2024-11-05"), "2025-11-25");
  EXPECT_EQ(NegotiateProtocolVersion(""), "2025-11-25");
}

TEST(AdmissionTest, AcceptsOnlyLoopbackOrListedOrigins) {
  for (const char* o :
       {"http://localhost", "http://localhost:3000", "https://127.0.0.1:8443", "http://[::1]:80"}) {
    EXPECT_TRUE(OriginAllowed(o, {})) << o;
  }
  for (const char* o : {"https://evil.example", "http://localhost.evil.example",
                        "http://127.0.0.1.nip.io", "http://localhost:80x", "null", ""}) {
    EXPECT_FALSE(OriginAllowed(o, {})) << o;
  }
  EXPECT_TRUE(OriginAllowed("https://app.example", {"https://app.example"}));
}

TEST(AdmissionTest, MetadataUrlNamesTheEndpointAndDistrustsOddHosts) {
  http::Request req;
  req.headers.Set("host", "gw.example:8443");
  EXPECT_EQ(ResourceMetadataUrl(req, true, "files"),
            "https://gw.example:8443/.well-known/oauth-protected-resource/mcp/files");
  EXPECT_EQ(ResourceMetadataUrl(req, false, ""),
            "http://gw.example:8443/.well-known/oauth-protected-resource/mcp");
  // A Host that could inject into the WWW-Authenticate header is not echoed.
  for (const char* host : {"evil.example\"\r\nx: y", "a b", "", "x/y"}) {
    http::Request odd;
    if (*host) odd.headers.Set("host", host);
    EXPECT_EQ(ResourceMetadataUrl(odd, false, ""),
              "http://127.0.0.1/.well-known/oauth-protected-resource/mcp")
        << host;
  }
}

TEST(AdmissionTest, AStepUpChallengeNamesTheScopesToAskForAndTheMetadata) {
  const std::vector<std::string> held{"files/read", "github/*"};
  // A 2025-era client asks for exactly the challenged set: it keeps what it holds.
  EXPECT_EQ(StepUpScopes("files/write", held, /*modern=*/false),
            (std::vector<std::string>{"files/read", "files/write", "github/*"}));
  // A 2026-07-28 client adds what it holds itself (SEP-2350): only what the call needs.
  EXPECT_EQ(StepUpScopes("files/write", held, /*modern=*/true),
            (std::vector<std::string>{"files/write"}));
  EXPECT_EQ(
      InsufficientScopeChallenge({"files/read", "files/write"},
                                 "https://gw.example/.well-known/oauth-protected-resource/mcp"),
      "Bearer error=\"insufficient_scope\", scope=\"files/read files/write\", "
      "resource_metadata=\"https://gw.example/.well-known/oauth-protected-resource/mcp\"");
  // What cannot be a scope-token cannot break out of the quoted-string.
  EXPECT_EQ(InsufficientScopeChallenge({"a\"b", "c d", "", "ok"}, "u"),
            "Bearer error=\"insufficient_scope\", scope=\"ok\", resource_metadata=\"u\"");
}

TEST(AdmissionTest, TheScopesOfAnEndpointAreItsServersAndGoInTheFirst401) {
  EXPECT_EQ(ScopesSupported("files", {"files", "github"}), (std::vector<std::string>{"files/*"}));
  EXPECT_EQ(ScopesSupported("", {"github", "files"}),
            (std::vector<std::string>{"files/*", "github/*"}));
  // A name that cannot be a scope-token (or would not be one server's prefix) is left out.
  EXPECT_EQ(ScopesSupported("", {"a b", "x\"y", "p/q", "ok"}), (std::vector<std::string>{"ok/*"}));
  EXPECT_TRUE(ScopesSupported("", {}).empty());

  EXPECT_EQ(UnauthorizedChallenge("https://gw.example/m", {"files/*", "github/*"}, false),
            "Bearer resource_metadata=\"https://gw.example/m\", scope=\"files/* github/*\"");
  EXPECT_EQ(UnauthorizedChallenge("https://gw.example/m", {"files/*"}, true),
            "Bearer resource_metadata=\"https://gw.example/m\", scope=\"files/*\", "
            "error=\"invalid_token\"");
  EXPECT_EQ(UnauthorizedChallenge("u", {}, false), "Bearer resource_metadata=\"u\"");
}

TEST(AdmissionTest, BearerTokenIsTheOneParser) {
  http::Headers h;
  EXPECT_FALSE(http::BearerToken(h).has_value());
  h.Set("authorization", "Basic dXNlcjpwYXNz");
  EXPECT_FALSE(http::BearerToken(h).has_value());
  h.Set("authorization", "bEaReR abc.def");
  EXPECT_EQ(http::BearerToken(h).value_or("-"), "abc.def");
  h.Set("authorization", "Bearer ");
  EXPECT_EQ(http::BearerToken(h).value_or("-"), "");
  h.Set("authorization", "Bearer");
  EXPECT_FALSE(http::BearerToken(h).has_value());
}

// A writer that records what the sink sends.
class RecordingWriter final : public http::SseWriter {
 public:
  bool Send(std::string_view event, std::string_view data, std::string_view) override {
    if (closed_ || gone) return false;
    sent.push_back(std::string(event) + ":" + std::string(data));
    return true;
  }
  bool Comment(std::string_view) override { return !closed_; }
  void Close() override { closed_ = true; }
  bool closed() const override { return closed_ || gone; }
  std::vector<std::string> sent;
  bool gone = false;

 private:
  bool closed_ = false;
};

TEST(SseSinkTest, QueuesUntilAttachedAndFinishesWithTheLastMessage) {
  SseSink sink;
  EXPECT_TRUE(sink.open());
  EXPECT_TRUE(sink.Send("one"));
  EXPECT_TRUE(sink.Send("two", /*last=*/true));
  EXPECT_FALSE(sink.Send("three")) << "nothing after the last message";
  EXPECT_FALSE(sink.open());
  auto w = std::make_shared<RecordingWriter>();
  sink.Attach(w);
  EXPECT_EQ(w->sent, (std::vector<std::string>{"message:one", "message:two"}));
  EXPECT_TRUE(w->closed()) << "a finished stream closes its writer once attached";
}

TEST(SseSinkTest, APeerThatWentAwayClosesTheStream) {
  SseSink sink;
  auto w = std::make_shared<RecordingWriter>();
  sink.Attach(w);
  EXPECT_TRUE(sink.Send("hello"));
  w->gone = true;
  EXPECT_FALSE(sink.open());
  EXPECT_FALSE(sink.Send("lost"));
  sink.Close();
  EXPECT_EQ(w->sent, (std::vector<std::string>{"message:hello"}));
}

}  // namespace
}  // namespace custody::mcp

// The MCP session registry alone: what a client sees of its sessions (refusals and their
// reasons, the per-session cap, idle expiry) and what containment, DELETE and a client's
// cancellation hand back to be closed and cancelled.
#include "mcp/session_registry.h"

#include <gtest/gtest.h>

#include <thread>

#include "mcp/sse_sink.h"

namespace custody::mcp {
namespace {

using namespace std::chrono_literals;

McpSession Bound(const std::string& server, const std::string& sid) {
  return McpSession{server, sid, "agent-" + sid, "2025-11-25", nullptr, {}, {}};
}

// The registry never calls an upstream; it hands back which one to cancel.
Upstream* const kFiles = reinterpret_cast<Upstream*>(0x1000);

TEST(SessionRegistryTest, ASessionServesOnlyItsEndpointAndItsCustodySession) {
  SessionRegistry r(1h, 64);
  ASSERT_TRUE(r.Open("m1", Bound("files", "sA")).ok());
  EXPECT_TRUE(r.Use("m1", "files", "sA").ok());
  Status other_endpoint = r.Use("m1", "", "sA");
  EXPECT_EQ(other_endpoint.code(), StatusCode::kNotFound);
  EXPECT_EQ(other_endpoint.message(), "unknown or ended MCP session");
  Status other_session = r.Use("m1", "files", "sB");
  EXPECT_EQ(other_session.code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(other_session.message(), "this MCP session belongs to another Custody session");
  EXPECT_EQ(r.Use("nope", "files", "sA").code(), StatusCode::kNotFound);
  EXPECT_EQ(r.size(), 1u);
}

TEST(SessionRegistryTest, TheCapIsPerCustodySessionAndFreedByDelete) {
  SessionRegistry r(1h, 2);
  ASSERT_TRUE(r.Open("m1", Bound("", "sA")).ok());
  ASSERT_TRUE(r.Open("m2", Bound("", "sA")).ok());
  Status third = r.Open("m3", Bound("", "sA"));
  EXPECT_EQ(third.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(third.message().find("mcp.max_sessions_per_custody_session"), std::string::npos);
  EXPECT_TRUE(r.Open("m4", Bound("", "sB")).ok()) << "another Custody session has its own cap";
  std::shared_ptr<SseSink> stream;
  std::vector<UpstreamCancel> cancels;
  ASSERT_TRUE(r.Close("m1", "", "sA", "bye", &stream, &cancels).ok());
  EXPECT_TRUE(r.Open("m3", Bound("", "sA")).ok());
}

TEST(SessionRegistryTest, AnIdleSessionExpiresUnlessItStreamsOrHasACallRunning) {
  SessionRegistry r(20ms, 64);
  ASSERT_TRUE(r.Open("idle", Bound("files", "sA")).ok());
  ASSERT_TRUE(r.Open("streaming", Bound("files", "sA")).ok());
  ASSERT_TRUE(r.Open("calling", Bound("files", "sA")).ok());
  std::shared_ptr<SseSink> old;
  auto stream = std::make_shared<SseSink>();
  ASSERT_TRUE(r.AttachStream("streaming", "files", "sA", stream, &old).ok());
  EXPECT_EQ(old, nullptr);
  ASSERT_TRUE(r.BeginCall({"calling", "1"}, kFiles, "sA"));
  std::this_thread::sleep_for(40ms);
  Status expired = r.Use("idle", "files", "sA");
  EXPECT_EQ(expired.code(), StatusCode::kNotFound);
  EXPECT_EQ(expired.message(), "the MCP session expired after 20 ms without use; initialize again");
  EXPECT_TRUE(r.Use("streaming", "files", "sA").ok());
  EXPECT_TRUE(r.Use("calling", "files", "sA").ok());
}

TEST(SessionRegistryTest, ContainmentEndsTheSessionsClosesStreamsAndCancelsCalls) {
  SessionRegistry r(1h, 64);
  ASSERT_TRUE(r.Open("a1", Bound("files", "sA")).ok());
  ASSERT_TRUE(r.Open("a2", Bound("", "sA")).ok());
  ASSERT_TRUE(r.Open("b1", Bound("files", "sB")).ok());
  std::shared_ptr<SseSink> old;
  ASSERT_TRUE(r.AttachStream("a1", "files", "sA", std::make_shared<SseSink>(), &old).ok());
  ASSERT_TRUE(r.BeginCall({"a1", "1"}, kFiles, "sA"));
  EXPECT_EQ(r.Forwarded({"a1", "1"}, 7), "");
  ASSERT_TRUE(r.BeginCall({"a2", "\"x\""}, kFiles, "sA"));  // not forwarded yet
  ASSERT_TRUE(r.BeginCall({"b1", "1"}, kFiles, "sB"));
  EXPECT_EQ(r.Forwarded({"b1", "1"}, 8), "");

  SessionRegistry::Ended e = r.EndSessionsOf({"sA"}, "contained", "the session was contained");
  EXPECT_EQ(e.sessions, 2u);
  EXPECT_EQ(e.streams.size(), 1u);
  ASSERT_EQ(e.cancels.size(), 1u);
  EXPECT_EQ(e.cancels[0], (UpstreamCancel{kFiles, 7}));
  // The call not yet forwarded is cancelled as soon as its upstream id is known.
  EXPECT_EQ(r.Forwarded({"a2", "\"x\""}, 9), "the session was contained");

  Status gone = r.Use("a1", "files", "sA");
  EXPECT_EQ(gone.code(), StatusCode::kNotFound);
  EXPECT_EQ(gone.message(), "contained");
  EXPECT_TRUE(r.EndedByGateway("a1"));
  EXPECT_FALSE(r.EndedByGateway("b1"));
  EXPECT_FALSE(r.EndedByGateway("unknown"));
  EXPECT_FALSE(r.BeginCall({"a1", "2"}, kFiles, "sA")) << "nothing goes upstream once ended";
  EXPECT_TRUE(r.Use("b1", "files", "sB").ok()) << "the other Custody session is untouched";
  EXPECT_EQ(r.size(), 1u);
}

TEST(SessionRegistryTest, ARevokedTokenFindsItsSessionGoneWithTheReason) {
  SessionRegistry r(1h, 64);
  ASSERT_TRUE(r.Open("live", Bound("", "sA")).ok());
  ASSERT_TRUE(r.Open("other", Bound("", "sB")).ok());
  ASSERT_TRUE(r.Open("contained", Bound("", "sC")).ok());
  r.EndSessionsOf({"sC"}, "contained by a tripwire", "x");
  auto live = r.EndedWithRevokedSession("live", "sA");
  ASSERT_TRUE(live.has_value());
  EXPECT_NE(live->find("revoked (contained)"), std::string::npos) << *live;
  EXPECT_EQ(r.Use("live", "", "sA").code(), StatusCode::kNotFound) << "and it ended";
  EXPECT_EQ(r.EndedWithRevokedSession("contained", "sC").value_or(""), "contained by a tripwire");
  EXPECT_FALSE(r.EndedWithRevokedSession("other", "sA").has_value()) << "not that session's";
  EXPECT_FALSE(r.EndedWithRevokedSession("unknown", "sA").has_value());
  EXPECT_TRUE(r.Use("other", "", "sB").ok());
}

TEST(SessionRegistryTest, AClientCancellationWaitsForTheUpstreamIdIfNeeded) {
  SessionRegistry r(1h, 64);
  ASSERT_TRUE(r.Open("m", Bound("files", "sA")).ok());
  ASSERT_TRUE(r.BeginCall({"m", "1"}, kFiles, "sA"));
  EXPECT_FALSE(r.CancelCall({"m", "1"}, "cancelled by the client").has_value());
  EXPECT_EQ(r.Forwarded({"m", "1"}, 5), "cancelled by the client");
  ASSERT_TRUE(r.BeginCall({"m", "2"}, kFiles, "sA"));
  EXPECT_EQ(r.Forwarded({"m", "2"}, 6), "");
  EXPECT_EQ(r.CancelCall({"m", "2"}, "cancelled by the client"), (UpstreamCancel{kFiles, 6}));
  r.EndCall({"m", "2"});
  EXPECT_FALSE(r.CancelCall({"m", "2"}, "late").has_value()) << "an answered call is not cancelled";
  EXPECT_EQ(r.Forwarded({"m", "3"}, 7), "") << "unknown call";
}

TEST(SessionRegistryTest, DeleteHandsBackTheStreamAndTheCallsToCancel) {
  SessionRegistry r(1h, 64);
  ASSERT_TRUE(r.Open("m", Bound("files", "sA")).ok());
  auto stream = std::make_shared<SseSink>();
  std::shared_ptr<SseSink> old;
  ASSERT_TRUE(r.AttachStream("m", "files", "sA", stream, &old).ok());
  ASSERT_TRUE(r.BeginCall({"m", "1"}, kFiles, "sA"));
  EXPECT_EQ(r.Forwarded({"m", "1"}, 3), "");
  std::shared_ptr<SseSink> got;
  std::vector<UpstreamCancel> cancels;
  EXPECT_EQ(r.Close("m", "files", "sB", "bye", &got, &cancels).code(),
            StatusCode::kPermissionDenied);
  ASSERT_TRUE(r.Close("m", "files", "sA", "bye", &got, &cancels).ok());
  EXPECT_EQ(got, stream);
  EXPECT_EQ(cancels, (std::vector<UpstreamCancel>{{kFiles, 3}}));
  EXPECT_FALSE(r.EndedByGateway("m")) << "the client ended it";
  EXPECT_EQ(r.Use("m", "files", "sA").message(), "unknown or ended MCP session");
}

TEST(SessionRegistryTest, ListChangedReachesTheStreamsThatSeeTheServer) {
  SessionRegistry r(1h, 64);
  ASSERT_TRUE(r.Open("files", Bound("files", "sA")).ok());
  ASSERT_TRUE(r.Open("git", Bound("git", "sA")).ok());
  ASSERT_TRUE(r.Open("all", Bound("", "sA")).ok());
  ASSERT_TRUE(r.Open("quiet", Bound("files", "sA")).ok());  // no stream open
  std::shared_ptr<SseSink> old;
  auto f = std::make_shared<SseSink>(), g = std::make_shared<SseSink>(),
       a = std::make_shared<SseSink>();
  ASSERT_TRUE(r.AttachStream("files", "files", "sA", f, &old).ok());
  ASSERT_TRUE(r.AttachStream("git", "git", "sA", g, &old).ok());
  ASSERT_TRUE(r.AttachStream("all", "", "sA", a, &old).ok());
  auto seeing = r.StreamsSeeing("files");
  EXPECT_EQ(seeing.size(), 2u);
  EXPECT_NE(std::find(seeing.begin(), seeing.end(), f), seeing.end());
  EXPECT_NE(std::find(seeing.begin(), seeing.end(), a), seeing.end());
  EXPECT_EQ(r.TakeStreams().size(), 3u);
  EXPECT_TRUE(r.StreamsSeeing("files").empty());
}

}  // namespace
}  // namespace custody::mcp

#include "mcp/relay.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

namespace custody::mcp {
namespace {

struct Sink : RelayTarget {
  bool Deliver(const std::string& m) override {
    sent.push_back(m);
    return true;
  }
  std::vector<std::string> sent;
};

TEST(Relay, RelatedStreamWinsOverSessions) {
  Relay relay;
  auto a = std::make_shared<Sink>(), b = std::make_shared<Sink>();
  uint64_t ca = relay.Begin("s", "session-a", a);
  uint64_t cb = relay.Begin("s", "session-b", b);
  relay.Forwarded(ca, 11);
  relay.Forwarded(cb, 12);
  auto r = relay.Find("s", 12);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->call, cb);
  EXPECT_EQ(r->mcp_session, "session-b");
  EXPECT_EQ(r->target.get(), b.get());
  // Without a related id, two sessions in flight: nobody is asked.
  auto ambiguous = relay.Find("s", 0);
  ASSERT_FALSE(ambiguous.ok());
  EXPECT_EQ(ambiguous.status().code(), StatusCode::kFailedPrecondition);
  // A related id of another server does not route here.
  EXPECT_EQ(relay.Find("other", 12).status().code(), StatusCode::kNotFound);
  // One of a request that is no call (a tools/list, say) goes nowhere, even with one session.
  relay.End(cb);
  EXPECT_EQ(relay.Find("s", 99).status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(relay.Find("s", 0).ok());
}

TEST(Relay, OneSessionInFlightGetsItsLatestCall) {
  Relay relay;
  auto first = std::make_shared<Sink>(), second = std::make_shared<Sink>();
  relay.Begin("s", "session-a", first);
  uint64_t latest = relay.Begin("s", "session-a", second);
  auto other = std::make_shared<Sink>();
  relay.Begin("t", "session-b", other);  // another server's call does not make it ambiguous
  auto r = relay.Find("s", 0);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->call, latest);
  EXPECT_EQ(r->target.get(), second.get());
  EXPECT_EQ(relay.Find("u", 0).status().code(), StatusCode::kNotFound);
}

TEST(Relay, OnlyTheSessionAskedMayAnswerAndOnlyOnce) {
  Relay relay;
  auto a = std::make_shared<Sink>();
  uint64_t call = relay.Begin("s", "session-a", a);
  auto route = relay.Find("s", 0);
  ASSERT_TRUE(route.ok());
  RelayedRequest req = relay.Add(*route, "7", "elicitation/create", R"({"message":"hi"})");
  EXPECT_EQ(req.id.rfind("custody-relay-", 0), 0u);
  EXPECT_EQ(relay.waiting(), 1u);
  // Another session answering it is refused, and the request still waits.
  EXPECT_EQ(relay.Take("session-b", req.id).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(relay.Take("session-a", "custody-relay-999").status().code(), StatusCode::kNotFound);
  auto taken = relay.Take("session-a", req.id);
  ASSERT_TRUE(taken.ok());
  EXPECT_EQ(taken->upstream_id, "7");
  EXPECT_EQ(taken->method, "elicitation/create");
  EXPECT_EQ(taken->call, call);
  EXPECT_EQ(relay.Take("session-a", req.id).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(relay.waiting(), 0u);
}

TEST(Relay, EndingACallReturnsWhatItsClientNeverAnswered) {
  Relay relay;
  auto a = std::make_shared<Sink>();
  uint64_t call = relay.Begin("s", "session-a", a);
  auto route = relay.Find("s", 0);
  ASSERT_TRUE(route.ok());
  RelayedRequest one = relay.Add(*route, "1", "sampling/createMessage", "");
  RelayedRequest two = relay.Add(*route, "\"x\"", "elicitation/create", "");
  ASSERT_TRUE(relay.Take("session-a", one.id).ok());
  auto left = relay.End(call);
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].id, two.id);
  EXPECT_EQ(relay.calls(), 0u);
  EXPECT_EQ(relay.waiting(), 0u);
  EXPECT_EQ(relay.Find("s", 0).status().code(), StatusCode::kNotFound);
  // A call whose target is gone routes nowhere.
  relay.Begin("s", "session-a", std::weak_ptr<RelayTarget>());
  EXPECT_EQ(relay.Find("s", 0).status().code(), StatusCode::kNotFound);
}

TEST(Relay, AModernServersKeyIsKeptWhileFreeInTheCall) {
  Relay relay;
  auto a = std::make_shared<Sink>(), b = std::make_shared<Sink>();
  uint64_t ca = relay.Begin("s", "stateless:1", a);
  uint64_t cb = relay.Begin("s", "stateless:2", b);
  relay.Forwarded(ca, 1);
  relay.Forwarded(cb, 2);
  auto ra = relay.Find("s", 1), rb = relay.Find("s", 2);
  ASSERT_TRUE(ra.ok() && rb.ok());
  RelayedRequest first = relay.Add(*ra, "\"custody-input-1\"", "elicitation/create", "", "name");
  EXPECT_EQ(first.key, "name");
  EXPECT_NE(first.id, "name");  // the client's answer on a 2025 stream still uses the id
  // The same key again in that call: the gateway's id instead. Another call may use it.
  RelayedRequest again = relay.Add(*ra, "\"custody-input-2\"", "roots/list", "", "name");
  EXPECT_EQ(again.key, again.id);
  EXPECT_EQ(relay.Add(*rb, "\"custody-input-3\"", "roots/list", "", "name").key, "name");
  // No key, or one that looks like the gateway's: the gateway's id.
  RelayedRequest plain = relay.Add(*rb, "7", "sampling/createMessage", "");
  EXPECT_EQ(plain.key, plain.id);
  RelayedRequest lookalike = relay.Add(*rb, "8", "roots/list", "", "custody-relay-1");
  EXPECT_EQ(lookalike.key, lookalike.id);
}

TEST(Relay, AMessageThatOutranForwardedWaitsForItsCall) {
  Relay relay;
  auto parked = std::make_shared<Sink>(), fresh = std::make_shared<Sink>();
  // Another session's call, recorded, waits on the same server (say, parked for a retry).
  uint64_t old_call = relay.Begin("s", "stateless:1", parked);
  relay.Forwarded(old_call, 3);
  // A new call is sent; the server answers (related 9) before Forwarded(…, 9) is recorded.
  uint64_t new_call = relay.Begin("s", "stateless:2", fresh);
  std::thread late([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    relay.Forwarded(new_call, 9);
  });
  auto r = relay.Find("s", 9);
  late.join();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->call, new_call);
  // Never recorded: only the calls whose id is unknown are candidates, not the parked one.
  uint64_t silent = relay.Begin("s", "stateless:3", fresh);
  auto unknown = relay.Find("s", 42);
  ASSERT_TRUE(unknown.ok()) << unknown.status().ToString();
  EXPECT_EQ(unknown->call, silent);
  relay.Forwarded(silent, 10);
  EXPECT_EQ(relay.Find("s", 42).status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace custody::mcp

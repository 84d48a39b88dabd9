// AttributionService on two nodes of one deployment: two services, each with its own identity
// and attribution stores (own connections, caches and in-memory state) on one PostgreSQL
// database, and the deployment's one ledger (testkit::World::AddNode). A session calling through
// both nodes sees the sum in context.counters, so a tripwire fires on the same call as on one
// node. And a database of before the counters keeps its sessions' counts. Runs against the
// throwaway cluster of store/testing/pg_cluster.h.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <filesystem>
#include <limits>
#include <thread>
#include <vector>

#include "attribution/attribution_service.h"
#include "attribution/testing/world.h"
#include "common/mutex.h"
#include "identity/token_service.h"
#include "ledger/ledger.h"
#include "store/postgres/pg_attribution_store.h"
#include "store/postgres/pg_db.h"
#include "store/postgres/pg_identity_store.h"
#include "store/session_read_and_count.h"
#include "store/testing/pg_cluster.h"

namespace custody::attribution {
namespace {

namespace json = boost::json;

class MultiNodeTest : public ::testing::Test {
 protected:
  // `policies` are published before the second node starts: a node reads the active policy set
  // when it starts (spreading a publication to running nodes is not this test's subject).
  void Start(const std::string& policies, const std::string& entities = "") {
    auto cluster = store::testing::PgCluster::Shared();
    ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
    auto url = (*cluster)->NewDatabase();
    ASSERT_TRUE(url.ok()) << url.status().ToString();
    url_ = *url;
    auto w = testkit::World::Create(
        std::filesystem::temp_directory_path() /
            ("custody-multinode-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name()),
        {}, store::Backend::kPostgres, *url);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    w_ = std::move(*w);
    ASSERT_TRUE(
        w_->Register("planner", {"*"}, {"assert_initiator"}, identity::Environment::kProd).ok());
    auto published = w_->svc->PublishPolicies(policies, entities, "admin");
    ASSERT_TRUE(published.ok()) << published.status().ToString();
    auto b = w_->AddNode();
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    nodes_ = {w_->svc.get(), (*b)->svc.get()};
  }
  std::string Root() {
    auto s = w_->Root("planner");
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? s->token : "";
  }
  AuthorizeResult Call(int node, const std::string& token, const std::string& server,
                       const std::string& tool) {
    auto r = nodes_[node]->AuthorizeSync(testkit::World::Call(token, server, tool));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : AuthorizeResult{};
  }
  json::object Counters(const AuthorizeResult& r) {
    auto leaf = w_->ledger->GetEntry(r.ledger_index);
    EXPECT_TRUE(leaf.ok()) << leaf.status().ToString();
    if (!leaf.ok()) return {};
    return json::parse(leaf->data).at("context").at("counters").as_object();
  }

  // The shared counters of `sid` as the database holds them.
  store::SessionCounts Stored(const std::string& sid) {
    auto c = w_->store->SessionCounters(sid, 0);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? *c : store::SessionCounts{};
  }

  std::string url_;
  std::unique_ptr<testkit::World> w_;
  std::vector<AttributionService*> nodes_;  // node 0 is the World's own service
};

TEST_F(MultiNodeTest, TripwireOnCallsFiresOnTheSameCallAsOnOneNode) {
  Start(R"(@id("ok") permit(principal, action, resource);
    @id("too-many-calls") @contain("session")
    forbid(principal, action, resource) when { context.counters.calls > 3 };)");
  // The call that trips the wire (1-based), with the calls made at `node_of(i)`.
  auto trip_at = [&](auto node_of) {
    std::string token = Root();
    for (int i = 0; i < 8; ++i) {
      AuthorizeResult r = Call(node_of(i), token, "github", "list_issues");
      if (!r.contained.empty()) return i + 1;
      EXPECT_TRUE(r.allowed) << "call " << i + 1 << ": " << r.message;
    }
    return 0;
  };
  const int one_node = trip_at([](int) { return 0; });
  EXPECT_EQ(one_node, 5);
  // Alternating nodes: each node alone has seen at most half of the calls.
  EXPECT_EQ(trip_at([](int i) { return i % 2; }), one_node);
  EXPECT_EQ(trip_at([](int i) { return 1 - i % 2; }), one_node);
}

TEST_F(MultiNodeTest, EveryCounterAndFirstUseAreTheSumOfBothNodes) {
  Start(R"(@id("github") permit(principal, action, resource in Server::"github");)");
  std::string token = Root();
  struct Step {
    int node;
    const char* server;
    const char* tool;
    bool allowed;
    // What the call's policy saw.
    int64_t calls, denials, distinct_tools;
    bool first_use;
  };
  const Step steps[] = {
      {0, "github", "a", true, 0, 0, 0, true},
      {1, "github", "a", true, 1, 0, 1, false},  // used through the other node
      {0, "slack", "x", false, 2, 0, 1, true},
      {1, "github", "b", true, 3, 1, 2, true},  // the denial at the other node counts
      {0, "github", "b", true, 4, 1, 3, false},
      {1, "slack", "x", false, 5, 1, 3, true},  // a denied call is no use of the target
      {0, "github", "a", true, 6, 2, 3, false},
  };
  int first_uses = 0;
  for (size_t i = 0; i < std::size(steps); ++i) {
    const Step& s = steps[i];
    SCOPED_TRACE("call " + std::to_string(i + 1) + " at node " + std::to_string(s.node));
    AuthorizeResult r = Call(s.node, token, s.server, s.tool);
    EXPECT_EQ(r.allowed, s.allowed) << r.message;
    json::object c = Counters(r);
    EXPECT_EQ(c.at("calls").as_int64(), s.calls);
    EXPECT_EQ(c.at("denials").as_int64(), s.denials);
    EXPECT_EQ(c.at("distinct_tools").as_int64(), s.distinct_tools);
    EXPECT_EQ(c.at("calls_last_minute").as_int64(), s.calls);
    EXPECT_EQ(c.at("first_use").as_bool(), s.first_use);
    if (std::string(s.server) == "github" && s.tool == std::string("a") &&
        c.at("first_use").as_bool())
      ++first_uses;
  }
  EXPECT_EQ(first_uses, 1) << "github/a is used for the first time once, across both nodes";
  // A dry run at either node sees the same counters, and counts nothing.
  auto verified = w_->tokens->VerifyAccessToken(token, "");
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  for (AttributionService* node : nodes_) {
    auto would = node->WouldAllow(verified->session, "call_tool", Target{"github", "c", "", ""});
    ASSERT_TRUE(would.ok()) << would.status().ToString();
    EXPECT_TRUE(*would);
  }
  AuthorizeResult last = Call(1, token, "github", "c");
  EXPECT_EQ(Counters(last).at("calls").as_int64(), 7);
}

// Calls of one session racing at both nodes: each sees the calls counted before it, so exactly
// the first `kLimit` are allowed (in-memory counters, per node and read apart from the count,
// let through up to all of them).
TEST_F(MultiNodeTest, RacingCallsAtBothNodesAreAllowedExactlyUpToTheLimit) {
  constexpr int kLimit = 12, kThreadsPerNode = 2, kCallsPerThread = 10;
  Start("permit(principal, action, resource) when { context.counters.calls < 12 };");
  std::string token = Root();
  std::atomic<int> allowed{0}, failed{0};
  std::vector<std::thread> threads;
  for (int node = 0; node < 2; ++node) {
    for (int t = 0; t < kThreadsPerNode; ++t) {
      threads.emplace_back([&, node] {
        for (int i = 0; i < kCallsPerThread; ++i) {
          auto r = nodes_[node]->AuthorizeSync(testkit::World::Call(token, "github", "x"));
          if (!r.ok()) {
            ++failed;
          } else if (r->allowed) {
            ++allowed;
          }
        }
      });
    }
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(allowed.load(), kLimit);
}

// A database of before the counters (attribution schema version 1) keeps its sessions' counts:
// the step that adds the counters fills them from the action index.
// Calls of one session at both nodes at once, each counted once: every call saw a different
// number of calls before it, 0 to N-1, and the stored count is N (the session read and the count
// are one statement on PostgreSQL: SessionReadAndCount).
TEST_F(MultiNodeTest, ConcurrentCallsAtBothNodesAreEachCountedOnce) {
  constexpr int kThreadsPerNode = 3, kCallsPerThread = 15;
  constexpr int kCalls = 2 * kThreadsPerNode * kCallsPerThread;
  Start("permit(principal, action, resource);");
  std::string token = Root();
  std::vector<AuthorizeResult> results(kCalls);
  std::vector<std::thread> threads;
  for (int node = 0; node < 2; ++node) {
    for (int t = 0; t < kThreadsPerNode; ++t) {
      const int first = (node * kThreadsPerNode + t) * kCallsPerThread;
      threads.emplace_back([&, node, first] {
        for (int i = 0; i < kCallsPerThread; ++i) {
          auto r = nodes_[node]->AuthorizeSync(
              testkit::World::Call(token, "github", "t" + std::to_string(i % 4)));
          if (r.ok()) results[first + i] = std::move(*r);
        }
      });
    }
  }
  for (auto& t : threads) t.join();
  std::vector<int64_t> seen;
  for (const AuthorizeResult& r : results) {
    ASSERT_TRUE(r.allowed) << r.message;
    seen.push_back(Counters(r).at("calls").as_int64());
  }
  std::sort(seen.begin(), seen.end());
  for (int i = 0; i < kCalls; ++i) ASSERT_EQ(seen[i], i) << "call numbers seen: each once";
  store::SessionCounts stored = Stored(results[0].sid);
  EXPECT_EQ(stored.calls, kCalls);
  EXPECT_EQ(stored.denials, 0);
  EXPECT_EQ(stored.distinct_targets, 4);
  EXPECT_EQ(Counters(Call(1, token, "github", "t0")).at("calls").as_int64(), kCalls);
}

// Only a call that goes on to a decision is counted, as when the count came after the session
// read: a token of an unknown session, of a revoked credential, or naming another subject is
// refused without counting; a revoked session's call is still decided (refused), recorded and
// counted.
TEST_F(MultiNodeTest, ARefusedCallIsCountedOnlyWhenItIsDecided) {
  Start("permit(principal, action, resource);");
  for (int node = 0; node < 2; ++node) {
    SCOPED_TRACE("node " + std::to_string(node));
    auto s = w_->Root("planner");
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    EXPECT_EQ(Counters(Call(node, s->token, "github", "a")).at("calls").as_int64(), 0);

    // Another subject (AuthZEN): refused before the decision, not counted.
    AuthorizeRequest other = testkit::World::Call(s->token, "github", "a");
    other.expected_subject = "someone-else";
    EXPECT_EQ(nodes_[node]->AuthorizeSync(other).status().code(), StatusCode::kPermissionDenied);
    EXPECT_EQ(Stored(s->sid).calls, 1);
    // The agent's name as subject: decided and counted.
    other.expected_subject = "planner";
    auto named = nodes_[node]->AuthorizeSync(other);
    ASSERT_TRUE(named.ok()) << named.status().ToString();
    EXPECT_EQ(Counters(*named).at("calls").as_int64(), 1);

    // A revoked session: refused before policy, recorded, and counted.
    ASSERT_TRUE(w_->tokens->RevokeSession(s->sid, "test", "admin").ok());
    AuthorizeResult revoked = Call(node, s->token, "github", "a");
    EXPECT_FALSE(revoked.allowed);
    EXPECT_TRUE(revoked.session_revoked);
    EXPECT_EQ(revoked.reasons, std::vector<std::string>{"custody:session_revoked"});
    EXPECT_GT(revoked.ledger_index, 0u);
    EXPECT_EQ(Counters(revoked).at("calls").as_int64(), 2);
    EXPECT_EQ(Stored(s->sid).calls, 3);

    // A revoked credential (the token's jti): unauthenticated, not counted.
    auto t = w_->Root("planner");
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    auto verified = w_->tokens->VerifyAccessToken(t->token, "");
    ASSERT_TRUE(verified.ok()) << verified.status().ToString();
    ASSERT_TRUE(w_->tokens->RevokeCredential(verified->jti, "admin").ok());
    EXPECT_EQ(
        nodes_[node]->AuthorizeSync(testkit::World::Call(t->token, "github", "a")).status().code(),
        StatusCode::kUnauthenticated);
    EXPECT_EQ(Stored(t->sid).calls, 0);

    // An unknown session (its row gone): unauthenticated, not counted, no counter row made.
    auto u = w_->Root("planner");
    ASSERT_TRUE(u.ok()) << u.status().ToString();
    auto db = store::PgDb::Open(url_);
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    ASSERT_TRUE(
        (*db)
            ->Exec("forget session", "DELETE FROM sessions WHERE sid = $1", {store::PgText(u->sid)})
            .ok());
    EXPECT_EQ(
        nodes_[node]->AuthorizeSync(testkit::World::Call(u->token, "github", "a")).status().code(),
        StatusCode::kUnauthenticated);
    auto rows = (*db)->Exec("read counters", "SELECT 1 FROM session_counters WHERE sid = $1",
                            {store::PgText(u->sid)});
    ASSERT_TRUE(rows.ok()) << rows.status().ToString();
    EXPECT_EQ(rows->size(), 0);
  }
}

// The PostgreSQL statement counts exactly when CountsCall holds for the row it read (the
// conditions are written twice: in SQL, and in C++ for the two-call default).
TEST_F(MultiNodeTest, TheOneStatementCountsExactlyWhenCountsCallHolds) {
  Start("permit(principal, action, resource);");
  auto* pg = dynamic_cast<store::PgIdentityStore*>(w_->ids.get());
  ASSERT_NE(pg, nullptr);
  auto s = w_->Root("planner");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  auto verified = w_->tokens->VerifyAccessToken(s->token, "");
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  const identity::Session session = verified->session;
  const std::string jti = verified->jti;
  auto call = [&](int64_t expired_at, const std::string& subject) {
    return store::CallToCount{"github/a", 1000, 0, expired_at, subject};
  };
  struct Case {
    const char* what;
    std::string jti;
    store::CallToCount call;
    bool counted;
  };
  const int64_t live = session.expires_at - 1, expired = session.expires_at;
  std::vector<Case> cases = {
      {"live", jti, call(live, ""), true},
      {"another jti", jti + "x", call(live, ""), false},
      {"expired", jti, call(expired, ""), false},
      {"another subject", jti, call(live, "nobody"), false},
      {"the agent as subject", jti, call(live, session.agent), true},
      {"the instance as subject", jti, call(live, session.instance), true},
  };
  int64_t calls = 0;
  auto check = [&](const Case& c) {
    SCOPED_TRACE(c.what);
    auto r = pg->GetSessionForTokenAndCountCall(s->sid, c.jti, c.call);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(store::CountsCall(r->read, c.jti, c.call), c.counted);
    ASSERT_EQ(r->counts.has_value(), c.counted);
    if (c.counted) EXPECT_EQ(r->counts->calls, calls++);
    EXPECT_EQ(Stored(s->sid).calls, calls);
    EXPECT_EQ(r->read.session.sid, s->sid);
    ASSERT_TRUE(r->read.agent.has_value());
    EXPECT_EQ(r->read.agent->name, "planner");
  };
  for (const Case& c : cases) check(c);
  // A revoked session's call is counted even when expired; a revoked jti's is not.
  ASSERT_TRUE(w_->tokens->RevokeCredential(jti, "admin").ok());
  check({"revoked jti", jti, call(live, ""), false});
  ASSERT_TRUE(w_->tokens->RevokeSession(s->sid, "test", "admin").ok());
  check({"revoked session", jti, call(expired, ""), true});
  check({"revoked session, another subject", jti, call(live, "nobody"), false});
  // No session: NotFound, nothing counted.
  EXPECT_EQ(pg->GetSessionForTokenAndCountCall("no-such-sid", jti, call(live, "")).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(Stored("no-such-sid").calls, 0);
}

// Counted reads sent together in one statement answer as one at a time would: sessions in any
// order (the statement counts in sid order), a session twice, a call not counted, a session
// that is absent (NotFound for that call alone).
TEST_F(MultiNodeTest, CountedReadsSentTogetherAnswerAsOneAtATime) {
  Start("permit(principal, action, resource);");
  auto* pg = dynamic_cast<store::PgIdentityStore*>(w_->ids.get());
  ASSERT_NE(pg, nullptr);
  auto a = w_->Root("planner");
  auto b = w_->Root("planner");
  ASSERT_TRUE(a.ok() && b.ok());
  auto va = w_->tokens->VerifyAccessToken(a->token, "");
  auto vb = w_->tokens->VerifyAccessToken(b->token, "");
  ASSERT_TRUE(va.ok() && vb.ok());
  // The two sessions may have been made in different seconds: live for both, expired for both.
  const int64_t live = std::min(va->session.expires_at, vb->session.expires_at) - 1;
  const int64_t expired = std::max(va->session.expires_at, vb->session.expires_at);
  auto req = [&](const std::string& sid, const std::string& jti, const std::string& target,
                 int64_t expired_at, const std::string& subject) {
    return store::PgIdentityStore::CountRequest{
        sid, jti, store::CallToCount{target, 1000, 0, expired_at, subject}};
  };
  // The later sid first, so that the statement's order differs from the one asked.
  const bool a_first = a->sid < b->sid;
  const std::string& later = a_first ? b->sid : a->sid;
  const std::string& later_jti = a_first ? vb->jti : va->jti;
  const std::string& earlier = a_first ? a->sid : b->sid;
  const std::string& earlier_jti = a_first ? va->jti : vb->jti;
  std::vector<store::PgIdentityStore::CountRequest> calls = {
      req(later, later_jti, "github/x", live, ""),            // later: call 0
      req(earlier, earlier_jti, "github/x", live, ""),        // earlier: call 0
      req(earlier, earlier_jti + "x", "github/y", live, ""),  // another jti: not counted
      req("no-such-sid", earlier_jti, "github/x", live, ""),  // NotFound
      req(later, later_jti, "github/y", live, "planner"),     // later: call 1, a new target
      req(earlier, earlier_jti, "github/x", expired, ""),     // expired: not counted
      req(earlier, earlier_jti, "github/z", live, ""),        // earlier: call 1, a new target
      req(later, later_jti, "github/x", live, "nobody"),      // another subject: not counted
  };
  struct Want {
    bool found;
    bool counted;
    int64_t calls;
    int64_t targets;
  };
  const std::vector<Want> want = {{true, true, 0, 0},   {true, true, 0, 0}, {true, false, 0, 0},
                                  {false, false, 0, 0}, {true, true, 1, 1}, {true, false, 0, 0},
                                  {true, true, 1, 1},   {true, false, 0, 0}};
  auto got = pg->GetSessionsForTokensAndCountCalls(calls);
  ASSERT_EQ(got.size(), calls.size());
  for (size_t i = 0; i < calls.size(); ++i) {
    SCOPED_TRACE("call " + std::to_string(i));
    if (!want[i].found) {
      EXPECT_EQ(got[i].status().code(), StatusCode::kNotFound);
      continue;
    }
    ASSERT_TRUE(got[i].ok()) << got[i].status().ToString();
    EXPECT_EQ(got[i]->read.session.sid, calls[i].sid);
    EXPECT_EQ(store::CountsCall(got[i]->read, calls[i].jti, calls[i].call), want[i].counted);
    ASSERT_EQ(got[i]->counts.has_value(), want[i].counted);
    if (!want[i].counted) continue;
    EXPECT_EQ(got[i]->counts->calls, want[i].calls);
    EXPECT_EQ(got[i]->counts->distinct_targets, want[i].targets);
    EXPECT_EQ(got[i]->counts->calls_since, want[i].calls);
  }
  for (const std::string& sid : {earlier, later}) {
    store::SessionCounts stored = Stored(sid);
    EXPECT_EQ(stored.calls, 2) << sid;
    EXPECT_EQ(stored.distinct_targets, 2) << sid;
  }
  EXPECT_EQ(Stored("no-such-sid").calls, 0);
}

// Many threads at two nodes counting calls of a few sessions at once: the calls that wait go
// together in one statement (some do, with more threads than statements in flight), and every
// session's calls are still counted once each, in one order: each call saw a different number
// of calls before it (0 to N-1), the same number in the last minute, and the stored counts are
// exact.
TEST_F(MultiNodeTest, ConcurrentCountedReadsGoTogetherAndStayExact) {
  constexpr int kSessions = 4, kThreadsPerNode = 8, kCallsPerThread = 40;
  constexpr int kCalls = 2 * kThreadsPerNode * kCallsPerThread;
  Start("permit(principal, action, resource);");
  auto* a = dynamic_cast<store::PgIdentityStore*>(w_->ids.get());
  ASSERT_NE(a, nullptr);
  auto b = store::PgIdentityStore::Open(url_);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  std::vector<store::PgIdentityStore*> nodes = {a, b->get()};
  std::vector<std::string> sids, jtis;
  // Live for every session: on a busy machine they may be made in different seconds.
  int64_t live = std::numeric_limits<int64_t>::max();
  for (int i = 0; i < kSessions; ++i) {
    auto s = w_->Root("planner");
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    auto v = w_->tokens->VerifyAccessToken(s->token, "");
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    sids.push_back(s->sid);
    jtis.push_back(v->jti);
    live = std::min(live, v->session.expires_at - 1);
  }
  const uint64_t batched_before = a->batched_counts() + (*b)->batched_counts();
  std::vector<std::vector<int64_t>> seen(kSessions);
  std::vector<std::string> errors;
  Mutex mu;
  std::vector<std::thread> threads;
  for (int node = 0; node < 2; ++node) {
    for (int t = 0; t < kThreadsPerNode; ++t) {
      threads.emplace_back([&, node, t] {
        for (int i = 0; i < kCallsPerThread; ++i) {
          const int s = (t + i) % kSessions;
          store::CallToCount call{"github/t" + std::to_string(i % 3), 1000 + i, 0, live, ""};
          auto r = nodes[node]->GetSessionForTokenAndCountCall(sids[s], jtis[s], call);
          MutexLock lock(mu);
          if (!r.ok()) {
            errors.push_back(r.status().ToString());
          } else if (!r->counts.has_value()) {
            errors.push_back("a call was not counted");
          } else if (r->read.session.sid != sids[s]) {
            errors.push_back("another session's row");
          } else {
            if (r->counts->calls_since != r->counts->calls) errors.push_back("calls_since");
            seen[s].push_back(r->counts->calls);
          }
        }
      });
    }
  }
  for (auto& t : threads) t.join();
  EXPECT_TRUE(errors.empty()) << errors.size() << " errors, the first: " << errors[0];
  int64_t total = 0;
  for (int s = 0; s < kSessions; ++s) {
    std::sort(seen[s].begin(), seen[s].end());
    for (size_t i = 0; i < seen[s].size(); ++i) {
      ASSERT_EQ(seen[s][i], static_cast<int64_t>(i)) << "session " << s << ": each number once";
    }
    store::SessionCounts stored = Stored(sids[s]);
    EXPECT_EQ(stored.calls, static_cast<int64_t>(seen[s].size()));
    EXPECT_EQ(stored.distinct_targets, 3);
    total += stored.calls;
  }
  EXPECT_EQ(total, kCalls);
  EXPECT_GT(a->batched_counts() + (*b)->batched_counts(), batched_before)
      << "no call waited for a statement in flight: nothing was sent together";
}

// An approval asked for at one node is decided at the other and used once: of the two nodes'
// retries racing for it, exactly one runs the action, the other is asked again.
TEST_F(MultiNodeTest, AnApprovalAskedAtOneNodeIsDecidedAtTheOtherAndUsedOnce) {
  Start(R"(@id("ok") permit(principal, action, resource);
    @id("deploys") @approval("sre") forbid(principal, action, resource == Tool::"ci/deploy");)",
        R"([{"uid": {"type": "Group", "id": "sre"}, "attrs": {}, "parents": []},
            {"uid": {"type": "User", "id": "bob"}, "attrs": {},
             "parents": [{"type": "Group", "id": "sre"}]}])");
  std::string t = Root();
  AuthorizeResult asked = Call(0, t, "ci", "deploy");
  ASSERT_TRUE(asked.approval_required);
  const std::string id = asked.approval->id;
  // The other node sees the same pending approval for the same action.
  AuthorizeResult again = Call(1, t, "ci", "deploy");
  ASSERT_TRUE(again.approval_required);
  EXPECT_EQ(again.approval->id, id);
  auto decided = nodes_[1]->DecideApproval(id, true, Approver{"bob", "test", {}}, "change 9");
  ASSERT_TRUE(decided.ok()) << decided.status().ToString();
  // Deciding it again at the first node is refused: it is no longer pending.
  EXPECT_EQ(nodes_[0]->DecideApproval(id, false, Approver{"bob", "test", {}}, "").status().code(),
            StatusCode::kFailedPrecondition);
  std::vector<AuthorizeResult> runs(2);
  std::thread a([&] { runs[0] = Call(0, t, "ci", "deploy"); });
  std::thread b([&] { runs[1] = Call(1, t, "ci", "deploy"); });
  a.join();
  b.join();
  int allowed = 0;
  for (const AuthorizeResult& r : runs) {
    if (r.allowed) {
      ++allowed;
      EXPECT_EQ(r.approval->id, id);
    } else {
      EXPECT_TRUE(r.approval_required);
      EXPECT_NE(r.approval->id, id);
    }
  }
  EXPECT_EQ(allowed, 1);
}

TEST(PgSessionCountersUpgrade, CountsOfEarlierCallsComeFromTheActionIndex) {
  auto cluster = store::testing::PgCluster::Shared();
  ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
  auto url = (*cluster)->NewDatabase();
  ASSERT_TRUE(url.ok()) << url.status().ToString();
  auto row = [](const std::string& id, const std::string& sid, const std::string& target,
                const std::string& decision, int64_t time_ms) {
    store::ActionRow r;
    r.action_id = id;
    r.decision_index = time_ms;
    r.sid = r.root_sid = sid;
    r.agent = "planner";
    r.initiator = "alice@example.com";
    r.action = "call_tool";
    r.target = target;
    r.decision = decision;
    r.time_ms = time_ms;
    return r;
  };
  {
    auto s = store::PgAttributionStore::Open(*url);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    ASSERT_TRUE((*s)->WriteActions({row("a1", "s1", "github/a", "allow", 100),
                                    row("a2", "s1", "github/b", "deny", 200),
                                    row("a3", "s1", "github/a", "allow", 300),
                                    row("a4", "s2", "github/a", "allow", 400)},
                                   {})
                    .ok());
  }
  {
    // Back to version 1: what a database written before the counters (and approvals) looks like.
    auto db = store::PgDb::Open(*url);
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    for (const char* sql :
         {"DROP TABLE approvals", "DROP FUNCTION custody_count_call", "DROP TABLE session_counters",
          "DROP TABLE session_targets", "DROP TABLE session_calls",
          "UPDATE custody_schema SET version = 1 WHERE component = 'attribution'"}) {
      auto r = (*db)->Exec("downgrade", sql);
      ASSERT_TRUE(r.ok()) << sql << ": " << r.status().ToString();
    }
  }
  auto s = store::PgAttributionStore::Open(*url);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  auto c = (*s)->SessionCounters("s1", 0);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->calls, 3);
  EXPECT_EQ(c->denials, 1);
  EXPECT_EQ(c->distinct_targets, 2);
  // The next call counts on from there; a target seen before is not new.
  auto next = (*s)->CountCall("s1", "github/b", 1000, 0);
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_EQ(next->calls, 3);
  c = (*s)->SessionCounters("s1", 0);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->calls, 4);
  EXPECT_EQ(c->distinct_targets, 2);
  c = (*s)->SessionCounters("s2", 0);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->calls, 1);
}

}  // namespace
}  // namespace custody::attribution

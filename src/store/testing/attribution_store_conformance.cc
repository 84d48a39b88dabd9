#include "store/testing/attribution_store_conformance.h"

#include <algorithm>
#include <mutex>
#include <thread>

namespace custody::store::testing {

namespace {

ActionRow Row(const std::string& id, const std::string& sid, const std::string& target,
              int64_t time_ms, const std::string& decision = "allow") {
  ActionRow r;
  r.action_id = id;
  r.decision_index = time_ms;  // distinct and increasing with time, like a ledger index
  r.sid = sid;
  r.root_sid = "root-" + sid.substr(0, 1);
  r.agent = sid == "s3" ? "worker" : "planner";
  r.initiator = sid == "s3" ? "bob@example.com" : "alice@example.com";
  r.action = target == "db:prod" ? "query" : "call_tool";
  r.target = target;
  r.decision = decision;
  r.trace_id = "t-" + id;
  r.span_id = "p-" + id;
  r.txn = "x";
  r.time_ms = time_ms;
  return r;
}

std::vector<std::string> Ids(const std::vector<ActionRow>& rows) {
  std::vector<std::string> out;
  for (const ActionRow& r : rows) out.push_back(r.action_id);
  return out;
}

using Strings = std::vector<std::string>;

TEST_P(AttributionStoreConformance, PolicySetsOneActiveNewestFirstTextKeptOnRepublish) {
  auto none = store_->ActivePolicySet();
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_FALSE(none->has_value());
  ASSERT_TRUE(
      store_->PutPolicySet({"aaa", "permit(principal,action,resource);", "[]", 10, "admin", 1})
          .ok());
  ASSERT_TRUE(
      store_->PutPolicySet({"bbb", "forbid(principal,action,resource);", "[]", 20, "ops", 2}).ok());
  auto active = store_->ActivePolicySet();
  ASSERT_TRUE(active.ok() && active->has_value());
  EXPECT_EQ((*active)->hash, "bbb");
  EXPECT_EQ((*active)->policies, "forbid(principal,action,resource);");
  EXPECT_EQ((*active)->published_by, "ops");

  // Publishing an earlier set again makes it active, with its text as first stored.
  ASSERT_TRUE(store_->PutPolicySet({"aaa", "ignored", "[{}]", 30, "admin2", 3}).ok());
  active = store_->ActivePolicySet();
  ASSERT_TRUE(active.ok() && active->has_value());
  EXPECT_EQ((*active)->hash, "aaa");
  EXPECT_EQ((*active)->policies, "permit(principal,action,resource);");
  EXPECT_EQ((*active)->entities, "[{}]");
  EXPECT_EQ((*active)->published_ms, 30);
  EXPECT_EQ((*active)->ledger_index, 3);

  auto list = store_->ListPolicySets();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].hash, "aaa");
  EXPECT_EQ((*list)[1].hash, "bbb");
  EXPECT_EQ((*list)[0].policies, "") << "listed without texts";
  EXPECT_EQ((*list)[1].published_by, "ops");

  // Any version by its hash, with its texts, whether active or not.
  auto older = store_->GetPolicySet("bbb");
  ASSERT_TRUE(older.ok() && older->has_value()) << older.status().ToString();
  EXPECT_EQ((*older)->policies, "forbid(principal,action,resource);");
  EXPECT_EQ((*older)->published_by, "ops");
  EXPECT_EQ((*older)->ledger_index, 2);
  auto unknown = store_->GetPolicySet("ccc");
  ASSERT_TRUE(unknown.ok());
  EXPECT_FALSE(unknown->has_value());
}

TEST_P(AttributionStoreConformance, ActionsAreWrittenWholeAndOutcomesFoldIntoTheirRow) {
  auto missing = store_->GetAction("nope");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());

  ASSERT_TRUE(store_->WriteActions({Row("a1", "s1", "github/list", 100)}, {}).ok());
  ActionRow outcome = Row("a1", "s1", "github/list", 100);
  outcome.outcome_index = 7;
  outcome.status = "ok";
  outcome.target = "changed";  // an outcome sets only its outcome fields on an existing row
  ActionRow orphan = Row("a2", "s1", "github/create", 200);
  orphan.outcome_index = 9;
  orphan.status = "error";
  ASSERT_TRUE(store_->WriteActions({}, {outcome, orphan}).ok());

  auto a1 = store_->GetAction("a1");
  ASSERT_TRUE(a1.ok() && a1->has_value());
  EXPECT_EQ((*a1)->outcome_index, 7);
  EXPECT_EQ((*a1)->status, "ok");
  EXPECT_EQ((*a1)->target, "github/list");
  EXPECT_EQ((*a1)->decision_index, 100);
  // An outcome whose row is missing writes the row whole.
  auto a2 = store_->GetAction("a2");
  ASSERT_TRUE(a2.ok() && a2->has_value());
  EXPECT_EQ((*a2)->target, "github/create");
  EXPECT_EQ((*a2)->status, "error");
  EXPECT_EQ((*a2)->initiator, "alice@example.com");
  // Writing a row again replaces it whole.
  ASSERT_TRUE(store_->WriteActions({Row("a1", "s1", "github/list", 100, "deny")}, {}).ok());
  a1 = store_->GetAction("a1");
  ASSERT_TRUE(a1.ok() && a1->has_value());
  EXPECT_EQ((*a1)->decision, "deny");
  EXPECT_EQ((*a1)->status, "");
  EXPECT_EQ((*a1)->outcome_index, -1);
  // Nothing to write is fine.
  EXPECT_TRUE(store_->WriteActions({}, {}).ok());
}

// A batch is written whole, however many rows it has, and an action that comes twice in one
// batch ends as its last row says.
TEST_P(AttributionStoreConformance, ALargeBatchIsWrittenWholeAndTheLastRowOfAnActionWins) {
  std::vector<ActionRow> rows;
  for (int i = 0; i < 150; ++i) {
    rows.push_back(Row("b" + std::to_string(i), "s1", "github/list", 1000 + i));
  }
  rows.push_back(Row("b7", "s1", "github/list", 2000, "deny"));
  ASSERT_TRUE(store_->WriteActions(rows, {}).ok());
  auto all = store_->ActionsOfSessions({"s1"});
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(all->size(), 150u);
  auto b7 = store_->GetAction("b7");
  ASSERT_TRUE(b7.ok() && b7->has_value());
  EXPECT_EQ((*b7)->decision, "deny");
  EXPECT_EQ((*b7)->time_ms, 2000);
}

TEST_P(AttributionStoreConformance, QueriesAnswerOldestFirst) {
  ASSERT_TRUE(
      store_
          ->WriteActions({Row("c", "s1", "github/b", 300), Row("a", "s1", "github/a", 100),
                          Row("d", "s2", "db:prod", 400, "deny"), Row("b", "s3", "github/a", 200)},
                         {})
          .ok());
  auto of = store_->ActionsOfSessions({"s2", "s1"});
  ASSERT_TRUE(of.ok());
  EXPECT_EQ(Ids(*of), (Strings{"a", "c", "d"}));
  auto none = store_->ActionsOfSessions({});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  auto agent = store_->ActionsOfAgent("planner", 300);
  ASSERT_TRUE(agent.ok());
  EXPECT_EQ(Ids(*agent), (Strings{"c", "d"}));
  auto worker = store_->ActionsOfAgent("worker", 0);
  ASSERT_TRUE(worker.ok());
  EXPECT_EQ(Ids(*worker), (Strings{"b"}));
  auto alice = store_->ActionsOfInitiator("alice@example.com");
  ASSERT_TRUE(alice.ok());
  EXPECT_EQ(Ids(*alice), (Strings{"a", "c", "d"}));
  auto span = store_->ActionBySpan("t-c", "p-c");
  ASSERT_TRUE(span.ok() && span->has_value());
  EXPECT_EQ((*span)->action_id, "c");
  auto no_span = store_->ActionBySpan("t-c", "p-a");
  ASSERT_TRUE(no_span.ok());
  EXPECT_FALSE(no_span->has_value());
}

TEST_P(AttributionStoreConformance, DistinctValuesCountsAndUsage) {
  ASSERT_TRUE(store_
                  ->WriteActions({Row("a", "s1", "github/a", 100), Row("b", "s1", "github/a", 150),
                                  Row("c", "s1", "db:prod", 200, "deny"),
                                  Row("d", "s1", "github/b", 300), Row("e", "s3", "github/a", 50)},
                                 {})
                  .ok());
  auto targets = store_->DistinctTargets();
  ASSERT_TRUE(targets.ok());
  EXPECT_EQ(*targets, (Strings{"db:prod", "github/a", "github/b"}));
  auto actions = store_->DistinctActions();
  ASSERT_TRUE(actions.ok());
  EXPECT_EQ(*actions, (Strings{"call_tool", "query"}));

  auto counts = store_->CountSession("s1", 200);
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(counts->calls, 4);
  EXPECT_EQ(counts->denials, 1);
  EXPECT_EQ(counts->distinct_targets, 3);
  EXPECT_EQ(counts->calls_since, 2);
  auto empty = store_->CountSession("nobody", 0);
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->calls, 0);
  EXPECT_EQ(empty->distinct_targets, 0);

  auto usage = store_->UsageBySession();
  ASSERT_TRUE(usage.ok());
  ASSERT_EQ(usage->size(), 4u);
  // Ordered by root session, session, target.
  EXPECT_EQ((*usage)[0].sid, "s1");
  EXPECT_EQ((*usage)[0].target, "db:prod");
  EXPECT_EQ((*usage)[0].decision, "deny");
  EXPECT_EQ((*usage)[0].count, 1);
  EXPECT_EQ((*usage)[1].target, "github/a");
  EXPECT_EQ((*usage)[1].count, 2);
  EXPECT_EQ((*usage)[1].last_ms, 150);
  EXPECT_EQ((*usage)[1].agent, "planner");
  EXPECT_EQ((*usage)[1].root_sid, "root-s");
  EXPECT_EQ((*usage)[2].target, "github/b");
  EXPECT_EQ((*usage)[3].sid, "s3");
  EXPECT_EQ((*usage)[3].initiator, "bob@example.com");
}

TEST_P(AttributionStoreConformance, FirstUseIsKept) {
  auto used = store_->HasUsed("planner", "github/a");
  ASSERT_TRUE(used.ok());
  EXPECT_FALSE(*used);
  ASSERT_TRUE(store_->MarkUsed("planner", "github/a", 10).ok());
  ASSERT_TRUE(store_->MarkUsed("planner", "github/a", 20).ok());
  used = store_->HasUsed("planner", "github/a");
  ASSERT_TRUE(used.ok());
  EXPECT_TRUE(*used);
  used = store_->HasUsed("worker", "github/a");
  ASSERT_TRUE(used.ok());
  EXPECT_FALSE(*used);
}

void ExpectCounts(const Result<SessionCounts>& got, SessionCounts want, const char* when) {
  ASSERT_TRUE(got.ok()) << when << ": " << got.status().ToString();
  EXPECT_EQ(got->calls, want.calls) << when;
  EXPECT_EQ(got->denials, want.denials) << when;
  EXPECT_EQ(got->distinct_targets, want.distinct_targets) << when;
  EXPECT_EQ(got->calls_since, want.calls_since) << when;
}

TEST_P(AttributionStoreConformance, CountCallAnswersTheCountersBeforeTheCall) {
  // {calls, denials, distinct targets, calls at or after since}, each before the call counted.
  ExpectCounts(store_->CountCall("s1", "a", 1000, 900), {0, 0, 0, 0}, "first call");
  ExpectCounts(store_->CountCall("s1", "b", 1010, 910), {1, 0, 1, 1}, "second call");
  ASSERT_TRUE(store_->CountDenial("s1").ok());
  ExpectCounts(store_->CountCall("s1", "a", 1010, 910), {2, 1, 2, 2}, "same millisecond");
  ExpectCounts(store_->CountCall("s1", "c", 1105, 1005), {3, 1, 2, 2}, "first call left window");
  ExpectCounts(store_->CountCall("s1", "c", 1111, 1011), {4, 1, 3, 1}, "two more left");
  // A clock behind the session's latest call (another node's, another thread's): the call is
  // kept at the latest time, so the calls since a moment stay a suffix of the session's calls.
  ExpectCounts(store_->CountCall("s1", "a", 1100, 1000), {5, 1, 3, 5}, "clock behind");
  ExpectCounts(store_->SessionCounters("s1", 1106), {6, 1, 3, 2}, "the late call at 1111");
  // Reading counts nothing; other sessions are apart.
  ExpectCounts(store_->SessionCounters("s1", 1106), {6, 1, 3, 2}, "read again");
  ExpectCounts(store_->SessionCounters("s2", 0), {0, 0, 0, 0}, "another session");
  ExpectCounts(store_->CountCall("s2", "a", 5000, 4900), {0, 0, 0, 0}, "another session's call");
  ExpectCounts(store_->SessionCounters("s1", 1200), {6, 1, 3, 0}, "nothing since");
  // The action index is another thing: counting calls writes no action.
  auto targets = store_->DistinctTargets();
  ASSERT_TRUE(targets.ok());
  EXPECT_TRUE(targets->empty());
}

TEST_P(AttributionStoreConformance, ConcurrentCallsOfASessionEachSeeTheOnesBefore) {
  constexpr int kThreads = 8, kCalls = 25;
  std::mutex mu;
  std::vector<int64_t> seen;
  std::vector<std::string> errors;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCalls; ++i) {
        auto c = store_->CountCall("s", "tool-" + std::to_string(t % 3), 1000 + i, 0);
        std::lock_guard<std::mutex> lock(mu);
        if (!c.ok()) {
          errors.push_back(c.status().ToString());
        } else {
          seen.push_back(c->calls);
          if (c->calls_since != c->calls) errors.push_back("calls_since differs from calls");
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_TRUE(errors.empty()) << errors.front();
  // Each call saw a different number of calls before it: 0, 1, ..., n-1.
  std::sort(seen.begin(), seen.end());
  ASSERT_EQ(seen.size(), size_t{kThreads * kCalls});
  for (size_t i = 0; i < seen.size(); ++i) ASSERT_EQ(seen[i], static_cast<int64_t>(i));
  ExpectCounts(store_->SessionCounters("s", 0), {kThreads * kCalls, 0, 3, kThreads * kCalls},
               "after");
}

TEST_P(AttributionStoreConformance, TheIndexMarkStartsAtZeroAndOnlyMovesForward) {
  auto mark = store_->IndexedSize();
  ASSERT_TRUE(mark.ok()) << mark.status().ToString();
  EXPECT_EQ(*mark, 0u);
  ASSERT_TRUE(store_->RaiseIndexedSize(42).ok());
  mark = store_->IndexedSize();
  ASSERT_TRUE(mark.ok());
  EXPECT_EQ(*mark, 42u);
  // A batch that retried and lands late names a smaller size: the mark stays where it was.
  ASSERT_TRUE(store_->RaiseIndexedSize(7).ok());
  mark = store_->IndexedSize();
  ASSERT_TRUE(mark.ok());
  EXPECT_EQ(*mark, 42u);
  ASSERT_TRUE(store_->RaiseIndexedSize(uint64_t{1} << 40).ok());
  mark = store_->IndexedSize();
  ASSERT_TRUE(mark.ok());
  EXPECT_EQ(*mark, uint64_t{1} << 40);
  // The mark is not an action: the index of actions stays empty.
  auto targets = store_->DistinctTargets();
  ASSERT_TRUE(targets.ok());
  EXPECT_TRUE(targets->empty());
}

TEST_P(AttributionStoreConformance, ContainmentsByTimeAndADuplicateIsRefused) {
  ContainmentRow late{"e2", "session", "s1", "manual", "", "admin", 200, 5};
  ContainmentRow early{"e1", "session", "s1", "tripwire no-prod", "a9", "", 100, 4};
  ContainmentRow other{"e3", "agent", "worker", "manual", "", "admin", 150, 6};
  ASSERT_TRUE(store_->InsertContainment(late).ok());
  ASSERT_TRUE(store_->InsertContainment(early).ok());
  ASSERT_TRUE(store_->InsertContainment(other).ok());
  Status dup = store_->InsertContainment(early);
  EXPECT_EQ(dup.code(), StatusCode::kAlreadyExists) << dup.ToString();
  auto of = store_->ContainmentsOf("s1");
  ASSERT_TRUE(of.ok());
  ASSERT_EQ(of->size(), 2u);
  EXPECT_EQ((*of)[0].event_id, "e1");
  EXPECT_EQ((*of)[0].trigger_action, "a9");
  EXPECT_EQ((*of)[0].ledger_index, 4);
  EXPECT_EQ((*of)[1].event_id, "e2");
  EXPECT_EQ((*of)[1].by, "admin");
  auto none = store_->ContainmentsOf("nobody");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

// An approval with every field set, each to a value of its own.
ApprovalRow Approval(const std::string& id, const std::string& digest, const std::string& state,
                     const std::string& sid, int64_t requested_ms) {
  ApprovalRow r;
  r.id = id;
  r.digest = digest;
  r.state = state;
  r.sid = sid;
  r.root_sid = "root-" + sid;
  r.agent = "planner";
  r.instance = "inst-" + id;
  r.initiator = "alice@example.com";
  r.action = "call_tool";
  r.target = "payments/refund";
  r.group = "Group::\"finance\"\nGroup::\"audit\"";  // one line per group
  r.policies = "refund-limit deploy-prod";
  r.request_action = "act-" + id;
  r.requested_ms = requested_ms;
  r.expires_ms = requested_ms + 600000;
  return r;
}

void ExpectSameApproval(const ApprovalRow& got, const ApprovalRow& want) {
  EXPECT_EQ(got.id, want.id);
  EXPECT_EQ(got.digest, want.digest);
  EXPECT_EQ(got.state, want.state);
  EXPECT_EQ(got.sid, want.sid);
  EXPECT_EQ(got.root_sid, want.root_sid);
  EXPECT_EQ(got.agent, want.agent);
  EXPECT_EQ(got.instance, want.instance);
  EXPECT_EQ(got.initiator, want.initiator);
  EXPECT_EQ(got.action, want.action);
  EXPECT_EQ(got.target, want.target);
  EXPECT_EQ(got.group, want.group);
  EXPECT_EQ(got.policies, want.policies);
  EXPECT_EQ(got.request_action, want.request_action);
  EXPECT_EQ(got.requested_ms, want.requested_ms);
  EXPECT_EQ(got.expires_ms, want.expires_ms);
  EXPECT_EQ(got.approver, want.approver);
  EXPECT_EQ(got.verified_by, want.verified_by);
  EXPECT_EQ(got.reason, want.reason);
  EXPECT_EQ(got.decided_ms, want.decided_ms);
  EXPECT_EQ(got.decided_index, want.decided_index);
  EXPECT_EQ(got.used_by, want.used_by);
  EXPECT_EQ(got.uses, want.uses);
}

std::vector<std::string> ApprovalIds(const std::vector<ApprovalRow>& rows) {
  std::vector<std::string> out;
  for (const ApprovalRow& r : rows) out.push_back(r.id);
  return out;
}

TEST_P(AttributionStoreConformance, AnApprovalIsStoredWholeAndADuplicateIdIsRefused) {
  auto missing = store_->GetApproval("nope");
  ASSERT_TRUE(missing.ok()) << missing.status().ToString();
  EXPECT_FALSE(missing->has_value());

  ApprovalRow a = Approval("ap1", "sha256:aa", "approved", "s1", 1000);
  a.approver = "carol@example.com";
  a.verified_by = "oidc:https://idp.example.com";
  a.reason = "within the quarter's budget, \"urgent\"";
  a.decided_ms = 1500;
  a.decided_index = 42;
  a.used_by = "act-later";
  a.uses = 3;
  ASSERT_TRUE(store_->InsertApproval(a).ok());
  auto got = store_->GetApproval("ap1");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_TRUE(got->has_value());
  ExpectSameApproval(**got, a);

  // The id is taken: refused, and the stored row stays as it was.
  ApprovalRow again = Approval("ap1", "sha256:bb", "pending", "s2", 2000);
  Status dup = store_->InsertApproval(again);
  EXPECT_EQ(dup.code(), StatusCode::kAlreadyExists) << dup.ToString();
  got = store_->GetApproval("ap1");
  ASSERT_TRUE(got.ok() && got->has_value());
  ExpectSameApproval(**got, a);
}

TEST_P(AttributionStoreConformance, FindApprovalAnswersTheNewestWithTheDigestInTheStates) {
  ASSERT_TRUE(store_->InsertApproval(Approval("old", "sha256:aa", "approved", "s1", 100)).ok());
  ASSERT_TRUE(store_->InsertApproval(Approval("new", "sha256:aa", "approved", "s1", 300)).ok());
  ASSERT_TRUE(store_->InsertApproval(Approval("newest", "sha256:aa", "used", "s1", 400)).ok());
  ASSERT_TRUE(store_->InsertApproval(Approval("mid", "sha256:aa", "pending", "s1", 200)).ok());
  ASSERT_TRUE(store_->InsertApproval(Approval("other", "sha256:bb", "approved", "s1", 900)).ok());

  auto found = store_->FindApproval("sha256:aa", {"approved"});
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->id, "new");
  EXPECT_EQ((*found)->instance, "inst-new");
  found = store_->FindApproval("sha256:aa", {"pending", "approved"});
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_EQ((*found)->id, "new");
  found = store_->FindApproval("sha256:aa", {"pending"});
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_EQ((*found)->id, "mid");
  found = store_->FindApproval("sha256:aa", {"used", "approved"});
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_EQ((*found)->id, "newest");
  // At the same time, the greater id (bytewise: "b" after "Z") is the newer.
  ASSERT_TRUE(store_->InsertApproval(Approval("tie-Z", "sha256:cc", "pending", "s1", 500)).ok());
  ASSERT_TRUE(store_->InsertApproval(Approval("tie-b", "sha256:cc", "pending", "s1", 500)).ok());
  found = store_->FindApproval("sha256:cc", {"pending"});
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_EQ((*found)->id, "tie-b");

  // None in those states, or none with that digest.
  found = store_->FindApproval("sha256:aa", {"denied", "expired"});
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  EXPECT_FALSE(found->has_value());
  found = store_->FindApproval("sha256:zz", {"approved"});
  ASSERT_TRUE(found.ok());
  EXPECT_FALSE(found->has_value());
}

TEST_P(AttributionStoreConformance, ListApprovalsFiltersByStateNewestFirstUpToTheLimit) {
  ASSERT_TRUE(store_->InsertApproval(Approval("a", "sha256:1", "pending", "s1", 100)).ok());
  ASSERT_TRUE(store_->InsertApproval(Approval("d", "sha256:4", "pending", "s2", 400)).ok());
  ASSERT_TRUE(store_->InsertApproval(Approval("b", "sha256:2", "denied", "s1", 200)).ok());
  ASSERT_TRUE(store_->InsertApproval(Approval("c", "sha256:3", "approved", "s3", 300)).ok());
  ASSERT_TRUE(store_->InsertApproval(Approval("e", "sha256:5", "expired", "s1", 300)).ok());

  auto all = store_->ListApprovals({}, 100);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(ApprovalIds(*all), (Strings{"d", "e", "c", "b", "a"}));
  ASSERT_EQ(all->size(), 5u);
  EXPECT_EQ((*all)[0].sid, "s2");
  auto pending = store_->ListApprovals({"pending"}, 100);
  ASSERT_TRUE(pending.ok()) << pending.status().ToString();
  EXPECT_EQ(ApprovalIds(*pending), (Strings{"d", "a"}));
  auto two = store_->ListApprovals({"pending", "approved", "denied"}, 2);
  ASSERT_TRUE(two.ok());
  EXPECT_EQ(ApprovalIds(*two), (Strings{"d", "c"}));
  auto first = store_->ListApprovals({}, 1);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(ApprovalIds(*first), (Strings{"d"}));
  auto none = store_->ListApprovals({"cancelled"}, 100);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST_P(AttributionStoreConformance, DueApprovalsAreTheOpenOnesExpiredByNowLongestExpiredFirst) {
  auto with_expiry = [](ApprovalRow r, int64_t expires_ms) {
    r.expires_ms = expires_ms;
    return r;
  };
  // Open and due: pending or approved, expires_ms at or before now (1000).
  ASSERT_TRUE(
      store_->InsertApproval(with_expiry(Approval("p-late", "sha256:1", "pending", "s1", 1), 1000))
          .ok());
  ASSERT_TRUE(
      store_->InsertApproval(with_expiry(Approval("a-early", "sha256:2", "approved", "s1", 2), 10))
          .ok());
  ASSERT_TRUE(
      store_->InsertApproval(with_expiry(Approval("p-tie-b", "sha256:3", "pending", "s2", 3), 500))
          .ok());
  ASSERT_TRUE(
      store_->InsertApproval(with_expiry(Approval("p-tie-a", "sha256:4", "pending", "s2", 4), 500))
          .ok());
  // Not due, or not open.
  ASSERT_TRUE(
      store_
          ->InsertApproval(with_expiry(Approval("p-future", "sha256:5", "pending", "s1", 5), 1001))
          .ok());
  for (const char* state : {"used", "denied", "expired", "cancelled"}) {
    ASSERT_TRUE(store_
                    ->InsertApproval(with_expiry(
                        Approval(std::string("closed-") + state, "sha256:6", state, "s1", 6), 10))
                    .ok());
  }

  auto due = store_->DueApprovals(1000, 100);
  ASSERT_TRUE(due.ok()) << due.status().ToString();
  EXPECT_EQ(ApprovalIds(*due), (Strings{"a-early", "p-tie-a", "p-tie-b", "p-late"}));
  ASSERT_FALSE(due->empty());
  ExpectSameApproval((*due)[0],
                     with_expiry(Approval("a-early", "sha256:2", "approved", "s1", 2), 10));
  auto two = store_->DueApprovals(1000, 2);
  ASSERT_TRUE(two.ok());
  EXPECT_EQ(ApprovalIds(*two), (Strings{"a-early", "p-tie-a"}));
  auto none = store_->DueApprovals(9, 100);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  // Once moved on, an approval is no longer due.
  ApprovalRow expired = (*due)[0];
  expired.state = "expired";
  ASSERT_TRUE(store_->UpdateApproval(expired, "approved").ok());
  auto after = store_->DueApprovals(1001, 100);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(ApprovalIds(*after), (Strings{"p-tie-a", "p-tie-b", "p-late", "p-future"}));
}

TEST_P(AttributionStoreConformance, ApprovalsOfSessionsOldestFirstInTheStates) {
  ASSERT_TRUE(store_->InsertApproval(Approval("c", "sha256:3", "pending", "s1", 300)).ok());
  ASSERT_TRUE(store_->InsertApproval(Approval("a", "sha256:1", "pending", "s1", 100)).ok());
  ASSERT_TRUE(store_->InsertApproval(Approval("b", "sha256:2", "approved", "s2", 200)).ok());
  ASSERT_TRUE(store_->InsertApproval(Approval("d", "sha256:4", "pending", "s3", 50)).ok());
  ASSERT_TRUE(store_->InsertApproval(Approval("e", "sha256:5", "used", "s2", 500)).ok());

  auto of = store_->ApprovalsOfSessions({"s2", "s1"}, {});
  ASSERT_TRUE(of.ok()) << of.status().ToString();
  EXPECT_EQ(ApprovalIds(*of), (Strings{"a", "b", "c", "e"}));
  auto pending = store_->ApprovalsOfSessions({"s1", "s2", "s3"}, {"pending"});
  ASSERT_TRUE(pending.ok()) << pending.status().ToString();
  EXPECT_EQ(ApprovalIds(*pending), (Strings{"d", "a", "c"}));
  auto live = store_->ApprovalsOfSessions({"s2"}, {"pending", "approved"});
  ASSERT_TRUE(live.ok());
  EXPECT_EQ(ApprovalIds(*live), (Strings{"b"}));
  auto no_sessions = store_->ApprovalsOfSessions({}, {});
  ASSERT_TRUE(no_sessions.ok());
  EXPECT_TRUE(no_sessions->empty());
  auto unknown = store_->ApprovalsOfSessions({"nobody"}, {"pending"});
  ASSERT_TRUE(unknown.ok());
  EXPECT_TRUE(unknown->empty());
}

TEST_P(AttributionStoreConformance, UpdateApprovalSetsTheRowOnlyFromTheExpectedState) {
  const ApprovalRow pending = Approval("ap1", "sha256:aa", "pending", "s1", 1000);
  ASSERT_TRUE(store_->InsertApproval(pending).ok());
  ASSERT_TRUE(store_->InsertApproval(Approval("ap2", "sha256:bb", "pending", "s1", 1100)).ok());

  ApprovalRow approved = pending;
  approved.state = "approved";
  approved.approver = "carol@example.com";
  approved.verified_by = "admin-token:0db749c7f94e5ab7";
  approved.reason = "ok";
  approved.decided_ms = 1200;
  approved.decided_index = 17;
  approved.expires_ms = 5000;
  Status st = store_->UpdateApproval(approved, "pending");
  ASSERT_TRUE(st.ok()) << st.ToString();
  auto got = store_->GetApproval("ap1");
  ASSERT_TRUE(got.ok() && got->has_value());
  ExpectSameApproval(**got, approved);

  // From a state it is not in: refused, naming the stored state, and the row stays as it was.
  ApprovalRow denied = pending;
  denied.state = "denied";
  denied.approver = "mallory@example.com";
  st = store_->UpdateApproval(denied, "pending");
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition) << st.ToString();
  EXPECT_NE(st.message().find("approved"), std::string::npos) << st.ToString();
  got = store_->GetApproval("ap1");
  ASSERT_TRUE(got.ok() && got->has_value());
  ExpectSameApproval(**got, approved);

  // An unknown id is NotFound, and creates nothing.
  ApprovalRow ghost = Approval("ghost", "sha256:cc", "used", "s1", 1000);
  st = store_->UpdateApproval(ghost, "approved");
  EXPECT_EQ(st.code(), StatusCode::kNotFound) << st.ToString();
  auto none = store_->GetApproval("ghost");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());

  // The other approval was not touched.
  got = store_->GetApproval("ap2");
  ASSERT_TRUE(got.ok() && got->has_value());
  ExpectSameApproval(**got, Approval("ap2", "sha256:bb", "pending", "s1", 1100));
}

TEST_P(AttributionStoreConformance, OfThreadsRacingToUseOneApprovalExactlyOneWins) {
  ApprovalRow approved = Approval("ap1", "sha256:aa", "approved", "s1", 1000);
  approved.approver = "carol@example.com";
  ASSERT_TRUE(store_->InsertApproval(approved).ok());
  constexpr int kThreads = 8;
  std::mutex mu;
  std::vector<std::string> winners, errors;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      ApprovalRow used = approved;
      used.state = "used";
      used.used_by = "act-" + std::to_string(t);
      used.uses = 1;
      Status st = store_->UpdateApproval(used, "approved");
      std::lock_guard<std::mutex> lock(mu);
      if (st.ok()) {
        winners.push_back(used.used_by);
      } else if (st.code() != StatusCode::kFailedPrecondition) {
        errors.push_back(st.ToString());
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_TRUE(errors.empty()) << errors.front();
  ASSERT_EQ(winners.size(), 1u);
  auto got = store_->GetApproval("ap1");
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->state, "used");
  EXPECT_EQ((*got)->used_by, winners.front());
  EXPECT_EQ((*got)->uses, 1);
}

}  // namespace
}  // namespace custody::store::testing

// Investigations and evidence bundles against real SQLite stores, a real ledger and real tokens:
// a trace names the human, the chain and the tripwire; blast radius evaluates the policies;
// review finds unused grants; a bundle verifies offline and every tampering is named.
#include "investigate/investigate.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <filesystem>
#include <tuple>

#include "attribution/attribution_service.h"
#include "attribution/testing/world.h"
#include "common/encoding.h"
#include "events/columns.h"
#include "events/recorder.h"
#include "identity/token_service.h"
#include "investigate/evidence.h"
#include "ledger/ledger.h"
#include "ledger/note.h"
#include "store/ledger_store.h"

namespace custody::investigate {
namespace {

using attribution::ActionRow;
using attribution::AttributionService;
using attribution::AttributionStore;
using attribution::AuthorizeRequest;
using attribution::AuthorizeResult;
using attribution::CompleteRequest;
namespace testkit = attribution::testkit;

namespace json = boost::json;
using identity::TokenService;

std::string S(const json::value& v) {
  return v.is_string() ? std::string(v.get_string()) : json::serialize(v);
}

constexpr const char* kPolicies = R"(
  @id("github-ok") permit(principal, action == Action::"call_tool", resource in Server::"github");
  @id("slack-roots") permit(principal, action == Action::"call_tool", resource == Tool::"slack/post")
    when { context.session.depth == 0 };
  @id("no-dev-on-prod") @contain("session")
  forbid(principal, action, resource in Server::"prod-db")
    when { context.session.environment == "dev" };)";

constexpr const char* kEntities = R"([
  {"uid":{"type":"Server","id":"github"},"attrs":{},"parents":[]},
  {"uid":{"type":"Tool","id":"github/create_issue"},"attrs":{},"parents":[{"type":"Server","id":"github"}]},
  {"uid":{"type":"Tool","id":"slack/post"},"attrs":{},"parents":[]},
  {"uid":{"type":"Database","id":"orders"},"attrs":{},"parents":[]}
])";

class InvestigateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto w =
        testkit::World::Create(std::filesystem::temp_directory_path() /
                               ("custody-inv-" + std::to_string(::getpid()) + "-" +
                                ::testing::UnitTest::GetInstance()->current_test_info()->name()));
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    w_ = std::move(*w);
    ledger_ = w_->ledger.get();
    tokens_ = w_->tokens.get();
    store_ = w_->store.get();
    svc_ = w_->svc.get();
    verifier_key_ = w_->verifier_key;
    inv_ = std::make_unique<Investigator>(*tokens_, *ledger_, *svc_, clock_);
    ASSERT_TRUE(
        w_->Register("planner", {"*"}, {"assert_initiator"}, identity::Environment::kProd).ok());
    ASSERT_TRUE(w_->Register("worker", {"github/*", "Database:*", "prod-db/*"}, {},
                             identity::Environment::kDev)
                    .ok());
    ASSERT_TRUE(svc_->PublishPolicies(kPolicies, kEntities, "admin").ok());
  }
  void TearDown() override {
    inv_.reset();
    w_.reset();
  }
  // The token and the sid.
  std::pair<std::string, std::string> Root() {
    auto s = w_->Root();
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::pair{s->token, s->sid} : std::pair<std::string, std::string>{};
  }
  std::pair<std::string, std::string> Child(const std::string& parent, const std::string& agent) {
    auto s = w_->Child(parent, agent);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::pair{s->token, s->sid} : std::pair<std::string, std::string>{};
  }
  AuthorizeResult Call(const std::string& token, const std::string& server,
                       const std::string& tool) {
    AuthorizeRequest r;
    r.token = token;
    r.target.server = server;
    r.target.tool = tool;
    auto res = svc_->AuthorizeSync(r);
    EXPECT_TRUE(res.ok()) << res.status().ToString();
    return *res;
  }
  json::object Answer(const Result<std::string>& r) {
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? json::parse(*r).as_object() : json::object();
  }
  // The scenario of the issue: alice's planner delegates to two workers; one works, the other
  // trips the prod tripwire; its later call is refused.
  struct Scenario {
    std::string root_sid, good_sid, bad_sid;
    AuthorizeResult ok, trip, refused;
  };
  Scenario Run() {
    Scenario s;
    auto [root, root_sid] = Root();
    auto [good, good_sid] = Child(root, "worker");
    auto [bad, bad_sid] = Child(root, "worker");
    s.root_sid = root_sid;
    s.good_sid = good_sid;
    s.bad_sid = bad_sid;
    s.ok = Call(good, "github", "list_issues");
    CompleteRequest c;
    c.token = good;
    c.action_id = s.ok.action_id;
    c.status = "ok";
    EXPECT_TRUE(svc_->CompleteSync(c).ok());
    s.trip = Call(bad, "prod-db", "drop_table");
    s.refused = Call(bad, "github", "list_issues");
    EXPECT_TRUE(s.ok.allowed);
    EXPECT_FALSE(s.trip.allowed);
    EXPECT_FALSE(s.refused.allowed);
    return s;
  }

  std::unique_ptr<testkit::World> w_;
  SystemClock clock_;
  // Borrowed from w_.
  ledger::Ledger* ledger_ = nullptr;
  TokenService* tokens_ = nullptr;
  AttributionStore* store_ = nullptr;
  AttributionService* svc_ = nullptr;
  std::string verifier_key_;
  std::unique_ptr<Investigator> inv_;
};

TEST_F(InvestigateTest, TraceOfARefusedCallNamesTheHumanTheChainAndTheTripwire) {
  Scenario s = Run();
  json::object t = Answer(inv_->Trace(s.refused.action_id));
  EXPECT_EQ(S(t["decision"]), "deny");
  EXPECT_EQ(S(t["initiated_by"].at("id")), "alice@example.com");
  EXPECT_EQ(S(t["initiated_by"].at("verification")), "asserted");
  EXPECT_EQ(S(t["initiated_by"].at("asserted_by")), "planner");
  EXPECT_EQ(S(t["executed_by"].at("agent")), "worker");
  EXPECT_EQ(S(t["executed_by"].at("session")), s.bad_sid);
  EXPECT_NE(S(t["executed_by"].at("instance")).find("spiffe://custody.test/"), std::string::npos);
  EXPECT_FALSE(S(t["executed_by"].at("credential")).empty());
  json::array reasons = t["allowed_by"].at("reasons").as_array();
  ASSERT_EQ(reasons.size(), 1u);
  EXPECT_EQ(S(reasons[0]), "custody:session_revoked");
  // root session -> worker session -> action
  json::array path = t["path"].as_array();
  ASSERT_EQ(path.size(), 3u);
  EXPECT_EQ(S(path[0].at("sid")), s.root_sid);
  EXPECT_EQ(S(path[0].at("agent")), "planner");
  EXPECT_EQ(S(path[1].at("sid")), s.bad_sid);
  EXPECT_EQ(S(path[1].at("status")), "revoked");
  EXPECT_EQ(S(path[2].at("type")), "action");
  // The containment that refused it, pointing at the call that tripped the wire.
  json::array cs = t["containments"].as_array();
  ASSERT_EQ(cs.size(), 1u);
  EXPECT_EQ(S(cs[0].at("trigger_action")), s.trip.action_id);
  EXPECT_EQ(S(cs[0].at("reason")), "tripwire no-dev-on-prod");

  auto tree = RenderTrace(*inv_->Trace(s.refused.action_id));
  ASSERT_TRUE(tree.ok());
  EXPECT_NE(tree->find("alice@example.com"), std::string::npos) << *tree;
  EXPECT_NE(tree->find("tripwire no-dev-on-prod"), std::string::npos) << *tree;
  EXPECT_NE(tree->find("└─ session " + s.bad_sid), std::string::npos) << *tree;
}

TEST_F(InvestigateTest, TraceOfTheTrippingCallNamesThePolicySetAndTripwire) {
  Scenario s = Run();
  json::object t = Answer(inv_->Trace(s.trip.action_id));
  const json::object& a = t["allowed_by"].as_object();
  EXPECT_EQ(S(a.at("policy_set").at("hash")), s.trip.policy_hash);
  EXPECT_EQ(S(a.at("policy_set").at("published_by")), "admin");
  EXPECT_EQ(S(a.at("determining_policies").as_array()[0]), "no-dev-on-prod");
  EXPECT_EQ(S(a.at("tripwire").at("tripwire")), "no-dev-on-prod");
  EXPECT_EQ(S(a.at("delegation_chain").as_array()[0].at("agent")), "planner");
  EXPECT_EQ(S(a.at("delegation_chain").as_array()[1].at("agent")), "worker");
  EXPECT_TRUE(a.at("approvals").as_array().empty());
  EXPECT_TRUE(t["containments"].as_array()[0].at("tripped_by_this_action").as_bool());
  EXPECT_FALSE(S(t["receipt"]).empty());

  // The allowed call: its outcome and the permit that allowed it.
  json::object ok = Answer(inv_->Trace(s.ok.action_id));
  EXPECT_EQ(S(ok["decision"]), "allow");
  EXPECT_EQ(S(ok["allowed_by"].at("determining_policies").as_array()[0]), "github-ok");
  EXPECT_EQ(S(ok["outcome"].at("status")), "ok");
  // An outcome's or a containment's event id traces to its decision.
  json::object via_outcome = Answer(inv_->Trace(S(ok["outcome"].at("event_id"))));
  EXPECT_EQ(S(via_outcome["event_id"]), s.ok.action_id);
  EXPECT_EQ(S(via_outcome["traced_from"].at("kind")), "action.outcome");
  auto rows = store_->ContainmentsOf(s.bad_sid);
  ASSERT_TRUE(rows.ok() && rows->size() == 1);
  json::object via_c = Answer(inv_->Trace((*rows)[0].event_id));
  EXPECT_EQ(S(via_c["event_id"]), s.trip.action_id);

  EXPECT_EQ(inv_->Trace("no-such-event").status().code(), StatusCode::kNotFound);
}

TEST_F(InvestigateTest, SessionEventsListTheTreeWithItsActionsInOrder) {
  Scenario s = Run();
  json::object e = Answer(inv_->SessionEvents(s.root_sid));
  json::array sessions = e["sessions"].as_array();
  ASSERT_EQ(sessions.size(), 3u);
  EXPECT_EQ(S(sessions[0].at("sid")), s.root_sid);
  EXPECT_EQ(e["actions"].as_int64(), 3);
  for (const auto& v : sessions) {
    const json::object& o = v.as_object();
    if (S(o.at("sid")) == s.good_sid) {
      ASSERT_EQ(o.at("actions").as_array().size(), 1u);
      EXPECT_EQ(S(o.at("actions").as_array()[0].at("outcome")), "ok");
    }
    if (S(o.at("sid")) == s.bad_sid) {
      json::array acts = o.at("actions").as_array();
      ASSERT_EQ(acts.size(), 2u);
      EXPECT_EQ(S(acts[0].at("action_id")), s.trip.action_id);
      EXPECT_EQ(S(acts[1].at("action_id")), s.refused.action_id);
      EXPECT_EQ(o.at("containments").as_array().size(), 1u);
    }
  }
  auto tree = RenderSessionEvents(*inv_->SessionEvents(s.root_sid));
  ASSERT_TRUE(tree.ok());
  EXPECT_NE(tree->find("session " + s.root_sid), std::string::npos) << *tree;
  EXPECT_NE(tree->find("prod-db/drop_table -> deny"), std::string::npos) << *tree;
  EXPECT_NE(tree->find("github/list_issues -> allow [ok]"), std::string::npos) << *tree;
  EXPECT_EQ(inv_->SessionEvents("nope").status().code(), StatusCode::kNotFound);
}

std::set<std::string> Targets(const json::array& a) {
  std::set<std::string> out;
  for (const auto& v : a) out.insert(S(v.at("target")));
  return out;
}

TEST_F(InvestigateTest, BlastRadiusEvaluatesPoliciesWithinGrantsAndRecordsNothing) {
  // An agent without sessions: a synthesized root session, said so.
  uint64_t size = ledger_->Size();
  json::object w = Answer(inv_->BlastRadius("agent", "worker"));
  EXPECT_EQ(ledger_->Size(), size);  // a dry run appends nothing
  json::object wa = w["agents"].as_array()[0].as_object();
  EXPECT_TRUE(wa.at("synthesized_session").as_bool());
  // github/create_issue: policy and grants allow it; slack/post: grants do not cover it (and
  // the policy wants a root session); Database:orders: no permit; prod-db: never seen.
  EXPECT_EQ(Targets(w["potential"].as_array()), std::set<std::string>{"github/create_issue"});
  EXPECT_TRUE(w["actual"].as_array().empty());

  Scenario s = Run();
  // A session tree: the planner's root session reaches slack/post (depth 0, grants "*"), the
  // workers do not; prod-db/drop_table is never reachable by a dev agent.
  json::object b = Answer(inv_->BlastRadius("session", s.root_sid));
  std::set<std::string> want{"github/create_issue", "github/list_issues", "slack/post"};
  EXPECT_EQ(Targets(b["potential"].as_array()), want);
  for (const auto& v : b["potential"].as_array()) {
    if (S(v.at("target")) == "slack/post") {
      ASSERT_EQ(v.at("agents").as_array().size(), 1u);
      EXPECT_EQ(S(v.at("agents").as_array()[0]), "planner");
    }
  }
  EXPECT_FALSE(b["contained"].as_bool());
  json::array actual = b["actual"].as_array();
  ASSERT_EQ(actual.size(), 2u);
  EXPECT_EQ(S(actual[0].at("target")), "github/list_issues");
  EXPECT_EQ(actual[0].at("count").as_int64(), 1);
  EXPECT_EQ(actual[0].at("denied").as_int64(), 1);  // the refused call after containment
  // Only ever denied, and still there: the attempt on the production database.
  EXPECT_EQ(S(actual[1].at("target")), "prod-db/drop_table");
  EXPECT_EQ(actual[1].at("count").as_int64(), 0);
  EXPECT_EQ(actual[1].at("denied").as_int64(), 1);
  EXPECT_EQ(S(actual[1].at("agents").as_array()[0]), "worker");
  EXPECT_EQ(S(actual[1].at("actions").as_array()[0]), "call_tool");
  EXPECT_EQ(S(actual[1].at("last")), S(Answer(inv_->Trace(s.trip.action_id))["time"]));

  // The worker agent now: its live session (the good one) is evaluated with its real facts.
  json::object w2 = Answer(inv_->BlastRadius("agent", "worker"));
  json::object wa2 = w2["agents"].as_array()[0].as_object();
  EXPECT_FALSE(wa2.at("synthesized_session").as_bool());
  ASSERT_EQ(wa2.at("evaluated_sessions").as_array().size(), 1u);
  EXPECT_EQ(S(wa2.at("evaluated_sessions").as_array()[0]), s.good_sid);

  json::object u = Answer(inv_->BlastRadius("user", "alice@example.com"));
  EXPECT_EQ(u["agents"].as_array().size(), 2u);
  EXPECT_EQ(Targets(u["potential"].as_array()), want);
  EXPECT_EQ(inv_->BlastRadius("robot", "x").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(inv_->BlastRadius("agent", "ghost").status().code(), StatusCode::kNotFound);
}

// A session tree whose sessions are all revoked is contained: it reaches nothing, and says so,
// rather than being evaluated as a fresh root session. What it tried stays in `actual`.
TEST_F(InvestigateTest, BlastRadiusOfAContainedTreeReachesNothing) {
  Scenario s = Run();  // the tripwire revoked the bad worker's session
  json::object b = Answer(inv_->BlastRadius("session", s.bad_sid));
  EXPECT_TRUE(b["contained"].as_bool());
  EXPECT_TRUE(b["potential"].as_array().empty()) << json::serialize(b);
  json::object wa = b["agents"].as_array()[0].as_object();
  EXPECT_FALSE(wa.at("synthesized_session").as_bool());
  EXPECT_TRUE(wa.at("reachable").as_array().empty());
  EXPECT_TRUE(wa.at("evaluated_sessions").as_array().empty());
  EXPECT_EQ(S(wa.at("note")), "no live session in this tree: it can reach nothing");
  ASSERT_EQ(b["notes"].as_array().size(), 1u);
  EXPECT_EQ(S(b["notes"].as_array()[0]).rfind("contained:", 0), 0u);
  EXPECT_EQ(Targets(b["actual"].as_array()),
            (std::set<std::string>{"github/list_issues", "prod-db/drop_table"}));

  // The whole tree revoked: the same for the root.
  ASSERT_TRUE(tokens_->RevokeSession(s.root_sid, "incident", "admin").ok());
  json::object r = Answer(inv_->BlastRadius("session", s.root_sid));
  EXPECT_TRUE(r["contained"].as_bool());
  EXPECT_TRUE(r["potential"].as_array().empty()) << json::serialize(r);
  for (const auto& a : r["agents"].as_array())
    EXPECT_TRUE(a.at("reachable").as_array().empty()) << json::serialize(a);
}

// A partly revoked tree: only its live sessions reach anything. With both workers' sessions
// revoked, what only a worker could reach leaves the potential, and no worker is named in it.
TEST_F(InvestigateTest, BlastRadiusOfAPartlyRevokedTreeCountsOnlyLiveSessions) {
  Scenario s = Run();
  json::object b = Answer(inv_->BlastRadius("session", s.root_sid));
  for (const auto& a : b["agents"].as_array()) {
    if (S(a.at("agent")) != "worker") continue;
    ASSERT_EQ(a.at("evaluated_sessions").as_array().size(), 1u);
    EXPECT_EQ(S(a.at("evaluated_sessions").as_array()[0]), s.good_sid);
    for (const auto& t : a.at("reachable").as_array())
      for (const auto& sid : t.at("sessions").as_array()) EXPECT_NE(S(sid), s.bad_sid);
  }

  ASSERT_TRUE(tokens_->RevokeSession(s.good_sid, "done", "admin").ok());
  json::object p = Answer(inv_->BlastRadius("session", s.root_sid));
  EXPECT_FALSE(p["contained"].as_bool());  // the planner's root session is live
  for (const auto& t : p["potential"].as_array()) {
    ASSERT_EQ(t.at("agents").as_array().size(), 1u) << json::serialize(t);
    EXPECT_EQ(S(t.at("agents").as_array()[0]), "planner");
  }
  for (const auto& a : p["agents"].as_array()) {
    if (S(a.at("agent")) != "worker") continue;
    EXPECT_FALSE(a.at("synthesized_session").as_bool());
    EXPECT_TRUE(a.at("reachable").as_array().empty());
  }
}

TEST_F(InvestigateTest, LedgerFindsLeavesByIndexColumnAndKind) {
  Scenario s = Run();
  using Column = store::LedgerStore::Column;
  auto delegations = ledger_->store().FindLeaves(Column::kAgent, "worker", "delegation");
  ASSERT_TRUE(delegations.ok());
  EXPECT_EQ(delegations->size(), 2u);
  auto of_bad = ledger_->store().FindLeaves(Column::kSession, s.bad_sid);
  ASSERT_TRUE(of_bad.ok());
  std::vector<std::string> kinds;
  for (uint64_t i : *of_bad) kinds.push_back(ledger_->GetEntry(i)->columns.kind);
  // delegation, decision, decision, containment, revocation, decision (ascending index)
  EXPECT_EQ(kinds.front(), "delegation");
  EXPECT_EQ(std::count(kinds.begin(), kinds.end(), "action.decision"), 2);
  EXPECT_EQ(std::count(kinds.begin(), kinds.end(), "containment"), 1);
  EXPECT_TRUE(std::is_sorted(of_bad->begin(), of_bad->end()));
  auto by_id = ledger_->store().FindLeaves(Column::kEventId, s.trip.action_id);
  ASSERT_TRUE(by_id.ok());
  ASSERT_EQ(by_id->size(), 1u);
  EXPECT_EQ((*by_id)[0], s.trip.ledger_index);
  EXPECT_TRUE(ledger_->store().FindLeaves(Column::kSession, "").value().empty());
}

TEST_F(InvestigateTest, ReviewListsGrantsNeverUsedAsRemovalCandidates) {
  Scenario s = Run();
  json::object r = Answer(inv_->Review("worker", 0));
  json::array unused = r["removal_candidates"].as_array();
  std::set<std::string> got;
  for (const auto& v : unused) got.insert(S(v));
  // prod-db/* was only ever denied: still unused.
  EXPECT_EQ(got, (std::set<std::string>{"Database:*", "prod-db/*"}));
  for (const auto& g : r["grants"].as_array()) {
    if (S(g.at("scope")) == "github/*") {
      EXPECT_TRUE(g.at("used").as_bool());
      EXPECT_EQ(g.at("calls").as_int64(), 1);
    }
  }
  // Since a moment in the future: nothing used.
  json::object later = Answer(inv_->Review("worker", UnixMillis(clock_.Now()) + 3'600'000));
  EXPECT_EQ(later["removal_candidates"].as_array().size(), 3u);
}

// "Templates granted but never used": each configured access level the policies would let the
// agent issue (the level is in context.arguments, as in a real issue) and that was never issued.
TEST_F(InvestigateTest, ReviewListsCredentialAccessLevelsAllowedButNeverIssued) {
  ASSERT_TRUE(svc_->PublishPolicies(std::string(kPolicies) + R"(
    @id("orders-read") permit(principal, action == Action::"issue_credential",
                              resource == Database::"orders")
      when { context.arguments.access == "read" };)",
                                    kEntities, "admin")
                  .ok());
  inv_->SetCredentialAccessLevels({{"orders", {"read", "write"}}, {"payments", {"read"}}});
  json::object r = Answer(inv_->Review("worker", 0));
  ASSERT_TRUE(r.contains("unused_credential_templates"));
  json::array t = r["unused_credential_templates"].as_array();
  ASSERT_EQ(t.size(), 1u) << json::serialize(t);
  EXPECT_EQ(S(t[0].at("database")), "orders");
  EXPECT_EQ(S(t[0].at("access")), "read");
  // The policy names no principal: the planner (grants "*") has it too, and keeps it after the
  // worker's issue below, which is the worker's alone.
  EXPECT_EQ(Answer(inv_->Review("planner", 0))["unused_credential_templates"].as_array().size(),
            1u);

  // Once a read credential was issued to the worker (its ledger event), it is used.
  events::Recorder recorder(*ledger_);
  ASSERT_TRUE(
      recorder
          .Record(json::object{
              {"kind", "db_credential.issue"},
              {"target", json::object{{"session", "s1"}, {"agent", "worker"}}},
              {"credential",
               json::object{{"role", "custody_x_1"}, {"database", "orders"}, {"access", "read"}}}})
          .ok());
  json::object after = Answer(inv_->Review("worker", 0));
  EXPECT_TRUE(after["unused_credential_templates"].as_array().empty())
      << json::serialize(after["unused_credential_templates"]);
  EXPECT_EQ(Answer(inv_->Review("planner", 0))["unused_credential_templates"].as_array().size(),
            1u);
  // Ever issued, not only in the review's window.
  EXPECT_TRUE(Answer(inv_->Review(
      "worker", UnixMillis(clock_.Now()) + 3'600'000))["unused_credential_templates"]
                  .as_array()
                  .empty());

  // The dry run's arguments must be a JSON object.
  EXPECT_EQ(svc_->WouldAllow(identity::Session{}, "issue_credential",
                             attribution::Target{"", "", "Database", "orders"}, {}, "[1]")
                .status()
                .code(),
            StatusCode::kInvalidArgument);
}

TEST_F(InvestigateTest, GraphLinksHumansSessionsAgentsAndTools) {
  Scenario s = Run();
  json::object g = Answer(inv_->Graph("json"));
  std::set<std::string> ids;
  for (const auto& n : g["nodes"].as_array()) ids.insert(S(n.at("id")));
  for (const std::string& id :
       {std::string("initiator:planner/alice@example.com"), "session:" + s.root_sid,
        "session:" + s.bad_sid, std::string("agent:planner"), std::string("agent:worker"),
        std::string("tool:github/list_issues"), std::string("tool:prod-db/drop_table")}) {
    EXPECT_TRUE(ids.count(id)) << id;
  }
  bool delegated = false;
  for (const auto& e : g["edges"].as_array()) {
    if (S(e.at("type")) == "delegated" && S(e.at("to")) == "session:" + s.good_sid)
      delegated = true;
  }
  EXPECT_TRUE(delegated);
  // alice was asserted by the planner, not verified: her node says so, and she is no "human".
  for (const auto& v : g["nodes"].as_array()) {
    const json::object& n = v.as_object();
    EXPECT_NE(S(n.at("type")), "human") << json::serialize(n);
    if (S(n.at("id")) != "initiator:planner/alice@example.com") continue;
    EXPECT_EQ(S(n.at("type")), "initiator");
    EXPECT_EQ(S(n.at("label")), "alice@example.com");
    EXPECT_EQ(S(n.at("verification")), "asserted");
    EXPECT_EQ(S(n.at("asserted_by")), "planner");
  }
  bool started = false;
  for (const auto& e : g["edges"].as_array()) {
    if (S(e.at("type")) == "started" && S(e.at("to")) == "session:" + s.root_sid)
      started = S(e.at("from")) == "initiator:planner/alice@example.com";
  }
  EXPECT_TRUE(started);
  auto dot = inv_->Graph("dot");
  ASSERT_TRUE(dot.ok());
  EXPECT_EQ(dot->rfind("digraph custody {", 0), 0u);
  EXPECT_NE(dot->find("\"agent:worker\" -> \"tool:github/list_issues\""), std::string::npos);
  EXPECT_NE(dot->find("initiator (asserted by planner)\\nalice@example.com"), std::string::npos)
      << *dot;
  EXPECT_EQ(inv_->Graph("svg").status().code(), StatusCode::kInvalidArgument);
}

TEST(InvestigationColumnsTest, TakeTheActorOrTheTargetOfAnEvent) {
  auto c = events::ColumnsOfText(
      R"({"kind":"revocation","event_id":"e1","time":"t","target":{"session":"s1"}})");
  EXPECT_EQ(c.kind, "revocation");
  EXPECT_EQ(c.event_id, "e1");
  EXPECT_EQ(c.session, "s1");
  EXPECT_EQ(c.agent, "");
  c = events::ColumnsOfText(R"({"kind":"delegation","actor":{"agent":"a","session":"s2"}})");
  EXPECT_EQ(c.session, "s2");
  EXPECT_EQ(c.agent, "a");
  EXPECT_EQ(events::ColumnsOfText("not json").kind, "");
}

TEST(ParseSinceTest, AcceptsMillisRelativeAndRfc3339AndRefusesTheRest) {
  const int64_t now = 1'800'000'000'000;
  EXPECT_EQ(*ParseSince("", now), 0);
  EXPECT_EQ(*ParseSince("1700000000000", now), 1'700'000'000'000);
  EXPECT_EQ(*ParseSince("2d", now), now - 2 * 86'400'000);
  EXPECT_EQ(*ParseSince("3h", now), now - 3 * 3'600'000);
  EXPECT_EQ(*ParseSince("2023-11-14", now), 1'699'920'000'000);
  EXPECT_EQ(*ParseSince("2023-11-14T22:13:20Z", now), 1'700'000'000'000);
  for (const char* bad : {"yesterday", "-5d", "2023-11-14T22:13:20", "2023-13-45", "5w"})
    EXPECT_EQ(ParseSince(bad, now).status().code(), StatusCode::kInvalidArgument) << bad;
}

// --- Approvals -----------------------------------------------------------------------------------

// Refunds over 100 need a member of Group::"finance": bob is one, eve is not.
constexpr const char* kApprovalPolicies = R"(
  @id("pay-ok") permit(principal, action == Action::"call_tool", resource in Server::"pay");
  @id("big-refunds") @approval("finance")
  forbid(principal, action == Action::"call_tool", resource == Tool::"pay/refund")
    when { context.arguments.amount > 100 };)";
constexpr const char* kApprovalEntities = R"([
  {"uid": {"type": "Group", "id": "finance"}, "attrs": {}, "parents": []},
  {"uid": {"type": "User", "id": "bob"}, "attrs": {}, "parents": [{"type": "Group", "id": "finance"}]},
  {"uid": {"type": "User", "id": "eve"}, "attrs": {}, "parents": []}
])";

class ApprovalInvestigationTest : public InvestigateTest {
 protected:
  void SetUp() override {
    InvestigateTest::SetUp();
    ASSERT_TRUE(svc_->PublishPolicies(kApprovalPolicies, kApprovalEntities, "admin").ok());
    std::tie(token_, sid_) = Root();
  }
  AuthorizeResult Refund(int amount) {
    auto r = svc_->AuthorizeSync(testkit::World::Call(
        token_, "pay", "refund", "{\"amount\":" + std::to_string(amount) + "}"));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : AuthorizeResult{};
  }
  attribution::ApprovalRow Decide(const std::string& id, bool approve, const std::string& person,
                                  const std::string& reason = "ticket 7") {
    auto r = svc_->DecideApproval(id, approve, attribution::Approver{person, "test:" + person, {}},
                                  reason);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : attribution::ApprovalRow{};
  }
  static json::object Approval(json::object& trace) {
    json::array a = trace["allowed_by"].at("approvals").as_array();
    EXPECT_EQ(a.size(), 1u) << json::serialize(trace);
    return a.empty() ? json::object() : a[0].as_object();
  }
  std::string token_, sid_;
};

TEST_F(ApprovalInvestigationTest, TraceSaysUnderWhatApprovalAndThatTheAgentRanItItself) {
  AuthorizeResult held = Refund(500);
  ASSERT_TRUE(held.approval_required);
  ASSERT_TRUE(held.approval);
  const std::string id = held.approval->id;

  // Held, not decided yet.
  json::object t = Answer(inv_->Trace(held.action_id));
  EXPECT_EQ(S(t["decision"]), "approval_required");
  json::object a = Approval(t);
  EXPECT_EQ(S(a["id"]), id);
  EXPECT_EQ(S(a["state"]), "required");
  EXPECT_EQ(S(a["groups"].as_array()[0]), R"(Group::"finance")");
  EXPECT_EQ(S(a["outcome"]), "undecided");
  EXPECT_TRUE(a["history"].as_array().empty());
  EXPECT_EQ(S(t["answers"].at("what_allowed")).rfind("held for approval: ", 0), 0u)
      << json::serialize(t["answers"]);
  EXPECT_NE(S(t["answers"].at("under_what_approval")).find("not decided yet"), std::string::npos);

  Decide(id, true, "bob", "refund of order 42, checked");
  AuthorizeResult ran = Refund(500);
  ASSERT_TRUE(ran.allowed) << ran.message;

  // The retry: allowed under bob's approval, read back from the approval.approve event.
  json::object r = Answer(inv_->Trace(ran.action_id));
  EXPECT_EQ(S(r["decision"]), "allow");
  json::object u = Approval(r);
  EXPECT_EQ(S(u["id"]), id);
  EXPECT_EQ(S(u["state"]), "used");
  EXPECT_EQ(S(u["approver"]), "bob");
  EXPECT_EQ(S(u["verified_by"]), "test:bob");
  EXPECT_EQ(S(u["reason"]), "refund of order 42, checked");
  EXPECT_EQ(S(u["request_action"]), held.action_id);
  EXPECT_TRUE(u["confirmed_by_ledger"].as_bool()) << json::serialize(u);
  EXPECT_FALSE(u.contains("problem"));
  EXPECT_EQ(S(u["execution"]), "autonomous after approval");
  auto approve_leaf = ledger_->GetEntry(static_cast<uint64_t>(u["approval_index"].as_int64()));
  ASSERT_TRUE(approve_leaf.ok());
  EXPECT_EQ(approve_leaf->columns.kind, "approval.approve");
  EXPECT_EQ(S(u["approved_at"]), approve_leaf->columns.time);
  EXPECT_EQ(S(u["approval_event"]), approve_leaf->columns.event_id);
  std::string under = S(r["answers"].at("under_what_approval"));
  EXPECT_NE(under.find("approved by bob (verified by test:bob)"), std::string::npos) << under;
  EXPECT_NE(under.find("autonomous after approval"), std::string::npos) << under;
  EXPECT_NE(S(r["answers"].at("what_allowed")).find("under approval " + id + " by bob"),
            std::string::npos);
  auto tree = RenderTrace(*inv_->Trace(ran.action_id));
  ASSERT_TRUE(tree.ok());
  EXPECT_NE(tree->find("under approval: " + id + " by bob (verified by test:bob) at "),
            std::string::npos)
      << *tree;
  EXPECT_NE(tree->find("execution:      autonomous after approval"), std::string::npos) << *tree;

  // The held decision now says what became of its approval, and which action it let run.
  json::object h = Answer(inv_->Trace(held.action_id));
  json::object ha = Approval(h);
  EXPECT_EQ(S(ha["outcome"]), "approved");
  ASSERT_EQ(ha["history"].as_array().size(), 1u);
  EXPECT_EQ(S(ha["history"].as_array()[0].at("by").at("person")), "bob");
  EXPECT_EQ(S(ha["used_by"]), ran.action_id);
  auto held_tree = RenderTrace(*inv_->Trace(held.action_id));
  ASSERT_TRUE(held_tree.ok());
  EXPECT_NE(
      held_tree->find("held for:       approval " + id + " by a member of Group::\"finance\""),
      std::string::npos)
      << *held_tree;
  EXPECT_NE(held_tree->find("then:           approved by bob at "), std::string::npos)
      << *held_tree;
  EXPECT_NE(held_tree->find("used by action " + ran.action_id), std::string::npos) << *held_tree;

  // No approval involved: said so.
  AuthorizeResult small = Refund(50);
  json::object p = Answer(inv_->Trace(small.action_id));
  EXPECT_TRUE(p["allowed_by"].at("approvals").as_array().empty());
  EXPECT_EQ(S(p["answers"].at("under_what_approval")), "none: no approval was involved");
  EXPECT_NE(RenderTrace(*inv_->Trace(small.action_id))->find("approvals:      none"),
            std::string::npos);
}

TEST_F(ApprovalInvestigationTest, TraceOfAHeldActionSaysItsApprovalWasDeniedOrCancelled) {
  AuthorizeResult denied = Refund(500);
  ASSERT_TRUE(denied.approval);
  Decide(denied.approval->id, false, "bob", "no such order");
  json::object t = Answer(inv_->Trace(denied.action_id));
  json::object a = Approval(t);
  EXPECT_EQ(S(a["outcome"]), "denied");
  EXPECT_FALSE(a.contains("used_by"));
  EXPECT_NE(S(t["answers"].at("under_what_approval")).find("denied by bob at "), std::string::npos)
      << S(t["answers"].at("under_what_approval"));

  // Changed arguments: another approval; the session's containment cancels it.
  AuthorizeResult cancelled = Refund(700);
  ASSERT_TRUE(cancelled.approval);
  EXPECT_NE(cancelled.approval->id, denied.approval->id);
  svc_->CancelApprovals({sid_}, "session revoked");
  json::object c = Answer(inv_->Trace(cancelled.action_id));
  json::object ca = Approval(c);
  EXPECT_EQ(S(ca["outcome"]), "cancelled");
  ASSERT_EQ(ca["history"].as_array().size(), 1u);  // only its own events, not the other's
  EXPECT_EQ(S(ca["history"].as_array()[0].at("reason")), "session revoked");
}

// A decision citing an approval the ledger does not confirm: the trace says so rather than
// repeat the claim.
TEST_F(ApprovalInvestigationTest, TraceChecksTheCitedApprovalEventAgainstTheLedger) {
  AuthorizeResult held = Refund(500);
  ASSERT_TRUE(held.approval);
  Decide(held.approval->id, true, "bob");
  AuthorizeResult ran = Refund(500);
  ASSERT_TRUE(ran.allowed);
  // The same decision again, but citing the held decision's entry as the approval event.
  auto leaf = ledger_->GetEntry(ran.ledger_index);
  ASSERT_TRUE(leaf.ok());
  json::object forged = json::parse(leaf->data).as_object();
  forged["event_id"] = "forged-decision";
  forged["approval"].as_object()["approval_index"] = held.ledger_index;
  std::string text = json::serialize(forged);
  ASSERT_TRUE(ledger_->Append(text, events::ColumnsOfText(text)).ok());
  json::object t = Answer(inv_->Trace("forged-decision"));
  json::object a = Approval(t);
  EXPECT_FALSE(a["confirmed_by_ledger"].as_bool());
  EXPECT_NE(
      S(a["problem"]).find("is not the approval.approve event of approval " + held.approval->id),
      std::string::npos)
      << S(a["problem"]);
  EXPECT_FALSE(a.contains("approved_at"));
  EXPECT_NE(S(t["answers"].at("under_what_approval")).find("NOT confirmed by the ledger"),
            std::string::npos);
  EXPECT_NE(RenderTrace(*inv_->Trace("forged-decision"))->find("NOT confirmed by the ledger"),
            std::string::npos);
}

TEST_F(ApprovalInvestigationTest, SessionEventsShowApprovalEventsAmongTheActions) {
  AuthorizeResult held = Refund(500);
  ASSERT_TRUE(held.approval);
  Decide(held.approval->id, true, "bob", "ok by finance");
  AuthorizeResult ran = Refund(500);
  ASSERT_TRUE(ran.allowed);
  json::object e = Answer(inv_->SessionEvents(sid_));
  const json::object& root = e["sessions"].as_array()[0].as_object();
  json::array evs = root.at("approval_events").as_array();
  ASSERT_EQ(evs.size(), 1u) << json::serialize(root);
  EXPECT_EQ(S(evs[0].at("kind")), "approval.approve");
  EXPECT_EQ(S(evs[0].at("approval")), held.approval->id);
  EXPECT_EQ(S(evs[0].at("by").at("person")), "bob");
  EXPECT_EQ(S(evs[0].at("target")), "pay/refund");
  EXPECT_EQ(root.at("actions").as_array().size(), 2u);
  auto tree = RenderSessionEvents(*inv_->SessionEvents(sid_));
  ASSERT_TRUE(tree.ok());
  // In ledger order: the held decision, the approval, the allowed retry.
  size_t h = tree->find("pay/refund -> approval_required");
  size_t ap =
      tree->find("approval.approve " + held.approval->id + " of pay/refund by bob: ok by finance");
  size_t r = tree->find("pay/refund -> allow");
  ASSERT_NE(h, std::string::npos) << *tree;
  ASSERT_NE(ap, std::string::npos) << *tree;
  ASSERT_NE(r, std::string::npos) << *tree;
  EXPECT_LT(h, ap);
  EXPECT_LT(ap, r);
}

TEST_F(ApprovalInvestigationTest, HeldActionsAreNeitherUsesNorDenials) {
  AuthorizeResult held = Refund(500);
  ASSERT_TRUE(held.approval_required);
  Refund(50);
  json::object b = Answer(inv_->BlastRadius("session", sid_));
  json::array actual = b["actual"].as_array();
  ASSERT_EQ(actual.size(), 1u) << json::serialize(b);
  EXPECT_EQ(S(actual[0].at("target")), "pay/refund");
  EXPECT_EQ(actual[0].at("count").as_int64(), 1);
  EXPECT_EQ(actual[0].at("denied").as_int64(), 0);
  EXPECT_EQ(actual[0].at("held_for_approval").as_int64(), 1);

  json::object g = Answer(inv_->Graph("json"));
  bool found = false;
  for (const auto& v : g["edges"].as_array()) {
    if (S(v.at("type")) != "used" || S(v.at("to")) != "tool:pay/refund") continue;
    found = true;
    EXPECT_EQ(v.at("allowed").as_int64(), 1);
    EXPECT_EQ(v.at("denied").as_int64(), 0);
    EXPECT_EQ(v.at("held_for_approval").as_int64(), 1);
  }
  EXPECT_TRUE(found);
  EXPECT_NE(inv_->Graph("dot")->find("1 allowed, 1 held for approval"), std::string::npos);

  json::object rv = Answer(inv_->Review("planner", 0));
  EXPECT_EQ(rv["allowed_actions"].as_int64(), 1);
}

// --- Evidence ------------------------------------------------------------------------------------

// An action the index lost (and whose loss the index's mark does not show) is traced from the
// ledger, the record of truth, not refused as "not an action".
TEST_F(InvestigateTest, TraceAnswersFromTheLedgerForAnActionTheIndexDoesNotHold) {
  Scenario s = Run();
  inv_.reset();
  ASSERT_TRUE(w_->LoseIndex().ok());
  ASSERT_TRUE(w_->store->RaiseIndexedSize(ledger_->Size()).ok());
  ASSERT_TRUE(w_->Reopen().ok());
  store_ = w_->store.get();
  svc_ = w_->svc.get();
  inv_ = std::make_unique<Investigator>(*tokens_, *ledger_, *svc_, clock_);
  auto indexed = store_->GetAction(s.ok.action_id);
  ASSERT_TRUE(indexed.ok());
  ASSERT_FALSE(*indexed);

  json::object t = Answer(inv_->Trace(s.ok.action_id));
  EXPECT_EQ(S(t["event_id"]), s.ok.action_id);
  EXPECT_EQ(t["index"].to_number<uint64_t>(), s.ok.ledger_index);
  EXPECT_EQ(S(t["decision"]), "allow");
  EXPECT_EQ(S(t.at("initiated_by").at("id")), "alice@example.com");
  EXPECT_EQ(S(t.at("executed_by").at("session")), s.good_sid);
  EXPECT_EQ(S(t.at("outcome").at("status")), "ok");  // its outcome, found in the ledger too
  EXPECT_EQ(t.at("path").as_array().size(), 3u);     // root, the worker's session, the action
  // The tripping call too, traced from its containment event.
  auto contained =
      ledger_->store().FindLeaves(store::LedgerStore::Column::kSession, s.bad_sid, "containment");
  ASSERT_TRUE(contained.ok() && !contained->empty());
  auto cleaf = ledger_->GetEntry(contained->front());
  ASSERT_TRUE(cleaf.ok());
  json::object tc = Answer(inv_->Trace(S(json::parse(cleaf->data).at("event_id"))));
  EXPECT_EQ(S(tc["event_id"]), s.trip.action_id);
  EXPECT_EQ(S(tc["decision"]), "deny");
}

class EvidenceTest : public InvestigateTest {
 protected:
  std::string Bundle(const Scenario& s) {
    auto b = BuildEvidence(*tokens_, *ledger_, *store_, s.root_sid);
    EXPECT_TRUE(b.ok()) << b.status().ToString();
    return b.ok() ? *b : "";
  }
  EvidenceReport Verify(const std::string& bundle, std::optional<std::string> key) {
    auto r = VerifyEvidence(bundle, key);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : EvidenceReport{};
  }
  static std::string Problems(const EvidenceReport& r) {
    std::string out;
    for (const auto& p : r.problems) out += p + "\n";
    return out;
  }
};

TEST_F(EvidenceTest, BundleHoldsEveryEventOfTheTreeAndVerifiesOffline) {
  Scenario s = Run();
  std::string bundle = Bundle(s);
  json::object b = json::parse(bundle).as_object();
  EXPECT_EQ(S(b["format"]), "custody-evidence/v1");
  EXPECT_EQ(S(b["verifier_key"]), verifier_key_);
  std::map<std::string, int> kinds;
  for (const auto& e : b["events"].as_array()) kinds[S(e.at("kind"))]++;
  EXPECT_EQ(kinds["session.start"], 1);
  EXPECT_EQ(kinds["delegation"], 2);
  EXPECT_EQ(kinds["action.decision"], 3);
  EXPECT_EQ(kinds["action.outcome"], 1);
  EXPECT_EQ(kinds["containment"], 1);
  EXPECT_EQ(kinds["revocation"], 1);
  EvidenceReport r = Verify(bundle, verifier_key_);
  EXPECT_TRUE(r.ok) << Problems(r);
  EXPECT_EQ(r.verified, b["events"].as_array().size());
  EXPECT_TRUE(r.key_pinned);
  // Not pinned: self-consistent.
  EXPECT_TRUE(Verify(bundle, std::nullopt).ok);
  EXPECT_EQ(BuildEvidence(*tokens_, *ledger_, *store_, "nope").status().code(),
            StatusCode::kNotFound);
}

TEST_F(EvidenceTest, TamperedEventByteIsNamed) {
  Scenario s = Run();
  json::object b = json::parse(Bundle(s)).as_object();
  json::object& e = b["events"].as_array()[2].as_object();
  std::string jcs = S(e["jcs"]);
  size_t at = jcs.find("\"kind\":\"") + 8;
  jcs[at] = jcs[at] == 'a' ? 'b' : 'a';  // still canonical JSON, other bytes
  e["jcs"] = jcs;
  e.erase("leaf_hash");  // a forger would drop or recompute it; the proof still fails
  EvidenceReport r = Verify(json::serialize(b), verifier_key_);
  EXPECT_FALSE(r.ok);
  ASSERT_EQ(r.problems.size(), 1u) << Problems(r);
  EXPECT_NE(r.problems[0].find("event 2 (index " + json::serialize(e["index"])), std::string::npos)
      << r.problems[0];
  EXPECT_NE(r.problems[0].find("inclusion proof"), std::string::npos) << r.problems[0];
}

TEST_F(EvidenceTest, RemovedProofHashIsNamed) {
  Scenario s = Run();
  json::object b = json::parse(Bundle(s)).as_object();
  json::object& e = b["events"].as_array()[1].as_object();
  ASSERT_FALSE(e["proof"].as_array().empty());
  e["proof"].as_array().pop_back();
  EvidenceReport r = Verify(json::serialize(b), verifier_key_);
  EXPECT_FALSE(r.ok);
  ASSERT_EQ(r.problems.size(), 1u) << Problems(r);
  EXPECT_EQ(r.problems[0].rfind("event 1 (index", 0), 0u) << r.problems[0];
}

TEST_F(EvidenceTest, EditedCheckpointIsDetected) {
  Scenario s = Run();
  json::object b = json::parse(Bundle(s)).as_object();
  std::string note = S(b["checkpoint"]);
  size_t nl = note.find('\n');
  size_t nl2 = note.find('\n', nl + 1);
  uint64_t size = std::stoull(note.substr(nl + 1, nl2 - nl - 1));
  note.replace(nl + 1, nl2 - nl - 1, std::to_string(size + 1));
  b["checkpoint"] = note;
  EvidenceReport r = Verify(json::serialize(b), verifier_key_);
  EXPECT_FALSE(r.ok);
  ASSERT_FALSE(r.problems.empty());
  EXPECT_EQ(r.problems[0].rfind("checkpoint: does not verify under the pinned key", 0), 0u)
      << Problems(r);
}

TEST_F(EvidenceTest, WrongPinnedKeyIsDetected) {
  Scenario s = Run();
  std::string bundle = Bundle(s);
  auto other = crypto::Ed25519PrivateKey::Generate();
  std::string wrong =
      ledger::NoteVerifier::FromPublicKey("custody.test/ledger", other->public_key()).VerifierKey();
  EvidenceReport r = Verify(bundle, wrong);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(Problems(r).find("another verifier key than the pinned one"), std::string::npos)
      << Problems(r);
  EXPECT_NE(Problems(r).find("checkpoint: does not verify under the pinned key"), std::string::npos)
      << Problems(r);
  // A bundle re-signed by a forger under its own key verifies only unpinned.
  json::object b = json::parse(bundle).as_object();
  b["verifier_key"] = wrong;
  EXPECT_FALSE(Verify(json::serialize(b), std::nullopt).ok);
}

TEST_F(EvidenceTest, DuplicateEventsAndNonBundlesAreRefused) {
  Scenario s = Run();
  json::object b = json::parse(Bundle(s)).as_object();
  json::array& events = b["events"].as_array();
  events.push_back(events[0]);
  EvidenceReport r = Verify(json::serialize(b), verifier_key_);
  EXPECT_FALSE(r.ok);
  ASSERT_EQ(r.problems.size(), 1u) << Problems(r);
  EXPECT_NE(r.problems[0].find("appears more than once"), std::string::npos);
  EXPECT_EQ(VerifyEvidence("{}", std::nullopt).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(VerifyEvidence("not json", std::nullopt).status().code(), StatusCode::kInvalidArgument);
}

// The approval events of a session are in its bundle (indexed under it), and verify offline;
// a changed approver is caught like any other changed byte.
class ApprovalEvidenceTest : public ApprovalInvestigationTest {};

TEST_F(ApprovalEvidenceTest, BundleCarriesTheApprovalEventsAndVerifiesOffline) {
  AuthorizeResult held = Refund(500);
  ASSERT_TRUE(held.approval);
  Decide(held.approval->id, true, "bob");
  ASSERT_TRUE(Refund(500).allowed);
  AuthorizeResult again = Refund(900);
  ASSERT_TRUE(again.approval);
  svc_->CancelApprovals({sid_}, "session revoked");

  auto bundle = BuildEvidence(*tokens_, *ledger_, *store_, sid_);
  ASSERT_TRUE(bundle.ok()) << bundle.status().ToString();
  json::object b = json::parse(*bundle).as_object();
  std::map<std::string, int> kinds;
  size_t approve_at = 0;
  json::array& events = b["events"].as_array();
  for (size_t i = 0; i < events.size(); ++i) {
    kinds[S(events[i].at("kind"))]++;
    if (S(events[i].at("kind")) == "approval.approve") approve_at = i;
  }
  EXPECT_EQ(kinds["action.decision"], 3);
  EXPECT_EQ(kinds["approval.approve"], 1);
  EXPECT_EQ(kinds["approval.cancel"], 1);
  auto r = VerifyEvidence(*bundle, verifier_key_);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->ok);
  EXPECT_EQ(r->verified, events.size());

  // Someone else named as the approver: still canonical JSON, other bytes.
  json::object& e = events[approve_at].as_object();
  std::string jcs = S(e["jcs"]);
  size_t at = jcs.find("\"person\":\"bob\"");
  ASSERT_NE(at, std::string::npos) << jcs;
  jcs[at + 11] = 'i';  // "bob" -> "bib"
  e["jcs"] = jcs;
  auto tampered = VerifyEvidence(json::serialize(b), verifier_key_);
  ASSERT_TRUE(tampered.ok());
  EXPECT_FALSE(tampered->ok);
  ASSERT_EQ(tampered->problems.size(), 1u);
  EXPECT_NE(tampered->problems[0].find("approval.approve"), std::string::npos)
      << tampered->problems[0];
}

}  // namespace
}  // namespace custody::investigate

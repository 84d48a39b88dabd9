// The one derivation of index columns: every kind of event is indexed by the session and agent
// it concerns, whoever appends it; and the recorder's bytes are the canonical (RFC 8785) bytes.
#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <filesystem>
#include <set>

#include "common/jcs_value.h"
#include "crypto/ed25519.h"
#include "events/action_events.h"
#include "events/columns.h"
#include "events/identity_events.h"
#include "events/observed_events.h"
#include "events/recorder.h"
#include "events/tool_events.h"
#include "store/stores.h"

namespace custody::events {
namespace {

namespace json = boost::json;

TEST(Columns, ActorThenTargetThenAContainmentsSubject) {
  auto c = ColumnsOfText(
      R"({"event_id":"e1","kind":"action.decision","time":"2026-01-01T00:00:00.000Z",)"
      R"("actor":{"agent":"worker","session":"s-2"},"target":{"session":"s-9","agent":"x"}})");
  EXPECT_EQ(c.event_id, "e1");
  EXPECT_EQ(c.kind, "action.decision");
  EXPECT_EQ(c.time, "2026-01-01T00:00:00.000Z");
  EXPECT_EQ(c.session, "s-2");
  EXPECT_EQ(c.agent, "worker");

  // An event about a session it did not act as (a revocation by an admin).
  c = ColumnsOfText(R"({"kind":"revocation","target":{"session":"s-9"},"by":"admin"})");
  EXPECT_EQ(c.session, "s-9");
  EXPECT_EQ(c.agent, "");
  // A manual containment names its subject by scope.
  c = ColumnsOfText(R"({"kind":"containment","scope":"session","subject":"s-4"})");
  EXPECT_EQ(c.session, "s-4");
  c = ColumnsOfText(R"({"kind":"containment","scope":"agent","subject":"worker"})");
  EXPECT_EQ(c.agent, "worker");
  EXPECT_EQ(c.session, "");
  // A tripwire's containment acted as the session that tripped it.
  c = ColumnsOfText(
      R"({"kind":"containment","scope":"agent","subject":"worker","actor":{"session":"s-5","agent":"worker"}})");
  EXPECT_EQ(c.session, "s-5");
}

TEST(Columns, WhatIsNotAnObjectOrAStringIsLeftEmpty) {
  for (const char* bad : {"", "[1]", "not json", "42", R"({"kind":7,"actor":"planner"})"}) {
    auto c = ColumnsOfText(bad);
    EXPECT_EQ(c.kind, "") << bad;
    EXPECT_EQ(c.session, "") << bad;
    EXPECT_EQ(c.agent, "") << bad;
  }
}

// Every kind a builder makes is one the generic append route refuses, and nothing else is.
TEST(Columns, EveryBuiltKindIsACustodyKind) {
  auto kind_of = [](const auto& built) {
    if constexpr (std::is_same_v<std::decay_t<decltype(built)>, std::string>) {
      return std::string(json::parse(built).as_object().at("kind").as_string());
    } else {
      return std::string(built.at("kind").as_string());
    }
  };
  ActionOutcome refused;
  refused.refusal = "session revoked: x";
  SessionStart delegation;
  delegation.parent_sid = "s-1";
  std::vector<std::string> built = {kind_of(Build(ActionDecision{})),
                                    kind_of(Build(ActionOutcome{})),
                                    kind_of(Build(refused)),
                                    kind_of(Build(Containment{})),
                                    kind_of(Build(PolicyPublish{})),
                                    kind_of(Build(ToolDefinitionChange{})),
                                    kind_of(Build(ToolApprove{})),
                                    kind_of(Build(AgentRegister{})),
                                    kind_of(Build(AgentUpdate{})),
                                    kind_of(Build(CredentialIssue{})),
                                    kind_of(Build(SessionStart{})),
                                    kind_of(Build(delegation)),
                                    kind_of(Build(Revocation{})),
                                    kind_of(Build(KeyRotate{})),
                                    kind_of(Build(TokenRefuse{})),
                                    kind_of(Build(OAuthSignIn{})),
                                    kind_of(Build(OAuthConsent{})),
                                    kind_of(Build(OAuthCodeIssue{})),
                                    kind_of(Build(OAuthTokenIssue{})),
                                    kind_of(Build(OAuthReuse{})),
                                    kind_of(Build(OAuthClientRegister{})),
                                    kind_of(Build(ActionObserved{}))};
  built.push_back(kind_of(Build(OAuthSignOut{})));
  for (const char* kind :
       {"approval.approve", "approval.deny", "approval.expire", "approval.cancel"}) {
    ApprovalChange change;
    change.kind = kind;
    built.push_back(kind_of(Build(change)));
  }
  for (const char* type : {"Resource", "Prompt"}) {
    ItemDefinitionChange change;
    change.type = type;
    ItemApprove approve;
    approve.type = type;
    built.push_back(kind_of(Build(change)));
    built.push_back(kind_of(Build(approve)));
  }
  std::set<std::string> kinds;
  for (const std::string& kind : built) {
    EXPECT_TRUE(IsCustodyKind(kind)) << kind;
    kinds.insert(kind);
  }
  EXPECT_EQ(kinds.size(), 31u);
  for (std::string_view other : {"app.event", "test", "", "action", "action.decision2"}) {
    EXPECT_FALSE(IsCustodyKind(other)) << other;
  }
}

TEST(Recorder, RecordsCanonicalBytesWithTheDerivedColumnsAndRefusesWhatIsNotAnObject) {
  auto dir =
      std::filesystem::temp_directory_path() / ("custody_events_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  auto store = store::OpenLedgerFile((dir / "ledger.db").string());
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto key = crypto::Ed25519PrivateKey::Generate();
  ASSERT_TRUE(key.ok());
  ledger::LedgerOptions lo;
  lo.origin = "custody.test/events";
  auto led = ledger::Ledger::Open(std::move(*store), std::move(*key), lo);
  ASSERT_TRUE(led.ok()) << led.status().ToString();
  Recorder rec(**led);

  json::object e{{"time", "t"},
                 {"kind", "session.start"},
                 {"event_id", "e-1"},
                 {"actor", {{"session", "s-1"}, {"agent", "planner"}}},
                 {"n", 1.5}};
  auto a = rec.Record(e);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  auto leaf = (*led)->GetEntry(a->index);
  ASSERT_TRUE(leaf.ok());
  EXPECT_EQ(
      leaf->data,
      R"({"actor":{"agent":"planner","session":"s-1"},"event_id":"e-1","kind":"session.start","n":1.5,"time":"t"})");
  EXPECT_EQ(leaf->columns.session, "s-1");
  EXPECT_EQ(leaf->columns.agent, "planner");
  EXPECT_EQ(leaf->columns.event_id, "e-1");

  // Text takes the same path to the same bytes.
  auto b = rec.RecordText(
      R"({ "kind":"session.start", "event_id":"e-1", "time":"t", "n":1.5,
           "actor":{"agent":"planner","session":"s-1"} })");
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ((*led)->GetEntry(b->index)->data, leaf->data);
  EXPECT_EQ(rec.RecordText("{\"a\":1,\"a\":2}").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(rec.RecordText("{").status().code(), StatusCode::kInvalidArgument);
  led->reset();
  std::filesystem::remove_all(dir);
}

// The canonical bytes of each kind built here are pinned: a change of shape must be deliberate
// (and documented), since verifiers and SIEM mappings read these fields.
std::string Canonical(const json::object& o) { return *CanonicalizeJsonValue(o); }

Actor TestActor() { return Actor{"worker", "spiffe://custody.test/agent/worker/i1", "s-2", "j-2"}; }

TEST(ActionEvents, DecisionBytesArePinned) {
  ActionDecision d;
  d.event_id = "e-1";
  d.time = "2026-12-05T10:00:00.000Z";
  d.actor = TestActor();
  d.initiator = Initiator{"alice@example.com", "https://hr.example.com", false, "planner"};
  d.sid = "s-2";
  d.parent_sid = "s-1";
  d.root_sid = "s-1";
  d.depth = 1;
  d.chain_sids = {"s-1", "s-2"};
  d.chain_agents = {"planner", "worker"};
  d.trace_id = "t1";
  d.span_id = "p2";
  d.parent_span_id = "p1";
  d.txn = "x1";
  d.action = "call_tool";
  d.via = "mcp";
  d.target = TargetRef{"github/create_issue", "github", "create_issue", "", ""};
  d.arguments = json::object{{"digest", "sha256:ab"}};
  d.policy_hash = "h1";
  d.reasons = {"no-prod"};
  d.errors = {"p9: overflow"};
  d.context = json::object{{"via", "mcp"}};
  d.allowed = false;
  d.message = "forbidden by policy no-prod";
  d.parent_event = "e-0";
  d.containment = ActionDecision::Containment{"session", "no-prod", {"s-2"}};
  EXPECT_EQ(
      Canonical(Build(d)),
      R"({"actor":{"agent":"worker","credential":"j-2","instance":"spiffe://custody.test/agent/worker/i1","session":"s-2"},)"
      R"("arguments":{"digest":"sha256:ab"},"containment":{"revoked_sessions":["s-2"],"scope":"session","tripwire":"no-prod"},)"
      R"("context":{"via":"mcp"},"decision":"deny","event_id":"e-1",)"
      R"("initiator":{"asserted_by":"planner","id":"alice@example.com","issuer":"https://hr.example.com","verification":"asserted"},)"
      R"("kind":"action.decision","message":"forbidden by policy no-prod","parent_event":"e-0",)"
      R"("policy":{"determining":["no-prod"],"errors":["p9: overflow"],"set_hash":"h1"},"reasons":["no-prod"],)"
      R"("request":{"action":"call_tool","target":{"key":"github/create_issue","server":"github","tool":"create_issue"},"via":"mcp"},)"
      R"("session":{"chain":{"agents":["planner","worker"],"sids":["s-1","s-2"]},"depth":1,"parent_sid":"s-1","root_sid":"s-1","sid":"s-2"},)"
      R"("time":"2026-12-05T10:00:00.000Z","trace":{"parent_span_id":"p1","span_id":"p2","trace_id":"t1","txn":"x1"}})");
  // An allowed call on a typed resource, by a verified initiator, with no parent or tripwire.
  d.target = TargetRef{"Database:prod", "", "", "Database", "prod"};
  d.initiator = Initiator{"alice@example.com", "https://hr.example.com", true, ""};
  d.allowed = true;
  d.parent_event.clear();
  d.containment.reset();
  json::object o = Build(d);
  EXPECT_EQ(o.at("decision"), "allow");
  EXPECT_FALSE(o.contains("parent_event"));
  EXPECT_FALSE(o.contains("containment"));
  EXPECT_EQ(json::serialize(o.at("request").at("target")),
            R"({"key":"Database:prod","type":"Database","id":"prod"})");
  EXPECT_EQ(
      json::serialize(o.at("initiator")),
      R"({"id":"alice@example.com","issuer":"https://hr.example.com","verification":"verified"})");
}

TEST(ActionEvents, ApprovalOfADecisionBytesArePinned) {
  ActionDecision d;
  d.event_id = "e-1";
  d.time = "2026-12-05T10:00:00.000Z";
  d.actor = TestActor();
  d.sid = "s-2";
  d.action = "call_tool";
  d.target = TargetRef{"pay/refund", "pay", "refund", "", ""};
  d.reasons = {"big-refunds"};
  d.approval = DecisionApproval{"ap-1",
                                "required",
                                {R"(Group::"finance")"},
                                {"big-refunds"},
                                "sha256:cd",
                                "2026-12-05T11:00:00.000Z",
                                "",
                                "",
                                -1};
  json::object o = Build(d);
  EXPECT_EQ(o.at("decision"), "approval_required");
  EXPECT_EQ(
      Canonical(o.at("approval").as_object()),
      R"({"digest":"sha256:cd","expires_at":"2026-12-05T11:00:00.000Z","groups":["Group::\"finance\""],)"
      R"("id":"ap-1","policies":["big-refunds"],"state":"required"})");
  // The retry it allowed cites the approver and the approval's own event.
  d.allowed = true;
  d.approval->state = "used";
  d.approval->approver = "bob";
  d.approval->verified_by = "admin-token:0123456789abcdef";
  d.approval->approval_index = 41;
  o = Build(d);
  EXPECT_EQ(o.at("decision"), "allow");
  EXPECT_EQ(
      Canonical(o.at("approval").as_object()),
      R"({"approval_index":41,"approver":"bob","digest":"sha256:cd",)"
      R"("expires_at":"2026-12-05T11:00:00.000Z","groups":["Group::\"finance\""],"id":"ap-1",)"
      R"("policies":["big-refunds"],"state":"used","verified_by":"admin-token:0123456789abcdef"})");
  // A plain deny names no approval.
  d.allowed = false;
  d.approval.reset();
  EXPECT_EQ(Build(d).at("decision"), "deny");
}

TEST(ActionEvents, ApprovalChangeBytesArePinnedAndIndexedUnderItsSession) {
  ApprovalChange a;
  a.kind = "approval.approve";
  a.event_id = "e-5";
  a.time = "2026-12-05T10:01:00.000Z";
  a.approval_id = "ap-1";
  a.digest = "sha256:cd";
  a.groups = {"Group::\"finance\""};
  a.policies = {"big-refunds"};
  a.request_action = "e-1";
  a.action = "call_tool";
  a.target = "pay/refund";
  a.sid = "s-2";
  a.root_sid = "s-1";
  a.agent = "worker";
  a.instance = "spiffe://custody.test/agent/worker/i1";
  a.initiator = "alice@example.com";
  a.approver = "bob";
  a.verified_by = "admin-token:0123456789abcdef";
  a.reason = "ticket 42";
  a.expires_at = "2026-12-05T10:16:00.000Z";
  EXPECT_EQ(
      Canonical(Build(a)),
      R"({"approval":{"action":"call_tool","digest":"sha256:cd","groups":["Group::\"finance\""],"id":"ap-1",)"
      R"("policies":["big-refunds"],"request_action":"e-1","target":"pay/refund"},)"
      R"("by":{"person":"bob","verified_by":"admin-token:0123456789abcdef"},"event_id":"e-5",)"
      R"("expires_at":"2026-12-05T10:16:00.000Z","kind":"approval.approve","reason":"ticket 42","single_use":true,)"
      R"("target":{"agent":"worker","initiator":"alice@example.com","instance":"spiffe://custody.test/agent/worker/i1",)"
      R"("root_sid":"s-1","session":"s-2"},"time":"2026-12-05T10:01:00.000Z"})");
  store::EventColumns c = ColumnsOf(Build(a));
  EXPECT_EQ(c.session, "s-2");
  EXPECT_EQ(c.agent, "worker");
  // Expiry and cancellation name no person.
  a.kind = "approval.cancel";
  json::object o = Build(a);
  EXPECT_FALSE(o.contains("by"));
  EXPECT_FALSE(o.contains("expires_at"));
}

TEST(ActionEvents, OutcomeBytesArePinned) {
  ActionOutcome o;
  o.event_id = "e-3";
  o.time = "2026-12-05T10:00:01.000Z";
  o.action_id = "e-1";
  o.decision_index = 41;
  o.actor = TestActor();
  o.sid = "s-2";
  o.root_sid = "s-1";
  o.trace_id = "t1";
  o.span_id = "p2";
  o.txn = "x1";
  o.status = "error";
  o.error = "timeout";
  o.output_digest = "sha256:cd";
  o.latency_ms = 12;
  EXPECT_EQ(
      Canonical(Build(o)),
      R"({"action_id":"e-1","actor":{"agent":"worker","credential":"j-2","instance":"spiffe://custody.test/agent/worker/i1","session":"s-2"},)"
      R"("decision_index":41,"event_id":"e-3","kind":"action.outcome",)"
      R"("outcome":{"error":"timeout","latency_ms":12,"output_digest":"sha256:cd","status":"error"},)"
      R"("session":{"root_sid":"s-1","sid":"s-2"},"time":"2026-12-05T10:00:01.000Z","trace":{"span_id":"p2","trace_id":"t1","txn":"x1"}})");
  o.error.clear();
  o.output_digest.clear();
  o.latency_ms = -1;
  o.status = "ok";
  EXPECT_EQ(json::serialize(Build(o).at("outcome")), R"({"status":"ok"})");
  // A refused outcome (a revoked session's) keeps what was claimed and says why it was refused.
  o.refusal = "session revoked: exfiltration";
  EXPECT_EQ(
      Canonical(Build(o)),
      R"({"action_id":"e-1","actor":{"agent":"worker","credential":"j-2","instance":"spiffe://custody.test/agent/worker/i1","session":"s-2"},)"
      R"("decision_index":41,"event_id":"e-3","kind":"action.outcome_refused","outcome":{"status":"ok"},)"
      R"("refusal":"session revoked: exfiltration","session":{"root_sid":"s-1","sid":"s-2"},"time":"2026-12-05T10:00:01.000Z","trace":{"span_id":"p2","trace_id":"t1","txn":"x1"}})");
}

TEST(ActionEvents, ContainmentAndPolicyPublishBytesArePinned) {
  Containment manual;
  manual.event_id = "e-4";
  manual.time = "t";
  manual.scope = "agent";
  manual.subject = "worker";
  manual.reason = "exfiltration";
  manual.by = "admin";
  manual.revoked_sessions = {"s-2", "s-3"};
  EXPECT_EQ(Canonical(Build(manual)),
            R"({"by":"admin","event_id":"e-4","kind":"containment","reason":"exfiltration",)"
            R"("revoked_sessions":["s-2","s-3"],"scope":"agent","subject":"worker","time":"t"})");
  Containment tripped = manual;
  tripped.by.clear();
  tripped.actor = TestActor();
  tripped.scope = "session";
  tripped.subject = "s-2";
  tripped.reason = "tripwire no-prod";
  tripped.trigger_action = "e-1";
  tripped.trigger_policy = "no-prod";
  tripped.revoked_sessions = {"s-2"};
  tripped.trace_id = "t1";
  tripped.span_id = "p2";
  tripped.txn = "x1";
  EXPECT_EQ(
      Canonical(Build(tripped)),
      R"({"actor":{"agent":"worker","credential":"j-2","instance":"spiffe://custody.test/agent/worker/i1","session":"s-2"},)"
      R"("event_id":"e-4","kind":"containment","reason":"tripwire no-prod","revoked_sessions":["s-2"],)"
      R"("scope":"session","subject":"s-2","time":"t","trace":{"span_id":"p2","trace_id":"t1","txn":"x1"},)"
      R"("trigger":{"action_id":"e-1","policy":"no-prod"}})");
  PolicyPublish p;
  p.event_id = "e-5";
  p.time = "t";
  p.by = "admin";
  p.set_hash = "h2";
  p.policies = 4;
  p.entities = 2;
  p.entities_digest = "sha256:ef";
  p.tripwires = {"no-prod"};
  p.previous = "h1";
  EXPECT_EQ(
      Canonical(Build(p)),
      R"({"by":"admin","event_id":"e-5","kind":"policy.publish","policy":{"entities":2,)"
      R"("entities_digest":"sha256:ef","policies":4,"previous":"h1","set_hash":"h2","tripwires":["no-prod"]},"time":"t"})");
}

// An observed action says it was observed, names the agent as claimed apart from the session it
// was linked to, and is indexed under that session only.
TEST(ObservedEvents, ActionObservedBytesArePinnedAndIndexedUnderTheLinkedSession) {
  ActionObserved e;
  e.event_id = "e-9";
  e.time = "t";
  e.operation = "execute_tool";
  e.trace_id = "0af7651916cd43dd8448eb211c80319c";
  e.span_id = "b7ad6b7169203331";
  e.parent_span_id = "00f067aa0ba902b7";
  e.span_name = "execute_tool read";
  e.start_ns = "1";
  e.end_ns = "2";
  e.service = "svc";
  e.tool = "read";
  e.tool_call_id = "c1";
  e.claimed_agent_name = "worker";
  e.registered_agent = "worker";
  e.session = "s-1";
  e.session_agent = "worker";
  e.link = "decision-span";
  e.decision = "a-1";
  e.decision_target = "files/read";
  e.credential_type = "ingest-token";
  e.credential_id = "0123";
  e.status_code = "error";
  e.error_type = "timeout";
  json::object built = Build(e);
  EXPECT_EQ(
      Canonical(built),
      R"({"actor":{"agent":"worker","session":"s-1"},)"
      R"("claimed_agent":{"id":"","name":"worker","registered":"worker"},)"
      R"("credential":{"id":"0123","type":"ingest-token"},"event_id":"e-9",)"
      R"("kind":"action.observed",)"
      R"("link":{"asserted_by":"ingest-token:0123","decision":"a-1",)"
      R"("decision_target":"files/read","how":"decision-span","session":"s-1",)"
      R"("verification":"asserted"},"observed":true,"operation":"execute_tool",)"
      R"("span":{"end_ns":"2","name":"execute_tool read","parent_span_id":"00f067aa0ba902b7",)"
      R"("service":"svc","span_id":"b7ad6b7169203331","start_ns":"1",)"
      R"("trace_id":"0af7651916cd43dd8448eb211c80319c"},)"
      R"("status":{"code":"error","error_type":"timeout","message":""},"time":"t",)"
      R"("tool":{"call_id":"c1","mcp_method":"","name":"read"}})");
  auto c = ColumnsOf(built);
  EXPECT_EQ(c.session, "s-1");
  EXPECT_EQ(c.agent, "worker");
  // Sent with the session's own token: verified, no asserted_by; unlinked: indexed under nobody.
  e.link_verified = true;
  EXPECT_FALSE(Build(e).at("link").as_object().contains("asserted_by"));
  e.session = e.session_agent = "";
  e.link = "none";
  c = ColumnsOf(Build(e));
  EXPECT_EQ(c.session, "");
  EXPECT_EQ(c.agent, "");
}

TEST(ToolEvents, DefinitionChangeAndApproveBytesArePinned) {
  EXPECT_EQ(Canonical(Build(ToolDefinitionChange{"e-6", "t", "files", "read", "h1", "h2", "mcp"})),
            R"({"approved_hash":"h1","event_id":"e-6","kind":"tool.definition_change",)"
            R"("new_hash":"h2","target":{"server":"files","tool":"read"},"time":"t","via":"mcp"})");
  EXPECT_EQ(Canonical(Build(ToolApprove{"e-7", "t", "files", "read", "h2", "admin"})),
            R"({"approved_hash":"h2","by":"admin","event_id":"e-7","kind":"tool.approve",)"
            R"("target":{"server":"files","tool":"read"},"time":"t"})");
}

TEST(ToolEvents, ResourceAndPromptDefinitionChangeAndApproveBytesArePinned) {
  EXPECT_EQ(
      Canonical(Build(
          ItemDefinitionChange{"e-8", "t", "files", "Resource", "file:///a", "h1", "h2", "mcp"})),
      R"({"approved_hash":"h1","event_id":"e-8","kind":"resource.definition_change",)"
      R"("new_hash":"h2","target":{"id":"file:///a","server":"files","type":"Resource"},"time":"t",)"
      R"("via":"mcp"})");
  EXPECT_EQ(Canonical(Build(ItemApprove{"e-9", "t", "files", "Prompt", "greet", "h2", "admin"})),
            R"({"approved_hash":"h2","by":"admin","event_id":"e-9","kind":"prompt.approve",)"
            R"("target":{"id":"greet","server":"files","type":"Prompt"},"time":"t"})");
}

// The identity events are pinned as the text TokenService hands its sink (member order included);
// the ledger keeps their canonical bytes, and their columns come from ColumnsOfText like any
// other event's.
TEST(IdentityEvents, AgentRegisterAndUpdateBytesArePinned) {
  AgentRegister r;
  r.event_id = "e-8";
  r.time = "t";
  r.requested_by = "admin";
  r.name = "reporter";
  r.environment = "staging";
  r.business_owner = "finance";
  r.technical_owner = "platform";
  r.sponsor = "";
  r.revocation_contact = "sec@example.com";
  r.grants = {"crm/*", "db/read"};
  r.permissions = {};
  r.max_delegation_depth = 1;
  r.max_token_lifetime_s = 900;
  r.credential = "client_secret";
  EXPECT_EQ(Build(r),
            R"({"kind":"agent.register","event_id":"e-8","time":"t","requested_by":"admin",)"
            R"("agent":{"name":"reporter","environment":"staging","business_owner":"finance",)"
            R"("technical_owner":"platform","sponsor":"","revocation_contact":"sec@example.com",)"
            R"("grants":["crm/*","db/read"],"permissions":[],"max_delegation_depth":1,)"
            R"("max_token_lifetime_s":900,"credential":"client_secret"}})");
  EXPECT_EQ(Build(AgentUpdate{"e-9", "t", "admin", "reporter", "prod", {"db/read"}}),
            R"({"kind":"agent.update","event_id":"e-9","time":"t","requested_by":"admin",)"
            R"("agent":{"name":"reporter","environment":"prod","grants":["db/read"]}})");
  // Neither acts as, nor targets, an agent or a session: no session or agent column.
  auto c = ColumnsOfText(Build(r));
  EXPECT_EQ(c.kind, "agent.register");
  EXPECT_EQ(c.event_id, "e-8");
  EXPECT_EQ(c.agent, "");
  EXPECT_EQ(c.session, "");
}

TEST(IdentityEvents, CredentialIssueAndSessionBytesArePinned) {
  const std::string instance = "spiffe://custody.test/agent/worker/instance/i1";
  std::string issue =
      Build(CredentialIssue{"e-10", "t", "worker", instance, "j-1", 1700000300, "aud-1", "worker"});
  EXPECT_EQ(issue,
            R"({"kind":"credential.issue","event_id":"e-10","time":"t","actor":{"agent":"worker",)"
            R"("instance":"spiffe://custody.test/agent/worker/instance/i1","credential":"j-1"},)"
            R"("credential":{"type":"jwt-svid","jti":"j-1","exp":1700000300,"aud":["aud-1"]},)"
            R"("requested_by":"worker"})");
  EXPECT_EQ(ColumnsOfText(issue).agent, "worker");
  EXPECT_EQ(ColumnsOfText(issue).session, "");

  SessionStart s;
  s.event_id = "e-11";
  s.time = "t";
  s.agent = "planner";
  s.instance = "spiffe://custody.test/agent/planner/instance/i0";
  s.jti = "j-0";
  s.initiator = Initiator{"alice@example.com", "https://idp.example.com", true, ""};
  s.sid = "s-1";
  s.root_sid = "s-1";
  s.depth = 0;
  s.scopes = {"db/read", "github/*"};
  s.exp = 1700003600;
  s.objective_digest = "ab12";
  s.txn = "x1";
  s.requested_by = "planner";
  std::string root = Build(s);
  EXPECT_EQ(root,
            R"({"kind":"session.start","event_id":"e-11","time":"t","actor":{"agent":"planner",)"
            R"("instance":"spiffe://custody.test/agent/planner/instance/i0","session":"s-1",)"
            R"("credential":"j-0"},"initiator":{"id":"alice@example.com",)"
            R"("issuer":"https://idp.example.com","verification":"verified"},)"
            R"("session":{"sid":"s-1","parent_sid":"","root_sid":"s-1","depth":0,)"
            R"("scopes":["db/read","github/*"],"exp":1700003600,"objective_digest":"ab12"},)"
            R"("trace":{"txn":"x1"},"requested_by":"planner"})");
  auto c = ColumnsOfText(root);
  EXPECT_EQ(c.session, "s-1");
  EXPECT_EQ(c.agent, "planner");
  // A child session is a delegation; an asserted initiator names who asserted it.
  s.event_id = "e-12";
  s.agent = "worker";
  s.instance = instance;
  s.jti = "j-2";
  s.initiator = Initiator{"nightly", "", false, "planner"};
  s.sid = "s-2";
  s.parent_sid = "s-1";
  s.depth = 1;
  s.scopes = {};
  s.objective_digest = "";
  s.requested_by = "worker";
  EXPECT_EQ(Build(s),
            R"({"kind":"delegation","event_id":"e-12","time":"t","actor":{"agent":"worker",)"
            R"("instance":"spiffe://custody.test/agent/worker/instance/i1","session":"s-2",)"
            R"("credential":"j-2"},"initiator":{"id":"nightly","issuer":"",)"
            R"("verification":"asserted","asserted_by":"planner"},)"
            R"("session":{"sid":"s-2","parent_sid":"s-1","root_sid":"s-1","depth":1,)"
            R"("scopes":[],"exp":1700003600,"objective_digest":""},)"
            R"("trace":{"txn":"x1"},"requested_by":"worker"})");
  EXPECT_EQ(ColumnsOfText(Build(s)).session, "s-2");
}

TEST(IdentityEvents, RevocationAndKeyRotateBytesArePinned) {
  std::string session =
      Build(Revocation{"e-13", "t", "admin", Revocation::Of::kSession, "s-1", "", {"s-1", "s-2"}});
  EXPECT_EQ(session, R"({"kind":"revocation","event_id":"e-13","time":"t","requested_by":"admin",)"
                     R"("target":{"session":"s-1"},"reason":"","revoked_sessions":["s-1","s-2"]})");
  EXPECT_EQ(ColumnsOfText(session).session, "s-1");
  std::string agent = Build(
      Revocation{"e-14", "t", "admin", Revocation::Of::kAgent, "worker", "agent disabled", {}});
  EXPECT_EQ(agent,
            R"({"kind":"revocation","event_id":"e-14","time":"t","requested_by":"admin",)"
            R"("target":{"agent":"worker"},"reason":"agent disabled","revoked_sessions":[]})");
  EXPECT_EQ(ColumnsOfText(agent).agent, "worker");
  // A credential's revocation has no reason and no sessions, even when given them.
  std::string credential =
      Build(Revocation{"e-15", "t", "admin", Revocation::Of::kCredential, "j-2", "x", {"s-2"}});
  EXPECT_EQ(credential,
            R"({"kind":"revocation","event_id":"e-15","time":"t","requested_by":"admin",)"
            R"("target":{"credential":"j-2"}})");
  EXPECT_EQ(ColumnsOfText(credential).session, "");
  EXPECT_EQ(Build(KeyRotate{"e-16", "t", "admin:ops", "k2", {"k1"}, 1700086430}),
            R"({"kind":"key.rotate","event_id":"e-16","time":"t","requested_by":"admin:ops",)"
            R"("kid":"k2","retired_kids":["k1"],"publish_until":1700086430})");
  EXPECT_EQ(Build(KeyRotate{"e-17", "t", "", "k3", {}, 0}),
            R"({"kind":"key.rotate","event_id":"e-17","time":"t","requested_by":"",)"
            R"("kid":"k3","retired_kids":[],"publish_until":0})");
}

// A refused token request: the agent and the session are columns only once verified.
TEST(IdentityEvents, TokenRefuseBytesArePinned) {
  TokenRefuse r;
  r.event_id = "e-18";
  r.time = "t";
  r.grant_type = "urn:ietf:params:oauth:grant-type:token-exchange";
  r.client_id = "worker";
  r.authenticated = true;
  r.client_auth = "private_key_jwt";
  r.audience = "gw";
  r.scope = "db/write";
  r.subject_token_type = "urn:ietf:params:oauth:token-type:access_token";
  r.actor_token_type = "urn:ietf:params:oauth:token-type:jwt";
  r.instance = "spiffe://custody.test/agent/worker/instance/i1";
  r.session = "s-1";
  r.error = "invalid_scope";
  r.reason = "scope db/write exceeds the parent session's scope";
  std::string refused = Build(r);
  EXPECT_EQ(refused,
            R"({"kind":"token.refuse","event_id":"e-18","time":"t","actor":{"agent":"worker",)"
            R"("instance":"spiffe://custody.test/agent/worker/instance/i1"},)"
            R"("target":{"session":"s-1"},"client":{"id":"worker","authenticated":true,)"
            R"("authentication":"private_key_jwt"},"request":{)"
            R"("grant_type":"urn:ietf:params:oauth:grant-type:token-exchange","audience":"gw",)"
            R"("scope":"db/write",)"
            R"("subject_token_type":"urn:ietf:params:oauth:token-type:access_token",)"
            R"("actor_token_type":"urn:ietf:params:oauth:token-type:jwt","requested_lifetime":""},)"
            R"("refusal":{"error":"invalid_scope",)"
            R"("reason":"scope db/write exceeds the parent session's scope"}})");
  EXPECT_EQ(ColumnsOfText(refused).agent, "worker");
  EXPECT_EQ(ColumnsOfText(refused).session, "s-1");
  // Not authenticated: the client is named as it asserted itself, under no agent.
  TokenRefuse s;
  s.event_id = "e-19";
  s.time = "t";
  s.grant_type = "client_credentials";
  s.client_id = "worker";
  s.client_auth = "client_secret";
  s.error = "invalid_client";
  s.reason = "client authentication failed";
  std::string stranger = Build(s);
  EXPECT_EQ(stranger,
            R"({"kind":"token.refuse","event_id":"e-19","time":"t",)"
            R"("actor":{"agent":"","instance":""},"target":{"session":""},)"
            R"("client":{"id":"worker","authenticated":false,"authentication":"client_secret"},)"
            R"("request":{"grant_type":"client_credentials","audience":"","scope":"",)"
            R"("subject_token_type":"","actor_token_type":"","requested_lifetime":""},)"
            R"("refusal":{"error":"invalid_client","reason":"client authentication failed"}})");
  EXPECT_EQ(ColumnsOfText(stranger).agent, "");
  EXPECT_EQ(ColumnsOfText(stranger).session, "");
}

// The authorization code flow's events (identity/authorization_server.h): ids of codes and
// refresh token families, never a code or token.
TEST(IdentityEvents, OAuthBytesArePinned) {
  Initiator alice{"alice", "https://idp.test", true, ""};
  EXPECT_EQ(Build(OAuthSignIn{"e-1", "t", alice, "app", "assistant"}),
            R"({"kind":"oauth.sign_in","event_id":"e-1","time":"t","actor":{"agent":"assistant"},)"
            R"("initiator":{"id":"alice","issuer":"https://idp.test","verification":"verified"},)"
            R"("client":{"id":"app"}})");
  // An approver's sign-out: the person and the pages, never the session's cookie.
  EXPECT_EQ(Build(OAuthSignOut{"e-9", "t", alice, "custody:approvals"}),
            R"({"kind":"oauth.sign_out","event_id":"e-9","time":"t","actor":{"agent":""},)"
            R"("initiator":{"id":"alice","issuer":"https://idp.test","verification":"verified"},)"
            R"("client":{"id":"custody:approvals"}})");
  EXPECT_EQ(Build(OAuthConsent{
                "e-2", "t", "admin:1", "revoked", alice, "app", "assistant", {"fake/echo"}}),
            R"({"kind":"oauth.consent","event_id":"e-2","time":"t","requested_by":"admin:1",)"
            R"("decision":"revoked","actor":{"agent":"assistant"},)"
            R"("initiator":{"id":"alice","issuer":"https://idp.test","verification":"verified"},)"
            R"("client":{"id":"app"},"scopes":["fake/echo"]})");
  EXPECT_EQ(
      Build(OAuthCodeIssue{"e-3",
                           "t",
                           "c-1",
                           "app",
                           "assistant",
                           "http://127.0.0.1/cb",
                           "https://c.test/mcp",
                           alice,
                           {"fake/echo"},
                           60}),
      R"({"kind":"oauth.code_issue","event_id":"e-3","time":"t","actor":{"agent":"assistant"},)"
      R"("initiator":{"id":"alice","issuer":"https://idp.test","verification":"verified"},)"
      R"("client":{"id":"app","redirect_uri":"http://127.0.0.1/cb"},)"
      R"("code":{"id":"c-1","exp":60},"resource":"https://c.test/mcp","scopes":["fake/echo"]})");
  EXPECT_EQ(
      Build(OAuthTokenIssue{"e-4",
                            "t",
                            "refresh_token",
                            "app",
                            "assistant",
                            "spiffe://i",
                            "s-1",
                            "j-1",
                            "f-1",
                            "",
                            alice,
                            {"fake/echo"},
                            90}),
      R"({"kind":"oauth.token_issue","event_id":"e-4","time":"t","grant_type":"refresh_token",)"
      R"("actor":{"agent":"assistant","instance":"spiffe://i","session":"s-1","credential":"j-1"},)"
      R"("initiator":{"id":"alice","issuer":"https://idp.test","verification":"verified"},)"
      R"("client":{"id":"app"},"family":"f-1","code":"","scopes":["fake/echo"],"exp":90})");
  EXPECT_EQ(Build(OAuthReuse{
                "e-5", "t", "refresh_token", "app", "assistant", "f-1", "", alice, {"s-1", "s-2"}}),
            R"({"kind":"oauth.reuse","event_id":"e-5","time":"t","what":"refresh_token",)"
            R"("actor":{"agent":"assistant"},)"
            R"("initiator":{"id":"alice","issuer":"https://idp.test","verification":"verified"},)"
            R"("client":{"id":"app"},"family":"f-1","code":"","revoked_sessions":["s-1","s-2"]})");
  EXPECT_EQ(Build(OAuthClientRegister{"e-6", "t", "dcr_x", "Tool", {"https://a.test/cb"}}),
            R"({"kind":"oauth.client_register","event_id":"e-6","time":"t",)"
            R"("client":{"id":"dcr_x","name":"Tool","redirect_uris":["https://a.test/cb"]}})");
}

}  // namespace
}  // namespace custody::events

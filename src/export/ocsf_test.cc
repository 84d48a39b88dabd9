// The OCSF mapping: each kind Custody records maps to its class with the class's required
// attributes, the agent as the actor and the initiator kept apart, and the ledger index and leaf
// hash carried so a record can be proved against the log. Events are made by the real builders
// (events/*.h), so a change of an event's shape shows here. The records are also checked
// against the released OCSF schema by tests/ocsf/validate.mjs (EveryKindValidatesAgainstOcsf).
#include "export/ocsf.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "common/encoding.h"
#include "common/jcs_value.h"
#include "events/action_events.h"
#include "events/identity_events.h"
#include "events/tool_events.h"
#include "ledger/merkle.h"

namespace custody::ocsf {
namespace {

namespace json = boost::json;

const events::Actor kWorker{"worker", "spiffe://custody.test/agent/worker/i1", "s-2", "j-2"};
const events::Initiator kAlice{"alice@example.com", "https://idp.example.com", true, ""};

std::string Leaf(const json::object& o) { return *CanonicalizeJsonValue(o); }
std::string Leaf(const std::string& text) { return *CanonicalizeJsonValue(json::parse(text)); }

events::ActionDecision Decision(bool allowed) {
  events::ActionDecision d;
  d.event_id = "e-1";
  d.time = "2026-12-05T10:00:00.250Z";
  d.actor = kWorker;
  d.initiator = kAlice;
  d.sid = "s-2";
  d.parent_sid = d.root_sid = "s-1";
  d.depth = 1;
  d.chain_sids = {"s-1", "s-2"};
  d.chain_agents = {"planner", "worker"};
  d.trace_id = "0af7651916cd43dd8448eb211c80319c";
  d.span_id = "b7ad6b7169203331";
  d.action = "call_tool";
  d.via = "mcp";
  d.target = {"github/create_issue", "github", "create_issue", "", ""};
  d.arguments["digest"] = "sha256:ab";
  d.policy_hash = "sha256:1111";
  d.reasons = {allowed ? "allow-github" : "no-prod"};
  d.allowed = allowed;
  d.message = allowed ? "" : "forbidden by policy no-prod";
  return d;
}

// Every kind, as the builders make it: (kind, leaf bytes).
std::vector<std::pair<std::string, std::string>> AllKinds() {
  std::vector<std::pair<std::string, std::string>> out;
  auto add = [&out](std::string leaf) {
    json::value parsed = json::parse(leaf);
    const json::value* k = parsed.as_object().if_contains("kind");
    std::string kind = k && k->is_string() ? std::string(k->get_string()) : "";
    out.emplace_back(kind, std::move(leaf));
  };
  add(Leaf(events::Build(Decision(true))));
  {
    auto d = Decision(false);
    d.event_id = "e-1b";
    add(Leaf(events::Build(d)));
  }
  {
    auto d = Decision(false);
    d.event_id = "e-1c";
    d.containment = events::ActionDecision::Containment{"session", "no-prod", {"s-2"}};
    add(Leaf(events::Build(d)));
  }
  {
    events::ActionOutcome o;
    o.event_id = "e-3";
    o.time = "2026-12-05T10:00:01.000Z";
    o.action_id = "e-1";
    o.decision_index = 7;
    o.actor = kWorker;
    o.sid = "s-2";
    o.root_sid = "s-1";
    o.trace_id = "0af7651916cd43dd8448eb211c80319c";
    o.status = "ok";
    o.latency_ms = 12;
    add(Leaf(events::Build(o)));
    o.event_id = "e-3b";
    o.refusal = "session revoked: exfiltration";
    add(Leaf(events::Build(o)));
  }
  {
    events::Containment c;
    c.event_id = "e-4";
    c.time = "2026-12-05T10:00:02.000Z";
    c.actor = kWorker;
    c.scope = "session";
    c.subject = "s-2";
    c.reason = "tripwire no-prod";
    c.trigger_action = "e-1c";
    c.trigger_policy = "no-prod";
    c.revoked_sessions = {"s-2"};
    add(Leaf(events::Build(c)));
    events::Containment op;
    op.event_id = "e-4b";
    op.time = "2026-12-05T10:00:02.000Z";
    op.scope = "agent";
    op.subject = "worker";
    op.reason = "exfiltration";
    op.by = "admin";
    add(Leaf(events::Build(op)));
  }
  {
    events::PolicyPublish p;
    p.event_id = "e-5";
    p.time = "2026-12-05T09:00:00.000Z";
    p.by = "admin";
    p.set_hash = "sha256:1111";
    p.policies = 3;
    add(Leaf(events::Build(p)));
  }
  for (const char* kind :
       {"approval.approve", "approval.deny", "approval.expire", "approval.cancel"}) {
    events::ApprovalChange a;
    a.kind = kind;
    a.event_id = std::string("e-") + kind;
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
    a.instance = kWorker.instance;
    a.initiator = "alice@example.com";
    if (a.kind == "approval.approve" || a.kind == "approval.deny") {
      a.approver = "bob";
      a.verified_by = "oidc:https://idp.example.com";
    }
    add(Leaf(events::Build(a)));
  }
  {
    events::ToolDefinitionChange t{"e-6", "t", "files", "read", "h1", "h2", "mcp"};
    t.time = "2026-12-05T10:02:00.000Z";
    add(Leaf(events::Build(t)));
    events::ToolApprove ta{"e-7", "2026-12-05T10:03:00.000Z", "files", "read", "h2", "admin"};
    add(Leaf(events::Build(ta)));
    events::ItemDefinitionChange r{
        "e-8", "2026-12-05T10:02:00.000Z", "files", "Resource", "file:///a", "h1", "h2", "mcp"};
    add(Leaf(events::Build(r)));
    events::ItemDefinitionChange pr{
        "e-8b", "2026-12-05T10:02:00.000Z", "files", "Prompt", "greet", "h1", "h2", "mcp"};
    add(Leaf(events::Build(pr)));
    events::ItemApprove ia{"e-9",  "2026-12-05T10:03:00.000Z", "files", "Prompt", "greet", "h2",
                           "admin"};
    add(Leaf(events::Build(ia)));
  }
  {
    events::AgentRegister a;
    a.event_id = "e-10";
    a.time = "2026-12-05T08:00:00.000Z";
    a.requested_by = "admin";
    a.name = "worker";
    a.environment = "prod";
    a.grants = {"github/*"};
    a.credential = "private_key_jwt";
    add(Leaf(events::Build(a)));
    events::AgentUpdate u{"e-11",         "2026-12-05T08:01:00.000Z", "admin", "worker", "prod",
                          {"github/read"}};
    add(Leaf(events::Build(u)));
    events::CredentialIssue c{"e-12",    "2026-12-05T08:02:00.000Z",
                              "worker",  kWorker.instance,
                              "j-1",     1700000300,
                              "custody", "worker"};
    add(Leaf(events::Build(c)));
    events::SessionStart s;
    s.event_id = "e-13";
    s.time = "2026-12-05T08:03:00.000Z";
    s.agent = "planner";
    s.instance = "spiffe://custody.test/agent/planner/i0";
    s.jti = "j-0";
    s.initiator = kAlice;
    s.sid = s.root_sid = "s-1";
    s.scopes = {"github/*"};
    s.exp = 1700003600;
    add(Leaf(events::Build(s)));
    s.event_id = "e-14";
    s.agent = "worker";
    s.instance = kWorker.instance;
    s.jti = "j-2";
    s.sid = "s-2";
    s.parent_sid = "s-1";
    s.depth = 1;
    s.initiator = {"nightly", "", false, "planner"};
    add(Leaf(events::Build(s)));
    for (auto of : {events::Revocation::Of::kSession, events::Revocation::Of::kAgent,
                    events::Revocation::Of::kCredential}) {
      events::Revocation r;
      r.event_id = "e-15";
      r.time = "2026-12-05T11:00:00.000Z";
      r.requested_by = "admin";
      r.of = of;
      r.subject = of == events::Revocation::Of::kSession ? "s-1" : "worker";
      r.reason = "done";
      add(Leaf(events::Build(r)));
    }
    events::KeyRotate k{"e-16", "2026-12-05T11:00:00.000Z", "admin", "k2", {"k1"}, 1700086430};
    add(Leaf(events::Build(k)));
    events::TokenRefuse t;
    t.event_id = "e-17";
    t.time = "2026-12-05T11:00:00.000Z";
    t.grant_type = "urn:ietf:params:oauth:grant-type:token-exchange";
    t.client_id = "worker";
    t.authenticated = true;
    t.client_auth = "private_key_jwt";
    t.error = "invalid_scope";
    t.reason = "scope db/write exceeds the parent session's scope";
    add(Leaf(events::Build(t)));
    events::TokenRefuse anon;
    anon.event_id = "e-17b";
    anon.time = "2026-12-05T11:00:00.000Z";
    anon.grant_type = "client_credentials";
    anon.error = "invalid_client";
    anon.reason = "client authentication failed";
    add(Leaf(events::Build(anon)));
    add(Leaf(events::Build(
        events::OAuthSignIn{"e-18", "2026-12-05T11:00:00.000Z", kAlice, "app", "assistant"})));
    add(Leaf(events::Build(
        events::OAuthSignOut{"e-18b", "2026-12-05T11:05:00.000Z", kAlice, "custody:approvals"})));
    add(Leaf(events::Build(events::OAuthConsent{"e-19",
                                                "2026-12-05T11:00:00.000Z",
                                                "",
                                                "granted",
                                                kAlice,
                                                "app",
                                                "assistant",
                                                {"fake/echo"}})));
    add(Leaf(events::Build(events::OAuthCodeIssue{"e-20",
                                                  "2026-12-05T11:00:00.000Z",
                                                  "c-1",
                                                  "app",
                                                  "assistant",
                                                  "http://127.0.0.1/cb",
                                                  "https://c.test/mcp",
                                                  kAlice,
                                                  {"fake/echo"},
                                                  60})));
    add(Leaf(events::Build(events::OAuthTokenIssue{"e-21",
                                                   "2026-12-05T11:00:00.000Z",
                                                   "authorization_code",
                                                   "app",
                                                   "assistant",
                                                   "spiffe://custody.test/agent/assistant/i9",
                                                   "s-9",
                                                   "j-9",
                                                   "f-1",
                                                   "c-1",
                                                   kAlice,
                                                   {"fake/echo"},
                                                   1700003600})));
    add(Leaf(events::Build(events::OAuthReuse{"e-22",
                                              "2026-12-05T11:00:00.000Z",
                                              "refresh_token",
                                              "app",
                                              "assistant",
                                              "f-1",
                                              "",
                                              kAlice,
                                              {"s-9"}})));
    add(Leaf(events::Build(events::OAuthClientRegister{
        "e-23", "2026-12-05T11:00:00.000Z", "dcr_x", "Tool", {"https://a.test/cb"}})));
  }
  // action.observed (OTLP ingest), as its builder writes it.
  add(Leaf(std::string(
      R"({"actor":{"agent":"worker","session":"s-1"},)"
      R"("claimed_agent":{"id":"","name":"worker","registered":"worker"},)"
      R"("credential":{"id":"0123","type":"ingest-token"},"event_id":"e-24",)"
      R"("kind":"action.observed","link":{"decision":"e-1","how":"decision-span",)"
      R"("session":"s-1","verification":"asserted"},"observed":true,)"
      R"("operation":"execute_tool","span":{"span_id":"b7ad6b7169203331",)"
      R"("trace_id":"0af7651916cd43dd8448eb211c80319c","service":"svc"},)"
      R"("status":{"code":"error","error_type":"timeout"},"time":"2026-12-05T11:00:00.000Z",)"
      R"("tool":{"call_id":"c1","name":"read"}})")));
  // What POST /v1/ledger/entries appends: any JSON object.
  add(Leaf(std::string(R"({"kind":"custom.note","n":1})")));
  add(Leaf(std::string(R"({"hello":"world"})")));
  return out;
}

json::object Map(uint64_t index, const std::string& leaf) {
  Result<std::string> r = MapEntry(index, leaf, {.origin = "custody.test/ledger"});
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return json::parse(*r).as_object();
}

// The required attributes of each class (OCSF 1.8.0, with base_event's), as the schema lists
// them; the validator checks the rest.
std::vector<std::string> Required(int64_t class_uid) {
  std::vector<std::string> base = {"activity_id", "category_uid", "class_uid", "metadata",
                                   "severity_id", "time",         "type_uid"};
  switch (class_uid) {
    case 6003:
      base.insert(base.end(), {"actor", "api", "src_endpoint"});
      break;
    case 3002:
      base.insert(base.end(), {"user"});
      break;
    case 3003:
      base.insert(base.end(), {"user", "privileges"});
      break;
    case 3004:
      base.insert(base.end(), {"entity"});
      break;
    case 3005:
      base.insert(base.end(), {"user", "privileges"});
      break;
    case 2004:
      base.insert(base.end(), {"finding_info"});
      break;
  }
  return base;
}

TEST(OcsfTest, EveryKindMapsToItsClassWithTheRequiredAttributes) {
  const std::map<std::string, int64_t> expected = {{"action.decision", 6003},
                                                   {"action.outcome", 6003},
                                                   {"action.outcome_refused", 6003},
                                                   {"action.observed", 6003},
                                                   {"credential.issue", 3002},
                                                   {"token.refuse", 3002},
                                                   {"oauth.sign_in", 3002},
                                                   {"oauth.sign_out", 3002},
                                                   {"oauth.code_issue", 3002},
                                                   {"oauth.token_issue", 3002},
                                                   {"session.start", 3003},
                                                   {"delegation", 3003},
                                                   {"agent.register", 3004},
                                                   {"revocation", 3004},
                                                   {"key.rotate", 3004},
                                                   {"oauth.client_register", 3004},
                                                   {"policy.publish", 3004},
                                                   {"tool.approve", 3004},
                                                   {"prompt.approve", 3004},
                                                   {"agent.update", 3005},
                                                   {"oauth.consent", 3005},
                                                   {"approval.approve", 3005},
                                                   {"approval.deny", 3005},
                                                   {"approval.expire", 3005},
                                                   {"approval.cancel", 3005},
                                                   {"containment", 2004},
                                                   {"oauth.reuse", 2004},
                                                   {"tool.definition_change", 2004},
                                                   {"resource.definition_change", 2004},
                                                   {"prompt.definition_change", 2004},
                                                   {"custom.note", 0},
                                                   {"", 0}};
  std::set<std::string> seen;
  uint64_t index = 0;
  for (const auto& [kind, leaf] : AllKinds()) {
    SCOPED_TRACE(kind + " " + leaf);
    json::object r = Map(index++, leaf);
    int64_t class_uid = r.at("class_uid").as_int64();
    bool tripwire = kind == "action.decision" && leaf.find("\"containment\"") != std::string::npos;
    ASSERT_TRUE(expected.count(kind)) << "a kind the test does not know";
    EXPECT_EQ(class_uid, tripwire ? 2004 : expected.at(kind));
    EXPECT_EQ(r.at("category_uid").as_int64(), class_uid / 1000);
    EXPECT_EQ(r.at("type_uid").as_int64(), class_uid * 100 + r.at("activity_id").as_int64());
    for (const auto& a : Required(class_uid)) EXPECT_TRUE(r.contains(a)) << a;
    EXPECT_EQ(r.at("metadata").at("version").as_string(), "1.8.0");
    if (!kind.empty()) {
      EXPECT_EQ(r.at("metadata").at("event_code").as_string(), kind) << "kind kept";
      EXPECT_EQ(ClassUidForKind(kind), expected.at(kind));
    }
    seen.insert(kind);
  }
  EXPECT_EQ(seen.size(), expected.size()) << "every kind above was mapped";
}

TEST(OcsfTest, TheAgentIsTheActorAndTheInitiatorIsKeptApart) {
  json::object r = Map(3, Leaf(events::Build(Decision(true))));
  const auto& actor = r.at("actor").as_object();
  EXPECT_EQ(actor.at("user").at("uid").as_string(), kWorker.instance);
  EXPECT_EQ(actor.at("user").at("name").as_string(), "worker");
  EXPECT_EQ(actor.at("user").at("type").as_string(), "AI Agent");
  EXPECT_EQ(actor.at("app_name").as_string(), "worker");
  EXPECT_EQ(actor.at("session").at("uid").as_string(), "s-2");
  EXPECT_EQ(actor.at("session").at("credential_uid").as_string(), "j-2");
  EXPECT_EQ(json::serialize(r).find("alice@example.com") == std::string::npos, false);
  // The person appears only as the initiator, never in actor.
  EXPECT_EQ(json::serialize(actor).find("alice"), std::string::npos);
  const auto& initiator = r.at("unmapped").at("custody").at("initiator").as_object();
  EXPECT_EQ(initiator.at("uid").as_string(), "alice@example.com");
  EXPECT_EQ(initiator.at("verification").as_string(), "verified");
  // The draft ai_agent object's shape, inside unmapped.
  EXPECT_EQ(r.at("unmapped").at("ai_agent").at("instance_uid").as_string(), kWorker.instance);
  // The decision and its policy set.
  const auto& auth = actor.at("authorizations").as_array().at(0).as_object();
  EXPECT_EQ(auth.at("decision").as_string(), "allow");
  EXPECT_EQ(auth.at("policy").at("uid").as_string(), "sha256:1111");
  EXPECT_EQ(r.at("status_id").as_int64(), 1);
  EXPECT_EQ(r.at("time").as_int64(), 1796464800250);  // 2026-12-05T10:00:00.250Z

  json::object deny = Map(4, Leaf(events::Build(Decision(false))));
  EXPECT_EQ(deny.at("actor").at("authorizations").at(0).at("decision").as_string(), "deny");
  EXPECT_EQ(deny.at("status_id").as_int64(), 2);
  EXPECT_EQ(deny.at("metadata").at("correlation_uid").as_string(),
            "0af7651916cd43dd8448eb211c80319c");
}

TEST(OcsfTest, TheLedgerIndexAndLeafHashProveTheRecord) {
  std::string leaf = Leaf(events::Build(Decision(true)));
  json::object r = Map(41, leaf);
  std::string hash = HexEncode(ledger::HashLeaf(leaf));
  EXPECT_EQ(r.at("metadata").at("sequence").as_int64(), 41);
  EXPECT_EQ(r.at("metadata").at("uid").as_string(), "e-1");
  const auto& tags = r.at("metadata").at("tags").as_array();
  EXPECT_EQ(tags.at(0).at("name").as_string(), "custody.ledger.index");
  EXPECT_EQ(tags.at(0).at("value").as_string(), "41");
  EXPECT_EQ(tags.at(1).at("name").as_string(), "custody.ledger.leaf_hash");
  EXPECT_EQ(tags.at(1).at("value").as_string(), hash);
  EXPECT_EQ(r.at("unmapped").at("custody").at("ledger").at("leaf_hash").as_string(), hash);
  EXPECT_EQ(r.at("unmapped").at("attestation_list").at(0).at("fingerprint").at("value").as_string(),
            hash);
  // raw_data is the leaf: recomputing its leaf hash gives the carried one, and a changed record
  // no longer does.
  std::string raw(r.at("raw_data").as_string());
  EXPECT_EQ(raw, leaf);
  EXPECT_EQ(HexEncode(ledger::HashLeaf(raw)), hash);
  raw.replace(raw.find("allow"), 5, "deny!");
  EXPECT_NE(HexEncode(ledger::HashLeaf(raw)), hash);
  // An index beyond OCSF's 32-bit sequence is still in the tag.
  json::object big = Map(uint64_t(1) << 33, leaf);
  EXPECT_FALSE(big.at("metadata").as_object().contains("sequence"));
  EXPECT_EQ(big.at("metadata").at("tags").at(0).at("value").as_string(), "8589934592");
}

TEST(OcsfTest, ObservedIsMarkedObserved) {
  for (const auto& [kind, leaf] : AllKinds()) {
    if (kind != "action.observed") continue;
    json::object r = Map(1, leaf);
    EXPECT_EQ(r.at("activity_name").as_string(), "observed");
    EXPECT_EQ(r.at("metadata").at("labels").at(0).as_string(), "observed");
    EXPECT_TRUE(r.at("unmapped").at("custody").at("observed").as_bool());
  }
}

TEST(OcsfTest, NotJsonIsRefused) {
  EXPECT_FALSE(MapEntry(0, "not json", {}).ok());
  EXPECT_FALSE(MapEntry(0, "[1]", {}).ok());
}

// Every record validates against the released OCSF schema (tests/ocsf/validate.mjs over
// tests/ocsf/schema-1.8.0). Skipped where node is not installed.
TEST(OcsfTest, EveryKindValidatesAgainstOcsf) {
  const char* src = std::getenv("CUSTODY_SOURCE_DIR");
  if (!src) GTEST_SKIP() << "CUSTODY_SOURCE_DIR not set";
  if (std::system("node --version >/dev/null 2>&1") != 0) GTEST_SKIP() << "node not installed";
  auto path = std::filesystem::temp_directory_path() /
              ("custody_ocsf_" + std::to_string(::getpid()) + ".ndjson");
  {
    std::ofstream out(path);
    uint64_t index = 0;
    for (const auto& [kind, leaf] : AllKinds()) {
      out << *MapEntry(index++, leaf, {.origin = "custody.test/ledger"}) << "\n";
    }
  }
  std::string cmd = "node " + std::string(src) + "/tests/ocsf/validate.mjs " + path.string();
  int rc = std::system(cmd.c_str());
  std::filesystem::remove(path);
  EXPECT_EQ(rc, 0) << "see the validator's output above";
}

// The validator itself rejects what is not OCSF (so the test above can fail).
TEST(OcsfTest, TheValidatorRejectsABrokenRecord) {
  const char* src = std::getenv("CUSTODY_SOURCE_DIR");
  if (!src) GTEST_SKIP() << "CUSTODY_SOURCE_DIR not set";
  if (std::system("node --version >/dev/null 2>&1") != 0) GTEST_SKIP() << "node not installed";
  json::object r = Map(0, Leaf(events::Build(Decision(true))));
  auto path = std::filesystem::temp_directory_path() /
              ("custody_ocsf_bad_" + std::to_string(::getpid()) + ".ndjson");
  std::vector<std::function<void(json::object&)>> breaks = {
      [](json::object& o) { o.erase("api"); },                           // required
      [](json::object& o) { o["type_uid"] = 600301; },                   // class*100+activity
      [](json::object& o) { o["time"] = "yesterday"; },                  // timestamp_t
      [](json::object& o) { o["severity_id"] = 7; },                     // enum
      [](json::object& o) { o["actor"].as_object()["mood"] = "calm"; },  // not defined
      [](json::object& o) { o["metadata"].as_object().erase("product"); },
  };
  for (size_t i = 0; i < breaks.size(); ++i) {
    json::object b = r;
    breaks[i](b);
    {
      std::ofstream out(path);
      out << json::serialize(b) << "\n";
    }
    std::string cmd =
        "node " + std::string(src) + "/tests/ocsf/validate.mjs " + path.string() + " >/dev/null";
    EXPECT_NE(std::system(cmd.c_str()), 0) << "break " << i;
  }
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace custody::ocsf

// The mapping of ledger events to OCSF 1.8.0 records. docs/OCSF.md is its description: keep the
// two together. Every record carries, whatever its class:
//   - metadata: version 1.8.0, product Custody, uid = the event's own event_id, event_code = its
//     kind, sequence = the ledger index (when it fits OCSF's 32-bit integer), tags
//     custody.ledger.index / custody.ledger.leaf_hash / custody.ledger.origin, correlation_uid =
//     the trace id (or the root session);
//   - raw_data: the leaf bytes themselves, so SHA-256(0x00 || raw_data) is the leaf hash and
//     `custody ledger proof --index N` proves the record against the log;
//   - unmapped: `custody` (kind, ledger position, initiator, what no released attribute holds),
//     `ai_agent` (the draft ai_agent object's shape) and `attestation_list` (the draft
//     record_integrity profile's shape), since 1.8.0 defines neither.
#include "export/ocsf.h"

#include <boost/json.hpp>
#include <cstdio>
#include <ctime>
#include <limits>

#include "common/encoding.h"
#include "common/json_parse.h"
#include "common/rfc3339.h"
#include "ledger/merkle.h"

namespace custody::ocsf {
namespace {

namespace json = boost::json;

const json::object* Obj(const json::object* o, std::string_view k) {
  if (!o) return nullptr;
  auto it = o->find(k);
  return it != o->end() && it->value().is_object() ? &it->value().get_object() : nullptr;
}
std::string Str(const json::object* o, std::string_view k) {
  if (!o) return "";
  auto it = o->find(k);
  return it != o->end() && it->value().is_string() ? std::string(it->value().get_string()) : "";
}
const json::array* Arr(const json::object* o, std::string_view k) {
  if (!o) return nullptr;
  auto it = o->find(k);
  return it != o->end() && it->value().is_array() ? &it->value().get_array() : nullptr;
}
std::optional<int64_t> Int(const json::object* o, std::string_view k) {
  if (!o) return std::nullopt;
  auto it = o->find(k);
  if (it == o->end()) return std::nullopt;
  if (it->value().is_int64()) return it->value().get_int64();
  if (it->value().is_uint64() &&
      it->value().get_uint64() <= uint64_t(std::numeric_limits<int64_t>::max())) {
    return int64_t(it->value().get_uint64());
  }
  return std::nullopt;
}
// The strings of an array (others skipped), as an OCSF string array.
json::array Strings(const json::array* a) {
  json::array out;
  if (a) {
    for (const auto& v : *a) {
      if (v.is_string()) out.push_back(v);
    }
  }
  return out;
}
// Sets o[k] = v unless v is empty: OCSF wants absent attributes left out, not "".
void Put(json::object& o, std::string_view k, const std::string& v) {
  if (!v.empty()) o[k] = v;
}
void PutObj(json::object& o, std::string_view k, const json::object* v) {
  if (v && !v->empty()) o[k] = *v;
}

// OCSF enumerations used here (1.8.0).
constexpr int kSeverityInformational = 1, kSeverityLow = 2, kSeverityMedium = 3, kSeverityHigh = 4;
constexpr int kStatusUnknown = 0, kStatusSuccess = 1, kStatusFailure = 2, kStatusOther = 99;
constexpr int kUserTypeUser = 1, kUserTypeAdmin = 2, kUserTypeOther = 99;
constexpr int kActivityOther = 99;

struct ClassInfo {
  int uid;
  const char* name;
  const char* category;
};
constexpr ClassInfo kBaseEvent{0, "Base Event", "Uncategorized"};
constexpr ClassInfo kApiActivity{6003, "API Activity", "Application Activity"};
constexpr ClassInfo kAuthentication{3002, "Authentication", "Identity & Access Management"};
constexpr ClassInfo kAuthorizeSession{3003, "Authorize Session", "Identity & Access Management"};
constexpr ClassInfo kEntityManagement{3004, "Entity Management", "Identity & Access Management"};
constexpr ClassInfo kUserAccess{3005, "User Access Management", "Identity & Access Management"};
constexpr ClassInfo kDetectionFinding{2004, "Detection Finding", "Findings"};

void Classify(json::object& r, const ClassInfo& c, int activity_id, std::string activity_name) {
  r["class_uid"] = c.uid;
  r["class_name"] = c.name;
  r["category_uid"] = c.uid / 1000;
  r["category_name"] = c.category;
  r["activity_id"] = activity_id;
  r["activity_name"] = std::move(activity_name);
  r["type_uid"] = int64_t(c.uid) * 100 + activity_id;
}

void SetStatus(json::object& r, int id, const std::string& detail = "") {
  r["status_id"] = id;
  r["status"] = id == kStatusSuccess   ? "Success"
                : id == kStatusFailure ? "Failure"
                : id == kStatusOther   ? "Other"
                                       : "Unknown";
  Put(r, "status_detail", detail);
}

// The agent as an OCSF user: the instance (SPIFFE ID) when known, named by the agent.
json::object AgentUser(const std::string& agent, const std::string& instance,
                       const std::string& credential = "") {
  json::object u;
  Put(u, "uid", instance.empty() ? agent : instance);
  Put(u, "name", agent);
  u["type_id"] = kUserTypeOther;
  u["type"] = "AI Agent";
  Put(u, "credential_uid", credential);
  if (!u.contains("uid") && !u.contains("name")) u["name"] = "unknown";
  return u;
}

// A person or operator as an OCSF user.
json::object PersonUser(const std::string& id, int type_id) {
  json::object u;
  u["uid"] = id.empty() ? "unknown" : id;
  u["type_id"] = type_id;
  u["type"] = type_id == kUserTypeAdmin ? "Admin" : "User";
  return u;
}

// actor: the agent instance and its session. Never the initiator (docs/OCSF.md, "Actor").
json::object AgentActor(const json::object* a) {
  json::object actor;
  std::string agent = Str(a, "agent"), instance = Str(a, "instance");
  std::string session = Str(a, "session"), credential = Str(a, "credential");
  actor["user"] = AgentUser(agent, instance, credential);
  Put(actor, "app_name", agent);
  Put(actor, "app_uid", instance);
  if (!session.empty()) {
    json::object s;
    s["uid"] = session;
    Put(s, "credential_uid", credential);
    actor["session"] = std::move(s);
  }
  return actor;
}

// An operator or person who did an administrative step (requested_by, by).
json::object OperatorActor(const std::string& who) {
  json::object actor;
  actor["user"] = PersonUser(who, kUserTypeAdmin);
  return actor;
}

// The draft ai_agent object's shape (ocsf-schema 1.9.0-dev objects/ai_agent.json).
json::object AiAgent(const std::string& agent, const std::string& instance) {
  json::object o;
  Put(o, "uid", agent);
  Put(o, "name", agent);
  Put(o, "instance_uid", instance);
  o["type_id"] = 0;  // Unknown: Custody does not know the agent's framework
  o["type"] = "Unknown";
  return o;
}

json::object InitiatorOf(const json::object* i) {
  json::object out;
  if (!i) return out;
  Put(out, "uid", Str(i, "id"));
  Put(out, "issuer", Str(i, "issuer"));
  Put(out, "verification", Str(i, "verification"));
  Put(out, "asserted_by", Str(i, "asserted_by"));
  return out;
}

// The policy decision as an OCSF authorization: the effect and the policy set (by its content
// hash), with the determining and erroring policies.
json::object Authorization(const std::string& effect, const json::object* policy) {
  json::object a;
  a["decision"] = effect;
  json::object p;
  p["name"] = "Custody policy set";
  std::string hash = Str(policy, "set_hash");
  Put(p, "uid", hash);
  Put(p, "version", hash);
  json::object data;
  data["determining"] = Strings(Arr(policy, "determining"));
  data["errors"] = Strings(Arr(policy, "errors"));
  p["data"] = std::move(data);
  p["is_applied"] = true;
  a["policy"] = std::move(p);
  return a;
}

json::object Service(const std::string& name, const std::string& uid = "") {
  json::object s;
  s["name"] = name.empty() ? "custody" : name;
  Put(s, "uid", uid);
  return s;
}

json::object Entity(const std::string& type, const std::string& uid, const std::string& name,
                    json::object data = {}) {
  json::object e;
  e["type"] = type;
  e["uid"] = uid.empty() ? "unknown" : uid;
  Put(e, "name", name);
  if (!data.empty()) e["data"] = std::move(data);
  return e;
}

json::object Finding(const std::string& uid, const std::string& title, const std::string& type,
                     const std::string& analytic) {
  json::object f;
  f["uid"] = uid.empty() ? "unknown" : uid;
  f["title"] = title;
  f["types"] = json::array{json::string(type)};
  json::object a;
  a["type_id"] = 1;  // Rule
  a["type"] = "Rule";
  a["name"] = analytic;
  f["analytic"] = std::move(a);
  return f;
}

void FindingCommon(json::object& r, int severity) {
  Classify(r, kDetectionFinding, 1, "Create");
  r["severity_id"] = severity;
  r["is_alert"] = true;
  r["status_id"] = 1;  // New
  r["status"] = "New";
}

// A decision's or outcome's target as OCSF resources.
json::array Resources(const json::object* target) {
  json::array out;
  if (!target) return out;
  json::object res;
  std::string key = Str(target, "key");
  std::string type = Str(target, "type");
  std::string tool = Str(target, "tool");
  res["uid"] = key.empty() ? (tool.empty() ? Str(target, "id") : tool) : key;
  res["type"] = !type.empty() ? type : !tool.empty() ? "MCP Tool" : "Target";
  Put(res, "name", !tool.empty() ? tool : Str(target, "id"));
  out.push_back(std::move(res));
  return out;
}

std::string StatusName(int severity) {
  switch (severity) {
    case kSeverityInformational:
      return "Informational";
    case kSeverityLow:
      return "Low";
    case kSeverityMedium:
      return "Medium";
    case kSeverityHigh:
      return "High";
  }
  return "Unknown";
}

struct Mapped {
  json::object r;
  json::object custody;         // unmapped.custody
  std::string agent, instance;  // for unmapped.ai_agent
  std::string correlation;      // metadata.correlation_uid
};

void MapDecision(const json::object& e, Mapped& m) {
  auto& r = m.r;
  const json::object* actor = Obj(&e, "actor");
  const json::object* request = Obj(&e, "request");
  const json::object* target = Obj(request, "target");
  const json::object* trace = Obj(&e, "trace");
  const json::object* containment = Obj(&e, "containment");
  std::string effect = Str(&e, "decision");
  std::string action = Str(request, "action");
  json::object api;
  api["operation"] = action.empty() ? "unknown" : action;
  api["service"] =
      Service(!Str(target, "server").empty() ? Str(target, "server") : Str(target, "type"),
              Str(target, "key"));
  json::object req;
  req["uid"] = Str(&e, "event_id").empty() ? "unknown" : Str(&e, "event_id");
  api["request"] = std::move(req);
  json::object a = AgentActor(actor);
  a["authorizations"] = json::array{Authorization(effect, Obj(&e, "policy"))};
  if (containment) {
    // A tripwire decision: the deny that contained the session is a finding.
    FindingCommon(r, kSeverityHigh);
    std::string wire = Str(containment, "tripwire");
    r["finding_info"] = Finding(Str(&e, "event_id"),
                                "Tripwire " + wire + " contained " + Str(containment, "scope") +
                                    " of agent " + Str(actor, "agent"),
                                "tripwire", wire);
    json::object ev;
    ev["actor"] = std::move(a);
    ev["api"] = std::move(api);
    json::array res = Resources(target);
    if (!res.empty()) ev["resources"] = std::move(res);
    r["evidences"] = json::array{std::move(ev)};
    PutObj(m.custody, "containment", containment);
  } else {
    Classify(r, kApiActivity, kActivityOther, "decision");
    r["actor"] = std::move(a);
    r["api"] = std::move(api);
    json::array res = Resources(target);
    if (!res.empty()) r["resources"] = std::move(res);
    json::object src;
    Put(src, "uid", Str(actor, "instance"));
    Put(src, "name", Str(actor, "agent"));
    Put(src, "svc_name", Str(request, "via"));
    if (src.empty()) src["name"] = "unknown";
    r["src_endpoint"] = std::move(src);
    r["severity_id"] = effect == "deny" ? kSeverityLow : kSeverityInformational;
    SetStatus(r,
              effect == "allow"  ? kStatusSuccess
              : effect == "deny" ? kStatusFailure
                                 : kStatusOther,
              Str(&e, "message"));
  }
  m.custody["decision"] = effect;
  PutObj(m.custody, "policy", Obj(&e, "policy"));
  if (auto* reasons = Arr(&e, "reasons")) m.custody["reasons"] = *reasons;
  PutObj(m.custody, "arguments", Obj(&e, "arguments"));
  PutObj(m.custody, "session", Obj(&e, "session"));
  PutObj(m.custody, "trace", trace);
  PutObj(m.custody, "approval", Obj(&e, "approval"));
  PutObj(m.custody, "request", request);
  Put(m.custody, "parent_event", Str(&e, "parent_event"));
  m.agent = Str(actor, "agent");
  m.instance = Str(actor, "instance");
  m.correlation = Str(trace, "trace_id");
  std::string msg = Str(&e, "message");
  r["message"] = !msg.empty() ? msg : effect + " " + action + " " + Str(target, "key");
}

void MapOutcome(const json::object& e, Mapped& m, bool refused) {
  auto& r = m.r;
  const json::object* actor = Obj(&e, "actor");
  const json::object* outcome = Obj(&e, "outcome");
  const json::object* trace = Obj(&e, "trace");
  Classify(r, kApiActivity, kActivityOther, refused ? "outcome_refused" : "outcome");
  r["actor"] = AgentActor(actor);
  json::object api;
  api["operation"] = "outcome";
  json::object req;
  req["uid"] = Str(&e, "action_id").empty() ? "unknown" : Str(&e, "action_id");
  api["request"] = std::move(req);
  json::object resp;
  Put(resp, "error", Str(outcome, "error"));
  Put(resp, "message", Str(outcome, "status"));
  if (!resp.empty()) api["response"] = std::move(resp);
  r["api"] = std::move(api);
  json::object src;
  Put(src, "uid", Str(actor, "instance"));
  Put(src, "name", Str(actor, "agent"));
  if (src.empty()) src["name"] = "unknown";
  r["src_endpoint"] = std::move(src);
  std::string status = Str(outcome, "status");
  if (refused) {
    r["severity_id"] = kSeverityMedium;
    SetStatus(r, kStatusFailure, Str(&e, "refusal"));
  } else {
    r["severity_id"] = status == "ok" ? kSeverityInformational : kSeverityLow;
    SetStatus(r, status == "ok" ? kStatusSuccess : kStatusFailure, Str(outcome, "error"));
  }
  if (auto latency = Int(outcome, "latency_ms")) r["duration"] = *latency;
  r["message"] = std::string(refused ? "outcome refused" : "outcome ") +
                 (refused ? ": " + Str(&e, "refusal") : status);
  PutObj(m.custody, "outcome", outcome);
  if (auto di = Int(&e, "decision_index")) m.custody["decision_index"] = *di;
  Put(m.custody, "action_id", Str(&e, "action_id"));
  PutObj(m.custody, "session", Obj(&e, "session"));
  PutObj(m.custody, "trace", trace);
  Put(m.custody, "refusal", Str(&e, "refusal"));
  m.agent = Str(actor, "agent");
  m.instance = Str(actor, "instance");
  m.correlation = Str(trace, "trace_id");
}

// action.observed (OTLP ingest): an action Custody saw in telemetry but did not decide. Marked
// observed in metadata.labels and unmapped.custody.observed.
void MapObserved(const json::object& e, Mapped& m) {
  auto& r = m.r;
  const json::object* actor = Obj(&e, "actor");
  const json::object* span = Obj(&e, "span");
  const json::object* tool = Obj(&e, "tool");
  const json::object* status = Obj(&e, "status");
  Classify(r, kApiActivity, kActivityOther, "observed");
  json::object a = AgentActor(actor);
  if (!a.contains("app_name") && !a.contains("session")) a["app_name"] = "unknown";
  r["actor"] = std::move(a);
  json::object api;
  std::string op = Str(&e, "operation");
  api["operation"] = op.empty() ? "unknown" : op;
  api["service"] = Service(Str(span, "service"));
  json::object req;
  req["uid"] = Str(span, "span_id").empty() ? "unknown" : Str(span, "span_id");
  api["request"] = std::move(req);
  r["api"] = std::move(api);
  if (!Str(tool, "name").empty()) {
    json::object res;
    res["type"] = "Tool";
    res["uid"] = Str(tool, "call_id").empty() ? Str(tool, "name") : Str(tool, "call_id");
    res["name"] = Str(tool, "name");
    r["resources"] = json::array{std::move(res)};
  }
  json::object src;
  Put(src, "name", Str(span, "service"));
  if (src.empty()) src["name"] = "unknown";
  r["src_endpoint"] = std::move(src);
  std::string code = Str(status, "code");
  r["severity_id"] = kSeverityInformational;
  SetStatus(r,
            code == "ok"      ? kStatusSuccess
            : code == "error" ? kStatusFailure
                              : kStatusUnknown,
            Str(status, "error_type"));
  r["message"] = "observed " + op + (Str(tool, "name").empty() ? "" : " " + Str(tool, "name"));
  m.custody["observed"] = true;
  PutObj(m.custody, "span", span);
  PutObj(m.custody, "tool", tool);
  PutObj(m.custody, "link", Obj(&e, "link"));
  PutObj(m.custody, "claimed_agent", Obj(&e, "claimed_agent"));
  PutObj(m.custody, "credential", Obj(&e, "credential"));
  PutObj(m.custody, "status", status);
  m.agent = Str(actor, "agent");
  m.correlation = Str(span, "trace_id");
}

void MapCredentialIssue(const json::object& e, Mapped& m) {
  auto& r = m.r;
  const json::object* actor = Obj(&e, "actor");
  const json::object* cred = Obj(&e, "credential");
  Classify(r, kAuthentication, 3, "Authentication Ticket");
  r["actor"] = AgentActor(actor);
  r["user"] = AgentUser(Str(actor, "agent"), Str(actor, "instance"), Str(cred, "jti"));
  json::array aud = Strings(Arr(cred, "aud"));
  r["service"] = Service("custody", aud.empty() ? "" : std::string(aud[0].get_string()));
  r["severity_id"] = kSeverityInformational;
  SetStatus(r, kStatusSuccess);
  r["message"] = "JWT-SVID issued to " + Str(actor, "instance");
  PutObj(m.custody, "credential", cred);
  Put(m.custody, "requested_by", Str(&e, "requested_by"));
  m.agent = Str(actor, "agent");
  m.instance = Str(actor, "instance");
}

// session.start and delegation: the session's scopes assigned to the agent's new session.
void MapSession(const json::object& e, Mapped& m) {
  auto& r = m.r;
  const json::object* actor = Obj(&e, "actor");
  const json::object* session = Obj(&e, "session");
  Classify(r, kAuthorizeSession, 1, "Assign Privileges");
  r["actor"] = AgentActor(actor);
  r["user"] = AgentUser(Str(actor, "agent"), Str(actor, "instance"), Str(actor, "credential"));
  r["privileges"] = Strings(Arr(session, "scopes"));
  json::object s;
  s["uid"] = Str(session, "sid").empty() ? Str(actor, "session") : Str(session, "sid");
  Put(s, "credential_uid", Str(actor, "credential"));
  if (auto exp = Int(session, "exp"); exp && *exp > 0) s["expiration_time"] = *exp * 1000;
  r["session"] = std::move(s);
  r["severity_id"] = kSeverityInformational;
  SetStatus(r, kStatusSuccess);
  bool delegation = Str(&e, "kind") == "delegation";
  r["message"] = std::string(delegation ? "delegated session " : "session ") + Str(session, "sid") +
                 " started for " + Str(actor, "agent") +
                 (delegation ? " from " + Str(session, "parent_sid") : "");
  m.custody["initiator"] = InitiatorOf(Obj(&e, "initiator"));
  PutObj(m.custody, "session", session);
  PutObj(m.custody, "trace", Obj(&e, "trace"));
  Put(m.custody, "requested_by", Str(&e, "requested_by"));
  m.agent = Str(actor, "agent");
  m.instance = Str(actor, "instance");
  m.correlation = Str(session, "root_sid");
}

void MapTokenRefuse(const json::object& e, Mapped& m) {
  auto& r = m.r;
  const json::object* actor = Obj(&e, "actor");
  const json::object* client = Obj(&e, "client");
  const json::object* request = Obj(&e, "request");
  const json::object* refusal = Obj(&e, "refusal");
  std::string grant = Str(request, "grant_type");
  int activity = grant.find("token-exchange") != std::string::npos ? 4
                 : grant == "refresh_token"                        ? 5
                                                                   : 3;
  Classify(r, kAuthentication, activity,
           activity == 4   ? "Service Ticket Request"
           : activity == 5 ? "Service Ticket Renew"
                           : "Authentication Ticket");
  std::string agent = Str(actor, "agent").empty() ? Str(client, "id") : Str(actor, "agent");
  r["user"] = AgentUser(agent, Str(actor, "instance"));
  r["service"] = Service("custody", Str(request, "audience"));
  r["severity_id"] = kSeverityLow;
  SetStatus(r, kStatusFailure, Str(refusal, "error") + ": " + Str(refusal, "reason"));
  r["message"] = "token request refused: " + Str(refusal, "reason");
  PutObj(m.custody, "client", client);
  PutObj(m.custody, "request", request);
  PutObj(m.custody, "refusal", refusal);
  PutObj(m.custody, "target", Obj(&e, "target"));
  m.agent = Str(actor, "agent");
  m.instance = Str(actor, "instance");
}

void MapOAuth(const json::object& e, const std::string& kind, Mapped& m) {
  auto& r = m.r;
  const json::object* actor = Obj(&e, "actor");
  const json::object* initiator = Obj(&e, "initiator");
  const json::object* client = Obj(&e, "client");
  std::string client_id = Str(client, "id");
  std::string person = Str(initiator, "id");
  m.custody["initiator"] = InitiatorOf(initiator);
  PutObj(m.custody, "client", client);
  m.agent = Str(actor, "agent");
  m.instance = Str(actor, "instance");
  r["severity_id"] = kSeverityInformational;
  if (kind == "oauth.sign_in") {
    // The person signs in: here the person is the one authenticating.
    Classify(r, kAuthentication, 1, "Logon");
    r["user"] = PersonUser(person, kUserTypeUser);
    r["service"] = Service(client_id.empty() ? "custody" : client_id);
    SetStatus(r, kStatusSuccess);
    r["message"] = person + " signed in to authorize " + client_id;
  } else if (kind == "oauth.sign_out") {
    // The person ends their session on Custody's own pages (an approver's sign-out).
    Classify(r, kAuthentication, 2, "Logoff");
    r["user"] = PersonUser(person, kUserTypeUser);
    r["service"] = Service(client_id.empty() ? "custody" : client_id);
    SetStatus(r, kStatusSuccess);
    r["message"] = person + " signed out of " + client_id;
  } else if (kind == "oauth.consent") {
    std::string decision = Str(&e, "decision");
    Classify(r, kUserAccess, decision == "revoked" ? 2 : 1,
             decision == "revoked" ? "Revoke Privileges" : "Assign Privileges");
    r["user"] = AgentUser(Str(actor, "agent"), "");
    r["privileges"] = Strings(Arr(&e, "scopes"));
    SetStatus(r, decision == "denied" ? kStatusFailure : kStatusSuccess, decision);
    if (!Str(&e, "requested_by").empty()) r["actor"] = OperatorActor(Str(&e, "requested_by"));
    r["message"] = "consent " + decision + " for " + client_id;
    m.custody["decision"] = decision;
    Put(m.custody, "requested_by", Str(&e, "requested_by"));
  } else if (kind == "oauth.code_issue") {
    Classify(r, kAuthentication, 3, "Authentication Ticket");
    r["user"] = PersonUser(person, kUserTypeUser);
    r["service"] = Service(client_id.empty() ? "custody" : client_id, Str(&e, "resource"));
    SetStatus(r, kStatusSuccess);
    r["message"] = "authorization code issued to " + client_id;
    PutObj(m.custody, "code", Obj(&e, "code"));
    if (auto* s = Arr(&e, "scopes")) m.custody["scopes"] = *s;
  } else if (kind == "oauth.token_issue") {
    bool refresh = Str(&e, "grant_type") == "refresh_token";
    Classify(r, kAuthentication, refresh ? 5 : 3,
             refresh ? "Service Ticket Renew" : "Authentication Ticket");
    r["actor"] = AgentActor(actor);
    r["user"] = AgentUser(Str(actor, "agent"), Str(actor, "instance"), Str(actor, "credential"));
    r["service"] = Service(client_id.empty() ? "custody" : client_id);
    if (!Str(actor, "session").empty()) {
      json::object s;
      s["uid"] = Str(actor, "session");
      Put(s, "credential_uid", Str(actor, "credential"));
      if (auto exp = Int(&e, "exp"); exp && *exp > 0) s["expiration_time"] = *exp * 1000;
      r["session"] = std::move(s);
    }
    SetStatus(r, kStatusSuccess);
    r["message"] = "tokens issued to " + client_id + " (" + Str(&e, "grant_type") + ")";
    Put(m.custody, "grant_type", Str(&e, "grant_type"));
    Put(m.custody, "family", Str(&e, "family"));
    Put(m.custody, "code", Str(&e, "code"));
    if (auto* s = Arr(&e, "scopes")) m.custody["scopes"] = *s;
  } else if (kind == "oauth.reuse") {
    // A replayed code or refresh token is a detection: what it issued is revoked.
    FindingCommon(r, kSeverityHigh);
    std::string what = Str(&e, "what");
    r["finding_info"] =
        Finding(Str(&e, "event_id"),
                "Reuse of an OAuth " + what + " by client " + client_id + ": its sessions revoked",
                "credential_reuse", "oauth-reuse");
    json::object ev;
    ev["user"] = PersonUser(person, kUserTypeUser);
    json::object a;
    a["app_name"] = client_id.empty() ? "unknown" : client_id;
    ev["actor"] = std::move(a);
    r["evidences"] = json::array{std::move(ev)};
    r["message"] = "reuse of an OAuth " + what + " detected";
    Put(m.custody, "what", what);
    Put(m.custody, "family", Str(&e, "family"));
    if (auto* s = Arr(&e, "revoked_sessions")) m.custody["revoked_sessions"] = *s;
  } else {  // oauth.client_register
    Classify(r, kEntityManagement, 1, "Create");
    json::object data;
    data["redirect_uris"] = Strings(Arr(client, "redirect_uris"));
    r["entity"] = Entity("OAuth Client", client_id, Str(client, "name"), std::move(data));
    SetStatus(r, kStatusSuccess);
    r["message"] = "OAuth client " + client_id + " registered";
  }
}

void MapAgent(const json::object& e, const std::string& kind, Mapped& m) {
  auto& r = m.r;
  const json::object* agent = Obj(&e, "agent");
  std::string name = Str(agent, "name");
  std::string by = Str(&e, "requested_by");
  if (!by.empty()) r["actor"] = OperatorActor(by);
  r["severity_id"] = kSeverityInformational;
  SetStatus(r, kStatusSuccess);
  m.agent = name;
  PutObj(m.custody, "agent", agent);
  Put(m.custody, "requested_by", by);
  if (kind == "agent.register") {
    Classify(r, kEntityManagement, 1, "Create");
    r["entity"] = Entity("AI Agent", name, name, agent ? *agent : json::object{});
    r["message"] = "agent " + name + " registered";
  } else {
    // An update sets the agent's grants: User Access Management, the grants as privileges.
    Classify(r, kUserAccess, 1, "Assign Privileges");
    r["user"] = AgentUser(name, "");
    r["privileges"] = Strings(Arr(agent, "grants"));
    r["message"] = "agent " + name + " updated";
  }
}

void MapRevocation(const json::object& e, Mapped& m) {
  auto& r = m.r;
  const json::object* target = Obj(&e, "target");
  std::string by = Str(&e, "requested_by");
  if (!by.empty()) r["actor"] = OperatorActor(by);
  if (!Str(target, "agent").empty()) {
    Classify(r, kEntityManagement, 9, "Disable");
    r["entity"] = Entity("AI Agent", Str(target, "agent"), Str(target, "agent"));
    m.agent = Str(target, "agent");
  } else if (!Str(target, "credential").empty()) {
    Classify(r, kEntityManagement, 11, "Deactivate");
    r["entity"] = Entity("Credential", Str(target, "credential"), "");
  } else {
    Classify(r, kEntityManagement, 11, "Deactivate");
    r["entity"] = Entity("Session", Str(target, "session"), "");
  }
  r["severity_id"] = kSeverityMedium;
  SetStatus(r, kStatusSuccess, Str(&e, "reason"));
  r["message"] = "revoked " + std::string(r["entity"].as_object().at("type").as_string()) + " " +
                 std::string(r["entity"].as_object().at("uid").as_string());
  PutObj(m.custody, "target", target);
  Put(m.custody, "reason", Str(&e, "reason"));
  if (auto* s = Arr(&e, "revoked_sessions")) m.custody["revoked_sessions"] = *s;
  Put(m.custody, "requested_by", by);
}

void MapKeyRotate(const json::object& e, Mapped& m) {
  auto& r = m.r;
  std::string by = Str(&e, "requested_by");
  if (!by.empty()) r["actor"] = OperatorActor(by);
  Classify(r, kEntityManagement, 1, "Create");
  json::object data;
  data["retired_kids"] = Strings(Arr(&e, "retired_kids"));
  if (auto pu = Int(&e, "publish_until")) data["publish_until"] = *pu;
  r["entity"] = Entity("Signing Key", Str(&e, "kid"), "", std::move(data));
  r["severity_id"] = kSeverityInformational;
  SetStatus(r, kStatusSuccess);
  r["message"] = "token signing key rotated to " + Str(&e, "kid");
  Put(m.custody, "requested_by", by);
}

void MapContainment(const json::object& e, Mapped& m) {
  auto& r = m.r;
  const json::object* actor = Obj(&e, "actor");
  const json::object* trigger = Obj(&e, "trigger");
  FindingCommon(r, kSeverityHigh);
  std::string scope = Str(&e, "scope"), subject = Str(&e, "subject");
  std::string by = Str(&e, "by");
  r["finding_info"] = Finding(Str(&e, "event_id"),
                              "Containment of " + scope + " " + subject + ": " + Str(&e, "reason"),
                              "containment", trigger ? Str(trigger, "policy") : "operator");
  json::object ev;
  if (actor) {
    ev["actor"] = AgentActor(actor);
  } else {
    ev["actor"] = OperatorActor(by);
  }
  r["evidences"] = json::array{std::move(ev)};
  r["message"] = "contained " + scope + " " + subject;
  Put(m.custody, "scope", scope);
  Put(m.custody, "subject", subject);
  Put(m.custody, "reason", Str(&e, "reason"));
  Put(m.custody, "by", by);
  PutObj(m.custody, "trigger", trigger);
  PutObj(m.custody, "trace", Obj(&e, "trace"));
  if (auto* s = Arr(&e, "revoked_sessions")) m.custody["revoked_sessions"] = *s;
  m.agent = Str(actor, "agent");
  m.instance = Str(actor, "instance");
  m.correlation = Str(Obj(&e, "trace"), "trace_id");
}

// "tool", "resource" or "prompt" -> the OCSF resource type named in records.
std::string ItemType(const std::string& kind) {
  if (kind.starts_with("tool.")) return "MCP Tool";
  if (kind.starts_with("resource.")) return "MCP Resource";
  return "MCP Prompt";
}
std::string ItemId(const json::object* target) {
  std::string item = Str(target, "tool").empty() ? Str(target, "id") : Str(target, "tool");
  return Str(target, "server") + "/" + item;
}

void MapDefinitionChange(const json::object& e, const std::string& kind, Mapped& m) {
  auto& r = m.r;
  const json::object* target = Obj(&e, "target");
  FindingCommon(r, kSeverityMedium);
  std::string type = ItemType(kind), id = ItemId(target);
  r["finding_info"] = Finding(Str(&e, "event_id"),
                              "Definition of " + type + " " + id +
                                  " changed; its calls are "
                                  "refused until approved",
                              "definition_change", "definition-pin");
  json::object res;
  res["type"] = type;
  res["uid"] = id;
  res["name"] = Str(target, "tool").empty() ? Str(target, "id") : Str(target, "tool");
  json::object data;
  data["approved_hash"] = Str(&e, "approved_hash");
  data["new_hash"] = Str(&e, "new_hash");
  res["data"] = std::move(data);
  r["resources"] = json::array{std::move(res)};
  r["message"] = type + " " + id + " definition changed";
  Put(m.custody, "via", Str(&e, "via"));
}

void MapItemApprove(const json::object& e, const std::string& kind, Mapped& m) {
  auto& r = m.r;
  const json::object* target = Obj(&e, "target");
  if (!Str(&e, "by").empty()) r["actor"] = OperatorActor(Str(&e, "by"));
  Classify(r, kEntityManagement, 3, "Update");
  json::object data;
  data["approved_hash"] = Str(&e, "approved_hash");
  std::string id = ItemId(target);
  r["entity"] = Entity(ItemType(kind), id,
                       Str(target, "tool").empty() ? Str(target, "id") : Str(target, "tool"),
                       std::move(data));
  r["severity_id"] = kSeverityInformational;
  SetStatus(r, kStatusSuccess);
  r["message"] = ItemType(kind) + " " + id + " definition approved";
}

// approval.*: a person's approval grants one held action to the agent's session (User Access
// Management, Assign Privileges); a denial refuses that grant; expiry and cancellation withdraw
// it (Revoke Privileges).
void MapApproval(const json::object& e, const std::string& kind, Mapped& m) {
  auto& r = m.r;
  const json::object* approval = Obj(&e, "approval");
  const json::object* target = Obj(&e, "target");
  const json::object* by = Obj(&e, "by");
  bool withdraw = kind == "approval.expire" || kind == "approval.cancel";
  Classify(r, kUserAccess, withdraw ? 2 : 1, withdraw ? "Revoke Privileges" : "Assign Privileges");
  r["user"] = AgentUser(Str(target, "agent"), Str(target, "instance"));
  r["privileges"] =
      json::array{json::string(Str(approval, "action") + " " + Str(approval, "target"))};
  if (by) {
    json::object a;
    a["user"] = PersonUser(Str(by, "person"), kUserTypeUser);
    r["actor"] = std::move(a);
  }
  r["severity_id"] = kSeverityInformational;
  SetStatus(r, kind == "approval.deny" ? kStatusFailure : kStatusSuccess, Str(&e, "reason"));
  r["message"] = kind.substr(9) + " of approval " + Str(approval, "id");
  PutObj(m.custody, "approval", approval);
  PutObj(m.custody, "target", target);
  PutObj(m.custody, "by", by);
  Put(m.custody, "reason", Str(&e, "reason"));
  Put(m.custody, "expires_at", Str(&e, "expires_at"));
  if (!Str(target, "initiator").empty()) {
    json::object i;
    i["uid"] = Str(target, "initiator");
    m.custody["initiator"] = std::move(i);
  }
  m.agent = Str(target, "agent");
  m.instance = Str(target, "instance");
  m.correlation = Str(target, "root_sid");
}

void MapPolicyPublish(const json::object& e, Mapped& m) {
  auto& r = m.r;
  const json::object* policy = Obj(&e, "policy");
  bool first = Str(policy, "previous").empty();
  Classify(r, kEntityManagement, first ? 1 : 3, first ? "Create" : "Update");
  if (!Str(&e, "by").empty()) r["actor"] = OperatorActor(Str(&e, "by"));
  std::string hash = Str(policy, "set_hash");
  json::object entity =
      Entity("Cedar Policy Set", hash, "Custody policy set", policy ? *policy : json::object{});
  json::object p;
  p["name"] = "Custody policy set";
  p["uid"] = hash.empty() ? "unknown" : hash;
  p["version"] = hash;
  entity["policy"] = std::move(p);
  r["entity"] = std::move(entity);
  r["severity_id"] = kSeverityInformational;
  SetStatus(r, kStatusSuccess);
  r["message"] = "policy set " + hash + " published";
}

void MapOther(const json::object& e, const std::string& kind, Mapped& m) {
  auto& r = m.r;
  Classify(r, kBaseEvent, kActivityOther, kind.empty() ? "unknown" : kind);
  r["severity_id"] = kSeverityInformational;
  r["message"] = "ledger entry" + (kind.empty() ? std::string() : " of kind " + kind);
  const json::object* actor = Obj(&e, "actor");
  m.agent = Str(actor, "agent");
  m.instance = Str(actor, "instance");
}

}  // namespace

int ClassUidForKind(std::string_view kind) {
  if (kind == "action.decision" || kind == "action.outcome" || kind == "action.outcome_refused" ||
      kind == "action.observed") {
    return kApiActivity.uid;
  }
  if (kind == "credential.issue" || kind == "token.refuse" || kind == "oauth.sign_in" ||
      kind == "oauth.sign_out" || kind == "oauth.code_issue" || kind == "oauth.token_issue") {
    return kAuthentication.uid;
  }
  if (kind == "session.start" || kind == "delegation") return kAuthorizeSession.uid;
  if (kind == "agent.update" || kind == "oauth.consent" || kind.starts_with("approval.")) {
    return kUserAccess.uid;
  }
  if (kind == "agent.register" || kind == "revocation" || kind == "key.rotate" ||
      kind == "oauth.client_register" || kind == "policy.publish" || kind == "tool.approve" ||
      kind == "resource.approve" || kind == "prompt.approve") {
    return kEntityManagement.uid;
  }
  if (kind == "containment" || kind == "oauth.reuse" || kind.ends_with(".definition_change")) {
    return kDetectionFinding.uid;
  }
  return kBaseEvent.uid;
}

Result<std::string> MapEntry(uint64_t index, std::string_view leaf, const Options& options) {
  boost::system::error_code ec;
  json::value v = ParseJson(leaf, ec);
  if (ec || !v.is_object()) {
    return InvalidArgumentError("ledger entry " + std::to_string(index) + " is not a JSON object");
  }
  const json::object& e = v.get_object();
  std::string kind = Str(&e, "kind");
  Mapped m;
  if (kind == "action.decision") {
    MapDecision(e, m);
  } else if (kind == "action.outcome" || kind == "action.outcome_refused") {
    MapOutcome(e, m, kind == "action.outcome_refused");
  } else if (kind == "action.observed") {
    MapObserved(e, m);
  } else if (kind == "credential.issue") {
    MapCredentialIssue(e, m);
  } else if (kind == "session.start" || kind == "delegation") {
    MapSession(e, m);
  } else if (kind == "token.refuse") {
    MapTokenRefuse(e, m);
  } else if (kind.starts_with("oauth.") && ClassUidForKind(kind) != kBaseEvent.uid) {
    MapOAuth(e, kind, m);
  } else if (kind == "agent.register" || kind == "agent.update") {
    MapAgent(e, kind, m);
  } else if (kind == "revocation") {
    MapRevocation(e, m);
  } else if (kind == "key.rotate") {
    MapKeyRotate(e, m);
  } else if (kind == "containment") {
    MapContainment(e, m);
  } else if (kind.ends_with(".definition_change") && ClassUidForKind(kind) != kBaseEvent.uid) {
    MapDefinitionChange(e, kind, m);
  } else if (kind == "tool.approve" || kind == "resource.approve" || kind == "prompt.approve") {
    MapItemApprove(e, kind, m);
  } else if (kind.starts_with("approval.")) {
    MapApproval(e, kind, m);
  } else if (kind == "policy.publish") {
    MapPolicyPublish(e, m);
  } else {
    MapOther(e, kind, m);
  }
  json::object& r = m.r;
  std::string time = Str(&e, "time");
  // An entry without a parseable time (only hand-appended ones) keeps 0: time is required.
  r["time"] = ParseRfc3339Millis(time).value_or(0);
  if (!r.contains("severity_id")) r["severity_id"] = kSeverityInformational;
  r["severity"] = StatusName(int(r["severity_id"].as_int64()));

  std::string leaf_hash = HexEncode(ledger::HashLeaf(leaf));
  json::object meta;
  meta["version"] = std::string(kSchemaVersion);
  json::object product;
  product["name"] = "Custody";
  product["vendor_name"] = "Custody";
  meta["product"] = std::move(product);
  std::string event_id = Str(&e, "event_id");
  meta["uid"] = event_id.empty() ? "ledger:" + std::to_string(index) : event_id;
  Put(meta, "event_code", kind);
  meta["log_name"] = "ledger";
  meta["log_provider"] = "Custody";
  Put(meta, "log_source", options.origin);
  Put(meta, "original_time", time);
  if (index <= uint64_t(std::numeric_limits<int32_t>::max())) meta["sequence"] = int64_t(index);
  Put(meta, "correlation_uid", m.correlation);
  json::array tags;
  auto tag = [&tags](const char* name, const std::string& value) {
    json::object t;
    t["name"] = name;
    t["value"] = value;
    tags.push_back(std::move(t));
  };
  tag("custody.ledger.index", std::to_string(index));
  tag("custody.ledger.leaf_hash", leaf_hash);
  if (!options.origin.empty()) tag("custody.ledger.origin", options.origin);
  meta["tags"] = std::move(tags);
  if (kind == "action.observed") meta["labels"] = json::array{"observed"};
  r["metadata"] = std::move(meta);
  r["raw_data"] = std::string(leaf);

  json::object unmapped;
  m.custody["kind"] = kind;
  json::object pos;
  pos["index"] = index;
  pos["leaf_hash"] = leaf_hash;
  Put(pos, "origin", options.origin);
  m.custody["ledger"] = std::move(pos);
  if (!m.custody.contains("initiator")) {
    if (const json::object* i = Obj(&e, "initiator")) m.custody["initiator"] = InitiatorOf(i);
  }
  unmapped["custody"] = std::move(m.custody);
  if (!m.agent.empty()) unmapped["ai_agent"] = AiAgent(m.agent, m.instance);
  // The draft record_integrity profile's attestation, over the Custody event (raw_data): its
  // fingerprint is the RFC 6962 leaf hash, its chain the ledger (docs/OCSF.md).
  json::object fp;
  fp["algorithm_id"] = 99;
  fp["algorithm"] = "RFC 6962 leaf hash: SHA-256(0x00 || raw_data)";
  fp["value"] = leaf_hash;
  json::object att;
  att["uid"] = std::to_string(index);
  Put(att, "chain_uid", options.origin);
  Put(att, "authority_uid", options.origin);
  att["fingerprint"] = std::move(fp);
  unmapped["attestation_list"] = json::array{std::move(att)};
  r["unmapped"] = std::move(unmapped);
  return json::serialize(r);
}

}  // namespace custody::ocsf

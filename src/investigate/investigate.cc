#include "investigate/investigate.h"

#include <algorithm>
#include <boost/json.hpp>
#include <ctime>
#include <functional>
#include <map>
#include <set>
#include <tuple>

#include "attribution/attribution_service.h"
#include "common/json_array.h"
#include "common/json_parse.h"
#include "identity/scopes.h"
#include "identity/session_json.h"
#include "identity/token_service.h"
#include "ledger/ledger.h"

namespace custody::investigate {

namespace json = boost::json;
using attribution::ActionRow;
using attribution::ActionUsage;
using attribution::AttributionStore;
using attribution::ContainmentRow;
using attribution::PolicySetRecord;
using attribution::Target;

namespace {

constexpr size_t kMaxChain = 64;

const json::object& Obj(const json::object& o, std::string_view key) {
  static const json::object kEmpty;
  auto it = o.find(key);
  return it != o.end() && it->value().is_object() ? it->value().get_object() : kEmpty;
}

json::array Arr(const json::object& o, std::string_view key) {
  auto it = o.find(key);
  return it != o.end() && it->value().is_array() ? it->value().get_array() : json::array();
}

std::string TimeOf(int64_t ms) {
  return FormatRfc3339Millis(TimePoint(std::chrono::milliseconds(ms)));
}

json::object ActionJson(const ActionRow& r) {
  json::object o{{"action_id", r.action_id}, {"time", TimeOf(r.time_ms)},
                 {"action", r.action},       {"target", r.target},
                 {"decision", r.decision},   {"decision_index", r.decision_index},
                 {"trace_id", r.trace_id}};
  if (!r.status.empty()) o["outcome"] = r.status;
  if (r.outcome_index >= 0) o["outcome_index"] = r.outcome_index;
  return o;
}

json::object ContainmentJson(const ContainmentRow& c) {
  json::object o{{"event_id", c.event_id},    {"scope", c.scope},
                 {"subject", c.subject},      {"reason", c.reason},
                 {"time", TimeOf(c.time_ms)}, {"ledger_index", c.ledger_index}};
  if (!c.trigger_action.empty()) o["trigger_action"] = c.trigger_action;
  if (!c.by.empty()) o["by"] = c.by;
  return o;
}

// Target::Key() read back: "<server>/<tool>", "<server>/resource:<uri>", "<server>/prompt:<name>"
// or "<Type>:<id>" (Type may contain "::").
std::optional<Target> ParseTargetKey(const std::string& key) {
  Target t;
  size_t slash = key.find('/');
  size_t colon = std::string::npos;
  for (size_t i = 0; i < key.size(); ++i) {
    if (key[i] != ':') continue;
    if (i + 1 < key.size() && key[i + 1] == ':') {
      ++i;
      continue;
    }
    colon = i;
    break;
  }
  if (slash != std::string::npos && (colon == std::string::npos || slash < colon)) {
    t.server = key.substr(0, slash);
    std::string rest = key.substr(slash + 1);
    if (rest.starts_with("resource:")) {
      t.type = "Resource";
      t.id = rest.substr(9);
    } else if (rest.starts_with("prompt:")) {
      t.type = "Prompt";
      t.id = rest.substr(7);
    } else {
      t.tool = std::move(rest);
    }
  } else if (colon != std::string::npos) {
    t.type = key.substr(0, colon);
    t.id = key.substr(colon + 1);
  } else {
    return std::nullopt;
  }
  if (!t.Validate().ok()) return std::nullopt;
  return t;
}

Result<json::object> ParseLeaf(const store::StoredLeaf& leaf) {
  boost::system::error_code ec;
  json::value v = ParseJson(leaf.data, ec);
  if (ec || !v.is_object())
    return DataLossError("ledger entry " + std::to_string(leaf.index) + " is not a JSON object");
  return std::move(v.as_object());
}

bool Live(const identity::Session& s, int64_t now_s) {
  return !s.revoked && (s.expires_at == 0 || s.expires_at > now_s);
}

int64_t IntField(const json::object& o, std::string_view key) {
  auto it = o.find(key);
  if (it == o.end()) return -1;
  if (it->value().is_int64()) return it->value().get_int64();
  if (it->value().is_uint64()) return static_cast<int64_t>(it->value().get_uint64());
  return -1;
}

constexpr const char* kApprovalKinds[] = {"approval.approve", "approval.deny", "approval.expire",
                                          "approval.cancel"};

// An approval.* event as investigations show it.
json::object ApprovalEventJson(const json::object& ev, uint64_t index) {
  const json::object& a = Obj(ev, "approval");
  json::object o{{"kind", StringField(ev, "kind")},    {"index", index},
                 {"time", StringField(ev, "time")},    {"event_id", StringField(ev, "event_id")},
                 {"approval", StringField(a, "id")},   {"action", StringField(a, "action")},
                 {"target", StringField(a, "target")}, {"reason", StringField(ev, "reason")}};
  if (ev.contains("by")) o["by"] = Obj(ev, "by");
  if (ev.contains("expires_at")) o["expires_at"] = StringField(ev, "expires_at");
  return o;
}

// The approval.* events indexed under session `sid` (of approval `approval_id` only, unless
// empty), in ledger order. Indexed lookups: one per kind.
Result<std::vector<json::object>> ApprovalEventsOf(ledger::Ledger& ledger, const std::string& sid,
                                                   const std::string& approval_id = "") {
  std::vector<uint64_t> indexes;
  for (const char* kind : kApprovalKinds) {
    ASSIGN_OR_RETURN(auto found,
                     ledger.store().FindLeaves(store::LedgerStore::Column::kSession, sid, kind));
    indexes.insert(indexes.end(), found.begin(), found.end());
  }
  std::sort(indexes.begin(), indexes.end());
  std::vector<json::object> out;
  for (uint64_t i : indexes) {
    ASSIGN_OR_RETURN(store::StoredLeaf leaf, ledger.GetEntry(i));
    ASSIGN_OR_RETURN(json::object ev, ParseLeaf(leaf));
    if (!approval_id.empty() && StringField(Obj(ev, "approval"), "id") != approval_id) continue;
    out.push_back(ApprovalEventJson(ev, leaf.index));
  }
  return out;
}

std::string PersonOf(const json::object& approval_event) {
  return StringField(Obj(approval_event, "by"), "person");
}

// The approval a decision ran under (its `approval`, state "used"), with its approval.approve
// event read back from the ledger at `approval_index` and checked against the decision: the same
// approval, approved by the same person. A mismatch is reported in the answer, not hidden.
json::object UsedApproval(ledger::Ledger& ledger, const json::object& cited) {
  json::object a = cited;
  const std::string id = StringField(cited, "id");
  const int64_t index = IntField(cited, "approval_index");
  std::string problem;
  if (index < 0) {
    problem = "the decision names no approval event";
  } else if (auto leaf = ledger.GetEntry(static_cast<uint64_t>(index)); !leaf.ok()) {
    problem =
        "ledger entry " + std::to_string(index) + " cannot be read: " + leaf.status().message();
  } else if (auto ev = ParseLeaf(*leaf); !ev.ok()) {
    problem = ev.status().message();
  } else if (StringField(*ev, "kind") != "approval.approve" ||
             StringField(Obj(*ev, "approval"), "id") != id) {
    problem = "ledger entry " + std::to_string(index) + " is not the approval.approve event of " +
              "approval " + id;
  } else if (StringField(Obj(*ev, "by"), "person") != StringField(cited, "approver")) {
    problem = "ledger entry " + std::to_string(index) + " says approval " + id +
              " was approved by " + StringField(Obj(*ev, "by"), "person") + ", not " +
              StringField(cited, "approver");
  } else {
    a["approved_at"] = StringField(*ev, "time");
    a["reason"] = StringField(*ev, "reason");
    a["approval_event"] = StringField(*ev, "event_id");
    a["request_action"] = StringField(Obj(*ev, "approval"), "request_action");
    if (auto it = ev->find("single_use"); it != ev->end()) a["single_use"] = it->value();
  }
  a["confirmed_by_ledger"] = problem.empty();
  if (!problem.empty()) a["problem"] = problem;
  a["execution"] = "autonomous after approval";
  return a;
}

std::string Groups(const json::object& approval) {
  std::string out;
  for (const auto& g : Arr(approval, "groups")) {
    if (!g.is_string()) continue;
    out += (out.empty() ? "" : " and ") + std::string(g.get_string());
  }
  return out;
}

// What became of an approval a decision was held for, from its recorded events.
std::string ApprovalFate(const json::object& a) {
  const json::array history = Arr(a, "history");
  if (history.empty() || !history.back().is_object()) return "not decided yet";
  const json::object& last = history.back().get_object();
  std::string s = StringField(a, "outcome");
  if (!PersonOf(last).empty()) s += " by " + PersonOf(last);
  s += " at " + StringField(last, "time");
  if (!StringField(last, "reason").empty()) s += " (\"" + StringField(last, "reason") + "\")";
  if (!StringField(a, "used_by").empty()) s += ", used by action " + StringField(a, "used_by");
  return s;
}

// "under what approval", as a sentence, from a trace's approval object.
std::string UnderWhatApproval(const json::object& a) {
  const std::string id = StringField(a, "id");
  if (StringField(a, "state") == "used") {
    std::string s = "approval " + id + ", approved by " + StringField(a, "approver") +
                    " (verified by " + StringField(a, "verified_by") + ")";
    if (!StringField(a, "problem").empty())
      return s + ", NOT confirmed by the ledger: " + StringField(a, "problem");
    s += " at " + StringField(a, "approved_at");
    if (!StringField(a, "reason").empty()) s += " (\"" + StringField(a, "reason") + "\")";
    return s + "; autonomous after approval: the agent ran the action itself, after " +
           StringField(a, "approver") + " approved it";
  }
  return "none: held for approval " + id + " by a member of " + Groups(a) + "; " + ApprovalFate(a);
}

}  // namespace

// --- Trace -----------------------------------------------------------------------------------

Result<std::string> Investigator::Trace(const std::string& event_id) {
  if (event_id.empty() || event_id.size() > 128) return InvalidArgumentError("bad event id");
  AttributionStore& store = attribution_.store();
  // Queued for the index, indexed, or (not indexed yet) read from the ledger.
  ASSIGN_OR_RETURN(auto row, attribution_.FindAction(event_id));
  json::object traced_from;
  if (!row) {
    // Another event: an outcome or containment points at its decision.
    ASSIGN_OR_RETURN(auto idx,
                     ledger_.store().FindLeaves(store::LedgerStore::Column::kEventId, event_id));
    if (idx.empty()) return NotFoundError("no event " + event_id);
    ASSIGN_OR_RETURN(store::StoredLeaf leaf, ledger_.GetEntry(idx.front()));
    ASSIGN_OR_RETURN(json::object ev, ParseLeaf(leaf));
    std::string action_id = StringField(ev, "action_id");
    if (action_id.empty()) action_id = StringField(Obj(ev, "trigger"), "action_id");
    traced_from = {
        {"event_id", event_id}, {"kind", StringField(ev, "kind")}, {"index", leaf.index}};
    if (action_id.empty()) {
      return FailedPreconditionError("event " + event_id + " (" + StringField(ev, "kind") +
                                     ") is not an action; trace an action, its outcome or a "
                                     "tripwire containment");
    }
    ASSIGN_OR_RETURN(row, attribution_.FindAction(action_id));
    if (!row) return NotFoundError("event " + event_id + " names unknown action " + action_id);
  }

  ASSIGN_OR_RETURN(store::StoredLeaf dleaf,
                   ledger_.GetEntry(static_cast<uint64_t>(row->decision_index)));
  ASSIGN_OR_RETURN(json::object d, ParseLeaf(dleaf));
  if (StringField(d, "kind") != "action.decision" || StringField(d, "event_id") != row->action_id) {
    return DataLossError("ledger entry " + std::to_string(dleaf.index) +
                         " is not the decision of action " + row->action_id);
  }
  const json::object& actor = Obj(d, "actor");
  const json::object& initiator = Obj(d, "initiator");
  const json::object& session = Obj(d, "session");
  const json::object& policy = Obj(d, "policy");
  const json::object& request = Obj(d, "request");

  // The path: each session of the recorded chain as the registry knows it now.
  json::array path;
  json::array chain = Arr(Obj(session, "chain"), "sids");
  json::array chain_agents = Arr(Obj(session, "chain"), "agents");
  std::vector<std::string> chain_sids;
  for (size_t i = 0; i < chain.size() && i < kMaxChain; ++i) {
    if (!chain[i].is_string()) continue;
    std::string sid(chain[i].get_string());
    chain_sids.push_back(sid);
    auto s = tokens_.GetSession(sid);
    if (s.ok()) {
      json::object node = identity::SessionJson(*s);
      node["type"] = i == 0 ? "root_session" : "delegated_session";
      path.push_back(std::move(node));
    } else {
      json::object node{{"type", "session"}, {"sid", sid}, {"error", s.status().message()}};
      if (i < chain_agents.size()) node["agent"] = chain_agents[i];
      path.push_back(std::move(node));
    }
  }
  json::object action_node{{"type", "action"},
                           {"action_id", row->action_id},
                           {"action", StringField(request, "action")},
                           {"target", Obj(request, "target")},
                           {"decision", StringField(d, "decision")},
                           {"time", StringField(d, "time")}};
  path.push_back(action_node);

  // Containments that bear on it: tripped by it, or on any session of its chain, or its agent.
  json::array containments;
  std::set<std::string> seen;
  auto add_containments = [&](const std::string& subject) -> Status {
    ASSIGN_OR_RETURN(auto rows, store.ContainmentsOf(subject));
    for (const ContainmentRow& c : rows) {
      if (!seen.insert(c.event_id).second) continue;
      json::object o = ContainmentJson(c);
      o["tripped_by_this_action"] = c.trigger_action == row->action_id;
      containments.push_back(std::move(o));
    }
    return OkStatus();
  };
  for (const auto& sid : chain_sids) RETURN_IF_ERROR(add_containments(sid));
  RETURN_IF_ERROR(add_containments(row->agent));

  json::object outcome;
  if (row->outcome_index >= 0) {
    auto oleaf = ledger_.GetEntry(static_cast<uint64_t>(row->outcome_index));
    if (oleaf.ok()) {
      auto oev = ParseLeaf(*oleaf);
      if (oev.ok()) {
        outcome = Obj(*oev, "outcome");
        outcome["event_id"] = StringField(*oev, "event_id");
        outcome["index"] = oleaf->index;
      }
    }
  }

  // The published set the decision was made under.
  json::object policy_set{{"hash", StringField(policy, "set_hash")}};
  if (auto sets = store.ListPolicySets(); sets.ok()) {
    for (const PolicySetRecord& p : *sets) {
      if (p.hash != StringField(policy, "set_hash")) continue;
      policy_set["published_by"] = p.published_by;
      policy_set["published"] = TimeOf(p.published_ms);
      policy_set["ledger_index"] = p.ledger_index;
      break;
    }
  }

  std::string how = StringField(initiator, "verification") == "verified"
                        ? "verified (a trusted issuer's signed ID token)"
                        : "asserted by " + StringField(initiator, "asserted_by") +
                              " (an unsigned assertion from a client allowed to make it)";
  json::array delegation;
  for (size_t i = 0; i < chain_sids.size(); ++i) {
    json::object link{{"sid", chain_sids[i]}};
    if (i < chain_agents.size()) link["agent"] = chain_agents[i];
    delegation.push_back(std::move(link));
  }
  json::array determining = Arr(policy, "determining");
  std::string allowed_by;
  for (const auto& v : determining) {
    if (!v.is_string()) continue;
    if (!allowed_by.empty()) allowed_by += ", ";
    allowed_by += std::string(v.get_string());
  }
  // Under what approval: the one the decision ran under, or the one it was held for and what
  // became of it (the approval.* events of its session, indexed under it).
  json::array approvals;
  std::string under = "none: no approval was involved";
  if (const json::object& cited = Obj(d, "approval"); !cited.empty()) {
    json::object a;
    if (StringField(cited, "state") == "used") {
      a = UsedApproval(ledger_, cited);
    } else {
      a = cited;
      const std::string id = StringField(cited, "id");
      json::array history;
      std::string outcome = "undecided";
      if (auto events = ApprovalEventsOf(ledger_, row->sid, id); events.ok()) {
        for (auto& e : *events) {
          const std::string kind = StringField(e, "kind");
          outcome = kind == "approval.approve"  ? "approved"
                    : kind == "approval.deny"   ? "denied"
                    : kind == "approval.expire" ? "expired"
                                                : "cancelled";
          history.push_back(std::move(e));
        }
      } else {
        a["problem"] = "its events cannot be read: " + events.status().message();
      }
      a["history"] = std::move(history);
      a["outcome"] = outcome;
      // Which action it let run, if any (the store keeps the last).
      if (auto stored = attribution_.GetApproval(id); stored.ok() && *stored) {
        if (!(*stored)->used_by.empty()) a["used_by"] = (*stored)->used_by;
      }
    }
    under = UnderWhatApproval(a);
    approvals.push_back(std::move(a));
  }

  std::string what;
  if (StringField(d, "decision") == "allow") {
    what = "allowed by " + (allowed_by.empty() ? "policy" : allowed_by) + " under policy set " +
           StringField(policy, "set_hash");
    if (!approvals.empty())
      what += ", under approval " + StringField(Obj(d, "approval"), "id") + " by " +
              StringField(Obj(d, "approval"), "approver");
  } else if (StringField(d, "decision") == "approval_required") {
    what = "held for approval: " + StringField(d, "message");
  } else {
    what = "denied: " + StringField(d, "message");
  }

  json::object out{{"event_id", row->action_id},
                   {"index", dleaf.index},
                   {"time", StringField(d, "time")},
                   {"decision", StringField(d, "decision")},
                   {"message", StringField(d, "message")},
                   {"request", request},
                   {"initiated_by",
                    {{"id", StringField(initiator, "id")},
                     {"issuer", StringField(initiator, "issuer")},
                     {"verification", StringField(initiator, "verification")},
                     {"asserted_by", StringField(initiator, "asserted_by")},
                     {"how_known", how}}},
                   {"executed_by",
                    {{"agent", StringField(actor, "agent")},
                     {"instance", StringField(actor, "instance")},
                     {"session", StringField(actor, "session")},
                     {"credential", StringField(actor, "credential")}}},
                   {"allowed_by",
                    {{"decision", StringField(d, "decision")},
                     {"reasons", Arr(d, "reasons")},
                     {"determining_policies", determining},
                     {"policy_errors", Arr(policy, "errors")},
                     {"policy_set", policy_set},
                     {"delegation_chain", delegation},
                     {"context", Obj(d, "context")},
                     {"approvals", std::move(approvals)}}},
                   {"path", path},
                   {"containments", containments},
                   {"trace",
                    {{"trace_id", row->trace_id},
                     {"span_id", row->span_id},
                     {"txn", row->txn},
                     {"parent_event", StringField(d, "parent_event")}}},
                   {"answers",
                    {{"who_initiated", StringField(initiator, "id") + " (" + how + ")"},
                     {"who_executed", "agent " + StringField(actor, "agent") + " instance " +
                                          StringField(actor, "instance") + " in session " +
                                          StringField(actor, "session") + " with credential " +
                                          StringField(actor, "credential")},
                     {"what_allowed", what},
                     {"under_what_approval", under}}}};
  if (d.contains("containment")) out["allowed_by"].as_object()["tripwire"] = d.at("containment");
  if (!outcome.empty()) out["outcome"] = outcome;
  if (!traced_from.empty()) out["traced_from"] = traced_from;
  if (auto receipt = ledger_.ReceiptFor(dleaf.index); receipt.ok()) out["receipt"] = *receipt;
  // What the agent's telemetry reported doing under this decision (OTLP ingest, docs/OTLP.md):
  // observed, not decided; present only when there is some.
  if (auto found = ledger_.store().FindLeaves(store::LedgerStore::Column::kSession, row->sid,
                                              "action.observed");
      found.ok()) {
    json::array observed;
    for (uint64_t i : *found) {
      auto leaf = ledger_.GetEntry(i);
      if (!leaf.ok()) continue;
      auto ev = ParseLeaf(*leaf);
      if (!ev.ok() || StringField(Obj(*ev, "link"), "decision") != row->action_id) continue;
      (*ev)["ledger_index"] = leaf->index;
      observed.push_back(std::move(*ev));
    }
    if (!observed.empty()) out["observed"] = std::move(observed);
  }
  return json::serialize(out);
}

namespace {

// The just-in-time database credentials recorded for `column` = `value` (a session or an agent),
// from their db_credential.issue and db_credential.revoke events (docs/CREDENTIALS.md): what
// they reached (database, access level), until when, and whether they are revoked. By role.
Result<std::map<std::string, json::object>> CredentialsOf(ledger::Ledger& ledger,
                                                          store::LedgerStore::Column column,
                                                          const std::string& value) {
  std::map<std::string, json::object> out;
  for (const char* kind : {"db_credential.issue", "db_credential.revoke"}) {
    ASSIGN_OR_RETURN(auto found, ledger.store().FindLeaves(column, value, kind));
    for (uint64_t i : found) {
      ASSIGN_OR_RETURN(store::StoredLeaf leaf, ledger.GetEntry(i));
      ASSIGN_OR_RETURN(json::object ev, ParseLeaf(leaf));
      const json::object& c = Obj(ev, "credential");
      const std::string role = StringField(c, "role");
      if (role.empty()) continue;
      json::object& o = out[role];
      if (std::string_view(kind) == "db_credential.issue") {
        o["role"] = role;
        o["database"] = StringField(c, "database");
        o["access"] = StringField(c, "access");
        o["session"] = StringField(Obj(ev, "target"), "session");
        o["agent"] = StringField(Obj(ev, "target"), "agent");
        o["issued_at"] = StringField(ev, "time");
        o["expires_at"] = StringField(c, "expires_at");
        o["issue_index"] = leaf.index;
        if (!o.contains("revoked")) o["revoked"] = false;
      } else {
        o["revoked"] = true;
        o["revoked_at"] = StringField(ev, "time");
        o["revoke_reason"] = StringField(ev, "reason");
      }
    }
  }
  return out;
}

}  // namespace

// --- Session events ----------------------------------------------------------------------------

Result<std::string> Investigator::SessionEvents(const std::string& sid) {
  ASSIGN_OR_RETURN(std::vector<identity::Session> tree, tokens_.SessionTree(sid));
  std::vector<std::string> sids;
  for (const auto& s : tree) sids.push_back(s.sid);
  attribution_.FlushIndex();
  ASSIGN_OR_RETURN(std::vector<ActionRow> rows, attribution_.store().ActionsOfSessions(sids));
  std::map<std::string, json::array> by_sid;
  for (const ActionRow& r : rows) by_sid[r.sid].push_back(ActionJson(r));
  json::array sessions;
  for (const auto& s : tree) {
    json::object o = identity::SessionJson(s);
    o["actions"] = std::move(by_sid[s.sid]);
    json::array cs;
    if (auto c = attribution_.store().ContainmentsOf(s.sid); c.ok())
      for (const auto& row : *c) cs.push_back(ContainmentJson(row));
    o["containments"] = std::move(cs);
    // Approvals asked for, decided, expired or cancelled: events, not actions.
    ASSIGN_OR_RETURN(auto approval_events, ApprovalEventsOf(ledger_, s.sid));
    json::array as;
    for (auto& e : approval_events) as.push_back(std::move(e));
    o["approval_events"] = std::move(as);
    // What the session's telemetry reported (OTLP ingest, docs/OTLP.md): observed, not decided,
    // and kept apart from the actions.
    ASSIGN_OR_RETURN(auto observed, ledger_.store().FindLeaves(store::LedgerStore::Column::kSession,
                                                               s.sid, "action.observed"));
    json::array obs;
    for (uint64_t i : observed) {
      ASSIGN_OR_RETURN(store::StoredLeaf leaf, ledger_.GetEntry(i));
      ASSIGN_OR_RETURN(json::object ev, ParseLeaf(leaf));
      ev["ledger_index"] = leaf.index;
      obs.push_back(std::move(ev));
    }
    o["observed_actions"] = std::move(obs);
    sessions.push_back(std::move(o));
  }
  json::object out{{"session", sid},
                   {"sessions", std::move(sessions)},
                   {"actions", static_cast<int64_t>(rows.size())}};
  return json::serialize(out);
}

// --- Blast radius ----------------------------------------------------------------------------

Result<std::string> Investigator::BlastRadius(const std::string& kind, const std::string& id) {
  if (kind != "agent" && kind != "session" && kind != "user")
    return InvalidArgumentError("kind must be agent, session or user");
  if (id.empty()) return InvalidArgumentError("an id is required");
  AttributionStore& store = attribution_.store();
  attribution_.FlushIndex();
  const int64_t now_s = UnixMillis(clock_.Now()) / 1000;

  // The sessions in play (each with its subtree), and the agents they belong to.
  std::map<std::string, identity::Session> sessions;  // sid -> session
  std::vector<std::string> notes;
  auto add_tree = [&](const std::string& root) -> Status {
    ASSIGN_OR_RETURN(auto tree, tokens_.SessionTree(root));
    for (auto& s : tree) sessions.emplace(s.sid, std::move(s));
    return OkStatus();
  };
  std::set<std::string> agents;
  if (kind == "session") {
    RETURN_IF_ERROR(add_tree(id));
  } else if (kind == "user") {
    ASSIGN_OR_RETURN(auto rows, store.ActionsOfInitiator(id));
    std::set<std::string> roots;
    for (const auto& r : rows) roots.insert(r.root_sid);
    for (const auto& r : roots) RETURN_IF_ERROR(add_tree(r));
    if (roots.empty()) return NotFoundError("no recorded action was initiated by " + id);
    notes.push_back("sessions of a user are found through their recorded actions");
  } else {
    ASSIGN_OR_RETURN(identity::Agent a, tokens_.GetAgent(id));
    agents.insert(a.name);
    std::set<std::string> own;
    for (const char* k : {"session.start", "delegation"}) {
      ASSIGN_OR_RETURN(auto idx,
                       ledger_.store().FindLeaves(store::LedgerStore::Column::kAgent, id, k));
      for (uint64_t i : idx) {
        ASSIGN_OR_RETURN(store::StoredLeaf leaf, ledger_.GetEntry(i));
        if (!leaf.columns.session.empty()) own.insert(leaf.columns.session);
      }
    }
    ASSIGN_OR_RETURN(auto rows, store.ActionsOfAgent(id, 0));
    for (const auto& r : rows) own.insert(r.sid);
    for (const auto& sid : own) RETURN_IF_ERROR(add_tree(sid));
  }
  for (const auto& [sid, s] : sessions) agents.insert(s.agent);

  // Candidates: published tools and resources, and every target ever recorded.
  std::map<std::string, Target> targets;
  for (const Target& t : attribution_.PublishedTargets()) targets.emplace(t.Key(), t);
  ASSIGN_OR_RETURN(auto seen, store.DistinctTargets());
  for (const auto& k : seen)
    if (auto t = ParseTargetKey(k)) targets.emplace(k, *t);
  ASSIGN_OR_RETURN(auto action_names, store.DistinctActions());
  std::set<std::string> actions(action_names.begin(), action_names.end());
  actions.insert("call_tool");

  // Only live sessions reach anything. An agent with none is evaluated as a fresh root session
  // when it could start one (asked about an agent or a user, and it is not disabled); a session
  // tree is what it is: with no live session left it is contained and reaches nothing.
  json::array per_agent;
  std::map<std::string, std::pair<std::set<std::string>, std::set<std::string>>> potential;
  bool contained = true;
  for (const std::string& name : agents) {
    ASSIGN_OR_RETURN(identity::Agent agent, tokens_.GetAgent(name));
    std::vector<identity::Session> evaluated;
    for (const auto& [sid, s] : sessions)
      if (s.agent == name && Live(s, now_s)) evaluated.push_back(s);
    bool synthesized = false;
    if (evaluated.empty() && kind != "session" && !agent.disabled) {
      identity::Session s;
      s.agent = name;
      s.sid = "";  // not in the registry: WouldAllow treats it as a fresh root session
      s.instance = "spiffe://(none)/agent/" + name;
      s.initiator = kind == "user" ? id : "";
      s.verification = identity::InitiatorVerification::kAsserted;
      s.scopes = agent.grants;
      evaluated.push_back(std::move(s));
      synthesized = true;
    }
    json::array reach;
    for (const auto& [key, target] : targets) {
      if (!identity::CoveredBy(key, agent.grants)) continue;
      json::array allowed_actions;
      std::set<std::string> via;
      for (const std::string& action : actions) {
        bool any = false;
        for (const auto& s : evaluated) {
          ASSIGN_OR_RETURN(bool ok, attribution_.WouldAllow(s, action, target));
          if (ok) {
            any = true;
            via.insert(s.sid.empty() ? "(synthesized)" : s.sid);
          }
        }
        if (any) allowed_actions.emplace_back(action);
      }
      if (allowed_actions.empty()) continue;
      for (const auto& a : allowed_actions)
        potential[key].first.insert(std::string(a.get_string()));
      potential[key].second.insert(name);
      reach.push_back(json::object{{"target", key},
                                   {"actions", allowed_actions},
                                   {"sessions", StringArray({via.begin(), via.end()})}});
    }
    json::array sids;
    for (const auto& s : evaluated)
      if (!s.sid.empty()) sids.emplace_back(s.sid);
    json::object a{{"agent", name},
                   {"grants", StringArray(agent.grants)},
                   {"disabled", agent.disabled},
                   {"evaluated_sessions", sids},
                   {"synthesized_session", synthesized},
                   {"reachable", reach}};
    if (synthesized) {
      a["note"] =
          "no live session: evaluated as a fresh root session with its grants as scopes and an "
          "unverified initiator";
    } else if (evaluated.empty()) {
      a["note"] = agent.disabled ? "disabled, with no live session: it can reach nothing"
                                 : "no live session in this tree: it can reach nothing";
    }
    if (!evaluated.empty()) contained = false;
    per_agent.push_back(std::move(a));
  }
  if (contained) {
    notes.push_back(kind == "session"
                        ? "contained: every session of this tree is revoked or expired; it can "
                          "reach nothing"
                        : "contained: no live session, and no agent in play can start one; "
                          "nothing can be reached");
  }
  json::array potential_arr;
  for (const auto& [key, v] : potential) {
    potential_arr.push_back(
        json::object{{"target", key},
                     {"actions", StringArray({v.first.begin(), v.first.end()})},
                     {"agents", StringArray({v.second.begin(), v.second.end()})}});
  }

  // Actual: every attempt of the sessions in play, allowed or denied. A target only ever denied
  // stays (count 0): an attempt on it is exactly what an investigator looks for.
  std::vector<ActionRow> rows;
  {
    std::vector<std::string> sids;
    for (const auto& [sid, s] : sessions) sids.push_back(sid);
    ASSIGN_OR_RETURN(rows, store.ActionsOfSessions(sids));
  }
  struct Use {
    int64_t count = 0, denied = 0, held = 0, last_ms = 0;
    std::set<std::string> agents, actions;
  };
  std::map<std::string, Use> used;
  for (const auto& r : rows) {
    Use& u = used[r.target];
    // Held for a person's approval is neither a use nor a denial.
    (r.decision == "allow" ? u.count : r.decision == "approval_required" ? u.held : u.denied)++;
    u.last_ms = std::max(u.last_ms, r.time_ms);
    u.agents.insert(r.agent);
    u.actions.insert(r.action);
  }
  json::array actual;
  for (const auto& [key, u] : used) {
    actual.push_back(json::object{{"target", key},
                                  {"count", u.count},
                                  {"denied", u.denied},
                                  {"held_for_approval", u.held},
                                  {"last", TimeOf(u.last_ms)},
                                  {"actions", StringArray({u.actions.begin(), u.actions.end()})},
                                  {"agents", StringArray({u.agents.begin(), u.agents.end()})}});
  }
  json::array session_ids;
  for (const auto& [sid, s] : sessions) session_ids.emplace_back(sid);
  std::string set_hash;
  if (auto active = attribution_.ActivePolicySet(); active.ok() && *active)
    set_hash = (*active)->hash;
  json::object out{{"kind", kind},
                   {"id", id},
                   {"policy_set", set_hash},
                   {"sessions", session_ids},
                   {"contained", contained},
                   {"agents", per_agent},
                   {"potential", potential_arr},
                   {"actual", actual},
                   {"candidates",
                    {{"targets", static_cast<int64_t>(targets.size())},
                     {"actions", StringArray({actions.begin(), actions.end()})}}},
                   {"notes", StringArray(notes)}};
  // What the sessions' database credentials reached (docs/CREDENTIALS.md).
  json::array credentials;
  for (const auto& [sid, s] : sessions) {
    ASSIGN_OR_RETURN(auto found, CredentialsOf(ledger_, store::LedgerStore::Column::kSession, sid));
    for (auto& [role, c] : found) credentials.push_back(std::move(c));
  }
  out["credentials"] = std::move(credentials);
  return json::serialize(out);
}

// --- Review ----------------------------------------------------------------------------------

Result<std::string> Investigator::Review(const std::string& agent_name, int64_t since_ms) {
  ASSIGN_OR_RETURN(identity::Agent agent, tokens_.GetAgent(agent_name));
  attribution_.FlushIndex();
  ASSIGN_OR_RETURN(auto rows, attribution_.store().ActionsOfAgent(agent_name, since_ms));
  std::map<std::string, std::pair<int64_t, int64_t>> used;  // target -> (count, last)
  for (const auto& r : rows) {
    if (r.decision != "allow") continue;
    auto& u = used[r.target];
    u.first++;
    u.second = std::max(u.second, r.time_ms);
  }
  json::array grants, unused, uncovered;
  for (const auto& g : agent.grants) {
    json::array covered;
    int64_t calls = 0;
    for (const auto& [target, u] : used) {
      if (!identity::Covers(g, target)) continue;
      covered.push_back(
          json::object{{"target", target}, {"count", u.first}, {"last", TimeOf(u.second)}});
      calls += u.first;
    }
    if (covered.empty()) unused.emplace_back(g);
    grants.push_back(json::object{
        {"scope", g}, {"used", !covered.empty()}, {"calls", calls}, {"targets", covered}});
  }
  for (const auto& [target, u] : used)
    if (!identity::CoveredBy(target, agent.grants)) uncovered.emplace_back(target);
  json::object out{{"agent", agent_name},
                   {"since", TimeOf(since_ms)},
                   {"allowed_actions",
                    static_cast<int64_t>(std::count_if(
                        rows.begin(), rows.end(), [](auto& r) { return r.decision == "allow"; }))},
                   {"grants", grants},
                   {"unused_grants", unused},
                   {"removal_candidates", unused},
                   {"used_outside_grants", uncovered}};
  // Database credentials the agent was issued in the window, by database and access level.
  ASSIGN_OR_RETURN(auto creds,
                   CredentialsOf(ledger_, store::LedgerStore::Column::kAgent, agent_name));
  std::map<std::pair<std::string, std::string>, std::pair<int64_t, std::string>> issued;
  for (auto& [role, c] : creds) {
    const std::string at = StringField(c, "issued_at");
    if (at.empty() || at < TimeOf(since_ms)) continue;
    auto& e = issued[{StringField(c, "database"), StringField(c, "access")}];
    e.first++;
    e.second = std::max(e.second, at);
  }
  json::array credentials;
  for (const auto& [key, e] : issued) {
    credentials.push_back(json::object{
        {"database", key.first}, {"access", key.second}, {"issued", e.first}, {"last", e.second}});
  }
  out["credentials"] = std::move(credentials);

  // Credential templates granted but never used: each configured database's access levels that
  // the policies would let the agent issue (a dry run of issue_credential with the level in
  // context.arguments, as a fresh root session with its grants as scopes: what a new session of
  // it could get) and for which no credential was ever issued to it (any time, not only in the
  // window). A disabled agent can start no session: it is granted none.
  std::set<std::pair<std::string, std::string>> ever;
  for (auto& [role, c] : creds) ever.insert({StringField(c, "database"), StringField(c, "access")});
  json::array unused_templates;
  if (!agent.disabled) {
    identity::Session s;
    s.agent = agent_name;
    s.sid = "";  // not in the registry: WouldAllow treats it as a fresh root session
    s.instance = "spiffe://(none)/agent/" + agent_name;
    s.verification = identity::InitiatorVerification::kAsserted;
    s.scopes = agent.grants;
    for (const auto& [database, levels] : credential_levels_) {
      Target target;
      target.type = "Database";
      target.id = database;
      for (const std::string& level : levels) {
        if (ever.count({database, level})) continue;
        ASSIGN_OR_RETURN(bool ok,
                         attribution_.WouldAllow(s, "issue_credential", target, {},
                                                 json::serialize(json::object{{"access", level}})));
        if (ok) unused_templates.push_back(json::object{{"database", database}, {"access", level}});
      }
    }
  }
  out["unused_credential_templates"] = std::move(unused_templates);
  return json::serialize(out);
}

// --- Graph -----------------------------------------------------------------------------------

namespace {
std::string DotId(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out + "\"";
}
}  // namespace

Result<std::string> Investigator::Graph(const std::string& format) {
  if (format != "json" && format != "dot")
    return InvalidArgumentError("format must be json or dot");
  attribution_.FlushIndex();
  ASSIGN_OR_RETURN(auto usage, attribution_.store().UsageBySession());
  // Every session tree that has acted, sessions without actions included.
  std::set<std::string> roots;
  for (const auto& u : usage) roots.insert(u.root_sid);
  std::map<std::string, identity::Session> sessions;
  for (const auto& r : roots) {
    auto tree = tokens_.SessionTree(r);
    if (!tree.ok()) continue;
    for (auto& s : *tree) sessions.emplace(s.sid, std::move(s));
  }
  // Nodes: "human:<id>" (verified by a trusted issuer's ID token), "initiator:<id>" (asserted
  // by a client, or no longer known), "session:<sid>", "agent:<name>", "tool:<key>" /
  // "resource:<key>".
  std::map<std::string, json::object> nodes;
  struct Counts {
    int64_t allowed = 0, denied = 0, held = 0;
  };
  std::map<std::tuple<std::string, std::string, std::string>, Counts> edges;
  auto node = [&](const std::string& type, const std::string& id) {
    std::string key = type + ":" + id;
    nodes.try_emplace(key, json::object{{"id", key}, {"type", type}, {"label", id}});
    return key;
  };
  auto edge = [&](const std::string& from, const std::string& to, const std::string& label,
                  const std::string& decision = "", int64_t count = 0) {
    Counts& e = edges[{from, to, label}];
    // Held for a person's approval is neither allowed nor denied.
    (decision == "allow"               ? e.allowed
     : decision == "approval_required" ? e.held
                                       : e.denied) += count;
  };
  // How each initiator is known is part of its node: only an ID token verified against a
  // trusted issuer makes a "human"; what a client asserted stays an assertion, by that client.
  // The same id verified and asserted are two nodes: an assertion is not the verified person.
  auto initiator = [&](const std::string& id, const std::string& verification,
                       const std::string& issuer, const std::string& asserted_by) {
    std::string label = id.empty() ? "(unknown)" : id;
    std::string key = verification == "verified" ? node("human", label)
                      : asserted_by.empty()      ? node("initiator", label)
                                                 : node("initiator", asserted_by + "/" + label);
    json::object& n = nodes[key];
    n["label"] = label;
    n["verification"] = verification;
    if (!issuer.empty()) n["issuer"] = issuer;
    if (!asserted_by.empty()) n["asserted_by"] = asserted_by;
    return key;
  };
  for (const auto& [sid, s] : sessions) {
    std::string sn = node("session", sid);
    if (s.parent_sid.empty()) {
      bool verified = s.verification == identity::InitiatorVerification::kVerified;
      edge(initiator(s.initiator, verified ? "verified" : "asserted", s.initiator_issuer,
                     verified ? "" : s.asserted_by),
           sn, "started");
    } else {
      edge(node("session", s.parent_sid), sn, "delegated");
    }
    edge(sn, node("agent", s.agent), "acted_as");
  }
  for (const auto& u : usage) {
    if (!sessions.count(u.sid)) {  // not in the registry any more: still show what it did
      node("session", u.sid);
      edge(initiator(u.initiator, "unknown", "", ""), node("session", u.sid), "started");
      edge(node("session", u.sid), node("agent", u.agent), "acted_as");
    }
    auto t = ParseTargetKey(u.target);
    std::string tn = node(t && !t->is_tool() ? "resource" : "tool", u.target);
    edge(node("agent", u.agent), tn, "used", u.decision, u.count);
  }
  json::array ns, es;
  for (auto& [k, n] : nodes) ns.push_back(n);
  for (const auto& [k, v] : edges) {
    json::object e{{"from", std::get<0>(k)}, {"to", std::get<1>(k)}, {"type", std::get<2>(k)}};
    if (std::get<2>(k) == "used") {
      e["allowed"] = v.allowed;
      e["denied"] = v.denied;
      e["held_for_approval"] = v.held;
    }
    es.push_back(std::move(e));
  }
  std::string out = json::serialize(json::object{{"nodes", ns}, {"edges", es}});
  if (format == "dot") return GraphToDot(out);
  return out;
}

Result<std::string> GraphToDot(std::string_view graph_json) {
  boost::system::error_code ec;
  json::value v = ParseJson(graph_json, ec);
  if (ec || !v.is_object()) return InvalidArgumentError("not a graph answer");
  const json::object& g = v.get_object();
  std::string dot = "digraph custody {\n  rankdir=LR;\n";
  for (const auto& nv : Arr(g, "nodes")) {
    if (!nv.is_object()) continue;
    const json::object& n = nv.get_object();
    std::string type = StringField(n, "type");
    const char* shape = type == "human"       ? "house"
                        : type == "initiator" ? "octagon"
                        : type == "session"   ? "ellipse"
                        : type == "agent"     ? "box"
                                              : "component";
    std::string heading = type;
    if (type == "initiator") {
      heading = StringField(n, "asserted_by").empty()
                    ? "initiator (" + StringField(n, "verification") + ")"
                    : "initiator (asserted by " + StringField(n, "asserted_by") + ")";
    }
    dot += "  " + DotId(StringField(n, "id")) +
           " [label=" + DotId(heading + "\n" + StringField(n, "label")) + ", shape=" + shape +
           "];\n";
  }
  for (const auto& ev : Arr(g, "edges")) {
    if (!ev.is_object()) continue;
    const json::object& e = ev.get_object();
    std::string label = StringField(e, "type");
    bool only_denied = false;
    if (label == "used") {
      auto num = [&](const char* k) {
        auto it = e.find(k);
        return it != e.end() && it->value().is_int64() ? it->value().get_int64() : int64_t{0};
      };
      int64_t allowed = num("allowed"), denied = num("denied"), held = num("held_for_approval");
      label = std::to_string(allowed) + " allowed";
      if (denied) label += ", " + std::to_string(denied) + " denied";
      if (held) label += ", " + std::to_string(held) + " held for approval";
      only_denied = (denied || held) && !allowed;
    }
    dot += "  " + DotId(StringField(e, "from")) + " -> " + DotId(StringField(e, "to")) +
           " [label=" + DotId(label) + (only_denied ? ", style=dashed" : "") + "];\n";
  }
  return dot + "}\n";
}

Result<int64_t> ParseSince(std::string_view text, int64_t now_ms) {
  auto bad = [&] {
    return InvalidArgumentError(
        "since must be Unix milliseconds, <N>d|h|m, or an RFC 3339 UTC "
        "date or time");
  };
  if (text.empty()) return int64_t{0};
  if (text.size() > 40) return bad();
  auto digits = [](std::string_view d) {
    return !d.empty() && d.size() <= 15 &&
           std::all_of(d.begin(), d.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  if (digits(text)) return static_cast<int64_t>(std::stoll(std::string(text)));
  char unit = text.back();
  if ((unit == 'd' || unit == 'h' || unit == 'm') && digits(text.substr(0, text.size() - 1))) {
    int64_t n = std::stoll(std::string(text.substr(0, text.size() - 1)));
    int64_t ms = unit == 'd' ? 86'400'000 : unit == 'h' ? 3'600'000 : 60'000;
    if (n > 100'000) return bad();
    return now_ms - n * ms;
  }
  std::tm tm{};
  std::string t(text);
  const char* end = nullptr;
  if (t.size() == 10) {
    end = ::strptime(t.c_str(), "%Y-%m-%d", &tm);
  } else if (t.size() == 20 && t.back() == 'Z') {
    end = ::strptime(t.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  }
  if (end == nullptr || *end != '\0') return bad();
  return static_cast<int64_t>(::timegm(&tm)) * 1000;
}

// --- Renderers -------------------------------------------------------------------------------

namespace {

Result<json::object> ParseAnswer(std::string_view text) {
  boost::system::error_code ec;
  json::value v = ParseJson(text, ec);
  if (ec || !v.is_object()) return InvalidArgumentError("not a JSON object");
  return std::move(v.as_object());
}

std::string Join(const json::array& a, const char* sep = ", ") {
  std::string out;
  for (const auto& v : a) {
    if (!out.empty()) out += sep;
    out += v.is_string() ? std::string(v.get_string()) : json::serialize(v);
  }
  return out;
}

std::string SessionLine(const json::object& s) {
  std::string line = "session " + StringField(s, "sid") + "  agent " + StringField(s, "agent");
  if (!StringField(s, "instance").empty()) line += "  instance " + StringField(s, "instance");
  const json::object& in = Obj(s, "initiator");
  if (!StringField(in, "id").empty())
    line += "  for " + StringField(in, "id") + " (" + StringField(in, "verification") + ")";
  json::array scopes = Arr(s, "scopes");
  line += "  scopes [" + Join(scopes, " ") + "]";
  if (StringField(s, "status") == "revoked")
    line += "  REVOKED (" + StringField(s, "revoke_reason") + ")";
  return line;
}

}  // namespace

Result<std::string> RenderTrace(std::string_view trace_json) {
  ASSIGN_OR_RETURN(json::object t, ParseAnswer(trace_json));
  if (!t.contains("path") || !t.contains("answers"))
    return InvalidArgumentError("not a trace answer");
  const json::object& ans = Obj(t, "answers");
  std::string out = "action " + StringField(t, "event_id") + " (ledger index " +
                    json::serialize(t.at("index")) + ", " + StringField(t, "time") + ")\n";
  out += "  who initiated:  " + StringField(ans, "who_initiated") + "\n";
  out += "  who executed:   " + StringField(ans, "who_executed") + "\n";
  out += "  what allowed:   " + StringField(ans, "what_allowed") + "\n";
  const json::object& allowed = Obj(t, "allowed_by");
  out += "  policy set:     " + StringField(Obj(allowed, "policy_set"), "hash") + "\n";
  out += "  reasons:        " + Join(Arr(allowed, "reasons")) + "\n";
  if (allowed.contains("tripwire")) {
    const json::object& tw = Obj(allowed, "tripwire");
    out += "  tripwire:       " + StringField(tw, "tripwire") + " contained " +
           StringField(tw, "scope") + " (revoked: " + Join(Arr(tw, "revoked_sessions")) + ")\n";
  }
  const json::array approvals = Arr(allowed, "approvals");
  static const json::object kNone;
  const json::object& ap =
      !approvals.empty() && approvals[0].is_object() ? approvals[0].get_object() : kNone;
  if (ap.empty()) {
    out += "  approvals:      none\n";
  } else if (StringField(ap, "state") == "used") {
    out += "  under approval: " + StringField(ap, "id") + " by " + StringField(ap, "approver") +
           " (verified by " + StringField(ap, "verified_by") + ")";
    if (StringField(ap, "problem").empty()) {
      out += " at " + StringField(ap, "approved_at") + ", reason \"" + StringField(ap, "reason") +
             "\" (ledger index " + std::to_string(IntField(ap, "approval_index")) + ")\n";
    } else {
      out +=
          "\n                  NOT confirmed by the ledger: " + StringField(ap, "problem") + "\n";
    }
    out += "  execution:      autonomous after approval (the agent ran it itself, after " +
           StringField(ap, "approver") + " approved)\n";
  } else {
    out += "  held for:       approval " + StringField(ap, "id") + " by a member of " + Groups(ap) +
           "\n";
    out += "  then:           " + ApprovalFate(ap) + "\n";
  }
  out += "path:\n";
  json::array path = Arr(t, "path");
  std::string indent = "  ";
  for (size_t i = 0; i < path.size(); ++i) {
    if (!path[i].is_object()) continue;
    const json::object& n = path[i].get_object();
    std::string prefix = indent + (i == 0 ? "" : "└─ ");
    if (StringField(n, "type") == "action") {
      const json::object& tg = Obj(n, "target");
      out += prefix + "action " + StringField(n, "action") + " on " + StringField(tg, "key") +
             " -> " + StringField(n, "decision") + "\n";
    } else {
      out += prefix + SessionLine(n) + "\n";
    }
    if (i > 0) indent += "   ";
  }
  json::array cs = Arr(t, "containments");
  if (!cs.empty()) {
    out += "containments:\n";
    for (const auto& c : cs) {
      if (!c.is_object()) continue;
      const json::object& o = c.get_object();
      out += "  " + StringField(o, "scope") + " " + StringField(o, "subject") + ": " +
             StringField(o, "reason") +
             (StringField(o, "trigger_action").empty()
                  ? ""
                  : " (triggered by " + StringField(o, "trigger_action") + ")") +
             "\n";
    }
  }
  if (t.contains("outcome")) {
    const json::object& o = Obj(t, "outcome");
    out += "outcome: " + StringField(o, "status") +
           (StringField(o, "error").empty() ? "" : " (" + StringField(o, "error") + ")") + "\n";
  }
  return out;
}

Result<std::string> RenderSessionEvents(std::string_view session_events_json) {
  ASSIGN_OR_RETURN(json::object t, ParseAnswer(session_events_json));
  if (!t.contains("sessions")) return InvalidArgumentError("not a session events answer");
  json::array sessions = Arr(t, "sessions");
  std::map<std::string, std::vector<const json::object*>> children;
  std::set<std::string> present;
  for (const auto& v : sessions)
    if (v.is_object()) present.insert(StringField(v.get_object(), "sid"));
  std::vector<const json::object*> tops;
  for (const auto& v : sessions) {
    if (!v.is_object()) continue;
    const json::object& s = v.get_object();
    std::string parent = StringField(s, "parent_sid");
    if (parent.empty() || !present.count(parent)) {
      tops.push_back(&s);
    } else {
      children[parent].push_back(&s);
    }
  }
  std::string out;
  std::function<void(const json::object&, const std::string&, bool, bool)> walk =
      [&](const json::object& s, const std::string& prefix, bool last, bool top) {
        std::string here = top ? "" : (last ? "└─ " : "├─ ");
        std::string below = top ? "" : (last ? "   " : "│  ");
        out += prefix + here + SessionLine(s) + "\n";
        // Actions and approval events, in ledger order.
        std::vector<std::pair<int64_t, std::string>> lines;
        for (const auto& v : Arr(s, "actions")) {
          if (!v.is_object()) continue;
          const json::object& a = v.get_object();
          lines.emplace_back(
              IntField(a, "decision_index"),
              StringField(a, "time") + " " + StringField(a, "action") + " " +
                  StringField(a, "target") + " -> " + StringField(a, "decision") +
                  (StringField(a, "outcome").empty() ? ""
                                                     : " [" + StringField(a, "outcome") + "]") +
                  "  (" + StringField(a, "action_id") + ")");
        }
        for (const auto& v : Arr(s, "approval_events")) {
          if (!v.is_object()) continue;
          const json::object& e = v.get_object();
          std::string line = StringField(e, "time") + " " + StringField(e, "kind") + " " +
                             StringField(e, "approval") + " of " + StringField(e, "target");
          if (!PersonOf(e).empty()) line += " by " + PersonOf(e);
          if (!StringField(e, "reason").empty()) line += ": " + StringField(e, "reason");
          lines.emplace_back(IntField(e, "index"), std::move(line));
        }
        std::stable_sort(lines.begin(), lines.end(),
                         [](const auto& a, const auto& b) { return a.first < b.first; });
        auto& kids = children[StringField(s, "sid")];
        for (size_t i = 0; i < lines.size(); ++i) {
          bool lastline = kids.empty() && i + 1 == lines.size();
          out += prefix + below + (lastline ? "└─ " : "├─ ") + lines[i].second + "\n";
        }
        for (size_t i = 0; i < kids.size(); ++i)
          walk(*kids[i], prefix + below, i + 1 == kids.size(), false);
      };
  for (const json::object* s : tops) walk(*s, "", true, true);
  return out;
}

}  // namespace custody::investigate

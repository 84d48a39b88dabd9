#include "events/action_events.h"

#include <boost/json.hpp>

#include "common/json_array.h"
#include "events/internal/parts_json.h"

namespace custody::events {
namespace {

namespace json = boost::json;
using internal::ActorJson;
using internal::InitiatorJson;

json::object TargetJson(const TargetRef& t) {
  json::object o{{"key", t.key}};
  if (!t.tool.empty()) {
    o["server"] = t.server;
    o["tool"] = t.tool;
  } else {
    if (!t.server.empty()) o["server"] = t.server;  // an MCP server's resource or prompt
    o["type"] = t.type;
    o["id"] = t.id;
  }
  return o;
}

}  // namespace

json::object Build(const ActionDecision& d) {
  json::object e{
      {"kind", "action.decision"},
      {"event_id", d.event_id},
      {"time", d.time},
      {"actor", ActorJson(d.actor)},
      {"initiator", InitiatorJson(d.initiator)},
      {"session",
       {{"sid", d.sid},
        {"parent_sid", d.parent_sid},
        {"root_sid", d.root_sid},
        {"depth", d.depth},
        {"chain", {{"sids", StringArray(d.chain_sids)}, {"agents", StringArray(d.chain_agents)}}}}},
      {"trace",
       {{"trace_id", d.trace_id},
        {"span_id", d.span_id},
        {"parent_span_id", d.parent_span_id},
        {"txn", d.txn}}},
      {"request", {{"action", d.action}, {"target", TargetJson(d.target)}, {"via", d.via}}},
      {"arguments", d.arguments},
      {"policy",
       {{"set_hash", d.policy_hash},
        {"determining", StringArray(d.reasons)},
        {"errors", StringArray(d.errors)}}},
      {"context", d.context},
      {"decision", d.allowed                                       ? "allow"
                   : d.approval && d.approval->state == "required" ? "approval_required"
                                                                   : "deny"},
      {"reasons", StringArray(d.reasons)},
      {"message", d.message}};
  if (!d.parent_event.empty()) e["parent_event"] = d.parent_event;
  if (d.containment) {
    e["containment"] = {{"scope", d.containment->scope},
                        {"tripwire", d.containment->tripwire},
                        {"revoked_sessions", StringArray(d.containment->revoked_sessions)}};
  }
  if (d.approval) {
    const DecisionApproval& a = *d.approval;
    json::object o{{"id", a.id},
                   {"state", a.state},
                   {"groups", StringArray(a.groups)},
                   {"policies", StringArray(a.policies)},
                   {"digest", a.digest},
                   {"expires_at", a.expires_at}};
    if (a.state == "used") {
      o["approver"] = a.approver;
      o["verified_by"] = a.verified_by;
      o["approval_index"] = a.approval_index;
    }
    e["approval"] = std::move(o);
  }
  return e;
}

json::object Build(const ApprovalChange& a) {
  json::object e{{"kind", a.kind},
                 {"event_id", a.event_id},
                 {"time", a.time},
                 {"approval",
                  {{"id", a.approval_id},
                   {"digest", a.digest},
                   {"groups", StringArray(a.groups)},
                   {"policies", StringArray(a.policies)},
                   {"request_action", a.request_action},
                   {"action", a.action},
                   {"target", a.target}}},
                 {"target",
                  {{"session", a.sid},
                   {"root_sid", a.root_sid},
                   {"agent", a.agent},
                   {"instance", a.instance},
                   {"initiator", a.initiator}}},
                 {"reason", a.reason}};
  if (a.kind == "approval.approve" || a.kind == "approval.deny")
    e["by"] = {{"person", a.approver}, {"verified_by", a.verified_by}};
  if (a.kind == "approval.approve") {
    e["expires_at"] = a.expires_at;
    e["single_use"] = a.single_use;
  }
  return e;
}

json::object Build(const ActionOutcome& o) {
  json::object outcome{{"status", o.status}};
  if (!o.error.empty()) outcome["error"] = o.error;
  if (!o.output_digest.empty()) outcome["output_digest"] = o.output_digest;
  if (o.latency_ms >= 0) outcome["latency_ms"] = o.latency_ms;
  if (!o.exchanges.empty()) outcome["exchanges"] = o.exchanges;
  json::object e{{"kind", o.refusal.empty() ? "action.outcome" : "action.outcome_refused"},
                 {"event_id", o.event_id},
                 {"time", o.time},
                 {"action_id", o.action_id},
                 {"decision_index", o.decision_index},
                 {"actor", ActorJson(o.actor)},
                 {"session", {{"sid", o.sid}, {"root_sid", o.root_sid}}},
                 {"trace", {{"trace_id", o.trace_id}, {"span_id", o.span_id}, {"txn", o.txn}}},
                 {"outcome", std::move(outcome)}};
  if (!o.refusal.empty()) e["refusal"] = o.refusal;
  if (!o.txn_token_jti.empty()) {
    e["txn_token"] = {{"jti", o.txn_token_jti}, {"aud", o.txn_token_aud}};
  }
  return e;
}

json::object Build(const Containment& c) {
  json::object e{{"kind", "containment"},
                 {"event_id", c.event_id},
                 {"time", c.time},
                 {"scope", c.scope},
                 {"subject", c.subject},
                 {"reason", c.reason},
                 {"revoked_sessions", StringArray(c.revoked_sessions)}};
  if (c.actor) {
    e["actor"] = ActorJson(*c.actor);
    e["trigger"] = {{"action_id", c.trigger_action}, {"policy", c.trigger_policy}};
    e["trace"] = {{"trace_id", c.trace_id}, {"span_id", c.span_id}, {"txn", c.txn}};
  } else {
    e["by"] = c.by;
  }
  return e;
}

json::object Build(const PolicyPublish& p) {
  return json::object{{"kind", "policy.publish"},
                      {"event_id", p.event_id},
                      {"time", p.time},
                      {"by", p.by},
                      {"policy",
                       {{"set_hash", p.set_hash},
                        {"policies", p.policies},
                        {"entities", p.entities},
                        {"entities_digest", p.entities_digest},
                        {"tripwires", StringArray(p.tripwires)},
                        {"previous", p.previous}}}};
}

}  // namespace custody::events

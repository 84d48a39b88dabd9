// Typed builders for the events of the decide -> execute -> outcome path and of containment:
// action.decision, action.outcome (and action.outcome_refused), containment (by a tripwire or by an
// operator) and policy.publish. Each kind is built here and nowhere else; events_test.cc pins the
// canonical bytes of each, so a change of shape is a deliberate, documented one. The MCP gateway's
// tool events are in tool_events.h, the identity events in identity_events.h.
//
// Included only by the modules that record these events: it carries Boost.JSON.
#pragma once

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "events/event_parts.h"

namespace custody::events {

// A person's approval, as a decision names it: the one it asks for ("required": an `@approval`
// policy held the action) or the one it ran under ("used": allowed after that approval).
struct DecisionApproval {
  std::string id;
  std::string state;                // "required" | "used"
  std::vector<std::string> groups;  // the approver groups (Cedar entity uids)
  std::vector<std::string> policies;
  std::string digest;      // of what was asked ("sha256:<hex>")
  std::string expires_at;  // required: approvable until; used: was usable until
  // used: who approved it, how they were verified, and the approval.approve event's index
  std::string approver, verified_by;
  int64_t approval_index = -1;
};

// What an action is aimed at: a tool of a server, or a typed resource.
struct TargetRef {
  std::string key;  // attribution::Target::Key()
  std::string server, tool;
  std::string type, id;
};

struct ActionDecision {
  std::string event_id, time;
  Actor actor;
  Initiator initiator;
  std::string sid, parent_sid, root_sid;
  int64_t depth = 0;
  std::vector<std::string> chain_sids, chain_agents;  // root first
  std::string trace_id, span_id, parent_span_id, txn;
  std::string action, via;
  TargetRef target;
  boost::json::object arguments;  // {"digest"} and, when recorded, {"value"}
  std::string policy_hash;
  std::vector<std::string> reasons, errors;
  boost::json::object context;  // what policy evaluated, without the arguments
  bool allowed = false;
  std::string message;
  std::string parent_event;  // the decision this one follows in its trace, if any
  struct Containment {
    std::string scope, tripwire;
    std::vector<std::string> revoked_sessions;
  };
  std::optional<Containment> containment;  // set when this decision tripped a wire
  // Set when an `@approval` policy held the action (decision "approval_required") or when the
  // action runs under an approval (decision "allow").
  std::optional<DecisionApproval> approval;
};

struct ActionOutcome {
  std::string event_id, time, action_id;
  int64_t decision_index = -1;
  Actor actor;
  std::string sid, root_sid;
  std::string trace_id, span_id, txn;
  std::string status, error, output_digest;  // error and digest: "" when absent
  int64_t latency_ms = -1;                   // -1 when absent
  // Set when Custody refused the outcome (its session was revoked): the event is then an
  // `action.outcome_refused`, the outcome is what the caller claimed, and `refusal` says why.
  std::string refusal;
  // The requests the MCP server sent the client during the action, as the gateway relayed them
  // (outcome.exchanges; absent when none).
  boost::json::array exchanges;
  // The Transaction Token the gateway forwarded the action with (its jti and aud, never the
  // token; `txn_token`, absent when none): the upstream's logs meet the ledger by this jti.
  std::string txn_token_jti, txn_token_aud;
};

// A containment a tripwire caused (`actor` set, `trigger_action` its decision) or an operator
// ordered (`by` set).
struct Containment {
  std::string event_id, time;
  std::optional<Actor> actor;
  std::string scope, subject, reason;
  std::string trigger_action, trigger_policy;  // a tripwire's
  std::string by;                              // an operator's
  std::vector<std::string> revoked_sessions;
  std::string trace_id, span_id, txn;  // a tripwire's
};

struct PolicyPublish {
  std::string event_id, time, by;
  std::string set_hash;
  int64_t policies = 0, entities = 0;
  std::string entities_digest;  // "sha256:<hex>"
  std::vector<std::string> tripwires;
  std::string previous;  // the set it replaces, "" for the first
};

// What happened to an approval: approved or denied by a person, expired, or cancelled (its
// session was contained or revoked). Indexed under the session and agent it is about (`target`).
struct ApprovalChange {
  std::string kind;  // "approval.approve" | "approval.deny" | "approval.expire" | "approval.cancel"
  std::string event_id, time;
  std::string approval_id, digest;
  std::vector<std::string> groups, policies;
  std::string request_action;  // the decision that asked for it
  std::string action, target;  // target key
  std::string sid, root_sid, agent, instance, initiator;
  std::string approver, verified_by;  // approve and deny: who, and how they were verified
  std::string reason;
  std::string expires_at;  // approve: usable until
  bool single_use = true;  // approve
};

boost::json::object Build(const ActionDecision& e);
boost::json::object Build(const ApprovalChange& e);
boost::json::object Build(const ActionOutcome& e);
boost::json::object Build(const Containment& e);
boost::json::object Build(const PolicyPublish& e);

}  // namespace custody::events

// The typed builder for action.observed: an agent's or tool's action that Custody did not
// decide but saw in the telemetry an agent exported (OTLP ingest, docs/OTLP.md). Observed is
// never confused with decided: the kind is its own and the event says `"observed": true`.
// Every identity in it says how Custody knows it: the agent as the span names it (a claim),
// the registered agent that name resolves to (if any), the session the span was linked to and
// how, and the credential that sent it. events_test.cc pins the bytes.
//
// Included only by the modules that record these events: it carries Boost.JSON.
#pragma once

#include <boost/json/object.hpp>
#include <string>

namespace custody::events {

struct ActionObserved {
  std::string event_id, time;  // time: when Custody received the span
  std::string operation;       // gen_ai.operation.name, or "mcp:<mcp.method.name>"
  // The span: ids in lowercase hex, times in Unix nanoseconds (decimal text), as exported.
  std::string trace_id, span_id, parent_span_id, span_name, start_ns, end_ns;
  std::string service;  // the resource's service.name
  // The tool (gen_ai.tool.name, gen_ai.tool.call.id) and the MCP method, when named.
  std::string tool, tool_call_id, mcp_method;
  // The agent as the span names it (gen_ai.agent.id / gen_ai.agent.name), and the registered
  // agent that claim resolves to ("" when it names none).
  std::string claimed_agent_id, claimed_agent_name, registered_agent;
  // The Custody session the span was linked to ("" for none) and that session's agent.
  std::string session, session_agent;
  // How: "decision-span" (its parent is a Custody decision's span), "parent-span" (its parent
  // span, sent with it, was linked), "session-token" (sent with the session's own token),
  // "session-attribute" (custody.session.id, where baggage lands too), or "none" (attributed
  // to what the telemetry claims).
  std::string link = "none";
  std::string decision, decision_target;  // the decision it was linked through, and its target
  // "verified" only when the span came with the linked session's own token; otherwise the
  // link is asserted by `credential`.
  bool link_verified = false;
  // Who sent it: "ingest-token" (an admin token of role ingest; id: its public id) or
  // "session" (an agent's session token; id: the sid).
  std::string credential_type, credential_id;
  std::string status_code;  // "unset" | "ok" | "error"
  std::string status_message, error_type;
};

boost::json::object Build(const ActionObserved& e);

}  // namespace custody::events

#include "events/observed_events.h"

#include <boost/json.hpp>

namespace custody::events {

namespace json = boost::json;

json::object Build(const ActionObserved& e) {
  json::object link{{"how", e.link},
                    {"session", e.session},
                    {"decision", e.decision},
                    {"decision_target", e.decision_target},
                    {"verification", e.link_verified ? "verified" : "asserted"}};
  if (!e.link_verified) link["asserted_by"] = e.credential_type + ":" + e.credential_id;
  return json::object{
      {"kind", "action.observed"},
      {"event_id", e.event_id},
      {"time", e.time},
      {"observed", true},
      {"operation", e.operation},
      {"span",
       {{"trace_id", e.trace_id},
        {"span_id", e.span_id},
        {"parent_span_id", e.parent_span_id},
        {"name", e.span_name},
        {"start_ns", e.start_ns},
        {"end_ns", e.end_ns},
        {"service", e.service}}},
      {"tool", {{"name", e.tool}, {"call_id", e.tool_call_id}, {"mcp_method", e.mcp_method}}},
      {"claimed_agent",
       {{"id", e.claimed_agent_id},
        {"name", e.claimed_agent_name},
        {"registered", e.registered_agent}}},
      // The index files it under the linked session (and that session's agent) only: a claim
      // alone does not put an event in an agent's history.
      {"actor", {{"agent", e.session_agent}, {"session", e.session}}},
      {"link", std::move(link)},
      {"credential", {{"type", e.credential_type}, {"id", e.credential_id}}},
      {"status",
       {{"code", e.status_code}, {"message", e.status_message}, {"error_type", e.error_type}}}};
}

}  // namespace custody::events

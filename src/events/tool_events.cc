#include "events/tool_events.h"

#include <boost/json.hpp>

namespace custody::events {

namespace json = boost::json;

json::object Build(const ToolDefinitionChange& e) {
  return json::object{{"kind", "tool.definition_change"},
                      {"event_id", e.event_id},
                      {"time", e.time},
                      {"target", {{"server", e.server}, {"tool", e.tool}}},
                      {"approved_hash", e.approved_hash},
                      {"new_hash", e.new_hash},
                      {"via", e.via}};
}

json::object Build(const ToolApprove& e) {
  return json::object{{"kind", "tool.approve"},
                      {"event_id", e.event_id},
                      {"time", e.time},
                      {"target", {{"server", e.server}, {"tool", e.tool}}},
                      {"approved_hash", e.approved_hash},
                      {"by", e.by}};
}

}  // namespace custody::events

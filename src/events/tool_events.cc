#include "events/tool_events.h"

#include <boost/json.hpp>
#include <cctype>

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

namespace {

// "resource" for "Resource", "prompt" for "Prompt": the kind's prefix.
std::string KindPrefix(const std::string& type) {
  std::string out = type;
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

json::object ItemTarget(const std::string& server, const std::string& type, const std::string& id) {
  return json::object{{"server", server}, {"type", type}, {"id", id}};
}

}  // namespace

json::object Build(const ItemDefinitionChange& e) {
  return json::object{{"kind", KindPrefix(e.type) + ".definition_change"},
                      {"event_id", e.event_id},
                      {"time", e.time},
                      {"target", ItemTarget(e.server, e.type, e.id)},
                      {"approved_hash", e.approved_hash},
                      {"new_hash", e.new_hash},
                      {"via", e.via}};
}

json::object Build(const ItemApprove& e) {
  return json::object{{"kind", KindPrefix(e.type) + ".approve"},
                      {"event_id", e.event_id},
                      {"time", e.time},
                      {"target", ItemTarget(e.server, e.type, e.id)},
                      {"approved_hash", e.approved_hash},
                      {"by", e.by}};
}

}  // namespace custody::events

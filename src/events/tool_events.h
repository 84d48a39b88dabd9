// Typed builders for the MCP gateway's pinning events: tool.definition_change (a tool's
// definition hash differs from the approved one; its calls are refused until approved) and
// tool.approve (an operator approved a definition), and the same for an MCP server's resources
// and prompts: resource.definition_change, resource.approve, prompt.definition_change,
// prompt.approve (their target as action.decision names a resource or prompt: server, type,
// id). events_test.cc pins their bytes.
//
// Included only by the modules that record these events: it carries Boost.JSON.
#pragma once

#include <boost/json/object.hpp>
#include <string>

namespace custody::events {

struct ToolDefinitionChange {
  std::string event_id, time;
  std::string server, tool;
  std::string approved_hash, new_hash;
  std::string via;  // where the change was seen ("mcp")
};

struct ToolApprove {
  std::string event_id, time;
  std::string server, tool;
  std::string approved_hash;
  std::string by;
};

// A resource's or prompt's: `type` "Resource" (`id` its canonical URI) or "Prompt" (`id` its
// name); the kind is "resource.…" or "prompt.…" accordingly.
struct ItemDefinitionChange {
  std::string event_id, time;
  std::string server, type, id;
  std::string approved_hash, new_hash;
  std::string via;
};

struct ItemApprove {
  std::string event_id, time;
  std::string server, type, id;
  std::string approved_hash;
  std::string by;
};

boost::json::object Build(const ToolDefinitionChange& e);
boost::json::object Build(const ToolApprove& e);
boost::json::object Build(const ItemDefinitionChange& e);
boost::json::object Build(const ItemApprove& e);

}  // namespace custody::events

// Typed builders for the MCP gateway's tool-pinning events: tool.definition_change (a tool's
// definition hash differs from the approved one; its calls are refused until approved) and
// tool.approve (an operator approved a definition). events_test.cc pins their bytes.
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

boost::json::object Build(const ToolDefinitionChange& e);
boost::json::object Build(const ToolApprove& e);

}  // namespace custody::events

// Tool-definition hashes. A tool's definition hash is SHA-256 over the RFC 8785 (JCS) bytes of
// {name, description, inputSchema, annotations} (members the server omits are omitted), in
// lowercase hex. The pins themselves are a store (store/tool_pin_store.h); the gateway's
// ToolCatalog (mcp/tool_catalog.h) keeps them.
#pragma once

#include <boost/json/fwd.hpp>
#include <string>

#include "common/status.h"
#include "store/tool_pin_store.h"

namespace custody::mcp {

using store::PinObservation;
using store::PinRecord;
using store::ToolPinStore;

// The definition hash of one tool object from a tools/list result. InvalidArgument when the
// tool has no string name or is not valid I-JSON.
Result<std::string> ToolDefinitionHash(const boost::json::object& tool);

}  // namespace custody::mcp

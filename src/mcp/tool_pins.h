// Definition hashes of what the gateway pins: tools, resources and prompts. Each is SHA-256 over
// the RFC 8785 (JCS) bytes of the members that define the item (members the server omits are
// omitted), in lowercase hex:
//   tool      {name, description, inputSchema, annotations}
//   resource  {uri (canonical, NormalizeUri), name, title, description, mimeType, annotations
//             without lastModified (left out when nothing else is in it)}; not size: it and
//             lastModified change with the content
//   prompt    {name, title, description, arguments}
// The pins themselves are a store (store/tool_pin_store.h); the gateway's ToolCatalog
// (mcp/tool_catalog.h) keeps them.
#pragma once

#include <boost/json/fwd.hpp>
#include <string>

#include "common/status.h"
#include "store/tool_pin_store.h"

namespace custody::mcp {

using store::PinKind;
using store::PinObservation;
using store::PinRecord;
using store::ToolPinStore;

// The definition hash of one tool object from a tools/list result. InvalidArgument when the
// tool has no string name or is not valid I-JSON.
Result<std::string> ToolDefinitionHash(const boost::json::object& tool);

// A resource of a resources/list result: its canonical URI (what it is pinned and decided by)
// and definition hash. InvalidArgument without a string uri NormalizeUri accepts, or when it
// is not valid I-JSON.
struct ResourceDefinition {
  std::string uri;
  std::string hash;
};
Result<ResourceDefinition> ResourceDefinitionHash(const boost::json::object& resource);

// The definition hash of one prompt of a prompts/list result. InvalidArgument when the prompt
// has no string name or is not valid I-JSON.
Result<std::string> PromptDefinitionHash(const boost::json::object& prompt);

}  // namespace custody::mcp

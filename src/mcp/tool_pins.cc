#include "mcp/tool_pins.h"

#include <boost/json.hpp>

#include "common/encoding.h"
#include "common/jcs_value.h"
#include "crypto/sha256.h"

namespace custody::mcp {

namespace json = boost::json;

Result<std::string> ToolDefinitionHash(const json::object& tool) {
  auto name = tool.find("name");
  if (name == tool.end() || !name->value().is_string() || name->value().get_string().empty()) {
    return InvalidArgumentError("tool without a name");
  }
  json::object def;
  for (const char* k : {"name", "description", "inputSchema", "annotations"}) {
    if (auto it = tool.find(k); it != tool.end()) def[k] = it->value();
  }
  ASSIGN_OR_RETURN(std::string canonical, CanonicalizeJsonValue(def));
  crypto::Sha256Digest d = crypto::Sha256(canonical);
  return HexEncode(d);
}

}  // namespace custody::mcp

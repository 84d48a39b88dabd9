#include "mcp/tool_pins.h"

#include <boost/json.hpp>
#include <initializer_list>

#include "common/encoding.h"
#include "common/jcs_value.h"
#include "common/uri.h"
#include "crypto/sha256.h"

namespace custody::mcp {

namespace json = boost::json;

namespace {

// The non-empty string member `member` of `item`, or InvalidArgument naming `what`.
Result<std::string> NonEmptyString(const json::object& item, const char* member, const char* what) {
  auto it = item.find(member);
  if (it == item.end() || !it->value().is_string() || it->value().get_string().empty()) {
    return InvalidArgumentError(std::string(what) + " without a " + member);
  }
  return std::string(it->value().get_string());
}

// Members `keys` of `item` (those present), the object a definition hash covers.
json::object Covered(const json::object& item, std::initializer_list<const char*> keys) {
  json::object def;
  for (const char* k : keys) {
    if (auto it = item.find(k); it != item.end()) def[k] = it->value();
  }
  return def;
}

Result<std::string> HashOf(const json::object& def) {
  ASSIGN_OR_RETURN(std::string canonical, CanonicalizeJsonValue(def));
  return HexEncode(crypto::Sha256(canonical));
}

}  // namespace

Result<std::string> ToolDefinitionHash(const json::object& tool) {
  RETURN_IF_ERROR(NonEmptyString(tool, "name", "tool").status());
  return HashOf(Covered(tool, {"name", "description", "inputSchema", "annotations"}));
}

Result<ResourceDefinition> ResourceDefinitionHash(const json::object& resource) {
  ASSIGN_OR_RETURN(std::string listed, NonEmptyString(resource, "uri", "resource"));
  auto uri = NormalizeUri(listed);
  if (!uri.ok()) return InvalidArgumentError("resource uri: " + uri.status().message());
  json::object def = Covered(resource, {"name", "title", "description", "mimeType", "annotations"});
  def["uri"] = *uri;
  if (auto a = def.find("annotations"); a != def.end() && a->value().is_object()) {
    a->value().get_object().erase("lastModified");
    // Only lastModified: as if there were none (the first listing may have had no annotations).
    if (a->value().get_object().empty()) def.erase(a);
  }
  ASSIGN_OR_RETURN(std::string hash, HashOf(def));
  return ResourceDefinition{std::move(*uri), std::move(hash)};
}

Result<std::string> PromptDefinitionHash(const json::object& prompt) {
  RETURN_IF_ERROR(NonEmptyString(prompt, "name", "prompt").status());
  return HashOf(Covered(prompt, {"name", "title", "description", "arguments"}));
}

}  // namespace custody::mcp

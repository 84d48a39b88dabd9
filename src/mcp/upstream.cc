#include "mcp/upstream.h"

#include "mcp/stdio_upstream.h"

namespace custody::mcp {

Result<std::unique_ptr<Upstream>> MakeUpstream(UpstreamConfig config, UpstreamOptions options) {
  if (config.command.empty() == config.url.empty()) {
    return InvalidArgumentError("MCP server \"" + config.name +
                                "\" needs exactly one of command (stdio) and url (HTTP)");
  }
  if (!config.command.empty()) {
    return std::unique_ptr<Upstream>(
        std::make_unique<StdioUpstream>(std::move(config), std::move(options)));
  }
  return InvalidArgumentError("MCP server \"" + config.name +
                              "\": remote (url) upstreams are not available in this build");
}

}  // namespace custody::mcp

// `custody tool list|approve`: the MCP gateway's tool-definition pins on a running server. A
// tool whose definition changed since it was first seen is refused at the gateway until an
// operator approves the new hash; the approval is recorded in the ledger (tool.approve).
#include <CLI/CLI.hpp>
#include <boost/json.hpp>

#include "cli/commands.h"
#include "cli/server_client.h"

namespace custody::cli {

namespace json = boost::json;

void RegisterToolCommands(CLI::App& app) {
  CLI::App* tool =
      app.add_subcommand("tool", "MCP gateway tool-definition pins of a running server");
  tool->require_subcommand(1);

  auto list_flags = std::make_shared<ServerFlags>();
  CLI::App* list = tool->add_subcommand("list", "Pinned tools: approved and last seen hashes");
  AddServerOptions(list, *list_flags);
  list->callback([list_flags] {
    PrintJson(CallServer(*list_flags, "GET", "/v1/mcp/tools", "", "list tools"));
  });

  struct ApproveArgs {
    ServerFlags server;
    std::string mcp_server, tool, hash;
  };
  auto args = std::make_shared<ApproveArgs>();
  CLI::App* approve = tool->add_subcommand(
      "approve", "Approve a changed tool definition (the hash the upstream now advertises)");
  approve->add_option("SERVER", args->mcp_server, "MCP server name (as in [mcp.servers.NAME])")
      ->required();
  approve->add_option("TOOL", args->tool, "tool name")->required();
  approve->add_option("HASH", args->hash, "definition hash (hex SHA-256, from `tool list`)")
      ->required();
  AddServerOptions(approve, args->server);
  approve->callback([args] {
    json::object body{{"server", args->mcp_server}, {"tool", args->tool}, {"hash", args->hash}};
    PrintJson(CallServer(args->server, "POST", "/v1/mcp/tools/approve", json::serialize(body),
                         "approve tool"));
  });
}

}  // namespace custody::cli

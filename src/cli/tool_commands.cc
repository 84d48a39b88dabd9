// `custody tool|resource|prompt list|approve`: the MCP gateway's definition pins on a running
// server. A tool, resource or prompt whose definition changed since it was first seen is refused
// at the gateway until an operator approves the new hash; the approval is recorded in the ledger
// (tool.approve, resource.approve, prompt.approve).
#include <CLI/CLI.hpp>
#include <boost/json.hpp>

#include "cli/commands.h"
#include "cli/server_client.h"

namespace custody::cli {

namespace json = boost::json;

namespace {

// One kind of pin: its command, the API paths, and the body member naming an item.
struct PinCommand {
  const char* noun;    // "tool" | "resource" | "prompt"
  const char* plural;  // the API path's segment
  const char* member;  // "tool" | "uri" | "prompt"
  const char* label;   // the item's argument: "TOOL" | "URI" | "PROMPT"
  const char* item;    // its help
};

void RegisterPinCommands(CLI::App& app, const PinCommand& c) {
  const std::string noun = c.noun;
  CLI::App* group =
      app.add_subcommand(noun, "MCP gateway " + noun + "-definition pins of a running server");
  group->require_subcommand(1);
  const std::string list_path = std::string("/v1/mcp/") + c.plural;

  auto list_flags = std::make_shared<ServerFlags>();
  CLI::App* list = group->add_subcommand(
      "list", "Pinned " + std::string(c.plural) + ": approved and last seen hashes");
  AddServerOptions(list, *list_flags);
  list->callback([list_flags, list_path, noun] {
    PrintJson(CallServer(*list_flags, "GET", list_path, "", "list " + noun + "s"));
  });

  struct ApproveArgs {
    ServerFlags server;
    std::string mcp_server, item, hash;
  };
  auto args = std::make_shared<ApproveArgs>();
  CLI::App* approve =
      group->add_subcommand("approve", "Approve a changed " + noun +
                                           " definition (the hash the upstream now advertises)");
  approve->add_option("SERVER", args->mcp_server, "MCP server name (as in [mcp.servers.NAME])")
      ->required();
  approve->add_option(c.label, args->item, c.item)->required();
  approve->add_option("HASH", args->hash, "definition hash (hex SHA-256, from `" + noun + " list`)")
      ->required();
  AddServerOptions(approve, args->server);
  approve->callback([args, list_path, noun, member = std::string(c.member)] {
    json::object body{{"server", args->mcp_server}, {member, args->item}, {"hash", args->hash}};
    PrintJson(CallServer(args->server, "POST", list_path + "/approve", json::serialize(body),
                         "approve " + noun));
  });
}

}  // namespace

void RegisterToolCommands(CLI::App& app) {
  static constexpr PinCommand kPins[] = {
      {"tool", "tools", "tool", "TOOL", "tool name"},
      {"resource", "resources", "uri", "URI", "resource URI (as resources/list shows it)"},
      {"prompt", "prompts", "prompt", "PROMPT", "prompt name"},
  };
  for (const PinCommand& c : kPins) RegisterPinCommands(app, c);
}

}  // namespace custody::cli

// `custody policy publish|show|list` and `custody contain`: the attribution module's admin
// commands. Like the identity commands they go through the running server (admin token), which
// validates, versions by content hash, and records every change in the ledger.
#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <fstream>
#include <sstream>

#include "cli/commands.h"
#include "cli/server_client.h"
#include "common/json_parse.h"

namespace custody::cli {
namespace {

namespace json = boost::json;

std::string ReadFileOrFail(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) FailWith(std::string("cannot read ") + what + " " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A session id is a UUID; anything else names an agent.
bool LooksLikeUuid(const std::string& s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash != (s[i] == '-')) return false;
    if (!dash && !std::isxdigit(static_cast<unsigned char>(s[i]))) return false;
  }
  return true;
}

}  // namespace

void RegisterPolicyCommands(CLI::App& app) {
  CLI::App* policy = app.add_subcommand("policy", "Cedar policy sets of a running server");
  policy->require_subcommand(1);

  struct PublishArgs {
    ServerFlags server;
    std::string file;
    std::string entities;
  };
  auto pub = std::make_shared<PublishArgs>();
  CLI::App* publish = policy->add_subcommand(
      "publish", "Validate and activate a Cedar policy file (recorded in the ledger)");
  publish->add_option("FILE", pub->file, "Cedar policy text (.cedar)")->required();
  publish->add_option("--entities", pub->entities,
                      "Cedar entities JSON (tools, servers, groups, resources)");
  AddServerOptions(publish, pub->server);
  publish->callback([pub] {
    json::object body{{"policies", ReadFileOrFail(pub->file, "policy file")}};
    if (!pub->entities.empty()) {
      std::string text = ReadFileOrFail(pub->entities, "entities file");
      boost::system::error_code ec;
      json::value v = ParseJson(text, ec);
      if (ec || !v.is_array()) FailWith("entities file " + pub->entities + " is not a JSON array");
      body["entities"] = std::move(v);
    }
    PrintJson(
        CallServer(pub->server, "POST", "/v1/policies", json::serialize(body), "policy publish"));
  });

  auto show_server = std::make_shared<ServerFlags>();
  CLI::App* show = policy->add_subcommand("show", "Print the active policy set");
  AddServerOptions(show, *show_server);
  show->callback([show_server] {
    PrintJson(CallServer(*show_server, "GET", "/v1/policies/active", "", "policy show"));
  });

  auto list_server = std::make_shared<ServerFlags>();
  CLI::App* list = policy->add_subcommand("list", "List every published policy set");
  AddServerOptions(list, *list_server);
  list->callback([list_server] {
    PrintJson(CallServer(*list_server, "GET", "/v1/policies", "", "policy list"));
  });
}

void RegisterContainCommands(CLI::App& app) {
  struct ContainArgs {
    ServerFlags server;
    std::string target;
    std::string reason;
    bool session = false;
    bool agent = false;
  };
  auto a = std::make_shared<ContainArgs>();
  CLI::App* contain = app.add_subcommand(
      "contain",
      "Revoke a session (and every session below it) or an agent (all its sessions; disabled)");
  contain->add_option("TARGET", a->target, "a session id, or an agent name")->required();
  contain->add_option("--reason", a->reason, "why (recorded in the ledger)")->required();
  auto* s = contain->add_flag("--session", a->session, "TARGET is a session id");
  auto* g = contain->add_flag("--agent", a->agent, "TARGET is an agent name");
  s->excludes(g);
  AddServerOptions(contain, a->server);
  contain->callback([a] {
    bool is_session = a->session || (!a->agent && LooksLikeUuid(a->target));
    json::object body{{is_session ? "session" : "agent", a->target}, {"reason", a->reason}};
    PrintJson(CallServer(a->server, "POST", "/v1/contain", json::serialize(body), "contain"));
  });
}

}  // namespace custody::cli

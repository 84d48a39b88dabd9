// `custody agent register|list|show|disable`: the agent registry, through the running server's
// admin API (/v1/agents). Output is JSON on stdout. `register` prints a generated client
// secret once (it is stored only hashed); no other command ever prints a secret or token.
#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli/commands.h"
#include "cli/server_client.h"
#include "common/json_parse.h"

namespace custody::cli {
namespace {

namespace json = boost::json;

struct AgentFlags {
  ServerFlags server;
  std::string file;  // agent.json: the request body; flags below override its fields
  std::string name;
  std::string description;
  std::string environment;
  std::string business_owner;
  std::string technical_owner;
  std::string sponsor;
  std::string revocation_contact;
  std::vector<std::string> scopes;
  std::vector<std::string> permissions;
  int64_t max_depth = -1;
  int64_t max_token_lifetime = -1;
  std::string jwk_file;
  bool client_secret = false;
};

std::string ReadFile(const std::string& path, std::string_view flag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) FailWith(std::string(flag) + ": cannot read " + path, 2);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

json::object ParseObjectFile(const std::string& path, std::string_view flag) {
  boost::system::error_code ec;
  json::value v = ParseJson(ReadFile(path, flag), ec);
  if (ec || !v.is_object()) FailWith(std::string(flag) + ": " + path + " is not a JSON object", 2);
  return std::move(v.as_object());
}

// The registration body: --file first, then every flag that was given.
json::object AgentBody(const AgentFlags& f) {
  json::object body = f.file.empty() ? json::object{} : ParseObjectFile(f.file, "--file");
  auto set = [&](const char* key, const std::string& v) {
    if (!v.empty()) body[key] = v;
  };
  set("name", f.name);
  set("description", f.description);
  set("environment", f.environment);
  set("business_owner", f.business_owner);
  set("technical_owner", f.technical_owner);
  set("sponsor", f.sponsor);
  set("revocation_contact", f.revocation_contact);
  auto strings = [](const std::vector<std::string>& v) {
    json::array a;
    for (const auto& s : v) a.emplace_back(s);
    return a;
  };
  if (!f.scopes.empty()) body["grants"] = strings(f.scopes);
  if (!f.permissions.empty()) body["permissions"] = strings(f.permissions);
  if (f.max_depth >= 0) body["max_delegation_depth"] = f.max_depth;
  if (f.max_token_lifetime >= 0) body["max_token_lifetime_s"] = f.max_token_lifetime;
  if (!f.jwk_file.empty() && f.client_secret) {
    FailWith("give either --jwk FILE or --client-secret, not both", 2);
  }
  if (!f.jwk_file.empty()) {
    json::object jwk = ParseObjectFile(f.jwk_file, "--jwk");
    // Never send a private key over the wire, even to be refused.
    if (jwk.contains("d")) {
      FailWith("--jwk: " + f.jwk_file + " holds a private key (\"d\"); give the public JWK", 2);
    }
    body["client_jwk"] = std::move(jwk);
  }
  if (f.client_secret) body["client_secret"] = true;
  if (!body.contains("name")) FailWith("agent register needs --name (or a name in --file)", 2);
  if (!body.contains("client_jwk") && !body.contains("client_secret")) {
    FailWith(
        "agent register needs a client credential: --jwk FILE (public EC P-256 JWK for "
        "private_key_jwt) or --client-secret",
        2);
  }
  return body;
}

}  // namespace

void RegisterAgentCommands(CLI::App& app) {
  auto f = std::make_shared<AgentFlags>();
  auto* agent = app.add_subcommand("agent", "The agent registry (through the running server)");
  agent->require_subcommand(1);

  auto* reg = agent->add_subcommand("register", "Register an agent");
  AddServerOptions(reg, f->server);
  reg->add_option("--file", f->file, "JSON agent record (the /v1/agents body); flags override it");
  reg->add_option("--name", f->name, "Agent name (a SPIFFE path segment)");
  reg->add_option("--description", f->description, "What the agent does");
  reg->add_option("--environment,--env", f->environment, "dev (default), staging or prod");
  reg->add_option("--business-owner", f->business_owner, "Person or group (required for prod)");
  reg->add_option("--technical-owner", f->technical_owner, "Person or group (required for prod)");
  reg->add_option("--sponsor", f->sponsor, "Who sponsors the agent");
  reg->add_option("--revocation-contact", f->revocation_contact,
                  "Who to call to revoke it (required for prod)");
  reg->add_option("--scope", f->scopes, "A granted scope (repeat the flag for more)");
  reg->add_option("--permission", f->permissions, "A permission, e.g. assert_initiator");
  reg->add_option("--max-depth", f->max_depth, "Maximum delegation depth below a root session");
  reg->add_option("--max-token-lifetime", f->max_token_lifetime,
                  "Maximum session token lifetime in seconds");
  reg->add_option("--jwk", f->jwk_file, "Public EC P-256 JWK file for private_key_jwt");
  reg->add_flag("--client-secret", f->client_secret,
                "Have Custody generate a client secret (printed once)");
  reg->callback([f] {
    json::value r = CallServer(f->server, "POST", "/v1/agents", json::serialize(AgentBody(*f)),
                               "agent register");
    PrintJson(r);
    if (r.is_object() && r.as_object().contains("client_secret")) {
      std::cerr << "custody: the client secret above is shown only this once and stored "
                   "hashed; keep it somewhere safe.\n";
    }
  });

  auto* list = agent->add_subcommand("list", "List registered agents");
  AddServerOptions(list, f->server);
  list->callback([f] { PrintJson(CallServer(f->server, "GET", "/v1/agents", "", "agent list")); });

  auto* show = agent->add_subcommand("show", "Show one agent");
  AddServerOptions(show, f->server);
  show->add_option("name", f->name, "Agent name")->required();
  show->callback([f] {
    PrintJson(CallServer(f->server, "GET", "/v1/agents/" + PathSegment(f->name), "",
                         "agent show " + f->name));
  });

  auto* disable = agent->add_subcommand("disable", "Disable an agent; revokes its live sessions");
  AddServerOptions(disable, f->server);
  disable->add_option("name", f->name, "Agent name")->required();
  disable->callback([f] {
    json::value r = CallServer(f->server, "POST", "/v1/agents/" + PathSegment(f->name) + "/disable",
                               "", "agent disable " + f->name);
    if (r.is_object()) {
      r.as_object()["agent"] = f->name;
      r.as_object()["disabled"] = true;
    }
    PrintJson(r);
  });
}

}  // namespace custody::cli

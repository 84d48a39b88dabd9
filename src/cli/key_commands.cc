// `custody key rotate`: asks the running server to start signing with a new key
// (POST /v1/keys/rotate, admin token). The retired key stays in /.well-known/jwks.json until
// every token it signed has expired, so nothing issued before stops verifying. Prints the new
// kid and the kids now published, as JSON.
#include <CLI/CLI.hpp>
#include <boost/json.hpp>

#include "cli/commands.h"
#include "cli/server_client.h"

namespace custody::cli {
namespace {

namespace json = boost::json;

void RotateKey(const ServerFlags& server) {
  json::value answer = CallServer(server, "POST", "/v1/keys/rotate", "", "key rotate");
  const json::object* o = answer.if_object();
  const json::value* kid = o != nullptr ? o->if_contains("kid") : nullptr;
  if (kid == nullptr || !kid->is_string()) FailWith("key rotate: the server's answer has no kid");
  json::array published;
  if (const json::value* jwks = o->if_contains("jwks"); jwks != nullptr && jwks->is_object()) {
    if (const json::value* keys = jwks->as_object().if_contains("keys");
        keys != nullptr && keys->is_array()) {
      for (const json::value& k : keys->as_array()) {
        if (const json::value* id = k.is_object() ? k.as_object().if_contains("kid") : nullptr) {
          published.push_back(*id);
        }
      }
    }
  }
  PrintJson(json::object{{"kid", *kid}, {"published_kids", published}});
}

}  // namespace

void RegisterKeyCommands(CLI::App& app) {
  CLI::App* key = app.add_subcommand("key", "Token signing keys of a running server");
  key->require_subcommand(1);
  auto server = std::make_shared<ServerFlags>();
  CLI::App* rotate = key->add_subcommand(
      "rotate",
      "Start signing with a new key; the old one stays published until its tokens expire");
  AddServerOptions(rotate, *server);
  rotate->callback([server] { RotateKey(*server); });
}

}  // namespace custody::cli

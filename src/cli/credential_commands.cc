// `custody credential issue|renew` (and `credential revoke ROLE`, beside revoke JTI in
// session_commands.cc): just-in-time database credentials over HTTP (docs/CREDENTIALS.md). The
// token is the agent's session token for issue; an admin token or the lease's session token for
// renew and revoke. The issue answer holds the password once: it is printed, never stored.
#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <memory>

#include "cli/commands.h"
#include "cli/server_client.h"

namespace custody::cli {
namespace {

namespace json = boost::json;

struct DbCredentialFlags {
  ServerFlags server;
  std::string database;
  std::string access;
  std::string role;
  int64_t ttl_s = 0;
};

}  // namespace

void RegisterDatabaseCredentialCommands(CLI::App& app) {
  CLI::App* credential = app.get_subcommand("credential");
  auto f = std::make_shared<DbCredentialFlags>();

  auto* issue = credential->add_subcommand(
      "issue", "A just-in-time database credential for the session of --token (CUSTODY_TOKEN)");
  AddServerOptions(issue, f->server);
  issue->add_option("--database", f->database, "[credentials.postgres.NAME]: the NAME")->required();
  issue->add_option("--access", f->access, "The access level, e.g. read")->required();
  issue->add_option("--ttl", f->ttl_s, "Seconds it lasts (default: the longest allowed)")
      ->check(CLI::PositiveNumber);
  issue->callback([f] {
    json::object body{{"target", {{"type", "Database"}, {"id", f->database}}},
                      {"access", f->access}};
    if (f->ttl_s > 0) body["ttl_s"] = f->ttl_s;
    PrintJson(CallServer(f->server, "POST", "/v1/credentials:issue", json::serialize(body),
                         "credential issue " + f->database));
  });

  auto* renew = credential->add_subcommand(
      "renew", "Extend a database credential's lease (never past its session's expiry)");
  AddServerOptions(renew, f->server);
  renew->add_option("role", f->role, "The PostgreSQL role of the lease")->required();
  renew->add_option("--ttl", f->ttl_s, "Seconds from now (default: the longest allowed)")
      ->check(CLI::PositiveNumber);
  renew->callback([f] {
    json::object body;
    if (f->ttl_s > 0) body["ttl_s"] = f->ttl_s;
    PrintJson(CallServer(f->server, "POST", "/v1/credentials/" + PathSegment(f->role) + ":renew",
                         json::serialize(body), "credential renew " + f->role));
  });
}

// A database credential's role (custody_<session>_<random>) rather than a token's jti.
bool IsDatabaseRole(const std::string& id) { return id.starts_with("custody_"); }

void RevokeDatabaseCredential(const ServerFlags& server, const std::string& role) {
  PrintJson(CallServer(server, "POST", "/v1/credentials/" + PathSegment(role) + ":revoke", "",
                       "credential revoke " + role));
}

}  // namespace custody::cli

// `custody admin token create|list|revoke`: manage the operator API's bearer tokens in the
// data directory's token store. `create` prints the token once (JSON on stdout); only its hash
// is stored. Revocation takes effect at the server's next request.
#include <CLI/CLI.hpp>
#include <iostream>

#include "api/auth.h"
#include "api/config.h"
#include "api/service.h"
#include "cli/commands.h"
#include "common/jcs.h"
#include "store/stores.h"

namespace custody::cli {
namespace {

struct AdminFlags {
  std::string config_file;
  std::string data_dir;
  std::string role = "admin";
  std::string label;
  std::string id;
};

[[noreturn]] void Fail(const Status& s) {
  std::cerr << "custody: " << s.ToString() << "\n";
  throw CLI::RuntimeError(1);
}

api::Config LoadAdminConfig(const AdminFlags& f) {
  auto c = api::LoadLocalConfig(f.config_file, f.data_dir);
  if (!c.ok()) Fail(c.status());
  return *c;
}

std::unique_ptr<store::AdminTokenStore> OpenStore(const api::Config& c, bool create) {
  Status st = api::EnsurePrivateDir(c.data_dir, create);
  if (!st.ok()) Fail(st);
  auto s = store::OpenAdminTokenStore(c.Storage(), create);
  if (!s.ok()) Fail(s.status());
  return std::move(*s);
}

std::string Json(std::string_view s) {
  std::string out;
  AppendJcsString(s, out);
  return out;
}

}  // namespace

void RegisterAdminCommands(CLI::App& app) {
  auto f = std::make_shared<AdminFlags>();
  auto* admin = app.add_subcommand("admin", "Operator administration");
  admin->require_subcommand(1);
  auto* token = admin->add_subcommand("token", "Admin API bearer tokens");
  token->require_subcommand(1);
  auto common = [f](CLI::App* cmd) {
    cmd->add_option("--config", f->config_file, "TOML config file (or CUSTODY_CONFIG)");
    cmd->add_option("--data-dir", f->data_dir, "Data directory (default ./custody-data)");
  };

  auto* create = token->add_subcommand("create", "Create a token; prints it once");
  common(create);
  create->add_option("--role", f->role,
                     "admin (default), reader, approver (a person who decides approvals), or "
                     "ingest (sends telemetry to POST /v1/traces)");
  create->add_option(
      "--label", f->label,
      "A note for operators (e.g. who holds it); for an approver, the person's name");
  create->callback([f] {
    api::Config c = LoadAdminConfig(*f);
    auto store = OpenStore(c, /*create=*/true);
    SystemClock clock;
    SystemRandom random;
    auto t = api::IssueAdminToken(*store, f->role, f->label, clock, random);
    if (!t.ok()) Fail(t.status());
    std::cout << "{\"id\":\"" << t->id << "\",\"role\":" << Json(t->role) << ",\"token\":\""
              << t->token << "\"}\n";
  });

  auto* list = token->add_subcommand("list", "List tokens (ids and roles, never the tokens)");
  common(list);
  list->callback([f] {
    api::Config c = LoadAdminConfig(*f);
    auto store = OpenStore(c, /*create=*/false);
    auto records = store->List();
    if (!records.ok()) Fail(records.status());
    for (const auto& r : *records) {
      std::cout << "{\"id\":\"" << r.id << "\",\"role\":" << Json(r.role)
                << ",\"label\":" << Json(r.label) << ",\"created_ms\":" << r.created_unix_ms
                << ",\"revoked\":" << (r.revoked_unix_ms ? "true" : "false") << "}\n";
    }
  });

  auto* revoke = token->add_subcommand("revoke", "Revoke a token by id");
  common(revoke);
  revoke->add_option("id", f->id, "Token id (the 16 hex digits after cst_)")->required();
  revoke->callback([f] {
    api::Config c = LoadAdminConfig(*f);
    auto store = OpenStore(c, /*create=*/false);
    SystemClock clock;
    Status st = store->Revoke(f->id, UnixMillis(clock.Now()));
    if (!st.ok()) Fail(st);
    std::cout << "{\"id\":\"" << f->id << "\",\"revoked\":true}\n";
  });
}

}  // namespace custody::cli

// `custody migrate`: brings the stores' schemas to this binary's version, with the same
// configuration as `custody serve` (--config, CUSTODY_*, --data-dir, --set), and reports each
// component's version before and after, one JSON line each:
//   {"component":"ledger","from":1,"to":1}
// On PostgreSQL this is how a deployment's layout is upgraded (`custody serve` refuses an older
// schema unless started with --migrate); on SQLite `custody serve` migrates its files itself,
// and this command only does it ahead of time. A schema newer than this binary is refused.
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <map>

#include "api/config.h"
#include "api/service.h"
#include "cli/commands.h"
#include "cli/serve_flags.h"
#include "common/jcs.h"
#include "store/stores.h"

namespace custody::cli {
namespace {

[[noreturn]] void Fail(const Status& s) {
  std::cerr << "custody: " << s.ToString() << "\n";
  throw CLI::RuntimeError(s.code() == StatusCode::kInvalidArgument ? 2 : 1);
}

void RunMigrate(const ServeFlags& f) {
  ::umask(077);  // as serve: the files it may create are its user's only
  Result<api::Config> config = LoadServeConfig(f);
  if (!config.ok()) Fail(config.status().WithContext("configuration"));
  store::StorageOptions storage = config->Storage();
  if (storage.backend == store::Backend::kSqlite) {
    // The files live in the data directory, which is never created here: a typo in --data-dir
    // must not migrate (create) an empty set of files elsewhere.
    if (Status st = api::EnsurePrivateDir(config->data_dir, /*create=*/false); !st.ok()) Fail(st);
  }
  auto before = store::ReadSchemaVersions(storage);
  if (!before.ok()) Fail(before.status());
  if (Status st = store::MigrateStores(storage); !st.ok()) Fail(st);
  auto after = store::ReadSchemaVersions(storage);
  if (!after.ok()) Fail(after.status());
  std::map<std::string, int64_t> from;
  for (const auto& v : *before) from[v.component] = v.version;
  for (const auto& v : *after) {
    std::string line = "{\"component\":";
    AppendJcsString(v.component, line);
    line += ",\"from\":" + std::to_string(from[v.component]) +
            ",\"to\":" + std::to_string(v.version) + "}";
    std::cout << line << "\n";
  }
}

}  // namespace

void RegisterMigrateCommands(CLI::App& app) {
  auto f = std::make_shared<ServeFlags>();
  auto* migrate = app.add_subcommand(
      "migrate", "Bring the stores' schemas (SQLite files or PostgreSQL) to this version");
  AddConfigFlags(migrate, *f);
  migrate->callback([f] { RunMigrate(*f); });
}

}  // namespace custody::cli

// `custody index rebuild`: derives the action index (attribution.db) from the ledger again,
// offline. The index is the server's alone while it runs (attribution.db is opened with an
// exclusive SQLite lock), so against a running server the command is refused with a clear
// message instead of waiting for or sharing the file; a running server needs no rebuild for a
// crash, since its start-up re-indexes everything after the index's high-water mark.
#include <CLI/CLI.hpp>
#include <iostream>

#include "api/config.h"
#include "api/service.h"
#include "attribution/reindex.h"
#include "cli/commands.h"
#include "store/stores.h"

namespace custody::cli {
namespace {

struct IndexFlags {
  std::string config_file;
  std::string data_dir;
  bool from_mark = false;
};

[[noreturn]] void Fail(const Status& s) {
  std::cerr << "custody: " << s.ToString() << "\n";
  throw CLI::RuntimeError(1);
}

api::Config LoadIndexConfig(const IndexFlags& f) {
  auto c = api::LoadLocalConfig(f.config_file, f.data_dir);
  if (!c.ok()) Fail(c.status());
  return *c;
}

void Rebuild(const IndexFlags& f) {
  api::Config c = LoadIndexConfig(f);
  if (Status st = api::EnsurePrivateDir(c.data_dir, /*create=*/false); !st.ok()) Fail(st);
  store::StorageOptions files = c.Storage();
  // Read-only: a running server's ledger may be read (it is not exclusively locked).
  auto ledger = store::OpenLedgerStore(files, {.read_only = true, .create_if_missing = false});
  if (!ledger.ok()) Fail(ledger.status().WithContext("the ledger"));
  auto index = store::OpenAttributionStore(files);
  if (!index.ok()) {
    if (index.status().code() == StatusCode::kFailedPrecondition) {
      Fail(index.status().WithContext(
          "the action index is held by a running custody serve; stop it and run this again (a "
          "server re-indexes the ledger after the index's mark when it starts)"));
    }
    Fail(index.status().WithContext("the action index"));
  }
  uint64_t from = 0;
  if (f.from_mark) {
    auto mark = (*index)->IndexedSize();
    if (!mark.ok()) Fail(mark.status());
    from = *mark;
  }
  auto stats = attribution::Reindex(**ledger, **index, from);
  if (!stats.ok()) Fail(stats.status());
  std::cout << "{\"from\":" << stats->from << ",\"to\":" << stats->to
            << ",\"decisions\":" << stats->decisions << ",\"outcomes\":" << stats->outcomes
            << ",\"containments\":" << stats->containments << ",\"skipped\":" << stats->skipped
            << "}\n";
}

}  // namespace

void RegisterIndexCommands(CLI::App& app) {
  auto f = std::make_shared<IndexFlags>();
  auto* index = app.add_subcommand("index", "The action index (derived from the ledger)");
  index->require_subcommand(1);
  auto* rebuild = index->add_subcommand(
      "rebuild", "Index every ledger entry again (offline: the server must be stopped)");
  rebuild->add_option("--config", f->config_file, "TOML config file (or CUSTODY_CONFIG)");
  rebuild->add_option("--data-dir", f->data_dir, "Data directory (default ./custody-data)");
  rebuild->add_flag("--from-mark", f->from_mark,
                    "Only the entries after the index's high-water mark (what start-up does)");
  rebuild->callback([f] { Rebuild(*f); });
}

}  // namespace custody::cli

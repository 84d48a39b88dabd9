// `custody export --format ocsf`: every ledger entry as one OCSF record (docs/OCSF.md), NDJSON on
// stdout, in ledger order. It reads the ledger's store directly, read only, like `custody ledger
// verify`: the SQLite file of `custody serve` (--db DIR/ledger.db, safe while the server runs) or
// a PostgreSQL deployment's database (--postgres-url). --follow keeps polling for new entries.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <thread>

#include "cli/commands.h"
#include "export/reader.h"
#include "store/stores.h"

namespace custody::cli {
namespace {

struct ExportFlags {
  std::string format;
  std::string db, postgres_url;
  std::string since;
  uint64_t from_index = 0;
  bool follow = false;
  int64_t poll_ms = 1000;
};

[[noreturn]] void Fail(const Status& s, int code = 1) {
  std::cerr << "custody: " << s.ToString() << "\n";
  throw CLI::RuntimeError(code);
}

std::unique_ptr<store::LedgerStore> OpenRead(const ExportFlags& f) {
  if (f.db.empty() == f.postgres_url.empty()) {
    Fail(InvalidArgumentError("give one of --db FILE and --postgres-url URL"), 2);
  }
  Result<std::unique_ptr<store::LedgerStore>> s = UnavailableError("");
  if (!f.postgres_url.empty()) {
    store::StorageOptions o;
    o.backend = store::Backend::kPostgres;
    o.postgres_url = f.postgres_url;
    o.postgres_pool_size = 1;
    s = store::OpenLedgerStore(o, {.read_only = true, .create_if_missing = false});
  } else {
    if (!std::filesystem::exists(f.db)) Fail(NotFoundError("no ledger at " + f.db));
    s = store::OpenLedgerFile(f.db, {.read_only = true, .create_if_missing = false});
  }
  if (!s.ok()) Fail(s.status());
  return std::move(*s);
}

void RunExport(const ExportFlags& f) {
  if (f.format != "ocsf") Fail(InvalidArgumentError("--format: only ocsf is supported"), 2);
  std::optional<int64_t> since;
  if (!f.since.empty()) {
    Result<int64_t> s = ocsf::ParseSince(f.since);
    if (!s.ok()) Fail(s.status(), 2);
    since = *s;
  }
  auto store = OpenRead(f);
  ocsf::Options options;
  Result<std::optional<std::string>> origin = store->GetMeta("origin");
  if (!origin.ok()) Fail(origin.status());
  if (*origin) options.origin = **origin;
  uint64_t next = f.from_index;
  for (;;) {
    Result<uint64_t> size = store->LeafCount();
    if (!size.ok()) Fail(size.status());
    if (since && next < *size) {
      Result<uint64_t> first = ocsf::FirstAtOrAfter(*store, next, *size, *since);
      if (!first.ok()) Fail(first.status());
      next = *first;
      if (next < *size) since.reset();  // from here on, everything in order
    }
    if (next < *size) {
      Status st = ocsf::ForEachRecord(*store, next, *size, options,
                                      [&](uint64_t index, const std::string& record) {
                                        std::cout << record << '\n';
                                        next = index + 1;
                                        return bool(std::cout);
                                      });
      std::cout.flush();
      if (!std::cout) throw CLI::RuntimeError(1);  // the reader went away
      if (!st.ok()) Fail(st);
    }
    if (!f.follow) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(std::max<int64_t>(f.poll_ms, 10)));
  }
}

}  // namespace

void RegisterExportCommands(CLI::App& app) {
  auto flags = std::make_shared<ExportFlags>();
  auto* cmd = app.add_subcommand(
      "export", "Every ledger entry as an OCSF record (NDJSON on stdout, in ledger order)");
  cmd->add_option("--format", flags->format, "Output format: ocsf")->required();
  cmd->add_option("--db", flags->db,
                  "Ledger SQLite file (custody serve --data-dir DIR: DIR/ledger.db), read only");
  cmd->add_option("--postgres-url", flags->postgres_url,
                  "Instead of --db: the ledger in this PostgreSQL database, read only "
                  "(postgresql://USER@HOST/DB; give the password through PGPASSWORD or ~/.pgpass)");
  cmd->add_option("--since", flags->since,
                  "Start at the first entry whose event time is at or after this time "
                  "(RFC 3339, e.g. 2026-12-05T10:00:00Z, or Unix milliseconds)");
  cmd->add_option("--from-index", flags->from_index, "Start at this ledger index (default 0)");
  cmd->add_flag("--follow", flags->follow, "Keep polling for new entries and write them too");
  cmd->add_option("--poll-ms", flags->poll_ms, "With --follow: how often to poll (default 1000)");
  cmd->callback([flags] { RunExport(*flags); });
}

}  // namespace custody::cli

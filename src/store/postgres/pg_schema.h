// Versioned schemas in PostgreSQL: one row per component (the token store, later the ledger,
// identity, ...) in custody_schema(component, version). ApplyPgSchema takes a component from
// the version it has to the last of `steps` (steps[i] takes it from version i to i+1), in one
// transaction holding a transaction-scoped advisory lock on the component, so several nodes
// starting at once apply each step exactly once. A database whose version is newer than the
// steps this binary knows is refused: an older binary must not write a newer layout.
//
// With PgOptions::apply_schema_steps false (custody serve without --migrate), an older version
// is refused too, naming `custody migrate`: several nodes share the database, so upgrading its
// layout is an operator's step, not a side effect of one node restarting on a new binary.
#pragma once

#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "store/postgres/pg_db.h"

namespace custody::store {

Status ApplyPgSchema(PgDb& db, std::string_view component, std::span<const char* const> steps);

// The component's version, 0 when it has none yet.
Result<int64_t> PgSchemaVersion(PgDb& db, std::string_view component);

struct PgSchemaRow {
  std::string component;
  int64_t version = 0;
};
// Every component's version, by name; empty for a database Custody never opened.
Result<std::vector<PgSchemaRow>> PgSchemaVersions(PgDb& db);

// Runs `fn` while this process holds the advisory lock `name` (a transaction on one of `db`'s
// connections holds it; `fn` may use other connections). Serialises what several nodes starting
// at once must do once, such as creating the ledger key.
Status WithPgAdvisoryLock(PgDb& db, std::string_view name, const std::function<Status()>& fn);

}  // namespace custody::store

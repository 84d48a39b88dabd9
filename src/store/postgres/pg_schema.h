// Versioned schemas in PostgreSQL: one row per component (the token store, later the ledger,
// identity, ...) in custody_schema(component, version). ApplyPgSchema takes a component from
// the version it has to the last of `steps` (steps[i] takes it from version i to i+1), in one
// transaction holding a transaction-scoped advisory lock on the component, so several nodes
// starting at once apply each step exactly once. A database whose version is newer than the
// steps this binary knows is refused: an older binary must not write a newer layout.
#pragma once

#include <span>
#include <string_view>

#include "common/status.h"
#include "store/postgres/pg_db.h"

namespace custody::store {

Status ApplyPgSchema(PgDb& db, std::string_view component, std::span<const char* const> steps);

// The component's version, 0 when it has none yet.
Result<int64_t> PgSchemaVersion(PgDb& db, std::string_view component);

}  // namespace custody::store

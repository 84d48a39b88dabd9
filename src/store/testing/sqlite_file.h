// Direct access to a SQLite store's file, for tests that tamper with it or read what is on disk
// (the ledger's verifier and tile tests, the schema fixtures). The one place outside the SQLite
// stores that runs SQL; production code never uses it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace custody::store::testing {

// Runs `sql` (one or more statements) on the file at `path`. Parameters ?1, ?2, ... of a single
// statement are bound to `blobs` in order, as BLOBs.
Status ExecOnFile(const std::string& path, const std::string& sql,
                  const std::vector<std::string>& blobs = {});

// The first column of the first row of `sql` as an integer (NotFound: no row); the file is
// opened read-only.
Result<int64_t> QueryIntOnFile(const std::string& path, const std::string& sql);

}  // namespace custody::store::testing

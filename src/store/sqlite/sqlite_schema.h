// Schema versions and migrations for every SQLite file Custody writes. A file's layout version is
// its PRAGMA user_version. `steps[i]` is the SQL that takes a file from version i to i+1, so a
// store's current version is steps.size(), and a new step is how a layout changes: the steps
// never change once released.
//
// Version 0 is both an empty new file and a file written before versions existed (releases up
// to 0.1 left user_version at 0). Step 0 is therefore that release's schema, written entirely
// with IF NOT EXISTS, which creates it on an empty file and is a no-op on an old one.
//
// ApplySchema runs the missing steps and sets the version in one transaction, so a file is at
// one version or the next, never between. A file from a newer Custody is refused, untouched.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "common/status.h"

struct sqlite3;

namespace custody::store {

// The file's version (PRAGMA user_version).
Result<int64_t> SchemaVersion(sqlite3* db, const std::string& what);

// Brings the file at `path` (already open as `db`) to version steps.size(). FailedPrecondition
// for a file newer than that, naming both versions; Unavailable (DataLoss for a corrupt file)
// when a step fails, and then nothing of the migration stays.
Status ApplySchema(sqlite3* db, const std::string& what, const std::string& path,
                   std::span<const char* const> steps);

}  // namespace custody::store

#include "store/sqlite/sqlite_schema.h"

#include <sqlite3.h>

#include "store/sqlite/sqlite_db.h"

namespace custody::store {
namespace {

Status Failed(sqlite3* db, const std::string& what, const std::string& doing) {
  return SqliteError(sqlite3_errcode(db), what + ": " + doing + ": " + sqlite3_errmsg(db));
}

Status Exec(sqlite3* db, const char* sql, const std::string& what, const std::string& doing) {
  if (sqlite3_exec(db, sql, nullptr, nullptr, nullptr) != SQLITE_OK) {
    return Failed(db, what, doing);
  }
  return OkStatus();
}

}  // namespace

Result<int64_t> SchemaVersion(sqlite3* db, const std::string& what) {
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, nullptr) != SQLITE_OK) {
    return Failed(db, what, "reading the schema version");
  }
  int rc = sqlite3_step(s);
  int64_t v = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
  sqlite3_finalize(s);
  if (rc != SQLITE_ROW) return Failed(db, what, "reading the schema version");
  return v;
}

Status ApplySchema(sqlite3* db, const std::string& what, const std::string& path,
                   std::span<const char* const> steps) {
  const int64_t target = static_cast<int64_t>(steps.size());
  ASSIGN_OR_RETURN(int64_t version, SchemaVersion(db, what));
  if (version < 0) {
    return DataLossError(what + " " + path + " has schema version " + std::to_string(version) +
                         ", which no custody writes");
  }
  if (version > target) {
    return FailedPreconditionError(what + " " + path + " has schema version " +
                                   std::to_string(version) + ", newer than version " +
                                   std::to_string(target) +
                                   " that this custody understands; run the newer custody, "
                                   "or restore a backup made by this one");
  }
  if (version == target) return OkStatus();
  RETURN_IF_ERROR(Exec(db, "BEGIN IMMEDIATE", what, "starting the schema migration"));
  // Re-read under the write lock: another opener may have migrated the file meanwhile.
  Result<int64_t> now = SchemaVersion(db, what);
  if (!now.ok()) {
    sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    return now.status();
  }
  if (*now < 0 || *now > target) {
    sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);  // changed meanwhile: re-check it
    return ApplySchema(db, what, path, steps);
  }
  for (int64_t v = *now; v < target; ++v) {
    if (sqlite3_exec(db, steps[static_cast<size_t>(v)], nullptr, nullptr, nullptr) != SQLITE_OK) {
      Status st = Failed(db, what,
                         "migrating " + path + " from schema version " + std::to_string(v) +
                             " to " + std::to_string(v + 1));
      sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);  // the error is already in st
      return st;
    }
  }
  std::string set = "PRAGMA user_version = " + std::to_string(target);
  if (sqlite3_exec(db, set.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK ||
      sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
    Status st = Failed(db, what, "recording schema version " + std::to_string(target));
    sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);  // the error is already in st
    return st;
  }
  return OkStatus();
}

}  // namespace custody::store

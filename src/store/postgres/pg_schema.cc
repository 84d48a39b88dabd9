#include "store/postgres/pg_schema.h"

#include <string>

namespace custody::store {
namespace {

constexpr const char* kSchemaTable =
    "CREATE TABLE IF NOT EXISTS custody_schema(component TEXT PRIMARY KEY, "
    "version BIGINT NOT NULL)";

}  // namespace

Result<int64_t> PgSchemaVersion(PgDb& db, std::string_view component) {
  ASSIGN_OR_RETURN(PgRows rows, db.Exec("read schema version",
                                        "SELECT version FROM custody_schema WHERE component = $1",
                                        {PgText(component)}));
  return rows.size() == 0 ? 0 : rows.Int(0, 0);
}

Status ApplyPgSchema(PgDb& db, std::string_view component, std::span<const char* const> steps) {
  // Two nodes creating the table at once may collide on the catalog; the second try sees it.
  Status created = db.Exec("create schema table", kSchemaTable).status();
  if (!created.ok()) created = db.Exec("create schema table", kSchemaTable).status();
  RETURN_IF_ERROR(created);
  const int64_t known = static_cast<int64_t>(steps.size());
  return db.Transact("apply schema", [&](PgConn& c) -> Status {
    RETURN_IF_ERROR(c.Exec("lock schema", "SELECT pg_advisory_xact_lock(hashtext($1))",
                           {PgText("custody_schema:" + std::string(component))})
                        .status());
    ASSIGN_OR_RETURN(PgRows rows, c.Exec("read schema version",
                                         "SELECT version FROM custody_schema WHERE component = $1",
                                         {PgText(component)}));
    int64_t version = rows.size() == 0 ? 0 : rows.Int(0, 0);
    if (version > known) {
      return FailedPreconditionError(std::string(component) + " schema is version " +
                                     std::to_string(version) + ", newer than this custody knows (" +
                                     std::to_string(known) + "): upgrade custody");
    }
    if (version < known && !db.options().apply_schema_steps) {
      return FailedPreconditionError(
          std::string(component) + " schema in " + db.where() + " is version " +
          std::to_string(version) + ", older than this custody's " + std::to_string(known) +
          ": run `custody migrate` first (or start with `custody serve --migrate`)");
    }
    for (int64_t v = version; v < known; ++v) {
      RETURN_IF_ERROR(c.ExecScript("schema step " + std::to_string(v + 1), steps[v]));
    }
    if (version == known) return OkStatus();
    return c
        .Exec("record schema version",
              "INSERT INTO custody_schema(component, version) VALUES($1, $2) "
              "ON CONFLICT (component) DO UPDATE SET version = EXCLUDED.version",
              {PgText(component), PgInt(known)})
        .status();
  });
}

Result<std::vector<PgSchemaRow>> PgSchemaVersions(PgDb& db) {
  std::vector<PgSchemaRow> out;
  ASSIGN_OR_RETURN(PgRows exists, db.Exec("find schema table",
                                          "SELECT to_regclass('custody_schema') IS NOT NULL"));
  if (exists.size() == 0 || exists.Text(0, 0) != "t") return out;
  ASSIGN_OR_RETURN(PgRows rows, db.Exec("read schema versions",
                                        "SELECT component, version FROM custody_schema "
                                        "ORDER BY component COLLATE \"C\""));
  for (int i = 0; i < rows.size(); ++i) {
    out.push_back(PgSchemaRow{std::string(rows.Text(i, 0)), rows.Int(i, 1)});
  }
  return out;
}

Status WithPgAdvisoryLock(PgDb& db, std::string_view name, const std::function<Status()>& fn) {
  return db.Transact("take advisory lock", [&](PgConn& c) -> Status {
    RETURN_IF_ERROR(c.Exec("take advisory lock", "SELECT pg_advisory_xact_lock(hashtext($1))",
                           {PgText("custody:" + std::string(name))})
                        .status());
    return fn();
  });
}

}  // namespace custody::store

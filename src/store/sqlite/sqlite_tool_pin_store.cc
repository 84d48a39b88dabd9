#include "store/sqlite/sqlite_tool_pin_store.h"

#include "store/sqlite/sqlite_db.h"

namespace custody::store {

SqliteToolPinStore::SqliteToolPinStore(std::unique_ptr<SqliteDb> db) : db_(std::move(db)) {}
SqliteToolPinStore::~SqliteToolPinStore() = default;

namespace {
// Schema steps (store/sqlite_schema.h): kSchemaSteps[i] takes mcp.db from version i to i+1.
// Released steps never change; a layout change is a new step.
constexpr const char* kSchemaV1 =
    "CREATE TABLE IF NOT EXISTS tool_pins ("
    " server TEXT NOT NULL, tool TEXT NOT NULL, approved_hash TEXT NOT NULL,"
    " seen_hash TEXT NOT NULL, first_seen_ms INTEGER NOT NULL, changed_ms INTEGER NOT NULL,"
    " PRIMARY KEY (server, tool))";
constexpr const char* kSchemaSteps[] = {kSchemaV1};
}  // namespace

Result<std::unique_ptr<SqliteToolPinStore>> SqliteToolPinStore::Open(const std::string& path) {
  ASSIGN_OR_RETURN(auto db, SqliteDb::Open(path, "mcp store", Durability::kFull, kSchemaSteps));
  return std::unique_ptr<SqliteToolPinStore>(new SqliteToolPinStore(std::move(db)));
}

Result<PinObservation> SqliteToolPinStore::Observe(const std::string& server,
                                                   const std::string& tool, const std::string& hash,
                                                   int64_t now_ms) {
  MutexLock lock(mu_);
  Stmt q(*db_, "SELECT approved_hash, seen_hash FROM tool_pins WHERE server=? AND tool=?");
  if (!q.ok()) return db_->Error("reading a tool pin");
  q.Bind(1, server).Bind(2, tool);
  int rc = q.Step();
  PinObservation obs;
  if (rc == kSqliteDone) {
    Stmt ins(*db_,
             "INSERT INTO tool_pins (server, tool, approved_hash, seen_hash, first_seen_ms,"
             " changed_ms) VALUES (?, ?, ?, ?, ?, 0)");
    if (!ins.ok()) return db_->Error("pinning a tool");
    ins.Bind(1, server).Bind(2, tool).Bind(3, hash).Bind(4, hash).Bind(5, now_ms);
    if (ins.Step() != kSqliteDone) return db_->Error("pinning a tool");
    obs.approved = true;
    obs.first_seen = true;
    obs.approved_hash = hash;
    return obs;
  }
  if (rc != kSqliteRow) return db_->Error("reading a tool pin");
  obs.approved_hash = q.Text(0);
  std::string seen = q.Text(1);
  obs.approved = obs.approved_hash == hash;
  obs.newly_changed = !obs.approved && seen != hash;
  if (seen != hash) {
    Stmt up(*db_,
            "UPDATE tool_pins SET seen_hash=?, changed_ms=CASE WHEN ? THEN ? ELSE changed_ms "
            "END WHERE server=? AND tool=?");
    if (!up.ok()) return db_->Error("updating a tool pin");
    up.Bind(1, hash)
        .Bind(2, int64_t{obs.newly_changed ? 1 : 0})
        .Bind(3, now_ms)
        .Bind(4, server)
        .Bind(5, tool);
    if (up.Step() != kSqliteDone) return db_->Error("updating a tool pin");
  }
  return obs;
}

Status SqliteToolPinStore::Approve(const std::string& server, const std::string& tool,
                                   const std::string& hash) {
  MutexLock lock(mu_);
  Stmt q(*db_, "SELECT seen_hash FROM tool_pins WHERE server=? AND tool=?");
  if (!q.ok()) return db_->Error("reading a tool pin");
  q.Bind(1, server).Bind(2, tool);
  int rc = q.Step();
  if (rc == kSqliteDone) {
    return NotFoundError("tool " + server + "/" + tool + " has never been seen");
  }
  if (rc != kSqliteRow) return db_->Error("reading a tool pin");
  if (q.Text(0) != hash) {
    return FailedPreconditionError("the upstream currently advertises " + server + "/" + tool +
                                   " with definition hash " + q.Text(0) + ", not " + hash);
  }
  Stmt up(*db_, "UPDATE tool_pins SET approved_hash=? WHERE server=? AND tool=?");
  if (!up.ok()) return db_->Error("approving a tool");
  up.Bind(1, hash).Bind(2, server).Bind(3, tool);
  if (up.Step() != kSqliteDone) return db_->Error("approving a tool");
  return OkStatus();
}

Result<std::vector<PinRecord>> SqliteToolPinStore::List() {
  MutexLock lock(mu_);
  Stmt q(*db_,
         "SELECT server, tool, approved_hash, seen_hash, first_seen_ms, changed_ms FROM "
         "tool_pins ORDER BY server, tool");
  if (!q.ok()) return db_->Error("listing tool pins");
  std::vector<PinRecord> out;
  int rc;
  while ((rc = q.Step()) == kSqliteRow) {
    out.push_back(PinRecord{q.Text(0), q.Text(1), q.Text(2), q.Text(3), q.Int(4), q.Int(5)});
  }
  if (rc != kSqliteDone) return db_->Error("listing tool pins");
  return out;
}

}  // namespace custody::store

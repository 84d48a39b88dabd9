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
// Resources and prompts are pinned beside tools: the kind joins the key (a tool and a prompt
// may share a name), and every version 1 pin is a tool's. ApplySchema runs this in the
// migration's transaction: a file has one table or the other, never both or half.
constexpr const char* kSchemaV2 =
    "CREATE TABLE pins ("
    " server TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL, approved_hash TEXT NOT NULL,"
    " seen_hash TEXT NOT NULL, first_seen_ms INTEGER NOT NULL, changed_ms INTEGER NOT NULL,"
    " PRIMARY KEY (server, kind, name));"
    "INSERT INTO pins (server, kind, name, approved_hash, seen_hash, first_seen_ms, changed_ms)"
    " SELECT server, 'tool', tool, approved_hash, seen_hash, first_seen_ms, changed_ms"
    " FROM tool_pins;"
    "DROP TABLE tool_pins;";
constexpr const char* kSchemaSteps[] = {kSchemaV1, kSchemaV2};

std::string Named(PinKind kind, const std::string& server, const std::string& name) {
  return std::string(PinKindName(kind)) + " " + server + "/" + name;
}
}  // namespace

Result<std::unique_ptr<SqliteToolPinStore>> SqliteToolPinStore::Open(const std::string& path) {
  ASSIGN_OR_RETURN(auto db, SqliteDb::Open(path, "mcp store", Durability::kFull, kSchemaSteps));
  return std::unique_ptr<SqliteToolPinStore>(new SqliteToolPinStore(std::move(db)));
}

Result<PinObservation> SqliteToolPinStore::Observe(PinKind kind, const std::string& server,
                                                   const std::string& name, const std::string& hash,
                                                   int64_t now_ms) {
  const std::string k(PinKindName(kind));
  MutexLock lock(mu_);
  Stmt q(*db_, "SELECT approved_hash, seen_hash FROM pins WHERE server=? AND kind=? AND name=?");
  if (!q.ok()) return db_->Error("reading a pin");
  q.Bind(1, server).Bind(2, k).Bind(3, name);
  int rc = q.Step();
  PinObservation obs;
  if (rc == kSqliteDone) {
    Stmt ins(*db_,
             "INSERT INTO pins (server, kind, name, approved_hash, seen_hash, first_seen_ms,"
             " changed_ms) VALUES (?, ?, ?, ?, ?, ?, 0)");
    if (!ins.ok()) return db_->Error("pinning a " + k);
    ins.Bind(1, server).Bind(2, k).Bind(3, name).Bind(4, hash).Bind(5, hash).Bind(6, now_ms);
    if (ins.Step() != kSqliteDone) return db_->Error("pinning a " + k);
    obs.approved = true;
    obs.first_seen = true;
    obs.approved_hash = hash;
    return obs;
  }
  if (rc != kSqliteRow) return db_->Error("reading a pin");
  obs.approved_hash = q.Text(0);
  std::string seen = q.Text(1);
  obs.approved = obs.approved_hash == hash;
  obs.newly_changed = !obs.approved && seen != hash;
  if (seen != hash) {
    Stmt up(*db_,
            "UPDATE pins SET seen_hash=?, changed_ms=CASE WHEN ? THEN ? ELSE changed_ms "
            "END WHERE server=? AND kind=? AND name=?");
    if (!up.ok()) return db_->Error("updating a pin");
    up.Bind(1, hash)
        .Bind(2, int64_t{obs.newly_changed ? 1 : 0})
        .Bind(3, now_ms)
        .Bind(4, server)
        .Bind(5, k)
        .Bind(6, name);
    if (up.Step() != kSqliteDone) return db_->Error("updating a pin");
  }
  return obs;
}

Status SqliteToolPinStore::Approve(PinKind kind, const std::string& server, const std::string& name,
                                   const std::string& hash) {
  const std::string k(PinKindName(kind));
  MutexLock lock(mu_);
  Stmt q(*db_, "SELECT seen_hash FROM pins WHERE server=? AND kind=? AND name=?");
  if (!q.ok()) return db_->Error("reading a pin");
  q.Bind(1, server).Bind(2, k).Bind(3, name);
  int rc = q.Step();
  if (rc == kSqliteDone) return NotFoundError(Named(kind, server, name) + " has never been seen");
  if (rc != kSqliteRow) return db_->Error("reading a pin");
  if (q.Text(0) != hash) {
    return FailedPreconditionError("the upstream currently advertises " + server + "/" + name +
                                   " with definition hash " + q.Text(0) + ", not " + hash);
  }
  Stmt up(*db_, "UPDATE pins SET approved_hash=? WHERE server=? AND kind=? AND name=?");
  if (!up.ok()) return db_->Error("approving a " + k);
  up.Bind(1, hash).Bind(2, server).Bind(3, k).Bind(4, name);
  if (up.Step() != kSqliteDone) return db_->Error("approving a " + k);
  return OkStatus();
}

Result<std::vector<PinRecord>> SqliteToolPinStore::List(PinKind kind) {
  MutexLock lock(mu_);
  Stmt q(*db_,
         "SELECT server, name, approved_hash, seen_hash, first_seen_ms, changed_ms FROM pins"
         " WHERE kind=? ORDER BY server, name");
  if (!q.ok()) return db_->Error("listing pins");
  q.Bind(1, std::string(PinKindName(kind)));
  std::vector<PinRecord> out;
  int rc;
  while ((rc = q.Step()) == kSqliteRow) {
    out.push_back(PinRecord{q.Text(0), kind, q.Text(1), q.Text(2), q.Text(3), q.Int(4), q.Int(5)});
  }
  if (rc != kSqliteDone) return db_->Error("listing pins");
  return out;
}

}  // namespace custody::store

#include "store/postgres/pg_tool_pin_store.h"

#include "store/postgres/pg_schema.h"

namespace custody::store {
namespace {

// Schema steps (store/postgres/pg_schema.h): released steps never change.
constexpr const char* kSchemaV1 =
    "CREATE TABLE mcp_pins ("
    " server TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL, approved_hash TEXT NOT NULL,"
    " seen_hash TEXT NOT NULL, first_seen_ms BIGINT NOT NULL, changed_ms BIGINT NOT NULL,"
    " PRIMARY KEY (server, kind, name))";
constexpr const char* kSchemaSteps[] = {kSchemaV1};

std::string Named(PinKind kind, const std::string& server, const std::string& name) {
  return std::string(PinKindName(kind)) + " " + server + "/" + name;
}

}  // namespace

Result<std::unique_ptr<PgToolPinStore>> PgToolPinStore::Open(const std::string& url,
                                                             PgOptions options) {
  options.what = "mcp store";
  ASSIGN_OR_RETURN(std::unique_ptr<PgDb> db, PgDb::Open(url, std::move(options)));
  RETURN_IF_ERROR(ApplyPgSchema(*db, "mcp_pins", kSchemaSteps));
  return std::unique_ptr<PgToolPinStore>(new PgToolPinStore(std::move(db)));
}

PgToolPinStore::~PgToolPinStore() = default;

Result<PinObservation> PgToolPinStore::Observe(PinKind kind, const std::string& server,
                                               const std::string& name, const std::string& hash,
                                               int64_t now_ms) {
  const std::string k(PinKindName(kind));
  PinObservation obs;
  Status st = db_->Transact("observe a " + k, [&](PgConn& c) -> Status {
    obs = PinObservation{};
    ASSIGN_OR_RETURN(
        PgRows inserted,
        c.Exec("pin a " + k,
               "INSERT INTO mcp_pins (server, kind, name, approved_hash, seen_hash, "
               "first_seen_ms, changed_ms) VALUES ($1, $2, $3, $4, $4, $5, 0) "
               "ON CONFLICT DO NOTHING",
               {PgText(server), PgText(k), PgText(name), PgText(hash), PgInt(now_ms)}));
    if (inserted.affected() == 1) {
      obs.approved = true;
      obs.first_seen = true;
      obs.approved_hash = hash;
      return OkStatus();
    }
    ASSIGN_OR_RETURN(PgRows row, c.Exec("read a pin",
                                        "SELECT approved_hash, seen_hash FROM mcp_pins "
                                        "WHERE server = $1 AND kind = $2 AND name = $3 FOR UPDATE",
                                        {PgText(server), PgText(k), PgText(name)}));
    if (row.size() != 1) return UnavailableError("mcp store: a pin vanished while read");
    obs.approved_hash = std::string(row.Text(0, 0));
    const std::string seen(row.Text(0, 1));
    obs.approved = obs.approved_hash == hash;
    obs.newly_changed = !obs.approved && seen != hash;
    if (seen == hash) return OkStatus();
    return c
        .Exec("update a pin",
              "UPDATE mcp_pins SET seen_hash = $1, changed_ms = CASE WHEN $2 THEN $3 ELSE "
              "changed_ms END WHERE server = $4 AND kind = $5 AND name = $6",
              {PgText(hash), PgText(obs.newly_changed ? "true" : "false"), PgInt(now_ms),
               PgText(server), PgText(k), PgText(name)})
        .status();
  });
  if (!st.ok()) return st;
  return obs;
}

Status PgToolPinStore::Approve(PinKind kind, const std::string& server, const std::string& name,
                               const std::string& hash) {
  const std::string k(PinKindName(kind));
  ASSIGN_OR_RETURN(PgRows approved,
                   db_->Exec("approve a " + k,
                             "UPDATE mcp_pins SET approved_hash = $1 WHERE server = $2 AND "
                             "kind = $3 AND name = $4 AND seen_hash = $1",
                             {PgText(hash), PgText(server), PgText(k), PgText(name)}));
  if (approved.affected() == 1) return OkStatus();
  ASSIGN_OR_RETURN(PgRows row, db_->Exec("read a pin",
                                         "SELECT seen_hash FROM mcp_pins WHERE server = $1 AND "
                                         "kind = $2 AND name = $3",
                                         {PgText(server), PgText(k), PgText(name)}));
  if (row.size() == 0) return NotFoundError(Named(kind, server, name) + " has never been seen");
  return FailedPreconditionError("the upstream currently advertises " + server + "/" + name +
                                 " with definition hash " + std::string(row.Text(0, 0)) + ", not " +
                                 hash);
}

Result<std::vector<PinRecord>> PgToolPinStore::List(PinKind kind) {
  ASSIGN_OR_RETURN(PgRows rows,
                   db_->Exec("list pins",
                             "SELECT server, name, approved_hash, seen_hash, first_seen_ms, "
                             "changed_ms FROM mcp_pins WHERE kind = $1 "
                             "ORDER BY server COLLATE \"C\", name COLLATE \"C\"",
                             {PgText(PinKindName(kind))}));
  std::vector<PinRecord> out;
  out.reserve(rows.size());
  for (int i = 0; i < rows.size(); ++i) {
    out.push_back(PinRecord{std::string(rows.Text(i, 0)), kind, std::string(rows.Text(i, 1)),
                            std::string(rows.Text(i, 2)), std::string(rows.Text(i, 3)),
                            rows.Int(i, 4), rows.Int(i, 5)});
  }
  return out;
}

}  // namespace custody::store

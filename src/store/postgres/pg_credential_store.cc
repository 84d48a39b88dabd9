#include "store/postgres/pg_credential_store.h"

#include "store/postgres/pg_schema.h"

namespace custody::store {
namespace {

// Schema steps (store/postgres/pg_schema.h): released steps never change.
constexpr const char* kSchemaV1 =
    "CREATE TABLE credential_leases ("
    " role TEXT PRIMARY KEY, sid TEXT NOT NULL, root_sid TEXT NOT NULL, agent TEXT NOT NULL,"
    " initiator TEXT NOT NULL, action_id TEXT NOT NULL, decision_index BIGINT NOT NULL,"
    " database TEXT NOT NULL, access TEXT NOT NULL, password_sha256 TEXT NOT NULL,"
    " issued_ms BIGINT NOT NULL, expires_ms BIGINT NOT NULL, state TEXT NOT NULL,"
    " revoke_reason TEXT NOT NULL, revoked_ms BIGINT NOT NULL);"
    "CREATE INDEX credential_leases_by_state ON credential_leases (state, issued_ms);"
    "CREATE INDEX credential_leases_by_sid ON credential_leases (sid, issued_ms);";
constexpr const char* kSchemaSteps[] = {kSchemaV1};

constexpr const char* kSelect =
    "SELECT role, sid, root_sid, agent, initiator, action_id, decision_index, database, access,"
    " password_sha256, issued_ms, expires_ms, state, revoke_reason, revoked_ms"
    " FROM credential_leases ";

LeaseRow RowOf(const PgRows& rows, int i) {
  LeaseRow r;
  r.role = std::string(rows.Text(i, 0));
  r.sid = std::string(rows.Text(i, 1));
  r.root_sid = std::string(rows.Text(i, 2));
  r.agent = std::string(rows.Text(i, 3));
  r.initiator = std::string(rows.Text(i, 4));
  r.action_id = std::string(rows.Text(i, 5));
  r.decision_index = static_cast<uint64_t>(rows.Int(i, 6));
  r.database = std::string(rows.Text(i, 7));
  r.access = std::string(rows.Text(i, 8));
  r.password_sha256 = std::string(rows.Text(i, 9));
  r.issued_ms = rows.Int(i, 10);
  r.expires_ms = rows.Int(i, 11);
  r.state = ParseLeaseState(rows.Text(i, 12)).value_or(LeaseState::kRevoking);
  r.revoke_reason = std::string(rows.Text(i, 13));
  r.revoked_ms = rows.Int(i, 14);
  return r;
}

std::vector<LeaseRow> RowsOf(const PgRows& rows) {
  std::vector<LeaseRow> out;
  out.reserve(rows.size());
  for (int i = 0; i < rows.size(); ++i) out.push_back(RowOf(rows, i));
  return out;
}

}  // namespace

Result<std::unique_ptr<PgCredentialStore>> PgCredentialStore::Open(const std::string& url,
                                                                   PgOptions options) {
  options.what = "credential store";
  ASSIGN_OR_RETURN(std::unique_ptr<PgDb> db, PgDb::Open(url, std::move(options)));
  RETURN_IF_ERROR(ApplyPgSchema(*db, "credentials", kSchemaSteps));
  return std::unique_ptr<PgCredentialStore>(new PgCredentialStore(std::move(db)));
}

PgCredentialStore::~PgCredentialStore() = default;

Status PgCredentialStore::Insert(const LeaseRow& l) {
  auto r = db_->Exec(
      "store a lease",
      "INSERT INTO credential_leases (role, sid, root_sid, agent, initiator, action_id,"
      " decision_index, database, access, password_sha256, issued_ms, expires_ms, state,"
      " revoke_reason, revoked_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12,"
      " $13, $14, $15)",
      {PgText(l.role), PgText(l.sid), PgText(l.root_sid), PgText(l.agent), PgText(l.initiator),
       PgText(l.action_id), PgInt(static_cast<int64_t>(l.decision_index)), PgText(l.database),
       PgText(l.access), PgText(l.password_sha256), PgInt(l.issued_ms), PgInt(l.expires_ms),
       PgText(LeaseStateName(l.state)), PgText(l.revoke_reason), PgInt(l.revoked_ms)});
  if (!r.ok() && r.status().code() == StatusCode::kAlreadyExists) {
    return AlreadyExistsError("credential store: role " + l.role + " is already leased");
  }
  return r.status();
}

Result<std::optional<LeaseRow>> PgCredentialStore::Get(const std::string& role) {
  ASSIGN_OR_RETURN(PgRows rows, db_->Exec("read a lease", std::string(kSelect) + "WHERE role = $1",
                                          {PgText(role)}));
  if (rows.size() == 0) return std::optional<LeaseRow>();
  return std::optional<LeaseRow>(RowOf(rows, 0));
}

Result<std::vector<LeaseRow>> PgCredentialStore::ListByState(LeaseState state) {
  ASSIGN_OR_RETURN(
      PgRows rows,
      db_->Exec("list leases",
                std::string(kSelect) + "WHERE state = $1 ORDER BY issued_ms, role COLLATE \"C\"",
                {PgText(LeaseStateName(state))}));
  return RowsOf(rows);
}

Result<std::vector<LeaseRow>> PgCredentialStore::ListBySession(const std::string& sid) {
  ASSIGN_OR_RETURN(
      PgRows rows,
      db_->Exec("list leases",
                std::string(kSelect) + "WHERE sid = $1 ORDER BY issued_ms, role COLLATE \"C\"",
                {PgText(sid)}));
  return RowsOf(rows);
}

Result<bool> PgCredentialStore::Changed(const PgRows& rows, const std::string& role) {
  if (rows.affected() == 1) return true;
  ASSIGN_OR_RETURN(
      PgRows exists,
      db_->Exec("read a lease", "SELECT 1 FROM credential_leases WHERE role = $1", {PgText(role)}));
  if (exists.size() == 0) return NotFoundError("no credential lease for role " + role);
  return false;
}

Result<bool> PgCredentialStore::BeginRevoke(const std::string& role, const std::string& reason) {
  ASSIGN_OR_RETURN(PgRows rows,
                   db_->Exec("revoke a lease",
                             "UPDATE credential_leases SET state = 'revoking',"
                             " revoke_reason = $1 WHERE role = $2 AND state = 'active'",
                             {PgText(reason), PgText(role)}));
  return Changed(rows, role);
}

Result<bool> PgCredentialStore::FinishRevoke(const std::string& role, int64_t now_ms) {
  ASSIGN_OR_RETURN(PgRows rows, db_->Exec("record a revoked lease",
                                          "UPDATE credential_leases SET state = 'revoked',"
                                          " revoked_ms = $1 WHERE role = $2 AND state = 'revoking'",
                                          {PgInt(now_ms), PgText(role)}));
  return Changed(rows, role);
}

Result<bool> PgCredentialStore::Renew(const std::string& role, int64_t expires_ms) {
  ASSIGN_OR_RETURN(PgRows rows, db_->Exec("renew a lease",
                                          "UPDATE credential_leases SET expires_ms = $1"
                                          " WHERE role = $2 AND state = 'active'",
                                          {PgInt(expires_ms), PgText(role)}));
  return Changed(rows, role);
}

}  // namespace custody::store

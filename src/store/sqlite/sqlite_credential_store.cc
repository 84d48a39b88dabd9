#include "store/sqlite/sqlite_credential_store.h"

#include "store/sqlite/sqlite_db.h"

namespace custody::store {
namespace {

// Schema steps (store/sqlite_schema.h): kSchemaSteps[i] takes credentials.db from version i to
// i+1. Released steps never change; a layout change is a new step.
constexpr const char* kSchemaV1 =
    "CREATE TABLE leases ("
    " role TEXT PRIMARY KEY, sid TEXT NOT NULL, root_sid TEXT NOT NULL, agent TEXT NOT NULL,"
    " initiator TEXT NOT NULL, action_id TEXT NOT NULL, decision_index INTEGER NOT NULL,"
    " database TEXT NOT NULL, access TEXT NOT NULL, password_sha256 TEXT NOT NULL,"
    " issued_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL, state TEXT NOT NULL,"
    " revoke_reason TEXT NOT NULL, revoked_ms INTEGER NOT NULL);"
    "CREATE INDEX leases_by_state ON leases (state, issued_ms);"
    "CREATE INDEX leases_by_sid ON leases (sid, issued_ms);";
constexpr const char* kSchemaSteps[] = {kSchemaV1};

constexpr const char* kColumns =
    "role, sid, root_sid, agent, initiator, action_id, decision_index, database, access,"
    " password_sha256, issued_ms, expires_ms, state, revoke_reason, revoked_ms";

LeaseRow RowOf(const Stmt& q) {
  LeaseRow r;
  r.role = q.Text(0);
  r.sid = q.Text(1);
  r.root_sid = q.Text(2);
  r.agent = q.Text(3);
  r.initiator = q.Text(4);
  r.action_id = q.Text(5);
  r.decision_index = static_cast<uint64_t>(q.Int(6));
  r.database = q.Text(7);
  r.access = q.Text(8);
  r.password_sha256 = q.Text(9);
  r.issued_ms = q.Int(10);
  r.expires_ms = q.Int(11);
  r.state = ParseLeaseState(q.Text(12)).value_or(LeaseState::kRevoking);
  r.revoke_reason = q.Text(13);
  r.revoked_ms = q.Int(14);
  return r;
}

}  // namespace

SqliteCredentialStore::SqliteCredentialStore(std::unique_ptr<SqliteDb> db) : db_(std::move(db)) {}
SqliteCredentialStore::~SqliteCredentialStore() = default;

Result<std::unique_ptr<SqliteCredentialStore>> SqliteCredentialStore::Open(
    const std::string& path) {
  ASSIGN_OR_RETURN(auto db,
                   SqliteDb::Open(path, "credential store", Durability::kFull, kSchemaSteps));
  return std::unique_ptr<SqliteCredentialStore>(new SqliteCredentialStore(std::move(db)));
}

Status SqliteCredentialStore::Insert(const LeaseRow& l) {
  MutexLock lock(mu_);
  Stmt q(*db_,
         "INSERT INTO leases (role, sid, root_sid, agent, initiator, action_id, decision_index,"
         " database, access, password_sha256, issued_ms, expires_ms, state, revoke_reason,"
         " revoked_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  if (!q.ok()) return db_->Error("storing a lease");
  q.Bind(1, l.role)
      .Bind(2, l.sid)
      .Bind(3, l.root_sid)
      .Bind(4, l.agent)
      .Bind(5, l.initiator)
      .Bind(6, l.action_id)
      .Bind(7, static_cast<int64_t>(l.decision_index))
      .Bind(8, l.database)
      .Bind(9, l.access)
      .Bind(10, l.password_sha256)
      .Bind(11, l.issued_ms)
      .Bind(12, l.expires_ms)
      .Bind(13, std::string(LeaseStateName(l.state)))
      .Bind(14, l.revoke_reason)
      .Bind(15, l.revoked_ms);
  if (q.Step() != kSqliteDone) {
    if (db_->last_error() == 19 /* SQLITE_CONSTRAINT */) {
      return AlreadyExistsError("credential store: role " + l.role + " is already leased");
    }
    return db_->Error("storing a lease");
  }
  return OkStatus();
}

Result<std::optional<LeaseRow>> SqliteCredentialStore::Get(const std::string& role) {
  MutexLock lock(mu_);
  static const std::string sql = std::string("SELECT ") + kColumns + " FROM leases WHERE role=?";
  Stmt q(*db_, sql.c_str());
  if (!q.ok()) return db_->Error("reading a lease");
  q.Bind(1, role);
  int rc = q.Step();
  if (rc == kSqliteDone) return std::optional<LeaseRow>();
  if (rc != kSqliteRow) return db_->Error("reading a lease");
  return std::optional<LeaseRow>(RowOf(q));
}

Result<std::vector<LeaseRow>> SqliteCredentialStore::List(const char* sql, const std::string& arg) {
  Stmt q(*db_, sql);
  if (!q.ok()) return db_->Error("listing leases");
  q.Bind(1, arg);
  std::vector<LeaseRow> out;
  int rc;
  while ((rc = q.Step()) == kSqliteRow) out.push_back(RowOf(q));
  if (rc != kSqliteDone) return db_->Error("listing leases");
  return out;
}

Result<std::vector<LeaseRow>> SqliteCredentialStore::ListByState(LeaseState state) {
  MutexLock lock(mu_);
  static const std::string sql =
      std::string("SELECT ") + kColumns + " FROM leases WHERE state=? ORDER BY issued_ms, role";
  return List(sql.c_str(), std::string(LeaseStateName(state)));
}

Result<std::vector<LeaseRow>> SqliteCredentialStore::ListBySession(const std::string& sid) {
  MutexLock lock(mu_);
  static const std::string sql =
      std::string("SELECT ") + kColumns + " FROM leases WHERE sid=? ORDER BY issued_ms, role";
  return List(sql.c_str(), sid);
}

Result<bool> SqliteCredentialStore::Update(const char* sql, const std::string& role,
                                           const std::string& text, int64_t number,
                                           const std::string& doing) {
  Stmt q(*db_, sql);
  if (!q.ok()) return db_->Error(doing);
  // Every UPDATE here binds (text or number, role); the unused one is ignored by its SQL.
  q.Bind(1, text).Bind(2, number).Bind(3, role);
  if (q.Step() != kSqliteDone) return db_->Error(doing);
  if (db_->changes() == 1) return true;
  Stmt exists(*db_, "SELECT 1 FROM leases WHERE role=?");
  if (!exists.ok()) return db_->Error(doing);
  exists.Bind(1, role);
  int rc = exists.Step();
  if (rc == kSqliteDone) return NotFoundError("no credential lease for role " + role);
  if (rc != kSqliteRow) return db_->Error(doing);
  return false;
}

Result<bool> SqliteCredentialStore::BeginRevoke(const std::string& role,
                                                const std::string& reason) {
  MutexLock lock(mu_);
  return Update(
      "UPDATE leases SET state='revoking', revoke_reason=?1 WHERE ?2 IS NOT NULL AND role=?3"
      " AND state='active'",
      role, reason, 0, "revoking a lease");
}

Result<bool> SqliteCredentialStore::FinishRevoke(const std::string& role, int64_t now_ms) {
  MutexLock lock(mu_);
  return Update(
      "UPDATE leases SET state='revoked', revoked_ms=?2 WHERE ?1 IS NOT NULL AND role=?3"
      " AND state='revoking'",
      role, "", now_ms, "recording a revoked lease");
}

Result<bool> SqliteCredentialStore::Renew(const std::string& role, int64_t expires_ms) {
  MutexLock lock(mu_);
  return Update(
      "UPDATE leases SET expires_ms=?2 WHERE ?1 IS NOT NULL AND role=?3 AND state='active'", role,
      "", expires_ms, "renewing a lease");
}

}  // namespace custody::store

#include "store/sqlite/sqlite_identity_store.h"

#include <sqlite3.h>

#include <functional>
#include <future>

#include "store/internal/columns.h"
#include "store/internal/string_list.h"
#include "store/sqlite/sqlite_schema.h"

namespace custody::store {

using internal::DecodeStringList;
using internal::EncodeStringList;
using internal::JoinSpaces;
using internal::kAgentColumns;
using internal::kCodeColumns;
using internal::kConsentColumns;
using internal::kFamilyColumns;
using internal::kSessionColumns;
using internal::SplitSpaces;

using identity::Agent;
using identity::InitiatorVerification;
using identity::Session;
using identity::SigningKeyRecord;

namespace {

// Schema steps (store/sqlite/sqlite_schema.h): kSchemaSteps[i] takes identity.db from version i to
// i+1. Released steps never change; a layout change is a new step.
constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE IF NOT EXISTS agents(
  name TEXT PRIMARY KEY,
  description TEXT NOT NULL,
  environment TEXT NOT NULL,
  business_owner TEXT NOT NULL,
  technical_owner TEXT NOT NULL,
  sponsor TEXT NOT NULL,
  revocation_contact TEXT NOT NULL,
  grants TEXT NOT NULL,
  permissions TEXT NOT NULL,
  max_delegation_depth INTEGER NOT NULL,
  max_token_lifetime_s INTEGER NOT NULL,
  client_jwk TEXT NOT NULL,
  client_secret_sha256 TEXT NOT NULL,
  disabled INTEGER NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sessions(
  sid TEXT PRIMARY KEY,
  parent_sid TEXT,
  root_sid TEXT NOT NULL,
  depth INTEGER NOT NULL,
  max_depth INTEGER NOT NULL,
  agent TEXT NOT NULL,
  instance TEXT NOT NULL,
  initiator TEXT NOT NULL,
  initiator_issuer TEXT NOT NULL,
  verification TEXT NOT NULL,
  asserted_by TEXT NOT NULL,
  scopes TEXT NOT NULL,
  objective_digest TEXT NOT NULL,
  txn TEXT NOT NULL,
  jti TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  revoked INTEGER NOT NULL DEFAULT 0,
  revoked_at INTEGER NOT NULL DEFAULT 0,
  revoke_reason TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS sessions_parent ON sessions(parent_sid);
CREATE INDEX IF NOT EXISTS sessions_agent ON sessions(agent, revoked);
CREATE INDEX IF NOT EXISTS sessions_root ON sessions(root_sid);
CREATE TABLE IF NOT EXISTS revoked_jtis(jti TEXT PRIMARY KEY, expires_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS assertion_jtis(jti TEXT PRIMARY KEY, expires_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS signing_keys(
  kid TEXT PRIMARY KEY,
  private_pem TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  retired_at INTEGER NOT NULL,
  publish_until INTEGER NOT NULL);
)sql";
// Version 2: the authorization code flow's refresh token families (only SHA-256 hashes of the
// tokens), the sessions issued from each, and remembered consents.
constexpr const char* kSchemaV2 = R"sql(
CREATE TABLE refresh_families(
  family_id TEXT PRIMARY KEY,
  client_id TEXT NOT NULL,
  agent TEXT NOT NULL,
  instance TEXT NOT NULL,
  initiator TEXT NOT NULL,
  initiator_issuer TEXT NOT NULL,
  scopes TEXT NOT NULL,
  resource TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  revoked INTEGER NOT NULL DEFAULT 0,
  revoked_at INTEGER NOT NULL DEFAULT 0,
  revoke_reason TEXT NOT NULL DEFAULT '',
  current_sha256 TEXT NOT NULL);
CREATE TABLE refresh_tokens(token_sha256 TEXT PRIMARY KEY, family_id TEXT NOT NULL);
CREATE TABLE refresh_family_sessions(
  family_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  sid TEXT NOT NULL,
  PRIMARY KEY(family_id, seq));
CREATE TABLE consents(
  client_id TEXT NOT NULL,
  initiator_issuer TEXT NOT NULL,
  initiator TEXT NOT NULL,
  agent TEXT NOT NULL,
  scopes TEXT NOT NULL,
  granted_at INTEGER NOT NULL,
  PRIMARY KEY(client_id, initiator_issuer, initiator));
)sql";
// Version 3: authorization codes (keyed by their SHA-256), shared with the other nodes in
// PostgreSQL and here for the same code path; `reused` marks a redemption after the first.
constexpr const char* kSchemaV3 = R"sql(
CREATE TABLE authorization_codes(
  code_sha256 TEXT PRIMARY KEY,
  code_id TEXT NOT NULL,
  client_id TEXT NOT NULL,
  redirect_uri TEXT NOT NULL,
  code_challenge TEXT NOT NULL,
  resource TEXT NOT NULL,
  agent TEXT NOT NULL,
  scopes TEXT NOT NULL,
  subject TEXT NOT NULL,
  issuer TEXT NOT NULL,
  name TEXT NOT NULL,
  email TEXT NOT NULL,
  groups_json TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  used INTEGER NOT NULL DEFAULT 0,
  sid TEXT NOT NULL DEFAULT '',
  family_id TEXT NOT NULL DEFAULT '',
  reused INTEGER NOT NULL DEFAULT 0);
CREATE INDEX authorization_codes_expiry ON authorization_codes(expires_at);
)sql";
// Version 4: the browser's part of a sign-in and the approvers' sessions (by `kind` and the
// SHA-256 of the browser's secret), shared with the other nodes in PostgreSQL and here for the
// same code path.
constexpr const char* kSchemaV4 = R"sql(
CREATE TABLE browser_states(
  kind TEXT NOT NULL,
  key_sha256 TEXT NOT NULL,
  body TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  PRIMARY KEY(kind, key_sha256));
CREATE INDEX browser_states_expiry ON browser_states(expires_at);
)sql";
// Version 5: the expiry index the minutely purge of client assertion jtis deletes by. Without it
// the purge read the whole table (every assertion of the last minutes) while holding the store.
constexpr const char* kSchemaV5 = R"sql(
CREATE INDEX assertion_jtis_expiry ON assertion_jtis(expires_at);
)sql";
constexpr const char* kSchemaSteps[] = {kSchemaV1, kSchemaV2, kSchemaV3, kSchemaV4, kSchemaV5};

void BindAgent(Stmt& s, const Agent& a) {
  s.Bind(1, a.name)
      .Bind(2, a.description)
      .Bind(3, std::string(identity::EnvironmentName(a.environment)));
  s.Bind(4, a.business_owner).Bind(5, a.technical_owner).Bind(6, a.sponsor);
  s.Bind(7, a.revocation_contact).Bind(8, JoinSpaces(a.grants)).Bind(9, JoinSpaces(a.permissions));
  s.Bind(10, int64_t{a.max_delegation_depth}).Bind(11, a.max_token_lifetime_s);
  s.Bind(12, a.client_jwk).Bind(13, a.client_secret_sha256).Bind(14, int64_t{a.disabled ? 1 : 0});
  s.Bind(15, a.created_at).Bind(16, a.updated_at);
}

Result<Agent> ReadAgent(const Stmt& s) {
  Agent a;
  a.name = s.Text(0);
  a.description = s.Text(1);
  ASSIGN_OR_RETURN(a.environment, identity::ParseEnvironment(s.Text(2)));
  a.business_owner = s.Text(3);
  a.technical_owner = s.Text(4);
  a.sponsor = s.Text(5);
  a.revocation_contact = s.Text(6);
  a.grants = SplitSpaces(s.Text(7));
  a.permissions = SplitSpaces(s.Text(8));
  a.max_delegation_depth = static_cast<int>(s.Int(9));
  a.max_token_lifetime_s = s.Int(10);
  a.client_jwk = s.Text(11);
  a.client_secret_sha256 = s.Text(12);
  a.disabled = s.Int(13) != 0;
  a.created_at = s.Text(14);
  a.updated_at = s.Text(15);
  return a;
}

Session ReadSession(const Stmt& s) {
  Session x;
  x.sid = s.Text(0);
  x.parent_sid = s.Text(1);
  x.root_sid = s.Text(2);
  x.depth = static_cast<int>(s.Int(3));
  x.agent = s.Text(4);
  x.instance = s.Text(5);
  x.initiator = s.Text(6);
  x.initiator_issuer = s.Text(7);
  x.verification =
      s.Text(8) == "asserted" ? InitiatorVerification::kAsserted : InitiatorVerification::kVerified;
  x.asserted_by = s.Text(9);
  x.scopes = SplitSpaces(s.Text(10));
  x.objective_digest = s.Text(11);
  x.txn = s.Text(12);
  x.jti = s.Text(13);
  x.created_at = s.Int(14);
  x.expires_at = s.Int(15);
  x.revoked = s.Int(16) != 0;
  x.revoked_at = s.Int(17);
  x.revoke_reason = s.Text(18);
  x.max_depth = static_cast<int>(s.Int(19));
  return x;
}

// The session and its descendants (IdentityStore::SessionTree), read through `db`.
Result<std::vector<Session>> ReadTree(SqliteDb& db, const std::string& sid) {
  std::string sql = std::string(
                        "WITH RECURSIVE tree(sid, ord) AS (SELECT sid, 0 FROM sessions "
                        "WHERE sid=?1 UNION ALL SELECT s.sid, tree.ord + 1 FROM sessions "
                        "s JOIN tree ON s.parent_sid = tree.sid) SELECT ") +
                    kSessionColumns +
                    " FROM sessions WHERE sid IN (SELECT sid FROM tree) ORDER BY depth, "
                    "created_at, sid";
  Stmt s(db, sql.c_str());
  if (!s.ok()) return db.Error("prepare");
  s.Bind(1, sid);
  std::vector<Session> out;
  while (true) {
    int rc = s.Step();
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) return db.Error("read session tree");
    out.push_back(ReadSession(s));
  }
  if (out.empty()) return NotFoundError("no session " + sid);
  return out;
}

}  // namespace

Result<std::unique_ptr<SqliteIdentityStore>> SqliteIdentityStore::Open(const std::string& path) {
  constexpr const char* kWhat = "identity database";
  // Two connections: the writer, whose process owns the file (a second custody serve on this
  // data directory is refused), and a reader, so that token verification never waits behind a
  // write's fsync (WAL readers see the last commit, not the transaction in progress).
  SqliteDb::Options w;
  w.durability = Durability::kFull;
  w.exclusive = false;
  w.owner_lock_file = path + ".lock";
  ASSIGN_OR_RETURN(auto db, SqliteDb::Open(path, kWhat, w));
  RETURN_IF_ERROR(ApplySchema(db->raw(), kWhat, path, kSchemaSteps));
  SqliteDb::Options r;
  r.exclusive = false;
  r.create_if_missing = false;
  ASSIGN_OR_RETURN(auto reader, SqliteDb::Open(path, kWhat, r));
  RETURN_IF_ERROR(reader->Exec("PRAGMA query_only=ON"));
  return std::unique_ptr<SqliteIdentityStore>(
      new SqliteIdentityStore(std::move(db), std::move(reader)));
}

Status SqliteIdentityStore::CreateAgent(const Agent& agent) {
  MutexLock lock(mu_);
  std::string sql = std::string("INSERT INTO agents(") + kAgentColumns +
                    ") VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16)";
  Stmt s(*db_, sql.c_str());
  if (!s.ok()) return db_->Error("prepare");
  BindAgent(s, agent);
  int rc = s.Step();
  if (rc == SQLITE_CONSTRAINT) return AlreadyExistsError("agent \"" + agent.name + "\" exists");
  if (rc != SQLITE_DONE) return db_->Error("create agent");
  return OkStatus();
}

Status SqliteIdentityStore::UpdateAgent(const Agent& agent) {
  MutexLock lock(mu_);
  Stmt s(*db_,
         "UPDATE agents SET description=?2, environment=?3, business_owner=?4, "
         "technical_owner=?5, sponsor=?6, revocation_contact=?7, grants=?8, permissions=?9, "
         "max_delegation_depth=?10, max_token_lifetime_s=?11, client_jwk=?12, "
         "client_secret_sha256=?13, disabled=?14, created_at=?15, updated_at=?16 WHERE name=?1");
  if (!s.ok()) return db_->Error("prepare");
  BindAgent(s, agent);
  if (s.Step() != SQLITE_DONE) return db_->Error("update agent");
  if (db_->changes() == 0) return NotFoundError("no agent \"" + agent.name + "\"");
  return OkStatus();
}

Result<Agent> SqliteIdentityStore::GetAgent(const std::string& name) {
  MutexLock lock(read_mu_);
  std::string sql = std::string("SELECT ") + kAgentColumns + " FROM agents WHERE name=?1";
  Stmt s(*reader_, sql.c_str());
  if (!s.ok()) return reader_->Error("prepare");
  s.Bind(1, name);
  int rc = s.Step();
  if (rc == SQLITE_DONE) return NotFoundError("no agent \"" + name + "\"");
  if (rc != SQLITE_ROW) return reader_->Error("read agent");
  return ReadAgent(s);
}

Result<std::vector<Agent>> SqliteIdentityStore::ListAgents() {
  MutexLock lock(read_mu_);
  std::string sql = std::string("SELECT ") + kAgentColumns + " FROM agents ORDER BY name";
  Stmt s(*reader_, sql.c_str());
  if (!s.ok()) return reader_->Error("prepare");
  std::vector<Agent> out;
  while (true) {
    int rc = s.Step();
    if (rc == SQLITE_DONE) return out;
    if (rc != SQLITE_ROW) return reader_->Error("list agents");
    ASSIGN_OR_RETURN(Agent a, ReadAgent(s));
    out.push_back(std::move(a));
  }
}

SqliteIdentityStore::~SqliteIdentityStore() {
  {
    MutexLock lock(queue_mu_);
    stopping_ = true;
    queue_cv_.NotifyAll();
  }
  if (writer_.joinable()) writer_.join();  // the writer stores what is queued first
}

Status SqliteIdentityStore::CreateSession(const Session& x) {
  MutexLock lock(mu_);
  return WriteBatchLocked({}, std::span<const Session>(&x, 1)).front();
}

void SqliteIdentityStore::CreateSessionAsync(Session session, std::function<void(Status)> done) {
  {
    MutexLock lock(queue_mu_);
    if (!stopping_) {
      if (!writer_.joinable()) writer_ = std::thread([this] { WriterLoop(); });
      queue_.push_back(QueuedSession{std::move(session), std::move(done)});
      queue_cv_.NotifyOne();
      return;
    }
  }
  done(UnavailableError("identity database: closing; session " + session.sid + " not stored"));
}

Status SqliteIdentityStore::UseAssertionJti(const std::string& jti, int64_t expires_at) {
  std::promise<Status> answer;
  auto f = answer.get_future();
  UseAssertionJtiAsync(jti, expires_at, [&answer](Status st) { answer.set_value(std::move(st)); });
  return f.get();
}

void SqliteIdentityStore::UseAssertionJtiAsync(std::string jti, int64_t expires_at,
                                               std::function<void(Status)> done) {
  {
    MutexLock lock(queue_mu_);
    if (!stopping_) {
      // A replay racing its first use is refused here; once that use is committed, the
      // table's primary key refuses it (and one from another store on the same file).
      if (!jtis_in_flight_.insert(jti).second) {
        lock.Unlock();
        return done(AlreadyExistsError("client assertion jti already used"));
      }
      if (!writer_.joinable()) writer_ = std::thread([this] { WriterLoop(); });
      jti_queue_.push_back(QueuedJti{std::move(jti), expires_at, std::move(done)});
      queue_cv_.NotifyOne();
      return;
    }
  }
  done(UnavailableError("identity database: closing; client assertion jti not stored"));
}

Status SqliteIdentityStore::PurgeAssertionJtis(int64_t before) {
  MutexLock lock(mu_);
  Stmt s(*db_, "DELETE FROM assertion_jtis WHERE expires_at < ?1");
  s.Bind(1, before);
  if (s.Step() != SQLITE_DONE) return db_->Error("purge assertion jtis");
  return OkStatus();
}

void SqliteIdentityStore::WriterLoop() {
  std::vector<QueuedSession> batch;
  std::vector<QueuedJti> jtis;
  std::vector<Session> sessions;
  while (true) {
    {
      MutexLock lock(queue_mu_);
      queue_cv_.Wait(queue_mu_, [&]() REQUIRES(queue_mu_) {
        return stopping_ || !queue_.empty() || !jti_queue_.empty();
      });
      if (queue_.empty() && jti_queue_.empty()) return;  // stopping, and nothing is left
      batch.swap(queue_);
      jtis.swap(jti_queue_);
    }
    // Whatever queued while the last batch was being committed goes in this one: under load
    // many sessions and jtis share one transaction and its fsync.
    sessions.clear();
    for (QueuedSession& q : batch) sessions.push_back(std::move(q.session));
    std::vector<Status> each;
    {
      MutexLock lock(mu_);
      each = WriteBatchLocked(jtis, sessions);
    }
    if (!jtis.empty()) {
      // Committed (the primary key refuses a replay from now on) or failed (nothing stored:
      // the same assertion may be tried again).
      MutexLock lock(queue_mu_);
      for (const QueuedJti& q : jtis) jtis_in_flight_.erase(q.jti);
    }
    for (size_t i = 0; i < jtis.size(); ++i) jtis[i].done(std::move(each[i]));
    for (size_t i = 0; i < batch.size(); ++i) batch[i].done(std::move(each[jtis.size() + i]));
    jtis.clear();
    batch.clear();
  }
}

std::vector<Status> SqliteIdentityStore::WriteBatchLocked(std::span<const QueuedJti> jtis,
                                                          std::span<const Session> sessions) {
  auto all = [&](const Status& st) {
    return std::vector<Status>(jtis.size() + sessions.size(), st);
  };
  if (Status st = db_->Exec("BEGIN IMMEDIATE"); !st.ok()) return all(st);
  auto abandon = [&](const Status& st) REQUIRES(mu_) {
    // `st` is the error to report. Should the rollback fail too, the transaction stays open
    // and the next BEGIN fails, reported there.
    if (sqlite3_get_autocommit(db_->raw()) == 0) (void)db_->Exec("ROLLBACK");
    return all(st);
  };
  std::vector<Status> each;
  each.reserve(jtis.size() + sessions.size());
  for (const QueuedJti& q : jtis) {
    Stmt s(*db_, "INSERT INTO assertion_jtis(jti, expires_at) VALUES(?1, ?2)");
    if (!s.ok()) return abandon(db_->Error("prepare"));
    s.Bind(1, q.jti).Bind(2, q.expires_at);
    int rc = s.Step();
    if (rc == SQLITE_CONSTRAINT) {
      each.push_back(AlreadyExistsError("client assertion jti already used"));
      continue;
    }
    if (rc != SQLITE_DONE) return abandon(db_->Error("record assertion jti"));
    each.push_back(OkStatus());
  }
  for (const Session& x : sessions) {
    Status st = InsertSessionLocked(x);
    // A refused session is that request's answer; a failed write (a full disk) is everyone's.
    const bool refused =
        st.code() == StatusCode::kAlreadyExists || st.code() == StatusCode::kFailedPrecondition;
    if (!st.ok() && !refused) return abandon(st);
    each.push_back(std::move(st));
  }
  if (Status st = db_->Exec("COMMIT"); !st.ok()) return abandon(st);
  return each;
}

Status SqliteIdentityStore::InsertSessionLocked(const Session& x) {
  // The parent revoked, or the agent disabled, since the exchange verified them: refused, in
  // the same transaction as the insert (see IdentityStore::CreateSession).
  Stmt c(*db_,
         "SELECT (SELECT revoked FROM sessions WHERE sid=?1), "
         "(SELECT disabled FROM agents WHERE name=?2)");
  if (!c.ok()) return db_->Error("prepare");
  c.Bind(1, x.parent_sid).Bind(2, x.agent);
  if (c.Step() != SQLITE_ROW) return db_->Error("check session parent");
  if (c.Int(0) != 0) {
    return FailedPreconditionError("session " + x.parent_sid + " has been revoked");
  }
  if (c.Int(1) != 0) return FailedPreconditionError("agent \"" + x.agent + "\" is disabled");
  c.Reset();

  std::string sql =
      std::string("INSERT INTO sessions(") + kSessionColumns +
      ") VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20)";
  Stmt s(*db_, sql.c_str());
  if (!s.ok()) return db_->Error("prepare");
  s.Bind(1, x.sid).BindNullIfEmpty(2, x.parent_sid).Bind(3, x.root_sid).Bind(4, int64_t{x.depth});
  s.Bind(5, x.agent).Bind(6, x.instance).Bind(7, x.initiator).Bind(8, x.initiator_issuer);
  s.Bind(9,
         std::string(x.verification == InitiatorVerification::kAsserted ? "asserted" : "verified"));
  s.Bind(10, x.asserted_by).Bind(11, JoinSpaces(x.scopes)).Bind(12, x.objective_digest);
  s.Bind(13, x.txn).Bind(14, x.jti).Bind(15, x.created_at).Bind(16, x.expires_at);
  s.Bind(17, int64_t{x.revoked ? 1 : 0}).Bind(18, x.revoked_at).Bind(19, x.revoke_reason);
  s.Bind(20, int64_t{x.max_depth});
  int rc = s.Step();
  if (rc == SQLITE_CONSTRAINT) return AlreadyExistsError("session " + x.sid + " exists");
  if (rc != SQLITE_DONE) return db_->Error("create session");
  return OkStatus();
}

Result<Session> SqliteIdentityStore::GetSession(const std::string& sid) {
  MutexLock lock(read_mu_);
  std::string sql = std::string("SELECT ") + kSessionColumns + " FROM sessions WHERE sid=?1";
  Stmt s(*reader_, sql.c_str());
  if (!s.ok()) return reader_->Error("prepare");
  s.Bind(1, sid);
  int rc = s.Step();
  if (rc == SQLITE_DONE) return NotFoundError("no session " + sid);
  if (rc != SQLITE_ROW) return reader_->Error("read session");
  return ReadSession(s);
}

Result<std::vector<Session>> SqliteIdentityStore::SessionTree(const std::string& sid) {
  MutexLock lock(read_mu_);
  return ReadTree(*reader_, sid);
}

Result<std::vector<std::string>> SqliteIdentityStore::RevokeTreeLocked(const std::string& sid,
                                                                       const std::string& reason,
                                                                       int64_t now) {
  ASSIGN_OR_RETURN(std::vector<Session> tree, ReadTree(*db_, sid));
  std::vector<std::string> revoked;
  for (const Session& x : tree) {
    Stmt u(*db_,
           "UPDATE sessions SET revoked=1, revoked_at=?2, revoke_reason=?3 WHERE sid=?1 AND "
           "revoked=0");
    u.Bind(1, x.sid).Bind(2, now).Bind(3, reason);
    if (u.Step() != SQLITE_DONE) return db_->Error("revoke session");
    if (db_->changes() > 0) revoked.push_back(x.sid);
  }
  return revoked;
}

Result<std::vector<std::string>> SqliteIdentityStore::RevokeSessionTree(const std::string& sid,
                                                                        const std::string& reason,
                                                                        int64_t now) {
  MutexLock lock(mu_);
  RETURN_IF_ERROR(db_->Exec("BEGIN IMMEDIATE"));
  auto r = RevokeTreeLocked(sid, reason, now);
  RETURN_IF_ERROR(db_->Exec(r.ok() ? "COMMIT" : "ROLLBACK"));
  return r;
}

Result<std::vector<std::string>> SqliteIdentityStore::RevokeAgentSessions(const std::string& agent,
                                                                          const std::string& reason,
                                                                          int64_t now) {
  MutexLock lock(mu_);
  std::vector<std::string> roots;
  {
    Stmt s(*db_, "SELECT sid FROM sessions WHERE agent=?1 AND revoked=0");
    if (!s.ok()) return db_->Error("prepare");
    s.Bind(1, agent);
    while (s.Step() == SQLITE_ROW) roots.push_back(s.Text(0));
  }
  RETURN_IF_ERROR(db_->Exec("BEGIN IMMEDIATE"));
  std::vector<std::string> all;
  for (const auto& sid : roots) {
    auto r = RevokeTreeLocked(sid, reason, now);
    if (!r.ok()) {
      RETURN_IF_ERROR(db_->Exec("ROLLBACK"));
      return r.status();
    }
    all.insert(all.end(), r->begin(), r->end());
  }
  RETURN_IF_ERROR(db_->Exec("COMMIT"));
  return all;
}

Status SqliteIdentityStore::RevokeJti(const std::string& jti, int64_t expires_at) {
  MutexLock lock(mu_);
  Stmt s(*db_, "INSERT OR IGNORE INTO revoked_jtis(jti, expires_at) VALUES(?1, ?2)");
  s.Bind(1, jti).Bind(2, expires_at);
  if (s.Step() != SQLITE_DONE) return db_->Error("revoke jti");
  return OkStatus();
}

Result<bool> SqliteIdentityStore::IsJtiRevoked(const std::string& jti) {
  MutexLock lock(read_mu_);
  Stmt s(*reader_, "SELECT 1 FROM revoked_jtis WHERE jti=?1");
  s.Bind(1, jti);
  int rc = s.Step();
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return reader_->Error("read revoked jti");
}

Status SqliteIdentityStore::PutSigningKey(const SigningKeyRecord& k) {
  MutexLock lock(mu_);
  Stmt s(*db_,
         "INSERT OR REPLACE INTO signing_keys(kid, private_pem, created_at, retired_at, "
         "publish_until) VALUES(?1, ?2, ?3, ?4, ?5)");
  s.Bind(1, k.kid).Bind(2, k.private_pem).Bind(3, k.created_at).Bind(4, k.retired_at);
  s.Bind(5, k.publish_until);
  if (s.Step() != SQLITE_DONE) return db_->Error("store signing key");
  return OkStatus();
}

Result<std::vector<SigningKeyRecord>> SqliteIdentityStore::ListSigningKeys() {
  MutexLock lock(read_mu_);
  Stmt s(*reader_,
         "SELECT kid, private_pem, created_at, retired_at, publish_until FROM signing_keys ORDER "
         "BY created_at, kid");
  std::vector<SigningKeyRecord> out;
  while (true) {
    int rc = s.Step();
    if (rc == SQLITE_DONE) return out;
    if (rc != SQLITE_ROW) return reader_->Error("list signing keys");
    out.push_back(SigningKeyRecord{s.Text(0), s.Text(1), s.Int(2), s.Int(3), s.Int(4)});
  }
}

// ---------------------------------------------------------------------------------------------
// The authorization code flow: refresh token families and consents. Refresh reads go through the
// writer: a rotation must see the last one.

namespace {}  // namespace

Result<identity::RefreshFamily> SqliteIdentityStore::ReadFamilyLocked(const std::string& family_id,
                                                                      std::string* current,
                                                                      bool with_sessions) {
  std::string sql =
      std::string("SELECT ") + kFamilyColumns + " FROM refresh_families WHERE family_id=?1";
  Stmt s(*db_, sql.c_str());
  if (!s.ok()) return db_->Error("prepare");
  s.Bind(1, family_id);
  int rc = s.Step();
  if (rc == SQLITE_DONE) return NotFoundError("no refresh family " + family_id);
  if (rc != SQLITE_ROW) return db_->Error("read refresh family");
  identity::RefreshFamily f;
  f.family_id = s.Text(0);
  f.client_id = s.Text(1);
  f.agent = s.Text(2);
  f.instance = s.Text(3);
  f.initiator = s.Text(4);
  f.initiator_issuer = s.Text(5);
  f.scopes = SplitSpaces(s.Text(6));
  f.resource = s.Text(7);
  f.created_at = s.Int(8);
  f.expires_at = s.Int(9);
  f.revoked = s.Int(10) != 0;
  f.revoked_at = s.Int(11);
  f.revoke_reason = s.Text(12);
  if (current != nullptr) *current = s.Text(13);
  s.Reset();
  if (!with_sessions) return f;
  Stmt q(*db_, "SELECT sid FROM refresh_family_sessions WHERE family_id=?1 ORDER BY seq");
  if (!q.ok()) return db_->Error("prepare");
  q.Bind(1, family_id);
  while (true) {
    rc = q.Step();
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) return db_->Error("read refresh family sessions");
    f.sessions.push_back(q.Text(0));
  }
  return f;
}

Status SqliteIdentityStore::CreateRefreshFamily(const identity::RefreshFamily& f,
                                                const std::string& token_sha256) {
  MutexLock lock(mu_);
  RETURN_IF_ERROR(db_->Exec("BEGIN IMMEDIATE"));
  auto fail = [&](Status st) REQUIRES(mu_) {
    (void)db_->Exec("ROLLBACK");
    return st;
  };
  std::string sql = std::string("INSERT INTO refresh_families(") + kFamilyColumns +
                    ") VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14)";
  Stmt s(*db_, sql.c_str());
  if (!s.ok()) return fail(db_->Error("prepare"));
  s.Bind(1, f.family_id).Bind(2, f.client_id).Bind(3, f.agent).Bind(4, f.instance);
  s.Bind(5, f.initiator).Bind(6, f.initiator_issuer).Bind(7, JoinSpaces(f.scopes));
  s.Bind(8, f.resource).Bind(9, f.created_at).Bind(10, f.expires_at);
  s.Bind(11, int64_t{f.revoked ? 1 : 0}).Bind(12, f.revoked_at).Bind(13, f.revoke_reason);
  s.Bind(14, token_sha256);
  int rc = s.Step();
  if (rc == SQLITE_CONSTRAINT) {
    return fail(AlreadyExistsError("refresh family " + f.family_id + " exists"));
  }
  if (rc != SQLITE_DONE) return fail(db_->Error("create refresh family"));
  s.Reset();
  Stmt t(*db_, "INSERT INTO refresh_tokens(token_sha256, family_id) VALUES(?1, ?2)");
  if (!t.ok()) return fail(db_->Error("prepare"));
  t.Bind(1, token_sha256).Bind(2, f.family_id);
  rc = t.Step();
  if (rc == SQLITE_CONSTRAINT) return fail(AlreadyExistsError("refresh token hash exists"));
  if (rc != SQLITE_DONE) return fail(db_->Error("store refresh token hash"));
  t.Reset();
  int64_t seq = 0;
  for (const std::string& sid : f.sessions) {
    Stmt a(*db_, "INSERT INTO refresh_family_sessions(family_id, seq, sid) VALUES(?1, ?2, ?3)");
    a.Bind(1, f.family_id).Bind(2, seq++).Bind(3, sid);
    if (a.Step() != SQLITE_DONE) return fail(db_->Error("store refresh family session"));
  }
  return db_->Exec("COMMIT");
}

Result<identity::RefreshLookup> SqliteIdentityStore::FindRefreshToken(
    const std::string& token_sha256) {
  MutexLock lock(mu_);
  std::string family_id;
  {
    Stmt s(*db_, "SELECT family_id FROM refresh_tokens WHERE token_sha256=?1");
    if (!s.ok()) return db_->Error("prepare");
    s.Bind(1, token_sha256);
    int rc = s.Step();
    if (rc == SQLITE_DONE) return NotFoundError("unknown refresh token");
    if (rc != SQLITE_ROW) return db_->Error("read refresh token");
    family_id = s.Text(0);
  }
  std::string current;
  ASSIGN_OR_RETURN(identity::RefreshFamily f,
                   ReadFamilyLocked(family_id, &current, /*with_sessions=*/false));
  return identity::RefreshLookup{std::move(f), current == token_sha256};
}

Status SqliteIdentityStore::RotateRefreshToken(const std::string& family_id,
                                               const std::string& presented_sha256,
                                               const std::string& next_sha256,
                                               const std::string& sid) {
  MutexLock lock(mu_);
  RETURN_IF_ERROR(db_->Exec("BEGIN IMMEDIATE"));
  auto fail = [&](Status st) REQUIRES(mu_) {
    (void)db_->Exec("ROLLBACK");
    return st;
  };
  // The compare-and-set: a token rotated out by a concurrent refresh, or a revoked family,
  // matches no row. The family's sessions are not read: the refresh has the family at hand.
  Stmt u(*db_,
         "UPDATE refresh_families SET current_sha256=?3 WHERE family_id=?1 AND "
         "current_sha256=?2 AND revoked=0");
  if (!u.ok()) return fail(db_->Error("prepare"));
  u.Bind(1, family_id).Bind(2, presented_sha256).Bind(3, next_sha256);
  if (u.Step() != SQLITE_DONE) return fail(db_->Error("rotate refresh token"));
  if (db_->changes() == 0) {
    u.Reset();
    Stmt q(*db_, "SELECT revoked FROM refresh_families WHERE family_id=?1");
    if (!q.ok()) return fail(db_->Error("prepare"));
    q.Bind(1, family_id);
    int rc = q.Step();
    if (rc == SQLITE_DONE) return fail(NotFoundError("no refresh family " + family_id));
    if (rc != SQLITE_ROW) return fail(db_->Error("read refresh family"));
    if (q.Int(0) != 0) {
      return fail(FailedPreconditionError("refresh family " + family_id + " is revoked"));
    }
    return fail(FailedPreconditionError("refresh token is no longer current"));
  }
  u.Reset();
  Stmt t(*db_, "INSERT INTO refresh_tokens(token_sha256, family_id) VALUES(?1, ?2)");
  if (!t.ok()) return fail(db_->Error("prepare"));
  t.Bind(1, next_sha256).Bind(2, family_id);
  int rc = t.Step();
  if (rc == SQLITE_CONSTRAINT) return fail(AlreadyExistsError("refresh token hash exists"));
  if (rc != SQLITE_DONE) return fail(db_->Error("store refresh token hash"));
  t.Reset();
  // The next seq from the last one on the (family_id, seq) key, not a count of the history.
  Stmt a(*db_,
         "INSERT INTO refresh_family_sessions(family_id, seq, sid) VALUES(?1, COALESCE((SELECT "
         "seq FROM refresh_family_sessions WHERE family_id=?1 ORDER BY seq DESC LIMIT 1) + 1, "
         "0), ?2)");
  if (!a.ok()) return fail(db_->Error("prepare"));
  a.Bind(1, family_id).Bind(2, sid);
  if (a.Step() != SQLITE_DONE) return fail(db_->Error("store refresh family session"));
  a.Reset();
  return db_->Exec("COMMIT");
}

Result<identity::RefreshFamily> SqliteIdentityStore::RevokeRefreshFamily(
    const std::string& family_id, const std::string& reason, int64_t now) {
  MutexLock lock(mu_);
  Stmt u(*db_,
         "UPDATE refresh_families SET revoked=1, revoked_at=?2, revoke_reason=?3 WHERE "
         "family_id=?1 AND revoked=0");
  if (!u.ok()) return db_->Error("prepare");
  u.Bind(1, family_id).Bind(2, now).Bind(3, reason);
  if (u.Step() != SQLITE_DONE) return db_->Error("revoke refresh family");
  u.Reset();
  return ReadFamilyLocked(family_id, nullptr, /*with_sessions=*/true);
}

namespace {

identity::AuthorizationCode ReadCode(const Stmt& s) {
  identity::AuthorizationCode c;
  c.code_id = s.Text(0);
  c.client_id = s.Text(1);
  c.redirect_uri = s.Text(2);
  c.code_challenge = s.Text(3);
  c.resource = s.Text(4);
  c.agent = s.Text(5);
  c.scopes = SplitSpaces(s.Text(6));
  c.subject = s.Text(7);
  c.issuer = s.Text(8);
  c.name = s.Text(9);
  c.email = s.Text(10);
  c.groups = DecodeStringList(s.Text(11));
  c.expires_at = s.Int(12);
  c.used = s.Int(13) != 0;
  c.sid = s.Text(14);
  c.family_id = s.Text(15);
  return c;
}

}  // namespace

Status SqliteIdentityStore::CreateAuthorizationCode(const identity::AuthorizationCode& c,
                                                    const std::string& code_sha256) {
  MutexLock lock(mu_);
  std::string sql = std::string("INSERT INTO authorization_codes(") + kCodeColumns +
                    ", code_sha256) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,"
                    "?16,?17)";
  Stmt s(*db_, sql.c_str());
  if (!s.ok()) return db_->Error("prepare");
  s.Bind(1, c.code_id).Bind(2, c.client_id).Bind(3, c.redirect_uri).Bind(4, c.code_challenge);
  s.Bind(5, c.resource).Bind(6, c.agent).Bind(7, JoinSpaces(c.scopes)).Bind(8, c.subject);
  s.Bind(9, c.issuer).Bind(10, c.name).Bind(11, c.email).Bind(12, EncodeStringList(c.groups));
  s.Bind(13, c.expires_at).Bind(14, int64_t{c.used ? 1 : 0}).Bind(15, c.sid);
  s.Bind(16, c.family_id).Bind(17, code_sha256);
  int rc = s.Step();
  if (rc == SQLITE_CONSTRAINT) return AlreadyExistsError("authorization code hash exists");
  if (rc != SQLITE_DONE) return db_->Error("store authorization code");
  return OkStatus();
}

Result<identity::CodeRedemption> SqliteIdentityStore::RedeemAuthorizationCode(
    const std::string& code_sha256) {
  // The writer's mutex makes the read and the mark one step (the file has one process).
  MutexLock lock(mu_);
  identity::CodeRedemption out;
  {
    std::string sql =
        std::string("SELECT ") + kCodeColumns + " FROM authorization_codes WHERE code_sha256=?1";
    Stmt s(*db_, sql.c_str());
    if (!s.ok()) return db_->Error("prepare");
    s.Bind(1, code_sha256);
    int rc = s.Step();
    if (rc == SQLITE_DONE) return NotFoundError("unknown authorization code");
    if (rc != SQLITE_ROW) return db_->Error("read authorization code");
    out.code = ReadCode(s);
  }
  out.first = !out.code.used;
  Stmt u(*db_, "UPDATE authorization_codes SET reused=used, used=1 WHERE code_sha256=?1");
  if (!u.ok()) return db_->Error("prepare");
  u.Bind(1, code_sha256);
  if (u.Step() != SQLITE_DONE) return db_->Error("redeem authorization code");
  out.code.used = true;
  return out;
}

Result<bool> SqliteIdentityStore::NoteAuthorizationCodeIssued(const std::string& code_sha256,
                                                              const std::string& sid,
                                                              const std::string& family_id) {
  MutexLock lock(mu_);
  Stmt u(*db_, "UPDATE authorization_codes SET sid=?2, family_id=?3 WHERE code_sha256=?1");
  if (!u.ok()) return db_->Error("prepare");
  u.Bind(1, code_sha256).Bind(2, sid).Bind(3, family_id);
  if (u.Step() != SQLITE_DONE) return db_->Error("note authorization code issuance");
  if (db_->changes() == 0) return NotFoundError("unknown authorization code");
  u.Reset();
  Stmt q(*db_, "SELECT reused FROM authorization_codes WHERE code_sha256=?1");
  if (!q.ok()) return db_->Error("prepare");
  q.Bind(1, code_sha256);
  if (q.Step() != SQLITE_ROW) return db_->Error("read authorization code");
  return q.Int(0) != 0;
}

Status SqliteIdentityStore::PurgeAuthorizationCodes(int64_t now, int64_t used_grace_s) {
  MutexLock lock(mu_);
  Stmt s(*db_,
         "DELETE FROM authorization_codes WHERE expires_at + (CASE WHEN used=1 THEN ?2 ELSE 0 "
         "END) <= ?1");
  if (!s.ok()) return db_->Error("prepare");
  s.Bind(1, now).Bind(2, used_grace_s);
  if (s.Step() != SQLITE_DONE) return db_->Error("purge authorization codes");
  return OkStatus();
}

Status SqliteIdentityStore::PutBrowserState(const std::string& kind, const std::string& key_sha256,
                                            const std::string& body, int64_t expires_at) {
  MutexLock lock(mu_);
  Stmt s(*db_,
         "INSERT INTO browser_states(kind, key_sha256, body, expires_at) VALUES(?1, ?2, ?3, ?4)");
  if (!s.ok()) return db_->Error("prepare");
  s.Bind(1, kind).Bind(2, key_sha256).Bind(3, body).Bind(4, expires_at);
  int rc = s.Step();
  if (rc == SQLITE_CONSTRAINT) return AlreadyExistsError("browser state exists");
  if (rc != SQLITE_DONE) return db_->Error("store browser state");
  return OkStatus();
}

Result<std::string> SqliteIdentityStore::TakeBrowserState(const std::string& kind,
                                                          const std::string& key_sha256,
                                                          int64_t now) {
  // The writer's mutex makes the read and the delete one step (the file has one process).
  MutexLock lock(mu_);
  Stmt s(*db_,
         "DELETE FROM browser_states WHERE kind=?1 AND key_sha256=?2 RETURNING body, expires_at");
  if (!s.ok()) return db_->Error("prepare");
  s.Bind(1, kind).Bind(2, key_sha256);
  int rc = s.Step();
  if (rc == SQLITE_DONE) return NotFoundError("unknown browser state");
  if (rc != SQLITE_ROW) return db_->Error("take browser state");
  std::string body = s.Text(0);
  int64_t expires_at = s.Int(1);
  if (s.Step() != SQLITE_DONE) return db_->Error("take browser state");
  if (expires_at <= now) return NotFoundError("unknown browser state");
  return body;
}

Result<std::string> SqliteIdentityStore::GetBrowserState(const std::string& kind,
                                                         const std::string& key_sha256,
                                                         int64_t now) {
  MutexLock lock(read_mu_);
  Stmt s(*reader_,
         "SELECT body FROM browser_states WHERE kind=?1 AND key_sha256=?2 AND expires_at>?3");
  if (!s.ok()) return reader_->Error("prepare");
  s.Bind(1, kind).Bind(2, key_sha256).Bind(3, now);
  int rc = s.Step();
  if (rc == SQLITE_DONE) return NotFoundError("unknown browser state");
  if (rc != SQLITE_ROW) return reader_->Error("read browser state");
  return s.Text(0);
}

Status SqliteIdentityStore::PurgeBrowserStates(int64_t now) {
  MutexLock lock(mu_);
  Stmt s(*db_, "DELETE FROM browser_states WHERE expires_at <= ?1");
  if (!s.ok()) return db_->Error("prepare");
  s.Bind(1, now);
  if (s.Step() != SQLITE_DONE) return db_->Error("purge browser states");
  return OkStatus();
}

Status SqliteIdentityStore::PutConsent(const identity::Consent& c) {
  MutexLock lock(mu_);
  Stmt s(*db_,
         "INSERT OR REPLACE INTO consents(client_id, initiator_issuer, initiator, agent, scopes, "
         "granted_at) VALUES(?1, ?2, ?3, ?4, ?5, ?6)");
  if (!s.ok()) return db_->Error("prepare");
  s.Bind(1, c.client_id).Bind(2, c.initiator_issuer).Bind(3, c.initiator).Bind(4, c.agent);
  s.Bind(5, JoinSpaces(c.scopes)).Bind(6, c.granted_at);
  if (s.Step() != SQLITE_DONE) return db_->Error("store consent");
  return OkStatus();
}

namespace {

identity::Consent ReadConsent(const Stmt& s) {
  identity::Consent c;
  c.client_id = s.Text(0);
  c.initiator_issuer = s.Text(1);
  c.initiator = s.Text(2);
  c.agent = s.Text(3);
  c.scopes = SplitSpaces(s.Text(4));
  c.granted_at = s.Int(5);
  return c;
}

}  // namespace

Result<identity::Consent> SqliteIdentityStore::GetConsent(const std::string& initiator_issuer,
                                                          const std::string& initiator,
                                                          const std::string& client_id) {
  MutexLock lock(read_mu_);
  std::string sql = std::string("SELECT ") + kConsentColumns +
                    " FROM consents WHERE client_id=?1 AND initiator_issuer=?2 AND initiator=?3";
  Stmt s(*reader_, sql.c_str());
  if (!s.ok()) return reader_->Error("prepare");
  s.Bind(1, client_id).Bind(2, initiator_issuer).Bind(3, initiator);
  int rc = s.Step();
  if (rc == SQLITE_DONE) return NotFoundError("no consent");
  if (rc != SQLITE_ROW) return reader_->Error("read consent");
  return ReadConsent(s);
}

Result<std::vector<identity::Consent>> SqliteIdentityStore::ListConsents() {
  MutexLock lock(read_mu_);
  std::string sql = std::string("SELECT ") + kConsentColumns +
                    " FROM consents ORDER BY client_id, initiator_issuer, initiator";
  Stmt s(*reader_, sql.c_str());
  if (!s.ok()) return reader_->Error("prepare");
  std::vector<identity::Consent> out;
  while (true) {
    int rc = s.Step();
    if (rc == SQLITE_DONE) return out;
    if (rc != SQLITE_ROW) return reader_->Error("list consents");
    out.push_back(ReadConsent(s));
  }
}

Status SqliteIdentityStore::DeleteConsent(const std::string& initiator_issuer,
                                          const std::string& initiator,
                                          const std::string& client_id) {
  MutexLock lock(mu_);
  Stmt s(*db_, "DELETE FROM consents WHERE client_id=?1 AND initiator_issuer=?2 AND initiator=?3");
  if (!s.ok()) return db_->Error("prepare");
  s.Bind(1, client_id).Bind(2, initiator_issuer).Bind(3, initiator);
  if (s.Step() != SQLITE_DONE) return db_->Error("delete consent");
  if (db_->changes() == 0) return NotFoundError("no consent");
  return OkStatus();
}

}  // namespace custody::store

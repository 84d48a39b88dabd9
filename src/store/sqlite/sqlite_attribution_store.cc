#include "store/sqlite/sqlite_attribution_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <limits>

#include "store/internal/columns.h"

namespace custody::store {

using internal::kActionColumns;
using internal::kApprovalColumns;
namespace {

// Schema steps (store/sqlite_schema.h): kSchemaSteps[i] takes attribution.db from version i to
// i+1. Released steps never change; a layout change is a new step.
constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT OR IGNORE INTO meta(key, value) VALUES('schema_version', '1');
CREATE TABLE IF NOT EXISTS policy_sets(
  hash TEXT PRIMARY KEY,
  policies TEXT NOT NULL,
  entities TEXT NOT NULL,
  published_ms INTEGER NOT NULL,
  published_by TEXT NOT NULL,
  ledger_index INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS actions(
  action_id TEXT PRIMARY KEY,
  decision_index INTEGER NOT NULL,
  outcome_index INTEGER NOT NULL DEFAULT -1,
  sid TEXT NOT NULL,
  root_sid TEXT NOT NULL,
  agent TEXT NOT NULL,
  initiator TEXT NOT NULL,
  action TEXT NOT NULL,
  target TEXT NOT NULL,
  decision TEXT NOT NULL,
  trace_id TEXT NOT NULL,
  span_id TEXT NOT NULL,
  txn TEXT NOT NULL,
  time_ms INTEGER NOT NULL,
  status TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS actions_sid ON actions(sid, time_ms);
CREATE INDEX IF NOT EXISTS actions_root ON actions(root_sid, time_ms);
CREATE INDEX IF NOT EXISTS actions_agent ON actions(agent, time_ms);
CREATE INDEX IF NOT EXISTS actions_initiator ON actions(initiator, time_ms);
CREATE INDEX IF NOT EXISTS actions_trace ON actions(trace_id, span_id);
CREATE INDEX IF NOT EXISTS actions_txn ON actions(txn, time_ms);
CREATE INDEX IF NOT EXISTS actions_target ON actions(target, time_ms);
CREATE INDEX IF NOT EXISTS actions_time ON actions(time_ms);
CREATE TABLE IF NOT EXISTS tool_usage(
  agent TEXT NOT NULL,
  target TEXT NOT NULL,
  first_ms INTEGER NOT NULL,
  PRIMARY KEY(agent, target)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS containments(
  event_id TEXT PRIMARY KEY,
  scope TEXT NOT NULL,
  subject TEXT NOT NULL,
  reason TEXT NOT NULL,
  trigger_action TEXT NOT NULL,
  by TEXT NOT NULL,
  time_ms INTEGER NOT NULL,
  ledger_index INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS containments_subject ON containments(subject);
)sql";
// Session counters (AttributionStore::CountCall): one row per session, its distinct targets, and
// per session the millisecond of each recent call with the number of the first call made then.
// Written only by CountCall: a single node counts in memory, so nothing is backfilled here.
constexpr const char* kSchemaV2 = R"sql(
CREATE TABLE session_counters(
  sid TEXT PRIMARY KEY,
  calls INTEGER NOT NULL,
  denials INTEGER NOT NULL,
  targets INTEGER NOT NULL,
  last_ms INTEGER NOT NULL);
CREATE TABLE session_targets(
  sid TEXT NOT NULL,
  target TEXT NOT NULL,
  PRIMARY KEY(sid, target)) WITHOUT ROWID;
CREATE TABLE session_calls(
  sid TEXT NOT NULL,
  time_ms INTEGER NOT NULL,
  first_call INTEGER NOT NULL,
  PRIMARY KEY(sid, time_ms)) WITHOUT ROWID;
)sql";
// Approvals (AttributionStore::InsertApproval, docs/APPROVALS.md): one row per approval asked
// for, found by the digest of what was asked, listed by state, and cancelled by session.
constexpr const char* kSchemaV3 = R"sql(
CREATE TABLE approvals(
  id TEXT PRIMARY KEY,
  digest TEXT NOT NULL,
  state TEXT NOT NULL,
  sid TEXT NOT NULL,
  root_sid TEXT NOT NULL,
  agent TEXT NOT NULL,
  instance TEXT NOT NULL,
  initiator TEXT NOT NULL,
  action TEXT NOT NULL,
  target TEXT NOT NULL,
  approver_group TEXT NOT NULL,
  policies TEXT NOT NULL,
  request_action TEXT NOT NULL,
  requested_ms INTEGER NOT NULL,
  expires_ms INTEGER NOT NULL,
  approver TEXT NOT NULL,
  verified_by TEXT NOT NULL,
  reason TEXT NOT NULL,
  decided_ms INTEGER NOT NULL,
  decided_index INTEGER NOT NULL,
  used_by TEXT NOT NULL,
  uses INTEGER NOT NULL);
CREATE INDEX approvals_digest ON approvals(digest, requested_ms, id);
CREATE INDEX approvals_state ON approvals(state, requested_ms, id);
CREATE INDEX approvals_sid ON approvals(sid, requested_ms, id);
)sql";
// Open approvals by expiry (DueApprovals): the expiry loop's check every second reads only the
// approvals due, not every open one.
constexpr const char* kSchemaV4 = R"sql(
CREATE INDEX approvals_expiry ON approvals(state, expires_ms);
)sql";
constexpr const char* kSchemaSteps[] = {kSchemaV1, kSchemaV2, kSchemaV3, kSchemaV4};

ActionRow ReadAction(const Stmt& s) {
  ActionRow r;
  r.action_id = s.Text(0);
  r.decision_index = s.Int(1);
  r.outcome_index = s.Int(2);
  r.sid = s.Text(3);
  r.root_sid = s.Text(4);
  r.agent = s.Text(5);
  r.initiator = s.Text(6);
  r.action = s.Text(7);
  r.target = s.Text(8);
  r.decision = s.Text(9);
  r.trace_id = s.Text(10);
  r.span_id = s.Text(11);
  r.txn = s.Text(12);
  r.time_ms = s.Int(13);
  r.status = s.Text(14);
  return r;
}

ApprovalRow ReadApproval(const Stmt& s) {
  ApprovalRow r;
  r.id = s.Text(0);
  r.digest = s.Text(1);
  r.state = s.Text(2);
  r.sid = s.Text(3);
  r.root_sid = s.Text(4);
  r.agent = s.Text(5);
  r.instance = s.Text(6);
  r.initiator = s.Text(7);
  r.action = s.Text(8);
  r.target = s.Text(9);
  r.group = s.Text(10);
  r.policies = s.Text(11);
  r.request_action = s.Text(12);
  r.requested_ms = s.Int(13);
  r.expires_ms = s.Int(14);
  r.approver = s.Text(15);
  r.verified_by = s.Text(16);
  r.reason = s.Text(17);
  r.decided_ms = s.Int(18);
  r.decided_index = s.Int(19);
  r.used_by = s.Text(20);
  r.uses = s.Int(21);
  return r;
}

// Binds every column of `r` in kApprovalColumns' order, from ?1.
void BindApproval(Stmt& s, const ApprovalRow& r) {
  s.Bind(1, r.id).Bind(2, r.digest).Bind(3, r.state).Bind(4, r.sid).Bind(5, r.root_sid);
  s.Bind(6, r.agent).Bind(7, r.instance).Bind(8, r.initiator).Bind(9, r.action);
  s.Bind(10, r.target).Bind(11, r.group).Bind(12, r.policies).Bind(13, r.request_action);
  s.Bind(14, r.requested_ms).Bind(15, r.expires_ms).Bind(16, r.approver);
  s.Bind(17, r.verified_by).Bind(18, r.reason).Bind(19, r.decided_ms);
  s.Bind(20, r.decided_index).Bind(21, r.used_by).Bind(22, r.uses);
}

// "<column> IN (?n,?n+1,...)" for `count` values, the first numbered `first`.
std::string InList(const char* column, size_t first, size_t count) {
  std::string out = std::string(column) + " IN (";
  for (size_t i = 0; i < count; ++i) out += (i ? ",?" : "?") + std::to_string(first + i);
  return out + ")";
}

}  // namespace

Result<std::unique_ptr<SqliteAttributionStore>> SqliteAttributionStore::Open(
    const std::string& path) {
  ASSIGN_OR_RETURN(auto db,
                   SqliteDb::Open(path, "attribution store", Durability::kNormal, kSchemaSteps));
  return std::unique_ptr<SqliteAttributionStore>(new SqliteAttributionStore(std::move(db)));
}

Status SqliteAttributionStore::PutPolicySet(const PolicySetRecord& r) {
  MutexLock lock(mu_);
  RETURN_IF_ERROR(db_->Exec("BEGIN IMMEDIATE"));
  Stmt s(*db_,
         "INSERT INTO policy_sets(hash, policies, entities, published_ms, published_by, "
         "ledger_index) VALUES(?1,?2,?3,?4,?5,?6) ON CONFLICT(hash) DO UPDATE SET "
         "entities=excluded.entities, published_ms=excluded.published_ms, "
         "published_by=excluded.published_by, ledger_index=excluded.ledger_index");
  Stmt m(*db_, "INSERT OR REPLACE INTO meta(key, value) VALUES('active_policy', ?1)");
  if (!s.ok() || !m.ok()) {
    Status st = db_->Error("prepare");
    (void)db_->Exec("ROLLBACK");  // `st` is the error to report (see Rollback below)
    return st;
  }
  s.Bind(1, r.hash).Bind(2, r.policies).Bind(3, r.entities).Bind(4, r.published_ms);
  s.Bind(5, r.published_by).Bind(6, r.ledger_index);
  m.Bind(1, r.hash);
  if (s.Step() != kSqliteDone || m.Step() != kSqliteDone) {
    Status st = db_->Error("store policy set");
    (void)db_->Exec("ROLLBACK");  // `st` is the error to report (see Rollback below)
    return st;
  }
  return db_->Exec("COMMIT");
}

Result<std::optional<PolicySetRecord>> SqliteAttributionStore::ActivePolicySet() {
  MutexLock lock(mu_);
  Stmt s(*db_,
         "SELECT p.hash, p.policies, p.entities, p.published_ms, p.published_by, p.ledger_index "
         "FROM meta m JOIN policy_sets p ON p.hash = m.value WHERE m.key = 'active_policy'");
  if (!s.ok()) return db_->Error("prepare");
  int rc = s.Step();
  if (rc == kSqliteDone) return std::optional<PolicySetRecord>();
  if (rc != kSqliteRow) return db_->Error("read active policy set");
  PolicySetRecord r{s.Text(0), s.Text(1), s.Text(2), s.Int(3), s.Text(4), s.Int(5)};
  return std::optional<PolicySetRecord>(std::move(r));
}

Result<std::vector<PolicySetRecord>> SqliteAttributionStore::ListPolicySets() {
  MutexLock lock(mu_);
  Stmt s(*db_,
         "SELECT hash, published_ms, published_by, ledger_index FROM policy_sets "
         "ORDER BY published_ms DESC, hash");
  if (!s.ok()) return db_->Error("prepare");
  std::vector<PolicySetRecord> out;
  int rc;
  while ((rc = s.Step()) == kSqliteRow) {
    PolicySetRecord r;
    r.hash = s.Text(0);
    r.published_ms = s.Int(1);
    r.published_by = s.Text(2);
    r.ledger_index = s.Int(3);
    out.push_back(std::move(r));
  }
  if (rc != kSqliteDone) return db_->Error("list policy sets");
  return out;
}

Result<std::optional<PolicySetRecord>> SqliteAttributionStore::GetPolicySet(
    const std::string& hash) {
  MutexLock lock(mu_);
  Stmt s(*db_,
         "SELECT hash, policies, entities, published_ms, published_by, ledger_index "
         "FROM policy_sets WHERE hash = ?1");
  if (!s.ok()) return db_->Error("prepare");
  s.Bind(1, hash);
  int rc = s.Step();
  if (rc == kSqliteDone) return std::optional<PolicySetRecord>();
  if (rc != kSqliteRow) return db_->Error("read policy set");
  PolicySetRecord r{s.Text(0), s.Text(1), s.Text(2), s.Int(3), s.Text(4), s.Int(5)};
  return std::optional<PolicySetRecord>(std::move(r));
}

Status SqliteAttributionStore::WriteActions(const std::vector<ActionRow>& rows,
                                            const std::vector<ActionRow>& outcomes) {
  if (rows.empty() && outcomes.empty()) return OkStatus();
  MutexLock lock(mu_);
  RETURN_IF_ERROR(db_->Exec("BEGIN IMMEDIATE"));
  auto fail = [&](const char* doing) REQUIRES(mu_) {
    Status st = db_->Error(doing);
    // Rollback: `st` is the error to report. Should the rollback fail too, the transaction
    // stays open and the next BEGIN fails, reported there.
    (void)db_->Exec("ROLLBACK");
    return st;
  };
  const std::string insert_sql = std::string("INSERT OR REPLACE INTO actions(") + kActionColumns +
                                 ") VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15)";
  Stmt ins(*db_, insert_sql.c_str());
  Stmt upd(*db_, "UPDATE actions SET outcome_index=?2, status=?3 WHERE action_id=?1");
  if (!ins.ok() || !upd.ok()) return fail("prepare");
  auto insert = [&](const ActionRow& r) {
    ins.Bind(1, r.action_id).Bind(2, r.decision_index).Bind(3, r.outcome_index).Bind(4, r.sid);
    ins.Bind(5, r.root_sid).Bind(6, r.agent).Bind(7, r.initiator).Bind(8, r.action);
    ins.Bind(9, r.target).Bind(10, r.decision).Bind(11, r.trace_id).Bind(12, r.span_id);
    ins.Bind(13, r.txn).Bind(14, r.time_ms).Bind(15, r.status);
    int rc = ins.Step();
    ins.Reset();
    return rc == kSqliteDone;
  };
  for (const ActionRow& r : rows) {
    if (!insert(r)) return fail("insert action");
  }
  for (const ActionRow& r : outcomes) {
    upd.Bind(1, r.action_id).Bind(2, r.outcome_index).Bind(3, r.status);
    int rc = upd.Step();
    upd.Reset();
    if (rc != kSqliteDone) return fail("record outcome");
    if (db_->changes() == 0 && !insert(r)) return fail("insert action");
  }
  return db_->Exec("COMMIT");
}

Result<std::vector<ActionRow>> SqliteAttributionStore::QueryActions(
    const std::string& where, const std::vector<std::string>& args) {
  MutexLock lock(mu_);
  std::string sql = std::string("SELECT ") + kActionColumns + " FROM actions WHERE " + where;
  Stmt s(*db_, sql.c_str());
  if (!s.ok()) return db_->Error("prepare");
  for (size_t i = 0; i < args.size(); ++i) s.Bind(static_cast<int>(i + 1), args[i]);
  std::vector<ActionRow> out;
  int rc;
  while ((rc = s.Step()) == kSqliteRow) out.push_back(ReadAction(s));
  if (rc != kSqliteDone) return db_->Error("query actions");
  return out;
}

Result<std::optional<ActionRow>> SqliteAttributionStore::GetAction(const std::string& action_id) {
  ASSIGN_OR_RETURN(auto rows, QueryActions("action_id = ?1", {action_id}));
  if (rows.empty()) return std::optional<ActionRow>();
  return std::optional<ActionRow>(std::move(rows[0]));
}

Result<std::vector<ActionRow>> SqliteAttributionStore::ActionsOfSessions(
    const std::vector<std::string>& sids) {
  if (sids.empty()) return std::vector<ActionRow>();
  std::string where = "sid IN (";
  for (size_t i = 0; i < sids.size(); ++i) {
    where += (i ? ",?" : "?") + std::to_string(i + 1);
  }
  where += ") ORDER BY time_ms, decision_index";
  return QueryActions(where, sids);
}

Result<std::vector<ActionRow>> SqliteAttributionStore::ActionsOfAgent(const std::string& agent,
                                                                      int64_t since_ms) {
  return QueryActions("agent = ?1 AND time_ms >= CAST(?2 AS INTEGER) ORDER BY time_ms",
                      {agent, std::to_string(since_ms)});
}

Result<std::vector<ActionRow>> SqliteAttributionStore::ActionsOfInitiator(
    const std::string& initiator) {
  return QueryActions("initiator = ?1 ORDER BY time_ms", {initiator});
}

Result<std::optional<ActionRow>> SqliteAttributionStore::ActionBySpan(const std::string& trace_id,
                                                                      const std::string& span_id) {
  ASSIGN_OR_RETURN(auto rows, QueryActions("trace_id = ?1 AND span_id = ?2", {trace_id, span_id}));
  if (rows.empty()) return std::optional<ActionRow>();
  return std::optional<ActionRow>(std::move(rows[0]));
}

Result<SessionCounts> SqliteAttributionStore::CountSession(const std::string& sid,
                                                           int64_t since_ms) {
  MutexLock lock(mu_);
  Stmt s(*db_,
         "SELECT count(*), coalesce(sum(decision = 'deny'), 0), count(DISTINCT target), "
         "coalesce(sum(time_ms >= ?2), 0) FROM actions WHERE sid = ?1");
  if (!s.ok()) return db_->Error("prepare");
  s.Bind(1, sid).Bind(2, since_ms);
  if (s.Step() != kSqliteRow) return db_->Error("count session");
  return SessionCounts{s.Int(0), s.Int(1), s.Int(2), s.Int(3)};
}

Result<SessionCounts> SqliteAttributionStore::ReadCounters(const std::string& sid,
                                                           int64_t since_ms) {
  Stmt s(*db_,
         "SELECT c.calls, c.denials, c.targets, coalesce(c.calls - (SELECT first_call FROM "
         "session_calls WHERE sid = ?1 AND time_ms >= ?2 ORDER BY time_ms LIMIT 1) + 1, 0) "
         "FROM session_counters c WHERE c.sid = ?1");
  if (!s.ok()) return db_->Error("prepare");
  s.Bind(1, sid).Bind(2, since_ms);
  int rc = s.Step();
  if (rc == kSqliteDone) return SessionCounts{};
  if (rc != kSqliteRow) return db_->Error("read session counters");
  return SessionCounts{s.Int(0), s.Int(1), s.Int(2), s.Int(3)};
}

Result<SessionCounts> SqliteAttributionStore::CountCall(const std::string& sid,
                                                        const std::string& target, int64_t time_ms,
                                                        int64_t since_ms) {
  MutexLock lock(mu_);
  RETURN_IF_ERROR(db_->Exec("BEGIN IMMEDIATE"));
  auto fail = [&](const char* doing) REQUIRES(mu_) {
    Status st = db_->Error(doing);
    (void)db_->Exec("ROLLBACK");  // `st` is the error to report (see WriteActions)
    return st;
  };
  auto before = ReadCounters(sid, since_ms);
  if (!before.ok()) {
    (void)db_->Exec("ROLLBACK");  // `before` is the error to report
    return before.status();
  }
  Stmt target_ins(*db_, "INSERT OR IGNORE INTO session_targets(sid, target) VALUES(?1, ?2)");
  if (!target_ins.ok()) return fail("prepare");
  target_ins.Bind(1, sid).Bind(2, target);
  if (target_ins.Step() != kSqliteDone) return fail("count session call");
  const int64_t new_target = db_->changes();
  Stmt up(*db_,
          "INSERT INTO session_counters(sid, calls, denials, targets, last_ms) "
          "VALUES(?1, 1, 0, ?2, ?3) ON CONFLICT(sid) DO UPDATE SET calls = calls + 1, "
          "targets = targets + ?2, last_ms = max(last_ms, ?3) RETURNING calls, last_ms");
  if (!up.ok()) return fail("prepare");
  up.Bind(1, sid).Bind(2, new_target).Bind(3, time_ms);
  if (up.Step() != kSqliteRow) return fail("count session call");
  const int64_t number = up.Int(0), at = up.Int(1);
  up.Reset();
  Stmt call(*db_,
            "INSERT OR IGNORE INTO session_calls(sid, time_ms, first_call) VALUES(?1, ?2, ?3)");
  Stmt forget(*db_, "DELETE FROM session_calls WHERE sid = ?1 AND time_ms < ?2");
  if (!call.ok() || !forget.ok()) return fail("prepare");
  call.Bind(1, sid).Bind(2, at).Bind(3, number);
  forget.Bind(1, sid).Bind(2, since_ms - (time_ms - since_ms));
  if (call.Step() != kSqliteDone || forget.Step() != kSqliteDone) return fail("count session call");
  RETURN_IF_ERROR(db_->Exec("COMMIT"));
  return *before;
}

Status SqliteAttributionStore::CountDenial(const std::string& sid) {
  MutexLock lock(mu_);
  Stmt s(*db_,
         "INSERT INTO session_counters(sid, calls, denials, targets, last_ms) "
         "VALUES(?1, 0, 1, 0, 0) ON CONFLICT(sid) DO UPDATE SET denials = denials + 1");
  if (!s.ok()) return db_->Error("prepare");
  s.Bind(1, sid);
  if (s.Step() != kSqliteDone) return db_->Error("count session denial");
  return OkStatus();
}

Result<SessionCounts> SqliteAttributionStore::SessionCounters(const std::string& sid,
                                                              int64_t since_ms) {
  MutexLock lock(mu_);
  return ReadCounters(sid, since_ms);
}

Result<bool> SqliteAttributionStore::HasUsed(const std::string& agent, const std::string& target) {
  MutexLock lock(mu_);
  Stmt s(*db_, "SELECT 1 FROM tool_usage WHERE agent = ?1 AND target = ?2");
  if (!s.ok()) return db_->Error("prepare");
  s.Bind(1, agent).Bind(2, target);
  int rc = s.Step();
  if (rc == kSqliteRow) return true;
  if (rc == kSqliteDone) return false;
  return db_->Error("read tool usage");
}

Status SqliteAttributionStore::MarkUsed(const std::string& agent, const std::string& target,
                                        int64_t time_ms) {
  MutexLock lock(mu_);
  Stmt s(*db_, "INSERT OR IGNORE INTO tool_usage(agent, target, first_ms) VALUES(?1,?2,?3)");
  if (!s.ok()) return db_->Error("prepare");
  s.Bind(1, agent).Bind(2, target).Bind(3, time_ms);
  if (s.Step() != kSqliteDone) return db_->Error("record tool usage");
  return OkStatus();
}

namespace {
Result<std::vector<std::string>> Strings(SqliteDb& db, const char* sql) {
  Stmt s(db, sql);
  if (!s.ok()) return db.Error("prepare");
  std::vector<std::string> out;
  int rc;
  while ((rc = s.Step()) == kSqliteRow) out.push_back(s.Text(0));
  if (rc != kSqliteDone) return db.Error("query actions");
  return out;
}
}  // namespace

Result<std::vector<std::string>> SqliteAttributionStore::DistinctTargets() {
  MutexLock lock(mu_);
  return Strings(*db_, "SELECT DISTINCT target FROM actions ORDER BY target");
}

Result<std::vector<std::string>> SqliteAttributionStore::DistinctActions() {
  MutexLock lock(mu_);
  return Strings(*db_, "SELECT DISTINCT action FROM actions ORDER BY action");
}

Result<std::vector<ActionUsage>> SqliteAttributionStore::UsageBySession() {
  MutexLock lock(mu_);
  Stmt s(*db_,
         "SELECT sid, root_sid, agent, initiator, target, decision, COUNT(*), MAX(time_ms) "
         "FROM actions GROUP BY sid, target, decision ORDER BY root_sid, sid, target");
  if (!s.ok()) return db_->Error("prepare");
  std::vector<ActionUsage> out;
  int rc;
  while ((rc = s.Step()) == kSqliteRow) {
    out.push_back(ActionUsage{s.Text(0), s.Text(1), s.Text(2), s.Text(3), s.Text(4), s.Text(5),
                              s.Int(6), s.Int(7)});
  }
  if (rc != kSqliteDone) return db_->Error("query actions");
  return out;
}

// The mark is a row of `meta` (key 'indexed_size', the size in decimal): no schema step, and an
// index written before marks existed reads as 0, so its first start re-indexes the whole ledger.
Result<uint64_t> SqliteAttributionStore::IndexedSize() {
  MutexLock lock(mu_);
  Stmt s(*db_, "SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'indexed_size'");
  if (!s.ok()) return db_->Error("prepare");
  int rc = s.Step();
  if (rc == kSqliteDone) return uint64_t{0};
  if (rc != kSqliteRow) return db_->Error("read the index mark");
  return static_cast<uint64_t>(std::max<int64_t>(s.Int(0), 0));
}

Status SqliteAttributionStore::RaiseIndexedSize(uint64_t size) {
  MutexLock lock(mu_);
  // One statement: the upsert keeps the larger of the stored and the new size.
  Stmt s(*db_,
         "INSERT INTO meta(key, value) VALUES('indexed_size', ?1) ON CONFLICT(key) DO UPDATE SET "
         "value = CAST(max(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER)) AS TEXT)");
  if (!s.ok()) return db_->Error("prepare");
  s.Bind(1, std::to_string(size));
  if (s.Step() != kSqliteDone) return db_->Error("record the index mark");
  return OkStatus();
}

Status SqliteAttributionStore::InsertContainment(const ContainmentRow& r) {
  MutexLock lock(mu_);
  Stmt s(*db_,
         "INSERT INTO containments(event_id, scope, subject, reason, trigger_action, by, "
         "time_ms, ledger_index) VALUES(?1,?2,?3,?4,?5,?6,?7,?8)");
  if (!s.ok()) return db_->Error("prepare");
  s.Bind(1, r.event_id).Bind(2, r.scope).Bind(3, r.subject).Bind(4, r.reason);
  s.Bind(5, r.trigger_action).Bind(6, r.by).Bind(7, r.time_ms).Bind(8, r.ledger_index);
  if (s.Step() != kSqliteDone) {
    if (sqlite3_errcode(db_->raw()) == SQLITE_CONSTRAINT) {
      return AlreadyExistsError("containment " + r.event_id + " is recorded");
    }
    return db_->Error("record containment");
  }
  return OkStatus();
}

Result<std::vector<ContainmentRow>> SqliteAttributionStore::ContainmentsOf(
    const std::string& subject) {
  MutexLock lock(mu_);
  Stmt s(*db_,
         "SELECT event_id, scope, subject, reason, trigger_action, by, time_ms, ledger_index "
         "FROM containments WHERE subject = ?1 ORDER BY time_ms");
  if (!s.ok()) return db_->Error("prepare");
  s.Bind(1, subject);
  std::vector<ContainmentRow> out;
  int rc;
  while ((rc = s.Step()) == kSqliteRow) {
    out.push_back(ContainmentRow{s.Text(0), s.Text(1), s.Text(2), s.Text(3), s.Text(4), s.Text(5),
                                 s.Int(6), s.Int(7)});
  }
  if (rc != kSqliteDone) return db_->Error("read containments");
  return out;
}

Status SqliteAttributionStore::InsertApproval(const ApprovalRow& r) {
  MutexLock lock(mu_);
  const std::string sql = std::string("INSERT INTO approvals(") + kApprovalColumns +
                          ") VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,"
                          "?18,?19,?20,?21,?22)";
  Stmt s(*db_, sql.c_str());
  if (!s.ok()) return db_->Error("prepare");
  BindApproval(s, r);
  if (s.Step() != kSqliteDone) {
    if (sqlite3_errcode(db_->raw()) == SQLITE_CONSTRAINT) {
      return AlreadyExistsError("approval " + r.id + " exists");
    }
    return db_->Error("record approval");
  }
  return OkStatus();
}

Result<std::vector<ApprovalRow>> SqliteAttributionStore::QueryApprovals(
    const std::string& where, const std::vector<std::string>& args,
    const std::string& order_limit) {
  MutexLock lock(mu_);
  std::string sql = std::string("SELECT ") + kApprovalColumns + " FROM approvals";
  if (!where.empty()) sql += " WHERE " + where;
  sql += order_limit;
  Stmt s(*db_, sql.c_str());
  if (!s.ok()) return db_->Error("prepare");
  for (size_t i = 0; i < args.size(); ++i) s.Bind(static_cast<int>(i + 1), args[i]);
  std::vector<ApprovalRow> out;
  int rc;
  while ((rc = s.Step()) == kSqliteRow) out.push_back(ReadApproval(s));
  if (rc != kSqliteDone) return db_->Error("read approvals");
  return out;
}

Result<std::optional<ApprovalRow>> SqliteAttributionStore::GetApproval(const std::string& id) {
  ASSIGN_OR_RETURN(auto rows, QueryApprovals("id = ?1", {id}, ""));
  if (rows.empty()) return std::optional<ApprovalRow>();
  return std::optional<ApprovalRow>(std::move(rows[0]));
}

Result<std::optional<ApprovalRow>> SqliteAttributionStore::FindApproval(
    const std::string& digest, const std::vector<std::string>& states) {
  std::string where = "digest = ?1";
  std::vector<std::string> args = {digest};
  if (!states.empty()) {
    where += " AND " + InList("state", 2, states.size());
    args.insert(args.end(), states.begin(), states.end());
  }
  ASSIGN_OR_RETURN(auto rows,
                   QueryApprovals(where, args, " ORDER BY requested_ms DESC, id DESC LIMIT 1"));
  if (rows.empty()) return std::optional<ApprovalRow>();
  return std::optional<ApprovalRow>(std::move(rows[0]));
}

Result<std::vector<ApprovalRow>> SqliteAttributionStore::ListApprovals(
    const std::vector<std::string>& states, size_t limit) {
  const uint64_t most = std::min<uint64_t>(limit, std::numeric_limits<int64_t>::max());
  return QueryApprovals(states.empty() ? "" : InList("state", 1, states.size()), states,
                        " ORDER BY requested_ms DESC, id DESC LIMIT " + std::to_string(most));
}

Result<std::vector<ApprovalRow>> SqliteAttributionStore::DueApprovals(int64_t now_ms,
                                                                      size_t limit) {
  const uint64_t most = std::min<uint64_t>(limit, std::numeric_limits<int64_t>::max());
  return QueryApprovals(
      "state IN ('pending', 'approved') AND expires_ms <= " + std::to_string(now_ms), {},
      " ORDER BY expires_ms, id LIMIT " + std::to_string(most));
}

Result<std::vector<ApprovalRow>> SqliteAttributionStore::ApprovalsOfSessions(
    const std::vector<std::string>& sids, const std::vector<std::string>& states) {
  if (sids.empty()) return std::vector<ApprovalRow>();
  std::string where = InList("sid", 1, sids.size());
  std::vector<std::string> args = sids;
  if (!states.empty()) {
    where += " AND " + InList("state", sids.size() + 1, states.size());
    args.insert(args.end(), states.begin(), states.end());
  }
  return QueryApprovals(where, args, " ORDER BY requested_ms, id");
}

Status SqliteAttributionStore::UpdateApproval(const ApprovalRow& r,
                                              const std::string& expected_state) {
  MutexLock lock(mu_);
  // One statement under the one connection's mutex: the state is compared and set at once.
  Stmt s(*db_,
         "UPDATE approvals SET digest=?2, state=?3, sid=?4, root_sid=?5, agent=?6, instance=?7, "
         "initiator=?8, action=?9, target=?10, approver_group=?11, policies=?12, "
         "request_action=?13, requested_ms=?14, expires_ms=?15, approver=?16, verified_by=?17, "
         "reason=?18, decided_ms=?19, decided_index=?20, used_by=?21, uses=?22 "
         "WHERE id=?1 AND state=?23");
  if (!s.ok()) return db_->Error("prepare");
  BindApproval(s, r);
  s.Bind(23, expected_state);
  if (s.Step() != kSqliteDone) return db_->Error("update approval");
  if (db_->changes() == 1) return OkStatus();
  // Nothing changed: say why (the mutex still held, so this is the state that refused it).
  Stmt q(*db_, "SELECT state FROM approvals WHERE id = ?1");
  if (!q.ok()) return db_->Error("prepare");
  q.Bind(1, r.id);
  int rc = q.Step();
  if (rc == kSqliteDone) return NotFoundError("no approval " + r.id);
  if (rc != kSqliteRow) return db_->Error("read approval");
  return FailedPreconditionError("approval " + r.id + " is " + q.Text(0));
}

}  // namespace custody::store

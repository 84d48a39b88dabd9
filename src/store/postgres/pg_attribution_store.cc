#include "store/postgres/pg_attribution_store.h"

#include <algorithm>
#include <iterator>
#include <limits>
#include <string_view>
#include <unordered_map>

#include "store/internal/columns.h"
#include "store/postgres/pg_schema.h"

namespace custody::store {

using internal::kActionColumns;
using internal::kApprovalColumns;
namespace {

// Schema steps (store/postgres/pg_schema.h): released steps never change. Text is ordered
// bytewise (COLLATE "C") wherever an order is promised, as in SQLite.
constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE attribution_meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE policy_sets(
  hash TEXT PRIMARY KEY,
  policies TEXT NOT NULL,
  entities TEXT NOT NULL,
  published_ms BIGINT NOT NULL,
  published_by TEXT NOT NULL,
  ledger_index BIGINT NOT NULL);
CREATE TABLE actions(
  action_id TEXT PRIMARY KEY,
  decision_index BIGINT NOT NULL,
  outcome_index BIGINT NOT NULL DEFAULT -1,
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
  time_ms BIGINT NOT NULL,
  status TEXT NOT NULL DEFAULT '');
CREATE INDEX actions_sid ON actions(sid, time_ms);
CREATE INDEX actions_root ON actions(root_sid, time_ms);
CREATE INDEX actions_agent ON actions(agent, time_ms);
CREATE INDEX actions_initiator ON actions(initiator, time_ms);
CREATE INDEX actions_trace ON actions(trace_id, span_id);
CREATE INDEX actions_txn ON actions(txn, time_ms);
CREATE INDEX actions_target ON actions(target, time_ms);
CREATE INDEX actions_time ON actions(time_ms);
CREATE TABLE tool_usage(
  agent TEXT NOT NULL,
  target TEXT NOT NULL,
  first_ms BIGINT NOT NULL,
  PRIMARY KEY(agent, target));
CREATE TABLE containments(
  event_id TEXT PRIMARY KEY,
  scope TEXT NOT NULL,
  subject TEXT NOT NULL,
  reason TEXT NOT NULL,
  trigger_action TEXT NOT NULL,
  by TEXT NOT NULL,
  time_ms BIGINT NOT NULL,
  ledger_index BIGINT NOT NULL);
CREATE INDEX containments_subject ON containments(subject);
)sql";
// Session counters shared by the nodes (AttributionStore::CountCall): one row per session, its
// distinct targets, and per session the millisecond of each recent call with the number of the
// first call made then (calls are numbered in time order, so the calls since a moment are the
// numbers from that moment's first on). custody_count_call counts a call in one round trip: it
// first locks the session's row (the upsert), so the calls of one session count one at a time at
// every node, and each statement after it, in its own snapshot (READ COMMITTED, a VOLATILE
// function), sees every call counted before. The counts commit asynchronously (synchronous_commit
// off for that transaction alone): like the action index they are derived, not the record, and
// waiting for a WAL flush per call cost 1.5-2x the authorize throughput; a crash of PostgreSQL
// may forget the last moment's counts, never a ledger entry. The step backfills calls, denials and
// targets from the action index, so sessions of before the upgrade keep their counts.
constexpr const char* kSchemaV2 = R"sql(
CREATE TABLE session_counters(
  sid TEXT PRIMARY KEY,
  calls BIGINT NOT NULL,
  denials BIGINT NOT NULL,
  targets BIGINT NOT NULL,
  last_ms BIGINT NOT NULL);
CREATE TABLE session_targets(
  sid TEXT NOT NULL,
  target TEXT NOT NULL,
  PRIMARY KEY(sid, target));
CREATE TABLE session_calls(
  sid TEXT NOT NULL,
  time_ms BIGINT NOT NULL,
  first_call BIGINT NOT NULL,
  PRIMARY KEY(sid, time_ms));
INSERT INTO session_counters(sid, calls, denials, targets, last_ms)
  SELECT sid, count(*), count(*) FILTER (WHERE decision = 'deny'), count(DISTINCT target),
         max(time_ms)
  FROM actions GROUP BY sid;
INSERT INTO session_targets(sid, target) SELECT DISTINCT sid, target FROM actions;
CREATE FUNCTION custody_count_call(p_sid TEXT, p_target TEXT, p_time BIGINT, p_since BIGINT,
    OUT calls BIGINT, OUT denials BIGINT, OUT targets BIGINT, OUT calls_since BIGINT)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  at_ms BIGINT;
  first_n BIGINT;
BEGIN
  PERFORM set_config('synchronous_commit', 'off', true);
  INSERT INTO session_counters AS c(sid, calls, denials, targets, last_ms)
    VALUES(p_sid, 1, 0, 0, p_time)
    ON CONFLICT (sid) DO UPDATE SET calls = c.calls + 1, last_ms = GREATEST(c.last_ms, p_time)
    RETURNING c.calls - 1, c.denials, c.targets, c.last_ms INTO calls, denials, targets, at_ms;
  INSERT INTO session_targets(sid, target) VALUES(p_sid, p_target) ON CONFLICT DO NOTHING;
  IF FOUND THEN
    UPDATE session_counters SET targets = session_counters.targets + 1 WHERE sid = p_sid;
  END IF;
  SELECT s.first_call INTO first_n FROM session_calls s
    WHERE s.sid = p_sid AND s.time_ms >= p_since ORDER BY s.time_ms LIMIT 1;
  calls_since := COALESCE(calls - first_n + 1, 0);
  INSERT INTO session_calls(sid, time_ms, first_call) VALUES(p_sid, at_ms, calls + 1)
    ON CONFLICT DO NOTHING;
  DELETE FROM session_calls s WHERE s.sid = p_sid AND s.time_ms < p_since - (p_time - p_since);
END
$$;
)sql";
// Approvals (AttributionStore::InsertApproval, docs/APPROVALS.md): one row per approval asked
// for, found by the digest of what was asked, listed by state, and cancelled by session. The id
// breaks ties of requested_ms, bytewise as in SQLite. State changes are one UPDATE ... WHERE
// state = expected: READ COMMITTED re-checks the condition on the row a concurrent update left, so
// of the nodes racing on one approval exactly one changes it.
constexpr const char* kSchemaV3 = R"sql(
CREATE TABLE approvals(
  id TEXT COLLATE "C" PRIMARY KEY,
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
  requested_ms BIGINT NOT NULL,
  expires_ms BIGINT NOT NULL,
  approver TEXT NOT NULL,
  verified_by TEXT NOT NULL,
  reason TEXT NOT NULL,
  decided_ms BIGINT NOT NULL,
  decided_index BIGINT NOT NULL,
  used_by TEXT NOT NULL,
  uses BIGINT NOT NULL);
CREATE INDEX approvals_digest ON approvals(digest, requested_ms, id);
CREATE INDEX approvals_state ON approvals(state, requested_ms, id);
CREATE INDEX approvals_sid ON approvals(sid, requested_ms, id);
)sql";
// Open approvals by expiry (DueApprovals): the expiry loop's check every second reads only the
// approvals due, not every open one.
constexpr const char* kSchemaV4 = R"sql(
CREATE INDEX approvals_expiry ON approvals(state, expires_ms);
)sql";
// custody_count_call in two statements where step 2 had five (and a sixth for a new target):
// each statement of a PL/pgSQL function is its own executor run, and the count runs on every
// call. The upsert comes first and alone, as before: it takes the session's row lock, so the one
// statement after it, in a snapshot of its own, sees every call counted before this one; in it
// the target, this call's moment and the pruning of old moments are data-modifying CTEs that the
// read of the window's first call does not see (it must not: it counts the calls before this
// one). synchronous_commit is set inside the upsert. Same answers as step 2's function (checked
// on 3,000 calls with repeated milliseconds, new targets and pruning).
constexpr const char* kSchemaV5 = R"sql(
CREATE OR REPLACE FUNCTION custody_count_call(p_sid TEXT, p_target TEXT, p_time BIGINT,
    p_since BIGINT, OUT calls BIGINT, OUT denials BIGINT, OUT targets BIGINT,
    OUT calls_since BIGINT)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  at_ms BIGINT;
  first_n BIGINT;
  new_target BOOLEAN;
BEGIN
  INSERT INTO session_counters AS c(sid, calls, denials, targets, last_ms)
    SELECT p_sid, 1, 0, 0, p_time FROM (SELECT set_config('synchronous_commit', 'off', true)) AS a
    ON CONFLICT (sid) DO UPDATE SET calls = c.calls + 1, last_ms = GREATEST(c.last_ms, p_time)
    RETURNING c.calls - 1, c.denials, c.targets, c.last_ms INTO calls, denials, targets, at_ms;
  WITH t AS (INSERT INTO session_targets(sid, target) VALUES(p_sid, p_target)
               ON CONFLICT DO NOTHING RETURNING 1),
       m AS (INSERT INTO session_calls(sid, time_ms, first_call) VALUES(p_sid, at_ms, calls + 1)
               ON CONFLICT DO NOTHING),
       d AS (DELETE FROM session_calls s
               WHERE s.sid = p_sid AND s.time_ms < p_since - (p_time - p_since))
  SELECT EXISTS(SELECT 1 FROM t),
         (SELECT s.first_call FROM session_calls s
            WHERE s.sid = p_sid AND s.time_ms >= p_since ORDER BY s.time_ms LIMIT 1)
    INTO new_target, first_n;
  IF new_target THEN
    UPDATE session_counters SET targets = session_counters.targets + 1 WHERE sid = p_sid;
  END IF;
  calls_since := COALESCE(calls - first_n + 1, 0);
END
$$;
)sql";
constexpr const char* kSchemaSteps[] = {kSchemaV1, kSchemaV2, kSchemaV3, kSchemaV4, kSchemaV5};

ActionRow ReadAction(const PgRows& rows, int i) {
  auto t = [&](int c) { return std::string(rows.Text(i, c)); };
  return ActionRow{t(0), rows.Int(i, 1), rows.Int(i, 2), t(3),  t(4),  t(5),  t(6),
                   t(7), t(8),           t(9),           t(10), t(11), t(12), rows.Int(i, 13),
                   t(14)};
}

std::vector<PgParam> ActionParams(const ActionRow& r) {
  return {PgText(r.action_id), PgInt(r.decision_index), PgInt(r.outcome_index), PgText(r.sid),
          PgText(r.root_sid),  PgText(r.agent),         PgText(r.initiator),    PgText(r.action),
          PgText(r.target),    PgText(r.decision),      PgText(r.trace_id),     PgText(r.span_id),
          PgText(r.txn),       PgInt(r.time_ms),        PgText(r.status)};
}

// A text[] literal: every element double-quoted, `"` and `\` escaped.
std::string TextArray(const std::vector<std::string>& v) {
  std::string out = "{";
  for (size_t i = 0; i < v.size(); ++i) {
    if (i != 0) out += ',';
    out += '"';
    for (char c : v[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

ApprovalRow ReadApproval(const PgRows& rows, int i) {
  auto t = [&](int c) { return std::string(rows.Text(i, c)); };
  ApprovalRow r;
  r.id = t(0);
  r.digest = t(1);
  r.state = t(2);
  r.sid = t(3);
  r.root_sid = t(4);
  r.agent = t(5);
  r.instance = t(6);
  r.initiator = t(7);
  r.action = t(8);
  r.target = t(9);
  r.group = t(10);
  r.policies = t(11);
  r.request_action = t(12);
  r.requested_ms = rows.Int(i, 13);
  r.expires_ms = rows.Int(i, 14);
  r.approver = t(15);
  r.verified_by = t(16);
  r.reason = t(17);
  r.decided_ms = rows.Int(i, 18);
  r.decided_index = rows.Int(i, 19);
  r.used_by = t(20);
  r.uses = rows.Int(i, 21);
  return r;
}

// Every column of `r` in kApprovalColumns' order ($1..$22).
std::vector<PgParam> ApprovalParams(const ApprovalRow& r) {
  return {PgText(r.id),
          PgText(r.digest),
          PgText(r.state),
          PgText(r.sid),
          PgText(r.root_sid),
          PgText(r.agent),
          PgText(r.instance),
          PgText(r.initiator),
          PgText(r.action),
          PgText(r.target),
          PgText(r.group),
          PgText(r.policies),
          PgText(r.request_action),
          PgInt(r.requested_ms),
          PgInt(r.expires_ms),
          PgText(r.approver),
          PgText(r.verified_by),
          PgText(r.reason),
          PgInt(r.decided_ms),
          PgInt(r.decided_index),
          PgText(r.used_by),
          PgInt(r.uses)};
}

}  // namespace

Result<std::unique_ptr<PgAttributionStore>> PgAttributionStore::Open(const std::string& url,
                                                                     PgOptions options) {
  options.what = "attribution store";
  ASSIGN_OR_RETURN(std::unique_ptr<PgDb> db, PgDb::Open(url, std::move(options)));
  RETURN_IF_ERROR(ApplyPgSchema(*db, "attribution", kSchemaSteps));
  return std::unique_ptr<PgAttributionStore>(new PgAttributionStore(std::move(db)));
}

PgAttributionStore::~PgAttributionStore() = default;

Status PgAttributionStore::PutPolicySet(const PolicySetRecord& r) {
  return db_->Transact("store policy set", [&](PgConn& c) -> Status {
    RETURN_IF_ERROR(c.Exec("store policy set",
                           "INSERT INTO policy_sets(hash, policies, entities, published_ms, "
                           "published_by, ledger_index) VALUES($1, $2, $3, $4, $5, $6) "
                           "ON CONFLICT (hash) DO UPDATE SET entities = EXCLUDED.entities, "
                           "published_ms = EXCLUDED.published_ms, published_by = "
                           "EXCLUDED.published_by, ledger_index = EXCLUDED.ledger_index",
                           {PgText(r.hash), PgText(r.policies), PgText(r.entities),
                            PgInt(r.published_ms), PgText(r.published_by), PgInt(r.ledger_index)})
                        .status());
    return c
        .Exec("activate policy set",
              "INSERT INTO attribution_meta(key, value) VALUES('active_policy', $1) "
              "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
              {PgText(r.hash)})
        .status();
  });
}

Result<std::optional<PolicySetRecord>> PgAttributionStore::ActivePolicySet() {
  ASSIGN_OR_RETURN(PgRows rows,
                   db_->Exec("read active policy set",
                             "SELECT p.hash, p.policies, p.entities, p.published_ms, "
                             "p.published_by, p.ledger_index FROM attribution_meta m JOIN "
                             "policy_sets p ON p.hash = m.value WHERE m.key = 'active_policy'"));
  if (rows.size() == 0) return std::optional<PolicySetRecord>();
  return std::optional<PolicySetRecord>(PolicySetRecord{
      std::string(rows.Text(0, 0)), std::string(rows.Text(0, 1)), std::string(rows.Text(0, 2)),
      rows.Int(0, 3), std::string(rows.Text(0, 4)), rows.Int(0, 5)});
}

Result<std::vector<PolicySetRecord>> PgAttributionStore::ListPolicySets() {
  ASSIGN_OR_RETURN(PgRows rows, db_->Exec("list policy sets",
                                          "SELECT hash, published_ms, published_by, ledger_index "
                                          "FROM policy_sets ORDER BY published_ms DESC, "
                                          "hash COLLATE \"C\""));
  std::vector<PolicySetRecord> out;
  for (int i = 0; i < rows.size(); ++i) {
    PolicySetRecord r;
    r.hash = std::string(rows.Text(i, 0));
    r.published_ms = rows.Int(i, 1);
    r.published_by = std::string(rows.Text(i, 2));
    r.ledger_index = rows.Int(i, 3);
    out.push_back(std::move(r));
  }
  return out;
}

Result<std::optional<PolicySetRecord>> PgAttributionStore::GetPolicySet(const std::string& hash) {
  ASSIGN_OR_RETURN(PgRows rows, db_->Exec("read policy set",
                                          "SELECT hash, policies, entities, published_ms, "
                                          "published_by, ledger_index FROM policy_sets "
                                          "WHERE hash = $1",
                                          {PgText(hash)}));
  if (rows.size() == 0) return std::optional<PolicySetRecord>();
  return std::optional<PolicySetRecord>(PolicySetRecord{
      std::string(rows.Text(0, 0)), std::string(rows.Text(0, 1)), std::string(rows.Text(0, 2)),
      rows.Int(0, 3), std::string(rows.Text(0, 4)), rows.Int(0, 5)});
}

Status PgAttributionStore::WriteActions(const std::vector<ActionRow>& rows,
                                        const std::vector<ActionRow>& outcomes) {
  if (rows.empty() && outcomes.empty()) return OkStatus();
  constexpr const char* kOnConflict =
      " ON CONFLICT (action_id) DO UPDATE SET decision_index = EXCLUDED.decision_index, "
      "outcome_index = EXCLUDED.outcome_index, sid = EXCLUDED.sid, root_sid = "
      "EXCLUDED.root_sid, agent = EXCLUDED.agent, initiator = EXCLUDED.initiator, action = "
      "EXCLUDED.action, target = EXCLUDED.target, decision = EXCLUDED.decision, trace_id = "
      "EXCLUDED.trace_id, span_id = EXCLUDED.span_id, txn = EXCLUDED.txn, time_ms = "
      "EXCLUDED.time_ms, status = EXCLUDED.status";
  // `n` rows in one statement ($1..$15 the first, and so on).
  auto upsert_of = [&](size_t n) {
    return std::string("INSERT INTO actions(") + kActionColumns + ") VALUES" + PgValueRows(n, 15) +
           kOnConflict;
  };
  const std::string upsert = upsert_of(1);
  // The decisions go in multi-row statements (one round trip per kRows rows). A statement may
  // not update one row twice, so a row whose action comes again later in the batch is left
  // out: the later one carries the newer state.
  constexpr size_t kRows = 64;
  std::vector<const ActionRow*> unique;
  {
    std::unordered_map<std::string_view, size_t> last;
    for (size_t i = 0; i < rows.size(); ++i) last[rows[i].action_id] = i;
    for (size_t i = 0; i < rows.size(); ++i) {
      if (last[rows[i].action_id] == i) unique.push_back(&rows[i]);
    }
  }
  return db_->Transact("write actions", [&](PgConn& c) -> Status {
    std::vector<PgParam> params;
    for (size_t first = 0; first < unique.size(); first += kRows) {
      const size_t n = std::min(kRows, unique.size() - first);
      params.clear();
      for (size_t i = 0; i < n; ++i) {
        std::vector<PgParam> p = ActionParams(*unique[first + i]);
        std::move(p.begin(), p.end(), std::back_inserter(params));
      }
      RETURN_IF_ERROR(c.Exec("insert actions", n == 1 ? upsert : upsert_of(n), params).status());
    }
    for (const ActionRow& r : outcomes) {
      ASSIGN_OR_RETURN(PgRows updated,
                       c.Exec("record outcome",
                              "UPDATE actions SET outcome_index = $2, status = $3 "
                              "WHERE action_id = $1",
                              {PgText(r.action_id), PgInt(r.outcome_index), PgText(r.status)}));
      if (updated.affected() == 0) {
        RETURN_IF_ERROR(c.Exec("insert action", upsert, ActionParams(r)).status());
      }
    }
    return OkStatus();
  });
}

Result<std::vector<ActionRow>> PgAttributionStore::QueryActions(
    const std::string& where, std::initializer_list<PgParam> params) {
  ASSIGN_OR_RETURN(PgRows rows, db_->Exec("query actions",
                                          std::string("SELECT ") + kActionColumns +
                                              " FROM actions WHERE " + where,
                                          std::span<const PgParam>(params.begin(), params.size())));
  std::vector<ActionRow> out;
  out.reserve(rows.size());
  for (int i = 0; i < rows.size(); ++i) out.push_back(ReadAction(rows, i));
  return out;
}

Result<std::optional<ActionRow>> PgAttributionStore::GetAction(const std::string& action_id) {
  ASSIGN_OR_RETURN(auto rows, QueryActions("action_id = $1", {PgText(action_id)}));
  if (rows.empty()) return std::optional<ActionRow>();
  return std::optional<ActionRow>(std::move(rows[0]));
}

Result<std::vector<ActionRow>> PgAttributionStore::ActionsOfSessions(
    const std::vector<std::string>& sids) {
  if (sids.empty()) return std::vector<ActionRow>();
  return QueryActions("sid = ANY($1::text[]) ORDER BY time_ms, decision_index",
                      {PgText(TextArray(sids))});
}

Result<std::vector<ActionRow>> PgAttributionStore::ActionsOfAgent(const std::string& agent,
                                                                  int64_t since_ms) {
  return QueryActions("agent = $1 AND time_ms >= $2 ORDER BY time_ms",
                      {PgText(agent), PgInt(since_ms)});
}

Result<std::vector<ActionRow>> PgAttributionStore::ActionsOfInitiator(
    const std::string& initiator) {
  return QueryActions("initiator = $1 ORDER BY time_ms", {PgText(initiator)});
}

Result<std::optional<ActionRow>> PgAttributionStore::ActionBySpan(const std::string& trace_id,
                                                                  const std::string& span_id) {
  ASSIGN_OR_RETURN(auto rows, QueryActions("trace_id = $1 AND span_id = $2",
                                           {PgText(trace_id), PgText(span_id)}));
  if (rows.empty()) return std::optional<ActionRow>();
  return std::optional<ActionRow>(std::move(rows[0]));
}

Result<SessionCounts> PgAttributionStore::CountSession(const std::string& sid, int64_t since_ms) {
  ASSIGN_OR_RETURN(PgRows rows,
                   db_->Exec("count session",
                             "SELECT count(*), count(*) FILTER (WHERE decision = 'deny'), "
                             "count(DISTINCT target), count(*) FILTER (WHERE time_ms >= $2) "
                             "FROM actions WHERE sid = $1",
                             {PgText(sid), PgInt(since_ms)}));
  return SessionCounts{rows.Int(0, 0), rows.Int(0, 1), rows.Int(0, 2), rows.Int(0, 3)};
}

Result<SessionCounts> PgAttributionStore::CountCall(const std::string& sid,
                                                    const std::string& target, int64_t time_ms,
                                                    int64_t since_ms) {
  ASSIGN_OR_RETURN(PgRows rows,
                   db_->Exec("count session call",
                             "SELECT calls, denials, targets, calls_since FROM "
                             "custody_count_call($1, $2, $3, $4)",
                             {PgText(sid), PgText(target), PgInt(time_ms), PgInt(since_ms)}));
  return SessionCounts{rows.Int(0, 0), rows.Int(0, 1), rows.Int(0, 2), rows.Int(0, 3)};
}

Status PgAttributionStore::CountDenial(const std::string& sid) {
  return db_
      ->Exec("count session denial",
             // Committed asynchronously, as custody_count_call is (schema step 2).
             "INSERT INTO session_counters AS c(sid, calls, denials, targets, last_ms) "
             "SELECT $1, 0, 1, 0, 0 FROM (SELECT set_config('synchronous_commit', 'off', true)) "
             "AS async ON CONFLICT (sid) DO UPDATE SET denials = c.denials + 1",
             {PgText(sid)})
      .status();
}

Result<SessionCounts> PgAttributionStore::SessionCounters(const std::string& sid,
                                                          int64_t since_ms) {
  ASSIGN_OR_RETURN(PgRows rows,
                   db_->Exec("read session counters",
                             "SELECT c.calls, c.denials, c.targets, COALESCE(c.calls - (SELECT "
                             "s.first_call FROM session_calls s WHERE s.sid = $1 AND s.time_ms "
                             ">= $2 ORDER BY s.time_ms LIMIT 1) + 1, 0) FROM session_counters c "
                             "WHERE c.sid = $1",
                             {PgText(sid), PgInt(since_ms)}));
  if (rows.size() == 0) return SessionCounts{};
  return SessionCounts{rows.Int(0, 0), rows.Int(0, 1), rows.Int(0, 2), rows.Int(0, 3)};
}

Result<bool> PgAttributionStore::HasUsed(const std::string& agent, const std::string& target) {
  ASSIGN_OR_RETURN(
      PgRows rows,
      db_->Exec("read tool usage", "SELECT 1 FROM tool_usage WHERE agent = $1 AND target = $2",
                {PgText(agent), PgText(target)}));
  return rows.size() != 0;
}

Status PgAttributionStore::MarkUsed(const std::string& agent, const std::string& target,
                                    int64_t time_ms) {
  return db_
      ->Exec("record tool usage",
             "INSERT INTO tool_usage(agent, target, first_ms) VALUES($1, $2, $3) "
             "ON CONFLICT DO NOTHING",
             {PgText(agent), PgText(target), PgInt(time_ms)})
      .status();
}

Result<std::vector<std::string>> PgAttributionStore::Strings(const char* what, const char* sql) {
  ASSIGN_OR_RETURN(PgRows rows, db_->Exec(what, sql));
  std::vector<std::string> out;
  out.reserve(rows.size());
  for (int i = 0; i < rows.size(); ++i) out.emplace_back(rows.Text(i, 0));
  return out;
}

Result<std::vector<std::string>> PgAttributionStore::DistinctTargets() {
  return Strings("query actions",
                 "SELECT DISTINCT target COLLATE \"C\" AS t FROM actions ORDER BY t");
}

Result<std::vector<std::string>> PgAttributionStore::DistinctActions() {
  return Strings("query actions",
                 "SELECT DISTINCT action COLLATE \"C\" AS a FROM actions ORDER BY a");
}

Result<std::vector<ActionUsage>> PgAttributionStore::UsageBySession() {
  // root_sid, agent and initiator are the same for every row of a session.
  ASSIGN_OR_RETURN(PgRows rows,
                   db_->Exec("query actions",
                             "SELECT sid, MIN(root_sid), MIN(agent), MIN(initiator), "
                             "target, decision, COUNT(*), MAX(time_ms) FROM actions "
                             "GROUP BY sid, target, decision "
                             "ORDER BY MIN(root_sid) COLLATE \"C\", sid COLLATE \"C\", "
                             "target COLLATE \"C\""));
  std::vector<ActionUsage> out;
  out.reserve(rows.size());
  for (int i = 0; i < rows.size(); ++i) {
    auto t = [&](int c) { return std::string(rows.Text(i, c)); };
    out.push_back(ActionUsage{t(0), t(1), t(2), t(3), t(4), t(5), rows.Int(i, 6), rows.Int(i, 7)});
  }
  return out;
}

Result<uint64_t> PgAttributionStore::IndexedSize() {
  ASSIGN_OR_RETURN(PgRows rows, db_->Exec("read the index mark",
                                          "SELECT value::bigint FROM attribution_meta WHERE key = "
                                          "'indexed_size'"));
  if (rows.size() == 0) return uint64_t{0};
  return static_cast<uint64_t>(std::max<int64_t>(rows.Int(0, 0), 0));
}

Status PgAttributionStore::RaiseIndexedSize(uint64_t size) {
  // One statement: the upsert keeps the larger of the stored and the new size.
  return db_
      ->Exec("record the index mark",
             "INSERT INTO attribution_meta(key, value) VALUES('indexed_size', $1) "
             "ON CONFLICT (key) DO UPDATE SET value = GREATEST(attribution_meta.value::bigint, "
             "EXCLUDED.value::bigint)::text",
             {PgInt(static_cast<int64_t>(size))})
      .status();
}

Status PgAttributionStore::InsertContainment(const ContainmentRow& r) {
  Status st =
      db_->Exec("record containment",
                "INSERT INTO containments(event_id, scope, subject, reason, "
                "trigger_action, by, time_ms, ledger_index) "
                "VALUES($1, $2, $3, $4, $5, $6, $7, $8)",
                {PgText(r.event_id), PgText(r.scope), PgText(r.subject), PgText(r.reason),
                 PgText(r.trigger_action), PgText(r.by), PgInt(r.time_ms), PgInt(r.ledger_index)})
          .status();
  if (st.code() == StatusCode::kAlreadyExists) {
    return AlreadyExistsError("containment " + r.event_id + " is recorded");
  }
  return st;
}

Result<std::vector<ContainmentRow>> PgAttributionStore::ContainmentsOf(const std::string& subject) {
  ASSIGN_OR_RETURN(PgRows rows,
                   db_->Exec("read containments",
                             "SELECT event_id, scope, subject, reason, trigger_action, by, "
                             "time_ms, ledger_index FROM containments WHERE subject = $1 "
                             "ORDER BY time_ms",
                             {PgText(subject)}));
  std::vector<ContainmentRow> out;
  for (int i = 0; i < rows.size(); ++i) {
    auto t = [&](int c) { return std::string(rows.Text(i, c)); };
    out.push_back(
        ContainmentRow{t(0), t(1), t(2), t(3), t(4), t(5), rows.Int(i, 6), rows.Int(i, 7)});
  }
  return out;
}

Status PgAttributionStore::InsertApproval(const ApprovalRow& r) {
  std::vector<PgParam> params = ApprovalParams(r);
  Status st = db_->Exec("record approval",
                        std::string("INSERT INTO approvals(") + kApprovalColumns + ") VALUES" +
                            PgValueRows(1, params.size()),
                        std::span<const PgParam>(params))
                  .status();
  if (st.code() == StatusCode::kAlreadyExists) {
    return AlreadyExistsError("approval " + r.id + " exists");
  }
  return st;
}

Result<std::vector<ApprovalRow>> PgAttributionStore::QueryApprovals(
    const std::string& where, const std::vector<PgParam>& params, const std::string& order_limit) {
  std::string sql = std::string("SELECT ") + kApprovalColumns + " FROM approvals";
  if (!where.empty()) sql += " WHERE " + where;
  sql += order_limit;
  ASSIGN_OR_RETURN(PgRows rows, db_->Exec("read approvals", sql, std::span<const PgParam>(params)));
  std::vector<ApprovalRow> out;
  out.reserve(rows.size());
  for (int i = 0; i < rows.size(); ++i) out.push_back(ReadApproval(rows, i));
  return out;
}

Result<std::optional<ApprovalRow>> PgAttributionStore::GetApproval(const std::string& id) {
  ASSIGN_OR_RETURN(auto rows, QueryApprovals("id = $1", {PgText(id)}, ""));
  if (rows.empty()) return std::optional<ApprovalRow>();
  return std::optional<ApprovalRow>(std::move(rows[0]));
}

Result<std::optional<ApprovalRow>> PgAttributionStore::FindApproval(
    const std::string& digest, const std::vector<std::string>& states) {
  ASSIGN_OR_RETURN(
      auto rows,
      states.empty()
          ? QueryApprovals("digest = $1", {PgText(digest)},
                           " ORDER BY requested_ms DESC, id COLLATE \"C\" DESC LIMIT 1")
          : QueryApprovals("digest = $1 AND state = ANY($2::text[])",
                           {PgText(digest), PgText(TextArray(states))},
                           " ORDER BY requested_ms DESC, id COLLATE \"C\" DESC LIMIT 1"));
  if (rows.empty()) return std::optional<ApprovalRow>();
  return std::optional<ApprovalRow>(std::move(rows[0]));
}

Result<std::vector<ApprovalRow>> PgAttributionStore::ListApprovals(
    const std::vector<std::string>& states, size_t limit) {
  const PgParam most = PgInt(static_cast<int64_t>(
      std::min<uint64_t>(limit, static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))));
  if (states.empty()) {
    return QueryApprovals("", {most},
                          " ORDER BY requested_ms DESC, id COLLATE \"C\" DESC LIMIT $1");
  }
  return QueryApprovals("state = ANY($1::text[])", {PgText(TextArray(states)), most},
                        " ORDER BY requested_ms DESC, id COLLATE \"C\" DESC LIMIT $2");
}

Result<std::vector<ApprovalRow>> PgAttributionStore::DueApprovals(int64_t now_ms, size_t limit) {
  const PgParam most = PgInt(static_cast<int64_t>(
      std::min<uint64_t>(limit, static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))));
  return QueryApprovals("state IN ('pending', 'approved') AND expires_ms <= $1",
                        {PgInt(now_ms), most}, " ORDER BY expires_ms, id COLLATE \"C\" LIMIT $2");
}

Result<std::vector<ApprovalRow>> PgAttributionStore::ApprovalsOfSessions(
    const std::vector<std::string>& sids, const std::vector<std::string>& states) {
  if (sids.empty()) return std::vector<ApprovalRow>();
  if (states.empty()) {
    return QueryApprovals("sid = ANY($1::text[])", {PgText(TextArray(sids))},
                          " ORDER BY requested_ms, id COLLATE \"C\"");
  }
  return QueryApprovals("sid = ANY($1::text[]) AND state = ANY($2::text[])",
                        {PgText(TextArray(sids)), PgText(TextArray(states))},
                        " ORDER BY requested_ms, id COLLATE \"C\"");
}

Status PgAttributionStore::UpdateApproval(const ApprovalRow& r, const std::string& expected_state) {
  std::vector<PgParam> params = ApprovalParams(r);
  params.push_back(PgText(expected_state));
  // The compare-and-set is this one statement (schema step 3). When it changes nothing, the
  // state read after it says why; should that read find the expected state (the row moved on
  // and back between the two), the update is tried again.
  for (int attempt = 0;; ++attempt) {
    ASSIGN_OR_RETURN(
        PgRows updated,
        db_->Exec("update approval",
                  "UPDATE approvals SET digest = $2, state = $3, sid = $4, root_sid = $5, "
                  "agent = $6, instance = $7, initiator = $8, action = $9, target = $10, "
                  "approver_group = $11, policies = $12, request_action = $13, "
                  "requested_ms = $14, expires_ms = $15, approver = $16, verified_by = $17, "
                  "reason = $18, decided_ms = $19, decided_index = $20, used_by = $21, "
                  "uses = $22 WHERE id = $1 AND state = $23",
                  std::span<const PgParam>(params)));
    if (updated.affected() == 1) return OkStatus();
    ASSIGN_OR_RETURN(
        PgRows now,
        db_->Exec("read approval", "SELECT state FROM approvals WHERE id = $1", {PgText(r.id)}));
    if (now.size() == 0) return NotFoundError("no approval " + r.id);
    if (now.Text(0, 0) != expected_state || attempt == 2) {
      return FailedPreconditionError("approval " + r.id + " is " + std::string(now.Text(0, 0)));
    }
  }
}

}  // namespace custody::store

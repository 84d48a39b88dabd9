// AttributionStore: the attribution module's own state, in SQLite (`attribution.db`):
// published policy sets (by content hash, one active), an index of recorded actions (what
// investigations and session counters query: session, root session, agent, trace, txn, target,
// time), first use of a tool by an agent, and containments.
//
// The ledger stays the record of truth: an action row points at its decision and outcome
// leaves. Action rows are written in batches (see AttributionService) with synchronous=NORMAL;
// the rest with synchronous=FULL semantics per statement. Thread-safe (one mutex).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/mutex.h"
#include "common/status.h"
#include "store/sqlite_db.h"

namespace custody::attribution {

struct PolicySetRecord {
  std::string hash;      // PolicySet::hash_hex()
  std::string policies;  // Cedar text, as published
  std::string entities;  // Cedar entities JSON (may be "[]")
  int64_t published_ms = 0;
  std::string published_by;
  int64_t ledger_index = -1;
};

struct ActionRow {
  std::string action_id;  // also the decision event's event_id
  int64_t decision_index = -1;
  int64_t outcome_index = -1;
  std::string sid;
  std::string root_sid;
  std::string agent;
  std::string initiator;
  std::string action;
  std::string target;    // "<server>/<tool>" or "<type>:<id>"
  std::string decision;  // "allow" | "deny"
  std::string trace_id;
  std::string span_id;
  std::string txn;
  int64_t time_ms = 0;
  std::string status;  // outcome status once completed
};

struct SessionCounts {
  int64_t calls = 0;
  int64_t denials = 0;
  int64_t distinct_targets = 0;
  int64_t calls_since = 0;  // calls at or after `since_ms`
};

// Allowed or denied use of one target by one session, summed (graphs, blast radius).
struct ActionUsage {
  std::string sid;
  std::string root_sid;
  std::string agent;
  std::string initiator;
  std::string target;
  std::string decision;
  int64_t count = 0;
  int64_t last_ms = 0;
};

struct ContainmentRow {
  std::string event_id;
  std::string scope;    // "session" | "agent"
  std::string subject;  // sid or agent name
  std::string reason;
  std::string trigger_action;  // the decision that tripped it, if automatic
  std::string by;              // operator, if manual
  int64_t time_ms = 0;
  int64_t ledger_index = -1;
};

class AttributionStore {
 public:
  static Result<std::unique_ptr<AttributionStore>> Open(const std::string& path);

  Status PutPolicySet(const PolicySetRecord& r);  // and makes it the active one
  Result<std::optional<PolicySetRecord>> ActivePolicySet();
  Result<std::vector<PolicySetRecord>> ListPolicySets();  // newest first, without texts

  // One transaction: every row of `rows` is written whole (insert or replace), then each of
  // `outcomes` sets outcome_index and status of its row, written whole if it is missing.
  Status WriteActions(const std::vector<ActionRow>& rows, const std::vector<ActionRow>& outcomes);
  Result<std::optional<ActionRow>> GetAction(const std::string& action_id);
  // Actions of any of `sids`, oldest first.
  Result<std::vector<ActionRow>> ActionsOfSessions(const std::vector<std::string>& sids);
  Result<std::vector<ActionRow>> ActionsOfAgent(const std::string& agent, int64_t since_ms);
  Result<std::vector<ActionRow>> ActionsOfInitiator(const std::string& initiator);
  Result<std::optional<ActionRow>> ActionBySpan(const std::string& trace_id,
                                                const std::string& span_id);
  // Every distinct target, and every distinct action name, ever recorded (from their indexes).
  Result<std::vector<std::string>> DistinctTargets();
  Result<std::vector<std::string>> DistinctActions();
  // Usage summed per (session, target, decision). A full pass over the index: for graphs.
  Result<std::vector<ActionUsage>> UsageBySession();
  Result<SessionCounts> CountSession(const std::string& sid, int64_t since_ms);

  Result<bool> HasUsed(const std::string& agent, const std::string& target);
  Status MarkUsed(const std::string& agent, const std::string& target, int64_t time_ms);

  Status InsertContainment(const ContainmentRow& row);
  Result<std::vector<ContainmentRow>> ContainmentsOf(const std::string& subject);

 private:
  explicit AttributionStore(std::unique_ptr<store::SqliteDb> db) : db_(std::move(db)) {}
  Result<std::vector<ActionRow>> QueryActions(const std::string& where,
                                              const std::vector<std::string>& args);
  Mutex mu_;
  std::unique_ptr<store::SqliteDb> db_ PT_GUARDED_BY(mu_);
};

}  // namespace custody::attribution

// AttributionStore: the attribution module's own state: published policy sets (by content hash,
// one active), an index of recorded actions (what investigations and session counters query:
// session, root session, agent, trace, txn, target, time), first use of a tool by an agent, and
// containments. The ledger stays the record of truth: an action row points at its decision and
// outcome leaves, and the index can be derived from the ledger again; the index's high-water mark
// (IndexedSize) says from where.
//
// An interface: SqliteAttributionStore (store/sqlite/, `attribution.db`) is the embedded default,
// MemoryAttributionStore (store/memory/) serves unit tests. Both pass the same conformance suite
// (store/testing/attribution_store_conformance.h), as every future backend must. Implementations
// are thread-safe.
//
// Session counters (CountCall, CountDenial, SessionCounters) are kept apart from the action index,
// which is written in batches behind the ledger: they are the counters policies see, exact at the
// moment of a call. Every backend keeps them; the attribution service counts through them only
// when the store is shared by several nodes (SharedAcrossNodes), and in memory otherwise.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace custody::store {

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

// A person's approval of one exact action (docs/APPROVALS.md). Asked for by a decision that a
// `@approval` policy held (decision "approval_required"), then approved or denied by a member of
// its group, or expired, or cancelled (the session was contained); an approved one is used by
// the retry it allows. State changes go through UpdateApproval, a compare-and-set on the state,
// so nodes racing to decide or use one approval cannot both win.
struct ApprovalRow {
  std::string id;      // UUIDv7
  std::string digest;  // "sha256:<hex>" of what was asked: instance, session, action, target, args
  // "pending" | "approved" | "denied" | "expired" | "cancelled" | "used"
  std::string state;
  std::string sid, root_sid, agent, instance, initiator;
  std::string action;
  std::string target;  // the target's key
  // The approver groups, Cedar entity uids (Group::"finance"), one per line when several
  // `@approval` policies held the action: an approver must be in every one.
  std::string group;
  std::string policies;        // the @approval policies that held the action, space-separated
  std::string request_action;  // the decision that asked (its action id)
  int64_t requested_ms = 0;
  int64_t expires_ms = 0;      // pending: approvable until then; approved: usable until then
  std::string approver;        // who approved or denied
  std::string verified_by;     // how the approver was verified ("admin-token:<id>", "oidc:<iss>")
  std::string reason;          // the approver's reason, or why it expired or was cancelled
  int64_t decided_ms = 0;      // approved, denied, expired or cancelled at
  int64_t decided_index = -1;  // the ledger index of the approval.* event that decided it
  std::string used_by;         // the last action it allowed
  int64_t uses = 0;            // actions it allowed
};

class AttributionStore {
 public:
  virtual ~AttributionStore() = default;

  virtual Status PutPolicySet(const PolicySetRecord& r) = 0;  // and makes it the active one
  virtual Result<std::optional<PolicySetRecord>> ActivePolicySet() = 0;
  virtual Result<std::vector<PolicySetRecord>> ListPolicySets() = 0;  // newest first, no texts
  // One published set, with its texts, by hash (any version, not only the active one).
  virtual Result<std::optional<PolicySetRecord>> GetPolicySet(const std::string& hash) = 0;

  // One transaction: every row of `rows` is written whole (insert or replace), then each of
  // `outcomes` sets outcome_index and status of its row, written whole if it is missing.
  virtual Status WriteActions(const std::vector<ActionRow>& rows,
                              const std::vector<ActionRow>& outcomes) = 0;
  virtual Result<std::optional<ActionRow>> GetAction(const std::string& action_id) = 0;
  // Actions of any of `sids`, oldest first.
  virtual Result<std::vector<ActionRow>> ActionsOfSessions(
      const std::vector<std::string>& sids) = 0;
  // Actions of `agent` at or after `since_ms`, oldest first.
  virtual Result<std::vector<ActionRow>> ActionsOfAgent(const std::string& agent,
                                                        int64_t since_ms) = 0;
  // Actions whose session's initiator is `initiator`, oldest first.
  virtual Result<std::vector<ActionRow>> ActionsOfInitiator(const std::string& initiator) = 0;
  virtual Result<std::optional<ActionRow>> ActionBySpan(const std::string& trace_id,
                                                        const std::string& span_id) = 0;
  // Every distinct target, and every distinct action name, ever recorded, sorted.
  virtual Result<std::vector<std::string>> DistinctTargets() = 0;
  virtual Result<std::vector<std::string>> DistinctActions() = 0;
  // Usage summed per (session, target, decision). A full pass over the index: for graphs.
  virtual Result<std::vector<ActionUsage>> UsageBySession() = 0;
  // Counted over the action index (as written so far).
  virtual Result<SessionCounts> CountSession(const std::string& sid, int64_t since_ms) = 0;

  // True when other processes (other nodes) read and write the same store, so per-process
  // state (the service's in-memory counters) would see only a part of a session.
  virtual bool SharedAcrossNodes() const { return false; }
  // Counts a call of `sid` on `target` at `time_ms` and returns the session's counters as they
  // were just before it, in one atomic step: concurrent calls of one session, at any node, each
  // see the ones counted before them. calls_since: calls at or after `since_ms`. A call's time is
  // kept as at least the session's latest call time (clocks of nodes and threads are not
  // ordered), so the calls of a session are in time order and the ones since a moment are a
  // suffix of them. `since_ms` is meant to trail `time_ms` by a fixed window: call times older
  // than one more window before `since_ms` may be forgotten.
  virtual Result<SessionCounts> CountCall(const std::string& sid, const std::string& target,
                                          int64_t time_ms, int64_t since_ms) = 0;
  // Counts a denial of a call already counted by CountCall.
  virtual Status CountDenial(const std::string& sid) = 0;
  // The counters CountCall would return now, without counting anything (dry runs).
  virtual Result<SessionCounts> SessionCounters(const std::string& sid, int64_t since_ms) = 0;

  virtual Result<bool> HasUsed(const std::string& agent, const std::string& target) = 0;
  // The first use is kept: marking a used target again changes nothing.
  virtual Status MarkUsed(const std::string& agent, const std::string& target, int64_t time_ms) = 0;

  // The index's high-water mark: a ledger size N such that every event at an index below N is in
  // the index (start-up re-indexes from N on). 0 for a new index. The mark only moves forward:
  // raising it to a size at or below the current one changes nothing.
  virtual Result<uint64_t> IndexedSize() = 0;
  virtual Status RaiseIndexedSize(uint64_t size) = 0;

  virtual Status InsertContainment(const ContainmentRow& row) = 0;
  // Containments of `subject`, oldest first.
  virtual Result<std::vector<ContainmentRow>> ContainmentsOf(const std::string& subject) = 0;

  // Approvals. AlreadyExists if the id is taken.
  virtual Status InsertApproval(const ApprovalRow& row) = 0;
  virtual Result<std::optional<ApprovalRow>> GetApproval(const std::string& id) = 0;
  // The newest approval (by requested_ms, then id) with `digest` in one of `states`.
  virtual Result<std::optional<ApprovalRow>> FindApproval(
      const std::string& digest, const std::vector<std::string>& states) = 0;
  // Approvals in one of `states` (every state when empty), newest first, at most `limit`.
  virtual Result<std::vector<ApprovalRow>> ListApprovals(const std::vector<std::string>& states,
                                                         size_t limit) = 0;
  // Open approvals (pending or approved) whose expires_ms is at or before `now_ms`, the
  // longest expired first (then by id), at most `limit`: what the expiry loop moves to expired.
  // Answered from an index on (state, expires_ms), so an idle node's check reads nothing.
  virtual Result<std::vector<ApprovalRow>> DueApprovals(int64_t now_ms, size_t limit) = 0;
  // Approvals of any of `sids` in one of `states` (every state when empty), oldest first.
  virtual Result<std::vector<ApprovalRow>> ApprovalsOfSessions(
      const std::vector<std::string>& sids, const std::vector<std::string>& states) = 0;
  // Replaces the stored row `row.id` with `row` if the stored state is `expected_state`, in one
  // atomic step. NotFound if there is no such row; FailedPrecondition (naming the stored state)
  // if its state is another: the caller lost a race or the approval moved on.
  virtual Status UpdateApproval(const ApprovalRow& row, const std::string& expected_state) = 0;
};

}  // namespace custody::store

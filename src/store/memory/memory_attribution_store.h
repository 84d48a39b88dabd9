// MemoryAttributionStore: the AttributionStore in memory, for unit tests of the modules above
// the store (no files, no fsync). It answers exactly as SqliteAttributionStore does: both pass
// store/testing/attribution_store_conformance.h. Thread-safe (one mutex).
#pragma once

#include <deque>
#include <map>
#include <set>
#include <string>
#include <utility>

#include "common/mutex.h"
#include "store/attribution_store.h"

namespace custody::store {

class MemoryAttributionStore final : public AttributionStore {
 public:
  Status PutPolicySet(const PolicySetRecord& r) override;
  Result<std::optional<PolicySetRecord>> ActivePolicySet() override;
  Result<std::vector<PolicySetRecord>> ListPolicySets() override;
  Result<std::optional<PolicySetRecord>> GetPolicySet(const std::string& hash) override;
  Status WriteActions(const std::vector<ActionRow>& rows,
                      const std::vector<ActionRow>& outcomes) override;
  Result<std::optional<ActionRow>> GetAction(const std::string& action_id) override;
  Result<std::vector<ActionRow>> ActionsOfSessions(const std::vector<std::string>& sids) override;
  Result<std::vector<ActionRow>> ActionsOfAgent(const std::string& agent,
                                                int64_t since_ms) override;
  Result<std::vector<ActionRow>> ActionsOfInitiator(const std::string& initiator) override;
  Result<std::optional<ActionRow>> ActionBySpan(const std::string& trace_id,
                                                const std::string& span_id) override;
  Result<std::vector<std::string>> DistinctTargets() override;
  Result<std::vector<std::string>> DistinctActions() override;
  Result<std::vector<ActionUsage>> UsageBySession() override;
  Result<SessionCounts> CountSession(const std::string& sid, int64_t since_ms) override;
  Result<SessionCounts> CountCall(const std::string& sid, const std::string& target,
                                  int64_t time_ms, int64_t since_ms) override;
  Status CountDenial(const std::string& sid) override;
  Result<SessionCounts> SessionCounters(const std::string& sid, int64_t since_ms) override;
  Result<bool> HasUsed(const std::string& agent, const std::string& target) override;
  Status MarkUsed(const std::string& agent, const std::string& target, int64_t time_ms) override;
  Result<uint64_t> IndexedSize() override;
  Status RaiseIndexedSize(uint64_t size) override;
  Status InsertContainment(const ContainmentRow& row) override;
  Result<std::vector<ContainmentRow>> ContainmentsOf(const std::string& subject) override;
  Status InsertApproval(const ApprovalRow& row) override;
  Result<std::optional<ApprovalRow>> GetApproval(const std::string& id) override;
  Result<std::optional<ApprovalRow>> FindApproval(const std::string& digest,
                                                  const std::vector<std::string>& states) override;
  Result<std::vector<ApprovalRow>> ListApprovals(const std::vector<std::string>& states,
                                                 size_t limit) override;
  Result<std::vector<ApprovalRow>> DueApprovals(int64_t now_ms, size_t limit) override;
  Result<std::vector<ApprovalRow>> ApprovalsOfSessions(
      const std::vector<std::string>& sids, const std::vector<std::string>& states) override;
  Status UpdateApproval(const ApprovalRow& row, const std::string& expected_state) override;

 private:
  // The approvals matching `keep` and in one of `states` (every state when empty), newest first
  // (requested_ms, then id).
  template <class Pred>
  std::vector<ApprovalRow> Approvals(const std::vector<std::string>& states, Pred keep) const
      REQUIRES(mu_);

  // The rows matching `keep`, oldest first (time, then decision index, then id).
  template <class Pred>
  std::vector<ActionRow> Actions(Pred keep) const REQUIRES(mu_);

  struct Counters {
    int64_t calls = 0;
    int64_t denials = 0;
    std::set<std::string> targets;
    int64_t last_ms = 0;
    // (time, number of the first call at that time), oldest first: the recent calls.
    std::deque<std::pair<int64_t, int64_t>> times;
  };
  static SessionCounts Read(const Counters& c, int64_t since_ms);

  mutable Mutex mu_;
  std::map<std::string, PolicySetRecord> policy_sets_ GUARDED_BY(mu_);  // by hash
  std::string active_policy_ GUARDED_BY(mu_);
  std::map<std::string, ActionRow> actions_ GUARDED_BY(mu_);            // by action id
  std::set<std::pair<std::string, std::string>> used_ GUARDED_BY(mu_);  // (agent, target)
  std::map<std::string, ContainmentRow> containments_ GUARDED_BY(mu_);  // by event id
  uint64_t indexed_size_ GUARDED_BY(mu_) = 0;
  std::map<std::string, Counters> counters_ GUARDED_BY(mu_);      // by sid
  std::map<std::string, ApprovalRow> approvals_ GUARDED_BY(mu_);  // by id
};

}  // namespace custody::store

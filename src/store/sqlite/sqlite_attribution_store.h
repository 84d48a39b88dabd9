// SqliteAttributionStore: the AttributionStore in one SQLite file (`attribution.db`), opened
// exclusively by the serving process. Action rows are written in batches (one transaction per
// WriteActions) with synchronous=NORMAL: the ledger is the record of truth, and the index can be
// derived from it again. Thread-safe (one mutex over the one connection).
#pragma once

#include <memory>
#include <string>

#include "common/mutex.h"
#include "store/attribution_store.h"
#include "store/sqlite/sqlite_db.h"

namespace custody::store {

class SqliteAttributionStore final : public AttributionStore {
 public:
  // Opens (creating it 0600) and migrates the file (store/sqlite_schema.h).
  static Result<std::unique_ptr<SqliteAttributionStore>> Open(const std::string& path);

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
  explicit SqliteAttributionStore(std::unique_ptr<SqliteDb> db) : db_(std::move(db)) {}
  // The SQL stays in this file: `where` is one of the fixed clauses above, never caller input.
  Result<std::vector<ActionRow>> QueryActions(const std::string& where,
                                              const std::vector<std::string>& args);
  // Approvals WHERE `where` (built here from fixed clauses and numbered placeholders, never
  // caller input) with `args` bound in order, then `order_limit`.
  Result<std::vector<ApprovalRow>> QueryApprovals(const std::string& where,
                                                  const std::vector<std::string>& args,
                                                  const std::string& order_limit);
  Result<SessionCounts> ReadCounters(const std::string& sid, int64_t since_ms) REQUIRES(mu_);
  Mutex mu_;
  std::unique_ptr<SqliteDb> db_ PT_GUARDED_BY(mu_);
};

}  // namespace custody::store

// PgAttributionStore: AttributionStore in PostgreSQL (component "attribution", version 3): the
// same tables as attribution.db (policy sets, the action index, first use, containments, the
// index's high-water mark, approvals), shared by the nodes of a deployment so that investigations
// and session counters see every node's actions. Session counters are counted in the database, one
// round trip per call (the function custody_count_call, schema step 2), so that a session calling
// through several nodes sees the sum. Thread-safe (PgDb's pool).
#pragma once

#include <memory>
#include <string>

#include "store/attribution_store.h"
#include "store/postgres/pg_db.h"

namespace custody::store {

class PgAttributionStore final : public AttributionStore {
 public:
  static Result<std::unique_ptr<PgAttributionStore>> Open(const std::string& url,
                                                          PgOptions options = {});
  ~PgAttributionStore() override;
  // host:port/database, to tell whether another store is in the same database.
  const std::string& where() const { return db_->where(); }

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
  bool SharedAcrossNodes() const override { return true; }
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
  explicit PgAttributionStore(std::unique_ptr<PgDb> db) : db_(std::move(db)) {}
  Result<std::vector<ActionRow>> QueryActions(const std::string& where,
                                              std::initializer_list<PgParam> params);
  // `where` and `order_limit` are fixed clauses of this file, never caller input.
  Result<std::vector<ApprovalRow>> QueryApprovals(const std::string& where,
                                                  const std::vector<PgParam>& params,
                                                  const std::string& order_limit);
  Result<std::vector<std::string>> Strings(const char* what, const char* sql);
  std::unique_ptr<PgDb> db_;
};

}  // namespace custody::store

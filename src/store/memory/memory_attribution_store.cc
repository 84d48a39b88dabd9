#include "store/memory/memory_attribution_store.h"

#include <algorithm>
#include <tuple>

namespace custody::store {

Status MemoryAttributionStore::PutPolicySet(const PolicySetRecord& r) {
  MutexLock lock(mu_);
  auto [it, inserted] = policy_sets_.emplace(r.hash, r);
  if (!inserted) {
    // Published again: the text stays as first stored, the rest is the newest publication.
    it->second.entities = r.entities;
    it->second.published_ms = r.published_ms;
    it->second.published_by = r.published_by;
    it->second.ledger_index = r.ledger_index;
  }
  active_policy_ = r.hash;
  return OkStatus();
}

Result<std::optional<PolicySetRecord>> MemoryAttributionStore::ActivePolicySet() {
  MutexLock lock(mu_);
  auto it = policy_sets_.find(active_policy_);
  if (it == policy_sets_.end()) return std::optional<PolicySetRecord>();
  return std::optional<PolicySetRecord>(it->second);
}

Result<std::vector<PolicySetRecord>> MemoryAttributionStore::ListPolicySets() {
  MutexLock lock(mu_);
  std::vector<PolicySetRecord> out;
  for (const auto& [hash, r] : policy_sets_) {
    PolicySetRecord shown = r;
    shown.policies.clear();
    shown.entities.clear();
    out.push_back(std::move(shown));
  }
  std::sort(out.begin(), out.end(), [](const PolicySetRecord& a, const PolicySetRecord& b) {
    return std::tie(b.published_ms, a.hash) < std::tie(a.published_ms, b.hash);
  });
  return out;
}

Result<std::optional<PolicySetRecord>> MemoryAttributionStore::GetPolicySet(
    const std::string& hash) {
  MutexLock lock(mu_);
  auto it = policy_sets_.find(hash);
  if (it == policy_sets_.end()) return std::optional<PolicySetRecord>();
  return std::optional<PolicySetRecord>(it->second);
}

Status MemoryAttributionStore::WriteActions(const std::vector<ActionRow>& rows,
                                            const std::vector<ActionRow>& outcomes) {
  MutexLock lock(mu_);
  for (const ActionRow& r : rows) actions_[r.action_id] = r;
  for (const ActionRow& r : outcomes) {
    auto it = actions_.find(r.action_id);
    if (it == actions_.end()) {
      actions_.emplace(r.action_id, r);
    } else {
      it->second.outcome_index = r.outcome_index;
      it->second.status = r.status;
    }
  }
  return OkStatus();
}

template <class Pred>
std::vector<ActionRow> MemoryAttributionStore::Actions(Pred keep) const {
  std::vector<ActionRow> out;
  for (const auto& [id, r] : actions_) {
    if (keep(r)) out.push_back(r);
  }
  std::stable_sort(out.begin(), out.end(), [](const ActionRow& a, const ActionRow& b) {
    return std::tie(a.time_ms, a.decision_index) < std::tie(b.time_ms, b.decision_index);
  });
  return out;
}

Result<std::optional<ActionRow>> MemoryAttributionStore::GetAction(const std::string& action_id) {
  MutexLock lock(mu_);
  auto it = actions_.find(action_id);
  if (it == actions_.end()) return std::optional<ActionRow>();
  return std::optional<ActionRow>(it->second);
}

Result<std::vector<ActionRow>> MemoryAttributionStore::ActionsOfSessions(
    const std::vector<std::string>& sids) {
  MutexLock lock(mu_);
  std::set<std::string> wanted(sids.begin(), sids.end());
  return Actions([&](const ActionRow& r) { return wanted.count(r.sid) != 0; });
}

Result<std::vector<ActionRow>> MemoryAttributionStore::ActionsOfAgent(const std::string& agent,
                                                                      int64_t since_ms) {
  MutexLock lock(mu_);
  return Actions([&](const ActionRow& r) { return r.agent == agent && r.time_ms >= since_ms; });
}

Result<std::vector<ActionRow>> MemoryAttributionStore::ActionsOfInitiator(
    const std::string& initiator) {
  MutexLock lock(mu_);
  return Actions([&](const ActionRow& r) { return r.initiator == initiator; });
}

Result<std::optional<ActionRow>> MemoryAttributionStore::ActionBySpan(const std::string& trace_id,
                                                                      const std::string& span_id) {
  MutexLock lock(mu_);
  auto rows =
      Actions([&](const ActionRow& r) { return r.trace_id == trace_id && r.span_id == span_id; });
  if (rows.empty()) return std::optional<ActionRow>();
  return std::optional<ActionRow>(std::move(rows.front()));
}

Result<std::vector<std::string>> MemoryAttributionStore::DistinctTargets() {
  MutexLock lock(mu_);
  std::set<std::string> s;
  for (const auto& [id, r] : actions_) s.insert(r.target);
  return std::vector<std::string>(s.begin(), s.end());
}

Result<std::vector<std::string>> MemoryAttributionStore::DistinctActions() {
  MutexLock lock(mu_);
  std::set<std::string> s;
  for (const auto& [id, r] : actions_) s.insert(r.action);
  return std::vector<std::string>(s.begin(), s.end());
}

Result<std::vector<ActionUsage>> MemoryAttributionStore::UsageBySession() {
  MutexLock lock(mu_);
  std::map<std::tuple<std::string, std::string, std::string>, ActionUsage> groups;
  for (const auto& [id, r] : actions_) {
    ActionUsage& u = groups[{r.sid, r.target, r.decision}];
    if (u.count == 0) {
      u = ActionUsage{r.sid, r.root_sid, r.agent, r.initiator, r.target, r.decision, 0, r.time_ms};
    }
    ++u.count;
    u.last_ms = std::max(u.last_ms, r.time_ms);
  }
  std::vector<ActionUsage> out;
  for (auto& [key, u] : groups) out.push_back(std::move(u));
  std::stable_sort(out.begin(), out.end(), [](const ActionUsage& a, const ActionUsage& b) {
    return std::tie(a.root_sid, a.sid, a.target) < std::tie(b.root_sid, b.sid, b.target);
  });
  return out;
}

Result<SessionCounts> MemoryAttributionStore::CountSession(const std::string& sid,
                                                           int64_t since_ms) {
  MutexLock lock(mu_);
  SessionCounts c;
  std::set<std::string> targets;
  for (const auto& [id, r] : actions_) {
    if (r.sid != sid) continue;
    ++c.calls;
    if (r.decision == "deny") ++c.denials;
    if (r.time_ms >= since_ms) ++c.calls_since;
    targets.insert(r.target);
  }
  c.distinct_targets = static_cast<int64_t>(targets.size());
  return c;
}

SessionCounts MemoryAttributionStore::Read(const Counters& c, int64_t since_ms) {
  SessionCounts out{c.calls, c.denials, static_cast<int64_t>(c.targets.size()), 0};
  // Times are in order: the first one at or after since_ms starts the suffix counted.
  auto it = std::lower_bound(c.times.begin(), c.times.end(), std::make_pair(since_ms, int64_t{0}));
  if (it != c.times.end()) out.calls_since = c.calls - it->second + 1;
  return out;
}

Result<SessionCounts> MemoryAttributionStore::CountCall(const std::string& sid,
                                                        const std::string& target, int64_t time_ms,
                                                        int64_t since_ms) {
  MutexLock lock(mu_);
  Counters& c = counters_[sid];
  SessionCounts before = Read(c, since_ms);
  c.last_ms = c.calls == 0 ? time_ms : std::max(c.last_ms, time_ms);
  ++c.calls;
  c.targets.insert(target);
  if (c.times.empty() || c.times.back().first != c.last_ms)
    c.times.emplace_back(c.last_ms, c.calls);
  const int64_t forget_before = since_ms - (time_ms - since_ms);
  while (!c.times.empty() && c.times.front().first < forget_before) c.times.pop_front();
  return before;
}

Status MemoryAttributionStore::CountDenial(const std::string& sid) {
  MutexLock lock(mu_);
  ++counters_[sid].denials;
  return OkStatus();
}

Result<SessionCounts> MemoryAttributionStore::SessionCounters(const std::string& sid,
                                                              int64_t since_ms) {
  MutexLock lock(mu_);
  auto it = counters_.find(sid);
  if (it == counters_.end()) return SessionCounts{};
  return Read(it->second, since_ms);
}

Result<bool> MemoryAttributionStore::HasUsed(const std::string& agent, const std::string& target) {
  MutexLock lock(mu_);
  return used_.count({agent, target}) != 0;
}

Status MemoryAttributionStore::MarkUsed(const std::string& agent, const std::string& target,
                                        int64_t) {
  MutexLock lock(mu_);
  used_.insert({agent, target});
  return OkStatus();
}

Result<uint64_t> MemoryAttributionStore::IndexedSize() {
  MutexLock lock(mu_);
  return indexed_size_;
}

Status MemoryAttributionStore::RaiseIndexedSize(uint64_t size) {
  MutexLock lock(mu_);
  indexed_size_ = std::max(indexed_size_, size);
  return OkStatus();
}

Status MemoryAttributionStore::InsertContainment(const ContainmentRow& row) {
  MutexLock lock(mu_);
  if (!containments_.emplace(row.event_id, row).second) {
    return AlreadyExistsError("containment " + row.event_id + " is recorded");
  }
  return OkStatus();
}

Result<std::vector<ContainmentRow>> MemoryAttributionStore::ContainmentsOf(
    const std::string& subject) {
  MutexLock lock(mu_);
  std::vector<ContainmentRow> out;
  for (const auto& [id, r] : containments_) {
    if (r.subject == subject) out.push_back(r);
  }
  std::stable_sort(out.begin(), out.end(), [](const ContainmentRow& a, const ContainmentRow& b) {
    return a.time_ms < b.time_ms;
  });
  return out;
}

Status MemoryAttributionStore::InsertApproval(const ApprovalRow& row) {
  MutexLock lock(mu_);
  if (!approvals_.emplace(row.id, row).second) {
    return AlreadyExistsError("approval " + row.id + " exists");
  }
  return OkStatus();
}

Result<std::optional<ApprovalRow>> MemoryAttributionStore::GetApproval(const std::string& id) {
  MutexLock lock(mu_);
  auto it = approvals_.find(id);
  if (it == approvals_.end()) return std::optional<ApprovalRow>();
  return std::optional<ApprovalRow>(it->second);
}

template <class Pred>
std::vector<ApprovalRow> MemoryAttributionStore::Approvals(const std::vector<std::string>& states,
                                                           Pred keep) const {
  std::vector<ApprovalRow> out;
  for (const auto& [id, r] : approvals_) {
    if (!states.empty() && std::find(states.begin(), states.end(), r.state) == states.end()) {
      continue;
    }
    if (keep(r)) out.push_back(r);
  }
  std::sort(out.begin(), out.end(), [](const ApprovalRow& a, const ApprovalRow& b) {
    return std::tie(b.requested_ms, b.id) < std::tie(a.requested_ms, a.id);
  });
  return out;
}

Result<std::optional<ApprovalRow>> MemoryAttributionStore::FindApproval(
    const std::string& digest, const std::vector<std::string>& states) {
  MutexLock lock(mu_);
  auto rows = Approvals(states, [&](const ApprovalRow& r) { return r.digest == digest; });
  if (rows.empty()) return std::optional<ApprovalRow>();
  return std::optional<ApprovalRow>(std::move(rows.front()));
}

Result<std::vector<ApprovalRow>> MemoryAttributionStore::ListApprovals(
    const std::vector<std::string>& states, size_t limit) {
  MutexLock lock(mu_);
  auto rows = Approvals(states, [](const ApprovalRow&) { return true; });
  if (rows.size() > limit) rows.resize(limit);
  return rows;
}

Result<std::vector<ApprovalRow>> MemoryAttributionStore::DueApprovals(int64_t now_ms,
                                                                      size_t limit) {
  MutexLock lock(mu_);
  auto rows = Approvals({"pending", "approved"},
                        [&](const ApprovalRow& r) { return r.expires_ms <= now_ms; });
  std::sort(rows.begin(), rows.end(), [](const ApprovalRow& a, const ApprovalRow& b) {
    return std::tie(a.expires_ms, a.id) < std::tie(b.expires_ms, b.id);
  });
  if (rows.size() > limit) rows.resize(limit);
  return rows;
}

Result<std::vector<ApprovalRow>> MemoryAttributionStore::ApprovalsOfSessions(
    const std::vector<std::string>& sids, const std::vector<std::string>& states) {
  MutexLock lock(mu_);
  std::set<std::string> wanted(sids.begin(), sids.end());
  auto rows = Approvals(states, [&](const ApprovalRow& r) { return wanted.count(r.sid) != 0; });
  std::reverse(rows.begin(), rows.end());  // oldest first
  return rows;
}

Status MemoryAttributionStore::UpdateApproval(const ApprovalRow& row,
                                              const std::string& expected_state) {
  MutexLock lock(mu_);
  auto it = approvals_.find(row.id);
  if (it == approvals_.end()) return NotFoundError("no approval " + row.id);
  if (it->second.state != expected_state) {
    return FailedPreconditionError("approval " + row.id + " is " + it->second.state);
  }
  it->second = row;
  return OkStatus();
}

}  // namespace custody::store

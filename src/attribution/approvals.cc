// Person-in-the-loop approvals: deciding, listing, expiring and cancelling them. Asking for one
// and using one are steps of Authorize (ApplyApproval, attribution_service.cc). See
// docs/APPROVALS.md.
#include <boost/json.hpp>

#include "attribution/attribution_service.h"
#include "common/encoding.h"
#include "common/jcs_value.h"
#include "common/words.h"
#include "crypto/sha256.h"
#include "events/action_events.h"
#include "identity/token_service.h"
#include "ledger/ledger.h"

namespace custody::attribution {

namespace json = boost::json;

std::string AttributionService::ApprovalDigest(const std::string& instance, const std::string& sid,
                                               const std::string& action,
                                               const std::string& target_key,
                                               const json::value& arguments) {
  json::object o{{"instance", instance},
                 {"sid", sid},
                 {"action", action},
                 {"target", target_key},
                 {"arguments", arguments.is_null() ? json::value(json::object()) : arguments}};
  auto c = CanonicalizeJsonValue(o);
  // The arguments were parsed from JSON, so they canonicalize; the fallback keeps a digest
  // binding anyway.
  return "sha256:" + HexEncode(crypto::Sha256(c.ok() ? *c : json::serialize(o)));
}

std::string ApprovalGroupsText(const ApprovalRow& row) {
  std::string out;
  for (const auto& g : ApprovalGroups(row)) out += (out.empty() ? "" : " and ") + g;
  return out;
}

std::vector<std::string> ApprovalGroups(const ApprovalRow& row) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= row.group.size() && !row.group.empty()) {
    size_t nl = row.group.find('\n', pos);
    if (nl == std::string::npos) nl = row.group.size();
    if (nl > pos) out.push_back(row.group.substr(pos, nl - pos));
    pos = nl + 1;
  }
  return out;
}

Result<uint64_t> AttributionService::RecordApprovalChange(const ApprovalRow& row,
                                                          const std::string& kind) {
  events::ApprovalChange e;
  e.kind = kind;
  e.event_id = ids_.NextString();
  e.time = FormatRfc3339Millis(clock_.Now());
  e.approval_id = row.id;
  e.digest = row.digest;
  e.groups = ApprovalGroups(row);
  e.policies = SplitSpaces(row.policies);
  e.request_action = row.request_action;
  e.action = row.action;
  e.target = row.target;
  e.sid = row.sid;
  e.root_sid = row.root_sid;
  e.agent = row.agent;
  e.instance = row.instance;
  e.initiator = row.initiator;
  e.approver = row.approver;
  e.verified_by = row.verified_by;
  e.reason = row.reason;
  if (kind == "approval.approve")
    e.expires_at = FormatRfc3339Millis(TimePoint(std::chrono::milliseconds(row.expires_ms)));
  e.single_use = options_.approvals.single_use;
  ASSIGN_OR_RETURN(ledger::AppendResult r, recorder_.Record(events::Build(e)));
  return r.index;
}

// A state change: compare-and-set in the store, then the event, then the event's index on the
// row. The store moves first so two nodes deciding at once record one decision; if the event
// cannot be recorded, the row goes back to what it was and the caller gets the error: nothing
// takes effect that the ledger does not hold.
Result<ApprovalRow> AttributionService::ChangeApproval(const ApprovalRow& from, ApprovalRow to,
                                                       const std::string& kind) {
  RETURN_IF_ERROR(store_.UpdateApproval(to, from.state));
  auto index = RecordApprovalChange(to, kind);
  if (!index.ok()) {
    if (Status st = store_.UpdateApproval(from, to.state); !st.ok())
      errors_.Report("approval.revert", st);
    return index.status().WithContext("recording " + kind);
  }
  ApprovalRow done = to;
  // An approved approval keeps the index of its approval (a use cites it); expiry and
  // cancellation of a pending one are what decided it.
  if (from.state == "pending") done.decided_index = static_cast<int64_t>(*index);
  if (Status st = store_.UpdateApproval(done, to.state); !st.ok())
    errors_.Report("approval.index", st);
  if (options_.approvals.on_changed) options_.approvals.on_changed(done);
  return done;
}

Result<ApprovalRow> AttributionService::DecideApproval(const std::string& id, bool approve,
                                                       const Approver& who,
                                                       const std::string& reason) {
  if (who.person.empty() || who.person.size() > 256)
    return InvalidArgumentError("the approver must be named (1-256 characters)");
  if (reason.size() > 1024) return InvalidArgumentError("the reason is over 1024 bytes");
  ASSIGN_OR_RETURN(auto found, store_.GetApproval(id));
  if (!found) return NotFoundError("no approval " + id);
  const ApprovalRow row = *found;
  const int64_t now_ms = UnixMillis(clock_.Now());
  if (row.state != "pending") {
    return FailedPreconditionError("approval " + id + " is " + row.state +
                                   (row.approver.empty() ? "" : " (by " + row.approver + ")"));
  }
  if (row.expires_ms <= now_ms) {
    ApprovalRow next = row;
    next.state = "expired";
    next.reason = "not decided in time";
    next.decided_ms = now_ms;
    (void)ChangeApproval(row, next, "approval.expire");
    return FailedPreconditionError(
        "approval " + id + " expired at " +
        FormatRfc3339Millis(TimePoint(std::chrono::milliseconds(row.expires_ms))));
  }
  if (auto session = tokens_.GetSession(row.sid); session.ok() && session->revoked) {
    ApprovalRow next = row;
    next.state = "cancelled";
    next.reason = "session revoked: " + session->revoke_reason;
    next.decided_ms = now_ms;
    (void)ChangeApproval(row, next, "approval.cancel");
    return FailedPreconditionError("the session of approval " + id +
                                   " is revoked: the approval is cancelled");
  }
  for (const std::string& group : ApprovalGroups(row)) {
    if (!IsApprover(who, group))
      return PermissionDeniedError(who.person + " is not a member of " + group);
  }
  if (!options_.approvals.allow_self_approval && who.person == row.initiator) {
    return PermissionDeniedError(who.person +
                                 " started the session and may not approve its actions "
                                 "(separation of duties; approval.allow_self_approval)");
  }
  ApprovalRow next = row;
  next.state = approve ? "approved" : "denied";
  next.approver = who.person;
  next.verified_by = who.verified_by;
  next.reason = reason;
  next.decided_ms = now_ms;
  if (approve) next.expires_ms = now_ms + options_.approvals.ttl.count();
  return ChangeApproval(row, next, approve ? "approval.approve" : "approval.deny");
}

Result<std::optional<ApprovalRow>> AttributionService::GetApproval(const std::string& id) {
  return store_.GetApproval(id);
}

Result<std::vector<ApprovalRow>> AttributionService::ListApprovals(
    const std::vector<std::string>& states, size_t limit) {
  return store_.ListApprovals(states, limit);
}

// Asks the store for the approvals due only (an indexed query that reads nothing when none is
// due), in batches until none is left, so any number expiring at once all expire now.
void AttributionService::ExpireApprovals() {
  constexpr size_t kBatch = 500;
  constexpr int kMostBatches = 100;  // per tick: the loop also serves cancellations
  const int64_t now_ms = UnixMillis(clock_.Now());
  for (int batch = 0; batch < kMostBatches; ++batch) {
    auto due = store_.DueApprovals(now_ms, kBatch);
    if (!due.ok()) return errors_.Report("approval.expire", due.status());
    size_t moved = 0;
    for (const ApprovalRow& row : *due) {
      ApprovalRow next = row;
      next.state = "expired";
      next.reason = row.state == "pending" ? "not decided in time" : "not used in time";
      next.decided_ms = now_ms;
      auto r = ChangeApproval(row, next, "approval.expire");
      // Another node expiring (or deciding) it first is not a fault, and it is no longer due.
      if (r.ok() || r.status().code() == StatusCode::kFailedPrecondition) {
        ++moved;
      } else {
        errors_.Report("approval.expire", r.status());
      }
    }
    // A short batch was the last; one in which nothing moved (the ledger refuses) would come
    // back the same: the next tick tries again.
    if (due->size() < kBatch || moved == 0) return;
  }
}

void AttributionService::CancelApprovals(const std::vector<std::string>& sids,
                                         const std::string& reason) {
  auto open = store_.ApprovalsOfSessions(sids, {"pending", "approved"});
  if (!open.ok()) return errors_.Report("approval.cancel", open.status());
  const int64_t now_ms = UnixMillis(clock_.Now());
  for (const ApprovalRow& row : *open) {
    ApprovalRow next = row;
    next.state = "cancelled";
    next.reason = reason;
    next.decided_ms = now_ms;
    auto r = ChangeApproval(row, next, "approval.cancel");
    if (!r.ok() && r.status().code() != StatusCode::kFailedPrecondition)
      errors_.Report("approval.cancel", r.status());
  }
}

// Expiries every second, and the cancellations revocations queue (the revocation listener must
// not block: it only queues).
void AttributionService::ApprovalLoop() {
  while (true) {
    std::vector<std::string> sids;
    {
      MutexLock lock(approvals_mu_);
      approvals_cv_.WaitFor(approvals_mu_, std::chrono::seconds(1), [&]() REQUIRES(approvals_mu_) {
        return approvals_stop_ || !revoked_queue_.empty();
      });
      if (approvals_stop_) return;
      sids.swap(revoked_queue_);
    }
    if (!sids.empty()) CancelApprovals(sids, "session revoked");
    ExpireApprovals();
  }
}

}  // namespace custody::attribution

// Requests an `@approval` policy holds (docs/MCP.md, "Approvals"): a client that declared
// URL-mode elicitation is sent to the approval page (-32042, URLElicitationRequiredError) and
// retries; otherwise, with approval_hold, the request waits for a person to decide, with progress
// notifications, and goes on once approved; otherwise it is refused, naming the approval.
#include <boost/json.hpp>

#include "common/clock.h"
#include "common/json_array.h"
#include "mcp/gateway.h"
#include "mcp/gateway_internal.h"

namespace custody::mcp {

using attribution::AuthorizeRequest;
using attribution::AuthorizeResult;
using store::ApprovalRow;
using SteadyClock = std::chrono::steady_clock;
using Why = ApprovalHolds::Why;

namespace {

constexpr std::chrono::seconds kProgressPeriod{1};
// Remembered elicitations (approval id -> MCP sessions), for notifications/elicitation/complete.
constexpr size_t kMaxElicited = 10000;

std::string Groups(const ApprovalRow& row) {
  std::string out = attribution::ApprovalGroupsText(row);
  return out.empty() ? "the approvers" : out;
}

// The approval as a refusal's error data names it (docs/MCP.md, "Approvals").
json::object ApprovalJson(const ApprovalRow& row, const std::string& url) {
  json::object a{{"id", row.id},
                 {"state", row.state},
                 {"groups", StringArray(attribution::ApprovalGroups(row))}};
  if (!url.empty()) a["url"] = url;
  if (row.expires_ms > 0) {
    a["expires_at"] = FormatRfc3339Millis(TimePoint(std::chrono::milliseconds(row.expires_ms)));
  }
  if (!row.approver.empty()) a["approver"] = row.approver;
  if (!row.reason.empty()) a["reason"] = row.reason;
  return a;
}

// " at <url>", or "" without one.
std::string At(const std::string& url) { return url.empty() ? "" : " at " + url; }

}  // namespace

// One held call: what it waits for, and how to go on.
struct Gateway::Held {
  std::shared_ptr<Call> call;
  AuthorizeRequest request;  // authorized again once approved
  AuthorizeResult asked;     // the decision that asked for the approval (a refusal's data)
  std::string approval_id;
  std::string url;
  SteadyClock::time_point started, deadline, next_progress;
  json::value progress_token;  // the client's; null when it asked for no progress
  int64_t progress = 0;
};

bool Gateway::DeclaredUrlElicitation(const Call& call) const {
  if (call.caller.modern) {
    return ClientCapabilities(json::object{{"capabilities", call.caller.modern->capabilities}})
               .count("elicitation.url") > 0;
  }
  return !call.caller.session_id.empty() &&
         sessions_->ClientDeclared(call.caller.session_id, "elicitation.url");
}

void Gateway::OnApprovalRequired(std::shared_ptr<Call> call,
                                 std::optional<AuthorizeRequest> request, AuthorizeResult r,
                                 std::optional<SteadyClock::time_point> deadline) {
  if (!r.approval) {  // the service always names it; refused as a denial if it did not
    http::Response denial = DenialOf(*call, r);
    call->Answer(denial.status, std::move(denial.body));
    return;
  }
  const ApprovalRow& a = *r.approval;
  json::object data = DecisionData(r);
  data["approval"] = ApprovalJson(a, r.approval_url);

  // 1. The client can send its person to a page: URLElicitationRequiredError (MCP 2025-11-25,
  // "Elicitation", URL mode), the approval's id as the elicitationId. The retry of the same
  // request passes once a member of the group approved it (the service finds the approval by
  // what it binds to).
  if (!r.approval_url.empty() && DeclaredUrlElicitation(*call)) {
    data["elicitations"] = json::array{json::object{
        {"mode", "url"},
        {"elicitationId", a.id},
        {"url", r.approval_url},
        {"message", a.target + " needs the approval of a member of " + Groups(a) + " (approval " +
                        a.id + "): have it approved on this page, then retry"}}};
    if (!call->caller.modern && !call->caller.session_id.empty()) {
      MutexLock lock(elicited_mu_);
      elicited_[a.id].insert(call->caller.session_id);
      while (elicited_.size() > kMaxElicited) elicited_.erase(elicited_.begin());
    }
    call->Answer(200, ErrorText(call->id, kUrlElicitationRequired,
                                "approval required: " + r.message + "; open " + r.approval_url +
                                    " to have it approved, then retry",
                                data));
    return;
  }

  // 2. Held until the approval is decided (or approval_hold passes).
  if (holds_ && request && options_.approval_hold.count() > 0) {
    auto h = std::make_shared<Held>();
    h->call = call;
    h->request = std::move(*request);
    h->approval_id = a.id;
    h->url = r.approval_url;
    h->asked = std::move(r);
    h->started = SteadyClock::now();
    h->deadline = deadline.value_or(h->started + options_.approval_hold);
    h->next_progress = h->started;
    if (const json::value* m = call->params.if_contains("_meta"); m && m->is_object()) {
      if (const json::value* t = m->get_object().if_contains("progressToken");
          t && (t->is_string() || t->is_int64() || t->is_uint64())) {
        h->progress_token = *t;
      }
    }
    const std::string id = h->approval_id;
    holds_->Add(id, h->deadline, [this, h](Why why) { return PollHeld(h, why); });
    return;
  }

  // 3. Refused, naming the approval: the client may retry once it is approved.
  call->Answer(200, ErrorText(call->id, kDenied,
                              "approval required: " + r.message + "; a member of " + Groups(a) +
                                  " approves it" + At(r.approval_url) + ", then retry",
                              data));
}

bool Gateway::PollHeld(const std::shared_ptr<Held>& h, Why why) {
  auto refuse = [&](const ApprovalRow& row, const std::string& message) {
    json::object data = DecisionData(h->asked);
    data["approval"] = ApprovalJson(row, h->url);
    h->call->Answer(200, ErrorText(h->call->id, kDenied, message, data));
  };
  const ApprovalRow& asked = *h->asked.approval;
  if (why == Why::kStopping) {
    refuse(asked, "not forwarded: the gateway is stopping while the call waited for approval " +
                      h->approval_id + At(h->url));
    return false;
  }
  auto row = attribution_.GetApproval(h->approval_id);
  if (row.ok() && *row && (*row)->state != "pending") {
    ResolveHeld(h, **row);
    return false;
  }
  if (row.ok() && !*row) {
    refuse(asked, "not forwarded: approval " + h->approval_id + " is gone");
    return false;
  }
  if (!row.ok()) {  // looked up again at the next poll, until the deadline
    ReportUpstream(options_.upstream, "mcp.approval_poll",
                   row.status().WithContext("looking up approval " + h->approval_id));
  }
  const auto now = SteadyClock::now();
  if (now >= h->deadline) {
    const auto waited =
        std::chrono::duration_cast<std::chrono::milliseconds>(now - h->started).count();
    refuse(row.ok() ? **row : asked, "not forwarded: approval " + h->approval_id +
                                         " is still pending after " + std::to_string(waited) +
                                         " ms; a member of " + Groups(asked) + " approves it" +
                                         At(h->url) + ", then retry");
    return false;
  }
  if (!h->progress_token.is_null() && now >= h->next_progress) {
    h->next_progress = now + kProgressPeriod;
    const int64_t total =
        std::chrono::duration_cast<std::chrono::seconds>(h->deadline - h->started).count();
    json::object n{{"jsonrpc", "2.0"},
                   {"method", "notifications/progress"},
                   {"params",
                    {{"progressToken", h->progress_token},
                     {"progress", h->progress++},
                     {"total", total},
                     {"message", "waiting for approval " + h->approval_id + At(h->url)}}}};
    h->call->Deliver(json::serialize(n));
  }
  return true;
}

void Gateway::ResolveHeld(const std::shared_ptr<Held>& h, const ApprovalRow& row) {
  if (row.state == "approved" || row.state == "used") {
    // Approved (or used by a twin call already: then the new decision asks again). Decided
    // again as asked: the decision that allows it cites the approval.
    attribution_.Authorize(h->request, [this, h](Result<AuthorizeResult> r) {
      Call& call = *h->call;
      if (!r.ok()) {
        call.Answer(200,
                    ErrorText(call.id, JsonRpcCodeFor(r.status().code()), r.status().message()));
        return;
      }
      if (r->approval_required) {  // held again, for the new approval, until the same deadline
        OnApprovalRequired(h->call, h->request, std::move(*r), h->deadline);
        return;
      }
      if (!r->allowed) {
        http::Response denial = DenialOf(call, *r);
        call.Answer(denial.status, std::move(denial.body));
        return;
      }
      call.decision = std::move(*r);
      ForwardCall(h->call);
    });
    return;
  }
  json::object data = DecisionData(h->asked);
  data["approval"] = ApprovalJson(row, h->url);
  std::string by = row.approver.empty() ? "" : " by " + row.approver;
  std::string reason = row.reason.empty() ? "" : ": " + row.reason;
  h->call->Answer(200, ErrorText(h->call->id, kDenied,
                                 "not forwarded: approval " + row.id + " was " + row.state + by +
                                     reason + At(h->url),
                                 data));
}

void ApprovalChanges::Changed(const ApprovalRow& row) {
  MutexLock lock(mu_);  // held while it runs: the gateway is not destroyed meanwhile
  if (gateway_) gateway_->OnApprovalChanged(row);
}

void Gateway::OnApprovalChanged(const ApprovalRow& row) {
  if (holds_) holds_->Wake(row.id);
  if (row.state == "pending") return;
  std::set<std::string> sent;
  {
    MutexLock lock(elicited_mu_);
    auto it = elicited_.find(row.id);
    if (it == elicited_.end()) return;
    sent = std::move(it->second);
    elicited_.erase(it);
  }
  // The out-of-band interaction is over (MCP 2025-11-25, notifications/elicitation/complete):
  // a client that waits for it retries now. Only on a GET stream: the request is answered.
  const std::string n =
      json::serialize(json::object{{"jsonrpc", "2.0"},
                                   {"method", "notifications/elicitation/complete"},
                                   {"params", {{"elicitationId", row.id}}}});
  for (const auto& session : sent) {
    if (auto stream = sessions_->StreamOf(session); stream && *stream) (*stream)->Send(n);
  }
}

}  // namespace custody::mcp

#include "containment/containment_service.h"

#include <boost/json.hpp>

#include "events/action_events.h"
#include "events/recorder.h"
#include "identity/token_service.h"
#include "store/attribution_store.h"

namespace custody::containment {

ContainmentService::ContainmentService(identity::TokenService& tokens, events::Recorder& recorder,
                                       store::AttributionStore& store, ErrorReporter& errors,
                                       const Clock& clock, Random& random)
    : tokens_(tokens),
      recorder_(recorder),
      store_(store),
      errors_(errors),
      clock_(clock),
      ids_(clock, random) {}

Result<ContainResult> ContainmentService::Contain(const std::string& scope,
                                                  const std::string& subject,
                                                  const std::string& reason,
                                                  const std::string& by) {
  if (scope != "session" && scope != "agent")
    return InvalidArgumentError("scope must be \"session\" or \"agent\"");
  if (subject.empty()) return InvalidArgumentError("what to contain is missing");
  if (reason.empty()) return InvalidArgumentError("a reason is required");
  if (reason.size() > 1024) return InvalidArgumentError("reason is longer than 1024 bytes");
  std::vector<std::string> revoked;
  if (scope == "session") {
    // NotFound for an unknown session, before anything is revoked.
    RETURN_IF_ERROR(tokens_.GetSession(subject).status());
    ASSIGN_OR_RETURN(revoked, tokens_.RevokeSession(subject, reason, by));
  } else {
    ASSIGN_OR_RETURN(revoked, tokens_.DisableAgent(subject, by));
  }
  ContainResult out;
  out.event_id = ids_.NextString();
  out.scope = scope;
  out.subject = subject;
  out.revoked_sessions = revoked;
  events::Containment e;
  e.event_id = out.event_id;
  e.time = FormatRfc3339Millis(clock_.Now());
  e.scope = scope;
  e.subject = subject;
  e.reason = reason;
  e.by = by;
  e.revoked_sessions = revoked;
  ASSIGN_OR_RETURN(auto appended, recorder_.Record(events::Build(e)));
  out.ledger_index = appended.index;
  out.receipt = appended.receipt;
  RETURN_IF_ERROR(store_.InsertContainment(
      store::ContainmentRow{out.event_id, scope, subject, reason, "", by, UnixMillis(clock_.Now()),
                            static_cast<int64_t>(appended.index)}));
  return out;
}

Result<std::vector<std::string>> ContainmentService::RevokeForTripwire(
    const std::string& scope, const identity::Session& session, const std::string& tripwire,
    const std::string& action_id) {
  if (scope == "agent") return tokens_.DisableAgent(session.agent, "custody:tripwire");
  return tokens_.RevokeSession(session.sid, "tripwire " + tripwire + " (action " + action_id + ")",
                               "custody:tripwire");
}

void ContainmentService::RecordTripwire(events::Containment event, int64_t time_ms,
                                        std::function<void(Status)> done) {
  event.event_id = ids_.NextString();
  store::ContainmentRow row{event.event_id,       event.scope, event.subject, event.reason,
                            event.trigger_action, "",          time_ms,       -1};
  auto cb = std::make_shared<std::function<void(Status)>>(std::move(done));
  Status st = recorder_.RecordAsync(events::Build(event),
                                    [this, row, cb](Result<ledger::AppendResult> r) mutable {
                                      if (!r.ok()) return (*cb)(r.status());
                                      row.ledger_index = static_cast<int64_t>(r->index);
                                      // The containment event is in the ledger; only the index row
                                      // is missing.
                                      if (Status st = store_.InsertContainment(row); !st.ok())
                                        errors_.Report("attribution.containment_index", st);
                                      (*cb)(OkStatus());
                                    });
  if (!st.ok()) (*cb)(st);
}

}  // namespace custody::containment

// Containment: cutting off a session (with everything it delegated to) or an agent at once, on
// an operator's word (Contain) or a tripwire's (a @contain policy that determined a deny), and
// the evidence of it: a containment event in the ledger and a row in the containment index.
//
// The revocation itself is the token service's: TokenService::RevokeSession/DisableAgent revoke
// in the identity store and run the revocation listeners (the MCP gateway ends the MCP sessions,
// closes their streams and cancels their calls) before they return, so the next request of a
// contained session is refused. Evidence bundles are read by investigate/evidence.
// Thread-safe. The token service, recorder and store must outlive it.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/error_reporter.h"
#include "common/random.h"
#include "common/status.h"
#include "common/uuid.h"

// Declared only: this header is included by attribution_service.h, and the event builders bring
// Boost.JSON with them.
namespace custody::events {
struct Containment;
class Recorder;
}  // namespace custody::events
namespace custody::identity {
class TokenService;
struct Session;
}  // namespace custody::identity
namespace custody::store {
class AttributionStore;
}

namespace custody::containment {

struct ContainResult {
  std::string event_id;
  std::string scope;
  std::string subject;
  std::vector<std::string> revoked_sessions;
  uint64_t ledger_index = 0;
  std::string receipt;
};

class ContainmentService {
 public:
  ContainmentService(identity::TokenService& tokens, events::Recorder& recorder,
                     store::AttributionStore& store, ErrorReporter& errors, const Clock& clock,
                     Random& random);

  // Manual containment: scope "session" (the tree below it too) or "agent" (disables it), with
  // a reason (1-1024 bytes) and who ordered it. Recorded before it returns.
  Result<ContainResult> Contain(const std::string& scope, const std::string& subject,
                                const std::string& reason, const std::string& by);

  // A tripwire determined a deny of `session`'s action: revokes now what its scope names (the
  // agent, disabled; or the session's tree). Returns the sessions revoked.
  Result<std::vector<std::string>> RevokeForTripwire(const std::string& scope,
                                                     const identity::Session& session,
                                                     const std::string& tripwire,
                                                     const std::string& action_id);
  // Records the containment a tripwire caused (`event` without its event id, which is assigned
  // here), once the decision it points at is durable; indexes it once it is durable too (a row
  // that cannot be written is reported, the event stays the evidence). `done` runs once.
  void RecordTripwire(events::Containment event, int64_t time_ms, std::function<void(Status)> done);

 private:
  identity::TokenService& tokens_;
  events::Recorder& recorder_;
  store::AttributionStore& store_;
  ErrorReporter& errors_;
  const Clock& clock_;
  UuidV7Generator ids_;  // thread-safe
};

}  // namespace custody::containment

// SessionReadAndCount: what verifying a session token reads (IdentityStore::GetSessionForToken)
// and the count of the call it is verified for (AttributionStore::CountCall), as one operation,
// so that stores across a network make them in one round trip. The attribution service uses it
// when its counters are shared by several nodes (AttributionStore::SharedAcrossNodes): every
// authorization there reads its session and counts its call, and each round trip costs the
// database more CPU than the statements in it (docs/PERFORMANCE.md).
//
// SessionReadAndCountOf picks the implementation: on PostgreSQL, with both stores in one
// database, one statement (PgIdentityStore::GetSessionForTokenAndCountCall); otherwise the two
// calls one after the other, which is what SQLite and memory stores (one node, in-memory
// counters) would do if they used it.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "common/status.h"
#include "store/attribution_store.h"
#include "store/identity_store.h"

namespace custody::store {

// The call to count along with the read (CountCall's arguments), and what the verification
// after the read checks, so that only a call that goes on to a decision is counted, as when the
// count came after the verification.
struct CallToCount {
  std::string target;
  int64_t time_ms = 0;
  int64_t since_ms = 0;
  // A session whose expires_at (seconds) is at or before this has expired.
  int64_t expired_at_s = 0;
  // When non-empty, the session's agent or instance must be this (AuthZEN's subject).
  std::string subject;
};

// True when the token's call is counted: the read is of the token's session (its jti), the
// session's agent exists, the session is revoked (its calls are refused and recorded, and
// counted, as before) or live with the token's jti not revoked, and the subject matches.
inline bool CountsCall(const SessionForToken& read, const std::string& jti,
                       const CallToCount& call) {
  const identity::Session& s = read.session;
  return s.jti == jti && read.agent.has_value() &&
         (s.revoked || (s.expires_at > call.expired_at_s && !read.jti_revoked)) &&
         (call.subject.empty() || call.subject == s.agent || call.subject == s.instance);
}

struct CountedSessionRead {
  SessionForToken read;
  // The session's counters just before the call (CountCall's answer); nullopt when the call
  // was not counted (CountsCall is false).
  std::optional<SessionCounts> counts;
};

class SessionReadAndCount {
 public:
  virtual ~SessionReadAndCount() = default;
  // GetSessionForToken(sid, jti) and, when CountsCall holds for its answer,
  // CountCall(sid, call.target, call.time_ms, call.since_ms). NotFound, and nothing counted,
  // when the session is absent. Revocation is read on every call (nothing cached).
  virtual Result<CountedSessionRead> ReadAndCount(const std::string& sid, const std::string& jti,
                                                  const CallToCount& call) = 0;
};

// Over the two stores, which must outlive it (stores.cc, the code that names backends).
std::unique_ptr<SessionReadAndCount> SessionReadAndCountOf(IdentityStore& identity,
                                                           AttributionStore& attribution);

}  // namespace custody::store

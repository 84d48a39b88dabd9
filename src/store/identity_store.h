// IdentityStore: durable state of the identity module: agents, sessions (the delegation tree),
// revoked credentials, used client-assertion ids (replay protection) and token signing keys.
// The values are the identity module's own (identity/agent.h, identity/records.h, in the small
// custody_identity_model library), so store/ depends on them and identity's services depend on
// store/. Implementations are thread-safe: SqliteIdentityStore (store/sqlite/) and
// MemoryIdentityStore (store/memory/), both checked by
// store/testing/identity_store_conformance.h.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "identity/agent.h"
#include "identity/records.h"

namespace custody::store {

class IdentityStore {
 public:
  virtual ~IdentityStore() = default;

  // AlreadyExists if the name is taken.
  virtual Status CreateAgent(const identity::Agent& agent) = 0;
  // NotFound if absent.
  virtual Status UpdateAgent(const identity::Agent& agent) = 0;
  // NotFound if absent.
  virtual Result<identity::Agent> GetAgent(const std::string& name) = 0;
  // Ordered by name.
  virtual Result<std::vector<identity::Agent>> ListAgents() = 0;

  // AlreadyExists if the sid is taken. FailedPrecondition, and nothing stored, if the session's
  // parent has been revoked or its agent disabled: the check and the insert are one atomic
  // step, so a delegation racing a revocation (or DisableAgent) either lands in the tree the
  // revocation walks or is refused, never left live below a revoked parent.
  virtual Status CreateSession(const identity::Session& session) = 0;
  // CreateSession answered through `done` (exactly once, on any thread, possibly before this
  // returns) once the session is durable or has been refused. A backend may store the sessions
  // of concurrent calls in one transaction (SqliteIdentityStore: one fsync for many); this
  // default stores it synchronously.
  virtual void CreateSessionAsync(identity::Session session, std::function<void(Status)> done) {
    done(CreateSession(session));
  }
  // NotFound if absent.
  virtual Result<identity::Session> GetSession(const std::string& sid) = 0;
  // The session and all its descendants, parents before children: ordered by depth, then
  // created_at, then sid. NotFound if the session is absent.
  virtual Result<std::vector<identity::Session>> SessionTree(const std::string& sid) = 0;
  // Revokes the session and every descendant still live, in one transaction; returns the sids
  // revoked now, in SessionTree order (already revoked ones are neither changed nor returned).
  // NotFound if the session is absent.
  virtual Result<std::vector<std::string>> RevokeSessionTree(const std::string& sid,
                                                             const std::string& reason,
                                                             int64_t now) = 0;
  // Revokes every live session of an agent (and their descendants), in one transaction; returns
  // the sids revoked now (empty for an agent without live sessions).
  virtual Result<std::vector<std::string>> RevokeAgentSessions(const std::string& agent,
                                                               const std::string& reason,
                                                               int64_t now) = 0;

  // Revoking a jti twice keeps the first record.
  virtual Status RevokeJti(const std::string& jti, int64_t expires_at) = 0;
  virtual Result<bool> IsJtiRevoked(const std::string& jti) = 0;
  // Records a client assertion's jti; AlreadyExists if it was used before (replay).
  virtual Status UseAssertionJti(const std::string& jti, int64_t expires_at) = 0;

  // Inserts, or replaces the record with the same kid.
  virtual Status PutSigningKey(const identity::SigningKeyRecord& key) = 0;
  // Ordered by created_at, then kid.
  virtual Result<std::vector<identity::SigningKeyRecord>> ListSigningKeys() = 0;
};

}  // namespace custody::store

// IdentityStore: durable state of the identity module: agents, sessions (the delegation tree),
// revoked credentials, used client-assertion ids (replay protection), token signing keys, and the
// authorization code flow's codes, refresh token families, consents, and the browser's part of a
// sign-in and approver sessions (by hashes of the browser's secrets).
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
#include "identity/oauth_records.h"
#include "identity/records.h"

namespace custody::store {

// IdentityStore::GetSessionForToken's answer.
struct SessionForToken {
  identity::Session session;
  bool jti_revoked = false;
  std::optional<identity::Agent> agent;
};

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
  // What verifying an access token reads, on every call: its session, whether the token's jti
  // is revoked, and the session's agent (nullopt when the agent is gone). NotFound if the
  // session is absent. This default makes the three reads; a backend across a network makes one
  // (PgIdentityStore: one statement, so an authorization waits for one round trip, not three).
  virtual Result<SessionForToken> GetSessionForToken(const std::string& sid,
                                                     const std::string& jti) {
    SessionForToken out;
    ASSIGN_OR_RETURN(out.session, GetSession(sid));
    ASSIGN_OR_RETURN(out.jti_revoked, IsJtiRevoked(jti));
    if (auto agent = GetAgent(out.session.agent); agent.ok()) {
      out.agent = std::move(*agent);
    } else if (agent.status().code() != StatusCode::kNotFound) {
      return agent.status();
    }
    return out;
  }
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
  // Records a client assertion's jti; AlreadyExists if it was used before (replay). The
  // database's unique key decides, so a jti used at one node is refused at every other.
  virtual Status UseAssertionJti(const std::string& jti, int64_t expires_at) = 0;
  // UseAssertionJti answered through `done` (exactly once, on any thread, possibly before this
  // returns): ok once the jti is durable; AlreadyExists when it was used before, including while
  // its first use is still being stored. A backend may store the jtis of concurrent calls in one
  // transaction (SqliteIdentityStore: one fsync for many, shared with queued sessions); this
  // default stores it synchronously.
  virtual void UseAssertionJtiAsync(std::string jti, int64_t expires_at,
                                    std::function<void(Status)> done) {
    done(UseAssertionJti(jti, expires_at));
  }
  // Deletes the jtis whose expires_at is before `before`: an assertion past its exp is refused
  // for that, so its jti need not be kept. The default keeps everything (a test double).
  virtual Status PurgeAssertionJtis(int64_t before) {
    (void)before;
    return OkStatus();
  }

  // Inserts, or replaces the record with the same kid.
  virtual Status PutSigningKey(const identity::SigningKeyRecord& key) = 0;
  // Ordered by created_at, then kid.
  virtual Result<std::vector<identity::SigningKeyRecord>> ListSigningKeys() = 0;

  // --- The authorization code flow (identity/authorization_server.h). Only hashes of refresh
  // tokens are stored. The defaults answer Internal (a backend without the flow, e.g. a test
  // double). A new family whose current refresh token has this SHA-256 (hex). AlreadyExists if the
  // family id or the hash is taken.
  virtual Status CreateRefreshFamily(const identity::RefreshFamily& family,
                                     const std::string& token_sha256) {
    (void)family, (void)token_sha256;
    return InternalError("refresh tokens are not supported by this store");
  }
  // The family of a refresh token (current or rotated out), without its sessions (`sessions` is
  // empty: the list grows by one per refresh and a refresh does not need it;
  // RevokeRefreshFamily returns it); NotFound for an unknown hash.
  virtual Result<identity::RefreshLookup> FindRefreshToken(const std::string& token_sha256) {
    (void)token_sha256;
    return InternalError("refresh tokens are not supported by this store");
  }
  // A refresh's bookkeeping, in one transaction (one commit per refresh): replaces the family's
  // current token `presented_sha256` by `next_sha256` (compare-and-set) and appends `sid`, the
  // session issued by this refresh, to the family's sessions. FailedPrecondition, and nothing
  // changed (no session appended), when `presented_sha256` is no longer current (a concurrent
  // refresh won) or the family is revoked; NotFound for an unknown family.
  virtual Status RotateRefreshToken(const std::string& family_id,
                                    const std::string& presented_sha256,
                                    const std::string& next_sha256, const std::string& sid) {
    (void)family_id, (void)presented_sha256, (void)next_sha256, (void)sid;
    return InternalError("refresh tokens are not supported by this store");
  }
  // Revokes the family (no token of it refreshes again) and returns it as it now is; a second
  // revocation keeps the first time and reason. NotFound for an unknown family.
  virtual Result<identity::RefreshFamily> RevokeRefreshFamily(const std::string& family_id,
                                                              const std::string& reason,
                                                              int64_t now) {
    (void)family_id, (void)reason, (void)now;
    return InternalError("refresh tokens are not supported by this store");
  }
  // Authorization codes, keyed by the SHA-256 (hex) of the code, never the code itself; shared
  // by every node of a deployment, so a code issued at one is redeemed at another.
  // AlreadyExists if the hash is taken.
  virtual Status CreateAuthorizationCode(const identity::AuthorizationCode& code,
                                         const std::string& code_sha256) {
    (void)code, (void)code_sha256;
    return InternalError("authorization codes are not supported by this store");
  }
  // Marks the code used and returns it, in one atomic step: of any number of redemptions (on
  // any nodes) exactly one is `first`. A later one also marks the code reused, which
  // NoteAuthorizationCodeIssued reports. The code is returned whether or not it expired (the
  // caller checks). NotFound for an unknown (or purged) hash.
  virtual Result<identity::CodeRedemption> RedeemAuthorizationCode(const std::string& code_sha256) {
    (void)code_sha256;
    return InternalError("authorization codes are not supported by this store");
  }
  // Records what the first use issued (its session and refresh family), so that a reuse revokes
  // them. Returns true when the code was redeemed again before this note (the reuse found
  // nothing to revoke: the caller revokes what it issued). NotFound for an unknown hash.
  virtual Result<bool> NoteAuthorizationCodeIssued(const std::string& code_sha256,
                                                   const std::string& sid,
                                                   const std::string& family_id) {
    (void)code_sha256, (void)sid, (void)family_id;
    return InternalError("authorization codes are not supported by this store");
  }
  // Deletes the codes expired at `now`; a used code is kept `used_grace_s` longer, so that its
  // reuse is detected (and revokes what its first use issued) rather than answered "unknown".
  virtual Status PurgeAuthorizationCodes(int64_t now, int64_t used_grace_s) {
    (void)now, (void)used_grace_s;
    return InternalError("authorization codes are not supported by this store");
  }

  // --- The browser's part of a sign-in and the approvers' sessions
  // (identity/authorization_server.h), shared by every node so that a browser's next step may
  // reach any of them. An entry is keyed by its `kind` ("login", "consent", "approver") and the
  // SHA-256 (hex) of the secret the browser holds (the IdP state, the consent request id, the
  // approver cookie), never the secret itself; `body` is the server's own JSON, `expires_at` in
  // seconds. AlreadyExists if (kind, key) is taken.
  virtual Status PutBrowserState(const std::string& kind, const std::string& key_sha256,
                                 const std::string& body, int64_t expires_at) {
    (void)kind, (void)key_sha256, (void)body, (void)expires_at;
    return InternalError("browser states are not supported by this store");
  }
  // Deletes the entry and returns its body, in one atomic step: of any number of takes (on any
  // nodes) exactly one gets it, which makes a step single-use across nodes. NotFound for an
  // unknown, already taken, or expired (expires_at <= now) entry.
  virtual Result<std::string> TakeBrowserState(const std::string& kind,
                                               const std::string& key_sha256, int64_t now) {
    (void)kind, (void)key_sha256, (void)now;
    return InternalError("browser states are not supported by this store");
  }
  // The body of a live entry, left in place; NotFound for an unknown or expired one.
  virtual Result<std::string> GetBrowserState(const std::string& kind,
                                              const std::string& key_sha256, int64_t now) {
    (void)kind, (void)key_sha256, (void)now;
    return InternalError("browser states are not supported by this store");
  }
  // Deletes the entries whose expires_at <= now.
  virtual Status PurgeBrowserStates(int64_t now) {
    (void)now;
    return InternalError("browser states are not supported by this store");
  }

  // Inserts or replaces the consent of (initiator_issuer, initiator, client_id).
  virtual Status PutConsent(const identity::Consent& consent) {
    (void)consent;
    return InternalError("consents are not supported by this store");
  }
  // NotFound if that person has not consented to that client.
  virtual Result<identity::Consent> GetConsent(const std::string& initiator_issuer,
                                               const std::string& initiator,
                                               const std::string& client_id) {
    (void)initiator_issuer, (void)initiator, (void)client_id;
    return InternalError("consents are not supported by this store");
  }
  // Ordered by client_id, then initiator_issuer, then initiator.
  virtual Result<std::vector<identity::Consent>> ListConsents() {
    return InternalError("consents are not supported by this store");
  }
  // NotFound if there was no such consent.
  virtual Status DeleteConsent(const std::string& initiator_issuer, const std::string& initiator,
                               const std::string& client_id) {
    (void)initiator_issuer, (void)initiator, (void)client_id;
    return InternalError("consents are not supported by this store");
  }
};

}  // namespace custody::store

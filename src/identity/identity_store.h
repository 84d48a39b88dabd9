// IdentityStore: durable state of the identity module: agents, sessions (the delegation tree),
// revoked credentials, used client-assertion ids (replay protection) and token signing keys.
// Implementations are thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "identity/agent.h"

namespace custody::identity {

enum class InitiatorVerification { kVerified, kAsserted };

struct Session {
  std::string sid;
  std::string parent_sid;  // empty for a root session
  std::string root_sid;
  int depth = 0;      // 0 for a root session
  int max_depth = 0;  // deepest level the tree may reach: min of every agent's limit so far
  std::string agent;
  std::string instance;   // the actor's SPIFFE ID
  std::string initiator;  // sub of the human/workflow that started the work
  std::string initiator_issuer;
  InitiatorVerification verification = InitiatorVerification::kVerified;
  std::string asserted_by;  // the client that asserted the initiator, if asserted
  ScopeSet scopes;
  std::string objective_digest;  // hex SHA-256 of the task/prompt
  std::string txn;
  std::string jti;         // of the token issued for this session
  int64_t created_at = 0;  // Unix seconds
  int64_t expires_at = 0;
  bool revoked = false;
  int64_t revoked_at = 0;
  std::string revoke_reason;
};

struct SigningKeyRecord {
  std::string kid;
  std::string private_pem;
  int64_t created_at = 0;
  int64_t retired_at = 0;     // 0 while current
  int64_t publish_until = 0;  // 0 while current; after retirement: last token expiry
};

class IdentityStore {
 public:
  virtual ~IdentityStore() = default;

  // AlreadyExists if the name is taken.
  virtual Status CreateAgent(const Agent& agent) = 0;
  // NotFound if absent.
  virtual Status UpdateAgent(const Agent& agent) = 0;
  virtual Result<Agent> GetAgent(const std::string& name) = 0;
  virtual Result<std::vector<Agent>> ListAgents() = 0;

  virtual Status CreateSession(const Session& session) = 0;
  virtual Result<Session> GetSession(const std::string& sid) = 0;
  // The session and all its descendants, parents before children.
  virtual Result<std::vector<Session>> SessionTree(const std::string& sid) = 0;
  // Revokes the session and every descendant still live; returns the sids revoked now.
  virtual Result<std::vector<std::string>> RevokeSessionTree(const std::string& sid,
                                                             const std::string& reason,
                                                             int64_t now) = 0;
  // Revokes every live session of an agent (and their descendants).
  virtual Result<std::vector<std::string>> RevokeAgentSessions(const std::string& agent,
                                                               const std::string& reason,
                                                               int64_t now) = 0;

  virtual Status RevokeJti(const std::string& jti, int64_t expires_at) = 0;
  virtual Result<bool> IsJtiRevoked(const std::string& jti) = 0;
  // Records a client assertion's jti; AlreadyExists if it was used before (replay).
  virtual Status UseAssertionJti(const std::string& jti, int64_t expires_at) = 0;

  virtual Status PutSigningKey(const SigningKeyRecord& key) = 0;
  virtual Result<std::vector<SigningKeyRecord>> ListSigningKeys() = 0;
};

}  // namespace custody::identity

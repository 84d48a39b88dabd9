// The identity module's stored values besides the agent (identity/agent.h): sessions (the
// delegation tree) and token signing keys. Plain values; store::IdentityStore
// (store/identity_store.h) keeps them.
#pragma once

#include <cstdint>
#include <string>

#include "identity/scopes.h"

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

}  // namespace custody::identity

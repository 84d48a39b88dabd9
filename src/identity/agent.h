// The agent registry's record: who an agent is, who answers for it, and the most it may ever do.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "identity/scopes.h"

namespace custody::identity {

enum class Environment { kDev, kStaging, kProd };
std::string_view EnvironmentName(Environment e);
Result<Environment> ParseEnvironment(std::string_view s);

// Permission that lets an orchestrator client assert an initiator without a signed token.
inline constexpr std::string_view kAssertInitiator = "assert_initiator";

struct Agent {
  std::string name;  // a SPIFFE path segment: it appears in the agent's SPIFFE ID
  std::string description;
  Environment environment = Environment::kDev;
  std::string business_owner;
  std::string technical_owner;
  std::string sponsor;
  std::string revocation_contact;
  ScopeSet grants;                       // every tool/resource it may ever use
  std::vector<std::string> permissions;  // e.g. "assert_initiator"
  int max_delegation_depth = 3;          // sessions below a root session
  int64_t max_token_lifetime_s = 3600;
  // Client credential: a public JWK for private_key_jwt (RFC 7523, the default), or the
  // SHA-256 (hex) of a generated client secret. Exactly one is set.
  std::string client_jwk;
  std::string client_secret_sha256;
  bool disabled = false;
  std::string created_at;
  std::string updated_at;

  bool HasPermission(std::string_view p) const;
};

// Checks a record before it is stored. A prod agent needs both owners and a revocation
// contact; the error names what is missing.
Status ValidateAgent(const Agent& agent);

}  // namespace custody::identity

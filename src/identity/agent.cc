#include "identity/agent.h"

#include <algorithm>

#include "crypto/jose.h"
#include "identity/spiffe_id.h"

namespace custody::identity {

std::string_view EnvironmentName(Environment e) {
  switch (e) {
    case Environment::kDev:
      return "dev";
    case Environment::kStaging:
      return "staging";
    case Environment::kProd:
      return "prod";
  }
  return "dev";
}

Result<Environment> ParseEnvironment(std::string_view s) {
  if (s == "dev") return Environment::kDev;
  if (s == "staging") return Environment::kStaging;
  if (s == "prod") return Environment::kProd;
  return InvalidArgumentError("environment must be dev, staging or prod");
}

bool Agent::HasPermission(std::string_view p) const {
  return std::find(permissions.begin(), permissions.end(), p) != permissions.end();
}

Status ValidateAgent(const Agent& a) {
  RETURN_IF_ERROR(ValidatePathSegment(a.name).WithContext("agent name"));
  if (a.name.size() > 128) return InvalidArgumentError("agent name longer than 128 characters");
  if (a.environment == Environment::kProd) {
    std::vector<std::string> missing;
    if (a.business_owner.empty()) missing.push_back("business_owner");
    if (a.technical_owner.empty()) missing.push_back("technical_owner");
    if (a.revocation_contact.empty()) missing.push_back("revocation_contact");
    if (!missing.empty()) {
      std::string list;
      for (const auto& m : missing) list += (list.empty() ? "" : ", ") + m;
      return FailedPreconditionError(
          "a prod agent needs a business owner, a technical owner and "
          "a revocation contact; missing: " +
          list);
    }
  }
  for (const auto& s : a.grants) RETURN_IF_ERROR(ValidateScope(s).WithContext("grant"));
  for (const auto& p : a.permissions) {
    if (p != kAssertInitiator) return InvalidArgumentError("unknown permission \"" + p + "\"");
  }
  if (a.max_delegation_depth < 0 || a.max_delegation_depth > 16) {
    return InvalidArgumentError("max_delegation_depth must be between 0 and 16");
  }
  if (a.max_token_lifetime_s < 60 || a.max_token_lifetime_s > 86400) {
    return InvalidArgumentError("max_token_lifetime_s must be between 60 and 86400");
  }
  bool has_jwk = !a.client_jwk.empty();
  bool has_secret = !a.client_secret_sha256.empty();
  if (has_jwk == has_secret) {
    return InvalidArgumentError(
        "an agent needs exactly one client credential: a public JWK (private_key_jwt) or a "
        "client secret");
  }
  if (has_jwk) {
    auto key = crypto::ParseEcPublicJwk(a.client_jwk);
    if (!key.ok()) return key.status().WithContext("client JWK");
  }
  if (has_secret && a.client_secret_sha256.size() != 64) {
    return InvalidArgumentError("client secret hash must be 64 hex characters");
  }
  return OkStatus();
}

}  // namespace custody::identity

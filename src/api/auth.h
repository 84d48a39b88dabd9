// Admin tokens for the operator API: issuing them and checking them.
//
// Token text: "cst_" + id (16 lowercase hex, 64 random bits; public, safe to log) + "_" +
// secret (base64url of 32 random bytes, 256 bits). Only SHA-256(token text) is stored. A request
// is authenticated by looking the id up and comparing hashes in constant time, so neither the
// token nor a comparison timing leaks. Revoked tokens are refused (401).
//
// Roles: "admin" (everything), "reader" (read-only routes; refused with 403 elsewhere) and
// "approver" (a person: reads and decides approvals, nothing else) and "ingest" (a telemetry
// pipeline: POST /v1/traces only, docs/OTLP.md).
#pragma once

#include <string>
#include <string_view>

#include "common/clock.h"
#include "common/random.h"
#include "common/status.h"
#include "http/http.h"
#include "store/admin_token_store.h"

namespace custody::api {

inline constexpr std::string_view kRoleAdmin = "admin";
inline constexpr std::string_view kRoleReader = "reader";
// A person who approves or denies actions that need approval (docs/APPROVALS.md): the token's
// label is the person's name (`<approval.person_type>::"<label>"` in the published entities).
inline constexpr std::string_view kRoleApprover = "approver";
// An OpenTelemetry Collector or exporter sending agents' spans (POST /v1/traces, docs/OTLP.md).
inline constexpr std::string_view kRoleIngest = "ingest";
bool IsKnownRole(std::string_view role);

struct IssuedToken {
  std::string id;
  std::string token;  // shown once to the operator; never stored or logged
  std::string role;
};

// Creates and stores a new token. InvalidArgument for an unknown role.
Result<IssuedToken> IssueAdminToken(store::AdminTokenStore& store, std::string_view role,
                                    std::string_view label, const Clock& clock, Random& random);

// The id part of a well-formed token; InvalidArgument (without echoing the token) otherwise.
Result<std::string> TokenId(std::string_view token);

// http::Authenticator over an AdminTokenStore. Thread-safe if the store is.
class TokenAuthenticator final : public http::Authenticator {
 public:
  explicit TokenAuthenticator(store::AdminTokenStore& store) : store_(store) {}
  Result<http::Principal> Authenticate(std::string_view bearer_token) override;

 private:
  store::AdminTokenStore& store_;
};

}  // namespace custody::api

// HTTP routes of just-in-time database credentials (credentials/, docs/CREDENTIALS.md):
//   POST /v1/credentials:issue          (bearer: the agent's session token)
//        {"target": {"type": "Database", "id": NAME}, "access": LEVEL, "ttl_s": N}
//   POST /v1/credentials/{role}:revoke  (bearer: an admin token, or the lease's session token)
//   POST /v1/credentials/{role}:renew   (the same) {"ttl_s": N}
//   GET  /v1/credentials/{role}         (the same): the lease
// The password is in the issue answer only, once (cache-control: no-store).
#pragma once

#include "common/status.h"
#include "credentials/credential_service.h"
#include "http/http.h"

namespace custody::api {

// `admins` authenticates admin tokens for the routes a session or an admin may call.
Status AddCredentialRoutes(http::Router& router, credentials::CredentialService& service,
                           http::Authenticator& admins);

}  // namespace custody::api

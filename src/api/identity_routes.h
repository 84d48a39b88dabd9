// HTTP routes of the identity module: the OAuth token endpoint (client_credentials for
// JWT-SVIDs, RFC 8693 token exchange), RFC 7662 introspection, the JWKS, the agent registry's
// admin API, the session API and key rotation (POST /v1/keys/rotate, admin). Errors on
// /oauth2/* use the RFC 6749 §5.2 body; everything else uses the one Custody error shape.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "http/http.h"
#include "identity/token_service.h"

namespace custody::api {

Status AddIdentityRoutes(http::Router& router, identity::TokenService& tokens);

// Reads the trusted OIDC issuers file: [{"issuer": …, "audience": …, "jwks": {"keys": […]}}].
Result<std::vector<identity::TrustedIssuer>> LoadTrustedIssuers(const std::string& path);

}  // namespace custody::api

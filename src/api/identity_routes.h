// HTTP routes of the identity module: the OAuth token endpoint (client_credentials for
// JWT-SVIDs, RFC 8693 token exchange), RFC 7662 introspection, the JWKS, the RFC 8414
// authorization server metadata (also at /.well-known/openid-configuration), the agent
// registry's admin API, the session API and key rotation (POST /v1/keys/rotate, admin). Errors
// on /oauth2/* use the RFC 6749 §5.2 body; everything else uses the one Custody error shape.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "http/http.h"
#include "identity/token_service.h"

namespace custody::identity {
class AuthorizationServer;
}  // namespace custody::identity

namespace custody::api {

// `issuer` is the one TokenService signs with (Service::issuer()); the metadata names it.
// `authorization` (optional): the authorization code flow; /oauth2/token then also accepts
// grant_type authorization_code and refresh_token, and the metadata names the authorization
// endpoint (its routes are api/oauth_routes.h's).
Status AddIdentityRoutes(http::Router& router, identity::TokenService& tokens,
                         const std::string& issuer,
                         identity::AuthorizationServer* authorization = nullptr);

// The RFC 8414 metadata document: only what /oauth2/token and /oauth2/introspect implement, and
// with `authorization_code` the authorization endpoint and its grants (docs/API.md,
// "Authorization server metadata").
std::string AuthorizationServerMetadataJson(const std::string& issuer,
                                            bool authorization_code = false,
                                            bool client_id_metadata_documents = false,
                                            bool dynamic_registration = false);

// Reads the trusted OIDC issuers file: [{"issuer": …, "audience": …, "jwks": {"keys": […]}}].
Result<std::vector<identity::TrustedIssuer>> LoadTrustedIssuers(const std::string& path);

}  // namespace custody::api

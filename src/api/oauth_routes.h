// HTTP routes of Custody's authorization endpoint (identity/authorization_server.h): GET
// /oauth2/authorize, GET /oauth2/login/callback (the company IdP sends the browser back), POST
// /oauth2/consent (the consent page's form), and the consent admin API (GET /v1/oauth/consents,
// POST /v1/oauth/consents/revoke). The token grants are served by /oauth2/token
// (api/identity_routes.cc). Browser answers carry no-store, a CSP without external sources and
// frame-ancestors 'none'.
#pragma once

#include "common/status.h"
#include "http/http.h"

namespace custody::identity {
class AuthorizationServer;
struct BrowserAnswer;
}  // namespace custody::identity

namespace custody::api {

// A BrowserAnswer as the browser gets it: the redirect or the page (with the pages' CSP and
// frame denial), no-store, no referrer, its cookies. Also used by the approval pages' sign-in.
http::Response BrowserResponse(identity::BrowserAnswer a);

Status AddOAuthRoutes(http::Router& router, identity::AuthorizationServer& server,
                      const http::AuthRequirement& read_auth);

}  // namespace custody::api

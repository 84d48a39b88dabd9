// The web console's routes (docs/CONSOLE.md), registered when console.enabled:
//   GET  /console, /console/, /console/{path...}   the embedded files (console_assets.h), with a
//        strict Content-Security-Policy; hashed assets cached for a year, index.html never
//   POST /v1/console/session          {"token"} -> session cookie + {"csrf","role","expires_at"}
//   POST /v1/console/session/logout   ends the session of the cookie (reader)
//   GET  /v1/console/session          the cookie's session: {"csrf","role","expires_at",...}
//   GET  /v1/console/methods          the sign-in methods the page offers (public)
//   GET  /console/sign-in/idp         sign-in at the company IdP ([login]); its answer at
//        /oauth2/login/callback opens a session with the role of the person's groups
// The handlers hold references: the token authenticator and sessions must outlive the server.
#pragma once

#include <string>
#include <vector>

#include "api/console_sessions.h"
#include "common/status.h"
#include "http/http.h"

namespace custody::identity {
class AuthorizationServer;
}

namespace custody::api {

// The policy every console page is served with: no inline script or style, nothing from
// elsewhere, no framing.
inline constexpr std::string_view kConsoleCsp =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

struct ConsoleRouteOptions {
  bool tls = false;  // the cookie is Secure when Custody serves TLS
  // [login] issuer: the company IdP the sign-in page offers (empty: token sign-in only).
  std::string idp_issuer;
  // The IdP sign-in (null: not offered): [login] configured. The role comes from the person's
  // groups ([console.idp_roles]; both empty: every IdP sign-in is refused).
  identity::AuthorizationServer* sign_in = nullptr;
  std::vector<std::string> admin_groups, reader_groups;
};

Status AddConsoleRoutes(http::Router& router, http::Authenticator& tokens,
                        ConsoleSessions& sessions, const ConsoleRouteOptions& options);

}  // namespace custody::api

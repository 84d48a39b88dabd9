// An Authenticator that also knows a credential other than a bearer token, e.g. the console's
// session cookie, which counts only with its CSRF header (api/console_sessions.h). The server
// asks it when a request to a route that needs authentication carries no bearer token; a bearer
// token, when present, always decides. A route's roles are checked the same way either way.
#pragma once

#include <optional>

#include "http/http.h"

namespace custody::http {

class RequestAuthenticator : public Authenticator {
 public:
  // nullopt: the request carries no such credential (the caller then answers "a bearer token is
  // required"); otherwise the principal, or why the credential is refused (401/403/503).
  virtual std::optional<Result<Principal>> AuthenticateOther(const Request& request) = 0;
};

}  // namespace custody::http

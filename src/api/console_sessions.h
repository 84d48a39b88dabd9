// Console sessions: a person signs in to the web console once with a reader or admin token and
// gets an HttpOnly, SameSite=Strict cookie plus a CSRF token the page keeps in memory. A request
// counts as that token's principal only with both the cookie and a matching X-Custody-CSRF
// header, so no other site can use the cookie (docs/CONSOLE.md, "Security").
//
// Sessions live in memory (a restart signs everyone out), at most `max_sessions` of them, each
// for `lifetime`. Every request re-reads the token it was made from, so revoking the token ends
// its sessions at their next request. Only hashes of the session id are kept as keys.
//
// ConsoleSessions and ConsoleAuthenticator are thread-safe; the token store, clock and random
// must outlive them.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/auth.h"
#include "common/clock.h"
#include "common/mutex.h"
#include "common/random.h"
#include "common/status.h"
#include "http/request_authenticator.h"
#include "store/admin_token_store.h"

namespace custody::api {

inline constexpr std::string_view kConsoleCookie = "custody_console";
inline constexpr std::string_view kConsoleCsrfHeader = "x-custody-csrf";

struct ConsoleSessionOptions {
  size_t max_sessions = 1024;
  std::chrono::seconds lifetime{8 * 3600};
};

// A person signed in at the company IdP ([login]): who, and who vouched for it.
struct ConsolePerson {
  std::string subject;      // the IdP's sub
  std::string name;         // shown by the console: name, else email, else subject
  std::string verified_by;  // "oidc:<issuer>"
};

struct NewConsoleSession {
  std::string id;    // the cookie's value: never logged
  std::string csrf;  // the X-Custody-CSRF value: never logged
  http::Principal principal;
  TimePoint expires;
  ConsolePerson person;  // empty subject for a token's session
};

// The console role of a person from the IdP's groups ([console.idp_roles]): admin if any group
// is an admin group, else reader if any is a reader group, else none (the sign-in is refused).
std::optional<std::string> ConsoleRoleForGroups(const std::vector<std::string>& groups,
                                                const std::vector<std::string>& admin_groups,
                                                const std::vector<std::string>& reader_groups);

// The principal id of a person's session: what the ledger names as the actor of its changes
// (contain records "admin:oidc:<sub>", as an admin token's records "admin:<token id>").
std::string ConsolePersonPrincipalId(std::string_view subject);

class ConsoleSessions {
 public:
  ConsoleSessions(store::AdminTokenStore& tokens, const Clock& clock, Random& random,
                  ConsoleSessionOptions options = {});

  // A session for an authenticated principal. When full, expired sessions go first, then the
  // one closest to expiring.
  NewConsoleSession Create(const http::Principal& principal);
  // A session for a person signed in at the IdP with `role`: no token behind it, so it lasts
  // its lifetime or until signed out.
  NewConsoleSession CreateForPerson(const ConsolePerson& person, const std::string& role);
  // The session of cookie `id` without its CSRF token, for the page that holds only the cookie
  // (after the IdP's redirect, or a reload): same-origin reads only (the cookie is SameSite=
  // Strict and the answer is not readable cross-origin). Unauthenticated as Authenticate.
  Result<NewConsoleSession> Resume(std::string_view id);
  // The principal of session `id` if `csrf` is its CSRF token and the token it was made from is
  // still valid. Unauthenticated for an unknown or expired session or a revoked token (the
  // session ends); PermissionDenied for a missing or wrong CSRF token.
  Result<http::Principal> Authenticate(std::string_view id, std::string_view csrf);
  void End(std::string_view id);
  size_t size() const;
  std::chrono::seconds lifetime() const { return options_.lifetime; }

 private:
  struct Entry {
    std::string csrf;
    http::Principal principal;
    TimePoint expires;
    ConsolePerson person;
  };
  NewConsoleSession Insert(const http::Principal& principal, const ConsolePerson& person);
  // The live entry of `id` (an expired one is dropped).
  Result<Entry> Find(std::string_view id);
  store::AdminTokenStore& tokens_;
  const Clock& clock_;
  Random& random_;
  ConsoleSessionOptions options_;
  mutable Mutex mu_;
  std::map<std::string, Entry> sessions_ GUARDED_BY(mu_);  // key: hex SHA-256 of the id
};

// The value of cookie `name` in a Cookie header, if present.
std::optional<std::string_view> CookieValue(const http::Headers& headers, std::string_view name);

// Bearer tokens through TokenAuthenticator; without one, the console cookie with its CSRF header.
class ConsoleAuthenticator final : public http::RequestAuthenticator {
 public:
  ConsoleAuthenticator(http::Authenticator& tokens, ConsoleSessions& sessions)
      : tokens_(tokens), sessions_(sessions) {}
  Result<http::Principal> Authenticate(std::string_view bearer_token) override {
    return tokens_.Authenticate(bearer_token);
  }
  std::optional<Result<http::Principal>> AuthenticateOther(const http::Request& request) override;

 private:
  http::Authenticator& tokens_;
  ConsoleSessions& sessions_;
};

}  // namespace custody::api

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

struct NewConsoleSession {
  std::string id;    // the cookie's value: never logged
  std::string csrf;  // the X-Custody-CSRF value: never logged
  http::Principal principal;
  TimePoint expires;
};

class ConsoleSessions {
 public:
  ConsoleSessions(store::AdminTokenStore& tokens, const Clock& clock, Random& random,
                  ConsoleSessionOptions options = {});

  // A session for an authenticated principal. When full, expired sessions go first, then the
  // one closest to expiring.
  NewConsoleSession Create(const http::Principal& principal);
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
  };
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

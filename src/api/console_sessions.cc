#include "api/console_sessions.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <array>

#include "common/encoding.h"
#include "crypto/sha256.h"

namespace custody::api {
namespace {

std::string RandomToken(Random& random) {
  std::array<uint8_t, 32> b;
  random.Fill(b);
  return Base64UrlEncode(b);
}

std::string KeyOf(std::string_view id) { return HexEncode(crypto::Sha256(id)); }

}  // namespace

ConsoleSessions::ConsoleSessions(store::AdminTokenStore& tokens, const Clock& clock, Random& random,
                                 ConsoleSessionOptions options)
    : tokens_(tokens), clock_(clock), random_(random), options_(options) {}

NewConsoleSession ConsoleSessions::Create(const http::Principal& principal) {
  return Insert(principal, {});
}

NewConsoleSession ConsoleSessions::CreateForPerson(const ConsolePerson& person,
                                                   const std::string& role) {
  return Insert(http::Principal{ConsolePersonPrincipalId(person.subject), role}, person);
}

NewConsoleSession ConsoleSessions::Insert(const http::Principal& principal,
                                          const ConsolePerson& person) {
  NewConsoleSession s{RandomToken(random_), RandomToken(random_), principal,
                      clock_.Now() + options_.lifetime, person};
  TimePoint now = clock_.Now();
  MutexLock lock(mu_);
  if (sessions_.size() >= options_.max_sessions) {
    std::erase_if(sessions_, [now](const auto& kv) { return kv.second.expires <= now; });
  }
  while (!sessions_.empty() && sessions_.size() >= options_.max_sessions) {
    auto soonest = sessions_.begin();
    for (auto it = sessions_.begin(); it != sessions_.end(); ++it) {
      if (it->second.expires < soonest->second.expires) soonest = it;
    }
    sessions_.erase(soonest);
  }
  sessions_[KeyOf(s.id)] = Entry{s.csrf, principal, s.expires, person};
  return s;
}

Result<ConsoleSessions::Entry> ConsoleSessions::Find(std::string_view id) {
  const std::string key = KeyOf(id);
  MutexLock lock(mu_);
  auto it = sessions_.find(key);
  if (it == sessions_.end()) return UnauthenticatedError("console session unknown or ended");
  if (it->second.expires <= clock_.Now()) {
    sessions_.erase(it);
    return UnauthenticatedError("console session expired");
  }
  return it->second;
}

Result<http::Principal> ConsoleSessions::Authenticate(std::string_view id, std::string_view csrf) {
  Result<Entry> found = Find(id);
  if (!found.ok()) return found.status();
  const Entry& entry = *found;
  if (csrf.empty()) {
    return PermissionDeniedError("a console session needs its X-Custody-CSRF header");
  }
  if (csrf.size() != entry.csrf.size() ||
      CRYPTO_memcmp(csrf.data(), entry.csrf.data(), csrf.size()) != 0) {
    return PermissionDeniedError("wrong X-Custody-CSRF header for this console session");
  }
  // A person's session has no token behind it: the IdP vouched at sign-in, for its lifetime.
  if (!entry.person.subject.empty()) return entry.principal;
  // The token it was made from still decides: revoked (or gone) ends the session now.
  Result<std::optional<store::AdminTokenRecord>> rec = tokens_.Get(entry.principal.id);
  if (!rec.ok()) return rec.status();
  if (!rec->has_value() || (*rec)->revoked_unix_ms || (*rec)->role != entry.principal.role) {
    End(id);
    return UnauthenticatedError("token revoked");
  }
  return entry.principal;
}

Result<NewConsoleSession> ConsoleSessions::Resume(std::string_view id) {
  Result<Entry> found = Find(id);
  if (!found.ok()) return found.status();
  if (found->person.subject.empty()) {
    Result<std::optional<store::AdminTokenRecord>> rec = tokens_.Get(found->principal.id);
    if (!rec.ok()) return rec.status();
    if (!rec->has_value() || (*rec)->revoked_unix_ms || (*rec)->role != found->principal.role) {
      End(id);
      return UnauthenticatedError("token revoked");
    }
  }
  return NewConsoleSession{std::string(id), found->csrf, found->principal, found->expires,
                           found->person};
}

std::optional<std::string> ConsoleRoleForGroups(const std::vector<std::string>& groups,
                                                const std::vector<std::string>& admin_groups,
                                                const std::vector<std::string>& reader_groups) {
  auto any_in = [&](const std::vector<std::string>& set) {
    for (const std::string& g : groups) {
      if (std::find(set.begin(), set.end(), g) != set.end()) return true;
    }
    return false;
  };
  if (any_in(admin_groups)) return std::string(kRoleAdmin);
  if (any_in(reader_groups)) return std::string(kRoleReader);
  return std::nullopt;
}

std::string ConsolePersonPrincipalId(std::string_view subject) {
  return "oidc:" + std::string(subject);
}

void ConsoleSessions::End(std::string_view id) {
  const std::string key = KeyOf(id);
  MutexLock lock(mu_);
  sessions_.erase(key);
}

size_t ConsoleSessions::size() const {
  MutexLock lock(mu_);
  return sessions_.size();
}

std::optional<std::string_view> CookieValue(const http::Headers& headers, std::string_view name) {
  for (const auto& [k, v] : headers.entries()) {
    if (k != "cookie") continue;
    std::string_view rest = v;
    while (!rest.empty()) {
      size_t semi = rest.find(';');
      std::string_view pair = rest.substr(0, semi);
      rest = semi == std::string_view::npos ? std::string_view() : rest.substr(semi + 1);
      while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
      size_t eq = pair.find('=');
      if (eq != std::string_view::npos && pair.substr(0, eq) == name) return pair.substr(eq + 1);
    }
  }
  return std::nullopt;
}

std::optional<Result<http::Principal>> ConsoleAuthenticator::AuthenticateOther(
    const http::Request& request) {
  std::optional<std::string_view> id = CookieValue(request.headers, kConsoleCookie);
  if (!id || id->empty()) return std::nullopt;
  return sessions_.Authenticate(*id, request.headers.Get(kConsoleCsrfHeader).value_or(""));
}

}  // namespace custody::api

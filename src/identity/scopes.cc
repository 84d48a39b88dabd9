#include "identity/scopes.h"

#include <algorithm>

namespace custody::identity {
namespace {

void Normalize(ScopeSet& s) {
  std::sort(s.begin(), s.end());
  s.erase(std::unique(s.begin(), s.end()), s.end());
}

}  // namespace

Status ValidateScope(std::string_view scope) {
  if (scope.empty()) return InvalidArgumentError("empty scope");
  if (scope.size() > 256) return InvalidArgumentError("scope longer than 256 characters");
  for (size_t i = 0; i < scope.size(); ++i) {
    char c = scope[i];
    // RFC 6749 §3.3 scope-token: %x21 / %x23-5B / %x5D-7E.
    if (c < 0x21 || c > 0x7e || c == '"' || c == '\\') {
      return InvalidArgumentError("scope contains a character RFC 6749 forbids");
    }
    if (c == '*' && i + 1 != scope.size()) {
      return InvalidArgumentError("'*' is allowed only at the end of a scope");
    }
  }
  return OkStatus();
}

Result<ScopeSet> ParseScopes(std::string_view text) {
  ScopeSet out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t sp = text.find(' ', pos);
    if (sp == std::string_view::npos) sp = text.size();
    if (sp > pos) {
      std::string_view s = text.substr(pos, sp - pos);
      RETURN_IF_ERROR(ValidateScope(s));
      out.emplace_back(s);
    }
    pos = sp + 1;
  }
  Normalize(out);
  return out;
}

std::string JoinScopes(const ScopeSet& scopes) {
  std::string out;
  for (const auto& s : scopes) {
    if (!out.empty()) out += ' ';
    out += s;
  }
  return out;
}

bool Covers(std::string_view broad, std::string_view narrow) {
  if (broad == narrow) return true;
  if (broad.empty() || broad.back() != '*') return false;
  std::string_view prefix = broad.substr(0, broad.size() - 1);
  return narrow.substr(0, prefix.size()) == prefix;
}

bool CoveredBy(std::string_view scope, const ScopeSet& set) {
  return std::any_of(set.begin(), set.end(),
                     [&](const std::string& b) { return Covers(b, scope); });
}

ScopeSet Intersect(const ScopeSet& a, const ScopeSet& b) {
  ScopeSet out;
  for (const auto& x : a) {
    for (const auto& y : b) {
      if (Covers(x, y))
        out.push_back(y);
      else if (Covers(y, x))
        out.push_back(x);
    }
  }
  Normalize(out);
  // Drop scopes covered by another member, so the set is minimal.
  ScopeSet minimal;
  for (const auto& s : out) {
    bool redundant = std::any_of(out.begin(), out.end(),
                                 [&](const std::string& o) { return o != s && Covers(o, s); });
    if (!redundant) minimal.push_back(s);
  }
  return minimal;
}

}  // namespace custody::identity

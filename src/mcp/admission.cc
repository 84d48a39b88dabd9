#include "mcp/admission.h"

#include <algorithm>
#include <cctype>

#include "http/http.h"

namespace custody::mcp {

bool ProtocolVersionSupported(std::string_view version) {
  for (const char* s : kProtocolVersions) {
    if (version == s) return true;
  }
  return false;
}

std::string NegotiateProtocolVersion(std::string_view requested) {
  return ProtocolVersionSupported(requested) ? std::string(requested)
                                             : std::string(kProtocolVersions[0]);
}

bool OriginAllowed(std::string_view origin, const std::vector<std::string>& allowed) {
  for (const auto& a : allowed) {
    if (origin == a) return true;
  }
  for (std::string_view scheme : {"http://", "https://"}) {
    if (!origin.starts_with(scheme)) continue;
    std::string_view host = origin.substr(scheme.size());
    for (std::string_view loop : {"localhost", "127.0.0.1", "[::1]"}) {
      if (host == loop) return true;
      if (host.starts_with(loop) && host.size() > loop.size() && host[loop.size()] == ':') {
        std::string_view port = host.substr(loop.size() + 1);
        if (!port.empty() &&
            std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
          return true;
        }
      }
    }
  }
  return false;
}

std::string ResourceMetadataUrl(const http::Request& req, bool tls, const std::string& server) {
  std::string host(req.headers.Get("host").value_or(""));
  bool sane =
      !host.empty() && host.size() < 256 && std::all_of(host.begin(), host.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':' ||
               c == '[' || c == ']';
      });
  if (!sane) host = "127.0.0.1";
  return std::string(tls ? "https://" : "http://") + host +
         "/.well-known/oauth-protected-resource/mcp" + (server.empty() ? "" : "/" + server);
}

std::vector<std::string> StepUpScopes(const std::string& needed,
                                      const std::vector<std::string>& held, bool modern) {
  std::vector<std::string> out;
  if (!modern) out = held;
  out.push_back(needed);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

namespace {

// RFC 6749 section 3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ); so also a quoted-string.
bool ScopeToken(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return c >= 0x21 && c <= 0x7e && c != '"' && c != '\\';
  });
}

// The scopes that are scope-tokens, space-separated.
std::string ScopeList(const std::vector<std::string>& scopes) {
  std::string list;
  for (const auto& s : scopes) {
    if (!ScopeToken(s)) continue;
    if (!list.empty()) list += ' ';
    list += s;
  }
  return list;
}

}  // namespace

std::vector<std::string> ScopesSupported(const std::string& server,
                                         const std::vector<std::string>& servers) {
  std::vector<std::string> out;
  for (const std::string& s : server.empty() ? servers : std::vector<std::string>{server}) {
    if (s.find('/') == std::string::npos && ScopeToken(s + "/*")) out.push_back(s + "/*");
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::string UnauthorizedChallenge(std::string_view resource_metadata,
                                  const std::vector<std::string>& scopes, bool invalid_token) {
  std::string challenge = "Bearer resource_metadata=\"" + std::string(resource_metadata) + "\"";
  if (std::string list = ScopeList(scopes); !list.empty()) challenge += ", scope=\"" + list + "\"";
  if (invalid_token) challenge += ", error=\"invalid_token\"";
  return challenge;
}

std::string InsufficientScopeChallenge(const std::vector<std::string>& scopes,
                                       std::string_view resource_metadata) {
  std::string list = ScopeList(scopes);
  return "Bearer error=\"insufficient_scope\", scope=\"" + list + "\", resource_metadata=\"" +
         std::string(resource_metadata) + "\"";
}

}  // namespace custody::mcp

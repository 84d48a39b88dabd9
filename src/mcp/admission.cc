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

std::string InsufficientScopeChallenge(const std::vector<std::string>& scopes,
                                       std::string_view resource_metadata) {
  // RFC 6749 section 3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ).
  auto token = [](const std::string& s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
      return c >= 0x21 && c <= 0x7e && c != '"' && c != '\\';
    });
  };
  std::string list;
  for (const auto& s : scopes) {
    if (!token(s)) continue;
    if (!list.empty()) list += ' ';
    list += s;
  }
  return "Bearer error=\"insufficient_scope\", scope=\"" + list + "\", resource_metadata=\"" +
         std::string(resource_metadata) + "\"";
}

}  // namespace custody::mcp

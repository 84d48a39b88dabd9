// What the gateway checks of a request before it looks at the message: the protocol versions it
// speaks, the Origin allow-list (DNS rebinding), and where its RFC 9728 metadata lives. Pure
// functions, tested alone in admission_test.cc. Also the step-up challenge a call refused for the
// token's scopes is answered with.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace custody::http {
struct Request;
}

namespace custody::mcp {

// Protocol versions the front end speaks, newest first.
inline constexpr const char* kProtocolVersions[] = {"2025-11-25", "2025-06-18", "2025-03-26"};

bool ProtocolVersionSupported(std::string_view version);

// The version to answer an initialize with: the client's if supported, else the newest.
std::string NegotiateProtocolVersion(std::string_view requested);

// Whether `origin` (an Origin header value) is a loopback origin or listed in `allowed`.
bool OriginAllowed(std::string_view origin, const std::vector<std::string>& allowed);

// The RFC 9728 metadata URL of the endpoint for `server` ("" for the aggregate /mcp), built
// from the request's Host header; a missing or odd Host is replaced by 127.0.0.1.
std::string ResourceMetadataUrl(const http::Request& req, bool tls, const std::string& server);

// The scopes a 403 insufficient_scope challenge names when a request needed `needed` and the
// token holds `held` (sorted). A 2025-era client (MCP 2025-11-25, "Scope challenge handling")
// asks for exactly the challenged set, so it gets what it holds plus what is missing, and keeps
// what it could do; a 2026-07-28 client (`modern`) adds what it holds itself (SEP-2350, RFC 6750
// section 3.1), so it gets only what the operation needs.
std::vector<std::string> StepUpScopes(const std::string& needed,
                                      const std::vector<std::string>& held, bool modern);

// The scopes an endpoint's tools, resources and prompts are reached with, for its RFC 9728
// `scopes_supported` and its 401 challenge (MCP 2025-11-25, "Scope selection strategy": clients
// ask for the challenge's `scope`, else `scopes_supported`): "<server>/*" for each server behind
// it (`servers`, the configured ones, for the aggregate /mcp; `server` alone for /mcp/{server}).
// The authorization server narrows what a client asks for to its agent's grants, so asking for
// every server's scope is safe. A name that cannot be a scope-token is left out.
std::vector<std::string> ScopesSupported(const std::string& server,
                                         const std::vector<std::string>& servers);

// The WWW-Authenticate value of a 401: `Bearer resource_metadata="...", scope="..."` (scope left
// out when `scopes` is empty), then `error="invalid_token"` when a token was sent.
std::string UnauthorizedChallenge(std::string_view resource_metadata,
                                  const std::vector<std::string>& scopes, bool invalid_token);

// The WWW-Authenticate value of that 403: `Bearer error="insufficient_scope", scope="...",
// resource_metadata="..."`. A scope that cannot be a quoted-string (RFC 6749 scope-token
// characters only) is left out rather than break the header.
std::string InsufficientScopeChallenge(const std::vector<std::string>& scopes,
                                       std::string_view resource_metadata);

}  // namespace custody::mcp

// What the gateway checks of a request before it looks at the message: the protocol versions it
// speaks, the Origin allow-list (DNS rebinding), and where its RFC 9728 metadata lives. Pure
// functions, tested alone in admission_test.cc.
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

}  // namespace custody::mcp

// The MCP 2026-07-28 revision ("modern"), served on the same endpoints as 2025-03-26 ..
// 2025-11-25: a request is modern when its params._meta carries
// "io.modelcontextprotocol/protocolVersion" (the body decides; headers only cross-check). A
// modern request is stateless: no initialize, no Mcp-Session-Id; it says in its own _meta
// which version it speaks, what its client can do and who the client is.
//
// Here: telling the eras apart, the validation ladder (-32602, -32020 header mismatch, -32022
// unsupported version; HTTP 400), and the shape of modern results (resultType, cache hints,
// serverInfo). Pure functions, tested alone in modern_test.cc.
#pragma once

#include <boost/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "mcp/jsonrpc.h"

namespace custody::http {
struct Request;
}

namespace custody::mcp {

inline constexpr std::string_view kModernVersion = "2026-07-28";
inline constexpr int kHeaderMismatch = -32020;
inline constexpr int kMissingClientCapability = -32021;
inline constexpr int kUnsupportedVersion = -32022;
// _meta keys of a modern request.
inline constexpr std::string_view kMetaVersion = "io.modelcontextprotocol/protocolVersion";
inline constexpr std::string_view kMetaCapabilities = "io.modelcontextprotocol/clientCapabilities";
inline constexpr std::string_view kMetaClientInfo = "io.modelcontextprotocol/clientInfo";
inline constexpr std::string_view kMetaLogLevel = "io.modelcontextprotocol/logLevel";
inline constexpr std::string_view kMetaServerInfo = "io.modelcontextprotocol/serverInfo";

// What a modern request says about itself.
struct ModernRequest {
  std::string version;
  json::object capabilities;  // the client's, for this request only
  json::value client_info;    // null when not sent
  std::string log_level;      // "" when not sent: no log messages for this request
};

// A refusal before dispatch: the HTTP status and the JSON-RPC error.
struct Refusal {
  int http_status = 400;
  int code = kInvalidRequest;
  std::string message;
  json::value data;
};

// Whether `msg` claims the modern era (params._meta has the protocol version key).
bool ClaimsModern(const Message& msg);

// The ladder for a modern request (ClaimsModern): nullopt and `*out` filled when it may be
// dispatched, else the refusal, in the order the specification's conformance suite checks.
std::optional<Refusal> CheckModern(const http::Request& req, const Message& msg,
                                   ModernRequest* out);

// A legacy-looking request (no claim) whose MCP-Protocol-Version header names the modern
// version: -32602, it lacks the _meta a modern request must carry.
std::optional<Refusal> CheckLegacyHeader(const http::Request& req);

// An Mcp-Name / Mcp-Method header value as compared with the body: surrounding whitespace
// removed, a "=?base64?…?=" value decoded. nullopt when it is malformed.
std::optional<std::string> HeaderValue(std::string_view raw);

// The body's value an Mcp-Name header repeats: params.name of tools/call and prompts/get,
// params.uri of resources/read; "" for other methods or when absent.
std::string NameInBody(const Message& msg);

// The versions a client may choose from (-32022's data.supported, server/discover).
json::array SupportedVersions();

// Methods the modern era removed.
bool RemovedInModern(std::string_view method);
// Methods the gateway serves to a modern request; any other is 404 with -32601.
bool ServedInModern(std::string_view method);

// Results a modern client may cache, which carry ttlMs and cacheScope.
bool CacheableMethod(std::string_view method);

// A response (serialized JSON-RPC) made modern: a result gets resultType "complete" unless it
// has one, `server_info` in _meta, and for `cacheable` methods ttlMs 0 and
// cacheScope "private" (answers are filtered per caller and policy may change at any time);
// -32002, a code the revision retired, becomes -32000 when it is the gateway's own (upstream
// unavailable) and -32602 when it is a 2025-era server's (resource not found). Text that is
// not a JSON object is returned as is.
// `*http_status`, when given, becomes 400 for -32021 (a missing client capability), the one
// handler error the revision answers with 400.
std::string ModernBody(std::string body, bool cacheable, const json::object& server_info,
                       int* http_status = nullptr);

// How severe an MCP log level is (debug 0 .. emergency 7); -1 for an unknown one.
int LogSeverity(std::string_view level);

}  // namespace custody::mcp

// JSON-RPC 2.0 framing for the MCP gateway: classifying one message (request, notification,
// response), building responses and errors, and the one mapping from Status codes to JSON-RPC
// error codes (the HTTP mapping is http::HttpStatusFor).
//
// Messages from the network are validated here, never asserted. Batches (JSON arrays) are
// refused: MCP 2025-06-18 removed them, and the gateway must log exactly the call that runs.
// Stateless functions; thread-safe.
#pragma once

#include <boost/json.hpp>
#include <string>
#include <string_view>

#include "common/status.h"

namespace custody::mcp {

namespace json = boost::json;

// JSON-RPC 2.0 codes, and the gateway's own (in the implementation-defined -32000..-32099).
inline constexpr int kParseError = -32700;
inline constexpr int kInvalidRequest = -32600;
inline constexpr int kMethodNotFound = -32601;
inline constexpr int kInvalidParams = -32602;
inline constexpr int kInternalError = -32603;
inline constexpr int kDenied = -32001;       // refused by policy, containment or pinning
inline constexpr int kUnavailable = -32002;  // the upstream server is down or timed out
// MCP 2025-11-25 URLElicitationRequiredError: the request needs the person to visit a URL first
// (the gateway: an approval page), data.elicitations names it; the client retries after.
inline constexpr int kUrlElicitationRequired = -32042;
// error.data.reason of the gateway's own -32002 (ErrorObject adds it when no data is given).
inline constexpr std::string_view kUnavailableReason = "custody:upstream_unavailable";

// Status -> JSON-RPC error code: invalid_argument -32602, not_found -32601 (a method or tool
// that does not exist), permission_denied/unauthenticated/failed_precondition -32001,
// unavailable -32002, everything else -32603.
int JsonRpcCodeFor(StatusCode code);

enum class MessageKind { kRequest, kNotification, kResponse };

struct Message {
  MessageKind kind = MessageKind::kRequest;
  json::value id;      // string or integer for requests and responses; null for notifications
  std::string method;  // requests and notifications
  json::object obj;    // the whole message
  // params as an object (empty when absent). Requests with non-object params are refused.
  const json::object& params() const;
};

struct RpcError {
  int code = kInternalError;
  std::string message;
};

// Parses one JSON-RPC message. On failure returns false and fills `error` (parse error for bad
// JSON, invalid request for batches and malformed envelopes); `id` receives the request id when
// one could be read, so the error can answer it.
bool ParseMessage(std::string_view text, Message* out, RpcError* error, json::value* id);

// {"jsonrpc":"2.0","id":id,"result":result}
std::string ResultText(const json::value& id, json::value result);
// {"jsonrpc":"2.0","id":id,"error":{"code","message"[,"data"]}}; a kUnavailable error without
// data gets {"reason": kUnavailableReason}.
std::string ErrorText(const json::value& id, int code, std::string_view message,
                      const json::value& data = nullptr);
json::object ErrorObject(const json::value& id, int code, std::string_view message,
                         const json::value& data = nullptr);

}  // namespace custody::mcp

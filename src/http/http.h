// The light HTTP interface that other modules use to add routes: plain request/response structs,
// the route table, the error shape and the one mapping from Status codes to HTTP statuses. It
// includes no Boost header, so api/identity/mcp code can include it freely; Beast and Asio stay
// in the .cc files of this module (server.cc, client.cc).
//
// Handlers are asynchronous: they receive the request and a Responder, and call it exactly once,
// from any thread, possibly after they return (e.g. when a ledger append is durable). A response
// can instead open a Server-Sent Events stream (see SseStream).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace custody::http {

// Header names are stored lower-case; lookups are case-insensitive.
class Headers {
 public:
  void Add(std::string name, std::string value);
  // Replaces every value of `name`.
  void Set(std::string name, std::string value);
  std::optional<std::string_view> Get(std::string_view name) const;
  const std::vector<std::pair<std::string, std::string>>& entries() const { return entries_; }

 private:
  std::vector<std::pair<std::string, std::string>> entries_;
};

// Who a request is authenticated as (filled by the Authenticator).
struct Principal {
  std::string id;    // token id: safe to log, never the token itself
  std::string role;  // e.g. "admin", "reader"
};

struct Request {
  std::string method;  // "GET", "POST", ...
  std::string target;  // as received: path and query
  std::string path;    // the path as received (not percent-decoded; printable ASCII)
  std::string query;   // raw query string, without '?'
  Headers headers;
  std::string body;
  std::string request_id;                     // the X-Request-ID the response will carry
  std::map<std::string, std::string> params;  // from "{name}" segments of the route pattern
  std::optional<Principal> principal;         // set when the route required authentication
  std::string remote;                         // peer address, for logs

  // The decoded value of query parameter `name`, if present.
  std::optional<std::string> QueryParam(std::string_view name) const;
};

class SseWriter;

struct Response {
  int status = 200;
  Headers headers;
  std::string body;
  // When set, the server sends the headers with Content-Type text/event-stream and no length,
  // then calls this with a writer for the stream; the connection closes when the writer is
  // closed or the peer goes away.
  std::function<void(std::shared_ptr<SseWriter>)> sse;

  static Response Text(int status, std::string body,
                       std::string content_type = "text/plain; charset=utf-8");
  static Response Json(int status, std::string body);
};

// Writes events on an open text/event-stream response. Thread-safe; methods are non-blocking
// (events are queued and written in order). After the peer goes away, Send returns false.
class SseWriter {
 public:
  virtual ~SseWriter() = default;
  // One event: optional "event:" and "id:" fields, and `data` split into "data:" lines.
  virtual bool Send(std::string_view event, std::string_view data, std::string_view id = {}) = 0;
  // A comment line (": text"), e.g. a keep-alive.
  virtual bool Comment(std::string_view text) = 0;
  // Ends the stream after queued events are written.
  virtual void Close() = 0;
  virtual bool closed() const = 0;
  // `f` runs once (on the connection's thread) if the peer closes the stream before it is
  // closed from this side: a client's way to say it no longer wants what is being streamed.
  virtual void OnPeerGone(std::function<void()> f) { (void)f; }
};

// Formats one SSE event (shared by the server and tests).
std::string FormatSseEvent(std::string_view event, std::string_view data, std::string_view id);

// The credential of an "Authorization: Bearer <token>" header (scheme matched without regard
// to case), possibly empty; nullopt when there is no such header. The one bearer parser.
std::optional<std::string_view> BearerToken(const Headers& headers);

// --- Errors ----------------------------------------------------------------------------------

// The one mapping from Status codes to HTTP statuses (the JSON-RPC mapping will sit beside it).
int HttpStatusFor(StatusCode code);
// Reason phrase for the status line and logs ("Not Found").
std::string_view HttpReason(int status);

// The one error shape: {"error":{"code":"<status code name>","message":"…","request_id":"…"}}.
// `http_status` overrides HttpStatusFor(status.code()) for transport-level answers (405, 408,
// 413, 415, 431) whose code stays in the closed Status set.
Response ErrorResponse(const Status& status, std::string_view request_id, int http_status = 0);
std::string ErrorBody(const Status& status, std::string_view request_id);

// --- Routing ---------------------------------------------------------------------------------

using Responder = std::function<void(Response)>;
using Handler = std::function<void(Request&, Responder)>;

// What a route needs from the caller. Role "" means any authenticated principal.
struct AuthRequirement {
  bool required = false;
  std::vector<std::string> roles;  // allowed roles; empty: any

  static AuthRequirement None() { return {}; }
  static AuthRequirement AnyOf(std::vector<std::string> roles) { return {true, std::move(roles)}; }
};

struct Route {
  std::string method;
  std::string pattern;  // "/v1/ledger/entries/{index}"; a final "{name...}" matches the rest
  Handler handler;
  AuthRequirement auth;
  std::string content_type;  // required request media type for bodies (e.g. application/json)
};

// Maps method + path to a route. Patterns are literal segments, "{name}" (one non-empty
// segment) or a final "{name...}" (the rest of the path, possibly containing '/'). Literal
// segments win over parameters. Not thread-safe to modify; read-only use from many threads is
// safe once the server starts.
class Router {
 public:
  // InvalidArgument for a malformed pattern, AlreadyExists for a duplicate method + pattern.
  Status Add(Route route);

  struct Match {
    const Route* route = nullptr;
    std::map<std::string, std::string> params;
    bool path_matched = false;         // some route has this path (for 405 vs 404)
    std::vector<std::string> allowed;  // methods for this path, when path_matched
  };
  Match Find(std::string_view method, std::string_view path) const;

 private:
  struct Compiled {
    Route route;
    std::vector<std::string> segments;  // "{x}" / "{x...}" for parameters
  };
  std::vector<Compiled> routes_;
};

// Authenticates a bearer credential. Implementations are thread-safe.
class Authenticator {
 public:
  virtual ~Authenticator() = default;
  // Unauthenticated for a missing, malformed, unknown or revoked credential.
  virtual Result<Principal> Authenticate(std::string_view bearer_token) = 0;
};

// One finished request, for access logs and metrics. Called on a server thread; must be cheap.
struct RequestRecord {
  std::string_view method;
  std::string_view route;  // the pattern, or "unmatched"; never the raw path with ids
  int status = 0;
  std::chrono::microseconds latency{0};
  std::string_view request_id;
  std::string_view remote;
  std::string_view principal;  // token id or empty
  uint64_t request_bytes = 0;
  uint64_t response_bytes = 0;
};
using RequestObserver = std::function<void(const RequestRecord&)>;

// The decoded value of `name` in an application/x-www-form-urlencoded body (or a query string).
std::optional<std::string> FormParam(std::string_view form, std::string_view name);

// A caller-supplied X-Request-ID is echoed only if it is 1..128 characters of [A-Za-z0-9._:-].
bool IsSaneRequestId(std::string_view id);

}  // namespace custody::http

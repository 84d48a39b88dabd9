// Upstream: one MCP server behind the gateway, whatever the transport. The gateway speaks to
// every upstream through this interface: StdioUpstream (a process Custody spawns and
// supervises, docs/MCP.md) and HttpUpstream (a remote Streamable HTTP server).
//
// Contract shared by the implementations:
// - Call() sends a JSON-RPC request under a fresh upstream id (the client's own id never
//   reaches the upstream) and runs `done` exactly once: with the upstream's response object
//   ({"result":…} or {"error":…}), or with Unavailable (transport failure, the server went
//   away, the deadline passed, or the call was cancelled).
// - Cancel() gives up on a request: notifications/cancelled goes upstream when the request
//   had been sent, and its callback runs with Unavailable.
// - Server notifications (progress, list_changed, log messages, …) go to
//   UpstreamOptions::on_notification.
// - Requests from the server to the client: ping is answered by the upstream itself ({}); the
//   others (sampling/createMessage, elicitation/create, roots/list, …) go to
//   UpstreamOptions::on_request, whose owner answers each exactly once with Respond(). Without
//   on_request they are answered method-not-found.
// - Both handlers are told which of the gateway's requests the message is related to: the
//   upstream id of the request whose response stream carried it (Streamable HTTP), or 0 when
//   nothing says (stdio, the GET stream).
// - Callbacks run on the upstream's own threads and must not block.
//
// Thread-safe.
#pragma once

#include <boost/json/fwd.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/error_reporter.h"
#include "common/logger.h"
#include "common/status.h"

namespace custody::mcp {

// How to reach one upstream: `command` (stdio) or `url` (Streamable HTTP), never both.
struct UpstreamConfig {
  std::string name;     // the server's name in the gateway (/mcp/{name})
  std::string command;  // stdio: looked up in PATH when it has no '/'
  std::vector<std::string> args;
  std::map<std::string, std::string> env;      // stdio: added to (overriding) Custody's environment
  std::string url;                             // http(s)://host[:port]/path
  std::map<std::string, std::string> headers;  // http: sent with every request (e.g. the
                                               // upstream's own credential; never the agent's)
  std::string ca_file;  // https: PEM trust anchors instead of the system store
  // Which MCP era the server speaks: "auto" (probe with server/discover, else initialize),
  // "2026-07-28" (nothing else is accepted) or "2025" (initialize only, no probe).
  std::string protocol = "auto";
  // What the server is told of who is behind each enforced call (tools/call, resources/read,
  // prompts/get) the gateway forwards after an allowed decision: "none", or "txn-token" (a
  // Transaction Token minted for that one call, identity/txn_token.h; docs/MCP.md, "Identity
  // for upstreams"). The transports only carry it (RequestExtras); the gateway mints it.
  std::string identity = "none";
  // The aud of those tokens; empty: DefaultTxnAudience().
  std::string txn_audience;
};
using StdioServerConfig = UpstreamConfig;

inline constexpr std::string_view kIdentityNone = "none";
inline constexpr std::string_view kIdentityTxnToken = "txn-token";
// The _meta key of the Transaction Token in a request to a stdio server (reverse DNS, as the
// receipt's dev.custody/receipt).
inline constexpr const char* kTxnTokenMetaKey = "dev.custody/txn-token";
// The HTTP header of the Transaction Token (draft-ietf-oauth-transaction-tokens-10 §7.1).
inline constexpr const char* kTxnTokenHeader = "Txn-Token";
// The default audience of a server's Transaction Tokens: its url (an HTTP server), or
// "urn:custody:mcp:<name>" (a stdio server, which has no address of its own).
std::string DefaultTxnAudience(const UpstreamConfig& config);

// Puts `txn_token` in params._meta[kTxnTokenMetaKey] (stdio), or with an empty one removes
// whatever a client put there: only the gateway's own token ever reaches a server. Both
// transports run every request through it.
void PlaceTxnTokenMeta(boost::json::value& params, std::string txn_token);

// Gives the Transaction Token for one send of a request (a secret: never logged). The
// transport calls it right before each send: the first, the retry after an HTTP 404, each
// round of a 2026-07-28 input_required exchange, so that every send carries a token valid when
// it leaves, however long the request waited. Called on the transport's threads, without its
// locks held; must be thread-safe and quick (a signature). An error: the request is not sent
// (again) and its callback gets Unavailable.
using TxnTokenSource = std::function<Result<std::string>()>;

// What travels with one request besides its params (Upstream::Call).
struct RequestExtras {
  // The Transaction Token of each send of this request alone; empty: none. An HTTP upstream
  // sends it in the Txn-Token header, a stdio one in params._meta[kTxnTokenMetaKey].
  TxnTokenSource txn_token;
};

// The Transaction Token of one send of a request: "" without a source, the source's token, or
// Unavailable (naming `server`) when it cannot give one.
Result<std::string> TxnTokenForSend(const TxnTokenSource& source, const std::string& server);

// The upstream's response object ({"result":…} or {"error":…}), or Unavailable.
using UpstreamCallback = std::function<void(Result<boost::json::object>)>;
// `related`: the upstream id of the gateway request the message came with, 0 if unknown.
using NotificationHandler =
    std::function<void(const boost::json::object& message, int64_t related)>;
using RequestHandler = std::function<void(const boost::json::object& request, int64_t related)>;

struct UpstreamOptions {
  std::chrono::milliseconds request_timeout{60000};
  std::chrono::milliseconds min_backoff{100};
  std::chrono::milliseconds max_backoff{30000};
  size_t max_line_bytes = 16 << 20;  // longer messages are dropped (and logged)
  size_t max_waiting = 1024;         // requests queued while the server (re)starts
  std::string protocol_version = "2025-06-18";
  // Where the upstream logs (its lifecycle, its server's stderr) and reports the errors no
  // caller hears of. Not owned; null: nothing is logged or counted.
  Logger* log = nullptr;
  ErrorReporter* errors = nullptr;
  NotificationHandler on_notification;  // server notifications (e.g. tools/list_changed)
  // Server requests other than ping. When set, initialize declares the client capabilities the
  // gateway relays to its own clients (sampling, elicitation in form and URL mode); each request
  // must then be answered with Respond(). Roots are not declared: the upstream session is shared
  // by every client of the server, and one client's roots would change the server's view for all.
  RequestHandler on_request;
  // After the requests of one 2026-07-28 input_required result went to on_request one by one
  // (upstream_era.h), with the same `related`: the server asked all it will ask in this round.
  std::function<void(int64_t related)> on_requests_end;
};

// One log line about `server` ("mcp_upstream", with the server and the message), if `o` has a
// logger; and an error reported under `site`, if it has a reporter.
void LogUpstream(const UpstreamOptions& o, LogLevel level, const std::string& server,
                 const std::string& message);
void ReportUpstream(const UpstreamOptions& o, std::string_view site, const Status& status);

class Upstream {
 public:
  virtual ~Upstream() = default;
  // Starts connecting / the process in the background; returns at once.
  virtual void Start() = 0;
  // Ends the upstream and fails what is in flight with Unavailable.
  virtual void Stop() = 0;
  // Sends a request; `done` runs once. Returns the upstream id (for Cancel), 0 if refused (then
  // `done` has already run). `extras` go with it (and with its retries) as RequestExtras says.
  virtual int64_t Call(const std::string& method, boost::json::value params, RequestExtras extras,
                       UpstreamCallback done) = 0;
  // Without extras.
  int64_t Call(const std::string& method, boost::json::value params, UpstreamCallback done);
  virtual void Cancel(int64_t id, const std::string& reason) = 0;
  // Sends a notification (dropped while the server is not initialized).
  virtual void Notify(const std::string& method, boost::json::value params) = 0;
  // Answers a request the server sent (on_request): `answer` holds its "result" or "error"
  // member. Dropped, like a notification, while the server is not initialized.
  virtual void Respond(const boost::json::value& id, boost::json::object answer) = 0;
  virtual const std::string& name() const = 0;
  virtual bool ready() const = 0;
  // Whether the server declared the capability `name` ("completions", "logging", "resources",
  // …, or a flag of one: "resources.subscribe") in its last initialize answer (false before the
  // first).
  virtual bool HasCapability(std::string_view name) const = 0;
  // Whether the server speaks MCP 2026-07-28 (upstream_era.h), as of its last handshake.
  virtual bool modern() const = 0;
};

// The names of the capabilities an initialize result declares (its `capabilities` members),
// and "<name>.<flag>" for each of their flags that is true ("resources.subscribe").
std::set<std::string, std::less<>> CapabilityNames(const boost::json::object& initialize_result);

// The answer to a request an upstream server sent to the gateway (its id and method) when no
// on_request takes it: `ping` gets {}, anything else method-not-found. Serialized JSON-RPC,
// ready to send.
std::string AnswerServerRequest(const boost::json::value& id, std::string_view method);

// A response to the server's request `id`: {"jsonrpc","id"} plus `answer`'s members.
std::string ResponseText(const boost::json::value& id, boost::json::object answer);

// Handles a message from an upstream server that is not a response, `related` as above: ping
// (and, without options.on_request, every request) is answered with `reply`; other requests go
// to options.on_request, notifications to options.on_notification (if set). Returns false when
// `message` is a response, for the caller to match to its request.
bool HandleServerMessage(const boost::json::object& message, int64_t related,
                         const std::function<void(std::string)>& reply,
                         const UpstreamOptions& options);

// What the gateway says of itself as an MCP client: the client capabilities it relays to its
// own clients (options.on_request set: sampling, elicitation in form and URL mode; else none)
// and its clientInfo. Shared by initialize and the 2026-07-28 per-request _meta.
boost::json::object GatewayClientCapabilities(const UpstreamOptions& options);
boost::json::object GatewayClientInfo();

// The initialize request the gateway sends upstream: client capabilities only for what it
// relays (options.on_request set: sampling and elicitation).
std::string InitializeRequest(int64_t id, const UpstreamOptions& options);

// The implementation `config` asks for. InvalidArgument when it names neither or both of
// command and url, or a url that is not http(s).
Result<std::unique_ptr<Upstream>> MakeUpstream(UpstreamConfig config, UpstreamOptions options);

}  // namespace custody::mcp

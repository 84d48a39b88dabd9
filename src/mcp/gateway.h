// The MCP gateway: a Streamable HTTP front end at /mcp/{server} for the MCP servers (stdio or
// remote Streamable HTTP) behind Custody, with every tools/call verified, authorized, recorded
// and answered with a receipt. See docs/MCP.md.
//
// The aggregate endpoint /mcp multiplexes every server, with tool names "<server>__<tool>".
// Per request: Origin check; bearer token verified for the gateway audience (401 with an RFC
// 9728 resource_metadata pointer otherwise); the MCP session (issued at initialize, bound to the
// token's Custody session) looked up; then
//   - tools/list: forwarded, each tool's definition hashed and pinned, and the list filtered to
//     the tools the policy could allow this caller (AttributionService::WouldAllow);
//   - resources/read, prompts/get: decided (read_resource, get_prompt), recorded and forwarded
//     as a tools/call is; resources/list, resources/templates/list, prompts/list filtered per
//     caller as tools/list is (resources_prompts.cc; per-server endpoints only);
//   - tools/call: refused if the tool's definition changed since it was approved; otherwise
//     AttributionService::Authorize (the decision is in the ledger before anything is
//     forwarded), forwarded with a new traceparent in params._meta, its outcome recorded with
//     Complete, and the upstream result returned with the receipts under
//     _meta["dev.custody/receipt"];
//   - completion/complete, logging/setLevel: passed to the server as they are (per-server
//     endpoints; the server's one upstream session is shared, so a log level is too);
//   - anything else but initialize and ping: method not found.
// A tools/call in an MCP session that containment ended is recorded as a refusal
// (custody:session_revoked, with a receipt) before it is answered 404.
// GET opens the session's server-initiated SSE stream (tools/list_changed); DELETE ends it.
// The agent's token never goes upstream. When a Custody session is revoked (contained), the
// token service tells the gateway at once: its MCP sessions end (404), their streams close, and
// their in-flight calls are cancelled upstream and answered with a refusal.
//
// Thread-safe. The token service, attribution service and pin store must outlive the gateway.
#pragma once

#include <atomic>
#include <boost/json/fwd.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/mutex.h"
#include "common/random.h"
#include "common/status.h"
#include "http/http.h"
#include "mcp/admission.h"
#include "mcp/approval_holds.h"
#include "mcp/tool_catalog.h"
#include "mcp/tool_pins.h"
#include "mcp/trailing_outcomes.h"
#include "mcp/upstream.h"

namespace custody::identity {
class TokenService;
struct Session;
}  // namespace custody::identity
namespace custody::attribution {
class AttributionService;
struct AuthorizeRequest;
struct AuthorizeResult;
}  // namespace custody::attribution
namespace custody::store {
struct ApprovalRow;
}

namespace custody::mcp {

// The _meta key of the receipt in tools/call results (reverse DNS; MCP reserves only
// modelcontextprotocol.io/ and mcp.dev/ prefixes).
inline constexpr const char* kReceiptMetaKey = "dev.custody/receipt";

class Relay;
class SessionRegistry;
class Subscriptions;
struct Message;
struct ServerItemMethod;

class Gateway;

// Where the attribution service's approval changes (ApprovalOptions::on_changed) reach the
// gateway: made before both, handed to both (GatewayOptions::approval_changes). The gateway is
// attached while it lives, so a change reported while it is destroyed is never delivered to it
// half-gone. Thread-safe.
class ApprovalChanges {
 public:
  void Changed(const store::ApprovalRow& row);  // Gateway::OnApprovalChanged, if attached

 private:
  friend class Gateway;
  Mutex mu_;
  Gateway* gateway_ GUARDED_BY(mu_) = nullptr;
};

struct GatewayOptions {
  std::string audience;  // access tokens must carry this audience (the gateway's resource id)
  std::string issuer;    // the authorization server named in the RFC 9728 metadata
  bool tls = false;      // for the resource_metadata URL built from the Host header
  std::vector<std::string> allowed_origins;  // besides loopback origins
  size_t max_message_bytes = 1 << 20;
  // Answer a tools/call only once its outcome is durable too (the receipt then carries the
  // outcome's inclusion proof). Off: the decision is durable before forwarding, the outcome is
  // queued for the ledger before the answer leaves, and its event id is in the receipt.
  bool await_outcome = false;
  // Without await_outcome, an answered call's outcome is queued for the ledger right after the
  // next decision (so it rides in that commit or the one after it, off the next call's wait), or
  // this long after it was answered when no call follows (mcp/trailing_outcomes.h). 0: queued as
  // the answer leaves.
  std::chrono::microseconds outcome_linger{5000};
  // An MCP session unused this long (no request, no open GET stream, no call in flight) ends:
  // later requests on it get 404 and the client initializes again.
  std::chrono::milliseconds session_idle_timeout{3'600'000};
  // initialize is refused (HTTP 429) beyond this many live MCP sessions per Custody session.
  size_t max_sessions_per_custody_session = 64;
  // Start() waits at most this long for every upstream's own handshake.
  std::chrono::milliseconds upstream_ready_wait{5000};
  UpstreamOptions upstream;  // timeouts, backoff, log (shared by every server)
  // A request an `@approval` policy holds, from a client that cannot be sent to the approval
  // page (no URL-mode elicitation), waits this long for a person to decide, with progress
  // notifications, and goes on if approved ([approval] hold_ms). 0: refused at once, naming the
  // approval (docs/MCP.md, "Approvals").
  std::chrono::milliseconds approval_hold{0};
  // Set: the gateway hears of approval changes through it (OnApprovalChanged).
  std::shared_ptr<ApprovalChanges> approval_changes;
  // Makes each server's upstream; empty: MakeUpstream (stdio or Streamable HTTP). Tests inject
  // an in-process fake here.
  std::function<Result<std::unique_ptr<Upstream>>(UpstreamConfig, UpstreamOptions)> make_upstream;
};

// On the aggregate endpoint /mcp, tool names are "<server>__<tool>".
inline constexpr std::string_view kToolSeparator = "__";

class Gateway {
 public:
  // InvalidArgument when a server's configuration names no usable transport.
  static Result<std::unique_ptr<Gateway>> Create(std::vector<UpstreamConfig> servers,
                                                 identity::TokenService& tokens,
                                                 attribution::AttributionService& attribution,
                                                 ToolPinStore& pins, EventSink events,
                                                 const Clock& clock, Random& random,
                                                 GatewayOptions options);
  ~Gateway();  // Stop()

  void Start();  // starts every upstream; waits (upstream_ready_wait) for their handshakes
  void Stop();

  // /mcp and /mcp/{server} (POST, GET, DELETE), /.well-known/oauth-protected-resource[/mcp
  // [/{server}]], and the admin routes GET /v1/mcp/tools, POST /v1/mcp/tools/approve.
  Status AddRoutes(http::Router& router, const http::AuthRequirement& read_auth);

  // Approves a changed tool definition (recorded in the ledger as tool.approve).
  Status Approve(const std::string& server, const std::string& tool, const std::string& hash,
                 const std::string& by);

  size_t session_count() const;

  // An approval changed state (AttributionService's ApprovalOptions::on_changed): the requests
  // held for it look again at once, and the clients sent to its page by a URL elicitation are
  // told it is complete (notifications/elicitation/complete on their GET stream). Never blocks.
  void OnApprovalChanged(const store::ApprovalRow& row);

 private:
  Gateway(identity::TokenService& tokens, attribution::AttributionService& attribution,
          ToolPinStore& pins, EventSink events, const Clock& clock, Random& random,
          GatewayOptions options);
  // The gateway's parts, one file each (docs/ARCHITECTURE.md, "MCP gateway"):
  //   admission.cc         protocol versions, Origin allow-list, metadata URL (pure functions)
  //   session_registry.cc  MCP sessions, their streams, idle expiry, calls in flight
  //   tool_catalog.cc      tool, resource and prompt definitions pinned, changes recorded,
  //   approvals front_end.cc         the HTTP methods: admission, initialize, dispatch, GET, DELETE
  //   modern_front_end.cc  2026-07-28 requests: checks, stateless dispatch, server/discover
  //   tools_list.cc        tools/list, filtered to what policy could allow
  //   call_pipeline.cc     tools/call: pin check, Authorize, forward, Complete, answer
  //   held_calls.cc        requests an @approval policy holds: elicitation, hold or refusal
  //   relaying.cc          the server's requests and log messages to the client, and back
  //   subscribing.cc       resource subscriptions, 2026-07-28 listen streams, list changes
  //   aggregate.cc         resources and prompts of every server on /mcp
  //   gateway.cc           composition, upstream notifications, the containment listener
  //   admin_routes.cc      routes, RFC 9728 metadata, pin administration (tools, resources,
  //   prompts)
  struct Server;
  struct Call;      // one tools/call in flight
  struct Caller;    // the verified token behind a request
  struct Admitted;  // a request that passed the transport and auth checks

  // --- front_end.cc
  // Origin, size and bearer token; answers and returns false on refusal.
  bool Admit(http::Request& req, http::Responder& respond, Admitted* out);
  void HandlePost(http::Request& req, http::Responder respond);
  void HandleGet(http::Request& req, http::Responder respond);
  void HandleDelete(http::Request& req, http::Responder respond);
  // The server named by the route (nullptr for the aggregate endpoint); false after answering
  // 404.
  bool ResolveServer(http::Request& req, http::Responder& respond, Server** server);
  void HandleInitialize(Server* server, const Caller& caller, const boost::json::value& id,
                        const boost::json::object& params, http::Responder respond);
  // What initialize and server/discover tell a client of the endpoint (`server`, or nullptr for
  // /mcp): its capabilities, the gateway's serverInfo, instructions.
  boost::json::object OfferedCapabilities(Server* server);
  static boost::json::object ServerInfo(Server* server);
  static std::string Instructions(Server* server);
  // A request, past admission and its era's checks: to its method's handler (-32601 for a
  // method the gateway does not pass).
  void Dispatch(Server* server, const Caller& caller, const std::string& method,
                const boost::json::value& id, boost::json::object params, http::Responder respond);
  // tools/call on the aggregate endpoint: "<server>__<tool>", the longest server name wins.
  void RouteToolsCall(const Caller& caller, boost::json::value id, boost::json::object params,
                      http::Responder respond);
  // completion/complete and logging/setLevel: forwarded to the route's server as they are (on
  // /mcp: -32601), answered with its result or error. PassThroughCapability names the server
  // capability each needs (advertised at initialize when the server declared it); null for a
  // method that does not pass through.
  static bool IsPassThrough(std::string_view method);
  static const char* PassThroughCapability(std::string_view method);
  void PassThrough(Server* server, const std::string& method, boost::json::value id,
                   boost::json::object params, http::Responder respond);
  // The server of an aggregate tool name (the longest server-name prefix), or nullptr.
  Server* ServerOfAggregateTool(std::string_view name);
  // A POST in an MCP session that containment ended: a tools/call, resources/read or prompts/get
  // is decided (refused, custody:session_revoked) and recorded with its receipt, as the native
  // API records it, then answered `http_status` (404 for an MCP session, 401 for a stateless
  // request) with `why`; anything else is answered so at once.
  void HandleContainedPost(Server* server, const Caller& caller, const Message& msg,
                           const std::string& why, int http_status, http::Responder respond);
  http::Response Unauthorized(const http::Request& req, const std::string& server,
                              const std::string& why) const;
  // The scopes of /mcp/{server} ("" for /mcp): its RFC 9728 scopes_supported, its 401's scope.
  std::vector<std::string> EndpointScopes(const std::string& server) const;

  // --- modern_front_end.cc
  // A 2026-07-28 request (modern.h): the validation ladder, then stateless dispatch with the
  // request's own client facts; results made modern (ModernBody); server/discover here.
  void HandleModernPost(const http::Request& req, const Admitted& in, const Message& msg,
                        http::Responder respond);
  // The MCP session key of a call for the session registry and the relay: the MCP session id,
  // or for a stateless request a key of its own ("stateless:<n>").
  std::string CallScope(const Caller& caller);

  // --- aggregate.cc
  // resources/list, resources/templates/list and prompts/list on /mcp: every server's (all
  // pages), filtered per caller, named "custody://<server>/<uri>" and "<server>__<prompt>".
  void HandleAggregateList(const Caller& caller, const std::string& method, boost::json::value id,
                           http::Responder respond);
  // resources/read and prompts/get on /mcp: routed by that name to the server's handler.
  void RouteServerItem(const Caller& caller, const ServerItemMethod& m, const std::string& method,
                       boost::json::value id, boost::json::object params, http::Responder respond);

  // --- subscribing.cc
  // resources/subscribe and unsubscribe of an MCP session: the URI made canonical (-32602 if it
  // is not one), a subscription only to what the caller could read, the upstream subscribed for
  // a URI's first subscriber and unsubscribed after its last (the others answered here).
  void HandleResourceSubscription(Server& server, const Caller& caller, const std::string& method,
                                  boost::json::value id, boost::json::object params,
                                  http::Responder respond);
  // 2026-07-28 subscriptions/listen: an SSE stream acknowledging what it will carry, then the
  // list changes and resource updates asked for, each tagged with the request's id.
  void HandleListen(Server* server, const Caller& caller, const boost::json::value& id,
                    const boost::json::object& params, http::Responder respond);
  // To the listeners of `server` that asked for `what` ("tools", "prompts", "resources").
  void SendToListeners(const std::string& server, const std::string& what,
                       const boost::json::object& message);
  // notifications/resources/updated: to the URI's subscribers, sessions and listeners.
  void OnResourceUpdated(Server& server, const boost::json::object& message);
  // A listener gone: forgotten, and the URIs only it held unsubscribed upstream.
  void EndListener(const std::string& key);
  // (server, uri) pairs with no subscriber left: unsubscribed upstream.
  void UnsubscribeUpstream(const std::vector<std::pair<std::string, std::string>>& left);

  // --- tools_list.cc
  // Lists one upstream's tools (every page when `all_pages`), pins them, and keeps those the
  // policy could allow `session` to call. `done` gets the (filtered) tools/list result.
  void ListVisible(Server& server, const identity::Session& session, boost::json::value cursor,
                   bool all_pages, std::function<void(Result<boost::json::object>)> done);
  void HandleToolsList(Server* server, const Caller& caller, boost::json::value id,
                       boost::json::object params, http::Responder respond);

  // --- call_pipeline.cc
  // What a decision records of the caller's client (context.caller): its MCP session, or for a
  // 2026-07-28 request its protocol version and clientInfo.
  static std::string CallerContext(const Caller& caller);
  void HandleToolsCall(Server& server, const Caller& caller, boost::json::value id,
                       boost::json::object params, http::Responder respond);
  // The tool's pin checked (`tool`: as the catalog has it, nullopt if unknown), then Authorize;
  // an allowed call goes on to ForwardCall.
  void AuthorizeCall(std::shared_ptr<Call> call, std::optional<ToolCatalog::Tool> tool);
  // A request to decide and forward, not yet decided.
  static std::shared_ptr<Call> NewCall(Server& server, const Caller& caller, boost::json::value id,
                                       std::string method, boost::json::object params,
                                       http::Responder respond);
  // Authorize; a refusal is answered (-32001 with the decision's data), an allowed call goes on
  // to ForwardCall.
  void DecideAndForward(std::shared_ptr<Call> call, attribution::AuthorizeRequest request);

  // A refusal of `call` by decision `r` (-32001 with the decision's data; a step-up 403 for a
  // scope refusal).
  http::Response DenialOf(const Call& call, const attribution::AuthorizeResult& r) const;

  // --- held_calls.cc
  // `r` (of `request`) asks for an approval: a client that declared URL-mode elicitation gets
  // -32042 pointing at the approval page; otherwise, with approval_hold, the call is held until
  // the approval is decided (or `deadline`, unset: approval_hold from now); otherwise refused,
  // naming the approval. `request` is kept only for a hold (nullopt without approval_hold).
  void OnApprovalRequired(std::shared_ptr<Call> call,
                          std::optional<attribution::AuthorizeRequest> request,
                          attribution::AuthorizeResult r,
                          std::optional<std::chrono::steady_clock::time_point> deadline);
  // Whether the caller of `call` declared URL-mode elicitation (at initialize, or 2026-07-28:
  // in the request).
  bool DeclaredUrlElicitation(const Call& call) const;
  struct Held;  // one held call (held_calls.cc)
  // A poll of held call `h` (ApprovalHolds): false once it is answered or authorized again.
  bool PollHeld(const std::shared_ptr<Held>& h, ApprovalHolds::Why why);
  // Approval `row` of held call `h` is no longer pending: approved, authorized again (and
  // forwarded if allowed); otherwise refused, naming it.
  void ResolveHeld(const std::shared_ptr<Held>& h, const store::ApprovalRow& row);

  // --- resources_prompts.cc
  // resources/read (Cedar action read_resource on Resource::"<server>/<uri>") and prompts/get
  // (get_prompt on Prompt::"<server>/<name>"), as `m` describes them: decided, recorded and
  // forwarded as a tools/call is, a changed definition refused until approved (as a tool's).
  void HandleServerItem(Server& server, const Caller& caller, const ServerItemMethod& m,
                        const std::string& method, boost::json::value id,
                        boost::json::object params, http::Responder respond);
  // Whether the caller's policy could allow it to read `uri` (canonical) of `server`.
  bool MayRead(Server& server, const Caller& caller, const std::string& uri);
  // resources/list, resources/templates/list, prompts/list: the server's page, its items
  // filtered to those the policy could allow the caller (WouldAllow, as for tools/list).
  void HandleFilteredList(Server& server, const Caller& caller, const std::string& method,
                          boost::json::value id, boost::json::object params,
                          http::Responder respond);
  static bool IsFilteredList(std::string_view method);
  // The same for one page from `cursor`, for `session`: `done` gets the upstream's answer object
  // ({"result"} filtered, or its own {"error"}), or Unavailable.
  void ListFiltered(Server& server, const identity::Session& session, const std::string& method,
                    boost::json::value cursor,
                    std::function<void(Result<boost::json::object>)> done);
  void ForwardCall(std::shared_ptr<Call> call);
  void FinishCall(std::shared_ptr<Call> call, Result<boost::json::object> upstream);
  // Sends the final JSON-RPC message of a call: as the HTTP response, or on its SSE stream.
  void Reply(Call& call, int http_status, std::string body);

  // --- relaying.cc
  // A request from `server` to a client (sampling, elicitation, roots) during one of our calls
  // (`related`: the upstream id whose stream carried it, 0 if unknown): relayed on that call's
  // stream under an id of the gateway's, if the call's client declared the capability it
  // needs; otherwise answered upstream with an error. Recorded with the call's outcome.
  void OnUpstreamRequest(Server& server, const boost::json::object& request, int64_t related);
  // A 2026-07-28 server's round of requests is complete: a 2026-07-28 caller is asked them all
  // in one input_required result (OnUpstreamRequest leaves that to here for such a server).
  void OnUpstreamRequestsEnd(Server& server, int64_t related);
  // A JSON-RPC response POSTed by a client: its answer to a relayed request, passed to the
  // server that asked (202), or 400 when no such request waits for this MCP session's answer.
  void HandleClientResponse(const Caller& caller, const Message& msg, http::Responder respond);
  // The call ended: its relayed requests still unanswered are recorded as such, cancelled
  // toward the client and answered upstream with an error.
  void EndRelay(Call& call);
  // A 2026-07-28 call's waiting requests asked in an input_required result (the call parks
  // until the client retries with the answers and the result's requestState).
  void AskModern(Call& call);
  // The client capabilities a 2026-07-28 upstream is told of for `call`: those of its caller
  // that the gateway relays (sampling, elicitation form/url, roots).
  boost::json::object RelayedCapabilities(const Call& call) const;
  // A 2026-07-28 retry (params.requestState): the parked call it names takes this request's
  // answer channel, its inputResponses go to the server, and what is still unanswered is asked
  // again. -32602 for a state not issued for this session and method, used, or ended.
  void HandleRetry(const Caller& caller, const Message& msg, const boost::json::object& params,
                   http::Responder respond);

  // --- gateway.cc
  // Upstream notifications: progress goes to the call whose token it carries, log messages
  // (notifications/message) to the call they came during (as the relay finds it; dropped when
  // it cannot tell), tools/list_changed to the GET streams of the sessions that see that
  // server.
  void OnUpstreamNotification(Server& server, const boost::json::object& message, int64_t related);
  // Whether log message `message` goes to `call`'s client (a 2026-07-28 request's logLevel).
  static bool LogWanted(const Call& call, const boost::json::object& message);
  // Revoked Custody sessions: their MCP sessions end (404 from now on), their GET streams
  // close, and their forwarded calls are cancelled upstream.
  void OnRevoked(const std::vector<std::string>& sids);

  identity::TokenService& tokens_;
  attribution::AttributionService& attribution_;
  const GatewayOptions options_;
  Random& random_;
  const Clock& clock_;  // the token service's: a held Transaction Token's age (call_pipeline.cc)
  ToolCatalog catalog_;
  std::unique_ptr<SessionRegistry> sessions_;
  std::unique_ptr<Relay> relay_;
  std::unique_ptr<Subscriptions> subs_;
  std::atomic<uint64_t> next_stateless_{1};
  int revocation_listener_ = 0;

  std::map<std::string, std::unique_ptr<Server>> servers_;  // fixed after construction

  // Approvals a client was sent to by a URL elicitation -> the MCP sessions sent there (bounded,
  // oldest forgotten first: approval ids are UUIDv7), for notifications/elicitation/complete.
  mutable Mutex elicited_mu_;
  std::map<std::string, std::set<std::string>> elicited_ GUARDED_BY(elicited_mu_);
  // Answered calls' outcomes waiting for the next decision (null with await_outcome or no
  // outcome_linger).
  std::unique_ptr<TrailingOutcomes> trailing_;
  // Held calls' waits (null without approval_hold). Last: stopped and destroyed first.
  std::unique_ptr<ApprovalHolds> holds_;
};

}  // namespace custody::mcp

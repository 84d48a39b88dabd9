// The gateway's private types, shared by the files that implement it (gateway.h lists them).
// Not for use outside src/mcp/.
#pragma once

#include <boost/json.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "attribution/attribution_service.h"
#include "common/mutex.h"
#include "identity/token_service.h"
#include "identity/txn_token.h"
#include "mcp/gateway.h"
#include "mcp/jsonrpc.h"
#include "mcp/modern.h"
#include "mcp/relay.h"
#include "mcp/session_registry.h"
#include "mcp/sse_sink.h"

namespace custody::mcp {

namespace json = boost::json;

struct Gateway::Server {
  std::string name;
  std::unique_ptr<Upstream> upstream;
  // identity = "txn-token": each enforced call forwarded carries a Transaction Token minted
  // for it, with this audience (UpstreamConfig::identity, txn_audience).
  bool txn_tokens = false;
  std::string txn_audience;
  // A call whose progress the client asked for: the upstream sees a token unique to the call,
  // the client its own token back, on the call's stream.
  struct Progress {
    json::value client_token;
    std::weak_ptr<Call> call;
  };
  Mutex mu;
  int64_t next_progress GUARDED_BY(mu) = 1;
  std::map<std::string, Progress> progress GUARDED_BY(mu);  // upstream token -> call
};

struct Gateway::Caller {
  std::string token;
  bool accepts_sse = false;  // the client's Accept lists text/event-stream
  identity::VerifiedAccess access;
  std::string session_id;  // Mcp-Session-Id, when sent
  // A 2026-07-28 request: stateless (no session_id), with what it says of its client.
  std::optional<ModernRequest> modern;
  // The RFC 9728 metadata URL of the endpoint asked, for a step-up challenge (a 403).
  std::string resource_metadata;
};

struct Gateway::Admitted {
  Server* server = nullptr;  // nullptr on the aggregate endpoint
  Caller caller;
  // Set for a POST in an MCP session that containment ended (its token's session is revoked;
  // `caller.access` holds that session's facts): what it attempts is recorded as a refusal
  // before it is answered 404 with this reason (HandleContainedPost).
  std::string contained;
  // Set (why) for a POST without an MCP session whose token's Custody session is revoked: a
  // 2026-07-28 request's attempt is recorded the same way, then answered 401; any other such
  // request is answered 401 at once.
  std::string revoked;
};

// The authorization of `action` on `target` for an MCP request with `params`: its arguments
// (params.arguments, when an object) and traceparent (params._meta.traceparent), the caller's
// token and what the request says of its client (Gateway::CallerContext), `via` mcp.
attribution::AuthorizeRequest CallRequest(const std::string& action, attribution::Target target,
                                          const json::object& params, const std::string& token,
                                          const std::string& caller_context);
// The same for a tools/call of `tool` (the upstream's name) on `server`, with the pinned
// definition hash (when known) as a resource attribute.
attribution::AuthorizeRequest ToolCallRequest(const std::string& server, const std::string& tool,
                                              const json::object& params, const std::string& token,
                                              const std::string& caller_context,
                                              const std::string& definition_hash);
// An MCP server's resource (type "Resource", the URI as id) or prompt ("Prompt", its name).
attribution::Target ServerItem(const std::string& server, std::string_view type, std::string id);
// resources/read and prompts/get: the member of params naming what they act on, its entity
// type, the Cedar action, and whether params.arguments is taken.
struct ServerItemMethod {
  std::string_view member;  // "uri" | "name"
  std::string_view noun;    // for errors: "a resource URI" | "a prompt name"
  std::string_view type;    // "Resource" | "Prompt"
  std::string_view action;  // "read_resource" | "get_prompt"
  bool takes_arguments = false;
};
// Null for any other method.
const ServerItemMethod* ServerItemMethodOf(std::string_view method);
// The authorization of `m` on `item` (a URI or a prompt name) of `server`.
attribution::AuthorizeRequest ServerItemRequest(const ServerItemMethod& m,
                                                const std::string& server, std::string item,
                                                const json::object& params,
                                                const std::string& token,
                                                const std::string& caller_context);
// Whether params.arguments is absent, null or an object (what tools/call and prompts/get
// accept); a null one is removed.
bool TidyArguments(json::object& params);
// The item a resources/read or prompts/get acts on, checked and made canonical in `params`:
// a resource URI normalized (NormalizeUri: policy decides on the form the server is sent), a
// prompt's arguments strings. InvalidArgument, with what is wrong, otherwise.
Result<std::string> CanonicalItem(const ServerItemMethod& m, json::object& params);
// A resource URI in the form policy decides on and the server is sent (NormalizeUri).
Result<std::string> CanonicalUri(const json::object& params);

// The client capabilities an initialize request declares, as SessionRegistry keeps them.
std::set<std::string, std::less<>> ClientCapabilities(const json::object& initialize_params);

// "sha256:<hex>" of the JCS form of `v` (outcomes and relayed answers are recorded so).
std::string JsonDigest(const json::value& v);

// A refusal's JSON-RPC error data: the action, reasons, receipt, ledger index, policy hash and
// the decision's traceparent (a client carries its span on from a denial too).
json::object DecisionData(const attribution::AuthorizeResult& r);

// One decided request in flight: a tools/call, resources/read or prompts/get. Once forwarded it
// is a RelayTarget: what its server sends the client meanwhile (progress, log messages,
// sampling and elicitation requests) goes on the call's own response, which becomes an SSE
// stream the first time something does.
struct Gateway::Call : RelayTarget {
  Server* server = nullptr;
  Caller caller;
  json::value id;
  std::string method = "tools/call";  // as forwarded upstream
  json::object params;
  std::string tool;    // tools/call: the upstream's name for it
  std::string hash;    // the pinned definition hash (a tool's, resource's or prompt's), if any
  std::string action;  // the Cedar action decided (call_tool, read_resource, get_prompt)
  std::string scope;   // the scope that covers what it acts on (attribution::Target::Key)
  // Its Transaction Tokens (identity = "txn-token"): one per send upstream; null: none.
  std::shared_ptr<identity::TxnTokenSeries> txn_tokens;
  http::Responder respond;
  attribution::AuthorizeResult decision;
  std::chrono::steady_clock::time_point forwarded;
  std::string progress_token;  // the token the upstream sees
  CallKey key;                 // in the session registry
  uint64_t relay_call = 0;     // in the relay
  // Runs if the client closes the call's SSE stream before it ends (set for 2026-07-28
  // callers, for whom that is the cancellation; before the call is forwarded).
  std::function<void()> on_stream_gone;

  // The call's SSE stream, opened now if need be; null when the call has been answered (or is
  // parked) or its client takes no event stream.
  std::shared_ptr<SseSink> OpenStream();
  bool Deliver(const std::string& message) override;
  // Sends the final JSON-RPC message: as the HTTP response, or last on the SSE stream. Its id
  // becomes the retry's when the call was rebound. Dropped once answered, or while parked.
  void Answer(int http_status, std::string body);
  // 2026-07-28: answers the client's request with `result` (an input_required result) while
  // the call goes on upstream; false when it is answered or parked already.
  bool Park(json::object result);
  // The client's retry of a parked call: its answer goes to `respond`, under `id`. False when
  // the call is not parked.
  bool Rebind(json::value id, http::Responder respond);
  void Exchanged(attribution::RelayedExchange x);
  std::vector<attribution::RelayedExchange> TakeExchanges();

 private:
  // Sends `body` last on `sink`, or (no stream) as the HTTP response through `to`.
  void SendLast(std::shared_ptr<SseSink> sink, http::Responder to, int http_status,
                std::string body);

  enum class Phase { kOpen, kParked, kDone };
  Mutex mu_;
  Phase phase_ GUARDED_BY(mu_) = Phase::kOpen;
  json::value reply_id_ GUARDED_BY(mu_);  // a retry's id, once rebound (null before)
  std::shared_ptr<SseSink> sse_ GUARDED_BY(mu_);
  std::vector<attribution::RelayedExchange> exchanges_ GUARDED_BY(mu_);
};

// The upstream's answer to a request passed through, under the client's `id`: its result or
// error as they are, or -32002 when it could not be reached.
http::Response UpstreamAnswer(const json::value& id, const Result<json::object>& r);

// A JSON-RPC message as the HTTP response.
inline http::Response RpcResponse(int status, std::string body) {
  return http::Response::Json(status, std::move(body));
}

}  // namespace custody::mcp

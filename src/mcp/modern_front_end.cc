// 2026-07-28 requests on the gateway's endpoints (modern.h): checked, dispatched statelessly
// with what each says of its client, answered in the revision's result shape. Upstreams still
// speak 2025-era MCP: the request's own _meta keys are not passed on, and what cannot be
// bridged (the server asking the client something mid-call) is refused upstream and recorded.
#include <boost/json.hpp>

#include "mcp/gateway.h"
#include "mcp/gateway_internal.h"

namespace custody::mcp {

using http::Responder;
using http::Response;

std::string Gateway::CallScope(const Caller& caller) {
  if (!caller.modern) return caller.session_id;
  return std::string(kStatelessPrefix) + std::to_string(next_stateless_++);
}

void Gateway::HandleModernPost(const http::Request& req, const Admitted& in, const Message& msg,
                               Responder respond) {
  ModernRequest modern;
  if (auto refusal = CheckModern(req, msg, &modern)) {
    respond(RpcResponse(refusal->http_status,
                        ErrorText(msg.id, refusal->code, refusal->message, refusal->data)));
    return;
  }
  if (msg.kind != MessageKind::kRequest) {  // nothing a 2026-07-28 client notifies needs us
    respond(Response::Text(202, ""));
    return;
  }
  Caller caller = in.caller;
  caller.session_id.clear();  // stateless: an Mcp-Session-Id, if sent, means nothing here
  caller.modern = std::move(modern);
  // Every answer in the revision's shape (the SSE path shapes its last message in Call).
  const bool cacheable = CacheableMethod(msg.method);
  Responder out = [respond = std::move(respond), cacheable,
                   info = ServerInfo(in.server)](Response r) {
    if (!r.sse) r.body = ModernBody(std::move(r.body), cacheable, info, &r.status);
    respond(std::move(r));
  };
  // A revoked token's attempt is recorded as a refusal, then answered 401 (an Mcp-Session-Id
  // sent along, which a stateless request does not need, changes nothing).
  if (!in.revoked.empty() || !in.contained.empty()) {
    // A 401 names where to get a token (RFC 9728), as every other 401 of the gateway does.
    std::string challenge(Unauthorized(req, in.server ? in.server->name : "", "")
                              .headers.Get("www-authenticate")
                              .value_or(""));
    HandleContainedPost(in.server, caller, msg, in.revoked.empty() ? in.contained : in.revoked, 401,
                        [out = std::move(out), challenge](Response r) {
                          r.headers.Set("www-authenticate", challenge);
                          out(std::move(r));
                        });
    return;
  }
  if (!ServedInModern(msg.method)) {  // the revision's answer to an unknown method: 404
    out(RpcResponse(
        404, ErrorText(msg.id, kMethodNotFound,
                       RemovedInModern(msg.method)
                           ? msg.method + " is not part of MCP " + std::string(kModernVersion)
                           : "method not found: " + msg.method)));
    return;
  }
  if (msg.method == "subscriptions/listen") {
    HandleListen(in.server, caller, msg.id, msg.params(), std::move(out));
    return;
  }
  if (msg.method == "server/discover") {
    json::object result{{"supportedVersions", SupportedVersions()},
                        {"capabilities", OfferedCapabilities(in.server)},
                        {"instructions", Instructions(in.server)}};
    out(RpcResponse(200, ResultText(msg.id, std::move(result))));
    return;
  }
  // The request's own protocol fields describe this client to the gateway; the upstream, a
  // 2025-era session shared by every client, is not told them.
  json::object params = msg.params();
  if (ServerItemMethodOf(msg.method) || msg.method == "tools/call") {
    if (params.contains("requestState")) {
      HandleRetry(caller, msg, params, std::move(out));
      return;
    }
    params.erase("inputResponses");  // answers with no state to answer: nothing asked them
  }
  if (auto m = params.find("_meta"); m != params.end() && m->value().is_object()) {
    json::object& meta = m->value().get_object();
    for (auto it = meta.begin(); it != meta.end();) {
      it = it->key().starts_with("io.modelcontextprotocol/") ? meta.erase(it) : it + 1;
    }
    if (meta.empty()) params.erase(m);
  }
  Dispatch(in.server, caller, msg.method, msg.id, std::move(params), std::move(out));
}

}  // namespace custody::mcp

// The gateway's HTTP front end: admission (Origin, size, bearer token), initialize, the
// JSON-RPC dispatch of a POST, the GET stream, and DELETE.
#include <boost/json.hpp>

#include "common/encoding.h"
#include "common/json_array.h"
#include "mcp/gateway.h"
#include "mcp/gateway_internal.h"

namespace custody::mcp {

using attribution::AuthorizeRequest;
using attribution::AuthorizeResult;
using http::Request;
using http::Responder;
using http::Response;

namespace {

std::string Bearer(const Request& req) {
  return std::string(http::BearerToken(req.headers).value_or(""));
}

// The answer to a request the session registry refused.
Response SessionRefusal(const Status& s, const json::value& id) {
  if (s.code() == StatusCode::kPermissionDenied) {
    return RpcResponse(403, ErrorText(id, kDenied, s.message()));
  }
  return RpcResponse(404, ErrorText(id, kInvalidRequest, s.message()));
}

}  // namespace

Response Gateway::Unauthorized(const Request& req, const std::string& server,
                               const std::string& why) const {
  Response r = http::ErrorResponse(UnauthenticatedError(why), req.request_id);
  // MCP 2025-11-25: a 401 SHOULD name the scopes to ask for; clients use them first.
  r.headers.Set("www-authenticate",
                UnauthorizedChallenge(ResourceMetadataUrl(req, options_.tls, server),
                                      EndpointScopes(server), !Bearer(req).empty()));
  return r;
}

std::vector<std::string> Gateway::EndpointScopes(const std::string& server) const {
  std::vector<std::string> names;
  if (server.empty()) {
    for (const auto& entry : servers_) names.push_back(entry.first);
  }
  return ScopesSupported(server, names);
}

bool Gateway::ResolveServer(Request& req, Responder& respond, Server** server) {
  *server = nullptr;
  auto p = req.params.find("server");
  if (p == req.params.end()) return true;  // the aggregate endpoint
  auto sit = servers_.find(p->second);
  if (sit == servers_.end()) {
    respond(http::ErrorResponse(
        NotFoundError("no MCP server named \"" + p->second + "\" is configured"), req.request_id));
    return false;
  }
  *server = sit->second.get();
  return true;
}

// The transport checks every method shares: Origin, then the bearer token. On a refusal the
// response is sent and false returned.
bool Gateway::Admit(Request& req, Responder& respond, Admitted* out) {
  if (!ResolveServer(req, respond, &out->server)) return false;
  const std::string scope = out->server ? out->server->name : "";
  if (auto origin = req.headers.Get("origin");
      origin && !OriginAllowed(*origin, options_.allowed_origins)) {
    respond(RpcResponse(403, ErrorText(nullptr, kInvalidRequest, "Origin not allowed")));
    return false;
  }
  if (req.body.size() > options_.max_message_bytes) {
    respond(RpcResponse(413, ErrorText(nullptr, kInvalidRequest,
                                       "message larger than " +
                                           std::to_string(options_.max_message_bytes) + " bytes")));
    return false;
  }
  Caller& caller = out->caller;
  caller.token = Bearer(req);
  caller.accepts_sse =
      req.headers.Get("accept").value_or("").find("text/event-stream") != std::string_view::npos;
  if (caller.token.empty()) {
    respond(Unauthorized(req, scope, "a bearer session token is required"));
    return false;
  }
  auto session_header = req.headers.Get("mcp-session-id");
  if (session_header) caller.session_id = std::string(*session_header);
  identity::VerifiedAccess revoked;
  auto access = tokens_.VerifyAccessToken(caller.token, options_.audience, &revoked);
  if (!access.ok()) {
    if (!revoked.session.sid.empty() && !session_header && req.method == "POST") {
      // Possibly a stateless (2026-07-28) attempt, which is evidence too: HandlePost decides.
      out->revoked = access.status().message();
      caller.access = std::move(revoked);
      return true;
    }
    if (!revoked.session.sid.empty() && session_header) {
      // The session's own token after containment: its MCP session is gone.
      if (auto why = sessions_->EndedWithRevokedSession(caller.session_id, revoked.session.sid)) {
        if (req.method == "POST") {  // the attempt is evidence: recorded, then refused
          out->contained = std::move(*why);
          caller.access = std::move(revoked);
          return true;
        }
        respond(RpcResponse(404, ErrorText(nullptr, kDenied, *why)));
        return false;
      }
    }
    respond(Unauthorized(req, scope, access.status().message()));
    return false;
  }
  caller.access = std::move(*access);
  caller.resource_metadata = ResourceMetadataUrl(req, options_.tls, scope);
  return true;
}

void Gateway::HandlePost(Request& req, Responder respond) {
  Admitted in;
  if (!Admit(req, respond, &in)) return;
  Server* server = in.server;
  Caller& caller = in.caller;
  Message msg;
  RpcError perr;
  json::value id;
  if (!ParseMessage(req.body, &msg, &perr, &id)) {
    respond(RpcResponse(400, ErrorText(id, perr.code, perr.message)));
    return;
  }
  if (ClaimsModern(msg)) {
    HandleModernPost(req, in, msg, std::move(respond));
    return;
  }
  if (!in.revoked.empty()) {
    respond(Unauthorized(req, server ? server->name : "", in.revoked));
    return;
  }
  if (auto refusal = CheckLegacyHeader(req)) {
    respond(RpcResponse(refusal->http_status,
                        ErrorText(msg.id, refusal->code, refusal->message, refusal->data)));
    return;
  }
  if (auto pv = req.headers.Get("mcp-protocol-version"); pv && !ProtocolVersionSupported(*pv)) {
    respond(RpcResponse(400, ErrorText(msg.id, kInvalidRequest,
                                       "unsupported MCP-Protocol-Version " + std::string(*pv))));
    return;
  }
  // The 2026-07-28 routing headers, when sent, must name what the body does: the tool that is
  // logged must be the tool that runs.
  if (auto mh = req.headers.Get("mcp-method"); mh && *mh != msg.method) {
    respond(RpcResponse(400, ErrorText(msg.id, kInvalidRequest,
                                       "Mcp-Method header does not match the body's method")));
    return;
  }
  if (auto nh = req.headers.Get("mcp-name")) {
    std::string named = NameInBody(msg);
    if (named.empty()) named = StringField(msg.params(), "name");
    if (named.empty() || HeaderValue(*nh) != named) {
      respond(RpcResponse(
          400, ErrorText(msg.id, kInvalidRequest,
                         "Mcp-Name header does not match the body's " +
                             std::string(msg.method == "resources/read" ? "params.uri"
                                                                        : "params.name"))));
      return;
    }
  }
  const std::string scope = server ? server->name : "";
  if (!in.contained.empty()) {
    HandleContainedPost(server, caller, msg, in.contained, 404, std::move(respond));
    return;
  }

  if (msg.kind == MessageKind::kRequest && msg.method == "initialize") {
    HandleInitialize(server, caller, msg.id, msg.params(), std::move(respond));
    return;
  }
  if (caller.session_id.empty()) {
    respond(RpcResponse(400, ErrorText(msg.id, kInvalidRequest,
                                       "Mcp-Session-Id is required (send initialize first)")));
    return;
  }
  if (Status s = sessions_->Use(caller.session_id, scope, caller.access.session.sid); !s.ok()) {
    respond(SessionRefusal(s, msg.id));
    return;
  }
  if (msg.kind == MessageKind::kResponse) {
    HandleClientResponse(caller, msg, std::move(respond));
    return;
  }
  if (msg.kind != MessageKind::kRequest) {
    // A cancellation of a forwarded call goes upstream (under the upstream's id); other
    // notifications stop here (the upstream session is shared, so no client speaks for it).
    if (msg.method == "notifications/cancelled") {
      auto rid = msg.params().find("requestId");
      if (rid != msg.params().end()) {
        const std::string reason = "cancelled by the client";
        if (auto cancel =
                sessions_->CancelCall({caller.session_id, json::serialize(rid->value())}, reason)) {
          cancel->first->Cancel(cancel->second, reason);
        }
      }
    }
    respond(Response::Text(202, ""));
    return;
  }
  Dispatch(server, caller, msg.method, msg.id, msg.params(), std::move(respond));
}

void Gateway::Dispatch(Server* server, const Caller& caller, const std::string& method,
                       const json::value& id, json::object params, Responder respond) {
  if (method == "ping") {
    respond(RpcResponse(200, ResultText(id, json::object{})));
  } else if (method == "tools/list") {
    HandleToolsList(server, caller, id, std::move(params), std::move(respond));
  } else if (method == "tools/call") {
    if (server) {
      HandleToolsCall(*server, caller, id, std::move(params), std::move(respond));
    } else {
      RouteToolsCall(caller, id, std::move(params), std::move(respond));
    }
  } else if ((method == "resources/subscribe" || method == "resources/unsubscribe") && server) {
    HandleResourceSubscription(*server, caller, method, id, std::move(params), std::move(respond));
  } else if (IsPassThrough(method)) {
    PassThrough(server, method, id, std::move(params), std::move(respond));
  } else if (const ServerItemMethod* item = ServerItemMethodOf(method);
             item || IsFilteredList(method)) {
    if (!server && item) {
      RouteServerItem(caller, *item, method, id, std::move(params), std::move(respond));
    } else if (!server) {
      HandleAggregateList(caller, method, id, std::move(respond));
    } else if (item) {
      HandleServerItem(*server, caller, *item, method, id, std::move(params), std::move(respond));
    } else {
      HandleFilteredList(*server, caller, method, id, std::move(params), std::move(respond));
    }
  } else {
    respond(RpcResponse(
        200, ErrorText(id, kMethodNotFound,
                       "method not found: " + method + " (the Custody gateway does not pass it)")));
  }
}

bool Gateway::IsPassThrough(std::string_view method) {
  return PassThroughCapability(method) != nullptr;
}

const char* Gateway::PassThroughCapability(std::string_view method) {
  if (method == "completion/complete") return "completions";
  if (method == "logging/setLevel") return "logging";
  if (method == "resources/subscribe" || method == "resources/unsubscribe") return "resources";
  return nullptr;
}

void Gateway::PassThrough(Server* server, const std::string& method, json::value id,
                          json::object params, Responder respond) {
  if (!server) {
    respond(RpcResponse(200, ErrorText(id, kMethodNotFound,
                                       method + " is served on /mcp/{server} only: the aggregate "
                                                "endpoint cannot tell which server it is for")));
    return;
  }
  // Neither reads nor changes data: forwarded as they are and answered with the server's own
  // result or error, under the client's id.
  server->upstream->Call(method, std::move(params),
                         [id = std::move(id), respond = std::move(respond)](
                             Result<json::object> r) { respond(UpstreamAnswer(id, r)); });
}

http::Response UpstreamAnswer(const json::value& id, const Result<json::object>& r) {
  if (!r.ok()) {
    return RpcResponse(200, ErrorText(id, JsonRpcCodeFor(r.status().code()), r.status().message()));
  }
  json::object out{{"jsonrpc", "2.0"}, {"id", id}};
  if (auto e = r->find("error"); e != r->end()) {
    out["error"] = e->value();
  } else if (auto res = r->find("result"); res != r->end()) {
    out["result"] = res->value();
  } else {
    out["result"] = json::object{};
  }
  return RpcResponse(200, json::serialize(out));
}

void Gateway::HandleInitialize(Server* server, const Caller& caller, const json::value& id,
                               const json::object& params, Responder respond) {
  const std::string scope = server ? server->name : "";
  std::string requested;
  if (auto it = params.find("protocolVersion"); it != params.end() && it->value().is_string()) {
    requested = std::string(it->value().get_string());
  }
  std::string version = NegotiateProtocolVersion(requested);
  uint8_t raw[16];
  random_.Fill(raw);
  std::string session_id = HexEncode(std::span<const uint8_t>(raw, sizeof raw));
  Status opened = sessions_->Open(session_id, McpSession{scope,
                                                         caller.access.session.sid,
                                                         caller.access.session.agent,
                                                         version,
                                                         nullptr,
                                                         {},
                                                         ClientCapabilities(params)});
  if (!opened.ok()) {
    respond(RpcResponse(429, ErrorText(id, kDenied, opened.message())));
    return;
  }
  json::object result{{"protocolVersion", version},
                      {"capabilities", OfferedCapabilities(server)},
                      {"serverInfo", ServerInfo(server)},
                      {"instructions", Instructions(server)}};
  Response r = RpcResponse(200, ResultText(id, std::move(result)));
  r.headers.Set("mcp-session-id", session_id);
  respond(std::move(r));
}

json::object Gateway::OfferedCapabilities(Server* server) {
  json::object capabilities{{"tools", json::object{{"listChanged", true}}}};
  // What the gateway serves beyond tools is offered only where a server behind offers it: on
  // /mcp, resources and prompts of any (aggregate.cc; no subscriptions or list changes there).
  if (!server) {
    for (auto& [_, s] : servers_) {
      for (std::string_view cap : {"resources", "prompts"}) {
        if (s->upstream->HasCapability(cap)) capabilities[cap] = json::object{};
      }
    }
  } else {
    // With the flags the gateway honours where the server has them: subscriptions and list
    // changes are relayed (subscribing.cc).
    const Upstream& u = *server->upstream;
    for (std::string_view cap : {"completions", "logging", "resources", "prompts"}) {
      if (!u.HasCapability(cap)) continue;
      json::object flags;
      for (std::string_view flag : {"subscribe", "listChanged"}) {
        if (u.HasCapability(std::string(cap) + "." + std::string(flag))) flags[flag] = true;
      }
      capabilities[cap] = std::move(flags);
    }
  }
  return capabilities;
}

json::object Gateway::ServerInfo(Server* server) {
  return json::object{
      {"name", server ? "custody-gateway/" + server->name : std::string("custody-gateway")},
      {"version", "0.1.0"}};
}

std::string Gateway::Instructions(Server* server) {
  return std::string(server ? ""
                            : "Tools, prompts and resources of every server behind this gateway: "
                              "tools and prompts named <server>__<name>, resources "
                              "custody://<server>/<the server's URI>. ") +
         "Tool calls through this gateway are authorized by policy and recorded by Custody; "
         "results carry a receipt under _meta[\"dev.custody/receipt\"].";
}

Gateway::Server* Gateway::ServerOfAggregateTool(std::string_view name) {
  Server* target = nullptr;
  for (auto& [sname, s] : servers_) {
    std::string prefix = sname + std::string(kToolSeparator);
    if (name.size() > prefix.size() && name.starts_with(prefix) &&
        (!target || sname.size() > target->name.size())) {
      target = s.get();
    }
  }
  return target;
}

void Gateway::RouteToolsCall(const Caller& caller, json::value id, json::object params,
                             Responder respond) {
  auto n = params.find("name");
  std::string name = n != params.end() && n->value().is_string()
                         ? std::string(n->value().get_string())
                         : std::string();
  Server* target = ServerOfAggregateTool(name);
  if (!target) {
    respond(RpcResponse(
        200, ErrorText(id, kInvalidParams,
                       "unknown tool: " + name + " (tools on /mcp are named <server>__<tool>)")));
    return;
  }
  params["name"] = name.substr(target->name.size() + kToolSeparator.size());
  HandleToolsCall(*target, caller, std::move(id), std::move(params), std::move(respond));
}

void Gateway::HandleContainedPost(Server* server, const Caller& caller, const Message& msg,
                                  const std::string& why, int http_status, Responder respond) {
  // What the request would have done, as an action: a tools/call, resources/read or
  // prompts/get. Anything else is refused as before, unrecorded.
  std::optional<AuthorizeRequest> attempt;
  if (msg.kind == MessageKind::kRequest) {
    const json::object& params = msg.params();
    if (msg.method == "tools/call") {
      std::string tool = StringField(params, "name");
      if (!server && !tool.empty()) {
        server = ServerOfAggregateTool(tool);
        if (server) tool = tool.substr(server->name.size() + kToolSeparator.size());
      }
      if (server && !tool.empty()) {
        std::optional<ToolCatalog::Tool> known = catalog_.Find(server->name, tool);
        attempt = ToolCallRequest(server->name, tool, params, caller.token, CallerContext(caller),
                                  known ? known->hash : "");
      }
    } else if (const ServerItemMethod* m = ServerItemMethodOf(msg.method); m && server) {
      json::object canonical = params;
      if (auto item = CanonicalItem(*m, canonical); item.ok()) {
        attempt = ServerItemRequest(*m, server->name, std::move(*item), canonical, caller.token,
                                    CallerContext(caller));
      }
    }
  }
  if (!attempt) {
    respond(RpcResponse(http_status, ErrorText(msg.id, kDenied, why)));
    return;
  }
  // The revoked session is refused before policy (custody:session_revoked), and the refusal is
  // recorded with its receipt, as the native API records it.
  attribution_.Authorize(std::move(*attempt), [id = msg.id, why, http_status,
                                               respond =
                                                   std::move(respond)](Result<AuthorizeResult> r) {
    if (!r.ok()) {
      respond(RpcResponse(http_status, ErrorText(id, kDenied, why)));
      return;
    }
    respond(RpcResponse(http_status, ErrorText(id, kDenied,
                                               why + "; the attempt is recorded at ledger index " +
                                                   std::to_string(r->ledger_index),
                                               DecisionData(*r))));
  });
}

// GET: the session's server-initiated stream (tools/list_changed). One per MCP session: a new
// GET replaces the previous stream.
void Gateway::HandleGet(Request& req, Responder respond) {
  Admitted in;
  if (!Admit(req, respond, &in)) return;
  const std::string scope = in.server ? in.server->name : "";
  if (!in.caller.accepts_sse) {
    respond(http::ErrorResponse(
        InvalidArgumentError("GET opens the server's event stream: Accept must list "
                             "text/event-stream"),
        req.request_id, 406));
    return;
  }
  if (in.caller.session_id.empty()) {
    respond(RpcResponse(400, ErrorText(nullptr, kInvalidRequest, "Mcp-Session-Id is required")));
    return;
  }
  auto sink = std::make_shared<SseSink>();
  std::shared_ptr<SseSink> old;
  if (Status s = sessions_->AttachStream(in.caller.session_id, scope, in.caller.access.session.sid,
                                         sink, &old);
      !s.ok()) {
    respond(SessionRefusal(s, nullptr));
    return;
  }
  if (old) old->Close();
  Response r;
  r.status = 200;
  r.sse = [sink](std::shared_ptr<http::SseWriter> w) { sink->Attach(std::move(w)); };
  respond(std::move(r));
}

void Gateway::HandleDelete(Request& req, Responder respond) {
  Server* server = nullptr;
  if (!ResolveServer(req, respond, &server)) return;
  const std::string scope = server ? server->name : "";
  std::string token = Bearer(req);
  auto session_header = req.headers.Get("mcp-session-id");
  identity::VerifiedAccess revoked;
  auto access = tokens_.VerifyAccessToken(token, options_.audience, &revoked);
  std::string sid = access.ok() ? access->session.sid : revoked.session.sid;
  if (sid.empty()) {
    respond(Unauthorized(
        req, scope,
        token.empty() ? "a bearer session token is required" : access.status().message()));
    return;
  }
  if (!session_header) {
    respond(RpcResponse(400, ErrorText(nullptr, kInvalidRequest, "Mcp-Session-Id is required")));
    return;
  }
  const std::string reason = "the client ended the MCP session";
  std::shared_ptr<SseSink> stream;
  std::vector<UpstreamCancel> cancels;
  if (Status s =
          sessions_->Close(std::string(*session_header), scope, sid, reason, &stream, &cancels);
      !s.ok()) {
    respond(SessionRefusal(s, nullptr));
    return;
  }
  if (stream) stream->Close();
  for (auto& [upstream, id] : cancels) upstream->Cancel(id, reason);
  respond(Response::Text(204, ""));
}

}  // namespace custody::mcp

#include "mcp/gateway.h"

#include <algorithm>
#include <cctype>

#include "attribution/attribution_service.h"
#include "common/encoding.h"
#include "common/jcs.h"
#include "crypto/sha256.h"
#include "identity/token_service.h"

namespace custody::mcp {

using attribution::AuthorizeRequest;
using attribution::AuthorizeResult;
using attribution::CompleteRequest;
using attribution::CompleteResult;
using http::Request;
using http::Responder;
using http::Response;
using SteadyClock = std::chrono::steady_clock;

namespace {

constexpr std::string_view kReasonChanged = "custody:tool_definition_changed";

bool Supported(std::string_view v) {
  for (const char* s : kProtocolVersions) {
    if (v == s) return true;
  }
  return false;
}

std::string Bearer(const Request& req) {
  auto h = req.headers.Get("authorization");
  if (!h || h->size() < 7) return "";
  std::string scheme(h->substr(0, 7));
  for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return scheme == "bearer " ? std::string(h->substr(7)) : "";
}

Response RpcResponse(int status, std::string body) {
  return Response::Json(status, std::move(body));
}

json::array Strings(const std::vector<std::string>& v) {
  json::array a;
  for (const auto& s : v) a.emplace_back(s);
  return a;
}

std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

std::string OutputDigest(const json::value& v) {
  auto canonical = CanonicalizeJson(json::serialize(v));
  std::string bytes = canonical.ok() ? *canonical : json::serialize(v);
  return "sha256:" + HexEncode(crypto::Sha256(bytes));
}

}  // namespace

std::string NegotiateProtocolVersion(std::string_view requested) {
  return Supported(requested) ? std::string(requested) : std::string(kProtocolVersions[0]);
}

bool OriginAllowed(std::string_view origin, const std::vector<std::string>& allowed) {
  for (const auto& a : allowed) {
    if (origin == a) return true;
  }
  for (std::string_view scheme : {"http://", "https://"}) {
    if (!origin.starts_with(scheme)) continue;
    std::string_view host = origin.substr(scheme.size());
    for (std::string_view loop : {"localhost", "127.0.0.1", "[::1]"}) {
      if (host == loop) return true;
      if (host.starts_with(loop) && host.size() > loop.size() && host[loop.size()] == ':') {
        std::string_view port = host.substr(loop.size() + 1);
        if (!port.empty() &&
            std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
          return true;
        }
      }
    }
  }
  return false;
}

// An SSE response opened before its writer exists: events queue until the server attaches it.
class SseSink {
 public:
  void Attach(std::shared_ptr<http::SseWriter> writer) {
    std::lock_guard lock(mu_);
    writer_ = std::move(writer);
    for (auto& e : queued_) writer_->Send("message", e);
    queued_.clear();
    if (finished_) writer_->Close();
  }
  void Send(const std::string& data, bool last = false) {
    std::lock_guard lock(mu_);
    if (finished_) return;
    finished_ = last;
    if (!writer_) {
      queued_.push_back(data);
      return;
    }
    writer_->Send("message", data);
    if (last) writer_->Close();
  }

 private:
  std::mutex mu_;
  std::shared_ptr<http::SseWriter> writer_;  // guarded by mu_
  std::vector<std::string> queued_;          // guarded by mu_
  bool finished_ = false;                    // guarded by mu_
};

struct Gateway::Server {
  std::string name;
  std::unique_ptr<Upstream> upstream;
  struct Progress {
    json::value client_token;
    std::shared_ptr<SseSink> sink;
  };
  std::mutex progress_mu;
  int64_t next_progress = 1;                 // guarded by progress_mu
  std::map<std::string, Progress> progress;  // guarded by progress_mu: upstream token -> call
  // (MCP session id, client request id as JSON) -> a forwarded tools/call.
  struct Inflight {
    int64_t upstream_id = 0;
    std::string token;  // the caller's, to notice containment (never sent upstream)
  };
  std::map<std::pair<std::string, std::string>, Inflight> inflight;  // guarded by progress_mu
  struct ToolState {
    std::string hash;
    bool approved = false;
  };
  std::mutex mu;
  std::map<std::string, ToolState> tools;  // guarded by mu: as last listed upstream
};

struct Gateway::Caller {
  std::string token;
  bool accepts_sse = false;  // the client's Accept lists text/event-stream
  identity::VerifiedAccess access;
  std::string session_id;
};

struct Gateway::Call {
  Server* server = nullptr;
  Caller caller;
  json::value id;
  json::object params;
  std::string tool;
  std::string hash;
  Responder respond;
  AuthorizeResult decision;
  SteadyClock::time_point forwarded;
  std::shared_ptr<SseSink> sse;  // set when progress is streamed back
  std::string progress_token;    // the token the upstream sees
  bool finished = false;         // guarded by server->progress_mu: upstream answered
};

Gateway::Gateway(identity::TokenService& tokens, attribution::AttributionService& attribution,
                 ToolPinStore& pins, EventSink events, const Clock& clock, Random& random,
                 GatewayOptions options)
    : tokens_(tokens),
      attribution_(attribution),
      pins_(pins),
      events_(std::move(events)),
      clock_(clock),
      random_(random),
      options_(std::move(options)),
      ids_(clock, random) {}

Result<std::unique_ptr<Gateway>> Gateway::Create(std::vector<UpstreamConfig> servers,
                                                 identity::TokenService& tokens,
                                                 attribution::AttributionService& attribution,
                                                 ToolPinStore& pins, EventSink events,
                                                 const Clock& clock, Random& random,
                                                 GatewayOptions options) {
  std::unique_ptr<Gateway> g(
      new Gateway(tokens, attribution, pins, std::move(events), clock, random, std::move(options)));
  for (auto& cfg : servers) {
    auto s = std::make_unique<Server>();
    s->name = cfg.name;
    UpstreamOptions uo = g->options_.upstream;
    uo.on_notification = [gw = g.get(), server = s.get()](const json::object& m) {
      gw->OnUpstreamNotification(*server, m);
    };
    ASSIGN_OR_RETURN(s->upstream, MakeUpstream(std::move(cfg), std::move(uo)));
    g->servers_[s->name] = std::move(s);
  }
  return g;
}

Gateway::~Gateway() { Stop(); }

void Gateway::Start() {
  for (auto& [_, s] : servers_) s->upstream->Start();
  std::lock_guard lock(sweep_mu_);
  if (!sweeper_.joinable() && !sweep_stop_) sweeper_ = std::thread([this] { SweepContained(); });
}

void Gateway::Stop() {
  {
    std::lock_guard lock(sweep_mu_);
    sweep_stop_ = true;
  }
  sweep_cv_.notify_all();
  if (sweeper_.joinable()) sweeper_.join();
  for (auto& [_, s] : servers_) s->upstream->Stop();
}

void Gateway::SweepContained() {
  std::unique_lock lk(sweep_mu_);
  while (!sweep_cv_.wait_for(lk, std::chrono::milliseconds(100), [this] { return sweep_stop_; })) {
    lk.unlock();
    for (auto& [_, s] : servers_) {
      std::vector<Server::Inflight> calls;
      {
        std::lock_guard lock(s->progress_mu);
        for (const auto& [key, call] : s->inflight) calls.push_back(call);
      }
      for (const auto& call : calls) {
        identity::VerifiedAccess revoked;
        if (!tokens_.VerifyAccessToken(call.token, options_.audience, &revoked).ok() &&
            !revoked.session.sid.empty()) {
          s->upstream->Cancel(call.upstream_id, "the session was contained");
        }
      }
    }
    lk.lock();
  }
}

size_t Gateway::session_count() const {
  std::lock_guard lock(sessions_mu_);
  return sessions_.size();
}

std::string Gateway::MetadataUrl(const Request& req, const std::string& server) const {
  std::string host(req.headers.Get("host").value_or(""));
  bool sane =
      !host.empty() && host.size() < 256 && std::all_of(host.begin(), host.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':' ||
               c == '[' || c == ']';
      });
  if (!sane) host = "127.0.0.1";
  return std::string(options_.tls ? "https://" : "http://") + host +
         "/.well-known/oauth-protected-resource/mcp/" + server;
}

Response Gateway::Unauthorized(const Request& req, const std::string& server,
                               const std::string& why) const {
  Response r = http::ErrorResponse(UnauthenticatedError(why), req.request_id);
  std::string challenge = "Bearer resource_metadata=\"" + MetadataUrl(req, server) + "\"";
  if (!Bearer(req).empty()) challenge += ", error=\"invalid_token\"";
  r.headers.Set("www-authenticate", challenge);
  return r;
}

void Gateway::HandlePost(Request& req, Responder respond) {
  auto sit = servers_.find(req.params["server"]);
  if (sit == servers_.end()) {
    respond(http::ErrorResponse(
        NotFoundError("no MCP server named \"" + req.params["server"] + "\" is configured"),
        req.request_id));
    return;
  }
  Server& server = *sit->second;
  if (auto origin = req.headers.Get("origin");
      origin && !OriginAllowed(*origin, options_.allowed_origins)) {
    respond(RpcResponse(403, ErrorText(nullptr, kInvalidRequest, "Origin not allowed")));
    return;
  }
  if (req.body.size() > options_.max_message_bytes) {
    respond(RpcResponse(413, ErrorText(nullptr, kInvalidRequest,
                                       "message larger than " +
                                           std::to_string(options_.max_message_bytes) + " bytes")));
    return;
  }
  Caller caller;
  caller.token = Bearer(req);
  caller.accepts_sse =
      req.headers.Get("accept").value_or("").find("text/event-stream") != std::string_view::npos;
  if (caller.token.empty()) {
    respond(Unauthorized(req, server.name, "a bearer session token is required"));
    return;
  }
  auto session_header = req.headers.Get("mcp-session-id");
  identity::VerifiedAccess revoked;
  auto access = tokens_.VerifyAccessToken(caller.token, options_.audience, &revoked);
  if (!access.ok()) {
    if (!revoked.session.sid.empty() && session_header) {
      std::lock_guard lock(sessions_mu_);
      auto it = sessions_.find(std::string(*session_header));
      if (it != sessions_.end() && it->second.sid == revoked.session.sid) {
        sessions_.erase(it);
        respond(RpcResponse(404, ErrorText(nullptr, kDenied,
                                           "the Custody session of this MCP session is revoked "
                                           "(contained); the MCP session is gone")));
        return;
      }
    }
    respond(Unauthorized(req, server.name, access.status().message()));
    return;
  }
  caller.access = std::move(*access);

  Message msg;
  RpcError perr;
  json::value id;
  if (!ParseMessage(req.body, &msg, &perr, &id)) {
    respond(RpcResponse(400, ErrorText(id, perr.code, perr.message)));
    return;
  }
  if (auto pv = req.headers.Get("mcp-protocol-version"); pv && !Supported(*pv)) {
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
    auto n = msg.params().find("name");
    if (n == msg.params().end() || !n->value().is_string() || n->value().get_string() != *nh) {
      respond(RpcResponse(
          400, ErrorText(msg.id, kInvalidRequest, "Mcp-Name header does not match params.name")));
      return;
    }
  }

  if (msg.kind == MessageKind::kRequest && msg.method == "initialize") {
    std::string requested;
    if (auto it = msg.params().find("protocolVersion");
        it != msg.params().end() && it->value().is_string()) {
      requested = std::string(it->value().get_string());
    }
    std::string version = NegotiateProtocolVersion(requested);
    uint8_t raw[16];
    random_.Fill(raw);
    std::string session_id = HexEncode(std::span<const uint8_t>(raw, sizeof raw));
    {
      std::lock_guard lock(sessions_mu_);
      sessions_[session_id] =
          McpSession{server.name, caller.access.session.sid, caller.access.session.agent, version};
    }
    json::object result{
        {"protocolVersion", version},
        {"capabilities", json::object{{"tools", json::object{{"listChanged", false}}}}},
        {"serverInfo",
         json::object{{"name", "custody-gateway/" + server.name}, {"version", "0.1.0"}}},
        {"instructions",
         "Tool calls through this gateway are authorized by policy and recorded by Custody; "
         "results carry a receipt under _meta[\"dev.custody/receipt\"]."}};
    Response r = RpcResponse(200, ResultText(msg.id, std::move(result)));
    r.headers.Set("mcp-session-id", session_id);
    respond(std::move(r));
    return;
  }

  if (!session_header) {
    respond(RpcResponse(400, ErrorText(msg.id, kInvalidRequest,
                                       "Mcp-Session-Id is required (send initialize first)")));
    return;
  }
  caller.session_id = std::string(*session_header);
  {
    std::lock_guard lock(sessions_mu_);
    auto it = sessions_.find(caller.session_id);
    if (it == sessions_.end() || it->second.server != server.name) {
      respond(RpcResponse(404, ErrorText(msg.id, kInvalidRequest, "unknown or ended MCP session")));
      return;
    }
    if (it->second.sid != caller.access.session.sid) {
      respond(RpcResponse(
          403, ErrorText(msg.id, kDenied, "this MCP session belongs to another Custody session")));
      return;
    }
  }
  if (msg.kind != MessageKind::kRequest) {
    // A cancellation of a forwarded tools/call goes upstream (under the upstream's id); other
    // notifications and responses stop here: the gateway starts no requests toward the client.
    if (msg.method == "notifications/cancelled") {
      auto rid = msg.params().find("requestId");
      if (rid != msg.params().end()) {
        int64_t upstream_id = 0;
        {
          std::lock_guard lock(server.progress_mu);
          auto it = server.inflight.find({caller.session_id, json::serialize(rid->value())});
          if (it != server.inflight.end()) upstream_id = it->second.upstream_id;
        }
        if (upstream_id != 0) server.upstream->Cancel(upstream_id, "cancelled by the client");
      }
    }
    respond(Response::Text(202, ""));
    return;
  }
  json::object params = msg.params();
  if (msg.method == "ping") {
    respond(RpcResponse(200, ResultText(msg.id, json::object{})));
  } else if (msg.method == "tools/list") {
    HandleToolsList(server, caller, msg.id, std::move(params), std::move(respond));
  } else if (msg.method == "tools/call") {
    HandleToolsCall(server, caller, msg.id, std::move(params), std::move(respond));
  } else {
    respond(RpcResponse(200, ErrorText(msg.id, kMethodNotFound,
                                       "method not found: " + msg.method +
                                           " (the Custody gateway passes tools only)")));
  }
}

void Gateway::HandleDelete(Request& req, Responder respond) {
  auto sit = servers_.find(req.params["server"]);
  if (sit == servers_.end()) {
    respond(http::ErrorResponse(NotFoundError("no such MCP server"), req.request_id));
    return;
  }
  std::string token = Bearer(req);
  auto session_header = req.headers.Get("mcp-session-id");
  identity::VerifiedAccess revoked;
  auto access = tokens_.VerifyAccessToken(token, options_.audience, &revoked);
  std::string sid = access.ok() ? access->session.sid : revoked.session.sid;
  if (sid.empty()) {
    respond(Unauthorized(
        req, sit->first,
        token.empty() ? "a bearer session token is required" : access.status().message()));
    return;
  }
  if (!session_header) {
    respond(RpcResponse(400, ErrorText(nullptr, kInvalidRequest, "Mcp-Session-Id is required")));
    return;
  }
  std::lock_guard lock(sessions_mu_);
  auto it = sessions_.find(std::string(*session_header));
  if (it == sessions_.end() || it->second.server != sit->first) {
    respond(RpcResponse(404, ErrorText(nullptr, kInvalidRequest, "unknown or ended MCP session")));
    return;
  }
  if (it->second.sid != sid) {
    respond(RpcResponse(
        403, ErrorText(nullptr, kDenied, "this MCP session belongs to another Custody session")));
    return;
  }
  sessions_.erase(it);
  respond(Response::Text(204, ""));
}

std::map<std::string, std::string> Gateway::PinTools(Server& server, const json::array& tools) {
  std::map<std::string, std::string> out;
  int64_t now_ms = UnixMillis(clock_.Now());
  for (const auto& t : tools) {
    if (!t.is_object()) continue;
    auto hash = ToolDefinitionHash(t.get_object());
    if (!hash.ok()) continue;
    std::string name(t.get_object().at("name").get_string());
    auto obs = pins_.Observe(server.name, name, *hash, now_ms);
    bool approved = obs.ok() && obs->approved;
    if (!obs.ok() && options_.upstream.log) {
      options_.upstream.log(3, server.name, "tool pin store: " + obs.status().ToString());
    }
    if (obs.ok() && obs->newly_changed) {
      json::object ev{{"event_id", ids_.NextString()},
                      {"time", FormatRfc3339Millis(clock_.Now())},
                      {"kind", "tool.definition_change"},
                      {"target", json::object{{"server", server.name}, {"tool", name}}},
                      {"approved_hash", obs->approved_hash},
                      {"new_hash", *hash},
                      {"via", "mcp"}};
      Status s = events_ ? events_(json::serialize(ev)) : OkStatus();
      if (options_.upstream.log) {
        options_.upstream.log(2, server.name,
                              "definition of tool " + name + " changed (approved " +
                                  obs->approved_hash + ", now " + *hash +
                                  "); calls refused until approved" +
                                  (s.ok() ? "" : "; recording failed: " + s.ToString()));
      }
    }
    out[name] = *hash;
    std::lock_guard lock(server.mu);
    server.tools[name] = Server::ToolState{*hash, approved};
  }
  return out;
}

void Gateway::HandleToolsList(Server& server, const Caller& caller, json::value id,
                              json::object params, Responder respond) {
  json::object fwd;
  if (auto it = params.find("cursor"); it != params.end()) fwd["cursor"] = it->value();
  identity::Session session = caller.access.session;
  server.upstream->Call(
      "tools/list", std::move(fwd), [this, &server, session, id, respond](Result<json::object> r) {
        if (!r.ok()) {
          respond(RpcResponse(200, ErrorText(id, kUnavailable, r.status().message())));
          return;
        }
        json::object& o = *r;
        if (auto e = o.find("error"); e != o.end()) {
          json::object out{{"jsonrpc", "2.0"}, {"id", id}, {"error", e->value()}};
          respond(RpcResponse(200, json::serialize(out)));
          return;
        }
        auto res = o.find("result");
        if (res == o.end() || !res->value().is_object()) {
          respond(RpcResponse(200, ErrorText(id, kInternalError, "malformed upstream answer")));
          return;
        }
        json::object result = res->value().get_object();
        json::array tools;
        if (auto t = result.find("tools"); t != result.end() && t->value().is_array()) {
          tools = t->value().get_array();
        }
        PinTools(server, tools);
        json::array visible;
        for (auto& t : tools) {
          if (!t.is_object()) continue;
          auto n = t.get_object().find("name");
          if (n == t.get_object().end() || !n->value().is_string()) continue;
          attribution::Target target;
          target.server = server.name;
          target.tool = std::string(n->value().get_string());
          auto allowed = attribution_.WouldAllow(session, "call_tool", target);
          if (allowed.ok() && *allowed) visible.push_back(std::move(t));
        }
        result["tools"] = std::move(visible);
        respond(RpcResponse(200, ResultText(id, std::move(result))));
      });
}

void Gateway::HandleToolsCall(Server& server, const Caller& caller, json::value id,
                              json::object params, Responder respond) {
  auto n = params.find("name");
  if (n == params.end() || !n->value().is_string() || n->value().get_string().empty()) {
    respond(RpcResponse(200, ErrorText(id, kInvalidParams, "params.name must be a tool name")));
    return;
  }
  if (auto a = params.find("arguments");
      a != params.end() && !a->value().is_object() && !a->value().is_null()) {
    respond(RpcResponse(200, ErrorText(id, kInvalidParams, "params.arguments must be an object")));
    return;
  }
  auto call = std::make_shared<Call>();
  call->server = &server;
  call->caller = caller;
  call->id = id;
  call->tool = std::string(n->value().get_string());
  call->params = std::move(params);
  call->respond = std::move(respond);

  auto proceed = [this, call]() {
    Server& s = *call->server;
    Server::ToolState state;
    bool known = false;
    {
      std::lock_guard lock(s.mu);
      if (auto it = s.tools.find(call->tool); it != s.tools.end()) {
        state = it->second;
        known = true;
      }
    }
    if (!known) {
      call->respond(
          RpcResponse(200, ErrorText(call->id, kInvalidParams, "unknown tool: " + call->tool)));
      return;
    }
    call->hash = state.hash;
    if (!state.approved) {
      json::object data{{"reason", kReasonChanged}, {"definition_hash", state.hash}};
      call->respond(RpcResponse(
          200, ErrorText(call->id, kDenied,
                         "refused: the definition of tool " + s.name + "/" + call->tool +
                             " changed since it was approved (" + std::string(kReasonChanged) +
                             "); an operator must approve it: custody tool approve " + s.name +
                             " " + call->tool + " " + state.hash,
                         data)));
      return;
    }
    AuthorizeRequest a;
    a.token = call->caller.token;
    a.action = "call_tool";
    a.target.server = s.name;
    a.target.tool = call->tool;
    if (auto args = call->params.find("arguments");
        args != call->params.end() && args->value().is_object()) {
      a.arguments_json = json::serialize(args->value());
    }
    if (auto m = call->params.find("_meta"); m != call->params.end() && m->value().is_object()) {
      if (auto tp = m->value().get_object().find("traceparent");
          tp != m->value().get_object().end() && tp->value().is_string()) {
        a.traceparent = std::string(tp->value().get_string());
      }
    }
    a.caller_context_json = json::serialize(json::object{{"mcp_session", call->caller.session_id}});
    a.via = "mcp";
    a.resource_attrs["definition_hash"] = state.hash;
    attribution_.Authorize(std::move(a), [this, call](Result<AuthorizeResult> r) {
      if (!r.ok()) {
        call->respond(RpcResponse(
            200, ErrorText(call->id, JsonRpcCodeFor(r.status().code()), r.status().message())));
        return;
      }
      if (!r->allowed) {
        json::object data{{"action_id", r->action_id},
                          {"reasons", Strings(r->reasons)},
                          {"receipt", r->receipt},
                          {"ledger_index", r->ledger_index},
                          {"policy_hash", r->policy_hash}};
        if (!r->contained.empty()) data["contained"] = r->contained;
        std::string why = r->reasons.empty() ? r->message : Join(r->reasons);
        call->respond(RpcResponse(
            200,
            ErrorText(call->id, kDenied,
                      "denied by Custody policy: " + why +
                          (r->message.empty() || r->reasons.empty() ? "" : " (" + r->message + ")"),
                      data)));
        return;
      }
      call->decision = std::move(*r);
      ForwardCall(call);
    });
  };

  bool known;
  {
    std::lock_guard lock(server.mu);
    known = server.tools.count(call->tool) > 0;
  }
  if (known) {
    proceed();
    return;
  }
  // Not listed yet through the gateway: learn (and pin) the definitions first.
  server.upstream->Call(
      "tools/list", json::object{}, [this, call, proceed](Result<json::object> r) {
        if (r.ok()) {
          auto res = r->find("result");
          if (res != r->end() && res->value().is_object()) {
            auto t = res->value().get_object().find("tools");
            if (t != res->value().get_object().end() && t->value().is_array()) {
              PinTools(*call->server, t->value().get_array());
            }
          }
        } else {
          call->respond(RpcResponse(200, ErrorText(call->id, kUnavailable, r.status().message())));
          return;
        }
        proceed();
      });
}

void Gateway::ForwardCall(std::shared_ptr<Call> call) {
  json::object fwd = call->params;
  json::object meta;
  if (auto m = fwd.find("_meta"); m != fwd.end() && m->value().is_object()) {
    meta = m->value().get_object();
  }
  meta["traceparent"] = call->decision.traceparent;
  // Progress: the upstream sees a token unique to this call, and the client gets its own back
  // on an SSE response that ends with the result.
  if (auto pt = meta.find("progressToken");
      pt != meta.end() && call->caller.accepts_sse &&
      (pt->value().is_string() || pt->value().is_int64() || pt->value().is_uint64())) {
    call->sse = std::make_shared<SseSink>();
    Server& s = *call->server;
    {
      std::lock_guard lock(s.progress_mu);
      call->progress_token = "custody-" + std::to_string(s.next_progress++);
      s.progress[call->progress_token] = Server::Progress{pt->value(), call->sse};
    }
    pt->value() = call->progress_token;
    Response r;
    r.status = 200;
    r.sse = [sink = call->sse](std::shared_ptr<http::SseWriter> w) { sink->Attach(std::move(w)); };
    call->respond(std::move(r));
  }
  fwd["_meta"] = std::move(meta);
  call->forwarded = SteadyClock::now();
  auto key = std::make_pair(call->caller.session_id, json::serialize(call->id));
  int64_t upstream_id = call->server->upstream->Call(
      "tools/call", std::move(fwd), [this, call, key](Result<json::object> r) {
        {
          std::lock_guard lock(call->server->progress_mu);
          call->finished = true;
          call->server->inflight.erase(key);
        }
        int64_t latency_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                 SteadyClock::now() - call->forwarded)
                                 .count();
        CompleteRequest c;
        c.token = call->caller.token;
        c.action_id = call->decision.action_id;
        c.latency_ms = latency_ms;
        c.status = "ok";
        // What goes back to the client: the upstream's result (with receipts) or its error.
        auto out = std::make_shared<json::object>();
        if (!r.ok()) {
          c.status = "error";
          c.error = r.status().message();
          *out = ErrorObject(call->id, kUnavailable, r.status().message());
        } else if (auto e = r->find("error"); e != r->end()) {
          c.status = "error";
          c.error = "upstream error: " + json::serialize(e->value());
          c.output_digest = OutputDigest(e->value());
          *out = json::object{{"jsonrpc", "2.0"}, {"id", call->id}, {"error", e->value()}};
        } else {
          auto res = r->find("result");
          json::value result = res != r->end() ? res->value() : json::value(json::object{});
          if (!result.is_object()) result = json::object{};
          c.output_digest = OutputDigest(result);
          if (auto ie = result.get_object().find("isError");
              ie != result.get_object().end() && ie->value().is_bool() && ie->value().get_bool()) {
            c.status = "error";
            c.error = "the tool reported an error (isError)";
          }
          *out = json::object{{"jsonrpc", "2.0"}, {"id", call->id}, {"result", std::move(result)}};
        }
        attribution_.Complete(std::move(c), [this, call, out](Result<CompleteResult> cr) {
          json::object receipt{{"action_id", call->decision.action_id},
                               {"decision", "allow"},
                               {"reasons", Strings(call->decision.reasons)},
                               {"policy_hash", call->decision.policy_hash},
                               {"ledger_index", call->decision.ledger_index},
                               {"receipt", call->decision.receipt},
                               {"traceparent", call->decision.traceparent},
                               {"definition_hash", call->hash}};
          if (cr.ok()) {
            receipt["outcome"] = json::object{{"event_id", cr->event_id},
                                              {"ledger_index", cr->ledger_index},
                                              {"receipt", cr->receipt}};
          } else {
            receipt["outcome_error"] = cr.status().ToString();
          }
          // Contained while the call ran: the outcome is recorded, but the result is withheld.
          identity::VerifiedAccess revoked;
          if (!tokens_.VerifyAccessToken(call->caller.token, options_.audience, &revoked).ok() &&
              !revoked.session.sid.empty()) {
            Reply(*call, 200,
                  ErrorText(call->id, kDenied,
                            "the session was contained while the call ran; the result is withheld",
                            json::object{{kReceiptMetaKey, std::move(receipt)}}));
            return;
          }
          if (auto res = out->find("result"); res != out->end()) {
            json::object& result = res->value().as_object();
            json::object meta;
            if (auto m = result.find("_meta"); m != result.end() && m->value().is_object()) {
              meta = m->value().get_object();
            }
            meta[kReceiptMetaKey] = std::move(receipt);
            result["_meta"] = std::move(meta);
          } else if (auto err = out->find("error"); err != out->end()) {
            err->value().as_object()["data"] = json::object{{kReceiptMetaKey, std::move(receipt)}};
          }
          Reply(*call, 200, json::serialize(*out));
        });
      });
  std::lock_guard lock(call->server->progress_mu);
  if (upstream_id != 0 && !call->finished) {
    call->server->inflight[key] = Server::Inflight{upstream_id, call->caller.token};
  }
}

void Gateway::Reply(Call& call, int http_status, std::string body) {
  if (!call.sse) {
    call.respond(RpcResponse(http_status, std::move(body)));
    return;
  }
  {
    std::lock_guard lock(call.server->progress_mu);
    call.server->progress.erase(call.progress_token);
  }
  call.sse->Send(body, /*last=*/true);
}

void Gateway::OnUpstreamNotification(Server& server, const json::object& message) {
  auto m = message.find("method");
  if (m == message.end() || !m->value().is_string() ||
      m->value().get_string() != "notifications/progress") {
    return;  // others (list_changed, logging, …) are not passed on: no GET stream yet
  }
  auto p = message.find("params");
  if (p == message.end() || !p->value().is_object()) return;
  auto t = p->value().get_object().find("progressToken");
  if (t == p->value().get_object().end() || !t->value().is_string()) return;
  Server::Progress target;
  {
    std::lock_guard lock(server.progress_mu);
    auto it = server.progress.find(std::string(t->value().get_string()));
    if (it == server.progress.end()) return;
    target = it->second;
  }
  json::object out = message;
  out["params"].as_object()["progressToken"] = target.client_token;
  target.sink->Send(json::serialize(out));
}

Status Gateway::Approve(const std::string& server, const std::string& tool, const std::string& hash,
                        const std::string& by) {
  RETURN_IF_ERROR(pins_.Approve(server, tool, hash));
  json::object ev{
      {"event_id", ids_.NextString()}, {"time", FormatRfc3339Millis(clock_.Now())},
      {"kind", "tool.approve"},        {"target", json::object{{"server", server}, {"tool", tool}}},
      {"approved_hash", hash},         {"by", by}};
  if (events_) RETURN_IF_ERROR(events_(json::serialize(ev)));
  if (auto it = servers_.find(server); it != servers_.end()) {
    std::lock_guard lock(it->second->mu);
    auto t = it->second->tools.find(tool);
    if (t != it->second->tools.end() && t->second.hash == hash) t->second.approved = true;
  }
  return OkStatus();
}

Status Gateway::AddRoutes(http::Router& router, const http::AuthRequirement& read_auth) {
  for (const char* pattern : {"/mcp/{server}"}) {
    RETURN_IF_ERROR(router.Add(http::Route{
        "POST", pattern,
        [this](Request& req, Responder respond) { HandlePost(req, std::move(respond)); },
        http::AuthRequirement::None(), ""}));
    RETURN_IF_ERROR(router.Add(http::Route{
        "DELETE", pattern,
        [this](Request& req, Responder respond) { HandleDelete(req, std::move(respond)); },
        http::AuthRequirement::None(), ""}));
  }
  auto metadata = [this](Request&, Responder respond) {
    json::object m{{"resource", options_.audience},
                   {"authorization_servers", json::array{json::value(options_.issuer)}},
                   {"bearer_methods_supported", json::array{"header"}},
                   {"resource_name", "Custody MCP gateway"}};
    respond(Response::Json(200, json::serialize(m)));
  };
  for (const char* path : {"/.well-known/oauth-protected-resource",
                           "/.well-known/oauth-protected-resource/mcp/{server}"}) {
    RETURN_IF_ERROR(
        router.Add(http::Route{"GET", path, metadata, http::AuthRequirement::None(), ""}));
  }

  RETURN_IF_ERROR(router.Add(http::Route{
      "GET", "/v1/mcp/tools",
      [this](Request& req, Responder respond) {
        auto pins = pins_.List();
        if (!pins.ok()) {
          respond(http::ErrorResponse(pins.status(), req.request_id));
          return;
        }
        json::array tools;
        for (const auto& p : *pins) {
          tools.push_back(
              json::object{{"server", p.server},
                           {"tool", p.tool},
                           {"status", p.approved_hash == p.seen_hash ? "approved" : "changed"},
                           {"approved_hash", p.approved_hash},
                           {"seen_hash", p.seen_hash},
                           {"first_seen_ms", p.first_seen_ms},
                           {"changed_ms", p.changed_ms}});
        }
        respond(Response::Json(200, json::serialize(json::object{{"tools", std::move(tools)}})));
      },
      read_auth, ""}));
  RETURN_IF_ERROR(router.Add(http::Route{
      "POST", "/v1/mcp/tools/approve",
      [this](Request& req, Responder respond) {
        boost::system::error_code ec;
        json::value v = json::parse(req.body, ec);
        auto str = [&](const char* k) -> std::string {
          if (ec || !v.is_object()) return "";
          auto it = v.get_object().find(k);
          return it != v.get_object().end() && it->value().is_string()
                     ? std::string(it->value().get_string())
                     : "";
        };
        std::string server = str("server"), tool = str("tool"), hash = str("hash");
        if (server.empty() || tool.empty() || hash.empty()) {
          respond(http::ErrorResponse(
              InvalidArgumentError("body must be {\"server\",\"tool\",\"hash\"} (strings)"),
              req.request_id));
          return;
        }
        std::string by = req.principal ? "admin:" + req.principal->id : "";
        Status s = Approve(server, tool, hash, by);
        if (!s.ok()) {
          respond(http::ErrorResponse(s, req.request_id));
          return;
        }
        respond(
            Response::Json(200, json::serialize(json::object{
                                    {"server", server}, {"tool", tool}, {"approved_hash", hash}})));
      },
      http::AuthRequirement::AnyOf({"admin"}), "application/json"}));
  return OkStatus();
}

}  // namespace custody::mcp

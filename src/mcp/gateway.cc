#include "mcp/gateway.h"

#include <algorithm>
#include <cctype>

#include "attribution/attribution_service.h"
#include "common/encoding.h"
#include "common/jcs_value.h"
#include "common/json_array.h"
#include "crypto/sha256.h"
#include "events/tool_events.h"
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

// At most `max` bytes of `s`, cut at a UTF-8 character boundary and marked with "...".
std::string Clip(std::string s, size_t max) {
  if (s.size() <= max) return s;
  size_t n = max - 3;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  s.resize(n);
  return s + "...";
}

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

std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

std::string OutputDigest(const json::value& v) {
  auto canonical = CanonicalizeJsonValue(v);
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
    MutexLock lock(mu_);
    writer_ = std::move(writer);
    for (auto& e : queued_) writer_->Send("message", e);
    queued_.clear();
    if (finished_) writer_->Close();
  }
  // Returns false once the stream is finished or its peer went away.
  bool Send(const std::string& data, bool last = false) {
    MutexLock lock(mu_);
    if (finished_) return false;
    finished_ = last;
    if (!writer_) {
      queued_.push_back(data);
      return true;
    }
    bool sent = writer_->Send("message", data);
    if (last) writer_->Close();
    return sent;
  }
  void Close() {
    MutexLock lock(mu_);
    finished_ = true;
    if (writer_) writer_->Close();
  }
  // Not finished, and its peer (once attached) still there.
  bool open() {
    MutexLock lock(mu_);
    return !finished_ && (!writer_ || !writer_->closed());
  }

 private:
  Mutex mu_;
  std::shared_ptr<http::SseWriter> writer_ GUARDED_BY(mu_);
  std::vector<std::string> queued_ GUARDED_BY(mu_);
  bool finished_ GUARDED_BY(mu_) = false;
};

struct Gateway::Server {
  std::string name;
  std::unique_ptr<Upstream> upstream;
  struct Progress {
    json::value client_token;
    std::shared_ptr<SseSink> sink;
  };
  struct ToolState {
    std::string hash;
    bool approved = false;
  };
  Mutex mu;
  int64_t next_progress GUARDED_BY(mu) = 1;
  std::map<std::string, Progress> progress GUARDED_BY(mu);  // upstream token -> call
  std::map<std::string, ToolState> tools GUARDED_BY(mu);    // as last listed upstream
};

struct Gateway::McpSession {
  std::string server;  // "" on the aggregate endpoint
  std::string sid;     // the Custody session it is bound to
  std::string agent;   // for logs
  std::string protocol_version;
  std::shared_ptr<SseSink> stream;  // the GET stream, when open
  SteadyClock::time_point last_used;
};

struct Gateway::Inflight {
  Server* server = nullptr;
  int64_t upstream_id = 0;  // 0 until Upstream::Call returned
  std::string sid;
  std::string cancel_reason;  // set when cancelled before upstream_id was known
};

struct Gateway::Caller {
  std::string token;
  bool accepts_sse = false;  // the client's Accept lists text/event-stream
  identity::VerifiedAccess access;
  std::string session_id;
};

struct Gateway::Admitted {
  Server* server = nullptr;  // nullptr on the aggregate endpoint
  Caller caller;
  Message msg;
};

struct Gateway::Call {
  Server* server = nullptr;
  Caller caller;
  json::value id;
  json::object params;
  std::string tool;  // the upstream's name for it
  std::string hash;
  Responder respond;
  AuthorizeResult decision;
  SteadyClock::time_point forwarded;
  std::shared_ptr<SseSink> sse;             // set when progress is streamed back
  std::string progress_token;               // the token the upstream sees
  std::pair<std::string, std::string> key;  // in inflight_
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
    ASSIGN_OR_RETURN(s->upstream, g->options_.make_upstream
                                      ? g->options_.make_upstream(std::move(cfg), std::move(uo))
                                      : MakeUpstream(std::move(cfg), std::move(uo)));
    g->servers_[s->name] = std::move(s);
  }
  g->revocation_listener_ = tokens.AddRevocationListener(
      [gw = g.get()](const std::vector<std::string>& sids) { gw->OnRevoked(sids); });
  return g;
}

Gateway::~Gateway() {
  tokens_.RemoveRevocationListener(revocation_listener_);
  Stop();
}

void Gateway::Start() {
  for (auto& [_, s] : servers_) s->upstream->Start();
}

void Gateway::Stop() {
  std::vector<std::shared_ptr<SseSink>> streams;
  {
    MutexLock lock(sessions_mu_);
    for (auto& [_, m] : sessions_) {
      if (m.stream) streams.push_back(std::move(m.stream));
    }
  }
  for (auto& s : streams) s->Close();
  for (auto& [_, s] : servers_) s->upstream->Stop();
}

std::vector<std::pair<Upstream*, int64_t>> Gateway::TakeCancels(const std::string& mcp_session,
                                                                const std::set<std::string>* sids,
                                                                const std::string& reason) {
  std::vector<std::pair<Upstream*, int64_t>> out;
  for (auto& [key, f] : inflight_) {
    if (!mcp_session.empty() && key.first != mcp_session) continue;
    if (sids && !sids->count(f.sid)) continue;
    if (f.upstream_id != 0) {
      out.emplace_back(f.server->upstream.get(), f.upstream_id);
    } else {
      f.cancel_reason = reason;  // ForwardCall cancels it once the upstream id is known
    }
  }
  return out;
}

void Gateway::OnRevoked(const std::vector<std::string>& sids) {
  const std::set<std::string> revoked(sids.begin(), sids.end());
  const std::string reason = "the session was contained";
  std::vector<std::shared_ptr<SseSink>> streams;
  std::vector<std::pair<Upstream*, int64_t>> cancels;
  size_t ended = 0;
  {
    MutexLock lock(sessions_mu_);
    for (auto it = sessions_.begin(); it != sessions_.end();) {
      if (!revoked.count(it->second.sid)) {
        ++it;
        continue;
      }
      if (it->second.stream) streams.push_back(std::move(it->second.stream));
      std::string id = (it++)->first;
      EndSession(id,
                 "the Custody session of this MCP session was revoked (contained); the MCP "
                 "session is gone");
      ++ended;
    }
    cancels = TakeCancels("", &revoked, reason);
  }
  for (auto& s : streams) s->Close();
  for (auto& [upstream, id] : cancels) upstream->Cancel(id, reason);
  if (ended || !cancels.empty()) {
    LogUpstream(options_.upstream, LogLevel::kInfo, "",
                "contained: " + std::to_string(ended) + " MCP session(s) ended, " +
                    std::to_string(streams.size()) + " stream(s) closed, " +
                    std::to_string(cancels.size()) + " call(s) cancelled upstream");
  }
}

void Gateway::EndSession(const std::string& id, std::string reason) {
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return;
  if (it->second.stream) it->second.stream->Close();
  sessions_.erase(it);
  if (ended_.insert_or_assign(id, std::move(reason)).second) ended_order_.push_back(id);
  while (ended_order_.size() > 10000) {
    ended_.erase(ended_order_.front());
    ended_order_.pop_front();
  }
}

bool Gateway::ExpireIfIdle(const std::string& id) {
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return false;
  const McpSession& m = it->second;
  if (SteadyClock::now() - m.last_used <= options_.session_idle_timeout) return false;
  if (m.stream && m.stream->open()) return false;
  auto first = inflight_.lower_bound({id, std::string()});
  if (first != inflight_.end() && first->first.first == id) return false;  // a call runs
  int64_t ms = options_.session_idle_timeout.count();
  EndSession(id, "the MCP session expired after " +
                     (ms < 10000 ? std::to_string(ms) + " ms" : std::to_string(ms / 1000) + " s") +
                     " without use; initialize again");
  return true;
}

Gateway::McpSession* Gateway::UseSession(const std::string& id, std::string* why) {
  ExpireIfIdle(id);
  auto it = sessions_.find(id);
  if (it == sessions_.end()) {
    auto e = ended_.find(id);
    *why = e != ended_.end() ? e->second : "unknown or ended MCP session";
    return nullptr;
  }
  it->second.last_used = SteadyClock::now();
  return &it->second;
}

size_t Gateway::session_count() const {
  MutexLock lock(sessions_mu_);
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
         "/.well-known/oauth-protected-resource/mcp" + (server.empty() ? "" : "/" + server);
}

Response Gateway::Unauthorized(const Request& req, const std::string& server,
                               const std::string& why) const {
  Response r = http::ErrorResponse(UnauthenticatedError(why), req.request_id);
  std::string challenge = "Bearer resource_metadata=\"" + MetadataUrl(req, server) + "\"";
  if (!Bearer(req).empty()) challenge += ", error=\"invalid_token\"";
  r.headers.Set("www-authenticate", challenge);
  return r;
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
    if (!revoked.session.sid.empty() && session_header) {
      // The session's own token after containment: its MCP session is gone.
      MutexLock lock(sessions_mu_);
      std::string why =
          "the Custody session of this MCP session is revoked (contained); the "
          "MCP session is gone";
      if (auto e = ended_.find(caller.session_id); e != ended_.end()) why = e->second;
      auto it = sessions_.find(caller.session_id);
      bool known = ended_.count(caller.session_id) > 0;
      if (it != sessions_.end() && it->second.sid == revoked.session.sid) {
        sessions_.erase(it);
        known = true;
      }
      if (known) {
        respond(RpcResponse(404, ErrorText(nullptr, kDenied, why)));
        return false;
      }
    }
    respond(Unauthorized(req, scope, access.status().message()));
    return false;
  }
  caller.access = std::move(*access);
  return true;
}

void Gateway::HandlePost(Request& req, Responder respond) {
  Admitted in;
  if (!Admit(req, respond, &in)) return;
  Server* server = in.server;
  Caller& caller = in.caller;
  Message& msg = in.msg;
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
  const std::string scope = server ? server->name : "";

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
      MutexLock lock(sessions_mu_);
      // Idle sessions end here too (at most once a second), not only when they are used again.
      auto now = SteadyClock::now();
      if (now - last_purge_ > std::chrono::seconds(1)) {
        last_purge_ = now;
        std::vector<std::string> ids;
        for (const auto& [id, _] : sessions_) ids.push_back(id);
        for (const auto& id : ids) ExpireIfIdle(id);
      }
      size_t mine = 0;
      for (const auto& [_, m] : sessions_) mine += m.sid == caller.access.session.sid;
      if (mine >= options_.max_sessions_per_custody_session) {
        respond(RpcResponse(
            429, ErrorText(msg.id, kDenied,
                           "this Custody session already has " + std::to_string(mine) +
                               " MCP sessions (mcp.max_sessions_per_custody_session); end one "
                               "with DELETE before starting another")));
        return;
      }
      sessions_[session_id] = McpSession{
          scope, caller.access.session.sid, caller.access.session.agent, version, nullptr, now};
    }
    json::object result{
        {"protocolVersion", version},
        {"capabilities", json::object{{"tools", json::object{{"listChanged", true}}}}},
        {"serverInfo", json::object{{"name", server ? "custody-gateway/" + scope
                                                    : std::string("custody-gateway")},
                                    {"version", "0.1.0"}}},
        {"instructions",
         std::string(
             server ? "" : "Tools of every server behind this gateway, named <server>__<tool>. ") +
             "Tool calls through this gateway are authorized by policy and recorded by Custody; "
             "results carry a receipt under _meta[\"dev.custody/receipt\"]."}};
    Response r = RpcResponse(200, ResultText(msg.id, std::move(result)));
    r.headers.Set("mcp-session-id", session_id);
    respond(std::move(r));
    return;
  }

  if (caller.session_id.empty()) {
    respond(RpcResponse(400, ErrorText(msg.id, kInvalidRequest,
                                       "Mcp-Session-Id is required (send initialize first)")));
    return;
  }
  {
    MutexLock lock(sessions_mu_);
    std::string why = "unknown or ended MCP session";
    McpSession* m = UseSession(caller.session_id, &why);
    if (!m || m->server != scope) {
      respond(RpcResponse(404, ErrorText(msg.id, kInvalidRequest, why)));
      return;
    }
    if (m->sid != caller.access.session.sid) {
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
        std::pair<Upstream*, int64_t> cancel{nullptr, 0};
        {
          MutexLock lock(sessions_mu_);
          auto it = inflight_.find({caller.session_id, json::serialize(rid->value())});
          if (it != inflight_.end()) {
            if (it->second.upstream_id != 0) {
              cancel = {it->second.server->upstream.get(), it->second.upstream_id};
            } else {
              it->second.cancel_reason = "cancelled by the client";
            }
          }
        }
        if (cancel.first) cancel.first->Cancel(cancel.second, "cancelled by the client");
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
    if (server) {
      HandleToolsCall(*server, caller, msg.id, std::move(params), std::move(respond));
      return;
    }
    // The aggregate endpoint: "<server>__<tool>", the longest configured server name wins.
    auto n = params.find("name");
    std::string name = n != params.end() && n->value().is_string()
                           ? std::string(n->value().get_string())
                           : std::string();
    Server* target = nullptr;
    for (auto& [sname, s] : servers_) {
      std::string prefix = sname + std::string(kToolSeparator);
      if (name.size() > prefix.size() && name.starts_with(prefix) &&
          (!target || sname.size() > target->name.size())) {
        target = s.get();
      }
    }
    if (!target) {
      respond(RpcResponse(
          200, ErrorText(msg.id, kInvalidParams,
                         "unknown tool: " + name + " (tools on /mcp are named <server>__<tool>)")));
      return;
    }
    params["name"] = name.substr(target->name.size() + kToolSeparator.size());
    HandleToolsCall(*target, caller, msg.id, std::move(params), std::move(respond));
  } else {
    respond(RpcResponse(200, ErrorText(msg.id, kMethodNotFound,
                                       "method not found: " + msg.method +
                                           " (the Custody gateway passes tools only)")));
  }
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
  {
    MutexLock lock(sessions_mu_);
    std::string why = "unknown or ended MCP session";
    McpSession* m = UseSession(in.caller.session_id, &why);
    if (!m || m->server != scope) {
      respond(RpcResponse(404, ErrorText(nullptr, kInvalidRequest, why)));
      return;
    }
    if (m->sid != in.caller.access.session.sid) {
      respond(RpcResponse(
          403, ErrorText(nullptr, kDenied, "this MCP session belongs to another Custody session")));
      return;
    }
    old = std::exchange(m->stream, sink);
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
  const std::string mcp_session(*session_header);
  std::shared_ptr<SseSink> stream;
  std::vector<std::pair<Upstream*, int64_t>> cancels;
  {
    MutexLock lock(sessions_mu_);
    ExpireIfIdle(mcp_session);
    auto it = sessions_.find(mcp_session);
    if (it == sessions_.end() || it->second.server != scope) {
      respond(
          RpcResponse(404, ErrorText(nullptr, kInvalidRequest, "unknown or ended MCP session")));
      return;
    }
    if (it->second.sid != sid) {
      respond(RpcResponse(
          403, ErrorText(nullptr, kDenied, "this MCP session belongs to another Custody session")));
      return;
    }
    stream = std::move(it->second.stream);
    sessions_.erase(it);
    cancels = TakeCancels(mcp_session, nullptr, "the client ended the MCP session");
  }
  if (stream) stream->Close();
  for (auto& [upstream, id] : cancels) upstream->Cancel(id, "the client ended the MCP session");
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
    if (!obs.ok()) {
      // The tool stays unapproved (its calls are refused) until the store answers again.
      ReportUpstream(options_.upstream, "mcp.tool_pin_store",
                     obs.status().WithContext("tool pin store, server " + server.name));
    }
    if (obs.ok() && obs->newly_changed) {
      json::object ev = events::Build(
          events::ToolDefinitionChange{ids_.NextString(), FormatRfc3339Millis(clock_.Now()),
                                       server.name, name, obs->approved_hash, *hash, "mcp"});
      Status s = events_ ? events_(json::serialize(ev)) : OkStatus();
      LogUpstream(options_.upstream, LogLevel::kWarn, server.name,
                  "definition of tool " + name + " changed (approved " + obs->approved_hash +
                      ", now " + *hash + "); calls refused until approved");
      if (!s.ok()) {
        ReportUpstream(options_.upstream, "mcp.definition_change_record",
                       s.WithContext("recording the changed definition of " + name));
      }
    }
    out[name] = *hash;
    MutexLock lock(server.mu);
    server.tools[name] = Server::ToolState{*hash, approved};
  }
  return out;
}

void Gateway::ListVisible(Server& server, const identity::Session& session, json::value cursor,
                          bool all_pages, std::function<void(Result<json::object>)> done) {
  struct State {
    json::object first;  // the first page's result (other members kept)
    json::array tools;
    int pages = 0;
  };
  auto state = std::make_shared<State>();
  auto page = std::make_shared<std::function<void(json::value)>>();
  // The recursion holds `page` only through the upstream callbacks it schedules; the last page
  // clears it.
  *page = [this, &server, session, all_pages, done, state, page](json::value cur) {
    json::object fwd;
    if (!cur.is_null()) fwd["cursor"] = cur;
    server.upstream->Call(
        "tools/list", std::move(fwd),
        [this, &server, session, all_pages, done, state, page](Result<json::object> r) {
          auto finish = [&](Result<json::object> out) {
            *page = nullptr;
            done(std::move(out));
          };
          if (!r.ok()) return finish(r.status());
          if (auto e = r->find("error"); e != r->end()) {
            std::string why = "upstream " + server.name + " refused tools/list: ";
            if (e->value().is_object()) {
              auto m = e->value().get_object().find("message");
              why += m != e->value().get_object().end() && m->value().is_string()
                         ? std::string(m->value().get_string())
                         : json::serialize(e->value());
            }
            return finish(UnavailableError(why));
          }
          auto res = r->find("result");
          if (res == r->end() || !res->value().is_object()) {
            return finish(
                InternalError("malformed tools/list answer from upstream " + server.name));
          }
          json::object& result = res->value().as_object();
          if (state->pages++ == 0) state->first = result;
          json::array tools;
          if (auto t = result.find("tools"); t != result.end() && t->value().is_array()) {
            tools = t->value().get_array();
          }
          auto hashes = PinTools(server, tools);
          for (auto& t : tools) {
            if (!t.is_object()) continue;
            auto n = t.get_object().find("name");
            if (n == t.get_object().end() || !n->value().is_string()) continue;
            attribution::Target target;
            target.server = server.name;
            target.tool = std::string(n->value().get_string());
            auto allowed = attribution_.WouldAllow(session, "call_tool", target,
                                                   {{"definition_hash", hashes[target.tool]}});
            if (allowed.ok() && *allowed) state->tools.push_back(std::move(t));
          }
          auto next = result.find("nextCursor");
          bool more = next != result.end() && next->value().is_string() &&
                      !next->value().get_string().empty();
          if (all_pages && more && state->pages < 100) {
            json::value c = next->value();
            (*page)(std::move(c));
            return;
          }
          json::object out = all_pages ? json::object{} : state->first;
          if (all_pages) {
            out.erase("nextCursor");
          } else if (more) {
            out["nextCursor"] = next->value();
          }
          out["tools"] = std::move(state->tools);
          finish(std::move(out));
        });
  };
  (*page)(std::move(cursor));
}

void Gateway::HandleToolsList(Server* server, const Caller& caller, json::value id,
                              json::object params, Responder respond) {
  const identity::Session& session = caller.access.session;
  if (server) {
    json::value cursor = nullptr;
    if (auto it = params.find("cursor"); it != params.end()) cursor = it->value();
    ListVisible(*server, session, std::move(cursor), false, [id, respond](Result<json::object> r) {
      if (!r.ok()) {
        respond(RpcResponse(
            200, ErrorText(id, JsonRpcCodeFor(r.status().code()), r.status().message())));
        return;
      }
      respond(RpcResponse(200, ResultText(id, std::move(*r))));
    });
    return;
  }
  // The aggregate endpoint: every server's tools (all pages), named <server>__<tool>. A server
  // that cannot list right now is left out (and logged) rather than failing the whole list.
  if (servers_.empty()) {
    respond(RpcResponse(200, ResultText(id, json::object{{"tools", json::array{}}})));
    return;
  }
  struct Gather {
    explicit Gather(size_t servers) : left(servers) {}
    Mutex mu;
    size_t left GUARDED_BY(mu);                               // servers still to answer
    std::map<std::string, json::array> tools GUARDED_BY(mu);  // by server: a stable order
  };
  auto g = std::make_shared<Gather>(servers_.size());
  for (auto& [name, s] : servers_) {
    ListVisible(
        *s, session, nullptr, true, [this, g, id, respond, sname = name](Result<json::object> r) {
          json::array mine;
          if (r.ok()) {
            if (auto t = r->find("tools"); t != r->end() && t->value().is_array()) {
              for (auto& tool : t->value().as_array()) {
                json::object& o = tool.as_object();
                o["name"] =
                    sname + std::string(kToolSeparator) + std::string(o["name"].as_string());
                mine.push_back(std::move(tool));
              }
            }
          } else {
            LogUpstream(options_.upstream, LogLevel::kWarn, sname,
                        "left out of the aggregate tools/list: " + r.status().message());
          }
          MutexLock lock(g->mu);
          g->tools[sname] = std::move(mine);
          if (--g->left != 0) return;
          json::array all;
          for (auto& [_, list] : g->tools) {
            for (auto& t : list) all.push_back(std::move(t));
          }
          respond(RpcResponse(200, ResultText(id, json::object{{"tools", std::move(all)}})));
        });
  }
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
      MutexLock lock(s.mu);
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
                          {"reasons", StringArray(r->reasons)},
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
    MutexLock lock(server.mu);
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
  Server& s = *call->server;
  call->key = {call->caller.session_id, json::serialize(call->id)};
  // Registered before anything is sent, under the lock OnRevoked takes: a session contained
  // after its decision but before this point is caught here, and one contained later finds
  // the call in inflight_.
  bool session_ended = false;
  {
    MutexLock lock(sessions_mu_);
    if (sessions_.find(call->caller.session_id) == sessions_.end()) {
      session_ended = true;
    } else {
      inflight_[call->key] = Inflight{&s, 0, call->caller.access.session.sid, ""};
    }
  }
  if (session_ended) {
    // Contained (or ended) between the decision and the forward: nothing goes upstream. Not
    // under sessions_mu_: FinishCall's answer takes it (it used to deadlock here).
    FinishCall(call, UnavailableError("cancelled before forwarding: the MCP session ended"));
    return;
  }
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
    {
      MutexLock lock(s.mu);
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
  int64_t upstream_id =
      s.upstream->Call("tools/call", std::move(fwd), [this, call](Result<json::object> r) {
        {
          MutexLock lock(sessions_mu_);
          inflight_.erase(call->key);
        }
        FinishCall(call, std::move(r));
      });
  std::string cancel;
  {
    MutexLock lock(sessions_mu_);
    auto it = inflight_.find(call->key);
    if (it == inflight_.end() || upstream_id == 0) return;  // already answered
    it->second.upstream_id = upstream_id;
    cancel = it->second.cancel_reason;
  }
  if (!cancel.empty()) s.upstream->Cancel(upstream_id, cancel);
}

void Gateway::FinishCall(std::shared_ptr<Call> call, Result<json::object> r) {
  int64_t latency_ms = call->forwarded == SteadyClock::time_point{}
                           ? 0
                           : std::chrono::duration_cast<std::chrono::milliseconds>(
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
  // The receipt: the decision's (durable before forwarding), and the outcome's event id; with
  // await_outcome, the outcome's inclusion proof too.
  // Complete refuses a longer error (as it must for callers of its API); the gateway's own
  // outcome is clipped instead, so it is never lost, with or without await_outcome.
  c.error = Clip(std::move(c.error), 4096);
  auto answer = [this, call, out](json::object outcome) {
    json::object receipt{{"action_id", call->decision.action_id},
                         {"decision", "allow"},
                         {"reasons", StringArray(call->decision.reasons)},
                         {"policy_hash", call->decision.policy_hash},
                         {"ledger_index", call->decision.ledger_index},
                         {"receipt", call->decision.receipt},
                         {"traceparent", call->decision.traceparent},
                         {"definition_hash", call->hash},
                         {"outcome", std::move(outcome)}};
    // Contained while the call ran (OnRevoked ended its MCP session): the outcome is recorded,
    // but the result is withheld. No second token verification: the revocation listener has
    // already told us.
    bool contained;
    {
      MutexLock lock(sessions_mu_);
      contained =
          !sessions_.count(call->caller.session_id) && ended_.count(call->caller.session_id) > 0;
    }
    if (contained) {
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
  };
  if (options_.await_outcome) {
    attribution_.Complete(std::move(c), [answer](Result<CompleteResult> cr) {
      if (cr.ok()) {
        answer(json::object{{"event_id", cr->event_id},
                            {"ledger_index", cr->ledger_index},
                            {"receipt", cr->receipt}});
      } else {
        answer(json::object{{"error", cr.status().ToString()}});
      }
    });
    return;
  }
  // The answer leaves first, naming the outcome's event id; the outcome event is built and
  // queued after it, off the caller's wait. The caller's token was verified at admission, so
  // Complete does not verify it again (a session contained since still gets its outcome).
  c.event_id = attribution_.NewEventId();
  c.verified = &call->caller.access;
  answer(json::object{{"event_id", c.event_id}, {"durable", false}});
  std::string action = call->decision.action_id;
  // The callback may run after the gateway is gone (the ledger's sequencer runs it): it holds
  // the reporter, which outlives both, not the gateway.
  attribution_.Complete(
      std::move(c), [upstream = options_.upstream, action](Result<CompleteResult> cr) {
        if (!cr.ok()) {
          ReportUpstream(upstream, "mcp.outcome_record",
                         cr.status().WithContext("recording the outcome of " + action));
        }
      });
}

void Gateway::Reply(Call& call, int http_status, std::string body) {
  if (!call.sse) {
    call.respond(RpcResponse(http_status, std::move(body)));
    return;
  }
  {
    MutexLock lock(call.server->mu);
    call.server->progress.erase(call.progress_token);
  }
  call.sse->Send(body, /*last=*/true);
}

void Gateway::OnUpstreamNotification(Server& server, const json::object& message) {
  auto m = message.find("method");
  if (m == message.end() || !m->value().is_string()) return;
  std::string_view method = m->value().get_string();
  if (method == "notifications/tools/list_changed") {
    // Every session that sees this server and has its GET stream open hears of it.
    std::string text = json::serialize(
        json::object{{"jsonrpc", "2.0"}, {"method", "notifications/tools/list_changed"}});
    std::vector<std::shared_ptr<SseSink>> sinks;
    {
      MutexLock lock(sessions_mu_);
      for (auto& [_, sess] : sessions_) {
        if (sess.stream && (sess.server.empty() || sess.server == server.name)) {
          sinks.push_back(sess.stream);
        }
      }
    }
    for (auto& sink : sinks) sink->Send(text);
    return;
  }
  if (method != "notifications/progress") return;  // logging etc.: only tools pass the gateway
  auto p = message.find("params");
  if (p == message.end() || !p->value().is_object()) return;
  auto t = p->value().get_object().find("progressToken");
  if (t == p->value().get_object().end() || !t->value().is_string()) return;
  Server::Progress target;
  {
    MutexLock lock(server.mu);
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
  json::object ev = events::Build(events::ToolApprove{
      ids_.NextString(), FormatRfc3339Millis(clock_.Now()), server, tool, hash, by});
  if (events_) RETURN_IF_ERROR(events_(json::serialize(ev)));
  if (auto it = servers_.find(server); it != servers_.end()) {
    MutexLock lock(it->second->mu);
    auto t = it->second->tools.find(tool);
    if (t != it->second->tools.end() && t->second.hash == hash) t->second.approved = true;
  }
  return OkStatus();
}

Status Gateway::AddRoutes(http::Router& router, const http::AuthRequirement& read_auth) {
  for (const char* pattern : {"/mcp", "/mcp/{server}"}) {
    RETURN_IF_ERROR(router.Add(http::Route{
        "POST", pattern,
        [this](Request& req, Responder respond) { HandlePost(req, std::move(respond)); },
        http::AuthRequirement::None(), ""}));
    RETURN_IF_ERROR(router.Add(
        http::Route{"GET", pattern,
                    [this](Request& req, Responder respond) { HandleGet(req, std::move(respond)); },
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
  for (const char* path :
       {"/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp",
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

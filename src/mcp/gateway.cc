// The gateway's composition: servers and their upstreams, start and stop, upstream
// notifications, and the containment listener. The other parts are listed in gateway.h.
#include "mcp/gateway.h"

#include <thread>

#include "mcp/gateway_internal.h"
#include "mcp/subscriptions.h"

namespace custody::mcp {

Gateway::Gateway(identity::TokenService& tokens, attribution::AttributionService& attribution,
                 ToolPinStore& pins, EventSink events, const Clock& clock, Random& random,
                 GatewayOptions options)
    : tokens_(tokens),
      attribution_(attribution),
      options_(std::move(options)),
      random_(random),
      clock_(clock),
      catalog_(pins, std::move(events), clock, random, options_.upstream),
      sessions_(std::make_unique<SessionRegistry>(options_.session_idle_timeout,
                                                  options_.max_sessions_per_custody_session)),
      relay_(std::make_unique<Relay>()),
      subs_(std::make_unique<Subscriptions>()) {
  // The holds' thread only where calls may be held.
  if (options_.approval_hold.count() > 0) holds_ = std::make_unique<ApprovalHolds>();
  if (!options_.await_outcome && options_.outcome_linger.count() > 0) {
    trailing_ = std::make_unique<TrailingOutcomes>(options_.outcome_linger);
  }
}

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
    if (cfg.identity != kIdentityNone && cfg.identity != kIdentityTxnToken) {
      return InvalidArgumentError("mcp.servers." + cfg.name +
                                  ".identity must be \"none\" or \"txn-token\"");
    }
    s->txn_tokens = cfg.identity == kIdentityTxnToken;
    s->txn_audience = cfg.txn_audience.empty() ? DefaultTxnAudience(cfg) : cfg.txn_audience;
    UpstreamOptions uo = g->options_.upstream;
    uo.on_notification = [gw = g.get(), server = s.get()](const json::object& m, int64_t related) {
      gw->OnUpstreamNotification(*server, m, related);
    };
    uo.on_request = [gw = g.get(), server = s.get()](const json::object& m, int64_t related) {
      gw->OnUpstreamRequest(*server, m, related);
    };
    uo.on_requests_end = [gw = g.get(), server = s.get()](int64_t related) {
      gw->OnUpstreamRequestsEnd(*server, related);
    };
    ASSIGN_OR_RETURN(s->upstream, g->options_.make_upstream
                                      ? g->options_.make_upstream(std::move(cfg), std::move(uo))
                                      : MakeUpstream(std::move(cfg), std::move(uo)));
    g->servers_[s->name] = std::move(s);
  }
  if (g->options_.approval_changes) {
    MutexLock lock(g->options_.approval_changes->mu_);
    g->options_.approval_changes->gateway_ = g.get();
  }
  g->revocation_listener_ = tokens.AddRevocationListener(
      [gw = g.get()](const std::vector<std::string>& sids) { gw->OnRevoked(sids); });
  return g;
}

Gateway::~Gateway() {
  if (options_.approval_changes) {
    MutexLock lock(options_.approval_changes->mu_);
    options_.approval_changes->gateway_ = nullptr;
  }
  tokens_.RemoveRevocationListener(revocation_listener_);
  Stop();
}

void Gateway::Start() {
  for (auto& [_, s] : servers_) s->upstream->Start();
  // A client's initialize answers with what its server declared at its own handshake: wait for
  // those handshakes (bounded), so the first clients are not told of tools alone.
  const auto deadline = std::chrono::steady_clock::now() + options_.upstream_ready_wait;
  for (auto& [name, s] : servers_) {
    while (!s->upstream->ready() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (!s->upstream->ready()) {
      LogUpstream(options_.upstream, LogLevel::kWarn, name,
                  "not initialized yet; serving without it meanwhile (until it is, its "
                  "initialize answers declare tools only)");
    }
  }
}

void Gateway::Stop() {
  if (holds_) holds_->Stop();  // held calls answered, before their upstreams go
  for (auto& s : sessions_->TakeStreams()) s->Close();
  for (auto& [key, l] : subs_->TakeAll()) l.sink->Close();
  for (auto& [_, s] : servers_) s->upstream->Stop();
  // Every answered call's outcome queued (calls the upstreams' Stop answered too) before the
  // ledger that records them closes.
  if (trailing_) trailing_->Stop();
}

size_t Gateway::session_count() const { return sessions_->size(); }

Status Gateway::Approve(const std::string& server, const std::string& tool, const std::string& hash,
                        const std::string& by) {
  return catalog_.Approve(server, tool, hash, by);
}

void Gateway::OnRevoked(const std::vector<std::string>& sids) {
  const std::string reason = "the session was contained";
  const std::set<std::string> revoked(sids.begin(), sids.end());
  SessionRegistry::Ended ended = sessions_->EndSessionsOf(
      revoked,
      "the Custody session of this MCP session was revoked (contained); the MCP session is gone",
      reason);
  for (auto& s : ended.streams) s->Close();
  for (auto& [upstream, id] : ended.cancels) upstream->Cancel(id, reason);
  for (auto& [key, l] : subs_->TakeListenersOf(revoked)) {
    l.sink->Close();
    UnsubscribeUpstream(subs_->Drop(key));
  }
  if (ended.sessions || !ended.cancels.empty()) {
    LogUpstream(options_.upstream, LogLevel::kInfo, "",
                "contained: " + std::to_string(ended.sessions) + " MCP session(s) ended, " +
                    std::to_string(ended.streams.size()) + " stream(s) closed, " +
                    std::to_string(ended.cancels.size()) + " call(s) cancelled upstream");
  }
}

bool Gateway::LogWanted(const Call& call, const json::object& message) {
  if (!call.caller.modern) return true;  // a 2025-era client set its level upstream
  // A 2026-07-28 request asks for log messages in its own _meta, from a level up.
  const std::string& wanted = call.caller.modern->log_level;
  if (wanted.empty()) return false;
  const json::value* params = message.if_contains("params");
  const json::value* level =
      params && params->is_object() ? params->get_object().if_contains("level") : nullptr;
  return level && level->is_string() && LogSeverity(level->get_string()) >= LogSeverity(wanted);
}

void Gateway::OnUpstreamNotification(Server& server, const json::object& message, int64_t related) {
  auto m = message.find("method");
  if (m == message.end() || !m->value().is_string()) return;
  std::string_view method = m->value().get_string();
  if (method == "notifications/tools/list_changed" ||
      method == "notifications/prompts/list_changed" ||
      method == "notifications/resources/list_changed") {
    // Every session that sees this server (the aggregate ones: its tools only) and has its GET
    // stream open hears of it, and every listen stream that asked.
    const bool tools = method == "notifications/tools/list_changed";
    json::object n{{"jsonrpc", "2.0"}, {"method", m->value()}};
    std::string text = json::serialize(n);
    for (auto& sink : sessions_->StreamsSeeing(server.name, tools)) sink->Send(text);
    SendToListeners(server.name,
                    tools                                            ? "tools"
                    : method == "notifications/prompts/list_changed" ? "prompts"
                                                                     : "resources",
                    n);
    return;
  }
  if (method == "notifications/resources/updated") {
    OnResourceUpdated(server, message);
    return;
  }
  if (method == "notifications/message") {
    // A log message: to the client whose call it came during, never to another.
    auto route = relay_->Find(server.name, related);
    if (route.ok() && !LogWanted(static_cast<Call&>(*route->target), message)) return;
    if (!route.ok() || !route->target->Deliver(json::serialize(message))) {
      LogUpstream(options_.upstream, LogLevel::kDebug, server.name,
                  "dropped a log message: " +
                      (route.ok() ? std::string("the call has ended") : route.status().message()));
    }
    return;
  }
  if (method != "notifications/progress") return;  // the rest does not pass the gateway
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
  auto call = target.call.lock();
  if (!call) return;
  json::object out = message;
  out["params"].as_object()["progressToken"] = target.client_token;
  call->Deliver(json::serialize(out));
}

}  // namespace custody::mcp

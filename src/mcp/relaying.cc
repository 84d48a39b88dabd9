// The server's requests to the client and its log messages, relayed on the call they came
// during (relay.h says how that call is found), the client's answers passed back, and every
// exchange recorded with the call's outcome.
#include <boost/json.hpp>

#include "common/encoding.h"
#include "common/json_array.h"
#include "common/json_parse.h"
#include "mcp/gateway.h"
#include "mcp/gateway_internal.h"

namespace custody::mcp {

using attribution::RelayedExchange;
using http::Responder;
using http::Response;

namespace {

// The client capability a server request needs (as SessionRegistry keeps them), or "" when the
// method is not one the gateway knows (it is relayed; the client answers for itself).
std::string NeededCapability(std::string_view method, const json::object& params) {
  if (method == "sampling/createMessage") return "sampling";
  if (method == "roots/list") return "roots";
  if (method == "elicitation/create") {
    auto mode = params.find("mode");
    bool url =
        mode != params.end() && mode->value().is_string() && mode->value().get_string() == "url";
    return url ? "elicitation.url" : "elicitation.form";
  }
  return "";
}

// Who was asked, as recorded: the MCP session, or "stateless" for a 2026-07-28 request (its
// decision records its clientInfo).
std::string Asked(const std::string& key) {
  return SessionRegistry::IsStateless(key) ? "stateless" : key;
}

json::object ErrorAnswer(int code, std::string message) {
  return json::object{{"error", json::object{{"code", code}, {"message", std::move(message)}}}};
}

}  // namespace

std::set<std::string, std::less<>> ClientCapabilities(const json::object& initialize_params) {
  std::set<std::string, std::less<>> out;
  auto c = initialize_params.find("capabilities");
  if (c == initialize_params.end() || !c->value().is_object()) return out;
  for (const auto& [name, value] : c->value().get_object()) {
    if (name != "elicitation") {
      out.emplace(name);
      continue;
    }
    // An empty elicitation object means form mode (the only mode before 2025-11-25).
    const json::object* modes = value.if_object();
    bool form = !modes || modes->empty() || modes->contains("form");
    if (form) out.emplace("elicitation.form");
    if (modes && modes->contains("url")) out.emplace("elicitation.url");
  }
  return out;
}

std::shared_ptr<SseSink> Gateway::Call::OpenStream() {
  std::shared_ptr<SseSink> sink;
  http::Responder to;
  {
    MutexLock lock(mu_);
    if (phase_ != Phase::kOpen || !caller.accepts_sse) return nullptr;
    if (sse_) return sse_;
    sse_ = sink = std::make_shared<SseSink>();
    if (on_stream_gone) sink->OnPeerGone(on_stream_gone);
    to = std::move(respond);  // the HTTP response is the stream now
  }
  // Only here, once per HTTP request: the last message goes on the stream from now on. Events
  // sent before the HTTP server attaches the writer wait in the sink.
  Response r;
  r.status = 200;
  r.sse = [sink](std::shared_ptr<http::SseWriter> w) { sink->Attach(std::move(w)); };
  to(std::move(r));
  return sink;
}

bool Gateway::Call::Deliver(const std::string& message) {
  std::shared_ptr<SseSink> sink = OpenStream();
  return sink && sink->Send(message);
}

void Gateway::Call::Answer(int http_status, std::string body) {
  std::shared_ptr<SseSink> sink;
  http::Responder to;
  json::value id;
  {
    MutexLock lock(mu_);
    if (phase_ != Phase::kOpen) {
      phase_ = Phase::kDone;  // parked: nobody is waiting for this answer any more
      return;
    }
    phase_ = Phase::kDone;
    sink = sse_;
    if (!sink) to = std::move(respond);
    id = reply_id_;
  }
  if (!id.is_null()) {  // a retry's answer carries the retry's id
    boost::system::error_code ec;
    json::value v = ParseJson(body, ec);
    if (!ec && v.is_object()) {
      v.get_object()["id"] = id;
      body = json::serialize(v);
    }
  }
  SendLast(std::move(sink), std::move(to), http_status, std::move(body));
}

bool Gateway::Call::Park(json::object result) {
  std::shared_ptr<SseSink> sink;
  http::Responder to;
  json::value reply;
  {
    MutexLock lock(mu_);
    if (phase_ != Phase::kOpen) return false;
    phase_ = Phase::kParked;
    sink = std::exchange(sse_, nullptr);
    if (!sink) to = std::move(respond);
    reply = reply_id_.is_null() ? id : reply_id_;
  }
  SendLast(std::move(sink), std::move(to), 200, ResultText(reply, std::move(result)));
  return true;
}

bool Gateway::Call::Rebind(json::value retry_id, http::Responder to) {
  MutexLock lock(mu_);
  if (phase_ != Phase::kParked) return false;
  phase_ = Phase::kOpen;
  reply_id_ = std::move(retry_id);
  respond = std::move(to);
  return true;
}

void Gateway::Call::SendLast(std::shared_ptr<SseSink> sink, http::Responder to, int http_status,
                             std::string body) {
  if (!sink) {
    to(RpcResponse(http_status, std::move(body)));  // a modern caller's responder shapes it
    return;
  }
  if (caller.modern) {  // the last message of a stream is in the revision's shape too
    body = ModernBody(std::move(body), CacheableMethod(method), ServerInfo(server));
  }
  sink->Send(body, /*last=*/true);
}

void Gateway::Call::Exchanged(RelayedExchange x) {
  MutexLock lock(mu_);
  exchanges_.push_back(std::move(x));
}

std::vector<RelayedExchange> Gateway::Call::TakeExchanges() {
  MutexLock lock(mu_);
  return std::move(exchanges_);
}

void Gateway::OnUpstreamRequest(Server& server, const json::object& request, int64_t related) {
  const json::value& upstream_id = request.at("id");
  std::string method(request.at("method").as_string());
  json::object params;
  if (auto p = request.find("params"); p != request.end() && p->value().is_object()) {
    params = p->value().get_object();
  }
  auto route = relay_->Find(server.name, related);
  if (!route.ok()) {
    server.upstream->Respond(
        upstream_id, ErrorAnswer(kInternalError, "the Custody gateway cannot relay " + method +
                                                     ": " + route.status().message()));
    LogUpstream(options_.upstream, LogLevel::kInfo, server.name,
                "refused to relay " + method + ": " + route.status().message());
    return;
  }
  auto& call = static_cast<Call&>(*route->target);  // the relay's targets are calls
  RelayedExchange x{method, Asked(route->mcp_session), json::serialize(params), "", "refused", ""};
  // Recorded before the server hears the answer: its result may end the call (and take the
  // call's exchanges for the outcome) on another thread at once.
  auto refuse = [&](int code, const std::string& why) {
    x.note = why;
    call.Exchanged(std::move(x));
    server.upstream->Respond(upstream_id, ErrorAnswer(code, why));
  };
  // What the client declared: at initialize (its MCP session), or in this very request (2026).
  if (std::string need = NeededCapability(method, params);
      !need.empty() &&
      !(call.caller.modern
            ? ClientCapabilities(json::object{{"capabilities", call.caller.modern->capabilities}})
                      .count(need) > 0
            : sessions_->ClientDeclared(route->mcp_session, need))) {
    refuse(kMethodNotFound, "the client did not declare the " + need + " capability");
    return;
  }
  // A 2026-07-28 server's request carries its own key (upstream_era.h): a 2026-07-28 client
  // sees that key.
  const json::value* key = request.if_contains("inputKey");
  RelayedRequest r =
      relay_->Add(*route, json::serialize(upstream_id), method, json::serialize(params),
                  key && key->is_string() ? std::string(key->get_string()) : "");
  if (call.caller.modern) {
    // 2026-07-28 allows no request to the client on any stream: it is asked in an
    // input_required result, and answers in its retry of the same request. A 2026-07-28
    // server's requests come as a round: asked together when the round ends.
    if (!server.upstream->modern()) AskModern(call);
    return;
  }
  json::object out{{"jsonrpc", "2.0"}, {"id", r.id}, {"method", method}};
  if (request.contains("params")) out["params"] = std::move(params);
  if (!call.Deliver(json::serialize(out))) {
    // Answered meanwhile, or the client takes no event stream: it cannot be asked.
    if (relay_->Take(r.mcp_session, r.id).ok()) {
      refuse(kInternalError,
             "the client cannot be asked: " +
                 std::string(call.caller.accepts_sse ? "the call it came during has been answered"
                                                     : "it does not accept an event stream"));
    }
  }
}

json::object Gateway::RelayedCapabilities(const Call& call) const {
  std::set<std::string, std::less<>> modern;  // a 2026-07-28 caller's, read once
  if (call.caller.modern) {
    modern = ClientCapabilities(json::object{{"capabilities", call.caller.modern->capabilities}});
  }
  auto declared = [&](std::string_view name) {
    return call.caller.modern ? modern.contains(name)
                              : sessions_->ClientDeclared(call.key.first, name);
  };
  json::object out;
  if (declared("sampling")) out["sampling"] = json::object{};
  if (declared("roots")) out["roots"] = json::object{};
  json::object elicitation;
  if (declared("elicitation.form")) elicitation["form"] = json::object{};
  if (declared("elicitation.url")) elicitation["url"] = json::object{};
  if (!elicitation.empty()) out["elicitation"] = std::move(elicitation);
  return out;
}

void Gateway::OnUpstreamRequestsEnd(Server& server, int64_t related) {
  auto route = relay_->Find(server.name, related);
  if (!route.ok()) return;  // the call ended meanwhile: its requests were answered upstream
  auto& call = static_cast<Call&>(*route->target);
  if (call.caller.modern) AskModern(call);
}

void Gateway::AskModern(Call& call) {
  std::vector<RelayedRequest> waiting = relay_->Waiting(call.relay_call);
  if (waiting.empty()) return;
  json::object requests;
  for (const RelayedRequest& r : waiting) {
    json::object q{{"method", r.method}};
    boost::system::error_code ec;
    if (json::value p = ParseJson(r.params, ec); !ec && p.is_object() && !p.get_object().empty()) {
      q["params"] = std::move(p);
    }
    requests[r.key] = std::move(q);
  }
  uint8_t raw[32];
  random_.Fill(raw);
  std::string state = Base64UrlEncode(std::span<const uint8_t>(raw, sizeof raw));
  relay_->Park(state, Relay::Parked{call.relay_call, call.caller.access.session.sid, call.method});
  json::object result{{"resultType", "input_required"},
                      {"inputRequests", std::move(requests)},
                      {"requestState", state}};
  // Parked already (this request will be asked again at the retry) or answered: no new state.
  if (!call.Park(std::move(result))) relay_->Unpark(state);
}

void Gateway::HandleRetry(const Caller& caller, const Message& msg, const json::object& params,
                          Responder respond) {
  auto refuse = [&](const std::string& why) {
    respond(RpcResponse(200, ErrorText(msg.id, kInvalidParams, "params.requestState " + why)));
  };
  auto parked = relay_->Unpark(StringField(params, "requestState"));
  if (!parked || parked->sid != caller.access.session.sid || parked->method != msg.method) {
    refuse(
        "is not one this gateway issued for this session and method (or it was used "
        "already, or its call has ended)");
    return;
  }
  auto call = std::static_pointer_cast<Call>(relay_->TargetOf(parked->call));
  if (!call || !call->Rebind(msg.id, respond)) {
    refuse("names a call that has ended");
    return;
  }
  const json::value* given = params.if_contains("inputResponses");
  const json::object* answers = given ? given->if_object() : nullptr;
  for (const RelayedRequest& r : relay_->Waiting(parked->call)) {
    const json::value* answer = answers ? answers->if_contains(r.key) : nullptr;
    if (!answer || !relay_->Take(r.mcp_session, r.id).ok()) continue;
    call->Exchanged(RelayedExchange{r.method, Asked(r.mcp_session), r.params, JsonDigest(*answer),
                                    "answered", ""});
    call->server->upstream->Respond(ParseJson(r.upstream_id), json::object{{"result", *answer}});
  }
  AskModern(*call);  // what is still unanswered (or was asked meanwhile) is asked again
}

void Gateway::HandleClientResponse(const Caller& caller, const Message& msg, Responder respond) {
  std::string id = msg.id.is_string() ? std::string(msg.id.get_string()) : json::serialize(msg.id);
  auto r = relay_->Take(caller.session_id, id);
  if (!r.ok()) {
    respond(RpcResponse(400, ErrorText(nullptr, kInvalidRequest, r.status().message())));
    return;
  }
  auto& call = static_cast<Call&>(*r->target);
  json::object answer;
  RelayedExchange x{r->method, Asked(r->mcp_session), r->params, "", "answered", ""};
  if (auto e = msg.obj.find("error"); e != msg.obj.end()) {
    answer["error"] = e->value();
    x.status = "error";
    x.answer_digest = JsonDigest(e->value());
  } else {
    const json::value& result = msg.obj.at("result");
    answer["result"] = result;
    x.answer_digest = JsonDigest(result);
  }
  call.Exchanged(std::move(x));  // before the server hears it (see OnUpstreamRequest)
  call.server->upstream->Respond(ParseJson(r->upstream_id), std::move(answer));
  respond(Response::Text(202, ""));
}

void Gateway::EndRelay(Call& call) {
  for (RelayedRequest& r : relay_->End(call.relay_call)) {
    const std::string why = "the call ended before the client answered";
    call.Deliver(json::serialize(
        json::object{{"jsonrpc", "2.0"},
                     {"method", "notifications/cancelled"},
                     {"params", json::object{{"requestId", r.id}, {"reason", why}}}}));
    call.Exchanged(
        RelayedExchange{r.method, Asked(r.mcp_session), r.params, "", "unanswered", why});
    call.server->upstream->Respond(ParseJson(r.upstream_id), ErrorAnswer(kInternalError, why));
  }
}

}  // namespace custody::mcp

// Resource subscriptions and list changes, for both eras (subscriptions.h): a 2025-era MCP
// session's resources/subscribe and unsubscribe, a 2026-07-28 client's subscriptions/listen
// stream, and the upstream's notifications fanned out to those who asked, never to others.
#include <boost/json.hpp>

#include "common/json_parse.h"
#include "common/uri.h"
#include "mcp/gateway.h"
#include "mcp/gateway_internal.h"
#include "mcp/subscriptions.h"

namespace custody::mcp {

using http::Responder;
using http::Response;

namespace {

constexpr std::string_view kSubscriptionId = "io.modelcontextprotocol/subscriptionId";

// `message` (a notification object) tagged for listener `l`: params._meta carries its
// subscriptionId.
std::string Tagged(json::object message, const Listener& l) {
  json::value& params = message["params"];
  if (!params.is_object()) params = json::object{};
  json::value& meta = params.get_object()["_meta"];
  if (!meta.is_object()) meta = json::object{};
  meta.get_object()[kSubscriptionId] = ParseJson(l.id_json);
  return json::serialize(message);
}

}  // namespace

void Gateway::HandleResourceSubscription(Server& server, const Caller& caller,
                                         const std::string& method, json::value id,
                                         json::object params, Responder respond) {
  auto uri = CanonicalUri(params);
  if (!uri.ok()) {
    respond(RpcResponse(200, ErrorText(id, kInvalidParams, uri.status().message())));
    return;
  }
  const bool subscribe = method == "resources/subscribe";
  // A subscription only to a resource the caller could read (as resources/list shows it).
  if (subscribe && !MayRead(server, caller, *uri)) {
    respond(RpcResponse(
        200,
        ErrorText(id, kDenied, "denied by Custody policy: this session may not read " + *uri)));
    return;
  }
  // The upstream session is every client's: it is subscribed for the first subscriber of a URI
  // and unsubscribed after the last; the others are answered here.
  const bool upstream = subscribe ? subs_->Subscribe(server.name, *uri, caller.session_id)
                                  : subs_->Unsubscribe(server.name, *uri, caller.session_id);
  if (!upstream) {
    respond(RpcResponse(200, ResultText(id, json::object{})));
    return;
  }
  params["uri"] = *uri;
  server.upstream->Call(method, std::move(params),
                        [this, &server, subscribe, uri = *uri, who = caller.session_id,
                         id = std::move(id), respond = std::move(respond)](Result<json::object> r) {
                          if (subscribe && (!r.ok() || r->contains("error"))) {
                            subs_->Unsubscribe(server.name, uri, who);  // it did not take
                          }
                          respond(UpstreamAnswer(id, r));
                        });
}

void Gateway::UnsubscribeUpstream(const std::vector<std::pair<std::string, std::string>>& left) {
  for (const auto& [name, uri] : left) {
    auto it = servers_.find(name);
    if (it == servers_.end()) continue;
    it->second->upstream->Call("resources/unsubscribe", json::object{{"uri", uri}},
                               [](Result<json::object>) {});  // best effort
  }
}

void Gateway::HandleListen(Server* server, const Caller& caller, const json::value& id,
                           const json::object& params, Responder respond) {
  if (!caller.accepts_sse) {
    respond(RpcResponse(400, ErrorText(id, kInvalidRequest,
                                       "subscriptions/listen answers with an event stream: "
                                       "Accept must list text/event-stream")));
    return;
  }
  const json::value* asked = params.if_contains("notifications");
  if (!asked || !asked->is_object()) {
    respond(
        RpcResponse(200, ErrorText(id, kInvalidParams, "params.notifications must be an object")));
    return;
  }
  const json::object& want = asked->get_object();
  auto flag = [&](std::string_view name) {
    const json::value* v = want.if_contains(name);
    return v && v->is_bool() && v->get_bool();
  };
  // What is honoured: tool list changes everywhere; prompt and resource list changes and
  // resource subscriptions where the server behind has them, for resources the caller could
  // read. The acknowledgement names exactly that.
  ListenFilter f;
  f.tools = flag("toolsListChanged");
  f.prompts = flag("promptsListChanged") && server && server->upstream->HasCapability("prompts");
  const bool resources = server && server->upstream->HasCapability("resources");
  f.resources = flag("resourcesListChanged") && resources;
  json::object honoured;
  if (f.tools) honoured["toolsListChanged"] = true;
  if (f.prompts) honoured["promptsListChanged"] = true;
  if (f.resources) honoured["resourcesListChanged"] = true;
  if (const json::value* uris = want.if_contains("resourceSubscriptions");
      uris && uris->is_array() && resources) {
    json::array kept;
    for (const json::value& u : uris->get_array()) {
      if (!u.is_string()) continue;
      auto canonical = NormalizeUri(u.get_string());
      if (!canonical.ok() || !MayRead(*server, caller, *canonical)) continue;
      f.uris.push_back(*canonical);
      kept.emplace_back(u.get_string());
    }
    if (!kept.empty()) honoured["resourceSubscriptions"] = std::move(kept);
  }
  auto sink = std::make_shared<SseSink>();
  const std::string key = subs_->AddListener(Listener{
      server ? server->name : "", caller.access.session.sid, json::serialize(id), f, sink});
  for (const std::string& uri : f.uris) {
    if (subs_->Subscribe(server->name, uri, key)) {
      server->upstream->Call("resources/subscribe", json::object{{"uri", uri}},
                             [this, name = server->name, uri, key](Result<json::object> r) {
                               if (!r.ok() || r->contains("error")) {
                                 subs_->Unsubscribe(name, uri, key);
                               }
                             });
    }
  }
  // The acknowledgement is the stream's first message.
  sink->Send(json::serialize(
      json::object{{"jsonrpc", "2.0"},
                   {"method", "notifications/subscriptions/acknowledged"},
                   {"params", json::object{{"notifications", std::move(honoured)},
                                           {"_meta", json::object{{kSubscriptionId, id}}}}}}));
  Response r;
  r.status = 200;
  r.sse = [sink](std::shared_ptr<http::SseWriter> w) { sink->Attach(std::move(w)); };
  respond(std::move(r));
}

void Gateway::SendToListeners(const std::string& server, const std::string& what,
                              const json::object& message) {
  for (auto& [key, l] : subs_->ListenersFor(server, what)) {
    if (!l.sink->Send(Tagged(message, l))) EndListener(key);
  }
}

void Gateway::EndListener(const std::string& key) {
  subs_->RemoveListener(key);
  UnsubscribeUpstream(subs_->Drop(key));
}

void Gateway::OnResourceUpdated(Server& server, const json::object& message) {
  const json::value* params = message.if_contains("params");
  const json::value* raw =
      params && params->is_object() ? params->get_object().if_contains("uri") : nullptr;
  if (!raw || !raw->is_string()) return;
  auto uri = NormalizeUri(raw->get_string());
  if (!uri.ok()) return;
  const std::string text = json::serialize(message);
  for (const std::string& who : subs_->SubscribersOf(server.name, *uri)) {
    if (auto l = subs_->FindListener(who)) {
      if (!l->sink->Send(Tagged(message, *l))) EndListener(who);
      continue;
    }
    std::optional<std::shared_ptr<SseSink>> stream = sessions_->StreamOf(who);
    if (!stream) {  // the MCP session has ended: its subscriptions go with it
      UnsubscribeUpstream(subs_->Drop(who));
    } else if (*stream) {
      (*stream)->Send(text);
    }
  }
}

}  // namespace custody::mcp

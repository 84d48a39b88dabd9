// Resources and prompts through the gateway. Reading a resource and getting a prompt are actions
// like calling a tool: Cedar actions read_resource on Resource::"<server>/<uri>" and get_prompt
// on Prompt::"<server>/<name>" (each in Server::"<server>"), decided and recorded before
// anything is forwarded, answered with the receipt (call_pipeline.cc does the rest). Their
// lists are filtered per caller as tools/list is.
#include <boost/json.hpp>

#include "common/json_array.h"
#include "common/uri.h"
#include "mcp/gateway.h"
#include "mcp/gateway_internal.h"

namespace custody::mcp {

using http::Responder;

namespace {

// What each list method lists: the result's array, the member naming an item, and the action
// and entity type an item is decided as.
struct ListShape {
  std::string_view items;
  std::string_view id_member;
  std::string_view type;
  std::string_view action;
};

std::optional<ListShape> ShapeOf(std::string_view method) {
  if (method == "resources/list") return ListShape{"resources", "uri", "Resource", "read_resource"};
  if (method == "resources/templates/list") {
    return ListShape{"resourceTemplates", "uriTemplate", "Resource", "read_resource"};
  }
  if (method == "prompts/list") return ListShape{"prompts", "name", "Prompt", "get_prompt"};
  return std::nullopt;
}

}  // namespace

const ServerItemMethod* ServerItemMethodOf(std::string_view method) {
  static constexpr ServerItemMethod kRead{"uri", "a resource URI", "Resource", "read_resource",
                                          false};
  static constexpr ServerItemMethod kPrompt{"name", "a prompt name", "Prompt", "get_prompt", true};
  if (method == "resources/read") return &kRead;
  if (method == "prompts/get") return &kPrompt;
  return nullptr;
}

attribution::AuthorizeRequest ServerItemRequest(const ServerItemMethod& m,
                                                const std::string& server, std::string item,
                                                const json::object& params,
                                                const std::string& token,
                                                const std::string& caller_context) {
  return CallRequest(std::string(m.action), ServerItem(server, m.type, std::move(item)), params,
                     token, caller_context);
}

Result<std::string> CanonicalUri(const json::object& params) {
  std::string uri = StringField(params, "uri");
  if (uri.empty()) return InvalidArgumentError("params.uri must be a resource URI");
  auto canonical = NormalizeUri(uri);
  if (!canonical.ok()) return InvalidArgumentError("params.uri: " + canonical.status().message());
  return canonical;
}

Result<std::string> CanonicalItem(const ServerItemMethod& m, json::object& params) {
  if (m.member == "uri") {
    ASSIGN_OR_RETURN(std::string uri, CanonicalUri(params));
    params["uri"] = uri;
    return uri;
  }
  std::string item = StringField(params, m.member);
  if (item.empty()) {
    return InvalidArgumentError("params." + std::string(m.member) + " must be " +
                                std::string(m.noun));
  }
  if (m.takes_arguments) {
    if (!TidyArguments(params)) return InvalidArgumentError("params.arguments must be an object");
    if (auto a = params.find("arguments"); a != params.end()) {
      for (const auto& [name, value] : a->value().get_object()) {
        if (!value.is_string()) {
          return InvalidArgumentError("params.arguments." + std::string(name) +
                                      " must be a string (prompt arguments are strings)");
        }
      }
    }
  }
  return item;
}

void Gateway::HandleServerItem(Server& server, const Caller& caller, const ServerItemMethod& m,
                               const std::string& method, json::value id, json::object params,
                               Responder respond) {
  auto item = CanonicalItem(m, params);
  if (!item.ok()) {
    respond(RpcResponse(200, ErrorText(id, kInvalidParams, item.status().message())));
    return;
  }
  auto call = NewCall(server, caller, std::move(id), method, std::move(params), std::move(respond));
  DecideAndForward(call, ServerItemRequest(m, server.name, std::move(*item), call->params,
                                           caller.token, CallerContext(caller)));
}

void Gateway::HandleSubscription(Server& server, const Caller& caller, const std::string& method,
                                 json::value id, json::object params, Responder respond) {
  auto uri = CanonicalUri(params);
  if (!uri.ok()) {
    respond(RpcResponse(200, ErrorText(id, kInvalidParams, uri.status().message())));
    return;
  }
  // A subscription only to a resource the caller could read (as resources/list shows it).
  if (method == "resources/subscribe" && !MayRead(server, caller, *uri)) {
    respond(RpcResponse(
        200,
        ErrorText(id, kDenied, "denied by Custody policy: this session may not read " + *uri)));
    return;
  }
  params["uri"] = *uri;
  PassThrough(&server, method, std::move(id), std::move(params), std::move(respond));
}

bool Gateway::MayRead(Server& server, const Caller& caller, const std::string& uri) {
  auto allowed = attribution_.WouldAllow(caller.access.session, "read_resource",
                                         ServerItem(server.name, "Resource", uri), {});
  return allowed.ok() && *allowed;
}

void Gateway::HandleFilteredList(Server& server, const Caller& caller, const std::string& method,
                                 json::value id, json::object params, Responder respond) {
  std::optional<ListShape> shape = ShapeOf(method);
  json::object fwd;
  if (auto c = params.find("cursor"); c != params.end()) fwd["cursor"] = c->value();
  server.upstream->Call(
      method, std::move(fwd),
      [this, &server, session = caller.access.session, shape = *shape, id = std::move(id),
       respond = std::move(respond)](Result<json::object> r) {
        if (!r.ok()) {
          respond(RpcResponse(
              200, ErrorText(id, JsonRpcCodeFor(r.status().code()), r.status().message())));
          return;
        }
        if (auto e = r->find("error"); e != r->end()) {  // the server's own refusal
          respond(RpcResponse(200, json::serialize(json::object{
                                       {"jsonrpc", "2.0"}, {"id", id}, {"error", e->value()}})));
          return;
        }
        auto res = r->find("result");
        if (res == r->end() || !res->value().is_object()) {
          respond(RpcResponse(
              200, ErrorText(id, kUnavailable, "malformed answer from upstream " + server.name)));
          return;
        }
        json::object result = res->value().get_object();
        json::array visible;
        if (auto it = result.find(shape.items); it != result.end() && it->value().is_array()) {
          for (json::value& item : it->value().as_array()) {
            const json::value* n =
                item.is_object() ? item.get_object().if_contains(shape.id_member) : nullptr;
            if (n == nullptr || !n->is_string()) continue;
            // A listed URI is judged in the form a read of it would be decided on.
            std::string name(n->get_string());
            if (shape.id_member == "uri") {
              auto canonical = NormalizeUri(name);
              if (!canonical.ok()) continue;  // nothing could read it through the gateway
              name = std::move(*canonical);
            }
            auto allowed = attribution_.WouldAllow(session, std::string(shape.action),
                                                   ServerItem(server.name, shape.type, name), {});
            if (allowed.ok() && *allowed) visible.push_back(std::move(item));
          }
        }
        result[shape.items] = std::move(visible);
        respond(RpcResponse(200, ResultText(id, std::move(result))));
      });
}

bool Gateway::IsFilteredList(std::string_view method) { return ShapeOf(method).has_value(); }

}  // namespace custody::mcp

// Resources and prompts through the gateway. Reading a resource and getting a prompt are actions
// like calling a tool: Cedar actions read_resource on Resource::"<server>/<uri>" and get_prompt
// on Prompt::"<server>/<name>" (each in Server::"<server>"), decided and recorded before
// anything is forwarded, answered with the receipt (call_pipeline.cc does the rest). Their
// lists are filtered per caller as tools/list is, and their definitions pinned as tools' are
// (ToolCatalog): a resource or prompt whose listed definition changed is refused
// (custody:resource_definition_changed, custody:prompt_definition_changed) until approved.
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

// What a list of `method` pins: resources and prompts (templates are not pinned: what they
// expand to is never listed).
std::optional<PinKind> PinnedBy(std::string_view method) {
  if (method == "resources/list") return PinKind::kResource;
  if (method == "prompts/list") return PinKind::kPrompt;
  return std::nullopt;
}

PinKind KindOf(const ServerItemMethod& m) {
  return m.type == "Resource" ? PinKind::kResource : PinKind::kPrompt;
}

// The refusal reason of a changed definition of `kind`.
std::string_view ChangedReason(PinKind kind) {
  return kind == PinKind::kResource ? "custody:resource_definition_changed"
                                    : "custody:prompt_definition_changed";
}

// What policy sees of a listed item beside its id: the listed attributes and definition_hash.
std::map<std::string, std::string> PolicyAttrs(const std::optional<ToolCatalog::Item>& item) {
  if (!item) return {};
  std::map<std::string, std::string> attrs = item->attrs;
  attrs["definition_hash"] = item->hash;
  return attrs;
}

// A list runs at most this many pages when the gateway learns definitions on its own (as
// ListVisible bounds an aggregate tools/list).
constexpr int kMaxLearnPages = 100;

// Lists `kind` of `server` upstream, every page (at most kMaxLearnPages, and not past a cursor
// the server hands back unchanged) from `cursor`, into `catalog`. `done` gets the failure to
// reach the server; a server's own error answer lists nothing and is no failure. The upstream
// and the catalog outlive their calls (the gateway's).
void LearnItems(Upstream& upstream, ToolCatalog& catalog, PinKind kind, std::string server,
                std::function<void(Status)> done, json::value cursor = nullptr, int pages = 0) {
  json::object fwd;
  if (!cursor.is_null()) fwd["cursor"] = cursor;
  const bool resources = kind == PinKind::kResource;
  upstream.Call(
      resources ? "resources/list" : "prompts/list", std::move(fwd),
      [&upstream, &catalog, kind, resources, server = std::move(server), done = std::move(done),
       sent = std::move(cursor), pages](Result<json::object> r) mutable {
        if (!r.ok()) return done(r.status());
        const json::value* res = r->if_contains("result");
        if (res == nullptr || !res->is_object()) return done(OkStatus());
        const json::object& result = res->get_object();
        if (const json::value* items = result.if_contains(resources ? "resources" : "prompts");
            items != nullptr && items->is_array()) {
          catalog.PinItems(kind, server, items->get_array());
        }
        const json::value* next = result.if_contains("nextCursor");
        if (next == nullptr || !next->is_string() || next->get_string().empty() || *next == sent ||
            pages + 1 >= kMaxLearnPages) {
          return done(OkStatus());
        }
        LearnItems(upstream, catalog, kind, std::move(server), std::move(done), *next, pages + 1);
      });
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
  const PinKind kind = KindOf(m);
  // The item's pin checked as the catalog has it, then decided: with its listed attributes and
  // definition_hash, or, never listed (a URI of a template, say), unpinned and without them.
  auto decide = [this, call, m = &m, kind, name = std::move(*item)]() {
    const std::string& sname = call->server->name;
    std::optional<ToolCatalog::Item> known = catalog_.FindItem(kind, sname, name);
    if (known && !known->approved) {
      const std::string noun(PinKindName(kind));
      const std::string_view reason = ChangedReason(kind);
      json::object data{{"reason", reason}, {"definition_hash", known->hash}};
      call->respond(RpcResponse(
          200, ErrorText(call->id, kDenied,
                         "refused: the definition of " + noun + " " + sname + "/" + name +
                             " changed since it was approved (" + std::string(reason) +
                             "); an operator must approve it: custody " + noun + " approve " +
                             sname + " " + name + " " + known->hash,
                         data)));
      return;
    }
    attribution::AuthorizeRequest request = ServerItemRequest(
        *m, sname, name, call->params, call->caller.token, CallerContext(call->caller));
    request.resource_attrs = PolicyAttrs(known);
    if (known) call->hash = known->hash;
    DecideAndForward(call, std::move(request));
  };
  if (catalog_.Listed(kind, server.name)) {
    decide();
    return;
  }
  // Not listed through the gateway since it started: learn (and pin) the definitions first, as
  // a tools/call of a tool not yet listed does.
  LearnItems(*server.upstream, catalog_, kind, server.name,
             [call, decide = std::move(decide)](Status s) {
               if (!s.ok()) {
                 call->respond(
                     RpcResponse(200, ErrorText(call->id, JsonRpcCodeFor(s.code()), s.message())));
                 return;
               }
               decide();
             });
}

bool Gateway::MayRead(Server& server, const Caller& caller, const std::string& uri) {
  auto allowed = attribution_.WouldAllow(
      caller.access.session, "read_resource", ServerItem(server.name, "Resource", uri),
      PolicyAttrs(catalog_.FindItem(PinKind::kResource, server.name, uri)));
  return allowed.ok() && *allowed;
}

void Gateway::HandleFilteredList(Server& server, const Caller& caller, const std::string& method,
                                 json::value id, json::object params, Responder respond) {
  json::value cursor = nullptr;
  if (auto c = params.find("cursor"); c != params.end()) cursor = c->value();
  ListFiltered(server, caller.access.session, method, std::move(cursor),
               [id = std::move(id), respond = std::move(respond)](Result<json::object> r) {
                 respond(UpstreamAnswer(id, r));
               });
}

void Gateway::ListFiltered(Server& server, const identity::Session& session,
                           const std::string& method, json::value cursor,
                           std::function<void(Result<json::object>)> done) {
  std::optional<ListShape> shape = ShapeOf(method);
  json::object fwd;
  if (!cursor.is_null()) fwd["cursor"] = std::move(cursor);
  server.upstream->Call(
      method, std::move(fwd),
      [this, &server, session, shape = *shape, pinned = PinnedBy(method),
       done = std::move(done)](Result<json::object> r) {
        if (!r.ok() || r->contains("error")) return done(std::move(r));  // as the server said
        auto res = r->find("result");
        if (res == r->end() || !res->value().is_object()) {
          return done(UnavailableError("malformed answer from upstream " + server.name));
        }
        json::object result = res->value().get_object();
        json::array visible;
        if (auto it = result.find(shape.items); it != result.end() && it->value().is_array()) {
          // Every item is pinned, shown or not, as tools/list pins every tool.
          if (pinned) catalog_.PinItems(*pinned, server.name, it->value().get_array());
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
            // Judged with what a read or get of it would be: its attributes and definition_hash.
            std::map<std::string, std::string> attrs;
            if (pinned) attrs = PolicyAttrs(catalog_.FindItem(*pinned, server.name, name));
            auto allowed =
                attribution_.WouldAllow(session, std::string(shape.action),
                                        ServerItem(server.name, shape.type, name), attrs);
            if (allowed.ok() && *allowed) visible.push_back(std::move(item));
          }
        }
        result[shape.items] = std::move(visible);
        done(json::object{{"result", std::move(result)}});
      });
}

bool Gateway::IsFilteredList(std::string_view method) { return ShapeOf(method).has_value(); }

}  // namespace custody::mcp

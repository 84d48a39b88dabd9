// Resources and prompts on the aggregate endpoint /mcp, as its tools are: every server's, each
// named so that it says which server it is of. A prompt is "<server>__<name>" (as a tool); a
// resource's URI is "custody://<server>/<the server's URI>" (the server's name as the
// authority, its own URI, untouched, as the rest), and so is a template's. Reads and gets are
// routed by that name to /mcp/{server}'s handlers: decided, recorded and answered the same way.
// Subscriptions stay per server (/mcp/{server}).
#include <algorithm>
#include <boost/json.hpp>

#include "common/json_array.h"
#include "common/json_parse.h"
#include "mcp/gateway.h"
#include "mcp/gateway_internal.h"

namespace custody::mcp {

using http::Responder;
using http::Response;

namespace {

constexpr std::string_view kAggregateScheme = "custody://";

// What each aggregate list method holds and how an item is named.
struct AggregateShape {
  std::string_view capability;  // the server capability it needs
  std::string_view items;       // the result's array
  std::string_view member;      // the member naming an item
  bool uri = false;             // named by URI (else by name)
};

std::optional<AggregateShape> AggregateShapeOf(std::string_view method) {
  if (method == "resources/list") return AggregateShape{"resources", "resources", "uri", true};
  if (method == "resources/templates/list") {
    return AggregateShape{"resources", "resourceTemplates", "uriTemplate", true};
  }
  if (method == "prompts/list") return AggregateShape{"prompts", "prompts", "name", false};
  return std::nullopt;
}

std::string AggregateName(const std::string& server, std::string_view name, bool uri) {
  return uri ? std::string(kAggregateScheme) + server + "/" + std::string(name)
             : server + std::string(kToolSeparator) + std::string(name);
}

}  // namespace

void Gateway::HandleAggregateList(const Caller& caller, const std::string& method, json::value id,
                                  Responder respond) {
  const AggregateShape shape = *AggregateShapeOf(method);
  std::vector<Server*> servers;
  for (auto& [_, s] : servers_) {
    if (s->upstream->HasCapability(shape.capability)) servers.push_back(s.get());
  }
  struct Gather {
    Mutex mu;
    size_t left GUARDED_BY(mu) = 0;
    std::map<std::string, json::array> items GUARDED_BY(mu);  // by server: a stable order
  };
  auto g = std::make_shared<Gather>();
  {
    MutexLock lock(g->mu);
    g->left = servers.size();
  }
  auto finish = [g, id, shape, respond]() {
    json::array all;
    {
      MutexLock lock(g->mu);
      for (auto& [_, list] : g->items) {
        for (auto& item : list) all.push_back(std::move(item));
      }
    }
    respond(RpcResponse(200, ResultText(id, json::object{{shape.items, std::move(all)}})));
  };
  if (servers.empty()) {
    finish();
    return;
  }
  for (Server* s : servers) {
    // Every page of the server's filtered list, its items renamed.
    auto page = std::make_shared<std::function<void(json::value, int)>>();
    *page = [this, s, caller, method, shape, g, finish, page](json::value cursor, int pages) {
      ListFiltered(
          *s, caller.access.session, method, cursor,
          [this, s, shape, g, finish, page, pages, sent = cursor](Result<json::object> r) {
            json::value next;
            json::array mine;
            const json::value* res = r.ok() ? r->if_contains("result") : nullptr;
            if (res && res->is_object()) {
              if (const json::value* list = res->get_object().if_contains(shape.items);
                  list && list->is_array()) {
                for (const json::value& item : list->get_array()) {
                  json::object o = item.as_object();
                  o[shape.member] =
                      AggregateName(s->name, std::string(o[shape.member].as_string()), shape.uri);
                  mine.push_back(std::move(o));
                }
              }
              // The next page, unless the server hands the cursor back unchanged (or it has
              // been 100 pages).
              if (const json::value* c = res->get_object().if_contains("nextCursor");
                  c && c->is_string() && !c->get_string().empty() && *c != sent && pages < 100) {
                next = *c;
              }
            } else {
              LogUpstream(options_.upstream, LogLevel::kWarn, s->name,
                          "left out of the aggregate list: " +
                              (r.ok() ? json::serialize(*r) : r.status().message()));
            }
            bool done;
            {
              MutexLock lock(g->mu);
              json::array& kept = g->items[s->name];
              for (auto& item : mine) {  // each item once, however the server pages
                const json::value& name = item.as_object().at(shape.member);
                if (std::none_of(kept.begin(), kept.end(), [&](const json::value& k) {
                      return k.as_object().at(shape.member) == name;
                    })) {
                  kept.push_back(std::move(item));
                }
              }
              done = next.is_null() && --g->left == 0;
            }
            if (!next.is_null()) {
              (*page)(std::move(next), pages + 1);
            } else if (done) {
              *page = nullptr;  // the last page: break the cycle
              finish();
            } else {
              *page = nullptr;
            }
          });
    };
    (*page)(nullptr, 1);
  }
}

void Gateway::RouteServerItem(const Caller& caller, const ServerItemMethod& m,
                              const std::string& method, json::value id, json::object params,
                              Responder respond) {
  std::string named = StringField(params, m.member);
  Server* server = nullptr;
  std::string own;
  if (m.member == "uri") {
    if (named.starts_with(kAggregateScheme)) {
      std::string_view rest = std::string_view(named).substr(kAggregateScheme.size());
      size_t slash = rest.find('/');
      if (slash != std::string_view::npos) {
        auto it = servers_.find(std::string(rest.substr(0, slash)));
        if (it != servers_.end()) server = it->second.get();
        own = std::string(rest.substr(slash + 1));
      }
    }
  } else {
    server = ServerOfAggregateTool(named);
    if (server) own = named.substr(server->name.size() + kToolSeparator.size());
  }
  if (!server || own.empty()) {
    respond(
        RpcResponse(200, ErrorText(id, kInvalidParams,
                                   "params." + std::string(m.member) + " must name a server: " +
                                       (m.member == "uri" ? "custody://<server>/<the server's URI>"
                                                          : "<server>__<prompt>") +
                                       " on /mcp")));
    return;
  }
  params[m.member] = own;
  // The answer names what it read as the aggregate endpoint does.
  Responder renamed = respond;
  if (m.member == "uri") {
    renamed = [respond, name = server->name](Response r) {
      boost::system::error_code ec;
      json::value v = ParseJson(r.body, ec);
      json::value* res = !ec && v.is_object() ? v.get_object().if_contains("result") : nullptr;
      json::value* c =
          res && res->is_object() ? res->get_object().if_contains("contents") : nullptr;
      if (c && c->is_array()) {
        for (json::value& item : c->get_array()) {
          if (json::value* u = item.is_object() ? item.get_object().if_contains("uri") : nullptr;
              u && u->is_string()) {
            *u = AggregateName(name, u->get_string(), true);
          }
        }
        r.body = json::serialize(v);
      }
      respond(std::move(r));
    };
  }
  HandleServerItem(*server, caller, m, method, std::move(id), std::move(params),
                   std::move(renamed));
}

}  // namespace custody::mcp

// tools/list through the gateway: every tool's definition pinned (ToolCatalog), and the list
// filtered to the tools the policy could allow the caller (AttributionService::WouldAllow). On
// the aggregate endpoint, every server's tools, named <server>__<tool>.
#include <boost/json.hpp>

#include "mcp/gateway.h"
#include "mcp/gateway_internal.h"

namespace custody::mcp {

using http::Responder;

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
          auto hashes = catalog_.Pin(server.name, tools);
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

}  // namespace custody::mcp

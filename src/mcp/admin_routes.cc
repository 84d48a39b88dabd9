// The gateway's routes: the MCP endpoints, the RFC 9728 protected resource metadata, and the
// administration of definition pins: GET /v1/mcp/{tools,resources,prompts} and POST
// /v1/mcp/{tools,resources,prompts}/approve.
#include <boost/json.hpp>

#include "common/json_parse.h"
#include "common/uri.h"
#include "mcp/gateway.h"
#include "mcp/gateway_internal.h"

namespace custody::mcp {

using http::Request;
using http::Responder;
using http::Response;

namespace {

// The routes of one kind of pin, and the member naming an item in their bodies.
struct PinRoutes {
  PinKind kind;
  const char* list_path;
  const char* approve_path;
  const char* plural;  // the list's member
  const char* member;  // "tool" | "uri" | "prompt"
};

constexpr PinRoutes kPinRoutes[] = {
    {PinKind::kTool, "/v1/mcp/tools", "/v1/mcp/tools/approve", "tools", "tool"},
    {PinKind::kResource, "/v1/mcp/resources", "/v1/mcp/resources/approve", "resources", "uri"},
    {PinKind::kPrompt, "/v1/mcp/prompts", "/v1/mcp/prompts/approve", "prompts", "prompt"},
};

const char* MemberOf(PinKind kind) {
  for (const PinRoutes& r : kPinRoutes) {
    if (r.kind == kind) return r.member;
  }
  return "tool";
}

// A definition pin as the API shows it (docs/API.md, "Definition pin").
json::object PinJson(const PinRecord& p) {
  return json::object{{"server", p.server},
                      {MemberOf(p.kind), p.name},
                      {"status", p.approved_hash == p.seen_hash ? "approved" : "changed"},
                      {"approved_hash", p.approved_hash},
                      {"seen_hash", p.seen_hash},
                      {"first_seen_ms", p.first_seen_ms},
                      {"changed_ms", p.changed_ms}};
}

}  // namespace

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
  // RFC 9728. scopes_supported: what MCP clients ask for when the 401 names no scope (MCP
  // 2025-11-25, "Scope selection strategy"); the servers behind the endpoint, "<server>/*".
  auto metadata = [this](Request& req, Responder respond) {
    std::string server;
    if (auto p = req.params.find("server"); p != req.params.end()) {
      if (!servers_.contains(p->second)) {
        respond(http::ErrorResponse(
            NotFoundError("no MCP server named \"" + p->second + "\" is configured"),
            req.request_id));
        return;
      }
      server = p->second;
    }
    json::array scopes;
    for (const std::string& s : EndpointScopes(server)) scopes.emplace_back(s);
    json::object m{{"resource", options_.audience},
                   {"authorization_servers", json::array{json::value(options_.issuer)}},
                   {"bearer_methods_supported", json::array{"header"}},
                   {"resource_name", "Custody MCP gateway"}};
    if (!scopes.empty()) m["scopes_supported"] = std::move(scopes);
    respond(Response::Json(200, json::serialize(m)));
  };
  for (const char* path :
       {"/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-protected-resource/mcp/{server}"}) {
    RETURN_IF_ERROR(
        router.Add(http::Route{"GET", path, metadata, http::AuthRequirement::None(), ""}));
  }

  for (const PinRoutes& r : kPinRoutes) {
    RETURN_IF_ERROR(router.Add(http::Route{
        "GET", r.list_path,
        [this, r](Request& req, Responder respond) {
          auto pins = catalog_.List(r.kind);
          if (!pins.ok()) {
            respond(http::ErrorResponse(pins.status(), req.request_id));
            return;
          }
          json::array out;
          for (const auto& p : *pins) out.push_back(PinJson(p));
          respond(Response::Json(200, json::serialize(json::object{{r.plural, std::move(out)}})));
        },
        read_auth, ""}));
    RETURN_IF_ERROR(router.Add(http::Route{
        "POST", r.approve_path,
        [this, r](Request& req, Responder respond) {
          const PinKind kind = r.kind;
          boost::system::error_code ec;
          json::value v = ParseJson(req.body, ec);
          auto str = [&](const char* k) -> std::string {
            if (ec || !v.is_object()) return "";
            auto it = v.get_object().find(k);
            return it != v.get_object().end() && it->value().is_string()
                       ? std::string(it->value().get_string())
                       : "";
          };
          std::string server = str("server"), name = str(r.member), hash = str("hash");
          if (server.empty() || name.empty() || hash.empty()) {
            respond(http::ErrorResponse(
                InvalidArgumentError("body must be {\"server\",\"" + std::string(r.member) +
                                     "\",\"hash\"} (strings)"),
                req.request_id));
            return;
          }
          if (kind == PinKind::kResource) {  // pinned by its canonical URI, as reads are decided
            auto uri = NormalizeUri(name);
            if (!uri.ok()) {
              respond(http::ErrorResponse(InvalidArgumentError("uri: " + uri.status().message()),
                                          req.request_id));
              return;
            }
            name = std::move(*uri);
          }
          std::string by = req.principal ? "admin:" + req.principal->id : "";
          Status s = kind == PinKind::kTool ? Approve(server, name, hash, by)
                                            : catalog_.Approve(kind, server, name, hash, by);
          if (!s.ok()) {
            respond(http::ErrorResponse(s, req.request_id));
            return;
          }
          respond(Response::Json(
              200, json::serialize(json::object{
                       {"server", server}, {r.member, name}, {"approved_hash", hash}})));
        },
        http::AuthRequirement::AnyOf({"admin"}), "application/json"}));
  }
  return OkStatus();
}

}  // namespace custody::mcp

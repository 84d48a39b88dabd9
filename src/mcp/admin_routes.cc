// The gateway's routes: the MCP endpoints, the RFC 9728 protected resource metadata, and the
// administration of tool pins (GET /v1/mcp/tools, POST /v1/mcp/tools/approve).
#include <boost/json.hpp>

#include "mcp/gateway.h"
#include "mcp/gateway_internal.h"

namespace custody::mcp {

using http::Request;
using http::Responder;
using http::Response;

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
        auto pins = catalog_.List();
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

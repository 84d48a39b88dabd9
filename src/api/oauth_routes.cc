#include "api/oauth_routes.h"

#include <boost/json.hpp>

#include "common/json_array.h"
#include "common/json_parse.h"
#include "identity/authorization_server.h"
#include "identity/client_metadata.h"

namespace custody::api {
namespace {

namespace json = boost::json;
using http::Request;
using http::Responder;
using http::Response;

std::string CookieHeader(const Request& req) {
  return std::string(req.headers.Get("cookie").value_or(""));
}

}  // namespace

http::Response BrowserResponse(identity::BrowserAnswer a) {
  http::Response r;
  if (!a.location.empty()) {
    r.status = a.status == 200 ? 302 : a.status;
    r.headers.Set("location", a.location);
  } else {
    r = http::Response::Text(a.status, std::move(a.html), "text/html; charset=utf-8");
    // The pages are Custody's own: no script, no external asset (a client's logo is served by
    // Custody, /oauth2/logo/), never framed.
    r.headers.Set("content-security-policy",
                  "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; "
                  "frame-ancestors 'none'");
    r.headers.Set("x-frame-options", "DENY");
  }
  r.headers.Set("cache-control", "no-store");
  r.headers.Set("referrer-policy", "no-referrer");
  for (std::string& c : a.set_cookies) r.headers.Add("set-cookie", std::move(c));
  return r;
}

Status AddOAuthRoutes(http::Router& router, identity::AuthorizationServer& server,
                      const http::AuthRequirement& read_auth) {
  identity::AuthorizationServer* as = &server;
  RETURN_IF_ERROR(
      router.Add({"GET", "/oauth2/authorize",
                  [as](Request& req, Responder respond) {
                    identity::AuthorizeRequest q;
                    q.response_type = req.QueryParam("response_type");
                    q.client_id = req.QueryParam("client_id");
                    q.redirect_uri = req.QueryParam("redirect_uri");
                    q.scope = req.QueryParam("scope");
                    q.state = req.QueryParam("state");
                    q.code_challenge = req.QueryParam("code_challenge");
                    q.code_challenge_method = req.QueryParam("code_challenge_method");
                    q.resource = req.QueryParam("resource");
                    q.remote = req.remote;  // the bound per source address
                    // Off the server's threads: it may fetch the IdP's metadata or
                    // a client's metadata document.
                    if (!as->Post([as, q = std::move(q), cookie = CookieHeader(req), respond] {
                          respond(BrowserResponse(as->Authorize(q, cookie)));
                        })) {
                      respond(BrowserResponse(identity::AuthorizationServer::BusyPage()));
                    }
                  },
                  http::AuthRequirement::None(), ""}));
  // The IdP's redirect back. Redeeming its code calls the IdP: off the server's threads.
  RETURN_IF_ERROR(router.Add(
      {"GET", "/oauth2/login/callback",
       [as](Request& req, Responder respond) {
         if (!as->Post([as, state = req.QueryParam("state"), code = req.QueryParam("code"),
                        error = req.QueryParam("error"), cookie = CookieHeader(req),
                        iss = req.QueryParam("iss"), respond] {
               respond(BrowserResponse(as->LoginCallback(state, code, error, cookie, iss)));
             })) {
           respond(BrowserResponse(identity::AuthorizationServer::BusyPage()));
         }
       },
       http::AuthRequirement::None(), ""}));
  RETURN_IF_ERROR(router.Add({"POST", "/oauth2/consent",
                              [as](Request& req, Responder respond) {
                                auto p = [&](std::string_view n) {
                                  return http::FormParam(req.body, n).value_or("");
                                };
                                identity::BrowserAnswer a = as->Consent(
                                    p("request"), p("csrf"), p("decision"), CookieHeader(req));
                                // 303: the browser follows a form POST's redirect with a GET.
                                if (!a.location.empty()) a.status = 303;
                                respond(BrowserResponse(std::move(a)));
                              },
                              http::AuthRequirement::None(), "application/x-www-form-urlencoded"}));

  // A client's logo as its consent page shows it: only the image types CheckLogoImage let
  // through, with that exact type, never sniffed, usable by Custody's pages only.
  RETURN_IF_ERROR(router.Add(
      {"GET", "/oauth2/logo/{id}",
       [as](Request& req, Responder respond) {
         auto logo = as->Logo(req.params["id"]);
         if (logo == nullptr) {
           return respond(http::ErrorResponse(NotFoundError("no such logo"), req.request_id));
         }
         Response r = Response::Text(200, logo->bytes, logo->content_type);
         r.headers.Set("x-content-type-options", "nosniff");
         r.headers.Set("content-security-policy", "default-src 'none'; sandbox");
         r.headers.Set("cross-origin-resource-policy", "same-origin");
         r.headers.Set("cache-control", "private, max-age=600");
         respond(std::move(r));
       },
       http::AuthRequirement::None(), ""}));

  if (as->dynamic_registration()) {
    // RFC 7591: public clients register themselves (admitted only in development).
    RETURN_IF_ERROR(router.Add({"POST", "/oauth2/register",
                                [as](Request& req, Responder respond) {
                                  auto r = as->RegisterClient(req.body);
                                  Response resp = Response::Json(r.status, std::move(r.json));
                                  resp.headers.Set("cache-control", "no-store");
                                  respond(std::move(resp));
                                },
                                http::AuthRequirement::None(), "application/json"}));
  }
  RETURN_IF_ERROR(
      router.Add({"GET", "/v1/oauth/consents",
                  [as](Request& req, Responder respond) {
                    auto list = as->ListConsents();
                    if (!list.ok())
                      return respond(http::ErrorResponse(list.status(), req.request_id));
                    json::array out;
                    for (const auto& c : *list) {
                      out.push_back(json::object{{"client_id", c.client_id},
                                                 {"initiator", c.initiator},
                                                 {"initiator_issuer", c.initiator_issuer},
                                                 {"agent", c.agent},
                                                 {"scopes", StringArray(c.scopes)},
                                                 {"granted_at", c.granted_at}});
                    }
                    respond(Response::Json(200, json::serialize(json::object{{"consents", out}})));
                  },
                  read_auth, ""}));
  RETURN_IF_ERROR(
      router.Add({"POST", "/v1/oauth/consents/revoke",
                  [as](Request& req, Responder respond) {
                    boost::system::error_code ec;
                    json::value v = ParseJson(req.body, ec);
                    auto field = [&](std::string_view k) -> std::string {
                      if (ec || !v.is_object()) return "";
                      auto it = v.as_object().find(k);
                      return it != v.as_object().end() && it->value().is_string()
                                 ? std::string(it->value().as_string())
                                 : "";
                    };
                    std::string client_id = field("client_id"), initiator = field("initiator"),
                                issuer = field("initiator_issuer");
                    if (client_id.empty() || initiator.empty() || issuer.empty()) {
                      return respond(http::ErrorResponse(
                          InvalidArgumentError("body must be {\"client_id\",\"initiator\","
                                               "\"initiator_issuer\"}"),
                          req.request_id));
                    }
                    std::string by = req.principal ? "admin:" + req.principal->id : "";
                    Status s = as->RevokeConsent(issuer, initiator, client_id, by);
                    if (!s.ok()) return respond(http::ErrorResponse(s, req.request_id));
                    respond(Response::Json(200, R"({"revoked":true})"));
                  },
                  http::AuthRequirement::AnyOf({"admin"}), "application/json"}));
  return OkStatus();
}

}  // namespace custody::api

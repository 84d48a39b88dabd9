#include "api/console_routes.h"

#include <algorithm>
#include <boost/json.hpp>

#include "api/auth.h"
#include "api/console_assets.h"
#include "common/jcs.h"

namespace custody::api {
namespace {

namespace json = boost::json;
using http::Request;
using http::Responder;
using http::Response;

const ConsoleAsset* FindAsset(std::string_view path) {
  auto assets = ConsoleAssets();
  auto it = std::lower_bound(assets.begin(), assets.end(), path,
                             [](const ConsoleAsset& a, std::string_view p) { return a.path < p; });
  return it != assets.end() && it->path == path ? &*it : nullptr;
}

void SecurityHeaders(Response& r) {
  r.headers.Set("content-security-policy", std::string(kConsoleCsp));
  r.headers.Set("x-content-type-options", "nosniff");
  r.headers.Set("x-frame-options", "DENY");
  r.headers.Set("referrer-policy", "no-referrer");
}

Response Serve(std::string_view path, const Request& req) {
  const ConsoleAsset* a = FindAsset(path);
  if (!a) {
    if (ConsoleAssets().empty()) {
      return http::ErrorResponse(
          NotFoundError("this custody was built without the console (CUSTODY_CONSOLE=OFF)"),
          req.request_id);
    }
    return http::ErrorResponse(NotFoundError("no such console file"), req.request_id);
  }
  Response r = Response::Text(200, std::string(a->bytes), std::string(a->content_type));
  SecurityHeaders(r);
  // Vite names every asset by its content hash: a new build is a new name.
  r.headers.Set("cache-control",
                path.starts_with("assets/") ? "public, max-age=31536000, immutable" : "no-store");
  return r;
}

std::string CookieHeader(std::string_view value, int64_t max_age_s, bool tls) {
  std::string c = std::string(kConsoleCookie) + "=" + std::string(value) +
                  "; Path=/; HttpOnly; SameSite=Strict; Max-Age=" + std::to_string(max_age_s);
  if (tls) c += "; Secure";
  return c;
}

void SignIn(http::Authenticator& tokens, ConsoleSessions& sessions, bool tls, Request& req,
            Responder respond) {
  auto fail = [&](const Status& s) { respond(http::ErrorResponse(s, req.request_id)); };
  boost::system::error_code ec;
  json::value v = json::parse(req.body, ec);
  const json::string* token = nullptr;
  if (!ec && v.is_object()) {
    if (auto* t = v.as_object().if_contains("token"); t && t->is_string()) token = &t->as_string();
  }
  if (!token) return fail(InvalidArgumentError("body must be {\"token\": \"cst_…\"}"));
  Result<http::Principal> p = tokens.Authenticate(std::string_view(*token));
  if (!p.ok()) return fail(p.status());
  // An approver signs in to decide approvals (the approvals queue); it can call nothing more
  // through the console than with its token.
  if (p->role != kRoleAdmin && p->role != kRoleReader && p->role != kRoleApprover) {
    return fail(PermissionDeniedError(
        "the console takes a reader, admin or approver token, not role \"" + p->role + "\""));
  }
  req.principal = *p;  // the access log names the token id
  NewConsoleSession s = sessions.Create(*p);
  std::string body = "{\"csrf\":";
  AppendJcsString(s.csrf, body);
  body += ",\"role\":";
  AppendJcsString(s.principal.role, body);
  body += ",\"expires_at\":";
  AppendJcsString(FormatRfc3339Millis(s.expires), body);
  body += "}";
  Response r = Response::Json(200, std::move(body));
  r.headers.Set("set-cookie", CookieHeader(s.id, sessions.lifetime().count(), tls));
  r.headers.Set("cache-control", "no-store");
  respond(std::move(r));
}

}  // namespace

Status AddConsoleRoutes(http::Router& router, http::Authenticator& tokens,
                        ConsoleSessions& sessions, const ConsoleRouteOptions& options) {
  RETURN_IF_ERROR(router.Add({"GET", "/console",
                              [](Request&, Responder respond) {
                                Response r = Response::Text(301, "");
                                r.headers.Set("location", "/console/");
                                respond(std::move(r));
                              },
                              http::AuthRequirement::None(), ""}));
  RETURN_IF_ERROR(
      router.Add({"GET", "/console/",
                  [](Request& req, Responder respond) { respond(Serve("index.html", req)); },
                  http::AuthRequirement::None(), ""}));
  RETURN_IF_ERROR(
      router.Add({"GET", "/console/{path...}",
                  [](Request& req, Responder respond) { respond(Serve(req.params["path"], req)); },
                  http::AuthRequirement::None(), ""}));

  bool tls = options.tls;
  RETURN_IF_ERROR(router.Add({"POST", "/v1/console/session",
                              [&tokens, &sessions, tls](Request& req, Responder respond) {
                                SignIn(tokens, sessions, tls, req, std::move(respond));
                              },
                              http::AuthRequirement::None(), "application/json"}));
  RETURN_IF_ERROR(
      router.Add({"POST", "/v1/console/session/logout",
                  [&sessions, tls](Request& req, Responder respond) {
                    if (auto id = CookieValue(req.headers, kConsoleCookie)) sessions.End(*id);
                    Response r = Response::Json(200, "{\"signed_out\":true}");
                    r.headers.Set("set-cookie", CookieHeader("", 0, tls));
                    r.headers.Set("cache-control", "no-store");
                    respond(std::move(r));
                  },
                  http::AuthRequirement::AnyOf({std::string(kRoleAdmin), std::string(kRoleReader),
                                                std::string(kRoleApprover)}),
                  ""}));
  // What the sign-in page offers. The IdP is listed when [login] names one; signing in to the
  // console through it is not wired yet (console sessions are made from tokens only), so the
  // page shows it as unavailable rather than hiding that it exists.
  std::string methods = "{\"methods\":[{\"type\":\"token\",\"available\":true}";
  if (!options.idp_issuer.empty()) {
    methods += ",{\"type\":\"idp\",\"available\":false,\"issuer\":";
    AppendJcsString(options.idp_issuer, methods);
    methods += "}";
  }
  methods += "]}";
  RETURN_IF_ERROR(router.Add({"GET", "/v1/console/methods",
                              [methods](Request&, Responder respond) {
                                Response r = Response::Json(200, methods);
                                r.headers.Set("cache-control", "no-store");
                                respond(std::move(r));
                              },
                              http::AuthRequirement::None(), ""}));
  return OkStatus();
}

}  // namespace custody::api

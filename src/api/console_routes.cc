#include "api/console_routes.h"

#include <algorithm>
#include <boost/json.hpp>

#include "api/auth.h"
#include "api/console_assets.h"
#include "api/oauth_routes.h"
#include "common/html.h"
#include "common/jcs.h"
#include "common/json_parse.h"
#include "identity/authorization_server.h"

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

void AppendSessionJson(const NewConsoleSession& s, std::string& body);

void SignIn(http::Authenticator& tokens, ConsoleSessions& sessions, bool tls, Request& req,
            Responder respond) {
  auto fail = [&](const Status& s) { respond(http::ErrorResponse(s, req.request_id)); };
  boost::system::error_code ec;
  json::value v = ParseJson(req.body, ec);
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
  std::string body;
  AppendSessionJson(s, body);
  Response r = Response::Json(200, std::move(body));
  r.headers.Set("set-cookie", CookieHeader(s.id, sessions.lifetime().count(), tls));
  r.headers.Set("cache-control", "no-store");
  respond(std::move(r));
}

// The client an IdP sign-in's oauth.sign_in event names: the console, not an OAuth client.
constexpr std::string_view kConsoleClient = "custody:console";

void AppendSessionJson(const NewConsoleSession& s, std::string& body) {
  body += "{\"csrf\":";
  AppendJcsString(s.csrf, body);
  body += ",\"role\":";
  AppendJcsString(s.principal.role, body);
  body += ",\"expires_at\":";
  AppendJcsString(FormatRfc3339Millis(s.expires), body);
  if (!s.person.subject.empty()) {
    body += ",\"name\":";
    AppendJcsString(s.person.name, body);
    body += ",\"subject\":";
    AppendJcsString(s.person.subject, body);
    body += ",\"verified_by\":";
    AppendJcsString(s.person.verified_by, body);
  }
  body += "}";
}

std::string PageHtml(const std::string& title, const std::string& body) {
  return "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>" +
         HtmlEscape(title) +
         "</title><style>body{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem "
         "auto;padding:0 1rem}</style></head><body>" +
         body + "</body></html>";
}

// The IdP vouched for `p`: a console session with the role of its groups, or a page saying why
// not.
identity::BrowserAnswer PersonSignedIn(ConsoleSessions& sessions, const ConsoleRouteOptions& o,
                                       const identity::SignedInPerson& p) {
  const std::string& shown = !p.name.empty() ? p.name : !p.email.empty() ? p.email : p.subject;
  std::optional<std::string> role = ConsoleRoleForGroups(p.groups, o.admin_groups, o.reader_groups);
  if (!role) {
    identity::BrowserAnswer a;
    a.status = 403;
    a.error = "access_denied";
    const std::string why =
        o.admin_groups.empty() && o.reader_groups.empty()
            ? "This Custody gives no console role to IdP groups yet ([console.idp_roles] is "
              "empty): an operator must name the admin and reader groups."
            : "None of your groups at the company IdP gives a console role. Ask an operator "
              "to add you to one of the console's admin or reader groups.";
    a.html = PageHtml("Console sign-in refused",
                      "<h1>Console sign-in refused</h1><p>Signed in at the company IdP as <b>" +
                          HtmlEscape(shown) + "</b>.</p><p data-testid=\"refused\">" +
                          HtmlEscape(why) + "</p><p><a href=\"/console/\">Back</a></p>");
    return a;
  }
  NewConsoleSession s =
      sessions.CreateForPerson(ConsolePerson{p.subject, shown, "oidc:" + p.issuer}, *role);
  identity::BrowserAnswer a;
  a.status = 302;
  a.location = "/console/?signed-in=idp";  // the page then reads its CSRF token
  a.set_cookies.push_back(CookieHeader(s.id, sessions.lifetime().count(), o.tls));
  return a;
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
  // The page holds only the cookie after the IdP's redirect (or a reload): it reads its CSRF
  // token here. The cookie is SameSite=Strict and the answer is not readable cross-origin, so
  // only Custody's own page learns it.
  RETURN_IF_ERROR(router.Add({"GET", "/v1/console/session",
                              [&sessions](Request& req, Responder respond) {
                                auto id = CookieValue(req.headers, kConsoleCookie);
                                if (!id || id->empty()) {
                                  return respond(http::ErrorResponse(
                                      UnauthenticatedError("no console session"), req.request_id));
                                }
                                Result<NewConsoleSession> s = sessions.Resume(*id);
                                if (!s.ok()) {
                                  return respond(http::ErrorResponse(s.status(), req.request_id));
                                }
                                req.principal = s->principal;  // the access log names who
                                std::string body;
                                AppendSessionJson(*s, body);
                                Response r = Response::Json(200, std::move(body));
                                r.headers.Set("cache-control", "no-store");
                                respond(std::move(r));
                              },
                              http::AuthRequirement::None(), ""}));
  // Sign-in at the company IdP: the approvers' sign-in (PKCE, state, nonce, the ID token
  // verified), then a console session with the role of the person's groups.
  if (identity::AuthorizationServer* as = options.sign_in) {
    RETURN_IF_ERROR(
        router.Add({"GET", "/console/sign-in/idp",
                    [as, &sessions, options](Request& req, Responder respond) {
                      std::string cookie(req.headers.Get("cookie").value_or(""));
                      // Off the server's threads: the IdP's metadata may have to be
                      // fetched.
                      if (!as->Post([as, &sessions, options, cookie, remote = req.remote, respond] {
                            respond(BrowserResponse(as->StartSignIn(
                                std::string(kConsoleClient),
                                [&sessions, options](identity::SignedInPerson p) {
                                  return PersonSignedIn(sessions, options, p);
                                },
                                cookie, remote)));
                          })) {
                        respond(BrowserResponse(identity::AuthorizationServer::BusyPage()));
                      }
                    },
                    http::AuthRequirement::None(), ""}));
  }
  // What the sign-in page offers. The IdP is listed when [login] names one, available when the
  // sign-in is wired and [console.idp_roles] names a group (else every IdP sign-in would be
  // refused).
  std::string methods = "{\"methods\":[{\"type\":\"token\",\"available\":true}";
  if (!options.idp_issuer.empty()) {
    const bool available = options.sign_in != nullptr &&
                           (!options.admin_groups.empty() || !options.reader_groups.empty());
    methods += ",{\"type\":\"idp\",\"available\":";
    methods += available ? "true" : "false";
    methods += ",\"issuer\":";
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

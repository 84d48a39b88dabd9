#include "api/approval_routes.h"

#include <boost/json.hpp>
#include <optional>
#include <set>

#include "api/auth.h"
#include "api/oauth_routes.h"
#include "common/clock.h"
#include "common/html.h"
#include "common/json_array.h"
#include "common/json_parse.h"
#include "common/words.h"
#include "identity/authorization_server.h"

namespace custody::api {

namespace {

namespace json = boost::json;
using attribution::Approver;
using attribution::AttributionService;
using http::AuthRequirement;
using http::Request;
using http::Responder;
using http::Response;

std::string Time(int64_t ms) {
  return ms > 0 ? FormatRfc3339Millis(TimePoint(std::chrono::milliseconds(ms))) : "";
}

std::string Link(const std::string& base_url, const std::string& id) {
  return base_url.empty() ? "" : base_url + "/approvals/" + id;
}

void Reply(const Responder& respond, const std::string& request_id, const Status& s) {
  respond(http::ErrorResponse(s, request_id));
}

void ReplyJson(const Responder& respond, const json::object& o) {
  Response r = Response::Json(200, json::serialize(o));
  r.headers.Set("cache-control", "no-store");
  respond(std::move(r));
}

// The approver's reason: {"reason": "..."}; nothing else is accepted.
Result<std::string> ReasonOf(const std::string& body) {
  if (body.empty()) return std::string();
  boost::system::error_code ec;
  json::value v = ParseJson(body, ec);
  if (ec || !v.is_object()) return InvalidArgumentError("body must be a JSON object");
  std::string reason;
  for (const auto& [k, e] : v.get_object()) {
    if (k != "reason") return InvalidArgumentError("unknown field \"" + std::string(k) + "\"");
    if (!e.is_string()) return InvalidArgumentError("reason must be a string");
    reason = std::string(e.get_string());
  }
  return reason;
}

// What the approval page shows besides the approval.
struct PageView {
  bool sign_in = false;  // [login] is configured: people can sign in and decide here
  std::optional<identity::ApproverSession> approver;  // signed in on this browser
  std::string note_html;  // the result of a decision, or why it was refused (already HTML)
};

// The page an approval link opens: what is asked, its state, and (pending) how to decide it:
// the form for a signed-in approver, else the way to sign in and the approver-token commands.
std::string Page(const store::ApprovalRow& a, const PageView& v = {}) {
  const std::string groups = attribution::ApprovalGroupsText(a);
  auto row = [](const char* k, const std::string& v) {
    return "<tr><th>" + std::string(k) + "</th><td>" + HtmlEscape(v) + "</td></tr>";
  };
  const std::string id = HtmlEscape(a.id);
  std::string html =
      "<!doctype html><html><head><meta charset=\"utf-8\"><title>Approval " + id +
      "</title><style>body{font:15px system-ui,sans-serif;max-width:44em;margin:2em auto}"
      "th{text-align:left;padding-right:1em;vertical-align:top}td{font-family:monospace}"
      "textarea{width:100%;font:inherit}button{font-size:1rem;padding:.4rem 1rem;"
      "margin-right:.5rem}.note{border-left:4px solid #888;padding:.2rem .8rem}"
      "</style></head><body><h1>Approval " +
      HtmlEscape(a.state) + "</h1>" + v.note_html + "<table>" + row("approval", a.id) +
      row("agent", a.agent + " (" + a.instance + ")") + row("session", a.sid) +
      row("started by", a.initiator) + row("action", a.action) + row("target", a.target) +
      row("approvers", groups) + row("policies", a.policies) + row("binds to", a.digest) +
      row("requested", Time(a.requested_ms)) +
      row(a.state == "pending" ? "decide by" : "usable until", Time(a.expires_ms));
  if (!a.approver.empty()) {
    html +=
        row("decided by", a.approver) + row("verified by", a.verified_by) + row("reason", a.reason);
  }
  html += "</table>";
  // A signed-in approver can sign out from any approval page (the session's CSRF token).
  const std::string sign_out =
      v.approver ? "<form method=\"post\" action=\"/approvals/" + id +
                       "/sign-out\"><input type=\"hidden\" name=\"csrf\" value=\"" +
                       HtmlEscape(v.approver->csrf) +
                       "\"><p><button type=\"submit\">Sign out</button></p></form>"
                 : "";
  if (a.state != "pending") return html + sign_out + "</body></html>";
  if (v.approver) {
    const identity::SignedInPerson& p = v.approver->person;
    const std::string& shown = !p.name.empty() ? p.name : !p.email.empty() ? p.email : p.subject;
    html += "<p>Signed in as <b>" + HtmlEscape(shown) + "</b> (<code>" + HtmlEscape(p.subject) +
            "</code> at " + HtmlEscape(p.issuer) +
            "). Your decision is recorded with your name and the reason.</p>"
            "<form method=\"post\" action=\"/approvals/" +
            id + "\"><input type=\"hidden\" name=\"csrf\" value=\"" + HtmlEscape(v.approver->csrf) +
            "\"><p><label for=\"reason\">Reason</label><br><textarea id=\"reason\" "
            "name=\"reason\" rows=\"3\" maxlength=\"1024\"></textarea></p>"
            "<button type=\"submit\" name=\"decision\" value=\"approve\">Approve</button>"
            "<button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button></form>";
    return html + sign_out + "</body></html>";
  }
  if (v.sign_in) {
    html += "<p>A member of " + HtmlEscape(groups) + " decides it: <a href=\"/approvals/" + id +
            "/sign-in\">Sign in to decide</a></p><p>Or with an approver token:</p>";
  } else {
    html += "<p>A member of " + HtmlEscape(groups) + " decides it with an approver token:</p>";
  }
  html += "<pre>custody approval approve " + id + " --reason \"...\"\ncustody approval deny " + id +
          " --reason \"...\"</pre>";
  return html + "</body></html>";
}

// A page of Custody's own: no script, nothing from elsewhere, forms only to itself, never framed.
Response HtmlPage(int status, std::string html) {
  Response r = Response::Text(status, std::move(html), "text/html; charset=utf-8");
  r.headers.Set("content-security-policy",
                "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                "frame-ancestors 'none'");
  r.headers.Set("x-frame-options", "DENY");
  r.headers.Set("cache-control", "no-store");
  r.headers.Set("referrer-policy", "no-referrer");
  return r;
}

Response TextPage(int status, const std::string& text) {
  Response r = Response::Text(status, text + "\n");
  r.headers.Set("cache-control", "no-store");
  r.headers.Set("referrer-policy", "no-referrer");
  return r;
}

std::string CookieHeader(const Request& req) {
  return std::string(req.headers.Get("cookie").value_or(""));
}

// Why a decision on the page was refused, for the person: the service's message where it is
// about the approval or the person (never a secret), a generic one for faults.
std::string RefusalNote(const Status& s) {
  std::string why;
  switch (s.code()) {
    case StatusCode::kInvalidArgument:
    case StatusCode::kNotFound:
    case StatusCode::kPermissionDenied:
    case StatusCode::kUnauthenticated:
    case StatusCode::kFailedPrecondition:
    case StatusCode::kAlreadyExists:
      why = s.message();
      break;
    default:
      why = "the decision could not be recorded now; nothing changed, try again shortly";
  }
  return "<p class=\"note\"><b>Not decided:</b> " + HtmlEscape(why) + "</p>";
}

}  // namespace

json::object ApprovalJson(const store::ApprovalRow& a, const std::string& base_url) {
  json::object o{{"id", a.id},
                 {"state", a.state},
                 {"digest", a.digest},
                 {"session", a.sid},
                 {"root_session", a.root_sid},
                 {"agent", a.agent},
                 {"instance", a.instance},
                 {"initiator", a.initiator},
                 {"action", a.action},
                 {"target", a.target},
                 {"groups", StringArray(attribution::ApprovalGroups(a))},
                 {"policies", StringArray(SplitSpaces(a.policies))},
                 {"request_action", a.request_action},
                 {"requested_at", Time(a.requested_ms)},
                 {"expires_at", Time(a.expires_ms)},
                 {"uses", a.uses}};
  if (!a.approver.empty()) {
    o["approver"] = a.approver;
    o["verified_by"] = a.verified_by;
  }
  if (!a.reason.empty()) o["reason"] = a.reason;
  if (a.decided_ms > 0) o["decided_at"] = Time(a.decided_ms);
  if (a.decided_index >= 0) o["decided_index"] = a.decided_index;
  if (!a.used_by.empty()) o["used_by"] = a.used_by;
  if (std::string url = Link(base_url, a.id); !url.empty()) o["url"] = url;
  return o;
}

std::string ApprovalWebhookBody(std::string_view type, const store::ApprovalRow& row,
                                const std::string& base_url, TimePoint now) {
  return json::serialize(json::object{{"type", type},
                                      {"timestamp", FormatRfc3339Millis(now)},
                                      {"data", ApprovalJson(row, base_url)}});
}

Status AddApprovalRoutes(http::Router& router, AttributionService& service,
                         store::AdminTokenStore& tokens, const ApprovalRouteOptions& options) {
  AttributionService* svc = &service;
  store::AdminTokenStore* token_store = &tokens;
  const std::string base = options.base_url;
  auto readers = AuthRequirement::AnyOf(
      {std::string(kRoleAdmin), std::string(kRoleReader), std::string(kRoleApprover)});

  RETURN_IF_ERROR(router.Add(
      {"GET", "/v1/approvals",
       [svc, base](Request& req, Responder respond) {
         std::vector<std::string> states;
         if (auto s = req.QueryParam("state"); s && !s->empty()) {
           static const std::set<std::string> kStates = {"pending", "approved",  "denied",
                                                         "expired", "cancelled", "used"};
           if (!kStates.count(*s))
             return Reply(respond, req.request_id,
                          InvalidArgumentError("state must be pending, approved, denied, "
                                               "expired, cancelled or used"));
           states.push_back(*s);
         }
         size_t limit = 100;
         if (auto l = req.QueryParam("limit")) {
           char* end = nullptr;
           long v = std::strtol(l->c_str(), &end, 10);
           if (l->empty() || *end != '\0' || v < 1 || v > 1000)
             return Reply(respond, req.request_id, InvalidArgumentError("limit must be 1-1000"));
           limit = static_cast<size_t>(v);
         }
         auto rows = svc->ListApprovals(states, limit);
         if (!rows.ok()) return Reply(respond, req.request_id, rows.status());
         json::array out;
         for (const auto& r : *rows) out.push_back(ApprovalJson(r, base));
         ReplyJson(respond, json::object{{"approvals", std::move(out)}});
       },
       readers, ""}));

  RETURN_IF_ERROR(router.Add({"GET", "/v1/approvals/{id}",
                              [svc, base](Request& req, Responder respond) {
                                auto row = svc->GetApproval(req.params["id"]);
                                if (!row.ok()) return Reply(respond, req.request_id, row.status());
                                if (!*row)
                                  return Reply(respond, req.request_id,
                                               NotFoundError("no approval " + req.params["id"]));
                                ReplyJson(respond, ApprovalJson(**row, base));
                              },
                              readers, ""}));

  // POST /v1/approvals/{id}:approve | {id}:deny, by a person holding an approver token.
  RETURN_IF_ERROR(router.Add(
      {"POST", "/v1/approvals/{op}",
       [svc, base, token_store](Request& req, Responder respond) {
         const std::string& op = req.params["op"];
         size_t colon = op.rfind(':');
         const std::string verb = colon == std::string::npos ? "" : op.substr(colon + 1);
         if (verb != "approve" && verb != "deny")
           return Reply(respond, req.request_id,
                        NotFoundError("unknown approval operation (try :approve or :deny)"));
         const std::string id = op.substr(0, colon);
         auto reason = ReasonOf(req.body);
         if (!reason.ok()) return Reply(respond, req.request_id, reason.status());
         // The person is the token's label, as the operator issued it.
         auto rec = token_store->Get(req.principal->id);
         if (!rec.ok()) return Reply(respond, req.request_id, rec.status());
         if (!*rec || (*rec)->label.empty())
           return Reply(respond, req.request_id,
                        PermissionDeniedError("this approver token names no person"));
         Approver who;
         who.person = (*rec)->label;
         who.verified_by = "admin-token:" + req.principal->id;
         auto row = svc->DecideApproval(id, verb == "approve", who, *reason);
         if (!row.ok()) return Reply(respond, req.request_id, row.status());
         ReplyJson(respond, ApprovalJson(*row, base));
       },
       AuthRequirement::AnyOf({std::string(kRoleApprover)}), "application/json"}));

  identity::AuthorizationServer* as = options.sign_in;
  RETURN_IF_ERROR(router.Add({"GET", "/approvals/{id}",
                              [svc, as](Request& req, Responder respond) {
                                auto row = svc->GetApproval(req.params["id"]);
                                if (!row.ok())
                                  return respond(TextPage(503, "approvals are unavailable"));
                                if (!*row) return respond(TextPage(404, "no such approval"));
                                PageView v;
                                v.sign_in = as != nullptr;
                                if (as) v.approver = as->FindApproverSession(CookieHeader(req));
                                respond(HtmlPage(200, Page(**row, v)));
                              },
                              AuthRequirement::None(), ""}));
  if (as == nullptr) return OkStatus();

  // The approver's sign-in at the company IdP; the IdP's answer (/oauth2/login/callback) opens
  // the approver session and comes back to the page.
  RETURN_IF_ERROR(router.Add(
      {"GET", "/approvals/{id}/sign-in",
       [svc, as](Request& req, Responder respond) {
         const std::string id = req.params["id"];
         auto row = svc->GetApproval(id);
         if (!row.ok()) return respond(TextPage(503, "approvals are unavailable"));
         if (!*row) return respond(TextPage(404, "no such approval"));
         if ((*row)->state != "pending") {
           // Nothing to decide: the page says what became of it.
           identity::BrowserAnswer back;
           back.location = "/approvals/" + id;
           return respond(BrowserResponse(std::move(back)));
         }
         // Off the server's threads: the IdP's metadata may have to be fetched. The peer's
         // address counts against max_in_flight_per_source.
         if (!as->Post([as, id, cookie = CookieHeader(req), remote = req.remote, respond] {
               respond(BrowserResponse(as->StartApproverSignIn(id, cookie, remote)));
             })) {
           respond(BrowserResponse(identity::AuthorizationServer::BusyPage()));
         }
       },
       AuthRequirement::None(), ""}));

  // The page's form: the signed-in person approves or denies, with the session's CSRF token.
  RETURN_IF_ERROR(router.Add(
      {"POST", "/approvals/{id}",
       [svc, as](Request& req, Responder respond) {
         const std::string id = req.params["id"];
         auto field = [&](std::string_view n) { return http::FormParam(req.body, n).value_or(""); };
         const std::string cookie = CookieHeader(req);
         // The page again, with why nothing was decided.
         auto refused = [&](const Status& s) {
           auto row = svc->GetApproval(id);
           if (!row.ok()) return respond(TextPage(503, "approvals are unavailable"));
           if (!*row) return respond(TextPage(404, "no such approval"));
           PageView v;
           v.sign_in = true;
           v.approver = as->FindApproverSession(cookie);
           v.note_html = RefusalNote(s);
           respond(HtmlPage(http::HttpStatusFor(s.code()), Page(**row, v)));
         };
         auto person = as->ApproverOfForm(cookie, field("csrf"));
         if (!person.ok()) return refused(person.status());
         const std::string decision = field("decision");
         if (decision != "approve" && decision != "deny")
           return refused(InvalidArgumentError("the decision must be approve or deny"));
         Approver who;
         who.person = person->subject;
         who.verified_by = "oidc:" + person->issuer;
         who.groups = person->groups;  // what the IdP asserted, besides the published entities
         auto row = svc->DecideApproval(id, decision == "approve", who, field("reason"));
         if (!row.ok()) return refused(row.status());
         PageView v;
         v.sign_in = true;
         v.note_html = "<p class=\"note\"><b>You " +
                       std::string(decision == "approve" ? "approved" : "denied") +
                       " this action.</b> The decision is recorded at ledger index " +
                       std::to_string(row->decided_index) + ".</p>";
         respond(HtmlPage(200, Page(*row, v)));
       },
       AuthRequirement::None(), "application/x-www-form-urlencoded"}));

  // Sign-out: the session is dropped at the server and the cookie cleared; back to the page.
  // Only with the page's CSRF token (another site cannot sign an approver out); without a live
  // session there is nothing to end, and the cookie is cleared all the same.
  RETURN_IF_ERROR(router.Add(
      {"POST", "/approvals/{id}/sign-out",
       [svc, as](Request& req, Responder respond) {
         const std::string id = req.params["id"];
         Status s =
             as->SignOutApprover(CookieHeader(req), http::FormParam(req.body, "csrf").value_or(""));
         if (s.code() == StatusCode::kPermissionDenied) {
           auto row = svc->GetApproval(id);
           if (!row.ok()) return respond(TextPage(503, "approvals are unavailable"));
           if (!*row) return respond(TextPage(404, "no such approval"));
           PageView v;
           v.sign_in = true;
           v.approver = as->FindApproverSession(CookieHeader(req));
           v.note_html = RefusalNote(s);
           return respond(HtmlPage(403, Page(**row, v)));
         }
         identity::BrowserAnswer back;
         auto row = svc->GetApproval(id);
         if (row.ok() && *row) {
           back.status = 303;  // the browser follows a form POST's redirect with a GET
           back.location = "/approvals/" + id;
         } else {
           back.status = 200;  // no approval page to go back to
           back.html =
               "<!doctype html><html><head><meta charset=\"utf-8\"><title>Signed out</title>"
               "</head><body><p>Signed out.</p></body></html>";
         }
         back.set_cookies.push_back(identity::AuthorizationServer::ClearedApproverCookie());
         respond(BrowserResponse(std::move(back)));
       },
       AuthRequirement::None(), "application/x-www-form-urlencoded"}));
  return OkStatus();
}

}  // namespace custody::api

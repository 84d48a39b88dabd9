#include "api/approval_routes.h"

#include <boost/json.hpp>
#include <set>

#include "api/auth.h"
#include "common/clock.h"
#include "common/html.h"
#include "common/json_array.h"
#include "common/words.h"

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
  json::value v = json::parse(body, ec);
  if (ec || !v.is_object()) return InvalidArgumentError("body must be a JSON object");
  std::string reason;
  for (const auto& [k, e] : v.get_object()) {
    if (k != "reason") return InvalidArgumentError("unknown field \"" + std::string(k) + "\"");
    if (!e.is_string()) return InvalidArgumentError("reason must be a string");
    reason = std::string(e.get_string());
  }
  return reason;
}

std::vector<std::string> Lines(const std::string& s) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t nl = s.find('\n', pos);
    if (nl == std::string::npos) nl = s.size();
    if (nl > pos) out.push_back(s.substr(pos, nl - pos));
    pos = nl + 1;
  }
  return out;
}

// The page an approval link opens. It shows what is asked and its state, and how an approver
// decides it; it changes nothing (deciding needs an approver's credential).
std::string Page(const store::ApprovalRow& a) {
  std::string groups;
  for (const auto& g : Lines(a.group)) groups += (groups.empty() ? "" : " and ") + g;
  auto row = [](const char* k, const std::string& v) {
    return "<tr><th>" + std::string(k) + "</th><td>" + HtmlEscape(v) + "</td></tr>";
  };
  std::string html =
      "<!doctype html><html><head><meta charset=\"utf-8\"><title>Approval " + HtmlEscape(a.id) +
      "</title><style>body{font:15px system-ui,sans-serif;max-width:44em;margin:2em auto}"
      "th{text-align:left;padding-right:1em;vertical-align:top}td{font-family:monospace}"
      "</style></head><body><h1>Approval " +
      HtmlEscape(a.state) + "</h1><table>" + row("approval", a.id) +
      row("agent", a.agent + " (" + a.instance + ")") + row("session", a.sid) +
      row("started by", a.initiator) + row("action", a.action) + row("target", a.target) +
      row("approvers", groups) + row("policies", a.policies) + row("binds to", a.digest) +
      row("requested", Time(a.requested_ms)) +
      row(a.state == "pending" ? "decide by" : "usable until", Time(a.expires_ms));
  if (!a.approver.empty()) html += row("decided by", a.approver) + row("reason", a.reason);
  html += "</table>";
  if (a.state == "pending") {
    html += "<p>A member of " + HtmlEscape(groups) +
            " decides it with an approver token:</p><pre>custody approval approve " +
            HtmlEscape(a.id) + " --reason \"...\"\ncustody approval deny " + HtmlEscape(a.id) +
            " --reason \"...\"</pre>";
  }
  return html + "</body></html>";
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
                 {"groups", StringArray(Lines(a.group))},
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

  RETURN_IF_ERROR(router.Add({"GET", "/approvals/{id}",
                              [svc](Request& req, Responder respond) {
                                auto row = svc->GetApproval(req.params["id"]);
                                Response r;
                                if (!row.ok() || !*row) {
                                  r = Response::Text(row.ok() ? 404 : 503,
                                                     row.ok() ? "no such approval\n"
                                                              : "approvals are unavailable\n");
                                } else {
                                  r = Response::Text(200, Page(**row), "text/html; charset=utf-8");
                                  r.headers.Set("content-security-policy",
                                                "default-src 'none'; style-src 'unsafe-inline'; "
                                                "frame-ancestors 'none'");
                                  r.headers.Set("x-frame-options", "DENY");
                                }
                                r.headers.Set("cache-control", "no-store");
                                r.headers.Set("referrer-policy", "no-referrer");
                                respond(std::move(r));
                              },
                              AuthRequirement::None(), ""}));
  return OkStatus();
}

}  // namespace custody::api

#include "api/credential_routes.h"

#include <boost/json.hpp>

#include "common/json_parse.h"
#include "http/request_authenticator.h"

namespace custody::api {
namespace {

namespace json = boost::json;
using credentials::CredentialService;
using http::AuthRequirement;
using http::Request;
using http::Responder;
using http::Response;
using store::LeaseRow;

constexpr const char* kJson = "application/json";

std::string Time(int64_t ms) {
  return FormatRfc3339Millis(TimePoint(std::chrono::milliseconds(ms)));
}

void Reply(const Responder& respond, const std::string& request_id, const Status& s) {
  Response r = http::ErrorResponse(s, request_id);
  if (s.code() == StatusCode::kUnauthenticated) {
    r.headers.Set("www-authenticate", "Bearer realm=\"custody\", error=\"invalid_token\"");
  }
  respond(std::move(r));
}

// The one JSON shape of a lease (docs/API.md, "Credential lease").
json::object LeaseJson(const LeaseRow& l) {
  json::object o{{"role", l.role},
                 {"database", l.database},
                 {"access", l.access},
                 {"state", store::LeaseStateName(l.state)},
                 {"session", l.sid},
                 {"root_session", l.root_sid},
                 {"agent", l.agent},
                 {"initiator", l.initiator},
                 {"action_id", l.action_id},
                 {"decision_index", l.decision_index},
                 {"password_sha256", l.password_sha256},
                 {"issued_at", Time(l.issued_ms)},
                 {"expires_at", Time(l.expires_ms)}};
  if (!l.revoke_reason.empty()) o["revoke_reason"] = l.revoke_reason;
  if (l.revoked_ms > 0) o["revoked_at"] = Time(l.revoked_ms);
  return o;
}

Result<json::object> ParseBody(const std::string& body, bool allow_empty) {
  if (allow_empty && body.find_first_not_of(" \t\r\n") == std::string::npos) return json::object();
  boost::system::error_code ec;
  json::value v = ParseJson(body, ec);
  if (ec || !v.is_object()) return InvalidArgumentError("body must be a JSON object");
  return std::move(v.as_object());
}

Result<int64_t> TtlOf(const json::object& o) {
  auto it = o.find("ttl_s");
  if (it == o.end() || it->value().is_null()) return 0;
  if (!it->value().is_int64() || it->value().get_int64() < 1) {
    return InvalidArgumentError("ttl_s must be a positive integer");
  }
  return it->value().get_int64();
}

Result<std::string> Bearer(const Request& req) {
  if (auto token = http::BearerToken(req.headers); token && !token->empty()) {
    return std::string(*token);
  }
  return UnauthenticatedError("a bearer token is required");
}

// Who may act on `role`: an admin, or the lease's own session. "admin:<id>" or "session:<sid>".
Result<std::string> Caller(const Request& req, CredentialService& svc, http::Authenticator& admins,
                           const std::string& role, bool reader_too = false) {
  auto bearer = Bearer(req);
  if (!bearer.ok()) {
    // No bearer token: the console's session (cookie + CSRF header), when `admins` knows one,
    // with the same role rules as an admin or reader token.
    auto* console = dynamic_cast<http::RequestAuthenticator*>(&admins);
    std::optional<Result<http::Principal>> other;
    if (console) other = console->AuthenticateOther(req);
    if (!other) return bearer.status();
    if (!other->ok()) return other->status();
    const http::Principal& p = **other;
    if (p.role != "admin" && !(reader_too && p.role == "reader")) {
      return PermissionDeniedError(reader_too ? "the admin or reader role is required"
                                              : "the admin role is required");
    }
    return p.role + ":" + p.id;
  }
  std::string token = std::move(*bearer);
  if (auto sid = svc.SessionOf(token); sid.ok()) {
    ASSIGN_OR_RETURN(std::optional<LeaseRow> lease, svc.Get(role));
    if (!lease) return NotFoundError("no credential lease for role " + role);
    if (lease->sid != *sid) {
      return PermissionDeniedError("the lease of role " + role + " belongs to another session");
    }
    return "session:" + *sid;
  }
  auto principal = admins.Authenticate(token);
  if (!principal.ok()) {
    return UnauthenticatedError("an admin token or the lease's session token is required");
  }
  if (principal->role != "admin" && !(reader_too && principal->role == "reader")) {
    return PermissionDeniedError(reader_too ? "the admin or reader role is required"
                                            : "the admin role is required");
  }
  return principal->role + ":" + principal->id;
}

void HandleIssue(CredentialService& svc, Request& req, Responder respond) {
  auto token = Bearer(req);
  if (!token.ok()) return Reply(respond, req.request_id, token.status());
  auto o = ParseBody(req.body, false);
  if (!o.ok()) return Reply(respond, req.request_id, o.status());
  for (const auto& kv : *o) {
    std::string_view k = kv.key();
    if (k != "target" && k != "access" && k != "ttl_s") {
      return Reply(respond, req.request_id,
                   InvalidArgumentError("unknown field \"" + std::string(k) + "\""));
    }
  }
  credentials::IssueRequest ir;
  ir.token = std::move(*token);
  auto t = o->find("target");
  const json::object* target = t == o->end() ? nullptr : t->value().if_object();
  const json::value* type = target ? target->if_contains("type") : nullptr;
  const json::value* id = target ? target->if_contains("id") : nullptr;
  if (!type || !id || !type->is_string() || !id->is_string() || type->get_string() != "Database" ||
      target->size() != 2) {
    return Reply(respond, req.request_id,
                 InvalidArgumentError("target must be {\"type\": \"Database\", \"id\": NAME}"));
  }
  ir.database = std::string(id->get_string());
  auto a = o->find("access");
  if (a == o->end() || !a->value().is_string() || a->value().get_string().empty()) {
    return Reply(respond, req.request_id, InvalidArgumentError("access must be a string"));
  }
  ir.access = std::string(a->value().get_string());
  auto ttl = TtlOf(*o);
  if (!ttl.ok()) return Reply(respond, req.request_id, ttl.status());
  ir.ttl_s = *ttl;

  credentials::Refusal refusal;
  auto issued = svc.Issue(ir, &refusal);
  if (!issued.ok()) {
    Response r = http::ErrorResponse(issued.status(), req.request_id);
    if (!refusal.action_id.empty()) {
      // The recorded decision that refused it, beside the error.
      r.body.pop_back();
      r.body += ",\"action_id\":\"" + refusal.action_id +
                "\",\"ledger_index\":" + std::to_string(refusal.ledger_index) + "}";
    }
    return respond(std::move(r));
  }
  json::object body = LeaseJson(issued->lease);
  body["connection"] = {{"host", issued->connect.host},
                        {"port", issued->connect.port},
                        {"dbname", issued->connect.dbname},
                        {"user", issued->lease.role},
                        {"password", issued->password}};
  Response resp = Response::Json(201, json::serialize(body));
  resp.headers.Set("cache-control", "no-store");
  respond(std::move(resp));
}

}  // namespace

Status AddCredentialRoutes(http::Router& router, CredentialService& service,
                           http::Authenticator& admins) {
  CredentialService* svc = &service;
  http::Authenticator* auth = &admins;
  RETURN_IF_ERROR(router.Add(
      {"POST", "/v1/credentials:issue",
       [svc](Request& req, Responder respond) { HandleIssue(*svc, req, std::move(respond)); },
       AuthRequirement::None(), kJson}));
  RETURN_IF_ERROR(router.Add(
      {"POST", "/v1/credentials/{op}",
       [svc, auth](Request& req, Responder respond) {
         const std::string& op = req.params["op"];
         size_t colon = op.rfind(':');
         std::string verb = colon == std::string::npos ? "" : op.substr(colon + 1);
         if (colon == 0 || (verb != "revoke" && verb != "renew")) {
           return Reply(respond, req.request_id,
                        NotFoundError("unknown credential operation (try :revoke or :renew)"));
         }
         const std::string role = op.substr(0, colon);
         auto by = Caller(req, *svc, *auth, role);
         if (!by.ok()) return Reply(respond, req.request_id, by.status());
         auto o = ParseBody(req.body, true);
         if (!o.ok()) return Reply(respond, req.request_id, o.status());
         Result<LeaseRow> lease = LeaseRow{};
         if (verb == "revoke") {
           std::string reason;
           if (auto it = o->find("reason"); it != o->end() && it->value().is_string()) {
             reason = std::string(it->value().get_string());
           }
           lease = svc->Revoke(role, reason, *by);
         } else {
           auto ttl = TtlOf(*o);
           if (!ttl.ok()) return Reply(respond, req.request_id, ttl.status());
           lease = svc->Renew(role, *ttl, *by);
         }
         if (!lease.ok()) return Reply(respond, req.request_id, lease.status());
         // 202 while the revocation waits for the database: it is not revoked yet.
         int status = lease->state == store::LeaseState::kRevoking ? 202 : 200;
         respond(Response::Json(status, json::serialize(LeaseJson(*lease))));
       },
       AuthRequirement::None(), ""}));
  RETURN_IF_ERROR(router.Add({"GET", "/v1/credentials/{role}",
                              [svc, auth](Request& req, Responder respond) {
                                const std::string& role = req.params["role"];
                                auto by = Caller(req, *svc, *auth, role, /*reader_too=*/true);
                                if (!by.ok()) return Reply(respond, req.request_id, by.status());
                                auto lease = svc->Get(role);
                                if (!lease.ok())
                                  return Reply(respond, req.request_id, lease.status());
                                if (!*lease)
                                  return Reply(respond, req.request_id,
                                               NotFoundError("no lease for " + role));
                                respond(Response::Json(200, json::serialize(LeaseJson(**lease))));
                              },
                              AuthRequirement::None(), ""}));
  return OkStatus();
}

}  // namespace custody::api

#include "api/attribution_routes.h"

#include <boost/json.hpp>
#include <memory>

#include "api/approval_routes.h"
#include "common/json_array.h"
#include "common/json_parse.h"

namespace custody::api {
namespace {

namespace json = boost::json;
using attribution::AttributionService;
using attribution::AuthorizeRequest;
using attribution::AuthorizeResult;
using http::AuthRequirement;
using http::Request;
using http::Responder;
using http::Response;

constexpr const char* kJson = "application/json";

void Reply(const Responder& respond, const std::string& request_id, const Status& s) {
  Response r = http::ErrorResponse(s, request_id);
  if (s.code() == StatusCode::kUnauthenticated) {
    r.headers.Set("www-authenticate", "Bearer realm=\"custody\", error=\"invalid_token\"");
  }
  respond(std::move(r));
}

std::string By(const Request& req) { return req.principal ? "admin:" + req.principal->id : ""; }

// The bearer token of the request: the agent's session token on these routes (every one of
// them needs it; verifying it is the service's job).
Result<std::string> Bearer(const Request& req) {
  if (auto token = http::BearerToken(req.headers); token && !token->empty()) {
    return std::string(*token);
  }
  return UnauthenticatedError("a bearer session token is required");
}

Result<json::object> ParseBody(const std::string& body) {
  boost::system::error_code ec;
  json::value v = ParseJson(body, ec);
  if (ec || !v.is_object()) return InvalidArgumentError("body must be a JSON object");
  return std::move(v.as_object());
}

Result<std::string> OptString(const json::object& o, std::string_view key) {
  auto it = o.find(key);
  if (it == o.end() || it->value().is_null()) return std::string();
  if (!it->value().is_string()) return InvalidArgumentError(std::string(key) + " must be a string");
  return std::string(it->value().get_string());
}

// An object member serialized back to text ("" when absent); `what` names it in errors.
Result<std::string> OptObjectText(const json::object& o, std::string_view key) {
  auto it = o.find(key);
  if (it == o.end() || it->value().is_null()) return std::string();
  if (!it->value().is_object())
    return InvalidArgumentError(std::string(key) + " must be an object");
  return json::serialize(it->value());
}

std::string_view DecisionOf(const AuthorizeResult& r) {
  return r.allowed ? "allow" : r.approval_required ? "approval_required" : "deny";
}

// The approval a decision asks for (approval_required) or ran under (allow).
json::object ApprovalOf(const AuthorizeResult& r) {
  json::object o = ApprovalJson(*r.approval, "");
  if (!r.approval_url.empty()) o["url"] = r.approval_url;
  return o;
}

json::object ResultJson(const AuthorizeResult& r) {
  json::object o{{"action_id", r.action_id},
                 {"decision", DecisionOf(r)},
                 {"reasons", StringArray(r.reasons)},
                 {"message", r.message},
                 {"policy_hash", r.policy_hash},
                 {"session", r.sid},
                 {"traceparent", r.traceparent},
                 {"ledger_index", r.ledger_index},
                 {"receipt", r.receipt}};
  if (!r.errors.empty()) o["errors"] = StringArray(r.errors);
  if (!r.contained.empty()) o["contained"] = r.contained;
  if (r.approval) o["approval"] = ApprovalOf(r);
  return o;
}

// {"action": "call_tool", "target": {"server","tool"} | {"type","id"}, "arguments": {..},
//  "context": {..}, "traceparent": ".."}; unknown members are refused.
Result<AuthorizeRequest> NativeRequest(const Request& req) {
  AuthorizeRequest a;
  ASSIGN_OR_RETURN(a.token, Bearer(req));
  ASSIGN_OR_RETURN(json::object o, ParseBody(req.body));
  for (const auto& kv : o) {
    std::string_view k = kv.key();
    if (k != "action" && k != "target" && k != "arguments" && k != "context" &&
        k != "traceparent") {
      return InvalidArgumentError("unknown field \"" + std::string(k) + "\"");
    }
  }
  ASSIGN_OR_RETURN(a.action, OptString(o, "action"));
  if (a.action.empty()) a.action = "call_tool";
  auto t = o.find("target");
  if (t == o.end() || !t->value().is_object())
    return InvalidArgumentError("target is required: {\"server\",\"tool\"} or {\"type\",\"id\"}");
  const json::object& to = t->value().get_object();
  for (const auto& kv : to) {
    std::string_view k = kv.key();
    if (k != "server" && k != "tool" && k != "type" && k != "id")
      return InvalidArgumentError("unknown field \"target." + std::string(k) + "\"");
  }
  ASSIGN_OR_RETURN(a.target.server, OptString(to, "server"));
  ASSIGN_OR_RETURN(a.target.tool, OptString(to, "tool"));
  ASSIGN_OR_RETURN(a.target.type, OptString(to, "type"));
  ASSIGN_OR_RETURN(a.target.id, OptString(to, "id"));
  ASSIGN_OR_RETURN(a.arguments_json, OptObjectText(o, "arguments"));
  ASSIGN_OR_RETURN(a.caller_context_json, OptObjectText(o, "context"));
  ASSIGN_OR_RETURN(a.traceparent, OptString(o, "traceparent"));
  if (a.traceparent.empty())
    a.traceparent = std::string(req.headers.Get("traceparent").value_or(""));
  a.via = "native";
  return a;
}

Response AuthorizeResponse(const AuthorizeResult& r) {
  // A genuine token of a revoked session: 401, but the refusal was recorded and is shown.
  Response resp = Response::Json(r.session_revoked ? 401 : 200, json::serialize(ResultJson(r)));
  if (r.session_revoked) {
    resp.headers.Set("www-authenticate",
                     "Bearer realm=\"custody\", error=\"invalid_token\", "
                     "error_description=\"session revoked\"");
  }
  resp.headers.Set("traceparent", r.traceparent);
  resp.headers.Set("cache-control", "no-store");
  return resp;
}

// --- AuthZEN ---------------------------------------------------------------------------------

// One AuthZEN evaluation, after defaults are merged: subject, action, resource, context.
struct Evaluation {
  json::object subject, action, resource, context;
};

Result<AuthorizeRequest> FromAuthzen(const Evaluation& e, const std::string& token,
                                     const std::string& traceparent) {
  AuthorizeRequest a;
  a.token = token;
  a.via = "authzen";
  a.traceparent = traceparent;
  ASSIGN_OR_RETURN(std::string stype, OptString(e.subject, "type"));
  ASSIGN_OR_RETURN(std::string sid, OptString(e.subject, "id"));
  if (stype.empty() || sid.empty())
    return InvalidArgumentError("subject.type and subject.id are required");
  if (stype != "agent" && stype != "workload")
    return InvalidArgumentError("subject.type must be \"agent\" or \"workload\"");
  // The subject must be the session token's own agent (name or instance SPIFFE ID).
  a.expected_subject = sid;
  ASSIGN_OR_RETURN(a.action, OptString(e.action, "name"));
  if (a.action.empty()) return InvalidArgumentError("action.name is required");
  ASSIGN_OR_RETURN(std::string rtype, OptString(e.resource, "type"));
  ASSIGN_OR_RETURN(std::string rid, OptString(e.resource, "id"));
  if (rtype.empty() || rid.empty())
    return InvalidArgumentError("resource.type and resource.id are required");
  if (rtype == "tool") {
    size_t slash = rid.find('/');
    if (slash == std::string::npos)
      return InvalidArgumentError("a tool resource id is \"<server>/<tool>\"");
    a.target.server = rid.substr(0, slash);
    a.target.tool = rid.substr(slash + 1);
  } else {
    a.target.type = rtype;
    a.target.id = rid;
  }
  ASSIGN_OR_RETURN(a.arguments_json, OptObjectText(e.action, "properties"));
  json::object ctx = e.context;
  // The subject as the PEP named it is kept for the record; Custody's own facts come from the
  // token.
  ctx["subject"] = e.subject;
  if (auto it = e.resource.find("properties"); it != e.resource.end())
    ctx["resource_properties"] = it->value();
  a.caller_context_json = json::serialize(ctx);
  return a;
}

json::object AuthzenDecision(const Result<AuthorizeResult>& r) {
  if (!r.ok()) {
    return {
        {"decision", false},
        {"context",
         {{"error",
           {{"status", static_cast<int>(r.status().code())}, {"message", r.status().message()}}}}}};
  }
  json::object o{{"decision", r->allowed},
                 {"context",
                  {{"id", r->action_id},
                   {"reasons", StringArray(r->reasons)},
                   {"reason_admin", {{"en", r->message}}},
                   {"policy_hash", r->policy_hash},
                   {"ledger_index", r->ledger_index},
                   {"receipt", r->receipt},
                   {"traceparent", r->traceparent}}}};
  // AuthZEN's decision is a boolean: what a person must approve goes in its context.
  if (r->approval) {
    json::object& ctx = o["context"].as_object();
    ctx["custody_decision"] = DecisionOf(*r);
    ctx["approval"] = ApprovalOf(*r);
  }
  return o;
}

Result<Evaluation> Merge(const json::object& defaults, const json::object* item) {
  Evaluation e;
  auto pick = [&](std::string_view key, json::object& out, bool required) -> Status {
    const json::value* v = nullptr;
    if (item) {
      if (auto it = item->find(key); it != item->end()) v = &it->value();
    }
    if (!v) {
      if (auto it = defaults.find(key); it != defaults.end()) v = &it->value();
    }
    if (!v || v->is_null()) {
      if (required) return InvalidArgumentError(std::string(key) + " is required");
      return OkStatus();
    }
    if (!v->is_object()) return InvalidArgumentError(std::string(key) + " must be an object");
    out = v->get_object();
    return OkStatus();
  };
  RETURN_IF_ERROR(pick("subject", e.subject, true));
  RETURN_IF_ERROR(pick("action", e.action, true));
  RETURN_IF_ERROR(pick("resource", e.resource, true));
  RETURN_IF_ERROR(pick("context", e.context, false));
  return e;
}

struct EvaluationsRun {
  std::vector<Evaluation> items;
  std::string semantic;
  std::string token;
  std::string traceparent;
  json::array out;
  size_t next = 0;
  Responder respond;
  std::string request_id;
};

void RunNext(AttributionService* svc, std::shared_ptr<EvaluationsRun> run);

void Evaluate(AttributionService* svc, const Evaluation& e, const std::string& token,
              const std::string& traceparent, std::function<void(Result<AuthorizeResult>)> done) {
  auto a = FromAuthzen(e, token, traceparent);
  if (!a.ok()) return done(a.status());
  svc->Authorize(std::move(*a), std::move(done));
}

void RunNext(AttributionService* svc, std::shared_ptr<EvaluationsRun> run) {
  if (run->next >= run->items.size()) {
    json::object body{{"evaluations", std::move(run->out)}};
    return run->respond(Response::Json(200, json::serialize(body)));
  }
  const Evaluation& e = run->items[run->next++];
  Evaluate(svc, e, run->token, run->traceparent, [svc, run](Result<AuthorizeResult> r) {
    if (!r.ok() && r.status().code() == StatusCode::kUnauthenticated) {
      Response resp = http::ErrorResponse(r.status(), run->request_id);
      resp.headers.Set("www-authenticate", "Bearer realm=\"custody\", error=\"invalid_token\"");
      return run->respond(std::move(resp));
    }
    bool decision = r.ok() && r->allowed;
    run->out.push_back(AuthzenDecision(r));
    if ((run->semantic == "deny_on_first_deny" && !decision) ||
        (run->semantic == "permit_on_first_permit" && decision)) {
      run->next = run->items.size();
    }
    RunNext(svc, run);
  });
}

// One evaluation answered as AuthZEN's single shape; request errors (no or bad token, a bad
// request, a subject that is not the token's agent) are HTTP errors, not decisions.
void RespondSingle(AttributionService* svc, const Evaluation& e, const std::string& token,
                   const std::string& traceparent, Responder respond,
                   const std::string& request_id) {
  Evaluate(svc, e, token, traceparent, [respond, request_id](Result<AuthorizeResult> r) {
    StatusCode code = r.ok() ? StatusCode::kOk : r.status().code();
    if (code == StatusCode::kUnauthenticated || code == StatusCode::kInvalidArgument ||
        code == StatusCode::kPermissionDenied) {
      return Reply(respond, request_id, r.status());
    }
    Response resp = Response::Json(200, json::serialize(AuthzenDecision(r)));
    if (r.ok()) resp.headers.Set("traceparent", r->traceparent);
    respond(std::move(resp));
  });
}

}  // namespace

Status AddAttributionRoutes(http::Router& router, AttributionService& service,
                            const AttributionRouteOptions& options) {
  AttributionService* svc = &service;
  auto admin = AuthRequirement::AnyOf({"admin"});

  RETURN_IF_ERROR(router.Add({"POST", "/v1/actions:authorize",
                              [svc](Request& req, Responder respond) {
                                auto a = NativeRequest(req);
                                if (!a.ok()) return Reply(respond, req.request_id, a.status());
                                svc->Authorize(std::move(*a), [respond, id = req.request_id](
                                                                  Result<AuthorizeResult> r) {
                                  if (!r.ok()) return Reply(respond, id, r.status());
                                  respond(AuthorizeResponse(*r));
                                });
                              },
                              AuthRequirement::None(), kJson}));

  RETURN_IF_ERROR(router.Add(
      {"POST", "/v1/actions/{op}",
       [svc](Request& req, Responder respond) {
         const std::string& op = req.params["op"];
         constexpr std::string_view kSuffix = ":complete";
         if (op.size() <= kSuffix.size() || !op.ends_with(kSuffix))
           return Reply(respond, req.request_id,
                        NotFoundError("unknown action operation (try :complete)"));
         attribution::CompleteRequest c;
         c.action_id = op.substr(0, op.size() - kSuffix.size());
         auto token = Bearer(req);
         if (!token.ok()) return Reply(respond, req.request_id, token.status());
         c.token = std::move(*token);
         auto o = ParseBody(req.body);
         if (!o.ok()) return Reply(respond, req.request_id, o.status());
         for (const auto& kv : *o) {
           std::string_view k = kv.key();
           if (k != "status" && k != "error" && k != "output_digest" && k != "latency_ms")
             return Reply(respond, req.request_id,
                          InvalidArgumentError("unknown field \"" + std::string(k) + "\""));
         }
         auto st = OptString(*o, "status");
         auto er = OptString(*o, "error");
         auto od = OptString(*o, "output_digest");
         if (!st.ok() || !er.ok() || !od.ok())
           return Reply(respond, req.request_id,
                        InvalidArgumentError("status, error and output_digest are strings"));
         c.status = *st;
         c.error = *er;
         c.output_digest = *od;
         if (auto it = o->find("latency_ms"); it != o->end()) {
           if (!it->value().is_int64() || it->value().get_int64() < 0)
             return Reply(respond, req.request_id,
                          InvalidArgumentError("latency_ms must be a non-negative integer"));
           c.latency_ms = it->value().get_int64();
         }
         svc->Complete(std::move(c),
                       [respond, id = req.request_id](Result<attribution::CompleteResult> r) {
                         if (!r.ok()) return Reply(respond, id, r.status());
                         json::object body{{"event_id", r->event_id},
                                           {"ledger_index", r->ledger_index},
                                           {"receipt", r->receipt}};
                         respond(Response::Json(200, json::serialize(body)));
                       });
       },
       AuthRequirement::None(), kJson}));

  RETURN_IF_ERROR(router.Add(
      {"POST", "/v1/policies",
       [svc](Request& req, Responder respond) {
         auto o = ParseBody(req.body);
         if (!o.ok()) return Reply(respond, req.request_id, o.status());
         for (const auto& kv : *o) {
           if (kv.key() != "policies" && kv.key() != "entities")
             return Reply(respond, req.request_id,
                          InvalidArgumentError("unknown field \"" + std::string(kv.key()) + "\""));
         }
         auto policies = OptString(*o, "policies");
         if (!policies.ok()) return Reply(respond, req.request_id, policies.status());
         std::string entities;
         if (auto it = o->find("entities"); it != o->end() && !it->value().is_null()) {
           if (!it->value().is_array())
             return Reply(respond, req.request_id,
                          InvalidArgumentError("entities must be a JSON array"));
           entities = json::serialize(it->value());
         }
         auto r = svc->PublishPolicies(*policies, entities, By(req));
         if (!r.ok()) return Reply(respond, req.request_id, r.status());
         json::object body{{"hash", r->hash},
                           {"policies", r->policies},
                           {"entities", r->entities},
                           {"tripwires", StringArray(r->tripwires)},
                           {"ledger_index", r->ledger_index}};
         respond(Response::Json(200, json::serialize(body)));
       },
       admin, kJson}));

  RETURN_IF_ERROR(router.Add({"GET", "/v1/policies/active",
                              [svc](Request& req, Responder respond) {
                                auto r = svc->ActivePolicySet();
                                if (!r.ok()) return Reply(respond, req.request_id, r.status());
                                if (!*r)
                                  return Reply(respond, req.request_id,
                                               NotFoundError("no policy set has been published"));
                                const auto& p = **r;
                                json::value entities = p.entities.empty()
                                                           ? json::value(json::array())
                                                           : ParseJson(p.entities);
                                json::object body{{"hash", p.hash},
                                                  {"policies", p.policies},
                                                  {"entities", entities},
                                                  {"published_ms", p.published_ms},
                                                  {"published_by", p.published_by},
                                                  {"ledger_index", p.ledger_index}};
                                respond(Response::Json(200, json::serialize(body)));
                              },
                              options.read_auth, ""}));

  RETURN_IF_ERROR(
      router.Add({"GET", "/v1/policies",
                  [svc](Request& req, Responder respond) {
                    auto r = svc->store().ListPolicySets();
                    if (!r.ok()) return Reply(respond, req.request_id, r.status());
                    json::array a;
                    for (const auto& p : *r) {
                      a.push_back(json::object{{"hash", p.hash},
                                               {"published_ms", p.published_ms},
                                               {"published_by", p.published_by},
                                               {"ledger_index", p.ledger_index}});
                    }
                    respond(Response::Json(200, json::serialize(json::object{{"policy_sets", a}})));
                  },
                  options.read_auth, ""}));

  // One version by its hash, texts included: what a decision recorded under an older set was
  // judged against (the console highlights its determining policy in this text).
  RETURN_IF_ERROR(router.Add(
      {"GET", "/v1/policies/{hash}",
       [svc](Request& req, Responder respond) {
         auto r = svc->store().GetPolicySet(req.params["hash"]);
         if (!r.ok()) return Reply(respond, req.request_id, r.status());
         if (!*r)
           return Reply(respond, req.request_id,
                        NotFoundError("no policy set " + req.params["hash"].substr(0, 64)));
         const auto& p = **r;
         auto active = svc->store().ActivePolicySet();
         if (!active.ok()) return Reply(respond, req.request_id, active.status());
         json::value entities =
             p.entities.empty() ? json::value(json::array()) : ParseJson(p.entities);
         json::object body{{"hash", p.hash},
                           {"policies", p.policies},
                           {"entities", entities},
                           {"published_ms", p.published_ms},
                           {"published_by", p.published_by},
                           {"ledger_index", p.ledger_index},
                           {"active", *active && (*active)->hash == p.hash}};
         respond(Response::Json(200, json::serialize(body)));
       },
       options.read_auth, ""}));

  RETURN_IF_ERROR(
      router.Add({"POST", "/v1/contain",
                  [svc](Request& req, Responder respond) {
                    auto o = ParseBody(req.body);
                    if (!o.ok()) return Reply(respond, req.request_id, o.status());
                    auto session = OptString(*o, "session");
                    auto agent = OptString(*o, "agent");
                    auto reason = OptString(*o, "reason");
                    if (!session.ok() || !agent.ok() || !reason.ok())
                      return Reply(respond, req.request_id,
                                   InvalidArgumentError("session, agent and reason are strings"));
                    if (session->empty() == agent->empty())
                      return Reply(respond, req.request_id,
                                   InvalidArgumentError("name exactly one of session or agent"));
                    auto r = session->empty() ? svc->Contain("agent", *agent, *reason, By(req))
                                              : svc->Contain("session", *session, *reason, By(req));
                    if (!r.ok()) return Reply(respond, req.request_id, r.status());
                    json::object body{{"event_id", r->event_id},
                                      {"scope", r->scope},
                                      {"subject", r->subject},
                                      {"revoked_sessions", StringArray(r->revoked_sessions)},
                                      {"ledger_index", r->ledger_index},
                                      {"receipt", r->receipt}};
                    respond(Response::Json(200, json::serialize(body)));
                  },
                  admin, kJson}));

  // --- AuthZEN 1.0 ---
  std::string base = options.base_url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  RETURN_IF_ERROR(router.Add(
      {"GET", "/.well-known/authzen-configuration",
       [base](Request&, Responder respond) {
         json::object body{{"policy_decision_point", base},
                           {"access_evaluation_endpoint", base + "/access/v1/evaluation"},
                           {"access_evaluations_endpoint", base + "/access/v1/evaluations"}};
         Response r = Response::Json(200, json::serialize(body));
         r.headers.Set("cache-control", "max-age=300");
         respond(std::move(r));
       },
       AuthRequirement::None(), ""}));

  RETURN_IF_ERROR(router.Add(
      {"POST", "/access/v1/evaluation",
       [svc](Request& req, Responder respond) {
         auto bearer = Bearer(req);
         if (!bearer.ok()) return Reply(respond, req.request_id, bearer.status());
         const std::string& token = *bearer;
         auto o = ParseBody(req.body);
         if (!o.ok()) return Reply(respond, req.request_id, o.status());
         auto e = Merge(*o, nullptr);
         if (!e.ok()) return Reply(respond, req.request_id, e.status());
         RespondSingle(svc, *e, token, std::string(req.headers.Get("traceparent").value_or("")),
                       std::move(respond), req.request_id);
       },
       AuthRequirement::None(), kJson}));

  RETURN_IF_ERROR(router.Add(
      {"POST", "/access/v1/evaluations",
       [svc](Request& req, Responder respond) {
         auto bearer = Bearer(req);
         if (!bearer.ok()) return Reply(respond, req.request_id, bearer.status());
         const std::string& token = *bearer;
         auto o = ParseBody(req.body);
         if (!o.ok()) return Reply(respond, req.request_id, o.status());
         auto run = std::make_shared<EvaluationsRun>();
         run->token = token;
         run->traceparent = std::string(req.headers.Get("traceparent").value_or(""));
         run->request_id = req.request_id;
         run->semantic = "execute_all";
         if (auto it = o->find("options"); it != o->end()) {
           if (!it->value().is_object())
             return Reply(respond, req.request_id,
                          InvalidArgumentError("options must be an object"));
           auto sem = OptString(it->value().get_object(), "evaluations_semantic");
           if (!sem.ok()) return Reply(respond, req.request_id, sem.status());
           if (!sem->empty()) run->semantic = *sem;
           if (run->semantic != "execute_all" && run->semantic != "deny_on_first_deny" &&
               run->semantic != "permit_on_first_permit") {
             return Reply(respond, req.request_id,
                          InvalidArgumentError("evaluations_semantic must be execute_all, "
                                               "deny_on_first_deny or permit_on_first_permit"));
           }
         }
         auto items = o->find("evaluations");
         if (items == o->end() || items->value().is_null() ||
             (items->value().is_array() && items->value().get_array().empty())) {
           // No evaluations: the request is a single evaluation, answered as one.
           auto e = Merge(*o, nullptr);
           if (!e.ok()) return Reply(respond, req.request_id, e.status());
           return RespondSingle(svc, *e, token, run->traceparent, std::move(respond),
                                req.request_id);
         }
         if (!items->value().is_array())
           return Reply(respond, req.request_id,
                        InvalidArgumentError("evaluations must be an array"));
         if (items->value().get_array().size() > 256)
           return Reply(respond, req.request_id,
                        InvalidArgumentError("at most 256 evaluations per request"));
         for (const auto& item : items->value().get_array()) {
           if (!item.is_object())
             return Reply(respond, req.request_id,
                          InvalidArgumentError("each evaluation must be an object"));
           auto e = Merge(*o, &item.get_object());
           if (!e.ok()) return Reply(respond, req.request_id, e.status());
           run->items.push_back(std::move(*e));
         }
         run->respond = std::move(respond);
         RunNext(svc, run);
       },
       AuthRequirement::None(), kJson}));
  return OkStatus();
}

}  // namespace custody::api
